#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fastcgi.h"

/* From the FastCGI 1.0 specification. */
#define FCGI_HEADER_LEN 8
#define FCGI_VERSION_1 1

#define FCGI_BEGIN_REQUEST 1
#define FCGI_ABORT_REQUEST 2
#define FCGI_END_REQUEST 3
#define FCGI_PARAMS 4
#define FCGI_STDIN 5
#define FCGI_STDOUT 6
#define FCGI_GET_VALUES 9
#define FCGI_GET_VALUES_RESULT 10
#define FCGI_UNKNOWN_TYPE 11

#define FCGI_RESPONDER 1

#define FCGI_REQUEST_COMPLETE 0
#define FCGI_UNKNOWN_ROLE 3

/*
 * Response content per FCGI_STDOUT record: a multiple of 8 below the
 * 65535 limit, so no record needs padding.
 */
#define STDOUT_CHUNK 65528

/* STDOUT records handed to the kernel in one sendmsg(). */
#define WRITE_BATCH 32

struct record {
    unsigned type;
    unsigned request_id;
    size_t length;
    size_t padding;
};

static double
now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Marks the connection failed, keeping the first reason; returns -1. */
static int
conn_fail(struct fcgi_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
conn_fail(struct fcgi_conn *c, const char *fmt, ...)
{
    va_list ap;

    if (!c->failed) {
        va_start(ap, fmt);
        vsnprintf(c->error, sizeof(c->error), fmt, ap);
        va_end(ap);
    }
    c->failed = true;
    return -1;
}

void
fcgi_conn_start(struct fcgi_conn *c, int fd, double timeout)
{
    c->fd = fd;
    c->request_id = 0;
    c->deadline = now_seconds() + timeout;
    c->failed = false;
    c->error[0] = '\0';
    c->received = 0;
    c->timed_out = false;
    c->params = NULL;
    c->nparams = 0;
    c->stdin_left = 0;
    c->stdin_padding = 0;
    c->stdin_done = false;
    c->in_pos = 0;
    c->in_len = 0;
    c->params_len = 0;
}

/*
 * Waits until the socket is ready or the deadline passes.  A signal
 * (SIGTERM asks for a graceful stop) does not end the wait: the request
 * in flight is still served.
 */
static int
wait_ready(struct fcgi_conn *c, short events)
{
    for (;;) {
        struct pollfd pfd = { .fd = c->fd, .events = events };
        double left = c->deadline - now_seconds();
        int n;

        if (left <= 0) {
            c->timed_out = true;
            return conn_fail(c, "the peer stalled past the deadline");
        }
        n = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (n > 0)
            return 0;   /* an error or hang-up shows in the next call */
        if (n < 0 && errno != EINTR)
            return conn_fail(c, "poll: %s", strerror(errno));
    }
}

/* Reads what the socket has into the input buffer. */
static int
fill(struct fcgi_conn *c)
{
    if (c->in_pos > 0) {
        memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
        c->in_len -= c->in_pos;
        c->in_pos = 0;
    }

    for (;;) {
        ssize_t n = read(c->fd, c->in + c->in_len,
            sizeof(c->in) - c->in_len);

        if (n > 0) {
            c->in_len += (size_t)n;
            c->received += (size_t)n;
            return 0;
        }
        if (n == 0 && c->received == 0)
            return conn_fail(c, "the peer closed the connection without "
                "sending anything");
        if (n == 0)
            return conn_fail(c, "the peer closed the connection "
                "mid-request");
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return conn_fail(c, "read: %s", strerror(errno));
        if (wait_ready(c, POLLIN) < 0)
            return -1;
    }
}

/* Reads exactly n bytes into dst; a NULL dst drops them. */
static int
read_bytes(struct fcgi_conn *c, void *dst, size_t n)
{
    unsigned char *out = dst;

    while (n > 0) {
        size_t have = c->in_len - c->in_pos;
        size_t take;

        if (have == 0) {
            if (fill(c) < 0)
                return -1;
            continue;
        }
        take = have < n ? have : n;
        if (out != NULL) {
            memcpy(out, c->in + c->in_pos, take);
            out += take;
        }
        c->in_pos += take;
        n -= take;
    }
    return 0;
}

static int
read_record(struct fcgi_conn *c, struct record *r)
{
    unsigned char h[FCGI_HEADER_LEN];

    if (read_bytes(c, h, sizeof(h)) < 0)
        return -1;
    if (h[0] != FCGI_VERSION_1)
        return conn_fail(c, "a record of FastCGI version %u", h[0]);
    r->type = h[1];
    r->request_id = (unsigned)h[2] << 8 | h[3];
    r->length = (size_t)h[4] << 8 | h[5];
    r->padding = h[6];
    return 0;
}

static void
put_header(unsigned char h[FCGI_HEADER_LEN], unsigned type,
    unsigned request_id, size_t length)
{
    h[0] = FCGI_VERSION_1;
    h[1] = (unsigned char)type;
    h[2] = (unsigned char)(request_id >> 8);
    h[3] = (unsigned char)request_id;
    h[4] = (unsigned char)(length >> 8);
    h[5] = (unsigned char)length;
    h[6] = 0;
    h[7] = 0;
}

/* Sends every byte of iov[0..n), within the deadline. */
static int
send_iov(struct fcgi_conn *c, struct iovec *iov, int n)
{
    while (n > 0) {
        struct msghdr msg;
        ssize_t sent;

        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = iov;
        msg.msg_iovlen = (size_t)n;
        sent = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return conn_fail(c, "write: %s", strerror(errno));
            if (wait_ready(c, POLLOUT) < 0)
                return -1;
            continue;
        }

        while (n > 0 && (size_t)sent >= iov->iov_len) {
            sent -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + sent;
            iov->iov_len -= (size_t)sent;
        }
    }
    return 0;
}

