/* ps_coord: the coordinator's state (zps-coord, ps/coord_main.c), as a pure
 * module: no sockets, no clock of its own (every call takes now_ms, a
 * monotonic time in milliseconds), so tests drive it with a fake clock.
 *
 * The coordinator is the one authority on membership: it decides which
 * servers are alive and publishes the range table (common/zps_ranges.h).
 * Servers beat every 100 ms (ps_coord_beat); the answer is their lease of
 * failure_ms / 2, so a server cut off from the coordinator stops
 * acknowledging before the coordinator declares it failed (failure_ms of
 * silence, ps_coord_tick) and takes it out of every chain.  Clients read
 * the table with TABLE_GET and follow its version.
 *
 * Life of the table:
 *   - fresh start: servers beat with table version 0 and are registered;
 *     once all S have beaten, and none reported a table, the default table
 *     zps_ranges_init(S, R) is built (version 1);
 *   - running: a member's beat is answered with member, lease and the table
 *     when the beat's version is older; a member silent for more than
 *     failure_ms, or beating with a new process nonce (its process
 *     restarted with empty state: its replica's data is gone), is removed
 *     from every chain (version + 1);
 *   - restart of the coordinator: its whole state is rebuilt from the
 *     servers.  Servers beat with the version they hold; the coordinator
 *     asks (send_table) for tables newer than the best it has, keeps the
 *     highest version, and adopts it once failure_ms has passed since the
 *     first beat that reported a table (every live server beats about ten
 *     times in that grace; counting from the first report, not from the
 *     start, keeps servers that reach a new coordinator late from being
 *     removed).  Then every member it did not hear during the grace, or
 *     whose last beat had version 0 (a new process, whose data is gone), is
 *     removed as a failure.  If no valid table has come by the end of the
 *     grace and every server now beats with version 0, a new table is built
 *     as at a fresh start.  Until a table exists every beat gets member 0,
 *     lease 0.
 *   - joining: a server that beats while not in the table (a restarted
 *     process from its second beat on, a removed server that has reset
 *     itself, i.e. beats with a new nonce, a rank never in the table) is a
 *     candidate.  When ranges have fewer than min(R, members + candidates)
 *     replicas and no join in progress, its beat starts a join of all of
 *     them in one new version (cut = version + 1; donor: the primary); it
 *     is a member from then on (lease, failure timeout).  Its beat with
 *     joined == cut completes them (zps_ranges_complete, version + 1): it
 *     becomes primary of its home ranges, last in the others' chains.  A donor removed takes its joiners out with it (their
 *     copies are partial; they reset and join afresh).  A candidate with
 *     nothing to take stays out (member 0, lease 0).  Ranges with a join in
 *     progress are not offered to another candidate: a second candidate
 *     gets them after the first one's join completes.
 *     The process that was removed (its nonce) is never a candidate: it
 *     must reset itself (new nonce) first.  After a coordinator restart
 *     that is not known, so any non-member is a candidate.
 *
 * Ownership: the table and its encoding returned by ps_coord_table,
 * ps_coord_encoded and in a reply stay valid until the next ps_coord_beat
 * or ps_coord_tick.  Endpoints are kept as given when printable and at
 * most PS_COORD_MAX_ENDPOINT bytes, or fewer with many servers so that one
 * TABLE_REPLY (or BEAT_REPLY) holding all of them and the table fits a client's envelope
 * limit (34 bytes for 4096 servers); else they are kept empty.  They are
 * escaped whenever logged. */
#ifndef PS_COORD_H
#define PS_COORD_H

#include <stddef.h>
#include <stdint.h>

#include "zps_log.h"
#include "zps_ranges.h"

#define PS_COORD_MAX_ENDPOINT 255
#define PS_COORD_FAILURE_MS_DEFAULT 1000u

typedef struct {
    uint32_t nservers;   /* S, 1..ZPS_RANGES_MAX_SERVERS: the table is built once all beat */
    uint32_t max_servers; /* rank slots, >= S (0: S): servers added later take ranks S.. */
    uint32_t replicas;   /* R, 1..ZPS_MAX_REPLICAS; capped at S */
    uint32_t failure_ms; /* silence after which a member is removed, >= 2 */
    uint32_t rereplicate_ms; /* a range short of min(R, live members) replicas this long,
                                with no server process joining meanwhile, is copied onto
                                a live member (0: never) */
    uint32_t restore_wait_ms; /* restore with no live table: wait at most this long
                                 after the first restored copy for the other servers of
                                 the newest restored table */
} ps_coord_conf_t;

/* S 1, R 1, failure 1000 ms, re-replication after 30000 ms */
void ps_coord_conf_defaults(ps_coord_conf_t *conf);
#define PS_COORD_REREPLICATE_MS_DEFAULT 30000u
#define PS_COORD_RESTORE_WAIT_MS_DEFAULT 60000u

typedef struct ps_coord ps_coord_t;

/* The answer to one beat. */
typedef struct {
    int member;             /* the rank is in the table (a replica or joining) */
    uint32_t lease_ms;      /* failure_ms / 2 for a member, else 0 */
    uint64_t table_version; /* the current table (0: none yet) */
    int send_table;         /* no table here yet: send yours in the next beat */
    int retired;            /* this process was drained by ps_coord_remove_server: it
                               holds nothing and may exit */
    const uint8_t *table;   /* the encoded table when the beat's version is older */
    size_t table_len;       /* (NULL, 0 otherwise) */
} ps_coord_reply_t;

