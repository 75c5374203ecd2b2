/* wk_idx: a worker's shard of an IDX image/label pair (the MNIST format), as
 * minibatches of dense features.
 *
 * An input is named by one spec: "IMAGES,LABELS" (two files), or "IMAGES"
 * alone, whose labels file is found by the MNIST naming: the last "images"
 * in the file name becomes "labels" and "idx3" becomes "idx1"
 * (train-images-idx3-ubyte.gz -> train-labels-idx1-ubyte.gz), tried with
 * the same compression first, then with ".gz" added or removed.  Either file
 * may be gzip-compressed (detected by its magic, not its name).
 *
 * Format (big-endian): 0x00 0x00, type byte, number of dimensions, then one
 * u32 per dimension, then the data.  Images: type 0x08 (unsigned byte), at
 * least 2 dimensions (count, then the shape of one image: rows x cols).
 * Labels: type 0x08, 1 dimension equal to the image count.  The data must
 * fill the file exactly (plain: file size; gzip: decompressed length).
 * Every violation is an error naming the file.
 *
 * Rows: row i has the nonzero pixels as features, id = pixel index (0-based,
 * row-major: an MNIST image is ids 0..783, so --layers 784,... fits) and
 * value = pixel / 255 in [0, 1]; its label is the label byte (class mode) or
 * 0/1 (binary mode; any other byte is an error naming file and row).
 *
 * Sharding: shard r of W holds the contiguous rows [N r / W, N (r+1) / W)
 * (the same cut as wk_data's byte ranges): every row belongs to exactly one
 * shard.  The shard is loaded into memory once (one byte per pixel) and
 * served every epoch; with shuffle > 0 its rows are served in an order
 * permuted within consecutive windows of that many rows, a new permutation
 * each epoch (splitmix64 seeded by seed and epoch). */
#ifndef WK_IDX_H
#define WK_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "wk_data.h"

typedef struct wk_idx wk_idx_t;

typedef struct {
    const char *spec;          /* "IMAGES[,LABELS]" */
    uint32_t shard, nshards;
    wk_label_mode_t labels;
    uint32_t shuffle;          /* window rows; 0 = file order */
    uint64_t seed;
} wk_idx_conf_t;

/* 1 if the spec's images file (or the whole spec, if it names a file) starts
 * with an IDX header of unsigned bytes with >= 2 dimensions (plain or gzip). */
int wk_idx_sniff(const char *spec);

/* Opens and validates the pair and loads this shard.  NULL + reason (naming
 * the file) in err. */
wk_idx_t *wk_idx_new(const wk_idx_conf_t *conf, char *err, size_t errlen);
void wk_idx_destroy(wk_idx_t **x);

/* Next batch of up to max_rows rows: count (> 0), or 0 at the end of the
 * epoch.  The batch points into x until the next call. */
long wk_idx_next(wk_idx_t *x, size_t max_rows, wk_batch_t *b);
void wk_idx_rewind(wk_idx_t *x);       /* next epoch */
uint64_t wk_idx_rows(const wk_idx_t *x);   /* rows returned this epoch */
double wk_idx_progress(const wk_idx_t *x); /* 0..1 of this epoch */
uint64_t wk_idx_total(const wk_idx_t *x);  /* rows in the whole file */
uint32_t wk_idx_features(const wk_idx_t *x); /* pixels per image */
/* First row of this shard in the file (rows are lo .. lo + shard rows - 1). */
uint64_t wk_idx_first_row(const wk_idx_t *x);
uint64_t wk_idx_shard_rows(const wk_idx_t *x);

/* The labels file of an images file by the MNIST naming (see above):
 * 0, or ZPS_EINVAL when the name has no "images"/"idx3" to replace. */
int wk_idx_labels_name(const char *images, char *out, size_t outlen);

#endif
