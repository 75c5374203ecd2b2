/* ps_srv_join: joining a replicated job (part of ps_server, sharing
 * ps_srv.h).  docs/architecture.md, "Joining", says why it is correct.
 *
 * DESIGN
 * The coordinator starts a join by publishing table version C (the cut)
 * in which some ranges have a joiner J and a donor D (a replica).  From
 * then on a client that splits a push by a table of version >= C sends
 * those ranges' keys to J as well (Push.table_version says which table a
 * push was split by).  Every push reaches J exactly once by one of three
 * roads:
 *   1. split by a table older than C and applied by D before D learnt C:
 *      it is in D's snapshot.  D forks the moment it learns C (before it
 *      can apply any push of version >= C: a server refuses pushes newer
 *      than its table with ZPS_ESTALE until it has learnt it), and the
 *      child streams the ranges' rows to J (SNAP pages, one in flight,
 *      throttled to --join-rate-mb) from the copy-on-write image;
 *   2. split by a table older than C and applied by D after that: D
 *      forwards its part in those ranges to J (FORWARD) and acknowledges
 *      the client only once J has acknowledged the forward, so a push the
 *      client saw acknowledged is at J even if D dies next;
 *   3. split by a table of version >= C: the client sends it to J itself.
 * J buffers what comes by roads 2 and 3 until every donor's last page is
 * in, then applies the buffer in arrival order and from then on applies
 * as it comes; it reports the cut in its beats (Beat.joined) and the
 * coordinator makes it a replica.  Forwards are deduplicated per (donor,
 * donor process, seq) with a ps_dedup window, clients' pushes by the usual
 * per-client window; snapshot pages are counted per donor.  D keeps
 * forwarding pushes split by tables older than C after the join completed
 * (late retries).  If J is removed, D sends the acknowledgements it held;
 * if D is removed mid-join, the coordinator removes J too, which then exits
 * (a removed server's data is stale) and a supervisor starts it fresh.
 *
 * A joiner holds nothing but the ranges it joins (the coordinator gives
 * joins to servers that are not members), so every key of a push it gets
 * before its copy is complete is buffered whole.
 *
 * Relays (docs/architecture.md, "Relays").  If D dies before J has
 * acknowledged a forward, the client, which never had that push
 * acknowledged by D, relays D's part to J (Push.relay_*).  J applies a
 * relay's keys only in ranges it joined from that very D (jdonor, jdinc)
 * after the part's table (rfloor), and only if its copy lacks the push:
 * per (donor process, client process) it keeps a window (owin) of the
 * client's pushes to D that its copy holds, D's own windows as of the fork
 * (Snap.windows) plus every forward (Forward.client_*). */
#include "ps_srv.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#define PSJ_RESEND_MS 500
#define PSJ_PAGE_KEYS 65536u
#define PSJ_PAGE_ACK_MS 500
#define PSJ_PAGE_TRIES 60
/* Relay records kept at most (540 bytes each: per donor process and client
 * process; past it the oldest goes, and a relay of its pushes may then be
 * applied twice) */
#define PSJ_OWIN_MAX 16384
/* A completed join's record (it forwards late pushes split before the
 * cut) is kept this long after its completion and its last forward: a
 * client gives up on a push after --server-timeout (120 s by default), so
 * none comes later; records are few (PSJ_MAX_DONATES) and every join on
 * this donor needs one */
#define PSJ_DONATE_KEEP_MS 600000

/* The snapshot: a forked child streams the donated ranges' rows from its
 * copy-on-write image.  A sanitizer build copies them at the cut instead
 * and streams the copy from a thread: a child forked from this
 * multithreaded process can deadlock in GCC 12's libasan allocator (see
 * PS_CKPT_FORK in ps_srv_exact.c). */
#if defined(__SANITIZE_ADDRESS__)
#define PSJ_SNAP_FORK 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PSJ_SNAP_FORK 0
#endif
#endif
#ifndef PSJ_SNAP_FORK
#define PSJ_SNAP_FORK 1
#endif

/* What the snapshot sender needs, copied (the donor's join state moves
 * while it runs): per table either the live table (the forked child's
 * image) or a copy of the donated rows (the thread). */
typedef struct psj_snap {
    const ps_server_t *s;     /* only conf, nonce and log are read */
    uint32_t joiner;
    uint64_t cut;
    char endpoint[256];
    uint8_t mask[ZPS_RANGES / 8];
    void *ctx;
    uint32_t ntables;
    zps_table_t *live[PS_MAX_TABLES];
    uint64_t *ckeys[PS_MAX_TABLES];
    float *crows[PS_MAX_TABLES];
    size_t cn[PS_MAX_TABLES];
    uint32_t rf[PS_MAX_TABLES];
    uint8_t *wins;            /* the donor's client windows at the fork (last page) */
    size_t wins_len;
    unsigned char *state;     /* table 0's shard state at the fork (last page) */
    size_t state_len;
    char storage[128];        /* zps_shard_storage of table 0 (every page) */
    uint32_t inc;             /* the donor's incarnation */
    pthread_t tid;
    atomic_int stop, done;
    int status;
} psj_snap_t;

static int s_snap_thread_end(psj_snap_t *p, int stop);

static int s_in_mask(const uint8_t *mask, uint32_t r)
{
    return mask[r >> 3] >> (r & 7) & 1;
}

/* Room for one more element in array *a (*cap of them, n used), doubling
 * from `first`.  0 or ZPS_ENOMEM. */
static int s_room(void **a, size_t *cap, size_t n, size_t elem, size_t first)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? 2 * *cap : first;
    void *p = realloc(*a, c * elem);
    if (!p)
        return ZPS_ENOMEM;
    *a = p;
    *cap = c;
    return 0;
}

/* ---- as a donor ------------------------------------------------------------ */

/* Send every acknowledgement a finished (or dropped) forward held. */
static void s_release_ack(ps_server_t *s, psj_ack_t *a)
{
    if (!a || --a->waiting > 0)
        return;
    Zps__Envelope env;
    Zps__PushAck body = ZPS__PUSH_ACK__INIT;
    body.table = a->table;
    body.nkeys = a->nkeys;
    body.seq = a->seq;
    body.server_nonce = s->nonce;
    ps_ckpt_client_t *rec = psv_client_rec(s, a->rank);
    body.durable_seq = rec && rec->nonce == a->nonce ? rec->win.lwm : 0;
    zps_msg_env(&env, ZPS__MSG_TYPE__PUSH_ACK, ZPS__ROLE__ROLE_SERVER, s->conf.rank, a->request_id);
    env.body_case = ZPS__ENVELOPE__BODY_PUSH_ACK;
    env.push_ack = &body;
    zps_msg_t fake;
    memset(&fake, 0, sizeof fake);
    zmq_msg_init(&fake.ident);
    zmq_msg_copy(&fake.ident, &a->ident);
    fake.has_ident = 1;
    fake.srcfd = -1;
    snprintf(fake.peer, sizeof fake.peer, "%s", a->peer);
    psv_send(s, &fake, &env, NULL, 0, NULL, 0);
    zmq_msg_close(&fake.ident);
    zmq_msg_close(&a->ident);
    free(a);
}

static void s_fwd_free(ps_server_t *s, psj_fwd_t *f)
{
    zmq_msg_close(&f->keys);
    zmq_msg_close(&f->vals);
    s_release_ack(s, f->ack);
    f->ack = NULL;
}

static void s_donate_drop(ps_server_t *s, psj_donate_t *d)
{
    for (size_t i = 0; i < d->nfwd; i++)
        s_fwd_free(s, &d->fwd[i]);
    free(d->fwd);
    if (d->sock)
        zmq_close(d->sock);
    if (d->snap_pid > 0) {
        kill(d->snap_pid, SIGKILL);
        waitpid(d->snap_pid, NULL, 0);
    }
    if (d->snap_thread)
        s_snap_thread_end(d->snap_thread, 1);
    memset(d, 0, sizeof *d);
}

