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

#include <fcgiapp.h>
#include <sodium.h>

#include "handlers.h"
#include "log.h"
#include "master.h"
#include "mongo.h"
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
 * A SIGTERM that lands between the loop's check and accept() would leave
 * the worker asleep in accept() until the next connection.  Putting
 * /dev/null in the listening socket's place closes that window: accept()
 * on it fails at once, and the other processes' sockets are untouched.
 */
static void
on_stop_signal(int sig)
{
    int saved_errno = errno;

    stop_requested = 1;
    FCGX_ShutdownPending();
    if (listen_socket >= 0 && null_fd >= 0)
        dup2(null_fd, listen_socket);
    errno = saved_errno;
}

/*
 * Reads exactly CONTENT_LENGTH bytes.  Without a length (chunked upload)
 * reads to the end.  More than the cap is a 413 before anything is
 * allocated from the untrusted length; fewer bytes than announced mean
 * the client went away mid-body.
 */
static int
read_body(FCGX_Request *fr, struct request *req)
{
    size_t cap = req->conf->body_max_bytes;
    size_t want, got = 0;
    bool exact;
    char *body;

    req->body = "";
    req->body_len = 0;

    if (request_body_length(req, fr->envp, &want, &exact) < 0)
        return -1;
    if (want == 0)
        return 0;

    body = arena_alloc(req->arena, want + 1);
    while (got < want) {
        int n = FCGX_GetStr(body + got, (int)(want - got), fr->in);

        if (n <= 0)
            break;
        got += (size_t)n;
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
 */
static int
authorise(struct request *req)
{
    static const char sql[] =
        "SELECT role FROM public.users"
        " WHERE id = $1 AND tenant_id = $2 AND is_active"
        " AND token_version = $3";
    char version[24];
    const char *params[3] = { req->auth.user_id, req->tenant->id, version };
    PGresult *res;

    snprintf(version, sizeof(version), "%lld",
        (long long)req->auth.version);
    res = db_exec(req->db, req->arena, &req->err, sql, 3, params);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0) {
        response_header(req, "WWW-Authenticate",
            "Bearer error=\"invalid_token\"");
        return request_fail(req, 401, "invalid or expired token");
    }

    req->auth.role = role_parse(PQgetvalue(res, 0, 0));
    if (req->auth.role < req->route->role)
        return request_fail(req, 403, "your role may not do this");
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

/* A tenant route: resolve, authenticate, reset, handle, commit. */
static void
run_tenant_route(struct request *req)
{
    const struct tenant *tenant;
    int rc;

    if (db_ready(req->db, &req->err) < 0 ||
        tenant_resolve(req->db, req->arena, req->tenant_slug, &tenant,
            &req->err) < 0)
        return;
    req->tenant = tenant;

    if (req->route->role != ROLE_NONE && authenticate(req) < 0)
        return;

    if (tenant_reset_begin(req->db, tenant, &req->err) < 0)
        return;
    rc = req->route->role != ROLE_NONE ? authorise(req) : 0;
    if (rc == 0)
        rc = run_handler(req);

    /* A tenant that audits reads: the read's entry, in its transaction. */
    if (rc == 0 && req->tenant->audit_reads &&
        req->route->role != ROLE_NONE &&
        strcmp(req->route->method, "GET") == 0)
        rc = audit_read(req);
    tenant_reset_end(req->db, rc == 0, &req->err);
}

static void
dispatch(struct request *req)
{
    enum route_host host = req->tenant_slug[0] != '\0' ? HOST_TENANT
                                                       : HOST_APEX;
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
 * Sleeps until a connection waits on the listening socket, sweeping
 * whenever mongodb_provision_interval has passed, so an idle crewd still
 * makes the collections MongoDB's return allows.  Several idle workers
 * may wake for one connection; those that lose the race wait in accept()
 * as they always did.  False: look at the stop flag again.
 */
static bool
connection_waiting(struct worker *w, int listen_fd)
{
    struct pollfd pfd = { .fd = listen_fd, .events = POLLIN };
    double wait;

    if (monotonic_seconds() >= w->next_sweep) {
        sweep(w);
        w->next_sweep = monotonic_seconds() +
            w->conf->mongodb_provision_interval;
    }
    wait = w->next_sweep - monotonic_seconds();
    return poll(&pfd, 1, wait > 0 ? (int)(wait * 1000) + 1 : 0) > 0;
}

static double
elapsed_ms(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 +
        (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

static void
serve(struct worker *w, FCGX_Request *fr)
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

    request_from_params(&req, fr->envp);
    log_set_context(req.request_id, req.tenant_slug);

    if (read_body(fr, &req) == 0)
        dispatch(&req);

    response_serialise(&req, &w->response);
    if (FCGX_PutStr(w->response.data, (int)w->response.len, fr->out) < 0)
        log_info("client went away before the response was sent");

    /* Faults were logged where they happened; this is the summary. */
    status = req.err.status != 0 ? req.err.status : req.status;
    log_info("%s %s -> %d in %.1f ms", req.method, req.path, status,
        elapsed_ms(&start));
}

void
worker_run(const struct crewd_conf *conf, const struct token_secret *secret,
    int listen_fd)
{
    struct worker w;
    struct crewd_error err;
    FCGX_Request fr;

    listen_socket = listen_fd;
    null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    master_child_signals(on_stop_signal);
    log_set_context(NULL, NULL);

    memset(&w, 0, sizeof(w));
    w.conf = conf;
    w.secret = secret;
    w.arena = arena_new(64 * 1024);

    error_clear(&err);
    if (password_init(conf, &err) < 0)
        fatal("could not prepare password hashing: %s", err.detail);

    /* A database that is down now is retried by each request. */
    error_clear(&err);
    db_open(&w.db, conf->database_url, true, &err);

    /* Likewise MongoDB: its client connects at its first operation. */
    w.mongo = mongo_connect(conf->mongodb_uri, &err);
    if (w.mongo == NULL)
        fatal("%s", err.detail);

    if (FCGX_Init() != 0 ||
        FCGX_InitRequest(&fr, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0)
        fatal("could not initialise libfcgi");

    while (!stop_requested) {
        if (!connection_waiting(&w, listen_fd))
            continue;
        if (FCGX_Accept_r(&fr) < 0) {
            if (stop_requested || errno == EINTR)
                continue;
            fatal("could not accept a connection: %s", strerror(errno));
        }

        serve(&w, &fr);
        FCGX_Finish_r(&fr);
        arena_reset(w.arena);
        log_set_context(NULL, NULL);
    }

    log_debug("worker stopping");
    db_close(&w.db);
    mongo_close(w.mongo);
    arena_free(w.arena);
    buf_free(&w.headers);
    buf_free(&w.body);
    buf_free(&w.response);
    exit(0);
}
