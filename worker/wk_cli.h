/* wk_cli: the client module's private header, shared by its files and by
 * nothing else (wk_client.h is the API):
 *
 *   wk_client.c       the API: life cycle and the hello, control messages
 *                     (stats, clock done, shutdown), counters
 *   wk_cli_ticket.c   the ticket ring: request slots, reply matching by id
 *   wk_cli_send.c     the send path: a request cut by server (wk_split),
 *                     encoded, held for retries (pushes), sent; resends
 *   wk_cli_recv.c     the receive path: replies applied to their tickets and
 *                     to the held pushes, server restarts
 *   wk_cli_wait.c     waiting: the poll loop, the retry scan, heartbeats,
 *                     the retention cap
 *   wk_cli_local.c    --local: the servers' work in process (zps_shard)
 *
 * Functions shared between those files carry the prefix wkc_; the rest
 * stay static in their file.  The handle's state is one struct, below; the
 * parts with state of their own are modules with tests of their own
 * (wk_split: keys and values cut by server, pure functions; wk_keysig: key
 * lists sent lately; wk_retry: pushes held until durable). */
#ifndef WK_CLI_H
#define WK_CLI_H

#include "wk_client.h"

#include <stdarg.h>
#include <zmq.h>

#include "wk_keysig.h"
#include "wk_retry.h"
#include "zps_msg.h"
#include "zps_ranges.h"
#include "zps_shard.h"

#define WK_MAX_TABLES 8
#define WK_SIG_RING 64  /* key-list signatures remembered per server */
#define WK_SCAN_MS 50   /* the retry scan runs at most this often */
#define WK_NONCES 4     /* replaced server processes remembered per server */
#define WK_GEN_SHIFT 48 /* a request id's bits above this count a pull's re-splits */
#define WK_ID_MASK ((1ULL << WK_GEN_SHIFT) - 1)
/* a relay's request id: its push's ticket id (or 0) with this bit: its
 * answers count for the ticket's relays, never for its own parts */
#define WK_RELAY_ID (1ULL << 47)

enum { RQ_FREE = 0, RQ_PULL, RQ_PUSH, RQ_HELLO, RQ_STATS, RQ_SHUTDOWN, RQ_CLOCK };

/* A request in flight: one slot of the ticket ring (wk_cli_ticket.c); the
 * per-server arrays are allocated with the ring. */
typedef struct {
    uint64_t id;
    int kind;
    uint32_t pending;      /* servers that still owe a reply */
    int status;            /* first error, 0 if none */
    uint32_t table, dim;
    float *out;            /* pull destination */
    size_t n;
    uint32_t *pos;         /* over >1 server: original index per key, by server (wk_split) */
    size_t pos_cap;
    size_t *off;           /* nservers + 1 offsets into pos (and key counts) */
    uint8_t *waiting;      /* per server */
    wk_server_stats_t *stats;
    uint64_t clock;
    uint64_t *seqs;        /* push: per server, the seq of its sub-request */
    uint32_t relays;       /* push: relays of its parts not acknowledged yet (wk_cli_repl.c) */
    uint32_t push_codec_used;  /* the codec of this request's values frame */
    wk_push_meta_t meta;
    uint8_t *keep;         /* pull, per server: 1 keys kept (for a resend) */
    int64_t *sent_ms;      /* pull, per server: last (re)send */
    int64_t first_ms;      /* first send */
    uint32_t gen;          /* pull: sends so far after failovers (in the request id's top
                              bits, so replies to an earlier split are ignored) */
    uint64_t *keys;        /* pull, replicated job: the keys (to split again) */
    size_t keys_cap;
    zmq_msg_t *keep_keys;  /* pull: for a resend after a key-cache miss or a timeout */
    char err[320];
} wk_req_t;

/* A push as sent to one server, held in c->retry until acknowledged and
 * durable: its frames (shared with ZeroMQ, not copied) and what its
 * envelope needs, so it can be resent after its ticket is gone. */
typedef struct {
    zmq_msg_t keys, vals;
    uint64_t req_id, nkeys, clock, progress_rows;
    uint32_t table, dim, codec, examples, progress_epoch;
    int tick, mean;
    float lr_scale;        /* the step multiplier when it was first sent */
    uint64_t table_version; /* replicated: the range table it was split by (kept on resends) */
    /* a relay (wk_cli_repl.c): the part removed server relay_rank - 1
     * (incarnation relay_inc) never acknowledged, its seq there and the table
     * it was split by; relay_rank 0: an ordinary push */
    uint32_t relay_rank, relay_inc;
    uint64_t relay_seq, relay_version;
} wk_held_t;

