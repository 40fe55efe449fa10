#include "config.h"

#include <string.h>

#include <json-c/json.h>

#include "arena.h"
#include "audit.h"
#include "buf.h"
#include "json.h"
#include "mongo.h"
#include "unit.h"

static bool
same_json(struct json_object *value, const char *expected)
{
    struct json_object *want = unit_parse_json(expected);
    bool same = json_object_equal(value, want);

    json_object_put(want);
    return same;
}

static void
test_secret_names(void)
{
    CU_ASSERT_TRUE(audit_secret_name("password"));
    CU_ASSERT_TRUE(audit_secret_name("Password"));
    CU_ASSERT_TRUE(audit_secret_name("password_hash"));
    CU_ASSERT_TRUE(audit_secret_name("credentials"));
    CU_ASSERT_TRUE(audit_secret_name("encrypted_credentials"));
    CU_ASSERT_TRUE(audit_secret_name("API-KEY"));
    CU_ASSERT_TRUE(audit_secret_name("access_token"));
    CU_ASSERT_TRUE(audit_secret_name("client_secret"));

    CU_ASSERT_FALSE(audit_secret_name("max_tokens"));
    CU_ASSERT_FALSE(audit_secret_name("tokens"));
    CU_ASSERT_FALSE(audit_secret_name("passwords_changed_at"));
    CU_ASSERT_FALSE(audit_secret_name("has_credentials"));
    CU_ASSERT_FALSE(audit_secret_name(""));
}

static void
test_mask_replaces_secrets_at_any_depth(void)
{
    struct json_object *v = unit_parse_json(
        "{\"name\":\"a\",\"password\":\"p\",\"config\":{\"api_key\":"
        "{\"x\":1},\"list\":[{\"token\":\"t\"},3],\"secret\":null},"
        "\"credentials\":[\"c\"]}");

    audit_mask(v);
    CU_ASSERT_TRUE(same_json(v,
        "{\"name\":\"a\",\"password\":\"***\",\"config\":{\"api_key\":"
        "\"***\",\"list\":[{\"token\":\"***\"},3],\"secret\":null},"
        "\"credentials\":\"***\"}"));
    json_object_put(v);

    audit_mask(NULL);   /* nothing to do, and no crash */
}

static void
test_clean_text(void)
{
    struct arena *a = arena_new(1024);

    CU_ASSERT_PTR_NULL(audit_clean_text(a, NULL, 10));
    CU_ASSERT_PTR_NULL(audit_clean_text(a, "", 10));
    CU_ASSERT_STRING_EQUAL(audit_clean_text(a, "curl/8.0", 10), "curl/8.0");
    CU_ASSERT_STRING_EQUAL(audit_clean_text(a, "a\tb\x7f" "c", 10),
        "a?b?c");
    CU_ASSERT_STRING_EQUAL(audit_clean_text(a, "caf\xe9!", 10), "caf?!");
    CU_ASSERT_STRING_EQUAL(audit_clean_text(a, "x\xc2\x85y", 10), "x?y");
    CU_ASSERT_STRING_EQUAL(audit_clean_text(a, "caf\xc3\xa9", 10),
        "caf\xc3\xa9");
    /* Cut on a character, never inside one. */
    CU_ASSERT_STRING_EQUAL(audit_clean_text(a, "abc\xc3\xa9", 4), "abc");
    CU_ASSERT_STRING_EQUAL(audit_clean_text(a, "abcdef", 4), "abcd");
    arena_free(a);
}

static void
test_type_from_noun(void)
{
    struct arena *a = arena_new(256);

    CU_ASSERT_STRING_EQUAL(audit_type_from_noun(a, "LLM provider"),
        "llm_provider");
    CU_ASSERT_STRING_EQUAL(audit_type_from_noun(a, "agent"), "agent");
    arena_free(a);
}

static void
test_entry_ids_are_ordered_object_ids(void)
{
    char previous[UUID_TEXT_LEN + 1] = "";
    char id[UUID_TEXT_LEN + 1];
    bson_oid_t oid;
    int64_t now_ms = mongo_now_ms();

    for (int i = 0; i < 2000; i++) {
        audit_entry_id(id);
        CU_ASSERT_EQUAL(strlen(id), UUID_TEXT_LEN);
        CU_ASSERT_TRUE(strcmp(previous, id) < 0);
        CU_ASSERT_TRUE(mongo_oid_from_uuid(id, &oid));
        memcpy(previous, id, sizeof(id));
    }

    /* The first 48 bits are the time in milliseconds. */
    {
        int64_t ms = 0;

        for (int i = 0; i < 6; i++)
            ms = ms << 8 | oid.bytes[i];
        CU_ASSERT_TRUE(ms >= now_ms && ms < now_ms + 10000);
    }
}

