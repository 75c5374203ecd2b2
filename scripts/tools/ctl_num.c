/* ctl_num: numbers in and out, growing arrays (see ctl_num.h). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_num.h"
#include "zps_args.h"

int ctl_parse_float(const char *s, size_t len, float *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    return zps_parse_float(buf, out) ? -1 : 0;
}

void ctl_fmt_float(float x, char out[32])
{
    if (x == 0) {
        strcpy(out, signbit(x) ? "-0" : "0");
        return;
    }
    if (x == truncf(x) && fabsf(x) < 1e15f) { /* integers as integers: 1000, not 1e+03 */
        snprintf(out, 32, "%.0f", (double)x);
        return;
    }
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(out, 32, "%.*g", prec, (double)x);
        if (strtof(out, NULL) == x)
            return;
    }
    snprintf(out, 32, "%.9g", (double)x);
}

int ctl_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int ctl_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}
