/* it_kv: client process for the key/value integration test (tests/it_kv.sh).
 *
 *   it_kv push   --servers A,B,C --client I --rounds R [--seed S] [--keys N]
 *   it_kv verify --servers A,B,C --clients W --rounds R [--seed S] [--keys N] --lr X
 *   it_kv errors --servers A       (malformed and wrong-version messages)
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
#include <zmq.h>

#include "wk_client.h"
#include "zps.pb-c.h"
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

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "dump-model") && !strcmp(argv[2], "--model"))
        return s_dump_model(argv[3]);
    if (argc < 2) {
        fprintf(stderr, "usage: it_kv push|verify|errors ...\n");
        return 2;
    }
    const char *mode = argv[1];
    char *servers_arg = NULL;
    uint32_t client = 0, clients = 1, rounds = 10;
    uint64_t seed = 1, nkeys = 100000;
    double lr = 0.5;
    const char *curve_secret = NULL, *server_public = NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--servers")) servers_arg = argv[i + 1];
        else if (!strcmp(argv[i], "--client")) client = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--clients")) clients = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds")) rounds = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--keys")) nkeys = strtoull(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--lr")) lr = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--curve-secret")) curve_secret = argv[i + 1];
        else if (!strcmp(argv[i], "--server-public")) server_public = argv[i + 1];
        else { fprintf(stderr, "it_kv: unknown option %s\n", argv[i]); return 2; }
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
