#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "buf.h"
#include "db.h"
#include "log.h"
#include "master.h"
#include "metrics.h"
#include "mongo.h"
#include "provision.h"
#include "shipper.h"
#include "tenant.h"
#include "uuid.h"

#define STRINGIFY(x) #x
#define STR(x) STRINGIFY(x)

/* Batches of one tenant in a row before the next tenant's turn. */
#define BATCHES_PER_TURN 20

/* The longest pause between tries while MongoDB or PostgreSQL is down. */
#define RETRY_MAX_SECONDS 10

/* The longest sleep: SIGTERM is seen within it even if it lands badly. */
#define WAIT_MAX_MS 1000

/* Another shipper holds a tenant: look again this soon. */
#define BUSY_WAIT_MS 200

/* Tenants with entries in their outbox, in id order. */
static const char SQL_WAITING_TENANTS[] =
    "SELECT id FROM public.crewd_outboxes_waiting() AS w(id)";

static const char SQL_TENANT_SCHEMA[] =
    "SELECT t.db_schema FROM public.tenants t WHERE t.id = $1"
    " AND EXISTS (SELECT 1 FROM pg_catalog.pg_tables p"
    " WHERE p.schemaname = t.db_schema AND p.tablename = 'audit_outbox')";

/* One shipper per tenant at a time; released at the end of the batch. */
static const char SQL_TENANT_LOCK[] =
    "SELECT pg_try_advisory_xact_lock(hashtext('crewd.audit.' || $1))";

/*
 * %s: the tenant's schema, quoted, and a dot.  The oldest rows, locked,
 * with their size; then the batch's rows in full (the columns below).
 */
static const char SQL_CLAIM[] =
    "SELECT id, octet_length(changes::text) FROM %saudit_outbox"
    " ORDER BY id LIMIT " STR(SHIPPER_BATCH) " FOR UPDATE SKIP LOCKED";

static const char SQL_BATCH[] =
    "SELECT id, user_id, action, resource_type, resource_id, changes,"
    " ip_address, user_agent,"
    " floor(extract(epoch FROM created_at) * 1000)::bigint"
    " FROM %saudit_outbox WHERE id = ANY($1::uuid[]) ORDER BY id";

static const char SQL_SHIPPED[] =
    "DELETE FROM %saudit_outbox WHERE id = ANY($1::uuid[])";

/* The columns of SQL_BATCH. */
enum {
    COL_ID, COL_USER_ID, COL_ACTION, COL_RESOURCE_TYPE, COL_RESOURCE_ID,
    COL_CHANGES, COL_IP, COL_USER_AGENT, COL_TIMESTAMP_MS
};

enum ship_result {
    SHIP_DRAINED,       /* nothing left (or the tenant is gone) */
    SHIP_MORE,          /* its turn is over; rows remain */
    SHIP_BUSY,          /* another shipper works on it */
    SHIP_REFUSED,       /* MongoDB refused the batch: this tenant waits */
    SHIP_SINK_DOWN,     /* MongoDB is unavailable: every tenant waits */
    SHIP_DB_DOWN        /* PostgreSQL failed */
};

/* A list of tenant ids. */
struct idlist {
    char (*ids)[UUID_TEXT_LEN + 1];
    size_t n, cap;
};

struct shipper {
    const struct crewd_conf *conf;
    struct db db;
    struct mongo *mongo;
    bool sink_down;             /* MongoDB failed last time */
    struct arena *arena;
    unsigned listening;         /* db.generation that LISTENs */
    struct idlist pending;      /* tenants that may have rows */
    struct timespec next_sweep;
    struct timespec retry_at;   /* MongoDB or PostgreSQL down: not before */
    int retry_seconds;
    bool busy_seen;
    bool more_seen;
};

static volatile sig_atomic_t stop_requested;

static void
on_stop_signal(int sig)
{
    stop_requested = 1;
}

static struct timespec
now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t;
}

static struct timespec
later(int seconds)
{
    struct timespec t = now();

    t.tv_sec += seconds;
    return t;
}

/* Milliseconds from now until t; 0 when t has passed. */
static long
ms_until(struct timespec t)
{
    struct timespec n = now();
    long ms = (long)(t.tv_sec - n.tv_sec) * 1000 +
        (t.tv_nsec - n.tv_nsec) / 1000000;

    return ms > 0 ? ms : 0;
}