/* What a server said of itself in its hello reply. */
typedef struct {
    uint32_t rank, nservers, ntables;
    wk_table_info_t tables[WK_MAX_TABLES];
    char job[128];
    int has_progress;
    uint32_t progress_epoch;
    uint64_t progress_rows;
} wk_hello_t;

/* The handle.  Arrays marked "per server" are indexed by server rank. */
struct wk_client {
    wk_client_conf_t conf;
    char **servers;
    void *ctx;
    void **socks;
    zmq_pollitem_t *items;
    wk_table_info_t tables[WK_MAX_TABLES];
    uint32_t ntables;
    wk_hello_t *hello;      /* per server, filled by the hello */
    wk_req_t *reqs;
    uint32_t mask, inflight;
    uint64_t next_id, clock;
    uint64_t *seq_next;     /* per server: last push seq used (seqs are per server) */
    wk_retry_t *retry;      /* pushes held per server (unacked, or not yet durable) */
    int retain;             /* keep acked pushes until durable */
    uint64_t *snonce;       /* per server: its process nonce (0: unknown / old server) */
    uint64_t *old_nonces;   /* per server: WK_NONCES replaced ones */
    int64_t *last_recv_ms;  /* per server: last message received */
    int64_t next_scan_ms;
    wk_client_retry_stats_t rs;
    int sticky;             /* an error that fails every later call */
    int64_t *last_sent;     /* per server, ms: for heartbeats */
    uint32_t *owner;        /* scratch: server of each key */
    uint64_t *kscratch;     /* scratch: one server's keys */
    size_t scratch_cap;
    uint64_t sent, received;
    uint64_t push_raw, push_wire, key_cache_resends;
    float *vscratch, *sscratch; /* one server's gradient rows, and as sent */
    size_t vscratch_cap;
    float *dscratch;            /* decoded pull reply values */
    size_t dscratch_cap;
    wk_keysig_t *sigs;          /* key lists sent lately, WK_SIG_RING per server */
    uint64_t rng;
    uint64_t nonce;             /* this process: (rank, nonce, seq) names a push */
    uint64_t *acked;            /* per server: pushes acknowledged */
    int64_t *retry_at_ms;       /* per server: backoff interval */
    int64_t *warned_ms;         /* per server: last on_wait call */
    /* local mode */
    zps_shard_t *lshard;        /* --local: the servers' work, in process */
    float lr_scale;             /* wk_client_set_lr_scale (1: none) */
    /* replication (conf.coordinator; wk_cli_repl.c): NULL/0 without */
    void *coord;                /* DEALER to zps-coord */
    zps_ranges_t *ranges;       /* the range table requests are split by */
    uint8_t *dead;              /* per server: removed from the table */
    uint8_t *connected;         /* per server: its socket is connected (a slot of a server
                                   added later is connected when the table names it) */
    char **eps;                 /* per rank slot: endpoint as announced to the coordinator */
    uint32_t neps;
    uint32_t ngiven;            /* servers given (--servers): their endpoints are kept */
    uint32_t nitems;            /* poll items: the servers, then the coordinator */
    int64_t coord_next_ms;      /* next TABLE_GET */
    uint64_t coord_asked;       /* request id of the TABLE_GET in flight (0: none) */
    uint64_t coord_seq;         /* TABLE_GETs sent */
    int64_t coord_asked_ms;
    uint64_t failovers;         /* servers removed while this client ran */
    char ljob[128];
    char err[512];
};

