/*
 * GET /api/v1/openapi.json: the OpenAPI 3.1 document of the whole API,
 * made from the route table itself, so it cannot list a route the server
 * does not have or miss one it has.
 *
 * A resource's five routes (list, create, get, patch, delete) are
 * described from its struct resource: the writable fields give the
 * request bodies, the list filters the query parameters.  Any other route
 * carries a struct route_doc with its schemas.  Every operation lists the
 * problem+json errors it can answer.
 */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "handlers.h"
#include "resource.h"
#include "routes.h"

enum operation_kind {
    OP_CUSTOM,
    OP_LIST,
    OP_CREATE,
    OP_GET,
    OP_UPDATE,
    OP_DELETE
};

static bool
ends_with(const char *pattern, const char *tail)
{
    size_t n = strlen(pattern), t = strlen(tail);

    return n >= t && strcmp(pattern + n - t, tail) == 0;
}

static bool
ends_with_id(const char *pattern)
{
    return ends_with(pattern, "/{id}");
}

static enum operation_kind
operation_kind(const struct route *r)
{
    bool item = ends_with_id(r->pattern);

    if (r->resource == NULL)
        return OP_CUSTOM;
    if (strcmp(r->method, "GET") == 0)
        return item ? OP_GET : OP_LIST;
    if (strcmp(r->method, "POST") == 0 && !item)
        return OP_CREATE;
    if (strcmp(r->method, "PATCH") == 0 && item)
        return OP_UPDATE;
    if (strcmp(r->method, "DELETE") == 0 && item)
        return OP_DELETE;
    return OP_CUSTOM;
}

/* "LLM provider" -> "LlmProvider": a schema name from a resource noun. */
static void
schema_name(const struct resource *r, char *out, size_t size)
{
    size_t n = 0;
    bool upper = true;

    for (const char *p = r->noun; *p != '\0' && n + 1 < size; p++) {
        if (!isalnum((unsigned char)*p)) {
            upper = true;
            continue;
        }
        out[n++] = (char)(upper ? toupper((unsigned char)*p)
                                : tolower((unsigned char)*p));
        upper = false;
    }
    out[n] = '\0';
}

static void
ref(struct json_writer *w, const char *kind, const char *name)
{
    struct buf path = BUF_INIT;

    buf_printf(&path, "#/components/%s/%s", kind, name);
    jw_object_open(w);
    jw_kv_string(w, "$ref", buf_cstr(&path));
    jw_object_close(w);
    buf_free(&path);
}

/* The JSON Schema of one field. */
static void
field_schema(struct json_writer *w, const struct field_spec *f,
    bool for_request)
{
    bool nullable = (f->flags & FIELD_NULLABLE) != 0;
    const char *type = "string";

    switch (f->type) {
    case FIELD_BOOL:
        type = "boolean";
        break;
    case FIELD_INT:
        type = "integer";
        break;
    case FIELD_OBJECT:
        type = "object";
        break;
    default:
        break;
    }

    jw_object_open(w);
    jw_key(w, "type");
    if (nullable) {
        jw_array_open(w);
        jw_string(w, type);
        jw_string(w, "null");
        jw_array_close(w);
    } else {
        jw_string(w, type);
    }

    switch (f->type) {
    case FIELD_STRING:
    case FIELD_TEXT:
        if (f->type == FIELD_STRING || f->min > 0)
            jw_kv_int(w, "minLength", f->min > 0 ? f->min : 1);
        if (f->max_chars > 0 && f->max_chars < INT32_MAX)
            jw_kv_int(w, "maxLength", (int64_t)f->max_chars);
        break;
    case FIELD_INT:
        jw_kv_int(w, "minimum", f->min);
        jw_kv_int(w, "maximum", f->max);
        break;
    case FIELD_UUID:
        jw_kv_string(w, "format", "uuid");
        break;
    case FIELD_ENUM:
        jw_key(w, "enum");
        jw_array_open(w);
        for (size_t i = 0; f->choices[i] != NULL; i++)
            jw_string(w, f->choices[i]);
        if (nullable)
            jw_null(w);
        jw_array_close(w);
        break;
    default:
        break;
    }
    if (for_request && (f->flags & FIELD_WRITE_ONLY))
        jw_kv_bool(w, "writeOnly", true);
    jw_object_close(w);
}

