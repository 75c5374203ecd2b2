/* wk_client: the client side of the parameter servers.
 *
 * A client holds one DEALER socket per server.  A logical request (pull or
 * push of a sorted key list) is split by zps_place into one sub-request per
 * server that owns any of the keys, all sent at once; the replies are
 * reassembled into the caller's key order.  Many requests may be in flight:
 * the *_async calls return a ticket at once and wk_client_wait(ticket)
 * drives the sockets until that ticket completes.  There is no background
 * thread; all progress happens inside calls on the handle, so a client is
 * used from one thread at a time.
 *
 * Errors never hang: every wait has a timeout, and a timeout or a server's
 * ERROR reply returns a ZPS_E* code with wk_client_error() naming the server
 * (rank and address) and the reason.
 *
 * Pushes: each server's part of a push carries that server's next sequence
 * number (per client process and server, from 1) and is held, encoded, in
 * a wk_retry list until the server has acknowledged it and its durable mark
 * (PushAck.durable_seq) covers it.  Unacknowledged pushes are retried by a
 * timer-driven scan, oldest first; a server that comes back as a new
 * process (PushAck.server_nonce changed) gets every held push again, in seq
 * order.  See docs/architecture.md, "Fault tolerance".
 *
 * Ownership: for pull_async, keys and out must stay valid until the ticket
 * completes; push_async copies what it sends, so its buffers may be reused
 * as soon as it returns.  A ticket that fails or times out is released and
 * a late reply to it is ignored.
 *
 * Implementation: wk_client.c and its parts wk_cli_*.c, which share the
 * private header wk_cli.h; wk_split cuts requests by server, wk_keysig
 * remembers key lists for key caching, wk_retry holds pushes until durable. */
#ifndef WK_CLIENT_H
#define WK_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#define WK_MAX_SERVERS 1024

typedef struct {
    const char *const *servers; /* endpoints, index = server rank */
    uint32_t nservers;
    int role;                   /* ZPS__ROLE__ROLE_WORKER or _TOOL */
    uint32_t rank;              /* sender rank in logs and envelopes */
    int connect_timeout_ms;     /* for the hello with every server [10000] */
    int timeout_ms;             /* default for blocking calls [60000] */
    uint32_t max_inflight;      /* tickets in flight (power of two) [256] */
    int sync_all;               /* ssp/bsp: every push goes to every server (empty if it
                                   owns none of the keys) so each server sees every clock */
    int heartbeat_ms;           /* while waiting, tell silent servers we are alive [0: off] */
    uint32_t push_codec;        /* push values: 0 f32, 1 fp16, 2 int8 (zps_vcodec.h) */
    uint32_t pull_codec;        /* codec asked for pull replies */
    int key_cache;              /* send a repeated key list as a signature */
    uint64_t seed;              /* stochastic rounding */
    /* In-process store instead of servers (the single-machine baseline):
     * if set, servers/nservers are ignored and pulls and pushes go to a
     * local zps_table with this optimizer, completing at once. */
    const struct zps_optim_conf_s *local;
    const char *local_job;      /* what wk_client_job reports in local mode */
    /* Retries: a pull or push a server has not answered within retry_ms is
     * sent again (backing off to 8 s); pushes are deduplicated by the server,
     * so a retry is never applied twice.  After server_timeout_ms without an
     * answer the request fails.  0 = no retries (timeout_ms applies). */
    int retry_ms;
    int server_timeout_ms;
    /* Pushes re-sent to a server whose answer is overdue wait retry_ms (doubling
     * to 8 s); pulls at least pull_retry_ms (0: retry_ms), as a held ssp/bsp
     * pull is unanswered by design. */
    int pull_retry_ms;
    /* Retention (needs retry_ms > 0): a push is kept (its encoded frames)
     * until the server says it is durable (PushAck.durable_seq covers it),
     * so a server restored from a checkpoint gets it again.  Past this many
     * held bytes, new pushes wait for a checkpoint.  0: keep a push only
     * until its acknowledgement (what a crash of the server after the ack
     * and before its next checkpoint loses is lost).  [256 MiB] */
    uint64_t max_retained_bytes;
    /* Called (at most every 5 s per server) while waiting for a server. */
    void (*on_wait)(void *ctx, uint32_t server, const char *addr, double waited_s);
    void *on_wait_ctx;
    /* Called with one line of text on events worth a log line: a server
     * restart detected (and what is resent), the retention cap reached. */
    void (*on_notice)(void *ctx, const char *text);
    /* A replicated job: zps-coord's endpoint, or NULL.  The client fetches
     * the range table from it (and polls it every 200 ms): a push goes to
     * every replica of its keys' ranges and completes when all of them
     * acknowledged it; a pull goes to each range's primary; a server the
     * coordinator removes is failed over (its pushes are on the other
     * replicas already; its pulls are asked again of the new primaries).
     * Acknowledged by every replica counts as durable (no retention). */
    const char *coordinator;
    /* CURVE: this client's keys and the servers' public key (Z85 text), or NULL */
    const char *curve_public, *curve_secret, *server_public;
} wk_client_conf_t;

