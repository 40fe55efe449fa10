#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "archive.h"

#define BLOCK 512

/* GNU tar writes records of 20 blocks; readers expect nothing less. */
#define RECORD (20 * BLOCK)

/* The largest size the 11 octal digits of a ustar header hold. */
#define OCTAL_SIZE_MAX 077777777777ULL

/* Offsets of the ustar header's fields (POSIX.1-1988). */
enum {
    H_NAME = 0, H_MODE = 100, H_UID = 108, H_GID = 116, H_SIZE = 124,
    H_MTIME = 136, H_CHKSUM = 148, H_TYPEFLAG = 156, H_MAGIC = 257,
    H_VERSION = 263
};

static int
system_error(struct crewd_error *err, const char *what, const char *path)
{
    return error_set(err, 500, "%s %s: %s", what, path, strerror(errno));
}

/* Writes all of data at the file's position (retrying short writes). */
static int
write_all(int fd, const void *data, size_t len)
{
    const unsigned char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads exactly len bytes; 0, or -1 (errno 0 at the end of the file). */
static int
read_all(int fd, void *data, size_t len)
{
    unsigned char *p = data;

    while (len > 0) {
        ssize_t n = read(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = 0;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void
put_octal(unsigned char *field, size_t width, uint64_t value)
{
    /* width - 1 digits, then NUL. */
    char text[32];

    snprintf(text, sizeof(text), "%0*" PRIo64, (int)(width - 1), value);
    memcpy(field, text, width - 1);
    field[width - 1] = '\0';
}

static unsigned
header_checksum(const unsigned char *h)
{
    unsigned sum = 0;

    for (int i = 0; i < BLOCK; i++)
        sum += i >= H_CHKSUM && i < H_CHKSUM + 8 ? ' ' : h[i];
    return sum;
}

static void
make_header(unsigned char h[BLOCK], const char *name, uint64_t size,
    time_t mtime)
{
    memset(h, 0, BLOCK);
    memcpy(h + H_NAME, name, strlen(name));
    put_octal(h + H_MODE, 8, 0600);
    put_octal(h + H_UID, 8, 0);
    put_octal(h + H_GID, 8, 0);
    if (size <= OCTAL_SIZE_MAX) {
        put_octal(h + H_SIZE, 12, size);
    } else {
        /* GNU's base-256: a flag bit, then the size big-endian. */
        h[H_SIZE] = 0x80;
        for (int i = 0; i < 8; i++)
            h[H_SIZE + 4 + i] = (unsigned char)(size >> (56 - 8 * i));
    }
    put_octal(h + H_MTIME, 12, (uint64_t)mtime);
    h[H_TYPEFLAG] = '0';
    memcpy(h + H_MAGIC, "ustar", 6);
    memcpy(h + H_VERSION, "00", 2);
    put_octal(h + H_CHKSUM, 7, header_checksum(h));
    h[H_CHKSUM + 7] = ' ';
}

int
archive_create(struct archive_writer *w, const char *path,
    struct crewd_error *err)
{
    memset(w, 0, sizeof(*w));
    w->header_at = -1;
    w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
        O_CLOEXEC, 0600);
    if (w->fd < 0) {
        w->fd = -1;
        return system_error(err, "could not create", path);
    }
    w->path = xstrdup(path);

    /* An existing file keeps its mode through O_TRUNC: set ours. */
    if (fchmod(w->fd, 0600) < 0) {
        system_error(err, "could not set the mode of", path);
        archive_abandon(w);
        return -1;
    }
    w->mtime = time(NULL);
    return 0;
}

static int
flush_buffer(struct archive_writer *w, struct crewd_error *err)
{
    if (w->buffered == 0)
        return 0;
    if (write_all(w->fd, w->buffer, w->buffered) < 0)
        return system_error(err, "could not write", w->path);
    w->buffered = 0;
    return 0;
}

int
archive_begin(struct archive_writer *w, const char *name,
    struct crewd_error *err)
{
    unsigned char header[BLOCK];

    if (w->header_at >= 0 || strlen(name) >= ARCHIVE_NAME_MAX)
        return error_set(err, 500, "archive member %s: internal error",
            name);
    if (flush_buffer(w, err) < 0)
        return -1;

    w->header_at = lseek(w->fd, 0, SEEK_CUR);
    if (w->header_at < 0)
        return system_error(err, "could not seek in", w->path);
    memset(&w->member, 0, sizeof(w->member));
    snprintf(w->member.name, sizeof(w->member.name), "%s", name);
    crypto_hash_sha256_init(&w->sha);

    /* Size 0 for now; archive_end writes the real one. */
    make_header(header, name, 0, w->mtime);
    if (write_all(w->fd, header, BLOCK) < 0)
        return system_error(err, "could not write", w->path);
    return 0;
}

int
archive_write(struct archive_writer *w, const void *data, size_t len,
    struct crewd_error *err)
{
    const unsigned char *p = data;

    crypto_hash_sha256_update(&w->sha, p, len);
    w->member.size += len;
    while (len > 0) {
        size_t room = sizeof(w->buffer) - w->buffered;
        size_t n = len < room ? len : room;

        memcpy(w->buffer + w->buffered, p, n);
        w->buffered += n;
        p += n;
        len -= n;
        if (w->buffered == sizeof(w->buffer) && flush_buffer(w, err) < 0)
            return -1;
    }
    return 0;
}

int
archive_end(struct archive_writer *w, struct archive_member *out,
    struct crewd_error *err)
{
    static const unsigned char zeros[BLOCK];
    unsigned char digest[crypto_hash_sha256_BYTES];
    unsigned char header[BLOCK];
    size_t pad = (size_t)((BLOCK - w->member.size % BLOCK) % BLOCK);

    if (flush_buffer(w, err) < 0)
        return -1;
    if (pad > 0 && write_all(w->fd, zeros, pad) < 0)
        return system_error(err, "could not write", w->path);

    make_header(header, w->member.name, w->member.size, w->mtime);
    if (pwrite(w->fd, header, BLOCK, w->header_at) != BLOCK)
        return system_error(err, "could not write", w->path);

    crypto_hash_sha256_final(&w->sha, digest);
    sodium_bin2hex(w->member.sha256, sizeof(w->member.sha256), digest,
        sizeof(digest));
    if (out != NULL)
        *out = w->member;
    w->header_at = -1;
    return 0;
}

int
archive_finish(struct archive_writer *w, struct crewd_error *err)
{
    static const unsigned char zeros[RECORD];
    off_t end;
    size_t pad;

    if (w->header_at >= 0)
        return error_set(err, 500, "archive %s: a member is still open",
            w->path);

    /* Two zero blocks end the archive; zeros fill the last record. */
    end = lseek(w->fd, 0, SEEK_CUR);
    if (end < 0)
        return system_error(err, "could not seek in", w->path);
    end += 2 * BLOCK;
    pad = 2 * BLOCK + (size_t)((RECORD - end % RECORD) % RECORD);
    if (write_all(w->fd, zeros, pad) < 0)
        return system_error(err, "could not write", w->path);

    if (fsync(w->fd) < 0)
        return system_error(err, "could not flush", w->path);
    if (close(w->fd) < 0) {
        w->fd = -1;
        return system_error(err, "could not close", w->path);
    }
    w->fd = -1;
    return 0;
}

void
archive_abandon(struct archive_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    if (w->path != NULL)
        unlink(w->path);
    free(w->path);
    w->path = NULL;
}

/* ----------------------------------------------------------------------
 * Reading.
 * -------------------------------------------------------------------- */

static bool
all_zero(const unsigned char *block)
{
    for (int i = 0; i < BLOCK; i++)
        if (block[i] != 0)
            return false;
    return true;
}

/* An octal field: digits, optionally led by spaces, ended by NUL/space. */
static bool
parse_octal(const unsigned char *field, size_t width, uint64_t *out)
{
    size_t i = 0;
    uint64_t v = 0;
    bool digits = false;

    while (i < width && field[i] == ' ')
        i++;
    for (; i < width && field[i] >= '0' && field[i] <= '7'; i++) {
        if (v > (UINT64_MAX >> 3))
            return false;
        v = v << 3 | (uint64_t)(field[i] - '0');
        digits = true;
    }
    for (; i < width; i++)
        if (field[i] != '\0' && field[i] != ' ')
            return false;
    *out = v;
    return digits;
}

static bool
parse_size(const unsigned char *field, uint64_t *out)
{
    uint64_t v = 0;

    if ((field[0] & 0x80) == 0)
        return parse_octal(field, 12, out);

    /* Base-256, positive only, and no more than 63 bits. */
    if (field[0] != 0x80 || field[1] != 0 || field[2] != 0 ||
        field[3] != 0 || (field[4] & 0x80) != 0)
        return false;
    for (int i = 4; i < 12; i++)
        v = v << 8 | field[i];
    *out = v;
    return true;
}

static bool
name_allowed(const char *name, const char *const *names)
{
    for (size_t i = 0; names[i] != NULL; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

/* Copies size bytes of the archive into out_fd, hashing them. */
static int
copy_member(int in, int out_fd, uint64_t size, const char *path,
    const struct archive_member *m, unsigned char digest[32],
    struct crewd_error *err)
{
    unsigned char *buffer = xmalloc(1 << 16);
    crypto_hash_sha256_state sha;
    uint64_t left = size;
    int rc = -1;

    crypto_hash_sha256_init(&sha);
    while (left > 0) {
        size_t n = left < (1 << 16) ? (size_t)left : (1 << 16);

        if (read_all(in, buffer, n) < 0) {
            if (errno == 0)
                error_set(err, 422, "the archive %s is truncated (in "
                    "member %s)", path, m->name);
            else
                system_error(err, "could not read", path);
            goto out;
        }
        crypto_hash_sha256_update(&sha, buffer, n);
        if (write_all(out_fd, buffer, n) < 0) {
            error_set(err, 500, "could not write member %s: %s", m->name,
                strerror(errno));
            goto out;
        }
        left -= n;
    }
    crypto_hash_sha256_final(&sha, digest);
    rc = 0;

out:
    free(buffer);
    return rc;
}

/* Reads the next header: 1 a member, 0 the end, -1 an error. */
static int
read_header(int fd, const char *path, const char *const *names,
    struct archive_member *m, struct crewd_error *err)
{
    unsigned char h[BLOCK];
    uint64_t checksum;

    if (read_all(fd, h, BLOCK) < 0) {
        if (errno == 0)
            return error_set(err, 422, "the archive %s is truncated (its "
                "end is missing)", path);
        return system_error(err, "could not read", path);
    }
    if (all_zero(h)) {
        /* The end: a second zero block must follow. */
        if (read_all(fd, h, BLOCK) < 0 || !all_zero(h))
            return error_set(err, 422, "the archive %s is truncated (its "
                "end is incomplete)", path);
        return 0;
    }

    if (!parse_octal(h + H_CHKSUM, 8, &checksum) ||
        checksum != header_checksum(h) ||
        memcmp(h + H_MAGIC, "ustar", 5) != 0)
        return error_set(err, 422, "the archive %s is damaged or not a "
            "crewd backup (a header does not check)", path);

    memset(m, 0, sizeof(*m));
    memcpy(m->name, h + H_NAME, ARCHIVE_NAME_MAX - 1);
    if (h[H_NAME + ARCHIVE_NAME_MAX - 1] != '\0' ||
        !name_allowed(m->name, names))
        return error_set(err, 422, "the archive %s holds an unexpected "
            "member \"%.60s\"", path, m->name);
    if (h[H_TYPEFLAG] != '0' && h[H_TYPEFLAG] != '\0')
        return error_set(err, 422, "the archive %s: member %s is not a "
            "regular file", path, m->name);
    if (!parse_size(h + H_SIZE, &m->size))
        return error_set(err, 422, "the archive %s: member %s has a "
            "damaged size", path, m->name);
    return 1;
}

int
archive_extract(const char *path, const char *dir,
    const char *const *names, struct archive_member *members, int *count,
    struct crewd_error *err)
{
    unsigned char padding[BLOCK];
    int fd, rc = -1;

    *count = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return system_error(err, "could not open", path);

    for (;;) {
        struct archive_member *m = &members[*count];
        unsigned char digest[crypto_hash_sha256_BYTES];
        char *file;
        int out_fd, found;
        size_t pad;

        if (*count == ARCHIVE_MEMBERS_MAX) {
            error_set(err, 422, "the archive %s holds too many members",
                path);
            goto out;
        }
        found = read_header(fd, path, names, m, err);
        if (found < 0)
            goto out;
        if (found == 0)
            break;
        for (int i = 0; i < *count; i++)
            if (strcmp(members[i].name, m->name) == 0) {
                error_set(err, 422, "the archive %s holds member %s "
                    "twice", path, m->name);
                goto out;
            }

        file = xasprintf("%s/%s", dir, m->name);
        out_fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (out_fd < 0) {
            system_error(err, "could not create", file);
            free(file);
            goto out;
        }
        if (copy_member(fd, out_fd, m->size, path, m, digest, err) < 0) {
            close(out_fd);
            free(file);
            goto out;
        }
        if (close(out_fd) < 0) {
            system_error(err, "could not write", file);
            free(file);
            goto out;
        }
        free(file);
        sodium_bin2hex(m->sha256, sizeof(m->sha256), digest,
            sizeof(digest));
        (*count)++;

        pad = (size_t)((BLOCK - m->size % BLOCK) % BLOCK);
        if (pad > 0 && read_all(fd, padding, pad) < 0) {
            error_set(err, 422, "the archive %s is truncated (after "
                "member %s)", path, m->name);
            goto out;
        }
    }
    rc = 0;

out:
    close(fd);
    return rc;
}
