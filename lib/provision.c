#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "provision.h"

static const char SQL_TENANT_TTL[] =
    "SELECT execution_log_ttl_days, chat_message_ttl_days,"
    " mongo_provisioned_at IS NULL"
    " FROM public.tenants WHERE id = $1";

/* Only when the TTLs are still the ones the collections were made with. */
static const char SQL_MARK_PROVISIONED[] =
    "UPDATE public.tenants SET mongo_provisioned_at = now()"
    " WHERE id = $1 AND execution_log_ttl_days = $2"
    " AND chat_message_ttl_days = $3";

static const char SQL_PENDING[] =
    "SELECT id FROM public.tenants WHERE mongo_provisioned_at IS NULL"
    " ORDER BY created_at LIMIT $1";

static const char SQL_SET_TTL[] =
    "UPDATE public.tenants SET"
    " execution_log_ttl_days = COALESCE($2::integer, execution_log_ttl_days),"
    " chat_message_ttl_days = COALESCE($3::integer, chat_message_ttl_days),"
    " mongo_provisioned_at = NULL"
    " WHERE id = $1";

/*
 * One sweeper at a time: a transaction-level advisory lock on this key
 * (the bytes of "crewdmgo").  The sweep is one transaction, and a
 * session-level lock is not for the application role to take (it would
 * outlive the request that took it: sql/bootstrap.sql revokes them).
 */
#define SWEEP_LOCK "7165901520560285551"

static const char SQL_SWEEP_LOCK[] = "SELECT pg_try_advisory_xact_lock("
    SWEEP_LOCK ")";

/* Reads the tenant's TTLs and pending mark; 404 when there is no tenant. */
static int
read_tenant(struct db *db, struct arena *a, const char *tenant_id,
    struct mongo_ttl *ttl, bool *pending, struct crewd_error *err)
{
    const char *params[1] = { tenant_id };
    PGresult *res;

    res = db_exec(db, a, err, SQL_TENANT_TTL, 1, params);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0)
        return error_set(err, 404, "no such tenant");
    ttl->execution_logs_days = atoi(PQgetvalue(res, 0, 0));
    ttl->chat_messages_days = atoi(PQgetvalue(res, 0, 1));
    *pending = db_bool(res, 0, 2);
    return 0;
}

static int
provision_with(struct db *db, struct mongo *m, struct arena *a,
    const char *tenant_id, const struct mongo_ttl *ttl,
    struct crewd_error *err)
{
    const char *params[3];

    if (mongo_provision_tenant(m, tenant_id, ttl, err) < 0)
        return -1;

    params[0] = tenant_id;
    params[1] = arena_printf(a, "%d", ttl->execution_logs_days);
    params[2] = arena_printf(a, "%d", ttl->chat_messages_days);
    if (db_run(db, err, SQL_MARK_PROVISIONED, 3, params) < 0)
        return -1;
    log_info("MongoDB collections of tenant %s are made", tenant_id);
    return 0;
}

int
provision_tenant(struct db *db, struct mongo *m, struct arena *a,
    const char *tenant_id, struct crewd_error *err)
{
    struct mongo_ttl ttl;
    bool pending;

    if (read_tenant(db, a, tenant_id, &ttl, &pending, err) < 0)
        return -1;
    return provision_with(db, m, a, tenant_id, &ttl, err);
}

int
provision_pending(struct db *db, struct arena *a, const char *tenant_id,
    bool *pending, struct crewd_error *err)
{
    struct mongo_ttl ttl;

    return read_tenant(db, a, tenant_id, &ttl, pending, err);
}

int
provision_ensure(struct db *db, struct mongo *m, struct arena *a,
    const char *tenant_id, struct crewd_error *err)
{
    struct mongo_ttl ttl;
    bool pending;

    if (read_tenant(db, a, tenant_id, &ttl, &pending, err) < 0)
        return -1;
    if (!pending)
        return 0;
    return provision_with(db, m, a, tenant_id, &ttl, err);
}

int
provision_sweep(struct db *db, struct mongo *m, struct arena *a, int max,
    void (*report)(const char *tenant_id,
        const struct crewd_error *failure), struct crewd_error *err)
{
    const char *params[1];
    PGresult *res;
    int made = 0;

    if (!mongo_available(m))
        return 0;

    if (db_begin(db, err) < 0)
        return -1;
    res = db_exec(db, a, err, SQL_SWEEP_LOCK, 0, NULL);
    if (res == NULL) {
        db_rollback(db);
        return -1;
    }
    if (!db_bool(res, 0, 0)) {
        db_rollback(db);
        return 0;
    }

    params[0] = arena_printf(a, "%d", max);
    res = db_exec(db, a, err, SQL_PENDING, 1, params);
    if (res == NULL) {
        made = -1;
        goto unlock;
    }

    for (int i = 0; i < PQntuples(res); i++) {
        const char *tenant_id = PQgetvalue(res, i, 0);
        struct crewd_error failure;

        error_clear(&failure);
        if (provision_tenant(db, m, a, tenant_id, &failure) == 0) {
            made++;
            if (report != NULL)
                report(tenant_id, NULL);
            continue;
        }
        if (report != NULL)
            report(tenant_id, &failure);
        if (failure.status == 503) {
            if (made == 0) {
                *err = failure;
                made = -1;
            }
            break;
        }
        log_error("tenant %s: its MongoDB collections could not be made: "
            "%s", tenant_id, failure.detail);
    }

unlock:
    {
        struct crewd_error ignored;

        /* The marks made so far stay; the lock goes with the commit. */
        error_clear(&ignored);
        if (db_commit(db, &ignored) < 0)
            db_rollback(db);
    }
    return made;
}

int
provision_set_ttl(struct db *db, struct arena *a, const char *tenant_id,
    int execution_logs_days, int chat_messages_days,
    struct crewd_error *err)
{
    const char *params[3];
    PGresult *res;

    if (execution_logs_days != 0 &&
        (execution_logs_days < MONGO_TTL_DAYS_MIN ||
         execution_logs_days > MONGO_TTL_DAYS_MAX))
        error_field(err, "/execution_log_ttl_days", "must be from %d to %d",
            MONGO_TTL_DAYS_MIN, MONGO_TTL_DAYS_MAX);
    if (chat_messages_days != 0 &&
        (chat_messages_days < MONGO_TTL_DAYS_MIN ||
         chat_messages_days > MONGO_TTL_DAYS_MAX))
        error_field(err, "/chat_message_ttl_days", "must be from %d to %d",
            MONGO_TTL_DAYS_MIN, MONGO_TTL_DAYS_MAX);
    if (err->status != 0)
        return -1;

    params[0] = tenant_id;
    params[1] = execution_logs_days != 0
        ? arena_printf(a, "%d", execution_logs_days) : NULL;
    params[2] = chat_messages_days != 0
        ? arena_printf(a, "%d", chat_messages_days) : NULL;
    res = db_exec(db, a, err, SQL_SET_TTL, 3, params);
    if (res == NULL)
        return -1;
    if (strcmp(PQcmdTuples(res), "1") != 0)
        return error_set(err, 404, "no such tenant");
    return 0;
}
