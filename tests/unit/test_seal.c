#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "conf.h"
#include "seal.h"
#include "unit.h"

#define TENANT "3b3f5cae-e535-4232-ad27-e278b4f8b86c"
#define PROVIDER "18b11f57-8ba3-4cae-9d0a-e8be8d307539"
#define OTHER_ID "2d3cc6ff-24d7-42a9-9b3f-489418005f05"
#define PLAIN "{\"api_key\":\"sk-unit-test-secret\"}"

static struct crewd_error err;

/* A folder of key files, removed with everything in it. */
struct keydir {
    char dir[64];
    char paths[4][128];
};

static void
keydir_open(struct keydir *k)
{
    snprintf(k->dir, sizeof(k->dir), "/tmp/crewd-seal-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(k->dir));
    for (int i = 0; i < 4; i++)
        snprintf(k->paths[i], sizeof(k->paths[i]), "%s/key%d", k->dir, i);
}

static void
keydir_close(struct keydir *k)
{
    for (int i = 0; i < 4; i++)
        unlink(k->paths[i]);
    CU_ASSERT_EQUAL(rmdir(k->dir), 0);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, mode);

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(fchmod(fd, mode) == 0);
    CU_ASSERT_FATAL(write(fd, text, strlen(text)) ==
        (ssize_t)strlen(text));
    close(fd);
}

/* Makes key file i of k with a fresh key and adds it to ring. */
static void
add_new_key(struct seal_keyring *ring, struct keydir *k, int i)
{
    error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(seal_key_create(k->paths[i], &err), 0);
    CU_ASSERT_EQUAL_FATAL(seal_keyring_add(ring, k->paths[i], &err), 0);
}

static unsigned char *
seal_text(const struct seal_key *key, const char *context, const char *text,
    size_t *len)
{
    unsigned char *out;

    *len = seal_sealed_len(strlen(text));
    out = malloc(*len);
    seal_seal(key, context, (const unsigned char *)text, strlen(text), out);
    return out;
}

/* Opens sealed with ring for context; 0 when it opens to PLAIN. */
static int
open_plain(const struct seal_keyring *ring, const char *context,
    const unsigned char *sealed, size_t len, const struct seal_key **used)
{
    unsigned char plain[256];
    size_t plain_len;
    int rc;

    error_clear(&err);
    rc = seal_open(ring, context, sealed, len, plain, &plain_len, used,
        &err);
    if (rc == 0 && (plain_len != strlen(PLAIN) ||
                    memcmp(plain, PLAIN, plain_len) != 0))
        return 1;
    return rc;
}

static void
provider_context(char *out, const char *tenant, const char *provider)
{
    seal_provider_context(out, tenant, provider);
}

static void
test_seal_and_open_round_trip(void)
{
    struct seal_keyring ring = { .count = 0 };
    char context[SEAL_PROVIDER_AD_LEN + 1];
    const struct seal_key *used;
    struct keydir k;
    unsigned char *sealed;
    size_t len;

    keydir_open(&k);
    add_new_key(&ring, &k, 0);
    provider_context(context, TENANT, PROVIDER);
    CU_ASSERT_STRING_EQUAL(context,
        "crewd.llm_provider.v1|" TENANT "|" PROVIDER);

    sealed = seal_text(&ring.keys[0], context, PLAIN, &len);
    CU_ASSERT_EQUAL(len, strlen(PLAIN) + 1 + 4 + 24 + 16);
    CU_ASSERT_EQUAL(sealed[0], SEAL_VERSION);
    CU_ASSERT_EQUAL(memcmp(sealed + 1, ring.keys[0].id, 4), 0);
    CU_ASSERT_PTR_NULL(memmem(sealed, len, "sk-unit", 7));

    CU_ASSERT_EQUAL(open_plain(&ring, context, sealed, len, &used), 0);
    CU_ASSERT_PTR_EQUAL(used, &ring.keys[0]);

    free(sealed);
    seal_keyring_wipe(&ring);
    keydir_close(&k);
}

