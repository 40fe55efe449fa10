/*
 * Secret key files (the token secret, the master keys that seal
 * credentials): read with the same checks and created the same way.
 *
 * Reading refuses a file that is not a regular file or that group or
 * others can access in any way, and a file longer than the caller's
 * largest valid size.  Creating never replaces an existing file (O_EXCL),
 * never follows a symlink, and leaves the key on disk with mode 0600,
 * synced, so a crash cannot leave an empty key file behind.
 *
 * "what" names the kind of file in every message ("token secret file"),
 * so an operator reads which file and which check failed.
 */
#ifndef CREWD_KEYFILE_H
#define CREWD_KEYFILE_H

#include <stddef.h>

#include "error.h"

/*
 * Reads path into data[0..max] (data must hold max + 1 bytes: one more
 * than a valid file, to notice a longer one).  Returns 0 with *len set,
 * or -1 with a 500 naming the file.  The caller wipes data after use.
 */
int keyfile_read(const char *path, const char *what, unsigned char *data,
    size_t max, size_t *len, struct crewd_error *err);

/*
 * Creates path with mode 0600 holding text[0..len).  Fails (500) when the
 * file exists, naming it; on any failure nothing is left at path.
 */
int keyfile_create(const char *path, const char *what, const char *text,
    size_t len, struct crewd_error *err);

#endif
