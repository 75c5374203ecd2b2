/* ps_srv: the server module's private header, shared by its files and
 * by nothing else: ps_server.c (set-up, the loop, dispatch), ps_srv_net.c
 * (replies, connections), ps_srv_auth.c (tokens, CURVE/ZAP, rank binding),
 * ps_srv_exact.c (exactly once, checkpoints, restore), ps_srv_sync.c
 * (ssp/bsp), ps_srv_req.c (request handlers), ps_srv_prom.c (metrics).  Functions shared between
 * those files carry the prefix psv_; the rest stay static in their file. */
#ifndef PS_SRV_H
/* rows an expiry sweep looks at per maintenance pass (about 1 ms) */
#define PS_EXPIRE_BUDGET 32768u
#define PS_SRV_H

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
#include "ps_done.h"
#include "ps_dump.h"
#include "ps_keycache.h"
#include "ps_member.h"
#include "zps_table.h"
#include "zps_codec.h"
#include "zps_curve.h"
#include "zps_err.h"
#include "zps_hash.h"
#include "zps_modelfile.h"
#include "zps_msg.h"
#include "zps_out.h"
#include "zps_place.h"
#include "zps_ranges.h"
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
    LC_DROPPED, LC_HEARTBEAT, LC_BIND, LC_JOIN_RELAY
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
 * connection bound to the rank (see psv_speaks_for). */
typedef struct {
    uint64_t received, applied, duplicates, rejected;
    uint64_t durable_nonce, durable_seq;  /* lwm in the last written checkpoint */
    uint64_t pend_nonce, pend_seq;        /* lwm in the checkpoint being written */
    uint64_t conn;                        /* bound connection (0: none) */
    uint64_t bound_nonce;                 /* the process that bound it (0: not said) */
    int64_t last_ms;                      /* when the bound connection last spoke */
    uint64_t hello_nonce;                 /* the process that last said HELLO as this
                                             worker on the bound connection (0: none) */
} ps_rank_t;

/* A connection seen on the ROUTER socket: key = keyed hash of its routing
 * id (0 empty, 1 deleted); fd from ZMQ_SRCFD, to forget it when the
 * socket monitor reports the disconnect. */
typedef struct {
    uint64_t key;
    int fd;
    struct ps_outc *out;   /* its reply bytes still queued in ZeroMQ (ps_srv_net.c) */
} ps_conn_t;

/* Reply bytes of one connection still queued in ZeroMQ.  Shared by the
 * connection's entry and every reply in flight (refs); ZeroMQ's I/O thread
 * drops a reply's reference when it is done with it, the loop drops the
 * entry's when the connection is forgotten; the last one frees it. */
struct ps_outc {
    _Atomic long long bytes;
    _Atomic int refs;
};


/* An ssp/bsp pull waiting for the slowest worker. */
typedef struct {
    zps_msg_t *m;
    uint64_t conn;
    size_t bytes;
} ps_held_t;

/* Joining (ps_srv_join.c). */
#define PSJ_MAX_DONATES 64
#define PSJ_MAX_DONORS 64

/* A client's PushAck held by a donor until the joiner(s) acknowledged the
 * forwards of its push. */
typedef struct psj_ack {
    zmq_msg_t ident;
    char peer[64];
    uint64_t request_id, seq, nkeys, nonce;
    uint32_t table, rank;
    int waiting;            /* forwards not acknowledged yet */
} psj_ack_t;

/* Which pushes of client (rank, nonce) to server origin (incarnation inc)
 * this server's copy holds (relays). */
typedef struct {
    uint32_t origin, inc, client;
    uint64_t nonce;
    ps_dedup_win_t win;
} psj_owin_t;

/* A forward not acknowledged yet by the joiner. */
typedef struct {
    uint64_t seq, nkeys;
    zmq_msg_t keys, vals;
    uint32_t table, dim, examples;
    int mean;
    float lr_scale;
    int64_t sent_ms;
    psj_ack_t *ack;
    uint32_t client_rank;   /* the client push it carries, at this server */
    uint64_t client_nonce, client_seq;
} psj_fwd_t;

