#include "config.h"

#include <stdio.h>
#include <string.h>

#include "fields.h"
#include "json.h"
#include "uuid.h"

/* Fields no client may send, whatever the resource. */
static const char *const server_owned[] = {
    "id", "tenant_id", "created_at", "updated_at", "password_hash",
    "encrypted_credentials", "has_credentials", NULL
};

/* "/key" with "~" and "/" escaped as RFC 6901 asks. */
static char *
json_pointer(struct arena *a, const char *key)
{
    size_t extra = 0;
    char *out, *p;

    for (const char *k = key; *k != '\0'; k++)
        if (*k == '~' || *k == '/')
            extra++;
    out = arena_alloc(a, strlen(key) + extra + 2);
    p = out;
    *p++ = '/';
    for (const char *k = key; *k != '\0'; k++) {
        if (*k == '~' || *k == '/') {
            *p++ = '~';
            *p++ = *k == '~' ? '0' : '1';
        } else {
            *p++ = *k;
        }
    }
    *p = '\0';
    return out;
}

static bool
is_server_owned(const char *key)
{
    for (size_t i = 0; server_owned[i] != NULL; i++)
        if (strcmp(key, server_owned[i]) == 0)
            return true;
    return false;
}

static const struct field_spec *
find_spec(const struct field_spec *specs, size_t n, const char *key,
    size_t *index)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(specs[i].name, key) == 0) {
            *index = i;
            return &specs[i];
        }
    return NULL;
}

/*
 * Names and other one-line strings refuse what can hide or reorder what a
 * person reads: C0 and C1 control characters, DEL, and the bidirectional
 * embedding, override and isolate controls (U+202A..E, U+2066..9).  The
 * input is valid UTF-8 (the parser saw to that).
 */
static bool
has_control_chars(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;

    for (size_t i = 0; i < len; i++) {
        if (u[i] < 0x20 || u[i] == 0x7f)
            return true;
        if (u[i] == 0xc2 && i + 1 < len && u[i + 1] >= 0x80 &&
            u[i + 1] <= 0x9f)
            return true;
        if (u[i] == 0xe2 && i + 2 < len &&
            ((u[i + 1] == 0x80 && u[i + 2] >= 0xaa && u[i + 2] <= 0xae) ||
             (u[i + 1] == 0x81 && u[i + 2] >= 0xa6 && u[i + 2] <= 0xa9)))
            return true;
    }
    return false;
}

/* True when s holds nothing but spaces (ASCII or no-break). */
static bool
is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ')
            continue;
        if ((unsigned char)s[i] == 0xc2 && i + 1 < len &&
            (unsigned char)s[i + 1] == 0xa0) {
            i++;
            continue;
        }
        return false;
    }
    return true;
}

int
fields_check_text(const struct field_spec *spec, const char *s, size_t len,
    const char *pointer, struct crewd_error *err)
{
    size_t chars;

    if (!json_utf8_valid(s, len)) {
        error_field(err, pointer, "must be valid UTF-8");
        return -1;
    }
    chars = json_utf8_length(s, len);
    if ((spec->type == FIELD_STRING || spec->min > 0) && chars == 0) {
        error_field(err, pointer, "must not be empty");
        return -1;
    }
    if (chars > spec->max_chars) {
        error_field(err, pointer, "must be at most %zu characters",
            spec->max_chars);
        return -1;
    }
    if (spec->type == FIELD_STRING && has_control_chars(s, len)) {
        error_field(err, pointer, "must not contain control characters");
        return -1;
    }
    if (spec->type == FIELD_STRING && is_blank(s, len)) {
        error_field(err, pointer, "must not be blank");
        return -1;
    }
    return 0;
}

static void
read_string(struct arena *a, const struct field_spec *spec,
    struct json_object *v, const char *pointer, struct field_value *out,
    struct crewd_error *err)
{
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);

    if (fields_check_text(spec, s, len, pointer, err) == 0)
        out->text = arena_strndup(a, s, len);
}

static void
read_value(struct arena *a, const struct field_spec *spec,
    struct json_object *v, const char *pointer, struct field_value *out,
    struct crewd_error *err)
{
    enum json_type type = json_object_get_type(v);

