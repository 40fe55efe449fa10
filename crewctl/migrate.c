/*
 * crewctl migrate: the public schema, then tenant_template, then every
 * tenant schema, each in a transaction of its own (docs/migrations.md).
 *
 *   crewctl migrate [--jobs N] [--tenants SLUG,...] [--batch N]
 *                   [--to VERSION] [--source DIR]
 *   crewctl migrate status
 *   crewctl migrate check
 *
 * What a run must do: skip a schema already at the target without work;
 * go on when one schema fails, and say at the end which and why, with a
 * non-zero status; continue where a stopped run left off.  --jobs runs
 * schemas in parallel, each job a thread with a connection of its own
 * (libpq connections are independent; nothing else is shared but the
 * list and the progress, under one mutex).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crewctl.h"
#include "db.h"
#include "log.h"
#include "migrate.h"
#include "tenant.h"

#define JOBS_MAX 64
#define MIGRATIONS_MAX 1000

struct target {
    char slug[SLUG_MAX + 1];
    char schema[SCHEMA_NAME_MAX + 1];
    int from;
    int applied;                /* -1: failed */
    char failure[512];
};

struct run {
    const struct crewd_conf *conf;
    struct target *targets;
    size_t count;
    int version;                /* the target version */
    size_t next;                /* next target to take, under lock */
    size_t finished, failed, changed;
    bool terminal;
    pthread_mutex_t lock;
};

struct options {
    int jobs;
    int batch;                  /* 0: no limit */
    int to;                     /* 0: the newest */
    const char *tenants;        /* comma-separated slugs, or NULL */
    const char *source;         /* a folder of migrations, or NULL */
};

/* -- Migrations from a folder (--source) ------------------------------ */

static char *
read_file(const char *path, struct crewd_error *err)
{
    FILE *f = fopen(path, "r");
    size_t used = 0, size = 4096, n;
    char *text;

    if (f == NULL) {
        error_set(err, 0, "could not open %s: %s", path, strerror(errno));
        return NULL;
    }
    text = xmalloc(size);
    while ((n = fread(text + used, 1, size - used - 1, f)) > 0) {
        used += n;
        if (used + 1 == size)
            text = xrealloc(text, size *= 2);
    }
    if (ferror(f)) {
        error_set(err, 0, "could not read %s", path);
        free(text);
        text = NULL;
    } else {
        text[used] = '\0';
    }
    fclose(f);
    return text;
}

/* Frees n migrations read by load_source(), and the array. */
static void
free_migrations(struct migration *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)list[i].name);
        free((char *)list[i].up);
        free((char *)list[i].down);
    }
    free(list);
}

static int
compare_versions(const void *a, const void *b)
{
    const struct migration *x = a, *y = b;

    return (x->version > y->version) - (x->version < y->version);
}

/*
 * Reads DIR/NNNN_name.up.sql and NNNN_name.down.sql, as in
 * sql/migrations/.  Every up needs its down, and versions must be
 * distinct.  For developing a migration against a real database; the
 * migrations a release carries are compiled into crewctl.
 */
static int
load_source(const char *dir, struct migration **out, size_t *count,
    struct crewd_error *err)
{
    struct migration *list = xcalloc(MIGRATIONS_MAX, sizeof(*list));
    struct dirent *entry;
    size_t n = 0;
    DIR *d = opendir(dir);

