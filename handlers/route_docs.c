/*
 * The OpenAPI descriptions of the routes that are not one of a
 * resource's five (handlers/openapi.c describes those from the resource
 * itself).  Each is JSON Schema text, next to the others so the shapes of
 * the whole API's special cases read in one place.
 */
#include "config.h"

#include <stddef.h>

#include "handlers.h"
#include "routes.h"

#define REF(name) "{\"$ref\":\"#/components/schemas/" name "\"}"
#define STRING "{\"type\":\"string\"}"
#define UUID_SCHEMA "{\"type\":\"string\",\"format\":\"uuid\"}"
#define TIME_SCHEMA "{\"type\":\"string\",\"format\":\"date-time\"}"

const struct route_doc health_live_doc = {
    200, NULL,
    "{\"type\":\"object\",\"properties\":{\"status\":" STRING "}}",
    NULL,
};

const struct route_doc health_ready_doc = {
    200, NULL,
    "{\"type\":\"object\",\"properties\":{\"status\":"
    "{\"enum\":[\"ready\",\"unavailable\"]},\"postgresql\":"
    "{\"enum\":[\"up\",\"down\"]},\"mongodb\":" STRING "}}",
    NULL,
};

#define TENANT_PROPERTIES \
    "\"id\":" UUID_SCHEMA ",\"name\":" STRING ",\"slug\":" STRING \
    ",\"is_active\":{\"type\":\"boolean\"},\"created_at\":" TIME_SCHEMA

const struct route_doc tenants_create_doc = {
    201,
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"name\",\"slug\",\"admin_email\",\"admin_password\"],"
    "\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":255},"
    "\"slug\":{\"type\":\"string\","
    "\"pattern\":\"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$\"},"
    "\"admin_email\":{\"type\":\"string\",\"format\":\"email\"},"
    "\"admin_password\":{\"type\":\"string\",\"writeOnly\":true}}}",
    "{\"type\":\"object\",\"properties\":{" TENANT_PROPERTIES "}}",
    NULL,
};

const struct route_doc tenants_self_doc = {
    200, NULL,
    "{\"type\":\"object\",\"properties\":{" TENANT_PROPERTIES
    ",\"updated_at\":" TIME_SCHEMA "}}",
    NULL,
};

const struct route_doc auth_login_doc = {
    200,
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"email\",\"password\"],\"properties\":{"
    "\"email\":" STRING ",\"password\":{\"type\":\"string\","
    "\"writeOnly\":true}}}",
    "{\"type\":\"object\",\"required\":[\"access_token\",\"token_type\","
    "\"expires_in\"],\"properties\":{\"access_token\":" STRING ","
    "\"token_type\":{\"const\":\"Bearer\"},\"expires_in\":"
    "{\"type\":\"integer\"}}}",
    NULL,
};

const struct route_doc users_me_doc = {
    200, NULL, REF("User"), NULL,
};

#define MEMBERSHIP \
    "{\"type\":\"array\",\"maxItems\":1000,\"items\":{\"type\":\"object\"," \
    "\"additionalProperties\":false,\"required\":[\"agent_id\"," \
    "\"position\"],\"properties\":{\"agent_id\":" UUID_SCHEMA "," \
    "\"position\":{\"type\":\"integer\",\"minimum\":0}}}}"

#define MEMBERS_PAGE \
    "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\"," \
    "\"items\":{\"type\":\"object\",\"properties\":{\"agent_id\":" \
    UUID_SCHEMA ",\"position\":{\"type\":\"integer\"},\"agent\":" \
    REF("Agent") "}}},\"next_cursor\":{\"type\":\"null\"}}}"

const struct route_doc crews_agents_get_doc = {
    200, NULL, MEMBERS_PAGE, NULL,
};

const struct route_doc crews_agents_put_doc = {
    200, MEMBERSHIP, MEMBERS_PAGE, NULL,
};

const struct route_doc executions_run_doc = {
    202,
    "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":"
    "{\"inputs\":{\"type\":\"object\"}}}",
    REF("Execution"),
    NULL,
};

const struct route_doc executions_cancel_doc = {
    200, NULL, REF("Execution"), NULL,
};

static const char *const force_query[] = { "force", NULL };

const struct route_doc agents_delete_doc = {
    204, NULL, NULL, force_query,
};

const struct route_doc openapi_doc = {
    200, NULL, "{\"type\":\"object\"}", NULL,
};

static const char *const audit_logs_query[] = {
    "limit", "cursor", "user_id", "resource_type", "resource_id", NULL
};

#define AUDIT_LOG \
    "{\"type\":\"object\",\"properties\":{\"id\":" UUID_SCHEMA "," \
    "\"user_id\":" UUID_SCHEMA ",\"action\":{\"enum\":[\"create\"," \
    "\"read\",\"update\",\"delete\"]},\"resource_type\":" STRING "," \
    "\"resource_id\":{\"type\":[\"string\",\"null\"]}," \
    "\"changes\":{\"type\":\"object\",\"properties\":{\"before\":" \
    "{},\"after\":{}}},\"ip_address\":{\"type\":[\"string\"," \
    "\"null\"]},\"user_agent\":{\"type\":[\"string\",\"null\"]}," \
    "\"timestamp\":" TIME_SCHEMA "}}"

const struct route_doc audit_logs_list_doc = {
    200, NULL,
    "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":"
    "\"array\",\"items\":" AUDIT_LOG "},\"next_cursor\":{\"type\":"
    "[\"string\",\"null\"]}}}",
    audit_logs_query,
};
