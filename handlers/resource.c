#include "config.h"

#include <stdio.h>
#include <string.h>

#include "audit_logs.h"
#include "log.h"
#include "resource.h"
#include "routes.h"

#define RESOURCE_MAX_FILTERS 8
#define RESOURCE_MAX_PARAMS 40
#define RESOURCE_MAX_FIELDS 32

/* Bound parameters of one statement, numbered as they are added. */
struct params {
    const char *values[RESOURCE_MAX_PARAMS];
    int n;
};

/* Adds a value; returns its placeholder number ($n). */
static int
param_add(struct params *p, const char *value)
{
    if (p->n == RESOURCE_MAX_PARAMS)
        fatal("a statement needs more than %d parameters",
            RESOURCE_MAX_PARAMS);
    p->values[p->n++] = value;
    return p->n;
}

/* " AND tenant_id = $n" for shared tables, "" otherwise. */
static void
scope(struct request *req, const struct resource *r, struct buf *sql,
    struct params *p)
{
    if (r->shared_table)
        buf_printf(sql, " AND tenant_id = $%d",
            param_add(p, req->tenant->id));
}

static const char *
take_sql(struct request *req, struct buf *sql)
{
    const char *out = arena_strdup(req->arena, buf_cstr(sql));

    buf_free(sql);
    return out;
}

static PGresult *
run(struct request *req, const char *sql, const struct params *p)
{
    return db_exec(req->db, req->arena, &req->err, sql, p->n, p->values);
}

/* Reads one filter's value; a bad one is a 400 naming the parameter. */
static const char *
filter_value(struct request *req, const struct list_filter *f,
    const char *text)
{
    char id[UUID_TEXT_LEN + 1];

    switch (f->type) {
    case FIELD_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0)
            return text;
        break;
    case FIELD_UUID:
        if (uuid_parse(text, strlen(text), id))
            return arena_strdup(req->arena, id);
        break;
    case FIELD_ENUM:
        for (size_t i = 0; f->choices[i] != NULL; i++)
            if (strcmp(text, f->choices[i]) == 0)
                return f->choices[i];
        break;
    default:
        break;
    }

    request_fail(req, 400, "query parameter %s is not valid", f->param);
    error_field(&req->err, f->param, f->type == FIELD_BOOL
        ? "must be true or false" : f->type == FIELD_UUID
        ? "must be a UUID" : "must be one of the allowed values");
    return NULL;
}

int
resource_list(struct request *req, const struct resource *r)
{
    const char *allowed[RESOURCE_MAX_FILTERS + 3] = { "limit", "cursor" };
    struct buf sql = BUF_INIT;
    struct params p = { { NULL }, 0 };
    struct page page;
    PGresult *res;
    int rows, shown;

    if (r->nfilters > RESOURCE_MAX_FILTERS)
        fatal("resource %s has too many filters", r->table);
    for (size_t i = 0; i < r->nfilters; i++)
        allowed[i + 2] = r->filters[i].param;
    if (request_query_check(req, allowed) < 0 || page_read(req, &page) < 0)
        return -1;

    param_add(&p, page.limit_text);
    buf_printf(&sql, "SELECT %s FROM %s WHERE true", r->columns, r->table);
    scope(req, r, &sql, &p);
    for (size_t i = 0; i < r->nfilters; i++) {
        const char *text = request_query(req, r->filters[i].param);
        const char *value;

        if (text == NULL)
            continue;
        value = filter_value(req, &r->filters[i], text);
        if (value == NULL) {
            buf_free(&sql);
            return -1;
        }
        buf_printf(&sql, " AND %s = $%d", r->filters[i].column,
            param_add(&p, value));
    }
    if (page.after_ts != NULL) {
        int ts = param_add(&p, page.after_ts);
        int id = param_add(&p, page.after_id);

        buf_printf(&sql, " AND (created_at, id) < ($%d::timestamptz,"
            " $%d::uuid)", ts, id);
    }
    buf_puts(&sql, " ORDER BY created_at DESC, id DESC LIMIT $1");

    request_last_read(req);
    res = run(req, take_sql(req, &sql), &p);
    if (res == NULL)
        return -1;

    rows = PQntuples(res);
    shown = rows > page.limit ? page.limit : rows;
    response_json(req, 200);
    jw_object_open(&req->json);
    jw_key(&req->json, "items");
    jw_array_open(&req->json);
    for (int i = 0; i < shown; i++)
        r->write(req, res, i);
    jw_array_close(&req->json);
    page_write_next(req, rows > page.limit,
        shown > 0 ? db_timestamp(req->arena, res, shown - 1,
                                 r->created_at_column) : NULL,
        shown > 0 ? db_value(res, shown - 1, 0) : NULL);
    jw_object_close(&req->json);
    return 0;
}

