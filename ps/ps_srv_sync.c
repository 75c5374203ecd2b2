/* ps_srv_sync: ssp/bsp on the server (part of ps_server, sharing
 * ps_srv.h): the worker clocks (ps_clock) fed by pushes marked "tick",
 * CLOCK messages and heartbeats; pulls held until the slowest live worker
 * catches up; under bsp, the clock's pushes summed (or example-weighted)
 * into an accumulator and applied once when every live worker has finished
 * the clock. */
#include "ps_srv.h"

/* 1 and *w = its rank if m comes from a worker of the clock (ssp, bsp). */
int psv_worker_of(const ps_server_t *s, const zps_msg_t *m, uint32_t *w)
{
    if (!s->clock || !m->env || m->env->role != ZPS__ROLE__ROLE_WORKER ||
        m->env->rank >= s->conf.num_workers)
        return 0;
    *w = m->env->rank;
    return 1;
}

/* bsp: apply the combined gradient of the finished clock once. */
static void s_bsp_apply(ps_server_t *s)
{
    if (!s->acc || !s->acc_dirty)
        return;
    ps_tab_t *tb = &s->tabs[0];
    float scale = s->acc_mean && s->acc_examples ? 1.0f / (float)s->acc_examples : 1.0f;
    zps_optim_conf_t oc = tb->o;
    if (s->acc_lr_scale > 0)
        oc.lr *= s->acc_lr_scale;
    float g[2 * 1024 + 1]; /* a push has up to 2 dim + 1 floats (zps_optim_push_floats) */
    zps_table_cur_t cursor = ZPS_TABLE_CUR_INIT;
    uint64_t key;
    float *arow;
    size_t rf = zps_optim_row_floats(&tb->o);
    uint64_t skipped = 0, skipped_key = 0;
    /* the accumulator's keys were reserved in the table when they were
     * accumulated (psv_bsp_accumulate), so these upserts do not fail; a key
     * whose combined update would not be finite is left as it was */
    while (zps_table_next(s->acc, &cursor, &key, &arow)) {
        for (uint32_t j = 0; j < zps_optim_push_floats(&tb->o); j++)
            g[j] = arow[j] * scale;
        float *row = zps_table_find(tb->t, key);
        const float *src = row;
        if (!row) {
            zps_optim_init_row(&tb->o, key, s->tmp_row);
            src = s->tmp_row;
        }
        if (!zps_optim_try_apply(&oc, src, s->tmp_out, g)) {
            skipped++;
            skipped_key = key;
            continue;
        }
        if (!row && !(row = zps_table_upsert(tb->t, key, NULL))) {
            zps_error(s->log, "out of memory applying clock %llu", (unsigned long long)s->min_clock);
            break;
        }
        memcpy(row, s->tmp_out, rf * sizeof *row);
    }
    if (skipped)
        zps_log_limited(s->log, LC_NONFINITE, 1000,
                        "clock %llu: the combined update of %llu keys (e.g. key %llu) would not be "
                        "finite; those keys were left unchanged", (unsigned long long)s->min_clock,
                        (unsigned long long)skipped, (unsigned long long)skipped_key);
    zps_table_destroy(&s->acc);
    s->acc_examples = 0;
    s->acc_new_keys = 0;
    s->acc_dirty = 0;
    s->acc_lr_scale = 0;
    s->st.clocks_applied++;
}

/* The slowest worker may have moved: apply bsp clocks, answer held pulls. */
static void s_advance(ps_server_t *s)
{
    uint64_t old = s->min_clock, mn = ps_clock_min(s->clock);
    s->min_clock = mn;
    if (s->conf.consistency == 2 && mn != old)
        s_bsp_apply(s);
    size_t keep = 0;
    for (size_t i = 0; i < s->nheld; i++) {
        zps_msg_t *h = s->held[i].m;
        if (ps_clock_ready(s->clock, h->env->pull->clock)) {
            s->held_bytes -= s->held[i].bytes;
            psv_on_pull(s, h);
            zps_msg_close(h);
            free(h);
        } else {
            s->held[keep++] = s->held[i];
        }
    }
    s->nheld = keep;
}

/* Drop held pulls of a connection that left (by_worker 0), or of a worker
 * dropped from the clock (by_worker 1): nobody waits for their answer (a
 * worker that is alive after all asks again when its request times out). */
void psv_drop_held_if(ps_server_t *s, uint64_t conn, uint32_t worker, int by_worker)
{
    size_t keep = 0, dropped = 0;
    for (size_t i = 0; i < s->nheld; i++) {
        const zps_msg_t *h = s->held[i].m;
        int drop = by_worker ? h->env->role == ZPS__ROLE__ROLE_WORKER && h->env->rank == worker
                             : s->held[i].conn == conn;
        if (drop) {
            s->held_bytes -= s->held[i].bytes;
            zps_msg_close(s->held[i].m);
            free(s->held[i].m);
            dropped++;
        } else {
            s->held[keep++] = s->held[i];
        }
    }
    s->nheld = keep;
    if (dropped)
        zps_log_burst(s->log, ZPS_LOG_INFO, LC_BIND, 20, 10000,
                      "dropped %zu held pull%s of %s %u", dropped, dropped == 1 ? "" : "s",
                      by_worker ? "dropped worker" : "a connection that left, fd", by_worker
                      ? worker : 0);
}

