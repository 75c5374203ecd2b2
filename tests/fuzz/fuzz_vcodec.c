/* fuzz_vcodec: the value codecs (common/zps_vcodec.c), both directions.
 *
 * Input: a codec byte, a mode byte, 8 bytes of rng state, then a payload.
 *
 * Decoding (every codec value 0..3, 3 being unknown): the payload is a
 * values frame; n is what fits it exactly, or that plus/minus one, or an
 * explicit count (mode).  zps_vc_decode must accept exactly the frames the
 * header describes (length zps_vc_size(c, n), known codec, int8 scales not
 * negative, infinite or NaN) and produce what a plain reference decoder
 * produces: f32 bit for bit, f16 from the binary16 definition (NaN for NaN),
 * int8 (float)q * s.
 *
 * Encoding: the payload read as float32 (non-finite ones replaced, the
 * encoder's contract), encoded with every codec, nearest (rng NULL) and
 * stochastic (the given state), must satisfy what zps_vcodec.h promises:
 *   size zps_vc_size; same state and input, same bytes; decodes to finite values;
 *   f32 lossless;
 *   f16 nearest: the correctly rounded half (ties to even) of x, or +-65504
 *     when |x| >= 65504; stochastic: one of the two halves around x (x itself
 *     when representable), or +-65504 beyond it; the sign kept;
 *   int8: per block s finite, not negative, 0 exactly for an all-zero block,
 *     close to max|x| / 127; q in [-127, 127]; |q s - x| <= s / 2 (nearest)
 *     or < s (stochastic), up to 2^-14 s for the rounding of x / s itself. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "zps_err.h"
#include "zps_vcodec.h"

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* binary16 -> double, from the definition. */
static double ref_h2d(uint16_t h)
{
    int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 0)
        v = ldexp((double)m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexp((double)(1024 + m), e - 25);
    return sign ? -v : v;
}

static size_t n_for_len(zps_vcodec_t c, size_t len)
{
    switch (c) {
    case ZPS_VC_F32: return len / 4;
    case ZPS_VC_F16: return len / 2;
    case ZPS_VC_INT8: {
        /* largest n with size(n) <= len */
        size_t blocks = (len + 4 + ZPS_VC_INT8_BLOCK) / (4 + ZPS_VC_INT8_BLOCK);
        size_t n = len > 4 * blocks ? len - 4 * blocks : 0;
        while (n > 0 && zps_vc_size(c, n) > len)
            n--;
        while (zps_vc_size(c, n + 1) <= len)
            n++;
        return n;
    }
    default: return len;
    }
}

static void check_decode(zps_vcodec_t c, uint8_t mode, const uint8_t *buf, size_t len, uint16_t nx)
{
    size_t n = n_for_len(c, len);
    switch (mode & 3) {
    case 1: n = n + 1; break;
    case 2: n = n ? n - 1 : 0; break;
    case 3: n = nx; break;
    default: break;
    }
    float *out = malloc((n ? n : 1) * sizeof *out);
    FUZZ_CHECK(out, "out of memory");
    int rc = zps_vc_decode(c, buf, len, n, out);

    int valid = (unsigned)c <= ZPS_VC_INT8 && zps_vc_size(c, n) == len;
    if (valid && c == ZPS_VC_INT8) {
        for (size_t off = 0, pos = 0; off < n; off += ZPS_VC_INT8_BLOCK) {
            size_t cnt = n - off < ZPS_VC_INT8_BLOCK ? n - off : ZPS_VC_INT8_BLOCK;
            uint32_t sb;
            memcpy(&sb, buf + pos, 4);
            if ((sb >> 31) || (sb & 0x7f800000u) == 0x7f800000u)
                valid = 0;
            pos += 4 + cnt;
        }
    }
    if (!valid) {
        FUZZ_CHECK(rc == ZPS_EPROTO, "codec %d, n %zu, len %zu (want %zu): accepted (%d)", (int)c,
                   n, len, zps_vc_size(c, n), rc);
        free(out);
        return;
    }
    FUZZ_CHECK(rc == 0, "codec %d, n %zu, len %zu: valid frame rejected (%d)", (int)c, n, len, rc);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (c == ZPS_VC_F32) {
            uint32_t u;
            memcpy(&u, buf + 4 * i, 4);
            FUZZ_CHECK(f2u(out[i]) == u, "f32 value %zu: %08x, frame %08x", i, f2u(out[i]), u);
        } else if (c == ZPS_VC_F16) {
            uint16_t h;
            memcpy(&h, buf + 2 * i, 2);
            double want = ref_h2d(h);
            if (isnan(want))
                FUZZ_CHECK(isnan(out[i]), "f16 %04x decoded to %g, not NaN", h, (double)out[i]);
            else
                FUZZ_CHECK((double)out[i] == want && signbit(out[i]) == signbit(want),
                           "f16 %04x decoded to %a, want %a", h, (double)out[i], want);
        } else {
            size_t b = i % ZPS_VC_INT8_BLOCK;
            float s;
            if (b == 0) {
                memcpy(&s, buf + pos, 4);
                pos += 4;
            } else {
                memcpy(&s, buf + pos - 4 - b, 4);
            }
            int8_t q = (int8_t)buf[pos++];
            float want = (float)q * s;
            FUZZ_CHECK(f2u(out[i]) == f2u(want), "int8 value %zu: q %d scale %a gave %a, want %a",
                       i, q, (double)s, (double)out[i], (double)want);
        }
    }
    free(out);
}

