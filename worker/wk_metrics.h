/* wk_metrics: evaluation metrics accumulated over predictions.
 *
 * An accumulator for a binary model (classes = 1: a score is P(y = 1), a
 * label is 0 or 1, positive iff > 0.5) or a multi-class one (classes >= 2:
 * a label is a class index 0..classes-1).  It reports
 *   count      examples added (multi-class rows with an invalid label are
 *              rejected and not counted),
 *   logloss    mean natural-log loss,
 *   accuracy   binary: (score >= 0.5) == label; multi-class: argmax == label,
 *   auc        exact ROC AUC (Mann-Whitney: ties count 1/2), for classes <= 2
 *              (with 2 classes the score is P(class 1)).  The scores are
 *              kept, 8 bytes each, and sorted when auc is asked.
 * Results are NAN when undefined (no examples; auc without both a positive
 * and a negative, or with classes > 2). */
#ifndef WK_METRICS_H
#define WK_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct wk_metrics wk_metrics_t;

/* classes: 1 = binary, >= 2 = multi-class (as wk_model_classes). NULL on
 * classes == 0 or out of memory. */
wk_metrics_t *wk_metrics_new(uint32_t classes);
void wk_metrics_destroy(wk_metrics_t **m);
void wk_metrics_reset(wk_metrics_t *m);

/* Binary: one example with probability p of class 1.  Its logloss uses p
 * clipped to [1e-15, 1 - 1e-15].  0, ZPS_EINVAL (NaN p or label, or not a
 * binary accumulator) or ZPS_ENOMEM. */
int wk_metrics_add(wk_metrics_t *m, float p, float label);

/* Multi-class (also works with classes = 1, probs = {P(y=1)}): probs holds
 * the probability of each class.  Logloss = -log(max(probs[label], 1e-15)).
 * ZPS_EINVAL if label is not a class index. */
int wk_metrics_add_probs(wk_metrics_t *m, const float *probs, float label);

/* A batch as wk_model_predict returns it: n labels, out[i] (binary: P(y=1);
 * multi-class: probability of the predicted class cls[i], cls required) and
 * the summed loss, which is taken as the batch's logloss (so it is the
 * model's exact value, computed from the logits).  Multi-class rows with an
 * invalid label are skipped, as wk_model leaves them out of its loss. */
int wk_metrics_add_preds(wk_metrics_t *m, size_t n, const float *labels, const float *out,
                         const uint32_t *cls, double loss_sum);

uint64_t wk_metrics_count(const wk_metrics_t *m);
double wk_metrics_logloss(const wk_metrics_t *m);
double wk_metrics_accuracy(const wk_metrics_t *m);
/* Sorts the stored scores (hence not const); O(n), a radix sort (zps_sort)
 * with 8 bytes a score of scratch (NAN if that cannot be allocated). */
double wk_metrics_auc(wk_metrics_t *m);

/* The exact AUC itself, for callers that keep their own scores (zps-datagen):
 * pos[0..npos) and neg[0..nneg) hold the scores of the positives and of the
 * negatives as zps_sort_key_f64 keys; both arrays are sorted in place.
 * P(score of a random positive > that of a random negative), ties count
 * 1/2.  NAN when a class is empty or the scratch cannot be allocated. */
double wk_metrics_auc_keys(uint64_t *pos, size_t npos, uint64_t *neg, size_t nneg);

#endif