    if (d == NULL) {
        free(list);
        return error_set(err, 0, "could not open %s: %s", dir,
            strerror(errno));
    }
    while ((entry = readdir(d)) != NULL) {
        const char *name = entry->d_name;
        size_t len = strlen(name);
        char *path, *down_path, *base;

        if (len < 13 || strcmp(name + len - 7, ".up.sql") != 0 ||
            strspn(name, "0123456789") != 4 || name[4] != '_')
            continue;
        if (n == MIGRATIONS_MAX) {
            error_set(err, 0, "%s: too many migrations", dir);
            break;
        }
        base = xstrdup(name);
        base[len - 7] = '\0';
        path = xasprintf("%s/%s", dir, name);
        down_path = xasprintf("%s/%s.down.sql", dir, base);
        list[n].version = atoi(base);
        list[n].name = base;
        list[n].up = read_file(path, err);
        list[n].down = list[n].up != NULL ? read_file(down_path, err) : NULL;
        free(path);
        free(down_path);
        if (list[n].down == NULL) {
            n++;        /* what was read of it is freed below */
            break;
        }
        n++;
    }
    closedir(d);
    if (err->detail[0] != '\0') {
        free_migrations(list, n);
        return -1;
    }
    qsort(list, n, sizeof(*list), compare_versions);
    for (size_t i = 1; i < n; i++)
        if (list[i].version == list[i - 1].version) {
            int version = list[i].version;

            free_migrations(list, n);
            return error_set(err, 0, "%s: two migrations numbered %d",
                dir, version);
        }
    if (n == 0) {
        free_migrations(list, n);
        return error_set(err, 0, "%s holds no NNNN_name.up.sql", dir);
    }
    *out = list;
    *count = n;
    return 0;
}

/* -- Progress ----------------------------------------------------------- */

/* Called under run->lock after each schema. */
static void
report(struct run *run, const struct target *t)
{
    if (!run->terminal) {
        if (t->applied < 0)
            printf("%-24s %s FAILED at version %d: %s\n", t->slug,
                t->schema, t->from, t->failure);
        else
            printf("%-24s %s %d -> %d\n", t->slug, t->schema, t->from,
                run->version);
        fflush(stdout);
        return;
    }

    /* A bar on a terminal, redrawn in place. */
    {
        int width = 40;
        int filled = (int)(run->finished * (size_t)width /
            (run->count > 0 ? run->count : 1));

        printf("\r  [%.*s%*s] %zu/%zu schemas", filled,
            "########################################", width - filled, "",
            run->finished, run->count);
        if (run->failed > 0)
            printf(", %zu failed", run->failed);
        fflush(stdout);
    }
}

static void *
job(void *arg)
{
    struct run *run = arg;
    struct crewd_error err;
    struct db db;
    bool connected;

    error_clear(&err);
    connected = crewctl_connect(run->conf, &db, &err) == 0;

    for (;;) {
        struct target *t;

        pthread_mutex_lock(&run->lock);
        t = run->next < run->count ? &run->targets[run->next++] : NULL;
        pthread_mutex_unlock(&run->lock);
        if (t == NULL)
            break;

        error_clear(&err);
        if (!connected) {
            /* Try again: the database may have come back. */
            connected = crewctl_connect(run->conf, &db, &err) == 0;
        }
        t->applied = connected ? migrate_schema(&db, t->schema, run->version,
            &t->from, &err) : -1;
        if (t->applied < 0)
            snprintf(t->failure, sizeof(t->failure), "%s", err.detail);

        pthread_mutex_lock(&run->lock);
        run->finished++;
        if (t->applied < 0)
            run->failed++;
        else if (t->applied > 0)
            run->changed++;
        report(run, t);
        pthread_mutex_unlock(&run->lock);
    }
    if (connected)
        db_close(&db);
    return NULL;
}

/* -- Choosing the schemas --------------------------------------------- */

