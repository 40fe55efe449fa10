#include "config.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "db.h"
#include "log.h"
#include "metrics.h"
#include "mongo.h"
#include "routes.h"
#include "tenant_watch.h"

/*
 * Layout.  One header, then one row per label value of tenant_id: row 0
 * is "none", row 1 "other", rows 2.. are the seats.  Every number a
 * request touches is a 64-bit atomic, added to with relaxed order: the
 * reader sums whatever is there, and a count is never lost or doubled.
 */

#define ROW_NONE 0
#define ROW_OTHER 1
#define ROW_FIRST_SEAT 2

/* A seat's life: FREE -> CLAIMING -> LIVE -> RETIRING -> FREE (or LIVE
   again for the busier tenant the master gave it to). */
enum seat_state {
    SEAT_FREE,
    SEAT_CLAIMING,      /* a worker is writing the tenant in */
    SEAT_LIVE,
    SEAT_RETIRING,      /* not counted into nor shown; freed after grace */
    SEAT_FIXED          /* "none" and "other" */
};

/* The statuses crewd and nginx's pass-through can send; the last slot
   takes anything else (shown as status="other"). */
static const int statuses[] = {
    200, 201, 202, 204, 304, 400, 401, 403, 404, 405, 406, 408, 409, 410,
    411, 412, 413, 414, 415, 421, 422, 429, 431, 500, 501, 502, 503, 504,
};
#define STATUS_COUNT (sizeof(statuses) / sizeof(statuses[0]))
#define STATUS_SLOTS (STATUS_COUNT + 1)

/* The last endpoint slot: a path that matched no route. */
#define ENDPOINT_SLOTS (METRICS_ROUTES_MAX + 1)

/* Request latency, seconds (upper bounds; +Inf is implied). */
static const double latency_bounds[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
#define LATENCY_BUCKETS (sizeof(latency_bounds) / sizeof(latency_bounds[0]))

/* A flow execution's run, seconds. */
static const double execution_bounds[] = {
    1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200,
};
#define EXECUTION_BUCKETS \
    (sizeof(execution_bounds) / sizeof(execution_bounds[0]))

/* The final statuses of an execution (lib/executions.h). */
static const char *const execution_finals[] = {
    "succeeded", "failed", "cancelled",
};
#define EXECUTION_FINALS 3

/* Distinct users a row tracks, and how far one looks for a place. */
#define USER_SLOTS 1024
#define USER_PROBE 16

/* Tenants under "other" whose volume is watched, for the seats. */
#define CANDIDATES 1024
#define CANDIDATE_PROBE 4

/* Seconds between two re-deals of the seats, and what a re-deal needs. */
#define REBALANCE_PERIOD 10.0
#define SEAT_TENURE 60.0        /* a seat is kept at least this long */
#define RETIRE_GRACE 5.0        /* a request counting now has finished */

struct histogram {
    _Atomic uint64_t buckets[LATENCY_BUCKETS + 1];  /* the last: +Inf */
    _Atomic uint64_t sum_us;
};

struct execution_histogram {
    _Atomic uint64_t buckets[EXECUTION_BUCKETS + 1];
    _Atomic uint64_t sum_ms;
};

struct user_slot {
    _Atomic uint64_t key;       /* a hash of the user id; 0: empty */
    _Atomic uint32_t minute;    /* the minute of the last request */
};

struct row {
    _Atomic uint32_t state;
    _Atomic uint32_t generation;    /* moves at every claim */
    _Atomic uint64_t id[2];         /* the tenant's UUID, 16 bytes */
    _Atomic uint32_t slug_seq;      /* even: slug readable */
    char slug[64];
    double claimed_at;              /* written by the claimer */
    _Atomic uint64_t requests;      /* since the claim: the volume */
    _Atomic uint64_t cells[ENDPOINT_SLOTS][STATUS_SLOTS];
    struct execution_histogram executions[EXECUTION_FINALS];
    struct user_slot users[USER_SLOTS];
};

struct candidate {
    _Atomic uint64_t key;       /* hash of the id; 0: empty */
    _Atomic uint64_t id[2];
    _Atomic uint64_t count;     /* requests since the master last looked */
};

struct shared {
    int tenants_max;
    double wall_started;
    _Atomic uint64_t db_unavailable, db_refused, mongo_failures;
    _Atomic uint64_t db_discarded;
    _Atomic uint64_t access_log_dropped, worker_replaced, audit_shipped;
    _Atomic int64_t audit_pending;      /* -1: no shipper reported */
    _Atomic int64_t workers_alive, workers_configured;
    struct histogram latency[ENDPOINT_SLOTS];
    struct candidate candidates[CANDIDATES];
    struct row rows[];
};

static struct shared *shm;
static size_t shm_rows;

/* This process's view: a small memo of tenant -> seat. */
#define MEMO_SLOTS 64
struct memo {
    uint64_t id[2];
    uint32_t row;
    uint32_t generation;
};
static struct memo memo[MEMO_SLOTS];

/* Failures this process already added (metrics_flush_failures). */
static unsigned long long flushed_unavailable, flushed_refused,
    flushed_mongo, flushed_discarded;

/* The master's own bookkeeping for re-deals; copies in children unused. */
struct seat_watch {
    uint32_t generation;
    uint64_t requests;
    double rate;            /* smoothed requests per period */
    double retiring_since;  /* 0: not seen retiring */
    bool successor_set;
    uint64_t successor[2];
    unsigned claiming_ticks;
};
struct candidate_watch {
    uint64_t key;
    double rate;
};
static struct seat_watch *seat_watch;
static struct candidate_watch candidate_watch[CANDIDATES];
static double next_rebalance;

double
metrics_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
metrics_init(int tenants_max, char *why, size_t why_size)
{
    size_t size;
    void *p;

    if (shm != NULL)
        return 0;
    if (routes_count > METRICS_ROUTES_MAX) {
        snprintf(why, why_size, "the route table has %zu routes, the "
            "metrics tables room for %d", routes_count, METRICS_ROUTES_MAX);
        return -1;
    }
    shm_rows = (size_t)tenants_max + ROW_FIRST_SEAT;
    size = sizeof(struct shared) + shm_rows * sizeof(struct row);

    /* Zero pages cost nothing until a row is used. */
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
        -1, 0);
    if (p == MAP_FAILED) {
        snprintf(why, why_size, "could not map %zu bytes for metrics: %s",
            size, strerror(errno));
        return -1;
    }
    shm = p;
    shm->tenants_max = tenants_max;
    shm->wall_started = (double)time(NULL);
    atomic_store(&shm->audit_pending, -1);
    atomic_store(&shm->rows[ROW_NONE].state, SEAT_FIXED);
    atomic_store(&shm->rows[ROW_OTHER].state, SEAT_FIXED);

    seat_watch = calloc(shm_rows, sizeof(*seat_watch));
    if (seat_watch == NULL) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    next_rebalance = 0;
    return 0;
}

