/* zps_optim: the optimizers of a row.  The servers apply them; --local
 * and zps-predict use them in process, so they live in common/.
 *
 * A row stores the state one key needs, dim floats per "slot" of state:
 *   sgd      [w]                     1*dim floats
 *   adagrad  [w | n]                 2*dim   n = sum of g^2
 *   ftrl     [z | n]                 2*dim   w derived lazily from z, n
 *   ftrl, accum uf16: [z | n16]      dim + ceil(dim/2)   n as a 16-bit unsigned
 *                                    float, rounded stochastically (below)
 *   adam     [w | m | v | t]         3*dim+1 t = steps taken by this row (lazy Adam)
 *   norm     [w | G | s]             2*dim+1 G = sum of squared gradients,
 *                                            s = max |x| of the key
 * Pulls return weights (zps_optim_weights); pushes carry gradients of the
 * loss (zps_optim_apply): dim floats per key, or (norm) [g | q | x], 2*dim+1:
 * the gradient, per column the sum over the batch's rows of the squared
 * per-row gradients, and the largest |x| of the key's feature in the
 * pushed batch (zps_optim_push_floats).
 * norm is the normalized adaptive gradient (NAG) of Ross, Mineiro and
 * Langford, "Normalized Online Learning", UAI 2013, per coordinate:
 *     s <- max(s, x);  G <- G + q;  w <- w - lr * g / (s * sqrt(G))
 * (as applied: G grows by max(q, g^2/32) + (l2 w)^2, the step is
 * lr / (s (sqrt(G) + eps s)), and an fm row's embedding columns step x0.1;
 * see s_norm in zps_optim.c)
 * which gives the same predictions whatever the scale of each feature (x
 * scaled by c: g by c, G by c^2, s by c, the step by 1/c), so one step
 * size serves binary, count, tf-idf and real-valued features.  A norm row
 * holds its initial values (for |x| = 1) until its first push, which
 * scales them by 1/x; until then its weights read as 0 (details in
 * zps_optim.c, s_norm).  L2 (and L1 for sgd/adagrad, as truncation) are
 * applied per coordinate; FTRL-Proximal follows McMahan et al., KDD'13,
 * Algorithm 1 with per-coordinate rates alpha/(beta+sqrt(n)).
 *
 * Initial state is a pure function of (init_seed, key, column): zero when
 * init_scale == 0, else uniform in [-init_scale, init_scale) derived from a
 * hash, so every pull of a never-pushed key agrees without storing it.
 * Columns below init_skip start at zero even when init_scale > 0 (an FM row
 * keeps its linear weight at 0 and randomises its embedding). */
#ifndef ZPS_OPTIM_H
#define ZPS_OPTIM_H

#include <stddef.h>
#include <stdint.h>

typedef enum { ZPS_OPT_SGD = 0, ZPS_OPT_ADAGRAD, ZPS_OPT_FTRL, ZPS_OPT_ADAM, ZPS_OPT_NORM } zps_opt_kind_t;

/* How FTRL stores its sum of squared gradients n.  n is never negative
 * and needs range more than digits, so uf16 is an unsigned 16-bit float:
 * 6 exponent bits (bias 31) and 10 mantissa bits, no sign, no inf or NaN;
 * normal values from 2^-30 to just under 2^33 with a relative spacing of
 * 1/1024 to 1/2048, subnormals in steps of 2^-40 below them; an n over the
 * top stays at the top (8.6e9).  (bfloat16 would spend a sign bit and a 2^+-127 range
 * on it and keep 7 mantissa bits.)  Each new n is rounded stochastically,
 * up or down with the probabilities that make its expectation the exact
 * sum, from bits hashed out of the row and the update, so the same pushes
 * give the same rows (replays and replicas agree).  sigma is computed from
 * the stored values, so z stays the exact FTRL sum for the g^2 sequence
 * the rounding implies: FTRL with each g^2 replaced by an unbiased draw.
 * Many increments below the spacing leave n with a relative standard
 * deviation of at most sqrt(1/1024) = 3% (sqrt(n), the rate's divisor,
 * 1.6%).  For dim 1 the row is 6 bytes, and the 2 bytes left of its 8 hold
 * a shard's eviction stamp (zps_optim_row_spare). */
typedef enum { ZPS_ACCUM_F32 = 0, ZPS_ACCUM_UF16 } zps_accum_t;

