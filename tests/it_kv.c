/* it_kv: client process for the key/value integration test (tests/it_kv.sh).
 *
 *   it_kv push   --servers A,B,C --client I --rounds R [--seed S] [--keys N]
 *   it_kv verify --servers A,B,C --clients W --rounds R [--seed S] [--keys N] --lr X
 *   it_kv errors --servers A       (malformed and wrong-version messages)
 *   it_kv guard MODE --servers A [--token-file F] [--count N] [--keys N]
 *                                  crafted messages for tests/it_server_guard.sh
 *                                  (see s_guard: shutdown, oversized, dedup, limit,
 *                                  forge, nonfinite, flood, held, conns, stats)
 *
 * push: in round r, client I pushes gradient g(I, r, k) for a pseudo-random
 * subset of the key universe (dense ids 0..N/2 and scattered 64-bit ids),
 * several requests in flight, with pulls mixed in.  Gradients are small
 * integers and the server runs SGD with a power-of-two step, so every sum is
 * exact in float whatever the order of application: verify recomputes each
 * weight independently and demands exact equality (nothing lost, nothing
 * applied twice), and checks the servers' push/key counters. */
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "wk_client.h"
#include "zps.pb-c.h"
#include "zps_args.h"
#include "zps_codec.h"
#include "zps_err.h"
#include "zps_hash.h"
#include "zps_curve.h"
#include "zps_modelfile.h"
#include "zps_msg.h"

static uint64_t s_key(uint64_t i, uint64_t nkeys)
{
    /* half dense ids, half scattered over the whole 64-bit space */
    return i < nkeys / 2 ? i : zps_mix64(i, 77) | 1ULL << 63;
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Does client c push key index i in round r?  ~1/3 of keys per round. */
static int s_pushes(uint64_t seed, uint32_t c, uint32_t r, uint64_t i)
{
    return zps_mix64(i * 1000003 + r * 31 + c, seed) % 3 == 0;
}

static float s_grad(uint64_t seed, uint32_t c, uint32_t r, uint64_t i)
{
    return (float)((int)(zps_mix64(i ^ ((uint64_t)r << 40) ^ ((uint64_t)c << 52), seed) % 17) - 8);
}

static size_t s_split_servers(char *list, const char **out, size_t max)
{
    size_t n = 0;
    for (char *tok = strtok(list, ","); tok && n < max; tok = strtok(NULL, ","))
        out[n++] = tok;
    return n;
}

/* key -> index (inverse of s_key) via a sorted table */
typedef struct {
    uint64_t key, idx;
} kv_t;
static int s_cmp_kv(const void *a, const void *b)
{
    return s_cmp_u64(&((const kv_t *)a)->key, &((const kv_t *)b)->key);
}

/* rogue --servers A --seconds N: a hostile client.  Sends, in a loop, every
 * kind of malformed message plus a flood of tiny valid requests, never
 * reading a reply, for N seconds.  Exits 0 (it has nothing to check: the
 * script checks that the job and the server survive). */
static int s_rogue(const char *endpoint, double seconds, uint64_t seed)
{
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0, hwm = 1000, timeo = 100;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeo, sizeof timeo);
    zmq_connect(s, endpoint);
    uint64_t rng = seed | 1, sent = 0;
    uint8_t *big = calloc(1, 16u << 20);
    uint8_t junk[256];
    double t_end = (double)time(NULL) + seconds;
    while ((double)time(NULL) < t_end) {
        for (size_t i = 0; i < sizeof junk; i++) {
            rng = zps_mix64(rng, 7);
            junk[i] = (uint8_t)rng;
        }
        /* mostly flood; every malformed kind often; an oversized frame rarely
         * (the server drops that connection and ZeroMQ reconnects) */
        int kind = (int)(rng % 400);
        kind = kind == 0 ? 6 : kind < 120 ? 1 + (kind % 7 == 5 ? 0 : kind % 7) : 9;
        if (kind == 6 && rng % 400 != 0)
            kind = 0;
        Zps__Envelope env;
        Zps__Pull pull = ZPS__PULL__INIT;
        Zps__Push push = ZPS__PUSH__INIT;
        zps_msg_env(&env, ZPS__MSG_TYPE__PULL, ZPS__ROLE__ROLE_WORKER, 7, rng);
        env.body_case = ZPS__ENVELOPE__BODY_PULL;
        env.pull = &pull;
        uint8_t *kb = malloc(64);
        float *vb = malloc(64);
        memset(kb, 0, 64);
        size_t klen = 1;
        switch (kind) {
        case 0: /* random bytes as the envelope, random frame count */
            zmq_send(s, junk, 1 + rng % 200, rng & 1 ? ZMQ_SNDMORE : 0);
            if (rng & 1)
                zmq_send(s, junk, 64, 0);
            free(kb);
            free(vb);
            kb = NULL;
            break;
        case 1: env.version = 1 + (uint32_t)(rng % 50 + 1); pull.nkeys = 1; break; /* wrong version */
        case 2: pull.nkeys = 1ULL << 40; break;                             /* huge count */
        case 3: pull.nkeys = 8; memcpy(kb, junk, 8); kb[7] |= 0x80; klen = 8; break; /* truncated */
        case 4: pull.table = 99; pull.nkeys = 1; break;                     /* no such table */
        case 5: /* NaN / inf gradients */
            zps_msg_env(&env, ZPS__MSG_TYPE__PUSH, ZPS__ROLE__ROLE_WORKER, 7, rng);
            env.body_case = ZPS__ENVELOPE__BODY_PUSH;
            env.push = &push;
            push.nkeys = 1;
            push.dim = 1;
            vb[0] = (rng & 1) ? NAN : INFINITY;
            kb[0] = 3;
            zps_msg_send(s, NULL, &env, kb, 1, vb, 4, NULL);
            kb = NULL;
            break;
        case 6: /* an oversized frame (over the server's --max-msg-mb) */
            zmq_send(s, big, 16u << 20, ZMQ_DONTWAIT);
            free(kb);
            free(vb);
            kb = NULL;
            break;
        case 7: /* push with a value frame of the wrong length */
            zps_msg_env(&env, ZPS__MSG_TYPE__PUSH, ZPS__ROLE__ROLE_WORKER, 7, rng);
            env.body_case = ZPS__ENVELOPE__BODY_PUSH;
            env.push = &push;
            push.nkeys = 1;
            push.dim = 1;
            zps_msg_send(s, NULL, &env, kb, 1, vb, 3, NULL);
            kb = NULL;
            break;
        default: /* flood of tiny valid pulls, replies never read */
            pull.nkeys = 1;
            kb[0] = (uint8_t)(rng & 0x7f);
            break;
        }
        if (kb) {
            zps_msg_send(s, NULL, &env, kb, klen, NULL, 0, NULL);
            free(vb);
        }
        sent++;
    }
    printf("it_kv rogue: sent %llu hostile or flooding messages\n", (unsigned long long)sent);
    free(big);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}