void
metrics_shutdown(void)
{
    if (shm == NULL)
        return;
    munmap(shm, sizeof(struct shared) + shm_rows * sizeof(struct row));
    shm = NULL;
    shm_rows = 0;
    free(seat_watch);
    seat_watch = NULL;
    memset(memo, 0, sizeof(memo));
    memset(candidate_watch, 0, sizeof(candidate_watch));
    flushed_unavailable = flushed_refused = flushed_mongo = 0;
    flushed_discarded = 0;
    next_rebalance = 0;
}

bool
metrics_ready(void)
{
    return shm != NULL;
}

int
metrics_tenants_max(void)
{
    return shm != NULL ? shm->tenants_max : 0;
}

#define ADD(field, n) atomic_fetch_add_explicit(&(field), (n), \
    memory_order_relaxed)
#define LOAD(field) atomic_load_explicit(&(field), memory_order_relaxed)

/* ------------------------------------------------------------------ */
/* Tenant ids and seats.                                               */
/* ------------------------------------------------------------------ */

/* A canonical UUID's 16 bytes as two words; false when it is not one. */
static bool
id_words(const char *text, uint64_t out[2])
{
    int nibbles = 0;

    out[0] = out[1] = 0;
    if (text == NULL)
        return false;
    for (const char *p = text; *p != '\0'; p++) {
        int v;

        if (*p == '-')
            continue;
        v = hex_digit_value(*p);
        if (v < 0 || nibbles == 32)
            return false;
        out[nibbles / 16] = out[nibbles / 16] << 4 | (uint64_t)v;
        nibbles++;
    }
    return nibbles == 32;
}

static void
id_text(const uint64_t id[2], char out[UUID_TEXT_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    int n = 0;

    for (int i = 0; i < 32; i++) {
        if (i == 8 || i == 12 || i == 16 || i == 20)
            out[n++] = '-';
        out[n++] = hex[(id[i / 16] >> (60 - 4 * (i % 16))) & 0xf];
    }
    out[n] = '\0';
}

/* Never 0, which marks an empty slot. */
static uint64_t
mix(uint64_t a, uint64_t b)
{
    uint64_t h = a * 0x9e3779b97f4a7c15ULL ^ (b + 0x632be59bd9b4e019ULL);

    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 29;
    return h != 0 ? h : 1;
}

static uint64_t
text_key(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return mix(h, 0);
}

static bool
row_holds(struct row *r, const uint64_t id[2])
{
    return LOAD(r->id[0]) == id[0] && LOAD(r->id[1]) == id[1];
}

/* Waits out a claim in progress (a few stores); false if it lasts. */
static uint32_t
settled_state(struct row *r)
{
    uint32_t state = atomic_load(&r->state);

    for (int spin = 0; state == SEAT_CLAIMING && spin < 1000; spin++) {
        sched_yield();
        state = atomic_load(&r->state);
    }
    return state;
}

static void
write_slug(struct row *r, const char *slug)
{
    uint32_t seq = atomic_load(&r->slug_seq);

    /* Another worker writes it now: the same slug, most likely. */
    if (seq % 2 != 0 ||
        !atomic_compare_exchange_strong(&r->slug_seq, &seq, seq + 1))
        return;
    snprintf(r->slug, sizeof(r->slug), "%s", slug != NULL ? slug : "");
    atomic_store(&r->slug_seq, seq + 2);
}

/* The slug as last written; false while it is being written. */
static bool
read_slug(struct row *r, char *out, size_t size)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        uint32_t before = atomic_load(&r->slug_seq);

        if (before % 2 != 0) {
            sched_yield();
            continue;
        }
        snprintf(out, size, "%.*s", (int)sizeof(r->slug) - 1, r->slug);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load(&r->slug_seq) == before)
            return true;
    }
    return false;
}

