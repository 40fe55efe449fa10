/*
 * JSON bodies -> validated values: the strict parser (lib/json.c), then
 * every resource's field table as a create and as a merge patch
 * (resource_read_body(): lib/fields.c and the resource's own checks).
 *
 * Besides not crashing, what the parser accepts must survive a round
 * trip: written back with the JSON writer, it parses again to the same
 * text.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "resource.h"
#include "routes.h"

#define RESOURCES_MAX 32

static const struct resource *resources[RESOURCES_MAX];
static size_t nresources;

/* Every resource the route table serves, once. */
static void
find_resources(void)
{
    if (nresources > 0)
        return;
    for (size_t i = 0; i < routes_count; i++) {
        const struct resource *r = routes[i].resource;
        size_t k;

        if (r == NULL)
            continue;
        for (k = 0; k < nresources && resources[k] != r; k++)
            continue;
        if (k == nresources && nresources < RESOURCES_MAX)
            resources[nresources++] = r;
    }
}

static void
put(void *object)
{
    json_object_put(object);
}

/* value written by the JSON writer, into the arena. */
static const char *
written(struct request *req, struct json_object *value)
{
    struct buf out = BUF_INIT;
    struct json_writer w;
    const char *text;

    jw_init(&w, &out);
    jw_object(&w, value);
    text = arena_strdup(req->arena, buf_cstr(&out));
    buf_free(&out);
    return text;
}

static void
round_trip(struct request *req, struct json_object *value)
{
    struct json_object *again = NULL, *merged;
    struct crewd_error err;
    const char *first, *second;

    first = written(req, value);
    error_clear(&err);
    if (json_parse(first, strlen(first), &again, &err) < 0)
        abort();    /* the writer wrote what the parser refuses */
    arena_defer(req->arena, put, again);
    second = written(req, again);
    if (strcmp(first, second) != 0)
        abort();    /* a value changed on its way round */

    /* A merge patch of a value onto itself. */
    merged = json_merge_patch(value, value);
    arena_defer(req->arena, put, merged);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct field_value values[32];
    struct json_object *value = NULL;
    struct request req;
    int rc;

    fuzz_request_begin(&req);
    fuzz_request_tenant(&req);
    find_resources();
    req.content_type = "application/json";
    req.body = fuzz_cstring(&req, data, size);
    req.body_len = size;

    rc = json_parse(req.body, req.body_len, &value, &req.err);
    if ((rc == 0) != (req.err.status == 0) ||
        (rc < 0 && req.err.status != 400))
        abort();
    if (rc == 0 && value != NULL) {
        arena_defer(req.arena, put, value);
        round_trip(&req, value);
    }

    for (size_t i = 0; i < nresources; i++) {
        for (int creating = 0; creating <= 1; creating++) {
            if (resources[i]->nfields > sizeof(values) / sizeof(values[0]))
                abort();
            error_clear(&req.err);
            rc = resource_read_body(&req, resources[i], creating, values);

            /* 503: a check that asks the database (a flow's refs). */
            if ((rc == 0) != (req.err.status == 0) ||
                (rc < 0 && req.err.status != 400 &&
                 req.err.status != 422 && req.err.status != 503))
                abort();
        }
    }

    fuzz_request_end(&req);
    return 0;
}
