/* ps_ckpt: checkpoints of a server shard (weights AND optimizer state, plus
 * the per-worker exactly-once and progress records).
 *
 * A checkpoint is one file DIR/ckpt-R-of-S-NNNNNNNN.zck:
 *   header   magic "ZPSCKPT1", format version, rank, servers, dim, row floats,
 *            the optimizer description, checkpoint counter, wall time,
 *            client-record count, key count
 *   records  per worker: rank, process nonce, highest applied push sequence,
 *            pushes applied, progress (epoch, rows), and the exactly-once
 *            window (ps_dedup.h: low-water mark + bitmap of applied seqs)
 *   rows     per key: uint64 key + row floats (the whole optimizer row)
 *   trailer  8-byte checksum of everything before it
 * It is written to a temporary name, fsynced, renamed into place, and the
 * directory is fsynced; then all but the newest `keep` are removed.  A failed
 * write (full disk, unwritable directory) removes the temporary file and
 * leaves the previous checkpoints as they were.
 *
 * Restore tries the newest file first and falls back to older ones when a
 * file is torn or corrupt (bad magic, truncated, checksum mismatch), saying
 * so in the log.  A checkpoint of another shard layout (rank, servers, dim,
 * optimizer) is refused rather than loaded. */
#ifndef PS_CKPT_H
#define PS_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "ps_dedup.h"
#include "ps_table.h"
#include "zps_log.h"

#define PS_CKPT_VERSION 2u /* 2: client records carry the dedup window */

typedef struct {
    uint32_t rank;
    uint32_t has_progress;
    uint64_t nonce, last_seq, applied;
    uint64_t progress_rows;
    uint32_t progress_epoch;
    uint32_t pad;
    ps_dedup_win_t win;   /* applied seqs of this nonce (last_seq == win.hwm) */
} ps_ckpt_client_t;

typedef struct {
    uint32_t rank, nservers, dim, row_floats;
    char desc[256];       /* optimizer description: must match on restore */
    uint64_t counter;     /* checkpoint number (out on restore) */
} ps_ckpt_info_t;

/* Write a checkpoint synchronously (a forked child calls this on its
 * copy-on-write image; the final checkpoint at SIGTERM calls it in place).
 * Returns 0, or ZPS_EIO with the reason in err. */
int ps_ckpt_write(const char *dir, const ps_ckpt_info_t *info, const ps_table_t *t,
                  const ps_ckpt_client_t *clients, size_t nclients, int keep, char *err,
                  size_t errlen);

/* Load the newest valid checkpoint of this shard into the (empty) table t.
 * *clients is malloc'd (caller frees).  Returns 0 (info->counter set),
 * 1 if there is no checkpoint at all, or ZPS_E* when none is usable. */
int ps_ckpt_restore(const char *dir, ps_ckpt_info_t *info, ps_table_t *t,
                    ps_ckpt_client_t **clients, size_t *nclients, zps_log_t *log, char *err,
                    size_t errlen);

#endif