static const struct audit_stored sample = {
    .id = NULL,
    .user_id = "9bca60f9-126a-4c39-b296-7eb2156fb7bb",
    .action = "update",
    .resource_type = "agent",
    .resource_id = "0fc5cdbd-ecff-4b23-80e1-819d012f59d6",
    .changes = "{\"before\":{\"name\":\"a\",\"config\":{\"a.b\":1,"
        "\"$where\":\"x\",\"50%\":[{\"c.d\":true}],\"%2E\":null}},"
        "\"after\":{\"name\":\"b\",\"n\":1.5}}",
    .ip_address = "127.0.0.1",
    .user_agent = NULL,
    .timestamp_ms = 1796400723123,
};

static void
test_document_round_trip(void)
{
    struct audit_stored e = sample;
    struct json_writer w;
    struct buf out = BUF_INIT;
    struct crewd_error err;
    struct json_object *shown, *want;
    char id[UUID_TEXT_LEN + 1];
    bson_t doc;
    bson_iter_t iter;

    audit_entry_id(id);
    e.id = id;
    error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(audit_document(&e, &doc, &err), 0);

    /* Names MongoDB would refuse are stored escaped. */
    CU_ASSERT_TRUE(bson_iter_init(&iter, &doc) &&
        bson_iter_find_descendant(&iter, "changes.before.config", &iter));
    CU_ASSERT_TRUE(bson_iter_init(&iter, &doc) && bson_iter_find_descendant(
        &iter, "changes.before.config.a%2Eb", &iter));
    CU_ASSERT_TRUE(bson_iter_init(&iter, &doc) && bson_iter_find_descendant(
        &iter, "changes.before.config.%24where", &iter));
    CU_ASSERT_TRUE(bson_iter_init(&iter, &doc) &&
        bson_iter_find(&iter, "timestamp") &&
        BSON_ITER_HOLDS_DATE_TIME(&iter));

    /* And shown as they were. */
    jw_init(&w, &out);
    audit_write_entry(&w, &doc);
    shown = unit_parse_json(buf_cstr(&out));
    want = unit_parse_json(sample.changes);
    CU_ASSERT_TRUE(json_object_equal(json_object_object_get(shown,
        "changes"), want));
    CU_ASSERT_STRING_EQUAL(json_object_get_string(
        json_object_object_get(shown, "id")), id);
    CU_ASSERT_STRING_EQUAL(json_object_get_string(
        json_object_object_get(shown, "timestamp")),
        "2026-12-04T16:12:03.123Z");
    CU_ASSERT_TRUE(json_object_object_get_ex(shown, "user_agent", NULL));
    CU_ASSERT_PTR_NULL(json_object_object_get(shown, "user_agent"));
    CU_ASSERT_STRING_EQUAL(json_object_get_string(
        json_object_object_get(shown, "action")), "update");

    json_object_put(shown);
    json_object_put(want);
    buf_free(&out);
    bson_destroy(&doc);
}

static void
test_document_refuses_what_cannot_be_stored(void)
{
    struct audit_stored e = sample;
    struct crewd_error err;
    bson_t doc;

    /* An id that is not an ObjectId in UUID clothes. */
    e.id = "0fc5cdbd-ecff-4b23-80e1-819d012f59d6";
    error_clear(&err);
    CU_ASSERT_EQUAL(audit_document(&e, &doc, &err), -1);
    bson_destroy(&doc);

    /* An action outside the validator's enum. */
    {
        char id[UUID_TEXT_LEN + 1];

        audit_entry_id(id);
        e.id = id;
        e.action = "erase";
        error_clear(&err);
        CU_ASSERT_EQUAL(audit_document(&e, &doc, &err), -1);
        bson_destroy(&doc);
    }
}

void
register_audit_tests(void)
{
    CU_pSuite s = unit_suite("audit");

    unit_test(s, "secret names", test_secret_names);
    unit_test(s, "mask replaces secrets at any depth",
        test_mask_replaces_secrets_at_any_depth);
    unit_test(s, "clean text", test_clean_text);
    unit_test(s, "type from noun", test_type_from_noun);
    unit_test(s, "entry ids are ordered ObjectIds",
        test_entry_ids_are_ordered_object_ids);
    unit_test(s, "document round trip", test_document_round_trip);
    unit_test(s, "document refuses what cannot be stored",
        test_document_refuses_what_cannot_be_stored);
}
