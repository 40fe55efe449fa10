/*
 * Every handler of the route table (fcgi/routes.c).  One file per
 * resource: validation, SQL through lib/db.h, and the response.
 */
#ifndef CREWD_HANDLERS_H
#define CREWD_HANDLERS_H

#include "request.h"

/* health.c */
int health_live(struct request *req);
int health_ready(struct request *req);

/* tenants.c: sign-up on the apex host, and a tenant's own record */
int tenants_create(struct request *req);
int tenants_self(struct request *req);

/* auth.c */
int auth_login(struct request *req);

/* users.c */
int users_list(struct request *req);
int users_create(struct request *req);
int users_get(struct request *req);
int users_update(struct request *req);
int users_delete(struct request *req);
int users_me(struct request *req);

/* agents.c */
int agents_list(struct request *req);
int agents_create(struct request *req);
int agents_get(struct request *req);
int agents_update(struct request *req);
int agents_delete(struct request *req);

/* llm_providers.c */
int llm_providers_list(struct request *req);
int llm_providers_create(struct request *req);
int llm_providers_get(struct request *req);
int llm_providers_update(struct request *req);
int llm_providers_delete(struct request *req);

/* crews.c */
int crews_list(struct request *req);
int crews_create(struct request *req);
int crews_get(struct request *req);
int crews_update(struct request *req);
int crews_delete(struct request *req);
int crews_agents_get(struct request *req);
int crews_agents_put(struct request *req);

/* flows.c */
int flows_list(struct request *req);
int flows_create(struct request *req);
int flows_get(struct request *req);
int flows_update(struct request *req);
int flows_delete(struct request *req);

/* executions.c */
int executions_create(struct request *req);
int executions_list(struct request *req);
int executions_get(struct request *req);
int executions_cancel(struct request *req);

/* tools.c */
int tools_list(struct request *req);
int tools_create(struct request *req);
int tools_get(struct request *req);
int tools_update(struct request *req);
int tools_delete(struct request *req);

#endif
