/* ps_srv_req: the request handlers of the server (part of ps_server,
 * sharing ps_srv.h): HELLO, PULL, PUSH, STATS, SHUTDOWN, DUMP.
 *
 * Each request is validated in full (key count and coding, ownership by
 * this shard, value frame, limits) before anything changes; a push is
 * applied whole or not at all through zps_shard's transaction, so an ERROR
 * reply means nothing changed. */
#include "ps_srv.h"

/* Room for nkeys keys in s->keys (the request's key list); ZPS_ENOMEM,
 * answered, when there is none. */
static int s_keys_room(ps_server_t *s, zps_msg_t *m, uint64_t nkeys)
{
    if (s->keys_cap >= nkeys)
        return 0;
    uint64_t *k = realloc(s->keys, nkeys * sizeof *k);
    if (!k) {
        psv_reply_error(s, m, ZPS_ENOMEM, "out of memory for %llu keys", (unsigned long long)nkeys);
        return ZPS_ENOMEM;
    }
    s->keys = k;
    s->keys_cap = nkeys;
    return 0;
}

/* Decode and validate the key frame of a pull or push.  On failure the error
 * has been answered and a non-zero code is returned. */
static int s_take_keys(ps_server_t *s, zps_msg_t *m, uint32_t table, uint64_t nkeys,
                       uint64_t sig)
{
    if (table >= s->conf.ntables) {
        psv_reply_error(s, m, ZPS_EINVAL, "table %u does not exist (server has %u)", table,
                        s->conf.ntables);
        return ZPS_EINVAL;
    }
    if (nkeys > s->conf.max_keys) {
        psv_reply_error(s, m, ZPS_ETOOBIG, "%llu keys in one request, limit is %llu",
                        (unsigned long long)nkeys, (unsigned long long)s->conf.max_keys);
        return ZPS_ETOOBIG;
    }
    size_t len;
    const uint8_t *buf = zps_msg_bulk(m, 0, &len);
    if (sig && len == 0 && nkeys > 0) {
        /* key caching: the client sent only the signature of a list it sent before */
        const uint64_t *cached = ps_keycache_get(s->kc, sig, nkeys);
        if (!cached) {
            s->st.key_cache_misses++;
            psv_reply_error(s, m, ZPS_EKEYCACHE, "key list %016llx is not cached (resend it)",
                            (unsigned long long)sig);
            return ZPS_EKEYCACHE;
        }
        s->st.key_cache_hits++;
        if (s_keys_room(s, m, nkeys))
            return ZPS_ENOMEM;
        memcpy(s->keys, cached, nkeys * sizeof *s->keys);
        return 0; /* was validated when it was cached */
    }
    if (len < nkeys || len > zps_keys_bound(nkeys)) {
        psv_reply_error(s, m, ZPS_EPROTO, "key frame of %zu bytes cannot hold %llu keys", len,
                        (unsigned long long)nkeys);
        return ZPS_EPROTO;
    }
    if (s_keys_room(s, m, nkeys))
        return ZPS_ENOMEM;
    size_t at = 0;
    if (zps_keys_decode(buf, len, nkeys, s->keys, &at) != 0) {
        psv_reply_error(s, m, ZPS_EPROTO, "malformed key frame at byte %zu of %zu", at, len);
        return ZPS_EPROTO;
    }
    if (s->ranges) {
        /* replicated: any replica of a key's range takes its pushes and
         * pulls, its joiner its pushes */
        int push = m->env->body_case == ZPS__ENVELOPE__BODY_PUSH;
        for (uint64_t i = 0; i < nkeys; i++) {
            uint32_t r = zps_range_of(s->keys[i]);
            if (!(push ? m->env->push->relay_rank || /* a relay: psv_join_relay picks */
                             psv_join_accepts(s, r, m->env->push->table_version)
                       : zps_ranges_has(s->ranges, r, s->conf.rank))) {
                /* the client's table is older (this rank's previous
                 * process held it, say): retried, and moved when the
                 * client learns the table */
                psv_reply_error(s, m, ZPS_ESTALE, "key %llu (range %u) is not held by this "
                                "server in range table version %llu: use a newer table",
                                (unsigned long long)s->keys[i], r,
                                (unsigned long long)s->ranges->version);
                return ZPS_ESTALE;
            }
        }
    } else if (s->conf.nservers > 1) {
        for (uint64_t i = 0; i < nkeys; i++) {
            uint32_t owner = zps_place(s->keys[i], s->conf.nservers);
            if (owner != s->conf.rank) {
                psv_reply_error(s, m, ZPS_EINVAL, "key %llu belongs to server %u, not to this one",
                                (unsigned long long)s->keys[i], owner);
                return ZPS_EINVAL;
            }
        }
    }
    if (sig && nkeys) {
        if (zps_keys_sig(s->keys, nkeys) != sig) {
            psv_reply_error(s, m, ZPS_EPROTO, "key list signature %016llx does not match its keys",
                            (unsigned long long)sig);
            return ZPS_EPROTO;
        }
        ps_keycache_put(s->kc, sig, s->keys, nkeys); /* a list over the bound is just not cached */
    }
    return 0;
}

