/* wk_model: losses, gradients and predictions (models described in wk_model.h).
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
 * mlp: the pulled rows (keys 0..nchunks-1, nkeys x ZPS_MLP_CHUNK floats,
 *   contiguous) ARE the flat parameter vector theta, and the gradient g is
 *   written in the same layout (the padding after the last parameter is 0).
 *   Each forward pass first forms W = w0 + c_l theta in a scratch vector
 *   (one pass over the parameters, small next to the sgemms); w0 is made at
 *   wk_model_new: w0[t] = limit_l * zps_hash_unit(mix64(mix64(seed) + t)),
 *   so it is a pure function of (seed, layers, init-scale), equal in every
 *   worker and in zps-predict.  dL/dtheta = c_l dL/dW.
 *   The sparse input is scattered into a dense B x layers[0] matrix: ids
 *   are 0-based column indices used as they are (an IDX image's pixels are
 *   ids 0..784-1; a 1-based LIBSVM file simply leaves column 0 unused, and its
 *   largest index must be < layers[0]); ids >= layers[0] are ignored;
 *   repeated ids in a row add up.  Hidden layers are ReLU, the output is a
 *   softmax over layers[last] classes with a log-sum-exp in double: loss_i =
 *   lse_i - z_i[y_i].  A label must be an integer class index in
 *   [0, classes); a row with any other label is left out of the loss, the
 *   gradient and the mean's denominator, and is counted
 *   (wk_model_bad_labels); predictions are still made for it.  Backward:
 *   dZ = (softmax - onehot) / nvalid, dTheta_W = c_l A^T dZ,
 *   dTheta_b = c_l colsum(dZ), dA = dZ W^T masked by A > 0 (sgemm).
 *   Activations and deltas live in scratch buffers that grow with the batch
 *   size and are then reused (no allocation per batch after warm-up).
 *
 * Out of memory: wk_model_keys returns 0 keys and step/predict then return
 * NAN (g zeroed, out untouched) until a later wk_model_keys succeeds; mlp
 * step/predict also return NAN if scratch for a larger batch cannot be had.
 *
 * Nothing is global: a model is used by one thread at a time. */
#include "wk_model.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zps_err.h"
#include "zps_hash.h"
#include "zps_sort.h"

#define S_HT_MIN_BITS 10u
#define S_FM_MAX_DIM 4096u
#define S_MLP_MAX_WIDTH (1u << 24)
#define S_MLP_MAX_PARAMS ((size_t)1 << 31)
#define S_SMALL_SORT 32u
#define S_PREFETCH 32u /* nonzeros ahead whose bucket is prefetched */
#define S_MLP_INIT_SEED 0x8f4d1b3a5c7e9d21ULL

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

    uint64_t *keys; /* current key list (mlp: fixed 0..nchunks-1) */
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

    /* mlp */
    uint32_t nl;                   /* number of layer widths (>= 2) */
    uint32_t width[ZPS_MAX_LAYERS];
    size_t woff[ZPS_MAX_LAYERS];   /* offset of layer l's weights in theta */
    size_t boff[ZPS_MAX_LAYERS];   /* offset of layer l's biases */
    float *w0;        /* nparams: the initial weights (a function of the seed) */
    float *wcur;      /* nparams: W = w0 + c_l theta of the current batch */
    float c[ZPS_MAX_LAYERS]; /* c_l: 1, or sqrt(6 / fan_in) under sgd */
    size_t act_off[ZPS_MAX_LAYERS]; /* layer l's activations at act + rows_cap*act_off[l] */
    size_t act_width;              /* sum of widths */
    uint32_t max_width;
    size_t nparams;
    size_t rows_cap;
    float *act;       /* X, hidden activations, logits */
    float *d0, *d1;   /* deltas, rows_cap x max_width each */
    uint64_t bad_labels;
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

/* ---- mlp ------------------------------------------------------------------ */

static inline float *s_act(const wk_model_t *m, uint32_t l)
{
    return m->act + m->rows_cap * m->act_off[l];
}

static int s_mlp_reserve(wk_model_t *m, size_t rows)
{
    if (rows <= m->rows_cap)
        return 0;
    size_t cap = m->rows_cap ? m->rows_cap : 16;
    while (cap < rows)
        cap *= 2;
    float *act = malloc(cap * m->act_width * sizeof *act);
    float *d0 = malloc(cap * m->max_width * sizeof *d0);
    float *d1 = malloc(cap * m->max_width * sizeof *d1);
    if (act == NULL || d0 == NULL || d1 == NULL) {
        free(act);
        free(d0);
        free(d1);
        return ZPS_ENOMEM;
    }
    free(m->act);
    free(m->d0);
    free(m->d1);
    m->act = act;
    m->d0 = d0;
    m->d1 = d1;
    m->rows_cap = cap;
    return 0;
}

