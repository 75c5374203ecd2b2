/* wk_data: a worker's shard of the training data, as minibatches.
 *
 * Inputs are files, globs or directories of LIBSVM/svmlight text or
 * Criteo-style TSV, plain or gzip-compressed.  Sharding needs no
 * pre-splitting.  With shuffle_buffer > 0 (block mode) every plain file is
 * cut into blocks (block_bytes, or automatic: <= 1 MiB, about 64 a worker),
 * numbered across the files; block i belongs to worker i mod W, a line to
 * the block holding its first byte (so every line is read by exactly one
 * worker); a worker reads its blocks in an order permuted per epoch by
 * (seed, epoch) and shuffles rows within windows of shuffle_buffer rows.
 * A gzip file cannot be seeked: with at least W gzip files each is one
 * block, else every worker decompresses it and keeps the lines whose number
 * is its rank modulo W.  With shuffle_buffer == 0 (the sequential mode):
 * with fewer files than workers, worker r of W reads the byte range
 * [size*r/W, size*(r+1)/W) of each plain file (every W-th line of a gzip
 * file), else whole files are dealt out round-robin; all in file order.
 *
 * The first epoch parses text and writes a binary cache of the parsed shard
 * (next to the input or in cache_dir, one per input file and shard, written
 * to a temporary name and renamed when complete); later epochs read the
 * cache, in the order the text would give.  A cache is used only if its
 * header matches the input's size and mtime, the format, the shard layout,
 * the hash settings and the cache version.
 *
 * IDX image/label pairs (format ZPS_FMT_IDX, or AUTO with one path whose
 * images file has an IDX header) are served by wk_idx (wk_idx.h) behind the
 * same interface: contiguous row shards, no cache.
 *
 * Bad lines stop the reader with "file:line:column: reason", or with
 * skip_bad_lines are counted (wk_reader_bad_lines) and skipped.
 *
 * Ownership: a batch points into the reader and is valid until the next
 * wk_reader_next/rewind/destroy.
 *
 * Implementation: wk_data.c (epochs, units, the shuffle window, batches) on
 * wk_paths (input lists), wk_layout (shard blocks and their order),
 * wk_source (mapped and gzip lines), wk_parse (line parsers; wk_criteo_id is
 * defined there), wk_cache (the binary cache) and wk_rows (row buffers). */
#ifndef WK_DATA_H
#define WK_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "zps_conf.h"

typedef struct {
    size_t n;          /* rows in the batch */
    float *labels;     /* binary: 0 or 1; classes: 0..C-1 */
    size_t *offsets;   /* n + 1; row i has features offsets[i]..offsets[i+1] */
    uint64_t *ids;     /* feature ids */
    float *vals;       /* feature values */
} wk_batch_t;

typedef enum { WK_LABEL_BINARY = 0, WK_LABEL_CLASS } wk_label_mode_t;

typedef struct {
    const char *const *paths;  /* files, globs or directories */
    size_t npaths;
    zps_format_t format;       /* AUTO: detected per file from its first line */
    uint32_t shard, nshards;   /* this worker's rank and the worker count */
    const char *cache_dir;     /* NULL: next to the input file */
    int use_cache;             /* 0: always parse */
    int skip_bad_lines;
    wk_label_mode_t labels;
    uint32_t hash_bits;        /* 0: ids as they are (libsvm) / 64-bit hashes (criteo);
                                  else ids are hashed into [0, 2^hash_bits) */
    uint32_t shuffle_buffer;   /* > 0: block sharding, blocks in a seeded random order,
                                  rows shuffled within windows of this many rows;
                                  0: contiguous shards read in file order */
    uint64_t block_bytes;      /* shard block size with shuffle_buffer > 0; 0: automatic */
    uint64_t seed;             /* shuffle seed (add the rank for per-worker seeds) */
} wk_data_conf_t;

typedef struct wk_reader wk_reader_t;

/* Opens the inputs (expanding globs and directories, sorted by name).
 * Returns NULL with a reason in err (a missing file is named). */
wk_reader_t *wk_reader_new(const wk_data_conf_t *conf, char *err, size_t errlen);
void wk_reader_destroy(wk_reader_t **r);

/* Next batch of up to max_rows rows of this shard.  Returns the number of
 * rows (> 0), 0 at the end of the epoch, or a negative ZPS_E* code with the
 * reason in wk_reader_error ("file:line:column: reason"). */
long wk_reader_next(wk_reader_t *r, size_t max_rows, wk_batch_t *b);

/* Start the next epoch (from the cache when it is complete). */
int wk_reader_rewind(wk_reader_t *r);

const char *wk_reader_error(const wk_reader_t *r);
uint64_t wk_reader_bad_lines(const wk_reader_t *r);
uint64_t wk_reader_rows(const wk_reader_t *r);   /* rows returned this epoch */
double wk_reader_progress(const wk_reader_t *r); /* 0..1 of this epoch, for ETA */
int wk_reader_from_cache(const wk_reader_t *r);  /* 1 if this epoch reads the cache */

/* Where this reader's binary cache is written (and read): the cache file of
 * its first part in buf; returns the number of parts (one cache file each),
 * 0 with caching off or nothing to read. */
size_t wk_reader_cache_path(const wk_reader_t *r, char *buf, size_t len);

/* 1 if every input file (of all shards) has 0 bytes: no rows at all; their
 * names, comma-separated (shortened with "..."), in names. */
int wk_reader_all_empty(const wk_reader_t *r, char *names, size_t len);

/* Criteo feature hashing, exposed for tests: id of categorical value
 * (field 14..39) or of integer bucket (field 1..13). */
uint64_t wk_criteo_id(uint32_t field, const char *value, size_t len, uint32_t hash_bits);

#endif
