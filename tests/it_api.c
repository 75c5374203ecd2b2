/* it_api: the public C API (worker/zps.h) under misuse and faults; driven by
 * tests/it_api.sh, which starts the servers (raw table, --optimizer sgd
 * --lr 1: a weight is minus the sum of its gradients) and the faults.
 *
 *   it_api args                 NULL arguments everywhere, zero keys, a
 *                               server list that is not one: errors, texts
 *   it_api keys SERVERS         unsorted, duplicate and reserved keys are
 *                               refused before anything is sent (the
 *                               servers' push counters do not move), the
 *                               output buffer is left alone; exact values;
 *                               a second client of the same rank is refused
 *                               (EPERM, naming the rank option), one of
 *                               another rank pushes alongside
 *   it_api dead SERVERS DIR     pushes, then (DIR/stage1) waits for the
 *                               script to kill server 1 (DIR/go1): a pull
 *                               and a push touching it, its stats and a new
 *                               connect fail (ETIMEDOUT or EIO, naming server
 *                               1) within a bound; a pull
 *                               of server 0's keys only still works; then
 *                               (DIR/stage2) the script restarts server 1
 *                               on its port (DIR/go2, "dim" in it: another
 *                               --table-dim): calls succeed with the lost
 *                               keys back at 0, or fail cleanly (dim
 *                               changed: never a write past the caller's
 *                               buffer, checked with a guard)
 *   it_api proxy SERVERS        through zps-proxy (drops, duplicates,
 *                               reordering): 20 pushes applied exactly once
 *   it_api hostile              servers made here: one that never answers
 *                               (connect fails within its timeout), one
 *                               that answers garbage, and a relay to a real
 *                               server (SERVERS in env IT_API_REAL) that
 *                               corrupts replies after the hello (cut,
 *                               dropped, extra, flipped frames): every call
 *                               returns 0 or an error with a text, never
 *                               crashes or hangs
 * Exit 0 and "it_api MODE: ok" when every check held. */

#include "zps.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define CHECK(c, ...)                                                    \
    do {                                                                 \
        if (!(c)) {                                                      \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                  \
            printf(__VA_ARGS__);                                         \
            printf("\n");                                                \
            exit(1);                                                     \
        }                                                                \
    } while (0)

/* No call may take longer than its timeout and this much. */
#define SLACK_MS 15000

static double s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static zps_client_t *s_connect(const char *servers, int timeout_ms)
{
    zps_client_options_t o;
    zps_client_options_init(&o);
    o.connect_timeout_ms = timeout_ms;
    o.timeout_ms = timeout_ms;
    char err[512];
    zps_client_t *c = zps_client_connect(servers, &o, err, sizeof err);
    CHECK(c, "connect %s: %s", servers, err);
    return c;
}

static void s_wait_file(const char *dir, const char *name, char *content, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    for (int i = 0; i < 1200; i++) {
        FILE *f = fopen(path, "r");
        if (f) {
            size_t n = fread(content, 1, len - 1, f);
            content[n] = 0;
            fclose(f);
            return;
        }
        usleep(50000);
    }
    CHECK(0, "%s did not appear in 60 s", path);
}

static void s_touch(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f && fclose(f) == 0, "cannot write %s", path);
}

/* ---- args ---------------------------------------------------------------- */