void psv_on_hello(ps_server_t *s, zps_msg_t *m)
{
    Zps__Envelope env;
    Zps__HelloReply body = ZPS__HELLO_REPLY__INIT;
    Zps__TableInfo info[PS_MAX_TABLES], *infop[PS_MAX_TABLES];
    char names[PS_MAX_TABLES][16];
    for (uint32_t i = 0; i < s->conf.ntables; i++) {
        zps__table_info__init(&info[i]);
        info[i].id = i;
        info[i].dim = s->tabs[i].dim;
        snprintf(names[i], sizeof names[i], "%s", zps_optim_kind_name(s->tabs[i].o.kind));
        info[i].optimizer = names[i];
        info[i].options = s->tabs[i].desc;
        infop[i] = &info[i];
    }
    body.server_rank = s->conf.rank;
    body.num_servers = s->conf.nservers; /* (replicated clients go by the table) */
    body.n_tables = s->conf.ntables;
    body.tables = infop;
    body.server_version = ZPS_VERSION;
    body.job = s->conf.job;
    body.server_nonce = s->nonce;
    uint32_t rank = m->env->rank;
    if (m->env->role == ZPS__ROLE__ROLE_WORKER && rank < s->nclients &&
        s->clients[rank].has_progress) {
        body.has_progress = 1;
        body.progress_epoch = s->clients[rank].progress_epoch;
        body.progress_rows = s->clients[rank].progress_rows;
    }
    /* --exit-when-done counts a worker's done only from the process that
     * said HELLO as it (and is bound to the rank, maybe reconnected since) */
    if (m->env->role == ZPS__ROLE__ROLE_WORKER && rank < s->nclients && s->ranks) {
        uint64_t conn = psv_conn_key(s, m);
        if (conn && s->ranks[rank].conn == conn)
            s->ranks[rank].hello_nonce = m->env->hello->client_nonce;
    }
    uint64_t cn = m->env->hello->client_nonce;
    if (cn && rank < s->nclients && s->clients[rank].nonce == cn)
        body.applied_seq = s->clients[rank].win.lwm;
    zps_msg_env(&env, ZPS__MSG_TYPE__HELLO_REPLY, ZPS__ROLE__ROLE_SERVER, s->conf.rank,
                m->env->request_id);
    env.body_case = ZPS__ENVELOPE__BODY_HELLO_REPLY;
    env.hello_reply = &body;
    s->st.hellos++;
    char ver[ZPS_LOG_WIRE_BUF];
    const char *cv = m->env->hello->client_version;
    zps_log_escape(cv, cv ? strlen(cv) : 0, ver, sizeof ver, ZPS_LOG_WIRE_CHARS);
    zps_log_burst(s->log, ZPS_LOG_INFO, LC_HELLO, 100, 10000, "hello from %s/%u at %s (version %s%s%s)",
                  m->env->role == ZPS__ROLE__ROLE_WORKER ? "worker" : "client", rank, m->peer,
                  ver[0] ? ver : "?", m->user[0] ? ", key " : "", m->user);
    psv_send(s, m, &env, NULL, 0, NULL, 0);
}

