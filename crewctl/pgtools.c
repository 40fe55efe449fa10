#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "arena.h"
#include "buf.h"
#include "pgtools.h"

/* Where Debian and Ubuntu keep each major version's programs. */
#define DEBIAN_BINDIR "/usr/lib/postgresql/%d/bin"

int
pg_major_of_num(int num)
{
    return num / 10000;
}

/* "pg_dump (PostgreSQL) 15.18 (Debian ...)" -> 15 and "15.18". */
static bool
parse_version(const char *text, int *major, char *version, size_t size)
{
    const char *p = strstr(text, "(PostgreSQL) ");
    size_t n;

    if (p == NULL)
        return false;
    p += strlen("(PostgreSQL) ");
    n = strspn(p, "0123456789.");
    if (n == 0 || n >= size)
        return false;
    memcpy(version, p, n);
    version[n] = '\0';
    *major = atoi(version);
    return *major > 0;
}

pid_t
pg_program_start(const char *const *args, const char *password,
    int stdout_fd, struct crewd_error *err)
{
    pid_t pid;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0)
        return error_set(err, 500, "could not start %s: %s", args[0],
            strerror(errno));
    if (pid == 0) {
        int null_fd = open("/dev/null", O_RDONLY);

        if (null_fd >= 0 && null_fd != STDIN_FILENO) {
            dup2(null_fd, STDIN_FILENO);
            close(null_fd);
        }
        if (stdout_fd >= 0 && stdout_fd != STDOUT_FILENO) {
            dup2(stdout_fd, STDOUT_FILENO);
            close(stdout_fd);
        }
        if (password != NULL)
            setenv("PGPASSWORD", password, 1);
        /* crewctl's handlers clean up after crewctl, not after this. */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        execv(args[0], (char *const *)args);
        fprintf(stderr, "crewctl: could not run %s: %s\n", args[0],
            strerror(errno));
        _exit(127);
    }
    return pid;
}

int
pg_program_wait(pid_t pid, const char *name, struct crewd_error *err)
{
    int status;

    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return error_set(err, 500, "could not wait for %s: %s", name,
                strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        return error_set(err, 500, "%s failed (exit status %d; its "
            "message is above)", name, WEXITSTATUS(status));
    return error_set(err, 500, "%s was killed by signal %d", name,
        WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* Runs "path --version" and reads its version; false when it cannot. */
static bool
program_version(const char *path, int *major, char *version, size_t size)
{
    const char *args[] = { path, "--version", NULL };
    struct crewd_error ignored;
    char text[256];
    size_t used = 0;
    int fds[2];
    pid_t pid;
    ssize_t n;

    if (pipe(fds) < 0)
        return false;
    error_clear(&ignored);
    pid = pg_program_start(args, NULL, fds[1], &ignored);
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return false;
    }
    while (used < sizeof(text) - 1 &&
           ((n = read(fds[0], text + used, sizeof(text) - 1 - used)) > 0 ||
            (n < 0 && errno == EINTR)))
        if (n > 0)
            used += (size_t)n;
    text[used] = '\0';
    close(fds[0]);
    if (pg_program_wait(pid, path, &ignored) < 0)
        return false;
    return parse_version(text, major, version, size);
}

/*
 * Tries dir/program: 1 when it fits, 0 when it is missing or too old
 * (then noted in older), -1 never.
 */
static int
try_candidate(const char *dir, const char *program, int need_major,
    struct pg_program *out, struct buf *older)
{
    char path[PATH_MAX];

    if (snprintf(path, sizeof(path), "%s/%s", dir, program) >=
            (int)sizeof(path) || access(path, X_OK) != 0)
        return 0;
    if (!program_version(path, &out->major, out->version,
            sizeof(out->version))) {
        buf_printf(older, "%s%s (no version)", older->len ? ", " : "",
            path);
        return 0;
    }
    if (out->major < need_major) {
        buf_printf(older, "%s%s (%s)", older->len ? ", " : "", path,
            out->version);
        return 0;
    }
    snprintf(out->path, sizeof(out->path), "%s", path);
    return 1;
}

int
pg_program_find(const char *pg_bindir, const char *program,
    int server_major, int need_major, struct pg_program *out,
    struct crewd_error *err)
{
    struct buf older = BUF_INIT;
    char debian[64];
    const char *path_env;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (pg_bindir[0] != '\0') {
        if (try_candidate(pg_bindir, program, need_major, out, &older))
            rc = 0;
        else if (older.len > 0)
            error_set(err, 500, "%s is older than PostgreSQL %d: %s; set "
                "pg_bindir to the programs of PostgreSQL %d or later",
                program, need_major, buf_cstr(&older), need_major);
        else
            error_set(err, 500, "no %s in pg_bindir (%s)", program,
                pg_bindir);
        buf_free(&older);
        return rc;
    }

    snprintf(debian, sizeof(debian), DEBIAN_BINDIR, server_major);
    if (try_candidate(debian, program, need_major, out, &older)) {
        buf_free(&older);
        return 0;
    }

    path_env = getenv("PATH");
    if (path_env != NULL) {
        char *copy = xstrdup(path_env), *save = NULL;

        for (char *dir = strtok_r(copy, ":", &save); dir != NULL;
             dir = strtok_r(NULL, ":", &save))
            if (dir[0] != '\0' &&
                try_candidate(dir, program, need_major, out, &older)) {
                rc = 0;
                break;
            }
        free(copy);
    }
    if (rc < 0 && older.len > 0)
        error_set(err, 500, "%s of PostgreSQL %d or later is needed; found "
            "only %s: set pg_bindir", program, need_major,
            buf_cstr(&older));
    else if (rc < 0)
        error_set(err, 500, "%s not found (in %s or PATH): install "
            "PostgreSQL %d's client programs or set pg_bindir", program,
            debian, need_major);
    buf_free(&older);
    return rc;
}

/* key='value' with ' and \ escaped, as libpq reads it. */
static void
append_option(struct buf *out, const char *key, const char *value)
{
    if (out->len > 0)
        buf_putc(out, ' ');
    buf_printf(out, "%s='", key);
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\'' || *p == '\\')
            buf_putc(out, '\\');
        buf_putc(out, *p);
    }
    buf_putc(out, '\'');
}

int
pg_conninfo_split(const char *conninfo, char **without_password,
    char **password, struct crewd_error *err)
{
    PQconninfoOption *options;
    struct buf out = BUF_INIT;
    char *why = NULL;

    *without_password = NULL;
    *password = NULL;
    options = PQconninfoParse(conninfo, &why);
    if (options == NULL) {
        PQfreemem(why);
        return error_set(err, 500, "owner_database_url is not a "
            "connection string libpq accepts");
    }
    for (PQconninfoOption *o = options; o->keyword != NULL; o++) {
        if (o->val == NULL)
            continue;
        if (strcmp(o->keyword, "password") == 0)
            *password = xstrdup(o->val);
        else
            append_option(&out, o->keyword, o->val);
    }
    PQconninfoFree(options);
    *without_password = xstrdup(buf_cstr(&out));
    buf_free(&out);
    return 0;
}
