/*
 * The tenant reset: what happens to the worker's one database connection
 * around every tenant request.
 *
 *   tenant_resolve()      slug -> tenant (id, schema), from a per-worker
 *                         cache that a NOTIFY on crewd_tenants empties
 *   tenant_reset_begin()  BEGIN, the request's first statement (the
 *                         token's user) and the switch of lib/tenant.c:
 *                         transaction-locally, the tenant's own role,
 *                         its schema alone on the search path and its id
 *                         for row-level security, as bound parameters;
 *                         all in one round trip, which for a resource's
 *                         routes also carries the handler's first
 *                         statement
 *   ... the handler runs ...
 *   tenant_reset_end()    COMMIT, or ROLLBACK on any error, and in the
 *                         same round trip a check that the session holds
 *                         nothing of the request; if it does, or after a
 *                         rollback, DISCARD ALL; the connection must then
 *                         be idle, otherwise it is re-opened
 *
 * Nothing of one tenant outlives its transaction on the connection
 * (docs/isolation.md; tests/integration/test_isolation.py plants every
 * kind of leftover and looks for it from the next tenant's request).
 */
#ifndef CREWD_TENANT_RESET_H
#define CREWD_TENANT_RESET_H

#include <stdbool.h>

#include "arena.h"
#include "db.h"
#include "error.h"
#include "tenant.h"

/*
 * Resolves slug to an active tenant.  An unknown or suspended slug is a
 * 404; a database failure a 503.  *out stays valid until the next call.
 */
int tenant_resolve(struct db *db, struct arena *a, const char *slug,
    const struct tenant **out, struct crewd_error *err);

/* Reads the result of the request's first statement; -1 refuses. */
typedef int (*tenant_first_check)(void *arg, const PGresult *res,
    struct crewd_error *err);

/*
 * Opens the tenant's transaction: BEGIN, the request's first statement
 * when first is not NULL, and the switch (lib/tenant.h), all in one
 * round trip.  The first statement runs before the switch, under the
 * session's role and search path; check(arg, its result) decides
 * whether the request goes on.  first and its parameters must live
 * until the opening has run.
 *
 * With defer, nothing is sent yet: the opening goes out with the
 * handler's first statement, in the same round trip (db_opening_defer),
 * and check's refusal becomes that statement's failure.  Only for
 * handlers that do nothing outside PostgreSQL before their first
 * statement, and that must not depend on what check learns before it.
 * tenant_reset_settle() runs an opening still waiting after the handler.
 *
 * Returns 0 or -1 (503, or the first statement's error, or check's).
 */
int tenant_reset_begin(struct db *db, struct arena *a,
    const struct tenant *tenant, const struct db_statement *first,
    tenant_first_check check, void *arg, bool defer,
    struct crewd_error *err);

/*
 * Runs an opening that is still waiting (its handler sent no
 * statement, or failed before one) and returns check's verdict: 0, or
 * -1 with err replaced.
 */
int tenant_reset_settle(struct db *db, struct crewd_error *err);

/*
 * Ends it: commits when commit is true, otherwise rolls back.  A failed
 * commit fills err.  Either way the connection is idle afterwards.
 */
int tenant_reset_end(struct db *db, bool commit, struct crewd_error *err);

/* Empties the cache (tests, and after a reconnect). */
void tenant_cache_clear(void);

#endif