static void
test_two_seals_of_the_same_text_differ(void)
{
    struct seal_keyring ring = { .count = 0 };
    struct keydir k;
    unsigned char *a, *b;
    size_t alen, blen;

    keydir_open(&k);
    add_new_key(&ring, &k, 0);
    a = seal_text(&ring.keys[0], "ctx", PLAIN, &alen);
    b = seal_text(&ring.keys[0], "ctx", PLAIN, &blen);
    CU_ASSERT_EQUAL(alen, blen);
    CU_ASSERT_NOT_EQUAL(memcmp(a + 5, b + 5, 24), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(a + 29, b + 29, alen - 29), 0);
    free(a);
    free(b);
    seal_keyring_wipe(&ring);
    keydir_close(&k);
}

static void
test_open_with_other_associated_data_fails(void)
{
    struct seal_keyring ring = { .count = 0 };
    char context[SEAL_PROVIDER_AD_LEN + 1];
    char other_row[SEAL_PROVIDER_AD_LEN + 1];
    char other_tenant[SEAL_PROVIDER_AD_LEN + 1];
    const struct seal_key *used;
    struct keydir k;
    unsigned char *sealed;
    size_t len;

    keydir_open(&k);
    add_new_key(&ring, &k, 0);
    provider_context(context, TENANT, PROVIDER);
    provider_context(other_row, TENANT, OTHER_ID);
    provider_context(other_tenant, OTHER_ID, PROVIDER);
    sealed = seal_text(&ring.keys[0], context, PLAIN, &len);

    CU_ASSERT_EQUAL(open_plain(&ring, other_row, sealed, len, &used), -1);
    CU_ASSERT_PTR_NULL(used);
    CU_ASSERT_EQUAL(err.status, 500);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "does not open"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, k.paths[0]));
    CU_ASSERT_PTR_NULL(strstr(err.detail, "sk-unit"));

    CU_ASSERT_EQUAL(open_plain(&ring, other_tenant, sealed, len, &used),
        -1);
    CU_ASSERT_EQUAL(open_plain(&ring, "", sealed, len, &used), -1);
    CU_ASSERT_EQUAL(open_plain(&ring, context, sealed, len, &used), 0);

    free(sealed);
    seal_keyring_wipe(&ring);
    keydir_close(&k);
}

static void
test_open_with_a_wrong_key_fails(void)
{
    struct seal_keyring ring = { .count = 0 };
    struct seal_keyring other = { .count = 0 };
    struct seal_keyring forged;
    struct keydir k;
    unsigned char *sealed;
    size_t len;

    keydir_open(&k);
    add_new_key(&ring, &k, 0);
    add_new_key(&other, &k, 1);
    sealed = seal_text(&ring.keys[0], "ctx", PLAIN, &len);

    /* Another key: its id is not the one the value names. */
    CU_ASSERT_EQUAL(open_plain(&other, "ctx", sealed, len, NULL), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, ring.keys[0].id_text));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "no configured"));

    /* A key that claims the right id but is not the key. */
    forged = ring;
    forged.keys[0].key[0] ^= 1;
    CU_ASSERT_EQUAL(open_plain(&forged, "ctx", sealed, len, NULL), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "does not open"));

    free(sealed);
    seal_keyring_wipe(&forged);
    seal_keyring_wipe(&other);
    seal_keyring_wipe(&ring);
    keydir_close(&k);
}

static void
test_every_tampered_byte_fails(void)
{
    struct seal_keyring ring = { .count = 0 };
    struct keydir k;
    unsigned char *sealed;
    size_t len;
    int opened = 0;

    keydir_open(&k);
    add_new_key(&ring, &k, 0);
    sealed = seal_text(&ring.keys[0], "ctx", PLAIN, &len);

    for (size_t i = 0; i < len; i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            sealed[i] ^= (unsigned char)(1u << bit);
            if (open_plain(&ring, "ctx", sealed, len, NULL) == 0)
                opened++;
            sealed[i] ^= (unsigned char)(1u << bit);
        }
    }
    CU_ASSERT_EQUAL(opened, 0);
    CU_ASSERT_EQUAL(open_plain(&ring, "ctx", sealed, len, NULL), 0);

    free(sealed);
    seal_keyring_wipe(&ring);
    keydir_close(&k);
}

