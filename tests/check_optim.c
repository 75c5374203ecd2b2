/* check_optim: optimizer updates against hand-computed references.
 *
 * The expected numbers were computed in double precision from the update
 * rules in zps_optim.h, starting from the float32-rounded inputs (0.1f etc.),
 * and are compared within 1e-6 relative (exact zeros exactly).  The first
 * step of each optimizer is also worked by hand in a comment.  Rows are
 * malloc'd at exactly zps_optim_row_floats() floats so ASan catches any
 * write past the layout.  Also: initial values are a pure function of
 * (seed, key, column); FTRL's random init reads back as the same w0;
 * validation and the canonical description. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_suites.h"
#include "zps_optim.h"
#include "zps_err.h"

/* Check records every passing ck_assert (a write to its result pipe), so
 * loops over many items test plainly and only report a failure. */
#define S_REQUIRE(cond, ...)          \
    do {                              \
        if (!(cond))                  \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)

static int s_near(double got, double want, double rel)
{
    if (want == 0)
        return got == 0;
    return fabs(got - want) <= rel * fabs(want);
}

#define S_NEAR(got, want)                                                     \
    ck_assert_msg(s_near((got), (want), 1e-6), "%s = %.9g, want %.9g", #got, \
                  (double)(got), (double)(want))

static float *s_row(const zps_optim_conf_t *c)
{
    float *row = malloc(zps_optim_row_floats(c) * sizeof *row);
    ck_assert_ptr_nonnull(row);
    return row;
}

/* ---- kinds, defaults, layouts -------------------------------------------- */

START_TEST(test_kinds_and_defaults)
{
    const char *names[] = {"sgd", "adagrad", "ftrl", "adam", "norm"};
    for (int k = 0; k < 5; k++) {
        zps_opt_kind_t kind = ZPS_OPT_SGD;
        ck_assert_int_eq(zps_optim_parse_kind(names[k], &kind), 0);
        ck_assert_int_eq(kind, k);
        ck_assert_str_eq(zps_optim_kind_name(kind), names[k]);

        zps_optim_conf_t c;
        zps_optim_defaults(&c, kind);
        ck_assert_int_eq(c.kind, kind);
        ck_assert_uint_eq(c.dim, 1);
        ck_assert(c.lr == 0.1f && c.beta == 1.0f && c.l1 == 0 && c.l2 == 0);
        ck_assert(c.eps == (kind == ZPS_OPT_NORM ? 1.0f : kind == ZPS_OPT_ADAGRAD ? 1e-7f : 1e-8f));
        ck_assert(c.beta1 == 0.9f && c.beta2 == 0.999f);
        ck_assert(c.init_scale == 0 && c.init_skip == 0 && c.init_seed == 0);
        char err[128] = "x";
        ck_assert_int_eq(zps_optim_validate(&c, err, sizeof err), 0);
    }
    zps_opt_kind_t kind = ZPS_OPT_ADAM;
    ck_assert_int_eq(zps_optim_parse_kind("SGD", &kind), ZPS_EINVAL);
    ck_assert_int_eq(zps_optim_parse_kind("", &kind), ZPS_EINVAL);
    ck_assert_int_eq(zps_optim_parse_kind("adamw", &kind), ZPS_EINVAL);
    ck_assert_int_eq(zps_optim_parse_kind(NULL, &kind), ZPS_EINVAL);
    ck_assert_int_eq(kind, ZPS_OPT_ADAM); /* untouched on error */
    ck_assert_str_eq(zps_optim_kind_name((zps_opt_kind_t)42), "unknown");
}
END_TEST

START_TEST(test_row_floats)
{
    zps_optim_conf_t c;
    const uint32_t want[] = {5, 10, 10, 16, 11};
    for (int k = 0; k < 5; k++) {
        zps_optim_defaults(&c, (zps_opt_kind_t)k);
        c.dim = 5;
        ck_assert_uint_eq(zps_optim_row_floats(&c), want[k]);
        /* pushes: dim gradients; norm: [g | q | max |x|] */
        ck_assert_uint_eq(zps_optim_push_floats(&c), k == ZPS_OPT_NORM ? 11 : 5);
    }
}
END_TEST

/* ---- reference updates --------------------------------------------------- */

/* SGD, lr 0.1, l1 0.05 (truncation lr*l1 = 0.005), l2 0.2.
 * Step 1, column 0: g' = 0.5 + 0.2*0.3 = 0.56; w = 0.3 - 0.056 = 0.244;
 * truncate: 0.244 - 0.005 = 0.239.  Column 2: 0.01 - 0.1*(0.06 + 0.002)
 * = 0.0038 < 0.005, so it is truncated to exactly 0. */
START_TEST(test_sgd_reference)
{
    zps_optim_conf_t c;
    zps_optim_defaults(&c, ZPS_OPT_SGD);
    c.dim = 3;
    c.lr = 0.1f;
    c.l1 = 0.05f;
    c.l2 = 0.2f;
    float *row = s_row(&c);
    row[0] = 0.3f, row[1] = -0.2f, row[2] = 0.01f;
    const float grads[3][3] = {{0.5f, -0.02f, 0.06f}, {0.3f, -1.0f, 0.25f},
                               {-0.4f, 0.5f, 0.1f}};
    const double want[3][3] = {
        {0.23900001060962675, -0.18900000266730785, 0},
        {0.19922000846683974, -0.080220000862181187, -0.020000000223517417},
        {0.23023560922183986, -0.12361560139316916, -0.024600000356137752},
    };
    for (int s = 0; s < 3; s++) {
        zps_optim_apply(&c, row, grads[s]);
        float w[3];
        zps_optim_weights(&c, row, w);
        for (int j = 0; j < 3; j++) {
            S_NEAR(row[j], want[s][j]);
            ck_assert(w[j] == row[j]);
        }
    }
    free(row);
}
END_TEST

/* AdaGrad, lr 0.5, eps 1e-3, l1 0.01, l2 0.1, w = {0.2, -0.1}, n = 0.
 * Step 1, column 0: g' = 0.4 + 0.02 = 0.42; n = 0.1764; step =
 * 0.5/(0.42 + 0.001) = 1.18765; w = 0.2 - 0.49881 = -0.29881; truncate by
 * step*l1 = 0.0118765: -0.286936. */
