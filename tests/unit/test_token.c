#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <json-c/json.h>
#include <sodium.h>

#include "conf.h"
#include "error.h"
#include "password.h"
#include "token.h"
#include "unit.h"
#include "uuid.h"

#define NOW 1700000000LL
#define LIFETIME 3600
#define LEEWAY 60
#define TENANT "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
#define OTHER_TENANT "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
#define USER "11111111-2222-4333-8444-555555555555"
#define REFUSED "invalid or expired token"
#define B64URL sodium_base64_VARIANT_URLSAFE_NO_PADDING

static struct crewd_conf conf;
static struct token_secret secret;
static struct crewd_error err;

/* Every test starts from the defaults, a fresh key and no error. */
static void
setup(void)
{
    conf_defaults(&conf);
    conf.token_lifetime = LIFETIME;
    conf.password_ops_limit = 1;
    conf.password_mem_limit = 8192;

    memset(&secret, 0, sizeof(secret));
    randombytes_buf(secret.key, 64);
    secret.len = 64;

    error_clear(&err);
}

/* A number as JSON text; a few live at once for one forge. */
static const char *
num(long long v)
{
    static char texts[8][32];
    static int next;
    char *text = texts[next++ % 8];

    snprintf(text, sizeof(texts[0]), "%lld", v);
    return text;
}

enum forge_alg {
    FORGE_HS256,
    FORGE_HS512,
    FORGE_NONE      /* no signature at all */
};

/*
 * A token made by hand, so every field can be wrong in exactly one way.
 * Claim values are JSON text; NULL leaves the claim out.
 */
struct forge {
    const char *header;
    const char *extra;          /* "name":value put first, or NULL */
    const char *iss, *aud, *sub, *role, *iat, *exp, *nbf, *ver;
    const char *payload;        /* replaces the claims when set */
    size_t payload_len;         /* of payload; 0: strlen */
    enum forge_alg alg;
    const unsigned char *key;
    size_t key_len;
    size_t mac_len;             /* 0: the algorithm's; else cut or pad */
    bool flip_bit;
};

/* Claims that verify at NOW for TENANT with the test secret. */
static struct forge
good_forge(void)
{
    return (struct forge){
        .header = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
        .iss = "\"crewd\"",
        .aud = "\"" TENANT "\"",
        .sub = "\"" USER "\"",
        .role = "\"member\"",
        .iat = num(NOW),
        .exp = num(NOW + 600),
        .ver = "0",
        .alg = FORGE_HS256,
        .key = secret.key,
        .key_len = secret.len,
    };
}

static char token_text[8192];

static void
append(const char *s)
{
    size_t used = strlen(token_text);

    CU_ASSERT_FATAL(strlen(s) < sizeof(token_text) - used);
    memcpy(token_text + used, s, strlen(s) + 1);
}

static void
append_base64url(const void *bin, size_t len)
{
    size_t used = strlen(token_text);

    CU_ASSERT_FATAL(sodium_base64_ENCODED_LEN(len, B64URL) <=
        sizeof(token_text) - used);
    sodium_bin2base64(token_text + used, sizeof(token_text) - used, bin,
        len, B64URL);
}

static void
add_member(char *json, size_t cap, const char *name, const char *value)
{
    size_t used = strlen(json);

    if (value == NULL)
        return;
    snprintf(json + used, cap - used, "%s\"%s\":%s",
        json[used - 1] == '{' || json[used - 1] == ',' ? "" : ",", name,
        value);
}

static const char *
forge(const struct forge *f)
{
    static char claims[6000];
    unsigned char mac[crypto_auth_hmacsha512_BYTES + 32];
    const char *payload = claims;
    size_t payload_len, mac_len = 0, signed_len;

    snprintf(claims, sizeof(claims), "{%s", f->extra ? f->extra : "");
    add_member(claims, sizeof(claims), "iss", f->iss);
    add_member(claims, sizeof(claims), "aud", f->aud);
    add_member(claims, sizeof(claims), "sub", f->sub);
    add_member(claims, sizeof(claims), "role", f->role);
    add_member(claims, sizeof(claims), "iat", f->iat);
    add_member(claims, sizeof(claims), "exp", f->exp);
    add_member(claims, sizeof(claims), "nbf", f->nbf);
    add_member(claims, sizeof(claims), "ver", f->ver);
    CU_ASSERT_FATAL(strlen(claims) + 2 < sizeof(claims));
    strcat(claims, "}");
    payload_len = strlen(claims);

    if (f->payload != NULL) {
        payload = f->payload;
        payload_len = f->payload_len ? f->payload_len : strlen(payload);
    }

    token_text[0] = '\0';
    append_base64url(f->header, strlen(f->header));
    append(".");
    append_base64url(payload, payload_len);
    signed_len = strlen(token_text);

    memset(mac, 0, sizeof(mac));
    if (f->alg == FORGE_HS256) {
        crypto_auth_hmacsha256_state st;

        crypto_auth_hmacsha256_init(&st, f->key, f->key_len);
        crypto_auth_hmacsha256_update(&st, (unsigned char *)token_text,
            signed_len);
        crypto_auth_hmacsha256_final(&st, mac);
        mac_len = crypto_auth_hmacsha256_BYTES;
    } else if (f->alg == FORGE_HS512) {
        crypto_auth_hmacsha512_state st;

        crypto_auth_hmacsha512_init(&st, f->key, f->key_len);
        crypto_auth_hmacsha512_update(&st, (unsigned char *)token_text,
            signed_len);
        crypto_auth_hmacsha512_final(&st, mac);
        mac_len = crypto_auth_hmacsha512_BYTES;
    }

    /* Padding bytes stay zero: a longer tag that starts right. */
    if (f->mac_len != 0) {
        CU_ASSERT_FATAL(f->mac_len <= sizeof(mac));
        mac_len = f->mac_len;
    }
    if (f->flip_bit)
        mac[5] ^= 0x10;

    append(".");
    append_base64url(mac, mac_len);
    return token_text;
}

static int
verify(const char *token, struct token_claims *claims)
{
    error_clear(&err);
    return token_verify(&conf, &secret, token, TENANT, (time_t)NOW, claims,
        &err);
}