/* The body of a create (required fields) or a merge patch (none). */
static void
request_schema(struct json_writer *w, const struct resource *r,
    bool creating)
{
    bool any_required = false;

    jw_object_open(w);
    jw_kv_string(w, "type", "object");
    jw_kv_bool(w, "additionalProperties", false);
    jw_key(w, "properties");
    jw_object_open(w);
    for (size_t i = 0; i < r->nfields; i++) {
        if (!creating && (r->fields[i].flags & FIELD_CREATE_ONLY))
            continue;
        jw_key(w, r->fields[i].name);
        field_schema(w, &r->fields[i], true);
        any_required |= (r->fields[i].flags & FIELD_REQUIRED) != 0;
    }
    jw_object_close(w);
    if (creating && any_required) {
        jw_key(w, "required");
        jw_array_open(w);
        for (size_t i = 0; i < r->nfields; i++)
            if (r->fields[i].flags & FIELD_REQUIRED)
                jw_string(w, r->fields[i].name);
        jw_array_close(w);
    }
    jw_object_close(w);
}

static void
uuid_schema(struct json_writer *w)
{
    jw_raw(w, "{\"type\":\"string\",\"format\":\"uuid\"}");
}

static void
time_schema(struct json_writer *w)
{
    jw_raw(w, "{\"type\":\"string\",\"format\":\"date-time\"}");
}

/* What the server answers for one row of the resource. */
static void
item_schema(struct json_writer *w, const struct resource *r)
{
    jw_object_open(w);
    jw_kv_string(w, "type", "object");
    jw_key(w, "properties");
    jw_object_open(w);
    jw_key(w, "id");
    uuid_schema(w);
    jw_key(w, "tenant_id");
    uuid_schema(w);
    for (size_t i = 0; i < r->nfields; i++) {
        if (r->fields[i].flags & FIELD_WRITE_ONLY)
            continue;
        jw_key(w, r->fields[i].name);
        field_schema(w, &r->fields[i], false);
    }
    if (r->doc_properties != NULL) {
        /* Already "name": schema pairs: write them as they are. */
        buf_puts(w->out, ",");
        buf_puts(w->out, r->doc_properties);
    }
    jw_key(w, "created_at");
    time_schema(w);
    jw_key(w, "updated_at");
    time_schema(w);
    jw_object_close(w);
    jw_key(w, "required");
    jw_raw(w, "[\"id\",\"tenant_id\",\"created_at\",\"updated_at\"]");
    jw_object_close(w);
}

static void
list_schema(struct json_writer *w, const char *item)
{
    jw_object_open(w);
    jw_kv_string(w, "type", "object");
    jw_key(w, "properties");
    jw_object_open(w);
    jw_key(w, "items");
    jw_object_open(w);
    jw_kv_string(w, "type", "array");
    jw_key(w, "items");
    ref(w, "schemas", item);
    jw_object_close(w);
    jw_key(w, "next_cursor");
    jw_raw(w, "{\"type\":[\"string\",\"null\"]}");
    jw_object_close(w);
    jw_key(w, "required");
    jw_raw(w, "[\"items\",\"next_cursor\"]");
    jw_object_close(w);
}

static void
parameter(struct json_writer *w, const char *name, const char *in,
    const char *schema, const char *description)
{
    jw_object_open(w);
    jw_kv_string(w, "name", name);
    jw_kv_string(w, "in", in);
    jw_kv_bool(w, "required", strcmp(in, "path") == 0);
    if (description != NULL)
        jw_kv_string(w, "description", description);
    jw_kv_raw(w, "schema", schema);
    jw_object_close(w);
}

static void
filter_parameter(struct json_writer *w, const struct list_filter *f)
{
    struct field_spec spec = { f->param, f->type, 0, 0, 0, 0, f->choices };

    jw_object_open(w);
    jw_kv_string(w, "name", f->param);
    jw_kv_string(w, "in", "query");
    jw_kv_bool(w, "required", false);
    jw_kv_string(w, "description", "only the rows with this value");
    jw_key(w, "schema");
    field_schema(w, &spec, false);
    jw_object_close(w);
}

