#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/mman.h>
#include <sys/prctl.h>

#include "db.h"
#include "log.h"
#include "master.h"
#include "tenant_watch.h"

/* How long the watcher waits between attempts while PostgreSQL is down,
   and at most between two round trips to it while it is up. */
#define RETRY_MS 1000

/*
 * A watch not heard from for this long is not trusted: it hangs, or its
 * connection does, and changes may go unheard.  Each beat follows a
 * round trip, and PostgreSQL sends a session the notifications of every
 * transaction committed before it answers, so a beat says that every
 * change up to a second before it was heard.
 */
#define STALE_MS 3000

/*
 * The page the master maps before any fork: every child sees the same.
 * listening holds the pid of the watcher whose LISTEN is up, or 0; during
 * a reload two watchers run for a moment, and the newer takes over.
 */
struct watch_shared {
    _Atomic uint64_t generation;
    _Atomic int listening;
    _Atomic int64_t beat_ms;            /* CLOCK_MONOTONIC */
};

static struct watch_shared *shared;
static volatile sig_atomic_t stop_requested;

static int64_t
monotonic_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int
tenant_watch_init(char *why, size_t why_size)
{
    void *p = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
        MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        snprintf(why, why_size, "tenant watch: mmap: %s", strerror(errno));
        return -1;
    }
    shared = p;
    atomic_store(&shared->generation, 1);
    atomic_store(&shared->listening, 0);
    return 0;
}

bool
tenant_watch_listening(void)
{
    return shared != NULL && atomic_load(&shared->listening) != 0 &&
        monotonic_ms() - atomic_load(&shared->beat_ms) < STALE_MS;
}

bool
tenant_watch_changed(uint64_t *seen)
{
    uint64_t now;

    if (shared == NULL)
        return true;

    /* The generation first: a change after it is seen next time. */
    now = atomic_load(&shared->generation);
    if (tenant_watch_listening() && now == *seen)
        return false;
    *seen = now;
    return true;
}

void
tenant_watch_forget(pid_t watcher)
{
    int expected = (int)watcher;

    if (shared == NULL)
        return;
    if (atomic_compare_exchange_strong(&shared->listening, &expected, 0))
        atomic_fetch_add(&shared->generation, 1);
}

static void
on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* This watcher's LISTEN is up (again): whatever came before is stale. */
static void
start_listening(void)
{
    atomic_fetch_add(&shared->generation, 1);
    atomic_store(&shared->listening, (int)getpid());
    log_info("tenant watch: listening for changes to tenants");
}

/* It is down: nobody is watching, unless a newer watcher took over. */
static void
stop_listening(void)
{
    tenant_watch_forget(getpid());
}

/* Sleeps until a notification may have arrived, at most timeout_ms. */
static void
wait_readable(struct db *db, int timeout_ms)
{
    struct pollfd pfd = { .fd = PQsocket(db->conn), .events = POLLIN };

    if (poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR)
        log_warn("tenant watch: poll: %s", strerror(errno));
}

void
tenant_watch_run(const struct crewd_conf *conf)
{
    struct crewd_error err;
    struct db db;
    bool listening = false;

    master_child_signals(on_stop_signal);

    /* ps and the tests tell it from the workers by this name. */
    prctl(PR_SET_NAME, "crewd-watch");
    log_set_context(NULL, NULL);

    memset(&db, 0, sizeof(db));
    db.isolation = conf->isolation;
    error_clear(&err);
    db_open(&db, conf->database_url, true, &err);

    while (!stop_requested) {
        /* Down: nobody watches until the connection is back. */
        if (!db_idle(&db)) {
            if (listening)
                stop_listening();
            listening = false;
            error_clear(&err);
            if (db_ready(&db, &err) < 0) {
                poll(NULL, 0, RETRY_MS);
                continue;
            }
        }
        if (!listening) {
            start_listening();
            listening = true;
        }

        /* A round trip proves the connection; then what it brought. */
        error_clear(&err);
        if (db_run(&db, &err, "SELECT 1", 0, NULL) < 0)
            continue;
        if (db_poll_tenant_changes(&db))
            atomic_fetch_add(&shared->generation, 1);
        atomic_store(&shared->beat_ms, monotonic_ms());

        wait_readable(&db, RETRY_MS);
    }

    if (listening)
        stop_listening();
    db_close(&db);
    exit(0);
}
