/*
 * The numbers behind GET /metrics (docs/metrics.md).
 *
 * The master maps one block of shared memory before it forks anything;
 * every worker and the audit shipper inherit it.  A request adds to
 * counters there with atomic operations and takes no lock, so a worker
 * that dies (or is killed) leaves its counts behind and its replacement
 * adds to the same counters; everything resets only with the master.
 *
 * Per-tenant series are bounded: metrics_tenants_max tenants have a row
 * (a "seat") of their own, every other tenant is counted in the row
 * labelled "other", and requests without a tenant (the platform host, an
 * unknown tenant) in the row labelled "none".  Seats go to tenants as
 * they first appear while some are free; when all are taken, the master
 * gives the seat of the quietest tenant to a busier one now and then
 * (metrics_housekeeping), so the seats follow the volume.  A deleted
 * tenant's seat is given up (metrics_retire_tenant) and its series go.
 */
#ifndef CREWD_METRICS_H
#define CREWD_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "uuid.h"

/* The label values of the two rows that are not one tenant. */
#define METRICS_TENANT_NONE "none"
#define METRICS_TENANT_OTHER "other"

/* Routes the tables have room for (one more counts unmatched paths). */
#define METRICS_ROUTES_MAX 80

/* A user counts as active this long after a request of theirs. */
#define METRICS_ACTIVE_MINUTES 15

/* One request, as the worker saw it once the response was sent. */
struct metrics_request {
    const char *tenant_id;      /* NULL: no tenant */
    const char *tenant_slug;    /* with tenant_id */
    const char *user_id;        /* NULL: no authenticated user */
    int route;                  /* index in routes[], -1: none matched */
    int status;                 /* the HTTP status sent */
    double seconds;             /* from the request's start to its end */
    double now;                 /* monotonic seconds, at the end */
};

/*
 * Maps the shared memory for tenants_max seats.  Called once by the
 * master before it forks (and by the unit tests); a second call keeps
 * the first mapping.  Returns -1 with a message in why when the memory
 * cannot be had or the route table outgrew METRICS_ROUTES_MAX.
 */
int metrics_init(int tenants_max, char *why, size_t why_size);

/* Unmaps it, in the process that mapped it (the unit tests). */
void metrics_shutdown(void);

/* True once metrics_init succeeded (in this process or its parent). */
bool metrics_ready(void);

/* The seats the shared memory was made for. */
int metrics_tenants_max(void);

/* Counts one request (a worker, after its response). */
void metrics_count_request(const struct metrics_request *m);

/*
 * Observes one flow execution that reached a final status (execution
 * status name) after running for seconds, in the tenant's row.
 */
void metrics_count_execution(const char *tenant_id, const char *tenant_slug,
    const char *status, double seconds, double now);

/*
 * Adds the database and MongoDB failures this process saw since its last
 * call (lib/db.c and lib/mongo.c count them).
 */
void metrics_flush_failures(void);

/* One access log line could not be written. */
void metrics_count_access_log_dropped(void);

/* The audit shipper: tenants whose entries wait, entries shipped. */
void metrics_set_audit_pending(long tenants);
void metrics_count_audit_shipped(long entries);

/* The master: workers serving now and configured; one replaced. */
void metrics_set_workers(int alive, int configured);
void metrics_count_worker_replaced(void);

/*
 * The tenants holding a seat, as UUID text, at most max of them.
 * Returns how many were written.
 */
int metrics_seated_tenants(char (*ids)[UUID_TEXT_LEN + 1], int max);

/* Gives up the tenant's seat (it was deleted): its series go at once. */
void metrics_retire_tenant(const char *tenant_id);

/*
 * The master's periodic duty, about once a second: frees seats given up
 * a while ago, and every few seconds gives the seat of the quietest
 * tenant to a busier one waiting under "other".  now: monotonic seconds.
 */
void metrics_housekeeping(double now);

/*
 * Writes every series in the Prometheus text exposition format 0.0.4.
 * now: monotonic seconds (for the active users).
 */
void metrics_render(struct buf *out, double now);

/* The media type of metrics_render's text. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Monotonic seconds, the clock every now above is read from. */
double metrics_now(void);

#endif
