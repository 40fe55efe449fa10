/*
 * Sign-up on the apex host: POST /api/v1/tenants; and on a tenant's
 * host, the tenant's own record: GET and PATCH /api/v1/tenant.
 *
 * Creates the tenant, its schema and its first admin in one transaction
 * (lib/tenant.c); on any failure nothing is left behind.  Its MongoDB
 * collections follow; while MongoDB is down the sign-up still succeeds
 * and they are made when it returns (lib/provision.h).
 */
#include "config.h"

#include <string.h>

#include "audit_logs.h"
#include "common.h"
#include "fields.h"
#include "handlers.h"
#include "log.h"
#include "password.h"

static const struct field_spec signup_fields[] = {
    { "name", FIELD_STRING, FIELD_REQUIRED, 255, 0, 0, NULL },
    { "slug", FIELD_STRING, FIELD_REQUIRED, 255, 0, 0, NULL },
    { "admin_email", FIELD_STRING, FIELD_REQUIRED, 254, 0, 0, NULL },
    { "admin_password", FIELD_TEXT, FIELD_REQUIRED, 4096, 0, 0, NULL },
};

#define SIGNUP_NFIELDS (sizeof(signup_fields) / sizeof(signup_fields[0]))

int
tenants_create(struct request *req)
{
    struct field_value v[SIGNUP_NFIELDS];
    struct json_object *body;
    struct tenant_signup signup;
    struct tenant tenant;
    char admin_id[UUID_TEXT_LEN + 1];
    char hash[128];
    char *email = NULL;
    struct json_writer *w;

    if (!req->conf->signup_enabled)
        return request_fail(req, 403, "sign-up is closed on this server");

    if (request_query_check(req, NULL) < 0 ||
        request_json_object(req, &body) < 0)
        return -1;

    /* An oversized password is refused before any other work. */
    {
        struct json_object *p;

        if (json_object_object_get_ex(body, "admin_password", &p) &&
            json_object_get_type(p) == json_type_string &&
            (size_t)json_object_get_string_len(p) >
                req->conf->password_max_bytes)
            return request_fail(req, 400,
                "admin_password is longer than %zu bytes",
                req->conf->password_max_bytes);
    }

    /* Every problem of the body is reported at once. */
    fields_read(req->arena, body, signup_fields, SIGNUP_NFIELDS, true, v,
        &req->err);
    if (v[1].text != NULL)
        slug_check(v[1].text, &req->err);
    if (v[2].text != NULL) {
        email = arena_strdup(req->arena, v[2].text);
        email_normalise(email, "/admin_email", &req->err);
    }
    if (v[3].text != NULL)
        password_check_policy(req->conf, "/admin_password", v[3].text,
            strlen(v[3].text), &req->err);
    if (req->err.status != 0)
        return -1;

    if (db_ready(req->db, &req->err) < 0 ||
        password_hash(req->conf, v[3].text, strlen(v[3].text), hash,
            &req->err) < 0)
        return -1;

    signup.name = v[0].text;
    signup.slug = v[1].text;
    signup.admin_email = email;
    signup.admin_password_hash = hash;
    signup.ip_address = req->remote_addr;
    signup.user_agent = req->user_agent;
    if (tenant_create(req->db, req->mongo, req->arena, &signup, &tenant,
            admin_id, &req->err) < 0)
        return -1;

    log_info("signed up tenant %s (%s)", tenant.slug, tenant.id);

    /* The new tenant's own record lives on its own host. */
    response_header(req, "Location", "https://%s.%s%s%s/api/v1/tenant",
        tenant.slug, req->conf->base_domain,
        req->server_port[0] != '\0' && strcmp(req->server_port, "443") != 0
            ? ":" : "",
        strcmp(req->server_port, "443") != 0 ? req->server_port : "");
    w = response_json(req, 201);
    jw_object_open(w);
    jw_kv_string(w, "id", tenant.id);
    jw_kv_string(w, "name", signup.name);
    jw_kv_string(w, "slug", tenant.slug);
    jw_kv_bool(w, "is_active", tenant.is_active);
    jw_kv_string(w, "created_at", tenant.created_at);
    jw_object_close(w);
    return 0;
}

/* The select list; the order is the column numbers in write_tenant. */
#define TENANT_COLUMNS \
    "id, name, slug, is_active, audit_reads, created_at, updated_at, " \
    SQL_ETAG
#define TENANT_ETAG_COLUMN 7