static int
compare_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Sorts the list and drops repeats. */
static void
idlist_unique(struct idlist *l)
{
    size_t kept = 0;

    if (l->n == 0)
        return;
    qsort(l->ids, l->n, sizeof(*l->ids), compare_ids);
    for (size_t i = 1; i < l->n; i++)
        if (strcmp(l->ids[i], l->ids[kept]) != 0)
            memcpy(l->ids[++kept], l->ids[i], UUID_TEXT_LEN + 1);
    l->n = kept + 1;
}

/*
 * Adds a tenant.  A full list drops its repeats before it grows, so a
 * busy tenant's notifications during an outage cost one slot, not one
 * per entry.
 */
static void
idlist_add(struct idlist *l, const char *id)
{
    if (l->n == l->cap) {
        idlist_unique(l);

        /* Still more than half full: the tenants are that many. */
        if (l->cap == 0 || l->n * 2 > l->cap) {
            l->cap = l->cap == 0 ? 64 : l->cap * 2;
            l->ids = xrealloc(l->ids, l->cap * sizeof(*l->ids));
        }
    }
    memcpy(l->ids[l->n++], id, UUID_TEXT_LEN + 1);
}

/* After a failure of MongoDB or PostgreSQL: wait longer each time. */
static void
back_off(struct shipper *s)
{
    s->retry_seconds = s->retry_seconds == 0 ? 1
        : s->retry_seconds * 2 > RETRY_MAX_SECONDS ? RETRY_MAX_SECONDS
        : s->retry_seconds * 2;
    s->retry_at = later(s->retry_seconds);
}

/*
 * The connection, open and listening.  A new connection (the first, or
 * after PostgreSQL came back) may have missed notifications: it asks
 * for a sweep at once.
 */
static int
connection_ready(struct shipper *s)
{
    struct crewd_error err;

    error_clear(&err);
    if (db_ready(&s->db, &err) < 0)
        return -1;
    if (s->listening == s->db.generation)
        return 0;

    if (db_run(&s->db, &err, "LISTEN " AUDIT_CHANNEL, 0, NULL) < 0)
        return -1;
    s->listening = s->db.generation;
    s->next_sweep = now();
    return 0;
}

/* Tenants named by the notifications that arrived. */
static void
collect_notifications(struct shipper *s)
{
    char id[UUID_TEXT_LEN + 1];
    PGnotify *note;

    if (s->db.conn == NULL || PQconsumeInput(s->db.conn) == 0)
        return;
    while ((note = PQnotifies(s->db.conn)) != NULL) {
        if (strcmp(note->relname, AUDIT_CHANNEL) == 0 &&
            uuid_parse(note->extra, strlen(note->extra), id))
            idlist_add(&s->pending, id);
        PQfreemem(note);
    }
}

static const char *
quoted_schema(struct shipper *s, const char *schema)
{
    char *quoted;
    const char *out;

    if (!tenant_schema_name_valid(schema))
        return NULL;
    quoted = PQescapeIdentifier(s->db.conn, schema, strlen(schema));
    if (quoted == NULL)
        return NULL;
    out = arena_printf(s->arena, "%s.", quoted);
    PQfreemem(quoted);
    return out;
}

/*
 * Adds every tenant with rows in its outbox to the pending list.  The
 * application role cannot look into the tenants' schemas itself (the
 * roles mode): public.crewd_outboxes_waiting() looks for it, a hundred
 * tenants to a statement, and answers only their ids
 * (sql/public/0011_outboxes_waiting.sql).
 */
static int
sweep(struct shipper *s)
{
    struct crewd_error err;
    PGresult *tenants;
    int found;

    error_clear(&err);
    tenants = db_exec(&s->db, s->arena, &err, SQL_WAITING_TENANTS, 0,
        NULL);
    if (tenants == NULL)
        return -1;
    found = PQntuples(tenants);
    for (int i = 0; i < found; i++)
        idlist_add(&s->pending, db_value(tenants, i, 0));
    if (found > 0)
        log_info("sweep: %d tenant(s) with audit entries to ship", found);
    return 0;
}

