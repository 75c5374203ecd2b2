/* ctl_num: zps-ctl's numbers in and out, and its growing arrays.
 *
 * Values on the command line and in push files are finite base-10 floats
 * (zps_args: no hex, inf or nan; "010" is ten); values printed by pull and
 * dump are the shortest text that reads back as the same float (integers
 * as integers: 1000, not 1e+03), so a dump can be pushed back exactly. */
#ifndef CTL_NUM_H
#define CTL_NUM_H

#include <stddef.h>

/* A finite decimal float (no hex, inf or nan) of len bytes of s; 0 or -1. */
int ctl_parse_float(const char *s, size_t len, float *out);

/* Shortest text that reads back as the same float. */
void ctl_fmt_float(float x, char out[32]);

/* qsort/bsearch order of uint64_t keys. */
int ctl_cmp_u64(const void *a, const void *b);

/* Makes *p hold at least need elements of elem bytes (doubling from 1024);
 * 0, or -1 when out of memory (*p unchanged). */
int ctl_grow(void **p, size_t *cap, size_t need, size_t elem);

#endif
