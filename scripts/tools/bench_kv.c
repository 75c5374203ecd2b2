/* bench_kv: the zps-bench kv driver and its report (see bench_kv.h). */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_job.h"
#include "bench_kv.h"
#include "bench_pipe.h"
#include "ps_server.h"
#include "zps_optim.h"
#include "zps_args.h"
#include "zps_out.h"
#include "zps_time.h"

#define MAX_CFGS 16
#define MAX_SIZES 16
#define MAX_RUNS 99

/* ---- options -------------------------------------------------------------- */

typedef struct {
    uint32_t s, w;
} cfg_t;

typedef struct {
    cfg_t cfgs[MAX_CFGS];
    int ncfg;
    uint64_t sizes[MAX_SIZES];
    int nsizes;
    uint32_t runs;
    uint64_t table_keys;
    uint32_t replicas;       /* 0: no coordinator */
    int shuffle;             /* populate in a scrambled order */
    bench_srv_opts_t so;     /* --optimizer, --evict */
    uint32_t window;
    double min_s, max_s;
    uint64_t target_pairs;
    uint32_t lat_iters;
    const char *json;
} opts_t;

/* ---- figures ---------------------------------------------------------------------- */

typedef struct {
    uint32_t nruns;
    double mp[MAX_RUNS], mb[MAX_RUNS], rmp[MAX_RUNS], rmb[MAX_RUNS];
    uint64_t pairs, msgs, submsgs, sent, recv; /* ours, summed over runs */
} row_t;

typedef struct {
    double p50, p99, rp50, rp99, req[2], rep[2];
    double pop_s;       /* populate time */
    uint64_t stored;    /* keys the servers reported afterwards */
} lat_t;

static double s_median(const double *v, uint32_t n)
{
    double t[MAX_RUNS];
    memcpy(t, v, n * sizeof *t);
    for (uint32_t i = 1; i < n; i++) /* insertion sort: n is tiny */
        for (uint32_t j = i; j > 0 && t[j - 1] > t[j]; j--) {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static void s_machine(char *cpu, size_t len, long *nproc, unsigned long long *mem_kb)
{
    snprintf(cpu, len, "unknown");
    *mem_kb = 0;
    char line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char *p = strchr(line, ':');
                if (p) {
                    p++;
                    while (*p == ' ' || *p == '\t')
                        p++;
                    p[strcspn(p, "\n")] = 0;
                    snprintf(cpu, len, "%s", p);
                }
                break;
            }
        }
        fclose(f);
    }
    f = fopen("/proc/meminfo", "r");
    if (f) {
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemTotal: %llu kB", mem_kb) == 1)
                break;
        fclose(f);
    }
    *nproc = sysconf(_SC_NPROCESSORS_ONLN);
}

static void s_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* ---- command line ------------------------------------------------------------------ */

void bench_kv_usage(FILE *f)
{
    fprintf(f,
            "usage: zps-bench kv [options]\n"
            "       zps-bench --help | --version\n"
            "\n"
            "kv: push / pull / pushpull throughput of S servers x W clients, forked on this\n"
            "machine, against a raw ZeroMQ echo with the same message sizes; then the\n"
            "latency of a 1-key push + pull.  Markdown table on stdout, progress on stderr.\n"
            "\n"
            "  --configs SxW,...     servers x clients per configuration   [1x1,2x2]\n"
            "  --sizes K,...         keys per message                      [1000,100000,1000000]\n"
            "  --runs N              runs per figure; the median is shown  [3]\n"
            "  --table-keys N        keys stored (ids 0..N-1)              [10000000]\n"
            "  --window N            requests in flight per client         [4]\n"
            "  --min-time S          seconds per measurement, at least     [0.5]\n"
            "  --max-time S          seconds per measurement, at most      [2]\n"
            "  --target-pairs N      pairs per client to reach after\n"
            "                        --min-time before stopping            [8000000]\n"
            "  --lat-iters N         latency iterations (+10%% warm-up)     [3000]\n"
            "  --quick               smoke test: sizes 1000,100000, table-keys 1000000,\n"
            "                        runs 1 (explicit options still win)\n"
            "  --optimizer NAME      the servers' optimizer: sgd, adagrad or ftrl  [sgd]\n"
            "  --evict               servers with --evict (cap twice the table: each row\n"
            "                        gets its stamp, nothing is evicted)\n"
            "  --accum auto|f32|uf16 the servers' --accum (ftrl's n)           [auto]\n"
            "  --server-threads T    the servers' --threads (big requests' table work\n"
            "                        split over T threads; auto: the cores, up to 8)\n"
            "                                                              [auto]\n"
            "  --shuffle             populate the ids in a scrambled order (an affine\n"
            "                        permutation), so a key's row is not where its id is:\n"
            "                        without it ids 0..N-1 go in in order, and a message's\n"
            "                        sorted keys read their rows in address order\n"
            "  --replicas R          a replicated job: zps-coord (beside zps-bench) with R\n"
            "                        replicas; pairs/s count each key once, however many\n"
            "                        servers it went to (0: no coordinator)  [0]\n"
            "  --json FILE           also write the figures as JSON\n"
            "  --help, --version\n");
}

