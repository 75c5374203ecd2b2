/* zps_shard: one table of rows and its optimizer: the work a server does
 * for a pull or a push, written once.
 *
 * A shard is a zps_table of optimizer rows (zps_optim) plus the scratch a
 * push needs.  The server keeps one per table and calls it from its
 * request handlers (after decoding, validating and checking ownership);
 * `zps-worker --local` keeps one in process instead of talking to servers.
 * Exactly-once records, clocks and limits across tables stay with the
 * server: they are about peers, not rows.
 *
 * Pull: the weights of stored rows, and the initial weights (a pure
 * function of seed and key) of keys never pushed, which are not inserted,
 * so reading never grows the table.
 *
 * Push, all or nothing, as a transaction:
 *   zps_shard_push_begin   applies every row's update in place, saving the
 *                          old rows (and computing new keys' rows) in an
 *                          undo buffer, chunk by chunk through the batched
 *                          table and optimizer calls; refuses (and undoes)
 *                          if any updated row would not be finite;
 *   then the caller checks its limits against new_keys, and calls
 *   zps_shard_push_commit  reserves and inserts the new keys, or
 *   zps_shard_push_abort   puts every row back as it was.
 * Between begin and commit/abort the table must not be used otherwise,
 * and keys must stay valid.
 *
 * Admission (zps_shard_set_admit; off by default, and then the push path
 * is unchanged): a key not in the table gets a row only once admitted.
 * count:N -- its count in a count-min sketch (zps_sketch), this push
 * included, reaches N; the sketch only over-counts, so a key is admitted
 * at its N-th push or (a false admission) earlier, never later.  prob:P --
 * admitted when zps_mix64(key, zps_mix64(push sequence, seed)) maps below P,
 * the push sequence being the shard's count of committed pushes: a pure
 * function of the stream of pushes, no generator state.  A key not
 * admitted is not stored and its update is dropped (its row is still
 * computed and checked finite, so refusals do not depend on admission);
 * pulls of it answer the initial value.  Sketch counts and counters change
 * only at commit, so an aborted push leaves them as they were. */
#ifndef ZPS_SHARD_H
#define ZPS_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "zps_optim.h"
#include "zps_pool.h"
#include "zps_table.h"

typedef struct zps_shard zps_shard_t;

/* New empty shard with optimizer o (copied), sized for about
 * capacity_hint keys.  NULL when out of memory. */
zps_shard_t *zps_shard_new(const zps_optim_conf_t *o, size_t capacity_hint);
void zps_shard_destroy(zps_shard_t **sh);

/* Keys per block of a request split over a pool's threads: waking a
 * helper costs tens of microseconds, a block takes a millisecond or more */
#define ZPS_SHARD_BLOCK 16384
/* Split pulls and push_begins of more than one ZPS_SHARD_BLOCK keys over
 * pool's threads (borrowed: it must outlive the shard's use of it; NULL:
 * every request in the caller's thread, the default).  Threads take blocks
 * of the sorted, unique keys in turn, so they read and write disjoint rows,
 * and every row comes out as a single pass makes it (the same bits); the
 * table's structure does not change until commit, in the caller's thread.
 * 0, or ZPS_EINVAL (a push is open) / ZPS_ENOMEM. */
int zps_shard_set_pool(zps_shard_t *sh, zps_pool_t *pool);

/* Pulls and push_begins split over the pool's threads so far. */
uint64_t zps_shard_split_requests(const zps_shard_t *sh);

/* The rows (for checkpoints, dumps, saves, sizes) and the optimizer. */
zps_table_t *zps_shard_table(zps_shard_t *sh);
const zps_optim_conf_t *zps_shard_optim(const zps_shard_t *sh);

/* Take *t (rows of this shard's optimizer, e.g. restored from a
 * checkpoint) in place of the shard's table, which is freed; *t becomes
 * NULL.  0, or ZPS_EINVAL (row size differs: nothing changed). */
int zps_shard_adopt(zps_shard_t *sh, zps_table_t **t);

/* Weights of keys[0..n) into out (n x dim floats). */
void zps_shard_pull(zps_shard_t *sh, const uint64_t *keys, size_t n, float *out);

