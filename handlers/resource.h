/*
 * The common shape of a tenant resource: a table with a UUID id,
 * created_at and updated_at, listed newest first with cursors, read and
 * changed with ETags.  A handler file describes its resource once (table,
 * columns, writable fields, list filters, how a row is written) and the
 * functions here do the list, get, create, merge-patch and delete that all
 * resources share.  Anything particular to a resource (cross-field
 * checks, secrets, sub-resources) stays in its own file.
 *
 * Every create, update and delete here records its audit entry in the
 * same transaction (handlers/audit_logs.h): the row before and after, as
 * the resource's write function shows it.
 *
 * Every SQL text is built from the resource's constant description, never
 * from the request; values are always bound parameters.
 */
#ifndef CREWD_HANDLERS_RESOURCE_H
#define CREWD_HANDLERS_RESOURCE_H

#include <stdbool.h>

#include "common.h"
#include "fields.h"

/* A list filter: ?param=value becomes "column = $n". */
struct list_filter {
    const char *param;
    const char *column;
    enum field_type type;           /* FIELD_BOOL, FIELD_UUID, FIELD_ENUM */
    const char *const *choices;     /* FIELD_ENUM */
};

struct resource {
    const char *table;
    const char *collection;     /* path segment after /api/v1/ */
    const char *noun;           /* "agent": "no such agent" */
    const char *columns;        /* select list: id first, ETag version last */
    int ncolumns;
    int created_at_column;      /* index in columns, for the cursor */
    bool shared_table;          /* a public table: every query filters on
                                   tenant_id = the request's tenant */

    const struct field_spec *fields;
    const char *const *field_columns;   /* SQL column of each field */
    size_t nfields;

    const struct list_filter *filters;
    size_t nfilters;

    /* Writes one row as a JSON object. */
    void (*write)(struct request *req, const PGresult *res, int row);

    /*
     * Optional: checks beyond each field's type, on the values read from
     * the body (creating: all required fields are present).  Adds field
     * errors to req->err; returns -1 when there are any.
     */
    int (*validate)(struct request *req, struct field_value *values,
        bool creating);

    /* Optional: turns a database refusal into field errors. */
    void (*explain)(struct request *req);

    /*
     * For the OpenAPI document: JSON Schema properties (the inside of an
     * object, "\"status\": {...}, ...") the response shows besides id,
     * tenant_id, created_at, updated_at and the readable fields; NULL:
     * none.
     */
    const char *doc_properties;
};

/*
 * Handlers for the route table: the five operations on the resource of
 * the route (req->route->resource), for resources that need nothing more.
 */
int resource_list_route(struct request *req);
int resource_get_route(struct request *req);
int resource_create_route(struct request *req);
int resource_update_route(struct request *req);
int resource_delete_route(struct request *req);

/* GET /collection: filters, ?limit=, ?cursor=. */
int resource_list(struct request *req, const struct resource *r);

/* GET /collection/{id}. */
int resource_get(struct request *req, const struct resource *r);

/* POST /collection: 201 with Location and ETag. */
int resource_create(struct request *req, const struct resource *r);

/* PATCH /collection/{id}: a merge patch, If-Match honoured. */
int resource_update(struct request *req, const struct resource *r);

/* DELETE /collection/{id}: 204, If-Match honoured. */
int resource_delete(struct request *req, const struct resource *r);

/*
 * Building blocks for resources that need more than the above.
 */

/* Parses the body and reads it against r's fields and validate hook. */
int resource_read_body(struct request *req, const struct resource *r,
    bool creating, struct field_value *values);

/*
 * The write half of resource_create, for values already read (and
 * perhaps completed, as a password by its hash): INSERT, then 201 with
 * Location and ETag.
 */
int resource_insert(struct request *req, const struct resource *r,
    const struct field_value *values);

/*
 * The write half of resource_update, for values already read and row
 * {id} already locked: UPDATE, then 200 with the row and its ETag.  No
 * value present: the row as it is, unchanged.
 */
int resource_apply(struct request *req, const struct resource *r,
    const struct field_value *values);

/*
 * Locks row {id} (FOR UPDATE) and checks If-Match against it: 404 when
 * there is no such row, 412 when the version differs.
 */
int resource_lock(struct request *req, const struct resource *r);

/* Reads row id; NULL with a 404 (or the database's error). */
PGresult *resource_fetch(struct request *req, const struct resource *r,
    const char *id);

/*
 * The delete of resource_delete without its query check and lock: for a
 * handler that reads query parameters of its own and has locked row {id}
 * with resource_lock to check something before the row goes.
 */
int resource_delete_locked(struct request *req, const struct resource *r);

/* One row as the whole response, with its ETag. */
int resource_respond(struct request *req, const struct resource *r,
    int status, const PGresult *res);

#endif
