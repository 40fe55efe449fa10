/*
 * Agents: /api/v1/agents and /api/v1/agents/{id}.
 *
 * Runs inside the tenant's transaction with the search path set to its
 * schema, so "agents" here is always the calling tenant's table.
 */
#include "config.h"

#include <string.h>

#include "handlers.h"
#include "resource.h"

/* The select list; the order is the column numbers in write_agent. */
#define AGENT_COLUMNS \
    "id, tenant_id, name, role, goal, backstory, llm_provider_id, " \
    "allow_delegation, \"verbose\", config, created_at, updated_at, " \
    SQL_ETAG

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

static const struct resource agents = {
    .table = "agents",
    .collection = "agents",
    .noun = "agent",
    .columns = AGENT_COLUMNS,
    .ncolumns = 13,
    .created_at_column = 10,
    .fields = agent_fields,
    .field_columns = agent_field_columns,
    .nfields = sizeof(agent_fields) / sizeof(agent_fields[0]),
    .write = write_agent,
    .explain = explain_agent_refusal,
};

int
agents_list(struct request *req)
{
    return resource_list(req, &agents);
}

int
agents_create(struct request *req)
{
    return resource_create(req, &agents);
}

int
agents_get(struct request *req)
{
    return resource_get(req, &agents);
}

int
agents_update(struct request *req)
{
    return resource_update(req, &agents);
}

int
agents_delete(struct request *req)
{
    return resource_delete(req, &agents);
}
