/* check_sparsify: top-k / threshold sparsification with error feedback.
 *
 * - Plain error feedback is checked against a reference model in the test
 *   that performs the same float operations (v += g, squared norms summed
 *   in double in the same order), so selections, sent values and residuals
 *   must match exactly, push after push.
 * - The key property, no gradient mass is lost: over random pushes of random
 *   key subsets, for every key sum(sent) + residual == sum(gradients) within
 *   float tolerance; also when the sent rows go through the f16 / int8
 *   codecs and the quantization error is fed back.
 * - Momentum correction (DGC) against a double-precision reference: the
 *   implementation's choice must be a correct top-k / threshold choice under
 *   the reference values up to a relative 1e-4 (near-ties may go either
 *   way), the reference then follows that choice, and sent values and
 *   residuals agree within tolerance.
 * Keys are random 64-bit values (a sorted universe); each push takes a
 * Bernoulli subset, so it is sorted and unique as the API requires. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "check_suites.h"
#include "wk_sparsify.h"
#include "zps_hash.h"
#include "zps_rng.h"
#include "zps_vcodec.h"

/* Check records every passing ck_assert (a write to its result pipe), so
 * loops test plainly and only report a failure. */
#define S_REQUIRE(cond, ...)           \
    do {                               \
        if (!(cond))                   \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)

#define S_SEED 0x5a4e5e3d00c0ffeeull

