#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "mongo.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

enum conf_type {
    CONF_STRING,
    CONF_INT,
    CONF_SIZE,
    CONF_ULL,
    CONF_BOOL,
    CONF_MODE,
    CONF_HOSTS,
    CONF_LOG_LEVEL,
    CONF_MONGODB_URI,
    CONF_ISOLATION
};

struct conf_key {
    const char *name;
    enum conf_type type;
    size_t offset;
    size_t size;            /* capacity for strings */
    long long min, max;     /* bounds for numbers */
};

#define KEY(name, type, min, max) { #name, type, \
    offsetof(struct crewd_conf, name), \
    sizeof(((struct crewd_conf *)0)->name), min, max }

/* The one table of configuration keys. */
static const struct conf_key conf_keys[] = {
    KEY(listen, CONF_STRING, 0, 0),
    KEY(listen_mode, CONF_MODE, 0, 0777),
    KEY(workers, CONF_INT, 1, 256),
    KEY(shutdown_timeout, CONF_INT, 1, 3600),
    KEY(database_url, CONF_STRING, 0, 0),
    KEY(owner_database_url, CONF_STRING, 0, 0),
    KEY(isolation, CONF_ISOLATION, 0, 0),
    KEY(mongodb_uri, CONF_MONGODB_URI, 0, 0),
    KEY(mongodb_provision_interval, CONF_INT, 1, 3600),
    KEY(base_domain, CONF_STRING, 0, 0),
    KEY(token_secret_file, CONF_STRING, 0, 0),
    KEY(token_issuer, CONF_STRING, 0, 0),
    KEY(master_key_file, CONF_STRING, 0, 0),
    KEY(master_key_previous_files, CONF_STRING, 0, 0),
    KEY(provider_http_hosts, CONF_HOSTS, 0, 0),
    KEY(token_lifetime, CONF_INT, 60, 86400),
    KEY(signup_enabled, CONF_BOOL, 0, 0),
    KEY(password_min_bytes, CONF_SIZE, 1, 1024),
    KEY(password_max_bytes, CONF_SIZE, 8, 4096),
    KEY(password_ops_limit, CONF_ULL, 1, 1000),
    KEY(password_mem_limit, CONF_SIZE, 8192, 4LL << 30),
    KEY(body_max_bytes, CONF_SIZE, 1024, 64LL << 20),
    KEY(fastcgi_timeout, CONF_INT, 1, 300),
    KEY(login_max_failures, CONF_INT, 1, 1000),
    KEY(login_failure_window, CONF_INT, 1, 86400),
    KEY(log_level, CONF_LOG_LEVEL, 0, 0),
    KEY(pid_file, CONF_STRING, 0, 0),
    KEY(audit_shipper, CONF_BOOL, 0, 0),
    KEY(audit_sweep_interval, CONF_INT, 1, 86400),
    KEY(pg_bindir, CONF_STRING, 0, 0),
    KEY(metrics_tenants_max, CONF_INT, 1, 1000),
    KEY(access_log, CONF_STRING, 0, 0),
};

const char *
conf_default_path(void)
{
    return SYSCONFDIR "/crewd/crewd.conf";
}

const char *
isolation_mode_name(int mode)
{
    return mode == ISOLATION_SCHEMA ? "schema" : "roles";
}

