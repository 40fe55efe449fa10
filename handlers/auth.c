/*
 * POST /api/v1/auth/login on a tenant host.
 *
 * A wrong e-mail and a wrong password give the same 401 after the same
 * Argon2id work: an unknown user is verified against a dummy hash.
 *
 * Failed logins are counted per tenant and normalised e-mail in
 * public.login_throttle (sql/public/0007_login_throttle.sql), shared by
 * every worker and host, for e-mails with and without an account alike.
 * When login_max_failures of them fall within login_failure_window
 * seconds, the e-mail is locked for that long: a login for it answers 429
 * with Retry-After, before any password is looked at.  A success clears
 * the count.  The honest path costs nothing extra: the one lookup reads
 * the user and the throttle row together, and only a login that had
 * failures before it runs a second statement (the DELETE).
 */
#include "config.h"

#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "handlers.h"
#include "fields.h"
#include "password.h"

/* Always one row: the user's columns are NULL when there is no user. */
static const char SQL_LOGIN_USER[] =
    "SELECT u.id, u.password_hash, u.role, u.is_active, u.token_version,"
    " t.tenant_id IS NOT NULL,"
    " ceil(extract(epoch FROM t.locked_until - now()))::integer"
    " FROM (SELECT $1::uuid AS tenant_id, $2::text AS email) AS k"
    " LEFT JOIN public.users u"
    "  ON u.tenant_id = k.tenant_id AND u.email = k.email"
    " LEFT JOIN public.login_throttle t"
    "  ON t.tenant_id = k.tenant_id AND t.email = k.email";

/*
 * One more failure for the e-mail: a count whose window is over starts
 * again at 1, and the count that reaches the limit locks the e-mail for
 * the window.  The same statement removes the tenant's other rows whose
 * window and lock are over.  $3 is the limit, $4 the window in seconds.
 */
static const char SQL_LOGIN_FAILED[] =
    "WITH expired AS ("
    " DELETE FROM public.login_throttle"
    " WHERE tenant_id = $1 AND email <> $2"
    " AND window_start < now() - $4::integer * interval '1 second'"
    " AND (locked_until IS NULL OR locked_until < now()))"
    " INSERT INTO public.login_throttle AS t"
    " (tenant_id, email, failures, window_start, locked_until)"
    " VALUES ($1, $2, 1, now(), CASE WHEN $3::integer <= 1"
    "  THEN now() + $4::integer * interval '1 second' END)"
    " ON CONFLICT (tenant_id, email) DO UPDATE SET"
    " failures = CASE"
    "  WHEN t.window_start < now() - $4::integer * interval '1 second'"
    "  THEN 1 ELSE t.failures + 1 END,"
    " window_start = CASE"
    "  WHEN t.window_start < now() - $4::integer * interval '1 second'"
    "  THEN now() ELSE t.window_start END,"
    " locked_until = CASE WHEN CASE"
    "  WHEN t.window_start < now() - $4::integer * interval '1 second'"
    "  THEN 1 ELSE t.failures + 1 END >= $3::integer"
    "  THEN now() + $4::integer * interval '1 second' END";

static const char SQL_LOGIN_SUCCEEDED[] =
    "DELETE FROM public.login_throttle WHERE tenant_id = $1 AND email = $2";

static const struct field_spec login_fields[] = {
    { "email", FIELD_TEXT, FIELD_REQUIRED, 254, 0, 0, NULL },
    { "password", FIELD_TEXT, FIELD_REQUIRED, 4096, 0, 0, NULL },
};

/*
 * Counts the failure and answers 401.  The answer is an error, but the
 * count must be committed: so the 401 goes into req->err and the handler
 * returns 0, which commits the transaction, and the worker still answers
 * with the problem in req->err.
 */
static int
login_failed(struct request *req, const char *email)
{
    char max_failures[16], window[16];
    const char *params[4] = {
        req->tenant->id, email, max_failures, window
    };

    snprintf(max_failures, sizeof(max_failures), "%d",
        req->conf->login_max_failures);
    snprintf(window, sizeof(window), "%d", req->conf->login_failure_window);
    if (db_run(req->db, &req->err, SQL_LOGIN_FAILED, 4, params) < 0)
        return -1;

    request_fail(req, 401, "invalid e-mail or password");
    return 0;
}

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
    int locked_for;

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

    /* Locked: no password is looked at until the lock ends. */
    locked_for = db_value(res, 0, 6) != NULL ? atoi(db_value(res, 0, 6))
                                               : 0;
    if (locked_for > 0) {
        req->err.retry_after = locked_for;
        return request_fail(req, 429, "too many failed logins for this "
            "e-mail; try again later");
    }

    if (db_value(res, 0, 0) != NULL && db_bool(res, 0, 3))
        hash = db_value(res, 0, 1);

    if (!password_verify(hash, v[1].text, password_len) || hash == NULL)
        return login_failed(req, email);

    if (db_bool(res, 0, 5) &&
        db_run(req->db, &req->err, SQL_LOGIN_SUCCEEDED, 2, params) < 0)
        return -1;

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
