#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "keyfile.h"
#include "log.h"
#include "seal.h"

#define KEY_WHAT "master key file"

/* 64 hex digits and a newline. */
#define KEY_FILE_MAX (2 * SEAL_KEY_BYTES + 1)

/* What a key id is the MAC of (see seal.h). */
#define KEY_ID_LABEL "crewd.master_key_id.v1"

#define PROVIDER_CONTEXT_PREFIX "crewd.llm_provider.v1|"

/* The canary's context and content. */
#define CANARY_CONTEXT "crewd.master_key_canary.v1"
#define CANARY_PLAIN "crewd master key canary"

_Static_assert(sizeof(PROVIDER_CONTEXT_PREFIX) - 1 == 22,
    "SEAL_PROVIDER_AD_LEN counts a 22-byte prefix");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES ==
    SEAL_KEY_BYTES, "master keys are AEAD keys");

static struct seal_keyring process_ring;
static bool process_ring_installed;

static void
key_id(struct seal_key *key)
{
    unsigned char mac[crypto_generichash_BYTES];

    crypto_generichash(mac, sizeof(mac),
        (const unsigned char *)KEY_ID_LABEL, strlen(KEY_ID_LABEL),
        key->key, sizeof(key->key));
    memcpy(key->id, mac, SEAL_KEY_ID_BYTES);
    sodium_bin2hex(key->id_text, sizeof(key->id_text), key->id,
        SEAL_KEY_ID_BYTES);
}