void
conf_defaults(struct crewd_conf *conf)
{
    memset(conf, 0, sizeof(*conf));
    snprintf(conf->listen, sizeof(conf->listen), "/run/crewd/crewd.sock");
    conf->listen_mode = 0660;
    conf->workers = 4;
    conf->shutdown_timeout = 30;
    snprintf(conf->database_url, sizeof(conf->database_url),
        "dbname=crewd user=crewd");
    snprintf(conf->owner_database_url, sizeof(conf->owner_database_url),
        "dbname=crewd user=crewd_owner");
    conf->isolation = ISOLATION_ROLES;
    snprintf(conf->mongodb_uri, sizeof(conf->mongodb_uri),
        "mongodb://127.0.0.1:27017/crewd");
    conf->mongodb_provision_interval = 30;
    snprintf(conf->base_domain, sizeof(conf->base_domain), "localhost");
    snprintf(conf->token_secret_file, sizeof(conf->token_secret_file),
        "/var/lib/crewd/token.key");
    snprintf(conf->token_issuer, sizeof(conf->token_issuer), "crewd");
    snprintf(conf->master_key_file, sizeof(conf->master_key_file),
        "/var/lib/crewd/master.key");
    snprintf(conf->provider_http_hosts, sizeof(conf->provider_http_hosts),
        "localhost,127.0.0.1");
    conf->token_lifetime = 3600;
    conf->signup_enabled = true;
    conf->password_min_bytes = 8;
    conf->password_max_bytes = 256;
    /* libsodium's "interactive" Argon2id parameters. */
    conf->password_ops_limit = 2;
    conf->password_mem_limit = 64u << 20;
    conf->body_max_bytes = 1u << 20;
    conf->fastcgi_timeout = 30;
    conf->login_max_failures = 10;
    conf->login_failure_window = 900;
    conf->log_level = LOG_INFO;
    conf->audit_shipper = true;
    conf->audit_sweep_interval = 60;
    conf->metrics_tenants_max = 100;
    snprintf(conf->access_log, sizeof(conf->access_log),
        "/var/log/crewd/access.log");
}

static int
parse_number(const char *value, long long min, long long max,
    long long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/*
 * A list of hosts: names, IPv4 or IPv6 addresses (without brackets),
 * separated by commas and blanks.  Written to out lower-cased and joined
 * by single commas, so users of the list compare names with strcmp.  An
 * empty list is allowed.
 */
static int
hosts_normalise(const char *value, char *out)
{
    size_t used = 0;
    const char *p = value;

    while (*p != '\0') {
        size_t len;

        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        len = strcspn(p, ", \t");
        if (len == 0)
            continue;
        if (used > 0)
            out[used++] = ',';
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)p[i];

            if (!isalnum(c) && c != '.' && c != '-' && c != ':')
                return -1;
            out[used++] = (char)tolower(c);
        }
        p += len;
    }
    out[used] = '\0';
    return 0;
}

int
conf_set(struct crewd_conf *conf, const char *key, const char *value,
    struct crewd_error *err)
{
    const struct conf_key *k = NULL;
    char *field;
    long long number;

    for (size_t i = 0; i < sizeof(conf_keys) / sizeof(conf_keys[0]); i++)
        if (strcmp(conf_keys[i].name, key) == 0)
            k = &conf_keys[i];
    if (k == NULL)
        return error_set(err, 0, "unknown key \"%s\"", key);