/* Writes a tenant into a seat its caller owns (state CLAIMING). */
static void
seat_fill(struct row *r, const uint64_t id[2], const char *slug,
    double now)
{
    atomic_store(&r->id[0], id[0]);
    atomic_store(&r->id[1], id[1]);
    r->claimed_at = now;
    write_slug(r, slug);
    atomic_fetch_add(&r->generation, 1);
    atomic_store(&r->state, SEAT_LIVE);
}

/* Everything a seat counted, for the next tenant (owner only). */
static void
seat_clear(struct row *r)
{
    uint32_t seq = atomic_load(&r->slug_seq);

    memset((char *)r + offsetof(struct row, requests), 0,
        sizeof(*r) - offsetof(struct row, requests));
    atomic_store(&r->id[0], 0);
    atomic_store(&r->id[1], 0);
    r->slug[0] = '\0';
    atomic_store(&r->slug_seq, seq + (seq % 2));
}

/* The live seat holding id, or -1.  *free_seat: the first free one. */
static int
seat_find(const uint64_t id[2], int *free_seat)
{
    *free_seat = -1;
    for (size_t i = ROW_FIRST_SEAT; i < shm_rows; i++) {
        struct row *r = &shm->rows[i];
        uint32_t state = atomic_load(&r->state);

        if (state == SEAT_FREE) {
            if (*free_seat < 0)
                *free_seat = (int)i;
            continue;
        }
        if (state == SEAT_CLAIMING)
            state = settled_state(r);
        if (state == SEAT_LIVE && row_holds(r, id))
            return (int)i;
    }
    return -1;
}

/* Notes a request of a tenant without a seat, for the re-deals. */
static void
candidate_note(const uint64_t id[2])
{
    uint64_t key = mix(id[0], id[1]);

    for (int probe = 0; probe < CANDIDATE_PROBE; probe++) {
        struct candidate *c = &shm->candidates[(key + (uint64_t)probe) %
            CANDIDATES];
        uint64_t seen = atomic_load(&c->key);

        if (seen == key) {
            ADD(c->count, 1);
            return;
        }
        if (seen == 0 && atomic_compare_exchange_strong(&c->key, &seen,
                key)) {
            atomic_store(&c->id[0], id[0]);
            atomic_store(&c->id[1], id[1]);
            ADD(c->count, 1);
            return;
        }
    }
    /* Every place taken by busier tenants: this one is not among them. */
}

/*
 * The row that counts tenant_id: its seat (claiming a free one if it has
 * none), else "other".  No lock: the counting itself is atomic adds, and
 * a free seat changes hands by compare-and-swap.
 */
static struct row *
tenant_row(const char *tenant_id, const char *slug, double now)
{
    uint64_t id[2];
    struct memo *m;
    int seat, free_seat;

    if (!id_words(tenant_id, id))
        return &shm->rows[ROW_NONE];

    m = &memo[mix(id[0], id[1]) % MEMO_SLOTS];
    if (m->id[0] == id[0] && m->id[1] == id[1] && m->row != 0) {
        struct row *r = &shm->rows[m->row];

        if (atomic_load(&r->state) == SEAT_LIVE &&
            atomic_load(&r->generation) == m->generation &&
            row_holds(r, id))
            goto found;
    }

    for (int attempt = 0; attempt < 4; attempt++) {
        seat = seat_find(id, &free_seat);
        if (seat < 0 && free_seat >= 0) {
            struct row *r = &shm->rows[free_seat];
            uint32_t expected = SEAT_FREE;

            if (atomic_compare_exchange_strong(&r->state, &expected,
                    SEAT_CLAIMING)) {
                seat_fill(r, id, slug, now);
                seat = free_seat;
            } else {
                continue;   /* taken meanwhile: by this tenant, maybe */
            }
        }
        if (seat < 0)
            break;
        m->id[0] = id[0];
        m->id[1] = id[1];
        m->row = (uint32_t)seat;
        m->generation = atomic_load(&shm->rows[seat].generation);
        goto found;
    }
    candidate_note(id);
    return &shm->rows[ROW_OTHER];

found:
    {
        struct row *r = &shm->rows[m->row];

        /* A renamed tenant: the info series follows. */
        if (slug != NULL && strncmp(r->slug, slug, sizeof(r->slug)) != 0)
            write_slug(r, slug);
        return r;
    }
}