/* What a push carries besides keys and values (ssp/bsp and accounting). */
typedef struct {
    uint32_t examples;          /* rows behind the gradient */
    int mean;                   /* gradient is a mean over the rows (else a sum) */
    int tick;                   /* this push finishes the worker's current clock */
    float *sent;                /* if set: receives the values as the servers will
                                   decode them (n * dim), for error feedback */
    uint32_t progress_epoch;    /* worker progress recorded with the servers */
    uint64_t progress_rows;
} wk_push_meta_t;

typedef struct {
    uint64_t keys_stored, bytes_used, pushes, pulls, keys_pushed, keys_pulled;
    uint64_t bytes_in, bytes_out, errors, uptime_ms;
    uint64_t max_staleness, min_clock, pull_waits, workers_dropped, clocks_applied;
    uint64_t push_raw_bytes, push_wire_bytes, key_cache_hits, key_cache_misses;
    uint64_t duplicate_pushes, checkpoints, restored_pushes, lost_pushes, applied_pushes;
    uint32_t nworkers;
    uint64_t worker_clocks[64];  /* first 64 workers */
} wk_server_stats_t;

typedef struct {
    uint32_t dim;
    char optimizer[16];
    char options[256];
} wk_table_info_t;

typedef struct wk_client wk_client_t;

void wk_client_conf_defaults(wk_client_conf_t *c);

/* Connects to every server and says hello; checks that server i says it is
 * rank i of nservers and that all servers agree on their tables.  Returns
 * NULL with the reason (naming the server and address) in err. */
wk_client_t *wk_client_new(const wk_client_conf_t *conf, char *err, size_t errlen);
void wk_client_destroy(wk_client_t **c);

/* Tables as the servers described them in the hello. */
uint32_t wk_client_ntables(const wk_client_t *c);
const wk_table_info_t *wk_client_table(const wk_client_t *c, uint32_t table);

/* Blocking forms (default timeout).  keys: n sorted, strictly increasing ids.
 * pull writes n * dim floats to out; push sends n * dim gradient floats. */
int wk_client_pull(wk_client_t *c, uint32_t table, const uint64_t *keys, size_t n, float *out);
int wk_client_push(wk_client_t *c, uint32_t table, const uint64_t *keys, const float *grads,
                   size_t n);

/* Asynchronous forms: *ticket identifies the request for wk_client_wait. */
int wk_client_pull_async(wk_client_t *c, uint32_t table, const uint64_t *keys, size_t n,
                         float *out, uint64_t *ticket);
int wk_client_push_async(wk_client_t *c, uint32_t table, const uint64_t *keys,
                         const float *grads, size_t n, uint64_t *ticket);

