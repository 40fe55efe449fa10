#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"
#include "master.h"
#include "metrics.h"
#include "seal.h"
#include "shipper.h"
#include "tenant_watch.h"
#include "token.h"
#include "worker.h"

#define SD_LISTEN_FDS_START 3
#define MAX_WORKERS 256

/* What a child is: a worker, or one of the two that serve no request. */
enum child_kind {
    CHILD_WORKER,
    CHILD_SHIPPER,          /* the audit shipper (fcgi/shipper.h) */
    CHILD_WATCHER,          /* the tenant watch (fcgi/tenant_watch.h) */
};

static const char *const child_kind_names[] = { "worker", "shipper",
    "tenant watch" };

struct child {
    pid_t pid;
    unsigned generation;
    time_t started;
    enum child_kind kind;
};

/* Two generations of every kind of child, during a reload. */
static struct child children[(MAX_WORKERS + 2) * 2];
static unsigned current_generation;
static struct token_secret secret;

/* The socket systemd handed us, if it did: LISTEN_PID must be us. */
static int
inherited_socket(void)
{
    const char *pid = getenv("LISTEN_PID");
    const char *fds = getenv("LISTEN_FDS");

    if (pid == NULL || fds == NULL || atol(pid) != (long)getpid() ||
        atoi(fds) < 1)
        return -1;

    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return SD_LISTEN_FDS_START;
}

/* True when something already accepts connections on path. */
static bool
socket_in_use(const struct sockaddr_un *addr)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool in_use;

    if (fd < 0)
        return false;
    in_use = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0;
    close(fd);
    return in_use;
}

int
master_listen(const struct crewd_conf *conf, bool *owned,
    struct crewd_error *err)
{
    struct sockaddr_un addr;
    struct stat st;
    int fd;

    *owned = false;
    fd = inherited_socket();
    if (fd >= 0) {
        log_info("using the socket passed by systemd");
        return fd;
    }

    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    if (strlen(conf->listen) >= sizeof(addr.sun_path))
        return error_set(err, 0, "socket path %s is too long", conf->listen);
    memcpy(addr.sun_path, conf->listen, strlen(conf->listen) + 1);

    /* A stale socket of a crashed run is removed; a live one is not. */
    if (lstat(conf->listen, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return error_set(err, 0, "%s exists and is not a socket",
                conf->listen);
        if (socket_in_use(&addr))
            return error_set(err, 0, "another process listens on %s",
                conf->listen);
        unlink(conf->listen);
    }

    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return error_set(err, 0, "could not create a socket: %s",
            strerror(errno));
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        error_set(err, 0, "could not bind %s: %s", conf->listen,
            strerror(errno));
        close(fd);
        return -1;
    }
    *owned = true;
    if (chmod(conf->listen, conf->listen_mode) < 0 ||
        listen(fd, SOMAXCONN) < 0) {
        error_set(err, 0, "could not listen on %s: %s", conf->listen,
            strerror(errno));
        close(fd);
        unlink(conf->listen);
        return -1;
    }
    log_info("listening on %s", conf->listen);
    return fd;
}

static int
count_children(unsigned generation, bool any_generation)
{
    int n = 0;

    for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++)
        if (children[i].pid > 0 &&
            (any_generation || children[i].generation == generation))
            n++;
    return n;
}

/* Children of this generation of one kind. */
static int
count_kind(unsigned generation, enum child_kind kind)
{
    int n = 0;

    for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++)
        if (children[i].pid > 0 && children[i].generation == generation &&
            children[i].kind == kind)
            n++;
    return n;
}

static void
spawn_child(const struct crewd_conf *conf, int listen_fd,
    enum child_kind kind)
{
    struct child *slot = NULL;
    pid_t pid;

    for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++)
        if (children[i].pid == 0) {
            slot = &children[i];
            break;
        }
    if (slot == NULL) {
        log_error("no room to track another child");
        return;
    }

    pid = fork();
    if (pid < 0) {
        log_error("could not fork a %s: %s", child_kind_names[kind],
            strerror(errno));
        return;
    }
    if (pid == 0 && kind != CHILD_WORKER) {
        /* It serves no requests, and holds no secret it does not need. */
        close(listen_fd);
        sodium_memzero(&secret, sizeof(secret));
        seal_process_install(NULL);
        if (kind == CHILD_SHIPPER)
            shipper_run(conf);
        tenant_watch_run(conf);
    }
    if (pid == 0)
        worker_run(conf, &secret, listen_fd);

    slot->pid = pid;
    slot->generation = current_generation;
    slot->started = time(NULL);
    slot->kind = kind;
}

