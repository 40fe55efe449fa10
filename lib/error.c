#include "config.h"

#include <stdio.h>
#include <string.h>

#include "error.h"

void
error_clear(struct crewd_error *e)
{
    e->status = 0;
    e->detail[0] = '\0';
    e->nfields = 0;
    e->fields_dropped = 0;
    e->retry_after = 0;
    e->sqlstate[0] = '\0';
    e->constraint[0] = '\0';
}

int
error_vset(struct crewd_error *e, int status, const char *fmt, va_list ap)
{
    e->status = status;
    vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
    return -1;
}

int
error_set(struct crewd_error *e, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_vset(e, status, fmt, ap);
    va_end(ap);
    return -1;
}

void
error_field(struct crewd_error *e, const char *field, const char *fmt, ...)
{
    struct field_error *f;
    va_list ap;

    if (e->status == 0)
        error_set(e, 422, "the request body has invalid fields");

    if (e->nfields == ERROR_FIELDS_MAX) {
        e->fields_dropped++;
        return;
    }

    f = &e->fields[e->nfields++];
    snprintf(f->field, sizeof(f->field), "%s", field);
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof(f->message), fmt, ap);
    va_end(ap);
}

const char *
http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

/*
 * The one place where database errors become HTTP statuses.  Classes
 * are matched by prefix so every connection failure (08xxx) and every
 * shutdown (57P01..57P03) means "try again later".
 */
static const struct {
    const char *prefix;
    int status;
} sqlstate_map[] = {
    { "23505", 409 },   /* unique_violation */
    { "23503", 422 },   /* foreign_key_violation */
    { "23502", 422 },   /* not_null_violation */
    { "23514", 422 },   /* check_violation */
    { "22001", 422 },   /* string_data_right_truncation */
    { "22P02", 422 },   /* invalid_text_representation */
    { "22003", 422 },   /* numeric_value_out_of_range */
    { "22007", 422 },   /* invalid_datetime_format */
    { "22008", 422 },   /* datetime_field_overflow */
    { "22P05", 422 },   /* untranslatable_character */
    { "54", 422 },      /* program limits: a value too large to store */
    { "40001", 503 },   /* serialization_failure */
    { "40P01", 503 },   /* deadlock_detected */
    { "08", 503 },      /* connection exceptions */
    { "57P", 503 },     /* operator intervention: shutdown, crash */
    { "53", 503 },      /* insufficient resources */
};

int
sqlstate_http_status(const char *sqlstate)
{
    if (sqlstate == NULL)
        return 503;     /* no SQLSTATE: the connection itself failed */

    for (size_t i = 0; i < sizeof(sqlstate_map) / sizeof(sqlstate_map[0]);
         i++)
        if (strncmp(sqlstate, sqlstate_map[i].prefix,
                strlen(sqlstate_map[i].prefix)) == 0)
            return sqlstate_map[i].status;
    return 500;
}