void psv_on_pull(ps_server_t *s, zps_msg_t *m)
{
    const Zps__Pull *req = m->env->pull;
    /* validate in full first: only a valid pull is held */
    if (s_take_keys(s, m, req->table, req->nkeys, req->key_sig))
        return;
    ps_tab_t *tb = &s->tabs[req->table];
    size_t n = req->nkeys, dim = tb->dim;
    if (req->value_codec > ZPS_VC_INT8) {
        psv_reply_error(s, m, ZPS_EINVAL, "unknown value codec %u", req->value_codec);
        return;
    }
    if ((uint64_t)n * dim * sizeof(float) > s->conf.max_msg_bytes) {
        psv_reply_error(s, m, ZPS_ETOOBIG, "a reply of %zu keys x %zu floats would exceed "
                        "--max-msg-mb (%llu MiB): pull fewer keys at once", n, dim,
                        (unsigned long long)(s->conf.max_msg_bytes >> 20));
        return;
    }
    uint32_t w;
    if (psv_worker_of(s, m, &w)) {
        if (!ps_clock_ready(s->clock, req->clock)) {
            if (psv_hold(s, m) != 0)
                psv_reply_error(s, m, ZPS_ELIMIT, "too many pulls waiting for the slowest worker "
                                "(%zu held; at most %u per connection, %u in all)", s->nheld,
                                s->conf.max_held_per_peer, s->conf.max_held_total);
            return;
        }
        if (s->min_clock != UINT64_MAX && req->clock > s->min_clock + 1 &&
            req->clock - 1 - s->min_clock > s->st.max_staleness)
            s->st.max_staleness = req->clock - 1 - s->min_clock;
    }
    if (psv_reply_room(s, m, n * dim * sizeof(float)))
        return;
    float *vals = n ? malloc(n * dim * sizeof(float)) : NULL;
    if (n && !vals) {
        psv_reply_error(s, m, ZPS_ENOMEM, "out of memory for a reply of %zu keys", n);
        return;
    }
    zps_shard_pull(tb->sh, s->keys, n, vals);
    Zps__Envelope env;
    Zps__PullReply body = ZPS__PULL_REPLY__INIT;
    body.table = req->table;
    body.nkeys = n;
    body.dim = (uint32_t)dim;
    size_t vbytes = n * dim * sizeof(float);
    /* weights that overflowed to inf/NaN go out as f32 (the lossy codecs
     * need finite values); the reply says which codec it used */
    if (req->value_codec != ZPS_VC_F32 && n && zps_vc_all_finite(vals, n * dim)) {
        zps_vcodec_t codec = (zps_vcodec_t)req->value_codec;
        size_t clen = zps_vc_size(codec, n * dim);
        uint8_t *cb = malloc(clen);
        if (!cb) {
            free(vals);
            psv_reply_error(s, m, ZPS_ENOMEM, "out of memory for a reply of %zu keys", n);
            return;
        }
        zps_vc_encode(codec, vals, n * dim, cb, &s->rng);
        free(vals);
        vals = (float *)(void *)cb;
        vbytes = clen;
        body.value_codec = req->value_codec;
    }
    zps_msg_env(&env, ZPS__MSG_TYPE__PULL_REPLY, ZPS__ROLE__ROLE_SERVER, s->conf.rank,
                m->env->request_id);
    env.body_case = ZPS__ENVELOPE__BODY_PULL_REPLY;
    env.pull_reply = &body;
    s->st.pulls++;
    s->st.keys_pulled += n;
    psv_send(s, m, &env, NULL, 0, vals, vbytes);
}

/* A push's values as floats: the frame itself, or decoded into scratch.
 * NULL after an error reply. */
static const float *s_push_values(ps_server_t *s, zps_msg_t *m, const Zps__Push *req, size_t n,
                                  size_t dim)
{
    const float *g = NULL;
    size_t vlen;
    if (req->value_codec != ZPS_VC_F32) {
        const uint8_t *vb = zps_msg_bulk(m, 1, &vlen);
        if (s->fscratch_cap < n * dim) {
            float *f = realloc(s->fscratch, (n * dim > 0 ? n * dim : 1) * sizeof *f);
            if (f) {
                s->fscratch = f;
                s->fscratch_cap = n * dim;
            }
        }
        if (s->fscratch_cap >= n * dim && s->fscratch &&
            zps_vc_decode((zps_vcodec_t)req->value_codec, vb, vlen, n * dim, s->fscratch) == 0)
            g = s->fscratch;
        if (!g)
            psv_reply_error(s, m, ZPS_EPROTO, "value frame of %zu bytes is not %zu values in codec %u",
                            vlen, n * dim, req->value_codec);
        return g;
    }
    g = zps_msg_floats(m, 1, n * dim, &s->fscratch, &s->fscratch_cap);
    if (!g) {
        zps_msg_bulk(m, 1, &vlen);
        psv_reply_error(s, m, ZPS_EPROTO, "value frame of %zu bytes, expected %zu (%zu keys x %zu)",
                        vlen, n * dim * sizeof(float), n, dim);
    }
    return g;
}