START_TEST(test_adagrad_reference)
{
    zps_optim_conf_t c;
    zps_optim_defaults(&c, ZPS_OPT_ADAGRAD);
    c.dim = 2;
    c.lr = 0.5f;
    c.eps = 1e-3f;
    c.l1 = 0.01f;
    c.l2 = 0.1f;
    float *row = s_row(&c);
    row[0] = 0.2f, row[1] = -0.1f, row[2] = 0, row[3] = 0;
    const float grads[3][2] = {{0.4f, -0.05f}, {-0.2f, 0.2f}, {0.1f, 0.01f}};
    const double want_w[3][2] = {
        {-0.28693586441712082, 0.30983606713842238},
        {-0.03789548707926374, -0.15122041509277118},
        {-0.12607975361865525, -0.11967727589481014},
    };
    const double want_n[3][2] = {
        {0.17640000550746923, 0.0036000001251697555},
        {0.22870076354572608, 0.056953428285760728},
        {0.23795721475941428, 0.056979663599581579},
    };
    for (int s = 0; s < 3; s++) {
        zps_optim_apply(&c, row, grads[s]);
        for (int j = 0; j < 2; j++) {
            S_NEAR(row[j], want_w[s][j]);
            S_NEAR(row[2 + j], want_n[s][j]);
        }
    }
    free(row);
}
END_TEST

/* FTRL-Proximal, alpha 0.1, beta 1, l1 0.5, l2 0.3, from z = n = 0.
 * Step 1, column 0: w = 0 (z = 0); sigma = (sqrt(4) - 0)/0.1 = 20;
 * z = 0 + 2 - 20*0 = 2; n = 4; weight = -(2 - 0.5)/((1 + 2)/0.1 + 0.3)
 * = -1.5/30.3 = -0.0495049505.  Column 1 keeps |z| <= l1 throughout, so
 * its weight is exactly 0. */
START_TEST(test_ftrl_reference)
{
    zps_optim_conf_t c;
    zps_optim_defaults(&c, ZPS_OPT_FTRL);
    c.dim = 3;
    c.lr = 0.1f;
    c.beta = 1.0f;
    c.l1 = 0.5f;
    c.l2 = 0.3f;
    float *row = s_row(&c);
    zps_optim_init_row(&c, 12345, row);
    for (int j = 0; j < 6; j++)
        ck_assert(row[j] == 0);
    const float grads[3][3] = {{2.0f, 0.1f, -3.0f}, {1.5f, -0.2f, 0.5f},
                               {-0.5f, 0.3f, 1.0f}};
    const double want_z[3][3] = {
        {2, 0.10000000149011612, -3},
        {3.7475247523413451, -0.10000000149011612, -2.5256707600076171},
        {3.2930726731923436, 0.20000001043081284, -1.6053669736811491},
    };
    const double want_n[3][3] = {
        {4, 0.010000000298023226, 9},
        {6.25, 0.05000000149011613, 9.25},
        {6.5, 0.14000000864267365, 10.25},
    };
    const double want_w[3][3] = {
        {-0.049504951205950241, 0, 0.062034740353252467},
        {-0.091997869666438303, 0, 0.049753895728621871},
        {-0.078029476193777036, 0, 0.026121960607292785},
    };
    for (int s = 0; s < 3; s++) {
        zps_optim_apply(&c, row, grads[s]);
        float w[3];
        zps_optim_weights(&c, row, w);
        for (int j = 0; j < 3; j++) {
            S_NEAR(row[j], want_z[s][j]);
            S_NEAR(row[3 + j], want_n[s][j]);
            S_NEAR(w[j], want_w[s][j]);
        }
    }
    free(row);
}
END_TEST

/* ---- ftrl with accum uf16 ------------------------------------------------ */

/* uf16 code of coordinate j of a row, and its value (the format of
 * zps_optim.h, decoded here independently: 6 exponent bits of bias 31, 10
 * mantissa bits, subnormals below 2^-30) */
static uint16_t s_code(const float *row, uint32_t d, uint32_t j)
{
    uint16_t b;
    memcpy(&b, (const char *)(row + d) + 2 * j, 2);
    return b;
}

static double s_uf16(uint16_t v)
{
    int e = v >> 10, m = v & 1023;
    return e ? ldexp(1.0 + m / 1024.0, e - 31) : ldexp(m, -40);
}

static float s_n16(const float *row, uint32_t d, uint32_t j)
{
    return (float)s_uf16(s_code(row, d, j));
}

/* Layout: z floats, then n as uf16; dim 1 leaves 2 spare bytes (where a
 * shard keeps its stamp) that no update touches; uf16 is ftrl's only. */
START_TEST(test_uf16_layout)
{
    zps_optim_conf_t c;
    zps_optim_defaults(&c, ZPS_OPT_FTRL);
    c.accum = ZPS_ACCUM_UF16;
    const uint32_t want_rf[5] = {0, 2, 3, 5, 6}, want_spare[5] = {0, 2, 0, 2, 0};
    for (uint32_t d = 1; d <= 4; d++) {
        c.dim = d;
        ck_assert_uint_eq(zps_optim_row_floats(&c), want_rf[d]);
        ck_assert_uint_eq(zps_optim_row_spare(&c), want_spare[d]);
        ck_assert_int_eq(zps_optim_validate(&c, NULL, 0), 0);
    }
    c.dim = 1;
    float *row = s_row(&c);
    zps_optim_init_row(&c, 7, row);
    uint16_t mark = 0xabcd, got;
    memcpy((char *)(row + 2) - 2, &mark, 2);
    float g = 0.5f;
    zps_optim_apply(&c, row, &g);
    ck_assert_uint_eq(s_code(row, 1, 0), (31 - 2) << 10); /* 0.25 = 2^-2 exactly */
    for (int i = 0; i < 100; i++)
        zps_optim_apply(&c, row, &g);
    memcpy(&got, (char *)(row + 2) - 2, 2);
    ck_assert_uint_eq(got, mark);
    ck_assert(zps_optim_row_finite(&c, row));
    free(row);
    zps_optim_conf_t bad;
    zps_optim_defaults(&bad, ZPS_OPT_ADAGRAD);
    bad.accum = ZPS_ACCUM_UF16;
    ck_assert_int_eq(zps_optim_validate(&bad, NULL, 0), ZPS_EINVAL);
}
END_TEST

