/*
 * The documents of a tenant's collections: the one table of their rules
 * (from which both the $jsonSchema validators and the C check are made),
 * JSON to BSON and back, ObjectIds as UUIDs, and dates as RFC 3339.
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "log.h"
#include "mongo.h"
#include "mongo_schema.h"
#include "uuid.h"

/* ----------------------------------------------------------------------
 * The rules: the fields, types and enums of the design's validators.
 * -------------------------------------------------------------------- */

const char *const mongo_log_levels[] = {
    "debug", "info", "warning", "error", NULL
};

const char *const mongo_chat_roles[] = {
    "user", "assistant", "system", "tool", NULL
};

const char *const mongo_audit_actions[] = {
    "create", "read", "update", "delete", NULL
};

static const struct mongo_field execution_log_fields[] = {
    { "execution_id", MONGO_FIELD_STRING, true, NULL,
      "UUID of the execution" },
    { "node_id", MONGO_FIELD_STRING, false, NULL,
      "Flow node that generated the log" },
    { "level", MONGO_FIELD_ENUM, true, mongo_log_levels, "Log level" },
    { "message", MONGO_FIELD_STRING, true, NULL, "Log message" },
    { "metadata", MONGO_FIELD_OBJECT, false, NULL,
      "Additional structured data" },
    { "timestamp", MONGO_FIELD_DATE, true, NULL, "Log timestamp" },
};

static const struct mongo_field chat_message_fields[] = {
    { "conversation_id", MONGO_FIELD_STRING, true, NULL,
      "Conversation identifier" },
    { "role", MONGO_FIELD_ENUM, true, mongo_chat_roles,
      "Message sender role" },
    { "content", MONGO_FIELD_STRING, true, NULL, "Message content" },
    { "tool_calls", MONGO_FIELD_ARRAY, false, NULL,
      "Tool invocations in this message" },
    { "metadata", MONGO_FIELD_OBJECT, false, NULL,
      "Additional metadata (tokens, cost, etc.)" },
    { "timestamp", MONGO_FIELD_DATE, true, NULL, NULL },
};