    switch (spec->type) {
    case FIELD_STRING:
    case FIELD_TEXT:
        if (type != json_type_string) {
            error_field(err, pointer, "must be a string");
            return;
        }
        read_string(a, spec, v, pointer, out, err);
        return;

    case FIELD_BOOL:
        if (type != json_type_boolean) {
            error_field(err, pointer, "must be true or false");
            return;
        }
        out->text = json_object_get_boolean(v) ? "true" : "false";
        return;

    case FIELD_INT: {
        int64_t n;

        if (type != json_type_int) {
            error_field(err, pointer, "must be an integer");
            return;
        }
        n = json_object_get_int64(v);
        if (n < spec->min || n > spec->max) {
            error_field(err, pointer, "must be from %lld to %lld",
                (long long)spec->min, (long long)spec->max);
            return;
        }
        out->text = arena_printf(a, "%lld", (long long)n);
        return;
    }

    case FIELD_OBJECT:
        if (type != json_type_object) {
            error_field(err, pointer, "must be an object");
            return;
        }
        out->text = fields_object_text(a, spec, v, pointer, err);
        return;

    case FIELD_UUID: {
        char canonical[UUID_TEXT_LEN + 1];

        if (type != json_type_string ||
            !uuid_parse(json_object_get_string(v),
                (size_t)json_object_get_string_len(v), canonical)) {
            error_field(err, pointer, "must be a UUID");
            return;
        }
        out->text = arena_strdup(a, canonical);
        return;
    }

    case FIELD_ENUM:
        if (type == json_type_string)
            for (size_t i = 0; spec->choices[i] != NULL; i++)
                if (strcmp(json_object_get_string(v), spec->choices[i])
                    == 0) {
                    out->text = spec->choices[i];
                    return;
                }
        error_field(err, pointer, "must be one of the allowed values");
        return;
    }
}

const char *
fields_object_text(struct arena *a, const struct field_spec *spec,
    struct json_object *value, const char *pointer, struct crewd_error *err)
{
    size_t cap = spec->max_chars > 0 && spec->max_chars <
        FIELD_OBJECT_MAX_BYTES ? spec->max_chars : FIELD_OBJECT_MAX_BYTES;
    size_t len;
    const char *text = json_object_to_json_string_length(value,
        JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

    if (len > cap) {
        error_field(err, pointer, "must be at most %zu bytes as JSON", cap);
        return NULL;
    }
    return arena_strndup(a, text, len);
}

int
fields_read(struct arena *a, struct json_object *body,
    const struct field_spec *specs, size_t n, bool creating,
    struct field_value *values, struct crewd_error *err)
{
    int problems = err->nfields + err->fields_dropped;

    memset(values, 0, n * sizeof(*values));

    json_object_object_foreach(body, key, v) {
        const struct field_spec *spec;
        char *pointer = json_pointer(a, key);
        size_t i;

        if (is_server_owned(key)) {
            error_field(err, pointer, "is set by the server");
            continue;
        }
        spec = find_spec(specs, n, key, &i);
        if (spec == NULL) {
            error_field(err, pointer, "is not a known field");
            continue;
        }

        values[i].present = true;
        if (!creating && (spec->flags & FIELD_CREATE_ONLY)) {
            error_field(err, pointer, "cannot be changed");
            continue;
        }
        if (v == NULL) {
            if (spec->flags & FIELD_NULLABLE)
                values[i].is_null = true;
            else
                error_field(err, pointer, "must not be null");
            continue;
        }
        values[i].json = v;
        read_value(a, spec, v, pointer, &values[i], err);
    }

    if (creating)
        for (size_t i = 0; i < n; i++)
            if ((specs[i].flags & FIELD_REQUIRED) && !values[i].present)
                error_field(err, arena_printf(a, "/%s", specs[i].name),
                    "is required");

    return err->nfields + err->fields_dropped > problems ? -1 : 0;
}

bool
fields_none_present(const struct field_value *values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (values[i].present)
            return false;
    return true;
}
