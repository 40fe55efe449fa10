#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "metrics.h"
#include "observe.h"
#include "routes.h"
#include "unit.h"

#define TENANT_A "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
#define TENANT_B "11111111-2222-4333-8444-555555555555"
#define TENANT_C "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
#define USER_1 "99999999-8888-4777-8666-555555555555"
#define USER_2 "12345678-1234-4234-8234-123456789012"

#define T0 1000.0

static int
route_index(const char *method, const char *pattern)
{
    for (size_t i = 0; i < routes_count; i++)
        if (strcmp(routes[i].method, method) == 0 &&
            strcmp(routes[i].pattern, pattern) == 0)
            return (int)i;
    CU_FAIL("no such route");
    return -1;
}

static void
fresh(int tenants_max)
{
    char why[160];

    metrics_shutdown();
    CU_ASSERT_EQUAL_FATAL(metrics_init(tenants_max, why, sizeof(why)), 0);
}

static void
count(const char *tenant, const char *slug, const char *user, int route,
    int status, double now)
{
    struct metrics_request m = {
        .tenant_id = tenant, .tenant_slug = slug, .user_id = user,
        .route = route, .status = status, .seconds = 0.003, .now = now,
    };

    metrics_count_request(&m);
}

static char *
render(double now)
{
    struct buf out = BUF_INIT;
    char *text;

    metrics_render(&out, now);
    text = strdup(buf_cstr(&out));
    buf_free(&out);
    return text;
}

/* The value of the sample line that starts with series, or -1. */
static double
sample(const char *text, const char *series)
{
    size_t len = strlen(series);

    for (const char *line = text; *line != '\0';) {
        const char *end = strchr(line, '\n');

        if (strncmp(line, series, len) == 0 && line[len] == ' ')
            return strtod(line + len + 1, NULL);
        if (end == NULL)
            break;
        line = end + 1;
    }
    return -1;
}

static bool
contains(const char *text, const char *needle)
{
    return strstr(text, needle) != NULL;
}

static void
test_requests_are_counted_by_tenant_route_and_status(void)
{
    int agents = route_index("GET", "/api/v1/agents");
    char *text;

    fresh(10);
    for (int i = 0; i < 3; i++)
        count(TENANT_A, "acme", NULL, agents, 200, T0);
    count(TENANT_A, "acme", NULL, agents, 404, T0);
    count(NULL, NULL, NULL, -1, 404, T0);
    count(NULL, NULL, NULL, -1, 599, T0);
    text = render(T0);

    CU_ASSERT_EQUAL(sample(text, "http_requests_per_tenant_total{tenant_id=\""
        TENANT_A "\",method=\"GET\",endpoint=\"/api/v1/agents\","
        "status=\"200\"}"), 3);
    CU_ASSERT_EQUAL(sample(text, "http_requests_per_tenant_total{tenant_id=\""
        TENANT_A "\",method=\"GET\",endpoint=\"/api/v1/agents\","
        "status=\"404\"}"), 1);
    CU_ASSERT_EQUAL(sample(text, "http_requests_per_tenant_total{tenant_id="
        "\"none\",method=\"any\",endpoint=\"unmatched\",status=\"404\"}"), 1);
    CU_ASSERT_EQUAL(sample(text, "http_requests_per_tenant_total{tenant_id="
        "\"none\",method=\"any\",endpoint=\"unmatched\",status=\"other\"}"),
        1);
    CU_ASSERT_EQUAL(sample(text, "crewd_tenant_info{tenant_id=\"" TENANT_A
        "\",slug=\"acme\"}"), 1);
    free(text);
}