/* A join this server donates ranges to. */
typedef struct {
    uint32_t joiner, nranges;
    uint64_t cut;
    uint8_t mask[ZPS_RANGES / 8];
    void *sock;              /* DEALER to the joiner: forwards */
    char endpoint[256];
    psj_fwd_t *fwd;
    size_t nfwd, fwd_cap;
    pid_t snap_pid;          /* the snapshot child (0: done) */
    struct psj_snap *snap_thread; /* or (sanitizer builds) the snapshot thread */
    int completed;           /* the joiner is a replica now */
    int64_t started_ms;
    int64_t quiet_ms;        /* completion, then each forward: the record is dropped
                                PSJ_DONATE_KEEP_MS after the later of them */
} psj_donate_t;

/* A push part a joiner keeps until its copy is complete. */
typedef struct {
    uint64_t *keys;
    float *vals;
    size_t n;
    uint32_t table, dim;
    float lr_scale;
} psj_buf_t;

typedef struct {
    psj_donate_t don[PSJ_MAX_DONATES];   /* as a donor */
    uint32_t ndon;
    uint64_t cut;                         /* as a joiner: the join's cut (0: none) */
    uint64_t floor;                       /* the cut of this process's first join: pushes
                                             split by older tables are refused (ZPS_ESTALE,
                                             psv_on_push; 0: none) */
    uint8_t mask[ZPS_RANGES / 8];
    uint16_t donors[PSJ_MAX_DONORS];
    uint8_t donor_done[PSJ_MAX_DONORS];
    uint64_t donor_page[PSJ_MAX_DONORS];
    uint32_t ndonors, ndone;
    uint64_t snap_keys;
    int caught_up;
    int64_t started_ms;
    psj_buf_t *buf;
    size_t nbuf, buf_cap, buf_bytes;
    struct { uint32_t rank; uint64_t nonce; ps_dedup_win_t win; } fwin[PSJ_MAX_DONORS];
    uint32_t nfwin;
    uint64_t forwarded, forwards_in, dropped_pushes;
    int ever_replica;                     /* this process held ranges as a replica */
    int stale;                            /* it was given a join after that: its copy
                                             is stale (a restarted coordinator took it
                                             for a new process): it must exit */
    uint8_t scratch[ZPS_RANGES / 8];
    /* relays (ps_srv_join.c, "Relays"): the donor (rank, incarnation) of the
     * last join of each range, and per (donor process, client process) which
     * of the client's pushes to that donor this server's copy holds: the
     * donor's window at the fork (Snap.windows) and the forwards since */
    uint32_t jdonor[ZPS_RANGES];          /* donor rank + 1 (0: never joined) */
    uint32_t jdinc[ZPS_RANGES];
    psj_owin_t *owin;
    size_t nowin, owin_cap;
    uint64_t relays_in, relay_keys, relays_known;
    /* ranges moving (zps-ctl add-server / remove-server): a live server
     * joins some ranges while it serves others, and leaves ranges */
    uint8_t held[ZPS_RANGES / 8];         /* ranges it took pushes of in its last table */
    uint64_t left[ZPS_RANGES];            /* version from which it no longer took r (0) */
    uint64_t rfloor_max;                  /* the highest of them (cuts only grow) */
    uint64_t rfloor[ZPS_RANGES];          /* the cut at which it last joined r: pushes
                                             split by older tables skip r's keys */
    uint32_t my_inc;                      /* its incarnation in the table, once a member */
    /* rows of ranges it no longer takes are deleted --left-rows-ms after it
     * left them (late pushes of them end long before) */
    int64_t left_ms[ZPS_RANGES];          /* when it left r (0: holds it, or purged) */
    uint8_t purge[ZPS_RANGES / 8];        /* ranges the sweep deletes rows of */
    int purging;
    uint32_t purge_tab;                   /* the sweep's table and cursor */
    zps_table_cur_t purge_cur;
    uint64_t purged;                      /* rows deleted so far */
    int restored;                         /* restored from a checkpoint (--restore): its
                                             first table from the coordinator sets floor */
    /* as a donor: one sequence of forwards per joiner process (rank and
     * incarnation), whatever joins it takes from this server: the joiner
     * deduplicates per (donor, donor process) */
    uint64_t fwd_next[ZPS_RANGES_MAX_SERVERS];
    uint32_t fwd_inc[ZPS_RANGES_MAX_SERVERS];
    int inc_known;
    float *gbuf;                          /* a push's values, compacted */
    size_t gbuf_cap;
    uint64_t *kbuf;                       /* a push's keys to buffer */
    size_t kbuf_cap;
} psj_state_t;

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
    zps_pool_t *pool;           /* --threads: helpers for big requests (NULL: none) */
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
    ps_done_t *done;             /* --exit-when-done: the workers that finished */
    /* exactly once, progress, checkpoints */
    ps_ckpt_client_t *clients;   /* per worker rank */
    ps_lost_t *lost;             /* per rank: what a restore lost (see psv_account_lost) */
    ps_rank_t *ranks;            /* per rank: counters, durable mark, binding */
    uint32_t nclients;
    int restored;
    pid_t ckpt_pid;
    int64_t ckpt_last_ms, ckpt_started_ms;
    uint64_t ckpt_counter;
    uint64_t job_id;             /* recorded in checkpoints (see ps_ckpt.h) */
    unsigned char *rst_table;    /* --restore with --coordinator: the checkpoint's range
                                    table (handed to ps_member, then freed) */
    size_t rst_len;
    uint64_t rst_ms;             /* when that checkpoint was written (ms since 1970) */
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
    uint16_t *fd_stale;          /* per fd: disconnect reports to ignore (see psv_on_monitor) */
    size_t fd_stale_cap;
    _Atomic long long *outq;     /* reply bytes queued in ZeroMQ for all connections
                                    (one counter; per connection: ps_conn_t.out),
                                    decremented by ZeroMQ's I/O thread (ps_srv_net.c) */
    ps_conn_t *conns;
    size_t conn_cap, nconns, conn_used;
    uint64_t id_seed;            /* keys the routing-id hash */
    uint64_t nonce;              /* this process: a new value means a restart */
    int64_t maint_ms;            /* last maintenance pass */
    char rejected[64][64];       /* peer addresses already logged */
    size_t nrejected;
    uint64_t rng;                /* stochastic rounding of compressed pull replies */
    struct ps_prom *prom;        /* --metrics-listen (ps_srv_prom.c); NULL: off */
    /* replication (--coordinator): NULL without */
    ps_member_t *member;         /* membership thread: lease and range table */
    zps_ranges_t *ranges;        /* the table this server goes by (version 0: none yet) */
    psj_state_t join;            /* joins this server donates to or makes (ps_srv_join.c) */
    int member_removed;          /* removed from the table: exit without saving */
    int member_retired;          /* drained by remove-server: exit 0 without saving */
    int64_t retired_ms;          /* when it learnt it was drained (0: not) */
    int64_t retired_push_ms;     /* its last late push */
};

