#include "config.h"

#include <stdio.h>
#include <string.h>

#include "handlers.h"
#include "resource.h"
#include "routes.h"

/*
 * Every endpoint of crewd.  The role column is the least role a token
 * must carry (ROLE_NONE: no token); the worker checks it before the
 * handler runs, so this table is the whole permission table.
 */
const struct route routes[] = {
    /*
     * method, pattern, host, least role, handler, summary, and for the
     * OpenAPI document the resource it serves or its own description
     */

    /* platform */
    { "GET", "/healthz", HOST_APEX, ROLE_NONE,
      health_live, "liveness: the process serves",
      NULL, &health_live_doc },
    { "GET", "/readyz", HOST_APEX, ROLE_NONE,
      health_ready, "readiness: PostgreSQL answers",
      NULL, &health_ready_doc },
    { "POST", "/api/v1/tenants", HOST_APEX, ROLE_NONE,
      tenants_create, "sign a company up",
      NULL, &tenants_create_doc },

    /* the calling tenant */
    { "GET", "/api/v1/tenant", HOST_TENANT, ROLE_VIEWER,
      tenants_self, "the calling tenant's own record",
      NULL, &tenants_self_doc },
    { "PATCH", "/api/v1/tenant", HOST_TENANT, ROLE_ADMIN,
      tenants_update, "change the tenant's name or audit settings",
      NULL, &tenants_update_doc },

    /* authentication */
    { "POST", "/api/v1/auth/login", HOST_TENANT, ROLE_NONE,
      auth_login, "exchange e-mail and password for a token",
      NULL, &auth_login_doc },

    /* users */
    { "GET", "/api/v1/users/me", HOST_TENANT, ROLE_VIEWER,
      users_me, "the calling user",
      NULL, &users_me_doc },
    { "GET", "/api/v1/users", HOST_TENANT, ROLE_ADMIN,
      resource_list_route, "list the tenant's users, newest first",
      &users_resource, NULL },
    { "POST", "/api/v1/users", HOST_TENANT, ROLE_ADMIN,
      users_create, "invite a user with an e-mail, a password and a role",
      &users_resource, NULL },
    { "GET", "/api/v1/users/{id}", HOST_TENANT, ROLE_ADMIN,
      resource_get_route, "read a user",
      &users_resource, NULL },
    { "PATCH", "/api/v1/users/{id}", HOST_TENANT, ROLE_ADMIN,
      users_update, "change a user's name, role, password or suspension",
      &users_resource, NULL },
    { "DELETE", "/api/v1/users/{id}", HOST_TENANT, ROLE_ADMIN,
      users_delete, "delete a user",
      &users_resource, NULL },

    /* agents */
    { "GET", "/api/v1/agents", HOST_TENANT, ROLE_VIEWER,
      resource_list_route, "list agents, newest first",
      &agents_resource, NULL },
    { "POST", "/api/v1/agents", HOST_TENANT, ROLE_MEMBER,
      resource_create_route, "create an agent",
      &agents_resource, NULL },
    { "GET", "/api/v1/agents/{id}", HOST_TENANT, ROLE_VIEWER,
      resource_get_route, "read an agent",
      &agents_resource, NULL },
    { "PATCH", "/api/v1/agents/{id}", HOST_TENANT, ROLE_MEMBER,
      resource_update_route, "change an agent",
      &agents_resource, NULL },
    { "DELETE", "/api/v1/agents/{id}", HOST_TENANT, ROLE_MEMBER,
      agents_delete, "delete an agent",
      &agents_resource, &agents_delete_doc },

    /* llm providers: admins write; everyone reads (never credentials) */
    { "GET", "/api/v1/llm-providers", HOST_TENANT, ROLE_VIEWER,
      resource_list_route, "list LLM providers, newest first",
      &llm_providers_resource, NULL },
    { "POST", "/api/v1/llm-providers", HOST_TENANT, ROLE_ADMIN,
      llm_providers_create, "create an LLM provider",
      &llm_providers_resource, NULL },
    { "GET", "/api/v1/llm-providers/{id}", HOST_TENANT, ROLE_VIEWER,
      resource_get_route, "read an LLM provider",
      &llm_providers_resource, NULL },
    { "PATCH", "/api/v1/llm-providers/{id}", HOST_TENANT, ROLE_ADMIN,
      llm_providers_update, "change an LLM provider",
      &llm_providers_resource, NULL },
    { "DELETE", "/api/v1/llm-providers/{id}", HOST_TENANT, ROLE_ADMIN,
      llm_providers_delete, "delete an LLM provider",
      &llm_providers_resource, NULL },

    /* crews */
    { "GET", "/api/v1/crews", HOST_TENANT, ROLE_VIEWER,
      resource_list_route, "list crews, newest first",
      &crews_resource, NULL },
    { "POST", "/api/v1/crews", HOST_TENANT, ROLE_MEMBER,
      resource_create_route, "create a crew",
      &crews_resource, NULL },
    { "GET", "/api/v1/crews/{id}", HOST_TENANT, ROLE_VIEWER,
      resource_get_route, "read a crew",
      &crews_resource, NULL },
    { "PATCH", "/api/v1/crews/{id}", HOST_TENANT, ROLE_MEMBER,
      resource_update_route, "change a crew",
      &crews_resource, NULL },
    { "DELETE", "/api/v1/crews/{id}", HOST_TENANT, ROLE_MEMBER,
      resource_delete_route, "delete a crew",
      &crews_resource, NULL },
    { "GET", "/api/v1/crews/{id}/agents", HOST_TENANT, ROLE_VIEWER,
      crews_agents_get, "a crew's agents in position order",
      NULL, &crews_agents_get_doc },
    { "PUT", "/api/v1/crews/{id}/agents", HOST_TENANT, ROLE_MEMBER,
      crews_agents_put, "replace a crew's ordered agents",
      NULL, &crews_agents_put_doc },

    /* flows */
    { "GET", "/api/v1/flows", HOST_TENANT, ROLE_VIEWER,
      resource_list_route, "list flows, newest first",
      &flows_resource, NULL },
    { "POST", "/api/v1/flows", HOST_TENANT, ROLE_MEMBER,
      resource_create_route, "create a flow",
      &flows_resource, NULL },
    { "GET", "/api/v1/flows/{id}", HOST_TENANT, ROLE_VIEWER,
      resource_get_route, "read a flow",
      &flows_resource, NULL },
    { "PATCH", "/api/v1/flows/{id}", HOST_TENANT, ROLE_MEMBER,
      resource_update_route, "change a flow",
      &flows_resource, NULL },
    { "DELETE", "/api/v1/flows/{id}", HOST_TENANT, ROLE_MEMBER,
      resource_delete_route, "delete a flow",
      &flows_resource, NULL },

    /* executions */
    { "POST", "/api/v1/flows/{id}/executions", HOST_TENANT, ROLE_MEMBER,
      executions_create, "run a flow: a pending execution (202)",
      NULL, &executions_run_doc },
    { "GET", "/api/v1/executions", HOST_TENANT, ROLE_VIEWER,
      resource_list_route, "list executions, newest first",
      &executions_resource, NULL },
    { "GET", "/api/v1/executions/{id}", HOST_TENANT, ROLE_VIEWER,
      resource_get_route, "read an execution",
      &executions_resource, NULL },
    { "POST", "/api/v1/executions/{id}/cancel", HOST_TENANT, ROLE_MEMBER,
      executions_cancel, "cancel a pending or running execution",
      NULL, &executions_cancel_doc },

    /* tools */
    { "GET", "/api/v1/tools", HOST_TENANT, ROLE_VIEWER,
      resource_list_route, "list tools, newest first",
      &tools_resource, NULL },
    { "POST", "/api/v1/tools", HOST_TENANT, ROLE_MEMBER,
      resource_create_route, "create a tool",
      &tools_resource, NULL },
    { "GET", "/api/v1/tools/{id}", HOST_TENANT, ROLE_VIEWER,
      resource_get_route, "read a tool",
      &tools_resource, NULL },
    { "PATCH", "/api/v1/tools/{id}", HOST_TENANT, ROLE_MEMBER,
      resource_update_route, "change a tool",
      &tools_resource, NULL },
    { "DELETE", "/api/v1/tools/{id}", HOST_TENANT, ROLE_MEMBER,
      resource_delete_route, "delete a tool",
      &tools_resource, NULL },

    /* execution logs and chat */
    { "POST", "/api/v1/executions/{id}/logs", HOST_TENANT, ROLE_MEMBER,
      execution_logs_create,
      "append log entries to an execution: one, or an array of up to 1000",
      NULL, &execution_logs_create_doc },
    { "GET", "/api/v1/executions/{id}/logs", HOST_TENANT, ROLE_VIEWER,
      execution_logs_list, "an execution's log entries, newest first",
      NULL, &execution_logs_list_doc },
    { "POST", "/api/v1/conversations/{id}/messages", HOST_TENANT,
      ROLE_MEMBER, chat_messages_create,
      "add a message to a conversation (the id is the client's UUID)",
      NULL, &chat_messages_create_doc },
    { "GET", "/api/v1/conversations/{id}/messages", HOST_TENANT,
      ROLE_VIEWER, chat_messages_list,
      "a conversation's messages, oldest first",
      NULL, &chat_messages_list_doc },

    /* audit logs */
    { "GET", "/api/v1/audit-logs", HOST_TENANT, ROLE_ADMIN,
      audit_logs_list, "the tenant's audit trail, newest first",
      NULL, &audit_logs_list_doc },

    /* metrics: on nginx's loopback listener only (docs/metrics.md) */
    { "GET", "/metrics", HOST_METRICS, ROLE_NONE,
      metrics_get, "Prometheus metrics of every worker",
      NULL, NULL },

    /* this API, described */
    { "GET", "/api/v1/openapi.json", HOST_ANY, ROLE_NONE,
      openapi_get, "the OpenAPI 3.1 document of this API",
      NULL, &openapi_doc },
};

