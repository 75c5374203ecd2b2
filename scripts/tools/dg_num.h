/* dg_num: what every zps-datagen generator shares -- the program's name and
 * exit statuses, the split streams, the seed-derived key of the row
 * streams, and the hash-driven normals and per-row generators.
 *
 * Every row has its own generator (splitmix64 state) seeded from (seed,
 * split, row index), so train, test and calibration are independent
 * streams and rows could be drawn in any order.  The normals are
 * Box-Muller on two hashes: a parameter keyed by (id, seed) is the same
 * wherever and whenever it is needed.  The small helpers are inline: they
 * sit in the per-row loops. */
#ifndef DG_NUM_H
#define DG_NUM_H

#include <math.h>
#include <stdint.h>

#include "zps_hash.h"
#include "zps_rng.h"

#ifndef ZPS_VERSION
#define ZPS_VERSION "unknown"
#endif

#define DG_PROG "zps-datagen"
#define DG_EXIT_IO 1
#define DG_EXIT_USAGE 2

/* the row streams: (seed, split, row) -> a row's generator */
#define DG_SPLIT_TRAIN 1u
#define DG_SPLIT_TEST 2u
#define DG_SPLIT_CALIB 3u
#define DG_CALIB_ROWS 20000u

/* Domain-separation constant of the row streams' key (the other keys
 * derived from the seed belong to the modules that use them). */
#define DG_KEY_ROWS 0x6a09e667f3bcc908ULL

/* Two independent standard normals from two hashes (Box-Muller). */
static inline void dg_gauss_pair(uint64_t h1, uint64_t h2, double *g0, double *g1)
{
    double r = sqrt(-2.0 * log(zps_rng_unit_open0(h1)));
    double t = 6.283185307179586476925 * zps_rng_unit(h2);
    *g0 = r * cos(t);
    *g1 = r * sin(t);
}

/* The generator state of one row: rows can be drawn in any order. */
static inline uint64_t dg_row_rng(uint64_t stream_key, uint32_t split, uint64_t row)
{
    return zps_mix64(row, zps_mix64(split, stream_key));
}

static inline double dg_sigmoid(double z)
{
    if (z >= 0)
        return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

/* The i-th standard normal of the sequence keyed by key. */
double dg_hash_gauss(uint64_t key, uint64_t i);

#endif