static void
test_latency_histogram_is_cumulative_and_counts_agree(void)
{
    int agents = route_index("GET", "/api/v1/agents");
    struct metrics_request slow = {
        .tenant_id = TENANT_A, .tenant_slug = "acme", .route = agents,
        .status = 200, .seconds = 0.3, .now = T0,
    };
    const char *series = "http_request_duration_seconds_bucket{method="
        "\"GET\",endpoint=\"/api/v1/agents\",le=";
    char name[200];
    char *text;

    fresh(10);
    count(TENANT_A, "acme", NULL, agents, 200, T0);
    count(TENANT_A, "acme", NULL, agents, 200, T0);
    metrics_count_request(&slow);
    text = render(T0);

    snprintf(name, sizeof(name), "%s\"0.001\"}", series);
    CU_ASSERT_EQUAL(sample(text, name), -1);    /* not a bound */
    snprintf(name, sizeof(name), "%s\"0.005\"}", series);
    CU_ASSERT_EQUAL(sample(text, name), 2);
    snprintf(name, sizeof(name), "%s\"0.25\"}", series);
    CU_ASSERT_EQUAL(sample(text, name), 2);
    snprintf(name, sizeof(name), "%s\"0.5\"}", series);
    CU_ASSERT_EQUAL(sample(text, name), 3);
    snprintf(name, sizeof(name), "%s\"+Inf\"}", series);
    CU_ASSERT_EQUAL(sample(text, name), 3);
    CU_ASSERT_EQUAL(sample(text, "http_request_duration_seconds_count{"
        "method=\"GET\",endpoint=\"/api/v1/agents\"}"), 3);
    CU_ASSERT_DOUBLE_EQUAL(sample(text, "http_request_duration_seconds_sum{"
        "method=\"GET\",endpoint=\"/api/v1/agents\"}"), 0.306, 1e-6);
    free(text);
}

/*
 * Every line is a comment (# HELP / # TYPE, each family once, before its
 * samples) or "name{labels} value" of the family last typed.
 */
static void
test_exposition_lines_are_well_formed(void)
{
    int agents = route_index("GET", "/api/v1/agents");
    char family[128] = "";
    char *text, *line, *save = NULL;
    int families = 0;

    fresh(10);
    count(TENANT_A, "acme", USER_1, agents, 200, T0);
    metrics_count_execution(TENANT_A, "acme", "cancelled", 12.5, T0);
    text = render(T0);
    CU_ASSERT_EQUAL(text[strlen(text) - 1], '\n');

    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char name[128];
        const char *value;

        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        if (strncmp(line, "# TYPE ", 7) == 0) {
            CU_ASSERT_EQUAL(sscanf(line + 7, "%127s", family), 1);
            families++;
            continue;
        }
        CU_ASSERT_EQUAL(sscanf(line, "%127[a-z_]", name), 1);
        CU_ASSERT_EQUAL(strncmp(name, family, strlen(family)), 0);
        value = strrchr(line, ' ');
        CU_ASSERT_PTR_NOT_NULL_FATAL(value);
        CU_ASSERT_TRUE(strchr("0123456789", value[1]) != NULL);
    }
    CU_ASSERT_EQUAL(families, 17);
    free(text);
}

static void
test_label_values_are_escaped(void)
{
    int agents = route_index("GET", "/api/v1/agents");
    char *text;

    fresh(10);
    count(TENANT_A, "a\"b\\c\nd", NULL, agents, 200, T0);
    text = render(T0);
    CU_ASSERT_TRUE(contains(text, "crewd_tenant_info{tenant_id=\"" TENANT_A
        "\",slug=\"a\\\"b\\\\c\\nd\"} 1\n"));
    free(text);
}

static void
test_executions_are_observed_per_tenant_and_status(void)
{
    char *text;

    fresh(10);
    metrics_count_execution(TENANT_A, "acme", "cancelled", 12.5, T0);
    metrics_count_execution(TENANT_A, "acme", "cancelled", 0.5, T0);
    metrics_count_execution(TENANT_A, "acme", "running", 1, T0);
    text = render(T0);

    CU_ASSERT_EQUAL(sample(text, "flow_execution_duration_seconds_bucket{"
        "tenant_id=\"" TENANT_A "\",status=\"cancelled\",le=\"1\"}"), 1);
    CU_ASSERT_EQUAL(sample(text, "flow_execution_duration_seconds_bucket{"
        "tenant_id=\"" TENANT_A "\",status=\"cancelled\",le=\"15\"}"), 2);
    CU_ASSERT_EQUAL(sample(text, "flow_execution_duration_seconds_count{"
        "tenant_id=\"" TENANT_A "\",status=\"cancelled\"}"), 2);
    CU_ASSERT_DOUBLE_EQUAL(sample(text, "flow_execution_duration_seconds_sum{"
        "tenant_id=\"" TENANT_A "\",status=\"cancelled\"}"), 13, 1e-9);
    CU_ASSERT_FALSE(contains(text, "status=\"running\""));
    free(text);
}

