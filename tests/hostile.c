/* zps-hostile: attacks a zps server the way the security review describes
 * and reports, per attack, what it saw and whether the server defended.
 *
 *   zps-hostile --server tcp://127.0.0.1:PORT [--pid PID] [--log FILE]
 *               [--marker FILE] [--attacks a,b,...] [--duration S] [--connections N]
 *
 * DESIGN
 * Every attack talks to the server over its own raw DEALER sockets (no
 * client library: the point is to send what a well-behaved client never
 * would), sends its messages, reads what comes back within a bounded time,
 * and prints one line
 *     attack NAME: DEFENDED|VULNERABLE: what it saw
 * judged against the defended behaviour (docs/security.md):
 *   inject     HELLO whose client_version has newlines, a launcher-like log
 *              prefix, an escape byte and $(touch MARKER): the server log
 *              (--log) gains no line with the forged prefix and no raw ESC
 *   shutdown   SHUTDOWN without / with a wrong admin token: ERROR EPERM each
 *              time, and the server still answers
 *   held       400 ssp pulls that the server must hold (clock far ahead),
 *              each with a 256 KB key list, then the connection is closed:
 *              RSS of --pid grows less than 64 MB (and the server answers)
 *   hugepull   a pull of 2^24 keys (under the server's 2^26-key request limit, so it
 *              may be answered): the server keeps serving and gives the memory
 *              back (RSS growth after it < 100 MB)
 *   overflow   a gradient of 1e20 (ftrl) / 3e38 (sgd, twice): refused with an
 *              ERROR, and the key's pulled weight stays finite
 *   forge      a second connection claims the victim's rank: a push with the
 *              victim's nonce and seq 2^64-1, a push with seq 0, a CLOCK and a
 *              HEARTBEAT in the victim's name: the forged requests get ERRORs,
 *              the victim's later pushes are applied (exact weight) and its
 *              clock is not moved
 *   flood      2000 HELLOs: the server log (--log) grows by < 150 lines (the
 *              documented budgets: 100 hello lines and 20 rebinding lines per
 *              10 s, one line per second for each kind of refusal)
 *   oversize   a frame over the server's limit (start it with --max-msg-mb 1):
 *              an ERROR reply, not silence (a 2 MB frame)
 *   done       forged "done" for --exit-when-done (start the server with
 *              --exit-when-done --num-workers N > --rank-base + 1): a CLOCK
 *              done=1 as worker rank-base from a connection that never said
 *              HELLO, and as worker rank-base + 1 from one that said HELLO as
 *              another rank: the server counts neither (no "is done (" line in
 *              --log) and still answers
 *   conns      N (1200) connections, each says hello: a client connected
 *              before still gets answers, and so does a new one after
 * --duration S repeats the whole list until S seconds have passed (a soak)
 * and judges every round.  Exit 0 iff every attack was defended every time.
 * Only 127.0.0.1 endpoints are accepted. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "zps.pb-c.h"
#include "zps_codec.h"
#include "zps_args.h"
#include "zps_err.h"
#include "zps_hash.h"
#include "zps_msg.h"
#include "zps_place.h"
#include "zps_time.h"

#define H_WAIT_MS 5000

typedef struct {
    const char *ep, *log, *marker;
    long pid;
    int connections;
    void *ctx;
    uint64_t next_id, rng;
    uint32_t dim;
    char optimizer[16];
    int ssp;                  /* the server holds pulls (job says ssp/bsp) */
    uint32_t rank_base;       /* forge and flood claim ranks from here (keep clear of a real job's) */
    uint32_t srank, nservers; /* from the hello reply: single-key attacks use keys it owns */
    int unread_bound_mb;      /* unread: the server's RSS may grow by this much */
    int defended, vulnerable;
} h_t;

