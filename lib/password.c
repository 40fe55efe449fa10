#include "config.h"

#include <stdbool.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "password.h"

_Static_assert(crypto_pwhash_STRBYTES == 128,
    "password.h promises 128-byte hash strings");

/* Bytes of the random password behind the dummy hash. */
#define DUMMY_PASSWORD_BYTES 32

/*
 * A hash of a password nobody knows, with the configured parameters.
 * Checking against it costs what checking a real hash costs, so a login
 * for an unknown user or a broken stored hash takes as long as a wrong
 * password.
 */
static char dummy_hash[crypto_pwhash_STRBYTES];

/* The parameters of dummy_hash, to tell a malformed stored hash. */
static unsigned long long dummy_ops_limit;
static size_t dummy_mem_limit;

int
password_init(const struct crewd_conf *conf, struct crewd_error *err)
{
    unsigned char random_password[DUMMY_PASSWORD_BYTES];
    int rc;

    if (sodium_init() < 0)
        return error_set(err, 500, "cannot initialise libsodium");

    randombytes_buf(random_password, sizeof(random_password));
    rc = crypto_pwhash_str_alg(dummy_hash, (const char *)random_password,
        sizeof(random_password), conf->password_ops_limit,
        conf->password_mem_limit, crypto_pwhash_ALG_ARGON2ID13);
    sodium_memzero(random_password, sizeof(random_password));

    if (rc != 0) {
        dummy_hash[0] = '\0';
        return error_set(err, 500, "cannot hash a password with ops limit "
            "%llu and memory limit %zu", conf->password_ops_limit,
            conf->password_mem_limit);
    }

    dummy_ops_limit = conf->password_ops_limit;
    dummy_mem_limit = conf->password_mem_limit;
    return 0;
}

int
password_check_policy(const struct crewd_conf *conf, const char *field,
    const char *password, size_t len, struct crewd_error *err)
{
    if (field == NULL)
        field = "password";

    /* First and alone: an oversized password costs no more than this. */
    if (len > conf->password_max_bytes)
        return error_set(err, 400, "%s is longer than %zu bytes", field,
            conf->password_max_bytes);

    /* Hashing takes a length, but C callers further on may not. */
    if (memchr(password, '\0', len) != NULL) {
        error_field(err, field, "must not contain a NUL byte");
        return -1;
    }

    if (len < conf->password_min_bytes) {
        error_field(err, field, "must be at least %zu bytes",
            conf->password_min_bytes);
        return -1;
    }
    return 0;
}

int
password_hash(const struct crewd_conf *conf, const char *password,
    size_t len, char out[128], struct crewd_error *err)
{
    /* The cap again, so no caller can make us hash a huge input. */
    if (len > conf->password_max_bytes)
        return error_set(err, 400, "password is longer than %zu bytes",
            conf->password_max_bytes);

    if (crypto_pwhash_str_alg(out, password, len, conf->password_ops_limit,
            conf->password_mem_limit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
        log_error("crypto_pwhash_str_alg failed (out of memory?)");
        return error_set(err, 500, "cannot hash the password");
    }
    return 0;
}

/*
 * True when hash is a NUL-terminated string libsodium can parse.  It
 * reports a malformed string the same way as a wrong password, but fails
 * it without any hashing; needs_rehash parses without hashing and says
 * -1 only for a string it cannot read.
 */
static bool
hash_well_formed(const char *hash)
{
    if (hash == NULL || strnlen(hash, crypto_pwhash_STRBYTES) >=
            crypto_pwhash_STRBYTES)
        return false;
    return crypto_pwhash_str_needs_rehash(hash, dummy_ops_limit,
        dummy_mem_limit) != -1;
}

bool
password_verify(const char *hash, const char *password, size_t len)
{
    if (password == NULL) {
        password = "";
        len = 0;
    }

    if (!hash_well_formed(hash)) {
        /* The same work as a real check; the answer is no regardless. */
        if (dummy_hash[0] == '\0')
            log_error("password_verify before password_init");
        else if (crypto_pwhash_str_verify(dummy_hash, password, len) == 0)
            log_error("a password matched the dummy hash");
        return false;
    }

    return crypto_pwhash_str_verify(hash, password, len) == 0;
}
