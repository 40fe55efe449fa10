#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "common.h"
#include "log.h"

/* "2026-12-04T16:12:03.123456Z", with or without the fraction. */
static bool
timestamp_shaped(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    size_t i;

    for (i = 0; shape[i] != '\0'; i++) {
        if (shape[i] == 'd' ? !isdigit((unsigned char)s[i])
                            : s[i] != shape[i])
            return false;
    }
    if (s[i] == '.') {
        size_t digits = 0;

        for (i++; isdigit((unsigned char)s[i]); i++)
            digits++;
        if (digits == 0 || digits > 6)
            return false;
    }
    return s[i] == 'Z' && s[i + 1] == '\0';
}

/* A bad query parameter: a 400 that names it. */
static int
bad_parameter(struct request *req, const char *name)
{
    request_fail(req, 400, "query parameter %s is not valid", name);
    if (strcmp(name, "limit") == 0)
        error_field(&req->err, name, "must be from 1 to %d",
            PAGE_LIMIT_MAX);
    else
        error_field(&req->err, name, "is not a cursor this server made");
    return -1;
}

/*
 * A cursor is "<created_at>,<id>" and a tag: the first CURSOR_TAG_BYTES of
 * an HMAC-SHA256 of that text under the token secret, all in base64url.
 * Only positions this server handed out come back, so a forged or edited
 * cursor (an impossible date, say) is a 400 before any SQL sees it.
 */
#define CURSOR_TAG_BYTES 16
#define CURSOR_TEXT_MAX 96

static void
cursor_tag(struct request *req, const char *text, size_t len,
    unsigned char tag[CURSOR_TAG_BYTES])
{
    unsigned char full[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, req->secret->key, req->secret->len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)"cursor:", 7);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)text, len);
    crypto_auth_hmacsha256_final(&st, full);
    memcpy(tag, full, CURSOR_TAG_BYTES);
}

static int
cursor_decode(struct request *req, const char *cursor, struct page *page)
{
    unsigned char raw[CURSOR_TEXT_MAX + CURSOR_TAG_BYTES + 1];
    unsigned char tag[CURSOR_TAG_BYTES];
    size_t len, text_len;
    char *text, *comma;
    char id[UUID_TEXT_LEN + 1];

    if (strlen(cursor) > 2 * sizeof(raw) ||
        sodium_base642bin(raw, sizeof(raw), cursor, strlen(cursor),
            NULL, &len, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0
        || len <= CURSOR_TAG_BYTES)
        return bad_parameter(req, "cursor");

    text_len = len - CURSOR_TAG_BYTES;
    cursor_tag(req, (const char *)raw, text_len, tag);
    if (sodium_memcmp(tag, raw + text_len, CURSOR_TAG_BYTES) != 0)
        return bad_parameter(req, "cursor");

    text = arena_strndup(req->arena, (const char *)raw, text_len);
    comma = strchr(text, ',');
    if (comma == NULL)
        return bad_parameter(req, "cursor");
    *comma = '\0';
    if (!timestamp_shaped(text) ||
        !uuid_parse(comma + 1, strlen(comma + 1), id))
        return bad_parameter(req, "cursor");

    page->after_ts = text;
    page->after_id = arena_strdup(req->arena, id);
    return 0;
}

int
page_read(struct request *req, struct page *page)
{
    const char *limit = request_query(req, "limit");
    const char *cursor = request_query(req, "cursor");

    page->limit = PAGE_LIMIT_DEFAULT;
    page->after_ts = NULL;
    page->after_id = NULL;

    if (limit != NULL) {
        char *end;
        long n;

        if (limit[0] < '0' || limit[0] > '9' || strlen(limit) > 3)
            return bad_parameter(req, "limit");
        n = strtol(limit, &end, 10);
        if (*end != '\0' || n < 1 || n > PAGE_LIMIT_MAX)
            return bad_parameter(req, "limit");
        page->limit = (int)n;
    }
    snprintf(page->limit_text, sizeof(page->limit_text), "%d",
        page->limit + 1);

    if (cursor != NULL && cursor_decode(req, cursor, page) < 0)
        return -1;
    return 0;
}

void
page_write_next(struct request *req, bool more, const char *last_ts,
    const char *last_id)
{
    unsigned char raw[CURSOR_TEXT_MAX + CURSOR_TAG_BYTES];
    char encoded[256];
    char *plain;
    size_t len;

    if (!more || last_ts == NULL || last_id == NULL) {
        jw_key(&req->json, "next_cursor");
        jw_null(&req->json);
        return;
    }

    plain = arena_printf(req->arena, "%s,%s", last_ts, last_id);
    len = strlen(plain);
    if (len > CURSOR_TEXT_MAX)
        fatal("a cursor position of %zu bytes", len);
    memcpy(raw, plain, len);
    cursor_tag(req, plain, len, raw + len);
    sodium_bin2base64(encoded, sizeof(encoded), raw, len + CURSOR_TAG_BYTES,
        sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    jw_kv_string(&req->json, "next_cursor", encoded);
}

void
response_etag(struct request *req, const char *version)
{
    response_header(req, "ETag", "\"%s\"", version);
}

/* True when the entity-tag at s[0..len) is the strong tag "version". */
static bool
tag_matches(const char *s, size_t len, const char *version)
{
    size_t vlen = strlen(version);

    return len == vlen + 2 && s[0] == '"' && s[len - 1] == '"' &&
        memcmp(s + 1, version, vlen) == 0;
}

int
precondition_check(struct request *req, const char *version)
{
    const char *p = req->if_match;

    if (p[0] == '\0')
        return 0;

    while (*p != '\0') {
        size_t len;

        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        len = strcspn(p, ",");
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == 1 && p[0] == '*')
            return 0;
        if (len > 0 && tag_matches(p, len, version))
            return 0;
        p += strcspn(p, ",");
    }
    return request_fail(req, 412,
        "the resource has changed since you read it (If-Match)");
}

void
response_location(struct request *req, const char *collection,
    const char *id)
{
    response_header(req, "Location", "/api/v1/%s/%s", collection, id);
}

const char *
sql_array_literal(struct arena *a, const char *const *items, size_t n)
{
    struct buf text = BUF_INIT;
    const char *out;

    buf_putc(&text, '{');
    for (size_t i = 0; i < n; i++) {
        if (items[i][0] == '\0' ||
            strpbrk(items[i], "{},\"\\ \t\r\n") != NULL ||
            strcasecmp(items[i], "null") == 0)
            fatal("an array item needs quoting: %s", items[i]);
        buf_printf(&text, "%s%s", i > 0 ? "," : "", items[i]);
    }
    buf_putc(&text, '}');
    out = arena_strdup(a, buf_cstr(&text));
    buf_free(&text);
    return out;
}
