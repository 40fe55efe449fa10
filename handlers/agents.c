/*
 * Agents: /api/v1/agents and /api/v1/agents/{id}.
 *
 * Runs inside the tenant's transaction with the search path set to its
 * schema, so "agents" here is always the calling tenant's table.
 */
#include "config.h"

#include <string.h>

#include "common.h"
#include "handlers.h"

#define AGENT_COLUMNS \
    "id, tenant_id, name, role, goal, backstory, llm_provider_id, " \
    "allow_delegation, \"verbose\", config, created_at, updated_at, " \
    SQL_ETAG

static const char SQL_AGENT_INSERT[] =
    "INSERT INTO agents (tenant_id, name, role, goal, backstory,"
    " llm_provider_id, allow_delegation, \"verbose\", config)"
    " VALUES ($1, $2, $3, $4, $5, $6, coalesce($7::boolean, false),"
    " coalesce($8::boolean, true), coalesce($9::jsonb, '{}'::jsonb))"
    " RETURNING " AGENT_COLUMNS;

static const char SQL_AGENT_GET[] =
    "SELECT " AGENT_COLUMNS " FROM agents WHERE id = $1";

static const char SQL_AGENT_LOCK[] =
    "SELECT " SQL_ETAG " FROM agents WHERE id = $1 FOR UPDATE";

static const char SQL_AGENT_LIST_FIRST[] =
    "SELECT " AGENT_COLUMNS " FROM agents"
    " ORDER BY created_at DESC, id DESC LIMIT $1";

static const char SQL_AGENT_LIST_AFTER[] =
    "SELECT " AGENT_COLUMNS " FROM agents"
    " WHERE (created_at, id) < ($2::timestamptz, $3::uuid)"
    " ORDER BY created_at DESC, id DESC LIMIT $1";

static const char SQL_AGENT_DELETE[] =
    "DELETE FROM agents WHERE id = $1";

/* The writable fields, in the order of the columns below. */
static const struct field_spec agent_fields[] = {
    { "name", FIELD_STRING, FIELD_REQUIRED, 255, 0, 0, NULL },
    { "role", FIELD_STRING, FIELD_REQUIRED, 255, 0, 0, NULL },
    { "goal", FIELD_TEXT, FIELD_REQUIRED, 65535, 1, 0, NULL },
    { "backstory", FIELD_TEXT, FIELD_NULLABLE, 65535, 0, 0, NULL },
    { "llm_provider_id", FIELD_UUID, FIELD_NULLABLE, 0, 0, 0, NULL },
    { "allow_delegation", FIELD_BOOL, 0, 0, 0, 0, NULL },
    { "verbose", FIELD_BOOL, 0, 0, 0, 0, NULL },
    { "config", FIELD_OBJECT, 0, 0, 0, 0, NULL },
};

#define AGENT_NFIELDS (sizeof(agent_fields) / sizeof(agent_fields[0]))

static const char *const agent_columns[AGENT_NFIELDS] = {
    "name", "role", "goal", "backstory", "llm_provider_id",
    "allow_delegation", "\"verbose\"", "config",
};

static void
write_agent(struct request *req, const PGresult *res, int row)
{
    struct json_writer *w = &req->json;

    jw_object_open(w);
    jw_kv_string(w, "id", db_value(res, row, 0));
    jw_kv_string(w, "tenant_id", db_value(res, row, 1));
    jw_kv_string(w, "name", db_value(res, row, 2));
    jw_kv_string(w, "role", db_value(res, row, 3));
    jw_kv_string(w, "goal", db_value(res, row, 4));
    jw_kv_string(w, "backstory", db_value(res, row, 5));
    jw_kv_string(w, "llm_provider_id", db_value(res, row, 6));
    jw_kv_bool(w, "allow_delegation", db_bool(res, row, 7));
    jw_kv_bool(w, "verbose", db_bool(res, row, 8));
    jw_kv_raw(w, "config", db_value(res, row, 9));
    jw_kv_string(w, "created_at", db_timestamp(req->arena, res, row, 10));
    jw_kv_string(w, "updated_at", db_timestamp(req->arena, res, row, 11));
    jw_object_close(w);
}

/* One agent as the whole response, with its ETag. */
static int
respond_agent(struct request *req, int status, const PGresult *res)
{
    response_json(req, status);
    write_agent(req, res, 0);
    response_etag(req, db_value(res, 0, 12));
    return 0;
}

