#include "config.h"

#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

static void fail_from_result(struct db *db, const PGresult *res,
    struct crewd_error *err);

/*
 * The statements prepared on this connection, by scope and text; entry i
 * is named DB_PREPARED_PREFIX "<i>".  The scope is the tenant schema the
 * statement was parsed under (db->plan_scope), or "" for the session's
 * own path.  Texts are kept once however many scopes use them.  Found
 * through open addressing; nothing is removed but by prepared_forget(),
 * with the server's side (db_discard_session) when the table is full.
 */
#define PREPARED_SLOTS (2 * DB_PREPARED_MAX)    /* a power of two */
#define SCOPE_MAX 64

struct prepared_entry {
    uint64_t hash;              /* of scope and text */
    const char *text;           /* in texts[] */
    char scope[SCOPE_MAX];
    bool live;                  /* false: its PREPARE failed */
};

struct db_prepared {
    struct prepared_entry entries[DB_PREPARED_MAX];
    unsigned count;
    uint32_t index[PREPARED_SLOTS];     /* entry + 1; 0: empty */
    char *texts[PREPARED_SLOTS];        /* distinct texts, by their hash */
};

static uint64_t
hash_more(uint64_t h, const char *s)
{
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211u;
    }
    return h;
}

static uint64_t
scoped_hash(const char *scope, const char *sql)
{
    /* The scope's end is marked, so ("a", "bc") is not ("ab", "c"). */
    return hash_more(hash_more(1469598103934665603u, scope) ^ 0xff, sql);
}

static void
prepared_forget(struct db *db)
{
    struct db_prepared *p = db->prepared;

    db->prepared_generation = db->generation;
    if (p == NULL)
        return;
    for (unsigned i = 0; i < PREPARED_SLOTS; i++)
        free(p->texts[i]);
    memset(p, 0, sizeof(*p));
}

/* The one copy of sql the table keeps. */
static const char *
text_intern(struct db_prepared *p, const char *sql)
{
    uint64_t h = hash_more(1469598103934665603u, sql);

    for (unsigned i = h & (PREPARED_SLOTS - 1);;
         i = (i + 1) & (PREPARED_SLOTS - 1)) {
        if (p->texts[i] == NULL) {
            p->texts[i] = xstrdup(sql);
            return p->texts[i];
        }
        if (strcmp(p->texts[i], sql) == 0)
            return p->texts[i];
    }
}

/*
 * The entry for sql in scope, or a new one reserved for it (*fresh set:
 * the caller prepares it, and calls prepared_failed() if that fails);
 * -1 when the table is full.
 */
static int
prepared_entry(struct db *db, const char *scope, const char *sql,
    bool *fresh)
{
    uint64_t hash = scoped_hash(scope, sql);
    struct db_prepared *p;
    struct prepared_entry *e;
    unsigned slot;

    *fresh = false;
    if (db->prepared_generation != db->generation)
        prepared_forget(db);
    if (db->prepared == NULL)
        db->prepared = xcalloc(1, sizeof(*db->prepared));
    p = db->prepared;

    for (slot = hash & (PREPARED_SLOTS - 1); p->index[slot] != 0;
         slot = (slot + 1) & (PREPARED_SLOTS - 1)) {
        e = &p->entries[p->index[slot] - 1];
        if (e->live && e->hash == hash && strcmp(e->scope, scope) == 0 &&
            strcmp(e->text, sql) == 0)
            return (int)p->index[slot] - 1;
    }
    if (p->count == DB_PREPARED_MAX || strlen(scope) >= SCOPE_MAX)
        return -1;

    e = &p->entries[p->count];
    e->hash = hash;
    e->text = text_intern(p, sql);
    snprintf(e->scope, sizeof(e->scope), "%s", scope);
    e->live = true;
    p->index[slot] = ++p->count;
    *fresh = true;
    return (int)p->count - 1;
}

/* The server-side name of entry i. */
static void
prepared_label(char *name, size_t size, int entry)
{
    snprintf(name, size, DB_PREPARED_PREFIX "%d", entry);
}

static void
prepared_failed(struct db *db, int entry)
{
    db->prepared->entries[entry].live = false;
}

bool
db_prepared_full(const struct db *db)
{
    return db->prepared != NULL &&
        db->prepared->count == DB_PREPARED_MAX;
}

