/*
 * crewd: the FastCGI server of the crewd platform.
 *
 *   crewd [-c FILE]      run (in the foreground; systemd or scripts/dev
 *                        supervises it)
 *   crewd [-c FILE] -t   check the configuration, the token secret and
 *                        the master keys (against the canary in the
 *                        database)
 *
 * A request's walk: nginx -> worker.c (accept, read) -> routes.c (the
 * route table) -> tenant_reset.c (tenant, transaction, search path) ->
 * handlers/ (one handler) -> request.c (the one response) -> commit.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "conf.h"
#include "log.h"
#include "master.h"
#include "migrate.h"
#include "seal.h"
#include "token.h"

/*
 * Seconds crewd waits at start for the database to check the master keys:
 * enough for a PostgreSQL started at the same time to come up.
 */
#define KEY_CHECK_WAIT 30

static void
usage(FILE *out)
{
    fprintf(out,
        "usage: crewd [-c FILE] [-t]\n"
        "  -c FILE  configuration file (default %s)\n"
        "  -t       check the configuration and the keys, and exit\n"
        "  -V       print the version\n", conf_default_path());
}

static int
platform_check(const struct crewd_conf *conf, struct crewd_error *err)
{
    struct db db;
    int rc;

    memset(&db, 0, sizeof(db));
    rc = db_open(&db, conf->database_url, false, err);
    if (rc == 0)
        rc = migrate_check_platform(&db, conf->isolation, err);
    db_close(&db);
    return rc;
}

int
main(int argc, char **argv)
{
    const char *conf_path = conf_default_path();
    struct crewd_conf conf;
    struct crewd_error err;
    struct token_secret secret;
    struct seal_keyring keyring;
    bool check_only = false;
    bool socket_owned;
    int listen_fd;
    int opt;

    while ((opt = getopt(argc, argv, "c:thV")) != -1) {
        switch (opt) {
        case 'c':
            conf_path = optarg;
            break;
        case 't':
            check_only = true;
            break;
        case 'V':
            printf("crewd %s\n", PACKAGE_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    log_init("crewd", LOG_INFO);
    if (sodium_init() < 0) {
        log_error("could not initialise libsodium");
        return 1;
    }

    conf_defaults(&conf);
    error_clear(&err);
    if (conf_load(&conf, conf_path, &err) < 0) {
        log_error("%s", err.detail);
        return 1;
    }
    log_set_level((enum log_level)conf.log_level);

    /* Refuse to start with a secret we could not sign tokens with. */
    if (token_secret_load(&secret, conf.token_secret_file, &err) < 0) {
        log_error("%s", err.detail);
        return 1;
    }
    sodium_memzero(&secret, sizeof(secret));

    /*
     * Refuse to start with master keys that do not open the canary: a
     * wrong key file would seal new credentials under a key the stored
     * ones do not know.  The workers inherit the keyring installed here.
     */
    if (seal_keyring_load_checked(&keyring, &conf,
            check_only ? 0 : KEY_CHECK_WAIT, &err) < 0) {
        log_error("%s", err.detail);
        return 1;
    }
    if (!check_only)
        log_info("sealing credentials with master key %s (%s); %d key(s) "
            "configured", keyring.keys[0].id_text, keyring.keys[0].path,
            keyring.count);
    seal_process_install(&keyring);
    seal_keyring_wipe(&keyring);

    /* The database must be set up for the isolation we are told to use. */
    if (platform_check(&conf, &err) < 0) {
        log_error("%s", err.detail);
        return 1;
    }

    if (check_only) {
        printf("crewd: configuration %s is valid\n", conf_path);
        return 0;
    }

    listen_fd = master_listen(&conf, &socket_owned, &err);
    if (listen_fd < 0) {
        log_error("%s", err.detail);
        return 1;
    }
    return master_run(conf_path, &conf, listen_fd, socket_owned);
}
