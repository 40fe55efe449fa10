#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <jwt.h>
#include <sodium.h>

#include "arena.h"
#include "keyfile.h"
#include "log.h"
#include "token.h"
#include "uuid.h"

/* Seconds of clock skew tolerated between this host and the issuer. */
#define CLOCK_LEEWAY 60

/* An HMAC-SHA256 tag and its unpadded base64url length. */
#define MAC_BYTES crypto_auth_hmacsha256_BYTES
#define MAC_TEXT_LEN 43

/* The largest secret file: hex of the largest key and a newline. */
#define SECRET_FILE_MAX (2 * TOKEN_SECRET_MAX_BYTES + 1)

/* The size of a secret made by token_secret_create. */
#define SECRET_CREATE_BYTES 64

/* Our tokens are flat objects; deeper nesting is refused outright. */
#define TOKEN_JSON_DEPTH 8

/* The one detail for every refusal: a client learns nothing from it. */
#define TOKEN_REFUSED "invalid or expired token"

_Static_assert(MAC_BYTES == 32, "HS256 tags are 32 bytes");

static const char *const role_names[] = {
    [ROLE_VIEWER] = "viewer",
    [ROLE_MEMBER] = "member",
    [ROLE_ADMIN] = "admin",
};

enum role
role_parse(const char *name)
{
    if (name == NULL)
        return ROLE_NONE;

    for (int r = ROLE_VIEWER; r <= ROLE_ADMIN; r++)
        if (strcmp(name, role_names[r]) == 0)
            return (enum role)r;
    return ROLE_NONE;
}

const char *
role_name(enum role role)
{
    /* Never NULL, so a caller can print whatever it holds. */
    if (role < ROLE_VIEWER || role > ROLE_ADMIN)
        return "none";
    return role_names[role];
}

static bool
is_hex_digit(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
        (c >= 'A' && c <= 'F');
}

static bool
all_hex(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_hex_digit(s[i]))
            return false;
    return true;
}

/*
 * Turns the file's bytes into a key.  Text that is nothing but hex digits
 * (and a newline) is taken as hex; anything else as raw bytes.  A file of
 * hex digits too short to be a hex secret is refused rather than taken as
 * raw bytes: 32 hex characters are only 128 bits of key, however many
 * bytes they fill.  Random raw bytes are all hex digits with probability
 * (22/256)^32, so the guess does not misread a real raw key.
 */
static int
decode_secret(struct token_secret *secret, const unsigned char *data,
    size_t len, const char *path, struct crewd_error *err)
{
    size_t text_len = len;

    if (text_len > 0 && data[text_len - 1] == '\n')
        text_len--;

    if (text_len > 0 && all_hex(data, text_len)) {
        if (text_len % 2 != 0)
            return error_set(err, 500, "token secret file %s holds an odd "
                "number of hex digits", path);
        if (text_len < 2 * TOKEN_SECRET_MIN_BYTES)
            return error_set(err, 500, "token secret file %s holds %zu "
                "bytes of key in hex; at least %d are needed", path,
                text_len / 2, TOKEN_SECRET_MIN_BYTES);
        if (text_len > 2 * TOKEN_SECRET_MAX_BYTES)
            return error_set(err, 500, "token secret file %s holds more "
                "than %d bytes of key", path, TOKEN_SECRET_MAX_BYTES);
        if (sodium_hex2bin(secret->key, sizeof(secret->key),
                (const char *)data, text_len, NULL, &secret->len,
                NULL) != 0)
            return error_set(err, 500, "token secret file %s: bad hex",
                path);
        return 0;
    }

    if (len < TOKEN_SECRET_MIN_BYTES)
        return error_set(err, 500, "token secret file %s holds %zu bytes; "
            "at least %d are needed", path, len, TOKEN_SECRET_MIN_BYTES);
    if (len > TOKEN_SECRET_MAX_BYTES)
        return error_set(err, 500, "token secret file %s holds more than "
            "%d bytes of key", path, TOKEN_SECRET_MAX_BYTES);
    memcpy(secret->key, data, len);
    secret->len = len;
    return 0;
}

#define SECRET_WHAT "token secret file"

