/*
 * LLM providers: /api/v1/llm-providers and /api/v1/llm-providers/{id}.
 *
 * Runs inside the tenant's transaction with the search path set to its
 * schema, so "llm_providers" here is always the calling tenant's table.
 *
 * credentials is write-only: an object of strings ({"api_key": "..."}),
 * sealed under the current master key (lib/seal.h) before it reaches
 * SQL, with the tenant's id and the provider's id as associated data.
 * The id is made here, before the INSERT, so that it can be part of the
 * associated data.  Responses show has_credentials and never the
 * credentials; no error message or log line repeats a value of them.
 * PATCH with credentials replaces them, with "credentials": null removes
 * them.  Nothing in crewd's API ever returns the plaintext.
 *
 * config is checked per provider_type:
 *
 *   provider_type      URL key    URL required  http allowed  also required
 *   openai             base_url   no            no            -
 *   anthropic          base_url   no            no            -
 *   azure_openai       endpoint   yes           no            deployment
 *   google             base_url   no            no            -
 *   mistral            base_url   no            no            -
 *   ollama             base_url   no            yes (*)       -
 *   openai_compatible  base_url   yes           yes (*)       -
 *
 *   (*) an http URL only to a host listed in provider_http_hosts (the
 *       configuration; default localhost and 127.0.0.1); otherwise, and
 *       for every other type, the URL must be https.
 *
 * A URL is scheme://host[:port][/path][?query]: no user information (a
 * secret belongs in credentials), no fragment, no blanks, ASCII only.
 * The URL key of the other kind (endpoint for all but azure_openai,
 * base_url for azure_openai) is refused rather than left unchecked.
 * model, deployment, api_version, organization, project_id and location,
 * when present, are strings of 1 to 255 characters.  Keys that name a
 * secret (api_key, password, token, ..., in any case) are refused: config
 * is shown in every response, credentials never are.  Other keys (model
 * parameters) are kept as given.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "audit_logs.h"
#include "handlers.h"
#include "jsonptr.h"
#include "log.h"
#include "resource.h"
#include "seal.h"

/* The select list; the order is the column numbers in write_provider. */
#define PROVIDER_COLUMNS \
    "id, tenant_id, name, provider_type, config, priority, is_active, " \
    "encrypted_credentials IS NOT NULL, created_at, updated_at, " SQL_ETAG

/* Absent optional fields take the table's defaults (priority 1, active). */
static const char insert_sql[] =
    "INSERT INTO llm_providers (id, tenant_id, name, provider_type, config,"
    " priority, is_active, encrypted_credentials)"
    " VALUES ($1, $2, $3, $4, coalesce($5::jsonb, '{}'),"
    " coalesce($6::integer, 1), coalesce($7::boolean, true), $8::bytea)"
    " RETURNING " PROVIDER_COLUMNS;

/*
 * A merge patch: a NULL parameter keeps the column (none of them is
 * nullable), and $7 says whether the credentials change at all, since
 * their NULL means "remove".  Every change moves the ETag.
 */
static const char update_sql[] =
    "UPDATE llm_providers SET"
    " name = coalesce($2, name),"
    " provider_type = coalesce($3, provider_type),"
    " config = coalesce($4::jsonb, config),"
    " priority = coalesce($5::integer, priority),"
    " is_active = coalesce($6::boolean, is_active),"
    " encrypted_credentials = CASE WHEN $7::boolean THEN $8::bytea"
    "   ELSE encrypted_credentials END,"
    " updated_at = greatest(now(), updated_at + interval '1 microsecond')"
    " WHERE id = $1 RETURNING " PROVIDER_COLUMNS;

/* What a patch is checked against: the row as it is. */
static const char current_sql[] =
    "SELECT provider_type, config FROM llm_providers WHERE id = $1";

/*
 * Agents that use the provider lose it.  The foreign key would do that
 * on its own (ON DELETE SET NULL), but without moving the agents'
 * updated_at; doing it first keeps their ETags true to their content.
 */
static const char release_agents_sql[] =
    "UPDATE agents SET llm_provider_id = NULL,"
    " updated_at = greatest(now(), updated_at + interval '1 microsecond')"
    " WHERE llm_provider_id = $1";