/* ratio of means over the coordinates of n (uf16 row a, float row r) */
static double s_n_ratio(const float *a, const float *r, uint32_t d)
{
    double sa = 0, sr = 0;
    for (uint32_t j = 0; j < d; j++) {
        sa += s_n16(a, d, j);
        sr += r[d + j];
    }
    return sa / sr;
}

/* Stochastic rounding is unbiased.  64 coordinates, each 20000 steps of a
 * gradient near 0.01 (g^2 about 1e-4, far below the spacing once n is
 * past 0.2): the sum of n over them is the float sum within 2% (one
 * coordinate's n has a standard deviation of at most 3%, the sum of 64
 * independent ones under 0.4%), where rounding to nearest would stop each
 * n near 0.2.  At tiny n (subnormals, g^2 about 1e-14) and across the
 * whole range too.  The same pushes give the same bytes.  Weights follow
 * the float ftrl within 3% on average over a varied sequence. */
START_TEST(test_uf16_unbiased)
{
    enum { D = 64 };
    zps_optim_conf_t c, f;
    zps_optim_defaults(&c, ZPS_OPT_FTRL);
    c.accum = ZPS_ACCUM_UF16;
    c.dim = D;
    f = c;
    f.accum = ZPS_ACCUM_F32;
    const double scale[3] = {0.01, 1e-7, 1.0};
    for (int sc = 0; sc < 3; sc++) {
        float *a = s_row(&c), *b = s_row(&c), *r = s_row(&f);
        zps_optim_init_row(&c, 1, a);
        zps_optim_init_row(&c, 1, b);
        zps_optim_init_row(&f, 1, r);
        float g[D];
        for (int j = 0; j < D; j++)
            g[j] = (float)(scale[sc] * (1.0 + j / 64.0));
        for (int i = 0; i < 20000; i++) {
            zps_optim_apply(&c, a, g);
            zps_optim_apply(&c, b, g);
            zps_optim_apply(&f, r, g);
        }
        ck_assert(memcmp(a, b, zps_optim_row_floats(&c) * sizeof *a) == 0);
        double q = s_n_ratio(a, r, D);
        ck_assert_msg(fabs(q - 1) < 0.02, "scale %g: uf16 n / float n = %.4f", scale[sc], q);
        free(a);
        free(b);
        free(r);
    }
    /* a varied sequence: noise around a bias per coordinate */
    float *a = s_row(&c), *r = s_row(&f);
    zps_optim_init_row(&c, 1, a);
    zps_optim_init_row(&f, 1, r);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 5000; i++) {
        float gs[D];
        for (int j = 0; j < D; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            gs[j] = (float)((double)(x >> 11) / 9007199254740992.0 - 0.5) +
                    0.02f * (float)(j - D / 2);
        }
        zps_optim_apply(&c, a, gs);
        zps_optim_apply(&f, r, gs);
    }
    float w16[D], w32[D];
    zps_optim_weights(&c, a, w16);
    zps_optim_weights(&f, r, w32);
    double dev = 0, mag = 0;
    for (int j = 0; j < D; j++) {
        dev += fabs(w16[j] - w32[j]);
        mag += fabs(w32[j]);
    }
    ck_assert_msg(dev <= 0.03 * mag, "weights: mean |uf16 - float| %.4g, mean |float| %.4g",
                  dev / D, mag / D);
    double q = s_n_ratio(a, r, D);
    ck_assert_msg(fabs(q - 1) < 0.02, "varied: uf16 n / float n = %.4f", q);
    free(a);
    free(r);
}
END_TEST

/* Every uf16 code is a finite n (no inf or NaN codes): the top code gives
 * a finite weight; an n over the top stays at the top; a non-finite
 * gradient is still refused (through z). */
START_TEST(test_uf16_edges)
{
    zps_optim_conf_t c;
    zps_optim_defaults(&c, ZPS_OPT_FTRL);
    c.accum = ZPS_ACCUM_UF16;
    c.dim = 2;
    float *row = s_row(&c);
    zps_optim_init_row(&c, 3, row);
    uint16_t top = 0xffff;
    memcpy((char *)(row + 2) + 2, &top, 2);
    row[1] = 5.0f;
    ck_assert(zps_optim_row_finite(&c, row));
    ck_assert(s_near(s_n16(row, 2, 1), ldexp(2.0 - 1.0 / 1024, 32), 1e-9));
    float g[2] = {0, 1e5f}; /* g^2 = 1e10: over the top */
    zps_optim_apply(&c, row, g);
    ck_assert_uint_eq(s_code(row, 2, 1), 0xffff);
    ck_assert(zps_optim_row_finite(&c, row));
    zps_optim_init_row(&c, 3, row);
    float h[2] = {INFINITY, 1};
    float out[3];
    ck_assert(!zps_optim_try_apply(&c, row, out, h));
    h[0] = NAN;
    ck_assert(!zps_optim_try_apply(&c, row, out, h));
    free(row);
}
END_TEST

/* The lazy weight by itself, on hand-set (z, n). */
START_TEST(test_ftrl_lazy_weights)
{
    zps_optim_conf_t c;
    zps_optim_defaults(&c, ZPS_OPT_FTRL);
    c.dim = 3;
    c.lr = 0.5f;
    c.beta = 1.0f;
    c.l1 = 1.0f;
    c.l2 = 2.0f;
    float row[6] = {1.0f, -1.0f, -3.0f, 4.0f, 9.0f, 9.0f};
    float w[3];
    zps_optim_weights(&c, row, w);
    ck_assert(w[0] == 0.0f && !signbit(w[0])); /* |z| == l1 */
    ck_assert(w[1] == 0.0f && !signbit(w[1]));
    /* -(-3 + 1) / ((1 + 3)/0.5 + 2) = 2/10 */
    S_NEAR(w[2], 0.2);
    row[0] = 5.0f; /* -(5 - 1)/((1 + 2)/0.5 + 2) = -0.5 */
    row[1] = -1.0000001f; /* just past l1: tiny positive weight */
    zps_optim_weights(&c, row, w);
    S_NEAR(w[0], -0.5);
    ck_assert(w[1] > 0 && w[1] < 1e-7f);
}
END_TEST