static void
parameters(struct json_writer *w, const struct route *r,
    enum operation_kind kind)
{
    jw_key(w, "parameters");
    jw_array_open(w);
    if (strstr(r->pattern, "{id}") != NULL)
        parameter(w, "id", "path", "{\"type\":\"string\",\"format\":\"uuid\"}",
            NULL);
    if (kind == OP_LIST) {
        parameter(w, "limit", "query",
            "{\"type\":\"integer\",\"minimum\":1,\"maximum\":100,"
            "\"default\":20}", "how many items a page holds");
        parameter(w, "cursor", "query", "{\"type\":\"string\"}",
            "next_cursor of the previous page");
        for (size_t i = 0; i < r->resource->nfilters; i++)
            filter_parameter(w, &r->resource->filters[i]);
    }
    if (r->doc != NULL && r->doc->query != NULL)
        for (size_t i = 0; r->doc->query[i] != NULL; i++)
            parameter(w, r->doc->query[i], "query", "{\"type\":\"string\"}",
                NULL);
    if (strcmp(r->method, "PATCH") == 0 || strcmp(r->method, "DELETE") == 0
        || strcmp(r->method, "PUT") == 0 || strstr(r->pattern, "/cancel"))
        parameter(w, "If-Match", "header", "{\"type\":\"string\"}",
            "the ETag read last; a stale one answers 412");
    jw_array_close(w);
}

static bool
has_body(const struct route *r, enum operation_kind kind)
{
    if (kind == OP_CREATE || kind == OP_UPDATE)
        return true;
    return kind == OP_CUSTOM && r->doc != NULL &&
        r->doc->request_schema != NULL;
}

static void
request_body(struct json_writer *w, const struct route *r,
    enum operation_kind kind)
{
    if (!has_body(r, kind))
        return;

    jw_key(w, "requestBody");
    jw_object_open(w);
    /* A run and a cancel may come without a body; nothing else may. */
    jw_kv_bool(w, "required", kind != OP_CUSTOM ||
        !(ends_with(r->pattern, "/executions") ||
          ends_with(r->pattern, "/cancel")));
    jw_key(w, "content");
    jw_object_open(w);
    jw_key(w, "application/json");
    jw_object_open(w);
    jw_key(w, "schema");
    if (kind == OP_CUSTOM)
        jw_raw(w, r->doc->request_schema);
    else
        request_schema(w, r->resource, kind == OP_CREATE);
    jw_object_close(w);
    jw_object_close(w);
    jw_object_close(w);
}

static void
success_response(struct json_writer *w, const struct route *r,
    enum operation_kind kind)
{
    char name[64];
    int status = kind == OP_CREATE ? 201 : kind == OP_DELETE ? 204 : 200;
    char code[8];

    if (kind == OP_CUSTOM && r->doc != NULL && r->doc->status != 0)
        status = r->doc->status;
    snprintf(code, sizeof(code), "%d", status);

    jw_key(w, code);
    jw_object_open(w);
    jw_kv_string(w, "description", http_reason(status));
    if (kind == OP_DELETE ||
        (kind == OP_CUSTOM && (r->doc == NULL ||
                               r->doc->response_schema == NULL))) {
        jw_object_close(w);
        return;
    }

    jw_key(w, "content");
    jw_object_open(w);
    jw_key(w, "application/json");
    jw_object_open(w);
    jw_key(w, "schema");
    if (kind == OP_CUSTOM) {
        jw_raw(w, r->doc->response_schema);
    } else {
        schema_name(r->resource, name, sizeof(name));
        if (kind == OP_LIST) {
            char list[80];

            snprintf(list, sizeof(list), "%sList", name);
            ref(w, "schemas", list);
        } else {
            ref(w, "schemas", name);
        }
    }
    jw_object_close(w);
    jw_object_close(w);
    jw_object_close(w);
}

/* The problems an operation can answer, each a problem+json. */
static void
error_responses(struct json_writer *w, const struct route *r,
    enum operation_kind kind)
{
    bool writes = strcmp(r->method, "GET") != 0;
    bool body = has_body(r, kind);
    int codes[24];
    int n = 0;

