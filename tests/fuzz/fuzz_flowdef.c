/*
 * Flow definitions -> flowdef_check() (lib/flowdef.c): the graph rules,
 * duplicate ids and edges, cycles.  Whatever it accepts hands back
 * canonical references.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "flowdef.h"
#include "fuzz.h"

static void
put(void *object)
{
    json_object_put(object);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct json_object *definition = NULL;
    struct flowdef_refs refs;
    struct request req;
    int rc;

    fuzz_request_begin(&req);
    if (json_parse((const char *)data, size, &definition, &req.err) == 0) {
        arena_defer(req.arena, put, definition);
        error_clear(&req.err);
        memset(&refs, 0, sizeof(refs));
        rc = flowdef_check(req.arena, definition, "/definition", &refs,
            &req.err);
        if ((rc == 0) != (req.err.status == 0) ||
            (rc < 0 && req.err.status != 422))
            abort();
        for (size_t i = 0; i < refs.n; i++) {
            char id[UUID_TEXT_LEN + 1];

            if (!uuid_parse(refs.items[i].id, strlen(refs.items[i].id), id)
                || strcmp(id, refs.items[i].id) != 0 ||
                strncmp(refs.items[i].pointer, "/definition/", 12) != 0)
                abort();
        }
    }
    fuzz_request_end(&req);
    return 0;
}