static void s_send_fwd(ps_server_t *s, psj_donate_t *d, psj_fwd_t *f)
{
    Zps__Envelope env;
    Zps__Forward fw = ZPS__FORWARD__INIT;
    zps_msg_env(&env, ZPS__MSG_TYPE__FORWARD, ZPS__ROLE__ROLE_SERVER, s->conf.rank, f->seq);
    fw.table = f->table;
    fw.nkeys = f->nkeys;
    fw.dim = f->dim;
    fw.seq = f->seq;
    fw.donor_nonce = s->nonce;
    fw.cut = d->cut;
    fw.lr_scale = f->lr_scale;
    fw.examples = f->examples;
    fw.mean = f->mean != 0;
    fw.client_rank = f->client_rank;
    fw.client_nonce = f->client_nonce;
    fw.client_seq = f->client_seq;
    fw.donor_inc = s->ranges ? s->ranges->inc[s->conf.rank] : 0;
    env.body_case = ZPS__ENVELOPE__BODY_FORWARD;
    env.forward = &fw;
    zmq_msg_t k, v;
    zmq_msg_init(&k);
    zmq_msg_copy(&k, &f->keys);
    zmq_msg_init(&v);
    zmq_msg_copy(&v, &f->vals);
    size_t wire = 0;
    zps_msg_send_frames(d->sock, &env, &k, &v, &wire);
    f->sent_ms = zps_now_ms();
}

/* The next donated row of table t: from the live table (cursor) or the
 * copy (cursor->pos as an index). */
static int s_snap_next(const psj_snap_t *p, uint32_t t, zps_table_cur_t *cursor, uint64_t *key,
                       const float **row)
{
    if (p->live[t]) {
        float *r;
        while (zps_table_next(p->live[t], cursor, key, &r))
            if (s_in_mask(p->mask, zps_range_of(*key))) {
                *row = r;
                return 1;
            }
        return 0;
    }
    if (cursor->pos >= p->cn[t])
        return 0;
    *key = p->ckeys[t][cursor->pos];
    *row = p->crows[t] + cursor->pos * p->rf[t];
    cursor->pos++;
    return 1;
}

/* The envelope and the fields every page of this snapshot carries */
static void s_snap_head(const psj_snap_t *p, Zps__Envelope *env, Zps__Snap *sp, uint64_t page,
                        uint32_t rf)
{
    zps_msg_env(env, ZPS__MSG_TYPE__SNAP, ZPS__ROLE__ROLE_SERVER, p->s->conf.rank, page);
    sp->row_floats = rf;
    sp->cut = p->cut;
    sp->page = page;
    sp->donor_nonce = p->s->nonce;
    sp->donor_inc = p->inc;
    sp->storage = (char *)p->storage;
    env->body_case = ZPS__ENVELOPE__BODY_SNAP;
    env->snap = sp;
}

/* Send one snapshot page (env, then the two frames) until the joiner
 * acknowledges it: 1, or 0 (never acknowledged, or stopped). */
static int s_snap_page(psj_snap_t *p, void *sock, Zps__Envelope *env, const void *kb, size_t klen,
                       const void *vb, size_t vlen)
{
    const uint64_t page = env->snap->page;
    int acked = 0;
    for (int tries = 0; tries < PSJ_PAGE_TRIES && !acked && !atomic_load(&p->stop); tries++) {
        zmq_msg_t k, v;
        zmq_msg_init_size(&k, klen);
        memcpy(zmq_msg_data(&k), kb, klen);
        zmq_msg_init_size(&v, vlen);
        memcpy(zmq_msg_data(&v), vb, vlen);
        size_t wire = 0;
        zps_msg_send_frames(sock, env, &k, &v, &wire);
        int64_t until = zps_now_ms() + PSJ_PAGE_ACK_MS;
        while (!acked && zps_now_ms() < until && !atomic_load(&p->stop)) {
            zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
            if (zmq_poll(&it, 1, 100) <= 0)
                continue;
            zps_msg_t m;
            if (zps_msg_recv(sock, 0, &m, 0) == 0 &&
                m.env->body_case == ZPS__ENVELOPE__BODY_SNAP_ACK &&
                m.env->snap_ack->cut == p->cut && m.env->snap_ack->page == page)
                acked = 1;
            zps_msg_close(&m);
        }
    }
    return acked;
}

/* Stream the donated rows to the joiner, page by page, one in flight,
 * throttled.  0, or 2 (no socket), 3 (no memory), 4 (a page never
 * acknowledged), 5 (stopped). */
static int s_snap_send(psj_snap_t *p)
{
    const ps_server_t *s = p->s;
    void *sock = p->ctx ? zmq_socket(p->ctx, ZMQ_DEALER) : NULL;
    int zero = 0, rc = 0;
    if (!sock || zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero) ||
        zmq_connect(sock, p->endpoint) != 0) {
        if (sock)
            zmq_close(sock);
        return 2;
    }
    double rate = s->conf.join_rate_mb > 0 ? s->conf.join_rate_mb * 1048576.0 : 0;
    int64_t t0 = zps_now_ms();
    uint64_t page = 0, keys_sent = 0, bytes = 0;
    if (p->state_len) { /* the shard state first: a page of its own, no rows */
        Zps__Envelope env;
        Zps__Snap sp = ZPS__SNAP__INIT;
        s_snap_head(p, &env, &sp, ++page, p->rf[0]);
        sp.state_page = 1;
        if (!s_snap_page(p, sock, &env, "", 0, p->state, p->state_len))
            rc = atomic_load(&p->stop) ? 5 : 4;
    }
    for (uint32_t t = 0; t < p->ntables && !rc; t++) {
        uint32_t rf = p->rf[t];
        zps_table_cur_t cursor = ZPS_TABLE_CUR_INIT;
        int more = 1;
        uint64_t *keys = malloc(PSJ_PAGE_KEYS * sizeof *keys);
        float *rows = malloc((size_t)PSJ_PAGE_KEYS * rf * sizeof *rows);
        if (!keys || !rows)
            rc = 3;
        while (more && !rc) {
            size_t n = 0;
            uint64_t key;
            const float *row;
            while (n < PSJ_PAGE_KEYS && (more = s_snap_next(p, t, &cursor, &key, &row)) != 0) {
                keys[n] = key;
                memcpy(rows + n * rf, row, rf * sizeof *rows);
                n++;
            }
            int last = !more && t + 1 == p->ntables;
            if (n == 0 && !last)
                break;
            page++;
            Zps__Envelope env;
            Zps__Snap sp = ZPS__SNAP__INIT;
            s_snap_head(p, &env, &sp, page, rf);
            sp.table = t;
            sp.nkeys = n;
            sp.last = last;
            if (last && p->wins_len) {
                sp.windows.data = p->wins;
                sp.windows.len = p->wins_len;
            }
            int acked = s_snap_page(p, sock, &env, keys, n * sizeof *keys, rows,
                                    n * rf * sizeof *rows);
            if (atomic_load(&p->stop))
                rc = 5;
            else if (!acked)
                rc = 4;
            if (rc)
                break;
            keys_sent += n;
            bytes += n * (8 + (uint64_t)rf * 4);
            if (rate > 0) {
                /* throttle: no faster than --join-rate-mb on average */
                double due = (double)bytes / rate * 1000.0, took = (double)(zps_now_ms() - t0);
                if (due > took) {
                    struct timespec ts = {(time_t)((due - took) / 1000),
                                          (long)(fmod(due - took, 1000.0) * 1e6)};
                    nanosleep(&ts, NULL);
                }
            }
        }
        free(keys);
        free(rows);
    }
    if (!rc)
        zps_info(s->log, "join of server %u at version %llu: sent %llu keys (%.1f MB) in %lld ms "
                 "from the snapshot", p->joiner, (unsigned long long)p->cut,
                 (unsigned long long)keys_sent, (double)bytes / 1e6,
                 (long long)(zps_now_ms() - t0));
    zmq_close(sock);
    return rc;
}

