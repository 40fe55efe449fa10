#include "config.h"

#include <ctype.h>
#include <string.h>

#include "audit.h"
#include "json.h"
#include "log.h"
#include "uuid.h"

static const char SQL_OUTBOX_INSERT[] =
    "INSERT INTO %saudit_outbox (id, user_id, action, resource_type,"
    " resource_id, changes, ip_address, user_agent)"
    " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)";

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

const char *const audit_resource_types[] = {
    "agent", "audit_log", "crew", "execution", "flow", "llm_provider",
    "tenant", "tool", "user", NULL
};

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
    case json_type_object:
        json_object_object_foreach(value, name, member) {
            if (audit_secret_name(name) && member != NULL)
                json_object_object_add(value, name,
                    json_object_new_string(AUDIT_MASK));
            else
                audit_mask(member);
        }
        break;
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

    uuid_generate_v7(id);
    params[0] = id;
    params[1] = e->user_id;
    params[2] = audit_action_names[e->action];
    params[3] = e->resource_type;
    params[4] = e->resource_id;
    params[5] = changes_text(a, e);
    params[6] = audit_clean_text(a, e->ip_address, AUDIT_IP_MAX);
    params[7] = audit_clean_text(a, e->user_agent, AUDIT_USER_AGENT_MAX);
    if (db_run(db, err, arena_printf(a, SQL_OUTBOX_INSERT, prefix), 8,
            params) < 0)
        return -1;

    params[0] = tenant_id;
    return db_run(db, err, SQL_NOTIFY, 1, params);
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