/*
 * The name sql is prepared under on this connection in the current
 * scope, preparing it now if it is new; NULL when it cannot be (the
 * table is full, or the server refused: the unnamed execution that
 * follows reports why).
 */
static const char *
prepared_name(struct db *db, const char *sql, int nparams, char *name,
    size_t size)
{
    bool fresh;
    int entry = prepared_entry(db, db->plan_scope != NULL
        ? db->plan_scope : "", sql, &fresh);
    PGresult *res;
    bool ok;

    if (entry < 0)
        return NULL;
    prepared_label(name, size, entry);
    if (!fresh)
        return name;

    res = PQprepare(db->conn, name, sql, nparams, NULL);
    ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        prepared_failed(db, entry);
        return NULL;
    }
    return name;
}

static void
clear_result(void *res)
{
    PQclear(res);
}

/* libpq's notices (e.g. "relation exists, skipping") are not our news. */
static void
quiet_notice(void *arg, const char *message)
{
    log_debug("database notice: %s", message);
}

static void
first_line(char *dst, size_t size, const char *src)
{
    size_t n = strcspn(src, "\n");

    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/*
 * Prepared at connect, outside the numbered ones of prepared_name().
 * The first is asked after every request: what changes the meaning of
 * the next request's statements (the role, the tenant setting, the
 * search path, and a temporary table, which would come before the
 * tenant's own tables on its path).  The second adds what no statement
 * of crewd's can reach but the session should not keep (a prepared
 * statement not crewd's, a cursor WITH HOLD), every DB_FULL_CHECK_EVERY
 * requests: listing them costs in proportion to their number.
 */
#define CLEAN_CHECK DB_PREPARED_PREFIX "clean_check"
#define FULL_CHECK DB_PREPARED_PREFIX "full_check"
#define SESSION_CHECK \
    "SELECT current_user = session_user" \
    " AND coalesce(current_setting('crewd.tenant_id', true), '') = ''" \
    " AND current_setting('search_path') = %s" \
    " AND (pg_catalog.pg_my_temp_schema() = 0" \
    " OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class" \
    " WHERE relnamespace = pg_catalog.pg_my_temp_schema()))"

static int
check_prepare(struct db *db, const char *name, const char *sql,
    struct crewd_error *err)
{
    PGresult *res = PQprepare(db->conn, name, sql, 0, NULL);

    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        fail_from_result(db, res, err);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}

/*
 * What every session starts with, at connect and after a discard.  The
 * clean check compares the search path with the one the session has
 * now, so it is made here, once.
 */
static int
session_setup(struct db *db, struct crewd_error *err)
{
    PGresult *res;
    char *path, *quick, *full;
    int rc;

    db->clean_check_ready = false;

    /* Timestamps leave the server in one known shape (db_timestamp). */
    if (db_run(db, err, "SET TimeZone = 'UTC'", 0, NULL) < 0 ||
        db_run(db, err, "SET DateStyle = 'ISO'", 0, NULL) < 0)
        return -1;

    /*
     * The application role's statements are prepared on first use, and
     * a handler's first one is prepared before the tenant switch that
     * goes out with it (db_opening_defer): table names must resolve
     * then.  The template schema has every tenant table and no rows,
     * and the role may not read its tables; after the switch the
     * server analyses the statement again against the tenant's schema.
     * Shared tables are always named with their schema.
     */
    if (!db->owner &&
        db_run(db, err, "SET search_path = tenant_template", 0, NULL) < 0)
        return -1;

    /*
     * A statement is prepared once per tenant and connection; left to
     * itself, PostgreSQL plans its first five executions for their
     * parameters before it settles on a generic plan, which multiplies
     * the first-use cost of every tenant by six.  crewd's statements
     * are short lookups by key and by time order over one tenant's
     * rows, where a generic plan is the plan.
     */
    if (!db->owner &&
        db_run(db, err, "SET plan_cache_mode = force_generic_plan", 0,
            NULL) < 0)
        return -1;

    if (db->listen_tenants &&
        db_run(db, err, "LISTEN " DB_TENANT_CHANNEL, 0, NULL) < 0)
        return -1;

    res = db_exec(db, NULL, err, "SELECT quote_literal("
        "current_setting('search_path'))", 0, NULL);
    if (res == NULL)
        return -1;
    path = PQgetvalue(res, 0, 0);

    /*
     * Prepared once: after a request the session is back to its login
     * role and search path, so the plan stays valid, and the check costs
     * an execution, not a parse and a plan.
     */
    quick = xasprintf(SESSION_CHECK, path);
    full = xasprintf(SESSION_CHECK
        /* The unnamed portal is the protocol's own: this check's. */
        " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_cursors"
        " WHERE name <> '')"
        " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_statements"
        " WHERE name NOT LIKE 'crewd\\_%%')",  /* DB_PREPARED_PREFIX */
        path);
    PQclear(res);
    rc = check_prepare(db, CLEAN_CHECK, quick, err) < 0 ||
        check_prepare(db, FULL_CHECK, full, err) < 0 ? -1 : 0;
    free(quick);
    free(full);
    if (rc < 0)
        return -1;
    db->checks_since_full = 0;
    db->clean_check_ready = true;
    return 0;
}

/* Failures of this process, for /metrics (db_failure_counts). */
static unsigned long long failures_unavailable, failures_refused;

/* Sessions this process threw away (db_discard_count). */
static unsigned long long sessions_discarded;

unsigned long long
db_discard_count(void)
{
    return sessions_discarded;
}

void
db_failure_counts(unsigned long long *unavailable,
    unsigned long long *refused)
{
    *unavailable = failures_unavailable;
    *refused = failures_refused;
}

int
db_open(struct db *db, const char *conninfo, bool listen_tenants,
    struct crewd_error *err)
{
    char message[256];

    if (db->conninfo == NULL || strcmp(db->conninfo, conninfo) != 0) {
        free(db->conninfo);
        db->conninfo = xstrdup(conninfo);
    }
    db->listen_tenants = listen_tenants;

    if (db->conn != NULL)
        PQfinish(db->conn);
    db->opening = NULL;
    db->batched_count = 0;
    db->conn = PQconnectdb(conninfo);
    db->generation++;
    db->tenants_changed = true;     /* whatever we cached may be stale */

    if (PQstatus(db->conn) != CONNECTION_OK) {
        first_line(message, sizeof(message), PQerrorMessage(db->conn));
        log_error("could not connect to database: %s", message);
        failures_unavailable++;
        PQfinish(db->conn);
        db->conn = NULL;
        err->retry_after = 1;
        return error_set(err, 503, "the database is unavailable");
    }
    PQsetNoticeProcessor(db->conn, quiet_notice, NULL);
    return session_setup(db, err);
}

void
db_close(struct db *db)
{
    if (db->conn != NULL)
        PQfinish(db->conn);
    db->conn = NULL;
    free(db->conninfo);
    db->conninfo = NULL;
    db->clean_check_ready = false;
    prepared_forget(db);
    free(db->prepared);
    db->prepared = NULL;
}

/*
 * Whether the server closed an idle connection (it restarted, or the
 * backend was terminated): nothing else arrives unasked on one, so
 * anything to read is looked at.  libpq learns of a closed connection
 * only when it next uses it, and the request that did would fail with a
 * 503 although the server is back.
 */
static bool
peer_left(PGconn *conn)
{
    struct pollfd pfd = { .fd = PQsocket(conn), .events = POLLIN };

    /* The server's last words first (FATAL: terminating ...), then the
       end of the stream: libpq sees the second at its second read. */
    for (int reads = 0; reads < 2; reads++) {
        if (poll(&pfd, 1, 0) <= 0)
            return false;
        if (PQconsumeInput(conn) == 0 || PQstatus(conn) != CONNECTION_OK)
            return true;
    }
    return false;
}

int
db_ready(struct db *db, struct crewd_error *err)
{
    /* An end asked for ahead belongs to the unit of work that asked. */
    db->end_ahead = false;
    db->ended_ahead = false;
    if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK &&
        !peer_left(db->conn)) {
        if (PQtransactionStatus(db->conn) == PQTRANS_IDLE)
            return 0;

        /* A previous unit of work left a transaction open: end it. */
        log_warn("connection not idle before a request; rolling back");
        db_rollback(db);
        if (db_idle(db))
            return 0;
    }

    if (db->conninfo == NULL)
        return error_set(err, 500, "database not configured");
    return db_open(db, db->conninfo, db->listen_tenants, err);
}

