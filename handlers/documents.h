/*
 * What the handlers of MongoDB documents share (execution logs, chat
 * messages): reading entries from a body against a field table, turning
 * them into BSON checked by the collection's rules, and pages of
 * documents with the same opaque cursors as every other list.
 *
 * A document is shown with "id" (its ObjectId as a UUID, lib/mongo.h)
 * and a fixed list of fields, absent ones as null.  Its position in a
 * list is (timestamp, _id), which is also what its cursor holds.
 */
#ifndef CREWD_HANDLERS_DOCUMENTS_H
#define CREWD_HANDLERS_DOCUMENTS_H

#include <stdbool.h>

#include <bson/bson.h>

#include "fields.h"
#include "mongo.h"
#include "request.h"

/*
 * The body as a list of entries: one object, or (with max > 1) an array
 * of 1..max objects.  *array tells which it was; a non-object entry is a
 * 422 on its pointer.  The entries are borrowed from the parsed body.
 */
int documents_read_body(struct request *req, size_t max,
    struct json_object ***entries, size_t *n, bool *array);

/*
 * Reads one entry against specs[0..n) (fields_read) after refusing the
 * fields in server_fields (NULL-terminated) as "is set by the server".
 * prefix ("" or "/3") is put before every pointer of the problems found.
 * Returns 0, or -1 with the problems added to req->err (the caller goes
 * on with the next entry, so every problem is reported at once).
 */
int documents_read_entry(struct request *req, struct json_object *entry,
    const struct field_spec *specs, size_t n,
    const char *const *server_fields, const char *prefix,
    struct field_value *values);

/*
 * Appends a JSON value read from the body under key: a member name that
 * starts with '$' or contains '.' is a 422 on prefix/key/...
 */
int documents_append_json(struct request *req, bson_t *doc, const char *key,
    struct json_object *value, const char *prefix);

/*
 * Appends "field equals value" to conditions[*n].  With choices, value is
 * a query parameter's text that must be one of them (a 400 naming the
 * parameter otherwise, saying hint) and the condition holds our own copy,
 * never the text sent.  Returns 0 or -1.
 */
int documents_condition(struct request *req,
    struct mongo_condition *conditions, size_t *n, const char *field,
    const char *value, const char *const *choices, const char *hint);

/* Writes "id" and then fields (NULL-terminated) of doc as one object. */
void documents_write(struct json_writer *w, const bson_t *doc,
    const char *const *fields);

/*
 * GET of a list: ?limit= and ?cursor= read with the other lists' rules,
 * the documents of kind matching conditions in (timestamp, _id) order
 * (descending: newest first), each written with fields, and next_cursor.
 */
int documents_list(struct request *req, enum mongo_kind kind,
    const struct mongo_condition *conditions, size_t nconditions,
    bool descending, const char *const *fields);

#endif
