/*
 * crewctl: the operators' tool.
 *
 *   crewctl [-c FILE] secret create
 *   crewctl [-c FILE] db migrate
 *   crewctl [-c FILE] tenant create --name NAME --slug SLUG
 *                     --admin-email EMAIL [--admin-password-file FILE]
 *   crewctl [-c FILE] tenant list
 *   crewctl [-c FILE] tenant delete SLUG [--yes]
 *   crewctl [-c FILE] execution claim --tenant SLUG
 *   crewctl [-c FILE] keys create [--file FILE]
 *   crewctl [-c FILE] keys check
 *   crewctl [-c FILE] keys rotate --new-key FILE
 *   crewctl [-c FILE] mongo status | provision [--tenant SLUG | --all] |
 *                     inspect --tenant SLUG | ttl --tenant SLUG ... |
 *                     drop --tenant-id UUID
 *
 * It reads the same configuration as crewd and works through the same
 * library, so a tenant made here is made exactly as sign-up makes it.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "conf.h"
#include "crewctl.h"
#include "db.h"
#include "executions.h"
#include "fields.h"
#include "log.h"
#include "migrate.h"
#include "mongo.h"
#include "password.h"
#include "provision.h"
#include "seal.h"
#include "tenant.h"
#include "token.h"

#define EXIT_USAGE 2

static struct crewd_conf conf;
static const char *conf_path;

static void
usage(FILE *out)
{
    fprintf(out,
        "usage: crewctl [-c FILE] COMMAND\n"
        "\n"
        "commands:\n"
        "  secret create          make the token secret file (mode 0600)\n"
        "  migrate [--jobs N] [--tenants SLUG,...] [--batch N]\n"
        "          [--to VERSION] [--source DIR]\n"
        "                         bring the public schema, tenant_template\n"
        "                         and every tenant schema (or the listed,\n"
        "                         or the next N) to the newest version (or\n"
        "                         VERSION, down as well as up), N schemas\n"
        "                         at a time; \"db migrate\" is the same\n"
        "  migrate status         how many schemas are at each version\n"
        "  migrate check          each tenant schema's tables, columns,\n"
        "                         indexes, constraints and triggers against\n"
        "                         tenant_template; lists any drift\n"
        "  tenant create --name NAME --slug SLUG --admin-email EMAIL\n"
        "                [--admin-password-file FILE]\n"
        "                         create a tenant and its first admin; a\n"
        "                         password is generated when none is given\n"
        "  tenant list            list the tenants\n"
        "  tenant delete SLUG [--yes]\n"
        "                         delete the tenant, its schema, its role,\n"
        "                         its users and its MongoDB collections;\n"
        "                         asks for the slug again unless --yes\n"
        "  tenant suspend SLUG    its host answers 404; its data is kept\n"
        "  tenant resume SLUG     serve a suspended tenant again\n"
        "  tenant rename-slug SLUG NEW_SLUG\n"
        "                         move the tenant to another host name\n"
        "  tenant backup SLUG FILE\n"
        "                         write the tenant's schema, users and\n"
        "                         MongoDB collections to one archive\n"
        "                         (mode 0600; docs/backup.md)\n"
        "  tenant restore FILE (--slug NEW | --replace)\n"
        "                 [--without-credentials]\n"
        "                         restore an archive as a new tenant NEW,\n"
        "                         or over the tenant it was taken from\n"
        "  execution claim --tenant SLUG\n"
        "                         move the tenant's oldest pending execution\n"
        "                         to running, as a worker does, and print\n"
        "                         its id (nothing when none is pending)\n"
        "  keys create [--file FILE]\n"
        "                         make the master key file (mode 0600) if\n"
        "                         missing; for the configured key, seal the\n"
        "                         canary (or check it opens)\n"
        "  keys check             open every sealed credential of every\n"
        "                         tenant and the canary; print counts\n"
        "  keys rotate --new-key FILE\n"
        "                         re-seal every credential under FILE, the\n"
        "                         configured master_key_file\n"
        "                         (docs/operations.md)\n"
        "  mongo status           whether MongoDB answers, and how many\n"
        "                         tenants still lack their collections\n"
        "  mongo provision [--tenant SLUG | --all]\n"
        "                         make the collections of every tenant\n"
        "                         that lacks them, or again of one tenant\n"
        "                         or of all\n"
        "  mongo inspect --tenant SLUG\n"
        "                         print the tenant's collections as\n"
        "                         MongoDB reports them (JSON)\n"
        "  mongo ttl --tenant SLUG [--execution-logs DAYS]\n"
        "            [--chat-messages DAYS]\n"
        "                         change how long the tenant's logs and\n"
        "                         chat messages are kept\n"
        "  mongo drop --tenant-id UUID\n"
        "                         drop the collections a deleted tenant\n"
        "                         left behind\n"
        "\n"
        "  -c FILE  configuration file (default %s)\n",
        conf_default_path());
}

int
crewctl_usage_error(void)
{
    usage(stderr);
    return EXIT_USAGE;
}

int
crewctl_fail(const struct crewd_error *err)
{
    /* Field problems speak for themselves; the API's lead line does not. */
    if (err->nfields == 0 || err->status != 422)
        fprintf(stderr, "crewctl: %s\n", err->detail);
    for (int i = 0; i < err->nfields; i++)
        fprintf(stderr, "crewctl: %s %s\n", err->fields[i].field + 1,
            err->fields[i].message);
    return 1;
}