/* The snapshot child: the copy-on-write image.  Never returns. */
static void s_snap_child(psj_snap_t *p)
{
    p->ctx = zmq_ctx_new();
    int rc = s_snap_send(p);
    zmq_ctx_term(p->ctx);
    _exit(rc);
}

static void *s_snap_thread(void *arg)
{
    psj_snap_t *p = arg;
    p->status = s_snap_send(p);
    atomic_store(&p->done, 1);
    return NULL;
}

static void s_snap_free(psj_snap_t *p)
{
    for (uint32_t t = 0; t < p->ntables; t++) {
        free(p->ckeys[t]);
        free(p->crows[t]);
    }
    free(p->wins);
    free(p->state);
    free(p);
}

/* ---- relays ------------------------------------------------------------------ */

/* The join scratch (kbuf, gbuf) for n keys of dim floats.  0 or ZPS_ENOMEM. */
static int s_scratch(ps_server_t *s, size_t n, uint32_t dim)
{
    if (n <= s->join.kbuf_cap && n * dim <= s->join.gbuf_cap)
        return 0;
    float *g2 = realloc(s->join.gbuf, (n * dim > 0 ? n * dim : 1) * sizeof *g2);
    if (g2) {
        s->join.gbuf = g2;
        s->join.gbuf_cap = n * dim;
    }
    uint64_t *k2 = realloc(s->join.kbuf, (n ? n : 1) * sizeof *k2);
    if (k2) {
        s->join.kbuf = k2;
        s->join.kbuf_cap = n;
    }
    return g2 && k2 ? 0 : ZPS_ENOMEM;
}

/* A client window on the wire (Snap.windows): rank u32, nonce u64, lwm u64,
 * hwm u64, then PS_DEDUP_WORDS u64 bits, little-endian (this host's order:
 * zps runs on little-endian hosts, as the checkpoint format says). */
#define PSJ_WIN_BYTES (4 + 8 * 3 + 8 * PS_DEDUP_WORDS)

/* This server's exactly-once windows, per client process, encoded (malloc'd;
 * NULL and 0 when it has none or no memory). */
static uint8_t *s_wins_encode(const ps_server_t *s, size_t *len)
{
    size_t n = 0;
    for (uint32_t r = 0; r < s->nclients; r++)
        n += s->clients[r].nonce != 0;
    *len = 0;
    uint8_t *b = n ? malloc(n * PSJ_WIN_BYTES) : NULL;
    if (!b)
        return NULL;
    uint8_t *o = b;
    for (uint32_t r = 0; r < s->nclients; r++) {
        const ps_ckpt_client_t *c = &s->clients[r];
        if (!c->nonce)
            continue;
        memcpy(o, &r, 4);
        memcpy(o + 4, &c->nonce, 8);
        memcpy(o + 12, &c->win.lwm, 8);
        memcpy(o + 20, &c->win.hwm, 8);
        memcpy(o + 28, c->win.bits, 8 * PS_DEDUP_WORDS);
        o += PSJ_WIN_BYTES;
    }
    *len = n * PSJ_WIN_BYTES;
    return b;
}

/* The record of client (rank, nonce)'s pushes to server origin (incarnation
 * inc) this copy holds; created (empty) if `create`; NULL if absent or no
 * memory.  A client process that is new replaces the rank's record. */
static ps_dedup_win_t *s_owin(ps_server_t *s, uint32_t origin, uint32_t inc, uint32_t client,
                              uint64_t nonce, int create)
{
    psj_owin_t *o = NULL;
    for (size_t i = 0; i < s->join.nowin && !o; i++)
        if (s->join.owin[i].origin == origin && s->join.owin[i].inc == inc &&
            s->join.owin[i].client == client)
            o = &s->join.owin[i];
    if (o && o->nonce == nonce)
        return &o->win;
    if (!create)
        return NULL;
    if (!o && s->join.nowin == PSJ_OWIN_MAX) {
        /* full (a hostile peer, or a very long job): the oldest goes */
        memmove(s->join.owin, s->join.owin + 1, (s->join.nowin - 1) * sizeof *s->join.owin);
        s->join.nowin--;
    }
    if (!o) {
        if (s_room((void **)&s->join.owin, &s->join.owin_cap, s->join.nowin,
                   sizeof *s->join.owin, 16))
            return NULL;
        o = &s->join.owin[s->join.nowin++];
    }
    o->origin = origin;
    o->inc = inc;
    o->client = client;
    o->nonce = nonce;
    ps_dedup_init(&o->win);
    return &o->win;
}

/* The donor's windows at the fork (its snapshot's last page). */
static void s_wins_adopt(ps_server_t *s, uint32_t donor, uint32_t inc, const uint8_t *b,
                         size_t len)
{
    if (len % PSJ_WIN_BYTES) {
        zps_warn(s->log, "join: server %u's snapshot windows are %zu bytes, not a whole "
                 "number of records: ignored (a relay of its pushes may be applied twice)",
                 donor, len);
        return;
    }
    for (const uint8_t *o = b; o < b + len; o += PSJ_WIN_BYTES) {
        uint32_t client;
        uint64_t nonce;
        ps_dedup_win_t w;
        memcpy(&client, o, 4);
        memcpy(&nonce, o + 4, 8);
        memcpy(&w.lwm, o + 12, 8);
        memcpy(&w.hwm, o + 20, 8);
        memcpy(w.bits, o + 28, 8 * PS_DEDUP_WORDS);
        if (!ps_dedup_valid(&w))
            continue;
        ps_dedup_win_t *d = s_owin(s, donor, inc, client, nonce, 1);
        if (d)
            *d = w;
    }
}

int psv_join_relay(ps_server_t *s, const Zps__Push *req, uint32_t rank, uint64_t nonce,
                   size_t *np, uint32_t dim, const float **gp)
{
    uint32_t origin = req->relay_rank - 1;
    s->join.relays_in++;
    ps_dedup_win_t *w = s_owin(s, origin, req->relay_inc, rank, nonce, 1);
    if (!w)
        return ZPS_ENOMEM;
    int st = ps_dedup_check(w, req->relay_seq);
    size_t n = *np, a = 0;
    if (st == PS_DEDUP_NEW) {
        if (s_scratch(s, n, dim) != 0)
            return ZPS_ENOMEM;
        const float *g = *gp;
        for (size_t i = 0; i < n; i++) {
            uint32_t r = zps_range_of(s->keys[i]);
            if (s->join.jdonor[r] != origin + 1 || s->join.jdinc[r] != req->relay_inc ||
                s->join.rfloor[r] <= req->relay_version ||
                !zps_ranges_takes(s->ranges, r, s->conf.rank))
                continue;
            s->keys[a] = s->keys[i];
            memcpy(s->join.gbuf + a * dim, g + i * dim, dim * sizeof *g);
            a++;
        }
        ps_dedup_mark(w, req->relay_seq);
        *gp = s->join.gbuf;
    } else {
        s->join.relays_known++;
    }
    s->join.relay_keys += a;
    if (a)
        zps_log_limited(s->log, LC_JOIN_RELAY, 1000, "relay from client %u of its push %llu to "
                        "removed server %u: %zu of its %zu keys were not in this copy: applied",
                        rank, (unsigned long long)req->relay_seq, origin, a, n);
    *np = a;
    return 0;
}

/* Wait for the snapshot thread (stop: ask it to stop first) and free it;
 * its status. */
static int s_snap_thread_end(psj_snap_t *p, int stop)
{
    if (stop)
        atomic_store(&p->stop, 1);
    pthread_join(p->tid, NULL);
    int rc = p->status;
    s_snap_free(p);
    return rc;
}

/* The donated rows copied at the cut (the thread's snapshot).  0 or
 * ZPS_ENOMEM. */
