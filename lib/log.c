#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *program_name = "crewd";
static enum log_level threshold = LOG_INFO;
static char context_request_id[64];
static char context_tenant[64];

static const char *const level_names[] = {
    [LOG_DEBUG] = "debug",
    [LOG_INFO] = "info",
    [LOG_WARN] = "warn",
    [LOG_ERROR] = "error",
};

void
log_init(const char *program, enum log_level min_level)
{
    program_name = program;
    threshold = min_level;
}

void
log_set_level(enum log_level min_level)
{
    threshold = min_level;
}

int
log_level_parse(const char *name)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

static void
copy_context(char *dst, size_t size, const char *src)
{
    size_t i;

    if (src == NULL) {
        dst[0] = '\0';
        return;
    }

    /* Keep the line parseable whatever a client sent as a request id. */
    for (i = 0; i + 1 < size && src[i] != '\0'; i++)
        dst[i] = (src[i] > ' ' && src[i] < 0x7f) ? src[i] : '?';
    dst[i] = '\0';
}

void
log_set_context(const char *request_id, const char *tenant)
{
    copy_context(context_request_id, sizeof(context_request_id), request_id);
    copy_context(context_tenant, sizeof(context_tenant), tenant);
}

static void vlog(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
vlog(enum log_level level, const char *fmt, va_list ap)
{
    char line[2048];
    struct timeval now;
    struct tm tm;
    size_t n;
    int saved_errno = errno;

    gettimeofday(&now, NULL);
    gmtime_r(&now.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n,
        ".%03ldZ %s %s[%ld]", (long)(now.tv_usec / 1000),
        level_names[level], program_name, (long)getpid());
    if (context_request_id[0] != '\0' && n < sizeof(line))
        n += (size_t)snprintf(line + n, sizeof(line) - n, " req=%s",
            context_request_id);
    if (context_tenant[0] != '\0' && n < sizeof(line))
        n += (size_t)snprintf(line + n, sizeof(line) - n, " tenant=%s",
            context_tenant);
    if (n < sizeof(line))
        n += (size_t)snprintf(line + n, sizeof(line) - n, ": ");
    if (n < sizeof(line))
        n += (size_t)vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;

    /*
     * One line, one write: lines of different workers never interleave.
     * A request path may carry any byte: no control character reaches
     * the log, so nobody can forge a line or drive a terminal.
     */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = line[i] == '\n' || line[i] == '\t' ? ' ' : '?';
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0) {
        /* A full disk must not stop us answering: drop the line. */
    }
    errno = saved_errno;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    if (level < threshold)
        return;

    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

void
fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(LOG_ERROR, fmt, ap);
    va_end(ap);
    _exit(70);
}
