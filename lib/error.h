/*
 * One error type for the whole program.  A failing function fills a
 * struct crewd_error and returns -1 (or NULL); callers pass it up without
 * logging again.  At the top the worker turns it into exactly one
 * RFC 9457 problem+json response.
 *
 * status is the HTTP status the error should produce; detail is a short
 * lower-case sentence safe to show a client; fields list per-field
 * validation problems (field is a JSON pointer into the request body or
 * the name of a query parameter).
 */
#ifndef CREWD_ERROR_H
#define CREWD_ERROR_H

#include <stdarg.h>

#define ERROR_DETAIL_MAX 256
#define ERROR_FIELDS_MAX 16
#define ERROR_FIELD_NAME_MAX 320
#define ERROR_FIELD_MESSAGE_MAX 320

struct field_error {
    char field[ERROR_FIELD_NAME_MAX];
    char message[ERROR_FIELD_MESSAGE_MAX];
};

struct crewd_error {
    int status;                 /* 0: no error */
    char detail[ERROR_DETAIL_MAX];
    int nfields;
    int fields_dropped;         /* more problems than we keep */
    struct field_error fields[ERROR_FIELDS_MAX];
    int retry_after;            /* seconds, for 503; 0: none */
    char sqlstate[6];           /* set by the database layer */
    char constraint[64];        /* violated constraint, when known */
};

void error_clear(struct crewd_error *e);

/* Sets status and detail; returns -1 so callers can "return error_set()". */
int error_set(struct crewd_error *e, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int error_vset(struct crewd_error *e, int status, const char *fmt,
    va_list ap) __attribute__((format(printf, 3, 0)));

/*
 * Adds one field problem.  The first one sets status 422 and a generic
 * detail unless an error is already set.
 */
void error_field(struct crewd_error *e, const char *field,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The reason phrase for an HTTP status ("Not Found"). */
const char *http_reason(int status);

/*
 * Maps a PostgreSQL SQLSTATE to the HTTP status a client should see:
 * 23505 unique violation -> 409, 23503 foreign key -> 422, connection
 * failures -> 503, anything unknown -> 500.
 */
int sqlstate_http_status(const char *sqlstate);

#endif
