/* ps_srv_net: replies and connections of the server (part of ps_server,
 * sharing ps_srv.h).
 *
 * Replies never block: a reply's values go to ZeroMQ without a copy and
 * their bytes are counted per connection and in all until ZeroMQ's I/O
 * thread releases them (s_outq_free), so a peer that asks and never reads
 * is refused (psv_reply_room) instead of filling the server's memory.
 * Connections are keyed by a keyed hash of their routing id, admitted up
 * to --max-connections, and forgotten when the socket monitor reports their
 * disconnect (their held pulls dropped, their ranks unbound). */
#include "ps_srv.h"

static struct ps_outc *s_conn_out(ps_server_t *s, zps_msg_t *m);
static void s_forget_fd(ps_server_t *s, int fd, uint64_t keep);

/* Reply bytes queued in ZeroMQ.  A reply's values frame is handed to
 * ZeroMQ without a copy; s_outq_free runs (in ZeroMQ's I/O thread) when it
 * has been written to the socket or dropped, and takes its bytes off the
 * account, so a peer that asks and never reads is refused (psv_reply_room)
 * instead of filling the server's memory with its replies. */
typedef struct {
    _Atomic long long *total;
    struct ps_outc *c;     /* the connection's counter (a reference), or NULL */
    long long len;
} s_outq_ref_t;

void psv_outc_put(struct ps_outc *o)
{
    if (o && atomic_fetch_sub(&o->refs, 1) == 1)
        free(o);
}

static void s_outq_free(void *data, void *hint)
{
    s_outq_ref_t *r = hint;
    atomic_fetch_sub(r->total, r->len);
    if (r->c) {
        atomic_fetch_sub(&r->c->bytes, r->len);
        psv_outc_put(r->c);
    }
    free(r);
    free(data);
}

void psv_send(ps_server_t *s, zps_msg_t *m, Zps__Envelope *env, void *keys, size_t klen,
              void *vals, size_t vlen)
{
    size_t wire = 0;
    if (!m->has_ident) {
        free(keys);
        free(vals);
        return;
    }
    int rc;
    s_outq_ref_t *ref = vals && vlen && s->outq ? malloc(sizeof *ref) : NULL;
    if (ref) {
        ref->total = s->outq;
        ref->len = (long long)vlen;
        ref->c = s_conn_out(s, m);
        if (ref->c) {
            atomic_fetch_add(&ref->c->refs, 1);
            atomic_fetch_add(&ref->c->bytes, ref->len);
        }
        long long all = atomic_fetch_add(s->outq, ref->len) + ref->len;
        if (all > (long long)s->st.reply_queued_peak)
            s->st.reply_queued_peak = (uint64_t)all;
        rc = zps_msg_send_tracked(s->sock, &m->ident, env, keys, klen, vals, vlen, s_outq_free, ref,
                                  &wire);
    } else {
        rc = zps_msg_send(s->sock, &m->ident, env, keys, klen, vals, vlen, &wire);
    }
    if (rc) {
        /* the peer's queue is full (ZMQ_SNDHWM) or it has gone: dropped */
        s->st.dropped_replies++;
        zps_log_limited(s->log, LC_DROPPED, 1000,
                        "reply to %s dropped (%llu so far): its queue is full or it has left",
                        m->peer, (unsigned long long)s->st.dropped_replies);
    }
    s->st.bytes_out += wire;
}

static void s_reply_verror(ps_server_t *s, zps_msg_t *m, int code, int has_key, uint64_t key,
                           const char *fmt, va_list ap)
{
    char text[512];
    int n = snprintf(text, sizeof text, "server %u: ", s->conf.rank);
    vsnprintf(text + n, sizeof text - (size_t)n, fmt, ap);
    s->st.errors++;
    psv_prom_rejected(s, code); /* metrics: by reason */
    if (code == ZPS_EPERM)
        s->st.perm_denied++;
    zps_log_limited(s->log, LC_REJECT, 1000, "rejected request from %s%s%s/%u: %s", m->peer,
                    m->env ? " " : "", m->env ? (m->env->role == ZPS__ROLE__ROLE_WORKER ? "worker" : "client") : "",
                    m->env ? m->env->rank : 0, text);
    if (!m->has_ident)
        return;
    Zps__Envelope env;
    Zps__Error body = ZPS__ERROR__INIT;
    zps_msg_env(&env, ZPS__MSG_TYPE__ERROR, ZPS__ROLE__ROLE_SERVER, s->conf.rank,
                m->env ? m->env->request_id : 0);
    body.code = code;
    body.text = text;
    body.has_key = has_key != 0;
    body.key = key;
    env.body_case = ZPS__ENVELOPE__BODY_ERROR;
    env.error = &body;
    psv_send(s, m, &env, NULL, 0, NULL, 0);
}

