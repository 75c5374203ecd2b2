/* zps_hash: 64-bit mixing functions, header-only.
 *
 * zps_mix64 is a bijective finalizer (the splitmix64 / murmur3 fmix64 family
 * of xor-shift-multiply rounds): every input bit flips each output bit with
 * probability ~1/2, so dense ids 0..N and clustered ids spread uniformly.
 * Different seeds give independent-looking functions; placement, table
 * indexing and random initialisation each use their own seed so their bits
 * are not correlated.  zps_hash_bytes64 hashes a byte string (key-cache
 * signatures). */
#ifndef ZPS_HASH_H
#define ZPS_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* The inverse of zps_mix64 for the same seed: zps_unmix64(zps_mix64(x, s),
 * s) == x.  Each xor-shift is undone by xoring in further shifts, each
 * multiply by the constant's inverse mod 2^64 (Newton's iteration, which
 * the compiler folds). */
static inline uint64_t zps__unxorshift(uint64_t y, unsigned s)
{
    uint64_t x = y;
    for (unsigned k = s; k < 64; k += s)
        x ^= y >> k;
    return x;
}

static inline uint64_t zps__inv_odd(uint64_t a)
{
    uint64_t x = a; /* right in 3 bits; each step doubles that */
    for (int i = 0; i < 5; i++)
        x *= 2 - a * x;
    return x;
}

static inline uint64_t zps_unmix64(uint64_t h, uint64_t seed)
{
    uint64_t x = zps__unxorshift(h, 31);
    x *= zps__inv_odd(0x94d049bb133111ebULL);
    x = zps__unxorshift(x, 27);
    x *= zps__inv_odd(0xbf58476d1ce4e5b9ULL);
    x = zps__unxorshift(x, 30);
    return x ^ seed;
}

/* Word-wise 64-bit hash of a byte string: its 8-byte words (native order)
 * each mixed in by zps_mix64, then the zero-padded tail together with its
 * length.  A hash for equality tests, NOT a file checksum: its value depends
 * on how a string is split into calls (the tail and its length are mixed in
 * at every call), so hash a whole string in one call.  Key-cache signatures
 * (zps_keys_sig) are made with it; workers and servers of different builds
 * must agree on them, so its values never change (check_codec pins them).
 * Files use zps_crc32 (zps_modelfile.h). */
static inline uint64_t zps_hash_bytes64(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = zps_mix64(h ^ w, 0x2545f4914f6cdd1dULL);
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    if (len)
        memcpy(&w, p, len);
    return zps_mix64(h ^ w ^ ((uint64_t)len << 56), 0x2545f4914f6cdd1dULL);
}

/* Uniform float in [-1, 1) from a 64-bit hash (24 bits of mantissa). */
static inline float zps_hash_unit(uint64_t h)
{
    return (float)((int64_t)(h >> 40) - (1LL << 23)) * (1.0f / (float)(1 << 23));
}

#endif
