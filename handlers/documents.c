#include "config.h"

#include <stdio.h>
#include <string.h>

#include "common.h"
#include "documents.h"
#include "provision.h"

int
documents_read_body(struct request *req, size_t max,
    struct json_object ***entries, size_t *n, bool *array)
{
    struct json_object *body;
    size_t len;

    if (request_json_value(req, &body) < 0)
        return -1;

    *array = body != NULL && json_object_is_type(body, json_type_array);
    if (body != NULL && json_object_is_type(body, json_type_object)) {
        *entries = arena_alloc(req->arena, sizeof(**entries));
        (*entries)[0] = body;
        *n = 1;
        return 0;
    }
    if (max <= 1 || !*array) {
        error_field(&req->err, "", max <= 1 ? "must be an object"
            : "must be an object or an array of objects");
        return -1;
    }

    len = json_object_array_length(body);
    if (len == 0 || len > max) {
        error_field(&req->err, "", "must hold 1 to %zu entries", max);
        return -1;
    }
    *entries = arena_alloc(req->arena, len * sizeof(**entries));
    for (size_t i = 0; i < len; i++) {
        (*entries)[i] = json_object_array_get_idx(body, i);
        if (!json_object_is_type((*entries)[i], json_type_object))
            error_field(&req->err, arena_printf(req->arena, "/%zu", i),
                "must be an object");
    }
    *n = len;
    return req->err.status != 0 ? -1 : 0;
}

int
documents_read_entry(struct request *req, struct json_object *entry,
    const struct field_spec *specs, size_t n,
    const char *const *server_fields, const char *prefix,
    struct field_value *values)
{
    struct crewd_error *err = &req->err;
    int first = err->nfields;
    int problems = err->nfields + err->fields_dropped;

    /* Said apart from unknown fields, so the client learns why. */
    for (size_t i = 0; server_fields[i] != NULL; i++)
        if (json_object_object_get_ex(entry, server_fields[i], NULL)) {
            error_field(err, arena_printf(req->arena, "/%s",
                server_fields[i]), "is set by the server");
            json_object_object_del(entry, server_fields[i]);
        }
    fields_read(req->arena, entry, specs, n, true, values, err);

    /* The table's pointers start at the entry; the body's at its array. */
    for (int i = first; i < err->nfields; i++) {
        char *field = err->fields[i].field;
        char joined[ERROR_FIELD_NAME_MAX];

        snprintf(joined, sizeof(joined), "%s%s", prefix, field);
        memcpy(field, joined, sizeof(joined));
    }
    return err->nfields + err->fields_dropped > problems ? -1 : 0;
}

int
documents_append_json(struct request *req, bson_t *doc, const char *key,
    struct json_object *value, const char *prefix)
{
    return mongo_append_json(doc, key, value,
        arena_printf(req->arena, "%s/%s", prefix, key), &req->err);
}

void
documents_write(struct json_writer *w, const bson_t *doc,
    const char *const *fields)
{
    bson_iter_t iter;
    char id[UUID_TEXT_LEN + 1];

    jw_object_open(w);
    if (bson_iter_init_find(&iter, doc, "_id") && BSON_ITER_HOLDS_OID(&iter)) {
        mongo_oid_to_uuid(bson_iter_oid(&iter), id);
        jw_kv_string(w, "id", id);
    } else {
        jw_kv_string(w, "id", NULL);
    }
    for (size_t i = 0; fields[i] != NULL; i++) {
        jw_key(w, fields[i]);
        if (bson_iter_init_find(&iter, doc, fields[i]))
            mongo_write_json(w, &iter);
        else
            jw_null(w);
    }
    jw_object_close(w);
}

/* One page being written: documents past limit only say more follow. */
struct page_state {
    struct json_writer *w;
    const char *const *fields;
    int limit;
    int seen;
    char last_timestamp[32];
    char last_id[UUID_TEXT_LEN + 1];
};

static int
write_item(const bson_t *doc, void *context)
{
    struct page_state *page = context;
    bson_iter_t iter;

    if (++page->seen > page->limit)
        return 0;
    documents_write(page->w, doc, page->fields);

    page->last_timestamp[0] = '\0';
    page->last_id[0] = '\0';
    if (bson_iter_init_find(&iter, doc, "timestamp") &&
        BSON_ITER_HOLDS_DATE_TIME(&iter))
        mongo_time_format(bson_iter_date_time(&iter), page->last_timestamp);
    if (bson_iter_init_find(&iter, doc, "_id") && BSON_ITER_HOLDS_OID(&iter))
        mongo_oid_to_uuid(bson_iter_oid(&iter), page->last_id);
    return 0;
}

int
documents_list(struct request *req, enum mongo_kind kind,
    const struct mongo_condition *conditions, size_t nconditions,
    bool descending, const char *const *fields)
{
    struct mongo_query query;
    struct page_state state;
    struct page page;
    struct json_writer *w;

    if (page_read(req, &page) < 0)
        return -1;

    memset(&query, 0, sizeof(query));
    query.conditions = conditions;
    query.nconditions = nconditions;
    query.order_field = "timestamp";
    query.descending = descending;
    query.limit = page.limit + 1;
    if (page.after_ts != NULL) {
        /* The cursor's MAC says we made it; its shape must still be ours. */
        query.has_after = true;
        query.after_value.type = MONGO_DATE;
        query.after_id.type = MONGO_OID;
        if (!mongo_time_parse(page.after_ts, &query.after_value.number) ||
            !mongo_oid_from_uuid(page.after_id, &query.after_id.oid)) {
            request_fail(req, 400, "query parameter cursor is not valid");
            error_field(&req->err, "cursor", "is not a cursor of this list");
            return -1;
        }
    }

    if (provision_ensure(req->db, req->mongo, req->arena, req->tenant->id,
            &req->err) < 0)
        return -1;

    w = response_json(req, 200);
    memset(&state, 0, sizeof(state));
    state.w = w;
    state.fields = fields;
    state.limit = page.limit;

    jw_object_open(w);
    jw_key(w, "items");
    jw_array_open(w);
    if (mongo_find(req->mongo, kind, req->tenant->id, &query, write_item,
            &state, &req->err) < 0)
        return -1;
    jw_array_close(w);
    page_write_next(req, state.seen > page.limit,
        state.last_timestamp[0] != '\0' ? state.last_timestamp : NULL,
        state.last_id[0] != '\0' ? state.last_id : NULL);
    jw_object_close(w);
    return 0;
}

int
documents_condition(struct request *req,
    struct mongo_condition *conditions, size_t *n, const char *field,
    const char *value, const char *const *choices, const char *hint)
{
    const char *known = value;

    /* A filter is a typed value from our own list, never the text sent. */
    if (choices != NULL) {
        known = NULL;
        for (size_t i = 0; choices[i] != NULL; i++)
            if (strcmp(value, choices[i]) == 0)
                known = choices[i];
        if (known == NULL) {
            request_fail(req, 400, "query parameter %s is not valid", field);
            error_field(&req->err, field, "%s", hint);
            return -1;
        }
    }

    memset(&conditions[*n], 0, sizeof(conditions[*n]));
    conditions[*n].field = field;
    conditions[*n].op = MONGO_EQ;
    conditions[*n].value.type = MONGO_STRING;
    conditions[*n].value.string = known;
    (*n)++;
    return 0;
}
