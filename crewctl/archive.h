/*
 * The tenant backup archive's container: a POSIX ustar file of regular
 * members, each with its SHA-256 (libsodium's crypto_hash_sha256), so
 * that the manifest can name the digest of every other member and the
 * restore can refuse a damaged archive before it changes anything.
 *
 * Writing streams each member straight into the archive: its header is
 * written with size 0, the data follows, and the header is written again
 * with the real size once the member ends (the archive is a regular file,
 * so no member needs a temporary copy).  Sizes past 8 GiB use the base-256
 * size field GNU tar reads.  The file is made with mode 0600: it holds
 * password hashes and sealed credentials.
 *
 * Reading takes only what the writer makes (regular members of the names
 * the caller allows, each once) and refuses a truncated file, a header
 * whose checksum is wrong and a missing end, so "it was read" means "it
 * is whole".  docs/backup.md describes the archive.
 */
#ifndef CREWD_ARCHIVE_H
#define CREWD_ARCHIVE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <sodium.h>

#include "error.h"

#define ARCHIVE_NAME_MAX 100
#define ARCHIVE_MEMBERS_MAX 16
#define ARCHIVE_SHA256_HEX (2 * crypto_hash_sha256_BYTES)

/* A member as written or read: its name, size and digest (hex). */
struct archive_member {
    char name[ARCHIVE_NAME_MAX];
    uint64_t size;
    char sha256[ARCHIVE_SHA256_HEX + 1];
};

struct archive_writer {
    int fd;
    char *path;
    time_t mtime;
    /* The member being written: header_at < 0 when none. */
    off_t header_at;
    struct archive_member member;
    crypto_hash_sha256_state sha;
    unsigned char buffer[1 << 16];
    size_t buffered;
};

/*
 * Creates path (replacing a file there, never following a symbolic link)
 * with mode 0600 for writing.  Returns 0, or -1 with err.
 */
int archive_create(struct archive_writer *w, const char *path,
    struct crewd_error *err);

/* Starts a member; the previous one must have ended. */
int archive_begin(struct archive_writer *w, const char *name,
    struct crewd_error *err);

/* Appends data to the member being written. */
int archive_write(struct archive_writer *w, const void *data, size_t len,
    struct crewd_error *err);

/* Ends the member and fills out with its name, size and digest. */
int archive_end(struct archive_writer *w, struct archive_member *out,
    struct crewd_error *err);

/* Writes the end of the archive, flushes it to disk and closes it. */
int archive_finish(struct archive_writer *w, struct crewd_error *err);

/* Closes and removes an archive that is not to be kept; accepts one
   already finished or never created. */
void archive_abandon(struct archive_writer *w);

/*
 * Reads the archive at path and writes each member to a file of the
 * same name in dir (mode 0600), hashing it on the way.  Every member
 * must be a regular file named in names (a NULL-terminated list) and
 * appear once.  Fills members (at most ARCHIVE_MEMBERS_MAX) and *count.
 * Returns 0, or -1 with err saying what is wrong with the file.
 */
int archive_extract(const char *path, const char *dir,
    const char *const *names, struct archive_member *members, int *count,
    struct crewd_error *err);

#endif
