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
 * and keys must stay valid. */
#ifndef ZPS_SHARD_H
#define ZPS_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "zps_optim.h"
#include "zps_table.h"

typedef struct zps_shard zps_shard_t;

/* New empty shard with optimizer o (copied), sized for about
 * capacity_hint keys.  NULL when out of memory. */
zps_shard_t *zps_shard_new(const zps_optim_conf_t *o, size_t capacity_hint);
void zps_shard_destroy(zps_shard_t **sh);

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

/* Give back scratch memory over keep keys' worth (after a big request). */
void zps_shard_trim(zps_shard_t *sh, size_t keep);

#endif
