/*
 * MongoDB: each tenant's execution logs, chat messages and audit entries,
 * one collection of each per tenant, through mongo-c-driver.
 *
 * One client per process, made after fork() and kept: a mongoc_client_t
 * is single-threaded (no pool, no monitoring thread) and connects at its
 * first operation, so a process that never needs MongoDB never opens a
 * socket.  Nothing here is shared between processes.
 *
 * Availability.  Every operation either succeeds or fails with err set:
 *
 *   503 + retry_after  MongoDB is unreachable (or was, less than
 *                      MONGO_RETRY_AFTER seconds ago: during that pause
 *                      operations fail at once instead of each waiting
 *                      for the server selection timeout)
 *   503, no retry      no mongodb_uri is configured
 *   500                anything else (a refusal we did not expect); logged
 *
 * so a caller passes err up and the client sees 503 with Retry-After.
 * mongo_available() tells beforehand whether an operation is worth trying.
 *
 * Names.  A tenant's collections are execution_logs_<tenant id>,
 * chat_messages_<tenant id> and audit_logs_<tenant id>, with the id in
 * its canonical text; a name is checked against MongoDB's rules (no '$'
 * or NUL, not "system.", namespace "db.collection" within 255 bytes) when
 * it is derived, so no operation runs on a name MongoDB would refuse.
 *
 * Documents.  Every document a tenant's collection receives must satisfy
 * the rules of that collection's $jsonSchema validator; the rules are one
 * table (mongo_doc.c) from which both the validator and mongo_doc_check()
 * are made, so behaviour does not depend on whether the server enforces
 * them.  No field name starts with '$' or contains '.', at any depth.
 * Filters are built only from typed values (struct mongo_value), never
 * from client JSON, so a value can never become a query operator.
 *
 * _id.  The local MongoDB-protocol server (CongoServer, docs/mongodb.md)
 * can only store ObjectId _ids.  Writers give every document an ObjectId
 * _id: mongo_oid_new() for a fresh one, mongo_oid_from_u64() for one
 * derived from a row id, so that writing the same row twice writes the
 * same _id (and MONGO_INSERT_DUPLICATES_OK makes the repeat harmless).
 *
 * Provisioning.  A tenant's collections are made, with validators and
 * indexes, by mongo_provision_tenant(), which can run any number of
 * times.  Never write into a tenant's collection before it succeeded:
 * an insert into a missing collection makes one without validator and
 * indexes.  lib/provision.h keeps the mark in public.tenants that says
 * whether a tenant's collections are made yet.
 */
#ifndef CREWD_MONGO_H
#define CREWD_MONGO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bson/bson.h>
#include <json-c/json.h>

#include "buf.h"
#include "error.h"
#include "json.h"

/* Seconds a client is asked to wait (Retry-After) after a failure. */
#define MONGO_RETRY_AFTER 3

/* Room for a collection name and its NUL. */
#define MONGO_COLLECTION_NAME_MAX 128

/* Per-tenant TTL bounds, in days (public.tenants checks the same). */
#define MONGO_TTL_DAYS_DEFAULT 30
#define MONGO_TTL_DAYS_MIN 1
#define MONGO_TTL_DAYS_MAX 3650

struct mongo;

enum mongo_kind {
    MONGO_EXECUTION_LOGS,
    MONGO_CHAT_MESSAGES,
    MONGO_AUDIT_LOGS,
    MONGO_KIND_COUNT
};

/* "execution_logs", "chat_messages", "audit_logs". */
const char *mongo_kind_name(enum mongo_kind kind);

/* The enums of the validators, NULL-terminated. */
extern const char *const mongo_log_levels[];      /* debug ... error */
extern const char *const mongo_chat_roles[];      /* user ... tool */
extern const char *const mongo_audit_actions[];   /* create ... delete */

/*
 * Checks a mongodb_uri value without connecting: "" (not configured) or
 * a URI libmongoc accepts whose database name MongoDB allows.  On failure
 * writes the reason to why.  For the configuration reader.
 */
bool mongo_uri_valid(const char *uri, char *why, size_t why_size);

/*
 * Makes the process's client; call after fork().  uri "" makes a handle
 * that is not configured (every operation: 503).  Options the URI does
 * not set get crewd's defaults: serverSelectionTryOnce=false,
 * serverSelectionTimeoutMS=2000, connectTimeoutMS=2000,
 * socketTimeoutMS=10000, so an outage costs a request two seconds at
 * most and the first operation after a restart succeeds.  No I/O here.
 * Returns NULL with err (status 0) only for an invalid URI.
 */