/* Says once that MongoDB went away, and once that it came back. */
static void
sink_state(struct shipper *s, bool down, const char *why)
{
    if (down && !s->sink_down)
        log_warn("audit shipper: %s; entries wait in the outboxes", why);
    else if (!down && s->sink_down)
        log_info("audit shipper: MongoDB takes entries again");
    s->sink_down = down;
}

/* Row i of SQL_BATCH's result as an entry. */
static void
stored_entry(const PGresult *rows, int i, struct audit_stored *e)
{
    e->id = db_value(rows, i, COL_ID);
    e->user_id = db_value(rows, i, COL_USER_ID);
    e->action = db_value(rows, i, COL_ACTION);
    e->resource_type = db_value(rows, i, COL_RESOURCE_TYPE);
    e->resource_id = db_value(rows, i, COL_RESOURCE_ID);
    e->changes = db_value(rows, i, COL_CHANGES);
    e->ip_address = db_value(rows, i, COL_IP);
    e->user_agent = db_value(rows, i, COL_USER_AGENT);
    e->timestamp_ms = strtoll(db_value(rows, i, COL_TIMESTAMP_MS), NULL, 10);
}

/*
 * Writes a batch of outbox rows (SQL_BATCH's columns) to the tenant's
 * audit collection: one insert_many, where an _id already there (a
 * batch shipped before whose delete did not commit) counts as written.
 */
static enum ship_result
deliver(struct shipper *s, const char *tenant_id, const PGresult *rows)
{
    int n = PQntuples(rows);
    bson_t *docs = arena_alloc(s->arena, (size_t)n * sizeof(*docs));
    const bson_t **list = arena_alloc(s->arena, (size_t)n * sizeof(*list));
    enum ship_result result = SHIP_DRAINED;
    struct crewd_error err;
    int made;

    error_clear(&err);
    for (made = 0; made < n; made++) {
        struct audit_stored e;

        stored_entry(rows, made, &e);
        list[made] = &docs[made];
        if (audit_document(&e, &docs[made], &err) < 0) {
            log_error("audit entry %s of tenant %s cannot be shipped: %s",
                e.id, tenant_id, err.detail);
            bson_destroy(&docs[made]);
            result = SHIP_REFUSED;
            break;
        }
    }

    if (result == SHIP_DRAINED &&
        mongo_insert_many(s->mongo, MONGO_AUDIT_LOGS, tenant_id, list,
            (size_t)n, MONGO_INSERT_DUPLICATES_OK, &err) < 0)
        result = err.status == 503 ? SHIP_SINK_DOWN : SHIP_REFUSED;
    for (int i = 0; i < made; i++)
        bson_destroy(&docs[i]);

    if (result != SHIP_REFUSED)
        sink_state(s, result == SHIP_SINK_DOWN, err.detail);
    return result;
}

/* The ids of rows[0..n) as one array parameter: "{id,id,...}". */
static const char *
row_ids(struct shipper *s, const PGresult *rows, int n)
{
    struct buf text = BUF_INIT;
    const char *out;

    buf_putc(&text, '{');
    for (int i = 0; i < n; i++)
        buf_printf(&text, "%s%s", i > 0 ? "," : "", db_value(rows, i, 0));
    buf_putc(&text, '}');
    out = arena_strdup(s->arena, buf_cstr(&text));
    buf_free(&text);
    return out;
}

/* How many of the claimed rows fit in one batch (one at least). */
static int
batch_size(const PGresult *claimed)
{
    long long bytes = 0;
    int n;

    for (n = 0; n < PQntuples(claimed); n++) {
        bytes += strtoll(db_value(claimed, n, 1), NULL, 10);
        if (n > 0 && bytes > SHIPPER_BATCH_BYTES)
            break;
    }
    return n;
}

static int
shipper_enter_tenant(struct shipper *s, const char *tenant_id,
    const char *schema, struct crewd_error *err)
{
    struct tenant tenant;

    memset(&tenant, 0, sizeof(tenant));
    snprintf(tenant.id, sizeof(tenant.id), "%s", tenant_id);
    snprintf(tenant.schema, sizeof(tenant.schema), "%s", schema);
    return tenant_context_enter(&s->db, &tenant, err);
}

/*
 * One batch of one tenant, in its own transaction.  schema is the name
 * quoted for the SQL text, raw_schema the name itself.
 */
