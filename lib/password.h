/*
 * Password hashing with libsodium's Argon2id (crypto_pwhash_str).
 * Parameters come from the configuration.  The byte cap is checked before
 * any hashing, so an oversized password costs nothing.
 */
#ifndef CREWD_PASSWORD_H
#define CREWD_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"
#include "error.h"

/* Must be called once per process before hashing (sodium_init). */
int password_init(const struct crewd_conf *conf, struct crewd_error *err);

/*
 * Checks a new password: over password_max_bytes is a 400 (checked
 * first, before any other work); a NUL byte or fewer than
 * password_min_bytes is a 422 on field.  Returns 0 when acceptable.
 */
int password_check_policy(const struct crewd_conf *conf, const char *field,
    const char *password, size_t len, struct crewd_error *err);

/*
 * Hashes into out (crypto_pwhash_STRBYTES bytes, 128).  Returns 0, or -1
 * with a 500 on failure (out of memory inside libsodium).
 */
int password_hash(const struct crewd_conf *conf, const char *password,
    size_t len, char out[128], struct crewd_error *err);

/*
 * True when password matches hash.  It does not cap the length: callers
 * check password_max_bytes first.  With hash NULL (unknown user) it
 * verifies against a dummy hash made by password_init with the same
 * parameters and returns false, so both paths cost the same.
 */
bool password_verify(const char *hash, const char *password, size_t len);

#endif
