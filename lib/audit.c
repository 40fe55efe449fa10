#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "audit.h"
#include "buf.h"
#include "json.h"
#include "log.h"
#include "mongo.h"
#include "uuid.h"

static const char SQL_OUTBOX_INSERT[] =
    "INSERT INTO %saudit_outbox (id, user_id, action, resource_type,"
    " resource_id, changes, ip_address, user_agent)"
    " VALUES ($1, $2, $3, $4, $5, $6::json, $7, $8)";

/*
 * A statement of its own, touching no tenant table, so it runs on the
 * server the session is connected to even where tenant schemas live on
 * other nodes.  PostgreSQL sends it at commit, and only then.
 */
static const char SQL_NOTIFY[] =
    "SELECT pg_notify('" AUDIT_CHANNEL "', $1)";

const char *const audit_action_names[] = {
    [AUDIT_CREATE] = "create",
    [AUDIT_READ] = "read",
    [AUDIT_UPDATE] = "update",
    [AUDIT_DELETE] = "delete",
    NULL
};

bool
audit_type_valid(const char *type)
{
    size_t len = strlen(type);

    if (len == 0 || len > AUDIT_TYPE_MAX || type[0] < 'a' || type[0] > 'z')
        return false;
    return strspn(type, "abcdefghijklmnopqrstuvwxyz_") == len;
}

void
audit_entry_id(char out[UUID_TEXT_LEN + 1])
{
    /* The last stamp made here: milliseconds << 12 | 4096ths of one. */
    static uint64_t last;
    unsigned char random[5];
    struct timespec now;
    bson_oid_t oid;
    uint64_t stamp;

    clock_gettime(CLOCK_REALTIME, &now);
    stamp = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
    stamp = stamp << 12 |
        (uint64_t)(now.tv_nsec % 1000000) * 4096 / 1000000;

    /* Never the same or an older stamp twice, even if the clock steps. */
    if (stamp <= last)
        stamp = last + 1;
    last = stamp;

    /* The 60 bits of the stamp, then 36 random bits. */
    randombytes_buf(random, sizeof(random));
    for (int i = 0; i < 7; i++)
        oid.bytes[i] = (uint8_t)(stamp >> (52 - 8 * i));
    oid.bytes[7] = (uint8_t)((stamp & 0x0f) << 4 | (random[0] & 0x0f));
    memcpy(oid.bytes + 8, random + 1, 4);
    mongo_oid_to_uuid(&oid, out);
}

/*
 * Member names whose values are secrets, compared without case and with
 * '-' read as '_'.  The API never shows most of them; the list is here so
 * that a secret a client put where it does not belong (an agent's config)
 * does not reach the audit trail either.
 */
static const char *const secret_names[] = {
    "password", "password_hash", "new_password", "current_password",
    "admin_password", "credentials", "encrypted_credentials", "secret",
    "client_secret", "api_secret", "token", "access_token", "refresh_token",
    "id_token", "auth_token", "bearer_token", "api_key", "apikey", "key",
    "private_key", "service_account_key", "authorization", NULL
};

bool
audit_secret_name(const char *name)
{
    for (size_t i = 0; secret_names[i] != NULL; i++) {
        const char *s = secret_names[i];
        size_t j;

        for (j = 0; s[j] != '\0' && name[j] != '\0'; j++) {
            char c = (char)tolower((unsigned char)name[j]);

            if ((c == '-' ? '_' : c) != s[j])
                break;
        }
        if (s[j] == '\0' && name[j] == '\0')
            return true;
    }
    return false;
}

void
audit_mask(struct json_object *value)
{
    size_t n;

    switch (json_object_get_type(value)) {
    case json_type_object: {
        /* A block: the macro declares variables, which C11 does not
           allow straight after a label (clang refuses it). */
        json_object_object_foreach(value, name, member) {
            if (audit_secret_name(name) && member != NULL)
                json_object_object_add(value, name,
                    json_object_new_string(AUDIT_MASK));
            else
                audit_mask(member);
        }
        break;
    }
    case json_type_array:
        n = json_object_array_length(value);
        for (size_t i = 0; i < n; i++)
            audit_mask(json_object_array_get_idx(value, i));
        break;
    default:
        break;
    }
}