/* The one refusal: 401, the fixed detail, and claims left alone. */
static bool
refused(const char *token)
{
    struct token_claims claims, untouched;
    int rc;

    memset(&claims, 0x5a, sizeof(claims));
    memcpy(&untouched, &claims, sizeof(claims));
    rc = verify(token, &claims);
    return rc == -1 && err.status == 401 &&
        strcmp(err.detail, REFUSED) == 0 &&
        memcmp(&claims, &untouched, sizeof(claims)) == 0;
}

static bool
accepted(const char *token)
{
    struct token_claims claims;

    return verify(token, &claims) == 0 && err.status == 0;
}

static char *
issue(const struct token_secret *key, enum role role)
{
    struct token_claims claims;
    char *token;

    memset(&claims, 0, sizeof(claims));
    snprintf(claims.tenant_id, sizeof(claims.tenant_id), "%s", TENANT);
    snprintf(claims.user_id, sizeof(claims.user_id), "%s", USER);
    claims.role = role;

    error_clear(&err);
    token = token_issue(&conf, key, &claims, (time_t)NOW, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(token);
    return token;
}

/* Decodes one segment of a token into a NUL-terminated string. */
static bool
decode_segment(const char *token, int index, char *out, size_t cap)
{
    const char *start = token, *end;
    size_t len;

    for (int i = 0; i < index; i++) {
        start = strchr(start, '.');
        if (start == NULL)
            return false;
        start++;
    }
    end = strchr(start, '.');
    if (end == NULL)
        end = start + strlen(start);

    if (sodium_base642bin((unsigned char *)out, cap - 1, start,
            (size_t)(end - start), NULL, &len, NULL, B64URL) != 0)
        return false;
    out[len] = '\0';
    return true;
}

/* ---- roles ---- */

static void
test_role_names_round_trip(void)
{
    CU_ASSERT_STRING_EQUAL(role_name(ROLE_VIEWER), "viewer");
    CU_ASSERT_STRING_EQUAL(role_name(ROLE_MEMBER), "member");
    CU_ASSERT_STRING_EQUAL(role_name(ROLE_ADMIN), "admin");
    CU_ASSERT_EQUAL(role_parse("viewer"), ROLE_VIEWER);
    CU_ASSERT_EQUAL(role_parse("member"), ROLE_MEMBER);
    CU_ASSERT_EQUAL(role_parse("admin"), ROLE_ADMIN);
}

static void
test_role_parse_refuses_unknown_names(void)
{
    CU_ASSERT_EQUAL(role_parse("owner"), ROLE_NONE);
    CU_ASSERT_EQUAL(role_parse("Admin"), ROLE_NONE);
    CU_ASSERT_EQUAL(role_parse("admin "), ROLE_NONE);
    CU_ASSERT_EQUAL(role_parse(""), ROLE_NONE);
    CU_ASSERT_EQUAL(role_parse("none"), ROLE_NONE);
    CU_ASSERT_EQUAL(role_parse(NULL), ROLE_NONE);
}

static void
test_role_name_of_none_is_none(void)
{
    CU_ASSERT_STRING_EQUAL(role_name(ROLE_NONE), "none");
    CU_ASSERT_STRING_EQUAL(role_name((enum role)42), "none");
}

/* ---- issue and verify ---- */

static void
test_issued_token_verifies_with_same_claims(void)
{
    struct token_claims issued, got;
    char *token;

    setup();
    memset(&issued, 0, sizeof(issued));
    snprintf(issued.tenant_id, sizeof(issued.tenant_id), "%s", TENANT);
    snprintf(issued.user_id, sizeof(issued.user_id), "%s", USER);
    issued.role = ROLE_ADMIN;

    token = token_issue(&conf, &secret, &issued, (time_t)NOW, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(token);
    CU_ASSERT_EQUAL(issued.issued_at, NOW);
    CU_ASSERT_EQUAL(issued.expires_at, NOW + LIFETIME);

    memset(&got, 0, sizeof(got));
    CU_ASSERT_EQUAL(verify(token, &got), 0);
    CU_ASSERT_STRING_EQUAL(got.tenant_id, TENANT);
    CU_ASSERT_STRING_EQUAL(got.user_id, USER);
    CU_ASSERT_EQUAL(got.role, ROLE_ADMIN);
    CU_ASSERT_EQUAL(got.issued_at, NOW);
    CU_ASSERT_EQUAL(got.expires_at, NOW + LIFETIME);
    free(token);
}

static void
test_issued_token_has_hs256_header_and_all_claims(void)
{
    struct json_object *payload, *v;
    char text[1024], jti[UUID_TEXT_LEN + 1];
    char *token;

    setup();
    token = issue(&secret, ROLE_VIEWER);

    CU_ASSERT_FATAL(decode_segment(token, 0, text, sizeof(text)));
    CU_ASSERT_STRING_EQUAL(text, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}");

    CU_ASSERT_FATAL(decode_segment(token, 1, text, sizeof(text)));
    payload = json_tokener_parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(payload);
    CU_ASSERT(json_object_object_get_ex(payload, "iss", &v) &&
        strcmp(json_object_get_string(v), "crewd") == 0);
    CU_ASSERT(json_object_object_get_ex(payload, "aud", &v) &&
        strcmp(json_object_get_string(v), TENANT) == 0);
    CU_ASSERT(json_object_object_get_ex(payload, "sub", &v) &&
        strcmp(json_object_get_string(v), USER) == 0);
    CU_ASSERT(json_object_object_get_ex(payload, "role", &v) &&
        strcmp(json_object_get_string(v), "viewer") == 0);
    CU_ASSERT(json_object_object_get_ex(payload, "iat", &v) &&
        json_object_is_type(v, json_type_int) &&
        json_object_get_int64(v) == NOW);
    CU_ASSERT(json_object_object_get_ex(payload, "exp", &v) &&
        json_object_is_type(v, json_type_int) &&
        json_object_get_int64(v) == NOW + LIFETIME);
    CU_ASSERT(json_object_object_get_ex(payload, "jti", &v) &&
        json_object_is_type(v, json_type_string) &&
        uuid_parse(json_object_get_string(v),
            (size_t)json_object_get_string_len(v), jti) &&
        strcmp(jti, json_object_get_string(v)) == 0);
    CU_ASSERT(json_object_object_get_ex(payload, "ver", &v) &&
        json_object_is_type(v, json_type_int));
    CU_ASSERT_EQUAL(json_object_object_length(payload), 8);
    json_object_put(payload);
    free(token);
}

static void
test_issued_tokens_have_distinct_jti(void)
{
    char *first, *second;

    setup();
    first = issue(&secret, ROLE_MEMBER);
    second = issue(&secret, ROLE_MEMBER);
    CU_ASSERT_STRING_NOT_EQUAL(first, second);
    free(first);
    free(second);
}

static void
test_issue_refuses_non_uuid_user(void)
{
    struct token_claims claims;

    setup();
    memset(&claims, 0, sizeof(claims));
    snprintf(claims.tenant_id, sizeof(claims.tenant_id), "%s", TENANT);
    snprintf(claims.user_id, sizeof(claims.user_id), "alice");
    claims.role = ROLE_MEMBER;
    CU_ASSERT_PTR_NULL(token_issue(&conf, &secret, &claims, (time_t)NOW,
        &err));
    CU_ASSERT_EQUAL(err.status, 500);
}

static void
test_issue_refuses_role_none(void)
{
    struct token_claims claims;

    setup();
    memset(&claims, 0, sizeof(claims));
    snprintf(claims.tenant_id, sizeof(claims.tenant_id), "%s", TENANT);
    snprintf(claims.user_id, sizeof(claims.user_id), "%s", USER);
    claims.role = ROLE_NONE;
    CU_ASSERT_PTR_NULL(token_issue(&conf, &secret, &claims, (time_t)NOW,
        &err));
    CU_ASSERT_EQUAL(err.status, 500);
}

static void
test_issue_refuses_unloaded_secret(void)
{
    struct token_secret none;
    struct token_claims claims;

    setup();
    memset(&none, 0, sizeof(none));
    memset(&claims, 0, sizeof(claims));
    snprintf(claims.tenant_id, sizeof(claims.tenant_id), "%s", TENANT);
    snprintf(claims.user_id, sizeof(claims.user_id), "%s", USER);
    claims.role = ROLE_MEMBER;
    CU_ASSERT_PTR_NULL(token_issue(&conf, &none, &claims, (time_t)NOW,
        &err));
    CU_ASSERT_EQUAL(err.status, 500);
}

static void
test_verify_refuses_everything_with_unloaded_secret(void)
{
    struct forge f;

    setup();
    memset(&secret, 0, sizeof(secret));
    f = good_forge();
    f.key = secret.key;
    f.key_len = 0;          /* what an empty key would sign */
    CU_ASSERT(refused(forge(&f)));
}

static void
test_token_for_other_tenant_refused(void)
{
    struct token_claims claims;
    char *token;

    setup();
    token = issue(&secret, ROLE_MEMBER);
    memset(&claims, 0x5a, sizeof(claims));
    CU_ASSERT_EQUAL(token_verify(&conf, &secret, token, OTHER_TENANT,
        (time_t)NOW, &claims, &err), -1);
    CU_ASSERT_EQUAL(err.status, 401);
    CU_ASSERT_STRING_EQUAL(err.detail, REFUSED);
    free(token);
}

static void
test_token_without_expected_tenant_refused(void)
{
    struct token_claims claims;
    char *token;

    setup();
    token = issue(&secret, ROLE_MEMBER);
    CU_ASSERT_EQUAL(token_verify(&conf, &secret, token, NULL, (time_t)NOW,
        &claims, &err), -1);
    CU_ASSERT_EQUAL(err.status, 401);
    free(token);
}

static void
test_token_from_other_issuer_refused(void)
{
    char *token;

    setup();
    token = issue(&secret, ROLE_MEMBER);
    snprintf(conf.token_issuer, sizeof(conf.token_issuer), "crewd-staging");
    CU_ASSERT(refused(token));
    free(token);
}

static void
test_token_signed_with_other_secret_refused(void)
{
    struct token_secret other;
    char *token;

    setup();
    other = secret;
    other.key[0] ^= 1;
    token = issue(&other, ROLE_MEMBER);
    CU_ASSERT(refused(token));
    free(token);
}

static void
test_token_refused_once_exp_is_reached(void)
{
    struct token_claims claims;
    char *token;

    setup();
    token = issue(&secret, ROLE_MEMBER);
    CU_ASSERT_EQUAL(token_verify(&conf, &secret, token, TENANT,
        (time_t)(NOW + LIFETIME), &claims, &err), -1);
    CU_ASSERT_EQUAL(err.status, 401);
    CU_ASSERT_STRING_EQUAL(err.detail, REFUSED);
    free(token);
}

static void
test_token_accepted_in_its_last_second(void)
{
    struct token_claims claims;
    char *token;

    setup();
    token = issue(&secret, ROLE_MEMBER);
    CU_ASSERT_EQUAL(token_verify(&conf, &secret, token, TENANT,
        (time_t)(NOW + LIFETIME - 1), &claims, &err), 0);
    free(token);
}

/* ---- hand-made tokens: claims ---- */

static void
test_forged_token_with_good_claims_accepted(void)
{
    struct forge f;
    struct token_claims claims;

    /* The control: every refusal below changes one thing of this. */
    setup();
    f = good_forge();
    CU_ASSERT_EQUAL_FATAL(verify(forge(&f), &claims), 0);
    CU_ASSERT_STRING_EQUAL(claims.tenant_id, TENANT);
    CU_ASSERT_STRING_EQUAL(claims.user_id, USER);
    CU_ASSERT_EQUAL(claims.role, ROLE_MEMBER);
    CU_ASSERT_EQUAL(claims.issued_at, NOW);
    CU_ASSERT_EQUAL(claims.expires_at, NOW + 600);
}

static void
test_exp_as_string_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.exp = "\"1700000600\"";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_exp_as_float_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.exp = "1700000600.0";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_exp_in_exponent_form_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.exp = "17000006e2";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_exp_as_boolean_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.exp = "true";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_exp_as_null_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.exp = "null";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_missing_exp_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.exp = NULL;
    CU_ASSERT(refused(forge(&f)));
}

static void
test_missing_version_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.ver = NULL;
    CU_ASSERT(refused(forge(&f)));
}