/* A message from the connection bound to a worker: it is alive.  A
 * dropped worker rejoins, fast-forwarded to the slowest live worker so it
 * stalls no one.  (Messages from other connections claiming the rank do
 * not count: psv_handle calls this only for the bound connection.) */
void psv_touch(ps_server_t *s, zps_msg_t *m)
{
    uint32_t w;
    if (!psv_worker_of(s, m, &w))
        return;
    if (ps_clock_heard(s->clock, w, zps_now_ms())) {
        zps_info(s->log, "worker %u at %s rejoined the clock at %llu", w, m->peer,
                 (unsigned long long)ps_clock_finished(s->clock, w));
        s_advance(s);
    }
}

void psv_finish_clock(ps_server_t *s, uint32_t w, uint64_t clock)
{
    ps_clock_finish(s->clock, w, clock);
    s_advance(s);
}

/* Drop workers that have been silent for longer than the heartbeat timeout. */
void psv_check_heartbeats(ps_server_t *s)
{
    if (!s->clock)
        return;
    int64_t now = zps_now_ms();
    if (now - s->last_check_ms < 100)
        return;
    s->last_check_ms = now;
    int changed = 0;
    for (uint32_t i = 0; ps_clock_expire_next(s->clock, now, (int64_t)s->conf.heartbeat_timeout_ms, &i);
         i++) {
        changed = 1;
        s->st.workers_dropped++;
        psv_drop_held_if(s, 0, i, 1);
        zps_warn(s->log, "worker %u silent for %.1f s (clock %llu): dropped from the clock, "
                 "the others go on", i, (double)(now - ps_clock_last_seen(s->clock, i)) / 1000.0,
                 (unsigned long long)ps_clock_finished(s->clock, i));
    }
    if (changed)
        s_advance(s);
}

/* Hold a validated pull until the slowest worker catches up, within the
 * bounds per connection, in all, and in bytes.  0, or ZPS_ELIMIT. */
int psv_hold(ps_server_t *s, zps_msg_t *m)
{
    uint64_t conn = psv_conn_key(s, m);
    size_t mine = 0, bytes = m->wire_bytes + sizeof(zps_msg_t);
    for (size_t i = 0; i < s->nheld; i++)
        mine += s->held[i].conn == conn;
    if (mine >= s->conf.max_held_per_peer || s->nheld >= s->conf.max_held_total ||
        s->held_bytes + bytes > s->conf.max_held_bytes)
        return ZPS_ELIMIT;
    if (s->nheld == s->held_cap) {
        size_t cap = s->held_cap ? 2 * s->held_cap : 16;
        ps_held_t *h = realloc(s->held, cap * sizeof *h);
        if (!h)
            return ZPS_ELIMIT;
        s->held = h;
        s->held_cap = cap;
    }
    zps_msg_t *c = malloc(sizeof *c);
    if (!c)
        return ZPS_ELIMIT;
    memset(c, 0, sizeof *c);
    zmq_msg_init(&c->ident);
    zmq_msg_move(&c->ident, &m->ident);
    c->has_ident = m->has_ident;
    m->has_ident = 0;
    for (int i = 0; i < m->nbulk; i++) {
        zmq_msg_init(&c->bulk[i]);
        zmq_msg_move(&c->bulk[i], &m->bulk[i]);
        zmq_msg_close(&m->bulk[i]);
    }
    c->nbulk = m->nbulk;
    m->nbulk = 0;
    c->env = m->env;
    m->env = NULL;
    c->wire_bytes = m->wire_bytes;
    c->srcfd = m->srcfd;
    memcpy(c->peer, m->peer, sizeof c->peer);
    memcpy(c->user, m->user, sizeof c->user);
    s->held[s->nheld++] = (ps_held_t){c, conn, bytes};
    s->held_bytes += bytes;
    s->st.pull_waits++;
    return 0;
}

/* --exit-when-done: a worker's CLOCK done=1 counts once per rank, and only
 * from the connection bound to that worker rank, of the process that said
 * HELLO as it (its client nonce; under CURVE, psv_speaks_for already
 * checked that the key is worker-R).  When all the
 * job's workers are counted the loop ends after this message (its ack is
 * queued; the socket's linger flushes it) and the server saves and exits 0. */
