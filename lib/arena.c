#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "log.h"

#define ARENA_ALIGN 16

struct block {
    struct block *next;
    size_t size;
    size_t used;
    /* data follows, aligned */
};

struct cleanup {
    struct cleanup *next;
    arena_cleanup_fn fn;
    void *object;
};

struct arena {
    struct block *first;    /* kept across resets */
    struct block *current;
    struct cleanup *cleanups;
    size_t handed_out;
};

static size_t
block_header_size(void)
{
    size_t mask = ARENA_ALIGN - 1;

    return (sizeof(struct block) + mask) & ~mask;
}

static struct block *
block_new(size_t data_size)
{
    struct block *b = xmalloc(block_header_size() + data_size);

    b->next = NULL;
    b->size = data_size;
    b->used = 0;
    return b;
}

static char *
block_data(struct block *b)
{
    return (char *)b + block_header_size();
}

struct arena *
arena_new(size_t first_block_size)
{
    struct arena *a = xcalloc(1, sizeof(*a));

    if (first_block_size < 1024)
        first_block_size = 1024;
    a->first = block_new(first_block_size);
    a->current = a->first;
    return a;
}

static void
run_cleanups(struct arena *a)
{
    struct cleanup *c = a->cleanups;

    /* Cleanups live in the arena's own blocks, so read next first. */
    while (c != NULL) {
        struct cleanup *next = c->next;

        c->fn(c->object);
        c = next;
    }
    a->cleanups = NULL;
}

void
arena_reset(struct arena *a)
{
    struct block *b;

    if (a == NULL)
        return;

    run_cleanups(a);

    b = a->first->next;
    while (b != NULL) {
        struct block *next = b->next;

        free(b);
        b = next;
    }
    a->first->next = NULL;
    a->first->used = 0;
    a->current = a->first;
    a->handed_out = 0;
}

void
arena_free(struct arena *a)
{
    if (a == NULL)
        return;

    arena_reset(a);
    free(a->first);
    free(a);
}

void *
arena_alloc(struct arena *a, size_t size)
{
    struct block *b = a->current;
    size_t rounded;
    void *p;

    if (size > SIZE_MAX / 2)
        fatal("arena allocation of %zu bytes", size);
    rounded = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (rounded == 0)
        rounded = ARENA_ALIGN;

    if (b->size - b->used < rounded) {
        size_t want = a->first->size * 2;

        if (want < rounded)
            want = rounded;
        b = block_new(want);
        b->next = a->current->next;
        a->current->next = b;
        a->current = b;
    }

    p = block_data(b) + b->used;
    b->used += rounded;
    a->handed_out += rounded;
    return p;
}

void *
arena_zalloc(struct arena *a, size_t size)
{
    void *p = arena_alloc(a, size);

    memset(p, 0, size);
    return p;
}

char *
arena_strndup(struct arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
arena_strdup(struct arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

char *
arena_vprintf(struct arena *a, const char *fmt, va_list ap)
{
    va_list copy;
    int n;
    char *p;

    va_copy(copy, ap);
    n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        fatal("invalid format string: %s", fmt);

    p = arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *
arena_printf(struct arena *a, const char *fmt, ...)
{
    va_list ap;
    char *p;

    va_start(ap, fmt);
    p = arena_vprintf(a, fmt, ap);
    va_end(ap);
    return p;
}

void
arena_defer(struct arena *a, arena_cleanup_fn fn, void *object)
{
    struct cleanup *c;

    if (object == NULL)
        return;

    c = arena_alloc(a, sizeof(*c));
    c->fn = fn;
    c->object = object;
    c->next = a->cleanups;
    a->cleanups = c;
}

size_t
arena_used(const struct arena *a)
{
    return a->handed_out;
}

void *
xmalloc(size_t size)
{
    void *p = malloc(size == 0 ? 1 : size);

    if (p == NULL)
        fatal("out of memory allocating %zu bytes", size);
    return p;
}

void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);

    if (p == NULL)
        fatal("out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *
xrealloc(void *old, size_t size)
{
    void *p = realloc(old, size == 0 ? 1 : size);

    if (p == NULL)
        fatal("out of memory reallocating %zu bytes", size);
    return p;
}

char *
xstrdup(const char *s)
{
    char *p = strdup(s);

    if (p == NULL)
        fatal("out of memory copying a string");
    return p;
}

char *
xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *out;
    int len;

    va_start(ap, fmt);
    len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        fatal("could not format a string");

    out = xmalloc((size_t)len + 1);
    va_start(ap, fmt);
    vsnprintf(out, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return out;
}
