/*
 * The MongoDB client of one process: connection, availability, the
 * tenant collections' names, provisioning, inserts and finds.  mongo.h
 * says what each function promises; mongo_doc.c holds the documents'
 * rules and conversions.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mongoc/mongoc.h>

#include "arena.h"
#include "log.h"
#include "mongo.h"
#include "mongo_schema.h"
#include "uuid.h"

/* Defaults for options the URI leaves out (see mongo_connect). */
#define SERVER_SELECTION_TIMEOUT_MS 2000
#define CONNECT_TIMEOUT_MS 2000
#define SOCKET_TIMEOUT_MS 10000

/* MongoDB's limits: database names, and "db.collection" (4.4 and later). */
#define DATABASE_NAME_MAX 63
#define NAMESPACE_MAX 255
#define DEFAULT_DATABASE "crewd"

/* Server error codes we act on. */
#define CODE_NAMESPACE_NOT_FOUND 26
#define CODE_NAMESPACE_EXISTS 48
#define CODE_DUPLICATE_KEY 11000

struct mongo {
    bool configured;
    mongoc_client_t *client;
    bson_context_t *oid_context;
    char database[DATABASE_NAME_MAX + 1];

    /* Availability: known down until this monotonic second. */
    double down_until;
    bool down;              /* last operation failed for want of a server */
};

/*
 * One index of a tenant collection.  A TTL index takes its
 * expireAfterSeconds from the tenant's struct mongo_ttl.
 */
struct index_spec {
    const char *name;
    const char *fields[2];
    int directions[2];
    bool ttl;
};

static const struct index_spec execution_log_indexes[] = {
    { "execution_id_1_timestamp_-1", { "execution_id", "timestamp" },
      { 1, -1 }, false },
    { "timestamp_1", { "timestamp", NULL }, { 1, 0 }, true },
};

static const struct index_spec chat_message_indexes[] = {
    { "conversation_id_1_timestamp_1", { "conversation_id", "timestamp" },
      { 1, 1 }, false },
    { "timestamp_1", { "timestamp", NULL }, { 1, 0 }, true },
};

static const struct index_spec audit_log_indexes[] = {
    { "user_id_1_timestamp_-1", { "user_id", "timestamp" }, { 1, -1 },
      false },
    { "resource_type_1_resource_id_1", { "resource_type", "resource_id" },
      { 1, 1 }, false },
};

static const struct {
    const struct index_spec *specs;
    size_t n;
} kind_indexes[MONGO_KIND_COUNT] = {
    [MONGO_EXECUTION_LOGS] = { execution_log_indexes, 2 },
    [MONGO_CHAT_MESSAGES] = { chat_message_indexes, 2 },
    [MONGO_AUDIT_LOGS] = { audit_log_indexes, 2 },
};

