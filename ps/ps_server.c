/* ps_server: the shard's request loop.
 *
 * DESIGN
 * One thread, one ROUTER socket, no locks.  The loop polls the socket and
 * drains every waiting message before polling again.  Each request is
 * handled to completion: keys are decoded into a scratch array, validated
 * (count, coding, ownership by this shard, finite gradients) and only then
 * applied, so an ERROR reply means nothing changed.  Table work is done in
 * chunks of PS_CHUNK keys: the batched table call hashes and prefetches the
 * chunk, then the optimizer touches rows that are already in cache.
 *
 * Pull of a key that was never pushed answers its initial value (a pure
 * function of seed and key) without inserting it, so reading a model never
 * grows it.  Reply values are malloc'd and handed to ZeroMQ (no copy).
 *
 * Consistency.  Under ssp:N and bsp the server keeps every worker's finished
 * clock (the clock of its last push marked "tick"), the time it was last
 * heard from, and whether it is still part of the clock.  A pull stamped
 * with clock t is answered only when the slowest live worker has finished
 * clock t-N-1 (bsp: N = 0); otherwise the message is held in a queue and
 * answered when the minimum advances, so the wait costs nothing while it
 * lasts.  Under bsp, pushes are not applied at once: they are summed (sum
 * gradients) or example-weighted (mean gradients) into an accumulator
 * table, and when every live worker has finished the clock the combined
 * gradient is applied once, so all workers then pull the same weights.
 * A worker silent for longer than the heartbeat timeout is dropped from the
 * clock (logged); if it speaks again it rejoins, fast-forwarded to the
 * slowest live worker's clock so it does not stall the others.
 *
 * Exactly once.  Every push carries (worker rank, process nonce, sequence
 * number); the server keeps per rank the nonce and the last applied
 * sequence, and acknowledges a push it has already applied without applying
 * it again, so clients may retry freely.  The records are part of every
 * checkpoint.  A push also carries how many pushes the client has had
 * acknowledged by this server: after a restore, the difference with the
 * checkpoint's applied count is what the crash lost, and is logged.
 *
 * Checkpoints fork(): the child writes the copy-on-write image of the table
 * (ps_ckpt.c) while the parent goes on serving; the pause is the fork itself
 * (page-table copy), logged with each checkpoint.
 *
 * Shutdown: *stop (set by SIGTERM/SIGINT in main) or a SHUTDOWN request ends
 * the loop after the message in hand; replies already queued are flushed by
 * the socket's linger period when it closes. */
#include "ps_server.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "ps_ckpt.h"
#include "ps_keycache.h"
#include "ps_table.h"
#include "zps_codec.h"
#include "zps_curve.h"
#include "zps_err.h"
#include "zps_modelfile.h"
#include "zps_msg.h"
#include "zps_place.h"
#include "zps_time.h"
#include "zps_vcodec.h"

#define PS_CHUNK 256

typedef struct {
    ps_table_t *t;
    ps_optim_conf_t o;
    uint32_t dim;
    int needs_init;
    char desc[256];
} ps_tab_t;

/* After a restore, per worker rank (same process as in the checkpoint):
 * the checkpoint's applied count, acks this server has sent since, and the
 * best estimate of the acks the client had before the crash. */
typedef struct {
    uint64_t ckpt_applied, ckpt_seq, acks_sent, pre_acks;
    uint64_t ckpt_resent;   /* pushes in the checkpoint whose ack the crash ate (resent) */
    uint64_t resent_seq;    /* the last one counted (a push may be resent twice) */
    uint64_t acked_seq;     /* highest push acknowledged since the restore: a second
                               copy of a push is acknowledged again, but the client
                               counts each push once */
    uint64_t lost;          /* current estimate */
    int active;
} ps_lost_t;

typedef struct {
    uint64_t finished;   /* last finished clock */
    int64_t last_seen;   /* ms */
    int alive, done;
} ps_wstate_t;

struct ps_server {
    ps_server_conf_t conf;
    zps_log_t *log;
    void *ctx, *sock;
    char endpoint[256];
    ps_tab_t tabs[PS_MAX_TABLES];
    uint64_t *keys;
    size_t keys_cap;
    float *fscratch;
    size_t fscratch_cap;
    float *rows[PS_CHUNK];
    uint8_t ins[PS_CHUNK];
    ps_server_stats_t st;
    int64_t start_ms;
    int shutdown;
    /* consistency */
    ps_wstate_t *workers;
    uint64_t min_clock;          /* UINT64_MAX: no live worker */
    zps_msg_t **held;            /* pulls waiting for the slowest worker */
    size_t nheld, held_cap;
    ps_table_t *acc;             /* bsp accumulator (row = dim floats) */
    uint64_t acc_examples;
    int acc_mean, acc_dirty;
    int64_t last_check_ms;
    ps_keycache_t *kc;           /* key caching */
    /* exactly once, progress, checkpoints */
    ps_ckpt_client_t *clients;   /* per worker rank */
    ps_lost_t *lost;             /* per rank: what a restore lost (see s_account_lost) */
    uint32_t nclients;
    int restored;
    pid_t ckpt_pid;
    int64_t ckpt_last_ms, ckpt_started_ms;
    uint64_t ckpt_counter;
    /* CURVE */
    void *zap;                   /* ZAP handler socket (REP on inproc://zeromq.zap.01) */
    char (*allowed)[ZPS_Z85_LEN + 1];
    size_t nallowed;
    char rejected[64][64];       /* peer addresses already logged */
    size_t nrejected;
    uint64_t rng;                /* stochastic rounding of compressed pull replies */
};

static int s_restore(ps_server_t *s, char *err, size_t errlen);

void ps_server_conf_defaults(ps_server_conf_t *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->bind, sizeof c->bind, "tcp://127.0.0.1:0");
    c->rank = 0;
    c->nservers = 1;
    c->ntables = 1;
    ps_optim_defaults(&c->tables[0], PS_OPT_SGD);
    c->capacity_hint = 1 << 20;
    c->max_msg_bytes = 1ULL << 30;
    c->max_keys = 1ULL << 26;
}

/* tcp://host:0 -> tcp://host:* (ZeroMQ's spelling of "any free port"). */
static void s_bind_spec(const char *in, char *out, size_t len)
{
    size_t n = strlen(in);
    if (n >= 2 && strcmp(in + n - 2, ":0") == 0)
        snprintf(out, len, "%.*s:*", (int)(n - 2), in);
    else
        snprintf(out, len, "%s", in);
}

