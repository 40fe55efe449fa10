#include "config.h"

#include "executions.h"
#include "unit.h"

static void
test_names_round_trip(void)
{
    for (int s = 0; s < EXECUTION_STATUS_COUNT; s++) {
        enum execution_status parsed;

        CU_ASSERT_PTR_NOT_NULL_FATAL(execution_status_names[s]);
        CU_ASSERT_TRUE(execution_status_parse(execution_status_names[s],
            &parsed));
        CU_ASSERT_EQUAL((int)parsed, s);
    }
    CU_ASSERT_PTR_NULL(execution_status_names[EXECUTION_STATUS_COUNT]);
}

static void
test_unknown_names_do_not_parse(void)
{
    enum execution_status parsed;

    CU_ASSERT_FALSE(execution_status_parse("", &parsed));
    CU_ASSERT_FALSE(execution_status_parse("Pending", &parsed));
    CU_ASSERT_FALSE(execution_status_parse("canceled", &parsed));
    CU_ASSERT_FALSE(execution_status_parse("done", &parsed));
}

static void
test_the_allowed_moves(void)
{
    CU_ASSERT_TRUE(execution_transition_allowed(EXECUTION_PENDING,
        EXECUTION_RUNNING));
    CU_ASSERT_TRUE(execution_transition_allowed(EXECUTION_PENDING,
        EXECUTION_CANCELLED));
    CU_ASSERT_TRUE(execution_transition_allowed(EXECUTION_RUNNING,
        EXECUTION_SUCCEEDED));
    CU_ASSERT_TRUE(execution_transition_allowed(EXECUTION_RUNNING,
        EXECUTION_FAILED));
    CU_ASSERT_TRUE(execution_transition_allowed(EXECUTION_RUNNING,
        EXECUTION_CANCELLED));
}

static void
test_every_other_move_is_refused(void)
{
    int allowed = 0;

    for (int from = 0; from < EXECUTION_STATUS_COUNT; from++)
        for (int to = 0; to < EXECUTION_STATUS_COUNT; to++)
            if (execution_transition_allowed((enum execution_status)from,
                    (enum execution_status)to))
                allowed++;
    CU_ASSERT_EQUAL(allowed, 5);

    /* Never back, never in place, nothing out of a final status. */
    CU_ASSERT_FALSE(execution_transition_allowed(EXECUTION_RUNNING,
        EXECUTION_PENDING));
    CU_ASSERT_FALSE(execution_transition_allowed(EXECUTION_PENDING,
        EXECUTION_PENDING));
    CU_ASSERT_FALSE(execution_transition_allowed(EXECUTION_PENDING,
        EXECUTION_SUCCEEDED));
    CU_ASSERT_FALSE(execution_transition_allowed(EXECUTION_SUCCEEDED,
        EXECUTION_CANCELLED));
    CU_ASSERT_FALSE(execution_transition_allowed(EXECUTION_CANCELLED,
        EXECUTION_RUNNING));
    CU_ASSERT_FALSE(execution_transition_allowed(EXECUTION_FAILED,
        EXECUTION_RUNNING));
    CU_ASSERT_FALSE(execution_transition_allowed(EXECUTION_STATUS_COUNT,
        EXECUTION_RUNNING));
}

static void
test_final_statuses(void)
{
    CU_ASSERT_FALSE(execution_status_final(EXECUTION_PENDING));
    CU_ASSERT_FALSE(execution_status_final(EXECUTION_RUNNING));
    CU_ASSERT_TRUE(execution_status_final(EXECUTION_SUCCEEDED));
    CU_ASSERT_TRUE(execution_status_final(EXECUTION_FAILED));
    CU_ASSERT_TRUE(execution_status_final(EXECUTION_CANCELLED));
}

void
register_executions_tests(void)
{
    CU_pSuite s = unit_suite("execution lifecycle");

    unit_test(s, "status names round trip", test_names_round_trip);
    unit_test(s, "unknown names do not parse",
        test_unknown_names_do_not_parse);
    unit_test(s, "the five allowed moves", test_the_allowed_moves);
    unit_test(s, "every other move is refused",
        test_every_other_move_is_refused);
    unit_test(s, "succeeded, failed and cancelled are final",
        test_final_statuses);
}
