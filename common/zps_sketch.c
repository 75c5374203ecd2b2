/* zps_sketch: count-min sketch, conservative update, 8-bit saturating
 * counters.  See zps_sketch.h for the choice and its error bound.
 *
 * Row r's counter for a key is r * width + ((h1 + r * h2) & (width - 1)),
 * h1 and h2 two seeded zps_mix64 hashes (h2 odd, so the d indexes of one key
 * differ whenever width > 1).  An add reads the d counters, takes their
 * minimum m and raises to m + 1 only those equal to m (the others already
 * over-count the key by at least as much). */
#include "zps_sketch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zps_err.h"
#include "zps_hash.h"

#define S_SEED2 0x7a646b6574636821ULL
#define S_HEADER (4 + 4 + 8 + 8 + 8)

struct zps_sketch {
    uint32_t depth;
    uint64_t width, mask, seed, total;
    uint8_t *c;
};

zps_sketch_t *zps_sketch_new_shape(uint32_t depth, uint64_t width, uint64_t seed)
{
    if (depth < 1 || depth > 16 || width == 0 || (width & (width - 1)) || width > (1ULL << 40))
        return NULL;
    zps_sketch_t *sk = calloc(1, sizeof *sk);
    if (!sk)
        return NULL;
    sk->depth = depth;
    sk->width = width;
    sk->mask = width - 1;
    sk->seed = seed;
    sk->c = calloc((size_t)(depth * width), 1);
    if (!sk->c)
        zps_sketch_destroy(&sk);
    return sk;
}

zps_sketch_t *zps_sketch_new(uint64_t ids, uint64_t seed)
{
    if (ids < 1 || ids > (1ULL << 40))
        return NULL;
    uint64_t w = 1;
    while (w < 2 * ids)
        w <<= 1;
    return zps_sketch_new_shape(ZPS_SKETCH_DEPTH, w, seed);
}

void zps_sketch_destroy(zps_sketch_t **skp)
{
    zps_sketch_t *sk = *skp;
    if (!sk)
        return;
    *skp = NULL;
    free(sk->c);
    free(sk);
}

static inline void s_index(const zps_sketch_t *sk, uint64_t key, size_t *ix)
{
    uint64_t h1 = zps_mix64(key, sk->seed), h2 = zps_mix64(key, sk->seed ^ S_SEED2) | 1;
    for (uint32_t r = 0; r < sk->depth; r++)
        ix[r] = (size_t)(r * sk->width + ((h1 + r * h2) & sk->mask));
}

uint32_t zps_sketch_estimate(const zps_sketch_t *sk, uint64_t key)
{
    size_t ix[16];
    s_index(sk, key, ix);
    uint32_t m = ZPS_SKETCH_MAX;
    for (uint32_t r = 0; r < sk->depth; r++)
        if (sk->c[ix[r]] < m)
            m = sk->c[ix[r]];
    return m;
}

uint32_t zps_sketch_add(zps_sketch_t *sk, uint64_t key)
{
    size_t ix[16];
    s_index(sk, key, ix);
    uint32_t m = ZPS_SKETCH_MAX;
    for (uint32_t r = 0; r < sk->depth; r++)
        if (sk->c[ix[r]] < m)
            m = sk->c[ix[r]];
    sk->total++;
    if (m == ZPS_SKETCH_MAX)
        return m;
    for (uint32_t r = 0; r < sk->depth; r++)
        if (sk->c[ix[r]] == m)
            sk->c[ix[r]] = (uint8_t)(m + 1);
    return m + 1;
}

void zps_sketch_reset(zps_sketch_t *sk)
{
    memset(sk->c, 0, zps_sketch_bytes(sk));
    sk->total = 0;
}

uint32_t zps_sketch_depth(const zps_sketch_t *sk) { return sk->depth; }
uint64_t zps_sketch_width(const zps_sketch_t *sk) { return sk->width; }
size_t zps_sketch_bytes(const zps_sketch_t *sk) { return (size_t)(sk->depth * sk->width); }
uint64_t zps_sketch_total(const zps_sketch_t *sk) { return sk->total; }

int zps_sketch_merge(zps_sketch_t *dst, const zps_sketch_t *src)
{
    if (dst->depth != src->depth || dst->width != src->width || dst->seed != src->seed)
        return ZPS_EINVAL;
    const size_t n = (size_t)dst->depth * dst->width;
    for (size_t i = 0; i < n; i++)
        dst->c[i] = dst->c[i] > src->c[i] ? dst->c[i] : src->c[i];
    dst->total += src->total; /* the bound's T: at most both streams */
    return 0;
}

size_t zps_sketch_serial_size(const zps_sketch_t *sk) { return S_HEADER + zps_sketch_bytes(sk); }

static void s_put(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t s_get(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void zps_sketch_serialize(const zps_sketch_t *sk, unsigned char *buf)
{
    memcpy(buf, "ZSK1", 4);
    s_put(buf + 4, sk->depth, 4);
    s_put(buf + 8, sk->width, 8);
    s_put(buf + 16, sk->seed, 8);
    s_put(buf + 24, sk->total, 8);
    memcpy(buf + S_HEADER, sk->c, zps_sketch_bytes(sk));
}

zps_sketch_t *zps_sketch_load(const unsigned char *buf, size_t len, char *err, size_t errlen)
{
    if (len < S_HEADER || memcmp(buf, "ZSK1", 4) != 0) {
        snprintf(err, errlen, "not a sketch (%zu bytes, no ZSK1 header)", len);
        return NULL;
    }
    uint32_t depth = (uint32_t)s_get(buf + 4, 4);
    uint64_t width = s_get(buf + 8, 8);
    if (depth < 1 || depth > 16 || width == 0 || (width & (width - 1)) || width > (1ULL << 40) ||
        len - S_HEADER != depth * width) {
        snprintf(err, errlen, "sketch shape %u x %llu does not match its %zu bytes", depth,
                 (unsigned long long)width, len);
        return NULL;
    }
    zps_sketch_t *sk = zps_sketch_new_shape(depth, width, s_get(buf + 16, 8));
    if (!sk) {
        snprintf(err, errlen, "out of memory for a %u x %llu sketch", depth,
                 (unsigned long long)width);
        return NULL;
    }
    sk->total = s_get(buf + 24, 8);
    memcpy(sk->c, buf + S_HEADER, zps_sketch_bytes(sk));
    return sk;
}