static int s_errors_test(const char *endpoint)
{
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int timeo = 5000, linger = 0, fails = 0;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeo, sizeof timeo);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(s, endpoint);
    for (int t = 0; t < 4; t++) {
        Zps__Envelope env;
        Zps__Pull pull = ZPS__PULL__INIT;
        zps_msg_env(&env, ZPS__MSG_TYPE__PULL, ZPS__ROLE__ROLE_TOOL, 9, 42);
        env.body_case = ZPS__ENVELOPE__BODY_PULL;
        env.pull = &pull;
        const char *what = "";
        int expect = 0;
        if (t == 0) {
            what = "random bytes";
            zmq_send(s, "\xff\xfe garbage \x01\x02", 13, 0);
            expect = ZPS_EPROTO;
        } else if (t == 1) {
            what = "protocol version 2";
            env.version = 2;
            expect = ZPS_EVERSION;
        } else if (t == 2) {
            what = "count larger than the key frame";
            pull.nkeys = 1000;
            expect = ZPS_EPROTO;
        } else {
            what = "truncated key frame";
            pull.nkeys = 2;
            expect = ZPS_EPROTO;
        }
        if (t > 0) {
            uint8_t *kb = malloc(4);
            kb[0] = 5;
            kb[1] = 0x80; /* varint continues past the end */
            zps_msg_send(s, NULL, &env, kb, t == 3 ? 2 : 1, NULL, 0, NULL);
        }
        zps_msg_t m;
        int rc = zps_msg_recv(s, 0, &m, 0);
        if (rc != 0 || m.env->body_case != ZPS__ENVELOPE__BODY_ERROR ||
            m.env->error->code != expect) {
            fprintf(stderr, "it_kv errors: %s: expected error %d, got rc %d\n", what, expect, rc);
            fails++;
        } else {
            printf("it_kv errors: %s -> error %d: %s\n", what, m.env->error->code,
                   m.env->error->text);
        }
        zps_msg_close(&m);
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    return fails;
}

static int s_print_key(void *ctx, uint64_t key, const float *w)
{
    const zps_mf_manifest_t *m = ctx;
    printf("%llu", (unsigned long long)key);
    for (uint32_t j = 0; j < m->dim; j++)
        printf(" %.9g", (double)w[j]);
    printf("\n");
    return 0;
}

/* dump-model --model DIR: "key w..." for every key of a saved model */
static int s_dump_model(const char *dir)
{
    zps_mf_manifest_t m;
    char err[1200];
    if (zps_mf_read_manifest(dir, &m, err, sizeof err) ||
        zps_mf_load(dir, &m, s_print_key, &m, err, sizeof err)) {
        fprintf(stderr, "it_kv dump-model: %s\n", err);
        return 1;
    }
    return 0;
}

/* ---- guard: crafted messages for tests/it_server_guard.sh ------------------------ */

static void *g_ctx;
static int g_quiet; /* s_code: do not print errors */

static void *s_dealer(const char *endpoint)
{
    void *d = zmq_socket(g_ctx, ZMQ_DEALER);
    int timeo = 5000, linger = 0, hwm = 0;
    zmq_setsockopt(d, ZMQ_RCVTIMEO, &timeo, sizeof timeo);
    zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(d, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(d, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_connect(d, endpoint);
    return d;
}

/* One reply; 0 with m filled, or 1 (timeout / invalid). */
static int s_reply(void *d, zps_msg_t *m)
{
    int rc = zps_msg_recv(d, 0, m, 0);
    if (rc) {
        zps_msg_close(m);
        return 1;
    }
    return 0;
}

/* The reply's error code (0 for a non-error reply, 1 for none at all). */
static int s_code(void *d, uint64_t *errkey)
{
    zps_msg_t m;
    if (s_reply(d, &m))
        return 1;
    int code = m.env->body_case == ZPS__ENVELOPE__BODY_ERROR ? m.env->error->code : 0;
    if (code && errkey)
        *errkey = m.env->error->has_key ? m.env->error->key : UINT64_MAX;
    if (code && !g_quiet)
        printf("  -> error %d: %s\n", code, m.env->error->text);
    zps_msg_close(&m);
    return code;
}

/* A push envelope with one key (its encoded bytes) and the value 1: the
 * frames are malloc'ed copies, which zps_msg_send takes over. */
static void s_send_one(void *d, Zps__Envelope *env, const uint8_t *kb, size_t kl)
{
    uint8_t *k = malloc(kl);
    float *v = malloc(sizeof *v);
    memcpy(k, kb, kl);
    *v = 1.0f;
    zps_msg_send(d, NULL, env, k, kl, v, sizeof *v, NULL);
}

static void s_send_hello(void *d, Zps__Role role, uint32_t rank, uint64_t nonce)
{
    Zps__Envelope env;
    Zps__Hello h = ZPS__HELLO__INIT;
    zps_msg_env(&env, ZPS__MSG_TYPE__HELLO, role, rank, 1);
    h.client_version = "it_kv\n2026-01-01 forged line";
    h.client_nonce = nonce;
    env.body_case = ZPS__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    zps_msg_send(d, NULL, &env, NULL, 0, NULL, 0, NULL);
}

/* A push of n keys (first, first+step, ...) with value v each. */
static void s_send_push(void *d, uint32_t rank, uint64_t nonce, uint64_t seq, uint64_t first,
                        uint64_t step, size_t n, float v)
{
    uint64_t *k = malloc((n ? n : 1) * sizeof *k);
    float *vals = malloc((n ? n : 1) * sizeof *vals);
    for (size_t i = 0; i < n; i++) {
        k[i] = first + i * step;
        vals[i] = v;
    }
    uint8_t *kb = malloc(zps_keys_bound(n) + 1);
    long kl = zps_keys_encode(k, n, kb, zps_keys_bound(n) + 1);
    Zps__Envelope env;
    Zps__Push p = ZPS__PUSH__INIT;
    zps_msg_env(&env, ZPS__MSG_TYPE__PUSH, ZPS__ROLE__ROLE_WORKER, rank, seq);
    p.nkeys = n;
    p.dim = 1;
    p.seq = seq;
    p.client_nonce = nonce;
    env.body_case = ZPS__ENVELOPE__BODY_PUSH;
    env.push = &p;
    zps_msg_send(d, NULL, &env, kb, (size_t)kl, vals, n * sizeof *vals, NULL);
    free(k);
}

static void s_send_pull(void *d, Zps__Role role, uint32_t rank, uint64_t id, const uint64_t *keys,
                        size_t n, uint64_t clock)
{
    uint8_t *kb = malloc(zps_keys_bound(n) + 1);
    long kl = zps_keys_encode(keys, n, kb, zps_keys_bound(n) + 1);
    Zps__Envelope env;
    Zps__Pull p = ZPS__PULL__INIT;
    zps_msg_env(&env, ZPS__MSG_TYPE__PULL, role, rank, id);
    p.nkeys = n;
    p.clock = clock;
    env.body_case = ZPS__ENVELOPE__BODY_PULL;
    env.pull = &p;
    zps_msg_send(d, NULL, &env, kb, (size_t)kl, NULL, 0, NULL);
}

/* Pull keys; values into out.  0 or 1. */
static int s_pull_vals(void *d, const uint64_t *keys, size_t n, float *out)
{
    s_send_pull(d, ZPS__ROLE__ROLE_TOOL, 99, 7, keys, n, 0);
    zps_msg_t m;
    if (s_reply(d, &m))
        return 1;
    size_t len;
    const void *v = zps_msg_bulk(&m, 1, &len);
    int bad = m.env->body_case != ZPS__ENVELOPE__BODY_PULL_REPLY || len != n * sizeof(float);
    if (!bad)
        memcpy(out, v, len);
    zps_msg_close(&m);
    return bad;
}

/* STATS; the reply in *out (caller closes), skipping other replies on d.
 * Returns how many other replies were skipped, or -1. */
static long s_stats(void *d, zps_msg_t *out)
{
    Zps__Envelope env;
    Zps__Stats st = ZPS__STATS__INIT;
    zps_msg_env(&env, ZPS__MSG_TYPE__STATS, ZPS__ROLE__ROLE_TOOL, 99, 424242);
    env.body_case = ZPS__ENVELOPE__BODY_STATS;
    env.stats = &st;
    zps_msg_send(d, NULL, &env, NULL, 0, NULL, 0, NULL);
    long skipped = 0;
    for (;;) {
        if (s_reply(d, out))
            return -1;
        if (out->env->body_case == ZPS__ENVELOPE__BODY_STATS_REPLY)
            return skipped;
        skipped++;
        zps_msg_close(out);
    }
}

static void s_print_stats(const Zps__StatsReply *r)
{
    printf("keys_stored=%llu received_pushes=%llu applied_pushes=%llu duplicate_pushes=%llu "
           "rejected_pushes=%llu held_pulls=%llu maintenance_passes=%llu "
           "maintenance_max_gap_ms=%llu dropped_replies=%llu refused_peers=%llu perm_denied=%llu "
           "server_nonce=%016llx clients=%zu\n",
           (unsigned long long)r->keys_stored, (unsigned long long)r->received_pushes,
           (unsigned long long)r->applied_pushes, (unsigned long long)r->duplicate_pushes,
           (unsigned long long)r->rejected_pushes, (unsigned long long)r->held_pulls,
           (unsigned long long)r->maintenance_passes, (unsigned long long)r->maintenance_max_gap_ms,
           (unsigned long long)r->dropped_replies, (unsigned long long)r->refused_peers,
           (unsigned long long)r->perm_denied, (unsigned long long)r->server_nonce, r->n_clients);
    for (size_t i = 0; i < r->n_clients; i++) {
        const Zps__ClientStats *c = r->clients[i];
        printf("client rank=%u nonce=%016llx received=%llu applied=%llu duplicates=%llu "
               "rejected=%llu applied_seq=%llu durable_seq=%llu\n", c->rank,
               (unsigned long long)c->nonce, (unsigned long long)c->received,
               (unsigned long long)c->applied, (unsigned long long)c->duplicates,
               (unsigned long long)c->rejected, (unsigned long long)c->applied_seq,
               (unsigned long long)c->durable_seq);
    }
}

#define G_CHECK(cond, ...)                                                                    \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "it_kv guard: FAILED: " __VA_ARGS__);                             \
            fprintf(stderr, "\n");                                                            \
            fails++;                                                                          \
        }                                                                                     \
    } while (0)

