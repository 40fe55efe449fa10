#include "config.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "tenant_reset.h"
#include "tenant_watch.h"

/*
 * The cache: open addressing over a fixed table.  It only ever holds
 * tenants that exist, so a flood of unknown slugs cannot fill it; when it
 * is three quarters full it starts over, which costs one query per tenant.
 *
 * crewd and crewctl announce their changes to tenants with NOTIFY; the
 * tenant watch hears them (fcgi/tenant_watch.h), and the cache empties
 * at the next request.  While nobody watches, nothing is cached.  An
 * entry also expires after CACHE_TTL seconds, so a change made behind
 * our back (by hand in psql, say) is seen within that time too.
 */
#define CACHE_SLOTS 4096
#define CACHE_TTL 10

struct cache_slot {
    bool used;
    time_t loaded;
    struct tenant tenant;
};

static struct cache_slot cache[CACHE_SLOTS];
static size_t cache_count;
static uint64_t cache_generation;       /* of the tenant watch */

void
tenant_cache_clear(void)
{
    memset(cache, 0, sizeof(cache));
    cache_count = 0;
}

static uint32_t
slug_hash(const char *slug)
{
    uint32_t h = 2166136261u;

    for (; *slug != '\0'; slug++) {
        h ^= (unsigned char)*slug;
        h *= 16777619u;
    }
    return h;
}

static struct cache_slot *
cache_find(const char *slug, bool *found)
{
    size_t i = slug_hash(slug) % CACHE_SLOTS;

    while (cache[i].used) {
        if (strcmp(cache[i].tenant.slug, slug) == 0) {
            *found = true;
            return &cache[i];
        }
        i = (i + 1) % CACHE_SLOTS;
    }
    *found = false;
    return &cache[i];
}

int
tenant_resolve(struct db *db, struct arena *a, const char *slug,
    const struct tenant **out, struct crewd_error *err)
{
    struct cache_slot *slot;
    struct tenant fresh;
    bool found;
    int rc;

    /* A tenant changed somewhere, or nobody watches: forget them all. */
    if (tenant_watch_changed(&cache_generation))
        tenant_cache_clear();

    if (strlen(slug) > SLUG_MAX)
        return error_set(err, 404, "no such tenant");

    slot = cache_find(slug, &found);
    if (found && time(NULL) - slot->loaded > CACHE_TTL) {
        rc = tenant_find_by_slug(db, a, slug, &fresh, err);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            /* Gone: the simplest correct thing is to start over. */
            tenant_cache_clear();
            return error_set(err, 404, "no such tenant");
        }
        slot->tenant = fresh;
        slot->loaded = time(NULL);
    }
    if (!found) {
        rc = tenant_find_by_slug(db, a, slug, &fresh, err);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return error_set(err, 404, "no such tenant");

        if (cache_count >= CACHE_SLOTS * 3 / 4) {
            tenant_cache_clear();
            slot = cache_find(slug, &found);
        }
        slot->used = true;
        slot->loaded = time(NULL);
        slot->tenant = fresh;
        cache_count++;
    }

    if (!slot->tenant.is_active)
        return error_set(err, 404, "no such tenant");
    *out = &slot->tenant;
    return 0;
}

/*
 * What the opening of a tenant's transaction holds until it has run:
 * its statements' parameters must outlive tenant_reset_begin() when the
 * opening waits for the handler's first statement.
 */
struct reset_opening {
    struct db_opening opening;
    struct tenant_switch sw;
    char scope[sizeof(((struct tenant *)0)->schema)];
    tenant_first_check check;
    void *arg;
};

/* The opening ran: the first statement's result (BEGIN's is before it). */
static int
reset_opening_check(void *arg, PGresult *const *results,
    struct crewd_error *err)
{
    struct reset_opening *ro = arg;

    return ro->check != NULL ? ro->check(ro->arg, results[1], err) : 0;
}

int
tenant_reset_begin(struct db *db, struct arena *a,
    const struct tenant *tenant, const struct db_statement *first,
    tenant_first_check check, void *arg, bool defer,
    struct crewd_error *err)
{
    struct reset_opening *ro = arena_alloc(a, sizeof(*ro));
    struct db_opening *o = &ro->opening;

    /*
     * The tenant's schema alone on the search path (no public, so an
     * unqualified name can only mean a tenant table; shared tables are
     * always written with their schema), its id for row-level security,
     * and its role: all transaction-local.  BEGIN, the request's first
     * statement and the switch go in one round trip.  The first statement
     * runs before the switch, under the session's own role and search
     * path: a statement run after the switch is analysed again each time,
     * since the path it was prepared under has changed.
     */
    if (tenant_switch_prepare(db, tenant, &ro->sw, err) < 0)
        return -1;
    o->count = 0;
    o->statements[o->count++] = (struct db_statement){ "BEGIN", 0, NULL };
    if (first != NULL)
        o->statements[o->count++] = *first;
    for (int i = 0; i < ro->sw.count; i++)
        o->statements[o->count++] = ro->sw.statements[i];
    ro->check = first != NULL ? check : NULL;
    ro->arg = arg;
    o->check = reset_opening_check;
    o->arg = ro;

    /*
     * The tenant's statements are prepared per tenant, after its switch,
     * so that their plans outlive the request (lib/db.h).
     */
    snprintf(ro->scope, sizeof(ro->scope), "%s", tenant->schema);
    db->plan_scope = ro->scope;

    /* Deferred, it goes out with the handler's first statement. */
    db_opening_defer(db, o);
    if (defer)
        return 0;
    if (db_opening_flush(db, err) < 0) {
        db_rollback(db);
        return -1;
    }
    return 0;
}

int
tenant_reset_settle(struct db *db, struct crewd_error *err)
{
    return db_opening_flush(db, err);
}

int
tenant_reset_end(struct db *db, bool commit, struct crewd_error *err)
{
    bool clean;
    int rc;

    /*
     * Ending the transaction undoes everything set with is_local.  What
     * a request could leave beyond it (a role or setting of the session,
     * a prepared statement, a cursor WITH HOLD, a temporary table, a
     * session-level advisory lock) is checked in the same round trip,
     * after a commit and after a rollback alike: a rollback leaves less
     * than a commit, never more.  Only a session found unclean, or one
     * whose end failed, is thrown away, with every plan it held: a 404
     * must not cost the next requests their prepared statements.
     */
    rc = db_end_checked(db, commit, &clean, err);

    /* A failed commit (or its writes) leaves a transaction to end. */
    if (!db_idle(db))
        db_rollback(db);
    if (db_idle(db) && (!clean || rc < 0)) {
        if (rc == 0)
            log_warn("a request left state on the connection; "
                "discarding the session");
        db_discard_session(db);
    }

    /* A table of prepared statements that is full starts over. */
    if (db_idle(db) && db_prepared_full(db)) {
        log_info("%d statements prepared on this connection;"
            " starting the session over", DB_PREPARED_MAX);
        db_discard_session(db);
    }

    /* Whatever happened, the next request must find an idle connection. */
    if (!db_idle(db) && db->conn != NULL) {
        log_warn("connection not idle after a request; re-opening");
        PQfinish(db->conn);
        db->conn = NULL;
    }
    return rc;
}
