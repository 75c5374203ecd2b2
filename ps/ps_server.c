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
 * number); the server keeps per rank the nonce and a dedup window
 * (ps_dedup: low-water mark + bitmap), applies each sequence once in any
 * order of arrival, records it only after the push applied, and
 * acknowledges a copy without applying it, so clients may retry freely.
 * The records are part of every checkpoint; acks carry durable_seq (the
 * low-water mark in the last written checkpoint).  A push also carries how
 * many pushes the client has had acknowledged by this server: after a
 * restore, the difference with the checkpoint's applied count is what the
 * crash took from this server, and is logged; clients keep every push
 * until durable_seq covers it and resend those, so they are applied again
 * (exactly once) rather than lost.
 *
 * All or nothing.  A push is applied in two passes: compute every row's
 * update into scratch and check it stays finite, count the new keys, check
 * --max-keys / --max-memory-mb, reserve the rows; then commit.  Any refusal
 * before the commit leaves the tables as they were.
 *
 * Who speaks.  Under CURVE the ZAP handler gives each allowed key an
 * identity (worker-R, admin, ro:NAME), read per message from the User-Id.
 * In both modes a rank is bound to one connection (s_speaks_for); pushes,
 * clocks and heartbeats count only from it.  Connections are admitted up to
 * --max-connections and forgotten when the socket monitor reports their
 * disconnect (their held pulls are dropped, their ranks unbound).
 *
 * Bounded loop.  At most drain_batch messages (or 50 ms) are handled
 * between maintenance passes (ZAP, disconnects, heartbeats, checkpoints).
 * Replies never block: a peer whose queue is full loses the reply
 * (dropped_replies).  See docs/security-server.md.
 *
 * Checkpoints fork(): the child writes the copy-on-write image of the table
 * (ps_ckpt.c) while the parent goes on serving; the pause is the fork itself
 * (page-table copy), logged with each checkpoint.
 *
 * Shutdown: *stop (set by SIGTERM/SIGINT in main) or a SHUTDOWN request ends
 * the loop after the message in hand; replies already queued are flushed by
 * the socket's linger period when it closes. */
#include "ps_server.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "ps_ckpt.h"
#include "ps_clock.h"
#include "ps_dedup.h"
#include "ps_dump.h"
#include "ps_keycache.h"
#include "zps_table.h"
#include "zps_codec.h"
#include "zps_curve.h"
#include "zps_err.h"
#include "zps_hash.h"
#include "zps_modelfile.h"
#include "zps_msg.h"
#include "zps_place.h"
#include "zps_shard.h"
#include "zps_time.h"
#include "zps_vcodec.h"

#define PS_CHUNK 256
#define PS_MAX_RANK 65536             /* ranks 0..65535 have records */
#define PS_SCRATCH_KEEP (1u << 20)    /* scratch entries kept after a bigger request */
#define PS_STATS_CLIENTS 1024         /* per-client entries in a STATS reply */
#define PS_TOKEN_MAX 256

/* rate-limit classes of zps_log (one per kind of per-peer line) */
enum {
    LC_REJECT = 0, LC_REPLY, LC_HELLO, LC_PERM, LC_ZAP, LC_CONNLIM, LC_NONFINITE, LC_SHUTDOWN,
    LC_DROPPED, LC_HEARTBEAT, LC_BIND
};

typedef struct {
    zps_shard_t *sh;     /* the rows and their optimizer (zps_shard) */
    zps_table_t *t;      /* zps_shard_table(sh) */
    zps_optim_conf_t o;
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

/* Per rank (shared by workers and tools): the client process now pushing
 * as this rank, its counters, its durable low-water mark, and the
 * connection bound to the rank (see s_speaks_for). */
typedef struct {
    uint64_t received, applied, duplicates, rejected;
    uint64_t durable_nonce, durable_seq;  /* lwm in the last written checkpoint */
    uint64_t pend_nonce, pend_seq;        /* lwm in the checkpoint being written */
    uint64_t conn;                        /* bound connection (0: none) */
    uint64_t bound_nonce;                 /* the process that bound it (0: not said) */
    int64_t last_ms;                      /* when the bound connection last spoke */
} ps_rank_t;

/* A connection seen on the ROUTER socket: key = keyed hash of its routing
 * id (0 empty, 1 deleted); fd from ZMQ_SRCFD, to forget it when the
 * socket monitor reports the disconnect. */
typedef struct {
    uint64_t key;
    int fd;
    struct ps_outc *out;   /* its reply bytes still queued in ZeroMQ (s_outq_free) */
} ps_conn_t;

/* Reply bytes of one connection still queued in ZeroMQ.  Shared by the
 * connection's entry and every reply in flight (refs); ZeroMQ's I/O thread
 * drops a reply's reference when it is done with it, the loop drops the
 * entry's when the connection is forgotten; the last one frees it. */
struct ps_outc {
    _Atomic long long bytes;
    _Atomic int refs;
};

static void s_outc_put(struct ps_outc *o)
{
    if (o && atomic_fetch_sub(&o->refs, 1) == 1)
        free(o);
}

/* An ssp/bsp pull waiting for the slowest worker. */
typedef struct {
    zps_msg_t *m;
    uint64_t conn;
    size_t bytes;
} ps_held_t;

/* An allowed CURVE key and the identity it speaks as (ZAP User-Id):
 * "admin", "worker-R" or "ro:NAME". */
typedef struct {
    char z85[ZPS_Z85_LEN + 1];
    char user[48];
} ps_key_t;

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
    float **rowp;                /* a push's rows */
    size_t rowp_cap;
    float *tmp_row, *tmp_out, *tmp_g; /* one row: the update computed before commit */
    ps_server_stats_t st;
    int64_t start_ms;
    int shutdown;
    /* consistency */
    ps_clock_t *clock;           /* ssp/bsp: the workers' clocks (NULL: async) */
    uint64_t min_clock;          /* UINT64_MAX: no live worker */
    ps_held_t *held;             /* pulls waiting for the slowest worker */
    size_t nheld, held_cap, held_bytes;
    zps_table_t *acc;             /* bsp accumulator (row = dim floats) */
    uint64_t acc_examples;
    uint64_t acc_new_keys;       /* keys the accumulator will add to table 0 */
    int acc_mean, acc_dirty;
    float acc_lr_scale;          /* smallest Push.lr_scale of the clock (0: none yet) */
    int64_t last_check_ms;
    ps_keycache_t *kc;           /* key caching */
    /* exactly once, progress, checkpoints */
    ps_ckpt_client_t *clients;   /* per worker rank */
    ps_lost_t *lost;             /* per rank: what a restore lost (see s_account_lost) */
    ps_rank_t *ranks;            /* per rank: counters, durable mark, binding */
    uint32_t nclients;
    int restored;
    pid_t ckpt_pid;
    int64_t ckpt_last_ms, ckpt_started_ms;
    uint64_t ckpt_counter;
    uint64_t job_id;             /* recorded in checkpoints (see ps_ckpt.h) */
    /* CURVE */
    void *zap;                   /* ZAP handler socket (REP on inproc://zeromq.zap.01) */
    ps_key_t *allowed;
    size_t nallowed;
    int curve;
    /* admin secret */
    char admin_token[PS_TOKEN_MAX + 1];
    size_t admin_token_len;
    /* connections */
    void *mon;                   /* socket monitor (PAIR): disconnects */
    uint16_t *fd_stale;          /* per fd: disconnect reports to ignore (see s_on_monitor) */
    size_t fd_stale_cap;
    _Atomic long long *outq;     /* reply bytes queued in ZeroMQ for all connections
                                    (one counter; per connection: ps_conn_t.out),
                                    decremented by ZeroMQ's I/O thread (s_outq_free) */
    ps_conn_t *conns;
    size_t conn_cap, nconns, conn_used;
    uint64_t id_seed;            /* keys the routing-id hash */
    uint64_t nonce;              /* this process: a new value means a restart */
    int64_t maint_ms;            /* last maintenance pass */
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
    zps_optim_defaults(&c->tables[0], ZPS_OPT_SGD);
    c->capacity_hint = 1 << 20;
    c->max_msg_bytes = 1ULL << 30;
    c->max_keys = 1ULL << 26;
    c->max_connections = 1000;
    c->max_held_per_peer = 256;
    c->max_held_total = 8192;
    c->max_held_bytes = 256ULL << 20;
    c->max_reply_bytes = 256ULL << 20;
    c->max_reply_total = 1024ULL << 20;
    c->sndhwm = 4096;
    c->drain_batch = 256;
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

/* 64 random bits (getrandom; time and pid if that fails), never 0. */
static uint64_t s_random64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v)
        v = zps_mix64((uint64_t)zps_now_ns() ^ ((uint64_t)getpid() << 40), 0x5eed);
    return v ? v : 1;
}

