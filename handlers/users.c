/*
 * Users of a tenant: /api/v1/users, /api/v1/users/{id} (admins only) and
 * /api/v1/users/me (everyone).
 *
 * Users live in the shared public.users table, so every query names the
 * schema and filters on the request's tenant (shared_table): a user of
 * another tenant answers the same 404 as an id that exists nowhere.
 *
 * Beyond the field table:
 *   - A password is checked against the policy (over the byte cap: 400,
 *     before any other work; too short: 422), stored only as its Argon2id
 *     hash, and never written to a response or a log.
 *   - The e-mail is normalised (lower-cased) and is the login name; it is
 *     set by the invitation and cannot be changed afterwards.
 *   - The last active admin of a tenant cannot be deleted, suspended or
 *     demoted (409), so a tenant can never lock itself out.
 *   - An admin cannot delete or suspend their own account (409).  The
 *     request would end the caller's access in the middle of their work,
 *     and taking an account away is a decision a second admin should
 *     make.  Demoting oneself stays possible while another active admin
 *     exists: handing the role over is a legitimate step.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "handlers.h"
#include "password.h"
#include "resource.h"

/* The select list; the order is the column numbers in write_user. */
#define USER_COLUMNS \
    "id, tenant_id, email, full_name, role, is_active, created_at, " \
    "updated_at, " SQL_ETAG

/* Every token of the user stops working (see users_update). */
static const char SQL_USER_RETIRE_TOKENS[] =
    "UPDATE public.users SET token_version = token_version + 1"
    " WHERE id = $1 AND tenant_id = $2";

/*
 * The tenant's active admins, locked in id order.  Every request that
 * may take an admin away takes these locks first (and only then the
 * row it changes), so two such requests queue instead of each seeing
 * the other admin still there; the common order rules out a deadlock.
 */
static const char SQL_LOCK_ACTIVE_ADMINS[] =
    "SELECT id FROM public.users"
    " WHERE tenant_id = $1 AND role = 'admin' AND is_active"
    " ORDER BY id FOR UPDATE";

static const char *const role_names[] = { "admin", "member", "viewer", NULL };

/* Indexes into user_fields, and so into the values read from a body. */
enum {
    USER_EMAIL,
    USER_PASSWORD,
    USER_FULL_NAME,
    USER_ROLE,
    USER_IS_ACTIVE,
    USER_NFIELDS
};

/*
 * The password has no length limit here: its cap is password_max_bytes
 * (bytes, not characters), answered with a 400 by validate_user.
 */
static const struct field_spec user_fields[USER_NFIELDS] = {
    [USER_EMAIL] = { "email", FIELD_STRING,
        FIELD_REQUIRED | FIELD_CREATE_ONLY, 254, 0, 0, NULL },
    [USER_PASSWORD] = { "password", FIELD_TEXT,
        FIELD_REQUIRED | FIELD_WRITE_ONLY, SIZE_MAX, 0,
        0, NULL },
    [USER_FULL_NAME] = { "full_name", FIELD_STRING, FIELD_NULLABLE, 255, 0,
        0, NULL },
    [USER_ROLE] = { "role", FIELD_ENUM, FIELD_REQUIRED, 0, 0, 0,
        role_names },
    [USER_IS_ACTIVE] = { "is_active", FIELD_BOOL, 0, 0, 0, 0, NULL },
};

/* The password's value is replaced by its hash before it is written. */
static const char *const user_field_columns[USER_NFIELDS] = {
    [USER_EMAIL] = "email",
    [USER_PASSWORD] = "password_hash",
    [USER_FULL_NAME] = "full_name",
    [USER_ROLE] = "role",
    [USER_IS_ACTIVE] = "is_active",
};

static const struct list_filter user_filters[] = {
    { "role", "role", FIELD_ENUM, role_names },
    { "is_active", "is_active", FIELD_BOOL, NULL },
};

/* Never the password hash: USER_COLUMNS does not even select it. */
static void
write_user(struct request *req, const PGresult *res, int row)
{
    struct json_writer *w = &req->json;

    jw_object_open(w);
    jw_kv_string(w, "id", db_value(res, row, 0));
    jw_kv_string(w, "tenant_id", db_value(res, row, 1));
    jw_kv_string(w, "email", db_value(res, row, 2));
    jw_kv_string(w, "full_name", db_value(res, row, 3));
    jw_kv_string(w, "role", db_value(res, row, 4));
    jw_kv_bool(w, "is_active", db_bool(res, row, 5));
    jw_kv_string(w, "created_at", db_timestamp(req->arena, res, row, 6));
    jw_kv_string(w, "updated_at", db_timestamp(req->arena, res, row, 7));
    jw_object_close(w);
}

static int
validate_user(struct request *req, struct field_value *values, bool creating)
{
    struct field_value *email = &values[USER_EMAIL];
    struct field_value *password = &values[USER_PASSWORD];

    if (password->text != NULL) {
        size_t len = strlen(password->text);

        /* Alone, whatever else is wrong: it costs nothing more. */
        if (len > req->conf->password_max_bytes) {
            error_clear(&req->err);
            return request_fail(req, 400,
                "password is longer than %zu bytes",
                req->conf->password_max_bytes);
        }
        password_check_policy(req->conf, "/password", password->text, len,
            &req->err);
    }

    if (email->present && !creating) {
        error_field(&req->err, "/email", "cannot be changed");
    } else if (email->text != NULL) {
        char *normalised = arena_strdup(req->arena, email->text);

        if (email_normalise(normalised, "/email", &req->err) == 0)
            email->text = normalised;
    }
    return req->err.status != 0 ? -1 : 0;
}

