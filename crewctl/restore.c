/*
 * crewctl tenant restore FILE (--slug NEW | --replace) [--without-credentials]
 *
 * Restores an archive of "crewctl tenant backup" (backup.c).  Before
 * anything changes: every member is checked against the manifest's
 * SHA-256 and size, the archive's schema version against
 * tenant_template's, pg_restore must read the dump, MongoDB must answer,
 * and the slug must be free.
 *
 * --slug NEW: a new tenant.  New id, new schema, new role
 * (public.crewd_create_tenant, as sign-up makes them), new user ids; every
 * reference to the old tenant id and to an old user id is rewritten to
 * the new one.  One PostgreSQL transaction holds it all, and the MongoDB
 * collections (named after the new id, which nobody knows before the
 * commit) are made and filled before that transaction commits: a failure
 * anywhere rolls PostgreSQL back and drops the new collections, so
 * nothing is left half-restored.
 *
 * --replace: over the tenant the archive was taken from (the same id,
 * slug and user ids).  PostgreSQL is replaced in one transaction, which
 * also suspends the tenant; then MongoDB's collections are dropped, made
 * and filled, and the tenant is served again.  Meanwhile an advisory lock
 * keeps the audit shipper off the tenant, so the restored outbox is not
 * shipped into collections about to be replaced.  If MongoDB fails
 * midway the tenant stays suspended and running the command again
 * finishes it.
 *
 * The dump's rows are loaded with pg_restore --data-only, whose script
 * crewctl reads itself: statement lines are checked and their schema
 * name replaced; the COPY data lines go to the server byte for byte.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "archive.h"
#include "audit.h"
#include "backup.h"
#include "crewctl.h"
#include "db.h"
#include "json.h"
#include "migrate.h"
#include "pgtools.h"
#include "provision.h"
#include "seal.h"
#include "tenant.h"
#include "uuid.h"

/* Documents per insert_many. */
#define INSERT_BATCH 500

/* ----------------------------------------------------------------------
 * Old ids to new ones: the tenant's and its users'.
 * -------------------------------------------------------------------- */

struct id_pair {
    char from[UUID_TEXT_LEN + 1];
    char to[UUID_TEXT_LEN + 1];
};

struct id_map {
    struct id_pair *pairs;
    size_t n, cap;
    bool sorted;
};

static int
compare_pairs(const void *a, const void *b)
{
    return strcmp(((const struct id_pair *)a)->from,
        ((const struct id_pair *)b)->from);
}

static void
map_sort(struct id_map *m)
{
    if (!m->sorted && m->n > 0)
        qsort(m->pairs, m->n, sizeof(*m->pairs), compare_pairs);
    m->sorted = true;
}

/* The new id of text (len bytes), or NULL when it is not an old id. */
static const char *
map_find(struct id_map *m, const char *text, size_t len)
{
    struct id_pair key;
    const struct id_pair *found;

    if (len != UUID_TEXT_LEN || m->n == 0)
        return NULL;
    map_sort(m);
    memcpy(key.from, text, len);
    key.from[len] = '\0';
    found = bsearch(&key, m->pairs, m->n, sizeof(*m->pairs),
        compare_pairs);
    return found != NULL ? found->to : NULL;
}

/*
 * Maps from (a canonical UUID; anything else is ignored) to to, or to a
 * fresh id when to is NULL.  An id mapped already keeps its mapping.
 */
static const char *
map_add(struct id_map *m, const char *from, const char *to)
{
    char canonical[UUID_TEXT_LEN + 1];
    const char *known;
    struct id_pair *p;

    if (from == NULL || !uuid_parse(from, strlen(from), canonical))
        return NULL;
    known = map_find(m, canonical, strlen(canonical));
    if (known != NULL)
        return known;
    if (m->n == m->cap) {
        m->cap = m->cap == 0 ? 64 : 2 * m->cap;
        m->pairs = xrealloc(m->pairs, m->cap * sizeof(*m->pairs));
    }
    p = &m->pairs[m->n++];
    memcpy(p->from, canonical, sizeof(p->from));
    if (to != NULL)
        snprintf(p->to, sizeof(p->to), "%s", to);
    else
        uuid_generate(p->to);
    m->sorted = false;
    return p->to;
}

/* The old ids, then the new ones, as PostgreSQL uuid[] literals. */
static void
map_arrays(const struct id_map *m, struct buf *from, struct buf *to)
{
    buf_putc(from, '{');
    buf_putc(to, '{');
    for (size_t i = 0; i < m->n; i++) {
        buf_printf(from, "%s%s", i > 0 ? "," : "", m->pairs[i].from);
        buf_printf(to, "%s%s", i > 0 ? "," : "", m->pairs[i].to);
    }
    buf_putc(from, '}');
    buf_putc(to, '}');
}

/* Every string value equal to an old id, at any depth, becomes the new. */
static bool
rewrite_json(struct json_object *value, struct id_map *m)
{
    bool changed = false;
    size_t n;

    switch (json_object_get_type(value)) {
    case json_type_object:
        json_object_object_foreach(value, key, member) {
            const char *to = NULL;

            if (json_object_get_type(member) == json_type_string)
                to = map_find(m, json_object_get_string(member),
                    (size_t)json_object_get_string_len(member));
            if (to != NULL) {
                json_object_object_add(value, key,
                    json_object_new_string(to));
                changed = true;
            } else if (rewrite_json(member, m)) {
                changed = true;
            }
        }
        break;
    case json_type_array:
        n = json_object_array_length(value);
        for (size_t i = 0; i < n; i++) {
            struct json_object *item = json_object_array_get_idx(value, i);
            const char *to = NULL;

            if (json_object_get_type(item) == json_type_string)
                to = map_find(m, json_object_get_string(item),
                    (size_t)json_object_get_string_len(item));
            if (to != NULL) {
                json_object_array_put_idx(value, i,
                    json_object_new_string(to));
                changed = true;
            } else if (rewrite_json(item, m)) {
                changed = true;
            }
        }
        break;
    default:
        break;
    }
    return changed;
}

/* The same for BSON: in copied to out (initialised by the caller). */
static void
rewrite_bson(const bson_t *in, bson_t *out, struct id_map *m)
{
    bson_iter_t iter;

    if (!bson_iter_init(&iter, in))
        return;
    while (bson_iter_next(&iter)) {
        const char *key = bson_iter_key(&iter);
        const uint8_t *data;
        uint32_t len;
        bson_t child_in, child_out;

        if (BSON_ITER_HOLDS_UTF8(&iter)) {
            const char *text = bson_iter_utf8(&iter, &len);
            const char *to = map_find(m, text, len);

            if (to != NULL) {
                BSON_APPEND_UTF8(out, key, to);
                continue;
            }
        } else if (BSON_ITER_HOLDS_DOCUMENT(&iter) ||
                   BSON_ITER_HOLDS_ARRAY(&iter)) {
            bool array = BSON_ITER_HOLDS_ARRAY(&iter);

            if (array)
                bson_iter_array(&iter, &len, &data);
            else
                bson_iter_document(&iter, &len, &data);
            if (bson_init_static(&child_in, data, len)) {
                if (array)
                    BSON_APPEND_ARRAY_BEGIN(out, key, &child_out);
                else
                    BSON_APPEND_DOCUMENT_BEGIN(out, key, &child_out);
                rewrite_bson(&child_in, &child_out, m);
                if (array)
                    bson_append_array_end(out, &child_out);
                else
                    bson_append_document_end(out, &child_out);
                continue;
            }
        }
        bson_append_iter(out, key, -1, &iter);
    }
}

/* ----------------------------------------------------------------------
 * The restore's state.
 * -------------------------------------------------------------------- */

struct table_data {
    char name[64];
    char *toc_line;         /* the line of pg_restore --list */
};

struct restore {
    const struct crewd_conf *conf;
    struct db db;           /* the restore's own transaction */
    struct db lock_db;      /* --replace: keeps the shipper off */
    struct mongo *mongo;
    struct arena *arena;
    struct crewd_error err;
    char hint[768];         /* printed after the error, when set */

    const char *file;
    const char *new_slug;
    bool replace;
    bool without_credentials;

    /* The archive, extracted into the scratch folder. */
    struct archive_member members[ARCHIVE_MEMBERS_MAX];
    int nmembers;
    char *paths[ARCHIVE_MEMBERS_MAX];   /* by backup_members' order */

    /* What its manifest says. */
    struct json_object *manifest;
    int schema_version;
    int dump_major;
    struct tenant from;
    const char *from_name;
    struct json_object *tenant_row;
    bool active;            /* is_active of the archived tenant */
    int mongo_members;      /* collections with documents */

