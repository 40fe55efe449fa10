/*
 * FastCGI parameters and body -> request -> route -> handler -> response.
 *
 * The input is the parameters as "NAME=value" records, each ended by a
 * NUL byte, then an empty record (a second NUL), then the body.  The
 * request goes where worker.c sends it: request_from_params(),
 * request_body_length(), the body as read_body() takes it, the route
 * table, and the route's handler (for a tenant route as the fuzz
 * tenant's admin: the token checks have a target of their own), then
 * response_serialise().  Statements fail with 503 (no database), so
 * everything before the first one runs for real.
 */
#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "routes.h"

#define PARAMS_MAX 64

/* Splits the records; returns where the body starts. */
static size_t
split_params(struct request *req, const uint8_t *data, size_t size,
    char **envp)
{
    size_t pos = 0;
    int n = 0;

    while (pos < size) {
        const uint8_t *nul = memchr(data + pos, '\0', size - pos);
        size_t len = nul != NULL ? (size_t)(nul - (data + pos))
                                 : size - pos;

        if (len == 0) {
            pos++;
            break;
        }
        if (n < PARAMS_MAX)
            envp[n++] = fuzz_cstring(req, data + pos, len);
        pos += len + (nul != NULL);
    }
    envp[n] = NULL;
    return pos;
}

/* The body as read_body() takes it: what arrived of what was announced. */
static int
take_body(struct request *req, const uint8_t *data, size_t size,
    size_t want, bool exact)
{
    size_t cap = req->conf->body_max_bytes;
    size_t got = size < want ? size : want;

    if (want == 0)
        return 0;
    if (!exact && got > cap)
        return request_fail(req, 413, "the body is larger than %zu bytes",
            cap);
    if (exact && got < want)
        return request_fail(req, 400, "the request body was cut short");
    req->body = fuzz_cstring(req, data, got);
    req->body_len = got;
    return 0;
}

/* worker.c's dispatch(), the tenant's transaction aside. */
static void
dispatch(struct request *req)
{
    enum route_host host = req->tenant_slug[0] != '\0' ? HOST_TENANT
                                                       : HOST_APEX;
    char allow[80];

    switch (route_match(strcmp(req->method, "HEAD") == 0 ? "GET"
                                                          : req->method,
        req->path, host, &req->route, req->path_ids, allow,
        sizeof(allow))) {
    case ROUTE_FOUND:
        break;
    case ROUTE_NOT_FOUND:
    case ROUTE_WRONG_HOST:
        request_fail(req, 404, "no such resource");
        return;
    case ROUTE_BAD_METHOD:
        response_header(req, "Allow", "%s", allow);
        request_fail(req, 405, "method not allowed here");
        return;
    }

    if (host == HOST_TENANT)
        fuzz_request_tenant(req);
    if (req->route->handler(req) < 0 && req->err.status == 0)
        abort();    /* a handler failed without saying why */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *envp[PARAMS_MAX + 1];
    struct request req;
    size_t body_at, want;
    bool exact;

    fuzz_request_begin(&req);
    body_at = split_params(&req, data, size, envp);
    request_from_params(&req, envp);

    if (request_body_length(&req, envp, &want, &exact) == 0 &&
        take_body(&req, data + body_at, size - body_at, want, exact) == 0)
        dispatch(&req);

    fuzz_request_end(&req);
    return 0;
}
