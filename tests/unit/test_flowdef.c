#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "error.h"
#include "flowdef.h"
#include "json.h"
#include "unit.h"

#define CREW_A "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
#define AGENT_B "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

/* One check of one definition, with what it reported. */
struct run {
    struct arena *arena;
    struct json_object *definition;
    struct crewd_error err;
    struct flowdef_refs refs;
    int result;
};

static void
run_check_at(struct run *r, const char *base, const char *json)
{
    memset(r, 0, sizeof(*r));
    r->arena = arena_new(4096);
    error_clear(&r->err);
    if (json_parse(json, strlen(json), &r->definition, &r->err) != 0) {
        CU_FAIL_FATAL("the test's JSON does not parse");
    }
    r->result = flowdef_check(r->arena, r->definition, base, &r->refs,
        &r->err);
}

static void
run_check(struct run *r, const char *json)
{
    run_check_at(r, "/definition", json);
}

static void
run_done(struct run *r)
{
    json_object_put(r->definition);
    arena_free(r->arena);
}

/* The message of the problem at pointer, or NULL. */
static const char *
problem_at(const struct run *r, const char *pointer)
{
    for (int i = 0; i < r->err.nfields; i++)
        if (strcmp(r->err.fields[i].field, pointer) == 0)
            return r->err.fields[i].message;
    return NULL;
}

/* Exactly these problems, in this order: pointer, message, ..., NULL. */
static void
expect_problems(const struct run *r, ...)
{
    va_list ap;
    int i = 0;
    const char *pointer;

    va_start(ap, r);
    while ((pointer = va_arg(ap, const char *)) != NULL) {
        const char *message = va_arg(ap, const char *);

        CU_ASSERT_FATAL(i < r->err.nfields);
        CU_ASSERT_STRING_EQUAL(r->err.fields[i].field, pointer);
        CU_ASSERT_STRING_EQUAL(r->err.fields[i].message, message);
        i++;
    }
    va_end(ap);
    CU_ASSERT_EQUAL(r->err.nfields, i);
    CU_ASSERT_EQUAL(r->err.fields_dropped, 0);
    CU_ASSERT_EQUAL(r->result, i > 0 ? -1 : 0);
    CU_ASSERT_EQUAL(r->err.status, i > 0 ? 422 : 0);
}

static void
test_valid_graph_passes_and_hands_back_references(void)
{
    struct run r;

    run_check(&r,
        "{\"nodes\": ["
        "{\"id\": \"research\", \"type\": \"crew\", \"crew_id\": \""
        CREW_A "\"},"
        "{\"id\": \"write\", \"type\": \"agent\", \"agent_id\": "
        "\"0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D\", \"config\": {\"k\": 1}},"
        "{\"id\": \"review\", \"type\": \"crew\", \"crew_id\": \""
        CREW_A "\"}],"
        " \"edges\": [{\"from\": \"research\", \"to\": \"write\"},"
        "{\"from\": \"write\", \"to\": \"review\"},"
        "{\"from\": \"research\", \"to\": \"review\"}]}");
    expect_problems(&r, NULL);

    CU_ASSERT_EQUAL_FATAL(r.refs.n, 3);
    CU_ASSERT_EQUAL(r.refs.items[0].kind, FLOWDEF_REF_CREW);
    CU_ASSERT_STRING_EQUAL(r.refs.items[0].id, CREW_A);
    CU_ASSERT_STRING_EQUAL(r.refs.items[0].pointer,
        "/definition/nodes/0/crew_id");
    CU_ASSERT_EQUAL(r.refs.items[1].kind, FLOWDEF_REF_AGENT);
    CU_ASSERT_STRING_EQUAL(r.refs.items[1].id, AGENT_B);
    CU_ASSERT_STRING_EQUAL(r.refs.items[1].pointer,
        "/definition/nodes/1/agent_id");
    CU_ASSERT_STRING_EQUAL(r.refs.items[2].pointer,
        "/definition/nodes/2/crew_id");

    /* The definition now holds the canonical id, in the same place. */
    {
        struct json_object *nodes, *node, *id;
        const char *keys[4] = { NULL };
        size_t n = 0;

        CU_ASSERT_FATAL(json_object_object_get_ex(r.definition, "nodes",
            &nodes));
        node = json_object_array_get_idx(nodes, 1);
        CU_ASSERT_FATAL(json_object_object_get_ex(node, "agent_id", &id));
        CU_ASSERT_STRING_EQUAL(json_object_get_string(id), AGENT_B);
        json_object_object_foreach(node, key, v) {
            (void)v;
            if (n < 4)
                keys[n] = key;
            n++;
        }
        CU_ASSERT_EQUAL(n, 4);
        CU_ASSERT_STRING_EQUAL(keys[2], "agent_id");
    }
    run_done(&r);
}

