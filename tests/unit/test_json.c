#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "error.h"
#include "json.h"
#include "unit.h"

/* ---------------------------------------------------------------------
 * Helpers.  Table-driven checks report the failing input in the CUnit
 * message, since the line number alone names only the table.
 * ------------------------------------------------------------------- */

static void report(bool ok, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
report(bool ok, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, (unsigned)line, msg,
        __FILE__, "", CU_FALSE);
}

/* Renders arbitrary bytes readably for a failure message. */
static const char *
shown(const char *s, size_t len, char *dst, size_t size)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 5 < size; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c >= 0x20 && c < 0x7f)
            dst[o++] = (char)c;
        else
            o += (size_t)snprintf(dst + o, size - o, "\\x%02x", c);
    }
    dst[o] = '\0';
    return dst;
}

static const char *
serialised(struct json_object *v)
{
    return json_object_to_json_string_ext(v,
        JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

struct reject {
    const char *text;
    size_t len;
    size_t at;
    const char *reason;
};

/* sizeof keeps embedded NUL bytes inside the input. */
#define REJECT(s, at, reason) { s, sizeof(s) - 1, at, reason }

static void
check_rejects(const struct reject *cases, size_t n, int line)
{
    for (size_t i = 0; i < n; i++) {
        const struct reject *c = &cases[i];
        struct crewd_error err;
        struct json_object *out = json_object_new_object();
        struct json_object *sentinel = out;
        char want[ERROR_DETAIL_MAX], input[128];
        int rc;

        error_clear(&err);
        snprintf(want, sizeof(want), "invalid JSON at byte %zu: %s",
            c->at, c->reason);
        rc = json_parse(c->text, c->len, &out, &err);

        report(rc == -1 && out == NULL && err.status == 400 &&
            strcmp(err.detail, want) == 0, line,
            "input \"%s\": rc %d, out %s, status %d, detail \"%s\", "
            "want \"%s\"", shown(c->text, c->len, input, sizeof(input)),
            rc, out == NULL ? "NULL" : "set", err.status, err.detail, want);

        json_object_put(sentinel);
        if (rc == 0)
            json_object_put(out);
    }
}

#define CHECK_REJECTS(cases) \
    check_rejects(cases, sizeof(cases) / sizeof(cases[0]), __LINE__)

/* Parses what must parse; reports and returns NULL otherwise. */
static struct json_object *
parse_ok(const char *text, size_t len, int line)
{
    struct crewd_error err;
    struct json_object *out = NULL;
    char input[128];
    int rc;

    error_clear(&err);
    rc = json_parse(text, len, &out, &err);
    report(rc == 0 && out != NULL && err.status == 0, line,
        "input \"%s\": rc %d, detail \"%s\"",
        shown(text, len, input, sizeof(input)), rc, err.detail);
    return rc == 0 ? out : NULL;
}

/* text parses and serialises back as want. */
static void
check_round_trip(const char *text, const char *want, int line)
{
    struct json_object *v = parse_ok(text, strlen(text), line);

    if (v == NULL)
        return;
    report(strcmp(serialised(v), want) == 0, line,
        "input \"%s\": serialised \"%s\", want \"%s\"", text,
        serialised(v), want);
    json_object_put(v);
}

/* A JSON string literal decodes to exactly want[0..wantlen). */
static void
check_string(const char *text, size_t len, const char *want,
    size_t wantlen, int line)
{
    struct json_object *v = parse_ok(text, len, line);
    char input[128], got[128];

    if (v == NULL)
        return;
    report(json_object_is_type(v, json_type_string) &&
        (size_t)json_object_get_string_len(v) == wantlen &&
        memcmp(json_object_get_string(v), want, wantlen) == 0, line,
        "input \"%s\": decoded \"%s\"",
        shown(text, len, input, sizeof(input)),
        shown(json_object_get_string(v),
            (size_t)json_object_get_string_len(v), got, sizeof(got)));
    json_object_put(v);
}

#define CHECK_STRING(text, want) check_string(text, sizeof(text) - 1, \
    want, sizeof(want) - 1, __LINE__)

/* n nested arrays: "[[...]]". */
static void
nested_arrays(struct buf *b, int n)
{
    for (int i = 0; i < n; i++)
        buf_putc(b, '[');
    for (int i = 0; i < n; i++)
        buf_putc(b, ']');
}

/* n nested objects, each inside the "a" member of the one before. */
static void
nested_objects(struct buf *b, int n)
{
    for (int i = 0; i < n; i++)
        buf_puts(b, i + 1 < n ? "{\"a\":" : "{");
    for (int i = 0; i < n; i++)
        buf_putc(b, '}');
}

/* ---------------------------------------------------------------------
 * Parsing what is valid
 * ------------------------------------------------------------------- */

static void
test_parse_round_trips_every_type(void)
{
    static const char text[] =
        "{\"s\":\"x/y\",\"i\":-5,\"d\":1.25,\"t\":true,\"f\":false,"
        "\"n\":null,\"a\":[1,\"two\",[],{}],\"o\":{\"k\":\"v\"}}";

    check_round_trip(text, text, __LINE__);
}

static void
test_parse_gives_json_c_types(void)
{
    static const char text[] = "[\"x\",1,1.5,true,null,[],{}]";
    struct json_object *v = parse_ok(text, strlen(text), __LINE__);

    if (v == NULL)
        return;
    CU_ASSERT_EQUAL(json_object_array_length(v), 7);
    CU_ASSERT(json_object_is_type(json_object_array_get_idx(v, 0),
        json_type_string));
    CU_ASSERT(json_object_is_type(json_object_array_get_idx(v, 1),
        json_type_int));
    CU_ASSERT(json_object_is_type(json_object_array_get_idx(v, 2),
        json_type_double));
    CU_ASSERT(json_object_is_type(json_object_array_get_idx(v, 3),
        json_type_boolean));
    CU_ASSERT_PTR_NULL(json_object_array_get_idx(v, 4));
    CU_ASSERT(json_object_is_type(json_object_array_get_idx(v, 5),
        json_type_array));
    CU_ASSERT(json_object_is_type(json_object_array_get_idx(v, 6),
        json_type_object));
    json_object_put(v);
}

static void
test_parse_top_level_scalars(void)
{
    check_round_trip("true", "true", __LINE__);
    check_round_trip("false", "false", __LINE__);
    check_round_trip("\"x\"", "\"x\"", __LINE__);
    check_round_trip("42", "42", __LINE__);
    check_round_trip("-1.5", "-1.5", __LINE__);
}

static void
test_parse_top_level_null_gives_null(void)
{
    struct crewd_error err;
    struct json_object *out = json_object_new_object();
    struct json_object *sentinel = out;

    error_clear(&err);
    CU_ASSERT_EQUAL(json_parse(" null ", 6, &out, &err), 0);
    CU_ASSERT_PTR_NULL(out);
    CU_ASSERT_EQUAL(err.status, 0);
    json_object_put(sentinel);
}

static void
test_parse_accepts_json_whitespace(void)
{
    check_round_trip(" \t\r\n[ 1 ,\n2\t,\r{ \"a\" : 3 } ]\r\n ",
        "[1,2,{\"a\":3}]", __LINE__);
}

static void
test_parse_keeps_member_order(void)
{
    check_round_trip("{\"z\":1,\"a\":2,\"m\":3}", "{\"z\":1,\"a\":2,\"m\":3}",
        __LINE__);
}

static void
test_parse_int64_limits(void)
{
    struct json_object *max = parse_ok("9223372036854775807", 19, __LINE__);
    struct json_object *min = parse_ok("-9223372036854775808", 20, __LINE__);

    if (max != NULL) {
        CU_ASSERT(json_object_is_type(max, json_type_int));
        CU_ASSERT_EQUAL(json_object_get_int64(max), INT64_MAX);
        json_object_put(max);
    }
    if (min != NULL) {
        CU_ASSERT(json_object_is_type(min, json_type_int));
        CU_ASSERT_EQUAL(json_object_get_int64(min), INT64_MIN);
        json_object_put(min);
    }
}

static void
test_parse_integer_past_int64_kept_as_text(void)
{
    struct json_object *v = parse_ok("[9223372036854775808,"
        "-9223372036854775809]", 42, __LINE__);

    if (v == NULL)
        return;
    CU_ASSERT(json_object_is_type(json_object_array_get_idx(v, 0),
        json_type_double));
    CU_ASSERT(json_object_is_type(json_object_array_get_idx(v, 1),
        json_type_double));
    CU_ASSERT_DOUBLE_EQUAL(json_object_get_double(
        json_object_array_get_idx(v, 0)), 9223372036854775808.0, 1.0);
    CU_ASSERT_STRING_EQUAL(serialised(v),
        "[9223372036854775808,-9223372036854775809]");
    json_object_put(v);
}

static void
test_parse_minus_zero_is_integer_zero(void)
{
    struct json_object *v = parse_ok("-0", 2, __LINE__);

    if (v == NULL)
        return;
    CU_ASSERT(json_object_is_type(v, json_type_int));
    CU_ASSERT_EQUAL(json_object_get_int64(v), 0);
    json_object_put(v);
}

static void
test_parse_double_keeps_original_text(void)
{
    check_round_trip("[1.50,1e2,1E+02,-0.0,0.1,2.5e-3,1e-60]",
        "[1.50,1e2,1E+02,-0.0,0.1,2.5e-3,1e-60]", __LINE__);
}

static void
test_parse_double_value(void)
{
    struct json_object *v = parse_ok("-2.5e3", 6, __LINE__);

    if (v == NULL)
        return;
    CU_ASSERT(json_object_is_type(v, json_type_double));
    CU_ASSERT_DOUBLE_EQUAL(json_object_get_double(v), -2500.0, 0.0);
    json_object_put(v);
}

static void
test_parse_decodes_simple_escapes(void)
{
    CHECK_STRING("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"",
        "\" \\ / \b \f \n \r \t");
}

static void
test_parse_decodes_unicode_escapes(void)
{
    CHECK_STRING("\"\\u0041\\u00e9\\u00E9\\u20ac\\uffff\"",
        "A\xc3\xa9\xc3\xa9\xe2\x82\xac\xef\xbf\xbf");
    CHECK_STRING("\"\\u0001\\u001f\"", "\x01\x1f");
}

static void
test_parse_decodes_surrogate_pairs(void)
{
    CHECK_STRING("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80");     /* U+1F600 */
    CHECK_STRING("\"\\uD83D\\uDE00\"", "\xf0\x9f\x98\x80");
    CHECK_STRING("\"\\ud800\\udc00\"", "\xf0\x90\x80\x80");     /* U+10000 */
    CHECK_STRING("\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf");     /* U+10FFFF */
    CHECK_STRING("\"a\\ud83d\\ude00b\"", "a\xf0\x9f\x98\x80" "b");
}

static void
test_parse_accepts_valid_utf8(void)
{
    CHECK_STRING("\"\xc3\xa9\"", "\xc3\xa9");                   /* U+00E9 */
    CHECK_STRING("\"\xc2\x80\"", "\xc2\x80");                   /* U+0080 */
    CHECK_STRING("\"\xdf\xbf\"", "\xdf\xbf");                   /* U+07FF */
    CHECK_STRING("\"\xe0\xa0\x80\"", "\xe0\xa0\x80");           /* U+0800 */
    CHECK_STRING("\"\xed\x9f\xbf\"", "\xed\x9f\xbf");           /* U+D7FF */
    CHECK_STRING("\"\xee\x80\x80\"", "\xee\x80\x80");           /* U+E000 */
    CHECK_STRING("\"\xef\xbf\xbf\"", "\xef\xbf\xbf");           /* U+FFFF */
    CHECK_STRING("\"\xf0\x90\x80\x80\"", "\xf0\x90\x80\x80");   /* U+10000 */
    CHECK_STRING("\"\xf4\x8f\xbf\xbf\"", "\xf4\x8f\xbf\xbf");   /* U+10FFFF */
    CHECK_STRING("\"\x7f\"", "\x7f");                           /* DEL */
}

static void
test_parse_depth_32_accepted(void)
{
    struct buf b = BUF_INIT;
    struct json_object *v;

    nested_arrays(&b, JSON_MAX_DEPTH);
    v = parse_ok(b.data, b.len, __LINE__);
    json_object_put(v);

    buf_reset(&b);
    nested_objects(&b, JSON_MAX_DEPTH);
    v = parse_ok(b.data, b.len, __LINE__);
    json_object_put(v);

    /* Scalars inside the deepest container add no depth. */
    buf_reset(&b);
    for (int i = 0; i < JSON_MAX_DEPTH; i++)
        buf_puts(&b, "[1,");
    buf_puts(&b, "\"x\"");
    for (int i = 0; i < JSON_MAX_DEPTH; i++)
        buf_putc(&b, ']');
    v = parse_ok(b.data, b.len, __LINE__);
    json_object_put(v);
    buf_free(&b);
}

static void
test_parse_same_key_in_other_objects_accepted(void)
{
    check_round_trip("[{\"a\":1},{\"a\":2}]", "[{\"a\":1},{\"a\":2}]",
        __LINE__);
    check_round_trip("{\"a\":{\"a\":{\"a\":1}}}", "{\"a\":{\"a\":{\"a\":1}}}",
        __LINE__);
}

/* Keys wait on the scratch while long values are decoded above them. */
static void
test_parse_keys_survive_long_nested_values(void)
{
    struct buf in = BUF_INIT;
    struct json_object *v;

    buf_puts(&in, "{\"outer\":{\"inner\":\"");
    for (int i = 0; i < 5000; i++)
        buf_putc(&in, 'x');
    buf_puts(&in, "\",\"k2\":[\"y\"]},\"next\":\"z\"}");

    v = parse_ok(in.data, in.len, __LINE__);
    if (v != NULL) {
        struct json_object *outer, *inner;

        CU_ASSERT(json_object_object_get_ex(v, "outer", &outer));
        CU_ASSERT(json_object_object_get_ex(v, "next", NULL));
        CU_ASSERT(json_object_object_get_ex(outer, "inner", &inner));
        CU_ASSERT(json_object_object_get_ex(outer, "k2", NULL));
        CU_ASSERT_EQUAL(json_object_get_string_len(inner), 5000);
        CU_ASSERT_STRING_EQUAL(serialised(v), in.data);
        json_object_put(v);
    }
    buf_free(&in);
}

static void
test_parse_empty_strings_and_keys(void)
{
    check_round_trip("{\"\":\"\"}", "{\"\":\"\"}", __LINE__);
    check_round_trip("[\"\",\"\"]", "[\"\",\"\"]", __LINE__);
}

/* ---------------------------------------------------------------------
 * Rejections
 * ------------------------------------------------------------------- */

static void
test_parse_rejects_empty_body(void)
{
    static const struct reject cases[] = {
        REJECT("", 0, "empty body"),
        REJECT(" \t\r\n", 4, "empty body"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_trailing_data(void)
{
    static const struct reject cases[] = {
        REJECT("1 2", 2, "trailing data"),
        REJECT("{} x", 3, "trailing data"),
        REJECT("[]]", 2, "trailing data"),
        REJECT("null null", 5, "trailing data"),
        REJECT("\"a\"\"b\"", 3, "trailing data"),
        REJECT("0x10", 1, "trailing data"),
        REJECT("1_000", 1, "trailing data"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_trailing_commas(void)
{
    static const struct reject cases[] = {
        REJECT("[1,]", 3, "trailing comma"),
        REJECT("[1, ]", 4, "trailing comma"),
        REJECT("{\"a\":1,}", 7, "trailing comma"),
        REJECT("[,1]", 1, "unexpected character"),
        REJECT("[1,,2]", 3, "unexpected character"),
        REJECT("{,}", 1, "expected string key"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_comments(void)
{
    static const struct reject cases[] = {
        REJECT("// c\n1", 0, "unexpected character"),
        REJECT("/* c */ 1", 0, "unexpected character"),
        REJECT("[1 /* c */]", 3, "expected ',' or ']'"),
        REJECT("1 # c", 2, "trailing data"),
        REJECT("{\"a\":1 // c\n}", 7, "expected ',' or '}'"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_single_quotes(void)
{
    static const struct reject cases[] = {
        REJECT("'a'", 0, "unexpected character"),
        REJECT("{'a':1}", 1, "expected string key"),
        REJECT("[\"a\",'b']", 5, "unexpected character"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_nan_and_infinity(void)
{
    static const struct reject cases[] = {
        REJECT("NaN", 0, "unexpected character"),
        REJECT("Infinity", 0, "unexpected character"),
        REJECT("-Infinity", 1, "invalid number"),
        REJECT("[nan]", 1, "invalid literal"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_leading_zeros(void)
{
    static const struct reject cases[] = {
        REJECT("01", 0, "leading zero in number"),
        REJECT("-01", 0, "leading zero in number"),
        REJECT("00", 0, "leading zero in number"),
        REJECT("[007]", 1, "leading zero in number"),
        REJECT("00.5", 0, "leading zero in number"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_malformed_numbers(void)
{
    static const struct reject cases[] = {
        REJECT("+1", 0, "unexpected character"),
        REJECT(".5", 0, "unexpected character"),
        REJECT("1.", 2, "unexpected end of input"),
        REJECT("[1.]", 3, "invalid number"),
        REJECT("1.e3", 2, "invalid number"),
        REJECT("1e", 2, "unexpected end of input"),
        REJECT("[1e+]", 4, "invalid number"),
        REJECT("[1E-x]", 4, "invalid number"),
        REJECT("-", 1, "unexpected end of input"),
        REJECT("[-]", 2, "invalid number"),
        REJECT("- 1", 1, "invalid number"),
        REJECT("--1", 1, "invalid number"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_non_finite_numbers(void)
{
    static const struct reject cases[] = {
        REJECT("1e400", 0, "number out of range"),
        REJECT("-1e400", 0, "number out of range"),
        REJECT("[1.5E999]", 1, "number out of range"),
        REJECT("{\"a\":1e309}", 5, "number out of range"),
    };
    struct buf big = BUF_INIT;
    struct reject huge;

    CHECK_REJECTS(cases);

    /* An integer literal too long even for a finite double. */
    buf_putc(&big, '1');
    for (int i = 0; i < 400; i++)
        buf_putc(&big, '0');
    huge.text = big.data;
    huge.len = big.len;
    huge.at = 0;
    huge.reason = "number out of range";
    check_rejects(&huge, 1, __LINE__);
    buf_free(&big);
}

/*
 * PostgreSQL prints jsonb numbers in full, so a short exponent can ask for
 * a huge answer: the written-out length is capped at 64 digits.
 */
static void
test_parse_rejects_numbers_too_long_written_out(void)
{
    static const struct reject cases[] = {
        REJECT("1e-16383", 0, "number out of range"),
        REJECT("1e-400", 0, "number out of range"),
        REJECT("[0.5e-64]", 1, "number out of range"),
        REJECT("1e64", 0, "number out of range"),
        REJECT("1e99999999999999999999", 0, "number out of range"),
        REJECT("12345678901234567890123456789012345678901234567890"
            "123456789012345", 0, "number out of range"),
    };

    CHECK_REJECTS(cases);
    check_round_trip("[1e63,1e-62,"
        "1234567890123456789012345678901234567890123456789012345678901234]",
        "[1e63,1e-62,"
        "1234567890123456789012345678901234567890123456789012345678901234]",
        __LINE__);
}

static void
test_parse_rejects_bad_literals(void)
{
    static const struct reject cases[] = {
        REJECT("tru", 0, "invalid literal"),
        REJECT("True", 0, "unexpected character"),
        REJECT("nul", 0, "invalid literal"),
        REJECT("nulll", 0, "invalid literal"),
        REJECT("truex", 0, "invalid literal"),
        REJECT("falsy", 0, "invalid literal"),
        REJECT("[true1]", 1, "invalid literal"),
        REJECT("fALSE", 0, "invalid literal"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_raw_control_characters(void)
{
    static const struct reject cases[] = {
        REJECT("\"a\tb\"", 2, "control character in string"),
        REJECT("\"\n\"", 1, "control character in string"),
        REJECT("\"\r\"", 1, "control character in string"),
        REJECT("\"\x01\"", 1, "control character in string"),
        REJECT("\"\x1f\"", 1, "control character in string"),
        REJECT("{\"a\x1b\":1}", 3, "control character in string"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_raw_nul_bytes(void)
{
    static const struct reject cases[] = {
        REJECT("\"a\0b\"", 2, "control character in string"),
        REJECT("\0", 0, "unexpected character"),
        REJECT("\0 1", 0, "unexpected character"),
        REJECT("1\0", 1, "trailing data"),
        REJECT("[1,\0]", 3, "unexpected character"),
        REJECT("{\"a\":1}\0", 7, "trailing data"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_other_whitespace(void)
{
    static const struct reject cases[] = {
        REJECT("\v1", 0, "unexpected character"),
        REJECT("\f1", 0, "unexpected character"),
        REJECT("\xc2\xa0" "1", 0, "unexpected character"),    /* NBSP */
        REJECT("[1,\f2]", 3, "unexpected character"),
        REJECT("\xef\xbb\xbf{}", 0, "unexpected character"),   /* BOM */
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_invalid_escapes(void)
{
    static const struct reject cases[] = {
        REJECT("\"\\x41\"", 1, "invalid escape"),
        REJECT("\"\\U0041\"", 1, "invalid escape"),
        REJECT("\"\\'\"", 1, "invalid escape"),
        REJECT("\"\\a\"", 1, "invalid escape"),
        REJECT("\"ab\\0\"", 3, "invalid escape"),
        REJECT("\"\\u12\"", 1, "invalid \\u escape"),
        REJECT("\"\\u12g4\"", 1, "invalid \\u escape"),
        REJECT("\"\\u 123\"", 1, "invalid \\u escape"),
        REJECT("\"\\", 0, "unterminated string"),
        REJECT("\"\\\"", 0, "unterminated string"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_escaped_nul(void)
{
    static const struct reject cases[] = {
        REJECT("\"\\u0000\"", 1, "\\u0000 not allowed"),
        REJECT("\"ab\\u0000cd\"", 3, "\\u0000 not allowed"),
        REJECT("{\"\\u0000\":1}", 2, "\\u0000 not allowed"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_lone_surrogates(void)
{
    static const struct reject cases[] = {
        REJECT("\"\\ud800\"", 1, "lone surrogate"),
        REJECT("\"\\udbff\"", 1, "lone surrogate"),
        REJECT("\"\\udc00\"", 1, "lone surrogate"),
        REJECT("\"\\udfff\"", 1, "lone surrogate"),
        REJECT("\"\\ud800\\u0041\"", 1, "lone surrogate"),
        REJECT("\"\\ud800x\"", 1, "lone surrogate"),
        REJECT("\"\\ud800\\ud800\"", 1, "lone surrogate"),
        REJECT("\"\\ude00\\ud83d\"", 1, "lone surrogate"),
        REJECT("\"a\\ud83d\"", 2, "lone surrogate"),
        REJECT("\"\\ud83d\\n\"", 1, "lone surrogate"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_overlong_utf8(void)
{
    static const struct reject cases[] = {
        REJECT("\"\xc0\x80\"", 1, "invalid UTF-8"),
        REJECT("\"\xc0\xaf\"", 1, "invalid UTF-8"),
        REJECT("\"\xc1\xbf\"", 1, "invalid UTF-8"),
        REJECT("\"\xe0\x80\x80\"", 1, "invalid UTF-8"),
        REJECT("\"\xe0\x9f\xbf\"", 1, "invalid UTF-8"),
        REJECT("\"\xf0\x80\x80\x80\"", 1, "invalid UTF-8"),
        REJECT("\"\xf0\x8f\xbf\xbf\"", 1, "invalid UTF-8"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_utf8_surrogates(void)
{
    static const struct reject cases[] = {
        REJECT("\"\xed\xa0\x80\"", 1, "invalid UTF-8"),     /* U+D800 */
        REJECT("\"\xed\xaf\xbf\"", 1, "invalid UTF-8"),     /* U+DBFF */
        REJECT("\"\xed\xb0\x80\"", 1, "invalid UTF-8"),     /* U+DC00 */
        REJECT("\"\xed\xbf\xbf\"", 1, "invalid UTF-8"),     /* U+DFFF */
        REJECT("\"\xed\xa0\xbd\xed\xb8\x80\"", 1, "invalid UTF-8"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_utf8_past_u10ffff(void)
{
    static const struct reject cases[] = {
        REJECT("\"\xf4\x90\x80\x80\"", 1, "invalid UTF-8"),
        REJECT("\"\xf5\x80\x80\x80\"", 1, "invalid UTF-8"),
        REJECT("\"\xf7\xbf\xbf\xbf\"", 1, "invalid UTF-8"),
        REJECT("\"\xf8\x88\x80\x80\x80\"", 1, "invalid UTF-8"),
        REJECT("\"a\xfe\"", 2, "invalid UTF-8"),
        REJECT("\"a\xff\"", 2, "invalid UTF-8"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_truncated_utf8(void)
{
    static const struct reject cases[] = {
        REJECT("\"\xc3\"", 1, "invalid UTF-8"),
        REJECT("\"\xe2\x82\"", 1, "invalid UTF-8"),
        REJECT("\"\xf0\x9f\x98\"", 1, "invalid UTF-8"),
        REJECT("\"\xe2\x82x\"", 1, "invalid UTF-8"),
        REJECT("\"\xc3", 1, "invalid UTF-8"),
        REJECT("\"\x80\"", 1, "invalid UTF-8"),
        REJECT("\"\xc3\xa9\xa9\"", 3, "invalid UTF-8"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_utf8_outside_strings(void)
{
    static const struct reject cases[] = {
        REJECT("\xc3\xa9", 0, "unexpected character"),
        REJECT("[\xe2\x82\xac]", 1, "unexpected character"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_unterminated_input(void)
{
    static const struct reject cases[] = {
        REJECT("\"abc", 0, "unterminated string"),
        REJECT("[\"a", 1, "unterminated string"),
        REJECT("{\"a", 1, "unterminated string"),
        REJECT("[", 1, "unexpected end of input"),
        REJECT("[1", 2, "unexpected end of input"),
        REJECT("[1,", 3, "unexpected end of input"),
        REJECT("{", 1, "unexpected end of input"),
        REJECT("{\"a\"", 4, "unexpected end of input"),
        REJECT("{\"a\":", 5, "unexpected end of input"),
        REJECT("{\"a\":1", 6, "unexpected end of input"),
        REJECT("tr", 0, "invalid literal"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_structural_errors(void)
{
    static const struct reject cases[] = {
        REJECT("{1:2}", 1, "expected string key"),
        REJECT("{\"a\" 1}", 5, "expected ':'"),
        REJECT("{\"a\"=1}", 4, "expected ':'"),
        REJECT("{\"a\":1 \"b\":2}", 7, "expected ',' or '}'"),
        REJECT("{\"a\":1]", 6, "expected ',' or '}'"),
        REJECT("[1 2]", 3, "expected ',' or ']'"),
        REJECT("[1}", 2, "expected ',' or ']'"),
        REJECT("]", 0, "unexpected character"),
        REJECT("}", 0, "unexpected character"),
        REJECT(":", 0, "unexpected character"),
        REJECT("{\"a\":}", 5, "unexpected character"),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_depth_33_rejected(void)
{
    struct buf b = BUF_INIT;
    struct reject c = { NULL, 0, 0, "nesting deeper than 32" };

    nested_arrays(&b, JSON_MAX_DEPTH + 1);
    c.text = b.data;
    c.len = b.len;
    c.at = JSON_MAX_DEPTH;     /* the 33rd '[' */
    check_rejects(&c, 1, __LINE__);

    /* Each level before the 33rd '{' is 5 bytes: {"a": */
    buf_reset(&b);
    nested_objects(&b, JSON_MAX_DEPTH + 1);
    c.text = b.data;
    c.len = b.len;
    c.at = 5 * JSON_MAX_DEPTH;
    check_rejects(&c, 1, __LINE__);

    /* Mixed: 32 arrays then an object. */
    buf_reset(&b);
    for (int i = 0; i < JSON_MAX_DEPTH; i++)
        buf_putc(&b, '[');
    buf_puts(&b, "{}");
    for (int i = 0; i < JSON_MAX_DEPTH; i++)
        buf_putc(&b, ']');
    c.text = b.data;
    c.len = b.len;
    c.at = JSON_MAX_DEPTH;
    check_rejects(&c, 1, __LINE__);
    buf_free(&b);
}

/* A million brackets fail at the 33rd without touching the rest. */
static void
test_parse_deep_input_stops_at_limit(void)
{
    size_t n = 1000000;
    char *text = malloc(n);
    struct reject c = { NULL, 0, JSON_MAX_DEPTH, "nesting deeper than 32" };

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    memset(text, '[', n);
    c.text = text;
    c.len = n;
    check_rejects(&c, 1, __LINE__);
    free(text);
}

static void
test_parse_rejects_duplicate_keys(void)
{
    static const struct reject cases[] = {
        REJECT("{\"a\":1,\"a\":2}", 7, "duplicate key \"a\""),
        REJECT("{\"a\":1,\"b\":2,\"a\":1}", 13, "duplicate key \"a\""),
        REJECT("{\"a\":null,\"a\":null}", 10, "duplicate key \"a\""),
        REJECT("{\"\":1,\"\":2}", 6, "duplicate key \"\""),
        REJECT("[{\"o\":{\"x\":1,\"x\":1}}]", 13, "duplicate key \"x\""),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_rejects_escaped_duplicate_keys(void)
{
    static const struct reject cases[] = {
        REJECT("{\"a\":1,\"\\u0061\":2}", 7, "duplicate key \"a\""),
        REJECT("{\"\\u0061\":1,\"a\":2}", 12, "duplicate key \"a\""),
        REJECT("{\"\\u00e9\":1,\"\xc3\xa9\":2}", 12,
            "duplicate key \"\xc3\xa9\""),
        REJECT("{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}", 18,
            "duplicate key \"\xf0\x9f\x98\x80\""),
        REJECT("{\"a/b\":1,\"a\\/b\":2}", 9, "duplicate key \"a/b\""),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_duplicate_key_message_escapes_key(void)
{
    static const struct reject cases[] = {
        REJECT("{\"a\\\"b\\\\c\\n\\u007f\":1,\"a\\\"b\\\\c\\n\\u007f\":2}", 21,
            "duplicate key \"a\\\"b\\\\c\\u000a\\u007f\""),
    };

    CHECK_REJECTS(cases);
}

static void
test_parse_duplicate_key_message_truncates_key(void)
{
    struct buf in = BUF_INIT, key = BUF_INIT, want = BUF_INIT;
    struct reject c;

    /* 39 ASCII bytes fit; the 3-byte euro sign after them does not. */
    for (int i = 0; i < 39; i++)
        buf_putc(&key, 'k');
    buf_puts(&key, "\xe2\x82\xac and more");
    buf_printf(&in, "{\"%s\":1,\"%s\":2}", key.data, key.data);
    buf_printf(&want, "duplicate key \"%.39s...\"", key.data);

    c.text = in.data;
    c.len = in.len;
    c.at = key.len + 6;        /* {"key":1, */
    c.reason = want.data;
    check_rejects(&c, 1, __LINE__);

    buf_free(&in);
    buf_free(&key);
    buf_free(&want);
}

static void
test_parse_error_has_status_400_and_exact_detail(void)
{
    static const char text[] = "{\"name\":\"a\",\"name\":\"b\"}";
    struct crewd_error err;
    struct json_object *out = NULL;

    error_clear(&err);
    CU_ASSERT_EQUAL(json_parse(text, sizeof(text) - 1, &out, &err), -1);
    CU_ASSERT_PTR_NULL(out);
    CU_ASSERT_EQUAL(err.status, 400);
    CU_ASSERT_STRING_EQUAL(err.detail,
        "invalid JSON at byte 12: duplicate key \"name\"");

    error_clear(&err);
    CU_ASSERT_EQUAL(json_parse("[1,2,]", 6, &out, &err), -1);
    CU_ASSERT_EQUAL(err.status, 400);
    CU_ASSERT_STRING_EQUAL(err.detail,
        "invalid JSON at byte 5: trailing comma");
}

/* The failure deep inside releases what was built (valgrind checks). */
static void
test_parse_error_releases_partial_value(void)
{
    static const struct reject cases[] = {
        REJECT("[1,[2,{\"a\":\"bbbb\",\"c\":[true,{}]}],\"s\",x]", 38,
            "unexpected character"),
        REJECT("{\"a\":[1,2],\"b\":{\"c\":\"d\",\"c\":1}}", 24,
            "duplicate key \"c\""),
        REJECT("[\"x\",1.5,9223372036854775808,1e999]", 29,
            "number out of range"),
    };

    CHECK_REJECTS(cases);
}

/* ---------------------------------------------------------------------
 * UTF-8 helpers
 * ------------------------------------------------------------------- */

static void
test_utf8_valid_accepts_well_formed(void)
{
    CU_ASSERT(json_utf8_valid("", 0));
    CU_ASSERT(json_utf8_valid("abc", 3));
    CU_ASSERT(json_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
    CU_ASSERT(json_utf8_valid("\xf4\x8f\xbf\xbf", 4));
    CU_ASSERT(json_utf8_valid("\xed\x9f\xbf\xee\x80\x80", 6));
}

static void
test_utf8_valid_rejects_ill_formed(void)
{
    CU_ASSERT_FALSE(json_utf8_valid("\xc0\x80", 2));          /* overlong */
    CU_ASSERT_FALSE(json_utf8_valid("\xe0\x9f\xbf", 3));      /* overlong */
    CU_ASSERT_FALSE(json_utf8_valid("\xf0\x8f\xbf\xbf", 4));  /* overlong */
    CU_ASSERT_FALSE(json_utf8_valid("\xed\xa0\x80", 3));      /* surrogate */
    CU_ASSERT_FALSE(json_utf8_valid("\xf4\x90\x80\x80", 4));  /* > max */
    CU_ASSERT_FALSE(json_utf8_valid("\xf5\x80\x80\x80", 4));
    CU_ASSERT_FALSE(json_utf8_valid("\xff", 1));
    CU_ASSERT_FALSE(json_utf8_valid("a\xc3", 2));             /* truncated */
    CU_ASSERT_FALSE(json_utf8_valid("\xe2\x82", 2));
    CU_ASSERT_FALSE(json_utf8_valid("\x80", 1));              /* stray */
}

static void
test_utf8_valid_rejects_nul(void)
{
    CU_ASSERT_FALSE(json_utf8_valid("a\0b", 3));
}

static void
test_utf8_valid_respects_length(void)
{
    /* Only the first two bytes are looked at. */
    CU_ASSERT(json_utf8_valid("ab\xff", 2));
    CU_ASSERT_FALSE(json_utf8_valid("\xc3\xa9", 1));
}

static void
test_utf8_length_counts_code_points(void)
{
    CU_ASSERT_EQUAL(json_utf8_length("", 0), 0);
    CU_ASSERT_EQUAL(json_utf8_length("abc", 3), 3);
    CU_ASSERT_EQUAL(json_utf8_length("\xc3\xa9", 2), 1);
    CU_ASSERT_EQUAL(json_utf8_length("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
        10), 4);
}

/* ---------------------------------------------------------------------
 * Writer
 * ------------------------------------------------------------------- */

static void
test_writer_commas_in_nested_containers(void)
{
    struct buf b = BUF_INIT;
    struct json_writer w;

    jw_init(&w, &b);
    jw_object_open(&w);
    jw_key(&w, "a");
    jw_array_open(&w);
    jw_int(&w, 1);
    jw_array_open(&w);
    jw_int(&w, 2);
    jw_int(&w, 3);
    jw_array_close(&w);
    jw_object_open(&w);
    jw_kv_bool(&w, "b", true);
    jw_key(&w, "c");
    jw_null(&w);
    jw_object_close(&w);
    jw_array_open(&w);
    jw_array_close(&w);
    jw_array_close(&w);
    jw_key(&w, "d");
    jw_object_open(&w);
    jw_object_close(&w);
    jw_kv_string(&w, "e", "x");
    jw_object_close(&w);

    CU_ASSERT_STRING_EQUAL(buf_cstr(&b),
        "{\"a\":[1,[2,3],{\"b\":true,\"c\":null},[]],\"d\":{},\"e\":\"x\"}");
    CU_ASSERT_EQUAL(w.depth, 0);
    buf_free(&b);
}

static void
test_writer_commas_in_array_of_objects(void)
{
    struct buf b = BUF_INIT;
    struct json_writer w;

    jw_init(&w, &b);
    jw_array_open(&w);
    for (int i = 1; i <= 3; i++) {
        jw_object_open(&w);
        jw_kv_int(&w, "i", i);
        jw_kv_raw(&w, "r", "[]");
        jw_object_close(&w);
    }
    jw_array_close(&w);

    CU_ASSERT_STRING_EQUAL(buf_cstr(&b),
        "[{\"i\":1,\"r\":[]},{\"i\":2,\"r\":[]},{\"i\":3,\"r\":[]}]");
    buf_free(&b);
}

static void
test_writer_empty_containers(void)
{
    struct buf b = BUF_INIT;
    struct json_writer w;

    jw_init(&w, &b);
    jw_array_open(&w);
    jw_object_open(&w);
    jw_object_close(&w);
    jw_array_open(&w);
    jw_array_close(&w);
    jw_array_close(&w);
    CU_ASSERT_STRING_EQUAL(buf_cstr(&b), "[{},[]]");
    buf_free(&b);
}

static void
test_writer_scalars(void)
{
    struct buf b = BUF_INIT;
    struct json_writer w;

    jw_init(&w, &b);
    jw_array_open(&w);
    jw_int(&w, INT64_MIN);
    jw_int(&w, INT64_MAX);
    jw_int(&w, 0);
    jw_bool(&w, true);
    jw_bool(&w, false);
    jw_null(&w);
    jw_string(&w, "s");
    jw_array_close(&w);
    CU_ASSERT_STRING_EQUAL(buf_cstr(&b),
        "[-9223372036854775808,9223372036854775807,0,true,false,null,"
        "\"s\"]");
    buf_free(&b);
}

static void
test_writer_null_string_writes_null(void)
{
    struct buf b = BUF_INIT;
    struct json_writer w;

    jw_init(&w, &b);
    jw_object_open(&w);
    jw_kv_string(&w, "a", NULL);
    jw_key(&w, "b");
    jw_string(&w, NULL);
    jw_key(&w, "c");
    jw_string_len(&w, NULL, 5);
    jw_object_close(&w);
    CU_ASSERT_STRING_EQUAL(buf_cstr(&b),
        "{\"a\":null,\"b\":null,\"c\":null}");
    buf_free(&b);
}

static void
test_writer_escapes_quote_and_backslash(void)
{
    struct buf b = BUF_INIT;
    struct json_writer w;

    jw_init(&w, &b);
    jw_string(&w, "say \"hi\" \\ bye");
    CU_ASSERT_STRING_EQUAL(buf_cstr(&b), "\"say \\\"hi\\\" \\\\ bye\"");
    buf_free(&b);
}

static void
test_writer_escapes_control_characters(void)
{
    struct buf b = BUF_INIT;
    struct json_writer w;

    jw_init(&w, &b);
    jw_string(&w, "\b\f\n\r\t\x01\x1f\x7f");
    CU_ASSERT_STRING_EQUAL(buf_cstr(&b),
        "\"\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\"");
    buf_free(&b);
}

static void
test_writer_escapes_nul_byte(void)
{
    struct buf b = BUF_INIT;
    struct json_writer w;

    jw_init(&w, &b);
    jw_string_len(&w, "a\0b", 3);
    CU_ASSERT_STRING_EQUAL(buf_cstr(&b), "\"a\\u0000b\"");
    buf_free(&b);
}

static void
test_writer_escapes_line_separators(void)
{
    struct buf b = BUF_INIT;
    struct json_writer w;

    jw_init(&w, &b);
    /* U+2028, U+2029 escaped; their neighbour U+2027 is not. */
    jw_string(&w, "a\xe2\x80\xa8" "b\xe2\x80\xa9" "c\xe2\x80\xa7");
    CU_ASSERT_STRING_EQUAL(buf_cstr(&b),
        "\"a\\u2028b\\u2029c\xe2\x80\xa7\"");
    buf_free(&b);
}

static void
test_writer_leaves_other_characters(void)
{
    struct buf b = BUF_INIT;
    struct json_writer w;

    jw_init(&w, &b);
    jw_string(&w, "</a> & \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    CU_ASSERT_STRING_EQUAL(buf_cstr(&b),
        "\"</a> & \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    buf_free(&b);
}

static void
test_writer_replaces_invalid_utf8(void)
{
    struct buf b = BUF_INIT;
    struct json_writer w;

    jw_init(&w, &b);
    jw_array_open(&w);
    jw_string(&w, "a\xff" "b");
    jw_string(&w, "\xc3");
    jw_string(&w, "\xed\xa0\x80");
    jw_array_close(&w);
    CU_ASSERT_STRING_EQUAL(buf_cstr(&b),
        "[\"a\\ufffdb\",\"\\ufffd\",\"\\ufffd\\ufffd\\ufffd\"]");
    buf_free(&b);
}

static void
test_writer_escapes_keys(void)
{
    struct buf b = BUF_INIT;
    struct json_writer w;

    jw_init(&w, &b);
    jw_object_open(&w);
    jw_kv_int(&w, "a\"b\n", 1);
    jw_object_close(&w);
    CU_ASSERT_STRING_EQUAL(buf_cstr(&b), "{\"a\\\"b\\n\":1}");
    buf_free(&b);
}

static void
test_writer_raw(void)
{
    struct buf b = BUF_INIT;
    struct json_writer w;

    jw_init(&w, &b);
    jw_array_open(&w);
    jw_raw(&w, "{\"x\": [1, 2]}");
    jw_raw(&w, NULL);
    jw_raw(&w, "\"a\\/b\"");
    jw_array_close(&w);
    CU_ASSERT_STRING_EQUAL(buf_cstr(&b),
        "[{\"x\": [1, 2]},null,\"a\\/b\"]");
    buf_free(&b);
}

static void
test_writer_object(void)
{
    static const char text[] =
        "{ \"url\" : \"a/b\", \"n\" : [ 1.50, 2, true ] }";
    struct buf b = BUF_INIT;
    struct json_writer w;
    struct json_object *v = parse_ok(text, strlen(text), __LINE__);

    jw_init(&w, &b);
    jw_array_open(&w);
    jw_object(&w, v);
    jw_object(&w, NULL);
    jw_array_close(&w);
    CU_ASSERT_STRING_EQUAL(buf_cstr(&b),
        "[{\"url\":\"a/b\",\"n\":[1.50,2,true]},null]");
    json_object_put(v);
    buf_free(&b);
}

static void
test_writer_kv_shorthands(void)
{
    struct buf b = BUF_INIT;
    struct json_writer w;

    jw_init(&w, &b);
    jw_object_open(&w);
    jw_kv_string(&w, "s", "v");
    jw_kv_int(&w, "i", -1);
    jw_kv_bool(&w, "b", false);
    jw_kv_raw(&w, "r", "[1]");
    jw_kv_raw(&w, "z", NULL);
    jw_object_close(&w);
    CU_ASSERT_STRING_EQUAL(buf_cstr(&b),
        "{\"s\":\"v\",\"i\":-1,\"b\":false,\"r\":[1],\"z\":null}");
    buf_free(&b);
}

static void
test_json_escape_appends_quoted(void)
{
    struct buf b = BUF_INIT;

    buf_puts(&b, "x=");
    json_escape(&b, "a\"b\tc", 5);
    json_escape(&b, "", 0);
    CU_ASSERT_STRING_EQUAL(buf_cstr(&b), "x=\"a\\\"b\\tc\"\"\"");
    buf_free(&b);
}

static void
test_writer_output_parses_back(void)
{
    static const char tricky[] =
        "\"\\/\b\f\n\r\t\x01\x1f \xe2\x80\xa8\xe2\x80\xa9 \xf0\x9f\x98\x80";
    struct buf b = BUF_INIT;
    struct json_writer w;
    struct json_object *v, *s;

    jw_init(&w, &b);
    jw_object_open(&w);
    jw_kv_string(&w, tricky, tricky);
    jw_object_close(&w);

    v = parse_ok(b.data, b.len, __LINE__);
    if (v != NULL) {
        CU_ASSERT(json_object_object_get_ex(v, tricky, &s));
        CU_ASSERT_STRING_EQUAL(json_object_get_string(s), tricky);
        json_object_put(v);
    }
    buf_free(&b);
}

static void
test_writer_depth_63_allowed(void)
{
    struct buf b = BUF_INIT, want = BUF_INIT;
    struct json_writer w;

    jw_init(&w, &b);
    for (int i = 0; i < 63; i++)
        jw_array_open(&w);
    jw_int(&w, 1);
    jw_int(&w, 2);
    for (int i = 0; i < 63; i++)
        jw_array_close(&w);

    for (int i = 0; i < 63; i++)
        buf_putc(&want, '[');
    buf_puts(&want, "1,2");
    for (int i = 0; i < 63; i++)
        buf_putc(&want, ']');
    CU_ASSERT_STRING_EQUAL(buf_cstr(&b), buf_cstr(&want));
    buf_free(&b);
    buf_free(&want);
}

/* fatal() ends the process, so the 64th level is opened in a child. */
static void
test_writer_deeper_than_63_is_fatal(void)
{
    int status = 0;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        struct buf b = BUF_INIT;
        struct json_writer w;

        if (freopen("/dev/null", "w", stderr) == NULL)
            _exit(2);
        jw_init(&w, &b);
        for (int i = 0; i < 64; i++)
            jw_array_open(&w);
        _exit(0);
    }
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status));
    CU_ASSERT_NOT_EQUAL(WEXITSTATUS(status), 0);
}

/* The examples of RFC 7396, appendix A. */
static void
test_merge_patch_follows_rfc_7396(void)
{
    static const char *const cases[][3] = {
        { "{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
        { "{\"a\":\"b\"}", "{\"b\":\"c\"}",
          "{\"a\":\"b\",\"b\":\"c\"}" },
        { "{\"a\":\"b\"}", "{\"a\":null}", "{}" },
        { "{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}",
          "{\"b\":\"c\"}" },
        { "{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
        { "{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}" },
        { "{\"a\":{\"b\":\"c\"}}",
          "{\"a\":{\"b\":\"d\",\"c\":null}}",
          "{\"a\":{\"b\":\"d\"}}" },
        { "{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}",
          "{\"a\":[1]}" },
        { "[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]" },
        { "{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]" },
        { "{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}" },
        { "[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}" },
        { "{}", "{\"a\":{\"bb\":{\"ccc\":null}}}",
          "{\"a\":{\"bb\":{}}}" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct json_object *target = json_tokener_parse(cases[i][0]);
        struct json_object *patch = json_tokener_parse(cases[i][1]);
        struct json_object *want = json_tokener_parse(cases[i][2]);
        struct json_object *got = json_merge_patch(target, patch);

        CU_ASSERT_TRUE(json_object_equal(got, want));
        /* The target is left as it was. */
        CU_ASSERT_PTR_NOT_EQUAL(got, target);
        json_object_put(target);
        json_object_put(patch);
        json_object_put(want);
        json_object_put(got);
    }
}

void
register_json_tests(void)
{
    CU_pSuite s = unit_suite("json");

    unit_test(s, "parse_round_trips_every_type",
        test_parse_round_trips_every_type);
    unit_test(s, "parse_gives_json_c_types", test_parse_gives_json_c_types);
    unit_test(s, "parse_top_level_scalars", test_parse_top_level_scalars);
    unit_test(s, "parse_top_level_null_gives_null",
        test_parse_top_level_null_gives_null);
    unit_test(s, "parse_accepts_json_whitespace",
        test_parse_accepts_json_whitespace);
    unit_test(s, "parse_keeps_member_order", test_parse_keeps_member_order);
    unit_test(s, "parse_int64_limits", test_parse_int64_limits);
    unit_test(s, "parse_integer_past_int64_kept_as_text",
        test_parse_integer_past_int64_kept_as_text);
    unit_test(s, "parse_minus_zero_is_integer_zero",
        test_parse_minus_zero_is_integer_zero);
    unit_test(s, "parse_double_keeps_original_text",
        test_parse_double_keeps_original_text);
    unit_test(s, "parse_double_value", test_parse_double_value);
    unit_test(s, "merge_patch_follows_rfc_7396",
        test_merge_patch_follows_rfc_7396);
    unit_test(s, "parse_rejects_numbers_too_long_written_out",
        test_parse_rejects_numbers_too_long_written_out);
    unit_test(s, "parse_decodes_simple_escapes",
        test_parse_decodes_simple_escapes);
    unit_test(s, "parse_decodes_unicode_escapes",
        test_parse_decodes_unicode_escapes);
    unit_test(s, "parse_decodes_surrogate_pairs",
        test_parse_decodes_surrogate_pairs);
    unit_test(s, "parse_accepts_valid_utf8", test_parse_accepts_valid_utf8);
    unit_test(s, "parse_depth_32_accepted", test_parse_depth_32_accepted);
    unit_test(s, "parse_same_key_in_other_objects_accepted",
        test_parse_same_key_in_other_objects_accepted);
    unit_test(s, "parse_keys_survive_long_nested_values",
        test_parse_keys_survive_long_nested_values);
    unit_test(s, "parse_empty_strings_and_keys",
        test_parse_empty_strings_and_keys);

    unit_test(s, "parse_rejects_empty_body", test_parse_rejects_empty_body);
    unit_test(s, "parse_rejects_trailing_data",
        test_parse_rejects_trailing_data);
    unit_test(s, "parse_rejects_trailing_commas",
        test_parse_rejects_trailing_commas);
    unit_test(s, "parse_rejects_comments", test_parse_rejects_comments);
    unit_test(s, "parse_rejects_single_quotes",
        test_parse_rejects_single_quotes);
    unit_test(s, "parse_rejects_nan_and_infinity",
        test_parse_rejects_nan_and_infinity);
    unit_test(s, "parse_rejects_leading_zeros",
        test_parse_rejects_leading_zeros);
    unit_test(s, "parse_rejects_malformed_numbers",
        test_parse_rejects_malformed_numbers);
    unit_test(s, "parse_rejects_non_finite_numbers",
        test_parse_rejects_non_finite_numbers);
    unit_test(s, "parse_rejects_bad_literals",
        test_parse_rejects_bad_literals);
    unit_test(s, "parse_rejects_raw_control_characters",
        test_parse_rejects_raw_control_characters);
    unit_test(s, "parse_rejects_raw_nul_bytes",
        test_parse_rejects_raw_nul_bytes);
    unit_test(s, "parse_rejects_other_whitespace",
        test_parse_rejects_other_whitespace);
    unit_test(s, "parse_rejects_invalid_escapes",
        test_parse_rejects_invalid_escapes);
    unit_test(s, "parse_rejects_escaped_nul", test_parse_rejects_escaped_nul);
    unit_test(s, "parse_rejects_lone_surrogates",
        test_parse_rejects_lone_surrogates);
    unit_test(s, "parse_rejects_overlong_utf8",
        test_parse_rejects_overlong_utf8);
    unit_test(s, "parse_rejects_utf8_surrogates",
        test_parse_rejects_utf8_surrogates);
    unit_test(s, "parse_rejects_utf8_past_u10ffff",
        test_parse_rejects_utf8_past_u10ffff);
    unit_test(s, "parse_rejects_truncated_utf8",
        test_parse_rejects_truncated_utf8);
    unit_test(s, "parse_rejects_utf8_outside_strings",
        test_parse_rejects_utf8_outside_strings);
    unit_test(s, "parse_rejects_unterminated_input",
        test_parse_rejects_unterminated_input);
    unit_test(s, "parse_rejects_structural_errors",
        test_parse_rejects_structural_errors);
    unit_test(s, "parse_depth_33_rejected", test_parse_depth_33_rejected);
    unit_test(s, "parse_deep_input_stops_at_limit",
        test_parse_deep_input_stops_at_limit);
    unit_test(s, "parse_rejects_duplicate_keys",
        test_parse_rejects_duplicate_keys);
    unit_test(s, "parse_rejects_escaped_duplicate_keys",
        test_parse_rejects_escaped_duplicate_keys);
    unit_test(s, "parse_duplicate_key_message_escapes_key",
        test_parse_duplicate_key_message_escapes_key);
    unit_test(s, "parse_duplicate_key_message_truncates_key",
        test_parse_duplicate_key_message_truncates_key);
    unit_test(s, "parse_error_has_status_400_and_exact_detail",
        test_parse_error_has_status_400_and_exact_detail);
    unit_test(s, "parse_error_releases_partial_value",
        test_parse_error_releases_partial_value);

    unit_test(s, "utf8_valid_accepts_well_formed",
        test_utf8_valid_accepts_well_formed);
    unit_test(s, "utf8_valid_rejects_ill_formed",
        test_utf8_valid_rejects_ill_formed);
    unit_test(s, "utf8_valid_rejects_nul", test_utf8_valid_rejects_nul);
    unit_test(s, "utf8_valid_respects_length",
        test_utf8_valid_respects_length);
    unit_test(s, "utf8_length_counts_code_points",
        test_utf8_length_counts_code_points);

    unit_test(s, "writer_commas_in_nested_containers",
        test_writer_commas_in_nested_containers);
    unit_test(s, "writer_commas_in_array_of_objects",
        test_writer_commas_in_array_of_objects);
    unit_test(s, "writer_empty_containers", test_writer_empty_containers);
    unit_test(s, "writer_scalars", test_writer_scalars);
    unit_test(s, "writer_null_string_writes_null",
        test_writer_null_string_writes_null);
    unit_test(s, "writer_escapes_quote_and_backslash",
        test_writer_escapes_quote_and_backslash);
    unit_test(s, "writer_escapes_control_characters",
        test_writer_escapes_control_characters);
    unit_test(s, "writer_escapes_nul_byte", test_writer_escapes_nul_byte);
    unit_test(s, "writer_escapes_line_separators",
        test_writer_escapes_line_separators);
    unit_test(s, "writer_leaves_other_characters",
        test_writer_leaves_other_characters);
    unit_test(s, "writer_replaces_invalid_utf8",
        test_writer_replaces_invalid_utf8);
    unit_test(s, "writer_escapes_keys", test_writer_escapes_keys);
    unit_test(s, "writer_raw", test_writer_raw);
    unit_test(s, "writer_object", test_writer_object);
    unit_test(s, "writer_kv_shorthands", test_writer_kv_shorthands);
    unit_test(s, "json_escape_appends_quoted",
        test_json_escape_appends_quoted);
    unit_test(s, "writer_output_parses_back",
        test_writer_output_parses_back);
    unit_test(s, "writer_depth_63_allowed", test_writer_depth_63_allowed);
    unit_test(s, "writer_deeper_than_63_is_fatal",
        test_writer_deeper_than_63_is_fatal);
}
