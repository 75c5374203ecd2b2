/* zps_optim: per-coordinate optimizer updates (row layouts in zps_optim.h).
 *
 * Design: zps_optim_apply() switches on the kind once per row and then runs a
 * plain float loop over the dim coordinates.  Whatever depends only on the
 * configuration or on the row (lr*l1, Adam's bias corrections) is computed
 * before the loop.  L1 truncation is branch-free,
 *     w = copysign(max(|w| - step*l1, 0), w),
 * which is the identity when l1 == 0 (NaN is kept, not masked), so a single
 * loop serves both cases.  FTRL stores (z, n) and derives w lazily; its
 * initial weight w0 is encoded as z0 = -w0*(beta/alpha + l2) - sign(w0)*l1,
 * n0 = 0, which s_ftrl_w() maps back to w0 up to float rounding.
 *
 * Initial values are a pure function of (init_seed, key, column):
 *     h0 = mix64(key, init_seed ^ SEED_INIT)
 *     w0[j] = init_scale * hash_unit(mix64(h0 + j, SEED_INIT))
 * for j >= init_skip (else 0), in [-init_scale, init_scale).
 *
 * Adam keeps its step count t as a float (exact to 2^24 steps; past that t
 * stops growing, when both bias corrections equal 1 in float anyway). */
#include "zps_optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zps_err.h"
#include "zps_hash.h"

#define S_DIM_MAX (1u << 20)

void zps_optim_defaults(zps_optim_conf_t *c, zps_opt_kind_t kind)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->dim = 1;
    c->lr = 0.1f;
    c->beta = 1.0f;
    c->eps = kind == ZPS_OPT_NORM ? 1.0f : kind == ZPS_OPT_ADAGRAD ? 1e-7f : 1e-8f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
}

static const char *const s_kind_names[] = {"sgd", "adagrad", "ftrl", "adam", "norm"};
#define S_NKINDS (sizeof s_kind_names / sizeof s_kind_names[0])

int zps_optim_parse_kind(const char *name, zps_opt_kind_t *kind)
{
    for (size_t i = 0; name && i < S_NKINDS; i++)
        if (strcmp(name, s_kind_names[i]) == 0) {
            *kind = (zps_opt_kind_t)i;
            return 0;
        }
    return ZPS_EINVAL;
}

const char *zps_optim_kind_name(zps_opt_kind_t kind)
{
    return (unsigned)kind < S_NKINDS ? s_kind_names[kind] : "unknown";
}

static int s_bad(char *err, size_t errlen, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", what);
    return ZPS_EINVAL;
}

int zps_optim_validate(const zps_optim_conf_t *c, char *err, size_t errlen)
{
    if ((unsigned)c->kind >= S_NKINDS)
        return s_bad(err, errlen, "unknown optimizer kind");
    if (c->dim < 1 || c->dim > S_DIM_MAX)
        return s_bad(err, errlen, "dim must be in [1, 1048576]");
    if (!(c->lr > 0) || !isfinite(c->lr))
        return s_bad(err, errlen, "lr must be finite and > 0");
    if (!(c->l1 >= 0) || !isfinite(c->l1))
        return s_bad(err, errlen, "l1 must be finite and >= 0");
    if (!(c->l2 >= 0) || !isfinite(c->l2))
        return s_bad(err, errlen, "l2 must be finite and >= 0");
    if (!(c->beta >= 0) || !isfinite(c->beta))
        return s_bad(err, errlen, "beta must be finite and >= 0");
    if (!(c->eps >= 0) || !isfinite(c->eps))
        return s_bad(err, errlen, "eps must be finite and >= 0");
    if ((c->kind == ZPS_OPT_ADAGRAD || c->kind == ZPS_OPT_ADAM) && !(c->eps > 0))
        return s_bad(err, errlen, "eps must be > 0 for adagrad and adam");
    if (!(c->beta1 >= 0 && c->beta1 < 1))
        return s_bad(err, errlen, "beta1 must be in [0, 1)");
    if (!(c->beta2 >= 0 && c->beta2 < 1))
        return s_bad(err, errlen, "beta2 must be in [0, 1)");
    if (!(c->init_scale >= 0) || !isfinite(c->init_scale))
        return s_bad(err, errlen, "init_scale must be finite and >= 0");
    if (c->init_skip > c->dim)
        return s_bad(err, errlen, "init_skip must be <= dim");
    if (c->accum != ZPS_ACCUM_F32 && (c->accum != ZPS_ACCUM_UF16 || c->kind != ZPS_OPT_FTRL))
        return s_bad(err, errlen, "accum uf16 is for ftrl only");
    if (c->kind == ZPS_OPT_FTRL && c->init_scale > 0 && c->beta == 0 && c->l2 == 0)
        return s_bad(err, errlen,
                     "ftrl with random init needs beta > 0 or l2 > 0 "
                     "(else an initial weight cannot be represented)");
    if (err && errlen)
        err[0] = '\0';
    return 0;
}

