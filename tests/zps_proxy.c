/* zps-proxy: a fault-injecting ZeroMQ proxy for zps traffic (tests).
 *
 *   zps-proxy --listen tcp://127.0.0.1:0 --upstream tcp://127.0.0.1:PORT
 *             [--ready-file F] [--stats-file F] [--seed S]
 *             [--drop P] [--dup P] [--reorder P] [--reorder-k K] [--delay-ms D]
 *             [--c2s-drop P] [--s2c-drop P] ... (one direction only)
 *
 * DESIGN
 * Clients connect their DEALER to the proxy's ROUTER.  For every client
 * identity the proxy opens its own DEALER to the one upstream server, so the
 * server sees one connection per client, as without the proxy (a server
 * that binds identities to connections keeps working).  Replies from that
 * DEALER go back to the client's identity.  One proxy per server.
 *
 * Every message (all of its frames: multipart messages are kept whole) is
 * subject, per direction (c2s: client -> server, s2c: server -> client), to
 *   drop P      discarded
 *   dup P       forwarded twice
 *   reorder P   held back and released after the next K messages of the
 *               same client and direction (or after --max-hold-ms, so a
 *               held message is never stuck when the traffic stops)
 *   delay-ms D  every other message is held for a uniform 0..D ms
 * and, while the file given to --block-file exists, every message of both
 * directions is dropped (counted as blocked): a test cuts a link at a
 * chosen moment with touch and restores it with rm (--s2c-block-file: the
 * server's answers only).
 * decided by a seeded generator (--seed), so a run's decisions depend only
 * on the seed and the order messages arrive in.  The counters are written
 * to --stats-file (key=value, rewritten at most every 100 ms while they
 * change; tests trigger on them, e.g. "after N client messages") and
 * printed on exit (SIGTERM/SIGINT).  Plaintext only: CURVE would end at the
 * proxy. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "zps_args.h"
#include "zps_daemon.h"
#include "zps_file.h"
#include "zps_hash.h"
#include "zps_rng.h"
#include "zps_time.h"

static volatile sig_atomic_t g_stop;
static void s_on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

enum { C2S = 0, S2C = 1 };
static const char *const s_dir_name[2] = {"c2s", "s2c"};

typedef struct {
    double drop, dup, reorder;
    int delay_ms;
} px_rates_t;

typedef struct {
    uint64_t in, forwarded, dropped, duplicated, reordered, delayed, send_failed, blocked;
} px_count_t;

typedef struct {
    unsigned char id[256];
    size_t idlen;
    void *dealer;
} px_client_t;

typedef struct {
    int dir;
    uint32_t client;
    int64_t release_ms;
    int countdown;       /* messages still to pass it; -1: released by time only */
    int nparts;
    zmq_msg_t *parts;
} px_held_t;

typedef struct {
    void *ctx, *front;
    char upstream[256];
    px_rates_t rate[2];
    int reorder_k, max_hold_ms;
    uint64_t rng;
    px_client_t *clients;
    uint32_t nclients, clients_cap;
    px_held_t *held;
    size_t nheld, held_cap;
    px_count_t cnt[2];
    uint64_t held_at_exit;
    char stats_file[512];
    char block_file[512], s2c_block_file[512];
    int64_t stats_written_ms;
    int stats_dirty;
} px_t;

static double s_rand(px_t *p)
{
    return zps_rng_uniform(&p->rng);
}

static void s_close_parts(zmq_msg_t *parts, int n)
{
    for (int i = 0; i < n; i++)
        zmq_msg_close(&parts[i]);
    free(parts);
}

static zmq_msg_t *s_copy_parts(zmq_msg_t *parts, int n)
{
    zmq_msg_t *c = malloc((size_t)n * sizeof *c);
    if (!c)
        return NULL;
    for (int i = 0; i < n; i++) {
        zmq_msg_init(&c[i]);
        zmq_msg_copy(&c[i], &parts[i]);
    }
    return c;
}

/* Receive one whole message from sock (without its ROUTER identity if
 * router: that goes to ident).  Returns the number of parts, 0 if nothing. */