typedef struct {
    uint64_t beats;        /* beats accepted */
    uint64_t refused;      /* beats refused (rank >= S, nonce 0) */
    uint64_t removals;     /* ranks removed from the table */
    uint64_t bad_tables;   /* tables reported that did not decode or fit */
    uint64_t stalls;       /* ticks after a gap of over failure_ms / 2 */
    uint64_t joins_started;   /* ranges given to a joiner */
    uint64_t joins_completed; /* ranges whose joiner completed */
    uint64_t joiners_removed; /* joiners removed with their donor */
    uint64_t moves_started;   /* ranges moved (add-server, remove-server) */
    uint64_t retired;         /* servers drained by remove-server */
    uint64_t rereplicated;    /* ranges copied onto live members after a failure */
    uint64_t restored;        /* lost ranges given a restored checkpoint's copy */
    uint64_t version;      /* current table version (0: none) */
    uint32_t members;      /* ranks in the table */
    uint32_t lost;         /* ranges with no replica left */
    int recovering;        /* restarted: collecting the servers' tables */
} ps_coord_stats_t;

/* A coordinator started at now_ms (the grace of a restart counts from
 * it).  log is not owned.  NULL with err on a bad configuration or no
 * memory. */
ps_coord_t *ps_coord_new(const ps_coord_conf_t *conf, zps_log_t *log, int64_t now_ms, char *err,
                         size_t errlen);
void ps_coord_destroy(ps_coord_t **c);

/* One beat of server rank (its process nonce, announced endpoint of
 * endpoint_len bytes, the table version it holds and, when it was asked
 * to, that table's bytes: table may be NULL; joined: Beat.joined, the cut
 * of the joins it has finished copying, 0 for none).  Fills *reply and
 * returns 0;
 * ZPS_EINVAL for rank >= S, ZPS_EPROTO for nonce 0 (nothing recorded; the
 * caller answers ERROR naming the peer). */
int ps_coord_beat(ps_coord_t *c, int64_t now_ms, uint32_t rank, uint64_t nonce,
                  const char *endpoint, size_t endpoint_len, uint64_t table_version,
                  const uint8_t *table, size_t table_len, uint64_t joined,
                  ps_coord_reply_t *reply);

/* A beat from a server process that restored a checkpoint (Beat.restored_ms,
 * wall time of the checkpoint; Beat.restored_table, the table it held, may
 * be NULL): call it before ps_coord_beat with the same rank and nonce.
 * Returns 1 when the coordinator needs that table (answer send_table). */
int ps_coord_restored(ps_coord_t *c, int64_t now_ms, uint32_t rank, uint64_t nonce,
                      uint64_t wall_ms, const uint8_t *table, size_t table_len);

/* Time passes: adopt a restarted coordinator's table once the grace is
 * over, remove every member silent for more than failure_ms, plan again
 * the moves of a server being removed whose joiner failed, and, when some
 * range has had fewer than min(R, live members) replicas for
 * rereplicate_ms with no join in progress anywhere, give each such range
 * to the live member holding fewest ranges that lacks it (a join at one
 * new version: re-replication onto the survivors).  Returns
 * the number of ranks removed.  Call it at least every failure_ms / 2
 * (zps-coord: every 50 ms): a longer gap since the previous tick is taken
 * for a stall of the coordinator itself, whose length is then not counted
 * as the servers' silence (their beats may be queued, unread). */
uint32_t ps_coord_tick(ps_coord_t *c, int64_t now_ms);

/* zps-ctl add-server: give the live server that announced endpoint (or,
 * when endpoint is a decimal number, that rank), a member or a candidate
 * with no join in progress, a fair share of the ranges: as many primaries
 * as each server heads on average, taken from those heading the most, and
 * as many backup replicas, taken from those holding the most, each as a
 * move (zps_ranges_move) at one new version: it copies them while serving,
 * then replaces the server each came from.  Only ranges without a join are
 * moved.  0 with msg saying what moves, or ZPS_EINVAL / ZPS_EBUSY (no
 * table yet, a join in progress, nothing to move) with msg saying why. */
int ps_coord_add_server(ps_coord_t *c, int64_t now_ms, const char *endpoint, char *msg,
                        size_t msglen);

/* zps-ctl remove-server: drain live member rank: every range it holds
 * moves to the live member holding fewest ranges that does not hold it and
 * joins nothing else (one new version); a range with no such member but
 * another replica just loses rank from its chain.  When it holds nothing
 * it is retired (its beats are answered retired: it exits).  A move whose
 * joiner fails is planned again (ps_coord_tick).  0 with msg, or
 * ZPS_EINVAL / ZPS_EBUSY with msg (not a live member, the only server, a
 * join in progress). */
int ps_coord_remove_server(ps_coord_t *c, int64_t now_ms, uint32_t rank, char *msg,
                           size_t msglen);

/* The current table, NULL until one is built or adopted. */
const zps_ranges_t *ps_coord_table(const ps_coord_t *c);
/* Its encoding (NULL, *len 0 without a table). */
const uint8_t *ps_coord_encoded(const ps_coord_t *c, size_t *len);
/* The endpoint rank announced ("" before its first beat); NULL for
 * rank >= the slots. */
const char *ps_coord_endpoint(const ps_coord_t *c, uint32_t rank);
uint32_t ps_coord_nservers(const ps_coord_t *c); /* the rank slots */
/* Was rank drained by remove-server, and does that process still beat? */
int ps_coord_retired(const ps_coord_t *c, uint32_t rank);
uint32_t ps_coord_replicas(const ps_coord_t *c);
void ps_coord_get_stats(const ps_coord_t *c, ps_coord_stats_t *st);

#endif
