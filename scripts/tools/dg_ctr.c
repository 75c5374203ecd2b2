/* dg_ctr: the ctr task (see dg_ctr.h). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dg_ctr.h"
#include "dg_num.h"
#include "dg_out.h"
#include "dg_truth.h"
#include "dg_zipf.h"
#include "zps_hash.h"
#include "zps_rng.h"
#include "zps_sort.h"

#define S_FM_K 4          /* hidden embedding width of the ctr interactions */
#define S_CACHE_RANKS (1u << 18)

/* Domain-separation constants of the parameters' hash keys. */
#define S_KEY_W0 0xbb67ae8584caa73bULL
#define S_KEY_W1 0x3c6ef372fe94f82bULL
#define S_KEY_V0 0xa54ff53a5f1d36f1ULL
#define S_KEY_V1 0x510e527fade682d1ULL

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
    dg_zipf_t zipf;
    dg_perm_t perm;
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
    dg_gauss_pair(zps_mix64(id, m->key_w0), zps_mix64(id, m->key_w1), &g0, &g1);
    *w = g0;
    if (v) {
        dg_gauss_pair(zps_mix64(id, m->key_v0), zps_mix64(id, m->key_v1), &g2, &g3);
        v[0] = g1;
        v[1] = g2;
        v[2] = g3;
        dg_gauss_pair(zps_mix64(id, m->key_v0 ^ m->key_w1), zps_mix64(id, m->key_v1 ^ m->key_w0),
                     &g2, &g3);
        v[3] = g2;
    }
}

static int s_ctr_init(s_ctr_t *m, const dg_opts_t *o)
{
    memset(m, 0, sizeof *m);
    m->f = o->features;
    m->k = o->nnz;
    m->inter = o->interactions;
    m->noise = o->noise;
    m->informative = o->informative && o->informative < o->features ? o->informative : o->features;
    dg_zipf_init(&m->zipf, o->features, o->zipf);
    dg_perm_init(&m->perm, o->features, o->seed);
    m->key_rows = zps_mix64(o->seed, DG_KEY_ROWS);
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
        fprintf(stderr, DG_PROG ": out of memory\n");
        return -1;
    }
    for (uint64_t r = 0; r < m->ncache; r++) {
        uint64_t id = dg_perm_apply(&m->perm, r);
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
        fprintf(stderr, DG_PROG ": out of memory\n");
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
        uint64_t rank = dg_zipf_sample(&m->zipf, rng);
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
            r->ids[i] = dg_perm_apply(&m->perm, rank - 1);
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
    dg_truth_scores_t sc;
} s_ctr_stats_t;

/* Generates one row: features into r, returns the label; *qout gets the
 * Bayes-optimal P(y=1). */
static int s_ctr_row(const s_ctr_t *m, uint32_t split, uint64_t idx, s_ctr_row_t *r,
                     double *qout, double *q0out)
{
    uint64_t rng = dg_row_rng(m->key_rows, split, idx);
    s_ctr_draw(m, &rng, r);
    double z = m->b0 + m->sigma_w * r->lin + m->sigma_v2 * r->pair;
    double p = dg_sigmoid(z), pn = dg_sigmoid(-z);
    int y = zps_rng_uniform(&rng) < p;
    if (zps_rng_uniform(&rng) < m->noise)
        y = !y;
    /* q = p(1-P) + (1-p)P, written so that P = 0.5 gives exactly 0.5 */
    *qout = m->noise + (1 - 2 * m->noise) * p;
    *q0out = m->noise + (1 - 2 * m->noise) * pn;
    return y;
}