static void s_args(void)
{
    char err[512];
    zps_client_options_init(NULL); /* ignored */
    CHECK(!zps_client_connect(NULL, NULL, err, sizeof err) && strstr(err, "no servers"),
          "NULL list: '%s'", err);
    CHECK(!zps_client_connect("", NULL, err, sizeof err) && strstr(err, "no servers"),
          "empty list: '%s'", err);
    CHECK(!zps_client_connect(",,", NULL, err, sizeof err) && strstr(err, "no servers"),
          "',,': '%s'", err);
    CHECK(!zps_client_connect(NULL, NULL, NULL, 0), "NULL err buffer");
    CHECK(!zps_client_connect("udp://1.2.3.4:5", NULL, err, sizeof err) &&
              strstr(err, "udp://1.2.3.4:5"), "udp: '%s'", err);
    CHECK(!zps_client_connect("tcp://", NULL, err, sizeof err) && err[0], "tcp://: '%s'", err);
    CHECK(!zps_client_connect("tcp://127.0.0.1:notaport", NULL, err, sizeof err) && err[0],
          "bad port: '%s'", err);
    /* a very long list: refused, not overflowed */
    size_t big = 1 << 20;
    char *list = malloc(big + 1);
    CHECK(list, "oom");
    for (size_t i = 0; i < big; i++)
        list[i] = "tcp://127.0.0.1:1,"[i % 18];
    list[big] = 0;
    CHECK(!zps_client_connect(list, NULL, err, sizeof err) && err[0], "huge list: '%s'", err);
    free(list);

    zps_client_t *c = NULL;
    uint64_t k[1] = {1};
    float w[1];
    zps_server_stats_t st;
    CHECK(zps_client_pull(NULL, k, 1, w) == ZPS_EINVAL, "pull NULL client");
    CHECK(zps_client_push(NULL, k, w, 1) == ZPS_EINVAL, "push NULL client");
    CHECK(zps_client_stats(NULL, 0, &st) == ZPS_EINVAL, "stats NULL client");
    CHECK(zps_client_num_servers(NULL) == 0 && zps_client_dim(NULL) == 0, "NULL getters");
    CHECK(zps_client_error(NULL) && zps_client_error(NULL)[0], "error of NULL");
    zps_client_destroy(NULL);
    zps_client_destroy(&c);
    CHECK(zps_strerror(ZPS_EINVAL) && zps_strerror(12345) && zps_strerror(-999999),
          "zps_strerror");
    CHECK(zps_version() && zps_version()[0], "version");
    printf("it_api args: ok\n");
}

/* ---- keys ---------------------------------------------------------------- */

static uint64_t s_pushes(zps_client_t *c)
{
    uint64_t n = 0;
    for (uint32_t s = 0; s < zps_client_num_servers(c); s++) {
        zps_server_stats_t st;
        int rc = zps_client_stats(c, s, &st);
        CHECK(rc == 0, "stats %u: %s", s, zps_client_error(c));
        n += st.pushes;
    }
    return n;
}