/* Class index of a label, or -1 if it is not an integer in [0, classes). */
static inline long s_class_of(float y, uint32_t classes)
{
    if (!(y >= 0 && y < (float)classes) || y != floorf(y))
        return -1;
    return (long)y;
}

/* Forward pass; the logits end up in s_act(m, nl - 1). */
static int s_mlp_forward(wk_model_t *m, const wk_batch_t *b, const float *theta)
{
    const size_t n = b->n;
    if (s_mlp_reserve(m, n) != 0)
        return ZPS_ENOMEM;
    for (uint32_t l = 0; l + 1 < m->nl; l++) {
        const size_t e = m->boff[l] + m->width[l + 1];
        const float c = m->c[l];
        if (c == 1.0f)
            for (size_t t = m->woff[l]; t < e; t++)
                m->wcur[t] = m->w0[t] + theta[t];
        else
            for (size_t t = m->woff[l]; t < e; t++)
                m->wcur[t] = m->w0[t] + c * theta[t];
    }
    const float *W = m->wcur;
    const uint32_t d_in = m->width[0];
    float *x = s_act(m, 0);
    memset(x, 0, n * d_in * sizeof *x);
    for (size_t i = 0; i < n; i++) {
        float *row = x + i * d_in;
        for (size_t j = b->offsets[i], e = b->offsets[i + 1]; j < e; j++)
            if (b->ids[j] < d_in)
                row[b->ids[j]] += b->vals[j];
    }
    for (uint32_t l = 0; l + 1 < m->nl; l++) {
        const uint32_t fin = m->width[l], fout = m->width[l + 1];
        const float *a = s_act(m, l), *wl = W + m->woff[l], *bl = W + m->boff[l];
        float *z = s_act(m, l + 1);
        for (size_t i = 0; i < n; i++)
            memcpy(z + i * fout, bl, fout * sizeof *z);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)fout, (int)fin,
                    1.0f, a, (int)fin, wl, (int)fout, 1.0f, z, (int)fout);
        if (l + 2 < m->nl)
            for (size_t t = 0, e = n * fout; t < e; t++)
                z[t] = z[t] > 0 ? z[t] : 0;
    }
    return 0;
}

/* Row i's log-sum-exp of the logits and its argmax. */
static inline double s_lse(const float *z, uint32_t c, uint32_t *arg)
{
    uint32_t best = 0;
    for (uint32_t k = 1; k < c; k++)
        if (z[k] > z[best])
            best = k;
    double sum = 0, mx = z[best];
    for (uint32_t k = 0; k < c; k++)
        sum += exp((double)z[k] - mx);
    *arg = best;
    return mx + log(sum);
}

static double s_mlp_step(wk_model_t *m, const wk_batch_t *b, const float *theta, float *g)
{
    const size_t n = b->n;
    const uint32_t c = m->classes, L = m->nl;
    size_t nvalid = 0;
    for (size_t i = 0; i < n; i++)
        nvalid += s_class_of(b->labels[i], c) >= 0;
    m->bad_labels += n - nvalid;
    if (nvalid == 0)
        return 0;
    if (s_mlp_forward(m, b, theta) != 0)
        return NAN;

    /* dZ of the output layer into d0 */
    const float *z = s_act(m, L - 1);
    float *dz = m->d0, *dn = m->d1;
    const double inv = 1.0 / (double)nvalid;
    double loss = 0;
    for (size_t i = 0; i < n; i++) {
        const float *zi = z + i * c;
        float *di = dz + i * c;
        long y = s_class_of(b->labels[i], c);
        if (y < 0) {
            memset(di, 0, c * sizeof *di);
            continue;
        }
        uint32_t arg;
        const double lse = s_lse(zi, c, &arg);
        loss += lse - zi[y];
        for (uint32_t k = 0; k < c; k++)
            di[k] = (float)((exp((double)zi[k] - lse) - (k == (uint32_t)y)) * inv);
    }

    for (uint32_t l = L - 1; l-- > 0;) {
        const uint32_t fin = m->width[l], fout = m->width[l + 1];
        const float *a = s_act(m, l), *wl = m->wcur + m->woff[l];
        float *gw = g + m->woff[l], *gb = g + m->boff[l];
        const float c = m->c[l];
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)fin, (int)fout, (int)n, c,
                    a, (int)fin, dz, (int)fout, 0.0f, gw, (int)fout);
        for (size_t i = 0; i < n; i++)
            for (uint32_t o = 0; o < fout; o++)
                gb[o] += dz[i * fout + o];
        if (c != 1.0f)
            for (uint32_t o = 0; o < fout; o++)
                gb[o] *= c;
        if (l == 0)
            break;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)fin, (int)fout, 1.0f,
                    dz, (int)fout, wl, (int)fout, 0.0f, dn, (int)fin);
        for (size_t t = 0, e = n * fin; t < e; t++)
            if (!(a[t] > 0))
                dn[t] = 0;
        float *t = dz;
        dz = dn;
        dn = t;
    }
    return loss;
}

