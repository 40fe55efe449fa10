/*
 * UUIDs and paths: uuid_parse() (lib/uuid.c), and the route table's
 * matching of a path, whose {id} segments it parses.  An accepted UUID
 * is canonical (lower-case 8-4-4-4-12) and parses to itself.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "routes.h"

static void
check_canonical(const char *id)
{
    char again[UUID_TEXT_LEN + 1];

    if (strlen(id) != UUID_TEXT_LEN)
        abort();
    for (size_t i = 0; i < UUID_TEXT_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? id[i] != '-'
                 : !((id[i] >= '0' && id[i] <= '9') ||
                     (id[i] >= 'a' && id[i] <= 'f')))
            abort();
    }
    if (!uuid_parse(id, UUID_TEXT_LEN, again) || strcmp(id, again) != 0)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {
        "GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", ""
    };
    char ids[REQUEST_PATH_PARAMS][UUID_TEXT_LEN + 1];
    char id[UUID_TEXT_LEN + 1];
    const struct route *route;
    struct request req;
    const char *path;
    char allow[80];

    fuzz_request_begin(&req);
    if (uuid_parse((const char *)data, size, id))
        check_canonical(id);

    path = fuzz_cstring(&req, data, size);
    for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
        for (int host = HOST_APEX; host <= HOST_TENANT; host++) {
            memset(ids, 0, sizeof(ids));
            route = NULL;
            if (route_match(methods[m], path, (enum route_host)host,
                    &route, ids, allow, sizeof(allow)) != ROUTE_FOUND)
                continue;
            if (route == NULL)
                abort();
            for (int k = 0; k < REQUEST_PATH_PARAMS; k++)
                if (ids[k][0] != '\0')
                    check_canonical(ids[k]);
        }
    }
    fuzz_request_end(&req);
    return 0;
}
