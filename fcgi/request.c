#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "log.h"
#include "fastcgi.h"
#include "request.h"

static const char *
param(const struct fcgi_param *params, size_t count, const char *name)
{
    const char *v = fcgi_params_find(params, count, name);

    return v != NULL ? v : "";
}

static const char *
request_id_from(struct arena *a, const char *given)
{
    unsigned char bytes[8];
    char hex[sizeof(bytes) * 2 + 1];

    if (given[0] != '\0')
        return arena_strndup(a, given, strnlen(given, REQUEST_ID_MAX));

    /* Not behind nginx (a test, a health probe): make one up. */
    randombytes_buf(bytes, sizeof(bytes));
    sodium_bin2hex(hex, sizeof(hex), bytes, sizeof(bytes));
    return arena_strdup(a, hex);
}

void
request_from_params(struct request *req, const struct fcgi_param *params,
    size_t count)
{
    req->request_id = request_id_from(req->arena,
        param(params, count, "REQUEST_ID"));
    req->method = param(params, count, "REQUEST_METHOD");
    req->path = param(params, count, "DOCUMENT_URI");
    req->query = param(params, count, "QUERY_STRING");
    req->remote_addr = param(params, count, "REMOTE_ADDR");
    req->user_agent = param(params, count, "HTTP_USER_AGENT");
    req->content_type = param(params, count, "CONTENT_TYPE");
    req->if_match = param(params, count, "HTTP_IF_MATCH");
    req->authorization = param(params, count, "HTTP_AUTHORIZATION");
    req->tenant_slug = param(params, count, "TENANT_SLUG");
    req->server_port = param(params, count, "SERVER_PORT");
    req->listener = param(params, count, "CREWD_LISTENER");
}

int
request_body_length(struct request *req, const struct fcgi_param *params,
    size_t count, size_t *want, bool *exact)
{
    const char *length_text = param(params, count, "CONTENT_LENGTH");
    size_t cap = req->conf->body_max_bytes;
    unsigned long long n;
    char *end;

    *want = cap + 1;
    *exact = false;
    if (length_text[0] == '\0')
        return 0;

    if (length_text[0] < '0' || length_text[0] > '9')
        return request_fail(req, 400, "invalid Content-Length");
    errno = 0;
    n = strtoull(length_text, &end, 10);
    if (errno != 0 || *end != '\0')
        return request_fail(req, 400, "invalid Content-Length");
    if (n > cap)
        return request_fail(req, 413,
            "the body is larger than %zu bytes", cap);
    *want = (size_t)n;
    *exact = true;
    return 0;
}

int
request_fail(struct request *req, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_vset(&req->err, status, fmt, ap);
    va_end(ap);
    return -1;
}

static void
put_json_object(void *object)
{
    json_object_put(object);
}

/*
 * application/json, or application/merge-patch+json (RFC 7396, for a
 * PATCH), with at most a charset parameter that says UTF-8, quoted or
 * not.
 */
static bool
is_json_media_type(const char *content_type)
{
    static const char *const types[] = {
        "application/json", "application/merge-patch+json", NULL
    };
    size_t n = 0;

    for (size_t i = 0; types[i] != NULL && n == 0; i++)
        if (strncasecmp(content_type, types[i], strlen(types[i])) == 0)
            n = strlen(types[i]);
    if (n == 0)
        return false;

    content_type += n;
    while (*content_type == ' ')
        content_type++;
    if (*content_type == '\0')
        return true;
    if (*content_type != ';')
        return false;
    content_type++;
    while (*content_type == ' ')
        content_type++;
    return strcasecmp(content_type, "charset=utf-8") == 0 ||
        strcasecmp(content_type, "charset=\"utf-8\"") == 0;
}

int
request_json_value(struct request *req, struct json_object **out)
{
    struct json_object *value = NULL;

    *out = NULL;
    if (req->body_len == 0)
        return request_fail(req, 400, "a JSON body is required");
    if (!is_json_media_type(req->content_type))
        return request_fail(req, 415,
            "the body must be sent as application/json");

    if (json_parse(req->body, req->body_len, &value, &req->err) < 0)
        return -1;
    arena_defer(req->arena, put_json_object, value);
    *out = value;
    return 0;
}

/* request_json_value, then a 422 unless the value has this type. */
static int
request_json_typed(struct request *req, enum json_type type,
    const char *what, struct json_object **out)
{
    struct json_object *value;

    *out = NULL;
    if (request_json_value(req, &value) < 0)
        return -1;
    if (value == NULL || json_object_get_type(value) != type) {
        error_field(&req->err, "", "the body must be a JSON %s", what);
        return -1;
    }
    *out = value;
    return 0;
}

int
request_json_object(struct request *req, struct json_object **out)
{
    return request_json_typed(req, json_type_object, "object", out);
}

int
request_json_array(struct request *req, struct json_object **out)
{
    return request_json_typed(req, json_type_array, "array", out);
}