static enum ship_result
ship_batch(struct shipper *s, const char *tenant_id, const char *schema,
    const char *raw_schema)
{
    const char *params[1] = { tenant_id };
    enum ship_result result;
    struct crewd_error err;
    PGresult *res, *claimed, *rows;
    int n;

    error_clear(&err);
    if (db_begin(&s->db, &err) < 0)
        return SHIP_DB_DOWN;

    res = db_exec(&s->db, s->arena, &err, SQL_TENANT_LOCK, 1, params);
    if (res == NULL)
        goto db_down;
    if (!db_bool(res, 0, 0)) {
        db_rollback(&s->db);
        return SHIP_BUSY;
    }

    /* The outbox is the tenant's: read and emptied as the tenant. */
    if (shipper_enter_tenant(s, tenant_id, raw_schema, &err) < 0)
        goto db_down;

    claimed = db_exec(&s->db, s->arena, &err,
        arena_printf(s->arena, SQL_CLAIM, schema), 0, NULL);
    if (claimed == NULL)
        goto db_down;
    if (PQntuples(claimed) == 0) {
        db_rollback(&s->db);
        return SHIP_DRAINED;
    }
    n = batch_size(claimed);
    params[0] = row_ids(s, claimed, n);
    rows = db_exec(&s->db, s->arena, &err,
        arena_printf(s->arena, SQL_BATCH, schema), 1, params);
    if (rows == NULL)
        goto db_down;

    result = deliver(s, tenant_id, rows);
    if (result != SHIP_DRAINED) {
        db_rollback(&s->db);
        return result;
    }

    /* MongoDB has them: a failure from here on ships them again. */
    if (db_run(&s->db, &err, arena_printf(s->arena, SQL_SHIPPED, schema),
            1, params) < 0 || db_commit(&s->db, &err) < 0)
        goto db_down;

    log_debug("audit shipper: %d entries of tenant %s shipped", n,
        tenant_id);
    metrics_count_audit_shipped(n);
    return n < PQntuples(claimed) || n == SHIPPER_BATCH ? SHIP_MORE
                                                        : SHIP_DRAINED;

db_down:
    db_rollback(&s->db);
    return SHIP_DB_DOWN;
}

/* Ships one tenant's rows, at most BATCHES_PER_TURN batches of them. */
static enum ship_result
ship_tenant(struct shipper *s, const char *tenant_id)
{
    const char *params[1] = { tenant_id };
    struct crewd_error err;
    enum ship_result result = SHIP_DRAINED;
    const char *schema, *raw_schema;
    PGresult *res;

    error_clear(&err);
    res = db_exec(&s->db, s->arena, &err, SQL_TENANT_SCHEMA, 1, params);
    if (res == NULL)
        return SHIP_DB_DOWN;
    if (PQntuples(res) == 0)
        return SHIP_DRAINED;    /* deleted, or not migrated yet */
    raw_schema = arena_strdup(s->arena, db_value(res, 0, 0));
    schema = quoted_schema(s, raw_schema);
    if (schema == NULL) {
        log_error("tenant %s has an invalid schema name", tenant_id);
        return SHIP_DRAINED;
    }

    /*
     * Never into a collection that is not made yet: an insert would make
     * one without its validator and indexes.  A tenant signed up while
     * MongoDB was down gets its collections here, if not before.
     */
    if (provision_ensure(&s->db, s->mongo, s->arena, tenant_id, &err) < 0) {
        if (err.status == 503 && mongo_available(s->mongo))
            return SHIP_DB_DOWN;
        if (err.status == 503) {
            sink_state(s, true, err.detail);
            return SHIP_SINK_DOWN;
        }
        log_error("audit shipper: the collections of tenant %s cannot be "
            "made: %s", tenant_id, err.detail);
        return SHIP_REFUSED;
    }

    for (int turn = 0; turn < BATCHES_PER_TURN; turn++) {
        result = ship_batch(s, tenant_id, schema, raw_schema);
        if (result != SHIP_MORE)
            break;
    }
    return result;
}

