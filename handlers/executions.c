/*
 * Executions: POST /api/v1/flows/{id}/executions, /api/v1/executions,
 * /api/v1/executions/{id} and POST /api/v1/executions/{id}/cancel.
 *
 * An execution is one run of a flow, owned by the user who asked for it.
 * It is created pending (202: the run happens later, in a worker) and
 * only ever changes status through the lifecycle of lib/executions.c;
 * clients can create, read and cancel, never write it otherwise.
 *
 * Runs inside the tenant's transaction with the search path set to its
 * schema, so "flows" and "executions" are the calling tenant's tables.
 */
#include "config.h"

#include <string.h>

#include "audit_logs.h"
#include "executions.h"
#include "handlers.h"
#include "log.h"
#include "resource.h"

/* The select list; the order is the column numbers in write_execution. */
#define EXECUTION_COLUMNS \
    "id, tenant_id, flow_id, user_id, status, inputs, outputs, error, " \
    "started_at, completed_at, created_at, updated_at, " SQL_ETAG

/*
 * The flow to run.  FOR SHARE keeps it from being deactivated or deleted
 * until the new execution is committed.
 */
static const char SQL_FLOW_RUNNABLE[] =
    "SELECT is_active FROM flows WHERE id = $1 FOR SHARE";

static const char SQL_EXECUTION_CREATE[] =
    "INSERT INTO executions (tenant_id, flow_id, user_id, inputs)"
    " VALUES ($1, $2, $3, $4) RETURNING " EXECUTION_COLUMNS;

/* The row to cancel, locked so its status cannot change under us. */
static const char SQL_EXECUTION_LOCK[] =
    "SELECT status, " SQL_ETAG " FROM executions WHERE id = $1 FOR UPDATE";

/* What a client may send when it runs a flow. */
static const struct field_spec execution_fields[] = {
    { "inputs", FIELD_OBJECT, 0, 0, 0, 0, NULL },
};

/* What an execution shows but only the server (or the path) sets. */
static const char *const execution_server_fields[] = {
    "flow_id", "user_id", "status", "outputs", "error", "started_at",
    "completed_at", NULL
};

static const struct list_filter execution_filters[] = {
    { "status", "status", FIELD_ENUM, execution_status_names },
    { "flow_id", "flow_id", FIELD_UUID, NULL },
};

static void
write_execution(struct request *req, const PGresult *res, int row)
{
    struct json_writer *w = &req->json;

    jw_object_open(w);
    jw_kv_string(w, "id", db_value(res, row, 0));
    jw_kv_string(w, "tenant_id", db_value(res, row, 1));
    jw_kv_string(w, "flow_id", db_value(res, row, 2));
    jw_kv_string(w, "user_id", db_value(res, row, 3));
    jw_kv_string(w, "status", db_value(res, row, 4));
    jw_kv_raw(w, "inputs", db_value(res, row, 5));
    jw_kv_raw(w, "outputs", db_value(res, row, 6));
    jw_kv_string(w, "error", db_value(res, row, 7));
    jw_kv_string(w, "started_at", db_timestamp(req->arena, res, row, 8));
    jw_kv_string(w, "completed_at", db_timestamp(req->arena, res, row, 9));
    jw_kv_string(w, "created_at", db_timestamp(req->arena, res, row, 10));
    jw_kv_string(w, "updated_at", db_timestamp(req->arena, res, row, 11));
    jw_object_close(w);
}

/*
 * Read through the generic list and get; created and changed only by the
 * handlers below, so the description has no writable fields.
 */
const struct resource executions_resource = {
    .table = "executions",
    .collection = "executions",
    .noun = "execution",
    .columns = EXECUTION_COLUMNS,
    .ncolumns = 13,
    .created_at_column = 10,
    .filters = execution_filters,
    .nfilters = sizeof(execution_filters) / sizeof(execution_filters[0]),
    .write = write_execution,
    .doc_properties =
        "\"flow_id\":{\"type\":\"string\",\"format\":\"uuid\"},"
        "\"user_id\":{\"type\":\"string\",\"format\":\"uuid\"},"
        "\"status\":{\"enum\":[\"pending\",\"running\",\"succeeded\","
        "\"failed\",\"cancelled\"]},"
        "\"inputs\":{\"type\":\"object\"},"
        "\"outputs\":{\"type\":[\"object\",\"null\"]},"
        "\"error\":{\"type\":[\"string\",\"null\"]},"
        "\"started_at\":{\"type\":[\"string\",\"null\"],"
        "\"format\":\"date-time\"},"
        "\"completed_at\":{\"type\":[\"string\",\"null\"],"
        "\"format\":\"date-time\"}",
};

