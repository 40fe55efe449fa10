/*
 * The CUnit suites, one register function per file; unit_main.c runs
 * them all.
 */
#ifndef CREWD_UNIT_H
#define CREWD_UNIT_H

#include <CUnit/CUnit.h>

void register_arena_tests(void);
void register_archive_tests(void);
void register_audit_tests(void);
void register_conf_tests(void);
void register_flowdef_tests(void);
void register_executions_tests(void);
void register_fastcgi_tests(void);
void register_imageref_tests(void);
void register_json_tests(void);
void register_metrics_tests(void);
void register_mongo_tests(void);
void register_openapi_tests(void);
void register_routes_tests(void);
void register_seal_tests(void);
void register_slug_tests(void);
void register_token_tests(void);

/* Adds a suite or aborts the run: a missing suite must not pass. */
CU_pSuite unit_suite(const char *name);
void unit_test(CU_pSuite suite, const char *name, CU_TestFunc fn);

/* text as JSON through the strict parser; a parse failure fails the test. */
struct json_object;
struct json_object *unit_parse_json(const char *text);

#endif