    /* What the archive becomes. */
    struct tenant to;
    int server_major;
    struct pg_program pg_restore;
    struct table_data *tables;  /* TABLE DATA entries of the dump */
    int ntables;
    struct id_map ids;          /* empty with --replace */
    struct {
        char id[UUID_TEXT_LEN + 1];
        int version;
    } *token_versions;          /* --replace: the users' current ones */
    int ntoken_versions;

    /* What was done. */
    long users;
    long rows;
    long credentials;
    long credentials_dropped;
    long outbox_left;           /* outbox entries too deep to rewrite */
    long documents[MONGO_KIND_COUNT];
};

static bool
has_member(const struct restore *r, const char *name)
{
    for (int i = 0; i < r->nmembers; i++)
        if (strcmp(r->members[i].name, name) == 0)
            return true;
    return false;
}

static const char *
member_path(const struct restore *r, const char *name)
{
    for (int i = 0; backup_members[i] != NULL; i++)
        if (strcmp(backup_members[i], name) == 0)
            return r->paths[i];
    return NULL;
}

static const char *
schema_sql(struct restore *r, const char *schema)
{
    char *quoted = PQescapeIdentifier(r->db.conn, schema, strlen(schema));
    const char *copy = arena_strdup(r->arena, quoted != NULL ? quoted : "");

    PQfreemem(quoted);
    return copy;
}

/* ----------------------------------------------------------------------
 * The archive and its manifest.
 * -------------------------------------------------------------------- */

static struct json_object *
get_member(struct json_object *o, const char *key, json_type type)
{
    struct json_object *v;

    if (!json_object_object_get_ex(o, key, &v) ||
        json_object_get_type(v) != type)
        return NULL;
    return v;
}

static const char *
get_string(struct json_object *o, const char *key)
{
    struct json_object *v = get_member(o, key, json_type_string);

    return v != NULL ? json_object_get_string(v) : NULL;
}

static bool
get_int(struct json_object *o, const char *key, int64_t *out)
{
    struct json_object *v = get_member(o, key, json_type_int);

    if (v == NULL)
        return false;
    *out = json_object_get_int64(v);
    return true;
}

/* Reads a whole small file into a new string (NUL-terminated). */
static char *
read_small_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *text;

    if (f == NULL)
        return NULL;
    text = xmalloc(max + 1);
    *len = fread(text, 1, max + 1, f);
    fclose(f);
    if (*len > max) {
        free(text);
        return NULL;
    }
    text[*len] = '\0';
    return text;
}

static int
damaged(struct restore *r, const char *what)
{
    return error_set(&r->err, 422, "the archive %s is damaged or not a "
        "crewd tenant backup (%s); nothing was changed", r->file, what);
}

/*
 * The manifest's list of members against what was read: each member but
 * the manifest listed exactly once, with its size and SHA-256.
 */
static int
check_members(struct restore *r, struct json_object *list)
{
    bool checked[ARCHIVE_MEMBERS_MAX] = { false };

    for (size_t i = 0; i < json_object_array_length(list); i++) {
        struct json_object *entry = json_object_array_get_idx(list, i);
        const char *name, *sha256;
        int found = -1;
        int64_t size;

        if (json_object_get_type(entry) != json_type_object ||
            (name = get_string(entry, "name")) == NULL ||
            (sha256 = get_string(entry, "sha256")) == NULL ||
            !get_int(entry, "size", &size))
            return damaged(r, "a member of the manifest is incomplete");
        for (int j = 0; j < r->nmembers; j++)
            if (strcmp(r->members[j].name, name) == 0)
                found = j;
        if (found < 0 || strcmp(name, BACKUP_MANIFEST) == 0)
            return error_set(&r->err, 422, "the archive %s lacks member "
                "%.60s, which its manifest lists (it is truncated or "
                "damaged); nothing was changed", r->file, name);
        if (checked[found])
            return damaged(r, "its manifest lists a member twice");
        if ((uint64_t)size != r->members[found].size ||
            strcmp(sha256, r->members[found].sha256) != 0)
            return error_set(&r->err, 422, "the archive %s is damaged: "
                "member %s does not match the SHA-256 and size in its "
                "manifest; nothing was changed", r->file, name);
        checked[found] = true;
    }

    for (int i = 0; backup_members[i] != NULL; i++)
        if (!has_member(r, backup_members[i]))
            return error_set(&r->err, 422, "the archive %s lacks member "
                "%s (it is truncated or damaged); nothing was changed",
                r->file, backup_members[i]);
    for (int j = 0; j < r->nmembers; j++)
        if (!checked[j] && strcmp(r->members[j].name, BACKUP_MANIFEST) != 0)
            return damaged(r, "a member is missing from its manifest");
    return 0;
}

static int
read_manifest(struct restore *r)
{
    struct json_object *v, *tenant, *postgresql;
    const char *text_path = member_path(r, BACKUP_MANIFEST);
    const char *format, *id, *slug, *schema, *name, *dump_version;
    char canonical[UUID_TEXT_LEN + 1];
    int64_t number = -1;
    size_t len;
    char *text;

    text = read_small_file(text_path, BACKUP_MANIFEST_MAX, &len);
    if (text == NULL)
        return damaged(r, "its manifest cannot be read");
    if (json_parse(text, len, &r->manifest, &r->err) < 0 ||
        json_object_get_type(r->manifest) != json_type_object) {
        free(text);
        error_clear(&r->err);
        return damaged(r, "its manifest is not a JSON object");
    }
    free(text);

    format = get_string(r->manifest, "format");
    if (format == NULL || strcmp(format, BACKUP_FORMAT) != 0)
        return damaged(r, "its manifest names another format");
    if (!get_int(r->manifest, "format_version", &number) ||
        number != BACKUP_FORMAT_VERSION)
        return error_set(&r->err, 422, "the archive %s is in format "
            "version %lld, which this crewctl does not read (it reads "
            "version %d)", r->file, (long long)number,
            BACKUP_FORMAT_VERSION);

    if ((v = get_member(r->manifest, "members", json_type_array)) == NULL)
        return damaged(r, "its manifest lists no members");
    if (check_members(r, v) < 0)
        return -1;

    tenant = get_member(r->manifest, "tenant", json_type_object);
    postgresql = get_member(r->manifest, "postgresql", json_type_object);
    if (tenant == NULL || postgresql == NULL ||
        !get_int(r->manifest, "schema_version", &number) ||
        (id = get_string(tenant, "id")) == NULL ||
        (slug = get_string(tenant, "slug")) == NULL ||
        (schema = get_string(tenant, "schema")) == NULL ||
        (name = get_string(tenant, "name")) == NULL ||
        (dump_version = get_string(postgresql, "pg_dump_version")) == NULL ||
        !uuid_parse(id, strlen(id), canonical) ||
        !tenant_schema_name_valid(schema) || strlen(slug) > SLUG_MAX ||
        number < 0 || number > 100000)
        return damaged(r, "its manifest is incomplete");
    r->schema_version = (int)number;
    r->dump_major = atoi(dump_version);
    snprintf(r->from.id, sizeof(r->from.id), "%s", canonical);
    snprintf(r->from.slug, sizeof(r->from.slug), "%s", slug);
    snprintf(r->from.schema, sizeof(r->from.schema), "%s", schema);
    r->from_name = name;

    for (int kind = 0; kind < MONGO_KIND_COUNT; kind++)
        for (int i = 0; i < r->nmembers; i++)
            if (strcmp(r->members[i].name, backup_mongo_member(kind)) == 0)
                r->mongo_members += r->members[i].size > 0;
    return 0;
}

static int
read_tenant_row(struct restore *r)
{
    struct json_object *v;
    size_t len;
    char *text = read_small_file(member_path(r, BACKUP_TENANT),
        BACKUP_MANIFEST_MAX, &len);

    if (text == NULL)
        return damaged(r, "its tenant row cannot be read");
    if (json_parse(text, len, &r->tenant_row, &r->err) < 0 ||
        json_object_get_type(r->tenant_row) != json_type_object) {
        free(text);
        error_clear(&r->err);
        return damaged(r, "its tenant row is not a JSON object");
    }
    free(text);
    v = get_member(r->tenant_row, "is_active", json_type_boolean);
    r->active = v == NULL || json_object_get_boolean(v);
    return 0;
}

static int
open_archive(struct restore *r)
{
    const char *tmp = getenv("TMPDIR");

    if (scratch_make(tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp",
            "crewd-restore-", &r->err) < 0)
        return -1;
    for (int i = 0; backup_members[i] != NULL; i++)
        r->paths[i] = xstrdup(scratch_file(backup_members[i]));

    if (archive_extract(r->file, scratch_folder(), backup_members,
            r->members, &r->nmembers, &r->err) < 0) {
        snprintf(r->hint, sizeof(r->hint), "nothing was changed");
        return -1;
    }
    if (!has_member(r, BACKUP_MANIFEST))
        return damaged(r, "it has no manifest");
    return read_manifest(r) < 0 || read_tenant_row(r) < 0 ? -1 : 0;
}

