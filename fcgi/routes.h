/*
 * The route table: every endpoint of crewd, its host, the least role it
 * needs and its handler, in one constant array (routes.c).
 */
#ifndef CREWD_ROUTES_H
#define CREWD_ROUTES_H

#include <stddef.h>

#include "request.h"
#include "token.h"

enum route_host {
    HOST_APEX = 1,      /* {base_domain}: platform endpoints */
    HOST_TENANT = 2,    /* {slug}.{base_domain}: a tenant's endpoints */
    HOST_ANY = 3,       /* both of the above */
    HOST_METRICS = 4    /* nginx's loopback metrics listener, alone */
};

typedef int (*route_handler)(struct request *req);

struct resource;

/*
 * How the OpenAPI document (handlers/openapi.c) describes a route that is
 * not one of a resource's five (list, create, get, patch, delete).
 * Schemas are JSON Schema text.
 */
struct route_doc {
    int status;                     /* on success */
    const char *request_schema;     /* the body; NULL: none */
    const char *response_schema;    /* NULL: no body */
    const char *const *query;       /* query parameters, NULL-terminated */
    const int *errors;              /* statuses besides the usual, 0-ended */
};

struct route {
    const char *method;
    const char *pattern;    /* literal segments and {id} (a UUID) */
    enum route_host host;
    enum role role;         /* ROLE_NONE: no token needed */
    route_handler handler;
    const char *summary;

    /* For the OpenAPI document: one of the two, or neither. */
    const struct resource *resource;    /* a resource's own route */
    const struct route_doc *doc;        /* anything else */
};

extern const struct route routes[];
extern const size_t routes_count;

enum route_result {
    ROUTE_FOUND,
    ROUTE_NOT_FOUND,        /* no pattern matches the path */
    ROUTE_WRONG_HOST,       /* matches, but on the other kind of host */
    ROUTE_BAD_METHOD        /* matches, not with this method */
};

/*
 * Finds the route for method and path on a host of kind host.  On
 * ROUTE_FOUND fills ids with the canonical UUIDs the path carries.  On
 * ROUTE_BAD_METHOD writes the allowed methods ("GET, POST") to allow.
 */
enum route_result route_match(const char *method, const char *path,
    enum route_host host, const struct route **found,
    char ids[REQUEST_PATH_PARAMS][UUID_TEXT_LEN + 1],
    char *allow, size_t allow_size);

#endif
