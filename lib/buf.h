/*
 * A growable byte buffer, used for response bodies, SQL fragments and
 * anything else built up piece by piece.  The contents are always kept
 * NUL-terminated so they can be handed to C string functions.
 */
#ifndef CREWD_BUF_H
#define CREWD_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
};

#define BUF_INIT { NULL, 0, 0 }

void buf_free(struct buf *b);
void buf_reset(struct buf *b);
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Returns the contents as a C string ("" when empty); owned by b. */
const char *buf_cstr(struct buf *b);

#endif