/* Gradient row i, clipped (--clip-gradient) into tmp_g if asked. */
const float *psv_grad(ps_server_t *s, const float *g, size_t i, size_t dim)
{
    const float *gi = g + i * dim;
    if (!(s->conf.clip_gradient > 0))
        return gi;
    memcpy(s->tmp_g, gi, dim * sizeof *gi);
    zps_optim_clip(s->tmp_g, dim, s->conf.clip_gradient);
    return s->tmp_g;
}

static size_t s_total_keys(const ps_server_t *s)
{
    size_t n = 0;
    for (uint32_t i = 0; i < s->conf.ntables; i++)
        n += zps_table_size(s->tabs[i].t);
    return n;
}

/* Table bytes after extra more keys in table t (and acc_extra in the bsp
 * accumulator). */
static size_t s_bytes_with(const ps_server_t *s, const zps_table_t *t, size_t extra,
                           size_t acc_extra)
{
    size_t b = 0;
    for (uint32_t i = 0; i < s->conf.ntables; i++) {
        size_t x = s->tabs[i].t == t ? zps_table_bytes_with(t, extra) : zps_table_bytes(s->tabs[i].t);
        if (x == SIZE_MAX)
            return SIZE_MAX;
        b += x;
    }
    if (s->acc) {
        size_t x = zps_table_bytes_with(s->acc, acc_extra);
        b = x == SIZE_MAX ? SIZE_MAX : b + x;
    }
    return b;
}

/* --evict: evict from tb (table 0, its push open) what --max-keys and
 * --max-memory-mb need for new_keys more keys.  The rows freed are reused by
 * those keys, so memory stays where it is.  A push larger than the cap
 * still fails the limit check after. */
void psv_evict_for(ps_server_t *s, ps_tab_t *tb, size_t new_keys)
{
    if (s->conf.limit_keys) {
        size_t have = s_total_keys(s) + s->acc_new_keys;
        if (have + new_keys > s->conf.limit_keys)
            zps_shard_evict(tb->sh, have + new_keys - s->conf.limit_keys);
    }
    if (s->conf.limit_memory_bytes) {
        size_t step = new_keys / 4 + 64;
        for (int i = 0; i < 64 && s_bytes_with(s, tb->t, s->acc_new_keys + new_keys, 0) >
                                      s->conf.limit_memory_bytes; i++)
            if (zps_shard_evict(tb->sh, step) == 0)
                break;
    }
}

/* --max-keys / --max-memory-mb for new_keys more keys in t.  0 or
 * ZPS_ELIMIT (answered). */
int psv_check_limits(ps_server_t *s, zps_msg_t *m, const zps_table_t *t, size_t new_keys,
                     size_t acc_new)
{
    if (s->conf.limit_keys && s_total_keys(s) + s->acc_new_keys + new_keys > s->conf.limit_keys) {
        psv_reply_error(s, m, ZPS_ELIMIT, "push refused whole: it would store %zu new keys, "
                        "over --max-keys %llu (%zu stored)", new_keys,
                        (unsigned long long)s->conf.limit_keys, s_total_keys(s));
        return ZPS_ELIMIT;
    }
    if (s->conf.limit_memory_bytes) {
        size_t b = s_bytes_with(s, t, s->acc_new_keys + new_keys, acc_new);
        if (b > s->conf.limit_memory_bytes) {
            psv_reply_error(s, m, ZPS_ELIMIT, "push refused whole: its %zu new keys would take the "
                            "tables to %.1f MiB, over --max-memory-mb %llu", new_keys,
                            b == SIZE_MAX ? INFINITY : (double)b / 1048576.0,
                            (unsigned long long)(s->conf.limit_memory_bytes >> 20));
            return ZPS_ELIMIT;
        }
    }
    return 0;
}

int psv_grow_rowp(ps_server_t *s, zps_msg_t *m, size_t n)
{
    if (s->rowp_cap >= n)
        return 0;
    float **r = realloc(s->rowp, (n ? n : 1) * sizeof *r);
    if (!r) {
        psv_reply_error(s, m, ZPS_ENOMEM, "out of memory for %zu rows: nothing applied", n);
        return ZPS_ENOMEM;
    }
    s->rowp = r;
    s->rowp_cap = n;
    return 0;
}

/* Apply a validated push to a table, whole or not at all (zps_shard's
 * transaction: every row updated in place with an undo copy, refused if a
 * row would not be finite; then the new keys are checked against the
 * limits, which count every table and the bsp accumulator, before the
 * commit inserts them).  0 or an answered error code. */