/*
 * Reads the body of a run: {"inputs": {...}}, or nothing at all, which
 * means no inputs.  Sets *inputs to the JSON text to store.
 */
static int
read_run_body(struct request *req, const char **inputs)
{
    struct field_value values[1];
    struct json_object *body;

    *inputs = "{}";
    if (req->body_len == 0)
        return 0;
    if (request_json_object(req, &body) < 0)
        return -1;

    /* Said apart from unknown fields, so the client learns why. */
    for (size_t i = 0; execution_server_fields[i] != NULL; i++) {
        const char *name = execution_server_fields[i];

        if (json_object_object_get_ex(body, name, NULL)) {
            error_field(&req->err, arena_printf(req->arena, "/%s", name),
                "is set by the server");
            json_object_object_del(body, name);
        }
    }
    fields_read(req->arena, body, execution_fields,
        sizeof(execution_fields) / sizeof(execution_fields[0]), true,
        values, &req->err);
    if (req->err.status != 0)
        return -1;

    if (values[0].present)
        *inputs = values[0].text;
    return 0;
}

int
executions_create(struct request *req)
{
    const char *flow_id = req->path_ids[0];
    const char *params[4];
    const char *inputs;
    PGresult *res;

    if (request_query_check(req, NULL) < 0 || read_run_body(req, &inputs) < 0)
        return -1;

    params[0] = flow_id;
    res = db_exec(req->db, req->arena, &req->err, SQL_FLOW_RUNNABLE, 1,
        params);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0)
        return request_fail(req, 404, "no such flow");
    if (!db_bool(res, 0, 0))
        return request_fail(req, 409, "the flow is inactive and cannot be "
            "run; activate it first");

    params[0] = req->tenant->id;
    params[1] = flow_id;
    params[2] = req->auth.user_id;
    params[3] = inputs;
    res = db_exec(req->db, req->arena, &req->err, SQL_EXECUTION_CREATE, 4,
        params);
    if (res == NULL ||
        audit_resource(req, &executions_resource, AUDIT_CREATE, NULL, res,
            NULL) < 0)
        return -1;

    /* 202: the execution is accepted; a worker runs it later. */
    response_location(req, executions_resource.collection, db_value(res, 0, 0));
    return resource_respond(req, &executions_resource, 202, res);
}

/* A cancel carries no fields: no body, or an empty object. */
static int
read_cancel_body(struct request *req)
{
    struct field_value none[1];
    struct json_object *body;

    if (req->body_len == 0)
        return 0;
    if (request_json_object(req, &body) < 0)
        return -1;
    return fields_read(req->arena, body, execution_fields, 0, false, none,
        &req->err);
}

int
executions_cancel(struct request *req)
{
    const char *id = req->path_ids[0];
    const char *params[1] = { id };
    enum execution_status status;
    PGresult *before, *res;
    double run_seconds;
    int moved;

    if (request_query_check(req, NULL) < 0 || read_cancel_body(req) < 0)
        return -1;

    res = db_exec(req->db, req->arena, &req->err, SQL_EXECUTION_LOCK, 1,
        params);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0)
        return request_fail(req, 404, "no such execution");
    if (precondition_check(req, db_value(res, 0, 1)) < 0)
        return -1;

    if (!execution_status_parse(db_value(res, 0, 0), &status)) {
        log_error("execution %s has an unknown status", id);
        return request_fail(req, 500, "internal error");
    }
    if (!execution_transition_allowed(status, EXECUTION_CANCELLED))
        return request_fail(req, 409, "cannot cancel a %s execution",
            execution_status_names[status]);

    /* The row is locked: this is what the cancel changes, for the trail. */
    before = resource_fetch(req, &executions_resource, id);
    if (before == NULL)
        return -1;

    moved = execution_transition_timed(req->db, id, status,
        EXECUTION_CANCELLED, NULL, NULL, &run_seconds, &req->err);
    if (moved < 0)
        return -1;

    /* A run that ended here is observed once the change is committed. */
    if (run_seconds >= 0) {
        req->execution_final = execution_status_names[EXECUTION_CANCELLED];
        req->execution_seconds = run_seconds;
    }
    if (moved == 0)
        return request_fail(req, 409, "the execution changed status "
            "meanwhile; read it again");

    res = resource_fetch(req, &executions_resource, id);
    if (res == NULL ||
        audit_resource(req, &executions_resource, AUDIT_UPDATE, before, res,
            NULL) < 0)
        return -1;
    return resource_respond(req, &executions_resource, 200, res);
}
