/*
 * The database layer: one libpq connection per process, opened after
 * fork() and kept.  Every statement goes through db_exec() with bound
 * parameters; its failures become a struct crewd_error whose status comes
 * from the one SQLSTATE table (error.c), and its results are released with
 * the request's arena.
 */
#ifndef CREWD_DB_H
#define CREWD_DB_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "arena.h"
#include "error.h"

/* The channel tenants' changes are announced on (tenant.c sends). */
#define DB_TENANT_CHANNEL "crewd_tenants"

/* One statement of a pipeline; a pipeline holds at most this many. */
#define DB_PIPELINE_MAX 8
/* Writes that wait for a round trip (db_run_batched), at most. */
#define DB_BATCH_MAX 4
struct db_statement {
    const char *sql;
    int nparams;
    const char *const *params;
};

struct db {
    PGconn *conn;
    char *conninfo;
    bool listen_tenants;    /* LISTEN on DB_TENANT_CHANNEL after connect */
    unsigned generation;    /* bumped by every (re)connect */
    bool tenants_changed;   /* a notification arrived, or a reconnect */
    /* Who this connection is (lib/tenant.h, tenant_context_enter): the
       owner role (crewctl), or the application role in this isolation
       mode (enum isolation_mode of conf.h). */
    bool owner;
    int isolation;
    /* The session checks of db_end_checked are prepared (at connect). */
    bool clean_check_ready;
    unsigned checks_since_full;     /* requests since the full check */
    /* Statements prepared on this connection (db.c), by scope and text;
       the scope is the tenant schema of the open transaction, set by
       fcgi/tenant_reset.c and cleared when the transaction ends. */
    struct db_prepared *prepared;
    unsigned prepared_generation;   /* of the connection they are on */
    const char *plan_scope;
    /* Statements waiting to ride with the next one (db_opening_defer). */
    struct db_opening *opening;
    /* Writes waiting for the next round trip (db_run_batched). */
    int batched_count;
    struct db_statement batched[DB_BATCH_MAX];
    /* The end rides with the next statement (db_end_ahead); it did, and
       the session check's answer. */
    bool end_ahead;
    bool ended_ahead;
    bool ended_clean;
};

/*
 * Connects.  With listen_tenants the connection LISTENs for tenant
 * changes.  Returns 0, or -1 with a 503 (the server is unreachable) and
 * the libpq message logged.
 */
int db_open(struct db *db, const char *conninfo, bool listen_tenants,
    struct crewd_error *err);
void db_close(struct db *db);

/*
 * The role a connection string logs in as (its user=), written to out;
 * false when it names none or cannot be parsed.
 */
bool db_conninfo_user(const char *conninfo, char *out, size_t size);

/*
 * Makes the connection ready for a new unit of work: re-opens it when it
 * is broken, and rolls back whatever a previous request left open.
 * Returns -1 with a 503 while the server is down.
 */
int db_ready(struct db *db, struct crewd_error *err);

/*
 * Reads pending notifications without blocking.  Returns true once per
 * tenant change (or reconnect) since the last call.
 */
bool db_poll_tenant_changes(struct db *db);

/*
 * Statements are prepared on first use, once per connection and scope,
 * under names starting with DB_PREPARED_PREFIX, and executed by name
 * afterwards.  Inside a tenant's transaction the scope is the tenant: a
 * statement is prepared after the switch, under the tenant's search
 * path, and PostgreSQL keeps its plan as long as it runs under that path
 * again, which is every later request of that tenant on this connection.
 * A statement shared by every tenant would instead be analysed and
 * planned again at each change of tenant (docs/performance.md).  At most
 * DB_PREPARED_MAX per connection; past that, statements go unnamed until
 * the session is renewed (db_prepared_full).
 */
#define DB_PREPARED_PREFIX "crewd_"
#define DB_PREPARED_MAX 2048

/* True when no more statements can be prepared on this session. */
bool db_prepared_full(const struct db *db);

/*
 * Runs one statement with text parameters (NULL is SQL NULL).  Returns
 * the result, released at the arena's reset, or NULL with err filled
 * (err->sqlstate and err->constraint set when the server said).
 */
PGresult *db_exec(struct db *db, struct arena *a, struct crewd_error *err,
    const char *sql, int nparams, const char *const *params);


/*
 * Sends n statements in one round trip (libpq's pipeline mode) and
 * reads their results into results[i], released at the arena's reset.
 * The server runs them in order and skips the rest after a failure.
 * Returns 0, or -1 with err filled from the first failure (results of
 * that one and the skipped ones are NULL).
 */
int db_pipeline(struct db *db, struct arena *a, struct crewd_error *err,
    const struct db_statement *statements, int n, PGresult **results);