static int s_write_ready(const char *path, const char *endpoint)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    fprintf(f, "%s\n", endpoint);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        return -errno;
    return 0;
}

ps_server_t *ps_server_new(const ps_server_conf_t *conf, zps_log_t *log, char *err, size_t errlen)
{
    ps_server_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->conf = *conf;
    s->log = log;
    s->start_ms = zps_now_ms();
    if (conf->nservers == 0 || conf->rank >= conf->nservers) {
        snprintf(err, errlen, "rank %u is not within %u servers", conf->rank, conf->nservers);
        goto fail;
    }
    if (conf->ntables == 0 || conf->ntables > PS_MAX_TABLES) {
        snprintf(err, errlen, "need 1..%d tables, got %u", PS_MAX_TABLES, conf->ntables);
        goto fail;
    }
    for (uint32_t i = 0; i < conf->ntables; i++) {
        ps_tab_t *tb = &s->tabs[i];
        char why[200];
        tb->o = conf->tables[i];
        if (ps_optim_validate(&tb->o, why, sizeof why)) {
            snprintf(err, errlen, "table %u: %s", i, why);
            goto fail;
        }
        tb->dim = tb->o.dim;
        if (tb->dim > 1024) {
            snprintf(err, errlen, "table %u: dim %u is over the limit of 1024", i, tb->dim);
            goto fail;
        }
        tb->needs_init = tb->o.init_scale != 0.0f;
        ps_optim_describe(&tb->o, tb->desc, sizeof tb->desc);
        tb->t = ps_table_new(ps_optim_row_floats(&tb->o), conf->capacity_hint);
        if (!tb->t) {
            snprintf(err, errlen, "table %u: cannot allocate for %llu keys", i,
                     (unsigned long long)conf->capacity_hint);
            goto fail;
        }
    }
    s->min_clock = UINT64_MAX;
    s->rng = 0x853c49e6748fea9bULL + conf->rank;
    s->kc = ps_keycache_new(1024, 32u << 20);
    if (!s->kc) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (conf->consistency) {
        if (conf->num_workers == 0 || conf->num_workers > 65536) {
            snprintf(err, errlen, "ssp/bsp need the worker count (--num-workers), got %u",
                     conf->num_workers);
            goto fail;
        }
        s->workers = calloc(conf->num_workers, sizeof *s->workers);
        if (!s->workers) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        for (uint32_t w = 0; w < conf->num_workers; w++) {
            s->workers[w].alive = 1;
            s->workers[w].last_seen = s->start_ms;
        }
        s->min_clock = 0;
    }
    s->ctx = zmq_ctx_new();
    s->sock = s->ctx ? zmq_socket(s->ctx, ZMQ_ROUTER) : NULL;
    if (!s->sock) {
        snprintf(err, errlen, "cannot create ZeroMQ socket: %s", zmq_strerror(errno));
        goto fail;
    }
    if (conf->curve_secret[0]) {
        zps_curve_pair_t pair;
        char why[1300];
        if (zps_curve_read(conf->curve_secret, &pair, why, sizeof why) != 0 || !pair.secret_z85[0]) {
            snprintf(err, errlen, "%s", pair.public_z85[0] && !pair.secret_z85[0]
                                           ? "--curve-secret needs a .key file (with the secret key)"
                                           : why);
            goto fail;
        }
        if (!conf->allow_dir[0]) {
            snprintf(err, errlen, "--curve-secret needs --allow-dir DIR with the clients' .pub files");
            goto fail;
        }
        if (zps_curve_read_dir(conf->allow_dir, &s->allowed, &s->nallowed, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s", why);
            goto fail;
        }
        /* the ZAP handler must exist before the socket binds */
        s->zap = zmq_socket(s->ctx, ZMQ_REP);
        if (!s->zap || zmq_bind(s->zap, "inproc://zeromq.zap.01") != 0) {
            snprintf(err, errlen, "cannot start the ZAP handler: %s", zmq_strerror(errno));
            goto fail;
        }
        int one = 1;
        zmq_setsockopt(s->sock, ZMQ_CURVE_SERVER, &one, sizeof one);
        zmq_setsockopt(s->sock, ZMQ_CURVE_SECRETKEY, pair.secret_z85, ZPS_Z85_LEN);
        zmq_setsockopt(s->sock, ZMQ_ZAP_DOMAIN, "zps", 3);
        zps_info(log, "CURVE on: %zu client keys allowed from %s", s->nallowed, conf->allow_dir);
    }
    int64_t maxmsg = (int64_t)conf->max_msg_bytes;
    int hwm = 100000, linger = 2000;
    zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof linger);
    char spec[300];
    s_bind_spec(conf->bind, spec, sizeof spec);
    if (zmq_bind(s->sock, spec) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", conf->bind, zmq_strerror(errno));
        goto fail;
    }
    size_t elen = sizeof s->endpoint;
    zmq_getsockopt(s->sock, ZMQ_LAST_ENDPOINT, s->endpoint, &elen);
    if (conf->restore) {
        char why[1300];
        if (s_restore(s, why, sizeof why) != 0) {
            snprintf(err, errlen, "cannot restore: %s", why);
            goto fail;
        }
    }
    s->ckpt_last_ms = zps_now_ms();
    if (conf->ready_file[0]) {
        int rc = s_write_ready(conf->ready_file, s->endpoint);
        if (rc) {
            snprintf(err, errlen, "cannot write ready file %s: %s", conf->ready_file,
                     zps_strerror(rc));
            goto fail;
        }
    }
    return s;
fail:
    ps_server_destroy(&s);
    return NULL;
}

void ps_server_destroy(ps_server_t **sp)
{
    if (!sp || !*sp)
        return;
    ps_server_t *s = *sp;
    if (s->sock)
        zmq_close(s->sock);
    if (s->zap)
        zmq_close(s->zap);
    free(s->allowed);
    if (s->ctx)
        zmq_ctx_term(s->ctx);
    for (int i = 0; i < PS_MAX_TABLES; i++)
        ps_table_destroy(&s->tabs[i].t);
    for (size_t i = 0; i < s->nheld; i++) {
        zps_msg_close(s->held[i]);
        free(s->held[i]);
    }
    free(s->held);
    ps_table_destroy(&s->acc);
    ps_keycache_destroy(&s->kc);
    if (s->ckpt_pid > 0)
        waitpid(s->ckpt_pid, NULL, 0);
    free(s->clients);
    free(s->lost);
    free(s->workers);
    free(s->keys);
    free(s->fscratch);
    free(s);
    *sp = NULL;
}

