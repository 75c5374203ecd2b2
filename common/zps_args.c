/* zps_args: see zps_args.h. */
#include "zps_args.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "zps_err.h"

int zps_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == ' ')
        return ZPS_EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end)
        return ZPS_EINVAL;
    *out = v;
    return 0;
}

int zps_parse_u32(const char *s, uint32_t *out)
{
    uint64_t v;
    if (zps_parse_u64(s, &v) || v > UINT32_MAX)
        return ZPS_EINVAL;
    *out = (uint32_t)v;
    return 0;
}

int zps_parse_int(const char *s, int *out)
{
    if (!s || !*s)
        return ZPS_EINVAL;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno || *end || v < INT_MIN || v > INT_MAX)
        return ZPS_EINVAL;
    *out = (int)v;
    return 0;
}

int zps_parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return ZPS_EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return ZPS_EINVAL;
    *out = v;
    return 0;
}

int zps_parse_float(const char *s, float *out)
{
    double v;
    if (zps_parse_double(s, &v) || fabs(v) > 3.4e38)
        return ZPS_EINVAL;
    *out = (float)v;
    return 0;
}