/* ---- wk_client.c ------------------------------------------------------- */
/* c->err, the text wk_client_error returns */
void wkc_seterr(wk_client_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* one line to conf.on_notice, if set */
void wkc_notice(wk_client_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- wk_cli_ticket.c --------------------------------------------------- */
/* The ring: cap slots (a power of two), each with per-server arrays for
 * nslots servers.  0 or ZPS_ENOMEM (wkc_ring_free cleans up either way). */
int wkc_ring_new(wk_client_t *c, uint32_t cap, uint32_t nslots);
/* Releases the slots in flight and frees the ring. */
void wkc_ring_free(wk_client_t *c);
/* A free slot for a new request (its id is the ticket), or NULL with c->err
 * set when the slot the next id needs is still in flight. */
wk_req_t *wkc_req_new(wk_client_t *c, int kind);
/* Frees the slot; a push given up on stops being retried. */
void wkc_req_release(wk_client_t *c, wk_req_t *r);
/* A request's first error (later ones are dropped). */
void wkc_req_err(wk_req_t *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The request in flight with this id, or NULL (released, or never sent). */
static inline wk_req_t *wkc_req_find(wk_client_t *c, uint64_t id)
{
    wk_req_t *r = &c->reqs[id & c->mask];
    return r->kind != RQ_FREE && r->id == id ? r : NULL;
}

/* ---- wk_cli_send.c ----------------------------------------------------- */
/* A pull or push: checks, then one sub-request per server (or local mode).
 * *ticket on success. */
int wkc_start(wk_client_t *c, int kind, uint32_t table, const uint64_t *keys, const float *grads,
              size_t n, float *out, const wk_push_meta_t *meta, uint64_t *ticket);
/* A control message (no bulk frames) to server s for request r. */
int wkc_send_ctl(wk_client_t *c, wk_req_t *r, uint32_t s, Zps__Envelope *env);
/* Pull r to s again, keys in full (after a key-cache miss or a timeout). */
void wkc_resend_pull(wk_client_t *c, wk_req_t *r, uint32_t s);
/* Held push it to s again, keys in full, under its request id: 0 or the
 * send error (it stays held). */
int wkc_resend_push(wk_client_t *c, uint32_t s, wk_retry_item_t *it);
/* wk_retry's free callback for a wk_held_t */
void wkc_held_free(void *ctx, void *payload);

/* ---- wk_cli_recv.c ----------------------------------------------------- */
/* Receive and apply everything waiting on server s's socket. */
void wkc_drain(wk_client_t *c, uint32_t s);
/* After a restart of s: every held push again, oldest first, and the
 * pulls the dead process owed. */
void wkc_resend_all(wk_client_t *c, uint32_t s);

/* ---- wk_cli_wait.c ----------------------------------------------------- */
/* One round: the retry scan, heartbeats, then up to slice_ms for replies.
 * 0, or ZPS_EINTR / ZPS_EIO (c->err says why). */
int wkc_pump(wk_client_t *c, long slice_ms);
/* Past the retention cap: wait until checkpoints release enough. */
int wkc_wait_retained(wk_client_t *c);

/* ---- wk_cli_repl.c ----------------------------------------------------- */
/* Connect to conf.coordinator (c->ctx must exist) and wait for its first
 * range table: c->ranges, and the servers' announced endpoints (c->eps),
 * before the per-server arrays exist (their size is the table's rank
 * slots). */
int wkc_repl_connect(wk_client_t *c, char *err, size_t errlen);
/* Then, with the per-server arrays: the coordinator's poll item, every
 * rank not in the table dead. */
int wkc_repl_start(wk_client_t *c, char *err, size_t errlen);
void wkc_repl_free(wk_client_t *c);
/* Ask the coordinator for a newer table (at most every 200 ms), take in
 * its answers, and fail over when a table removes servers. */
void wkc_repl_poll(wk_client_t *c);
/* Relay item it of server s was acknowledged, or is being dropped: one
 * relay less for its push's ticket (if still in flight). */
void wkc_relay_done(wk_client_t *c, const wk_retry_item_t *it);
/* Are request r's keys split into per-server parts (pos/off)?  (Not with
 * one server and no range table: the caller's arrays go out as they are.) */
static inline int wkc_split_used(const wk_client_t *c)
{
    return c->conf.nservers > 1 || c->ranges;
}
/* Pull r again, split by the current table (after a failover). */
void wkc_repull(wk_client_t *c, wk_req_t *r);

/* ---- wk_cli_local.c ---------------------------------------------------- */
wk_client_t *wkc_local_new(const wk_client_conf_t *conf, char *err, size_t errlen);
/* A pull or push applied to the in-process shard at once. */
int wkc_local_op(wk_client_t *c, int kind, const uint64_t *keys, const float *grads, size_t n,
                 float *out, float *sent);
/* wk_client_stats in local mode */
void wkc_local_stats(const wk_client_t *c, wk_server_stats_t *out);

#endif
