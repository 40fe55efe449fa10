#include "config.h"

#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "unit.h"

static int cleanups_run;

static void
count_cleanup(void *object)
{
    cleanups_run += *(int *)object;
}

static void
test_allocations_are_aligned_and_distinct(void)
{
    struct arena *a = arena_new(1024);
    char *p = arena_alloc(a, 3);
    char *q = arena_alloc(a, 5);

    CU_ASSERT_EQUAL((uintptr_t)p % 16, 0);
    CU_ASSERT_EQUAL((uintptr_t)q % 16, 0);
    CU_ASSERT_PTR_NOT_EQUAL(p, q);
    arena_free(a);
}

static void
test_large_allocation_beyond_first_block(void)
{
    struct arena *a = arena_new(1024);
    char *big = arena_alloc(a, 100000);

    memset(big, 'x', 100000);
    CU_ASSERT_EQUAL(big[99999], 'x');
    CU_ASSERT(arena_used(a) >= 100000);
    arena_free(a);
}

static void
test_reset_runs_cleanups_in_reverse_and_once(void)
{
    struct arena *a = arena_new(1024);
    static int one = 1, ten = 10;

    cleanups_run = 0;
    arena_defer(a, count_cleanup, &one);
    arena_defer(a, count_cleanup, &ten);
    arena_defer(a, count_cleanup, NULL);
    arena_reset(a);
    CU_ASSERT_EQUAL(cleanups_run, 11);
    CU_ASSERT_EQUAL(arena_used(a), 0);
    arena_reset(a);
    CU_ASSERT_EQUAL(cleanups_run, 11);
    arena_free(a);
}

static void
test_printf_and_strndup(void)
{
    struct arena *a = arena_new(1024);

    CU_ASSERT_STRING_EQUAL(arena_printf(a, "%s-%d", "x", 42), "x-42");
    CU_ASSERT_STRING_EQUAL(arena_strndup(a, "abcdef", 3), "abc");
    arena_free(a);
}

static void
test_buf_grows_and_stays_terminated(void)
{
    struct buf b = BUF_INIT;

    CU_ASSERT_STRING_EQUAL(buf_cstr(&b), "");
    for (int i = 0; i < 1000; i++)
        buf_printf(&b, "%d,", i % 10);
    CU_ASSERT_EQUAL(b.len, 2000);
    CU_ASSERT_EQUAL(b.data[b.len], '\0');
    buf_reset(&b);
    CU_ASSERT_STRING_EQUAL(buf_cstr(&b), "");
    buf_free(&b);
}

void
register_arena_tests(void)
{
    CU_pSuite s = unit_suite("arena");

    unit_test(s, "allocations are aligned and distinct",
        test_allocations_are_aligned_and_distinct);
    unit_test(s, "a large allocation gets its own block",
        test_large_allocation_beyond_first_block);
    unit_test(s, "reset runs cleanups once", 
        test_reset_runs_cleanups_in_reverse_and_once);
    unit_test(s, "printf and strndup", test_printf_and_strndup);
    unit_test(s, "buf grows and stays terminated",
        test_buf_grows_and_stays_terminated);
}