int
token_secret_load(struct token_secret *secret, const char *path,
    struct crewd_error *err)
{
    /* One byte more than a valid file can hold, to notice a longer one. */
    unsigned char data[SECRET_FILE_MAX + 1];
    size_t len;
    int rc;

    sodium_memzero(secret, sizeof(*secret));

    rc = keyfile_read(path, SECRET_WHAT, data, SECRET_FILE_MAX, &len, err);
    if (rc == 0)
        rc = decode_secret(secret, data, len, path, err);

    sodium_memzero(data, sizeof(data));
    if (rc != 0)
        sodium_memzero(secret, sizeof(*secret));
    return rc;
}

int
token_secret_create(const char *path, struct crewd_error *err)
{
    unsigned char key[SECRET_CREATE_BYTES];
    char text[2 * SECRET_CREATE_BYTES + 2];
    int rc;

    /* crewctl may get here without password_init having run. */
    if (sodium_init() < 0)
        return error_set(err, 500, "cannot initialise libsodium");

    randombytes_buf(key, sizeof(key));
    sodium_bin2hex(text, sizeof(text), key, sizeof(key));
    text[2 * SECRET_CREATE_BYTES] = '\n';

    /* An existing secret is never replaced: that would log everybody out. */
    rc = keyfile_create(path, SECRET_WHAT, text, 2 * SECRET_CREATE_BYTES + 1,
        err);

    sodium_memzero(key, sizeof(key));
    sodium_memzero(text, sizeof(text));
    return rc;
}

static bool
secret_usable(const struct token_secret *secret)
{
    /* An unloaded (zeroed) secret would let anyone sign with "". */
    return secret->len >= TOKEN_SECRET_MIN_BYTES &&
        secret->len <= TOKEN_SECRET_MAX_BYTES;
}

/* True when s[0..len) is a UUID already in canonical form. */
static bool
canonical_uuid(const char *s, size_t len)
{
    char canon[UUID_TEXT_LEN + 1];

    return uuid_parse(s, len, canon) && memcmp(canon, s, len) == 0;
}

char *
token_issue(const struct crewd_conf *conf,
    const struct token_secret *secret, struct token_claims *claims,
    time_t now, struct crewd_error *err)
{
    char jti[UUID_TEXT_LEN + 1];
    jwt_t *jwt = NULL;
    char *encoded = NULL, *token;
    long iat, exp;
    int rc;

    /* A token we would refuse to verify is our bug, not the client's. */
    if (!canonical_uuid(claims->tenant_id,
            strnlen(claims->tenant_id, sizeof(claims->tenant_id))) ||
        !canonical_uuid(claims->user_id,
            strnlen(claims->user_id, sizeof(claims->user_id))) ||
        claims->role < ROLE_VIEWER || claims->role > ROLE_ADMIN) {
        log_error("token_issue: claims are not canonical ids and a role");
        error_set(err, 500, "cannot issue a token");
        return NULL;
    }

    if (!secret_usable(secret)) {
        log_error("token_issue: no token secret loaded");
        error_set(err, 500, "cannot issue a token");
        return NULL;
    }

    /* libjwt takes long; refuse what would wrap on a 32-bit long. */
    if (now < 0 || conf->token_lifetime <= 0 ||
        (long long)now > LONG_MAX - conf->token_lifetime) {
        log_error("token_issue: time %lld or lifetime %d out of range",
            (long long)now, conf->token_lifetime);
        error_set(err, 500, "cannot issue a token");
        return NULL;
    }

    iat = (long)now;
    exp = iat + conf->token_lifetime;
    uuid_generate(jti);

    rc = jwt_new(&jwt);
    if (rc == 0)
        rc = jwt_set_alg(jwt, JWT_ALG_HS256, secret->key, (int)secret->len);
    if (rc == 0)
        rc = jwt_add_grant(jwt, "iss", conf->token_issuer);
    if (rc == 0)
        rc = jwt_add_grant(jwt, "aud", claims->tenant_id);
    if (rc == 0)
        rc = jwt_add_grant(jwt, "sub", claims->user_id);
    if (rc == 0)
        rc = jwt_add_grant(jwt, "role", role_name(claims->role));
    if (rc == 0)
        rc = jwt_add_grant_int(jwt, "ver", (long)claims->version);
    if (rc == 0)
        rc = jwt_add_grant_int(jwt, "iat", iat);
    if (rc == 0)
        rc = jwt_add_grant_int(jwt, "exp", exp);
    if (rc == 0)
        rc = jwt_add_grant(jwt, "jti", jti);
    if (rc == 0) {
        errno = 0;
        encoded = jwt_encode_str(jwt);
        if (encoded == NULL)
            rc = errno != 0 ? errno : EINVAL;
    }

    /* jwt_free scrubs libjwt's copy of the key. */
    jwt_free(jwt);

    if (rc != 0) {
        free(encoded);
        log_error("token_issue: libjwt failed: %s", strerror(rc));
        error_set(err, 500, "cannot issue a token");
        return NULL;
    }

    /* Our own allocation, so the caller's free() matches xmalloc. */
    token = xstrdup(encoded);
    free(encoded);

    claims->issued_at = iat;
    claims->expires_at = exp;
    return token;
}