/* Half bits of magnitude m (0..0x7bff) as a double. */
static double hmag(uint32_t m) { return ref_h2d((uint16_t)m); }

static void check_f16(const float *x, size_t n, const uint8_t *enc, const float *dec, int sr)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, enc + 2 * i, 2);
        uint32_t m = h & 0x7fffu;
        double ax = fabs((double)x[i]);
        FUZZ_CHECK(m <= 0x7bff, "f16 of %a is %04x: not finite", (double)x[i], h);
        FUZZ_CHECK(dec[i] == (float)(h & 0x8000 ? -hmag(m) : hmag(m)), "f16 decode mismatch");
        if (m != 0)
            FUZZ_CHECK(!!(h & 0x8000) == !!signbit(x[i]), "f16 of %a is %04x: sign lost",
                       (double)x[i], h);
        if (ax >= 65504.0) {
            FUZZ_CHECK(m == 0x7bff, "f16 of %a is %04x, want the clamp 65504", (double)x[i], h);
            continue;
        }
        double a = hmag(m), err = fabs(a - ax);
        if (!sr) {
            /* no neighbour is closer; a tie goes to the even one */
            double lo = m > 0 ? fabs(hmag(m - 1) - ax) : INFINITY;
            double hi = m < 0x7bff ? fabs(hmag(m + 1) - ax) : INFINITY;
            FUZZ_CHECK(err <= lo && err <= hi,
                       "f16 nearest of %a is %a (%04x): a neighbour is closer", (double)x[i], a, h);
            if (err == lo || err == hi)
                FUZZ_CHECK((m & 1) == 0, "f16 tie of %a went to odd %04x", (double)x[i], h);
        } else {
            /* one of the two halves around |x| */
            int ok = a == ax || (a < ax && m < 0x7bff && hmag(m + 1) > ax) ||
                     (a > ax && (m == 0 || hmag(m - 1) < ax));
            FUZZ_CHECK(ok, "f16 stochastic of %a is %a (%04x): not a neighbour", (double)x[i], a, h);
        }
    }
}

