/*
 * FastCGI parameters and body -> request -> route -> handler -> response.
 *
 * The input is a FastCGI PARAMS stream, preceded by its length in four
 * bytes (big-endian, cut to what there is), then the body.  The stream
 * is parsed by fcgi_parse_params(), as a worker parses what nginx sends,
 * and the request goes where worker.c sends it: request_from_params(),
 * request_body_length(), the body as read_body() takes it, the route
 * table, and the route's handler (for a tenant route as the fuzz
 * tenant's admin: the token checks have a target of their own), then
 * response_serialise().  Statements fail with 503 (no database), so
 * everything before the first one runs for real.
 */
#include "config.h"

#include <string.h>

#include "fastcgi.h"
#include "fuzz.h"
#include "routes.h"

/* The PARAMS stream's length, then the stream; returns where it ends. */
static size_t
params_stream(const uint8_t *data, size_t size, size_t *len)
{
    if (size < 4) {
        *len = 0;
        return size;
    }
    *len = (size_t)data[0] << 24 | (size_t)data[1] << 16 |
        (size_t)data[2] << 8 | data[3];
    if (*len > size - 4)
        *len = size - 4;
    return 4 + *len;
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
    struct fcgi_param *params = NULL;
    struct request req;
    size_t body_at, len, count = 0, want;
    bool exact;

    fuzz_request_begin(&req);
    body_at = params_stream(data, size, &len);

    /* A stream the worker would refuse closes the connection: done. */
    if (fcgi_parse_params(req.arena, data + 4 * (size >= 4), len, &params,
            &count) == 0) {
        request_from_params(&req, params, count);
        if (request_body_length(&req, params, count, &want, &exact) == 0 &&
            take_body(&req, data + body_at, size - body_at, want,
                exact) == 0)
            dispatch(&req);
    }

    fuzz_request_end(&req);
    return 0;
}
