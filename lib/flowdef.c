#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "flowdef.h"
#include "json.h"
#include "jsonptr.h"
#include "uuid.h"

/* An edge whose ends both name nodes. */
struct edge {
    size_t from, to;        /* node indexes */
    size_t index;           /* position in the edges array */
};

/* A node with a usable id, for lookups by id. */
struct named {
    const char *id;
    size_t node;
};

struct check {
    struct arena *a;
    struct crewd_error *err;
    const char *nodes_ptr;  /* base + "/nodes" */
    const char *edges_ptr;  /* base + "/edges" */

    size_t nnodes;
    const char **ids;       /* ids[i]: node i's id, NULL when unusable */
    struct named *by_id;    /* the nodes with an id, by (id, index) */
    size_t nby_id;

    struct edge *edges;
    size_t nedges;
};

/* An id or a type: a string of 1..FLOWDEF_NAME_MAX characters. */
static const char *
read_name(struct check *c, struct json_object *v, const char *pointer)
{
    const char *s;
    size_t len, chars;

    if (json_object_get_type(v) != json_type_string) {
        error_field(c->err, pointer, "must be a string");
        return NULL;
    }
    s = json_object_get_string(v);
    len = (size_t)json_object_get_string_len(v);
    chars = json_utf8_length(s, len);
    if (chars == 0) {
        error_field(c->err, pointer, "must not be empty");
        return NULL;
    }
    if (chars > FLOWDEF_NAME_MAX) {
        error_field(c->err, pointer, "must be at most %d characters",
            FLOWDEF_NAME_MAX);
        return NULL;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            error_field(c->err, pointer,
                "must not contain control characters");
            return NULL;
        }
    return arena_strndup(c->a, s, len);
}

static const char *
read_uuid(struct check *c, struct json_object *v, const char *pointer)
{
    char canonical[UUID_TEXT_LEN + 1];

    if (json_object_get_type(v) != json_type_string ||
        !uuid_parse(json_object_get_string(v),
            (size_t)json_object_get_string_len(v), canonical)) {
        error_field(c->err, pointer, "must be a UUID");
        return NULL;
    }
    return arena_strdup(c->a, canonical);
}

static void
check_node(struct check *c, size_t i, struct json_object *node,
    struct flowdef_refs *refs)
{
    const char *pointer = jsonptr_index(c->a, c->nodes_ptr, i);
    bool has_id = false, has_type = false;
    bool has_crew = false, has_agent = false;
    const char *ref_id = NULL;
    const char *ref_key = NULL;
    const char *ref_pointer = NULL;
    enum flowdef_ref_kind ref_kind = FLOWDEF_REF_CREW;

    if (json_object_get_type(node) != json_type_object) {
        error_field(c->err, pointer, "must be an object");
        return;
    }

    json_object_object_foreach(node, key, v) {
        const char *member = jsonptr_key(c->a, pointer, key);

        if (strcmp(key, "id") == 0) {
            has_id = true;
            c->ids[i] = read_name(c, v, member);
        } else if (strcmp(key, "type") == 0) {
            has_type = true;
            read_name(c, v, member);
        } else if (strcmp(key, "crew_id") == 0 ||
                   strcmp(key, "agent_id") == 0) {
            bool crew = key[0] == 'c';

            if (crew)
                has_crew = true;
            else
                has_agent = true;
            ref_id = read_uuid(c, v, member);
            ref_key = key;
            ref_pointer = member;
            ref_kind = crew ? FLOWDEF_REF_CREW : FLOWDEF_REF_AGENT;
        } else if (strcmp(key, "config") == 0) {
            if (json_object_get_type(v) != json_type_object)
                error_field(c->err, member, "must be an object");
        } else {
            error_field(c->err, member, "is not a known field");
        }
    }

    if (!has_id)
        error_field(c->err, jsonptr_key(c->a, pointer, "id"),
            "is required");
    if (!has_type)
        error_field(c->err, jsonptr_key(c->a, pointer, "type"),
            "is required");
    if (has_crew && has_agent) {
        error_field(c->err, jsonptr_key(c->a, pointer, "agent_id"),
            "must not be given with crew_id: a node runs a crew or an "
            "agent");
        return;
    }
    if (!has_crew && !has_agent) {
        error_field(c->err, pointer, "needs a crew_id or an agent_id");
        return;
    }
    if (ref_id != NULL) {
        struct flowdef_ref *ref = &refs->items[refs->n++];

        /* Stored as every id is shown: lower-case, with dashes. */
        json_object_object_add(node, ref_key,
            json_object_new_string(ref_id));

        ref->kind = ref_kind;
        ref->id = ref_id;
        ref->pointer = ref_pointer;
    }
}