void psv_reply_error(ps_server_t *s, zps_msg_t *m, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_reply_verror(s, m, code, 0, 0, fmt, ap);
    va_end(ap);
}

void psv_reply_error_key(ps_server_t *s, zps_msg_t *m, int code, uint64_t key,
                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_reply_verror(s, m, code, 1, key, fmt, ap);
    va_end(ap);
}

uint64_t psv_conn_key(const ps_server_t *s, zps_msg_t *m)
{
    if (!m->has_ident)
        return 0;
    const unsigned char *p = zmq_msg_data(&m->ident);
    size_t n = zmq_msg_size(&m->ident);
    uint64_t h = zps_mix64(s->id_seed ^ n, 0x1d);
    for (size_t i = 0; i < n; i++)
        h = zps_mix64(h ^ p[i], i);
    return h < 2 ? h + 2 : h;
}

/* Slot of key in the connection map, or of the first free slot for it. */
static ps_conn_t *s_conn_slot(ps_server_t *s, uint64_t key, int *found)
{
    size_t mask = s->conn_cap - 1;
    ps_conn_t *tomb = NULL;
    for (size_t i = key & mask, k = 0; k < s->conn_cap; i = (i + 1) & mask, k++) {
        ps_conn_t *c = &s->conns[i];
        if (c->key == key) {
            *found = 1;
            return c;
        }
        if (c->key == 1 && !tomb)
            tomb = c;
        if (c->key == 0) {
            *found = 0;
            return tomb ? tomb : c;
        }
    }
    *found = 0;
    return tomb;
}

/* The reply-byte counter of m's connection (NULL if it has none). */
static struct ps_outc *s_conn_out(ps_server_t *s, zps_msg_t *m)
{
    uint64_t key = psv_conn_key(s, m);
    if (!key)
        return NULL;
    int found;
    ps_conn_t *c = s_conn_slot(s, key, &found);
    return found && c ? c->out : NULL;
}

/* Rebuild the map without tombstones. */
static void s_conn_rehash(ps_server_t *s)
{
    ps_conn_t *old = s->conns;
    ps_conn_t *nc = calloc(s->conn_cap, sizeof *nc);
    if (!nc)
        return;
    s->conns = nc;
    s->conn_used = 0;
    for (size_t i = 0; i < s->conn_cap; i++) {
        if (old[i].key < 2)
            continue;
        int found;
        ps_conn_t *c = s_conn_slot(s, old[i].key, &found);
        *c = old[i];
        s->conn_used++;
    }
    free(old);
}

/* A new connection on fd: any entry still on fd is a closed connection
 * whose monitor report has not been read yet: evict it now, and mark that
 * report stale.  0, or -1 if the stale table cannot grow. */
static int s_fd_reused(ps_server_t *s, int fd)
{
    size_t before = s->nconns;
    s_forget_fd(s, fd, 0);
    size_t evicted = before - s->nconns;
    if (!evicted)
        return 0;
    if ((size_t)fd >= s->fd_stale_cap) {
        size_t cap = (size_t)fd + 1024;
        uint16_t *n = realloc(s->fd_stale, cap * sizeof *n);
        if (!n)
            return -1;
        memset(n + s->fd_stale_cap, 0, (cap - s->fd_stale_cap) * sizeof *n);
        s->fd_stale = n;
        s->fd_stale_cap = cap;
    }
    s->fd_stale[fd] += (uint16_t)evicted;
    return 0;
}