static int
send_record(struct fcgi_conn *c, unsigned type, unsigned request_id,
    const void *content, size_t length)
{
    unsigned char h[FCGI_HEADER_LEN];
    struct iovec iov[2] = {
        { h, sizeof(h) }, { (void *)content, length }
    };

    put_header(h, type, request_id, length);
    return send_iov(c, iov, 2);
}

static void
put_end_request(unsigned char body[8], unsigned protocol_status)
{
    memset(body, 0, 8);         /* application status 0 */
    body[4] = (unsigned char)protocol_status;
}

/* A length of a name-value pair: one byte, or four with the high bit. */
static int
read_length(const unsigned char *d, size_t len, size_t *pos, size_t *out)
{
    if (*pos >= len)
        return -1;
    if (d[*pos] < 0x80) {
        *out = d[(*pos)++];
        return 0;
    }
    if (len - *pos < 4)
        return -1;
    *out = (size_t)(d[*pos] & 0x7f) << 24 | (size_t)d[*pos + 1] << 16 |
        (size_t)d[*pos + 2] << 8 | d[*pos + 3];
    *pos += 4;
    return 0;
}

/*
 * The next pair of d[*pos..len): 1, or 0 at the end, or -1 when its
 * lengths overrun what is left.
 */
static int
next_pair(const unsigned char *d, size_t len, size_t *pos,
    const unsigned char **name, size_t *name_len,
    const unsigned char **value, size_t *value_len)
{
    if (*pos == len)
        return 0;
    if (read_length(d, len, pos, name_len) < 0 ||
        read_length(d, len, pos, value_len) < 0 ||
        *name_len > len - *pos || *value_len > len - *pos - *name_len)
        return -1;
    *name = d + *pos;
    *value = d + *pos + *name_len;
    *pos += *name_len + *value_len;
    return 1;
}

int
fcgi_parse_params(struct arena *a, const unsigned char *data, size_t len,
    struct fcgi_param **params, size_t *count)
{
    const unsigned char *name, *value;
    size_t name_len, value_len, pos = 0, n = 0;
    struct fcgi_param *out;
    int rc;

    *params = NULL;
    *count = 0;

    /* First validate and count, so the array is allocated once. */
    while ((rc = next_pair(data, len, &pos, &name, &name_len, &value,
                &value_len)) > 0) {
        if (name_len == 0 || memchr(name, '\0', name_len) != NULL ||
            memchr(value, '\0', value_len) != NULL)
            return -1;
        n++;
    }
    if (rc < 0)
        return -1;