/* What zps_shard_push_begin found. */
typedef struct {
    size_t new_keys; /* keys not stored yet (inserted by commit) */
    size_t bad;      /* ZPS_ENONFINITE: index of the first key whose row would not be finite */
} zps_shard_push_t;

/* Apply the push of keys[0..n) (sorted, unique) with gradients g (n x
 * zps_optim_push_floats floats), the step scaled by lr_scale and every
 * gradient value clipped into [-clip, clip] (0: no clipping).  0: applied,
 * pending commit or abort; ZPS_ENONFINITE (out->bad) or ZPS_ENOMEM:
 * nothing changed, no commit or abort needed. */
int zps_shard_push_begin(zps_shard_t *sh, const uint64_t *keys, size_t n, const float *g,
                         float lr_scale, float clip, zps_shard_push_t *out);
/* Insert the new keys.  0, or ZPS_ENOMEM with every row as it was. */
int zps_shard_push_commit(zps_shard_t *sh);
/* Every row as it was before zps_shard_push_begin. */
void zps_shard_push_abort(zps_shard_t *sh);

/* Feature admission of keys not yet stored (see above). */
typedef enum { ZPS_ADMIT_OFF = 0, ZPS_ADMIT_COUNT, ZPS_ADMIT_PROB } zps_admit_mode_t;

typedef struct {
    zps_admit_mode_t mode;
    uint32_t count;   /* count:N, 1..255 (ZPS_SKETCH_MAX) */
    double prob;      /* prob:P, (0, 1] */
    uint64_t ids;     /* count: distinct ids the sketch is sized for (8 bytes each) */
    uint64_t seed;    /* sketch hashes / prob draws */
} zps_admit_conf_t;

/* What admission did since the shard was made (or restored). */
typedef struct {
    uint64_t admitted_keys;    /* keys given a row by admission */
    uint64_t rejected_keys;    /* key updates dropped: key not admitted (once per push) */
    uint64_t rejected_pushes;  /* committed pushes with at least one key dropped */
    uint64_t push_seq;         /* committed pushes (prob:P draws) */
    uint64_t sketch_bytes;     /* count:N sketch memory */
} zps_admit_stats_t;

/* Turn admission on (a->mode != OFF) for keys not stored yet.  0, or
 * ZPS_EINVAL (bad value, or a push open) / ZPS_ENOMEM (the sketch). */
int zps_shard_set_admit(zps_shard_t *sh, const zps_admit_conf_t *a);
void zps_shard_admit_stats(const zps_shard_t *sh, zps_admit_stats_t *out);

/* Expiry and eviction (off by default; then rows and pushes are as
 * before).  Either turns on a 16-bit stamp in the last 2 bytes of every
 * row (the optimizer's spare bytes when it has 2, as ftrl with accum uf16
 * and dim 1 does, else one more float), so checkpoints and joins carry it
 * with the row.  The stamp is the job clock at the row's last update, in
 * quanta of 1/4 s (of expire_s / 8192 s when expire_s is over 2048 s),
 * modulo 2^16; a row's age is (now - stamp) mod 2^16.  The sweep
 * (zps_shard_sweep) keeps that exact: it sets any age it finds at 2^15 or
 * over back to 2^15, so as long as it goes round every row within 2^15
 * quanta (2.3 hours), no age wraps; ages are exact up to 2^15 quanta, and
 * older rows all count as 2^15 quanta old.  The job clock
 * (zps_shard_clock) counts the time the server has run: a stopped job does
 * not age; checkpoints carry it (zps_shard_state_export), and a restore
 * goes on from it.  With wall_clock (a replicated job) the clock is the
 * wall clock instead, the same on every server, so a row copied from
 * another server keeps its age; a restored job has aged by its downtime.
 *   expire_s  -- zps_shard_sweep deletes rows not updated in more than
 *                expire_s job seconds, a bounded number of rows per call
 *                (a cursor goes round the rows: nothing expires early,
 *                everything eventually, at most 2 quanta and one round
 *                of the sweep late);
 *   evict     -- zps_shard_evict deletes rows by sampled LRU: of
 *                ZPS_SHARD_EVICT_SAMPLES random live rows, the one updated
 *                longest ago, never a row of the open push (the server
 *                calls it between push_begin and push_commit to make room
 *                for the push's new keys; samples of the push's rows do not
 *                count, and past 8 times as many draws a scan finds a row,
 *                so it fails only when the push's rows are all there is).
 *                An evicted key is a new key when it comes back (admission
 *                counts included). */