typedef struct zps_optim_conf_s {
    zps_opt_kind_t kind;
    uint32_t dim;        /* weights per key */
    float lr;            /* step size (sgd, adagrad, adam, norm); alpha for ftrl */
    float beta;          /* ftrl beta */
    float l1, l2;
    float eps;           /* adagrad/adam/norm epsilon */
    float beta1, beta2;  /* adam */
    float init_scale;    /* 0 = zeros */
    uint32_t init_skip;  /* leading columns that always start at 0 */
    uint64_t init_seed;
    zps_accum_t accum;   /* ftrl's n: float or uf16 (a server's storage
                          * choice: not in zps_optim_describe) */
} zps_optim_conf_t;

/* Defaults for kind: lr 0.1 (ftrl alpha 0.1, beta 1), eps 1e-8 (adagrad 1e-7, norm 1),
 * beta1 0.9, beta2 0.999, l1 = l2 = 0, zero init, dim 1. */
void zps_optim_defaults(zps_optim_conf_t *c, zps_opt_kind_t kind);

/* "sgd" | "adagrad" | "ftrl" | "adam" | "norm" -> kind; returns 0 or ZPS_EINVAL. */
int zps_optim_parse_kind(const char *name, zps_opt_kind_t *kind);
const char *zps_optim_kind_name(zps_opt_kind_t kind);

/* Checks ranges (lr > 0, l1,l2 >= 0, 0 <= beta1,beta2 < 1, dim >= 1, ...).
 * Returns 0 or ZPS_EINVAL with a reason in err[errlen]. */
int zps_optim_validate(const zps_optim_conf_t *c, char *err, size_t errlen);

/* Canonical "key=value,..." string of every setting, used to compare a
 * worker's expectations with the server's.  Returns snprintf's result. */
int zps_optim_describe(const zps_optim_conf_t *c, char *buf, size_t len);

/* Floats per stored row for this optimizer and dim. */
uint32_t zps_optim_row_floats(const zps_optim_conf_t *c);

/* Bytes at the end of a row that the optimizer does not use (2 for ftrl
 * with accum uf16 and an odd dim, else 0).  They are zero in a fresh row. */
uint32_t zps_optim_row_spare(const zps_optim_conf_t *c);

/* Floats per key in a push: dim, or 2 dim + 1 for norm ([g | q | x]: q the
 * sums of squared per-row gradients, x the largest |x| of the key's
 * feature in the batch; the bias key sends x = 1). */
uint32_t zps_optim_push_floats(const zps_optim_conf_t *c);

/* Fill row (row_floats) with the initial state of key. */
void zps_optim_init_row(const zps_optim_conf_t *c, uint64_t key, float *row);

/* Weights (dim floats) of a stored row. */
void zps_optim_weights(const zps_optim_conf_t *c, const float *row, float *w);

/* Batched: w + i * dim gets the weights of rows[i] (none NULL), i < n. */
void zps_optim_weights_n(const zps_optim_conf_t *c, float *const *rows, size_t n, float *w);

/* Weights of a key that was never pushed (same as init_row + weights). */
void zps_optim_initial_weights(const zps_optim_conf_t *c, uint64_t key, float *w);

/* Apply one gradient (zps_optim_push_floats floats) to a row. */
void zps_optim_apply(const zps_optim_conf_t *c, float *row, const float *grad);

/* Batched: rows[i] gets the gradient grads + i * zps_optim_push_floats, for
 * i < n (the server's hot loop: one switch per chunk, not per row). */
void zps_optim_apply_n(const zps_optim_conf_t *c, float *const *rows, const float *grads, size_t n);

/* 1 if every float of the row, and every weight it yields, is finite. */
int zps_optim_row_finite(const zps_optim_conf_t *c, const float *row);

/* Index of the first of rows[0..n) that is not zps_optim_row_finite, or n. */
size_t zps_optim_rows_finite(const zps_optim_conf_t *c, float *const *rows, size_t n);

/* out (row_floats) = row after applying grad; row is not changed.
 * Returns zps_optim_row_finite(out): the server computes an update this way,
 * checks it, and commits it only if the whole push stays finite. */
int zps_optim_try_apply(const zps_optim_conf_t *c, const float *row, float *out, const float *grad);

/* Server-side gradient clipping: every value into [-limit, limit]
 * (limit <= 0: no clipping). */
void zps_optim_clip(float *g, size_t n, float limit);

#endif