static int s_guard(const char *mode, const char *ep, const char *token_file, uint64_t count,
                   uint64_t nkeys)
{
    g_ctx = zmq_ctx_new();
    void *d = s_dealer(ep);
    int fails = 0;
    if (!strcmp(mode, "shutdown")) {
        /* SHUTDOWN with the token read from token_file (none: no token) */
        char tok[300] = "";
        if (token_file) {
            FILE *f = fopen(token_file, "r");
            if (!f || !fgets(tok, sizeof tok, f))
                tok[0] = 0;
            if (f)
                fclose(f);
            tok[strcspn(tok, "\r\n")] = 0;
        }
        Zps__Envelope env;
        Zps__Shutdown sd = ZPS__SHUTDOWN__INIT;
        zps_msg_env(&env, ZPS__MSG_TYPE__SHUTDOWN, ZPS__ROLE__ROLE_TOOL, 0, 5);
        sd.reason = "it_server_guard";
        sd.admin_token = tok;
        env.body_case = ZPS__ENVELOPE__BODY_SHUTDOWN;
        env.shutdown = &sd;
        zps_msg_send(d, NULL, &env, NULL, 0, NULL, 0, NULL);
        zps_msg_t m;
        int rc = 1;
        if (!s_reply(d, &m)) {
            if (m.env->type == ZPS__MSG_TYPE__SHUTDOWN_ACK) {
                printf("shutdown: acknowledged\n");
                rc = 0;
            } else if (m.env->body_case == ZPS__ENVELOPE__BODY_ERROR) {
                printf("shutdown: error %d: %s\n", m.env->error->code, m.env->error->text);
                rc = m.env->error->code == ZPS_EPERM ? 3 : 1;
            }
            zps_msg_close(&m);
        }
        fails = rc;
    } else if (!strcmp(mode, "oversized")) {
        /* a push whose values frame is count MiB: an ERROR reply, not silence */
        size_t bytes = (size_t)count << 20;
        uint8_t *kb = malloc(4), *vb = calloc(1, bytes);
        kb[0] = 1;
        Zps__Envelope env;
        Zps__Push p = ZPS__PUSH__INIT;
        zps_msg_env(&env, ZPS__MSG_TYPE__PUSH, ZPS__ROLE__ROLE_WORKER, 0, 9);
        p.nkeys = 1;
        p.dim = 1;
        p.seq = 1;
        p.client_nonce = 77;
        env.body_case = ZPS__ENVELOPE__BODY_PUSH;
        env.push = &p;
        zps_msg_send(d, NULL, &env, kb, 1, vb, bytes, NULL);
        int code = s_code(d, NULL);
        G_CHECK(code == ZPS_ETOOBIG, "oversized push: got %d, expected %d (ZPS_ETOOBIG)", code,
                ZPS_ETOOBIG);
        /* and the server goes on serving this connection */
        zps_msg_t st;
        G_CHECK(s_stats(d, &st) >= 0, "no STATS reply after the oversized message");
        if (st.env) {
            G_CHECK(st.env->stats_reply->rejected_pushes == 1, "rejected_pushes %llu != 1",
                    (unsigned long long)st.env->stats_reply->rejected_pushes);
            zps_msg_close(&st);
        }
    } else if (!strcmp(mode, "dedup")) {
        /* sgd lr 1 dim 1: seq s pushes gradient -1 to keys 1000+s and 0; every
         * seq sent 1..3 times in a scrambled order: each applied once */
        const uint64_t N = count ? count : 500, nonce = 0xabcdef12345ULL;
        uint64_t sent = 0, dups_acked = 0, acks = 0, last_durable = 0, outstanding = 0;
        s_send_hello(d, ZPS__ROLE__ROLE_WORKER, 3, nonce);
        G_CHECK(s_code(d, NULL) == 0, "hello failed");
        for (uint64_t round = 0; round < 3; round++) {
            for (uint64_t i = 0; i < N; i++) {
                uint64_t seq = 1 + (i * 7919 + round * 31) % N; /* a permutation of 1..N */
                if (round > 0 && zps_mix64(seq, round) % 2)
                    continue;
                uint64_t keys[2] = {0, 1000 + seq};
                uint8_t *kb = malloc(32);
                long kl = zps_keys_encode(keys, 2, kb, 32);
                float *vb = malloc(8);
                vb[0] = vb[1] = -1.0f;
                Zps__Envelope env;
                Zps__Push p = ZPS__PUSH__INIT;
                zps_msg_env(&env, ZPS__MSG_TYPE__PUSH, ZPS__ROLE__ROLE_WORKER, 3, seq);
                p.nkeys = 2;
                p.dim = 1;
                p.seq = seq;
                p.client_nonce = nonce;
                env.body_case = ZPS__ENVELOPE__BODY_PUSH;
                env.push = &p;
                zps_msg_send(d, NULL, &env, kb, (size_t)kl, vb, 8, NULL);
                sent++;
                outstanding++;
                /* at most 200 in flight, as a client keeps a window */
                while (outstanding >= 200 || (round == 2 && i + 1 == N && outstanding)) {
                    zps_msg_t m;
                    if (s_reply(d, &m)) {
                        G_CHECK(0, "a reply is missing (%llu outstanding)",
                                (unsigned long long)outstanding);
                        outstanding = 0;
                        break;
                    }
                    outstanding--;
                    if (m.env->body_case == ZPS__ENVELOPE__BODY_PUSH_ACK) {
                        acks++;
                        dups_acked += m.env->push_ack->duplicate;
                        G_CHECK(m.env->push_ack->server_nonce != 0, "ack without server_nonce");
                        last_durable = m.env->push_ack->durable_seq;
                    }
                    zps_msg_close(&m);
                }
            }
        }
        G_CHECK(acks == sent, "%llu acks for %llu pushes", (unsigned long long)acks,
                (unsigned long long)sent);
        G_CHECK(dups_acked == sent - N, "%llu duplicate acks, expected %llu",
                (unsigned long long)dups_acked, (unsigned long long)(sent - N));
        G_CHECK(last_durable == N, "durable_seq %llu after all, expected %llu (no checkpoints)",
                (unsigned long long)last_durable, (unsigned long long)N);
        float w0;
        uint64_t k0 = 0;
        G_CHECK(s_pull_vals(d, &k0, 1, &w0) == 0 && w0 == (float)N,
                "key 0 is %g, expected %llu: a push was lost or applied twice", (double)w0,
                (unsigned long long)N);
        /* seq 0 and a seq beyond the window: ERROR ZPS_ESEQ, nothing applied */
        s_send_push(d, 3, nonce, 0, 0, 1, 1, -1.0f);
        G_CHECK(s_code(d, NULL) == ZPS_ESEQ, "seq 0 not refused with ZPS_ESEQ");
        s_send_push(d, 3, nonce, N + 4097, 0, 1, 1, -1.0f);
        G_CHECK(s_code(d, NULL) == ZPS_ESEQ, "seq beyond the window not refused with ZPS_ESEQ");
        s_send_push(d, 3, nonce, N + 4096, 0, 1, 1, -1.0f);
        G_CHECK(s_code(d, NULL) == 0, "seq at the window's far end refused");
        G_CHECK(s_pull_vals(d, &k0, 1, &w0) == 0 && w0 == (float)(N + 1), "key 0 is %g after the "
                "seq checks, expected %llu", (double)w0, (unsigned long long)N + 1);
        /* the hello says what is applied for this process */
        s_send_hello(d, ZPS__ROLE__ROLE_WORKER, 3, nonce);
        zps_msg_t h;
        if (!s_reply(d, &h)) {
            G_CHECK(h.env->body_case == ZPS__ENVELOPE__BODY_HELLO_REPLY &&
                        h.env->hello_reply->applied_seq == N && h.env->hello_reply->server_nonce,
                    "hello reply applied_seq %llu, expected %llu",
                    (unsigned long long)(h.env->hello_reply ? h.env->hello_reply->applied_seq : 0),
                    (unsigned long long)N);
            zps_msg_close(&h);
        }
        zps_msg_t st;
        if (s_stats(d, &st) >= 0) {
            s_print_stats(st.env->stats_reply);
            zps_msg_close(&st);
        }
        printf("dedup: %llu pushes sent (%llu distinct), %llu duplicate acks, each applied once\n",
               (unsigned long long)sent, (unsigned long long)N, (unsigned long long)dups_acked);
    } else if (!strcmp(mode, "limit")) {
        /* --max-keys count: a first push of count/2+10 keys fits, a second of as
         * many new keys does not and changes nothing */
        size_t half = (size_t)count / 2 + 10;
        s_send_push(d, 4, 99, 1, 1, 2, half, 1.0f);
        G_CHECK(s_code(d, NULL) == 0, "first push refused");
        s_send_push(d, 4, 99, 2, 2, 2, half, 1.0f);
        int code = s_code(d, NULL);
        G_CHECK(code == ZPS_ELIMIT, "push over --max-keys: got %d, expected ZPS_ELIMIT", code);
        zps_msg_t st;
        if (s_stats(d, &st) >= 0) {
            G_CHECK(st.env->stats_reply->keys_stored == half, "%llu keys stored, expected %zu "
                    "(the refused push must store nothing)",
                    (unsigned long long)st.env->stats_reply->keys_stored, half);
            zps_msg_close(&st);
        }
        /* the refused seq was not recorded: the same push retried (smaller) applies */
        s_send_push(d, 4, 99, 2, 2, 2, 5, 1.0f);
        G_CHECK(s_code(d, NULL) == 0, "retry of the refused seq with fewer keys refused");
    } else if (!strcmp(mode, "forge")) {
        /* plaintext binding: B cannot push, clock or heartbeat as A's rank,
         * nor take it over with a HELLO while A's connection is alive; once
         * A's connection is gone (a restarted worker), B's HELLO takes it */
        void *a = s_dealer(ep), *b = s_dealer(ep);
        uint64_t perm0 = 0, perms = 0;
        zps_msg_t st0;
        if (s_stats(d, &st0) >= 0) {
            perm0 = st0.env->stats_reply->perm_denied;
            zps_msg_close(&st0);
        }
        s_send_hello(a, ZPS__ROLE__ROLE_WORKER, 0, 1111);
        G_CHECK(s_code(a, NULL) == 0, "A's hello failed");
        s_send_push(a, 0, 1111, 1, 5, 1, 1, -1.0f);
        G_CHECK(s_code(a, NULL) == 0, "A's push failed");
        s_send_push(b, 0, 2222, 1, 5, 1, 1, -1.0f);
        G_CHECK(s_code(b, NULL) == ZPS_EPERM, "B pushed as A's rank");
        perms++;
        Zps__Envelope env;
        Zps__Clock ck = ZPS__CLOCK__INIT;
        zps_msg_env(&env, ZPS__MSG_TYPE__CLOCK, ZPS__ROLE__ROLE_WORKER, 0, 3);
        ck.clock = 100;
        env.body_case = ZPS__ENVELOPE__BODY_CLOCK;
        env.clock = &ck;
        zps_msg_send(b, NULL, &env, NULL, 0, NULL, 0, NULL);
        G_CHECK(s_code(b, NULL) == ZPS_EPERM, "B sent a CLOCK as A's rank");
        perms++;
        /* a HELLO with a new nonce while A is alive does not take the rank */
        s_send_hello(b, ZPS__ROLE__ROLE_WORKER, 0, 3333);
        G_CHECK(s_code(b, NULL) == 0, "B's hello was not answered");
        s_send_push(b, 0, 3333, 1, 5, 1, 1, -1.0f);
        G_CHECK(s_code(b, NULL) == ZPS_EPERM, "B's hello took the rank of a live connection");
        perms++;
        s_send_push(a, 0, 1111, 2, 5, 1, 1, -1.0f);
        G_CHECK(s_code(a, NULL) == 0, "A lost its rank to B's hello");
        /* A's process goes away: its connection closes, and B's hello
         * takes the rank (retried until the server has seen the close) */
        int lz = 0;
        zmq_setsockopt(a, ZMQ_LINGER, &lz, sizeof lz);
        zmq_close(a);
        int took = 0;
        for (int tries = 0; tries < 200 && !took; tries++) {
            s_send_hello(b, ZPS__ROLE__ROLE_WORKER, 0, 3333);
            G_CHECK(s_code(b, NULL) == 0, "B's hello was not answered");
            s_send_push(b, 0, 3333, 1, 5, 1, 1, -1.0f);
            int code = s_code(b, NULL);
            if (code == 0)
                took = 1;
            else if (code == ZPS_EPERM)
                perms++, usleep(50000);
            else
                break;
        }
        G_CHECK(took, "B's hello did not take the rank after A's connection closed");
        float w;
        uint64_t k = 5;
        G_CHECK(s_pull_vals(d, &k, 1, &w) == 0 && w == 3.0f, "key 5 is %g, expected 3", (double)w);
        zps_msg_t st;
        if (s_stats(d, &st) >= 0) {
            s_print_stats(st.env->stats_reply);
            G_CHECK(st.env->stats_reply->perm_denied - perm0 == perms,
                    "perm_denied +%llu, expected +%llu",
                    (unsigned long long)(st.env->stats_reply->perm_denied - perm0),
                    (unsigned long long)perms);
            zps_msg_close(&st);
        }
        zmq_close(b);
    } else if (!strcmp(mode, "nonfinite")) {
        /* a gradient of count (e.g. 1e20 under ftrl, 3e38 under sgd lr 2): rejected with
         * the key, the weights unchanged and finite */
        uint64_t keys[3] = {10, 20, 30}, errkey = 0;
        float before[3], after[3];
        s_send_push(d, 6, 5, 1, 10, 10, 3, 1.0f);
        G_CHECK(s_code(d, NULL) == 0, "a normal push failed");
        G_CHECK(s_pull_vals(d, keys, 3, before) == 0, "pull failed");
        /* key 20 gets the huge gradient, 10 and 30 a normal one */
        uint8_t *kb = malloc(32);
        long kl = zps_keys_encode(keys, 3, kb, 32);
        float *vb = malloc(12);
        vb[0] = vb[2] = 1.0f;
        const float huge = strtof(token_file ? token_file : "1e20", NULL);
        vb[1] = huge;
        Zps__Envelope env;
        Zps__Push p = ZPS__PUSH__INIT;
        zps_msg_env(&env, ZPS__MSG_TYPE__PUSH, ZPS__ROLE__ROLE_WORKER, 6, 2);
        p.nkeys = 3;
        p.dim = 1;
        p.seq = 2;
        p.client_nonce = 5;
        env.body_case = ZPS__ENVELOPE__BODY_PUSH;
        env.push = &p;
        zps_msg_send(d, NULL, &env, kb, (size_t)kl, vb, 12, NULL);
        int code = s_code(d, &errkey);
        G_CHECK(code == ZPS_ENONFINITE && errkey == 20, "huge gradient: code %d key %llu, "
                "expected ZPS_ENONFINITE for key 20", code, (unsigned long long)errkey);
        G_CHECK(s_pull_vals(d, keys, 3, after) == 0, "pull failed");
        for (int i = 0; i < 3; i++)
            G_CHECK(after[i] == before[i] && isfinite(after[i]),
                    "key %llu changed from %g to %g", (unsigned long long)keys[i],
                    (double)before[i], (double)after[i]);
        printf("nonfinite: gradient %g refused for key %llu; weights unchanged\n", (double)huge,
               (unsigned long long)errkey);
    } else if (!strcmp(mode, "lrscale")) {
        /* Push.lr_scale under sgd (--lr 0.5): a gradient of 1 on key 7 with
         * scale 2 moves w by exactly -1; out-of-range scales are refused with
         * nothing applied (the next seq is the same one, retried) */
        uint64_t key = 7;
        const float bad[] = {100.0f, -1.0f, NAN, INFINITY};
        uint8_t kb0[16];
        long kl = zps_keys_encode(&key, 1, kb0, sizeof kb0);
        float w = 0;
        Zps__Envelope env;
        Zps__Push p = ZPS__PUSH__INIT;
        p.nkeys = 1;
        p.dim = 1;
        p.client_nonce = 9;
        p.seq = 1;
        env.body_case = ZPS__ENVELOPE__BODY_PUSH;
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            zps_msg_env(&env, ZPS__MSG_TYPE__PUSH, ZPS__ROLE__ROLE_WORKER, 4, 10 + i);
            env.body_case = ZPS__ENVELOPE__BODY_PUSH;
            env.push = &p;
            p.lr_scale = bad[i];
            s_send_one(d, &env, kb0, (size_t)kl); /* the frames are handed over */
            int code = s_code(d, NULL);
            G_CHECK(code == ZPS_EINVAL, "lr_scale %g: code %d, expected ZPS_EINVAL",
                    (double)bad[i], code);
        }
        G_CHECK(s_pull_vals(d, &key, 1, &w) == 0 && w == 0.0f, "a refused push changed w to %g",
                (double)w);
        zps_msg_env(&env, ZPS__MSG_TYPE__PUSH, ZPS__ROLE__ROLE_WORKER, 4, 20);
        env.body_case = ZPS__ENVELOPE__BODY_PUSH;
        env.push = &p;
        p.lr_scale = 2.0f;
        s_send_one(d, &env, kb0, (size_t)kl);
        G_CHECK(s_code(d, NULL) == 0, "a push with lr_scale 2 failed");
        G_CHECK(s_pull_vals(d, &key, 1, &w) == 0, "pull failed");
        G_CHECK(w == -1.0f, "sgd lr 0.5, gradient 1, lr_scale 2: w = %g, expected -1", (double)w);
        printf("lrscale: scales 100, -1, nan, inf refused; scale 2 applied exactly (w = %g)\n",
               (double)w);
    } else if (!strcmp(mode, "flood")) {
        /* count tiny pulls sent without reading, then STATS: every pull is either
         * answered or counted as dropped, and maintenance ran between batches */
        uint64_t k = 1;
        for (uint64_t i = 0; i < count; i++)
            s_send_pull(d, ZPS__ROLE__ROLE_TOOL, 98, i + 1, &k, 1, 0);
        /* read the answers until the server has been quiet for 2 s: a STATS
         * sent into a full queue could itself be dropped (that is the rule
         * being tested), so it goes out only once the queue is drained */
        long answered = 0;
        for (;;) {
            zmq_pollitem_t it = {d, 0, ZMQ_POLLIN, 0};
            if (zmq_poll(&it, 1, 2000) <= 0)
                break;
            zps_msg_t r;
            while (zps_msg_recv(d, 0, &r, ZMQ_DONTWAIT) == 0) {
                answered += r.env && r.env->body_case == ZPS__ENVELOPE__BODY_PULL_REPLY;
                zps_msg_close(&r);
            }
            zps_msg_close(&r);
        }
        zps_msg_t st;
        long got = s_stats(d, &st);
        G_CHECK(got >= 0, "no STATS reply after the flood");
        if (got >= 0)
            got += answered;
        if (got >= 0) {
            const Zps__StatsReply *r = st.env->stats_reply;
            s_print_stats(r);
            printf("flood: %llu pulls sent, %ld answered, %llu replies dropped\n",
                   (unsigned long long)count, got, (unsigned long long)r->dropped_replies);
            G_CHECK((uint64_t)got + r->dropped_replies == count,
                    "%ld answered + %llu dropped != %llu sent", got,
                    (unsigned long long)r->dropped_replies, (unsigned long long)count);
            G_CHECK(r->maintenance_passes >= count / nkeys,
                    "%llu maintenance passes for %llu messages (drain batch %llu)",
                    (unsigned long long)r->maintenance_passes, (unsigned long long)count,
                    (unsigned long long)nkeys);
            zps_msg_close(&st);
        }
    } else if (!strcmp(mode, "held")) {
        /* ssp:0 with 2 workers: pulls of worker 0 for clock 5 wait; at most 256 are
         * held (the rest ELIMIT); when the connection closes they are dropped */
        s_send_hello(d, ZPS__ROLE__ROLE_WORKER, 0, 4444);
        G_CHECK(s_code(d, NULL) == 0, "hello failed");
        uint64_t k = 3;
        for (uint64_t i = 0; i < count; i++)
            s_send_pull(d, ZPS__ROLE__ROLE_WORKER, 0, i + 10, &k, 1, 5);
        uint64_t limited = 0;
        g_quiet = 1;
        for (uint64_t i = 0; i + 256 < count; i++)
            limited += s_code(d, NULL) == ZPS_ELIMIT;
        g_quiet = 0;
        G_CHECK(limited == count - 256, "%llu pulls refused, expected %llu",
                (unsigned long long)limited, (unsigned long long)(count - 256));
        void *o = s_dealer(ep);
        zps_msg_t st;
        if (s_stats(o, &st) >= 0) {
            G_CHECK(st.env->stats_reply->held_pulls == 256, "%llu held, expected 256",
                    (unsigned long long)st.env->stats_reply->held_pulls);
            zps_msg_close(&st);
        }
        zmq_close(d);
        d = NULL;
        uint64_t held = 1;
        for (int t = 0; t < 50 && held; t++) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
            if (s_stats(o, &st) >= 0) {
                held = st.env->stats_reply->held_pulls;
                zps_msg_close(&st);
            }
        }
        G_CHECK(held == 0, "%llu pulls still held after their connection closed",
                (unsigned long long)held);
        printf("held: %llu refused over the bound, the 256 held dropped when the peer left\n",
               (unsigned long long)limited);
        zmq_close(o);
    } else if (!strcmp(mode, "conns")) {
        /* --max-connections count: connection count+1 is refused, the others work */
        void *c[64];
        for (uint64_t i = 0; i <= count && i < 64; i++) {
            c[i] = s_dealer(ep);
            zps_msg_t st;
            long r = s_stats(c[i], &st);
            if (r < 0) {
                /* s_stats failed: the reply was an ERROR, read as not STATS */
            }
            if (r >= 0)
                zps_msg_close(&st);
            G_CHECK((i < count) == (r == 0), "connection %llu: %s", (unsigned long long)i,
                    r == 0 ? "served over the limit" : "refused under the limit");
        }
        for (uint64_t i = 0; i < count; i++) {
            zps_msg_t st;
            G_CHECK(s_stats(c[i], &st) == 0, "connection %llu no longer served",
                    (unsigned long long)i);
            zps_msg_close(&st);
        }
        for (uint64_t i = 0; i <= count && i < 64; i++)
            zmq_close(c[i]);
    } else if (!strcmp(mode, "stats")) {
        zps_msg_t st;
        if (s_stats(d, &st) >= 0) {
            s_print_stats(st.env->stats_reply);
            zps_msg_close(&st);
        } else {
            fails++;
        }
    } else {
        fprintf(stderr, "it_kv guard: unknown mode %s\n", mode);
        fails = 2;
    }
    if (d)
        zmq_close(d);
    zmq_ctx_term(g_ctx);
    return fails;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "dump-model") && !strcmp(argv[2], "--model"))
        return s_dump_model(argv[3]);
    if (argc < 2) {
        fprintf(stderr, "usage: it_kv push|verify|errors ...\n");
        return 2;
    }
    const char *mode = argv[1];
    if (!strcmp(mode, "guard") && argc >= 3) {
        const char *gm = argv[2], *ep = NULL, *tf = NULL;
        uint64_t count = 0, gk = 256;
        enum { G_SERVERS = 1, G_TOKEN, G_COUNT, G_KEYS };
        static const struct option gopts[] = {{"servers", required_argument, 0, G_SERVERS},
                                              {"token-file", required_argument, 0, G_TOKEN},
                                              {"value", required_argument, 0, G_TOKEN},
                                              {"count", required_argument, 0, G_COUNT},
                                              {"keys", required_argument, 0, G_KEYS},
                                              {0, 0, 0, 0}};
        char oerr[300];
        int c, li;
        /* options after "guard MODE": getopt sees MODE as its argv[0] */
        while ((c = zps_getopt(argc - 2, argv + 2, NULL, gopts, &li, oerr, sizeof oerr)) != -1) {
            int bad = c < 0;
            if (c == G_SERVERS) ep = optarg;
            else if (c == G_TOKEN) tf = optarg;
            else if (c == G_COUNT) bad = zps_parse_u64(optarg, &count) != 0;
            else if (c == G_KEYS) bad = zps_parse_u64(optarg, &gk) != 0;
            if (bad) {
                if (c > 0)
                    snprintf(oerr, sizeof oerr, "invalid value '%s' for --%s: %s", optarg,
                             gopts[li].name, zps_args_why(optarg, ZPS_ARGS_UINT));
                fprintf(stderr, "it_kv guard: %s\n", oerr);
                return 2;
            }
        }
        if (optind + 2 < argc) {
            fprintf(stderr, "it_kv guard: unexpected argument %s\n", argv[optind + 2]);
            return 2;
        }
        if (!ep) {
            fprintf(stderr, "it_kv guard: --servers is required\n");
            return 2;
        }
        int r = s_guard(gm, ep, tf, count, gk);
        if (!strcmp(gm, "shutdown"))
            return r;
        return r ? 1 : 0;
    }
    char *servers_arg = NULL;
    uint32_t client = 0, clients = 1, rounds = 10;
    uint64_t seed = 1, nkeys = 100000;
    double lr = 0.5;
    const char *curve_secret = NULL, *server_public = NULL;
    enum { K_SERVERS = 1, K_CLIENT, K_CLIENTS, K_ROUNDS, K_SEED, K_KEYS, K_LR, K_CSEC, K_SPUB };
    static const struct option kopts[] = {{"servers", required_argument, 0, K_SERVERS},
                                          {"client", required_argument, 0, K_CLIENT},
                                          {"clients", required_argument, 0, K_CLIENTS},
                                          {"rounds", required_argument, 0, K_ROUNDS},
                                          {"seed", required_argument, 0, K_SEED},
                                          {"keys", required_argument, 0, K_KEYS},
                                          {"lr", required_argument, 0, K_LR},
                                          {"curve-secret", required_argument, 0, K_CSEC},
                                          {"server-public", required_argument, 0, K_SPUB},
                                          {0, 0, 0, 0}};
    char oerr[300];
    int oc, li;
    /* options after the mode: getopt sees the mode as its argv[0] */
    while ((oc = zps_getopt(argc - 1, argv + 1, NULL, kopts, &li, oerr, sizeof oerr)) != -1) {
        int bad = oc < 0;
        switch (oc) {
        case K_SERVERS: servers_arg = optarg; break;
        case K_CLIENT: bad = zps_parse_u32(optarg, &client) != 0; break;
        case K_CLIENTS: bad = zps_parse_u32(optarg, &clients) != 0; break;
        case K_ROUNDS: bad = zps_parse_u32(optarg, &rounds) != 0; break;
        case K_SEED: bad = zps_parse_u64(optarg, &seed) != 0; break;
        case K_KEYS: bad = zps_parse_u64(optarg, &nkeys) != 0; break;
        case K_LR: bad = zps_parse_double(optarg, &lr) != 0; break;
        case K_CSEC: curve_secret = optarg; break;
        case K_SPUB: server_public = optarg; break;
        }
        if (bad) {
            if (oc > 0)
                snprintf(oerr, sizeof oerr, "invalid value '%s' for --%s: %s", optarg,
                         kopts[li].name,
                         zps_args_why(optarg, oc == K_LR ? ZPS_ARGS_REAL : ZPS_ARGS_UINT));
            fprintf(stderr, "it_kv: %s\n", oerr);
            return 2;
        }
    }
    if (optind + 1 < argc) {
        fprintf(stderr, "it_kv: unexpected argument %s\n", argv[optind + 1]);
        return 2;
    }
    if (!servers_arg) {
        fprintf(stderr, "it_kv: --servers is required\n");
        return 2;
    }
    const char *servers[64];
    size_t S = s_split_servers(servers_arg, servers, 64);
    if (!strcmp(mode, "errors"))
        return s_errors_test(servers[0]) ? 1 : 0;
    if (!strcmp(mode, "rogue"))
        return s_rogue(servers[0], (double)rounds, seed);
    int stats_only = !strcmp(mode, "stats");

    wk_client_conf_t cc;
    wk_client_conf_defaults(&cc);
    cc.servers = servers;
    cc.nservers = (uint32_t)S;
    cc.rank = client;
    cc.timeout_ms = 30000;
    if (stats_only)
        cc.role = ZPS__ROLE__ROLE_TOOL;
    zps_curve_pair_t mine, theirs;
    if (curve_secret && server_public) {
        char cerr[1200];
        if (zps_curve_read(curve_secret, &mine, cerr, sizeof cerr) ||
            zps_curve_read(server_public, &theirs, cerr, sizeof cerr)) {
            fprintf(stderr, "it_kv: %s\n", cerr);
            return 1;
        }
        cc.curve_public = mine.public_z85;
        cc.curve_secret = mine.secret_z85;
        cc.server_public = theirs.public_z85;
    }
    if (!strcmp(mode, "marker"))
        cc.connect_timeout_ms = 3000;
    char err[512];
    wk_client_t *c = wk_client_new(&cc, err, sizeof err);
    if (!c) {
        fprintf(stderr, "it_kv: %s\n", err);
        return 1;
    }
    if (stats_only) {
        /* one key=value line per server counter, for the scripts */
        int rc = 0;
        for (uint32_t sv = 0; sv < S && !rc; sv++) {
            wk_server_stats_t st;
            if ((rc = wk_client_stats(c, sv, &st)) != 0) {
                fprintf(stderr, "it_kv stats: %s\n", wk_client_error(c));
                break;
            }
            printf("server=%u keys_stored=%llu pushes=%llu pulls=%llu max_staleness=%llu "
                   "min_clock=%llu pull_waits=%llu workers_dropped=%llu clocks_applied=%llu "
                   "push_raw_bytes=%llu push_wire_bytes=%llu key_cache_hits=%llu "
                   "key_cache_misses=%llu bytes_in=%llu duplicate_pushes=%llu checkpoints=%llu "
                   "restored_pushes=%llu lost_pushes=%llu applied_pushes=%llu clocks=",
                   sv, (unsigned long long)st.keys_stored, (unsigned long long)st.pushes,
                   (unsigned long long)st.pulls, (unsigned long long)st.max_staleness,
                   (unsigned long long)st.min_clock, (unsigned long long)st.pull_waits,
                   (unsigned long long)st.workers_dropped, (unsigned long long)st.clocks_applied,
                   (unsigned long long)st.push_raw_bytes, (unsigned long long)st.push_wire_bytes,
                   (unsigned long long)st.key_cache_hits, (unsigned long long)st.key_cache_misses,
                   (unsigned long long)st.bytes_in, (unsigned long long)st.duplicate_pushes,
                   (unsigned long long)st.checkpoints, (unsigned long long)st.restored_pushes,
                   (unsigned long long)st.lost_pushes, (unsigned long long)st.applied_pushes);
            for (uint32_t w = 0; w < st.nworkers && w < 64; w++)
                printf("%s%llu", w ? "," : "", (unsigned long long)st.worker_clocks[w]);
            printf("\n");
        }
        wk_client_destroy(&c);
        return rc ? 1 : 0;
    }
    if (!strcmp(mode, "marker")) {
        /* push one row whose bytes spell a known marker, then read it back
         * (server table of dim 4; SGD with step 1 stores -gradient) */
        uint64_t key = 42;
        float g[4], w[4];
        memcpy(g, "ZPSMARKERZPSMARK", 16);
        int rc = wk_client_push(c, 0, &key, g, 1);
        if (!rc)
            rc = wk_client_pull(c, 0, &key, 1, w);
        if (rc)
            fprintf(stderr, "it_kv marker: %s\n", wk_client_error(c));
        else
            printf("it_kv marker: pushed and pulled key 42\n");
        wk_client_destroy(&c);
        return rc ? 1 : 0;
    }
    uint64_t *keys = malloc(nkeys * sizeof *keys);
    float *vals = malloc(nkeys * sizeof *vals);
    int rc = 0;
    if (!strcmp(mode, "push")) {
        /* each round: push in 4 slices, all in flight, plus a pull of the slice */
        for (uint32_t r = 0; r < rounds && !rc; r++) {
            kv_t *sel = malloc(nkeys * sizeof *sel);
            int n = 0;
            for (uint64_t i = 0; i < nkeys; i++)
                if (s_pushes(seed, client, r, i))
                    sel[n++] = (kv_t){s_key(i, nkeys), i};
            qsort(sel, (size_t)n, sizeof *sel, s_cmp_kv);
            for (int j = 0; j < n; j++) {
                keys[j] = sel[j].key;
                vals[j] = s_grad(seed, client, r, sel[j].idx);
            }
            free(sel);
            uint64_t tickets[8];
            float *pulled = malloc((size_t)n * sizeof(float) + 4);
            int nt = 0, slice = (n + 3) / 4;
            for (int off = 0; off < n; off += slice) {
                int cnt = n - off < slice ? n - off : slice;
                rc = wk_client_push_async(c, 0, keys + off, vals + off, (size_t)cnt, &tickets[nt++]);
                if (!rc)
                    rc = wk_client_pull_async(c, 0, keys + off, (size_t)cnt, pulled + off,
                                              &tickets[nt++]);
                if (rc)
                    break;
            }
            for (int t = 0; t < nt && !rc; t++)
                rc = wk_client_wait(c, tickets[t], -1);
            free(pulled);
        }
        if (rc)
            fprintf(stderr, "it_kv push client %u: %s (%s)\n", client, wk_client_error(c),
                    zps_strerror(rc));
        else
            printf("it_kv push client %u: %u rounds done\n", client, rounds);
    } else if (!strcmp(mode, "verify")) {
        /* expected weights, and expected push counts */
        uint64_t expected_keys_pushed = 0;
        kv_t *map = malloc(nkeys * sizeof *map);
        for (uint64_t i = 0; i < nkeys; i++)
            map[i] = (kv_t){s_key(i, nkeys), i};
        qsort(map, nkeys, sizeof *map, s_cmp_kv);
        double *want = calloc(nkeys, sizeof *want);
        for (uint32_t cl = 0; cl < clients; cl++)
            for (uint32_t r = 0; r < rounds; r++)
                for (uint64_t i = 0; i < nkeys; i++)
                    if (s_pushes(seed, cl, r, i)) {
                        want[i] -= lr * s_grad(seed, cl, r, i);
                        expected_keys_pushed++;
                    }
        for (uint64_t j = 0; j < nkeys; j++)
            keys[j] = map[j].key;
        rc = wk_client_pull(c, 0, keys, nkeys, vals);
        if (rc) {
            fprintf(stderr, "it_kv verify: pull failed: %s\n", wk_client_error(c));
        } else {
            uint64_t bad = 0;
            for (uint64_t j = 0; j < nkeys; j++) {
                float w = (float)want[map[j].idx];
                if (vals[j] != w) {
                    if (bad < 5)
                        fprintf(stderr, "it_kv verify: key %llu: server has %.9g, expected %.9g\n",
                                (unsigned long long)keys[j], (double)vals[j], (double)w);
                    bad++;
                }
            }
            uint64_t pushed = 0, stored = 0;
            for (uint32_t s = 0; s < S; s++) {
                wk_server_stats_t st;
                if (wk_client_stats(c, s, &st)) {
                    fprintf(stderr, "it_kv verify: stats: %s\n", wk_client_error(c));
                    bad++;
                    continue;
                }
                pushed += st.keys_pushed;
                stored += st.keys_stored;
                printf("it_kv verify: server %u stores %llu keys, %llu pushes of %llu keys\n", s,
                       (unsigned long long)st.keys_stored, (unsigned long long)st.pushes,
                       (unsigned long long)st.keys_pushed);
            }
            if (pushed != expected_keys_pushed) {
                fprintf(stderr, "it_kv verify: servers applied %llu key updates, clients sent %llu\n",
                        (unsigned long long)pushed, (unsigned long long)expected_keys_pushed);
                bad++;
            }
            /* a never-pushed key reads as its initial value (0) and is not stored */
            uint64_t fresh = 0xdeadbeefcafef00dULL;
            float fv = -1;
            if (wk_client_pull(c, 0, &fresh, 1, &fv) || fv != 0.0f) {
                fprintf(stderr, "it_kv verify: fresh key read %g\n", (double)fv);
                bad++;
            }
            uint64_t stored2 = 0;
            for (uint32_t s = 0; s < S; s++) {
                wk_server_stats_t st;
                if (!wk_client_stats(c, s, &st))
                    stored2 += st.keys_stored;
            }
            if (stored2 != stored) {
                fprintf(stderr, "it_kv verify: pulling a fresh key inserted it\n");
                bad++;
            }
            printf("it_kv verify: %llu keys checked, %llu wrong, %llu key updates applied\n",
                   (unsigned long long)nkeys, (unsigned long long)bad, (unsigned long long)pushed);
            rc = bad ? 1 : 0;
        }
        free(want);
        free(map);
    } else {
        fprintf(stderr, "it_kv: unknown mode %s\n", mode);
        rc = 2;
    }
    free(keys);
    free(vals);
    wk_client_destroy(&c);
    return rc ? 1 : 0;
}