/*
 * Calls each for every document of one of the archive's collections, in
 * order, with its line number.  each may take the document (setting
 * *doc to NULL); otherwise it is destroyed after the call.  A line that
 * is not Extended JSON is an error naming it.
 */
typedef int (*document_fn)(struct restore *r, enum mongo_kind kind,
    bson_t **doc, long line, void *context);

static int
each_document(struct restore *r, enum mongo_kind kind, document_fn each,
    void *context)
{
    const char *member = backup_mongo_member(kind);
    FILE *in = fopen(member_path(r, member), "r");
    char *line = NULL;
    size_t size = 0;
    ssize_t len;
    long number = 0;
    int rc = 0;

    if (in == NULL)
        return error_set(&r->err, 500, "could not read %s: %s", member,
            strerror(errno));
    while (rc == 0 && (len = getline(&line, &size, in)) > 0) {
        bson_error_t e;
        bson_t *doc;

        number++;
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        doc = bson_new_from_json((const uint8_t *)line, len, &e);
        if (doc == NULL) {
            rc = error_set(&r->err, 422, "the archive %s: %s, line %ld, "
                "is not Extended JSON (%s); nothing was changed", r->file,
                member, number, e.message);
            break;
        }
        rc = each(r, kind, &doc, number, context);
        if (doc != NULL)
            bson_destroy(doc);
    }
    free(line);
    fclose(in);
    return rc;
}

/* Every document must be one its collection takes. */
static int
check_document(struct restore *r, enum mongo_kind kind, bson_t **doc,
    long line, void *context)
{
    struct crewd_error why;

    error_clear(&why);
    if (mongo_doc_check(kind, *doc, "", &why) == 0)
        return 0;
    return error_set(&r->err, 422, "the archive %s: %s, line %ld, is a "
        "document its collection's rules refuse (%s %s); nothing was "
        "changed", r->file, backup_mongo_member(kind), line,
        why.nfields > 0 ? why.fields[0].field : "",
        why.nfields > 0 ? why.fields[0].message : why.detail);
}

static int
check_documents(struct restore *r)
{
    for (int kind = 0; kind < MONGO_KIND_COUNT; kind++)
        if (each_document(r, kind, check_document, NULL) < 0)
            return -1;
    return 0;
}

/* ----------------------------------------------------------------------
 * Checks before anything changes.
 * -------------------------------------------------------------------- */

static int
check_versions(struct restore *r)
{
    int template_version, latest = migrate_tenant_latest();
    PGresult *res;

    res = db_exec(&r->db, r->arena, &r->err,
        "SELECT current_setting('server_version_num')::integer", 0, NULL);
    if (res == NULL)
        return -1;
    r->server_major = pg_major_of_num(atoi(PQgetvalue(res, 0, 0)));

    template_version = migrate_schema_version(&r->db, TEMPLATE_SCHEMA,
        &r->err);
    if (template_version < 0)
        return -1;
    if (template_version == r->schema_version)
        return 0;

    error_set(&r->err, 409, "the archive's tenant schema is at version %d "
        "and tenant_template at version %d; nothing was changed",
        r->schema_version, template_version);
    if (r->schema_version < template_version)
        snprintf(r->hint, sizeof(r->hint), "to restore it, bring "
            "tenant_template to version %d first: crewctl migrate --to %d "
            "(every tenant moves with it), restore, then crewctl migrate "
            "to bring them all, the restored tenant too, back to version "
            "%d", r->schema_version, r->schema_version, template_version);
    else if (r->schema_version <= latest)
        snprintf(r->hint, sizeof(r->hint), "to restore it, bring "
            "tenant_template to version %d first: crewctl migrate --to %d",
            r->schema_version, r->schema_version);
    else
        snprintf(r->hint, sizeof(r->hint), "this crewctl knows tenant "
            "migrations up to version %d: restore it with the crewd "
            "release that made it (or a newer one), after crewctl migrate "
            "--to %d", latest, r->schema_version);
    return -1;
}

/* MongoDB must answer now if anything is to be written to it. */
static int
check_mongo(struct restore *r)
{
    if (!mongo_configured(r->mongo)) {
        if (r->mongo_members == 0)
            return 0;
        return error_set(&r->err, 409, "the archive holds MongoDB "
            "documents and MongoDB is not configured here (mongodb_uri); "
            "nothing was changed");
    }
    if (mongo_ping(r->mongo, &r->err) < 0)
        return error_set(&r->err, 503, "MongoDB does not answer; nothing "
            "was changed");
    return 0;
}

/* Reads all of fd (a pipe) into out. */
static void
read_pipe(int fd, struct buf *out)
{
    char chunk[4096];
    ssize_t n;

    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        buf_append(out, chunk, (size_t)n);
    }
}

/* An identifier as pg_dump leaves it unquoted: [a-z_][a-z0-9_]*. */
static bool
plain_identifier(const char *s, size_t len)
{
    if (len == 0 || len >= 64 || !((s[0] >= 'a' && s[0] <= 'z') ||
                                   s[0] == '_'))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' &&
              s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

/*
 * pg_restore reads the dump (the right version for it is found here) and
 * lists it; its TABLE DATA entries of the archived schema are kept.
 */
static int
read_dump_list(struct restore *r)
{
    const char *dump = member_path(r, BACKUP_SCHEMA_DUMP);
    const char *args[] = { NULL, "--list", dump, NULL };
    struct buf list = BUF_INIT;
    char *save = NULL;
    int fds[2];
    pid_t pid;
    int rc = -1;

    if (pg_program_find(r->conf->pg_bindir, "pg_restore", r->server_major,
            r->dump_major, &r->pg_restore, &r->err) < 0)
        return -1;
    args[0] = r->pg_restore.path;
    if (pipe(fds) < 0)
        return error_set(&r->err, 500, "pipe: %s", strerror(errno));
    pid = pg_program_start(args, NULL, fds[1], &r->err);
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return -1;
    }
    scratch_child(pid);
    read_pipe(fds[0], &list);
    close(fds[0]);
    rc = pg_program_wait(pid, "pg_restore --list", &r->err);
    scratch_child(0);
    if (rc < 0) {
        error_set(&r->err, 422, "pg_restore cannot read the archive's "
            "schema dump; nothing was changed");
        buf_free(&list);
        return -1;
    }

    r->tables = xcalloc(256, sizeof(*r->tables));
    for (char *line = list.len > 0 ? strtok_r(list.data, "\n", &save) : NULL;
         line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char *entry = strstr(line, " TABLE DATA ");
        size_t schema_len = strlen(r->from.schema);
        char *table, *end;

        if (line[0] == ';' || entry == NULL)
            continue;
        entry += strlen(" TABLE DATA ");
        if (strncmp(entry, r->from.schema, schema_len) != 0 ||
            entry[schema_len] != ' ') {
            damaged(r, "its dump holds another schema's data");
            goto out;
        }
        table = entry + schema_len + 1;
        end = strchr(table, ' ');
        if (end == NULL || !plain_identifier(table, (size_t)(end - table)) ||
            r->ntables == 256) {
            damaged(r, "its dump lists a table crewctl does not expect");
            goto out;
        }
        memcpy(r->tables[r->ntables].name, table, (size_t)(end - table));
        r->tables[r->ntables].toc_line = xstrdup(line);
        r->ntables++;
    }
    rc = 0;

out:
    buf_free(&list);
    return rc;
}

static const struct table_data *
dump_table(const struct restore *r, const char *name)
{
    for (int i = 0; i < r->ntables; i++)
        if (strcmp(r->tables[i].name, name) == 0)
            return &r->tables[i];
    return NULL;
}

static int
check_slug(struct restore *r)
{
    const char *params[1] = { r->new_slug };
    PGresult *res;

    if (slug_check(r->new_slug, &r->err) < 0) {
        error_set(&r->err, 422, "--slug %s %s; nothing was changed",
            r->new_slug, r->err.fields[0].message);
        return -1;
    }
    res = db_exec(&r->db, r->arena, &r->err, "SELECT 1 FROM public.tenants"
        " WHERE slug = $1", 1, params);
    if (res == NULL)
        return -1;
    if (PQntuples(res) > 0)
        return error_set(&r->err, 409, "the slug \"%s\" is taken; nothing "
            "was changed", r->new_slug);
    return 0;
}