PGresult *
resource_fetch(struct request *req, const struct resource *r,
    const char *id)
{
    struct buf sql = BUF_INIT;
    struct params p = { { NULL }, 0 };
    PGresult *res;

    buf_printf(&sql, "SELECT %s FROM %s WHERE id = $%d", r->columns,
        r->table, param_add(&p, id));
    scope(req, r, &sql, &p);
    res = run(req, take_sql(req, &sql), &p);
    if (res == NULL)
        return NULL;
    if (PQntuples(res) == 0) {
        request_fail(req, 404, "no such %s", r->noun);
        return NULL;
    }
    return res;
}

int
resource_respond(struct request *req, const struct resource *r, int status,
    const PGresult *res)
{
    response_json(req, status);
    r->write(req, res, 0);
    response_etag(req, db_value(res, 0, r->ncolumns - 1));
    return 0;
}

int
resource_get(struct request *req, const struct resource *r)
{
    PGresult *res;

    if (request_query_check(req, NULL) < 0)
        return -1;
    request_last_read(req);
    res = resource_fetch(req, r, req->path_ids[0]);
    if (res == NULL)
        return -1;
    return resource_respond(req, r, 200, res);
}

/*
 * Runs the resource's own checks.  On an update, an object field is only
 * a patch until it is merged into the stored value (merge_objects), so
 * the checks see it then, merged, and not before: without_objects leaves
 * object fields out, with it false only they are shown.
 */
static void
validate_some(struct request *req, const struct resource *r,
    struct field_value *values, bool creating, bool without_objects)
{
    struct field_value shown[RESOURCE_MAX_FIELDS];
    bool hidden[RESOURCE_MAX_FIELDS] = { false };

    if (creating) {
        r->validate(req, values, true);
        return;
    }

    memcpy(shown, values, r->nfields * sizeof(*shown));
    for (size_t i = 0; i < r->nfields; i++)
        if ((r->fields[i].type == FIELD_OBJECT) == without_objects &&
            shown[i].present) {
            shown[i].present = false;
            hidden[i] = true;
        }
    r->validate(req, shown, false);

    /* The checks may normalise what they saw (an e-mail, an id). */
    for (size_t i = 0; i < r->nfields; i++)
        if (!hidden[i])
            values[i] = shown[i];
}

int
resource_read_body(struct request *req, const struct resource *r,
    bool creating, struct field_value *values)
{
    struct json_object *body;

    if (r->nfields > RESOURCE_MAX_FIELDS)
        fatal("resource %s has too many fields", r->table);
    if (request_json_object(req, &body) < 0)
        return -1;
    fields_read(req->arena, body, r->fields, r->nfields, creating, values,
        &req->err);
    if (r->validate != NULL)
        validate_some(req, r, values, creating, !creating);
    return req->err.status != 0 ? -1 : 0;
}

static int
refused(struct request *req, const struct resource *r)
{
    if (r->explain != NULL)
        r->explain(req);
    return -1;
}

int
resource_create(struct request *req, const struct resource *r)
{
    struct field_value v[RESOURCE_MAX_FIELDS];

    if (request_query_check(req, NULL) < 0 ||
        resource_read_body(req, r, true, v) < 0)
        return -1;
    return resource_insert(req, r, v);
}