/* Shortest %g text that reads back as the same float (so 0.1f prints as
 * "0.1", not "0.100000001"); -0 prints as "0".  A pure function of the
 * value, hence canonical. */
static void s_fmt_float(float x, char out[32])
{
    if (x == 0) {
        strcpy(out, "0");
        return;
    }
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(out, 32, "%.*g", prec, (double)x);
        if (strtof(out, NULL) == x)
            return;
    }
    snprintf(out, 32, "%.9g", (double)x); /* NaN: reads back unequal */
}

int zps_optim_describe(const zps_optim_conf_t *c, char *buf, size_t len)
{
    char lr[32], beta[32], l1[32], l2[32], eps[32], b1[32], b2[32], init[32];
    s_fmt_float(c->lr, lr);
    s_fmt_float(c->beta, beta);
    s_fmt_float(c->l1, l1);
    s_fmt_float(c->l2, l2);
    s_fmt_float(c->eps, eps);
    s_fmt_float(c->beta1, b1);
    s_fmt_float(c->beta2, b2);
    s_fmt_float(c->init_scale, init);
    return snprintf(buf, len,
                    "opt=%s,dim=%u,lr=%s,beta=%s,l1=%s,l2=%s,eps=%s,beta1=%s,"
                    "beta2=%s,init=%s,skip=%u,seed=%llu",
                    zps_optim_kind_name(c->kind), (unsigned)c->dim, lr, beta, l1,
                    l2, eps, b1, b2, init, (unsigned)c->init_skip,
                    (unsigned long long)c->init_seed);
}

uint32_t zps_optim_row_floats(const zps_optim_conf_t *c)
{
    switch (c->kind) {
    case ZPS_OPT_SGD: return c->dim;
    case ZPS_OPT_ADAGRAD: return 2 * c->dim;
    case ZPS_OPT_FTRL: return c->accum == ZPS_ACCUM_UF16 ? c->dim + (c->dim + 1) / 2 : 2 * c->dim;
    case ZPS_OPT_ADAM: return 3 * c->dim + 1;
    case ZPS_OPT_NORM: return 2 * c->dim + 1;
    }
    return c->dim;
}

uint32_t zps_optim_row_spare(const zps_optim_conf_t *c)
{
    return c->kind == ZPS_OPT_FTRL && c->accum == ZPS_ACCUM_UF16 && (c->dim & 1) ? 2 : 0;
}

uint32_t zps_optim_push_floats(const zps_optim_conf_t *c)
{
    return c->kind == ZPS_OPT_NORM ? 2 * c->dim + 1 : c->dim;
}

/* ---- initial state ------------------------------------------------------ */

static inline float s_init_w(const zps_optim_conf_t *c, uint64_t h0, uint32_t j)
{
    if (j < c->init_skip || c->init_scale == 0)
        return 0.0f;
    return c->init_scale * zps_hash_unit(zps_mix64(h0 + j, ZPS_SEED_INIT));
}

static inline uint64_t s_init_h0(const zps_optim_conf_t *c, uint64_t key)
{
    return zps_mix64(key, c->init_seed ^ ZPS_SEED_INIT);
}

