/*
 * Request bodies checked against a table of fields.
 *
 * Each resource declares its writable fields once (name, type, limits,
 * required on create, nullable).  fields_read() walks a parsed JSON object
 * and reports every problem at once as 422 field errors with JSON
 * pointers: an unknown field, a server-owned field, a wrong type, a
 * string too long, a missing required field.  What it returns are typed
 * values ready to bind as SQL parameters; nothing from the body reaches
 * SQL any other way.
 */
#ifndef CREWD_FIELDS_H
#define CREWD_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "arena.h"
#include "error.h"

enum field_type {
    FIELD_STRING,       /* 1..max_chars code points, no control chars */
    FIELD_TEXT,         /* min..max_chars code points, any text */
    FIELD_BOOL,
    FIELD_INT,          /* min..max */
    FIELD_OBJECT,       /* any JSON object, stored as jsonb; max_chars
                           caps its compact text in bytes (default and
                           upper bound FIELD_OBJECT_MAX_BYTES) */
    FIELD_UUID,         /* canonicalised */
    FIELD_ENUM          /* one of choices */
};

#define FIELD_OBJECT_MAX_BYTES (1024 * 1024)

#define FIELD_REQUIRED 0x1     /* must be present on create */
#define FIELD_NULLABLE 0x2     /* JSON null is allowed */
#define FIELD_WRITE_ONLY 0x4   /* accepted, never shown (a password) */
#define FIELD_CREATE_ONLY 0x8  /* set on create, never changed after */

struct field_spec {
    const char *name;
    enum field_type type;
    unsigned flags;
    size_t max_chars;           /* strings */
    int64_t min, max;           /* integers; min: code points of text */
    const char *const *choices; /* enums, NULL-terminated */
};

struct field_value {
    bool present;
    bool is_null;
    const char *text;   /* the value as SQL parameter text; NULL if null */
    struct json_object *json;   /* the value as sent (borrowed) */
};

/*
 * Serialises an object value compactly into the arena, refusing (a 422
 * on pointer) one longer than the spec's byte cap.  Returns NULL then.
 */
const char *fields_object_text(struct arena *a,
    const struct field_spec *spec, struct json_object *value,
    const char *pointer, struct crewd_error *err);

/*
 * Reads body against specs[0..n).  creating: required fields must be
 * present.  values[i] corresponds to specs[i].  Returns 0, or -1 with
 * err holding every problem found (status 422).
 */
int fields_read(struct arena *a, struct json_object *body,
    const struct field_spec *specs, size_t n, bool creating,
    struct field_value *values, struct crewd_error *err);

/*
 * Checks one FIELD_STRING or FIELD_TEXT value as fields_read does (for
 * text that arrives another way, such as crewctl's arguments).  Returns
 * 0, or -1 with a 422 on pointer.
 */
int fields_check_text(const struct field_spec *spec, const char *s,
    size_t len, const char *pointer, struct crewd_error *err);

/* True when no value in values[0..n) is present (an empty PATCH). */
bool fields_none_present(const struct field_value *values, size_t n);

#endif