static void
test_empty_graph_passes(void)
{
    struct run r;

    run_check(&r, "{\"nodes\": [], \"edges\": []}");
    expect_problems(&r, NULL);
    CU_ASSERT_EQUAL(r.refs.n, 0);
    run_done(&r);
}

static void
test_definition_must_be_an_object(void)
{
    struct run r;

    run_check(&r, "[]");
    expect_problems(&r, "/definition", "must be an object", NULL);
    run_done(&r);
}

static void
test_nodes_and_edges_are_required_arrays(void)
{
    struct run r;

    run_check(&r, "{}");
    expect_problems(&r,
        "/definition/nodes", "is required",
        "/definition/edges", "is required", NULL);
    run_done(&r);

    run_check(&r, "{\"nodes\": {}, \"edges\": \"a->b\"}");
    expect_problems(&r,
        "/definition/nodes", "must be an array",
        "/definition/edges", "must be an array", NULL);
    run_done(&r);
}

static void
test_unknown_members_are_problems_with_escaped_pointers(void)
{
    struct run r;

    run_check(&r,
        "{\"nodes\": [{\"id\": \"a\", \"type\": \"t\", \"crew_id\": \""
        CREW_A "\", \"x/y\": 1}],"
        " \"edges\": [{\"from\": \"a\", \"to\": \"a~b\", \"when\": 1}],"
        " \"layout\": {}}");
    expect_problems(&r,
        "/definition/layout", "is not a known field",
        "/definition/nodes/0/x~1y", "is not a known field",
        "/definition/edges/0/to", "no such node",
        "/definition/edges/0/when", "is not a known field", NULL);
    run_done(&r);
}

static void
test_node_must_be_an_object_with_id_and_type(void)
{
    struct run r;

    run_check(&r,
        "{\"nodes\": [\"a\", {\"crew_id\": \"" CREW_A "\"}], "
        "\"edges\": []}");
    expect_problems(&r,
        "/definition/nodes/0", "must be an object",
        "/definition/nodes/1/id", "is required",
        "/definition/nodes/1/type", "is required", NULL);
    CU_ASSERT_EQUAL(r.refs.n, 1);
    run_done(&r);
}

static void
test_bad_ids_and_types_are_named(void)
{
    struct run r;
    char json[512];

    snprintf(json, sizeof(json),
        "{\"nodes\": ["
        "{\"id\": 1, \"type\": \"\", \"crew_id\": \"%s\"},"
        "{\"id\": \"a\\nb\", \"type\": null, \"crew_id\": \"%s\"},"
        "{\"id\": \"%065d\", \"type\": [\"t\"], \"crew_id\": \"%s\"}],"
        " \"edges\": []}", CREW_A, CREW_A, 0, CREW_A);
    run_check(&r, json);
    expect_problems(&r,
        "/definition/nodes/0/id", "must be a string",
        "/definition/nodes/0/type", "must not be empty",
        "/definition/nodes/1/id", "must not contain control characters",
        "/definition/nodes/1/type", "must be a string",
        "/definition/nodes/2/id", "must be at most 64 characters",
        "/definition/nodes/2/type", "must be a string", NULL);
    run_done(&r);
}