static void
test_truncated_or_extended_values_fail(void)
{
    struct seal_keyring ring = { .count = 0 };
    struct keydir k;
    unsigned char *sealed, *longer;
    size_t len;
    int opened = 0;

    keydir_open(&k);
    add_new_key(&ring, &k, 0);
    sealed = seal_text(&ring.keys[0], "ctx", PLAIN, &len);

    for (size_t n = 0; n < len; n++)
        if (open_plain(&ring, "ctx", sealed, n, NULL) == 0)
            opened++;
    CU_ASSERT_EQUAL(opened, 0);
    CU_ASSERT_EQUAL(open_plain(&ring, "ctx", sealed, 3, NULL), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "not a sealed value"));

    longer = malloc(len + 1);
    memcpy(longer, sealed, len);
    longer[len] = 0;
    CU_ASSERT_EQUAL(open_plain(&ring, "ctx", longer, len + 1, NULL), -1);

    free(longer);
    free(sealed);
    seal_keyring_wipe(&ring);
    keydir_close(&k);
}

static void
test_an_unknown_format_version_fails(void)
{
    struct seal_keyring ring = { .count = 0 };
    char id[SEAL_KEY_ID_TEXT_LEN + 1];
    struct keydir k;
    unsigned char *sealed;
    size_t len;

    keydir_open(&k);
    add_new_key(&ring, &k, 0);
    sealed = seal_text(&ring.keys[0], "ctx", PLAIN, &len);
    CU_ASSERT_TRUE(seal_key_id_of(sealed, len, id));
    CU_ASSERT_STRING_EQUAL(id, ring.keys[0].id_text);

    sealed[0] = 2;
    CU_ASSERT_FALSE(seal_key_id_of(sealed, len, id));
    CU_ASSERT_EQUAL(open_plain(&ring, "ctx", sealed, len, NULL), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "not a sealed value"));

    free(sealed);
    seal_keyring_wipe(&ring);
    keydir_close(&k);
}

static void
test_the_key_is_chosen_by_the_id_in_the_value(void)
{
    struct seal_keyring old_ring = { .count = 0 };
    struct seal_keyring ring = { .count = 0 };
    const struct seal_key *used;
    struct keydir k;
    unsigned char *old_sealed, *new_sealed;
    size_t old_len, new_len;

    /* Before a rotation: key0 seals.  After: key1 seals, key0 opens. */
    keydir_open(&k);
    add_new_key(&old_ring, &k, 0);
    error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(seal_key_create(k.paths[1], &err), 0);
    CU_ASSERT_EQUAL_FATAL(seal_keyring_add(&ring, k.paths[1], &err), 0);
    CU_ASSERT_EQUAL_FATAL(seal_keyring_add(&ring, k.paths[0], &err), 0);
    CU_ASSERT_EQUAL(ring.count, 2);

    old_sealed = seal_text(&old_ring.keys[0], "ctx", PLAIN, &old_len);
    new_sealed = seal_text(&ring.keys[0], "ctx", PLAIN, &new_len);
    CU_ASSERT_EQUAL(memcmp(new_sealed + 1, ring.keys[0].id, 4), 0);
    CU_ASSERT_STRING_EQUAL(ring.keys[1].id_text, old_ring.keys[0].id_text);

    CU_ASSERT_EQUAL(open_plain(&ring, "ctx", old_sealed, old_len, &used),
        0);
    CU_ASSERT_PTR_EQUAL(used, &ring.keys[1]);
    CU_ASSERT_EQUAL(open_plain(&ring, "ctx", new_sealed, new_len, &used),
        0);
    CU_ASSERT_PTR_EQUAL(used, &ring.keys[0]);

    /* The old ring alone cannot open what the new key sealed. */
    CU_ASSERT_EQUAL(open_plain(&old_ring, "ctx", new_sealed, new_len,
        &used), -1);

    free(old_sealed);
    free(new_sealed);
    seal_keyring_wipe(&old_ring);
    seal_keyring_wipe(&ring);
    keydir_close(&k);
}

