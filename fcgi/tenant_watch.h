/*
 * The tenant watch: one process per crewd, a child of the master like
 * the workers, that LISTENs for changes to tenants (DB_TENANT_CHANNEL,
 * announced by crewd and crewctl) and tells the workers through shared
 * memory, so their tenant caches (fcgi/tenant_reset.c) forget at once.
 *
 * Why one listener and not one per worker: at every commit that sends a
 * notification, on any channel, PostgreSQL wakes each backend that
 * LISTENs in the database.  Every write of crewd notifies the audit
 * shipper, so with each worker listening, each write woke every
 * worker's backend (docs/performance.md).
 *
 *   - tenant_watch_init(): the master, before any fork.
 *   - tenant_watch_run(): the watcher's life.  It bumps a generation at
 *     each notification, and when it (re)connects, since notifications
 *     may have been missed meanwhile.
 *   - tenant_watch_changed(): a worker, before it looks a tenant up.
 *     While no watcher is connected, or none has made a round trip to
 *     PostgreSQL for three seconds (it hangs), it always answers true:
 *     the cache is then not trusted, and every request reads its tenant.
 *   - tenant_watch_forget(): the master, for a watcher that died.
 *
 * SIGTERM: stops listening and exits 0.
 */
#ifndef CREWD_TENANT_WATCH_H
#define CREWD_TENANT_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"

/* Returns 0, or -1 with why filled (the shared page was refused). */
int tenant_watch_init(char *why, size_t why_size);

/* Never returns: exits 0 after SIGTERM. */
void tenant_watch_run(const struct crewd_conf *conf)
    __attribute__((noreturn));

/*
 * True when tenants may have changed since *seen (a generation this
 * function keeps up to date), or when nobody is watching.
 */
bool tenant_watch_changed(uint64_t *seen);

/* Whether a watcher listens now (for /metrics). */
bool tenant_watch_listening(void);

/* A watcher that exited: if it was the one listening, nobody is now. */
void tenant_watch_forget(pid_t watcher);

#endif