static int s_snap_copy(const ps_server_t *s, psj_snap_t *p)
{
    for (uint32_t t = 0; t < p->ntables; t++) {
        zps_table_t *tb = s->tabs[t].t;
        uint32_t rf = p->rf[t];
        size_t n = 0, cap = 0;
        zps_table_cur_t cursor = ZPS_TABLE_CUR_INIT;
        uint64_t key;
        float *row;
        while (zps_table_next(tb, &cursor, &key, &row)) {
            if (!s_in_mask(p->mask, zps_range_of(key)))
                continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 4096;
                uint64_t *k = realloc(p->ckeys[t], cap * sizeof *k);
                if (k)
                    p->ckeys[t] = k;
                float *r = realloc(p->crows[t], cap * rf * sizeof *r);
                if (r)
                    p->crows[t] = r;
                if (!k || !r)
                    return ZPS_ENOMEM;
            }
            p->ckeys[t][n] = key;
            memcpy(p->crows[t] + n * rf, row, rf * sizeof *row);
            n++;
        }
        p->cn[t] = n;
    }
    return 0;
}

static psj_donate_t *s_donate_find(ps_server_t *s, uint32_t joiner, uint64_t cut)
{
    for (uint32_t i = 0; i < s->join.ndon; i++)
        if (s->join.don[i].joiner == joiner && s->join.don[i].cut == cut)
            return &s->join.don[i];
    return NULL;
}

/* A new join this server donates to: forward socket and snapshot child. */
static void s_donate_start(ps_server_t *s, uint32_t joiner, uint64_t cut, const uint8_t *mask,
                           uint32_t nranges)
{
    if (s->join.ndon >= PSJ_MAX_DONATES) {
        zps_error(s->log, "join of server %u: more than %d joins at once; not donating",
                  joiner, PSJ_MAX_DONATES);
        return;
    }
    psj_donate_t *d = &s->join.don[s->join.ndon];
    memset(d, 0, sizeof *d);
    d->joiner = joiner;
    d->cut = cut;
    memcpy(d->mask, mask, sizeof d->mask);
    d->nranges = nranges;
    d->started_ms = zps_now_ms();
    ps_member_endpoint(s->member, joiner, d->endpoint, sizeof d->endpoint);
    if (!d->endpoint[0]) {
        zps_error(s->log, "join of server %u: the coordinator sent no endpoint for it", joiner);
        return;
    }
    d->sock = zmq_socket(s->ctx, ZMQ_DEALER);
    int zero = 0, ivl = 100;
    if (!d->sock || zmq_setsockopt(d->sock, ZMQ_LINGER, &zero, sizeof zero) ||
        zmq_setsockopt(d->sock, ZMQ_SNDTIMEO, &zero, sizeof zero) ||
        zmq_setsockopt(d->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl) ||
        zmq_connect(d->sock, d->endpoint) != 0) {
        zps_error(s->log, "join of server %u: cannot connect to %s", joiner, d->endpoint);
        if (d->sock)
            zmq_close(d->sock);
        return;
    }
    /* forwards continue this joiner process's sequence (a second join of the
     * same process from this donor must not reuse the numbers of the first:
     * the joiner would take them for duplicates) */
    uint32_t inc = s->ranges->inc[joiner];
    if (!s->join.fwd_next[joiner] || s->join.fwd_inc[joiner] != inc) {
        s->join.fwd_next[joiner] = 1;
        s->join.fwd_inc[joiner] = inc;
    }
    s->join.ndon++;
    psj_snap_t *p = calloc(1, sizeof *p);
    if (!p) {
        zps_error(s->log, "join of server %u: out of memory for the snapshot", joiner);
        return;
    }
    p->s = s;
    p->joiner = joiner;
    p->cut = cut;
    snprintf(p->endpoint, sizeof p->endpoint, "%s", d->endpoint);
    memcpy(p->mask, mask, sizeof p->mask);
    p->ntables = s->conf.ntables;
    for (uint32_t t = 0; t < p->ntables; t++)
        p->rf[t] = zps_table_row_floats(s->tabs[t].t);
    /* which pushes the snapshot holds: the windows as of now, the fork */
    p->wins = s_wins_encode(s, &p->wins_len);
    p->inc = s->ranges->inc[s->conf.rank];
    /* admission counts and how rows are stored, for the joiner */
    zps_shard_storage(s->tabs[0].sh, p->storage, sizeof p->storage);
    if (zps_shard_state_export(s->tabs[0].sh, &p->state, &p->state_len) != 0)
        p->state_len = 0; /* out of memory: the joiner counts from zero */
    if (PSJ_SNAP_FORK) {
        for (uint32_t t = 0; t < p->ntables; t++)
            p->live[t] = s->tabs[t].t;
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0)
            s_snap_child(p);
        if (pid < 0)
            zps_error(s->log, "join of server %u: cannot fork the snapshot: %s", joiner,
                      strerror(errno));
        d->snap_pid = pid > 0 ? pid : 0;
        free(p->wins);
        free(p->state);
        free(p);
        zps_info(s->log, "donating %u ranges to server %u at %s (join at version %llu): "
                 "snapshot in process %d, pushes split by older tables forwarded", nranges,
                 joiner, d->endpoint, (unsigned long long)cut, (int)d->snap_pid);
        return;
    }
    /* sanitizer build: copy now (nothing of the cut's version is applied
     * yet), send from a thread */
    int64_t t0 = zps_now_ms();
    p->ctx = s->ctx;
    if (s_snap_copy(s, p) != 0 || pthread_create(&p->tid, NULL, s_snap_thread, p) != 0) {
        zps_error(s->log, "join of server %u: cannot copy the snapshot or start its thread",
                  joiner);
        s_snap_free(p);
        return;
    }
    d->snap_thread = p;
    size_t n = 0;
    for (uint32_t t = 0; t < p->ntables; t++)
        n += p->cn[t];
    zps_info(s->log, "donating %u ranges to server %u at %s (join at version %llu): %zu rows "
             "copied in %lld ms, sent from a thread; pushes split by older tables forwarded",
             nranges, joiner, d->endpoint, (unsigned long long)cut, n,
             (long long)(zps_now_ms() - t0));
}

/* ---- as a joiner ------------------------------------------------------------ */

static void s_buf_free(psj_buf_t *b)
{
    free(b->keys);
    free(b->vals);
}

static void s_joining_clear(ps_server_t *s)
{
    for (size_t i = 0; i < s->join.nbuf; i++)
        s_buf_free(&s->join.buf[i]);
    free(s->join.buf);
    s->join.buf = NULL;
    s->join.nbuf = s->join.buf_cap = 0;
    s->join.buf_bytes = 0;
    s->join.cut = 0;
    s->join.ndonors = s->join.ndone = 0;
    s->join.caught_up = 0;
}

/* Apply n rows of pushes to table tb directly (a joiner's buffer, or a
 * forward once caught up).  0 or a ZPS_E* code. */
static int s_apply_rows(ps_server_t *s, uint32_t table, const uint64_t *keys, size_t n,
                        const float *g, float lr_scale)
{
    ps_tab_t *tb = &s->tabs[table];
    zps_shard_push_t pr;
    int rc = zps_shard_push_begin(tb->sh, keys, n, g, lr_scale, s->conf.clip_gradient, &pr);
    if (rc)
        return rc;
    if (table == 0 && pr.new_keys && s->conf.bound.evict)
        psv_evict_for(s, tb, pr.new_keys); /* as a push does */
    return zps_shard_push_commit(tb->sh);
}

static int s_buffer(ps_server_t *s, uint32_t table, uint32_t dim, const uint64_t *keys, size_t n,
                    const float *g, float lr_scale)
{
    if (s->join.buf_bytes + n * (8 + 4 * (size_t)dim) > s->conf.join_buffer_bytes) {
        zps_log_limited(s->log, LC_REJECT, 1000, "join: %zu bytes of pushes buffered while the "
                        "copy is not complete (--join-buffer-mb): refusing more for now",
                        s->join.buf_bytes);
        return ZPS_EBUSY;
    }
    if (s_room((void **)&s->join.buf, &s->join.buf_cap, s->join.nbuf, sizeof *s->join.buf, 256))
        return ZPS_ENOMEM;
    psj_buf_t *b = &s->join.buf[s->join.nbuf];
    b->keys = malloc((n ? n : 1) * sizeof *keys);
    b->vals = malloc((n * dim > 0 ? n * dim : 1) * sizeof *g);
    if (!b->keys || !b->vals) {
        s_buf_free(b);
        return ZPS_ENOMEM;
    }
    memcpy(b->keys, keys, n * sizeof *keys);
    memcpy(b->vals, g, n * dim * sizeof *g);
    b->n = n;
    b->table = table;
    b->dim = dim;
    b->lr_scale = lr_scale;
    s->join.nbuf++;
    s->join.buf_bytes += n * (8 + 4 * (size_t)dim);
    return 0;
}

