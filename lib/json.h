/*
 * JSON in and out.
 *
 * In: json_parse() is a strict RFC 8259 parser that builds json-c objects.
 * It refuses what json-c's own tokener lets through: duplicate keys in an
 * object, invalid UTF-8 (overlongs, surrogates, code points past U+10FFFF,
 * lone surrogate escapes), "\u0000" (PostgreSQL text cannot hold it),
 * nesting deeper than JSON_MAX_DEPTH, numbers that are not finite doubles,
 * leading zeros, trailing commas, comments, anything after the value but
 * whitespace.  Integers that fit int64 become json_type_int; other numbers
 * become json_type_double keeping their original text.
 *
 * Out: struct json_writer writes straight into a struct buf with no
 * intermediate tree; commas are placed by the writer.
 */
#ifndef CREWD_JSON_H
#define CREWD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "buf.h"
#include "error.h"

#define JSON_MAX_DEPTH 32

/*
 * Parses text[0..len) into a new json-c object the caller releases with
 * json_object_put().  On a syntax problem returns NULL with err set to 400
 * and a detail naming the byte offset, e.g.
 * "invalid JSON at byte 17: duplicate key \"name\"".
 * The literal JSON null parses successfully; *out is then NULL and the
 * function returns 0.  Returns 0 on success, -1 on error.
 */
int json_parse(const char *text, size_t len, struct json_object **out,
    struct crewd_error *err);

/* Validates UTF-8 strictly (as the parser does); true when valid. */
bool json_utf8_valid(const char *s, size_t len);

/* Number of Unicode code points in valid UTF-8 s[0..len). */
size_t json_utf8_length(const char *s, size_t len);

/*
 * RFC 7396 JSON merge patch: returns patch applied to target (which may
 * be NULL) as a new value the caller releases with json_object_put();
 * neither argument is changed.  A null member of patch removes that
 * member; objects merge member by member; anything else replaces.
 */
struct json_object *json_merge_patch(struct json_object *target,
    struct json_object *patch);

struct json_writer {
    struct buf *out;
    int depth;
    uint64_t need_comma;    /* bit d: a value was written at depth d */
    bool after_key;
};

void jw_init(struct json_writer *w, struct buf *out);
void jw_object_open(struct json_writer *w);
void jw_object_close(struct json_writer *w);
void jw_array_open(struct json_writer *w);
void jw_array_close(struct json_writer *w);
void jw_key(struct json_writer *w, const char *key);
void jw_string(struct json_writer *w, const char *s);        /* NULL: null */
void jw_string_len(struct json_writer *w, const char *s, size_t len);
void jw_int(struct json_writer *w, int64_t v);
void jw_bool(struct json_writer *w, bool v);
void jw_null(struct json_writer *w);
/* Text that is already valid JSON, such as a jsonb column; NULL: null. */
void jw_raw(struct json_writer *w, const char *json);
/* A json-c value, serialised compactly. */
void jw_object(struct json_writer *w, struct json_object *value);

/* Shorthands for "key": value. */
void jw_kv_string(struct json_writer *w, const char *key, const char *s);
void jw_kv_int(struct json_writer *w, const char *key, int64_t v);
void jw_kv_bool(struct json_writer *w, const char *key, bool v);
void jw_kv_raw(struct json_writer *w, const char *key, const char *json);

/* Appends s as a quoted, escaped JSON string to out. */
void json_escape(struct buf *out, const char *s, size_t len);

#endif
