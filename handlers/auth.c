/*
 * POST /api/v1/auth/login on a tenant host.
 *
 * A wrong e-mail and a wrong password give the same 401 after the same
 * Argon2id work: an unknown user is verified against a dummy hash.
 */
#include "config.h"

#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "handlers.h"
#include "fields.h"
#include "password.h"

static const char SQL_LOGIN_USER[] =
    "SELECT id, password_hash, role, is_active, token_version"
    " FROM public.users"
    " WHERE tenant_id = $1 AND email = $2";

static const struct field_spec login_fields[] = {
    { "email", FIELD_TEXT, FIELD_REQUIRED, 254, 0, 0, NULL },
    { "password", FIELD_TEXT, FIELD_REQUIRED, 4096, 0, 0, NULL },
};

int
auth_login(struct request *req)
{
    struct field_value v[2];
    struct json_object *body;
    const char *params[2];
    const char *hash = NULL;
    char *email;
    PGresult *res;
    size_t password_len;
    struct token_claims claims;
    char *token;
    struct json_writer *w;

    if (request_query_check(req, NULL) < 0 ||
        request_json_object(req, &body) < 0 ||
        fields_read(req->arena, body, login_fields, 2, true, v,
            &req->err) < 0)
        return -1;

    password_len = strlen(v[1].text);
    if (password_len > req->conf->password_max_bytes)
        return request_fail(req, 400, "password is longer than %zu bytes",
            req->conf->password_max_bytes);

    email = arena_strdup(req->arena, v[0].text);
    for (char *p = email; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');

    params[0] = req->tenant->id;
    params[1] = email;
    res = db_exec(req->db, req->arena, &req->err, SQL_LOGIN_USER, 2, params);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1 && db_bool(res, 0, 3))
        hash = db_value(res, 0, 1);

    if (!password_verify(hash, v[1].text, password_len) || hash == NULL)
        return request_fail(req, 401, "invalid e-mail or password");

    memset(&claims, 0, sizeof(claims));
    snprintf(claims.tenant_id, sizeof(claims.tenant_id), "%s",
        req->tenant->id);
    snprintf(claims.user_id, sizeof(claims.user_id), "%s",
        db_value(res, 0, 0));
    claims.role = role_parse(db_value(res, 0, 2));
    claims.version = atoll(db_value(res, 0, 4));
    token = token_issue(req->conf, req->secret, &claims, time(NULL),
        &req->err);
    if (token == NULL)
        return -1;

    w = response_json(req, 200);
    jw_object_open(w);
    jw_kv_string(w, "access_token", token);
    jw_kv_string(w, "token_type", "Bearer");
    jw_kv_int(w, "expires_in", req->conf->token_lifetime);
    jw_object_close(w);
    free(token);
    return 0;
}
