/*
 * Sealing secrets (LLM provider credentials) under a master key, with
 * libsodium's XChaCha20-Poly1305 IETF AEAD.
 *
 * Master key files: 32 random bytes as 64 hex digits (and a newline),
 * mode 0600, read with the checks of keyfile.h.  crewd seals with the
 * current key (master_key_file) and opens with whichever configured key
 * (the current one or one of master_key_previous_files) has the id the
 * sealed value names, which is what lets a rotation run while crewd
 * serves.
 *
 * A key's id is the first 4 bytes (8 hex digits) of the BLAKE2b-256 MAC,
 * under the key, of the text "crewd.master_key_id.v1": computed from the
 * key alone, so it needs no storage and cannot disagree with the file,
 * and it tells nothing about the key.  Two configured keys with the same
 * id are refused.
 *
 * A sealed value, stored as bytea:
 *
 *   offset  size  content
 *   0       1     format version, 1
 *   1       4     id of the key that sealed it
 *   5       24    random nonce
 *   29      n+16  ciphertext of the n plaintext bytes, and the tag
 *
 * The associated data is the 5 header bytes followed by a context text
 * that names what the value belongs to: for credentials
 * "crewd.llm_provider.v1|<tenant id>|<provider id>".  A sealed value
 * copied to another row or another tenant does not open.
 *
 * The canary: one value sealed under the master key that sealed the data,
 * kept in public.master_key_canary.  crewd refuses to start when none of
 * its configured keys opens it, naming the key file, so a wrong or
 * replaced key file is noticed before any credential is written under it.
 */
#ifndef CREWD_SEAL_H
#define CREWD_SEAL_H

#include <stdbool.h>
#include <stddef.h>

#include <sodium.h>

#include "conf.h"
#include "db.h"
#include "error.h"

#define SEAL_KEY_BYTES 32
#define SEAL_KEY_ID_BYTES 4
#define SEAL_KEY_ID_TEXT_LEN (2 * SEAL_KEY_ID_BYTES)
#define SEAL_VERSION 1
#define SEAL_HEADER_BYTES (1 + SEAL_KEY_ID_BYTES)
#define SEAL_NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define SEAL_TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define SEAL_OVERHEAD (SEAL_HEADER_BYTES + SEAL_NONCE_BYTES + SEAL_TAG_BYTES)

/* The current key and up to 7 previous ones. */
#define SEAL_KEYS_MAX 8

/* "crewd.llm_provider.v1|" + two UUIDs and a '|'. */
#define SEAL_PROVIDER_AD_LEN (22 + 36 + 1 + 36)

struct seal_key {
    unsigned char key[SEAL_KEY_BYTES];
    unsigned char id[SEAL_KEY_ID_BYTES];
    char id_text[SEAL_KEY_ID_TEXT_LEN + 1];
    char path[CONF_PATH_MAX];
};

struct seal_keyring {
    struct seal_key keys[SEAL_KEYS_MAX];    /* keys[0] seals */
    int count;
};

/* Loads one master key file.  Returns 0, or -1 naming the file. */
int seal_key_load(struct seal_key *key, const char *path,
    struct crewd_error *err);

/* Writes a new random master key to path (mode 0600); never replaces. */
int seal_key_create(const char *path, struct crewd_error *err);

/*
 * Adds the key file at path to ring; the first key added seals.  Refuses
 * a key whose id another key of the ring has (the same file twice, or a
 * collision), and more than SEAL_KEYS_MAX keys.
 */
int seal_keyring_add(struct seal_keyring *ring, const char *path,
    struct crewd_error *err);

/*
 * Loads conf's master_key_file, then each of master_key_previous_files
 * (a comma-separated list).  On failure ring is left empty.
 */
int seal_keyring_load(struct seal_keyring *ring,
    const struct crewd_conf *conf, struct crewd_error *err);

/* The key of ring with this id, or NULL. */
const struct seal_key *seal_keyring_find(const struct seal_keyring *ring,
    const unsigned char id[SEAL_KEY_ID_BYTES]);

/* True when both rings hold the same keys in the same order. */
bool seal_keyring_equal(const struct seal_keyring *a,
    const struct seal_keyring *b);

/* Zeroes every key. */
void seal_keyring_wipe(struct seal_keyring *ring);

/* The size of a sealed value of plain_len bytes. */
size_t seal_sealed_len(size_t plain_len);

/*
 * Seals plain[0..plain_len) under key for context into out, which holds
 * seal_sealed_len(plain_len) bytes.
 */
void seal_seal(const struct seal_key *key, const char *context,
    const unsigned char *plain, size_t plain_len, unsigned char *out);

/*
 * Opens sealed[0..len) for context with the key of ring that sealed it,
 * into plain (len - SEAL_OVERHEAD bytes; *plain_len says how many).
 * *used, when not NULL, is the key that opened it.  Returns 0, or -1
 * with a 500 saying why: not a sealed value, sealed under a key no
 * configured file holds (naming its id), or not opening (damaged, or
 * sealed for another context).  The message never holds a secret.
 */
int seal_open(const struct seal_keyring *ring, const char *context,
    const unsigned char *sealed, size_t len, unsigned char *plain,
    size_t *plain_len, const struct seal_key **used,
    struct crewd_error *err);

/* The key id a sealed value names, as 8 hex digits; false if none. */
bool seal_key_id_of(const unsigned char *sealed, size_t len,
    char out[SEAL_KEY_ID_TEXT_LEN + 1]);

/* The context of a provider's credentials. */
void seal_provider_context(char out[SEAL_PROVIDER_AD_LEN + 1],
    const char *tenant_id, const char *provider_id);

/*
 * bytea as PostgreSQL's text format "\x<hex>": out holds 2 * len + 3
 * bytes.  seal_bytea_parse reads that format into a new malloc'd buffer
 * (the caller frees it); NULL when the text is not in it.
 */
void seal_bytea_text(const unsigned char *bytes, size_t len, char *out);
unsigned char *seal_bytea_parse(const char *text, size_t *len);

/*
 * The canary in public.master_key_canary.  seal_canary_check opens it
 * with ring: 0 when it opens (*used: the key that opened it), -1 with a
 * message naming the key files otherwise, or saying what to run when
 * there is no canary yet.  seal_canary_write seals a fresh one under key,
 * in the caller's transaction if one is open: with replace it takes the
 * place of the one there; without, it is only written when there is none.
 * Returns 1 when written, 0 when one was kept, -1 on error.
 */
int seal_canary_check(struct db *db, const struct seal_keyring *ring,
    const struct seal_key **used, struct crewd_error *err);
int seal_canary_write(struct db *db, const struct seal_key *key,
    bool replace, struct crewd_error *err);

/*
 * What crewd does before it serves: loads the keyring of conf and checks
 * it against the canary.  A database that does not answer is retried
 * once a second for up to wait_seconds.  On failure ring is empty and
 * err names the key file that is wrong.
 */
int seal_keyring_load_checked(struct seal_keyring *ring,
    const struct crewd_conf *conf, int wait_seconds,
    struct crewd_error *err);

/*
 * The keyring of this process.  crewd's master installs it before it
 * forks, so every worker inherits the keys it was started with; a reload
 * installs a fresh one before the next generation is forked.  Installing
 * NULL wipes it.  seal_process_keyring() is NULL when none is installed.
 */
void seal_process_install(const struct seal_keyring *ring);
const struct seal_keyring *seal_process_keyring(void);

#endif