static double
monotonic_seconds(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* ----------------------------------------------------------------------
 * The URI and the client.
 * -------------------------------------------------------------------- */

/* MongoDB's rule for database names (the strictest, Windows', set). */
static bool
database_name_allowed(const char *name)
{
    size_t len = strlen(name);

    return len > 0 && len <= DATABASE_NAME_MAX &&
        strpbrk(name, "/\\. \"$*<>:|?") == NULL;
}

bool
mongo_uri_valid(const char *text, char *why, size_t why_size)
{
    mongoc_uri_t *uri;
    const char *database;
    bson_error_t e;
    bool ok = true;

    if (text[0] == '\0')
        return true;

    mongoc_init();
    uri = mongoc_uri_new_with_error(text, &e);
    if (uri == NULL) {
        snprintf(why, why_size, "%s", e.message);
        return false;
    }
    database = mongoc_uri_get_database(uri);
    if (database != NULL && !database_name_allowed(database)) {
        snprintf(why, why_size, "\"%s\" is not a database name MongoDB "
            "allows", database);
        ok = false;
    }
    mongoc_uri_destroy(uri);
    return ok;
}

static void
default_int32(mongoc_uri_t *uri, const char *option, int32_t value)
{
    if (!mongoc_uri_has_option(uri, option))
        mongoc_uri_set_option_as_int32(uri, option, value);
}

struct mongo *
mongo_connect(const char *text, struct crewd_error *err)
{
    struct mongo *m = xcalloc(1, sizeof(*m));
    mongoc_uri_t *uri;
    const char *database;
    bson_error_t e;

    snprintf(m->database, sizeof(m->database), "%s", DEFAULT_DATABASE);
    if (text[0] == '\0')
        return m;

    mongoc_init();
    uri = mongoc_uri_new_with_error(text, &e);
    if (uri == NULL) {
        error_set(err, 0, "mongodb_uri is not valid: %s", e.message);
        free(m);
        return NULL;
    }

    /*
     * A single-threaded client gives up on a server for five seconds
     * after a failed check unless serverSelectionTryOnce is false; with
     * it false and a short selection timeout, an outage costs each
     * operation the timeout and the first one after a restart succeeds.
     */
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTRYONCE))
        mongoc_uri_set_option_as_bool(uri, MONGOC_URI_SERVERSELECTIONTRYONCE,
            false);
    default_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
        SERVER_SELECTION_TIMEOUT_MS);
    default_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, CONNECT_TIMEOUT_MS);
    default_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, SOCKET_TIMEOUT_MS);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_APPNAME))
        mongoc_uri_set_appname(uri, "crewd");

    database = mongoc_uri_get_database(uri);
    if (database != NULL) {
        if (!database_name_allowed(database)) {
            error_set(err, 0, "mongodb_uri names a database MongoDB does "
                "not allow");
            mongoc_uri_destroy(uri);
            free(m);
            return NULL;
        }
        snprintf(m->database, sizeof(m->database), "%s", database);
    }

    m->client = mongoc_client_new_from_uri_with_error(uri, &e);
    mongoc_uri_destroy(uri);
    if (m->client == NULL) {
        error_set(err, 0, "mongodb_uri is not usable: %s", e.message);
        free(m);
        return NULL;
    }
    mongoc_client_set_error_api(m->client, MONGOC_ERROR_API_VERSION_2);

    /* Made here, after fork(): no two workers share ObjectId state. */
    m->oid_context = bson_context_new(BSON_CONTEXT_NONE);
    m->configured = true;
    return m;
}

void
mongo_close(struct mongo *m)
{
    if (m == NULL)
        return;
    if (m->client != NULL)
        mongoc_client_destroy(m->client);
    if (m->oid_context != NULL)
        bson_context_destroy(m->oid_context);
    free(m);
}

bool
mongo_configured(const struct mongo *m)
{
    return m != NULL && m->configured;
}

bool
mongo_available(const struct mongo *m)
{
    return mongo_configured(m) &&
        (!m->down || monotonic_seconds() >= m->down_until);
}

void
mongo_oid_new(struct mongo *m, bson_oid_t *oid)
{
    bson_oid_init(oid, m != NULL ? m->oid_context : NULL);
}

/* ----------------------------------------------------------------------
 * Failures.
 * -------------------------------------------------------------------- */

/* Server errors that mean "no usable server right now". */
static bool
server_code_unavailable(uint32_t code)
{
    static const uint32_t codes[] = {
        6,      /* HostUnreachable */
        7,      /* HostNotFound */
        89,     /* NetworkTimeout */
        91,     /* ShutdownInProgress */
        189,    /* PrimarySteppedDown */
        10107,  /* NotWritablePrimary */
        11600,  /* InterruptedAtShutdown */
        11602,  /* InterruptedDueToReplStateChange */
        13435,  /* NotPrimaryNoSecondaryOk */
        13436,  /* NotPrimaryOrSecondary */
    };

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (codes[i] == code)
            return true;
    return false;
}

static bool
unreachable(const bson_error_t *e)
{
    return e->domain == MONGOC_ERROR_SERVER_SELECTION ||
        e->domain == MONGOC_ERROR_STREAM ||
        (e->domain == MONGOC_ERROR_SERVER && server_code_unavailable(e->code))
        || (e->domain == MONGOC_ERROR_WRITE_CONCERN &&
            server_code_unavailable(e->code));
}