/* The length of the valid UTF-8 character at s (of len bytes), or 0. */
static size_t
character_length(const char *s, size_t len)
{
    unsigned char c = (unsigned char)s[0];
    size_t n;

    if (c < 0x80)
        n = 1;
    else if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    return n <= len && json_utf8_valid(s, n) ? n : 0;
}

const char *
audit_clean_text(struct arena *a, const char *text, size_t max)
{
    size_t len, used = 0;
    char *out;

    if (text == NULL || text[0] == '\0')
        return NULL;
    len = strlen(text);
    out = arena_alloc(a, (len < max ? len : max) + 1);

    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)text[i];
        size_t n = character_length(text + i, len - i);

        /* C0 and C1 controls, DEL, and broken bytes: one '?' each. */
        if (n == 0 || c < 0x20 || c == 0x7f ||
            (c == 0xc2 && (unsigned char)text[i + 1] < 0xa0)) {
            if (used + 1 > max)
                break;
            out[used++] = '?';
            i += n == 0 ? 1 : n;
            continue;
        }
        if (used + n > max)
            break;
        memcpy(out + used, text + i, n);
        used += n;
        i += n;
    }
    out[used] = '\0';
    return out;
}

const char *
audit_type_from_noun(struct arena *a, const char *noun)
{
    char *type = arena_strdup(a, noun);

    for (char *p = type; *p != '\0'; p++)
        *p = *p == ' ' ? '_' : (char)tolower((unsigned char)*p);
    return type;
}

static void
put_json(void *object)
{
    json_object_put(object);
}