static int s_apply_table(ps_server_t *s, zps_msg_t *m, ps_tab_t *tb, size_t n, const float *g,
                         float lr_scale)
{
    zps_shard_push_t pr;
    int rc = zps_shard_push_begin(tb->sh, s->keys, n, g, lr_scale, s->conf.clip_gradient, &pr);
    if (rc == ZPS_ENONFINITE) {
        zps_log_limited(s->log, LC_NONFINITE, 1000, "push from %s: the update of key %llu "
                        "would not be finite: refused whole", m->peer,
                        (unsigned long long)s->keys[pr.bad]);
        psv_reply_error_key(s, m, ZPS_ENONFINITE, s->keys[pr.bad],
                            "the update of key %llu would make a weight or optimizer state "
                            "non-finite (gradient too large?): push rejected, nothing "
                            "applied", (unsigned long long)s->keys[pr.bad]);
        return rc;
    }
    if (rc) {
        psv_reply_error(s, m, ZPS_ENOMEM, "out of memory for a push of %zu keys: nothing applied", n);
        return rc;
    }
    if (pr.new_keys && tb == &s->tabs[0] && s->conf.bound.evict)
        psv_evict_for(s, tb, pr.new_keys); /* room for them, within the push */
    if (pr.new_keys && psv_check_limits(s, m, tb->t, pr.new_keys, 0)) {
        zps_shard_push_abort(tb->sh);
        return ZPS_ELIMIT;
    }
    if ((rc = zps_shard_push_commit(tb->sh)) != 0) {
        psv_reply_error(s, m, ZPS_ENOMEM, "out of memory for %zu new keys: nothing applied",
                        pr.new_keys);
        return rc;
    }
    return 0;
}

/* A push: checked (nonce and seq, binding: see psv_handle), validated in
 * full, deduplicated (ps_dedup: applied exactly once whatever the order and
 * number of copies), applied whole or not at all, and only THEN recorded
 * as applied; acknowledged with the durable low-water mark. */
