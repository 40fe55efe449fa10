#include "config.h"

#include <string.h>

#include <json-c/json.h>

#include "buf.h"
#include "handlers.h"
#include "routes.h"
#include "unit.h"

static struct json_object *
document(void)
{
    struct buf out = BUF_INIT;
    struct json_object *doc;

    openapi_write(&out, "example.com");
    doc = json_tokener_parse(buf_cstr(&out));
    buf_free(&out);
    return doc;
}

static const char *
operation_key(const char *method, char *lower)
{
    size_t i;

    for (i = 0; method[i] != '\0'; i++)
        lower[i] = (char)(method[i] | 0x20);
    lower[i] = '\0';
    return lower;
}

static void
test_document_is_openapi_3_1_json(void)
{
    struct json_object *doc = document(), *v;

    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_TRUE(json_object_object_get_ex(doc, "openapi", &v));
    CU_ASSERT_STRING_EQUAL(json_object_get_string(v), "3.1.0");
    CU_ASSERT_TRUE(json_object_object_get_ex(doc, "paths", &v));
    CU_ASSERT_TRUE(json_object_object_get_ex(doc, "components", &v));
    json_object_put(doc);
}

static void
test_every_route_is_in_the_document(void)
{
    struct json_object *doc = document(), *paths, *item, *op;
    char lower[16];

    CU_ASSERT_FATAL(json_object_object_get_ex(doc, "paths", &paths));
    for (size_t i = 0; i < routes_count; i++) {
        const struct route *r = &routes[i];

        /* /metrics: the loopback listener's, not the public API's. */
        if (r->host == HOST_METRICS) {
            CU_ASSERT_FALSE(json_object_object_get_ex(paths, r->pattern,
                &item));
            continue;
        }
        CU_ASSERT_TRUE(json_object_object_get_ex(paths, r->pattern, &item));
        CU_ASSERT_TRUE(json_object_object_get_ex(item,
            operation_key(r->method, lower), &op));
    }
    json_object_put(doc);
}

static void
test_nothing_but_the_routes_is_in_the_document(void)
{
    struct json_object *doc = document(), *paths;
    char lower[16];

    CU_ASSERT_FATAL(json_object_object_get_ex(doc, "paths", &paths));
    json_object_object_foreach(paths, pattern, item) {
        json_object_object_foreach(item, key, value) {
            bool found = strcmp(key, "servers") == 0;

            (void)value;
            for (size_t i = 0; i < routes_count && !found; i++)
                found = strcmp(routes[i].pattern, pattern) == 0 &&
                    strcmp(operation_key(routes[i].method, lower), key) == 0;
            CU_ASSERT_TRUE(found);
        }
    }
    json_object_put(doc);
}

/* Every "$ref" names something the document defines. */
static void
check_refs(struct json_object *doc, struct json_object *node)
{
    if (json_object_is_type(node, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(node); i++)
            check_refs(doc, json_object_array_get_idx(node, i));
        return;
    }
    if (!json_object_is_type(node, json_type_object))
        return;

    json_object_object_foreach(node, key, value) {
        if (strcmp(key, "$ref") == 0) {
            const char *target = json_object_get_string(value);
            char kind[32], name[64];
            struct json_object *components, *section, *found;

            CU_ASSERT_EQUAL_FATAL(sscanf(target,
                "#/components/%31[^/]/%63s", kind, name), 2);
            CU_ASSERT_TRUE(json_object_object_get_ex(doc, "components",
                &components) &&
                json_object_object_get_ex(components, kind, &section) &&
                json_object_object_get_ex(section, name, &found));
        } else {
            check_refs(doc, value);
        }
    }
}

static void
test_every_reference_resolves(void)
{
    struct json_object *doc = document();

    check_refs(doc, doc);
    json_object_put(doc);
}

static void
test_operations_list_their_errors(void)
{
    struct json_object *doc = document(), *paths, *item, *op, *responses,
        *v;

    CU_ASSERT_FATAL(json_object_object_get_ex(doc, "paths", &paths));
    CU_ASSERT_FATAL(json_object_object_get_ex(paths, "/api/v1/agents",
        &item));
    CU_ASSERT_FATAL(json_object_object_get_ex(item, "post", &op));
    CU_ASSERT_FATAL(json_object_object_get_ex(op, "responses", &responses));
    for (const char *const *code = (const char *const[]) { "201", "400",
             "401", "403", "413", "415", "422", "503", NULL };
         *code != NULL; code++)
        CU_ASSERT_TRUE(json_object_object_get_ex(responses, *code, &v));
    json_object_put(doc);
}

static void
test_secrets_are_write_only(void)
{
    struct json_object *doc = document(), *components, *schemas, *user,
        *props, *v;

    CU_ASSERT_FATAL(json_object_object_get_ex(doc, "components",
        &components));
    CU_ASSERT_FATAL(json_object_object_get_ex(components, "schemas",
        &schemas));
    CU_ASSERT_FATAL(json_object_object_get_ex(schemas, "User", &user));
    CU_ASSERT_FATAL(json_object_object_get_ex(user, "properties", &props));
    CU_ASSERT_FALSE(json_object_object_get_ex(props, "password", &v));
    CU_ASSERT_FATAL(json_object_object_get_ex(schemas, "LlmProvider",
        &user));
    CU_ASSERT_FATAL(json_object_object_get_ex(user, "properties", &props));
    CU_ASSERT_FALSE(json_object_object_get_ex(props, "credentials", &v));
    CU_ASSERT_TRUE(json_object_object_get_ex(props, "has_credentials", &v));
    json_object_put(doc);
}

void
register_openapi_tests(void)
{
    CU_pSuite s = unit_suite("openapi");

    unit_test(s, "the document is OpenAPI 3.1 JSON",
        test_document_is_openapi_3_1_json);
    unit_test(s, "every route is in the document",
        test_every_route_is_in_the_document);
    unit_test(s, "nothing but the routes is in the document",
        test_nothing_but_the_routes_is_in_the_document);
    unit_test(s, "every reference resolves", test_every_reference_resolves);
    unit_test(s, "operations list their errors",
        test_operations_list_their_errors);
    unit_test(s, "secrets are write-only", test_secrets_are_write_only);
}