/* What logs and STATS show of a client's process nonce: never the nonce
 * itself, which in plaintext mode lets a process take the rank over. */
static inline uint64_t psv_nonce_fingerprint(uint64_t nonce)
{
    return zps_mix64(nonce, 0x6e6f6e6365ULL) >> 32;
}

/* ps_srv_net.c */
int psv_admit(ps_server_t *s, zps_msg_t *m);
uint64_t psv_conn_key(const ps_server_t *s, zps_msg_t *m);
int psv_identity(ps_server_t *s, zps_msg_t *m);
void psv_on_monitor(ps_server_t *s);
void psv_outc_put(struct ps_outc *o);
void psv_reply_error(ps_server_t *s, zps_msg_t *m, int code, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));
void psv_reply_error_key(ps_server_t *s, zps_msg_t *m, int code, uint64_t key, const char *fmt,
    ...) __attribute__((format(printf, 5, 6)));
int psv_reply_room(ps_server_t *s, zps_msg_t *m, size_t bytes);
void psv_send(ps_server_t *s, zps_msg_t *m, Zps__Envelope *env, void *keys, size_t klen,
    void *vals, size_t vlen);

/* ps_srv_auth.c */
void psv_on_zap(ps_server_t *s);
int psv_read_allow_dir(ps_server_t *s, const char *dir, char *err, size_t errlen);
int psv_read_token(const char *path, char *out, size_t *outlen, char *err, size_t errlen);
int psv_speaks_for(ps_server_t *s, zps_msg_t *m, uint64_t nonce, int hello);
int psv_token_ok(const char *ours, size_t olen, const char *got);

/* ps_srv_exact.c */
void psv_account_lost(ps_server_t *s, uint32_t rank, const Zps__Push *req, int dup);
int psv_checkpoint_inproc(ps_server_t *s, const char *what);
void psv_checkpoint_tick(ps_server_t *s);
ps_ckpt_client_t *psv_client_rec(ps_server_t *s, uint32_t rank);
void psv_push_rejected(ps_server_t *s, ps_rank_t *rk);
int psv_restore(ps_server_t *s, char *err, size_t errlen);

