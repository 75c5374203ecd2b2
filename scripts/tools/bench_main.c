/* zps-bench: key/value push/pull throughput and latency, next to a raw
 * ZeroMQ ceiling measured in the same run.
 *
 *   zps-bench kv [--configs 1x1,2x2] [--sizes 1000,100000,1000000] [--runs 3]
 *                [--table-keys 10000000] [--window 4] [--quick] [--json FILE]
 *
 * DESIGN
 * The parent process never touches ZeroMQ: it forks every participant and
 * talks to them over pipes, so no ZeroMQ context ever crosses a fork.
 *   ps servers   S children, each a ps_server in-process (SGD lr 0.01, bound
 *                to tcp://127.0.0.1:0) reporting its endpoint over a pipe
 *   raw servers  S children, each a plain ROUTER that answers every request
 *                with a reply of the size written in the request's first 4
 *                bytes, without looking at anything else
 *   clients      W children, each with its own wk_client (to the ps servers)
 *                and, for the ceiling, S raw DEALER sockets (one per raw
 *                server); they take fixed-size commands on one pipe and
 *                answer fixed-size results on another
 * A measurement is: command to every client -> each prepares (pre-generated
 * key samples, a short warm-up) and answers READY -> the parent writes one GO
 * byte to each (the barrier) -> each runs its timed loop with `window`
 * requests in flight, waiting on the oldest, until its time budget is spent,
 * and reports pairs, wire bytes and elapsed time.  Aggregate throughput is
 * sum(pairs) / max(elapsed).  Every figure is the median over --runs.
 *
 * The raw ceiling uses the same topology (a logical request = one message to
 * each of the S raw servers), the same window, the same time budget and
 * message sizes equal to the average request and reply bytes per
 * sub-message that wk_client_traffic measured for our push / pull of that
 * size.  Raw messages are single frames sent zero-copy from a constant
 * buffer: pure transport, no encoding, no table.
 *
 * Robustness: children die with the parent (PR_SET_PDEATHSIG); SIGINT and
 * SIGTERM in the parent kill and reap every child; any client error is
 * reported with wk_client_error() and ends the run with exit status 1. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "zps_optim.h"
#include "ps_server.h"
#include "wk_client.h"
#include "zps.pb-c.h"
#include "zps_args.h"
#include "zps_err.h"
#include "zps_hash.h"
#include "zps_log.h"
#include "zps_out.h"
#include "zps_place.h"
#include "zps_rng.h"
#include "zps_time.h"

#define MAX_CFGS 16
#define MAX_SIZES 16
#define MAX_RUNS 99
#define MAX_SRV 32
#define MAX_CLI 32
#define MAX_WINDOW 1024
#define MAX_KIDS (2 * MAX_SRV + MAX_CLI)
#define NSAMP 4                 /* pre-generated key samples per size per client */
#define POP_CHUNK 1000000u      /* keys per populate push */
#define CLIENT_TIMEOUT_MS 30000
#define PARENT_TIMEOUT_MS 600000 /* hang guard on any single answer from a child */

enum { OP_PUSH = 0, OP_PULL = 1, OP_PUSHPULL = 2, NOPS = 3 };
static const char *const s_op_name[NOPS] = {"push", "pull", "pushpull"};

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
    uint32_t window;
    double min_s, max_s;
    uint64_t target_pairs;
    uint32_t lat_iters;
    const char *json;
} opts_t;

/* ---- pipe protocol ---------------------------------------------------------- */

enum { CMD_POPULATE = 1, CMD_RUN, CMD_RAW, CMD_LAT, CMD_RAWLAT, CMD_QUIT };

typedef struct {
    int cmd, op;
    uint64_t k, table_keys;
    uint32_t window, lat_iters, lat_warmup;
    double min_s, max_s;
    uint64_t target_pairs;
    uint64_t req_bytes[2], rep_bytes[2]; /* raw: bytes per sub-message, [push, pull] */
} cmd_t;

typedef struct {
    int status;                          /* 0, or failed (err says why) */
    uint64_t pairs, msgs, submsgs, sent, recv, keys_stored;
    double elapsed;                      /* seconds */
    double p50_us, p99_us;
    double lat_req[2], lat_rep[2];       /* bytes of a 1-key push / pull round trip */
    char err[640];
} res_t;

typedef struct {
    int status;
    char text[512];                      /* endpoint, or the error */
} hello_t;

/* each is written with one write(), so it arrives whole */
_Static_assert(sizeof(cmd_t) <= PIPE_BUF && sizeof(res_t) <= PIPE_BUF &&
                   sizeof(hello_t) <= PIPE_BUF,
               "pipe messages must be atomic");

/* ---- child bookkeeping (parent side) ---------------------------------------- */

static volatile pid_t g_kids[MAX_KIDS];
static int g_pfds[4 * MAX_KIDS];         /* parent-side pipe ends, closed in children */
static int g_npfds;
static pid_t g_parent;
static volatile sig_atomic_t g_stop;     /* children: set by SIGTERM/SIGINT */
static int g_midline;                    /* parent: a progress line awaits its end */

static void s_child_stop(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void s_kill_all(int sig)
{
    for (int i = 0; i < MAX_KIDS; i++)
        if (g_kids[i] > 0)
            kill(g_kids[i], sig);
}

static void s_parent_on_signal(int sig)
{
    static const char msg[] = "\nzps-bench: interrupted, killing children\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    s_kill_all(SIGKILL);
    for (int i = 0; i < MAX_KIDS; i++)
        if (g_kids[i] > 0)
            waitpid(g_kids[i], NULL, 0);
    _exit(128 + sig);
}

static void s_forget_kid(pid_t p)
{
    for (int i = 0; i < MAX_KIDS; i++)
        if (g_kids[i] == p)
            g_kids[i] = 0;
}

/* Wait for pid up to ms milliseconds; 1 if reaped. */
static int s_reap(pid_t pid, int ms, int *status)
{
    int64_t end = zps_now_ms() + ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD)) {
            s_forget_kid(pid);
            return 1;
        }
        if (zps_now_ms() >= end)
            return 0;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void s_kill_and_reap_all(void)
{
    s_kill_all(SIGKILL);
    for (int i = 0; i < MAX_KIDS; i++)
        if (g_kids[i] > 0) {
            pid_t p = g_kids[i];
            waitpid(p, NULL, 0);
            s_forget_kid(p);
        }
}

static void s_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void s_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%szps-bench: ", g_midline ? "\n" : "");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stdout);
    s_kill_and_reap_all();
    exit(1);
}

/* fork with signals blocked so a Ctrl-C never misses a just-born child.
 * In the child: default signal dispositions, die with the parent, close the
 * parent's pipe ends.  Returns the pid (parent) or 0 (child). */
