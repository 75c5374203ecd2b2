/* wk_layout: which bytes of the input a worker reads in an epoch, and in
 * what order: the layout of parts (one per file it reads) and units (what
 * is read to its end in one go), the permuted order of the units, and the
 * shuffle of a window of rows.  Pure: sizes in, arrays out, no I/O; every
 * worker computes the same layout from the same sizes. */
#ifndef WK_LAYOUT_H
#define WK_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

/* How a part's file is split (stored in cache headers: values fixed). */
enum { WK_SPLIT_WHOLE = 0, WK_SPLIT_RANGE = 1, WK_SPLIT_LINES = 2, WK_SPLIT_BLOCKS = 3 };

typedef struct {
    size_t file;             /* index into the input list */
    int gz;
    uint32_t split;          /* WK_SPLIT_* */
    uint32_t shard, nshards; /* 0 of 1: the whole file; LINES: line % nshards == shard */
    uint64_t block_bytes;    /* WK_SPLIT_BLOCKS: block size and the file's first */
    uint64_t first_block;    /*   global block index; else 0 */
    size_t unit0, nunits;    /* its units: units[unit0 .. unit0 + nunits) */
} wk_part_t;

typedef struct {
    uint32_t part;           /* index into parts */
    uint64_t id;             /* block index in the file, or 0; ascending in a part */
    uint64_t lo, hi;         /* plain file: the lines that start in [lo, hi) */
    uint64_t weight;         /* progress weight: bytes + 1 */
} wk_unit_t;

typedef struct {
    wk_part_t *parts;
    size_t nparts;
    wk_unit_t *units;
    size_t nunits;
    size_t *order;           /* read order of the units (NULL when none) */
    uint64_t block_bytes;    /* block mode: the block size B used */
} wk_layout_t;

typedef struct {
    uint32_t nshards, shard; /* W workers, this one's rank */
    int blocks;              /* 1: block mode (shuffle_buffer > 0), else sequential */
    uint64_t block_bytes;    /* block mode: B, 0 for automatic */
    uint64_t seed, epoch;    /* the unit order */
} wk_layout_conf_t;

/* The layout of files of sizes[0..n), gz[i] != 0 for gzip files, into *L
 * (zeroed first; free with wk_layout_free).  0 or ZPS_ENOMEM. */
int wk_layout_build(wk_layout_t *L, const wk_layout_conf_t *c, const uint64_t *sizes,
                    const int *gz, size_t n);
void wk_layout_free(wk_layout_t *L);

/* Automatic block size for `total` plain bytes and W workers. */
uint64_t wk_layout_auto_block(uint64_t total, uint32_t W);

/* floor(size * i / n) without overflow: the start of range i of n. */
uint64_t wk_layout_range_at(uint64_t size, uint32_t i, uint32_t n);

/* The shuffle window's generator state for (seed, epoch). */
uint64_t wk_layout_window_rng(uint64_t seed, uint64_t epoch);

/* Fisher-Yates permutation of a[0..n) from the splitmix64 stream *rng
 * (draws n - 1 numbers; none for n <= 1). */
void wk_layout_shuffle(size_t *a, size_t n, uint64_t *rng);

#endif