void psv_on_push(ps_server_t *s, zps_msg_t *m)
{
    const Zps__Push *req = m->env->push;
    uint32_t rank = m->env->rank;
    ps_ckpt_client_t *rec = psv_client_rec(s, rank); /* binding made sure it exists */
    if (!rec) {
        psv_push_rejected(s, NULL);
        psv_reply_error(s, m, ZPS_ENOMEM, "no client record for rank %u", rank);
        return;
    }
    ps_rank_t *rk = &s->ranks[rank];
    if (rec->nonce != req->client_nonce) {
        if (rec->nonce)
            zps_info(s->log, "worker %u is a new process (the previous one was applied up to "
                     "push %llu, all below %llu)", rank, (unsigned long long)rec->win.hwm,
                     (unsigned long long)rec->win.lwm + 1);
        rec->nonce = req->client_nonce;
        ps_dedup_init(&rec->win);
        rec->last_seq = 0;
        rec->applied = 0;
        s->lost[rank].active = 0;
        rk->received = rk->applied = rk->duplicates = rk->rejected = 0;
    }
    rk->received++;
    if (s->ranges && req->table_version > s->ranges->version) {
        /* split by a table this server has not learnt yet: it must not
         * apply it before it knows whom it donates to (ps_srv_join.c) */
        psv_table_refresh(s);
        if (req->table_version > s->ranges->version) {
            psv_push_rejected(s, rk);
            psv_reply_error(s, m, ZPS_ESTALE, "push split by range table version %llu; this "
                            "server has version %llu yet: retry",
                            (unsigned long long)req->table_version,
                            (unsigned long long)s->ranges->version);
            return;
        }
    }
    if (s->ranges && s->join.floor && req->table_version < s->join.floor) {
        /* split before this process joined: its sequence number is of the
         * client's numbering with this rank's previous process, and its
         * keys reach this one through its donors (ps_srv_join.c).  Refused,
         * not acknowledged: an ack would carry a seq of the client's new
         * numbering for this process and could acknowledge a push it never
         * received.  The client drops it when it learns the new table. */
        s->join.dropped_pushes++;
        psv_push_rejected(s, rk);
        psv_reply_error(s, m, ZPS_ESTALE, "push split by range table version %llu, before this "
                        "server process joined at version %llu: use the current table",
                        (unsigned long long)req->table_version,
                        (unsigned long long)s->join.floor);
        return;
    }
    if (s_take_keys(s, m, req->table, req->nkeys, req->key_sig)) {
        psv_push_rejected(s, rk);
        return;
    }
    ps_tab_t *tb = &s->tabs[req->table];
    size_t n = req->nkeys, dim = zps_optim_push_floats(&tb->o); /* norm: + max |x| */
    if (req->dim != dim) {
        psv_push_rejected(s, rk);
        psv_reply_error(s, m, ZPS_EMISMATCH, "push of dim %u to table %u of dim %zu", req->dim,
                        req->table, dim);
        return;
    }
    float lr_scale = req->lr_scale == 0.0f ? 1.0f : req->lr_scale;
    if (!(lr_scale > 0.0f && lr_scale <= 64.0f) ||
        (lr_scale != 1.0f && tb->o.kind == ZPS_OPT_FTRL)) {
        psv_push_rejected(s, rk);
        psv_reply_error(s, m, ZPS_EINVAL, "push with step multiplier %g: it must be in (0, 64], "
                        "and 1 for ftrl (whose step also defines its weights)",
                        (double)req->lr_scale);
        return;
    }
    const float *g = s_push_values(s, m, req, n, dim);
    if (!g) {
        psv_push_rejected(s, rk);
        return;
    }
    for (size_t i = 0; i < n * dim; i++) {
        if (!isfinite(g[i])) {
            psv_push_rejected(s, rk);
            psv_reply_error_key(s, m, ZPS_EINVAL, s->keys[i / dim],
                                "non-finite gradient %g for key %llu: push rejected, "
                                "nothing applied",
                                (double)g[i], (unsigned long long)s->keys[i / dim]);
            return;
        }
    }
    int st = ps_dedup_check(&rec->win, req->seq);
    if (st == ZPS_ESEQ) {
        psv_push_rejected(s, rk);
        psv_reply_error(s, m, ZPS_ESEQ, "push sequence number %llu is outside the window: every "
                        "push up to %llu is applied and at most %u more may be in flight",
                        (unsigned long long)req->seq, (unsigned long long)rec->win.lwm,
                        PS_DEDUP_WINDOW);
        return;
    }
    int duplicate = st == PS_DEDUP_DUP;
    uint32_t w;
    int of_clock = psv_worker_of(s, m, &w);
    int held = 0; /* replicated: the ack waits for a joiner (ps_srv_join.c) */
    if (duplicate) {
        if (s->join.ndon && psv_join_ack_held(s, rank, rec->nonce, req->seq))
            return; /* its acknowledgement comes when the joiner has it */
        s->st.duplicate_pushes++;
        rk->duplicates++;
    } else {
        /* replicated: the keys to apply now (a joining server buffers or
         * skips some: ps_srv_join.c) */
        size_t an = n;
        const float *ag = g;
        int j = 0;
        if (s->ranges && req->relay_rank) {
            /* a relay: only the keys this copy lacks (ps_srv_join.c) */
            j = psv_join_relay(s, req, rank, rec->nonce, &an, (uint32_t)dim, &ag);
            if (!j && an == 0)
                j = 1; /* nothing to apply: recorded and acknowledged */
        }
        if (!j && s->ranges)
            j = psv_join_push(s, m, req, &an, (uint32_t)dim, &ag, lr_scale);
        if (j < 0) {
            psv_push_rejected(s, rk);
            psv_reply_error(s, m, j, "push not taken while this server joins: %s: retry",
                            zps_strerror(j));
            return;
        }
        int rc = j ? 0
                 : of_clock && s->conf.consistency == 2
                     ? psv_bsp_accumulate(s, m, tb, an, ag, req->mean ? (float)req->examples : 1.0f,
                                          lr_scale)
                     : s_apply_table(s, m, tb, an, ag, lr_scale);
        if (rc) {
            psv_push_rejected(s, rk);
            return;
        }
        if (!j && s->join.ndon)
            held = psv_join_forward(s, m, req, rank, rec->nonce, an, (uint32_t)dim, ag, lr_scale);
        if (of_clock && s->conf.consistency == 2) {
            s->acc_mean = req->mean;
            s->acc_examples += req->examples;
        }
        /* applied: only now is the seq recorded */
        ps_dedup_mark(&rec->win, req->seq);
        rec->last_seq = rec->win.hwm;
        rec->applied++;
        rk->applied++;
        s->st.applied_pushes++;
        s->st.push_raw_bytes += req->raw_bytes;
        s->st.push_wire_bytes += m->wire_bytes;
    }
    psv_account_lost(s, rank, req, duplicate);
    if (req->progress_epoch > rec->progress_epoch ||
        (req->progress_epoch == rec->progress_epoch && req->progress_rows > rec->progress_rows)) {
        rec->progress_epoch = req->progress_epoch;
        rec->progress_rows = req->progress_rows;
        rec->has_progress = 1;
    }
    Zps__Envelope env;
    Zps__PushAck body = ZPS__PUSH_ACK__INIT;
    body.table = req->table;
    body.nkeys = n;
    body.seq = req->seq;
    body.duplicate = duplicate;
    body.server_nonce = s->nonce;
    if (!s->conf.checkpoint_dir[0])
        body.durable_seq = rec->win.lwm;
    else if (rk->durable_nonce == rec->nonce)
        body.durable_seq = rk->durable_seq;
    zps_msg_env(&env, ZPS__MSG_TYPE__PUSH_ACK, ZPS__ROLE__ROLE_SERVER, s->conf.rank,
                m->env->request_id);
    env.body_case = ZPS__ENVELOPE__BODY_PUSH_ACK;
    env.push_ack = &body;
    s->st.pushes++;
    s->st.keys_pushed += n;
    if (!held)
        psv_send(s, m, &env, NULL, 0, NULL, 0);
    if (of_clock && req->tick)
        psv_finish_clock(s, w, req->clock);
}

