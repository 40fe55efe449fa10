#include "config.h"

#include <string.h>

#include "json.h"
#include "mongo.h"
#include "unit.h"
#include "uuid.h"

static const char TENANT[] = "0b6f3a52-6a3e-4d57-9d6c-1f0c0b8a2f11";

/* A log entry that satisfies its collection's rules. */
static bson_t *
good_log(void)
{
    bson_t *doc = bson_new();
    bson_oid_t oid;

    mongo_oid_new(NULL, &oid);
    BSON_APPEND_OID(doc, "_id", &oid);
    BSON_APPEND_UTF8(doc, "execution_id", TENANT);
    BSON_APPEND_UTF8(doc, "level", "info");
    BSON_APPEND_UTF8(doc, "message", "hello");
    BSON_APPEND_DATE_TIME(doc, "timestamp", 1764864000123);
    return doc;
}

/* The field of the only problem err holds, or "" when it holds none. */
static const char *
only_problem(const struct crewd_error *err)
{
    CU_ASSERT_TRUE(err->nfields <= 1);
    return err->nfields == 1 ? err->fields[0].field : "";
}

static void
test_collection_names_carry_the_tenant_id(void)
{
    char name[MONGO_COLLECTION_NAME_MAX];
    struct crewd_error err;

    error_clear(&err);
    CU_ASSERT_EQUAL(mongo_collection_name(NULL, MONGO_EXECUTION_LOGS, TENANT,
        name, &err), 0);
    CU_ASSERT_STRING_EQUAL(name,
        "execution_logs_0b6f3a52-6a3e-4d57-9d6c-1f0c0b8a2f11");
    CU_ASSERT_EQUAL(mongo_collection_name(NULL, MONGO_CHAT_MESSAGES, TENANT,
        name, &err), 0);
    CU_ASSERT_STRING_EQUAL(name,
        "chat_messages_0b6f3a52-6a3e-4d57-9d6c-1f0c0b8a2f11");
    CU_ASSERT_EQUAL(mongo_collection_name(NULL, MONGO_AUDIT_LOGS, TENANT,
        name, &err), 0);
    CU_ASSERT_STRING_EQUAL(name,
        "audit_logs_0b6f3a52-6a3e-4d57-9d6c-1f0c0b8a2f11");
}

static void
test_collection_names_refuse_ids_that_are_not_canonical(void)
{
    static const char *const bad[] = {
        "0B6F3A52-6A3E-4D57-9D6C-1F0C0B8A2F11",     /* upper case */
        "0b6f3a526a3e4d579d6c1f0c0b8a2f11",         /* no dashes */
        "system.x", "$cmd", "", "../x",
        "0b6f3a52-6a3e-4d57-9d6c-1f0c0b8a2f11.x", NULL
    };
    char name[MONGO_COLLECTION_NAME_MAX];

    for (size_t i = 0; bad[i] != NULL; i++) {
        struct crewd_error err;

        error_clear(&err);
        CU_ASSERT_EQUAL(mongo_collection_name(NULL, MONGO_AUDIT_LOGS,
            bad[i], name, &err), -1);
        CU_ASSERT_EQUAL(err.status, 500);
    }
}

static void
test_uri_check(void)
{
    char why[256];

    CU_ASSERT_TRUE(mongo_uri_valid("", why, sizeof(why)));
    CU_ASSERT_TRUE(mongo_uri_valid("mongodb://127.0.0.1:27017/crewd",
        why, sizeof(why)));
    CU_ASSERT_TRUE(mongo_uri_valid("mongodb://a,b/crewd?replicaSet=rs0"
        "&serverSelectionTryOnce=false&serverSelectionTimeoutMS=2000",
        why, sizeof(why)));
    CU_ASSERT_FALSE(mongo_uri_valid("http://127.0.0.1/crewd", why,
        sizeof(why)));
    CU_ASSERT_FALSE(mongo_uri_valid("mongodb://127.0.0.1/a.b", why,
        sizeof(why)));
}

