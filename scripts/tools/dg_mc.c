/* dg_mc: the multiclass task (see dg_mc.h). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dg_mc.h"
#include "dg_num.h"
#include "dg_out.h"
#include "dg_truth.h"
#include "zps_hash.h"
#include "zps_rng.h"

/* Domain-separation constant of the teacher's weights. */
#define S_KEY_TEACH 0x1f83d9abfb41bd6bULL

typedef struct {
    uint32_t d, h, c;
    double noise;
    double margin;   /* absolute: rows with top1 - top2 logit below it are redrawn */
    double logit_sd; /* std of the logits on the calibration sample */
    uint64_t key_rows;
    double *w1, *b1, *w2, *b2;   /* h*d, h, c*h, c */
} s_mc_t;

/* Output logits of the teacher (without b2 when b2 is NULL). */
static void s_mc_forward(const s_mc_t *m, const double *x, double *hid, double *out)
{
    for (uint32_t j = 0; j < m->h; j++) {
        const double *w = &m->w1[(size_t)j * m->d];
        double a = m->b1[j];
        for (uint32_t i = 0; i < m->d; i++)
            a += w[i] * x[i];
        hid[j] = a > 0 ? a : 0;
    }
    for (uint32_t c = 0; c < m->c; c++) {
        const double *w = &m->w2[(size_t)c * m->h];
        double a = m->b2[c];
        for (uint32_t j = 0; j < m->h; j++)
            a += w[j] * hid[j];
        out[c] = a;
    }
}

/* Index of the largest of v[0..n) (the first on ties); *gap = its excess
 * over the second largest. */
static uint32_t s_top2(const double *v, uint32_t n, double *gap)
{
    uint32_t best = 0;
    double top = v[0], second = -INFINITY;
    for (uint32_t i = 1; i < n; i++) {
        if (v[i] > top) {
            second = top;
            top = v[i];
            best = i;
        } else if (v[i] > second) {
            second = v[i];
        }
    }
    *gap = top - second;
    return best;
}

typedef struct {
    double *x, *hid, *out;
    char *txt;        /* the printed row features, with leading spaces */
    size_t txtlen;
    uint64_t draws;   /* x vectors drawn (rejection by margin) */
} s_mc_row_t;

/* Draws x, rounds it to its printed form (text in r->txt when want_text)
 * and returns the teacher's class on the rounded values; *label gets the
 * written label.  With a margin, x is redrawn (from the same row stream)
 * until the teacher's top two logits differ by at least the margin; a
 * candidate is rounded only if its unrounded gap is within 1e-3 of that
 * (rounding moves the logits by ~1e-5), the decision is made on the
 * rounded values. */
static uint32_t s_mc_row(const s_mc_t *m, uint32_t split, uint64_t idx, s_mc_row_t *r,
                         uint32_t *label, int want_text)
{
    uint64_t rng = dg_row_rng(m->key_rows, split, idx);
    uint32_t cls, tries = 0;
    double gap;
    for (;;) {
        r->draws++;
        for (uint32_t i = 0; i < m->d; i += 2) {
            double g0, g1;
            uint64_t h1 = zps_rng_next(&rng), h2 = zps_rng_next(&rng);
            dg_gauss_pair(h1, h2, &g0, &g1);
            r->x[i] = g0;
            if (i + 1 < m->d)
                r->x[i + 1] = g1;
        }
        /* give up on pathological margins: accept the 10000th candidate */
        int last = ++tries >= 10000;
        if (m->margin > 0 && !last) {
            s_mc_forward(m, r->x, r->hid, r->out);
            s_top2(r->out, m->c, &gap);
            if (gap < m->margin - 1e-3)
                continue;
        }
        char *p = r->txt;
        for (uint32_t i = 0; i < m->d; i++) {
            char num[32];
            int len = snprintf(num, sizeof num, "%.6g", r->x[i]);
            r->x[i] = strtod(num, NULL);
            if (want_text) {
                *p++ = ' ';
                p += dg_fmt_u64(p, i);
                *p++ = ':';
                memcpy(p, num, (size_t)len);
                p += len;
            }
        }
        r->txtlen = (size_t)(p - r->txt);
        s_mc_forward(m, r->x, r->hid, r->out);
        cls = s_top2(r->out, m->c, &gap);
        if (m->margin <= 0 || gap >= m->margin || last)
            break;
    }
    uint32_t y = cls;
    double u = zps_rng_uniform(&rng);
    uint64_t rc = zps_rng_next(&rng);
    if (u < m->noise)
        y = (uint32_t)(((rc >> 32) * m->c) >> 32);
    *label = y;
    return cls;
}

static int s_mc_row_init(s_mc_row_t *r, const s_mc_t *m)
{
    r->x = malloc(m->d * sizeof *r->x);
    r->hid = malloc(m->h * sizeof *r->hid);
    r->out = malloc(m->c * sizeof *r->out);
    r->txt = malloc((size_t)m->d * 40 + 8);
    r->draws = 0;
    if (!r->x || !r->hid || !r->out || !r->txt) {
        fprintf(stderr, DG_PROG ": out of memory\n");
        return -1;
    }
    return 0;
}

