/*
 * PostgreSQL's own programs (pg_dump, pg_restore) for crewctl: found
 * for the server crewctl talks to, and run with the owner's connection.
 *
 * Where a program is looked for, in order:
 *
 *   1. the pg_bindir configuration key, when set (and nowhere else);
 *   2. /usr/lib/postgresql/<server's major version>/bin, the layout of
 *      Debian and Ubuntu, where several versions live side by side;
 *   3. every folder of PATH.
 *
 * A candidate counts only when its --version is at least the version the
 * caller needs (pg_dump must be as new as the server it dumps; pg_restore
 * as new as the pg_dump that wrote the archive); an older one is passed
 * over and named in the error when nothing fits.
 *
 * The connection: the programs get owner_database_url as --dbname with
 * its password left out, and the password (if any) in PGPASSWORD of
 * their environment, so it never shows in a process list.
 */
#ifndef CREWD_PGTOOLS_H
#define CREWD_PGTOOLS_H

#include <limits.h>
#include <sys/types.h>

#include "error.h"

struct pg_program {
    char path[PATH_MAX];
    int major;              /* 15 for 15.18 */
    char version[64];       /* "15.18" */
};

/* The major version of a server_version_num (150018 -> 15; 90624 -> 9). */
int pg_major_of_num(int num);

/*
 * Finds program ("pg_dump", "pg_restore") at version need_major or
 * newer, looking first in pg_bindir (from the configuration, "" when
 * unset), then for server_major's Debian folder, then in PATH.
 * Returns 0, or -1 with err saying what was found and what to set.
 */
int pg_program_find(const char *pg_bindir, const char *program,
    int server_major, int need_major, struct pg_program *out,
    struct crewd_error *err);

/*
 * Starts args[0] with args (NULL-terminated), standard input from
 * /dev/null, standard output to stdout_fd (-1: crewctl's own), standard
 * error crewctl's, and password (NULL: none) as PGPASSWORD.  Returns the
 * process id, or -1 with err.
 */
pid_t pg_program_start(const char *const *args, const char *password,
    int stdout_fd, struct crewd_error *err);

/* Waits for it: 0 when it exited with 0, -1 with err naming it. */
int pg_program_wait(pid_t pid, const char *name, struct crewd_error *err);

/*
 * Splits a libpq connection string into one without its password (for
 * --dbname=, malloc'd) and the password (malloc'd; NULL when none).
 * Returns 0, or -1 with err for a string libpq does not accept.
 */
int pg_conninfo_split(const char *conninfo, char **without_password,
    char **password, struct crewd_error *err);

#endif