static void
test_key_id_is_the_documented_mac(void)
{
    struct seal_key key;
    struct keydir k;
    unsigned char mac[32];
    char hex[9];

    keydir_open(&k);
    error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(seal_key_create(k.paths[0], &err), 0);
    CU_ASSERT_EQUAL_FATAL(seal_key_load(&key, k.paths[0], &err), 0);

    crypto_generichash(mac, sizeof(mac),
        (const unsigned char *)"crewd.master_key_id.v1", 22, key.key,
        sizeof(key.key));
    sodium_bin2hex(hex, sizeof(hex), mac, 4);
    CU_ASSERT_STRING_EQUAL(key.id_text, hex);
    CU_ASSERT_EQUAL(memcmp(key.id, mac, 4), 0);
    CU_ASSERT_STRING_EQUAL(key.path, k.paths[0]);

    sodium_memzero(&key, sizeof(key));
    keydir_close(&k);
}

static void
test_key_create_makes_a_0600_hex_file_and_never_replaces_it(void)
{
    struct seal_key first, again;
    struct keydir k;
    struct stat st;
    char text[80];
    FILE *f;
    mode_t old_umask = umask(0);

    keydir_open(&k);
    error_clear(&err);
    CU_ASSERT_EQUAL(seal_key_create(k.paths[0], &err), 0);
    umask(old_umask);
    CU_ASSERT_EQUAL(stat(k.paths[0], &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);

    f = fopen(k.paths[0], "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL(fgets(text, sizeof(text), f));
    fclose(f);
    CU_ASSERT_EQUAL(strlen(text), 65);
    CU_ASSERT_EQUAL(strspn(text, "0123456789abcdef"), 64);

    CU_ASSERT_EQUAL(seal_key_load(&first, k.paths[0], &err), 0);
    CU_ASSERT_EQUAL(seal_key_create(k.paths[0], &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "already exists"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, k.paths[0]));
    CU_ASSERT_EQUAL(seal_key_load(&again, k.paths[0], &err), 0);
    CU_ASSERT_EQUAL(memcmp(first.key, again.key, SEAL_KEY_BYTES), 0);

    sodium_memzero(&first, sizeof(first));
    sodium_memzero(&again, sizeof(again));
    keydir_close(&k);
}

static int
load_text(struct keydir *k, const char *text, mode_t mode)
{
    struct seal_key key;
    int rc;

    unlink(k->paths[0]);
    write_file(k->paths[0], text, mode);
    error_clear(&err);
    rc = seal_key_load(&key, k->paths[0], &err);
    sodium_memzero(&key, sizeof(key));
    return rc;
}

#define HEX64 \
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static void
test_key_file_contents_are_checked(void)
{
    struct keydir k;

    keydir_open(&k);
    CU_ASSERT_EQUAL(load_text(&k, HEX64 "\n", 0600), 0);
    CU_ASSERT_EQUAL(load_text(&k, HEX64, 0600), 0);
    CU_ASSERT_EQUAL(load_text(&k, "00112233445566778899AABBCCDDEEFF"
        "00112233445566778899AABBCCDDEEFF\n", 0600), 0);

    CU_ASSERT_EQUAL(load_text(&k, HEX64 "00\n", 0600), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, k.paths[0]));
    CU_ASSERT_EQUAL(load_text(&k, "0011\n", 0600), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "64 hex digits"));
    CU_ASSERT_EQUAL(load_text(&k, "", 0600), -1);
    CU_ASSERT_EQUAL(load_text(&k, "x0112233445566778899aabbccddeeff"
        "00112233445566778899aabbccddeeff\n", 0600), -1);
    CU_ASSERT_EQUAL(load_text(&k, HEX64 "\n\n", 0600), -1);
    CU_ASSERT_EQUAL(load_text(&k, " " HEX64 "\n", 0600), -1);
    keydir_close(&k);
}

static void
test_key_file_permissions_are_checked(void)
{
    static const mode_t refused[] = { 0640, 0604, 0644, 0660, 0610, 0601 };
    struct seal_key key;
    struct keydir k;

    keydir_open(&k);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        CU_ASSERT_EQUAL(load_text(&k, HEX64 "\n", refused[i]), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "chmod 600"));
        CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "master key file"));
        CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, k.paths[0]));
    }
    CU_ASSERT_EQUAL(load_text(&k, HEX64 "\n", 0400), 0);

    /* Missing, and a folder instead of a file. */
    error_clear(&err);
    CU_ASSERT_EQUAL(seal_key_load(&key, k.paths[1], &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, k.paths[1]));
    CU_ASSERT_EQUAL(mkdir(k.paths[2], 0700), 0);
    error_clear(&err);
    CU_ASSERT_EQUAL(seal_key_load(&key, k.paths[2], &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "not a regular file"));
    CU_ASSERT_EQUAL(rmdir(k.paths[2]), 0);
    keydir_close(&k);
}

