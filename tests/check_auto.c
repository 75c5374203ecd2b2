/* check_auto: the --epochs auto policy (wk_auto), the holdout store
 * (wk_holdout) and the step-size diagnostics (wk_eval's verdict and its
 * once-only warnings).
 *
 * - holdout choice: wk_auto_pick's three conditions one at a time (hash 0
 *   mod 20, fewer than 10000 held, at most 1 in 20 of the rows seen: the
 *   first row is never held); the row hash depends on label, ids and values
 *   and not on the row's place in a batch; wk_holdout takes exactly the
 *   rows wk_auto_pick takes, copies them, and knows their hashes.
 * - decisions from sequences of holdout losses (wk_auto_pass): no stop at
 *   the run's first pass (also a resumed run's), a stop after the first
 *   pass without a 0.1% gain on the best (the boundary itself is no gain),
 *   the cap at the last allowed pass (30), doubling on a fall of more than
 *   5% (5% itself is not enough) from the second pass on, up to 16x, never
 *   at the last allowed pass nor without growth allowed; one step back
 *   when the pass after a doubling is no better, after which the step
 *   never grows again and the run goes on (unless that pass is the last
 *   allowed).
 * - diagnostics: the verdict's thresholds (1.5 h, AUC 0.7 / 0.55 with
 *   spread 0.1, train loss without held-out metrics), and wk_diagnose
 *   saying each warning once and "too small" never after "too large". */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_suites.h"
#include "wk_auto.h"
#include "wk_eval.h"
#include "wk_holdout.h"

/* ---- holdout choice ------------------------------------------------------ */

START_TEST(test_pick_rule)
{
    /* the hash must be 0 mod WK_HOLDOUT_EVERY */
    ck_assert_int_eq(wk_auto_pick(40, 0, 1000), 1);
    for (uint64_t h = 41; h < 40 + WK_HOLDOUT_EVERY; h++)
        ck_assert_int_eq(wk_auto_pick(h, 0, 1000), 0);
    /* at most 1 in WK_HOLDOUT_EVERY of the rows seen (this one included) */
    ck_assert_int_eq(wk_auto_pick(0, 0, 1), 0);                          /* the first row */
    ck_assert_int_eq(wk_auto_pick(0, 0, WK_HOLDOUT_EVERY - 1), 0);
    ck_assert_int_eq(wk_auto_pick(0, 0, WK_HOLDOUT_EVERY), 1);
    ck_assert_int_eq(wk_auto_pick(0, 1, 2 * WK_HOLDOUT_EVERY - 1), 0);
    ck_assert_int_eq(wk_auto_pick(0, 1, 2 * WK_HOLDOUT_EVERY), 1);
    /* the cap */
    ck_assert_int_eq(wk_auto_pick(0, WK_HOLDOUT_CAP - 1, 1u << 30), 1);
    ck_assert_int_eq(wk_auto_pick(0, WK_HOLDOUT_CAP, 1u << 30), 0);
}
END_TEST

/* Two rows: {label, ids, vals} each, in a batch of its own. */
typedef struct {
    float labels[3];
    size_t offsets[4];
    uint64_t ids[8];
    float vals[8];
    wk_batch_t b;
} s_rows_t;

static void s_rows(s_rows_t *r)
{
    memset(r, 0, sizeof *r);
    /* row 0: 1 | 5:1 9:0.5; row 1: 0 | 7:2; row 2: a copy of row 0 */
    r->labels[0] = 1;
    r->labels[1] = 0;
    r->labels[2] = 1;
    const uint64_t ids[] = {5, 9, 7, 5, 9};
    const float vals[] = {1, 0.5f, 2, 1, 0.5f};
    memcpy(r->ids, ids, sizeof ids);
    memcpy(r->vals, vals, sizeof vals);
    r->offsets[0] = 0;
    r->offsets[1] = 2;
    r->offsets[2] = 3;
    r->offsets[3] = 5;
    r->b = (wk_batch_t){3, r->labels, r->offsets, r->ids, r->vals};
}