static const struct mongo_field audit_log_fields[] = {
    { "user_id", MONGO_FIELD_STRING, true, NULL,
      "User who performed the action" },
    { "action", MONGO_FIELD_ENUM, true, mongo_audit_actions,
      "Action performed" },
    { "resource_type", MONGO_FIELD_STRING, true, NULL,
      "Type of resource (agent, flow, etc.)" },
    { "resource_id", MONGO_FIELD_STRING, false, NULL,
      "ID of the affected resource" },
    { "changes", MONGO_FIELD_OBJECT, false, NULL, "Before/after values" },
    { "ip_address", MONGO_FIELD_STRING, false, NULL, NULL },
    { "user_agent", MONGO_FIELD_STRING, false, NULL, NULL },
    { "timestamp", MONGO_FIELD_DATE, true, NULL, NULL },
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct mongo_schema schemas[MONGO_KIND_COUNT] = {
    [MONGO_EXECUTION_LOGS] = { "execution_logs", execution_log_fields,
                               COUNT(execution_log_fields) },
    [MONGO_CHAT_MESSAGES] = { "chat_messages", chat_message_fields,
                              COUNT(chat_message_fields) },
    [MONGO_AUDIT_LOGS] = { "audit_logs", audit_log_fields,
                           COUNT(audit_log_fields) },
};

const struct mongo_schema *
mongo_schema_of(enum mongo_kind kind)
{
    if ((unsigned)kind >= MONGO_KIND_COUNT)
        fatal("unknown collection kind %d", (int)kind);
    return &schemas[kind];
}

const char *
mongo_kind_name(enum mongo_kind kind)
{
    return mongo_schema_of(kind)->name;
}

static const char *
bson_type_name(enum mongo_field_type type)
{
    switch (type) {
    case MONGO_FIELD_STRING: return "string";
    case MONGO_FIELD_DATE: return "date";
    case MONGO_FIELD_OBJECT: return "object";
    case MONGO_FIELD_ARRAY: return "array";
    case MONGO_FIELD_ENUM: return NULL;
    }
    return NULL;
}

void
mongo_schema_validator(enum mongo_kind kind, bson_t *out)
{
    const struct mongo_schema *s = mongo_schema_of(kind);
    bson_t schema, required, properties;
    int nrequired = 0;

    bson_init(out);
    BSON_APPEND_DOCUMENT_BEGIN(out, "$jsonSchema", &schema);
    BSON_APPEND_UTF8(&schema, "bsonType", "object");

    BSON_APPEND_ARRAY_BEGIN(&schema, "required", &required);
    for (size_t i = 0; i < s->nfields; i++) {
        char index[16];
        const char *key;

        if (!s->fields[i].required)
            continue;
        bson_uint32_to_string((uint32_t)nrequired++, &key, index,
            sizeof(index));
        BSON_APPEND_UTF8(&required, key, s->fields[i].name);
    }
    bson_append_array_end(&schema, &required);

    BSON_APPEND_DOCUMENT_BEGIN(&schema, "properties", &properties);
    for (size_t i = 0; i < s->nfields; i++) {
        const struct mongo_field *f = &s->fields[i];
        bson_t property;

        BSON_APPEND_DOCUMENT_BEGIN(&properties, f->name, &property);
        if (f->type == MONGO_FIELD_ENUM) {
            bson_t choices;

            BSON_APPEND_ARRAY_BEGIN(&property, "enum", &choices);
            for (uint32_t c = 0; f->choices[c] != NULL; c++) {
                char index[16];
                const char *key;

                bson_uint32_to_string(c, &key, index, sizeof(index));
                BSON_APPEND_UTF8(&choices, key, f->choices[c]);
            }
            bson_append_array_end(&property, &choices);
        } else {
            BSON_APPEND_UTF8(&property, "bsonType", bson_type_name(f->type));
        }
        if (f->description != NULL)
            BSON_APPEND_UTF8(&property, "description", f->description);
        bson_append_document_end(&properties, &property);
    }
    bson_append_document_end(&schema, &properties);
    bson_append_document_end(out, &schema);
}

const char *
mongo_validator_json(enum mongo_kind kind)
{
    static char *texts[MONGO_KIND_COUNT];
    size_t i = (size_t)(mongo_schema_of(kind) - schemas);

    if (texts[i] == NULL) {
        bson_t validator;
        char *json;

        mongo_schema_validator(kind, &validator);
        json = bson_as_relaxed_extended_json(&validator, NULL);
        texts[i] = xstrdup(json);
        bson_free(json);
        bson_destroy(&validator);
    }
    return texts[i];
}

/* ----------------------------------------------------------------------
 * Checking a document against the rules.
 * -------------------------------------------------------------------- */

/* prefix + "/" + key with "~" and "/" escaped (RFC 6901). */
static void
pointer_append(char *out, size_t size, const char *key)
{
    size_t used = strlen(out);

    if (used + 1 < size)
        out[used++] = '/';
    for (const char *k = key; *k != '\0' && used + 2 < size; k++) {
        if (*k == '~' || *k == '/') {
            out[used++] = '~';
            out[used++] = *k == '~' ? '0' : '1';
        } else {
            out[used++] = *k;
        }
    }
    out[used < size ? used : size - 1] = '\0';
}

bool
mongo_field_name_allowed(const char *key)
{
    return key[0] != '\0' && key[0] != '$' && strchr(key, '.') == NULL;
}

/*
 * The field-name rule, at every depth below iter's container.  pointer
 * holds the path so far and is extended in place.
 */
static int
check_names(bson_iter_t *iter, char *pointer, size_t size, bool in_array,
    struct crewd_error *err)
{
    size_t mark = strlen(pointer);
    int rc = 0;

    /* Every bad name is reported, not just the first. */
    while (bson_iter_next(iter)) {
        const char *key = bson_iter_key(iter);
        bson_iter_t child;

        pointer[mark] = '\0';
        pointer_append(pointer, size, key);
        if (!in_array && !mongo_field_name_allowed(key)) {
            error_field(err, pointer, "a field name must not be empty, "
                "start with '$' or contain '.'");
            rc = -1;
            continue;
        }
        if ((BSON_ITER_HOLDS_DOCUMENT(iter) || BSON_ITER_HOLDS_ARRAY(iter))
            && bson_iter_recurse(iter, &child) &&
            check_names(&child, pointer, size, BSON_ITER_HOLDS_ARRAY(iter),
                err) < 0)
            rc = -1;
    }
    pointer[mark] = '\0';
    return rc;
}

static bool
holds_type(const bson_iter_t *iter, const struct mongo_field *f)
{
    switch (f->type) {
    case MONGO_FIELD_STRING:
        return BSON_ITER_HOLDS_UTF8(iter);
    case MONGO_FIELD_DATE:
        return BSON_ITER_HOLDS_DATE_TIME(iter);
    case MONGO_FIELD_OBJECT:
        return BSON_ITER_HOLDS_DOCUMENT(iter);
    case MONGO_FIELD_ARRAY:
        return BSON_ITER_HOLDS_ARRAY(iter);
    case MONGO_FIELD_ENUM:
        if (BSON_ITER_HOLDS_UTF8(iter)) {
            const char *value = bson_iter_utf8(iter, NULL);

            for (size_t c = 0; f->choices[c] != NULL; c++)
                if (strcmp(value, f->choices[c]) == 0)
                    return true;
        }
        return false;
    }
    return false;
}

static const char *
type_problem(const struct mongo_field *f)
{
    switch (f->type) {
    case MONGO_FIELD_STRING: return "must be a string";
    case MONGO_FIELD_DATE: return "must be a date";
    case MONGO_FIELD_OBJECT: return "must be an object";
    case MONGO_FIELD_ARRAY: return "must be an array";
    case MONGO_FIELD_ENUM: return "must be one of the allowed values";
    }
    return "has the wrong type";
}

int
mongo_doc_check(enum mongo_kind kind, const bson_t *doc, const char *prefix,
    struct crewd_error *err)
{
    const struct mongo_schema *s = mongo_schema_of(kind);
    char pointer[ERROR_FIELD_NAME_MAX];
    bson_iter_t iter;
    int problems = err->nfields + err->fields_dropped;

    snprintf(pointer, sizeof(pointer), "%s", prefix);
    for (size_t i = 0; i < s->nfields; i++) {
        const struct mongo_field *f = &s->fields[i];

        pointer[strlen(prefix)] = '\0';
        pointer_append(pointer, sizeof(pointer), f->name);
        if (!bson_iter_init_find(&iter, doc, f->name)) {
            if (f->required)
                error_field(err, pointer, "is required");
            continue;
        }
        if (!holds_type(&iter, f))
            error_field(err, pointer, "%s", type_problem(f));
    }

    pointer[strlen(prefix)] = '\0';
    if (bson_iter_init(&iter, doc))
        check_names(&iter, pointer, sizeof(pointer), false, err);
    return err->nfields + err->fields_dropped > problems ? -1 : 0;
}

/* ----------------------------------------------------------------------
 * JSON to BSON.
 * -------------------------------------------------------------------- */

bool
mongo_append_scalar(bson_t *doc, const char *key, struct json_object *value)
{
    switch (json_object_get_type(value)) {
    case json_type_null:
        BSON_APPEND_NULL(doc, key);
        break;
    case json_type_boolean:
        BSON_APPEND_BOOL(doc, key, json_object_get_boolean(value));
        break;
    case json_type_int:
        BSON_APPEND_INT64(doc, key, json_object_get_int64(value));
        break;
    case json_type_double:
        BSON_APPEND_DOUBLE(doc, key, json_object_get_double(value));
        break;
    case json_type_string:
        bson_append_utf8(doc, key, -1, json_object_get_string(value),
            json_object_get_string_len(value));
        break;
    default:
        return false;
    }
    return true;
}

static int
append_value(bson_t *doc, const char *key, struct json_object *value,
    char *pointer, size_t size, struct crewd_error *err);

static int
append_members(bson_t *doc, struct json_object *object, char *pointer,
    size_t size, struct crewd_error *err)
{
    size_t mark = strlen(pointer);
    int rc = 0;

    /* Every bad name is reported; the document is useless after one. */
    json_object_object_foreach(object, key, member) {
        pointer[mark] = '\0';
        pointer_append(pointer, size, key);
        if (!mongo_field_name_allowed(key)) {
            error_field(err, pointer, "a field name must not be empty, "
                "start with '$' or contain '.'");
            rc = -1;
            continue;
        }
        if (append_value(doc, key, member, pointer, size, err) < 0)
            rc = -1;
    }
    pointer[mark] = '\0';
    return rc;
}

static int
append_elements(bson_t *array, struct json_object *value, char *pointer,
    size_t size, struct crewd_error *err)
{
    size_t mark = strlen(pointer);
    size_t n = json_object_array_length(value);

    for (size_t i = 0; i < n; i++) {
        char index[24];
        const char *key;

        bson_uint32_to_string((uint32_t)i, &key, index, sizeof(index));
        pointer[mark] = '\0';
        pointer_append(pointer, size, key);
        if (append_value(array, key, json_object_array_get_idx(value, i),
                pointer, size, err) < 0)
            return -1;
    }
    pointer[mark] = '\0';
    return 0;
}

static int
append_value(bson_t *doc, const char *key, struct json_object *value,
    char *pointer, size_t size, struct crewd_error *err)
{
    bson_t child;
    int rc = 0;

    switch (json_object_get_type(value)) {
    case json_type_object:
        BSON_APPEND_DOCUMENT_BEGIN(doc, key, &child);
        rc = append_members(&child, value, pointer, size, err);
        bson_append_document_end(doc, &child);
        break;
    case json_type_array:
        BSON_APPEND_ARRAY_BEGIN(doc, key, &child);
        rc = append_elements(&child, value, pointer, size, err);
        bson_append_array_end(doc, &child);
        break;
    default:
        mongo_append_scalar(doc, key, value);
        break;
    }
    return rc;
}

int
mongo_append_json(bson_t *doc, const char *key, struct json_object *value,
    const char *pointer, struct crewd_error *err)
{
    char path[ERROR_FIELD_NAME_MAX];
    bson_t scratch = BSON_INITIALIZER;
    int rc;

    /*
     * Built aside first, so a refused name leaves doc as it was; the
     * bytes are then copied in one append.
     */
    snprintf(path, sizeof(path), "%s", pointer);
    rc = append_value(&scratch, key, value, path, sizeof(path), err);
    if (rc == 0)
        bson_concat(doc, &scratch);
    bson_destroy(&scratch);
    return rc;
}

/* ----------------------------------------------------------------------
 * BSON to JSON.
 * -------------------------------------------------------------------- */

/* The shortest %g text that reads back as the same double. */
static void
write_double(struct json_writer *w, double d)
{
    char text[40];

    for (int precision = 15; precision <= 17; precision++) {
        snprintf(text, sizeof(text), "%.*g", precision, d);
        if (strtod(text, NULL) == d)
            break;
    }
    jw_raw(w, text);
}

static void
write_container(struct json_writer *w, const bson_iter_t *iter, bool array)
{
    bson_iter_t child;

    if (array)
        jw_array_open(w);
    else
        jw_object_open(w);
    if (bson_iter_recurse(iter, &child))
        while (bson_iter_next(&child)) {
            if (!array)
                jw_key(w, bson_iter_key(&child));
            mongo_write_json(w, &child);
        }
    if (array)
        jw_array_close(w);
    else
        jw_object_close(w);
}

void
mongo_write_json(struct json_writer *w, const bson_iter_t *iter)
{
    char text[32];
    uint32_t len;
    const char *s;

    switch (bson_iter_type(iter)) {
    case BSON_TYPE_UTF8:
        s = bson_iter_utf8(iter, &len);
        jw_string_len(w, s, len);
        return;
    case BSON_TYPE_INT32:
        jw_int(w, bson_iter_int32(iter));
        return;
    case BSON_TYPE_INT64:
        jw_int(w, bson_iter_int64(iter));
        return;
    case BSON_TYPE_DOUBLE:
        write_double(w, bson_iter_double(iter));
        return;
    case BSON_TYPE_BOOL:
        jw_bool(w, bson_iter_bool(iter));
        return;
    case BSON_TYPE_DOCUMENT:
        write_container(w, iter, false);
        return;
    case BSON_TYPE_ARRAY:
        write_container(w, iter, true);
        return;
    case BSON_TYPE_DATE_TIME:
        mongo_time_format(bson_iter_date_time(iter), text);
        jw_string(w, text);
        return;
    case BSON_TYPE_OID:
        bson_oid_to_string(bson_iter_oid(iter), text);
        jw_string(w, text);
        return;
    default:
        jw_null(w);
        return;
    }
}

/* ----------------------------------------------------------------------
 * ObjectIds.
 * -------------------------------------------------------------------- */

void
mongo_oid_from_u64(uint64_t id, bson_oid_t *oid)
{
    memset(oid->bytes, 0, 4);
    for (int i = 0; i < 8; i++)
        oid->bytes[4 + i] = (uint8_t)(id >> (56 - 8 * i));
}

/* Where the ObjectId's bytes sit among the UUID's 16 (see mongo.h). */
static const int uuid_from_oid[12] = { 0, 1, 2, 3, 4, 5, 7, 9, 10, 11, 12,
                                       13 };

void
mongo_oid_to_uuid(const bson_oid_t *oid, char out[37])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t bytes[16] = { 0 };
    size_t pos = 0;

    bytes[6] = 0x80;    /* version 8 */
    bytes[8] = 0x80;    /* variant 10 */
    for (int i = 0; i < 12; i++)
        bytes[uuid_from_oid[i]] = oid->bytes[i];

    for (size_t i = 0; i < sizeof(bytes); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[pos++] = '-';
        out[pos++] = digits[bytes[i] >> 4];
        out[pos++] = digits[bytes[i] & 0x0f];
    }
    out[pos] = '\0';
}