static void
test_keyring_refuses_the_same_key_twice(void)
{
    struct seal_keyring ring = { .count = 0 };
    struct keydir k;
    FILE *f;
    char text[80];

    keydir_open(&k);
    add_new_key(&ring, &k, 0);
    error_clear(&err);
    CU_ASSERT_EQUAL(seal_keyring_add(&ring, k.paths[0], &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "the same key"));

    /* A copy of the key under another name is the same key too. */
    f = fopen(k.paths[0], "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL(fgets(text, sizeof(text), f));
    fclose(f);
    write_file(k.paths[1], text, 0600);
    error_clear(&err);
    CU_ASSERT_EQUAL(seal_keyring_add(&ring, k.paths[1], &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, k.paths[1]));
    CU_ASSERT_EQUAL(ring.count, 1);

    seal_keyring_wipe(&ring);
    keydir_close(&k);
}

static void
test_keyring_loads_current_and_previous_files(void)
{
    struct seal_keyring ring, again;
    struct crewd_conf conf;
    struct keydir k;

    keydir_open(&k);
    error_clear(&err);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL_FATAL(seal_key_create(k.paths[i], &err), 0);

    conf_defaults(&conf);
    snprintf(conf.master_key_file, sizeof(conf.master_key_file), "%s",
        k.paths[0]);
    snprintf(conf.master_key_previous_files,
        sizeof(conf.master_key_previous_files), " %s , ,%s ", k.paths[1],
        k.paths[2]);
    CU_ASSERT_EQUAL(seal_keyring_load(&ring, &conf, &err), 0);
    CU_ASSERT_EQUAL(ring.count, 3);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_STRING_EQUAL(ring.keys[i].path, k.paths[i]);

    CU_ASSERT_EQUAL(seal_keyring_load(&again, &conf, &err), 0);
    CU_ASSERT_TRUE(seal_keyring_equal(&ring, &again));
    CU_ASSERT_FALSE(seal_keyring_equal(&ring, NULL));

    /* The current key listed as a previous one too is refused. */
    snprintf(conf.master_key_previous_files,
        sizeof(conf.master_key_previous_files), "%s", k.paths[0]);
    CU_ASSERT_EQUAL(seal_keyring_load(&again, &conf, &err), -1);
    CU_ASSERT_EQUAL(again.count, 0);

    /* A missing previous file fails the whole load. */
    snprintf(conf.master_key_previous_files,
        sizeof(conf.master_key_previous_files), "%s,%s", k.paths[1],
        k.paths[3]);
    error_clear(&err);
    CU_ASSERT_EQUAL(seal_keyring_load(&again, &conf, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, k.paths[3]));
    CU_ASSERT_EQUAL(again.count, 0);

    /* Only the current key. */
    conf.master_key_previous_files[0] = '\0';
    CU_ASSERT_EQUAL(seal_keyring_load(&again, &conf, &err), 0);
    CU_ASSERT_EQUAL(again.count, 1);
    CU_ASSERT_FALSE(seal_keyring_equal(&ring, &again));

    seal_keyring_wipe(&ring);
    seal_keyring_wipe(&again);
    keydir_close(&k);
}

static void
test_bytea_text_round_trip(void)
{
    const unsigned char bytes[] = { 0x01, 0xab, 0x00, 0xff };
    unsigned char *back;
    char text[2 * sizeof(bytes) + 3];
    size_t len;

    seal_bytea_text(bytes, sizeof(bytes), text);
    CU_ASSERT_STRING_EQUAL(text, "\\x01ab00ff");
    back = seal_bytea_parse(text, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT_EQUAL(len, sizeof(bytes));
    CU_ASSERT_EQUAL(memcmp(back, bytes, len), 0);
    free(back);

    CU_ASSERT_PTR_NULL(seal_bytea_parse(NULL, &len));
    CU_ASSERT_PTR_NULL(seal_bytea_parse("01ab", &len));
    CU_ASSERT_PTR_NULL(seal_bytea_parse("\\x01a", &len));
    CU_ASSERT_PTR_NULL(seal_bytea_parse("\\x01zz", &len));
    CU_ASSERT_EQUAL(len, 0);
}

static void
test_process_keyring_install_and_wipe(void)
{
    struct seal_keyring ring = { .count = 0 };
    struct keydir k;

    keydir_open(&k);
    add_new_key(&ring, &k, 0);
    seal_process_install(&ring);
    CU_ASSERT_PTR_NOT_NULL_FATAL(seal_process_keyring());
    CU_ASSERT_TRUE(seal_keyring_equal(seal_process_keyring(), &ring));
    seal_process_install(NULL);
    CU_ASSERT_PTR_NULL(seal_process_keyring());
    seal_keyring_wipe(&ring);
    keydir_close(&k);
}

static void
test_conf_reads_master_key_and_provider_host_keys(void)
{
    struct crewd_conf conf;

    conf_defaults(&conf);
    CU_ASSERT_STRING_EQUAL(conf.master_key_file,
        "/var/lib/crewd/master.key");
    CU_ASSERT_STRING_EQUAL(conf.master_key_previous_files, "");
    CU_ASSERT_STRING_EQUAL(conf.provider_http_hosts, "localhost,127.0.0.1");

    error_clear(&err);
    CU_ASSERT_EQUAL(conf_set(&conf, "provider_http_hosts",
        " Ollama.Internal, ::1,,10.0.0.7 ", &err), 0);
    CU_ASSERT_STRING_EQUAL(conf.provider_http_hosts,
        "ollama.internal,::1,10.0.0.7");
    CU_ASSERT_EQUAL(conf_set(&conf, "provider_http_hosts", "", &err), 0);
    CU_ASSERT_STRING_EQUAL(conf.provider_http_hosts, "");

    CU_ASSERT_EQUAL(conf_set(&conf, "provider_http_hosts",
        "localhost,evil/host", &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "provider_http_hosts"));
    CU_ASSERT_EQUAL(conf_set(&conf, "provider_http_hosts", "a@b", &err),
        -1);

    CU_ASSERT_EQUAL(conf_set(&conf, "master_key_file", "/k/a", &err), 0);
    CU_ASSERT_STRING_EQUAL(conf.master_key_file, "/k/a");
    CU_ASSERT_EQUAL(conf_set(&conf, "master_key_previous_files",
        "/k/b,/k/c", &err), 0);
    CU_ASSERT_STRING_EQUAL(conf.master_key_previous_files, "/k/b,/k/c");
}

void
register_seal_tests(void)
{
    CU_pSuite s = unit_suite("seal");

    unit_test(s, "seal and open round trip", test_seal_and_open_round_trip);
    unit_test(s, "two seals of the same text differ",
        test_two_seals_of_the_same_text_differ);
    unit_test(s, "open with other associated data fails",
        test_open_with_other_associated_data_fails);
    unit_test(s, "open with a wrong key fails",
        test_open_with_a_wrong_key_fails);
    unit_test(s, "every tampered bit fails", test_every_tampered_byte_fails);
    unit_test(s, "truncated or extended values fail",
        test_truncated_or_extended_values_fail);
    unit_test(s, "an unknown format version fails",
        test_an_unknown_format_version_fails);
    unit_test(s, "the key is chosen by the id in the value",
        test_the_key_is_chosen_by_the_id_in_the_value);
    unit_test(s, "key id is the documented MAC",
        test_key_id_is_the_documented_mac);
    unit_test(s, "key create makes a 0600 hex file, never replaces it",
        test_key_create_makes_a_0600_hex_file_and_never_replaces_it);
    unit_test(s, "key file contents are checked",
        test_key_file_contents_are_checked);
    unit_test(s, "key file permissions are checked",
        test_key_file_permissions_are_checked);
    unit_test(s, "keyring refuses the same key twice",
        test_keyring_refuses_the_same_key_twice);
    unit_test(s, "keyring loads current and previous files",
        test_keyring_loads_current_and_previous_files);
    unit_test(s, "bytea text round trip", test_bytea_text_round_trip);
    unit_test(s, "process keyring install and wipe",
        test_process_keyring_install_and_wipe);
    unit_test(s, "conf reads master key and provider host keys",
        test_conf_reads_master_key_and_provider_host_keys);
}