/* Every donor's last page is in: apply the buffer, then serve as it comes. */
static void s_catch_up(ps_server_t *s)
{
    size_t bad = 0;
    for (size_t i = 0; i < s->join.nbuf; i++) {
        psj_buf_t *b = &s->join.buf[i];
        if (s_apply_rows(s, b->table, b->keys, b->n, b->vals, b->lr_scale) != 0)
            bad++;
    }
    zps_info(s->log, "join at version %llu: copy complete (%llu keys from %u donor%s) in %lld ms; "
             "applied the %zu pushes buffered meanwhile (%zu refused); applying pushes as they come",
             (unsigned long long)s->join.cut, (unsigned long long)s->join.snap_keys,
             s->join.ndonors, s->join.ndonors == 1 ? "" : "s",
             (long long)(zps_now_ms() - s->join.started_ms), s->join.nbuf, bad);
    if (bad)
        zps_error(s->log, "join: %zu buffered pushes could not be applied (non-finite or out of "
                  "memory): this replica differs from its donors", bad);
    uint64_t cut = s->join.cut;
    for (size_t i = 0; i < s->join.nbuf; i++)
        s_buf_free(&s->join.buf[i]);
    s->join.nbuf = 0;
    s->join.buf_bytes = 0;
    s->join.caught_up = 1;
    ps_member_set_joined(s->member, cut);
}

/* ---- the table changed ------------------------------------------------------ */

void psv_join_table(ps_server_t *s)
{
    const zps_ranges_t *t = s->ranges;
    uint32_t me = s->conf.rank;
    /* donor: new joins to start; joins that ended */
    for (uint32_t i = 0; i < s->join.ndon;) {
        psj_donate_t *d = &s->join.don[i];
        int joining = 0, replica = 0;
        for (uint32_t r = 0; r < ZPS_RANGES && !joining; r++) {
            if (!s_in_mask(d->mask, r))
                continue;
            joining |= t->join[r] == d->joiner && t->cut[r] == d->cut;
            replica |= zps_ranges_has(t, r, d->joiner);
        }
        if (!joining && !replica) {
            zps_warn(s->log, "join of server %u at version %llu ended without it (removed): "
                     "releasing %zu acknowledgements held for its forwards", d->joiner,
                     (unsigned long long)d->cut, d->nfwd);
            s_donate_drop(s, d);
            s->join.don[i] = s->join.don[--s->join.ndon];
            continue;
        }
        if (!joining && replica && !d->completed) {
            d->completed = 1;
            d->quiet_ms = zps_now_ms();
            zps_info(s->log, "server %u completed its join of %u ranges (version %llu) in %lld ms; "
                     "pushes split by tables older than %llu are still forwarded to it", d->joiner,
                     d->nranges, (unsigned long long)t->version,
                     (long long)(zps_now_ms() - d->started_ms), (unsigned long long)d->cut);
        }
        i++;
    }
    uint8_t *mask = s->join.scratch;
    for (;;) {
        /* one new (joiner, cut) this server donates to per pass */
        uint32_t joiner = UINT32_MAX;
        uint64_t cut = 0;
        uint32_t n = 0;
        memset(mask, 0, ZPS_RANGES / 8);
        for (uint32_t r = 0; r < ZPS_RANGES; r++) {
            if (t->join[r] == ZPS_NO_RANK || t->donor[r] != me)
                continue;
            if (s_donate_find(s, t->join[r], t->cut[r]))
                continue;
            if (joiner == UINT32_MAX) {
                joiner = t->join[r];
                cut = t->cut[r];
            }
            if (t->join[r] != joiner || t->cut[r] != cut)
                continue;
            mask[r >> 3] |= (uint8_t)(1u << (r & 7));
            n++;
        }
        if (joiner == UINT32_MAX)
            break;
        s_donate_start(s, joiner, cut, mask, n);
        if (!s_donate_find(s, joiner, cut))
            break; /* could not start it: logged */
    }
    if (s->join.restored && !s->join.floor) {
        /* restored from a checkpoint: pushes split by tables older than
         * its first are of the clients' numbering with the process that
         * wrote it (refused like a new process's, psv_on_push).  Its rows
         * of ranges it is not given stay: the coordinator may still
         * restore a lost range from them (ps_coord_restored) */
        s->join.floor = t->version;
        zps_info(s->log, "first range table since the restore: version %llu; pushes split by "
                 "older tables are refused", (unsigned long long)t->version);
    }
    /* joiner: the joins of this server */
    uint64_t cut = 0;
    uint32_t n = 0, member = 0;
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        if (t->join[r] == me) {
            cut = cut > t->cut[r] ? cut : t->cut[r];
            n++;
        }
        if (zps_ranges_has(t, r, me))
            s->join.ever_replica = 1;
        /* ranges left (moved away): pushes split before this version may
         * still come (late retries); ranges taken again */
        int now = zps_ranges_takes(t, r, me), was = s_in_mask(s->join.held, r);
        member |= now;
        if (was && !now) {
            s->join.left[r] = t->version;
            s->join.left_ms[r] = zps_now_ms();
        }
        if (now) {
            s->join.left_ms[r] = 0;
            s->join.purge[r >> 3] &= (uint8_t)~(1u << (r & 7));
        }
        if (now != was)
            s->join.held[r >> 3] ^= (uint8_t)(1u << (r & 7));
    }
    if (member && !s->join.inc_known) {
        s->join.my_inc = t->inc[me];
        s->join.inc_known = 1;
    }
    if (s->join.inc_known && t->inc[me] != s->join.my_inc && !s->join.stale) {
        /* the coordinator gave this rank a new incarnation: it took this
         * process for a new one (it was removed without learning it, and a
         * coordinator that restarted in between offered it ranges as to a
         * new process); what it holds is stale */
        zps_error(s->log, "the range table gives this rank a new incarnation (%u, this process "
                  "has %u): it was removed meanwhile, its copy is stale", t->inc[me],
                  s->join.my_inc);
        s->join.stale = 1;
        return;
    }
    if (cut && cut != s->join.cut) {
        s_joining_clear(s);
        s->join.cut = cut;
        if (!s->join.floor && !s->join.ever_replica)
            s->join.floor = cut; /* a new process: its first join */
        s->join.started_ms = zps_now_ms();
        s->join.snap_keys = 0;
        memset(s->join.mask, 0, sizeof s->join.mask);
        for (uint32_t r = 0; r < ZPS_RANGES; r++) {
            if (t->join[r] != me || t->cut[r] != cut)
                continue;
            s->join.mask[r >> 3] |= (uint8_t)(1u << (r & 7));
            s->join.rfloor[r] = cut;
            s->join.rfloor_max = cut;
            s->join.jdonor[r] = t->donor[r] + 1;
            s->join.jdinc[r] = t->inc[t->donor[r]];
            uint32_t dn = t->donor[r], k;
            for (k = 0; k < s->join.ndonors && s->join.donors[k] != dn; k++)
                ;
            if (k == s->join.ndonors && k < PSJ_MAX_DONORS) {
                s->join.donors[k] = (uint16_t)dn;
                s->join.donor_done[k] = 0;
                s->join.donor_page[k] = 0;
                s->join.ndonors++;
            }
        }
        /* rows it kept of ranges it held before (moved away, now back)
         * start afresh: the donors' copy replaces them */
        size_t reset = 0;
        for (uint32_t tbi = 0; tbi < s->conf.ntables; tbi++) {
            ps_tab_t *tb = &s->tabs[tbi];
            zps_table_cur_t cursor = ZPS_TABLE_CUR_INIT;
            uint64_t key;
            float *row;
            while (zps_table_next(tb->t, &cursor, &key, &row))
                if (s_in_mask(s->join.mask, zps_range_of(key))) {
                    zps_optim_init_row(&tb->o, key, row);
                    reset++;
                }
        }
        zps_info(s->log, "joining %u ranges at version %llu from %u donor%s%s: buffering their "
                 "pushes until the copy is complete%s", n, (unsigned long long)cut,
                 s->join.ndonors, s->join.ndonors == 1 ? "" : "s",
                 s->join.ever_replica ? " while serving the ranges it holds" : "",
                 reset ? " (rows kept from before reset)" : "");
    } else if (!cut && s->join.cut) {
        /* the join is over: a replica now (or removed: the loop exits) */
        if (!s->join.caught_up)
            zps_warn(s->log, "join at version %llu ended before the copy was complete",
                     (unsigned long long)s->join.cut);
        s_joining_clear(s);
    }
}

