/*
 * Sign-up on the apex host: POST /api/v1/tenants.
 *
 * Creates the tenant, its schema and its first admin in one transaction
 * (lib/tenant.c); on any failure nothing is left behind.  Its MongoDB
 * collections follow; while MongoDB is down the sign-up still succeeds
 * and they are made when it returns (lib/provision.h).
 */
#include "config.h"

#include <string.h>

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

static const char SQL_TENANT_SELF[] =
    "SELECT id, name, slug, is_active, created_at, updated_at, " SQL_ETAG
    " FROM public.tenants WHERE id = $1";

/* GET /api/v1/tenant on a tenant host: the tenant the request is for. */
int
tenants_self(struct request *req)
{
    const char *params[1] = { req->tenant->id };
    struct json_writer *w;
    PGresult *res;

    if (request_query_check(req, NULL) < 0)
        return -1;
    res = db_exec(req->db, req->arena, &req->err, SQL_TENANT_SELF, 1,
        params);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0)
        return request_fail(req, 404, "no such tenant");

    w = response_json(req, 200);
    jw_object_open(w);
    jw_kv_string(w, "id", db_value(res, 0, 0));
    jw_kv_string(w, "name", db_value(res, 0, 1));
    jw_kv_string(w, "slug", db_value(res, 0, 2));
    jw_kv_bool(w, "is_active", db_bool(res, 0, 3));
    jw_kv_string(w, "created_at", db_timestamp(req->arena, res, 0, 4));
    jw_kv_string(w, "updated_at", db_timestamp(req->arena, res, 0, 5));
    jw_object_close(w);
    response_etag(req, db_value(res, 0, 6));
    return 0;
}