/* ------------------------------------------------------------------ */
/* Counting.                                                           */
/* ------------------------------------------------------------------ */

static size_t
status_slot(int status)
{
    for (size_t i = 0; i < STATUS_COUNT; i++)
        if (statuses[i] == status)
            return i;
    return STATUS_COUNT;
}

static uint32_t
minute_of(double now)
{
    return (uint32_t)(now / 60.0) + 1;
}

/* Marks the user active now in the row. */
static void
user_note(struct row *r, const char *user_id, double now)
{
    uint64_t key = text_key(user_id);
    uint32_t minute = minute_of(now);
    struct user_slot *reuse = NULL;
    uint64_t reuse_key = 0;

    for (int probe = 0; probe < USER_PROBE; probe++) {
        struct user_slot *u = &r->users[(key + (uint64_t)probe) %
            USER_SLOTS];
        uint64_t seen = atomic_load(&u->key);

        if (seen == key) {
            if (LOAD(u->minute) != minute)
                atomic_store_explicit(&u->minute, minute,
                    memory_order_relaxed);
            return;
        }
        if (reuse == NULL && (seen == 0 ||
                LOAD(u->minute) + METRICS_ACTIVE_MINUTES <= minute)) {
            reuse = u;
            reuse_key = seen;
        }
    }
    if (reuse != NULL &&
        atomic_compare_exchange_strong(&reuse->key, &reuse_key, key))
        atomic_store(&reuse->minute, minute);
}

static void
observe_latency(struct histogram *h, double seconds)
{
    size_t b = 0;

    if (seconds < 0)
        seconds = 0;
    while (b < LATENCY_BUCKETS && seconds > latency_bounds[b])
        b++;
    ADD(h->buckets[b], 1);
    ADD(h->sum_us, (uint64_t)(seconds * 1e6 + 0.5));
}

void
metrics_count_request(const struct metrics_request *m)
{
    size_t endpoint;
    struct row *r;

    if (shm == NULL)
        return;
    endpoint = m->route >= 0 && (size_t)m->route < routes_count
        ? (size_t)m->route : METRICS_ROUTES_MAX;

    r = m->tenant_id != NULL ? tenant_row(m->tenant_id, m->tenant_slug,
        m->now) : &shm->rows[ROW_NONE];
    ADD(r->cells[endpoint][status_slot(m->status)], 1);
    if (r >= &shm->rows[ROW_FIRST_SEAT])
        ADD(r->requests, 1);
    if (m->user_id != NULL && m->user_id[0] != '\0' &&
        r != &shm->rows[ROW_NONE])
        user_note(r, m->user_id, m->now);
    observe_latency(&shm->latency[endpoint], m->seconds);
}

void
metrics_count_execution(const char *tenant_id, const char *tenant_slug,
    const char *status, double seconds, double now)
{
    struct execution_histogram *h;
    struct row *r;
    size_t s = 0, b = 0;

    if (shm == NULL || status == NULL)
        return;
    while (s < EXECUTION_FINALS && strcmp(execution_finals[s], status) != 0)
        s++;
    if (s == EXECUTION_FINALS)
        return;
    if (seconds < 0)
        seconds = 0;

    r = tenant_row(tenant_id, tenant_slug, now);
    h = &r->executions[s];
    while (b < EXECUTION_BUCKETS && seconds > execution_bounds[b])
        b++;
    ADD(h->buckets[b], 1);
    ADD(h->sum_ms, (uint64_t)(seconds * 1e3 + 0.5));
}

void
metrics_flush_failures(void)
{
    unsigned long long unavailable, refused, mongo, discarded;

    if (shm == NULL)
        return;
    db_failure_counts(&unavailable, &refused);
    mongo = mongo_failure_count();
    discarded = db_discard_count();
    if (unavailable > flushed_unavailable)
        ADD(shm->db_unavailable, unavailable - flushed_unavailable);
    if (refused > flushed_refused)
        ADD(shm->db_refused, refused - flushed_refused);
    if (mongo > flushed_mongo)
        ADD(shm->mongo_failures, mongo - flushed_mongo);
    if (discarded > flushed_discarded)
        ADD(shm->db_discarded, discarded - flushed_discarded);
    flushed_unavailable = unavailable;
    flushed_refused = refused;
    flushed_mongo = mongo;
    flushed_discarded = discarded;
}

void
metrics_count_access_log_dropped(void)
{
    if (shm != NULL)
        ADD(shm->access_log_dropped, 1);
}

void
metrics_set_audit_pending(long tenants)
{
    if (shm != NULL)
        atomic_store(&shm->audit_pending, (int64_t)tenants);
}

void
metrics_count_audit_shipped(long entries)
{
    if (shm != NULL && entries > 0)
        ADD(shm->audit_shipped, (uint64_t)entries);
}