/* Adam, lr 0.01, beta1 0.9, beta2 0.999, eps 1e-8, l2 0.1, w = {0.5, -0.25}.
 * Step 1, column 0: g' = 0.2 + 0.05 = 0.25; m = 0.025; v = 6.25e-5;
 * mhat = 0.25, vhat = 0.0625; w = 0.5 - 0.01*0.25/(0.25 + 1e-8) = 0.49. */
START_TEST(test_adam_reference)
{
    zps_optim_conf_t c;
    zps_optim_defaults(&c, ZPS_OPT_ADAM);
    c.dim = 2;
    c.lr = 0.01f;
    c.l2 = 0.1f;
    float *row = s_row(&c);
    memset(row, 0, 7 * sizeof *row);
    row[0] = 0.5f, row[1] = -0.25f;
    const float grads[3][2] = {{0.2f, -0.1f}, {0.05f, 0.3f}, {-0.4f, 0.0f}};
    const double want_w[3][2] = {
        {0.4900000006235174, -0.24000000102351732},
        {0.48102956754704207, -0.24401590947647037},
        {0.48189961844657092, -0.24659706977246026},
    };
    const double want_m[3][2] = {
        {0.025000006332993596, -0.012500003166496798},
        {0.032400007617748278, 0.01635000517462417},
        {-0.0060297071552793888, 0.012274844554442072},
    };
    const double want_v[3][2] = {
        {6.2499197199916714e-05, 1.5624799299979179e-05},
        {7.2237572927816795e-05, 9.17842002924262e-05},
        {0.00019599527473831133, 9.2287847266317021e-05},
    };
    float first[7];
    for (int s = 0; s < 3; s++) {
        zps_optim_apply(&c, row, grads[s]);
        for (int j = 0; j < 2; j++) {
            S_NEAR(row[j], want_w[s][j]);
            S_NEAR(row[2 + j], want_m[s][j]);
            S_NEAR(row[4 + j], want_v[s][j]);
        }
        ck_assert(row[6] == (float)(s + 1));
        if (s == 0)
            memcpy(first, row, sizeof first);
    }

    /* Lazy: a second row starts its own count at t = 1, so its first step
     * is bitwise the first step above, not a step at t = 4. */
    float *row2 = s_row(&c);
    memset(row2, 0, 7 * sizeof *row2);
    row2[0] = 0.5f, row2[1] = -0.25f;
    zps_optim_apply(&c, row2, grads[0]);
    ck_assert_mem_eq(row2, first, sizeof first);
    free(row);
    free(row2);
}
END_TEST

/* With no L1/L2 a zero gradient leaves every optimizer's weights exactly as
 * they are (in particular no 0/0 from zero state). */
START_TEST(test_zero_gradient)
{
    for (int k = 0; k < 5; k++) {
        zps_optim_conf_t c;
        zps_optim_defaults(&c, (zps_opt_kind_t)k);
        c.dim = 4;
        c.init_scale = 0.1f;
        float *row = s_row(&c);
        float w0[4], w1[4];
        const float zero[9] = {0}; /* norm: q = 0, x = 0 too */
        zps_optim_init_row(&c, 77, row);
        if (k == ZPS_OPT_NORM) /* its initial values show after the first push */
            zps_optim_apply(&c, row, zero);
        zps_optim_weights(&c, row, w0);
        zps_optim_apply(&c, row, zero);
        zps_optim_apply(&c, row, zero);
        zps_optim_weights(&c, row, w1);
        for (int j = 0; j < 4; j++) /* adam: m = v = 0, step 0/(0 + eps) */
            ck_assert(w1[j] == w0[j]);
        free(row);
    }
}
END_TEST

/* Normalized adaptive gradient (norm), lr 0.5, eps 1e-3, l1 0.01, l2 0.1,
 * row w = {0.2, -0.1}, G = 0, s = 0 (never pushed); pushes [g0, g1, q0,
 * q1, x] with q = g^2 (one row per batch) and x = 2, 1, 4; G adds q +
 * (l2 w)^2.  Step 1, column 0: first push, so w = 0.2/2 = 0.1 and s = 2;
 * g' = 0.4 + 0.1*0.1 = 0.41; G = 0.16 + 0.01^2 = 0.1601; step = 0.5/(2
 * (0.400125 + 0.001*2)) = 0.621696; w = 0.1 - 0.621696*0.41 = -0.154895;
 * truncate by step*l1 = 0.006217: -0.148679.  (Expected values from a
 * double-precision transcription of the rule in Python.)
 * Step 2: x = 1 < s, s stays 2.  Step 3: x = 4 > s = 2, so first w *= 2/4
 * and s = 4, then the update with lr/s = 0.125. */
START_TEST(test_norm_reference)
{
    zps_optim_conf_t c;
    zps_optim_defaults(&c, ZPS_OPT_NORM);
    c.dim = 2;
    c.lr = 0.5f;
    c.eps = 1e-3f;
    c.l1 = 0.01f;
    c.l2 = 0.1f;
    float *row = s_row(&c);
    row[0] = 0.2f, row[1] = -0.1f, row[2] = 0, row[3] = 0, row[4] = 0;
    float w0[2] = {1, 1};
    zps_optim_weights(&c, row, w0); /* never pushed: reads as 0 */
    ck_assert(w0[0] == 0 && w0[1] == 0);
    const float grads[3][5] = {{0.4f, -0.05f, 0.16f, 0.0025f, 2},
                               {-0.2f, 0.2f, 0.04f, 0.04f, 1},
                               {-0.3f, 0.01f, 0.09f, 0.0001f, 4}};
    const double want_w[3][2] = {
        {-0.1486789054535099, 0.16531356750815163},
        {-0.02363347893984638, -0.08187843594506308},
        {0.055236780760949095, -0.03851574046995203},
    };
    const double want_g[3][2] = {
        {0.1601, 0.002525},
        {0.20032105416926854, 0.04279828575602272},
        {0.29032245052258554, 0.04291504595170475},
    };
    const float want_s[3] = {2, 2, 4};
    for (int k = 0; k < 3; k++) {
        zps_optim_apply(&c, row, grads[k]);
        float w[2];
        zps_optim_weights(&c, row, w);
        for (int j = 0; j < 2; j++) { /* float against double: 1e-5 relative */
            ck_assert_msg(s_near(row[j], want_w[k][j], 1e-5), "step %d w[%d] = %.9g, want %.9g",
                          k, j, (double)row[j], want_w[k][j]);
            S_NEAR(row[2 + j], want_g[k][j]);
            ck_assert(w[j] == row[j]);
        }
        ck_assert(row[4] == want_s[k]);
    }
    free(row);
}
END_TEST

