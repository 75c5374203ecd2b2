/* zps-server: command line -> ps_server_conf_t -> ps_server_run.
 *
 * Server options are parsed here (zps_getopt over the server's table
 * joined with zps_conf's); every training option (zps_conf.h) is accepted
 * too, so the launcher can hand the whole job's option list to
 * servers and workers alike.  The table (dim, optimizer, initialisation)
 * follows from the training options unless --table-dim asks for a raw
 * key/value table (benchmarks, tests). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "ps_server.h"
#include "zps_args.h"
#include "zps_conf.h"
#include "zps_daemon.h"
#include "zps_env.h"
#include "zps_err.h"
#include "zps_log.h"
#include "zps_metrics_http.h" /* metrics */

extern char **environ;

static volatile sig_atomic_t g_stop; /* the only state a signal handler may touch */

static void s_on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: zps-server [server options] [training options]\n"
            "every option may also be given as a ZPS_* environment variable\n"
            "(--num-servers 2 as ZPS_NUM_SERVERS=2; the command line wins)\n"
            "server options:\n"
            "  --bind tcp://IP:PORT     address to bind (port 0: pick a free one and print it)\n"
            "  --rank R                 this server's rank (0-based)            [0]\n"
            "  --num-servers S          servers in the job                      [1]\n"
            "  --capacity N             keys to pre-size the table for (up to 4 MB of rows) [1048576]\n"
            "  --max-msg-mb N           largest frame accepted, MiB             [1024]\n"
            "  --ready-file PATH        write the bound endpoint here once serving\n"
            "  --save-model DIR         save this shard's weights to DIR on exit\n"
            "  --table-dim D            raw key/value table of D floats per key\n"
            "                           (ignores the model; for benchmarks and tests)\n"
            "  --restore                load the newest valid checkpoint of this shard from\n"
            "                           --checkpoint-dir before serving (with --coordinator\n"
            "                           the coordinator picks each range's newest copy)\n"
            "  --admin-token-file PATH  the admin secret (one line, 32+ hex characters, file mode\n"
            "                           0600, ours): SHUTDOWN requests must carry it; without\n"
            "                           it every SHUTDOWN is refused (stop with SIGTERM)\n"
            "  --max-keys N             keys this server may store (a push that would go over\n"
            "                           is refused whole, ZPS_ELIMIT)             [no limit]\n"
            "  --max-memory-mb M        table memory this server may use, MiB (same)\n"
            "                                                  [3/4 of the machine's memory]\n"
            "  --max-connections N      peers served at once; more are answered ZPS_ELIMIT\n"
            "                                                                    [1000, < fd limit]\n"
            "  --clip-gradient X        clip every gradient value into [-X, X] before applying\n"
            "  --announce EP            replicated job: the endpoint the coordinator publishes\n"
            "                           for this server (what other servers connect to when it\n"
            "                           joins: a proxy, a NAT address)       [the bound one]\n"
            "  --join-rate-mb M         replicated job: a donor streams its snapshot to a\n"
            "                           joining server at most M MB/s (0: no limit)   [200]\n"
            "  --join-buffer-mb M       a joining server buffers at most M MiB of pushes until\n"
            "                           its copy is complete; more wait (retried)     [1024]\n"
            "  --left-rows-ms MS        rows of a key range this server held and no longer\n"
            "                           holds (moved away) are deleted MS after it left the\n"
            "                           range                                       [600000]\n"
            "  --max-reply-mb M         reply bytes a peer may leave unread before its pulls are\n"
            "                           refused (ZPS_ELIMIT)                           [256]\n"
            "  --max-reply-total-mb M   the same for all peers together                [1024]\n"
            "  --metrics-listen ADDR:PORT  serve Prometheus metrics at http://ADDR:PORT/metrics\n"
            "                           (:PORT is 127.0.0.1:PORT; 0.0.0.0:PORT all interfaces) [off]\n"
            "  --exit-when-done         stop (saving --save-model) and exit 0 once every one of\n"
            "                           the --num-workers workers has said it finished (for\n"
            "                           engines that start servers and workers together: mpirun)\n"
            "  --admit count:N|prob:P   feature admission, table 0: a key not stored yet gets\n"
            "                           a row at its N-th push (N in 1..255, counted in a\n"
            "                           count-min sketch: may admit early, never late), or\n"
            "                           with probability P per push; until then its pushes\n"
            "                           are counted, not stored, and pulls answer the\n"
            "                           initial value (not with --consistency bsp)   [off]\n"
            "  --admit-ids N            distinct ids the count:N sketch is sized for, 8 bytes\n"
            "                           each                                     [1048576]\n"
            "  --expire-after S         table 0: delete rows not updated in more than S seconds\n"
            "                           of the job's running time, a few at a time  [off]\n"
            "  --evict                  table 0: at --max-keys / --max-memory-mb (by default\n"
            "                           3/4 of RAM), make room by evicting the least recently\n"
            "                           updated rows (sampled LRU) instead of refusing the\n"
            "                           push                                       [off]\n"
            "  --accum auto|f32|uf16    table 0, ftrl: store n (the sum of squared gradients)\n"
            "                           as a float, or in 16 bits (uf16: an unsigned float,\n"
            "                           rounded stochastically: docs/operations.md); auto:\n"
            "                           uf16 with --expire-after or --evict (row and eviction\n"
            "                           stamp fit 8 bytes), else f32               [auto]\n"
            "  --threads N|auto         split the table work of big pulls and pushes (over\n"
            "                           16384 keys) over N threads, 1..64; auto: this\n"
            "                           machine's cores, at most 8 (docs/operations.md)\n"
            "                                                                      [auto]\n"
            "  --quiet                  log warnings and errors only\n"
            "  --help, --version\n\n%s",
            zps_conf_usage());
}

