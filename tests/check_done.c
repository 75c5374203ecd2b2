/* Unit tests of ps_done: the finished-worker set behind zps-server
 * --exit-when-done (idempotent per rank, out-of-range ranks ignored, all
 * done only when every worker is). */
#include <check.h>
#include <stdint.h>

#include "check_suites.h"
#include "ps_done.h"

START_TEST(done_counts_each_worker_once)
{
    ps_done_t *d = ps_done_new(3);
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(ps_done_workers(d), 3);
    ck_assert_uint_eq(ps_done_count(d), 0);
    ck_assert(!ps_done_all(d));
    ck_assert_int_eq(ps_done_mark(d, 1), 1);
    ck_assert_int_eq(ps_done_mark(d, 1), 0); /* a second done from the same rank */
    ck_assert_uint_eq(ps_done_count(d), 1);
    ck_assert(ps_done_is(d, 1));
    ck_assert(!ps_done_is(d, 0));
    ck_assert_int_eq(ps_done_mark(d, 3), 0); /* not a worker of the job */
    ck_assert_int_eq(ps_done_mark(d, UINT32_MAX), 0);
    ck_assert(!ps_done_is(d, 3));
    ck_assert_uint_eq(ps_done_count(d), 1);
    ck_assert_int_eq(ps_done_mark(d, 0), 1);
    ck_assert(!ps_done_all(d));
    ck_assert_int_eq(ps_done_mark(d, 2), 1);
    ck_assert(ps_done_all(d));
    ck_assert_uint_eq(ps_done_count(d), 3);
    ps_done_destroy(&d);
    ck_assert_ptr_null(d);
    ps_done_destroy(&d); /* twice is harmless */
    ck_assert_ptr_null(ps_done_new(0));
}
END_TEST

Suite *suite_done(void)
{
    Suite *s = suite_create("done");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, done_counts_each_worker_once);
    suite_add_tcase(s, tc);
    return s;
}
