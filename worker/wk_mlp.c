/* wk_mlp: see wk_mlp.h; the model is described in wk_model.h.
 *
 * DESIGN
 * The pulled rows (keys 0..nchunks-1, nkeys x ZPS_MLP_CHUNK floats,
 * contiguous) ARE the flat parameter vector theta, and the gradient g is
 * written in the same layout (the padding after the last parameter is 0).
 * Each forward pass first forms W = w0 + c_l theta in a scratch vector (one
 * pass over the parameters, small next to the sgemms); w0 is made at
 * wk_mlp_new: w0[t] = limit_l * zps_hash_unit(mix64(mix64(seed) + t)), so it
 * is a pure function of (seed, layers, init-scale), equal in every worker
 * and in zps-predict.  dL/dtheta = c_l dL/dW.
 *
 * The sparse input is scattered into a dense B x layers[0] matrix: ids are
 * 0-based column indices used as they are (an IDX image's pixels are ids
 * 0..784-1; a 1-based LIBSVM file simply leaves column 0 unused, and its
 * largest index must be < layers[0]); ids >= layers[0] are ignored;
 * repeated ids in a row add up.  Hidden layers are ReLU, the output is a
 * softmax over layers[last] classes with a log-sum-exp in double: loss_i =
 * lse_i - z_i[y_i].  A label must be an integer class index in [0,
 * classes); a row with any other label is left out of the loss, the
 * gradient and the mean's denominator, and is counted (wk_mlp_bad_labels);
 * predictions are still made for it.  Backward: dZ = (softmax - onehot) /
 * nvalid, dTheta_W = c_l A^T dZ, dTheta_b = c_l colsum(dZ), dA = dZ W^T
 * masked by A > 0 (sgemm).  Activations and deltas live in scratch buffers
 * that grow with the batch size and are then reused (no allocation per
 * batch after warm-up).
 *
 * Nothing is global: an mlp is used by one thread at a time. */
#include "wk_mlp.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zps_err.h"
#include "zps_hash.h"

#define S_MLP_MAX_WIDTH (1u << 24)
#define S_MLP_MAX_PARAMS ((size_t)1 << 31)
#define S_MLP_INIT_SEED 0x8f4d1b3a5c7e9d21ULL

struct wk_mlp {
    uint32_t classes;
    uint64_t *keys;                /* 0..nkeys-1 */
    size_t nkeys;
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

static void s_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

static inline float *s_act(const wk_mlp_t *m, uint32_t l)
{
    return m->act + m->rows_cap * m->act_off[l];
}

static int s_mlp_reserve(wk_mlp_t *m, size_t rows)
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
static int s_mlp_forward(wk_mlp_t *m, const wk_batch_t *b, const float *theta)
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

double wk_mlp_step(wk_mlp_t *m, const wk_batch_t *b, const float *theta, float *g)
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

double wk_mlp_predict(wk_mlp_t *m, const wk_batch_t *b, const float *theta, float *out,
                      uint32_t *cls)
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

static int s_mlp_init(wk_mlp_t *m, const zps_conf_t *conf, char *err, size_t errlen)
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


wk_mlp_t *wk_mlp_new(const zps_conf_t *conf, char *err, size_t errlen)
{
    wk_mlp_t *m = calloc(1, sizeof *m);
    if (m == NULL) {
        s_err(err, errlen, "out of memory");
        return NULL;
    }
    if (s_mlp_init(m, conf, err, errlen) != 0)
        wk_mlp_destroy(&m);
    return m;
}

void wk_mlp_destroy(wk_mlp_t **mp)
{
    if (mp == NULL || *mp == NULL)
        return;
    wk_mlp_t *m = *mp;
    free(m->keys);
    free(m->act);
    free(m->d0);
    free(m->d1);
    free(m->w0);
    free(m->wcur);
    free(m);
    *mp = NULL;
}

uint32_t wk_mlp_classes(const wk_mlp_t *m)
{
    return m->classes;
}

size_t wk_mlp_keys(const wk_mlp_t *m, const uint64_t **keys)
{
    *keys = m->keys;
    return m->nkeys;
}

const float *wk_mlp_init(const wk_mlp_t *m, size_t *nparams)
{
    *nparams = m->nparams;
    return m->w0;
}

uint64_t wk_mlp_bad_labels(const wk_mlp_t *m)
{
    return m->bad_labels;
}