#define ZPS_SHARD_EVICT_SAMPLES 8
#define ZPS_SHARD_TICKS 64
typedef struct {
    uint32_t expire_s; /* 0: no expiry */
    int evict;
    uint64_t max_keys; /* with evict: the cap the caller evicts down to (0: none),
                        * for the table's growth (zps_table_set_limit) */
    int wall_clock;    /* the clock is the wall clock (zps_shard_clock gets ms since
                        * 1970), not the server's running time: a replicated job,
                        * whose servers copy rows, and their stamps, between them */
} zps_bound_conf_t;

typedef struct {
    uint64_t expired, evicted;
    uint64_t now;      /* the clock, whole seconds (the wall clock's: since 1970) */
} zps_bound_stats_t;

/* On an empty shard only (the row layout changes): 0, ZPS_EINVAL, ZPS_ENOMEM. */
int zps_shard_set_bound(zps_shard_t *sh, const zps_bound_conf_t *b);
/* The server's monotonic time in ms: the job clock follows it (with
 * wall_clock, the wall time in ms since 1970 is the clock). */
void zps_shard_clock(zps_shard_t *sh, int64_t ms);
/* Look at up to budget rows: delete the expired ones, keep ages in range
 * (see above; call it with eviction alone too).  Returns how many were
 * deleted. */
size_t zps_shard_sweep(zps_shard_t *sh, size_t budget);
/* Evict up to count rows (fewer only when every live row is the open
 * push's).  Returns how many. */
size_t zps_shard_evict(zps_shard_t *sh, size_t count);
void zps_shard_bound_stats(const zps_shard_t *sh, zps_bound_stats_t *out);

/* The shard's state beside its rows, for checkpoints: a malloc'd blob in
 * *buf (*len bytes; the caller frees), NULL with *len 0 when admission,
 * expiry and eviction are off.  Blocks, little-endian, each present when
 * its feature is on:
 *   admission  "ZAD1", mode (u32), count (u32), prob (IEEE double bits,
 *              u64), admitted_keys, rejected_keys, rejected_pushes,
 *              push_seq, sketch length (u64 each), then the sketch
 *              (zps_sketch_serialize; 0 bytes for prob:P);
 *   clock      "ZBD1", stamp quantum in ticks (u32), the clock in ticks
 *              (u64), expired, evicted (u64 each).
 * 0 or ZPS_ENOMEM. */
int zps_shard_state_export(const zps_shard_t *sh, unsigned char **buf, size_t *len);
/* Take the state of a blob from zps_shard_state_export, before
 * zps_shard_adopt of the rows saved with it: with admission on, the
 * counters and push sequence, and the sketch when both the blob and this
 * shard count (count:N; the checkpoint's sketch replaces this one, whatever
 * its size); with expiry or eviction on, the job clock and counters
 * (adopt then puts the rows' stamps into this shard's quantum if it
 * differs).  What this shard does not run is ignored.  0, or ZPS_EPROTO
 * with the reason in err (nothing changed). */
int zps_shard_state_import(zps_shard_t *sh, const unsigned char *buf, size_t len, char *err,
                           size_t errlen);

/* Take the admission counts of another shard's state blob (a donor's, at
 * a join: zps_sketch_merge, counter by counter the larger), nothing else
 * (counters and clock stay this shard's).  0 (also when either has no
 * sketch), or ZPS_EPROTO / ZPS_EINVAL (another sketch shape or seed) with
 * the reason in err, nothing changed. */
int zps_shard_state_merge(zps_shard_t *sh, const unsigned char *buf, size_t len, char *err,
                          size_t errlen);

/* How rows are stored, for comparing two servers' rows before copying
 * them: "row_floats=R,accum=f32|uf16,stamp_q=Q" (Q 0: no stamp).  Returns
 * snprintf's result. */
int zps_shard_storage(const zps_shard_t *sh, char *buf, size_t len);

/* Give back scratch memory over keep keys' worth (after a big request). */
void zps_shard_trim(zps_shard_t *sh, size_t keep);

#endif