bool
db_poll_tenant_changes(struct db *db)
{
    PGnotify *note;
    bool changed = db->tenants_changed;

    db->tenants_changed = false;
    if (db->conn == NULL)
        return true;

    if (PQconsumeInput(db->conn) == 0)
        return true;    /* the next statement will see the broken link */
    while ((note = PQnotifies(db->conn)) != NULL) {
        changed = true;
        PQfreemem(note);
    }
    return changed;
}

/* Fills err from a failed result and logs what a client must not see. */
static void
fail_from_result(struct db *db, const PGresult *res, struct crewd_error *err)
{
    const char *sqlstate = NULL;
    const char *constraint = NULL;
    char message[256];
    int status;

    if (res != NULL) {
        sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
        first_line(message, sizeof(message), PQresultErrorMessage(res));
    } else {
        first_line(message, sizeof(message), PQerrorMessage(db->conn));
    }

    /* A dead connection has no SQLSTATE: it maps to 503. */
    if (PQstatus(db->conn) != CONNECTION_OK)
        sqlstate = NULL;
    status = sqlstate_http_status(sqlstate);
    if (status == 503)
        failures_unavailable++;
    else
        failures_refused++;

    err->status = status;
    snprintf(err->sqlstate, sizeof(err->sqlstate), "%s",
        sqlstate != NULL ? sqlstate : "");
    snprintf(err->constraint, sizeof(err->constraint), "%s",
        constraint != NULL ? constraint : "");

    if (status == 503) {
        log_warn("database unavailable: %s", message);
        err->retry_after = 1;
        snprintf(err->detail, sizeof(err->detail),
            "the database is unavailable");
    } else if (status >= 500) {
        log_error("database error %s: %s", err->sqlstate, message);
        snprintf(err->detail, sizeof(err->detail), "internal error");
    } else {
        log_info("database refused a change %s (%s): %s", err->sqlstate,
            err->constraint, message);
        snprintf(err->detail, sizeof(err->detail),
            status == 409 ? "the resource conflicts with an existing one"
                          : "the request refers to something invalid");
    }

    /* The operator (crewctl, as the owner) is told what the server said. */
    if (db->owner && status != 503) {
        const char *text = message;

        if (strncmp(text, "ERROR:", 6) == 0)
            text += 6;
        text += strspn(text, " ");
        snprintf(err->detail, sizeof(err->detail), "%s", text);
    }
}