/* The start of every operation: configured, and not in a pause. */
static int
begin(struct mongo *m, struct crewd_error *err)
{
    if (!mongo_configured(m))
        return error_set(err, 503, "MongoDB is not configured on this "
            "server (mongodb_uri)");
    if (!mongo_available(m)) {
        err->retry_after = MONGO_RETRY_AFTER;
        return error_set(err, 503, "MongoDB is unavailable; try again "
            "later");
    }
    return 0;
}

static void
succeeded(struct mongo *m)
{
    if (m->down) {
        log_info("MongoDB answers again");
        m->down = false;
    }
}

/* Operations of this process that failed, for /metrics. */
static unsigned long long failures;

unsigned long long
mongo_failure_count(void)
{
    return failures;
}

/*
 * Turns a driver error into err: an unreachable server is a 503 and
 * starts a pause; anything else is our fault, a 500, logged once here.
 */
static int
failed(struct mongo *m, const bson_error_t *e, const char *action,
    struct crewd_error *err)
{
    failures++;
    if (unreachable(e)) {
        if (!m->down)
            log_warn("MongoDB is unreachable (while %s): %s", action,
                e->message);
        m->down = true;
        m->down_until = monotonic_seconds() + MONGO_RETRY_AFTER;
        error_set(err, 503, "MongoDB is unavailable; try again later");
        err->retry_after = MONGO_RETRY_AFTER;
        return -1;
    }
    log_error("MongoDB refused %s: %s (domain %" PRIu32 ", code %" PRIu32
        ")", action, e->message, e->domain, e->code);
    return error_set(err, 500, "internal error");
}

int
mongo_ping(struct mongo *m, struct crewd_error *err)
{
    bson_t *command = BCON_NEW("ping", BCON_INT32(1));
    bson_t reply;
    bson_error_t e;
    bool ok;

    if (begin(m, err) < 0) {
        bson_destroy(command);
        return -1;
    }
    ok = mongoc_client_command_simple(m->client, "admin", command, NULL,
        &reply, &e);
    bson_destroy(command);
    bson_destroy(&reply);
    if (!ok)
        return failed(m, &e, "pinging", err);
    succeeded(m);
    return 0;
}

/* ----------------------------------------------------------------------
 * Names.
 * -------------------------------------------------------------------- */

/* MongoDB's rules for a collection name in our database. */
static bool
collection_name_allowed(const struct mongo *m, const char *name)
{
    const char *database = m != NULL ? m->database : DEFAULT_DATABASE;

    return name[0] != '\0' && strchr(name, '$') == NULL &&
        strncmp(name, "system.", 7) != 0 &&
        strlen(database) + 1 + strlen(name) <= NAMESPACE_MAX &&
        strlen(name) < MONGO_COLLECTION_NAME_MAX;
}

int
mongo_collection_name(const struct mongo *m, enum mongo_kind kind,
    const char *tenant_id, char out[MONGO_COLLECTION_NAME_MAX],
    struct crewd_error *err)
{
    char canonical[UUID_TEXT_LEN + 1];
    size_t len = strlen(tenant_id);

    /* Only our own canonical ids make names: one tenant, one name. */
    if (!uuid_parse(tenant_id, len, canonical) ||
        strcmp(canonical, tenant_id) != 0) {
        log_error("no collection name for a tenant id that is not a "
            "canonical UUID");
        return error_set(err, 500, "internal error");
    }
    snprintf(out, MONGO_COLLECTION_NAME_MAX, "%s_%s", mongo_kind_name(kind),
        tenant_id);
    if (!collection_name_allowed(m, out)) {
        log_error("collection name %s breaks MongoDB's naming rules", out);
        return error_set(err, 500, "internal error");
    }
    return 0;
}

/* The tenant's collection of kind, or NULL with err. */
static mongoc_collection_t *
collection(struct mongo *m, enum mongo_kind kind, const char *tenant_id,
    struct crewd_error *err)
{
    char name[MONGO_COLLECTION_NAME_MAX];

    if (mongo_collection_name(m, kind, tenant_id, name, err) < 0)
        return NULL;
    return mongoc_client_get_collection(m->client, m->database, name);
}

/* ----------------------------------------------------------------------
 * Provisioning.
 * -------------------------------------------------------------------- */

