/* check_metrics: AUC, logloss and accuracy against hand-computed values.
 *
 * AUC: perfect separation 1, reversed 0, all scores tied 0.5, undefined
 * (one class only) NaN, and a small case with ties worked by hand (below);
 * also the two-class multi-class path and larger random cases against an
 * O(n^2) pair count (float scores through the accumulator; signed doubles
 * through wk_metrics_auc_keys, with -0 tied to +0).  Logloss of known probabilities, clipping of p = 0,
 * accuracy for binary (threshold 0.5) and multi-class (argmax), batches as
 * wk_model_predict returns them, invalid input and reset. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check_suites.h"
#include "wk_metrics.h"
#include "zps_err.h"
#include "zps_rng.h"
#include "zps_sort.h"

static wk_metrics_t *s_new(uint32_t classes)
{
    wk_metrics_t *m = wk_metrics_new(classes);
    ck_assert_ptr_nonnull(m);
    return m;
}

static void s_add(wk_metrics_t *m, size_t n, const float *p, const float *y)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(wk_metrics_add(m, p[i], y[i]), 0);
}

START_TEST(test_auc_extremes)
{
    const float y[] = {0, 0, 1, 0, 1, 1};
    const float sep[] = {0.1f, 0.2f, 0.7f, 0.3f, 0.8f, 0.9f};
    const float rev[] = {0.9f, 0.8f, 0.2f, 0.7f, 0.1f, 0.0f};
    const float tie[] = {0.4f, 0.4f, 0.4f, 0.4f, 0.4f, 0.4f};
    wk_metrics_t *m = s_new(1);
    ck_assert(isnan(wk_metrics_auc(m)));
    ck_assert(isnan(wk_metrics_logloss(m)));
    ck_assert(isnan(wk_metrics_accuracy(m)));
    s_add(m, 6, sep, y);
    ck_assert_double_eq(wk_metrics_auc(m), 1.0);
    ck_assert_double_eq(wk_metrics_accuracy(m), 1.0);
    wk_metrics_reset(m);
    ck_assert_uint_eq(wk_metrics_count(m), 0);
    s_add(m, 6, rev, y);
    ck_assert_double_eq(wk_metrics_auc(m), 0.0);
    ck_assert_double_eq(wk_metrics_accuracy(m), 0.0);
    wk_metrics_reset(m);
    s_add(m, 6, tie, y);
    ck_assert_double_eq(wk_metrics_auc(m), 0.5);
    ck_assert_double_eq_tol(wk_metrics_accuracy(m), 0.5, 1e-12);
    /* only positives: undefined */
    wk_metrics_reset(m);
    s_add(m, 2, sep + 4, y + 4);
    ck_assert(isnan(wk_metrics_auc(m)));
    ck_assert_uint_eq(wk_metrics_count(m), 2);
    wk_metrics_destroy(&m);
    ck_assert_ptr_null(m);
    wk_metrics_destroy(&m);
    ck_assert_ptr_null(wk_metrics_new(0));
}
END_TEST

START_TEST(test_auc_ties_hand)
{
    /* scores/labels: 0.1 n, 0.4 p, 0.4 n, 0.4 n, 0.6 p, 0.8 n, 0.8 p, 0.9 p
     * positives 4, negatives 4 -> 16 pairs.  Per positive, negatives below
     * + 1/2 per tied negative:
     *   0.4 p: 1 (0.1) + 2 * 1/2 = 2
     *   0.6 p: 3
     *   0.8 p: 3 + 1/2 = 3.5
     *   0.9 p: 4
     * AUC = 12.5 / 16 = 0.78125. */
    const float p[] = {0.8f, 0.1f, 0.4f, 0.9f, 0.4f, 0.6f, 0.4f, 0.8f};
    const float y[] = {0, 0, 1, 1, 0, 1, 0, 1};
    wk_metrics_t *m = s_new(1);
    s_add(m, 8, p, y);
    ck_assert_double_eq(wk_metrics_auc(m), 0.78125);
    ck_assert_double_eq(wk_metrics_auc(m), 0.78125); /* repeatable */
    /* accuracy at 0.5: right are 0.1n 0.4n 0.4n 0.6p 0.8p 0.9p -> 6/8 */
    ck_assert_double_eq(wk_metrics_accuracy(m), 0.75);
    ck_assert_uint_eq(wk_metrics_count(m), 8);
    wk_metrics_destroy(&m);
}
END_TEST

