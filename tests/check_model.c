/* check_model: wk_model keys, losses, gradients and predictions.
 *
 * - new: dims, classes, the mlp's keys 0..n-1, the reason given for each
 *   bad configuration (the mlp's come from wk_mlp.c), no mlp parts in the
 *   sparse models.
 * - keys: a hand batch (duplicates within and across rows, an empty row) and
 *   random batches (dense small ids, full 64-bit ids, ids next to
 *   ZPS_BIAS_KEY, a batch large enough to grow the hash table) are compared
 *   with a qsort reference; the feature -> key mapping is checked through
 *   lr gradients with integer values (exact in float) and through lr
 *   predictions of one-feature rows.
 * - lr on a hand example (numbers in the test, computed in double), extreme
 *   logits (no inf/NaN), predict == step's forward.
 * - gradient checks by central differences of the summed loss for lr, fm
 *   and mlp (step of size h in float; the divisor is the difference of the
 *   two float weights actually evaluated).  lr/fm losses are computed in
 *   double so their check is tight; the mlp forward runs in float (sgemm),
 *   so its tolerance is 1e-3 absolute + 1e-2 relative.
 * - mlp forward against an independent double-precision reference (checks
 *   the parameter layout and the per-layer scale c_l of sgd), rows with bad
 *   labels; with adam: the worker's initial weights w0 (limits, zero biases,
 *   a function of the seed) and W = w0 + theta against the reference,
 *   and a training sanity check: plain SGD on XOR-like data (which needs the
 *   hidden layers) must drive the loss down and the accuracy up. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_suites.h"
#include "wk_model.h"
#include "zps_conf.h"
#include "zps_rng.h"

#define S_REQUIRE(cond, ...)           \
    do {                               \
        if (!(cond))                   \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)

/* ---- fixtures ---------------------------------------------------------- */

static zps_conf_t s_conf(zps_model_kind_t kind, uint32_t fm_dim, uint32_t nlayers,
                         const uint32_t *layers)
{
    zps_conf_t c;
    memset(&c, 0, sizeof c);
    c.model = kind;
    c.fm_dim = fm_dim;
    c.nlayers = nlayers;
    for (uint32_t i = 0; i < nlayers; i++)
        c.layers[i] = layers[i];
    return c;
}

static wk_model_t *s_model(zps_model_kind_t kind, uint32_t fm_dim, uint32_t nlayers,
                           const uint32_t *layers)
{
    zps_conf_t c = s_conf(kind, fm_dim, nlayers, layers);
    char err[256] = "";
    wk_model_t *m = wk_model_new(&c, err, sizeof err);
    ck_assert_msg(m != NULL, "wk_model_new: %s", err);
    return m;
}

static void s_batch_alloc(wk_batch_t *b, size_t n, size_t nnz)
{
    b->n = n;
    b->labels = calloc(n + 1, sizeof *b->labels);
    b->offsets = calloc(n + 1, sizeof *b->offsets);
    b->ids = calloc(nnz + 1, sizeof *b->ids);
    b->vals = calloc(nnz + 1, sizeof *b->vals);
    ck_assert(b->labels && b->offsets && b->ids && b->vals);
}

static void s_batch_free(wk_batch_t *b)
{
    free(b->labels);
    free(b->offsets);
    free(b->ids);
    free(b->vals);
    memset(b, 0, sizeof *b);
}

/* n rows of per_row nonzeros, ids drawn by idf, values in [-1, 1),
 * binary labels (or class labels if classes > 1). */
static void s_batch_random(wk_batch_t *b, uint64_t *r, size_t n, size_t per_row,
                           uint64_t id_range, uint32_t classes)
{
    s_batch_alloc(b, n, n * per_row);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        b->offsets[i] = j;
        for (size_t t = 0; t < per_row; t++, j++) {
            b->ids[j] = zps_rng_next(r) % id_range;
            b->vals[j] = (float)(2 * zps_rng_uniform(r) - 1);
        }
        b->labels[i] = classes > 1 ? (float)(zps_rng_next(r) % classes) : (float)(zps_rng_next(r) & 1);
    }
    b->offsets[n] = j;
}