static void
test_id_of_64_characters_passes(void)
{
    struct run r;
    char json[512];

    /* 64 code points, 128 bytes: the limit counts characters. */
    snprintf(json, sizeof(json), "{\"nodes\": [{\"id\": \"%s\", "
        "\"type\": \"t\", \"crew_id\": \"" CREW_A "\"}], \"edges\": []}",
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
    run_check(&r, json);
    expect_problems(&r, NULL);
    run_done(&r);
}

static void
test_duplicate_node_ids_name_the_later_nodes(void)
{
    struct run r;

    run_check(&r,
        "{\"nodes\": ["
        "{\"id\": \"b\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"},"
        "{\"id\": \"a\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"},"
        "{\"id\": \"b\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"},"
        "{\"id\": \"a\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"},"
        "{\"id\": \"b\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"}],"
        " \"edges\": [{\"from\": \"a\", \"to\": \"b\"}]}");
    expect_problems(&r,
        "/definition/nodes/2/id",
        "duplicate node id: also the id of /definition/nodes/0",
        "/definition/nodes/3/id",
        "duplicate node id: also the id of /definition/nodes/1",
        "/definition/nodes/4/id",
        "duplicate node id: also the id of /definition/nodes/0", NULL);
    run_done(&r);
}

static void
test_node_needs_exactly_one_of_crew_id_and_agent_id(void)
{
    struct run r;

    run_check(&r,
        "{\"nodes\": ["
        "{\"id\": \"a\", \"type\": \"t\"},"
        "{\"id\": \"b\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\","
        " \"agent_id\": \"" AGENT_B "\"},"
        "{\"id\": \"c\", \"type\": \"t\", \"crew_id\": \"not-a-uuid\"},"
        "{\"id\": \"d\", \"type\": \"t\", \"agent_id\": null},"
        "{\"id\": \"e\", \"type\": \"t\", \"agent_id\": \"" AGENT_B "\","
        " \"config\": []}],"
        " \"edges\": []}");
    expect_problems(&r,
        "/definition/nodes/0", "needs a crew_id or an agent_id",
        "/definition/nodes/1/agent_id",
        "must not be given with crew_id: a node runs a crew or an agent",
        "/definition/nodes/2/crew_id", "must be a UUID",
        "/definition/nodes/3/agent_id", "must be a UUID",
        "/definition/nodes/4/config", "must be an object", NULL);

    /* Only the well-formed single references are handed back. */
    CU_ASSERT_EQUAL_FATAL(r.refs.n, 1);
    CU_ASSERT_STRING_EQUAL(r.refs.items[0].pointer,
        "/definition/nodes/4/agent_id");
    run_done(&r);
}

static void
test_edges_must_name_existing_nodes(void)
{
    struct run r;

    run_check(&r,
        "{\"nodes\": ["
        "{\"id\": \"a\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"},"
        "{\"id\": \"b\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"}],"
        " \"edges\": [{\"from\": \"a\", \"to\": \"c\"},"
        "{\"from\": 7, \"to\": \"b\"},"
        "{\"to\": \"b\"},"
        "[\"a\", \"b\"],"
        "{\"from\": \"A\", \"to\": \"b\"}]}");
    expect_problems(&r,
        "/definition/edges/0/to", "no such node",
        "/definition/edges/1/from", "must be a string",
        "/definition/edges/2/from", "is required",
        "/definition/edges/3", "must be an object",
        "/definition/edges/4/from", "no such node", NULL);
    run_done(&r);
}

static void
test_edge_to_a_node_with_a_bad_type_is_not_also_unknown(void)
{
    struct run r;

    /* Node b's id is fine though its type is not: edges may name it. */
    run_check(&r,
        "{\"nodes\": ["
        "{\"id\": \"a\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"},"
        "{\"id\": \"b\", \"type\": 5, \"crew_id\": \"" CREW_A "\"}],"
        " \"edges\": [{\"from\": \"a\", \"to\": \"b\"}]}");
    expect_problems(&r, "/definition/nodes/1/type", "must be a string",
        NULL);
    run_done(&r);
}