/* The largest credentials object, as compact JSON. */
#define CREDENTIALS_MAX_BYTES 16384
#define CREDENTIAL_NAME_MAX 64
#define URL_MAX 2048
#define CONFIG_STRING_MAX 255

static const char *const provider_types[] = {
    "openai", "anthropic", "azure_openai", "google", "mistral", "ollama",
    "openai_compatible", NULL
};

enum {
    F_NAME, F_TYPE, F_CONFIG, F_PRIORITY, F_ACTIVE, F_CREDENTIALS,
    NFIELDS
};

static const struct field_spec provider_fields[NFIELDS] = {
    [F_NAME] = { "name", FIELD_STRING, FIELD_REQUIRED, 255, 0, 0, NULL },
    [F_TYPE] = { "provider_type", FIELD_ENUM, FIELD_REQUIRED, 0, 0, 0,
                 provider_types },
    [F_CONFIG] = { "config", FIELD_OBJECT, 0, 0, 0, 0, NULL },
    [F_PRIORITY] = { "priority", FIELD_INT, 0, 0, 1, 1000, NULL },
    [F_ACTIVE] = { "is_active", FIELD_BOOL, 0, 0, 0, 0, NULL },
    [F_CREDENTIALS] = { "credentials", FIELD_OBJECT,
                        FIELD_NULLABLE | FIELD_WRITE_ONLY, 0, 0,
                        0, NULL },
};

/* The table above, as data. */
struct type_rules {
    const char *type;
    const char *url_key;
    bool url_required;
    bool http_allowed;
    const char *also_required;
};

static const struct type_rules type_rules[] = {
    { "openai", "base_url", false, false, NULL },
    { "anthropic", "base_url", false, false, NULL },
    { "azure_openai", "endpoint", true, false, "deployment" },
    { "google", "base_url", false, false, NULL },
    { "mistral", "base_url", false, false, NULL },
    { "ollama", "base_url", false, true, NULL },
    { "openai_compatible", "base_url", true, true, NULL },
};

static const char *const config_strings[] = {
    "model", "deployment", "api_version", "organization", "project_id",
    "location", NULL
};

static const char *const config_secret_names[] = {
    "api_key", "apikey", "key", "secret", "client_secret", "password",
    "token", "access_token", "auth_token", "bearer_token", "authorization",
    "private_key", "service_account_key", "credentials", NULL
};

static const struct list_filter provider_filters[] = {
    { "provider_type", "provider_type", FIELD_ENUM, provider_types },
    { "is_active", "is_active", FIELD_BOOL, NULL },
};

static void
write_provider(struct request *req, const PGresult *res, int row)
{
    struct json_writer *w = &req->json;

    jw_object_open(w);
    jw_kv_string(w, "id", db_value(res, row, 0));
    jw_kv_string(w, "tenant_id", db_value(res, row, 1));
    jw_kv_string(w, "name", db_value(res, row, 2));
    jw_kv_string(w, "provider_type", db_value(res, row, 3));
    jw_kv_raw(w, "config", db_value(res, row, 4));
    jw_kv_int(w, "priority", strtoll(db_value(res, row, 5), NULL, 10));
    jw_kv_bool(w, "is_active", db_bool(res, row, 6));
    jw_kv_bool(w, "has_credentials", db_bool(res, row, 7));
    jw_kv_string(w, "created_at", db_timestamp(req->arena, res, row, 8));
    jw_kv_string(w, "updated_at", db_timestamp(req->arena, res, row, 9));
    jw_object_close(w);
}

const struct resource llm_providers_resource = {
    .table = "llm_providers",
    .collection = "llm-providers",
    .noun = "LLM provider",
    .columns = PROVIDER_COLUMNS,
    .ncolumns = 11,
    .created_at_column = 8,
    .filters = provider_filters,
    .nfilters = sizeof(provider_filters) / sizeof(provider_filters[0]),
    .fields = provider_fields,
    .nfields = NFIELDS,
    .write = write_provider,
    .doc_properties = "\"has_credentials\":{\"type\":\"boolean\"}",
};

