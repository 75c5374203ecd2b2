/* wk_cli_send: the client's send path (see wk_cli.h).
 *
 * DESIGN
 * wkc_start checks a request (table, sorted keys, a sticky error, the
 * retention cap), takes a ticket and sends one sub-request per server that
 * owns any of its keys (every server for a push under sync_all): with one
 * server the caller's arrays go out as they are; otherwise wk_split groups
 * the keys by server and gathers each server's keys and gradient rows into
 * scratch arrays kept on the handle (grown, never shrunk).
 *
 * A sub-request is its envelope plus bulk frames built once and shared
 * with ZeroMQ (zmq_msg_init_data, freed by ZeroMQ): the keys as gap
 * varints, a push's values in its codec.  A push is held in c->retry under
 * the server's next seq (wk_held_t: the frames and the envelope's fields)
 * before it is sent, so a failed send is left to the retry scan; a pull
 * keeps its keys frame in the ticket (keep_keys) when it may be resent.
 * Resends reuse the frames (zmq_msg_copy shares them) under the original
 * request id, so a ticket still waiting completes.  Sends use ZMQ_SNDTIMEO,
 * so a dead server whose queue is full makes a call fail rather than block.
 *
 * Key caching: the last WK_SIG_RING key-list signatures sent to each server
 * are remembered (wk_keysig); a repeat goes as its signature with an empty
 * keys frame, and a server that answers ZPS_EKEYCACHE gets the keys again
 * in full. */
#include "wk_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wk_split.h"
#include "zps_codec.h"
#include "zps_err.h"
#include "zps_time.h"
#include "zps_vcodec.h"

static void s_free_buf(void *data, void *hint)
{
    (void)hint;
    free(data);
}

/* Grow ptr to n elements (kept on failure), or return ZPS_ENOMEM. */
#define S_GROW(ptr, n)                                              \
    do {                                                            \
        void *grown_ = realloc((ptr), (n) * sizeof *(ptr));         \
        if (!grown_)                                                \
            return ZPS_ENOMEM;                                      \
        (ptr) = grown_;                                             \
    } while (0)

static int s_grow_scratch(wk_client_t *c, wk_req_t *r, size_t n, size_t npos, size_t nvals)
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
    if (r->pos_cap < npos) {
        S_GROW(r->pos, npos);
        r->pos_cap = npos;
    }
    return 0;
}

/* Envelope of a pull sub-request to one server. */
static void s_env_pull(wk_client_t *c, wk_req_t *r, uint32_t s, Zps__Envelope *env,
                       Zps__Pull *pull, uint64_t sig)
{
    size_t cnt = !wkc_split_used(c) ? r->n : r->off[s + 1] - r->off[s];
    zps_msg_env(env, ZPS__MSG_TYPE__PULL, c->conf.role, c->conf.rank,
                r->id | (uint64_t)r->gen << WK_GEN_SHIFT);
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
    push->table_version = h->table_version;
    push->relay_rank = h->relay_rank;
    push->relay_inc = h->relay_inc;
    push->relay_seq = h->relay_seq;
    push->relay_version = h->relay_version;
    env->body_case = ZPS__ENVELOPE__BODY_PUSH;
    env->push = push;
}

void wkc_held_free(void *ctx, void *payload)
{
    (void)ctx;
    wk_held_t *h = payload;
    zmq_msg_close(&h->keys);
    zmq_msg_close(&h->vals);
    free(h);
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
        by_sig = wk_keysig_seen(c->sigs, s, sig);
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
        h->table_version = c->ranges ? c->ranges->version : 0;
        zmq_msg_init(&h->keys);
        zmq_msg_copy(&h->keys, &kmsg);
        zmq_msg_init(&h->vals);
        zmq_msg_copy(&h->vals, vp);
        uint64_t seq = c->seq_next[s] + 1;
        size_t bytes = zmq_msg_size(&h->keys) + zmq_msg_size(&h->vals) + sizeof *h;
        if (wk_retry_add(c->retry, s, seq, bytes, zps_now_ms(), h) != 0) {
            wkc_held_free(NULL, h);
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
        wkc_req_err(r, rc == ZPS_EIO ? ZPS_ETIMEDOUT : rc,
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
    wkc_req_err(r, ZPS_ENOMEM, "out of memory for a request of %zu keys", cnt);
    return ZPS_ENOMEM;
}

/* Send pull r to s again in full (same request id): after a key-cache miss
 * or a timeout. */
void wkc_resend_pull(wk_client_t *c, wk_req_t *r, uint32_t s)
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
        wkc_req_err(r, rc, "server %u at %s: cannot resend a request", s, c->servers[s]);
    }
}

/* Send held push it to s again, keys in full, under its original request id
 * (so a ticket still waiting for it completes).  0, or the send error (the
 * push stays held; the retry scan tries again). */
int wkc_resend_push(wk_client_t *c, uint32_t s, wk_retry_item_t *it)
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

/* Split request r (its kind, table, dim, n set) by server and send every
 * part.  With a range table a push goes to every replica of each key's
 * range, a pull to its primary; removed servers get nothing. */