static bool
all_hex(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
              (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

int
seal_key_load(struct seal_key *key, const char *path,
    struct crewd_error *err)
{
    unsigned char data[KEY_FILE_MAX + 1];
    size_t len, text_len;
    int rc;

    sodium_memzero(key, sizeof(*key));
    if (strlen(path) >= sizeof(key->path))
        return error_set(err, 500, "master key file name %s is too long",
            path);

    rc = keyfile_read(path, KEY_WHAT, data, KEY_FILE_MAX, &len, err);
    if (rc == 0) {
        text_len = len > 0 && data[len - 1] == '\n' ? len - 1 : len;
        if (text_len != 2 * SEAL_KEY_BYTES || !all_hex(data, text_len) ||
            sodium_hex2bin(key->key, sizeof(key->key), (const char *)data,
                text_len, NULL, NULL, NULL) != 0)
            rc = error_set(err, 500, "master key file %s must hold 64 hex "
                "digits (32 bytes), as crewctl keys create writes", path);
    }
    sodium_memzero(data, sizeof(data));
    if (rc != 0) {
        sodium_memzero(key, sizeof(*key));
        return -1;
    }

    key_id(key);
    memcpy(key->path, path, strlen(path) + 1);
    return 0;
}

int
seal_key_create(const char *path, struct crewd_error *err)
{
    unsigned char key[SEAL_KEY_BYTES];
    char text[2 * SEAL_KEY_BYTES + 2];
    int rc;

    if (sodium_init() < 0)
        return error_set(err, 500, "cannot initialise libsodium");

    randombytes_buf(key, sizeof(key));
    sodium_bin2hex(text, sizeof(text), key, sizeof(key));
    text[2 * SEAL_KEY_BYTES] = '\n';

    /* Never replaced: every credential sealed under it would be lost. */
    rc = keyfile_create(path, KEY_WHAT, text, 2 * SEAL_KEY_BYTES + 1, err);

    sodium_memzero(key, sizeof(key));
    sodium_memzero(text, sizeof(text));
    return rc;
}

int
seal_keyring_add(struct seal_keyring *ring, const char *path,
    struct crewd_error *err)
{
    struct seal_key key;
    const struct seal_key *same;

    if (ring->count == SEAL_KEYS_MAX)
        return error_set(err, 500, "more than %d master key files are "
            "configured", SEAL_KEYS_MAX);
    if (seal_key_load(&key, path, err) < 0)
        return -1;

    same = seal_keyring_find(ring, key.id);
    if (same != NULL) {
        bool identical = sodium_memcmp(same->key, key.key,
            SEAL_KEY_BYTES) == 0;

        sodium_memzero(&key, sizeof(key));
        if (identical)
            return error_set(err, 500, "master key files %s and %s hold "
                "the same key", same->path, path);
        return error_set(err, 500, "master key files %s and %s have the "
            "same key id %s; make a new key", same->path, path,
            same->id_text);
    }

    ring->keys[ring->count++] = key;
    sodium_memzero(&key, sizeof(key));
    return 0;
}

int
seal_keyring_load(struct seal_keyring *ring, const struct crewd_conf *conf,
    struct crewd_error *err)
{
    const char *p = conf->master_key_previous_files;

    sodium_memzero(ring, sizeof(*ring));
    if (seal_keyring_add(ring, conf->master_key_file, err) < 0)
        return -1;

    /* A comma-separated list; blanks around the names are ignored. */
    while (*p != '\0') {
        char path[CONF_PATH_MAX];
        size_t len;

        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        len = strcspn(p, ",");
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == 0)
            continue;
        if (len >= sizeof(path)) {
            seal_keyring_wipe(ring);
            return error_set(err, 500, "a name in "
                "master_key_previous_files is too long");
        }
        memcpy(path, p, len);
        path[len] = '\0';
        if (seal_keyring_add(ring, path, err) < 0) {
            seal_keyring_wipe(ring);
            return -1;
        }
        p += strcspn(p, ",");
    }
    return 0;
}

const struct seal_key *
seal_keyring_find(const struct seal_keyring *ring,
    const unsigned char id[SEAL_KEY_ID_BYTES])
{
    for (int i = 0; i < ring->count; i++)
        if (memcmp(ring->keys[i].id, id, SEAL_KEY_ID_BYTES) == 0)
            return &ring->keys[i];
    return NULL;
}

bool
seal_keyring_equal(const struct seal_keyring *a,
    const struct seal_keyring *b)
{
    if (a == NULL || b == NULL || a->count != b->count)
        return false;
    for (int i = 0; i < a->count; i++)
        if (sodium_memcmp(a->keys[i].key, b->keys[i].key,
                SEAL_KEY_BYTES) != 0)
            return false;
    return true;
}

void
seal_keyring_wipe(struct seal_keyring *ring)
{
    sodium_memzero(ring, sizeof(*ring));
}

size_t
seal_sealed_len(size_t plain_len)
{
    return plain_len + SEAL_OVERHEAD;
}

/*
 * The associated data: the header, then the context.  Binding the header
 * means the version and key id cannot be changed without the value
 * failing to open, whatever key the new id would pick.
 */
static unsigned char *
associated_data(const unsigned char *header, const char *context,
    size_t *len)
{
    size_t clen = strlen(context);
    unsigned char *ad = xmalloc(SEAL_HEADER_BYTES + clen);

    memcpy(ad, header, SEAL_HEADER_BYTES);
    memcpy(ad + SEAL_HEADER_BYTES, context, clen);
    *len = SEAL_HEADER_BYTES + clen;
    return ad;
}

void
seal_seal(const struct seal_key *key, const char *context,
    const unsigned char *plain, size_t plain_len, unsigned char *out)
{
    unsigned char *nonce = out + SEAL_HEADER_BYTES;
    unsigned char *cipher = nonce + SEAL_NONCE_BYTES;
    unsigned char *ad;
    size_t ad_len;

    out[0] = SEAL_VERSION;
    memcpy(out + 1, key->id, SEAL_KEY_ID_BYTES);

    /* 192-bit random nonces: no counter to keep, no collision to fear. */
    randombytes_buf(nonce, SEAL_NONCE_BYTES);

    ad = associated_data(out, context, &ad_len);
    crypto_aead_xchacha20poly1305_ietf_encrypt(cipher, NULL, plain,
        plain_len, ad, ad_len, NULL, nonce, key->key);
    free(ad);
}

bool
seal_key_id_of(const unsigned char *sealed, size_t len,
    char out[SEAL_KEY_ID_TEXT_LEN + 1])
{
    if (len < SEAL_OVERHEAD || sealed[0] != SEAL_VERSION)
        return false;
    sodium_bin2hex(out, SEAL_KEY_ID_TEXT_LEN + 1, sealed + 1,
        SEAL_KEY_ID_BYTES);
    return true;
}

int
seal_open(const struct seal_keyring *ring, const char *context,
    const unsigned char *sealed, size_t len, unsigned char *plain,
    size_t *plain_len, const struct seal_key **used,
    struct crewd_error *err)
{
    char id_text[SEAL_KEY_ID_TEXT_LEN + 1];
    const struct seal_key *key;
    unsigned char *ad;
    size_t ad_len;
    unsigned long long n;
    int rc;

    if (used != NULL)
        *used = NULL;
    *plain_len = 0;
    if (!seal_key_id_of(sealed, len, id_text))
        return error_set(err, 500, "not a sealed value of format %d",
            SEAL_VERSION);

    key = seal_keyring_find(ring, sealed + 1);
    if (key == NULL)
        return error_set(err, 500, "sealed under key id %s, which no "
            "configured master key file holds", id_text);

    ad = associated_data(sealed, context, &ad_len);
    rc = crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &n, NULL,
        sealed + SEAL_HEADER_BYTES + SEAL_NONCE_BYTES,
        len - SEAL_HEADER_BYTES - SEAL_NONCE_BYTES, ad, ad_len,
        sealed + SEAL_HEADER_BYTES, key->key);
    free(ad);
    if (rc != 0)
        return error_set(err, 500, "does not open under key id %s (master "
            "key file %s): damaged, or sealed for another row", id_text,
            key->path);

    *plain_len = (size_t)n;
    if (used != NULL)
        *used = key;
    return 0;
}