static int s_parse_configs(const char *arg, opts_t *o)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", arg);
    o->ncfg = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *x = strchr(tok, 'x');
        if (!x || o->ncfg == MAX_CFGS)
            return -1;
        *x = 0;
        uint32_t s, w;
        if (zps_parse_u32(tok, &s) || zps_parse_u32(x + 1, &w) || s < 1 || s > BENCH_MAX_SRV ||
            w < 1 || w > BENCH_MAX_CLI)
            return -1;
        o->cfgs[o->ncfg].s = s;
        o->cfgs[o->ncfg].w = w;
        o->ncfg++;
    }
    return o->ncfg ? 0 : -1;
}

static int s_parse_sizes(const char *arg, opts_t *o)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", arg);
    o->nsizes = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        uint64_t k;
        if (o->nsizes == MAX_SIZES || zps_parse_u64(tok, &k) || k < 1 || k > (1ULL << 26))
            return -1;
        o->sizes[o->nsizes++] = k;
    }
    return o->nsizes ? 0 : -1;
}

/* ---- kv ------------------------------------------------------------------------------ */

int bench_kv_run(bench_super_t *sup, int argc, char **argv, const char *cmdline)
{
    opts_t o;
    memset(&o, 0, sizeof o);
    int quick = 0;
    const char *a_cfg = "1x1,2x2", *a_sizes = NULL;
    int have_runs = 0, have_tk = 0;
    o.runs = 3;
    o.table_keys = 10000000;
    o.window = 4;
    o.min_s = 0.5;
    o.max_s = 2.0;
    o.target_pairs = 8000000;
    o.lat_iters = 3000;
    enum { O_CFG = 1, O_SIZES, O_RUNS, O_TK, O_WIN, O_MIN, O_MAX, O_TP, O_LAT, O_QUICK, O_JSON,
           O_HELP, O_REPL, O_OPT, O_EVICT, O_SHUF, O_ACCUM, O_THR };
    static const struct option opts[] = {
        {"configs", 1, 0, O_CFG}, {"sizes", 1, 0, O_SIZES}, {"runs", 1, 0, O_RUNS},
        {"table-keys", 1, 0, O_TK}, {"window", 1, 0, O_WIN}, {"min-time", 1, 0, O_MIN},
        {"max-time", 1, 0, O_MAX}, {"target-pairs", 1, 0, O_TP}, {"lat-iters", 1, 0, O_LAT},
        {"quick", 0, 0, O_QUICK}, {"json", 1, 0, O_JSON}, {"help", 0, 0, O_HELP},
        {"replicas", 1, 0, O_REPL}, {"optimizer", 1, 0, O_OPT}, {"evict", 0, 0, O_EVICT},
        {"accum", 1, 0, O_ACCUM}, {"server-threads", 1, 0, O_THR},
        {"shuffle", 0, 0, O_SHUF}, {0, 0, 0, 0}};
    int c, li, bad = 0;
    char oerr[300];
    optind = 1;
    while ((c = zps_getopt(argc, argv, NULL, opts, &li, oerr, sizeof oerr)) != -1) {
        int r = 0;
        switch (c) {
        case O_CFG: a_cfg = optarg; break;
        case O_SIZES: a_sizes = optarg; break;
        case O_RUNS:
            r = zps_parse_u32(optarg, &o.runs) || o.runs < 1 || o.runs > MAX_RUNS;
            have_runs = 1;
            break;
        case O_TK:
            r = zps_parse_u64(optarg, &o.table_keys) || o.table_keys < 1 ||
                o.table_keys > (1ULL << 32);
            have_tk = 1;
            break;
        case O_WIN:
            r = zps_parse_u32(optarg, &o.window) || o.window < 1 || o.window > BENCH_MAX_WINDOW;
            break;
        case O_MIN: r = zps_parse_double(optarg, &o.min_s) || o.min_s < 0 || o.min_s > 3600; break;
        case O_MAX: r = zps_parse_double(optarg, &o.max_s) || o.max_s <= 0 || o.max_s > 3600; break;
        case O_TP: r = zps_parse_u64(optarg, &o.target_pairs); break;
        case O_LAT: r = zps_parse_u32(optarg, &o.lat_iters) || o.lat_iters < 10; break;
        case O_QUICK: quick = 1; break;
        case O_REPL: r = zps_parse_u32(optarg, &o.replicas) || o.replicas > 3; break;
        case O_OPT:
            o.so.optimizer = !strcmp(optarg, "sgd")       ? ZPS_OPT_SGD
                             : !strcmp(optarg, "adagrad") ? ZPS_OPT_ADAGRAD
                             : !strcmp(optarg, "ftrl")    ? ZPS_OPT_FTRL
                                                          : -1;
            r = o.so.optimizer < 0;
            break;
        case O_EVICT: o.so.evict = 1; break;
        case O_ACCUM:
            o.so.accum = !strcmp(optarg, "auto") ? PS_ACCUM_AUTO : !strcmp(optarg, "f32") ? PS_ACCUM_F32
                         : !strcmp(optarg, "uf16") ? PS_ACCUM_UF16 : -1;
            r = o.so.accum < 0;
            break;
        case O_SHUF: o.shuffle = 1; break;
        case O_THR:
            o.so.threads = 0;
            r = strcmp(optarg, "auto") != 0 &&
                (zps_parse_u32(optarg, &o.so.threads) || o.so.threads < 1 ||
                 o.so.threads > ZPS_POOL_MAX);
            break;
        case O_JSON: o.json = optarg; break;
        case O_HELP: bench_kv_usage(stdout); return 0;
        default:
            fprintf(stderr, "zps-bench: %s\n", oerr);
            bad = 1;
            break;
        }
        if (r) {
            fprintf(stderr, "zps-bench: invalid value '%s' for --%s: %s\n", optarg, opts[li].name,
                    c == O_OPT     ? "expected sgd, adagrad or ftrl"
                    : c == O_ACCUM ? "expected auto, f32 or uf16"
                    : zps_args_why(optarg, c == O_MIN || c == O_MAX ? ZPS_ARGS_REAL : ZPS_ARGS_UINT));
            bad = 1;
        }
    }
    if (!bad && s_parse_configs(a_cfg, &o)) {
        fprintf(stderr, "zps-bench: invalid --configs '%s' (want SxW,... with 1 <= S <= %d, "
                "1 <= W <= %d)\n", a_cfg, BENCH_MAX_SRV, BENCH_MAX_CLI);
        bad = 1;
    }
    if (!a_sizes)
        a_sizes = quick ? "1000,100000" : "1000,100000,1000000";
    if (!bad && s_parse_sizes(a_sizes, &o)) {
        fprintf(stderr, "zps-bench: invalid --sizes '%s' (want K,... with 1 <= K <= 2^26)\n",
                a_sizes);
        bad = 1;
    }
    if (quick && !have_runs)
        o.runs = 1;
    if (quick && !have_tk)
        o.table_keys = 1000000;
    if (!bad && o.max_s < o.min_s) {
        fprintf(stderr, "zps-bench: --max-time is below --min-time\n");
        bad = 1;
    }
    if (bad || optind < argc) {
        if (!bad)
            fprintf(stderr, "zps-bench: unexpected argument '%s'\n", argv[optind]);
        bench_kv_usage(stderr);
        return 2;
    }
    for (int i = 0; i < o.nsizes; i++)
        if (o.sizes[i] > o.table_keys) {
            fprintf(stderr, "zps-bench: --sizes %llu is more than --table-keys %llu\n",
                    (unsigned long long)o.sizes[i], (unsigned long long)o.table_keys);
            return 2;
        }
    /* the report is written atomically (zps_out), opened up front so a bad
     * path fails before the runs */
    zps_out_t *jout = NULL;
    FILE *jf = NULL;
    if (o.json) {
        char jerr[1200];
        if (!(jout = zps_out_open(o.json, jerr, sizeof jerr))) {
            fprintf(stderr, "zps-bench: cannot write %s: %s\n", o.json, jerr);
            return 1;
        }
        jf = zps_out_file(jout);
    }

    char cpu[256];
    long nproc;
    unsigned long long mem_kb;
    s_machine(cpu, sizeof cpu, &nproc, &mem_kb);
    printf("# zps-bench %s kv\n\n", ZPS_VERSION);
    printf("command: `%s`\n", cmdline);
    printf("machine: %s, nproc %ld, MemTotal %llu kB (%.1f GiB)\n", cpu, nproc, mem_kb,
           (double)mem_kb / 1048576.0);
    char thr[48] = ", servers --threads auto";
    if (o.so.threads)
        snprintf(thr, sizeof thr, ", servers --threads %u", o.so.threads);
    printf("table: %llu keys (ids 0..N-1%s, %s lr 0.01, dim 1%s%s%s); window %u per client; "
           "median of %u run%s; %.1f-%.1f s per run",
           (unsigned long long)o.table_keys, o.shuffle ? " stored in a scrambled order" : "",
           o.so.optimizer == ZPS_OPT_FTRL ? "FTRL" : o.so.optimizer == ZPS_OPT_ADAGRAD ? "AdaGrad"
                                                                                    : "SGD",
           o.so.evict ? ", --evict: a stamp per row" : "",
           o.so.accum == PS_ACCUM_F32 ? ", --accum f32" : o.so.accum == PS_ACCUM_UF16 ? ", --accum uf16" : "",
           thr, o.window, o.runs,
           o.runs == 1 ? "" : "s", o.min_s, o.max_s);
    if (o.replicas)
        printf("; replicated: zps-coord, %u replica%s per key range (a push goes to each; "
               "pairs count each key once)", o.replicas, o.replicas == 1 ? "" : "s");
    printf("\n\n");
    fflush(stdout);

    row_t(*rows)[MAX_SIZES][BENCH_NOPS] = calloc((size_t)o.ncfg, sizeof *rows);
    lat_t *lats = calloc((size_t)o.ncfg, sizeof *lats);
    if (!rows || !lats)
        bench_super_die(sup, "out of memory");
    int64_t t_start = zps_now_ms();

    for (int ci = 0; ci < o.ncfg; ci++) {
        uint32_t S = o.cfgs[ci].s, W = o.cfgs[ci].w;
        bench_job_t job;
        fprintf(stderr, "zps-bench: [%ux%u] starting %u server(s), %u raw echo server(s), "
                "%u client(s)\n", S, W, S, S, W);
        bench_job_start(&job, sup, S, W, o.table_keys, o.replicas, &o.so);

        bench_cmd_t cmd;
        memset(&cmd, 0, sizeof cmd);
        cmd.table_keys = o.table_keys;
        cmd.shuffle = o.shuffle;
        cmd.window = o.window;
        cmd.min_s = o.min_s;
        cmd.max_s = o.max_s;
        cmd.target_pairs = o.target_pairs;
        cmd.lat_iters = o.lat_iters;
        cmd.lat_warmup = o.lat_iters / 10;

        /* populate */
        fprintf(stderr, "zps-bench: [%s] populating %llu keys ... ", job.name,
                (unsigned long long)o.table_keys);
        bench_super_midline(sup, 1);
        cmd.cmd = BENCH_CMD_POPULATE;
        bench_res_t r;
        bench_job_put_cmd(&job, 0, &cmd);
        bench_job_get_res(&job, 0, &r, "populate");
        fprintf(stderr, "%.2f s (%.1f Mkeys/s), servers hold %llu keys\n", r.elapsed,
                (double)o.table_keys / r.elapsed / 1e6, (unsigned long long)r.keys_stored);
        bench_super_midline(sup, 0);
        lats[ci].pop_s = r.elapsed;
        lats[ci].stored = r.keys_stored;
        /* (replicated: every key on min(R, S) servers) */
        uint64_t want = o.table_keys * (o.replicas ? (o.replicas < S ? o.replicas : S) : 1);
        if (r.keys_stored != want)
            bench_super_die(sup, "[%s] the servers hold %llu keys, expected %llu", job.name,
                            (unsigned long long)r.keys_stored, (unsigned long long)want);

        /* latency: client 0 alone */
        fprintf(stderr, "zps-bench: [%s] latency, %u iterations ... ", job.name, o.lat_iters);
        bench_super_midline(sup, 1);
        lat_t *L = &lats[ci];
        cmd.cmd = BENCH_CMD_LAT;
        bench_job_put_cmd(&job, 0, &cmd);
        bench_job_get_res(&job, 0, &r, "latency");
        L->p50 = r.p50_us;
        L->p99 = r.p99_us;
        for (int t = 0; t < 2; t++) {
            L->req[t] = r.lat_req[t];
            L->rep[t] = r.lat_rep[t];
            cmd.req_bytes[t] = (uint64_t)llround(r.lat_req[t]);
            cmd.rep_bytes[t] = (uint64_t)llround(r.lat_rep[t]);
        }
        cmd.cmd = BENCH_CMD_RAWLAT;
        bench_job_put_cmd(&job, 0, &cmd);
        bench_job_get_res(&job, 0, &r, "raw latency");
        L->rp50 = r.p50_us;
        L->rp99 = r.p99_us;
        fprintf(stderr, "ours p50 %.1f p99 %.1f us, raw p50 %.1f p99 %.1f us\n", L->p50, L->p99,
                L->rp50, L->rp99);
        bench_super_midline(sup, 0);

        for (int si = 0; si < o.nsizes; si++) {
            cmd.k = o.sizes[si];
            for (int op = 0; op < BENCH_NOPS; op++) {
                row_t *row = &rows[ci][si][op];
                cmd.op = op;
                for (uint32_t run = 0; run < o.runs; run++) {
                    bench_res_t a;
                    cmd.cmd = BENCH_CMD_RUN;
                    bench_job_measure(&job, W, &cmd, &a);
                    row->mp[run] = (double)a.pairs / a.elapsed / 1e6;
                    row->mb[run] = (double)(a.sent + a.recv) / a.elapsed / 1e6;
                    row->pairs += a.pairs;
                    row->msgs += a.msgs;
                    row->submsgs += a.submsgs;
                    row->sent += a.sent;
                    row->recv += a.recv;
                    /* raw sizes per sub-message, from our push and pull of this size */
                    for (int t = 0; t < 2; t++) {
                        const row_t *src = op == BENCH_OP_PUSHPULL ? &rows[ci][si][t] : row;
                        cmd.req_bytes[t] = src->submsgs ? src->sent / src->submsgs : 4;
                        cmd.rep_bytes[t] = src->submsgs ? src->recv / src->submsgs : 0;
                    }
                    fprintf(stderr,
                            "zps-bench: [%s] %llu keys %-8s run %u/%u: %7.2f Mpairs/s "
                            "%8.1f MB/s (%.2f s, %llu msgs of %.0f keys)",
                            job.name, (unsigned long long)cmd.k, bench_op_name[op], run + 1, o.runs,
                            row->mp[run], row->mb[run], a.elapsed, (unsigned long long)a.msgs,
                            a.msgs ? (double)a.pairs / (double)a.msgs : 0.0);
                    bench_super_midline(sup, 1);
                    cmd.cmd = BENCH_CMD_RAW;
                    bench_job_measure(&job, W, &cmd, &a);
                    row->rmp[run] = (double)a.pairs / a.elapsed / 1e6;
                    row->rmb[run] = (double)(a.sent + a.recv) / a.elapsed / 1e6;
                    fprintf(stderr, " | raw %7.2f Mpairs/s %8.1f MB/s\n", row->rmp[run],
                            row->rmb[run]);
                    bench_super_midline(sup, 0);
                    row->nruns = run + 1;
                }
            }
        }
        bench_job_stop(&job);
    }
    double total_s = (double)(zps_now_ms() - t_start) / 1e3;

    printf("| config | op | keys/msg | Mpairs/s | MB/s | raw Mpairs/s | raw MB/s | %% of raw |\n");
    printf("|---|---|---:|---:|---:|---:|---:|---:|\n");
    for (int ci = 0; ci < o.ncfg; ci++)
        for (int si = 0; si < o.nsizes; si++)
            for (int op = 0; op < BENCH_NOPS; op++) {
                const row_t *row = &rows[ci][si][op];
                double mp = s_median(row->mp, row->nruns), rmp = s_median(row->rmp, row->nruns);
                printf("| %ux%u | %s | %.0f | %.2f | %.1f | %.2f | %.1f | %.0f%% |\n",
                       o.cfgs[ci].s, o.cfgs[ci].w, bench_op_name[op],
                       row->msgs ? (double)row->pairs / (double)row->msgs : 0.0, mp,
                       s_median(row->mb, row->nruns), rmp, s_median(row->rmb, row->nruns),
                       rmp > 0 ? 100.0 * mp / rmp : 0.0);
            }
    printf("\nMpairs/s: million keys pushed or pulled per second, all clients together "
           "(pushpull counts both).\nMB/s: wire bytes sent + received by the clients per second "
           "(1 MB = 10^6 bytes).\nraw: plain ZeroMQ DEALER/ROUTER echo with the same window and "
           "our average request/reply bytes per message, no processing.\n\n");
    printf("Latency of a 1-key push then a 1-key pull of the same key, 1 client, sequential, "
           "%u iterations:\n\n", o.lat_iters);
    for (int ci = 0; ci < o.ncfg; ci++) {
        const lat_t *L = &lats[ci];
        printf("- %ux%u: ours p50 %.1f us, p99 %.1f us | raw ZeroMQ p50 %.1f us, p99 %.1f us | "
               "ours/raw p50 %.2fx, p99 %.2fx (push %.0f+%.0f B, pull %.0f+%.0f B)\n",
               o.cfgs[ci].s, o.cfgs[ci].w, L->p50, L->p99, L->rp50, L->rp99,
               L->rp50 > 0 ? L->p50 / L->rp50 : 0.0, L->rp99 > 0 ? L->p99 / L->rp99 : 0.0,
               L->req[0], L->rep[0], L->req[1], L->rep[1]);
    }
    printf("\nTable population (client 0, %u-key pushes, checked with server stats):\n\n",
           BENCH_POP_CHUNK);
    for (int ci = 0; ci < o.ncfg; ci++)
        printf("- %ux%u: %llu keys in %.2f s (%.1f Mkeys/s); servers hold %llu keys\n",
               o.cfgs[ci].s, o.cfgs[ci].w, (unsigned long long)o.table_keys, lats[ci].pop_s,
               (double)o.table_keys / lats[ci].pop_s / 1e6, (unsigned long long)lats[ci].stored);
    printf("\ntotal time: %.1f s\n", total_s);
    fflush(stdout);
    fprintf(stderr, "zps-bench: done in %.1f s\n", total_s);

    if (jf) {
        fprintf(jf, "{\n  \"version\": \"%s\",\n  \"command\": ", ZPS_VERSION);
        s_json_str(jf, cmdline);
        fprintf(jf, ",\n  \"machine\": {\"cpu\": ");
        s_json_str(jf, cpu);
        fprintf(jf, ", \"nproc\": %ld, \"mem_total_kb\": %llu},\n", nproc, mem_kb);
        fprintf(jf, "  \"table_keys\": %llu, \"window\": %u, \"runs\": %u, \"min_time_s\": %g, "
                    "\"max_time_s\": %g, \"total_time_s\": %.1f,\n  \"rows\": [",
                (unsigned long long)o.table_keys, o.window, o.runs, o.min_s, o.max_s, total_s);
        int first = 1;
        for (int ci = 0; ci < o.ncfg; ci++)
            for (int si = 0; si < o.nsizes; si++)
                for (int op = 0; op < BENCH_NOPS; op++) {
                    const row_t *row = &rows[ci][si][op];
                    double mp = s_median(row->mp, row->nruns),
                           rmp = s_median(row->rmp, row->nruns);
                    fprintf(jf,
                            "%s\n    {\"servers\": %u, \"clients\": %u, \"op\": \"%s\", "
                            "\"keys_target\": %llu, \"keys_per_msg\": %.1f, \"mpairs_s\": %.4f, "
                            "\"mb_s\": %.2f, \"raw_mpairs_s\": %.4f, \"raw_mb_s\": %.2f, "
                            "\"pct_of_raw\": %.1f, \"req_bytes_per_submsg\": %.1f, "
                            "\"reply_bytes_per_submsg\": %.1f, \"runs_mpairs_s\": [",
                            first ? "" : ",", o.cfgs[ci].s, o.cfgs[ci].w, bench_op_name[op],
                            (unsigned long long)o.sizes[si],
                            row->msgs ? (double)row->pairs / (double)row->msgs : 0.0, mp,
                            s_median(row->mb, row->nruns), rmp, s_median(row->rmb, row->nruns),
                            rmp > 0 ? 100.0 * mp / rmp : 0.0,
                            row->submsgs ? (double)row->sent / (double)row->submsgs : 0.0,
                            row->submsgs ? (double)row->recv / (double)row->submsgs : 0.0);
                    for (uint32_t i = 0; i < row->nruns; i++)
                        fprintf(jf, "%s%.4f", i ? ", " : "", row->mp[i]);
                    fprintf(jf, "], \"raw_runs_mpairs_s\": [");
                    for (uint32_t i = 0; i < row->nruns; i++)
                        fprintf(jf, "%s%.4f", i ? ", " : "", row->rmp[i]);
                    fprintf(jf, "]}");
                    first = 0;
                }
        fprintf(jf, "\n  ],\n  \"latency\": [");
        for (int ci = 0; ci < o.ncfg; ci++) {
            const lat_t *L = &lats[ci];
            fprintf(jf,
                    "%s\n    {\"servers\": %u, \"clients\": %u, \"iterations\": %u, "
                    "\"p50_us\": %.2f, \"p99_us\": %.2f, \"raw_p50_us\": %.2f, "
                    "\"raw_p99_us\": %.2f}",
                    ci ? "," : "", o.cfgs[ci].s, o.cfgs[ci].w, o.lat_iters, L->p50, L->p99,
                    L->rp50, L->rp99);
        }
        fprintf(jf, "\n  ]\n}\n");
        char jerr[1200];
        if (zps_out_close(&jout, 1, jerr, sizeof jerr) != 0) {
            fprintf(stderr, "zps-bench: cannot write %s: %s\n", o.json, jerr);
            return 1;
        }
    }
    free(rows);
    free(lats);
    return 0;
}