/* A missing provider is the client's mistake about one field. */
static int
explain_failure(struct request *req)
{
    if (strcmp(req->err.sqlstate, "23503") == 0 &&
        strstr(req->err.constraint, "llm_provider") != NULL) {
        req->err.status = 0;
        error_field(&req->err, "/llm_provider_id",
            "no such LLM provider in this tenant");
    }
    return -1;
}

int
agents_list(struct request *req)
{
    static const char *const allowed[] = { "limit", "cursor", NULL };
    struct page page;
    PGresult *res;
    int rows, shown;

    if (request_query_check(req, allowed) < 0 || page_read(req, &page) < 0)
        return -1;

    if (page.after_ts == NULL) {
        const char *params[1] = { page.limit_text };

        res = db_exec(req->db, req->arena, &req->err, SQL_AGENT_LIST_FIRST,
            1, params);
    } else {
        const char *params[3] = { page.limit_text, page.after_ts,
                                  page.after_id };

        res = db_exec(req->db, req->arena, &req->err, SQL_AGENT_LIST_AFTER,
            3, params);
    }
    if (res == NULL)
        return -1;

    rows = PQntuples(res);
    shown = rows > page.limit ? page.limit : rows;

    response_json(req, 200);
    jw_object_open(&req->json);
    jw_key(&req->json, "items");
    jw_array_open(&req->json);
    for (int i = 0; i < shown; i++)
        write_agent(req, res, i);
    jw_array_close(&req->json);
    page_write_next(req, rows > page.limit,
        shown > 0 ? db_timestamp(req->arena, res, shown - 1, 10) : NULL,
        shown > 0 ? db_value(res, shown - 1, 0) : NULL);
    jw_object_close(&req->json);
    return 0;
}

int
agents_create(struct request *req)
{
    struct field_value v[AGENT_NFIELDS];
    struct json_object *body;
    const char *params[9];
    PGresult *res;

    if (request_query_check(req, NULL) < 0 ||
        request_json_object(req, &body) < 0 ||
        fields_read(req->arena, body, agent_fields, AGENT_NFIELDS, true, v,
            &req->err) < 0)
        return -1;

    params[0] = req->tenant->id;
    for (size_t i = 0; i < AGENT_NFIELDS; i++)
        params[i + 1] = v[i].present && !v[i].is_null ? v[i].text : NULL;

    res = db_exec(req->db, req->arena, &req->err, SQL_AGENT_INSERT, 9,
        params);
    if (res == NULL)
        return explain_failure(req);

    response_location(req, "agents", db_value(res, 0, 0));
    return respond_agent(req, 201, res);
}

int
agents_get(struct request *req)
{
    const char *params[1] = { req->path_ids[0] };
    PGresult *res;

    if (request_query_check(req, NULL) < 0)
        return -1;
    res = db_exec(req->db, req->arena, &req->err, SQL_AGENT_GET, 1, params);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0)
        return request_fail(req, 404, "no such agent");
    return respond_agent(req, 200, res);
}

/*
 * Locks the agent's row and checks If-Match against it, so a change can
 * never be based on a version another request replaced meanwhile.
 */
static int
lock_agent(struct request *req)
{
    const char *params[1] = { req->path_ids[0] };
    PGresult *res;

    res = db_exec(req->db, req->arena, &req->err, SQL_AGENT_LOCK, 1, params);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0)
        return request_fail(req, 404, "no such agent");
    return precondition_check(req, db_value(res, 0, 0));
}

int
agents_update(struct request *req)
{
    struct field_value v[AGENT_NFIELDS];
    struct json_object *body;
    const char *params[AGENT_NFIELDS + 1];
    const char *sql;
    int nparams;
    PGresult *res;

    if (request_query_check(req, NULL) < 0 ||
        request_json_object(req, &body) < 0 ||
        fields_read(req->arena, body, agent_fields, AGENT_NFIELDS, false, v,
            &req->err) < 0 ||
        lock_agent(req) < 0)
        return -1;

    /* An empty merge patch changes nothing, not even updated_at. */
    if (fields_none_present(v, AGENT_NFIELDS))
        return agents_get(req);

    sql = sql_update(req, "agents", agent_columns, v, AGENT_NFIELDS,
        AGENT_COLUMNS, params, &nparams);
    res = db_exec(req->db, req->arena, &req->err, sql, nparams, params);
    if (res == NULL)
        return explain_failure(req);
    return respond_agent(req, 200, res);
}

int
agents_delete(struct request *req)
{
    const char *params[1] = { req->path_ids[0] };

    if (request_query_check(req, NULL) < 0 || lock_agent(req) < 0 ||
        db_run(req->db, &req->err, SQL_AGENT_DELETE, 1, params) < 0)
        return -1;

    response_empty(req, 204);
    return 0;
}