/* Ships every pending tenant; keeps those not drained for later. */
static void
ship_pending(struct shipper *s)
{
    struct idlist kept = { NULL, 0, 0 };
    bool failed = false;
    size_t i;

    idlist_unique(&s->pending);
    s->busy_seen = false;
    s->more_seen = false;

    for (i = 0; i < s->pending.n && !failed && !stop_requested; i++) {
        enum ship_result result = ship_tenant(s, s->pending.ids[i]);

        arena_reset(s->arena);

        /*
         * Drained; or refused, which another try will not change soon:
         * the next sweep or entry of the tenant tries it again.
         */
        if (result == SHIP_DRAINED || result == SHIP_REFUSED)
            continue;

        idlist_add(&kept, s->pending.ids[i]);
        if (result == SHIP_BUSY)
            s->busy_seen = true;
        else if (result == SHIP_MORE)
            s->more_seen = true;
        else
            failed = true;
    }

    /* A failure ends the round: the rest wait with the kept ones. */
    for (; i < s->pending.n; i++)
        idlist_add(&kept, s->pending.ids[i]);
    if (failed)
        back_off(s);
    else
        s->retry_seconds = 0;

    free(s->pending.ids);
    s->pending = kept;
}

static void
pause_ms(long ms)
{
    struct timespec pause;

    if (ms > WAIT_MAX_MS)
        ms = WAIT_MAX_MS;
    pause.tv_sec = ms / 1000;
    pause.tv_nsec = (ms % 1000) * 1000000;
    nanosleep(&pause, NULL);
}

/* Sleeps until a notification, the next sweep or retry, or SIGTERM. */
static void
wait_for_work(struct shipper *s)
{
    struct pollfd pfd;
    long timeout = ms_until(s->next_sweep);

    if (s->pending.n > 0) {
        long retry = ms_until(s->retry_at);

        if (s->more_seen && retry == 0)
            return;
        if (s->busy_seen && retry < BUSY_WAIT_MS)
            retry = BUSY_WAIT_MS;
        if (retry < timeout)
            timeout = retry;
    }
    if (timeout > WAIT_MAX_MS)
        timeout = WAIT_MAX_MS;

    if (s->db.conn == NULL) {
        pause_ms(timeout);
        return;
    }
    pfd.fd = PQsocket(s->db.conn);
    pfd.events = POLLIN;
    pfd.revents = 0;
    if (poll(&pfd, 1, (int)timeout) < 0 && errno != EINTR)
        log_warn("poll: %s", strerror(errno));
}

void
shipper_run(const struct crewd_conf *conf)
{
    struct shipper s;
    struct crewd_error err;

    master_child_signals(on_stop_signal);

    /* ps and the tests tell it from the workers by this name. */
    prctl(PR_SET_NAME, "crewd-shipper");
    log_set_context(NULL, NULL);

    memset(&s, 0, sizeof(s));
    s.conf = conf;
    s.arena = arena_new(64 * 1024);
    s.next_sweep = now();
    s.retry_at = now();

    /* A database that is down now is retried below. */
    error_clear(&err);
    s.db.isolation = conf->isolation;
    db_open(&s.db, conf->database_url, false, &err);

    /* No I/O yet: MongoDB is reached at the first batch. */
    s.mongo = mongo_connect(conf->mongodb_uri, &err);
    if (s.mongo == NULL)
        fatal("audit shipper: %s", err.detail);
    if (!mongo_configured(s.mongo))
        log_warn("audit shipper: no mongodb_uri is configured; audit "
            "entries wait in the outboxes");
    log_info("audit shipper started");

    while (!stop_requested) {
        arena_reset(s.arena);

        /* PostgreSQL went away: try again after a pause. */
        if (!db_idle(&s.db) && ms_until(s.retry_at) > 0) {
            pause_ms(ms_until(s.retry_at));
            continue;
        }
        if (connection_ready(&s) < 0) {
            back_off(&s);
            continue;
        }
        collect_notifications(&s);

        if (ms_until(s.next_sweep) == 0) {
            if (sweep(&s) == 0)
                s.next_sweep = later(conf->audit_sweep_interval);
            else
                s.next_sweep = later(1);
            arena_reset(s.arena);
        }
        if (s.pending.n > 0 && ms_until(s.retry_at) == 0)
            ship_pending(&s);

        /* What /metrics shows of the backlog and the failures. */
        metrics_set_audit_pending((long)s.pending.n);
        metrics_flush_failures();
        wait_for_work(&s);
    }

    log_debug("audit shipper stopping");
    mongo_close(s.mongo);
    db_close(&s.db);
    arena_free(s.arena);
    free(s.pending.ids);
    exit(0);
}