static bool
is_base64url(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/*
 * Finds the two dots of header.payload.signature.  Refuses anything but
 * base64url characters (no padding, no whitespace, no standard base64),
 * a third dot (JWE has four), and empty segments.
 */
static bool
split_token(const char *token, size_t len, size_t *dot1, size_t *dot2)
{
    size_t dots[2];
    int ndots = 0;

    for (size_t i = 0; i < len; i++) {
        if (token[i] == '.') {
            if (ndots == 2)
                return false;
            dots[ndots++] = i;
        } else if (!is_base64url((unsigned char)token[i])) {
            return false;
        }
    }

    if (ndots != 2 || dots[0] == 0 || dots[1] == dots[0] + 1 ||
        dots[1] + 1 == len)
        return false;

    *dot1 = dots[0];
    *dot2 = dots[1];
    return true;
}

/*
 * Decodes unpadded base64url.  libsodium refuses padding and stray bits
 * in the last character, so each value has exactly one encoding.
 */
static bool
base64url_decode(const char *text, size_t len, unsigned char *out,
    size_t cap, size_t *out_len)
{
    return sodium_base642bin(out, cap, text, len, NULL, out_len, NULL,
        sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0;
}

static bool
next_is_colon(const char *text, size_t len, size_t i)
{
    while (i < len && (text[i] == ' ' || text[i] == '\t' ||
            text[i] == '\n' || text[i] == '\r'))
        i++;
    return i < len && text[i] == ':';
}

/*
 * Counts the member names of the outermost object in valid JSON text.
 * json-c keeps the last of duplicate names silently; comparing this count
 * with the object's length lets us refuse duplicates instead, so no other
 * parser can read a different claim out of the same token.
 */
static int
count_members(const char *text, size_t len)
{
    bool in_string = false;
    int depth = 0, count = 0;

    for (size_t i = 0; i < len; i++) {
        char c = text[i];

        if (in_string) {
            if (c == '\\') {
                i++;    /* an escaped character never ends the string */
            } else if (c == '"') {
                in_string = false;
                if (depth == 1 && next_is_colon(text, len, i + 1))
                    count++;
            }
            continue;
        }

        if (c == '"')
            in_string = true;
        else if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']')
            depth--;
    }
    return count;
}

/*
 * Parses text[0..len) as one JSON object and nothing else: strict mode,
 * valid UTF-8, no trailing bytes (json-c stops quietly at a NUL), no
 * duplicate member names.  Returns NULL for anything else.
 */
static struct json_object *
parse_object(const char *text, size_t len)
{
    struct json_tokener *tok;
    struct json_object *obj;

    if (len == 0 || len > INT_MAX)
        return NULL;

    tok = json_tokener_new_ex(TOKEN_JSON_DEPTH);
    if (tok == NULL)
        fatal("out of memory creating a JSON tokener");
    json_tokener_set_flags(tok,
        JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);

    obj = json_tokener_parse_ex(tok, text, (int)len);
    if (obj != NULL && (json_tokener_get_parse_end(tok) != len ||
            !json_object_is_type(obj, json_type_object) ||
            count_members(text, len) != json_object_object_length(obj))) {
        json_object_put(obj);
        obj = NULL;
    }

    json_tokener_free(tok);
    return obj;
}

/* Decodes one base64url segment and parses it as a JSON object. */
static struct json_object *
parse_segment(const char *segment, size_t len)
{
    unsigned char text[TOKEN_MAX_BYTES];
    size_t text_len;

    if (!base64url_decode(segment, len, text, sizeof(text), &text_len))
        return NULL;
    return parse_object((const char *)text, text_len);
}

/*
 * Gets a string member.  The length matters: a "\u0000" inside would
 * make strcmp see only a prefix.
 */
static bool
string_member(struct json_object *obj, const char *name, const char **s,
    size_t *len)
{
    struct json_object *v;

    if (!json_object_object_get_ex(obj, name, &v) ||
        !json_object_is_type(v, json_type_string))
        return false;
    *s = json_object_get_string(v);
    *len = (size_t)json_object_get_string_len(v);
    return true;
}

static bool
string_is(const char *s, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(s, want, len) == 0;
}

/*
 * Gets an integer member.  Strings, doubles ("1.0", "1e9"), booleans and
 * null are refused, where libjwt's jwt_get_grant_int would read them as 0.
 */
static bool
int_member(struct json_object *obj, const char *name, int64_t *out)
{
    struct json_object *v;

    if (!json_object_object_get_ex(obj, name, &v) ||
        !json_object_is_type(v, json_type_int))
        return false;
    *out = json_object_get_int64(v);
    return true;
}

/*
 * The header decides nothing: the algorithm is pinned, so it only has to
 * say so.  "none", other HMACs, public-key algorithms and case variants
 * are all refused here, before the key is touched (RFC 8725 3.1).
 */
static const char *
check_header(struct json_object *header)
{
    const char *s;
    size_t len;

    if (!string_member(header, "alg", &s, &len) ||
        !string_is(s, len, "HS256"))
        return "alg is not HS256";

    if (json_object_object_get_ex(header, "typ", NULL) &&
        (!string_member(header, "typ", &s, &len) ||
            !string_is(s, len, "JWT")))
        return "typ is not JWT";

    /* We implement no extensions, so we may not ignore one (RFC 7515). */
    if (json_object_object_get_ex(header, "crit", NULL))
        return "crit header present";

    return NULL;
}

static bool
signature_valid(const struct token_secret *secret, const char *signed_part,
    size_t signed_len, const char *sig_text, size_t sig_len)
{
    crypto_auth_hmacsha256_state state;
    unsigned char mac[MAC_BYTES], expected[MAC_BYTES];
    size_t mac_len;
    bool valid;

    /* 43 characters decode to exactly 32 bytes and nothing else does. */
    if (sig_len != MAC_TEXT_LEN ||
        !base64url_decode(sig_text, sig_len, mac, sizeof(mac), &mac_len) ||
        mac_len != MAC_BYTES)
        return false;

    /* The HMAC over the bytes as received, not as re-encoded. */
    crypto_auth_hmacsha256_init(&state, secret->key, secret->len);
    crypto_auth_hmacsha256_update(&state,
        (const unsigned char *)signed_part, signed_len);
    crypto_auth_hmacsha256_final(&state, expected);
    sodium_memzero(&state, sizeof(state));

    valid = sodium_memcmp(mac, expected, MAC_BYTES) == 0;
    sodium_memzero(expected, sizeof(expected));
    return valid;
}

static const char *
check_times(struct json_object *payload, int64_t lifetime, int64_t now,
    int64_t *iat, int64_t *exp)
{
    int64_t nbf;

    if (!int_member(payload, "iat", iat))
        return "iat missing or not an integer";
    if (!int_member(payload, "exp", exp))
        return "exp missing or not an integer";

    /*
     * Bound exp on both sides first: then exp - lifetime cannot overflow
     * whatever iat holds (json-c clamps huge numbers to INT64_MIN/MAX).
     */
    if (*exp <= now)
        return "expired";
    if (*exp > now + lifetime + CLOCK_LEEWAY)
        return "exp too far in the future";
    if (*iat > now + CLOCK_LEEWAY)
        return "iat in the future";
    if (*iat > *exp)
        return "iat after exp";
    if (*iat < *exp - lifetime)
        return "lifetime longer than configured";

    if (json_object_object_get_ex(payload, "nbf", NULL)) {
        if (!int_member(payload, "nbf", &nbf))
            return "nbf not an integer";
        if (nbf > now + CLOCK_LEEWAY)
            return "nbf in the future";
    }
    return NULL;
}

static const char *
check_claims(struct json_object *payload, const struct crewd_conf *conf,
    const char *expected_tenant_id, int64_t now, struct token_claims *out)
{
    const char *s;
    size_t len;

    if (!string_member(payload, "iss", &s, &len) ||
        !string_is(s, len, conf->token_issuer))
        return "wrong issuer";

    /* A string, never an array: one token, one tenant (RFC 8725 3.9). */
    if (!string_member(payload, "aud", &s, &len) ||
        !string_is(s, len, expected_tenant_id) ||
        len >= sizeof(out->tenant_id))
        return "wrong audience";
    memcpy(out->tenant_id, s, len);
    out->tenant_id[len] = '\0';

    if (!string_member(payload, "sub", &s, &len) ||
        !canonical_uuid(s, len))
        return "sub is not a canonical UUID";
    memcpy(out->user_id, s, len);
    out->user_id[len] = '\0';

    if (!string_member(payload, "role", &s, &len) || strlen(s) != len ||
        (out->role = role_parse(s)) == ROLE_NONE)
        return "unknown role";

    if (!int_member(payload, "ver", &out->version) || out->version < 0)
        return "ver missing or not a non-negative integer";

    return check_times(payload, conf->token_lifetime, now,
        &out->issued_at, &out->expires_at);
}

/* Returns NULL when token is valid, else why not (for the debug log). */
static const char *
check_token(const struct crewd_conf *conf,
    const struct token_secret *secret, const char *token,
    const char *expected_tenant_id, int64_t now, struct token_claims *out)
{
    struct json_object *obj;
    const char *reason;
    size_t len, dot1, dot2;

    if (!secret_usable(secret)) {
        log_error("token_verify: no token secret loaded");
        return "no secret";
    }

    /* Without a tenant to match, aud could not be checked. */
    if (token == NULL || expected_tenant_id == NULL)
        return "no token or no tenant";

    /* Keeps every later bound simple; real clocks are far inside it. */
    if (now < 0 || now > INT64_MAX / 2 || conf->token_lifetime <= 0)
        return "clock or lifetime out of range";

    len = strnlen(token, TOKEN_MAX_BYTES + 1);
    if (len > TOKEN_MAX_BYTES)
        return "too long";

    if (!split_token(token, len, &dot1, &dot2))
        return "not three base64url segments";

    obj = parse_segment(token, dot1);
    if (obj == NULL)
        return "header is not a JSON object";
    reason = check_header(obj);
    json_object_put(obj);
    if (reason != NULL)
        return reason;

    /* Nothing of the payload is read before the signature holds. */
    if (!signature_valid(secret, token, dot2, token + dot2 + 1,
            len - dot2 - 1))
        return "bad signature";

    obj = parse_segment(token + dot1 + 1, dot2 - dot1 - 1);
    if (obj == NULL)
        return "payload is not a JSON object";
    reason = check_claims(obj, conf, expected_tenant_id, now, out);
    json_object_put(obj);
    return reason;
}

int
token_verify(const struct crewd_conf *conf,
    const struct token_secret *secret, const char *token,
    const char *expected_tenant_id, time_t now, struct token_claims *claims,
    struct crewd_error *err)
{
    struct token_claims found;
    const char *reason;

    /*
     * libjwt is not used here: jwt_decode takes the algorithm from the
     * header (so an HS512 or case-varied "hs256" token passes), skips the
     * check entirely without a key, and reads a string or float exp as 0.
     */
    memset(&found, 0, sizeof(found));
    reason = check_token(conf, secret, token, expected_tenant_id,
        (int64_t)now, &found);
    if (reason != NULL) {
        log_debug("token refused: %s", reason);
        return error_set(err, 401, TOKEN_REFUSED);
    }

    *claims = found;
    return 0;
}
