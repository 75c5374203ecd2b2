/* wk_model: losses, gradients and predictions (models described in wk_model.h).
 * This file holds lr and fm; the mlp is wk_mlp.c, reached through the same
 * wk_model_* calls.
 *
 * Sparse models (lr, fm): key list and feature -> key mapping.
 *   wk_model_keys inserts ZPS_BIAS_KEY and then every feature id of the batch
 *   into an open-addressing hash table (linear probing, Fibonacci hashing,
 *   load <= 1/2).  A bucket is {key, slot, gen}: it is occupied only if gen
 *   equals the table's current generation, so clearing the table for the next
 *   batch is one increment (a memset only when gen wraps).  A new key gets the
 *   next slot (first-seen order) and the table doubles when half full, so its
 *   size follows the number of distinct keys, not the batch size.  A first
 *   pass stores each nonzero's 32-bit hash in pos[j] (the bucket is its top
 *   ht_bits bits, so it survives doubling); the insert pass then prefetches
 *   the bucket of the nonzero S_PREFETCH ahead (the table outgrows L2 at
 *   ~30K distinct keys) and overwrites pos[j] with the slot.  The distinct
 *   keys except the bias (slot 0) are then sorted by zps_sort (an LSD radix
 *   sort over only the bits in which they differ); when <= 32 bits vary
 *   (hashed ids) each (key, slot) is packed into one uint64 (half the memory
 *   traffic).  The bias is kept out of the sort (its 0xff bytes
 *   would make every bit vary) and goes last, as UINT64_MAX is the largest
 *   key.  rank[slot] = sorted position turns pos[] into indices of the sorted
 *   key list in one more pass.  Per nonzero that is one hash probe and one
 *   rank lookup; only the distinct keys are sorted.
 *   A feature id equal to ZPS_BIAS_KEY (reserved; readers never produce it)
 *   simply maps to the bias row: in lr it is an extra input of the bias, in
 *   fm it also uses (and trains) the bias row's otherwise unused embedding.
 *
 * Gradient layout: nkeys rows of pdim floats.  pdim = dim, except with
 *   --optimizer norm (lr, fm), where each row is [g | q | x] (2 dim + 1
 *   floats): g the gradient summed over the batch, q per column the sum
 *   over the batch's rows of the squared per-row gradient (what a per-row
 *   AdaGrad would add to its sum of squares; the servers add q, not g^2, so
 *   a batch of k agreeing rows steps about sqrt(k) times as far as one row,
 *   as k per-row steps would), and x the largest |x| of the key's feature
 *   in the batch (1 for the bias), which the servers keep as the feature's
 *   scale (zps_optim.h, "norm").
 *
 * lr/fm numerics: z is accumulated in double from the float weights; then
 *   e = exp(-|z|), p = 1/(1+e) (z >= 0) or e/(1+e) (z < 0) and
 *   loss = max(z,0) - y z + log1p(e), which equals -[y log p + (1-y) log(1-p)]
 *   without overflow or log(0) for any z.  dL/dz = p - y.  Gradients are the
 *   SUM over rows (g is zeroed first); the bias row of fm gets a gradient only
 *   in column 0.  Labels are used as y as they are (0/1; soft labels in [0,1]
 *   work too).  The fm step prefetches the next row's weight and gradient
 *   rows, which are scattered over the batch's key range.
 *
 * mlp: in wk_mlp.c (wk_mlp.h); the functions here dispatch to it.  The
 *   model keeps only its dim (ZPS_MLP_CHUNK), classes and key list.
 *
 * Out of memory: wk_model_keys returns 0 keys and step/predict then return
 * NAN (g zeroed, out untouched) until a later wk_model_keys succeeds; mlp
 * step/predict also return NAN if scratch for a larger batch cannot be had.
 *
 * Nothing is global: a model is used by one thread at a time. */
#include "wk_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zps_err.h"
#include "zps_hash.h"
#include "zps_sort.h"

#include "wk_mlp.h"

#define S_HT_MIN_BITS 10u
#define S_FM_MAX_DIM 4096u
#define S_SMALL_SORT 32u
#define S_PREFETCH 32u /* nonzeros ahead whose bucket is prefetched */

