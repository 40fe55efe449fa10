#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "buf.h"
#include "fastcgi.h"
#include "unit.h"

/*
 * Each test writes what a peer would send into one end of a socket pair
 * (small enough to sit in the socket's buffer), and reads it with the
 * FastCGI layer on the other end.
 */

#define BEGIN 1
#define ABORT 2
#define END 3
#define PARAMS 4
#define STDIN 5
#define STDOUT 6
#define GET_VALUES 9
#define GET_VALUES_RESULT 10
#define UNKNOWN_TYPE 11

static struct fcgi_conn *conn;
static struct arena *arena;
static int peer = -1;

static void
start(double timeout)
{
    int fds[2];

    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    if (conn == NULL)
        conn = xmalloc(sizeof(*conn));
    if (arena == NULL)
        arena = arena_new(4096);
    fcgi_conn_start(conn, fds[0], timeout);
    peer = fds[1];
}

static void
finish(void)
{
    close(conn->fd);
    close(peer);
    arena_reset(arena);
}

static void
record(struct buf *b, unsigned version, unsigned type, unsigned id,
    const void *content, size_t len, unsigned padding)
{
    unsigned char h[8] = {
        (unsigned char)version, (unsigned char)type,
        (unsigned char)(id >> 8), (unsigned char)id,
        (unsigned char)(len >> 8), (unsigned char)len,
        (unsigned char)padding, 0
    };

    buf_append(b, h, sizeof(h));
    buf_append(b, content, len);
    for (unsigned i = 0; i < padding; i++)
        buf_putc(b, 'p');
}

static void
begin(struct buf *b, unsigned id, unsigned role)
{
    unsigned char body[8] = {
        (unsigned char)(role >> 8), (unsigned char)role, 0
    };

    record(b, 1, BEGIN, id, body, sizeof(body), 0);
}

static void
put_length(struct buf *b, size_t n, bool long_form)
{
    if (n < 128 && !long_form) {
        buf_putc(b, (char)n);
        return;
    }
    buf_putc(b, (char)(0x80 | (n >> 24)));
    buf_putc(b, (char)(n >> 16));
    buf_putc(b, (char)(n >> 8));
    buf_putc(b, (char)n);
}

static void
pair(struct buf *b, const char *name, const char *value)
{
    put_length(b, strlen(name), false);
    put_length(b, strlen(value), false);
    buf_puts(b, name);
    buf_puts(b, value);
}

/* A whole request of id 1 as nginx sends it. */
static void
request(struct buf *b, const char *content_length, const char *body)
{
    struct buf p = BUF_INIT;

    begin(b, 1, 1);
    pair(&p, "REQUEST_METHOD", "POST");
    pair(&p, "DOCUMENT_URI", "/api/v1/agents");
    pair(&p, "CONTENT_LENGTH", content_length);
    record(b, 1, PARAMS, 1, p.data, p.len, 3);
    record(b, 1, PARAMS, 1, NULL, 0, 0);
    if (body[0] != '\0')
        record(b, 1, STDIN, 1, body, strlen(body), 5);
    record(b, 1, STDIN, 1, NULL, 0, 0);
    buf_free(&p);
}

static void
peer_sends(struct buf *b, bool then_close)
{
    CU_ASSERT_FATAL(write(peer, b->data, b->len) == (ssize_t)b->len);
    if (then_close)
        shutdown(peer, SHUT_WR);
    buf_free(b);
}

/* Everything the peer received, once the conn end is closed. */
static size_t
peer_reads(unsigned char *out, size_t cap)
{
    size_t got = 0;
    ssize_t n;

    shutdown(conn->fd, SHUT_WR);
    while (got < cap && (n = read(peer, out + got, cap - got)) > 0)
        got += (size_t)n;
    return got;
}

