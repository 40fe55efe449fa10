/*
 * Execution logs: POST and GET /api/v1/executions/{id}/logs.
 *
 * An entry is a document in the tenant's execution_logs_<tenant id>
 * collection in MongoDB (lib/mongo.h), written only for an execution of
 * the calling tenant (its row is looked up in the tenant's schema first:
 * 404 otherwise).  POST takes one entry or an array of up to 1000, checks
 * every entry before anything is written (one problem anywhere: nothing
 * is) and writes them in one ordered insert_many; the server sets
 * execution_id (from the path), timestamp and id.  GET lists them newest
 * first, filtered by ?level=.
 *
 * While MongoDB is unreachable both answer 503 with Retry-After; the
 * execution itself, in PostgreSQL, is untouched either way.
 */
#include "config.h"

#include <string.h>

#include "audit_logs.h"
#include "documents.h"
#include "handlers.h"
#include "provision.h"

#define LOG_BATCH_MAX 1000
#define LOG_MESSAGE_MAX 65536
#define LOG_NODE_ID_MAX 255

static const char SQL_EXECUTION_EXISTS[] =
    "SELECT 1 FROM executions WHERE id = $1";

/* What a client sends for one entry; the order is used below. */
static const struct field_spec log_fields[] = {
    { "level", FIELD_ENUM, FIELD_REQUIRED, 0, 0, 0, mongo_log_levels },
    { "message", FIELD_TEXT, FIELD_REQUIRED, LOG_MESSAGE_MAX, 0, 0, NULL },
    { "node_id", FIELD_STRING, FIELD_NULLABLE, LOG_NODE_ID_MAX, 0, 0, NULL },
    { "metadata", FIELD_OBJECT, FIELD_NULLABLE, 0, 0, 0, NULL },
};

#define LOG_NFIELDS (sizeof(log_fields) / sizeof(log_fields[0]))
enum { LOG_LEVEL, LOG_MESSAGE, LOG_NODE_ID, LOG_METADATA };

static const char *const log_server_fields[] = {
    "execution_id", "timestamp", NULL
};

/* What an entry shows, after its id. */
static const char *const log_shown[] = {
    "execution_id", "node_id", "level", "message", "metadata", "timestamp",
    NULL
};

static void
release_bson(void *doc)
{
    bson_destroy(doc);
}

static void
release_json(void *value)
{
    json_object_put(value);
}

/* 404 unless the path names an execution of the calling tenant. */
static int
execution_check(struct request *req)
{
    const char *params[1] = { req->path_ids[0] };
    PGresult *res;

    res = db_exec(req->db, req->arena, &req->err, SQL_EXECUTION_EXISTS, 1,
        params);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0)
        return request_fail(req, 404, "no such execution");
    return 0;
}

/*
 * The document of one entry whose fields were read; NULL with the
 * problems added to req->err.
 */
static bson_t *
log_document(struct request *req, const struct field_value *v,
    int64_t now, const char *prefix)
{
    bson_t *doc = bson_new();
    bson_oid_t oid;

    arena_defer(req->arena, release_bson, doc);
    mongo_oid_new(req->mongo, &oid);
    BSON_APPEND_OID(doc, "_id", &oid);
    BSON_APPEND_UTF8(doc, "execution_id", req->path_ids[0]);
    if (v[LOG_NODE_ID].text != NULL)
        BSON_APPEND_UTF8(doc, "node_id", v[LOG_NODE_ID].text);
    BSON_APPEND_UTF8(doc, "level", v[LOG_LEVEL].text);
    BSON_APPEND_UTF8(doc, "message", v[LOG_MESSAGE].text);
    if (v[LOG_METADATA].json != NULL &&
        documents_append_json(req, doc, "metadata", v[LOG_METADATA].json,
            prefix) < 0)
        return NULL;
    BSON_APPEND_DATE_TIME(doc, "timestamp", now);

    /* The collection's own rules, whether or not the server checks. */
    if (mongo_doc_check(MONGO_EXECUTION_LOGS, doc, prefix, &req->err) < 0)
        return NULL;
    return doc;
}

/*
 * The audit entry of a batch: how many entries the execution got (the
 * entries themselves are in the log, not copied into the trail).
 */
static int
audit_logs_written(struct request *req, size_t n)
{
    struct json_object *after = json_object_new_object();

    arena_defer(req->arena, release_json, after);
    json_object_object_add(after, "execution_id",
        json_object_new_string(req->path_ids[0]));
    json_object_object_add(after, "count", json_object_new_int64((int64_t)n));
    return audit_record(req, AUDIT_CREATE, "execution_log",
        req->path_ids[0], NULL, after);
}

int
execution_logs_create(struct request *req)
{
    struct json_object **entries;
    const bson_t **docs;
    struct json_writer *w;
    int64_t now = mongo_now_ms();
    size_t n;
    bool array;

    if (request_query_check(req, NULL) < 0 ||
        documents_read_body(req, LOG_BATCH_MAX, &entries, &n, &array) < 0 ||
        execution_check(req) < 0)
        return -1;

    /* Every entry is checked, so one answer names every problem. */
    docs = arena_alloc(req->arena, n * sizeof(*docs));
    for (size_t i = 0; i < n; i++) {
        const char *prefix = array ? arena_printf(req->arena, "/%zu", i)
                                   : "";
        struct field_value v[LOG_NFIELDS];

        docs[i] = NULL;
        if (documents_read_entry(req, entries[i], log_fields, LOG_NFIELDS,
                log_server_fields, prefix, v) == 0)
            docs[i] = log_document(req, v, now, prefix);
    }
    if (req->err.status != 0)
        return -1;

    /* Before the write: a failure of either leaves neither. */
    if (audit_logs_written(req, n) < 0 ||
        provision_ensure(req->db, req->mongo, req->arena, req->tenant->id,
            &req->err) < 0 ||
        mongo_insert_many(req->mongo, MONGO_EXECUTION_LOGS, req->tenant->id,
            docs, n, 0, &req->err) < 0)
        return -1;

    response_header(req, "Location", "/api/v1/executions/%s/logs",
        req->path_ids[0]);
    w = response_json(req, 201);
    if (!array) {
        documents_write(w, docs[0], log_shown);
        return 0;
    }
    jw_object_open(w);
    jw_key(w, "items");
    jw_array_open(w);
    for (size_t i = 0; i < n; i++)
        documents_write(w, docs[i], log_shown);
    jw_array_close(w);
    jw_object_close(w);
    return 0;
}

int
execution_logs_list(struct request *req)
{
    static const char *const allowed[] = {
        "level", "limit", "cursor", NULL
    };
    struct mongo_condition conditions[2];
    const char *level;
    size_t n = 0;

    if (request_query_check(req, allowed) < 0 || execution_check(req) < 0)
        return -1;

    if (documents_condition(req, conditions, &n, "execution_id",
            req->path_ids[0], NULL, NULL) < 0)
        return -1;

    level = request_query(req, "level");
    if (level != NULL && documents_condition(req, conditions, &n, "level",
            level, mongo_log_levels,
            "must be debug, info, warning or error") < 0)
        return -1;

    return documents_list(req, MONGO_EXECUTION_LOGS, conditions, n, true,
        log_shown);
}
