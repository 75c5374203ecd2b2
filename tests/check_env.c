/* check_env: ZPS_* environment variables as options (common/zps_env).
 *
 * The variables the command line does not give come first in the new argv
 * (so zps_getopt sees them), the command line's arguments after; a flag on
 * the command line, as --name or --name=value, makes its variable unused;
 * flags take 1/true/yes and 0/false/no/empty only; variables that name no
 * option and the scripts' own (ZPS_BIN, ZPS_TEST_*) never become options;
 * and the whole zps_conf option table parses what zps_env builds. */
#include <check.h>
#include <string.h>

#include "check_suites.h"
#include "zps_args.h"
#include "zps_conf.h"
#include "zps_env.h"

static const struct option s_opts[] = {{"rank", required_argument, 0, 1},
                                       {"num-workers", required_argument, 0, 2},
                                       {"train", required_argument, 0, 3},
                                       {"no-cache", no_argument, 0, 4},
                                       {"quiet", no_argument, 0, 5},
                                       {"help", no_argument, 0, 6},
                                       {0, 0, 0, 0}};

START_TEST(test_taken_and_order)
{
    char *envp[] = {"PATH=/bin", "ZPS_RANK=3", "ZPS_NUM_WORKERS=010", "ZPS_NO_CACHE=yes",
                    "ZPS_QUIET=0", "ZPS_BIN=/x", "ZPS_TEST_VARIANT=asan", NULL};
    char *argv[] = {"prog", "--train", "a.txt", NULL};
    char err[256] = "";
    zps_env_t *e = zps_env_new("prog", s_opts, envp, 3, argv, err, sizeof err);
    ck_assert_msg(e != NULL, "%s", err);
    ck_assert_uint_eq(zps_env_taken(e), 3);
    char **v = zps_env_argv(e);
    ck_assert_int_eq(zps_env_argc(e), 8);
    const char *want[] = {"prog", "--rank", "3", "--num-workers", "010", "--no-cache", "--train", "a.txt"};
    for (int i = 0; i < 8; i++)
        ck_assert_str_eq(v[i], want[i]);
    ck_assert_ptr_null(v[8]);
    zps_env_destroy(&e);
    ck_assert_ptr_null(e);
}
END_TEST

START_TEST(test_cmdline_wins)
{
    char *envp[] = {"ZPS_RANK=3", "ZPS_TRAIN=env.txt", "ZPS_NUM_WORKERS=4", NULL};
    char *argv[] = {"prog", "--rank=1", "--train", "a", "--train", "b", "--num-workersX", NULL};
    char err[256];
    zps_env_t *e = zps_env_new("prog", s_opts, envp, 7, argv, err, sizeof err);
    ck_assert_ptr_nonnull(e);
    /* --rank=1 and --train on the command line: only ZPS_NUM_WORKERS is taken
     * (--num-workersX is another word, not --num-workers) */
    ck_assert_uint_eq(zps_env_taken(e), 1);
    char **v = zps_env_argv(e);
    ck_assert_str_eq(v[1], "--num-workers");
    ck_assert_str_eq(v[2], "4");
    ck_assert_str_eq(v[3], "--rank=1");
    ck_assert_int_eq(zps_env_argc(e), 9);
    zps_env_destroy(&e);
}
END_TEST

START_TEST(test_refusals)
{
    char err[256] = "";
    char *argv[] = {"prog", NULL};
    char *bad[] = {"ZPS_NO_CACHE=maybe", NULL};
    ck_assert_ptr_null(zps_env_new("prog", s_opts, bad, 1, argv, err, sizeof err));
    ck_assert_msg(strstr(err, "ZPS_NO_CACHE") && strstr(err, "maybe"), "%s", err);
    /* unknown, lower case, --help: ignored, never options */
    char *ign[] = {"ZPS_EPOCH=3", "ZPS_rank=2", "ZPS_HELP=1", "ZPS_=1", "ZPS_X", "ZPS_RANK-=1", NULL};
    zps_env_t *e = zps_env_new("prog", s_opts, ign, 1, argv, err, sizeof err);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(zps_env_taken(e), 0);
    ck_assert_int_eq(zps_env_argc(e), 1);
    zps_env_destroy(&e);
    zps_env_destroy(&e); /* twice is harmless */
    ck_assert(zps_env_reserved("BIN"));
    ck_assert(zps_env_reserved("TEST_VARIANT"));
    ck_assert(!zps_env_reserved("RANK"));
}
END_TEST

/* the real option table: what zps_env builds is what zps_conf parses */
START_TEST(test_conf_table)
{
    char *envp[] = {"ZPS_MODEL=fm", "ZPS_DIM=4", "ZPS_NUM_WORKERS=3", "ZPS_RANK=2",
                    "ZPS_SERVERS=tcp://a:1,tcp://b:2", "ZPS_TRAIN=/tmp/x.txt", "ZPS_EPOCHS=auto",
                    "ZPS_NO_CACHE=true", NULL};
    char *argv[] = {"zps-worker", "--dim", "6", NULL};
    char err[512];
    zps_env_t *e = zps_env_new("zps-worker", zps_conf_options(), envp, 3, argv, err, sizeof err);
    ck_assert_msg(e != NULL, "%s", err);
    zps_conf_t c;
    zps_conf_defaults(&c);
    int o, li;
    optind = 0;
    const struct option *opts = zps_conf_options();
    while ((o = zps_getopt(zps_env_argc(e), zps_env_argv(e), NULL, opts, &li, err, sizeof err)) != -1) {
        ck_assert_int_eq(o, ZPS_CONF_OPT);
        ck_assert_msg(zps_conf_set(&c, opts[li].name, optarg, err, sizeof err) == 1, "%s", err);
    }
    ck_assert_int_eq(c.model, ZPS_MODEL_FM);
    ck_assert_uint_eq(c.fm_dim, 6); /* the command line's */
    ck_assert_uint_eq(c.num_workers, 3);
    ck_assert_uint_eq(c.rank, 2);
    ck_assert_str_eq(c.servers, "tcp://a:1,tcp://b:2");
    ck_assert_uint_eq(c.ntrain, 1);
    ck_assert_str_eq(c.train[0], "/tmp/x.txt");
    ck_assert_int_eq(c.no_cache, 1);
    zps_env_destroy(&e);
}
END_TEST

Suite *suite_env(void)
{
    Suite *s = suite_create("env");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_taken_and_order);
    tcase_add_test(tc, test_cmdline_wins);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_conf_table);
    suite_add_tcase(s, tc);
    return s;
}