void
metrics_set_workers(int alive, int configured)
{
    if (shm == NULL)
        return;
    atomic_store(&shm->workers_alive, alive);
    atomic_store(&shm->workers_configured, configured);
}

void
metrics_count_worker_replaced(void)
{
    if (shm != NULL)
        ADD(shm->worker_replaced, 1);
}

/* ------------------------------------------------------------------ */
/* Seats: deleted tenants, re-deals.                                   */
/* ------------------------------------------------------------------ */

int
metrics_seated_tenants(char (*ids)[UUID_TEXT_LEN + 1], int max)
{
    int n = 0;

    if (shm == NULL)
        return 0;
    for (size_t i = ROW_FIRST_SEAT; i < shm_rows && n < max; i++) {
        struct row *r = &shm->rows[i];
        uint64_t id[2];

        if (atomic_load(&r->state) != SEAT_LIVE)
            continue;
        id[0] = LOAD(r->id[0]);
        id[1] = LOAD(r->id[1]);
        id_text(id, ids[n++]);
    }
    return n;
}

void
metrics_retire_tenant(const char *tenant_id)
{
    uint64_t id[2];

    if (shm == NULL || !id_words(tenant_id, id))
        return;
    for (size_t i = ROW_FIRST_SEAT; i < shm_rows; i++) {
        struct row *r = &shm->rows[i];
        uint32_t expected = SEAT_LIVE;

        if (row_holds(r, id))
            atomic_compare_exchange_strong(&r->state, &expected,
                SEAT_RETIRING);
    }
}

/* Frees (or hands on) seats given up more than RETIRE_GRACE ago. */
static void
settle_seats(double now)
{
    for (size_t i = ROW_FIRST_SEAT; i < shm_rows; i++) {
        struct row *r = &shm->rows[i];
        struct seat_watch *w = &seat_watch[i];
        uint32_t state = atomic_load(&r->state);
        int ignored;

        /* A worker that died in the middle of a claim. */
        if (state == SEAT_CLAIMING) {
            if (++w->claiming_ticks >= 3) {
                seat_clear(r);
                atomic_store(&r->state, SEAT_FREE);
                w->claiming_ticks = 0;
            }
            continue;
        }
        w->claiming_ticks = 0;
        if (state != SEAT_RETIRING) {
            w->retiring_since = 0;
            continue;
        }
        if (w->retiring_since == 0)
            w->retiring_since = now;
        if (now - w->retiring_since < RETIRE_GRACE)
            continue;

        seat_clear(r);
        w->retiring_since = 0;
        w->rate = 0;
        if (w->successor_set && seat_find(w->successor, &ignored) < 0) {
            atomic_store(&r->state, SEAT_CLAIMING);
            seat_fill(r, w->successor, "", now);
        } else {
            atomic_store(&r->state, SEAT_FREE);
        }
        w->successor_set = false;
    }
}

/*
 * Once a period: the smoothed volume of every seat and of every tenant
 * watched under "other"; when the busiest waiting tenant sends more than
 * twice the quietest seat's volume (and that seat was held long enough),
 * the seat goes to it.  The factor keeps two tenants of about the same
 * volume from trading the seat back and forth.
 */
static void
rebalance(double now)
{
    int quietest = -1, busiest = -1, free_seat;
    bool free_seats = false;

    for (size_t i = ROW_FIRST_SEAT; i < shm_rows; i++) {
        struct row *r = &shm->rows[i];
        struct seat_watch *w = &seat_watch[i];
        uint32_t state = atomic_load(&r->state);
        uint32_t generation = atomic_load(&r->generation);
        uint64_t requests = LOAD(r->requests);

        if (state == SEAT_FREE)
            free_seats = true;
        if (state != SEAT_LIVE)
            continue;
        if (w->generation != generation) {
            w->generation = generation;
            w->requests = 0;
            w->rate = 0;
        }
        w->rate = w->rate / 2 + (double)(requests - w->requests);
        w->requests = requests;
        if (now - r->claimed_at >= SEAT_TENURE &&
            (quietest < 0 || w->rate < seat_watch[quietest].rate))
            quietest = (int)i;
    }

    for (int i = 0; i < CANDIDATES; i++) {
        struct candidate *c = &shm->candidates[i];
        struct candidate_watch *w = &candidate_watch[i];
        uint64_t key = atomic_load(&c->key);
        uint64_t count = atomic_exchange(&c->count, 0);

        if (key == 0)
            continue;
        if (w->key != key) {
            w->key = key;
            w->rate = 0;
        }
        w->rate = w->rate / 2 + (double)count;

        /* Quiet for a while: make room for others. */
        if (w->rate < 0.5) {
            atomic_compare_exchange_strong(&c->key, &key, 0);
            w->key = 0;
            continue;
        }
        if (busiest < 0 || w->rate > candidate_watch[busiest].rate)
            busiest = i;
    }

    /* Free seats are claimed by the tenants themselves. */
    if (free_seats || quietest < 0 || busiest < 0 ||
        candidate_watch[busiest].rate <= 2 * seat_watch[quietest].rate + 1)
        return;

    {
        struct candidate *c = &shm->candidates[busiest];
        struct row *r = &shm->rows[quietest];
        struct seat_watch *w = &seat_watch[quietest];
        uint64_t id[2] = { atomic_load(&c->id[0]), atomic_load(&c->id[1]) };
        uint32_t expected = SEAT_LIVE;

        /* A half-written id (its key says whose it must be), or a
           tenant seated meanwhile. */
        if (mix(id[0], id[1]) != candidate_watch[busiest].key ||
            seat_find(id, &free_seat) >= 0)
            return;
        if (!atomic_compare_exchange_strong(&r->state, &expected,
                SEAT_RETIRING))
            return;
        w->successor_set = true;
        w->successor[0] = id[0];
        w->successor[1] = id[1];
        w->retiring_since = now;
        log_info("metrics: tenant seat %zu goes to a busier tenant",
            (size_t)quietest - ROW_FIRST_SEAT);
    }
}