static void check_int8(const float *x, size_t n, const uint8_t *enc, const float *dec, int sr)
{
    size_t pos = 0;
    for (size_t off = 0; off < n; off += ZPS_VC_INT8_BLOCK) {
        size_t cnt = n - off < ZPS_VC_INT8_BLOCK ? n - off : ZPS_VC_INT8_BLOCK;
        float s;
        memcpy(&s, enc + pos, 4);
        pos += 4;
        double mx = 0;
        for (size_t j = 0; j < cnt; j++)
            mx = fmax(mx, fabs((double)x[off + j]));
        FUZZ_CHECK(isfinite(s) && !signbit(s), "int8 block %zu: scale %a", off / 64, (double)s);
        if (mx == 0) {
            FUZZ_CHECK(s == 0, "int8 all-zero block with scale %a", (double)s);
        } else {
            FUZZ_CHECK(s > 0, "int8 block of max %a with scale 0", mx);
            double r = (double)s * 127.0 / mx;
            if (s >= FLT_MIN)
                FUZZ_CHECK(r > 1 - 0x1p-20 && r < 1 + 0x1p-20,
                           "int8 block max %a, scale %a: 127 s / max = %.9g", mx, (double)s, r);
            else
                FUZZ_CHECK(r >= 1 && (double)s <= mx / 127.0 + 0x1p-149,
                           "int8 block max %a, subnormal scale %a: 127 s / max = %.9g", mx,
                           (double)s, r);
        }
        /* x / s is itself a rounded float (relative error up to 2^-23 twice,
         * at most 127 * 2^-22 absolute): the documented bound holds up to
         * about 2^-15 s, plus the rounding of q * s (half a subnormal ulp) */
        double bound = (sr ? 1.0 : 0.5) * (double)s + 0x1p-14 * (double)s + 0x1p-149;
        for (size_t j = 0; j < cnt; j++) {
            int8_t q = (int8_t)enc[pos + j];
            FUZZ_CHECK(q >= -127, "int8 q %d", q);
            double e = fabs((double)dec[off + j] - (double)x[off + j]);
            FUZZ_CHECK(sr ? e < bound : e <= bound,
                       "int8 %s: %a -> q %d * %a = %a, error %a over %a", sr ? "stochastic" : "nearest",
                       (double)x[off + j], q, (double)s, (double)dec[off + j], e, bound);
        }
        pos += cnt;
    }
}

static void check_encode(const float *x, size_t n, uint64_t seed)
{
    for (int c = ZPS_VC_F32; c <= ZPS_VC_INT8; c++) {
        for (int sr = 0; sr <= 1; sr++) {
            size_t sz = zps_vc_size((zps_vcodec_t)c, n);
            uint8_t *enc = malloc(sz ? sz : 1), *enc2 = malloc(sz ? sz : 1);
            float *dec = malloc((n ? n : 1) * sizeof *dec);
            FUZZ_CHECK(enc && enc2 && dec, "out of memory");
            uint64_t st = seed, st2 = seed;
            size_t w = zps_vc_encode((zps_vcodec_t)c, x, n, enc, sr ? &st : NULL);
            FUZZ_CHECK(w == sz, "codec %d encode wrote %zu, size %zu", c, w, sz);
            size_t w2 = zps_vc_encode((zps_vcodec_t)c, x, n, enc2, sr ? &st2 : NULL);
            FUZZ_CHECK(w2 == w && st2 == st && (sz == 0 || memcmp(enc, enc2, sz) == 0),
                       "codec %d: same input and state, different output", c);
            FUZZ_CHECK(zps_vc_decode((zps_vcodec_t)c, enc, sz, n, dec) == 0,
                       "codec %d: own encoding rejected", c);
            for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(isfinite(dec[i]), "codec %d: %a decoded to %a", c, (double)x[i],
                           (double)dec[i]);
            if (c == ZPS_VC_F32)
                FUZZ_CHECK(n == 0 || memcmp(dec, x, n * 4) == 0, "f32 not lossless");
            else if (c == ZPS_VC_F16)
                check_f16(x, n, enc, dec, sr);
            else
                check_int8(x, n, enc, dec, sr);
            free(enc);
            free(enc2);
            free(dec);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    uint8_t cb = fuzz_u8(&in), mode = fuzz_u8(&in);
    uint64_t seed = fuzz_u64(&in);
    uint16_t nx = fuzz_u16(&in);
    zps_vcodec_t c = (zps_vcodec_t)(cb & 3);
    if ((cb & 3) == 3)
        c = (zps_vcodec_t)(cb >> 2); /* unknown codecs, and the known ones again */

    /* exact-size copy: ASan sees reads past the frame */
    size_t len = in.n;
    uint8_t *buf = malloc(len ? len : 1);
    FUZZ_CHECK(buf, "out of memory");
    if (len)
        memcpy(buf, in.p, len);
    check_decode(c, mode, buf, len, nx);

    /* the payload as floats: non-finite ones become finite (mode picks how) */
    size_t n = len / 4;
    float *x = malloc((n ? n : 1) * sizeof *x);
    FUZZ_CHECK(x, "out of memory");
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, buf + 4 * i, 4);
        if ((u & 0x7f800000u) == 0x7f800000u)
            u = mode & 4 ? (u & 0x807fffffu) | 0x7f000000u /* near FLT_MAX */
                         : u & 0x807fffffu;                /* subnormal */
        x[i] = u2f(u);
    }
    check_encode(x, n, seed);
    free(x);
    free(buf);
    return 0;
}