static void
test_reads_a_request_as_nginx_sends_it(void)
{
    struct buf b = BUF_INIT;
    char body[32];

    start(5);
    request(&b, "11", "{\"a\":\"b c\"}");
    peer_sends(&b, true);

    CU_ASSERT_EQUAL(fcgi_read_head(conn, arena), 0);
    CU_ASSERT_EQUAL(conn->nparams, 3);
    CU_ASSERT_STRING_EQUAL(fcgi_param(conn, "REQUEST_METHOD"), "POST");
    CU_ASSERT_STRING_EQUAL(fcgi_param(conn, "DOCUMENT_URI"),
        "/api/v1/agents");
    CU_ASSERT_PTR_NULL(fcgi_param(conn, "QUERY_STRING"));

    CU_ASSERT_EQUAL(fcgi_read_stdin(conn, body, 11), 11);
    CU_ASSERT_EQUAL(memcmp(body, "{\"a\":\"b c\"}", 11), 0);
    CU_ASSERT_EQUAL(fcgi_read_stdin(conn, body, sizeof(body)), 0);
    CU_ASSERT_FALSE(conn->failed);
    finish();
}

static void
test_a_short_body_reads_short(void)
{
    struct buf b = BUF_INIT;
    char body[100];

    start(5);
    request(&b, "100", "{}");
    peer_sends(&b, true);

    CU_ASSERT_EQUAL(fcgi_read_head(conn, arena), 0);
    CU_ASSERT_EQUAL(fcgi_read_stdin(conn, body, 100), 2);
    finish();
}

static void
test_parameters_may_span_records_and_use_long_lengths(void)
{
    struct buf b = BUF_INIT, p = BUF_INIT;
    char *big = malloc(70000);

    memset(big, 'v', 69999);
    big[69999] = '\0';
    put_length(&p, 4, true);
    put_length(&p, 69999, false);
    buf_puts(&p, "LONG");
    buf_puts(&p, big);
    pair(&p, "SHORT", "");

    start(5);
    begin(&b, 7, 1);
    record(&b, 1, PARAMS, 7, p.data, 30000, 0);
    record(&b, 1, PARAMS, 7, p.data + 30000, p.len - 30000, 7);
    record(&b, 1, PARAMS, 7, NULL, 0, 0);
    peer_sends(&b, true);

    CU_ASSERT_EQUAL(fcgi_read_head(conn, arena), 0);
    CU_ASSERT_EQUAL(conn->request_id, 7);
    CU_ASSERT_STRING_EQUAL(fcgi_param(conn, "LONG"), big);
    CU_ASSERT_STRING_EQUAL(fcgi_param(conn, "SHORT"), "");
    buf_free(&p);
    free(big);
    finish();
}

/* Sends b, then expects fcgi_read_head to fail with this reason. */
static void
expect_head_refused(struct buf *b, const char *reason)
{
    start(5);
    peer_sends(b, true);
    CU_ASSERT_EQUAL(fcgi_read_head(conn, arena), -1);
    CU_ASSERT_TRUE(conn->failed);
    if (strstr(conn->error, reason) == NULL)
        fprintf(stderr, "\n  error \"%s\" lacks \"%s\"\n", conn->error,
            reason);
    CU_ASSERT_PTR_NOT_NULL(strstr(conn->error, reason));
    finish();
}

static void
test_another_version_is_refused(void)
{
    struct buf b = BUF_INIT;
    unsigned char body[8] = { 0, 1 };

    record(&b, 2, BEGIN, 1, body, 8, 0);
    expect_head_refused(&b, "version 2");
}

static void
test_records_before_begin_request_are_refused(void)
{
    struct buf b = BUF_INIT;

    record(&b, 1, PARAMS, 1, NULL, 0, 0);
    expect_head_refused(&b, "before BEGIN_REQUEST");

    record(&b, 1, 200, 1, "xyz", 3, 0);
    expect_head_refused(&b, "type 200 before BEGIN_REQUEST");
}

static void
test_a_begin_request_of_the_wrong_size_is_refused(void)
{
    struct buf b = BUF_INIT;

    record(&b, 1, BEGIN, 1, "12345678901", 11, 0);
    expect_head_refused(&b, "BEGIN_REQUEST record of 11 bytes");
}

static void
test_another_role_is_answered_and_refused(void)
{
    struct buf b = BUF_INIT;
    unsigned char out[64];

    begin(&b, 3, 2);        /* authorizer */
    start(5);
    peer_sends(&b, true);
    CU_ASSERT_EQUAL(fcgi_read_head(conn, arena), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(conn->error, "role 2"));
    CU_ASSERT_EQUAL(peer_reads(out, sizeof(out)), 16);
    CU_ASSERT_EQUAL(out[1], END);
    CU_ASSERT_EQUAL(out[3], 3);
    CU_ASSERT_EQUAL(out[8 + 4], 3);     /* FCGI_UNKNOWN_ROLE */
    finish();
}