static int s_recv_all(void *sock, int router, zmq_msg_t *ident, zmq_msg_t **out)
{
    int n = 0, cap = 4, more = 1, first = 1;
    zmq_msg_t *parts = malloc((size_t)cap * sizeof *parts);
    if (!parts)
        return 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, first ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        if (first && router) {
            zmq_msg_init(ident);
            zmq_msg_move(ident, &m);
            zmq_msg_close(&m);
            first = 0;
            continue;
        }
        first = 0;
        if (n == cap) {
            zmq_msg_t *g = realloc(parts, (size_t)cap * 2 * sizeof *g);
            if (!g) {
                zmq_msg_close(&m);
                continue; /* drain the rest; the message is cut short */
            }
            parts = g;
            cap *= 2;
        }
        parts[n++] = m;
    }
    if (n == 0) {
        free(parts);
        if (!first && router)
            zmq_msg_close(ident);
        return 0;
    }
    *out = parts;
    return n;
}

static int s_client_of(px_t *p, const void *id, size_t len, uint32_t *out)
{
    for (uint32_t i = 0; i < p->nclients; i++)
        if (p->clients[i].idlen == len && memcmp(p->clients[i].id, id, len) == 0) {
            *out = i;
            return 0;
        }
    if (len > sizeof p->clients[0].id)
        return -1;
    if (p->nclients == p->clients_cap) {
        uint32_t cap = p->clients_cap ? 2 * p->clients_cap : 16;
        px_client_t *c = realloc(p->clients, cap * sizeof *c);
        if (!c)
            return -1;
        p->clients = c;
        p->clients_cap = cap;
    }
    void *d = zmq_socket(p->ctx, ZMQ_DEALER);
    if (!d)
        return -1;
    int linger = 0, hwm = 100000;
    zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(d, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(d, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_connect(d, p->upstream) != 0) {
        fprintf(stderr, "zps-proxy: cannot connect to %s: %s\n", p->upstream, zmq_strerror(errno));
        zmq_close(d);
        return -1;
    }
    px_client_t *c = &p->clients[p->nclients];
    memcpy(c->id, id, len);
    c->idlen = len;
    c->dealer = d;
    *out = p->nclients++;
    return 0;
}

/* Send a whole message in direction dir for client c; parts are consumed. */
static void s_send(px_t *p, int dir, uint32_t c, zmq_msg_t *parts, int n)
{
    void *sock = dir == C2S ? p->clients[c].dealer : p->front;
    int ok = 1;
    if (dir == S2C)
        ok = zmq_send(sock, p->clients[c].id, p->clients[c].idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0;
    for (int i = 0; ok && i < n; i++)
        ok = zmq_msg_send(&parts[i], sock, (i + 1 < n ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) >= 0;
    /* a part that failed mid-message: ZeroMQ discards the partial message */
    if (ok)
        p->cnt[dir].forwarded++;
    else
        p->cnt[dir].send_failed++;
    s_close_parts(parts, n);
    p->stats_dirty = 1;
}

static int s_hold(px_t *p, int dir, uint32_t c, zmq_msg_t *parts, int n, int countdown,
                  int64_t release_ms)
{
    if (p->nheld == p->held_cap) {
        size_t cap = p->held_cap ? 2 * p->held_cap : 64;
        px_held_t *h = realloc(p->held, cap * sizeof *h);
        if (!h)
            return -1;
        p->held = h;
        p->held_cap = cap;
    }
    px_held_t *h = &p->held[p->nheld++];
    h->dir = dir;
    h->client = c;
    h->countdown = countdown;
    h->release_ms = release_ms;
    h->parts = parts;
    h->nparts = n;
    return 0;
}

/* Release held messages that are due (time, or countdown reached 0). */
static void s_release(px_t *p)
{
    int64_t now = zps_now_ms();
    size_t keep = 0;
    for (size_t i = 0; i < p->nheld; i++) {
        px_held_t h = p->held[i];
        if (h.countdown == 0 || h.release_ms <= now)
            s_send(p, h.dir, h.client, h.parts, h.nparts);
        else
            p->held[keep++] = h;
    }
    p->nheld = keep;
}

/* A message of client c was forwarded in dir: reordered ones waiting
 * behind it move one step closer. */
static void s_passed(px_t *p, int dir, uint32_t c)
{
    for (size_t i = 0; i < p->nheld; i++)
        if (p->held[i].dir == dir && p->held[i].client == c && p->held[i].countdown > 0)
            p->held[i].countdown--;
}

static void s_route(px_t *p, int dir, uint32_t c, zmq_msg_t *parts, int n)
{
    const px_rates_t *r = &p->rate[dir];
    px_count_t *k = &p->cnt[dir];
    k->in++;
    p->stats_dirty = 1;
    if ((p->block_file[0] && access(p->block_file, F_OK) == 0) ||
        (dir == S2C && p->s2c_block_file[0] && access(p->s2c_block_file, F_OK) == 0)) {
        k->blocked++;
        s_close_parts(parts, n);
        return;
    }
    if (r->drop > 0 && s_rand(p) < r->drop) {
        k->dropped++;
        s_close_parts(parts, n);
        return;
    }
    if (r->dup > 0 && s_rand(p) < r->dup) {
        zmq_msg_t *copy = s_copy_parts(parts, n);
        if (copy) {
            k->duplicated++;
            s_send(p, dir, c, copy, n);
            s_passed(p, dir, c);
        }
    }
    int64_t now = zps_now_ms();
    if (r->reorder > 0 && s_rand(p) < r->reorder &&
        s_hold(p, dir, c, parts, n, p->reorder_k, now + p->max_hold_ms) == 0) {
        k->reordered++;
        return;
    }
    if (r->delay_ms > 0 &&
        s_hold(p, dir, c, parts, n, -1, now + (int64_t)(s_rand(p) * r->delay_ms)) == 0) {
        k->delayed++;
        return;
    }
    s_send(p, dir, c, parts, n);
    s_passed(p, dir, c);
}

static void s_format(const px_t *p, char *buf, size_t len)
{
    size_t o = 0;
    for (int d = 0; d < 2; d++) {
        const px_count_t *k = &p->cnt[d];
        const char *n = s_dir_name[d];
        o += (size_t)snprintf(buf + o, o < len ? len - o : 0,
                              "%s_in=%llu %s_forwarded=%llu %s_dropped=%llu %s_duplicated=%llu "
                              "%s_reordered=%llu %s_delayed=%llu %s_send_failed=%llu %s_blocked=%llu ",
                              n, (unsigned long long)k->in, n, (unsigned long long)k->forwarded,
                              n, (unsigned long long)k->dropped, n,
                              (unsigned long long)k->duplicated, n,
                              (unsigned long long)k->reordered, n, (unsigned long long)k->delayed,
                              n, (unsigned long long)k->send_failed, n,
                              (unsigned long long)k->blocked);
    }
    snprintf(buf + o, o < len ? len - o : 0, "clients=%u held=%zu held_at_exit=%llu", p->nclients,
             p->nheld, (unsigned long long)p->held_at_exit);
}

/* One line into path, atomically (zps_file): readers polling the file see
 * the old line or the new one.  0 or -1. */
static int s_write_line(const char *path, const char *line)
{
    char err[1200];
    zps_file_t *f = zps_file_atomic_open_path(path, 0644, err, sizeof err);
    if (!f)
        return -1;
    zps_file_write(f, line, strlen(line));
    zps_file_write(f, "\n", 1);
    return zps_file_commit(&f, err, sizeof err) ? -1 : 0;
}

static void s_write_stats(px_t *p, int force)
{
    if (!p->stats_file[0] || (!force && (!p->stats_dirty || zps_now_ms() - p->stats_written_ms < 100)))
        return;
    char buf[1024];
    s_format(p, buf, sizeof buf);
    s_write_line(p->stats_file, buf);
    p->stats_dirty = 0;
    p->stats_written_ms = zps_now_ms();
}

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: zps-proxy --listen tcp://127.0.0.1:PORT --upstream tcp://HOST:PORT [options]\n"
            "  A fault-injecting proxy for one zps server (tests).  Per message, per direction:\n"
            "  --drop P              drop it with probability P                     [0]\n"
            "  --dup P               forward it twice                               [0]\n"
            "  --reorder P           hold it until K later messages of the same     [0]\n"
            "                        client and direction have passed\n"
            "  --reorder-k K         K                                              [2]\n"
            "  --max-hold-ms MS      a held message goes out after MS at the latest [500]\n"
            "  --delay-ms D          hold every other message 0..D ms (jitter)      [0]\n"
            "  --c2s-drop P, --s2c-drop P, --c2s-dup P, --s2c-dup P, --c2s-reorder P,\n"
            "  --s2c-reorder P, --c2s-delay-ms D, --s2c-delay-ms D: one direction only\n"
            "                        (c2s: client -> server, s2c: server -> client)\n"
            "  --seed S              seed of the decisions                          [1]\n"
            "  --listen EP           port 0: pick a free one (see --ready-file)\n"
            "  --ready-file F        write the bound endpoint to F once listening\n"
            "  --stats-file F        keep the counters in F (key=value, updated as they change)\n"
            "  --block-file F        while F exists, drop every message (a cut link)\n"
            "  --s2c-block-file F    while F exists, drop every server -> client message\n"
            "  --help, --version\n"
            "On SIGTERM/SIGINT prints the counters (the --stats-file line) and exits 0.\n");
}

static int s_rate_opt(px_t *p, const char *name, const char *v)
{
    int dirs[2] = {1, 1};
    if (!strncmp(name, "c2s-", 4)) {
        dirs[1] = 0;
        name += 4;
    } else if (!strncmp(name, "s2c-", 4)) {
        dirs[0] = 0;
        name += 4;
    }
    double x;
    if (!strcmp(name, "delay-ms")) {
        int ms;
        if (zps_parse_int(v, &ms) || ms < 0)
            return -1;
        for (int d = 0; d < 2; d++)
            if (dirs[d])
                p->rate[d].delay_ms = ms;
        return 1;
    }
    if (strcmp(name, "drop") && strcmp(name, "dup") && strcmp(name, "reorder"))
        return 0;
    if (zps_parse_double(v, &x) || x < 0 || x > 1)
        return -1;
    for (int d = 0; d < 2; d++) {
        if (!dirs[d])
            continue;
        if (!strcmp(name, "drop"))
            p->rate[d].drop = x;
        else if (!strcmp(name, "dup"))
            p->rate[d].dup = x;
        else
            p->rate[d].reorder = x;
    }
    return 1;
}

int main(int argc, char **argv)
{
    static px_t px;
    px_t *p = &px;
    char listen[256] = "", ready[512] = "";
    uint64_t seed = 1;
    p->reorder_k = 2;
    p->max_hold_ms = 500;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help")) {
            s_usage(stdout);
            return 0;
        }
        if (!strcmp(o, "--version")) {
            printf("zps-proxy %s (protocol 1)\n", ZPS_VERSION);
            return 0;
        }
        if (strncmp(o, "--", 2) || i + 1 >= argc) {
            fprintf(stderr, "zps-proxy: unknown option or missing value: '%s' (see --help)\n", o);
            return 2;
        }
        const char *v = argv[++i];
        const char *name = o + 2;
        int bad = 0;
        if (!strcmp(name, "listen"))
            snprintf(listen, sizeof listen, "%s", v);
        else if (!strcmp(name, "upstream"))
            snprintf(p->upstream, sizeof p->upstream, "%s", v);
        else if (!strcmp(name, "ready-file"))
            snprintf(ready, sizeof ready, "%s", v);
        else if (!strcmp(name, "stats-file"))
            snprintf(p->stats_file, sizeof p->stats_file, "%s", v);
        else if (!strcmp(name, "block-file"))
            snprintf(p->block_file, sizeof p->block_file, "%s", v);
        else if (!strcmp(name, "s2c-block-file"))
            snprintf(p->s2c_block_file, sizeof p->s2c_block_file, "%s", v);
        else if (!strcmp(name, "seed"))
            bad = zps_parse_u64(v, &seed) != 0;
        else if (!strcmp(name, "reorder-k"))
            bad = zps_parse_int(v, &p->reorder_k) || p->reorder_k < 1;
        else if (!strcmp(name, "max-hold-ms"))
            bad = zps_parse_int(v, &p->max_hold_ms) || p->max_hold_ms < 0;
        else {
            int r = s_rate_opt(p, name, v);
            if (r == 0) {
                fprintf(stderr, "zps-proxy: unknown option '%s' (see --help)\n", o);
                return 2;
            }
            bad = r < 0;
        }
        if (bad) {
            fprintf(stderr, "zps-proxy: invalid value '%s' for %s\n", v, o);
            return 2;
        }
    }
    if (!listen[0] || !p->upstream[0]) {
        fprintf(stderr, "zps-proxy: --listen and --upstream are required (see --help)\n");
        return 2;
    }
    p->rng = zps_mix64(seed, 0xfa017);
    zps_daemon_signals(s_on_signal);
    p->ctx = zmq_ctx_new();
    p->front = zmq_socket(p->ctx, ZMQ_ROUTER);
    int linger = 0, hwm = 100000;
    zmq_setsockopt(p->front, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(p->front, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(p->front, ZMQ_RCVHWM, &hwm, sizeof hwm);
    char spec[300];
    size_t ln = strlen(listen);
    if (ln >= 2 && !strcmp(listen + ln - 2, ":0"))
        snprintf(spec, sizeof spec, "%.*s:*", (int)(ln - 2), listen);
    else
        snprintf(spec, sizeof spec, "%s", listen);
    if (zmq_bind(p->front, spec) != 0) {
        fprintf(stderr, "zps-proxy: cannot bind %s: %s\n", listen, zmq_strerror(errno));
        return 1;
    }
    char ep[256];
    size_t eplen = sizeof ep;
    zmq_getsockopt(p->front, ZMQ_LAST_ENDPOINT, ep, &eplen);
    if (ready[0]) {
        if (s_write_line(ready, ep) != 0) {
            fprintf(stderr, "zps-proxy: cannot write %s\n", ready);
            return 1;
        }
    }
    fprintf(stderr, "zps-proxy: %s -> %s (seed %llu)\n", ep, p->upstream, (unsigned long long)seed);
    s_write_stats(p, 1);
    zmq_pollitem_t *items = NULL;
    uint32_t items_cap = 0;
    while (!g_stop) {
        if (items_cap < p->nclients + 1) {
            uint32_t cap = (p->nclients + 1) * 2;
            zmq_pollitem_t *it = realloc(items, cap * sizeof *it);
            if (!it)
                break;
            items = it;
            items_cap = cap;
        }
        items[0] = (zmq_pollitem_t){p->front, 0, ZMQ_POLLIN, 0};
        for (uint32_t c = 0; c < p->nclients; c++)
            items[c + 1] = (zmq_pollitem_t){p->clients[c].dealer, 0, ZMQ_POLLIN, 0};
        long timeout = 100;
        int64_t now = zps_now_ms();
        for (size_t i = 0; i < p->nheld; i++)
            if (p->held[i].release_ms - now < timeout)
                timeout = p->held[i].release_ms - now < 0 ? 0 : (long)(p->held[i].release_ms - now);
        uint32_t nitems = p->nclients + 1;
        int rc = zmq_poll(items, (int)nitems, timeout);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN)) {
            for (int burst = 0; burst < 1000; burst++) {
                zmq_msg_t ident;
                zmq_msg_t *parts = NULL;
                int n = s_recv_all(p->front, 1, &ident, &parts);
                if (n == 0)
                    break;
                uint32_t c;
                if (s_client_of(p, zmq_msg_data(&ident), zmq_msg_size(&ident), &c) == 0)
                    s_route(p, C2S, c, parts, n);
                else
                    s_close_parts(parts, n);
                zmq_msg_close(&ident);
            }
        }
        for (uint32_t c = 0; rc > 0 && c + 1 < nitems; c++) {
            if (!(items[c + 1].revents & ZMQ_POLLIN))
                continue;
            for (int burst = 0; burst < 1000; burst++) {
                zmq_msg_t *parts = NULL;
                int n = s_recv_all(p->clients[c].dealer, 0, NULL, &parts);
                if (n == 0)
                    break;
                s_route(p, S2C, c, parts, n);
            }
        }
        s_release(p);
        s_write_stats(p, 0);
    }
    p->held_at_exit = p->nheld;
    for (size_t i = 0; i < p->nheld; i++)
        s_close_parts(p->held[i].parts, p->held[i].nparts);
    p->nheld = 0;
    s_write_stats(p, 1);
    char buf[1024];
    s_format(p, buf, sizeof buf);
    printf("zps-proxy: %s\n", buf);
    fflush(stdout);
    for (uint32_t c = 0; c < p->nclients; c++)
        zmq_close(p->clients[c].dealer);
    zmq_close(p->front);
    zmq_ctx_term(p->ctx);
    free(p->clients);
    free(p->held);
    free(items);
    return 0;
}