/* True when slug is one of the comma-separated list. */
static bool
listed(const char *list, const char *slug)
{
    size_t len = strlen(slug);

    for (const char *p = list; *p != '\0';) {
        size_t n = strcspn(p, ",");

        if (n == len && strncmp(p, slug, n) == 0)
            return true;
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

/* Every slug of --tenants must exist: a typo must not pass for "done". */
static int
check_listed(struct db *db, const char *list, struct crewd_error *err)
{
    const char *params[1] = { list };
    PGresult *res;
    int rc = 0;

    res = db_exec(db, NULL, err, "SELECT string_agg(s, ', ')"
        " FROM unnest(string_to_array($1, ',')) s"
        " WHERE NOT EXISTS (SELECT 1 FROM public.tenants WHERE slug = s)",
        1, params);
    if (res == NULL)
        return -1;
    if (!PQgetisnull(res, 0, 0))
        rc = error_set(err, 0, "no such tenant: %s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

/*
 * The tenants to migrate: those not at the target version (and listed,
 * with --tenants), oldest first, at most batch of them.  Sets *at_target
 * to how many are there already.
 */
static int
choose(struct db *db, const struct options *o, int version,
    struct target **out, size_t *count, size_t *at_target,
    struct crewd_error *err)
{
    struct target *list;
    PGresult *res;
    size_t n = 0;

    res = db_exec(db, NULL, err,
        "SELECT t.slug, t.db_schema, s.version"
        " FROM public.tenants t"
        " JOIN public.crewd_schema_versions() s"
        " ON s.schema_name = t.db_schema"
        " ORDER BY t.created_at, t.id", 0, NULL);
    if (res == NULL)
        return -1;

    *at_target = 0;
    list = xcalloc((size_t)PQntuples(res) + 1, sizeof(*list));
    for (int i = 0; i < PQntuples(res); i++) {
        const char *slug = PQgetvalue(res, i, 0);

        if (o->tenants != NULL && !listed(o->tenants, slug))
            continue;
        if (atoi(PQgetvalue(res, i, 2)) == version) {
            (*at_target)++;
            continue;
        }
        if (o->batch > 0 && n == (size_t)o->batch)
            continue;
        snprintf(list[n].slug, sizeof(list[n].slug), "%s", slug);
        snprintf(list[n].schema, sizeof(list[n].schema), "%s",
            PQgetvalue(res, i, 1));
        list[n].from = atoi(PQgetvalue(res, i, 2));
        n++;
    }
    PQclear(res);
    *out = list;
    *count = n;
    return 0;
}

/* -- crewctl migrate -------------------------------------------------- */

static int
parse_options(int argc, char **argv, struct options *o)
{
    static const struct option options[] = {
        { "jobs", required_argument, NULL, 'j' },
        { "tenants", required_argument, NULL, 't' },
        { "batch", required_argument, NULL, 'b' },
        { "to", required_argument, NULL, 'v' },
        { "source", required_argument, NULL, 's' },
        { NULL, 0, NULL, 0 },
    };
    int opt;

    memset(o, 0, sizeof(*o));
    o->jobs = 1;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        char *end = NULL;
        long value = 0;

        if (opt == 'j' || opt == 'b' || opt == 'v') {
            value = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || value < 1 ||
                value > (opt == 'j' ? JOBS_MAX : 1000000)) {
                fprintf(stderr, "crewctl: --%s wants a number from 1%s\n",
                    opt == 'j' ? "jobs" : opt == 'b' ? "batch" : "to",
                    opt == 'j' ? " to 64" : "");
                return -1;
            }
        }
        switch (opt) {
        case 'j': o->jobs = (int)value; break;
        case 'b': o->batch = (int)value; break;
        case 'v': o->to = (int)value; break;
        case 't': o->tenants = optarg; break;
        case 's': o->source = optarg; break;
        default: return -1;
        }
    }
    if (optind != argc)
        return -1;
    return 0;
}

static void
print_failures(const struct run *run)
{
    fprintf(stderr, "crewctl: %zu schema(s) failed to migrate; they are "
        "as they were, and a new run takes them again:\n", run->failed);
    for (size_t i = 0; i < run->count; i++) {
        const struct target *t = &run->targets[i];

        if (t->applied < 0)
            fprintf(stderr, "  %s (%s): %s\n", t->slug, t->schema,
                t->failure);
    }
}

/* Public schema, platform settings and grants, then the template. */
static int
migrate_shared(struct db *db, const struct crewd_conf *conf,
    const struct options *o, int *version, struct crewd_error *err)
{
    const struct migration *list = tenant_migrations;
    struct migration *loaded = NULL;
    size_t count = tenant_migrations_count;
    char app_role[128];
    int applied, from, rc = -1;

    if (o->source != NULL) {
        if (load_source(o->source, &loaded, &count, err) < 0)
            return -1;
        list = loaded;
    }

    applied = migrate_public(db, err);
    if (applied < 0)
        goto out;
    if (applied > 0)
        printf("public schema: %d migration(s) applied\n", applied);

    /* The role crewd's workers log in as gets the application's rights. */
    if (!db_conninfo_user(conf->database_url, app_role, sizeof(app_role))) {
        error_set(err, 0, "database_url must name its role (user=...)");
        goto out;
    }
    if (migrate_platform(db, list, count, conf->isolation, app_role,
            err) < 0)
        goto out;

    /*
     * Without --to: the newest of the migrations this run carries, or
     * the template's version if that is newer (a crewctl older than the
     * database rolls nothing back).  Not the newest stored: a migration
     * tried from a --source folder and rolled back must not come back
     * with the next plain run.
     */
    if (o->to > 0) {
        *version = o->to;
    } else {
        int template = migrate_schema_version(db, TEMPLATE_SCHEMA, err);

        if (template < 0)
            goto out;
        *version = count > 0 ? list[count - 1].version : 0;
        if (template > *version)
            *version = template;
    }
    if (o->to > migrate_stored_latest(db, err)) {
        error_set(err, 0, "--to %d: no such migration (the newest is %d)",
            o->to, migrate_stored_latest(db, err));
        goto out;
    }

    applied = migrate_schema(db, TEMPLATE_SCHEMA, *version, &from, err);
    if (applied < 0) {
        char reason[sizeof(err->detail)];

        snprintf(reason, sizeof(reason), "%s", err->detail);
        error_set(err, 0, "%s failed at version %d, no tenant touched: %s",
            TEMPLATE_SCHEMA, from, reason);
        goto out;
    }
    if (applied > 0)
        printf("%-24s %d -> %d\n", TEMPLATE_SCHEMA, from, *version);
    rc = 0;

out:
    if (loaded != NULL)
        free_migrations(loaded, count);
    return rc;
}

static int
migrate_run(const struct crewd_conf *conf, const struct options *o)
{
    struct crewd_error err;
    pthread_t threads[JOBS_MAX];
    struct run run;
    size_t at_target;
    int jobs;
    struct db db;

    memset(&run, 0, sizeof(run));
    run.conf = conf;
    run.terminal = isatty(STDOUT_FILENO);
    pthread_mutex_init(&run.lock, NULL);

    error_clear(&err);
    if (crewctl_connect(conf, &db, &err) < 0)
        return crewctl_fail(&err);
    if (migrate_shared(&db, conf, o, &run.version, &err) < 0 ||
        (o->tenants != NULL && check_listed(&db, o->tenants, &err) < 0) ||
        choose(&db, o, run.version, &run.targets, &run.count, &at_target,
            &err) < 0) {
        db_close(&db);
        return crewctl_fail(&err);
    }
    db_close(&db);

    jobs = o->jobs < (int)run.count ? o->jobs : (int)run.count;
    for (int i = 0; i < jobs; i++)
        if (pthread_create(&threads[i], NULL, job, &run) != 0) {
            /* Fewer jobs then; the ones started take the whole list. */
            jobs = i;
            break;
        }
    if (jobs == 0 && run.count > 0)
        job(&run);
    for (int i = 0; i < jobs; i++)
        pthread_join(threads[i], NULL);
    if (run.terminal && run.count > 0)
        printf("\n");

    printf("%zu schema(s) migrated to version %d, %zu already there",
        run.changed, run.version, at_target);
    if (o->batch > 0)
        printf(" (batch of %d)", o->batch);
    printf("\n");
    if (run.failed > 0)
        print_failures(&run);
    free(run.targets);
    pthread_mutex_destroy(&run.lock);
    return run.failed > 0 ? 1 : 0;
}

/* -- crewctl migrate status ------------------------------------------- */

static int
migrate_status(const struct crewd_conf *conf)
{
    struct crewd_error err;
    PGresult *res;
    struct db db;
    int latest;

    error_clear(&err);
    if (crewctl_connect(conf, &db, &err) < 0)
        return crewctl_fail(&err);
    latest = migrate_stored_latest(&db, &err);
    res = latest < 0 ? NULL : db_exec(&db, NULL, &err,
        "SELECT version, count(*) FILTER (WHERE schema_name <> $1),"
        " bool_or(schema_name = $1)"
        " FROM public.crewd_schema_versions()"
        " GROUP BY version ORDER BY version", 1,
        (const char *const[]){ TEMPLATE_SCHEMA });
    if (res == NULL) {
        db_close(&db);
        return crewctl_fail(&err);
    }

    printf("newest migration: %d (this crewctl carries %d)\n", latest,
        migrate_tenant_latest());
    printf("%8s  %s\n", "version", "tenant schemas");
    for (int i = 0; i < PQntuples(res); i++)
        printf("%8s  %s%s\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
            db_bool(res, i, 2) ? "  (and tenant_template)" : "");
    PQclear(res);
    db_close(&db);
    return 0;
}

/* -- crewctl migrate check -------------------------------------------- */

static int
migrate_check(const struct crewd_conf *conf)
{
    struct crewd_error err;
    PGresult *tenants, *drift;
    size_t drifted = 0;
    struct db db;

    error_clear(&err);
    if (crewctl_connect(conf, &db, &err) < 0)
        return crewctl_fail(&err);
    tenants = db_exec(&db, NULL, &err, "SELECT t.slug, t.db_schema,"
        " s.version, (SELECT version FROM public.crewd_schema_versions()"
        " WHERE schema_name = $1)"
        " FROM public.tenants t JOIN public.crewd_schema_versions() s"
        " ON s.schema_name = t.db_schema ORDER BY t.slug", 1,
        (const char *const[]){ TEMPLATE_SCHEMA });
    if (tenants == NULL) {
        db_close(&db);
        return crewctl_fail(&err);
    }

    for (int i = 0; i < PQntuples(tenants); i++) {
        const char *slug = PQgetvalue(tenants, i, 0);
        const char *params[1] = { PQgetvalue(tenants, i, 1) };
        bool behind = strcmp(PQgetvalue(tenants, i, 2),
            PQgetvalue(tenants, i, 3)) != 0;

        drift = db_exec(&db, NULL, &err, "SELECT change, object, definition"
            " FROM public.crewd_schema_drift($1)", 1, params);
        if (drift == NULL) {
            PQclear(tenants);
            db_close(&db);
            return crewctl_fail(&err);
        }
        if (behind || PQntuples(drift) > 0)
            drifted++;
        if (behind)
            printf("%s (%s): at version %s, tenant_template at %s\n", slug,
                params[0], PQgetvalue(tenants, i, 2),
                PQgetvalue(tenants, i, 3));
        for (int r = 0; r < PQntuples(drift); r++)
            printf("%s (%s): %s %s%s%s\n", slug, params[0],
                PQgetvalue(drift, r, 0), PQgetvalue(drift, r, 1),
                PQgetvalue(drift, r, 2)[0] != '\0' ? ": " : "",
                PQgetvalue(drift, r, 2));
        PQclear(drift);
    }
    printf("%d tenant schema(s) checked against tenant_template, %zu with "
        "drift\n", PQntuples(tenants), drifted);
    PQclear(tenants);
    db_close(&db);
    return drifted > 0 ? 1 : 0;
}

int
crewctl_migrate(const struct crewd_conf *conf, int argc, char **argv)
{
    struct options o;

    if (argc == 2 && strcmp(argv[1], "status") == 0)
        return migrate_status(conf);
    if (argc == 2 && strcmp(argv[1], "check") == 0)
        return migrate_check(conf);
    if (parse_options(argc, argv, &o) < 0)
        return crewctl_usage_error();
    return migrate_run(conf, &o);
}