/* The admin token: one line of 32..256 hex characters in a regular file
 * owned by us that group and others cannot access. */
static int s_read_token(const char *path, char *out, size_t *outlen, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "--admin-token-file %s: cannot open: %s", path, strerror(errno));
        return ZPS_EIO;
    }
    struct stat st;
    char buf[PS_TOKEN_MAX + 64];
    ssize_t n = -1;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "--admin-token-file %s: %s", path, strerror(errno));
        rc = ZPS_EIO;
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "--admin-token-file %s is not a regular file", path);
        rc = ZPS_EINVAL;
    } else if (st.st_uid != geteuid()) {
        snprintf(err, errlen, "--admin-token-file %s is not owned by this user (uid %u)", path,
                 (unsigned)geteuid());
        rc = ZPS_EPERM;
    } else if (st.st_mode & 077) {
        snprintf(err, errlen, "--admin-token-file %s is accessible to group or others (mode %03o): "
                 "chmod 600 it", path, (unsigned)(st.st_mode & 0777));
        rc = ZPS_EPERM;
    } else if ((n = read(fd, buf, sizeof buf - 1)) < 0) {
        snprintf(err, errlen, "--admin-token-file %s: cannot read: %s", path, strerror(errno));
        rc = ZPS_EIO;
    }
    close(fd);
    if (rc)
        return rc;
    size_t len = 0;
    while (len < (size_t)n && buf[len] != '\n' && buf[len] != '\r')
        len++;
    int hex = 1;
    for (size_t i = 0; i < len; i++)
        hex &= (buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f') ||
               (buf[i] >= 'A' && buf[i] <= 'F');
    if (!hex || len < 32 || len > PS_TOKEN_MAX) {
        snprintf(err, errlen, "--admin-token-file %s: the first line must be 32 to %d hex "
                 "characters (the token)", path, PS_TOKEN_MAX);
        return ZPS_EINVAL;
    }
    memcpy(out, buf, len);
    out[len] = 0;
    *outlen = len;
    return 0;
}

/* Constant-time comparison of a received token with ours (no early exit;
 * only the lengths' equality shows in the time). */
static int s_token_ok(const char *ours, size_t olen, const char *got)
{
    size_t glen = got ? strnlen(got, PS_TOKEN_MAX + 1) : 0;
    volatile unsigned char d = (unsigned char)(olen != glen || olen == 0);
    for (size_t i = 0; i < olen; i++)
        d |= (unsigned char)(ours[i] ^ (i < glen ? got[i] : 0));
    return d == 0;
}

/* The allow directory: every *.pub, with the identity its name gives:
 * admin.pub -> "admin", worker-R.pub -> "worker-R", NAME.pub -> "ro:NAME". */
