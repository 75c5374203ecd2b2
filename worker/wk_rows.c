/* wk_rows: see wk_rows.h.
 *
 * DESIGN
 * Capacities double (rows from 64, features from 256) and are never given
 * back until wk_rows_free, so a reader's window and batch buffers stop
 * allocating after the first few batches.  A row without features leaves
 * ids/vals unallocated when nothing else needed them. */
#include "wk_rows.h"

#include <stdlib.h>
#include <string.h>

#include "zps_err.h"

int wk_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return ZPS_ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

int wk_rows_reserve(wk_rows_t *c, size_t rows, size_t nnz)
{
    if (c->n + rows > c->cap_rows || !c->offsets) {
        size_t need = c->n + rows, cap = c->cap_rows ? c->cap_rows : 64;
        while (cap < need)
            cap *= 2;
        float *l = realloc(c->labels, cap * sizeof *l);
        if (!l)
            return ZPS_ENOMEM;
        c->labels = l;
        size_t *o = realloc(c->offsets, (cap + 1) * sizeof *o);
        if (!o)
            return ZPS_ENOMEM;
        if (!c->offsets)
            o[0] = 0;
        c->offsets = o;
        c->cap_rows = cap;
    }
    if (c->nnz + nnz > c->cap_nnz) {
        size_t need = c->nnz + nnz, cap = c->cap_nnz ? c->cap_nnz : 256;
        while (cap < need)
            cap *= 2;
        uint64_t *ids = realloc(c->ids, cap * sizeof *ids);
        if (!ids)
            return ZPS_ENOMEM;
        c->ids = ids;
        float *v = realloc(c->vals, cap * sizeof *v);
        if (!v)
            return ZPS_ENOMEM;
        c->vals = v;
        c->cap_nnz = cap;
    }
    return 0;
}

void wk_rows_clear(wk_rows_t *c)
{
    c->n = 0;
    c->nnz = 0;
    if (c->offsets)
        c->offsets[0] = 0;
}

void wk_rows_free(wk_rows_t *c)
{
    free(c->labels);
    free(c->offsets);
    free(c->ids);
    free(c->vals);
    memset(c, 0, sizeof *c);
}

int wk_rows_append(wk_rows_t *dst, const wk_rows_t *src, size_t n0, size_t n1)
{
    size_t z0 = src->offsets[n0], z1 = src->offsets[n1];
    int rc = wk_rows_reserve(dst, n1 - n0, z1 - z0);
    if (rc < 0)
        return rc;
    if (n1 > n0)
        memcpy(dst->labels + dst->n, src->labels + n0, (n1 - n0) * sizeof *dst->labels);
    if (z1 > z0) { /* rows without features leave ids/vals unallocated */
        memcpy(dst->ids + dst->nnz, src->ids + z0, (z1 - z0) * sizeof *dst->ids);
        memcpy(dst->vals + dst->nnz, src->vals + z0, (z1 - z0) * sizeof *dst->vals);
    }
    for (size_t i = n0; i < n1; i++)
        dst->offsets[dst->n + (i - n0) + 1] = dst->nnz + (src->offsets[i + 1] - z0);
    dst->n += n1 - n0;
    dst->nnz += z1 - z0;
    return 0;
}