START_TEST(test_auc_random)
{
    uint64_t s = 77;
    enum { N = 600 };
    float p[N], y[N];
    for (int i = 0; i < N; i++) {
        uint64_t r = zps_rng_next(&s);
        p[i] = (float)((r >> 40) % 50) / 50; /* many ties */
        y[i] = (float)((r >> 20) % 3 == 0 ? 1 : (p[i] > 0.6f));
    }
    double num = 0, np = 0, nn = 0;
    for (int i = 0; i < N; i++) {
        np += y[i] == 1;
        nn += y[i] == 0;
        if (y[i] != 1)
            continue;
        for (int j = 0; j < N; j++)
            if (y[j] == 0)
                num += p[i] > p[j] ? 1 : p[i] == p[j] ? 0.5 : 0;
    }
    wk_metrics_t *m = s_new(1);
    s_add(m, N, p, y);
    ck_assert_double_eq_tol(wk_metrics_auc(m), num / (np * nn), 1e-12);
    wk_metrics_destroy(&m);
}
END_TEST

/* The AUC of scores given as keys (zps-datagen's path): doubles of any
 * sign, -0 tied with +0, against an O(n^2) pair count; both arrays sorted. */
START_TEST(test_auc_keys)
{
    uint64_t s = 5;
    enum { N = 3000 };
    static double v[N];
    static int y[N];
    static uint64_t pos[N], neg[N];
    size_t np = 0, nn = 0;
    for (int i = 0; i < N; i++) {
        uint64_t r = zps_rng_next(&s);
        v[i] = (double)((int64_t)(r >> 54) - 512) / 64; /* 1024 values around 0: ties */
        if (i % 10 == 0)
            v[i] = i % 20 ? -0.0 : 0.0;
        y[i] = (r >> 3) % 4 == 0 || v[i] > 2;
        if (y[i])
            pos[np++] = zps_sort_key_f64(v[i]);
        else
            neg[nn++] = zps_sort_key_f64(v[i]);
    }
    double num = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; y[i] && j < N; j++)
            if (!y[j])
                num += v[i] > v[j] ? 1 : v[i] == v[j] ? 0.5 : 0;
    ck_assert(np > 100 && nn > 100);
    ck_assert_double_eq_tol(wk_metrics_auc_keys(pos, np, neg, nn), num / ((double)np * (double)nn),
                            1e-12);
    for (size_t i = 1; i < np; i++)
        ck_assert(pos[i - 1] <= pos[i]);
    for (size_t i = 1; i < nn; i++)
        ck_assert(neg[i - 1] <= neg[i]);
    ck_assert(isnan(wk_metrics_auc_keys(pos, np, neg, 0)));
    ck_assert(isnan(wk_metrics_auc_keys(pos, 0, neg, nn)));
    /* -0 and +0 are one score: a tie */
    wk_metrics_t *m = s_new(1);
    ck_assert_int_eq(wk_metrics_add(m, -0.0f, 1), 0);
    ck_assert_int_eq(wk_metrics_add(m, 0.0f, 0), 0);
    ck_assert_double_eq(wk_metrics_auc(m), 0.5);
    wk_metrics_destroy(&m);
}
END_TEST