/* FTRL settings as locals, so loops need not reload them through c. */
typedef struct {
    float alpha, beta, l1, l2;
} s_ftrl_t;

static inline s_ftrl_t s_ftrl_consts(const zps_optim_conf_t *c)
{
    return (s_ftrl_t){c->lr, c->beta, c->l1, c->l2};
}

/* FTRL weight of one coordinate from its (z, n). */
static inline float s_ftrl_w(s_ftrl_t k, float z, float n)
{
    if (fabsf(z) <= k.l1)
        return 0.0f;
    return -(z - copysignf(k.l1, z)) / ((k.beta + sqrtf(n)) / k.alpha + k.l2);
}

/* FTRL z with n = 0 whose weight is w0. */
static inline float s_ftrl_z0(s_ftrl_t k, float w0)
{
    if (w0 == 0)
        return 0.0f;
    return -w0 * ((k.beta + sqrtf(0.0f)) / k.alpha + k.l2) - copysignf(k.l1, w0);
}

/* ---- uf16 n (accum uf16, see zps_optim.h) ----------------------------------
 * n16 of coordinate j is the 2 bytes at (char *)(row + dim) + 2 j, read and
 * written with memcpy (the row's memory is floats to the table).  A normal
 * uf16 is a float's exponent and top 10 mantissa bits, the exponent moved
 * by S_UF_OFF: its bits are the float's bits minus S_UF_OFF << 23, shifted
 * down by 13. */
#define S_UF_BIAS 31
#define S_UF_OFF (127u - S_UF_BIAS)          /* float exponent = uf16 exponent + this */
#define S_UF_SUB 0x1p40f                     /* subnormal: n = code * 2^-40 */

static inline int s_acc16(const zps_optim_conf_t *c)
{
    return c->accum == ZPS_ACCUM_UF16;
}

