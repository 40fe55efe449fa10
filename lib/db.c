#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

static void fail_from_result(struct db *db, const PGresult *res,
    struct crewd_error *err);

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
 * What every session starts with, at connect and after a discard.  The
 * clean check compares the search path with the one the session has
 * now, so it is made here, once.
 */
static int
session_setup(struct db *db, struct crewd_error *err)
{
    PGresult *res;
    char *path;

    /* Timestamps leave the server in one known shape (db_timestamp). */
    if (db_run(db, err, "SET TimeZone = 'UTC'", 0, NULL) < 0 ||
        db_run(db, err, "SET DateStyle = 'ISO'", 0, NULL) < 0)
        return -1;

    if (db->listen_tenants &&
        db_run(db, err, "LISTEN " DB_TENANT_CHANNEL, 0, NULL) < 0)
        return -1;

    res = db_exec(db, NULL, err, "SELECT quote_literal("
        "current_setting('search_path'))", 0, NULL);
    if (res == NULL)
        return -1;
    path = PQgetvalue(res, 0, 0);
    free(db->clean_check);
    db->clean_check = xasprintf(
        "SELECT current_user = session_user"
        " AND coalesce(current_setting('crewd.tenant_id', true), '') = ''"
        " AND current_setting('search_path') = %s"
        " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_statements)"
        " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_cursors)"
        " AND (pg_catalog.pg_my_temp_schema() = 0"
        " OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class"
        " WHERE relnamespace = pg_catalog.pg_my_temp_schema()))", path);
    PQclear(res);
    return 0;
}

/* Failures of this process, for /metrics (db_failure_counts). */
static unsigned long long failures_unavailable, failures_refused;

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
    free(db->clean_check);
    db->clean_check = NULL;
}

int
db_ready(struct db *db, struct crewd_error *err)
{
    if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK) {
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
}

PGresult *
db_exec(struct db *db, struct arena *a, struct crewd_error *err,
    const char *sql, int nparams, const char *const *params)
{
    PGresult *res;
    ExecStatusType st;

    if (db->conn == NULL) {
        err->retry_after = 1;
        error_set(err, 503, "the database is unavailable");
        return NULL;
    }

    res = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
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

int
db_end_checked(struct db *db, bool commit, bool *clean,
    struct crewd_error *err)
{
    PGresult *res;
    char *sql;
    int rc = 0;

    *clean = false;
    if (db->conn == NULL || db->clean_check == NULL) {
        err->retry_after = 1;
        return error_set(err, 503, "the database is unavailable");
    }

    /* The simple protocol: the end and the question in one round trip. */
    sql = xasprintf("%s; %s", commit ? "COMMIT" : "ROLLBACK",
        db->clean_check);
    res = PQexec(db->conn, sql);
    free(sql);
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK)
        *clean = db_bool(res, 0, 0);
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
    if (db_run(db, &err, "DISCARD ALL", 0, NULL) < 0 ||
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