static double s_mlp_predict(wk_model_t *m, const wk_batch_t *b, const float *theta,
                            float *out, uint32_t *cls)
{
    const uint32_t c = m->classes;
    if (b->n == 0)
        return 0;
    if (s_mlp_forward(m, b, theta) != 0)
        return NAN;
    const float *z = s_act(m, m->nl - 1);
    double loss = 0;
    for (size_t i = 0; i < b->n; i++) {
        const float *zi = z + i * c;
        uint32_t arg;
        const double lse = s_lse(zi, c, &arg);
        long y = s_class_of(b->labels[i], c);
        if (y >= 0)
            loss += lse - zi[y];
        out[i] = (float)exp((double)zi[arg] - lse);
        if (cls)
            cls[i] = arg;
    }
    return loss;
}

static int s_mlp_init(wk_model_t *m, const zps_conf_t *conf, char *err, size_t errlen)
{
    if (conf->nlayers < 2 || conf->nlayers > ZPS_MAX_LAYERS) {
        s_err(err, errlen, "mlp needs 2 to ZPS_MAX_LAYERS layer sizes (input,...,classes)");
        return ZPS_EINVAL;
    }
    m->nl = conf->nlayers;
    size_t off = 0, act = 0;
    for (uint32_t l = 0; l < m->nl; l++) {
        uint32_t w = conf->layers[l];
        if (w == 0 || w > S_MLP_MAX_WIDTH) {
            s_err(err, errlen, "mlp layer sizes must be in 1..2^24");
            return ZPS_EINVAL;
        }
        m->width[l] = w;
        m->act_off[l] = act;
        act += w;
        if (w > m->max_width)
            m->max_width = w;
        if (l + 1 < m->nl) {
            uint32_t fout = conf->layers[l + 1];
            m->woff[l] = off;
            off += (size_t)w * fout;
            m->boff[l] = off;
            off += fout;
            if (off > S_MLP_MAX_PARAMS) {
                s_err(err, errlen, "mlp has too many parameters (max 2^31)");
                return ZPS_EINVAL;
            }
        }
    }
    m->act_width = act;
    m->nparams = off;
    m->w0 = malloc((off ? off : 1) * sizeof *m->w0);
    m->wcur = malloc((off ? off : 1) * sizeof *m->wcur);
    if (m->w0 == NULL || m->wcur == NULL) {
        s_err(err, errlen, "out of memory");
        return ZPS_ENOMEM;
    }
    /* He uniform before a ReLU, Glorot uniform before the softmax, biases 0 */
    const double mult = conf->init_scale >= 0 ? conf->init_scale : 1.0;
    const uint64_t h0 = zps_mix64(conf->seed, S_MLP_INIT_SEED);
    for (uint32_t l = 0; l + 1 < m->nl; l++) {
        const double fin = m->width[l], fout = m->width[l + 1];
        const float lim = (float)(mult * (l + 2 < m->nl ? sqrt(6.0 / fin) : sqrt(6.0 / (fin + fout))));
        for (size_t t = m->woff[l]; t < m->boff[l]; t++)
            m->w0[t] = lim * zps_hash_unit(zps_mix64(h0 + t, S_MLP_INIT_SEED));
        for (size_t t = m->boff[l]; t < m->boff[l] + m->width[l + 1]; t++)
            m->w0[t] = 0;
        m->c[l] = conf->optimizer == ZPS_OPT_SGD ? (float)sqrt(6.0 / fin) : 1.0f;
    }
    m->classes = m->width[m->nl - 1];
    if (m->classes < 2) {
        s_err(err, errlen, "mlp needs at least 2 classes (last layer size)");
        return ZPS_EINVAL;
    }
    m->dim = ZPS_MLP_CHUNK;
    size_t nchunks = (off + ZPS_MLP_CHUNK - 1) / ZPS_MLP_CHUNK;
    m->keys = malloc(nchunks * sizeof *m->keys);
    if (m->keys == NULL) {
        s_err(err, errlen, "out of memory");
        return ZPS_ENOMEM;
    }
    for (size_t k = 0; k < nchunks; k++)
        m->keys[k] = k;
    m->nkeys = nchunks;
    return 0;
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
        rc = s_mlp_init(m, conf, err, errlen);
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
    free(m->act);
    free(m->d0);
    free(m->d1);
    free(m->w0);
    free(m->wcur);
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
    *nparams = m->nparams;
    return m->w0;
}

uint64_t wk_model_bad_labels(const wk_model_t *m)
{
    return m->bad_labels;
}

size_t wk_model_keys(wk_model_t *m, const wk_batch_t *b, const uint64_t **keys)
{
    size_t n;
    if (m->kind == ZPS_MODEL_MLP) {
        n = m->nkeys;
    } else {
        n = s_sparse_keys(m, b);
        if (n == 0) /* out of memory */
            m->nkeys = 0;
    }
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
    default: return s_mlp_step(m, b, w, g);
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
        return s_mlp_predict(m, b, w, out, cls);
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
