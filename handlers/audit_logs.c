/*
 * The audit trail in requests: recording entries (audit_logs.h) and
 * GET /api/v1/audit-logs.
 */
#include "config.h"

#include <string.h>

#include "audit_logs.h"
#include "handlers.h"
#include "log.h"
#include "mongo.h"
#include "routes.h"

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

int
audit_capture(struct request *req,
    void (*write)(struct request *req, const void *thing),
    const void *thing, struct json_object **out)
{
    struct json_writer saved = req->json;
    struct buf text = BUF_INIT;
    struct crewd_error err;
    int rc;

    jw_init(&req->json, &text);
    write(req, thing);
    req->json = saved;

    error_clear(&err);
    rc = json_parse(buf_cstr(&text), text.len, out, &err);
    buf_free(&text);
    if (rc < 0 || *out == NULL) {
        log_error("a writer made JSON that does not parse: %s", err.detail);
        return request_fail(req, 500, "internal error");
    }
    arena_defer(req->arena, put_json, *out);
    return 0;
}

/* A row and the resource that shows it, for audit_capture. */
struct shown_row {
    const struct resource *r;
    const PGresult *res;
};

static void
write_row(struct request *req, const void *thing)
{
    const struct shown_row *row = thing;

    row->r->write(req, row->res, 0);
}

/* Row 0 of res as the API shows it; *out is NULL for a NULL res. */
static int
row_json(struct request *req, const struct resource *r, const PGresult *res,
    struct json_object **out)
{
    struct shown_row row = { r, res };

    *out = NULL;
    if (res == NULL)
        return 0;
    return audit_capture(req, write_row, &row, out);
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

/* ----------------------------------------------------------------------
 * GET /api/v1/audit-logs
 * -------------------------------------------------------------------- */

/* What the list keeps of the documents as mongo_find hands them over. */
struct listing {
    struct request *req;
    int64_t limit;
    int64_t shown;
    bool more;
    int64_t last_ms;
    bson_oid_t last_id;
};

static int
list_one(const bson_t *doc, void *context)
{
    struct listing *l = context;
    bson_iter_t iter;

    /* The one past the page only says that another page follows. */
    if (l->shown == l->limit) {
        l->more = true;
        return 0;
    }
    audit_write_entry(&l->req->json, doc);
    l->shown++;

    if (bson_iter_init_find(&iter, doc, "timestamp") &&
        BSON_ITER_HOLDS_DATE_TIME(&iter))
        l->last_ms = bson_iter_date_time(&iter);
    if (bson_iter_init_find(&iter, doc, "_id") && BSON_ITER_HOLDS_OID(&iter))
        bson_oid_copy(bson_iter_oid(&iter), &l->last_id);
    return 0;
}

/* A 400 naming the query parameter. */
static int
bad_filter(struct request *req, const char *name, const char *why)
{
    request_fail(req, 400, "query parameter %s is not valid", name);
    error_field(&req->err, name, "%s", why);
    return -1;
}

/* Adds ?name= as "field == value" when given: a UUID, canonical. */
static int
uuid_filter(struct request *req, const char *name,
    struct mongo_condition *c, size_t *n)
{
    const char *text = request_query(req, name);
    char *id;