START_TEST(test_row_hash)
{
    s_rows_t r;
    s_rows(&r);
    uint64_t h0 = wk_auto_row_hash(&r.b, 0), h1 = wk_auto_row_hash(&r.b, 1);
    ck_assert(h0 != 0 && h1 != 0);
    ck_assert(h0 != h1);
    /* content, not position: row 2 equals row 0 */
    ck_assert(wk_auto_row_hash(&r.b, 2) == h0);
    /* a batch that starts at row 1 gives row 1 the same hash */
    wk_batch_t tail = {2, r.labels + 1, r.offsets + 1, r.ids, r.vals};
    ck_assert(wk_auto_row_hash(&tail, 0) == h1);
    /* label, id and value each count */
    r.labels[2] = 0;
    ck_assert(wk_auto_row_hash(&r.b, 2) != h0);
    r.labels[2] = 1;
    r.ids[4] = 10;
    ck_assert(wk_auto_row_hash(&r.b, 2) != h0);
    r.ids[4] = 9;
    r.vals[4] = 0.25f;
    ck_assert(wk_auto_row_hash(&r.b, 2) != h0);
    r.vals[4] = 0.5f;
    ck_assert(wk_auto_row_hash(&r.b, 2) == h0);
}
END_TEST

START_TEST(test_holdout_store)
{
    s_rows_t r;
    s_rows(&r);
    wk_holdout_t *ho = wk_holdout_new();
    ck_assert_ptr_nonnull(ho);
    ck_assert_int_eq(wk_holdout_rows(ho)->n, 0);
    ck_assert_int_eq(wk_holdout_has(ho, 20), 0); /* empty, nothing allocated yet */
    /* offer row 0 under made-up hashes: 19 rows not taken (the first 19
     * because too few rows were seen, even with hashes 0 mod 20) */
    for (int i = 0; i < WK_HOLDOUT_EVERY - 1; i++)
        ck_assert_int_eq(wk_holdout_offer(ho, &r.b, 0, (uint64_t)(i + 1) * WK_HOLDOUT_EVERY), 0);
    /* the 20th row seen: a hash not 0 mod 20 is not taken; the 21st, with
     * a hash 0 mod 20, is */
    ck_assert_int_eq(wk_holdout_offer(ho, &r.b, 1, 7 * WK_HOLDOUT_EVERY + 3), 0);
    ck_assert_int_eq(wk_holdout_offer(ho, &r.b, 1, 1000 * WK_HOLDOUT_EVERY), 1);
    ck_assert_int_eq(wk_holdout_has(ho, 1000 * WK_HOLDOUT_EVERY), 1);
    ck_assert_int_eq(wk_holdout_has(ho, 7 * WK_HOLDOUT_EVERY + 3), 0);
    ck_assert_int_eq(wk_holdout_has(ho, 1 * WK_HOLDOUT_EVERY), 0);
    /* the second needs 40 rows seen: 21 so far */
    for (int i = 0; i < 18; i++)
        ck_assert_int_eq(wk_holdout_offer(ho, &r.b, 0, 2000 * WK_HOLDOUT_EVERY), 0);
    ck_assert_int_eq(wk_holdout_offer(ho, &r.b, 0, 3000 * WK_HOLDOUT_EVERY), 1);
    const wk_batch_t *h = wk_holdout_rows(ho);
    ck_assert_int_eq(h->n, 2);
    /* copies of row 1 then row 0, in a batch of their own */
    ck_assert(h->labels[0] == 0 && h->labels[1] == 1);
    ck_assert_uint_eq(h->offsets[0], 0);
    ck_assert_uint_eq(h->offsets[1], 1);
    ck_assert_uint_eq(h->offsets[2], 3);
    ck_assert(h->ids[0] == 7 && h->vals[0] == 2);
    ck_assert(h->ids[1] == 5 && h->ids[2] == 9 && h->vals[2] == 0.5f);
    ck_assert(h->ids != r.ids);
    wk_holdout_destroy(&ho);
    ck_assert_ptr_null(ho);
    wk_holdout_destroy(&ho); /* a second destroy is a no-op */
}
END_TEST

START_TEST(test_holdout_cap)
{
    s_rows_t r;
    s_rows(&r);
    wk_holdout_t *ho = wk_holdout_new();
    ck_assert_ptr_nonnull(ho);
    /* every row offered has a fresh hash 0 mod 20: one in 20 is taken, up
     * to the cap, and every taken hash is known */
    uint64_t taken = 0;
    for (uint64_t i = 1; i <= (uint64_t)WK_HOLDOUT_EVERY * (WK_HOLDOUT_CAP + 50); i++) {
        int t = wk_holdout_offer(ho, &r.b, i % 3, i * WK_HOLDOUT_EVERY);
        ck_assert_int_ge(t, 0);
        if (t) {
            taken++;
            ck_assert_uint_eq(i % WK_HOLDOUT_EVERY, 0);
        }
    }
    ck_assert_uint_eq(taken, WK_HOLDOUT_CAP);
    ck_assert_uint_eq(wk_holdout_rows(ho)->n, WK_HOLDOUT_CAP);
    ck_assert_int_eq(wk_holdout_has(ho, (uint64_t)WK_HOLDOUT_EVERY * WK_HOLDOUT_EVERY), 1);
    ck_assert_int_eq(wk_holdout_has(ho, (uint64_t)WK_HOLDOUT_EVERY * (WK_HOLDOUT_EVERY + 1)), 0);
    wk_holdout_destroy(&ho);
}
END_TEST

