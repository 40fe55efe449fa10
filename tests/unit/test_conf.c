#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "db.h"
#include "log.h"
#include "unit.h"

/* Writes text to a temporary file; returns its malloc'd path. */
static char *
write_conf(const char *text)
{
    char *path = strdup("/tmp/crewd-conf-test-XXXXXX");
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");

    fputs(text, f);
    fclose(f);
    return path;
}

static int
load(struct crewd_conf *conf, const char *text, struct crewd_error *err)
{
    char *path = write_conf(text);
    int rc;

    conf_defaults(conf);
    error_clear(err);
    rc = conf_load(conf, path, err);
    unlink(path);
    free(path);
    return rc;
}

static void
test_defaults(void)
{
    struct crewd_conf conf;

    conf_defaults(&conf);
    CU_ASSERT_EQUAL(conf.workers, 4);
    CU_ASSERT_EQUAL(conf.token_lifetime, 3600);
    CU_ASSERT_EQUAL(conf.body_max_bytes, 1u << 20);
    CU_ASSERT_TRUE(conf.signup_enabled);
    CU_ASSERT_EQUAL(conf.listen_mode, 0660);
    CU_ASSERT_EQUAL(conf.fastcgi_timeout, 30);
    CU_ASSERT_EQUAL(conf.login_max_failures, 10);
    CU_ASSERT_EQUAL(conf.login_failure_window, 900);
}

static void
test_reads_keys_comments_and_quotes(void)
{
    struct crewd_conf conf;
    struct crewd_error err;

    CU_ASSERT_EQUAL(load(&conf,
        "# a comment\n"
        "\n"
        "workers = 7\n"
        "database_url = \"host=/tmp port=5 dbname=crewd # not a comment\"\n"
        "signup_enabled = false   # trailing comment\n"
        "listen_mode = 0600\n"
        "log_level = debug\n", &err), 0);
    CU_ASSERT_EQUAL(conf.workers, 7);
    CU_ASSERT_STRING_EQUAL(conf.database_url,
        "host=/tmp port=5 dbname=crewd # not a comment");
    CU_ASSERT_FALSE(conf.signup_enabled);
    CU_ASSERT_EQUAL(conf.listen_mode, 0600);
    CU_ASSERT_EQUAL(conf.log_level, LOG_DEBUG);
}

static void
test_unknown_key_names_file_and_line(void)
{
    struct crewd_conf conf;
    struct crewd_error err;

    CU_ASSERT_EQUAL(load(&conf, "workers = 2\nwokers = 3\n", &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, ":2: unknown key \"wokers\""));
}

static void
test_out_of_range_numbers_are_refused(void)
{
    struct crewd_conf conf;
    struct crewd_error err;

    CU_ASSERT_EQUAL(load(&conf, "workers = 0\n", &err), -1);
    CU_ASSERT_EQUAL(load(&conf, "workers = 12abc\n", &err), -1);
    CU_ASSERT_EQUAL(load(&conf, "token_lifetime = 10\n", &err), -1);
    CU_ASSERT_EQUAL(load(&conf, "listen_mode = 0999\n", &err), -1);
    CU_ASSERT_EQUAL(load(&conf, "signup_enabled = maybe\n", &err), -1);
    CU_ASSERT_EQUAL(load(&conf, "log_level = loud\n", &err), -1);
    CU_ASSERT_EQUAL(load(&conf, "fastcgi_timeout = 0\n", &err), -1);
    CU_ASSERT_EQUAL(load(&conf, "fastcgi_timeout = 301\n", &err), -1);
    CU_ASSERT_EQUAL(load(&conf, "login_max_failures = 0\n", &err), -1);
    CU_ASSERT_EQUAL(load(&conf, "login_failure_window = 86401\n", &err),
        -1);
}

/* The observability keys: the tenant cap's bounds, the access log. */
static void
test_metrics_and_access_log_keys(void)
{
    struct crewd_conf conf;
    struct crewd_error err;

    conf_defaults(&conf);
    CU_ASSERT_EQUAL(conf.metrics_tenants_max, 100);
    CU_ASSERT_STRING_EQUAL(conf.access_log, "/var/log/crewd/access.log");
    CU_ASSERT_EQUAL(load(&conf, "metrics_tenants_max = 0\n", &err), -1);
    CU_ASSERT_EQUAL(load(&conf, "metrics_tenants_max = 1001\n", &err), -1);
    CU_ASSERT_EQUAL(load(&conf, "metrics_tenants_max = 1000\n"
        "access_log = \"\"\n", &err), 0);
    CU_ASSERT_EQUAL(conf.metrics_tenants_max, 1000);
    CU_ASSERT_STRING_EQUAL(conf.access_log, "");
}

