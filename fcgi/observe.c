#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "metrics.h"
#include "observe.h"
#include "routes.h"

static int access_fd = -1;
static bool access_wanted;
static struct buf line;

void
observe_open(const char *path)
{
    access_wanted = path != NULL && path[0] != '\0';
    if (!access_wanted)
        return;

    /* Non-blocking: a FIFO nobody drains drops lines, it never stalls. */
    access_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
        O_NONBLOCK | O_NOCTTY, 0640);
    if (access_fd < 0)
        log_warn("cannot open the access log %s: %s; its lines are "
            "dropped", path, strerror(errno));
}

void
observe_close(void)
{
    if (access_fd >= 0)
        close(access_fd);
    access_fd = -1;
    buf_free(&line);
}

static void
kv_string_or_null(struct buf *out, const char *key, const char *value)
{
    buf_printf(out, ",\"%s\":", key);
    if (value == NULL || value[0] == '\0')
        buf_puts(out, "null");
    else
        json_escape(out, value, strlen(value));
}

void
observe_format_line(struct buf *out, const struct access_line *l)
{
    time_t seconds = (time_t)l->wall;
    int millis = (int)((l->wall - (double)seconds) * 1000);
    struct tm tm;
    char when[40];

    if (millis < 0 || millis > 999)
        millis = 0;
    gmtime_r(&seconds, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

    buf_printf(out, "{\"time\":\"%s.%03dZ\"", when, millis);
    kv_string_or_null(out, "request_id", l->request_id);
    kv_string_or_null(out, "tenant", l->tenant_slug);
    kv_string_or_null(out, "tenant_id", l->tenant_id);
    kv_string_or_null(out, "user_id", l->user_id);
    kv_string_or_null(out, "method", l->method);
    kv_string_or_null(out, "route", l->route);
    buf_printf(out, ",\"status\":%d,\"duration_ms\":%.3f,\"bytes\":%zu}\n",
        l->status, l->duration_ms, l->bytes);
}

static void
write_access_line(const struct access_line *l)
{
    ssize_t n;

    if (!access_wanted)
        return;
    if (access_fd < 0) {
        metrics_count_access_log_dropped();
        return;
    }
    buf_reset(&line);
    observe_format_line(&line, l);
    n = write(access_fd, line.data, line.len);
    if (n < 0 || (size_t)n != line.len)
        metrics_count_access_log_dropped();
}

static double
wall_seconds(void)
{
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

void
observe_request(const struct request *req, int status, double seconds,
    size_t bytes)
{
    const char *tenant_id = req->tenant != NULL ? req->tenant->id : NULL;
    const char *tenant_slug = req->tenant != NULL ? req->tenant->slug
                                                  : NULL;
    /* The user the token named, once the token was good. */
    const char *user_id = req->auth.user_id[0] != '\0' && status != 401
        ? req->auth.user_id : NULL;
    struct metrics_request m;
    struct access_line l;

    m.tenant_id = tenant_id;
    m.tenant_slug = tenant_slug;
    m.user_id = user_id;
    m.route = req->route != NULL ? (int)(req->route - routes) : -1;
    m.status = status;
    m.seconds = seconds;
    m.now = metrics_now();
    metrics_count_request(&m);

    if (req->execution_final != NULL && status >= 200 && status < 300)
        metrics_count_execution(tenant_id, tenant_slug,
            req->execution_final, req->execution_seconds, m.now);
    metrics_flush_failures();

    l.wall = wall_seconds();
    l.request_id = req->request_id;
    l.tenant_slug = req->tenant_slug;
    l.tenant_id = tenant_id;
    l.user_id = user_id;
    l.method = req->method;
    l.route = req->route != NULL ? req->route->pattern : NULL;
    l.status = status;
    l.duration_ms = seconds * 1e3;
    l.bytes = bytes;
    write_access_line(&l);
}