/* The point of norm: scaling a feature by c (so its gradients by c, its
 * max |x| by c) gives weights scaled by 1/c, i.e. the same predictions.
 * This holds to float rounding for any c and any eps (the damping eps * s
 * scales with the feature too); checked with eps 0 and the default, for the
 * scales of tf-idf (0.04) and real-valued (100) features, with the
 * feature's range growing once on the way (a rescale). */
START_TEST(test_norm_scale_invariant)
{
    const float scales[] = {0.04f, 100.0f, 3.0f};
    const float g[5] = {0.3f, -0.7f, 0.2f, 0.5f, -0.1f};
    const float x[5] = {1.0f, 1.0f, 2.0f, 1.5f, 2.0f};
    for (int t = 0; t < 6; t++) {
        zps_optim_conf_t c;
        zps_optim_defaults(&c, ZPS_OPT_NORM);
        if (t >= 3)
            c.eps = 0;
        float *a = s_row(&c), *b = s_row(&c);
        memset(a, 0, zps_optim_row_floats(&c) * sizeof *a);
        memset(b, 0, zps_optim_row_floats(&c) * sizeof *b);
        const float k = scales[t % 3];
        for (int i = 0; i < 5; i++) {
            const float pa[3] = {g[i], g[i] * g[i], x[i]},
                        pb[3] = {g[i] * k, g[i] * k * g[i] * k, x[i] * k};
            zps_optim_apply(&c, a, pa);
            zps_optim_apply(&c, b, pb);
            ck_assert_msg(fabs((double)b[0] * k - a[0]) <= 1e-5 * fabs((double)a[0]),
                          "scale %g step %d: %.9g * %g != %.9g", (double)k, i, (double)b[0],
                          (double)k, (double)a[0]);
        }
        ck_assert(a[0] != 0);
        free(a);
        free(b);
    }
}
END_TEST

/* norm on an fm row (init_skip 1): column 0 (w) steps lr/s, the embedding
 * columns 0.1 lr/s (first step of AdaGrad: |g| / sqrt(g^2) = 1).  A first
 * push whose x is 0 (a lossy codec may round it away) takes s = 1. */
START_TEST(test_norm_fm_and_zero_scale)
{
    zps_optim_conf_t c;
    zps_optim_defaults(&c, ZPS_OPT_NORM);
    c.dim = 3;
    c.init_skip = 1;
    c.eps = 0;
    c.lr = 0.2f;
    float *row = s_row(&c);
    memset(row, 0, zps_optim_row_floats(&c) * sizeof *row);
    const float p[7] = {1.5f, -2.0f, 0.5f, 2.25f, 4.0f, 0.25f, 4.0f};
    zps_optim_apply(&c, row, p);
    S_NEAR(row[0], -0.2 / 4);
    S_NEAR(row[1], 0.1 * 0.2 / 4);
    S_NEAR(row[2], -0.1 * 0.2 / 4);
    ck_assert(row[6] == 4.0f);
    free(row);

    c.dim = 1;
    c.init_skip = 0;
    row = s_row(&c);
    memset(row, 0, zps_optim_row_floats(&c) * sizeof *row);
    const float q[3] = {-3.0f, 9.0f, 0.0f};
    zps_optim_apply(&c, row, q);
    S_NEAR(row[0], 0.2);
    ck_assert(row[2] == 1.0f);
    free(row);

    /* an fm row's random embedding is for |x| = 1: the first push scales it
     * by 1/x, and until then the row's weights (and a never-pushed key's)
     * read as 0 */
    c.dim = 3;
    c.init_skip = 1;
    c.init_scale = 0.5f;
    c.init_seed = 9;
    row = s_row(&c);
    float w[3], w0[3], i0[3];
    zps_optim_init_row(&c, 5, row);
    memcpy(w0, row, sizeof w0);
    zps_optim_weights(&c, row, w);
    zps_optim_initial_weights(&c, 5, i0);
    for (int j = 0; j < 3; j++)
        ck_assert(w[j] == 0 && i0[j] == 0);
    ck_assert(w0[1] != 0 && w0[2] != 0);
    const float z[7] = {0, 0, 0, 0, 0, 0, 100.0f};
    zps_optim_apply(&c, row, z);
    zps_optim_weights(&c, row, w);
    ck_assert(w[0] == 0);
    S_NEAR(w[1], w0[1] / 100.0);
    S_NEAR(w[2], w0[2] / 100.0);
    free(row);
}
END_TEST

/* ---- initial state --------------------------------------------------------- */

static void s_init_conf(zps_optim_conf_t *c, zps_opt_kind_t kind)
{
    zps_optim_defaults(c, kind);
    c->dim = 8;
    c->init_scale = 0.5f;
    c->init_skip = 2;
    c->init_seed = 77;
    c->l1 = 0.2f;
    c->l2 = 0.3f;
}

