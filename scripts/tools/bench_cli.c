/* bench_cli: a zps-bench client child (see bench_cli.h). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "bench_cli.h"
#include "bench_pipe.h"
#include "wk_client.h"
#include "zps.pb-c.h"
#include "zps_err.h"
#include "zps_hash.h"
#include "zps_place.h"
#include "zps_rng.h"
#include "zps_sort.h"
#include "zps_time.h"

#define NSAMP 4                 /* pre-generated key samples per size per client */

typedef struct {
    uint32_t idx, S;
    wk_client_t *wk;
    void *rctx, *rsock[BENCH_MAX_SRV];
    zmq_pollitem_t ritems[BENCH_MAX_SRV];
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

static int s_fail(bench_res_t *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int s_fail(bench_res_t *res, const char *fmt, ...)
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
static int s_make_samples(cl_t *c, uint64_t k, uint64_t N, uint32_t window, bench_res_t *res)
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
        uint8_t seen[BENCH_MAX_SRV] = {0};
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
static int s_ours_loop(cl_t *c, int op, uint32_t window, const lim_t *L, bench_res_t *res)
{
    uint64_t tickets[BENCH_MAX_WINDOW];
    size_t cnt[BENCH_MAX_WINDOW];
    uint64_t issued = 0, done = 0, pairs_issued = 0, pairs = 0, sub = 0, s0, r0, s1, r1;
    wk_client_traffic(c->wk, &s0, &r0);
    int64_t t0 = zps_now_ns();
    for (;;) {
        if (issued - done < window) {
            if (!s_stop_issuing(L, issued, done, pairs_issued, zps_now_ns() - t0)) {
                int t = op == BENCH_OP_PUSHPULL ? (int)(issued & 1) : op;
                uint64_t j = op == BENCH_OP_PUSHPULL ? issued >> 1 : issued;
                int si = (int)(j % NSAMP);
                uint32_t slot = (uint32_t)(issued % window);
                int rc = t == BENCH_OP_PUSH
                             ? wk_client_push_async(c->wk, 0, c->keys[si], c->grads, c->n[si],
                                                    &tickets[slot])
                             : wk_client_pull_async(c->wk, 0, c->keys[si], c->n[si],
                                                    c->outs + (size_t)slot * c->maxn,
                                                    &tickets[slot]);
                if (rc)
                    return s_fail(res, "%s of %zu keys failed (%s): %s", bench_op_name[t], c->n[si],
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

static int s_raw_connect(cl_t *c, const bench_job_t *job, bench_res_t *res)
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
        int hwm = 100000, linger = 0, timeo = BENCH_CLIENT_TIMEOUT_MS;
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
static int s_raw_buf(cl_t *c, int t, size_t len, size_t rep, bench_res_t *res)
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

static int s_raw_send(cl_t *c, uint32_t s, int t, size_t len, bench_res_t *res)
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
                      bench_res_t *res)
{
    size_t cnt[BENCH_MAX_WINDOW];
    uint64_t rcv[BENCH_MAX_SRV] = {0};
    uint64_t issued = 0, done = 0, pairs_issued = 0, pairs = 0, sent = 0, recvd = 0;
    uint32_t S = c->S;
    int64_t t0 = zps_now_ns();
    for (;;) {
        if (issued - done < window) {
            if (!s_stop_issuing(L, issued, done, pairs_issued, zps_now_ns() - t0)) {
                int t = op == BENCH_OP_PUSHPULL ? (int)(issued & 1) : op;
                uint64_t j = op == BENCH_OP_PUSHPULL ? issued >> 1 : issued;
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
        int r = zmq_poll(c->ritems, (int)S, BENCH_CLIENT_TIMEOUT_MS);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return s_fail(res, "raw servers did not answer within %d ms", BENCH_CLIENT_TIMEOUT_MS);
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
static int s_ours_latency(cl_t *c, const bench_cmd_t *cmd, bench_res_t *res)
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
static int s_raw_latency(cl_t *c, const bench_cmd_t *cmd, bench_res_t *res)
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

/* Client 0 pushes ids 0..N-1 once, in BENCH_POP_CHUNK-key pushes, then reads the
 * servers' key counts.  With shuffle the i-th id pushed is (A i + N/3) mod N, A
 * = 2^61 - 1 (a prime, so a permutation of 0..N-1 for N < 2^61): rows are
 * allocated in push order, so a key's row is then far from its id's. */
static int s_populate(cl_t *c, const bench_cmd_t *cmd, bench_res_t *res)
{
    uint64_t N = cmd->table_keys;
    size_t chunk = N < BENCH_POP_CHUNK ? (size_t)N : BENCH_POP_CHUNK;
    uint64_t *keys = malloc(chunk * sizeof *keys), *tmp = malloc(chunk * sizeof *tmp);
    float *g = malloc(chunk * sizeof *g);
    uint64_t tickets[BENCH_MAX_WINDOW];
    if (!keys || !g || !tmp) {
        free(keys);
        free(tmp);
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
                keys[k - lo] = cmd->shuffle ? (uint64_t)(((unsigned __int128)k * 2305843009213693951ULL +
                                                          N / 3) % N)
                                            : k;
            uint64_t *pk = keys;
            if (cmd->shuffle) /* a push's keys are sorted: rows follow within a chunk only */
                pk = zps_sort_u64(keys, tmp, (size_t)(hi - lo));
            rc = wk_client_push_async(c->wk, 0, pk, g, (size_t)(hi - lo),
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
    free(tmp);
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

static void s_send_res(int wfd, const bench_res_t *res)
{
    if (bench_pipe_write(wfd, res, sizeof *res) != 0)
        _exit(1); /* the parent is gone */
}

static int s_wait_go(int rfd)
{
    char go;
    return bench_pipe_read(rfd, &go, 1, -1) == 0 && go == 'G' ? 0 : -1;
}

void bench_cli_child(const bench_job_t *job, uint32_t idx, int rfd, int wfd)
{
    signal(SIGPIPE, SIG_IGN);
    cl_t c;
    memset(&c, 0, sizeof c);
    c.idx = idx;
    c.S = job->S;
    bench_res_t res;
    memset(&res, 0, sizeof res);
    const char *eps[BENCH_MAX_SRV];
    for (uint32_t s = 0; s < job->S; s++)
        eps[s] = job->eps[s];
    wk_client_conf_t conf;
    wk_client_conf_defaults(&conf);
    conf.servers = eps;
    conf.nservers = job->S;
    conf.role = ZPS__ROLE__ROLE_TOOL;
    conf.rank = idx;
    conf.timeout_ms = BENCH_CLIENT_TIMEOUT_MS;
    conf.max_inflight = 2 * BENCH_MAX_WINDOW;
    if (job->coord_ep[0]) {
        /* replicated: a server refuses until its first lease (ENOLEASE),
         * answered by a resend: the retry machinery is needed */
        conf.coordinator = job->coord_ep;
        conf.retry_ms = 1000;
    }
    char err[512];
    c.wk = wk_client_new(&conf, err, sizeof err);
    if (!c.wk) {
        s_fail(&res, "cannot connect: %s", err);
        s_send_res(wfd, &res);
        _exit(1);
    }
    s_send_res(wfd, &res); /* connected */
    for (;;) {
        bench_cmd_t cmd;
        if (bench_pipe_read(rfd, &cmd, sizeof cmd, -1) != 0)
            break;
        memset(&res, 0, sizeof res);
        int rc = 0;
        lim_t run = {cmd.window, 0, cmd.min_s, cmd.max_s, cmd.target_pairs};
        lim_t warm = {cmd.window, cmd.window, 0, 0, 0};
        size_t req[2] = {cmd.req_bytes[0], cmd.req_bytes[1]};
        switch (cmd.cmd) {
        case BENCH_CMD_POPULATE: rc = s_populate(&c, &cmd, &res); break;
        case BENCH_CMD_RUN:
        case BENCH_CMD_RAW:
            rc = s_make_samples(&c, cmd.k, cmd.table_keys, cmd.window, &res);
            if (!rc && cmd.cmd == BENCH_CMD_RAW) {
                rc = s_raw_connect(&c, job, &res);
                for (int t = 0; t < 2 && !rc; t++)
                    rc = s_raw_buf(&c, t, cmd.req_bytes[t], cmd.rep_bytes[t], &res);
            }
            if (!rc) { /* warm-up: one window of the same requests, untimed */
                bench_res_t w;
                memset(&w, 0, sizeof w);
                rc = cmd.cmd == BENCH_CMD_RUN
                         ? s_ours_loop(&c, cmd.op, cmd.window, &warm, &w)
                         : s_raw_loop(&c, cmd.op, cmd.window, &warm, req, &w);
                if (rc)
                    res = w;
            }
            s_send_res(wfd, &res); /* ready (or failed) */
            if (rc)
                _exit(1);
            if (s_wait_go(rfd) != 0)
                _exit(1);
            rc = cmd.cmd == BENCH_CMD_RUN ? s_ours_loop(&c, cmd.op, cmd.window, &run, &res)
                                          : s_raw_loop(&c, cmd.op, cmd.window, &run, req, &res);
            break;
        case BENCH_CMD_LAT: rc = s_ours_latency(&c, &cmd, &res); break;
        case BENCH_CMD_RAWLAT:
            rc = s_raw_connect(&c, job, &res);
            if (!rc)
                rc = s_raw_latency(&c, &cmd, &res);
            break;
        case BENCH_CMD_QUIT: goto quit;
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
