/* zps-server: command line -> ps_server_conf_t -> ps_server_run. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ps_server.h"
#include "zps_args.h"
#include "zps_err.h"
#include "zps_log.h"

static volatile sig_atomic_t g_stop; /* the only thing a signal handler may touch */

static void s_on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: zps-server [options]\n"
            "  --bind tcp://IP:PORT     address to bind (port 0: pick a free one and print it)\n"
            "  --rank R                 this server's rank (0-based)            [0]\n"
            "  --num-servers S          servers in the job                      [1]\n"
            "  --dim D                  floats per key in table 0               [1]\n"
            "  --optimizer NAME         sgd | adagrad | ftrl | adam             [sgd]\n"
            "  --lr X                   step size (ftrl: alpha)                 [0.1]\n"
            "  --beta X                 ftrl beta                               [1]\n"
            "  --l1 X --l2 X            regularisation                          [0]\n"
            "  --eps X                  adagrad/adam epsilon\n"
            "  --beta1 X --beta2 X      adam moments                            [0.9 0.999]\n"
            "  --init-scale X           random initial weights in [-X, X)       [0]\n"
            "  --init-skip N            leading columns that start at zero      [0]\n"
            "  --seed N                 seed of the initial weights             [0]\n"
            "  --capacity N             keys to pre-size the table for          [1048576]\n"
            "  --max-msg-mb N           largest frame accepted, MiB             [1024]\n"
            "  --ready-file PATH        write the bound endpoint here once serving\n"
            "  --quiet                  log warnings and errors only\n"
            "  --help, --version\n");
}

int main(int argc, char **argv)
{
    ps_server_conf_t conf;
    ps_server_conf_defaults(&conf);
    ps_optim_conf_t *t0 = &conf.tables[0];
    /* optimizer-specific defaults depend on the kind, so remember what was set */
    int have_lr = 0, have_eps = 0, quiet = 0;
    float lr = 0, eps = 0;
    enum { O_BIND = 1, O_RANK, O_NS, O_DIM, O_OPT, O_LR, O_BETA, O_L1, O_L2, O_EPS, O_B1, O_B2,
           O_INIT, O_SKIP, O_SEED, O_CAP, O_MAXMSG, O_READY, O_QUIET, O_HELP, O_VERSION };
    static const struct option opts[] = {
        {"bind", 1, 0, O_BIND}, {"rank", 1, 0, O_RANK}, {"num-servers", 1, 0, O_NS},
        {"dim", 1, 0, O_DIM}, {"optimizer", 1, 0, O_OPT}, {"lr", 1, 0, O_LR},
        {"beta", 1, 0, O_BETA}, {"l1", 1, 0, O_L1}, {"l2", 1, 0, O_L2}, {"eps", 1, 0, O_EPS},
        {"beta1", 1, 0, O_B1}, {"beta2", 1, 0, O_B2}, {"init-scale", 1, 0, O_INIT},
        {"init-skip", 1, 0, O_SKIP}, {"seed", 1, 0, O_SEED}, {"capacity", 1, 0, O_CAP},
        {"max-msg-mb", 1, 0, O_MAXMSG}, {"ready-file", 1, 0, O_READY}, {"quiet", 0, 0, O_QUIET},
        {"help", 0, 0, O_HELP}, {"version", 0, 0, O_VERSION}, {0, 0, 0, 0}};
    ps_optim_conf_t o;
    ps_optim_defaults(&o, PS_OPT_SGD);
    int c, bad = 0;
    uint64_t mb;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int r = 0;
        switch (c) {
        case O_BIND: snprintf(conf.bind, sizeof conf.bind, "%s", optarg); break;
        case O_RANK: r = zps_parse_u32(optarg, &conf.rank); break;
        case O_NS: r = zps_parse_u32(optarg, &conf.nservers); break;
        case O_DIM: r = zps_parse_u32(optarg, &o.dim); break;
        case O_OPT: {
            ps_opt_kind_t k;
            r = ps_optim_parse_kind(optarg, &k);
            if (!r) {
                ps_optim_conf_t d;
                ps_optim_defaults(&d, k);
                o.kind = k;
                o.beta = d.beta;
                o.beta1 = d.beta1;
                o.beta2 = d.beta2;
                if (!have_lr)
                    o.lr = d.lr;
                if (!have_eps)
                    o.eps = d.eps;
            }
            break;
        }
        case O_LR: r = zps_parse_float(optarg, &lr); o.lr = lr; have_lr = 1; break;
        case O_BETA: r = zps_parse_float(optarg, &o.beta); break;
        case O_L1: r = zps_parse_float(optarg, &o.l1); break;
        case O_L2: r = zps_parse_float(optarg, &o.l2); break;
        case O_EPS: r = zps_parse_float(optarg, &eps); o.eps = eps; have_eps = 1; break;
        case O_B1: r = zps_parse_float(optarg, &o.beta1); break;
        case O_B2: r = zps_parse_float(optarg, &o.beta2); break;
        case O_INIT: r = zps_parse_float(optarg, &o.init_scale); break;
        case O_SKIP: r = zps_parse_u32(optarg, &o.init_skip); break;
        case O_SEED: r = zps_parse_u64(optarg, &o.init_seed); break;
        case O_CAP: r = zps_parse_u64(optarg, &conf.capacity_hint); break;
        case O_MAXMSG:
            r = zps_parse_u64(optarg, &mb);
            if (!r && (mb == 0 || mb > (1ULL << 20)))
                r = ZPS_EINVAL;
            conf.max_msg_bytes = mb << 20;
            break;
        case O_READY: snprintf(conf.ready_file, sizeof conf.ready_file, "%s", optarg); break;
        case O_QUIET: quiet = 1; break;
        case O_HELP: s_usage(stdout); return 0;
        case O_VERSION: printf("zps-server %s (protocol 1)\n", ZPS_VERSION); return 0;
        default: bad = 1; break;
        }
        if (r) {
            fprintf(stderr, "zps-server: invalid value '%s' for --%s\n", optarg,
                    opts[c - 1].name);
            bad = 1;
        }
    }
    if (bad || optind < argc) {
        if (optind < argc)
            fprintf(stderr, "zps-server: unexpected argument '%s'\n", argv[optind]);
        s_usage(stderr);
        return 2;
    }
    *t0 = o;
    zps_log_t *log = zps_log_new("server", (int)conf.rank, stderr);
    if (!log)
        return 1;
    if (quiet)
        zps_log_set_level(log, ZPS_LOG_WARN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[512];
    ps_server_t *srv = ps_server_new(&conf, log, err, sizeof err);
    if (!srv) {
        zps_error(log, "cannot start: %s", err);
        zps_log_destroy(&log);
        return 1;
    }
    printf("zps-server rank %u listening on %s\n", conf.rank, ps_server_endpoint(srv));
    fflush(stdout);
    int rc = ps_server_run(srv, &g_stop);
    if (g_stop)
        zps_info(log, "signal received, exiting");
    ps_server_destroy(&srv);
    zps_log_destroy(&log);
    return rc == 0 ? 0 : 1;
}