const char *ps_server_endpoint(const ps_server_t *s) { return s->endpoint; }
uint32_t ps_server_ntables(const ps_server_t *s) { return s->conf.ntables; }

void ps_server_get_stats(const ps_server_t *s, ps_server_stats_t *out)
{
    *out = s->st;
    out->keys_stored = 0;
    out->bytes_used = 0;
    for (uint32_t i = 0; i < s->conf.ntables; i++) {
        out->keys_stored += ps_table_size(s->tabs[i].t);
        out->bytes_used += ps_table_bytes(s->tabs[i].t);
    }
    out->uptime_ms = (uint64_t)(zps_now_ms() - s->start_ms);
    out->min_clock = s->min_clock == UINT64_MAX ? 0 : s->min_clock;
}

int ps_server_save(ps_server_t *s, const char *dir, char *err, size_t errlen)
{
    ps_tab_t *tb = &s->tabs[0];
    int64_t t0 = zps_now_ms();
    zps_mf_writer_t *w = zps_mf_writer_new(dir, s->conf.rank, s->conf.nservers, tb->dim, err, errlen);
    if (!w)
        return ZPS_EIO;
    float wbuf[1024];
    size_t cursor = 0;
    uint64_t key;
    float *row;
    int rc = 0;
    while (!rc && ps_table_next(tb->t, &cursor, &key, &row)) {
        ps_optim_weights(&tb->o, row, wbuf);
        rc = zps_mf_writer_add(w, key, wbuf);
    }
    int rc2 = zps_mf_writer_close(&w, err, errlen);
    if (rc && !rc2)
        snprintf(err, errlen, "writing shard to %s failed", dir);
    rc = rc ? rc : rc2;
    if (!rc && s->conf.rank == 0)
        rc = zps_mf_write_manifest(dir, s->conf.model_name[0] ? s->conf.model_name : "kv",
                                   tb->dim, s->conf.nservers, tb->desc, s->conf.options, err,
                                   errlen);
    if (!rc)
        zps_info(s->log, "saved %zu keys to %s in %lld ms", ps_table_size(tb->t), dir,
                 (long long)(zps_now_ms() - t0));
    return rc;
}

/* ---- replies ------------------------------------------------------------ */

static void s_send(ps_server_t *s, zps_msg_t *m, Zps__Envelope *env, void *keys, size_t klen,
                   void *vals, size_t vlen)
{
    size_t wire = 0;
    int rc = zps_msg_send(s->sock, &m->ident, env, keys, klen, vals, vlen, &wire);
    if (rc)
        zps_log_limited(s->log, 1, 1000, "reply to %s failed: %s", m->peer, zps_strerror(rc));
    s->st.bytes_out += wire;
}

static void s_reply_error(ps_server_t *s, zps_msg_t *m, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void s_reply_error(ps_server_t *s, zps_msg_t *m, int code, const char *fmt, ...)
{
    char text[512];
    int n = snprintf(text, sizeof text, "server %u: ", s->conf.rank);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + n, sizeof text - (size_t)n, fmt, ap);
    va_end(ap);
    s->st.errors++;
    zps_log_limited(s->log, 0, 1000, "rejected request from %s%s%s/%u: %s", m->peer,
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
    env.body_case = ZPS__ENVELOPE__BODY_ERROR;
    env.error = &body;
    s_send(s, m, &env, NULL, 0, NULL, 0);
}

/* ---- authentication (ZAP, RFC 27) ------------------------------------------------- */

/* Answer one ZAP request: a CURVE client gets in iff its public key is in
 * the allow directory.  Each refused peer address is logged once. */
static void s_on_zap(ps_server_t *s)
{
    zmq_msg_t part[8];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s->zap, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        if (n < 8)
            part[n++] = m;
        else
            zmq_msg_close(&m);
    }
    if (n < 6)
        goto out;
    char mech[16] = "", addr[64] = "?", key[ZPS_Z85_LEN + 1] = "";
    snprintf(mech, sizeof mech, "%.*s", (int)zmq_msg_size(&part[5]), (char *)zmq_msg_data(&part[5]));
    snprintf(addr, sizeof addr, "%.*s", (int)zmq_msg_size(&part[3]), (char *)zmq_msg_data(&part[3]));
    int ok = 0;
    if (!strcmp(mech, "CURVE") && n >= 7 && zmq_msg_size(&part[6]) == 32) {
        zmq_z85_encode(key, zmq_msg_data(&part[6]), 32);
        for (size_t i = 0; i < s->nallowed && !ok; i++)
            ok = !strcmp(s->allowed[i], key);
    }
    if (!ok) {
        int seen = 0;
        for (size_t i = 0; i < s->nrejected && !seen; i++)
            seen = !strcmp(s->rejected[i], addr);
        if (!seen) {
            if (s->nrejected < 64)
                snprintf(s->rejected[s->nrejected++], 64, "%s", addr);
            zps_warn(s->log, "refused a connection from %s: %s key %s is not in %s", addr, mech,
                     key[0] ? key : "(none)", s->conf.allow_dir);
        }
    }
    /* reply: version, request id, status code, status text, user id, metadata */
    zmq_send(s->zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(s->zap, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]), ZMQ_SNDMORE);
    zmq_send(s->zap, ok ? "200" : "400", 3, ZMQ_SNDMORE);
    zmq_send(s->zap, ok ? "OK" : "key not allowed", ok ? 2 : 15, ZMQ_SNDMORE);
    zmq_send(s->zap, "", 0, ZMQ_SNDMORE);
    zmq_send(s->zap, "", 0, 0);
out:
    for (int i = 0; i < n; i++)
        zmq_msg_close(&part[i]);
}

/* ---- exactly once, progress, checkpoints ------------------------------------------ */