static int
compare_named(const void *pa, const void *pb)
{
    const struct named *a = pa, *b = pb;
    int cmp = strcmp(a->id, b->id);

    if (cmp != 0)
        return cmp;
    return a->node < b->node ? -1 : a->node > b->node;
}

/*
 * Sorts the nodes that have an id by (id, index) and reports each node
 * whose id an earlier node already has, in document order.
 */
static void
index_ids(struct check *c)
{
    size_t *first = arena_alloc(c->a, (c->nnodes + 1) * sizeof(*first));

    c->by_id = arena_alloc(c->a, (c->nnodes + 1) * sizeof(*c->by_id));
    c->nby_id = 0;
    for (size_t i = 0; i < c->nnodes; i++) {
        first[i] = i;
        if (c->ids[i] != NULL) {
            c->by_id[c->nby_id].id = c->ids[i];
            c->by_id[c->nby_id++].node = i;
        }
    }
    qsort(c->by_id, c->nby_id, sizeof(*c->by_id), compare_named);

    for (size_t k = 1; k < c->nby_id; k++)
        if (strcmp(c->by_id[k - 1].id, c->by_id[k].id) == 0)
            first[c->by_id[k].node] = first[c->by_id[k - 1].node];

    for (size_t i = 0; i < c->nnodes; i++)
        if (first[i] != i)
            error_field(c->err,
                jsonptr_key(c->a, jsonptr_index(c->a, c->nodes_ptr, i),
                    "id"),
                "duplicate node id: also the id of %s/%zu", c->nodes_ptr,
                first[i]);
}