const size_t routes_count = sizeof(routes) / sizeof(routes[0]);

/*
 * Matches path against pattern segment by segment.  "{id}" takes one
 * segment that must be a UUID; it is stored canonical in ids.
 */
static bool
path_matches(const char *pattern, const char *path,
    char ids[REQUEST_PATH_PARAMS][UUID_TEXT_LEN + 1])
{
    int nids = 0;

    while (*pattern != '\0' && *path != '\0') {
        size_t plen, slen;

        if (*pattern != '/' || *path != '/')
            return false;
        pattern++;
        path++;
        plen = strcspn(pattern, "/");
        slen = strcspn(path, "/");

        if (plen == 4 && strncmp(pattern, "{id}", 4) == 0) {
            if (nids == REQUEST_PATH_PARAMS ||
                !uuid_parse(path, slen, ids[nids]))
                return false;
            nids++;
        } else if (plen != slen || strncmp(pattern, path, plen) != 0) {
            return false;
        }
        pattern += plen;
        path += slen;
    }
    return *pattern == '\0' && *path == '\0';
}

enum route_result
route_match(const char *method, const char *path, enum route_host host,
    const struct route **found,
    char ids[REQUEST_PATH_PARAMS][UUID_TEXT_LEN + 1],
    char *allow, size_t allow_size)
{
    bool path_seen = false;
    bool host_seen = false;
    size_t used = 0;

    *found = NULL;
    if (allow_size > 0)
        allow[0] = '\0';

    for (size_t i = 0; i < routes_count; i++) {
        const struct route *r = &routes[i];

        if (!path_matches(r->pattern, path, ids))
            continue;

        /* The metrics listener's routes do not exist anywhere else. */
        if (r->host == HOST_METRICS && host != HOST_METRICS)
            continue;
        path_seen = true;
        if ((r->host & host) == 0)
            continue;
        host_seen = true;

        if (strcmp(r->method, method) == 0) {
            *found = r;
            return ROUTE_FOUND;
        }
        if (used < allow_size) {
            int n = snprintf(allow + used, allow_size - used, "%s%s",
                used > 0 ? ", " : "", r->method);

            if (n > 0)
                used += (size_t)n;
        }
    }

    if (host_seen)
        return ROUTE_BAD_METHOD;
    return path_seen ? ROUTE_WRONG_HOST : ROUTE_NOT_FOUND;
}
