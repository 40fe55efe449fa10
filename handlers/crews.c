/*
 * Crews: /api/v1/crews, /api/v1/crews/{id}, and the crew's ordered
 * membership, /api/v1/crews/{id}/agents.
 *
 * The membership is read and replaced as a whole.  Positions count from
 * 0 with no gap, so a crew of n agents holds exactly the positions
 * 0..n-1 and the order is never ambiguous.  The crew's ETag stands for
 * the membership too: replacing it moves the crew's updated_at (and so
 * does a forced delete of a member agent, in agents.c), and GET .../agents
 * carries the crew's ETag for a PUT's If-Match.
 *
 * Runs inside the tenant's transaction with the search path set to its
 * schema, so "crews" here is always the calling tenant's table.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "agents.h"
#include "audit_logs.h"
#include "handlers.h"
#include "jsonptr.h"
#include "resource.h"

/* A crew is a team, not a directory: the list is never paginated. */
#define CREW_MAX_AGENTS 1000

/* The select list; the order is the column numbers in write_crew. */
#define CREW_COLUMNS \
    "id, tenant_id, name, description, process, \"verbose\", config, " \
    "created_at, updated_at, " SQL_ETAG
#define CREW_NCOLUMNS 10

/* The members in order; the agent's columns first, as agent_write wants. */
static const char SQL_MEMBERS[] =
    "SELECT " AGENT_COLUMNS ", position FROM crew_agents "
    "JOIN agents ON agents.id = crew_agents.agent_id "
    "WHERE crew_id = $1 ORDER BY position";

/* The membership alone, for the audit trail. */
static const char SQL_MEMBER_IDS[] =
    "SELECT agent_id, position FROM crew_agents WHERE crew_id = $1 "
    "ORDER BY position";

/* The ordinals (from 1) of the ids in $1 that name no agent here. */
static const char SQL_MISSING_AGENTS[] =
    "SELECT m.n FROM unnest($1::uuid[]) WITH ORDINALITY AS m(agent_id, n) "
    "WHERE NOT EXISTS (SELECT 1 FROM agents WHERE agents.id = m.agent_id) "
    "ORDER BY m.n";

static const char SQL_CLEAR_MEMBERS[] =
    "DELETE FROM crew_agents WHERE crew_id = $1";

static const char SQL_ADD_MEMBERS[] =
    "INSERT INTO crew_agents (crew_id, agent_id, position) "
    "SELECT $1, m.agent_id, m.position "
    "FROM unnest($2::uuid[], $3::int[]) AS m(agent_id, position)";

static const char SQL_TOUCH_CREW[] =
    "UPDATE crews SET updated_at = greatest(now(), updated_at + "
    "interval '1 microsecond') WHERE id = $1 RETURNING " SQL_ETAG;

static const char *const crew_processes[] = {
    "sequential", "hierarchical", NULL
};

static const struct field_spec crew_fields[] = {
    { "name", FIELD_STRING, FIELD_REQUIRED, 255, 0, 0, NULL },
    { "description", FIELD_TEXT, FIELD_NULLABLE, 65535, 0, 0, NULL },
    { "process", FIELD_ENUM, 0, 0, 0, 0, crew_processes },
    { "verbose", FIELD_BOOL, 0, 0, 0, 0, NULL },
    { "config", FIELD_OBJECT, 0, 0, 0, 0, NULL },
};

static const char *const crew_field_columns[] = {
    "name", "description", "process", "\"verbose\"", "config",
};

static const struct list_filter crew_filters[] = {
    { "process", "process", FIELD_ENUM, crew_processes },
};

static void
write_crew(struct request *req, const PGresult *res, int row)
{
    struct json_writer *w = &req->json;

    jw_object_open(w);
    jw_kv_string(w, "id", db_value(res, row, 0));
    jw_kv_string(w, "tenant_id", db_value(res, row, 1));
    jw_kv_string(w, "name", db_value(res, row, 2));
    jw_kv_string(w, "description", db_value(res, row, 3));
    jw_kv_string(w, "process", db_value(res, row, 4));
    jw_kv_bool(w, "verbose", db_bool(res, row, 5));
    jw_kv_raw(w, "config", db_value(res, row, 6));
    jw_kv_string(w, "created_at", db_timestamp(req->arena, res, row, 7));
    jw_kv_string(w, "updated_at", db_timestamp(req->arena, res, row, 8));
    jw_object_close(w);
}

const struct resource crews_resource = {
    .table = "crews",
    .collection = "crews",
    .noun = "crew",
    .columns = CREW_COLUMNS,
    .ncolumns = CREW_NCOLUMNS,
    .created_at_column = 7,
    .fields = crew_fields,
    .field_columns = crew_field_columns,
    .nfields = sizeof(crew_fields) / sizeof(crew_fields[0]),
    .filters = crew_filters,
    .nfilters = sizeof(crew_filters) / sizeof(crew_filters[0]),
    .write = write_crew,
};