int
crewctl_connect(const struct crewd_conf *c, struct db *db,
    struct crewd_error *err)
{
    /* crewctl is the operator: it works as the owner role. */
    memset(db, 0, sizeof(*db));
    db->owner = true;
    if (db_open(db, c->owner_database_url, false, err) < 0) {
        snprintf(err->detail, sizeof(err->detail),
            "could not connect to the database as its owner "
            "(owner_database_url in the configuration)");
        return -1;
    }
    return 0;
}

static int
cmd_secret_create(void)
{
    struct crewd_error err;
    FILE *f;

    error_clear(&err);
    f = fopen(conf.token_secret_file, "r");
    if (f != NULL) {
        fclose(f);
        printf("token secret %s exists; left as it is\n",
            conf.token_secret_file);
        return 0;
    }
    if (token_secret_create(conf.token_secret_file, &err) < 0)
        return crewctl_fail(&err);
    printf("token secret written to %s\n", conf.token_secret_file);
    return 0;
}

static char *
read_password_file(const char *path, struct crewd_error *err)
{
    char buffer[4097];
    size_t n;
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        error_set(err, 0, "could not open %s", path);
        return NULL;
    }
    n = fread(buffer, 1, sizeof(buffer) - 1, f);
    fclose(f);
    buffer[n] = '\0';
    buffer[strcspn(buffer, "\r\n")] = '\0';
    return xstrdup(buffer);
}

