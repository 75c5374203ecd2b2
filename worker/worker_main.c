/* zps-worker: command line (zps_getopt over zps_conf's options and
 * --quiet, with ZPS_* environment variables for the options the command
 * line does not give: zps_env) -> zps_conf_t -> wk_trainer. */
#include <signal.h>
#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "wk_prom.h"
#include "wk_train.h"
#include "zps_args.h"
#include "zps_conf.h"
#include "zps_daemon.h"
#include "zps_env.h"
#include "zps_err.h"
#include "zps_log.h"
#include "zps_metrics_http.h"

extern char **environ;

static volatile sig_atomic_t g_stop; /* the only state a signal handler may touch */

static void s_on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* a usage error: the message, and which options came from the environment */
static int s_usage_error(const zps_env_t *env, const char *msg, const char *hint)
{
    fprintf(stderr, "zps-worker: %s%s\n", msg, hint);
    zps_env_explain(env, stderr);
    return 2;
}

static int s_run(int argc, char **argv, const struct option *opts, const zps_env_t *env)
{
    zps_conf_t conf;
    zps_conf_defaults(&conf);
    char err[1024];
    int quiet = 0;
    const char *metrics_listen = NULL; /* metrics */
    enum { O_HELP = 1, O_VERSION, O_QUIET, O_METRICS_LISTEN };
    int c, li;
    while ((c = zps_getopt(argc, argv, NULL, opts, &li, err, sizeof err)) != -1) {
        switch (c) {
        case O_HELP:
            printf("usage: zps-worker --servers A,B,... --rank R --num-workers W [options]\n"
                   "  --quiet                  log warnings and errors only\n"
                   "  --metrics-listen ADDR:PORT  serve Prometheus metrics at http://ADDR:PORT/metrics\n"
                   "                           (:PORT is 127.0.0.1:PORT; 0.0.0.0:PORT all interfaces) [off]\n"
                   "every option may also be given as a ZPS_* environment variable\n"
                   "(--num-workers 3 as ZPS_NUM_WORKERS=3; the command line wins)\n\n%s",
                   zps_conf_usage());
            return 0;
        case O_VERSION:
            printf("zps-worker %s (protocol 1)\n", ZPS_VERSION);
            return 0;
        case O_QUIET:
            quiet = 1;
            break;
        case O_METRICS_LISTEN: { /* metrics: checked now, bound after set-up */
            char a[16], why[300];
            uint16_t port;
            if (zps_metrics_parse_listen(optarg, a, &port, why, sizeof why) != 0) {
                snprintf(err, sizeof err, "invalid value for --metrics-listen: %s", why);
                return s_usage_error(env, err, "");
            }
            metrics_listen = optarg;
            break;
        }
        case ZPS_CONF_OPT:
            if (zps_conf_set(&conf, opts[li].name, optarg, err, sizeof err) == 1)
                break;
            /* fall through */
        default:
            return s_usage_error(env, err, " (see --help)");
        }
    }
    if (optind < argc) {
        snprintf(err, sizeof err, "unexpected argument '%s'", argv[optind]);
        return s_usage_error(env, err, " (see --help)");
    }
    if (zps_conf_finish(&conf, err, sizeof err) != 0)
        return s_usage_error(env, err, "");
    /* every path before any work: a wrong --test must not wait for the first epoch */
    if (zps_conf_check_paths(&conf, conf.rank == 0, err, sizeof err) != 0)
        return s_usage_error(env, err, "");
    zps_log_t *log = zps_log_new("worker", (int)conf.rank, stderr);
    if (!log)
        return 1;
    if (quiet)
        zps_log_set_level(log, ZPS_LOG_WARN);
    zps_env_log(env, log);
    zps_daemon_signals(s_on_signal);

    /* metrics: up before the servers are reached, so a port in
     * use fails at once and a scraper sees the worker while it connects */
    wk_prom_t *prom = NULL;
    if (metrics_listen) {
        prom = wk_prom_new(metrics_listen, conf.rank, err, sizeof err);
        if (!prom) {
            zps_error(log, "cannot start: --metrics-listen: %s", err);
            zps_log_destroy(&log);
            return 1;
        }
        zps_info(log, "metrics on http://%s/metrics", wk_prom_address(prom));
    }
    wk_trainer_t *t = wk_trainer_new(&conf, log, err, sizeof err);
    if (!t) {
        zps_error(log, "cannot start: %s", err);
        wk_prom_destroy(&prom);
        zps_log_destroy(&log);
        return 1;
    }
    wk_trainer_set_prom(t, prom);
    int rc = wk_trainer_run(t, &g_stop);
    if (rc == ZPS_EINTR)
        zps_warn(log, "interrupted by a signal");
    wk_trainer_destroy(&t);
    wk_prom_destroy(&prom);
    zps_log_destroy(&log);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    /* one BLAS thread per worker process: workers already use every core */
    openblas_set_num_threads(1);
    static const struct option own[] = {{"help", no_argument, 0, 1},
                                        {"version", no_argument, 0, 2},
                                        {"quiet", no_argument, 0, 3},
                                        {"metrics-listen", required_argument, 0, 4},
                                        {0, 0, 0, 0}};
    struct option opts[96];
    if (!zps_options_join(opts, sizeof opts / sizeof opts[0], own, zps_conf_options()))
        return 1;
    /* ZPS_* variables become the options the command line does not give;
     * the parsed configuration points into env's argv: it lives until the end */
    char err[512];
    zps_env_t *env = zps_env_new("zps-worker", opts, environ, argc, argv, err, sizeof err);
    if (!env) {
        fprintf(stderr, "zps-worker: %s\n", err);
        return 2;
    }
    int rc = s_run(zps_env_argc(env), zps_env_argv(env), opts, env);
    zps_env_destroy(&env);
    return rc;
}
