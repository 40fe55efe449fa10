/*
 * crewctl tenant backup SLUG FILE: one tenant in one archive.
 *
 *   schema.dump            pg_dump --format=custom of the tenant's schema
 *   tenant.jsonl           its public.tenants row (row_to_json)
 *   users.jsonl            its public.users rows, one a line
 *   execution_logs.jsonl   its three MongoDB collections, one document a
 *   chat_messages.jsonl    line, in canonical Extended JSON (dates,
 *   audit_logs.jsonl       ObjectIds and number types survive)
 *   manifest.json          versions, the tenant, counts, and the size and
 *                          SHA-256 of every other member
 *
 * PostgreSQL's parts are read in one REPEATABLE READ transaction whose
 * snapshot pg_dump takes over (--snapshot), so the rows, the users and
 * the schema's tables are one instant.  MongoDB's are read after it.
 * The archive is written to FILE.tmp (mode 0600), flushed to disk and
 * renamed to FILE: a failed or interrupted backup leaves no file behind.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "backup.h"
#include "crewctl.h"
#include "db.h"
#include "json.h"
#include "log.h"
#include "migrate.h"
#include "pgtools.h"
#include "tenant.h"

const char *const backup_members[] = {
    BACKUP_SCHEMA_DUMP, BACKUP_TENANT, BACKUP_USERS,
    "execution_logs.jsonl", "chat_messages.jsonl", "audit_logs.jsonl",
    BACKUP_MANIFEST, NULL
};

const char *
backup_mongo_member(enum mongo_kind kind)
{
    static const char *const names[MONGO_KIND_COUNT] = {
        [MONGO_EXECUTION_LOGS] = "execution_logs.jsonl",
        [MONGO_CHAT_MESSAGES] = "chat_messages.jsonl",
        [MONGO_AUDIT_LOGS] = "audit_logs.jsonl",
    };

    return names[kind];
}

/* ----------------------------------------------------------------------
 * The scratch folder.  The signal handler only unlinks, removes, kills
 * and exits, all safe in a handler; the paths are fixed arrays.
 * -------------------------------------------------------------------- */

#define SCRATCH_PATHS 16

static char scratch_dir[PATH_MAX];
static char scratch_paths[SCRATCH_PATHS][PATH_MAX];
static volatile sig_atomic_t scratch_pid;

static void
scratch_clean(void)
{
    if (scratch_pid > 0)
        kill((pid_t)scratch_pid, SIGTERM);
    for (int i = 0; i < SCRATCH_PATHS; i++)
        if (scratch_paths[i][0] != '\0')
            unlink(scratch_paths[i]);
    if (scratch_dir[0] != '\0')
        rmdir(scratch_dir);
}

static void
on_signal(int signal_number)
{
    scratch_clean();
    _exit(1);
}

/* Changes to the lists happen with the signals held. */
static void
hold_signals(bool hold, sigset_t *saved)
{
    sigset_t set;

    if (!hold) {
        sigprocmask(SIG_SETMASK, saved, NULL);
        return;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, saved);
}

int
scratch_make(const char *parent, const char *prefix,
    struct crewd_error *err)
{
    static const int signals[] = { SIGINT, SIGTERM, SIGHUP };
    struct sigaction action;
    char dir[PATH_MAX];

    if (snprintf(dir, sizeof(dir), "%s/%sXXXXXX", parent, prefix) >=
            (int)sizeof(dir))
        return error_set(err, 500, "the folder %s has too long a name",
            parent);
    if (mkdtemp(dir) == NULL)
        return error_set(err, 500, "could not make a folder in %s: %s",
            parent, strerror(errno));
    memcpy(scratch_dir, dir, sizeof(dir));

    memset(&action, 0, sizeof(action));
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
        sigaction(signals[i], &action, NULL);
    return 0;
}

