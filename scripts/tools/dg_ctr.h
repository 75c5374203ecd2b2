/* dg_ctr: zps-datagen's ctr task -- sparse binary classification shaped
 * like click-through data, with a known logistic (or FM) truth.
 *
 * A row draws Zipf-popular ranks until it holds K distinct ones (dg_zipf;
 * duplicates are redrawn in an open-addressing set, and after 64K+1000
 * draws -- only for extreme A with K close to F -- the row is completed
 * with the smallest unused ranks), maps them to ids with the seed-keyed
 * permutation and writes the ids sorted, each with value 1.  Each id has
 * hash-derived unit normals: a weight g_w and, with --interactions, an
 * embedding g_v in R^4 (S_FM_K); the first 2^18 ranks (S_CACHE_RANKS) keep
 * theirs in a table, the rest compute them per use.  The logit is
 *     z(x) = b0 + sigma_w * sum_i g_w(i) + sigma_v^2 * sum_{i<j} <g_v(i), g_v(j)>,
 * the pairwise sum in O(4K) by the FM identity.  Calibration (20000 rows
 * of a stream of their own) sets sigma_w and sigma_v from --signal and
 * --fm-share unless given, then b0 by bisection so that the mean of
 * sigmoid(z) is --pos-rate.  Labels are Bernoulli(sigmoid(z)), flipped
 * with probability --noise; the truth metrics score the Bayes-optimal
 * q = p(1-P) + (1-p)P against them (see datagen_main.c for the whole
 * description). */
#ifndef DG_CTR_H
#define DG_CTR_H

#include "dg_opts.h"

/* Writes PREFIX.train, PREFIX.test and PREFIX.truth for o (task ctr);
 * 0, or DG_EXIT_IO after a message. */
int dg_ctr_run(const dg_opts_t *o);

#endif
