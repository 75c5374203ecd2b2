/* zps_modelfile: saved models (--save-model DIR), written by the servers and
 * read by zps-predict; and the file checksum (zps_crc32) that shard files
 * and checkpoints (ps/ps_ckpt.h) share.
 *
 * DIR/manifest            text, written by server 0:
 *                             zps-model 2      format version (of the shards too)
 *                             model lr|fm|mlp
 *                             dim D            floats per key
 *                             servers S
 *                             table opt=...    the servers' optimizer settings
 *                             options --model lr --hash-bits 20 ...   training options
 *                             shards 0 2       (a replicated job after a failure: the
 *                                              servers whose shards hold the model; each
 *                                              key is in exactly one of them, its range's
 *                                              primary's.  Absent: every server 0..S-1)
 * DIR/shard-R-of-S.bin    one per server: a 64-byte header (magic "ZPSSHARD",
 *                         format version, rank, servers, dim, key count),
 *                         then per key: uint64 key + D float32 weights
 *                         (little-endian), then a uint64 trailer: the
 *                         zlib CRC-32 (zps_crc32) of every byte before it,
 *                         the header as finally written included; upper
 *                         32 bits zero.
 * DIR/shard-R-of-S.sum    "keys N crc32 HEX": lets a reader check the set
 *                         of shards without reading them.
 * Format 1 (zps before format 2; same layout, "zps-model 1") ended a shard
 * with a word-wise 64-bit hash computed per record and over the header last,
 * whose value depended on the record boundaries; its .sum said "keys N
 * checksum HEX16".  Format 1 directories are still read (a small read-only
 * verifier in zps_modelfile.c); nothing writes format 1 any more.  Versions
 * above 2 are refused with a message naming the file and both versions.
 * Shards hold weights only (no optimizer state; checkpoints are separate).
 * Every file is written through zps_file (zps_file.h): a new temporary file
 * with a random name, fsynced and renamed, so a crash never leaves a
 * half-written file under the final name; a target that is a symbolic link
 * or owned by another user is refused, never written through or replaced.
 * Files are mode 0644. */
#ifndef ZPS_MODELFILE_H
#define ZPS_MODELFILE_H

#include <stddef.h>
#include <stdint.h>

#define ZPS_MODELFILE_VERSION 2u     /* written */
#define ZPS_MODELFILE_VERSION_MIN 1u /* oldest read (format 1: legacy verifier) */

typedef struct zps_mf_writer zps_mf_writer_t;

/* Start shard rank of nservers with rows of dim floats in dir (created if
 * missing).  NULL + err on failure. */
zps_mf_writer_t *zps_mf_writer_new(const char *dir, uint32_t rank, uint32_t nservers,
                                   uint32_t dim, char *err, size_t errlen);
int zps_mf_writer_add(zps_mf_writer_t *w, uint64_t key, const float *weights);
/* Finish: checksum, fsync, rename, .sum file.  Frees w (also on error). */
int zps_mf_writer_close(zps_mf_writer_t **w, char *err, size_t errlen);

/* present: NULL (every shard 0..nservers-1), or per rank 1 if its shard
 * is part of the model (the "shards" line). */
int zps_mf_write_manifest(const char *dir, const char *model, uint32_t dim, uint32_t nservers,
                          const char *table_desc, const char *options, const uint8_t *present,
                          char *err, size_t errlen);

#define ZPS_MF_MAX_SHARDS 4096

typedef struct {
    uint32_t version;     /* format version of the directory (from "zps-model") */
    char model[16];
    uint32_t dim, nservers;
    char table[256];
    char options[1024];
    uint8_t absent[ZPS_MF_MAX_SHARDS / 8]; /* bit r: shard r is not part of the model */
} zps_mf_manifest_t;

int zps_mf_read_manifest(const char *dir, zps_mf_manifest_t *m, char *err, size_t errlen);

/* Read every shard of dir, verifying headers and checksums (format 1 or 2;
 * every shard must have m->version if it is set); calls fn for every key.
 * fn returning non-zero stops with that code.  Keys are handed over as they
 * are read: a shard found corrupt at its end has already given its keys, so
 * a caller that must not use a bad model discards what it built on error. */
int zps_mf_load(const char *dir, const zps_mf_manifest_t *m,
                int (*fn)(void *ctx, uint64_t key, const float *w), void *ctx, char *err,
                size_t errlen);

/* The file checksum of shard files and checkpoints: zlib's CRC-32 (the
 * ISO-HDLC / PNG polynomial).  Start with crc = 0 and feed the bytes in
 * order, in pieces of any size: the value depends only on the bytes, never on
 * how they were split into calls, and len may exceed 4 GiB.  A CRC-32 detects
 * every change confined to 32 consecutive bits (so any single corrupt byte). */
uint32_t zps_crc32(uint32_t crc, const void *data, size_t len);

/* The CRC-32 of A followed by B, from crc_a, crc_b and B's length. */
uint32_t zps_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

#endif
