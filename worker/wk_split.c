/* wk_split: see wk_split.h.
 *
 * DESIGN
 * One counting sort: a pass computes every key's server (kept in owner, so
 * zps_place runs once per key) and counts per server; a prefix sum turns
 * the counts into offsets; a second pass drops each index at its server's
 * cursor.  The cursors are off[s] itself, which ends up as off[s+1]; one
 * shift puts the offsets back.  Indices are visited in increasing order,
 * so each server's part keeps the caller's (sorted) key order and its keys
 * frame can be coded as it is.
 *
 * Rows move with memcpy of dim floats; dim 1, the sparse models' case, is
 * a loop of single floats the compiler keeps in registers. */
#include "wk_split.h"

#include <string.h>

#include "zps_place.h"

void wk_split_by_server(const uint64_t *keys, size_t n, uint32_t S, uint32_t *owner,
                        uint32_t *pos, size_t *off)
{
    memset(off, 0, ((size_t)S + 1) * sizeof *off);
    if (S <= 1) {
        for (size_t i = 0; i < n; i++) {
            owner[i] = 0;
            pos[i] = (uint32_t)i;
        }
        off[S] = n;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t s = zps_place(keys[i], S);
        owner[i] = s;
        off[s + 1]++;
    }
    for (uint32_t s = 0; s < S; s++)
        off[s + 1] += off[s];
    /* fill using off[s] as a cursor, then restore */
    for (size_t i = 0; i < n; i++)
        pos[off[owner[i]]++] = (uint32_t)i;
    for (uint32_t s = S; s > 0; s--)
        off[s] = off[s - 1];
    off[0] = 0;
}

size_t wk_split_by_table(const uint64_t *keys, size_t n, const zps_ranges_t *t, int all,
                         uint32_t *range, uint32_t *pos, size_t *off)
{
    uint32_t S = t->nservers;
    size_t unplaced = 0;
    memset(off, 0, ((size_t)S + 1) * sizeof *off);
    for (size_t i = 0; i < n; i++) {
        uint32_t r = zps_range_of(keys[i]);
        range[i] = r;
        uint32_t k = all ? t->nrep[r] : t->nrep[r] != 0;
        unplaced += k == 0;
        for (uint32_t j = 0; j < k; j++)
            off[t->rep[r][j] + 1]++;
        if (all && t->join[r] != ZPS_NO_RANK)
            off[t->join[r] + 1]++;
    }
    for (uint32_t s = 0; s < S; s++)
        off[s + 1] += off[s];
    for (size_t i = 0; i < n; i++) {
        uint32_t r = range[i];
        uint32_t k = all ? t->nrep[r] : t->nrep[r] != 0;
        for (uint32_t j = 0; j < k; j++)
            pos[off[t->rep[r][j]]++] = (uint32_t)i;
        if (all && t->join[r] != ZPS_NO_RANK)
            pos[off[t->join[r]]++] = (uint32_t)i;
    }
    for (uint32_t s = S; s > 0; s--)
        off[s] = off[s - 1];
    off[0] = 0;
    return unplaced;
}

void wk_split_keys(const uint64_t *keys, const uint32_t *pos, size_t cnt, uint64_t *out)
{
    for (size_t j = 0; j < cnt; j++)
        out[j] = keys[pos[j]];
}

void wk_split_gather(const float *rows, size_t dim, const uint32_t *pos, size_t cnt, float *out)
{
    if (dim == 1) {
        for (size_t j = 0; j < cnt; j++)
            out[j] = rows[pos[j]];
        return;
    }
    for (size_t j = 0; j < cnt; j++)
        memcpy(out + j * dim, rows + (size_t)pos[j] * dim, dim * sizeof(float));
}

void wk_split_scatter(const void *src, size_t dim, const uint32_t *pos, size_t cnt, float *out)
{
    const unsigned char *v = src;
    if (dim == 1) {
        for (size_t j = 0; j < cnt; j++)
            memcpy(out + pos[j], v + j * sizeof(float), sizeof(float));
        return;
    }
    size_t row = dim * sizeof(float);
    for (size_t j = 0; j < cnt; j++)
        memcpy(out + (size_t)pos[j] * dim, v + j * row, row);
}
