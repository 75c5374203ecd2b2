/* dg_zipf: Zipf-popular feature ranks and their spread over the id space,
 * for zps-datagen's ctr task.
 *
 * Sampler.  P(rank r) = r^-a / sum_{j=1..n} j^-a.  The head (ranks 1..T,
 * T = min(n, 4096), ~70% of draws at a = 1.1) is sampled from an alias
 * table (Vose); the tail (T+1..n) by rejection-inversion (Hoermann &
 * Derflinger 1996, "Rejection-inversion to generate variates from monotone
 * discrete distributions"), started at rank T+1 instead of 1: O(1) per
 * draw, no table, any n up to 2^62.  The head/tail split uses the exact
 * head sum and the tail sum by Euler-Maclaurin (error far below 1e-15 for
 * T+1 >= 1025; when n <= 4096 there is no tail and everything is exact).
 *
 * Permutation.  Rank r is written as feature id perm(r-1), a seed-keyed
 * bijection of [0,F): add / odd-multiply / xorshift rounds on ceil(log2 F)
 * bits, cycle-walking back into [0,F), so popular features are spread over
 * the id space.  It is inline: the ctr rows apply it to every tail rank.
 *
 * Both are value types: init fills them, nothing to free. */
#ifndef DG_ZIPF_H
#define DG_ZIPF_H

#include <stdint.h>

#define DG_ZIPF_HEAD 4096u

typedef struct {
    double a;        /* exponent, >= 0 */
    uint64_t n;      /* number of ranks */
    uint32_t head;   /* ranks 1..head in the alias table */
    double p_head;   /* probability of the head */
    uint32_t prob[DG_ZIPF_HEAD];   /* alias acceptance thresholds, 2^-32 units */
    uint32_t alias[DG_ZIPF_HEAD];
    /* tail rejection-inversion over m..n, m = head + 1 */
    double m, nd;
    double u_lo;     /* H(m + 0.5) - h(m) */
    double u_hi;     /* H(n + 0.5) */
    double s;
} dg_zipf_t;

/* Zipf(a) over ranks 1..n (n >= 1, a >= 0). */
void dg_zipf_init(dg_zipf_t *z, uint64_t n, double a);

/* A rank in 1..n, drawn from the generator *rng. */
uint64_t dg_zipf_sample(const dg_zipf_t *z, uint64_t *rng);

/* ---- rank -> id permutation of [0, F) ------------------------------------ */

typedef struct {
    uint64_t f, mask;
    unsigned bits, shift;
    uint64_t add, m1, m2, m3;
} dg_perm_t;

/* The bijection of [0, f) keyed by seed. */
void dg_perm_init(dg_perm_t *p, uint64_t f, uint64_t seed);

static inline uint64_t dg_perm_round(const dg_perm_t *p, uint64_t x)
{
    x = (x + p->add) & p->mask;
    x = (x * p->m1) & p->mask;
    x ^= x >> p->shift;
    x = (x * p->m2) & p->mask;
    x ^= x >> p->shift;
    x = (x * p->m3) & p->mask;
    x ^= x >> p->shift;
    return x;
}

/* Bijection of [0, f): a bijection of [0, 2^bits) with cycle walking. */
static inline uint64_t dg_perm_apply(const dg_perm_t *p, uint64_t x)
{
    do
        x = dg_perm_round(p, x);
    while (x >= p->f);
    return x;
}

#endif
