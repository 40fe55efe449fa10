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

/* tenants.c: the apex host's sign-up */
int tenants_create(struct request *req);

/* auth.c */
int auth_login(struct request *req);

/* users.c */
int users_me(struct request *req);

/* agents.c */
int agents_list(struct request *req);
int agents_create(struct request *req);
int agents_get(struct request *req);
int agents_update(struct request *req);
int agents_delete(struct request *req);

/* llm_providers.c */

/* crews.c */

/* flows.c */

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