static pid_t s_spawn(void)
{
    sigset_t all, old;
    sigemptyset(&all);
    sigaddset(&all, SIGINT);
    sigaddset(&all, SIGTERM);
    sigprocmask(SIG_BLOCK, &all, &old);
    fflush(stdout);
    fflush(stderr);
    pid_t p = fork();
    if (p < 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        s_die("fork failed: %s", strerror(errno));
    }
    if (p > 0) {
        int i = 0;
        while (i < MAX_KIDS && g_kids[i] > 0)
            i++;
        if (i == MAX_KIDS) {
            kill(p, SIGKILL);
            waitpid(p, NULL, 0);
            sigprocmask(SIG_SETMASK, &old, NULL);
            s_die("too many child processes");
        }
        g_kids[i] = p;
        sigprocmask(SIG_SETMASK, &old, NULL);
        return p;
    }
    for (int i = 0; i < MAX_KIDS; i++)
        g_kids[i] = 0; /* a child owns no siblings */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != g_parent)
        _exit(1);
    for (int i = 0; i < g_npfds; i++)
        close(g_pfds[i]);
    g_npfds = 0;
    sigprocmask(SIG_SETMASK, &old, NULL);
    return 0;
}

static void s_add_pfd(int fd) { g_pfds[g_npfds++] = fd; }

static void s_del_pfd(int fd)
{
    for (int i = 0; i < g_npfds; i++)
        if (g_pfds[i] == fd) {
            g_pfds[i] = g_pfds[--g_npfds];
            return;
        }
}

static int s_write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Read exactly len bytes; timeout_ms < 0 waits forever.  0, or -1 on
 * EOF / error / timeout. */
static int s_read_full(int fd, void *buf, size_t len, int timeout_ms)
{
    char *p = buf;
    int64_t end = timeout_ms < 0 ? 0 : zps_now_ms() + timeout_ms;
    while (len) {
        if (timeout_ms >= 0) {
            struct pollfd pf = {fd, POLLIN, 0};
            int64_t left = end - zps_now_ms();
            if (left <= 0)
                return -1;
            int r = poll(&pf, 1, (int)left);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return -1;
        }
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- the job of one configuration -------------------------------------------- */

typedef struct {
    uint32_t S, W;
    pid_t srv[MAX_SRV], raw[MAX_SRV], cli[MAX_CLI];
    int cmd_fd[MAX_CLI], res_fd[MAX_CLI];
    char eps[MAX_SRV][256], raw_eps[MAX_SRV][256];
    char name[32];
} job_t;

/* ---- server children ------------------------------------------------------------ */

static void s_child_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_child_stop; /* no SA_RESTART: blocking calls return EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void s_server_child(int wfd, uint32_t rank, uint32_t S, uint64_t table_keys)
{
    s_child_signals();
    hello_t h;
    memset(&h, 0, sizeof h);
    zps_log_t *log = zps_log_new("server", (int)rank, stderr);
    if (!log) {
        h.status = 1;
        snprintf(h.text, sizeof h.text, "out of memory");
        s_write_full(wfd, &h, sizeof h);
        _exit(1);
    }
    zps_log_set_level(log, ZPS_LOG_WARN);
    ps_server_conf_t conf;
    ps_server_conf_defaults(&conf);
    snprintf(conf.bind, sizeof conf.bind, "tcp://127.0.0.1:0");
    conf.rank = rank;
    conf.nservers = S;
    conf.ntables = 1;
    zps_optim_defaults(&conf.tables[0], ZPS_OPT_SGD);
    conf.tables[0].lr = 0.01f;
    conf.capacity_hint = (uint64_t)((double)table_keys / S * 1.3) + 1024;
    char err[512];
    ps_server_t *srv = ps_server_new(&conf, log, err, sizeof err);
    if (!srv) {
        h.status = 1;
        snprintf(h.text, sizeof h.text, "server %u: %.480s", rank, err);
        s_write_full(wfd, &h, sizeof h);
        _exit(1);
    }
    snprintf(h.text, sizeof h.text, "%s", ps_server_endpoint(srv));
    s_write_full(wfd, &h, sizeof h);
    close(wfd);
    int rc = ps_server_run(srv, &g_stop);
    ps_server_destroy(&srv);
    zps_log_destroy(&log);
    _exit(rc ? 1 : 0);
}

/* Raw echo: [id][request] -> [id][reply of the size in request bytes 0..3]. */
static void s_raw_server_child(int wfd)
{
    s_child_signals();
    hello_t h;
    memset(&h, 0, sizeof h);
    void *ctx = zmq_ctx_new();
    void *sock = ctx ? zmq_socket(ctx, ZMQ_ROUTER) : NULL;
    int hwm = 100000, linger = 0;
    if (sock) {
        zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    }
    if (!sock || zmq_bind(sock, "tcp://127.0.0.1:*") != 0) {
        h.status = 1;
        snprintf(h.text, sizeof h.text, "raw server: cannot bind: %s", zmq_strerror(errno));
        s_write_full(wfd, &h, sizeof h);
        _exit(1);
    }
    size_t elen = sizeof h.text;
    zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, h.text, &elen);
    s_write_full(wfd, &h, sizeof h);
    close(wfd);
    /* Replies are sent zero-copy from a constant buffer; when a bigger one is
     * needed the old one may still be queued, so it is kept until exit. */
    char *buf = NULL, *old[64];
    size_t cap = 0;
    int nold = 0;
    while (!g_stop) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        if (zmq_msg_recv(&id, sock, 0) < 0) {
            zmq_msg_close(&id);
            if (errno == EINTR)
                continue;
            break;
        }
        uint32_t rep = 0;
        int more = zmq_msg_more(&id);
        while (more) {
            zmq_msg_init(&body);
            if (zmq_msg_recv(&body, sock, 0) < 0) {
                zmq_msg_close(&body);
                break;
            }
            if (zmq_msg_size(&body) >= 4 && rep == 0)
                memcpy(&rep, zmq_msg_data(&body), 4);
            more = zmq_msg_more(&body);
            zmq_msg_close(&body);
        }
        if (rep > cap) {
            size_t nc = cap * 2 > rep ? cap * 2 : rep;
            char *nb = malloc(nc);
            if (!nb)
                _exit(1);
            memset(nb, 0x5a, nc);
            if (buf) {
                if (nold == 64)
                    _exit(1);
                old[nold++] = buf;
            }
            buf = nb;
            cap = nc;
        }
        zmq_msg_t r;
        if (rep)
            zmq_msg_init_data(&r, buf, rep, NULL, NULL); /* constant: no copy, no free */
        else
            zmq_msg_init(&r);
        if (zmq_msg_send(&id, sock, ZMQ_SNDMORE) < 0 || zmq_msg_send(&r, sock, 0) < 0) {
            zmq_msg_close(&id);
            zmq_msg_close(&r);
        }
    }
    zmq_close(sock);
    zmq_ctx_term(ctx);
    for (int i = 0; i < nold; i++)
        free(old[i]);
    free(buf);
    _exit(0);
}

