/* ps_member: the membership thread (see ps_member.h). */
#include "ps_member.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "zps_err.h"
#include "zps_msg.h"
#include "zps_time.h"

#define S_RING 64   /* beats remembered for their send times */

struct ps_member {
    ps_member_conf_t conf;
    char coord[256], endpoint[256];
    zps_log_t *log;
    pthread_t th;
    int started;
    _Atomic int stop;
    _Atomic long long lease_until;   /* ms, zps_now_ms clock; 0: none */
    _Atomic int state;
    _Atomic unsigned long long sent, answered;
    _Atomic unsigned long long joined;   /* the cut reported in beats (0: none) */
    int was_in;                          /* the thread's own: ever a member */
    char (*eps)[256];                    /* under mu: per rank (ZPS_RANGES_MAX_SERVERS) */
    uint32_t neps;
    pthread_mutex_t mu;
    zps_ranges_t *table;             /* under mu: the newest table received */
    int send_table;                  /* the thread's own */
    uint8_t *restored;               /* conf.restored_table, copied */
    uint64_t ids[S_RING];
    int64_t sent_ms[S_RING];
};

static void s_send_beat(ps_member_t *m, void *sock, uint64_t id)
{
    Zps__Envelope env;
    Zps__Beat b = ZPS__BEAT__INIT;
    zps_msg_env(&env, ZPS__MSG_TYPE__BEAT, ZPS__ROLE__ROLE_SERVER, m->conf.rank, id);
    b.rank = m->conf.rank;
    b.server_nonce = m->conf.nonce;
    b.endpoint = m->endpoint;
    uint8_t *tb = NULL;
    pthread_mutex_lock(&m->mu);
    b.table_version = m->table->version;
    b.joined = atomic_load(&m->joined);
    if (m->restored) {
        /* the coordinator asks until it has it (ps_coord_restored) */
        b.restored_ms = m->conf.restored_ms;
        if (m->send_table) {
            b.restored_table.data = m->restored;
            b.restored_table.len = m->conf.restored_len;
        }
    }
    if (m->send_table && m->table->version) {
        size_t need = zps_ranges_encoded_size(m->table);
        tb = malloc(need);
        if (tb) {
            b.table.len = zps_ranges_encode(m->table, tb, need);
            b.table.data = tb;
        }
    }
    pthread_mutex_unlock(&m->mu);
    env.body_case = ZPS__ENVELOPE__BODY_BEAT;
    env.beat = &b;
    size_t wire = 0;
    if (zps_msg_send(sock, NULL, &env, NULL, 0, NULL, 0, &wire) == 0) {
        m->ids[id % S_RING] = id;
        m->sent_ms[id % S_RING] = zps_now_ms();
        atomic_fetch_add(&m->sent, 1);
    }
    free(tb);
}

static void s_set_state(ps_member_t *m, int st, uint64_t version)
{
    int old = atomic_exchange(&m->state, st);
    if (old == st)
        return;
    if (st == PS_MEMBER_IN)
        zps_info(m->log, "coordinator %s: member of the job (table version %llu); serving",
                 m->coord, (unsigned long long)version);
    else if (st == PS_MEMBER_OUT)
        zps_warn(m->log, "coordinator %s: this server is not in the range table (version %llu): "
                 "it was removed (declared failed, or restarted); refusing pushes and pulls",
                 m->coord, (unsigned long long)version);
    else if (st == PS_MEMBER_RETIRED)
        zps_info(m->log, "coordinator %s: this server was removed from the job by request (table "
                 "version %llu): every range it held has moved", m->coord,
                 (unsigned long long)version);
    else if (st == PS_MEMBER_CANDIDATE)
        zps_info(m->log, "coordinator %s: the job runs (table version %llu) without this server: "
                 "waiting to be given key ranges to join", m->coord, (unsigned long long)version);
}