void psv_on_stats(ps_server_t *s, zps_msg_t *m)
{
    ps_server_stats_t st;
    ps_server_get_stats(s, &st);
    Zps__Envelope env;
    Zps__StatsReply body = ZPS__STATS_REPLY__INIT;
    body.keys_stored = st.keys_stored;
    body.bytes_used = st.bytes_used;
    body.pushes = st.pushes;
    body.pulls = st.pulls;
    body.keys_pushed = st.keys_pushed;
    body.keys_pulled = st.keys_pulled;
    body.bytes_in = st.bytes_in;
    body.bytes_out = st.bytes_out;
    body.errors = st.errors;
    body.uptime_ms = st.uptime_ms;
    body.max_staleness = st.max_staleness;
    body.min_clock = st.min_clock;
    body.pull_waits = st.pull_waits;
    body.workers_dropped = st.workers_dropped;
    body.clocks_applied = st.clocks_applied;
    body.push_raw_bytes = st.push_raw_bytes;
    body.push_wire_bytes = st.push_wire_bytes;
    body.key_cache_hits = st.key_cache_hits;
    body.key_cache_misses = st.key_cache_misses;
    body.duplicate_pushes = st.duplicate_pushes;
    body.checkpoints = st.checkpoints;
    body.restored_pushes = st.restored_pushes;
    body.lost_pushes = st.lost_pushes;
    body.applied_pushes = st.applied_pushes;
    body.received_pushes = st.received_pushes;
    body.rejected_pushes = st.rejected_pushes;
    body.held_pulls = st.held_pulls;
    body.server_nonce = st.server_nonce;
    body.maintenance_passes = st.maintenance_passes;
    body.maintenance_max_gap_ms = st.maintenance_max_gap_ms;
    body.dropped_replies = st.dropped_replies;
    body.refused_peers = st.refused_peers;
    body.perm_denied = st.perm_denied;
    body.reply_refused = st.reply_refused;
    body.reply_queued_peak = st.reply_queued_peak;
    body.admitted_keys = st.admitted_keys; /* admission */
    body.admission_rejected_keys = st.admission_rejected_keys;
    body.admission_rejected_pushes = st.admission_rejected_pushes;
    body.expired_keys = st.expired_keys;
    body.evicted_keys = st.evicted_keys;
    body.relays = st.relays;
    body.relay_keys = st.relay_keys;
    body.relays_known = st.relays_known;
    body.split_requests = st.split_requests;
    uint64_t clocks[1024];
    if (s->clock) {
        body.n_worker_clocks = s->conf.num_workers < 1024 ? s->conf.num_workers : 1024;
        for (size_t w = 0; w < body.n_worker_clocks; w++)
            clocks[w] = ps_clock_finished(s->clock, (uint32_t)w);
        body.worker_clocks = clocks;
    }
    /* per client process, at most PS_STATS_CLIENTS (the reply stays small) */
    Zps__ClientStats *cs = NULL, **csp = NULL;
    size_t nc = 0;
    for (uint32_t r = 0; r < s->nclients; r++)
        nc += s->clients[r].nonce != 0;
    if (nc > PS_STATS_CLIENTS)
        nc = PS_STATS_CLIENTS;
    if (nc) {
        cs = calloc(nc, sizeof *cs);
        csp = calloc(nc, sizeof *csp);
    }
    if (cs && csp) {
        size_t k = 0;
        for (uint32_t r = 0; r < s->nclients && k < nc; r++) {
            const ps_ckpt_client_t *c = &s->clients[r];
            const ps_rank_t *rk = &s->ranks[r];
            if (!c->nonce)
                continue;
            zps__client_stats__init(&cs[k]);
            cs[k].rank = r;
            /* a fingerprint, never the nonce itself: in plaintext mode the
             * nonce is what lets a reconnecting process reclaim its rank */
            cs[k].nonce = psv_nonce_fingerprint(c->nonce);
            cs[k].received = rk->received;
            cs[k].applied = rk->applied;
            cs[k].duplicates = rk->duplicates;
            cs[k].rejected = rk->rejected;
            cs[k].applied_seq = c->win.lwm;
            cs[k].durable_seq = !s->conf.checkpoint_dir[0] ? c->win.lwm
                                : rk->durable_nonce == c->nonce ? rk->durable_seq : 0;
            csp[k] = &cs[k];
            k++;
        }
        body.n_clients = k;
        body.clients = csp;
    }
    zps_msg_env(&env, ZPS__MSG_TYPE__STATS_REPLY, ZPS__ROLE__ROLE_SERVER, s->conf.rank,
                m->env->request_id);
    env.body_case = ZPS__ENVELOPE__BODY_STATS_REPLY;
    env.stats_reply = &body;
    psv_send(s, m, &env, NULL, 0, NULL, 0);
    free(cs);
    free(csp);
}

