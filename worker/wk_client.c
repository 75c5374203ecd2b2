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
 * queue is full makes a call fail rather than block.
 *
 * Pushes live twice: as a ticket (what the caller waits for) and, per
 * server, as a held item in c->retry (wk_held_t: the encoded frames, shared
 * with ZeroMQ, and the envelope fields) that outlives the ticket until the
 * server's durable mark covers it.  A PUSH_ACK is first applied to the held
 * items by seq (whatever its ticket), then to its ticket.  Retries,
 * restart resends and probes all resend held items under their original
 * request id, so a ticket still waiting completes and a late answer to a
 * finished one touches only the held item.  Pulls keep their keys frame in
 * the ticket (keep_keys) for a resend. */
#include "wk_client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "zps_optim.h"
#include "zps_shard.h"
#include "wk_retry.h"
#include "zps_codec.h"
#include "zps_err.h"
#include "zps_hash.h"
#include "zps_msg.h"
#include "zps_place.h"
#include "zps_time.h"
#include "zps_vcodec.h"

#define WK_MAX_TABLES 8
#define WK_SIG_RING 64  /* key-list signatures remembered per server */
#define WK_SCAN_MS 50   /* the retry scan runs at most this often */
#define WK_NONCES 4     /* replaced server processes remembered per server */

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
    uint64_t clock;
    uint64_t *seqs;        /* push: per server, the seq of its sub-request */
    uint32_t push_codec_used;  /* the codec of this request's values frame */
    wk_push_meta_t meta;
    uint8_t *keep;         /* pull, per server: 1 keys kept (for a resend) */
    int64_t *sent_ms;      /* pull, per server: last (re)send */
    int64_t first_ms;      /* first send */
    zmq_msg_t *keep_keys;  /* pull: for a resend after a key-cache miss or a timeout */
    char err[320];
} wk_req_t;

/* A push as sent to one server, held in c->retry until acknowledged and
 * durable: its frames (shared with ZeroMQ, not copied) and what its
 * envelope needs, so it can be resent after its ticket is gone. */
typedef struct {
    zmq_msg_t keys, vals;
    uint64_t req_id, nkeys, clock, progress_rows;
    uint32_t table, dim, codec, examples, progress_epoch;
    int tick, mean;
    float lr_scale;        /* the step multiplier when it was first sent */
} wk_held_t;

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
    uint64_t next_id, clock;
    uint64_t *seq_next;     /* per server: last push seq used (seqs are per server) */
    wk_retry_t *retry;      /* pushes held per server (unacked, or not yet durable) */
    int retain;             /* keep acked pushes until durable */
    uint64_t *snonce;       /* per server: its process nonce (0: unknown / old server) */
    uint64_t *old_nonces;   /* per server: WK_NONCES replaced ones */
    int64_t *last_recv_ms;  /* per server: last message received */
    int64_t next_scan_ms;
    wk_client_retry_stats_t rs;
    int sticky;             /* an error that fails every later call */
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
    zps_shard_t *lshard;        /* --local: the servers' work, in process */
    float lr_scale;             /* wk_client_set_lr_scale (1: none) */
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
    c->max_retained_bytes = 256ull << 20;
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

void wk_client_retry_stats(const wk_client_t *c, wk_client_retry_stats_t *out)
{
    *out = c->rs;
    out->retained_bytes = c->retry ? wk_retry_bytes(c->retry) : 0;
    out->retained_peak = c->retry ? wk_retry_peak_bytes(c->retry) : 0;
    out->retained_pushes = 0;
    for (uint32_t s = 0; c->retry && s < c->conf.nservers; s++)
        out->retained_pushes += wk_retry_held(c->retry, s);
}
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

const char *wk_client_job(const wk_client_t *c) { return c->lshard ? c->ljob : c->hello[0].job; }
void wk_client_set_clock(wk_client_t *c, uint64_t clock) { c->clock = clock; }

void wk_client_set_lr_scale(wk_client_t *c, float scale)
{
    c->lr_scale = scale;
}
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
    for (uint32_t s = 0; s < c->conf.nservers; s++) {
        /* a push given up on (timeout): stop retrying it */
        if (r->kind == RQ_PUSH && r->waiting[s] && c->retry)
            wk_retry_drop(c->retry, s, r->seqs[s]);
        if (r->keep[s])
            zmq_msg_close(&r->keep_keys[s]);
        r->keep[s] = 0;
    }
    r->kind = RQ_FREE;
    memset(r->waiting, 0, c->conf.nservers);
    r->pending = 0;
    c->inflight--;
}

