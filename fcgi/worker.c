#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sys/socket.h>

#include <sodium.h>

#include "fastcgi.h"
#include "handlers.h"
#include "log.h"
#include "master.h"
#include "mongo.h"
#include "observe.h"
#include "password.h"
#include "provision.h"
#include "request.h"
#include "routes.h"
#include "tenant_reset.h"
#include "worker.h"

/* Tenants whose MongoDB collections one sweep makes at most. */
#define PROVISION_SWEEP_MAX 20

static volatile sig_atomic_t stop_requested;
static int listen_socket = -1;
static int null_fd = -1;

/*
 * A SIGTERM that lands between the loop's check and poll() would leave
 * the worker asleep until the next connection or sweep.  Putting
 * /dev/null in the listening socket's place closes that window: poll()
 * on it returns at once, accept() on it fails, and the other processes'
 * sockets are untouched.
 */
static void
on_stop_signal(int sig)
{
    int saved_errno = errno;

    stop_requested = 1;
    if (listen_socket >= 0 && null_fd >= 0)
        dup2(null_fd, listen_socket);
    errno = saved_errno;
}

/*
 * Reads exactly CONTENT_LENGTH bytes.  Without a length (chunked upload)
 * reads to the end.  More than the cap is a 413 before anything is
 * allocated from the untrusted length.  A body that ends before the
 * length is a 400; a connection that fails mid-body (closed, stalled,
 * broken records) aborts the request, and no handler runs either way.
 */
/* What a body of unknown length is first read into. */
#define BODY_FIRST_READ 4096

static int
read_body(struct fcgi_conn *c, struct request *req)
{
    size_t cap = req->conf->body_max_bytes;
    size_t want, got, size;
    ssize_t n_read;
    bool exact;
    char *body;

    req->body = "";
    req->body_len = 0;

    if (request_body_length(req, c->params, c->nparams, &want,
            &exact) < 0)
        return -1;
    if (want == 0)
        return 0;

    /*
     * A known length is allocated once.  Without one (nginx passes none
     * for a GET, or for a chunked upload) the buffer grows as the body
     * arrives, from a page up to the cap, so a request without a body
     * costs no cap-sized allocation.
     */
    size = exact ? want : (want < BODY_FIRST_READ ? want : BODY_FIRST_READ);
    body = arena_alloc(req->arena, size + 1);
    got = 0;
    for (;;) {
        n_read = fcgi_read_stdin(c, body + got, size - got);
        if (n_read < 0) {
            log_info("request aborted: %s", c->error);
            return request_fail(req, 400, "the request body was cut short");
        }
        got += (size_t)n_read;
        if (got < size || size == want)
            break;

        /* Full, and more may come: twice the room, the cap at most. */
        {
            size_t bigger = size * 2 < want ? size * 2 : want;
            char *grown = arena_alloc(req->arena, bigger + 1);

            memcpy(grown, body, got);
            body = grown;
            size = bigger;
        }
    }

    if (!exact && got > cap)
        return request_fail(req, 413, "the body is larger than %zu bytes",
            cap);
    if (exact && got < want) {
        log_info("request aborted: %zu of %zu body bytes arrived", got,
            want);
        return request_fail(req, 400, "the request body was cut short");
    }

    body[got] = '\0';
    req->body = body;
    req->body_len = got;
    return 0;
}

/* Checks the bearer token against the request's tenant. */
static int
authenticate(struct request *req)
{
    const char *h = req->authorization;
    const char *token;

    if (strncasecmp(h, "Bearer ", 7) != 0) {
        response_header(req, "WWW-Authenticate", "Bearer");
        return request_fail(req, 401, "a bearer token is required");
    }
    token = h + 7;
    while (*token == ' ')
        token++;

    if (token_verify(req->conf, req->secret, token, req->tenant->id,
            time(NULL), &req->auth, &req->err) < 0) {
        response_header(req, "WWW-Authenticate",
            "Bearer error=\"invalid_token\"");
        return -1;
    }
    return 0;
}

