/* zps-check: runs every Check unit suite.  One table lists them (as
 * czmq_selftest.c does); CK_RUN_SUITE=name runs one, CK_FORK=no helps gdb. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "check_suites.h"

int main(void)
{
    /* Check's per-test timeouts are wall-clock limits: they catch a hung
     * case, not a slow one.  Under ASan on a loaded two-core machine cases
     * run many times slower than in release, so the limits are stretched
     * tenfold unless the caller chose a multiplier (they must be set
     * before the suites are built: tcase_create reads them). */
    setenv("CK_TIMEOUT_MULTIPLIER", "10", 0);
    Suite *(*const suites[])(void) = {
        suite_codec, suite_place, suite_table, suite_optim, suite_msg,
        suite_data,  suite_parse, suite_model, suite_metrics, suite_vcodec, suite_sparsify,
        suite_file,
        suite_dedup, suite_log,
        suite_retry, suite_idx, suite_shard, suite_clock,
        suite_sort, suite_args, suite_out,
        suite_auto,
        suite_split, suite_keysig, suite_env,
        suite_prom, /* metrics */
        suite_done,
        suite_sketch, /* admission */
        suite_ranges, suite_coord, /* replication */
        suite_pool, /* --threads */
    };
    SRunner *sr = srunner_create(NULL);
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
        srunner_add_suite(sr, suites[i]());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