static ps_ckpt_client_t *s_client_rec(ps_server_t *s, uint32_t rank)
{
    if (rank >= 65536)
        return NULL;
    if (rank >= s->nclients) {
        uint32_t n = rank + 1 > 2 * s->nclients ? rank + 1 : 2 * s->nclients;
        ps_ckpt_client_t *c = realloc(s->clients, n * sizeof *c);
        ps_lost_t *l = realloc(s->lost, n * sizeof *l);
        if (c)
            s->clients = c;
        if (l)
            s->lost = l;
        if (!c || !l)
            return NULL;
        memset(c + s->nclients, 0, (n - s->nclients) * sizeof *c);
        memset(l + s->nclients, 0, (n - s->nclients) * sizeof *l);
        for (uint32_t i = s->nclients; i < n; i++)
            c[i].rank = i;
        s->nclients = n;
    }
    return &s->clients[rank];
}

static void s_ckpt_info(const ps_server_t *s, ps_ckpt_info_t *info)
{
    memset(info, 0, sizeof *info);
    info->rank = s->conf.rank;
    info->nservers = s->conf.nservers;
    info->dim = s->tabs[0].dim;
    info->row_floats = ps_table_row_floats(s->tabs[0].t);
    snprintf(info->desc, sizeof info->desc, "%s", s->tabs[0].desc);
}

/* Start a checkpoint in a forked child (copy-on-write snapshot). */
static void s_checkpoint_fork(ps_server_t *s)
{
    ps_ckpt_info_t info;
    s_ckpt_info(s, &info);
    info.counter = ++s->ckpt_counter;
    int64_t t0 = zps_now_ns();
    fflush(NULL);
    pid_t pid = fork();
    double pause_ms = (double)(zps_now_ns() - t0) / 1e6;
    if (pid < 0) {
        zps_error(s->log, "checkpoint %llu: fork failed: %s", (unsigned long long)info.counter,
                  strerror(errno));
        return;
    }
    if (pid == 0) {
        char err[1300];
        int rc = ps_ckpt_write(s->conf.checkpoint_dir, &info, s->tabs[0].t, s->clients,
                               s->nclients, (int)s->conf.checkpoint_keep, err, sizeof err);
        if (rc)
            zps_error(s->log, "checkpoint %llu failed: %s", (unsigned long long)info.counter, err);
        _exit(rc ? 1 : 0);
    }
    s->ckpt_pid = pid;
    s->ckpt_started_ms = zps_now_ms();
    zps_info(s->log, "checkpoint %llu started: %zu keys, serving paused %.2f ms for the fork",
             (unsigned long long)info.counter, ps_table_size(s->tabs[0].t), pause_ms);
}

/* Reap a finished checkpoint child; wait for it if block. */
static void s_checkpoint_reap(ps_server_t *s, int block)
{
    if (s->ckpt_pid <= 0)
        return;
    int status;
    pid_t r = waitpid(s->ckpt_pid, &status, block ? 0 : WNOHANG);
    if (r == 0)
        return;
    if (r == s->ckpt_pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        s->st.checkpoints++;
        zps_info(s->log, "checkpoint %llu written in %lld ms", (unsigned long long)s->ckpt_counter,
                 (long long)(zps_now_ms() - s->ckpt_started_ms));
    } else {
        zps_error(s->log, "checkpoint %llu was not written (see above); the previous one is intact",
                  (unsigned long long)s->ckpt_counter);
    }
    s->ckpt_pid = 0;
    s->ckpt_last_ms = zps_now_ms();
}

static void s_checkpoint_tick(ps_server_t *s)
{
    if (!s->conf.checkpoint_dir[0] || !s->conf.checkpoint_every_ms)
        return;
    s_checkpoint_reap(s, 0);
    if (s->ckpt_pid == 0 && zps_now_ms() - s->ckpt_last_ms >= (int64_t)s->conf.checkpoint_every_ms)
        s_checkpoint_fork(s);
}

/* Final checkpoint at shutdown, in process. */
static int s_checkpoint_final(ps_server_t *s)
{
    s_checkpoint_reap(s, 1);
    ps_ckpt_info_t info;
    s_ckpt_info(s, &info);
    info.counter = ++s->ckpt_counter;
    char err[1300];
    int64_t t0 = zps_now_ms();
    int rc = ps_ckpt_write(s->conf.checkpoint_dir, &info, s->tabs[0].t, s->clients, s->nclients,
                           (int)s->conf.checkpoint_keep, err, sizeof err);
    if (rc)
        zps_error(s->log, "final checkpoint failed: %s", err);
    else
        zps_info(s->log, "final checkpoint %llu written: %zu keys in %lld ms",
                 (unsigned long long)info.counter, ps_table_size(s->tabs[0].t),
                 (long long)(zps_now_ms() - t0));
    return rc;
}

static int s_restore(ps_server_t *s, char *err, size_t errlen)
{
    ps_ckpt_info_t info;
    s_ckpt_info(s, &info);
    ps_ckpt_client_t *cl = NULL;
    size_t ncl = 0;
    int64_t t0 = zps_now_ms();
    int rc = ps_ckpt_restore(s->conf.checkpoint_dir, &info, s->tabs[0].t, &cl, &ncl, s->log, err,
                             errlen);
    if (rc == 1) {
        zps_warn(s->log, "--restore: no checkpoint of shard %u in %s; starting empty",
                 s->conf.rank, s->conf.checkpoint_dir);
        return 0;
    }
    if (rc)
        return rc;
    uint64_t pushes = 0;
    for (size_t i = 0; i < ncl; i++) {
        ps_ckpt_client_t *r = s_client_rec(s, cl[i].rank);
        if (r) {
            *r = cl[i];
            s->lost[cl[i].rank].ckpt_applied = cl[i].applied;
            s->lost[cl[i].rank].ckpt_seq = cl[i].last_seq;
            s->lost[cl[i].rank].active = 1;
        }
        pushes += cl[i].applied;
    }
    free(cl);
    s->ckpt_counter = info.counter;
    s->restored = 1;
    s->st.restored_pushes = pushes;
    zps_info(s->log, "restored checkpoint %llu: %zu keys, %llu pushes from %zu workers, in %lld ms",
             (unsigned long long)info.counter, ps_table_size(s->tabs[0].t),
             (unsigned long long)pushes, ncl, (long long)(zps_now_ms() - t0));
    return 0;
}

/* ---- clocks (ssp, bsp) -------------------------------------------------------- */

static void s_on_pull(ps_server_t *s, zps_msg_t *m);