/*
 * Inside the tenant's transaction: the token's user must still exist, be
 * active and have the token version the token was issued under (a
 * password reset or a suspension moves it), and its role now (not when
 * the token was issued) decides.  Access ends at once, not at expiry.
 * The statement rides in the round trip that opens the transaction,
 * ahead of the tenant switch, so that its plan is kept
 * (sql/public/0009_request_user_first.sql).
 */
struct authorisation {
    struct db_statement statement;
    const char *params[3];
    char version[24];
};

static void
authorise_statement(struct request *req, struct authorisation *a)
{
    snprintf(a->version, sizeof(a->version), "%lld",
        (long long)req->auth.version);
    a->params[0] = req->tenant->id;
    a->params[1] = req->auth.user_id;
    a->params[2] = a->version;
    a->statement = (struct db_statement){
        "SELECT role, audit_reads"
        " FROM public.crewd_request_user($1, $2, $3)",
        3, a->params };
}

/* A refusal of the token's user: 401 (no such user now) or 403. */
static int
refuse(struct request *req, int status, struct crewd_error *err)
{
    req->refused = status;
    return error_set(err, status, status == 401
        ? "invalid or expired token" : "your role may not do this");
}

/* The opening's check (fcgi/tenant_reset.h) of the token's user. */
static int
authorise(void *arg, const PGresult *res, struct crewd_error *err)
{
    struct request *req = arg;

    /* One row always; a user not found, inactive or moved on: NULLs. */
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        response_header(req, "WWW-Authenticate",
            "Bearer error=\"invalid_token\"");
        return refuse(req, 401, err);
    }

    req->auth.role = role_parse(PQgetvalue(res, 0, 0));
    req->audit_reads = db_bool(res, 0, 1);
    if (req->auth.role < req->route->role)
        return refuse(req, 403, err);
    return 0;
}

static int
run_handler(struct request *req)
{
    int rc = req->route->handler(req);

    if (rc < 0 && req->err.status == 0) {
        log_error("handler for %s %s failed without saying why",
            req->route->method, req->route->pattern);
        request_fail(req, 500, "internal error");
    }
    return rc;
}

/*
 * The read ended with its statement (request_last_read), since the
 * cached tenant did not audit reads; the tenant's own row, read in that
 * transaction, says it does now.  The entry gets a transaction of its
 * own, still before the answer goes out: no read is answered unaudited.
 */
static int
audit_read_apart(struct request *req)
{
    if (tenant_reset_end(req->db, true, &req->err) < 0 ||
        tenant_reset_begin(req->db, req->arena, req->tenant, NULL, NULL,
            NULL, false, &req->err) < 0)
        return -1;
    return audit_read(req);
}

/* A tenant route: resolve, authenticate, reset, handle, commit. */
static void
run_tenant_route(struct request *req)
{
    struct authorisation authorisation;
    const struct tenant *tenant;
    int rc;

    if (db_ready(req->db, &req->err) < 0 ||
        tenant_resolve(req->db, req->arena, req->tenant_slug, &tenant,
            &req->err) < 0)
        return;
    req->tenant = tenant;

    if (req->route->role != ROLE_NONE && authenticate(req) < 0)
        return;

    /*
     * A resource's routes (handlers/resource.c) do nothing outside
     * PostgreSQL before their first statement, so the opening waits for
     * it and both go in one round trip; the user is checked before the
     * handler sees its rows, and a refusal rolls back what it did.
     */
    if (req->route->role != ROLE_NONE)
        authorise_statement(req, &authorisation);
    if (tenant_reset_begin(req->db, req->arena, tenant,
            req->route->role != ROLE_NONE ? &authorisation.statement : NULL,
            authorise, req, req->route->resource != NULL, &req->err) < 0)
        return;
    rc = run_handler(req);
    if (tenant_reset_settle(req->db, &req->err) < 0)
        rc = -1;
    /*
     * A refusal outranks whatever the handler made of the failed
     * statement that carried it (a handler may turn it into a 404).
     */
    if (req->refused != 0) {
        error_clear(&req->err);
        rc = refuse(req, req->refused, &req->err);
    }

    /* A tenant that audits reads: the read's entry, in its transaction. */
    if (rc == 0 && req->audit_reads &&
        req->route->role != ROLE_NONE &&
        strcmp(req->route->method, "GET") == 0)
        rc = req->db->ended_ahead ? audit_read_apart(req) : audit_read(req);
    tenant_reset_end(req->db, rc == 0, &req->err);
}

