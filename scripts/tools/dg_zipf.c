/* dg_zipf: the Zipf sampler and the rank -> id permutation (see dg_zipf.h). */
#include <math.h>
#include <stdint.h>

#include "dg_zipf.h"
#include "zps_hash.h"
#include "zps_rng.h"

/* Domain-separation constant of the permutation's key. */
#define S_KEY_PERM 0x9b05688c2b3e6c1fULL

/* ---- Zipf sampler ----------------------------------------------------------- */

static double s_helper1(double x) /* log1p(x)/x */
{
    if (fabs(x) > 1e-8)
        return log1p(x) / x;
    return 1.0 - x * (0.5 - x * (1.0 / 3.0 - x * 0.25));
}

static double s_helper2(double x) /* expm1(x)/x */
{
    if (fabs(x) > 1e-8)
        return expm1(x) / x;
    return 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + x * 0.25));
}

/* h(x) = x^-a */
static double s_zipf_h(const dg_zipf_t *z, double x)
{
    return exp(-z->a * log(x));
}

/* H(x) = (x^(1-a) - 1) / (1-a), or log x at a = 1: an antiderivative of h */
static double s_zipf_hint(const dg_zipf_t *z, double x)
{
    double lx = log(x);
    return s_helper2((1.0 - z->a) * lx) * lx;
}

static double s_zipf_hinv(const dg_zipf_t *z, double x)
{
    double t = x * (1.0 - z->a);
    if (t < -1.0)
        t = -1.0;
    return exp(s_helper1(t) * x);
}

/* sum_{r=lo..hi} r^-a by Euler-Maclaurin (lo >= 1025). */
static double s_zipf_tail_sum(const dg_zipf_t *z, double lo, double hi)
{
    double a = z->a;
    double integral = s_zipf_hint(z, hi) - s_zipf_hint(z, lo);
    double flo = s_zipf_h(z, lo), fhi = s_zipf_h(z, hi);
    double d1lo = -a * flo / lo, d1hi = -a * fhi / hi;
    double d3lo = -a * (a + 1) * (a + 2) * flo / (lo * lo * lo);
    double d3hi = -a * (a + 1) * (a + 2) * fhi / (hi * hi * hi);
    return integral + 0.5 * (flo + fhi) + (d1hi - d1lo) / 12.0 - (d3hi - d3lo) / 720.0;
}

void dg_zipf_init(dg_zipf_t *z, uint64_t n, double a)
{
    z->a = a;
    z->n = n;
    z->head = n < DG_ZIPF_HEAD ? (uint32_t)n : DG_ZIPF_HEAD;

    /* Vose's alias method over the head */
    double w[DG_ZIPF_HEAD], sum = 0;
    uint32_t small[DG_ZIPF_HEAD], large[DG_ZIPF_HEAD], ns = 0, nl = 0;
    for (uint32_t r = 0; r < z->head; r++) {
        w[r] = s_zipf_h(z, (double)(r + 1));
        sum += w[r];
    }
    for (uint32_t r = 0; r < z->head; r++) {
        w[r] = w[r] * z->head / sum;
        if (w[r] < 1.0)
            small[ns++] = r;
        else
            large[nl++] = r;
    }
    while (ns && nl) {
        uint32_t sm = small[--ns], lg = large[nl - 1];
        z->prob[sm] = (uint32_t)(w[sm] * 4294967296.0);
        z->alias[sm] = lg;
        w[lg] = (w[lg] + w[sm]) - 1.0;
        if (w[lg] < 1.0) {
            nl--;
            small[ns++] = lg;
        }
    }
    while (nl) { /* rounding leftovers are exactly full */
        uint32_t r = large[--nl];
        z->prob[r] = UINT32_MAX;
        z->alias[r] = r;
    }
    while (ns) {
        uint32_t r = small[--ns];
        z->prob[r] = UINT32_MAX;
        z->alias[r] = r;
    }

    z->p_head = 1.0;
    if (n > z->head) {
        z->m = (double)z->head + 1.0;
        z->nd = (double)n;
        double tail = s_zipf_tail_sum(z, z->m, z->nd);
        z->p_head = sum / (sum + tail);
        z->u_lo = s_zipf_hint(z, z->m + 0.5) - s_zipf_h(z, z->m);
        z->u_hi = s_zipf_hint(z, z->nd + 0.5);
        z->s = 2.0 - s_zipf_hinv(z, s_zipf_hint(z, 2.5) - s_zipf_h(z, 2.0));
    }
}

/* A rank in 1..n. */
uint64_t dg_zipf_sample(const dg_zipf_t *z, uint64_t *rng)
{
    if (z->p_head >= 1.0 || zps_rng_uniform(rng) < z->p_head) {
        uint64_t h = zps_rng_next(rng);
        uint32_t i = (uint32_t)(((h >> 32) * z->head) >> 32);
        return 1 + ((uint32_t)h < z->prob[i] ? i : z->alias[i]);
    }
    for (;;) {
        double u = z->u_hi + zps_rng_uniform(rng) * (z->u_lo - z->u_hi);
        double x = s_zipf_hinv(z, u);
        double kx = x + 0.5, kd;
        uint64_t k;
        if (!(kx >= z->m)) {
            k = z->head + 1;
        } else if (kx >= z->nd) {
            k = z->n;
        } else {
            k = (uint64_t)kx;
        }
        kd = (double)k;
        if (kd - x <= z->s || u >= s_zipf_hint(z, kd + 0.5) - s_zipf_h(z, kd))
            return k;
    }
}

void dg_perm_init(dg_perm_t *p, uint64_t f, uint64_t seed)
{
    unsigned bits = 0;
    while (bits < 64 && (bits == 0 ? 1ULL : (1ULL << bits)) < f)
        bits++;
    p->f = f;
    p->bits = bits;
    p->mask = bits >= 64 ? ~0ULL : (1ULL << bits) - 1;
    p->shift = bits / 2 ? bits / 2 : 1;
    uint64_t k = zps_mix64(seed, S_KEY_PERM);
    p->add = zps_mix64(k, 1) & p->mask;
    p->m1 = (zps_mix64(k, 2) | 1) & p->mask;
    p->m2 = (zps_mix64(k, 3) | 1) & p->mask;
    p->m3 = (zps_mix64(k, 4) | 1) & p->mask;
}
