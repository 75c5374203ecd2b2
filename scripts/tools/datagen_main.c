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
 * into a large buffer handed to the atomic writer.  The truth AUC keeps 8 bytes
 * per row of each split in memory (up to 16 while sorting).
 *
 * Modules (scripts/tools/, prefix dg_): dg_opts the command line, dg_ctr
 * and dg_mc the two tasks (model, calibration, rows, truth), dg_zipf the
 * Zipf sampler and the rank -> id permutation, dg_truth the truth file
 * and the exact AUC, dg_out the atomic output files, the integer formatter
 * and progress, dg_num the shared constants, streams and normals.  This
 * file only dispatches. */
#include "dg_ctr.h"
#include "dg_mc.h"
#include "dg_num.h"
#include "dg_opts.h"

int main(int argc, char **argv)
{
    dg_opts_t o;
    int rc = dg_opts_parse(argc, argv, &o);
    if (rc > 0)
        return 0;
    if (rc < 0)
        return DG_EXIT_USAGE;
    return o.task == DG_TASK_CTR ? dg_ctr_run(&o) : dg_mc_run(&o);
}