typedef struct {
    uint64_t key;
    uint32_t slot;
    uint32_t gen; /* occupied iff gen == table generation */
} s_bucket_t;

typedef zps_sort_pair_t s_pair_t; /* {key, val = slot} */

struct wk_model {
    zps_model_kind_t kind;
    uint32_t dim, classes;
    uint32_t pdim;  /* floats per key in a gradient: dim, or 2 dim + 1 (norm: [g | q | x]) */
    uint32_t fm_k;

    uint64_t *keys; /* current key list (sparse models) */
    size_t nkeys;

    /* sparse models */
    uint32_t *pos; /* nonzero j -> index in keys */
    size_t pos_cap;
    s_bucket_t *ht;
    uint32_t ht_bits;
    uint32_t gen;
    s_pair_t *pairs, *pairs_tmp; /* distinct keys by slot; radix scratch */
    uint32_t *rank;              /* slot -> sorted index */
    size_t uniq_cap;             /* capacity of pairs, pairs_tmp, rank, keys */
    double *fm_s;                /* fm: per-row sums s_f */
    int fm_linear_only;          /* fm: no gradient for the embeddings */

    wk_mlp_t *mlp;               /* --model mlp: everything else lives there */
    const uint64_t *mlp_keys;    /* its keys 0..nkeys-1 (owned by mlp) */
};

/* ---- helpers ------------------------------------------------------------- */

static void s_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

/* Capacity for need elements: new capacity (doubling from cap), or cap. */
static size_t s_cap_for(size_t cap, size_t need)
{
    if (need <= cap)
        return cap;
    size_t n = cap ? cap : 64;
    while (n < need)
        n *= 2;
    return n;
}

/* realloc that leaves *p alone on failure. */
static int s_resize(void **p, size_t n, size_t elem)
{
    void *q = realloc(*p, n * elem);
    if (q == NULL)
        return ZPS_ENOMEM;
    *p = q;
    return 0;
}

/* Logistic loss of logit z for label y; *p = sigmoid(z). */
static inline double s_logistic(double z, double y, double *p)
{
    double e = exp(-fabs(z));
    double inv = 1.0 / (1.0 + e);
    *p = z >= 0 ? inv : e * inv;
    return (z > 0 ? z : 0) - y * z + log1p(e);
}

/* ---- sparse keys --------------------------------------------------------- */

/* 32-bit hash; the bucket is its top ht_bits bits, so a hash stays valid
 * when the table doubles. */
static inline uint32_t s_hash(uint64_t key)
{
    key ^= key >> 29;
    return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 32);
}

static int s_ht_alloc(wk_model_t *m, uint32_t bits)
{
    s_bucket_t *ht = calloc((size_t)1 << bits, sizeof *ht);
    if (ht == NULL)
        return ZPS_ENOMEM;
    free(m->ht);
    m->ht = ht;
    m->ht_bits = bits;
    m->gen = 1;
    return 0;
}

/* Double the table and re-insert the nu distinct keys (slot = pair index). */
static int s_ht_double(wk_model_t *m, uint32_t nu)
{
    if (m->ht_bits >= 31 || s_ht_alloc(m, m->ht_bits + 1) != 0)
        return ZPS_ENOMEM;
    const uint32_t shift = 32 - m->ht_bits, mask = (1u << m->ht_bits) - 1;
    for (uint32_t s = 0; s < nu; s++) {
        uint32_t h = s_hash(m->pairs[s].key) >> shift;
        while (m->ht[h].gen == m->gen)
            h = (h + 1) & mask;
        m->ht[h] = (s_bucket_t){m->pairs[s].key, s, m->gen};
    }
    return 0;
}

/* Sorts the n feature keys pairs[1..n] (slots 1..n): keys[0..n) in
 * ascending order and rank[slot] = position, with zps_sort.  When at most 32
 * bits vary (hashed ids) and n is past insertion-sort size, each key is
 * packed with its slot into one uint64 (varying bits << 32 | slot) and only
 * the upper half is sorted: half the memory traffic of sorting pairs. */
