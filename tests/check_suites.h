/* One constructor per unit suite; each lives in tests/check_<name>.c. */
#ifndef CHECK_SUITES_H
#define CHECK_SUITES_H
#include <check.h>
Suite *suite_codec(void);
Suite *suite_place(void);
Suite *suite_table(void);
Suite *suite_optim(void);
Suite *suite_msg(void);
Suite *suite_data(void);
Suite *suite_parse(void);
Suite *suite_model(void);
Suite *suite_metrics(void);
Suite *suite_vcodec(void);
Suite *suite_sparsify(void);
Suite *suite_file(void);
Suite *suite_dedup(void);
Suite *suite_log(void);
Suite *suite_retry(void);
Suite *suite_idx(void);
Suite *suite_shard(void);
Suite *suite_clock(void);
Suite *suite_sort(void);
Suite *suite_args(void);
Suite *suite_out(void);
Suite *suite_auto(void);
Suite *suite_split(void);
Suite *suite_keysig(void);
Suite *suite_env(void);
Suite *suite_prom(void); /* metrics */
Suite *suite_done(void); /* zps-server --exit-when-done */
Suite *suite_sketch(void); /* zps_sketch (admission) */
Suite *suite_ranges(void); /* replication: zps_ranges */
Suite *suite_coord(void);  /* replication: ps_coord */
Suite *suite_pool(void);   /* zps_pool, the shard over threads (--threads) */
#endif