PGresult *
db_exec(struct db *db, struct arena *a, struct crewd_error *err,
    const char *sql, int nparams, const char *const *params)
{
    char name[32];
    PGresult *res;
    ExecStatusType st;

    if (db->opening != NULL || db->batched_count > 0 || db->end_ahead ||
        db->ended_ahead) {
        struct db_statement statement = { sql, nparams, params };

        return db_pipeline(db, a, err, &statement, 1, &res) == 0 ? res
                                                                 : NULL;
    }
    if (db->conn == NULL) {
        err->retry_after = 1;
        error_set(err, 503, "the database is unavailable");
        return NULL;
    }

    if (prepared_name(db, sql, nparams, name, sizeof(name)) != NULL)
        res = PQexecPrepared(db->conn, name, nparams, params, NULL, NULL,
            0);
    else
        res = PQexecParams(db->conn, sql, nparams, NULL, params, NULL,
            NULL, 0);
    st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (a != NULL)
            arena_defer(a, clear_result, res);
        return res;
    }

    fail_from_result(db, res, err);
    PQclear(res);
    return NULL;
}

/* Reads one statement's results up to its NULL; keeps the first. */
static PGresult *
pipeline_result(PGconn *conn)
{
    PGresult *first = NULL, *res;

    while ((res = PQgetResult(conn)) != NULL) {
        if (first == NULL)
            first = res;
        else
            PQclear(res);
    }
    return first;
}

/* Releases n results of a pipeline that the caller does not get. */
static void
clear_results(PGresult **results, int n)
{
    for (int i = 0; i < n; i++) {
        PQclear(results[i]);
        results[i] = NULL;
    }
}

/*
 * Sends n statements in one round trip and reads their results: those
 * of the statements that succeeded, in order, are left in results (the
 * caller's to release); *succeeded says how many.  The first
 * session_head and the last session_tail run under the session's own
 * path (an opening ahead of its switch; the end of the transaction and
 * the check after it), the rest in db->plan_scope.  A statement new to
 * its scope is parsed in the same round trip, where it stands: after the
 * switch, the path it is planned under is the one it runs under.
 * Returns 0, or -1 with err filled from the first failure.
 */