static int s_read_allow_dir(ps_server_t *s, const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "cannot read --allow-dir %s: %s", dir, strerror(errno));
        return ZPS_EIO;
    }
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".pub"))
            continue;
        char path[1300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        zps_curve_pair_t p;
        if ((rc = zps_curve_read(path, &p, err, errlen)) != 0)
            break;
        if (s->nallowed == cap) {
            cap = cap ? 2 * cap : 8;
            ps_key_t *k = realloc(s->allowed, cap * sizeof *k);
            if (!k) {
                snprintf(err, errlen, "out of memory");
                rc = ZPS_ENOMEM;
                break;
            }
            s->allowed = k;
        }
        ps_key_t *k = &s->allowed[s->nallowed];
        memcpy(k->z85, p.public_z85, sizeof k->z85);
        unsigned r = 0;
        int used = 0;
        if (!strcmp(e->d_name, "admin.pub")) {
            snprintf(k->user, sizeof k->user, "admin");
        } else if (sscanf(e->d_name, "worker-%u.pub%n", &r, &used) == 1 && used == (int)l &&
                   e->d_name[7] >= '0' && e->d_name[7] <= '9' && r < PS_MAX_RANK) {
            snprintf(k->user, sizeof k->user, "worker-%u", r);
        } else {
            char esc[ZPS_LOG_WIRE_BUF];
            zps_log_escape(e->d_name, l - 4, esc, sizeof esc, 24);
            snprintf(k->user, sizeof k->user, "ro:%.40s", esc);
        }
        for (size_t i = 0; i < s->nallowed && !rc; i++)
            if (!strcmp(s->allowed[i].z85, k->z85)) {
                snprintf(err, errlen, "--allow-dir %s: %s holds the same key as another file "
                         "(identity %s); one key, one identity", dir, e->d_name,
                         s->allowed[i].user);
                rc = ZPS_EINVAL;
            }
        if (!rc)
            s->nallowed++;
    }
    closedir(d);
    if (!rc && s->nallowed == 0) {
        snprintf(err, errlen, "--allow-dir %s has no *.pub key: no client could connect", dir);
        rc = ZPS_EINVAL;
    }
    return rc;
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
        if (zps_optim_validate(&tb->o, why, sizeof why)) {
            snprintf(err, errlen, "table %u: %s", i, why);
            goto fail;
        }
        tb->dim = tb->o.dim;
        if (tb->dim > 1024) {
            snprintf(err, errlen, "table %u: dim %u is over the limit of 1024", i, tb->dim);
            goto fail;
        }
        tb->needs_init = tb->o.init_scale != 0.0f;
        zps_optim_describe(&tb->o, tb->desc, sizeof tb->desc);
        tb->sh = zps_shard_new(&tb->o, conf->capacity_hint);
        tb->t = tb->sh ? zps_shard_table(tb->sh) : NULL;
        if (!tb->t) {
            snprintf(err, errlen, "table %u: cannot allocate for %llu keys", i,
                     (unsigned long long)conf->capacity_hint);
            goto fail;
        }
    }
    s->min_clock = UINT64_MAX;
    s->rng = 0x853c49e6748fea9bULL + conf->rank;
    s->nonce = s_random64();
    s->id_seed = s_random64();
    s->maint_ms = s->start_ms;
    s->kc = ps_keycache_new(1024, 4u << 20);
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
        s->clock = ps_clock_new(conf->num_workers, conf->consistency == 2 ? 0 : conf->staleness,
                                s->start_ms);
        if (!s->clock) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        s->min_clock = ps_clock_min(s->clock);
    }
    s->ctx = zmq_ctx_new();
    s->sock = s->ctx ? zmq_socket(s->ctx, ZMQ_ROUTER) : NULL;
    if (!s->sock) {
        snprintf(err, errlen, "cannot create ZeroMQ socket: %s", zmq_strerror(errno));
        goto fail;
    }
    /* fail closed: a partial CURVE configuration does not start */
    if (conf->allow_dir[0] && !conf->curve_secret[0]) {
        snprintf(err, errlen, "--allow-dir needs --curve-secret SERVER.key (without it the "
                 "server would run in plaintext)");
        goto fail;
    }
    if (conf->curve_secret[0]) {
        zps_curve_pair_t pair;
        char why[1300];
        memset(&pair, 0, sizeof pair);
        if (zps_curve_read(conf->curve_secret, &pair, why, sizeof why) != 0 || !pair.secret_z85[0]) {
            snprintf(err, errlen, "--curve-secret: %s", pair.public_z85[0] && !pair.secret_z85[0]
                                           ? "needs a .key file (with the secret key)"
                                           : why);
            goto fail;
        }
        if (!conf->allow_dir[0]) {
            snprintf(err, errlen, "--curve-secret needs --allow-dir DIR with the clients' .pub files");
            goto fail;
        }
        if (s_read_allow_dir(s, conf->allow_dir, why, sizeof why) != 0) {
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
        if (zmq_setsockopt(s->sock, ZMQ_CURVE_SERVER, &one, sizeof one) ||
            zmq_setsockopt(s->sock, ZMQ_CURVE_SECRETKEY, pair.secret_z85, ZPS_Z85_LEN) ||
            zmq_setsockopt(s->sock, ZMQ_ZAP_DOMAIN, "zps", 3)) {
            snprintf(err, errlen, "cannot turn CURVE on: %s", zmq_strerror(errno));
            goto fail;
        }
        s->curve = 1;
        size_t nadmin = 0, nworker = 0;
        for (size_t i = 0; i < s->nallowed; i++) {
            nadmin += !strcmp(s->allowed[i].user, "admin");
            nworker += !strncmp(s->allowed[i].user, "worker-", 7);
        }
        zps_info(log, "CURVE on: %zu client keys allowed from %s (%zu admin, %zu worker, %zu "
                 "read-only)", s->nallowed, conf->allow_dir, nadmin, nworker,
                 s->nallowed - nadmin - nworker);
    }
    if (conf->admin_token_file[0]) {
        if (s_read_token(conf->admin_token_file, s->admin_token, &s->admin_token_len, err,
                         errlen) != 0)
            goto fail;
    }
    /* frames up to twice --max-msg-mb are received and answered with an
     * ERROR (s_oversized); beyond that ZeroMQ drops the connection before
     * allocating them, as a last bound on memory */
    int64_t maxmsg = conf->max_msg_bytes > (uint64_t)INT64_MAX / 2 ? -1 : (int64_t)conf->max_msg_bytes * 2;
    int rcvhwm = 100000, sndhwm = conf->sndhwm ? (int)conf->sndhwm : 4096, linger = 2000;
    int mandatory = 1, sndtimeo = 0;
    zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(s->sock, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
    zmq_setsockopt(s->sock, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm);
    zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof linger);
    /* a reply to a full or vanished peer fails at once (counted), never blocks */
    zmq_setsockopt(s->sock, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory);
    zmq_setsockopt(s->sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
    /* disconnects: forget the connection, its binding and its held pulls */
    char monep[64];
    snprintf(monep, sizeof monep, "inproc://ps-monitor-%p", (void *)s);
    if (zmq_socket_monitor(s->sock, monep, ZMQ_EVENT_DISCONNECTED) == 0) {
        s->mon = zmq_socket(s->ctx, ZMQ_PAIR);
        if (s->mon && zmq_connect(s->mon, monep) != 0) {
            zmq_close(s->mon);
            s->mon = NULL;
        }
    }
    s->conn_cap = 64;
    while (s->conn_cap < 2 * (size_t)(conf->max_connections ? conf->max_connections : 1000))
        s->conn_cap *= 2;
    s->conns = calloc(s->conn_cap, sizeof *s->conns);
    s->outq = calloc(1, sizeof *s->outq);
    s->tmp_row = malloc(4 * (3 * 1024 + 1) * sizeof(float));
    if (!s->conns || !s->tmp_row) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    s->tmp_out = s->tmp_row + (3 * 1024 + 1);
    s->tmp_g = s->tmp_out + (3 * 1024 + 1);
    char spec[300];
    s_bind_spec(conf->bind, spec, sizeof spec);
    if (zmq_bind(s->sock, spec) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", conf->bind, zmq_strerror(errno));
        goto fail;
    }
    size_t elen = sizeof s->endpoint;
    zmq_getsockopt(s->sock, ZMQ_LAST_ENDPOINT, s->endpoint, &elen);
    {
        char why[1300];
        if (s_restore(s, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s", why);
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
    if (s->sock) {
        if (s->mon)
            zmq_socket_monitor(s->sock, NULL, 0);
        zmq_close(s->sock);
    }
    if (s->mon)
        zmq_close(s->mon);
    if (s->zap)
        zmq_close(s->zap);
    free(s->allowed);
    /* the entries' references; replies still queued hold their own until
     * ZeroMQ releases them (at the latest in zmq_ctx_term below) */
    for (size_t i = 0; s->conns && i < s->conn_cap; i++)
        if (s->conns[i].key >= 2)
            s_outc_put(s->conns[i].out);
    free(s->conns);
    free(s->fd_stale);
    free(s->ranks);
    free(s->rowp);
    free(s->tmp_row);
    if (s->ctx)
        zmq_ctx_term(s->ctx); /* every queued reply has been released: outq is idle */
    free(s->outq);
    for (int i = 0; i < PS_MAX_TABLES; i++) {
        zps_shard_destroy(&s->tabs[i].sh);
        s->tabs[i].t = NULL;
    }
    for (size_t i = 0; i < s->nheld; i++) {
        zps_msg_close(s->held[i].m);
        free(s->held[i].m);
    }
    free(s->held);
    zps_table_destroy(&s->acc);
    ps_keycache_destroy(&s->kc);
    if (s->ckpt_pid > 0)
        waitpid(s->ckpt_pid, NULL, 0);
    free(s->clients);
    free(s->lost);
    ps_clock_destroy(&s->clock);
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
        out->keys_stored += zps_table_size(s->tabs[i].t);
        out->bytes_used += zps_table_bytes(s->tabs[i].t);
    }
    out->uptime_ms = (uint64_t)(zps_now_ms() - s->start_ms);
    out->held_pulls = s->nheld;
    out->server_nonce = s->nonce;
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
    while (!rc && zps_table_next(tb->t, &cursor, &key, &row)) {
        zps_optim_weights(&tb->o, row, wbuf);
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
        zps_info(s->log, "saved %zu keys to %s in %lld ms", zps_table_size(tb->t), dir,
                 (long long)(zps_now_ms() - t0));
    return rc;
}

/* ---- replies ------------------------------------------------------------ */

/* Reply bytes queued in ZeroMQ.  A reply's values frame is handed to
 * ZeroMQ without a copy; s_outq_free runs (in ZeroMQ's I/O thread) when it
 * has been written to the socket or dropped, and takes its bytes off the
 * account, so a peer that asks and never reads is refused (s_reply_room)
 * instead of filling the server's memory with its replies. */
typedef struct {
    _Atomic long long *total;
    struct ps_outc *c;     /* the connection's counter (a reference), or NULL */
    long long len;
} s_outq_ref_t;

static void s_outq_free(void *data, void *hint)
{
    s_outq_ref_t *r = hint;
    atomic_fetch_sub(r->total, r->len);
    if (r->c) {
        atomic_fetch_sub(&r->c->bytes, r->len);
        s_outc_put(r->c);
    }
    free(r);
    free(data);
}

static struct ps_outc *s_conn_out(ps_server_t *s, zps_msg_t *m);

static uint64_t s_conn_key(const ps_server_t *s, zps_msg_t *m);

static void s_send(ps_server_t *s, zps_msg_t *m, Zps__Envelope *env, void *keys, size_t klen,
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
    s_send(s, m, &env, NULL, 0, NULL, 0);
}

static void s_reply_error(ps_server_t *s, zps_msg_t *m, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void s_reply_error(ps_server_t *s, zps_msg_t *m, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_reply_verror(s, m, code, 0, 0, fmt, ap);
    va_end(ap);
}

/* An error about one key (Error.key set). */
static void s_reply_error_key(ps_server_t *s, zps_msg_t *m, int code, uint64_t key,
                              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void s_reply_error_key(ps_server_t *s, zps_msg_t *m, int code, uint64_t key,
                              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_reply_verror(s, m, code, 1, key, fmt, ap);
    va_end(ap);
}

/* ---- authentication (ZAP, RFC 27) ------------------------------------------------- */

/* Answer one ZAP request: a CURVE client gets in iff its public key is in
 * the allow directory, and speaks as the identity its file name gives
 * (User-Id, read per message by s_identity).  Refused peer addresses are
 * logged once each, and at most 20 lines per 10 s in all. */
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
    if (n < 6) {
        /* a REP socket must answer before it can receive again */
        if (n >= 2) {
            zmq_send(s->zap, "1.0", 3, ZMQ_SNDMORE);
            zmq_send(s->zap, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]), ZMQ_SNDMORE);
            zmq_send(s->zap, "500", 3, ZMQ_SNDMORE);
            zmq_send(s->zap, "bad request", 11, ZMQ_SNDMORE);
            zmq_send(s->zap, "", 0, ZMQ_SNDMORE);
            zmq_send(s->zap, "", 0, 0);
        }
        goto out;
    }
    char mech[16] = "", addr[64] = "?", key[ZPS_Z85_LEN + 1] = "";
    zps_log_escape(zmq_msg_data(&part[5]), zmq_msg_size(&part[5]), mech, sizeof mech, 8);
    zps_log_escape(zmq_msg_data(&part[3]), zmq_msg_size(&part[3]), addr, sizeof addr, 15);
    const ps_key_t *who = NULL;
    if (!strcmp(mech, "CURVE") && n >= 7 && zmq_msg_size(&part[6]) == 32) {
        zmq_z85_encode(key, zmq_msg_data(&part[6]), 32);
        for (size_t i = 0; i < s->nallowed && !who; i++)
            if (!strcmp(s->allowed[i].z85, key))
                who = &s->allowed[i];
    }
    if (!who) {
        int seen = 0;
        for (size_t i = 0; i < s->nrejected && !seen; i++)
            seen = !strcmp(s->rejected[i], addr);
        if (!seen) {
            if (s->nrejected < 64)
                snprintf(s->rejected[s->nrejected++], 64, "%s", addr);
            zps_log_burst(s->log, ZPS_LOG_WARN, LC_ZAP, 20, 10000,
                          "refused a connection from %s: %s key %s is not in %s", addr, mech,
                          key[0] ? key : "(none)", s->conf.allow_dir);
        }
    }
    /* reply: version, request id, status code, status text, user id, metadata */
    zmq_send(s->zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(s->zap, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]), ZMQ_SNDMORE);
    zmq_send(s->zap, who ? "200" : "400", 3, ZMQ_SNDMORE);
    zmq_send(s->zap, who ? "OK" : "key not allowed", who ? 2 : 15, ZMQ_SNDMORE);
    zmq_send(s->zap, who ? who->user : "", who ? strlen(who->user) : 0, ZMQ_SNDMORE);
    zmq_send(s->zap, "", 0, 0);
out:
    for (int i = 0; i < n; i++)
        zmq_msg_close(&part[i]);
}

/* ---- connections, identities -------------------------------------------------- */

static uint64_t s_conn_key(const ps_server_t *s, zps_msg_t *m)
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

/* Rebuild the map without tombstones. */
/* The reply-byte counter of m's connection (NULL if it has none). */
static struct ps_outc *s_conn_out(ps_server_t *s, zps_msg_t *m)
{
    uint64_t key = s_conn_key(s, m);
    if (!key)
        return NULL;
    int found;
    ps_conn_t *c = s_conn_slot(s, key, &found);
    return found && c ? c->out : NULL;
}

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

static void s_forget_fd(ps_server_t *s, int fd, uint64_t keep);
static void s_on_monitor(ps_server_t *s);

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
static int s_admit(ps_server_t *s, zps_msg_t *m)
{
    uint64_t key = s_conn_key(s, m);
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
        s_reply_error(s, m, ZPS_ELIMIT, "this server serves at most %u connections "
                      "(--max-connections); try later or another server", maxc);
        return ZPS_ELIMIT;
    }
    /* read the monitor first: ZeroMQ reports a closed connection (and the
     * accept of this one) before this connection's first message reaches
     * us, so the reports about an earlier connection on this descriptor
     * are consumed now, before the descriptor gets a new owner */
    s_on_monitor(s);
    if (m->srcfd >= 0 && s_fd_reused(s, m->srcfd)) {
        s_reply_error(s, m, ZPS_ENOMEM, "out of memory for the connection table");
        return ZPS_ENOMEM;
    }
    struct ps_outc *out = calloc(1, sizeof *out);
    if (!out) {
        s_reply_error(s, m, ZPS_ENOMEM, "out of memory for the connection table");
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

static void s_drop_held_if(ps_server_t *s, uint64_t conn, uint32_t worker, int by_worker);

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
        s_drop_held_if(s, c->key, 0, 0);
        s_outc_put(c->out);
        c->out = NULL;
        c->key = 1;
        c->fd = -1;
        s->nconns--;
    }
}

/* The monitor reported a closed connection: forget it, release the ranks
 * it was bound to, drop its held pulls.  Descriptors are reused: a new
 * connection can arrive on fd N before the monitor's report that the old
 * connection on N closed has been read.  s_admit then evicts the old entry
 * at once and counts the report as stale (fd_stale), so the report, when it
 * comes, cannot release the new connection's ranks. */
static void s_on_monitor(ps_server_t *s)
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
static int s_identity(ps_server_t *s, zps_msg_t *m)
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
            s_reply_error(s, m, ZPS_EPERM, "SHUTDOWN needs the admin key (this is %s)", u);
            return ZPS_EPERM;
        }
        if (m->env->role != ZPS__ROLE__ROLE_WORKER || m->env->rank != r) {
            zps_log_limited(s->log, LC_PERM, 1000, "%s at %s claimed to be %s %u: refused", u,
                            m->peer, m->env->role == ZPS__ROLE__ROLE_WORKER ? "worker" : "client",
                            m->env->rank);
            s_reply_error(s, m, ZPS_EPERM, "the key of %s speaks only as worker %u", u, r);
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
    s_reply_error(s, m, ZPS_EPERM, "key %s is read-only (HELLO, PULL, STATS, DUMP): %s refused",
                  u[0] ? u : "(none)", zps_msg_type_name(m->env->type));
    return ZPS_EPERM;
}