static void
append_validation(bson_t *command, enum mongo_kind kind)
{
    bson_t validator;

    mongo_schema_validator(kind, &validator);
    BSON_APPEND_DOCUMENT(command, "validator", &validator);
    BSON_APPEND_UTF8(command, "validationLevel", "strict");
    BSON_APPEND_UTF8(command, "validationAction", "error");
    bson_destroy(&validator);
}

/* Runs a command on our database; reply is always initialised. */
static bool
run_command(struct mongo *m, const bson_t *command, bson_t *reply,
    bson_error_t *e)
{
    mongoc_database_t *db = mongoc_client_get_database(m->client,
        m->database);
    bool ok = mongoc_database_write_command_with_opts(db, command, NULL,
        reply, e);

    mongoc_database_destroy(db);
    return ok;
}

/* create with the validator, or collMod one that exists to it. */
static int
ensure_collection(struct mongo *m, enum mongo_kind kind, const char *name,
    struct crewd_error *err)
{
    bson_t command = BSON_INITIALIZER;
    bson_t reply;
    bson_error_t e;
    bool ok;

    BSON_APPEND_UTF8(&command, "create", name);
    append_validation(&command, kind);
    ok = run_command(m, &command, &reply, &e);
    bson_destroy(&command);
    bson_destroy(&reply);
    if (ok)
        return 0;
    if (e.domain != MONGOC_ERROR_SERVER || e.code != CODE_NAMESPACE_EXISTS)
        return failed(m, &e, "creating a collection", err);

    bson_init(&command);
    BSON_APPEND_UTF8(&command, "collMod", name);
    append_validation(&command, kind);
    ok = run_command(m, &command, &reply, &e);
    bson_destroy(&command);
    bson_destroy(&reply);
    return ok ? 0 : failed(m, &e, "setting a collection's validator", err);
}

/* The expireAfterSeconds an index of this kind should have; 0: none. */
static int32_t
ttl_seconds(enum mongo_kind kind, const struct index_spec *spec,
    const struct mongo_ttl *ttl)
{
    int days;

    if (!spec->ttl)
        return 0;
    days = kind == MONGO_EXECUTION_LOGS ? ttl->execution_logs_days
                                        : ttl->chat_messages_days;
    if (days < MONGO_TTL_DAYS_MIN || days > MONGO_TTL_DAYS_MAX)
        days = MONGO_TTL_DAYS_DEFAULT;
    return (int32_t)days * 86400;
}

/*
 * The indexes there are: for each spec, whether an index of its name
 * exists and with which expireAfterSeconds (-1: none).
 */
static int
existing_indexes(struct mongo *m, const char *name,
    const struct index_spec *specs, size_t n, bool *exists, int64_t *ttls,
    struct crewd_error *err)
{
    mongoc_collection_t *coll = mongoc_client_get_collection(m->client,
        m->database, name);
    mongoc_cursor_t *cursor = mongoc_collection_find_indexes_with_opts(coll,
        NULL);
    const bson_t *index;
    bson_error_t e;
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        exists[i] = false;
        ttls[i] = -1;
    }
    while (mongoc_cursor_next(cursor, &index)) {
        bson_iter_t iter;
        const char *index_name;

        if (!bson_iter_init_find(&iter, index, "name") ||
            !BSON_ITER_HOLDS_UTF8(&iter))
            continue;
        index_name = bson_iter_utf8(&iter, NULL);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(index_name, specs[i].name) != 0)
                continue;
            exists[i] = true;
            if (bson_iter_init_find(&iter, index, "expireAfterSeconds") &&
                BSON_ITER_HOLDS_NUMBER(&iter))
                ttls[i] = bson_iter_as_int64(&iter);
        }
    }
    if (mongoc_cursor_error(cursor, &e))
        rc = failed(m, &e, "listing indexes", err);
    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);
    return rc;
}

