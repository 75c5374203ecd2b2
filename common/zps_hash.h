/* zps_hash: 64-bit mixing functions, header-only.
 *
 * zps_mix64 is a bijective finalizer (the splitmix64 / murmur3 fmix64 family
 * of xor-shift-multiply rounds): every input bit flips each output bit with
 * probability ~1/2, so dense ids 0..N and clustered ids spread uniformly.
 * Different seeds give independent-looking functions; placement, table
 * indexing and random initialisation each use their own seed so their bits
 * are not correlated. */
#ifndef ZPS_HASH_H
#define ZPS_HASH_H

#include <stdint.h>

#define ZPS_SEED_PLACE 0x9e3779b97f4a7c15ULL
#define ZPS_SEED_TABLE 0xc2b2ae3d27d4eb4fULL
#define ZPS_SEED_INIT  0x165667b19e3779f9ULL

static inline uint64_t zps_mix64(uint64_t x, uint64_t seed)
{
    x ^= seed;
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* Uniform float in [-1, 1) from a 64-bit hash (24 bits of mantissa). */
static inline float zps_hash_unit(uint64_t h)
{
    return (float)((int64_t)(h >> 40) - (1LL << 23)) * (1.0f / (float)(1 << 23));
}

#endif