static void
test_tenants_beyond_the_cap_count_as_other(void)
{
    int agents = route_index("GET", "/api/v1/agents");
    char *text;

    fresh(2);
    count(TENANT_A, "a", NULL, agents, 200, T0);
    count(TENANT_B, "b", NULL, agents, 200, T0);
    count(TENANT_C, "c", NULL, agents, 200, T0);
    count(TENANT_C, "c", NULL, agents, 201, T0);
    count(TENANT_A, "a", NULL, agents, 200, T0);
    text = render(T0);

    CU_ASSERT_EQUAL(sample(text, "http_requests_per_tenant_total{tenant_id=\""
        TENANT_A "\",method=\"GET\",endpoint=\"/api/v1/agents\","
        "status=\"200\"}"), 2);
    CU_ASSERT_EQUAL(sample(text, "http_requests_per_tenant_total{tenant_id="
        "\"other\",method=\"GET\",endpoint=\"/api/v1/agents\","
        "status=\"200\"}"), 1);
    CU_ASSERT_EQUAL(sample(text, "http_requests_per_tenant_total{tenant_id="
        "\"other\",method=\"GET\",endpoint=\"/api/v1/agents\","
        "status=\"201\"}"), 1);
    CU_ASSERT_FALSE(contains(text, TENANT_C));
    CU_ASSERT_EQUAL(sample(text, "crewd_metrics_tenants_max"), 2);
    free(text);
}

static void
test_a_retired_tenant_disappears_and_frees_its_seat(void)
{
    int agents = route_index("GET", "/api/v1/agents");
    char ids[4][UUID_TEXT_LEN + 1];
    char *text;

    fresh(1);
    count(TENANT_A, "a", NULL, agents, 200, T0);
    CU_ASSERT_EQUAL(metrics_seated_tenants(ids, 4), 1);
    CU_ASSERT_STRING_EQUAL(ids[0], TENANT_A);

    metrics_retire_tenant(TENANT_A);
    text = render(T0);
    CU_ASSERT_FALSE(contains(text, TENANT_A));
    free(text);
    CU_ASSERT_EQUAL(metrics_seated_tenants(ids, 4), 0);

    /* Within the grace the seat is nobody's; after it, the next one's. */
    metrics_housekeeping(T0);
    count(TENANT_B, "b", NULL, agents, 200, T0 + 1);
    CU_ASSERT_EQUAL(metrics_seated_tenants(ids, 4), 0);
    metrics_housekeeping(T0 + 10);
    count(TENANT_B, "b", NULL, agents, 200, T0 + 10);
    CU_ASSERT_EQUAL(metrics_seated_tenants(ids, 4), 1);
    CU_ASSERT_STRING_EQUAL(ids[0], TENANT_B);

    text = render(T0 + 10);
    CU_ASSERT_EQUAL(sample(text, "http_requests_per_tenant_total{tenant_id=\""
        TENANT_B "\",method=\"GET\",endpoint=\"/api/v1/agents\","
        "status=\"200\"}"), 1);
    CU_ASSERT_FALSE(contains(text, TENANT_A));
    free(text);
}

static void
test_a_busier_tenant_takes_the_quietest_seat(void)
{
    int agents = route_index("GET", "/api/v1/agents");
    char ids[4][UUID_TEXT_LEN + 1];
    char *text;

    fresh(2);
    metrics_housekeeping(T0);
    for (int i = 0; i < 5; i++) {
        count(TENANT_A, "a", NULL, agents, 200, T0);
        count(TENANT_B, "b", NULL, agents, 200, T0);
    }
    count(TENANT_B, "b", NULL, agents, 200, T0);
    for (int i = 0; i < 100; i++)
        count(TENANT_C, "c", NULL, agents, 200, T0);

    /* Seats are kept a minute at least. */
    metrics_housekeeping(T0 + 30);
    CU_ASSERT_EQUAL(metrics_seated_tenants(ids, 4), 2);

    metrics_housekeeping(T0 + 70);
    CU_ASSERT_EQUAL(metrics_seated_tenants(ids, 4), 1);
    CU_ASSERT_STRING_EQUAL(ids[0], TENANT_B);
    metrics_housekeeping(T0 + 76);
    CU_ASSERT_EQUAL(metrics_seated_tenants(ids, 4), 2);

    count(TENANT_C, "c", NULL, agents, 200, T0 + 77);
    count(TENANT_A, "a", NULL, agents, 200, T0 + 77);
    text = render(T0 + 77);
    CU_ASSERT_EQUAL(sample(text, "http_requests_per_tenant_total{tenant_id=\""
        TENANT_C "\",method=\"GET\",endpoint=\"/api/v1/agents\","
        "status=\"200\"}"), 1);
    CU_ASSERT_EQUAL(sample(text, "crewd_tenant_info{tenant_id=\"" TENANT_C
        "\",slug=\"c\"}"), 1);
    CU_ASSERT_FALSE(contains(text, TENANT_A));
    /* C's 100 and A's last one stayed under other: it never goes down. */
    CU_ASSERT_EQUAL(sample(text, "http_requests_per_tenant_total{tenant_id="
        "\"other\",method=\"GET\",endpoint=\"/api/v1/agents\","
        "status=\"200\"}"), 101);
    free(text);
}