/* ps_srv_sync.c */
int psv_bsp_accumulate(ps_server_t *s, zps_msg_t *m, ps_tab_t *tb, size_t n, const float *g,
    float wgt, float lr_scale);
void psv_check_heartbeats(ps_server_t *s);
void psv_drop_held_if(ps_server_t *s, uint64_t conn, uint32_t worker, int by_worker);
void psv_finish_clock(ps_server_t *s, uint32_t w, uint64_t clock);
int psv_hold(ps_server_t *s, zps_msg_t *m);
void psv_on_clock(ps_server_t *s, zps_msg_t *m);
void psv_touch(ps_server_t *s, zps_msg_t *m);
int psv_worker_of(const ps_server_t *s, const zps_msg_t *m, uint32_t *w);

/* ps_srv_req.c */
/* --evict: evict from tb (table 0) what --max-keys and --max-memory-mb need
 * for new_keys more keys (ps_srv_req.c; a joiner's pages and forwards too). */
void psv_evict_for(ps_server_t *s, ps_tab_t *tb, size_t new_keys);
int psv_check_limits(ps_server_t *s, zps_msg_t *m, const zps_table_t *t, size_t new_keys,
    size_t acc_new);
const float *psv_grad(ps_server_t *s, const float *g, size_t i, size_t dim);
int psv_grow_rowp(ps_server_t *s, zps_msg_t *m, size_t n);
void psv_on_dump(ps_server_t *s, zps_msg_t *m);
void psv_on_hello(ps_server_t *s, zps_msg_t *m);
void psv_on_pull(ps_server_t *s, zps_msg_t *m);
void psv_on_push(ps_server_t *s, zps_msg_t *m);
void psv_on_shutdown(ps_server_t *s, zps_msg_t *m);
void psv_on_stats(ps_server_t *s, zps_msg_t *m);

/* ps_srv_join.c: joining a replicated job */
void psv_join_table(ps_server_t *s);
/* The coordinator's table, if the membership thread has a newer one, with
 * what it changes (psv_join_table). */
void psv_table_refresh(ps_server_t *s);
int psv_join_push(ps_server_t *s, zps_msg_t *m, const Zps__Push *req, size_t *n, uint32_t dim,
                  const float **g, float lr_scale);
/* May a push split by table version v carry a key of range r here?  (It
 * takes r now, or took it until a version after v: a late retry.) */
int psv_join_accepts(const ps_server_t *s, uint32_t r, uint64_t v);
/* Forwards to a joiner not acknowledged yet? */
int psv_join_forwards_waiting(const ps_server_t *s);
/* A relay (Push.relay_rank): keep in s->keys / *g only the keys this server
 * must apply (ranges it joined after the relay's split from the server it
 * relays, which neither that server's snapshot nor a forward brought);
 * *n is updated, *g may point to a join buffer.  0 or ZPS_ENOMEM. */
int psv_join_relay(ps_server_t *s, const Zps__Push *req, uint32_t rank, uint64_t nonce,
                   size_t *n, uint32_t dim, const float **g);
int psv_join_forward(ps_server_t *s, zps_msg_t *m, const Zps__Push *req, uint32_t rank,
                     uint64_t nonce, size_t n, uint32_t dim, const float *g, float lr_scale);
int psv_join_ack_held(const ps_server_t *s, uint32_t rank, uint64_t nonce, uint64_t seq);
void psv_on_forward(ps_server_t *s, zps_msg_t *m);
void psv_on_snap(ps_server_t *s, zps_msg_t *m);
void psv_join_poll(ps_server_t *s);
void psv_join_destroy(ps_server_t *s);

/* ps_srv_prom.c: --metrics-listen */
int psv_prom_new(ps_server_t *s, char *err, size_t errlen);
void psv_prom_destroy(ps_server_t *s);
const char *psv_prom_address(const ps_server_t *s);
void psv_prom_publish(ps_server_t *s, int force);
void psv_prom_rejected(ps_server_t *s, int code);
void psv_prom_request(ps_server_t *s, int push, int64_t ns);

/* ps_server.c */
void psv_handle(ps_server_t *s, zps_msg_t *m);

#endif