static void
test_duplicate_edges_are_problems(void)
{
    struct run r;

    run_check(&r,
        "{\"nodes\": ["
        "{\"id\": \"a\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"},"
        "{\"id\": \"b\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"}],"
        " \"edges\": [{\"from\": \"a\", \"to\": \"b\"},"
        "{\"to\": \"b\", \"from\": \"a\"},"
        "{\"from\": \"a\", \"to\": \"b\"}]}");
    expect_problems(&r,
        "/definition/edges/1", "duplicate edge: the same as "
        "/definition/edges/0",
        "/definition/edges/2", "duplicate edge: the same as "
        "/definition/edges/0", NULL);
    run_done(&r);
}

static void
test_two_node_cycle_is_shown(void)
{
    struct run r;

    run_check(&r,
        "{\"nodes\": ["
        "{\"id\": \"a\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"},"
        "{\"id\": \"b\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"}],"
        " \"edges\": [{\"from\": \"a\", \"to\": \"b\"},"
        "{\"from\": \"b\", \"to\": \"a\"}]}");
    expect_problems(&r, "/definition/edges",
        "the edges form a cycle: a -> b -> a", NULL);
    run_done(&r);
}

static void
test_self_loop_is_a_cycle(void)
{
    struct run r;

    run_check(&r,
        "{\"nodes\": ["
        "{\"id\": \"a\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"}],"
        " \"edges\": [{\"from\": \"a\", \"to\": \"a\"}]}");
    expect_problems(&r, "/definition/edges",
        "the edges form a cycle: a -> a", NULL);
    run_done(&r);
}

static void
test_cycle_behind_a_tail_shows_only_the_cycle(void)
{
    struct run r;

    run_check(&r,
        "{\"nodes\": ["
        "{\"id\": \"x\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"},"
        "{\"id\": \"a\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"},"
        "{\"id\": \"b\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"},"
        "{\"id\": \"c\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"},"
        "{\"id\": \"z\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"}],"
        " \"edges\": [{\"from\": \"x\", \"to\": \"a\"},"
        "{\"from\": \"a\", \"to\": \"b\"},"
        "{\"from\": \"b\", \"to\": \"c\"},"
        "{\"from\": \"c\", \"to\": \"a\"},"
        "{\"from\": \"c\", \"to\": \"z\"}]}");
    expect_problems(&r, "/definition/edges",
        "the edges form a cycle: a -> b -> c -> a", NULL);
    run_done(&r);
}

static void
test_diamond_is_not_a_cycle(void)
{
    struct run r;

    run_check(&r,
        "{\"nodes\": ["
        "{\"id\": \"a\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"},"
        "{\"id\": \"b\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"},"
        "{\"id\": \"c\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"},"
        "{\"id\": \"d\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"}],"
        " \"edges\": [{\"from\": \"a\", \"to\": \"b\"},"
        "{\"from\": \"a\", \"to\": \"c\"},"
        "{\"from\": \"b\", \"to\": \"d\"},"
        "{\"from\": \"c\", \"to\": \"d\"}]}");
    expect_problems(&r, NULL);
    run_done(&r);
}

/*
 * n nodes named prefix + index and nedges edges i -> i + 1 (mod n): a
 * chain for nedges < n, a ring for nedges == n.
 */
static char *
chain(size_t n, size_t nedges, const char *prefix)
{
    struct buf b = BUF_INIT;

    buf_puts(&b, "{\"nodes\": [");
    for (size_t i = 0; i < n; i++) {
        buf_printf(&b, "%s{\"id\": \"%s%zu", i > 0 ? "," : "", prefix,
            i);
        buf_puts(&b, "\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"}");
    }
    buf_puts(&b, "], \"edges\": [");
    for (size_t i = 0; i < nedges; i++) {
        buf_printf(&b, "%s{\"from\": \"%s%zu\", \"to\": \"%s%zu\"}",
            i > 0 ? "," : "", prefix, i % n, prefix, (i + 1) % n);
    }
    buf_puts(&b, "]}");
    return b.data;
}