/* Push with metadata (meta may be NULL: examples 0, sum, no tick). */
int wk_client_push_ex(wk_client_t *c, uint32_t table, const uint64_t *keys, const float *grads,
                      size_t n, const wk_push_meta_t *meta, uint64_t *ticket);

/* The clock stamped on the following pulls and pushes (ssp/bsp). */
void wk_client_set_clock(wk_client_t *c, uint64_t clock);
/* Step-size multiplier sent with the following pushes (Push.lr_scale; in
 * --local mode applied to the in-process table): --epochs auto's step
 * growth.  1 = none. */
void wk_client_set_lr_scale(wk_client_t *c, float scale);

/* Tell every server this worker has finished (ssp/bsp: it leaves the
 * clock; a server with --exit-when-done counts it); waits for the
 * acknowledgements.  Sent in every mode at the end of a successful run. */
int wk_client_done(wk_client_t *c);

/* Progress the servers had recorded for this worker rank at the hello
 * (the furthest over all servers).  Returns 1 if any, else 0. */
int wk_client_progress(const wk_client_t *c, uint32_t *epoch, uint64_t *rows);

/* The servers' job settings from the hello ("consistency=...,workers=N"). */
const char *wk_client_job(const wk_client_t *c);

/* Wait up to timeout_ms (< 0: the default) for ticket.  0 on success. */
int wk_client_wait(wk_client_t *c, uint64_t ticket, int timeout_ms);

/* Tickets in flight. */
uint32_t wk_client_inflight(const wk_client_t *c);

/* Server-side counters of one server.  wk_client_shutdown asks one server
 * to exit; it sends no admin token, so a server refuses it (ZPS_EPERM)
 * unless it runs without one (zps-ctl sends the token). */
int wk_client_stats(wk_client_t *c, uint32_t server, wk_server_stats_t *out);
int wk_client_shutdown(wk_client_t *c, uint32_t server, const char *reason);

/* Bytes this client sent and received (all frames). */
void wk_client_traffic(const wk_client_t *c, uint64_t *sent, uint64_t *received);

/* Pushes: bytes they would take uncompressed (12 per key/value pair) and
 * bytes actually sent; key lists re-sent after a key-cache miss. */
void wk_client_push_bytes(const wk_client_t *c, uint64_t *raw, uint64_t *wire,
                          uint64_t *key_cache_resends);

/* What the retries and the retention did (all servers). */
typedef struct {
    uint64_t acked;           /* push sub-requests acknowledged (each once) */
    uint64_t retried;         /* push sends repeated because an answer was overdue */
    uint64_t pull_retried;    /* pull sends repeated */
    uint64_t restarts;        /* server restarts detected (a new server nonce) */
    uint64_t restart_resent;  /* pushes resent because their server restarted */
    uint64_t probes;          /* retained pushes resent to learn a newer durable mark */
    uint64_t dup_acks;        /* acks of a push already acknowledged (ignored) */
    uint64_t stale_replies;   /* replies from a server process that was replaced (ignored) */
    uint64_t seq_refusals;    /* pushes a server refused as beyond its dedup window (retried) */
    uint64_t relayed;         /* replicated: push parts a removed server never acknowledged,
                                 relayed to its ranges' current replicas (each target once) */
    uint64_t retained_bytes;  /* held now (unacknowledged + not yet durable) */
    uint64_t retained_peak;
    uint64_t retained_pushes; /* held now, all servers */
    uint64_t cap_waits;       /* times a push waited for the retention cap */
    uint64_t cap_wait_ms;     /* time spent so */
} wk_client_retry_stats_t;

void wk_client_retry_stats(const wk_client_t *c, wk_client_retry_stats_t *out);

/* Pushes server s has acknowledged to this client (duplicates included once). */
uint64_t wk_client_acked(const wk_client_t *c, uint32_t server);

/* Text of the last error (naming the server), "" if none. */
const char *wk_client_error(const wk_client_t *c);

#endif