/* The first node with this id, or -1. */
static long
find_node(const struct check *c, const char *id)
{
    size_t lo = 0, hi = c->nby_id;

    /* The lower bound: the first entry not less than id. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (strcmp(c->by_id[mid].id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < c->nby_id && strcmp(c->by_id[lo].id, id) == 0)
        return (long)c->by_id[lo].node;
    return -1;
}

/* One end of an edge: the index of the node it names, or -1. */
static long
edge_end(struct check *c, struct json_object *v, const char *pointer)
{
    long node;

    if (json_object_get_type(v) != json_type_string) {
        error_field(c->err, pointer, "must be a string");
        return -1;
    }
    node = find_node(c, json_object_get_string(v));
    if (node < 0)
        error_field(c->err, pointer, "no such node");
    return node;
}

static void
check_edge(struct check *c, size_t i, struct json_object *edge)
{
    const char *pointer = jsonptr_index(c->a, c->edges_ptr, i);
    bool has_from = false, has_to = false;
    long from = -1, to = -1;

    if (json_object_get_type(edge) != json_type_object) {
        error_field(c->err, pointer, "must be an object");
        return;
    }

    json_object_object_foreach(edge, key, v) {
        const char *member = jsonptr_key(c->a, pointer, key);

        if (strcmp(key, "from") == 0) {
            has_from = true;
            from = edge_end(c, v, member);
        } else if (strcmp(key, "to") == 0) {
            has_to = true;
            to = edge_end(c, v, member);
        } else {
            error_field(c->err, member, "is not a known field");
        }
    }

    if (!has_from)
        error_field(c->err, jsonptr_key(c->a, pointer, "from"),
            "is required");
    if (!has_to)
        error_field(c->err, jsonptr_key(c->a, pointer, "to"),
            "is required");
    if (from >= 0 && to >= 0) {
        struct edge *e = &c->edges[c->nedges++];

        e->from = (size_t)from;
        e->to = (size_t)to;
        e->index = i;
    }
}

static int
compare_edges(const void *pa, const void *pb)
{
    const struct edge *a = pa, *b = pb;

    if (a->from != b->from)
        return a->from < b->from ? -1 : 1;
    if (a->to != b->to)
        return a->to < b->to ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Reports each edge that repeats an earlier one, in document order. */
static void
check_duplicate_edges(struct check *c, size_t nedges_given)
{
    struct edge *sorted;
    long *repeats;      /* by edge index: the earlier edge, or -1 */

    if (c->nedges < 2)
        return;
    sorted = arena_alloc(c->a, c->nedges * sizeof(*sorted));
    memcpy(sorted, c->edges, c->nedges * sizeof(*sorted));
    qsort(sorted, c->nedges, sizeof(*sorted), compare_edges);

    repeats = arena_alloc(c->a, nedges_given * sizeof(*repeats));
    for (size_t i = 0; i < nedges_given; i++)
        repeats[i] = -1;
    for (size_t k = 1, first = 0; k < c->nedges; k++) {
        if (sorted[k].from == sorted[first].from &&
            sorted[k].to == sorted[first].to)
            repeats[sorted[k].index] = (long)sorted[first].index;
        else
            first = k;
    }
    for (size_t i = 0; i < nedges_given; i++)
        if (repeats[i] >= 0)
            error_field(c->err, jsonptr_index(c->a, c->edges_ptr, i),
                "duplicate edge: the same as %s/%ld", c->edges_ptr,
                repeats[i]);
}

/*
 * "the edges form a cycle: a -> b -> a", with whole ids only: when the
 * cycle does not fit a field message, it ends in "-> ...".
 */
static void
report_cycle(struct check *c, const size_t *cycle, size_t len)
{
    static const char head[] = "the edges form a cycle: ";
    static const char arrow[] = " -> ";
    static const char more[] = " -> ...";
    const size_t room = ERROR_FIELD_MESSAGE_MAX - 1;
    struct buf message = BUF_INIT;

    buf_puts(&message, head);
    for (size_t k = 0; k <= len; k++) {
        const char *id = c->ids[cycle[k % len]];
        size_t need = (k > 0 ? strlen(arrow) : 0) + strlen(id);

        /* The last id may take the room kept for " -> ...". */
        if (message.len + need + (k < len ? strlen(more) : 0) > room) {
            buf_puts(&message, k > 0 ? more : "...");
            break;
        }
        if (k > 0)
            buf_puts(&message, arrow);
        buf_puts(&message, id);
    }
    error_field(c->err, c->edges_ptr, "%s", buf_cstr(&message));
    buf_free(&message);
}

/*
 * Kahn's algorithm: nodes without incoming edges are removed with their
 * edges until none is left.  Nodes that remain each have an incoming
 * edge from another remaining node, so walking such edges backwards
 * from any of them must come back to a node already seen: that walk is
 * a cycle to show the client.
 */
static void
check_cycle(struct check *c)
{
    size_t n = c->nnodes, m = c->nedges;
    size_t *indegree, *out_start, *out, *queue, *walk;
    long *in_edge;          /* a remaining node: one edge into it */
    long *seen_at;
    size_t head = 0, tail = 0, steps = 0;
    size_t start, at;

    if (m == 0)
        return;

    indegree = arena_zalloc(c->a, n * sizeof(*indegree));
    out_start = arena_zalloc(c->a, (n + 1) * sizeof(*out_start));
    out = arena_alloc(c->a, m * sizeof(*out));
    queue = arena_alloc(c->a, n * sizeof(*queue));

    /* The edges leaving node v are out[out_start[v] .. out_start[v+1]). */
    for (size_t e = 0; e < m; e++) {
        indegree[c->edges[e].to]++;
        out_start[c->edges[e].from + 1]++;
    }
    for (size_t v = 0; v < n; v++)
        out_start[v + 1] += out_start[v];
    {
        size_t *fill = arena_alloc(c->a, n * sizeof(*fill));

        memcpy(fill, out_start, n * sizeof(*fill));
        for (size_t e = 0; e < m; e++)
            out[fill[c->edges[e].from]++] = e;
    }

    for (size_t v = 0; v < n; v++)
        if (indegree[v] == 0)
            queue[tail++] = v;
    while (head < tail) {
        size_t v = queue[head++];

        for (size_t k = out_start[v]; k < out_start[v + 1]; k++)
            if (--indegree[c->edges[out[k]].to] == 0)
                queue[tail++] = c->edges[out[k]].to;
    }
    if (tail == n)
        return;

    in_edge = arena_alloc(c->a, n * sizeof(*in_edge));
    for (size_t v = 0; v < n; v++)
        in_edge[v] = -1;
    for (size_t e = 0; e < m; e++)
        if (indegree[c->edges[e].from] > 0 && indegree[c->edges[e].to] > 0)
            in_edge[c->edges[e].to] = (long)e;

    start = 0;
    while (indegree[start] == 0)
        start++;

    /* Backwards from start until a node repeats: at most n steps. */
    seen_at = arena_alloc(c->a, n * sizeof(*seen_at));
    for (size_t v = 0; v < n; v++)
        seen_at[v] = -1;
    walk = arena_alloc(c->a, (n + 1) * sizeof(*walk));
    at = start;
    while (seen_at[at] < 0) {
        seen_at[at] = (long)steps;
        walk[steps++] = at;
        at = c->edges[in_edge[at]].from;
    }

    /*
     * walk[seen_at[at]] .. walk[steps - 1] is the cycle backwards: each
     * node's predecessor follows it.  Reversed, it reads forwards; it is
     * shown from its earliest node, so the same graph always gives the
     * same message.
     */
    {
        size_t first = (size_t)seen_at[at];
        size_t len = steps - first;
        size_t *cycle = arena_alloc(c->a, len * sizeof(*cycle));
        size_t earliest = 0;

        for (size_t k = 0; k < len; k++) {
            cycle[k] = walk[steps - 1 - k];
            if (cycle[k] < cycle[earliest])
                earliest = k;
        }
        for (size_t k = 0; k < len; k++)
            walk[k] = cycle[(earliest + k) % len];
        report_cycle(c, walk, len);
    }
}

/* The array member name of the definition, or NULL with a problem. */
static struct json_object *
read_list(struct check *c, struct json_object *definition,
    const char *name, const char *pointer, size_t max)
{
    struct json_object *list;

    if (!json_object_object_get_ex(definition, name, &list)) {
        error_field(c->err, pointer, "is required");
        return NULL;
    }
    if (json_object_get_type(list) != json_type_array) {
        error_field(c->err, pointer, "must be an array");
        return NULL;
    }
    if (json_object_array_length(list) > max) {
        error_field(c->err, pointer, "must have at most %zu %s", max, name);
        return NULL;
    }
    return list;
}

int
flowdef_check(struct arena *a, struct json_object *definition,
    const char *base, struct flowdef_refs *refs, struct crewd_error *err)
{
    int problems = err->nfields + err->fields_dropped;
    struct check c = { .a = a, .err = err };
    struct json_object *nodes, *edges;
    size_t nedges_given;

    refs->items = NULL;
    refs->n = 0;

    if (json_object_get_type(definition) != json_type_object) {
        error_field(err, base, "must be an object");
        return -1;
    }
    json_object_object_foreach(definition, key, v) {
        (void)v;
        if (strcmp(key, "nodes") != 0 && strcmp(key, "edges") != 0)
            error_field(err, jsonptr_key(a, base, key),
                "is not a known field");
    }

    c.nodes_ptr = jsonptr_key(a, base, "nodes");
    c.edges_ptr = jsonptr_key(a, base, "edges");
    nodes = read_list(&c, definition, "nodes", c.nodes_ptr,
        FLOWDEF_MAX_NODES);
    edges = read_list(&c, definition, "edges", c.edges_ptr,
        FLOWDEF_MAX_EDGES);

    /* Without the nodes, nothing an edge names can be checked. */
    if (nodes == NULL)
        return -1;

    c.nnodes = json_object_array_length(nodes);
    c.ids = arena_zalloc(a, (c.nnodes + 1) * sizeof(*c.ids));
    refs->items = arena_alloc(a, (c.nnodes + 1) * sizeof(*refs->items));
    for (size_t i = 0; i < c.nnodes; i++)
        check_node(&c, i, json_object_array_get_idx(nodes, i), refs);
    index_ids(&c);

    if (edges != NULL) {
        nedges_given = json_object_array_length(edges);
        c.edges = arena_alloc(a, (nedges_given + 1) * sizeof(*c.edges));
        for (size_t i = 0; i < nedges_given; i++)
            check_edge(&c, i, json_object_array_get_idx(edges, i));
        check_duplicate_edges(&c, nedges_given);
        check_cycle(&c);
    }

    return err->nfields + err->fields_dropped > problems ? -1 : 0;
}
