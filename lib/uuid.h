/*
 * UUIDs as text.  Paths and bodies carry ids that a client typed, so they
 * are parsed strictly and canonicalised (lower-case 8-4-4-4-12) before any
 * lookup: "{...}", urn:uuid:, missing dashes and stray characters are not
 * ids.
 */
#ifndef CREWD_UUID_H
#define CREWD_UUID_H

#include <stdbool.h>
#include <stddef.h>

#define UUID_TEXT_LEN 36

/* The value of one hex digit (either case), or -1. */
int hex_digit_value(char c);

/* Canonicalises s[0..len) into out; false when it is not a UUID. */
bool uuid_parse(const char *s, size_t len, char out[UUID_TEXT_LEN + 1]);

/* A random (version 4) UUID from libsodium's generator. */
void uuid_generate(char out[UUID_TEXT_LEN + 1]);

#endif