static const struct type_rules *
rules_for(const char *type)
{
    for (size_t i = 0; i < sizeof(type_rules) / sizeof(type_rules[0]); i++)
        if (strcmp(type_rules[i].type, type) == 0)
            return &type_rules[i];
    return NULL;
}

/* True when host[0..len) is one of the comma-separated, lower-case list. */
static bool
host_listed(const char *list, const char *host, size_t len)
{
    while (*list != '\0') {
        size_t n = strcspn(list, ",");

        if (n == len && strncasecmp(list, host, len) == 0)
            return true;
        list += n;
        if (*list == ',')
            list++;
    }
    return false;
}

enum url_verdict {
    URL_OK,
    URL_BAD,            /* not a URL of the accepted shape */
    URL_USERINFO,       /* user:password@ in it */
    URL_NOT_HTTPS       /* http where only https is allowed */
};

static bool
is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* Checks host[:port] at s[0..len); sets the host's span for the list. */
static bool
authority_valid(const char *s, size_t len, const char **host,
    size_t *host_len)
{
    size_t i = 0;

    if (len > 0 && s[0] == '[') {
        /* An IPv6 literal; compared without its brackets. */
        for (i = 1; i < len && s[i] != ']'; i++)
            if (strchr("0123456789abcdefABCDEF:.", s[i]) == NULL)
                return false;
        if (i == len || i == 1)
            return false;
        *host = s + 1;
        *host_len = i - 1;
        i++;
    } else {
        for (i = 0; i < len && s[i] != ':'; i++)
            if (!is_host_char(s[i]))
                return false;
        if (i == 0 || s[0] == '.' || s[0] == '-' || s[i - 1] == '.' ||
            s[i - 1] == '-' || memmem(s, i, "..", 2) != NULL)
            return false;
        *host = s;
        *host_len = i;
    }

    if (i == len)
        return true;
    if (s[i] != ':' || i + 1 == len || len - i - 1 > 5)
        return false;
    {
        long port = 0;

        for (size_t j = i + 1; j < len; j++) {
            if (s[j] < '0' || s[j] > '9')
                return false;
            port = port * 10 + (s[j] - '0');
        }
        return port >= 1 && port <= 65535;
    }
}

static enum url_verdict
url_check(const char *url, bool http_allowed, const char *http_hosts)
{
    size_t len = strlen(url);
    const char *rest, *host = NULL;
    size_t authority_len, host_len = 0;
    bool https;

    if (len > URL_MAX)
        return URL_BAD;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
            return URL_BAD;

    if (strncasecmp(url, "https://", 8) == 0) {
        https = true;
        rest = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        https = false;
        rest = url + 7;
    } else {
        return URL_BAD;
    }
    if (strchr(rest, '#') != NULL)
        return URL_BAD;

    authority_len = strcspn(rest, "/?");
    if (memchr(rest, '@', authority_len) != NULL)
        return URL_USERINFO;
    if (!authority_valid(rest, authority_len, &host, &host_len))
        return URL_BAD;

    if (!https && !(http_allowed && host_listed(http_hosts, host, host_len)))
        return URL_NOT_HTTPS;
    return URL_OK;
}

static void
check_url_member(struct request *req, const struct type_rules *rules,
    struct json_object *value)
{
    const char *pointer = rules->url_key[0] == 'b' ? "/config/base_url"
                                                   : "/config/endpoint";

    if (json_object_get_type(value) != json_type_string) {
        error_field(&req->err, pointer, "must be a URL string");
        return;
    }
    switch (url_check(json_object_get_string(value), rules->http_allowed,
                req->conf->provider_http_hosts)) {
    case URL_OK:
        return;
    case URL_USERINFO:
        error_field(&req->err, pointer, "must not hold user information; "
            "secrets belong in credentials");
        return;
    case URL_NOT_HTTPS:
        error_field(&req->err, pointer, rules->http_allowed
            ? "must be an https URL, or an http URL to a host the "
              "operator allows (provider_http_hosts)"
            : "must be an https URL");
        return;
    case URL_BAD:
        error_field(&req->err, pointer, "must be an https URL of the form "
            "https://host[:port][/path]");
        return;
    }
}