static void
test_active_users_are_distinct_users_of_the_last_15_minutes(void)
{
    int me = route_index("GET", "/api/v1/users/me");
    char *text;

    fresh(1);
    count(TENANT_A, "a", USER_1, me, 200, T0);
    count(TENANT_A, "a", USER_1, me, 200, T0 + 1);
    count(TENANT_A, "a", USER_2, me, 200, T0 + 2);
    count(TENANT_B, "b", USER_2, me, 200, T0 + 2);
    count(TENANT_A, "a", NULL, me, 401, T0 + 2);
    text = render(T0 + 3);
    CU_ASSERT_EQUAL(sample(text, "active_users_per_tenant{tenant_id=\""
        TENANT_A "\"}"), 2);
    CU_ASSERT_EQUAL(sample(text, "active_users_per_tenant{tenant_id="
        "\"other\"}"), 1);
    free(text);

    count(TENANT_A, "a", USER_1, me, 200, T0 + 10 * 60);
    text = render(T0 + 16 * 60);
    CU_ASSERT_EQUAL(sample(text, "active_users_per_tenant{tenant_id=\""
        TENANT_A "\"}"), 1);
    free(text);
    text = render(T0 + 26 * 60);
    CU_ASSERT_EQUAL(sample(text, "active_users_per_tenant{tenant_id=\""
        TENANT_A "\"}"), 0);
    free(text);
}

/* A child process counts into the memory mapped before the fork. */
static void
test_counts_of_a_child_process_are_seen_after_it_exits(void)
{
    int agents = route_index("GET", "/api/v1/agents");
    char *text;
    pid_t pid;
    int status;

    fresh(10);
    count(TENANT_A, "a", NULL, agents, 200, T0);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        for (int i = 0; i < 41; i++)
            count(TENANT_A, "a", NULL, agents, 200, T0);
        _exit(0);
    }
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    text = render(T0);
    CU_ASSERT_EQUAL(sample(text, "http_requests_per_tenant_total{tenant_id=\""
        TENANT_A "\",method=\"GET\",endpoint=\"/api/v1/agents\","
        "status=\"200\"}"), 42);
    free(text);
}

static void
test_route_table_fits_the_metrics_tables(void)
{
    CU_ASSERT_TRUE(routes_count <= METRICS_ROUTES_MAX);
}

static void
test_access_line_is_json_with_every_field(void)
{
    struct access_line l = {
        .wall = 1764864723.25, .request_id = "ab12", .tenant_slug = "acme",
        .tenant_id = TENANT_A, .user_id = USER_1, .method = "GET",
        .route = "/api/v1/agents/{id}", .status = 200,
        .duration_ms = 3.2174, .bytes = 412,
    };
    struct buf out = BUF_INIT;
    struct json_object *doc, *v;

    observe_format_line(&out, &l);
    CU_ASSERT_EQUAL(out.data[out.len - 1], '\n');
    CU_ASSERT_PTR_NULL(memchr(out.data, '\n', out.len - 1));
    doc = json_tokener_parse(buf_cstr(&out));
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_TRUE(json_object_object_get_ex(doc, "time", &v));
    CU_ASSERT_STRING_EQUAL(json_object_get_string(v),
        "2025-12-04T16:12:03.250Z");
    CU_ASSERT_TRUE(json_object_object_get_ex(doc, "route", &v));
    CU_ASSERT_STRING_EQUAL(json_object_get_string(v), "/api/v1/agents/{id}");
    CU_ASSERT_TRUE(json_object_object_get_ex(doc, "status", &v));
    CU_ASSERT_EQUAL(json_object_get_int(v), 200);
    CU_ASSERT_TRUE(json_object_object_get_ex(doc, "duration_ms", &v));
    CU_ASSERT_DOUBLE_EQUAL(json_object_get_double(v), 3.217, 1e-9);
    CU_ASSERT_TRUE(json_object_object_get_ex(doc, "bytes", &v));
    CU_ASSERT_EQUAL(json_object_get_int(v), 412);
    CU_ASSERT_TRUE(json_object_object_get_ex(doc, "user_id", &v));
    CU_ASSERT_STRING_EQUAL(json_object_get_string(v), USER_1);
    json_object_put(doc);
    buf_free(&out);
}