static void s_keys(const char *servers)
{
    zps_client_t *c = s_connect(servers, 10000);
    uint32_t dim = zps_client_dim(c);
    CHECK(dim == 2, "dim %u", dim);
    float g[8] = {1, 2, 3, 4, 5, 6, 7, 8}, w[8];
    uint64_t ok[4] = {1, 2, 1ULL << 50, UINT64_MAX - 1};
    CHECK(zps_client_push(c, ok, g, 4) == 0, "push: %s", zps_client_error(c));
    uint64_t p0 = s_pushes(c);

    /* zero keys: 0, NULL arrays fine, nothing sent */
    CHECK(zps_client_push(c, NULL, NULL, 0) == 0, "push of 0 keys");
    CHECK(zps_client_pull(c, NULL, 0, NULL) == 0, "pull of 0 keys");
    CHECK(zps_client_error(c)[0] == 0, "error after a good call: %s", zps_client_error(c));
    /* NULL arrays with n > 0 */
    CHECK(zps_client_push(c, NULL, g, 1) == ZPS_EINVAL && zps_client_error(c)[0],
          "push NULL keys: '%s'", zps_client_error(c));
    CHECK(zps_client_push(c, ok, NULL, 1) == ZPS_EINVAL, "push NULL grads");
    CHECK(zps_client_pull(c, ok, 1, NULL) == ZPS_EINVAL && zps_client_error(c)[0],
          "pull NULL out: '%s'", zps_client_error(c));
    zps_server_stats_t st;
    CHECK(zps_client_stats(c, 0, NULL) == ZPS_EINVAL, "stats NULL out");
    CHECK(zps_client_stats(c, 2, &st) == ZPS_EINVAL && strstr(zps_client_error(c), "server 2"),
          "stats of server 2: '%s'", zps_client_error(c));
    CHECK(zps_client_stats(c, UINT32_MAX, &st) == ZPS_EINVAL, "stats of server 2^32-1");

    /* unsorted, duplicate, reserved: refused, named, output untouched */
    static const uint64_t bad[4][3] = {{5, 3, 9}, {3, 3, 9}, {3, 9, UINT64_MAX}, {9, 9, 9}};
    static const char *const why[4] = {"strictly increasing", "strictly increasing",
                                       "reserved", "strictly increasing"};
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 8; j++)
            w[j] = -7;
        int rc = zps_client_pull(c, bad[i], 3, w);
        CHECK(rc == ZPS_EINVAL && strstr(zps_client_error(c), why[i]) &&
                  strstr(zps_client_error(c), "zps_client_pull"),
              "bad keys %d pull: %d '%s'", i, rc, zps_client_error(c));
        for (int j = 0; j < 8; j++)
            CHECK(w[j] == -7, "a refused pull wrote its output");
        rc = zps_client_push(c, bad[i], g, 3);
        CHECK(rc == ZPS_EINVAL && strstr(zps_client_error(c), why[i]),
              "bad keys %d push: %d '%s'", i, rc, zps_client_error(c));
    }
    CHECK(s_pushes(c) == p0, "refused pushes reached the servers (%llu pushes, %llu before)",
          (unsigned long long)s_pushes(c), (unsigned long long)p0);
    /* non-finite gradients: refused by the servers (an error), weights unchanged */
    float nan2[2] = {NAN, 1}, inf2[2] = {INFINITY, 0};
    int rc = zps_client_push(c, ok, nan2, 1);
    CHECK(rc != 0 && zps_client_error(c)[0], "a NaN gradient was accepted");
    rc = zps_client_push(c, ok, inf2, 1);
    CHECK(rc != 0 && zps_client_error(c)[0], "an infinite gradient was accepted");
    /* the values: minus the one good push */
    rc = zps_client_pull(c, ok, 4, w);
    CHECK(rc == 0, "pull: %s", zps_client_error(c));
    for (int j = 0; j < 8; j++)
        CHECK(w[j] == -g[j], "key %d col %d: %g, want %g", j / 2, j % 2, (double)w[j],
              (double)-g[j]);
    /* many keys in one call (over a message's usual size) */
    size_t n = 300000;
    uint64_t *keys = malloc(n * sizeof *keys);
    float *vals = malloc(n * 2 * sizeof *vals);
    CHECK(keys && vals, "oom");
    for (size_t i = 0; i < n; i++)
        keys[i] = 1000 + 3 * i;
    for (size_t i = 0; i < 2 * n; i++)
        vals[i] = 0.5f;
    CHECK(zps_client_push(c, keys, vals, n) == 0, "big push: %s", zps_client_error(c));
    CHECK(zps_client_pull(c, keys, n, vals) == 0, "big pull: %s", zps_client_error(c));
    for (size_t i = 0; i < 2 * n; i++)
        CHECK(vals[i] == -0.5f, "big pull: value %zu is %g", i, (double)vals[i]);
    free(keys);
    free(vals);
    /* a second client of the same rank (two processes on the default 0):
     * its pushes are refused with EPERM, saying what to do; with its own
     * rank both push, and every push counts */
    zps_client_t *c2 = s_connect(servers, 10000);
    uint64_t k1[1] = {77};
    float one[2] = {1, 1};
    CHECK(zps_client_push(c, k1, one, 1) == 0, "push: %s", zps_client_error(c));
    rc = zps_client_push(c2, k1, one, 1);
    CHECK(rc == ZPS_EPERM && strstr(zps_client_error(c2), "zps_client_options_t.rank"),
          "a second client of rank 0: %d '%s'", rc, zps_client_error(c2));
    zps_client_destroy(&c2);
    zps_client_options_t o;
    zps_client_options_init(&o);
    o.rank = 1;
    char err[512];
    c2 = zps_client_connect(servers, &o, err, sizeof err);
    CHECK(c2, "connect rank 1: %s", err);
    for (int i = 0; i < 5; i++) {
        CHECK(zps_client_push(c, k1, one, 1) == 0, "push rank 0: %s", zps_client_error(c));
        CHECK(zps_client_push(c2, k1, one, 1) == 0, "push rank 1: %s", zps_client_error(c2));
    }
    CHECK(zps_client_pull(c2, k1, 1, w) == 0 && w[0] == -11 && w[1] == -11,
          "two ranks: %g, want -11", (double)w[0]);
    zps_client_destroy(&c2);
    zps_client_destroy(&c);
    zps_client_destroy(&c);
    CHECK(c == NULL, "destroy twice");
    printf("it_api keys: ok\n");
}

/* ---- dead / restarted server -------------------------------------------------- */

