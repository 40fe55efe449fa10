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
 *                         all in one round trip
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

/*
 * Opens the tenant's transaction: BEGIN, the request's first statement
 * when first is not NULL, and the switch (lib/tenant.h), all in one
 * round trip.  The first statement runs before the switch, under the
 * session's role and search path; its result goes to *first_result
 * (released with the arena).  Returns 0 or -1 (503, or the first
 * statement's error).
 */
int tenant_reset_begin(struct db *db, struct arena *a,
    const struct tenant *tenant, const struct db_statement *first,
    PGresult **first_result, struct crewd_error *err);

/*
 * Ends it: commits when commit is true, otherwise rolls back.  A failed
 * commit fills err.  Either way the connection is idle afterwards.
 */
int tenant_reset_end(struct db *db, bool commit, struct crewd_error *err);

/* Empties the cache (tests, and after a reconnect). */
void tenant_cache_clear(void);

#endif