struct mongo *mongo_connect(const char *uri, struct crewd_error *err);

/* Closes the client; accepts NULL. */
void mongo_close(struct mongo *m);

/* False when no mongodb_uri is configured. */
bool mongo_configured(const struct mongo *m);

/*
 * False while MongoDB is known to be down: not configured, or an
 * operation failed for want of the server less than MONGO_RETRY_AFTER
 * seconds ago.  Cheap; no I/O.
 */
bool mongo_available(const struct mongo *m);

/*
 * Operations of this process that failed since it started (the server
 * unreachable, or refusing), for /metrics.
 */
unsigned long long mongo_failure_count(void);

/* Sends "ping": 0 when the server answers, -1 with err (503) otherwise. */
int mongo_ping(struct mongo *m, struct crewd_error *err);

/*
 * Writes the name of tenant_id's collection of this kind into out.  The
 * tenant id must be a canonical UUID; a name MongoDB would refuse is a
 * 500 (and logged), never a collection.
 */
int mongo_collection_name(const struct mongo *m, enum mongo_kind kind,
    const char *tenant_id, char out[MONGO_COLLECTION_NAME_MAX],
    struct crewd_error *err);

/* ----------------------------------------------------------------------
 * Provisioning.
 * -------------------------------------------------------------------- */

struct mongo_ttl {
    int execution_logs_days;    /* TTL of execution log entries */
    int chat_messages_days;     /* TTL of chat messages */
};

/*
 * Makes tenant_id's three collections with their validators and indexes,
 * or brings existing ones to them: a collection that exists gets its
 * validator (collMod), missing indexes are made, a TTL index whose
 * expireAfterSeconds differs from ttl is changed in place.  Safe to run
 * any number of times and from several processes at once.
 */
int mongo_provision_tenant(struct mongo *m, const char *tenant_id,
    const struct mongo_ttl *ttl, struct crewd_error *err);

/* Drops tenant_id's three collections (missing ones are not an error). */
int mongo_drop_tenant(struct mongo *m, const char *tenant_id,
    struct crewd_error *err);

/*
 * Appends to out, as one JSON object, what the server says of tenant_id's
 * collections: {"<kind>": {"name", "exists", "options", "indexes"}} with
 * listCollections' options and listIndexes' entries as relaxed Extended
 * JSON.  For operators ("crewctl mongo inspect") and the tests.
 */
int mongo_inspect_tenant(struct mongo *m, const char *tenant_id,
    struct buf *out, struct crewd_error *err);

/*
 * The $jsonSchema validator of a kind, as relaxed Extended JSON text
 * (static storage), for documentation and the tests.
 */
const char *mongo_validator_json(enum mongo_kind kind);

/* ----------------------------------------------------------------------
 * Documents.
 * -------------------------------------------------------------------- */

/* A fresh ObjectId (per-process context, made after fork()). */
void mongo_oid_new(struct mongo *m, bson_oid_t *oid);

/*
 * A stable ObjectId for an integer row id: four zero bytes, then the id
 * big-endian.  The same id always gives the same ObjectId, and their
 * order is the ids' order.
 */
void mongo_oid_from_u64(uint64_t id, bson_oid_t *oid);

/*
 * The contract's ids are UUIDs.  An ObjectId is shown as a version 8
 * (custom layout, RFC 9562) UUID holding its 12 bytes, constant bytes at
 * the version, variant and last two places:
 *
 *   oooooooo-oooo-80oo-80oo-oooooooo0000
 *
 * so the UUID texts sort as the ObjectIds do, and every such text turns
 * back into its ObjectId.  mongo_oid_from_uuid is false for a UUID of
 * any other shape (out must hold UUID text, 37 bytes).
 */
void mongo_oid_to_uuid(const bson_oid_t *oid, char out[37]);
bool mongo_oid_from_uuid(const char *uuid, bson_oid_t *oid);

/*
 * Checks doc against the rules of kind's validator (required fields,
 * BSON types, enums) and the field-name rule (no '$' first, no '.', at
 * any depth).  Returns 0, or -1 with a 422 field error whose field is
 * prefix followed by the JSON pointer of the offending member
 * (prefix "/3" and member level give "/3/level"; prefix may be "").
 */
int mongo_doc_check(enum mongo_kind kind, const bson_t *doc,
    const char *prefix, struct crewd_error *err);

/*
 * Appends a JSON scalar (null, boolean, number, string) under key; false,
 * and nothing appended, for an object or an array.
 */
bool mongo_append_scalar(bson_t *doc, const char *key,
    struct json_object *value);