static void s_sort_keys(wk_model_t *m, uint32_t n)
{
    s_pair_t *a = m->pairs + 1;
    uint64_t *keys = m->keys;
    uint32_t *rank = m->rank;
    uint64_t any = 0, all = ~(uint64_t)0;
    for (size_t i = 0; i < n; i++) {
        any |= a[i].key;
        all &= a[i].key;
    }
    const uint64_t vary = any ^ all;
    const int lo = vary ? __builtin_ctzll(vary) : 0, hi = vary ? 63 - __builtin_clzll(vary) : 0;
    const int range = vary ? hi - lo + 1 : 0;
    if (n > S_SMALL_SORT && range <= 32) {
        /* pairs_tmp holds 2 * (n + 1) uint64; n >= 2 distinct keys: range >= 1 */
        uint64_t *x = (uint64_t *)(void *)m->pairs_tmp, *y = x + n + 1;
        const uint64_t rmask = ((uint64_t)1 << range) - 1;
        for (size_t i = 0; i < n; i++)
            x[i] = ((a[i].key >> lo) & rmask) << 32 | a[i].val;
        x = zps_sort_u64_bits(x, y, n, 32, 32 + (unsigned)range);
        const uint64_t base = all & ~(rmask << lo);
        for (uint32_t i = 0; i < n; i++) {
            keys[i] = base | (x[i] >> 32) << lo;
            rank[(uint32_t)x[i]] = i;
        }
        return;
    }
    a = zps_sort_pairs(a, m->pairs_tmp, n);
    for (uint32_t i = 0; i < n; i++) {
        keys[i] = a[i].key;
        rank[a[i].val] = i;
    }
}

static size_t s_sparse_keys(wk_model_t *m, const wk_batch_t *b)
{
    const size_t j0 = b->n ? b->offsets[0] : 0, j1 = b->n ? b->offsets[b->n] : 0;
    const size_t nnz = j1 - j0;
    if (nnz >= UINT32_MAX / 2)
        return 0;
    if (j1 + 1 > m->pos_cap) {
        size_t cap = s_cap_for(m->pos_cap, j1 + 1);
        void *p = m->pos;
        if (s_resize(&p, cap, sizeof *m->pos) != 0)
            return 0;
        m->pos = p;
        m->pos_cap = cap;
    }
    if (nnz + 1 > m->uniq_cap) {
        size_t cap = s_cap_for(m->uniq_cap, nnz + 1);
        void *k = m->keys, *a = m->pairs, *t = m->pairs_tmp, *r = m->rank;
        int rc = s_resize(&k, cap, sizeof *m->keys);
        m->keys = k;
        rc = rc ? rc : s_resize(&a, cap, sizeof *m->pairs);
        m->pairs = a;
        rc = rc ? rc : s_resize(&t, cap, sizeof *m->pairs_tmp);
        m->pairs_tmp = t;
        rc = rc ? rc : s_resize(&r, cap, sizeof *m->rank);
        m->rank = r;
        if (rc != 0)
            return 0;
        m->uniq_cap = cap;
    }
    if (++m->gen == 0) { /* generations wrapped: really clear */
        memset(m->ht, 0, ((size_t)1 << m->ht_bits) * sizeof *m->ht);
        m->gen = 1;
    }

    /* pos[j] = hash of the id first, so buckets can be prefetched ahead */
    const uint64_t *ids = b->ids;
    uint32_t *pos = m->pos;
    for (size_t j = j0; j < j1; j++)
        pos[j] = s_hash(ids[j]);

    /* Distinct keys in first-seen order; slot 0 is the bias. */
    s_bucket_t *ht = m->ht;
    uint32_t shift = 32 - m->ht_bits, mask = (1u << m->ht_bits) - 1, gen = m->gen;
    s_pair_t *pairs = m->pairs;
    uint32_t nu = 0;
    ht[s_hash(ZPS_BIAS_KEY) >> shift] = (s_bucket_t){ZPS_BIAS_KEY, 0, gen};
    pairs[nu++] = (s_pair_t){ZPS_BIAS_KEY, 0};
    for (size_t j = j0; j < j1; j++) {
        if (j + S_PREFETCH < j1)
            __builtin_prefetch(&ht[pos[j + S_PREFETCH] >> shift]);
        const uint64_t key = ids[j];
        uint32_t h = pos[j] >> shift;
        for (;;) {
            s_bucket_t *e = &ht[h];
            if (e->gen != gen) {
                *e = (s_bucket_t){key, nu, gen};
                pairs[nu] = (s_pair_t){key, nu};
                pos[j] = nu++;
                if (2 * (size_t)nu > (size_t)mask + 1) {
                    if (s_ht_double(m, nu) != 0)
                        return 0;
                    ht = m->ht;
                    shift = 32 - m->ht_bits;
                    mask = (1u << m->ht_bits) - 1;
                    gen = m->gen;
                }
                break;
            }
            if (e->key == key) {
                pos[j] = e->slot;
                break;
            }
            h = (h + 1) & mask;
        }
    }

    /* Sort the features' keys (slots 1..nu-1); the bias goes last. */
    s_sort_keys(m, nu - 1);
    uint32_t *rank = m->rank;
    m->keys[nu - 1] = ZPS_BIAS_KEY;
    rank[0] = nu - 1;
    for (size_t j = j0; j < j1; j++)
        pos[j] = rank[pos[j]];
    m->nkeys = nu;
    return nu;
}