/* ---- exactly once, progress, checkpoints ------------------------------------------ */

static ps_ckpt_client_t *s_client_rec(ps_server_t *s, uint32_t rank)
{
    if (rank >= PS_MAX_RANK)
        return NULL;
    if (rank >= s->nclients) {
        uint32_t n = rank + 1 > 2 * s->nclients ? rank + 1 : 2 * s->nclients;
        if (n > PS_MAX_RANK)
            n = PS_MAX_RANK;
        ps_ckpt_client_t *c = realloc(s->clients, n * sizeof *c);
        if (c)
            s->clients = c;
        ps_lost_t *l = realloc(s->lost, n * sizeof *l);
        if (l)
            s->lost = l;
        ps_rank_t *k = realloc(s->ranks, n * sizeof *k);
        if (k)
            s->ranks = k;
        if (!c || !l || !k)
            return NULL;
        memset(c + s->nclients, 0, (n - s->nclients) * sizeof *c);
        memset(l + s->nclients, 0, (n - s->nclients) * sizeof *l);
        memset(k + s->nclients, 0, (n - s->nclients) * sizeof *k);
        for (uint32_t i = s->nclients; i < n; i++)
            c[i].rank = i;
        s->nclients = n;
    }
    return &s->clients[rank];
}

/* Durable marks: at a checkpoint's fork, each client's applied low-water
 * mark is what that checkpoint will hold; once it is written, it is durable. */
static void s_durable_snapshot(ps_server_t *s)
{
    for (uint32_t r = 0; r < s->nclients; r++) {
        s->ranks[r].pend_nonce = s->clients[r].nonce;
        s->ranks[r].pend_seq = s->clients[r].win.lwm;
    }
}

static void s_durable_commit(ps_server_t *s)
{
    for (uint32_t r = 0; r < s->nclients; r++) {
        if (!s->ranks[r].pend_nonce)
            continue;
        s->ranks[r].durable_nonce = s->ranks[r].pend_nonce;
        s->ranks[r].durable_seq = s->ranks[r].pend_seq;
    }
}

/* A restored client record: its window must be consistent, else (a damaged
 * or older record) every seq up to the highest applied counts as applied. */
static void s_restored_client(ps_server_t *s, ps_ckpt_client_t *r)
{
    if (!ps_dedup_valid(&r->win) || r->win.hwm != r->last_seq) {
        zps_warn(s->log, "worker %u: exactly-once window in the checkpoint is inconsistent; "
                 "treating pushes up to %llu as applied", r->rank, (unsigned long long)r->last_seq);
        ps_dedup_init(&r->win);
        r->win.lwm = r->win.hwm = r->last_seq;
    }
    s->ranks[r->rank].durable_nonce = r->nonce;
    s->ranks[r->rank].durable_seq = r->win.lwm;
}

static void s_ckpt_info(const ps_server_t *s, ps_ckpt_info_t *info)
{
    memset(info, 0, sizeof *info);
    info->rank = s->conf.rank;
    info->nservers = s->conf.nservers;
    info->dim = s->tabs[0].dim;
    info->row_floats = zps_table_row_floats(s->tabs[0].t);
    snprintf(info->desc, sizeof info->desc, "%s", s->tabs[0].desc);
    info->job_id = s->job_id;
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
    s_durable_snapshot(s);
    s->ckpt_started_ms = zps_now_ms();
    zps_info(s->log, "checkpoint %llu started: %zu keys, serving paused %.2f ms for the fork",
             (unsigned long long)info.counter, zps_table_size(s->tabs[0].t), pause_ms);
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
        s_durable_commit(s);
        zps_info(s->log, "checkpoint %llu written in %lld ms", (unsigned long long)s->ckpt_counter,
                 (long long)(zps_now_ms() - s->ckpt_started_ms));
    } else {
        zps_error(s->log, "checkpoint %llu was not written (see above); the previous one is intact",
                  (unsigned long long)s->ckpt_counter);
    }
    s->ckpt_pid = 0;
    s->ckpt_last_ms = zps_now_ms();
}

/* A checkpoint written in process (serving pauses while it is written):
 * the final one at shutdown, and every one in sanitizer builds. */
static int s_checkpoint_inproc(ps_server_t *s, const char *what)
{
    s_checkpoint_reap(s, 1);
    ps_ckpt_info_t info;
    s_ckpt_info(s, &info);
    info.counter = ++s->ckpt_counter;
    char err[1300];
    int64_t t0 = zps_now_ms();
    int rc = ps_ckpt_write(s->conf.checkpoint_dir, &info, s->tabs[0].t, s->clients, s->nclients,
                           (int)s->conf.checkpoint_keep, err, sizeof err);
    if (rc) {
        zps_error(s->log, "%s checkpoint %llu failed: %s", what, (unsigned long long)info.counter,
                  err);
    } else {
        s_durable_snapshot(s);
        s_durable_commit(s);
        s->st.checkpoints++;
        zps_info(s->log, "%s checkpoint %llu written: %zu keys in %lld ms", what,
                 (unsigned long long)info.counter, zps_table_size(s->tabs[0].t),
                 (long long)(zps_now_ms() - t0));
    }
    s->ckpt_last_ms = zps_now_ms();
    return rc;
}