void psv_table_refresh(ps_server_t *s)
{
    if (ps_member_table(s->member, s->ranges))
        psv_join_table(s);
}

int psv_join_forwards_waiting(const ps_server_t *s)
{
    for (uint32_t i = 0; i < s->join.ndon; i++)
        if (s->join.don[i].nfwd)
            return 1;
    return 0;
}

int psv_join_accepts(const ps_server_t *s, uint32_t r, uint64_t v)
{
    return zps_ranges_takes(s->ranges, r, s->conf.rank) || v < s->join.left[r];
}

/* ---- pushes ------------------------------------------------------------------ */

int psv_join_push(ps_server_t *s, zps_msg_t *m, const Zps__Push *req, size_t *np, uint32_t dim,
                  const float **gp, float lr_scale)
{
    (void)m;
    uint64_t v = req->table_version;
    /* Per key: a range it is joining buffers its keys until the copy is
     * complete (and skips them if split before the cut: the donor's copy
     * or forward carries them); a range joined at a cut after v skips
     * them; the others apply now.  (A push split before this process's
     * first join never comes here: psv_on_push refuses it, ZPS_ESTALE.) */
    size_t n = *np, need = 0;
    int joining = s->join.cut && !s->join.caught_up;
    if (!joining && v >= s->join.rfloor_max)
        return 0; /* the common case: no key to look at */
    for (size_t i = 0; i < n && !need; i++) {
        uint32_t r = zps_range_of(s->keys[i]);
        need = (joining && s_in_mask(s->join.mask, r)) || v < s->join.rfloor[r];
    }
    if (!need)
        return 0;
    if (s_scratch(s, n, dim) != 0)
        return ZPS_ENOMEM;
    const float *g = *gp;
    size_t a = 0, nb = 0;
    float *bvals = NULL;
    if (joining) {
        bvals = malloc((n * dim > 0 ? n * dim : 1) * sizeof *bvals);
        if (!bvals)
            return ZPS_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t key = s->keys[i];
        uint32_t r = zps_range_of(key);
        if (joining && s_in_mask(s->join.mask, r)) {
            if (v >= s->join.cut) {
                s->join.kbuf[nb] = key;
                memcpy(bvals + nb * dim, g + i * dim, dim * sizeof *g);
                nb++;
            }
        } else if (v >= s->join.rfloor[r]) {
            s->keys[a] = key;
            memcpy(s->join.gbuf + a * dim, g + i * dim, dim * sizeof *g);
            a++;
        }
    }
    int rc = nb ? s_buffer(s, req->table, dim, s->join.kbuf, nb, bvals, lr_scale) : 0;
    free(bvals);
    if (rc)
        return rc; /* nothing applied: the client retries it whole */
    *np = a;
    *gp = s->join.gbuf;
    return a ? 0 : 1;
}

int psv_join_forward(ps_server_t *s, zps_msg_t *m, const Zps__Push *req, uint32_t rank,
                     uint64_t nonce, size_t n, uint32_t dim, const float *g, float lr_scale)
{
    if (!s->join.ndon)
        return 0;
    psj_ack_t *ack = NULL;
    /* a relay counts as split by the table of the push it relays */
    uint64_t v = req->relay_rank ? req->relay_version : req->table_version;
    for (uint32_t i = 0; i < s->join.ndon; i++) {
        psj_donate_t *d = &s->join.don[i];
        if (v >= d->cut)
            continue;
        size_t cnt = 0;
        for (size_t j = 0; j < n; j++)
            cnt += s_in_mask(d->mask, zps_range_of(s->keys[j]));
        if (!cnt)
            continue;
        uint64_t *k = malloc(cnt * sizeof *k);
        size_t kb = zps_keys_bound(cnt) + 1;
        uint8_t *enc = malloc(kb);
        float *v = malloc(cnt * dim * sizeof *v);
        if (!k || !enc || !v ||
            s_room((void **)&d->fwd, &d->fwd_cap, d->nfwd, sizeof *d->fwd, 64)) {
            free(k);
            free(enc);
            free(v);
            zps_error(s->log, "join of server %u: out of memory forwarding a push", d->joiner);
            continue;
        }
        size_t c = 0;
        for (size_t j = 0; j < n; j++)
            if (s_in_mask(d->mask, zps_range_of(s->keys[j]))) {
                k[c] = s->keys[j];
                memcpy(v + c * dim, g + j * dim, dim * sizeof *v);
                c++;
            }
        long klen = zps_keys_encode(k, cnt, enc, kb);
        free(k);
        psj_fwd_t *f = &d->fwd[d->nfwd++];
        memset(f, 0, sizeof *f);
        f->seq = s->join.fwd_next[d->joiner]++;
        f->client_rank = rank;
        f->client_nonce = nonce;
        f->client_seq = req->seq;
        d->quiet_ms = zps_now_ms();
        f->table = req->table;
        f->dim = dim;
        f->nkeys = cnt;
        f->lr_scale = lr_scale;
        f->examples = req->examples;
        f->mean = req->mean;
        zmq_msg_init_size(&f->keys, klen > 0 ? (size_t)klen : 0);
        if (klen > 0)
            memcpy(zmq_msg_data(&f->keys), enc, (size_t)klen);
        free(enc);
        zmq_msg_init_size(&f->vals, cnt * dim * sizeof *v);
        memcpy(zmq_msg_data(&f->vals), v, cnt * dim * sizeof *v);
        free(v);
        if (!ack) {
            ack = calloc(1, sizeof *ack);
            if (ack) {
                zmq_msg_init(&ack->ident);
                zmq_msg_copy(&ack->ident, &m->ident);
                snprintf(ack->peer, sizeof ack->peer, "%s", m->peer);
                ack->request_id = m->env->request_id;
                ack->seq = req->seq;
                ack->nkeys = n;
                ack->table = req->table;
                ack->rank = rank;
                ack->nonce = nonce;
            }
        }
        if (ack) {
            ack->waiting++;
            f->ack = ack;
        }
        s->join.forwarded++;
        s_send_fwd(s, d, f);
    }
    return ack != NULL;
}

int psv_join_ack_held(const ps_server_t *s, uint32_t rank, uint64_t nonce, uint64_t seq)
{
    for (uint32_t i = 0; i < s->join.ndon; i++)
        for (size_t j = 0; j < s->join.don[i].nfwd; j++) {
            const psj_ack_t *a = s->join.don[i].fwd[j].ack;
            if (a && a->rank == rank && a->nonce == nonce && a->seq == seq)
                return 1;
        }
    return 0;
}

/* ---- messages from donors ----------------------------------------------------- */

static int s_donor_index(ps_server_t *s, uint32_t rank)
{
    for (uint32_t k = 0; k < s->join.ndonors; k++)
        if (s->join.donors[k] == rank)
            return (int)k;
    return -1;
}