/* 18 random bytes as 24 URL-safe characters. */
static char *
generate_password(void)
{
    unsigned char raw[18];
    char *out = xmalloc(sodium_base64_ENCODED_LEN(sizeof(raw),
        sodium_base64_VARIANT_URLSAFE_NO_PADDING));

    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(out, sodium_base64_ENCODED_LEN(sizeof(raw),
        sodium_base64_VARIANT_URLSAFE_NO_PADDING), raw, sizeof(raw),
        sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

static int
cmd_tenant_create(int argc, char **argv)
{
    static const struct field_spec name_spec = {
        "name", FIELD_STRING, FIELD_REQUIRED, TENANT_NAME_MAX, 0, 0, NULL
    };
    static const struct option options[] = {
        { "name", required_argument, NULL, 'n' },
        { "slug", required_argument, NULL, 's' },
        { "admin-email", required_argument, NULL, 'e' },
        { "admin-password-file", required_argument, NULL, 'p' },
        { NULL, 0, NULL, 0 },
    };
    const char *name = NULL, *slug = NULL, *email_arg = NULL;
    const char *password_file = NULL;
    char *password = NULL, *email = NULL;
    bool generated = false;
    struct tenant_signup signup;
    struct tenant tenant;
    struct crewd_error err;
    struct arena *arena = NULL;
    struct mongo *mongo = NULL;
    struct db db;
    char admin_id[UUID_TEXT_LEN + 1];
    char hash[128];
    bool pending = true;
    int opt, rc = 1;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'n': name = optarg; break;
        case 's': slug = optarg; break;
        case 'e': email_arg = optarg; break;
        case 'p': password_file = optarg; break;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (name == NULL || slug == NULL || email_arg == NULL ||
        optind != argc) {
        usage(stderr);
        return EXIT_USAGE;
    }

    error_clear(&err);
    email = xstrdup(email_arg);
    /* The same rules as sign-up's. */
    fields_check_text(&name_spec, name, strlen(name), "/name", &err);
    slug_check(slug, &err);
    email_normalise(email, "/admin-email", &err);
    if (err.status != 0)
        goto out;

    if (password_file != NULL) {
        password = read_password_file(password_file, &err);
        if (password == NULL)
            goto out;
    } else {
        password = generate_password();
        generated = true;
    }
    if (password_init(&conf, &err) < 0 ||
        password_check_policy(&conf, "/admin-password", password,
            strlen(password), &err) < 0 ||
        password_hash(&conf, password, strlen(password), hash, &err) < 0 ||
        (mongo = mongo_connect(conf.mongodb_uri, &err)) == NULL ||
        crewctl_connect(&conf, &db, &err) < 0)
        goto out;

    arena = arena_new(4096);
    signup.name = name;
    signup.slug = slug;
    signup.admin_email = email;
    signup.admin_password_hash = hash;
    signup.ip_address = NULL;
    signup.user_agent = "crewctl";
    rc = tenant_create(&db, mongo, arena, &signup, &tenant, admin_id, &err);
    if (rc == 0)
        provision_pending(&db, arena, tenant.id, &pending, &err);
    db_close(&db);
    if (rc < 0) {
        rc = 1;
        goto out;
    }

    printf("tenant id: %s\n", tenant.id);
    printf("slug: %s\n", tenant.slug);
    printf("schema: %s\n", tenant.schema);
    printf("admin e-mail: %s\n", email);
    printf("mongodb collections: %s\n", pending
        ? "pending (made when MongoDB answers)" : "made");
    if (generated)
        printf("admin password: %s\n", password);
    rc = 0;

out:
    if (rc != 0 && err.detail[0] != '\0')
        crewctl_fail(&err);
    if (password != NULL) {
        sodium_memzero(password, strlen(password));
        free(password);
    }
    free(email);
    arena_free(arena);
    mongo_close(mongo);
    return rc;
}

static int
cmd_tenant_list(void)
{
    struct crewd_error err;
    struct db db;
    PGresult *res;

    error_clear(&err);
    if (crewctl_connect(&conf, &db, &err) < 0)
        return crewctl_fail(&err);
    res = db_exec(&db, NULL, &err,
        "SELECT t.slug, t.id, t.db_schema, t.is_active, t.created_at,"
        " (SELECT count(*) FROM public.users u WHERE u.tenant_id = t.id)"
        " FROM public.tenants t ORDER BY t.slug", 0, NULL);
    if (res == NULL) {
        db_close(&db);
        return crewctl_fail(&err);
    }

    printf("%-24s %-36s %-23s %-6s %5s  %s\n", "SLUG", "ID", "SCHEMA",
        "ACTIVE", "USERS", "CREATED");
    for (int i = 0; i < PQntuples(res); i++)
        printf("%-24s %-36s %-23s %-6s %5s  %s\n", PQgetvalue(res, i, 0),
            PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
            db_bool(res, i, 3) ? "yes" : "no", PQgetvalue(res, i, 5),
            PQgetvalue(res, i, 4));
    PQclear(res);
    db_close(&db);
    return 0;
}

/* crewctl tenant suspend|resume SLUG */
static int
cmd_tenant_set_active(int argc, char **argv, bool active)
{
    struct crewd_error err;
    struct db db;
    int rc;

    if (argc != 2 || argv[1][0] == '-')
        return crewctl_usage_error();
    error_clear(&err);
    if (crewctl_connect(&conf, &db, &err) < 0)
        return crewctl_fail(&err);
    rc = tenant_set_active(&db, argv[1], active, &err);
    db_close(&db);
    if (rc < 0)
        return crewctl_fail(&err);
    printf("tenant %s %s%s\n", argv[1], rc == 0 ? "was already " : "",
        active ? "active" : "suspended: its host answers 404, its data "
        "is kept");
    return 0;
}

/* crewctl tenant rename-slug SLUG NEW_SLUG */
static int
cmd_tenant_rename_slug(int argc, char **argv)
{
    struct crewd_error err;
    struct db db;
    int rc;

    if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '-')
        return crewctl_usage_error();
    error_clear(&err);
    if (crewctl_connect(&conf, &db, &err) < 0)
        return crewctl_fail(&err);
    rc = tenant_rename_slug(&db, argv[1], argv[2], &err);
    db_close(&db);
    if (rc < 0)
        return crewctl_fail(&err);
    printf("tenant %s is now %s\n", argv[1], argv[2]);
    return 0;
}

/*
 * Asks the operator to type the slug again.  Without a terminal nobody
 * can answer, so a script must say --yes instead of piping a slug in.
 */
static bool
confirm_delete(const char *slug)
{
    char line[SLUG_MAX + 3];

    if (!isatty(STDIN_FILENO)) {
        fprintf(stderr, "crewctl: not deleting tenant %s: standard input "
            "is not a terminal; use --yes to delete without asking\n",
            slug);
        return false;
    }

    fprintf(stderr, "This deletes tenant %s with all its data, users and "
        "logs, for good.\nType the slug again to confirm: ", slug);
    fflush(stderr);
    if (fgets(line, sizeof(line), stdin) == NULL)
        line[0] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    if (strcmp(line, slug) != 0) {
        fprintf(stderr, "crewctl: the slug does not match; nothing "
            "deleted\n");
        return false;
    }
    return true;
}

static int
cmd_tenant_delete(int argc, char **argv)
{
    const char *slug = NULL;
    bool yes = false;
    struct crewd_error err, later;
    struct tenant tenant;
    struct arena *arena;
    struct mongo *mongo;
    struct db db;
    long users = 0;
    int rc;

    /*
     * By hand: getopt keeps main's stop-at-the-first-word ordering, and
     * the slug may come before --yes.
     */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--yes") == 0 && !yes)
            yes = true;
        else if (argv[i][0] != '-' && slug == NULL)
            slug = argv[i];
        else
            return crewctl_usage_error();
    }
    if (slug == NULL)
        return crewctl_usage_error();

    if (!yes && !confirm_delete(slug))
        return 1;

    /* An invalid mongodb_uri stops us before anything is deleted. */
    error_clear(&err);
    mongo = mongo_connect(conf.mongodb_uri, &err);
    if (mongo == NULL)
        return crewctl_fail(&err);
    if (crewctl_connect(&conf, &db, &err) < 0) {
        mongo_close(mongo);
        return crewctl_fail(&err);
    }

    arena = arena_new(4096);
    rc = tenant_delete(&db, arena, slug, &tenant, &users, &err);
    db_close(&db);
    arena_free(arena);
    if (rc < 0) {
        mongo_close(mongo);
        return crewctl_fail(&err);
    }

    printf("tenant deleted: %s\n", tenant.slug);
    printf("id: %s\n", tenant.id);
    printf("schema dropped: %s\n", tenant.schema);
    printf("users deleted: %ld\n", users);

    /* Committed: the collections are only leftovers from here on. */
    error_clear(&later);
    if (!mongo_configured(mongo)) {
        printf("mongodb collections: none (MongoDB is not configured)\n");
    } else if (mongo_drop_tenant(mongo, tenant.id, &later) == 0) {
        printf("mongodb collections: dropped\n");
    } else {
        printf("mongodb collections: NOT dropped\n");
        fprintf(stderr, "crewctl: warning: the tenant is deleted, but its "
            "MongoDB collections were not dropped (%s).\n"
            "crewctl: drop them when MongoDB answers with:\n"
            "    crewctl -c %s mongo drop --tenant-id %s\n", later.detail,
            conf_path, tenant.id);
    }
    mongo_close(mongo);
    return 0;
}