/* ---- decisions ------------------------------------------------------------- */

/* Feeds losses[0..n) as passes first, first+1, ... of a run allowing max
 * passes; the verdicts into v[] and the multiplier after each into scale[]. */
static void s_run(wk_auto_t *a, const double *losses, size_t n, uint32_t first, uint32_t max,
                  wk_auto_verdict_t *v, float *scale)
{
    for (size_t i = 0; i < n; i++) {
        wk_auto_pass(a, losses[i], first + (uint32_t)i, first, max, &v[i]);
        scale[i] = a->lr_scale;
    }
}

START_TEST(test_auto_first_pass)
{
    wk_auto_t a;
    wk_auto_verdict_t v;
    wk_auto_init(&a, 1);
    ck_assert(isinf(a.best) && a.lr_scale == 1.0f && a.can_grow == 1 && a.grew == 0);
    /* the first pass never stops, never doubles */
    wk_auto_pass(&a, 0.7, 0, 0, 30, &v);
    ck_assert_int_eq(v.stop, WK_AUTO_GO_ON);
    ck_assert_int_eq(v.improved, 1);
    ck_assert_int_eq(v.doubled, 0);
    ck_assert(a.best == 0.7 && a.best_pass == 0);
    /* a resumed run (first pass 5): the same, whatever the loss */
    wk_auto_init(&a, 0);
    wk_auto_pass(&a, NAN, 5, 5, 30, &v);
    ck_assert_int_eq(v.stop, WK_AUTO_GO_ON);
    ck_assert_int_eq(v.improved, 0);
    wk_auto_pass(&a, 0.7, 6, 5, 30, &v); /* NAN was not a best: 0.7 improves */
    ck_assert_int_eq(v.stop, WK_AUTO_GO_ON);
    ck_assert_int_eq(v.improved, 1);
    /* the second pass no better: stop, naming the best and its pass */
    wk_auto_pass(&a, 0.7, 7, 5, 30, &v);
    ck_assert_int_eq(v.stop, WK_AUTO_STOP_NO_GAIN);
    ck_assert(v.prev_best == 0.7 && v.prev_best_pass == 6);
}
END_TEST

START_TEST(test_auto_stop_tolerance)
{
    /* no growth: only stopping counts */
    const double l0 = 0.5;
    double just = l0 * (1 - WK_AUTO_TOL); /* exactly 0.1% better: not a gain */
    double more = nextafter(just, 0);     /* a hair more: a gain */
    wk_auto_t a;
    wk_auto_verdict_t v;
    wk_auto_init(&a, 0);
    wk_auto_pass(&a, l0, 0, 0, 30, &v);
    wk_auto_pass(&a, more, 1, 0, 30, &v);
    ck_assert_int_eq(v.improved, 1);
    ck_assert_int_eq(v.stop, WK_AUTO_GO_ON);
    wk_auto_init(&a, 0);
    wk_auto_pass(&a, l0, 0, 0, 30, &v);
    wk_auto_pass(&a, just, 1, 0, 30, &v);
    ck_assert_int_eq(v.improved, 0);
    ck_assert_int_eq(v.stop, WK_AUTO_STOP_NO_GAIN);
    /* the best is still updated by a loss a little lower */
    ck_assert(a.best == just && a.best_pass == 1);
    /* a worse pass after a better one stops, measured against the best */
    const double seq[] = {0.6, 0.5, 0.45, 0.46};
    wk_auto_verdict_t vs[4];
    float sc[4];
    wk_auto_init(&a, 0);
    s_run(&a, seq, 4, 0, 30, vs, sc);
    ck_assert(vs[0].stop == WK_AUTO_GO_ON && vs[1].stop == WK_AUTO_GO_ON &&
              vs[2].stop == WK_AUTO_GO_ON && vs[3].stop == WK_AUTO_STOP_NO_GAIN);
    ck_assert(vs[3].prev_best == 0.45 && vs[3].prev_best_pass == 2);
    ck_assert(a.best == 0.45 && a.best_pass == 2);
    for (int i = 0; i < 4; i++)
        ck_assert(vs[i].doubled == 0 && sc[i] == 1.0f); /* growth off */
}
END_TEST

