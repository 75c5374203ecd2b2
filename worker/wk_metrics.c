/* wk_metrics: logloss, accuracy and exact AUC (API in wk_metrics.h).
 *
 * Sums are kept in double (loss) and uint64 (counts).  For AUC each example
 * stores its score as an order-preserving 64-bit key (zps_sort_key_f64 of
 * the float widened to double, exact), in one array for the positives and
 * one for the negatives.  wk_metrics_auc_keys, the one exact AUC of the tree
 * (zps-datagen's truth metrics use it too), sorts both (zps_sort) and walks
 * them together over the distinct scores in ascending order:
 *     auc_num += pos_g * (neg_below + neg_g / 2),  neg_below += neg_g
 * and AUC = auc_num / (npos * nneg).  That is the Mann-Whitney statistic with
 * average ranks for ties, without forming rank sums (which lose precision in
 * double beyond ~10^8 examples); every term is a multiple of 1/2 below
 * 2^52, so the sum is exact in double.  NaN scores are rejected at add time
 * so the order is total. */
#include "wk_metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "zps_err.h"
#include "zps_sort.h"

#define S_EPS 1e-15

struct wk_metrics {
    uint32_t classes;
    uint64_t count, correct;
    double loss;
    uint64_t *keys[2]; /* classes <= 2: score keys of the negatives [0], positives [1] */
    size_t nkeys[2], cap[2];
};

wk_metrics_t *wk_metrics_new(uint32_t classes)
{
    if (classes == 0)
        return NULL;
    wk_metrics_t *m = calloc(1, sizeof *m);
    if (m)
        m->classes = classes;
    return m;
}

void wk_metrics_destroy(wk_metrics_t **mp)
{
    if (mp == NULL || *mp == NULL)
        return;
    free((*mp)->keys[0]);
    free((*mp)->keys[1]);
    free(*mp);
    *mp = NULL;
}

void wk_metrics_reset(wk_metrics_t *m)
{
    m->count = m->correct = 0;
    m->loss = 0;
    m->nkeys[0] = m->nkeys[1] = 0;
}

static int s_push(wk_metrics_t *m, float score, int pos)
{
    if (m->classes > 2)
        return 0;
    const int c = pos != 0;
    if (m->nkeys[c] == m->cap[c]) {
        size_t cap = m->cap[c] ? 2 * m->cap[c] : 1024;
        uint64_t *p = realloc(m->keys[c], cap * sizeof *p);
        if (p == NULL)
            return ZPS_ENOMEM;
        m->keys[c] = p;
        m->cap[c] = cap;
    }
    m->keys[c][m->nkeys[c]++] = zps_sort_key_f64(score);
    return 0;
}

static inline long s_class_of(float y, uint32_t classes)
{
    if (!(y >= 0 && y < (float)classes) || y != floorf(y))
        return -1;
    return (long)y;
}

int wk_metrics_add(wk_metrics_t *m, float p, float label)
{
    if (m->classes != 1 || isnan(p) || isnan(label))
        return ZPS_EINVAL;
    const int pos = label > 0.5f;
    if (s_push(m, p, pos) != 0)
        return ZPS_ENOMEM;
    double q = p < S_EPS ? S_EPS : p > 1 - S_EPS ? 1 - S_EPS : p;
    m->loss -= label * log(q) + (1.0 - label) * log(1.0 - q);
    m->correct += (p >= 0.5f) == pos;
    m->count++;
    return 0;
}

int wk_metrics_add_probs(wk_metrics_t *m, const float *probs, float label)
{
    if (m->classes == 1)
        return wk_metrics_add(m, probs[0], label);
    long y = s_class_of(label, m->classes);
    if (y < 0)
        return ZPS_EINVAL;
    uint32_t arg = 0;
    for (uint32_t k = 0; k < m->classes; k++) {
        if (isnan(probs[k]))
            return ZPS_EINVAL;
        if (probs[k] > probs[arg])
            arg = k;
    }
    if (s_push(m, probs[m->classes == 2], y == 1) != 0)
        return ZPS_ENOMEM;
    double q = probs[y];
    m->loss -= log(q < S_EPS ? S_EPS : q);
    m->correct += arg == (uint32_t)y;
    m->count++;
    return 0;
}

int wk_metrics_add_preds(wk_metrics_t *m, size_t n, const float *labels, const float *out,
                         const uint32_t *cls, double loss_sum)
{
    if (m->classes > 1 && cls == NULL)
        return ZPS_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (isnan(out[i]))
            return ZPS_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int pos;
        if (m->classes == 1) {
            pos = labels[i] > 0.5f;
            m->correct += (out[i] >= 0.5f) == pos;
            if (s_push(m, out[i], pos) != 0)
                return ZPS_ENOMEM;
        } else {
            long y = s_class_of(labels[i], m->classes);
            if (y < 0)
                continue;
            m->correct += cls[i] == (uint32_t)y;
            if (s_push(m, cls[i] == 1 ? out[i] : 1.0f - out[i], y == 1) != 0)
                return ZPS_ENOMEM;
        }
        m->count++;
    }
    m->loss += loss_sum;
    return 0;
}

uint64_t wk_metrics_count(const wk_metrics_t *m)
{
    return m->count;
}

double wk_metrics_logloss(const wk_metrics_t *m)
{
    return m->count ? m->loss / (double)m->count : NAN;
}

double wk_metrics_accuracy(const wk_metrics_t *m)
{
    return m->count ? (double)m->correct / (double)m->count : NAN;
}

/* Sorts a[0..n) in place (tmp: n keys of scratch). */
static void s_sort_in_place(uint64_t *a, uint64_t *tmp, size_t n)
{
    uint64_t *r = zps_sort_u64(a, tmp, n);
    if (r != a)
        memcpy(a, r, n * sizeof *a);
}

double wk_metrics_auc_keys(uint64_t *pos, size_t npos, uint64_t *neg, size_t nneg)
{
    if (npos == 0 || nneg == 0)
        return NAN;
    uint64_t *tmp = malloc((npos > nneg ? npos : nneg) * sizeof *tmp);
    if (tmp == NULL)
        return NAN;
    s_sort_in_place(pos, tmp, npos);
    s_sort_in_place(neg, tmp, nneg);
    free(tmp);
    double num = 0, neg_below = 0;
    size_t i = 0, j = 0;
    while (i < npos) {
        /* the next distinct score among both lists */
        const uint64_t k = j < nneg && neg[j] < pos[i] ? neg[j] : pos[i];
        double pg = 0, ng = 0;
        for (; i < npos && pos[i] == k; i++)
            pg++;
        for (; j < nneg && neg[j] == k; j++)
            ng++;
        num += pg * (neg_below + 0.5 * ng);
        neg_below += ng;
    }
    /* the negatives above every positive are in the denominator only */
    return num / ((double)npos * (double)nneg);
}

double wk_metrics_auc(wk_metrics_t *m)
{
    if (m->classes > 2)
        return NAN;
    return wk_metrics_auc_keys(m->keys[1], m->nkeys[1], m->keys[0], m->nkeys[0]);
}