    field = (char *)conf + k->offset;
    switch (k->type) {
    case CONF_STRING:
        if (strlen(value) >= k->size)
            return error_set(err, 0, "value of %s is too long", key);
        memcpy(field, value, strlen(value) + 1);
        return 0;

    case CONF_INT:
    case CONF_SIZE:
    case CONF_ULL:
        if (parse_number(value, k->min, k->max, &number) < 0)
            return error_set(err, 0, "%s must be a number from %lld to %lld",
                key, k->min, k->max);
        if (k->type == CONF_INT)
            *(int *)field = (int)number;
        else if (k->type == CONF_SIZE)
            *(size_t *)field = (size_t)number;
        else
            *(unsigned long long *)field = (unsigned long long)number;
        return 0;

    case CONF_MODE: {
        char *end;
        unsigned long mode;

        errno = 0;
        mode = strtoul(value, &end, 8);
        if (errno != 0 || end == value || *end != '\0' || mode > 0777)
            return error_set(err, 0, "%s must be an octal mode like 0660",
                key);
        *(unsigned *)field = (unsigned)mode;
        return 0;
    }

    case CONF_HOSTS:
        if (strlen(value) >= k->size)
            return error_set(err, 0, "value of %s is too long", key);
        if (hosts_normalise(value, field) < 0)
            return error_set(err, 0, "%s must be a comma-separated list "
                "of host names or IP addresses", key);
        return 0;

    case CONF_BOOL:
        if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 ||
            strcmp(value, "on") == 0)
            *(bool *)field = true;
        else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 ||
                 strcmp(value, "off") == 0)
            *(bool *)field = false;
        else
            return error_set(err, 0, "%s must be true or false", key);
        return 0;

    case CONF_MONGODB_URI: {
        char why[CONF_VALUE_MAX];

        if (strlen(value) >= k->size)
            return error_set(err, 0, "value of %s is too long", key);
        if (!mongo_uri_valid(value, why, sizeof(why)))
            return error_set(err, 0, "%s is not a MongoDB URI: %.160s", key,
                why);
        memcpy(field, value, strlen(value) + 1);
        return 0;
    }

    case CONF_LOG_LEVEL: {
        int level = log_level_parse(value);

        if (level < 0)
            return error_set(err, 0,
                "%s must be debug, info, warn or error", key);
        *(int *)field = level;
        return 0;
    }

    case CONF_ISOLATION:
        if (strcmp(value, "roles") == 0)
            *(int *)field = ISOLATION_ROLES;
        else if (strcmp(value, "schema") == 0)
            *(int *)field = ISOLATION_SCHEMA;
        else
            return error_set(err, 0, "%s must be roles or schema", key);
        return 0;
    }
    return error_set(err, 0, "unhandled key type for %s", key);
}

static char *
trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

/* Parses one line in place; returns 1 for a pair, 0 for none, -1 bad. */
static int
parse_line(char *line, char **key, char **value)
{
    char *eq, *v;

    line = trim(line);
    if (*line == '\0' || *line == '#')
        return 0;

    eq = strchr(line, '=');
    if (eq == NULL)
        return -1;
    *eq = '\0';
    *key = trim(line);
    v = trim(eq + 1);

    if (*v == '"') {
        char *close = strrchr(v + 1, '"');

        if (close == NULL || trim(close + 1)[0] != '\0')
            return -1;
        *close = '\0';
        v++;
    } else {
        char *hash = strchr(v, '#');

        if (hash != NULL) {
            *hash = '\0';
            v = trim(v);
        }
    }
    *value = v;
    return **key == '\0' ? -1 : 1;
}

int
conf_load(struct crewd_conf *conf, const char *path, struct crewd_error *err)
{
    FILE *f;
    char line[CONF_VALUE_MAX + CONF_PATH_MAX];
    int lineno = 0;
    int rc = 0;

    f = fopen(path, "r");
    if (f == NULL)
        return error_set(err, 0, "could not open %s: %s", path,
            strerror(errno));

    while (fgets(line, sizeof(line), f) != NULL) {
        char *key, *value;
        int parsed;

        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            rc = error_set(err, 0, "%s:%d: line too long", path, lineno);
            break;
        }

        parsed = parse_line(line, &key, &value);
        if (parsed < 0) {
            rc = error_set(err, 0, "%s:%d: expected key = value", path,
                lineno);
            break;
        }
        if (parsed == 0)
            continue;

        if (conf_set(conf, key, value, err) < 0) {
            char reason[ERROR_DETAIL_MAX];

            snprintf(reason, sizeof(reason), "%s", err->detail);
            rc = error_set(err, 0, "%s:%d: %s", path, lineno, reason);
            break;
        }
    }
    fclose(f);

    if (rc == 0 && conf->password_min_bytes > conf->password_max_bytes)
        rc = error_set(err, 0, "%s: password_min_bytes exceeds "
            "password_max_bytes", path);
    return rc;
}
