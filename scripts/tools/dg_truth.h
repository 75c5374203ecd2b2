/* dg_truth: the truth file of zps-datagen and the exact AUC it reports.
 *
 * The truth is a list of key=value lines: the generating parameters and
 * the metrics that the generating model itself scores on the written data,
 * so a learner can be judged against the best achievable result instead of
 * against a guess.  Lines are collected in memory (dg_truth_add, printf
 * formats in the C locale; a metric that is undefined prints as "nan"),
 * then written to PREFIX.truth through the atomic writer and, once that
 * file is committed, printed on stdout.
 *
 * AUC.  The truth scores of one split are kept as order-preserving keys
 * (zps_sort_key_f64): the positives' from the front of key[], the
 * negatives' from the back, so one array of the split's row count holds
 * both: 8 bytes per row (up to 16 while sorting).  The AUC is exact (all
 * scores sorted, ties count 1/2), computed by wk_metrics_auc_keys. */
#ifndef DG_TRUTH_H
#define DG_TRUTH_H

#include <stddef.h>
#include <stdint.h>

#include "zps_sort.h"

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;   /* a line was lost: the caller reports out of memory */
} dg_truth_t;

/* Appends a formatted line (or part of one) to t. */
void dg_truth_add(dg_truth_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends "key=%.6f", or "key=nan" when v is undefined. */
void dg_truth_metric(dg_truth_t *t, const char *key, double v);

/* Writes t to PREFIX.truth (atomically) and then to stdout; 0, or -1 after
 * a message on stderr. */
int dg_truth_write(const char *prefix, const dg_truth_t *t);

/* ---- exact AUC ---------------------------------------------------------------- */

typedef struct {
    uint64_t *key;
    uint64_t npos, nneg, cap;
} dg_truth_scores_t;

/* Room for cap scores; 0, or -1 after a message. */
int dg_truth_scores_init(dg_truth_scores_t *sc, uint64_t cap);

static inline void dg_truth_scores_add(dg_truth_scores_t *sc, double score, int label)
{
    if (score <= 0)
        score = 0; /* also maps -0 to +0 */
    const uint64_t k = zps_sort_key_f64(score);
    if (label)
        sc->key[sc->npos++] = k;
    else
        sc->key[sc->cap - ++sc->nneg] = k;
}

void dg_truth_scores_free(dg_truth_scores_t *sc);

/* AUC = P(score of a random positive > that of a random negative), ties 1/2.
 * Returns NAN when one of the classes is absent or memory runs out. */
double dg_truth_scores_auc(dg_truth_scores_t *sc);

#endif