static void
test_version_as_string_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.ver = "\"0\"";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_version_is_read(void)
{
    struct token_claims claims;
    struct forge f;

    setup();
    f = good_forge();
    f.ver = "7";
    error_clear(&err);
    CU_ASSERT_EQUAL(token_verify(&conf, &secret, forge(&f), TENANT, NOW,
        &claims, &err), 0);
    CU_ASSERT_EQUAL(claims.version, 7);
}

static void
test_missing_iat_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.iat = NULL;
    CU_ASSERT(refused(forge(&f)));
}

static void
test_iat_as_string_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.iat = "\"1700000000\"";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_far_future_exp_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.exp = num(NOW + 10LL * 365 * 86400);
    CU_ASSERT(refused(forge(&f)));
}

static void
test_huge_exp_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.exp = "99999999999999999999";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_lifetime_longer_than_configured_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.iat = num(NOW - 100);
    f.exp = num(NOW - 100 + LIFETIME + 1);
    CU_ASSERT(refused(forge(&f)));
}

static void
test_lifetime_equal_to_configured_accepted(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.iat = num(NOW - 100);
    f.exp = num(NOW - 100 + LIFETIME);
    CU_ASSERT(accepted(forge(&f)));
}

static void
test_hugely_negative_iat_refused(void)
{
    struct forge f;

    /* json-c clamps this to INT64_MIN; exp - iat must not overflow. */
    setup();
    f = good_forge();
    f.iat = "-99999999999999999999";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_iat_after_exp_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.iat = num(NOW + 30);
    f.exp = num(NOW + 20);
    CU_ASSERT(refused(forge(&f)));
}

