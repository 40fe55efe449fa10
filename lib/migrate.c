#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "migrate.h"
#include "tenant.h"

/* Where each schema records the migrations it has had. */
#define VERSION_TABLE "schema_migrations (" \
    " version integer PRIMARY KEY," \
    " name text NOT NULL," \
    " applied_at timestamptz NOT NULL DEFAULT now())"

/*
 * Only two kinds of schema names ever reach the SQL text built here:
 * tenant_template and names that passed tenant_schema_name_valid().  They
 * are still quoted, so the text is right even if that ever changes.
 */
static bool
schema_name_ours(const char *schema)
{
    return strcmp(schema, TEMPLATE_SCHEMA) == 0 ||
        tenant_schema_name_valid(schema);
}

int
migrate_tenant_latest(void)
{
    if (tenant_migrations_count == 0)
        return 0;
    return tenant_migrations[tenant_migrations_count - 1].version;
}

int
migrate_public(struct db *db, struct crewd_error *err)
{
    int applied = 0;

    if (db_run(db, err, "CREATE TABLE IF NOT EXISTS public."
            VERSION_TABLE, 0, NULL) < 0)
        return -1;

    for (size_t i = 0; i < public_migrations_count; i++) {
        const struct migration *m = &public_migrations[i];
        char version[16];
        const char *params[2] = { version, m->name };
        PGresult *res;
        bool done;

        snprintf(version, sizeof(version), "%d", m->version);
        if (db_begin(db, err) < 0)
            return -1;

        /* The lock makes two concurrent runs take turns. */
        if (db_run(db, err, "LOCK TABLE public.schema_migrations "
                "IN EXCLUSIVE MODE", 0, NULL) < 0)
            goto fail;
        res = db_exec(db, NULL, err, "SELECT 1 FROM public.schema_migrations"
            " WHERE version = $1", 1, params);
        if (res == NULL)
            goto fail;
        done = PQntuples(res) > 0;
        PQclear(res);
        if (done) {
            db_rollback(db);
            continue;
        }

        if (db_run_script(db, err, m->up) < 0 ||
            db_run(db, err, "INSERT INTO public.schema_migrations"
                " (version, name) VALUES ($1, $2)", 2, params) < 0 ||
            db_commit(db, err) < 0)
            goto fail;
        log_info("public schema migrated to %s", m->name);
        applied++;
    }
    return applied;

fail:
    db_rollback(db);
    return -1;
}

int
migrate_schema_version(struct db *db, const char *schema,
    struct crewd_error *err)
{
    const char *params[1] = { schema };
    PGresult *res;
    const char *v;
    int version;

    res = db_exec(db, NULL, err,
        "SELECT CASE WHEN to_regclass(quote_ident($1) || "
        "'.schema_migrations') IS NULL THEN 0 ELSE -1 END", 1, params);
    if (res == NULL)
        return -1;
    version = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (version == 0)
        return 0;

    /* The name is ours (checked by the callers) and quoted. */
    {
        char *quoted = PQescapeIdentifier(db->conn, schema, strlen(schema));
        char sql[256];

        if (quoted == NULL)
            return error_set(err, 500, "could not quote a schema name");
        snprintf(sql, sizeof(sql),
            "SELECT coalesce(max(version), 0) FROM %s.schema_migrations",
            quoted);
        PQfreemem(quoted);
        res = db_exec(db, NULL, err, sql, 0, NULL);
    }
    if (res == NULL)
        return -1;
    v = PQgetvalue(res, 0, 0);
    version = atoi(v);
    PQclear(res);
    return version;
}

/*
 * The tenant migrations go into public.tenant_migrations, where
 * crewd_migrate_schema() and crewd_create_tenant() read them: one text
 * for every schema, whoever builds it.  A changed text is written again.
 */
static int
store_tenant_migrations(struct db *db, const struct migration *list,
    size_t count, struct crewd_error *err)
{
    for (size_t i = 0; i < count; i++) {
        const struct migration *m = &list[i];
        char version[16];
        const char *params[4] = { version, m->name, m->up, m->down };

        snprintf(version, sizeof(version), "%d", m->version);
        if (db_run(db, err, "INSERT INTO public.tenant_migrations"
                " (version, name, up_sql, down_sql)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (version) DO UPDATE"
                " SET name = $2, up_sql = $3, down_sql = $4"
                " WHERE (tenant_migrations.name, tenant_migrations.up_sql,"
                " tenant_migrations.down_sql) IS DISTINCT FROM ($2, $3, $4)",
                4, params) < 0)
            return -1;
    }
    return 0;
}