static int
pipeline_round_trip(struct db *db, struct crewd_error *err,
    const struct db_statement *statements, int n, int session_head,
    int session_tail, PGresult **results, int *succeeded)
{
    char names[DB_PIPELINE_MAX][32];
    int entries[DB_PIPELINE_MAX];
    bool parse[DB_PIPELINE_MAX];
    PGresult *sync;
    bool failed = false;
    int sent = 0;

    *succeeded = 0;
    for (int i = 0; i < n; i++)
        results[i] = NULL;
    if (n > DB_PIPELINE_MAX)
        return error_set(err, 500, "a pipeline of %d statements", n);
    if (db->conn == NULL) {
        err->retry_after = 1;
        return error_set(err, 503, "the database is unavailable");
    }

    for (int i = 0; i < n; i++) {
        const char *scope = i < session_head || i >= n - session_tail ||
            db->plan_scope == NULL ? "" : db->plan_scope;

        entries[i] = prepared_entry(db, scope, statements[i].sql,
            &parse[i]);
        if (entries[i] >= 0)
            prepared_label(names[i], sizeof(names[i]), entries[i]);
    }

    if (!PQenterPipelineMode(db->conn))
        goto broken;
    for (; sent < n; sent++) {
        const struct db_statement *st = &statements[sent];
        int ok;

        if (parse[sent] && !PQsendPrepare(db->conn, names[sent], st->sql,
                st->nparams, NULL))
            break;
        ok = entries[sent] >= 0
            ? PQsendQueryPrepared(db->conn, names[sent], st->nparams,
                  st->params, NULL, NULL, 0)
            : PQsendQueryParams(db->conn, st->sql, st->nparams, NULL,
                  st->params, NULL, NULL, 0);
        if (!ok)
            break;
    }
    if (!PQpipelineSync(db->conn))
        sent = -1;

    for (int i = 0; i < sent; i++) {
        PGresult *res;
        ExecStatusType st;

        /* A statement parsed here answers twice: the parse, then it. */
        if (parse[i]) {
            res = pipeline_result(db->conn);
            st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
            if (st != PGRES_COMMAND_OK) {
                prepared_failed(db, entries[i]);
                if (!failed && st != PGRES_PIPELINE_ABORTED)
                    fail_from_result(db, res, err);
                failed = true;
            }
            PQclear(res);
        }

        res = pipeline_result(db->conn);
        st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (!failed && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)) {
            results[i] = res;
            (*succeeded)++;
            continue;
        }
        if (!failed && st != PGRES_PIPELINE_ABORTED)
            fail_from_result(db, res, err);
        failed = true;
        PQclear(res);
    }
    /* Parsed in a pipeline that never ran: the server does not have it. */
    for (int i = sent < 0 ? 0 : sent; i < n; i++)
        if (parse[i])
            prepared_failed(db, entries[i]);

    /* The sync's own result closes the pipeline. */
    if (sent >= 0) {
        sync = PQgetResult(db->conn);
        if (sync == NULL || PQresultStatus(sync) != PGRES_PIPELINE_SYNC) {
            PQclear(sync);
            goto broken;
        }
        PQclear(sync);
    }
    if (!PQexitPipelineMode(db->conn) || sent != n)
        goto broken;
    return failed ? -1 : 0;

broken:
    /* A pipeline we cannot finish leaves a connection we cannot trust. */
    log_warn("database pipeline failed: %s", PQerrorMessage(db->conn));
    PQfinish(db->conn);
    db->conn = NULL;
    clear_results(results, n);
    *succeeded = 0;
    err->retry_after = 1;
    if (!failed)
        error_set(err, 503, "the database is unavailable");
    return -1;
}

void
db_opening_defer(struct db *db, struct db_opening *opening)
{
    db->opening = opening;
}

/*
 * The opening's verdict, once its statements went out with succeeded
 * of them done: an opening statement that failed (err says why), or
 * check()'s refusal, which replaces whatever err held.
 */
static int
opening_settle(struct db *db, PGresult **results, int succeeded,
    struct crewd_error *err)
{
    struct db_opening *opening = db->opening;
    struct crewd_error refusal;
    int rc = 0;

