/* Unit tests of ps_clock: the minimum over live workers, when a pull may
 * be answered (ssp:N and bsp), done workers, drops after the heartbeat
 * timeout and rejoins fast-forwarded to the minimum. */
#include <check.h>
#include <stdint.h>

#include "check_suites.h"
#include "ps_clock.h"

START_TEST(bsp_min_and_ready)
{
    ps_clock_t *c = ps_clock_new(3, 0, 1000);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(ps_clock_workers(c), 3);
    ck_assert_uint_eq(ps_clock_min(c), 0);
    ck_assert(ps_clock_ready(c, 0));
    ck_assert(ps_clock_ready(c, 1));  /* clock 1 needs clock 0 finished */
    ck_assert(!ps_clock_ready(c, 2));
    ps_clock_finish(c, 0, 1);
    ps_clock_finish(c, 1, 1);
    ck_assert_uint_eq(ps_clock_min(c), 0);
    ck_assert(!ps_clock_ready(c, 2));
    ps_clock_finish(c, 2, 1);
    ck_assert_uint_eq(ps_clock_min(c), 1);
    ck_assert(ps_clock_ready(c, 2));
    ck_assert(!ps_clock_ready(c, 3));
    /* a clock never moves back */
    ps_clock_finish(c, 2, 0);
    ck_assert_uint_eq(ps_clock_finished(c, 2), 1);
    ps_clock_destroy(&c);
    ck_assert_ptr_null(c);
    ck_assert_ptr_null(ps_clock_new(0, 0, 0));
}
END_TEST

START_TEST(ssp_bound)
{
    ps_clock_t *c = ps_clock_new(2, 3, 0);
    ps_clock_finish(c, 0, 10);
    ck_assert_uint_eq(ps_clock_min(c), 0);
    ck_assert(ps_clock_ready(c, 4));   /* 4 <= 0 + 3 + 1 */
    ck_assert(!ps_clock_ready(c, 5));
    ps_clock_finish(c, 1, 2);
    ck_assert(ps_clock_ready(c, 6));
    ck_assert(!ps_clock_ready(c, 7));
    ps_clock_destroy(&c);
}
END_TEST

START_TEST(done_workers)
{
    ps_clock_t *c = ps_clock_new(2, 0, 0);
    ps_clock_finish(c, 0, 5);
    ps_clock_done(c, 1); /* the slow one is done: it holds no one back */
    ck_assert_uint_eq(ps_clock_min(c), 5);
    ck_assert(!ps_clock_live(c, 1));
    ps_clock_done(c, 0);
    ck_assert_uint_eq(ps_clock_min(c), UINT64_MAX);
    ck_assert(ps_clock_ready(c, 1000)); /* no live worker: nothing to wait for */
    /* a done worker that speaks again rejoins at the minimum of the others
     * (none live: it keeps its own clock) */
    ck_assert_int_eq(ps_clock_heard(c, 1, 50), 1);
    ck_assert_uint_eq(ps_clock_finished(c, 1), 0);
    ck_assert_uint_eq(ps_clock_min(c), 0);
    ps_clock_destroy(&c);
}
END_TEST

START_TEST(drop_and_rejoin)
{
    ps_clock_t *c = ps_clock_new(4, 0, 0);
    ps_clock_heard(c, 0, 900);
    ps_clock_heard(c, 1, 900);
    ps_clock_finish(c, 0, 7);
    ps_clock_finish(c, 1, 8);
    /* workers 2 and 3 silent since 0: at 1001 with a 1000 ms timeout both
     * go, in one pass */
    uint32_t dropped[4], n = 0;
    for (uint32_t w = 0; ps_clock_expire_next(c, 1001, 1000, &w); w++)
        dropped[n++] = w;
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(dropped[0], 2);
    ck_assert_uint_eq(dropped[1], 3);
    ck_assert_uint_eq(ps_clock_min(c), 7);
    ck_assert(ps_clock_ready(c, 8));
    /* not silent long enough: nobody else */
    uint32_t w = 0;
    ck_assert_int_eq(ps_clock_expire_next(c, 1800, 1000, &w), 0);
    /* heard again: worker 2 rejoins fast-forwarded to the minimum (7) */
    ck_assert_int_eq(ps_clock_heard(c, 2, 1900), 1);
    ck_assert_uint_eq(ps_clock_finished(c, 2), 7);
    ck_assert_int_eq(ps_clock_heard(c, 2, 1950), 0); /* already live */
    ck_assert_int_eq(ps_clock_last_seen(c, 2), 1950);
    ck_assert_uint_eq(ps_clock_min(c), 7);
    ck_assert(!ps_clock_live(c, 3));
    ps_clock_destroy(&c);
}
END_TEST

Suite *suite_clock(void)
{
    Suite *s = suite_create("clock");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, bsp_min_and_ready);
    tcase_add_test(tc, ssp_bound);
    tcase_add_test(tc, done_workers);
    tcase_add_test(tc, drop_and_rejoin);
    suite_add_tcase(s, tc);
    return s;
}