/* ---- lr / fm ----------------------------------------------------------- */

static inline double s_lr_z(const wk_model_t *m, const wk_batch_t *b, const float *w,
                            size_t i)
{
    const uint32_t *pos = m->pos;
    const float *vals = b->vals;
    double z = w[m->nkeys - 1];
    for (size_t j = b->offsets[i], e = b->offsets[i + 1]; j < e; j++)
        z += (double)w[pos[j]] * vals[j];
    return z;
}

/* fm logit of row i; fills m->fm_s[f] = sum_j v_jf x_j. */
static inline double s_fm_z(const wk_model_t *m, const wk_batch_t *b, const float *w,
                            size_t i)
{
    const uint32_t k = m->fm_k, dim = m->dim;
    const uint32_t *pos = m->pos;
    const float *vals = b->vals;
    double *s = m->fm_s;
    double lin = w[(size_t)(m->nkeys - 1) * dim], sq = 0;
    for (uint32_t f = 0; f < k; f++)
        s[f] = 0;
    for (size_t j = b->offsets[i], e = b->offsets[i + 1]; j < e; j++) {
        const float *row = w + (size_t)pos[j] * dim;
        const double x = vals[j];
        lin += row[0] * x;
        for (uint32_t f = 0; f < k; f++) {
            double t = row[1 + f] * x;
            s[f] += t;
            sq += t * t;
        }
    }
    double pair = 0;
    for (uint32_t f = 0; f < k; f++)
        pair += s[f] * s[f];
    return lin + 0.5 * (pair - sq);
}

static double s_lr_step(wk_model_t *m, const wk_batch_t *b, const float *w, float *g)
{
    const uint32_t *pos = m->pos;
    const float *vals = b->vals;
    const size_t bias = m->nkeys - 1, P = m->pdim;
    const int sq = P > m->dim; /* norm: the squares column */
    double loss = 0, gb = 0, qb = 0, p;
    for (size_t i = 0; i < b->n; i++) {
        const double y = b->labels[i];
        loss += s_logistic(s_lr_z(m, b, w, i), y, &p);
        const float d = (float)(p - y);
        if (sq)
            for (size_t j = b->offsets[i], e = b->offsets[i + 1]; j < e; j++) {
                const float gj = d * vals[j];
                g[pos[j] * P] += gj;
                g[pos[j] * P + 1] += gj * gj;
            }
        else
            for (size_t j = b->offsets[i], e = b->offsets[i + 1]; j < e; j++)
                g[pos[j] * P] += d * vals[j];
        gb += p - y;
        qb += (p - y) * (p - y);
    }
    g[bias * P] += (float)gb;
    if (sq)
        g[bias * P + 1] += (float)qb;
    return loss;
}

/* The |x| column (pdim == 2 dim + 1, the last): per key the largest |x| of its feature
 * in the batch; the bias's implicit input is 1. */