    db->opening = NULL;
    if (succeeded < opening->count)
        rc = -1;
    else {
        error_clear(&refusal);
        if (opening->check(opening->arg, results, &refusal) < 0) {
            *err = refusal;
            rc = -1;
        }
    }
    clear_results(results, opening->count);    /* NULL past a failure */
    return rc;
}

int
db_opening_flush(struct db *db, struct crewd_error *err)
{
    PGresult *results[DB_OPENING_MAX];
    int succeeded;

    if (db->opening == NULL)
        return 0;
    pipeline_round_trip(db, err, db->opening->statements,
        db->opening->count, db->opening->count, 0, results, &succeeded);
    return opening_settle(db, results, succeeded, err);
}

/* The answer of the session check: one row, true when clean. */
static bool
ended_clean(const PGresult *check)
{
    return PQntuples(check) == 1 && db_bool(check, 0, 0);
}

/*
 * Whether this transaction's end runs the full session check.  It lists
 * every prepared statement, text and all, so it comes at most once per
 * DB_FULL_CHECK_SPREAD statements prepared here: with a thousand tenants
 * a check every 64th request was 6 % of PostgreSQL's time.
 */
static bool
full_check_due(struct db *db)
{
    unsigned every = DB_FULL_CHECK_EVERY;
    unsigned prepared = db->prepared != NULL ? db->prepared->count : 0;

    if (prepared / DB_FULL_CHECK_SPREAD > every)
        every = prepared / DB_FULL_CHECK_SPREAD;
    if (++db->checks_since_full < every)
        return false;
    db->checks_since_full = 0;
    return true;
}

#define CHECK_STATEMENT(full) \
    ((full) ? "EXECUTE " FULL_CHECK : "EXECUTE " CLEAN_CHECK)

int
db_pipeline(struct db *db, struct arena *a, struct crewd_error *err,
    const struct db_statement *statements, int n, PGresult **results)
{
    struct db_statement all[DB_PIPELINE_MAX] = { { NULL, 0, NULL } };
    PGresult *got[DB_PIPELINE_MAX];
    int opened = 0, batched = db->batched_count, ahead, ending, succeeded;
    int rc;

    for (int i = 0; i < n; i++)
        results[i] = NULL;
    if (db->ended_ahead) {
        log_error("a statement after its transaction ended: %s",
            n > 0 ? statements[0].sql : "(none)");
        return error_set(err, 500, "internal error");
    }
    ending = db->end_ahead && db->clean_check_ready ? 2 : 0;
    db->end_ahead = false;
    if (db->opening != NULL &&
        db->opening->count + n + ending > DB_PIPELINE_MAX &&
        db_opening_flush(db, err) < 0)
        return -1;
    if (db->opening != NULL)
        opened = db->opening->count;
    if (opened + batched + n + ending > DB_PIPELINE_MAX)
        batched = 0;    /* too many to ride along: they go at the end */
    ahead = opened + batched;
    if (ahead + n + ending > DB_PIPELINE_MAX)
        ending = 0;     /* the end goes on its own */
    if (ahead + n > DB_PIPELINE_MAX)
        return error_set(err, 500, "a pipeline of %d statements", n);

    /*
     * A deferred opening goes first, then waiting writes, the caller's
     * statements, and the end with its check when it was asked for
     * ahead: all in one round trip.
     */
    if (opened > 0)
        memcpy(all, db->opening->statements, opened * sizeof(*all));
    if (batched > 0) {
        memcpy(all + opened, db->batched, batched * sizeof(*all));
        db->batched_count = 0;
    }
    if (n > 0)
        memcpy(all + ahead, statements, n * sizeof(*all));
    if (ending > 0) {
        all[ahead + n] = (struct db_statement){ "COMMIT", 0, NULL };
        all[ahead + n + 1] = (struct db_statement){
            CHECK_STATEMENT(full_check_due(db)), 0, NULL };
    }

    rc = pipeline_round_trip(db, err, all, ahead + n + ending, opened,
        ending, got, &succeeded);
    if (ending > 0 && succeeded == ahead + n + ending) {
        /* Committed: db_end_checked() only reports the check. */
        db->ended_ahead = true;
        db->ended_clean = ended_clean(got[ahead + n + 1]);
        db->plan_scope = NULL;
    }
    clear_results(got + ahead + n, ending);
    if (opened > 0 && opening_settle(db, got, succeeded, err) < 0)
        rc = -1;
    clear_results(got + opened, batched);
    if (rc < 0) {
        clear_results(got + ahead, n);
        return -1;
    }

    for (int i = 0; i < n; i++) {
        results[i] = got[ahead + i];
        if (a != NULL)
            arena_defer(a, clear_result, results[i]);
    }
    return 0;
}

