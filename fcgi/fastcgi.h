/*
 * The application side of FastCGI 1.0, as a prefork worker needs it: one
 * connection, one request, one response, then the connection is closed.
 *
 * Everything the peer sends is bounded before it is stored: a record's
 * content is at most 64 KiB by its format, the PARAMS stream at most
 * FCGI_PARAMS_MAX bytes, and the body only what the caller asks for.
 * Reading the request and writing the response each have a deadline, so
 * a peer that stalls costs a worker at most that long.  A record that
 * breaks the protocol (another version, an unknown or unexpected type, a
 * second BEGIN_REQUEST, lengths that overrun their record or stream, a
 * NUL inside a parameter) fails the connection: the caller logs why and
 * closes it, and the worker goes on to the next one.
 *
 * Management records (request id 0) are answered as the specification
 * asks: FCGI_GET_VALUES with the three variables it defines, anything
 * else with FCGI_UNKNOWN_TYPE.  FCGI_KEEP_CONN is not honoured: a prefork
 * worker held by an idle kept connection could serve nobody else.
 */
#ifndef CREWD_FASTCGI_H
#define CREWD_FASTCGI_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "arena.h"

/*
 * The largest PARAMS stream accepted.  nginx sends the request headers
 * (32 KiB at most with large_client_header_buffers 4 8k), the request
 * URI two or three times (8 KiB each at most) and a few fixed
 * parameters: far below this.
 */
#define FCGI_PARAMS_MAX (128 * 1024)

/* Bytes read from the socket at a time. */
#define FCGI_READ_BUFFER (16 * 1024)

/* The largest content of one record, from the record format. */
#define FCGI_CONTENT_MAX 65535

struct fcgi_param {
    const char *name;
    const char *value;      /* NUL-terminated; holds no NUL of its own */
    size_t value_len;
};

struct fcgi_conn {
    int fd;                 /* connected, non-blocking */
    unsigned request_id;
    double deadline;        /* CLOCK_MONOTONIC seconds */
    bool failed;
    char error[160];        /* why it failed, for the log */
    size_t received;        /* bytes read from the peer so far */
    bool timed_out;         /* it failed because the peer stalled */

    /* The request's parameters, allocated from the caller's arena. */
    struct fcgi_param *params;
    size_t nparams;

    /* The body (FCGI_STDIN) as it is read. */
    size_t stdin_left;      /* content of the current record not read */
    size_t stdin_padding;   /* padding after it */
    bool stdin_done;        /* the empty STDIN record arrived */

    unsigned char in[FCGI_READ_BUFFER];
    size_t in_pos, in_len;
    unsigned char params_data[FCGI_PARAMS_MAX];
    size_t params_len;
    unsigned char scratch[FCGI_CONTENT_MAX];
};

/*
 * Starts a connection: fd must be non-blocking; the request must arrive
 * within timeout seconds.  c is large (about 200 KiB): keep one per
 * process.
 */
void fcgi_conn_start(struct fcgi_conn *c, int fd, double timeout);

/*
 * Reads FCGI_BEGIN_REQUEST (role responder) and the whole PARAMS stream.
 * Returns 0, or -1 with c->error saying why the connection must be
 * closed.
 */
int fcgi_read_head(struct fcgi_conn *c, struct arena *a);

/* The value of parameter name, or NULL; the first one if repeated. */
const char *fcgi_param(const struct fcgi_conn *c, const char *name);

/* The first value of name among params, or NULL. */
const char *fcgi_params_find(const struct fcgi_param *params, size_t count,
    const char *name);

/*
 * Reads up to n bytes of the body.  Returns how many arrived before the
 * end of the body (fewer than n only at its end), or -1 with c->error
 * set when the connection failed.
 */
ssize_t fcgi_read_stdin(struct fcgi_conn *c, char *buf, size_t n);

/*
 * Sends data (a CGI response: headers, blank line, body) as FCGI_STDOUT
 * records, then the end of the stream and FCGI_END_REQUEST, within
 * timeout seconds.  Returns 0, or -1 with c->error set (the peer went
 * away or stalled, or the connection had failed before).  Never raises
 * SIGPIPE.
 */
int fcgi_write_response(struct fcgi_conn *c, const void *data, size_t len,
    double timeout);

/*
 * Parses a PARAMS stream (name-value pairs, each length one byte, or four
 * with the high bit set) into an array from a.  Returns 0, or -1 when a
 * length overruns the stream, a name is empty, or a name or value holds
 * a NUL.  Apart from the socket code so tests and fuzzers can reach it.
 */
int fcgi_parse_params(struct arena *a, const unsigned char *data,
    size_t len, struct fcgi_param **params, size_t *count);

#endif
