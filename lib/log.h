/*
 * Logging.  One line per event on standard error (journald or the dev
 * script's log file collects it):
 *
 *   2026-12-04T16:12:03.123Z error crewd[4242] req=ab12.. tenant=acme: msg
 *
 * Workers serve one request at a time, so the request context is a
 * process-wide value set by the worker before a request and cleared after.
 * Client faults log at info, our own faults at error.  Never pass a secret,
 * a token or a password to these functions.
 */
#ifndef CREWD_LOG_H
#define CREWD_LOG_H

enum log_level {
    LOG_DEBUG,
    LOG_INFO,
    LOG_WARN,
    LOG_ERROR
};

void log_init(const char *program, enum log_level min_level);
void log_set_level(enum log_level min_level);

/* Parses "debug", "info", "warn", "error"; returns -1 otherwise. */
int log_level_parse(const char *name);

/* Copies both strings; NULL clears. */
void log_set_context(const char *request_id, const char *tenant);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* An impossible state: logs and exits; the master forks a new worker. */
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
