/*
 * Bearer tokens -> token_verify() (lib/token.c), at a fixed time under
 * the fixed secret, so seeds can be valid tokens (and their mutations
 * near misses).  A token either passes with claims of the expected
 * tenant and a known role, or is a 401 that says nothing more.
 *
 * A mutated token rarely keeps a valid signature, which would leave
 * the checks behind the signature unfuzzed: so the input is also taken
 * as the signed part ("header.payload") and given the signature the
 * fixed secret makes for it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fuzz.h"

/* input + "." + the base64url HMAC-SHA256 of input under the secret. */
static const char *
signed_by_us(struct request *req, const char *input)
{
    const struct token_secret *secret = fuzz_secret();
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    char sig[sodium_base64_ENCODED_LEN(sizeof(mac),
        sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, secret->key, secret->len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)input,
        strlen(input));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2base64(sig, sizeof(sig), mac, sizeof(mac),
        sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return arena_printf(req->arena, "%s.%s", input, sig);
}

static void
check(const char *token, time_t now)
{
    struct token_claims claims;
    struct crewd_error err;

    error_clear(&err);
    memset(&claims, 0, sizeof(claims));
    if (token_verify(fuzz_conf(), fuzz_secret(), token, FUZZ_TENANT_ID,
            now, &claims, &err) == 0) {
        if (err.status != 0 || strcmp(claims.tenant_id, FUZZ_TENANT_ID) ||
            claims.role < ROLE_VIEWER || claims.role > ROLE_ADMIN ||
            claims.expires_at <= (int64_t)now - 60)
            abort();
    } else if (err.status != 401 ||
               strcmp(err.detail, "invalid or expired token") != 0) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct request req;
    const char *token;

    fuzz_request_begin(&req);
    token = fuzz_cstring(&req, data, size);
    check(token, FUZZ_NOW);
    /* A day later no token of ours is valid any more. */
    check(token, FUZZ_NOW + 86400 + 3600);

    token = signed_by_us(&req, token);
    check(token, FUZZ_NOW);
    check(token, FUZZ_NOW + 86400 + 3600);
    fuzz_request_end(&req);
    return 0;
}