static void
test_iat_beyond_clock_leeway_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.iat = num(NOW + LEEWAY + 1);
    f.exp = num(NOW + LEEWAY + 601);
    CU_ASSERT(refused(forge(&f)));
}

static void
test_iat_within_clock_leeway_accepted(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.iat = num(NOW + LEEWAY);
    f.exp = num(NOW + LEEWAY + 600);
    CU_ASSERT(accepted(forge(&f)));
}

static void
test_future_nbf_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.nbf = num(NOW + LEEWAY + 1);
    CU_ASSERT(refused(forge(&f)));
}

static void
test_nbf_within_clock_leeway_accepted(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.nbf = num(NOW + LEEWAY);
    CU_ASSERT(accepted(forge(&f)));
}

static void
test_nbf_as_string_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.nbf = "\"1700000000\"";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_missing_issuer_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.iss = NULL;
    CU_ASSERT(refused(forge(&f)));
}

static void
test_issuer_with_nul_suffix_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.iss = "\"crewd\\u0000x\"";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_aud_as_array_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.aud = "[\"" TENANT "\"]";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_missing_aud_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.aud = NULL;
    CU_ASSERT(refused(forge(&f)));
}

static void
test_duplicate_claim_refused(void)
{
    struct forge f;

    /* json-c would keep the last aud (ours); another parser the first. */
    setup();
    f = good_forge();
    f.extra = "\"aud\":\"" OTHER_TENANT "\",";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_unknown_role_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.role = "\"owner\"";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_role_with_nul_suffix_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.role = "\"admin\\u0000\"";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_sub_not_uuid_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.sub = "\"alice\"";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_sub_upper_case_uuid_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.sub = "\"6F1C2B3A-4D5E-4F60-8A7B-9C0D1E2F3A4B\"";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_payload_array_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.payload = "[1,2]";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_payload_with_trailing_nul_refused(void)
{
    char text[512];
    struct forge f;
    size_t len;

    /* json-c stops at the NUL and reports success; we must not. */
    setup();
    f = good_forge();
    forge(&f);
    CU_ASSERT_FATAL(decode_segment(token_text, 1, text, sizeof(text) - 1));
    len = strlen(text);
    text[len++] = '\0';
    f.payload = text;
    f.payload_len = len;
    CU_ASSERT(refused(forge(&f)));
}

/* ---- hand-made tokens: header ---- */

static void
test_alg_none_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.header = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
    f.alg = FORGE_NONE;
    CU_ASSERT(refused(forge(&f)));
}

static void
test_alg_none_with_valid_mac_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.header = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_alg_hs512_signed_with_same_key_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.header = "{\"alg\":\"HS512\",\"typ\":\"JWT\"}";
    f.alg = FORGE_HS512;
    CU_ASSERT(refused(forge(&f)));
}

static void
test_alg_lower_case_hs256_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.header = "{\"alg\":\"hs256\",\"typ\":\"JWT\"}";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_alg_rs256_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.header = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_alg_with_nul_suffix_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.header = "{\"alg\":\"HS256\\u0000x\",\"typ\":\"JWT\"}";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_missing_alg_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.header = "{\"typ\":\"JWT\"}";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_duplicate_alg_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.header = "{\"alg\":\"none\",\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_typ_other_than_jwt_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.header = "{\"alg\":\"HS256\",\"typ\":\"jwe\"}";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_missing_typ_accepted(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.header = "{\"alg\":\"HS256\"}";
    CU_ASSERT(accepted(forge(&f)));
}

static void
test_crit_header_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.header = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"crit\":[\"exp\"]}";
    CU_ASSERT(refused(forge(&f)));
}

static void
test_header_not_json_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.header = "{alg:HS256}";
    CU_ASSERT(refused(forge(&f)));
}

/* ---- hand-made tokens: signature ---- */

static void
test_signature_truncated_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.mac_len = 16;
    CU_ASSERT(refused(forge(&f)));
}

static void
test_signature_too_long_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.mac_len = 48;
    CU_ASSERT(refused(forge(&f)));
}