/*
 * The membership as a list, {"items": [{"agent_id", "position",
 * "agent"}], "next_cursor": null}, with the crew's ETag (version).
 */
static int
respond_members(struct request *req, const char *version)
{
    const char *params[1] = { req->path_ids[0] };
    struct json_writer *w;
    PGresult *res;

    res = db_exec(req->db, req->arena, &req->err, SQL_MEMBERS, 1, params);
    if (res == NULL)
        return -1;

    w = response_json(req, 200);
    jw_object_open(w);
    jw_key(w, "items");
    jw_array_open(w);
    for (int i = 0; i < PQntuples(res); i++) {
        jw_object_open(w);
        jw_kv_string(w, "agent_id", db_value(res, i, 0));
        jw_kv_raw(w, "position", db_value(res, i, AGENT_NCOLUMNS));
        jw_key(w, "agent");
        agent_write(req, res, i);
        jw_object_close(w);
    }
    jw_array_close(w);
    jw_key(w, "next_cursor");
    jw_null(w);
    jw_object_close(w);
    response_etag(req, version);
    return 0;
}

int
crews_agents_get(struct request *req)
{
    PGresult *crew;

    /*
     * The crew is read before its members: should a PUT commit in
     * between, the ETag is the older one, and a PUT made with it fails
     * with 412 instead of overwriting what its client never saw.
     */
    if (request_query_check(req, NULL) < 0)
        return -1;
    crew = resource_fetch(req, &crews_resource, req->path_ids[0]);
    if (crew == NULL)
        return -1;
    return respond_members(req, db_value(crew, 0, CREW_NCOLUMNS - 1));
}

/* A PUT body as read: element i puts agent_ids[i] at positions[i]. */
struct membership {
    size_t n;
    const char **agent_ids;     /* canonical; NULL where invalid */
    long *positions;            /* -1 where invalid */
    long *holder;               /* by position: the element holding it */
};

/* Reads element i's position: an integer from 0 to n - 1, not taken. */
static void
read_position(struct request *req, struct membership *m, size_t i,
    struct json_object *v, const char *pointer)
{
    int64_t position;

    if (json_object_get_type(v) != json_type_int) {
        error_field(&req->err, pointer, "must be an integer");
        return;
    }
    position = json_object_get_int64(v);
    if (position < 0 || (uint64_t)position >= m->n) {
        error_field(&req->err, pointer, "must be from 0 to %zu: positions "
            "count from 0 with no gap", m->n - 1);
        return;
    }
    if (m->holder[position] >= 0) {
        error_field(&req->err, pointer,
            "duplicate position: also the position of /%ld",
            m->holder[position]);
        return;
    }
    m->holder[position] = (long)i;
    m->positions[i] = (long)position;
}

/* Reads element i's agent_id: a UUID no earlier element has. */
static void
read_agent_id(struct request *req, struct membership *m, size_t i,
    struct json_object *v, const char *pointer)
{
    char id[UUID_TEXT_LEN + 1];

    if (json_object_get_type(v) != json_type_string ||
        !uuid_parse(json_object_get_string(v),
            (size_t)json_object_get_string_len(v), id)) {
        error_field(&req->err, pointer, "must be a UUID");
        return;
    }
    /* At most CREW_MAX_AGENTS squared over two comparisons. */
    for (size_t j = 0; j < i; j++)
        if (m->agent_ids[j] != NULL && strcmp(m->agent_ids[j], id) == 0) {
            error_field(&req->err, pointer,
                "duplicate agent: also the agent of /%zu", j);
            return;
        }
    m->agent_ids[i] = arena_strdup(req->arena, id);
}

static void
read_member(struct request *req, struct membership *m, size_t i,
    struct json_object *member)
{
    const char *pointer = jsonptr_index(req->arena, "", i);
    bool has_agent_id = false, has_position = false;

    if (json_object_get_type(member) != json_type_object) {
        error_field(&req->err, pointer, "must be an object");
        return;
    }
    json_object_object_foreach(member, key, v) {
        const char *field = jsonptr_key(req->arena, pointer, key);

        if (strcmp(key, "agent_id") == 0) {
            has_agent_id = true;
            read_agent_id(req, m, i, v, field);
        } else if (strcmp(key, "position") == 0) {
            has_position = true;
            read_position(req, m, i, v, field);
        } else {
            error_field(&req->err, field, "is not a known field");
        }
    }
    if (!has_agent_id)
        error_field(&req->err, jsonptr_key(req->arena, pointer, "agent_id"),
            "is required");
    if (!has_position)
        error_field(&req->err, jsonptr_key(req->arena, pointer, "position"),
            "is required");
}