/* Every tenant's rights again: after the mode or the role changed. */
static int
grant_every_tenant(struct db *db, struct crewd_error *err)
{
    return db_run(db, err, "SELECT public.crewd_grant_tenant(db_schema)"
        " FROM public.tenants ORDER BY created_at", 0, NULL);
}

int
migrate_platform(struct db *db, const struct migration *list, size_t count,
    int isolation, const char *app_role, struct crewd_error *err)
{
    const char *params[2] = { isolation_mode_name(isolation), app_role };
    PGresult *res;
    bool changed;

    if (db_begin(db, err) < 0)
        return -1;
    if (db_run(db, err, "LOCK TABLE public.platform_settings"
            " IN EXCLUSIVE MODE", 0, NULL) < 0 ||
        store_tenant_migrations(db, list, count, err) < 0)
        goto fail;

    res = db_exec(db, NULL, err, "SELECT NOT EXISTS (SELECT 1"
        " FROM public.platform_settings WHERE isolation = $1"
        " AND app_role = $2)", 2, params);
    if (res == NULL)
        goto fail;
    changed = db_bool(res, 0, 0);
    PQclear(res);

    if (db_run(db, err, "INSERT INTO public.platform_settings"
            " (isolation, app_role) VALUES ($1, $2)"
            " ON CONFLICT (singleton) DO UPDATE"
            " SET isolation = $1, app_role = $2", 2, params) < 0 ||
        db_run(db, err, "SELECT public.crewd_grant_platform()", 0,
            NULL) < 0 ||
        (changed && grant_every_tenant(db, err) < 0) ||
        db_commit(db, err) < 0)
        goto fail;
    if (changed)
        log_info("isolation mode %s for role %s", params[0], app_role);
    return 0;

fail:
    db_rollback(db);
    return -1;
}

int
migrate_check_platform(struct db *db, int isolation,
    struct crewd_error *err)
{
    const char *params[1] = { isolation_mode_name(isolation) };
    PGresult *res;
    int rc = 0;

    res = db_exec(db, NULL, err, "SELECT isolation, app_role = current_user"
        " FROM public.platform_settings", 0, NULL);
    if (res == NULL) {
        if (strcmp(err->sqlstate, "42P01") == 0)
            return error_set(err, 503, "the database has no platform "
                "settings: run crewctl db migrate");
        return -1;
    }
    if (PQntuples(res) == 0)
        rc = error_set(err, 503, "the database has no platform settings: "
            "run crewctl db migrate");
    else if (strcmp(PQgetvalue(res, 0, 0), params[0]) != 0)
        rc = error_set(err, 503, "isolation is %s in the configuration "
            "but %s in the database: run crewctl db migrate", params[0],
            PQgetvalue(res, 0, 0));
    else if (!db_bool(res, 0, 1))
        rc = error_set(err, 503, "the database was set up for another "
            "application role: run crewctl db migrate");
    PQclear(res);
    return rc;
}

int
migrate_schema(struct db *db, const char *schema, int target, int *from,
    struct crewd_error *err)
{
    const char *params[2] = { schema, NULL };
    bool template = strcmp(schema, TEMPLATE_SCHEMA) == 0;
    char version[16];
    PGresult *res;
    int applied;

    *from = 0;
    if (!schema_name_ours(schema))
        return error_set(err, 500, "refusing to migrate schema \"%s\"",
            schema);
    if (target > 0) {
        snprintf(version, sizeof(version), "%d", target);
        params[1] = version;
    }
    if (db_begin(db, err) < 0)
        return -1;

    if (template && db_run(db, err, "CREATE SCHEMA IF NOT EXISTS "
            TEMPLATE_SCHEMA, 0, NULL) < 0)
        goto fail;

    /* Serialises concurrent migrations of the same schema. */
    if (db_run(db, err, "SELECT pg_advisory_xact_lock("
            "hashtext('crewd.migrate.' || $1))", 1, params) < 0)
        goto fail;

    *from = migrate_schema_version(db, schema, err);
    if (*from < 0)
        goto fail;
    res = db_exec(db, NULL, err, "SELECT public.crewd_migrate_schema($1,"
        " $2::integer)", 2, params);
    if (res == NULL)
        goto fail;
    applied = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);

    /* New tables get the tenant's rights by the schema's default
       privileges (public.crewd_grant_tenant); nothing to grant here. */
    if (db_commit(db, err) < 0)
        goto fail;
    return applied;

fail:
    db_rollback(db);
    return -1;
}

int
migrate_stored_latest(struct db *db, struct crewd_error *err)
{
    PGresult *res;
    int latest;

    res = db_exec(db, NULL, err, "SELECT coalesce(max(version), 0)"
        " FROM public.tenant_migrations", 0, NULL);
    if (res == NULL)
        return -1;
    latest = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return latest;
}