START_TEST(test_init_pure_function)
{
    float ref[8]; /* sgd's initial weights for key 1000 */
    for (int k = 0; k < 4; k++) {
        zps_optim_conf_t c;
        s_init_conf(&c, (zps_opt_kind_t)k);
        const uint32_t rf = zps_optim_row_floats(&c);
        float *a = s_row(&c), *b = s_row(&c);
        float wa[8], wb[8], wi[8];
        for (uint64_t key = 1000; key < 1100; key++) {
            zps_optim_init_row(&c, key, a);
            zps_optim_init_row(&c, key, b);
            S_REQUIRE(memcmp(a, b, rf * sizeof *a) == 0, "kind %d key %llu: rows differ",
                      k, (unsigned long long)key);
            zps_optim_weights(&c, a, wa);
            zps_optim_initial_weights(&c, key, wi);
            S_REQUIRE(memcmp(wa, wi, sizeof wa) == 0,
                      "kind %d key %llu: initial_weights != weights(init_row)", k,
                      (unsigned long long)key);
            /* state beyond the weights starts at zero */
            for (uint32_t j = 8; j < rf; j++)
                S_REQUIRE(a[j] == 0, "kind %d: state float %u = %g", k, j, a[j]);
            for (uint32_t j = 0; j < 8; j++) {
                if (j < 2)
                    S_REQUIRE(wa[j] == 0 && a[j] == 0, "kind %d: skipped col %u", k, j);
                else
                    S_REQUIRE(wa[j] != 0 && wa[j] >= -0.5f && wa[j] < 0.5f,
                              "kind %d: col %u = %g", k, j, wa[j]);
            }
            zps_optim_initial_weights(&c, key + 1, wb);
            for (uint32_t j = 2; j < 8; j++)
                S_REQUIRE(wa[j] != wb[j], "kind %d: keys %llu, +1 agree at col %u", k,
                          (unsigned long long)key, j);
            /* the same key under another seed */
            c.init_seed = 78;
            zps_optim_initial_weights(&c, key, wb);
            c.init_seed = 77;
            for (uint32_t j = 2; j < 8; j++)
                S_REQUIRE(wa[j] != wb[j], "kind %d: seeds agree at col %u", k, j);
            /* columns are not copies of each other */
            S_REQUIRE(wa[2] != wa[3] && wa[3] != wa[7], "kind %d: columns equal", k);
            if (key == 1000 && k == ZPS_OPT_SGD)
                memcpy(ref, wa, sizeof ref);
            /* sgd, adagrad and adam store w0 itself: identical bits */
            if (key == 1000 && k != ZPS_OPT_FTRL)
                ck_assert_mem_eq(wa, ref, sizeof ref);
        }
        free(a);
        free(b);
    }
}
END_TEST

START_TEST(test_init_zero_scale)
{
    for (int k = 0; k < 4; k++) {
        zps_optim_conf_t c;
        s_init_conf(&c, (zps_opt_kind_t)k);
        c.init_scale = 0;
        const uint32_t rf = zps_optim_row_floats(&c);
        float *row = s_row(&c), w[8];
        for (uint32_t j = 0; j < rf; j++)
            row[j] = 1.0f;
        zps_optim_init_row(&c, 5, row);
        for (uint32_t j = 0; j < rf; j++)
            ck_assert(row[j] == 0);
        zps_optim_initial_weights(&c, 5, w);
        for (uint32_t j = 0; j < 8; j++)
            ck_assert(w[j] == 0);
        free(row);
    }
}
END_TEST

/* Values cover [-s, s) evenly enough: mean near 0, extremes near +-s. */
START_TEST(test_init_spread)
{
    zps_optim_conf_t c;
    s_init_conf(&c, ZPS_OPT_SGD);
    c.init_skip = 0;
    double sum = 0, sumsq = 0, lo = 1, hi = -1;
    const int nkeys = 20000;
    float w[8];
    for (int key = 0; key < nkeys; key++) {
        zps_optim_initial_weights(&c, (uint64_t)key, w);
        for (int j = 0; j < 8; j++) {
            sum += w[j];
            sumsq += (double)w[j] * w[j];
            lo = w[j] < lo ? w[j] : lo;
            hi = w[j] > hi ? w[j] : hi;
        }
    }
    double n = nkeys * 8.0, mean = sum / n, var = sumsq / n - mean * mean;
    ck_assert_msg(fabs(mean) < 0.005, "mean %g", mean);
    ck_assert_msg(fabs(var - 0.25 / 3) < 0.002, "var %g", var); /* (2s)^2/12 */
    ck_assert(lo >= -0.5 && lo < -0.499 && hi < 0.5 && hi > 0.499);
}
END_TEST

/* FTRL encodes w0 in z (n = 0); weights() must give w0 back: within a few
 * float ulps of w0 when l1 = 0; with l1 > 0, z also carries l1, so the
 * rounding error is relative to |w0| + l1/(beta/alpha + l2). */
START_TEST(test_ftrl_init_weights)
{
    for (int with_l1 = 0; with_l1 < 2; with_l1++) {
        zps_optim_conf_t f, s;
        s_init_conf(&f, ZPS_OPT_FTRL);
        s_init_conf(&s, ZPS_OPT_SGD);
        f.l1 = with_l1 ? 0.2f : 0.0f;
        const double denom = f.beta / f.lr + f.l2;
        float *row = s_row(&f), w[8], w0[8];
        for (uint64_t key = 0; key < 2000; key++) {
            zps_optim_init_row(&f, key, row);
            zps_optim_weights(&f, row, w);
            zps_optim_initial_weights(&s, key, w0);
            for (int j = 0; j < 8; j++) {
                double tol = 1e-6 * (fabs(w0[j]) + f.l1 / denom);
                S_REQUIRE(fabs(w[j] - w0[j]) <= tol && row[8 + j] == 0,
                          "key %llu col %d: %.9g vs %.9g", (unsigned long long)key, j,
                          w[j], w0[j]);
            }
        }
        free(row);
    }
}
END_TEST

/* ---- validate and describe ---------------------------------------------------- */