static void s_xmax(const wk_model_t *m, const wk_batch_t *b, float *g)
{
    const uint32_t *pos = m->pos;
    const float *vals = b->vals;
    const size_t P = m->pdim, D = P - 1;
    if (b->n == 0)
        return;
    for (size_t j = b->offsets[0], e = b->offsets[b->n]; j < e; j++) {
        float *x = g + (size_t)pos[j] * P + D, a = fabsf(vals[j]);
        if (a > *x)
            *x = a;
    }
    float *xb = g + (m->nkeys - 1) * P + D;
    if (*xb < 1.0f)
        *xb = 1.0f;
}

static double s_fm_step(wk_model_t *m, const wk_batch_t *b, const float *w, float *g)
{
    const uint32_t k = m->fm_k, dim = m->dim, P = m->pdim;
    const uint32_t *pos = m->pos;
    const float *vals = b->vals;
    const double *s = m->fm_s;
    const int sq = P > dim; /* norm: the squares column */
    const int lin_only = m->fm_linear_only;
    double loss = 0, gb = 0, qb = 0, p;
    for (size_t i = 0; i < b->n; i++) {
        /* Start loading the next row's weight and gradient rows (scattered
         * over the batch's key range).  Written inline: GCC deems a helper
         * that only prefetches pure and deletes its calls. */
        for (size_t j = b->offsets[i + 1], e = i + 1 < b->n ? b->offsets[i + 2] : j; j < e; j++) {
            const size_t o = (size_t)pos[j] * dim, og = (size_t)pos[j] * P;
            __builtin_prefetch(w + o);
            __builtin_prefetch(w + o + dim - 1);
            __builtin_prefetch(g + og, 1);
            __builtin_prefetch(g + og + P - 1, 1);
        }
        const double y = b->labels[i];
        loss += s_logistic(s_fm_z(m, b, w, i), y, &p);
        const double d = p - y;
        gb += d;
        qb += d * d;
        for (size_t j = b->offsets[i], e = b->offsets[i + 1]; j < e; j++) {
            const float *row = w + (size_t)pos[j] * dim;
            float *gr = g + (size_t)pos[j] * P;
            const double x = vals[j], dx = d * x, dxx = dx * x;
            gr[0] += (float)dx;
            if (lin_only) {
                if (sq)
                    gr[dim] += (float)(dx * dx);
            } else if (sq) {
                float *qr = gr + dim;
                qr[0] += (float)(dx * dx);
                for (uint32_t f = 0; f < k; f++) {
                    const float gf = (float)(dx * s[f] - dxx * row[1 + f]);
                    gr[1 + f] += gf;
                    qr[1 + f] += gf * gf;
                }
            } else {
                for (uint32_t f = 0; f < k; f++)
                    gr[1 + f] += (float)(dx * s[f] - dxx * row[1 + f]);
            }
        }
    }
    g[(size_t)(m->nkeys - 1) * P] += (float)gb;
    if (sq)
        g[(size_t)(m->nkeys - 1) * P + dim] += (float)qb;
    return loss;
}

void wk_model_fm_linear_only(wk_model_t *m, int on)
{
    m->fm_linear_only = m->kind == ZPS_MODEL_FM && on;
}

/* ---- public --------------------------------------------------------------- */

