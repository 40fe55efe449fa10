/*
 * What a worker records about each request once its response is sent:
 * the counters of /metrics (metrics.h) and one line of the access log.
 *
 * The access log (the access_log key; empty: none) is JSON lines, one
 * per request:
 *
 *   {"time":"2026-12-04T16:12:03.123Z","request_id":"ab12..",
 *    "tenant":"acme","tenant_id":"..","user_id":"..","method":"GET",
 *    "route":"/api/v1/agents/{id}","status":200,"duration_ms":3.217,
 *    "bytes":412}
 *
 * tenant, tenant_id, user_id and route are null when there is none.
 * Never a path, a query string, a header or a body: no secret can get
 * in.  Each worker opens the file with O_APPEND (a line is one write, so
 * workers' lines never mix); a new generation of workers (SIGHUP to the
 * master) opens it again, which is how a rotated file is let go.  A line
 * that cannot be written (disk full) is dropped and counted, never
 * retried: the request does not wait for the log.
 */
#ifndef CREWD_OBSERVE_H
#define CREWD_OBSERVE_H

#include <stddef.h>

#include "buf.h"
#include "request.h"

/* Opens the access log of this worker; a failure is logged once. */
void observe_open(const char *access_log_path);

/* Closes it (at the worker's exit). */
void observe_close(void);

/*
 * Counts the request and writes its access line.  status: the status
 * sent; seconds: how long it took; bytes: the response's size.
 */
void observe_request(const struct request *req, int status, double seconds,
    size_t bytes);

/* The access line of a request, with its newline (for the tests). */
struct access_line {
    double wall;                /* Unix time with fractions */
    const char *request_id;
    const char *tenant_slug;    /* NULL or "": none */
    const char *tenant_id;      /* NULL: none */
    const char *user_id;        /* NULL: none */
    const char *method;
    const char *route;          /* NULL: no route matched */
    int status;
    double duration_ms;
    size_t bytes;
};
void observe_format_line(struct buf *out, const struct access_line *l);

#endif