/*
 * Checks config (an object) for type, adding field errors.  Pointers are
 * only ever built from the names of the lists above, never from a name
 * the client sent.
 */
/*
 * True when a config member's name says it holds a secret: one of the
 * names above, or (in any case, '-' read as '_') a name that ends in
 * _key, _secret, _token or _password, or contains secret, password,
 * apikey, api_key or authorization.  "max_tokens" stays allowed.
 */
static bool
looks_secret(const char *name)
{
    static const char *const endings[] = {
        "_key", "_secret", "_token", "_password", NULL
    };
    static const char *const inside[] = {
        "secret", "password", "apikey", "api_key", "authorization", NULL
    };
    char folded[128];
    size_t len = strlen(name);

    if (len >= sizeof(folded))
        len = sizeof(folded) - 1;
    for (size_t i = 0; i < len; i++)
        folded[i] = name[i] == '-' ? '_' : (char)tolower((unsigned char)
            name[i]);
    folded[len] = '\0';

    for (size_t i = 0; config_secret_names[i] != NULL; i++)
        if (strcmp(folded, config_secret_names[i]) == 0)
            return true;
    for (size_t i = 0; endings[i] != NULL; i++) {
        size_t n = strlen(endings[i]);

        if (len >= n && strcmp(folded + len - n, endings[i]) == 0)
            return true;
    }
    for (size_t i = 0; inside[i] != NULL; i++)
        if (strstr(folded, inside[i]) != NULL)
            return true;
    return false;
}

/*
 * Secrets belong in credentials, sealed and never shown; config is shown
 * to every viewer.  Nested objects (headers, say) are searched too.
 */
static void
refuse_secrets(struct request *req, struct json_object *value,
    const char *pointer)
{
    if (json_object_is_type(value, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(value); i++)
            refuse_secrets(req, json_object_array_get_idx(value, i),
                jsonptr_index(req->arena, pointer, i));
        return;
    }
    if (!json_object_is_type(value, json_type_object))
        return;

    json_object_object_foreach(value, name, member) {
        char *at = jsonptr_key(req->arena, pointer, name);

        if (looks_secret(name))
            error_field(&req->err, at, "secrets belong in credentials, "
                "which are stored encrypted and never shown");
        else
            refuse_secrets(req, member, at);
    }
}

static void
check_config(struct request *req, const char *type,
    struct json_object *config)
{
    const struct type_rules *rules = rules_for(type);
    const char *other_url = strcmp(rules->url_key, "base_url") == 0
        ? "endpoint" : "base_url";
    struct json_object *v;

    if (json_object_object_get_ex(config, rules->url_key, &v))
        check_url_member(req, rules, v);
    else if (rules->url_required)
        error_field(&req->err, arena_printf(req->arena, "/config/%s",
            rules->url_key), "is required for provider_type %s", type);

    if (json_object_object_get_ex(config, other_url, NULL))
        error_field(&req->err, arena_printf(req->arena, "/config/%s",
            other_url), "is not used by provider_type %s; use %s", type,
            rules->url_key);

    if (rules->also_required != NULL &&
        !json_object_object_get_ex(config, rules->also_required, NULL))
        error_field(&req->err, arena_printf(req->arena, "/config/%s",
            rules->also_required), "is required for provider_type %s",
            type);

    for (size_t i = 0; config_strings[i] != NULL; i++) {
        const char *s;
        size_t len;

        if (!json_object_object_get_ex(config, config_strings[i], &v))
            continue;
        s = json_object_get_string(v);
        len = json_object_get_type(v) == json_type_string
            ? (size_t)json_object_get_string_len(v) : 0;
        if (json_object_get_type(v) != json_type_string || len == 0 ||
            json_utf8_length(s, len) > CONFIG_STRING_MAX)
            error_field(&req->err, arena_printf(req->arena, "/config/%s",
                config_strings[i]), "must be a string of 1 to %d "
                "characters", CONFIG_STRING_MAX);
    }

    refuse_secrets(req, config, "/config");
}

static bool
credential_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > CREDENTIAL_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_host_char(name[i]) && name[i] != '_')
            return false;
    return true;
}

/*
 * credentials: a non-empty object of strings under names of letters,
 * digits, '_', '-' and '.'.  A problem is reported without the value,
 * and a bad name without the name: a client may have put a secret there.
 */
