/* zps_sketch: a count-min sketch with conservative update and saturating
 * 8-bit counters, for feature admission (an id gets a row once it was seen
 * N times).
 *
 * Why count-min and not a counting Bloom filter: admission asks "how many
 * times was this id seen", not "was it seen"; a counting Bloom filter with
 * k hashes and small counters answers the same min-over-k question but
 * sizes its one array for a false-positive rate of membership, while the
 * count-min layout (depth rows of width counters, one counter per row)
 * gives the classic over-count bound directly: with width w = e/eps and
 * depth d = ln(1/delta), an estimate exceeds the true count by more than
 * eps * T (T: increments so far) with probability at most delta.
 * Conservative update (raise only the counters equal to the minimum) keeps
 * that bound and makes over-counts much rarer on skewed (Zipf) streams.
 *
 * Error is one-sided: an estimate is never below the true count (until a
 * counter saturates at 255, after which it stays 255), so a count:N filter
 * admits an id at the latest on its N-th push, possibly earlier (a false
 * admission), never later.
 *
 * Memory: depth x width bytes (width a power of two).  zps_sketch_new sizes
 * it from the number of distinct ids expected to be counted: width = the
 * power of two >= 2 x ids, depth 4, so 8 bytes per expected id (1M ids:
 * 8 MiB).  Row indexes come from two seeded zps_mix64 hashes of the key
 * (double hashing: h1 + i * h2). */
#ifndef ZPS_SKETCH_H
#define ZPS_SKETCH_H

#include <stddef.h>
#include <stdint.h>

#define ZPS_SKETCH_MAX 255u   /* a counter saturates here */
#define ZPS_SKETCH_DEPTH 4u

typedef struct zps_sketch zps_sketch_t;

/* A sketch for about ids distinct ids (>= 1), hashing with seed.  NULL when
 * out of memory or ids is over 2^40. */
zps_sketch_t *zps_sketch_new(uint64_t ids, uint64_t seed);
/* A sketch of exactly depth rows of width counters (width a power of two,
 * 1 <= depth <= 16).  NULL when out of memory or the shape is invalid. */
zps_sketch_t *zps_sketch_new_shape(uint32_t depth, uint64_t width, uint64_t seed);
void zps_sketch_destroy(zps_sketch_t **sk);

/* The estimated count of key (>= its true count). */
uint32_t zps_sketch_estimate(const zps_sketch_t *sk, uint64_t key);
/* Count one more occurrence of key (conservative update); returns the new
 * estimate. */
uint32_t zps_sketch_add(zps_sketch_t *sk, uint64_t key);

/* Every counter back to 0. */
void zps_sketch_reset(zps_sketch_t *sk);

uint32_t zps_sketch_depth(const zps_sketch_t *sk);
uint64_t zps_sketch_width(const zps_sketch_t *sk);
/* Bytes of counters (depth x width). */
size_t zps_sketch_bytes(const zps_sketch_t *sk);
/* Occurrences counted since new or reset (T of the eps * T bound). */
uint64_t zps_sketch_total(const zps_sketch_t *sk);

/* Take src's counts into dst, counter by counter the larger of the two:
 * every key's estimate is then at least its estimate in either (so at
 * least its true count in either: a joining replica takes a donor's counts
 * this way).  0, or ZPS_EINVAL (another shape or seed: dst unchanged). */
int zps_sketch_merge(zps_sketch_t *dst, const zps_sketch_t *src);

/* Serialized form: magic "ZSK1", depth (u32), width, seed, total (u64),
 * then the counters, all little-endian.  zps_sketch_serial_size gives its
 * length; zps_sketch_serialize writes it to buf (that many bytes). */
size_t zps_sketch_serial_size(const zps_sketch_t *sk);
void zps_sketch_serialize(const zps_sketch_t *sk, unsigned char *buf);
/* A sketch from len bytes of serialized form; NULL (with a reason in err)
 * when they are not one. */
zps_sketch_t *zps_sketch_load(const unsigned char *buf, size_t len, char *err, size_t errlen);

#endif
