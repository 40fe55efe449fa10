/*
 * GET /metrics: the Prometheus text of every worker's counters
 * (fcgi/metrics.c).  Served only on nginx's loopback metrics listener,
 * which says so with the FastCGI parameter CREWD_LISTENER; the route
 * table knows the route nowhere else (docs/metrics.md).
 */
#include "config.h"

#include "handlers.h"
#include "log.h"
#include "metrics.h"

static const char SQL_TENANTS_EXISTING[] =
    "SELECT id::text FROM public.tenants WHERE id = ANY($1::uuid[])";

/*
 * The seats of tenants deleted since (crewctl tenant delete) are given
 * up, so their series disappear from this scrape on.  One query with the
 * seated ids; when PostgreSQL does not answer, nothing is given up.
 */
static void
forget_deleted_tenants(struct request *req)
{
    int max = metrics_tenants_max();
    char (*ids)[UUID_TEXT_LEN + 1];
    struct crewd_error err;
    const char *params[1];
    struct buf list = BUF_INIT;
    PGresult *res;
    int n;

    ids = arena_alloc(req->arena, (size_t)max * sizeof(*ids));
    n = metrics_seated_tenants(ids, max);
    if (n == 0)
        return;

    /* A PostgreSQL array of our own UUID text, bound as one value. */
    buf_putc(&list, '{');
    for (int i = 0; i < n; i++)
        buf_printf(&list, "%s%s", i > 0 ? "," : "", ids[i]);
    buf_putc(&list, '}');
    params[0] = arena_strdup(req->arena, buf_cstr(&list));
    buf_free(&list);

    error_clear(&err);
    if (db_ready(req->db, &err) < 0)
        return;
    res = db_exec(req->db, req->arena, &err, SQL_TENANTS_EXISTING, 1,
        params);
    if (res == NULL)
        return;

    for (int i = 0; i < n; i++) {
        bool exists = false;

        for (int row = 0; row < PQntuples(res) && !exists; row++)
            exists = strcmp(PQgetvalue(res, row, 0), ids[i]) == 0;
        if (!exists) {
            log_info("metrics: tenant %s is gone; its series too", ids[i]);
            metrics_retire_tenant(ids[i]);
        }
    }
}

int
metrics_get(struct request *req)
{
    if (request_query_check(req, NULL) < 0)
        return -1;
    if (!metrics_ready())
        return request_fail(req, 503, "metrics are not available");

    forget_deleted_tenants(req);
    req->status = 200;
    req->response_type = METRICS_CONTENT_TYPE;
    buf_reset(req->body_out);
    metrics_render(req->body_out, metrics_now());
    return 0;
}