static void
test_access_line_escapes_and_nulls(void)
{
    struct access_line l = {
        .wall = 0, .request_id = "x\"y\\z\n\x01", .tenant_slug = "",
        .tenant_id = NULL, .user_id = NULL, .method = "G\tET",
        .route = NULL, .status = 404, .duration_ms = 0, .bytes = 0,
    };
    struct buf out = BUF_INIT;
    struct json_object *doc, *v;

    observe_format_line(&out, &l);
    CU_ASSERT_PTR_NULL(memchr(out.data, '\n', out.len - 1));
    CU_ASSERT_PTR_NULL(memchr(out.data, '\x01', out.len));
    doc = json_tokener_parse(buf_cstr(&out));
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_TRUE(json_object_object_get_ex(doc, "request_id", &v));
    CU_ASSERT_STRING_EQUAL(json_object_get_string(v), "x\"y\\z\n\x01");
    CU_ASSERT_TRUE(json_object_object_get_ex(doc, "tenant", &v));
    CU_ASSERT_PTR_NULL(v);
    CU_ASSERT_TRUE(json_object_object_get_ex(doc, "route", &v));
    CU_ASSERT_PTR_NULL(v);
    CU_ASSERT_TRUE(json_object_object_get_ex(doc, "time", &v));
    CU_ASSERT_STRING_EQUAL(json_object_get_string(v),
        "1970-01-01T00:00:00.000Z");
    json_object_put(doc);
    buf_free(&out);
}

static int
clean_up(void)
{
    metrics_shutdown();
    return 0;
}

void
register_metrics_tests(void)
{
    CU_pSuite s = unit_suite("metrics");

    CU_set_suite_cleanupfunc(s, clean_up);
    unit_test(s, "requests_are_counted_by_tenant_route_and_status",
        test_requests_are_counted_by_tenant_route_and_status);
    unit_test(s, "latency_histogram_is_cumulative_and_counts_agree",
        test_latency_histogram_is_cumulative_and_counts_agree);
    unit_test(s, "exposition_lines_are_well_formed",
        test_exposition_lines_are_well_formed);
    unit_test(s, "label_values_are_escaped", test_label_values_are_escaped);
    unit_test(s, "executions_are_observed_per_tenant_and_status",
        test_executions_are_observed_per_tenant_and_status);
    unit_test(s, "tenants_beyond_the_cap_count_as_other",
        test_tenants_beyond_the_cap_count_as_other);
    unit_test(s, "a_retired_tenant_disappears_and_frees_its_seat",
        test_a_retired_tenant_disappears_and_frees_its_seat);
    unit_test(s, "a_busier_tenant_takes_the_quietest_seat",
        test_a_busier_tenant_takes_the_quietest_seat);
    unit_test(s, "active_users_are_distinct_users_of_the_last_15_minutes",
        test_active_users_are_distinct_users_of_the_last_15_minutes);
    unit_test(s, "counts_of_a_child_process_are_seen_after_it_exits",
        test_counts_of_a_child_process_are_seen_after_it_exits);
    unit_test(s, "route_table_fits_the_metrics_tables",
        test_route_table_fits_the_metrics_tables);
    unit_test(s, "access_line_is_json_with_every_field",
        test_access_line_is_json_with_every_field);
    unit_test(s, "access_line_escapes_and_nulls",
        test_access_line_escapes_and_nulls);
}
