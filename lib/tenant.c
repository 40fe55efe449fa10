#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "audit.h"
#include "conf.h"
#include "log.h"
#include "migrate.h"
#include "provision.h"
#include "tenant.h"

/*
 * Names a tenant may not take: hosts the platform itself may need, and
 * prefixes that look like PostgreSQL's or our own schema names.
 */
static const char *const reserved_slugs[] = {
    "www", "api", "admin", "public", "app", "mail", "static", "assets",
    "status", "docs", "help", "support", "billing", "auth", "login",
    "root", "system", "metrics", "health", "template", "tenant",
    "localhost", NULL
};

static const char *const reserved_prefixes[] = {
    "pg-", "tenant-", "xn--", NULL
};

int
slug_check(const char *slug, struct crewd_error *err)
{
    size_t len = strlen(slug);

    if (len == 0 || len > SLUG_MAX) {
        error_field(err, "/slug", "must be 1 to %d characters", SLUG_MAX);
        return -1;
    }

    for (size_t i = 0; i < len; i++) {
        char c = slug[i];
        bool edge = i == 0 || i == len - 1;

        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            continue;
        if (c == '-' && !edge)
            continue;
        error_field(err, "/slug", "must be lower-case letters, digits and "
            "inner hyphens (a DNS label)");
        return -1;
    }

    for (size_t i = 0; reserved_slugs[i] != NULL; i++)
        if (strcmp(slug, reserved_slugs[i]) == 0) {
            error_field(err, "/slug", "is reserved");
            return -1;
        }
    /*
     * DNS keeps labels with "--" in the third and fourth places for
     * encodings (RFC 5891): xn-- today, others later.
     */
    if (len >= 4 && slug[2] == '-' && slug[3] == '-') {
        error_field(err, "/slug", "is reserved");
        return -1;
    }
    for (size_t i = 0; reserved_prefixes[i] != NULL; i++)
        if (strncmp(slug, reserved_prefixes[i],
                strlen(reserved_prefixes[i])) == 0) {
            error_field(err, "/slug", "is reserved");
            return -1;
        }
    return 0;
}

bool
tenant_schema_name_valid(const char *schema)
{
    static const char prefix[] = "tenant_";

    if (strncmp(schema, prefix, sizeof(prefix) - 1) != 0)
        return false;
    schema += sizeof(prefix) - 1;
    if (strlen(schema) != 16)
        return false;
    for (; *schema != '\0'; schema++)
        if (!((*schema >= '0' && *schema <= '9') ||
              (*schema >= 'a' && *schema <= 'f')))
            return false;
    return true;
}

static void
fill_tenant(struct tenant *out, const PGresult *res, int row)
{
    snprintf(out->id, sizeof(out->id), "%s", PQgetvalue(res, row, 0));
    snprintf(out->slug, sizeof(out->slug), "%s", PQgetvalue(res, row, 1));
    snprintf(out->schema, sizeof(out->schema), "%s",
        PQgetvalue(res, row, 2));
    out->is_active = db_bool(res, row, 3);
    out->audit_reads = db_bool(res, row, 4);
}

int
tenant_find_by_slug(struct db *db, struct arena *a, const char *slug,
    struct tenant *out, struct crewd_error *err)
{
    const char *params[1] = { slug };
    PGresult *res;

    res = db_exec(db, a, err,
        "SELECT id, slug, db_schema, is_active, audit_reads"
        " FROM public.tenants WHERE slug = $1", 1, params);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0)
        return 0;

    fill_tenant(out, res, 0);
    if (!tenant_schema_name_valid(out->schema)) {
        log_error("tenant %s has an invalid schema name", out->id);
        return error_set(err, 500, "internal error");
    }
    return 1;
}

void
tenant_schema_name_random(char out[SCHEMA_NAME_MAX + 1])
{
    unsigned char bytes[8];

    randombytes_buf(bytes, sizeof(bytes));
    memcpy(out, "tenant_", 7);
    sodium_bin2hex(out + 7, SCHEMA_NAME_MAX + 1 - 7, bytes, sizeof(bytes));
}