void
scratch_also(const char *path)
{
    sigset_t saved;

    hold_signals(true, &saved);
    for (int i = 0; i < SCRATCH_PATHS; i++)
        if (scratch_paths[i][0] == '\0') {
            snprintf(scratch_paths[i], PATH_MAX, "%s", path);
            break;
        }
    hold_signals(false, &saved);
}

void
scratch_forget(const char *path)
{
    sigset_t saved;

    hold_signals(true, &saved);
    for (int i = 0; i < SCRATCH_PATHS; i++)
        if (strcmp(scratch_paths[i], path) == 0)
            scratch_paths[i][0] = '\0';
    hold_signals(false, &saved);
}

const char *
scratch_folder(void)
{
    return scratch_dir;
}

const char *
scratch_file(const char *name)
{
    static char path[PATH_MAX];

    if (strlen(scratch_dir) + 1 + strlen(name) >= sizeof(path))
        fatal("scratch file name too long: %s", name);
    memcpy(path, scratch_dir, strlen(scratch_dir));
    path[strlen(scratch_dir)] = '/';
    memcpy(path + strlen(scratch_dir) + 1, name, strlen(name) + 1);
    scratch_also(path);
    return path;
}

void
scratch_child(pid_t pid)
{
    scratch_pid = pid;
}

void
scratch_remove(void)
{
    sigset_t saved;

    hold_signals(true, &saved);
    scratch_pid = 0;
    scratch_clean();
    memset(scratch_paths, 0, sizeof(scratch_paths));
    scratch_dir[0] = '\0';
    hold_signals(false, &saved);
}

/* ----------------------------------------------------------------------
 * The backup.
 * -------------------------------------------------------------------- */

struct backup {
    const struct crewd_conf *conf;
    struct db db;
    struct mongo *mongo;
    struct arena *arena;
    struct crewd_error err;
    struct archive_writer out;
    struct archive_member members[ARCHIVE_MEMBERS_MAX];
    int nmembers;

    /* What the manifest tells. */
    const char *snapshot;
    const char *server_version;
    int server_version_num;
    const char *taken_at;
    int schema_version;
    struct tenant tenant;
    const char *name;
    const char *tenant_created_at;
    const char *tenant_row;         /* row_to_json of public.tenants */
    PGresult *users;                /* row_to_json of each user */
    long documents[MONGO_KIND_COUNT];
    struct pg_program pg_dump;
};

static int
member_end(struct backup *b)
{
    if (archive_end(&b->out, &b->members[b->nmembers], &b->err) < 0)
        return -1;
    b->nmembers++;
    return 0;
}

/* A member holding the text of each row of res's first column, a line
   each. */
static int
member_of_lines(struct backup *b, const char *name, const PGresult *res)
{
    if (archive_begin(&b->out, name, &b->err) < 0)
        return -1;
    for (int i = 0; i < PQntuples(res); i++)
        if (archive_write(&b->out, PQgetvalue(res, i, 0),
                (size_t)PQgetlength(res, i, 0), &b->err) < 0 ||
            archive_write(&b->out, "\n", 1, &b->err) < 0)
            return -1;
    return member_end(b);
}

/*
 * The snapshot: everything PostgreSQL tells of the tenant is read in it,
 * and pg_dump takes it over.  It stays open until pg_dump has ended.
 */