wk_model_t *wk_model_new(const zps_conf_t *conf, char *err, size_t errlen)
{
    if (conf == NULL) {
        s_err(err, errlen, "no configuration");
        return NULL;
    }
    wk_model_t *m = calloc(1, sizeof *m);
    if (m == NULL) {
        s_err(err, errlen, "out of memory");
        return NULL;
    }
    m->kind = conf->model;
    m->classes = 1;
    int rc = 0;
    switch (conf->model) {
    case ZPS_MODEL_LR:
        m->dim = 1;
        break;
    case ZPS_MODEL_FM:
        if (conf->fm_dim < 1 || conf->fm_dim > S_FM_MAX_DIM) {
            s_err(err, errlen, "fm dim must be in 1..4096");
            rc = ZPS_EINVAL;
            break;
        }
        m->fm_k = conf->fm_dim;
        m->dim = conf->fm_dim + 1;
        m->fm_s = malloc(m->fm_k * sizeof *m->fm_s);
        if (m->fm_s == NULL) {
            s_err(err, errlen, "out of memory");
            rc = ZPS_ENOMEM;
        }
        break;
    case ZPS_MODEL_MLP:
        if ((m->mlp = wk_mlp_new(conf, err, errlen)) == NULL) {
            rc = ZPS_EINVAL;
            break;
        }
        m->dim = ZPS_MLP_CHUNK;
        m->classes = wk_mlp_classes(m->mlp);
        m->nkeys = wk_mlp_keys(m->mlp, &m->mlp_keys);
        break;
    default:
        s_err(err, errlen, "unknown model kind");
        rc = ZPS_EINVAL;
        break;
    }
    if (rc == 0 && m->kind != ZPS_MODEL_MLP && s_ht_alloc(m, S_HT_MIN_BITS) != 0) {
        s_err(err, errlen, "out of memory");
        rc = ZPS_ENOMEM;
    }
    if (rc != 0) {
        wk_model_destroy(&m);
        return NULL;
    }
    m->pdim = m->kind != ZPS_MODEL_MLP && conf->optimizer == ZPS_OPT_NORM ? 2 * m->dim + 1 : m->dim;
    return m;
}

void wk_model_destroy(wk_model_t **mp)
{
    if (mp == NULL || *mp == NULL)
        return;
    wk_model_t *m = *mp;
    free(m->keys);
    free(m->pos);
    free(m->ht);
    free(m->pairs);
    free(m->pairs_tmp);
    free(m->rank);
    free(m->fm_s);
    wk_mlp_destroy(&m->mlp);
    free(m);
    *mp = NULL;
}

uint32_t wk_model_dim(const wk_model_t *m)
{
    return m->dim;
}

uint32_t wk_model_push_dim(const wk_model_t *m)
{
    return m->pdim;
}

uint32_t wk_model_classes(const wk_model_t *m)
{
    return m->classes;
}

const float *wk_model_mlp_init(const wk_model_t *m, size_t *nparams)
{
    if (m->kind != ZPS_MODEL_MLP) {
        *nparams = 0;
        return NULL;
    }
    return wk_mlp_init(m->mlp, nparams);
}

uint64_t wk_model_bad_labels(const wk_model_t *m)
{
    return m->kind == ZPS_MODEL_MLP ? wk_mlp_bad_labels(m->mlp) : 0;
}

size_t wk_model_keys(wk_model_t *m, const wk_batch_t *b, const uint64_t **keys)
{
    size_t n;
    if (m->kind == ZPS_MODEL_MLP) {
        *keys = m->mlp_keys;
        return m->nkeys;
    }
    n = s_sparse_keys(m, b);
    if (n == 0) /* out of memory */
        m->nkeys = 0;
    *keys = m->keys;
    return n;
}

double wk_model_step(wk_model_t *m, const wk_batch_t *b, const float *w, float *g)
{
    memset(g, 0, m->nkeys * m->pdim * sizeof *g);
    if (m->nkeys == 0)
        return NAN;
    double loss;
    switch (m->kind) {
    case ZPS_MODEL_LR: loss = s_lr_step(m, b, w, g); break;
    case ZPS_MODEL_FM: loss = s_fm_step(m, b, w, g); break;
    default: return wk_mlp_step(m->mlp, b, w, g);
    }
    if (m->pdim > m->dim)
        s_xmax(m, b, g);
    return loss;
}

double wk_model_predict(wk_model_t *m, const wk_batch_t *b, const float *w, float *out,
                        uint32_t *cls)
{
    if (m->nkeys == 0)
        return NAN;
    if (m->kind == ZPS_MODEL_MLP)
        return wk_mlp_predict(m->mlp, b, w, out, cls);
    double loss = 0, p;
    for (size_t i = 0; i < b->n; i++) {
        double z = m->kind == ZPS_MODEL_LR ? s_lr_z(m, b, w, i) : s_fm_z(m, b, w, i);
        loss += s_logistic(z, b->labels[i], &p);
        out[i] = (float)p;
        if (cls)
            cls[i] = p >= 0.5;
    }
    return loss;
}