static void
dispatch(struct request *req)
{
    enum route_host host = strcmp(req->listener, "metrics") == 0
        ? HOST_METRICS
        : req->tenant_slug[0] != '\0' ? HOST_TENANT : HOST_APEX;
    char allow[80];
    enum route_result match;

    /* HEAD is GET without the body (request.c leaves the body out). */
    match = route_match(strcmp(req->method, "HEAD") == 0 ? "GET"
                                                         : req->method,
        req->path, host, &req->route, req->path_ids, allow, sizeof(allow));
    switch (match) {
    case ROUTE_FOUND:
        break;
    case ROUTE_NOT_FOUND:
        request_fail(req, 404, "no such resource");
        return;
    case ROUTE_WRONG_HOST:
        request_fail(req, 404, host == HOST_TENANT
            ? "this endpoint is served on the platform host"
            : "this endpoint is served on a tenant's host");
        return;
    case ROUTE_BAD_METHOD:
        response_header(req, "Allow", "%s%s", allow,
            strstr(allow, "GET") != NULL ? ", HEAD" : "");
        request_fail(req, 405, "method not allowed here");
        return;
    }

    /* On a tenant's host the tenant must exist, whatever the route. */
    if (host == HOST_TENANT) {
        run_tenant_route(req);
        return;
    }

    run_handler(req);
}

struct worker {
    const struct crewd_conf *conf;
    const struct token_secret *secret;
    struct db db;
    struct mongo *mongo;
    double next_sweep;          /* monotonic seconds */
    struct arena *arena;
    struct buf headers;
    struct buf body;
    struct buf response;
    struct fcgi_conn *conn;     /* large: allocated once */
};

