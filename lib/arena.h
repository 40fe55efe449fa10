/*
 * Per-request memory.
 *
 * Everything a request allocates comes from one arena and dies with it:
 * arena_reset() after the response releases every block at once and runs
 * the cleanups registered for foreign objects (PGresult, json_object).
 * The first block is kept across resets so a typical request allocates
 * nothing from malloc after warm-up.
 *
 * Out of memory is fatal everywhere in crewd (see xmalloc): the worker logs
 * and exits, and the master replaces it.
 */
#ifndef CREWD_ARENA_H
#define CREWD_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct arena;

typedef void (*arena_cleanup_fn)(void *object);

/* Returns a new arena; never NULL. */
struct arena *arena_new(size_t first_block_size);

/* Releases all blocks and runs the cleanups; accepts NULL. */
void arena_free(struct arena *a);

/* Runs the cleanups in reverse order and forgets every allocation. */
void arena_reset(struct arena *a);

/* Memory aligned for any type, valid until the next reset. */
void *arena_alloc(struct arena *a, size_t size);
void *arena_zalloc(struct arena *a, size_t size);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *arena_vprintf(struct arena *a, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/*
 * Runs fn(object) at the next reset or free.  A NULL object registers
 * nothing, so callers can pass a result straight through.
 */
void arena_defer(struct arena *a, arena_cleanup_fn fn, void *object);

/* Bytes handed out since the last reset (for tests and metrics). */
size_t arena_used(const struct arena *a);

/* malloc family that never returns NULL: out of memory ends the process. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#endif