/* --replace: the tenant must exist, at the archive's version. */
static int
check_replace_target(struct restore *r)
{
    const char *params[1] = { r->from.id };
    PGresult *res;
    int version;

    res = db_exec(&r->db, r->arena, &r->err, "SELECT slug, db_schema"
        " FROM public.tenants WHERE id = $1", 1, params);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0) {
        snprintf(r->hint, sizeof(r->hint), "restore it as a new tenant "
            "with --slug instead");
        return error_set(&r->err, 404, "no tenant has the archive's id "
            "%s (was %s deleted?); nothing was changed", r->from.id,
            r->from.slug);
    }
    r->to = r->from;
    snprintf(r->to.slug, sizeof(r->to.slug), "%s", PQgetvalue(res, 0, 0));
    snprintf(r->to.schema, sizeof(r->to.schema), "%s",
        PQgetvalue(res, 0, 1));
    if (!tenant_schema_name_valid(r->to.schema))
        return error_set(&r->err, 500, "tenant %s has an invalid schema "
            "name", r->to.slug);

    version = migrate_schema_version(&r->db, r->to.schema, &r->err);
    if (version < 0)
        return -1;
    if (version != r->schema_version) {
        snprintf(r->hint, sizeof(r->hint), "bring it to the template's "
            "version first: crewctl migrate --tenants %s", r->to.slug);
        return error_set(&r->err, 409, "tenant %s is at schema version %d, "
            "the archive at %d; nothing was changed", r->to.slug, version,
            r->schema_version);
    }
    return 0;
}

/* ----------------------------------------------------------------------
 * Loading the dump's rows.
 * -------------------------------------------------------------------- */

/*
 * The target schema's tables in an order where every table comes after
 * the tables its foreign keys point to (alphabetical among equals), so
 * each COPY finds the rows it references.  A cycle is refused.
 */
static int
table_order(struct restore *r, char ***out, int *count)
{
    const char *params[1] = { r->to.schema };
    PGresult *tables, *keys;
    bool *placed;
    char **order;
    int n, done = 0;

    tables = db_exec(&r->db, r->arena, &r->err, "SELECT c.relname"
        " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace s"
        " ON s.oid = c.relnamespace WHERE s.nspname = $1"
        " AND c.relkind IN ('r', 'p') ORDER BY c.relname", 1, params);
    keys = tables == NULL ? NULL : db_exec(&r->db, r->arena, &r->err,
        "SELECT child.relname, parent.relname"
        " FROM pg_catalog.pg_constraint k"
        " JOIN pg_catalog.pg_class child ON child.oid = k.conrelid"
        " JOIN pg_catalog.pg_class parent ON parent.oid = k.confrelid"
        " JOIN pg_catalog.pg_namespace s ON s.oid = child.relnamespace"
        " WHERE k.contype = 'f' AND s.nspname = $1"
        " AND parent.relnamespace = child.relnamespace"
        " AND parent.oid <> child.oid", 1, params);
    if (keys == NULL)
        return -1;

    n = PQntuples(tables);
    placed = xcalloc((size_t)n + 1, sizeof(*placed));
    order = xcalloc((size_t)n + 1, sizeof(*order));
    while (done < n) {
        int next = -1;

        for (int i = 0; i < n && next < 0; i++) {
            bool ready = !placed[i];

            for (int k = 0; ready && k < PQntuples(keys); k++) {
                if (strcmp(PQgetvalue(keys, k, 0),
                        PQgetvalue(tables, i, 0)) != 0)
                    continue;
                for (int j = 0; j < n; j++)
                    if (!placed[j] && strcmp(PQgetvalue(tables, j, 0),
                            PQgetvalue(keys, k, 1)) == 0)
                        ready = false;
            }
            if (ready)
                next = i;
        }
        if (next < 0) {
            free(placed);
            free(order);
            return error_set(&r->err, 500, "the foreign keys of %s form a "
                "cycle; its tables cannot be loaded one after another",
                r->to.schema);
        }
        placed[next] = true;
        order[done++] = arena_strdup(r->arena, PQgetvalue(tables, next, 0));
    }
    free(placed);
    *out = order;
    *count = n;
    return 0;
}

/*
 * The list pg_restore --use-list follows: the dump's TABLE DATA entries
 * in table_order's order, schema_migrations left out (the new schema has
 * its own rows, at the same version).
 */
static int
write_use_list(struct restore *r, const char *path)
{
    char **order = NULL;
    int count = 0;
    FILE *f;

    if (table_order(r, &order, &count) < 0)
        return -1;
    for (int i = 0; i < r->ntables; i++) {
        bool known = false;

        for (int j = 0; j < count; j++)
            known |= strcmp(order[j], r->tables[i].name) == 0;
        if (!known) {
            free(order);
            return error_set(&r->err, 409, "the archive has table %s, "
                "which the tenant schema here does not", r->tables[i].name);
        }
    }

    f = fopen(path, "w");
    if (f == NULL) {
        free(order);
        return error_set(&r->err, 500, "could not write %s: %s", path,
            strerror(errno));
    }
    for (int j = 0; j < count; j++) {
        const struct table_data *t = dump_table(r, order[j]);

        if (t != NULL && strcmp(t->name, "schema_migrations") != 0)
            fprintf(f, "%s\n", t->toc_line);
    }
    free(order);
    if (fclose(f) != 0)
        return error_set(&r->err, 500, "could not write %s", path);
    return 0;
}

/* The first line of the server's message, into err. */
static int
copy_failed(struct restore *r, PGresult *res, const char *table)
{
    const char *message = res != NULL ? PQresultErrorMessage(res)
                                      : PQerrorMessage(r->db.conn);

    if (strncmp(message, "ERROR:", 6) == 0)
        message += 6;
    message += strspn(message, " ");
    return error_set(&r->err, 500, "loading %s: %.*s", table,
        (int)strcspn(message, "\n"), message);
}

/*
 * "COPY <archived schema>.<table> (<columns>) FROM stdin;" becomes the
 * same COPY into the target schema.  Only that shape is accepted: the
 * columns may be names and quoted names, nothing else.
 */
static char *
copy_statement(struct restore *r, const char *line, char *table,
    size_t table_size)
{
    size_t prefix = strlen("COPY ") + strlen(r->from.schema) + 1;
    const char *name, *columns, *end;
    size_t len = strlen(line), quotes = 0;

    if (strncmp(line, "COPY ", 5) != 0 ||
        strncmp(line + 5, r->from.schema, strlen(r->from.schema)) != 0 ||
        line[prefix - 1] != '.' || len < prefix + 20 ||
        strcmp(line + len - strlen(") FROM stdin;"), ") FROM stdin;") != 0)
        return NULL;
    name = line + prefix;
    columns = strstr(name, " (");
    if (columns == NULL || !plain_identifier(name, (size_t)(columns - name))
        || (size_t)(columns - name) >= table_size)
        return NULL;
    memcpy(table, name, (size_t)(columns - name));
    table[columns - name] = '\0';
    if (dump_table(r, table) == NULL)
        return NULL;

    columns += 2;
    end = line + len - strlen(") FROM stdin;");
    for (const char *p = columns; p < end; p++) {
        if (*p == '"')
            quotes++;
        else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                   *p == '_' || *p == ',' || *p == ' '))
            return NULL;
    }
    if (quotes % 2 != 0)
        return NULL;
    return xasprintf("COPY %s.%s (%.*s) FROM STDIN", schema_sql(r,
        r->to.schema), table, (int)(end - columns), columns);
}

/* The lines of pg_restore's script that are not statements for us. */
static bool
ignorable_line(const char *line)
{
    return line[0] == '\0' || strncmp(line, "--", 2) == 0 ||
        (strncmp(line, "SET ", 4) == 0 && line[strlen(line) - 1] == ';') ||
        strcmp(line, "SELECT pg_catalog.set_config('search_path', '', "
            "false);") == 0 ||
        strncmp(line, "\\restrict ", 10) == 0 ||
        strncmp(line, "\\unrestrict ", 12) == 0;
}

/*
 * Reads pg_restore's script from in and runs its COPYs in the target
 * schema: statement lines are checked and rewritten, data lines are sent
 * as they are until the "\." that ends each COPY.
 */