    if (text == NULL)
        return 0;
    id = arena_alloc(req->arena, UUID_TEXT_LEN + 1);
    if (!uuid_parse(text, strlen(text), id))
        return bad_filter(req, name, "must be a UUID");
    c[*n].field = name;
    c[*n].op = MONGO_EQ;
    c[*n].value.type = MONGO_STRING;
    c[*n].value.string = id;
    (*n)++;
    return 0;
}

/* ?resource_type=, of the shape every type has ("llm_provider"). */
static int
type_filter(struct request *req, struct mongo_condition *c, size_t *n)
{
    const char *text = request_query(req, "resource_type");

    if (text == NULL)
        return 0;
    if (!audit_type_valid(text))
        return bad_filter(req, "resource_type", "must be a resource type: "
            "lower-case letters and '_'");
    c[*n].field = "resource_type";
    c[*n].op = MONGO_EQ;
    c[*n].value.type = MONGO_STRING;
    c[*n].value.string = text;
    (*n)++;
    return 0;
}

/*
 * The tenant's audit collection, newest first: (timestamp, _id)
 * descending, and a cursor that names the last entry shown.  Entries
 * reach the collection through the shipper, a moment after their change
 * committed.
 */
int
audit_logs_list(struct request *req)
{
    static const char *const allowed[] = {
        "limit", "cursor", "user_id", "resource_type", "resource_id", NULL
    };
    struct mongo_condition conditions[3];
    struct mongo_query query;
    struct listing listing;
    struct page page;
    char last_id[UUID_TEXT_LEN + 1];
    char last_ts[32];
    size_t n = 0;

    if (request_query_check(req, allowed) < 0 || page_read(req, &page) < 0 ||
        uuid_filter(req, "user_id", conditions, &n) < 0 ||
        type_filter(req, conditions, &n) < 0 ||
        uuid_filter(req, "resource_id", conditions, &n) < 0)
        return -1;

    memset(&query, 0, sizeof(query));
    query.conditions = conditions;
    query.nconditions = n;
    query.order_field = "timestamp";
    query.descending = true;
    query.limit = page.limit + 1;
    if (page.after_ts != NULL) {
        query.has_after = true;
        query.after_value.type = MONGO_DATE;
        query.after_id.type = MONGO_OID;
        if (!mongo_time_parse(page.after_ts, &query.after_value.number) ||
            !mongo_oid_from_uuid(page.after_id, &query.after_id.oid))
            return bad_filter(req, "cursor",
                "is not a cursor this server made");
    }

    memset(&listing, 0, sizeof(listing));
    listing.req = req;
    listing.limit = page.limit;
    response_json(req, 200);
    jw_object_open(&req->json);
    jw_key(&req->json, "items");
    jw_array_open(&req->json);
    if (mongo_find(req->mongo, MONGO_AUDIT_LOGS, req->tenant->id, &query,
            list_one, &listing, &req->err) < 0)
        return -1;
    jw_array_close(&req->json);

    mongo_time_format(listing.last_ms, last_ts);
    mongo_oid_to_uuid(&listing.last_id, last_id);
    page_write_next(req, listing.more, listing.shown > 0 ? last_ts : NULL,
        last_id);
    jw_object_close(&req->json);
    return 0;
}

/* ----------------------------------------------------------------------
 * Reads, for tenants that audit them.
 * -------------------------------------------------------------------- */

/* The routes whose type the path does not tell by itself. */
static const struct {
    const char *pattern;
    const char *type;
} read_types[] = {
    { "/api/v1/crews/{id}/agents", "crew" },
    { "/api/v1/executions/{id}/logs", "execution_log" },
    { "/api/v1/conversations/{id}/messages", "chat_message" },
    { "/api/v1/users/me", "user" },
};

/*
 * The resource type a read names: its resource's, one of the list above,
 * or the first segment after /api/v1/ made singular ("audit-logs" ->
 * "audit_log", "tenant" -> "tenant").
 */
static const char *
read_type(struct request *req)
{
    const char *pattern = req->route->pattern;
    const char *segment;
    char *type;
    size_t len;

    if (req->route->resource != NULL)
        return audit_type_from_noun(req->arena, req->route->resource->noun);
    for (size_t i = 0; i < sizeof(read_types) / sizeof(read_types[0]); i++)
        if (strcmp(pattern, read_types[i].pattern) == 0)
            return read_types[i].type;

    segment = pattern + strlen("/api/v1/");
    len = strcspn(segment, "/");
    type = arena_strndup(req->arena, segment, len);
    if (len > 1 && type[len - 1] == 's')
        type[len - 1] = '\0';
    for (char *p = type; *p != '\0'; p++)
        if (*p == '-')
            *p = '_';
    return type;
}

int
audit_read(struct request *req)
{
    const char *pattern = req->route->pattern;
    const char *type = read_type(req);
    const char *id = NULL;

    if (strstr(pattern, "{id}") != NULL)
        id = req->path_ids[0];
    else if (strcmp(pattern, "/api/v1/users/me") == 0)
        id = req->auth.user_id;
    else if (strcmp(pattern, "/api/v1/tenant") == 0)
        id = req->tenant->id;

    if (!audit_type_valid(type)) {
        log_error("no audit type for reads of %s", pattern);
        return request_fail(req, 500, "internal error");
    }
    return audit_record(req, AUDIT_READ, type, id, NULL, NULL);
}