int
tenant_create(struct db *db, struct mongo *mongo, struct arena *a,
    const struct tenant_signup *in, struct tenant *out,
    char admin_user_id[UUID_TEXT_LEN + 1], struct crewd_error *err)
{
    const char *params[4];
    PGresult *res;

    uuid_generate(out->id);
    tenant_schema_name_random(out->schema);
    snprintf(out->slug, sizeof(out->slug), "%s", in->slug);
    out->is_active = true;
    out->audit_reads = false;

    if (db_begin(db, err) < 0)
        return -1;

    params[0] = out->id;
    params[1] = in->name;
    params[2] = in->slug;
    params[3] = out->schema;
    res = db_exec(db, a, err, "SELECT public.crewd_create_tenant"
        "($1, $2, $3, $4)", 4, params);
    if (res == NULL) {
        if (err->status == 409 && strstr(err->constraint, "slug") != NULL)
            error_set(err, 409, "the slug \"%s\" is taken", in->slug);
        goto fail;
    }
    snprintf(out->created_at, sizeof(out->created_at), "%s",
        db_timestamp(a, res, 0, 0));

    /* The admin and the audit entry are written as the tenant. */
    if (tenant_context_enter(db, out, err) < 0)
        goto fail;

    params[0] = out->id;
    params[1] = in->admin_email;
    params[2] = in->admin_password_hash;
    res = db_exec(db, a, err, "INSERT INTO public.users"
        " (tenant_id, email, password_hash, role)"
        " VALUES ($1, $2, $3, 'admin') RETURNING id", 3, params);
    if (res == NULL)
        goto fail;
    snprintf(admin_user_id, UUID_TEXT_LEN + 1, "%s", PQgetvalue(res, 0, 0));

    if (audit_signup(db, a, out, in->name, admin_user_id, in->admin_email,
            in->ip_address, in->user_agent, err) < 0)
        goto fail;

    if (db_notify_tenants(db, err) < 0 || db_commit(db, err) < 0)
        goto fail;

    log_info("tenant %s created with schema %s", out->slug, out->schema);

    /* Committed: from here on a failure only postpones the collections. */
    if (mongo_configured(mongo)) {
        struct crewd_error later;

        error_clear(&later);
        if (provision_tenant(db, mongo, a, out->id, &later) < 0)
            log_warn("tenant %s: MongoDB collections not made yet (%s); "
                "they are made when MongoDB answers", out->slug,
                later.detail);
    }
    return 0;

fail:
    db_rollback(db);
    return -1;
}

int
tenant_delete(struct db *db, struct arena *a, const char *slug,
    struct tenant *out, long *users, struct crewd_error *err)
{
    const char *params[1];
    char *quoted = NULL;
    PGresult *res;

    if (db_begin(db, err) < 0)
        return -1;

    /*
     * The lock makes a concurrent sign-in, user creation or second
     * delete wait for this one; they then find no tenant.
     */
    params[0] = slug;
    res = db_exec(db, a, err,
        "SELECT id, slug, db_schema, is_active, audit_reads"
        " FROM public.tenants WHERE slug = $1 FOR UPDATE", 1, params);
    if (res == NULL)
        goto fail;
    if (PQntuples(res) == 0) {
        error_set(err, 404, "no such tenant: %s", slug);
        goto fail;
    }
    fill_tenant(out, res, 0);

    /* The name goes into SQL text: it must be one of ours. */
    if (!tenant_schema_name_valid(out->schema)) {
        log_error("tenant %s has an invalid schema name", out->id);
        error_set(err, 500, "tenant %s has an invalid schema name", slug);
        goto fail;
    }

    params[0] = out->id;
    res = db_exec(db, a, err, "SELECT count(*) FROM public.users"
        " WHERE tenant_id = $1", 1, params);
    if (res == NULL)
        goto fail;
    *users = strtol(PQgetvalue(res, 0, 0), NULL, 10);

    quoted = PQescapeIdentifier(db->conn, out->schema, strlen(out->schema));
    if (quoted == NULL) {
        error_set(err, 500, "internal error");
        goto fail;
    }
    if (db_run(db, err, arena_printf(a, "DROP SCHEMA %s CASCADE", quoted),
            0, NULL) < 0)
        goto fail;

    params[0] = out->schema;
    if (db_run(db, err, "SELECT public.crewd_drop_tenant_role($1)", 1,
            params) < 0)
        goto fail;

    /* public.users rows go with it (ON DELETE CASCADE). */
    params[0] = out->id;
    if (db_run(db, err, "DELETE FROM public.tenants WHERE id = $1", 1,
            params) < 0)
        goto fail;

    if (db_notify_tenants(db, err) < 0 || db_commit(db, err) < 0)
        goto fail;

    PQfreemem(quoted);
    log_info("tenant %s (%s) deleted with schema %s", out->slug, out->id,
        out->schema);
    return 0;

fail:
    PQfreemem(quoted);
    db_rollback(db);
    return -1;
}