static void s_mc_row_free(s_mc_row_t *r)
{
    free(r->x);
    free(r->hid);
    free(r->out);
    free(r->txt);
}

static int s_mc_init(s_mc_t *m, const dg_opts_t *o)
{
    memset(m, 0, sizeof *m);
    m->d = o->dim;
    m->h = o->hidden;
    m->c = o->classes;
    m->noise = o->noise;
    m->key_rows = zps_mix64(o->seed, DG_KEY_ROWS);
    uint64_t kt = zps_mix64(o->seed, S_KEY_TEACH);
    m->w1 = malloc((size_t)m->h * m->d * sizeof *m->w1);
    m->b1 = malloc(m->h * sizeof *m->b1);
    m->w2 = malloc((size_t)m->c * m->h * sizeof *m->w2);
    m->b2 = calloc(m->c, sizeof *m->b2);
    if (!m->w1 || !m->b1 || !m->w2 || !m->b2) {
        fprintf(stderr, DG_PROG ": out of memory\n");
        return -1;
    }
    double s1 = 1.0 / sqrt((double)m->d), s2 = 1.0 / sqrt((double)m->h);
    for (size_t i = 0; i < (size_t)m->h * m->d; i++)
        m->w1[i] = s1 * dg_hash_gauss(zps_mix64(1, kt), i);
    for (uint32_t j = 0; j < m->h; j++)
        m->b1[j] = 0.5 * dg_hash_gauss(zps_mix64(2, kt), j);
    for (size_t i = 0; i < (size_t)m->c * m->h; i++)
        m->w2[i] = s2 * dg_hash_gauss(zps_mix64(3, kt), i);

    /* Calibrate b2 so the classes are about equally frequent.  The argmax
     * frequency of class c increases with b2_c, so a damped, decaying step
     * against the relative excess f_c*C - 1 (clipped to [-1, 1], in units
     * of the logits' standard deviation) settles near f_c = 1/C. */
    uint64_t n = DG_CALIB_ROWS;
    double *logit = malloc(n * m->c * sizeof *logit);
    uint64_t *cnt = malloc(m->c * sizeof *cnt);
    s_mc_row_t r;
    if (!logit || !cnt || s_mc_row_init(&r, m)) {
        free(logit);
        free(cnt);
        fprintf(stderr, DG_PROG ": out of memory\n");
        return -1;
    }
    double mean = 0, sq = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t lab;
        s_mc_row(m, DG_SPLIT_CALIB, i, &r, &lab, 0);
        memcpy(&logit[i * m->c], r.out, m->c * sizeof *logit);
        for (uint32_t c = 0; c < m->c; c++) {
            mean += r.out[c];
            sq += r.out[c] * r.out[c];
        }
    }
    mean /= (double)(n * m->c);
    double sd = sqrt(fmax(sq / (double)(n * m->c) - mean * mean, 1e-12));
    m->logit_sd = sd;
    double margin = o->margin * sd;
    for (int it = 0; it < 1000; it++) {
        memset(cnt, 0, m->c * sizeof *cnt);
        uint64_t kept = 0;
        for (uint64_t i = 0; i < n; i++) {
            const double *l = &logit[i * m->c];
            uint32_t best = 0;
            double top = l[0] + m->b2[0], second = -INFINITY;
            for (uint32_t c = 1; c < m->c; c++) {
                double v = l[c] + m->b2[c];
                if (v > top) {
                    second = top;
                    top = v;
                    best = c;
                } else if (v > second) {
                    second = v;
                }
            }
            if (top - second < margin) /* this row would be redrawn */
                continue;
            cnt[best]++;
            kept++;
        }
        if (!kept)
            break;
        double worst = 0, eta = 0.3 / (1.0 + it / 20.0);
        for (uint32_t c = 0; c < m->c; c++) {
            double rel = (double)cnt[c] * m->c / (double)kept - 1.0;
            worst = fabs(rel) > worst ? fabs(rel) : worst;
            rel = rel > 1 ? 1 : rel < -1 ? -1 : rel;
            m->b2[c] -= sd * eta * rel;
        }
        if (worst < 0.02)
            break;
    }
    m->margin = margin;
    free(logit);
    free(cnt);
    s_mc_row_free(&r);
    return 0;
}

static void s_mc_free(s_mc_t *m)
{
    free(m->w1);
    free(m->b1);
    free(m->w2);
    free(m->b2);
}

typedef struct {
    uint64_t n, agree, draws;
    uint64_t *freq;
} s_mc_stats_t;

