/*
 * Every handler of the route table (fcgi/routes.c).  One file per
 * resource: validation, SQL through lib/db.h, and the response.
 */
#ifndef CREWD_HANDLERS_H
#define CREWD_HANDLERS_H

#include "buf.h"
#include "request.h"

struct resource;
struct route_doc;

/* Each resource's description, for its handlers and the route table. */
extern const struct resource agents_resource;
extern const struct resource crews_resource;
extern const struct resource executions_resource;
extern const struct resource flows_resource;
extern const struct resource llm_providers_resource;
extern const struct resource tools_resource;
extern const struct resource users_resource;

/* route_docs.c: how the OpenAPI document shows the other routes. */
extern const struct route_doc health_live_doc;
extern const struct route_doc health_ready_doc;
extern const struct route_doc tenants_create_doc;
extern const struct route_doc tenants_self_doc;
extern const struct route_doc tenants_update_doc;
extern const struct route_doc auth_login_doc;
extern const struct route_doc users_me_doc;
extern const struct route_doc crews_agents_get_doc;
extern const struct route_doc crews_agents_put_doc;
extern const struct route_doc executions_run_doc;
extern const struct route_doc executions_cancel_doc;
extern const struct route_doc agents_delete_doc;
extern const struct route_doc openapi_doc;
/* execution logs and chat */
extern const struct route_doc execution_logs_create_doc;
extern const struct route_doc execution_logs_list_doc;
extern const struct route_doc chat_messages_create_doc;
extern const struct route_doc chat_messages_list_doc;

extern const struct route_doc audit_logs_list_doc;

/* openapi.c */
int openapi_get(struct request *req);
/* The whole document for hosts under base_domain, appended to out. */
void openapi_write(struct buf *out, const char *base_domain);

/* health.c */
int health_live(struct request *req);
int health_ready(struct request *req);

/* tenants.c: sign-up on the apex host, and a tenant's own record */
int tenants_create(struct request *req);
int tenants_self(struct request *req);
int tenants_update(struct request *req);

/* auth.c */
int auth_login(struct request *req);

/* users.c */
int users_create(struct request *req);
int users_update(struct request *req);
int users_delete(struct request *req);
int users_me(struct request *req);

/* agents.c */
int agents_delete(struct request *req);

/* llm_providers.c */
int llm_providers_create(struct request *req);
int llm_providers_update(struct request *req);
int llm_providers_delete(struct request *req);

/* crews.c */
int crews_agents_get(struct request *req);
int crews_agents_put(struct request *req);

/* flows.c */

/* executions.c */
int executions_create(struct request *req);
int executions_cancel(struct request *req);

/* tools.c */

/* execution logs and chat: execution_logs.c, chat_messages.c */
int execution_logs_create(struct request *req);
int execution_logs_list(struct request *req);
int chat_messages_create(struct request *req);
int chat_messages_list(struct request *req);

/* audit logs: audit_logs.c */
int audit_logs_list(struct request *req);
/*
 * After a read (GET) succeeded, when the tenant audits reads: its entry.
 * For the worker, not the route table.
 */
int audit_read(struct request *req);

/* metrics.c: GET /metrics on the loopback listener */
int metrics_get(struct request *req);

#endif
