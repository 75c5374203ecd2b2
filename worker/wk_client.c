/* wk_client: see wk_client.h for the contract.
 *
 * DESIGN
 * Tickets live in a power-of-two ring indexed by (ticket & mask); ticket ids
 * only grow, so a slot is reused for id + k*cap once its request finished.
 * A request in a slot records which servers still owe a reply (waiting[s]),
 * and for a pull split over several servers, the original position of every
 * key grouped by server (pos[off[s]..off[s+1])), so replies are scattered
 * straight into the caller's output.  With one server nothing is split and
 * a pull reply is one memcpy.
 *
 * Replies are matched by (server socket, request id); a reply for a slot
 * that no longer waits on that server (released after a timeout, or a
 * duplicate) is dropped.  Sends use ZMQ_SNDTIMEO, so a dead server whose
 * queue is full makes a call fail rather than block. */
#include "wk_client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "ps_optim.h"
#include "ps_table.h"
#include "zps_codec.h"
#include "zps_err.h"
#include "zps_hash.h"
#include "zps_msg.h"
#include "zps_place.h"
#include "zps_time.h"
#include "zps_vcodec.h"

#define WK_MAX_TABLES 8
#define WK_SIG_RING 64  /* key-list signatures remembered per server */

enum { RQ_FREE = 0, RQ_PULL, RQ_PUSH, RQ_HELLO, RQ_STATS, RQ_SHUTDOWN, RQ_CLOCK };

typedef struct {
    uint64_t id;
    int kind;
    uint32_t pending;      /* servers that still owe a reply */
    int status;            /* first error, 0 if none */
    uint32_t table, dim;
    float *out;            /* pull destination */
    size_t n;
    uint32_t *pos;         /* pull over >1 server: original index per key, by server */
    size_t pos_cap;
    size_t *off;           /* nservers + 1 offsets into pos (and key counts) */
    uint8_t *waiting;      /* per server */
    wk_server_stats_t *stats;
    uint64_t clock, seq;
    uint32_t push_codec_used;  /* the codec of this request's values frame */
    wk_push_meta_t meta;
    uint8_t *keep;         /* per server: 1 keys kept, 2 keys and values kept */
    int64_t *sent_ms;      /* per server: last (re)send */
    int64_t first_ms;      /* first send */
    zmq_msg_t *keep_keys, *keep_vals; /* for a resend after a key-cache miss */
    char err[320];
} wk_req_t;

typedef struct {
    uint32_t rank, nservers, ntables;
    wk_table_info_t tables[WK_MAX_TABLES];
    char job[128];
    int has_progress;
    uint32_t progress_epoch;
    uint64_t progress_rows;
} wk_hello_t;

struct wk_client {
    wk_client_conf_t conf;
    char **servers;
    void *ctx;
    void **socks;
    zmq_pollitem_t *items;
    wk_table_info_t tables[WK_MAX_TABLES];
    uint32_t ntables;
    wk_hello_t *hello;      /* per server, filled by the hello */
    wk_req_t *reqs;
    uint32_t mask, inflight;
    uint64_t next_id, push_seq, clock;
    int64_t *last_sent;     /* per server, ms: for heartbeats */
    uint32_t *owner;        /* scratch: server of each key */
    uint64_t *kscratch;     /* scratch: one server's keys */
    size_t scratch_cap;
    uint64_t sent, received;
    uint64_t push_raw, push_wire, key_cache_resends;
    float *vscratch, *sscratch; /* one server's gradient rows, and as sent */
    size_t vscratch_cap;
    float *dscratch;            /* decoded pull reply values */
    size_t dscratch_cap;
    uint64_t *sigs;             /* WK_SIG_RING per server */
    uint32_t *sig_pos;
    uint64_t rng;
    uint64_t nonce;             /* this process: (rank, nonce, seq) names a push */
    uint64_t *acked;            /* per server: pushes acknowledged */
    int64_t *retry_at_ms;       /* per server: backoff interval */
    int64_t *warned_ms;         /* per server: last on_wait call */
    /* local mode */
    ps_table_t *ltab;
    ps_optim_conf_t lopt;
    char ljob[128];
    char err[512];
};

static void s_free_buf(void *data, void *hint)
{
    (void)hint;
    free(data);
}

void wk_client_conf_defaults(wk_client_conf_t *c)
{
    memset(c, 0, sizeof *c);
    c->role = ZPS__ROLE__ROLE_WORKER;
    c->connect_timeout_ms = 10000;
    c->timeout_ms = 60000;
    c->max_inflight = 256;
}