/* SHUTDOWN needs the admin token (and, under CURVE, the admin key, which
 * psv_identity checked). */
void psv_on_shutdown(ps_server_t *s, zps_msg_t *m)
{
    const Zps__Shutdown *sd = m->env->shutdown;
    if (!s->admin_token_len || !psv_token_ok(s->admin_token, s->admin_token_len, sd->admin_token)) {
        zps_log_limited(s->log, LC_SHUTDOWN, 1000, "refused a SHUTDOWN from %s (rank %u): %s",
                        m->peer, m->env->rank,
                        s->admin_token_len ? "wrong or missing admin token"
                                           : "no --admin-token-file, SHUTDOWN is disabled");
        psv_reply_error(s, m, ZPS_EPERM, "%s",
                        s->admin_token_len ? "SHUTDOWN refused: wrong or missing admin token"
                                         : "SHUTDOWN refused: this server was started without "
                                           "--admin-token-file (stop it with SIGTERM)");
        return;
    }
    char why[ZPS_LOG_WIRE_BUF];
    zps_log_escape(sd->reason, sd->reason ? strlen(sd->reason) : 0, why, sizeof why,
                   ZPS_LOG_WIRE_CHARS);
    zps_info(s->log, "shutdown requested by %s (rank %u): %s", m->peer, m->env->rank,
             why[0] ? why : "no reason given");
    Zps__Envelope env;
    zps_msg_env(&env, ZPS__MSG_TYPE__SHUTDOWN_ACK, ZPS__ROLE__ROLE_SERVER, s->conf.rank,
                m->env->request_id);
    psv_send(s, m, &env, NULL, 0, NULL, 0);
    s->shutdown = 1;
}

/* DUMP: one page of a table (ps_dump.c) */
void psv_on_dump(ps_server_t *s, zps_msg_t *m)
{
    const Zps__Dump *req = m->env->dump;
    if (req->table >= s->conf.ntables) {
        psv_reply_error(s, m, ZPS_EINVAL, "table %u does not exist (server has %u)", req->table,
                        s->conf.ntables);
        return;
    }
    ps_tab_t *tb = &s->tabs[req->table];
    ps_dump_page_t pg;
    if (ps_dump_page(tb->t, &tb->o, req->cursor, req->max_keys, &pg) != 0) {
        psv_reply_error(s, m, ZPS_ENOMEM, "out of memory for a dump page");
        return;
    }
    Zps__Envelope env;
    Zps__DumpReply body;
    ps_dump_reply(&pg, req->table, tb->dim, zps_table_size(tb->t), s->conf.rank,
                  m->env->request_id, &env, &body);
    psv_send(s, m, &env, pg.keys, pg.keys_len, pg.vals, pg.vals_len);
}
