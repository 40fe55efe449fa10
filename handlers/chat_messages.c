/*
 * Chat messages: POST and GET /api/v1/conversations/{id}/messages.
 *
 * A conversation is named by the client with a UUID of its choosing (the
 * path's {id}, canonicalised) and exists as soon as it has a message; a
 * conversation without messages is an empty list, not a 404.  Messages
 * are documents in the tenant's chat_messages_<tenant id> collection in
 * MongoDB (lib/mongo.h); the server sets conversation_id, timestamp and
 * id.  GET lists them oldest first, filtered by ?role=.
 *
 * While MongoDB is unreachable both answer 503 with Retry-After.
 */
#include "config.h"

#include <string.h>

#include "audit_logs.h"
#include "documents.h"
#include "handlers.h"
#include "provision.h"

#define MESSAGE_CONTENT_MAX (1024 * 1024)
#define TOOL_CALLS_MAX 128

/*
 * What a client sends, but tool_calls, which is an array of objects
 * (fields.h has no arrays) and read apart.
 */
static const struct field_spec message_fields[] = {
    { "role", FIELD_ENUM, FIELD_REQUIRED, 0, 0, 0, mongo_chat_roles },
    { "content", FIELD_TEXT, FIELD_REQUIRED, MESSAGE_CONTENT_MAX, 0, 0,
      NULL },
    { "metadata", FIELD_OBJECT, FIELD_NULLABLE, 0, 0, 0, NULL },
};

#define MESSAGE_NFIELDS (sizeof(message_fields) / sizeof(message_fields[0]))
enum { MESSAGE_ROLE, MESSAGE_CONTENT, MESSAGE_METADATA };

static const char *const message_server_fields[] = {
    "conversation_id", "timestamp", NULL
};

/* What a message shows, after its id. */
static const char *const message_shown[] = {
    "conversation_id", "role", "content", "tool_calls", "metadata",
    "timestamp", NULL
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

/*
 * Takes tool_calls out of the body: NULL when absent or null, else an
 * array of at most TOOL_CALLS_MAX objects (a 422 otherwise).  *bad tells
 * a refusal apart from an absence.
 */
static struct json_object *
take_tool_calls(struct request *req, struct json_object *body, bool *bad)
{
    struct json_object *calls;
    size_t n;

    *bad = false;
    if (!json_object_object_get_ex(body, "tool_calls", &calls))
        return NULL;
    if (calls != NULL) {
        json_object_get(calls);
        arena_defer(req->arena, release_json, calls);
    }
    json_object_object_del(body, "tool_calls");
    if (calls == NULL)
        return NULL;

    if (!json_object_is_type(calls, json_type_array)) {
        error_field(&req->err, "/tool_calls", "must be an array");
        *bad = true;
        return NULL;
    }
    n = json_object_array_length(calls);
    if (n > TOOL_CALLS_MAX) {
        error_field(&req->err, "/tool_calls", "must hold at most %d calls",
            TOOL_CALLS_MAX);
        *bad = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (!json_object_is_type(json_object_array_get_idx(calls, i),
                json_type_object)) {
            error_field(&req->err, arena_printf(req->arena,
                "/tool_calls/%zu", i), "must be an object");
            *bad = true;
        }
    return *bad ? NULL : calls;
}

static void
write_message(struct request *req, const void *doc)
{
    documents_write(&req->json, doc, message_shown);
}

/* The audit entry of a new message: the message as the API shows it. */
static int
audit_message(struct request *req, const bson_t *doc, const bson_oid_t *oid)
{
    struct json_object *after;
    char id[UUID_TEXT_LEN + 1];

    mongo_oid_to_uuid(oid, id);
    if (audit_capture(req, write_message, doc, &after) < 0)
        return -1;
    return audit_record(req, AUDIT_CREATE, "chat_message", id, NULL, after);
}

int
chat_messages_create(struct request *req)
{
    const char *conversation_id = req->path_ids[0];
    struct field_value v[MESSAGE_NFIELDS];
    struct json_object **entries, *tool_calls;
    const bson_t *docs[1];
    struct json_writer *w;
    bson_oid_t oid;
    bson_t *doc;
    size_t n;
    bool array, bad_calls;

    if (request_query_check(req, NULL) < 0 ||
        documents_read_body(req, 1, &entries, &n, &array) < 0)
        return -1;

    tool_calls = take_tool_calls(req, entries[0], &bad_calls);
    if (documents_read_entry(req, entries[0], message_fields,
            MESSAGE_NFIELDS, message_server_fields, "", v) < 0 || bad_calls)
        return -1;

    doc = bson_new();
    arena_defer(req->arena, release_bson, doc);
    mongo_oid_new(req->mongo, &oid);
    BSON_APPEND_OID(doc, "_id", &oid);
    BSON_APPEND_UTF8(doc, "conversation_id", conversation_id);
    BSON_APPEND_UTF8(doc, "role", v[MESSAGE_ROLE].text);
    BSON_APPEND_UTF8(doc, "content", v[MESSAGE_CONTENT].text);
    /* Both are appended, so a bad name in each is reported. */
    if (tool_calls != NULL)
        documents_append_json(req, doc, "tool_calls", tool_calls, "");
    if (v[MESSAGE_METADATA].json != NULL)
        documents_append_json(req, doc, "metadata",
            v[MESSAGE_METADATA].json, "");
    if (req->err.status != 0)
        return -1;
    BSON_APPEND_DATE_TIME(doc, "timestamp", mongo_now_ms());

    /* The collection's own rules, whether or not the server checks. */
    if (mongo_doc_check(MONGO_CHAT_MESSAGES, doc, "", &req->err) < 0)
        return -1;

    /* Before the write: a failure of either leaves neither. */
    if (audit_message(req, doc, &oid) < 0)
        return -1;

    docs[0] = doc;
    if (provision_ensure(req->db, req->mongo, req->arena, req->tenant->id,
            &req->err) < 0 ||
        mongo_insert_many(req->mongo, MONGO_CHAT_MESSAGES, req->tenant->id,
            docs, 1, 0, &req->err) < 0)
        return -1;

    response_header(req, "Location", "/api/v1/conversations/%s/messages",
        conversation_id);
    w = response_json(req, 201);
    documents_write(w, doc, message_shown);
    return 0;
}

int
chat_messages_list(struct request *req)
{
    static const char *const allowed[] = {
        "role", "limit", "cursor", NULL
    };
    struct mongo_condition conditions[2];
    const char *role;
    size_t n = 0;

    if (request_query_check(req, allowed) < 0)
        return -1;

    if (documents_condition(req, conditions, &n, "conversation_id",
            req->path_ids[0], NULL, NULL) < 0)
        return -1;

    role = request_query(req, "role");
    if (role != NULL && documents_condition(req, conditions, &n, "role",
            role, mongo_chat_roles,
            "must be user, assistant, system or tool") < 0)
        return -1;

    /* Oldest first: a conversation reads top to bottom. */
    return documents_list(req, MONGO_CHAT_MESSAGES, conditions, n, false,
        message_shown);
}
