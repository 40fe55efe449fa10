/*
 * Making a tenant's MongoDB collections, and remembering whether they
 * are made: public.tenants.mongo_provisioned_at (NULL: pending).
 *
 * A tenant is committed to PostgreSQL first; its collections are made
 * right after (tenant_create), and whenever that could not happen
 * (MongoDB down) the tenant stays pending and is retried:
 *
 *   - by every request that needs the tenant's collections
 *     (provision_ensure), which makes them on the spot or answers 503;
 *   - by the workers in the background (provision_sweep, every
 *     mongodb_provision_interval seconds, one worker at a time);
 *   - by "crewctl mongo provision".
 *
 * Provisioning can run any number of times (mongo_provision_tenant), so
 * two of these racing is harmless.  docs/mongodb.md explains the design.
 *
 * These functions use the connection as they find it: idle (each
 * statement commits on its own) or inside the caller's transaction.
 */
#ifndef CREWD_PROVISION_H
#define CREWD_PROVISION_H

#include <stdbool.h>

#include "arena.h"
#include "db.h"
#include "error.h"
#include "mongo.h"

/*
 * Makes tenant_id's collections with the TTLs stored for it and marks it
 * provisioned.  A TTL changed while this ran leaves the mark clear, so
 * the change is applied by the next attempt.  -1 with err (503 while
 * MongoDB is down).
 */
int provision_tenant(struct db *db, struct mongo *m, struct arena *a,
    const char *tenant_id, struct crewd_error *err);

/*
 * For a request about to use the tenant's collections: 0 when they are
 * made (one indexed read), or after making them now; -1 with err (503
 * while MongoDB is down) otherwise.
 */
int provision_ensure(struct db *db, struct mongo *m, struct arena *a,
    const char *tenant_id, struct crewd_error *err);

/* Sets *pending: whether tenant_id's collections are still to be made. */
int provision_pending(struct db *db, struct arena *a, const char *tenant_id,
    bool *pending, struct crewd_error *err);

/*
 * Provisions up to max pending tenants, oldest first, unless another
 * process is sweeping (a PostgreSQL advisory lock keeps it to one).
 * Stops at the first 503 (MongoDB went away); a tenant failing for
 * another reason is logged and skipped.  report, when not NULL, is
 * called for each tenant tried.  Needs an idle connection.  Returns the
 * number of tenants provisioned, or -1 with err.
 */
int provision_sweep(struct db *db, struct mongo *m, struct arena *a,
    int max, void (*report)(const char *tenant_id,
        const struct crewd_error *failure), struct crewd_error *err);

/*
 * Sets a tenant's TTLs (days; 0 keeps a value) and marks it pending, so
 * its TTL indexes follow.  A value out of range is a 422.
 */
int provision_set_ttl(struct db *db, struct arena *a, const char *tenant_id,
    int execution_logs_days, int chat_messages_days,
    struct crewd_error *err);

#endif