    codes[n++] = 400;
    if (r->role != ROLE_NONE) {
        codes[n++] = 401;
        codes[n++] = 403;
    }
    if (r->host != HOST_APEX || strcmp(r->pattern, "/healthz") != 0)
        codes[n++] = 404;
    if (writes && r->host == HOST_TENANT && r->role != ROLE_NONE)
        codes[n++] = 409;
    if (strcmp(r->method, "PATCH") == 0 || strcmp(r->method, "DELETE") == 0
        || strcmp(r->method, "PUT") == 0 || strstr(r->pattern, "/cancel"))
        codes[n++] = 412;
    if (body) {
        codes[n++] = 413;
        codes[n++] = 415;
        codes[n++] = 422;
    }
    if (writes && r->role == ROLE_NONE)
        codes[n++] = 429;
    if (r->doc != NULL && r->doc->errors != NULL)
        for (const int *e = r->doc->errors; *e != 0 && n < 22; e++)
            codes[n++] = *e;
    codes[n++] = 503;

    for (int i = 0; i < n; i++) {
        char code[8];

        snprintf(code, sizeof(code), "%d", codes[i]);
        jw_key(w, code);
        ref(w, "responses", "Problem");
    }
}

static void
operation(struct json_writer *w, const struct route *r)
{
    enum operation_kind kind = operation_kind(r);
    char id[128];
    size_t n = 0;

    /* getApiV1AgentsId: unique because method and pattern are. */
    n += (size_t)snprintf(id, sizeof(id), "%s", r->method);
    for (size_t i = 0; id[i] != '\0'; i++)
        id[i] = (char)tolower((unsigned char)id[i]);
    for (const char *p = r->pattern; *p != '\0' && n + 1 < sizeof(id); p++)
        if (isalnum((unsigned char)*p))
            id[n++] = p[-1] == '/' || p[-1] == '{' || p[-1] == '-' ||
                p[-1] == '.' ? (char)toupper((unsigned char)*p) : *p;
    id[n] = '\0';

    jw_key(w, r->method[0] == 'G' ? "get" : r->method[0] == 'D' ? "delete"
        : r->method[1] == 'A' ? "patch" : r->method[1] == 'U' ? "put"
        : "post");
    jw_object_open(w);
    jw_kv_string(w, "operationId", id);
    jw_kv_string(w, "summary", r->summary);
    jw_kv_string(w, "x-crewd-role", role_name(r->role));
    jw_key(w, "security");
    if (r->role == ROLE_NONE)
        jw_raw(w, "[]");
    else
        jw_raw(w, "[{\"bearer\":[]}]");
    parameters(w, r, kind);
    request_body(w, r, kind);
    jw_key(w, "responses");
    jw_object_open(w);
    success_response(w, r, kind);
    error_responses(w, r, kind);
    jw_object_close(w);
    jw_object_close(w);
}

static void
servers(struct json_writer *w, enum route_host host, const char *base)
{
    struct buf url = BUF_INIT;

    jw_array_open(w);
    if (host & HOST_TENANT) {
        buf_printf(&url, "https://{slug}.%s", base);
        jw_object_open(w);
        jw_kv_string(w, "url", buf_cstr(&url));
        jw_kv_string(w, "description", "a tenant's host");
        jw_key(w, "variables");
        jw_raw(w, "{\"slug\":{\"default\":\"acme\","
            "\"description\":\"the tenant's slug\"}}");
        jw_object_close(w);
        buf_reset(&url);
    }
    if (host & HOST_APEX) {
        buf_printf(&url, "https://%s", base);
        jw_object_open(w);
        jw_kv_string(w, "url", buf_cstr(&url));
        jw_kv_string(w, "description", "the platform host");
        jw_object_close(w);
    }
    jw_array_close(w);
    buf_free(&url);
}

