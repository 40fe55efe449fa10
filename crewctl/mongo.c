/*
 * crewctl mongo ...: the tenants' MongoDB collections.
 *
 *   mongo status                  whether MongoDB answers; pending tenants
 *   mongo provision [--tenant SLUG | --all]
 *                                 make the collections of every pending
 *                                 tenant, or (again) of one tenant or of
 *                                 all (after MongoDB lost its data)
 *   mongo inspect --tenant SLUG   print what MongoDB holds of a tenant's
 *                                 collections (options, indexes) as JSON
 *   mongo ttl --tenant SLUG [--execution-logs DAYS] [--chat-messages DAYS]
 *                                 change a tenant's TTLs and apply them
 *   mongo drop --tenant-id UUID   drop the collections a deleted tenant
 *                                 left behind (MongoDB was down then)
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crewctl.h"
#include "db.h"
#include "mongo.h"
#include "provision.h"
#include "tenant.h"
#include "uuid.h"

/* How many pending tenants one "mongo provision" takes at most. */
#define PROVISION_ALL_MAX 100000

struct session {
    struct db db;
    struct mongo *mongo;
    struct arena *arena;
    struct crewd_error err;
};

static int
session_open(struct session *s, const struct crewd_conf *conf)
{
    memset(s, 0, sizeof(*s));
    error_clear(&s->err);
    s->arena = arena_new(4096);
    s->mongo = mongo_connect(conf->mongodb_uri, &s->err);
    if (s->mongo == NULL)
        return -1;
    if (crewctl_connect(conf, &s->db, &s->err) < 0)
        return -1;
    return 0;
}

static int
session_close(struct session *s, int rc)
{
    if (rc != 0 && s->err.detail[0] != '\0')
        fprintf(stderr, "crewctl: %s\n", s->err.detail);
    db_close(&s->db);
    mongo_close(s->mongo);
    arena_free(s->arena);
    return rc;
}

/* Reads the one option --tenant SLUG and the TTL options into out. */
struct mongo_options {
    const char *slug;
    bool all;
    int execution_logs_days;
    int chat_messages_days;
};

static int
read_options(int argc, char **argv, bool ttl_allowed,
    struct mongo_options *out)
{
    static const struct option options[] = {
        { "tenant", required_argument, NULL, 't' },
        { "all", no_argument, NULL, 'a' },
        { "execution-logs", required_argument, NULL, 'l' },
        { "chat-messages", required_argument, NULL, 'm' },
        { NULL, 0, NULL, 0 },
    };
    int opt;

    memset(out, 0, sizeof(*out));
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        char *end;
        long days;

        switch (opt) {
        case 't':
            out->slug = optarg;
            continue;
        case 'a':
            out->all = true;
            continue;
        case 'l':
        case 'm':
            if (!ttl_allowed)
                return -1;
            days = strtol(optarg, &end, 10);
            if (*end != '\0' || end == optarg || days < MONGO_TTL_DAYS_MIN ||
                days > MONGO_TTL_DAYS_MAX) {
                fprintf(stderr, "crewctl: a TTL is a number of days from "
                    "%d to %d\n", MONGO_TTL_DAYS_MIN, MONGO_TTL_DAYS_MAX);
                return -1;
            }
            if (opt == 'l')
                out->execution_logs_days = (int)days;
            else
                out->chat_messages_days = (int)days;
            continue;
        default:
            return -1;
        }
    }
    return optind == argc ? 0 : -1;
}

static int
find_tenant(struct session *s, const char *slug, struct tenant *t)
{
    int found = tenant_find_by_slug(&s->db, s->arena, slug, t, &s->err);

    if (found == 0)
        error_set(&s->err, 404, "no such tenant: %s", slug);
    return found > 0 ? 0 : -1;
}

static int
cmd_status(const struct crewd_conf *conf)
{
    struct session s;
    PGresult *res;
    const char *state = "not configured";

    if (session_open(&s, conf) < 0)
        return session_close(&s, 1);
    if (mongo_configured(s.mongo)) {
        struct crewd_error ping;

        error_clear(&ping);
        state = mongo_ping(s.mongo, &ping) == 0 ? "up" : "down";
    }
    res = db_exec(&s.db, s.arena, &s.err, "SELECT count(*) FROM"
        " public.tenants WHERE mongo_provisioned_at IS NULL", 0, NULL);
    if (res == NULL)
        return session_close(&s, 1);
    printf("mongodb: %s\n", state);
    printf("tenants without collections: %s\n", PQgetvalue(res, 0, 0));
    return session_close(&s, 0);
}

static void
report_tenant(const char *tenant_id, const struct crewd_error *failure)
{
    if (failure == NULL)
        printf("%s: collections made\n", tenant_id);
    else
        printf("%s: FAILED: %s\n", tenant_id, failure->detail);
}

/* Every tenant, pending or not: a MongoDB that lost its data. */
static int
provision_all(struct session *s)
{
    PGresult *res;
    int failed = 0;

    res = db_exec(&s->db, s->arena, &s->err, "SELECT id FROM public.tenants"
        " ORDER BY created_at", 0, NULL);
    if (res == NULL)
        return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *tenant_id = PQgetvalue(res, i, 0);
        struct crewd_error failure;

        error_clear(&failure);
        if (provision_tenant(&s->db, s->mongo, s->arena, tenant_id,
                &failure) == 0) {
            report_tenant(tenant_id, NULL);
            continue;
        }
        report_tenant(tenant_id, &failure);
        failed++;
        if (failure.status == 503)
            break;
    }
    if (failed > 0)
        error_set(&s->err, 0, "%d tenant(s) failed", failed);
    return failed > 0 ? -1 : 0;
}

