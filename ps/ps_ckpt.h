/* ps_ckpt: checkpoints of a server shard (weights AND optimizer state, plus
 * the per-worker exactly-once and progress records).
 *
 * A checkpoint is one file DIR/ckpt-R-of-S-NNNNNNNN.zck (format version 2,
 * or 3 when it carries admission state; little-endian):
 *   header   (ck_header_t, 336 bytes) magic "ZPSCKPT2", format version,
 *            header size, rank, servers, dim, row floats, the JOB ID, the
 *            checkpoint counter, wall time, client-record count, client-block
 *            bytes, key count, the optimizer description
 *   (format 3) uint64 admission-block bytes, so the header is 344
 *            bytes (header size says which)
 *   (format 4) uint64 admission-block bytes (may be 0) and uint64
 *            range-table bytes: a header of 352 bytes
 *   clients  the client-record block (client-block bytes): per worker rank
 *            one length-prefixed record, uint32 len + len bytes; the record
 *            body is encoded field by field (s_client_put / s_client_get in
 *            ps_ckpt.c): rank, has_progress, nonce, last_seq, applied,
 *            progress_rows, progress_epoch (44 bytes), then the dedup
 *            window: low-water mark, high-water mark and its bitmap
 *            (CK_CLIENT_LEN in all, 572 bytes).  A reader needs at least
 *            the fields it knows and ignores bytes after them, so new
 *            fields are added at the END of the body, in
 *            s_client_put/s_client_get only.
 *   admission (formats 3, 4) the admission block: table 0's shard state
 *            as zps_shard_state_export gives it (admission: counters, push
 *            sequence, the count:N sketch; expiry/eviction: the job clock,
 *            the stamp quantum, the counters)
 *   ranges   (format 4) the range table the replicated server held when it
 *            wrote the checkpoint (zps_ranges_encode); the rows are those
 *            of every range it held (and of ranges it gave away, which a
 *            restore ignores)
 *   rows     per key: uint64 key + row floats (the whole optimizer row)
 *   trailer  uint64: the CRC-32 of every byte before it (zps_crc32 in
 *            zps_modelfile.h, zlib's crc32; upper 32 bits zero).  It is
 *            streamed, so it does not depend on how the bytes were split
 *            into writes or reads; the writer needs no fixed-size blocks.
 *            Format 2 has used it from the start (format 1 had a word-wise
 *            checksum over exact 64 KiB blocks and is refused, below), so
 *            the checkpoint format stays at version 2 while model files
 *            moved to the same checksum in their format 2.
 * It is written through zps_file (a new temporary file with a random name,
 * mode 0600, fsynced, renamed into place, directory fsynced; never through a
 * symlink or over a file of another user).  A failed write leaves the
 * previous checkpoints as they were.
 *
 * Job identity.  Every checkpoint records the 64-bit id of the job that wrote
 * it.  A server started without --restore makes a new random id and refuses
 * a directory that already holds checkpoints of its rank
 * (ps_ckpt_check_new_job): they belong to another job.  With --restore it
 * adopts the id of the checkpoint it restored.  After each write, only
 * checkpoints of the same job and shard are pruned (all but the newest
 * `keep`); files of another job, or whose header cannot be read, are left.
 *
 * Restore checks every count against the file's size before reading (no
 * multiplication can overflow), reads the file once into a FRESH table while
 * checksumming, and hands the table over only when the whole file is read
 * and verified (checksum, exact size, no duplicate key, finite values).  A
 * torn, corrupt or crafted newest file is reported and the previous one is
 * tried; nothing of a rejected file reaches the server.  A checkpoint of
 * another shard layout (rank, servers, dim, optimizer) is refused, and so is
 * a file of format version 1 (older zps), with a message saying so.
 *
 * Format 3 is format 2 with the admission block.  A server without --admit,
 * --expire-after and --evict writes format 2, byte for byte as before (an
 * older zps restores it); with any of them, format 3.  This zps reads both: a format-2 file restores no
 * admission state (the sketch starts empty, the counters at 0).  Format 4
 * is written by a replicated server (--coordinator) only. */
#ifndef PS_CKPT_H
#define PS_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "ps_dedup.h"
#include "zps_table.h"
#include "zps_log.h"

#define PS_CKPT_VERSION 2u        /* without admission state */
#define PS_CKPT_VERSION_ADMIT 3u  /* with it (the header's admission-block size) */
#define PS_CKPT_VERSION_RANGES 4u /* a replicated server's: with the range table */

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
    uint64_t counter;     /* checkpoint number (out on restore: the one restored) */
    uint64_t job_id;      /* written into the checkpoint; out on restore */
    uint64_t last_counter; /* out on restore: highest counter of any file of this
                              shard in dir (continue numbering after it) */
    /* shard state (zps_shard_state_export): in for write (NULL/0: none,
     * format 2); out on restore: malloc'd (the caller frees), NULL/0 when
     * the checkpoint has none */
    const unsigned char *admit_in;
    size_t admit_in_len;
    unsigned char *admit_out;
    size_t admit_out_len;
    /* a replicated server's range table as it held it (zps_ranges_encode):
     * in for write (NULL/0: none, format 2 or 3); out on restore: malloc'd
     * (the caller frees), NULL/0 when the checkpoint has none.  A checkpoint
     * with a table holds the rows of every range the server held, so the
     * key-placement check is skipped for it. */
    const unsigned char *ranges_in;
    size_t ranges_in_len;
    unsigned char *ranges_out;
    size_t ranges_out_len;
    uint64_t wall_ms;     /* out on restore: when the checkpoint was written (ms since 1970) */
} ps_ckpt_info_t;

/* A new random job id (never 0). */
uint64_t ps_ckpt_new_job_id(void);

/* For a server started without --restore: 0 if dir holds no checkpoint of
 * this rank (or does not exist); otherwise ZPS_EMISMATCH and err names the
 * directory, the other job's id and the choices. */
int ps_ckpt_check_new_job(const char *dir, uint32_t rank, char *err, size_t errlen);

/* Write a checkpoint synchronously (a forked child calls this on its
 * copy-on-write image; the final checkpoint at SIGTERM calls it in place),
 * then prune this job's older checkpoints of this shard to `keep`.
 * Returns 0, or ZPS_EIO/ZPS_EPERM with the reason in err. */
int ps_ckpt_write(const char *dir, const ps_ckpt_info_t *info, const zps_table_t *t,
                  const ps_ckpt_client_t *clients, size_t nclients, int keep, char *err,
                  size_t errlen);

/* Load the newest valid checkpoint of this shard into a NEW table
 * (zps_table_new(info->row_floats, max(capacity_hint, keys))) stored in *t
 * only on success; the caller owns it.  *clients is malloc'd (caller frees).
 * Returns 0 (info->counter, job_id, last_counter set), 1 if there is no
 * checkpoint at all, or ZPS_E* when none is usable (*t untouched). */
int ps_ckpt_restore(const char *dir, ps_ckpt_info_t *info, size_t capacity_hint, zps_table_t **t,
                    ps_ckpt_client_t **clients, size_t *nclients, zps_log_t *log, char *err,
                    size_t errlen);

#endif