/* ---- client children -------------------------------------------------------------- */

typedef struct {
    uint32_t idx, S;
    wk_client_t *wk;
    void *rctx, *rsock[MAX_SRV];
    zmq_pollitem_t ritems[MAX_SRV];
    uint64_t k, n_universe;               /* samples made for k keys out of n_universe */
    uint64_t *keys[NSAMP];
    size_t n[NSAMP], cap[NSAMP], maxn;
    uint32_t nsub[NSAMP];                 /* servers each sample touches */
    float *grads, *outs;
    size_t grads_cap, outs_cap;
    char *rbuf[2];                        /* raw request buffers, [push, pull] */
    size_t rcap[2];
    uint64_t rng;
} cl_t;

typedef struct {
    uint64_t min_msgs, max_msgs;          /* max 0 = no limit */
    double min_s, max_s;
    uint64_t target_pairs;
} lim_t;

/* Counter-based: the n-th draw is a hash of n, not a zps_rng stream (the
 * sequence fixes the benchmark's keys; kept so its figures stay comparable). */
static uint64_t s_rand(uint64_t *state) { return zps_mix64((*state)++, 0x2545f4914f6cdd1dULL); }

static int s_fail(res_t *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int s_fail(res_t *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->err, sizeof res->err, fmt, ap);
    va_end(ap);
    res->status = 1;
    return -1;
}

static int s_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (*cap >= need)
        return 0;
    void *q = realloc(*p, need * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = need;
    return 0;
}

/* NSAMP random sorted samples of ~k distinct ids out of 0..N-1: every id is
 * taken with probability k/N, by geometric skips (k log() calls, not N). */
static int s_make_samples(cl_t *c, uint64_t k, uint64_t N, uint32_t window, res_t *res)
{
    if (c->k == k && c->n_universe == N)
        return 0;
    double p = (double)k / (double)N;
    c->maxn = 0;
    for (int i = 0; i < NSAMP; i++) {
        uint64_t st = zps_mix64(k * 1000003u + (uint64_t)i, 0x5eedULL + c->idx);
        size_t want = (size_t)(k + 8 * sqrt((double)k) + 64);
        if (want > N)
            want = (size_t)N;
        void *kp = c->keys[i];
        if (s_grow(&kp, &c->cap[i], want, sizeof(uint64_t)))
            return s_fail(res, "out of memory for samples of %llu keys", (unsigned long long)k);
        c->keys[i] = kp;
        size_t n = 0;
        if (p >= 1.0) {
            for (uint64_t x = 0; x < N; x++)
                c->keys[i][n++] = x;
        } else {
            double lg = log1p(-p);
            uint64_t next = 0;
            for (;;) {
                double u = zps_rng_unit_open0(s_rand(&st));
                double skip = floor(log(u) / lg);
                if (skip >= (double)N)
                    break;
                next += (uint64_t)skip;
                if (next >= N)
                    break;
                if (n == c->cap[i]) {
                    kp = c->keys[i];
                    if (s_grow(&kp, &c->cap[i], c->cap[i] * 2, sizeof(uint64_t)))
                        return s_fail(res, "out of memory for samples");
                    c->keys[i] = kp;
                }
                c->keys[i][n++] = next++;
            }
            if (n == 0)
                c->keys[i][n++] = s_rand(&st) % N;
        }
        c->n[i] = n;
        if (n > c->maxn)
            c->maxn = n;
        uint8_t seen[MAX_SRV] = {0};
        uint32_t ns = 0;
        for (size_t j = 0; j < n && ns < c->S; j++) {
            uint32_t s = zps_place(c->keys[i][j], c->S);
            if (!seen[s]) {
                seen[s] = 1;
                ns++;
            }
        }
        c->nsub[i] = ns;
    }
    void *gp = c->grads, *op = c->outs;
    if (s_grow(&gp, &c->grads_cap, c->maxn, sizeof(float)) ||
        s_grow(&op, &c->outs_cap, c->maxn * window, sizeof(float))) {
        c->grads = gp;
        c->outs = op;
        return s_fail(res, "out of memory for %zu x %u values", c->maxn, window);
    }
    c->grads = gp;
    c->outs = op;
    uint64_t st = 77 + c->idx;
    for (size_t j = 0; j < c->maxn; j++)
        c->grads[j] = (float)((int)(s_rand(&st) % 2001) - 1000) * 1e-5f;
    memset(c->outs, 0, c->maxn * window * sizeof(float));
    c->k = k;
    c->n_universe = N;
    return 0;
}

/* Issue another request?  Not before min_msgs; then stop once min_s has
 * passed with target_pairs issued, or when the requests still in flight plus
 * this one (at the pace seen so far) would end after max_s: with 1M-key
 * messages a window of 4 can take seconds to drain. */
static int s_stop_issuing(const lim_t *L, uint64_t issued, uint64_t done, uint64_t pairs,
                          int64_t el_ns)
{
    if (L->max_msgs && issued >= L->max_msgs)
        return 1;
    if (issued < L->min_msgs)
        return 0;
    double el = (double)el_ns * 1e-9;
    double per_msg = done ? el / (double)done : 0.0;
    double end = el + (double)(issued - done + 1) * per_msg;
    return (el >= L->min_s && pairs >= L->target_pairs) || el >= L->max_s || end > L->max_s;
}

/* Our push / pull / pushpull with `window` requests in flight. */
static int s_ours_loop(cl_t *c, int op, uint32_t window, const lim_t *L, res_t *res)
{
    uint64_t tickets[MAX_WINDOW];
    size_t cnt[MAX_WINDOW];
    uint64_t issued = 0, done = 0, pairs_issued = 0, pairs = 0, sub = 0, s0, r0, s1, r1;
    wk_client_traffic(c->wk, &s0, &r0);
    int64_t t0 = zps_now_ns();
    for (;;) {
        if (issued - done < window) {
            if (!s_stop_issuing(L, issued, done, pairs_issued, zps_now_ns() - t0)) {
                int t = op == OP_PUSHPULL ? (int)(issued & 1) : op;
                uint64_t j = op == OP_PUSHPULL ? issued >> 1 : issued;
                int si = (int)(j % NSAMP);
                uint32_t slot = (uint32_t)(issued % window);
                int rc = t == OP_PUSH
                             ? wk_client_push_async(c->wk, 0, c->keys[si], c->grads, c->n[si],
                                                    &tickets[slot])
                             : wk_client_pull_async(c->wk, 0, c->keys[si], c->n[si],
                                                    c->outs + (size_t)slot * c->maxn,
                                                    &tickets[slot]);
                if (rc)
                    return s_fail(res, "%s of %zu keys failed (%s): %s", s_op_name[t], c->n[si],
                                  zps_strerror(rc), wk_client_error(c->wk));
                cnt[slot] = c->n[si];
                sub += c->nsub[si];
                pairs_issued += c->n[si];
                issued++;
                continue;
            }
            if (issued == done)
                break;
        }
        uint32_t slot = (uint32_t)(done % window);
        int rc = wk_client_wait(c->wk, tickets[slot], -1);
        if (rc)
            return s_fail(res, "waiting for a request failed (%s): %s", zps_strerror(rc),
                          wk_client_error(c->wk));
        pairs += cnt[slot];
        done++;
    }
    res->elapsed = (double)(zps_now_ns() - t0) * 1e-9;
    wk_client_traffic(c->wk, &s1, &r1);
    res->pairs = pairs;
    res->msgs = issued;
    res->submsgs = sub;
    res->sent = s1 - s0;
    res->recv = r1 - r0;
    return 0;
}