int
resource_insert(struct request *req, const struct resource *r,
    const struct field_value *v)
{
    struct audit_written written = { r->fields, v, r->nfields };
    struct buf columns = BUF_INIT;
    struct buf values = BUF_INIT;
    struct buf sql = BUF_INIT;
    struct params p = { { NULL }, 0 };
    PGresult *res;

    /* Absent fields take the column's default. */
    buf_puts(&columns, "tenant_id");
    buf_printf(&values, "$%d", param_add(&p, req->tenant->id));
    for (size_t i = 0; i < r->nfields; i++) {
        if (!v[i].present)
            continue;
        buf_printf(&columns, ", %s", r->field_columns[i]);
        buf_printf(&values, ", $%d",
            param_add(&p, v[i].is_null ? NULL : v[i].text));
    }
    buf_printf(&sql, "INSERT INTO %s (%s) VALUES (%s) RETURNING %s",
        r->table, buf_cstr(&columns), buf_cstr(&values), r->columns);
    buf_free(&columns);
    buf_free(&values);

    res = run(req, take_sql(req, &sql), &p);
    if (res == NULL)
        return refused(req, r);
    if (audit_resource(req, r, AUDIT_CREATE, NULL, res, &written) < 0)
        return -1;
    response_location(req, r->collection, db_value(res, 0, 0));
    return resource_respond(req, r, 201, res);
}

int
resource_lock(struct request *req, const struct resource *r)
{
    struct buf sql = BUF_INIT;
    struct params p = { { NULL }, 0 };
    PGresult *res;

    buf_printf(&sql, "SELECT " SQL_ETAG " FROM %s WHERE id = $%d",
        r->table, param_add(&p, req->path_ids[0]));
    scope(req, r, &sql, &p);
    buf_puts(&sql, " FOR UPDATE");

    res = run(req, take_sql(req, &sql), &p);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0)
        return request_fail(req, 404, "no such %s", r->noun);
    return precondition_check(req, db_value(res, 0, 0));
}

int
resource_update(struct request *req, const struct resource *r)
{
    struct field_value v[RESOURCE_MAX_FIELDS];

    if (request_query_check(req, NULL) < 0 ||
        resource_read_body(req, r, false, v) < 0 ||
        resource_lock(req, r) < 0)
        return -1;
    return resource_apply(req, r, v);
}

static void
put_json(void *object)
{
    json_object_put(object);
}

/*
 * PATCH is a merge patch all the way down (RFC 7396): an object field in
 * the body is merged into the stored object, a null member removes a
 * key.  The row is locked already, so the stored value cannot change
 * between this read and the UPDATE.
 */
static int
merge_objects(struct request *req, const struct resource *r,
    struct field_value *v)
{
    struct buf sql = BUF_INIT;
    struct params p = { { NULL }, 0 };
    int merged[RESOURCE_MAX_FIELDS];
    int n = 0;
    PGresult *res;

    buf_puts(&sql, "SELECT ");
    for (size_t i = 0; i < r->nfields; i++)
        if (r->fields[i].type == FIELD_OBJECT && v[i].present &&
            !v[i].is_null) {
            buf_printf(&sql, "%s%s", n > 0 ? ", " : "", r->field_columns[i]);
            merged[n++] = (int)i;
        }
    if (n == 0) {
        buf_free(&sql);
        return 0;
    }
    buf_printf(&sql, " FROM %s WHERE id = $%d", r->table,
        param_add(&p, req->path_ids[0]));
    scope(req, r, &sql, &p);

    res = run(req, take_sql(req, &sql), &p);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0)
        return request_fail(req, 404, "no such %s", r->noun);

    for (int k = 0; k < n; k++) {
        int i = merged[k];
        const char *stored = db_value(res, 0, k);
        struct json_object *current = NULL, *result;

        /*
         * Our own parser keeps every number's text: json-c's would clamp
         * an integer past 64 bits that the patch never touched.
         */
        if (stored != NULL) {
            if (json_parse(stored, strlen(stored), &current,
                    &req->err) < 0) {
                log_error("stored %s of %s %s does not parse",
                    r->fields[i].name, r->noun, req->path_ids[0]);
                return request_fail(req, 500, "internal error");
            }
            arena_defer(req->arena, put_json, current);
        }
        result = json_merge_patch(current, v[i].json);
        arena_defer(req->arena, put_json, result);
        v[i].text = fields_object_text(req->arena, &r->fields[i], result,
            arena_printf(req->arena, "/%s", r->fields[i].name), &req->err);
    }
    return req->err.status != 0 ? -1 : 0;
}