static void
test_a_second_begin_request_is_refused(void)
{
    struct buf b = BUF_INIT;

    begin(&b, 1, 1);
    begin(&b, 1, 1);
    expect_head_refused(&b, "second BEGIN_REQUEST");

    begin(&b, 1, 1);
    begin(&b, 2, 1);
    expect_head_refused(&b, "request 2 on the connection of request 1");
}

static void
test_unexpected_records_among_the_parameters_are_refused(void)
{
    struct buf b = BUF_INIT;

    begin(&b, 1, 1);
    record(&b, 1, STDIN, 1, "x", 1, 0);
    expect_head_refused(&b, "type 5 among the parameters");

    begin(&b, 1, 1);
    record(&b, 1, ABORT, 1, NULL, 0, 0);
    expect_head_refused(&b, "aborted");

    begin(&b, 1, 1);
    record(&b, 1, 77, 1, "abc", 3, 0);
    expect_head_refused(&b, "type 77");
}

static void
test_a_record_cut_short_is_refused(void)
{
    struct buf b = BUF_INIT;

    buf_append(&b, "\x01\x01\x00", 3);
    expect_head_refused(&b, "closed the connection mid-request");

    begin(&b, 1, 1);
    buf_append(&b, "\x01\x04\x00\x01\x03\xe8\x00\x00" "0123456789", 18);
    expect_head_refused(&b, "mid-request");
}

static void
test_nothing_at_all_is_told_apart(void)
{
    struct buf b = BUF_INIT;

    expect_head_refused(&b, "without sending anything");
    CU_ASSERT_EQUAL(conn->received, 0);
}

