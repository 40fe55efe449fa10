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
int llm_providers_list(struct request *req);
int llm_providers_create(struct request *req);
int llm_providers_get(struct request *req);
int llm_providers_update(struct request *req);
int llm_providers_delete(struct request *req);

/* crews.c */

/* flows.c */

/* executions.c */

/* tools.c */

#endif