static const char SQL_TENANT_SELF[] =
    "SELECT " TENANT_COLUMNS " FROM public.tenants WHERE id = $1";

/* The row a PATCH changes, locked before If-Match is compared. */
static const char SQL_TENANT_LOCK[] =
    "SELECT " TENANT_COLUMNS " FROM public.tenants WHERE id = $1"
    " FOR UPDATE";

/* A merge patch: a NULL parameter keeps the column. */
static const char SQL_TENANT_UPDATE[] =
    "UPDATE public.tenants SET name = coalesce($2, name),"
    " audit_reads = coalesce($3::boolean, audit_reads),"
    " updated_at = greatest(now(), updated_at + interval '1 microsecond')"
    " WHERE id = $1 RETURNING " TENANT_COLUMNS;

/* What a tenant's admin may change of the tenant. */
static const struct field_spec tenant_settings[] = {
    { "name", FIELD_STRING, 0, TENANT_NAME_MAX, 0, 0, NULL },
    { "audit_reads", FIELD_BOOL, 0, 0, 0, 0, NULL },
};

#define TENANT_NSETTINGS \
    (sizeof(tenant_settings) / sizeof(tenant_settings[0]))

static void
write_tenant(struct request *req, const void *res)
{
    struct json_writer *w = &req->json;

    jw_object_open(w);
    jw_kv_string(w, "id", db_value(res, 0, 0));
    jw_kv_string(w, "name", db_value(res, 0, 1));
    jw_kv_string(w, "slug", db_value(res, 0, 2));
    jw_kv_bool(w, "is_active", db_bool(res, 0, 3));
    jw_kv_bool(w, "audit_reads", db_bool(res, 0, 4));
    jw_kv_string(w, "created_at", db_timestamp(req->arena, res, 0, 5));
    jw_kv_string(w, "updated_at", db_timestamp(req->arena, res, 0, 6));
    jw_object_close(w);
}

static int
respond_tenant(struct request *req, const PGresult *res)
{
    response_json(req, 200);
    write_tenant(req, res);
    response_etag(req, db_value(res, 0, TENANT_ETAG_COLUMN));
    return 0;
}

/* GET /api/v1/tenant on a tenant host: the tenant the request is for. */
int
tenants_self(struct request *req)
{
    const char *params[1] = { req->tenant->id };
    PGresult *res;

    if (request_query_check(req, NULL) < 0)
        return -1;
    res = db_exec(req->db, req->arena, &req->err, SQL_TENANT_SELF, 1,
        params);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0)
        return request_fail(req, 404, "no such tenant");
    return respond_tenant(req, res);
}

/*
 * PATCH /api/v1/tenant (admins): the tenant's own settings, its name and
 * whether reads are audited.  Audited like every change, and announced
 * to the workers' tenant caches.  Each request reads audit_reads itself
 * in its own transaction (public.crewd_request_user), so the setting
 * holds from the next request on, whichever worker serves it.
 */
int
tenants_update(struct request *req)
{
    const char *params[3] = { req->tenant->id, NULL, NULL };
    struct field_value v[TENANT_NSETTINGS];
    struct json_object *body, *old, *now;
    PGresult *before, *after;

    if (request_query_check(req, NULL) < 0 ||
        request_json_object(req, &body) < 0 ||
        fields_read(req->arena, body, tenant_settings, TENANT_NSETTINGS,
            false, v, &req->err) < 0)
        return -1;

    before = db_exec(req->db, req->arena, &req->err, SQL_TENANT_LOCK, 1,
        params);
    if (before == NULL)
        return -1;
    if (PQntuples(before) == 0)
        return request_fail(req, 404, "no such tenant");
    if (precondition_check(req, db_value(before, 0, TENANT_ETAG_COLUMN)) < 0)
        return -1;

    /* An empty merge patch changes nothing, not even updated_at. */
    if (fields_none_present(v, TENANT_NSETTINGS))
        return respond_tenant(req, before);

    params[1] = v[0].text;
    params[2] = v[1].text;
    after = db_exec(req->db, req->arena, &req->err, SQL_TENANT_UPDATE, 3,
        params);
    if (after == NULL ||
        audit_capture(req, write_tenant, before, &old) < 0 ||
        audit_capture(req, write_tenant, after, &now) < 0 ||
        audit_record(req, AUDIT_UPDATE, "tenant", req->tenant->id, old,
            now) < 0 ||
        db_notify_tenants(req->db, &req->err) < 0)
        return -1;
    return respond_tenant(req, after);
}