static void
append_index(bson_t *indexes, uint32_t position,
    const struct index_spec *spec, int32_t ttl)
{
    char index_key[16];
    const char *key;
    bson_t index, fields;

    bson_uint32_to_string(position, &key, index_key, sizeof(index_key));
    BSON_APPEND_DOCUMENT_BEGIN(indexes, key, &index);
    BSON_APPEND_DOCUMENT_BEGIN(&index, "key", &fields);
    for (int f = 0; f < 2 && spec->fields[f] != NULL; f++)
        BSON_APPEND_INT32(&fields, spec->fields[f], spec->directions[f]);
    bson_append_document_end(&index, &fields);
    BSON_APPEND_UTF8(&index, "name", spec->name);
    if (ttl > 0)
        BSON_APPEND_INT32(&index, "expireAfterSeconds", ttl);
    bson_append_document_end(indexes, &index);
}

/* Changes a TTL index's expireAfterSeconds in place. */
static int
change_ttl(struct mongo *m, const char *name, const char *index_name,
    int32_t ttl, struct crewd_error *err)
{
    bson_t *command = BCON_NEW("collMod", BCON_UTF8(name),
        "index", "{", "name", BCON_UTF8(index_name),
        "expireAfterSeconds", BCON_INT32(ttl), "}");
    bson_t reply;
    bson_error_t e;
    bool ok = run_command(m, command, &reply, &e);

    bson_destroy(command);
    bson_destroy(&reply);
    return ok ? 0 : failed(m, &e, "changing a TTL", err);
}

static int
ensure_indexes(struct mongo *m, enum mongo_kind kind, const char *name,
    const struct mongo_ttl *ttl, struct crewd_error *err)
{
    const struct index_spec *specs = kind_indexes[kind].specs;
    size_t n = kind_indexes[kind].n;
    bool exists[2];
    int64_t ttls[2];
    bson_t command = BSON_INITIALIZER, indexes;
    uint32_t missing = 0;
    bson_t reply;
    bson_error_t e;
    bool ok;

    if (existing_indexes(m, name, specs, n, exists, ttls, err) < 0)
        return -1;

    BSON_APPEND_UTF8(&command, "createIndexes", name);
    BSON_APPEND_ARRAY_BEGIN(&command, "indexes", &indexes);
    for (size_t i = 0; i < n; i++) {
        int32_t want = ttl_seconds(kind, &specs[i], ttl);

        if (!exists[i])
            append_index(&indexes, missing++, &specs[i], want);
        else if (want > 0 && ttls[i] != want &&
                 change_ttl(m, name, specs[i].name, want, err) < 0) {
            bson_destroy(&command);
            return -1;
        }
    }
    bson_append_array_end(&command, &indexes);

    if (missing == 0) {
        bson_destroy(&command);
        return 0;
    }
    ok = run_command(m, &command, &reply, &e);
    bson_destroy(&command);
    bson_destroy(&reply);
    return ok ? 0 : failed(m, &e, "creating indexes", err);
}

int
mongo_provision_tenant(struct mongo *m, const char *tenant_id,
    const struct mongo_ttl *ttl, struct crewd_error *err)
{
    if (begin(m, err) < 0)
        return -1;

    for (int kind = 0; kind < MONGO_KIND_COUNT; kind++) {
        char name[MONGO_COLLECTION_NAME_MAX];

        if (mongo_collection_name(m, kind, tenant_id, name, err) < 0 ||
            ensure_collection(m, kind, name, err) < 0 ||
            ensure_indexes(m, kind, name, ttl, err) < 0)
            return -1;
    }
    succeeded(m);
    return 0;
}

int
mongo_drop_tenant(struct mongo *m, const char *tenant_id,
    struct crewd_error *err)
{
    if (begin(m, err) < 0)
        return -1;

    for (int kind = 0; kind < MONGO_KIND_COUNT; kind++) {
        mongoc_collection_t *coll = collection(m, kind, tenant_id, err);
        bson_error_t e;
        bool ok;

        if (coll == NULL)
            return -1;
        ok = mongoc_collection_drop_with_opts(coll, NULL, &e);
        mongoc_collection_destroy(coll);
        if (!ok && !(e.domain == MONGOC_ERROR_SERVER &&
                     e.code == CODE_NAMESPACE_NOT_FOUND))
            return failed(m, &e, "dropping a collection", err);
    }
    succeeded(m);
    return 0;
}

