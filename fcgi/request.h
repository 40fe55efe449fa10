/*
 * One HTTP request as the worker sees it, and the one response it gets.
 *
 * Handlers have one signature, int handler(struct request *req): they read
 * what they need from req, fill the response through the response_*
 * functions and return 0, or return -1 with req->err set.  The worker then
 * commits or rolls back and sends exactly one response: the handler's, or
 * a problem+json built from req->err.  Everything a handler allocates
 * comes from req->arena and dies with the request.
 */
#ifndef CREWD_REQUEST_H
#define CREWD_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "arena.h"
#include "buf.h"
#include "conf.h"
#include "db.h"
#include "error.h"
#include "json.h"
#include "mongo.h"
#include "tenant.h"
#include "token.h"
#include "uuid.h"

#define REQUEST_PATH_PARAMS 2

struct mongo;
struct route;

struct fcgi_param;

struct request {
    struct arena *arena;
    struct db *db;
    struct mongo *mongo;        /* the worker's MongoDB client */
    const struct crewd_conf *conf;
    const struct token_secret *secret;

    /* What nginx passed.  Never NULL, "" when absent. */
    const char *request_id;
    const char *method;
    const char *path;
    const char *query;
    const char *remote_addr;
    const char *user_agent;
    const char *content_type;
    const char *if_match;
    const char *authorization;
    const char *tenant_slug;    /* "" on the apex host */
    const char *server_port;    /* the port nginx accepted the request on */
    const char *listener;       /* "metrics" on nginx's metrics listener */

    /* The body, NUL-terminated; body_len 0 when there is none. */
    const char *body;
    size_t body_len;

    /* Filled by the route table: canonical ids captured by {id}. */
    const struct route *route;
    char path_ids[REQUEST_PATH_PARAMS][UUID_TEXT_LEN + 1];

    /* Filled before a tenant route's handler runs. */
    const struct tenant *tenant;
    struct token_claims auth;   /* auth.role == ROLE_NONE: anonymous */
    bool audit_reads;           /* the tenant's setting, read in the
                                   request's transaction */
    int refused;                /* 401 or 403 once the user is refused */

    /* The response. */
    int status;
    const char *response_type;  /* Content-Type */
    struct buf *headers;        /* extra header lines, "Name: value\r\n" */
    struct buf *body_out;
    struct json_writer json;
    struct crewd_error err;

    /* A flow execution this request moved to a final status after it
       had run, for the metrics once the response is sent. */
    const char *execution_final;    /* the status; NULL: none */
    double execution_seconds;
};

/* The longest request id kept from nginx; longer ones are cut. */
#define REQUEST_ID_MAX 64

/*
 * Fills what nginx passed (request_id to listener above) from the
 * FastCGI parameters (fcgi_parse_params of fastcgi.h).  An absent
 * parameter is "", a longer request id than REQUEST_ID_MAX is cut, and
 * a missing one is made up.
 * Pure: reads no connection (the fuzz tests call it too).
 */
void request_from_params(struct request *req,
    const struct fcgi_param *params, size_t count);

/*
 * How many body bytes to read, from the parameter CONTENT_LENGTH:
 * *exact says that exactly *want bytes must arrive (fewer: the client
 * went away).
 * Without the parameter (a chunked upload) the body is read to its end:
 * *want is the cap plus one and *exact false.  A length that is not a
 * plain decimal number is a 400, one above conf->body_max_bytes a 413,
 * before anything is allocated from it.
 */
int request_body_length(struct request *req,
    const struct fcgi_param *params, size_t count, size_t *want,
    bool *exact);

/* Sets req->err and returns -1, for "return request_fail(...)". */
int request_fail(struct request *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Parses the body as strict JSON.  No body or another media type than
 * application/json is a 415/400; a syntax error a 400.  The value is
 * released with the arena; the literal null gives *out == NULL.
 */
int request_json_value(struct request *req, struct json_object **out);

/* request_json_value, where a value that is not an object is a 422. */
int request_json_object(struct request *req, struct json_object **out);

/* request_json_value, where a value that is not an array is a 422. */
int request_json_array(struct request *req, struct json_object **out);

/*
 * The decoded value of query parameter name, or NULL.  A parameter given
 * twice, or badly percent-encoded, is answered by request_query_check.
 */
const char *request_query(struct request *req, const char *name);

/*
 * Refuses (400) a query string with a parameter not in allowed (a NULL
 * terminated list), a repeated parameter or bad percent-encoding.
 */
int request_query_check(struct request *req, const char *const *allowed);

/*
 * The handler's next statement is its last, and a read: the transaction
 * ends in the same round trip (db_end_ahead), unless the tenant audits
 * reads, whose entry must be written in that transaction (worker.c).
 */
void request_last_read(struct request *req);

/* Starts a JSON response with this status; write the body with jw_*. */
struct json_writer *response_json(struct request *req, int status);

/* A response without a body (204). */
void response_empty(struct request *req, int status);

/* Adds a header line; name and value must not contain CR or LF. */
void response_header(struct request *req, const char *name,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Writes the whole response (status line, headers, body) to out.  With
 * req->err set, writes the problem+json for it instead.
 */
void response_serialise(struct request *req, struct buf *out);

#endif
