#include "config.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <string.h>

#include "imageref.h"

#define TAG_MAX 128
#define DIGEST_PREFIX "sha256:"
#define DIGEST_HEX_LEN 64

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || is_digit(c);
}

static bool
is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* [a-z0-9]+ ([._] | "__" | "-"+ then [a-z0-9]+)* */
static bool
path_component_valid(const char *s, size_t len)
{
    size_t i = 0;

    for (;;) {
        size_t start = i;

        while (i < len && is_lower_alnum(s[i]))
            i++;
        if (i == start)
            return false;
        if (i == len)
            return true;

        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i++;
            if (i < len && s[i] == '_')
                i++;
        } else if (s[i] == '-') {
            while (i < len && s[i] == '-')
                i++;
        } else {
            return false;
        }
    }
}

/* component ("/" component)* */
static bool
path_valid(const char *s, size_t len)
{
    for (;;) {
        const char *slash = memchr(s, '/', len);
        size_t part = slash != NULL ? (size_t)(slash - s) : len;

        if (!path_component_valid(s, part))
            return false;
        if (slash == NULL)
            return true;
        s += part + 1;
        len -= part + 1;
    }
}

/* Labels of letters and digits with inner hyphens, joined by dots. */
static bool
domain_name_valid(const char *s, size_t len)
{
    for (;;) {
        const char *dot = memchr(s, '.', len);
        size_t label = dot != NULL ? (size_t)(dot - s) : len;

        if (label == 0 || !is_alnum(s[0]) || !is_alnum(s[label - 1]))
            return false;
        for (size_t i = 1; i + 1 < label; i++)
            if (!is_alnum(s[i]) && s[i] != '-')
                return false;
        if (dot == NULL)
            return true;
        s += label + 1;
        len -= label + 1;
    }
}

static bool
port_valid(const char *s, size_t len)
{
    long port = 0;

    if (len == 0 || len > 5)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return false;
        port = port * 10 + (s[i] - '0');
    }
    return port >= 1 && port <= 65535;
}

/* "[" IPv6 "]", checked by the C library's own parser. */
static bool
ipv6_literal_valid(const char *s, size_t len)
{
    char text[INET6_ADDRSTRLEN];
    struct in6_addr addr;

    if (len < 3 || len - 2 >= sizeof(text) || s[0] != '[' ||
        s[len - 1] != ']')
        return false;
    memcpy(text, s + 1, len - 2);
    text[len - 2] = '\0';
    return inet_pton(AF_INET6, text, &addr) == 1;
}

/* host [":" port] */
static bool
registry_valid(const char *s, size_t len)
{
    size_t host_len;

    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);

        if (close == NULL)
            return false;
        host_len = (size_t)(close - s) + 1;
        if (!ipv6_literal_valid(s, host_len))
            return false;
    } else {
        const char *colon = memchr(s, ':', len);

        host_len = colon != NULL ? (size_t)(colon - s) : len;
        if (!domain_name_valid(s, host_len))
            return false;
    }

    if (host_len == len)
        return true;
    return s[host_len] == ':' &&
        port_valid(s + host_len + 1, len - host_len - 1);
}

/*
 * [registry "/"] path.  A first segment followed by more is a registry
 * when it cannot be a path component (a dot-less host name is both).
 */
static bool
name_valid(const char *s, size_t len)
{
    const char *slash = memchr(s, '/', len);
    size_t first;

    if (slash == NULL)
        return path_component_valid(s, len);
    first = (size_t)(slash - s);
    if (!path_component_valid(s, first) && !registry_valid(s, first))
        return false;
    return path_valid(slash + 1, len - first - 1);
}

static bool
tag_valid(const char *s, size_t len)
{
    if (len == 0 || len > TAG_MAX || !(is_alnum(s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return false;
    return true;
}

static bool
digest_valid(const char *s, size_t len)
{
    size_t prefix = sizeof(DIGEST_PREFIX) - 1;

    if (len != prefix + DIGEST_HEX_LEN ||
        memcmp(s, DIGEST_PREFIX, prefix) != 0)
        return false;
    for (size_t i = prefix; i < len; i++)
        if (!is_digit(s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
            return false;
    return true;
}

bool
imageref_valid(const char *ref)
{
    size_t len = strlen(ref);
    const char *at, *name_end, *last_part, *colon;

    if (len == 0 || len > IMAGEREF_MAX)
        return false;

    at = memchr(ref, '@', len);
    name_end = at != NULL ? at : ref + len;
    if (at != NULL && !digest_valid(at + 1, len - (size_t)(at - ref) - 1))
        return false;

    /*
     * A colon in the last segment starts the tag; one before the last
     * slash belongs to the registry's port.
     */
    last_part = ref;
    for (const char *p = ref; p < name_end; p++)
        if (*p == '/')
            last_part = p + 1;
    colon = memchr(last_part, ':', (size_t)(name_end - last_part));
    if (colon != NULL) {
        if (!tag_valid(colon + 1, (size_t)(name_end - colon - 1)))
            return false;
        name_end = colon;
    }

    return name_valid(ref, (size_t)(name_end - ref));
}
