/* zps_vcodec: float32 / binary16 / block-int8 value codecs (API in the header).
 *
 * Byte order.  Every field is little-endian.  On little-endian hosts (all we
 * build for) f32 is one memcpy and the other codecs load/store through
 * memcpy, which compiles to plain unaligned moves; big-endian hosts swap.
 *
 * Speed.  The f16 and int8 loops run over chunks of 64 values with
 * constant trip counts and branch-free lane code (integer compares and
 * selects: GCC does not if-convert float compares under the default
 * -ftrapping-math), so GCC vectorizes them at -O2 (its "very cheap" cost
 * model).  Random signs and stochastic decisions would otherwise cost a
 * branch misprediction per value.  The last, shorter chunk is copied into a
 * zero-padded buffer first.
 *
 * float -> half (a = |x| bits):
 *   - normal halves (|x| >= 2^-14): the half is the float's top bits with the
 *     exponent rebased by 112 (127 - 15) and 13 mantissa bits dropped.
 *     Rounding adds r to a before the shift: r = 0xfff + lsb (nearest, ties
 *     to even) or r uniform in [0, 2^13) (stochastic: the dropped bits d
 *     carry into the kept part with probability d / 2^13, exactly the
 *     unbiased rule).  A mantissa carry bumps the exponent, which is right
 *     because floats are monotone in their bit patterns.  Results above
 *     0x7bff (65504) clamp to 0x7bff.
 *   - subnormal halves (|x| < 2^-14): y = |x| * 2^24 (exact) is the half in
 *     quanta of 2^-24; see s_f2h_lane.  Stochastic lanes below 2^-17, where
 *     16 random bits would not be exact, are redone by a scalar pass with a
 *     fresh 64-bit draw each (exact down to 2^-64, zero below).
 * Random bits: one splitmix64 draw gives 16 bits to each of 4 values.
 *
 * half -> float is the inverse with a select for subnormals ((float)m *
 * 2^-24, exact) and for infinities/NaNs.
 *
 * int8: per block the scale s = max|x| / 127 (float) and y = x * (1 / s);
 * when 1 / s is not finite (s subnormal) y = x / s instead.  A subnormal s
 * has few significant bits, so it is rounded up to the next float when
 * 127 * s < max|x|: then |y| <= 127 and the error bounds still hold (blocks
 * whose maximum is below 127 * FLT_MIN ~ 1.5e-36 only).  At the other end s
 * is rounded down when 127 * s would overflow (maximum near FLT_MAX), so a
 * decoded value is always finite; the block maximum then clamps to 127.
 * Nearest uses the 1.5 * 2^23 trick ((y + C) - C rounds to the nearest
 * integer f, ties to even, exact for |y| < 2^22).  Stochastic starts from
 * the same f and d = y - f (exact, |d| <= 1/2) and moves one step towards y
 * with probability |d|, comparing 31 random bits with |d| in 1.31 fixed
 * point, so the bias is below 2^-31 quantum.  One splitmix64 draw serves 2
 * values.  q is clamped to [-127, 127] (y may exceed 127 by one float
 * rounding at the maximum). */
#include "zps_vcodec.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "zps_err.h"
#include "zps_rng.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define S_BIG_ENDIAN 1
#else
#define S_BIG_ENDIAN 0
#endif

#define S_HALF_MAX 0x7bffu          /* 65504 */
#define S_F32_HALF_MIN 0x38800000u  /* 2^-14 as float bits */
#define S_RN_MAGIC 12582912.0f      /* 1.5 * 2^23 */

static inline uint32_t s_f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float s_u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline void s_put32(uint8_t *p, uint32_t v)
{
#if S_BIG_ENDIAN
    v = __builtin_bswap32(v);
#endif
    memcpy(p, &v, 4);
}

static inline uint32_t s_get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
#if S_BIG_ENDIAN
    v = __builtin_bswap32(v);
#endif
    return v;
}