static int s_mc_split(const s_mc_t *m, uint32_t split, uint64_t rows, const char *path,
                      const char *what, s_mc_stats_t *st)
{
    dg_out_t out;
    s_mc_row_t r;
    size_t maxline = (size_t)m->d * 40 + 16;
    size_t cap = DG_OUTBUF > 2 * maxline ? DG_OUTBUF : 2 * maxline;
    st->n = st->agree = 0;
    st->freq = calloc(m->c, sizeof *st->freq);
    if (!st->freq) {
        fprintf(stderr, DG_PROG ": out of memory\n");
        return -1;
    }
    if (s_mc_row_init(&r, m))
        return -1;
    if (dg_out_open(&out, path, cap)) {
        s_mc_row_free(&r);
        return -1;
    }
    dg_progress_t pr;
    dg_progress_start(&pr, what, rows);
    for (uint64_t i = 0; i < rows; i++) {
        uint32_t y;
        uint32_t cls = s_mc_row(m, split, i, &r, &y, 1);
        if (dg_out_reserve(&out, maxline))
            break;
        char *p = out.buf + out.len;
        p += dg_fmt_u64(p, y);
        memcpy(p, r.txt, r.txtlen);
        p += r.txtlen;
        *p++ = '\n';
        out.len = (size_t)(p - out.buf);
        st->n++;
        st->agree += cls == y;
        st->freq[y]++;
        if ((i & 0x3ff) == 0x3ff)
            dg_progress_tick(&pr, i + 1);
    }
    dg_progress_end(&pr, st->n);
    st->draws = r.draws;
    s_mc_row_free(&r);
    return dg_out_close(&out);
}
/* ---- the task ------------------------------------------------------------------ */

static void s_mc_summary(dg_truth_t *t, const char *split, const s_mc_stats_t *st, uint32_t c,
                         double m_margin)
{
    double n = (double)(st->n ? st->n : 1);
    dg_truth_add(t, "%s_accuracy=%.6f\n", split, (double)st->agree / n);
    if (m_margin > 0)
        dg_truth_add(t, "%s_margin_accept_rate=%.6f\n", split, (double)st->n / (double)st->draws);
    dg_truth_add(t, "%s_class_freq=", split);
    for (uint32_t i = 0; i < c; i++)
        dg_truth_add(t, "%s%.4f", i ? "," : "", (double)st->freq[i] / n);
    dg_truth_add(t, "\n");
    double mx = 0, mn = 1;
    for (uint32_t i = 0; i < c; i++) {
        double f = (double)st->freq[i] / n;
        mx = f > mx ? f : mx;
        mn = f < mn ? f : mn;
    }
    dg_truth_add(t, "%s_class_freq_min=%.6f\n", split, mn);
    dg_truth_add(t, "%s_class_freq_max=%.6f\n", split, mx);
}

int dg_mc_run(const dg_opts_t *o)
{
    s_mc_t m;
    memset(&m, 0, sizeof m);
    int rc = DG_EXIT_IO;
    s_mc_stats_t tr = {0}, te = {0};
    dg_truth_t t = {0};
    char *ptrain = dg_path(o->out, ".train"), *ptest = dg_path(o->out, ".test");
    if (!ptrain || !ptest || s_mc_init(&m, o))
        goto done;
    if (s_mc_split(&m, DG_SPLIT_TRAIN, o->rows, ptrain, "train", &tr))
        goto done;
    if (s_mc_split(&m, DG_SPLIT_TEST, o->test_rows, ptest, "test", &te))
        goto done;
    dg_truth_add(&t, "# " DG_PROG " " ZPS_VERSION " ground truth\n");
    dg_truth_add(&t, "task=multiclass\n");
    dg_truth_add(&t, "seed=%llu\n", (unsigned long long)o->seed);
    dg_truth_add(&t, "rows=%llu\n", (unsigned long long)o->rows);
    dg_truth_add(&t, "test_rows=%llu\n", (unsigned long long)o->test_rows);
    dg_truth_add(&t, "dim=%u\n", o->dim);
    dg_truth_add(&t, "classes=%u\n", o->classes);
    dg_truth_add(&t, "hidden=%u\n", o->hidden);
    dg_truth_add(&t, "margin=%g\n", o->margin);
    dg_truth_add(&t, "margin_abs=%.6f\n", m.margin);
    dg_truth_add(&t, "noise=%g\n", o->noise);
    dg_truth_add(&t, "expected_accuracy=%.6f\n", 1 - o->noise + o->noise / o->classes);
    s_mc_summary(&t, "test", &te, m.c, m.margin);
    s_mc_summary(&t, "train", &tr, m.c, m.margin);
    if (t.oom) {
        fprintf(stderr, DG_PROG ": out of memory\n");
        goto done;
    }
    if (dg_truth_write(o->out, &t))
        goto done;
    rc = 0;
done:
    free(tr.freq);
    free(te.freq);
    s_mc_free(&m);
    free(t.buf);
    free(ptrain);
    free(ptest);
    return rc;
}
