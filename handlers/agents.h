/*
 * The representation of an agent, for the resources that show agents of
 * their own (a crew's members).
 */
#ifndef CREWD_HANDLERS_AGENTS_H
#define CREWD_HANDLERS_AGENTS_H

#include "common.h"

/*
 * The select list agent_write reads, unqualified: a query that joins
 * agents with another table must not give that table any of these
 * column names.  Columns after the last one are the caller's.
 */
#define AGENT_COLUMNS \
    "id, tenant_id, name, role, goal, backstory, llm_provider_id, " \
    "allow_delegation, \"verbose\", config, created_at, updated_at, " \
    SQL_ETAG
#define AGENT_NCOLUMNS 13

/* Writes the agent of row as a JSON object. */
void agent_write(struct request *req, const PGresult *res, int row);

#endif
