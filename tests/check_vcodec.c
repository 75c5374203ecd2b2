/* check_vcodec: the f32 / f16 / int8 value codecs.
 *
 * f16 is checked against a slow reference that needs no float tricks: the
 * positive finite halves 0x0000..0x7bff are increasing in value, so the two
 * neighbours of |x| are found by binary search over exact (double) values;
 * nearest picks the closer one (ties to the even pattern) and stochastic
 * must pick one of the two.  Every one of the 65536 patterns is decoded and
 * compared with the reference value.
 *
 * Unbiasedness of stochastic rounding is tested on arrays of many copies of
 * one value (one encode call each): the mean of N decodings has standard
 * deviation q * sqrt(p (1 - p) / N) <= q / (2 sqrt N) for a quantum q; the
 * bound used is 8 of those (plus float slack), with a fixed seed, so the
 * test is deterministic and would not flake with any seed either (8 sigma).
 * Each value is chosen so that round-to-nearest misses the bound by a wide
 * margin, i.e. the test does detect a biased encoder. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_suites.h"
#include "zps_err.h"
#include "zps_rng.h"
#include "zps_vcodec.h"

/* Check records every passing ck_assert (a write to its result pipe), so
 * loops test plainly and only report a failure. */
#define S_REQUIRE(cond, ...)           \
    do {                               \
        if (!(cond))                   \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)

#define S_SEED 0x7c0dec5eed000001ull