/* Appends "key": <doc as relaxed Extended JSON> to out. */
static void
append_json_member(struct buf *out, const char *key, const bson_t *doc)
{
    char *json = bson_as_relaxed_extended_json(doc, NULL);

    buf_printf(out, "\"%s\": %s", key, json);
    bson_free(json);
}

/* Appends "key": [docs as relaxed Extended JSON] to out. */
static void
append_json_array(struct buf *out, const char *key, const bson_t *array)
{
    bson_iter_t iter;
    bool first = true;

    buf_printf(out, "\"%s\": [", key);
    if (bson_iter_init(&iter, array))
        while (bson_iter_next(&iter)) {
            const uint8_t *data;
            uint32_t len;
            bson_t doc;
            char *json;

            if (!BSON_ITER_HOLDS_DOCUMENT(&iter))
                continue;
            bson_iter_document(&iter, &len, &data);
            if (!bson_init_static(&doc, data, len))
                continue;
            json = bson_as_relaxed_extended_json(&doc, NULL);
            buf_printf(out, "%s%s", first ? "" : ", ", json);
            bson_free(json);
            first = false;
        }
    buf_puts(out, "]");
}

static int
inspect_collection(struct mongo *m, const char *name, struct buf *out,
    struct crewd_error *err)
{
    mongoc_database_t *db = mongoc_client_get_database(m->client,
        m->database);
    bson_t *opts = BCON_NEW("filter", "{", "name", BCON_UTF8(name), "}");
    mongoc_cursor_t *cursor = mongoc_database_find_collections_with_opts(db,
        opts);
    bson_t options = BSON_INITIALIZER, indexes = BSON_INITIALIZER;
    const bson_t *entry;
    bool exists = false;
    uint32_t count = 0;
    bson_error_t e;
    int rc = 0;

    while (mongoc_cursor_next(cursor, &entry)) {
        bson_iter_t iter;

        exists = true;
        if (bson_iter_init_find(&iter, entry, "options") &&
            BSON_ITER_HOLDS_DOCUMENT(&iter)) {
            const uint8_t *data;
            uint32_t len;
            bson_t found;

            bson_iter_document(&iter, &len, &data);
            if (bson_init_static(&found, data, len)) {
                bson_destroy(&options);
                bson_copy_to(&found, &options);
            }
        }
    }
    if (mongoc_cursor_error(cursor, &e))
        rc = failed(m, &e, "listing collections", err);
    mongoc_cursor_destroy(cursor);
    bson_destroy(opts);
    mongoc_database_destroy(db);

    if (rc == 0 && exists) {
        mongoc_collection_t *coll = mongoc_client_get_collection(m->client,
            m->database, name);

        cursor = mongoc_collection_find_indexes_with_opts(coll, NULL);
        while (mongoc_cursor_next(cursor, &entry)) {
            char index_key[16];
            const char *key;

            bson_uint32_to_string(count++, &key, index_key,
                sizeof(index_key));
            BSON_APPEND_DOCUMENT(&indexes, key, entry);
        }
        if (mongoc_cursor_error(cursor, &e))
            rc = failed(m, &e, "listing indexes", err);
        mongoc_cursor_destroy(cursor);
        mongoc_collection_destroy(coll);
    }

    if (rc == 0) {
        buf_printf(out, "{\"name\": \"%s\", \"exists\": %s, ", name,
            exists ? "true" : "false");
        append_json_member(out, "options", &options);
        buf_puts(out, ", ");
        append_json_array(out, "indexes", &indexes);
        buf_puts(out, "}");
    }
    bson_destroy(&options);
    bson_destroy(&indexes);
    return rc;
}

int
mongo_inspect_tenant(struct mongo *m, const char *tenant_id,
    struct buf *out, struct crewd_error *err)
{
    if (begin(m, err) < 0)
        return -1;

    buf_puts(out, "{");
    for (int kind = 0; kind < MONGO_KIND_COUNT; kind++) {
        char name[MONGO_COLLECTION_NAME_MAX];

        if (mongo_collection_name(m, kind, tenant_id, name, err) < 0)
            return -1;
        buf_printf(out, "%s\"%s\": ", kind > 0 ? ", " : "",
            mongo_kind_name(kind));
        if (inspect_collection(m, name, out, err) < 0)
            return -1;
    }
    buf_puts(out, "}");
    succeeded(m);
    return 0;
}