START_TEST(test_auto_cap)
{
    /* 1% better every pass: neither a stop nor a doubling until the cap */
    double seq[ZPS_AUTO_MAX_EPOCHS];
    wk_auto_verdict_t v[ZPS_AUTO_MAX_EPOCHS];
    float sc[ZPS_AUTO_MAX_EPOCHS];
    seq[0] = 0.7;
    for (unsigned i = 1; i < ZPS_AUTO_MAX_EPOCHS; i++)
        seq[i] = seq[i - 1] * 0.99;
    wk_auto_t a;
    wk_auto_init(&a, 1);
    s_run(&a, seq, ZPS_AUTO_MAX_EPOCHS, 0, ZPS_AUTO_MAX_EPOCHS, v, sc);
    ck_assert_int_eq(ZPS_AUTO_MAX_EPOCHS, 30);
    for (unsigned i = 0; i + 1 < ZPS_AUTO_MAX_EPOCHS; i++)
        ck_assert_msg(v[i].stop == WK_AUTO_GO_ON && !v[i].doubled, "pass %u", i + 1);
    ck_assert_int_eq(v[ZPS_AUTO_MAX_EPOCHS - 1].stop, WK_AUTO_STOP_CAP);
    /* the cap of a shorter run (e.g. a resumed one: first 27 of 30) */
    wk_auto_init(&a, 1);
    s_run(&a, seq, 3, 27, 30, v, sc);
    ck_assert(v[0].stop == WK_AUTO_GO_ON && v[1].stop == WK_AUTO_GO_ON &&
              v[2].stop == WK_AUTO_STOP_CAP);
}
END_TEST

START_TEST(test_auto_doubling)
{
    /* 10% better every pass: doubles after passes 2, 3, 4, 5 (2, 4, 8, 16
     * x), then stays at 16 x; never after the first pass */
    double seq[12];
    wk_auto_verdict_t v[12];
    float sc[12];
    seq[0] = 1.0;
    for (int i = 1; i < 12; i++)
        seq[i] = seq[i - 1] * 0.9;
    wk_auto_t a;
    wk_auto_init(&a, 1);
    s_run(&a, seq, 12, 0, 30, v, sc);
    const float want[12] = {1, 2, 4, 8, 16, 16, 16, 16, 16, 16, 16, 16};
    for (int i = 0; i < 12; i++) {
        ck_assert_msg(sc[i] == want[i], "pass %d: %g x, want %g", i + 1, (double)sc[i],
                      (double)want[i]);
        ck_assert_int_eq(v[i].doubled, i >= 1 && i <= 4);
        ck_assert_int_eq(v[i].stepped_back, 0);
        ck_assert_int_eq(v[i].stop, WK_AUTO_GO_ON);
    }
    /* exactly 5% is not more than 5%; a hair more is */
    double just = 0.5 * (1 - WK_AUTO_GROW_TOL);
    wk_auto_init(&a, 1);
    wk_auto_pass(&a, 0.5, 0, 0, 30, &v[0]);
    wk_auto_pass(&a, just, 1, 0, 30, &v[1]);
    ck_assert(v[1].doubled == 0 && a.lr_scale == 1.0f);
    wk_auto_init(&a, 1);
    wk_auto_pass(&a, 0.5, 0, 0, 30, &v[0]);
    wk_auto_pass(&a, nextafter(just, 0), 1, 0, 30, &v[1]);
    ck_assert(v[1].doubled == 1 && a.lr_scale == 2.0f);
    /* not at the last allowed pass, and not without growth */
    wk_auto_init(&a, 1);
    s_run(&a, seq, 3, 0, 3, v, sc);
    ck_assert(v[1].doubled == 1 && v[2].doubled == 0 && v[2].stop == WK_AUTO_STOP_CAP);
    ck_assert(sc[2] == 2.0f);
    wk_auto_init(&a, 0);
    s_run(&a, seq, 6, 0, 30, v, sc);
    for (int i = 0; i < 6; i++)
        ck_assert(v[i].doubled == 0 && sc[i] == 1.0f);
}
END_TEST