static void
test_signature_with_one_bit_flipped_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.flip_bit = true;
    CU_ASSERT(refused(forge(&f)));
}

static void
test_signature_in_non_canonical_base64_refused(void)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    struct forge f;
    const char *digit;
    size_t len;

    /*
     * 32 bytes take 43 characters and the last carries 2 unused bits.
     * Setting one leaves a string a lax decoder reads as the same tag.
     */
    setup();
    f = good_forge();
    forge(&f);
    len = strlen(token_text);
    digit = strchr(alphabet, token_text[len - 1]);
    CU_ASSERT_FATAL(digit != NULL && (digit - alphabet) % 4 == 0);
    token_text[len - 1] = alphabet[(digit - alphabet) | 1];
    CU_ASSERT(refused(token_text));
}

static void
test_empty_signature_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    f.alg = FORGE_NONE;
    CU_ASSERT(refused(forge(&f)));
}

/* ---- shape ---- */

static void
test_empty_token_refused(void)
{
    setup();
    CU_ASSERT(refused(""));
}

static void
test_null_token_refused(void)
{
    setup();
    CU_ASSERT(refused(NULL));
}

static void
test_garbage_refused(void)
{
    setup();
    CU_ASSERT(refused("not a token"));
    CU_ASSERT(refused(".."));
    CU_ASSERT(refused("a.b"));
}

static void
test_three_dots_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    forge(&f);
    append(".AAAA");
    CU_ASSERT(refused(token_text));
}

static void
test_padding_character_refused(void)
{
    struct forge f;

    setup();
    f = good_forge();
    forge(&f);
    append("=");
    CU_ASSERT(refused(token_text));
}

static void
test_leading_space_refused(void)
{
    char text[sizeof(token_text) + 1];
    struct forge f;

    setup();
    f = good_forge();
    snprintf(text, sizeof(text), " %s", forge(&f));
    CU_ASSERT(refused(text));
}

/* Pads the claims with a long extra member to reach total bytes. */
static bool
forge_of_length(size_t total)
{
    static char extra[5000];
    struct forge f;

    for (size_t pad = 0; pad < 4000; pad++) {
        snprintf(extra, sizeof(extra), "\"pad\":\"%0*d\",", (int)pad + 1, 0);
        f = good_forge();
        f.extra = extra;
        if (strlen(forge(&f)) == total)
            return true;
    }
    return false;
}

static void
test_token_of_max_bytes_accepted(void)
{
    setup();
    CU_ASSERT_FATAL(forge_of_length(TOKEN_MAX_BYTES));
    CU_ASSERT(accepted(token_text));
}

static void
test_token_over_max_bytes_refused(void)
{
    setup();
    CU_ASSERT_FATAL(forge_of_length(TOKEN_MAX_BYTES + 1) ||
        forge_of_length(TOKEN_MAX_BYTES + 2));
    CU_ASSERT(refused(token_text));
}

/* ---- secret files ---- */

struct scratch {
    char dir[64];
    char path[128];
};

static void
scratch_open(struct scratch *s)
{
    snprintf(s->dir, sizeof(s->dir), "/tmp/crewd-token-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(s->dir));
    snprintf(s->path, sizeof(s->path), "%s/token.key", s->dir);
}

static void
scratch_close(struct scratch *s)
{
    unlink(s->path);
    CU_ASSERT_EQUAL(rmdir(s->dir), 0);
}

static void
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, mode);

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(fchmod(fd, mode) == 0);
    CU_ASSERT_FATAL(write(fd, data, len) == (ssize_t)len);
    close(fd);
}

/* Random bytes that cannot be mistaken for hex text. */
static void
raw_key(unsigned char *key, size_t len)
{
    randombytes_buf(key, len);
    key[0] = 0xff;
}

static int
load(struct token_secret *out, const char *path)
{
    error_clear(&err);
    return token_secret_load(out, path, &err);
}

static void
test_secret_hex_line_accepted(void)
{
    unsigned char key[32];
    char text[2 * sizeof(key) + 2];
    struct token_secret got;
    struct scratch s;

    setup();
    scratch_open(&s);
    randombytes_buf(key, sizeof(key));
    sodium_bin2hex(text, sizeof(text), key, sizeof(key));
    strcat(text, "\n");
    write_file(s.path, text, strlen(text), 0600);

    CU_ASSERT_EQUAL(load(&got, s.path), 0);
    CU_ASSERT_EQUAL(got.len, sizeof(key));
    CU_ASSERT_EQUAL(memcmp(got.key, key, sizeof(key)), 0);
    scratch_close(&s);
}

static void
test_secret_upper_case_hex_without_newline_accepted(void)
{
    const char text[] =
        "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF";
    struct token_secret got;
    struct scratch s;

    setup();
    scratch_open(&s);
    write_file(s.path, text, strlen(text), 0400);
    CU_ASSERT_EQUAL(load(&got, s.path), 0);
    CU_ASSERT_EQUAL(got.len, 32);
    CU_ASSERT_EQUAL(got.key[10], 0xaa);
    scratch_close(&s);
}

static void
test_secret_raw_bytes_accepted(void)
{
    unsigned char key[48];
    struct token_secret got;
    struct scratch s;

    setup();
    scratch_open(&s);
    raw_key(key, sizeof(key));
    write_file(s.path, key, sizeof(key), 0600);

    CU_ASSERT_EQUAL(load(&got, s.path), 0);
    CU_ASSERT_EQUAL(got.len, sizeof(key));
    CU_ASSERT_EQUAL(memcmp(got.key, key, sizeof(key)), 0);
    scratch_close(&s);
}

static void
test_secret_of_32_raw_bytes_accepted(void)
{
    unsigned char key[32];
    struct token_secret got;
    struct scratch s;

    setup();
    scratch_open(&s);
    raw_key(key, sizeof(key));
    write_file(s.path, key, sizeof(key), 0600);
    CU_ASSERT_EQUAL(load(&got, s.path), 0);
    CU_ASSERT_EQUAL(got.len, 32);
    scratch_close(&s);
}

