/* zps_sort: the one sort of 64-bit keys (LSD radix), used by the worker's
 * key lists (wk_model), exact AUC (wk_metrics, zps-datagen's truth metrics)
 * and zps-datagen's feature ids.
 *
 * Least-significant-digit radix sort over only the bits in which the keys
 * differ: the range [lo, hi] of varying bits is found in one pass (hashed
 * ids that share high bits, or scores that share a sign and exponent, take
 * fewer passes), then cut into equal digits of at most 11 bits (the count
 * table, 2^11 entries, stays in L1), and narrower when n is small, so that a
 * few dozen keys do not pay for clearing 2048 counters per pass.  Each pass
 * is a stable counting sort, so the whole sort is stable.  At most 32 keys
 * are insertion-sorted.  O(n * passes) time, n keys of scratch, no malloc.
 *
 * The functions ping-pong between the array and the scratch and return the
 * one that holds the sorted keys (a or tmp; the other is left with
 * garbage), so a caller that can use either saves a copy.
 *
 * Signed numbers and floating point sort as unsigned keys after
 * zps_sort_key_f64 (order-preserving: x < y iff key(x) < key(y), and x == y
 * iff key(x) == key(y) with -0 mapped to +0); NaN has no place in the
 * order and must be rejected by the caller. */
#ifndef ZPS_SORT_H
#define ZPS_SORT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Sorts a[0..n) ascending; tmp has room for n keys.  Returns a or tmp,
 * whichever holds the result. */
uint64_t *zps_sort_u64(uint64_t *a, uint64_t *tmp, size_t n);

/* The same, stably by the bits lo..hi-1 of each key only (0 <= lo < hi <=
 * 64): the other bits ride along (a payload packed below or above the
 * sort bits). */
uint64_t *zps_sort_u64_bits(uint64_t *a, uint64_t *tmp, size_t n, unsigned lo, unsigned hi);

/* A key with a 32-bit payload (an index, a slot). */
typedef struct {
    uint64_t key;
    uint32_t val;
} zps_sort_pair_t;

/* Sorts a[0..n) by key, stably (equal keys keep their order); tmp has room
 * for n pairs.  Returns a or tmp, whichever holds the result. */
zps_sort_pair_t *zps_sort_pairs(zps_sort_pair_t *a, zps_sort_pair_t *tmp, size_t n);

/* Order-preserving key of a double (not NaN): the sign bit flipped for
 * x >= 0, every bit flipped for x < 0; -0 counts as +0. */
static inline uint64_t zps_sort_key_f64(double x)
{
    uint64_t b;
    if (x == 0)
        x = 0; /* -0 -> +0 */
    memcpy(&b, &x, sizeof b);
    return b >> 63 ? ~b : b | (uint64_t)1 << 63;
}

#endif