static void
check_credentials(struct request *req, struct json_object *credentials,
    const char *text)
{
    bool bad_name = false;

    if (json_object_object_length(credentials) == 0) {
        error_field(&req->err, "/credentials", "must not be empty; send "
            "null to remove the credentials");
        return;
    }
    if (strlen(text) > CREDENTIALS_MAX_BYTES) {
        error_field(&req->err, "/credentials", "must be at most %d bytes "
            "as JSON", CREDENTIALS_MAX_BYTES);
        return;
    }

    json_object_object_foreach(credentials, name, value) {
        if (!credential_name_valid(name)) {
            bad_name = true;
            continue;
        }
        if (value == NULL ||
            json_object_get_type(value) != json_type_string ||
            json_object_get_string_len(value) == 0)
            error_field(&req->err, arena_printf(req->arena,
                "/credentials/%s", name), "must be a non-empty string");
    }
    if (bad_name)
        error_field(&req->err, "/credentials", "member names must be 1 to "
            "%d letters, digits, '_', '-' or '.'", CREDENTIAL_NAME_MAX);
}

/*
 * Reads the body against the fields, and the credentials against their
 * rules.  config is checked later, against the type it will have.
 */
static int
read_body(struct request *req, bool creating, struct field_value *v,
    struct json_object **body)
{
    struct json_object *credentials;

    if (request_json_object(req, body) < 0)
        return -1;
    fields_read(req->arena, *body, provider_fields, NFIELDS, creating, v,
        &req->err);
    if (v[F_CREDENTIALS].text != NULL &&
        json_object_object_get_ex(*body, "credentials", &credentials))
        check_credentials(req, credentials, v[F_CREDENTIALS].text);
    return req->err.status != 0 ? -1 : 0;
}

/* The credentials' JSON, sealed for this provider, as bytea text. */
static const char *
seal_credentials(struct request *req, const char *provider_id,
    const char *plain)
{
    const struct seal_keyring *ring = seal_process_keyring();
    char context[SEAL_PROVIDER_AD_LEN + 1];
    size_t len = strlen(plain);
    size_t sealed_len = seal_sealed_len(len);
    unsigned char *sealed;
    char *text;

    if (ring == NULL || ring->count == 0) {
        log_error("no master key is loaded: cannot seal credentials");
        request_fail(req, 500, "internal error");
        return NULL;
    }

    seal_provider_context(context, req->tenant->id, provider_id);
    sealed = arena_alloc(req->arena, sealed_len);
    seal_seal(&ring->keys[0], context, (const unsigned char *)plain, len,
        sealed);
    text = arena_alloc(req->arena, 2 * sealed_len + 3);
    seal_bytea_text(sealed, sealed_len, text);

    /* The plaintext copy is not needed any more. */
    sodium_memzero((char *)plain, len);
    return text;
}

static void
put_json(void *object)
{
    json_object_put(object);
}

int
llm_providers_create(struct request *req)
{
    struct field_value v[NFIELDS];
    struct audit_written written = { provider_fields, v, NFIELDS };
    struct json_object *body, *config;
    char id[UUID_TEXT_LEN + 1];
    const char *sealed = NULL;
    const char *params[8];
    PGresult *res;

    if (request_query_check(req, NULL) < 0 ||
        read_body(req, true, v, &body) < 0)
        return -1;

    if (!json_object_object_get_ex(body, "config", &config)) {
        config = json_object_new_object();
        arena_defer(req->arena, put_json, config);
    }
    check_config(req, v[F_TYPE].text, config);
    if (req->err.status != 0)
        return -1;

    uuid_generate(id);
    if (v[F_CREDENTIALS].text != NULL) {
        sealed = seal_credentials(req, id, v[F_CREDENTIALS].text);
        if (sealed == NULL)
            return -1;
    }

    params[0] = id;
    params[1] = req->tenant->id;
    params[2] = v[F_NAME].text;
    params[3] = v[F_TYPE].text;
    params[4] = v[F_CONFIG].text;
    params[5] = v[F_PRIORITY].text;
    params[6] = v[F_ACTIVE].text;
    params[7] = sealed;
    res = db_exec(req->db, req->arena, &req->err, insert_sql, 8, params);
    if (res == NULL ||
        audit_resource(req, &llm_providers_resource, AUDIT_CREATE, NULL,
            res, &written) < 0)
        return -1;

    response_location(req, llm_providers_resource.collection, id);
    return resource_respond(req, &llm_providers_resource, 201, res);
}