static float *s_floats(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Checks keys against a qsort reference and the mapping through lr. */
static void s_check_keys(wk_model_t *m, wk_batch_t *b)
{
    const size_t nnz = b->offsets[b->n];
    uint64_t *ref = malloc((nnz + 1) * sizeof *ref);
    ck_assert_ptr_nonnull(ref);
    memcpy(ref, b->ids, nnz * sizeof *ref);
    ref[nnz] = ZPS_BIAS_KEY;
    qsort(ref, nnz + 1, sizeof *ref, s_cmp_u64);
    size_t nu = 0;
    for (size_t i = 0; i <= nnz; i++)
        if (nu == 0 || ref[nu - 1] != ref[i])
            ref[nu++] = ref[i];

    const uint64_t *keys = NULL;
    size_t nk = wk_model_keys(m, b, &keys);
    ck_assert_uint_eq(nk, nu);
    S_REQUIRE(memcmp(keys, ref, nu * sizeof *ref) == 0, "keys differ from the reference");

    /* w = 0, y = 0: dL/dz = 1/2, so g[k] = sum of x over the key's nonzeros
     * (+ n/2 for the bias); integer x keeps every sum exact. */
    float *saved = malloc((nnz + 1) * sizeof *saved), *labels = malloc((b->n + 1) * sizeof *labels);
    ck_assert(saved && labels);
    memcpy(saved, b->vals, nnz * sizeof *saved);
    memcpy(labels, b->labels, b->n * sizeof *labels);
    double *want = calloc(nu, sizeof *want);
    ck_assert_ptr_nonnull(want);
    for (size_t j = 0; j < nnz; j++) {
        b->vals[j] = (float)(1 + j % 4);
        uint64_t *hit = bsearch(&b->ids[j], ref, nu, sizeof *ref, s_cmp_u64);
        ck_assert_ptr_nonnull(hit);
        want[hit - ref] += 0.5 * b->vals[j];
    }
    for (size_t i = 0; i < b->n; i++)
        b->labels[i] = 0;
    want[nu - 1] += 0.5 * (double)b->n;
    float *w = s_floats(nu), *g = s_floats(nu);
    double loss = wk_model_step(m, b, w, g);
    ck_assert_double_eq_tol(loss, (double)b->n * log(2.0), 1e-9 * (1 + (double)b->n));
    for (size_t k = 0; k < nu; k++)
        S_REQUIRE(g[k] == (float)want[k], "g[%zu] = %g, want %g", k, g[k], want[k]);
    memcpy(b->vals, saved, nnz * sizeof *saved);
    memcpy(b->labels, labels, b->n * sizeof *labels);
    free(w);
    free(g);
    free(want);
    free(saved);
    free(labels);
    free(ref);
}

/* ---- construction ---------------------------------------------------------- */

START_TEST(test_new)
{
    wk_model_t *m = s_model(ZPS_MODEL_LR, 0, 0, NULL);
    ck_assert_uint_eq(wk_model_dim(m), 1);
    ck_assert_uint_eq(wk_model_classes(m), 1);
    wk_model_destroy(&m);
    ck_assert_ptr_null(m);
    wk_model_destroy(&m); /* no-op */

    m = s_model(ZPS_MODEL_FM, 8, 0, NULL);
    ck_assert_uint_eq(wk_model_dim(m), 9);
    ck_assert_uint_eq(wk_model_classes(m), 1);
    wk_model_destroy(&m);

    const uint32_t lay[] = {784, 128, 10};
    m = s_model(ZPS_MODEL_MLP, 0, 3, lay);
    ck_assert_uint_eq(wk_model_dim(m), ZPS_MLP_CHUNK);
    ck_assert_uint_eq(wk_model_classes(m), 10);
    const uint64_t *keys;
    wk_batch_t empty = {0};
    size_t nparams = 784 * 128 + 128 + 128 * 10 + 10;
    size_t nk = wk_model_keys(m, &empty, &keys);
    ck_assert_uint_eq(nk, (nparams + ZPS_MLP_CHUNK - 1) / ZPS_MLP_CHUNK);
    for (size_t k = 0; k < nk; k++)
        S_REQUIRE(keys[k] == k, "mlp key %zu = %llu", k, (unsigned long long)keys[k]);
    wk_model_destroy(&m);

    /* bad configurations */
    const uint32_t one[] = {5}, last1[] = {5, 4, 1}, zero[] = {5, 0, 3};
    zps_conf_t bad[] = {
        s_conf(ZPS_MODEL_FM, 0, 0, NULL),
        s_conf(ZPS_MODEL_MLP, 0, 1, one),
        s_conf(ZPS_MODEL_MLP, 0, 0, NULL),
        s_conf(ZPS_MODEL_MLP, 0, 3, last1),
        s_conf(ZPS_MODEL_MLP, 0, 3, zero),
        s_conf((zps_model_kind_t)7, 0, 0, NULL),
    };
    const char *why[] = {
        "fm dim must be in 1..4096",
        "mlp needs 2 to ZPS_MAX_LAYERS layer sizes (input,...,classes)",
        "mlp needs 2 to ZPS_MAX_LAYERS layer sizes (input,...,classes)",
        "mlp needs at least 2 classes (last layer size)",
        "mlp layer sizes must be in 1..2^24",
        "unknown model kind",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[128] = "";
        ck_assert_ptr_null(wk_model_new(&bad[i], err, sizeof err));
        ck_assert_msg(strcmp(err, why[i]) == 0, "config %zu: '%s'", i, err);
    }

    /* the sparse models have no mlp parts */
    m = s_model(ZPS_MODEL_FM, 4, 0, NULL);
    size_t np = 7;
    ck_assert_ptr_null(wk_model_mlp_init(m, &np));
    ck_assert_uint_eq(np, 0);
    ck_assert_uint_eq(wk_model_bad_labels(m), 0);
    wk_model_destroy(&m);
}
END_TEST

/* ---- keys ---------------------------------------------------------------- */

START_TEST(test_keys_hand)
{
    wk_model_t *m = s_model(ZPS_MODEL_LR, 0, 0, NULL);
    /* row0: 5 2 5   row1: 9 2   row2: (empty)   row3: 0 */
    wk_batch_t b;
    s_batch_alloc(&b, 4, 6);
    const uint64_t ids[] = {5, 2, 5, 9, 2, 0};
    const size_t offs[] = {0, 3, 5, 5, 6};
    memcpy(b.ids, ids, sizeof ids);
    memcpy(b.offsets, offs, sizeof offs);
    for (int j = 0; j < 6; j++)
        b.vals[j] = 1;
    const uint64_t *keys;
    ck_assert_uint_eq(wk_model_keys(m, &b, &keys), 5);
    const uint64_t want[] = {0, 2, 5, 9, ZPS_BIAS_KEY};
    for (int k = 0; k < 5; k++)
        ck_assert_uint_eq(keys[k], want[k]);
    s_check_keys(m, &b);

    /* keys of another batch replace them; a reserved id maps to the bias */
    b.ids[0] = ZPS_BIAS_KEY;
    b.ids[5] = 7;
    ck_assert_uint_eq(wk_model_keys(m, &b, &keys), 5);
    const uint64_t want2[] = {2, 5, 7, 9, ZPS_BIAS_KEY};
    for (int k = 0; k < 5; k++)
        ck_assert_uint_eq(keys[k], want2[k]);
    s_check_keys(m, &b);

    /* empty batch: just the bias */
    wk_batch_t e = {0};
    size_t zero = 0;
    e.offsets = &zero;
    ck_assert_uint_eq(wk_model_keys(m, &e, &keys), 1);
    ck_assert_uint_eq(keys[0], ZPS_BIAS_KEY);
    float w = 3, g = 7;
    ck_assert_double_eq(wk_model_step(m, &e, &w, &g), 0);
    ck_assert_float_eq(g, 0);
    s_batch_free(&b);
    wk_model_destroy(&m);
}
END_TEST

START_TEST(test_keys_random)
{
    uint64_t r = 0x1234567u;
    wk_model_t *m = s_model(ZPS_MODEL_LR, 0, 0, NULL);
    /* small ranges (many duplicates), 64-bit ids, ids near the bias key; a
     * big batch grows the hash table, small ones follow it.  mode reshapes
     * ids so the radix sort sees constant low and high bits: 1 = just below
     * the bias key, 2 = 20 varying bits at bit 12 under a constant prefix
     * (packed path), 3 = 40 varying bits at bit 8 (pair path). */
    const struct {
        size_t n, per_row;
        uint64_t range;
        int mode;
    } cases[] = {{50, 5, 20, 0},        {200, 40, 1000, 0},   {100, 10, UINT64_MAX, 0},
                 {30, 3, 10, 1},        {300, 4, 5000, 1},    {3000, 20, 1u << 20, 0},
                 {5, 2, 3, 0},          {1000, 40, 1u << 24, 0}, {1, 1, 1, 0},
                 {400, 5, 1u << 20, 2}, {400, 5, 1ull << 40, 3}, {40, 1, 1, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        wk_batch_t b;
        s_batch_random(&b, &r, cases[c].n, cases[c].per_row, cases[c].range, 1);
        for (size_t j = 0; j < b.offsets[b.n]; j++) {
            uint64_t id = b.ids[j];
            b.ids[j] = cases[c].mode == 1   ? UINT64_MAX - 1 - id
                       : cases[c].mode == 2 ? 0x5a5a000000000000ull | id << 12 | 0x7
                       : cases[c].mode == 3 ? id << 8 | 0xff
                                            : id;
        }
        s_check_keys(m, &b);
        s_batch_free(&b);
    }

    /* one feature per row: out[i] = sigmoid(w of that feature's key) */
    wk_batch_t b;
    s_batch_random(&b, &r, 500, 1, 300, 1);
    const uint64_t *keys;
    size_t nk = wk_model_keys(m, &b, &keys);
    float *w = s_floats(nk), *out = s_floats(b.n);
    for (size_t k = 0; k < nk; k++)
        w[k] = (float)k / 64;
    w[nk - 1] = 0; /* bias */
    for (size_t i = 0; i < b.n; i++)
        b.vals[i] = 1;
    wk_model_predict(m, &b, w, out, NULL);
    for (size_t i = 0; i < b.n; i++) {
        uint64_t *hit = bsearch(&b.ids[i], keys, nk, sizeof *keys, s_cmp_u64);
        ck_assert_ptr_nonnull(hit);
        double want = 1 / (1 + exp(-(double)w[hit - keys]));
        S_REQUIRE(fabs(out[i] - want) < 1e-6, "row %zu: p %g want %g", i, out[i], want);
    }
    free(w);
    free(out);
    s_batch_free(&b);
    wk_model_destroy(&m);
}
END_TEST

/* ---- lr ------------------------------------------------------------------ */

START_TEST(test_lr_hand)
{
    /* keys 3, 7, bias; w3 = 1, w7 = -2, b = 0.5
     * row0 {3:1, 7:0.5} y=1: z = 0.5,  p = 0.6224593312, loss = 0.4740769842
     * row1 {7:1}        y=0: z = -1.5, p = 0.1824255238, loss = 0.2014132779
     * g3 = p0-1 = -0.3775406688; g7 = 0.5(p0-1) + p1 = -0.0063448106;
     * gb = (p0-1) + p1 = -0.1951151450 */
    wk_model_t *m = s_model(ZPS_MODEL_LR, 0, 0, NULL);
    wk_batch_t b;
    s_batch_alloc(&b, 2, 3);
    const uint64_t ids[] = {3, 7, 7};
    const float vals[] = {1, 0.5f, 1}, labels[] = {1, 0};
    const size_t offs[] = {0, 2, 3};
    memcpy(b.ids, ids, sizeof ids);
    memcpy(b.vals, vals, sizeof vals);
    memcpy(b.labels, labels, sizeof labels);
    memcpy(b.offsets, offs, sizeof offs);
    const uint64_t *keys;
    ck_assert_uint_eq(wk_model_keys(m, &b, &keys), 3);
    const float w[] = {1, -2, 0.5f};
    float g[3] = {9, 9, 9}, out[2];
    uint32_t cls[2];
    double loss = wk_model_step(m, &b, w, g);
    ck_assert_double_eq_tol(loss, 0.4740769842 + 0.2014132779, 1e-9);
    ck_assert_float_eq_tol(g[0], -0.3775406688f, 1e-7f);
    ck_assert_float_eq_tol(g[1], -0.0063448106f, 1e-7f);
    ck_assert_float_eq_tol(g[2], -0.1951151450f, 1e-7f);
    double ploss = wk_model_predict(m, &b, w, out, cls);
    ck_assert_double_eq_tol(ploss, loss, 1e-12);
    ck_assert_float_eq_tol(out[0], 0.6224593312f, 1e-7f);
    ck_assert_float_eq_tol(out[1], 0.1824255238f, 1e-7f);
    ck_assert_uint_eq(cls[0], 1);
    ck_assert_uint_eq(cls[1], 0);
    ck_assert_uint_eq(wk_model_bad_labels(m), 0);

    /* extreme logits: finite loss, saturated probabilities and gradients */
    const float big[] = {100, -100, 0};
    b.labels[0] = 0; /* z0 = 100 - 50 = 50 */
    b.labels[1] = 1; /* z1 = -100 */
    loss = wk_model_step(m, &b, big, g);
    ck_assert_double_eq_tol(loss, 150, 1e-9);
    ck_assert_float_eq_tol(g[0], 1, 1e-7f);
    ck_assert_float_eq_tol(g[1], 0.5f - 1, 1e-7f);
    wk_model_predict(m, &b, big, out, NULL);
    ck_assert_float_eq(out[0], 1);
    ck_assert(out[1] >= 0 && out[1] < 1e-40f);
    s_batch_free(&b);
    wk_model_destroy(&m);
}
END_TEST

/* Central differences of the summed loss over every weight of w (nk x dim);
 * want_mean: g is a mean over nrows (mlp). */
static void s_gradcheck(wk_model_t *m, wk_batch_t *b, float *w, size_t nk, float h,
                        double abs_tol, double rel_tol, double scale)
{
    const uint32_t dim = wk_model_dim(m);
    float *g = s_floats(nk * dim), *out = s_floats(b->n);
    uint32_t *cls = calloc(b->n + 1, sizeof *cls);
    ck_assert_ptr_nonnull(cls);
    double loss = wk_model_step(m, b, w, g);
    ck_assert(isfinite(loss));
    ck_assert_double_eq_tol(wk_model_predict(m, b, w, out, cls), loss, 1e-9 * (1 + loss));
    double worst = 0;
    for (size_t t = 0; t < nk * dim; t++) {
        const float w0 = w[t];
        w[t] = w0 + h;
        const double wp = w[t], lp = wk_model_predict(m, b, w, out, cls);
        w[t] = w0 - h;
        const double wm = w[t], lm = wk_model_predict(m, b, w, out, cls);
        w[t] = w0;
        const double fd = (lp - lm) / (wp - wm) * scale, err = fabs(g[t] - fd);
        S_REQUIRE(err <= abs_tol + rel_tol * fabs(fd), "weight %zu (key %zu col %zu): "
                  "analytic %.8g, finite difference %.8g", t, t / dim, t % dim, g[t], fd);
        if (err > worst)
            worst = err;
    }
    free(g);
    free(out);
    free(cls);
}

START_TEST(test_gradcheck_lr)
{
    uint64_t r = 42;
    wk_model_t *m = s_model(ZPS_MODEL_LR, 0, 0, NULL);
    wk_batch_t b;
    s_batch_random(&b, &r, 20, 6, 15, 1);
    const uint64_t *keys;
    size_t nk = wk_model_keys(m, &b, &keys);
    float *w = s_floats(nk);
    for (size_t k = 0; k < nk; k++)
        w[k] = (float)(2 * zps_rng_uniform(&r) - 1);
    s_gradcheck(m, &b, w, nk, 1e-3f, 1e-5, 1e-4, 1);
    free(w);
    s_batch_free(&b);
    wk_model_destroy(&m);
}
END_TEST

START_TEST(test_gradcheck_fm)
{
    uint64_t r = 7;
    wk_model_t *m = s_model(ZPS_MODEL_FM, 4, 0, NULL);
    wk_batch_t b;
    s_batch_random(&b, &r, 20, 6, 12, 1); /* ids repeat inside rows too */
    const uint64_t *keys;
    size_t nk = wk_model_keys(m, &b, &keys);
    const uint32_t dim = wk_model_dim(m);
    float *w = s_floats(nk * dim);
    for (size_t t = 0; t < nk * dim; t++)
        w[t] = (float)(zps_rng_uniform(&r) - 0.5);
    s_gradcheck(m, &b, w, nk, 1e-3f, 1e-5, 1e-4, 1);

    /* the bias row only trains column 0 */
    float *g = s_floats(nk * dim);
    wk_model_step(m, &b, w, g);
    ck_assert(g[(nk - 1) * dim] != 0);
    for (uint32_t f = 1; f < dim; f++)
        ck_assert_float_eq(g[(nk - 1) * dim + f], 0);
    free(g);
    free(w);
    s_batch_free(&b);
    wk_model_destroy(&m);
}
END_TEST

/* ---- mlp ----------------------------------------------------------------- */

static float *s_mlp_theta(wk_model_t *m, uint64_t *r, size_t *nk)
{
    const uint64_t *keys;
    wk_batch_t e = {0};
    *nk = wk_model_keys(m, &e, &keys);
    float *w = s_floats(*nk * ZPS_MLP_CHUNK);
    for (size_t t = 0; t < *nk * ZPS_MLP_CHUNK; t++)
        w[t] = (float)(2 * zps_rng_uniform(r) - 1);
    return w;
}

START_TEST(test_gradcheck_mlp)
{
    uint64_t r = 99;
    const uint32_t lay[] = {5, 4, 3};
    wk_model_t *m = s_model(ZPS_MODEL_MLP, 0, 3, lay);
    size_t nk;
    float *w = s_mlp_theta(m, &r, &nk);
    ck_assert_uint_eq(nk, 1); /* 5*4+4+4*3+3 = 39 floats */
    wk_batch_t b;
    s_batch_random(&b, &r, 8, 4, 6, 3); /* id 5 is out of range: ignored */
    s_gradcheck(m, &b, w, nk, 2e-3f, 1e-3, 1e-2, 1.0 / 8);

    /* the padding after the 39 parameters gets zero gradient */
    float *g = s_floats(nk * ZPS_MLP_CHUNK);
    for (size_t t = 0; t < nk * ZPS_MLP_CHUNK; t++)
        g[t] = NAN;
    wk_model_step(m, &b, w, g);
    for (size_t t = 39; t < ZPS_MLP_CHUNK; t++)
        ck_assert_float_eq(g[t], 0);
    free(g);
    free(w);
    s_batch_free(&b);
    wk_model_destroy(&m);

    /* deeper, several chunks */
    const uint32_t lay2[] = {7, 6, 5, 4};
    m = s_model(ZPS_MODEL_MLP, 0, 4, lay2);
    w = s_mlp_theta(m, &r, &nk);
    ck_assert_uint_eq(nk, 2); /* 48 + 35 + 24 = 107 */
    s_batch_random(&b, &r, 6, 5, 7, 4);
    s_gradcheck(m, &b, w, nk, 2e-3f, 1e-3, 1e-2, 1.0 / 6);
    free(w);
    s_batch_free(&b);
    wk_model_destroy(&m);
}
END_TEST

/* Double-precision reference: summed cross-entropy of the header's model,
 * W = w0 + c_l theta with c_l = sqrt(6 / fan_in) (sgd) or 1 (w0 NULL: 0). */
static double s_mlp_ref_loss(const uint32_t *lay, uint32_t nl, const float *theta,
                             const float *w0, int sgd, const wk_batch_t *b)
{
    double a[16], z[16], loss = 0;
    for (size_t i = 0; i < b->n; i++) {
        memset(a, 0, sizeof a);
        for (size_t j = b->offsets[i]; j < b->offsets[i + 1]; j++)
            if (b->ids[j] < lay[0])
                a[b->ids[j]] += b->vals[j];
        size_t off = 0;
        for (uint32_t l = 0; l + 1 < nl; l++) {
            const uint32_t fin = lay[l], fout = lay[l + 1];
            const double s = sgd ? sqrt(6.0 / fin) : 1.0;
#define S_W(t) ((w0 ? (double)w0[t] : 0.0) + s * theta[t])
            for (uint32_t o = 0; o < fout; o++) {
                z[o] = S_W(off + (size_t)fin * fout + o);
                for (uint32_t k = 0; k < fin; k++)
                    z[o] += S_W(off + (size_t)k * fout + o) * a[k];
            }
#undef S_W
            off += (size_t)fin * fout + fout;
            for (uint32_t o = 0; o < fout; o++)
                a[o] = (l + 2 < nl && z[o] < 0) ? 0 : z[o];
        }
        const uint32_t c = lay[nl - 1];
        double sum = 0;
        for (uint32_t k = 0; k < c; k++)
            sum += exp(a[k]);
        loss += log(sum) - a[(size_t)b->labels[i]];
    }
    return loss;
}

START_TEST(test_mlp_reference)
{
    uint64_t r = 5;
    const uint32_t lay[] = {9, 7, 5, 3};
    wk_model_t *m = s_model(ZPS_MODEL_MLP, 0, 4, lay);
    size_t nk;
    float *w = s_mlp_theta(m, &r, &nk);
    wk_batch_t b;
    s_batch_random(&b, &r, 13, 6, 9, 3);
    float out[13];
    uint32_t cls[13];
    double loss = wk_model_predict(m, &b, w, out, cls);
    double ref = s_mlp_ref_loss(lay, 4, w, NULL, 1, &b);
    ck_assert_double_eq_tol(loss, ref, 1e-5 * (1 + ref));
    float *g = s_floats(nk * ZPS_MLP_CHUNK);
    ck_assert_double_eq_tol(wk_model_step(m, &b, w, g), loss, 1e-9 * (1 + loss));
    for (size_t i = 0; i < b.n; i++)
        S_REQUIRE(out[i] >= 1.0f / 3 - 1e-6f && out[i] <= 1 && cls[i] < 3, "row %zu", i);

    /* bad labels: left out of loss and gradient (same as dropping the rows) */
    wk_batch_t b2;
    s_batch_random(&b2, &r, 13, 6, 9, 3);
    memcpy(b2.ids, b.ids, b.offsets[b.n] * sizeof *b.ids);
    memcpy(b2.vals, b.vals, b.offsets[b.n] * sizeof *b.vals);
    memcpy(b2.labels, b.labels, b.n * sizeof *b.labels);
    b2.labels[3] = 3;
    b2.labels[7] = -1;
    b2.labels[8] = 1.5f;
    float *g2 = s_floats(nk * ZPS_MLP_CHUNK);
    double loss2 = wk_model_step(m, &b2, w, g2);
    ck_assert_uint_eq(wk_model_bad_labels(m), 3);
    /* the same rows without the bad ones */
    wk_batch_t b3;
    s_batch_alloc(&b3, 10, b.offsets[b.n]);
    size_t n3 = 0, j3 = 0;
    for (size_t i = 0; i < b.n; i++) {
        if (i == 3 || i == 7 || i == 8)
            continue;
        b3.offsets[n3] = j3;
        b3.labels[n3++] = b.labels[i];
        for (size_t j = b.offsets[i]; j < b.offsets[i + 1]; j++, j3++) {
            b3.ids[j3] = b.ids[j];
            b3.vals[j3] = b.vals[j];
        }
    }
    b3.offsets[n3] = j3;
    double loss3 = wk_model_step(m, &b3, w, g);
    ck_assert_double_eq_tol(loss2, loss3, 1e-5 * (1 + loss3));
    for (size_t t = 0; t < nk * ZPS_MLP_CHUNK; t++)
        S_REQUIRE(fabsf(g[t] - g2[t]) <= 1e-6f + 1e-4f * fabsf(g[t]), "g[%zu] %g vs %g", t,
                  g2[t], g[t]);
    /* only bad labels: zero loss, zero gradient */
    for (size_t i = 0; i < b2.n; i++)
        b2.labels[i] = 9;
    ck_assert_double_eq(wk_model_step(m, &b2, w, g2), 0);
    for (size_t t = 0; t < nk * ZPS_MLP_CHUNK; t++)
        ck_assert_float_eq(g2[t], 0);
    free(g);
    free(g2);
    free(w);
    s_batch_free(&b);
    s_batch_free(&b2);
    s_batch_free(&b3);
    wk_model_destroy(&m);
}
END_TEST

/* Adam (the mlp default): steps in weight units (c_l = 1) from the worker's
 * initial weights w0: He uniform before ReLU layers, Glorot uniform before
 * the softmax, zero biases; a function of the seed only. */
START_TEST(test_mlp_init_adam)
{
    uint64_t r = 17;
    const uint32_t lay[] = {9, 7, 5, 3};
    zps_conf_t c = s_conf(ZPS_MODEL_MLP, 0, 4, lay);
    c.optimizer = ZPS_OPT_ADAM;
    c.init_scale = -1; /* default: 1 x the limits */
    c.seed = 3;
    char err[256] = "";
    wk_model_t *m = wk_model_new(&c, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    size_t np;
    const float *w0 = wk_model_mlp_init(m, &np);
    ck_assert_uint_eq(np, 9 * 7 + 7 + 7 * 5 + 5 + 5 * 3 + 3);
    size_t off = 0;
    for (uint32_t l = 0; l < 3; l++) {
        const uint32_t fin = lay[l], fout = lay[l + 1];
        const double lim = l < 2 ? sqrt(6.0 / fin) : sqrt(6.0 / (fin + fout));
        double lo = 0, hi = 0;
        for (size_t t = off; t < off + (size_t)fin * fout; t++) {
            S_REQUIRE(fabs(w0[t]) <= lim, "layer %u w0[%zu] = %g beyond %g", l, t, w0[t], lim);
            lo = fmin(lo, w0[t]);
            hi = fmax(hi, w0[t]);
        }
        /* uniform: spans most of [-lim, lim] */
        S_REQUIRE(lo < -0.5 * lim && hi > 0.5 * lim, "layer %u spans %g..%g of %g", l, lo, hi, lim);
        off += (size_t)fin * fout;
        for (uint32_t o = 0; o < fout; o++)
            S_REQUIRE(w0[off + o] == 0, "layer %u bias %u = %g", l, o, w0[off + o]);
        off += fout;
    }
    /* same seed, same w0; another seed, another */
    wk_model_t *m2 = wk_model_new(&c, err, sizeof err);
    c.seed = 4;
    wk_model_t *m3 = wk_model_new(&c, err, sizeof err);
    ck_assert(m2 && m3);
    size_t np2;
    ck_assert_mem_eq(wk_model_mlp_init(m2, &np2), w0, np * sizeof *w0);
    ck_assert_int_ne(memcmp(wk_model_mlp_init(m3, &np2), w0, np * sizeof *w0), 0);
    wk_model_destroy(&m2);
    wk_model_destroy(&m3);

    /* forward against the reference with c_l = 1, and central differences */
    size_t nk;
    float *w = s_mlp_theta(m, &r, &nk);
    for (size_t t = 0; t < nk * ZPS_MLP_CHUNK; t++)
        w[t] *= 0.3f;
    wk_batch_t b;
    s_batch_random(&b, &r, 13, 6, 9, 3);
    float out[13];
    double loss = wk_model_predict(m, &b, w, out, NULL);
    double ref = s_mlp_ref_loss(lay, 4, w, w0, 0, &b);
    ck_assert_double_eq_tol(loss, ref, 1e-5 * (1 + ref));
    /* theta = 0 is the initial model: its loss is that of w0 alone */
    float *zero = s_floats(nk * ZPS_MLP_CHUNK);
    memset(zero, 0, nk * ZPS_MLP_CHUNK * sizeof *zero);
    double l0 = wk_model_predict(m, &b, zero, out, NULL);
    ck_assert_double_eq_tol(l0, s_mlp_ref_loss(lay, 4, zero, w0, 0, &b), 1e-5 * (1 + l0));
    ck_assert(fabs(l0 - 13 * log(3.0)) < 13 * 1.0); /* a sane start, not saturated */
    s_gradcheck(m, &b, w, nk, 2e-3f, 1e-3, 1e-2, 1.0 / 13);
    free(zero);
    free(w);
    s_batch_free(&b);
    wk_model_destroy(&m);
}
END_TEST

/* XOR-like data: x = (u, v) in [-1,1]^2 away from the axes, as features 0
 * and 1 (plus a constant feature 2); class 1 iff u*v > 0.  No linear model
 * gets more than ~1/2 right. */
static void s_xor_batch(wk_batch_t *b, uint64_t *r, size_t n)
{
    s_batch_alloc(b, n, 3 * n);
    for (size_t i = 0; i < n; i++) {
        double u, v;
        do {
            u = 2 * zps_rng_uniform(r) - 1;
            v = 2 * zps_rng_uniform(r) - 1;
        } while (fabs(u) < 0.15 || fabs(v) < 0.15);
        b->offsets[i] = 3 * i;
        b->ids[3 * i] = 0;
        b->vals[3 * i] = (float)u;
        b->ids[3 * i + 1] = 1;
        b->vals[3 * i + 1] = (float)v;
        b->ids[3 * i + 2] = 2;
        b->vals[3 * i + 2] = 1;
        b->labels[i] = u * v > 0;
    }
    b->offsets[n] = 3 * n;
}

START_TEST(test_mlp_train)
{
    uint64_t r = 2024;
    const uint32_t lay[] = {3, 16, 8, 2};
    wk_model_t *m = s_model(ZPS_MODEL_MLP, 0, 4, lay);
    size_t nk;
    float *w = s_mlp_theta(m, &r, &nk);
    float *g = s_floats(nk * ZPS_MLP_CHUNK);
    wk_batch_t test;
    s_xor_batch(&test, &r, 500);
    float out[500];
    uint32_t cls[500];
    const uint64_t *keys;
    wk_model_keys(m, &test, &keys);
    const double loss0 = wk_model_predict(m, &test, w, out, cls) / 500;

    for (int step = 0; step < 600; step++) {
        wk_batch_t b;
        s_xor_batch(&b, &r, 32);
        wk_model_keys(m, &b, &keys);
        wk_model_step(m, &b, w, g);
        for (size_t t = 0; t < nk * ZPS_MLP_CHUNK; t++)
            w[t] -= 0.2f * g[t];
        s_batch_free(&b);
    }
    wk_model_keys(m, &test, &keys);
    const double loss1 = wk_model_predict(m, &test, w, out, cls) / 500;
    size_t right = 0;
    for (size_t i = 0; i < 500; i++)
        right += cls[i] == (uint32_t)test.labels[i];
    ck_assert_msg(loss1 < 0.3 && loss1 < 0.5 * loss0 && right >= 450,
                  "loss %g -> %g, accuracy %zu/500", loss0, loss1, right);
    free(w);
    free(g);
    s_batch_free(&test);
    wk_model_destroy(&m);
}
END_TEST

Suite *suite_model(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_new);
    tcase_add_test(tc, test_keys_hand);
    tcase_add_test(tc, test_keys_random);
    tcase_add_test(tc, test_lr_hand);
    tcase_add_test(tc, test_gradcheck_lr);
    tcase_add_test(tc, test_gradcheck_fm);
    tcase_add_test(tc, test_gradcheck_mlp);
    tcase_add_test(tc, test_mlp_reference);
    tcase_add_test(tc, test_mlp_init_adam);
    tcase_add_test(tc, test_mlp_train);
    suite_add_tcase(s, tc);
    return s;
}