/* ---------------------------------------------------------------------
 * Master keys.  Nothing here prints a plaintext: only counts, ids of
 * providers and keys, and key file names.
 * ------------------------------------------------------------------- */

static bool
file_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

/* The configured keys, checked against the canary. */
static int
open_keys(struct seal_keyring *ring, struct db *db, struct crewd_error *err)
{
    const struct seal_key *used;

    if (seal_keyring_load(ring, &conf, err) < 0)
        return -1;
    if (crewctl_connect(&conf, db, err) < 0) {
        seal_keyring_wipe(ring);
        return -1;
    }
    if (seal_canary_check(db, ring, &used, err) < 0) {
        db_close(db);
        seal_keyring_wipe(ring);
        return -1;
    }
    printf("canary: opens with key %s (%s)\n", used->id_text, used->path);
    return 0;
}

static int
cmd_keys_create(int argc, char **argv)
{
    static const struct option options[] = {
        { "file", required_argument, NULL, 'f' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = conf.master_key_file;
    struct seal_keyring ring;
    struct seal_key key;
    struct crewd_error err;
    struct db db;
    int opt, written;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (opt != 'f') {
            usage(stderr);
            return EXIT_USAGE;
        }
        path = optarg;
    }
    if (optind != argc) {
        usage(stderr);
        return EXIT_USAGE;
    }

    error_clear(&err);
    if (file_exists(path)) {
        if (seal_key_load(&key, path, &err) < 0)
            return crewctl_fail(&err);
        printf("master key %s exists; left as it is (key id %s)\n", path,
            key.id_text);
    } else {
        if (seal_key_create(path, &err) < 0 ||
            seal_key_load(&key, path, &err) < 0)
            return crewctl_fail(&err);
        printf("master key written to %s (key id %s)\n", path,
            key.id_text);
    }
    sodium_memzero(&key, sizeof(key));

    /* A new key for a rotation: the database is not its business yet. */
    if (strcmp(path, conf.master_key_file) != 0) {
        printf("not the configured master_key_file: see "
            "docs/operations.md to rotate to it\n");
        return 0;
    }

    if (seal_keyring_load(&ring, &conf, &err) < 0)
        return crewctl_fail(&err);
    if (crewctl_connect(&conf, &db, &err) < 0) {
        seal_keyring_wipe(&ring);
        return crewctl_fail(&err);
    }
    written = seal_canary_write(&db, &ring.keys[0], false, &err);
    if (written > 0) {
        printf("canary: sealed under key %s\n", ring.keys[0].id_text);
    } else if (written == 0) {
        const struct seal_key *used;

        if (seal_canary_check(&db, &ring, &used, &err) == 0)
            printf("canary: opens with key %s (%s)\n", used->id_text,
                used->path);
        else
            written = -1;
    }
    db_close(&db);
    seal_keyring_wipe(&ring);
    return written < 0 ? crewctl_fail(&err) : 0;
}

/* What one walk over the tenants' credentials found. */
struct key_counts {
    int tenants;
    int tenants_failed;     /* a database error: nothing of it changed */
    int credentials;
    int opened;
    int failed;             /* did not open */
    int current;            /* under the key that seals (ring->keys[0]) */
    int resealed;
};

/*
 * One tenant, in one transaction: every provider with credentials is
 * opened; with reseal, the ones not under the sealing key are sealed
 * again under it.  Rows are locked (FOR UPDATE), so a concurrent change
 * by crewd waits or is waited for, and is never lost.
 */
static int
walk_tenant(struct db *db, const struct seal_keyring *ring,
    const char *tenant_id, const char *schema, bool reseal,
    struct key_counts *c, struct crewd_error *err)
{
    const char *path_params[1] = { schema };
    const struct seal_key *seal_key = &ring->keys[0];
    PGresult *res;
    int rows;

    if (db_begin(db, err) < 0)
        return -1;
    if (db_run(db, err, "SELECT set_config('search_path', $1, true)", 1,
            path_params) < 0)
        goto fail;
    res = db_exec(db, NULL, err, reseal
        ? "SELECT id, encrypted_credentials FROM llm_providers"
          " WHERE encrypted_credentials IS NOT NULL ORDER BY id FOR UPDATE"
        : "SELECT id, encrypted_credentials FROM llm_providers"
          " WHERE encrypted_credentials IS NOT NULL ORDER BY id", 0, NULL);
    if (res == NULL)
        goto fail;

    rows = PQntuples(res);
    for (int i = 0; i < rows; i++) {
        const char *id = PQgetvalue(res, i, 0);
        char context[SEAL_PROVIDER_AD_LEN + 1];
        const struct seal_key *used;
        struct crewd_error why;
        unsigned char *sealed, *plain, *fresh;
        size_t len, plain_len;

        c->credentials++;
        seal_provider_context(context, tenant_id, id);
        sealed = seal_bytea_parse(PQgetvalue(res, i, 1), &len);
        if (sealed == NULL || len < SEAL_OVERHEAD) {
            printf("  provider %s: not a sealed value\n", id);
            c->failed++;
            free(sealed);
            continue;
        }

        error_clear(&why);
        plain = xmalloc(len - SEAL_OVERHEAD + 1);
        if (seal_open(ring, context, sealed, len, plain, &plain_len, &used,
                &why) < 0) {
            printf("  provider %s: %s\n", id, why.detail);
            c->failed++;
            free(plain);
            free(sealed);
            continue;
        }
        c->opened++;

        if (used == seal_key) {
            c->current++;
        } else if (reseal) {
            size_t fresh_len = seal_sealed_len(plain_len);
            char *text = xmalloc(2 * fresh_len + 3);
            const char *params[2] = { id, text };

            fresh = xmalloc(fresh_len);
            seal_seal(seal_key, context, plain, plain_len, fresh);
            seal_bytea_text(fresh, fresh_len, text);
            free(fresh);

            /* Not updated_at: what a client sees has not changed. */
            if (db_run(db, err, "UPDATE llm_providers"
                    " SET encrypted_credentials = $2 WHERE id = $1", 2,
                    params) < 0) {
                free(text);
                sodium_memzero(plain, plain_len);
                free(plain);
                free(sealed);
                PQclear(res);
                goto fail;
            }
            free(text);
            c->resealed++;
            c->current++;
        }
        sodium_memzero(plain, plain_len);
        free(plain);
        free(sealed);
    }
    PQclear(res);
    return db_commit(db, err);

fail:
    db_rollback(db);
    return -1;
}

/* Walks every tenant, each in its own transaction; prints a line each. */
static void
walk_tenants(struct db *db, const struct seal_keyring *ring, bool reseal,
    struct key_counts *total)
{
    struct crewd_error err;
    PGresult *res;

    memset(total, 0, sizeof(*total));
    error_clear(&err);
    res = db_exec(db, NULL, &err, "SELECT id, slug, db_schema FROM"
        " public.tenants ORDER BY slug", 0, NULL);
    if (res == NULL) {
        printf("could not list the tenants: %s\n", err.detail);
        total->tenants_failed++;
        return;
    }

    for (int i = 0; i < PQntuples(res); i++) {
        const char *slug = PQgetvalue(res, i, 1);
        const char *schema = PQgetvalue(res, i, 2);
        struct key_counts c;

        memset(&c, 0, sizeof(c));
        total->tenants++;
        error_clear(&err);
        if (!tenant_schema_name_valid(schema) ||
            walk_tenant(db, ring, PQgetvalue(res, i, 0), schema, reseal,
                &c, &err) < 0) {
            printf("%-24s FAILED: %s\n", slug, err.status != 0
                ? err.detail : "not a tenant schema name");
            total->tenants_failed++;
            continue;
        }

        if (reseal)
            printf("%-24s credentials=%d resealed=%d failed=%d\n", slug,
                c.credentials, c.resealed, c.failed);
        else
            printf("%-24s credentials=%d open=%d failed=%d "
                "current_key=%d\n", slug, c.credentials, c.opened,
                c.failed, c.current);
        total->credentials += c.credentials;
        total->opened += c.opened;
        total->failed += c.failed;
        total->current += c.current;
        total->resealed += c.resealed;
    }
    PQclear(res);
}

static int
cmd_keys_check(void)
{
    struct seal_keyring ring;
    struct key_counts total;
    struct crewd_error err;
    struct db db;

    error_clear(&err);
    if (open_keys(&ring, &db, &err) < 0)
        return crewctl_fail(&err);

    walk_tenants(&db, &ring, false, &total);
    printf("total: tenants=%d credentials=%d open=%d failed=%d "
        "current_key=%d (key %s)\n", total.tenants, total.credentials,
        total.opened, total.failed + total.tenants_failed, total.current,
        ring.keys[0].id_text);
    if (total.current < total.opened)
        printf("%d credential(s) are under a previous key: run crewctl "
            "keys rotate before removing it\n",
            total.opened - total.current);

    db_close(&db);
    seal_keyring_wipe(&ring);
    return total.failed == 0 && total.tenants_failed == 0 ? 0 : 1;
}

static int
cmd_keys_rotate(int argc, char **argv)
{
    static const struct option options[] = {
        { "new-key", required_argument, NULL, 'n' },
        { NULL, 0, NULL, 0 },
    };
    const char *new_path = NULL;
    struct seal_keyring ring;
    struct seal_key new_key;
    struct key_counts total;
    struct crewd_error err;
    struct db db;
    bool same;
    int opt, rc = 1;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (opt != 'n') {
            usage(stderr);
            return EXIT_USAGE;
        }
        new_path = optarg;
    }
    if (new_path == NULL || optind != argc) {
        usage(stderr);
        return EXIT_USAGE;
    }

    error_clear(&err);
    if (seal_key_load(&new_key, new_path, &err) < 0)
        return crewctl_fail(&err);

    /*
     * crewd must already seal with the new key, or it would go on writing
     * credentials under the old one while they are being re-sealed.
     */
    if (seal_keyring_load(&ring, &conf, &err) < 0) {
        sodium_memzero(&new_key, sizeof(new_key));
        return crewctl_fail(&err);
    }
    same = sodium_memcmp(new_key.key, ring.keys[0].key,
        SEAL_KEY_BYTES) == 0;
    if (!same) {
        fprintf(stderr, "crewctl: the new key %s (key id %s) is not the "
            "configured master_key_file %s (key id %s).\n"
            "crewctl: set master_key_file to the new key and add the old "
            "one to master_key_previous_files, reload crewd (SIGHUP), then "
            "rotate; docs/operations.md has the steps\n", new_path,
            new_key.id_text, ring.keys[0].path, ring.keys[0].id_text);
        sodium_memzero(&new_key, sizeof(new_key));
        seal_keyring_wipe(&ring);
        return 1;
    }
    sodium_memzero(&new_key, sizeof(new_key));
    seal_keyring_wipe(&ring);

    if (open_keys(&ring, &db, &err) < 0)
        return crewctl_fail(&err);

    walk_tenants(&db, &ring, true, &total);
    printf("total: tenants=%d credentials=%d resealed=%d failed=%d "
        "(key %s)\n", total.tenants, total.credentials, total.resealed,
        total.failed + total.tenants_failed, ring.keys[0].id_text);

    /*
     * The canary moves to the new key last, and only when everything
     * opened: until then a crewd without the old key refuses to start.
     */
    if (total.failed == 0 && total.tenants_failed == 0) {
        if (seal_canary_write(&db, &ring.keys[0], true, &err) < 0) {
            crewctl_fail(&err);
        } else {
            printf("canary: sealed under key %s\n", ring.keys[0].id_text);
            rc = 0;
        }
    } else {
        printf("canary left as it was: fix what failed and run keys rotate "
            "again\n");
    }

    db_close(&db);
    seal_keyring_wipe(&ring);
    return rc;
}