START_TEST(test_validate)
{
    char err[128];
    zps_optim_conf_t c;
    /* each mutation applied to ftrl defaults must be rejected with a reason */
    for (int m = 0; m < 22; m++) {
        zps_optim_defaults(&c, m < 19 ? ZPS_OPT_FTRL : ZPS_OPT_ADAM);
        switch (m) {
        case 0: c.dim = 0; break;
        case 1: c.dim = (1u << 20) + 1; break;
        case 2: c.lr = 0; break;
        case 3: c.lr = -0.1f; break;
        case 4: c.lr = NAN; break;
        case 5: c.lr = INFINITY; break;
        case 6: c.l1 = -1e-3f; break;
        case 7: c.l2 = NAN; break;
        case 8: c.beta = -1; break;
        case 9: c.beta1 = 1.0f; break;
        case 10: c.beta1 = -0.1f; break;
        case 11: c.beta2 = 1.0f; break;
        case 12: c.beta2 = NAN; break;
        case 13: c.init_scale = -0.1f; break;
        case 14: c.init_scale = INFINITY; break;
        case 15: c.init_skip = 2; break; /* > dim */
        case 16: c.kind = (zps_opt_kind_t)9; break;
        case 17: c.eps = -1; break;
        case 18: c.beta = 0, c.l2 = 0, c.init_scale = 0.1f; break;
        case 19: c.eps = 0; break; /* adam needs eps > 0 */
        case 20: c.l1 = INFINITY; break;
        case 21: c.eps = NAN; break;
        }
        err[0] = '\0';
        ck_assert_msg(zps_optim_validate(&c, err, sizeof err) == ZPS_EINVAL,
                      "mutation %d accepted", m);
        ck_assert_msg(strlen(err) > 0, "mutation %d: no reason", m);
        ck_assert_int_eq(zps_optim_validate(&c, NULL, 0), ZPS_EINVAL);
    }
    /* boundary values that are fine */
    zps_optim_defaults(&c, ZPS_OPT_FTRL);
    c.beta = 0;
    c.beta1 = 0;
    c.beta2 = 0;
    c.init_skip = 1;
    c.dim = 1u << 20;
    c.eps = 0; /* ftrl does not use eps */
    ck_assert_int_eq(zps_optim_validate(&c, err, sizeof err), 0);
    zps_optim_defaults(&c, ZPS_OPT_ADAGRAD);
    c.eps = 0;
    ck_assert_int_eq(zps_optim_validate(&c, err, sizeof err), ZPS_EINVAL);
    /* a short error buffer is still terminated */
    char tiny[4] = "xxx";
    ck_assert_int_eq(zps_optim_validate(&c, tiny, sizeof tiny), ZPS_EINVAL);
    ck_assert_uint_eq(strlen(tiny), 3);
}
END_TEST

START_TEST(test_describe)
{
    zps_optim_conf_t c, d;
    char a[256], b[256];
    zps_optim_defaults(&c, ZPS_OPT_FTRL);
    int n = zps_optim_describe(&c, a, sizeof a);
    ck_assert_str_eq(a, "opt=ftrl,dim=1,lr=0.1,beta=1,l1=0,l2=0,eps=1e-08,"
                        "beta1=0.9,beta2=0.999,init=0,skip=0,seed=0");
    ck_assert_int_eq(n, (int)strlen(a));

    zps_optim_defaults(&c, ZPS_OPT_ADAGRAD);
    c.dim = 16;
    c.lr = 0.05f;
    c.l1 = 1.5f;
    c.l2 = 1e-4f;
    c.init_scale = 0.01f;
    c.init_skip = 1;
    c.init_seed = UINT64_MAX;
    zps_optim_describe(&c, a, sizeof a);
    ck_assert_str_eq(a, "opt=adagrad,dim=16,lr=0.05,beta=1,l1=1.5,l2=0.0001,"
                        "eps=1e-07,beta1=0.9,beta2=0.999,init=0.01,skip=1,"
                        "seed=18446744073709551615");
    /* stable: the same configuration built again gives the same text */
    d = c;
    zps_optim_describe(&d, b, sizeof b);
    ck_assert_str_eq(a, b);
    /* -0 and 0 are the same setting */
    d.l2 = 0, c.l2 = -0.0f;
    zps_optim_describe(&c, a, sizeof a);
    zps_optim_describe(&d, b, sizeof b);
    ck_assert_str_eq(a, b);

    /* every field shows: a one-ulp change anywhere changes the text */
    for (int f = 0; f < 12; f++) {
        zps_optim_defaults(&c, ZPS_OPT_ADAM);
        d = c;
        switch (f) {
        case 0: d.kind = ZPS_OPT_SGD; break;
        case 1: d.dim = 2; break;
        case 2: d.lr = nextafterf(c.lr, 1); break;
        case 3: d.beta = nextafterf(c.beta, 2); break;
        case 4: d.l1 = nextafterf(0, 1); break;
        case 5: d.l2 = 1e-30f; break;
        case 6: d.eps = nextafterf(c.eps, 0); break;
        case 7: d.beta1 = nextafterf(c.beta1, 0); break;
        case 8: d.beta2 = nextafterf(c.beta2, 1); break;
        case 9: d.init_scale = 0.1f; break;
        case 10: d.init_skip = 1; break;
        case 11: d.init_seed = 1; break;
        }
        zps_optim_describe(&c, a, sizeof a);
        zps_optim_describe(&d, b, sizeof b);
        ck_assert_msg(strcmp(a, b) != 0, "field %d not described", f);
    }
    /* snprintf contract: full length returned, output truncated */
    char small[10];
    n = zps_optim_describe(&c, small, sizeof small);
    ck_assert_int_eq(n, (int)strlen(a));
    ck_assert_str_eq(small, "opt=adam,");
}
END_TEST

/* Updates that would make a weight or state non-finite are caught before
 * they are committed: the row passed in is unchanged. */
