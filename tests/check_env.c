/* check_env: ZPS_* environment variables as options (common/zps_env).
 *
 * The variables the command line does not give come first in the new argv
 * (so zps_getopt sees them), the command line's arguments after; a flag on
 * the command line, as --name or --name=value, makes its variable unused;
 * flags take 1/true/yes and 0/false/no/empty only; variables that name no
 * option and the scripts' own (ZPS_BIN, ZPS_TEST_*) never become options;
 * and the whole zps_conf option table parses what zps_env builds. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_suites.h"
#include "zps_args.h"
#include "zps_conf.h"
#include "zps_env.h"
#include "zps_log.h"

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

/* Kubernetes service links of Services named zps-servers and zps: neither
 * options nor "ignored" warnings, one info line; empty values leave options
 * unset; values are verbatim ('=', spaces) */
START_TEST(test_kubernetes_and_values)
{
    ck_assert(zps_env_kubernetes("SERVERS_PORT"));
    ck_assert(zps_env_kubernetes("SERVERS_SERVICE_HOST"));
    ck_assert(zps_env_kubernetes("SERVERS_SERVICE_PORT"));
    ck_assert(zps_env_kubernetes("SERVERS_SERVICE_PORT_GRPC"));
    ck_assert(zps_env_kubernetes("SERVERS_PORT_7000_TCP"));
    ck_assert(zps_env_kubernetes("SERVERS_PORT_7000_TCP_PROTO"));
    ck_assert(zps_env_kubernetes("SERVERS_PORT_7000_UDP_PORT"));
    ck_assert(zps_env_kubernetes("SERVERS_PORT_7000_SCTP_ADDR"));
    ck_assert(zps_env_kubernetes("PORT"));
    ck_assert(zps_env_kubernetes("SERVICE_HOST"));
    ck_assert(zps_env_kubernetes("PORT_7000_TCP_ADDR"));
    ck_assert(!zps_env_kubernetes("EXPORT"));
    ck_assert(!zps_env_kubernetes("SERVERS"));
    ck_assert(!zps_env_kubernetes("PORT_X_TCP"));
    ck_assert(!zps_env_kubernetes("SERVERS_PORT_7000_TCP_HOST"));
    ck_assert(!zps_env_kubernetes("SERVICE_PORT_"));
    /* no option of the daemons has a service link's shape (else a
     * Kubernetes variable would silently become that option) */
    for (const struct option *o = zps_conf_options(); o->name; o++) {
        char up[80];
        size_t i;
        for (i = 0; o->name[i] && i + 1 < sizeof up; i++)
            up[i] = o->name[i] == '-' ? '_' : (char)(o->name[i] - (o->name[i] >= 'a' && o->name[i] <= 'z' ? 32 : 0));
        up[i] = 0;
        ck_assert_msg(!zps_env_kubernetes(up), "option --%s has a Kubernetes variable's shape", o->name);
    }

    char *envp[] = {"ZPS_SERVERS_PORT=tcp://10.0.0.1:7000", "ZPS_SERVERS_SERVICE_HOST=10.0.0.1",
                    "ZPS_SERVERS_PORT_7000_TCP_ADDR=10.0.0.1", "ZPS_PORT=tcp://10.0.0.2:7000",
                    "ZPS_NUM_WORKERS=", "ZPS_TRAIN=/data/a b=c.txt", "ZPS_RANK=--quiet",
                    "ZPS_EPOCH=3", NULL};
    char *argv[] = {"prog", NULL};
    char err[256];
    zps_env_t *e = zps_env_new("prog", s_opts, envp, 1, argv, err, sizeof err);
    ck_assert_msg(e != NULL, "%s", err);
    ck_assert_uint_eq(zps_env_taken(e), 2); /* --train, --rank */
    char **av = zps_env_argv(e);
    ck_assert_int_eq(zps_env_argc(e), 5);
    ck_assert_str_eq(av[1], "--train");
    ck_assert_str_eq(av[2], "/data/a b=c.txt");
    ck_assert_str_eq(av[3], "--rank");
    ck_assert_str_eq(av[4], "--quiet"); /* the value of --rank, not a flag */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    zps_log_t *log = zps_log_new("server", 0, f);
    zps_env_log(e, log);
    zps_log_destroy(&log);
    fclose(f);
    ck_assert_msg(strstr(text, "Kubernetes service variables, not options: ZPS_SERVERS_PORT "
                               "ZPS_SERVERS_SERVICE_HOST ZPS_SERVERS_PORT_7000_TCP_ADDR ZPS_PORT\n"),
                  "%s", text);
    ck_assert_msg(strstr(text, "left unset (empty, 0, false or no): ZPS_NUM_WORKERS\n"), "%s", text);
    ck_assert_msg(strstr(text, "ignored (no such option of prog): ZPS_EPOCH\n"), "%s", text);
    int lines = 0;
    for (char *p = text; *p; p++)
        lines += *p == '\n';
    ck_assert_msg(lines == 4, "%d lines: %s", lines, text);
    free(text);
    zps_env_destroy(&e);
    /* 1000 service variables (a namespace of zps-* Services) and an option:
     * the daemon starts, the option is taken */
    static char vars[1001][48];
    char *many[1003];
    for (int i = 0; i < 1000; i++) {
        snprintf(vars[i], sizeof vars[i], "ZPS_S%d_PORT_7000_TCP_ADDR=10.0.0.1", i);
        many[i] = vars[i];
    }
    many[1000] = "ZPS_RANK=3";
    many[1001] = "ZPS_TYPO=1";
    many[1002] = NULL;
    e = zps_env_new("prog", s_opts, many, 1, argv, err, sizeof err);
    ck_assert_msg(e != NULL, "%s", err);
    ck_assert_uint_eq(zps_env_taken(e), 1);
    ck_assert_str_eq(zps_env_argv(e)[2], "3");
    f = open_memstream(&text, &len);
    log = zps_log_new("server", 0, f);
    zps_env_log(e, log);
    zps_log_destroy(&log);
    fclose(f);
    ck_assert_msg(strstr(text, "ZPS_S63_PORT_7000_TCP_ADDR and 936 more\n"), "%s", text);
    ck_assert_msg(strstr(text, "ignored (no such option of prog): ZPS_TYPO\n"), "%s", text);
    free(text);
    zps_env_destroy(&e);
    /* an option of that shape still wins (not the case today: see above) */
    static const struct option po[] = {{"port", required_argument, 0, 1}, {0, 0, 0, 0}};
    char *pe[] = {"ZPS_PORT=7", NULL};
    e = zps_env_new("prog", po, pe, 1, argv, err, sizeof err);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(zps_env_taken(e), 1);
    zps_env_destroy(&e);
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
    tcase_add_test(tc, test_kubernetes_and_values);
    tcase_add_test(tc, test_conf_table);
    suite_add_tcase(s, tc);
    return s;
}