static void
paths(struct json_writer *w, const char *base)
{
    jw_key(w, "paths");
    jw_object_open(w);
    for (size_t i = 0; i < routes_count; i++) {
        bool seen = false;

        /* Not part of the public API: nginx's loopback listener only. */
        if (routes[i].host == HOST_METRICS)
            continue;

        /* One path item per pattern, holding all its methods. */
        for (size_t j = 0; j < i; j++)
            seen |= strcmp(routes[j].pattern, routes[i].pattern) == 0;
        if (seen)
            continue;

        jw_key(w, routes[i].pattern);
        jw_object_open(w);
        jw_key(w, "servers");
        servers(w, routes[i].host, base);
        for (size_t j = i; j < routes_count; j++)
            if (strcmp(routes[j].pattern, routes[i].pattern) == 0)
                operation(w, &routes[j]);
        jw_object_close(w);
    }
    jw_object_close(w);
}

static void
components(struct json_writer *w)
{
    jw_key(w, "components");
    jw_object_open(w);

    jw_key(w, "securitySchemes");
    jw_raw(w, "{\"bearer\":{\"type\":\"http\",\"scheme\":\"bearer\","
        "\"bearerFormat\":\"JWT\",\"description\":\"a token from POST "
        "/api/v1/auth/login on the same tenant's host\"}}");

    jw_key(w, "responses");
    jw_raw(w, "{\"Problem\":{\"description\":\"an RFC 9457 problem\","
        "\"content\":{\"application/problem+json\":{\"schema\":"
        "{\"$ref\":\"#/components/schemas/Problem\"}}}}}");

    jw_key(w, "schemas");
    jw_object_open(w);
    jw_key(w, "Problem");
    jw_raw(w, "{\"type\":\"object\",\"required\":[\"type\",\"title\","
        "\"status\",\"detail\",\"errors\"],\"properties\":{"
        "\"type\":{\"type\":\"string\"},\"title\":{\"type\":\"string\"},"
        "\"status\":{\"type\":\"integer\"},\"detail\":{\"type\":\"string\"},"
        "\"errors\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
        "\"required\":[\"field\",\"message\"],\"properties\":{"
        "\"field\":{\"type\":\"string\",\"description\":\"a JSON pointer "
        "into the body, or a query parameter\"},"
        "\"message\":{\"type\":\"string\"}}}},"
        "\"errors_omitted\":{\"type\":\"integer\"},"
        "\"request_id\":{\"type\":\"string\"}}}");

    /* Each resource once, with its list page. */
    for (size_t i = 0; i < routes_count; i++) {
        const struct resource *r = routes[i].resource;
        char name[64], list[80];
        bool seen = false;

        if (r == NULL)
            continue;
        for (size_t j = 0; j < i; j++)
            seen |= routes[j].resource == r;
        if (seen)
            continue;

        schema_name(r, name, sizeof(name));
        jw_key(w, name);
        item_schema(w, r);
        snprintf(list, sizeof(list), "%sList", name);
        jw_key(w, list);
        list_schema(w, name);
    }
    jw_object_close(w);
    jw_object_close(w);
}

void
openapi_write(struct buf *out, const char *base_domain)
{
    struct json_writer w;

    jw_init(&w, out);
    jw_object_open(&w);
    jw_kv_string(&w, "openapi", "3.1.0");
    jw_key(&w, "info");
    jw_object_open(&w);
    jw_kv_string(&w, "title", "crewd");
    jw_kv_string(&w, "version", PACKAGE_VERSION);
    jw_kv_string(&w, "description", "The HTTP API of the crewd AI agent "
        "orchestration platform.  Tenant endpoints live on the tenant's "
        "own host; errors are RFC 9457 problem+json.");
    jw_object_close(&w);
    paths(&w, base_domain);
    components(&w);
    jw_object_close(&w);
}

int
openapi_get(struct request *req)
{
    /* The document never changes while a worker lives: make it once. */
    static struct buf document = BUF_INIT;

    if (request_query_check(req, NULL) < 0)
        return -1;

    /* Hosts as clients reach them: with nginx's port unless it is 443. */
    if (document.len == 0) {
        char base[300];

        snprintf(base, sizeof(base), "%s%s%s", req->conf->base_domain,
            req->server_port[0] != '\0' &&
            strcmp(req->server_port, "443") != 0 ? ":" : "",
            strcmp(req->server_port, "443") != 0 ? req->server_port : "");
        openapi_write(&document, base);
    }

    response_json(req, 200);
    buf_append(req->body_out, document.data, document.len);
    return 0;
}