static void s_on_reply(ps_member_t *m, const Zps__Envelope *env)
{
    if (env->body_case == ZPS__ENVELOPE__BODY_ERROR) {
        zps_warn(m->log, "coordinator %s refused a beat: %s", m->coord, env->error->text);
        return;
    }
    if (env->body_case != ZPS__ENVELOPE__BODY_BEAT_REPLY)
        return;
    uint64_t id = env->request_id;
    if (m->ids[id % S_RING] != id)
        return; /* too old to know its send time */
    const Zps__BeatReply *br = env->beat_reply;
    atomic_fetch_add(&m->answered, 1);
    m->send_table = br->send_table;
    if (br->table.len > 0) {
        zps_ranges_t *t = malloc(sizeof *t);
        char err[160];
        if (t && zps_ranges_decode(t, br->table.data, br->table.len, err, sizeof err) == 0) {
            int newer = 0;
            pthread_mutex_lock(&m->mu);
            if (t->version > m->table->version) {
                *m->table = *t;
                newer = 1;
            }
            for (size_t i = 0; i < br->n_endpoints && i < ZPS_RANGES_MAX_SERVERS; i++)
                snprintf(m->eps[i], sizeof m->eps[i], "%s", br->endpoints[i]);
            if (br->n_endpoints > m->neps)
                m->neps = (uint32_t)(br->n_endpoints < ZPS_RANGES_MAX_SERVERS
                                         ? br->n_endpoints : ZPS_RANGES_MAX_SERVERS);
            pthread_mutex_unlock(&m->mu);
            if (newer) {
                uint32_t prim = 0, n = zps_ranges_count(t, m->conf.rank, &prim);
                zps_info(m->log, "range table version %llu: %u servers, %u replicas; this server "
                         "holds %u ranges (%u as primary)%s",
                         (unsigned long long)t->version, t->nservers, t->replicas, n, prim,
                         zps_ranges_lost(t) ? "; SOME RANGES HAVE NO REPLICA LEFT" : "");
            }
        } else if (t) {
            zps_warn(m->log, "coordinator %s sent a bad range table: %s", m->coord, err);
        }
        free(t);
    }
    if (br->member) {
        long long until = (long long)m->sent_ms[id % S_RING] + br->lease_ms;
        long long cur = atomic_load(&m->lease_until);
        while (until > cur && !atomic_compare_exchange_weak(&m->lease_until, &cur, until))
            ;
        m->was_in = 1;
        s_set_state(m, PS_MEMBER_IN, br->table_version);
    } else {
        atomic_store(&m->lease_until, 0);
        s_set_state(m, !br->table_version ? PS_MEMBER_WAITING
                       : br->retired     ? PS_MEMBER_RETIRED
                       : m->was_in       ? PS_MEMBER_OUT
                                         : PS_MEMBER_CANDIDATE,
                    br->table_version);
    }
}

static void *s_thread(void *arg)
{
    ps_member_t *m = arg;
    void *sock = zmq_socket(m->conf.zmq_ctx, ZMQ_DEALER);
    if (!sock) {
        zps_error(m->log, "membership: cannot create a socket: %s", zmq_strerror(errno));
        return NULL;
    }
    int zero = 0, ivl = 100, hwm = 16;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sock, ZMQ_SNDTIMEO, &zero, sizeof zero);
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    int cto = 1000;
    zmq_setsockopt(sock, ZMQ_CONNECT_TIMEOUT, &cto, sizeof cto);
    if (zmq_connect(sock, m->coord) != 0) {
        zps_error(m->log, "membership: cannot connect to coordinator %s: %s", m->coord,
                  zmq_strerror(errno));
        zmq_close(sock);
        return NULL;
    }
    uint64_t id = 0;
    int64_t next = 0, last_answer = zps_now_ms(), warned = 0;
    unsigned long long answered = 0;
    while (!atomic_load(&m->stop)) {
        int64_t now = zps_now_ms();
        if (now >= next) {
            s_send_beat(m, sock, ++id);
            next = now + m->conf.beat_ms;
        }
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        long wait = (long)(next - now);
        if (wait > 100)
            wait = 100;
        if (wait < 0)
            wait = 0;
        if (zmq_poll(&it, 1, wait) > 0) {
            for (;;) {
                zps_msg_t msg;
                int rc = zps_msg_recv(sock, 0, &msg, ZMQ_DONTWAIT);
                if (rc == 0)
                    s_on_reply(m, msg.env);
                zps_msg_close(&msg);
                if (rc == ZPS_EIO || rc == ZPS_EINTR)
                    break;
            }
        }
        now = zps_now_ms();
        if (atomic_load(&m->answered) != answered) {
            answered = atomic_load(&m->answered);
            last_answer = now;
            warned = 0;
        } else if (now - last_answer >= 1000 && now - warned >= 10000) {
            warned = now;
            zps_warn(m->log, "coordinator %s has not answered for %.1f s: %s", m->coord,
                     (double)(now - last_answer) / 1000.0,
                     ps_member_leased(m, now) ? "lease still held" : "no lease: refusing pushes and pulls");
        }
    }
    zmq_close(sock);
    return NULL;
}