    out = arena_alloc(a, (n > 0 ? n : 1) * sizeof(*out));
    pos = 0;
    for (size_t i = 0; i < n; i++) {
        next_pair(data, len, &pos, &name, &name_len, &value, &value_len);
        out[i].name = arena_strndup(a, (const char *)name, name_len);
        out[i].value = arena_strndup(a, (const char *)value, value_len);
        out[i].value_len = value_len;
    }
    *params = out;
    *count = n;
    return 0;
}

/*
 * FCGI_GET_VALUES: each of the specification's three variables asked
 * for is answered once; the answer is small and fixed in size.
 */
static int
answer_get_values(struct fcgi_conn *c, const unsigned char *content,
    size_t length)
{
    static const struct {
        const char *name;
        const char *value;
    } known[] = {
        { "FCGI_MAX_CONNS", "1" },
        { "FCGI_MAX_REQS", "1" },
        { "FCGI_MPXS_CONNS", "0" },
    };
    unsigned char reply[3 * (2 + 15 + 1)];
    const unsigned char *name, *value;
    size_t name_len, value_len, pos = 0, used = 0;
    unsigned answered = 0;
    int rc;

    while ((rc = next_pair(content, length, &pos, &name, &name_len, &value,
                &value_len)) > 0) {
        for (unsigned i = 0; i < 3; i++) {
            size_t n = strlen(known[i].name);

            if (name_len != n || memcmp(name, known[i].name, n) != 0 ||
                (answered & 1u << i))
                continue;
            answered |= 1u << i;
            reply[used++] = (unsigned char)n;
            reply[used++] = 1;
            memcpy(reply + used, known[i].name, n);
            used += n;
            reply[used++] = (unsigned char)known[i].value[0];
        }
    }
    if (rc < 0)
        return conn_fail(c, "a malformed FCGI_GET_VALUES record");
    return send_record(c, FCGI_GET_VALUES_RESULT, 0, reply, used);
}

/* A record of request id 0: read it whole and answer it. */
static int
management_record(struct fcgi_conn *c, const struct record *r)
{
    unsigned char body[8] = { 0 };

    if (read_bytes(c, c->scratch, r->length) < 0 ||
        read_bytes(c, NULL, r->padding) < 0)
        return -1;
    if (r->type == FCGI_GET_VALUES)
        return answer_get_values(c, c->scratch, r->length);

    body[0] = (unsigned char)r->type;
    return send_record(c, FCGI_UNKNOWN_TYPE, 0, body, sizeof(body));
}

static int
begin_record(struct fcgi_conn *c, const struct record *r)
{
    unsigned char body[8];
    unsigned role;

    if (r->length != sizeof(body))
        return conn_fail(c, "a BEGIN_REQUEST record of %zu bytes",
            r->length);
    if (read_bytes(c, body, sizeof(body)) < 0 ||
        read_bytes(c, NULL, r->padding) < 0)
        return -1;

    role = (unsigned)body[0] << 8 | body[1];
    if (role != FCGI_RESPONDER) {
        unsigned char end[8];

        put_end_request(end, FCGI_UNKNOWN_ROLE);
        send_record(c, FCGI_END_REQUEST, r->request_id, end, sizeof(end));
        return conn_fail(c, "a request for role %u (only the responder "
            "role is served)", role);
    }
    c->request_id = r->request_id;
    return 0;
}

/* A record of the request (not id 0) that is not the one expected. */
static int
unexpected_record(struct fcgi_conn *c, const struct record *r,
    const char *while_doing)
{
    if (r->request_id != c->request_id)
        return conn_fail(c, "a record of request %u on the connection of "
            "request %u (no multiplexing)", r->request_id, c->request_id);
    if (r->type == FCGI_BEGIN_REQUEST)
        return conn_fail(c, "a second BEGIN_REQUEST");
    if (r->type == FCGI_ABORT_REQUEST)
        return conn_fail(c, "the web server aborted the request");
    return conn_fail(c, "a record of type %u %s", r->type, while_doing);
}

