/*
 * The audit trail's PostgreSQL half: entries written to the outbox of a
 * tenant's schema (audit_outbox, sql/migrations/0003_audit_outbox.up.sql) in
 * the transaction of the change they record, with every secret masked.
 *
 * Writers (handlers/audit.c for requests, tenant.c for sign-up) call
 * audit_outbox_insert(); it also sends a notification on AUDIT_CHANNEL,
 * which PostgreSQL delivers only when the transaction commits, so the
 * shipper (fcgi/shipper.c) wakes up for entries that exist and never for
 * ones rolled back.
 */
#ifndef CREWD_AUDIT_H
#define CREWD_AUDIT_H

#include <stdbool.h>
#include <stddef.h>

#include <bson/bson.h>
#include <json-c/json.h>

#include "arena.h"
#include "db.h"
#include "error.h"
#include "json.h"
#include "tenant.h"
#include "uuid.h"

/* Notified with the tenant's id when an entry of it commits. */
#define AUDIT_CHANNEL "crewd_audit"

/* What a secret's value is shown as. */
#define AUDIT_MASK "***"

/* Caps on what a request tells about itself (bytes). */
#define AUDIT_IP_MAX 64
#define AUDIT_USER_AGENT_MAX 512

/* The longest resource type, and the grammar of one: [a-z_]. */
#define AUDIT_TYPE_MAX 50

enum audit_action {
    AUDIT_CREATE,
    AUDIT_READ,
    AUDIT_UPDATE,
    AUDIT_DELETE
};

/* "create", "read", "update", "delete"; NULL-terminated. */
extern const char *const audit_action_names[];

/* True for a resource type's shape: a lower-case letter, then [a-z_]. */
bool audit_type_valid(const char *type);

struct audit_entry {
    enum audit_action action;
    const char *user_id;        /* who acted (a UUID) */
    const char *resource_type;  /* "agent": see audit_type_valid */
    const char *resource_id;    /* a UUID; NULL: none (a list read) */

    /*
     * The resource before and after the change, NULL for none (JSON
     * null).  Borrowed, and masked in place by audit_outbox_insert.
     */
    struct json_object *before;
    struct json_object *after;

    /* As the request said; NULL or "": unknown.  Cleaned and capped. */
    const char *ip_address;
    const char *user_agent;
};

/*
 * A new entry id: a time-ordered MongoDB ObjectId (48 bits of Unix time
 * in milliseconds, 12 bits of the fraction of that millisecond, 36
 * random bits) written as a UUID in the layout of mongo_oid_to_uuid
 * (lib/mongo.h).  The outbox row, the MongoDB document (_id) and the API
 * show the same id; ids compare in the order they were made, strictly
 * within one process.
 */
void audit_entry_id(char out[UUID_TEXT_LEN + 1]);

/*
 * True when a member of this name holds a secret, whatever its case:
 * password, password_hash, credentials, encrypted_credentials, tokens,
 * keys (the list is in audit.c).
 */
bool audit_secret_name(const char *name);

/*
 * Replaces, at any depth of value, the value of every member whose name
 * is a secret's by the string "***" (a null stays null: that a secret
 * was removed is not a secret).
 */
void audit_mask(struct json_object *value);

/*
 * Text from a request header made fit to store: at most max bytes, cut
 * on a character boundary, every control character and every byte of
 * invalid UTF-8 replaced by '?'.  NULL for NULL or "".  From the arena.
 */
const char *audit_clean_text(struct arena *a, const char *text,
    size_t max);

/* "LLM provider" -> "llm_provider": a resource type from a noun. */
const char *audit_type_from_noun(struct arena *a, const char *noun);

/*
 * Writes entry to the outbox of schema (NULL: the schema of the search
 * path, as in a tenant request) inside the caller's transaction, and
 * notifies the shipper about tenant_id at commit.  The entry's id is a
 * new time-ordered UUID.  Returns 0, or -1 with err set.
 */
int audit_outbox_insert(struct db *db, struct arena *a, const char *schema,
    const char *tenant_id, const struct audit_entry *entry,
    struct crewd_error *err);

/*
 * The entries of a sign-up, in its transaction: the tenant and its first
 * admin were created (by that admin, who exists from then on).
 */
int audit_signup(struct db *db, struct arena *a, const struct tenant *t,
    const char *name, const char *admin_id, const char *admin_email,
    const char *ip_address, const char *user_agent,
    struct crewd_error *err);

/* An entry as the outbox holds it, text as PostgreSQL gives it. */
struct audit_stored {
    const char *id;
    const char *user_id;
    const char *action;
    const char *resource_type;
    const char *resource_id;    /* NULL: none */
    const char *changes;        /* JSON text */
    const char *ip_address;     /* NULL: unknown */
    const char *user_agent;     /* NULL: unknown */
    int64_t timestamp_ms;       /* created_at */
};

/*
 * The MongoDB document of an entry (out is initialised here; destroy it
 * in any case): _id the ObjectId of the entry's id, "timestamp" a date,
 * and the fields of the audit collection's validator, checked against it
 * (mongo_doc_check).  Member names of "changes" that MongoDB would
 * refuse ('$', '.') travel escaped, as do '%' ("%24", "%2E", "%25"), so
 * audit_write_entry shows exactly the names that were stored.
 * Returns 0, or -1 with err (an entry that cannot be a document).
 */
int audit_document(const struct audit_stored *entry, bson_t *out,
    struct crewd_error *err);

/*
 * Writes an audit document as the API shows an entry: {"id", "user_id",
 * "action", "resource_type", "resource_id", "changes", "ip_address",
 * "user_agent", "timestamp"}, absent fields as null.
 */
void audit_write_entry(struct json_writer *w, const bson_t *doc);

#endif