static void
test_secret_too_short_refused(void)
{
    unsigned char key[31];
    struct token_secret got;
    struct scratch s;

    setup();
    scratch_open(&s);
    raw_key(key, sizeof(key));
    write_file(s.path, key, sizeof(key), 0600);

    CU_ASSERT_EQUAL(load(&got, s.path), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, s.path));
    CU_ASSERT_EQUAL(got.len, 0);
    scratch_close(&s);
}

static void
test_secret_short_hex_refused(void)
{
    /* 31 bytes in hex: 63 bytes of file, but only 124 bits of key. */
    const char text[] =
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddee\n";
    struct token_secret got;
    struct scratch s;

    setup();
    scratch_open(&s);
    write_file(s.path, text, strlen(text), 0600);
    CU_ASSERT_EQUAL(load(&got, s.path), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, s.path));
    scratch_close(&s);
}

static void
test_secret_too_long_refused(void)
{
    unsigned char key[TOKEN_SECRET_MAX_BYTES + 1];
    struct token_secret got;
    struct scratch s;

    setup();
    scratch_open(&s);
    raw_key(key, sizeof(key));
    write_file(s.path, key, sizeof(key), 0600);
    CU_ASSERT_EQUAL(load(&got, s.path), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, s.path));
    scratch_close(&s);
}

static void
test_secret_group_readable_refused(void)
{
    unsigned char key[64];
    struct token_secret got;
    struct scratch s;

    setup();
    scratch_open(&s);
    raw_key(key, sizeof(key));
    write_file(s.path, key, sizeof(key), 0640);

    CU_ASSERT_EQUAL(load(&got, s.path), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, s.path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "chmod 600"));
    CU_ASSERT_EQUAL(got.len, 0);
    scratch_close(&s);
}

static void
test_secret_other_readable_refused(void)
{
    unsigned char key[64];
    struct token_secret got;
    struct scratch s;

    setup();
    scratch_open(&s);
    raw_key(key, sizeof(key));
    write_file(s.path, key, sizeof(key), 0604);
    CU_ASSERT_EQUAL(load(&got, s.path), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "chmod 600"));
    scratch_close(&s);
}

static void
test_secret_missing_file_refused(void)
{
    struct token_secret got;
    struct scratch s;

    setup();
    scratch_open(&s);
    CU_ASSERT_EQUAL(load(&got, s.path), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, s.path));
    scratch_close(&s);
}

