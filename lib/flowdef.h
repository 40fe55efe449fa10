/*
 * The definition of a flow: a directed acyclic graph of nodes, each of
 * which runs one crew or one agent, and edges that say which node runs
 * after which.
 *
 *   {"nodes": [{"id": "research", "type": "crew", "crew_id": "<uuid>"},
 *              {"id": "write", "type": "agent", "agent_id": "<uuid>",
 *               "config": {...}}],
 *    "edges": [{"from": "research", "to": "write"}]}
 *
 * The rules:
 *   - the definition has exactly the members "nodes" and "edges", both
 *     arrays (an empty graph is allowed);
 *   - a node is an object with a string "id" unique among the nodes, a
 *     string "type", exactly one of "crew_id" and "agent_id" (a UUID),
 *     and optionally "config" (an object for the node's runner);
 *   - an edge is an object with "from" and "to", the ids of two nodes;
 *     an edge given twice is a problem;
 *   - the edges form no cycle (a node that leads to itself included);
 *   - ids and types are 1 to FLOWDEF_NAME_MAX characters without
 *     control characters;
 *   - any other member of the definition, a node or an edge is a
 *     problem, so that a member this version ignores is never silently
 *     dropped;
 *   - at most FLOWDEF_MAX_NODES nodes and FLOWDEF_MAX_EDGES edges: the
 *     checks run in O((nodes + edges) log nodes), and a larger graph is
 *     refused before any of them.
 *
 * flowdef_check() reports every problem it finds, each with the JSON
 * pointer to its value.  Whether a crew or agent exists is a question
 * for the database, so it hands the references back instead of
 * answering it.
 */
#ifndef CREWD_FLOWDEF_H
#define CREWD_FLOWDEF_H

#include <stddef.h>

#include <json-c/json.h>

#include "arena.h"
#include "error.h"

#define FLOWDEF_MAX_NODES 1000
#define FLOWDEF_MAX_EDGES 5000
#define FLOWDEF_NAME_MAX 64

enum flowdef_ref_kind {
    FLOWDEF_REF_CREW,
    FLOWDEF_REF_AGENT
};

/* A node's crew_id or agent_id, to be looked up in the tenant. */
struct flowdef_ref {
    enum flowdef_ref_kind kind;
    const char *id;         /* canonical UUID */
    const char *pointer;    /* e.g. "/definition/nodes/3/crew_id" */
};

struct flowdef_refs {
    struct flowdef_ref *items;
    size_t n;
};

/*
 * Checks definition against the rules above.  Problems are added to err
 * as field errors whose pointers start with base ("/definition" when
 * the definition is a member of a request body, "" when it is the
 * body).  refs receives the well-formed crew and agent references of
 * the nodes, in document order, and each of them is rewritten in
 * definition in its canonical form.  Everything is allocated from a.
 * Returns 0 when no problem was found, -1 otherwise.
 */
int flowdef_check(struct arena *a, struct json_object *definition,
    const char *base, struct flowdef_refs *refs, struct crewd_error *err);

#endif
