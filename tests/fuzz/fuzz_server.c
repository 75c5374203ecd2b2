/* fuzz_server: whole requests through a real parameter server
 * (ps/ps_server.c: zps_msg_recv, key decoding, ownership, key cache, value
 * codecs, non-finite checks, tables and optimizers, ssp/bsp clocks).
 *
 * The process runs four servers, each ps_server_run in its own thread on an
 * ipc:// endpoint in a private directory:
 *   0  async, 1 server: table 0 sgd dim 1, table 1 adagrad dim 4 (random init)
 *   1  ssp:1 for 2 workers (heartbeat timeout 300 ms), ftrl dim 1
 *   2  bsp for 2 workers, adam dim 2
 *   3  rank 1 of 2 servers (ownership check), ftrl dim 1, tables 0 and 1
 * Input: a flags byte (server = byte % 4; 0x04 and 0x08: key signatures, see
 * fix_sig), then the frames of one message as [u16 length][bytes] (up to 5).  The harness's DEALER sends them, then a
 * STATS request as a barrier, and reads replies until the barrier's answer:
 * so the server has handled the message completely before the next input.
 * Every reply must be a valid message (zps_msg_recv), of a type a server may
 * send; an ERROR must carry a ZPS_E* code and a text "server R: ..."; a pull
 * reply's values frame must decode for nkeys x dim in its codec.  No answer
 * within 10 s is a hang.  A SHUTDOWN request is not sent (it would stop the
 * server; the integration tests cover it).
 *
 * Servers keep their state from input to input (that is what lets the
 * fuzzer reach key-cache hits and clock changes); they are restarted every
 * FUZZ_SERVER_RESET (default 5000) inputs to bound their memory.  A crash
 * that needs earlier inputs may not reproduce from its input alone: rerun
 * with the recent corpus (`-runs=0 dir`) or read the server's stack. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "fuzz_util.h"
#include "ps_server.h"
#include "zps.pb-c.h"
#include "zps_codec.h"
#include "zps_err.h"
#include "zps_log.h"
#include "zps_msg.h"
#include "zps_vcodec.h"

#define NSERVERS 4
#define MAX_FRAMES 5

typedef struct {
    ps_server_t *srv;
    pthread_t thread;
    volatile sig_atomic_t stop;
    int rc;
    void *dealer;
    char endpoint[300];
    uint32_t dims[PS_MAX_TABLES];
    zps_log_t *log;
} target_t;

static void *g_ctx;
static target_t g_t[NSERVERS];
static FILE *g_devnull;
static uint64_t g_barrier_id = 1ull << 62, g_inputs;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *serve(void *arg)
{
    target_t *t = arg;
    t->rc = ps_server_run(t->srv, &t->stop);
    return NULL;
}

static void conf_for(int i, ps_server_conf_t *c)
{
    ps_server_conf_defaults(c);
    snprintf(c->bind, sizeof c->bind, "ipc://%s/s%d", fuzz_tmpdir(), i);
    c->capacity_hint = 1024;
    c->max_msg_bytes = 1u << 20;
    switch (i) {
    case 0:
        c->ntables = 2;
        zps_optim_defaults(&c->tables[0], ZPS_OPT_SGD);
        zps_optim_defaults(&c->tables[1], ZPS_OPT_ADAGRAD);
        c->tables[1].dim = 4;
        c->tables[1].init_scale = 0.01f;
        c->tables[1].init_skip = 1;
        break;
    case 1:
        zps_optim_defaults(&c->tables[0], ZPS_OPT_FTRL);
        c->tables[0].l1 = 0.5f;
        c->tables[0].l2 = 0.1f;
        c->consistency = 1;
        c->staleness = 1;
        c->num_workers = 2;
        c->heartbeat_timeout_ms = 300;
        break;
    case 2:
        zps_optim_defaults(&c->tables[0], ZPS_OPT_ADAM);
        c->tables[0].dim = 2;
        c->consistency = 2;
        c->num_workers = 2;
        c->heartbeat_timeout_ms = 300;
        break;
    default:
        c->rank = 1;
        c->nservers = 2;
        c->ntables = 2;
        zps_optim_defaults(&c->tables[0], ZPS_OPT_FTRL);
        zps_optim_defaults(&c->tables[1], ZPS_OPT_SGD);
        c->tables[1].dim = 3;
        break;
    }
}

static void start(int i)
{
    target_t *t = &g_t[i];
    ps_server_conf_t c;
    conf_for(i, &c);
    char err[512];
    t->stop = 0;
    if (!t->log)
        t->log = zps_log_new("server", i, g_devnull);
    FUZZ_CHECK(t->log, "log");
    t->srv = ps_server_new(&c, t->log, err, sizeof err);
    FUZZ_CHECK(t->srv, "server %d: %s", i, err);
    for (uint32_t k = 0; k < c.ntables; k++)
        t->dims[k] = c.tables[k].dim;
    snprintf(t->endpoint, sizeof t->endpoint, "%s", ps_server_endpoint(t->srv));
    FUZZ_CHECK(pthread_create(&t->thread, NULL, serve, t) == 0, "thread");
    t->dealer = zmq_socket(g_ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(t->dealer, ZMQ_LINGER, &linger, sizeof linger);
    FUZZ_CHECK(zmq_connect(t->dealer, t->endpoint) == 0, "connect %s", t->endpoint);
}

static void stop(int i)
{
    target_t *t = &g_t[i];
    t->stop = 1;
    pthread_join(t->thread, NULL);
    FUZZ_CHECK(t->rc == 0, "server %d ended with %d", i, t->rc);
    zmq_close(t->dealer);
    ps_server_destroy(&t->srv);
}

static void setup(void)
{
    if (g_ctx)
        return;
    g_ctx = zmq_ctx_new();
    g_devnull = fopen("/dev/null", "w");
    FUZZ_CHECK(g_ctx && g_devnull, "setup");
    for (int i = 0; i < NSERVERS; i++)
        start(i);
}

/* One reply from the server: must be a well-formed message of a server's. */
static int check_reply(target_t *t, int idx, uint64_t barrier)
{
    zps_msg_t m;
    int rc;
    while ((rc = zps_msg_recv(t->dealer, 0, &m, 0)) == ZPS_EINTR)
        zps_msg_close(&m);
    FUZZ_CHECK(rc == 0, "server %d sent an invalid reply (%d): %s", idx, rc, m.reason);
    Zps__Envelope *e = m.env;
    static int debug = -1;
    if (debug < 0)
        debug = getenv("FUZZ_DEBUG") != NULL;
    if (debug && e->request_id != barrier)
        fprintf(stderr, "server %d: %s%s%s\n", idx, zps_msg_type_name((int)e->type),
                e->type == ZPS__MSG_TYPE__ERROR ? " " : "",
                e->type == ZPS__MSG_TYPE__ERROR ? e->error->text : "");
    FUZZ_CHECK(e->role == ZPS__ROLE__ROLE_SERVER, "reply role %d", (int)e->role);
    int done = 0;
    switch (e->type) {
    case ZPS__MSG_TYPE__ERROR: {
        int code = e->error->code;
        FUZZ_CHECK(code <= -30900 && code >= -30999, "error code %d", code);
        char want[32];
        snprintf(want, sizeof want, "server %u: ", e->rank);
        FUZZ_CHECK(strncmp(e->error->text, want, strlen(want)) == 0, "error text '%s'",
                   e->error->text);
        FUZZ_CHECK(e->request_id != barrier, "the barrier STATS was rejected: %s", e->error->text);
        break;
    }
    case ZPS__MSG_TYPE__PULL_REPLY: {
        const Zps__PullReply *r = e->pull_reply;
        FUZZ_CHECK(r->table < PS_MAX_TABLES && r->dim == t->dims[r->table],
                   "pull reply table %u dim %u", r->table, r->dim);
        size_t vlen;
        const uint8_t *vb = zps_msg_bulk(&m, 1, &vlen);
        size_t nv = (size_t)r->nkeys * r->dim;
        FUZZ_CHECK(r->value_codec <= ZPS_VC_INT8, "reply codec %u", r->value_codec);
        FUZZ_CHECK(vlen == zps_vc_size((zps_vcodec_t)r->value_codec, nv),
                   "pull reply of %zu values in codec %u: %zu bytes", nv, r->value_codec, vlen);
        float *out = malloc((nv ? nv : 1) * sizeof *out);
        FUZZ_CHECK(out, "out of memory");
        FUZZ_CHECK(zps_vc_decode((zps_vcodec_t)r->value_codec, vb, vlen, nv, out) == 0,
                   "pull reply values do not decode");
        free(out);
        break;
    }
    case ZPS__MSG_TYPE__STATS_REPLY:
        done = e->request_id == barrier;
        break;
    case ZPS__MSG_TYPE__HELLO_REPLY:
    case ZPS__MSG_TYPE__PUSH_ACK:
    case ZPS__MSG_TYPE__CLOCK_ACK:
        break;
    default:
        FUZZ_CHECK(0, "server %d replied with type %d", idx, (int)e->type);
    }
    zps_msg_close(&m);
    return done;
}

