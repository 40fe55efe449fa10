#include "config.h"

#include <string.h>

#include "tenant.h"
#include "unit.h"

static bool
slug_ok(const char *slug)
{
    struct crewd_error err;

    error_clear(&err);
    return slug_check(slug, &err) == 0;
}

static void
test_valid_slugs(void)
{
    CU_ASSERT_TRUE(slug_ok("acme"));
    CU_ASSERT_TRUE(slug_ok("a"));
    CU_ASSERT_TRUE(slug_ok("0"));
    CU_ASSERT_TRUE(slug_ok("acme-corp-2"));
    CU_ASSERT_TRUE(slug_ok(
        "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij123"));
}

static void
test_contract_rejections(void)
{
    CU_ASSERT_FALSE(slug_ok("acme\"x"));
    CU_ASSERT_FALSE(slug_ok("acme,public"));
    CU_ASSERT_FALSE(slug_ok("public"));
    CU_ASSERT_FALSE(slug_ok("pg_catalog"));
    CU_ASSERT_FALSE(slug_ok("ACME"));
    CU_ASSERT_FALSE(slug_ok(
        "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234"));
}

static void
test_grammar_edges(void)
{
    CU_ASSERT_FALSE(slug_ok(""));
    CU_ASSERT_FALSE(slug_ok("-acme"));
    CU_ASSERT_FALSE(slug_ok("acme-"));
    CU_ASSERT_FALSE(slug_ok("ac me"));
    CU_ASSERT_FALSE(slug_ok("acme.com"));
    CU_ASSERT_FALSE(slug_ok("ac_me"));
    CU_ASSERT_FALSE(slug_ok("caf\xc3\xa9"));
}

static void
test_reserved_names_and_prefixes(void)
{
    CU_ASSERT_FALSE(slug_ok("www"));
    CU_ASSERT_FALSE(slug_ok("api"));
    CU_ASSERT_FALSE(slug_ok("admin"));
    CU_ASSERT_FALSE(slug_ok("pg-stats"));
    CU_ASSERT_FALSE(slug_ok("tenant-x"));
    CU_ASSERT_FALSE(slug_ok("xn--caf-dma"));
    CU_ASSERT_FALSE(slug_ok("ab--cd"));
    CU_ASSERT_TRUE(slug_ok("abc--d"));
    CU_ASSERT_TRUE(slug_ok("www2"));
}

static void
test_rejection_is_a_field_error_on_slug(void)
{
    struct crewd_error err;

    error_clear(&err);
    CU_ASSERT_EQUAL(slug_check("Bad", &err), -1);
    CU_ASSERT_EQUAL(err.status, 422);
    CU_ASSERT_EQUAL(err.nfields, 1);
    CU_ASSERT_STRING_EQUAL(err.fields[0].field, "/slug");
}

static void
test_schema_names(void)
{
    CU_ASSERT_TRUE(tenant_schema_name_valid("tenant_0123456789abcdef"));
    CU_ASSERT_FALSE(tenant_schema_name_valid("tenant_template"));
    CU_ASSERT_FALSE(tenant_schema_name_valid("tenant_0123456789ABCDEF"));
    CU_ASSERT_FALSE(tenant_schema_name_valid("tenant_0123456789abcde"));
    CU_ASSERT_FALSE(tenant_schema_name_valid("public"));
}

static void
test_email_normalisation(void)
{
    struct crewd_error err;
    char good[] = "Admin@Acme.Test";
    char no_at[] = "admin.acme.test";
    char two_at[] = "a@b@c.de";
    char no_dot[] = "admin@localhost";
    char space[] = "ad min@acme.test";
    char double_dot[] = "a@b..test";
    char leading_dot[] = ".a@b.test";
    char dot_before_at[] = "a.@b.test";

    error_clear(&err);
    CU_ASSERT_EQUAL(email_normalise(good, "/email", &err), 0);
    CU_ASSERT_STRING_EQUAL(good, "admin@acme.test");
    CU_ASSERT_EQUAL(email_normalise(no_at, "/email", &err), -1);
    CU_ASSERT_EQUAL(email_normalise(two_at, "/email", &err), -1);
    CU_ASSERT_EQUAL(email_normalise(no_dot, "/email", &err), -1);
    CU_ASSERT_EQUAL(email_normalise(space, "/email", &err), -1);
    CU_ASSERT_EQUAL(email_normalise(double_dot, "/email", &err), -1);
    CU_ASSERT_EQUAL(email_normalise(leading_dot, "/email", &err), -1);
    CU_ASSERT_EQUAL(email_normalise(dot_before_at, "/email", &err), -1);
    CU_ASSERT_EQUAL(err.status, 422);
}

void
register_slug_tests(void)
{
    CU_pSuite s = unit_suite("slug grammar");

    unit_test(s, "valid slugs pass", test_valid_slugs);
    unit_test(s, "the contract's bad slugs are refused",
        test_contract_rejections);
    unit_test(s, "grammar edges", test_grammar_edges);
    unit_test(s, "reserved names and prefixes",
        test_reserved_names_and_prefixes);
    unit_test(s, "a rejection is a 422 on /slug",
        test_rejection_is_a_field_error_on_slug);
    unit_test(s, "schema names", test_schema_names);
    unit_test(s, "e-mail normalisation", test_email_normalisation);
}
