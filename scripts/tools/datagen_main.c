/* zps-datagen: deterministic synthetic data with a known ground-truth model.
 *
 * Two tasks, each writing PREFIX.train, PREFIX.test (LIBSVM text) and
 * PREFIX.truth (key=value lines, also printed on stdout).  The truth file
 * holds the generating parameters and the metrics that the generating model
 * itself scores on the written data, so a learner can be judged against
 * the best achievable result instead of against a guess.
 *
 * ctr -- sparse binary classification shaped like click-through data.
 *   Features.  Popularity follows Zipf(A) over ranks 1..F: rank r has
 *   probability r^-A / sum_j j^-A.  The top min(F, 4096) ranks are drawn from
 *   an alias table, the rest by Hoermann-Derflinger rejection-inversion
 *   (O(1) per draw, no table, any F up to 2^62); the two are mixed by the
 *   exact head sum and an Euler-Maclaurin tail sum.  A row draws until it
 *   holds K distinct ranks (duplicates are redrawn; if that takes more than
 *   64K+1000 draws -- only for extreme A with K close to F -- the row is
 *   completed with the smallest unused ranks).  Rank r is written as feature
 *   id perm(r-1), a seed-keyed bijection of [0,F) (add / odd-multiply /
 *   xorshift rounds on ceil(log2 F) bits, cycle-walking back into [0,F)), so
 *   popular features are spread over the id space.  Ids are written sorted,
 *   each with value 1.
 *   Model.  Each id has hash-derived standard normals (Box-Muller on
 *   zps_mix64(id, seed-derived keys)): g_w(id) and, with --interactions, a
 *   hidden embedding g_v(id) in R^4.  The logit of a row x is
 *       z(x) = b0 + sigma_w * sum_{i in x} g_w(i)
 *                 + sigma_v^2 * sum_{i<j in x} <g_v(i), g_v(j)>,
 *   the pairwise sum computed in O(4K) with the FM identity
 *   0.5 * sum_d [(sum_i v_id)^2 - sum_i v_id^2].  With --informative M only
 *   the M most popular ranks carry weights and embeddings; the others are
 *   pure noise features.
 *   Calibration.  Unless given explicitly, sigma_w and sigma_v are set on a
 *   calibration sample (20000 rows of a stream of their own) so that the
 *   standard deviation of z - b0 over rows is --signal (default 1.4, giving
 *   a truth AUC near 0.80), split between the linear part (variance share
 *   1-Q) and the pairwise part (share Q = --fm-share, default 0.6); then b0
 *   is set by bisection so that the sample mean of sigmoid(z) is --pos-rate
 *   (default 0.25).
 *   Labels.  y ~ Bernoulli(p), p = sigmoid(z); with --noise P each label is
 *   then flipped with probability P, so the Bayes-optimal probability of
 *   y = 1 is q = p(1-P) + (1-p)P.
 *   Learnability.  A learner has to estimate about F_eff weights from
 *   N rows; measured with AdaGrad logistic regression on 200K rows, K = 40,
 *   A = 1.1, it ends 0.003 AUC below the truth at F = 1000, 0.006 at 2000,
 *   0.010 at 4096, 0.02 at 10^4, 0.05 at 10^5 and 0.08 at 2^24: most of the
 *   signal of a large F sits in features seen a few times.
 *
 * multiclass -- dense multi-class data for an MLP.
 *   x ~ N(0,1)^D and the label is the argmax over C classes of a fixed random
 *   teacher network D -> H ReLU -> C (H = --hidden, default 32): W1 ~
 *   N(0,1/D), b1 ~ N(0,0.25), W2 ~ N(0,1/H), all hash-seeded; the output
 *   biases are calibrated on a separate sample so that the classes are
 *   about equally frequent.  The argmax of random logits is often decided
 *   by a hair (with C = 10, 70% of Gaussian x have their top two logits
 *   within 0.5 logit standard deviations), which no student learns from a
 *   few epochs, so x is redrawn from the row's stream until the top two
 *   logits differ by at least --margin (default 0.5) logit standard
 *   deviations: x is N(0,1)^D conditioned on a margin, the label is still
 *   the teacher's exact argmax.  The teacher is applied to the values as
 *   printed (%.6g, read back with strtod), so the label is a function of
 *   the file's text.  With --noise P a label is replaced, with probability
 *   P, by a uniformly random class (possibly the same one).
 *
 * Truth metrics.  ctr, on each split: log loss of q against the written
 * labels, AUC of q (exact: all scores sorted, ties count 1/2), accuracy of
 * predicting q > 0.5, the labels' positive rate and the mean of q.
 * multiclass: the teacher's accuracy against the written labels (1 without
 * noise, about 1 - P + P/C with it), the margin acceptance rate and the
 * class frequencies.
 *
 * Determinism.  Every row has its own RNG (splitmix64) seeded from
 * (seed, split, row index): train, test and calibration are independent
 * streams, rows could be generated in any order or in parallel, and the
 * same options give byte-identical files.  Floats are printed in the C
 * locale (setlocale is never called), integers by a hand-written formatter
 * into a large buffer written with fwrite.  The truth AUC keeps 8 bytes
 * per row of each split in memory (up to 16 while sorting). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zps_args.h"
#include "zps_file.h"
#include "zps_hash.h"
#include "zps_rng.h"
#include "zps_sort.h"
#include "wk_metrics.h"

#ifndef ZPS_VERSION
#define ZPS_VERSION "unknown"
#endif

#define S_PROG "zps-datagen"
#define S_EXIT_IO 1
#define S_EXIT_USAGE 2

#define S_SPLIT_TRAIN 1u
#define S_SPLIT_TEST 2u
#define S_SPLIT_CALIB 3u
#define S_CALIB_ROWS 20000u

#define S_FM_K 4          /* hidden embedding width of the ctr interactions */
#define S_CACHE_RANKS (1u << 18)
#define S_OUTBUF (4u << 20)

/* Domain-separation constants for the hash keys derived from the seed. */
#define S_KEY_ROWS 0x6a09e667f3bcc908ULL
#define S_KEY_W0 0xbb67ae8584caa73bULL
#define S_KEY_W1 0x3c6ef372fe94f82bULL
#define S_KEY_V0 0xa54ff53a5f1d36f1ULL
#define S_KEY_V1 0x510e527fade682d1ULL
#define S_KEY_PERM 0x9b05688c2b3e6c1fULL
#define S_KEY_TEACH 0x1f83d9abfb41bd6bULL

/* ---- small numeric helpers ------------------------------------------------ */

/* Two independent standard normals from two hashes (Box-Muller). */
static void s_gauss_pair(uint64_t h1, uint64_t h2, double *g0, double *g1)
{
    double r = sqrt(-2.0 * log(zps_rng_unit_open0(h1)));
    double t = 6.283185307179586476925 * zps_rng_unit(h2);
    *g0 = r * cos(t);
    *g1 = r * sin(t);
}