START_TEST(test_logloss)
{
    /* -(log 0.8 + log(1 - 0.3) + log 0.5) / 3 = 0.4243218938 */
    wk_metrics_t *m = s_new(1);
    const float p[] = {0.8f, 0.3f, 0.5f}, y[] = {1, 0, 1};
    s_add(m, 3, p, y);
    double want = -(log((double)0.8f) + log(1 - (double)0.3f) + log(0.5)) / 3;
    ck_assert_double_eq_tol(wk_metrics_logloss(m), want, 1e-12);
    ck_assert_double_eq_tol(want, 0.4243218938, 1e-7);
    /* a certain mistake is clipped: -log(1e-15) */
    wk_metrics_reset(m);
    ck_assert_int_eq(wk_metrics_add(m, 0.0f, 1), 0);
    ck_assert_double_eq_tol(wk_metrics_logloss(m), -log(1e-15), 1e-9);
    ck_assert_int_eq(wk_metrics_add(m, NAN, 1), ZPS_EINVAL);
    ck_assert_uint_eq(wk_metrics_count(m), 1);
    wk_metrics_destroy(&m);

    /* multi-class: -(log 0.7 + log 0.2) / 2; accuracy 1/2 */
    m = s_new(3);
    const float a[] = {0.7f, 0.2f, 0.1f}, b[] = {0.5f, 0.2f, 0.3f};
    ck_assert_int_eq(wk_metrics_add_probs(m, a, 0), 0);
    ck_assert_int_eq(wk_metrics_add_probs(m, b, 1), 0);
    ck_assert_int_eq(wk_metrics_add_probs(m, b, 3), ZPS_EINVAL);
    ck_assert_int_eq(wk_metrics_add_probs(m, b, 0.5f), ZPS_EINVAL);
    ck_assert_int_eq(wk_metrics_add(m, 0.5f, 1), ZPS_EINVAL);
    ck_assert_uint_eq(wk_metrics_count(m), 2);
    ck_assert_double_eq_tol(wk_metrics_logloss(m), -(log((double)0.7f) + log((double)0.2f)) / 2,
                            1e-12);
    ck_assert_double_eq(wk_metrics_accuracy(m), 0.5);
    ck_assert(isnan(wk_metrics_auc(m)));
    wk_metrics_destroy(&m);
}
END_TEST

START_TEST(test_accuracy_and_preds)
{
    /* binary batch from predict: loss taken as given */
    wk_metrics_t *m = s_new(1);
    const float y[] = {1, 0, 0, 1}, out[] = {0.9f, 0.6f, 0.2f, 0.5f};
    ck_assert_int_eq(wk_metrics_add_preds(m, 4, y, out, NULL, 2.0), 0);
    ck_assert_uint_eq(wk_metrics_count(m), 4);
    ck_assert_double_eq(wk_metrics_logloss(m), 0.5);
    ck_assert_double_eq(wk_metrics_accuracy(m), 0.75); /* 0.5 counts as class 1 */
    /* positives 0.9, 0.5; negatives 0.6, 0.2: pairs won 2 + 1 of 4 */
    ck_assert_double_eq(wk_metrics_auc(m), 0.75);
    wk_metrics_destroy(&m);

    /* multi-class batch: cls required; a bad label is skipped */
    m = s_new(4);
    const float yc[] = {2, 0, 3, 1, 7};
    const float pc[] = {0.6f, 0.4f, 0.9f, 0.5f, 0.3f};
    const uint32_t cls[] = {2, 1, 3, 1, 0};
    ck_assert_int_eq(wk_metrics_add_preds(m, 5, yc, pc, NULL, 1.0), ZPS_EINVAL);
    ck_assert_int_eq(wk_metrics_add_preds(m, 5, yc, pc, cls, 2.0), 0);
    ck_assert_uint_eq(wk_metrics_count(m), 4);
    ck_assert_double_eq(wk_metrics_accuracy(m), 0.75);
    ck_assert_double_eq(wk_metrics_logloss(m), 0.5);
    wk_metrics_destroy(&m);

    /* two classes: AUC from P(class 1) */
    m = s_new(2);
    const float y2[] = {1, 0, 0, 1};
    const float p2[] = {0.9f, 0.8f, 0.7f, 0.6f}; /* of the predicted class */
    const uint32_t c2[] = {1, 0, 0, 0};          /* P(1): 0.9 0.2 0.3 0.4 */
    ck_assert_int_eq(wk_metrics_add_preds(m, 4, y2, p2, c2, 1.0), 0);
    ck_assert_double_eq(wk_metrics_auc(m), 1.0);
    ck_assert_double_eq(wk_metrics_accuracy(m), 0.75);
    const float pr[] = {0.35f, 0.65f};
    ck_assert_int_eq(wk_metrics_add_probs(m, pr, 0), 0); /* P(1) = 0.65, a negative */
    ck_assert_double_eq_tol(wk_metrics_auc(m), 5.0 / 6, 1e-12);
    ck_assert_double_eq(wk_metrics_accuracy(m), 0.6);
    wk_metrics_destroy(&m);
}
END_TEST

Suite *suite_metrics(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_auc_extremes);
    tcase_add_test(tc, test_auc_ties_hand);
    tcase_add_test(tc, test_auc_random);
    tcase_add_test(tc, test_auc_keys);
    tcase_add_test(tc, test_logloss);
    tcase_add_test(tc, test_accuracy_and_preds);
    suite_add_tcase(s, tc);
    return s;
}
