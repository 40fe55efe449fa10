/*
 * What "crewctl tenant backup" (backup.c) and "crewctl tenant restore"
 * (restore.c) share: the archive's members and format, and a private
 * scratch folder that goes away with the command, even on Ctrl-C.
 * docs/backup.md describes the archive.
 */
#ifndef CREWD_BACKUP_H
#define CREWD_BACKUP_H

#include <sys/types.h>

#include "error.h"
#include "mongo.h"

#define BACKUP_FORMAT "crewd-tenant-backup"
#define BACKUP_FORMAT_VERSION 1

#define BACKUP_SCHEMA_DUMP "schema.dump"
#define BACKUP_TENANT "tenant.jsonl"
#define BACKUP_USERS "users.jsonl"
#define BACKUP_MANIFEST "manifest.json"

/* The largest manifest a restore reads. */
#define BACKUP_MANIFEST_MAX (1 << 20)

/* Every member, in the order they are written (the manifest last). */
extern const char *const backup_members[];

/* "execution_logs.jsonl", "chat_messages.jsonl", "audit_logs.jsonl". */
const char *backup_mongo_member(enum mongo_kind kind);

/*
 * The scratch folder: made (mode 0700) under parent with a random name
 * starting with prefix.  Files in it made through scratch_file(), other
 * paths given to scratch_also() and the child given to scratch_child()
 * are removed (or sent SIGTERM) by scratch_remove(), and by SIGINT,
 * SIGTERM or SIGHUP, which then end crewctl with status 1.
 */
int scratch_make(const char *parent, const char *prefix,
    struct crewd_error *err);
const char *scratch_folder(void);
const char *scratch_file(const char *name);
void scratch_also(const char *path);
void scratch_forget(const char *path);
void scratch_child(pid_t pid);
void scratch_remove(void);

#endif