void
db_end_ahead(struct db *db)
{
    db->end_ahead = true;
}

/* Sends the writes still waiting, alone. */
static int
batched_flush(struct db *db, struct crewd_error *err)
{
    if (db->batched_count == 0)
        return 0;
    return db_pipeline(db, NULL, err, NULL, 0, NULL);
}

int
db_run_batched(struct db *db, struct arena *a, struct crewd_error *err,
    const char *sql, int nparams, const char *const *params)
{
    const char **copies;

    if (db->plan_scope == NULL)
        return db_run(db, err, sql, nparams, params);
    if (db->batched_count == DB_BATCH_MAX && batched_flush(db, err) < 0)
        return -1;

    copies = arena_alloc(a, (size_t)(nparams + 1) * sizeof(*copies));
    for (int i = 0; i < nparams; i++)
        copies[i] = params[i] != NULL ? arena_strdup(a, params[i]) : NULL;
    db->batched[db->batched_count++] = (struct db_statement){
        arena_strdup(a, sql), nparams, copies };
    return 0;
}

int
db_run(struct db *db, struct crewd_error *err, const char *sql,
    int nparams, const char *const *params)
{
    PGresult *res = db_exec(db, NULL, err, sql, nparams, params);

    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

int
db_run_script(struct db *db, struct crewd_error *err, const char *sql)
{
    PGresult *res;

    if (db_opening_flush(db, err) < 0 || batched_flush(db, err) < 0)
        return -1;
    if (db->conn == NULL) {
        err->retry_after = 1;
        return error_set(err, 503, "the database is unavailable");
    }

    /* PQexec sends the simple protocol, which runs many statements. */
    res = PQexec(db->conn, sql);
    if (res != NULL && (PQresultStatus(res) == PGRES_COMMAND_OK ||
                        PQresultStatus(res) == PGRES_TUPLES_OK)) {
        PQclear(res);
        return 0;
    }
    fail_from_result(db, res, err);
    PQclear(res);
    return -1;
}

int
db_begin(struct db *db, struct crewd_error *err)
{
    return db_run(db, err, "BEGIN", 0, NULL);
}

int
db_commit(struct db *db, struct crewd_error *err)
{
    return db_run(db, err, "COMMIT", 0, NULL);
}

void
db_rollback(struct db *db)
{
    PGresult *res;

    /* An opening never sent began nothing; waiting writes are void. */
    db->opening = NULL;
    db->batched_count = 0;
    db->end_ahead = false;
    db->ended_ahead = false;
    db->plan_scope = NULL;
    if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)
        return;
    if (PQtransactionStatus(db->conn) == PQTRANS_IDLE)
        return;

    res = PQexec(db->conn, "ROLLBACK");
    PQclear(res);

    /* A connection that cannot even roll back is not worth keeping. */
    if (PQtransactionStatus(db->conn) != PQTRANS_IDLE) {
        log_warn("rollback left the connection busy; reconnecting");
        PQfinish(db->conn);
        db->conn = NULL;
    }
}

bool
db_conninfo_user(const char *conninfo, char *out, size_t size)
{
    PQconninfoOption *options = PQconninfoParse(conninfo, NULL);
    bool found = false;

    if (options == NULL)
        return false;
    for (PQconninfoOption *o = options; o->keyword != NULL; o++)
        if (strcmp(o->keyword, "user") == 0 && o->val != NULL &&
            o->val[0] != '\0' && strlen(o->val) < size) {
            memcpy(out, o->val, strlen(o->val) + 1);
            found = true;
        }
    PQconninfoFree(options);
    return found;
}

/*
 * The COMMIT of db_end_checked() with the writes still waiting: one
 * pipeline of the writes, COMMIT and the check; a write that fails
 * skips the rest, and the transaction is left to be rolled back.
 */