static void
test_isolation_mode_is_roles_or_schema(void)
{
    struct crewd_conf conf;
    struct crewd_error err;

    CU_ASSERT_EQUAL(load(&conf, "workers = 2\n", &err), 0);
    CU_ASSERT_EQUAL(conf.isolation, ISOLATION_ROLES);
    CU_ASSERT_STRING_EQUAL(conf.owner_database_url,
        "dbname=crewd user=crewd_owner");
    CU_ASSERT_EQUAL(load(&conf, "isolation = schema\n", &err), 0);
    CU_ASSERT_EQUAL(conf.isolation, ISOLATION_SCHEMA);
    CU_ASSERT_STRING_EQUAL(isolation_mode_name(conf.isolation), "schema");
    CU_ASSERT_EQUAL(load(&conf, "isolation = roles\n", &err), 0);
    CU_ASSERT_EQUAL(conf.isolation, ISOLATION_ROLES);
    CU_ASSERT_EQUAL(load(&conf, "isolation = none\n", &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "roles or schema"));
    CU_ASSERT_EQUAL(load(&conf, "isolation = Roles\n", &err), -1);
}

static void
test_role_is_read_from_a_connection_string(void)
{
    char role[64];

    CU_ASSERT_TRUE(db_conninfo_user("host=/run dbname=crewd user=app",
        role, sizeof(role)));
    CU_ASSERT_STRING_EQUAL(role, "app");
    CU_ASSERT_TRUE(db_conninfo_user("postgresql://ops@localhost/crewd",
        role, sizeof(role)));
    CU_ASSERT_STRING_EQUAL(role, "ops");
    CU_ASSERT_FALSE(db_conninfo_user("dbname=crewd", role, sizeof(role)));
    CU_ASSERT_FALSE(db_conninfo_user("dbname='unclosed", role,
        sizeof(role)));
    CU_ASSERT_FALSE(db_conninfo_user("user=much_too_long_for_the_buffer",
        role, 8));
}

static void
test_line_without_equals_is_refused(void)
{
    struct crewd_conf conf;
    struct crewd_error err;

    CU_ASSERT_EQUAL(load(&conf, "workers 2\n", &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "expected key = value"));
}

static void
test_password_limits_must_be_ordered(void)
{
    struct crewd_conf conf;
    struct crewd_error err;

    CU_ASSERT_EQUAL(load(&conf,
        "password_min_bytes = 64\npassword_max_bytes = 32\n", &err), -1);
}

static void
test_missing_file_is_an_error(void)
{
    struct crewd_conf conf;
    struct crewd_error err;

    conf_defaults(&conf);
    error_clear(&err);
    CU_ASSERT_EQUAL(conf_load(&conf, "/nonexistent/crewd.conf", &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "/nonexistent/crewd.conf"));
}

void
register_conf_tests(void)
{
    CU_pSuite s = unit_suite("configuration");

    unit_test(s, "defaults", test_defaults);
    unit_test(s, "metrics and access log keys",
        test_metrics_and_access_log_keys);
    unit_test(s, "keys, comments and quotes are read",
        test_reads_keys_comments_and_quotes);
    unit_test(s, "an unknown key names the file and line",
        test_unknown_key_names_file_and_line);
    unit_test(s, "the isolation mode is roles or schema",
        test_isolation_mode_is_roles_or_schema);
    unit_test(s, "the application role is read from database_url",
        test_role_is_read_from_a_connection_string);
    unit_test(s, "out-of-range values are refused",
        test_out_of_range_numbers_are_refused);
    unit_test(s, "a line without = is refused",
        test_line_without_equals_is_refused);
    unit_test(s, "password limits must be ordered",
        test_password_limits_must_be_ordered);
    unit_test(s, "a missing file is an error", test_missing_file_is_an_error);
}