static inline void s_put16(uint8_t *p, uint16_t v)
{
#if S_BIG_ENDIAN
    v = __builtin_bswap16(v);
#endif
    memcpy(p, &v, 2);
}

static inline uint16_t s_get16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
#if S_BIG_ENDIAN
    v = __builtin_bswap16(v);
#endif
    return v;
}

/* ---- binary16 ---------------------------------------------------------- */

/* Values per chunk: every lane loop has a constant trip count. */
#define S_CHUNK 64

/* Normal-range half of a = |x| bits (a >= 2^-14) after adding rounding bits
 * r (< 2^13), clamped to the largest finite half. */
static inline uint32_t s_h_normal(uint32_t a, uint32_t r)
{
    uint32_t t = (a + r) >> 13;
    return t >= (112u << 10) + S_HALF_MAX ? S_HALF_MAX : t - (112u << 10);
}

/* Subnormal-range half of a (a < 2^-14 as float bits), stochastic with a
 * fresh 64-bit draw: exact for every a >= 2^-64. */
static inline uint32_t s_h_sub_sr(uint32_t a, uint64_t *st)
{
    uint32_t ex = a >> 23;
    if (ex < 63u) /* < 2^-64, float subnormals and zero included */
        return 0;
    uint64_t mant = (a & 0x7fffffu) | 0x800000u;
    uint32_t sh = 126u - ex; /* 14..63 */
    uint64_t r = zps_rng_next(st) & ((1ull << sh) - 1u);
    return (uint32_t)((mant + r) >> sh);
}

/* Half of one float (bits x), every lane computed without branches:
 *   normal range  s_h_normal with rounding bits nearest-even or r & 0x1fff;
 *   below 2^-14   y = |x| * 2^24 (exact) is the half in quanta of 2^-24:
 *                 f = nearest integer (1.5 * 2^23 trick), d = y - f
 *                 (exact, |d| <= 1/2); stochastic moves f one step towards
 *                 y with probability |d|, comparing the 16 random bits with
 *                 |d| * 2^16, which is exact when |x| >= 2^-17 (its float
 *                 ulp is then >= 2^-40).  Smaller stochastic lanes are
 *                 redone by s_h_sub_sr (the caller checks S_H_REDO). */
#define S_H_REDO 0x37000000u /* 2^-17 */
static inline uint16_t s_f2h_lane(uint32_t x, uint32_t r16, int stochastic)
{
    uint32_t a = x & 0x7fffffffu;
    uint32_t hn = s_h_normal(a, stochastic ? (r16 & 0x1fffu) : 0xfffu + ((a >> 13) & 1u));
    uint32_t as = a < S_F32_HALF_MIN ? a : S_F32_HALF_MIN; /* keeps y <= 1024 */
    float y = s_u2f(as) * 0x1p24f;
    float f = (y + S_RN_MAGIC) - S_RN_MAGIC;
    int32_t hs = (int32_t)f;
    if (stochastic) {
        float d = y - f;
        int32_t away = (int32_t)r16 < (int32_t)(fabsf(d) * 0x1p16f);
        hs += away * (1 - 2 * (int32_t)(s_f2u(d) >> 31));
    }
    uint32_t sub = 0u - (uint32_t)(a < S_F32_HALF_MIN);
    return (uint16_t)((((uint32_t)hs & sub) | (hn & ~sub)) | ((x >> 16) & 0x8000u));
}

/* S_CHUNK floats at in (any alignment) to halves h.  r16: S_CHUNK random
 * lanes, or NULL for nearest.  Returns nonzero when a stochastic lane needs
 * s_h_sub_sr. */
static uint32_t s_f2h_chunk(const uint8_t *in, uint16_t *h, const uint16_t *r16)
{
    uint32_t redo = 0;
    if (r16 == NULL) {
        for (int j = 0; j < S_CHUNK; j++)
            h[j] = s_f2h_lane(s_get32(in + 4 * j), 0, 0);
        return 0;
    }
    for (int j = 0; j < S_CHUNK; j++) {
        uint32_t x = s_get32(in + 4 * j);
        redo |= (x & 0x7fffffffu) < S_H_REDO;
        h[j] = s_f2h_lane(x, r16[j], 1);
    }
    return redo;
}