/* Checks the config the row will have after v is applied. */
static int
check_patched_config(struct request *req, struct field_value *v,
    struct json_object *body)
{
    const char *params[1] = { req->path_ids[0] };
    struct json_object *config, *patch;
    const char *type;
    PGresult *res;

    res = db_exec(req->db, req->arena, &req->err, current_sql, 1, params);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0)
        return request_fail(req, 404, "no such %s",
            llm_providers_resource.noun);

    type = v[F_TYPE].present ? v[F_TYPE].text : db_value(res, 0, 0);
    if (json_parse(db_value(res, 0, 1), strlen(db_value(res, 0, 1)),
            &config, &req->err) < 0 || config == NULL) {
        log_error("stored config of LLM provider %s does not parse",
            req->path_ids[0]);
        return request_fail(req, 500, "internal error");
    }
    arena_defer(req->arena, put_json, config);

    /* A config in the body is a merge patch of the stored one. */
    if (json_object_object_get_ex(body, "config", &patch)) {
        config = json_merge_patch(config, patch);
        arena_defer(req->arena, put_json, config);
        v[F_CONFIG].text = fields_object_text(req->arena,
            &provider_fields[F_CONFIG], config, "/config", &req->err);
        if (v[F_CONFIG].text == NULL)
            return -1;
    }

    /* An unknown stored type is not the client's doing: check nothing. */
    if (rules_for(type) == NULL)
        return 0;
    check_config(req, type, config);
    return req->err.status != 0 ? -1 : 0;
}

int
llm_providers_update(struct request *req)
{
    struct field_value v[NFIELDS];
    struct audit_written written = { provider_fields, v, NFIELDS };
    struct json_object *body;
    const char *sealed = NULL;
    const char *params[8];
    PGresult *before, *res;

    if (request_query_check(req, NULL) < 0 ||
        read_body(req, false, v, &body) < 0 ||
        resource_lock(req, &llm_providers_resource) < 0)
        return -1;

    /* An empty merge patch changes nothing, not even updated_at. */
    if (fields_none_present(v, NFIELDS))
        return resource_get(req, &llm_providers_resource);

    if ((v[F_TYPE].present || v[F_CONFIG].present) &&
        check_patched_config(req, v, body) < 0)
        return -1;

    if (v[F_CREDENTIALS].text != NULL) {
        sealed = seal_credentials(req, req->path_ids[0],
            v[F_CREDENTIALS].text);
        if (sealed == NULL)
            return -1;
    }

    /* The row is locked: this is what the UPDATE changes, for the trail. */
    before = resource_fetch(req, &llm_providers_resource, req->path_ids[0]);
    if (before == NULL)
        return -1;

    params[0] = req->path_ids[0];
    params[1] = v[F_NAME].text;
    params[2] = v[F_TYPE].text;
    params[3] = v[F_CONFIG].text;
    params[4] = v[F_PRIORITY].text;
    params[5] = v[F_ACTIVE].text;
    params[6] = v[F_CREDENTIALS].present ? "true" : "false";
    params[7] = sealed;
    res = db_exec(req->db, req->arena, &req->err, update_sql, 8, params);
    if (res == NULL ||
        audit_resource(req, &llm_providers_resource, AUDIT_UPDATE, before,
            res, &written) < 0)
        return -1;
    return resource_respond(req, &llm_providers_resource, 200, res);
}

int
llm_providers_delete(struct request *req)
{
    const char *params[1] = { req->path_ids[0] };

    if (request_query_check(req, NULL) < 0 ||
        resource_lock(req, &llm_providers_resource) < 0)
        return -1;

    if (db_run(req->db, &req->err, release_agents_sql, 1, params) < 0)
        return -1;
    return resource_delete_locked(req, &llm_providers_resource);
}
