/*
 * The audit trail in requests: recording entries (audit_logs.h) and
 * GET /api/v1/audit-logs.
 */
#include "config.h"

#include <string.h>

#include "audit_logs.h"
#include "log.h"

static void
put_json(void *object)
{
    json_object_put(object);
}

int
audit_record(struct request *req, enum audit_action action,
    const char *resource_type, const char *resource_id,
    struct json_object *before, struct json_object *after)
{
    struct audit_entry e;

    memset(&e, 0, sizeof(e));
    e.action = action;
    e.user_id = req->auth.user_id;
    e.resource_type = resource_type;
    e.resource_id = resource_id;
    e.before = before;
    e.after = after;
    e.ip_address = req->remote_addr;
    e.user_agent = req->user_agent;
    return audit_outbox_insert(req->db, req->arena, NULL, req->tenant->id,
        &e, &req->err);
}

/*
 * Row 0 of res as the API shows it (r->write), as a JSON value released
 * with the request's arena; *out is NULL for a NULL res.
 */
static int
row_json(struct request *req, const struct resource *r, const PGresult *res,
    struct json_object **out)
{
    struct json_writer saved = req->json;
    struct buf text = BUF_INIT;
    struct crewd_error err;
    int rc;

    *out = NULL;
    if (res == NULL)
        return 0;

    /* The resource's own writer, aimed at a buffer of ours for a while. */
    jw_init(&req->json, &text);
    r->write(req, res, 0);
    req->json = saved;

    error_clear(&err);
    rc = json_parse(buf_cstr(&text), text.len, out, &err);
    buf_free(&text);
    if (rc < 0 || *out == NULL) {
        log_error("the %s writer made JSON that does not parse: %s",
            r->noun, err.detail);
        return request_fail(req, 500, "internal error");
    }
    arena_defer(req->arena, put_json, *out);
    return 0;
}

int
audit_resource(struct request *req, const struct resource *r,
    enum audit_action action, const PGresult *before,
    const PGresult *after, const struct audit_written *written)
{
    const PGresult *any = after != NULL ? after : before;
    struct json_object *old, *now;

    if (row_json(req, r, before, &old) < 0 ||
        row_json(req, r, after, &now) < 0)
        return -1;

    /* What the API never shows, the trail shows was written. */
    for (size_t i = 0; written != NULL && now != NULL && i < written->n;
         i++) {
        const struct field_value *v = &written->values[i];

        if ((written->specs[i].flags & FIELD_WRITE_ONLY) && v->present)
            json_object_object_add(now, written->specs[i].name,
                v->is_null ? NULL : json_object_new_string(AUDIT_MASK));
    }

    return audit_record(req, action,
        audit_type_from_noun(req->arena, r->noun), db_value(any, 0, 0),
        old, now);
}
