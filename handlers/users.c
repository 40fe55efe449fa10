/*
 * Users of a tenant.  They live in the shared public.users table, so
 * every query names the schema and filters on the request's tenant.
 */
#include "config.h"

#include "common.h"
#include "handlers.h"

static const char SQL_USER_ME[] =
    "SELECT id, email, full_name, role, is_active, created_at, updated_at, "
    SQL_ETAG " FROM public.users WHERE id = $1 AND tenant_id = $2";

int
users_me(struct request *req)
{
    const char *params[2] = { req->auth.user_id, req->tenant->id };
    struct json_writer *w;
    PGresult *res;

    if (request_query_check(req, NULL) < 0)
        return -1;
    res = db_exec(req->db, req->arena, &req->err, SQL_USER_ME, 2, params);
    if (res == NULL)
        return -1;

    /* The token outlived its user. */
    if (PQntuples(res) == 0 || !db_bool(res, 0, 4))
        return request_fail(req, 401, "invalid or expired token");

    w = response_json(req, 200);
    jw_object_open(w);
    jw_kv_string(w, "id", db_value(res, 0, 0));
    jw_kv_string(w, "tenant_id", req->tenant->id);
    jw_kv_string(w, "email", db_value(res, 0, 1));
    jw_kv_string(w, "full_name", db_value(res, 0, 2));
    jw_kv_string(w, "role", db_value(res, 0, 3));
    jw_kv_bool(w, "is_active", db_bool(res, 0, 4));
    jw_kv_string(w, "created_at", db_timestamp(req->arena, res, 0, 5));
    jw_kv_string(w, "updated_at", db_timestamp(req->arena, res, 0, 6));
    jw_object_close(w);
    response_etag(req, db_value(res, 0, 7));
    return 0;
}
