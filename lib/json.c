#include "config.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "json.h"
#include "log.h"

/*
 * Depth, precisely: a value's depth is the number of arrays and objects
 * it is inside of, counting itself when it is one.  A bare scalar has
 * depth 0, "[]" and "{}" have depth 1, "[[1]]" has depth 2.  Depth
 * JSON_MAX_DEPTH is accepted and one more is refused at the byte of the
 * bracket that would open it.  The parser recurses once per level, so
 * the C stack holds at most JSON_MAX_DEPTH + 1 frames of each kind,
 * however deep the input tries to go.
 *
 * Numbers: an integer literal (no fraction, no exponent) that fits int64
 * becomes json_type_int; "-0" is such a literal and becomes 0.  Every
 * other number, including an integer literal outside int64, becomes
 * json_type_double carrying its original text, so serialising it gives
 * back exactly what the client sent; its double value is what strtod
 * makes of the text.  A number that takes more than JSON_NUMBER_MAX_DIGITS
 * digits when written out without an exponent (1e400, 1e-400, an integer
 * of 70 digits) is refused: PostgreSQL stores jsonb numbers as numeric
 * and prints them in full, so "1e-16383" (8 bytes) would come back as
 * 16,385 bytes on every read.
 *
 * Error offsets are 0-based byte offsets into the input.  They point at
 * the offending byte, except for an unterminated string, which points
 * at its opening quote, and for running out of input, which points at
 * the end.
 */

#define JSON_NUMBER_MAX_DIGITS 64  /* digits of a number written out */
#define KEY_SHOWN_MAX 40        /* bytes of a key quoted in a message */
#define WRITER_MAX_DEPTH 63     /* need_comma has one bit per depth */

struct parser {
    const unsigned char *text;
    size_t len;
    size_t pos;
    struct crewd_error *err;

    /*
     * Decoded strings.  It works as a stack: an object's key stays here,
     * NUL-terminated, while its value is parsed above it, so nested
     * objects need no allocation per key.  Entries are addressed by
     * offset because appending may move the data.
     */
    struct buf scratch;
};

static int parse_value(struct parser *ps, int depth,
    struct json_object **out);

/* ---------------------------------------------------------------------
 * UTF-8
 * ------------------------------------------------------------------- */

/*
 * Length of the well-formed UTF-8 sequence at s (Unicode table 3-7), or
 * 0 when there is none: a stray continuation byte, an overlong form
 * (C0, C1, E0 80..9F, F0 80..8F), a UTF-16 surrogate (ED A0..BF), a
 * code point past U+10FFFF (F4 90.., F5..FF) or a sequence cut short.
 */
static size_t
utf8_sequence(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n;

    if (c < 0x80)
        return 1;

    if (c < 0xc2)
        return 0;
    else if (c < 0xe0)
        n = 2;
    else if (c < 0xf0) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c < 0xf5) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;

    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/*
 * A raw NUL counts as invalid here, as it does in the parser: whatever
 * is checked with this ends up in PostgreSQL text, which cannot hold it.
 */