START_TEST(test_auto_step_back)
{
    /* 1.0, 0.8 (doubles), 0.85 (no better: back to 1 x, no stop), 0.7
     * (15% better, but growth is over), 0.75 (no better: stop) */
    const double seq[] = {1.0, 0.8, 0.85, 0.7, 0.75};
    wk_auto_verdict_t v[8];
    float sc[8];
    wk_auto_t a;
    wk_auto_init(&a, 1);
    s_run(&a, seq, 5, 0, 30, v, sc);
    ck_assert(v[1].doubled && sc[1] == 2.0f);
    ck_assert(v[2].stepped_back && !v[2].doubled && sc[2] == 1.0f);
    ck_assert_int_eq(v[2].stop, WK_AUTO_GO_ON);
    ck_assert(v[2].prev_best == 0.8);
    ck_assert_int_eq(a.can_grow, 0);
    ck_assert(!v[3].doubled && !v[3].stepped_back && sc[3] == 1.0f && v[3].stop == WK_AUTO_GO_ON);
    ck_assert(!v[4].stepped_back && v[4].stop == WK_AUTO_STOP_NO_GAIN);
    ck_assert(v[4].prev_best == 0.7 && v[4].prev_best_pass == 3);

    /* the pass after a doubling improves by less than 0.1%: back too (and
     * its loss is the new best) */
    const double seq2[] = {1.0, 0.8, 0.7995};
    wk_auto_init(&a, 1);
    s_run(&a, seq2, 3, 0, 30, v, sc);
    ck_assert(v[2].stepped_back && v[2].stop == WK_AUTO_GO_ON && sc[2] == 1.0f);
    ck_assert(a.best == 0.7995 && a.best_pass == 2);

    /* the pass after a doubling is better: no step back, and it may double
     * again */
    const double seq3[] = {1.0, 0.8, 0.7};
    wk_auto_init(&a, 1);
    s_run(&a, seq3, 3, 0, 30, v, sc);
    ck_assert(!v[2].stepped_back && v[2].doubled && sc[2] == 4.0f);

    /* the step back at the last allowed pass: that pass stops the run */
    wk_auto_init(&a, 1);
    s_run(&a, seq, 3, 0, 3, v, sc);
    ck_assert(v[1].doubled && v[2].stepped_back && v[2].stop == WK_AUTO_STOP_NO_GAIN);

    /* at 16 x it grows no more; a pass after a pass that did not double
     * is no step back but a stop */
    double seq4[7] = {1.0};
    for (int i = 1; i < 6; i++)
        seq4[i] = seq4[i - 1] * 0.9;
    seq4[6] = seq4[5];
    wk_auto_init(&a, 1);
    s_run(&a, seq4, 7, 0, 30, v, sc);
    ck_assert(sc[4] == 16.0f && sc[5] == 16.0f && !v[5].doubled);
    ck_assert(!v[6].stepped_back && v[6].stop == WK_AUTO_STOP_NO_GAIN && sc[6] == 16.0f);
    /* a step back from 16 x halves it once, to 8 x */
    const double seq5[] = {1.0, 0.9, 0.81, 0.729, 0.6561, 0.7};
    wk_auto_init(&a, 1);
    s_run(&a, seq5, 6, 0, 30, v, sc);
    ck_assert(sc[4] == 16.0f && v[4].doubled);
    ck_assert(v[5].stepped_back && sc[5] == 8.0f && v[5].stop == WK_AUTO_GO_ON);
}
END_TEST

/* ---- diagnostics ----------------------------------------------------------- */