void
seal_provider_context(char out[SEAL_PROVIDER_AD_LEN + 1],
    const char *tenant_id, const char *provider_id)
{
    snprintf(out, SEAL_PROVIDER_AD_LEN + 1, "%s%.36s|%.36s",
        PROVIDER_CONTEXT_PREFIX, tenant_id, provider_id);
}

void
seal_bytea_text(const unsigned char *bytes, size_t len, char *out)
{
    out[0] = '\\';
    out[1] = 'x';
    sodium_bin2hex(out + 2, 2 * len + 1, bytes, len);
}

unsigned char *
seal_bytea_parse(const char *text, size_t *len)
{
    size_t hex_len;
    unsigned char *out;

    *len = 0;
    if (text == NULL || text[0] != '\\' || text[1] != 'x')
        return NULL;
    hex_len = strlen(text + 2);
    if (hex_len % 2 != 0)
        return NULL;
    out = xmalloc(hex_len / 2 + 1);
    if (sodium_hex2bin(out, hex_len / 2 + 1, text + 2, hex_len, NULL, len,
            NULL) != 0 || *len != hex_len / 2) {
        free(out);
        *len = 0;
        return NULL;
    }
    return out;
}

/* The key files of ring, for a message: "a (previous: b, c)". */
static void
ring_files(const struct seal_keyring *ring, char *out, size_t size)
{
    size_t used = 0;

    out[0] = '\0';
    for (int i = 0; i < ring->count && used < size; i++) {
        int n = snprintf(out + used, size - used, "%s%s",
            i == 0 ? "" : i == 1 ? ", previous: " : ", ",
            ring->keys[i].path);

        if (n < 0)
            break;
        used += (size_t)n;
    }
}

