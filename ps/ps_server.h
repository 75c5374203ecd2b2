/* ps_server: one parameter-server shard behind a ZeroMQ ROUTER socket.
 *
 * The server owns its tables (zps_table + zps_optim per table) and serves
 * HELLO, PULL, PUSH, STATS, SHUTDOWN, CLOCK, HEARTBEAT and DUMP from any
 * number of clients on one
 * thread.  A ROUTER never blocks on a peer: replies to a vanished or slow
 * client are queued up to the high-water mark and then dropped (counted),
 * so one bad client cannot stall the others.  Every request is validated in
 * full before anything is applied (a rejected push changes nothing) and
 * answered with an ERROR naming the problem; the server keeps serving.
 * Security and resource bounds: docs/security.md.
 *
 * Ownership: the server keeps a pointer to log (not owned) and copies conf. */
#ifndef PS_SERVER_H
#define PS_SERVER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "zps_optim.h"
#include "zps_log.h"
#include "zps_shard.h"

#define PS_MAX_TABLES 8

enum { PS_ACCUM_AUTO = 0, PS_ACCUM_F32, PS_ACCUM_UF16 };

typedef struct {
    char bind[256];             /* tcp://IP:PORT; port 0 or * picks a free one */
    uint32_t rank;              /* this server's rank */
    uint32_t nservers;          /* servers in the job */
    uint32_t ntables;           /* tables[0..ntables) */
    zps_optim_conf_t tables[PS_MAX_TABLES];
    uint64_t capacity_hint;     /* keys per table expected (pre-sizes the table) */
    uint64_t max_msg_bytes;     /* a bigger message gets a ZPS_ETOOBIG reply (ZeroMQ's
                                   ZMQ_MAXMSGSIZE, twice this, drops what is bigger still) */
    uint64_t max_keys;          /* keys per request */
    char ready_file[512];       /* if set, the bound endpoint is written here */
    char save_dir[512];         /* if set, table 0 is saved here when serving ends */
    char model_name[16];        /* for the saved model's manifest */
    char options[1024];         /* training options, recorded in the manifest */
    /* consistency (see ps_server.c): 0 async, 1 ssp, 2 bsp */
    int consistency;
    uint32_t staleness;         /* ssp:N */
    uint32_t num_workers;       /* workers whose clocks are kept */
    uint32_t heartbeat_timeout_ms;
    char job[128];              /* canonical job settings, sent in the hello */
    /* checkpoints (see ps_ckpt.h) */
    char checkpoint_dir[512];
    uint32_t checkpoint_every_ms;
    uint32_t checkpoint_keep;
    int restore;                /* load the newest valid checkpoint at start */
    /* security: with curve_secret, only clients whose public key is in
     * allow_dir get in (ZAP handler), and all traffic is encrypted */
    char curve_secret[512];
    char allow_dir[512];
    /* admin secret: SHUTDOWN must carry the token in this file (0600, ours);
     * without it every SHUTDOWN is refused (stop the server with SIGTERM) */
    char admin_token_file[512];
    /* resource limits (see docs/security.md) */
    uint64_t limit_keys;          /* --max-keys: keys stored, all tables (0: none) */
    uint64_t limit_memory_bytes;  /* --max-memory-mb: table + accumulator bytes (0: none) */
    uint32_t max_connections;     /* --max-connections: peers served at once */
    uint32_t max_held_per_peer;   /* ssp/bsp pulls held per connection */
    uint32_t max_held_total;      /* ... and in all */
    uint64_t max_held_bytes;      /* bytes of held pulls in all */
    uint64_t max_reply_bytes;     /* --max-reply-mb: reply bytes queued unread per connection */
    uint64_t max_reply_total;     /* --max-reply-total-mb: ... for all connections */
    uint32_t sndhwm;              /* replies queued per peer; more are dropped (counted) */
    uint32_t drain_batch;         /* messages handled between maintenance passes */
    float clip_gradient;          /* --clip-gradient X: each value into [-X, X] (0: off) */
    char metrics_listen[64];      /* --metrics-listen ADDR:PORT: Prometheus /metrics ("": off) */
    int exit_when_done;           /* --exit-when-done: stop (save, exit 0) once all
                                     num_workers workers said they finished (ps_done) */
    zps_admit_conf_t admit;       /* --admit, table 0 (mode OFF: every key stored) */
    zps_bound_conf_t bound;       /* --expire-after S, --evict: table 0 (zps_shard) */
    int accum;                    /* --accum, table 0's ftrl n: PS_ACCUM_AUTO (uf16 with
                                     expiry or eviction, else f32), _F32 or _BF16 */
    char coordinator[256];        /* --coordinator EP: a replicated job; membership, lease
                                     and range table from zps-coord (ps_member) ("": none) */
    double join_rate_mb;          /* --join-rate-mb: a donor's snapshot, MB/s (0: no limit) */
    char announce[256];           /* --announce EP: the endpoint published for this server
                                     ("": the bound one) */
    uint32_t left_rows_ms;        /* --left-rows-ms: rows of a range this server no longer
                                     holds are deleted this long after it left the range */
    uint64_t join_buffer_bytes;   /* --join-buffer-mb: pushes a joiner buffers before its
                                     copy is complete; more are refused (retried) */
    uint32_t threads;             /* --threads: big requests' table work over this many
                                     threads (zps_pool; 1: the event loop's alone; 0:
                                     auto, the machine's cores up to 8) */
} ps_server_conf_t;