static int
run_script(struct restore *r, FILE *in)
{
    char *line = NULL, *statement;
    char table[64] = "";
    size_t size = 0;
    ssize_t len;
    bool copying = false;
    PGresult *res;
    int rc = -1;

    while ((len = getline(&line, &size, in)) > 0) {
        if (copying) {
            if (strcmp(line, "\\.\n") != 0) {
                if (PQputCopyData(r->db.conn, line, (int)len) != 1) {
                    copy_failed(r, NULL, table);
                    goto out;
                }
                continue;
            }
            copying = false;
            if (PQputCopyEnd(r->db.conn, NULL) != 1) {
                copy_failed(r, NULL, table);
                goto out;
            }
            res = PQgetResult(r->db.conn);
            if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                copy_failed(r, res, table);
                PQclear(res);
                goto out;
            }
            r->rows += atol(PQcmdTuples(res));
            PQclear(res);
            while ((res = PQgetResult(r->db.conn)) != NULL)
                PQclear(res);
            continue;
        }

        if (line[len - 1] == '\n')
            line[--len] = '\0';
        if (strncmp(line, "SET client_encoding = '", 23) == 0) {
            const char *params[1];
            char encoding[64];

            if (sscanf(line, "SET client_encoding = '%63[A-Za-z0-9_]';",
                    encoding) != 1) {
                error_set(&r->err, 500, "pg_restore's script sets an "
                    "encoding crewctl does not read");
                goto out;
            }
            params[0] = encoding;
            if (db_run(&r->db, &r->err, "SELECT set_config("
                    "'client_encoding', $1, true)", 1, params) < 0)
                goto out;
            continue;
        }
        if (ignorable_line(line))
            continue;

        statement = copy_statement(r, line, table, sizeof(table));
        if (statement == NULL) {
            error_set(&r->err, 500, "pg_restore's script holds a statement "
                "crewctl does not expect: %.80s", line);
            goto out;
        }
        res = PQexecParams(r->db.conn, statement, 0, NULL, NULL, NULL, NULL,
            0);
        free(statement);
        if (PQresultStatus(res) != PGRES_COPY_IN) {
            copy_failed(r, res, table);
            PQclear(res);
            goto out;
        }
        PQclear(res);
        copying = true;
    }
    if (copying) {
        error_set(&r->err, 500, "pg_restore's script ended inside the data "
            "of %s", table);
        goto out;
    }
    rc = 0;

out:
    if (copying) {
        /* Abort the COPY; the transaction fails and is rolled back. */
        PQputCopyEnd(r->db.conn, "crewctl: restore aborted");
        while ((res = PQgetResult(r->db.conn)) != NULL)
            PQclear(res);
    }
    free(line);
    return rc;
}

static int
load_rows(struct restore *r)
{
    char *use_list, *list_arg;
    FILE *in;
    int fds[2];
    pid_t pid;
    int rc;

    /* The list sits beside the members, in the scratch folder. */
    use_list = xstrdup(scratch_file("restore.list"));
    if (write_use_list(r, use_list) < 0) {
        free(use_list);
        return -1;
    }

    list_arg = xasprintf("--use-list=%s", use_list);
    {
        const char *args[] = {
            r->pg_restore.path, "--data-only", "--file=-", list_arg,
            member_path(r, BACKUP_SCHEMA_DUMP), NULL
        };

        if (pipe(fds) < 0) {
            free(list_arg);
            free(use_list);
            return error_set(&r->err, 500, "pipe: %s", strerror(errno));
        }
        fcntl(fds[0], F_SETFD, FD_CLOEXEC);
        pid = pg_program_start(args, NULL, fds[1], &r->err);
    }
    close(fds[1]);
    free(list_arg);
    if (pid < 0) {
        close(fds[0]);
        free(use_list);
        return -1;
    }
    scratch_child(pid);

    in = fdopen(fds[0], "r");
    rc = run_script(r, in);
    if (rc < 0)
        kill(pid, SIGTERM);
    fclose(in);
    if (rc == 0)
        rc = pg_program_wait(pid, "pg_restore", &r->err);
    else
        waitpid(pid, NULL, 0);
    scratch_child(0);
    unlink(use_list);
    free(use_list);
    return rc;
}

/* ----------------------------------------------------------------------
 * Users, ids and credentials.
 * -------------------------------------------------------------------- */

static int
current_token_version(const struct restore *r, const char *id)
{
    for (int i = 0; i < r->ntoken_versions; i++)
        if (strcmp(r->token_versions[i].id, id) == 0)
            return r->token_versions[i].version;
    return 0;
}

/*
 * Each line of users.jsonl becomes a row of public.users: with a new id
 * (and the mapping remembered) for a new tenant, with its own id and a
 * token_version above both the archived and the current one with
 * --replace, so no token issued before the restore is accepted after.
 * Only columns public.users has are written; the others take defaults.
 */
static int
restore_users(struct restore *r)
{
    PGresult *columns;
    char *line = NULL;
    size_t size = 0;
    ssize_t len;
    long number = 0;
    FILE *in;
    int rc = -1;

    columns = db_exec(&r->db, r->arena, &r->err, "SELECT attname"
        " FROM pg_catalog.pg_attribute WHERE attrelid = 'public.users'"
        "::regclass AND attnum > 0 AND NOT attisdropped", 0, NULL);
    if (columns == NULL)
        return -1;
    in = fopen(member_path(r, BACKUP_USERS), "r");
    if (in == NULL)
        return damaged(r, "its users cannot be read");

    while ((len = getline(&line, &size, in)) > 0) {
        struct json_object *user = NULL, *id;
        struct buf names = BUF_INIT;
        char user_id[UUID_TEXT_LEN + 1];
        const char *params[1];
        const char *from, *to;
        bool has_token_version = false;
        int failed = 0;

        number++;
        if (json_parse(line, (size_t)len, &user, &r->err) < 0 ||
            json_object_get_type(user) != json_type_object ||
            (id = get_member(user, "id", json_type_string)) == NULL) {
            json_object_put(user);
            error_clear(&r->err);
            damaged(r, "a line of its users is not a user");
            goto out;
        }

        from = json_object_get_string(id);
        to = r->replace ? from : map_add(&r->ids, from, NULL);
        if (to == NULL) {
            json_object_put(user);
            damaged(r, "a user's id is not a UUID");
            goto out;
        }

        /* Replacing the member frees from, and with --replace to. */
        snprintf(user_id, sizeof(user_id), "%s", to);
        to = user_id;
        json_object_object_add(user, "id", json_object_new_string(to));
        json_object_object_add(user, "tenant_id",
            json_object_new_string(r->to.id));

        json_object_object_foreach(user, key, value) {
            bool known = false;
            char *quoted;

            (void)value;
            for (int i = 0; i < PQntuples(columns); i++)
                known |= strcmp(PQgetvalue(columns, i, 0), key) == 0;
            if (!known) {
                error_set(&r->err, 409, "the archive's users have a column "
                    "%.60s, which public.users here lacks (the archive "
                    "comes from a newer crewd)", key);
                failed = 1;
                break;
            }
            has_token_version |= strcmp(key, "token_version") == 0;
            quoted = PQescapeIdentifier(r->db.conn, key, strlen(key));
            buf_printf(&names, "%s%s", names.len > 0 ? ", " : "", quoted);
            PQfreemem(quoted);
        }
        if (!failed && r->replace && has_token_version) {
            struct json_object *v = get_member(user, "token_version",
                json_type_int);
            int archived = v != NULL ? json_object_get_int(v) : 0;
            int current = current_token_version(r, to);

            json_object_object_add(user, "token_version",
                json_object_new_int((archived > current ? archived
                                                        : current) + 1));
        }
        if (!failed) {
            char *sql = xasprintf("INSERT INTO public.users (%s)"
                " SELECT %s FROM jsonb_populate_record("
                "NULL::public.users, $1::jsonb)", buf_cstr(&names),
                buf_cstr(&names));

            params[0] = json_object_to_json_string_ext(user,
                JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
            failed = db_run(&r->db, &r->err, sql, 1, params) < 0;
            free(sql);
        }
        buf_free(&names);
        json_object_put(user);
        if (failed)
            goto out;
        r->users++;
    }
    rc = 0;

out:
    free(line);
    fclose(in);
    return rc;
}

/* Adds to the map every id found by sql (one text column), fresh ones. */
static int
map_found_ids(struct restore *r, const char *sql)
{
    PGresult *res = db_exec(&r->db, r->arena, &r->err, sql, 0, NULL);

    if (res == NULL)
        return -1;
    for (int i = 0; i < PQntuples(res); i++)
        map_add(&r->ids, PQgetvalue(res, i, 0), NULL);
    return 0;
}

/* An audit entry's user, and the user it is about. */
static int
note_audit_users(struct restore *r, enum mongo_kind kind, bson_t **doc,
    long line, void *context)
{
    bson_iter_t iter;

    if (bson_iter_init_find(&iter, *doc, "user_id") &&
        BSON_ITER_HOLDS_UTF8(&iter))
        map_add(&r->ids, bson_iter_utf8(&iter, NULL), NULL);
    if (bson_iter_init_find(&iter, *doc, "resource_type") &&
        BSON_ITER_HOLDS_UTF8(&iter) &&
        strcmp(bson_iter_utf8(&iter, NULL), "user") == 0 &&
        bson_iter_init_find(&iter, *doc, "resource_id") &&
        BSON_ITER_HOLDS_UTF8(&iter))
        map_add(&r->ids, bson_iter_utf8(&iter, NULL), NULL);
    return 0;
}

/*
 * Ids of users that no longer exist (deleted after they acted) are
 * still user ids: they get new ones too, the same wherever they appear.
 * They are found in the user_id columns, in the audit outbox's user
 * resources and in the archived audit trail.
 */
static int
map_departed_users(struct restore *r)
{
    const char *params[1] = { r->to.schema };
    const char *schema = schema_sql(r, r->to.schema);
    PGresult *res;

    res = db_exec(&r->db, r->arena, &r->err, "SELECT c.relname"
        " FROM pg_catalog.pg_attribute a"
        " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
        " JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace"
        " WHERE s.nspname = $1 AND c.relkind IN ('r', 'p')"
        " AND a.attname = 'user_id' AND NOT a.attisdropped"
        " AND a.atttypid = 'uuid'::regtype", 1, params);
    if (res == NULL)
        return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        char *quoted = PQescapeIdentifier(r->db.conn, PQgetvalue(res, i, 0),
            strlen(PQgetvalue(res, i, 0)));
        char *sql = xasprintf("SELECT DISTINCT user_id::text FROM %s.%s"
            " WHERE user_id IS NOT NULL", schema, quoted);
        int rc = map_found_ids(r, sql);

        free(sql);
        PQfreemem(quoted);
        if (rc < 0)
            return -1;
    }
    if (dump_table(r, "audit_outbox") != NULL) {
        char *sql = xasprintf("SELECT DISTINCT resource_id::text"
            " FROM %s.audit_outbox WHERE resource_type = 'user'"
            " AND resource_id IS NOT NULL", schema);
        int rc = map_found_ids(r, sql);

        free(sql);
        if (rc < 0)
            return -1;
    }

    return each_document(r, MONGO_AUDIT_LOGS, note_audit_users, NULL);
}