static void s_enc_f16(const float *in, size_t n, uint8_t *out, uint64_t *rng)
{
    uint64_t st = rng ? *rng : 0;
    uint16_t h[S_CHUNK], r16[S_CHUNK] = { 0 };
    uint8_t tail[4 * S_CHUNK];
    for (size_t off = 0; off < n; off += S_CHUNK) {
        size_t cnt = n - off < S_CHUNK ? n - off : S_CHUNK;
        const uint8_t *src = (const uint8_t *)(in + off);
        if (cnt < S_CHUNK) { /* last chunk: zero-padded copy */
            memcpy(tail, src, 4 * cnt);
            memset(tail + 4 * cnt, 0, 4 * (S_CHUNK - cnt));
            src = tail;
        }
        if (rng) {
            for (size_t j = 0; j < cnt; j += 4) {
                uint64_t r = zps_rng_next(&st);
                r16[j] = (uint16_t)r;
                r16[j + 1] = (uint16_t)(r >> 16);
                r16[j + 2] = (uint16_t)(r >> 32);
                r16[j + 3] = (uint16_t)(r >> 48);
            }
            if (s_f2h_chunk(src, h, r16)) {
                for (size_t j = 0; j < cnt; j++) {
                    uint32_t x = s_get32(src + 4 * j);
                    if ((x & 0x7fffffffu) < S_H_REDO)
                        h[j] = (uint16_t)(((x >> 16) & 0x8000u) | s_h_sub_sr(x & 0x7fffffffu, &st));
                }
            }
        } else {
            s_f2h_chunk(src, h, NULL);
        }
        uint8_t *dst = out + 2 * off;
        if (cnt == S_CHUNK) {
            for (int j = 0; j < S_CHUNK; j++)
                s_put16(dst + 2 * j, h[j]);
        } else {
            for (size_t j = 0; j < cnt; j++)
                s_put16(dst + 2 * j, h[j]);
        }
    }
    if (rng)
        *rng = st;
}

/* binary16 bits to float bits: normal (rebased exponent), subnormal
 * ((float)m * 2^-24, exact), inf / NaN (payload kept), selected by masks. */
static inline uint32_t s_h2f(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t em = h & 0x7fffu;
    uint32_t norm = (em << 13) + (112u << 23);
    uint32_t special = (em << 13) | 0x7f800000u;
    uint32_t sub = s_f2u((float)(int32_t)em * 0x1p-24f);
    uint32_t is_special = 0u - (uint32_t)(em >= 0x7c00u); /* masks: all ones */
    uint32_t is_norm = (0u - (uint32_t)(em >= 0x400u)) & ~is_special;
    uint32_t bits = (special & is_special) | (norm & is_norm) | (sub & ~(is_special | is_norm));
    return bits | sign;
}

static void s_dec_f16(const uint8_t *buf, size_t n, float *out)
{
    uint32_t f[S_CHUNK];
    size_t full = n - n % S_CHUNK;
    for (size_t off = 0; off < full; off += S_CHUNK) {
        for (int j = 0; j < S_CHUNK; j++)
            f[j] = s_h2f(s_get16(buf + 2 * (off + (size_t)j)));
        memcpy(out + off, f, sizeof f);
    }
    for (size_t i = full; i < n; i++) {
        f[0] = s_h2f(s_get16(buf + 2 * i));
        memcpy(out + i, f, 4);
    }
}

/* ---- int8 blocks ------------------------------------------------------- */

static inline int32_t s_clamp127(int32_t q)
{
    q = q > 127 ? 127 : q;
    return q < -127 ? -127 : q;
}

