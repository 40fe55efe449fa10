/*
 * /healthz and /readyz, for load balancers and supervisors.
 */
#include "config.h"

#include "handlers.h"

int
health_live(struct request *req)
{
    struct json_writer *w = response_json(req, 200);

    jw_object_open(w);
    jw_kv_string(w, "status", "ok");
    jw_object_close(w);
    return 0;
}

int
health_ready(struct request *req)
{
    struct crewd_error err;
    struct json_writer *w;
    const char *mongodb = "not configured";
    bool postgres_up;

    error_clear(&err);
    postgres_up = db_ready(req->db, &err) == 0 &&
        db_run(req->db, &err, "SELECT 1", 0, NULL) == 0;

    /* MongoDB is reported, not required: without it only execution
       logs, chat and the audit trail's shipping wait. */
    if (mongo_configured(req->mongo)) {
        error_clear(&err);
        mongodb = mongo_ping(req->mongo, &err) == 0 ? "up" : "down";
    }

    w = response_json(req, postgres_up ? 200 : 503);
    if (!postgres_up)
        response_header(req, "Retry-After", "1");
    jw_object_open(w);
    jw_kv_string(w, "status", postgres_up ? "ready" : "unavailable");
    jw_kv_string(w, "postgresql", postgres_up ? "up" : "down");
    jw_kv_string(w, "mongodb", mongodb);
    jw_object_close(w);
    return 0;
}