static int
cmd_provision(const struct crewd_conf *conf, int argc, char **argv)
{
    struct mongo_options o;
    struct session s;
    struct tenant t;
    int made;

    if (read_options(argc, argv, false, &o) < 0 ||
        (o.all && o.slug != NULL))
        return crewctl_usage_error();
    if (session_open(&s, conf) < 0)
        return session_close(&s, 1);

    if (o.all)
        return session_close(&s, provision_all(&s) < 0 ? 1 : 0);

    if (o.slug != NULL) {
        if (find_tenant(&s, o.slug, &t) < 0 ||
            provision_tenant(&s.db, s.mongo, s.arena, t.id, &s.err) < 0)
            return session_close(&s, 1);
        printf("%s: collections made\n", o.slug);
        return session_close(&s, 0);
    }

    made = provision_sweep(&s.db, s.mongo, s.arena, PROVISION_ALL_MAX,
        report_tenant, &s.err);
    if (made < 0)
        return session_close(&s, 1);
    printf("%d tenant(s) provisioned\n", made);
    return session_close(&s, 0);
}

static int
cmd_inspect(const struct crewd_conf *conf, int argc, char **argv)
{
    struct mongo_options o;
    struct buf out = BUF_INIT;
    struct session s;
    struct tenant t;
    bool pending;
    int rc = 1;

    if (read_options(argc, argv, false, &o) < 0 || o.slug == NULL)
        return crewctl_usage_error();
    if (session_open(&s, conf) < 0)
        return session_close(&s, 1);

    if (find_tenant(&s, o.slug, &t) == 0 &&
        provision_pending(&s.db, s.arena, t.id, &pending, &s.err) == 0) {
        buf_printf(&out, "{\"tenant_id\": \"%s\", \"pending\": %s, "
            "\"collections\": ", t.id, pending ? "true" : "false");
        if (mongo_inspect_tenant(s.mongo, t.id, &out, &s.err) == 0) {
            printf("%s}\n", buf_cstr(&out));
            rc = 0;
        }
    }
    buf_free(&out);
    return session_close(&s, rc);
}

static int
cmd_ttl(const struct crewd_conf *conf, int argc, char **argv)
{
    struct mongo_options o;
    struct session s;
    struct tenant t;
    struct crewd_error later;

    if (read_options(argc, argv, true, &o) < 0 || o.slug == NULL ||
        (o.execution_logs_days == 0 && o.chat_messages_days == 0))
        return crewctl_usage_error();
    if (session_open(&s, conf) < 0)
        return session_close(&s, 1);

    if (find_tenant(&s, o.slug, &t) < 0 ||
        provision_set_ttl(&s.db, s.arena, t.id, o.execution_logs_days,
            o.chat_messages_days, &s.err) < 0)
        return session_close(&s, 1);

    /* Stored; the indexes follow now, or when MongoDB answers. */
    error_clear(&later);
    if (provision_tenant(&s.db, s.mongo, s.arena, t.id, &later) == 0)
        printf("%s: TTLs changed and applied\n", o.slug);
    else
        printf("%s: TTLs changed; applied when MongoDB answers (%s)\n",
            o.slug, later.detail);
    return session_close(&s, 0);
}

/*
 * By id, since the slug is gone with the tenant.  A tenant that still
 * exists keeps its collections: dropping them would lose its logs, and
 * its next write would make a collection without validator or indexes.
 */
static int
cmd_drop(const struct crewd_conf *conf, int argc, char **argv)
{
    static const struct option options[] = {
        { "tenant-id", required_argument, NULL, 'i' },
        { NULL, 0, NULL, 0 },
    };
    char id[UUID_TEXT_LEN + 1];
    const char *arg = NULL;
    const char *params[1] = { id };
    struct session s;
    PGresult *res;
    int opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (opt != 'i')
            return crewctl_usage_error();
        arg = optarg;
    }
    if (arg == NULL || optind != argc)
        return crewctl_usage_error();
    if (!uuid_parse(arg, strlen(arg), id)) {
        fprintf(stderr, "crewctl: %s is not a tenant id (a UUID)\n", arg);
        return 1;
    }

    if (session_open(&s, conf) < 0)
        return session_close(&s, 1);
    res = db_exec(&s.db, s.arena, &s.err, "SELECT slug FROM public.tenants"
        " WHERE id = $1", 1, params);
    if (res == NULL)
        return session_close(&s, 1);
    if (PQntuples(res) > 0) {
        error_set(&s.err, 409, "tenant %s still exists (slug %s); "
            "crewctl tenant delete drops its collections", id,
            PQgetvalue(res, 0, 0));
        return session_close(&s, 1);
    }

    if (mongo_drop_tenant(s.mongo, id, &s.err) < 0)
        return session_close(&s, 1);
    printf("%s: collections dropped\n", id);
    return session_close(&s, 0);
}

int
crewctl_mongo(const struct crewd_conf *conf, int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "status") == 0 && argc == 1)
        return cmd_status(conf);
    if (argc >= 1 && strcmp(argv[0], "provision") == 0)
        return cmd_provision(conf, argc, argv);
    if (argc >= 1 && strcmp(argv[0], "inspect") == 0)
        return cmd_inspect(conf, argc, argv);
    if (argc >= 1 && strcmp(argv[0], "ttl") == 0)
        return cmd_ttl(conf, argc, argv);
    if (argc >= 1 && strcmp(argv[0], "drop") == 0)
        return cmd_drop(conf, argc, argv);
    return crewctl_usage_error();
}
