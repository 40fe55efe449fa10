/*
 * Access tokens: JWT (RFC 7519) signed with HS256 under a secret of at
 * least 256 bits read from a file, checked as RFC 8725 asks.
 *
 * Claims: iss (configured issuer), aud (the tenant's id), sub (the user's
 * id), role, iat, exp, ver (the user's token version: a password reset or
 * a suspension moves it, which retires every token issued before) and
 * jti.  Verification pins the algorithm (the
 * header must say HS256; "none" and every other algorithm are refused
 * before any key is used), compares the signature in constant time, and
 * requires iss, aud, sub, role, iat and exp with the right types: exp an
 * integer in the future and no further than the configured lifetime (plus
 * a small leeway) after iat; nbf, when present, not in the future.
 */
#ifndef CREWD_TOKEN_H
#define CREWD_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf.h"
#include "error.h"

#define TOKEN_SECRET_MIN_BYTES 32
#define TOKEN_SECRET_MAX_BYTES 512
#define TOKEN_MAX_BYTES 4096

enum role {
    ROLE_NONE = 0,      /* no token needed */
    ROLE_VIEWER,
    ROLE_MEMBER,
    ROLE_ADMIN
};

/* "viewer", "member", "admin" <-> enum role; ROLE_NONE when unknown. */
enum role role_parse(const char *name);
const char *role_name(enum role role);

struct token_secret {
    unsigned char key[TOKEN_SECRET_MAX_BYTES];
    size_t len;
};

/*
 * Loads the secret file: raw bytes, or a line of hex; at least 32 bytes
 * of key.  Refuses a file readable by group or others.  Returns 0 or -1
 * with a message naming the file.
 */
int token_secret_load(struct token_secret *secret, const char *path,
    struct crewd_error *err);

/*
 * Writes a new random 64-byte secret (as hex) to path with mode 0600.
 * Fails if the file exists.
 */
int token_secret_create(const char *path, struct crewd_error *err);

struct token_claims {
    char tenant_id[37];     /* aud */
    char user_id[37];       /* sub */
    enum role role;
    int64_t issued_at;      /* iat */
    int64_t expires_at;     /* exp */
    int64_t version;        /* ver: the user's token_version at issue */
};

/*
 * Signs a token for claims (issued_at and expires_at are filled from now
 * and conf->token_lifetime).  Returns a malloc'd string the caller frees,
 * or NULL with err set.
 */
char *token_issue(const struct crewd_conf *conf,
    const struct token_secret *secret, struct token_claims *claims,
    time_t now, struct crewd_error *err);

/*
 * Verifies token for the tenant expected_tenant_id at time now.  Any
 * failure is a 401 whose detail says nothing about which check failed.
 * Returns 0 and fills claims, or -1.
 */
int token_verify(const struct crewd_conf *conf,
    const struct token_secret *secret, const char *token,
    const char *expected_tenant_id, time_t now, struct token_claims *claims,
    struct crewd_error *err);

#endif