/* Admit the connection of m (known, or new within --max-connections).
 * 0, or ZPS_ELIMIT (answered). */
int psv_admit(ps_server_t *s, zps_msg_t *m)
{
    uint64_t key = psv_conn_key(s, m);
    if (!key)
        return 0;
    int found;
    ps_conn_t *c = s_conn_slot(s, key, &found);
    if (found) {
        if (m->srcfd >= 0)
            c->fd = m->srcfd;
        return 0;
    }
    uint32_t maxc = s->conf.max_connections ? s->conf.max_connections : 1000;
    if (s->nconns >= maxc || !c) {
        s->st.refused_peers++;
        zps_log_limited(s->log, LC_CONNLIM, 5000,
                        "refused a request from %s: %zu connections is the limit "
                        "(--max-connections); %llu refused so far", m->peer, s->nconns,
                        (unsigned long long)s->st.refused_peers);
        psv_reply_error(s, m, ZPS_ELIMIT, "this server serves at most %u connections "
                        "(--max-connections); try later or another server", maxc);
        return ZPS_ELIMIT;
    }
    /* read the monitor first: ZeroMQ reports a closed connection (and the
     * accept of this one) before this connection's first message reaches
     * us, so the reports about an earlier connection on this descriptor
     * are consumed now, before the descriptor gets a new owner */
    psv_on_monitor(s);
    if (m->srcfd >= 0 && s_fd_reused(s, m->srcfd)) {
        psv_reply_error(s, m, ZPS_ENOMEM, "out of memory for the connection table");
        return ZPS_ENOMEM;
    }
    struct ps_outc *out = calloc(1, sizeof *out);
    if (!out) {
        psv_reply_error(s, m, ZPS_ENOMEM, "out of memory for the connection table");
        return ZPS_ENOMEM;
    }
    atomic_init(&out->refs, 1);
    atomic_init(&out->bytes, 0);
    if (c->key == 0)
        s->conn_used++;
    c->key = key;
    c->fd = m->srcfd;
    c->out = out;
    s->nconns++;
    if (s->conn_used > s->conn_cap / 2 + s->conn_cap / 4)
        s_conn_rehash(s);
    return 0;
}

/* Forget the connections on descriptor fd (except the one with key
 * keep): release the ranks bound to them, drop their held pulls. */
static void s_forget_fd(ps_server_t *s, int fd, uint64_t keep)
{
    for (size_t i = 0; i < s->conn_cap; i++) {
        ps_conn_t *c = &s->conns[i];
        if (c->key < 2 || c->fd != fd || c->key == keep)
            continue;
        for (uint32_t r = 0; r < s->nclients; r++)
            if (s->ranks[r].conn == c->key)
                s->ranks[r].conn = 0;
        psv_drop_held_if(s, c->key, 0, 0);
        psv_outc_put(c->out);
        c->out = NULL;
        c->key = 1;
        c->fd = -1;
        s->nconns--;
    }
}

/* The monitor reported a closed connection: forget it, release the ranks
 * it was bound to, drop its held pulls.  Descriptors are reused: a new
 * connection can arrive on fd N before the monitor's report that the old
 * connection on N closed has been read.  psv_admit then evicts the old entry
 * at once and counts the report as stale (fd_stale), so the report, when it
 * comes, cannot release the new connection's ranks. */
void psv_on_monitor(ps_server_t *s)
{
    /* bounded, but enough for a burst of closes (an attacker's 1000
     * connections going at once must not keep new peers out for seconds) */
    for (int k = 0; k < 4096; k++) {
        zmq_msg_t ev, addr;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, s->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return;
        }
        int more = zmq_msg_more(&ev);
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&ev) >= 6) {
            memcpy(&event, zmq_msg_data(&ev), 2);
            memcpy(&value, (char *)zmq_msg_data(&ev) + 2, 4);
        }
        zmq_msg_close(&ev);
        while (more) {
            zmq_msg_init(&addr);
            if (zmq_msg_recv(&addr, s->mon, 0) < 0) {
                zmq_msg_close(&addr);
                break;
            }
            more = zmq_msg_more(&addr);
            zmq_msg_close(&addr);
        }
        if (event != ZMQ_EVENT_DISCONNECTED)
            continue;
        /* an entry already evicted when a new connection reused its fd */
        if (value < s->fd_stale_cap && s->fd_stale[value]) {
            s->fd_stale[value]--;
            continue;
        }
        s_forget_fd(s, (int)value, 0);
    }
}