bool
json_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        size_t n;

        if (u[i] == 0)
            return false;
        n = utf8_sequence(u + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

size_t
json_utf8_length(const char *s, size_t len)
{
    size_t count = 0;

    /* Every code point has exactly one byte that is not 10xxxxxx. */
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            count++;
    return count;
}

static size_t
utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* ---------------------------------------------------------------------
 * Parser helpers
 * ------------------------------------------------------------------- */

static struct json_object *
checked(struct json_object *o)
{
    /* json-c reports out of memory with NULL; crewd does not go on. */
    if (o == NULL)
        fatal("out of memory building a JSON value");
    return o;
}

static int fail(struct parser *ps, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct parser *ps, size_t at, const char *fmt, ...)
{
    char reason[128];
    va_list ap;

    if (ps->err == NULL)
        return -1;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    return error_set(ps->err, 400, "invalid JSON at byte %zu: %s", at,
        reason);
}

/* Fails with the usual reason for running out of input or a bad byte. */
static int
fail_here(struct parser *ps, const char *expected)
{
    if (ps->pos >= ps->len)
        return fail(ps, ps->len, "unexpected end of input");
    return fail(ps, ps->pos, "%s", expected);
}

static void
skip_space(struct parser *ps)
{
    while (ps->pos < ps->len) {
        unsigned char c = ps->text[ps->pos];

        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        ps->pos++;
    }
}

static bool
at_byte(const struct parser *ps, unsigned char c)
{
    return ps->pos < ps->len && ps->text[ps->pos] == c;
}

/*
 * Renders a decoded key for an error message: at most KEY_SHOWN_MAX
 * bytes, cut on a character boundary, with quotes, backslashes and
 * control characters escaped so the detail can be shown and logged
 * as is.  dst must hold KEY_SHOWN_MAX + 4 bytes.
 */
static void
key_for_message(char *dst, const char *key, size_t keylen)
{
    const unsigned char *k = (const unsigned char *)key;
    size_t o = 0, i = 0;

    while (i < keylen) {
        char piece[8];
        size_t n, used = 1;     /* bytes written, bytes of key consumed */

        if (k[i] == '"' || k[i] == '\\') {
            piece[0] = '\\';
            piece[1] = (char)k[i];
            n = 2;
        } else if (k[i] < 0x20 || k[i] == 0x7f) {
            snprintf(piece, sizeof(piece), "\\u%04x", k[i]);
            n = 6;
        } else {
            /* Keys were validated, so this is a whole character. */
            used = utf8_sequence(k + i, keylen - i);
            if (used == 0)
                used = 1;
            memcpy(piece, k + i, used);
            n = used;
        }

        if (o + n > KEY_SHOWN_MAX) {
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(dst + o, piece, n);
        o += n;
        i += used;
    }
    dst[o] = '\0';
}

/* ---------------------------------------------------------------------
 * Strings
 * ------------------------------------------------------------------- */

static int
hex4(const unsigned char *s, uint32_t *out)
{
    uint32_t v = 0;

    for (int i = 0; i < 4; i++) {
        unsigned char c = s[i];

        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Reads "\uXXXX" at pos; returns -1 without failing when it is not one. */
static int
read_u_escape(const struct parser *ps, size_t pos, uint32_t *cp)
{
    if (ps->len - pos < 6 || ps->text[pos] != '\\' ||
        ps->text[pos + 1] != 'u')
        return -1;
    return hex4(ps->text + pos + 2, cp);
}

/* Decodes the escape at ps->pos (the backslash) onto the scratch. */
static int
parse_escape(struct parser *ps, size_t string_start)
{
    size_t at = ps->pos;
    uint32_t cp, low;
    char utf8[4];
    char c;

    if (ps->len - at < 2)
        return fail(ps, string_start, "unterminated string");

    if (ps->text[at + 1] != 'u') {
        switch (ps->text[at + 1]) {
        case '"': c = '"'; break;
        case '\\': c = '\\'; break;
        case '/': c = '/'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        default:
            return fail(ps, at, "invalid escape");
        }
        buf_putc(&ps->scratch, c);
        ps->pos += 2;
        return 0;
    }

    if (read_u_escape(ps, at, &cp) < 0)
        return fail(ps, at, "invalid \\u escape");
    ps->pos += 6;

    if (cp == 0)
        return fail(ps, at, "\\u0000 not allowed");
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return fail(ps, at, "lone surrogate");
    if (cp >= 0xd800 && cp <= 0xdbff) {
        /* A high surrogate means nothing without the low one after it. */
        if (read_u_escape(ps, ps->pos, &low) < 0 ||
            low < 0xdc00 || low > 0xdfff)
            return fail(ps, at, "lone surrogate");
        ps->pos += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
    }

    buf_append(&ps->scratch, utf8, utf8_encode(cp, utf8));
    return 0;
}

/*
 * Decodes the string at ps->pos (its opening quote) onto the scratch,
 * NUL-terminated, and sets *mark to where it starts there.
 */
static int
parse_string(struct parser *ps, size_t *mark)
{
    size_t start = ps->pos;

    *mark = ps->scratch.len;
    buf_reserve(&ps->scratch, 0);   /* an empty string still needs data */
    ps->pos++;

    for (;;) {
        size_t run = ps->pos;
        unsigned char c;

        /* Plain ASCII is copied in one go. */
        while (run < ps->len) {
            c = ps->text[run];
            if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
                break;
            run++;
        }
        buf_append(&ps->scratch, ps->text + ps->pos, run - ps->pos);
        ps->pos = run;

        if (ps->pos >= ps->len)
            return fail(ps, start, "unterminated string");

        c = ps->text[ps->pos];
        if (c == '"') {
            ps->pos++;
            break;
        }
        if (c == '\\') {
            if (parse_escape(ps, start) < 0)
                return -1;
        } else if (c < 0x20) {
            return fail(ps, ps->pos, "control character in string");
        } else {
            size_t n = utf8_sequence(ps->text + ps->pos,
                ps->len - ps->pos);

            if (n == 0)
                return fail(ps, ps->pos, "invalid UTF-8");
            buf_append(&ps->scratch, ps->text + ps->pos, n);
            ps->pos += n;
        }
    }

    ps->scratch.data[ps->scratch.len] = '\0';
    if (ps->scratch.len - *mark > INT_MAX)     /* json-c lengths are int */
        return fail(ps, start, "string too long");
    return 0;
}

/* ---------------------------------------------------------------------
 * Numbers and literals
 * ------------------------------------------------------------------- */

static bool
is_digit(const struct parser *ps, size_t pos)
{
    return pos < ps->len && ps->text[pos] >= '0' && ps->text[pos] <= '9';
}

static size_t
skip_digits(const struct parser *ps, size_t pos)
{
    while (is_digit(ps, pos))
        pos++;
    return pos;
}

/* The value of an integer literal, or false when it does not fit. */
static bool
integer_value(const unsigned char *s, size_t n, int64_t *out)
{
    bool negative = s[0] == '-';
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : INT64_MAX;
    uint64_t mag = 0;

    for (size_t i = negative ? 1 : 0; i < n; i++) {
        unsigned digit = (unsigned)(s[i] - '0');

        if (mag > (limit - digit) / 10)
            return false;
        mag = mag * 10 + digit;
    }

    if (!negative)
        *out = (int64_t)mag;
    else if (mag == (uint64_t)INT64_MAX + 1)
        *out = INT64_MIN;
    else
        *out = -(int64_t)mag;
    return true;
}

static int
parse_number(struct parser *ps, struct json_object **out)
{
    size_t start = ps->pos, pos = ps->pos, n;
    size_t int_digits, frac_digits = 0, mark;
    long long exponent = 0;
    bool integer = true;
    char small[64], *copy, *end;
    int64_t i;
    double d;

    /* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
    if (ps->text[pos] == '-')
        pos++;
    if (!is_digit(ps, pos)) {
        ps->pos = pos;
        return fail_here(ps, "invalid number");
    }
    if (ps->text[pos] == '0' && is_digit(ps, pos + 1))
        return fail(ps, start, "leading zero in number");
    mark = pos;
    pos = skip_digits(ps, pos);
    int_digits = pos - mark;

    if (pos < ps->len && ps->text[pos] == '.') {
        integer = false;
        pos++;
        if (!is_digit(ps, pos)) {
            ps->pos = pos;
            return fail_here(ps, "invalid number");
        }
        mark = pos;
        pos = skip_digits(ps, pos);
        frac_digits = pos - mark;
    }

    if (pos < ps->len && (ps->text[pos] == 'e' || ps->text[pos] == 'E')) {
        bool negative = false;

        integer = false;
        pos++;
        if (pos < ps->len && (ps->text[pos] == '+' || ps->text[pos] == '-'))
            negative = ps->text[pos++] == '-';
        if (!is_digit(ps, pos)) {
            ps->pos = pos;
            return fail_here(ps, "invalid number");
        }
        /* Saturate: anything past a million is out of range anyway. */
        for (; is_digit(ps, pos); pos++)
            if (exponent < 1000000)
                exponent = exponent * 10 + (ps->text[pos] - '0');
        if (negative)
            exponent = -exponent;
    }

    /* Digits before and after the point once the exponent is applied. */
    {
        long long before = (long long)int_digits + exponent;
        long long after = (long long)frac_digits - exponent;

        if ((before > 0 ? before : 1) + (after > 0 ? after : 0) >
            JSON_NUMBER_MAX_DIGITS)
            return fail(ps, start, "number out of range");
    }

    ps->pos = pos;
    n = pos - start;
    if (integer && integer_value(ps->text + start, n, &i)) {
        *out = checked(json_object_new_int64(i));
        return 0;
    }

    /* strtod and json-c both want a C string. */
    copy = n < sizeof(small) ? small : xmalloc(n + 1);
    memcpy(copy, ps->text + start, n);
    copy[n] = '\0';

    d = strtod(copy, &end);

    /*
     * The text matched the JSON grammar, so strtod can only stop early
     * if someone changed LC_NUMERIC; better to stop than misread.
     */
    if (end != copy + n)
        fatal("strtod stopped inside \"%s\": is LC_NUMERIC not C?", copy);

    if (!isfinite(d)) {
        if (copy != small)
            free(copy);
        return fail(ps, start, "number out of range");
    }
    *out = checked(json_object_new_double_s(d, copy));
    if (copy != small)
        free(copy);
    return 0;
}

static int
parse_literal(struct parser *ps, const char *word, struct json_object **out)
{
    size_t n = strlen(word), start = ps->pos;
    unsigned char next;

    if (ps->len - start < n || memcmp(ps->text + start, word, n) != 0)
        return fail(ps, start, "invalid literal");

    /* "truex" is a bad literal rather than "true" and trailing data. */
    if (start + n < ps->len) {
        next = ps->text[start + n];
        if ((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') ||
            (next >= '0' && next <= '9') || next == '_')
            return fail(ps, start, "invalid literal");
    }

    ps->pos += n;
    if (word[0] == 't')
        *out = checked(json_object_new_boolean(1));
    else if (word[0] == 'f')
        *out = checked(json_object_new_boolean(0));
    else
        *out = NULL;    /* json-c's null is the NULL pointer */
    return 0;
}

/* ---------------------------------------------------------------------
 * Arrays and objects
 * ------------------------------------------------------------------- */

/* ps->pos is at '['; depth is the array's own depth. */
static int
parse_array(struct parser *ps, int depth, struct json_object **out)
{
    struct json_object *array = checked(json_object_new_array());

    ps->pos++;
    skip_space(ps);
    if (at_byte(ps, ']')) {
        ps->pos++;
        *out = array;
        return 0;
    }

    for (;;) {
        struct json_object *element;

        if (parse_value(ps, depth, &element) < 0)
            goto failed;
        if (json_object_array_add(array, element) != 0)
            fatal("out of memory growing a JSON array");

        skip_space(ps);
        if (at_byte(ps, ']')) {
            ps->pos++;
            break;
        }
        if (!at_byte(ps, ',')) {
            fail_here(ps, "expected ',' or ']'");
            goto failed;
        }
        ps->pos++;
        skip_space(ps);
        if (at_byte(ps, ']')) {
            fail(ps, ps->pos, "trailing comma");
            goto failed;
        }
    }

    *out = array;
    return 0;

failed:
    json_object_put(array);
    return -1;
}

/* ps->pos is at '{'; depth is the object's own depth. */
static int
parse_object(struct parser *ps, int depth, struct json_object **out)
{
    struct json_object *object = checked(json_object_new_object());

    ps->pos++;
    skip_space(ps);
    if (at_byte(ps, '}')) {
        ps->pos++;
        *out = object;
        return 0;
    }

    for (;;) {
        struct json_object *value;
        size_t key_at = ps->pos, mark, keylen;
        const char *key;

        if (!at_byte(ps, '"')) {
            fail_here(ps, "expected string key");
            goto failed;
        }
        if (parse_string(ps, &mark) < 0)
            goto failed;
        key = ps->scratch.data + mark;
        keylen = ps->scratch.len - mark;

        /* Keys hold no NUL ("\u0000" is refused), so C strings do. */
        if (json_object_object_get_ex(object, key, NULL)) {
            char shown[KEY_SHOWN_MAX + 4];

            key_for_message(shown, key, keylen);
            fail(ps, key_at, "duplicate key \"%s\"", shown);
            goto failed;
        }

        /* Keep the key and its terminator below the value's strings. */
        buf_putc(&ps->scratch, '\0');

        skip_space(ps);
        if (!at_byte(ps, ':')) {
            fail_here(ps, "expected ':'");
            goto failed;
        }
        ps->pos++;
        skip_space(ps);

        if (parse_value(ps, depth, &value) < 0)
            goto failed;

        /* The scratch may have moved while the value was parsed. */
        key = ps->scratch.data + mark;
        if (json_object_object_add_ex(object, key, value,
                JSON_C_OBJECT_ADD_KEY_IS_NEW) != 0)
            fatal("out of memory growing a JSON object");
        ps->scratch.len = mark;

        skip_space(ps);
        if (at_byte(ps, '}')) {
            ps->pos++;
            break;
        }
        if (!at_byte(ps, ',')) {
            fail_here(ps, "expected ',' or '}'");
            goto failed;
        }
        ps->pos++;
        skip_space(ps);
        if (at_byte(ps, '}')) {
            fail(ps, ps->pos, "trailing comma");
            goto failed;
        }
    }

    *out = object;
    return 0;

failed:
    json_object_put(object);
    return -1;
}

/*
 * Parses the value at ps->pos (whitespace already skipped).  depth is
 * the number of containers around it, so a container found here has
 * depth + 1.
 */
static int
parse_value(struct parser *ps, int depth, struct json_object **out)
{
    size_t mark;

    *out = NULL;
    if (ps->pos >= ps->len)
        return fail(ps, ps->len, "unexpected end of input");

    switch (ps->text[ps->pos]) {
    case '[':
    case '{':
        if (depth + 1 > JSON_MAX_DEPTH)
            return fail(ps, ps->pos, "nesting deeper than %d",
                JSON_MAX_DEPTH);
        if (ps->text[ps->pos] == '[')
            return parse_array(ps, depth + 1, out);
        return parse_object(ps, depth + 1, out);

    case '"':
        if (parse_string(ps, &mark) < 0)
            return -1;
        *out = checked(json_object_new_string_len(ps->scratch.data + mark,
            (int)(ps->scratch.len - mark)));
        ps->scratch.len = mark;
        return 0;

    case 't':
        return parse_literal(ps, "true", out);
    case 'f':
        return parse_literal(ps, "false", out);
    case 'n':
        return parse_literal(ps, "null", out);

    case '-':
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return parse_number(ps, out);

    default:
        return fail(ps, ps->pos, "unexpected character");
    }
}

int
json_parse(const char *text, size_t len, struct json_object **out,
    struct crewd_error *err)
{
    struct parser ps = {
        .text = (const unsigned char *)text,
        .len = len,
        .pos = 0,
        .err = err,
        .scratch = BUF_INIT,
    };
    struct json_object *value = NULL;
    int rc = -1;

    *out = NULL;

    skip_space(&ps);
    if (ps.pos == ps.len) {
        fail(&ps, ps.len, "empty body");
        goto done;
    }

    if (parse_value(&ps, 0, &value) < 0)
        goto done;

    skip_space(&ps);
    if (ps.pos < ps.len) {
        fail(&ps, ps.pos, "trailing data");
        json_object_put(value);
        goto done;
    }

    *out = value;
    rc = 0;

done:
    buf_free(&ps.scratch);
    return rc;
}

/* ---------------------------------------------------------------------
 * Writer
 * ------------------------------------------------------------------- */

/*
 * Escapes what JSON requires (quote, backslash, C0 controls) plus
 * U+2028 and U+2029, which JavaScript before ES2019 took for line ends.
 * Other UTF-8 passes through.  Bytes that are not UTF-8 become U+FFFD:
 * the output must stay valid JSON whatever a caller hands us.
 */
void
json_escape(struct buf *out, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    buf_putc(out, '"');
    while (i < len) {
        size_t run = i, n;
        unsigned char c;

        while (run < len && u[run] >= 0x20 && u[run] < 0x80 &&
            u[run] != '"' && u[run] != '\\')
            run++;
        buf_append(out, s + i, run - i);
        i = run;
        if (i == len)
            break;

        c = u[i];
        switch (c) {
        case '"': buf_puts(out, "\\\""); i++; continue;
        case '\\': buf_puts(out, "\\\\"); i++; continue;
        case '\b': buf_puts(out, "\\b"); i++; continue;
        case '\f': buf_puts(out, "\\f"); i++; continue;
        case '\n': buf_puts(out, "\\n"); i++; continue;
        case '\r': buf_puts(out, "\\r"); i++; continue;
        case '\t': buf_puts(out, "\\t"); i++; continue;
        default: break;
        }
        if (c < 0x20) {
            buf_printf(out, "\\u%04x", c);
            i++;
            continue;
        }

        n = utf8_sequence(u + i, len - i);
        if (n == 0) {
            buf_puts(out, "\\ufffd");
            i++;
        } else if (n == 3 && u[i] == 0xe2 && u[i + 1] == 0x80 &&
            (u[i + 2] == 0xa8 || u[i + 2] == 0xa9)) {
            buf_puts(out, u[i + 2] == 0xa8 ? "\\u2028" : "\\u2029");
            i += 3;
        } else {
            buf_append(out, s + i, n);
            i += n;
        }
    }
    buf_putc(out, '"');
}

void
jw_init(struct json_writer *w, struct buf *out)
{
    w->out = out;
    w->depth = 0;
    w->need_comma = 0;
    w->after_key = false;
}

/* Called before every value: a comma unless first or right after a key. */
static void
before_value(struct json_writer *w)
{
    uint64_t bit = (uint64_t)1 << w->depth;

    if (w->after_key)
        w->after_key = false;
    else if (w->need_comma & bit)
        buf_putc(w->out, ',');
    w->need_comma |= bit;
}

static void
open_container(struct json_writer *w, char c)
{
    before_value(w);
    if (w->depth >= WRITER_MAX_DEPTH)
        fatal("JSON writer nested deeper than %d", WRITER_MAX_DEPTH);
    buf_putc(w->out, c);
    w->depth++;
    w->need_comma &= ~((uint64_t)1 << w->depth);
}

static void
close_container(struct json_writer *w, char c)
{
    if (w->depth == 0)
        fatal("JSON writer closed '%c' with nothing open", c);
    if (w->after_key)
        fatal("JSON writer closed '%c' after a key with no value", c);
    buf_putc(w->out, c);
    w->depth--;
}

void
jw_object_open(struct json_writer *w)
{
    open_container(w, '{');
}

void
jw_object_close(struct json_writer *w)
{
    close_container(w, '}');
}

void
jw_array_open(struct json_writer *w)
{
    open_container(w, '[');
}

void
jw_array_close(struct json_writer *w)
{
    close_container(w, ']');
}

void
jw_key(struct json_writer *w, const char *key)
{
    if (w->after_key)
        fatal("JSON writer: key \"%s\" follows a key", key);
    before_value(w);
    json_escape(w->out, key, strlen(key));
    buf_putc(w->out, ':');
    w->after_key = true;
}

void
jw_string(struct json_writer *w, const char *s)
{
    if (s == NULL)
        jw_null(w);
    else
        jw_string_len(w, s, strlen(s));
}

void
jw_string_len(struct json_writer *w, const char *s, size_t len)
{
    if (s == NULL) {
        jw_null(w);
        return;
    }
    before_value(w);
    json_escape(w->out, s, len);
}

void
jw_int(struct json_writer *w, int64_t v)
{
    before_value(w);
    buf_printf(w->out, "%" PRId64, v);
}

void
jw_bool(struct json_writer *w, bool v)
{
    before_value(w);
    buf_puts(w->out, v ? "true" : "false");
}

void
jw_null(struct json_writer *w)
{
    before_value(w);
    buf_puts(w->out, "null");
}

void
jw_raw(struct json_writer *w, const char *json)
{
    before_value(w);
    buf_puts(w->out, json == NULL ? "null" : json);
}

void
jw_object(struct json_writer *w, struct json_object *value)
{
    if (value == NULL) {
        jw_null(w);
        return;
    }
    before_value(w);
    buf_puts(w->out, json_object_to_json_string_ext(value,
        JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

void
jw_kv_string(struct json_writer *w, const char *key, const char *s)
{
    jw_key(w, key);
    jw_string(w, s);
}

void
jw_kv_int(struct json_writer *w, const char *key, int64_t v)
{
    jw_key(w, key);
    jw_int(w, v);
}

void
jw_kv_bool(struct json_writer *w, const char *key, bool v)
{
    jw_key(w, key);
    jw_bool(w, v);
}

void
jw_kv_raw(struct json_writer *w, const char *key, const char *json)
{
    jw_key(w, key);
    jw_raw(w, json);
}

struct json_object *
json_merge_patch(struct json_object *target, struct json_object *patch)
{
    struct json_object *result = NULL;

    if (!json_object_is_type(patch, json_type_object))
        return json_object_get(patch);

    if (json_object_is_type(target, json_type_object)) {
        if (json_object_deep_copy(target, &result, NULL) != 0)
            fatal("out of memory copying a JSON object");
    } else {
        result = checked(json_object_new_object());
    }

    json_object_object_foreach(patch, key, value) {
        struct json_object *current = NULL;

        if (value == NULL) {
            json_object_object_del(result, key);
            continue;
        }
        json_object_object_get_ex(result, key, &current);
        if (json_object_object_add(result, key,
                json_merge_patch(current, value)) != 0)
            fatal("out of memory merging a JSON object");
    }
    return result;
}