/*
 * Statements that open a unit of work and need no round trip of their
 * own: db_opening_defer() keeps them, and the next db_exec() or
 * db_pipeline() sends them ahead of its own statements, in the same
 * round trip.  check() reads their results (results[i] for
 * statements[i], released after it returns) before the caller sees its
 * own: when it refuses (returns -1 with err filled), or when an opening
 * statement fails, the caller's statements fail with that error instead,
 * and whatever they did is the caller's to roll back.  At most
 * DB_OPENING_MAX statements, and the opening must outlive the next call.
 */
#define DB_OPENING_MAX 4
struct db_opening {
    struct db_statement statements[DB_OPENING_MAX];
    int count;
    int (*check)(void *arg, PGresult *const *results,
        struct crewd_error *err);
    void *arg;
};

void db_opening_defer(struct db *db, struct db_opening *opening);

/*
 * Sends a deferred opening on its own, if one waits.  Returns 0 (none
 * waited, or it ran and check() accepted it) or -1 with err filled.
 */
int db_opening_flush(struct db *db, struct crewd_error *err);

/*
 * Writes whose rows nobody reads and whose failure fails the unit of
 * work (an audit entry and its notification).  Inside a tenant's
 * request (db->plan_scope set, fcgi/tenant_reset.c) they are kept,
 * copied into a, and go out with the next round trip, at the latest
 * ahead of the COMMIT of db_end_checked(); a failure then fails that
 * statement, or the commit.  Elsewhere they run at once, as db_run().
 */
int db_run_batched(struct db *db, struct arena *a, struct crewd_error *err,
    const char *sql, int nparams, const char *const *params);

/*
 * The next db_exec() or db_pipeline() holds the last statements of the
 * unit of work, and the unit commits whatever they return (a read: its
 * commit and its rollback are the same).  COMMIT and the session check
 * of db_end_checked() go in their round trip, and db_end_checked() then
 * only reports the check.  When a statement fails, the transaction is
 * left to db_end_checked() as usual.  A statement after the end is a
 * bug: it fails with a 500, and is never sent outside the transaction.
 */
void db_end_ahead(struct db *db);
/* db_exec for statements whose rows nobody reads. */
int db_run(struct db *db, struct crewd_error *err, const char *sql,
    int nparams, const char *const *params);

/* Runs text that may hold several statements (migrations); no params. */
int db_run_script(struct db *db, struct crewd_error *err, const char *sql);

int db_begin(struct db *db, struct crewd_error *err);
int db_commit(struct db *db, struct crewd_error *err);
/* Rolls back if a transaction is open; never fails (resets instead). */
void db_rollback(struct db *db);

/*
 * Ends the open transaction, committing when commit is true, and in the
 * same round trip asks whether the session is as it was at connect:
 * the login role, no tenant setting, the same search path, no temporary
 * table; and, every DB_FULL_CHECK_EVERY calls, no cursor and no
 * prepared statement but ours (listing them costs in proportion to
 * their number, and no statement of crewd's can reach them).  With more
 * than DB_FULL_CHECK_EVERY * DB_FULL_CHECK_SPREAD statements prepared,
 * that question comes once per DB_FULL_CHECK_SPREAD of them instead
 * (at most every 512th call), so that its cost per request stays flat.
 * *clean is false when anything is left, or the question could not be
 * asked.  Returns -1 when the commit failed.
 */
#define DB_FULL_CHECK_EVERY 64
#define DB_FULL_CHECK_SPREAD 4
int db_end_checked(struct db *db, bool commit, bool *clean,
    struct crewd_error *err);

/*
 * Throws away everything the session holds (DISCARD ALL: role, settings,
 * temporary tables, prepared statements, advisory locks, listens) and
 * sets it up again as at connect.  Marks tenants as changed, since a
 * notification may have been missed meanwhile.  The connection must be
 * idle; a failure closes it, to be re-opened by the next db_ready().
 */
void db_discard_session(struct db *db);

/* True when the connection is open and outside any transaction. */
bool db_idle(const struct db *db);

/* Notifies listeners that tenants changed; runs in the current tx. */
int db_notify_tenants(struct db *db, struct crewd_error *err);

/*
 * Sessions this process has thrown away (db_discard_session) since it
 * started, for /metrics: each costs every plan it held.
 */
unsigned long long db_discard_count(void);
/*
 * Failures this process has seen since it started, for /metrics: the
 * server unreachable or the connection lost (a connect that failed
 * included), and statements the server refused (a constraint, a
 * permission, a bug).
 */
void db_failure_counts(unsigned long long *unavailable,
    unsigned long long *refused);

/* PQgetvalue, with NULL for SQL NULL. */
const char *db_value(const PGresult *res, int row, int col);
bool db_bool(const PGresult *res, int row, int col);

/*
 * A timestamptz column as RFC 3339 UTC ("2026-12-04T16:12:03.123456Z"),
 * allocated from a; NULL for SQL NULL.  The session runs in UTC (set by
 * db_open), so the server's text only needs its separators changed.
 */
const char *db_timestamp(struct arena *a, const PGresult *res, int row,
    int col);

#endif