/* ----------------------------------------------------------------------
 * Writing and reading.
 * -------------------------------------------------------------------- */

/* True when every write error of an insert's reply is a duplicate _id. */
static bool
only_duplicates(const bson_t *reply)
{
    bson_iter_t iter, errors;
    bool any = false;

    if (!bson_iter_init_find(&iter, reply, "writeErrors") ||
        !BSON_ITER_HOLDS_ARRAY(&iter) || !bson_iter_recurse(&iter, &errors))
        return false;
    while (bson_iter_next(&errors)) {
        bson_iter_t code;

        if (!BSON_ITER_HOLDS_DOCUMENT(&errors) ||
            !bson_iter_recurse(&errors, &code) ||
            !bson_iter_find(&code, "code") ||
            bson_iter_as_int64(&code) != CODE_DUPLICATE_KEY)
            return false;
        any = true;
    }
    if (bson_iter_init_find(&iter, reply, "writeConcernErrors"))
        return false;
    return any;
}

int
mongo_insert_many(struct mongo *m, enum mongo_kind kind,
    const char *tenant_id, const bson_t *const *docs, size_t n,
    unsigned flags, struct crewd_error *err)
{
    bool duplicates_ok = (flags & MONGO_INSERT_DUPLICATES_OK) != 0;
    mongoc_collection_t *coll;
    bson_t *opts;
    bson_t reply;
    bson_error_t e;
    bool ok;

    if (n == 0)
        return 0;
    if (begin(m, err) < 0)
        return -1;
    coll = collection(m, kind, tenant_id, err);
    if (coll == NULL)
        return -1;

    opts = BCON_NEW("ordered", BCON_BOOL(!duplicates_ok));
    ok = mongoc_collection_insert_many(coll, (const bson_t **)docs, n, opts,
        &reply, &e);
    if (!ok && duplicates_ok && only_duplicates(&reply))
        ok = true;
    bson_destroy(opts);
    bson_destroy(&reply);
    mongoc_collection_destroy(coll);
    if (!ok)
        return failed(m, &e, "inserting documents", err);
    succeeded(m);
    return 0;
}

static void
append_typed(bson_t *doc, const char *key, const struct mongo_value *v)
{
    switch (v->type) {
    case MONGO_STRING:
        BSON_APPEND_UTF8(doc, key, v->string);
        return;
    case MONGO_DATE:
        BSON_APPEND_DATE_TIME(doc, key, v->number);
        return;
    case MONGO_INT64:
        BSON_APPEND_INT64(doc, key, v->number);
        return;
    case MONGO_BOOL:
        BSON_APPEND_BOOL(doc, key, v->boolean);
        return;
    case MONGO_OID:
        BSON_APPEND_OID(doc, key, &v->oid);
        return;
    }
    fatal("unknown mongo value type %d", (int)v->type);
}

static const char *
op_name(enum mongo_op op)
{
    switch (op) {
    case MONGO_EQ: return "$eq";
    case MONGO_LT: return "$lt";
    case MONGO_LTE: return "$lte";
    case MONGO_GT: return "$gt";
    case MONGO_GTE: return "$gte";
    }
    fatal("unknown mongo operator %d", (int)op);
}

/* {field: {op: value}} as one element of an $and array. */
static void
append_clause(bson_t *and, uint32_t *position, const char *field,
    enum mongo_op op, const struct mongo_value *value)
{
    char index_key[16];
    const char *key;
    bson_t clause, operation;

    bson_uint32_to_string((*position)++, &key, index_key, sizeof(index_key));
    BSON_APPEND_DOCUMENT_BEGIN(and, key, &clause);
    BSON_APPEND_DOCUMENT_BEGIN(&clause, field, &operation);
    append_typed(&operation, op_name(op), value);
    bson_append_document_end(&clause, &operation);
    bson_append_document_end(and, &clause);
}

/*
 * The filter: every condition, and for a keyset page
 *   order < after  or  (order == after and _id < after_id)
 * (">" when ascending), all under one $and so that two conditions on
 * one field never make a document with a repeated key.
 */