/* A sanitizer build writes checkpoints in process: a child forked from
 * this multithreaded process (ZeroMQ's I/O thread frees sent replies) can
 * deadlock in the sanitizer's allocator, whose locks GCC 12's libasan does
 * not take around fork(); glibc's malloc does. */
#if defined(__SANITIZE_ADDRESS__)
#define PS_CKPT_FORK 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PS_CKPT_FORK 0
#endif
#endif
#ifndef PS_CKPT_FORK
#define PS_CKPT_FORK 1
#endif

static void s_checkpoint_tick(ps_server_t *s)
{
    if (!s->conf.checkpoint_dir[0] || !s->conf.checkpoint_every_ms)
        return;
    s_checkpoint_reap(s, 0);
    if (s->ckpt_pid != 0 || zps_now_ms() - s->ckpt_last_ms < (int64_t)s->conf.checkpoint_every_ms)
        return;
    if (PS_CKPT_FORK)
        s_checkpoint_fork(s);
    else
        s_checkpoint_inproc(s, "periodic (in process: sanitizer build)");
}

/* The job identity and --restore.  Without --restore: a new job id, and a
 * checkpoint directory holding checkpoints of this rank is refused.  With it:
 * the newest valid checkpoint is loaded into a new table that replaces
 * table 0 only once it is complete, and its job id is adopted. */
static int s_restore(ps_server_t *s, char *err, size_t errlen)
{
    if (!s->conf.restore) {
        s->job_id = ps_ckpt_new_job_id();
        if (!s->conf.checkpoint_dir[0])
            return 0;
        int rc = ps_ckpt_check_new_job(s->conf.checkpoint_dir, s->conf.rank, err, errlen);
        if (rc == 0)
            zps_info(s->log, "checkpoints of shard %u go to %s as job %016llx", s->conf.rank,
                     s->conf.checkpoint_dir, (unsigned long long)s->job_id);
        return rc;
    }
    ps_ckpt_info_t info;
    s_ckpt_info(s, &info);
    ps_ckpt_client_t *cl = NULL;
    zps_table_t *t = NULL;
    size_t ncl = 0;
    int64_t t0 = zps_now_ms();
    char why[1200];
    int rc = ps_ckpt_restore(s->conf.checkpoint_dir, &info, s->conf.capacity_hint, &t, &cl, &ncl,
                             s->log, why, sizeof why);
    if (rc == 1) {
        s->job_id = ps_ckpt_new_job_id();
        zps_warn(s->log, "--restore: no checkpoint of shard %u in %s; starting empty as job %016llx",
                 s->conf.rank, s->conf.checkpoint_dir, (unsigned long long)s->job_id);
        return 0;
    }
    if (rc) {
        snprintf(err, errlen, "cannot restore: %s", why);
        return rc;
    }
    if (zps_shard_adopt(s->tabs[0].sh, &t) != 0) { /* ps_ckpt_restore checked the row size */
        snprintf(err, errlen, "cannot restore: the checkpoint's rows do not fit table 0");
        zps_table_destroy(&t);
        free(cl);
        return ZPS_EINVAL;
    }
    s->tabs[0].t = zps_shard_table(s->tabs[0].sh);
    s->job_id = info.job_id;
    uint64_t pushes = 0;
    for (size_t i = 0; i < ncl; i++) {
        ps_ckpt_client_t *r = s_client_rec(s, cl[i].rank);
        if (r) {
            *r = cl[i];
            s_restored_client(s, r);
            s->lost[cl[i].rank].ckpt_applied = cl[i].applied;
            s->lost[cl[i].rank].ckpt_seq = cl[i].last_seq;
            s->lost[cl[i].rank].active = 1;
        }
        pushes += cl[i].applied;
    }
    free(cl);
    s->ckpt_counter = info.last_counter;   /* never reuse a name in the directory */
    s->restored = 1;
    s->st.restored_pushes = pushes;
    zps_info(s->log, "restored checkpoint %llu: %zu keys, %llu pushes from %zu workers, in %lld ms "
             "(job %016llx)",
             (unsigned long long)info.counter, zps_table_size(s->tabs[0].t),
             (unsigned long long)pushes, ncl, (long long)(zps_now_ms() - t0),
             (unsigned long long)s->job_id);
    return 0;
}

/* ---- clocks (ssp, bsp) -------------------------------------------------------- */

static void s_on_pull(ps_server_t *s, zps_msg_t *m);

/* 1 and *w = its rank if m comes from a worker of the clock (ssp, bsp). */
static int s_worker_of(const ps_server_t *s, const zps_msg_t *m, uint32_t *w)
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
    size_t cursor = 0;
    uint64_t key;
    float *arow;
    size_t rf = zps_optim_row_floats(&tb->o);
    uint64_t skipped = 0, skipped_key = 0;
    /* the accumulator's keys were reserved in the table when they were
     * accumulated (s_bsp_accumulate), so these upserts do not fail; a key
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
            s_on_pull(s, h);
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
static void s_drop_held_if(ps_server_t *s, uint64_t conn, uint32_t worker, int by_worker)
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
 * not count: s_handle calls this only for the bound connection.) */
static void s_touch(ps_server_t *s, zps_msg_t *m)
{
    uint32_t w;
    if (!s_worker_of(s, m, &w))
        return;
    if (ps_clock_heard(s->clock, w, zps_now_ms())) {
        zps_info(s->log, "worker %u at %s rejoined the clock at %llu", w, m->peer,
                 (unsigned long long)ps_clock_finished(s->clock, w));
        s_advance(s);
    }
}

static void s_finish_clock(ps_server_t *s, uint32_t w, uint64_t clock)
{
    ps_clock_finish(s->clock, w, clock);
    s_advance(s);
}

/* Drop workers that have been silent for longer than the heartbeat timeout. */
static void s_check_heartbeats(ps_server_t *s)
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
        s_drop_held_if(s, 0, i, 1);
        zps_warn(s->log, "worker %u silent for %.1f s (clock %llu): dropped from the clock, "
                 "the others go on", i, (double)(now - ps_clock_last_seen(s->clock, i)) / 1000.0,
                 (unsigned long long)ps_clock_finished(s->clock, i));
    }
    if (changed)
        s_advance(s);
}

/* Hold a validated pull until the slowest worker catches up, within the
 * bounds per connection, in all, and in bytes.  0, or ZPS_ELIMIT. */