int
seal_canary_check(struct db *db, const struct seal_keyring *ring,
    const struct seal_key **used, struct crewd_error *err)
{
    char files[ERROR_DETAIL_MAX];
    char id_text[SEAL_KEY_ID_TEXT_LEN + 1];
    struct crewd_error why;
    const struct seal_key *holder;
    unsigned char *sealed;
    unsigned char plain[64];
    size_t len, plain_len;
    PGresult *res;
    int rc;

    *used = NULL;
    if (ring->count == 0)
        return error_set(err, 500, "no master key is loaded");

    res = db_exec(db, NULL, err,
        "SELECT sealed FROM public.master_key_canary", 0, NULL);
    if (res == NULL) {
        if (strcmp(err->sqlstate, "42P01") == 0)
            return error_set(err, 500, "the database has no master key "
                "canary table: run crewctl db migrate, then crewctl keys "
                "create");
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return error_set(err, 500, "the database has no master key "
            "canary: run crewctl keys create");
    }
    sealed = seal_bytea_parse(PQgetvalue(res, 0, 0), &len);
    PQclear(res);

    ring_files(ring, files, sizeof(files));
    if (sealed == NULL || !seal_key_id_of(sealed, len, id_text) ||
        len - SEAL_OVERHEAD > sizeof(plain)) {
        free(sealed);
        return error_set(err, 500, "the master key canary in the database "
            "is damaged; run crewctl keys check");
    }

    holder = seal_keyring_find(ring, sealed + 1);
    error_clear(&why);
    rc = seal_open(ring, CANARY_CONTEXT, sealed, len, plain, &plain_len,
        used, &why);
    free(sealed);
    if (rc == 0 && (plain_len != strlen(CANARY_PLAIN) ||
                    memcmp(plain, CANARY_PLAIN, plain_len) != 0))
        rc = -1;
    sodium_memzero(plain, sizeof(plain));
    if (rc == 0)
        return 0;

    *used = NULL;
    if (holder == NULL)
        return error_set(err, 500, "master key file %s (key id %s) is "
            "wrong: the data was sealed under key id %s, which no "
            "configured key file holds (tried %s)", ring->keys[0].path,
            ring->keys[0].id_text, id_text, files);
    return error_set(err, 500, "master key file %s (key id %s) does not "
        "open the master key canary: the file or the canary is damaged",
        holder->path, id_text);
}

int
seal_canary_write(struct db *db, const struct seal_key *key, bool replace,
    struct crewd_error *err)
{
    size_t len = seal_sealed_len(strlen(CANARY_PLAIN));
    unsigned char sealed[SEAL_OVERHEAD + sizeof(CANARY_PLAIN)];
    char text[2 * sizeof(sealed) + 3];
    const char *params[1] = { text };
    PGresult *res;
    int written;

    seal_seal(key, CANARY_CONTEXT, (const unsigned char *)CANARY_PLAIN,
        strlen(CANARY_PLAIN), sealed);
    seal_bytea_text(sealed, len, text);

    res = db_exec(db, NULL, err, replace
        ? "INSERT INTO public.master_key_canary (singleton, sealed)"
          " VALUES (true, $1) ON CONFLICT (singleton) DO UPDATE"
          " SET sealed = excluded.sealed, updated_at = now()"
        : "INSERT INTO public.master_key_canary (singleton, sealed)"
          " VALUES (true, $1) ON CONFLICT (singleton) DO NOTHING",
        1, params);
    if (res == NULL) {
        if (strcmp(err->sqlstate, "42P01") == 0)
            return error_set(err, 500, "the database has no master key "
                "canary table: run crewctl db migrate first");
        return -1;
    }
    written = atoi(PQcmdTuples(res)) > 0 ? 1 : 0;
    PQclear(res);
    return written;
}

int
seal_keyring_load_checked(struct seal_keyring *ring,
    const struct crewd_conf *conf, int wait_seconds,
    struct crewd_error *err)
{
    const struct seal_key *used;
    struct db db;
    time_t deadline = time(NULL) + wait_seconds;
    bool told = false;
    int rc;

    if (seal_keyring_load(ring, conf, err) < 0)
        return -1;

    for (;;) {
        memset(&db, 0, sizeof(db));
        error_clear(err);
        if (db_open(&db, conf->database_url, false, err) == 0)
            break;
        db_close(&db);
        if (time(NULL) >= deadline) {
            seal_keyring_wipe(ring);
            return error_set(err, 503, "cannot check the master key: the "
                "database does not answer");
        }
        if (!told) {
            log_warn("waiting up to %d s for the database to check the "
                "master key", wait_seconds);
            told = true;
        }
        sleep(1);
    }

    rc = seal_canary_check(&db, ring, &used, err);
    db_close(&db);
    if (rc < 0) {
        seal_keyring_wipe(ring);
        return -1;
    }
    if (used != &ring->keys[0])
        log_info("the master key canary opens with previous key %s (%s); "
            "run crewctl keys rotate to finish a rotation", used->id_text,
            used->path);
    return 0;
}

void
seal_process_install(const struct seal_keyring *ring)
{
    seal_keyring_wipe(&process_ring);
    process_ring_installed = ring != NULL;
    if (ring != NULL)
        process_ring = *ring;
}

const struct seal_keyring *
seal_process_keyring(void)
{
    return process_ring_installed ? &process_ring : NULL;
}