static void
test_largest_graph_passes(void)
{
    struct run r;
    char *json = chain(FLOWDEF_MAX_NODES, FLOWDEF_MAX_NODES - 1,
        "n");

    run_check(&r, json);
    expect_problems(&r, NULL);
    CU_ASSERT_EQUAL(r.refs.n, FLOWDEF_MAX_NODES);
    run_done(&r);
    free(json);
}

static void
test_long_cycle_message_keeps_whole_ids(void)
{
    struct run r;
    char *json = chain(FLOWDEF_MAX_NODES, FLOWDEF_MAX_NODES,
        "node-with-a-long-name-");
    const char *message;

    run_check(&r, json);
    CU_ASSERT_EQUAL(r.result, -1);
    CU_ASSERT_EQUAL(r.err.nfields, 1);
    message = problem_at(&r, "/definition/edges");
    CU_ASSERT_PTR_NOT_NULL_FATAL(message);
    CU_ASSERT_EQUAL(strncmp(message, "the edges form a cycle: "
        "node-with-a-long-name-0 -> node-with-a-long-name-1 -> ", 78), 0);
    CU_ASSERT(strlen(message) <= ERROR_FIELD_MESSAGE_MAX - 1);
    CU_ASSERT_STRING_EQUAL(message + strlen(message) - 7, " -> ...");
    /* Every id shown is whole: each arrow follows a full id. */
    for (const char *p = strstr(message, "node-"); p != NULL;
         p = strstr(p + 1, "node-")) {
        const char *end = strchr(p, ' ');

        CU_ASSERT_PTR_NOT_NULL(end);
        CU_ASSERT_EQUAL(strncmp(end, " -> ", 4), 0);
    }
    run_done(&r);
    free(json);
}

static void
test_too_many_nodes_is_one_problem(void)
{
    struct run r;
    char *json = chain(FLOWDEF_MAX_NODES + 1, 0, "n");

    run_check(&r, json);
    expect_problems(&r, "/definition/nodes",
        "must have at most 1000 nodes", NULL);
    CU_ASSERT_EQUAL(r.refs.n, 0);
    run_done(&r);
    free(json);
}

static void
test_too_many_edges_still_checks_the_nodes(void)
{
    struct run r;
    char *json = chain(3, FLOWDEF_MAX_EDGES + 1, "n");

    run_check(&r, json);
    expect_problems(&r, "/definition/edges",
        "must have at most 5000 edges", NULL);
    CU_ASSERT_EQUAL(r.refs.n, 3);
    run_done(&r);
    free(json);
}

static void
test_every_problem_is_reported_at_once(void)
{
    struct run r;

    run_check(&r,
        "{\"nodes\": ["
        "{\"id\": \"a\", \"type\": \"t\", \"crew_id\": \"" CREW_A "\"},"
        "{\"id\": \"a\", \"type\": \"t\", \"agent_id\": \"" AGENT_B "\"},"
        "{\"id\": \"b\", \"crew_id\": \"x\"},"
        "{\"id\": \"c\", \"type\": \"t\"}],"
        " \"edges\": [{\"from\": \"a\", \"to\": \"b\"},"
        "{\"from\": \"b\", \"to\": \"a\"},"
        "{\"from\": \"b\", \"to\": \"nowhere\"}],"
        " \"extra\": true}");
    expect_problems(&r,
        "/definition/extra", "is not a known field",
        "/definition/nodes/2/crew_id", "must be a UUID",
        "/definition/nodes/2/type", "is required",
        "/definition/nodes/3", "needs a crew_id or an agent_id",
        "/definition/nodes/1/id",
        "duplicate node id: also the id of /definition/nodes/0",
        "/definition/edges/2/to", "no such node",
        "/definition/edges", "the edges form a cycle: a -> b -> a", NULL);
    run_done(&r);
}