static int s_hold(ps_server_t *s, zps_msg_t *m)
{
    uint64_t conn = s_conn_key(s, m);
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

static void s_on_clock(ps_server_t *s, zps_msg_t *m)
{
    uint32_t w;
    if (s_worker_of(s, m, &w)) {
        s_finish_clock(s, w, m->env->clock->clock);
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
    s_send(s, m, &env, NULL, 0, NULL, 0);
}

/* May m's connection speak as the rank it claims?  Plaintext and admin:
 * yes; a worker key: only as its own rank. */
static int s_may_claim(const ps_server_t *s, const zps_msg_t *m)
{
    if (!s->curve || !strcmp(m->user, "admin"))
        return 1;
    unsigned r = 0;
    int used = 0;
    return sscanf(m->user, "worker-%u%n", &r, &used) == 1 && m->user[used] == 0 &&
           r == m->env->rank && m->env->role == ZPS__ROLE__ROLE_WORKER;
}

/* Does m's connection speak for its rank?  A rank is bound to one
 * connection: the first that speaks for it (push, clock, heartbeat, or any
 * worker message), and again whoever says HELLO as that worker (a
 * restarted worker: the later process wins), or pushes with the nonce of
 * the process that bound it (the same process, reconnected).  A binding
 * ends when its connection closes.  nonce: the message's client nonce (0
 * if it has none); hello: m is a worker's HELLO. */
static int s_speaks_for(ps_server_t *s, zps_msg_t *m, uint64_t nonce, int hello)
{
    uint32_t rank = m->env->rank;
    if (rank >= PS_MAX_RANK || !s_may_claim(s, m) || !s_client_rec(s, rank))
        return 0;
    ps_rank_t *r = &s->ranks[rank];
    uint64_t conn = s_conn_key(s, m);
    if (!conn)
        return 0;
    int64_t now = zps_now_ms();
    if (r->conn == conn) {
        if (nonce)
            r->bound_nonce = nonce;
        r->last_ms = now;
        return 1;
    }
    if (r->conn) {
        /* Another connection claims a bound rank.  Only a HELLO, or a push
         * with the nonce of the process that bound it (the same process,
         * reconnected), may take it over, and only once the bound
         * connection is gone (the kernel closed a dead process's socket:
         * read pending disconnects first) or silent for the heartbeat
         * timeout (its host vanished).  A live connection's rank cannot be
         * taken, whatever the claimant knows. */
        if (!hello && !(nonce && nonce == r->bound_nonce))
            return 0;
        s_on_monitor(s);
        if (r->conn && now - r->last_ms <= (int64_t)s->conf.heartbeat_timeout_ms) {
            zps_log_limited(s->log, LC_PERM, 1000, "hello as rank %u from %s refused: the rank "
                            "is bound to a live connection", rank, m->peer);
            return 0;
        }
    }
    if (r->conn)
        zps_log_burst(s->log, ZPS_LOG_INFO, LC_BIND, 20, 10000,
                      "rank %u now speaks from %s (%s)", rank, m->peer,
                      hello ? "a new hello" : "same process, new connection");
    r->conn = conn;
    r->bound_nonce = nonce;
    r->last_ms = now;
    return 1;
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
        snprintf(names[i], sizeof names[i], "%s", zps_optim_kind_name(s->tabs[i].o.kind));
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
    body.server_nonce = s->nonce;
    uint32_t rank = m->env->rank;
    if (m->env->role == ZPS__ROLE__ROLE_WORKER && rank < s->nclients &&
        s->clients[rank].has_progress) {
        body.has_progress = 1;
        body.progress_epoch = s->clients[rank].progress_epoch;
        body.progress_rows = s->clients[rank].progress_rows;
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
    s_send(s, m, &env, NULL, 0, NULL, 0);
}

/* Give back scratch memory a big request grew (a 2^26-key request must not
 * keep hundreds of MB for good). */
static void s_trim_scratch(ps_server_t *s)
{
    if (s->keys_cap > PS_SCRATCH_KEEP) {
        free(s->keys);
        s->keys = NULL;
        s->keys_cap = 0;
    }
    if (s->fscratch_cap > 4 * (size_t)PS_SCRATCH_KEEP) {
        free(s->fscratch);
        s->fscratch = NULL;
        s->fscratch_cap = 0;
    }
    if (s->rowp_cap > PS_SCRATCH_KEEP) {
        free(s->rowp);
        s->rowp = NULL;
        s->rowp_cap = 0;
    }
    for (uint32_t i = 0; i < s->conf.ntables; i++)
        zps_shard_trim(s->tabs[i].sh, PS_SCRATCH_KEEP);
}

/* May a reply of bytes go to m's peer?  Refused (ZPS_ELIMIT, answered)
 * when the peer already has replies queued unread and this one would take
 * it over --max-reply-mb, or all peers together over --max-reply-total-mb;
 * a peer with nothing queued always gets one reply within the total. */
static int s_reply_room(ps_server_t *s, zps_msg_t *m, size_t bytes)
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
    s_reply_error(s, m, ZPS_ELIMIT, "%.1f MB of replies to %s are still unread (%.1f MB for all "
                  "peers): read them before asking for more (--max-reply-mb %llu, "
                  "--max-reply-total-mb %llu)", (double)mine / 1048576.0,
                  over_mine ? "you" : "this server's peers", (double)all / 1048576.0,
                  (unsigned long long)(s->conf.max_reply_bytes >> 20),
                  (unsigned long long)(s->conf.max_reply_total >> 20));
    return 1;
}

static void s_on_pull(ps_server_t *s, zps_msg_t *m)
{
    const Zps__Pull *req = m->env->pull;
    /* validate in full first: only a valid pull is held */
    if (s_take_keys(s, m, req->table, req->nkeys, req->key_sig))
        return;
    ps_tab_t *tb = &s->tabs[req->table];
    size_t n = req->nkeys, dim = tb->dim;
    if (req->value_codec > ZPS_VC_INT8) {
        s_reply_error(s, m, ZPS_EINVAL, "unknown value codec %u", req->value_codec);
        return;
    }
    if ((uint64_t)n * dim * sizeof(float) > s->conf.max_msg_bytes) {
        s_reply_error(s, m, ZPS_ETOOBIG, "a reply of %zu keys x %zu floats would exceed "
                      "--max-msg-mb (%llu MiB): pull fewer keys at once", n, dim,
                      (unsigned long long)(s->conf.max_msg_bytes >> 20));
        return;
    }
    uint32_t w;
    if (s_worker_of(s, m, &w)) {
        if (!ps_clock_ready(s->clock, req->clock)) {
            if (s_hold(s, m) != 0)
                s_reply_error(s, m, ZPS_ELIMIT, "too many pulls waiting for the slowest worker "
                              "(%zu held; at most %u per connection, %u in all)", s->nheld,
                              s->conf.max_held_per_peer, s->conf.max_held_total);
            return;
        }
        if (s->min_clock != UINT64_MAX && req->clock > s->min_clock + 1 &&
            req->clock - 1 - s->min_clock > s->st.max_staleness)
            s->st.max_staleness = req->clock - 1 - s->min_clock;
    }
    if (s_reply_room(s, m, n * dim * sizeof(float)))
        return;
    float *vals = n ? malloc(n * dim * sizeof(float)) : NULL;
    if (n && !vals) {
        s_reply_error(s, m, ZPS_ENOMEM, "out of memory for a reply of %zu keys", n);
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
            s_reply_error(s, m, ZPS_EPROTO, "value frame of %zu bytes is not %zu values in codec %u",
                          vlen, n * dim, req->value_codec);
        return g;
    }
    g = zps_msg_floats(m, 1, n * dim, &s->fscratch, &s->fscratch_cap);
    if (!g) {
        zps_msg_bulk(m, 1, &vlen);
        s_reply_error(s, m, ZPS_EPROTO, "value frame of %zu bytes, expected %zu (%zu keys x %zu)",
                      vlen, n * dim * sizeof(float), n, dim);
    }
    return g;
}

/* Gradient row i, clipped (--clip-gradient) into tmp_g if asked. */
static const float *s_grad(ps_server_t *s, const float *g, size_t i, size_t dim)
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

/* --max-keys / --max-memory-mb for new_keys more keys in t.  0 or
 * ZPS_ELIMIT (answered). */
static int s_check_limits(ps_server_t *s, zps_msg_t *m, const zps_table_t *t, size_t new_keys,
                          size_t acc_new)
{
    if (s->conf.limit_keys && s_total_keys(s) + s->acc_new_keys + new_keys > s->conf.limit_keys) {
        s_reply_error(s, m, ZPS_ELIMIT, "push refused whole: it would store %zu new keys, "
                      "over --max-keys %llu (%zu stored)", new_keys,
                      (unsigned long long)s->conf.limit_keys, s_total_keys(s));
        return ZPS_ELIMIT;
    }
    if (s->conf.limit_memory_bytes) {
        size_t b = s_bytes_with(s, t, s->acc_new_keys + new_keys, acc_new);
        if (b > s->conf.limit_memory_bytes) {
            s_reply_error(s, m, ZPS_ELIMIT, "push refused whole: its %zu new keys would take the "
                          "tables to %.1f MiB, over --max-memory-mb %llu", new_keys,
                          b == SIZE_MAX ? INFINITY : (double)b / 1048576.0,
                          (unsigned long long)(s->conf.limit_memory_bytes >> 20));
            return ZPS_ELIMIT;
        }
    }
    return 0;
}

static int s_grow_rowp(ps_server_t *s, zps_msg_t *m, size_t n)
{
    if (s->rowp_cap >= n)
        return 0;
    float **r = realloc(s->rowp, (n ? n : 1) * sizeof *r);
    if (!r) {
        s_reply_error(s, m, ZPS_ENOMEM, "out of memory for %zu rows: nothing applied", n);
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
        s_reply_error_key(s, m, ZPS_ENONFINITE, s->keys[pr.bad],
                          "the update of key %llu would make a weight or optimizer state "
                          "non-finite (gradient too large?): push rejected, nothing "
                          "applied", (unsigned long long)s->keys[pr.bad]);
        return rc;
    }
    if (rc) {
        s_reply_error(s, m, ZPS_ENOMEM, "out of memory for a push of %zu keys: nothing applied", n);
        return rc;
    }
    if (pr.new_keys && s_check_limits(s, m, tb->t, pr.new_keys, 0)) {
        zps_shard_push_abort(tb->sh);
        return ZPS_ELIMIT;
    }
    if ((rc = zps_shard_push_commit(tb->sh)) != 0) {
        s_reply_error(s, m, ZPS_ENOMEM, "out of memory for %zu new keys: nothing applied",
                      pr.new_keys);
        return rc;
    }
    return 0;
}

/* bsp: add a validated push into the clock's accumulator, whole or not at
 * all: pass 1 checks every combined row and counts new keys, pass 2
 * commits (the accumulator is small and hot, a second pass is cheap). */
static int s_bsp_accumulate(ps_server_t *s, zps_msg_t *m, ps_tab_t *tb, size_t n, const float *g,
                            float wgt, float lr_scale)
{
    size_t dim = zps_optim_push_floats(&tb->o), acc_missing = 0, new_main = 0;
    if (!n)
        return 0;
    if (!s->acc) {
        s->acc = zps_table_new((uint32_t)dim, n * 4 < (1u << 20) ? n * 4 : (1u << 20));
        if (!s->acc) {
            s_reply_error(s, m, ZPS_ENOMEM, "out of memory for the bsp accumulator");
            return ZPS_ENOMEM;
        }
        s->acc_new_keys = 0;
    }
    if (s_grow_rowp(s, m, n))
        return ZPS_ENOMEM;
    for (size_t i = 0; i < n; i += PS_CHUNK) {
        size_t c = n - i < PS_CHUNK ? n - i : PS_CHUNK;
        zps_table_find_batch(s->acc, s->keys + i, c, s->rowp + i);
        for (size_t j = i; j < i + c; j++) {
            const float *a = s->rowp[j], *gj = s_grad(s, g, j, dim);
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
                s_reply_error_key(s, m, ZPS_ENONFINITE, s->keys[j],
                                  "the combined gradient of key %llu would not be finite: push "
                                  "rejected, nothing applied", (unsigned long long)s->keys[j]);
                return ZPS_ENONFINITE;
            }
        }
    }
    if (acc_missing) {
        if (s_check_limits(s, m, tb->t, new_main, acc_missing))
            return ZPS_ELIMIT;
        if (zps_table_reserve(s->acc, acc_missing) != 0) {
            s_reply_error(s, m, ZPS_ENOMEM, "out of memory for the bsp accumulator: nothing applied");
            return ZPS_ENOMEM;
        }
    }
    for (size_t j = 0; j < n; j++) {
        float *row = s->rowp[j];
        if (!row && !(row = zps_table_upsert(s->acc, s->keys[j], NULL))) {
            s_reply_error(s, m, ZPS_ENOMEM, "out of memory for the bsp accumulator");
            return ZPS_ENOMEM;
        }
        const float *gj = s_grad(s, g, j, dim);
        for (size_t d = 0; d < dim; d++)
            row[d] += wgt * gj[d];
    }
    s->acc_new_keys += new_main;
    s->acc_dirty = 1;
    if (s->acc_lr_scale == 0 || lr_scale < s->acc_lr_scale)
        s->acc_lr_scale = lr_scale; /* the clock's smallest */
    return 0;
}

/* Lost pushes after a restore: the client says how many acks it had from
 * this server when it sent this push; minus the acks this server has sent
 * it since the restore, that is a lower bound of the acks it had before
 * the crash, exact once the client has caught up with our acks (it waits
 * for them every --max-delay pushes).  What the checkpoint does not contain
 * of those was lost.  Called for every push that is acknowledged; dup: it
 * had been applied before (in the checkpoint or since). */
static void s_account_lost(ps_server_t *s, uint32_t rank, const Zps__Push *req, int dup)
{
    ps_lost_t *l = &s->lost[rank];
    if (!l->active)
        return;
    if (req->acked > l->acks_sent && req->acked - l->acks_sent > l->pre_acks)
        l->pre_acks = req->acked - l->acks_sent;
    /* a resent push the checkpoint holds: its old ack never arrived */
    if (dup && req->seq <= l->ckpt_seq && req->seq > l->resent_seq) {
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
                 "checkpoint (applied after it, before the crash): the client resends them",
                 rank, (unsigned long long)now);
    }
    if (req->seq > l->acked_seq) {
        l->acks_sent++; /* answered now; counted once per push, as the client does */
        l->acked_seq = req->seq;
    }
}