static int s_raw_connect(cl_t *c, const job_t *job, res_t *res)
{
    if (c->rctx)
        return 0;
    c->rctx = zmq_ctx_new();
    if (!c->rctx)
        return s_fail(res, "cannot create a ZeroMQ context: %s", zmq_strerror(errno));
    for (uint32_t s = 0; s < c->S; s++) {
        void *k = zmq_socket(c->rctx, ZMQ_DEALER);
        if (!k)
            return s_fail(res, "cannot create a raw socket: %s", zmq_strerror(errno));
        int hwm = 100000, linger = 0, timeo = CLIENT_TIMEOUT_MS;
        zmq_setsockopt(k, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(k, ZMQ_RCVHWM, &hwm, sizeof hwm);
        zmq_setsockopt(k, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(k, ZMQ_RCVTIMEO, &timeo, sizeof timeo);
        zmq_setsockopt(k, ZMQ_SNDTIMEO, &timeo, sizeof timeo);
        if (zmq_connect(k, job->raw_eps[s]) != 0)
            return s_fail(res, "cannot connect to raw server %s: %s", job->raw_eps[s],
                          zmq_strerror(errno));
        c->rsock[s] = k;
        c->ritems[s].socket = k;
        c->ritems[s].events = ZMQ_POLLIN;
    }
    return 0;
}

/* Request buffer of type t (0 push, 1 pull): len bytes announcing rep bytes. */
static int s_raw_buf(cl_t *c, int t, size_t len, size_t rep, res_t *res)
{
    if (len < 4)
        len = 4;
    void *p = c->rbuf[t];
    if (s_grow(&p, &c->rcap[t], len, 1))
        return s_fail(res, "out of memory for a raw message of %zu bytes", len);
    c->rbuf[t] = p;
    memset(c->rbuf[t], 0xa5, len);
    uint32_t r32 = (uint32_t)rep;
    memcpy(c->rbuf[t], &r32, 4);
    return 0;
}

static int s_raw_send(cl_t *c, uint32_t s, int t, size_t len, res_t *res)
{
    zmq_msg_t m;
    zmq_msg_init_data(&m, c->rbuf[t], len < 4 ? 4 : len, NULL, NULL); /* constant: no copy */
    if (zmq_msg_send(&m, c->rsock[s], 0) < 0) {
        zmq_msg_close(&m);
        return s_fail(res, "raw send to %u failed: %s", s, zmq_strerror(errno));
    }
    return 0;
}

/* The same traffic pattern over plain DEALER/ROUTER: a logical request is one
 * message of req[t] bytes to each of the S raw servers. */
static int s_raw_loop(cl_t *c, int op, uint32_t window, const lim_t *L, const size_t req[2],
                      res_t *res)
{
    size_t cnt[MAX_WINDOW];
    uint64_t rcv[MAX_SRV] = {0};
    uint64_t issued = 0, done = 0, pairs_issued = 0, pairs = 0, sent = 0, recvd = 0;
    uint32_t S = c->S;
    int64_t t0 = zps_now_ns();
    for (;;) {
        if (issued - done < window) {
            if (!s_stop_issuing(L, issued, done, pairs_issued, zps_now_ns() - t0)) {
                int t = op == OP_PUSHPULL ? (int)(issued & 1) : op;
                uint64_t j = op == OP_PUSHPULL ? issued >> 1 : issued;
                int si = (int)(j % NSAMP);
                for (uint32_t s = 0; s < S; s++)
                    if (s_raw_send(c, s, t, req[t], res))
                        return -1;
                sent += (uint64_t)(req[t] < 4 ? 4 : req[t]) * S;
                cnt[issued % window] = c->n[si];
                pairs_issued += c->n[si];
                issued++;
                continue;
            }
            if (issued == done)
                break;
        }
        int r = zmq_poll(c->ritems, (int)S, CLIENT_TIMEOUT_MS);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return s_fail(res, "raw servers did not answer within %d ms", CLIENT_TIMEOUT_MS);
        for (uint32_t s = 0; s < S; s++) {
            if (!(c->ritems[s].revents & ZMQ_POLLIN))
                continue;
            for (;;) {
                zmq_msg_t m;
                zmq_msg_init(&m);
                if (zmq_msg_recv(&m, c->rsock[s], ZMQ_DONTWAIT) < 0) {
                    zmq_msg_close(&m);
                    break;
                }
                recvd += zmq_msg_size(&m);
                rcv[s]++;
                zmq_msg_close(&m);
            }
        }
        uint64_t mn = rcv[0];
        for (uint32_t s = 1; s < S; s++)
            if (rcv[s] < mn)
                mn = rcv[s];
        for (; done < mn; done++)
            pairs += cnt[done % window];
    }
    res->elapsed = (double)(zps_now_ns() - t0) * 1e-9;
    res->pairs = pairs;
    res->msgs = issued;
    res->submsgs = issued * S;
    res->sent = sent;
    res->recv = recvd;
    return 0;
}

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double s_pct(const int64_t *v, size_t n, double q)
{
    size_t i = (size_t)ceil(q * (double)n);
    i = i ? i - 1 : 0;
    return (double)v[i < n ? i : n - 1];
}

/* 1-key push then 1-key pull of the same key, sequential. */
static int s_ours_latency(cl_t *c, const cmd_t *cmd, res_t *res)
{
    uint32_t total = cmd->lat_warmup + cmd->lat_iters;
    int64_t *lat = malloc(cmd->lat_iters * sizeof *lat);
    if (!lat)
        return s_fail(res, "out of memory");
    uint64_t st = 99 + c->idx;
    double b[4] = {0};
    for (uint32_t i = 0; i < total; i++) {
        uint64_t key = s_rand(&st) % cmd->table_keys, s0, r0, s1, r1, s2, r2;
        float g = 0.001f, w;
        wk_client_traffic(c->wk, &s0, &r0);
        int64_t t0 = zps_now_ns();
        int rc = wk_client_push(c->wk, 0, &key, &g, 1);
        wk_client_traffic(c->wk, &s1, &r1);
        if (!rc)
            rc = wk_client_pull(c->wk, 0, &key, 1, &w);
        int64_t t1 = zps_now_ns();
        wk_client_traffic(c->wk, &s2, &r2);
        if (rc) {
            free(lat);
            return s_fail(res, "1-key push/pull failed (%s): %s", zps_strerror(rc),
                          wk_client_error(c->wk));
        }
        if (i >= cmd->lat_warmup) {
            lat[i - cmd->lat_warmup] = t1 - t0;
            b[0] += (double)(s1 - s0);
            b[1] += (double)(r1 - r0);
            b[2] += (double)(s2 - s1);
            b[3] += (double)(r2 - r1);
        }
    }
    qsort(lat, cmd->lat_iters, sizeof *lat, s_cmp_i64);
    res->p50_us = s_pct(lat, cmd->lat_iters, 0.50) / 1e3;
    res->p99_us = s_pct(lat, cmd->lat_iters, 0.99) / 1e3;
    res->lat_req[0] = b[0] / cmd->lat_iters;
    res->lat_rep[0] = b[1] / cmd->lat_iters;
    res->lat_req[1] = b[2] / cmd->lat_iters;
    res->lat_rep[1] = b[3] / cmd->lat_iters;
    free(lat);
    return 0;
}

/* Two sequential raw round trips with the sizes of our 1-key push and pull. */
static int s_raw_latency(cl_t *c, const cmd_t *cmd, res_t *res)
{
    uint32_t total = cmd->lat_warmup + cmd->lat_iters;
    int64_t *lat = malloc(cmd->lat_iters * sizeof *lat);
    if (!lat)
        return s_fail(res, "out of memory");
    for (int t = 0; t < 2; t++)
        if (s_raw_buf(c, t, cmd->req_bytes[t], cmd->rep_bytes[t], res)) {
            free(lat);
            return -1;
        }
    uint64_t st = 99 + c->idx;
    for (uint32_t i = 0; i < total; i++) {
        uint64_t key = s_rand(&st) % cmd->table_keys;
        uint32_t s = zps_place(key, c->S);
        int64_t t0 = zps_now_ns();
        for (int t = 0; t < 2; t++) {
            if (s_raw_send(c, s, t, cmd->req_bytes[t], res)) {
                free(lat);
                return -1;
            }
            zmq_msg_t m;
            zmq_msg_init(&m);
            int r;
            while ((r = zmq_msg_recv(&m, c->rsock[s], 0)) < 0 && errno == EINTR)
                ;
            zmq_msg_close(&m);
            if (r < 0) {
                free(lat);
                return s_fail(res, "raw server %u did not answer: %s", s, zmq_strerror(errno));
            }
        }
        int64_t t1 = zps_now_ns();
        if (i >= cmd->lat_warmup)
            lat[i - cmd->lat_warmup] = t1 - t0;
    }
    qsort(lat, cmd->lat_iters, sizeof *lat, s_cmp_i64);
    res->p50_us = s_pct(lat, cmd->lat_iters, 0.50) / 1e3;
    res->p99_us = s_pct(lat, cmd->lat_iters, 0.99) / 1e3;
    free(lat);
    return 0;
}

/* Client 0 pushes ids 0..N-1 once, in POP_CHUNK-key pushes, then reads the
 * servers' key counts. */
static int s_populate(cl_t *c, const cmd_t *cmd, res_t *res)
{
    uint64_t N = cmd->table_keys;
    size_t chunk = N < POP_CHUNK ? (size_t)N : POP_CHUNK;
    uint64_t *keys = malloc(chunk * sizeof *keys);
    float *g = malloc(chunk * sizeof *g);
    uint64_t tickets[MAX_WINDOW];
    if (!keys || !g) {
        free(keys);
        free(g);
        return s_fail(res, "out of memory");
    }
    for (size_t i = 0; i < chunk; i++)
        g[i] = 0.001f;
    int64_t t0 = zps_now_ns();
    uint64_t issued = 0, done = 0, nchunks = (N + chunk - 1) / chunk;
    uint32_t win = cmd->window < 4 ? cmd->window : 4; /* 1M-key pushes: bound the memory */
    int rc = 0;
    while (done < nchunks) {
        if (issued < nchunks && issued - done < win) {
            uint64_t lo = issued * chunk, hi = lo + chunk < N ? lo + chunk : N;
            for (uint64_t k = lo; k < hi; k++)
                keys[k - lo] = k;
            rc = wk_client_push_async(c->wk, 0, keys, g, (size_t)(hi - lo),
                                      &tickets[issued % win]);
            if (rc)
                break;
            issued++;
            continue;
        }
        rc = wk_client_wait(c->wk, tickets[done % win], -1);
        if (rc)
            break;
        done++;
    }
    free(keys);
    free(g);
    if (rc)
        return s_fail(res, "populate push failed (%s): %s", zps_strerror(rc),
                      wk_client_error(c->wk));
    res->elapsed = (double)(zps_now_ns() - t0) * 1e-9;
    res->pairs = N;
    uint64_t total = 0;
    for (uint32_t s = 0; s < c->S; s++) {
        wk_server_stats_t st;
        rc = wk_client_stats(c->wk, s, &st);
        if (rc)
            return s_fail(res, "stats of server %u failed (%s): %s", s, zps_strerror(rc),
                          wk_client_error(c->wk));
        total += st.keys_stored;
    }
    res->keys_stored = total;
    return 0;
}

static void s_send_res(int wfd, const res_t *res)
{
    if (s_write_full(wfd, res, sizeof *res) != 0)
        _exit(1); /* the parent is gone */
}

static int s_wait_go(int rfd)
{
    char go;
    return s_read_full(rfd, &go, 1, -1) == 0 && go == 'G' ? 0 : -1;
}

static void s_client_child(const job_t *job, uint32_t idx, int rfd, int wfd)
{
    signal(SIGPIPE, SIG_IGN);
    cl_t c;
    memset(&c, 0, sizeof c);
    c.idx = idx;
    c.S = job->S;
    res_t res;
    memset(&res, 0, sizeof res);
    const char *eps[MAX_SRV];
    for (uint32_t s = 0; s < job->S; s++)
        eps[s] = job->eps[s];
    wk_client_conf_t conf;
    wk_client_conf_defaults(&conf);
    conf.servers = eps;
    conf.nservers = job->S;
    conf.role = ZPS__ROLE__ROLE_TOOL;
    conf.rank = idx;
    conf.timeout_ms = CLIENT_TIMEOUT_MS;
    conf.max_inflight = 2 * MAX_WINDOW;
    char err[512];
    c.wk = wk_client_new(&conf, err, sizeof err);
    if (!c.wk) {
        s_fail(&res, "cannot connect: %s", err);
        s_send_res(wfd, &res);
        _exit(1);
    }
    s_send_res(wfd, &res); /* connected */
    for (;;) {
        cmd_t cmd;
        if (s_read_full(rfd, &cmd, sizeof cmd, -1) != 0)
            break;
        memset(&res, 0, sizeof res);
        int rc = 0;
        lim_t run = {cmd.window, 0, cmd.min_s, cmd.max_s, cmd.target_pairs};
        lim_t warm = {cmd.window, cmd.window, 0, 0, 0};
        size_t req[2] = {cmd.req_bytes[0], cmd.req_bytes[1]};
        switch (cmd.cmd) {
        case CMD_POPULATE: rc = s_populate(&c, &cmd, &res); break;
        case CMD_RUN:
        case CMD_RAW:
            rc = s_make_samples(&c, cmd.k, cmd.table_keys, cmd.window, &res);
            if (!rc && cmd.cmd == CMD_RAW) {
                rc = s_raw_connect(&c, job, &res);
                for (int t = 0; t < 2 && !rc; t++)
                    rc = s_raw_buf(&c, t, cmd.req_bytes[t], cmd.rep_bytes[t], &res);
            }
            if (!rc) { /* warm-up: one window of the same requests, untimed */
                res_t w;
                memset(&w, 0, sizeof w);
                rc = cmd.cmd == CMD_RUN ? s_ours_loop(&c, cmd.op, cmd.window, &warm, &w)
                                        : s_raw_loop(&c, cmd.op, cmd.window, &warm, req, &w);
                if (rc)
                    res = w;
            }
            s_send_res(wfd, &res); /* ready (or failed) */
            if (rc)
                _exit(1);
            if (s_wait_go(rfd) != 0)
                _exit(1);
            rc = cmd.cmd == CMD_RUN ? s_ours_loop(&c, cmd.op, cmd.window, &run, &res)
                                    : s_raw_loop(&c, cmd.op, cmd.window, &run, req, &res);
            break;
        case CMD_LAT: rc = s_ours_latency(&c, &cmd, &res); break;
        case CMD_RAWLAT:
            rc = s_raw_connect(&c, job, &res);
            if (!rc)
                rc = s_raw_latency(&c, &cmd, &res);
            break;
        case CMD_QUIT: goto quit;
        default: rc = s_fail(&res, "unknown command %d", cmd.cmd); break;
        }
        s_send_res(wfd, &res);
        if (rc)
            _exit(1);
    }
quit:
    wk_client_destroy(&c.wk);
    for (uint32_t s = 0; s < c.S; s++)
        if (c.rsock[s])
            zmq_close(c.rsock[s]);
    if (c.rctx)
        zmq_ctx_term(c.rctx);
    _exit(0);
}

/* ---- parent: starting and stopping a configuration ------------------------------ */

static void s_read_hello(const job_t *job, int fd, const char *what, uint32_t i, char *out,
                         size_t len)
{
    hello_t h;
    if (s_read_full(fd, &h, sizeof h, PARENT_TIMEOUT_MS) != 0)
        s_die("[%s] %s %u did not start", job->name, what, i);
    if (h.status)
        s_die("[%s] %s %u failed to start: %s", job->name, what, i, h.text);
    snprintf(out, len, "%.255s", h.text);
}

/* A server that died would only show as a client timeout much later. */
static void s_check_servers(const job_t *job)
{
    for (uint32_t s = 0; s < job->S; s++) {
        pid_t pp[2] = {job->srv[s], job->raw[s]};
        for (int k = 0; k < 2; k++) {
            int st;
            if (pp[k] > 0 && waitpid(pp[k], &st, WNOHANG) == pp[k]) {
                s_forget_kid(pp[k]);
                if (WIFSIGNALED(st))
                    s_die("[%s] %s %u died (signal %d)", job->name, k ? "raw server" : "server",
                          s, WTERMSIG(st));
                s_die("[%s] %s %u exited with status %d", job->name,
                      k ? "raw server" : "server", s, WEXITSTATUS(st));
            }
        }
    }
}

static void s_get_res(const job_t *job, uint32_t i, res_t *res, const char *what)
{
    /* results are written whole (< PIPE_BUF): once readable, all of it is there */
    int64_t end = zps_now_ms() + PARENT_TIMEOUT_MS;
    for (;;) {
        struct pollfd pf = {job->res_fd[i], POLLIN, 0};
        int r = poll(&pf, 1, 200);
        if (r > 0)
            break;
        if (r < 0 && errno != EINTR)
            s_die("poll: %s", strerror(errno));
        s_check_servers(job);
        if (zps_now_ms() > end)
            s_die("[%s] client %u hung during %s", job->name, i, what);
    }
    if (s_read_full(job->res_fd[i], res, sizeof *res, PARENT_TIMEOUT_MS) != 0)
        s_die("[%s] client %u died during %s", job->name, i, what);
    if (res->status)
        s_die("[%s] client %u: %s: %s", job->name, i, what, res->err);
}

static void s_put_cmd(const job_t *job, uint32_t i, const cmd_t *cmd)
{
    if (s_write_full(job->cmd_fd[i], cmd, sizeof *cmd) != 0)
        s_die("[%s] client %u is gone", job->name, i);
}

static void s_job_start(job_t *job, uint32_t S, uint32_t W, const opts_t *o)
{
    memset(job, 0, sizeof *job);
    job->S = S;
    job->W = W;
    snprintf(job->name, sizeof job->name, "%ux%u", S, W);
    for (int kind = 0; kind < 2; kind++) {
        for (uint32_t s = 0; s < S; s++) {
            int p[2];
            if (pipe(p) != 0)
                s_die("pipe: %s", strerror(errno));
            s_add_pfd(p[0]);
            pid_t pid = s_spawn();
            if (pid == 0) { /* s_spawn closed p[0] */
                if (kind == 0)
                    s_server_child(p[1], s, S, o->table_keys);
                else
                    s_raw_server_child(p[1]);
            }
            close(p[1]);
            if (kind == 0) {
                job->srv[s] = pid;
                s_read_hello(job, p[0], "server", s, job->eps[s], sizeof job->eps[s]);
            } else {
                job->raw[s] = pid;
                s_read_hello(job, p[0], "raw server", s, job->raw_eps[s],
                             sizeof job->raw_eps[s]);
            }
            s_del_pfd(p[0]);
            close(p[0]);
        }
    }
    for (uint32_t w = 0; w < W; w++) {
        int cp[2], rp[2];
        if (pipe(cp) != 0 || pipe(rp) != 0)
            s_die("pipe: %s", strerror(errno));
        s_add_pfd(cp[1]);
        s_add_pfd(rp[0]);
        pid_t pid = s_spawn();
        if (pid == 0) /* s_spawn closed cp[1] and rp[0] */
            s_client_child(job, w, cp[0], rp[1]);
        close(cp[0]);
        close(rp[1]);
        job->cli[w] = pid;
        job->cmd_fd[w] = cp[1];
        job->res_fd[w] = rp[0];
    }
    for (uint32_t w = 0; w < W; w++) {
        res_t r;
        s_get_res(job, w, &r, "connecting");
    }
}

static void s_job_stop(job_t *job)
{
    cmd_t q;
    memset(&q, 0, sizeof q);
    q.cmd = CMD_QUIT;
    for (uint32_t w = 0; w < job->W; w++) {
        s_write_full(job->cmd_fd[w], &q, sizeof q);
        s_del_pfd(job->cmd_fd[w]);
        s_del_pfd(job->res_fd[w]);
        close(job->cmd_fd[w]);
        close(job->res_fd[w]);
    }
    for (uint32_t w = 0; w < job->W; w++)
        if (!s_reap(job->cli[w], 5000, NULL)) {
            kill(job->cli[w], SIGKILL);
            s_reap(job->cli[w], 5000, NULL);
        }
    for (uint32_t s = 0; s < job->S; s++) {
        kill(job->srv[s], SIGTERM);
        kill(job->raw[s], SIGTERM);
    }
    for (uint32_t s = 0; s < job->S; s++) {
        pid_t pp[2] = {job->srv[s], job->raw[s]};
        for (int i = 0; i < 2; i++) {
            int st = 0;
            if (!s_reap(pp[i], 5000, &st)) {
                fprintf(stderr, "zps-bench: [%s] %s %u did not stop, killing it\n", job->name,
                        i ? "raw server" : "server", s);
                kill(pp[i], SIGKILL);
                s_reap(pp[i], 5000, NULL);
            }
        }
    }
}

/* One barrier-released measurement on clients 0..nc-1; aggregate into *agg. */
static void s_measure(const job_t *job, uint32_t nc, const cmd_t *cmd, res_t *agg)
{
    const char *what = cmd->cmd == CMD_RUN ? s_op_name[cmd->op] : "raw ZeroMQ run";
    for (uint32_t i = 0; i < nc; i++)
        s_put_cmd(job, i, cmd);
    res_t r;
    for (uint32_t i = 0; i < nc; i++)
        s_get_res(job, i, &r, what); /* ready */
    for (uint32_t i = 0; i < nc; i++)
        if (s_write_full(job->cmd_fd[i], "G", 1) != 0)
            s_die("[%s] client %u is gone", job->name, i);
    memset(agg, 0, sizeof *agg);
    for (uint32_t i = 0; i < nc; i++) {
        s_get_res(job, i, &r, what);
        agg->pairs += r.pairs;
        agg->msgs += r.msgs;
        agg->submsgs += r.submsgs;
        agg->sent += r.sent;
        agg->recv += r.recv;
        if (r.elapsed > agg->elapsed)
            agg->elapsed = r.elapsed;
    }
}

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

static void s_usage(FILE *f)
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
        if (zps_parse_u32(tok, &s) || zps_parse_u32(x + 1, &w) || s < 1 || s > MAX_SRV ||
            w < 1 || w > MAX_CLI)
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

static int s_kv(int argc, char **argv, const char *cmdline)
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
           O_HELP };
    static const struct option opts[] = {
        {"configs", 1, 0, O_CFG}, {"sizes", 1, 0, O_SIZES}, {"runs", 1, 0, O_RUNS},
        {"table-keys", 1, 0, O_TK}, {"window", 1, 0, O_WIN}, {"min-time", 1, 0, O_MIN},
        {"max-time", 1, 0, O_MAX}, {"target-pairs", 1, 0, O_TP}, {"lat-iters", 1, 0, O_LAT},
        {"quick", 0, 0, O_QUICK}, {"json", 1, 0, O_JSON}, {"help", 0, 0, O_HELP},
        {0, 0, 0, 0}};
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
            r = zps_parse_u32(optarg, &o.window) || o.window < 1 || o.window > MAX_WINDOW;
            break;
        case O_MIN: r = zps_parse_double(optarg, &o.min_s) || o.min_s < 0 || o.min_s > 3600; break;
        case O_MAX: r = zps_parse_double(optarg, &o.max_s) || o.max_s <= 0 || o.max_s > 3600; break;
        case O_TP: r = zps_parse_u64(optarg, &o.target_pairs); break;
        case O_LAT: r = zps_parse_u32(optarg, &o.lat_iters) || o.lat_iters < 10; break;
        case O_QUICK: quick = 1; break;
        case O_JSON: o.json = optarg; break;
        case O_HELP: s_usage(stdout); return 0;
        default:
            fprintf(stderr, "zps-bench: %s\n", oerr);
            bad = 1;
            break;
        }
        if (r) {
            fprintf(stderr, "zps-bench: invalid value '%s' for --%s: %s\n", optarg, opts[li].name,
                    zps_args_why(optarg, c == O_MIN || c == O_MAX ? ZPS_ARGS_REAL : ZPS_ARGS_UINT));
            bad = 1;
        }
    }
    if (!bad && s_parse_configs(a_cfg, &o)) {
        fprintf(stderr, "zps-bench: invalid --configs '%s' (want SxW,... with 1 <= S <= %d, "
                "1 <= W <= %d)\n", a_cfg, MAX_SRV, MAX_CLI);
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
        s_usage(stderr);
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
    printf("table: %llu keys (ids 0..N-1, SGD lr 0.01, dim 1); window %u per client; "
           "median of %u run%s; %.1f-%.1f s per run\n\n",
           (unsigned long long)o.table_keys, o.window, o.runs, o.runs == 1 ? "" : "s", o.min_s,
           o.max_s);
    fflush(stdout);

    row_t(*rows)[MAX_SIZES][NOPS] = calloc((size_t)o.ncfg, sizeof *rows);
    lat_t *lats = calloc((size_t)o.ncfg, sizeof *lats);
    if (!rows || !lats)
        s_die("out of memory");
    int64_t t_start = zps_now_ms();

    for (int ci = 0; ci < o.ncfg; ci++) {
        uint32_t S = o.cfgs[ci].s, W = o.cfgs[ci].w;
        job_t job;
        fprintf(stderr, "zps-bench: [%ux%u] starting %u server(s), %u raw echo server(s), "
                "%u client(s)\n", S, W, S, S, W);
        s_job_start(&job, S, W, &o);

        cmd_t cmd;
        memset(&cmd, 0, sizeof cmd);
        cmd.table_keys = o.table_keys;
        cmd.window = o.window;
        cmd.min_s = o.min_s;
        cmd.max_s = o.max_s;
        cmd.target_pairs = o.target_pairs;
        cmd.lat_iters = o.lat_iters;
        cmd.lat_warmup = o.lat_iters / 10;

        /* populate */
        fprintf(stderr, "zps-bench: [%s] populating %llu keys ... ", job.name,
                (unsigned long long)o.table_keys);
        g_midline = 1;
        cmd.cmd = CMD_POPULATE;
        res_t r;
        s_put_cmd(&job, 0, &cmd);
        s_get_res(&job, 0, &r, "populate");
        fprintf(stderr, "%.2f s (%.1f Mkeys/s), servers hold %llu keys\n", r.elapsed,
                (double)o.table_keys / r.elapsed / 1e6, (unsigned long long)r.keys_stored);
        g_midline = 0;
        lats[ci].pop_s = r.elapsed;
        lats[ci].stored = r.keys_stored;
        if (r.keys_stored != o.table_keys)
            s_die("[%s] the servers hold %llu keys, expected %llu", job.name,
                  (unsigned long long)r.keys_stored, (unsigned long long)o.table_keys);

        /* latency: client 0 alone */
        fprintf(stderr, "zps-bench: [%s] latency, %u iterations ... ", job.name, o.lat_iters);
        g_midline = 1;
        lat_t *L = &lats[ci];
        cmd.cmd = CMD_LAT;
        s_put_cmd(&job, 0, &cmd);
        s_get_res(&job, 0, &r, "latency");
        L->p50 = r.p50_us;
        L->p99 = r.p99_us;
        for (int t = 0; t < 2; t++) {
            L->req[t] = r.lat_req[t];
            L->rep[t] = r.lat_rep[t];
            cmd.req_bytes[t] = (uint64_t)llround(r.lat_req[t]);
            cmd.rep_bytes[t] = (uint64_t)llround(r.lat_rep[t]);
        }
        cmd.cmd = CMD_RAWLAT;
        s_put_cmd(&job, 0, &cmd);
        s_get_res(&job, 0, &r, "raw latency");
        L->rp50 = r.p50_us;
        L->rp99 = r.p99_us;
        fprintf(stderr, "ours p50 %.1f p99 %.1f us, raw p50 %.1f p99 %.1f us\n", L->p50, L->p99,
                L->rp50, L->rp99);
        g_midline = 0;

        for (int si = 0; si < o.nsizes; si++) {
            cmd.k = o.sizes[si];
            for (int op = 0; op < NOPS; op++) {
                row_t *row = &rows[ci][si][op];
                cmd.op = op;
                for (uint32_t run = 0; run < o.runs; run++) {
                    res_t a;
                    cmd.cmd = CMD_RUN;
                    s_measure(&job, W, &cmd, &a);
                    row->mp[run] = (double)a.pairs / a.elapsed / 1e6;
                    row->mb[run] = (double)(a.sent + a.recv) / a.elapsed / 1e6;
                    row->pairs += a.pairs;
                    row->msgs += a.msgs;
                    row->submsgs += a.submsgs;
                    row->sent += a.sent;
                    row->recv += a.recv;
                    /* raw sizes per sub-message, from our push and pull of this size */
                    for (int t = 0; t < 2; t++) {
                        const row_t *src = op == OP_PUSHPULL ? &rows[ci][si][t] : row;
                        cmd.req_bytes[t] = src->submsgs ? src->sent / src->submsgs : 4;
                        cmd.rep_bytes[t] = src->submsgs ? src->recv / src->submsgs : 0;
                    }
                    fprintf(stderr,
                            "zps-bench: [%s] %llu keys %-8s run %u/%u: %7.2f Mpairs/s "
                            "%8.1f MB/s (%.2f s, %llu msgs of %.0f keys)",
                            job.name, (unsigned long long)cmd.k, s_op_name[op], run + 1, o.runs,
                            row->mp[run], row->mb[run], a.elapsed, (unsigned long long)a.msgs,
                            a.msgs ? (double)a.pairs / (double)a.msgs : 0.0);
                    g_midline = 1;
                    cmd.cmd = CMD_RAW;
                    s_measure(&job, W, &cmd, &a);
                    row->rmp[run] = (double)a.pairs / a.elapsed / 1e6;
                    row->rmb[run] = (double)(a.sent + a.recv) / a.elapsed / 1e6;
                    fprintf(stderr, " | raw %7.2f Mpairs/s %8.1f MB/s\n", row->rmp[run],
                            row->rmb[run]);
                    g_midline = 0;
                    row->nruns = run + 1;
                }
            }
        }
        s_job_stop(&job);
    }
    double total_s = (double)(zps_now_ms() - t_start) / 1e3;

    printf("| config | op | keys/msg | Mpairs/s | MB/s | raw Mpairs/s | raw MB/s | %% of raw |\n");
    printf("|---|---|---:|---:|---:|---:|---:|---:|\n");
    for (int ci = 0; ci < o.ncfg; ci++)
        for (int si = 0; si < o.nsizes; si++)
            for (int op = 0; op < NOPS; op++) {
                const row_t *row = &rows[ci][si][op];
                double mp = s_median(row->mp, row->nruns), rmp = s_median(row->rmp, row->nruns);
                printf("| %ux%u | %s | %.0f | %.2f | %.1f | %.2f | %.1f | %.0f%% |\n",
                       o.cfgs[ci].s, o.cfgs[ci].w, s_op_name[op],
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
           POP_CHUNK);
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
                for (int op = 0; op < NOPS; op++) {
                    const row_t *row = &rows[ci][si][op];
                    double mp = s_median(row->mp, row->nruns),
                           rmp = s_median(row->rmp, row->nruns);
                    fprintf(jf,
                            "%s\n    {\"servers\": %u, \"clients\": %u, \"op\": \"%s\", "
                            "\"keys_target\": %llu, \"keys_per_msg\": %.1f, \"mpairs_s\": %.4f, "
                            "\"mb_s\": %.2f, \"raw_mpairs_s\": %.4f, \"raw_mb_s\": %.2f, "
                            "\"pct_of_raw\": %.1f, \"req_bytes_per_submsg\": %.1f, "
                            "\"reply_bytes_per_submsg\": %.1f, \"runs_mpairs_s\": [",
                            first ? "" : ",", o.cfgs[ci].s, o.cfgs[ci].w, s_op_name[op],
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

int main(int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        s_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("zps-bench %s\n", ZPS_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "kv") != 0) {
        fprintf(stderr, "zps-bench: unknown subcommand '%s'\n", argv[1]);
        s_usage(stderr);
        return 2;
    }
    char cmdline[2048];
    size_t n = 0;
    cmdline[0] = 0;
    for (int i = 0; i < argc && n < sizeof cmdline - 1; i++)
        n += (size_t)snprintf(cmdline + n, sizeof cmdline - n, "%s%s", i ? " " : "", argv[i]);
    if (n >= sizeof cmdline)
        n = sizeof cmdline - 1;

    g_parent = getpid();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_parent_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return s_kv(argc - 1, argv + 1, cmdline);
}