static float s_bits2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t s_f2bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Exact value of a half bit pattern (inf / NaN for exponent 31). */
static double s_half_value(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v;
    if (e == 0)
        v = ldexp(m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

/* The positive halves lo <= |x| <= hi adjacent (lo == hi when exact or
 * clamped at 65504). */
static void s_half_neighbours(float x, uint16_t *lo, uint16_t *hi)
{
    double a = fabs((double)x);
    if (a >= 65504.0) {
        *lo = *hi = 0x7bff;
        return;
    }
    unsigned l = 0, r = 0x7bff; /* val(l) <= a < val(r) */
    while (r - l > 1) {
        unsigned mid = (l + r) / 2;
        if (s_half_value((uint16_t)mid) <= a)
            l = mid;
        else
            r = mid;
    }
    *lo = (uint16_t)l;
    *hi = s_half_value((uint16_t)l) == a ? (uint16_t)l : (uint16_t)r;
}

static uint16_t s_ref_f2h_rn(float x)
{
    uint16_t lo, hi, sign = signbit(x) ? 0x8000 : 0;
    s_half_neighbours(x, &lo, &hi);
    double a = fabs((double)x), dl = a - s_half_value(lo), dh = s_half_value(hi) - a;
    uint16_t h = dl < dh ? lo : dh < dl ? hi : (lo & 1) ? hi : lo;
    return (uint16_t)(h | sign);
}

static uint16_t s_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static float s_get_f32(const uint8_t *p)
{
    return s_bits2f((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                    (uint32_t)p[3] << 24);
}

static void s_put_f32(uint8_t *p, float f)
{
    uint32_t u = s_f2bits(f);
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(u >> (8 * i));
}

/* A float of random sign, mantissa and a binary exponent in [emin, emax]. */
static float s_rand_float(uint64_t *st, int emin, int emax)
{
    uint64_t r = zps_rng_next(st);
    int e = emin + (int)((r >> 32) % (uint64_t)(emax - emin + 1));
    float m = 1.0f + (float)((r >> 8) & 0x7fffff) * 0x1p-23f;
    float v = ldexpf(m, e);
    return (r & 1) ? -v : v;
}

START_TEST(test_sizes_and_names)
{
    ck_assert_uint_eq(zps_vc_size(ZPS_VC_F32, 0), 0);
    ck_assert_uint_eq(zps_vc_size(ZPS_VC_F32, 5), 20);
    ck_assert_uint_eq(zps_vc_size(ZPS_VC_F16, 5), 10);
    ck_assert_uint_eq(zps_vc_size(ZPS_VC_INT8, 0), 0);
    ck_assert_uint_eq(zps_vc_size(ZPS_VC_INT8, 1), 5);
    ck_assert_uint_eq(zps_vc_size(ZPS_VC_INT8, 64), 68);
    ck_assert_uint_eq(zps_vc_size(ZPS_VC_INT8, 65), 73);
    ck_assert_uint_eq(zps_vc_size(ZPS_VC_INT8, 128), 136);
    ck_assert_uint_eq(zps_vc_size(ZPS_VC_INT8, 1000), 1000 + 16 * 4);
    ck_assert_uint_eq(zps_vc_size((zps_vcodec_t)3, 10), 0);
    ck_assert_str_eq(zps_vc_name(ZPS_VC_F32), "f32");
    ck_assert_str_eq(zps_vc_name(ZPS_VC_F16), "f16");
    ck_assert_str_eq(zps_vc_name(ZPS_VC_INT8), "int8");
    ck_assert_str_eq(zps_vc_name((zps_vcodec_t)9), "unknown");
    zps_vcodec_t c = ZPS_VC_F32;
    ck_assert_int_eq(zps_vc_parse("int8", &c), 0);
    ck_assert_int_eq(c, ZPS_VC_INT8);
    ck_assert_int_eq(zps_vc_parse("f16", &c), 0);
    ck_assert_int_eq(c, ZPS_VC_F16);
    ck_assert_int_eq(zps_vc_parse("f32", &c), 0);
    ck_assert_int_eq(c, ZPS_VC_F32);
    ck_assert_int_eq(zps_vc_parse("F16", &c), ZPS_EINVAL);
    ck_assert_int_eq(zps_vc_parse("int", &c), ZPS_EINVAL);
    ck_assert_int_eq(zps_vc_parse(NULL, &c), ZPS_EINVAL);

    /* encode returns the size, for every length around the block edges */
    uint64_t st = S_SEED;
    float in[200];
    uint8_t out[1000];
    for (size_t i = 0; i < 200; i++)
        in[i] = (float)zps_rng_uniform(&st) - 0.5f;
    for (size_t n = 0; n <= 200; n++) {
        for (int c2 = 0; c2 < 3; c2++) {
            uint64_t r = st;
            size_t sz = zps_vc_size((zps_vcodec_t)c2, n);
            memset(out, 0xa5, sizeof out);
            S_REQUIRE(zps_vc_encode((zps_vcodec_t)c2, in, n, out, NULL) == sz, "size n=%zu", n);
            S_REQUIRE(zps_vc_encode((zps_vcodec_t)c2, in, n, out, &r) == sz, "size n=%zu", n);
            S_REQUIRE(out[sz] == 0xa5, "codec %d n=%zu wrote past its size", c2, n);
        }
    }
    ck_assert_uint_eq(zps_vc_encode((zps_vcodec_t)3, in, 10, out, NULL), 0);
}
END_TEST

START_TEST(test_f32_exact)
{
    uint64_t st = S_SEED;
    enum { N = 4099 };
    float *in = malloc(N * sizeof *in), *dec = malloc(N * sizeof *dec);
    uint8_t *buf = malloc(4 * N + 1);
    ck_assert_ptr_nonnull(in);
    for (size_t i = 0; i < N; i++) {
        uint32_t u;
        do
            u = (uint32_t)zps_rng_next(&st);
        while ((u & 0x7f800000u) == 0x7f800000u);
        in[i] = s_bits2f(u);
    }
    in[0] = 1.0f;
    in[1] = -0.0f;
    in[2] = FLT_TRUE_MIN;
    in[3] = -FLT_MAX;
    uint64_t r = 42;
    ck_assert_uint_eq(zps_vc_encode(ZPS_VC_F32, in, N, buf + 1, &r), 4 * N);
    ck_assert_uint_eq(r, 42); /* f32 draws nothing */
    /* little-endian on the wire */
    ck_assert_uint_eq(buf[1], 0x00);
    ck_assert_uint_eq(buf[2], 0x00);
    ck_assert_uint_eq(buf[3], 0x80);
    ck_assert_uint_eq(buf[4], 0x3f);
    ck_assert_int_eq(zps_vc_decode(ZPS_VC_F32, buf + 1, 4 * N, N, dec), 0);
    ck_assert_int_eq(memcmp(in, dec, N * sizeof *in), 0);
    ck_assert_int_eq(zps_vc_decode(ZPS_VC_F32, buf + 1, 4 * N - 1, N, dec), ZPS_EPROTO);
    ck_assert_int_eq(zps_vc_decode(ZPS_VC_F32, buf + 1, 4 * N, N - 1, dec), ZPS_EPROTO);
    ck_assert_int_eq(zps_vc_decode(ZPS_VC_F32, buf, 0, 0, dec), 0);
    free(in);
    free(dec);
    free(buf);
}
END_TEST

/* Every half pattern decodes to its exact value; every finite one encodes
 * back to itself, nearest and stochastic alike. */
START_TEST(test_f16_all_patterns)
{
    uint8_t b[2];
    for (uint32_t h = 0; h < 65536; h++) {
        b[0] = (uint8_t)h;
        b[1] = (uint8_t)(h >> 8);
        float f;
        S_REQUIRE(zps_vc_decode(ZPS_VC_F16, b, 2, 1, &f) == 0, "decode 0x%04x", h);
        double v = s_half_value((uint16_t)h);
        if (isnan(v)) {
            S_REQUIRE(isnan(f), "0x%04x decodes to %g, not NaN", h, (double)f);
            continue;
        }
        S_REQUIRE((double)f == v && !signbit(f) == !signbit(v), "0x%04x decodes to %a, not %a", h,
                  (double)f, v);
        if (isinf(v))
            continue;
        uint8_t e[2];
        uint64_t r = S_SEED + h;
        zps_vc_encode(ZPS_VC_F16, &f, 1, e, NULL);
        S_REQUIRE(s_get16(e) == h, "%a encodes to 0x%04x, not 0x%04x", (double)f, s_get16(e), h);
        for (int k = 0; k < 4; k++) {
            zps_vc_encode(ZPS_VC_F16, &f, 1, e, &r);
            S_REQUIRE(s_get16(e) == h, "%a encodes stochastically to 0x%04x, not 0x%04x",
                      (double)f, s_get16(e), h);
        }
    }
}
END_TEST

/* Random floats over the whole half range and beyond, midpoints between
 * halves and their float neighbours: nearest equals the reference, the
 * relative error is <= 2^-11 in the normal range, stochastic gives one of
 * the two neighbours. */
START_TEST(test_f16_rounding)
{
    enum { N = 60000 };
    float *in = malloc(N * sizeof *in), *dec = malloc(N * sizeof *dec);
    uint8_t *rn = malloc(2 * N), *sr = malloc(2 * N);
    ck_assert_ptr_nonnull(in);
    uint64_t st = S_SEED ^ 1;
    size_t k = 0;
    while (k < N / 3)
        in[k++] = s_rand_float(&st, -30, 17);
    while (k < 2 * N / 3) {
        /* midpoint of two adjacent positive halves, nudged by -1/0/+1 ulp */
        uint16_t h = (uint16_t)(zps_rng_next(&st) % 0x7bff);
        double mid = (s_half_value(h) + s_half_value((uint16_t)(h + 1))) / 2;
        float f = (float)mid;
        int nudge = (int)(zps_rng_next(&st) % 3) - 1;
        if (nudge)
            f = nextafterf(f, nudge > 0 ? INFINITY : 0);
        in[k++] = (zps_rng_next(&st) & 1) ? -f : f;
    }
    while (k < N)
        in[k++] = s_rand_float(&st, -14, 15);
    uint64_t r = S_SEED;
    zps_vc_encode(ZPS_VC_F16, in, N, rn, NULL);
    zps_vc_encode(ZPS_VC_F16, in, N, sr, &r);
    ck_assert_uint_ne(r, S_SEED);
    ck_assert_int_eq(zps_vc_decode(ZPS_VC_F16, rn, 2 * N, N, dec), 0);
    for (size_t i = 0; i < N; i++) {
        uint16_t want = s_ref_f2h_rn(in[i]), got = s_get16(rn + 2 * i);
        S_REQUIRE(got == want, "nearest(%a) = 0x%04x, reference 0x%04x", (double)in[i], got,
                  want);
        double a = fabs((double)in[i]);
        if (a >= 0x1p-14 && a <= 65504.0)
            S_REQUIRE(fabs((double)dec[i] - in[i]) <= a * 0x1p-11,
                      "nearest(%a) = %a: relative error over 2^-11", (double)in[i],
                      (double)dec[i]);
        uint16_t lo, hi, sign = signbit(in[i]) ? 0x8000 : 0;
        s_half_neighbours(in[i], &lo, &hi);
        uint16_t s = s_get16(sr + 2 * i);
        S_REQUIRE(s == (lo | sign) || s == (hi | sign),
                  "stochastic(%a) = 0x%04x, not a neighbour 0x%04x / 0x%04x", (double)in[i], s,
                  lo | sign, hi | sign);
    }
    free(in);
    free(dec);
    free(rn);
    free(sr);
}
END_TEST

START_TEST(test_f16_special_values)
{
    static const struct { float x; uint16_t h; } cases[] = {
        { 0.0f, 0x0000 },          { -0.0f, 0x8000 },         { 1.0f, 0x3c00 },
        { -2.0f, 0xc000 },         { 65504.0f, 0x7bff },      { 65519.0f, 0x7bff },
        { 65520.0f, 0x7bff },      { 70000.0f, 0x7bff },      { 1e9f, 0x7bff },
        { FLT_MAX, 0x7bff },       { -FLT_MAX, 0xfbff },      { -65520.0f, 0xfbff },
        { 0x1p-14f, 0x0400 },      { 0x1p-24f, 0x0001 },      { 0x1p-25f, 0x0000 },
        { 0x1.8p-25f, 0x0001 },    { 0x1.8p-24f, 0x0002 },    { 0x1.4p-24f, 0x0001 },
        { 0x1p-26f, 0x0000 },      { FLT_TRUE_MIN, 0x0000 },  { -FLT_MIN, 0x8000 },
        { 0x1.ff8p-15f, 0x03ff },  { 0x1.ffcp-15f, 0x0400 },  { 0x1.ff4p-15f, 0x03fe },
        { 0x1.ffap-15f, 0x03ff },  { 0x1.ffep-15f, 0x0400 },  { 1.0f + 0x1p-11f, 0x3c00 },
        { 1.0f + 0x1.8p-11f, 0x3c01 }, { 1.0f + 0x1.8p-10f, 0x3c02 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t e[2];
        zps_vc_encode(ZPS_VC_F16, &cases[i].x, 1, e, NULL);
        S_REQUIRE(s_get16(e) == cases[i].h, "%a -> 0x%04x, want 0x%04x", (double)cases[i].x,
                  s_get16(e), cases[i].h);
    }
    /* huge values clamp under stochastic rounding too, never infinity */
    enum { N = 4096 };
    float in[N], dec[N];
    uint8_t buf[2 * N];
    uint64_t st = S_SEED ^ 2;
    for (size_t i = 0; i < N; i++)
        in[i] = (float)(65504.0 + zps_rng_uniform(&st) * 100.0) * ((i & 1) ? -1.0f : 1.0f);
    in[0] = FLT_MAX;
    in[1] = -FLT_MAX;
    uint64_t r = S_SEED;
    zps_vc_encode(ZPS_VC_F16, in, N, buf, &r);
    ck_assert_int_eq(zps_vc_decode(ZPS_VC_F16, buf, sizeof buf, N, dec), 0);
    for (size_t i = 0; i < N; i++)
        S_REQUIRE(fabsf(dec[i]) == 65504.0f && !signbit(dec[i]) == !signbit(in[i]),
                  "%a -> %a, want +-65504", (double)in[i], (double)dec[i]);
}
END_TEST

/* Mean of N stochastic f16 encodings of x, in double. */
static double s_f16_mean(float x, size_t n, uint64_t seed, int nearest)
{
    float *in = malloc(n * sizeof *in), *dec = malloc(n * sizeof *dec);
    uint8_t *buf = malloc(2 * n);
    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_nonnull(dec);
    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < n; i++)
        in[i] = x;
    uint64_t r = seed;
    zps_vc_encode(ZPS_VC_F16, in, n, buf, nearest ? NULL : &r);
    ck_assert_int_eq(zps_vc_decode(ZPS_VC_F16, buf, 2 * n, n, dec), 0);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += dec[i];
    free(in);
    free(dec);
    free(buf);
    return sum / (double)n;
}

START_TEST(test_f16_unbiased)
{
    const size_t n = 1u << 18;
    const float xs[] = {
        1.0f + 0x1p-10f / 3,    /* 1/3 of an ulp above 1 */
        -3000.7f,               /* ulp 2 */
        0x1.26p-23f,            /* subnormal range: 2.296875 quanta (scalar pass) */
        0x1.3579p-16f,          /* subnormal range above 2^-17 (vector lanes) */
        -0x1p-30f,              /* 1/64 of the smallest subnormal */
        0.1f, 65000.3f, 7.77e-5f,
    };
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        uint16_t lo, hi;
        s_half_neighbours(xs[i], &lo, &hi);
        double q = s_half_value(hi) - s_half_value(lo); /* quantum here */
        double p = (fabs((double)xs[i]) - s_half_value(lo)) / q;
        double bound = 8 * q * sqrt(p * (1 - p) / (double)n) + fabs((double)xs[i]) * 1e-12;
        double mean = s_f16_mean(xs[i], n, S_SEED + i, 0);
        S_REQUIRE(fabs(mean - xs[i]) <= bound, "mean of stochastic f16(%a) = %a, off by %g > %g",
                  (double)xs[i], mean, fabs(mean - xs[i]), bound);
        double rn = s_f16_mean(xs[i], 16, 0, 1);
        S_REQUIRE(fabs(rn - xs[i]) > 3 * bound,
                  "test value %a does not discriminate a biased encoder", (double)xs[i]);
    }
}
END_TEST

/* int8 blocks: scales, error bounds (nearest <= s/2, stochastic < s), zero
 * blocks, block maximum exact, subnormal and huge scales, odd lengths. */
START_TEST(test_int8_blocks)
{
    enum { N = 64 * 40 + 17 };
    float *in = malloc(N * sizeof *in), *drn = malloc(N * sizeof *in), *dsr = malloc(N * sizeof *in);
    size_t sz = zps_vc_size(ZPS_VC_INT8, N);
    uint8_t *rn = malloc(sz), *sr = malloc(sz);
    ck_assert_ptr_nonnull(in);
    uint64_t st = S_SEED ^ 3;
    for (size_t b = 0; b * 64 < N; b++) {
        int emax = (int)(zps_rng_next(&st) % 200) - 130;
        if (b == 3) emax = 127;                      /* near FLT_MAX */
        if (b == 4) emax = -140;                     /* subnormal scale */
        for (size_t j = b * 64; j < N && j < b * 64 + 64; j++) {
            in[j] = s_rand_float(&st, emax - 8, emax);
            if (b == 5) in[j] = 0.0f;                /* all-zero block */
            if (b == 6) in[j] = j == b * 64 + 9 ? -3.0f : 0.0f;
            if (b == 7) in[j] = 1e-3f * (float)(int)(j % 5) - 2e-3f;
            if (b == 3 && j == b * 64) in[j] = FLT_MAX;
        }
    }
    uint64_t r = S_SEED;
    ck_assert_uint_eq(zps_vc_encode(ZPS_VC_INT8, in, N, rn, NULL), sz);
    ck_assert_uint_eq(zps_vc_encode(ZPS_VC_INT8, in, N, sr, &r), sz);
    ck_assert_int_eq(zps_vc_decode(ZPS_VC_INT8, rn, sz, N, drn), 0);
    ck_assert_int_eq(zps_vc_decode(ZPS_VC_INT8, sr, sz, N, dsr), 0);
    const uint8_t *p = rn;
    for (size_t off = 0; off < N; off += 64) {
        size_t cnt = N - off < 64 ? N - off : 64;
        float mx = 0;
        for (size_t j = 0; j < cnt; j++)
            mx = fmaxf(mx, fabsf(in[off + j]));
        float s = s_get_f32(p), want = mx / 127.0f;
        if (want < FLT_MIN && (double)want * 127 < mx)
            want = nextafterf(want, INFINITY); /* subnormal scale rounds up */
        if ((double)want * 127 > FLT_MAX)
            want = nextafterf(want, 0); /* 127 * s stays finite */
        S_REQUIRE(s == want, "block %zu scale %a, want %a", off / 64, (double)s, (double)want);
        S_REQUIRE(s_get_f32(sr + (p - rn)) == s, "stochastic block %zu has another scale",
                  off / 64);
        double slack = (double)s * 1e-5 + FLT_TRUE_MIN;
        for (size_t j = 0; j < cnt; j++) {
            double x = in[off + j];
            int8_t q = (int8_t)p[4 + j];
            S_REQUIRE(q != -128, "q = -128");
            S_REQUIRE(fabs(drn[off + j] - x) <= 0.5 * s + slack,
                      "nearest: %a -> %a, scale %a", x, (double)drn[off + j], (double)s);
            S_REQUIRE(fabs(dsr[off + j] - x) < (double)s + slack,
                      "stochastic: %a -> %a, scale %a", x, (double)dsr[off + j], (double)s);
            if (fabs(x) == mx && mx > 0 && s >= FLT_MIN)
                S_REQUIRE(q == (x > 0 ? 127 : -127), "block maximum %a -> q %d", x, q);
            if (x == 0)
                S_REQUIRE(drn[off + j] == 0 && dsr[off + j] == 0, "zero not kept");
        }
        p += 4 + cnt;
    }
    ck_assert_ptr_eq(p, rn + sz);
    free(in);
    free(drn);
    free(dsr);
    free(rn);
    free(sr);
}
END_TEST

/* The mean of N stochastic int8 encodings of a block is the block. */
START_TEST(test_int8_unbiased)
{
    enum { NB = 1 << 14 };
    float pat[64];
    pat[0] = 0.37f; /* the maximum: scale 0.37 / 127 */
    uint64_t st = S_SEED ^ 4;
    for (int j = 1; j < 64; j++)
        pat[j] = (float)((zps_rng_uniform(&st) * 2 - 1) * 0.37);
    pat[1] = 0.37f * 0.3f / 127.0f;   /* 0.3 quanta */
    pat[2] = -0.37f * 90.6f / 127.0f; /* -90.6 quanta */
    size_t n = (size_t)NB * 64, sz = zps_vc_size(ZPS_VC_INT8, n);
    float *in = malloc(n * sizeof *in), *dec = malloc(n * sizeof *dec);
    uint8_t *buf = malloc(sz);
    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_nonnull(dec);
    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < n; i++)
        in[i] = pat[i % 64];
    uint64_t r = S_SEED ^ 5;
    zps_vc_encode(ZPS_VC_INT8, in, n, buf, &r);
    ck_assert_int_eq(zps_vc_decode(ZPS_VC_INT8, buf, sz, n, dec), 0);
    double s = 0.37f / 127.0f;
    double bound = 8 * s * 0.5 / sqrt((double)NB) + s * 1e-5;
    int discriminating = 0;
    for (int j = 0; j < 64; j++) {
        double sum = 0;
        for (size_t b = 0; b < NB; b++)
            sum += dec[b * 64 + (size_t)j];
        double mean = sum / NB;
        S_REQUIRE(fabs(mean - pat[j]) <= bound, "position %d: mean %a of %a, off by %g > %g", j,
                  mean, (double)pat[j], fabs(mean - pat[j]), bound);
        double y = pat[j] / s, dist = fabs(y - nearbyint(y));
        discriminating += dist * s > 3 * bound;
    }
    ck_assert_int_ge(discriminating, 40); /* nearest rounding would fail these */
    free(in);
    free(dec);
    free(buf);
}
END_TEST

START_TEST(test_decode_rejects)
{
    enum { N = 150 };
    float in[N], out[N];
    for (int i = 0; i < N; i++)
        in[i] = (float)i - 70.5f;
    size_t sz = zps_vc_size(ZPS_VC_INT8, N);
    uint8_t buf[sizeof in + 16];
    zps_vc_encode(ZPS_VC_INT8, in, N, buf, NULL);
    ck_assert_int_eq(zps_vc_decode(ZPS_VC_INT8, buf, sz, N, out), 0);
    for (zps_vcodec_t c = ZPS_VC_F32; c <= ZPS_VC_INT8; c++) {
        size_t s = zps_vc_size(c, N);
        ck_assert_int_eq(zps_vc_decode(c, buf, s - 1, N, out), ZPS_EPROTO);
        ck_assert_int_eq(zps_vc_decode(c, buf, s + 1, N, out), ZPS_EPROTO);
        ck_assert_int_eq(zps_vc_decode(c, buf, s, N + 1, out), ZPS_EPROTO);
        ck_assert_int_eq(zps_vc_decode(c, buf, 0, N, out), ZPS_EPROTO);
    }
    ck_assert_int_eq(zps_vc_decode(ZPS_VC_INT8, buf, 5, 1, out), 0);
    ck_assert_int_eq(zps_vc_decode(ZPS_VC_INT8, buf, 4, 1, out), ZPS_EPROTO);
    ck_assert_int_eq(zps_vc_decode(ZPS_VC_INT8, buf, 4, 0, out), ZPS_EPROTO);
    ck_assert_int_eq(zps_vc_decode((zps_vcodec_t)3, buf, 0, 0, out), ZPS_EPROTO);
    ck_assert_int_eq(zps_vc_decode((zps_vcodec_t)-1, buf, 4, 1, out), ZPS_EPROTO);
    /* bad scale in the second and in the last block */
    const float bad[] = { -1.0f, -0.0f, -FLT_TRUE_MIN, NAN, -NAN, INFINITY, -INFINITY };
    const size_t where[] = { 68, 136 };
    for (size_t w = 0; w < 2; w++) {
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            uint8_t copy[sizeof buf];
            memcpy(copy, buf, sz);
            s_put_f32(copy + where[w], bad[k]);
            S_REQUIRE(zps_vc_decode(ZPS_VC_INT8, copy, sz, N, out) == ZPS_EPROTO,
                      "scale %a at %zu accepted", (double)bad[k], where[w]);
        }
    }
    /* a hand-made valid block: scale 0.5, q = -127, 0, 127 */
    uint8_t hand[7] = { 0, 0, 0, 0x3f, 0x81, 0x00, 0x7f };
    ck_assert_int_eq(zps_vc_decode(ZPS_VC_INT8, hand, 7, 3, out), 0);
    ck_assert_float_eq(out[0], -63.5f);
    ck_assert_float_eq(out[1], 0.0f);
    ck_assert_float_eq(out[2], 63.5f);
}
END_TEST