/* Key caching needs a key_sig equal to zps_keys_sig of the keys, which the
 * fuzzer cannot compute: flag 0x04 sets the signature of a pull or push that
 * has one (non-zero) to the right value for its keys frame (and remembers
 * it), flag 0x08 replaces it with the last remembered one (a cache hit when
 * the keys frame is empty).  The envelope is repacked into *fp, *fl. */
static uint64_t g_last_sig;
static uint8_t g_env_buf[1 << 16];

static void fix_sig(Zps__Envelope *env, uint8_t flags, const uint8_t *kb, size_t klen,
                    const uint8_t **fp, size_t *fl)
{
    uint64_t *sig, nkeys;
    if (env->body_case == ZPS__ENVELOPE__BODY_PULL) {
        sig = &env->pull->key_sig;
        nkeys = env->pull->nkeys;
    } else if (env->body_case == ZPS__ENVELOPE__BODY_PUSH) {
        sig = &env->push->key_sig;
        nkeys = env->push->nkeys;
    } else {
        return;
    }
    if (*sig == 0)
        return;
    if (flags & 0x04) {
        if (klen < nkeys || klen > zps_keys_bound(nkeys))
            return;
        uint64_t *keys = malloc(nkeys ? nkeys * sizeof *keys : 8);
        FUZZ_CHECK(keys, "out of memory");
        if (zps_keys_decode(kb, klen, nkeys, keys, NULL) == 0)
            *sig = g_last_sig = zps_keys_sig(keys, nkeys);
        free(keys);
    } else if (g_last_sig) {
        *sig = g_last_sig;
    }
    size_t n = zps__envelope__get_packed_size(env);
    if (n > sizeof g_env_buf)
        return;
    zps__envelope__pack(env, g_env_buf);
    *fp = g_env_buf;
    *fl = n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    fuzz_in_t in = {data, size};
    uint8_t flags = fuzz_u8(&in);
    int idx = flags % NSERVERS;
    target_t *t = &g_t[idx];

    const uint8_t *fp[MAX_FRAMES];
    size_t fl[MAX_FRAMES];
    int nf = 0;
    while (nf < MAX_FRAMES && (nf == 0 || in.n > 0)) {
        uint16_t l = fuzz_u16(&in);
        fp[nf] = fuzz_bytes(&in, l, &fl[nf]);
        nf++;
    }
    Zps__Envelope *env = zps__envelope__unpack(NULL, fl[0], fp[0]);
    int shutdown = env && env->body_case == ZPS__ENVELOPE__BODY_SHUTDOWN;
    if (env && !shutdown && (flags & 0x0c))
        fix_sig(env, flags, nf > 1 ? fp[1] : NULL, nf > 1 ? fl[1] : 0, &fp[0], &fl[0]);
    if (env)
        zps__envelope__free_unpacked(env, NULL);
    if (shutdown)
        return -1; /* not added to the corpus */

    for (int i = 0; i < nf; i++) {
        int rc;
        while ((rc = zmq_send(t->dealer, fl[i] ? (const void *)fp[i] : "", fl[i],
                              i + 1 < nf ? ZMQ_SNDMORE : 0)) < 0 && errno == EINTR)
            ;
        FUZZ_CHECK(rc == (int)fl[i], "send: %s", zmq_strerror(errno));
    }
    /* barrier: STATS from a tool, answered after the message above */
    Zps__Envelope b;
    Zps__Stats st = ZPS__STATS__INIT;
    uint64_t bid = ++g_barrier_id;
    zps_msg_env(&b, ZPS__MSG_TYPE__STATS, ZPS__ROLE__ROLE_TOOL, 0, bid);
    b.body_case = ZPS__ENVELOPE__BODY_STATS;
    b.stats = &st;
    FUZZ_CHECK(zps_msg_send(t->dealer, NULL, &b, NULL, 0, NULL, 0, NULL) == 0, "barrier send");
    /* libFuzzer's -timeout alarm (SIGALRM) interrupts blocking calls: EINTR
     * is retried, against a deadline */
    int64_t deadline = now_ms() + 10000;
    for (;;) {
        zmq_pollitem_t it = {t->dealer, 0, ZMQ_POLLIN, 0};
        int64_t left = deadline - now_ms();
        int n = zmq_poll(&it, 1, left > 0 ? (long)left : 0);
        if (n < 0 && errno == EINTR && left > 0)
            continue;
        if (n != 1) {
            int alive = pthread_tryjoin_np(t->thread, NULL) != 0;
            fprintf(stderr, "server %d did not answer within 10 s (its thread %s, rc %d)\n", idx,
                    alive ? "is still running" : "has ended", t->rc);
            if (alive) { /* the crash report then shows where the server thread is */
                fprintf(stderr, "signalling the server thread for its stack:\n");
                pthread_kill(t->thread, SIGABRT);
                sleep(5);
            }
            FUZZ_CHECK(n == 1, "server %d hung", idx);
        }
        if (check_reply(t, idx, bid))
            break;
    }

    static long reset_every = -1;
    if (reset_every < 0) {
        const char *e = getenv("FUZZ_SERVER_RESET");
        reset_every = e ? atol(e) : 5000;
    }
    if (reset_every > 0 && ++g_inputs % (uint64_t)reset_every == 0) {
        for (int i = 0; i < NSERVERS; i++) {
            stop(i);
            start(i);
        }
    }
    return 0;
}