/* Gradient-like values: signed, magnitudes over a few decades. */
static float s_rand_grad(uint64_t *st)
{
    double mag = pow(10.0, -3.0 * zps_rng_uniform(st));
    return (float)((zps_rng_next(st) & 1) ? mag : -mag);
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Sorted universe of u distinct random keys. */
static uint64_t *s_universe(size_t u, uint64_t seed)
{
    uint64_t *k = malloc(u * sizeof *k);
    ck_assert_ptr_nonnull(k);
    for (size_t i = 0; i < u; i++)
        k[i] = zps_mix64(i, seed); /* a bijection: distinct */
    qsort(k, u, sizeof *k, s_cmp_u64);
    return k;
}

static size_t s_index_of(const uint64_t *uni, size_t u, uint64_t key)
{
    size_t lo = 0, hi = u;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (uni[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    S_REQUIRE(lo < u && uni[lo] == key, "key %llx not in the universe", (unsigned long long)key);
    return lo;
}

/* Expected top-k count: ceil(ratio * n) in [1, n], ratio * n within
 * relative 2^-23 of an integer counting as that integer. */
static size_t s_expect_k(float ratio, size_t n)
{
    double x = (double)ratio * (double)n, m = ceil(x - x * 0x1p-23);
    return m < 1 ? 1 : m > (double)n ? n : (size_t)m;
}

/* A push: a Bernoulli(p) subset of the universe (indices into it). */
static size_t s_subset(uint64_t *st, size_t u, double p, size_t *idx)
{
    size_t n = 0;
    for (size_t i = 0; i < u; i++)
        if (zps_rng_uniform(st) < p)
            idx[n++] = i;
    return n;
}

/* ---- a reference for plain error feedback, same float operations ------- */

typedef struct {
    double score;
    size_t pos;
} s_rank_t;

static int s_cmp_rank(const void *a, const void *b)
{
    const s_rank_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Reference step over state ref[u * dim]: returns m, fills keys/vals. */
static size_t s_ref_step(const wk_sparsify_conf_t *c, uint32_t dim, float *ref,
                         const uint64_t *uni, const size_t *idx, const float *g, size_t n,
                         uint64_t *okeys, float *ovals)
{
    s_rank_t *rank = malloc((n ? n : 1) * sizeof *rank);
    unsigned char *sel = calloc(n ? n : 1, 1);
    ck_assert_ptr_nonnull(rank);
    ck_assert_ptr_nonnull(sel);
    for (size_t i = 0; i < n; i++) {
        float *v = ref + idx[i] * dim;
        double sq = 0;
        float mx = 0;
        for (uint32_t j = 0; j < dim; j++) {
            v[j] += g[i * dim + j];
            sq += (double)v[j] * v[j];
            mx = fmaxf(mx, fabsf(v[j]));
        }
        rank[i].score = sq;
        rank[i].pos = i;
        if (c->mode == WK_SPARSE_THRESHOLD)
            sel[i] = mx >= c->threshold;
    }
    if (c->mode == WK_SPARSE_TOPK && n > 0) {
        qsort(rank, n, sizeof *rank, s_cmp_rank);
        size_t k = s_expect_k(c->ratio, n);
        for (size_t i = 0; i < k; i++)
            sel[rank[i].pos] = 1;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!sel[i])
            continue;
        float *v = ref + idx[i] * dim;
        okeys[m] = uni[idx[i]];
        memcpy(ovals + m * dim, v, dim * sizeof *v);
        memset(v, 0, dim * sizeof *v);
        m++;
    }
    free(rank);
    free(sel);
    return m;
}

/* ---- tests --------------------------------------------------------------- */

START_TEST(test_new_and_destroy)
{
    const wk_sparsify_conf_t bad[] = {
        { WK_SPARSE_TOPK, 0.0f, 0, 0 },      { WK_SPARSE_TOPK, -0.5f, 0, 0 },
        { WK_SPARSE_TOPK, 1.5f, 0, 0 },      { WK_SPARSE_TOPK, NAN, 0, 0 },
        { WK_SPARSE_TOPK, 0.5f, 0, -0.1f },  { WK_SPARSE_TOPK, 0.5f, 0, 1.0f },
        { WK_SPARSE_TOPK, 0.5f, 0, NAN },    { WK_SPARSE_THRESHOLD, 0, -1.0f, 0 },
        { WK_SPARSE_THRESHOLD, 0, NAN, 0 },  { WK_SPARSE_THRESHOLD, 0, INFINITY, 0 },
        { (wk_sparse_mode_t)0, 0.5f, 1, 0 }, { (wk_sparse_mode_t)3, 0.5f, 1, 0 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        S_REQUIRE(wk_sparsify_new(&bad[i], 4) == NULL, "bad conf %zu accepted", i);
    const wk_sparsify_conf_t ok = { WK_SPARSE_TOPK, 1.0f, -5.0f /* ignored */, 0.9f };
    ck_assert_ptr_null(wk_sparsify_new(&ok, 0));
    ck_assert_ptr_null(wk_sparsify_new(NULL, 4));
    wk_sparsify_t *s = wk_sparsify_new(&ok, 4);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(wk_sparsify_keys(s), 0);
    ck_assert_uint_gt(wk_sparsify_bytes(s), 0);
    ck_assert_uint_eq(wk_sparsify_step(s, NULL, NULL, 0, NULL, NULL), 0);
    size_t cur = 0;
    uint64_t key;
    const float *r;
    ck_assert_int_eq(wk_sparsify_next(s, &cur, &key, &r), 0);
    float out[4] = { 1, 2, 3, 4 };
    wk_sparsify_residual(s, 77, out);
    for (int j = 0; j < 4; j++)
        ck_assert_float_eq(out[j], 0.0f);
    wk_sparsify_destroy(&s);
    ck_assert_ptr_null(s);
    wk_sparsify_destroy(&s);
    wk_sparsify_destroy(NULL);
    const wk_sparsify_conf_t thr = { WK_SPARSE_THRESHOLD, 0 /* ignored */, 0.0f, 0 };
    s = wk_sparsify_new(&thr, 1);
    ck_assert_ptr_nonnull(s);
    wk_sparsify_destroy(&s);
}
END_TEST

/* ceil(ratio * n) rows, at least one; float ratios that are decimal
 * fractions count exactly. */
START_TEST(test_topk_count)
{
    static const struct { float ratio; size_t n, k; } cases[] = {
        { 0.1f, 10, 1 },    { 0.1f, 11, 2 },   { 0.1f, 100, 10 },  { 0.1f, 1000, 100 },
        { 0.3f, 10, 3 },    { 0.7f, 10, 7 },   { 0.01f, 1, 1 },    { 1e-6f, 5, 1 },
        { 0.5f, 3, 2 },     { 1.0f, 7, 7 },    { 0.999f, 7, 7 },   { 0.25f, 8, 2 },
        { 0.25f, 9, 3 },    { 0.001f, 100000, 100 },
    };
    static uint64_t keys[100000];
    static float g[100000], ov[100000];
    static uint64_t ok[100000];
    for (size_t i = 0; i < 100000; i++) {
        keys[i] = 3 * i + 1;
        g[i] = (float)(i % 1000) + 1.0f;
    }
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        wk_sparsify_conf_t conf = { WK_SPARSE_TOPK, cases[c].ratio, 0, 0 };
        wk_sparsify_t *s = wk_sparsify_new(&conf, 1);
        ck_assert_ptr_nonnull(s);
        size_t m = wk_sparsify_step(s, keys, g, cases[c].n, ok, ov);
        S_REQUIRE(m == cases[c].k, "ratio %g of %zu rows: %zu sent, want %zu",
                  (double)cases[c].ratio, cases[c].n, m, cases[c].k);
        S_REQUIRE(m == s_expect_k(cases[c].ratio, cases[c].n), "test formula disagrees");
        wk_sparsify_destroy(&s);
    }
}
END_TEST

/* Single pushes on fresh state: the selection is the k largest norms (ties
 * to the smaller key), in key order, with exact values; the others stay. */
START_TEST(test_topk_selection)
{
    uint64_t st = S_SEED;
    const uint32_t dims[] = { 1, 3, 8 };
    const float ratios[] = { 0.01f, 0.1f, 0.37f, 0.5f, 0.9f };
    enum { U = 3000 };
    uint64_t *uni = s_universe(U, S_SEED);
    size_t *idx = malloc(U * sizeof *idx);
    float *g = malloc(U * 8 * sizeof *g), *ov = malloc(U * 8 * sizeof *ov),
          *rv = malloc(U * 8 * sizeof *rv), *ref = malloc(U * 8 * sizeof *ref), row[8];
    uint64_t *keys = malloc(U * sizeof *keys), *ok = malloc(U * sizeof *ok),
             *rk = malloc(U * sizeof *rk);
    ck_assert_ptr_nonnull(rk);
    for (int trial = 0; trial < 60; trial++) {
        uint32_t dim = dims[trial % 3];
        float ratio = ratios[(trial / 3) % 5];
        int ties = trial % 4 == 0; /* values from a tiny set: many equal norms */
        size_t n = s_subset(&st, U, 0.02 + 0.5 * zps_rng_uniform(&st), idx);
        for (size_t i = 0; i < n; i++) {
            keys[i] = uni[idx[i]];
            for (uint32_t j = 0; j < dim; j++)
                g[i * dim + j] = ties ? (float)((int)(zps_rng_next(&st) % 3) - 1) : s_rand_grad(&st);
        }
        if (trial == 1)
            for (size_t i = 0; i < n * dim; i++)
                g[i] = 0.5f; /* all equal: the first k keys */
        wk_sparsify_conf_t conf = { WK_SPARSE_TOPK, ratio, 0, 0 };
        wk_sparsify_t *s = wk_sparsify_new(&conf, dim);
        ck_assert_ptr_nonnull(s);
        memset(ref, 0, U * dim * sizeof *ref);
        size_t m = wk_sparsify_step(s, keys, g, n, ok, ov);
        size_t rm = s_ref_step(&conf, dim, ref, uni, idx, g, n, rk, rv);
        S_REQUIRE(m == rm, "trial %d: %zu rows sent, reference %zu", trial, m, rm);
        S_REQUIRE(m == s_expect_k(ratio, n), "trial %d: count", trial);
        S_REQUIRE(memcmp(ok, rk, m * sizeof *ok) == 0, "trial %d: other keys chosen", trial);
        S_REQUIRE(memcmp(ov, rv, m * dim * sizeof *ov) == 0, "trial %d: values differ", trial);
        if (trial == 1)
            for (size_t i = 0; i < m; i++)
                S_REQUIRE(ok[i] == keys[i], "ties: key %zu is not among the first", i);
        for (size_t i = 0; i < n; i++) {
            wk_sparsify_residual(s, keys[i], row);
            S_REQUIRE(memcmp(row, ref + idx[i] * dim, dim * sizeof *row) == 0,
                      "trial %d: residual of row %zu", trial, i);
        }
        ck_assert_uint_eq(wk_sparsify_keys(s), n);
        wk_sparsify_destroy(&s);
    }
    free(uni);
    free(idx);
    free(g);
    free(ov);
    free(rv);
    free(ref);
    free(keys);
    free(ok);
    free(rk);
}
END_TEST

/* A worked threshold example: mass accumulates until it crosses T. */
START_TEST(test_threshold_example)
{
    wk_sparsify_conf_t conf = { WK_SPARSE_THRESHOLD, 0, 1.0f, 0 };
    wk_sparsify_t *s = wk_sparsify_new(&conf, 2);
    ck_assert_ptr_nonnull(s);
    uint64_t keys[3] = { 10, 20, 30 }, ok[3];
    float g[6] = { 0.4f, 0.0f, -1.0f, 0.5f, 0.99f, -0.99f }, ov[6], r[2];
    /* push 1: only key 20 (max |v| = 1 >= 1) */
    ck_assert_uint_eq(wk_sparsify_step(s, keys, g, 3, ok, ov), 1);
    ck_assert_uint_eq(ok[0], 20);
    ck_assert_float_eq(ov[0], -1.0f);
    ck_assert_float_eq(ov[1], 0.5f);
    wk_sparsify_residual(s, 20, r);
    ck_assert_float_eq(r[0], 0.0f);
    ck_assert_float_eq(r[1], 0.0f);
    wk_sparsify_residual(s, 30, r);
    ck_assert_float_eq(r[0], 0.99f);
    ck_assert_float_eq(r[1], -0.99f);
    /* push 2: key 10 alone: 0.8 < 1 */
    ck_assert_uint_eq(wk_sparsify_step(s, keys, g, 1, ok, ov), 0);
    /* push 3: keys 10 and 30 again: 1.2 and 1.98 */
    uint64_t k2[2] = { 10, 30 };
    float g2[4] = { 0.4f, 0.0f, 0.99f, -0.99f };
    ck_assert_uint_eq(wk_sparsify_step(s, k2, g2, 2, ok, ov), 2);
    ck_assert_uint_eq(ok[0], 10);
    ck_assert_uint_eq(ok[1], 30);
    ck_assert_float_eq(ov[0], (0.4f + 0.4f) + 0.4f);
    ck_assert_float_eq(ov[2], 0.99f + 0.99f);
    ck_assert_float_eq(ov[3], -0.99f - 0.99f);
    ck_assert_uint_eq(wk_sparsify_keys(s), 3);
    wk_sparsify_destroy(&s);
}
END_TEST

/* Many pushes of random subsets, plain error feedback: exact agreement with
 * the reference, and the accounting invariant per key. */
static void s_run_plain(const wk_sparsify_conf_t *conf, uint32_t dim, size_t u, int steps,
                        uint64_t seed)
{
    uint64_t st = seed;
    uint64_t *uni = s_universe(u, seed);
    size_t *idx = malloc(u * sizeof *idx);
    float *g = malloc(u * dim * sizeof *g), *ov = malloc(u * dim * sizeof *ov),
          *rv = malloc(u * dim * sizeof *rv), *ref = calloc(u * dim, sizeof *ref);
    uint64_t *keys = malloc(u * sizeof *keys), *ok = malloc(u * sizeof *ok),
             *rk = malloc(u * sizeof *rk);
    double *gsum = calloc(u * dim, sizeof *gsum), *sent = calloc(u * dim, sizeof *sent),
           *gabs = calloc(u, sizeof *gabs);
    unsigned char *seen = calloc(u, 1);
    ck_assert_ptr_nonnull(seen);
    ck_assert_ptr_nonnull(gabs);
    wk_sparsify_t *s = wk_sparsify_new(conf, dim);
    ck_assert_ptr_nonnull(s);
    size_t nseen = 0, total_sent = 0, total_rows = 0;
    for (int step = 0; step < steps; step++) {
        size_t n = s_subset(&st, u, 0.01 + 0.3 * zps_rng_uniform(&st), idx);
        for (size_t i = 0; i < n; i++) {
            keys[i] = uni[idx[i]];
            nseen += !seen[idx[i]];
            seen[idx[i]] = 1;
            for (uint32_t j = 0; j < dim; j++) {
                float x = s_rand_grad(&st);
                g[i * dim + j] = x;
                gsum[idx[i] * dim + j] += x;
                gabs[idx[i]] += fabs(x);
            }
        }
        size_t m = wk_sparsify_step(s, keys, g, n, ok, ov);
        size_t rm = s_ref_step(conf, dim, ref, uni, idx, g, n, rk, rv);
        S_REQUIRE(m == rm, "step %d: %zu rows sent, reference %zu", step, m, rm);
        S_REQUIRE(memcmp(ok, rk, m * sizeof *ok) == 0, "step %d: other keys chosen", step);
        S_REQUIRE(memcmp(ov, rv, m * dim * sizeof *ov) == 0, "step %d: values differ", step);
        for (size_t i = 0; i < m; i++) {
            S_REQUIRE(i == 0 || ok[i - 1] < ok[i], "step %d: keys out of order", step);
            size_t k = s_index_of(uni, u, ok[i]);
            for (uint32_t j = 0; j < dim; j++)
                sent[k * dim + j] += ov[i * dim + j];
        }
        total_sent += m;
        total_rows += n;
    }
    ck_assert_uint_eq(wk_sparsify_keys(s), nseen);
    ck_assert_uint_gt(total_sent, 0);
    ck_assert_uint_lt(total_sent, total_rows);
    /* the invariant, through the iterator; and residual() agrees */
    size_t cur = 0, visited = 0;
    uint64_t key;
    const float *r;
    float *row = malloc(dim * sizeof *row);
    while (wk_sparsify_next(s, &cur, &key, &r)) {
        size_t k = s_index_of(uni, u, key);
        S_REQUIRE(seen[k] == 1, "key visited twice or never pushed");
        seen[k] = 2;
        visited++;
        wk_sparsify_residual(s, key, row);
        S_REQUIRE(memcmp(row, r, dim * sizeof *row) == 0, "residual() != next()");
        for (uint32_t j = 0; j < dim; j++) {
            double lhs = sent[k * dim + j] + r[j], rhs = gsum[k * dim + j];
            S_REQUIRE(fabs(lhs - rhs) <= 1e-5 * gabs[k] + 1e-9,
                      "key %zu[%u]: sent + residual = %.9g, gradients %.9g", k, j, lhs, rhs);
            S_REQUIRE(r[j] == ref[k * dim + j], "residual differs from the reference");
        }
    }
    ck_assert_uint_eq(visited, nseen);
    free(row);
    wk_sparsify_destroy(&s);
    free(uni);
    free(idx);
    free(g);
    free(ov);
    free(rv);
    free(ref);
    free(keys);
    free(ok);
    free(rk);
    free(gsum);
    free(sent);
    free(gabs);
    free(seen);
}

START_TEST(test_invariant_topk)
{
    wk_sparsify_conf_t c1 = { WK_SPARSE_TOPK, 0.05f, 0, 0 };
    s_run_plain(&c1, 4, 2000, 150, S_SEED ^ 1);
    wk_sparsify_conf_t c2 = { WK_SPARSE_TOPK, 0.3f, 0, 0 };
    s_run_plain(&c2, 1, 5000, 100, S_SEED ^ 2);
    wk_sparsify_conf_t c3 = { WK_SPARSE_TOPK, 0.001f, 0, 0 };
    s_run_plain(&c3, 7, 500, 100, S_SEED ^ 3);
}
END_TEST

START_TEST(test_invariant_threshold)
{
    wk_sparsify_conf_t c1 = { WK_SPARSE_THRESHOLD, 0, 1.5f, 0 };
    s_run_plain(&c1, 4, 2000, 150, S_SEED ^ 4);
    wk_sparsify_conf_t c2 = { WK_SPARSE_THRESHOLD, 0, 0.9f, 0 };
    s_run_plain(&c2, 1, 5000, 100, S_SEED ^ 5);
}
END_TEST

/* Error feedback of quantization: the selected rows go through a codec, the
 * decoded values are what is sent, feedback() returns the difference; the
 * accounting invariant holds for the decoded values. */
static void s_run_quantized(const wk_sparsify_conf_t *conf, uint32_t dim, zps_vcodec_t codec,
                            int stochastic, uint64_t seed)
{
    enum { U = 1500, STEPS = 120 };
    uint64_t st = seed, rng = seed ^ 0xabc;
    uint64_t *uni = s_universe(U, seed);
    size_t *idx = malloc(U * sizeof *idx);
    float *g = malloc(U * dim * sizeof *g), *ov = malloc(U * dim * sizeof *ov),
          *dec = malloc(U * dim * sizeof *dec);
    uint8_t *buf = malloc(zps_vc_size(ZPS_VC_F32, U * dim));
    uint64_t *keys = malloc(U * sizeof *keys), *ok = malloc(U * sizeof *ok);
    double *gsum = calloc(U * dim, sizeof *gsum), *sent = calloc(U * dim, sizeof *sent),
           *gabs = calloc(U, sizeof *gabs);
    ck_assert_ptr_nonnull(gabs);
    ck_assert_ptr_nonnull(buf);
    wk_sparsify_t *s = wk_sparsify_new(conf, dim);
    ck_assert_ptr_nonnull(s);
    double qerr = 0;
    for (int step = 0; step < STEPS; step++) {
        size_t n = s_subset(&st, U, 0.05 + 0.3 * zps_rng_uniform(&st), idx);
        for (size_t i = 0; i < n; i++) {
            keys[i] = uni[idx[i]];
            for (uint32_t j = 0; j < dim; j++) {
                float x = s_rand_grad(&st);
                g[i * dim + j] = x;
                gsum[idx[i] * dim + j] += x;
                gabs[idx[i]] += fabs(x);
            }
        }
        size_t m = wk_sparsify_step(s, keys, g, n, ok, ov);
        size_t len = zps_vc_encode(codec, ov, m * dim, buf, stochastic ? &rng : NULL);
        ck_assert_int_eq(zps_vc_decode(codec, buf, len, m * dim, dec), 0);
        wk_sparsify_feedback(s, ok, ov, dec, m);
        for (size_t i = 0; i < m; i++) {
            size_t k = s_index_of(uni, U, ok[i]);
            for (uint32_t j = 0; j < dim; j++) {
                sent[k * dim + j] += dec[i * dim + j];
                qerr += fabs(dec[i * dim + j] - ov[i * dim + j]);
            }
        }
    }
    ck_assert(qerr > 0); /* the codec was lossy */
    float *row = malloc(dim * sizeof *row);
    for (size_t k = 0; k < U; k++) {
        wk_sparsify_residual(s, uni[k], row);
        for (uint32_t j = 0; j < dim; j++) {
            double lhs = sent[k * dim + j] + row[j], rhs = gsum[k * dim + j];
            S_REQUIRE(fabs(lhs - rhs) <= 1e-5 * gabs[k] + 1e-9,
                      "%s: key %zu[%u]: sent + residual = %.9g, gradients %.9g",
                      zps_vc_name(codec), k, j, lhs, rhs);
        }
    }
    free(row);
    wk_sparsify_destroy(&s);
    free(uni);
    free(idx);
    free(g);
    free(ov);
    free(dec);
    free(buf);
    free(keys);
    free(ok);
    free(gsum);
    free(sent);
    free(gabs);
}

START_TEST(test_invariant_quantized)
{
    wk_sparsify_conf_t topk = { WK_SPARSE_TOPK, 0.1f, 0, 0 };
    wk_sparsify_conf_t thr = { WK_SPARSE_THRESHOLD, 0, 1.0f, 0 };
    s_run_quantized(&topk, 4, ZPS_VC_F16, 1, S_SEED ^ 10);
    s_run_quantized(&topk, 4, ZPS_VC_INT8, 1, S_SEED ^ 11);
    s_run_quantized(&thr, 3, ZPS_VC_INT8, 0, S_SEED ^ 12);
    s_run_quantized(&thr, 1, ZPS_VC_F16, 0, S_SEED ^ 13);
}
END_TEST

/* Momentum correction against a double-precision reference. */
static void s_run_momentum(const wk_sparsify_conf_t *conf, uint32_t dim, uint64_t seed)
{
    enum { U = 300, STEPS = 40 };
    uint64_t st = seed;
    uint64_t *uni = s_universe(U, seed);
    size_t *idx = malloc(U * sizeof *idx);
    float *g = malloc(U * dim * sizeof *g), *ov = malloc(U * dim * sizeof *ov), row[8];
    uint64_t *keys = malloc(U * sizeof *keys), *ok = malloc(U * sizeof *ok);
    double *u = calloc(U * dim, sizeof *u), *v = calloc(U * dim, sizeof *v);
    unsigned char *chosen = malloc(U);
    ck_assert_ptr_nonnull(chosen);
    ck_assert_uint_le(dim, 8);
    double mo = conf->momentum;
    wk_sparsify_t *s = wk_sparsify_new(conf, dim);
    ck_assert_ptr_nonnull(s);
    for (int step = 0; step < STEPS; step++) {
        size_t n = s_subset(&st, U, 0.1 + 0.5 * zps_rng_uniform(&st), idx);
        for (size_t i = 0; i < n; i++) {
            keys[i] = uni[idx[i]];
            for (uint32_t j = 0; j < dim; j++) {
                float x = s_rand_grad(&st);
                size_t a = idx[i] * dim + j;
                g[i * dim + j] = x;
                u[a] = mo * u[a] + x;
                v[a] += u[a];
            }
        }
        size_t m = wk_sparsify_step(s, keys, g, n, ok, ov);
        memset(chosen, 0, U);
        for (size_t i = 0; i < m; i++) {
            size_t k = s_index_of(uni, U, ok[i]);
            chosen[k] = 1;
            for (uint32_t j = 0; j < dim; j++) {
                double want = v[k * dim + j], got = ov[i * dim + j];
                S_REQUIRE(fabs(got - want) <= 1e-4 * (fabs(want) + 1),
                          "step %d key %zu[%u]: sent %.9g, reference %.9g", step, k, j, got, want);
            }
        }
        /* is it a right choice under the reference values? */
        double min_in = INFINITY, max_out = 0;
        for (size_t i = 0; i < n; i++) {
            size_t k = idx[i];
            double sc = 0;
            for (uint32_t j = 0; j < dim; j++) {
                double x = v[k * dim + j];
                sc = conf->mode == WK_SPARSE_TOPK ? sc + x * x : fmax(sc, fabs(x));
            }
            if (chosen[k])
                min_in = fmin(min_in, sc);
            else
                max_out = fmax(max_out, sc);
        }
        if (conf->mode == WK_SPARSE_TOPK) {
            ck_assert_uint_eq(m, s_expect_k(conf->ratio, n));
            S_REQUIRE(m == 0 || m == n || min_in >= max_out * (1 - 1e-4) - 1e-6,
                      "step %d: a row with norm^2 %.9g sent, one with %.9g kept", step, min_in,
                      max_out);
        } else {
            S_REQUIRE(m == 0 || min_in >= conf->threshold * (1 - 1e-4), "step %d: below T", step);
            S_REQUIRE(max_out < conf->threshold * (1 + 1e-4), "step %d: above T kept", step);
        }
        /* the reference follows the choice: momentum factor masking */
        for (size_t k = 0; k < U; k++) {
            if (!chosen[k])
                continue;
            for (uint32_t j = 0; j < dim; j++)
                u[k * dim + j] = v[k * dim + j] = 0;
        }
    }
    for (size_t k = 0; k < U; k++) {
        wk_sparsify_residual(s, uni[k], row);
        for (uint32_t j = 0; j < dim; j++) {
            double want = v[k * dim + j];
            S_REQUIRE(fabs(row[j] - want) <= 1e-4 * (fabs(want) + 1),
                      "key %zu[%u]: residual %.9g, reference %.9g", k, j, (double)row[j], want);
        }
    }
    wk_sparsify_destroy(&s);
    free(uni);
    free(idx);
    free(g);
    free(ov);
    free(keys);
    free(ok);
    free(u);
    free(v);
    free(chosen);
}

START_TEST(test_momentum_reference)
{
    wk_sparsify_conf_t c1 = { WK_SPARSE_TOPK, 0.2f, 0, 0.9f };
    s_run_momentum(&c1, 3, S_SEED ^ 20);
    wk_sparsify_conf_t c2 = { WK_SPARSE_TOPK, 0.05f, 0, 0.5f };
    s_run_momentum(&c2, 1, S_SEED ^ 21);
    wk_sparsify_conf_t c3 = { WK_SPARSE_THRESHOLD, 0, 2.0f, 0.9f };
    s_run_momentum(&c3, 4, S_SEED ^ 22);
}
END_TEST

/* Hand-computed momentum: one key, m = 0.5, g = 1 each push, sent when
 * |v| >= 3: u 1, 1.5, 1.75; v 1, 2.5, 4.25 -> sent 4.25; then both reset. */
START_TEST(test_momentum_example)
{
    wk_sparsify_conf_t conf = { WK_SPARSE_THRESHOLD, 0, 3.0f, 0.5f };
    wk_sparsify_t *s = wk_sparsify_new(&conf, 1);
    ck_assert_ptr_nonnull(s);
    uint64_t key = 5, ok;
    float g = 1.0f, ov, r;
    ck_assert_uint_eq(wk_sparsify_step(s, &key, &g, 1, &ok, &ov), 0);
    wk_sparsify_residual(s, key, &r);
    ck_assert_float_eq(r, 1.0f);
    ck_assert_uint_eq(wk_sparsify_step(s, &key, &g, 1, &ok, &ov), 0);
    wk_sparsify_residual(s, key, &r);
    ck_assert_float_eq(r, 2.5f);
    ck_assert_uint_eq(wk_sparsify_step(s, &key, &g, 1, &ok, &ov), 1);
    ck_assert_float_eq(ov, 4.25f);
    wk_sparsify_residual(s, key, &r);
    ck_assert_float_eq(r, 0.0f);
    /* u was masked too: the next push starts over (u = 1, v = 1) */
    ck_assert_uint_eq(wk_sparsify_step(s, &key, &g, 1, &ok, &ov), 0);
    wk_sparsify_residual(s, key, &r);
    ck_assert_float_eq(r, 1.0f);
    /* quantization feedback only touches v */
    float intended = 4.0f, sentv = 3.5f;
    wk_sparsify_feedback(s, &key, &intended, &sentv, 1);
    wk_sparsify_residual(s, key, &r);
    ck_assert_float_eq(r, 1.5f);
    ck_assert_uint_eq(wk_sparsify_step(s, &key, &g, 1, &ok, &ov), 1); /* u 1.5, v 3 */
    ck_assert_float_eq(ov, 3.0f);
    wk_sparsify_destroy(&s);
}
END_TEST

/* ratio 1 (and threshold 0) send everything and leave zero residuals. */
START_TEST(test_send_all)
{
    enum { U = 1000 };
    uint64_t st = S_SEED ^ 30;
    uint64_t *uni = s_universe(U, S_SEED ^ 30);
    size_t idx[U];
    static float g[U * 3], ov[U * 3];
    static uint64_t keys[U], ok[U];
    const wk_sparsify_conf_t confs[] = {
        { WK_SPARSE_TOPK, 1.0f, 0, 0 },
        { WK_SPARSE_TOPK, 1.0f, 0, 0.9f },
        { WK_SPARSE_THRESHOLD, 0, 0.0f, 0 },
        { WK_SPARSE_THRESHOLD, 0, 0.0f, 0.5f },
    };
    for (size_t c = 0; c < sizeof confs / sizeof confs[0]; c++) {
        wk_sparsify_t *s = wk_sparsify_new(&confs[c], 3);
        ck_assert_ptr_nonnull(s);
        for (int step = 0; step < 20; step++) {
            size_t n = s_subset(&st, U, 0.3, idx);
            for (size_t i = 0; i < n; i++) {
                keys[i] = uni[idx[i]];
                for (int j = 0; j < 3; j++)
                    g[i * 3 + j] = s_rand_grad(&st);
            }
            g[0] = 0.0f; /* zero rows are sent too */
            size_t m = wk_sparsify_step(s, keys, g, n, ok, ov);
            S_REQUIRE(m == n, "conf %zu: %zu of %zu rows sent", c, m, n);
            S_REQUIRE(memcmp(ok, keys, n * sizeof *ok) == 0, "conf %zu: keys", c);
            /* exactly the gradients: no residual, and u was masked */
            S_REQUIRE(memcmp(ov, g, n * 3 * sizeof *ov) == 0, "conf %zu: values", c);
        }
        size_t cur = 0;
        uint64_t key;
        const float *r;
        while (wk_sparsify_next(s, &cur, &key, &r))
            S_REQUIRE(r[0] == 0 && r[1] == 0 && r[2] == 0, "conf %zu: residual left", c);
        ck_assert_uint_gt(cur, 0);
        wk_sparsify_destroy(&s);
    }
    free(uni);
}
END_TEST

START_TEST(test_feedback_new_key)
{
    wk_sparsify_conf_t conf = { WK_SPARSE_TOPK, 0.5f, 0, 0 };
    wk_sparsify_t *s = wk_sparsify_new(&conf, 2);
    ck_assert_ptr_nonnull(s);
    uint64_t keys[2] = { 7, 9 };
    float a[4] = { 1.0f, 2.0f, 3.0f, 4.0f }, b[4] = { 0.5f, 2.0f, 3.25f, 4.0f }, r[2];
    wk_sparsify_feedback(s, keys, a, b, 2);
    ck_assert_uint_eq(wk_sparsify_keys(s), 2);
    wk_sparsify_residual(s, 7, r);
    ck_assert_float_eq(r[0], 0.5f);
    ck_assert_float_eq(r[1], 0.0f);
    wk_sparsify_residual(s, 9, r);
    ck_assert_float_eq(r[0], -0.25f);
    ck_assert_float_eq(r[1], 0.0f);
    wk_sparsify_residual(s, 8, r);
    ck_assert_float_eq(r[0], 0.0f);
    ck_assert_float_eq(r[1], 0.0f);
    wk_sparsify_feedback(s, keys, a, b, 0);
    ck_assert_uint_eq(wk_sparsify_keys(s), 2);
    wk_sparsify_destroy(&s);
}
END_TEST

/* Wide rows (one row per slab) and rows of odd sizes. */
START_TEST(test_wide_rows)
{
    enum { DIM = 70000, N = 5 };
    float *g = malloc(N * DIM * sizeof *g), *ov = malloc(N * DIM * sizeof *ov),
          *r = malloc(DIM * sizeof *r);
    ck_assert_ptr_nonnull(r);
    uint64_t keys[N] = { 1, 2, 3, 4, 5 }, ok[N];
    wk_sparsify_conf_t conf = { WK_SPARSE_TOPK, 0.4f, 0, 0.5f };
    wk_sparsify_t *s = wk_sparsify_new(&conf, DIM);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < N * DIM; i++)
        g[i] = (float)(i / DIM + 1) * ((i & 1) ? 1.0f : -1.0f); /* key 5 largest */
    ck_assert_uint_eq(wk_sparsify_step(s, keys, g, N, ok, ov), 2);
    ck_assert_uint_eq(ok[0], 4);
    ck_assert_uint_eq(ok[1], 5);
    ck_assert_int_eq(memcmp(ov, g + 3 * DIM, 2 * DIM * sizeof *g), 0);
    wk_sparsify_residual(s, 3, r);
    ck_assert_int_eq(memcmp(r, g + 2 * DIM, DIM * sizeof *g), 0);
    ck_assert_uint_ge(wk_sparsify_bytes(s), (size_t)N * DIM * 8);
    wk_sparsify_destroy(&s);
    free(g);
    free(ov);
    free(r);
}
END_TEST

/* Out of memory while pushing: rows without state are sent as they are,
 * nothing is lost.  Memory is made scarce with RLIMIT_AS inside the forked
 * test process (skipped without fork and under ASan, whose allocator
 * reserves its own address space), then restored before any check. */
START_TEST(test_out_of_memory)
{
#ifdef __SANITIZE_ADDRESS__
    return;
#endif
    const char *fork_env = getenv("CK_FORK");
    if (fork_env && strcmp(fork_env, "no") == 0)
        return;
    enum { DIM = 16384, N = 64 };
    float *g = malloc((size_t)N * DIM * sizeof *g), *ov = malloc((size_t)N * DIM * sizeof *ov),
          *r = malloc(DIM * sizeof *r);
    uint64_t keys[N], ok[N];
    ck_assert_ptr_nonnull(g);
    ck_assert_ptr_nonnull(ov);
    ck_assert_ptr_nonnull(r);
    uint64_t st = S_SEED ^ 40;
    for (size_t i = 0; i < N; i++)
        keys[i] = 10 * i + 3;
    for (size_t i = 0; i < (size_t)N * DIM; i++)
        g[i] = s_rand_grad(&st);
    wk_sparsify_conf_t conf = { WK_SPARSE_TOPK, 0.1f, 0, 0.5f };
    wk_sparsify_t *s = wk_sparsify_new(&conf, DIM);
    ck_assert_ptr_nonnull(s);
    uint64_t k0 = 1; /* scratch and a first slab exist before the limit */
    wk_sparsify_step(s, &k0, g, 1, ok, ov);

    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%lu", &pages), 1);
    fclose(f);
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)pages * 4096 + (1u << 20); /* room for a few rows only */
    if (setrlimit(RLIMIT_AS, &lim) != 0)
        return; /* cannot limit here: nothing to test */
    size_t m = wk_sparsify_step(s, keys, g, N, ok, ov);
    size_t nkeys = wk_sparsify_keys(s);
    setrlimit(RLIMIT_AS, &old);

    S_REQUIRE(nkeys > 2 && nkeys < N, "%zu of %d keys got state", nkeys - 1, N);
    S_REQUIRE(m >= N + 1 - nkeys, "%zu rows sent, %zu had no state", m, N + 1 - nkeys);
    /* every key: sent + residual == its gradient */
    size_t next = 0;
    for (size_t i = 0; i < N; i++) {
        const float *sent = NULL;
        if (next < m && ok[next] == keys[i])
            sent = ov + next++ * DIM;
        wk_sparsify_residual(s, keys[i], r);
        for (size_t j = 0; j < DIM; j++) {
            float want = g[i * DIM + j];
            float got = (sent ? sent[j] : 0.0f) + r[j];
            S_REQUIRE(got == want, "key %zu[%zu]: sent + residual %g, pushed %g", i, j,
                      (double)got, (double)want);
        }
    }
    ck_assert_uint_eq(next, m);
    wk_sparsify_destroy(&s);
    free(g);
    free(ov);
    free(r);
}
END_TEST

/* One million keys: growth, compact memory, iteration, lookups. */
START_TEST(test_million_keys)
{
    enum { NK = 1 << 20, CH = 1 << 16 };
    uint64_t *keys = malloc(NK * sizeof *keys), *ok = malloc(CH * sizeof *ok);
    float *g = malloc(CH * sizeof *g), *ov = malloc(CH * sizeof *ov);
    ck_assert_ptr_nonnull(keys);
    ck_assert_ptr_nonnull(ok);
    ck_assert_ptr_nonnull(g);
    ck_assert_ptr_nonnull(ov);
    for (size_t i = 0; i < NK; i++)
        keys[i] = zps_mix64(i, S_SEED);
    for (size_t c = 0; c < NK; c += CH)
        qsort(keys + c, CH, sizeof *keys, s_cmp_u64);
    wk_sparsify_conf_t conf = { WK_SPARSE_TOPK, 0.01f, 0, 0 };
    wk_sparsify_t *s = wk_sparsify_new(&conf, 1);
    ck_assert_ptr_nonnull(s);
    size_t sent = 0;
    for (size_t c = 0; c < NK; c += CH) {
        for (size_t i = 0; i < CH; i++)
            g[i] = (float)(keys[c + i] >> 40) * 0x1p-24f + 1.0f; /* in [1, 2), by key */
        size_t m = wk_sparsify_step(s, keys + c, g, CH, ok, ov);
        S_REQUIRE(m == s_expect_k(0.01f, CH), "chunk %zu: %zu sent", c / CH, m);
        for (size_t i = 0; i < m; i++)
            S_REQUIRE(ov[i] >= 1.98f, "chunk %zu: sent %g, not among the largest", c / CH,
                      (double)ov[i]);
        sent += m;
    }
    ck_assert_uint_eq(wk_sparsify_keys(s), NK);
    size_t bytes = wk_sparsify_bytes(s);
    S_REQUIRE(bytes <= (size_t)NK * 40 + ((size_t)4 << 20), "%zu bytes for 1M keys", bytes);
    size_t cur = 0, zeros = 0, n = 0;
    uint64_t key;
    const float *r;
    while (wk_sparsify_next(s, &cur, &key, &r)) {
        S_REQUIRE(key == keys[n], "iteration order: %zu", n); /* insertion order */
        float want = (float)(key >> 40) * 0x1p-24f + 1.0f;
        S_REQUIRE(*r == 0.0f || *r == want, "key %zu: residual %g", n, (double)*r);
        zeros += *r == 0.0f;
        n++;
    }
    ck_assert_uint_eq(n, NK);
    ck_assert_uint_eq(zeros, sent);
    uint64_t st = S_SEED;
    for (int i = 0; i < 1000; i++) {
        size_t k = zps_rng_next(&st) % NK;
        float v;
        wk_sparsify_residual(s, keys[k], &v);
        float want = (float)(keys[k] >> 40) * 0x1p-24f + 1.0f;
        S_REQUIRE(v == 0.0f || v == want, "lookup %zu", k);
        wk_sparsify_residual(s, keys[k] ^ 1, &v); /* almost surely absent */
        S_REQUIRE(v == 0.0f, "absent key has a residual");
    }
    /* a second round over the same keys adds no state */
    for (size_t i = 0; i < CH; i++)
        g[i] = 1.0f;
    wk_sparsify_step(s, keys, g, CH, ok, ov);
    ck_assert_uint_eq(wk_sparsify_keys(s), NK);
    ck_assert_uint_eq(wk_sparsify_bytes(s), bytes);
    wk_sparsify_destroy(&s);
    free(keys);
    free(ok);
    free(g);
    free(ov);
}
END_TEST

Suite *suite_sparsify(void)
{
    Suite *s = suite_create("sparsify");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_new_and_destroy);
    tcase_add_test(tc, test_topk_count);
    tcase_add_test(tc, test_topk_selection);
    tcase_add_test(tc, test_threshold_example);
    tcase_add_test(tc, test_invariant_topk);
    tcase_add_test(tc, test_invariant_threshold);
    tcase_add_test(tc, test_invariant_quantized);
    tcase_add_test(tc, test_momentum_reference);
    tcase_add_test(tc, test_momentum_example);
    tcase_add_test(tc, test_send_all);
    tcase_add_test(tc, test_feedback_new_key);
    tcase_add_test(tc, test_wide_rows);
    tcase_add_test(tc, test_out_of_memory);
    tcase_add_test(tc, test_million_keys);
    suite_add_tcase(s, tc);
    return s;
}