static void
spawn_worker(const struct crewd_conf *conf, int listen_fd)
{
    spawn_child(conf, listen_fd, CHILD_WORKER);
}

/*
 * The children there is one of: the tenant watch, and the audit shipper
 * unless it runs apart.
 */
static bool
singleton_missing(const struct crewd_conf *conf, enum child_kind kind)
{
    if (kind == CHILD_SHIPPER && !conf->audit_shipper)
        return false;
    return count_kind(current_generation, kind) == 0;
}

static void
keep_singletons(const struct crewd_conf *conf, int listen_fd)
{
    if (singleton_missing(conf, CHILD_WATCHER))
        spawn_child(conf, listen_fd, CHILD_WATCHER);
    if (singleton_missing(conf, CHILD_SHIPPER))
        spawn_child(conf, listen_fd, CHILD_SHIPPER);
}

static void
signal_generation(unsigned generation, bool all, int sig)
{
    for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++)
        if (children[i].pid > 0 &&
            (all || children[i].generation == generation))
            kill(children[i].pid, sig);
}

/*
 * Reaps exited workers.  Returns how many of the current generation died
 * within a second of starting (a crash loop: slow down).
 */
static int
reap(bool stopping)
{
    int early_deaths = 0;
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++) {
            struct child *c = &children[i];

            if (c->pid != pid)
                continue;
            if (c->generation == current_generation && !stopping) {
                const char *kind = child_kind_names[c->kind];

                if (WIFSIGNALED(status))
                    log_error("%s %ld killed by signal %d; replacing it",
                        kind, (long)pid, WTERMSIG(status));
                else
                    log_error("%s %ld exited with status %d; "
                        "replacing it", kind, (long)pid,
                        WEXITSTATUS(status));
                if (time(NULL) - c->started < 1)
                    early_deaths++;
                if (c->kind == CHILD_WORKER)
                    metrics_count_worker_replaced();
            }
            if (c->kind == CHILD_WATCHER)
                tenant_watch_forget(pid);
            c->pid = 0;
        }
    }
    return early_deaths;
}

static int
reload(const char *conf_path, struct crewd_conf *conf, int listen_fd)
{
    struct crewd_conf fresh;
    struct token_secret fresh_secret;
    struct seal_keyring fresh_ring;
    struct crewd_error err;
    unsigned old_generation = current_generation;

    conf_defaults(&fresh);
    error_clear(&err);
    if (conf_path != NULL && conf_load(&fresh, conf_path, &err) < 0) {
        log_error("reload refused, keeping the old configuration: %s",
            err.detail);
        return -1;
    }
    if (token_secret_load(&fresh_secret, fresh.token_secret_file,
            &err) < 0) {
        log_error("reload refused, keeping the old configuration: %s",
            err.detail);
        return -1;
    }

    /*
     * New master keys must open the canary before any worker seals with
     * them; unchanged keys need no database, so a reload works while
     * PostgreSQL is down.
     */
    if (seal_keyring_load(&fresh_ring, &fresh, &err) < 0) {
        log_error("reload refused, keeping the old configuration: %s",
            err.detail);
        return -1;
    }
    if (!seal_keyring_equal(&fresh_ring, seal_process_keyring())) {
        seal_keyring_wipe(&fresh_ring);
        if (seal_keyring_load_checked(&fresh_ring, &fresh, 0, &err) < 0) {
            log_error("reload refused, keeping the old configuration: %s",
                err.detail);
            return -1;
        }
        log_info("master keys changed: sealing with key %s (%s), %d key(s) "
            "in all", fresh_ring.keys[0].id_text, fresh_ring.keys[0].path,
            fresh_ring.count);
    }
    if (strcmp(fresh.listen, conf->listen) != 0)
        log_warn("a new listen path takes effect at the next restart");
    if (fresh.metrics_tenants_max != metrics_tenants_max())
        log_warn("a new metrics_tenants_max takes effect at the next "
            "restart");

    *conf = fresh;
    secret = fresh_secret;
    seal_process_install(&fresh_ring);
    seal_keyring_wipe(&fresh_ring);
    log_set_level((enum log_level)conf->log_level);

    /* New workers first: the socket is never without an acceptor. */
    current_generation++;
    for (int i = 0; i < conf->workers; i++)
        spawn_worker(conf, listen_fd);
    keep_singletons(conf, listen_fd);
    signal_generation(old_generation, false, SIGTERM);
    log_info("configuration reloaded; %d new workers", conf->workers);
    return 0;
}