static void s_dead(const char *servers, const char *dir)
{
    const int T = 2000;
    zps_client_t *c = s_connect(servers, T);
    uint32_t dim = zps_client_dim(c);
    CHECK(dim == 2 && zps_client_num_servers(c) == 2, "dim %u, %u servers", dim,
          zps_client_num_servers(c));
    /* keys spread over both servers; find one that server 0 owns by its counters */
    enum { N = 64 };
    uint64_t keys[N];
    float g[2 * N], w[2 * N + 8];
    for (int i = 0; i < N; i++)
        keys[i] = 7 + 1000003ULL * (uint64_t)i;
    for (int i = 0; i < 2 * N; i++)
        g[i] = 1;
    float base[2 * N]; /* what earlier runs left (the script runs this twice) */
    CHECK(zps_client_pull(c, keys, N, base) == 0, "pull: %s", zps_client_error(c));
    CHECK(zps_client_push(c, keys, g, N) == 0, "push: %s", zps_client_error(c));
    float base0 = 0;
    uint64_t own0 = UINT64_MAX;
    for (int i = 0; i < N && own0 == UINT64_MAX; i++) {
        zps_server_stats_t a, b;
        CHECK(zps_client_stats(c, 0, &a) == 0, "stats: %s", zps_client_error(c));
        CHECK(zps_client_pull(c, &keys[i], 1, w) == 0, "pull: %s", zps_client_error(c));
        CHECK(zps_client_stats(c, 0, &b) == 0, "stats: %s", zps_client_error(c));
        if (b.keys_pulled > a.keys_pulled) {
            own0 = keys[i];
            base0 = base[2 * i];
        }
    }
    CHECK(own0 != UINT64_MAX, "no key on server 0");

    s_touch(dir, "stage1");
    char what[64];
    s_wait_file(dir, "go1", what, sizeof what);
    /* server 1 is gone */
    double t0 = s_ms();
    int rc = zps_client_pull(c, keys, N, w);
    double el = s_ms() - t0;
    CHECK(rc == ZPS_ETIMEDOUT || rc == ZPS_EIO, "pull with a dead server: %d (%s)", rc,
          zps_client_error(c));
    CHECK(strstr(zps_client_error(c), "server 1") || strstr(zps_client_error(c), "rank 1"),
          "the error does not name server 1: '%s'", zps_client_error(c));
    CHECK(el < T + SLACK_MS, "pull took %.0f ms with a %d ms timeout", el, T);
    printf("dead server: pull -> %s (%.1f s)\n", zps_client_error(c), el / 1e3);
    t0 = s_ms();
    rc = zps_client_push(c, keys, g, N);
    el = s_ms() - t0;
    CHECK(rc == ZPS_ETIMEDOUT || rc == ZPS_EIO, "push with a dead server: %d (%s)", rc,
          zps_client_error(c));
    CHECK(el < T + SLACK_MS, "push took %.0f ms", el);
    zps_server_stats_t st;
    t0 = s_ms();
    rc = zps_client_stats(c, 1, &st);
    el = s_ms() - t0;
    CHECK(rc != 0 && zps_client_error(c)[0], "stats of a dead server: %d", rc);
    CHECK(el < T + SLACK_MS, "stats of a dead server took %.0f ms", el);
    /* a new client cannot connect while server 1 is down: NULL, naming it */
    zps_client_options_t o3;
    zps_client_options_init(&o3);
    o3.connect_timeout_ms = T;
    o3.timeout_ms = T;
    o3.rank = 5;
    char err3[512];
    zps_client_t *c3 = zps_client_connect(servers, &o3, err3, sizeof err3);
    CHECK(!c3 && strstr(err3, "server 1"), "connect with server 1 dead: '%s'", err3);
    /* the live server still answers for its own keys */
    /* (the failed push may have been applied by server 0: no atomicity
     * across servers) */
    rc = zps_client_pull(c, &own0, 1, w);
    CHECK(rc == 0 && (w[0] == base0 - 1 || w[0] == base0 - 2) && w[1] == w[0],
          "pull from the live server: %d %s (%g %g)", rc, zps_client_error(c), (double)w[0],
          (double)w[1]);

    s_touch(dir, "stage2");
    s_wait_file(dir, "go2", what, sizeof what);
    int newdim = strstr(what, "dim") != NULL;
    /* server 1 is back (empty): retried calls recover, or fail cleanly */
    int ok = 0;
    for (int i = 0; i < 20 && !ok; i++) {
        for (int j = 0; j < 2 * N + 8; j++)
            w[j] = -99;
        t0 = s_ms();
        rc = zps_client_pull(c, keys, N, w);
        el = s_ms() - t0;
        CHECK(el < T + SLACK_MS, "pull after restart took %.0f ms", el);
        for (int j = 2 * N; j < 2 * N + 8; j++)
            CHECK(w[j] == -99, "a pull wrote past its %d floats", 2 * N);
        if (rc == 0) {
            ok = 1;
            CHECK(!newdim, "a server restarted with another dim answered a pull as dim 2");
            /* server 0's keys kept their weight (one more -1 if the
             * failed push reached server 0); server 1's are fresh (0) */
            for (int k = 0; k < N; k++)
                CHECK(w[2 * k] == 0 || w[2 * k] == base[2 * k] - 1 ||
                          w[2 * k] == base[2 * k] - 2,
                      "key %llu: %g (was %g)", (unsigned long long)keys[k], (double)w[2 * k],
                      (double)base[2 * k]);
        } else {
            CHECK(zps_client_error(c)[0], "error %d without a text", rc);
            if (i == 0)
                printf("after restart: pull -> %d %s\n", rc, zps_client_error(c));
            usleep(200000);
        }
    }
    if (newdim) {
        CHECK(!ok, "dim changed, yet pulls succeeded");
        printf("it_api dead: ok (restarted with another dim: refused: %s)\n",
               zps_client_error(c));
    } else {
        CHECK(ok, "pulls never recovered after server 1 restarted: %s", zps_client_error(c));
        rc = zps_client_push(c, keys, g, N);
        CHECK(rc == 0, "push after restart: %d %s", rc, zps_client_error(c));
        printf("it_api dead: ok (recovered after the restart)\n");
    }
    t0 = s_ms();
    zps_client_destroy(&c);
    CHECK(s_ms() - t0 < SLACK_MS, "destroy took %.0f ms", s_ms() - t0);
}