typedef struct {
    uint64_t keys_stored, bytes_used;
    uint64_t pushes, pulls, keys_pushed, keys_pulled;
    uint64_t bytes_in, bytes_out, errors, hellos;
    uint64_t uptime_ms;
    uint64_t max_staleness, min_clock, pull_waits, workers_dropped, clocks_applied;
    uint64_t push_raw_bytes, push_wire_bytes, key_cache_hits, key_cache_misses;
    uint64_t duplicate_pushes, checkpoints, restored_pushes, lost_pushes, applied_pushes;
    uint64_t received_pushes, rejected_pushes, held_pulls;
    uint64_t dropped_replies;        /* replies not queued: peer's queue full or peer gone */
    uint64_t refused_peers;          /* messages refused by the connection limit */
    uint64_t perm_denied;            /* requests refused with ZPS_EPERM */
    uint64_t reply_refused;          /* pulls refused: too many reply bytes queued unread */
    uint64_t reply_queued_peak;      /* most reply bytes queued unread at once (all peers) */
    uint64_t maintenance_passes;     /* heartbeat/checkpoint/ZAP passes of the loop */
    uint64_t maintenance_max_gap_ms; /* longest time between two passes */
    uint64_t server_nonce;
    /* --admit (zps_shard admission), all tables */
    uint64_t admitted_keys, admission_rejected_keys, admission_rejected_pushes;
    uint64_t admission_sketch_bytes;
    /* --expire-after / --evict, table 0 */
    uint64_t expired_keys, evicted_keys;
    /* replication: relays received, keys of them applied, relays already held */
    uint64_t relays, relay_keys, relays_known;
    /* --threads: pulls and pushes split over the server's threads, all tables */
    uint64_t split_requests;
} ps_server_stats_t;

typedef struct ps_server ps_server_t;

/* Defaults: 1 server of rank 0, one table sgd dim 1, bind tcp://127.0.0.1:0. */
void ps_server_conf_defaults(ps_server_conf_t *c);

/* Validates conf, creates the tables and binds.  Returns NULL with a reason
 * in err on failure. */
ps_server_t *ps_server_new(const ps_server_conf_t *conf, zps_log_t *log, char *err,
                           size_t errlen);
void ps_server_destroy(ps_server_t **s);

/* The endpoint actually bound (with the chosen port). */
const char *ps_server_endpoint(const ps_server_t *s);

/* The metrics endpoint's ADDR:PORT actually bound, NULL without
 * --metrics-listen. */
const char *ps_server_metrics_address(const ps_server_t *s);

/* Serve until *stop becomes non-zero (set it from a signal handler) or a
 * SHUTDOWN request arrives.  Returns 0, or a ZPS_E* code on a fatal error. */
int ps_server_run(ps_server_t *s, volatile sig_atomic_t *stop);

/* Write table 0's weights as shard rank of a saved model in dir (server 0
 * also writes the manifest).  0, or ZPS_EIO with the reason in err. */
int ps_server_save(ps_server_t *s, const char *dir, char *err, size_t errlen);

void ps_server_get_stats(const ps_server_t *s, ps_server_stats_t *out);

/* Direct access for tests and tools in the same process. */
uint32_t ps_server_ntables(const ps_server_t *s);

#endif