static void s_count_done(ps_server_t *s, zps_msg_t *m)
{
    uint32_t w = m->env->rank;
    if (!s->done || m->env->role != ZPS__ROLE__ROLE_WORKER || w >= s->conf.num_workers ||
        w >= s->nclients || !s->ranks)
        return;
    uint64_t conn = psv_conn_key(s, m);
    const ps_rank_t *r = &s->ranks[w];
    if (!conn || r->conn != conn || !r->bound_nonce || r->bound_nonce != r->hello_nonce) {
        zps_log_limited(s->log, LC_PERM, 1000, "done from worker %u at %s not counted: that "
                        "process did not say HELLO as worker %u", w, m->peer, w);
        return;
    }
    if (!ps_done_mark(s->done, w))
        return;
    zps_info(s->log, "worker %u at %s is done (%u of %u workers)", w, m->peer,
             ps_done_count(s->done), ps_done_workers(s->done));
    if (ps_done_all(s->done)) {
        zps_info(s->log, "all %u workers are done: stopping (--exit-when-done)",
                 ps_done_workers(s->done));
        s->shutdown = 1;
    }
}

void psv_on_clock(ps_server_t *s, zps_msg_t *m)
{
    uint32_t w;
    if (psv_worker_of(s, m, &w)) {
        psv_finish_clock(s, w, m->env->clock->clock);
        if (m->env->clock->done) {
            ps_clock_done(s->clock, w);
            zps_info(s->log, "worker %u finished at clock %llu", w,
                     (unsigned long long)ps_clock_finished(s->clock, w));
            s_advance(s);
        }
    }
    Zps__Envelope env;
    zps_msg_env(&env, ZPS__MSG_TYPE__CLOCK_ACK, ZPS__ROLE__ROLE_SERVER, s->conf.rank,
                m->env->request_id);
    psv_send(s, m, &env, NULL, 0, NULL, 0);
    if (m->env->clock->done)
        s_count_done(s, m);
}

/* bsp: add a validated push into the clock's accumulator, whole or not at
 * all: pass 1 checks every combined row and counts new keys, pass 2
 * commits (the accumulator is small and hot, a second pass is cheap). */
int psv_bsp_accumulate(ps_server_t *s, zps_msg_t *m, ps_tab_t *tb, size_t n, const float *g,
                       float wgt, float lr_scale)
{
    size_t dim = zps_optim_push_floats(&tb->o), acc_missing = 0, new_main = 0;
    if (!n)
        return 0;
    if (!s->acc) {
        s->acc = zps_table_new((uint32_t)dim, n * 4 < (1u << 20) ? n * 4 : (1u << 20));
        if (!s->acc) {
            psv_reply_error(s, m, ZPS_ENOMEM, "out of memory for the bsp accumulator");
            return ZPS_ENOMEM;
        }
        s->acc_new_keys = 0;
    }
    if (psv_grow_rowp(s, m, n))
        return ZPS_ENOMEM;
    for (size_t i = 0; i < n; i += PS_CHUNK) {
        size_t c = n - i < PS_CHUNK ? n - i : PS_CHUNK;
        zps_table_find_batch(s->acc, s->keys + i, c, s->rowp + i);
        for (size_t j = i; j < i + c; j++) {
            const float *a = s->rowp[j], *gj = psv_grad(s, g, j, dim);
            if (!a) {
                acc_missing++;
                new_main += zps_table_find(tb->t, s->keys[j]) == NULL;
            }
            float chk = 0;
            for (size_t d = 0; d < dim; d++) {
                float v = (a ? a[d] : 0.0f) + wgt * gj[d];
                chk += v - v;
            }
            if (chk != 0.0f) {
                psv_reply_error_key(s, m, ZPS_ENONFINITE, s->keys[j],
                                    "the combined gradient of key %llu would not be finite: push "
                                    "rejected, nothing applied", (unsigned long long)s->keys[j]);
                return ZPS_ENONFINITE;
            }
        }
    }
    if (acc_missing) {
        if (psv_check_limits(s, m, tb->t, new_main, acc_missing))
            return ZPS_ELIMIT;
        if (zps_table_reserve(s->acc, acc_missing) != 0) {
            psv_reply_error(s, m, ZPS_ENOMEM, "out of memory for the bsp accumulator: nothing applied");
            return ZPS_ENOMEM;
        }
    }
    /* looked up again: the reserve and the inserts move the table's entries */
    for (size_t j = 0; j < n; j++) {
        float *row = zps_table_upsert(s->acc, s->keys[j], NULL);
        if (!row) {
            psv_reply_error(s, m, ZPS_ENOMEM, "out of memory for the bsp accumulator");
            return ZPS_ENOMEM;
        }
        const float *gj = psv_grad(s, g, j, dim);
        for (size_t d = 0; d < dim; d++)
            row[d] += wgt * gj[d];
    }
    s->acc_new_keys += new_main;
    s->acc_dirty = 1;
    if (s->acc_lr_scale == 0 || lr_scale < s->acc_lr_scale)
        s->acc_lr_scale = lr_scale; /* the clock's smallest */
    return 0;
}
