/* wk_cli_recv: the client's receive path (see wk_cli.h).
 *
 * DESIGN
 * wkc_drain takes every message waiting on a server's socket and applies
 * it.  A reply is matched by (server socket, request id) to a ticket that
 * still waits on that server (wkc_req_find, waiting[s]); anything else (a
 * reply to a released ticket, a duplicate) is dropped, except what it says
 * about held pushes.  A pull reply is decoded if compressed, checked
 * (keys, dim, bytes) and written into the caller's output: one memcpy with
 * one server, else scattered to the keys' positions (wk_split_scatter).
 *
 * Pushes live twice: as a ticket (what the caller waits for) and, per
 * server, as a held item in c->retry that outlives the ticket until the
 * server's durable mark covers it.  A PUSH_ACK is first applied to the held
 * items by seq (whatever its ticket), then to its ticket.  Each reply also
 * carries the server's process nonce: a nonce replaced since is a reply
 * from a dead process (ignored); a new nonce means a restart, and every
 * push held for that server is resent at once, oldest first. */
#include "wk_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wk_split.h"
#include "zps_err.h"
#include "zps_time.h"
#include "zps_vcodec.h"

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
void wkc_resend_all(wk_client_t *c, uint32_t s)
{
    size_t n = wk_retry_unacked(c->retry, s);
    wkc_notice(c, "server %u at %s restarted (a new process): resending its %zu held pushes "
               "(unacknowledged, or acknowledged but not yet in a checkpoint), oldest first",
               s, c->servers[s], n);
    for (wk_retry_item_t *it = wk_retry_first_unacked(c->retry, s); it;
         it = wk_retry_next_unacked(c->retry, s, it))
        if (wkc_resend_push(c, s, it) == 0)
            c->rs.restart_resent++;
    /* pulls the dead process owed: ask the new one now, not after the backoff */
    for (uint32_t i = 0; i <= c->mask; i++) {
        wk_req_t *r = &c->reqs[i];
        if (r->kind == RQ_PULL && r->waiting[s] && r->keep[s]) {
            wkc_resend_pull(c, r, s);
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
    if (c->ranges) { /* relays exist only in a replicated job */
        wk_retry_item_t *it = wk_retry_find(c->retry, s, ack->seq);
        if (it && !it->acked)
            wkc_relay_done(c, it);
    }
    if (!wk_retry_ack(c->retry, s, ack->seq))
        c->rs.dup_acks++;
    /* A server that sends no nonce predates durable_seq: its ack is all the
     * client will ever hear, so it counts as durable (the old behaviour).
     * Without retention too. */
    uint64_t durable = (!c->retain || ack->server_nonce == 0) ? ack->seq : ack->durable_seq;
    wk_retry_durable(c->retry, s, durable);
    if (restarted)
        wkc_resend_all(c, s);
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
    if (env->error->code == ZPS_ENOLEASE || env->error->code == ZPS_ESTALE ||
        env->error->code == ZPS_EBUSY)
        return; /* the retry scan sends it again (or a failover drops it) */
    wk_retry_item_t *it = s_held_by_req(c, s, env->request_id);
    if (!it)
        return;
    if (!c->sticky) {
        c->sticky = env->error->code < 0 && env->error->code > -31000 ? env->error->code : ZPS_ESERVER;
        wkc_seterr(c, "server %u at %s refused an acknowledged push when it was resent (seq %llu): %s",
                   s, c->servers[s], (unsigned long long)it->seq, env->error->text);
    }
    wk_retry_drop(c->retry, s, it->seq);
}

/* A pull reply from s: decoded, checked, written to the caller's output. */
static void s_pull_reply(wk_client_t *c, wk_req_t *r, uint32_t s, zps_msg_t *m)
{
    const char *addr = c->servers[s];
    const Zps__Envelope *env = m->env;
    if (env->body_case != ZPS__ENVELOPE__BODY_PULL_REPLY) {
        wkc_req_err(r, ZPS_EPROTO, "server %u at %s: answered a pull with %s", s, addr,
                    zps_msg_type_name(env->type));
        return;
    }
    size_t cnt = !wkc_split_used(c) ? r->n : r->off[s + 1] - r->off[s];
    size_t len;
    const uint8_t *v = zps_msg_bulk(m, 1, &len);
    zps_vcodec_t codec = (zps_vcodec_t)env->pull_reply->value_codec;
    if (codec != ZPS_VC_F32 && env->pull_reply->nkeys == cnt && env->pull_reply->dim == r->dim) {
        size_t vn = cnt * r->dim;
        if (c->dscratch_cap < vn) {
            float *d = realloc(c->dscratch, vn * sizeof *d);
            if (!d) {
                wkc_req_err(r, ZPS_ENOMEM, "out of memory decoding a pull reply");
                return;
            }
            c->dscratch = d;
            c->dscratch_cap = vn;
        }
        if (zps_vc_decode(codec, v, len, vn, c->dscratch) != 0) {
            wkc_req_err(r, ZPS_EPROTO, "server %u at %s: undecodable %s pull reply", s, addr,
                        zps_vc_name(codec));
            return;
        }
        v = (const uint8_t *)c->dscratch;
        len = vn * sizeof(float);
    }
    if (env->pull_reply->nkeys != cnt || env->pull_reply->dim != r->dim ||
        len != cnt * r->dim * sizeof(float)) {
        wkc_req_err(r, ZPS_EPROTO,
                    "server %u at %s: pull reply has %llu keys of dim %u in %zu bytes, "
                    "expected %zu keys of dim %u",
                    s, addr, (unsigned long long)env->pull_reply->nkeys, env->pull_reply->dim,
                    len, cnt, r->dim);
        return;
    }
    if (r->status)
        return;
    if (!wkc_split_used(c))
        memcpy(r->out, v, len);
    else
        wk_split_scatter(v, r->dim, r->pos + r->off[s], cnt, r->out);
}

/* A hello reply from s: what the server says of itself, in c->hello[s]. */
static void s_hello_reply(wk_client_t *c, wk_req_t *r, uint32_t s, const Zps__Envelope *env)
{
    const char *addr = c->servers[s];
    if (env->body_case != ZPS__ENVELOPE__BODY_HELLO_REPLY) {
        wkc_req_err(r, ZPS_EPROTO, "server %u at %s: answered hello with %s", s, addr,
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
}

/* A stats reply from s, into the caller's wk_server_stats_t. */
static void s_stats_reply(wk_client_t *c, wk_req_t *r, uint32_t s, const Zps__Envelope *env)
{
    const char *addr = c->servers[s];
    if (env->body_case != ZPS__ENVELOPE__BODY_STATS_REPLY) {
        wkc_req_err(r, ZPS_EPROTO, "server %u at %s: answered stats with %s", s, addr,
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
}

/* The request a reply names: its ticket, or NULL (released, or a pull's
 * reply to a split made before a failover). */
static wk_req_t *s_req_of(wk_client_t *c, uint64_t request_id)
{
    wk_req_t *r = wkc_req_find(c, request_id & WK_ID_MASK);
    if (r && r->kind == RQ_PULL && (request_id >> WK_GEN_SHIFT) != r->gen)
        return NULL;
    return r;
}

/* A server without a lease (replicated job) answered r: the request stays
 * waiting, due for a resend in 200 ms, until the server has its lease back
 * or the coordinator's table moves its keys elsewhere. */
static void s_on_nolease(wk_client_t *c, wk_req_t *r, uint32_t s)
{
    int64_t now = zps_now_ms(), soon = now - c->retry_at_ms[s] + 200;
    if (r->kind == RQ_PUSH) {
        wk_retry_item_t *it = wk_retry_find(c->retry, s, r->seqs[s]);
        if (it)
            it->sent_ms = soon;
    } else {
        int64_t piv = c->conf.pull_retry_ms > c->retry_at_ms[s] ? c->conf.pull_retry_ms
                                                                 : c->retry_at_ms[s];
        r->sent_ms[s] = now - piv + 200;
    }
}

/* One reply from s: held pushes first, then its ticket, if still waiting. */
static void s_on_reply(wk_client_t *c, uint32_t s, zps_msg_t *m)
{
    const Zps__Envelope *env = m->env;
    int stale = 0;
    if (env->body_case == ZPS__ENVELOPE__BODY_PUSH_ACK && c->retry)
        stale = s_on_push_ack(c, s, env->push_ack);
    if (env->request_id & WK_RELAY_ID) {
        /* a relay's answer: its ack was counted above */
        if (env->body_case == ZPS__ENVELOPE__BODY_ERROR && c->retry)
            s_on_orphan_error(c, s, env);
        return;
    }
    wk_req_t *r = s_req_of(c, env->request_id);
    if (!r || !r->waiting[s]) {
        /* late reply to a released ticket, or a duplicate */
        if (env->body_case == ZPS__ENVELOPE__BODY_ERROR && c->retry)
            s_on_orphan_error(c, s, env);
        return;
    }
    if (env->body_case == ZPS__ENVELOPE__BODY_ERROR &&
        (env->error->code == ZPS_ENOLEASE || env->error->code == ZPS_ESTALE ||
         (env->error->code == ZPS_EBUSY && r->kind == RQ_PUSH)) &&
        c->ranges && c->conf.retry_ms > 0 &&
        (r->kind == RQ_PUSH || (r->kind == RQ_PULL && r->keep[s]))) {
        s_on_nolease(c, r, s);
        return;
    }
    if (env->body_case == ZPS__ENVELOPE__BODY_ERROR && r->kind == RQ_PUSH) {
        wk_retry_item_t *it = wk_retry_find(c->retry, s, r->seqs[s]);
        if (it && env->error->code == ZPS_EKEYCACHE) {
            wkc_resend_push(c, s, it);
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
        wkc_resend_pull(c, r, s);
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
        wkc_req_err(r, code < 0 && code > -31000 ? code : ZPS_ESERVER, "server %u at %s: %s", s,
                    addr, env->error->text);
        return;
    }
    switch (r->kind) {
    case RQ_PULL:
        s_pull_reply(c, r, s, m);
        break;
    case RQ_PUSH:
        if (env->body_case == ZPS__ENVELOPE__BODY_PUSH_ACK) {
            c->acked[s]++;
            c->rs.acked++;
        }
        if (env->body_case != ZPS__ENVELOPE__BODY_PUSH_ACK)
            wkc_req_err(r, ZPS_EPROTO, "server %u at %s: answered a push with %s", s, addr,
                        zps_msg_type_name(env->type));
        break;
    case RQ_HELLO:
        s_hello_reply(c, r, s, env);
        break;
    case RQ_STATS:
        s_stats_reply(c, r, s, env);
        break;
    case RQ_CLOCK:
        if (env->type != ZPS__MSG_TYPE__CLOCK_ACK)
            wkc_req_err(r, ZPS_EPROTO, "server %u at %s: answered clock with %s", s, addr,
                        zps_msg_type_name(env->type));
        break;
    case RQ_SHUTDOWN:
        if (env->type != ZPS__MSG_TYPE__SHUTDOWN_ACK)
            wkc_req_err(r, ZPS_EPROTO, "server %u at %s: answered shutdown with %s", s, addr,
                        zps_msg_type_name(env->type));
        break;
    default: break;
    }
}

/* Receive everything waiting on server s's socket. */
void wkc_drain(wk_client_t *c, uint32_t s)
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
                wk_req_t *r = s_req_of(c, m.env->request_id);
                if (r && r->waiting[s]) {
                    r->waiting[s] = 0;
                    r->pending--;
                    wkc_req_err(r, rc, "server %u at %s: %s", s, c->servers[s], m.reason);
                }
            }
        }
        zps_msg_close(&m);
        if (rc == ZPS_EIO || rc == ZPS_EINTR)
            return;
    }
}