void
metrics_housekeeping(double now)
{
    if (shm == NULL)
        return;
    settle_seats(now);
    if (now >= next_rebalance) {
        if (next_rebalance != 0)
            rebalance(now);
        next_rebalance = now + REBALANCE_PERIOD;
    }
}

/* ------------------------------------------------------------------ */
/* The exposition.                                                     */
/* ------------------------------------------------------------------ */

/* A label value: backslash, double quote and line feed escaped. */
static void
label_value(struct buf *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            buf_puts(out, "\\\\");
        else if (*s == '"')
            buf_puts(out, "\\\"");
        else if (*s == '\n')
            buf_puts(out, "\\n");
        else
            buf_putc(out, *s);
    }
}

static void
family(struct buf *out, const char *name, const char *type,
    const char *help)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
        type);
}

/* A bucket's bound as Prometheus writes it. */
static void
bound(struct buf *out, double value)
{
    char text[32];

    snprintf(text, sizeof(text), "%g", value);
    buf_puts(out, text);
}

/* The rows that appear: "none", "other", and one per seated tenant. */
#define TWINS_MAX 4
struct shown_row {
    size_t rows[TWINS_MAX];             /* the row, and its twins */
    size_t nrows;
    char label[UUID_TEXT_LEN + 1];
    char slug[64];
};

/*
 * The rows to show.  Two seats of one tenant (two workers claimed at the
 * same instant a freed seat) are shown as one, adding both.
 */
static size_t
shown_rows(struct shown_row *shown)
{
    size_t n = 0;

    shown[n].rows[0] = ROW_NONE;
    shown[n].nrows = 1;
    snprintf(shown[n].label, sizeof(shown[n].label), METRICS_TENANT_NONE);
    shown[n++].slug[0] = '\0';
    shown[n].rows[0] = ROW_OTHER;
    shown[n].nrows = 1;
    snprintf(shown[n].label, sizeof(shown[n].label), METRICS_TENANT_OTHER);
    shown[n++].slug[0] = '\0';

    for (size_t i = ROW_FIRST_SEAT; i < shm_rows; i++) {
        struct row *r = &shm->rows[i];
        uint64_t id[2] = { LOAD(r->id[0]), LOAD(r->id[1]) };
        bool twin = false;

        if (atomic_load_explicit(&r->state, memory_order_acquire) !=
            SEAT_LIVE)
            continue;
        for (size_t s = 2; s < n && !twin; s++)
            if (row_holds(&shm->rows[shown[s].rows[0]], id)) {
                twin = true;
                if (shown[s].nrows < TWINS_MAX)
                    shown[s].rows[shown[s].nrows++] = i;
            }
        if (twin)
            continue;
        shown[n].rows[0] = i;
        shown[n].nrows = 1;
        id_text(id, shown[n].label);
        if (!read_slug(r, shown[n].slug, sizeof(shown[n].slug)))
            shown[n].slug[0] = '\0';
        n++;
    }
    return n;
}

static const char *
endpoint_method(size_t e)
{
    return e < routes_count ? routes[e].method : "any";
}

static const char *
endpoint_pattern(size_t e)
{
    return e < routes_count ? routes[e].pattern : "unmatched";
}

static void
render_requests(struct buf *out, const struct shown_row *shown, size_t n)
{
    family(out, "http_requests_per_tenant_total", "counter",
        "HTTP requests by tenant, route and status.");
    for (size_t s = 0; s < n; s++)
        for (size_t e = 0; e < ENDPOINT_SLOTS; e++)
            for (size_t st = 0; st < STATUS_SLOTS; st++) {
                uint64_t total = 0;

                if (e >= routes_count && e != METRICS_ROUTES_MAX)
                    continue;
                for (size_t k = 0; k < shown[s].nrows; k++)
                    total += LOAD(shm->rows[shown[s].rows[k]].cells[e][st]);
                if (total == 0)
                    continue;
                buf_puts(out, "http_requests_per_tenant_total{tenant_id=\"");
                label_value(out, shown[s].label);
                buf_printf(out, "\",method=\"%s\",endpoint=\"",
                    endpoint_method(e));
                label_value(out, endpoint_pattern(e));
                if (st < STATUS_COUNT)
                    buf_printf(out, "\",status=\"%d\"} %llu\n",
                        statuses[st], (unsigned long long)total);
                else
                    buf_printf(out, "\",status=\"other\"} %llu\n",
                        (unsigned long long)total);
            }
}