static void
build_filter(const struct mongo_query *q, bson_t *filter)
{
    uint32_t position = 0;
    bson_t and;

    bson_init(filter);
    if (q->nconditions == 0 && !q->has_after)
        return;

    BSON_APPEND_ARRAY_BEGIN(filter, "$and", &and);
    for (size_t i = 0; i < q->nconditions; i++) {
        const struct mongo_condition *c = &q->conditions[i];

        if (!mongo_field_name_allowed(c->field))
            fatal("a filter on field \"%s\"", c->field);
        append_clause(&and, &position, c->field, c->op, &c->value);
    }
    if (q->has_after) {
        enum mongo_op past = q->descending ? MONGO_LT : MONGO_GT;
        char index_key[16];
        const char *key;
        bson_t clause, or, tie;
        uint32_t alternative = 0;

        bson_uint32_to_string(position++, &key, index_key,
            sizeof(index_key));
        BSON_APPEND_DOCUMENT_BEGIN(&and, key, &clause);
        BSON_APPEND_ARRAY_BEGIN(&clause, "$or", &or);
        append_clause(&or, &alternative, q->order_field, past,
            &q->after_value);

        bson_uint32_to_string(alternative, &key, index_key,
            sizeof(index_key));
        BSON_APPEND_DOCUMENT_BEGIN(&or, key, &tie);
        append_typed(&tie, q->order_field, &q->after_value);
        {
            bson_t operation;

            BSON_APPEND_DOCUMENT_BEGIN(&tie, "_id", &operation);
            append_typed(&operation, op_name(past), &q->after_id);
            bson_append_document_end(&tie, &operation);
        }
        bson_append_document_end(&or, &tie);
        bson_append_array_end(&clause, &or);
        bson_append_document_end(&and, &clause);
    }
    bson_append_array_end(filter, &and);
}

/*
 * Runs a find on the tenant's collection of kind and calls each for
 * every document; what mongo_find and mongo_scan share.  Takes filter and
 * opts (destroyed here).  Returns the number of documents, or -1.
 */
static int
find_each(struct mongo *m, enum mongo_kind kind, const char *tenant_id,
    bson_t *filter, bson_t *opts, const char *what, mongo_each_fn each,
    void *context, struct crewd_error *err)
{
    mongoc_collection_t *coll;
    mongoc_cursor_t *cursor;
    const bson_t *doc;
    bson_error_t e;
    int found = 0;

    coll = begin(m, err) < 0 ? NULL : collection(m, kind, tenant_id, err);
    if (coll == NULL) {
        bson_destroy(opts);
        bson_destroy(filter);
        return -1;
    }

    cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    while (mongoc_cursor_next(cursor, &doc)) {
        if (each(doc, context) < 0) {
            found = -1;
            break;
        }
        found++;
    }
    if (found >= 0 && mongoc_cursor_error(cursor, &e))
        found = failed(m, &e, what, err);
    else if (found >= 0)
        succeeded(m);

    mongoc_cursor_destroy(cursor);
    bson_destroy(opts);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    return found;
}

int
mongo_find(struct mongo *m, enum mongo_kind kind, const char *tenant_id,
    const struct mongo_query *q, mongo_each_fn each, void *context,
    struct crewd_error *err)
{
    int direction = q->descending ? -1 : 1;
    bson_t filter;

    if (q->limit < 1 || !mongo_field_name_allowed(q->order_field))
        fatal("a query with limit %" PRId64 " ordered on \"%s\"", q->limit,
            q->order_field);

    build_filter(q, &filter);
    return find_each(m, kind, tenant_id, &filter,
        BCON_NEW("sort", "{", q->order_field, BCON_INT32(direction),
            "_id", BCON_INT32(direction), "}", "limit",
            BCON_INT64(q->limit)),
        "finding documents", each, context, err);
}

int
mongo_scan(struct mongo *m, enum mongo_kind kind, const char *tenant_id,
    mongo_each_fn each, void *context, struct crewd_error *err)
{
    bson_t filter = BSON_INITIALIZER;

    return find_each(m, kind, tenant_id, &filter,
        BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}"),
        "reading a collection", each, context, err);
}
