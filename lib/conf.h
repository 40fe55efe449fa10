/*
 * The configuration file, /etc/crewd/crewd.conf by default: one
 * "key = value" a line, '#' starts a comment, values may be double-quoted.
 * An unknown key or a bad value is an error naming the file and line, so
 * a typo never silently falls back to a default.  docs/configuration.md
 * lists every key; conf.c holds the one table that defines them.
 */
#ifndef CREWD_CONF_H
#define CREWD_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define CONF_PATH_MAX 512
#define CONF_VALUE_MAX 1024

/*
 * How the database keeps tenants apart (docs/isolation.md): a role per
 * tenant, or one application role and the schema alone (for distributed
 * engines, which cannot use NOLOGIN roles).
 */
enum isolation_mode {
    ISOLATION_ROLES,
    ISOLATION_SCHEMA
};

const char *isolation_mode_name(int mode);

struct crewd_conf {
    char listen[CONF_PATH_MAX];         /* unix socket path */
    unsigned listen_mode;               /* permissions of that socket */
    int workers;
    int shutdown_timeout;               /* seconds for requests to finish */
    char database_url[CONF_VALUE_MAX];  /* libpq connection string */
    /* crewctl's connection: the owner role, never used by a request. */
    char owner_database_url[CONF_VALUE_MAX];
    int isolation;                      /* enum isolation_mode */
    /* MongoDB (lib/mongo.h): "" leaves it unconfigured; how often a
       worker retries tenants whose collections are not made yet. */
    char mongodb_uri[CONF_VALUE_MAX];
    int mongodb_provision_interval;     /* seconds */
    char base_domain[256];
    char token_secret_file[CONF_PATH_MAX];
    char token_issuer[128];
    /* The master key that seals credentials, and older ones that only
       open (comma-separated file names; empty: none). */
    char master_key_file[CONF_PATH_MAX];
    char master_key_previous_files[CONF_VALUE_MAX];
    /* Hosts providers may reach over plain http: lower-case, joined by
       single commas (conf_set normalises the list). */
    char provider_http_hosts[CONF_VALUE_MAX];
    int token_lifetime;                 /* seconds */
    bool signup_enabled;
    size_t password_min_bytes;
    size_t password_max_bytes;
    unsigned long long password_ops_limit;
    size_t password_mem_limit;
    size_t body_max_bytes;
    /* Seconds nginx gets to send a whole request over the FastCGI
       socket, and again to take the whole response. */
    int fastcgi_timeout;
    /* Failed logins of one e-mail in a tenant within the window that
       lock further attempts for the window (429). */
    int login_max_failures;
    int login_failure_window;           /* seconds */
    int log_level;                      /* enum log_level */
    char pid_file[CONF_PATH_MAX];       /* empty: none */
    /* The audit shipper: run by the master, or not (its own unit). */
    bool audit_shipper;
    int audit_sweep_interval;           /* seconds between full sweeps */
    /* crewctl tenant backup and restore: the folder of pg_dump and
       pg_restore; empty: found for the server's version. */
    char pg_bindir[CONF_PATH_MAX];
    /* Observability (docs/metrics.md): tenants with series of their own
       in /metrics; the JSON access log's path (empty: none). */
    int metrics_tenants_max;
    char access_log[CONF_PATH_MAX];
};

/* Fills conf with the built-in defaults. */
void conf_defaults(struct crewd_conf *conf);

/*
 * Reads path over the defaults.  On failure returns -1 with a message
 * naming the file and line in err->detail.
 */
int conf_load(struct crewd_conf *conf, const char *path,
    struct crewd_error *err);

/* Parses one "key = value" pair; used by conf_load and the tests. */
int conf_set(struct crewd_conf *conf, const char *key, const char *value,
    struct crewd_error *err);

/* The default configuration path (SYSCONFDIR/crewd/crewd.conf). */
const char *conf_default_path(void);

#endif