static void
test_unconfigured_client_answers_503_without_retry(void)
{
    struct crewd_error err;
    struct mongo *m;

    error_clear(&err);
    m = mongo_connect("", &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_FALSE(mongo_configured(m));
    CU_ASSERT_FALSE(mongo_available(m));
    CU_ASSERT_EQUAL(mongo_ping(m, &err), -1);
    CU_ASSERT_EQUAL(err.status, 503);
    CU_ASSERT_EQUAL(err.retry_after, 0);
    mongo_close(m);

    error_clear(&err);
    CU_ASSERT_PTR_NULL(mongo_connect("nonsense://x", &err));
    CU_ASSERT_NOT_EQUAL(err.detail[0], '\0');
}

static void
test_object_ids_read_as_uuids_and_back(void)
{
    bson_oid_t a, b, back;
    char ua[37], ub[37], canonical[37];

    bson_oid_init_from_string(&a, "6b12f54385f51d23f50db7c3");
    bson_oid_init_from_string(&b, "6b12f54385f51d23f50db7c4");
    mongo_oid_to_uuid(&a, ua);
    mongo_oid_to_uuid(&b, ub);
    CU_ASSERT_STRING_EQUAL(ua, "6b12f543-85f5-801d-8023-f50db7c30000");
    CU_ASSERT_TRUE(uuid_parse(ua, strlen(ua), canonical));
    CU_ASSERT_STRING_EQUAL(canonical, ua);

    /* The texts sort as the ObjectIds do. */
    CU_ASSERT_TRUE(strcmp(ua, ub) < 0);
    CU_ASSERT_TRUE(bson_oid_compare(&a, &b) < 0);

    CU_ASSERT_TRUE(mongo_oid_from_uuid(ua, &back));
    CU_ASSERT_TRUE(bson_oid_equal(&a, &back));
}

static void
test_other_uuids_are_not_object_ids(void)
{
    bson_oid_t oid;

    CU_ASSERT_FALSE(mongo_oid_from_uuid(TENANT, &oid));
    CU_ASSERT_FALSE(mongo_oid_from_uuid(
        "6b12f543-85f5-801d-8023-f50db7c30001", &oid));
    CU_ASSERT_FALSE(mongo_oid_from_uuid("6b12f543-85f5-801d-8023", &oid));
    CU_ASSERT_FALSE(mongo_oid_from_uuid(
        "6b12f543-85f5-801d-8023-f50db7c300000", &oid));
}

static void
test_row_ids_give_stable_ordered_object_ids(void)
{
    bson_oid_t one, again, two;

    mongo_oid_from_u64(41, &one);
    mongo_oid_from_u64(41, &again);
    mongo_oid_from_u64(42, &two);
    CU_ASSERT_TRUE(bson_oid_equal(&one, &again));
    CU_ASSERT_TRUE(bson_oid_compare(&one, &two) < 0);
}

static void
test_times_round_trip_in_milliseconds(void)
{
    char text[32];
    int64_t ms;

    mongo_time_format(1764864000123, text);
    CU_ASSERT_STRING_EQUAL(text, "2025-12-04T16:00:00.123Z");
    CU_ASSERT_TRUE(mongo_time_parse(text, &ms));
    CU_ASSERT_EQUAL(ms, 1764864000123);

    CU_ASSERT_TRUE(mongo_time_parse("2025-12-04T16:00:00.123456Z", &ms));
    CU_ASSERT_EQUAL(ms, 1764864000123);
    CU_ASSERT_TRUE(mongo_time_parse("2025-12-04T16:00:00Z", &ms));
    CU_ASSERT_EQUAL(ms, 1764864000000);
}

static void
test_impossible_times_are_refused(void)
{
    static const char *const bad[] = {
        "2025-02-30T00:00:00Z", "2025-12-04T24:00:00Z",
        "2025-12-04T16:00:00", "2025-12-04 16:00:00Z",
        "2025-12-04T16:00:00.Z", "2025-12-04T16:00:00.1234567Z",
        "2025-12-04T16:00:00+01:00", "", NULL
    };
    int64_t ms;

    for (size_t i = 0; bad[i] != NULL; i++)
        CU_ASSERT_FALSE(mongo_time_parse(bad[i], &ms));
}

static void
test_a_good_document_passes(void)
{
    bson_t *doc = good_log();
    struct crewd_error err;

    error_clear(&err);
    CU_ASSERT_EQUAL(mongo_doc_check(MONGO_EXECUTION_LOGS, doc, "", &err), 0);
    CU_ASSERT_EQUAL(err.status, 0);
    bson_destroy(doc);
}

static void
test_missing_required_fields_are_named(void)
{
    bson_t doc = BSON_INITIALIZER;
    struct crewd_error err;

    BSON_APPEND_UTF8(&doc, "role", "user");
    error_clear(&err);
    CU_ASSERT_EQUAL(mongo_doc_check(MONGO_CHAT_MESSAGES, &doc, "/4", &err),
        -1);
    CU_ASSERT_EQUAL(err.status, 422);
    CU_ASSERT_EQUAL(err.nfields, 3);
    CU_ASSERT_STRING_EQUAL(err.fields[0].field, "/4/conversation_id");
    CU_ASSERT_STRING_EQUAL(err.fields[1].field, "/4/content");
    CU_ASSERT_STRING_EQUAL(err.fields[2].field, "/4/timestamp");
    bson_destroy(&doc);
}

static void
test_wrong_types_and_enums_are_refused(void)
{
    static const struct {
        const char *field;
        int type;       /* 0 int, 1 string "loud", 2 document, 3 string */
    } cases[] = {
        { "level", 1 },         /* not one of the enum */
        { "level", 0 },
        { "message", 0 },
        { "execution_id", 2 },
        { "metadata", 3 },
        { "timestamp", 3 },     /* a string is not a date */
        { "node_id", 0 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bson_t *doc = bson_new(), *base = good_log(), sub = BSON_INITIALIZER;
        struct crewd_error err;
        bson_iter_t iter;
        char pointer[64];

        bson_copy_to_excluding_noinit(base, doc, cases[i].field, NULL);
        if (cases[i].type == 0)
            BSON_APPEND_INT32(doc, cases[i].field, 3);
        else if (cases[i].type == 1)
            BSON_APPEND_UTF8(doc, cases[i].field, "loud");
        else if (cases[i].type == 2)
            BSON_APPEND_DOCUMENT(doc, cases[i].field, &sub);
        else
            BSON_APPEND_UTF8(doc, cases[i].field, "2025-12-04");

        CU_ASSERT_TRUE(bson_iter_init_find(&iter, doc, cases[i].field));
        error_clear(&err);
        CU_ASSERT_EQUAL(mongo_doc_check(MONGO_EXECUTION_LOGS, doc, "", &err),
            -1);
        snprintf(pointer, sizeof(pointer), "/%s", cases[i].field);
        CU_ASSERT_STRING_EQUAL(only_problem(&err), pointer);
        bson_destroy(doc);
        bson_destroy(base);
        bson_destroy(&sub);
    }
}

static void
test_dollar_and_dotted_names_are_refused_at_any_depth(void)
{
    static const struct {
        const char *json;
        const char *pointer;
    } cases[] = {
        { "{\"$where\": 1}", "/metadata/$where" },
        { "{\"a\": {\"b.c\": 1}}", "/metadata/a/b.c" },
        { "{\"a\": [1, {\"$gt\": \"\"}]}", "/metadata/a/1/$gt" },
        { "{\"a/b\": {\"$x\": 1}}", "/metadata/a~1b/$x" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct json_object *value = unit_parse_json(cases[i].json);
        bson_t *doc = good_log();
        uint32_t before = doc->len;
        struct crewd_error err;

        error_clear(&err);
        CU_ASSERT_EQUAL(mongo_append_json(doc, "metadata", value,
            "/metadata", &err), -1);
        CU_ASSERT_STRING_EQUAL(only_problem(&err), cases[i].pointer);
        /* Nothing of a refused value is appended. */
        CU_ASSERT_EQUAL(doc->len, before);
        json_object_put(value);
        bson_destroy(doc);
    }
}

static void
test_a_stored_document_is_checked_for_names_too(void)
{
    bson_t *doc = good_log(), sub = BSON_INITIALIZER;
    struct crewd_error err;

    BSON_APPEND_INT32(&sub, "$inc", 1);
    BSON_APPEND_DOCUMENT(doc, "metadata", &sub);
    error_clear(&err);
    CU_ASSERT_EQUAL(mongo_doc_check(MONGO_EXECUTION_LOGS, doc, "/0", &err),
        -1);
    CU_ASSERT_STRING_EQUAL(only_problem(&err), "/0/metadata/$inc");
    bson_destroy(&sub);
    bson_destroy(doc);
}

static void
test_json_becomes_typed_bson(void)
{
    struct json_object *value = unit_parse_json(
        "{\"s\": \"x\", \"i\": 9007199254740993, \"d\": 2.5,"
        " \"t\": true, \"n\": null, \"a\": [1, \"two\"],"
        " \"o\": {\"k\": -1}}");
    bson_t doc = BSON_INITIALIZER;
    struct crewd_error err;
    bson_iter_t iter, child;

    error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(mongo_append_json(&doc, "v", value, "/v", &err),
        0);
    CU_ASSERT_TRUE(bson_iter_init(&iter, &doc) &&
        bson_iter_find_descendant(&iter, "v.i", &child) &&
        BSON_ITER_HOLDS_INT64(&child) &&
        bson_iter_int64(&child) == 9007199254740993LL);
    CU_ASSERT_TRUE(bson_iter_init(&iter, &doc) &&
        bson_iter_find_descendant(&iter, "v.d", &child) &&
        BSON_ITER_HOLDS_DOUBLE(&child));
    CU_ASSERT_TRUE(bson_iter_init(&iter, &doc) &&
        bson_iter_find_descendant(&iter, "v.n", &child) &&
        BSON_ITER_HOLDS_NULL(&child));
    CU_ASSERT_TRUE(bson_iter_init(&iter, &doc) &&
        bson_iter_find_descendant(&iter, "v.a.1", &child) &&
        BSON_ITER_HOLDS_UTF8(&child));
    CU_ASSERT_TRUE(bson_iter_init(&iter, &doc) &&
        bson_iter_find_descendant(&iter, "v.o.k", &child) &&
        BSON_ITER_HOLDS_INT64(&child));
    json_object_put(value);
    bson_destroy(&doc);
}

static void
test_bson_is_written_back_as_the_same_json(void)
{
    static const char text[] = "{\"s\":\"x\\\"y\",\"i\":-7,\"d\":0.1,"
        "\"t\":false,\"n\":null,\"a\":[1,[]],\"o\":{\"k\":{}}}";
    struct json_object *value = unit_parse_json(text);
    bson_t doc = BSON_INITIALIZER;
    struct buf out = BUF_INIT;
    struct json_writer w;
    struct crewd_error err;
    bson_iter_t iter;

    error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(mongo_append_json(&doc, "v", value, "/v", &err),
        0);
    BSON_APPEND_DATE_TIME(&doc, "when", 1764864000123);
    jw_init(&w, &out);
    CU_ASSERT_TRUE_FATAL(bson_iter_init_find(&iter, &doc, "v"));
    mongo_write_json(&w, &iter);
    CU_ASSERT_STRING_EQUAL(buf_cstr(&out), text);

    buf_reset(&out);
    jw_init(&w, &out);
    CU_ASSERT_TRUE_FATAL(bson_iter_init_find(&iter, &doc, "when"));
    mongo_write_json(&w, &iter);
    CU_ASSERT_STRING_EQUAL(buf_cstr(&out), "\"2025-12-04T16:00:00.123Z\"");
    buf_free(&out);
    json_object_put(value);
    bson_destroy(&doc);
}

static void
test_validators_follow_the_design(void)
{
    struct json_object *v =
        unit_parse_json(mongo_validator_json(MONGO_EXECUTION_LOGS));
    struct json_object *schema, *required, *props, *level, *choices;

    CU_ASSERT_TRUE_FATAL(json_object_object_get_ex(v, "$jsonSchema",
        &schema));
    CU_ASSERT_TRUE_FATAL(json_object_object_get_ex(schema, "required",
        &required));
    CU_ASSERT_STRING_EQUAL(json_object_to_json_string_ext(required,
        JSON_C_TO_STRING_PLAIN),
        "[\"execution_id\",\"level\",\"message\",\"timestamp\"]");
    CU_ASSERT_TRUE_FATAL(json_object_object_get_ex(schema, "properties",
        &props));
    CU_ASSERT_TRUE_FATAL(json_object_object_get_ex(props, "level", &level));
    CU_ASSERT_TRUE_FATAL(json_object_object_get_ex(level, "enum", &choices));
    CU_ASSERT_STRING_EQUAL(json_object_to_json_string_ext(choices,
        JSON_C_TO_STRING_PLAIN),
        "[\"debug\",\"info\",\"warning\",\"error\"]");
    json_object_put(v);

    v = unit_parse_json(mongo_validator_json(MONGO_AUDIT_LOGS));
    CU_ASSERT_TRUE_FATAL(json_object_object_get_ex(v, "$jsonSchema",
        &schema));
    CU_ASSERT_TRUE_FATAL(json_object_object_get_ex(schema, "required",
        &required));
    CU_ASSERT_STRING_EQUAL(json_object_to_json_string_ext(required,
        JSON_C_TO_STRING_PLAIN),
        "[\"user_id\",\"action\",\"resource_type\",\"timestamp\"]");
    json_object_put(v);
}

void
register_mongo_tests(void)
{
    CU_pSuite s = unit_suite("mongo");

    unit_test(s, "collection names carry the tenant id",
        test_collection_names_carry_the_tenant_id);
    unit_test(s, "collection names refuse ids that are not canonical",
        test_collection_names_refuse_ids_that_are_not_canonical);
    unit_test(s, "mongodb_uri values are checked", test_uri_check);
    unit_test(s, "an unconfigured client answers 503 without retry",
        test_unconfigured_client_answers_503_without_retry);
    unit_test(s, "ObjectIds read as UUIDs and back",
        test_object_ids_read_as_uuids_and_back);
    unit_test(s, "other UUIDs are not ObjectIds",
        test_other_uuids_are_not_object_ids);
    unit_test(s, "row ids give stable, ordered ObjectIds",
        test_row_ids_give_stable_ordered_object_ids);
    unit_test(s, "times round-trip in milliseconds",
        test_times_round_trip_in_milliseconds);
    unit_test(s, "impossible times are refused",
        test_impossible_times_are_refused);
    unit_test(s, "a good document passes", test_a_good_document_passes);
    unit_test(s, "missing required fields are named",
        test_missing_required_fields_are_named);
    unit_test(s, "wrong types and enums are refused",
        test_wrong_types_and_enums_are_refused);
    unit_test(s, "'$' and dotted names are refused at any depth",
        test_dollar_and_dotted_names_are_refused_at_any_depth);
    unit_test(s, "a stored document is checked for names too",
        test_a_stored_document_is_checked_for_names_too);
    unit_test(s, "JSON becomes typed BSON", test_json_becomes_typed_bson);
    unit_test(s, "BSON is written back as the same JSON",
        test_bson_is_written_back_as_the_same_json);
    unit_test(s, "validators follow the design",
        test_validators_follow_the_design);
}