static void s_seterr(wk_client_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_seterr(wk_client_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

static void s_req_err(wk_req_t *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void s_req_err(wk_req_t *r, int code, const char *fmt, ...)
{
    if (r->status)
        return; /* keep the first error */
    r->status = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
}

const char *wk_client_error(const wk_client_t *c) { return c->err; }
uint64_t wk_client_acked(const wk_client_t *c, uint32_t server)
{
    return c->acked && server < c->conf.nservers ? c->acked[server] : 0;
}
int wk_client_progress(const wk_client_t *c, uint32_t *epoch, uint64_t *rows)
{
    int have = 0;
    *epoch = 0;
    *rows = 0;
    for (uint32_t s = 0; s < c->conf.nservers; s++) {
        const wk_hello_t *h = &c->hello[s];
        if (!h->has_progress)
            continue;
        if (!have || h->progress_epoch > *epoch ||
            (h->progress_epoch == *epoch && h->progress_rows > *rows)) {
            *epoch = h->progress_epoch;
            *rows = h->progress_rows;
        }
        have = 1;
    }
    return have;
}

const char *wk_client_job(const wk_client_t *c) { return c->ltab ? c->ljob : c->hello[0].job; }
void wk_client_set_clock(wk_client_t *c, uint64_t clock) { c->clock = clock; }
uint32_t wk_client_inflight(const wk_client_t *c) { return c->inflight; }
uint32_t wk_client_ntables(const wk_client_t *c) { return c->ntables; }

const wk_table_info_t *wk_client_table(const wk_client_t *c, uint32_t table)
{
    return table < c->ntables ? &c->tables[table] : NULL;
}

void wk_client_push_bytes(const wk_client_t *c, uint64_t *raw, uint64_t *wire,
                          uint64_t *key_cache_resends)
{
    *raw = c->push_raw;
    *wire = c->push_wire;
    *key_cache_resends = c->key_cache_resends;
}

void wk_client_traffic(const wk_client_t *c, uint64_t *sent, uint64_t *received)
{
    *sent = c->sent;
    *received = c->received;
}

/* ---- tickets ----------------------------------------------------------- */

static wk_req_t *s_req_new(wk_client_t *c, int kind)
{
    uint64_t id = c->next_id;
    wk_req_t *r = &c->reqs[id & c->mask];
    if (r->kind != RQ_FREE) {
        s_seterr(c, "%u requests in flight: wait for some before sending more", c->inflight);
        return NULL;
    }
    c->next_id++;
    r->id = id;
    r->kind = kind;
    r->pending = 0;
    r->status = 0;
    r->out = NULL;
    r->stats = NULL;
    r->n = 0;
    r->err[0] = 0;
    r->first_ms = 0;
    memset(r->waiting, 0, c->conf.nservers);
    c->inflight++;
    return r;
}

static void s_req_release(wk_client_t *c, wk_req_t *r)
{
    if (r->kind == RQ_FREE)
        return;
    r->kind = RQ_FREE;
    memset(r->waiting, 0, c->conf.nservers);
    for (uint32_t s = 0; s < c->conf.nservers; s++) {
        if (r->keep[s] >= 1)
            zmq_msg_close(&r->keep_keys[s]);
        if (r->keep[s] == 2)
            zmq_msg_close(&r->keep_vals[s]);
        r->keep[s] = 0;
    }
    r->pending = 0;
    c->inflight--;
}

/* ---- receive path --------------------------------------------------------- */

static void s_resend_full(wk_client_t *c, wk_req_t *r, uint32_t s);

static void s_on_reply(wk_client_t *c, uint32_t s, zps_msg_t *m)
{
    const Zps__Envelope *env = m->env;
    wk_req_t *r = &c->reqs[env->request_id & c->mask];
    if (r->kind == RQ_FREE || r->id != env->request_id || !r->waiting[s])
        return; /* late reply to a released ticket, or a duplicate */
    if (env->body_case == ZPS__ENVELOPE__BODY_ERROR && env->error->code == ZPS_EKEYCACHE &&
        r->keep[s]) {
        s_resend_full(c, r, s);
        return;
    }
    r->waiting[s] = 0;
    r->pending--;
    const char *addr = c->servers[s];
    if (env->body_case == ZPS__ENVELOPE__BODY_ERROR) {
        int code = env->error->code;
        s_req_err(r, code < 0 && code > -31000 ? code : ZPS_ESERVER, "server %u at %s: %s", s,
                  addr, env->error->text);
        return;
    }
    switch (r->kind) {
    case RQ_PULL: {
        if (env->body_case != ZPS__ENVELOPE__BODY_PULL_REPLY) {
            s_req_err(r, ZPS_EPROTO, "server %u at %s: answered a pull with %s", s, addr,
                      zps_msg_type_name(env->type));
            return;
        }
        size_t cnt = c->conf.nservers == 1 ? r->n : r->off[s + 1] - r->off[s];
        size_t len;
        const uint8_t *v = zps_msg_bulk(m, 1, &len);
        zps_vcodec_t codec = (zps_vcodec_t)env->pull_reply->value_codec;
        if (codec != ZPS_VC_F32 && env->pull_reply->nkeys == cnt && env->pull_reply->dim == r->dim) {
            size_t vn = cnt * r->dim;
            if (c->dscratch_cap < vn) {
                float *d = realloc(c->dscratch, vn * sizeof *d);
                if (!d) {
                    s_req_err(r, ZPS_ENOMEM, "out of memory decoding a pull reply");
                    return;
                }
                c->dscratch = d;
                c->dscratch_cap = vn;
            }
            if (zps_vc_decode(codec, v, len, vn, c->dscratch) != 0) {
                s_req_err(r, ZPS_EPROTO, "server %u at %s: undecodable %s pull reply", s, addr,
                          zps_vc_name(codec));
                return;
            }
            v = (const uint8_t *)c->dscratch;
            len = vn * sizeof(float);
        }
        if (env->pull_reply->nkeys != cnt || env->pull_reply->dim != r->dim ||
            len != cnt * r->dim * sizeof(float)) {
            s_req_err(r, ZPS_EPROTO,
                      "server %u at %s: pull reply has %llu keys of dim %u in %zu bytes, "
                      "expected %zu keys of dim %u",
                      s, addr, (unsigned long long)env->pull_reply->nkeys, env->pull_reply->dim,
                      len, cnt, r->dim);
            return;
        }
        if (r->status)
            return;
        if (c->conf.nservers == 1) {
            memcpy(r->out, v, len);
        } else if (r->dim == 1) {
            const uint32_t *pos = r->pos + r->off[s];
            for (size_t j = 0; j < cnt; j++)
                memcpy(r->out + pos[j], v + j * sizeof(float), sizeof(float));
        } else {
            const uint32_t *pos = r->pos + r->off[s];
            size_t row = r->dim * sizeof(float);
            for (size_t j = 0; j < cnt; j++)
                memcpy(r->out + (size_t)pos[j] * r->dim, v + j * row, row);
        }
        break;
    }
    case RQ_PUSH:
        if (env->body_case == ZPS__ENVELOPE__BODY_PUSH_ACK)
            c->acked[s]++;
        if (env->body_case != ZPS__ENVELOPE__BODY_PUSH_ACK)
            s_req_err(r, ZPS_EPROTO, "server %u at %s: answered a push with %s", s, addr,
                      zps_msg_type_name(env->type));
        break;
    case RQ_HELLO: {
        if (env->body_case != ZPS__ENVELOPE__BODY_HELLO_REPLY) {
            s_req_err(r, ZPS_EPROTO, "server %u at %s: answered hello with %s", s, addr,
                      zps_msg_type_name(env->type));
            return;
        }
        const Zps__HelloReply *h = env->hello_reply;
        wk_hello_t *o = &c->hello[s];
        o->rank = h->server_rank;
        o->nservers = h->num_servers;
        o->ntables = h->n_tables < WK_MAX_TABLES ? (uint32_t)h->n_tables : WK_MAX_TABLES;
        snprintf(o->job, sizeof o->job, "%s", h->job);
        o->has_progress = h->has_progress;
        o->progress_epoch = h->progress_epoch;
        o->progress_rows = h->progress_rows;
        for (uint32_t t = 0; t < o->ntables; t++) {
            o->tables[t].dim = h->tables[t]->dim;
            snprintf(o->tables[t].optimizer, sizeof o->tables[t].optimizer, "%s",
                     h->tables[t]->optimizer);
            snprintf(o->tables[t].options, sizeof o->tables[t].options, "%s",
                     h->tables[t]->options);
        }
        break;
    }
    case RQ_STATS: {
        if (env->body_case != ZPS__ENVELOPE__BODY_STATS_REPLY) {
            s_req_err(r, ZPS_EPROTO, "server %u at %s: answered stats with %s", s, addr,
                      zps_msg_type_name(env->type));
            return;
        }
        const Zps__StatsReply *b = env->stats_reply;
        wk_server_stats_t *o = r->stats;
        o->keys_stored = b->keys_stored;
        o->bytes_used = b->bytes_used;
        o->pushes = b->pushes;
        o->pulls = b->pulls;
        o->keys_pushed = b->keys_pushed;
        o->keys_pulled = b->keys_pulled;
        o->bytes_in = b->bytes_in;
        o->bytes_out = b->bytes_out;
        o->errors = b->errors;
        o->uptime_ms = b->uptime_ms;
        o->max_staleness = b->max_staleness;
        o->min_clock = b->min_clock;
        o->pull_waits = b->pull_waits;
        o->workers_dropped = b->workers_dropped;
        o->clocks_applied = b->clocks_applied;
        o->push_raw_bytes = b->push_raw_bytes;
        o->push_wire_bytes = b->push_wire_bytes;
        o->key_cache_hits = b->key_cache_hits;
        o->key_cache_misses = b->key_cache_misses;
        o->duplicate_pushes = b->duplicate_pushes;
        o->checkpoints = b->checkpoints;
        o->restored_pushes = b->restored_pushes;
        o->lost_pushes = b->lost_pushes;
        o->applied_pushes = b->applied_pushes;
        o->nworkers = (uint32_t)b->n_worker_clocks;
        for (size_t w = 0; w < b->n_worker_clocks && w < 64; w++)
            o->worker_clocks[w] = b->worker_clocks[w];
        break;
    }
    case RQ_CLOCK:
        if (env->type != ZPS__MSG_TYPE__CLOCK_ACK)
            s_req_err(r, ZPS_EPROTO, "server %u at %s: answered clock with %s", s, addr,
                      zps_msg_type_name(env->type));
        break;
    case RQ_SHUTDOWN:
        if (env->type != ZPS__MSG_TYPE__SHUTDOWN_ACK)
            s_req_err(r, ZPS_EPROTO, "server %u at %s: answered shutdown with %s", s, addr,
                      zps_msg_type_name(env->type));
        break;
    default: break;
    }
}

/* Receive everything waiting on server s's socket. */
static void s_drain(wk_client_t *c, uint32_t s)
{
    for (;;) {
        zps_msg_t m;
        int rc = zps_msg_recv(c->socks[s], 0, &m, ZMQ_DONTWAIT);
        c->received += m.wire_bytes;
        if (rc == 0) {
            c->retry_at_ms[s] = c->conf.retry_ms;
            s_on_reply(c, s, &m);
        }
        else if (rc == ZPS_EPROTO || rc == ZPS_EVERSION) {
            /* A reply we cannot parse: fail the request it names, if any. */
            if (m.env) {
                wk_req_t *r = &c->reqs[m.env->request_id & c->mask];
                if (r->kind != RQ_FREE && r->id == m.env->request_id && r->waiting[s]) {
                    r->waiting[s] = 0;
                    r->pending--;
                    s_req_err(r, rc, "server %u at %s: %s", s, c->servers[s], m.reason);
                }
            }
        }
        zps_msg_close(&m);
        if (rc == ZPS_EIO || rc == ZPS_EINTR)
            return;
    }
}

/* Send a HEARTBEAT to every server we have not sent anything to lately. */
static void s_heartbeats(wk_client_t *c)
{
    int64_t now = zps_now_ms();
    for (uint32_t s = 0; s < c->conf.nservers; s++) {
        if (now - c->last_sent[s] < c->conf.heartbeat_ms)
            continue;
        Zps__Envelope env;
        Zps__Heartbeat hb = ZPS__HEARTBEAT__INIT;
        zps_msg_env(&env, ZPS__MSG_TYPE__HEARTBEAT, c->conf.role, c->conf.rank, 0);
        hb.clock = c->clock;
        env.body_case = ZPS__ENVELOPE__BODY_HEARTBEAT;
        env.heartbeat = &hb;
        size_t wire = 0;
        if (zps_msg_send(c->socks[s], NULL, &env, NULL, 0, NULL, 0, &wire) == 0)
            c->sent += wire;
        c->last_sent[s] = now;
    }
}

/* Resend every request a server owes us, oldest first, if the oldest has
 * waited longer than that server's backoff interval; tell on_wait. */
static void s_retry(wk_client_t *c)
{
    int64_t now = zps_now_ms();
    uint64_t lo = c->next_id - c->inflight - 1;
    for (uint32_t s = 0; s < c->conf.nservers; s++) {
        int64_t oldest = 0;
        for (uint32_t i = 0; i <= c->mask; i++) {
            wk_req_t *r = &c->reqs[i];
            if (r->kind != RQ_FREE && r->waiting[s] && r->keep[s] &&
                (!oldest || r->sent_ms[s] < oldest))
                oldest = r->sent_ms[s];
        }
        if (!oldest || now - oldest < c->retry_at_ms[s])
            continue;
        double waited = (double)(now - oldest) / 1000.0;
        if (c->conf.on_wait && now - c->warned_ms[s] >= 5000) {
            c->warned_ms[s] = now;
            c->conf.on_wait(c->conf.on_wait_ctx, s, c->servers[s], waited);
        }
        /* in ticket order, so the server sees pushes in their sequence order */
        for (uint64_t id = lo; id < c->next_id; id++) {
            wk_req_t *r = &c->reqs[id & c->mask];
            if (r->kind != RQ_FREE && r->id == id && r->waiting[s] && r->keep[s])
                s_resend_full(c, r, s);
        }
        c->retry_at_ms[s] = c->retry_at_ms[s] * 2 > 8000 ? 8000 : c->retry_at_ms[s] * 2;
    }
}

int wk_client_wait(wk_client_t *c, uint64_t ticket, int timeout_ms)
{
    wk_req_t *r = &c->reqs[ticket & c->mask];
    if (r->kind == RQ_FREE || r->id != ticket) {
        s_seterr(c, "ticket %llu is not in flight", (unsigned long long)ticket);
        return ZPS_EINVAL;
    }
    if (timeout_ms < 0)
        timeout_ms = c->conf.timeout_ms;
    int retrying = c->conf.retry_ms > 0 && (r->kind == RQ_PULL || r->kind == RQ_PUSH);
    if (retrying)
        timeout_ms = c->conf.server_timeout_ms > 0 ? c->conf.server_timeout_ms : 120000;
    int64_t deadline = (retrying && r->first_ms ? r->first_ms : zps_now_ms()) + timeout_ms;
    uint32_t S = c->conf.nservers;
    while (r->pending > 0) {
        if (retrying)
            s_retry(c);
        int64_t left = deadline - zps_now_ms();
        if (left <= 0) {
            char who[256];
            int n = 0;
            for (uint32_t s = 0; s < S && n < (int)sizeof who - 64; s++)
                if (r->waiting[s])
                    n += snprintf(who + n, sizeof who - (size_t)n, "%sserver %u at %s",
                                  n ? ", " : "", s, c->servers[s]);
            s_seterr(c, "no answer within %d ms from %s", timeout_ms, who);
            s_req_release(c, r);
            return ZPS_ETIMEDOUT;
        }
        long slice = left;
        if (retrying && slice > 250)
            slice = 250;
        if (c->conf.heartbeat_ms > 0) {
            s_heartbeats(c);
            if (slice > c->conf.heartbeat_ms)
                slice = c->conf.heartbeat_ms;
        }
        int rc = zmq_poll(c->items, (int)S, slice);
        if (rc < 0) {
            if (errno == EINTR) {
                s_seterr(c, "interrupted while waiting for servers");
                return ZPS_EINTR; /* ticket stays in flight; wait again */
            }
            s_seterr(c, "poll failed: %s", zmq_strerror(errno));
            s_req_release(c, r);
            return ZPS_EIO;
        }
        for (uint32_t s = 0; s < S; s++)
            if (c->items[s].revents & ZMQ_POLLIN)
                s_drain(c, s);
    }
    int status = r->status;
    if (status)
        snprintf(c->err, sizeof c->err, "%s", r->err);
    s_req_release(c, r);
    return status;
}

/* ---- send path ------------------------------------------------------------ */

/* Grow ptr to n elements (kept on failure), or return ZPS_ENOMEM. */
#define S_GROW(ptr, n)                                              \
    do {                                                            \
        void *grown_ = realloc((ptr), (n) * sizeof *(ptr));         \
        if (!grown_)                                                \
            return ZPS_ENOMEM;                                      \
        (ptr) = grown_;                                             \
    } while (0)

static int s_grow_scratch(wk_client_t *c, wk_req_t *r, size_t n, size_t nvals)
{
    if (c->vscratch_cap < nvals) {
        S_GROW(c->vscratch, nvals);
        S_GROW(c->sscratch, nvals);
        c->vscratch_cap = nvals;
    }
    if (c->scratch_cap < n) {
        S_GROW(c->owner, n);
        S_GROW(c->kscratch, n);
        c->scratch_cap = n;
    }
    if (r->pos_cap < n) {
        S_GROW(r->pos, n);
        r->pos_cap = n;
    }
    return 0;
}

/* Group key indices by owning server into r->pos / r->off. */
static void s_split(wk_client_t *c, wk_req_t *r, const uint64_t *keys, size_t n)
{
    uint32_t S = c->conf.nservers;
    size_t *off = r->off;
    memset(off, 0, (S + 1) * sizeof *off);
    for (size_t i = 0; i < n; i++) {
        uint32_t s = zps_place(keys[i], S);
        c->owner[i] = s;
        off[s + 1]++;
    }
    for (uint32_t s = 0; s < S; s++)
        off[s + 1] += off[s];
    /* fill using off[s] as a cursor, then restore */
    for (size_t i = 0; i < n; i++)
        r->pos[off[c->owner[i]]++] = (uint32_t)i;
    for (uint32_t s = S; s > 0; s--)
        off[s] = off[s - 1];
    off[0] = 0;
}

/* Envelope of a pull or push sub-request to one server. */
static void s_env_sub(wk_client_t *c, wk_req_t *r, uint32_t s, Zps__Envelope *env,
                      Zps__Pull *pull, Zps__Push *push, uint64_t sig)
{
    size_t cnt = c->conf.nservers == 1 ? r->n : r->off[s + 1] - r->off[s];
    if (r->kind == RQ_PULL) {
        zps_msg_env(env, ZPS__MSG_TYPE__PULL, c->conf.role, c->conf.rank, r->id);
        zps__pull__init(pull);
        pull->table = r->table;
        pull->nkeys = cnt;
        pull->clock = r->clock;
        pull->key_sig = sig;
        pull->value_codec = c->conf.pull_codec;
        env->body_case = ZPS__ENVELOPE__BODY_PULL;
        env->pull = pull;
    } else {
        zps_msg_env(env, ZPS__MSG_TYPE__PUSH, c->conf.role, c->conf.rank, r->id);
        zps__push__init(push);
        push->table = r->table;
        push->nkeys = cnt;
        push->dim = r->dim;
        push->seq = r->seq;
        push->clock = r->clock;
        push->raw_bytes = cnt * (8 + 4 * (uint64_t)r->dim);
        push->tick = r->meta.tick != 0;
        push->examples = r->meta.examples;
        push->mean = r->meta.mean != 0;
        push->value_codec = r->push_codec_used;
        push->key_sig = sig;
        push->client_nonce = c->nonce;
        push->acked = c->acked ? c->acked[s] : 0;
        push->progress_epoch = r->meta.progress_epoch;
        push->progress_rows = r->meta.progress_rows;
        env->body_case = ZPS__ENVELOPE__BODY_PUSH;
        env->push = push;
    }
}

/* Has server s seen this key list lately?  Remember it either way. */
static int s_sig_known(wk_client_t *c, uint32_t s, uint64_t sig)
{
    uint64_t *ring = c->sigs + (size_t)s * WK_SIG_RING;
    for (int i = 0; i < WK_SIG_RING; i++)
        if (ring[i] == sig)
            return 1;
    ring[c->sig_pos[s]++ % WK_SIG_RING] = sig;
    return 0;
}

/* Send one server's part of request r.  keys: the server's sorted keys;
 * vals (push only): its gradient rows.  sent (may be NULL) receives the
 * values as the server will decode them. */
static int s_send_sub(wk_client_t *c, wk_req_t *r, uint32_t s, const uint64_t *keys,
                      size_t cnt, const float *vals, float *sent)
{
    size_t vn = cnt * r->dim;
    zmq_msg_t kmsg, vmsg, *vp = NULL;
    uint8_t *kb = malloc(zps_keys_bound(cnt) + 1);
    if (!kb)
        goto nomem;
    long klen = zps_keys_encode(keys, cnt, kb, zps_keys_bound(cnt) + 1);
    if (klen < 0 || zmq_msg_init_data(&kmsg, kb, (size_t)klen, s_free_buf, NULL) != 0) {
        free(kb);
        goto nomem;
    }
    if (r->kind == RQ_PUSH) {
        zps_vcodec_t codec = (zps_vcodec_t)c->conf.push_codec;
        if (codec != ZPS_VC_F32 && !zps_vc_all_finite(vals, vn))
            codec = ZPS_VC_F32; /* the server rejects it with a clear error */
        r->push_codec_used = codec;
        size_t vlen = zps_vc_size(codec, vn);
        uint8_t *vb = malloc(vlen ? vlen : 1);
        if (!vb) {
            zmq_msg_close(&kmsg);
            goto nomem;
        }
        zps_vc_encode(codec, vals, vn, vb, &c->rng);
        if (sent && zps_vc_decode(codec, vb, vlen, vn, sent) != 0)
            memcpy(sent, vals, vn * sizeof(float));
        if (zmq_msg_init_data(&vmsg, vb, vlen, s_free_buf, NULL) != 0) {
            free(vb);
            zmq_msg_close(&kmsg);
            goto nomem;
        }
        vp = &vmsg;
    }
    uint64_t sig = 0;
    int by_sig = 0;
    if (c->conf.key_cache && cnt > 0) {
        sig = zps_keys_sig(keys, cnt);
        by_sig = s_sig_known(c, s, sig);
    }
    Zps__Envelope env;
    Zps__Pull pull;
    Zps__Push push;
    s_env_sub(c, r, s, &env, &pull, &push, sig);
    size_t wire = 0;
    int rc;
    if (by_sig || c->conf.retry_ms > 0) {
        /* keep the full frames (shared, not copied) for a resend after a
         * key-cache miss or a timeout */
        zmq_msg_init(&r->keep_keys[s]);
        zmq_msg_copy(&r->keep_keys[s], &kmsg);
        if (vp) {
            zmq_msg_init(&r->keep_vals[s]);
            zmq_msg_copy(&r->keep_vals[s], vp);
        }
        r->keep[s] = 1 + (vp != NULL);
    }
    if (by_sig) {
        zmq_msg_t nokeys;
        zmq_msg_init(&nokeys);
        zmq_msg_close(&kmsg);
        rc = zps_msg_send_frames(c->socks[s], &env, &nokeys, vp, &wire);
    } else {
        rc = zps_msg_send_frames(c->socks[s], &env, &kmsg, vp, &wire);
    }
    if (rc) {
        s_req_err(r, rc == ZPS_EIO ? ZPS_ETIMEDOUT : rc,
                  "server %u at %s: cannot send (%s): is it running?", s, c->servers[s],
                  errno == EAGAIN ? "send queue full" : zmq_strerror(errno));
        return rc;
    }
    c->sent += wire;
    if (r->kind == RQ_PUSH) {
        c->push_raw += cnt * (8 + 4 * (uint64_t)r->dim);
        c->push_wire += wire;
    }
    c->last_sent[s] = zps_now_ms();
    r->sent_ms[s] = c->last_sent[s];
    if (!r->first_ms)
        r->first_ms = r->sent_ms[s];
    r->waiting[s] = 1;
    r->pending++;
    return 0;
nomem:
    s_req_err(r, ZPS_ENOMEM, "out of memory for a request of %zu keys", cnt);
    return ZPS_ENOMEM;
}

/* The server evicted the key list r sent to s by signature: send it again
 * in full (keeping the same request id). */
static void s_resend_full(wk_client_t *c, wk_req_t *r, uint32_t s)
{
    Zps__Envelope env;
    Zps__Pull pull;
    Zps__Push push;
    s_env_sub(c, r, s, &env, &pull, &push, 0);
    zmq_msg_t k, v;
    zmq_msg_init(&k);
    zmq_msg_copy(&k, &r->keep_keys[s]);
    zmq_msg_init(&v);
    if (r->keep[s] == 2)
        zmq_msg_copy(&v, &r->keep_vals[s]);
    size_t wire = 0;
    int rc = zps_msg_send_frames(c->socks[s], &env, &k, r->keep[s] == 2 ? &v : NULL, &wire);
    if (r->keep[s] != 2)
        zmq_msg_close(&v);
    c->sent += wire;
    c->key_cache_resends++;
    r->sent_ms[s] = zps_now_ms();
    if (rc) {
        r->waiting[s] = 0;
        r->pending--;
        s_req_err(r, rc, "server %u at %s: cannot resend a request", s, c->servers[s]);
    }
}

/* Local mode: the same work a server does, in process, at once. */
static void s_local(wk_client_t *c, int kind, const uint64_t *keys, const float *grads, size_t n,
                    float *out, float *sent)
{
    enum { CH = 256 };
    float *rows[CH];
    uint8_t ins[CH];
    uint32_t dim = kind == RQ_PUSH ? ps_optim_push_floats(&c->lopt) : c->lopt.dim;
    for (size_t i = 0; i < n; i += CH) {
        size_t m = n - i < CH ? n - i : CH;
        if (kind == RQ_PULL) {
            ps_table_find_batch(c->ltab, keys + i, m, rows);
            for (size_t j = 0; j < m; j++) {
                if (rows[j])
                    ps_optim_weights(&c->lopt, rows[j], out + (i + j) * dim);
                else
                    ps_optim_initial_weights(&c->lopt, keys[i + j], out + (i + j) * dim);
            }
        } else {
            if (ps_table_upsert_batch(c->ltab, keys + i, m, rows, ins) != 0)
                return;
            for (size_t j = 0; j < m; j++) {
                if (ins[j] && c->lopt.init_scale != 0)
                    ps_optim_init_row(&c->lopt, keys[i + j], rows[j]);
                ps_optim_apply(&c->lopt, rows[j], grads + (i + j) * dim);
            }
        }
    }
    if (kind == RQ_PUSH && sent)
        memcpy(sent, grads, n * dim * sizeof(float));
}

static int s_start(wk_client_t *c, int kind, uint32_t table, const uint64_t *keys,
                   const float *grads, size_t n, float *out, const wk_push_meta_t *meta,
                   uint64_t *ticket)
{
    if (table >= c->ntables) {
        s_seterr(c, "table %u does not exist (servers have %u)", table, c->ntables);
        return ZPS_EINVAL;
    }
    if (n > UINT32_MAX) {
        s_seterr(c, "%zu keys in one request: split it", n);
        return ZPS_ETOOBIG;
    }
    if (zps_keys_check_sorted(keys, n) != 0) {
        s_seterr(c, "keys must be sorted and unique");
        return ZPS_EINVAL;
    }
    wk_req_t *r = s_req_new(c, kind);
    if (!r)
        return ZPS_EBUSY;
    uint32_t S = c->conf.nservers, dim = c->tables[table].dim;
    if (kind == RQ_PUSH) /* --optimizer norm: one more float per key, max |x| */
        dim += strcmp(c->tables[table].optimizer, "norm") == 0;
    r->table = table;
    r->dim = dim;
    r->out = out;
    r->n = n;
    r->clock = c->clock;
    r->seq = kind == RQ_PUSH ? ++c->push_seq : 0;
    if (meta)
        r->meta = *meta;
    else
        memset(&r->meta, 0, sizeof r->meta);
    float *sent = meta ? meta->sent : NULL;
    int rc = 0;
    if (c->ltab) {
        s_local(c, kind, keys, grads, n, out, sent);
        *ticket = r->id;
        return 0;
    }
    if (S > 1 && (rc = s_grow_scratch(c, r, n, kind == RQ_PUSH ? n * dim : 0)) != 0) {
        s_seterr(c, "out of memory splitting %zu keys", n);
        s_req_release(c, r);
        return rc;
    }
    if (S == 1) {
        rc = s_send_sub(c, r, 0, keys, n, grads, sent);
    } else {
        s_split(c, r, keys, n);
        for (uint32_t s = 0; s < S && !rc; s++) {
            size_t cnt = r->off[s + 1] - r->off[s];
            if (cnt == 0 && !(kind == RQ_PUSH && c->conf.sync_all))
                continue;
            const uint32_t *pos = r->pos + r->off[s];
            for (size_t j = 0; j < cnt; j++)
                c->kscratch[j] = keys[pos[j]];
            if (kind == RQ_PUSH)
                for (size_t j = 0; j < cnt; j++)
                    memcpy(c->vscratch + j * dim, grads + (size_t)pos[j] * dim, dim * sizeof(float));
            rc = s_send_sub(c, r, s, c->kscratch, cnt, c->vscratch, sent ? c->sscratch : NULL);
            if (!rc && sent)
                for (size_t j = 0; j < cnt; j++)
                    memcpy(sent + (size_t)pos[j] * dim, c->sscratch + j * dim, dim * sizeof(float));
        }
    }
    if (rc) {
        snprintf(c->err, sizeof c->err, "%s", r->err);
        s_req_release(c, r);
        return rc;
    }
    *ticket = r->id;
    return 0;
}

int wk_client_pull_async(wk_client_t *c, uint32_t table, const uint64_t *keys, size_t n,
                         float *out, uint64_t *ticket)
{
    return s_start(c, RQ_PULL, table, keys, NULL, n, out, NULL, ticket);
}

int wk_client_push_async(wk_client_t *c, uint32_t table, const uint64_t *keys,
                         const float *grads, size_t n, uint64_t *ticket)
{
    return s_start(c, RQ_PUSH, table, keys, grads, n, NULL, NULL, ticket);
}

int wk_client_push_ex(wk_client_t *c, uint32_t table, const uint64_t *keys, const float *grads,
                      size_t n, const wk_push_meta_t *meta, uint64_t *ticket)
{
    return s_start(c, RQ_PUSH, table, keys, grads, n, NULL, meta, ticket);
}

int wk_client_pull(wk_client_t *c, uint32_t table, const uint64_t *keys, size_t n, float *out)
{
    uint64_t t;
    int rc = wk_client_pull_async(c, table, keys, n, out, &t);
    return rc ? rc : wk_client_wait(c, t, -1);
}

int wk_client_push(wk_client_t *c, uint32_t table, const uint64_t *keys, const float *grads,
                   size_t n)
{
    uint64_t t;
    int rc = wk_client_push_async(c, table, keys, grads, n, &t);
    return rc ? rc : wk_client_wait(c, t, -1);
}

/* Send a control message (no bulk frames) to server s for request r. */
static int s_send(wk_client_t *c, wk_req_t *r, uint32_t s, Zps__Envelope *env)
{
    size_t wire = 0;
    int rc = zps_msg_send(c->socks[s], NULL, env, NULL, 0, NULL, 0, &wire);
    if (rc) {
        s_req_err(r, rc == ZPS_EIO ? ZPS_ETIMEDOUT : rc,
                  "server %u at %s: cannot send (%s): is it running?", s, c->servers[s],
                  errno == EAGAIN ? "send queue full" : zmq_strerror(errno));
        return rc;
    }
    c->sent += wire;
    c->last_sent[s] = zps_now_ms();
    r->waiting[s] = 1;
    r->pending++;
    return 0;
}

/* One control message (hello / stats / shutdown) to server s (or all if
 * s == UINT32_MAX), then wait. */
static int s_control(wk_client_t *c, int kind, uint32_t server, wk_server_stats_t *stats,
                     const char *reason, int timeout_ms)
{
    wk_req_t *r = s_req_new(c, kind);
    if (!r)
        return ZPS_EBUSY;
    r->stats = stats;
    int rc = 0;
    for (uint32_t s = 0; s < c->conf.nservers && !rc; s++) {
        if (server != UINT32_MAX && s != server)
            continue;
        Zps__Envelope env;
        Zps__Hello hello = ZPS__HELLO__INIT;
        Zps__Stats st = ZPS__STATS__INIT;
        Zps__Shutdown sd = ZPS__SHUTDOWN__INIT;
        Zps__Clock ck = ZPS__CLOCK__INIT;
        if (kind == RQ_CLOCK) {
            zps_msg_env(&env, ZPS__MSG_TYPE__CLOCK, c->conf.role, c->conf.rank, r->id);
            ck.clock = c->clock;
            ck.done = 1;
            env.body_case = ZPS__ENVELOPE__BODY_CLOCK;
            env.clock = &ck;
        } else if (kind == RQ_HELLO) {
            zps_msg_env(&env, ZPS__MSG_TYPE__HELLO, c->conf.role, c->conf.rank, r->id);
            hello.client_version = ZPS_VERSION;
            env.body_case = ZPS__ENVELOPE__BODY_HELLO;
            env.hello = &hello;
        } else if (kind == RQ_STATS) {
            zps_msg_env(&env, ZPS__MSG_TYPE__STATS, c->conf.role, c->conf.rank, r->id);
            env.body_case = ZPS__ENVELOPE__BODY_STATS;
            env.stats = &st;
        } else {
            zps_msg_env(&env, ZPS__MSG_TYPE__SHUTDOWN, c->conf.role, c->conf.rank, r->id);
            sd.reason = (char *)(reason ? reason : "");
            env.body_case = ZPS__ENVELOPE__BODY_SHUTDOWN;
            env.shutdown = &sd;
        }
        rc = s_send(c, r, s, &env);
    }
    if (rc) {
        snprintf(c->err, sizeof c->err, "%s", r->err);
        s_req_release(c, r);
        return rc;
    }
    return wk_client_wait(c, r->id, timeout_ms);
}

int wk_client_stats(wk_client_t *c, uint32_t server, wk_server_stats_t *out)
{
    if (c->ltab) {
        memset(out, 0, sizeof *out);
        out->keys_stored = ps_table_size(c->ltab);
        out->bytes_used = ps_table_bytes(c->ltab);
        return 0;
    }
    if (server >= c->conf.nservers) {
        s_seterr(c, "no server %u", server);
        return ZPS_EINVAL;
    }
    memset(out, 0, sizeof *out);
    return s_control(c, RQ_STATS, server, out, NULL, -1);
}

int wk_client_done(wk_client_t *c)
{
    if (c->ltab)
        return 0;
    return s_control(c, RQ_CLOCK, UINT32_MAX, NULL, NULL, -1);
}

int wk_client_shutdown(wk_client_t *c, uint32_t server, const char *reason)
{
    if (server >= c->conf.nservers) {
        s_seterr(c, "no server %u", server);
        return ZPS_EINVAL;
    }
    return s_control(c, RQ_SHUTDOWN, server, NULL, reason, -1);
}

/* ---- life cycle -------------------------------------------------------- */

static int s_check_hello(wk_client_t *c, char *err, size_t errlen)
{
    uint32_t S = c->conf.nservers;
    for (uint32_t s = 0; s < S; s++) {
        const wk_hello_t *h = &c->hello[s];
        if (h->rank != s || h->nservers != S) {
            snprintf(err, errlen,
                     "server at %s says it is rank %u of %u servers, but it is listed as server "
                     "%u of %u",
                     c->servers[s], h->rank, h->nservers, s, S);
            return ZPS_EMISMATCH;
        }
        if (h->ntables == 0) {
            snprintf(err, errlen, "server %u at %s has no tables", s, c->servers[s]);
            return ZPS_EMISMATCH;
        }
        if (s == 0)
            continue;
        const wk_hello_t *h0 = &c->hello[0];
        if (strcmp(h->job, h0->job) != 0) {
            snprintf(err, errlen, "servers disagree on the job: server 0 at %s has '%s', server %u at %s has '%s'",
                     c->servers[0], h0->job, s, c->servers[s], h->job);
            return ZPS_EMISMATCH;
        }
        for (uint32_t t = 0; t < h->ntables || t < h0->ntables; t++) {
            if (t >= h->ntables || t >= h0->ntables ||
                strcmp(h->tables[t].options, h0->tables[t].options) != 0) {
                snprintf(err, errlen,
                         "servers disagree on table %u: server 0 at %s has '%s', server %u at %s "
                         "has '%s'",
                         t, c->servers[0], t < h0->ntables ? h0->tables[t].options : "(none)", s,
                         c->servers[s], t < h->ntables ? h->tables[t].options : "(none)");
                return ZPS_EMISMATCH;
            }
        }
    }
    c->ntables = c->hello[0].ntables;
    memcpy(c->tables, c->hello[0].tables, sizeof c->tables);
    return 0;
}

static wk_client_t *s_new_local(const wk_client_conf_t *conf, char *err, size_t errlen)
{
    wk_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->conf = *conf;
    c->conf.nservers = 0;
    c->lopt = *conf->local;
    snprintf(c->ljob, sizeof c->ljob, "%s", conf->local_job ? conf->local_job : "");
    c->mask = 255;
    c->next_id = 1;
    c->reqs = calloc(c->mask + 1, sizeof *c->reqs);
    c->ltab = ps_table_new(ps_optim_row_floats(&c->lopt), 1 << 20);
    for (uint32_t i = 0; c->reqs && i <= c->mask; i++)
        if (!(c->reqs[i].waiting = calloc(1, 1)) || !(c->reqs[i].keep = calloc(1, 1)) ||
            !(c->reqs[i].off = calloc(2, sizeof(size_t))))
            break;
    if (!c->reqs || !c->ltab || !c->reqs[c->mask].off) {
        snprintf(err, errlen, "out of memory");
        wk_client_destroy(&c);
        return NULL;
    }
    c->ntables = 1;
    c->tables[0].dim = c->lopt.dim;
    snprintf(c->tables[0].optimizer, sizeof c->tables[0].optimizer, "%s",
             ps_optim_kind_name(c->lopt.kind));
    ps_optim_describe(&c->lopt, c->tables[0].options, sizeof c->tables[0].options);
    return c;
}

wk_client_t *wk_client_new(const wk_client_conf_t *conf, char *err, size_t errlen)
{
    if (conf->local)
        return s_new_local(conf, err, errlen);
    if (!conf->servers || conf->nservers == 0 || conf->nservers > WK_MAX_SERVERS) {
        snprintf(err, errlen, "need 1..%d servers", WK_MAX_SERVERS);
        return NULL;
    }
    wk_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->conf = *conf;
    uint32_t S = conf->nservers;
    uint32_t cap = 1;
    while (cap < (conf->max_inflight ? conf->max_inflight : 256))
        cap <<= 1;
    c->mask = cap - 1;
    c->next_id = 1;
    c->servers = calloc(S, sizeof *c->servers);
    c->socks = calloc(S, sizeof *c->socks);
    c->items = calloc(S, sizeof *c->items);
    c->hello = calloc(S, sizeof *c->hello);
    c->last_sent = calloc(S, sizeof *c->last_sent);
    c->sigs = calloc((size_t)S * WK_SIG_RING, sizeof *c->sigs);
    c->sig_pos = calloc(S, sizeof *c->sig_pos);
    c->rng = conf->seed * 0x9e3779b97f4a7c15ULL + conf->rank + 1;
    c->nonce = zps_mix64((uint64_t)zps_now_ns() ^ ((uint64_t)getpid() << 32), conf->rank) | 1;
    c->acked = calloc(S, sizeof *c->acked);
    c->retry_at_ms = calloc(S, sizeof *c->retry_at_ms);
    c->warned_ms = calloc(S, sizeof *c->warned_ms);
    for (uint32_t s = 0; c->retry_at_ms && s < S; s++)
        c->retry_at_ms[s] = conf->retry_ms;
    c->reqs = calloc(cap, sizeof *c->reqs);
    c->ctx = zmq_ctx_new();
    if (!c->servers || !c->socks || !c->items || !c->hello || !c->last_sent || !c->reqs ||
        !c->sigs || !c->sig_pos || !c->acked || !c->retry_at_ms || !c->warned_ms || !c->ctx) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (uint32_t i = 0; i < cap; i++) {
        c->reqs[i].off = calloc(S + 1, sizeof(size_t));
        c->reqs[i].waiting = calloc(S, 1);
        c->reqs[i].keep = calloc(S, 1);
        c->reqs[i].sent_ms = calloc(S, sizeof(int64_t));
        c->reqs[i].keep_keys = calloc(S, sizeof(zmq_msg_t));
        c->reqs[i].keep_vals = calloc(S, sizeof(zmq_msg_t));
        if (!c->reqs[i].off || !c->reqs[i].waiting || !c->reqs[i].keep || !c->reqs[i].keep_keys ||
            !c->reqs[i].keep_vals || !c->reqs[i].sent_ms) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    for (uint32_t s = 0; s < S; s++) {
        c->servers[s] = strdup(conf->servers[s]);
        c->socks[s] = zmq_socket(c->ctx, ZMQ_DEALER);
        if (!c->servers[s] || !c->socks[s]) {
            snprintf(err, errlen, "cannot create socket for server %u: %s", s,
                     zmq_strerror(errno));
            goto fail;
        }
        int linger = 0, hwm = 100000, sndtimeo = conf->timeout_ms > 0 ? conf->timeout_ms : 60000;
        zmq_setsockopt(c->socks[s], ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(c->socks[s], ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(c->socks[s], ZMQ_RCVHWM, &hwm, sizeof hwm);
        zmq_setsockopt(c->socks[s], ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
        if (conf->server_public &&
            (zmq_setsockopt(c->socks[s], ZMQ_CURVE_SERVERKEY, conf->server_public, 40) ||
             zmq_setsockopt(c->socks[s], ZMQ_CURVE_PUBLICKEY, conf->curve_public, 40) ||
             zmq_setsockopt(c->socks[s], ZMQ_CURVE_SECRETKEY, conf->curve_secret, 40))) {
            snprintf(err, errlen, "cannot set CURVE keys: %s", zmq_strerror(errno));
            goto fail;
        }
        if (zmq_connect(c->socks[s], c->servers[s]) != 0) {
            snprintf(err, errlen, "server %u: cannot connect to '%s': %s", s, c->servers[s],
                     zmq_strerror(errno));
            goto fail;
        }
        c->items[s].socket = c->socks[s];
        c->items[s].events = ZMQ_POLLIN;
    }
    int rc = s_control(c, RQ_HELLO, UINT32_MAX, NULL, NULL,
                       conf->connect_timeout_ms > 0 ? conf->connect_timeout_ms : 10000);
    if (rc) {
        if (rc == ZPS_ETIMEDOUT)
            snprintf(err, errlen, "cannot reach the servers: %s (is the server running and the "
                     "address right?)", c->err);
        else
            snprintf(err, errlen, "%s", c->err);
        goto fail;
    }
    if (s_check_hello(c, err, errlen))
        goto fail;
    c->err[0] = 0;
    return c;
fail:
    wk_client_destroy(&c);
    return NULL;
}

void wk_client_destroy(wk_client_t **cp)
{
    if (!cp || !*cp)
        return;
    wk_client_t *c = *cp;
    for (uint32_t s = 0; c->socks && s < c->conf.nservers; s++)
        if (c->socks[s])
            zmq_close(c->socks[s]);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    for (uint32_t s = 0; c->servers && s < c->conf.nservers; s++)
        free(c->servers[s]);
    if (c->reqs)
        for (uint32_t i = 0; i <= c->mask; i++) {
            if (c->reqs[i].keep)
                s_req_release(c, &c->reqs[i]);
            free(c->reqs[i].keep);
            free(c->reqs[i].sent_ms);
            free(c->reqs[i].keep_keys);
            free(c->reqs[i].keep_vals);
            free(c->reqs[i].pos);
            free(c->reqs[i].off);
            free(c->reqs[i].waiting);
        }
    free(c->reqs);
    free(c->servers);
    free(c->socks);
    free(c->items);
    free(c->hello);
    free(c->last_sent);
    free(c->sigs);
    free(c->sig_pos);
    free(c->acked);
    free(c->retry_at_ms);
    free(c->warned_ms);
    free(c->vscratch);
    free(c->sscratch);
    free(c->dscratch);
    ps_table_destroy(&c->ltab);
    free(c->owner);
    free(c->kscratch);
    free(c);
    *cp = NULL;
}