static void
test_a_stalled_peer_is_dropped_at_the_deadline(void)
{
    struct buf b = BUF_INIT;
    struct timespec t0, t1;
    double took;

    start(0.3);
    begin(&b, 1, 1);
    buf_append(&b, "\x01\x04\x00", 3);
    peer_sends(&b, false);      /* and keeps the connection open */

    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT_EQUAL(fcgi_read_head(conn, arena), -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    took = (double)(t1.tv_sec - t0.tv_sec) +
        (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CU_ASSERT_TRUE(conn->timed_out);
    CU_ASSERT_PTR_NOT_NULL(strstr(conn->error, "stalled"));
    CU_ASSERT_TRUE(took >= 0.25 && took < 2);
    finish();
}

static void
test_parameters_over_the_cap_are_refused_unread(void)
{
    struct buf b = BUF_INIT;
    static char chunk[60000];

    memset(chunk, 'x', sizeof(chunk));
    begin(&b, 1, 1);
    for (int i = 0; i < 3; i++)
        record(&b, 1, PARAMS, 1, chunk, sizeof(chunk), 0);

    /* 180 kB does not fit a socket buffer: send what fits, then see. */
    start(5);
    fcntl(peer, F_SETFL, fcntl(peer, F_GETFL) | O_NONBLOCK);
    CU_ASSERT(write(peer, b.data, b.len) > 0);
    buf_free(&b);
    CU_ASSERT_EQUAL(fcgi_read_head(conn, arena), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(conn->error, "longer than 131072"));
    CU_ASSERT_TRUE(conn->received <= FCGI_PARAMS_MAX + 2 * 65536);
    finish();
}

static void
test_malformed_parameter_streams_are_refused(void)
{
    static const struct {
        const char *what;
        const char *data;
        size_t len;
    } cases[] = {
        { "name overruns", "\x05\x01" "ab", 4 },
        { "value overruns", "\x01\x05" "ab", 4 },
        { "long length cut", "\x80\x00", 2 },
        { "huge lengths", "\xff\xff\xff\xff\xff\xff\xff\xff" "ab", 10 },
        { "huge name, small value", "\xff\xff\xff\xf0\x10" "ab", 7 },
        { "value length missing", "\x01", 1 },
        { "empty name", "\x00\x01" "v", 3 },
        { "NUL in a name", "\x02\x01" "a\0v", 5 },
        { "NUL in a value", "\x01\x02" "na\0", 5 },
    };
    struct fcgi_param *params;
    size_t n;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = fcgi_parse_params(arena,
            (const unsigned char *)cases[i].data, cases[i].len, &params, &n);

        if (rc != -1)
            fprintf(stderr, "\n  accepted: %s\n", cases[i].what);
        CU_ASSERT_EQUAL(rc, -1);
    }
    CU_ASSERT_EQUAL(fcgi_parse_params(arena, (const unsigned char *)"", 0,
        &params, &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    arena_reset(arena);
}

static void
test_a_parameter_stream_that_overruns_is_refused(void)
{
    struct buf b = BUF_INIT;

    begin(&b, 1, 1);
    record(&b, 1, PARAMS, 1, "\x7f\x05" "abc", 5, 0);
    record(&b, 1, PARAMS, 1, NULL, 0, 0);
    expect_head_refused(&b, "malformed parameters");
}

static void
test_get_values_is_answered_once_per_variable(void)
{
    struct buf b = BUF_INIT, p = BUF_INIT;
    unsigned char out[256];
    size_t n;

    /* libfcgi overflowed a 64-byte stack buffer on repeated names. */
    for (int i = 0; i < 40; i++)
        pair(&p, "FCGI_MAX_CONNS", "");
    pair(&p, "FCGI_MPXS_CONNS", "");
    pair(&p, "SOMETHING_ELSE", "");
    record(&b, 1, GET_VALUES, 0, p.data, p.len, 0);
    buf_free(&p);

    start(5);
    peer_sends(&b, true);
    CU_ASSERT_EQUAL(fcgi_read_head(conn, arena), -1);   /* then EOF */
    n = peer_reads(out, sizeof(out));
    CU_ASSERT_EQUAL(n, 8 + 17 + 18);
    CU_ASSERT_EQUAL(out[1], GET_VALUES_RESULT);
    CU_ASSERT_EQUAL(out[5], 17 + 18);
    CU_ASSERT_EQUAL(memcmp(out + 8, "\x0e\x01" "FCGI_MAX_CONNS1"
        "\x0f\x01" "FCGI_MPXS_CONNS0", 35), 0);
    finish();
}

static void
test_an_unknown_management_record_is_answered(void)
{
    struct buf b = BUF_INIT;
    unsigned char out[64];
    char body[4];

    record(&b, 1, 42, 0, "whatever", 8, 0);
    request(&b, "", "");
    start(5);
    peer_sends(&b, true);
    CU_ASSERT_EQUAL(fcgi_read_head(conn, arena), 0);
    CU_ASSERT_EQUAL(fcgi_read_stdin(conn, body, sizeof(body)), 0);
    CU_ASSERT_EQUAL(peer_reads(out, sizeof(out)), 16);
    CU_ASSERT_EQUAL(out[1], UNKNOWN_TYPE);
    CU_ASSERT_EQUAL(out[8], 42);
    finish();
}

static void
test_unexpected_records_in_the_body_fail_the_read(void)
{
    struct buf b = BUF_INIT, p = BUF_INIT;
    char body[16];

    pair(&p, "CONTENT_LENGTH", "4");
    start(5);
    begin(&b, 1, 1);
    record(&b, 1, PARAMS, 1, p.data, p.len, 0);
    record(&b, 1, PARAMS, 1, NULL, 0, 0);
    record(&b, 1, STDIN, 1, "ab", 2, 0);
    begin(&b, 1, 1);
    peer_sends(&b, true);
    buf_free(&p);

    CU_ASSERT_EQUAL(fcgi_read_head(conn, arena), 0);
    CU_ASSERT_EQUAL(fcgi_read_stdin(conn, body, 4), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(conn->error, "second BEGIN_REQUEST"));
    finish();
}

static void
test_a_response_is_sent_as_records_and_ends_the_request(void)
{
    struct buf b = BUF_INIT;
    size_t len = 150000, at = 0, content = 0;
    char *data = malloc(len);
    unsigned char *out = malloc(len + 1024);
    size_t got;
    int records = 0;

    for (size_t i = 0; i < len; i++)
        data[i] = (char)('a' + i % 26);
    start(5);
    request(&b, "", "");
    peer_sends(&b, true);
    CU_ASSERT_EQUAL(fcgi_read_head(conn, arena), 0);
    CU_ASSERT_EQUAL(fcgi_write_response(conn, data, len, 5), 0);
    got = peer_reads(out, len + 1024);

    /* STDOUT records of at most 65535 bytes, then the empty one. */
    while (at + 8 <= got && out[at + 1] == STDOUT) {
        size_t n = (size_t)out[at + 4] << 8 | out[at + 5];

        if (n == 0)
            break;
        CU_ASSERT_EQUAL(memcmp(out + at + 8, data + content, n), 0);
        content += n;
        at += 8 + n + out[at + 6];
        records++;
    }
    CU_ASSERT_EQUAL(content, len);
    CU_ASSERT_EQUAL(records, 3);
    CU_ASSERT_EQUAL(got, at + 8 + 16);
    CU_ASSERT_EQUAL(out[at + 8 + 1], END);
    CU_ASSERT_EQUAL(out[at + 8 + 3], 1);
    free(data);
    free(out);
    finish();
}

static void
test_a_peer_gone_before_the_response_is_an_error_not_a_signal(void)
{
    struct buf b = BUF_INIT;
    static char data[300000];

    start(5);
    request(&b, "", "");
    peer_sends(&b, true);
    CU_ASSERT_EQUAL(fcgi_read_head(conn, arena), 0);
    close(peer);
    peer = open("/dev/null", O_RDONLY);

    /* SIGPIPE is not ignored in this process: MSG_NOSIGNAL matters. */
    CU_ASSERT_EQUAL(fcgi_write_response(conn, data, sizeof(data), 5), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(conn->error, "write"));
    finish();
}

void
register_fastcgi_tests(void)
{
    CU_pSuite s = unit_suite("fastcgi");

    unit_test(s, "a request as nginx sends it is read",
        test_reads_a_request_as_nginx_sends_it);
    unit_test(s, "a body shorter than announced reads short",
        test_a_short_body_reads_short);
    unit_test(s, "parameters span records and use long lengths",
        test_parameters_may_span_records_and_use_long_lengths);
    unit_test(s, "another protocol version is refused",
        test_another_version_is_refused);
    unit_test(s, "records before BEGIN_REQUEST are refused",
        test_records_before_begin_request_are_refused);
    unit_test(s, "a BEGIN_REQUEST of the wrong size is refused",
        test_a_begin_request_of_the_wrong_size_is_refused);
    unit_test(s, "another role is answered and refused",
        test_another_role_is_answered_and_refused);
    unit_test(s, "a second BEGIN_REQUEST is refused",
        test_a_second_begin_request_is_refused);
    unit_test(s, "unexpected records among the parameters are refused",
        test_unexpected_records_among_the_parameters_are_refused);
    unit_test(s, "a record cut short is refused",
        test_a_record_cut_short_is_refused);
    unit_test(s, "a connection that sends nothing is told apart",
        test_nothing_at_all_is_told_apart);
    unit_test(s, "a stalled peer is dropped at the deadline",
        test_a_stalled_peer_is_dropped_at_the_deadline);
    unit_test(s, "parameters over the cap are refused unread",
        test_parameters_over_the_cap_are_refused_unread);
    unit_test(s, "malformed parameter streams are refused",
        test_malformed_parameter_streams_are_refused);
    unit_test(s, "a parameter stream that overruns is refused",
        test_a_parameter_stream_that_overruns_is_refused);
    unit_test(s, "GET_VALUES is answered once per variable",
        test_get_values_is_answered_once_per_variable);
    unit_test(s, "an unknown management record is answered",
        test_an_unknown_management_record_is_answered);
    unit_test(s, "unexpected records in the body fail the read",
        test_unexpected_records_in_the_body_fail_the_read);
    unit_test(s, "a response is sent as records and ends the request",
        test_a_response_is_sent_as_records_and_ends_the_request);
    unit_test(s, "a peer gone before the response is an error, no signal",
        test_a_peer_gone_before_the_response_is_an_error_not_a_signal);
}