/* ---- proxy ---------------------------------------------------------------- */

static void s_proxy(const char *servers)
{
    /* the hello is not retried by the client (a lost hello or reply fails
     * the connect after its timeout): connect again, as a caller would */
    zps_client_t *c = NULL;
    zps_client_options_t o;
    zps_client_options_init(&o);
    o.connect_timeout_ms = 3000;
    o.timeout_ms = 30000;
    char err[512];
    for (int i = 0; i < 10 && !c; i++)
        if (!(c = zps_client_connect(servers, &o, err, sizeof err)))
            printf("connect through the proxies: %s (again)\n", err);
    CHECK(c, "connect through the proxies failed 10 times: %s", err);
    enum { N = 50, P = 20 };
    uint64_t keys[N];
    float g[2 * N], w[2 * N];
    for (int i = 0; i < N; i++)
        keys[i] = 11 + 7919ULL * (uint64_t)i;
    for (int p = 0; p < P; p++) {
        for (int i = 0; i < 2 * N; i++)
            g[i] = (float)((p + i) % 5);
        int rc = zps_client_push(c, keys, g, N);
        CHECK(rc == 0, "push %d through the proxy: %d %s", p, rc, zps_client_error(c));
    }
    CHECK(zps_client_pull(c, keys, N, w) == 0, "pull: %s", zps_client_error(c));
    for (int i = 0; i < 2 * N; i++) {
        float want = 0;
        for (int p = 0; p < P; p++)
            want -= (float)((p + i) % 5);
        CHECK(w[i] == want, "value %d: %g, want %g (a push lost or applied twice)", i,
              (double)w[i], (double)want);
    }
    zps_client_destroy(&c);
    printf("it_api proxy: ok (%d pushes applied exactly once through drops and duplicates)\n", P);
}

/* ---- hostile servers -------------------------------------------------------- */

typedef struct {
    void *ctx;
    int mode;                   /* 0 silent, 1 garbage, 2 corrupting relay */
    char ep[256];               /* where clients connect (filled in) */
    const char *upstream;       /* mode 2 */
    volatile int stop;
    volatile int ready;         /* ep is filled in */
    unsigned seed;
    int after;                  /* mode 2: relay this many replies untouched */
} hs_t;