/* The generator state of one row: rows can be drawn in any order. */
static uint64_t s_row_rng(uint64_t stream_key, uint32_t split, uint64_t row)
{
    return zps_mix64(row, zps_mix64(split, stream_key));
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline double s_sigmoid(double z)
{
    if (z >= 0)
        return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

/* ---- Zipf sampler ------------------------------------------------------------
 *
 * P(rank r) = r^-a / sum_{j=1..n} j^-a.  The head (ranks 1..T, T <= 4096,
 * ~70% of draws at a = 1.1) is sampled from an alias table; the tail
 * (T+1..n) by rejection-inversion (Hoermann & Derflinger 1996, "Rejection-
 * inversion to generate variates from monotone discrete distributions"),
 * started at rank T+1 instead of 1.  The head/tail split uses the exact head
 * sum and the tail sum by Euler-Maclaurin (error far below 1e-15 for T+1 >=
 * 1025; when n <= 4096 there is no tail and everything is exact). */

#define S_ZIPF_HEAD 4096u

typedef struct {
    double a;        /* exponent, >= 0 */
    uint64_t n;      /* number of ranks */
    uint32_t head;   /* ranks 1..head in the alias table */
    double p_head;   /* probability of the head */
    uint32_t prob[S_ZIPF_HEAD];   /* alias acceptance thresholds, 2^-32 units */
    uint32_t alias[S_ZIPF_HEAD];
    /* tail rejection-inversion over m..n, m = head + 1 */
    double m, nd;
    double u_lo;     /* H(m + 0.5) - h(m) */
    double u_hi;     /* H(n + 0.5) */
    double s;
} s_zipf_t;

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
static double s_zipf_h(const s_zipf_t *z, double x)
{
    return exp(-z->a * log(x));
}

/* H(x) = (x^(1-a) - 1) / (1-a), or log x at a = 1: an antiderivative of h */
static double s_zipf_hint(const s_zipf_t *z, double x)
{
    double lx = log(x);
    return s_helper2((1.0 - z->a) * lx) * lx;
}

static double s_zipf_hinv(const s_zipf_t *z, double x)
{
    double t = x * (1.0 - z->a);
    if (t < -1.0)
        t = -1.0;
    return exp(s_helper1(t) * x);
}

/* sum_{r=lo..hi} r^-a by Euler-Maclaurin (lo >= 1025). */
static double s_zipf_tail_sum(const s_zipf_t *z, double lo, double hi)
{
    double a = z->a;
    double integral = s_zipf_hint(z, hi) - s_zipf_hint(z, lo);
    double flo = s_zipf_h(z, lo), fhi = s_zipf_h(z, hi);
    double d1lo = -a * flo / lo, d1hi = -a * fhi / hi;
    double d3lo = -a * (a + 1) * (a + 2) * flo / (lo * lo * lo);
    double d3hi = -a * (a + 1) * (a + 2) * fhi / (hi * hi * hi);
    return integral + 0.5 * (flo + fhi) + (d1hi - d1lo) / 12.0 - (d3hi - d3lo) / 720.0;
}

static void s_zipf_init(s_zipf_t *z, uint64_t n, double a)
{
    z->a = a;
    z->n = n;
    z->head = n < S_ZIPF_HEAD ? (uint32_t)n : S_ZIPF_HEAD;

    /* Vose's alias method over the head */
    double w[S_ZIPF_HEAD], sum = 0;
    uint32_t small[S_ZIPF_HEAD], large[S_ZIPF_HEAD], ns = 0, nl = 0;
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
static uint64_t s_zipf_sample(const s_zipf_t *z, uint64_t *rng)
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

/* ---- rank -> id permutation of [0, F) ------------------------------------ */

typedef struct {
    uint64_t f, mask;
    unsigned bits, shift;
    uint64_t add, m1, m2, m3;
} s_perm_t;

static void s_perm_init(s_perm_t *p, uint64_t f, uint64_t seed)
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

static inline uint64_t s_perm_round(const s_perm_t *p, uint64_t x)
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
static inline uint64_t s_perm_apply(const s_perm_t *p, uint64_t x)
{
    do
        x = s_perm_round(p, x);
    while (x >= p->f);
    return x;
}

/* ---- output buffer --------------------------------------------------------- */

/* Rows are formatted into a large buffer handed to zps_file, the atomic
 * writer: each output appears whole under its name when it is closed (a
 * failed or interrupted run leaves the previous file, never half a file),
 * and a symbolic link or another user's file is not written through. */
typedef struct {
    zps_file_t *f;
    const char *path;
    char *buf;
    size_t len, cap;
    int failed;
} s_out_t;

static int s_out_open(s_out_t *o, const char *path, size_t cap)
{
    memset(o, 0, sizeof *o);
    o->path = path;
    char err[1200];
    o->f = zps_file_atomic_open_path(path, 0644, err, sizeof err);
    if (!o->f) {
        fprintf(stderr, S_PROG ": cannot write '%s': %s\n", path, err);
        return -1;
    }
    o->buf = malloc(cap);
    if (!o->buf) {
        fprintf(stderr, S_PROG ": out of memory\n");
        zps_file_abort(&o->f);
        return -1;
    }
    o->cap = cap;
    return 0;
}

static int s_out_flush(s_out_t *o)
{
    if (o->failed)
        return -1;
    int rc = o->len ? zps_file_write(o->f, o->buf, o->len) : 0;
    if (rc) {
        fprintf(stderr, S_PROG ": cannot write '%s': %s\n", o->path, strerror(-rc));
        o->failed = 1;
        return -1;
    }
    o->len = 0;
    return 0;
}

/* Makes room for need bytes (need <= cap). */
static inline int s_out_reserve(s_out_t *o, size_t need)
{
    if (o->cap - o->len < need)
        return s_out_flush(o);
    return o->failed ? -1 : 0;
}

/* Commits the file (or, after a failure, drops it: the target is as it was). */
static int s_out_close(s_out_t *o)
{
    int rc = s_out_flush(o);
    if (o->f) {
        char err[1200];
        if (rc)
            zps_file_abort(&o->f);
        else if (zps_file_commit(&o->f, err, sizeof err) != 0) {
            fprintf(stderr, S_PROG ": cannot write '%s': %s\n", o->path, err);
            rc = -1;
        }
    }
    free(o->buf);
    o->buf = NULL;
    return rc;
}

static const char s_digits2[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Writes the decimal digits of v at p; returns the number of chars. */
static inline size_t s_fmt_u64(char *p, uint64_t v)
{
    size_t n = 1;
    for (uint64_t t = v; t >= 10; t /= 10)
        n++;
    char *e = p + n;
    while (v >= 100) {
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        *--e = s_digits2[d + 1];
        *--e = s_digits2[d];
    }
    if (v >= 10) {
        *--e = s_digits2[v * 2 + 1];
        *--e = s_digits2[v * 2];
    } else {
        *--e = (char)('0' + v);
    }
    return n;
}

/* ---- progress --------------------------------------------------------------- */

typedef struct {
    const char *what;
    uint64_t total;
    double t0, last;
} s_progress_t;

static void s_progress_start(s_progress_t *pr, const char *what, uint64_t total)
{
    pr->what = what;
    pr->total = total;
    pr->t0 = pr->last = s_now();
}

static void s_progress_tick(s_progress_t *pr, uint64_t done)
{
    double t = s_now();
    if (t - pr->last < 2.0)
        return;
    pr->last = t;
    fprintf(stderr, S_PROG ": %s %llu/%llu rows (%.0f rows/s)\n", pr->what,
            (unsigned long long)done, (unsigned long long)pr->total,
            (double)done / (t - pr->t0));
}

static void s_progress_end(s_progress_t *pr, uint64_t done)
{
    double dt = s_now() - pr->t0;
    if (dt >= 2.0)
        fprintf(stderr, S_PROG ": %s %llu rows in %.1f s (%.0f rows/s)\n", pr->what,
                (unsigned long long)done, dt, dt > 0 ? (double)done / dt : 0.0);
}

/* ---- exact AUC ---------------------------------------------------------------- */

/* The truth scores of one split as order-preserving keys (zps_sort_key_f64):
 * the positives' from the front of key[], the negatives' from the back, so
 * one array of the split's row count holds both.  The AUC is wk_metrics's
 * (wk_metrics_auc_keys). */
typedef struct {
    uint64_t *key;
    uint64_t npos, nneg, cap;
} s_scores_t;

static int s_scores_init(s_scores_t *sc, uint64_t cap)
{
    sc->npos = sc->nneg = 0;
    sc->cap = cap;
    sc->key = malloc((cap ? cap : 1) * sizeof *sc->key);
    if (!sc->key) {
        fprintf(stderr, S_PROG ": out of memory (truth scores for %llu rows)\n",
                (unsigned long long)cap);
        return -1;
    }
    return 0;
}

static inline void s_scores_add(s_scores_t *sc, double score, int label)
{
    if (score <= 0)
        score = 0; /* also maps -0 to +0 */
    const uint64_t k = zps_sort_key_f64(score);
    if (label)
        sc->key[sc->npos++] = k;
    else
        sc->key[sc->cap - ++sc->nneg] = k;
}

static void s_scores_free(s_scores_t *sc)
{
    free(sc->key);
    sc->key = NULL;
}

/* AUC = P(score of a random positive > that of a random negative), ties 1/2.
 * Returns NAN when one of the classes is absent or memory runs out. */
static double s_scores_auc(s_scores_t *sc)
{
    return wk_metrics_auc_keys(sc->key, sc->npos, sc->key + sc->cap - sc->nneg, sc->nneg);
}

/* ---- argument parsing ------------------------------------------------------- */

typedef enum { S_TASK_CTR = 1, S_TASK_MC = 2 } s_task_t;

typedef struct {
    s_task_t task;
    uint64_t rows, test_rows, seed;
    int rows_set, test_rows_set;
    const char *out;
    double noise;
    /* ctr */
    uint64_t features, informative;
    uint32_t nnz;
    double zipf, signal, fm_share, pos_rate, sigma_w, sigma_v;
    int interactions;
    /* multiclass */
    uint32_t dim, classes, hidden;
    double margin;
} s_opts_t;

static void s_usage(FILE *fp)
{
    fputs(
        "usage: " S_PROG " ctr        [options] --out PREFIX\n"
        "       " S_PROG " multiclass [options] --out PREFIX\n"
        "       " S_PROG " --help | --version\n"
        "\n"
        "Writes PREFIX.train and PREFIX.test (LIBSVM text) and PREFIX.truth (key=value\n"
        "metrics of the generating model; also printed on stdout).  Same options give\n"
        "byte-identical output; train and test are independent streams.\n"
        "\n"
        "Common options:\n"
        "  --out PREFIX        output prefix (required)\n"
        "  --rows N            train rows (ctr: 200000, multiclass: 50000)\n"
        "  --test-rows M       test rows (ctr: 50000, multiclass: 10000)\n"
        "  --seed S            64-bit seed (1)\n"
        "  --noise P           ctr: flip each label with probability P; multiclass:\n"
        "                      replace each label by a uniform random class with\n"
        "                      probability P (0)\n"
        "\n"
        "ctr: sparse binary rows 'y id:1 id:1 ...', ids in [0,F) sorted and unique.\n"
        "  --features F        feature-id space size (16777216 = 2^24)\n"
        "  --nnz K             distinct features per row (40)\n"
        "  --zipf A            feature popularity exponent, rank r ~ r^-A (1.1; 0 =\n"
        "                      uniform)\n"
        "  --interactions      add pairwise terms sum_{i<j} <v_i,v_j> (hidden v in R^4)\n"
        "  --signal S          std of the logit over rows, bias excluded (1.4)\n"
        "  --fm-share Q        with --interactions, share of the logit variance from\n"
        "                      the pairwise terms (0.6)\n"
        "  --pos-rate R        target rate of y=1 before noise; sets the bias (0.25)\n"
        "  --sigma-w X         weight scale; overrides --signal for the linear part\n"
        "  --sigma-v X         embedding scale; overrides --signal for the pairwise part\n"
        "  --informative M     only the M most popular features carry weight, the rest\n"
        "                      are noise (0 = all)\n"
        "\n"
        "multiclass: dense rows 'c 0:x0 1:x1 ... D-1:x', x ~ N(0,1) (conditioned on the\n"
        "margin), c in 0..C-1 the argmax of a random teacher network D -> H ReLU -> C.\n"
        "  --dim D             input dimension (32)\n"
        "  --classes C         number of classes (10)\n"
        "  --hidden H          teacher hidden units (32)\n"
        "  --margin G          redraw x until the top two teacher logits differ by at\n"
        "                      least G logit standard deviations (0.5; 0 = plain\n"
        "                      N(0,1) inputs, much harder to learn)\n"
        "\n"
        "Recommended settings (200K train rows; AdaGrad lr/fm and Adam mlp measured):\n"
        "  lr demo, lr gets within 0.01 AUC of the truth (gap 0.003; 0.006 with\n"
        "  --features 2000; 0.01 at 4096, 0.02 at 10^4, 0.05 at 10^5):\n"
        "      ctr --features 1000 --rows 200000 --test-rows 50000\n"
        "  fm beats lr (truth AUC 0.80-0.82, lr 0.04-0.05 below it, fm k=4 0.013):\n"
        "      ctr --features 1000 --interactions --rows 200000 --test-rows 50000\n"
        "  mlp (one hidden layer of 128: 97% after 2 epochs on 50K rows, 99% after\n"
        "  5; 97% after 6 epochs on 20K rows):\n"
        "      multiclass --dim 32 --classes 10 --rows 50000 --test-rows 10000\n"
        "  defaults (F=2^24, Zipf 1.1, truth AUC ~0.80): most features are seen a few\n"
        "  times in 200K rows and lr stays ~0.08 AUC below the truth; for scale tests.\n"
        "\n"
        "Exit status: 0 ok, 1 output could not be written, 2 usage error.\n",
        fp);
}

static int s_bad_value(const char *opt, const char *val, const char *why)
{
    fprintf(stderr, S_PROG ": invalid value '%s' for %s%s%s\n", val, opt, why ? ": " : "",
            why ? why : "");
    return -1;
}

static int s_parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t v;
    if (zps_parse_u64(s, &v))
        return s_bad_value(opt, s, zps_args_why(s, ZPS_ARGS_UINT));
    if (v < lo || v > hi) {
        char why[96];
        snprintf(why, sizeof why, "must be in [%llu, %llu]", (unsigned long long)lo,
                 (unsigned long long)hi);
        return s_bad_value(opt, s, why);
    }
    *out = v;
    return 0;
}

static int s_parse_dbl(const char *opt, const char *s, double lo, double hi, int lo_open,
                       double *out)
{
    double v;
    if (zps_parse_double(s, &v))
        return s_bad_value(opt, s, zps_args_why(s, ZPS_ARGS_REAL));
    if (v < lo || v > hi || (lo_open && v == lo)) {
        char why[96];
        snprintf(why, sizeof why, "must be in %c%g, %g]", lo_open ? '(' : '[', lo, hi);
        return s_bad_value(opt, s, why);
    }
    *out = v;
    return 0;
}

typedef enum {
    S_OPT_OUT, S_OPT_ROWS, S_OPT_TEST_ROWS, S_OPT_SEED, S_OPT_NOISE,
    S_OPT_FEATURES, S_OPT_INFORMATIVE, S_OPT_NNZ, S_OPT_ZIPF, S_OPT_INTERACTIONS,
    S_OPT_SIGNAL, S_OPT_FM_SHARE, S_OPT_POS_RATE, S_OPT_SIGMA_W, S_OPT_SIGMA_V,
    S_OPT_DIM, S_OPT_CLASSES, S_OPT_HIDDEN, S_OPT_MARGIN
} s_optid_t;

typedef struct {
    const char *name;
    s_optid_t id;
    unsigned tasks;   /* mask of s_task_t */
} s_optdef_t;

static const s_optdef_t s_optdefs[] = {
    {"--out", S_OPT_OUT, S_TASK_CTR | S_TASK_MC},
    {"--rows", S_OPT_ROWS, S_TASK_CTR | S_TASK_MC},
    {"--test-rows", S_OPT_TEST_ROWS, S_TASK_CTR | S_TASK_MC},
    {"--seed", S_OPT_SEED, S_TASK_CTR | S_TASK_MC},
    {"--noise", S_OPT_NOISE, S_TASK_CTR | S_TASK_MC},
    {"--features", S_OPT_FEATURES, S_TASK_CTR},
    {"--informative", S_OPT_INFORMATIVE, S_TASK_CTR},
    {"--nnz", S_OPT_NNZ, S_TASK_CTR},
    {"--zipf", S_OPT_ZIPF, S_TASK_CTR},
    {"--interactions", S_OPT_INTERACTIONS, S_TASK_CTR},
    {"--signal", S_OPT_SIGNAL, S_TASK_CTR},
    {"--fm-share", S_OPT_FM_SHARE, S_TASK_CTR},
    {"--pos-rate", S_OPT_POS_RATE, S_TASK_CTR},
    {"--sigma-w", S_OPT_SIGMA_W, S_TASK_CTR},
    {"--sigma-v", S_OPT_SIGMA_V, S_TASK_CTR},
    {"--dim", S_OPT_DIM, S_TASK_MC},
    {"--classes", S_OPT_CLASSES, S_TASK_MC},
    {"--hidden", S_OPT_HIDDEN, S_TASK_MC},
    {"--margin", S_OPT_MARGIN, S_TASK_MC},
};

/* Parses argv into o.  Returns 0, 1 when --help/--version was handled, or
 * -1 after a message (usage error). */
static int s_parse_args(int argc, char **argv, s_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->features = 1ULL << 24;
    o->nnz = 40;
    o->zipf = 1.1;
    o->signal = 1.4;
    o->fm_share = 0.6;
    o->pos_rate = 0.25;
    o->dim = 32;
    o->classes = 10;
    o->hidden = 32;
    o->margin = 0.5;

    enum { S_NOPT = sizeof s_optdefs / sizeof s_optdefs[0], O_HELP = 'h', O_VERSION = 0x100 };
    _Static_assert(S_NOPT < 32, "given is a 32-bit mask");
    struct option opts[S_NOPT + 3];
    for (size_t k = 0; k < S_NOPT; k++)
        opts[k] = (struct option){s_optdefs[k].name + 2,
                                  s_optdefs[k].id == S_OPT_INTERACTIONS ? no_argument
                                                                        : required_argument,
                                  0, (int)k + 1};
    opts[S_NOPT] = (struct option){"help", no_argument, 0, O_HELP};
    opts[S_NOPT + 1] = (struct option){"version", no_argument, 0, O_VERSION};
    opts[S_NOPT + 2] = (struct option){0, 0, 0, 0};
    uint32_t given = 0; /* bit k: s_optdefs[k] was given */
    char err[300];
    int c, li;
    while ((c = zps_getopt(argc, argv, "h", opts, &li, err, sizeof err)) != -1) {
        if (c == O_HELP) {
            s_usage(stdout);
            return 1;
        }
        if (c == O_VERSION) {
            printf(S_PROG " " ZPS_VERSION "\n");
            return 1;
        }
        if (c < 0) {
            fprintf(stderr, S_PROG ": %s\n", err);
            return -1;
        }
        const s_optdef_t *def = &s_optdefs[c - 1];
        const char *name = def->name, *val = optarg;
        given |= 1u << (c - 1);
        if (def->id == S_OPT_INTERACTIONS) { /* the only flag */
            o->interactions = 1;
            continue;
        }
        uint64_t u = 0;
        int rc = 0;
        switch (def->id) {
        case S_OPT_OUT:
            if (!*val)
                rc = s_bad_value(name, val, "empty prefix");
            o->out = val;
            break;
        case S_OPT_ROWS:
            rc = s_parse_u64(name, val, 1, 1ULL << 40, &o->rows);
            o->rows_set = 1;
            break;
        case S_OPT_TEST_ROWS:
            rc = s_parse_u64(name, val, 1, 1ULL << 40, &o->test_rows);
            o->test_rows_set = 1;
            break;
        case S_OPT_SEED:
            rc = s_parse_u64(name, val, 0, UINT64_MAX, &o->seed);
            break;
        case S_OPT_NOISE:
            rc = s_parse_dbl(name, val, 0, 1, 0, &o->noise);
            break;
        case S_OPT_FEATURES:
            rc = s_parse_u64(name, val, 1, 1ULL << 62, &o->features);
            break;
        case S_OPT_INFORMATIVE:
            rc = s_parse_u64(name, val, 0, 1ULL << 62, &o->informative);
            break;
        case S_OPT_NNZ:
            rc = s_parse_u64(name, val, 1, 100000, &u);
            o->nnz = (uint32_t)u;
            break;
        case S_OPT_ZIPF:
            rc = s_parse_dbl(name, val, 0, 20, 0, &o->zipf);
            break;
        case S_OPT_SIGNAL:
            rc = s_parse_dbl(name, val, 0, 50, 0, &o->signal);
            break;
        case S_OPT_FM_SHARE:
            rc = s_parse_dbl(name, val, 0, 1, 0, &o->fm_share);
            break;
        case S_OPT_POS_RATE:
            rc = s_parse_dbl(name, val, 0, 1, 1, &o->pos_rate);
            if (!rc && o->pos_rate >= 1)
                rc = s_bad_value(name, val, "must be in (0, 1)");
            break;
        case S_OPT_SIGMA_W:
            rc = s_parse_dbl(name, val, 0, 100, 0, &o->sigma_w);
            if (!rc && o->sigma_w == 0)
                o->sigma_w = -1; /* explicit zero: no linear part */
            break;
        case S_OPT_SIGMA_V:
            rc = s_parse_dbl(name, val, 0, 100, 0, &o->sigma_v);
            if (!rc && o->sigma_v == 0)
                o->sigma_v = -1;
            break;
        case S_OPT_DIM:
            rc = s_parse_u64(name, val, 1, 100000, &u);
            o->dim = (uint32_t)u;
            break;
        case S_OPT_CLASSES:
            rc = s_parse_u64(name, val, 2, 10000, &u);
            o->classes = (uint32_t)u;
            break;
        case S_OPT_HIDDEN:
            rc = s_parse_u64(name, val, 1, 10000, &u);
            o->hidden = (uint32_t)u;
            break;
        case S_OPT_MARGIN:
            rc = s_parse_dbl(name, val, 0, 10, 0, &o->margin);
            break;
        case S_OPT_INTERACTIONS:
            break;
        }
        if (rc)
            return -1;
    }
    /* the task: the one argument that is not an option (getopt_long moved
     * it behind the options) */
    if (optind >= argc) {
        fprintf(stderr, S_PROG ": missing task (ctr or multiclass); see --help\n");
        return -1;
    }
    const char *task = argv[optind];
    if (!strcmp(task, "ctr")) {
        o->task = S_TASK_CTR;
    } else if (!strcmp(task, "multiclass")) {
        o->task = S_TASK_MC;
    } else {
        fprintf(stderr, S_PROG ": unknown task '%s' (expected ctr or multiclass)\n", task);
        return -1;
    }
    if (optind + 1 < argc) {
        fprintf(stderr, S_PROG ": unexpected argument '%s'\n", argv[optind + 1]);
        return -1;
    }
    for (size_t k = 0; k < S_NOPT; k++)
        if ((given >> k & 1) && !(s_optdefs[k].tasks & o->task)) {
            fprintf(stderr, S_PROG ": option %s does not apply to task '%s'\n",
                    s_optdefs[k].name, task);
            return -1;
        }
    if (!o->out) {
        fprintf(stderr, S_PROG ": missing --out PREFIX\n");
        return -1;
    }
    if (!o->rows_set)
        o->rows = o->task == S_TASK_CTR ? 200000 : 50000;
    if (!o->test_rows_set)
        o->test_rows = o->task == S_TASK_CTR ? 50000 : 10000;
    if (o->task == S_TASK_CTR && o->nnz > o->features) {
        fprintf(stderr, S_PROG ": --nnz (%u) must not exceed --features (%llu)\n", o->nnz,
                (unsigned long long)o->features);
        return -1;
    }
    return 0;
}

/* ---- ctr model ---------------------------------------------------------------- */

typedef struct {
    uint64_t id;
    double w;
} s_feat_t;

typedef struct {
    uint64_t f;
    uint32_t k;
    int inter;
    uint64_t informative;   /* ranks above this have no weight */
    double noise;
    double sigma_w, sigma_v2, b0;   /* sigma_v2 = sigma_v^2 */
    s_zipf_t zipf;
    s_perm_t perm;
    uint64_t key_rows, key_w0, key_w1, key_v0, key_v1;
    /* unit-scale parameters of the first ncache ranks */
    uint64_t ncache;
    s_feat_t *cache;
    double *cv;      /* ncache x S_FM_K, with --interactions */
} s_ctr_t;

typedef struct {
    uint64_t *ranks;   /* k */
    uint64_t *ids;     /* k, sorted on output */
    uint64_t *tmp;     /* k, sort scratch */
    uint64_t *set;     /* open-addressing set of ranks (rank 0 = empty) */
    uint64_t setmask;
    double lin, pair;  /* unit-scale linear sum and pairwise sum */
} s_ctr_row_t;

/* Unit-scale weight and embedding of id (embedding only if v != NULL). */
static void s_ctr_params(const s_ctr_t *m, uint64_t id, double *w, double *v)
{
    double g0, g1, g2, g3;
    s_gauss_pair(zps_mix64(id, m->key_w0), zps_mix64(id, m->key_w1), &g0, &g1);
    *w = g0;
    if (v) {
        s_gauss_pair(zps_mix64(id, m->key_v0), zps_mix64(id, m->key_v1), &g2, &g3);
        v[0] = g1;
        v[1] = g2;
        v[2] = g3;
        s_gauss_pair(zps_mix64(id, m->key_v0 ^ m->key_w1), zps_mix64(id, m->key_v1 ^ m->key_w0),
                     &g2, &g3);
        v[3] = g2;
    }
}

static int s_ctr_init(s_ctr_t *m, const s_opts_t *o)
{
    memset(m, 0, sizeof *m);
    m->f = o->features;
    m->k = o->nnz;
    m->inter = o->interactions;
    m->noise = o->noise;
    m->informative = o->informative && o->informative < o->features ? o->informative : o->features;
    s_zipf_init(&m->zipf, o->features, o->zipf);
    s_perm_init(&m->perm, o->features, o->seed);
    m->key_rows = zps_mix64(o->seed, S_KEY_ROWS);
    m->key_w0 = zps_mix64(o->seed, S_KEY_W0);
    m->key_w1 = zps_mix64(o->seed, S_KEY_W1);
    m->key_v0 = zps_mix64(o->seed, S_KEY_V0);
    m->key_v1 = zps_mix64(o->seed, S_KEY_V1);
    m->ncache = o->features < S_CACHE_RANKS ? o->features : S_CACHE_RANKS;
    m->cache = malloc(m->ncache * sizeof *m->cache);
    if (m->inter)
        /* 64-byte aligned: an embedding is half a cache line */
        m->cv = aligned_alloc(64, (m->ncache * S_FM_K * sizeof *m->cv + 63) & ~(size_t)63);
    if (!m->cache || (m->inter && !m->cv)) {
        fprintf(stderr, S_PROG ": out of memory\n");
        return -1;
    }
    for (uint64_t r = 0; r < m->ncache; r++) {
        uint64_t id = s_perm_apply(&m->perm, r);
        m->cache[r].id = id;
        if (r < m->informative) {
            s_ctr_params(m, id, &m->cache[r].w, m->inter ? &m->cv[r * S_FM_K] : NULL);
        } else {
            m->cache[r].w = 0;
            if (m->inter)
                memset(&m->cv[r * S_FM_K], 0, S_FM_K * sizeof *m->cv);
        }
    }
    return 0;
}

static void s_ctr_free(s_ctr_t *m)
{
    free(m->cache);
    free(m->cv);
}

static int s_ctr_row_init(s_ctr_row_t *r, uint32_t k)
{
    uint64_t sz = 16;
    while (sz < 4ULL * k)
        sz <<= 1;
    r->setmask = sz - 1;
    r->ranks = malloc(k * sizeof *r->ranks);
    r->ids = malloc(k * sizeof *r->ids);
    r->tmp = malloc(k * sizeof *r->tmp);
    r->set = calloc(sz, sizeof *r->set);
    if (!r->ranks || !r->ids || !r->tmp || !r->set) {
        fprintf(stderr, S_PROG ": out of memory\n");
        return -1;
    }
    return 0;
}

static void s_ctr_row_free(s_ctr_row_t *r)
{
    free(r->ranks);
    free(r->ids);
    free(r->tmp);
    free(r->set);
}

/* Inserts rank into the row's set; returns 1 if it was new. */
static inline int s_set_insert(s_ctr_row_t *r, uint64_t rank)
{
    uint64_t h = zps_mix64(rank, 0) & r->setmask;
    for (;;) {
        if (r->set[h] == rank)
            return 0;
        if (r->set[h] == 0) {
            r->set[h] = rank;
            return 1;
        }
        h = (h + 1) & r->setmask;
    }
}

/* Draws the features of one row and its unit-scale logit parts. */
static void s_ctr_draw(const s_ctr_t *m, uint64_t *rng, s_ctr_row_t *r)
{
    uint32_t k = m->k, got = 0;
    uint64_t tries = 0, max_tries = 64ULL * k + 1000;
    while (got < k && tries < max_tries) {
        uint64_t rank = s_zipf_sample(&m->zipf, rng);
        tries++;
        if (s_set_insert(r, rank)) {
            r->ranks[got++] = rank;
            if (rank <= m->ncache) { /* the tables outgrow L2: fetch early */
                __builtin_prefetch(&m->cache[rank - 1]);
                if (m->cv)
                    __builtin_prefetch(&m->cv[(rank - 1) * S_FM_K]);
            }
        }
    }
    for (uint64_t rank = 1; got < k; rank++) /* degenerate: smallest unused */
        if (s_set_insert(r, rank))
            r->ranks[got++] = rank;

    double lin = 0, s[S_FM_K] = {0}, q[S_FM_K] = {0};
    for (uint32_t i = 0; i < k; i++) {
        uint64_t rank = r->ranks[i];
        double w, vb[S_FM_K];
        const double *v = vb;
        if (rank <= m->ncache) {
            r->ids[i] = m->cache[rank - 1].id;
            w = m->cache[rank - 1].w;
            if (m->inter)
                v = &m->cv[(rank - 1) * S_FM_K];
        } else {
            r->ids[i] = s_perm_apply(&m->perm, rank - 1);
            if (rank > m->informative)
                continue; /* a pure-noise feature */
            s_ctr_params(m, r->ids[i], &w, m->inter ? vb : NULL);
        }
        lin += w;
        if (m->inter)
            for (int d = 0; d < S_FM_K; d++) {
                s[d] += v[d];
                q[d] += v[d] * v[d];
            }
    }
    /* Empty the set for the next row: every key lies in the run of occupied
     * slots starting at its home slot, so wiping those runs clears it. */
    for (uint32_t i = 0; i < k; i++) {
        uint64_t h = zps_mix64(r->ranks[i], 0) & r->setmask;
        while (r->set[h] != 0) {
            r->set[h] = 0;
            h = (h + 1) & r->setmask;
        }
    }
    double pair = 0;
    if (m->inter)
        for (int d = 0; d < S_FM_K; d++)
            pair += s[d] * s[d] - q[d];
    r->lin = lin;
    r->pair = 0.5 * pair;
    uint64_t *sorted = zps_sort_u64(r->ids, r->tmp, k);
    if (sorted != r->ids) { /* the sort ended in the scratch: swap the roles */
        r->tmp = r->ids;
        r->ids = sorted;
    }
}

typedef struct {
    double logloss_sum, correct, pos, qsum;
    uint64_t n;
    s_scores_t sc;
} s_ctr_stats_t;

/* Generates one row: features into r, returns the label; *qout gets the
 * Bayes-optimal P(y=1). */
static int s_ctr_row(const s_ctr_t *m, uint32_t split, uint64_t idx, s_ctr_row_t *r,
                     double *qout, double *q0out)
{
    uint64_t rng = s_row_rng(m->key_rows, split, idx);
    s_ctr_draw(m, &rng, r);
    double z = m->b0 + m->sigma_w * r->lin + m->sigma_v2 * r->pair;
    double p = s_sigmoid(z), pn = s_sigmoid(-z);
    int y = zps_rng_uniform(&rng) < p;
    if (zps_rng_uniform(&rng) < m->noise)
        y = !y;
    /* q = p(1-P) + (1-p)P, written so that P = 0.5 gives exactly 0.5 */
    *qout = m->noise + (1 - 2 * m->noise) * p;
    *q0out = m->noise + (1 - 2 * m->noise) * pn;
    return y;
}

/* Chooses sigma_w, sigma_v and b0 on the calibration stream. */
static int s_ctr_calibrate(s_ctr_t *m, const s_opts_t *o)
{
    uint64_t n = S_CALIB_ROWS;
    double *lin = malloc(n * sizeof *lin), *pair = malloc(n * sizeof *pair);
    s_ctr_row_t r;
    if (!lin || !pair || s_ctr_row_init(&r, m->k)) {
        free(lin);
        free(pair);
        fprintf(stderr, S_PROG ": out of memory\n");
        return -1;
    }
    double ml = 0, mp = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t rng = s_row_rng(m->key_rows, S_SPLIT_CALIB, i);
        s_ctr_draw(m, &rng, &r);
        lin[i] = r.lin;
        pair[i] = r.pair;
        ml += r.lin;
        mp += r.pair;
    }
    ml /= (double)n;
    mp /= (double)n;
    double vl = 0, vp = 0;
    for (uint64_t i = 0; i < n; i++) {
        vl += (lin[i] - ml) * (lin[i] - ml);
        vp += (pair[i] - mp) * (pair[i] - mp);
    }
    vl /= (double)n;
    vp /= (double)n;
    double share = m->inter ? o->fm_share : 0.0;
    if (o->sigma_w > 0)
        m->sigma_w = o->sigma_w;
    else if (o->sigma_w < 0 || vl <= 0)
        m->sigma_w = 0;
    else
        m->sigma_w = o->signal * sqrt((1 - share) / vl);
    if (!m->inter || o->sigma_v < 0 || (o->sigma_v == 0 && vp <= 0))
        m->sigma_v2 = 0;
    else if (o->sigma_v > 0)
        m->sigma_v2 = o->sigma_v * o->sigma_v;
    else
        m->sigma_v2 = o->signal * sqrt(share / vp);

    /* bisection on b0: mean sigmoid(z) is increasing in b0 */
    double lo = -60, hi = 60;
    for (int it = 0; it < 100; it++) {
        double mid = 0.5 * (lo + hi), mean = 0;
        for (uint64_t i = 0; i < n; i++)
            mean += s_sigmoid(mid + m->sigma_w * lin[i] + m->sigma_v2 * pair[i]);
        mean /= (double)n;
        if (mean < o->pos_rate)
            lo = mid;
        else
            hi = mid;
    }
    m->b0 = 0.5 * (lo + hi);
    free(lin);
    free(pair);
    s_ctr_row_free(&r);
    return 0;
}

static int s_ctr_split(const s_ctr_t *m, uint32_t split, uint64_t rows,
                       const char *path, const char *what, s_ctr_stats_t *st)
{
    s_out_t out;
    s_ctr_row_t r;
    size_t maxline = (size_t)m->k * 23 + 8;
    size_t cap = S_OUTBUF > 2 * maxline ? S_OUTBUF : 2 * maxline;
    memset(st, 0, sizeof *st);
    if (s_scores_init(&st->sc, rows))
        return -1;
    if (s_ctr_row_init(&r, m->k))
        return -1;
    if (s_out_open(&out, path, cap)) {
        s_ctr_row_free(&r);
        return -1;
    }
    s_progress_t pr;
    s_progress_start(&pr, what, rows);
    for (uint64_t i = 0; i < rows; i++) {
        double q, q0;
        int y = s_ctr_row(m, split, i, &r, &q, &q0);
        if (s_out_reserve(&out, maxline))
            break;
        char *p = out.buf + out.len;
        *p++ = (char)('0' + y);
        for (uint32_t j = 0; j < m->k; j++) {
            *p++ = ' ';
            p += s_fmt_u64(p, r.ids[j]);
            *p++ = ':';
            *p++ = '1';
        }
        *p++ = '\n';
        out.len = (size_t)(p - out.buf);

        double pl = y ? q : q0;
        st->logloss_sum += -log(pl > 1e-15 ? pl : 1e-15);
        st->correct += (q > 0.5) == y;
        st->pos += y;
        st->qsum += q;
        st->n++;
        s_scores_add(&st->sc, q, y);
        if ((i & 0xfff) == 0xfff)
            s_progress_tick(&pr, i + 1);
    }
    s_progress_end(&pr, st->n);
    s_ctr_row_free(&r);
    return s_out_close(&out);
}

/* ---- multiclass teacher --------------------------------------------------------- */

typedef struct {
    uint32_t d, h, c;
    double noise;
    double margin;   /* absolute: rows with top1 - top2 logit below it are redrawn */
    double logit_sd; /* std of the logits on the calibration sample */
    uint64_t key_rows;
    double *w1, *b1, *w2, *b2;   /* h*d, h, c*h, c */
} s_mc_t;

static double s_hash_gauss(uint64_t key, uint64_t i)
{
    double g0, g1;
    s_gauss_pair(zps_mix64(2 * i, key), zps_mix64(2 * i + 1, key), &g0, &g1);
    (void)g1;
    return g0;
}

/* Output logits of the teacher (without b2 when b2 is NULL). */
static void s_mc_forward(const s_mc_t *m, const double *x, double *hid, double *out)
{
    for (uint32_t j = 0; j < m->h; j++) {
        const double *w = &m->w1[(size_t)j * m->d];
        double a = m->b1[j];
        for (uint32_t i = 0; i < m->d; i++)
            a += w[i] * x[i];
        hid[j] = a > 0 ? a : 0;
    }
    for (uint32_t c = 0; c < m->c; c++) {
        const double *w = &m->w2[(size_t)c * m->h];
        double a = m->b2[c];
        for (uint32_t j = 0; j < m->h; j++)
            a += w[j] * hid[j];
        out[c] = a;
    }
}

/* Index of the largest of v[0..n) (the first on ties); *gap = its excess
 * over the second largest. */
static uint32_t s_top2(const double *v, uint32_t n, double *gap)
{
    uint32_t best = 0;
    double top = v[0], second = -INFINITY;
    for (uint32_t i = 1; i < n; i++) {
        if (v[i] > top) {
            second = top;
            top = v[i];
            best = i;
        } else if (v[i] > second) {
            second = v[i];
        }
    }
    *gap = top - second;
    return best;
}

typedef struct {
    double *x, *hid, *out;
    char *txt;        /* the printed row features, with leading spaces */
    size_t txtlen;
    uint64_t draws;   /* x vectors drawn (rejection by margin) */
} s_mc_row_t;

/* Draws x, rounds it to its printed form (text in r->txt when want_text)
 * and returns the teacher's class on the rounded values; *label gets the
 * written label.  With a margin, x is redrawn (from the same row stream)
 * until the teacher's top two logits differ by at least the margin; a
 * candidate is rounded only if its unrounded gap is within 1e-3 of that
 * (rounding moves the logits by ~1e-5), the decision is made on the
 * rounded values. */
static uint32_t s_mc_row(const s_mc_t *m, uint32_t split, uint64_t idx, s_mc_row_t *r,
                         uint32_t *label, int want_text)
{
    uint64_t rng = s_row_rng(m->key_rows, split, idx);
    uint32_t cls, tries = 0;
    double gap;
    for (;;) {
        r->draws++;
        for (uint32_t i = 0; i < m->d; i += 2) {
            double g0, g1;
            uint64_t h1 = zps_rng_next(&rng), h2 = zps_rng_next(&rng);
            s_gauss_pair(h1, h2, &g0, &g1);
            r->x[i] = g0;
            if (i + 1 < m->d)
                r->x[i + 1] = g1;
        }
        /* give up on pathological margins: accept the 10000th candidate */
        int last = ++tries >= 10000;
        if (m->margin > 0 && !last) {
            s_mc_forward(m, r->x, r->hid, r->out);
            s_top2(r->out, m->c, &gap);
            if (gap < m->margin - 1e-3)
                continue;
        }
        char *p = r->txt;
        for (uint32_t i = 0; i < m->d; i++) {
            char num[32];
            int len = snprintf(num, sizeof num, "%.6g", r->x[i]);
            r->x[i] = strtod(num, NULL);
            if (want_text) {
                *p++ = ' ';
                p += s_fmt_u64(p, i);
                *p++ = ':';
                memcpy(p, num, (size_t)len);
                p += len;
            }
        }
        r->txtlen = (size_t)(p - r->txt);
        s_mc_forward(m, r->x, r->hid, r->out);
        cls = s_top2(r->out, m->c, &gap);
        if (m->margin <= 0 || gap >= m->margin || last)
            break;
    }
    uint32_t y = cls;
    double u = zps_rng_uniform(&rng);
    uint64_t rc = zps_rng_next(&rng);
    if (u < m->noise)
        y = (uint32_t)(((rc >> 32) * m->c) >> 32);
    *label = y;
    return cls;
}

static int s_mc_row_init(s_mc_row_t *r, const s_mc_t *m)
{
    r->x = malloc(m->d * sizeof *r->x);
    r->hid = malloc(m->h * sizeof *r->hid);
    r->out = malloc(m->c * sizeof *r->out);
    r->txt = malloc((size_t)m->d * 40 + 8);
    r->draws = 0;
    if (!r->x || !r->hid || !r->out || !r->txt) {
        fprintf(stderr, S_PROG ": out of memory\n");
        return -1;
    }
    return 0;
}

static void s_mc_row_free(s_mc_row_t *r)
{
    free(r->x);
    free(r->hid);
    free(r->out);
    free(r->txt);
}

static int s_mc_init(s_mc_t *m, const s_opts_t *o)
{
    memset(m, 0, sizeof *m);
    m->d = o->dim;
    m->h = o->hidden;
    m->c = o->classes;
    m->noise = o->noise;
    m->key_rows = zps_mix64(o->seed, S_KEY_ROWS);
    uint64_t kt = zps_mix64(o->seed, S_KEY_TEACH);
    m->w1 = malloc((size_t)m->h * m->d * sizeof *m->w1);
    m->b1 = malloc(m->h * sizeof *m->b1);
    m->w2 = malloc((size_t)m->c * m->h * sizeof *m->w2);
    m->b2 = calloc(m->c, sizeof *m->b2);
    if (!m->w1 || !m->b1 || !m->w2 || !m->b2) {
        fprintf(stderr, S_PROG ": out of memory\n");
        return -1;
    }
    double s1 = 1.0 / sqrt((double)m->d), s2 = 1.0 / sqrt((double)m->h);
    for (size_t i = 0; i < (size_t)m->h * m->d; i++)
        m->w1[i] = s1 * s_hash_gauss(zps_mix64(1, kt), i);
    for (uint32_t j = 0; j < m->h; j++)
        m->b1[j] = 0.5 * s_hash_gauss(zps_mix64(2, kt), j);
    for (size_t i = 0; i < (size_t)m->c * m->h; i++)
        m->w2[i] = s2 * s_hash_gauss(zps_mix64(3, kt), i);

    /* Calibrate b2 so the classes are about equally frequent.  The argmax
     * frequency of class c increases with b2_c, so a damped, decaying step
     * against the relative excess f_c*C - 1 (clipped to [-1, 1], in units
     * of the logits' standard deviation) settles near f_c = 1/C. */
    uint64_t n = S_CALIB_ROWS;
    double *logit = malloc(n * m->c * sizeof *logit);
    uint64_t *cnt = malloc(m->c * sizeof *cnt);
    s_mc_row_t r;
    if (!logit || !cnt || s_mc_row_init(&r, m)) {
        free(logit);
        free(cnt);
        fprintf(stderr, S_PROG ": out of memory\n");
        return -1;
    }
    double mean = 0, sq = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t lab;
        s_mc_row(m, S_SPLIT_CALIB, i, &r, &lab, 0);
        memcpy(&logit[i * m->c], r.out, m->c * sizeof *logit);
        for (uint32_t c = 0; c < m->c; c++) {
            mean += r.out[c];
            sq += r.out[c] * r.out[c];
        }
    }
    mean /= (double)(n * m->c);
    double sd = sqrt(fmax(sq / (double)(n * m->c) - mean * mean, 1e-12));
    m->logit_sd = sd;
    double margin = o->margin * sd;
    for (int it = 0; it < 1000; it++) {
        memset(cnt, 0, m->c * sizeof *cnt);
        uint64_t kept = 0;
        for (uint64_t i = 0; i < n; i++) {
            const double *l = &logit[i * m->c];
            uint32_t best = 0;
            double top = l[0] + m->b2[0], second = -INFINITY;
            for (uint32_t c = 1; c < m->c; c++) {
                double v = l[c] + m->b2[c];
                if (v > top) {
                    second = top;
                    top = v;
                    best = c;
                } else if (v > second) {
                    second = v;
                }
            }
            if (top - second < margin) /* this row would be redrawn */
                continue;
            cnt[best]++;
            kept++;
        }
        if (!kept)
            break;
        double worst = 0, eta = 0.3 / (1.0 + it / 20.0);
        for (uint32_t c = 0; c < m->c; c++) {
            double rel = (double)cnt[c] * m->c / (double)kept - 1.0;
            worst = fabs(rel) > worst ? fabs(rel) : worst;
            rel = rel > 1 ? 1 : rel < -1 ? -1 : rel;
            m->b2[c] -= sd * eta * rel;
        }
        if (worst < 0.02)
            break;
    }
    m->margin = margin;
    free(logit);
    free(cnt);
    s_mc_row_free(&r);
    return 0;
}

static void s_mc_free(s_mc_t *m)
{
    free(m->w1);
    free(m->b1);
    free(m->w2);
    free(m->b2);
}

typedef struct {
    uint64_t n, agree, draws;
    uint64_t *freq;
} s_mc_stats_t;

static int s_mc_split(const s_mc_t *m, uint32_t split, uint64_t rows, const char *path,
                      const char *what, s_mc_stats_t *st)
{
    s_out_t out;
    s_mc_row_t r;
    size_t maxline = (size_t)m->d * 40 + 16;
    size_t cap = S_OUTBUF > 2 * maxline ? S_OUTBUF : 2 * maxline;
    st->n = st->agree = 0;
    st->freq = calloc(m->c, sizeof *st->freq);
    if (!st->freq) {
        fprintf(stderr, S_PROG ": out of memory\n");
        return -1;
    }
    if (s_mc_row_init(&r, m))
        return -1;
    if (s_out_open(&out, path, cap)) {
        s_mc_row_free(&r);
        return -1;
    }
    s_progress_t pr;
    s_progress_start(&pr, what, rows);
    for (uint64_t i = 0; i < rows; i++) {
        uint32_t y;
        uint32_t cls = s_mc_row(m, split, i, &r, &y, 1);
        if (s_out_reserve(&out, maxline))
            break;
        char *p = out.buf + out.len;
        p += s_fmt_u64(p, y);
        memcpy(p, r.txt, r.txtlen);
        p += r.txtlen;
        *p++ = '\n';
        out.len = (size_t)(p - out.buf);
        st->n++;
        st->agree += cls == y;
        st->freq[y]++;
        if ((i & 0x3ff) == 0x3ff)
            s_progress_tick(&pr, i + 1);
    }
    s_progress_end(&pr, st->n);
    st->draws = r.draws;
    s_mc_row_free(&r);
    return s_out_close(&out);
}

/* ---- truth summary ------------------------------------------------------------------ */

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} s_text_t;