/* One UPDATE of public.tenants by slug, announced to running crewds. */
static int
update_by_slug(struct db *db, const char *sql, int nparams,
    const char *const *params, struct crewd_error *err)
{
    PGresult *res;
    int changed;

    if (db_begin(db, err) < 0)
        return -1;
    res = db_exec(db, NULL, err, sql, nparams, params);
    if (res == NULL)
        goto fail;
    changed = atoi(PQcmdTuples(res));
    PQclear(res);
    if (changed == 0) {
        res = db_exec(db, NULL, err, "SELECT 1 FROM public.tenants"
            " WHERE slug = $1", 1, params);
        if (res == NULL)
            goto fail;
        if (PQntuples(res) == 0) {
            PQclear(res);
            error_set(err, 404, "no such tenant: %s", params[0]);
            goto fail;
        }
        PQclear(res);
    }
    if (db_notify_tenants(db, err) < 0 || db_commit(db, err) < 0)
        goto fail;
    return changed > 0 ? 1 : 0;

fail:
    db_rollback(db);
    return -1;
}

int
tenant_set_active(struct db *db, const char *slug, bool active,
    struct crewd_error *err)
{
    const char *params[2] = { slug, active ? "true" : "false" };

    return update_by_slug(db, "UPDATE public.tenants SET is_active = $2,"
        " updated_at = now() WHERE slug = $1 AND is_active <> $2", 2, params,
        err);
}

int
tenant_rename_slug(struct db *db, const char *slug, const char *new_slug,
    struct crewd_error *err)
{
    const char *params[2] = { slug, new_slug };
    int rc;

    if (slug_check(new_slug, err) < 0)
        return -1;
    rc = update_by_slug(db, "UPDATE public.tenants SET slug = $2,"
        " updated_at = now() WHERE slug = $1 AND slug <> $2", 2, params,
        err);
    if (rc < 0 && err->status == 409)
        error_set(err, 409, "the slug \"%s\" is taken", new_slug);
    return rc;
}

int
tenant_switch_prepare(const struct db *db, const struct tenant *tenant,
    struct tenant_switch *sw, struct crewd_error *err)
{
    /* Both go into SQL text below, or name a role: they must be ours. */
    if (!tenant_schema_name_valid(tenant->schema) ||
        !uuid_parse(tenant->id, strlen(tenant->id), sw->id)) {
        log_error("tenant %s: refusing an invalid schema or id",
            tenant->slug);
        return error_set(err, 500, "internal error");
    }

    if (!db->owner && db->isolation == ISOLATION_SCHEMA) {
        snprintf(sw->text[0], sizeof(sw->text[0]),
            "SET LOCAL search_path TO %s", tenant->schema);
        snprintf(sw->text[1], sizeof(sw->text[1]),
            "SET LOCAL crewd.tenant_id TO '%s'", sw->id);
        sw->statements[0] = (struct db_statement){ sw->text[0], 0, NULL };
        sw->statements[1] = (struct db_statement){ sw->text[1], 0, NULL };
        sw->count = 2;
        return 0;
    }

    sw->params[0] = tenant->schema;
    sw->params[1] = sw->id;
    /* The role is named after the schema (public.crewd_grant_tenant). */
    sw->params[2] = tenant->schema;
    sw->statements[0] = (struct db_statement){
        db->owner
            ? "SELECT set_config('search_path', $1, true),"
              " set_config('crewd.tenant_id', $2, true)"
            : "SELECT set_config('search_path', $1, true),"
              " set_config('crewd.tenant_id', $2, true),"
              " set_config('role', $3, true)",
        db->owner ? 2 : 3, sw->params };
    sw->count = 1;
    return 0;
}

int
tenant_context_enter(struct db *db, const struct tenant *tenant,
    struct crewd_error *err)
{
    struct tenant_switch sw;
    PGresult *results[2] = { NULL, NULL };

    if (tenant_switch_prepare(db, tenant, &sw, err) < 0 ||
        db_pipeline(db, NULL, err, sw.statements, sw.count, results) < 0)
        return -1;
    PQclear(results[0]);
    PQclear(results[1]);
    return 0;
}

int
email_normalise(char *email, const char *field, struct crewd_error *err)
{
    size_t len = strlen(email);
    char *at = strchr(email, '@');

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)email[i];

        if (c <= ' ' || c == 0x7f) {
            error_field(err, field, "must be an e-mail address");
            return -1;
        }
        email[i] = (char)tolower(c);
    }

    /* The common shape; dots never lead, trail or double up. */
    if (len > 254 || at == NULL || at == email || strchr(at + 1, '@') != NULL
        || strchr(at + 1, '.') == NULL || at[1] == '.' ||
        email[len - 1] == '.' || email[0] == '.' || at[-1] == '.' ||
        strstr(email, "..") != NULL) {
        error_field(err, field, "must be an e-mail address");
        return -1;
    }
    return 0;
}