bool
mongo_oid_from_uuid(const char *uuid, bson_oid_t *oid)
{
    uint8_t bytes[16];
    size_t n = 0;

    for (size_t i = 0; uuid[i] != '\0'; i++) {
        int high, low;

        if (uuid[i] == '-' && (i == 8 || i == 13 || i == 18 || i == 23))
            continue;
        if (n == sizeof(bytes) || uuid[i + 1] == '\0')
            return false;
        high = hex_digit_value(uuid[i]);
        low = hex_digit_value(uuid[i + 1]);
        if (high < 0 || low < 0)
            return false;
        bytes[n++] = (uint8_t)(high << 4 | low);
        i++;
    }
    if (n != sizeof(bytes) || strlen(uuid) != 36 || bytes[6] != 0x80 ||
        bytes[8] != 0x80 || bytes[14] != 0 || bytes[15] != 0)
        return false;

    for (int i = 0; i < 12; i++)
        oid->bytes[i] = bytes[uuid_from_oid[i]];
    return true;
}

/* ----------------------------------------------------------------------
 * Dates.
 * -------------------------------------------------------------------- */

int64_t
mongo_now_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void
mongo_time_format(int64_t ms, char out[32])
{
    int64_t seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int millis = (int)(ms - seconds * 1000);
    time_t t = (time_t)seconds;
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 ||
        tm.tm_year + 1900 < 0) {
        snprintf(out, 32, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
        (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
        tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
        tm.tm_sec % 100, millis % 1000);
}

static int
digits(const char *s, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

bool
mongo_time_parse(const char *text, int64_t *ms)
{
    int year, month, day, hour, minute, second, fraction = 0;
    size_t len = strlen(text), pos = 19;
    struct tm tm;
    time_t t;

    if (len < 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' ||
        text[13] != ':' || text[16] != ':')
        return false;
    year = digits(text, 4);
    month = digits(text + 5, 2);
    day = digits(text + 8, 2);
    hour = digits(text + 11, 2);
    minute = digits(text + 14, 2);
    second = digits(text + 17, 2);
    if (year < 0 || month < 1 || month > 12 || day < 1 || day > 31 ||
        hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 ||
        second > 59)
        return false;

    if (text[pos] == '.') {
        int n = 0;

        for (pos++; isdigit((unsigned char)text[pos]); pos++, n++)
            if (n < 3)
                fraction = fraction * 10 + (text[pos] - '0');
        if (n == 0 || n > 6)
            return false;
        for (; n < 3; n++)
            fraction *= 10;
    }
    if (text[pos] != 'Z' || text[pos + 1] != '\0')
        return false;

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    t = timegm(&tm);

    /* timegm normalises 31 February into March: refuse what moved. */
    if (tm.tm_mday != day || tm.tm_mon != month - 1)
        return false;
    *ms = (int64_t)t * 1000 + fraction;
    return true;
}