/* ---- receive path --------------------------------------------------------- */

static void s_resend_pull(wk_client_t *c, wk_req_t *r, uint32_t s);
static int s_resend_push(wk_client_t *c, uint32_t s, wk_retry_item_t *it);

static void s_notice(wk_client_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_notice(wk_client_t *c, const char *fmt, ...)
{
    if (!c->conf.on_notice)
        return;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    c->conf.on_notice(c->conf.on_wait_ctx, text);
}

/* A reply carrying server s's process nonce.  A nonce seen before on s and
 * since replaced: the reply comes from a dead process (a reply delayed past
 * the restart), return 1 (ignore it).  A new nonce where another was known:
 * s restarted, and may lack anything it acknowledged but had not
 * checkpointed; every held push of s becomes unacknowledged (the caller
 * resends them, oldest first).  Returns 0 otherwise. */
static int s_check_nonce(wk_client_t *c, uint32_t s, uint64_t nonce, int *restarted)
{
    *restarted = 0;
    if (nonce == 0 || nonce == c->snonce[s])
        return 0;
    uint64_t *old = c->old_nonces + (size_t)s * WK_NONCES;
    for (int i = 0; i < WK_NONCES; i++)
        if (old[i] == nonce) {
            c->rs.stale_replies++;
            return 1;
        }
    if (c->snonce[s]) {
        memmove(old + 1, old, (WK_NONCES - 1) * sizeof *old);
        old[0] = c->snonce[s];
        c->rs.restarts++;
        wk_retry_restart(c->retry, s);
        *restarted = 1;
    }
    c->snonce[s] = nonce;
    return 0;
}

/* Resend every unacknowledged push of s, oldest first (after a restart). */
static void s_resend_all(wk_client_t *c, uint32_t s)
{
    size_t n = wk_retry_unacked(c->retry, s);
    s_notice(c, "server %u at %s restarted (a new process): resending its %zu held pushes "
             "(unacknowledged, or acknowledged but not yet in a checkpoint), oldest first",
             s, c->servers[s], n);
    for (wk_retry_item_t *it = wk_retry_first_unacked(c->retry, s); it;
         it = wk_retry_next_unacked(c->retry, s, it))
        if (s_resend_push(c, s, it) == 0)
            c->rs.restart_resent++;
    /* pulls the dead process owed: ask the new one now, not after the backoff */
    for (uint32_t i = 0; i <= c->mask; i++) {
        wk_req_t *r = &c->reqs[i];
        if (r->kind == RQ_PULL && r->waiting[s] && r->keep[s]) {
            s_resend_pull(c, r, s);
            c->rs.pull_retried++;
        }
    }
}

/* Seq-level handling of a PUSH_ACK from s, whether or not its ticket is still
 * waiting.  Returns 1 if the ack is stale (from a replaced server process). */
static int s_on_push_ack(wk_client_t *c, uint32_t s, const Zps__PushAck *ack)
{
    int restarted;
    if (s_check_nonce(c, s, ack->server_nonce, &restarted))
        return 1;
    if (!wk_retry_ack(c->retry, s, ack->seq))
        c->rs.dup_acks++;
    /* A server that sends no nonce predates durable_seq: its ack is all the
     * client will ever hear, so it counts as durable (the old behaviour).
     * Without retention too. */
    uint64_t durable = (!c->retain || ack->server_nonce == 0) ? ack->seq : ack->durable_seq;
    wk_retry_durable(c->retry, s, durable);
    if (restarted)
        s_resend_all(c, s);
    return 0;
}

/* The held push of s sent under request id, or NULL (ERROR replies carry no seq). */
static wk_retry_item_t *s_held_by_req(wk_client_t *c, uint32_t s, uint64_t id)
{
    for (wk_retry_item_t *it = wk_retry_first(c->retry, s); it; it = wk_retry_next(c->retry, s, it))
        if (((wk_held_t *)it->payload)->req_id == id)
            return it;
    return NULL;
}

/* An ERROR from s for a push whose ticket is gone (a resend after a restart,
 * a probe): a refusal beyond the dedup window is retried later; any other
 * refusal loses an acknowledged push, which fails the client. */
static void s_on_orphan_error(wk_client_t *c, uint32_t s, const Zps__Envelope *env)
{
    if (env->error->code == ZPS_ESEQ) {
        c->rs.seq_refusals++;
        return;
    }
    wk_retry_item_t *it = s_held_by_req(c, s, env->request_id);
    if (!it)
        return;
    if (!c->sticky) {
        c->sticky = env->error->code < 0 && env->error->code > -31000 ? env->error->code : ZPS_ESERVER;
        s_seterr(c, "server %u at %s refused an acknowledged push when it was resent (seq %llu): %s",
                 s, c->servers[s], (unsigned long long)it->seq, env->error->text);
    }
    wk_retry_drop(c->retry, s, it->seq);
}

static void s_on_reply(wk_client_t *c, uint32_t s, zps_msg_t *m)
{
    const Zps__Envelope *env = m->env;
    int stale = 0;
    if (env->body_case == ZPS__ENVELOPE__BODY_PUSH_ACK && c->retry)
        stale = s_on_push_ack(c, s, env->push_ack);
    wk_req_t *r = &c->reqs[env->request_id & c->mask];
    if (r->kind == RQ_FREE || r->id != env->request_id || !r->waiting[s]) {
        /* late reply to a released ticket, or a duplicate */
        if (env->body_case == ZPS__ENVELOPE__BODY_ERROR && c->retry)
            s_on_orphan_error(c, s, env);
        return;
    }
    if (env->body_case == ZPS__ENVELOPE__BODY_ERROR && r->kind == RQ_PUSH) {
        wk_retry_item_t *it = wk_retry_find(c->retry, s, r->seqs[s]);
        if (it && env->error->code == ZPS_EKEYCACHE) {
            s_resend_push(c, s, it);
            return;
        }
        if (it && env->error->code == ZPS_ESEQ) {
            c->rs.seq_refusals++; /* beyond the window until older seqs arrive: retried */
            return;
        }
        if (it)
            wk_retry_drop(c->retry, s, it->seq); /* refused: nothing to retry */
    }
    if (env->body_case == ZPS__ENVELOPE__BODY_ERROR && env->error->code == ZPS_EKEYCACHE &&
        r->keep[s]) {
        s_resend_pull(c, r, s);
        return;
    }
    if (stale && r->kind == RQ_PUSH) {
        /* applied by a process that died since: the push stays held (unacked)
         * and its resend to the new process completes the ticket */
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
        if (env->body_case == ZPS__ENVELOPE__BODY_PUSH_ACK) {
            c->acked[s]++;
            c->rs.acked++;
        }
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
        if (h->server_nonce)
            c->snonce[s] = h->server_nonce;
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
            c->last_recv_ms[s] = zps_now_ms();
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

/* The retry scan, at most every WK_SCAN_MS: for each server, every push it
 * has not acknowledged whose last send is older than the server's backoff
 * interval is sent again, oldest (lowest seq) first, then its overdue
 * pulls; the interval doubles (to 8 s) while the server stays silent and
 * starts over with its next reply.  on_wait hears about it. */
static void s_retry(wk_client_t *c)
{
    if (c->conf.retry_ms <= 0)
        return;
    int64_t now = zps_now_ms();
    if (now < c->next_scan_ms)
        return;
    c->next_scan_ms = now + WK_SCAN_MS;
    /* first take in what has arrived: after a caller that did not wait on
     * the client for a while, answers may be queued for overdue requests */
    if (zmq_poll(c->items, (int)c->conf.nservers, 0) > 0) {
        for (uint32_t s = 0; s < c->conf.nservers; s++)
            if (c->items[s].revents & ZMQ_POLLIN)
                s_drain(c, s);
        now = zps_now_ms();
    }
    /* pulls in flight (few), gathered once */
    uint32_t pulls[256], npulls = 0;
    for (uint32_t i = 0; i <= c->mask && npulls < 256; i++)
        if (c->reqs[i].kind == RQ_PULL && c->reqs[i].pending)
            pulls[npulls++] = i;
    int64_t pull_iv = c->conf.pull_retry_ms > 0 ? c->conf.pull_retry_ms : c->conf.retry_ms;
    for (uint32_t s = 0; s < c->conf.nservers; s++) {
        int64_t iv = c->retry_at_ms[s], piv = pull_iv > iv ? pull_iv : iv;
        int64_t oldest = 0;
        for (wk_retry_item_t *it = wk_retry_first_unacked(c->retry, s); it;
             it = wk_retry_next_unacked(c->retry, s, it))
            if (now - it->sent_ms >= iv && (!oldest || it->sent_ms < oldest))
                oldest = it->sent_ms;
        for (uint32_t j = 0; j < npulls; j++) {
            wk_req_t *r = &c->reqs[pulls[j]];
            if (r->waiting[s] && r->keep[s] && now - r->sent_ms[s] >= piv &&
                (!oldest || r->sent_ms[s] < oldest))
                oldest = r->sent_ms[s];
        }
        if (!oldest)
            continue;
        if (c->conf.on_wait && now - c->warned_ms[s] >= 5000) {
            c->warned_ms[s] = now;
            c->conf.on_wait(c->conf.on_wait_ctx, s, c->servers[s], (double)(now - oldest) / 1000.0);
        }
        for (wk_retry_item_t *it = wk_retry_first_unacked(c->retry, s); it;
             it = wk_retry_next_unacked(c->retry, s, it))
            if (now - it->sent_ms >= iv && s_resend_push(c, s, it) == 0)
                c->rs.retried++;
        for (uint32_t j = 0; j < npulls; j++) {
            wk_req_t *r = &c->reqs[pulls[j]];
            if (r->kind == RQ_PULL && r->waiting[s] && r->keep[s] && now - r->sent_ms[s] >= piv) {
                s_resend_pull(c, r, s);
                c->rs.pull_retried++;
            }
        }
        c->retry_at_ms[s] = iv * 2 > 8000 ? 8000 : iv * 2;
    }
}

/* One round: the retry scan, heartbeats, then up to slice_ms for replies.
 * 0, or ZPS_EINTR / ZPS_EIO (c->err says why). */
static int s_pump(wk_client_t *c, long slice_ms)
{
    s_retry(c);
    if (c->conf.retry_ms > 0 && slice_ms > WK_SCAN_MS)
        slice_ms = WK_SCAN_MS;
    if (c->conf.heartbeat_ms > 0) {
        s_heartbeats(c);
        if (slice_ms > c->conf.heartbeat_ms)
            slice_ms = c->conf.heartbeat_ms;
    }
    int rc = zmq_poll(c->items, (int)c->conf.nservers, slice_ms);
    if (rc < 0) {
        if (errno == EINTR) {
            s_seterr(c, "interrupted while waiting for servers");
            return ZPS_EINTR;
        }
        s_seterr(c, "poll failed: %s", zmq_strerror(errno));
        return ZPS_EIO;
    }
    for (uint32_t s = 0; s < c->conf.nservers; s++)
        if (c->items[s].revents & ZMQ_POLLIN)
            s_drain(c, s);
    return 0;
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
    while (r->pending > 0 && !c->sticky) {
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
        int rc = s_pump(c, retrying && left > 250 ? 250 : (long)left);
        if (rc == ZPS_EINTR)
            return rc; /* ticket stays in flight; wait again */
        if (rc) {
            s_req_release(c, r);
            return rc;
        }
    }
    if (c->sticky) {
        s_req_release(c, r);
        return c->sticky;
    }
    int status = r->status;
    if (status)
        snprintf(c->err, sizeof c->err, "%s", r->err);
    s_req_release(c, r);
    return status;
}

/* Past the retention cap: wait until the servers' durable marks release
 * enough held pushes.  A server with held pushes that are all acknowledged
 * is probed by resending its oldest one (a duplicate: acknowledged again,
 * not applied, with its current durable mark), backing off from 200 ms to
 * 2 s; a server that answers nothing for --server-timeout fails the wait. */
static int s_wait_retained(wk_client_t *c)
{
    uint64_t cap = c->conf.max_retained_bytes;
    if (!c->retain || wk_retry_bytes(c->retry) < cap)
        return 0;
    int64_t t0 = zps_now_ms(), warned = t0;
    int64_t timeout = c->conf.server_timeout_ms > 0 ? c->conf.server_timeout_ms : 120000;
    c->rs.cap_waits++;
    s_notice(c, "%.1f MB of pushes held for durability (--max-retained-mb %g): waiting for "
             "the servers' next checkpoint", (double)wk_retry_bytes(c->retry) / 1e6,
             (double)cap / 1048576.0);
    uint32_t S = c->conf.nservers;
    int64_t *probe_at = calloc(S, sizeof *probe_at), *probe_iv = calloc(S, sizeof *probe_iv);
    int64_t *asked = calloc(S, sizeof *asked); /* first unanswered probe */
    int rc = 0;
    if (!probe_at || !probe_iv || !asked) {
        s_seterr(c, "out of memory");
        rc = ZPS_ENOMEM;
    }
    for (uint32_t s = 0; !rc && s < S; s++)
        probe_iv[s] = 200;
    while (!rc && wk_retry_bytes(c->retry) >= cap && wk_retry_bytes(c->retry) > 0) {
        if (c->sticky) {
            rc = c->sticky;
            break;
        }
        int64_t now = zps_now_ms();
        for (uint32_t s = 0; s < S && !rc; s++) {
            if (asked[s] && c->last_recv_ms[s] >= asked[s]) {
                asked[s] = 0; /* answered */
                probe_iv[s] = 200;
            }
            if (asked[s] && now - asked[s] >= timeout) {
                s_seterr(c, "no answer within %lld ms from server %u at %s (waiting for it to "
                         "checkpoint held pushes)", (long long)timeout, s, c->servers[s]);
                rc = ZPS_ETIMEDOUT;
                break;
            }
            if (wk_retry_unacked(c->retry, s) || now < probe_at[s])
                continue; /* pushes in flight bring marks of their own */
            wk_retry_item_t *it = wk_retry_oldest_retained(c->retry, s);
            if (!it)
                continue;
            if (s_resend_push(c, s, it) == 0) {
                c->rs.probes++;
                if (!asked[s])
                    asked[s] = now;
            }
            probe_at[s] = now + probe_iv[s];
            probe_iv[s] = probe_iv[s] * 2 > 2000 ? 2000 : probe_iv[s] * 2;
        }
        if (rc)
            break;
        if (now - warned >= 10000) {
            warned = now;
            s_notice(c, "still waiting for a checkpoint: %.1f MB held for %.0f s",
                     (double)wk_retry_bytes(c->retry) / 1e6, (double)(now - t0) / 1000.0);
        }
        rc = s_pump(c, WK_SCAN_MS);
    }
    c->rs.cap_wait_ms += (uint64_t)(zps_now_ms() - t0);
    free(probe_at);
    free(probe_iv);
    free(asked);
    return rc;
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

/* Envelope of a pull sub-request to one server. */
static void s_env_pull(wk_client_t *c, wk_req_t *r, uint32_t s, Zps__Envelope *env,
                       Zps__Pull *pull, uint64_t sig)
{
    size_t cnt = c->conf.nservers == 1 ? r->n : r->off[s + 1] - r->off[s];
    zps_msg_env(env, ZPS__MSG_TYPE__PULL, c->conf.role, c->conf.rank, r->id);
    zps__pull__init(pull);
    pull->table = r->table;
    pull->nkeys = cnt;
    pull->clock = r->clock;
    pull->key_sig = sig;
    pull->value_codec = c->conf.pull_codec;
    env->body_case = ZPS__ENVELOPE__BODY_PULL;
    env->pull = pull;
}

/* Envelope of a held push (first send or resend) to server s. */
static void s_env_push(wk_client_t *c, uint32_t s, const wk_held_t *h, uint64_t seq,
                       Zps__Envelope *env, Zps__Push *push, uint64_t sig)
{
    zps_msg_env(env, ZPS__MSG_TYPE__PUSH, c->conf.role, c->conf.rank, h->req_id);
    zps__push__init(push);
    push->table = h->table;
    push->nkeys = h->nkeys;
    push->dim = h->dim;
    push->seq = seq;
    push->clock = h->clock;
    push->raw_bytes = h->nkeys * (8 + 4 * (uint64_t)h->dim);
    push->tick = h->tick != 0;
    push->examples = h->examples;
    push->mean = h->mean != 0;
    push->value_codec = h->codec;
    push->key_sig = sig;
    push->client_nonce = c->nonce;
    push->acked = c->acked ? c->acked[s] : 0;
    push->progress_epoch = h->progress_epoch;
    push->progress_rows = h->progress_rows;
    push->lr_scale = h->lr_scale != 1.0f ? h->lr_scale : 0.0f;
    env->body_case = ZPS__ENVELOPE__BODY_PUSH;
    env->push = push;
}

static void s_held_free(void *ctx, void *payload)
{
    (void)ctx;
    wk_held_t *h = payload;
    zmq_msg_close(&h->keys);
    zmq_msg_close(&h->vals);
    free(h);
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
 * values as the server will decode them.  A push is held in c->retry (its
 * frames shared with ZeroMQ) under the server's next seq before it is sent;
 * once held, a failed send is left to the retry scan. */
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
    wk_held_t *h = NULL;
    if (r->kind == RQ_PUSH) {
        h = calloc(1, sizeof *h);
        if (!h) {
            zmq_msg_close(&kmsg);
            zmq_msg_close(vp);
            goto nomem;
        }
        h->req_id = r->id;
        h->nkeys = cnt;
        h->clock = r->clock;
        h->table = r->table;
        h->dim = r->dim;
        h->codec = r->push_codec_used;
        h->examples = r->meta.examples;
        h->mean = r->meta.mean;
        h->tick = r->meta.tick;
        h->progress_epoch = r->meta.progress_epoch;
        h->progress_rows = r->meta.progress_rows;
        h->lr_scale = c->lr_scale;
        zmq_msg_init(&h->keys);
        zmq_msg_copy(&h->keys, &kmsg);
        zmq_msg_init(&h->vals);
        zmq_msg_copy(&h->vals, vp);
        uint64_t seq = c->seq_next[s] + 1;
        size_t bytes = zmq_msg_size(&h->keys) + zmq_msg_size(&h->vals) + sizeof *h;
        if (wk_retry_add(c->retry, s, seq, bytes, zps_now_ms(), h) != 0) {
            s_held_free(NULL, h);
            zmq_msg_close(&kmsg);
            zmq_msg_close(vp);
            goto nomem;
        }
        c->seq_next[s] = seq;
        r->seqs[s] = seq;
        s_env_push(c, s, h, seq, &env, &push, sig);
    } else {
        s_env_pull(c, r, s, &env, &pull, sig);
        if (by_sig || c->conf.retry_ms > 0) {
            /* keep the full keys (shared, not copied) for a resend after a
             * key-cache miss or a timeout */
            zmq_msg_init(&r->keep_keys[s]);
            zmq_msg_copy(&r->keep_keys[s], &kmsg);
            r->keep[s] = 1;
        }
    }
    size_t wire = 0;
    int rc;
    if (by_sig) {
        zmq_msg_t nokeys;
        zmq_msg_init(&nokeys);
        zmq_msg_close(&kmsg);
        rc = zps_msg_send_frames(c->socks[s], &env, &nokeys, vp, &wire);
    } else {
        rc = zps_msg_send_frames(c->socks[s], &env, &kmsg, vp, &wire);
    }
    if (rc && !(h && c->conf.retry_ms > 0)) {
        s_req_err(r, rc == ZPS_EIO ? ZPS_ETIMEDOUT : rc,
                  "server %u at %s: cannot send (%s): is it running?", s, c->servers[s],
                  errno == EAGAIN ? "send queue full" : zmq_strerror(errno));
        if (h)
            wk_retry_drop(c->retry, s, r->seqs[s]);
        return rc;
    }
    /* (a held push that could not be sent now is resent by the retry scan) */
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

/* Send pull r to s again in full (same request id): after a key-cache miss
 * or a timeout. */
static void s_resend_pull(wk_client_t *c, wk_req_t *r, uint32_t s)
{
    Zps__Envelope env;
    Zps__Pull pull;
    s_env_pull(c, r, s, &env, &pull, 0);
    zmq_msg_t k;
    zmq_msg_init(&k);
    zmq_msg_copy(&k, &r->keep_keys[s]);
    size_t wire = 0;
    int rc = zps_msg_send_frames(c->socks[s], &env, &k, NULL, &wire);
    c->sent += wire;
    c->key_cache_resends++;
    r->sent_ms[s] = zps_now_ms();
    if (rc) {
        r->waiting[s] = 0;
        r->pending--;
        s_req_err(r, rc, "server %u at %s: cannot resend a request", s, c->servers[s]);
    }
}

/* Send held push it to s again, keys in full, under its original request id
 * (so a ticket still waiting for it completes).  0, or the send error (the
 * push stays held; the retry scan tries again). */
static int s_resend_push(wk_client_t *c, uint32_t s, wk_retry_item_t *it)
{
    const wk_held_t *h = it->payload;
    Zps__Envelope env;
    Zps__Push push;
    s_env_push(c, s, h, it->seq, &env, &push, 0);
    zmq_msg_t k, v;
    zmq_msg_init(&k);
    zmq_msg_copy(&k, (zmq_msg_t *)&h->keys);
    zmq_msg_init(&v);
    zmq_msg_copy(&v, (zmq_msg_t *)&h->vals);
    size_t wire = 0;
    int rc = zps_msg_send_frames(c->socks[s], &env, &k, &v, &wire);
    c->sent += wire;
    c->key_cache_resends++;
    it->sent_ms = zps_now_ms();
    c->last_sent[s] = it->sent_ms;
    return rc;
}

/* Local mode: the work of a server (zps_shard), in process, at once.  A
 * push the shard refuses fails this and every later call, as a server's
 * error reply does. */
static int s_local(wk_client_t *c, int kind, const uint64_t *keys, const float *grads, size_t n,
                   float *out, float *sent)
{
    if (kind == RQ_PULL) {
        zps_shard_pull(c->lshard, keys, n, out);
        return 0;
    }
    zps_shard_push_t pr;
    int rc = zps_shard_push_begin(c->lshard, keys, n, grads, c->lr_scale, 0.0f, &pr);
    if (!rc)
        rc = zps_shard_push_commit(c->lshard);
    if (rc == ZPS_ENONFINITE)
        s_seterr(c, "the update of key %llu would make a weight or optimizer state non-finite "
                 "(gradient too large?): push rejected, nothing applied",
                 (unsigned long long)keys[pr.bad]);
    else if (rc)
        s_seterr(c, "out of memory for a push of %zu keys: nothing applied", n);
    if (rc) {
        c->sticky = rc;
        return rc;
    }
    if (sent)
        memcpy(sent, grads, n * zps_optim_push_floats(zps_shard_optim(c->lshard)) * sizeof(float));
    return 0;
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
    if (c->sticky)
        return c->sticky;
    int rc = 0;
    if (kind == RQ_PUSH && (rc = s_wait_retained(c)) != 0)
        return rc;
    wk_req_t *r = s_req_new(c, kind);
    if (!r)
        return ZPS_EBUSY;
    uint32_t S = c->conf.nservers, dim = c->tables[table].dim;
    if (kind == RQ_PUSH && strcmp(c->tables[table].optimizer, "norm") == 0)
        dim = 2 * dim + 1; /* --optimizer norm: [g | q | max |x|] per key */
    r->table = table;
    r->dim = dim;
    r->out = out;
    r->n = n;
    r->clock = c->clock;
    if (meta)
        r->meta = *meta;
    else
        memset(&r->meta, 0, sizeof r->meta);
    float *sent = meta ? meta->sent : NULL;
    if (c->lshard) {
        rc = s_local(c, kind, keys, grads, n, out, sent);
        if (rc) {
            s_req_release(c, r);
            return rc;
        }
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
            hello.client_nonce = c->nonce;
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
    if (c->lshard) {
        memset(out, 0, sizeof *out);
        out->keys_stored = zps_table_size(zps_shard_table(c->lshard));
        out->bytes_used = zps_table_bytes(zps_shard_table(c->lshard));
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
    if (c->lshard)
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
    c->lr_scale = 1.0f;
    c->conf = *conf;
    c->conf.nservers = 0;
    snprintf(c->ljob, sizeof c->ljob, "%s", conf->local_job ? conf->local_job : "");
    c->mask = 255;
    c->next_id = 1;
    c->reqs = calloc(c->mask + 1, sizeof *c->reqs);
    c->lshard = zps_shard_new(conf->local, 1 << 20);
    for (uint32_t i = 0; c->reqs && i <= c->mask; i++)
        if (!(c->reqs[i].waiting = calloc(1, 1)) || !(c->reqs[i].keep = calloc(1, 1)) ||
            !(c->reqs[i].off = calloc(2, sizeof(size_t))))
            break;
    if (!c->reqs || !c->lshard || !c->reqs[c->mask].off) {
        snprintf(err, errlen, "out of memory");
        wk_client_destroy(&c);
        return NULL;
    }
    c->ntables = 1;
    const zps_optim_conf_t *lo = zps_shard_optim(c->lshard);
    c->tables[0].dim = lo->dim;
    snprintf(c->tables[0].optimizer, sizeof c->tables[0].optimizer, "%s",
             zps_optim_kind_name(lo->kind));
    zps_optim_describe(lo, c->tables[0].options, sizeof c->tables[0].options);
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
    c->lr_scale = 1.0f;
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
    c->seq_next = calloc(S, sizeof *c->seq_next);
    c->snonce = calloc(S, sizeof *c->snonce);
    c->old_nonces = calloc((size_t)S * WK_NONCES, sizeof *c->old_nonces);
    c->last_recv_ms = calloc(S, sizeof *c->last_recv_ms);
    c->retry = wk_retry_new(S, s_held_free, NULL);
    c->retain = conf->retry_ms > 0 && conf->max_retained_bytes > 0;
    c->retry_at_ms = calloc(S, sizeof *c->retry_at_ms);
    c->warned_ms = calloc(S, sizeof *c->warned_ms);
    for (uint32_t s = 0; c->retry_at_ms && s < S; s++)
        c->retry_at_ms[s] = conf->retry_ms;
    c->reqs = calloc(cap, sizeof *c->reqs);
    c->ctx = zmq_ctx_new();
    if (!c->servers || !c->socks || !c->items || !c->hello || !c->last_sent || !c->reqs ||
        !c->sigs || !c->sig_pos || !c->acked || !c->retry_at_ms || !c->warned_ms || !c->ctx ||
        !c->seq_next || !c->snonce || !c->old_nonces || !c->last_recv_ms || !c->retry) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (uint32_t i = 0; i < cap; i++) {
        c->reqs[i].off = calloc(S + 1, sizeof(size_t));
        c->reqs[i].waiting = calloc(S, 1);
        c->reqs[i].keep = calloc(S, 1);
        c->reqs[i].sent_ms = calloc(S, sizeof(int64_t));
        c->reqs[i].keep_keys = calloc(S, sizeof(zmq_msg_t));
        c->reqs[i].seqs = calloc(S, sizeof(uint64_t));
        if (!c->reqs[i].off || !c->reqs[i].waiting || !c->reqs[i].keep || !c->reqs[i].keep_keys ||
            !c->reqs[i].seqs || !c->reqs[i].sent_ms) {
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
    if (c->reqs)
        for (uint32_t i = 0; i <= c->mask; i++)
            if (c->reqs[i].keep)
                s_req_release(c, &c->reqs[i]);
    wk_retry_destroy(&c->retry);
    for (uint32_t s = 0; c->socks && s < c->conf.nservers; s++)
        if (c->socks[s])
            zmq_close(c->socks[s]);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    for (uint32_t s = 0; c->servers && s < c->conf.nservers; s++)
        free(c->servers[s]);
    if (c->reqs)
        for (uint32_t i = 0; i <= c->mask; i++) {
            free(c->reqs[i].keep);
            free(c->reqs[i].sent_ms);
            free(c->reqs[i].keep_keys);
            free(c->reqs[i].seqs);
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
    free(c->seq_next);
    free(c->snonce);
    free(c->old_nonces);
    free(c->last_recv_ms);
    free(c->retry_at_ms);
    free(c->warned_ms);
    free(c->vscratch);
    free(c->sscratch);
    free(c->dscratch);
    zps_shard_destroy(&c->lshard);
    free(c->owner);
    free(c->kscratch);
    free(c);
    *cp = NULL;
}
