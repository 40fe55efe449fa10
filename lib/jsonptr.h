/*
 * JSON pointers (RFC 6901) for problem reports: a 422 names each problem
 * by the pointer to the value that has it, such as "/nodes/3/id".
 */
#ifndef CREWD_JSONPTR_H
#define CREWD_JSONPTR_H

#include <stddef.h>

#include "arena.h"

/* base + "/" + key, with "~" and "/" of key escaped as "~0" and "~1". */
char *jsonptr_key(struct arena *a, const char *base, const char *key);

/* base + "/" + index, the pointer to an array element. */
char *jsonptr_index(struct arena *a, const char *base, size_t index);

#endif