/* The clock state of the worker that sent m, or NULL (async, not a worker). */
static ps_wstate_t *s_worker_of(ps_server_t *s, const zps_msg_t *m)
{
    if (!s->workers || !m->env || m->env->role != ZPS__ROLE__ROLE_WORKER ||
        m->env->rank >= s->conf.num_workers)
        return NULL;
    return &s->workers[m->env->rank];
}

static uint64_t s_compute_min(const ps_server_t *s)
{
    uint64_t mn = UINT64_MAX;
    for (uint32_t w = 0; w < s->conf.num_workers; w++)
        if (s->workers[w].alive && !s->workers[w].done && s->workers[w].finished < mn)
            mn = s->workers[w].finished;
    return mn;
}

static int s_pull_ready(const ps_server_t *s, uint64_t clock)
{
    if (s->min_clock == UINT64_MAX || clock == 0)
        return 1;
    uint64_t bound = s->conf.consistency == 2 ? 0 : s->conf.staleness;
    return clock <= s->min_clock + bound + 1;
}

/* bsp: apply the combined gradient of the finished clock once. */
static void s_bsp_apply(ps_server_t *s)
{
    if (!s->acc || !s->acc_dirty)
        return;
    ps_tab_t *tb = &s->tabs[0];
    float scale = s->acc_mean && s->acc_examples ? 1.0f / (float)s->acc_examples : 1.0f;
    float g[1024 + 1]; /* a push has up to dim + 1 floats (ps_optim_push_floats) */
    size_t cursor = 0;
    uint64_t key;
    float *arow;
    while (ps_table_next(s->acc, &cursor, &key, &arow)) {
        int ins = 0;
        float *row = ps_table_upsert(tb->t, key, &ins);
        if (!row) {
            zps_error(s->log, "out of memory applying clock %llu", (unsigned long long)s->min_clock);
            break;
        }
        if (ins && tb->needs_init)
            ps_optim_init_row(&tb->o, key, row);
        for (uint32_t j = 0; j < ps_optim_push_floats(&tb->o); j++)
            g[j] = arow[j] * scale;
        ps_optim_apply(&tb->o, row, g);
    }
    ps_table_destroy(&s->acc);
    s->acc_examples = 0;
    s->acc_dirty = 0;
    s->st.clocks_applied++;
}

/* The slowest worker may have moved: apply bsp clocks, answer held pulls. */
static void s_advance(ps_server_t *s)
{
    uint64_t old = s->min_clock, mn = s_compute_min(s);
    s->min_clock = mn;
    if (s->conf.consistency == 2 && mn != old)
        s_bsp_apply(s);
    size_t keep = 0;
    for (size_t i = 0; i < s->nheld; i++) {
        zps_msg_t *h = s->held[i];
        if (s_pull_ready(s, h->env->pull->clock)) {
            s_on_pull(s, h);
            zps_msg_close(h);
            free(h);
        } else {
            s->held[keep++] = h;
        }
    }
    s->nheld = keep;
}

/* Any message from a worker: it is alive.  A dropped worker rejoins,
 * fast-forwarded to the slowest live worker so it stalls no one. */
static void s_touch(ps_server_t *s, zps_msg_t *m)
{
    ps_wstate_t *w = s_worker_of(s, m);
    if (!w)
        return;
    w->last_seen = zps_now_ms();
    if (!w->alive || w->done) {
        uint64_t mn = s_compute_min(s);
        w->alive = 1;
        w->done = 0;
        if (mn != UINT64_MAX && w->finished < mn)
            w->finished = mn;
        zps_info(s->log, "worker %u at %s rejoined the clock at %llu", m->env->rank, m->peer,
                 (unsigned long long)w->finished);
        s_advance(s);
    }
}

static void s_finish_clock(ps_server_t *s, ps_wstate_t *w, uint64_t clock)
{
    if (clock > w->finished)
        w->finished = clock;
    s_advance(s);
}

/* Drop workers that have been silent for longer than the heartbeat timeout. */
static void s_check_heartbeats(ps_server_t *s)
{
    if (!s->workers)
        return;
    int64_t now = zps_now_ms();
    if (now - s->last_check_ms < 100)
        return;
    s->last_check_ms = now;
    int changed = 0;
    for (uint32_t i = 0; i < s->conf.num_workers; i++) {
        ps_wstate_t *w = &s->workers[i];
        if (w->alive && !w->done && now - w->last_seen > (int64_t)s->conf.heartbeat_timeout_ms) {
            w->alive = 0;
            changed = 1;
            s->st.workers_dropped++;
            zps_warn(s->log, "worker %u silent for %.1f s (clock %llu): dropped from the clock, "
                     "the others go on", i, (double)(now - w->last_seen) / 1000.0,
                     (unsigned long long)w->finished);
        }
    }
    if (changed)
        s_advance(s);
}

static void s_hold(ps_server_t *s, zps_msg_t *m)
{
    if (s->nheld == s->held_cap) {
        size_t cap = s->held_cap ? 2 * s->held_cap : 16;
        zps_msg_t **h = realloc(s->held, cap * sizeof *h);
        if (!h)
            return; /* cannot hold: the pull is answered late by its timeout */
        s->held = h;
        s->held_cap = cap;
    }
    zps_msg_t *c = malloc(sizeof *c);
    if (!c)
        return;
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
    memcpy(c->peer, m->peer, sizeof c->peer);
    s->held[s->nheld++] = c;
    s->st.pull_waits++;
}

static void s_on_clock(ps_server_t *s, zps_msg_t *m)
{
    ps_wstate_t *w = s_worker_of(s, m);
    if (w) {
        s_finish_clock(s, w, m->env->clock->clock);
        if (m->env->clock->done) {
            w->done = 1;
            zps_info(s->log, "worker %u finished at clock %llu", m->env->rank,
                     (unsigned long long)w->finished);
            s_advance(s);
        }
    }
    Zps__Envelope env;
    zps_msg_env(&env, ZPS__MSG_TYPE__CLOCK_ACK, ZPS__ROLE__ROLE_SERVER, s->conf.rank,
                m->env->request_id);
    s_send(s, m, &env, NULL, 0, NULL, 0);
}

/* ---- request handlers ------------------------------------------------------ */

/* Decode and validate the key frame of a pull or push.  On failure the error
 * has been answered and a non-zero code is returned. */
