/*
 * The lifecycle of an execution, in one place.
 *
 *   pending -> running -> succeeded | failed | cancelled
 *   pending -> cancelled
 *
 * and never back.  The moves are one table (executions.c); every change
 * of status goes through execution_transition(), whose single UPDATE only
 * matches while the row is still in the status it leaves, so of two
 * racing moves exactly one wins.  A move to running sets started_at, a
 * move to a final status (one with no way out) sets completed_at.
 *
 * These functions run inside the caller's tenant transaction: the search
 * path names the tenant's schema, so "executions" is the tenant's table.
 */
#ifndef CREWD_EXECUTIONS_H
#define CREWD_EXECUTIONS_H

#include <stdbool.h>

#include "db.h"
#include "error.h"
#include "uuid.h"

enum execution_status {
    EXECUTION_PENDING,
    EXECUTION_RUNNING,
    EXECUTION_SUCCEEDED,
    EXECUTION_FAILED,
    EXECUTION_CANCELLED,
    EXECUTION_STATUS_COUNT
};

/* The names as stored and shown, indexed by status; NULL-terminated. */
extern const char *const execution_status_names[];

/* name -> status; false when name is not one. */
bool execution_status_parse(const char *name, enum execution_status *out);

/* True when the lifecycle allows moving from one status to the other. */
bool execution_transition_allowed(enum execution_status from,
    enum execution_status to);

/* True for a status with no way out (succeeded, failed, cancelled). */
bool execution_status_final(enum execution_status status);

/*
 * Moves execution id from `from` to `to`, setting started_at or
 * completed_at as the lifecycle says; outputs (JSON text) and error_text
 * are stored when not NULL.  Returns 1 when the row moved, 0 when there
 * is no such row in status `from` (it does not exist, or another move
 * won), -1 with err set on a database error or a move the lifecycle
 * forbids (409).
 */
int execution_transition(struct db *db, const char *id,
    enum execution_status from, enum execution_status to,
    const char *outputs, const char *error_text, struct crewd_error *err);

/*
 * execution_transition, which also tells how long the execution ran:
 * *run_seconds is the time from started_at to completed_at when the move
 * ended a run that had started, -1 otherwise (no move, a move that is
 * not final, or a pending execution cancelled before it ran).
 */
int execution_transition_timed(struct db *db, const char *id,
    enum execution_status from, enum execution_status to,
    const char *outputs, const char *error_text, double *run_seconds,
    struct crewd_error *err);

/*
 * Claims the oldest pending execution for a worker: locks it, skipping
 * rows another transaction holds, and moves it to running.  Returns 1
 * with its id in id_out, 0 when nothing is pending (or every pending row
 * is being claimed by someone else), -1 with err set.
 */
int execution_claim(struct db *db, char id_out[UUID_TEXT_LEN + 1],
    struct crewd_error *err);

#endif