static void
test_more_problems_than_kept_are_counted(void)
{
    struct run r;
    struct buf b = BUF_INIT;

    buf_puts(&b, "{\"nodes\": [");
    for (int i = 0; i < 20; i++)
        buf_printf(&b, "%s{}", i > 0 ? "," : "");
    buf_puts(&b, "], \"edges\": []}");
    run_check(&r, b.data);
    /* Three problems per node: id, type, and neither reference. */
    CU_ASSERT_EQUAL(r.result, -1);
    CU_ASSERT_EQUAL(r.err.nfields, ERROR_FIELDS_MAX);
    CU_ASSERT_EQUAL(r.err.fields_dropped, 60 - ERROR_FIELDS_MAX);
    run_done(&r);
    buf_free(&b);
}

static void
test_base_prefixes_every_pointer(void)
{
    struct run r;

    run_check_at(&r, "",
        "{\"nodes\": [{\"id\": \"a\", \"type\": \"t\"}], "
        "\"edges\": [{\"from\": \"a\", \"to\": \"b\"}]}");
    expect_problems(&r,
        "/nodes/0", "needs a crew_id or an agent_id",
        "/edges/0/to", "no such node", NULL);
    run_done(&r);
}

void
register_flowdef_tests(void)
{
    CU_pSuite s = unit_suite("flowdef");

    unit_test(s, "valid_graph_passes_and_hands_back_references",
        test_valid_graph_passes_and_hands_back_references);
    unit_test(s, "empty_graph_passes", test_empty_graph_passes);
    unit_test(s, "definition_must_be_an_object",
        test_definition_must_be_an_object);
    unit_test(s, "nodes_and_edges_are_required_arrays",
        test_nodes_and_edges_are_required_arrays);
    unit_test(s, "unknown_members_are_problems_with_escaped_pointers",
        test_unknown_members_are_problems_with_escaped_pointers);
    unit_test(s, "node_must_be_an_object_with_id_and_type",
        test_node_must_be_an_object_with_id_and_type);
    unit_test(s, "bad_ids_and_types_are_named",
        test_bad_ids_and_types_are_named);
    unit_test(s, "id_of_64_characters_passes",
        test_id_of_64_characters_passes);
    unit_test(s, "duplicate_node_ids_name_the_later_nodes",
        test_duplicate_node_ids_name_the_later_nodes);
    unit_test(s, "node_needs_exactly_one_of_crew_id_and_agent_id",
        test_node_needs_exactly_one_of_crew_id_and_agent_id);
    unit_test(s, "edges_must_name_existing_nodes",
        test_edges_must_name_existing_nodes);
    unit_test(s, "edge_to_a_node_with_a_bad_type_is_not_also_unknown",
        test_edge_to_a_node_with_a_bad_type_is_not_also_unknown);
    unit_test(s, "duplicate_edges_are_problems",
        test_duplicate_edges_are_problems);
    unit_test(s, "two_node_cycle_is_shown", test_two_node_cycle_is_shown);
    unit_test(s, "self_loop_is_a_cycle", test_self_loop_is_a_cycle);
    unit_test(s, "cycle_behind_a_tail_shows_only_the_cycle",
        test_cycle_behind_a_tail_shows_only_the_cycle);
    unit_test(s, "diamond_is_not_a_cycle", test_diamond_is_not_a_cycle);
    unit_test(s, "largest_graph_passes", test_largest_graph_passes);
    unit_test(s, "long_cycle_message_keeps_whole_ids",
        test_long_cycle_message_keeps_whole_ids);
    unit_test(s, "too_many_nodes_is_one_problem",
        test_too_many_nodes_is_one_problem);
    unit_test(s, "too_many_edges_still_checks_the_nodes",
        test_too_many_edges_still_checks_the_nodes);
    unit_test(s, "every_problem_is_reported_at_once",
        test_every_problem_is_reported_at_once);
    unit_test(s, "more_problems_than_kept_are_counted",
        test_more_problems_than_kept_are_counted);
    unit_test(s, "base_prefixes_every_pointer",
        test_base_prefixes_every_pointer);
}
