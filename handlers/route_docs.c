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
    .status = 200,
    .response_schema =
        "{\"type\":\"object\",\"properties\":{\"status\":" STRING "}}",
};

const struct route_doc health_ready_doc = {
    .status = 200,
    .response_schema = "{\"type\":\"object\",\"properties\":{\"status\":"
        "{\"enum\":[\"ready\",\"unavailable\"]},\"postgresql\":"
        "{\"enum\":[\"up\",\"down\"]},\"mongodb\":"
        "{\"enum\":[\"up\",\"down\",\"not configured\"]}}}",
};

#define TENANT_PROPERTIES \
    "\"id\":" UUID_SCHEMA ",\"name\":" STRING ",\"slug\":" STRING \
    ",\"is_active\":{\"type\":\"boolean\"},\"created_at\":" TIME_SCHEMA

static const int signup_errors[] = { 403, 409, 0 };
static const int login_errors[] = { 401, 0 };

const struct route_doc tenants_create_doc = {
    .status = 201,
    .request_schema = "{\"type\":\"object\",\"additionalProperties\":false,"
        "\"required\":[\"name\",\"slug\",\"admin_email\",\"admin_password\"],"
        "\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":255},"
        "\"slug\":{\"type\":\"string\","
        "\"pattern\":\"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$\"},"
        "\"admin_email\":{\"type\":\"string\",\"format\":\"email\"},"
        "\"admin_password\":{\"type\":\"string\",\"writeOnly\":true}}}",
    .response_schema =
        "{\"type\":\"object\",\"properties\":{" TENANT_PROPERTIES "}}",
    .errors = signup_errors,
};

#define TENANT_RECORD \
    "{\"type\":\"object\",\"properties\":{" TENANT_PROPERTIES \
    ",\"audit_reads\":{\"type\":\"boolean\"},\"updated_at\":" \
    TIME_SCHEMA "}}"

const struct route_doc tenants_self_doc = {
    .status = 200,
    .response_schema = TENANT_RECORD,
};

const struct route_doc tenants_update_doc = {
    .status = 200,
    .request_schema = "{\"type\":\"object\",\"additionalProperties\":false,"
        "\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":255},"
        "\"audit_reads\":{\"type\":\"boolean\"}}}",
    .response_schema = TENANT_RECORD,
};

const struct route_doc auth_login_doc = {
    .status = 200,
    .request_schema = "{\"type\":\"object\",\"additionalProperties\":false,"
        "\"required\":[\"email\",\"password\"],\"properties\":{"
        "\"email\":" STRING ",\"password\":{\"type\":\"string\","
        "\"writeOnly\":true}}}",
    .response_schema =
        "{\"type\":\"object\",\"required\":[\"access_token\",\"token_type\","
        "\"expires_in\"],\"properties\":{\"access_token\":" STRING ","
        "\"token_type\":{\"const\":\"Bearer\"},\"expires_in\":"
        "{\"type\":\"integer\"}}}",
    .errors = login_errors,
};

const struct route_doc users_me_doc = {
    .status = 200,
    .response_schema = REF("User"),
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
    .status = 200,
    .response_schema = MEMBERS_PAGE,
};

const struct route_doc crews_agents_put_doc = {
    .status = 200,
    .request_schema = MEMBERSHIP,
    .response_schema = MEMBERS_PAGE,
};

const struct route_doc executions_run_doc = {
    .status = 202,
    .request_schema =
        "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":"
        "{\"inputs\":{\"type\":\"object\"}}}",
    .response_schema = REF("Execution"),
};

/* A cancel takes no body, or an empty object. */
const struct route_doc executions_cancel_doc = {
    .status = 200,
    .request_schema = "{\"type\":\"object\",\"maxProperties\":0}",
    .response_schema = REF("Execution"),
};

/* ?force=true also takes the agent out of its crews. */
static const char *const force_query[] = { "force", NULL };

const struct route_doc agents_delete_doc = {
    .status = 204,
    .query = force_query,
};

const struct route_doc openapi_doc = {
    .status = 200,
    .response_schema = "{\"type\":\"object\"}",
};

/* execution logs and chat */