/* One block of 64 floats at in (any alignment; the last block is given
 * zero-padded): its scale at out, its first cnt bytes after it.  Loops are
 * branch-free (selects) with constant trip counts so that GCC vectorizes
 * them; this matters for the random signs and stochastic comparisons. */
static void s_enc_i8_block(const uint8_t *in, size_t cnt, uint8_t *out, uint64_t *st)
{
    enum { B = ZPS_VC_INT8_BLOCK };
    float x[B], y[B];
    int8_t q[B];
    uint32_t mb = 0; /* max |x| as bits: finite floats order like their bits */
    for (int j = 0; j < B; j++) {
        uint32_t u = s_get32(in + 4 * j);
        x[j] = s_u2f(u);
        u &= 0x7fffffffu;
        mb = u > mb ? u : mb;
    }
    float mx = s_u2f(mb), sc = mx / 127.0f;
    if (sc < FLT_MIN && (double)sc * 127.0 < (double)mx)
        sc = s_u2f(s_f2u(sc) + 1u); /* subnormal: round up, so |x / s| <= 127 */
    if ((double)sc * 127.0 > (double)FLT_MAX)
        sc = s_u2f(s_f2u(sc) - 1u); /* keep 127 * s finite for the decoder */
    s_put32(out, s_f2u(sc));
    if (mb == 0) {
        memset(out + 4, 0, cnt);
        return;
    }
    float inv = 1.0f / sc;
    if (inv <= FLT_MAX) {
        for (int j = 0; j < B; j++)
            y[j] = x[j] * inv;
    } else { /* scale subnormal: 1 / s overflows */
        for (int j = 0; j < B; j++)
            y[j] = x[j] / sc;
    }
    if (st == NULL) {
        for (int j = 0; j < B; j++)
            q[j] = (int8_t)s_clamp127((int32_t)((y[j] + S_RN_MAGIC) - S_RN_MAGIC));
    } else {
        uint32_t rb[B];
        for (size_t j = 0; j < cnt; j += 2) {
            uint64_t r = zps_rng_next(st);
            rb[j] = (uint32_t)r;
            rb[j + 1] = (uint32_t)(r >> 32);
        }
        for (size_t j = (cnt + 1) & ~(size_t)1; j < B; j++)
            rb[j] = 0;
        for (int j = 0; j < B; j++) {
            float f = (y[j] + S_RN_MAGIC) - S_RN_MAGIC; /* nearest integer */
            float d = y[j] - f;                           /* exact, |d| <= 1/2 */
            int32_t dfix = (int32_t)(fabsf(d) * 0x1p31f); /* |d| in 1.31 fixed point */
            int32_t away = (int32_t)(rb[j] >> 1) < dfix;  /* probability |d| */
            int32_t dir = 1 - 2 * (int32_t)(s_f2u(d) >> 31); /* towards y */
            q[j] = (int8_t)s_clamp127((int32_t)f + away * dir);
        }
    }
    if (cnt == B)
        memcpy(out + 4, q, B);
    else
        memcpy(out + 4, q, cnt);
}

static void s_enc_int8(const float *in, size_t n, uint8_t *out, uint64_t *rng)
{
    uint64_t st = rng ? *rng : 0;
    uint8_t tail[4 * ZPS_VC_INT8_BLOCK];
    for (size_t off = 0; off < n; off += ZPS_VC_INT8_BLOCK) {
        size_t cnt = n - off < ZPS_VC_INT8_BLOCK ? n - off : ZPS_VC_INT8_BLOCK;
        const uint8_t *src = (const uint8_t *)(in + off);
        if (cnt < ZPS_VC_INT8_BLOCK) {
            memcpy(tail, src, 4 * cnt);
            memset(tail + 4 * cnt, 0, 4 * (ZPS_VC_INT8_BLOCK - cnt));
            src = tail;
        }
        s_enc_i8_block(src, cnt, out, rng ? &st : NULL);
        out += 4 + cnt;
    }
    if (rng)
        *rng = st;
}