static void
render_latency(struct buf *out)
{
    family(out, "http_request_duration_seconds", "histogram",
        "Time from a request's arrival in a worker to its response, by "
        "route.");
    for (size_t e = 0; e < ENDPOINT_SLOTS; e++) {
        struct histogram *h = &shm->latency[e];
        uint64_t counts[LATENCY_BUCKETS + 1], cumulative = 0;

        if (e >= routes_count && e != METRICS_ROUTES_MAX)
            continue;
        for (size_t b = 0; b <= LATENCY_BUCKETS; b++) {
            counts[b] = LOAD(h->buckets[b]);
            cumulative += counts[b];
        }
        if (cumulative == 0)
            continue;
        cumulative = 0;
        for (size_t b = 0; b <= LATENCY_BUCKETS; b++) {
            cumulative += counts[b];
            buf_printf(out, "http_request_duration_seconds_bucket{method="
                "\"%s\",endpoint=\"", endpoint_method(e));
            label_value(out, endpoint_pattern(e));
            buf_puts(out, "\",le=\"");
            if (b < LATENCY_BUCKETS)
                bound(out, latency_bounds[b]);
            else
                buf_puts(out, "+Inf");
            buf_printf(out, "\"} %llu\n", (unsigned long long)cumulative);
        }
        buf_printf(out, "http_request_duration_seconds_sum{method=\"%s\","
            "endpoint=\"", endpoint_method(e));
        label_value(out, endpoint_pattern(e));
        buf_printf(out, "\"} %.6f\n", (double)LOAD(h->sum_us) / 1e6);
        buf_printf(out, "http_request_duration_seconds_count{method="
            "\"%s\",endpoint=\"", endpoint_method(e));
        label_value(out, endpoint_pattern(e));
        buf_printf(out, "\"} %llu\n", (unsigned long long)cumulative);
    }
}

static void
render_executions(struct buf *out, const struct shown_row *shown,
    size_t n)
{
    family(out, "flow_execution_duration_seconds", "histogram",
        "Run time of flow executions that reached a final status, from "
        "start to end.");
    for (size_t s = 0; s < n; s++)
        for (size_t f = 0; f < EXECUTION_FINALS; f++) {
            uint64_t counts[EXECUTION_BUCKETS + 1] = { 0 };
            uint64_t cumulative = 0, sum_ms = 0;

            for (size_t k = 0; k < shown[s].nrows; k++) {
                struct execution_histogram *h =
                    &shm->rows[shown[s].rows[k]].executions[f];

                for (size_t b = 0; b <= EXECUTION_BUCKETS; b++)
                    counts[b] += LOAD(h->buckets[b]);
                sum_ms += LOAD(h->sum_ms);
            }
            for (size_t b = 0; b <= EXECUTION_BUCKETS; b++)
                cumulative += counts[b];
            if (cumulative == 0)
                continue;
            cumulative = 0;
            for (size_t b = 0; b <= EXECUTION_BUCKETS; b++) {
                cumulative += counts[b];
                buf_puts(out, "flow_execution_duration_seconds_bucket{"
                    "tenant_id=\"");
                label_value(out, shown[s].label);
                buf_printf(out, "\",status=\"%s\",le=\"",
                    execution_finals[f]);
                if (b < EXECUTION_BUCKETS)
                    bound(out, execution_bounds[b]);
                else
                    buf_puts(out, "+Inf");
                buf_printf(out, "\"} %llu\n",
                    (unsigned long long)cumulative);
            }
            buf_puts(out, "flow_execution_duration_seconds_sum{tenant_id=\"");
            label_value(out, shown[s].label);
            buf_printf(out, "\",status=\"%s\"} %.3f\n", execution_finals[f],
                (double)sum_ms / 1e3);
            buf_puts(out, "flow_execution_duration_seconds_count{"
                "tenant_id=\"");
            label_value(out, shown[s].label);
            buf_printf(out, "\",status=\"%s\"} %llu\n", execution_finals[f],
                (unsigned long long)cumulative);
        }
}

/* Distinct users of the row with a request in the active window. */
static uint64_t
active_users(const struct row *r, uint32_t minute)
{
    uint64_t n = 0;

    for (size_t u = 0; u < USER_SLOTS; u++) {
        uint32_t seen = LOAD(r->users[u].minute);

        if (LOAD(r->users[u].key) != 0 && seen != 0 &&
            seen + METRICS_ACTIVE_MINUTES > minute)
            n++;
    }
    return n;
}

