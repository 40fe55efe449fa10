/*
 * The audit shipper: a child of the master, like the workers, that moves
 * the tenants' audit outbox rows (lib/audit.h) to their audit collections
 * in MongoDB.
 *
 *   - It wakes up on AUDIT_CHANNEL, which a transaction that wrote an
 *     entry notifies at commit, and sweeps every tenant schema for rows
 *     every audit_sweep_interval seconds (and when it starts), for what
 *     arrived while nobody listened.
 *   - A tenant's rows go in id order (time-ordered UUIDs), in batches;
 *     each batch is one transaction that locks its rows (FOR UPDATE SKIP
 *     LOCKED), writes them to MongoDB with the row's id as _id (an
 *     upsert: a batch written twice is written once), deletes them, and
 *     commits.  A crash between MongoDB and the commit ships the batch
 *     again, harmlessly: at least once, never lost.
 *   - One shipper at a time works on a tenant (an advisory lock), so a
 *     second one (during a SIGHUP, or a separate unit) never reorders it.
 *   - While MongoDB is down nothing is deleted; it retries with a growing
 *     pause, and the backlog drains when MongoDB answers again.
 *
 * SIGTERM: finishes the batch in hand and exits 0.
 */
#ifndef CREWD_SHIPPER_H
#define CREWD_SHIPPER_H

#include "conf.h"

/*
 * A batch is one transaction and one write to MongoDB: at most this many
 * rows, and no more bytes of changes than this (a single larger entry
 * goes alone).
 */
#define SHIPPER_BATCH 500
#define SHIPPER_BATCH_BYTES (8 * 1024 * 1024)

/* Never returns: exits 0 after SIGTERM, non-zero on a fault. */
void shipper_run(const struct crewd_conf *conf) __attribute__((noreturn));

#endif