static int
open_snapshot(struct backup *b, const char *slug)
{
    const char *params[1] = { slug };
    PGresult *res;

    if (db_run(&b->db, &b->err, "BEGIN ISOLATION LEVEL REPEATABLE READ,"
            " READ ONLY", 0, NULL) < 0)
        return -1;
    res = db_exec(&b->db, b->arena, &b->err, "SELECT pg_export_snapshot(),"
        " current_setting('server_version'),"
        " current_setting('server_version_num')::integer, now()", 0, NULL);
    if (res == NULL)
        return -1;
    b->snapshot = PQgetvalue(res, 0, 0);
    b->server_version = PQgetvalue(res, 0, 1);
    b->server_version_num = atoi(PQgetvalue(res, 0, 2));
    b->taken_at = db_timestamp(b->arena, res, 0, 3);

    res = db_exec(&b->db, b->arena, &b->err, "SELECT id, slug, db_schema,"
        " is_active, audit_reads, name, created_at, row_to_json(t)::text"
        " FROM public.tenants t WHERE slug = $1", 1, params);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0)
        return error_set(&b->err, 404, "no such tenant: %s", slug);
    snprintf(b->tenant.id, sizeof(b->tenant.id), "%s", PQgetvalue(res, 0, 0));
    snprintf(b->tenant.slug, sizeof(b->tenant.slug), "%s",
        PQgetvalue(res, 0, 1));
    snprintf(b->tenant.schema, sizeof(b->tenant.schema), "%s",
        PQgetvalue(res, 0, 2));
    b->name = PQgetvalue(res, 0, 5);
    b->tenant_created_at = db_timestamp(b->arena, res, 0, 6);
    b->tenant_row = PQgetvalue(res, 0, 7);

    /* The name goes to pg_dump's command line: it must be one of ours. */
    if (!tenant_schema_name_valid(b->tenant.schema))
        return error_set(&b->err, 500, "tenant %s has an invalid schema "
            "name", slug);

    b->schema_version = migrate_schema_version(&b->db, b->tenant.schema,
        &b->err);
    if (b->schema_version < 0)
        return -1;

    params[0] = b->tenant.id;
    b->users = db_exec(&b->db, b->arena, &b->err, "SELECT row_to_json(u)"
        "::text FROM public.users u WHERE tenant_id = $1"
        " ORDER BY created_at, id", 1, params);
    return b->users == NULL ? -1 : 0;
}

/* Copies the file at path into a member of this name. */
static int
member_of_file(struct backup *b, const char *name, const char *path)
{
    unsigned char *buffer;
    ssize_t n;
    int fd, rc = -1;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return error_set(&b->err, 500, "could not open %s: %s", path,
            strerror(errno));
    if (archive_begin(&b->out, name, &b->err) < 0) {
        close(fd);
        return -1;
    }
    buffer = xmalloc(1 << 16);
    while ((n = read(fd, buffer, 1 << 16)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            error_set(&b->err, 500, "could not read %s: %s", path,
                strerror(errno));
            goto out;
        }
        if (archive_write(&b->out, buffer, (size_t)n, &b->err) < 0)
            goto out;
    }
    rc = member_end(b);

out:
    free(buffer);
    close(fd);
    return rc;
}

/* pg_dump of the tenant's schema, in the snapshot, as the owner. */
static int
dump_schema(struct backup *b)
{
    char *conninfo = NULL, *password = NULL;
    char *schema_arg, *snapshot_arg, *file_arg, *dbname_arg;
    const char *dump_path;
    int server_major = pg_major_of_num(b->server_version_num);
    pid_t pid;
    int rc = -1;

    if (pg_program_find(b->conf->pg_bindir, "pg_dump", server_major,
            server_major, &b->pg_dump, &b->err) < 0 ||
        pg_conninfo_split(b->conf->owner_database_url, &conninfo, &password,
            &b->err) < 0)
        return -1;

    dump_path = scratch_file(BACKUP_SCHEMA_DUMP);
    schema_arg = xasprintf("--schema=%s", b->tenant.schema);
    snapshot_arg = xasprintf("--snapshot=%s", b->snapshot);
    file_arg = xasprintf("--file=%s", dump_path);
    dbname_arg = xasprintf("--dbname=%s", conninfo);
    {
        const char *args[] = {
            b->pg_dump.path, "--format=custom", "--no-password",
            "--strict-names", schema_arg, snapshot_arg, file_arg,
            dbname_arg, NULL
        };

        pid = pg_program_start(args, password, -1, &b->err);
    }
    if (pid > 0) {
        scratch_child(pid);
        rc = pg_program_wait(pid, "pg_dump", &b->err);
        scratch_child(0);
    }

    if (rc == 0)
        rc = member_of_file(b, BACKUP_SCHEMA_DUMP, dump_path);
    unlink(dump_path);
    free(schema_arg);
    free(snapshot_arg);
    free(file_arg);
    free(dbname_arg);
    free(conninfo);
    if (password != NULL) {
        sodium_memzero(password, strlen(password));
        free(password);
    }
    return rc;
}