/* What the connection's CURVE identity allows (plaintext: everything).
 * 0, or ZPS_EPERM (answered). */
int psv_identity(ps_server_t *s, zps_msg_t *m)
{
    if (!s->curve)
        return 0;
    int t = m->env->body_case;
    const char *u = m->user;
    if (!strcmp(u, "admin"))
        return 0;
    unsigned r = 0;
    int used = 0;
    if (sscanf(u, "worker-%u%n", &r, &used) == 1 && u[used] == 0) {
        if (t == ZPS__ENVELOPE__BODY_SHUTDOWN) {
            psv_reply_error(s, m, ZPS_EPERM, "SHUTDOWN needs the admin key (this is %s)", u);
            return ZPS_EPERM;
        }
        if (m->env->role != ZPS__ROLE__ROLE_WORKER || m->env->rank != r) {
            zps_log_limited(s->log, LC_PERM, 1000, "%s at %s claimed to be %s %u: refused", u,
                            m->peer, m->env->role == ZPS__ROLE__ROLE_WORKER ? "worker" : "client",
                            m->env->rank);
            psv_reply_error(s, m, ZPS_EPERM, "the key of %s speaks only as worker %u", u, r);
            return ZPS_EPERM;
        }
        return 0;
    }
    if (t == ZPS__ENVELOPE__BODY_HELLO || t == ZPS__ENVELOPE__BODY_PULL ||
        t == ZPS__ENVELOPE__BODY_STATS || t == ZPS__ENVELOPE__BODY_DUMP)
        return 0;
    zps_log_limited(s->log, LC_PERM, 1000, "read-only key %s at %s sent a %s: refused",
                    u[0] ? u : "(none)", m->peer, zps_msg_type_name(m->env->type));
    if (t == ZPS__ENVELOPE__BODY_HEARTBEAT)
        return ZPS_EPERM; /* no reply to heartbeats */
    psv_reply_error(s, m, ZPS_EPERM, "key %s is read-only (HELLO, PULL, STATS, DUMP): %s refused",
                    u[0] ? u : "(none)", zps_msg_type_name(m->env->type));
    return ZPS_EPERM;
}

/* May a reply of bytes go to m's peer?  Refused (ZPS_ELIMIT, answered)
 * when the peer already has replies queued unread and this one would take
 * it over --max-reply-mb, or all peers together over --max-reply-total-mb;
 * a peer with nothing queued always gets one reply within the total. */
int psv_reply_room(ps_server_t *s, zps_msg_t *m, size_t bytes)
{
    if (!s->outq || !bytes)
        return 0;
    struct ps_outc *o = s_conn_out(s, m);
    long long mine = o ? atomic_load(&o->bytes) : 0, all = atomic_load(s->outq);
    long long want = (long long)bytes;
    int over_mine = mine > 0 && mine + want > (long long)s->conf.max_reply_bytes;
    /* over the total, only peers that are themselves behind (more than a
     * 16th of the per-peer bound unread) are refused: a worker that reads
     * its replies is never refused because others do not read theirs */
    int over_all = all + want > (long long)s->conf.max_reply_total &&
                   mine > (long long)(s->conf.max_reply_bytes / 16);
    if (!over_mine && !over_all)
        return 0;
    s->st.reply_refused++;
    psv_reply_error(s, m, ZPS_ELIMIT, "%.1f MB of replies to %s are still unread (%.1f MB for all "
                    "peers): read them before asking for more (--max-reply-mb %llu, "
                    "--max-reply-total-mb %llu)", (double)mine / 1048576.0,
                    over_mine ? "you" : "this server's peers", (double)all / 1048576.0,
                    (unsigned long long)(s->conf.max_reply_bytes >> 20),
                    (unsigned long long)(s->conf.max_reply_total >> 20));
    return 1;
}