START_TEST(test_diag_verdict)
{
    const double q = 0.25, h = wk_diag_rate_loss(q);
    ck_assert(fabs(h - 0.5623351446188083) < 1e-12);
    ck_assert(fabs(wk_diag_rate_loss(0.5) - log(2.0)) < 1e-12);
    ck_assert(wk_diag_rate_loss(0) == 0 && wk_diag_rate_loss(1) == 0 &&
              wk_diag_rate_loss(NAN) == 0);
    wk_eval_t ev = {0.45, 0.8, 0.8, 0.3, 100};
    ck_assert_int_eq(wk_diag_verdict(0.5, q, &ev, q), 0);
    /* too large: held-out loss above 1.5 h (the train loss does not count) */
    ev.logloss = 1.5 * h * 1.01;
    ck_assert_int_eq(wk_diag_verdict(0.1, q, &ev, q) & WK_DIAG_LARGE, WK_DIAG_LARGE);
    ev.logloss = 1.5 * h * 0.99;
    ck_assert_int_eq(wk_diag_verdict(100, q, &ev, q) & WK_DIAG_LARGE, 0);
    /* ... or without held-out metrics the train loss above 1.5 h_train */
    ck_assert_int_eq(wk_diag_verdict(1.5 * h * 1.01, q, NULL, NAN), WK_DIAG_LARGE);
    ck_assert_int_eq(wk_diag_verdict(1.5 * h * 0.99, q, NULL, NAN), 0);
    /* too small: loss >= h and AUC >= 0.7, or >= 0.55 with spread < 0.1 */
    ev = (wk_eval_t){h, 0.7, 0.75, 0.3, 100};
    ck_assert_int_eq(wk_diag_verdict(0.5, q, &ev, q), WK_DIAG_SMALL);
    ev.auc = 0.69;
    ck_assert_int_eq(wk_diag_verdict(0.5, q, &ev, q), 0);
    ev.spread = 0.09;
    ck_assert_int_eq(wk_diag_verdict(0.5, q, &ev, q), WK_DIAG_SMALL);
    ev.auc = 0.54;
    ck_assert_int_eq(wk_diag_verdict(0.5, q, &ev, q), 0);
    ev = (wk_eval_t){h * 0.999, 0.9, 0.75, 0.05, 100};
    ck_assert_int_eq(wk_diag_verdict(0.5, q, &ev, q), 0);
    /* no label rate for the held-out data: no verdict from it */
    ev.logloss = 5;
    ck_assert_int_eq(wk_diag_verdict(0.1, q, &ev, NAN), 0);
}
END_TEST

/* Lines with "warn:" in what log wrote to f since the last call. */
static int s_warnings(FILE *f, long *pos)
{
    fflush(f);
    fseek(f, *pos, SEEK_SET);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, "warn:") != NULL;
    *pos = ftell(f);
    fseek(f, 0, SEEK_END); /* the log writes next */
    return n;
}

START_TEST(test_diagnose_once)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    zps_log_t *log = zps_log_new("worker", 0, f);
    ck_assert_ptr_nonnull(log);
    long pos = 0;
    const double q = 0.25, h = wk_diag_rate_loss(q);
    wk_eval_t small = {h, 0.75, 0.75, 0.3, 100}, large = {2 * h, 0.75, 0.75, 0.3, 100};
    wk_diag_t d = {0, 0};
    /* classes > 1: nothing */
    wk_diagnose(&d, log, 10, 0, 0.5, q, &small, q, 0.07, 0.07);
    ck_assert_int_eq(s_warnings(f, &pos), 0);
    /* too small, once */
    wk_diagnose(&d, log, 1, 0, 0.5, q, &small, q, 0.07, 0.07);
    ck_assert_int_eq(s_warnings(f, &pos), 1);
    ck_assert(d.warned_small && !d.warned_large);
    wk_diagnose(&d, log, 1, 1, 0.5, q, &small, q, 0.07, 0.07);
    ck_assert_int_eq(s_warnings(f, &pos), 0);
    /* too large, once */
    wk_diagnose(&d, log, 1, 2, 0.5, q, &large, q, 0.07, 0.07);
    wk_diagnose(&d, log, 1, 3, 0.5, q, &large, q, 0.07, 0.07);
    ck_assert_int_eq(s_warnings(f, &pos), 1);
    /* after too large, too small is never said */
    wk_diag_t d2 = {0, 0};
    wk_diagnose(&d2, log, 1, 0, 0.5, q, &large, q, 0.07, 0.07);
    ck_assert_int_eq(s_warnings(f, &pos), 1);
    wk_diagnose(&d2, log, 1, 1, 0.5, q, &small, q, 0.07, 0.07);
    ck_assert_int_eq(s_warnings(f, &pos), 0);
    ck_assert(d2.warned_large && !d2.warned_small);
    zps_log_destroy(&log);
    fclose(f);
}
END_TEST

Suite *suite_auto(void)
{
    Suite *s = suite_create("auto");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_pick_rule);
    tcase_add_test(tc, test_row_hash);
    tcase_add_test(tc, test_holdout_store);
    tcase_add_test(tc, test_holdout_cap);
    tcase_add_test(tc, test_auto_first_pass);
    tcase_add_test(tc, test_auto_stop_tolerance);
    tcase_add_test(tc, test_auto_cap);
    tcase_add_test(tc, test_auto_doubling);
    tcase_add_test(tc, test_auto_step_back);
    tcase_add_test(tc, test_diag_verdict);
    tcase_add_test(tc, test_diagnose_once);
    suite_add_tcase(s, tc);
    return s;
}