/* Decodes s[0..len) ('+' is a space); NULL on bad encoding or a NUL. */
static char *
percent_decode(struct arena *a, const char *s, size_t len)
{
    char *out = arena_alloc(a, len + 1);
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[n++] = ' ';
        } else if (s[i] == '%') {
            int hi, lo;

            if (i + 2 >= len)
                return NULL;
            hi = hex_digit_value(s[i + 1]);
            lo = hex_digit_value(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return NULL;
            out[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
    return out;
}

/*
 * Calls visit(key, value) for each parameter; stops and returns -1 when
 * visit does or on bad encoding.
 */
static int
query_walk(struct request *req,
    int (*visit)(void *ctx, const char *key, const char *value), void *ctx)
{
    const char *p = req->query;

    while (*p != '\0') {
        const char *end = strchr(p, '&');
        const char *eq;
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        char *key, *value;

        if (len > 0) {
            eq = memchr(p, '=', len);
            if (eq == NULL) {
                key = percent_decode(req->arena, p, len);
                value = arena_strdup(req->arena, "");
            } else {
                key = percent_decode(req->arena, p, (size_t)(eq - p));
                value = percent_decode(req->arena, eq + 1,
                    len - (size_t)(eq - p) - 1);
            }
            if (key == NULL || value == NULL)
                return -1;
            if (visit(ctx, key, value) < 0)
                return -1;
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    return 0;
}

struct query_find {
    const char *name;
    const char *value;
};

static int
visit_find(void *ctx, const char *key, const char *value)
{
    struct query_find *find = ctx;

    if (strcmp(key, find->name) == 0 && find->value == NULL)
        find->value = value;
    return 0;
}

const char *
request_query(struct request *req, const char *name)
{
    struct query_find find = { name, NULL };

    if (query_walk(req, visit_find, &find) < 0)
        return NULL;
    return find.value;
}

struct query_check {
    struct request *req;
    const char *const *allowed;
    unsigned seen;      /* bit i: allowed[i] was seen */
};

static int
visit_check(void *ctx, const char *key, const char *value)
{
    struct query_check *check = ctx;

    for (unsigned i = 0; check->allowed[i] != NULL; i++) {
        if (strcmp(key, check->allowed[i]) != 0)
            continue;
        if (check->seen & (1u << i))
            return request_fail(check->req, 400,
                "query parameter %s is given more than once",
                check->allowed[i]);
        check->seen |= 1u << i;
        return 0;
    }
    request_fail(check->req, 400, "unknown query parameter");
    error_field(&check->req->err, key, "is not a parameter of this "
        "endpoint");
    return -1;
}

void
request_last_read(struct request *req)
{
    if (req->tenant != NULL && !req->tenant->audit_reads &&
        (strcmp(req->method, "GET") == 0 ||
         strcmp(req->method, "HEAD") == 0))
        db_end_ahead(req->db);
}

int
request_query_check(struct request *req, const char *const *allowed)
{
    static const char *const none[] = { NULL };
    struct query_check check = { req, allowed != NULL ? allowed : none, 0 };

    if (query_walk(req, visit_check, &check) < 0) {
        if (req->err.status == 0)
            request_fail(req, 400, "the query string is badly encoded");
        return -1;
    }
    return 0;
}

struct json_writer *
response_json(struct request *req, int status)
{
    req->status = status;
    req->response_type = "application/json";
    buf_reset(req->body_out);
    jw_init(&req->json, req->body_out);
    return &req->json;
}

void
response_empty(struct request *req, int status)
{
    req->status = status;
    req->response_type = NULL;
    buf_reset(req->body_out);
}

void
response_header(struct request *req, const char *name, const char *fmt,
    ...)
{
    va_list ap;
    size_t start;

    buf_printf(req->headers, "%s: ", name);
    start = req->headers->len;
    va_start(ap, fmt);
    buf_vprintf(req->headers, fmt, ap);
    va_end(ap);

    /* A header value never ends a line early, whatever went into it. */
    for (size_t i = start; i < req->headers->len; i++)
        if (req->headers->data[i] == '\r' || req->headers->data[i] == '\n')
            req->headers->data[i] = ' ';
    buf_puts(req->headers, "\r\n");
}

static void
write_problem(struct request *req, struct buf *body)
{
    const struct crewd_error *e = &req->err;
    struct json_writer w;

    jw_init(&w, body);
    jw_object_open(&w);
    jw_kv_string(&w, "type", "about:blank");
    jw_kv_string(&w, "title", http_reason(e->status));
    jw_kv_int(&w, "status", e->status);
    jw_kv_string(&w, "detail", e->detail[0] != '\0' ? e->detail
                                                    : http_reason(e->status));
    jw_key(&w, "errors");
    jw_array_open(&w);
    for (int i = 0; i < e->nfields; i++) {
        jw_object_open(&w);
        jw_kv_string(&w, "field", e->fields[i].field);
        jw_kv_string(&w, "message", e->fields[i].message);
        jw_object_close(&w);
    }
    jw_array_close(&w);
    /* More problems were found than errors holds: say how many more. */
    if (e->fields_dropped > 0)
        jw_kv_int(&w, "errors_omitted", e->fields_dropped);
    if (req->request_id[0] != '\0')
        jw_kv_string(&w, "request_id", req->request_id);
    jw_object_close(&w);
}

void
response_serialise(struct request *req, struct buf *out)
{
    int status;
    const char *type;

    if (req->err.status != 0) {
        if (req->err.status < 400 || req->err.status > 599)
            req->err.status = 500;
        status = req->err.status;
        type = "application/problem+json";
        buf_reset(req->body_out);
        write_problem(req, req->body_out);
        if (req->err.retry_after > 0)
            response_header(req, "Retry-After", "%d", req->err.retry_after);
    } else {
        status = req->status != 0 ? req->status : 500;
        type = req->response_type;
    }

    buf_printf(out, "Status: %d %s\r\n", status, http_reason(status));
    if (type != NULL && req->body_out->len > 0)
        buf_printf(out, "Content-Type: %s\r\n", type);
    buf_printf(out, "Content-Length: %zu\r\n", req->body_out->len);
    buf_puts(out, "Cache-Control: no-store\r\n");
    buf_append(out, req->headers->data != NULL ? req->headers->data : "",
        req->headers->len);
    buf_puts(out, "\r\n");
    if (strcmp(req->method, "HEAD") != 0)
        buf_append(out, req->body_out->data != NULL ? req->body_out->data
                                                    : "", req->body_out->len);
}