struct scan {
    struct backup *b;
    long count;
};

static int
write_document(const bson_t *doc, void *context)
{
    struct scan *s = context;
    size_t len;
    char *json = bson_as_canonical_extended_json(doc, &len);
    int rc;

    if (json == NULL)
        return error_set(&s->b->err, 500, "a document could not be "
            "written as Extended JSON");
    rc = archive_write(&s->b->out, json, len, &s->b->err) < 0 ||
        archive_write(&s->b->out, "\n", 1, &s->b->err) < 0 ? -1 : 0;
    bson_free(json);
    s->count++;
    return rc;
}

/* The three collections; empty members when MongoDB is not configured. */
static int
dump_collections(struct backup *b)
{
    for (int kind = 0; kind < MONGO_KIND_COUNT; kind++) {
        struct scan s = { b, 0 };

        if (archive_begin(&b->out, backup_mongo_member(kind), &b->err) < 0)
            return -1;
        if (mongo_configured(b->mongo) &&
            mongo_scan(b->mongo, kind, b->tenant.id, write_document, &s,
                &b->err) < 0)
            return -1;
        b->documents[kind] = s.count;
        if (member_end(b) < 0)
            return -1;
    }
    return 0;
}

static int
write_manifest(struct backup *b)
{
    struct json_writer w;
    struct buf text = BUF_INIT;
    int rc;

    jw_init(&w, &text);
    jw_object_open(&w);
    jw_kv_string(&w, "format", BACKUP_FORMAT);
    jw_kv_int(&w, "format_version", BACKUP_FORMAT_VERSION);
    jw_kv_string(&w, "crewd_version", PACKAGE_VERSION);
    jw_kv_string(&w, "created_at", b->taken_at);
    jw_kv_int(&w, "schema_version", b->schema_version);

    jw_key(&w, "postgresql");
    jw_object_open(&w);
    jw_kv_string(&w, "server_version", b->server_version);
    jw_kv_int(&w, "server_version_num", b->server_version_num);
    jw_kv_string(&w, "pg_dump_version", b->pg_dump.version);
    jw_object_close(&w);

    jw_kv_bool(&w, "mongodb", mongo_configured(b->mongo));

    jw_key(&w, "tenant");
    jw_object_open(&w);
    jw_kv_string(&w, "id", b->tenant.id);
    jw_kv_string(&w, "slug", b->tenant.slug);
    jw_kv_string(&w, "name", b->name);
    jw_kv_string(&w, "schema", b->tenant.schema);
    jw_kv_string(&w, "created_at", b->tenant_created_at);
    jw_object_close(&w);

    jw_key(&w, "counts");
    jw_object_open(&w);
    jw_kv_int(&w, "users", PQntuples(b->users));
    for (int kind = 0; kind < MONGO_KIND_COUNT; kind++)
        jw_kv_int(&w, mongo_kind_name(kind), b->documents[kind]);
    jw_object_close(&w);

    jw_key(&w, "members");
    jw_array_open(&w);
    for (int i = 0; i < b->nmembers; i++) {
        jw_object_open(&w);
        jw_kv_string(&w, "name", b->members[i].name);
        jw_kv_int(&w, "size", (int64_t)b->members[i].size);
        jw_kv_string(&w, "sha256", b->members[i].sha256);
        jw_object_close(&w);
    }
    jw_array_close(&w);
    jw_object_close(&w);
    buf_putc(&text, '\n');

    rc = archive_begin(&b->out, BACKUP_MANIFEST, &b->err) < 0 ||
        archive_write(&b->out, text.data, text.len, &b->err) < 0 ||
        member_end(b) < 0 ? -1 : 0;
    buf_free(&text);
    return rc;
}

