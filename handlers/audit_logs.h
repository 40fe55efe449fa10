/*
 * The audit trail, as handlers see it (docs/audit.md).
 *
 * Recording: one call records one entry in the tenant's outbox, in the
 * request's transaction (lib/audit.h), with the acting user, the
 * client's address and user agent taken from the request.  If the change
 * rolls back, its entry goes with it.
 *
 * The generic create, update and delete of handlers/resource.c record
 * their entries themselves; a handler that writes in another way calls
 * audit_resource() (a resource's row before and after) or audit_record()
 * (anything else) once, after its change succeeded.
 *
 * Reading: GET /api/v1/audit-logs, and the entries of reads
 * (audit_read), are in handlers.h with the other handlers.
 */
#ifndef CREWD_HANDLERS_AUDIT_LOGS_H
#define CREWD_HANDLERS_AUDIT_LOGS_H

#include <json-c/json.h>

#include "audit.h"
#include "resource.h"

/*
 * Records one entry.  before and after are the resource before and after
 * the change (NULL: none), borrowed, and masked in place.  Returns 0, or
 * -1 with req->err set.
 */
int audit_record(struct request *req, enum audit_action action,
    const char *resource_type, const char *resource_id,
    struct json_object *before, struct json_object *after);

/*
 * Calls write(req, thing) with req->json aimed at a buffer of its own,
 * and gives what it wrote as a JSON value released with the arena: a
 * thing as the API shows it, for an entry's before or after.
 */
int audit_capture(struct request *req,
    void (*write)(struct request *req, const void *thing),
    const void *thing, struct json_object **out);

/*
 * What a request wrote: values[i] read against specs[i].  A write-only
 * field among them (a password, credentials) never shows in a response,
 * so the entry's "after" shows it as "***" (null when it was removed).
 */
struct audit_written {
    const struct field_spec *specs;
    const struct field_value *values;
    size_t n;
};

/*
 * Records a change of one of r's rows: before and after are results
 * whose row 0 is the row then (NULL: none), read with r->columns, so the
 * entry shows it as the API does.  The id is the row's.  written may be
 * NULL (nothing write-only was sent).
 */
int audit_resource(struct request *req, const struct resource *r,
    enum audit_action action, const PGresult *before,
    const PGresult *after, const struct audit_written *written);

#endif