static int s_dec_int8(const uint8_t *buf, size_t n, float *out)
{
    for (size_t off = 0; off < n; off += ZPS_VC_INT8_BLOCK) {
        size_t cnt = n - off < ZPS_VC_INT8_BLOCK ? n - off : ZPS_VC_INT8_BLOCK;
        uint32_t sb = s_get32(buf);
        if ((sb >> 31) || (sb & 0x7f800000u) == 0x7f800000u)
            return ZPS_EPROTO; /* negative, infinite or NaN scale */
        float sc = s_u2f(sb);
        const int8_t *q = (const int8_t *)(buf + 4);
        if (cnt == ZPS_VC_INT8_BLOCK) {
            for (int j = 0; j < ZPS_VC_INT8_BLOCK; j++)
                out[off + (size_t)j] = (float)q[j] * sc;
        } else {
            for (size_t j = 0; j < cnt; j++)
                out[off + j] = (float)q[j] * sc;
        }
        buf += 4 + cnt;
    }
    return 0;
}

/* ---- API --------------------------------------------------------------- */

size_t zps_vc_size(zps_vcodec_t c, size_t n)
{
    switch (c) {
    case ZPS_VC_F32: return 4 * n;
    case ZPS_VC_F16: return 2 * n;
    case ZPS_VC_INT8: return n + 4 * ((n + ZPS_VC_INT8_BLOCK - 1) / ZPS_VC_INT8_BLOCK);
    default: return 0;
    }
}

size_t zps_vc_encode(zps_vcodec_t c, const float *in, size_t n, uint8_t *out, uint64_t *rng)
{
    switch (c) {
    case ZPS_VC_F32:
#if S_BIG_ENDIAN
        for (size_t i = 0; i < n; i++)
            s_put32(out + 4 * i, s_f2u(in[i]));
#else
        if (n)
            memcpy(out, in, 4 * n);
#endif
        break;
    case ZPS_VC_F16: s_enc_f16(in, n, out, rng); break;
    case ZPS_VC_INT8: s_enc_int8(in, n, out, rng); break;
    default: return 0;
    }
    return zps_vc_size(c, n);
}

int zps_vc_decode(zps_vcodec_t c, const uint8_t *buf, size_t len, size_t n, float *out)
{
    switch (c) {
    case ZPS_VC_F32:
    case ZPS_VC_F16:
    case ZPS_VC_INT8: break;
    default: return ZPS_EPROTO;
    }
    if (len != zps_vc_size(c, n))
        return ZPS_EPROTO;
    switch (c) {
    case ZPS_VC_F32:
#if S_BIG_ENDIAN
        for (size_t i = 0; i < n; i++)
            out[i] = s_u2f(s_get32(buf + 4 * i));
#else
        if (n)
            memcpy(out, buf, 4 * n);
#endif
        return 0;
    case ZPS_VC_F16: s_dec_f16(buf, n, out); return 0;
    default: return s_dec_int8(buf, n, out);
    }
}

const char *zps_vc_name(zps_vcodec_t c)
{
    switch (c) {
    case ZPS_VC_F32: return "f32";
    case ZPS_VC_F16: return "f16";
    case ZPS_VC_INT8: return "int8";
    default: return "unknown";
    }
}

int zps_vc_parse(const char *name, zps_vcodec_t *c)
{
    static const zps_vcodec_t all[] = { ZPS_VC_F32, ZPS_VC_F16, ZPS_VC_INT8 };
    if (name == NULL)
        return ZPS_EINVAL;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(name, zps_vc_name(all[i])) == 0) {
            *c = all[i];
            return 0;
        }
    }
    return ZPS_EINVAL;
}

int zps_vc_all_finite(const float *in, size_t n)
{
    int ok = 1;
    for (size_t i = 0; i < n; i++)
        ok &= isfinite(in[i]) != 0;
    return ok;
}