enum {
    O_BIND = 1, O_RANK, O_NUM_SERVERS, O_CAPACITY, O_MAX_MSG_MB, O_READY_FILE, O_SAVE_MODEL,
    O_TABLE_DIM, O_ADMIN_TOKEN_FILE, O_MAX_KEYS, O_MAX_MEMORY_MB, O_MAX_CONNECTIONS,
    O_JOIN_RATE_MB, O_JOIN_BUFFER_MB, O_ANNOUNCE, O_LEFT_ROWS_MS,
    O_CLIP_GRADIENT, O_MAX_REPLY_MB, O_MAX_REPLY_TOTAL_MB, O_RESTORE, O_QUIET, O_HELP, O_VERSION,
    O_EXIT_WHEN_DONE,
    O_METRICS_LISTEN, /* metrics */
    O_ADMIT, O_ADMIT_IDS, /* admission */
    O_EXPIRE, O_EVICT, O_ACCUM, O_THREADS
};

/* The server's own options; --rank and --save-model shadow the training
 * options of the same name (a server's rank, the shard's model directory). */
static const struct option s_server_options[] = {
    {"bind", required_argument, 0, O_BIND},
    {"rank", required_argument, 0, O_RANK},
    {"num-servers", required_argument, 0, O_NUM_SERVERS},
    {"capacity", required_argument, 0, O_CAPACITY},
    {"max-msg-mb", required_argument, 0, O_MAX_MSG_MB},
    {"ready-file", required_argument, 0, O_READY_FILE},
    {"save-model", required_argument, 0, O_SAVE_MODEL},
    {"table-dim", required_argument, 0, O_TABLE_DIM},
    {"admin-token-file", required_argument, 0, O_ADMIN_TOKEN_FILE},
    {"max-keys", required_argument, 0, O_MAX_KEYS},
    {"max-memory-mb", required_argument, 0, O_MAX_MEMORY_MB},
    {"max-connections", required_argument, 0, O_MAX_CONNECTIONS},
    {"clip-gradient", required_argument, 0, O_CLIP_GRADIENT},
    {"join-rate-mb", required_argument, 0, O_JOIN_RATE_MB},
    {"left-rows-ms", required_argument, 0, O_LEFT_ROWS_MS},
    {"join-buffer-mb", required_argument, 0, O_JOIN_BUFFER_MB},
    {"announce", required_argument, 0, O_ANNOUNCE},
    {"max-reply-mb", required_argument, 0, O_MAX_REPLY_MB},
    {"max-reply-total-mb", required_argument, 0, O_MAX_REPLY_TOTAL_MB},
    {"restore", no_argument, 0, O_RESTORE},
    {"metrics-listen", required_argument, 0, O_METRICS_LISTEN}, /* metrics */
    {"exit-when-done", no_argument, 0, O_EXIT_WHEN_DONE},
    {"admit", required_argument, 0, O_ADMIT},         /* admission */
    {"admit-ids", required_argument, 0, O_ADMIT_IDS}, /* admission */
    {"expire-after", required_argument, 0, O_EXPIRE},
    {"evict", no_argument, 0, O_EVICT},
    {"accum", required_argument, 0, O_ACCUM},
    {"threads", required_argument, 0, O_THREADS},
    {"quiet", no_argument, 0, O_QUIET},
    {"help", no_argument, 0, O_HELP},
    {"version", no_argument, 0, O_VERSION},
    {0, 0, 0, 0}};