/* Unaligned input buffers decode, unaligned output buffers receive the same
 * bytes; same seed gives same bytes; the seed advances. */
START_TEST(test_unaligned_and_determinism)
{
    enum { N = 333 };
    float in[N], a[N], b[N];
    uint64_t st = S_SEED ^ 6;
    for (int i = 0; i < N; i++)
        in[i] = s_rand_float(&st, -20, 10);
    for (zps_vcodec_t c = ZPS_VC_F32; c <= ZPS_VC_INT8; c++) {
        size_t sz = zps_vc_size(c, N);
        uint8_t *base = malloc(sz + 8), *ref = malloc(sz);
        ck_assert_ptr_nonnull(base);
        ck_assert_ptr_nonnull(ref);
        for (int stoch = 0; stoch < 2; stoch++) {
            uint64_t r0 = S_SEED, r1 = S_SEED;
            zps_vc_encode(c, in, N, ref, stoch ? &r0 : NULL);
            ck_assert_int_eq(zps_vc_decode(c, ref, sz, N, a), 0);
            for (size_t off = 1; off < 8; off++) {
                r1 = S_SEED;
                ck_assert_uint_eq(zps_vc_encode(c, in, N, base + off, stoch ? &r1 : NULL), sz);
                ck_assert_int_eq(memcmp(base + off, ref, sz), 0);
                ck_assert_uint_eq(r1, r0);
                ck_assert_int_eq(zps_vc_decode(c, base + off, sz, N, b), 0);
                ck_assert_int_eq(memcmp(a, b, sizeof a), 0);
            }
            if (stoch && c != ZPS_VC_F32) {
                ck_assert_uint_ne(r0, S_SEED);
                /* the next call continues the stream: other bytes */
                zps_vc_encode(c, in, N, base, &r0);
                ck_assert_int_ne(memcmp(base, ref, sz), 0);
            }
        }
        free(base);
        free(ref);
    }
}
END_TEST

Suite *suite_vcodec(void)
{
    Suite *s = suite_create("vcodec");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_sizes_and_names);
    tcase_add_test(tc, test_f32_exact);
    tcase_add_test(tc, test_f16_all_patterns);
    tcase_add_test(tc, test_f16_rounding);
    tcase_add_test(tc, test_f16_special_values);
    tcase_add_test(tc, test_f16_unbiased);
    tcase_add_test(tc, test_int8_blocks);
    tcase_add_test(tc, test_int8_unbiased);
    tcase_add_test(tc, test_decode_rejects);
    tcase_add_test(tc, test_unaligned_and_determinism);
    suite_add_tcase(s, tc);
    return s;
}
