/* zps_args: base-10 numbers and getopt_long with exact names (see
 * zps_args.h).
 *
 * Integers are read digit by digit with an overflow check before each
 * step, so no libc base detection or locale is involved.  Reals are first
 * checked against the decimal grammar (strtod alone would also take hex,
 * inf, nan and leading spaces), then converted by strtod. */
#include "zps_args.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zps_err.h"

static int s_digits_u64(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return ZPS_EINVAL;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return ZPS_EINVAL;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return ZPS_EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int zps_parse_u64(const char *s, uint64_t *out)
{
    return s_digits_u64(s, out);
}

int zps_parse_u32(const char *s, uint32_t *out)
{
    uint64_t v;
    if (s_digits_u64(s, &v) || v > UINT32_MAX)
        return ZPS_EINVAL;
    *out = (uint32_t)v;
    return 0;
}

int zps_parse_int(const char *s, int *out)
{
    if (!s)
        return ZPS_EINVAL;
    const int neg = *s == '-';
    uint64_t v;
    if (s_digits_u64(s + neg, &v))
        return ZPS_EINVAL;
    if (neg ? v > (uint64_t)INT_MAX + 1 : v > (uint64_t)INT_MAX)
        return ZPS_EINVAL;
    *out = neg ? (int)(-(int64_t)v) : (int)v;
    return 0;
}

/* [+-] (digits [. digits?] | . digits) [(e|E) [+-] digits], nothing else */
static int s_decimal(const char *s)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    size_t ip = strspn(p, "0123456789");
    p += ip;
    size_t fp = 0;
    if (*p == '.') {
        p++;
        fp = strspn(p, "0123456789");
        p += fp;
    }
    if (ip + fp == 0)
        return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        size_t ep = strspn(p, "0123456789");
        if (ep == 0)
            return 0;
        p += ep;
    }
    return *p == 0;
}

int zps_parse_double(const char *s, double *out)
{
    if (!s || !s_decimal(s))
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
    if (zps_parse_double(s, &v) || fabs(v) > FLT_MAX)
        return ZPS_EINVAL;
    *out = (float)v;
    return 0;
}

const char *zps_args_why(const char *v, zps_args_kind_t kind)
{
    /* the number's form alone; a value of the right form that the parser
     * refused (or the caller did) is out of range */
    if (!v)
        v = "";
    const char *d = kind == ZPS_ARGS_INT && *v == '-' ? v + 1 : v;
    if (kind == ZPS_ARGS_REAL)
        return s_decimal(v) ? "out of range" : "expected a decimal number";
    if (!*d || d[strspn(d, "0123456789")])
        return kind == ZPS_ARGS_UINT ? "expected a non-negative base-10 integer"
                                     : "expected a base-10 integer";
    return "out of range";
}

/* "--name" or "--name=..." spells exactly opts' name? */
static int s_exact(const char *tok, const char *name)
{
    size_t n = strlen(name);
    return !strncmp(tok, "--", 2) && !strncmp(tok + 2, name, n) && (tok[2 + n] == 0 || tok[2 + n] == '=');
}

/* The option part of an argv element (up to '='), for messages. */
static int s_optlen(const char *tok)
{
    size_t n = strcspn(tok, "=");
    return n > 200 ? 200 : (int)n;
}

int zps_getopt(int argc, char **argv, const char *shortopts, const struct option *opts,
               int *index, char *err, size_t errlen)
{
    char spec[64];
    snprintf(spec, sizeof spec, ":%s", shortopts ? shortopts : "");
    opterr = 0;
    int li = -1;
    int c = getopt_long(argc, argv, spec, opts, &li);
    *index = li;
    if (c == -1)
        return -1;
    const char *last = argv[optind - 1];
    if (c == ':') {
        if (strncmp(last, "--", 2) == 0)
            snprintf(err, errlen, "option '%.*s' needs a value", s_optlen(last), last);
        else
            snprintf(err, errlen, "option '-%c' needs a value", optopt);
        return ZPS_EINVAL;
    }
    if (c == '?') {
        if (strncmp(last, "--", 2) == 0 && optopt && strchr(last, '='))
            snprintf(err, errlen, "option '%.*s' takes no value", s_optlen(last), last);
        else if (strncmp(last, "--", 2) == 0 && !optopt)
            snprintf(err, errlen, "unknown option '%.*s'", s_optlen(last), last);
        else
            snprintf(err, errlen, "unknown option '-%c'", optopt);
        return ZPS_EINVAL;
    }
    if (li >= 0) {
        /* the element that named the option: before its value, unless the
         * value came with '=' */
        const char *tok = opts[li].has_arg != no_argument && optarg == last && optind >= 2
                              ? argv[optind - 2]
                              : last;
        if (!s_exact(tok, opts[li].name)) {
            snprintf(err, errlen, "unknown option '%.*s'; did you mean --%s?",
                     s_optlen(tok), tok, opts[li].name);
            return ZPS_EINVAL;
        }
    }
    return c;
}

size_t zps_options_join(struct option *dst, size_t cap, const struct option *a,
                        const struct option *b)
{
    size_t n = 0;
    for (; a && a->name; a++) {
        if (n + 1 >= cap)
            return 0;
        dst[n++] = *a;
    }
    const size_t na = n;
    for (; b && b->name; b++) {
        int dup = 0;
        for (size_t k = 0; k < na && !dup; k++)
            dup = !strcmp(dst[k].name, b->name);
        if (dup)
            continue;
        if (n + 1 >= cap)
            return 0;
        dst[n++] = *b;
    }
    memset(&dst[n], 0, sizeof dst[n]);
    return n;
}