/* Another user with the same e-mail in this tenant. */
static void
explain_user_refusal(struct request *req)
{
    if (strcmp(req->err.sqlstate, "23505") == 0 &&
        strstr(req->err.constraint, "email") != NULL) {
        request_fail(req, 409, "a user with this e-mail already exists");
        error_field(&req->err, "/email", "is taken in this tenant");
    }
}

const struct resource users_resource = {
    .table = "public.users",
    .collection = "users",
    .noun = "user",
    .columns = USER_COLUMNS,
    .ncolumns = 9,
    .created_at_column = 6,
    .shared_table = true,
    .fields = user_fields,
    .field_columns = user_field_columns,
    .nfields = USER_NFIELDS,
    .filters = user_filters,
    .nfilters = sizeof(user_filters) / sizeof(user_filters[0]),
    .write = write_user,
    .validate = validate_user,
    .explain = explain_user_refusal,
};

/* Replaces a password that is present by its hash. */
static int
hash_password(struct request *req, struct field_value *password)
{
    char *hash;

    if (password->text == NULL)
        return 0;
    hash = arena_alloc(req->arena, 128);
    if (password_hash(req->conf, password->text, strlen(password->text),
            hash, &req->err) < 0)
        return -1;
    password->text = hash;
    return 0;
}

/* The tenant's active admins, locked (SQL_LOCK_ACTIVE_ADMINS). */
static PGresult *
lock_active_admins(struct request *req)
{
    const char *params[1] = { req->tenant->id };

    return db_exec(req->db, req->arena, &req->err, SQL_LOCK_ACTIVE_ADMINS,
        1, params);
}

/* True when user {id} is the one and only row of the locked admins. */
static bool
is_last_active_admin(struct request *req, const PGresult *admins)
{
    return PQntuples(admins) == 1 &&
        strcmp(db_value(admins, 0, 0), req->path_ids[0]) == 0;
}

static bool
is_caller(struct request *req)
{
    return strcmp(req->auth.user_id, req->path_ids[0]) == 0;
}

/* A patch that makes the user stop being an active admin, if it was. */
static bool
may_take_admin_away(const struct field_value *values)
{
    const struct field_value *role = &values[USER_ROLE];
    const struct field_value *active = &values[USER_IS_ACTIVE];

    return (role->present && strcmp(role->text, "admin") != 0) ||
        (active->present && strcmp(active->text, "false") == 0);
}

int
users_create(struct request *req)
{
    struct field_value v[USER_NFIELDS];

    if (request_query_check(req, NULL) < 0 ||
        resource_read_body(req, &users_resource, true, v) < 0 ||
        hash_password(req, &v[USER_PASSWORD]) < 0)
        return -1;
    return resource_insert(req, &users_resource, v);
}

int
users_update(struct request *req)
{
    struct field_value v[USER_NFIELDS];
    const PGresult *admins = NULL;
    bool suspends;

    if (request_query_check(req, NULL) < 0 ||
        resource_read_body(req, &users_resource, false, v) < 0)
        return -1;

    /* The admins' locks first, then the row's (see the SQL above). */
    if (may_take_admin_away(v)) {
        admins = lock_active_admins(req);
        if (admins == NULL)
            return -1;
    }
    if (resource_lock(req, &users_resource) < 0)
        return -1;

    suspends = v[USER_IS_ACTIVE].present &&
        strcmp(v[USER_IS_ACTIVE].text, "false") == 0;
    if (suspends && is_caller(req))
        return request_fail(req, 409, "you cannot suspend your own "
            "account; another admin can");
    if (admins != NULL && is_last_active_admin(req, admins))
        return request_fail(req, 409, "this user is the last active admin "
            "of the tenant and cannot be %s; make another user an admin "
            "first", suspends ? "suspended" : "demoted");

    /* Only now, for a row that exists and matched If-Match. */
    if (hash_password(req, &v[USER_PASSWORD]) < 0)
        return -1;

    /*
     * A new password or a suspension retires every token the user holds
     * (the "ver" claim must match token_version).  Same transaction.
     */
    if ((v[USER_PASSWORD].present || suspends) &&
        db_run(req->db, &req->err, SQL_USER_RETIRE_TOKENS, 2,
            (const char *[]) { req->path_ids[0], req->tenant->id }) < 0)
        return -1;
    return resource_apply(req, &users_resource, v);
}

int
users_delete(struct request *req)
{
    const PGresult *admins;

    if (request_query_check(req, NULL) < 0)
        return -1;

    /* The admins' locks first, then the row's (see the SQL above). */
    admins = lock_active_admins(req);
    if (admins == NULL || resource_lock(req, &users_resource) < 0)
        return -1;

    if (is_caller(req))
        return request_fail(req, 409, "you cannot delete your own "
            "account; another admin can");
    if (is_last_active_admin(req, admins))
        return request_fail(req, 409, "this user is the last active admin "
            "of the tenant and cannot be deleted; make another user an "
            "admin first");

    return resource_delete_locked(req, &users_resource);
}

/*
 * The worker has already checked, in this transaction, that the token's
 * user exists in this tenant and is active.
 */
int
users_me(struct request *req)
{
    PGresult *res;

    if (request_query_check(req, NULL) < 0)
        return -1;
    res = resource_fetch(req, &users_resource, req->auth.user_id);
    if (res == NULL)
        return -1;
    return resource_respond(req, &users_resource, 200, res);
}