static int s_take_keys(ps_server_t *s, zps_msg_t *m, uint32_t table, uint64_t nkeys,
                       uint64_t sig)
{
    if (table >= s->conf.ntables) {
        s_reply_error(s, m, ZPS_EINVAL, "table %u does not exist (server has %u)", table,
                      s->conf.ntables);
        return ZPS_EINVAL;
    }
    if (nkeys > s->conf.max_keys) {
        s_reply_error(s, m, ZPS_ETOOBIG, "%llu keys in one request, limit is %llu",
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
            s_reply_error(s, m, ZPS_EKEYCACHE, "key list %016llx is not cached (resend it)",
                          (unsigned long long)sig);
            return ZPS_EKEYCACHE;
        }
        s->st.key_cache_hits++;
        if (s->keys_cap < nkeys) {
            uint64_t *k = realloc(s->keys, nkeys * sizeof *k);
            if (!k) {
                s_reply_error(s, m, ZPS_ENOMEM, "out of memory for %llu keys",
                              (unsigned long long)nkeys);
                return ZPS_ENOMEM;
            }
            s->keys = k;
            s->keys_cap = nkeys;
        }
        memcpy(s->keys, cached, nkeys * sizeof *s->keys);
        return 0; /* was validated when it was cached */
    }
    if (len < nkeys || len > zps_keys_bound(nkeys)) {
        s_reply_error(s, m, ZPS_EPROTO, "key frame of %zu bytes cannot hold %llu keys", len,
                      (unsigned long long)nkeys);
        return ZPS_EPROTO;
    }
    if (s->keys_cap < nkeys) {
        uint64_t *k = realloc(s->keys, nkeys * sizeof *k);
        if (!k) {
            s_reply_error(s, m, ZPS_ENOMEM, "out of memory for %llu keys",
                          (unsigned long long)nkeys);
            return ZPS_ENOMEM;
        }
        s->keys = k;
        s->keys_cap = nkeys;
    }
    size_t at = 0;
    if (zps_keys_decode(buf, len, nkeys, s->keys, &at) != 0) {
        s_reply_error(s, m, ZPS_EPROTO, "malformed key frame at byte %zu of %zu", at, len);
        return ZPS_EPROTO;
    }
    if (s->conf.nservers > 1) {
        for (uint64_t i = 0; i < nkeys; i++) {
            uint32_t owner = zps_place(s->keys[i], s->conf.nservers);
            if (owner != s->conf.rank) {
                s_reply_error(s, m, ZPS_EINVAL, "key %llu belongs to server %u, not to this one",
                              (unsigned long long)s->keys[i], owner);
                return ZPS_EINVAL;
            }
        }
    }
    if (sig && nkeys) {
        if (zps_keys_sig(s->keys, nkeys) != sig) {
            s_reply_error(s, m, ZPS_EPROTO, "key list signature %016llx does not match its keys",
                          (unsigned long long)sig);
            return ZPS_EPROTO;
        }
        ps_keycache_put(s->kc, sig, s->keys, nkeys); /* a list over the bound is just not cached */
    }
    return 0;
}

static void s_on_hello(ps_server_t *s, zps_msg_t *m)
{
    Zps__Envelope env;
    Zps__HelloReply body = ZPS__HELLO_REPLY__INIT;
    Zps__TableInfo info[PS_MAX_TABLES], *infop[PS_MAX_TABLES];
    char names[PS_MAX_TABLES][16];
    for (uint32_t i = 0; i < s->conf.ntables; i++) {
        zps__table_info__init(&info[i]);
        info[i].id = i;
        info[i].dim = s->tabs[i].dim;
        snprintf(names[i], sizeof names[i], "%s", ps_optim_kind_name(s->tabs[i].o.kind));
        info[i].optimizer = names[i];
        info[i].options = s->tabs[i].desc;
        infop[i] = &info[i];
    }
    body.server_rank = s->conf.rank;
    body.num_servers = s->conf.nservers;
    body.n_tables = s->conf.ntables;
    body.tables = infop;
    body.server_version = ZPS_VERSION;
    body.job = s->conf.job;
    if (m->env->role == ZPS__ROLE__ROLE_WORKER && m->env->rank < s->nclients &&
        s->clients[m->env->rank].has_progress) {
        body.has_progress = 1;
        body.progress_epoch = s->clients[m->env->rank].progress_epoch;
        body.progress_rows = s->clients[m->env->rank].progress_rows;
    }
    zps_msg_env(&env, ZPS__MSG_TYPE__HELLO_REPLY, ZPS__ROLE__ROLE_SERVER, s->conf.rank,
                m->env->request_id);
    env.body_case = ZPS__ENVELOPE__BODY_HELLO_REPLY;
    env.hello_reply = &body;
    s->st.hellos++;
    zps_info(s->log, "hello from %s/%u at %s (version %s)",
             m->env->role == ZPS__ROLE__ROLE_WORKER ? "worker" : "client", m->env->rank, m->peer,
             m->env->hello->client_version[0] ? m->env->hello->client_version : "?");
    s_send(s, m, &env, NULL, 0, NULL, 0);
}

static void s_on_pull(ps_server_t *s, zps_msg_t *m)
{
    const Zps__Pull *req = m->env->pull;
    if (s_worker_of(s, m)) {
        if (!s_pull_ready(s, req->clock)) {
            s_hold(s, m);
            return;
        }
        if (s->min_clock != UINT64_MAX && req->clock > s->min_clock + 1 &&
            req->clock - 1 - s->min_clock > s->st.max_staleness)
            s->st.max_staleness = req->clock - 1 - s->min_clock;
    }
    if (s_take_keys(s, m, req->table, req->nkeys, req->key_sig))
        return;
    ps_tab_t *tb = &s->tabs[req->table];
    size_t n = req->nkeys, dim = tb->dim;
    if (req->value_codec > ZPS_VC_INT8) {
        s_reply_error(s, m, ZPS_EINVAL, "unknown value codec %u", req->value_codec);
        return;
    }
    float *vals = n ? malloc(n * dim * sizeof(float)) : NULL;
    if (n && !vals) {
        s_reply_error(s, m, ZPS_ENOMEM, "out of memory for a reply of %zu keys", n);
        return;
    }
    for (size_t i = 0; i < n; i += PS_CHUNK) {
        size_t c = n - i < PS_CHUNK ? n - i : PS_CHUNK;
        ps_table_find_batch(tb->t, s->keys + i, c, s->rows);
        for (size_t j = 0; j < c; j++) {
            float *w = vals + (i + j) * dim;
            if (s->rows[j])
                ps_optim_weights(&tb->o, s->rows[j], w);
            else if (tb->needs_init)
                ps_optim_initial_weights(&tb->o, s->keys[i + j], w);
            else
                memset(w, 0, dim * sizeof(float));
        }
    }
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
            s_reply_error(s, m, ZPS_ENOMEM, "out of memory for a reply of %zu keys", n);
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
    s_send(s, m, &env, NULL, 0, vals, vbytes);
}