ps_member_t *ps_member_new(const ps_member_conf_t *conf, zps_log_t *log, char *err, size_t errlen)
{
    ps_member_t *m = calloc(1, sizeof *m);
    if (!m || !(m->table = calloc(1, sizeof *m->table)) ||
        !(m->eps = calloc(ZPS_RANGES_MAX_SERVERS, sizeof *m->eps))) {
        snprintf(err, errlen, "out of memory");
        if (m)
            free(m->table);
        free(m);
        return NULL;
    }
    m->conf = *conf;
    m->conf.restored_table = NULL;
    if (conf->restored_ms && conf->restored_table && conf->restored_len) {
        if (!(m->restored = malloc(conf->restored_len))) {
            snprintf(err, errlen, "out of memory");
            free(m->table);
            free(m->eps);
            free(m);
            return NULL;
        }
        memcpy(m->restored, conf->restored_table, conf->restored_len);
    }
    if (m->conf.beat_ms <= 0)
        m->conf.beat_ms = 100;
    snprintf(m->coord, sizeof m->coord, "%s", conf->coordinator);
    snprintf(m->endpoint, sizeof m->endpoint, "%s", conf->endpoint ? conf->endpoint : "");
    m->log = log;
    pthread_mutex_init(&m->mu, NULL);
    if (pthread_create(&m->th, NULL, s_thread, m) != 0) {
        snprintf(err, errlen, "cannot start the membership thread");
        pthread_mutex_destroy(&m->mu);
        free(m->restored);
        free(m->table);
        free(m->eps);
        free(m);
        return NULL;
    }
    m->started = 1;
    return m;
}

void ps_member_destroy(ps_member_t **pm)
{
    ps_member_t *m = pm ? *pm : NULL;
    if (!m)
        return;
    atomic_store(&m->stop, 1);
    if (m->started)
        pthread_join(m->th, NULL);
    pthread_mutex_destroy(&m->mu);
    free(m->restored);
    free(m->table);
    free(m->eps);
    free(m);
    *pm = NULL;
}

int ps_member_leased(const ps_member_t *m, int64_t now_ms)
{
    return now_ms < atomic_load(&((ps_member_t *)m)->lease_until);
}

int ps_member_state(const ps_member_t *m)
{
    return atomic_load(&((ps_member_t *)m)->state);
}

int ps_member_table(ps_member_t *m, zps_ranges_t *t)
{
    int newer = 0;
    pthread_mutex_lock(&m->mu);
    if (m->table->version > t->version) {
        *t = *m->table;
        newer = 1;
    }
    pthread_mutex_unlock(&m->mu);
    return newer;
}

void ps_member_set_joined(ps_member_t *m, uint64_t cut)
{
    atomic_store(&m->joined, cut);
}

void ps_member_endpoint(ps_member_t *m, uint32_t rank, char *out, size_t outlen)
{
    pthread_mutex_lock(&m->mu);
    snprintf(out, outlen, "%s", rank < m->neps ? m->eps[rank] : "");
    pthread_mutex_unlock(&m->mu);
}

void ps_member_counts(const ps_member_t *m, uint64_t *sent, uint64_t *answered)
{
    *sent = atomic_load(&((ps_member_t *)m)->sent);
    *answered = atomic_load(&((ps_member_t *)m)->answered);
}