/* {"before": ..., "after": ...} as compact JSON text in the arena. */
static const char *
changes_text(struct arena *a, const struct audit_entry *e)
{
    struct json_object *changes = json_object_new_object();
    const char *text;

    audit_mask(e->before);
    audit_mask(e->after);
    json_object_object_add(changes, "before", json_object_get(e->before));
    json_object_object_add(changes, "after", json_object_get(e->after));
    text = arena_strdup(a, json_object_to_json_string_ext(changes,
        JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(changes);
    return text;
}

/* "" or the schema, quoted, and a dot. */
static const char *
schema_prefix(struct db *db, struct arena *a, const char *schema,
    struct crewd_error *err)
{
    char *quoted;
    const char *prefix;

    if (schema == NULL)
        return "";
    if (!tenant_schema_name_valid(schema)) {
        log_error("audit entry for a schema not ours: %s", schema);
        error_set(err, 500, "internal error");
        return NULL;
    }
    quoted = PQescapeIdentifier(db->conn, schema, strlen(schema));
    if (quoted == NULL) {
        error_set(err, 500, "internal error");
        return NULL;
    }
    prefix = arena_printf(a, "%s.", quoted);
    PQfreemem(quoted);
    return prefix;
}

int
audit_outbox_insert(struct db *db, struct arena *a, const char *schema,
    const char *tenant_id, const struct audit_entry *e,
    struct crewd_error *err)
{
    char id[UUID_TEXT_LEN + 1];
    const char *params[8];
    const char *prefix;

    if (db->conn == NULL) {
        err->retry_after = 1;
        return error_set(err, 503, "the database is unavailable");
    }
    prefix = schema_prefix(db, a, schema, err);
    if (prefix == NULL)
        return -1;

    audit_entry_id(id);
    params[0] = id;
    params[1] = e->user_id;
    params[2] = audit_action_names[e->action];
    params[3] = e->resource_type;
    params[4] = e->resource_id;
    params[5] = changes_text(a, e);
    params[6] = audit_clean_text(a, e->ip_address, AUDIT_IP_MAX);
    params[7] = audit_clean_text(a, e->user_agent, AUDIT_USER_AGENT_MAX);
    /* Nobody reads their rows: they ride with the next round trip. */
    if (db_run_batched(db, a, err, arena_printf(a, SQL_OUTBOX_INSERT,
            prefix), 8, params) < 0)
        return -1;

    params[0] = tenant_id;
    return db_run_batched(db, a, err, SQL_NOTIFY, 1, params);
}

/* A new object, released with the arena. */
static struct json_object *
new_object(struct arena *a)
{
    struct json_object *o = json_object_new_object();

    arena_defer(a, put_json, o);
    return o;
}

static void
add_string(struct json_object *o, const char *name, const char *value)
{
    json_object_object_add(o, name,
        value != NULL ? json_object_new_string(value) : NULL);
}

int
audit_signup(struct db *db, struct arena *a, const struct tenant *t,
    const char *name, const char *admin_id, const char *admin_email,
    const char *ip_address, const char *user_agent,
    struct crewd_error *err)
{
    struct json_object *tenant = new_object(a), *user = new_object(a);
    struct audit_entry e;

    add_string(tenant, "id", t->id);
    add_string(tenant, "name", name);
    add_string(tenant, "slug", t->slug);
    json_object_object_add(tenant, "is_active",
        json_object_new_boolean(t->is_active));
    add_string(tenant, "created_at", t->created_at);

    /* As GET /users/{id} shows the admin, and the password masked. */
    add_string(user, "id", admin_id);
    add_string(user, "tenant_id", t->id);
    add_string(user, "email", admin_email);
    add_string(user, "full_name", NULL);
    add_string(user, "role", "admin");
    json_object_object_add(user, "is_active", json_object_new_boolean(1));
    add_string(user, "created_at", t->created_at);
    add_string(user, "updated_at", t->created_at);
    add_string(user, "password", AUDIT_MASK);

    memset(&e, 0, sizeof(e));
    e.action = AUDIT_CREATE;
    e.user_id = admin_id;
    e.ip_address = ip_address;
    e.user_agent = user_agent;

    e.resource_type = "tenant";
    e.resource_id = t->id;
    e.after = tenant;
    if (audit_outbox_insert(db, a, t->schema, t->id, &e, err) < 0)
        return -1;

    e.resource_type = "user";
    e.resource_id = admin_id;
    e.after = user;
    return audit_outbox_insert(db, a, t->schema, t->id, &e, err);
}

/* ----------------------------------------------------------------------
 * MongoDB documents.
 * -------------------------------------------------------------------- */

/* '$', '.' and '%' of a member name, and what they travel as. */
static const struct {
    char c;
    const char *escaped;
} key_escapes[] = {
    { '$', "%24" },
    { '.', "%2E" },
    { '%', "%25" },
};

#define NESCAPES (sizeof(key_escapes) / sizeof(key_escapes[0]))

/*
 * MongoDB refuses an empty member name too; "%00" cannot come from a real
 * name (its '%' would travel as "%25"), so it stands for "".
 */
#define EMPTY_KEY "%00"

static const char *
key_encode(struct buf *out, const char *key)
{
    if (key[0] == '\0')
        return EMPTY_KEY;
    if (strpbrk(key, "$.%") == NULL)
        return key;
    buf_reset(out);
    for (const char *k = key; *k != '\0'; k++) {
        size_t i;

        for (i = 0; i < NESCAPES && key_escapes[i].c != *k; i++)
            ;
        if (i < NESCAPES)
            buf_puts(out, key_escapes[i].escaped);
        else
            buf_putc(out, *k);
    }
    return buf_cstr(out);
}

static const char *
key_decode(struct buf *out, const char *key)
{
    if (strcmp(key, EMPTY_KEY) == 0)
        return "";
    if (strchr(key, '%') == NULL)
        return key;
    buf_reset(out);
    for (const char *k = key; *k != '\0'; k++) {
        size_t i = NESCAPES;

        if (*k == '%')
            for (i = 0; i < NESCAPES; i++)
                if (strncmp(k, key_escapes[i].escaped, 3) == 0)
                    break;
        if (i < NESCAPES) {
            buf_putc(out, key_escapes[i].c);
            k += 2;
        } else {
            buf_putc(out, *k);
        }
    }
    return buf_cstr(out);
}

/* Appends a JSON value as BSON under key, member names escaped. */
static void
append_value(bson_t *doc, const char *key, struct json_object *value)
{
    struct buf name = BUF_INIT;
    bson_t child;
    size_t n;

    switch (json_object_get_type(value)) {
    case json_type_object:
        BSON_APPEND_DOCUMENT_BEGIN(doc, key, &child);
        json_object_object_foreach(value, member, v)
            append_value(&child, key_encode(&name, member), v);
        bson_append_document_end(doc, &child);
        break;
    case json_type_array:
        BSON_APPEND_ARRAY_BEGIN(doc, key, &child);
        n = json_object_array_length(value);
        for (size_t i = 0; i < n; i++) {
            char index[16];
            const char *index_key;

            bson_uint32_to_string((uint32_t)i, &index_key, index,
                sizeof(index));
            append_value(&child, index_key,
                json_object_array_get_idx(value, i));
        }
        bson_append_array_end(doc, &child);
        break;
    default:
        mongo_append_scalar(doc, key, value);
        break;
    }
    buf_free(&name);
}

static void
append_text(bson_t *doc, const char *key, const char *value)
{
    if (value != NULL)
        BSON_APPEND_UTF8(doc, key, value);
}

int
audit_document(const struct audit_stored *e, bson_t *out,
    struct crewd_error *err)
{
    struct json_object *changes = NULL;
    bson_oid_t oid;

    bson_init(out);
    if (!mongo_oid_from_uuid(e->id, &oid))
        return error_set(err, 500, "audit entry %s has an id that is not "
            "an ObjectId", e->id);
    if (json_parse(e->changes, strlen(e->changes), &changes, err) < 0 ||
        json_object_get_type(changes) != json_type_object) {
        json_object_put(changes);
        return error_set(err, 500, "audit entry %s has changes that are "
            "not an object", e->id);
    }

    BSON_APPEND_OID(out, "_id", &oid);
    BSON_APPEND_UTF8(out, "user_id", e->user_id);
    BSON_APPEND_UTF8(out, "action", e->action);
    BSON_APPEND_UTF8(out, "resource_type", e->resource_type);
    append_text(out, "resource_id", e->resource_id);
    append_value(out, "changes", changes);
    append_text(out, "ip_address", e->ip_address);
    append_text(out, "user_agent", e->user_agent);
    BSON_APPEND_DATE_TIME(out, "timestamp", e->timestamp_ms);
    json_object_put(changes);

    return mongo_doc_check(MONGO_AUDIT_LOGS, out, "", err);
}

/* A BSON value as JSON, member names of documents decoded. */
static void
write_value(struct json_writer *w, const bson_iter_t *iter)
{
    struct buf name = BUF_INIT;
    bson_iter_t child;

    if (!BSON_ITER_HOLDS_DOCUMENT(iter) && !BSON_ITER_HOLDS_ARRAY(iter)) {
        mongo_write_json(w, iter);
        return;
    }
    if (!bson_iter_recurse(iter, &child)) {
        jw_null(w);
        return;
    }

    if (BSON_ITER_HOLDS_ARRAY(iter)) {
        jw_array_open(w);
        while (bson_iter_next(&child))
            write_value(w, &child);
        jw_array_close(w);
        return;
    }
    jw_object_open(w);
    while (bson_iter_next(&child)) {
        jw_key(w, key_decode(&name, bson_iter_key(&child)));
        write_value(w, &child);
    }
    jw_object_close(w);
    buf_free(&name);
}

static void
write_member(struct json_writer *w, const bson_t *doc, const char *field,
    const char *key)
{
    bson_iter_t iter;

    jw_key(w, key);
    if (bson_iter_init_find(&iter, doc, field))
        write_value(w, &iter);
    else
        jw_null(w);
}

void
audit_write_entry(struct json_writer *w, const bson_t *doc)
{
    bson_iter_t iter;
    char id[UUID_TEXT_LEN + 1];
    char when[32];

    jw_object_open(w);
    jw_key(w, "id");
    if (bson_iter_init_find(&iter, doc, "_id") &&
        BSON_ITER_HOLDS_OID(&iter)) {
        mongo_oid_to_uuid(bson_iter_oid(&iter), id);
        jw_string(w, id);
    } else {
        jw_null(w);
    }
    write_member(w, doc, "user_id", "user_id");
    write_member(w, doc, "action", "action");
    write_member(w, doc, "resource_type", "resource_type");
    write_member(w, doc, "resource_id", "resource_id");
    write_member(w, doc, "changes", "changes");
    write_member(w, doc, "ip_address", "ip_address");
    write_member(w, doc, "user_agent", "user_agent");
    jw_key(w, "timestamp");
    if (bson_iter_init_find(&iter, doc, "timestamp") &&
        BSON_ITER_HOLDS_DATE_TIME(&iter)) {
        mongo_time_format(bson_iter_date_time(&iter), when);
        jw_string(w, when);
    } else {
        jw_null(w);
    }
    jw_object_close(w);
}
