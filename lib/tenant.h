/*
 * Tenants: the slug grammar, lookup, creation, listing and deletion.
 *
 * A tenant is a row in public.tenants, a schema named tenant_ plus 16
 * random hex digits (never derived from the slug), built from the tenant
 * migrations, and (in the roles isolation mode) a NOLOGIN role of the
 * same name with rights on that schema alone.  Creation is one
 * transaction: the row, the schema, its tables, its role and the first
 * admin user exist together or not at all.  The database does the DDL in
 * public.crewd_create_tenant() (sql/public/0006_isolation.sql), the one
 * thing the application role may do as the owner.
 */
#ifndef CREWD_TENANT_H
#define CREWD_TENANT_H

#include <stdbool.h>

#include "arena.h"
#include "db.h"
#include "error.h"
#include "mongo.h"
#include "uuid.h"

#define SLUG_MAX 63
#define SCHEMA_NAME_MAX 63
#define TENANT_NAME_MAX 255

struct tenant {
    char id[UUID_TEXT_LEN + 1];
    char slug[SLUG_MAX + 1];
    char schema[SCHEMA_NAME_MAX + 1];
    bool is_active;
    bool audit_reads;       /* reads are audited too (docs/audit.md) */
    char created_at[40];    /* RFC 3339; filled by tenant_create only */
};

/*
 * Checks a slug against the contract's grammar and the reserved names.
 * Returns 0, or -1 with a 422 on field "slug" saying why.
 */
int slug_check(const char *slug, struct crewd_error *err);

/* A new schema name: tenant_ and 16 random hex digits. */
void tenant_schema_name_random(char out[SCHEMA_NAME_MAX + 1]);

/* True when schema looks like one of ours: tenant_ and 16 hex digits. */
bool tenant_schema_name_valid(const char *schema);

/*
 * Reads the tenant with this slug.  Returns 1 and fills out when found,
 * 0 when there is none, -1 on a database error.
 */
int tenant_find_by_slug(struct db *db, struct arena *a, const char *slug,
    struct tenant *out, struct crewd_error *err);

struct tenant_signup {
    const char *name;
    const char *slug;
    const char *admin_email;        /* already normalised */
    const char *admin_password_hash;
    /* For the audit trail: who asked, NULL when unknown (crewctl). */
    const char *ip_address;
    const char *user_agent;
};

/*
 * Creates the tenant, its schema and its first admin in one transaction
 * of its own (the connection must be idle), with their audit entries.
 * A taken slug is a 409.
 * Fills out and the admin's id; on any failure nothing is left behind.
 *
 * Then, with mongo not NULL, makes the tenant's MongoDB collections
 * (lib/provision.h).  That step never fails the creation: while MongoDB
 * is down the tenant stays marked pending and its collections are made
 * when MongoDB returns.
 */
int tenant_create(struct db *db, struct mongo *mongo, struct arena *a,
    const struct tenant_signup *in, struct tenant *out,
    char admin_user_id[UUID_TEXT_LEN + 1], struct crewd_error *err);

/*
 * Deletes the tenant with this slug in one transaction of its own (the
 * connection must be idle): locks its row, drops its schema with
 * everything in it, deletes the row (its users go with it) and tells
 * running crewd processes to forget it.  No such slug is a 404.  Fills
 * out with what the tenant was and users with how many users it had.
 *
 * MongoDB is not touched: the caller drops the collections after the
 * commit (mongo_drop_tenant), so an outage never keeps a tenant alive.
 */
int tenant_delete(struct db *db, struct arena *a, const char *slug,
    struct tenant *out, long *users, struct crewd_error *err);

/*
 * Suspends (active false) or resumes the tenant with this slug and tells
 * running crewd processes.  A suspended tenant's host answers 404; its
 * data stays.  No such slug is a 404.  Returns 1 when it changed, 0 when
 * it already was so.
 */
int tenant_set_active(struct db *db, const char *slug, bool active,
    struct crewd_error *err);

/*
 * Gives the tenant a new slug (its host name), checked as at sign-up; a
 * taken slug is a 409.  The schema, role and id stay.  Old host names
 * stop answering at once.
 */
int tenant_rename_slug(struct db *db, const char *slug, const char *new_slug,
    struct crewd_error *err);

/*
 * The statements that make the rest of an open transaction the
 * tenant's.  The search path becomes the tenant's schema alone,
 * crewd.tenant_id its id (row-level security on public.users and
 * public.tenants), and, for the application role in the roles isolation
 * mode, the current role the tenant's own role, which can reach no other
 * schema.  All of it transaction-local: COMMIT and ROLLBACK undo it.  In
 * the schema mode the settings are made with SET LOCAL, which a
 * distributed engine passes on to its nodes.  On the owner's connection
 * (crewctl) the role stays.  Filled into sw, which owns the text.
 */
struct tenant_switch {
    struct db_statement statements[2];
    int count;
    const char *params[3];
    char id[UUID_TEXT_LEN + 1];
    char text[2][128];
};

int tenant_switch_prepare(const struct db *db, const struct tenant *tenant,
    struct tenant_switch *sw, struct crewd_error *err);

/* Runs the switch inside the open transaction (one round trip). */
int tenant_context_enter(struct db *db, const struct tenant *tenant,
    struct crewd_error *err);

/*
 * Normalises an e-mail address in place (trims nothing, lower-cases
 * ASCII) and checks its shape: one '@', a non-empty local part and a
 * domain with a dot, at most 254 bytes, no spaces or control characters.
 * Returns 0, or -1 with a 422 on field.
 */
int email_normalise(char *email, const char *field, struct crewd_error *err);

#endif
