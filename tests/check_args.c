/* check_args: base-10 numbers and the shared option parsing.
 *
 * zps_args' parsers: leading zeros are decimal (010 is 10, 08 is 8), hex,
 * signs on unsigned values, spaces, trailing junk and overflow are refused
 * and leave the output alone; reals are decimal only (no hex floats, inf,
 * nan) and finite.  zps_conf_set: the same rules through the training
 * options, with messages naming the option.  zps_getopt over a main-like
 * table joined with zps_conf's: `--opt value` and `--opt=value`, flags, the
 * positional arguments left at optind, and the refusals (unknown option, an
 * abbreviation, a missing value, a value on a flag). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check_suites.h"
#include "zps_args.h"
#include "zps_conf.h"
#include "zps_err.h"

START_TEST(test_unsigned)
{
    uint64_t v = 77;
    ck_assert_int_eq(zps_parse_u64("010", &v), 0);
    ck_assert_uint_eq(v, 10);
    ck_assert_int_eq(zps_parse_u64("08", &v), 0);
    ck_assert_uint_eq(v, 8);
    ck_assert_int_eq(zps_parse_u64("0", &v), 0);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(zps_parse_u64("18446744073709551615", &v), 0);
    ck_assert_uint_eq(v, UINT64_MAX);
    const char *bad[] = {"0x10", "0X10", "18446744073709551616", "99999999999999999999", "-1",
                         "+1", " 1", "1 ", "", "1a", "1.0", "1e3", "-0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 77;
        ck_assert_msg(zps_parse_u64(bad[i], &v) == ZPS_EINVAL, "'%s' accepted", bad[i]);
        ck_assert_uint_eq(v, 77);
    }
    ck_assert_int_eq(zps_parse_u64(NULL, &v), ZPS_EINVAL);
    uint32_t w = 5;
    ck_assert_int_eq(zps_parse_u32("4294967295", &w), 0);
    ck_assert_uint_eq(w, UINT32_MAX);
    ck_assert_int_eq(zps_parse_u32("4294967296", &w), ZPS_EINVAL);
    ck_assert_int_eq(zps_parse_u32("0x10", &w), ZPS_EINVAL);
    ck_assert_int_eq(zps_parse_u32("010", &w), 0);
    ck_assert_uint_eq(w, 10);
}
END_TEST

START_TEST(test_signed)
{
    int v = 77;
    ck_assert_int_eq(zps_parse_int("-08", &v), 0);
    ck_assert_int_eq(v, -8);
    ck_assert_int_eq(zps_parse_int("010", &v), 0);
    ck_assert_int_eq(v, 10);
    ck_assert_int_eq(zps_parse_int("2147483647", &v), 0);
    ck_assert_int_eq(v, 2147483647);
    ck_assert_int_eq(zps_parse_int("-2147483648", &v), 0);
    ck_assert_int_eq(v, -2147483647 - 1);
    const char *bad[] = {"2147483648", "-2147483649", "0x10", "-0x10", "--1", "+1", "-", "", " -1",
                         "1x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 77;
        ck_assert_msg(zps_parse_int(bad[i], &v) == ZPS_EINVAL, "'%s' accepted", bad[i]);
        ck_assert_int_eq(v, 77);
    }
}
END_TEST

START_TEST(test_real)
{
    double d = 7;
    const struct {
        const char *s;
        double v;
    } good[] = {{"1.5e-3", 1.5e-3}, {".5", 0.5}, {"2.", 2.0}, {"-0.25", -0.25}, {"010", 10.0},
                {"+3", 3.0},       {"1E2", 100.0}, {"1e+2", 100.0}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        ck_assert_msg(zps_parse_double(good[i].s, &d) == 0, "'%s' refused", good[i].s);
        ck_assert_double_eq(d, good[i].v);
    }
    const char *bad[] = {"0x10", "0x1p3", "inf", "-inf", "nan", "1e999", "", ".", "e5",
                         "1e",   " 1",    "1 ",  "1.5x", "--1", "1e5.0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d = 7;
        ck_assert_msg(zps_parse_double(bad[i], &d) == ZPS_EINVAL, "'%s' accepted", bad[i]);
        ck_assert_double_eq(d, 7);
    }
    float f = 1;
    ck_assert_int_eq(zps_parse_float("3.4e38", &f), 0);
    ck_assert(isfinite(f));
    ck_assert_int_eq(zps_parse_float("3.5e38", &f), ZPS_EINVAL);
    ck_assert_int_eq(zps_parse_float("0x1p3", &f), ZPS_EINVAL);
}
END_TEST

START_TEST(test_why)
{
    ck_assert_str_eq(zps_args_why("0x10", ZPS_ARGS_UINT), "expected a non-negative base-10 integer");
    ck_assert_str_eq(zps_args_why("-1", ZPS_ARGS_UINT), "expected a non-negative base-10 integer");
    ck_assert_str_eq(zps_args_why("18446744073709551616", ZPS_ARGS_UINT), "out of range");
    ck_assert_str_eq(zps_args_why("-1", ZPS_ARGS_INT), "out of range");
    ck_assert_str_eq(zps_args_why("1.5", ZPS_ARGS_INT), "expected a base-10 integer");
    ck_assert_str_eq(zps_args_why("0x1p3", ZPS_ARGS_REAL), "expected a decimal number");
    ck_assert_str_eq(zps_args_why("1e999", ZPS_ARGS_REAL), "out of range");
}
END_TEST

/* The training options: base 10, errors naming the option and the cause. */
START_TEST(test_conf_numbers)
{
    zps_conf_t c;
    char err[256];
    zps_conf_defaults(&c);
    ck_assert_int_eq(zps_conf_set(&c, "epochs", "010", err, sizeof err), 1);
    ck_assert_uint_eq(c.epochs, 10);
    ck_assert_int_eq(zps_conf_set(&c, "seed", "08", err, sizeof err), 1);
    ck_assert_uint_eq(c.seed, 8);
    ck_assert_int_eq(zps_conf_set(&c, "lr", "0.5", err, sizeof err), 1);
    ck_assert_float_eq(c.lr, 0.5f);
    ck_assert_int_eq(zps_conf_set(&c, "slow-worker", "-1", err, sizeof err), 1);
    ck_assert_int_eq(c.slow_worker, -1);

    ck_assert_int_eq(zps_conf_set(&c, "epochs", "0x10", err, sizeof err), ZPS_EINVAL);
    ck_assert_str_eq(err, "invalid value '0x10' for --epochs: expected a non-negative base-10 "
                          "integer or auto");
    ck_assert_uint_eq(c.epochs, 10);
    ck_assert_int_eq(zps_conf_set(&c, "seed", "18446744073709551616", err, sizeof err), ZPS_EINVAL);
    ck_assert_str_eq(err, "invalid value '18446744073709551616' for --seed: out of range");
    ck_assert_int_eq(zps_conf_set(&c, "batch", "4294967296", err, sizeof err), ZPS_EINVAL);
    ck_assert_str_eq(err, "invalid value '4294967296' for --batch: out of range");
    ck_assert_int_eq(zps_conf_set(&c, "rank", "-1", err, sizeof err), ZPS_EINVAL);
    ck_assert_str_eq(err, "invalid value '-1' for --rank: expected a non-negative base-10 integer");
    ck_assert_int_eq(zps_conf_set(&c, "lr", "0x1p-3", err, sizeof err), ZPS_EINVAL);
    ck_assert_str_eq(err, "invalid value '0x1p-3' for --lr: expected a decimal number");
    ck_assert_int_eq(zps_conf_set(&c, "model", "svm", err, sizeof err), ZPS_EINVAL);
    ck_assert_str_eq(err, "invalid value 'svm' for --model");
    /* flags and values */
    ck_assert_int_eq(zps_conf_set(&c, "local", NULL, err, sizeof err), 1);
    ck_assert_int_eq(c.local, 1);
    ck_assert_int_eq(zps_conf_set(&c, "local", "1", err, sizeof err), ZPS_EINVAL);
    ck_assert_int_eq(zps_conf_set(&c, "epochs", NULL, err, sizeof err), ZPS_EINVAL);
    ck_assert_str_eq(err, "option --epochs needs a value");
    ck_assert_int_eq(zps_conf_set(&c, "bind", "x", err, sizeof err), 0);
    ck_assert_int_eq(zps_conf_option_arg("epochs"), 1);
    ck_assert_int_eq(zps_conf_option_arg("no-cache"), 0);
    ck_assert_int_eq(zps_conf_option_arg("bogus"), -1);
}
END_TEST

