/*
 * Query strings -> every GET and DELETE route's handler: the parameter
 * check and decoding (request.c), ?limit= and ?cursor= (common.c, whose
 * cursors carry an HMAC under the fuzz secret, so seeds can hold valid
 * ones), and each list's filters, up to the first statement (503).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "fuzz.h"
#include "routes.h"

#define ID "0b7e2a8c-3f41-4d6a-9c25-7e1f0a3b5d69"

/* Routes whose handlers would only spend time: no query reaches them. */
static bool
skipped(const struct route *route)
{
    return strcmp(route->pattern, "/api/v1/openapi.json") == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct request req;
    struct page page;
    const char *query;

    fuzz_request_begin(&req);
    query = fuzz_cstring(&req, data, size);

    /* The page on its own: a limit it accepts is in range. */
    req.query = query;
    if (page_read(&req, &page) == 0 &&
        (page.limit < 1 || page.limit > PAGE_LIMIT_MAX ||
         (page.after_ts == NULL) != (page.after_id == NULL)))
        abort();
    fuzz_request_end(&req);

    for (size_t i = 0; i < routes_count; i++) {
        const struct route *route = &routes[i];

        if ((strcmp(route->method, "GET") != 0 &&
             strcmp(route->method, "DELETE") != 0) || skipped(route))
            continue;
        fuzz_request_begin(&req);
        req.method = route->method;
        req.path = route->pattern;
        req.query = fuzz_cstring(&req, data, size);
        req.route = route;
        strcpy(req.path_ids[0], ID);
        strcpy(req.path_ids[1], ID);
        if (route->host == HOST_TENANT)
            fuzz_request_tenant(&req);
        if (route->handler(&req) < 0 && req.err.status == 0)
            abort();
        fuzz_request_end(&req);
    }
    return 0;
}