#define PAGE_OF(item) \
    "{\"type\":\"object\",\"required\":[\"items\",\"next_cursor\"]," \
    "\"properties\":{\"items\":{\"type\":\"array\",\"items\":" item "}," \
    "\"next_cursor\":{\"type\":[\"string\",\"null\"]}}}"

#define LOG_LEVEL_SCHEMA \
    "{\"enum\":[\"debug\",\"info\",\"warning\",\"error\"]}"

#define LOG_ENTRY_IN \
    "{\"type\":\"object\",\"additionalProperties\":false," \
    "\"required\":[\"level\",\"message\"],\"properties\":{" \
    "\"level\":" LOG_LEVEL_SCHEMA "," \
    "\"message\":{\"type\":\"string\",\"maxLength\":65536}," \
    "\"node_id\":{\"type\":[\"string\",\"null\"],\"maxLength\":255}," \
    "\"metadata\":{\"type\":[\"object\",\"null\"],\"description\":" \
    "\"member names must not start with '$' or contain '.'\"}}}"

#define LOG_ENTRY_OUT \
    "{\"type\":\"object\",\"properties\":{\"id\":" UUID_SCHEMA "," \
    "\"execution_id\":" UUID_SCHEMA "," \
    "\"node_id\":{\"type\":[\"string\",\"null\"]}," \
    "\"level\":" LOG_LEVEL_SCHEMA ",\"message\":" STRING "," \
    "\"metadata\":{\"type\":[\"object\",\"null\"]}," \
    "\"timestamp\":" TIME_SCHEMA "}}"

const struct route_doc execution_logs_create_doc = {
    .status = 201,
    .request_schema =
        "{\"oneOf\":[" LOG_ENTRY_IN ",{\"type\":\"array\",\"minItems\":1,"
        "\"maxItems\":1000,\"items\":" LOG_ENTRY_IN "}]}",
    .response_schema =
        "{\"oneOf\":[" LOG_ENTRY_OUT ",{\"type\":\"object\",\"properties\":"
        "{\"items\":{\"type\":\"array\",\"items\":" LOG_ENTRY_OUT "}}}]}",
};

static const char *const logs_query[] = {
    "level", "limit", "cursor", NULL
};

const struct route_doc execution_logs_list_doc = {
    .status = 200,
    .response_schema = PAGE_OF(LOG_ENTRY_OUT),
    .query = logs_query,
};

#define CHAT_ROLE_SCHEMA \
    "{\"enum\":[\"user\",\"assistant\",\"system\",\"tool\"]}"

#define CHAT_MESSAGE_IN \
    "{\"type\":\"object\",\"additionalProperties\":false," \
    "\"required\":[\"role\",\"content\"],\"properties\":{" \
    "\"role\":" CHAT_ROLE_SCHEMA "," \
    "\"content\":{\"type\":\"string\",\"maxLength\":1048576}," \
    "\"tool_calls\":{\"type\":[\"array\",\"null\"],\"maxItems\":128," \
    "\"items\":{\"type\":\"object\"}}," \
    "\"metadata\":{\"type\":[\"object\",\"null\"]}}}"

#define CHAT_MESSAGE_OUT \
    "{\"type\":\"object\",\"properties\":{\"id\":" UUID_SCHEMA "," \
    "\"conversation_id\":" UUID_SCHEMA ",\"role\":" CHAT_ROLE_SCHEMA "," \
    "\"content\":" STRING "," \
    "\"tool_calls\":{\"type\":[\"array\",\"null\"]}," \
    "\"metadata\":{\"type\":[\"object\",\"null\"]}," \
    "\"timestamp\":" TIME_SCHEMA "}}"

const struct route_doc chat_messages_create_doc = {
    .status = 201,
    .request_schema = CHAT_MESSAGE_IN,
    .response_schema = CHAT_MESSAGE_OUT,
};

static const char *const messages_query[] = {
    "role", "limit", "cursor", NULL
};

const struct route_doc chat_messages_list_doc = {
    .status = 200,
    .response_schema = PAGE_OF(CHAT_MESSAGE_OUT),
    .query = messages_query,
};

/* audit logs */

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
    .status = 200,
    .response_schema =
        "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":"
        "\"array\",\"items\":" AUDIT_LOG "},\"next_cursor\":{\"type\":"
        "[\"string\",\"null\"]}}}",
    .query = audit_logs_query,
};