enum { O_QUIET = 1, O_BIND, O_RANK };
static const struct option s_own[] = {{"quiet", no_argument, 0, O_QUIET},
                                      {"bind", required_argument, 0, O_BIND},
                                      {"rank", required_argument, 0, O_RANK},
                                      {0, 0, 0, 0}};

/* Runs zps_getopt over args like a main (own options first, then the
 * training options); returns 0, or the error's code with err filled. */
static int s_parse(const char *const *args, int n, zps_conf_t *c, int *quiet, const char **bind,
                   int *rank_set, int *first_positional, char *err, size_t errlen)
{
    char *argv[32];
    argv[0] = "prog";
    for (int i = 0; i < n; i++)
        argv[i + 1] = (char *)args[i];
    argv[n + 1] = NULL;
    struct option opts[96];
    ck_assert_uint_gt(zps_options_join(opts, 96, s_own, zps_conf_options()), 40);
    zps_conf_defaults(c);
    optind = 0; /* a fresh parse */
    int o, li;
    while ((o = zps_getopt(n + 1, argv, NULL, opts, &li, err, errlen)) != -1) {
        if (o < 0)
            return o;
        if (o == O_QUIET) *quiet = 1;
        else if (o == O_BIND) *bind = optarg;
        else if (o == O_RANK) *rank_set = 1;
        else if (o == ZPS_CONF_OPT) {
            int r = zps_conf_set(c, opts[li].name, optarg, err, errlen);
            if (r != 1)
                return r ? r : -99;
        } else
            return -98;
    }
    *first_positional = optind <= n ? optind : -1;
    return 0;
}