static void s_on_push(ps_server_t *s, zps_msg_t *m)
{
    const Zps__Push *req = m->env->push;
    if (s_take_keys(s, m, req->table, req->nkeys, req->key_sig))
        return;
    ps_tab_t *tb = &s->tabs[req->table];
    size_t n = req->nkeys, dim = ps_optim_push_floats(&tb->o); /* norm: + max |x| */
    if (req->dim != dim) {
        s_reply_error(s, m, ZPS_EMISMATCH, "push of dim %u to table %u of dim %zu", req->dim,
                      req->table, dim);
        return;
    }
    const float *g;
    if (req->value_codec != ZPS_VC_F32) {
        size_t vlen;
        const uint8_t *vb = zps_msg_bulk(m, 1, &vlen);
        g = NULL;
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
        if (!g) {
            s_reply_error(s, m, ZPS_EPROTO, "value frame of %zu bytes is not %zu values in codec %u",
                          vlen, n * dim, req->value_codec);
            return;
        }
    } else {
        g = zps_msg_floats(m, 1, n * dim, &s->fscratch, &s->fscratch_cap);
    }
    if (!g) {
        size_t vlen;
        zps_msg_bulk(m, 1, &vlen);
        s_reply_error(s, m, ZPS_EPROTO, "value frame of %zu bytes, expected %zu (%zu keys x %zu)",
                      vlen, n * dim * sizeof(float), n, dim);
        return;
    }
    for (size_t i = 0; i < n * dim; i++) {
        if (!isfinite(g[i])) {
            s_reply_error(s, m, ZPS_EINVAL,
                          "non-finite gradient %g for key %llu: push rejected, nothing applied",
                          (double)g[i], (unsigned long long)s->keys[i / dim]);
            return;
        }
    }
    ps_wstate_t *w = s_worker_of(s, m);
    ps_ckpt_client_t *rec = req->client_nonce ? s_client_rec(s, m->env->rank) : NULL;
    int duplicate = 0;
    if (rec) {
        uint32_t rank = m->env->rank;
        if (rec->nonce != req->client_nonce) {
            if (rec->nonce)
                zps_info(s->log, "worker %u is a new process (was applied up to push %llu)", rank,
                         (unsigned long long)rec->last_seq);
            rec->nonce = req->client_nonce;
            rec->last_seq = 0;
            rec->applied = 0;
            s->lost[rank].active = 0;
        }
        /* Lost pushes after a restore: the client says how many acks it had
         * from this server when it sent this push; minus the acks this
         * server has sent it since the restore, that is a lower bound of the
         * acks it had before the crash, exact once the client has caught up
         * with our acks (it waits for them every --max-delay pushes).  What
         * the checkpoint does not contain of those was lost. */
        ps_lost_t *l = &s->lost[rank];
        if (l->active) {
            /* old acks the client had >= acked - our acks since; exact once it caught up */
            if (req->acked > l->acks_sent && req->acked - l->acks_sent > l->pre_acks)
                l->pre_acks = req->acked - l->acks_sent;
            /* a resent push the checkpoint holds: its old ack never arrived */
            if (req->seq <= l->ckpt_seq && req->seq <= rec->last_seq && req->seq > l->resent_seq) {
                l->ckpt_resent++;
                l->resent_seq = req->seq;
            }
            /* old acks = acks of checkpointed pushes that arrived + acks of lost ones */
            uint64_t got = l->ckpt_applied - (l->ckpt_resent < l->ckpt_applied ? l->ckpt_resent
                                                                              : l->ckpt_applied);
            uint64_t now = l->pre_acks > got ? l->pre_acks - got : 0;
            if (now != l->lost) {
                s->st.lost_pushes += now - l->lost;
                l->lost = now;
                zps_warn(s->log, "worker %u: %llu acknowledged pushes are not in the restored "
                         "checkpoint (applied after it, before the crash): lost",
                         rank, (unsigned long long)now);
            }
        }
        if (l->active && req->seq > l->acked_seq) {
            l->acks_sent++; /* answered below; counted once per push, as the client does */
            l->acked_seq = req->seq;
        }
        if (req->seq <= rec->last_seq)
            duplicate = 1;
        if (req->progress_epoch > rec->progress_epoch ||
            (req->progress_epoch == rec->progress_epoch && req->progress_rows > rec->progress_rows)) {
            rec->progress_epoch = req->progress_epoch;
            rec->progress_rows = req->progress_rows;
            rec->has_progress = 1;
        }
    }
    if (duplicate) {
        s->st.duplicate_pushes++;
        goto ack;
    }
    if (rec) {
        rec->last_seq = req->seq;
        rec->applied++;
    }
    s->st.applied_pushes++;
    s->st.push_raw_bytes += req->raw_bytes;
    s->st.push_wire_bytes += m->wire_bytes;
    if (w && s->conf.consistency == 2) {
        /* bsp: combine now, apply when every live worker has finished the clock */
        if (!s->acc && n) {
            s->acc = ps_table_new(dim, n * 4 < (1u << 20) ? n * 4 : (1u << 20));
            if (!s->acc) {
                s_reply_error(s, m, ZPS_ENOMEM, "out of memory for the bsp accumulator");
                return;
            }
        }
        float wgt = req->mean ? (float)req->examples : 1.0f;
        for (size_t i = 0; i < n; i++) {
            float *row = ps_table_upsert(s->acc, s->keys[i], NULL);
            if (!row) {
                s_reply_error(s, m, ZPS_ENOMEM, "out of memory for the bsp accumulator");
                return;
            }
            for (size_t j = 0; j < dim; j++)
                row[j] += wgt * g[i * dim + j];
        }
        if (n)
            s->acc_dirty = 1;
        s->acc_mean = req->mean;
        s->acc_examples += req->examples;
        goto ack;
    }
    for (size_t i = 0; i < n; i += PS_CHUNK) {
        size_t c = n - i < PS_CHUNK ? n - i : PS_CHUNK;
        if (ps_table_upsert_batch(tb->t, s->keys + i, c, s->rows, s->ins) != 0) {
            s_reply_error(s, m, ZPS_ENOMEM, "out of memory after applying %zu of %zu keys", i, n);
            return;
        }
        for (size_t j = 0; j < c; j++) {
            if (s->ins[j] && tb->needs_init)
                ps_optim_init_row(&tb->o, s->keys[i + j], s->rows[j]);
            ps_optim_apply(&tb->o, s->rows[j], g + (i + j) * dim);
        }
    }
ack:;
    Zps__Envelope env;
    Zps__PushAck body = ZPS__PUSH_ACK__INIT;
    body.table = req->table;
    body.nkeys = n;
    body.seq = req->seq;
    body.duplicate = duplicate;
    zps_msg_env(&env, ZPS__MSG_TYPE__PUSH_ACK, ZPS__ROLE__ROLE_SERVER, s->conf.rank,
                m->env->request_id);
    env.body_case = ZPS__ENVELOPE__BODY_PUSH_ACK;
    env.push_ack = &body;
    s->st.pushes++;
    s->st.keys_pushed += n;
    s_send(s, m, &env, NULL, 0, NULL, 0);
    if (w && req->tick)
        s_finish_clock(s, w, req->clock);
}

