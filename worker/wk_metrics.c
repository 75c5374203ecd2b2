/* wk_metrics: logloss, accuracy and exact AUC (API in wk_metrics.h).
 *
 * Sums are kept in double (loss) and uint64 (counts).  For AUC each example
 * stores {score, positive}; wk_metrics_auc sorts them by score (qsort) and
 * walks the groups of equal scores in ascending order:
 *     auc_num += pos_g * (neg_below + neg_g / 2),  neg_below += neg_g
 * and AUC = auc_num / (npos * nneg).  That is the Mann-Whitney statistic with
 * average ranks for ties, without forming rank sums (which lose precision in
 * double beyond ~10^8 examples).  NaN scores are rejected at add time so the
 * sort order is total. */
#include "wk_metrics.h"

#include <math.h>
#include <stdlib.h>

#include "zps_err.h"

#define S_EPS 1e-15

typedef struct {
    float score;
    uint32_t pos;
} s_item_t;

struct wk_metrics {
    uint32_t classes;
    uint64_t count, correct;
    double loss;
    s_item_t *items; /* classes <= 2 */
    size_t nitems, cap;
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
    free((*mp)->items);
    free(*mp);
    *mp = NULL;
}

void wk_metrics_reset(wk_metrics_t *m)
{
    m->count = m->correct = 0;
    m->loss = 0;
    m->nitems = 0;
}

static int s_push(wk_metrics_t *m, float score, int pos)
{
    if (m->classes > 2)
        return 0;
    if (m->nitems == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 1024;
        s_item_t *p = realloc(m->items, cap * sizeof *p);
        if (p == NULL)
            return ZPS_ENOMEM;
        m->items = p;
        m->cap = cap;
    }
    m->items[m->nitems++] = (s_item_t){score, pos != 0};
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

static int s_cmp(const void *a, const void *b)
{
    float x = ((const s_item_t *)a)->score, y = ((const s_item_t *)b)->score;
    return (x > y) - (x < y);
}

double wk_metrics_auc(wk_metrics_t *m)
{
    if (m->classes > 2 || m->nitems == 0)
        return NAN;
    qsort(m->items, m->nitems, sizeof *m->items, s_cmp);
    double num = 0, neg_below = 0, npos = 0;
    for (size_t i = 0; i < m->nitems;) {
        double pg = 0, ng = 0;
        size_t j = i;
        for (; j < m->nitems && m->items[j].score == m->items[i].score; j++) {
            pg += m->items[j].pos;
            ng += !m->items[j].pos;
        }
        num += pg * (neg_below + 0.5 * ng);
        neg_below += ng;
        npos += pg;
        i = j;
    }
    if (npos == 0 || neg_below == 0)
        return NAN;
    return num / (npos * neg_below);
}
