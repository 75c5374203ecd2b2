/* wk_model: loss, gradients and predictions of the models zps trains.
 *
 *   lr   sparse binary logistic regression: p = sigmoid(b + sum_i w_i x_i).
 *        Table rows: dim 1.  The bias is the row of ZPS_BIAS_KEY.
 *   fm   second-order factorization machine (Rendle 2010):
 *        y = b + sum_i w_i x_i + 1/2 sum_f [(sum_i v_if x_i)^2 - sum_i v_if^2 x_i^2].
 *        Table rows: [w | v_1..v_k], dim k+1 (column 0 starts at zero, the
 *        embedding is initialised randomly by the servers).
 *   mlp  dense multi-layer perceptron, ReLU hidden layers, softmax output.
 *        Its parameters form one flat vector (per layer: weights fan_in x
 *        fan_out row-major, then fan_out biases), cut into rows of
 *        ZPS_MLP_CHUNK floats stored under keys 0..nchunks-1.  The servers
 *        hold theta, which starts at 0; the weights are W = W0 + c_l theta.
 *        W0 is computed by every worker (and zps-predict) from the seed:
 *        He uniform, limit sqrt(6 / fan_in), for layers followed by a ReLU;
 *        Glorot uniform, limit sqrt(6 / (fan_in + fan_out)), for the softmax
 *        layer (Keras's default); biases 0; --init-scale multiplies the
 *        limits.  c_l = 1 for the adaptive optimizers (adam, the default,
 *        adagrad, ftrl): their steps are in weight units, as in Keras.
 *        c_l = sqrt(6 / fan_in) under sgd, whose steps scale with the
 *        gradient: the per-layer step is then lr * 6 / fan_in (wide layers
 *        take smaller steps).  Forward and backward use OpenBLAS sgemm.
 *        (Implemented in wk_mlp.c; these functions dispatch to it.)
 *
 * Gradients: sparse models push the SUM over the batch of per-example
 * gradients for each key (as sequential SGD would apply them, so rare
 * features are not drowned by the batch size); mlp pushes the MEAN over the
 * batch.  Losses are natural-log logloss (cross-entropy for mlp).
 *
 * Ownership: keys returned by wk_model_keys point into the model and are
 * valid until its next call with another batch. */
#ifndef WK_MODEL_H
#define WK_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "wk_data.h"
#include "zps_conf.h"

typedef struct wk_model wk_model_t;

/* From the job config (model, fm_dim, layers). NULL + err on bad config. */
wk_model_t *wk_model_new(const zps_conf_t *conf, char *err, size_t errlen);
void wk_model_destroy(wk_model_t **m);

uint32_t wk_model_dim(const wk_model_t *m);     /* floats per key on the servers */
/* Floats per key in a gradient (wk_model_step's g): dim, or 2 dim + 1 for
 * lr and fm with --optimizer norm: [g | q | x], q the per-column sums of the
 * squared per-row gradients, x the largest |x| of the key's feature in the
 * batch (1 for the bias). */
uint32_t wk_model_push_dim(const wk_model_t *m);
uint32_t wk_model_classes(const wk_model_t *m); /* 1 for binary models */

/* Sorted unique keys the batch needs (for mlp: all parameter chunks);
 * returns their count and sets *keys.  Also remembers, for the batch, where
 * each feature's key is, for step/predict on the same batch. */
size_t wk_model_keys(wk_model_t *m, const wk_batch_t *b, const uint64_t **keys);

/* Weights w (nkeys x dim, in wk_model_keys order) -> gradient g (nkeys x
 * push_dim, overwritten) for the batch last given to wk_model_keys.  Returns the summed
 * loss over the batch's rows. */
double wk_model_step(wk_model_t *m, const wk_batch_t *b, const float *w, float *g);

/* fm: while on, wk_model_step gives the embedding columns a zero gradient
 * (so every optimizer leaves them as they are) and trains the bias and the
 * linear weights only; wk_train turns it on for the first pass (docs/
 * architecture.md, "fm's first pass").  No effect on lr and mlp. */
void wk_model_fm_linear_only(wk_model_t *m, int on);

/* Predictions for the batch last given to wk_model_keys: out[i] is the
 * probability of class 1 (binary), or of the predicted class (mlp) with
 * cls[i] the predicted class (cls may be NULL).  Returns the summed loss. */
double wk_model_predict(wk_model_t *m, const wk_batch_t *b, const float *w, float *out,
                        uint32_t *cls);

/* mlp: the initial weights w0 (nparams floats; see "mlp" above), NULL for
 * the sparse models. */
const float *wk_model_mlp_init(const wk_model_t *m, size_t *nparams);

/* mlp: rows so far left out of step's loss and gradient because their label
 * was not a class index in [0, classes) (always 0 for binary models). */
uint64_t wk_model_bad_labels(const wk_model_t *m);

#endif
