/* zps_modelfile: saved models (--save-model DIR), written by the servers and
 * read by zps-predict.
 *
 * DIR/manifest            text, written by server 0:
 *                             zps-model 1
 *                             model lr|fm|mlp
 *                             dim D            floats per key
 *                             servers S
 *                             table opt=...    the servers' optimizer settings
 *                             options --model lr --hash-bits 20 ...   training options
 * DIR/shard-R-of-S.bin    one per server: a 64-byte header (magic "ZPSSHARD",
 *                         format version, rank, servers, dim, key count),
 *                         then per key: uint64 key + D float32 weights
 *                         (little-endian), then an 8-byte checksum of
 *                         everything before it.
 * DIR/shard-R-of-S.sum    "keys N checksum HEX": lets a reader check the set
 *                         of shards without reading them.
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

#define ZPS_MODELFILE_VERSION 1u

typedef struct zps_mf_writer zps_mf_writer_t;

/* Start shard rank of nservers with rows of dim floats in dir (created if
 * missing).  NULL + err on failure. */
zps_mf_writer_t *zps_mf_writer_new(const char *dir, uint32_t rank, uint32_t nservers,
                                   uint32_t dim, char *err, size_t errlen);
int zps_mf_writer_add(zps_mf_writer_t *w, uint64_t key, const float *weights);
/* Finish: checksum, fsync, rename, .sum file.  Frees w (also on error). */
int zps_mf_writer_close(zps_mf_writer_t **w, char *err, size_t errlen);

int zps_mf_write_manifest(const char *dir, const char *model, uint32_t dim, uint32_t nservers,
                          const char *table_desc, const char *options, char *err,
                          size_t errlen);

typedef struct {
    char model[16];
    uint32_t dim, nservers;
    char table[256];
    char options[1024];
} zps_mf_manifest_t;

int zps_mf_read_manifest(const char *dir, zps_mf_manifest_t *m, char *err, size_t errlen);

/* Read every shard of dir, verifying headers and checksums; calls fn for
 * every key.  fn returning non-zero stops with that code. */
int zps_mf_load(const char *dir, const zps_mf_manifest_t *m,
                int (*fn)(void *ctx, uint64_t key, const float *w), void *ctx, char *err,
                size_t errlen);

/* Word-wise 64-bit checksum used by shard files (and checkpoints). */
uint64_t zps_checksum64(uint64_t h, const void *data, size_t len);

#endif