/* Chooses sigma_w, sigma_v and b0 on the calibration stream. */
static int s_ctr_calibrate(s_ctr_t *m, const dg_opts_t *o)
{
    uint64_t n = DG_CALIB_ROWS;
    double *lin = malloc(n * sizeof *lin), *pair = malloc(n * sizeof *pair);
    s_ctr_row_t r;
    if (!lin || !pair || s_ctr_row_init(&r, m->k)) {
        free(lin);
        free(pair);
        fprintf(stderr, DG_PROG ": out of memory\n");
        return -1;
    }
    double ml = 0, mp = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t rng = dg_row_rng(m->key_rows, DG_SPLIT_CALIB, i);
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
            mean += dg_sigmoid(mid + m->sigma_w * lin[i] + m->sigma_v2 * pair[i]);
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
    dg_out_t out;
    s_ctr_row_t r;
    size_t maxline = (size_t)m->k * 23 + 8;
    size_t cap = DG_OUTBUF > 2 * maxline ? DG_OUTBUF : 2 * maxline;
    memset(st, 0, sizeof *st);
    if (dg_truth_scores_init(&st->sc, rows))
        return -1;
    if (s_ctr_row_init(&r, m->k))
        return -1;
    if (dg_out_open(&out, path, cap)) {
        s_ctr_row_free(&r);
        return -1;
    }
    dg_progress_t pr;
    dg_progress_start(&pr, what, rows);
    for (uint64_t i = 0; i < rows; i++) {
        double q, q0;
        int y = s_ctr_row(m, split, i, &r, &q, &q0);
        if (dg_out_reserve(&out, maxline))
            break;
        char *p = out.buf + out.len;
        *p++ = (char)('0' + y);
        for (uint32_t j = 0; j < m->k; j++) {
            *p++ = ' ';
            p += dg_fmt_u64(p, r.ids[j]);
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
        dg_truth_scores_add(&st->sc, q, y);
        if ((i & 0xfff) == 0xfff)
            dg_progress_tick(&pr, i + 1);
    }
    dg_progress_end(&pr, st->n);
    s_ctr_row_free(&r);
    return dg_out_close(&out);
}
/* ---- the task ------------------------------------------------------------------ */

static void s_ctr_summary(dg_truth_t *t, const char *split, s_ctr_stats_t *st)
{
    char key[64];
    double n = (double)(st->n ? st->n : 1);
    snprintf(key, sizeof key, "%s_logloss", split);
    dg_truth_metric(t, key, st->logloss_sum / n);
    snprintf(key, sizeof key, "%s_auc", split);
    dg_truth_metric(t, key, dg_truth_scores_auc(&st->sc));
    snprintf(key, sizeof key, "%s_accuracy", split);
    dg_truth_metric(t, key, st->correct / n);
    snprintf(key, sizeof key, "%s_pos_rate", split);
    dg_truth_metric(t, key, st->pos / n);
    snprintf(key, sizeof key, "%s_mean_prob", split);
    dg_truth_metric(t, key, st->qsum / n);
}

int dg_ctr_run(const dg_opts_t *o)
{
    s_ctr_t m;
    memset(&m, 0, sizeof m);
    int rc = DG_EXIT_IO;
    s_ctr_stats_t tr, te;
    memset(&tr, 0, sizeof tr);
    memset(&te, 0, sizeof te);
    dg_truth_t t = {0};
    char *ptrain = dg_path(o->out, ".train"), *ptest = dg_path(o->out, ".test");
    if (!ptrain || !ptest || s_ctr_init(&m, o) || s_ctr_calibrate(&m, o))
        goto done;
    if (s_ctr_split(&m, DG_SPLIT_TRAIN, o->rows, ptrain, "train", &tr))
        goto done;
    if (s_ctr_split(&m, DG_SPLIT_TEST, o->test_rows, ptest, "test", &te))
        goto done;

    dg_truth_add(&t, "# " DG_PROG " " ZPS_VERSION " ground truth\n");
    dg_truth_add(&t, "task=ctr\n");
    dg_truth_add(&t, "seed=%llu\n", (unsigned long long)o->seed);
    dg_truth_add(&t, "rows=%llu\n", (unsigned long long)o->rows);
    dg_truth_add(&t, "test_rows=%llu\n", (unsigned long long)o->test_rows);
    dg_truth_add(&t, "features=%llu\n", (unsigned long long)o->features);
    dg_truth_add(&t, "informative=%llu\n", (unsigned long long)m.informative);
    dg_truth_add(&t, "nnz=%u\n", o->nnz);
    dg_truth_add(&t, "zipf=%g\n", o->zipf);
    dg_truth_add(&t, "interactions=%d\n", o->interactions);
    dg_truth_add(&t, "fm_k=%d\n", o->interactions ? S_FM_K : 0);
    dg_truth_add(&t, "noise=%g\n", o->noise);
    dg_truth_add(&t, "signal=%g\n", o->signal);
    dg_truth_add(&t, "fm_share=%g\n", o->interactions ? o->fm_share : 0.0);
    dg_truth_add(&t, "target_pos_rate=%g\n", o->pos_rate);
    dg_truth_add(&t, "sigma_w=%.6f\n", m.sigma_w);
    dg_truth_add(&t, "sigma_v=%.6f\n", sqrt(m.sigma_v2));
    dg_truth_add(&t, "bias=%.6f\n", m.b0);
    s_ctr_summary(&t, "test", &te);
    s_ctr_summary(&t, "train", &tr);
    if (t.oom) {
        fprintf(stderr, DG_PROG ": out of memory\n");
        goto done;
    }
    if (dg_truth_write(o->out, &t))
        goto done;
    rc = 0;
done:
    dg_truth_scores_free(&tr.sc);
    dg_truth_scores_free(&te.sc);
    s_ctr_free(&m);
    free(t.buf);
    free(ptrain);
    free(ptest);
    return rc;
}
