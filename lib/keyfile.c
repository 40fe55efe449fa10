#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyfile.h"

/* Reads up to cap bytes; returns the count or -1 with errno set. */
static ssize_t
read_up_to(int fd, unsigned char *buf, size_t cap)
{
    size_t len = 0;

    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        len += (size_t)n;
    }
    return (ssize_t)len;
}

int
keyfile_read(const char *path, const char *what, unsigned char *data,
    size_t max, size_t *len, struct crewd_error *err)
{
    struct stat st;
    ssize_t n;
    int fd, saved_errno;

    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return error_set(err, 500, "cannot open %s %s: %s", what, path,
            strerror(errno));

    /* fstat, not stat: the file checked must be the file read. */
    if (fstat(fd, &st) < 0) {
        saved_errno = errno;
        close(fd);
        return error_set(err, 500, "cannot stat %s %s: %s", what, path,
            strerror(saved_errno));
    }

    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return error_set(err, 500, "%s %s is not a regular file", what,
            path);
    }

    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        close(fd);
        return error_set(err, 500, "%s %s is accessible by group or "
            "others (mode %03o); run chmod 600 %s", what, path,
            (unsigned)(st.st_mode & 0777), path);
    }

    n = read_up_to(fd, data, max + 1);
    saved_errno = errno;
    close(fd);

    if (n < 0)
        return error_set(err, 500, "cannot read %s %s: %s", what, path,
            strerror(saved_errno));
    if ((size_t)n > max)
        return error_set(err, 500, "%s %s is longer than %zu bytes", what,
            path, max);
    *len = (size_t)n;
    return 0;
}

static int
write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int
keyfile_create(const char *path, const char *what, const char *text,
    size_t len, struct crewd_error *err)
{
    int fd, saved_errno;

    /*
     * O_EXCL: an existing key is never replaced, since that would lose
     * what it protects.  O_NOFOLLOW: a planted symlink cannot make us
     * write the key somewhere else.
     */
    fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC,
        0600);
    if (fd < 0 && errno == EEXIST)
        return error_set(err, 500, "%s %s already exists; it is never "
            "overwritten", what, path);
    if (fd < 0)
        return error_set(err, 500, "cannot create %s %s: %s", what, path,
            strerror(errno));

    /*
     * The umask can only take bits away from 0600, but it could take the
     * owner's read bit too; fchmod makes the mode exactly 0600.  fsync so
     * a crash cannot leave an empty key file that blocks the next create.
     */
    if (fchmod(fd, 0600) < 0 || write_all(fd, text, len) < 0 ||
        fsync(fd) < 0) {
        saved_errno = errno;
        close(fd);
        unlink(path);
        return error_set(err, 500, "cannot write %s %s: %s", what, path,
            strerror(saved_errno));
    }

    if (close(fd) < 0) {
        saved_errno = errno;
        unlink(path);
        return error_set(err, 500, "cannot write %s %s: %s", what, path,
            strerror(saved_errno));
    }
    return 0;
}
