/* wk_rows: a growable block of sparse rows in CSR form (labels, row
 * offsets, feature ids and values), the one row container of the data
 * readers: parsers append to it (wk_parse), the binary cache writes and
 * reads it (wk_cache), the shuffle window and the batches are made of it
 * (wk_data).  Plain struct, no hidden state; wk_rows_free releases it. */
#ifndef WK_ROWS_H
#define WK_ROWS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    size_t n, nnz;           /* rows, features */
    size_t cap_rows, cap_nnz;
    float *labels;
    size_t *offsets;         /* cap_rows + 1; offsets[0] == 0 once reserved */
    uint64_t *ids;
    float *vals;
} wk_rows_t;

/* Room for `rows` more rows with `nnz` more features; 0 or ZPS_ENOMEM
 * (the contents are kept either way). */
int wk_rows_reserve(wk_rows_t *c, size_t rows, size_t nnz);
void wk_rows_clear(wk_rows_t *c);  /* no rows, capacity kept */
void wk_rows_free(wk_rows_t *c);   /* releases everything, zeroes *c */

/* Appends rows [n0, n1) of src to dst; 0 or ZPS_ENOMEM. */
int wk_rows_append(wk_rows_t *dst, const wk_rows_t *src, size_t n0, size_t n1);

/* Grows an array *p of *cap elements of elem bytes (doubling from 16) to
 * hold need; 0 or ZPS_ENOMEM. */
int wk_grow(void **p, size_t *cap, size_t need, size_t elem);

#endif
