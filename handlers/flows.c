/*
 * Flows: /api/v1/flows and /api/v1/flows/{id}.
 *
 * A flow's definition is a graph of crews and agents; lib/flowdef.h
 * holds its rules and checks its shape.  What only the database knows,
 * whether each crew and agent it names exists in this tenant, is asked
 * here in one query for all of them.  The definition is replaced as a
 * whole by a PATCH that carries it.
 *
 * Runs inside the tenant's transaction with the search path set to its
 * schema, so "flows" here is always the calling tenant's table.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "flowdef.h"
#include "handlers.h"
#include "log.h"
#include "resource.h"

/* The select list; the order is the column numbers in write_flow. */
#define FLOW_COLUMNS \
    "id, tenant_id, name, description, definition, is_active, " \
    "created_at, updated_at, " SQL_ETAG
#define FLOW_NCOLUMNS 9

/* The ordinals (from 1) of the references ($1 kinds, $2 ids) not here. */
static const char SQL_MISSING_REFS[] =
    "SELECT r.n FROM unnest($1::text[], $2::uuid[]) "
    "WITH ORDINALITY AS r(kind, id, n) "
    "WHERE NOT CASE r.kind "
    "WHEN 'crew' THEN EXISTS (SELECT 1 FROM crews WHERE crews.id = r.id) "
    "ELSE EXISTS (SELECT 1 FROM agents WHERE agents.id = r.id) END "
    "ORDER BY r.n";

enum { FLOW_DEFINITION = 2 };   /* its index in flow_fields */

static const struct field_spec flow_fields[] = {
    { "name", FIELD_STRING, FIELD_REQUIRED, 255, 0, 0, NULL },
    { "description", FIELD_TEXT, FIELD_NULLABLE, 65535, 0, 0, NULL },
    { "definition", FIELD_OBJECT, FIELD_REQUIRED, 0, 0, 0, NULL },
    { "is_active", FIELD_BOOL, 0, 0, 0, 0, NULL },
};

static const char *const flow_field_columns[] = {
    "name", "description", "definition", "is_active",
};

static const struct list_filter flow_filters[] = {
    { "is_active", "is_active", FIELD_BOOL, NULL },
};

static void
write_flow(struct request *req, const PGresult *res, int row)
{
    struct json_writer *w = &req->json;

    jw_object_open(w);
    jw_kv_string(w, "id", db_value(res, row, 0));
    jw_kv_string(w, "tenant_id", db_value(res, row, 1));
    jw_kv_string(w, "name", db_value(res, row, 2));
    jw_kv_string(w, "description", db_value(res, row, 3));
    jw_kv_raw(w, "definition", db_value(res, row, 4));
    jw_kv_bool(w, "is_active", db_bool(res, row, 5));
    jw_kv_string(w, "created_at", db_timestamp(req->arena, res, row, 6));
    jw_kv_string(w, "updated_at", db_timestamp(req->arena, res, row, 7));
    jw_object_close(w);
}

/* Reports each crew or agent the definition names that is not here. */
static int
check_refs(struct request *req, const struct flowdef_refs *refs)
{
    const char **kinds, **ids;
    const char *params[2];
    PGresult *res;

    if (refs->n == 0)
        return 0;
    kinds = arena_alloc(req->arena, refs->n * sizeof(*kinds));
    ids = arena_alloc(req->arena, refs->n * sizeof(*ids));
    for (size_t i = 0; i < refs->n; i++) {
        kinds[i] = refs->items[i].kind == FLOWDEF_REF_CREW ? "crew"
                                                           : "agent";
        ids[i] = refs->items[i].id;
    }
    params[0] = sql_array_literal(req->arena, kinds, refs->n);
    params[1] = sql_array_literal(req->arena, ids, refs->n);
    res = db_exec(req->db, req->arena, &req->err, SQL_MISSING_REFS, 2,
        params);
    if (res == NULL)
        return -1;

    for (int row = 0; row < PQntuples(res); row++) {
        size_t k = (size_t)strtoul(db_value(res, row, 0), NULL, 10) - 1;
        const struct flowdef_ref *ref = &refs->items[k];

        error_field(&req->err, ref->pointer, ref->kind == FLOWDEF_REF_CREW
            ? "no such crew" : "no such agent");
    }
    return 0;
}

static void
put_json_object(void *object)
{
    json_object_put(object);
}

static int
validate_flow(struct request *req, struct field_value *values,
    bool creating)
{
    struct field_value *definition = &values[FLOW_DEFINITION];
    struct json_object *parsed = NULL;
    struct crewd_error parse_err;
    struct flowdef_refs refs;

    (void)creating;
    if (!definition->present || definition->text == NULL)
        return 0;

    /*
     * fields_read kept the definition as the text to store; reading it
     * back gives the same object the client sent, in the same order.
     */
    error_clear(&parse_err);
    if (json_parse(definition->text, strlen(definition->text), &parsed,
            &parse_err) < 0) {
        log_error("a stored definition does not parse: %s",
            parse_err.detail);
        return request_fail(req, 500, "internal error");
    }
    arena_defer(req->arena, put_json_object, parsed);

    flowdef_check(req->arena, parsed, "/definition", &refs, &req->err);
    if (check_refs(req, &refs) < 0)
        return -1;
    if (req->err.status != 0)
        return -1;

    /* The same text, with the crew and agent ids made canonical. */
    definition->text = arena_strdup(req->arena,
        json_object_to_json_string_ext(parsed,
            JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    return 0;
}

/* A flow that executions refer to stays: their history needs it. */
static void
explain_flow_refusal(struct request *req)
{
    if (strcmp(req->err.sqlstate, "23503") == 0 &&
        strcmp(req->method, "DELETE") == 0)
        request_fail(req, 409, "the flow has executions and cannot be "
            "deleted; set is_active to false instead");
}

const struct resource flows_resource = {
    .table = "flows",
    .collection = "flows",
    .noun = "flow",
    .columns = FLOW_COLUMNS,
    .ncolumns = FLOW_NCOLUMNS,
    .created_at_column = 6,
    .fields = flow_fields,
    .field_columns = flow_field_columns,
    .nfields = sizeof(flow_fields) / sizeof(flow_fields[0]),
    .filters = flow_filters,
    .nfilters = sizeof(flow_filters) / sizeof(flow_filters[0]),
    .write = write_flow,
    .validate = validate_flow,
    .explain = explain_flow_refusal,
};
