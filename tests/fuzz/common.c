#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fuzz.h"
#include "log.h"
#include "mongo.h"
#include "password.h"
#include "seal.h"

static bool ready;
static struct crewd_conf conf;
static struct token_secret secret;
static struct tenant tenant;
static struct db db;
static struct mongo *mongo;
static struct arena *arena;
static struct buf headers, body, response;

/*
 * crewd's fatal() ends a process with _exit(), which neither libFuzzer
 * nor the sanitizers see: the fuzz targets are linked with
 * -Wl,--wrap=_exit so that an impossible state reached from an input
 * aborts, and the input that did it is kept.
 */
void __wrap__exit(int status) __attribute__((noreturn));
void __real__exit(int status) __attribute__((noreturn));

void
__wrap__exit(int status)
{
    if (status != 0)
        abort();
    __real__exit(status);
}

void
fuzz_init(void)
{
    struct seal_keyring ring;
    struct crewd_error err;

    if (ready)
        return;
    ready = true;

    if (sodium_init() < 0)
        abort();
    log_init("fuzz", LOG_ERROR);

    conf_defaults(&conf);
    conf.password_ops_limit = 1;
    conf.password_mem_limit = 8192;
    conf.mongodb_uri[0] = '\0';
    error_clear(&err);
    if (password_init(&conf, &err) < 0)
        abort();

    memset(secret.key, FUZZ_SECRET_BYTE, FUZZ_SECRET_LEN);
    secret.len = FUZZ_SECRET_LEN;

    memset(&ring, 0, sizeof(ring));
    memset(ring.keys[0].key, 0x5a, SEAL_KEY_BYTES);
    memcpy(ring.keys[0].id, "fuzz", SEAL_KEY_ID_BYTES);
    strcpy(ring.keys[0].id_text, "66757a7a");
    ring.count = 1;
    seal_process_install(&ring);

    memset(&tenant, 0, sizeof(tenant));
    strcpy(tenant.id, FUZZ_TENANT_ID);
    strcpy(tenant.slug, FUZZ_TENANT_SLUG);
    strcpy(tenant.schema, "tenant_0123456789abcdef");
    tenant.is_active = true;

    memset(&db, 0, sizeof(db));
    mongo = mongo_connect("", &err);
    if (mongo == NULL)
        abort();
    arena = arena_new(64 * 1024);
}

const struct crewd_conf *
fuzz_conf(void)
{
    fuzz_init();
    return &conf;
}

const struct token_secret *
fuzz_secret(void)
{
    fuzz_init();
    return &secret;
}

const struct tenant *
fuzz_tenant(void)
{
    fuzz_init();
    return &tenant;
}

void
fuzz_request_begin(struct request *req)
{
    fuzz_init();
    memset(req, 0, sizeof(*req));
    req->arena = arena;
    req->db = &db;
    req->mongo = mongo;
    req->conf = &conf;
    req->secret = &secret;
    req->headers = &headers;
    req->body_out = &body;
    buf_reset(&headers);
    buf_reset(&body);
    buf_reset(&response);
    error_clear(&req->err);

    req->request_id = req->method = req->path = req->query = "";
    req->remote_addr = req->user_agent = req->content_type = "";
    req->if_match = req->authorization = req->tenant_slug = "";
    req->server_port = "";
    req->body = "";
}

void
fuzz_request_tenant(struct request *req)
{
    if (req->tenant_slug[0] == '\0')
        req->tenant_slug = FUZZ_TENANT_SLUG;
    req->tenant = &tenant;
    strcpy(req->auth.tenant_id, FUZZ_TENANT_ID);
    strcpy(req->auth.user_id, FUZZ_USER_ID);
    req->auth.role = ROLE_ADMIN;
}

void
fuzz_request_end(struct request *req)
{
    response_serialise(req, &response);

    /* Exactly one response: a status line, always. */
    if (response.len < 8 || memcmp(response.data, "Status: ", 8) != 0)
        abort();
    arena_reset(arena);
}

char *
fuzz_cstring(struct request *req, const uint8_t *data, size_t size)
{
    char *s = arena_alloc(req->arena, size + 1);

    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}