int
fcgi_read_head(struct fcgi_conn *c, struct arena *a)
{
    struct record r;

    if (c->failed)
        return -1;

    for (;;) {
        if (read_record(c, &r) < 0)
            return -1;
        if (r.request_id == 0) {
            if (management_record(c, &r) < 0)
                return -1;
            continue;
        }

        if (c->request_id == 0) {
            if (r.type != FCGI_BEGIN_REQUEST)
                return conn_fail(c, "a record of type %u before "
                    "BEGIN_REQUEST", r.type);
            if (begin_record(c, &r) < 0)
                return -1;
            continue;
        }

        if (r.request_id != c->request_id || r.type != FCGI_PARAMS)
            return unexpected_record(c, &r, "among the parameters");

        if (r.length == 0)
            break;
        if (r.length > sizeof(c->params_data) - c->params_len)
            return conn_fail(c, "parameters longer than %d bytes",
                FCGI_PARAMS_MAX);
        if (read_bytes(c, c->params_data + c->params_len, r.length) < 0 ||
            read_bytes(c, NULL, r.padding) < 0)
            return -1;
        c->params_len += r.length;
    }

    if (read_bytes(c, NULL, r.padding) < 0)
        return -1;
    if (fcgi_parse_params(a, c->params_data, c->params_len, &c->params,
            &c->nparams) < 0)
        return conn_fail(c, "malformed parameters (a length overruns the "
            "stream, an empty name or a NUL byte)");
    return 0;
}

const char *
fcgi_params_find(const struct fcgi_param *params, size_t count,
    const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(params[i].name, name) == 0)
            return params[i].value;
    return NULL;
}

const char *
fcgi_param(const struct fcgi_conn *c, const char *name)
{
    return fcgi_params_find(c->params, c->nparams, name);
}

ssize_t
fcgi_read_stdin(struct fcgi_conn *c, char *buf, size_t n)
{
    size_t got = 0;
    struct record r;

    if (c->failed)
        return -1;

    while (got < n) {
        if (c->stdin_left > 0) {
            size_t take = n - got < c->stdin_left ? n - got : c->stdin_left;

            if (read_bytes(c, buf + got, take) < 0)
                return -1;
            got += take;
            c->stdin_left -= take;
            if (c->stdin_left == 0 &&
                read_bytes(c, NULL, c->stdin_padding) < 0)
                return -1;
            continue;
        }
        if (c->stdin_done)
            break;

        if (read_record(c, &r) < 0)
            return -1;
        if (r.request_id == 0) {
            if (management_record(c, &r) < 0)
                return -1;
            continue;
        }
        if (r.request_id != c->request_id || r.type != FCGI_STDIN)
            return unexpected_record(c, &r, "in the body");

        if (r.length == 0) {
            if (read_bytes(c, NULL, r.padding) < 0)
                return -1;
            c->stdin_done = true;
            continue;
        }
        c->stdin_left = r.length;
        c->stdin_padding = r.padding;
    }
    return (ssize_t)got;
}

int
fcgi_write_response(struct fcgi_conn *c, const void *data, size_t len,
    double timeout)
{
    unsigned char heads[WRITE_BATCH][FCGI_HEADER_LEN];
    unsigned char tail[3 * FCGI_HEADER_LEN];
    struct iovec iov[2 * WRITE_BATCH + 1];
    const unsigned char *p = data;

    if (c->failed)
        return -1;
    c->deadline = now_seconds() + timeout;

    /* The end of FCGI_STDOUT, then FCGI_END_REQUEST. */
    put_header(tail, FCGI_STDOUT, c->request_id, 0);
    put_header(tail + FCGI_HEADER_LEN, FCGI_END_REQUEST, c->request_id, 8);
    put_end_request(tail + 2 * FCGI_HEADER_LEN, FCGI_REQUEST_COMPLETE);

    do {
        int n = 0;

        for (int k = 0; k < WRITE_BATCH && len > 0; k++) {
            size_t part = len < STDOUT_CHUNK ? len : STDOUT_CHUNK;

            put_header(heads[k], FCGI_STDOUT, c->request_id, part);
            iov[n++] = (struct iovec){ heads[k], FCGI_HEADER_LEN };
            iov[n++] = (struct iovec){ (void *)p, part };
            p += part;
            len -= part;
        }
        if (len == 0)
            iov[n++] = (struct iovec){ tail, sizeof(tail) };
        if (send_iov(c, iov, n) < 0)
            return -1;
    } while (len > 0);
    return 0;
}
