/*
 * Agents: /api/v1/agents and /api/v1/agents/{id}.
 *
 * Runs inside the tenant's transaction with the search path set to its
 * schema, so "agents" here is always the calling tenant's table.
 */
#include "config.h"

#include <string.h>

#include "agents.h"
#include "handlers.h"
#include "resource.h"

/* How many crews the agent is in: deleting it needs ?force=true. */
static const char SQL_AGENT_CREW_COUNT[] =
    "SELECT count(*) FROM crew_agents WHERE agent_id = $1";

/*
 * A forced delete locks the agent's crews before the agent, in the order
 * PUT /crews/{id}/agents takes them (crew, then its agents), so the two
 * never wait for each other in a circle.
 */
static const char SQL_LOCK_AGENT_CREWS[] =
    "SELECT id FROM crews WHERE id IN "
    "(SELECT crew_id FROM crew_agents WHERE agent_id = $1) "
    "ORDER BY id FOR UPDATE";

/* A forced delete changes its crews' membership, so their ETags move. */
static const char SQL_TOUCH_AGENT_CREWS[] =
    "UPDATE crews SET updated_at = greatest(now(), updated_at + "
    "interval '1 microsecond') WHERE id IN "
    "(SELECT crew_id FROM crew_agents WHERE agent_id = $1)";

/*
 * The agent leaves its crews, and the members behind it move up one, so
 * positions stay dense.  The position constraint is deferrable: it is
 * checked at the end of the statement, not row by row.
 */
static const char SQL_LEAVE_CREWS[] =
    "WITH gone AS (DELETE FROM crew_agents WHERE agent_id = $1 "
    "RETURNING crew_id, position) "
    "UPDATE crew_agents SET position = crew_agents.position - 1 FROM gone "
    "WHERE crew_agents.crew_id = gone.crew_id "
    "AND crew_agents.position > gone.position";

static const struct field_spec agent_fields[] = {
    { "name", FIELD_STRING, FIELD_REQUIRED, 255, 0, 0, NULL },
    { "role", FIELD_STRING, FIELD_REQUIRED, 255, 0, 0, NULL },
    { "goal", FIELD_TEXT, FIELD_REQUIRED, 65535, 1, 0, NULL },
    { "backstory", FIELD_TEXT, FIELD_NULLABLE, 65535, 0, 0, NULL },
    { "llm_provider_id", FIELD_UUID, FIELD_NULLABLE, 0, 0, 0, NULL },
    { "allow_delegation", FIELD_BOOL, 0, 0, 0, 0, NULL },
    { "verbose", FIELD_BOOL, 0, 0, 0, 0, NULL },
    { "config", FIELD_OBJECT, 0, 65536, 0, 0, NULL },
};

static const char *const agent_field_columns[] = {
    "name", "role", "goal", "backstory", "llm_provider_id",
    "allow_delegation", "\"verbose\"", "config",
};

/* The column numbers are those of AGENT_COLUMNS (agents.h). */
void
agent_write(struct request *req, const PGresult *res, int row)
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

/* A missing provider is the client's mistake about one field. */
static void
explain_agent_refusal(struct request *req)
{
    if (strcmp(req->err.sqlstate, "23503") == 0 &&
        strstr(req->err.constraint, "llm_provider") != NULL) {
        req->err.status = 0;
        error_field(&req->err, "/llm_provider_id",
            "no such LLM provider in this tenant");
    }
}

const struct resource agents_resource = {
    .table = "agents",
    .collection = "agents",
    .noun = "agent",
    .columns = AGENT_COLUMNS,
    .ncolumns = AGENT_NCOLUMNS,
    .created_at_column = 10,
    .fields = agent_fields,
    .field_columns = agent_field_columns,
    .nfields = sizeof(agent_fields) / sizeof(agent_fields[0]),
    .write = agent_write,
    .explain = explain_agent_refusal,
};

/*
 * DELETE /agents/{id}[?force=true]: an agent that is a member of a crew
 * is only deleted when forced, and then leaves its crews first.  The
 * agent's row is locked before its crews are counted, so no crew can
 * take it in between the count and the delete.
 */
int
agents_delete(struct request *req)
{
    static const char *const allowed[] = { "force", NULL };
    const char *params[1] = { req->path_ids[0] };
    const char *force;
    PGresult *res;

    if (request_query_check(req, allowed) < 0)
        return -1;
    force = request_query(req, "force");
    if (force != NULL && strcmp(force, "true") != 0 &&
        strcmp(force, "false") != 0) {
        request_fail(req, 400, "query parameter force is not valid");
        error_field(&req->err, "force", "must be true or false");
        return -1;
    }
    if (force != NULL && strcmp(force, "true") == 0) {
        /* See SQL_LOCK_AGENT_CREWS for the order of the locks. */
        if (db_run(req->db, &req->err, SQL_LOCK_AGENT_CREWS, 1,
                params) < 0 ||
            resource_lock(req, &agents_resource) < 0 ||
            db_run(req->db, &req->err, SQL_TOUCH_AGENT_CREWS, 1,
                params) < 0 ||
            db_run(req->db, &req->err, SQL_LEAVE_CREWS, 1, params) < 0)
            return -1;
        return resource_delete_locked(req, &agents_resource);
    }

    if (resource_lock(req, &agents_resource) < 0)
        return -1;

    res = db_exec(req->db, req->arena, &req->err, SQL_AGENT_CREW_COUNT, 1,
        params);
    if (res == NULL)
        return -1;
    if (strcmp(db_value(res, 0, 0), "0") != 0)
        return request_fail(req, 409, "the agent is a member of %s %s; "
            "delete it with ?force=true to remove it from them too",
            db_value(res, 0, 0),
            strcmp(db_value(res, 0, 0), "1") == 0 ? "crew" : "crews");
    return resource_delete_locked(req, &agents_resource);
}