/*
 * Every uuid column of the new schema's tables: a value equal to the old
 * tenant id or an old user id becomes the new one.  UUIDs are random, so
 * equal means "that tenant" or "that user" (tenant_id and user_id
 * columns, audit_outbox.resource_id of a user or the tenant).
 */
static int
rekey_columns(struct restore *r)
{
    const char *params[2] = { r->to.schema, NULL };
    const char *schema = schema_sql(r, r->to.schema);
    struct buf from = BUF_INIT, to = BUF_INIT;
    PGresult *res;
    int rc = -1;

    res = db_exec(&r->db, r->arena, &r->err, "SELECT c.relname, a.attname"
        " FROM pg_catalog.pg_attribute a"
        " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
        " JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace"
        " WHERE s.nspname = $1 AND c.relkind IN ('r', 'p')"
        " AND a.attnum > 0 AND NOT a.attisdropped"
        " AND a.atttypid = 'uuid'::regtype ORDER BY 1, 2", 1, params);
    if (res == NULL)
        return -1;

    map_arrays(&r->ids, &from, &to);
    params[0] = buf_cstr(&from);
    params[1] = buf_cstr(&to);
    for (int i = 0; i < PQntuples(res); i++) {
        char *table = PQescapeIdentifier(r->db.conn, PQgetvalue(res, i, 0),
            strlen(PQgetvalue(res, i, 0)));
        char *column = PQescapeIdentifier(r->db.conn,
            PQgetvalue(res, i, 1), strlen(PQgetvalue(res, i, 1)));
        char *sql = xasprintf("UPDATE %s.%s SET %s ="
            " ($2::uuid[])[array_position($1::uuid[], %s)]"
            " WHERE %s = ANY ($1::uuid[])", schema, table, column, column,
            column);
        int failed = db_run(&r->db, &r->err, sql, 2, params) < 0;

        free(sql);
        PQfreemem(table);
        PQfreemem(column);
        if (failed)
            goto out;
    }
    rc = 0;

out:
    buf_free(&from);
    buf_free(&to);
    return rc;
}

/*
 * The audit outbox's "changes" (the resources as the API showed them:
 * a user's id, an execution's user_id, everybody's tenant_id) get the
 * same rewriting as the audit trail in MongoDB.  An entry too deep for
 * the JSON parser (over 32 levels) is left as it was, and counted.
 */
static int
rekey_outbox(struct restore *r)
{
    const char *schema = schema_sql(r, r->to.schema);
    char *sql;
    PGresult *res;

    if (dump_table(r, "audit_outbox") == NULL)
        return 0;
    sql = xasprintf("SELECT id::text, changes::text FROM %s.audit_outbox",
        schema);
    res = db_exec(&r->db, r->arena, &r->err, sql, 0, NULL);
    free(sql);
    if (res == NULL)
        return -1;

    sql = xasprintf("UPDATE %s.audit_outbox SET changes = $2::json"
        " WHERE id = $1", schema);
    for (int i = 0; i < PQntuples(res); i++) {
        struct json_object *changes = NULL;
        struct crewd_error ignored;
        const char *params[2];
        int failed;

        error_clear(&ignored);
        if (json_parse(PQgetvalue(res, i, 1),
                (size_t)PQgetlength(res, i, 1), &changes, &ignored) < 0) {
            r->outbox_left++;
            continue;
        }
        if (!rewrite_json(changes, &r->ids)) {
            json_object_put(changes);
            continue;
        }
        params[0] = PQgetvalue(res, i, 0);
        params[1] = json_object_to_json_string_ext(changes,
            JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        failed = db_run(&r->db, &r->err, sql, 2, params) < 0;
        json_object_put(changes);
        if (failed) {
            free(sql);
            return -1;
        }
    }
    free(sql);
    return 0;
}

/*
 * A provider's credentials are sealed for "<tenant id>|<provider id>"
 * (lib/seal.h): each is opened for the archived tenant and sealed again
 * for the target under this installation's current master key.  Sealed
 * under a key this installation does not have, they cannot be opened:
 * the restore is refused, unless --without-credentials drops them all.
 */
static int
reseal_credentials(struct restore *r)
{
    const char *schema = schema_sql(r, r->to.schema);
    struct seal_keyring ring;
    char unknown_key[SEAL_KEY_ID_TEXT_LEN + 1] = "";
    long failed = 0;
    PGresult *res;
    char *sql;
    int rc = -1;

    if (dump_table(r, "llm_providers") == NULL)
        return 0;
    if (r->without_credentials) {
        sql = xasprintf("UPDATE %s.llm_providers SET encrypted_credentials"
            " = NULL WHERE encrypted_credentials IS NOT NULL", schema);
        res = db_exec(&r->db, r->arena, &r->err, sql, 0, NULL);
        free(sql);
        if (res == NULL)
            return -1;
        r->credentials_dropped = atol(PQcmdTuples(res));
        return 0;
    }

    sql = xasprintf("SELECT id::text, encrypted_credentials"
        " FROM %s.llm_providers WHERE encrypted_credentials IS NOT NULL"
        " ORDER BY id", schema);
    res = db_exec(&r->db, r->arena, &r->err, sql, 0, NULL);
    free(sql);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0)
        return 0;
    if (seal_keyring_load(&ring, r->conf, &r->err) < 0)
        return -1;

    sql = xasprintf("UPDATE %s.llm_providers SET encrypted_credentials = $2"
        " WHERE id = $1", schema);
    for (int i = 0; i < PQntuples(res); i++) {
        const char *provider = PQgetvalue(res, i, 0);
        char from_context[SEAL_PROVIDER_AD_LEN + 1];
        char to_context[SEAL_PROVIDER_AD_LEN + 1];
        struct crewd_error why;
        unsigned char *sealed, *plain, *fresh;
        size_t len, plain_len, fresh_len;
        const char *params[2];
        char *text;
        int update_failed;

        seal_provider_context(from_context, r->from.id, provider);
        seal_provider_context(to_context, r->to.id, provider);
        sealed = seal_bytea_parse(PQgetvalue(res, i, 1), &len);
        if (sealed == NULL || len < SEAL_OVERHEAD) {
            failed++;
            free(sealed);
            continue;
        }
        error_clear(&why);
        plain = xmalloc(len - SEAL_OVERHEAD + 1);
        if (seal_open(&ring, from_context, sealed, len, plain, &plain_len,
                NULL, &why) < 0) {
            if (unknown_key[0] == '\0')
                seal_key_id_of(sealed, len, unknown_key);
            failed++;
            free(plain);
            free(sealed);
            continue;
        }

        fresh_len = seal_sealed_len(plain_len);
        fresh = xmalloc(fresh_len);
        seal_seal(&ring.keys[0], to_context, plain, plain_len, fresh);
        sodium_memzero(plain, plain_len);
        free(plain);
        free(sealed);
        text = xmalloc(2 * fresh_len + 3);
        seal_bytea_text(fresh, fresh_len, text);
        free(fresh);
        params[0] = provider;
        params[1] = text;
        update_failed = db_run(&r->db, &r->err, sql, 2, params) < 0;
        free(text);
        if (update_failed)
            goto out;
        r->credentials++;
    }

    if (failed > 0) {
        error_set(&r->err, 409, "%ld LLM provider credential(s) of the "
            "archive do not open with this installation's master keys "
            "(sealed under key id %s); nothing was changed", failed,
            unknown_key[0] != '\0' ? unknown_key : "unknown");
        snprintf(r->hint, sizeof(r->hint), "they were sealed by an "
            "installation with another master key: add that key file to "
            "master_key_previous_files (they are then sealed again under "
            "this installation's key), or restore with "
            "--without-credentials to keep the providers without their "
            "credentials");
        goto out;
    }
    rc = 0;

out:
    free(sql);
    seal_keyring_wipe(&ring);
    return rc;
}