int
resource_apply(struct request *req, const struct resource *r,
    const struct field_value *values)
{
    struct field_value v[RESOURCE_MAX_FIELDS];
    struct audit_written written = { r->fields, v, r->nfields };
    struct buf sql = BUF_INIT;
    struct params p = { { NULL }, 0 };
    PGresult *before, *res;

    /* An empty merge patch changes nothing, not even updated_at. */
    if (fields_none_present(values, r->nfields))
        return resource_get(req, r);

    memcpy(v, values, r->nfields * sizeof(*v));
    if (merge_objects(req, r, v) < 0)
        return -1;
    if (r->validate != NULL) {
        validate_some(req, r, v, false, false);
        if (req->err.status != 0)
            return -1;
    }

    /* The row is locked: this is what the UPDATE changes, for the trail. */
    before = resource_fetch(req, r, req->path_ids[0]);
    if (before == NULL)
        return -1;

    buf_printf(&sql, "UPDATE %s SET ", r->table);
    for (size_t i = 0; i < r->nfields; i++)
        if (v[i].present)
            buf_printf(&sql, "%s = $%d, ", r->field_columns[i],
                param_add(&p, v[i].is_null ? NULL : v[i].text));

    /* Every change moves the ETag, even two within one microsecond. */
    buf_printf(&sql, "updated_at = greatest(now(), updated_at + "
        "interval '1 microsecond') WHERE id = $%d",
        param_add(&p, req->path_ids[0]));
    scope(req, r, &sql, &p);
    buf_printf(&sql, " RETURNING %s", r->columns);

    res = run(req, take_sql(req, &sql), &p);
    if (res == NULL)
        return refused(req, r);
    if (audit_resource(req, r, AUDIT_UPDATE, before, res, &written) < 0)
        return -1;
    return resource_respond(req, r, 200, res);
}

int
resource_delete_locked(struct request *req, const struct resource *r)
{
    struct buf sql = BUF_INIT;
    struct params p = { { NULL }, 0 };
    PGresult *res;

    buf_printf(&sql, "DELETE FROM %s WHERE id = $%d", r->table,
        param_add(&p, req->path_ids[0]));
    scope(req, r, &sql, &p);
    buf_printf(&sql, " RETURNING %s", r->columns);
    res = run(req, take_sql(req, &sql), &p);
    if (res == NULL)
        return refused(req, r);
    if (PQntuples(res) == 0)
        return request_fail(req, 404, "no such %s", r->noun);
    if (audit_resource(req, r, AUDIT_DELETE, res, NULL, NULL) < 0)
        return -1;

    response_empty(req, 204);
    return 0;
}

int
resource_delete(struct request *req, const struct resource *r)
{
    if (request_query_check(req, NULL) < 0 || resource_lock(req, r) < 0)
        return -1;
    return resource_delete_locked(req, r);
}

/* The resource of the route being served; the table must name one. */
static const struct resource *
route_resource(struct request *req)
{
    if (req->route == NULL || req->route->resource == NULL)
        fatal("route %s %s has no resource", req->method, req->path);
    return req->route->resource;
}

int
resource_list_route(struct request *req)
{
    return resource_list(req, route_resource(req));
}

int
resource_get_route(struct request *req)
{
    return resource_get(req, route_resource(req));
}

int
resource_create_route(struct request *req)
{
    return resource_create(req, route_resource(req));
}

int
resource_update_route(struct request *req)
{
    return resource_update(req, route_resource(req));
}

int
resource_delete_route(struct request *req)
{
    return resource_delete(req, route_resource(req));
}