/*
 * Claims one execution exactly as the worker pool will: in a transaction
 * of the tenant, with the search path set to its schema alone.
 */
static int
cmd_execution_claim(int argc, char **argv)
{
    static const struct option options[] = {
        { "tenant", required_argument, NULL, 't' },
        { NULL, 0, NULL, 0 },
    };
    const char *slug = NULL;
    char id[UUID_TEXT_LEN + 1];
    struct crewd_error err;
    struct tenant tenant;
    struct arena *arena;
    struct db db;
    const char *params[1];
    int opt, found, claimed;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 't': slug = optarg; break;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (slug == NULL || optind != argc) {
        usage(stderr);
        return EXIT_USAGE;
    }

    error_clear(&err);
    if (crewctl_connect(&conf, &db, &err) < 0)
        return crewctl_fail(&err);
    arena = arena_new(4096);
    found = tenant_find_by_slug(&db, arena, slug, &tenant, &err);
    if (found <= 0 || !tenant.is_active) {
        if (found == 0)
            error_set(&err, 404, "no such tenant: %s", slug);
        else if (found > 0)
            error_set(&err, 409, "tenant %s is suspended", slug);
        goto failed;
    }

    params[0] = tenant.schema;
    if (db_begin(&db, &err) < 0 ||
        db_run(&db, &err, "SELECT set_config('search_path', $1, true)", 1,
            params) < 0)
        goto failed;
    claimed = execution_claim(&db, id, &err);
    if (claimed < 0 || db_commit(&db, &err) < 0)
        goto failed;

    if (claimed > 0)
        printf("%s\n", id);
    db_close(&db);
    arena_free(arena);
    return 0;

failed:
    db_rollback(&db);
    db_close(&db);
    arena_free(arena);
    return crewctl_fail(&err);
}