/* ----------------------------------------------------------------------
 * MongoDB.
 * -------------------------------------------------------------------- */

/* Documents on their way to one collection. */
struct batch {
    const char *tenant_id;
    bson_t *docs[INSERT_BATCH];
    size_t n;
};

static int
flush_batch(struct restore *r, enum mongo_kind kind, struct batch *b)
{
    int rc = mongo_insert_many(r->mongo, kind, b->tenant_id,
        (const bson_t *const *)b->docs, b->n, MONGO_INSERT_DUPLICATES_OK,
        &r->err);

    for (size_t i = 0; i < b->n; i++)
        bson_destroy(b->docs[i]);
    b->n = 0;
    return rc;
}

/* The audit trail gets the new ids; every document joins the batch. */
static int
queue_document(struct restore *r, enum mongo_kind kind, bson_t **doc,
    long line, void *context)
{
    struct batch *b = context;

    if (kind == MONGO_AUDIT_LOGS && r->ids.n > 0) {
        bson_t *rewritten = bson_new();

        rewrite_bson(*doc, rewritten, &r->ids);
        bson_destroy(*doc);
        *doc = rewritten;
    }
    b->docs[b->n++] = *doc;
    *doc = NULL;
    r->documents[kind]++;
    return b->n == INSERT_BATCH ? flush_batch(r, kind, b) : 0;
}

/*
 * Fills tenant_id's collections (made already) from the archive, whose
 * documents were checked against their collections' rules before
 * anything changed.  Documents already there (a second run) count as
 * written.
 */
