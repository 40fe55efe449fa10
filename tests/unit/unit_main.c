#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <sodium.h>

#include "json.h"
#include "log.h"
#include "unit.h"

CU_pSuite
unit_suite(const char *name)
{
    CU_pSuite suite = CU_add_suite(name, NULL, NULL);

    if (suite == NULL) {
        fprintf(stderr, "cannot add suite %s: %s\n", name, CU_get_error_msg());
        exit(1);
    }
    return suite;
}

void
unit_test(CU_pSuite suite, const char *name, CU_TestFunc fn)
{
    if (CU_add_test(suite, name, fn) == NULL) {
        fprintf(stderr, "cannot add test %s: %s\n", name, CU_get_error_msg());
        exit(1);
    }
}

struct json_object *
unit_parse_json(const char *text)
{
    struct json_object *value = NULL;
    struct crewd_error err;

    error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(json_parse(text, strlen(text), &value, &err), 0);
    return value;
}

int
main(void)
{
    unsigned run, failed;

    if (sodium_init() < 0 || CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "cannot initialise the test run\n");
        return 1;
    }
    log_init("unit_tests", LOG_ERROR);

    register_arena_tests();
    register_archive_tests();
    register_audit_tests();
    register_conf_tests();
    register_flowdef_tests();
    register_executions_tests();
    register_fastcgi_tests();
    register_imageref_tests();
    register_json_tests();
    register_metrics_tests();
    register_mongo_tests();
    register_openapi_tests();
    register_routes_tests();
    register_seal_tests();
    register_slug_tests();
    register_token_tests();

    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    run = CU_get_number_of_tests_run();
    failed = CU_get_number_of_tests_failed();
    printf("\nunit: %u passed, %u failed\n", run - failed, failed);
    CU_cleanup_registry();
    return failed == 0 && run > 0 ? 0 : 1;
}