static void s_push_rejected(ps_server_t *s, ps_rank_t *rk)
{
    s->st.rejected_pushes++;
    if (rk)
        rk->rejected++;
}

/* A push: checked (nonce and seq, binding: see s_handle), validated in
 * full, deduplicated (ps_dedup: applied exactly once whatever the order and
 * number of copies), applied whole or not at all, and only THEN recorded
 * as applied; acknowledged with the durable low-water mark. */
static void s_on_push(ps_server_t *s, zps_msg_t *m)
{
    const Zps__Push *req = m->env->push;
    uint32_t rank = m->env->rank;
    ps_ckpt_client_t *rec = s_client_rec(s, rank); /* binding made sure it exists */
    if (!rec) {
        s_push_rejected(s, NULL);
        s_reply_error(s, m, ZPS_ENOMEM, "no client record for rank %u", rank);
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
    if (s_take_keys(s, m, req->table, req->nkeys, req->key_sig)) {
        s_push_rejected(s, rk);
        return;
    }
    ps_tab_t *tb = &s->tabs[req->table];
    size_t n = req->nkeys, dim = zps_optim_push_floats(&tb->o); /* norm: + max |x| */
    if (req->dim != dim) {
        s_push_rejected(s, rk);
        s_reply_error(s, m, ZPS_EMISMATCH, "push of dim %u to table %u of dim %zu", req->dim,
                      req->table, dim);
        return;
    }
    float lr_scale = req->lr_scale == 0.0f ? 1.0f : req->lr_scale;
    if (!(lr_scale > 0.0f && lr_scale <= 64.0f) ||
        (lr_scale != 1.0f && tb->o.kind == ZPS_OPT_FTRL)) {
        s_push_rejected(s, rk);
        s_reply_error(s, m, ZPS_EINVAL, "push with step multiplier %g: it must be in (0, 64], "
                      "and 1 for ftrl (whose step also defines its weights)",
                      (double)req->lr_scale);
        return;
    }
    const float *g = s_push_values(s, m, req, n, dim);
    if (!g) {
        s_push_rejected(s, rk);
        return;
    }
    for (size_t i = 0; i < n * dim; i++) {
        if (!isfinite(g[i])) {
            s_push_rejected(s, rk);
            s_reply_error_key(s, m, ZPS_EINVAL, s->keys[i / dim],
                              "non-finite gradient %g for key %llu: push rejected, nothing applied",
                              (double)g[i], (unsigned long long)s->keys[i / dim]);
            return;
        }
    }
    int st = ps_dedup_check(&rec->win, req->seq);
    if (st == ZPS_ESEQ) {
        s_push_rejected(s, rk);
        s_reply_error(s, m, ZPS_ESEQ, "push sequence number %llu is outside the window: every "
                      "push up to %llu is applied and at most %u more may be in flight",
                      (unsigned long long)req->seq, (unsigned long long)rec->win.lwm,
                      PS_DEDUP_WINDOW);
        return;
    }
    int duplicate = st == PS_DEDUP_DUP;
    uint32_t w;
    int of_clock = s_worker_of(s, m, &w);
    if (duplicate) {
        s->st.duplicate_pushes++;
        rk->duplicates++;
    } else {
        int rc = of_clock && s->conf.consistency == 2
                     ? s_bsp_accumulate(s, m, tb, n, g, req->mean ? (float)req->examples : 1.0f,
                                        lr_scale)
                     : s_apply_table(s, m, tb, n, g, lr_scale);
        if (rc) {
            s_push_rejected(s, rk);
            return;
        }
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
    s_account_lost(s, rank, req, duplicate);
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
    s_send(s, m, &env, NULL, 0, NULL, 0);
    if (of_clock && req->tick)
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
            cs[k].nonce = zps_mix64(c->nonce, 0x6e6f6e6365ULL) >> 32;
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
    s_send(s, m, &env, NULL, 0, NULL, 0);
    free(cs);
    free(csp);
}

/* SHUTDOWN needs the admin token (and, under CURVE, the admin key, which
 * s_identity checked). */
static void s_on_shutdown(ps_server_t *s, zps_msg_t *m)
{
    const Zps__Shutdown *sd = m->env->shutdown;
    if (!s->admin_token_len || !s_token_ok(s->admin_token, s->admin_token_len, sd->admin_token)) {
        zps_log_limited(s->log, LC_SHUTDOWN, 1000, "refused a SHUTDOWN from %s (rank %u): %s",
                        m->peer, m->env->rank,
                        s->admin_token_len ? "wrong or missing admin token"
                                           : "no --admin-token-file, SHUTDOWN is disabled");
        s_reply_error(s, m, ZPS_EPERM, "%s",
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
    s_send(s, m, &env, NULL, 0, NULL, 0);
    s->shutdown = 1;
}

/* DUMP: one page of a table (ps_dump.c) */
static void s_on_dump(ps_server_t *s, zps_msg_t *m)
{
    const Zps__Dump *req = m->env->dump;
    if (req->table >= s->conf.ntables) {
        s_reply_error(s, m, ZPS_EINVAL, "table %u does not exist (server has %u)", req->table,
                      s->conf.ntables);
        return;
    }
    ps_tab_t *tb = &s->tabs[req->table];
    ps_dump_page_t pg;
    if (ps_dump_page(tb->t, &tb->o, req->cursor, req->max_keys, &pg) != 0) {
        s_reply_error(s, m, ZPS_ENOMEM, "out of memory for a dump page");
        return;
    }
    Zps__Envelope env;
    Zps__DumpReply body;
    ps_dump_reply(&pg, req->table, tb->dim, zps_table_size(tb->t), s->conf.rank,
                  m->env->request_id, &env, &body);
    s_send(s, m, &env, pg.keys, pg.keys_len, pg.vals, pg.vals_len);
}

static void s_handle(ps_server_t *s, zps_msg_t *m)
{
    int t = m->env->body_case;
    int push = t == ZPS__ENVELOPE__BODY_PUSH;
    if (s_admit(s, m) != 0 || s_identity(s, m) != 0) {
        if (push) {
            s->st.received_pushes++;
            s_push_rejected(s, NULL);
        }
        return;
    }
    if (push && (!m->env->push->client_nonce || !m->env->push->seq)) {
        s->st.received_pushes++;
        s_push_rejected(s, NULL);
        s_reply_error(s, m, ZPS_ESEQ, "a push needs a client nonce and a sequence number >= 1 "
                      "(got nonce %s, seq %llu)", m->env->push->client_nonce ? "set" : "0",
                      (unsigned long long)m->env->push->seq);
        return;
    }
    /* who speaks for the rank: heartbeats and clocks count, and pushes are
     * accepted, only from the connection bound to it */
    int worker = m->env->role == ZPS__ROLE__ROLE_WORKER;
    if (worker || push || t == ZPS__ENVELOPE__BODY_CLOCK || t == ZPS__ENVELOPE__BODY_HEARTBEAT) {
        int hello = t == ZPS__ENVELOPE__BODY_HELLO;
        uint64_t nonce = push ? m->env->push->client_nonce : hello ? m->env->hello->client_nonce : 0;
        int speaks = s_speaks_for(s, m, nonce, hello && worker);
        if (speaks) {
            s_touch(s, m);
        } else if (push || t == ZPS__ENVELOPE__BODY_CLOCK || t == ZPS__ENVELOPE__BODY_HEARTBEAT) {
            zps_log_limited(s->log, LC_PERM, 1000, "%s at %s claims rank %u, which another "
                            "connection speaks for: refused", zps_msg_type_name(m->env->type),
                            m->peer, m->env->rank);
            if (push) {
                s->st.received_pushes++;
                s_push_rejected(s, NULL);
            }
            if (t == ZPS__ENVELOPE__BODY_HEARTBEAT) {
                s->st.perm_denied++;
                return; /* never answered */
            }
            s_reply_error(s, m, ZPS_EPERM, "rank %u is bound to another connection; a restarted "
                          "worker must say HELLO first", m->env->rank);
            return;
        }
    }
    switch (t) {
    case ZPS__ENVELOPE__BODY_CLOCK: s_on_clock(s, m); break;
    case ZPS__ENVELOPE__BODY_HEARTBEAT: break;
    case ZPS__ENVELOPE__BODY_HELLO: s_on_hello(s, m); break;
    case ZPS__ENVELOPE__BODY_PULL: s_on_pull(s, m); break;
    case ZPS__ENVELOPE__BODY_PUSH: s->st.received_pushes++; s_on_push(s, m); break;
    case ZPS__ENVELOPE__BODY_STATS: s_on_stats(s, m); break;
    case ZPS__ENVELOPE__BODY_SHUTDOWN: s_on_shutdown(s, m); break;
    case ZPS__ENVELOPE__BODY_DUMP: s_on_dump(s, m); break;
    default:
        s_reply_error(s, m, ZPS_EPROTO, "unexpected message type %s from a client",
                      zps_msg_type_name(m->env->type));
        break;
    }
}

/* Heartbeats, checkpoints, ZAP and disconnects: run at least every 100 ms
 * whatever the load (the loop handles at most drain_batch messages, or
 * 50 ms of them, between two passes). */
static void s_maintenance(ps_server_t *s)
{
    int64_t now = zps_now_ms();
    if (now - s->maint_ms > (int64_t)s->st.maintenance_max_gap_ms)
        s->st.maintenance_max_gap_ms = (uint64_t)(now - s->maint_ms);
    s->maint_ms = now;
    s->st.maintenance_passes++;
    for (int k = 0; s->zap && k < 64; k++) {
        zmq_pollitem_t it = {s->zap, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 0) <= 0 || !(it.revents & ZMQ_POLLIN))
            break;
        s_on_zap(s);
    }
    if (s->mon)
        s_on_monitor(s);
    s_check_heartbeats(s);
    s_checkpoint_tick(s);
}

int ps_server_run(ps_server_t *s, volatile sig_atomic_t *stop)
{
    zps_info(s->log, "serving on %s (rank %u of %u, %u table%s, table 0: %s; nonce %016llx)",
             s->endpoint, s->conf.rank, s->conf.nservers, s->conf.ntables,
             s->conf.ntables == 1 ? "" : "s", s->tabs[0].desc, (unsigned long long)s->nonce);
    int rc = 0;
    uint32_t batch = s->conf.drain_batch ? s->conf.drain_batch : 256;
    while (!s->shutdown && !(stop && *stop)) {
        zmq_pollitem_t it[3] = {{s->sock, 0, ZMQ_POLLIN, 0}, {s->zap, 0, ZMQ_POLLIN, 0},
                                {s->mon, 0, ZMQ_POLLIN, 0}};
        zmq_pollitem_t *items = it;
        int nitems = 1;
        if (s->zap)
            nitems = 2;
        if (s->mon) {
            it[nitems] = (zmq_pollitem_t){s->mon, 0, ZMQ_POLLIN, 0};
            nitems++;
        }
        int n = zmq_poll(items, nitems, 50);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            zps_error(s->log, "poll failed: %s", zmq_strerror(errno));
            rc = ZPS_EIO;
            break;
        }
        s_maintenance(s);
        /* a bounded drain: maintenance comes round again soon whatever the load */
        for (uint32_t k = 0; k < batch && !s->shutdown && !(stop && *stop); k++) {
            zps_msg_t m;
            int r = zps_msg_recv(s->sock, 1, &m, ZMQ_DONTWAIT);
            s->st.bytes_in += m.wire_bytes;
            if (r == ZPS_EIO || r == ZPS_EINTR) {
                zps_msg_close(&m);
                break; /* EAGAIN: drained */
            }
            if (m.wire_bytes > s->conf.max_msg_bytes) {
                if (m.env && m.env->body_case == ZPS__ENVELOPE__BODY_PUSH) {
                    s->st.received_pushes++;
                    s->st.rejected_pushes++;
                }
                s_reply_error(s, &m, ZPS_ETOOBIG, "message of %zu bytes is over the limit of "
                              "--max-msg-mb %llu: split it", m.wire_bytes,
                              (unsigned long long)(s->conf.max_msg_bytes >> 20));
            } else if (r == ZPS_EPROTO || r == ZPS_EVERSION) {
                s_reply_error(s, &m, r, "%s", m.reason);
            } else {
                s_handle(s, &m);
            }
            zps_msg_close(&m);
            s_trim_scratch(s);
            if ((k & 15) == 15 && zps_now_ms() - s->maint_ms >= 50)
                break;
        }
    }
    ps_server_stats_t st;
    ps_server_get_stats(s, &st);
    zps_info(s->log,
             "stopping: %llu keys stored (%.1f MB), %llu pushes received: %llu applied, %llu "
             "duplicates, %llu rejected; %llu acks (%llu keys), %llu pulls (%llu keys), %llu "
             "held pulls, %llu errors, %llu replies dropped, %llu maintenance passes (longest gap "
             "%llu ms)",
             (unsigned long long)st.keys_stored, (double)st.bytes_used / 1e6,
             (unsigned long long)st.received_pushes, (unsigned long long)st.applied_pushes,
             (unsigned long long)st.duplicate_pushes, (unsigned long long)st.rejected_pushes,
             (unsigned long long)st.pushes, (unsigned long long)st.keys_pushed,
             (unsigned long long)st.pulls, (unsigned long long)st.keys_pulled,
             (unsigned long long)st.held_pulls, (unsigned long long)st.errors,
             (unsigned long long)st.dropped_replies, (unsigned long long)st.maintenance_passes,
             (unsigned long long)st.maintenance_max_gap_ms);
    for (uint32_t r = 0, shown = 0; r < s->nclients; r++) {
        const ps_ckpt_client_t *c = &s->clients[r];
        if (!c->nonce)
            continue;
        if (++shown > 64) {
            zps_info(s->log, "(more clients not shown; see STATS)");
            break;
        }
        zps_info(s->log, "client rank %u nonce %016llx: %llu received, %llu applied, %llu "
                 "duplicates, %llu rejected, applied through seq %llu",
                 r, (unsigned long long)c->nonce, (unsigned long long)s->ranks[r].received,
                 (unsigned long long)s->ranks[r].applied, (unsigned long long)s->ranks[r].duplicates,
                 (unsigned long long)s->ranks[r].rejected, (unsigned long long)c->win.lwm);
    }
    if (s->conf.checkpoint_dir[0] && s_checkpoint_inproc(s, "final") != 0)
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