/* MiB in [1, max] -> bytes. */
static int s_mib(const char *v, uint64_t max, uint64_t *bytes)
{
    uint64_t mb;
    if (zps_parse_u64(v, &mb) || mb == 0 || mb > max)
        return ZPS_EINVAL;
    *bytes = mb << 20;
    return 0;
}

/* --admit count:N | prob:P into a (mode, count, prob).  0 or ZPS_EINVAL. */
static int s_admit(const char *v, zps_admit_conf_t *a)
{
    if (!strncmp(v, "count:", 6)) {
        uint32_t n;
        if (zps_parse_u32(v + 6, &n) || n < 1 || n > 255)
            return ZPS_EINVAL;
        a->mode = ZPS_ADMIT_COUNT;
        a->count = n;
        return 0;
    }
    if (!strncmp(v, "prob:", 5)) {
        double p;
        if (zps_parse_double(v + 5, &p) || !(p > 0) || p > 1)
            return ZPS_EINVAL;
        a->mode = ZPS_ADMIT_PROB;
        a->prob = p;
        return 0;
    }
    return ZPS_EINVAL;
}

/* A server option's value v: 0 or ZPS_EINVAL. */
static int s_server_opt(ps_server_conf_t *sc, uint32_t *table_dim, int *max_conn_given, int o,
                        const char *v)
{
    switch (o) {
    case O_BIND: snprintf(sc->bind, sizeof sc->bind, "%s", v); return 0;
    case O_RANK: return zps_parse_u32(v, &sc->rank);
    case O_NUM_SERVERS: return zps_parse_u32(v, &sc->nservers) || sc->nservers == 0 ? ZPS_EINVAL : 0;
    case O_CAPACITY: return zps_parse_u64(v, &sc->capacity_hint);
    case O_MAX_MSG_MB: return s_mib(v, 1ULL << 20, &sc->max_msg_bytes);
    case O_READY_FILE: snprintf(sc->ready_file, sizeof sc->ready_file, "%s", v); return 0;
    case O_METRICS_LISTEN: /* metrics: checked here, bound by ps_server_new */
    {
        char a[16], why[200];
        uint16_t port;
        if (strlen(v) >= sizeof sc->metrics_listen ||
            zps_metrics_parse_listen(v, a, &port, why, sizeof why) != 0)
            return ZPS_EINVAL;
    }
        snprintf(sc->metrics_listen, sizeof sc->metrics_listen, "%s", v);
        return 0;
    case O_SAVE_MODEL: snprintf(sc->save_dir, sizeof sc->save_dir, "%s", v); return 0;
    case O_TABLE_DIM:
        return zps_parse_u32(v, table_dim) || *table_dim == 0 || *table_dim > 1024 ? ZPS_EINVAL : 0;
    case O_ADMIN_TOKEN_FILE:
        snprintf(sc->admin_token_file, sizeof sc->admin_token_file, "%s", v);
        return 0;
    case O_MAX_KEYS: return zps_parse_u64(v, &sc->limit_keys) || sc->limit_keys == 0 ? ZPS_EINVAL : 0;
    case O_MAX_MEMORY_MB: return s_mib(v, 1ULL << 30, &sc->limit_memory_bytes);
    case O_MAX_CONNECTIONS:
        *max_conn_given = 1;
        return zps_parse_u32(v, &sc->max_connections) || sc->max_connections == 0 ? ZPS_EINVAL : 0;
    case O_MAX_REPLY_MB: return s_mib(v, 1ULL << 30, &sc->max_reply_bytes);
    case O_MAX_REPLY_TOTAL_MB: return s_mib(v, 1ULL << 30, &sc->max_reply_total);
    case O_ADMIT: return s_admit(v, &sc->admit); /* admission */
    case O_ADMIT_IDS:
        return zps_parse_u64(v, &sc->admit.ids) || sc->admit.ids == 0 ||
               sc->admit.ids > (1ULL << 32) ? ZPS_EINVAL : 0;
    case O_EXPIRE:
        return zps_parse_u32(v, &sc->bound.expire_s) || sc->bound.expire_s == 0 ||
               sc->bound.expire_s > 100u * 365 * 86400 ? ZPS_EINVAL : 0;
    case O_EVICT: sc->bound.evict = 1; return 0;
    case O_THREADS:
        if (!strcmp(v, "auto")) {
            sc->threads = 0;
            return 0;
        }
        return zps_parse_u32(v, &sc->threads) || sc->threads == 0 || sc->threads > ZPS_POOL_MAX
                   ? ZPS_EINVAL : 0;
    case O_ACCUM:
        sc->accum = !strcmp(v, "auto") ? PS_ACCUM_AUTO : !strcmp(v, "f32") ? PS_ACCUM_F32
                    : !strcmp(v, "uf16") ? PS_ACCUM_UF16 : -1;
        return sc->accum < 0 ? ZPS_EINVAL : 0;
    case O_JOIN_BUFFER_MB: return s_mib(v, 1ULL << 30, &sc->join_buffer_bytes);
    case O_LEFT_ROWS_MS: return zps_parse_u32(v, &sc->left_rows_ms);
    case O_ANNOUNCE:
        if (strncmp(v, "tcp://", 6) != 0 || strlen(v) >= sizeof sc->announce)
            return ZPS_EINVAL;
        snprintf(sc->announce, sizeof sc->announce, "%s", v);
        return 0;
    case O_JOIN_RATE_MB: {
        double x;
        if (zps_parse_double(v, &x) || !(x >= 0) || x > 1e9)
            return ZPS_EINVAL;
        sc->join_rate_mb = x;
        return 0;
    }
    case O_CLIP_GRADIENT: {
        double x;
        if (zps_parse_double(v, &x) || !(x > 0) || x > 3e38)
            return ZPS_EINVAL;
        sc->clip_gradient = (float)x;
        return 0;
    }
    }
    return ZPS_EINVAL;
}