/*
 * Appends a JSON value to doc under key, as BSON: objects, arrays,
 * strings, booleans, null, int64 and doubles (a number json.c kept as
 * text is converted by strtod).  A member name that starts with '$' or
 * contains '.' is a 422 on pointer (extended by the path inside value);
 * nothing is appended then.  Depth is bounded by the JSON parser's.
 */
int mongo_append_json(bson_t *doc, const char *key, struct json_object *value,
    const char *pointer, struct crewd_error *err);

/*
 * Writes a BSON value as JSON: documents as objects, arrays, strings,
 * numbers, booleans, null, dates as RFC 3339 UTC with milliseconds
 * ("2026-12-04T16:12:03.123Z"), ObjectIds as their 24 hex digits.  Other
 * BSON types (which our writers never store) are written as null.
 */
void mongo_write_json(struct json_writer *w, const bson_iter_t *iter);

/* Milliseconds since the epoch, now (for "timestamp" fields). */
int64_t mongo_now_ms(void);

/*
 * Date text: RFC 3339 UTC with milliseconds into out (at least 25
 * bytes); and back, for exactly that shape (with 0 to 6 fraction digits,
 * truncated to milliseconds).  mongo_time_parse returns false for any
 * other text.
 */
void mongo_time_format(int64_t ms, char out[32]);
bool mongo_time_parse(const char *text, int64_t *ms);

/* ----------------------------------------------------------------------
 * Writing and reading.
 * -------------------------------------------------------------------- */

/* For mongo_insert_many's flags. */
#define MONGO_INSERT_DUPLICATES_OK 0x1  /* an _id already there counts as
                                           written (a repeated delivery) */

/*
 * Inserts docs[0..n) into tenant_id's collection of this kind in one
 * insert_many (ordered: a failure leaves the documents before it
 * written).  Each document must have passed mongo_doc_check and carry an
 * ObjectId _id.  With MONGO_INSERT_DUPLICATES_OK the insert is unordered
 * and duplicate-key errors (11000) are not failures.
 */
int mongo_insert_many(struct mongo *m, enum mongo_kind kind,
    const char *tenant_id, const bson_t *const *docs, size_t n,
    unsigned flags, struct crewd_error *err);

enum mongo_type {
    MONGO_STRING,
    MONGO_DATE,         /* milliseconds since the epoch */
    MONGO_INT64,
    MONGO_BOOL,
    MONGO_OID
};

struct mongo_value {
    enum mongo_type type;
    const char *string;     /* MONGO_STRING: valid UTF-8 */
    int64_t number;         /* MONGO_DATE, MONGO_INT64 */
    bool boolean;           /* MONGO_BOOL */
    bson_oid_t oid;         /* MONGO_OID */
};

enum mongo_op {
    MONGO_EQ,
    MONGO_LT,
    MONGO_LTE,
    MONGO_GT,
    MONGO_GTE
};

/* field op value; field is a name from our code, never from a request. */
struct mongo_condition {
    const char *field;
    enum mongo_op op;
    struct mongo_value value;
};

/*
 * A page of documents in the order (order_field, _id), both ascending or
 * both descending, matching every condition.  With has_after, only the
 * documents after position (after_value, after_id) in that order: the
 * keyset of cursor pagination, so a page costs the same however deep it
 * is and documents written meanwhile neither repeat nor vanish.
 */
struct mongo_query {
    const struct mongo_condition *conditions;
    size_t nconditions;
    const char *order_field;
    bool descending;
    bool has_after;
    struct mongo_value after_value;
    struct mongo_value after_id;
    int64_t limit;              /* 1.. */
};

/*
 * Called for each document found, in order; doc lives until the call
 * returns.  Return 0 to go on, -1 to stop with the error the callback
 * set in its own context.
 */
typedef int (*mongo_each_fn)(const bson_t *doc, void *context);

/*
 * Runs query on tenant_id's collection of this kind.  Returns the number
 * of documents given to each, or -1 with err (a callback's -1 also
 * returns -1, err untouched).
 */
int mongo_find(struct mongo *m, enum mongo_kind kind, const char *tenant_id,
    const struct mongo_query *query, mongo_each_fn each, void *context,
    struct crewd_error *err);

/*
 * Gives each every document of tenant_id's collection of this kind, in
 * _id order, with no limit: for backups (crewctl tenant backup).  A
 * collection that does not exist has no documents.  Returns the number
 * of documents, or -1 as mongo_find does.
 */
int mongo_scan(struct mongo *m, enum mongo_kind kind, const char *tenant_id,
    mongo_each_fn each, void *context, struct crewd_error *err);

#endif
