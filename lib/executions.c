#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executions.h"

/*
 * One move of the lifecycle.  $1 id, $2 the status left, $3 the status
 * entered, $4 whether the move starts the run, $5 whether it ends it,
 * $6 outputs and $7 error when the move brings them.  The row only
 * matches while it is still in $2: of two racing moves, one finds it.
 */
static const char SQL_EXECUTION_MOVE[] =
    "UPDATE executions SET status = $3,"
    " started_at = CASE WHEN $4::boolean THEN now() ELSE started_at END,"
    " completed_at = CASE WHEN $5::boolean THEN now()"
    " ELSE completed_at END,"
    " outputs = coalesce($6::jsonb, outputs),"
    " error = coalesce($7, error),"
    " updated_at = greatest(now(), updated_at + interval '1 microsecond')"
    " WHERE id = $1 AND status = $2"
    " RETURNING extract(epoch FROM completed_at - started_at)";

/*
 * The oldest pending execution that no other transaction holds; the row
 * stays locked until the caller's transaction ends.
 */
static const char SQL_EXECUTION_NEXT_PENDING[] =
    "SELECT id FROM executions WHERE status = 'pending'"
    " ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED";

const char *const execution_status_names[] = {
    [EXECUTION_PENDING] = "pending",
    [EXECUTION_RUNNING] = "running",
    [EXECUTION_SUCCEEDED] = "succeeded",
    [EXECUTION_FAILED] = "failed",
    [EXECUTION_CANCELLED] = "cancelled",
    [EXECUTION_STATUS_COUNT] = NULL,
};

/*
 * The lifecycle: allowed[from][to].  Every pair not marked true is
 * refused, and a status whose row is all false is final.
 */
static const bool allowed[EXECUTION_STATUS_COUNT][EXECUTION_STATUS_COUNT] = {
    [EXECUTION_PENDING] = {
        [EXECUTION_RUNNING] = true,
        [EXECUTION_CANCELLED] = true,
    },
    [EXECUTION_RUNNING] = {
        [EXECUTION_SUCCEEDED] = true,
        [EXECUTION_FAILED] = true,
        [EXECUTION_CANCELLED] = true,
    },
};

bool
execution_status_parse(const char *name, enum execution_status *out)
{
    for (int s = 0; s < EXECUTION_STATUS_COUNT; s++)
        if (strcmp(name, execution_status_names[s]) == 0) {
            *out = (enum execution_status)s;
            return true;
        }
    return false;
}

static bool
status_valid(enum execution_status status)
{
    return (int)status >= 0 && status < EXECUTION_STATUS_COUNT;
}

bool
execution_transition_allowed(enum execution_status from,
    enum execution_status to)
{
    return status_valid(from) && status_valid(to) && allowed[from][to];
}

bool
execution_status_final(enum execution_status status)
{
    if (!status_valid(status))
        return false;
    for (int to = 0; to < EXECUTION_STATUS_COUNT; to++)
        if (allowed[status][to])
            return false;
    return true;
}

int
execution_transition(struct db *db, const char *id,
    enum execution_status from, enum execution_status to,
    const char *outputs, const char *error_text, struct crewd_error *err)
{
    return execution_transition_timed(db, id, from, to, outputs,
        error_text, NULL, err);
}

int
execution_transition_timed(struct db *db, const char *id,
    enum execution_status from, enum execution_status to,
    const char *outputs, const char *error_text, double *run_seconds,
    struct crewd_error *err)
{
    const char *params[7];
    PGresult *res;
    int moved;

    if (!execution_transition_allowed(from, to))
        return error_set(err, 409, "an execution cannot move from %s to %s",
            status_valid(from) ? execution_status_names[from] : "?",
            status_valid(to) ? execution_status_names[to] : "?");

    params[0] = id;
    params[1] = execution_status_names[from];
    params[2] = execution_status_names[to];
    params[3] = to == EXECUTION_RUNNING ? "true" : "false";
    params[4] = execution_status_final(to) ? "true" : "false";
    params[5] = outputs;
    params[6] = error_text;
    res = db_exec(db, NULL, err, SQL_EXECUTION_MOVE, 7, params);
    if (res == NULL)
        return -1;
    moved = strcmp(PQcmdTuples(res), "1") == 0 ? 1 : 0;
    if (run_seconds != NULL) {
        /* NULL unless the move ended a run that had started. */
        *run_seconds = -1;
        if (moved && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
            *run_seconds = strtod(PQgetvalue(res, 0, 0), NULL);
    }
    PQclear(res);
    return moved;
}

int
execution_claim(struct db *db, char id_out[UUID_TEXT_LEN + 1],
    struct crewd_error *err)
{
    PGresult *res;
    int moved;

    res = db_exec(db, NULL, err, SQL_EXECUTION_NEXT_PENDING, 0, NULL);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    snprintf(id_out, UUID_TEXT_LEN + 1, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    /* The row is ours until the transaction ends, so it moves. */
    moved = execution_transition(db, id_out, EXECUTION_PENDING,
        EXECUTION_RUNNING, NULL, NULL, err);
    if (moved <= 0)
        id_out[0] = '\0';
    return moved;
}