static void s_reply_small(ps_server_t *s, zps_msg_t *m, int type, int body, void *msg)
{
    Zps__Envelope env;
    zps_msg_env(&env, type, ZPS__ROLE__ROLE_SERVER, s->conf.rank, m->env->request_id);
    env.body_case = body;
    if (body == ZPS__ENVELOPE__BODY_FORWARD_ACK)
        env.forward_ack = msg;
    else
        env.snap_ack = msg;
    psv_send(s, m, &env, NULL, 0, NULL, 0);
}

/* A donor's message for a join at cut: 1 if this server knows that join
 * (its table is refreshed first: the donor may have learnt it sooner). */
static int s_knows_cut(ps_server_t *s, uint64_t cut)
{
    if (s->ranges && s->ranges->version < cut)
        psv_table_refresh(s);
    return s->ranges && s->ranges->version >= cut;
}

void psv_on_forward(ps_server_t *s, zps_msg_t *m)
{
    const Zps__Forward *f = m->env->forward;
    uint32_t donor = m->env->rank;
    if (m->env->role != ZPS__ROLE__ROLE_SERVER || !s->ranges || f->table >= s->conf.ntables ||
        f->seq == 0) {
        psv_reply_error(s, m, ZPS_EPERM, "forward refused: not from a server of this job");
        return;
    }
    if (!s_knows_cut(s, f->cut)) {
        /* not learnt yet: the donor sends it again */
        psv_reply_error(s, m, ZPS_ESTALE, "forward for the join at version %llu: this server "
                        "has version %llu yet", (unsigned long long)f->cut,
                        (unsigned long long)s->ranges->version);
        return;
    }
    ps_tab_t *tb = &s->tabs[f->table];
    uint32_t dim = zps_optim_push_floats(&tb->o);
    size_t klen, vlen;
    const uint8_t *kb = zps_msg_bulk(m, 0, &klen);
    const void *vb = zps_msg_bulk(m, 1, &vlen);
    if (f->dim != dim || f->nkeys > s->conf.max_keys || vlen != f->nkeys * dim * sizeof(float) ||
        (f->nkeys && !kb)) {
        psv_reply_error(s, m, ZPS_EPROTO, "malformed forward");
        return;
    }
    /* dedup per (donor, donor process) */
    ps_dedup_win_t *w = NULL;
    for (uint32_t i = 0; i < s->join.nfwin; i++)
        if (s->join.fwin[i].rank == donor && s->join.fwin[i].nonce == f->donor_nonce)
            w = &s->join.fwin[i].win;
    if (!w) {
        uint32_t i = s->join.nfwin < PSJ_MAX_DONORS ? s->join.nfwin++ : (uint32_t)(f->seq % PSJ_MAX_DONORS);
        s->join.fwin[i].rank = donor;
        s->join.fwin[i].nonce = f->donor_nonce;
        ps_dedup_init(&s->join.fwin[i].win);
        w = &s->join.fwin[i].win;
    }
    int st = ps_dedup_check(w, f->seq);
    if (st == ZPS_ESEQ) {
        psv_reply_error(s, m, ZPS_ESEQ, "forward seq %llu outside the window",
                        (unsigned long long)f->seq);
        return;
    }
    Zps__ForwardAck ack = ZPS__FORWARD_ACK__INIT;
    ack.seq = f->seq;
    if (st == PS_DEDUP_DUP) {
        s_reply_small(s, m, ZPS__MSG_TYPE__FORWARD_ACK, ZPS__ENVELOPE__BODY_FORWARD_ACK, &ack);
        return;
    }
    size_t n = f->nkeys;
    if (n > s->keys_cap) {
        uint64_t *k = realloc(s->keys, n * sizeof *k);
        if (!k) {
            psv_reply_error(s, m, ZPS_ENOMEM, "out of memory");
            return;
        }
        s->keys = k;
        s->keys_cap = n;
    }
    if (n && zps_keys_decode(kb, klen, n, s->keys, NULL) != 0) {
        psv_reply_error(s, m, ZPS_EPROTO, "malformed forward keys");
        return;
    }
    float *g = malloc((n * dim > 0 ? n * dim : 1) * sizeof *g);
    if (!g) {
        psv_reply_error(s, m, ZPS_ENOMEM, "out of memory");
        return;
    }
    memcpy(g, vb, n * dim * sizeof *g);
    float lr = f->lr_scale > 0 ? f->lr_scale : 1.0f;
    int rc;
    if (s->join.cut && !s->join.caught_up)
        rc = s_buffer(s, f->table, dim, s->keys, n, g, lr);
    else
        rc = s_apply_rows(s, f->table, s->keys, n, g, lr);
    free(g);
    if (rc) {
        psv_reply_error(s, m, rc, "forward not applied: %s", zps_strerror(rc));
        return;
    }
    ps_dedup_mark(w, f->seq);
    s->join.forwards_in++;
    if (f->client_nonce) {
        /* the client's push at the donor is in this copy now (relays) */
        ps_dedup_win_t *cw = s_owin(s, donor, f->donor_inc, f->client_rank, f->client_nonce, 1);
        if (cw)
            ps_dedup_mark(cw, f->client_seq);
    }
    s_reply_small(s, m, ZPS__MSG_TYPE__FORWARD_ACK, ZPS__ENVELOPE__BODY_FORWARD_ACK, &ack);
}