static int s_send_parts(wk_client_t *c, wk_req_t *r, const uint64_t *keys, const float *grads,
                        float *sent)
{
    uint32_t S = c->conf.nservers, dim = r->dim;
    size_t n = r->n;
    int push = r->kind == RQ_PUSH, rc;
    if (!wkc_split_used(c))
        return s_send_sub(c, r, 0, keys, n, grads, sent);
    size_t npos = c->ranges && push ? n * (ZPS_MAX_REPLICAS + 1) : n;
    if ((rc = s_grow_scratch(c, r, n, npos, push ? n * dim : 0)) != 0) {
        wkc_seterr(c, "out of memory splitting %zu keys", n);
        wkc_req_err(r, rc, "out of memory splitting %zu keys", n);
        return rc;
    }
    if (c->ranges) {
        size_t lost = wk_split_by_table(keys, n, c->ranges, push, c->owner, r->pos, r->off);
        if (lost) {
            wkc_req_err(r, ZPS_ELOST, "%zu of the request's keys are in key ranges whose every "
                        "replica failed (range table version %llu): the job cannot go on "
                        "without restoring checkpoints", lost,
                        (unsigned long long)c->ranges->version);
            return ZPS_ELOST;
        }
    } else {
        wk_split_by_server(keys, n, S, c->owner, r->pos, r->off);
    }
    rc = 0;
    for (uint32_t s = 0; s < S && !rc; s++) {
        size_t cnt = r->off[s + 1] - r->off[s];
        if (c->dead && c->dead[s])
            continue;
        if (cnt == 0 && !(push && c->conf.sync_all))
            continue;
        const uint32_t *pos = r->pos + r->off[s];
        wk_split_keys(keys, pos, cnt, c->kscratch);
        if (push)
            wk_split_gather(grads, dim, pos, cnt, c->vscratch);
        rc = s_send_sub(c, r, s, c->kscratch, cnt, c->vscratch, sent ? c->sscratch : NULL);
        /* (replicas: each gets its own copy encoded; with a lossy codec
         * the last one's rounding is what sent reports) */
        if (!rc && sent)
            wk_split_scatter(c->sscratch, dim, pos, cnt, sent);
    }
    return rc;
}

void wkc_repull(wk_client_t *c, wk_req_t *r)
{
    for (uint32_t s = 0; s < c->conf.nservers; s++) {
        if (r->keep[s])
            zmq_msg_close(&r->keep_keys[s]);
        r->keep[s] = 0;
        r->waiting[s] = 0;
    }
    r->pending = 0;
    r->gen++;
    if (s_send_parts(c, r, r->keys, NULL, NULL) != 0 && !r->status)
        wkc_req_err(r, ZPS_EIO, "cannot send a pull again after a failover");
}

int wkc_start(wk_client_t *c, int kind, uint32_t table, const uint64_t *keys, const float *grads,
              size_t n, float *out, const wk_push_meta_t *meta, uint64_t *ticket)
{
    if (table >= c->ntables) {
        wkc_seterr(c, "table %u does not exist (servers have %u)", table, c->ntables);
        return ZPS_EINVAL;
    }
    if (n > UINT32_MAX) {
        wkc_seterr(c, "%zu keys in one request: split it", n);
        return ZPS_ETOOBIG;
    }
    if (zps_keys_check_sorted(keys, n) != 0) {
        wkc_seterr(c, "keys must be sorted and unique");
        return ZPS_EINVAL;
    }
    if (c->sticky)
        return c->sticky;
    int rc = 0;
    if (kind == RQ_PUSH && (rc = wkc_wait_retained(c)) != 0)
        return rc;
    wk_req_t *r = wkc_req_new(c, kind);
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
        rc = wkc_local_op(c, kind, keys, grads, n, out, sent);
        if (rc) {
            wkc_req_release(c, r);
            return rc;
        }
        *ticket = r->id;
        return 0;
    }
    if (kind == RQ_PULL && c->ranges) {
        /* kept, to be split again if a server fails before it answers */
        if (r->keys_cap < n) {
            uint64_t *k = realloc(r->keys, (n ? n : 1) * sizeof *k);
            if (!k) {
                wkc_seterr(c, "out of memory for a pull of %zu keys", n);
                wkc_req_release(c, r);
                return ZPS_ENOMEM;
            }
            r->keys = k;
            r->keys_cap = n;
        }
        memcpy(r->keys, keys, n * sizeof *keys);
    }
    rc = s_send_parts(c, r, keys, grads, sent);
    (void)S;
    if (rc) {
        snprintf(c->err, sizeof c->err, "%s", r->err);
        wkc_req_release(c, r);
        return rc;
    }
    *ticket = r->id;
    return 0;
}

/* Send a control message (no bulk frames) to server s for request r. */
int wkc_send_ctl(wk_client_t *c, wk_req_t *r, uint32_t s, Zps__Envelope *env)
{
    size_t wire = 0;
    int rc = zps_msg_send(c->socks[s], NULL, env, NULL, 0, NULL, 0, &wire);
    if (rc) {
        wkc_req_err(r, rc == ZPS_EIO ? ZPS_ETIMEDOUT : rc,
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