START_TEST(test_getopt)
{
    zps_conf_t c;
    char err[256];
    int quiet = 0, rank_set = 0, pos = 0;
    const char *bind = NULL;
    const char *a1[] = {"--epochs", "010", "--seed=08", "--quiet", "--bind=tcp://x:1", "--local",
                        "--train", "a", "--train=b", "--rank", "3", "stray"};
    ck_assert_int_eq(s_parse(a1, 12, &c, &quiet, &bind, &rank_set, &pos, err, sizeof err), 0);
    ck_assert_uint_eq(c.epochs, 10);
    ck_assert_uint_eq(c.seed, 8);
    ck_assert_int_eq(quiet, 1);
    ck_assert_str_eq(bind, "tcp://x:1");
    ck_assert_int_eq(c.local, 1);
    ck_assert_uint_eq(c.ntrain, 2);
    ck_assert_str_eq(c.train[0], "a");
    ck_assert_str_eq(c.train[1], "b");
    /* --rank is the main's own: the training option of that name stays unset */
    ck_assert_int_eq(rank_set, 1);
    ck_assert_uint_eq(c.rank, 0);
    ck_assert_int_eq(pos, 12); /* getopt_long moved "stray" behind the options */

    const struct {
        const char *args[3];
        int n;
        const char *want;
    } bad[] = {
        {{"--epoch", "3"}, 2, "unknown option '--epoch'; did you mean --epochs?"},
        {{"--bogus"}, 1, "unknown option '--bogus'"},
        {{"--bogus=1"}, 1, "unknown option '--bogus'"},
        {{"--epochs"}, 1, "option '--epochs' needs a value"},
        {{"--local=yes"}, 1, "option '--local' takes no value"},
        {{"-x"}, 1, "unknown option '-x'"},
        {{"--epochs", "0x10"}, 2,
         "invalid value '0x10' for --epochs: expected a non-negative base-10 integer or auto"},
        {{"--seed=99999999999999999999"}, 1,
         "invalid value '99999999999999999999' for --seed: out of range"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        int r = s_parse(bad[i].args, bad[i].n, &c, &quiet, &bind, &rank_set, &pos, err, sizeof err);
        ck_assert_msg(r == ZPS_EINVAL, "case %zu (%s): %d", i, bad[i].args[0], r);
        ck_assert_str_eq(err, bad[i].want);
    }
}
END_TEST

START_TEST(test_join)
{
    static const struct option a[] = {{"x", no_argument, 0, 1}, {"y", required_argument, 0, 2},
                                      {0, 0, 0, 0}};
    static const struct option b[] = {{"y", no_argument, 0, 3}, {"z", no_argument, 0, 4},
                                      {0, 0, 0, 0}};
    struct option d[4];
    ck_assert_uint_eq(zps_options_join(d, 4, a, b), 3);
    ck_assert_str_eq(d[1].name, "y");
    ck_assert_int_eq(d[1].val, 2); /* a's wins */
    ck_assert_str_eq(d[2].name, "z");
    ck_assert_ptr_null(d[3].name);
    ck_assert_uint_eq(zps_options_join(d, 3, a, b), 0); /* no room for the zero entry */
}
END_TEST

Suite *suite_args(void)
{
    Suite *s = suite_create("args");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_unsigned);
    tcase_add_test(tc, test_signed);
    tcase_add_test(tc, test_real);
    tcase_add_test(tc, test_why);
    tcase_add_test(tc, test_conf_numbers);
    tcase_add_test(tc, test_getopt);
    tcase_add_test(tc, test_join);
    suite_add_tcase(s, tc);
    return s;
}