static void s_on_stats(ps_server_t *s, zps_msg_t *m)
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
    uint64_t clocks[1024];
    if (s->workers) {
        body.n_worker_clocks = s->conf.num_workers < 1024 ? s->conf.num_workers : 1024;
        for (size_t w = 0; w < body.n_worker_clocks; w++)
            clocks[w] = s->workers[w].finished;
        body.worker_clocks = clocks;
    }
    zps_msg_env(&env, ZPS__MSG_TYPE__STATS_REPLY, ZPS__ROLE__ROLE_SERVER, s->conf.rank,
                m->env->request_id);
    env.body_case = ZPS__ENVELOPE__BODY_STATS_REPLY;
    env.stats_reply = &body;
    s_send(s, m, &env, NULL, 0, NULL, 0);
}

static void s_on_shutdown(ps_server_t *s, zps_msg_t *m)
{
    zps_info(s->log, "shutdown requested by %s (rank %u): %s", m->peer, m->env->rank,
             m->env->shutdown->reason[0] ? m->env->shutdown->reason : "no reason given");
    Zps__Envelope env;
    zps_msg_env(&env, ZPS__MSG_TYPE__SHUTDOWN_ACK, ZPS__ROLE__ROLE_SERVER, s->conf.rank,
                m->env->request_id);
    s_send(s, m, &env, NULL, 0, NULL, 0);
    s->shutdown = 1;
}

static void s_handle(ps_server_t *s, zps_msg_t *m)
{
    s_touch(s, m);
    switch (m->env->body_case) {
    case ZPS__ENVELOPE__BODY_CLOCK: s_on_clock(s, m); break;
    case ZPS__ENVELOPE__BODY_HEARTBEAT: break;
    case ZPS__ENVELOPE__BODY_HELLO: s_on_hello(s, m); break;
    case ZPS__ENVELOPE__BODY_PULL: s_on_pull(s, m); break;
    case ZPS__ENVELOPE__BODY_PUSH: s_on_push(s, m); break;
    case ZPS__ENVELOPE__BODY_STATS: s_on_stats(s, m); break;
    case ZPS__ENVELOPE__BODY_SHUTDOWN: s_on_shutdown(s, m); break;
    default:
        s_reply_error(s, m, ZPS_EPROTO, "unexpected message type %s from a client",
                      zps_msg_type_name(m->env->type));
        break;
    }
}

int ps_server_run(ps_server_t *s, volatile sig_atomic_t *stop)
{
    zps_info(s->log, "serving on %s (rank %u of %u, %u table%s, table 0: %s)", s->endpoint,
             s->conf.rank, s->conf.nservers, s->conf.ntables, s->conf.ntables == 1 ? "" : "s",
             s->tabs[0].desc);
    int rc = 0;
    while (!s->shutdown && !(stop && *stop)) {
        zmq_pollitem_t it[2] = {{s->sock, 0, ZMQ_POLLIN, 0}, {s->zap, 0, ZMQ_POLLIN, 0}};
        int n = zmq_poll(it, s->zap ? 2 : 1, 250);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            zps_error(s->log, "poll failed: %s", zmq_strerror(errno));
            rc = ZPS_EIO;
            break;
        }
        if (s->zap && (it[1].revents & ZMQ_POLLIN))
            s_on_zap(s);
        s_check_heartbeats(s);
        s_checkpoint_tick(s);
        while (!s->shutdown && !(stop && *stop)) {
            zps_msg_t m;
            int r = zps_msg_recv(s->sock, 1, &m, ZMQ_DONTWAIT);
            s->st.bytes_in += m.wire_bytes;
            if (r == ZPS_EIO || r == ZPS_EINTR) {
                zps_msg_close(&m);
                break; /* EAGAIN: drained */
            }
            if (r == ZPS_EPROTO || r == ZPS_EVERSION)
                s_reply_error(s, &m, r, "%s", m.reason);
            else
                s_handle(s, &m);
            zps_msg_close(&m);
        }
    }
    ps_server_stats_t st;
    ps_server_get_stats(s, &st);
    zps_info(s->log,
             "stopping: %llu keys stored (%.1f MB), %llu pushes (%llu keys), %llu pulls (%llu keys), "
             "%llu errors",
             (unsigned long long)st.keys_stored, (double)st.bytes_used / 1e6,
             (unsigned long long)st.pushes, (unsigned long long)st.keys_pushed,
             (unsigned long long)st.pulls, (unsigned long long)st.keys_pulled,
             (unsigned long long)st.errors);
    if (s->conf.checkpoint_dir[0] && s_checkpoint_final(s) != 0)
        rc = rc ? rc : ZPS_EIO;
    if (s->conf.save_dir[0]) {
        char err[600];
        if (ps_server_save(s, s->conf.save_dir, err, sizeof err) != 0) {
            zps_error(s->log, "cannot save the model: %s", err);
            rc = rc ? rc : ZPS_EIO;
        }
    }
    return rc;
}