int
main(int argc, char **argv)
{
    struct crewd_error err;
    int opt;

    conf_path = conf_default_path();

    /* Options of the subcommands are read later: stop at the first word. */
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };

    while ((opt = getopt_long(argc, argv, "+c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            conf_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    argc -= optind;
    argv += optind;
    if (argc < 2 && !(argc == 1 && strcmp(argv[0], "migrate") == 0)) {
        usage(stderr);
        return EXIT_USAGE;
    }

    log_init("crewctl", LOG_WARN);
    if (sodium_init() < 0) {
        fprintf(stderr, "crewctl: could not initialise libsodium\n");
        return 1;
    }
    conf_defaults(&conf);
    error_clear(&err);
    if (conf_load(&conf, conf_path, &err) < 0)
        return crewctl_fail(&err);

    if (strcmp(argv[0], "secret") == 0 && strcmp(argv[1], "create") == 0)
        return cmd_secret_create();
    if (strcmp(argv[0], "migrate") == 0)
        return crewctl_migrate(&conf, argc, argv);
    if (strcmp(argv[0], "db") == 0 && strcmp(argv[1], "migrate") == 0)
        return crewctl_migrate(&conf, argc - 1, argv + 1);
    if (strcmp(argv[0], "tenant") == 0 && strcmp(argv[1], "create") == 0)
        return cmd_tenant_create(argc - 1, argv + 1);
    if (strcmp(argv[0], "tenant") == 0 && strcmp(argv[1], "list") == 0)
        return cmd_tenant_list();
    if (strcmp(argv[0], "tenant") == 0 && strcmp(argv[1], "delete") == 0)
        return cmd_tenant_delete(argc - 1, argv + 1);
    if (strcmp(argv[0], "tenant") == 0 && strcmp(argv[1], "suspend") == 0)
        return cmd_tenant_set_active(argc - 1, argv + 1, false);
    if (strcmp(argv[0], "tenant") == 0 && strcmp(argv[1], "resume") == 0)
        return cmd_tenant_set_active(argc - 1, argv + 1, true);
    if (strcmp(argv[0], "tenant") == 0 &&
        strcmp(argv[1], "rename-slug") == 0)
        return cmd_tenant_rename_slug(argc - 1, argv + 1);
    if (strcmp(argv[0], "tenant") == 0 && strcmp(argv[1], "backup") == 0)
        return crewctl_tenant_backup(&conf, argc - 1, argv + 1);
    if (strcmp(argv[0], "tenant") == 0 && strcmp(argv[1], "restore") == 0)
        return crewctl_tenant_restore(&conf, argc - 1, argv + 1);
    if (strcmp(argv[0], "execution") == 0 && strcmp(argv[1], "claim") == 0)
        return cmd_execution_claim(argc - 1, argv + 1);
    if (strcmp(argv[0], "keys") == 0 && strcmp(argv[1], "create") == 0)
        return cmd_keys_create(argc - 1, argv + 1);
    if (strcmp(argv[0], "keys") == 0 && strcmp(argv[1], "check") == 0 &&
        argc == 2)
        return cmd_keys_check();
    if (strcmp(argv[0], "keys") == 0 && strcmp(argv[1], "rotate") == 0)
        return cmd_keys_rotate(argc - 1, argv + 1);
    if (strcmp(argv[0], "mongo") == 0)
        return crewctl_mongo(&conf, argc - 1, argv + 1);

    usage(stderr);
    return EXIT_USAGE;
}