/* Reports each well-formed agent_id that names no agent of this tenant. */
static int
check_agents_exist(struct request *req, const struct membership *m)
{
    const char **ids = arena_alloc(req->arena, (m->n + 1) * sizeof(*ids));
    size_t *element = arena_alloc(req->arena, (m->n + 1) * sizeof(*element));
    const char *params[1];
    PGresult *res;
    size_t n = 0;

    for (size_t i = 0; i < m->n; i++)
        if (m->agent_ids[i] != NULL) {
            element[n] = i;
            ids[n++] = m->agent_ids[i];
        }
    if (n == 0)
        return 0;

    params[0] = sql_array_literal(req->arena, ids, n);
    res = db_exec(req->db, req->arena, &req->err, SQL_MISSING_AGENTS, 1,
        params);
    if (res == NULL)
        return -1;
    for (int row = 0; row < PQntuples(res); row++) {
        size_t k = (size_t)strtoul(db_value(res, row, 0), NULL, 10) - 1;

        error_field(&req->err, arena_printf(req->arena, "/%zu/agent_id",
            element[k]), "no such agent");
    }
    return 0;
}

/* Reads and checks the whole body; -1 with every problem in req->err. */
static int
read_membership(struct request *req, struct json_object *list,
    struct membership *m)
{
    m->n = json_object_array_length(list);
    if (m->n > CREW_MAX_AGENTS) {
        error_field(&req->err, "", "a crew has at most %d agents",
            CREW_MAX_AGENTS);
        return -1;
    }
    m->agent_ids = arena_zalloc(req->arena,
        (m->n + 1) * sizeof(*m->agent_ids));
    m->positions = arena_alloc(req->arena,
        (m->n + 1) * sizeof(*m->positions));
    m->holder = arena_alloc(req->arena, (m->n + 1) * sizeof(*m->holder));
    for (size_t i = 0; i < m->n; i++) {
        m->positions[i] = -1;
        m->holder[i] = -1;
    }

    for (size_t i = 0; i < m->n; i++)
        read_member(req, m, i, json_object_array_get_idx(list, i));
    if (check_agents_exist(req, m) < 0)
        return -1;
    return req->err.status != 0 ? -1 : 0;
}

static void
put_json(void *object)
{
    json_object_put(object);
}

/*
 * The crew's membership as the audit trail shows it, {"agents":
 * [{"agent_id", "position"}, ...]}, released with the arena.
 */
static struct json_object *
membership_json(struct request *req)
{
    const char *params[1] = { req->path_ids[0] };
    struct json_object *agents, *out;
    PGresult *res;

    res = db_exec(req->db, req->arena, &req->err, SQL_MEMBER_IDS, 1,
        params);
    if (res == NULL)
        return NULL;

    agents = json_object_new_array();
    for (int i = 0; i < PQntuples(res); i++) {
        struct json_object *member = json_object_new_object();

        json_object_object_add(member, "agent_id",
            json_object_new_string(db_value(res, i, 0)));
        json_object_object_add(member, "position",
            json_object_new_int64(strtoll(db_value(res, i, 1), NULL, 10)));
        json_object_array_add(agents, member);
    }
    out = json_object_new_object();
    json_object_object_add(out, "agents", agents);
    arena_defer(req->arena, put_json, out);
    return out;
}

/*
 * PUT /crews/{id}/agents: the body, [{"agent_id", "position"}, ...],
 * replaces the membership (an empty array empties the crew).  The crew
 * is locked and checked against If-Match first; the old rows are
 * deleted and the new ones inserted in the request's one transaction.
 * The audit trail records it as an update of the crew whose before and
 * after are the membership.
 */
int
crews_agents_put(struct request *req)
{
    struct json_object *list, *before, *after;
    struct membership m;
    const char **positions;
    const char *params[3];
    PGresult *res;

    if (request_query_check(req, NULL) < 0 ||
        request_json_array(req, &list) < 0 ||
        resource_lock(req, &crews_resource) < 0 ||
        read_membership(req, list, &m) < 0)
        return -1;
    before = membership_json(req);
    if (before == NULL)
        return -1;

    positions = arena_alloc(req->arena, (m.n + 1) * sizeof(*positions));
    for (size_t i = 0; i < m.n; i++)
        positions[i] = arena_printf(req->arena, "%ld", m.positions[i]);

    params[0] = req->path_ids[0];
    params[1] = sql_array_literal(req->arena, m.agent_ids, m.n);
    params[2] = sql_array_literal(req->arena, positions, m.n);
    if (db_run(req->db, &req->err, SQL_CLEAR_MEMBERS, 1, params) < 0)
        return -1;
    if (m.n > 0 &&
        db_run(req->db, &req->err, SQL_ADD_MEMBERS, 3, params) < 0) {
        /* An agent checked above was deleted before our insert. */
        if (strcmp(req->err.sqlstate, "23503") == 0)
            return request_fail(req, 409, "an agent of the new membership "
                "was deleted meanwhile; read the agents and try again");
        return -1;
    }

    res = db_exec(req->db, req->arena, &req->err, SQL_TOUCH_CREW, 1,
        params);
    if (res == NULL)
        return -1;

    after = membership_json(req);
    if (after == NULL ||
        audit_record(req, AUDIT_UPDATE, "crew", req->path_ids[0], before,
            after) < 0)
        return -1;
    return respond_members(req, db_value(res, 0, 0));
}
