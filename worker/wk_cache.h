/* wk_cache: the binary cache of a parsed part of the input: its name, its
 * validation, reading its blocks back, and writing it.
 *
 * A cache file holds the rows one reader parsed from one input file in
 * one shard layout (a "part"), grouped by "unit" (what the reader reads in
 * one go: a shard block, a byte range or a whole file; wk_layout), so a
 * later epoch can read the units in any order.  The caller (wk_data) owns
 * the layout; this module sees only a part's identity (wk_cache_meta_t),
 * its units' ids and the rows.  Format and rules: the comment of
 * wk_cache.c. */
#ifndef WK_CACHE_H
#define WK_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "wk_rows.h"

/* What a cache must match: the input file (size, mtime), the reader's
 * settings and the part's layout (wk_layout's split, shard r of W, block
 * size and first global block). */
typedef struct {
    uint64_t src_size;
    int64_t src_mtime_ns;
    uint32_t format, labels, hash_bits, split;
    uint32_t shard, nshards;
    uint64_t block_bytes, first_block;
} wk_cache_meta_t;

/* A unit of a part, and where its rows are in a valid cache. */
typedef struct {
    uint64_t id;             /* set by the caller: ascending within a part */
    uint64_t off, end;       /* its blocks: bytes [off, end) of the cache */
    uint64_t rows, bad;      /* its rows, and the bad lines skipped in it */
} wk_cache_unit_t;

/* The cache's file name for the input path (next to it, or in cache_dir
 * with a hash of the input's real path); NULL when out of memory.  Uses
 * the meta's settings and layout, not its src_* fields. */
char *wk_cache_name(const char *path, const char *cache_dir, const wk_cache_meta_t *m);

/* 1 if the cache file name is complete and matches *want (and has no
 * skipped lines unless allow_bad), with every unit of units[0..n) present
 * once as consecutive blocks: their off/end/rows/bad are set and the
 * cache's stat is in *cst.  0 otherwise. */
int wk_cache_check(const char *name, const wk_cache_meta_t *want, int allow_bad,
                   wk_cache_unit_t *units, size_t n, struct stat *cst);

/* Maps the cache file name if it is still the file *cst (checked by
 * wk_cache_check): 0 with *map, *len; -1 if it is gone or was replaced. */
int wk_cache_map(const char *name, const struct stat *cst, const char **map, size_t *len);

/* ---- reading a unit's rows ------------------------------------------------------- */

typedef struct {
    const char *map;
    size_t pos, end;         /* next block, end of the unit's blocks */
    uint64_t rows, rows_done;
    uint64_t blk_rows, blk_row;
    const uint64_t *blk_ids;
    const float *blk_vals, *blk_labels;
    const uint32_t *blk_lens;
} wk_cache_rd_t;

void wk_cache_rd_open(wk_cache_rd_t *c, const char *map, const wk_cache_unit_t *u);

/* Appends the unit's rows to d until it has want rows or the unit ends
 * (*at_end = 1).  0, ZPS_EIO (a block is corrupt) or ZPS_ENOMEM. */
int wk_cache_rd_next(wk_cache_rd_t *c, wk_rows_t *d, size_t want, int *at_end);

double wk_cache_rd_frac(const wk_cache_rd_t *c); /* 0..1 of the unit's rows */

/* ---- writing ------------------------------------------------------------------------ */

/* The cache of one part being written this epoch (a plain struct in the
 * caller's part; zero it at the epoch's start).  failed may be set by the
 * caller too (the input changed): the part is then not cached. */
typedef struct {
    char *tmp;               /* the temporary, while writing */
    int failed;
    uint64_t off, rows, nnz, nblocks, bad, units;
} wk_cache_file_t;

/* The writer: the rows of the unit being read not yet written, and the one
 * open temporary (one file descriptor whatever the number of parts). */
typedef struct wk_cache_w wk_cache_w_t;

wk_cache_w_t *wk_cache_w_new(void);
void wk_cache_w_destroy(wk_cache_w_t **w);

/* Starts f's cache, to be renamed to name when finished: a temporary
 * beside it with a zeroed header.  On failure f->failed is set. */
void wk_cache_w_start(wk_cache_w_t *w, wk_cache_file_t *f, const char *name);

/* Rows [n0, n1) of d belong to unit unit_id of f; written in blocks. */
void wk_cache_w_add(wk_cache_w_t *w, wk_cache_file_t *f, uint64_t unit_id, const wk_rows_t *d,
                    size_t n0, size_t n1);

/* The unit was read to its end, bad lines skipped in it: its last block. */
void wk_cache_w_end_unit(wk_cache_w_t *w, wk_cache_file_t *f, uint64_t unit_id, uint64_t bad);

/* Every unit was written: the header (*m with f's totals) and the rename
 * to name; on any failure the temporary is removed. */
void wk_cache_w_finish(wk_cache_w_t *w, wk_cache_file_t *f, const wk_cache_meta_t *m,
                       const char *name);

/* Removes f's unfinished temporary, if any. */
void wk_cache_w_abort(wk_cache_w_t *w, wk_cache_file_t *f);

void wk_cache_w_drop(wk_cache_w_t *w);  /* forget the buffered rows of the unit */
void wk_cache_w_close(wk_cache_w_t *w); /* close the open temporary */

#endif