static void
render_tenants(struct buf *out, const struct shown_row *shown, size_t n,
    double now)
{
    uint32_t minute = minute_of(now);

    family(out, "active_users_per_tenant", "gauge",
        "Distinct users with an authenticated request in the last 15 "
        "minutes.");
    for (size_t s = 1; s < n; s++) {
        uint64_t users = 0;

        for (size_t k = 0; k < shown[s].nrows; k++)
            users += active_users(&shm->rows[shown[s].rows[k]], minute);
        buf_puts(out, "active_users_per_tenant{tenant_id=\"");
        label_value(out, shown[s].label);
        buf_printf(out, "\"} %llu\n", (unsigned long long)users);
    }

    family(out, "crewd_tenant_info", "gauge",
        "The slug of each tenant with series of its own (always 1).");
    for (size_t s = 2; s < n; s++) {
        buf_puts(out, "crewd_tenant_info{tenant_id=\"");
        label_value(out, shown[s].label);
        buf_puts(out, "\",slug=\"");
        label_value(out, shown[s].slug);
        buf_puts(out, "\"} 1\n");
    }

    family(out, "crewd_metrics_tenants_max", "gauge",
        "Tenants that may have series of their own; the others count "
        "under tenant_id=\"other\".");
    buf_printf(out, "crewd_metrics_tenants_max %d\n", shm->tenants_max);
}

static void
render_process(struct buf *out)
{
    int64_t pending = atomic_load(&shm->audit_pending);

    family(out, "crewd_database_errors_total", "counter",
        "PostgreSQL failures: the server unavailable, or a statement "
        "refused.");
    buf_printf(out, "crewd_database_errors_total{kind=\"unavailable\"} "
        "%llu\n", (unsigned long long)LOAD(shm->db_unavailable));
    buf_printf(out, "crewd_database_errors_total{kind=\"refused\"} %llu\n",
        (unsigned long long)LOAD(shm->db_refused));

    family(out, "crewd_database_sessions_discarded_total", "counter",
        "Database sessions thrown away after a request (state left on "
        "the connection, a failed end, a full table of statements): "
        "each loses every plan it held.");
    buf_printf(out, "crewd_database_sessions_discarded_total %llu\n",
        (unsigned long long)LOAD(shm->db_discarded));

    family(out, "crewd_mongodb_errors_total", "counter",
        "MongoDB operations that failed.");
    buf_printf(out, "crewd_mongodb_errors_total %llu\n",
        (unsigned long long)LOAD(shm->mongo_failures));

    family(out, "crewd_audit_outbox_pending_tenants", "gauge",
        "Tenants whose audit outbox holds entries the shipper has not "
        "moved to MongoDB yet.");
    if (pending >= 0)
        buf_printf(out, "crewd_audit_outbox_pending_tenants %lld\n",
            (long long)pending);

    family(out, "crewd_audit_entries_shipped_total", "counter",
        "Audit entries the shipper moved from the outboxes to MongoDB.");
    buf_printf(out, "crewd_audit_entries_shipped_total %llu\n",
        (unsigned long long)LOAD(shm->audit_shipped));

    family(out, "crewd_workers_alive", "gauge",
        "Worker processes serving requests.");
    buf_printf(out, "crewd_workers_alive %lld\n",
        (long long)atomic_load(&shm->workers_alive));
    family(out, "crewd_workers_configured", "gauge",
        "Worker processes the configuration asks for.");
    buf_printf(out, "crewd_workers_configured %lld\n",
        (long long)atomic_load(&shm->workers_configured));
    family(out, "crewd_tenant_watch_up", "gauge",
        "1 while the tenant watch listens for changes to tenants; at 0 "
        "the workers cache no tenant, and each request reads its own.");
    buf_printf(out, "crewd_tenant_watch_up %d\n",
        tenant_watch_listening() ? 1 : 0);
    family(out, "crewd_worker_replacements_total", "counter",
        "Workers that died and were replaced.");
    buf_printf(out, "crewd_worker_replacements_total %llu\n",
        (unsigned long long)LOAD(shm->worker_replaced));

    family(out, "crewd_access_log_dropped_total", "counter",
        "Access log lines that could not be written (disk full, no "
        "file).");
    buf_printf(out, "crewd_access_log_dropped_total %llu\n",
        (unsigned long long)LOAD(shm->access_log_dropped));

    family(out, "crewd_start_time_seconds", "gauge",
        "When the crewd master started (the counters start from zero "
        "then), Unix time.");
    buf_printf(out, "crewd_start_time_seconds %.0f\n", shm->wall_started);
}

void
metrics_render(struct buf *out, double now)
{
    struct shown_row *shown;
    size_t n;

    if (shm == NULL)
        return;
    shown = calloc(shm_rows, sizeof(*shown));
    if (shown == NULL)
        return;
    n = shown_rows(shown);
    render_requests(out, shown, n);
    render_latency(out);
    render_executions(out, shown, n);
    render_tenants(out, shown, n, now);
    render_process(out);
    free(shown);
}