/* The rename is only durable once the folder is flushed too. */
static void
sync_folder_of(const char *path)
{
    char *copy = xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

static int
run_backup(struct backup *b, const char *slug, const char *file)
{
    char *tmp_path = xasprintf("%s.tmp", file);
    char *copy = xstrdup(file);
    int rc = -1;

    /* The dump waits beside the archive, on the same file system. */
    if (scratch_make(dirname(copy), ".crewd-backup-", &b->err) < 0)
        goto out;
    scratch_also(tmp_path);

    if (mongo_configured(b->mongo) && mongo_ping(b->mongo, &b->err) < 0) {
        error_set(&b->err, 503, "MongoDB does not answer; a backup needs "
            "the tenant's collections");
        goto out;
    }

    /* PostgreSQL's parts, from one snapshot. */
    if (open_snapshot(b, slug) < 0 ||
        archive_create(&b->out, tmp_path, &b->err) < 0 ||
        dump_schema(b) < 0 ||
        db_commit(&b->db, &b->err) < 0)
        goto out;
    if (archive_begin(&b->out, BACKUP_TENANT, &b->err) < 0 ||
        archive_write(&b->out, b->tenant_row, strlen(b->tenant_row),
            &b->err) < 0 ||
        archive_write(&b->out, "\n", 1, &b->err) < 0 ||
        member_end(b) < 0 ||
        member_of_lines(b, BACKUP_USERS, b->users) < 0)
        goto out;

    if (dump_collections(b) < 0 ||
        write_manifest(b) < 0 ||
        archive_finish(&b->out, &b->err) < 0)
        goto out;

    if (rename(tmp_path, file) < 0) {
        error_set(&b->err, 500, "could not rename %s to %s: %s", tmp_path,
            file, strerror(errno));
        goto out;
    }
    scratch_forget(tmp_path);
    sync_folder_of(file);
    rc = 0;

out:
    if (rc < 0)
        archive_abandon(&b->out);
    else
        free(b->out.path);
    db_rollback(&b->db);
    scratch_remove();
    free(tmp_path);
    free(copy);
    return rc;
}

int
crewctl_tenant_backup(const struct crewd_conf *conf, int argc, char **argv)
{
    struct backup b;
    int rc = 1;

    if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '-')
        return crewctl_usage_error();

    memset(&b, 0, sizeof(b));
    b.conf = conf;
    b.out.fd = -1;
    error_clear(&b.err);
    b.arena = arena_new(4096);
    b.mongo = mongo_connect(conf->mongodb_uri, &b.err);
    b.db.owner = true;
    if (b.mongo == NULL)
        goto out;
    if (db_open(&b.db, conf->owner_database_url, false, &b.err) < 0) {
        error_set(&b.err, 503, "could not connect to the database as its "
            "owner (owner_database_url in the configuration)");
        goto out;
    }

    if (run_backup(&b, argv[1], argv[2]) < 0)
        goto out;
    printf("tenant %s (%s) backed up to %s\n", b.tenant.slug, b.tenant.id,
        argv[2]);
    printf("schema version %d, %d user(s), %ld execution log(s), "
        "%ld chat message(s), %ld audit entr%s%s\n", b.schema_version,
        PQntuples(b.users), b.documents[MONGO_EXECUTION_LOGS],
        b.documents[MONGO_CHAT_MESSAGES], b.documents[MONGO_AUDIT_LOGS],
        b.documents[MONGO_AUDIT_LOGS] == 1 ? "y" : "ies",
        mongo_configured(b.mongo) ? "" : " (MongoDB is not configured)");
    rc = 0;

out:
    if (rc != 0)
        fprintf(stderr, "crewctl: %s\n", b.err.detail);
    db_close(&b.db);
    mongo_close(b.mongo);
    arena_free(b.arena);
    return rc;
}