START_TEST(test_nonfinite_rejected)
{
    zps_optim_conf_t c;
    float row[8], out[8], g[2];
    /* FTRL: a gradient of 1e20 squares to inf in n */
    zps_optim_defaults(&c, ZPS_OPT_FTRL);
    memset(row, 0, sizeof row);
    row[0] = 0.5f;
    row[1] = 4.0f;
    g[0] = 1e20f;
    ck_assert_int_eq(zps_optim_try_apply(&c, row, out, g), 0);
    ck_assert(row[0] == 0.5f && row[1] == 4.0f);
    ck_assert(zps_optim_row_finite(&c, row));
    g[0] = 1e3f; /* a big but harmless one passes */
    ck_assert_int_eq(zps_optim_try_apply(&c, row, out, g), 1);
    /* SGD: 3e38 with a step of 2 overflows the weight */
    zps_optim_defaults(&c, ZPS_OPT_SGD);
    c.lr = 2.0f;
    row[0] = 1.0f;
    g[0] = 3e38f;
    ck_assert_int_eq(zps_optim_try_apply(&c, row, out, g), 0);
    ck_assert(row[0] == 1.0f);
    g[0] = -3e38f;
    ck_assert_int_eq(zps_optim_try_apply(&c, row, out, g), 0);
    /* AdaGrad: g*g overflows; Adam: (1-b2)*g*g does */
    zps_optim_defaults(&c, ZPS_OPT_ADAGRAD);
    memset(row, 0, sizeof row);
    g[0] = 2e19f;
    ck_assert_int_eq(zps_optim_try_apply(&c, row, out, g), 0);
    zps_optim_defaults(&c, ZPS_OPT_ADAM);
    memset(row, 0, sizeof row);
    ck_assert_int_eq(zps_optim_try_apply(&c, row, out, g), 1); /* (1-b2)*g*g stays finite */
    g[0] = 3e38f;
    ck_assert_int_eq(zps_optim_try_apply(&c, row, out, g), 0);
    g[0] = 1.0f;
    ck_assert_int_eq(zps_optim_try_apply(&c, row, out, g), 1);
    /* a row that is already bad is recognised (dim 2: every coordinate) */
    zps_optim_defaults(&c, ZPS_OPT_FTRL);
    c.dim = 2;
    float r2[4] = {0, 0, 1, NAN};
    ck_assert_int_eq(zps_optim_row_finite(&c, r2), 0);
    r2[3] = INFINITY;
    ck_assert_int_eq(zps_optim_row_finite(&c, r2), 0);
    r2[3] = 1;
    ck_assert_int_eq(zps_optim_row_finite(&c, r2), 1);
    /* FTRL's weight is checked too: with beta/alpha + l2 >= 1 a finite z
     * gives a finite w (the short cut); below 1 the division can overflow */
    float r3[2] = {3e38f, 0};
    zps_optim_defaults(&c, ZPS_OPT_FTRL); /* lr 0.1, beta 1: denominator 10 */
    ck_assert_int_eq(zps_optim_row_finite(&c, r3), 1);
    c.lr = 100.0f; /* denominator 0.01: w = -3e40 */
    ck_assert_int_eq(zps_optim_row_finite(&c, r3), 0);
    r3[0] = 1.0f;
    ck_assert_int_eq(zps_optim_row_finite(&c, r3), 1);
    zps_optim_defaults(&c, ZPS_OPT_FTRL);
    r3[1] = -1.0f; /* n < 0 (a damaged row): sqrt(n) is NaN */
    ck_assert_int_eq(zps_optim_row_finite(&c, r3), 0);
}
END_TEST

/* The batched forms give the per-row results, and name the first bad row. */
START_TEST(test_batched)
{
    static const zps_opt_kind_t kinds[] = {ZPS_OPT_SGD, ZPS_OPT_ADAGRAD, ZPS_OPT_FTRL, ZPS_OPT_ADAM,
                                            ZPS_OPT_NORM};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        zps_optim_conf_t c;
        zps_optim_defaults(&c, kinds[k]);
        c.dim = 2;
        uint32_t rf = zps_optim_row_floats(&c), pf = zps_optim_push_floats(&c);
        float a[3][16], b[3][16], g[3 * 8];
        float *ra[3] = {a[0], a[1], a[2]};
        for (int i = 0; i < 3; i++) {
            zps_optim_init_row(&c, (uint64_t)i + 7, a[i]);
            memcpy(b[i], a[i], rf * sizeof(float));
        }
        for (uint32_t j = 0; j < 3 * pf; j++)
            g[j] = (float)j * 0.25f - 1.0f;
        for (int i = 0; i < 3; i++)
            if (kinds[k] == ZPS_OPT_NORM)
                g[i * pf + pf - 1] = 1.0f; /* max |x| of the batch */
        zps_optim_apply_n(&c, ra, g, 3);
        for (int i = 0; i < 3; i++) {
            zps_optim_apply(&c, b[i], g + i * pf);
            ck_assert_mem_eq(a[i], b[i], rf * sizeof(float));
        }
        ck_assert_uint_eq(zps_optim_rows_finite(&c, ra, 3), 3);
        float wn[3 * 2], w1[2];
        zps_optim_weights_n(&c, ra, 3, wn);
        for (int i = 0; i < 3; i++) {
            zps_optim_weights(&c, a[i], w1);
            ck_assert_mem_eq(wn + i * 2, w1, sizeof w1);
        }
        a[1][rf - 1] = INFINITY;
        ck_assert_uint_eq(zps_optim_rows_finite(&c, ra, 3), 1);
        a[0][0] = NAN;
        ck_assert_uint_eq(zps_optim_rows_finite(&c, ra, 3), 0);
    }
}
END_TEST

START_TEST(test_clip)
{
    float g[5] = {-10, -1, 0, 2, 1e30f};
    zps_optim_clip(g, 5, 1.5f);
    ck_assert(g[0] == -1.5f && g[1] == -1 && g[2] == 0 && g[3] == 1.5f && g[4] == 1.5f);
    float h[2] = {-10, 10};
    zps_optim_clip(h, 2, 0); /* off */
    ck_assert(h[0] == -10 && h[1] == 10);
}
END_TEST

Suite *suite_optim(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_kinds_and_defaults);
    tcase_add_test(tc, test_row_floats);
    tcase_add_test(tc, test_validate);
    tcase_add_test(tc, test_describe);
    suite_add_tcase(s, tc);

    tc = tcase_create("updates");
    tcase_add_test(tc, test_sgd_reference);
    tcase_add_test(tc, test_adagrad_reference);
    tcase_add_test(tc, test_ftrl_reference);
    tcase_add_test(tc, test_ftrl_lazy_weights);
    tcase_add_test(tc, test_uf16_layout);
    tcase_add_test(tc, test_uf16_unbiased);
    tcase_add_test(tc, test_uf16_edges);
    tcase_add_test(tc, test_adam_reference);
    tcase_add_test(tc, test_zero_gradient);
    tcase_add_test(tc, test_nonfinite_rejected);
    tcase_add_test(tc, test_batched);
    tcase_add_test(tc, test_clip);
    tcase_add_test(tc, test_norm_reference);
    tcase_add_test(tc, test_norm_scale_invariant);
    tcase_add_test(tc, test_norm_fm_and_zero_scale);
    suite_add_tcase(s, tc);

    tc = tcase_create("init");
    tcase_add_test(tc, test_init_pure_function);
    tcase_add_test(tc, test_init_zero_scale);
    tcase_add_test(tc, test_init_spread);
    tcase_add_test(tc, test_ftrl_init_weights);
    suite_add_tcase(s, tc);
    return s;
}