void psv_on_snap(ps_server_t *s, zps_msg_t *m)
{
    const Zps__Snap *p = m->env->snap;
    uint32_t donor = m->env->rank;
    int k;
    Zps__SnapAck ack = ZPS__SNAP_ACK__INIT;
    ack.cut = p->cut;
    ack.page = p->page;
    if (m->env->role != ZPS__ROLE__ROLE_SERVER || p->table >= s->conf.ntables) {
        psv_reply_error(s, m, ZPS_EPERM, "snapshot page refused: not from a server of this job");
        return;
    }
    if (!s_knows_cut(s, p->cut))
        return; /* not learnt yet: unanswered, the donor sends the page again */
    k = s_donor_index(s, donor);
    if (p->cut != s->join.cut || k < 0 || s->join.caught_up) {
        /* a page of a join that is over, or not ours: acknowledged, dropped */
        s_reply_small(s, m, ZPS__MSG_TYPE__SNAP_ACK, ZPS__ENVELOPE__BODY_SNAP_ACK, &ack);
        return;
    }
    if (p->page <= s->join.donor_page[k]) { /* a resend */
        s_reply_small(s, m, ZPS__MSG_TYPE__SNAP_ACK, ZPS__ENVELOPE__BODY_SNAP_ACK, &ack);
        return;
    }
    zps_table_t *t = s->tabs[p->table].t;
    uint32_t rf = zps_table_row_floats(t);
    size_t klen, vlen;
    const void *kb = zps_msg_bulk(m, 0, &klen);
    const void *vb = zps_msg_bulk(m, 1, &vlen);
    size_t n = p->nkeys;
    /* rows, and the state page before them, only from a donor that stores
     * rows as this server does */
    if (p->table == 0 && p->storage && p->storage[0]) {
        char mine[128];
        zps_shard_storage(s->tabs[0].sh, mine, sizeof mine);
        if (strcmp(mine, p->storage) != 0) {
            zps_log_limited(s->log, LC_REJECT, 1000, "join: server %u stores table 0's rows as "
                            "'%s', this server as '%s': its pages are refused (start every "
                            "server of a job with the same --accum, --expire-after and --evict)",
                            donor, p->storage, mine);
            psv_reply_error(s, m, ZPS_EPROTO, "snapshot page %llu from server %u: rows stored "
                            "as '%s', here as '%s'", (unsigned long long)p->page, donor,
                            p->storage, mine);
            return;
        }
    }
    if (p->state_page && p->page == s->join.donor_page[k] + 1 && n == 0 && klen == 0) {
        char why[256];
        if (zps_shard_state_merge(s->tabs[0].sh, vb, vlen, why, sizeof why) != 0)
            zps_warn(s->log, "join: server %u's admission counts not taken: %s (the keys it "
                     "counted are counted here from zero)", donor, why);
        else if (s->conf.admit.mode == ZPS_ADMIT_COUNT)
            zps_info(s->log, "join: server %u's admission counts taken (%zu bytes)", donor, vlen);
        s->join.donor_page[k] = p->page;
        s_reply_small(s, m, ZPS__MSG_TYPE__SNAP_ACK, ZPS__ENVELOPE__BODY_SNAP_ACK, &ack);
        return;
    }
    if (p->page != s->join.donor_page[k] + 1 || p->row_floats != rf || klen != n * 8 ||
        vlen != n * rf * sizeof(float) || n > PSJ_PAGE_KEYS) {
        psv_reply_error(s, m, ZPS_EPROTO, "malformed snapshot page %llu from server %u",
                        (unsigned long long)p->page, donor);
        return;
    }
    if (p->table == 0 && n && s->conf.bound.evict)
        psv_evict_for(s, &s->tabs[0], n); /* the cap holds while the copy comes in */
    uint64_t *keys = malloc((n ? n : 1) * sizeof *keys);
    float **rows = malloc((n ? n : 1) * sizeof *rows);
    if (!keys || !rows || (n && zps_table_upsert_batch(t, (memcpy(keys, kb, n * 8), keys), n, rows,
                                                        NULL) != 0)) {
        free(keys);
        free(rows);
        psv_reply_error(s, m, ZPS_ENOMEM, "out of memory for a snapshot page");
        return;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(rows[i], (const char *)vb + i * rf * sizeof(float), rf * sizeof(float));
    free(keys);
    free(rows);
    s->join.donor_page[k] = p->page;
    s->join.snap_keys += n;
    s_reply_small(s, m, ZPS__MSG_TYPE__SNAP_ACK, ZPS__ENVELOPE__BODY_SNAP_ACK, &ack);
    if (p->last && !s->join.donor_done[k]) {
        s_wins_adopt(s, donor, p->donor_inc, p->windows.data, p->windows.len);
        s->join.donor_done[k] = 1;
        s->join.ndone++;
        zps_info(s->log, "join at version %llu: server %u's copy is in (%llu pages)",
                 (unsigned long long)s->join.cut, donor, (unsigned long long)p->page);
        if (s->join.ndone == s->join.ndonors)
            s_catch_up(s);
    }
}

/* ---- maintenance -------------------------------------------------------------- */

/* Delete the rows of ranges left more than --left-rows-ms ago, a bounded
 * number of rows per maintenance pass (a cursor over every table). */
static void s_purge(ps_server_t *s, int64_t now)
{
    if (!s->join.purging) {
        uint32_t n = 0;
        /* only ranges that live elsewhere: a restored copy of a range with
         * no replica may still be the one the coordinator restores */
        for (uint32_t r = 0; r < ZPS_RANGES; r++)
            if (s->join.left_ms[r] && now - s->join.left_ms[r] >= (int64_t)s->conf.left_rows_ms &&
                s->ranges->nrep[r] > 0) {
                s->join.purge[r >> 3] |= (uint8_t)(1u << (r & 7));
                s->join.left_ms[r] = 0;
                n++;
            }
        if (!n)
            return;
        s->join.purging = 1;
        s->join.purge_tab = 0;
        s->join.purge_cur = (zps_table_cur_t)ZPS_TABLE_CUR_INIT;
        zps_info(s->log, "deleting the rows of %u key ranges this server left %u ms ago or more",
                 n, s->conf.left_rows_ms);
    }
    size_t budget = PS_EXPIRE_BUDGET;
    while (budget && s->join.purge_tab < s->conf.ntables) {
        zps_table_t *t = s->tabs[s->join.purge_tab].t;
        uint64_t key;
        float *row;
        zps_table_cur_t cur = s->join.purge_cur;
        for (; budget && zps_table_next(t, &cur, &key, &row); budget--)
            if (s_in_mask(s->join.purge, zps_range_of(key)) && zps_table_delete(t, key) == 1)
                s->join.purged++;
        s->join.purge_cur = cur;
        if (budget) { /* this table is done */
            s->join.purge_tab++;
            s->join.purge_cur = (zps_table_cur_t)ZPS_TABLE_CUR_INIT;
        }
    }
    if (s->join.purge_tab >= s->conf.ntables) {
        s->join.purging = 0;
        memset(s->join.purge, 0, sizeof s->join.purge);
        zps_info(s->log, "rows of ranges this server no longer holds deleted: %llu so far",
                 (unsigned long long)s->join.purged);
    }
}

void psv_join_poll(ps_server_t *s)
{
    int64_t now = zps_now_ms();
    s_purge(s, now);
    for (uint32_t i = 0; i < s->join.ndon;) {
        psj_donate_t *d = &s->join.don[i];
        if (d->completed && !d->nfwd && !d->snap_pid && !d->snap_thread &&
            now - d->quiet_ms > PSJ_DONATE_KEEP_MS) {
            zps_info(s->log, "join of server %u at version %llu: no push split before it for "
                     "%d s: its record is dropped", d->joiner, (unsigned long long)d->cut,
                     PSJ_DONATE_KEEP_MS / 1000);
            s_donate_drop(s, d);
            s->join.don[i] = s->join.don[--s->join.ndon];
            continue;
        }
        i++;
    }
    for (uint32_t i = 0; i < s->join.ndon; i++) {
        psj_donate_t *d = &s->join.don[i];
        for (;;) {
            zps_msg_t m;
            int rc = zps_msg_recv(d->sock, 0, &m, ZMQ_DONTWAIT);
            if (rc == 0 && m.env->body_case == ZPS__ENVELOPE__BODY_FORWARD_ACK) {
                uint64_t seq = m.env->forward_ack->seq;
                for (size_t j = 0; j < d->nfwd; j++)
                    if (d->fwd[j].seq == seq) {
                        s_fwd_free(s, &d->fwd[j]);
                        d->fwd[j] = d->fwd[--d->nfwd];
                        break;
                    }
            } else if (rc == 0 && m.env->body_case == ZPS__ENVELOPE__BODY_ERROR) {
                zps_log_limited(s->log, LC_REJECT, 1000, "join of server %u: it refused a "
                                "forward: %s", d->joiner, m.env->error->text);
            }
            zps_msg_close(&m);
            if (rc == ZPS_EIO || rc == ZPS_EINTR)
                break;
        }
        for (size_t j = 0; j < d->nfwd; j++)
            if (now - d->fwd[j].sent_ms >= PSJ_RESEND_MS)
                s_send_fwd(s, d, &d->fwd[j]);
        if (d->snap_thread && atomic_load(&d->snap_thread->done)) {
            int st = s_snap_thread_end(d->snap_thread, 0);
            d->snap_thread = NULL;
            if (st)
                zps_error(s->log, "join of server %u: the snapshot thread failed (status %d): "
                          "the joiner will not complete; the coordinator replaces it when it "
                          "is removed", d->joiner, st);
        }
        if (d->snap_pid > 0) {
            int status;
            if (waitpid(d->snap_pid, &status, WNOHANG) == d->snap_pid) {
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                    zps_error(s->log, "join of server %u: the snapshot process failed (%s %d): "
                              "the joiner will not complete; the coordinator replaces it when "
                              "it is removed", d->joiner,
                              WIFEXITED(status) ? "exit" : "signal",
                              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
                d->snap_pid = 0;
            }
        }
    }
}

void psv_join_destroy(ps_server_t *s)
{
    for (uint32_t i = 0; i < s->join.ndon; i++)
        s_donate_drop(s, &s->join.don[i]);
    s->join.ndon = 0;
    s_joining_clear(s);
    free(s->join.gbuf);
    free(s->join.kbuf);
    free(s->join.owin);
    s->join.gbuf = NULL;
    s->join.kbuf = NULL;
    s->join.owin = NULL;
    s->join.nowin = s->join.owin_cap = 0;
}