/* The training options a saved model's manifest records (zps-predict
 * rebuilds the model from them): all but the data, layout and output ones. */
static int s_manifest_keeps(const char *name)
{
    static const char *const skip[] = {"train", "test", "servers", "rank", "num-workers",
                                       "test-predictions", "cache-dir", "coordinator", NULL};
    for (int k = 0; skip[k]; k++)
        if (!strcmp(name, skip[k]))
            return 0;
    return 1;
}

static int s_run(int argc, char **argv, const struct option *opts, const zps_env_t *env)
{
    ps_server_conf_t sc;
    ps_server_conf_defaults(&sc);
    zps_conf_t jc;
    zps_conf_defaults(&jc);
    uint32_t table_dim = 0;
    int quiet = 0, max_conn_given = 0;
    char err[600];
    size_t olen = 0;
    int o, li;
    while ((o = zps_getopt(argc, argv, NULL, opts, &li, err, sizeof err)) != -1) {
        if (o == O_HELP) {
            s_usage(stdout);
            return 0;
        }
        if (o == O_VERSION) {
            printf("zps-server %s (protocol 1)\n", ZPS_VERSION);
            return 0;
        }
        if (o == O_QUIET) {
            quiet = 1;
            continue;
        }
        if (o == O_RESTORE) {
            sc.restore = 1;
            continue;
        }
        if (o == O_EXIT_WHEN_DONE) {
            sc.exit_when_done = 1;
            continue;
        }
        if (o == ZPS_CONF_OPT) {
            if (zps_conf_set(&jc, opts[li].name, optarg, err, sizeof err) != 1) {
                fprintf(stderr, "zps-server: %s\n", err);
                return 2;
            }
            /* remember the model-defining options for the manifest, as
             * "--name value" whichever way they were given */
            if (s_manifest_keeps(opts[li].name))
                olen += (size_t)snprintf(sc.options + olen,
                                         olen < sizeof sc.options ? sizeof sc.options - olen : 0,
                                         "%s--%s%s%s", olen ? " " : "", opts[li].name,
                                         optarg ? " " : "", optarg ? optarg : "");
            continue;
        }
        if (o < 0) {
            fprintf(stderr, "zps-server: %s (see --help)\n", err);
            return 2;
        }
        if (o == O_ADMIT && s_server_opt(&sc, &table_dim, &max_conn_given, o, optarg) != 0) {
            fprintf(stderr, "zps-server: invalid value '%s' for --admit: expected count:N "
                    "(N an integer in 1..255) or prob:P (0 < P <= 1)\n", optarg); /* admission */
            return 2;
        }
        if (o == O_ACCUM && s_server_opt(&sc, &table_dim, &max_conn_given, o, optarg) != 0) {
            fprintf(stderr, "zps-server: invalid value '%s' for --accum: expected auto, f32 or "
                    "uf16\n", optarg);
            return 2;
        }
        if (o != O_ADMIT && o != O_ACCUM &&
            s_server_opt(&sc, &table_dim, &max_conn_given, o, optarg) != 0) {
            const int text = o == O_BIND || o == O_READY_FILE || o == O_SAVE_MODEL ||
                             o == O_ADMIN_TOKEN_FILE || o == O_METRICS_LISTEN || o == O_ANNOUNCE;
            fprintf(stderr, "zps-server: invalid value '%s' for --%s%s%s\n", optarg, opts[li].name,
                    text ? "" : ": ",
                    text ? "" : zps_args_why(optarg, o == O_CLIP_GRADIENT || o == O_JOIN_RATE_MB ? ZPS_ARGS_REAL : ZPS_ARGS_UINT));
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "zps-server: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    if (olen >= sizeof sc.options) {
        fprintf(stderr, "zps-server: training options too long\n");
        return 2;
    }
    /* servers do not check worker ranks */
    jc.rank = 0;
    if (zps_conf_finish(&jc, err, sizeof err) != 0) {
        fprintf(stderr, "zps-server: %s\n", err);
        return 2;
    }
    zps_conf_table(&jc, &sc.tables[0]);
    sc.consistency = (int)jc.consistency;
    sc.staleness = jc.staleness;
    sc.num_workers = jc.num_workers;
    sc.heartbeat_timeout_ms = (uint32_t)(jc.heartbeat_timeout * 1000);
    zps_conf_job_desc(&jc, sc.job, sizeof sc.job);
    /* fail closed: a CURVE configuration that is partial or meant for a
     * client does not start (ps_server_new checks the files) */
    if (jc.server_public) {
        fprintf(stderr, "zps-server: --server-public is a client option; a server takes "
                        "--curve-secret SERVER.key and --allow-dir DIR\n");
        return 2;
    }
    if (jc.allow_dir && !jc.curve_secret) {
        fprintf(stderr, "zps-server: --allow-dir needs --curve-secret SERVER.key (refusing to "
                        "serve in plaintext)\n");
        return 2;
    }
    if (jc.curve_secret && !jc.allow_dir) {
        fprintf(stderr, "zps-server: --curve-secret needs --allow-dir DIR with the clients' "
                        ".pub files\n");
        return 2;
    }
    if (jc.curve_secret)
        snprintf(sc.curve_secret, sizeof sc.curve_secret, "%s", jc.curve_secret);
    if (jc.allow_dir)
        snprintf(sc.allow_dir, sizeof sc.allow_dir, "%s", jc.allow_dir);
    if (jc.checkpoint_dir)
        snprintf(sc.checkpoint_dir, sizeof sc.checkpoint_dir, "%s", jc.checkpoint_dir);
    if (jc.coordinator) {
        if (strlen(jc.coordinator) >= sizeof sc.coordinator) {
            fprintf(stderr, "zps-server: --coordinator: endpoint too long\n");
            return 2;
        }
        snprintf(sc.coordinator, sizeof sc.coordinator, "%s", jc.coordinator);
    }
    sc.checkpoint_every_ms = (uint32_t)(jc.checkpoint_every * 1000);
    sc.checkpoint_keep = jc.checkpoint_keep;
    if (sc.restore && !sc.checkpoint_dir[0]) {
        fprintf(stderr, "zps-server: --restore needs --checkpoint-dir\n");
        return 2;
    }
    snprintf(sc.model_name, sizeof sc.model_name, "%s", zps_model_name(jc.model));
    if (table_dim) {
        sc.tables[0].dim = table_dim;
        sc.tables[0].init_scale = 0;
        sc.tables[0].init_skip = 0;
        snprintf(sc.model_name, sizeof sc.model_name, "kv");
    }
    /* descriptors: raise the soft limit to the hard one; the connection
     * limit stays well under it (replies, checkpoints and files need some) */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
            getrlimit(RLIMIT_NOFILE, &rl);
        }
        uint64_t room = rl.rlim_cur > 128 ? (uint64_t)rl.rlim_cur - 64 : 64;
        if (sc.max_connections > room) {
            if (max_conn_given) {
                fprintf(stderr, "zps-server: --max-connections %u is over what the descriptor "
                                "limit allows (%llu; ulimit -n)\n", sc.max_connections,
                        (unsigned long long)room);
                return 2;
            }
            sc.max_connections = (uint32_t)room;
        }
    }
    /* table memory: without --max-memory-mb, 3/4 of this machine's memory,
     * so a stream of new keys is refused (ZPS_ELIMIT) before the kernel's
     * OOM killer takes the server and everything it holds */
    if (!sc.limit_memory_bytes) {
        long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        if (pages > 0 && psz > 0)
            sc.limit_memory_bytes = (uint64_t)pages * (uint64_t)psz / 4 * 3;
    }
    zps_log_t *log = zps_log_new("server", (int)sc.rank, stderr);
    if (!log)
        return 1;
    if (quiet)
        zps_log_set_level(log, ZPS_LOG_WARN);
    zps_env_log(env, log);
    zps_daemon_signals(s_on_signal);

    ps_server_t *srv = ps_server_new(&sc, log, err, sizeof err);
    if (!srv) {
        zps_error(log, "cannot start: %s", err);
        zps_log_destroy(&log);
        return 1;
    }
    printf("zps-server rank %u listening on %s\n", sc.rank, ps_server_endpoint(srv));
    fflush(stdout);
    int rc = ps_server_run(srv, &g_stop);
    if (g_stop)
        zps_info(log, "signal received, exiting");
    ps_server_destroy(&srv);
    zps_log_destroy(&log);
    /* 3: removed from a replicated job's range table (its data is stale);
     * a supervisor (zps-launch --restart-servers) starts it fresh to rejoin */
    return rc == 0 ? 0 : rc == ZPS_ENOLEASE ? 3 : 1;
}

int main(int argc, char **argv)
{
#ifdef __GLIBC__
    /* Big buffers (a peer's key frames, held pulls, replies) always come
     * from mmap and go back to the system when freed.  glibc's threshold
     * otherwise rises to the size of the largest mmapped block ever freed
     * (the atomic file writer's 1 MB buffer: the ready file, a checkpoint,
     * a save), after which such buffers stay in the heap once freed: a
     * server that dropped a hostile peer's 64 MB of held pulls kept them
     * (it_hostile, attack held). */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
    struct option opts[128];
    if (!zps_options_join(opts, sizeof opts / sizeof opts[0], s_server_options, zps_conf_options()))
        return 1;
    /* ZPS_* variables become the options the command line does not give;
     * the parsed configuration points into env's argv: it lives until the end */
    char err[512];
    zps_env_t *env = zps_env_new("zps-server", opts, environ, argc, argv, err, sizeof err);
    if (!env) {
        fprintf(stderr, "zps-server: %s\n", err);
        return 2;
    }
    int rc = s_run(zps_env_argc(env), zps_env_argv(env), opts, env);
    if (rc == 2) /* a usage error: say which options came from the environment */
        zps_env_explain(env, stderr);
    zps_env_destroy(&env);
    return rc;
}