static void
write_pid_file(const char *path)
{
    FILE *f;

    if (path[0] == '\0')
        return;
    f = fopen(path, "w");
    if (f == NULL) {
        log_warn("could not write pid file %s: %s", path, strerror(errno));
        return;
    }
    fprintf(f, "%ld\n", (long)getpid());
    fclose(f);
}

static int
stop(const struct crewd_conf *conf)
{
    time_t deadline = time(NULL) + conf->shutdown_timeout;

    log_info("stopping: letting requests in flight finish");
    signal_generation(0, true, SIGTERM);

    while (count_children(0, true) > 0 && time(NULL) < deadline) {
        struct timespec tick = { 0, 50 * 1000 * 1000 };

        nanosleep(&tick, NULL);
        reap(true);
    }
    if (count_children(0, true) > 0) {
        log_warn("workers still busy after %d s; killing them",
            conf->shutdown_timeout);
        signal_generation(0, true, SIGKILL);
        while (count_children(0, true) > 0) {
            struct timespec tick = { 0, 10 * 1000 * 1000 };

            nanosleep(&tick, NULL);
            reap(true);
        }
    }
    return 0;
}

int
master_run(const char *conf_path, struct crewd_conf *conf, int listen_fd,
    bool socket_owned)
{
    struct crewd_error err;
    sigset_t watched;
    int delay = 0;

    error_clear(&err);
    if (token_secret_load(&secret, conf->token_secret_file, &err) < 0) {
        log_error("%s", err.detail);
        return 1;
    }

    /* Signals are taken synchronously below; workers unblock them. */
    sigemptyset(&watched);
    sigaddset(&watched, SIGTERM);
    sigaddset(&watched, SIGINT);
    sigaddset(&watched, SIGHUP);
    sigaddset(&watched, SIGCHLD);
    sigprocmask(SIG_BLOCK, &watched, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Before any fork: every child counts into the same memory. */
    {
        char why[160];

        if (metrics_init(conf->metrics_tenants_max, why, sizeof(why)) < 0 ||
            tenant_watch_init(why, sizeof(why)) < 0) {
            log_error("%s", why);
            return 1;
        }
    }

    write_pid_file(conf->pid_file);
    current_generation = 1;
    for (int i = 0; i < conf->workers; i++)
        spawn_worker(conf, listen_fd);
    keep_singletons(conf, listen_fd);
    log_info("crewd %s started with %d workers%s", PACKAGE_VERSION,
        conf->workers, conf->audit_shipper ? " and the audit shipper" : "");

    for (;;) {
        struct timespec timeout = { 1, 0 };
        int sig = sigtimedwait(&watched, NULL, &timeout);

        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP)
            reload(conf_path, conf, listen_fd);

        /* Reap on every wake-up: SIGCHLDs can merge. */
        if (reap(false) > 0)
            delay = delay == 0 ? 1 : (delay * 2 > 5 ? 5 : delay * 2);
        else if (sig != SIGCHLD)
            delay = 0;

        if (count_kind(current_generation, CHILD_WORKER) < conf->workers ||
            singleton_missing(conf, CHILD_WATCHER) ||
            singleton_missing(conf, CHILD_SHIPPER)) {
            if (delay > 0) {
                log_warn("children die at start; waiting %d s", delay);
                sleep((unsigned)delay);
            }
            while (count_kind(current_generation, CHILD_WORKER) <
                conf->workers)
                spawn_worker(conf, listen_fd);
            keep_singletons(conf, listen_fd);
        }
        metrics_set_workers(count_kind(current_generation, CHILD_WORKER),
            conf->workers);
        metrics_housekeeping(metrics_now());
    }

    stop(conf);
    close(listen_fd);
    if (socket_owned)
        unlink(conf->listen);
    if (conf->pid_file[0] != '\0')
        unlink(conf->pid_file);
    sodium_memzero(&secret, sizeof(secret));
    seal_process_install(NULL);
    log_info("stopped");
    return 0;
}

void
master_child_signals(void (*on_stop)(int))
{
    struct sigaction sa;
    sigset_t all;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);

    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);

    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
}