static int
end_with_writes(struct db *db, bool full, bool *clean,
    struct crewd_error *err)
{
    struct db_statement all[DB_BATCH_MAX + 2];
    PGresult *results[DB_BATCH_MAX + 2];
    int n = db->batched_count, succeeded, rc;

    memcpy(all, db->batched, n * sizeof(*all));
    db->batched_count = 0;
    all[n++] = (struct db_statement){ "COMMIT", 0, NULL };
    all[n++] = (struct db_statement){ CHECK_STATEMENT(full), 0, NULL };
    rc = pipeline_round_trip(db, err, all, n, 0, 2, results, &succeeded);
    db->plan_scope = NULL;
    if (succeeded == n)
        *clean = ended_clean(results[n - 1]);
    clear_results(results, succeeded);
    return rc;
}

int
db_end_checked(struct db *db, bool commit, bool *clean,
    struct crewd_error *err)
{
    /* The simple protocol's end and question, by [commit][full]. */
    static const char *const simple_end[2][2] = {
        { "ROLLBACK; EXECUTE " CLEAN_CHECK,
          "ROLLBACK; EXECUTE " FULL_CHECK },
        { "COMMIT; EXECUTE " CLEAN_CHECK, "COMMIT; EXECUTE " FULL_CHECK },
    };
    PGresult *res;
    bool full;
    int rc = 0;

    *clean = false;
    db->end_ahead = false;
    if (db->ended_ahead) {
        /* Committed with the last statement; a read either way. */
        db->ended_ahead = false;
        *clean = db->ended_clean;
        return 0;
    }
    if (!commit) {
        /* Never sent: nothing to roll back, nothing to write. */
        db->opening = NULL;
        db->batched_count = 0;
    } else if (db_opening_flush(db, err) < 0) {
        db->plan_scope = NULL;
        return -1;
    }
    if (db->conn == NULL || !db->clean_check_ready) {
        db->plan_scope = NULL;
        err->retry_after = 1;
        return error_set(err, 503, "the database is unavailable");
    }
    full = full_check_due(db);

    /* Writes still waiting go ahead of the COMMIT, in its round trip. */
    if (db->batched_count > 0)
        return end_with_writes(db, full, clean, err);
    db->plan_scope = NULL;

    /* The simple protocol: the end and the question in one round trip. */
    res = PQexec(db->conn, simple_end[commit][full]);
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK)
        *clean = ended_clean(res);
    else if (commit) {
        fail_from_result(db, res, err);
        rc = -1;
    }
    PQclear(res);
    return rc;
}

void
db_discard_session(struct db *db)
{
    struct crewd_error err;

    if (!db_idle(db))
        return;
    error_clear(&err);
    sessions_discarded++;
    /* DISCARD ALL deallocates every prepared statement, ours too. */
    prepared_forget(db);
    if (db_run_script(db, &err, "DISCARD ALL") < 0 ||
        session_setup(db, &err) < 0) {
        log_warn("could not reset the session (%s); reconnecting",
            err.detail);
        PQfinish(db->conn);
        db->conn = NULL;
        return;
    }
    db->tenants_changed = true;
}

bool
db_idle(const struct db *db)
{
    return db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK &&
        PQtransactionStatus(db->conn) == PQTRANS_IDLE;
}

int
db_notify_tenants(struct db *db, struct crewd_error *err)
{
    return db_run(db, err, "NOTIFY " DB_TENANT_CHANNEL, 0, NULL);
}

const char *
db_value(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    return PQgetvalue(res, row, col);
}

bool
db_bool(const PGresult *res, int row, int col)
{
    const char *v = PQgetvalue(res, row, col);

    return v[0] == 't';
}

const char *
db_timestamp(struct arena *a, const PGresult *res, int row, int col)
{
    const char *v;
    size_t len;
    char *out;

    if (PQgetisnull(res, row, col))
        return NULL;

    /* "2026-12-04 16:12:03.123456+00" -> "2026-12-04T16:12:03.123456Z" */
    v = PQgetvalue(res, row, col);
    len = strlen(v);
    if (len < 22 || v[10] != ' ' || strcmp(v + len - 3, "+00") != 0)
        return arena_strdup(a, v);  /* not ours to reshape */

    out = arena_strndup(a, v, len - 2);
    out[10] = 'T';
    out[len - 3] = 'Z';
    return out;
}
