#include "config.h"

#include <string.h>

#include "jsonptr.h"

char *
jsonptr_key(struct arena *a, const char *base, const char *key)
{
    size_t base_len = strlen(base);
    size_t extra = 0;
    char *out, *p;

    for (const char *k = key; *k != '\0'; k++)
        if (*k == '~' || *k == '/')
            extra++;

    out = arena_alloc(a, base_len + 1 + strlen(key) + extra + 1);
    memcpy(out, base, base_len);
    p = out + base_len;
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

char *
jsonptr_index(struct arena *a, const char *base, size_t index)
{
    return arena_printf(a, "%s/%zu", base, index);
}