static void
test_secret_create_makes_0600_hex_file_whatever_the_umask(void)
{
    struct token_secret got;
    struct scratch s;
    struct stat st;
    char text[200];
    mode_t old_umask;
    ssize_t n;
    int fd;

    setup();
    scratch_open(&s);
    /* 0777 would leave 0000 but for the fchmod. */
    old_umask = umask(0777);
    CU_ASSERT_EQUAL(token_secret_create(s.path, &err), 0);
    umask(old_umask);

    CU_ASSERT_EQUAL_FATAL(stat(s.path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0600);

    fd = open(s.path, O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    n = read(fd, text, sizeof(text));
    close(fd);
    CU_ASSERT_EQUAL(n, 129);
    CU_ASSERT_EQUAL(text[128], '\n');
    CU_ASSERT_EQUAL(strspn(text, "0123456789abcdef"), 128);

    CU_ASSERT_EQUAL(load(&got, s.path), 0);
    CU_ASSERT_EQUAL(got.len, 64);
    scratch_close(&s);
}

static void
test_secret_create_refuses_existing_file(void)
{
    struct scratch s;
    char text[16];
    ssize_t n;
    int fd;

    setup();
    scratch_open(&s);
    write_file(s.path, "keep me", 7, 0600);

    CU_ASSERT_EQUAL(token_secret_create(s.path, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, s.path));

    fd = open(s.path, O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    n = read(fd, text, sizeof(text));
    close(fd);
    CU_ASSERT_EQUAL(n, 7);
    CU_ASSERT_EQUAL(memcmp(text, "keep me", 7), 0);
    scratch_close(&s);
}

static void
test_secret_create_refuses_symlink(void)
{
    char target[160];
    struct scratch s;

    setup();
    scratch_open(&s);
    snprintf(target, sizeof(target), "%s/elsewhere", s.dir);
    CU_ASSERT_FATAL(symlink(target, s.path) == 0);

    CU_ASSERT_EQUAL(token_secret_create(s.path, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, s.path));
    CU_ASSERT_EQUAL(access(target, F_OK), -1);
    unlink(target);     /* only there if the test failed */
    scratch_close(&s);
}

/* ---- passwords ---- */

static void
password_setup(void)
{
    setup();
    CU_ASSERT_EQUAL_FATAL(password_init(&conf, &err), 0);
}

static void
test_password_hash_then_verify_succeeds(void)
{
    char hash[128];

    password_setup();
    CU_ASSERT_EQUAL_FATAL(password_hash(&conf, "correct horse", 13, hash,
        &err), 0);
    CU_ASSERT_EQUAL(strncmp(hash, "$argon2id$", 10), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(hash, "m=8,t=1,"));
    CU_ASSERT_TRUE(password_verify(hash, "correct horse", 13));
}

static void
test_password_wrong_password_fails(void)
{
    char hash[128];

    password_setup();
    CU_ASSERT_EQUAL_FATAL(password_hash(&conf, "correct horse", 13, hash,
        &err), 0);
    CU_ASSERT_FALSE(password_verify(hash, "correct horsf", 13));
    CU_ASSERT_FALSE(password_verify(hash, "correct horse", 12));
}

static void
test_password_null_hash_fails(void)
{
    password_setup();
    CU_ASSERT_FALSE(password_verify(NULL, "correct horse", 13));
}

static void
test_password_over_cap_is_400(void)
{
    char password[258];

    password_setup();
    memset(password, 'a', sizeof(password));
    CU_ASSERT_EQUAL(password_check_policy(&conf, NULL, password, 257, &err),
        -1);
    CU_ASSERT_EQUAL(err.status, 400);
    CU_ASSERT_STRING_EQUAL(err.detail, "password is longer than 256 bytes");
    CU_ASSERT_EQUAL(err.nfields, 0);
}

static void
test_password_over_cap_names_given_field(void)
{
    char password[258];

    password_setup();
    memset(password, 'a', sizeof(password));
    CU_ASSERT_EQUAL(password_check_policy(&conf, "new_password", password,
        257, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.detail,
        "new_password is longer than 256 bytes");
}

static void
test_password_hash_refuses_over_cap(void)
{
    char password[300], hash[128];

    password_setup();
    memset(password, 'a', sizeof(password));
    memset(hash, 0, sizeof(hash));
    CU_ASSERT_EQUAL(password_hash(&conf, password, 257, hash, &err), -1);
    CU_ASSERT_EQUAL(err.status, 400);
    CU_ASSERT_EQUAL(hash[0], '\0');
}

static void
test_password_under_min_is_422(void)
{
    password_setup();
    CU_ASSERT_EQUAL(password_check_policy(&conf, NULL, "1234567", 7, &err),
        -1);
    CU_ASSERT_EQUAL(err.status, 422);
    CU_ASSERT_EQUAL_FATAL(err.nfields, 1);
    CU_ASSERT_STRING_EQUAL(err.fields[0].field, "password");
    CU_ASSERT_STRING_EQUAL(err.fields[0].message, "must be at least 8 bytes");
}

static void
test_password_with_nul_is_422(void)
{
    password_setup();
    CU_ASSERT_EQUAL(password_check_policy(&conf, NULL, "1234\0" "5678", 9,
        &err), -1);
    CU_ASSERT_EQUAL(err.status, 422);
    CU_ASSERT_EQUAL(err.nfields, 1);
}

static void
test_password_at_limits_accepted(void)
{
    char password[256];

    password_setup();
    memset(password, 'a', sizeof(password));
    CU_ASSERT_EQUAL(password_check_policy(&conf, NULL, password, 8, &err), 0);
    CU_ASSERT_EQUAL(password_check_policy(&conf, NULL, password, 256, &err),
        0);
    CU_ASSERT_EQUAL(err.status, 0);
}

static void
test_password_malformed_hash_fails(void)
{
    password_setup();
    CU_ASSERT_FALSE(password_verify("", "correct horse", 13));
    CU_ASSERT_FALSE(password_verify("correct horse", "correct horse", 13));
    CU_ASSERT_FALSE(password_verify("$argon2id$nonsense", "correct horse",
        13));
}

static void
test_password_truncated_hash_fails(void)
{
    char hash[128];

    password_setup();
    CU_ASSERT_EQUAL_FATAL(password_hash(&conf, "correct horse", 13, hash,
        &err), 0);
    hash[strlen(hash) - 3] = '\0';
    CU_ASSERT_FALSE(password_verify(hash, "correct horse", 13));
}

static void
test_password_unterminated_hash_fails(void)
{
    char good[128], *hash = malloc(128);

    /*
     * A real hash run on to exactly 128 bytes with no NUL: a parser that
     * trusted it would read past the end, which ASan and valgrind catch.
     */
    password_setup();
    CU_ASSERT_PTR_NOT_NULL_FATAL(hash);
    CU_ASSERT_EQUAL_FATAL(password_hash(&conf, "correct horse", 13, good,
        &err), 0);
    memset(hash, 'A', 128);
    memcpy(hash, good, strlen(good));
    CU_ASSERT_FALSE(password_verify(hash, "correct horse", 13));
    free(hash);
}

void
register_token_tests(void)
{
    CU_pSuite s = unit_suite("token");
    CU_pSuite p = unit_suite("password");

    unit_test(s, "role names round trip", test_role_names_round_trip);
    unit_test(s, "role_parse refuses unknown names",
        test_role_parse_refuses_unknown_names);
    unit_test(s, "role_name of none is none", test_role_name_of_none_is_none);

    unit_test(s, "issued token verifies with the same claims",
        test_issued_token_verifies_with_same_claims);
    unit_test(s, "issued token has HS256 header and all claims",
        test_issued_token_has_hs256_header_and_all_claims);
    unit_test(s, "issued tokens have distinct jti",
        test_issued_tokens_have_distinct_jti);
    unit_test(s, "issue refuses a non-UUID user",
        test_issue_refuses_non_uuid_user);
    unit_test(s, "issue refuses role none", test_issue_refuses_role_none);
    unit_test(s, "issue refuses an unloaded secret",
        test_issue_refuses_unloaded_secret);
    unit_test(s, "verify refuses everything with an unloaded secret",
        test_verify_refuses_everything_with_unloaded_secret);
    unit_test(s, "token for another tenant refused",
        test_token_for_other_tenant_refused);
    unit_test(s, "token without an expected tenant refused",
        test_token_without_expected_tenant_refused);
    unit_test(s, "token from another issuer refused",
        test_token_from_other_issuer_refused);
    unit_test(s, "token signed with another secret refused",
        test_token_signed_with_other_secret_refused);
    unit_test(s, "token refused once exp is reached",
        test_token_refused_once_exp_is_reached);
    unit_test(s, "token accepted in its last second",
        test_token_accepted_in_its_last_second);

    unit_test(s, "forged token with good claims accepted",
        test_forged_token_with_good_claims_accepted);
    unit_test(s, "exp as string refused", test_exp_as_string_refused);
    unit_test(s, "exp as float refused", test_exp_as_float_refused);
    unit_test(s, "exp in exponent form refused",
        test_exp_in_exponent_form_refused);
    unit_test(s, "exp as boolean refused", test_exp_as_boolean_refused);
    unit_test(s, "exp as null refused", test_exp_as_null_refused);
    unit_test(s, "missing exp refused", test_missing_exp_refused);
    unit_test(s, "missing iat refused", test_missing_iat_refused);
    unit_test(s, "missing version refused", test_missing_version_refused);
    unit_test(s, "version as a string refused",
        test_version_as_string_refused);
    unit_test(s, "version is read", test_version_is_read);
    unit_test(s, "iat as string refused", test_iat_as_string_refused);
    unit_test(s, "far-future exp refused", test_far_future_exp_refused);
    unit_test(s, "huge exp refused", test_huge_exp_refused);
    unit_test(s, "lifetime longer than configured refused",
        test_lifetime_longer_than_configured_refused);
    unit_test(s, "lifetime equal to configured accepted",
        test_lifetime_equal_to_configured_accepted);
    unit_test(s, "hugely negative iat refused",
        test_hugely_negative_iat_refused);
    unit_test(s, "iat after exp refused", test_iat_after_exp_refused);
    unit_test(s, "iat beyond clock leeway refused",
        test_iat_beyond_clock_leeway_refused);
    unit_test(s, "iat within clock leeway accepted",
        test_iat_within_clock_leeway_accepted);
    unit_test(s, "future nbf refused", test_future_nbf_refused);
    unit_test(s, "nbf within clock leeway accepted",
        test_nbf_within_clock_leeway_accepted);
    unit_test(s, "nbf as string refused", test_nbf_as_string_refused);
    unit_test(s, "missing issuer refused", test_missing_issuer_refused);
    unit_test(s, "issuer with NUL suffix refused",
        test_issuer_with_nul_suffix_refused);
    unit_test(s, "aud as array refused", test_aud_as_array_refused);
    unit_test(s, "missing aud refused", test_missing_aud_refused);
    unit_test(s, "duplicate claim refused", test_duplicate_claim_refused);
    unit_test(s, "unknown role refused", test_unknown_role_refused);
    unit_test(s, "role with NUL suffix refused",
        test_role_with_nul_suffix_refused);
    unit_test(s, "sub not a UUID refused", test_sub_not_uuid_refused);
    unit_test(s, "sub as upper-case UUID refused",
        test_sub_upper_case_uuid_refused);
    unit_test(s, "payload array refused", test_payload_array_refused);
    unit_test(s, "payload with trailing NUL refused",
        test_payload_with_trailing_nul_refused);

    unit_test(s, "alg none refused", test_alg_none_refused);
    unit_test(s, "alg none with a valid MAC refused",
        test_alg_none_with_valid_mac_refused);
    unit_test(s, "alg HS512 signed with the same key refused",
        test_alg_hs512_signed_with_same_key_refused);
    unit_test(s, "alg hs256 in lower case refused",
        test_alg_lower_case_hs256_refused);
    unit_test(s, "alg RS256 refused", test_alg_rs256_refused);
    unit_test(s, "alg with NUL suffix refused",
        test_alg_with_nul_suffix_refused);
    unit_test(s, "missing alg refused", test_missing_alg_refused);
    unit_test(s, "duplicate alg refused", test_duplicate_alg_refused);
    unit_test(s, "typ other than JWT refused",
        test_typ_other_than_jwt_refused);
    unit_test(s, "missing typ accepted", test_missing_typ_accepted);
    unit_test(s, "crit header refused", test_crit_header_refused);
    unit_test(s, "header not JSON refused", test_header_not_json_refused);

    unit_test(s, "signature truncated refused",
        test_signature_truncated_refused);
    unit_test(s, "signature too long refused",
        test_signature_too_long_refused);
    unit_test(s, "signature with one bit flipped refused",
        test_signature_with_one_bit_flipped_refused);
    unit_test(s, "signature in non-canonical base64 refused",
        test_signature_in_non_canonical_base64_refused);
    unit_test(s, "empty signature refused", test_empty_signature_refused);

    unit_test(s, "empty token refused", test_empty_token_refused);
    unit_test(s, "NULL token refused", test_null_token_refused);
    unit_test(s, "garbage refused", test_garbage_refused);
    unit_test(s, "three dots refused", test_three_dots_refused);
    unit_test(s, "padding character refused",
        test_padding_character_refused);
    unit_test(s, "leading space refused", test_leading_space_refused);
    unit_test(s, "token of max bytes accepted",
        test_token_of_max_bytes_accepted);
    unit_test(s, "token over max bytes refused",
        test_token_over_max_bytes_refused);

    unit_test(s, "secret hex line accepted", test_secret_hex_line_accepted);
    unit_test(s, "secret upper-case hex without newline accepted",
        test_secret_upper_case_hex_without_newline_accepted);
    unit_test(s, "secret raw bytes accepted", test_secret_raw_bytes_accepted);
    unit_test(s, "secret of 32 raw bytes accepted",
        test_secret_of_32_raw_bytes_accepted);
    unit_test(s, "secret too short refused", test_secret_too_short_refused);
    unit_test(s, "secret short hex refused", test_secret_short_hex_refused);
    unit_test(s, "secret too long refused", test_secret_too_long_refused);
    unit_test(s, "secret group-readable refused",
        test_secret_group_readable_refused);
    unit_test(s, "secret other-readable refused",
        test_secret_other_readable_refused);
    unit_test(s, "secret missing file refused",
        test_secret_missing_file_refused);
    unit_test(s, "secret create makes a 0600 hex file whatever the umask",
        test_secret_create_makes_0600_hex_file_whatever_the_umask);
    unit_test(s, "secret create refuses an existing file",
        test_secret_create_refuses_existing_file);
    unit_test(s, "secret create refuses a symlink",
        test_secret_create_refuses_symlink);

    unit_test(p, "hash then verify succeeds",
        test_password_hash_then_verify_succeeds);
    unit_test(p, "wrong password fails", test_password_wrong_password_fails);
    unit_test(p, "NULL hash fails", test_password_null_hash_fails);
    unit_test(p, "over cap is 400", test_password_over_cap_is_400);
    unit_test(p, "over cap names the given field",
        test_password_over_cap_names_given_field);
    unit_test(p, "hash refuses over cap",
        test_password_hash_refuses_over_cap);
    unit_test(p, "under min is 422", test_password_under_min_is_422);
    unit_test(p, "NUL byte is 422", test_password_with_nul_is_422);
    unit_test(p, "lengths at the limits accepted",
        test_password_at_limits_accepted);
    unit_test(p, "malformed hash fails", test_password_malformed_hash_fails);
    unit_test(p, "truncated hash fails", test_password_truncated_hash_fails);
    unit_test(p, "unterminated hash fails",
        test_password_unterminated_hash_fails);
}