static void s_verdict(h_t *h, const char *name, int ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_verdict(h_t *h, const char *name, int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("attack %s: %s: ", name, ok ? "DEFENDED" : "VULNERABLE");
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
    va_end(ap);
    if (ok)
        h->defended++;
    else
        h->vulnerable++;
}

/* A DEALER connected to the server; a slow reader (rcvbuf > 0) takes at
 * most one message into its own queue and rcvbuf bytes into its kernel
 * buffer, so what it does not read stays queued on the server's side. */
static void *s_sock_rcv(h_t *h, int rcvbuf)
{
    void *s = zmq_socket(h->ctx, ZMQ_DEALER);
    if (!s)
        return NULL;
    if (rcvbuf > 0) {
        int one = 1;
        zmq_setsockopt(s, ZMQ_RCVHWM, &one, sizeof one);
        zmq_setsockopt(s, ZMQ_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    int linger = 0, hwm = 100000, sndtimeo = 2000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
    if (zmq_connect(s, h->ep) != 0) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

static void *s_sock(h_t *h)
{
    return s_sock_rcv(h, 0);
}

static void s_env(h_t *h, Zps__Envelope *env, Zps__MsgType type, Zps__Role role, uint32_t rank)
{
    zps_msg_env(env, type, role, rank, h->next_id++);
}

/* Wait for the reply to id; 0 and *m filled, or ZPS_ETIMEDOUT. */
static int s_reply(void *s, uint64_t id, int ms, zps_msg_t *m)
{
    int64_t end = zps_now_ms() + ms;
    for (;;) {
        int64_t left = end - zps_now_ms();
        if (left <= 0)
            return ZPS_ETIMEDOUT;
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, (long)left) <= 0)
            continue;
        int rc = zps_msg_recv(s, 0, m, ZMQ_DONTWAIT);
        if (rc == 0 && m->env->request_id == id)
            return 0;
        zps_msg_close(m);
    }
}

/* Send env (+ frames) and wait: returns the reply's type, -1 on no reply;
 * *code gets the ERROR code (0 if none). */
static int s_ask(h_t *h, void *s, Zps__Envelope *env, void *keys, size_t klen, void *vals,
                 size_t vlen, int ms, int *code, zps_msg_t *keep)
{
    (void)h;
    *code = 0;
    if (zps_msg_send(s, NULL, env, keys, klen, vals, vlen, NULL) != 0)
        return -1;
    zps_msg_t m;
    if (s_reply(s, env->request_id, ms, &m) != 0)
        return -1;
    int type = (int)m.env->type;
    if (m.env->body_case == ZPS__ENVELOPE__BODY_ERROR)
        *code = m.env->error->code;
    if (keep)
        *keep = m;
    else
        zps_msg_close(&m);
    return type;
}

static int s_hello(h_t *h, void *s, Zps__Role role, uint32_t rank, uint64_t nonce,
                   const char *version, int ms)
{
    Zps__Envelope env;
    Zps__Hello hb = ZPS__HELLO__INIT;
    s_env(h, &env, ZPS__MSG_TYPE__HELLO, role, rank);
    hb.client_version = (char *)version;
    hb.client_nonce = nonce;
    env.body_case = ZPS__ENVELOPE__BODY_HELLO;
    env.hello = &hb;
    int code;
    zps_msg_t m;
    int t = s_ask(h, s, &env, NULL, 0, NULL, 0, ms, &code, &m);
    if (t == ZPS__MSG_TYPE__HELLO_REPLY) {
        const Zps__HelloReply *r = m.env->hello_reply;
        if (r->n_tables) {
            h->dim = r->tables[0]->dim;
            snprintf(h->optimizer, sizeof h->optimizer, "%s", r->tables[0]->optimizer);
        }
        h->ssp = strstr(r->job, "ssp") || strstr(r->job, "bsp");
        h->srank = r->server_rank;
        h->nservers = r->num_servers;
        zps_msg_close(&m);
    } else if (t >= 0) {
        zps_msg_close(&m);
    }
    return t;
}

/* Does the server answer a fresh connection's hello? */
static int s_alive(h_t *h)
{
    void *s = s_sock(h);
    int ok = s && s_hello(h, s, ZPS__ROLE__ROLE_TOOL, 900, 0x900, "zps-hostile probe", H_WAIT_MS) ==
                      ZPS__MSG_TYPE__HELLO_REPLY;
    if (s)
        zmq_close(s);
    return ok;
}

static long s_rss_kb(const h_t *h)
{
    if (h->pid <= 0)
        return -1;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", h->pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/* Lines in the log file, and whether any holds needle / a raw ESC. */
static long s_log_scan(const h_t *h, const char *needle, int *found, int *esc)
{
    *found = *esc = 0;
    if (!h->log)
        return -1;
    FILE *f = fopen(h->log, "r");
    if (!f)
        return -1;
    long lines = 0;
    char buf[8192];
    while (fgets(buf, sizeof buf, f)) {
        lines += strchr(buf, '\n') != NULL;
        if (needle && !strncmp(buf, needle, strlen(needle)))
            *found = 1;
        if (strchr(buf, 0x1b))
            *esc = 1;
    }
    fclose(f);
    return lines;
}

/* A keys frame of n consecutive keys from first (gap 0 each). */
static uint64_t s_own(const h_t *h, uint64_t key);

static uint8_t *s_dense_keys(uint64_t first, size_t n, size_t *len)
{
    uint8_t *b = malloc(n + 16);
    if (!b)
        return NULL;
    long l = zps_keys_encode(&first, 1, b, 16);
    memset(b + l, 0, n - 1);
    *len = (size_t)l + n - 1;
    return b;
}

/* n keys from first on that this server owns (all of them with one server). */
static uint8_t *s_owned_keys(const h_t *h, uint64_t first, size_t n, size_t *len)
{
    if (h->nservers <= 1)
        return s_dense_keys(first, n, len);
    uint64_t *k = malloc(n * sizeof *k);
    uint8_t *b = malloc(n * 10 + 16);
    if (!k || !b) {
        free(k);
        free(b);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        k[i] = first = s_own(h, i ? first + 1 : first);
    long l = zps_keys_encode(k, n, b, n * 10 + 16);
    free(k);
    if (l < 0) {
        free(b);
        return NULL;
    }
    *len = (size_t)l;
    return b;
}

static void s_pull_env(h_t *h, Zps__Envelope *env, Zps__Pull *p, Zps__Role role, uint32_t rank,
                       uint64_t nkeys, uint64_t clock)
{
    s_env(h, env, ZPS__MSG_TYPE__PULL, role, rank);
    zps__pull__init(p);
    p->nkeys = nkeys;
    p->clock = clock;
    env->body_case = ZPS__ENVELOPE__BODY_PULL;
    env->pull = p;
}

/* The first key >= key that this server owns (an attack on a server of
 * a multi-server job must not be refused merely for the key's owner). */
static uint64_t s_own(const h_t *h, uint64_t key)
{
    while (h->nservers > 1 && zps_place(key, h->nservers) != h->srank)
        key++;
    return key;
}

static int s_push(h_t *h, void *s, uint32_t rank, uint64_t nonce, uint64_t seq, uint64_t key,
                  float g, int *code)
{
    key = s_own(h, key);
    /* the norm optimizer's pushes carry [g | sum of squared row gradients | max |x|] */
    int norm = strcmp(h->optimizer, "norm") == 0;
    uint32_t w = norm ? 2 * h->dim + 1 : h->dim;
    Zps__Envelope env;
    Zps__Push p = ZPS__PUSH__INIT;
    s_env(h, &env, ZPS__MSG_TYPE__PUSH, ZPS__ROLE__ROLE_WORKER, rank);
    p.nkeys = 1;
    p.dim = w;
    p.seq = seq;
    p.client_nonce = nonce;
    env.body_case = ZPS__ENVELOPE__BODY_PUSH;
    env.push = &p;
    uint8_t *kb = malloc(16);
    float *vb = malloc(w * sizeof *vb);
    long kl = zps_keys_encode(&key, 1, kb, 16);
    for (uint32_t j = 0; j < w; j++)
        vb[j] = j < h->dim ? g : j < 2 * h->dim ? g * g : 1.0f;
    return s_ask(h, s, &env, kb, (size_t)kl, vb, w * sizeof *vb, H_WAIT_MS, code, NULL);
}

/* Pulled row of key (first value); NAN if no answer. */
static float s_pull1(h_t *h, void *s, uint64_t key)
{
    key = s_own(h, key);
    Zps__Envelope env;
    Zps__Pull p;
    s_pull_env(h, &env, &p, ZPS__ROLE__ROLE_TOOL, 901, 1, 0);
    uint8_t *kb = malloc(16);
    long kl = zps_keys_encode(&key, 1, kb, 16);
    int code;
    zps_msg_t m;
    if (s_ask(h, s, &env, kb, (size_t)kl, NULL, 0, H_WAIT_MS, &code, &m) != ZPS__MSG_TYPE__PULL_REPLY)
        return NAN;
    size_t len;
    const void *v = zps_msg_bulk(&m, 1, &len);
    float w = NAN;
    if (len >= sizeof w)
        memcpy(&w, v, sizeof w);
    zps_msg_close(&m);
    return w;
}

/* ---- the attacks ------------------------------------------------------------------------ */

static void a_inject(h_t *h)
{
    static const char fake[] = "2026-01-01T00:00:00.000Z launcher/0 info:";
    char version[600];
    snprintf(version, sizeof version,
             "1.0\n%s job finished, all workers done\n%s $(touch %s) `touch %s`\x1b[2J\r\nend",
             fake, fake, h->marker ? h->marker : "/tmp/zps-hostile-marker",
             h->marker ? h->marker : "/tmp/zps-hostile-marker");
    void *s = s_sock(h);
    int t = s_hello(h, s, ZPS__ROLE__ROLE_WORKER, 0, 0x1234, version, H_WAIT_MS);
    zmq_close(s);
    usleep(200000); /* the server's log line is written by now */
    int found, esc;
    long lines = s_log_scan(h, fake, &found, &esc);
    struct stat st;
    int created = h->marker && stat(h->marker, &st) == 0;
    if (lines < 0) {
        s_verdict(h, "inject", !created && s_alive(h),
                  "no --log to check; hello answered with %s; marker %s", zps_msg_type_name(t),
                  created ? "CREATED" : "not created");
        return;
    }
    s_verdict(h, "inject", !found && !esc && !created,
              "hello answered with %s; forged log line %s; raw ESC in the log: %s; marker %s",
              t < 0 ? "nothing" : zps_msg_type_name(t), found ? "PRESENT" : "absent",
              esc ? "YES" : "no", created ? "CREATED" : "not created");
}

static void a_shutdown(h_t *h)
{
    void *s = s_sock(h);
    s_hello(h, s, ZPS__ROLE__ROLE_TOOL, 77, 0x77, "zps-hostile", H_WAIT_MS);
    int codes[2], types[2];
    const char *tokens[2] = {"", "0123456789abcdef0123456789abcdef-wrong"};
    for (int i = 0; i < 2; i++) {
        Zps__Envelope env;
        Zps__Shutdown sd = ZPS__SHUTDOWN__INIT;
        s_env(h, &env, ZPS__MSG_TYPE__SHUTDOWN, ZPS__ROLE__ROLE_TOOL, 77);
        sd.reason = "zps-hostile";
        sd.admin_token = (char *)tokens[i];
        env.body_case = ZPS__ENVELOPE__BODY_SHUTDOWN;
        env.shutdown = &sd;
        types[i] = s_ask(h, s, &env, NULL, 0, NULL, 0, H_WAIT_MS, &codes[i], NULL);
        if (types[i] == ZPS__MSG_TYPE__SHUTDOWN_ACK)
            break;
    }
    zmq_close(s);
    usleep(300000);
    int alive = s_alive(h);
    s_verdict(h, "shutdown", codes[0] == ZPS_EPERM && codes[1] == ZPS_EPERM && alive,
              "no token: %s (%s); wrong token: %s (%s); server %s",
              zps_msg_type_name(types[0]), codes[0] ? zps_strerror(codes[0]) : "-",
              types[0] == ZPS__MSG_TYPE__SHUTDOWN_ACK ? "-" : zps_msg_type_name(types[1]),
              codes[1] ? zps_strerror(codes[1]) : "-", alive ? "still serving" : "GONE");
}

/* A counter of the server's STATS reply (reply_refused, or held_pulls: the
 * pulls it holds now); dflt if it does not answer. */
enum { H_STAT_REPLY_REFUSED, H_STAT_HELD_PULLS };
static uint64_t s_stat(h_t *h, int which, uint64_t dflt)
{
    void *s = s_sock(h);
    Zps__Envelope env;
    Zps__Stats st = ZPS__STATS__INIT;
    s_env(h, &env, ZPS__MSG_TYPE__STATS, ZPS__ROLE__ROLE_TOOL, 902);
    env.body_case = ZPS__ENVELOPE__BODY_STATS;
    env.stats = &st;
    int code;
    zps_msg_t m;
    uint64_t v = dflt;
    if (s && s_ask(h, s, &env, NULL, 0, NULL, 0, H_WAIT_MS, &code, &m) == ZPS__MSG_TYPE__STATS_REPLY) {
        v = which == H_STAT_HELD_PULLS ? m.env->stats_reply->held_pulls
                                       : m.env->stats_reply->reply_refused;
        zps_msg_close(&m);
    }
    if (s)
        zmq_close(s);
    return v;
}

/* A client that asks and never reads: 300 pulls of 256K keys (300 MB of
 * replies if all were answered) without reading a reply (a receive queue
 * of one message, a 4 KB kernel buffer), then the server's RSS while the
 * connection is still open and its reply_refused counter; then it leaves. */
static void a_unread(h_t *h)
{
    long before = s_rss_kb(h);
    uint64_t refused0 = s_stat(h, H_STAT_REPLY_REFUSED, 0);
    void *s = s_sock_rcv(h, 4096);
    s_hello(h, s, ZPS__ROLE__ROLE_TOOL, 77, 0x77, "zps-hostile", H_WAIT_MS);
    const size_t nk = 1u << 18;
    int sent = 0;
    for (int i = 0; i < 300; i++) {
        Zps__Envelope env;
        Zps__Pull p;
        s_pull_env(h, &env, &p, ZPS__ROLE__ROLE_TOOL, 77, nk, 0);
        size_t kl;
        uint8_t *kb = s_owned_keys(h, (uint64_t)(i + 1) << 40, nk, &kl);
        if (!kb || zps_msg_send(s, NULL, &env, kb, kl, NULL, 0, NULL) != 0)
            break;
        sent++;
    }
    /* the server answers what it will (it has read every pull once its
     * refusal counter stops moving); nothing is read meanwhile */
    uint64_t refused = 0, last = UINT64_MAX;
    for (int k = 0; k < 100; k++) {
        usleep(200000);
        refused = s_stat(h, H_STAT_REPLY_REFUSED, 0) - refused0;
        if (refused == last && refused > 0)
            break;
        last = refused;
    }
    long mid = s_rss_kb(h);
    /* another client that reads its replies is served meanwhile (the
     * refusals are for the peer that does not read, nobody else) */
    void *o = s_sock(h);
    float w = o ? s_pull1(h, o, 5) : NAN;
    if (o)
        zmq_close(o);
    zmq_close(s); /* leave with the replies unread */
    usleep(500000);
    int alive = s_alive(h);
    long after = s_rss_kb(h);
    long grow = before >= 0 && mid >= 0 ? mid - before : -1;
    long bound = (long)h->unread_bound_mb * 1024;
    s_verdict(h, "unread", alive && refused > 0 && isfinite(w) && (grow < 0 || grow < bound),
              "%d pulls of 256K keys never read: %llu refused (stats: reply_refused); another "
              "client %s meanwhile; RSS %ld kB before, %ld kB with the replies unread (bound: "
              "+%ld kB), %ld kB after leaving; server %s", sent, (unsigned long long)refused,
              isfinite(w) ? "served" : "NOT SERVED", before, mid, bound, after,
              alive ? "serving" : "GONE");
}

static void a_held(h_t *h)
{
    if (!h->ssp) {
        printf("attack held: skipped: the server does not hold pulls (not ssp/bsp)\n");
        return;
    }
    long before = s_rss_kb(h);
    void *s = s_sock(h);
    s_hello(h, s, ZPS__ROLE__ROLE_WORKER, 0, 0xbad0, "zps-hostile", H_WAIT_MS);
    int errors = 0, answered = 0;
    const size_t nk = 1u << 18; /* a 256 KB key frame each: 100 MB if all are kept */
    for (int i = 0; i < 400; i++) {
        Zps__Envelope env;
        Zps__Pull p;
        s_pull_env(h, &env, &p, ZPS__ROLE__ROLE_WORKER, 0, nk, 1000000);
        size_t kl;
        uint8_t *kb = s_dense_keys((uint64_t)i << 32, nk, &kl);
        if (!kb || zps_msg_send(s, NULL, &env, kb, kl, NULL, 0, NULL) != 0)
            break;
    }
    /* read what came back (an ERROR for pulls over a limit, say) for a moment */
    int64_t end = zps_now_ms() + 1500;
    while (zps_now_ms() < end) {
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        zps_msg_t m;
        if (zps_msg_recv(s, 0, &m, ZMQ_DONTWAIT) == 0) {
            errors += m.env->body_case == ZPS__ENVELOPE__BODY_ERROR;
            answered += m.env->body_case == ZPS__ENVELOPE__BODY_PULL_REPLY;
        }
        zps_msg_close(&m);
    }
    long mid = s_rss_kb(h);
    zmq_close(s); /* disconnect with the pulls held */
    /* the server drops them when its socket monitor reports the disconnect,
     * in its next maintenance pass: wait for that (STATS held_pulls 0, at
     * most 60 s: on a loaded machine it takes longer than the 1 s this used
     * to sleep), then measure; a server that never drops them fails */
    int64_t until = zps_now_ms() + 60000;
    while (s_stat(h, H_STAT_HELD_PULLS, UINT64_MAX) != 0 && zps_now_ms() < until)
        usleep(100000);
    int alive = s_alive(h);
    long after = s_rss_kb(h);
    long grow = before >= 0 && after >= 0 ? after - before : -1;
    s_verdict(h, "held", alive && (grow < 0 || grow < 64 * 1024),
              "400 held pulls of 256K keys: %d errors, %d answered; RSS %ld kB before, %ld kB "
              "while held, %ld kB after the disconnect (bound: +65536 kB); server %s",
              errors, answered, before, mid, after, alive ? "serving" : "GONE");
}

static void a_hugepull(h_t *h)
{
    long before = s_rss_kb(h);
    void *s = s_sock(h);
    s_hello(h, s, ZPS__ROLE__ROLE_TOOL, 78, 0x78, "zps-hostile", H_WAIT_MS);
    const size_t nk = 1u << 24;
    size_t kl;
    uint8_t *kb = s_dense_keys(0, nk, &kl);
    Zps__Envelope env;
    Zps__Pull p;
    s_pull_env(h, &env, &p, ZPS__ROLE__ROLE_TOOL, 78, nk, 0);
    int code;
    int t = kb ? s_ask(h, s, &env, kb, kl, NULL, 0, 3 * H_WAIT_MS, &code, NULL) : -1;
    zmq_close(s);
    int alive = s_alive(h); /* a round trip: the server has finished the pull (and trimmed) */
    long after = s_rss_kb(h);
    long grow = before >= 0 && after >= 0 ? after - before : -1;
    s_verdict(h, "hugepull", (t == ZPS__MSG_TYPE__ERROR || t == ZPS__MSG_TYPE__PULL_REPLY) &&
              alive && grow < 100 * 1024,
              "pull of 2^24 keys answered with %s (%s); RSS %ld -> %ld kB (bound: +102400 kB); "
              "server %s", t < 0 ? "nothing" : zps_msg_type_name(t),
              code ? zps_strerror(code) : "-", before, after, alive ? "serving" : "GONE");
}

static void a_overflow(h_t *h)
{
    void *s = s_sock(h);
    s_hello(h, s, ZPS__ROLE__ROLE_TOOL, 901, 0x901, "zps-hostile", H_WAIT_MS); /* table info */
    int ftrl = !strcmp(h->optimizer, "ftrl");
    float g = ftrl ? 1e20f : 3e38f;
    uint64_t nonce = zps_mix64(h->rng++, 3) | 1, key = 4242 + (h->rng & 0xffff);
    int codes[2], types[2], errs = 0;
    Zps__Envelope henv;
    Zps__Hello hb = ZPS__HELLO__INIT;
    s_env(h, &henv, ZPS__MSG_TYPE__HELLO, ZPS__ROLE__ROLE_WORKER, 3);
    hb.client_version = "zps-hostile";
    hb.client_nonce = nonce;
    henv.body_case = ZPS__ENVELOPE__BODY_HELLO;
    henv.hello = &hb;
    int c0;
    s_ask(h, s, &henv, NULL, 0, NULL, 0, H_WAIT_MS, &c0, NULL);
    for (int i = 0; i < 2; i++) {
        types[i] = s_push(h, s, 3, nonce, (uint64_t)i + 1, key, g, &codes[i]);
        errs += types[i] == ZPS__MSG_TYPE__ERROR;
    }
    float w = s_pull1(h, s, key);
    zmq_close(s);
    s_verdict(h, "overflow", errs > 0 && isfinite(w),
              "%s, gradient %g twice on key %" PRIu64 ": %s (%s), %s (%s); weight now %g",
              h->optimizer, (double)g, key, zps_msg_type_name(types[0]),
              codes[0] ? zps_strerror(codes[0]) : "-", zps_msg_type_name(types[1]),
              codes[1] ? zps_strerror(codes[1]) : "-", (double)w);
}

static uint64_t s_worker_clock(h_t *h, void *s, uint32_t rank)
{
    Zps__Envelope env;
    Zps__Stats st = ZPS__STATS__INIT;
    s_env(h, &env, ZPS__MSG_TYPE__STATS, ZPS__ROLE__ROLE_TOOL, 901);
    env.body_case = ZPS__ENVELOPE__BODY_STATS;
    env.stats = &st;
    int code;
    zps_msg_t m;
    uint64_t c = 0;
    if (s_ask(h, s, &env, NULL, 0, NULL, 0, H_WAIT_MS, &code, &m) == ZPS__MSG_TYPE__STATS_REPLY) {
        if (rank < m.env->stats_reply->n_worker_clocks)
            c = m.env->stats_reply->worker_clocks[rank];
        zps_msg_close(&m);
    }
    return c;
}

static void a_forge(h_t *h)
{
    const uint32_t victim = h->rank_base + 1, attacker = h->rank_base;
    uint64_t vnonce = zps_mix64(h->rng++, 11) | 1, anonce = zps_mix64(h->rng++, 12) | 1;
    uint64_t key = 777000 + (h->rng & 0xffff);
    void *v = s_sock(h), *a = s_sock(h);
    Zps__Envelope env;
    Zps__Hello hb = ZPS__HELLO__INIT;
    int code, vcodes[4], acodes[4], atypes[4];
    hb.client_version = "zps-hostile victim";
    hb.client_nonce = vnonce;
    s_env(h, &env, ZPS__MSG_TYPE__HELLO, ZPS__ROLE__ROLE_WORKER, victim);
    env.body_case = ZPS__ENVELOPE__BODY_HELLO;
    env.hello = &hb;
    s_ask(h, v, &env, NULL, 0, NULL, 0, H_WAIT_MS, &code, NULL);
    hb.client_version = "zps-hostile attacker";
    hb.client_nonce = anonce;
    s_env(h, &env, ZPS__MSG_TYPE__HELLO, ZPS__ROLE__ROLE_WORKER, attacker);
    s_ask(h, a, &env, NULL, 0, NULL, 0, H_WAIT_MS, &code, NULL);
    float w0 = s_pull1(h, v, key);
    uint64_t clock0 = s_worker_clock(h, v, victim);
    /* the victim's first two pushes */
    s_push(h, v, victim, vnonce, 1, key, 1.0f, &vcodes[0]);
    s_push(h, v, victim, vnonce, 2, key, 1.0f, &vcodes[1]);
    /* forged: the victim's rank and nonce with the last possible seq; seq 0 */
    atypes[0] = s_push(h, a, victim, vnonce, UINT64_MAX, key, 100.0f, &acodes[0]);
    atypes[1] = s_push(h, a, victim, vnonce, 0, key, 100.0f, &acodes[1]);
    /* forged CLOCK in the victim's name */
    Zps__Clock ck = ZPS__CLOCK__INIT;
    ck.clock = 1000000;
    s_env(h, &env, ZPS__MSG_TYPE__CLOCK, ZPS__ROLE__ROLE_WORKER, victim);
    env.body_case = ZPS__ENVELOPE__BODY_CLOCK;
    env.clock = &ck;
    atypes[2] = s_ask(h, a, &env, NULL, 0, NULL, 0, H_WAIT_MS, &acodes[2], NULL);
    /* forged HEARTBEAT (no reply expected either way) */
    Zps__Heartbeat hbt = ZPS__HEARTBEAT__INIT;
    hbt.clock = 1000000;
    s_env(h, &env, ZPS__MSG_TYPE__HEARTBEAT, ZPS__ROLE__ROLE_WORKER, victim);
    env.body_case = ZPS__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hbt;
    atypes[3] = s_ask(h, a, &env, NULL, 0, NULL, 0, 500, &acodes[3], NULL);
    /* the victim goes on: seq 3 and 4 must be applied */
    s_push(h, v, victim, vnonce, 3, key, 1.0f, &vcodes[2]);
    s_push(h, v, victim, vnonce, 4, key, 1.0f, &vcodes[3]);
    float w = s_pull1(h, v, key);
    uint64_t clock1 = s_worker_clock(h, v, victim);
    zmq_close(v);
    zmq_close(a);
    /* sgd lr 1 (the script's server): four pushes of 1 move the weight by -4 */
    float want = w0 - 4.0f * (strcmp(h->optimizer, "sgd") ? NAN : 1.0f);
    int weight_ok = !strcmp(h->optimizer, "sgd") ? w == want : 1;
    int errs = (atypes[0] == ZPS__MSG_TYPE__ERROR) + (atypes[1] == ZPS__MSG_TYPE__ERROR) +
               (atypes[2] == ZPS__MSG_TYPE__ERROR);
    s_verdict(h, "forge", weight_ok && errs == 3 && clock1 == clock0,
              "forged push seq 2^64-1: %s (%s); seq 0: %s (%s); CLOCK: %s (%s); HEARTBEAT: %s; "
              "victim's weight %g (want %g: its pushes 3 and 4 %s); victim's clock %" PRIu64
              " -> %" PRIu64,
              zps_msg_type_name(atypes[0]), acodes[0] ? zps_strerror(acodes[0]) : "-",
              zps_msg_type_name(atypes[1]), acodes[1] ? zps_strerror(acodes[1]) : "-",
              zps_msg_type_name(atypes[2]), acodes[2] ? zps_strerror(acodes[2]) : "-",
              atypes[3] < 0 ? "no reply" : zps_msg_type_name(atypes[3]), (double)w, (double)want,
              weight_ok ? "applied" : "NOT applied", clock0, clock1);
}

/* 1 if a line of the log file contains needle (anywhere) */
static int s_log_has(const h_t *h, const char *needle)
{
    FILE *f = h->log ? fopen(h->log, "r") : NULL;
    if (!f)
        return 0;
    char buf[8192];
    int found = 0;
    while (!found && fgets(buf, sizeof buf, f))
        found = strstr(buf, needle) != NULL;
    fclose(f);
    return found;
}

static void a_done(h_t *h)
{
    const uint32_t w = h->rank_base;
    void *a = s_sock(h), *b = s_sock(h);
    Zps__Envelope env;
    Zps__Clock ck = ZPS__CLOCK__INIT;
    Zps__Hello hb = ZPS__HELLO__INIT;
    int code, t[2];
    ck.done = 1;
    /* a: done as worker w, never having said HELLO */
    s_env(h, &env, ZPS__MSG_TYPE__CLOCK, ZPS__ROLE__ROLE_WORKER, w);
    env.body_case = ZPS__ENVELOPE__BODY_CLOCK;
    env.clock = &ck;
    t[0] = s_ask(h, a, &env, NULL, 0, NULL, 0, H_WAIT_MS, &code, NULL);
    /* b: HELLO as worker w + 2, then done as worker w + 1 */
    hb.client_version = "zps-hostile done";
    hb.client_nonce = zps_mix64(h->rng++, 13) | 1;
    s_env(h, &env, ZPS__MSG_TYPE__HELLO, ZPS__ROLE__ROLE_WORKER, w + 2);
    env.body_case = ZPS__ENVELOPE__BODY_HELLO;
    env.hello = &hb;
    s_ask(h, b, &env, NULL, 0, NULL, 0, H_WAIT_MS, &code, NULL);
    s_env(h, &env, ZPS__MSG_TYPE__CLOCK, ZPS__ROLE__ROLE_WORKER, w + 1);
    env.body_case = ZPS__ENVELOPE__BODY_CLOCK;
    env.clock = &ck;
    t[1] = s_ask(h, b, &env, NULL, 0, NULL, 0, H_WAIT_MS, &code, NULL);
    zmq_close(a);
    zmq_close(b);
    int alive = s_alive(h);
    int counted = s_log_has(h, " is done (");
    s_verdict(h, "done", alive && !counted,
              "done without HELLO: %s; done as another rank than the HELLO: %s; server %s; "
              "%s",
              t[0] < 0 ? "no reply" : zps_msg_type_name(t[0]),
              t[1] < 0 ? "no reply" : zps_msg_type_name(t[1]), alive ? "answers" : "GONE",
              !h->log ? "no --log to check" : counted ? "a forged done was COUNTED" :
              s_log_has(h, "not counted") ? "logged 'not counted'" : "nothing counted");
}

static void a_flood(h_t *h)
{
    int f, e;
    long before = s_log_scan(h, NULL, &f, &e);
    void *s = s_sock(h);
    int answered = 0;
    for (int i = 0; i < 2000; i++) {
        Zps__Envelope env;
        Zps__Hello hb = ZPS__HELLO__INIT;
        s_env(h, &env, ZPS__MSG_TYPE__HELLO, ZPS__ROLE__ROLE_WORKER, h->rank_base + (uint32_t)(i % 50));
        hb.client_version = "flood";
        hb.client_nonce = (uint64_t)i + 1;
        env.body_case = ZPS__ENVELOPE__BODY_HELLO;
        env.hello = &hb;
        zps_msg_send(s, NULL, &env, NULL, 0, NULL, 0, NULL);
    }
    int64_t end = zps_now_ms() + 3000;
    while (answered < 2000 && zps_now_ms() < end) {
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        zps_msg_t m;
        while (zps_msg_recv(s, 0, &m, ZMQ_DONTWAIT) == 0) {
            answered++;
            zps_msg_close(&m);
        }
        zps_msg_close(&m);
    }
    zmq_close(s);
    usleep(200000);
    long after = s_log_scan(h, NULL, &f, &e);
    int alive = s_alive(h);
    if (before < 0) {
        s_verdict(h, "flood", alive, "2000 hellos, %d answered; no --log to count", answered);
        return;
    }
    s_verdict(h, "flood", alive && after - before < 150,
              "2000 hellos, %d answered; the server log grew by %ld lines (bound: 150); server %s",
              answered, after - before, alive ? "serving" : "GONE");
}

static void a_oversize(h_t *h)
{
    void *s = s_sock(h);
    s_hello(h, s, ZPS__ROLE__ROLE_TOOL, 79, 0x79, "zps-hostile", H_WAIT_MS);
    size_t big = 2u << 20;
    uint8_t *kb = s_dense_keys(0, big, &big);
    Zps__Envelope env;
    Zps__Pull p;
    s_pull_env(h, &env, &p, ZPS__ROLE__ROLE_TOOL, 79, 2u << 20, 0);
    int code;
    int t = kb ? s_ask(h, s, &env, kb, big, NULL, 0, H_WAIT_MS, &code, NULL) : -1;
    zmq_close(s);
    int alive = s_alive(h);
    s_verdict(h, "oversize", t == ZPS__MSG_TYPE__ERROR && alive,
              "a 2 MB frame: answered with %s (%s); server %s",
              t < 0 ? "NOTHING (silence)" : zps_msg_type_name(t), code ? zps_strerror(code) : "-",
              alive ? "serving" : "GONE");
}

static void a_conns(h_t *h)
{
    void *old = s_sock(h);
    s_hello(h, old, ZPS__ROLE__ROLE_TOOL, 80, 0x80, "zps-hostile old", H_WAIT_MS);
    int n = h->connections;
    void **socks = calloc((size_t)n, sizeof *socks);
    int opened = 0;
    for (int i = 0; socks && i < n; i++) {
        socks[i] = s_sock(h);
        if (!socks[i])
            break;
        opened++;
        Zps__Envelope env;
        Zps__Hello hb = ZPS__HELLO__INIT;
        s_env(h, &env, ZPS__MSG_TYPE__HELLO, ZPS__ROLE__ROLE_TOOL, 100 + (uint32_t)i);
        hb.client_version = "conn";
        env.body_case = ZPS__ENVELOPE__BODY_HELLO;
        env.hello = &hb;
        zps_msg_send(socks[i], NULL, &env, NULL, 0, NULL, 0, NULL);
    }
    usleep(1000000);
    int old_ok = s_hello(h, old, ZPS__ROLE__ROLE_TOOL, 80, 0x80, "zps-hostile old", H_WAIT_MS) ==
                 ZPS__MSG_TYPE__HELLO_REPLY;
    float w = s_pull1(h, old, 1);
    for (int i = 0; i < opened; i++)
        zmq_close(socks[i]);
    free(socks);
    zmq_close(old);
    usleep(500000);
    int new_ok = s_alive(h);
    s_verdict(h, "conns", old_ok && isfinite(w) && new_ok,
              "%d connections opened: the client connected before %s, a new one after %s",
              opened, old_ok && isfinite(w) ? "still served" : "NOT SERVED",
              new_ok ? "served" : "NOT SERVED");
}

typedef struct {
    const char *name;
    void (*fn)(h_t *);
} h_attack_t;

/* shutdown last: a server that obeys it cannot be attacked further */
static const h_attack_t s_attacks[] = {
    {"inject", a_inject},     {"held", a_held},   {"hugepull", a_hugepull},
    {"overflow", a_overflow}, {"forge", a_forge}, {"flood", a_flood},
    {"oversize", a_oversize}, {"conns", a_conns}, {"unread", a_unread},
    {"done", a_done},         {"shutdown", a_shutdown},
};
#define H_NATTACKS (sizeof s_attacks / sizeof s_attacks[0])

int main(int argc, char **argv)
{
    h_t h = {0};
    h.connections = 1200;
    h.unread_bound_mb = 300;
    h.next_id = 1;
    h.rng = (uint64_t)zps_now_ns();
    const char *list = NULL;
    double duration = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help")) {
            printf("usage: zps-hostile --server tcp://127.0.0.1:PORT [--pid PID] [--log FILE]\n"
                   "         [--marker FILE] [--attacks a,b,...] [--duration S] [--connections N]\n"
                   "         [--rank-base R] [--unread-bound-mb M]\n"
                   "attacks: inject held hugepull overflow forge flood oversize conns unread shutdown\n"
                   "(all by default; see docs/security.md).  Prints one line per attack:\n"
                   "DEFENDED or VULNERABLE and what it saw; exit 0 iff all were defended.\n");
            return 0;
        }
        if (!strcmp(o, "--version")) {
            printf("zps-hostile %s\n", ZPS_VERSION);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "zps-hostile: %s needs a value\n", o);
            return 2;
        }
        i++;
        int bad = 0, pid = 0;
        if (!strcmp(o, "--server")) h.ep = v;
        else if (!strcmp(o, "--pid")) {
            bad = zps_parse_int(v, &pid);
            h.pid = pid;
        }
        else if (!strcmp(o, "--log")) h.log = v;
        else if (!strcmp(o, "--marker")) h.marker = v;
        else if (!strcmp(o, "--attacks")) list = v;
        else if (!strcmp(o, "--duration")) bad = zps_parse_double(v, &duration);
        else if (!strcmp(o, "--connections")) bad = zps_parse_int(v, &h.connections);
        else if (!strcmp(o, "--rank-base")) bad = zps_parse_u32(v, &h.rank_base);
        else if (!strcmp(o, "--unread-bound-mb")) bad = zps_parse_int(v, &h.unread_bound_mb);
        else {
            fprintf(stderr, "zps-hostile: unknown option %s\n", o);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "zps-hostile: invalid value '%s' for %s (numbers are base 10)\n", v, o);
            return 2;
        }
    }
    if (!h.ep || strncmp(h.ep, "tcp://127.", 10)) {
        fprintf(stderr, "zps-hostile: --server tcp://127.x.y.z:PORT is required (loopback only)\n");
        return 2;
    }
    int run[H_NATTACKS];
    for (size_t k = 0; k < H_NATTACKS; k++)
        run[k] = list == NULL;
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, ",");
        size_t k = 0;
        while (k < H_NATTACKS && (strlen(s_attacks[k].name) != len || strncmp(p, s_attacks[k].name, len)))
            k++;
        if (k == H_NATTACKS) {
            fprintf(stderr, "zps-hostile: unknown attack '%.*s'\n", (int)len, p);
            return 2;
        }
        run[k] = 1;
        p += len + (p[len] == ',');
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    h.ctx = zmq_ctx_new();
    zmq_ctx_set(h.ctx, ZMQ_MAX_SOCKETS, h.connections + 64);
    if (!s_alive(&h)) {
        fprintf(stderr, "zps-hostile: the server at %s does not answer a hello\n", h.ep);
        zmq_ctx_term(h.ctx);
        return 1;
    }
    int64_t end = zps_now_ms() + (int64_t)(duration * 1000);
    int rounds = 0, gone = 0;
    do {
        for (size_t k = 0; k < H_NATTACKS && !gone; k++) {
            if (!run[k])
                continue;
            s_attacks[k].fn(&h);
            if (!s_alive(&h)) {
                printf("zps-hostile: the server stopped answering after attack %s: "
                       "no further attacks\n", s_attacks[k].name);
                h.vulnerable++;
                gone = 1;
            }
        }
        rounds++;
    } while (!gone && zps_now_ms() < end);
    printf("zps-hostile: %d round%s, %d attacks defended, %d vulnerable\n", rounds,
           rounds == 1 ? "" : "s", h.defended, h.vulnerable);
    zmq_ctx_term(h.ctx);
    return h.vulnerable ? 1 : 0;
}