static void *s_hostile(void *arg)
{
    hs_t *h = arg;
    void *r = zmq_socket(h->ctx, ZMQ_ROUTER);
    int lin = 0, to = 100;
    zmq_setsockopt(r, ZMQ_LINGER, &lin, sizeof lin);
    zmq_setsockopt(r, ZMQ_RCVTIMEO, &to, sizeof to);
    void *up = NULL;
    if (h->mode == 2) {
        up = zmq_socket(h->ctx, ZMQ_DEALER);
        zmq_setsockopt(up, ZMQ_LINGER, &lin, sizeof lin);
        zmq_connect(up, h->upstream);
    }
    zmq_bind(r, "tcp://127.0.0.1:*");
    size_t len = sizeof h->ep;
    zmq_getsockopt(r, ZMQ_LAST_ENDPOINT, h->ep, &len);
    __atomic_store_n(&h->ready, 1, __ATOMIC_RELEASE);
    zmq_msg_t id, parts[16];
    int nreplies = 0;
    char idbuf[256];
    size_t idlen = 0;
    while (!h->stop) {
        zmq_pollitem_t it[2] = {{r, 0, ZMQ_POLLIN, 0}, {up, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(it, up ? 2 : 1, 100) <= 0)
            continue;
        if (it[0].revents & ZMQ_POLLIN) {
            zmq_msg_init(&id);
            if (zmq_msg_recv(&id, r, 0) < 0) {
                zmq_msg_close(&id);
                continue;
            }
            idlen = zmq_msg_size(&id) < sizeof idbuf ? zmq_msg_size(&id) : sizeof idbuf;
            memcpy(idbuf, zmq_msg_data(&id), idlen);
            int n = 0, more = 1;
            while (more) {
                zmq_msg_t *m = &parts[n < 15 ? n : 15];
                zmq_msg_init(m);
                zmq_msg_recv(m, r, 0);
                more = zmq_msg_more(m);
                if (n < 15)
                    n++;
                else
                    zmq_msg_close(m);
            }
            if (h->mode == 0) { /* silent */
            } else if (h->mode == 1) { /* garbage: random frames back */
                zmq_send(r, idbuf, idlen, ZMQ_SNDMORE);
                int nf = 1 + (int)(rand_r(&h->seed) % 4);
                for (int f = 0; f < nf; f++) {
                    char junk[64];
                    size_t jl = rand_r(&h->seed) % sizeof junk;
                    for (size_t j = 0; j < jl; j++)
                        junk[j] = (char)rand_r(&h->seed);
                    zmq_send(r, junk, jl, f + 1 < nf ? ZMQ_SNDMORE : 0);
                }
            } else { /* relay */
                for (int f = 0; f < n; f++)
                    zmq_msg_send(&parts[f], up, f + 1 < n ? ZMQ_SNDMORE : 0);
                n = 0;
            }
            for (int f = 0; f < n; f++)
                zmq_msg_close(&parts[f]);
            zmq_msg_close(&id);
        }
        if (up && (it[1].revents & ZMQ_POLLIN)) {
            int n = 0, more = 1;
            while (more) {
                zmq_msg_t *m = &parts[n < 15 ? n : 15];
                zmq_msg_init(m);
                zmq_msg_recv(m, up, 0);
                more = zmq_msg_more(m);
                if (n < 15)
                    n++;
                else
                    zmq_msg_close(m);
            }
            int how = nreplies++ < h->after ? -1 : (int)(rand_r(&h->seed) % 5);
            zmq_send(r, idbuf, idlen, ZMQ_SNDMORE);
            int last = n - 1;
            if (how == 1 && n > 1) /* the last frame dropped */
                zmq_msg_close(&parts[last--]);
            for (int f = 0; f <= last; f++) {
                zmq_msg_t *m = &parts[f];
                size_t sz = zmq_msg_size(m);
                unsigned char *d = zmq_msg_data(m);
                int fl = f < last || how == 2 ? ZMQ_SNDMORE : 0;
                if (how == 0 && f == last && sz > 0) { /* cut short */
                    zmq_send(r, d, sz - 1 - rand_r(&h->seed) % sz, fl);
                    zmq_msg_close(m);
                    continue;
                }
                if (how == 3 && sz > 0) /* a flipped byte */
                    d[rand_r(&h->seed) % sz] ^= (unsigned char)(1u << (rand_r(&h->seed) % 8));
                zmq_msg_send(m, r, fl);
            }
            if (how == 2) /* an extra frame */
                zmq_send(r, "extra", 5, 0);
            /* how == 4: relayed as it is */
        }
    }
    zmq_close(r);
    if (up)
        zmq_close(up);
    return NULL;
}

static void s_hostile_run(void)
{
    void *ctx = zmq_ctx_new();
    /* silent and garbage servers: connect fails within its timeout, naming them */
    for (int mode = 0; mode <= 1; mode++) {
        hs_t h = {.ctx = ctx, .mode = mode, .seed = 7};
        pthread_t th;
        pthread_create(&th, NULL, s_hostile, &h);
        while (!__atomic_load_n(&h.ready, __ATOMIC_ACQUIRE))
            usleep(10000);
        zps_client_options_t o;
        zps_client_options_init(&o);
        o.connect_timeout_ms = 1500;
        o.timeout_ms = 1500;
        char err[512];
        double t0 = s_ms();
        zps_client_t *c = zps_client_connect(h.ep, &o, err, sizeof err);
        double el = s_ms() - t0;
        CHECK(!c, "a %s server was accepted", mode ? "garbage" : "silent");
        CHECK(err[0] && el < 1500 + SLACK_MS, "%s server: '%s' after %.0f ms",
              mode ? "garbage" : "silent", err, el);
        printf("%s server: %s (%.1f s)\n", mode ? "garbage" : "silent", err, el / 1e3);
        h.stop = 1;
        pthread_join(th, NULL);
    }
    /* a relay that corrupts replies after the hello */
    const char *real = getenv("IT_API_REAL");
    CHECK(real && *real, "IT_API_REAL (a server's endpoint) not set");
    int failed = 0, passed = 0;
    for (unsigned seed = 1; seed <= 4; seed++) {
        hs_t h = {.ctx = ctx, .mode = 2, .upstream = real, .seed = seed, .after = 1};
        pthread_t th;
        pthread_create(&th, NULL, s_hostile, &h);
        while (!__atomic_load_n(&h.ready, __ATOMIC_ACQUIRE))
            usleep(10000);
        zps_client_options_t o;
        zps_client_options_init(&o);
        o.connect_timeout_ms = 3000;
        o.timeout_ms = 500;
        char err[512];
        /* the hello's reply is relayed untouched: the connect succeeds */
        zps_client_t *c = zps_client_connect(h.ep, &o, err, sizeof err);
        CHECK(c, "connect through the relay: %s", err);
        uint64_t keys[4] = {1, 2, 3, 4};
        float g[4 * 64], w[4 * 64 + 8];
        uint32_t dim = zps_client_dim(c);
        CHECK(dim >= 1 && dim <= 64, "dim %u", dim);
        for (int i = 0; i < 4 * 64; i++)
            g[i] = 0.25f;
        for (int k = 0; k < 9; k++) {
            for (int j = 0; j < 4 * 64 + 8; j++)
                w[j] = -99;
            double t0 = s_ms();
            int rc = k % 3 == 0 ? zps_client_push(c, keys, g, 4) : zps_client_pull(c, keys, 4, w);
            double el = s_ms() - t0;
            CHECK(el < 500 + SLACK_MS, "a call took %.0f ms", el);
            CHECK(rc == 0 || zps_client_error(c)[0], "error %d without a text", rc);
            for (int j = (int)(4 * dim); j < 4 * 64 + 8; j++)
                CHECK(w[j] == -99, "a pull wrote past its %u floats", 4 * dim);
            if (rc)
                failed++;
            else
                passed++;
        }
        zps_client_destroy(&c);
        h.stop = 1;
        pthread_join(th, NULL);
    }
    zmq_ctx_term(ctx);
    printf("it_api hostile: ok (corrupting relay: %d calls succeeded, %d failed cleanly)\n",
           passed, failed);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "args"))
        s_args();
    else if (!strcmp(mode, "keys") && argc == 3)
        s_keys(argv[2]);
    else if (!strcmp(mode, "dead") && argc == 4)
        s_dead(argv[2], argv[3]);
    else if (!strcmp(mode, "proxy") && argc == 3)
        s_proxy(argv[2]);
    else if (!strcmp(mode, "hostile"))
        s_hostile_run();
    else {
        fprintf(stderr, "usage: it_api args | keys SERVERS | dead SERVERS DIR | proxy SERVERS | "
                        "hostile (IT_API_REAL=SERVER)\n");
        return 2;
    }
    return 0;
}