static void s_text_add(s_text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void s_text_add(s_text_t *t, const char *fmt, ...)
{
    if (t->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = 1;
            return;
        }
        if (t->buf && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t ncap = t->cap ? t->cap * 2 : 4096;
        while (ncap < t->len + (size_t)n + 1)
            ncap *= 2;
        char *nb = realloc(t->buf, ncap);
        if (!nb) {
            t->oom = 1;
            return;
        }
        t->buf = nb;
        t->cap = ncap;
    }
}

/* Prints a metric, "nan" when undefined (never locale dependent). */
static void s_text_metric(s_text_t *t, const char *key, double v)
{
    if (isnan(v))
        s_text_add(t, "%s=nan\n", key);
    else
        s_text_add(t, "%s=%.6f\n", key, v);
}

static int s_write_truth(const s_opts_t *o, const s_text_t *t)
{
    size_t plen = strlen(o->out);
    char *path = malloc(plen + 8);
    if (!path) {
        fprintf(stderr, S_PROG ": out of memory\n");
        return -1;
    }
    memcpy(path, o->out, plen);
    memcpy(path + plen, ".truth", 7);
    s_out_t out;
    int rc = s_out_open(&out, path, t->len + 1);
    if (!rc) {
        memcpy(out.buf, t->buf, t->len);
        out.len = t->len;
        rc = s_out_close(&out);
    }
    free(path);
    if (!rc) {
        fwrite(t->buf, 1, t->len, stdout);
        fflush(stdout);
    }
    return rc;
}

static void s_ctr_summary(s_text_t *t, const char *split, s_ctr_stats_t *st)
{
    char key[64];
    double n = (double)(st->n ? st->n : 1);
    snprintf(key, sizeof key, "%s_logloss", split);
    s_text_metric(t, key, st->logloss_sum / n);
    snprintf(key, sizeof key, "%s_auc", split);
    s_text_metric(t, key, s_scores_auc(&st->sc));
    snprintf(key, sizeof key, "%s_accuracy", split);
    s_text_metric(t, key, st->correct / n);
    snprintf(key, sizeof key, "%s_pos_rate", split);
    s_text_metric(t, key, st->pos / n);
    snprintf(key, sizeof key, "%s_mean_prob", split);
    s_text_metric(t, key, st->qsum / n);
}

static char *s_path(const char *prefix, const char *ext)
{
    size_t a = strlen(prefix), b = strlen(ext);
    char *p = malloc(a + b + 1);
    if (!p) {
        fprintf(stderr, S_PROG ": out of memory\n");
        return NULL;
    }
    memcpy(p, prefix, a);
    memcpy(p + a, ext, b + 1);
    return p;
}

static int s_run_ctr(const s_opts_t *o)
{
    s_ctr_t m;
    memset(&m, 0, sizeof m);
    int rc = S_EXIT_IO;
    s_ctr_stats_t tr, te;
    memset(&tr, 0, sizeof tr);
    memset(&te, 0, sizeof te);
    s_text_t t = {0};
    char *ptrain = s_path(o->out, ".train"), *ptest = s_path(o->out, ".test");
    if (!ptrain || !ptest || s_ctr_init(&m, o) || s_ctr_calibrate(&m, o))
        goto done;
    if (s_ctr_split(&m, S_SPLIT_TRAIN, o->rows, ptrain, "train", &tr))
        goto done;
    if (s_ctr_split(&m, S_SPLIT_TEST, o->test_rows, ptest, "test", &te))
        goto done;

    s_text_add(&t, "# " S_PROG " " ZPS_VERSION " ground truth\n");
    s_text_add(&t, "task=ctr\n");
    s_text_add(&t, "seed=%llu\n", (unsigned long long)o->seed);
    s_text_add(&t, "rows=%llu\n", (unsigned long long)o->rows);
    s_text_add(&t, "test_rows=%llu\n", (unsigned long long)o->test_rows);
    s_text_add(&t, "features=%llu\n", (unsigned long long)o->features);
    s_text_add(&t, "informative=%llu\n", (unsigned long long)m.informative);
    s_text_add(&t, "nnz=%u\n", o->nnz);
    s_text_add(&t, "zipf=%g\n", o->zipf);
    s_text_add(&t, "interactions=%d\n", o->interactions);
    s_text_add(&t, "fm_k=%d\n", o->interactions ? S_FM_K : 0);
    s_text_add(&t, "noise=%g\n", o->noise);
    s_text_add(&t, "signal=%g\n", o->signal);
    s_text_add(&t, "fm_share=%g\n", o->interactions ? o->fm_share : 0.0);
    s_text_add(&t, "target_pos_rate=%g\n", o->pos_rate);
    s_text_add(&t, "sigma_w=%.6f\n", m.sigma_w);
    s_text_add(&t, "sigma_v=%.6f\n", sqrt(m.sigma_v2));
    s_text_add(&t, "bias=%.6f\n", m.b0);
    s_ctr_summary(&t, "test", &te);
    s_ctr_summary(&t, "train", &tr);
    if (t.oom) {
        fprintf(stderr, S_PROG ": out of memory\n");
        goto done;
    }
    if (s_write_truth(o, &t))
        goto done;
    rc = 0;
done:
    s_scores_free(&tr.sc);
    s_scores_free(&te.sc);
    s_ctr_free(&m);
    free(t.buf);
    free(ptrain);
    free(ptest);
    return rc;
}

static void s_mc_summary(s_text_t *t, const char *split, const s_mc_stats_t *st, uint32_t c,
                         double m_margin)
{
    double n = (double)(st->n ? st->n : 1);
    s_text_add(t, "%s_accuracy=%.6f\n", split, (double)st->agree / n);
    if (m_margin > 0)
        s_text_add(t, "%s_margin_accept_rate=%.6f\n", split, (double)st->n / (double)st->draws);
    s_text_add(t, "%s_class_freq=", split);
    for (uint32_t i = 0; i < c; i++)
        s_text_add(t, "%s%.4f", i ? "," : "", (double)st->freq[i] / n);
    s_text_add(t, "\n");
    double mx = 0, mn = 1;
    for (uint32_t i = 0; i < c; i++) {
        double f = (double)st->freq[i] / n;
        mx = f > mx ? f : mx;
        mn = f < mn ? f : mn;
    }
    s_text_add(t, "%s_class_freq_min=%.6f\n", split, mn);
    s_text_add(t, "%s_class_freq_max=%.6f\n", split, mx);
}

static int s_run_mc(const s_opts_t *o)
{
    s_mc_t m;
    memset(&m, 0, sizeof m);
    int rc = S_EXIT_IO;
    s_mc_stats_t tr = {0}, te = {0};
    s_text_t t = {0};
    char *ptrain = s_path(o->out, ".train"), *ptest = s_path(o->out, ".test");
    if (!ptrain || !ptest || s_mc_init(&m, o))
        goto done;
    if (s_mc_split(&m, S_SPLIT_TRAIN, o->rows, ptrain, "train", &tr))
        goto done;
    if (s_mc_split(&m, S_SPLIT_TEST, o->test_rows, ptest, "test", &te))
        goto done;
    s_text_add(&t, "# " S_PROG " " ZPS_VERSION " ground truth\n");
    s_text_add(&t, "task=multiclass\n");
    s_text_add(&t, "seed=%llu\n", (unsigned long long)o->seed);
    s_text_add(&t, "rows=%llu\n", (unsigned long long)o->rows);
    s_text_add(&t, "test_rows=%llu\n", (unsigned long long)o->test_rows);
    s_text_add(&t, "dim=%u\n", o->dim);
    s_text_add(&t, "classes=%u\n", o->classes);
    s_text_add(&t, "hidden=%u\n", o->hidden);
    s_text_add(&t, "margin=%g\n", o->margin);
    s_text_add(&t, "margin_abs=%.6f\n", m.margin);
    s_text_add(&t, "noise=%g\n", o->noise);
    s_text_add(&t, "expected_accuracy=%.6f\n", 1 - o->noise + o->noise / o->classes);
    s_mc_summary(&t, "test", &te, m.c, m.margin);
    s_mc_summary(&t, "train", &tr, m.c, m.margin);
    if (t.oom) {
        fprintf(stderr, S_PROG ": out of memory\n");
        goto done;
    }
    if (s_write_truth(o, &t))
        goto done;
    rc = 0;
done:
    free(tr.freq);
    free(te.freq);
    s_mc_free(&m);
    free(t.buf);
    free(ptrain);
    free(ptest);
    return rc;
}

int main(int argc, char **argv)
{
    s_opts_t o;
    int rc = s_parse_args(argc, argv, &o);
    if (rc > 0)
        return 0;
    if (rc < 0)
        return S_EXIT_USAGE;
    return o.task == S_TASK_CTR ? s_run_ctr(&o) : s_run_mc(&o);
}
