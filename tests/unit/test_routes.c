#include "config.h"

#include <string.h>

#include "routes.h"
#include "unit.h"

static enum route_result
match(const char *method, const char *path, enum route_host host,
    const struct route **found)
{
    char ids[REQUEST_PATH_PARAMS][UUID_TEXT_LEN + 1];
    char allow[64];

    return route_match(method, path, host, found, ids, allow, sizeof(allow));
}

static void
test_every_route_is_reachable_by_its_own_pattern(void)
{
    for (size_t i = 0; i < routes_count; i++) {
        const struct route *r = &routes[i];
        const struct route *found;
        char path[256];
        char *p;

        /* Replace {id} with a UUID to make a concrete path. */
        strcpy(path, r->pattern);
        p = strstr(path, "{id}");
        if (p != NULL) {
            char rest[256];

            strcpy(rest, p + 4);
            strcpy(p, "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0");
            strcat(path, rest);
        }
        CU_ASSERT_EQUAL(match(r->method, path,
            r->host == HOST_ANY ? HOST_TENANT : r->host, &found),
            ROUTE_FOUND);
        CU_ASSERT_PTR_EQUAL(found, r);
    }
}

/* /metrics exists on nginx's metrics listener and nowhere else. */
static void
test_metrics_route_is_only_on_the_metrics_listener(void)
{
    const struct route *found;

    CU_ASSERT_EQUAL(match("GET", "/metrics", HOST_METRICS, &found),
        ROUTE_FOUND);
    CU_ASSERT_EQUAL(match("GET", "/metrics", HOST_APEX, &found),
        ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(match("GET", "/metrics", HOST_TENANT, &found),
        ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(match("GET", "/healthz", HOST_METRICS, &found),
        ROUTE_WRONG_HOST);
}

static void
test_routes_are_unique(void)
{
    for (size_t i = 0; i < routes_count; i++)
        for (size_t j = i + 1; j < routes_count; j++)
            CU_ASSERT_FALSE(strcmp(routes[i].method, routes[j].method) == 0
                && strcmp(routes[i].pattern, routes[j].pattern) == 0);
}

static void
test_ids_are_canonicalised(void)
{
    char ids[REQUEST_PATH_PARAMS][UUID_TEXT_LEN + 1];
    char allow[64];
    const struct route *found;

    CU_ASSERT_EQUAL(route_match("GET",
        "/api/v1/agents/0F1E2D3C-4B5A-4968-8776-A5B4C3D2E1F0", HOST_TENANT,
        &found, ids, allow, sizeof(allow)), ROUTE_FOUND);
    CU_ASSERT_STRING_EQUAL(ids[0], "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0");
}

static void
test_malformed_ids_do_not_match(void)
{
    const struct route *found;

    CU_ASSERT_EQUAL(match("GET", "/api/v1/agents/42", HOST_TENANT, &found),
        ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(match("GET",
        "/api/v1/agents/{0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0}",
        HOST_TENANT, &found), ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(match("GET",
        "/api/v1/agents/0f1e2d3c4b5a49688776a5b4c3d2e1f0", HOST_TENANT,
        &found), ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(match("GET",
        "/api/v1/agents/0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1fg", HOST_TENANT,
        &found), ROUTE_NOT_FOUND);
}

static void
test_trailing_slash_and_prefixes_do_not_match(void)
{
    const struct route *found;

    CU_ASSERT_EQUAL(match("GET", "/api/v1/agents/", HOST_TENANT, &found),
        ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(match("GET", "/api/v1/agent", HOST_TENANT, &found),
        ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(match("GET", "/api/v1/agentsx", HOST_TENANT, &found),
        ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(match("GET", "", HOST_TENANT, &found),
        ROUTE_NOT_FOUND);
}

static void
test_wrong_method_lists_the_allowed_ones(void)
{
    char ids[REQUEST_PATH_PARAMS][UUID_TEXT_LEN + 1];
    char allow[64];
    const struct route *found;

    CU_ASSERT_EQUAL(route_match("PUT", "/api/v1/agents", HOST_TENANT,
        &found, ids, allow, sizeof(allow)), ROUTE_BAD_METHOD);
    CU_ASSERT_STRING_EQUAL(allow, "GET, POST");
}

static void
test_tenant_routes_are_not_served_on_the_apex(void)
{
    const struct route *found;

    CU_ASSERT_EQUAL(match("GET", "/api/v1/agents", HOST_APEX, &found),
        ROUTE_WRONG_HOST);
    CU_ASSERT_EQUAL(match("POST", "/api/v1/tenants", HOST_TENANT, &found),
        ROUTE_WRONG_HOST);
    CU_ASSERT_EQUAL(match("GET", "/healthz", HOST_TENANT, &found),
        ROUTE_WRONG_HOST);
    CU_ASSERT_EQUAL(match("GET", "/api/v1/openapi.json", HOST_TENANT,
        &found), ROUTE_FOUND);
}

static void
test_every_tenant_route_but_login_needs_a_role(void)
{
    for (size_t i = 0; i < routes_count; i++) {
        const struct route *r = &routes[i];

        if (r->host != HOST_TENANT)
            continue;
        if (strcmp(r->pattern, "/api/v1/auth/login") == 0) {
            CU_ASSERT_EQUAL(r->role, ROLE_NONE);
        } else {
            CU_ASSERT_NOT_EQUAL(r->role, ROLE_NONE);
        }
        /* Writes need more than read-only access. */
        if (strcmp(r->method, "GET") != 0 &&
            strcmp(r->pattern, "/api/v1/auth/login") != 0) {
            CU_ASSERT(r->role >= ROLE_MEMBER);
        }
    }
}

void
register_routes_tests(void)
{
    CU_pSuite s = unit_suite("route table");

    unit_test(s, "every route is reachable by its own pattern",
        test_every_route_is_reachable_by_its_own_pattern);
    unit_test(s, "metrics route is only on the metrics listener",
        test_metrics_route_is_only_on_the_metrics_listener);
    unit_test(s, "routes are unique", test_routes_are_unique);
    unit_test(s, "ids are canonicalised", test_ids_are_canonicalised);
    unit_test(s, "malformed ids do not match",
        test_malformed_ids_do_not_match);
    unit_test(s, "trailing slashes and prefixes do not match",
        test_trailing_slash_and_prefixes_do_not_match);
    unit_test(s, "a wrong method lists the allowed ones",
        test_wrong_method_lists_the_allowed_ones);
    unit_test(s, "tenant routes are not served on the apex",
        test_tenant_routes_are_not_served_on_the_apex);
    unit_test(s, "every tenant route but login needs a role",
        test_every_tenant_route_but_login_needs_a_role);
}