static inline float s_uf16_get(uint16_t v)
{
    if (v < 1024)
        return (float)v / S_UF_SUB;
    uint32_t u = ((uint32_t)v << 13) + (S_UF_OFF << 23);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* x >= 0 to uf16, rounded up with the probability that makes the result's
 * expectation x, given r uniform in [0, 2^13); over the top: the top (NaN
 * too: the row's z is NaN then and the push is refused anyway). */
static inline uint16_t s_uf16_sr(float x, uint32_t r)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if (!(x < 0x1p33f))
        return 0xffffu;
    if (u < (S_UF_OFF + 1) << 23) /* under 2^-30: a subnormal (0 <= x * 2^40 < 1024) */
        return (uint16_t)(x * S_UF_SUB + (float)(r & 0x1fffu) * 0x1p-13f);
    uint32_t v = (u - (S_UF_OFF << 23) + (r & 0x1fffu)) >> 13;
    return (uint16_t)(v < 0xffffu ? v : 0xffffu);
}

static inline float s_n16(const float *row, uint32_t d, uint32_t j)
{
    uint16_t b;
    memcpy(&b, (const char *)(row + d) + 2 * (size_t)j, 2);
    return s_uf16_get(b);
}

static inline void s_set_n16(float *row, uint32_t d, uint32_t j, uint16_t b)
{
    memcpy((char *)(row + d) + 2 * (size_t)j, &b, 2);
}

/* FTRL's n of coordinate j, either storage */
static inline float s_ftrl_n(const zps_optim_conf_t *c, const float *row, uint32_t j)
{
    return s_acc16(c) ? s_n16(row, c->dim, j) : row[c->dim + j];
}

void zps_optim_init_row(const zps_optim_conf_t *c, uint64_t key, float *row)
{
    const uint32_t d = c->dim;
    memset(row, 0, (size_t)zps_optim_row_floats(c) * sizeof *row);
    if (c->init_scale == 0 || c->init_skip >= d)
        return;
    const uint64_t h0 = s_init_h0(c, key);
    for (uint32_t j = c->init_skip; j < d; j++) {
        float w0 = s_init_w(c, h0, j);
        row[j] = c->kind == ZPS_OPT_FTRL ? s_ftrl_z0(s_ftrl_consts(c), w0) : w0;
    }
}

void zps_optim_weights(const zps_optim_conf_t *c, const float *row, float *w)
{
    const uint32_t d = c->dim;
    if (c->kind == ZPS_OPT_NORM && row[2 * d] == 0) { /* never pushed: see s_norm */
        memset(w, 0, (size_t)d * sizeof *w);
        return;
    }
    if (c->kind == ZPS_OPT_FTRL) {
        const s_ftrl_t k = s_ftrl_consts(c);
        for (uint32_t j = 0; j < d; j++)
            w[j] = s_ftrl_w(k, row[j], s_ftrl_n(c, row, j));
    } else {
        memcpy(w, row, (size_t)d * sizeof *w);
    }
}

void zps_optim_weights_n(const zps_optim_conf_t *c, float *const *rows, size_t n, float *w)
{
    const uint32_t d = c->dim;
    if (c->kind == ZPS_OPT_SGD || c->kind == ZPS_OPT_ADAGRAD || c->kind == ZPS_OPT_ADAM) {
        for (size_t i = 0; i < n; i++)
            for (uint32_t j = 0; j < d; j++)
                w[i * d + j] = rows[i][j];
        return;
    }
    if (c->kind == ZPS_OPT_FTRL) {
        const s_ftrl_t k = s_ftrl_consts(c);
        if (s_acc16(c)) {
            for (size_t i = 0; i < n; i++)
                for (uint32_t j = 0; j < d; j++)
                    w[i * d + j] = s_ftrl_w(k, rows[i][j], s_n16(rows[i], d, j));
            return;
        }
        for (size_t i = 0; i < n; i++)
            for (uint32_t j = 0; j < d; j++)
                w[i * d + j] = s_ftrl_w(k, rows[i][j], rows[i][d + j]);
        return;
    }
    for (size_t i = 0; i < n; i++)
        zps_optim_weights(c, rows[i], w + i * d);
}

void zps_optim_initial_weights(const zps_optim_conf_t *c, uint64_t key, float *w)
{
    const uint32_t d = c->dim;
    if (c->kind == ZPS_OPT_NORM) { /* see s_norm */
        memset(w, 0, (size_t)d * sizeof *w);
        return;
    }
    const uint64_t h0 = s_init_h0(c, key);
    const s_ftrl_t k = s_ftrl_consts(c);
    for (uint32_t j = 0; j < d; j++) {
        float w0 = s_init_w(c, h0, j);
        w[j] = c->kind == ZPS_OPT_FTRL ? s_ftrl_w(k, s_ftrl_z0(k, w0), 0.0f) : w0;
    }
}

/* ---- updates ---------------------------------------------------------- */

/* sign(w) * max(|w| - t, 0); the identity for t == 0; keeps NaN. */
static inline float s_trunc(float w, float t)
{
    float a = fabsf(w) - t;
    return copysignf(a < 0 ? 0.0f : a, w);
}

static void s_sgd(const zps_optim_conf_t *c, float *restrict w,
                  const float *restrict grad)
{
    const uint32_t d = c->dim;
    const float lr = c->lr, l2 = c->l2, lr_l1 = c->lr * c->l1;
    for (uint32_t j = 0; j < d; j++) {
        float g = grad[j] + l2 * w[j];
        w[j] = s_trunc(w[j] - lr * g, lr_l1);
    }
}

static void s_adagrad(const zps_optim_conf_t *c, float *restrict row,
                      const float *restrict grad)
{
    const uint32_t d = c->dim;
    float *restrict w = row, *restrict n = row + d;
    const float lr = c->lr, l1 = c->l1, l2 = c->l2, eps = c->eps;
    for (uint32_t j = 0; j < d; j++) {
        float g = grad[j] + l2 * w[j];
        float nn = n[j] + g * g;
        float step = lr / (sqrtf(nn) + eps);
        n[j] = nn;
        w[j] = s_trunc(w[j] - step * g, step * l1);
    }
}

static void s_ftrl(const zps_optim_conf_t *c, float *restrict row,
                   const float *restrict grad)
{
    const uint32_t d = c->dim;
    float *restrict z = row, *restrict n = row + d;
    const s_ftrl_t k = s_ftrl_consts(c);
    for (uint32_t j = 0; j < d; j++) {
        float g = grad[j];
        float w = s_ftrl_w(k, z[j], n[j]);
        float nn = n[j] + g * g;
        float sigma = (sqrtf(nn) - sqrtf(n[j])) / k.alpha;
        z[j] += g - sigma * w;
        n[j] = nn;
    }
}

/* s_ftrl with n in uf16: the new n is rounded first (random bits from the
 * row's z and the exact new n), and sigma uses the stored values, so z's
 * sum telescopes as in s_ftrl (see zps_optim.h). */
static void s_ftrl16(const zps_optim_conf_t *c, float *restrict row,
                     const float *restrict grad)
{
    const uint32_t d = c->dim;
    float *restrict z = row;
    const s_ftrl_t k = s_ftrl_consts(c);
    for (uint32_t j = 0; j < d; j++) {
        float g = grad[j];
        float n = s_n16(row, d, j);
        float w = s_ftrl_w(k, z[j], n);
        float exact = n + g * g;
        uint32_t zb, eb;
        memcpy(&zb, &z[j], 4);
        memcpy(&eb, &exact, 4);
        uint16_t b = s_uf16_sr(exact, (uint32_t)(zps_mix64(((uint64_t)zb << 32) | eb,
                                                            ZPS_SEED_INIT) >> 51));
        s_set_n16(row, d, j, b);
        float nn = s_uf16_get(b);
        float sigma = (sqrtf(nn) - sqrtf(n)) / k.alpha;
        z[j] += g - sigma * w;
    }
}

static void s_adam(const zps_optim_conf_t *c, float *restrict row,
                   const float *restrict grad)
{
    const uint32_t d = c->dim;
    float *restrict w = row, *restrict m = row + d, *restrict v = row + 2 * d;
    float t = row[3 * d] + 1.0f;
    row[3 * d] = t;
    const float b1 = c->beta1, b2 = c->beta2, lr = c->lr, l2 = c->l2, eps = c->eps;
    const float one_b1 = 1.0f - b1, one_b2 = 1.0f - b2;
    const float c1 = (float)(1.0 / (1.0 - pow((double)b1, (double)t)));
    const float c2 = (float)(1.0 / (1.0 - pow((double)b2, (double)t)));
    for (uint32_t j = 0; j < d; j++) {
        float g = grad[j] + l2 * w[j];
        float mm = b1 * m[j] + one_b1 * g;
        float vv = b2 * v[j] + one_b2 * g * g;
        m[j] = mm;
        v[j] = vv;
        w[j] -= lr * (mm * c1) / (sqrtf(vv * c2) + eps);
    }
}

/* Normalized adaptive gradient (NAG, Ross, Mineiro, Langford, UAI 2013),
 * row [w | G | s], grad [g | q | x] with g the batch's summed gradient, q
 * the sum over its rows of the squared per-row gradients and x = max |x|
 * of the key in the batch:
 *     if x > s: w <- w * s / x, s <- x
 *     g' = g + l2 w;  G <- G + q + (l2 w)^2
 *     w <- trunc(w - step g', step l1),  step = lr / (s (sqrt(G) + eps s))
 * Adding q (not g^2) makes a batch behave like its rows applied one by one
 * with AdaGrad: k rows whose gradients agree move the weight about sqrt(k)
 * per-row steps (per-row AdaGrad: 2 sqrt(k)), where g^2 would allow one;
 * rows that disagree add to G as much as they would one at a time.  With
 * one row per batch q = g^2 (without l2 this is NAG exactly).
 * The rescale of w when the feature's known range grows is NAG's: the
 * weight was learnt with steps sized for the smaller range.  s = 0 marks a
 * row never pushed: its initial values (fm: a random embedding) are meant
 * for |x| = 1, so the first push divides them by x (by 1 if x is 0, e.g.
 * rounded away by a lossy push codec) and sets s = x; until then its
 * weights read as 0 (zps_optim_weights), so no prediction ever uses an
 * embedding that is not yet scaled to its feature (with x ~ 100, a 0.01
 * embedding would give pairwise terms ~ 1 per pair).  A coordinate whose
 * denominator is 0 (G = 0 and eps = 0: no gradient yet) is left alone.
 * A negative q (a lossy codec, or error feedback) counts as 0.
 * eps s damps a feature's first steps, as FTRL's beta does (beta +
 * sqrt(n)), but in the feature's own units: sqrt(G) grows like s times
 * the root of the rows seen, so eps = 1 (the default) weighs like about
 * one row's squared gradient at its largest and the rule stays invariant to
 * feature scale.  Without it (eps -> 0) a rare feature's first push moves
 * it a full lr, which overfits rare features on CTR-like data (issue 13,
 * docs/bench-quality.md). 
 * A row with init_skip > 0 (fm: [w | v_1..v_k]) steps its columns past
 * init_skip (the embedding) S_NORM_EMB times as far: a row's pairwise term
 * sums over all pairs of its features, so one embedding moves the logit
 * through every partner at once (docs/bench-quality.md). */
#define S_NORM_EMB 0.1f
#ifndef S_NORM_BOOST
#define S_NORM_BOOST 32.0f
#endif
static void s_norm(const zps_optim_conf_t *c, float *restrict row,
                   const float *restrict grad)
{
    const uint32_t d = c->dim;
    float *restrict w = row, *restrict G = row + d;
    const float *restrict q = grad + d;
    const float x = grad[2 * d];
    float s = row[2 * d];
    if (s == 0) { /* first push: the initial row is for |x| = 1 */
        s = x > 0 && isfinite(x) ? x : 1.0f;
        for (uint32_t j = 0; s != 1.0f && j < d; j++)
            w[j] /= s;
        row[2 * d] = s;
    } else if (x > s && isfinite(x)) {
        const float r = s / x;
        for (uint32_t j = 0; j < d; j++)
            w[j] *= r;
        s = row[2 * d] = x;
    }
    const float lr_s = c->lr / s;
    const float l1 = c->l1, l2 = c->l2, eps = c->eps;
    const int emb = c->init_skip > 0; /* an fm row: [w | embedding] */
    for (uint32_t j = 0; j < d; j++) {
        float r = l2 * w[j];
        float g = grad[j] + r;
        float qb = grad[j] * grad[j] * (1.0f / S_NORM_BOOST); /* bounds the boost */
        float gg = G[j] + (q[j] > qb ? q[j] : qb) + r * r;
        float den = sqrtf(gg) + eps * s;
        G[j] = gg;
        if (den > 0) {
            float step = (emb && j >= c->init_skip ? S_NORM_EMB : 1.0f) * lr_s / den;
            w[j] = s_trunc(w[j] - step * g, step * l1);
        }
    }
}

void zps_optim_apply(const zps_optim_conf_t *c, float *row, const float *grad)
{
    switch (c->kind) {
    case ZPS_OPT_SGD: s_sgd(c, row, grad); break;
    case ZPS_OPT_ADAGRAD: s_adagrad(c, row, grad); break;
    case ZPS_OPT_FTRL: s_acc16(c) ? s_ftrl16(c, row, grad) : s_ftrl(c, row, grad); break;
    case ZPS_OPT_ADAM: s_adam(c, row, grad); break;
    case ZPS_OPT_NORM: s_norm(c, row, grad); break;
    }
}

void zps_optim_apply_n(const zps_optim_conf_t *c, float *const *rows, const float *grads, size_t n)
{
    const size_t pf = zps_optim_push_floats(c);
    switch (c->kind) {
    case ZPS_OPT_SGD: for (size_t i = 0; i < n; i++) s_sgd(c, rows[i], grads + i * pf); break;
    case ZPS_OPT_ADAGRAD: for (size_t i = 0; i < n; i++) s_adagrad(c, rows[i], grads + i * pf); break;
    case ZPS_OPT_FTRL:
        if (s_acc16(c))
            for (size_t i = 0; i < n; i++) s_ftrl16(c, rows[i], grads + i * pf);
        else
            for (size_t i = 0; i < n; i++) s_ftrl(c, rows[i], grads + i * pf);
        break;
    case ZPS_OPT_ADAM: for (size_t i = 0; i < n; i++) s_adam(c, rows[i], grads + i * pf); break;
    case ZPS_OPT_NORM: for (size_t i = 0; i < n; i++) s_norm(c, rows[i], grads + i * pf); break;
    }
}

/* ---- integrity ------------------------------------------------------------ */

/* FTRL: w = -(z - sign(z) l1) / ((beta + sqrt(n)) / alpha + l2).  The
 * numerator is smaller than |z|, so with finite z, n >= 0 and a denominator
 * of at least 1 (the usual case) w is finite too: then checking z and n
 * suffices. */
static int s_ftrl_w_finite_if_zn(const zps_optim_conf_t *c)
{
    const s_ftrl_t k = s_ftrl_consts(c);
    return k.beta / k.alpha + k.l2 >= 1.0f;
}

static int s_ftrl_n_nonneg(const zps_optim_conf_t *c, const float *row)
{
    int neg = 0;
    if (s_acc16(c))
        return 1; /* uf16: never negative, never inf or NaN */
    for (uint32_t j = 0; j < c->dim; j++)
        neg |= row[c->dim + j] < 0.0f;
    return !neg;
}

/* Floats of a row that are floats (uf16: z only). */
static uint32_t s_float_part(const zps_optim_conf_t *c)
{
    return s_acc16(c) ? c->dim : zps_optim_row_floats(c);
}

int zps_optim_row_finite(const zps_optim_conf_t *c, const float *row)
{
    const uint32_t rf = s_float_part(c);
    /* a sum propagates inf and NaN; x - x is NaN for either, 0 otherwise */
    float acc = 0.0f;
    for (uint32_t j = 0; j < rf; j++)
        acc += row[j] - row[j];
    if (acc != 0.0f)
        return 0;
    if (c->kind == ZPS_OPT_FTRL) {
        if (s_ftrl_w_finite_if_zn(c) && s_ftrl_n_nonneg(c, row))
            return 1;
        const s_ftrl_t k = s_ftrl_consts(c);
        for (uint32_t j = 0; j < c->dim; j++) {
            float w = s_ftrl_w(k, row[j], s_ftrl_n(c, row, j));
            acc += w - w;
        }
        if (acc != 0.0f)
            return 0;
    }
    return 1;
}

size_t zps_optim_rows_finite(const zps_optim_conf_t *c, float *const *rows, size_t n)
{
    const uint32_t rf = s_float_part(c);
    float acc = 0.0f; /* as in zps_optim_row_finite, over every row at once */
    for (size_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < rf; j++)
            acc += rows[i][j] - rows[i][j];
    int quick = acc == 0.0f;
    if (quick && c->kind == ZPS_OPT_FTRL) {
        quick = s_ftrl_w_finite_if_zn(c);
        for (size_t i = 0; quick && i < n; i++)
            quick = s_ftrl_n_nonneg(c, rows[i]);
    }
    if (quick)
        return n;
    for (size_t i = 0; i < n; i++)
        if (!zps_optim_row_finite(c, rows[i]))
            return i;
    return n;
}

int zps_optim_try_apply(const zps_optim_conf_t *c, const float *row, float *out, const float *grad)
{
    memcpy(out, row, (size_t)zps_optim_row_floats(c) * sizeof *out);
    zps_optim_apply(c, out, grad);
    return zps_optim_row_finite(c, out);
}

void zps_optim_clip(float *g, size_t n, float limit)
{
    if (!(limit > 0))
        return;
    for (size_t i = 0; i < n; i++)
        g[i] = g[i] > limit ? limit : g[i] < -limit ? -limit : g[i];
}
