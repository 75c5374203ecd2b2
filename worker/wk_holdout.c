/* wk_holdout: see wk_holdout.h.
 *
 * DESIGN
 * The hashes live in an open-addressing set (linear probing, 0 = empty:
 * wk_auto_row_hash is never 0) sized at more than 4 x WK_HOLDOUT_CAP, so
 * its load stays under 1/4 and a lookup, done for every row of every pass,
 * is about one probe.  Identical rows share a hash and are all held out.
 * The rows are copied into a batch of their own that grows by doubling;
 * scoring reads it in slices (wk_eval). */
#include "wk_holdout.h"

#include <stdlib.h>
#include <string.h>

#include "wk_auto.h"
#include "zps_err.h"

struct wk_holdout {
    wk_batch_t rows;       /* the held-out rows (owned) */
    size_t cap_rows, cap_nnz;
    uint64_t *set;         /* their row hashes, open addressing (0 = empty) */
    uint32_t mask;
    uint64_t seen;         /* rows looked at while picking */
};

wk_holdout_t *wk_holdout_new(void)
{
    return calloc(1, sizeof(wk_holdout_t));
}

void wk_holdout_destroy(wk_holdout_t **hp)
{
    if (!hp || !*hp)
        return;
    wk_holdout_t *ho = *hp;
    free(ho->rows.labels);
    free(ho->rows.offsets);
    free(ho->rows.ids);
    free(ho->rows.vals);
    free(ho->set);
    free(ho);
    *hp = NULL;
}

int wk_holdout_has(const wk_holdout_t *ho, uint64_t h)
{
    if (!ho->set)
        return 0;
    for (uint32_t k = (uint32_t)h & ho->mask;; k = (k + 1) & ho->mask) {
        if (ho->set[k] == h)
            return 1;
        if (ho->set[k] == 0)
            return 0;
    }
}

/* Row i of b into the rows (a copy) and its hash into the set. */
static int s_add(wk_holdout_t *ho, const wk_batch_t *b, size_t i, uint64_t h)
{
    if (!ho->set) {
        ho->mask = 4 * WK_HOLDOUT_CAP;
        while (ho->mask & (ho->mask - 1))
            ho->mask &= ho->mask - 1;
        ho->mask = 2 * ho->mask - 1; /* > 4 x the cap: load < 1/4 */
        if (!(ho->set = calloc((size_t)ho->mask + 1, sizeof *ho->set)))
            return ZPS_ENOMEM;
        if (!(ho->rows.offsets = calloc(1, sizeof *ho->rows.offsets)))
            return ZPS_ENOMEM;
    }
    wk_batch_t *o = &ho->rows;
    size_t k = b->offsets[i + 1] - b->offsets[i], nnz = o->offsets[o->n];
    if (o->n + 1 > ho->cap_rows) {
        size_t cap = ho->cap_rows ? 2 * ho->cap_rows : 256;
        float *l = realloc(o->labels, cap * sizeof *l);
        if (l)
            o->labels = l;
        size_t *of = realloc(o->offsets, (cap + 1) * sizeof *of);
        if (of)
            o->offsets = of;
        if (!l || !of)
            return ZPS_ENOMEM;
        ho->cap_rows = cap;
    }
    if (nnz + k > ho->cap_nnz) {
        size_t cap = ho->cap_nnz ? ho->cap_nnz : 4096;
        while (cap < nnz + k)
            cap *= 2;
        uint64_t *id = realloc(o->ids, cap * sizeof *id);
        if (id)
            o->ids = id;
        float *v = realloc(o->vals, cap * sizeof *v);
        if (v)
            o->vals = v;
        if (!id || !v)
            return ZPS_ENOMEM;
        ho->cap_nnz = cap;
    }
    memcpy(o->ids + nnz, b->ids + b->offsets[i], k * sizeof *o->ids);
    memcpy(o->vals + nnz, b->vals + b->offsets[i], k * sizeof *o->vals);
    o->labels[o->n] = b->labels[i];
    o->offsets[++o->n] = nnz + k;
    uint32_t s = (uint32_t)h & ho->mask;
    while (ho->set[s] && ho->set[s] != h)
        s = (s + 1) & ho->mask;
    ho->set[s] = h;
    return 0;
}

int wk_holdout_offer(wk_holdout_t *ho, const wk_batch_t *b, size_t i, uint64_t h)
{
    ho->seen++;
    if (!wk_auto_pick(h, ho->rows.n, ho->seen))
        return 0;
    int rc = s_add(ho, b, i, h);
    return rc ? rc : 1;
}

int wk_holdout_rebuild(wk_holdout_t *ho, wk_reader_t *r)
{
    wk_batch_t b;
    long n;
    int rc = 0;
    while (!rc && ho->rows.n < WK_HOLDOUT_CAP && (n = wk_reader_next(r, 1000, &b)) > 0)
        for (size_t i = 0; i < b.n && !rc && ho->rows.n < WK_HOLDOUT_CAP; i++) {
            uint64_t h = wk_auto_row_hash(&b, i);
            if (!wk_holdout_has(ho, h)) {
                int took = wk_holdout_offer(ho, &b, i, h);
                rc = took < 0 ? took : 0;
            }
        }
    return rc;
}

const wk_batch_t *wk_holdout_rows(const wk_holdout_t *ho)
{
    return &ho->rows;
}