static double
monotonic_seconds(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/*
 * The worker's one background duty: making the MongoDB collections of
 * tenants still without them (signed up while MongoDB was down).  The
 * sweep takes a PostgreSQL advisory lock, so one worker at a time does
 * it, and skips everything while MongoDB is known to be down.
 */
static void
sweep(struct worker *w)
{
    struct crewd_error err;

    if (!mongo_available(w->mongo))
        return;
    error_clear(&err);
    if (db_ready(&w->db, &err) == 0)
        provision_sweep(&w->db, w->mongo, w->arena, PROVISION_SWEEP_MAX,
            NULL, &err);
    arena_reset(w->arena);
}

/*
 * Sweeps whenever mongodb_provision_interval has passed, busy or idle,
 * so that crewd still makes the collections MongoDB's return allows.
 */
static void
sweep_when_due(struct worker *w)
{
    if (monotonic_seconds() < w->next_sweep)
        return;
    sweep(w);
    w->next_sweep = monotonic_seconds() +
        w->conf->mongodb_provision_interval;
}

/*
 * Sleeps until a connection may wait on the listening socket, or the
 * next sweep is due.  Several idle workers may wake for one connection;
 * those that lose the race find nothing to accept and come back here.
 */
static void
wait_for_connection(struct worker *w, int listen_fd)
{
    struct pollfd pfd = { .fd = listen_fd, .events = POLLIN };
    double wait = w->next_sweep - monotonic_seconds();

    poll(&pfd, 1, wait > 0 ? (int)(wait * 1000) + 1 : 0);
}

static double
elapsed_ms(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 +
        (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

/* One request on a connection whose head was read. */
static void
serve(struct worker *w, struct fcgi_conn *c)
{
    struct request req;
    struct timespec start;
    int status;

    clock_gettime(CLOCK_MONOTONIC, &start);
    memset(&req, 0, sizeof(req));
    req.arena = w->arena;
    req.db = &w->db;
    req.mongo = w->mongo;
    req.conf = w->conf;
    req.secret = w->secret;
    req.headers = &w->headers;
    req.body_out = &w->body;
    buf_reset(&w->headers);
    buf_reset(&w->body);
    buf_reset(&w->response);
    error_clear(&req.err);

    request_from_params(&req, c->params, c->nparams);
    log_set_context(req.request_id, req.tenant_slug);

    if (read_body(c, &req) == 0)
        dispatch(&req);

    /* A connection that failed mid-request has nobody to answer. */
    response_serialise(&req, &w->response);
    if (!c->failed && fcgi_write_response(c, w->response.data,
            w->response.len, w->conf->fastcgi_timeout) < 0)
        log_info("client went away before the response was sent: %s",
            c->error);

    /* Faults were logged where they happened; this is the summary. */
    status = req.err.status != 0 ? req.err.status : req.status;
    log_info("%s %s -> %d in %.1f ms", req.method, req.path, status,
        elapsed_ms(&start));
    observe_request(&req, status, elapsed_ms(&start) / 1e3,
        w->response.len);
}

/*
 * A connection, start to end.  A peer that breaks the protocol or
 * stalls costs this connection only: it is logged and closed, and the
 * worker takes the next one.
 */
static void
serve_connection(struct worker *w, int fd)
{
    fcgi_conn_start(w->conn, fd, w->conf->fastcgi_timeout);
    if (fcgi_read_head(w->conn, w->arena) == 0)
        serve(w, w->conn);
    else if (w->conn->received == 0 && !w->conn->timed_out)
        /* A probe that only checks the socket accepts: not news. */
        log_debug("FastCGI connection closed before a request: %s",
            w->conn->error);
    else
        log_warn("FastCGI connection closed before a request: %s",
            w->conn->error);
    close(fd);
}

/*
 * Takes a waiting connection.  The listening socket is non-blocking, so
 * a worker that lost the race for it returns to its poll at once.
 * Returns the connection, or -1 to look at the stop flag again.
 */
static int
accept_connection(int listen_fd)
{
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd >= 0 || stop_requested)
        return fd;

    switch (errno) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case EINTR:
    case ECONNABORTED:
        return -1;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM: {
        /* Out of descriptors or memory for now: do not spin on it. */
        struct timespec pause = { 0, 100 * 1000 * 1000 };

        log_warn("could not accept a connection: %s", strerror(errno));
        nanosleep(&pause, NULL);
        return -1;
    }
    default:
        fatal("could not accept a connection: %s", strerror(errno));
    }
}

void
worker_run(const struct crewd_conf *conf, const struct token_secret *secret,
    int listen_fd)
{
    struct worker w;
    struct crewd_error err;
    int flags;

    listen_socket = listen_fd;
    null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    master_child_signals(on_stop_signal);
    log_set_context(NULL, NULL);

    memset(&w, 0, sizeof(w));
    w.conf = conf;
    w.secret = secret;
    w.arena = arena_new(64 * 1024);
    w.conn = xmalloc(sizeof(*w.conn));
    observe_open(conf->access_log);

    error_clear(&err);
    if (password_init(conf, &err) < 0)
        fatal("could not prepare password hashing: %s", err.detail);

    /* A database that is down now is retried by each request. */
    error_clear(&err);
    w.db.isolation = conf->isolation;
    db_open(&w.db, conf->database_url, false, &err);

    /* Likewise MongoDB: its client connects at its first operation. */
    w.mongo = mongo_connect(conf->mongodb_uri, &err);
    if (w.mongo == NULL)
        fatal("%s", err.detail);

    /* Shared by every worker (one open file): each sets the same flag. */
    flags = fcntl(listen_fd, F_GETFL);
    if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0)
        fatal("could not make the listening socket non-blocking: %s",
            strerror(errno));

    while (!stop_requested) {
        int fd;

        /*
         * Under load a connection is usually waiting already: taking it
         * before sleeping on the socket saves a poll per request.
         */
        sweep_when_due(&w);
        fd = accept_connection(listen_fd);
        if (fd < 0) {
            wait_for_connection(&w, listen_fd);
            continue;
        }

        serve_connection(&w, fd);
        arena_reset(w.arena);
        log_set_context(NULL, NULL);
    }

    log_debug("worker stopping");
    free(w.conn);
    db_close(&w.db);
    mongo_close(w.mongo);
    arena_free(w.arena);
    buf_free(&w.headers);
    buf_free(&w.body);
    buf_free(&w.response);
    observe_close();
    exit(0);
}