static int
restore_collections(struct restore *r, const char *tenant_id)
{
    for (int kind = 0; kind < MONGO_KIND_COUNT; kind++) {
        struct batch b = { tenant_id, { NULL }, 0 };
        int rc = each_document(r, kind, queue_document, &b);

        if (rc == 0 && b.n > 0)
            rc = flush_batch(r, kind, &b);
        for (size_t i = 0; i < b.n; i++)
            bson_destroy(b.docs[i]);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ----------------------------------------------------------------------
 * The two ways.
 * -------------------------------------------------------------------- */

/*
 * The archived tenant's settings (name, audit_reads, TTLs) on the
 * target's row, is_active as given; its MongoDB collections pending.
 * Fills ttl with the TTLs now stored.
 */
static int
restore_settings(struct restore *r, bool active, struct mongo_ttl *ttl)
{
    const char *params[3];
    PGresult *res;

    params[0] = r->to.id;
    params[1] = json_object_to_json_string_ext(r->tenant_row,
        JSON_C_TO_STRING_PLAIN);
    params[2] = active ? "true" : "false";
    res = db_exec(&r->db, r->arena, &r->err, "UPDATE public.tenants t SET"
        " name = coalesce(a.name, t.name),"
        " audit_reads = coalesce(a.audit_reads, t.audit_reads),"
        " execution_log_ttl_days = coalesce(a.execution_log_ttl_days,"
        " t.execution_log_ttl_days),"
        " chat_message_ttl_days = coalesce(a.chat_message_ttl_days,"
        " t.chat_message_ttl_days),"
        " is_active = $3::boolean, mongo_provisioned_at = NULL,"
        " updated_at = now()"
        " FROM jsonb_populate_record(NULL::public.tenants, $2::jsonb) a"
        " WHERE t.id = $1"
        " RETURNING t.execution_log_ttl_days, t.chat_message_ttl_days",
        3, params);
    if (res == NULL)
        return -1;
    ttl->execution_logs_days = atoi(PQgetvalue(res, 0, 0));
    ttl->chat_messages_days = atoi(PQgetvalue(res, 0, 1));
    return 0;
}

/*
 * Running crewd learns of the tenant (its cache of tenants), and its
 * audit shipper of the restored outbox, at the commit.
 */
static int
notify(struct restore *r)
{
    const char *params[1] = { r->to.id };

    return db_notify_tenants(&r->db, &r->err) < 0 ||
        db_run(&r->db, &r->err, "SELECT pg_notify('" AUDIT_CHANNEL "', $1)",
            1, params) < 0 ? -1 : 0;
}

/* Everything of a new tenant in one transaction, MongoDB included. */
static int
restore_new(struct restore *r)
{
    const char *params[4];
    struct mongo_ttl ttl;
    bool collections_made = false;
    PGresult *res;

    uuid_generate(r->to.id);
    tenant_schema_name_random(r->to.schema);
    snprintf(r->to.slug, sizeof(r->to.slug), "%s", r->new_slug);
    map_add(&r->ids, r->from.id, r->to.id);

    if (db_begin(&r->db, &r->err) < 0)
        return -1;
    params[0] = r->to.id;
    params[1] = r->from_name;
    params[2] = r->to.slug;
    params[3] = r->to.schema;
    res = db_exec(&r->db, r->arena, &r->err, "SELECT public."
        "crewd_create_tenant($1, $2, $3, $4)", 4, params);
    if (res == NULL) {
        if (r->err.status == 409 && strstr(r->err.constraint, "slug"))
            error_set(&r->err, 409, "the slug \"%s\" is taken; nothing was "
                "changed", r->to.slug);
        goto fail;
    }
    if (restore_settings(r, r->active, &ttl) < 0 ||
        load_rows(r) < 0 ||
        restore_users(r) < 0 ||
        map_departed_users(r) < 0 ||
        rekey_columns(r) < 0 ||
        rekey_outbox(r) < 0 ||
        reseal_credentials(r) < 0)
        goto fail;

    /*
     * The collections are named after the new id, which nobody knows
     * until the commit: they are made and filled first, so a failure
     * here leaves neither a tenant nor collections behind.
     */
    if (mongo_configured(r->mongo)) {
        collections_made = true;
        params[0] = r->to.id;
        if (mongo_provision_tenant(r->mongo, r->to.id, &ttl, &r->err) < 0 ||
            restore_collections(r, r->to.id) < 0 ||
            db_run(&r->db, &r->err, "UPDATE public.tenants SET"
                " mongo_provisioned_at = now() WHERE id = $1", 1,
                params) < 0)
            goto fail;
    }

    if (notify(r) < 0 || db_commit(&r->db, &r->err) < 0)
        goto fail;
    return 0;

fail:
    db_rollback(&r->db);
    if (collections_made) {
        struct crewd_error later;

        error_clear(&later);
        if (mongo_drop_tenant(r->mongo, r->to.id, &later) < 0)
            snprintf(r->hint, sizeof(r->hint), "nothing was restored, but "
                "the collections made for it stay in MongoDB: crewctl "
                "mongo drop --tenant-id %s removes them", r->to.id);
    }
    if (r->hint[0] == '\0')
        snprintf(r->hint, sizeof(r->hint), "nothing was changed");
    return -1;
}

/* --replace, PostgreSQL's part: one transaction, the tenant suspended. */
static int
replace_postgresql(struct restore *r, struct mongo_ttl *ttl)
{
    const char *params[1] = { r->to.id };
    const char *schema = schema_sql(r, r->to.schema);
    struct buf tables = BUF_INIT;
    PGresult *res;
    char *sql;
    int failed;

    if (db_begin(&r->db, &r->err) < 0)
        return -1;
    res = db_exec(&r->db, r->arena, &r->err, "SELECT 1 FROM public.tenants"
        " WHERE id = $1 FOR UPDATE", 1, params);
    if (res == NULL)
        goto fail;
    if (PQntuples(res) == 0) {
        error_set(&r->err, 404, "tenant %s was deleted meanwhile",
            r->to.slug);
        goto fail;
    }

    res = db_exec(&r->db, r->arena, &r->err, "SELECT id::text,"
        " token_version FROM public.users WHERE tenant_id = $1", 1, params);
    if (res == NULL)
        goto fail;
    r->ntoken_versions = PQntuples(res);
    r->token_versions = xcalloc((size_t)r->ntoken_versions + 1,
        sizeof(*r->token_versions));
    for (int i = 0; i < r->ntoken_versions; i++) {
        snprintf(r->token_versions[i].id, sizeof(r->token_versions[i].id),
            "%s", PQgetvalue(res, i, 0));
        r->token_versions[i].version = atoi(PQgetvalue(res, i, 1));
    }

    /* Every table's rows go, schema_migrations' aside. */
    res = db_exec(&r->db, r->arena, &r->err, "SELECT quote_ident(c.relname)"
        " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace s"
        " ON s.oid = c.relnamespace WHERE s.nspname = $1"
        " AND c.relkind IN ('r', 'p') AND c.relname <> 'schema_migrations'"
        " ORDER BY 1", 1, (const char *[]){ r->to.schema });
    if (res == NULL)
        goto fail;
    for (int i = 0; i < PQntuples(res); i++)
        buf_printf(&tables, "%s%s.%s", i > 0 ? ", " : "", schema,
            PQgetvalue(res, i, 0));
    if (tables.len > 0) {
        sql = xasprintf("TRUNCATE %s", buf_cstr(&tables));
        failed = db_run(&r->db, &r->err, sql, 0, NULL) < 0;
        free(sql);
        if (failed)
            goto fail;
    }
    if (db_run(&r->db, &r->err, "DELETE FROM public.users WHERE tenant_id"
            " = $1", 1, params) < 0)
        goto fail;

    if (restore_settings(r, false, ttl) < 0 ||
        load_rows(r) < 0 ||
        restore_users(r) < 0 ||
        reseal_credentials(r) < 0 ||
        db_notify_tenants(&r->db, &r->err) < 0 ||
        db_commit(&r->db, &r->err) < 0)
        goto fail;
    buf_free(&tables);
    return 0;

fail:
    buf_free(&tables);
    db_rollback(&r->db);
    if (r->hint[0] == '\0')
        snprintf(r->hint, sizeof(r->hint), "nothing was changed");
    return -1;
}

static int
set_active(struct restore *r, bool active)
{
    const char *params[2] = { r->to.id, active ? "true" : "false" };

    if (db_begin(&r->db, &r->err) < 0 ||
        db_run(&r->db, &r->err, "UPDATE public.tenants SET is_active = $2,"
            " updated_at = now() WHERE id = $1", 2, params) < 0 ||
        notify(r) < 0 ||
        db_commit(&r->db, &r->err) < 0) {
        db_rollback(&r->db);
        return -1;
    }
    return 0;
}

static int
restore_replace(struct restore *r)
{
    const char *params[1] = { r->to.id };
    struct mongo_ttl ttl;

    /*
     * The shipper's own lock on the tenant (fcgi/shipper.c), held until
     * MongoDB is restored: the restored outbox is not shipped into
     * collections that are about to be dropped.
     */
    r->lock_db.owner = true;
    if (db_open(&r->lock_db, r->conf->owner_database_url, false,
            &r->err) < 0 ||
        db_begin(&r->lock_db, &r->err) < 0 ||
        db_run(&r->lock_db, &r->err, "SELECT pg_advisory_xact_lock("
            "hashtext('crewd.audit.' || $1))", 1, params) < 0) {
        snprintf(r->hint, sizeof(r->hint), "nothing was changed");
        return -1;
    }

    if (replace_postgresql(r, &ttl) < 0)
        return -1;

    if (mongo_configured(r->mongo) &&
        (mongo_drop_tenant(r->mongo, r->to.id, &r->err) < 0 ||
         provision_tenant(&r->db, r->mongo, r->arena, r->to.id,
            &r->err) < 0 ||
         restore_collections(r, r->to.id) < 0)) {
        snprintf(r->hint, sizeof(r->hint), "PostgreSQL holds the "
            "archive's data, but MongoDB's part failed midway: tenant %s is "
            "left suspended with its collections partly restored.  Run the "
            "same command again to finish (it replaces everything again), "
            "or crewctl tenant resume %s to serve it as it is", r->to.slug,
            r->to.slug);
        return -1;
    }

    /* The shipper may come back, and is called by set_active. */
    if (db_commit(&r->lock_db, &r->err) < 0 || set_active(r, r->active) < 0) {
        snprintf(r->hint, sizeof(r->hint), "everything is restored but "
            "tenant %s is still suspended: crewctl tenant resume %s",
            r->to.slug, r->to.slug);
        return -1;
    }
    return 0;
}

/* ----------------------------------------------------------------------
 * The command.
 * -------------------------------------------------------------------- */

static int
run_restore(struct restore *r)
{
    if (open_archive(r) < 0)
        return -1;

    r->mongo = mongo_connect(r->conf->mongodb_uri, &r->err);
    if (r->mongo == NULL)
        return -1;
    r->db.owner = true;
    if (db_open(&r->db, r->conf->owner_database_url, false, &r->err) < 0)
        return error_set(&r->err, 503, "could not connect to the database "
            "as its owner (owner_database_url in the configuration)");

    if (check_versions(r) < 0 ||
        check_documents(r) < 0 ||
        check_mongo(r) < 0 ||
        read_dump_list(r) < 0 ||
        (r->replace ? check_replace_target(r) : check_slug(r)) < 0)
        return -1;

    return r->replace ? restore_replace(r) : restore_new(r);
}

static void
report(const struct restore *r)
{
    printf("restored %s as tenant %s (id %s, schema %s)%s\n", r->file,
        r->to.slug, r->to.id, r->to.schema,
        r->replace ? ", replacing its data" : "");
    printf("schema version %d, %ld user(s), %ld row(s), %ld execution "
        "log(s), %ld chat message(s), %ld audit entr%s\n", r->schema_version,
        r->users, r->rows, r->documents[MONGO_EXECUTION_LOGS],
        r->documents[MONGO_CHAT_MESSAGES], r->documents[MONGO_AUDIT_LOGS],
        r->documents[MONGO_AUDIT_LOGS] == 1 ? "y" : "ies");
    if (r->credentials > 0)
        printf("%ld LLM provider credential(s) sealed again under this "
            "installation's master key\n", r->credentials);
    if (r->credentials_dropped > 0)
        printf("%ld LLM provider credential(s) left out "
            "(--without-credentials): enter them again\n",
            r->credentials_dropped);
    if (r->outbox_left > 0)
        printf("%ld audit outbox entr%s nested too deeply to rewrite kept "
            "the old ids\n", r->outbox_left,
            r->outbox_left == 1 ? "y" : "ies");
    if (!r->active)
        printf("the tenant is suspended, as it was when backed up: crewctl "
            "tenant resume %s serves it\n", r->to.slug);
}

int
crewctl_tenant_restore(const struct crewd_conf *conf, int argc, char **argv)
{
    struct restore r;
    int rc;

    memset(&r, 0, sizeof(r));
    r.conf = conf;

    /*
     * By hand: getopt keeps main's stop-at-the-first-word ordering, and
     * FILE may come before the options.
     */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--slug") == 0 && i + 1 < argc &&
            r.new_slug == NULL)
            r.new_slug = argv[++i];
        else if (strncmp(argv[i], "--slug=", 7) == 0 && r.new_slug == NULL)
            r.new_slug = argv[i] + 7;
        else if (strcmp(argv[i], "--replace") == 0 && !r.replace)
            r.replace = true;
        else if (strcmp(argv[i], "--without-credentials") == 0 &&
                 !r.without_credentials)
            r.without_credentials = true;
        else if (argv[i][0] != '-' && r.file == NULL)
            r.file = argv[i];
        else
            return crewctl_usage_error();
    }
    if (r.file == NULL || (r.new_slug == NULL) == !r.replace)
        return crewctl_usage_error();

    error_clear(&r.err);
    r.arena = arena_new(4096);
    rc = run_restore(&r);
    if (rc == 0) {
        report(&r);
    } else {
        fprintf(stderr, "crewctl: %s\n", r.err.detail);
        if (r.hint[0] != '\0')
            fprintf(stderr, "crewctl: %s\n", r.hint);
    }

    scratch_remove();
    db_close(&r.db);
    db_close(&r.lock_db);
    mongo_close(r.mongo);
    arena_free(r.arena);
    json_object_put(r.manifest);
    json_object_put(r.tenant_row);
    for (int i = 0; i < ARCHIVE_MEMBERS_MAX; i++)
        free(r.paths[i]);
    for (int i = 0; i < r.ntables; i++)
        free(r.tables[i].toc_line);
    free(r.tables);
    free(r.ids.pairs);
    free(r.token_versions);
    return rc == 0 ? 0 : 1;
}
