/* wk_mlp: the mlp of wk_model (ReLU hidden layers, softmax output, OpenBLAS
 * sgemm), kept apart from the sparse models.  wk_model_* dispatches to it
 * for --model mlp; nothing else should call it (the public API is
 * wk_model.h, whose opening comment describes the model: theta on the
 * servers, W = W0 + c_l theta, W0 from the seed).
 *
 * Parameters form one flat vector (per layer: weights fan_in x fan_out
 * row-major, then fan_out biases) cut into rows of ZPS_MLP_CHUNK floats
 * under keys 0..nkeys-1; every batch pulls and pushes all of them.
 *
 * Ownership: the key list and w0 belong to the mlp. */
#ifndef WK_MLP_H
#define WK_MLP_H

#include <stddef.h>
#include <stdint.h>

#include "wk_data.h"
#include "zps_conf.h"

typedef struct wk_mlp wk_mlp_t;

/* From conf->layers, init_scale, seed and optimizer.  NULL + err on a bad
 * configuration or out of memory (the messages wk_model_new gives). */
wk_mlp_t *wk_mlp_new(const zps_conf_t *conf, char *err, size_t errlen);
void wk_mlp_destroy(wk_mlp_t **m);

uint32_t wk_mlp_classes(const wk_mlp_t *m);
/* The parameter chunks' keys 0..n-1 (n returned). */
size_t wk_mlp_keys(const wk_mlp_t *m, const uint64_t **keys);
/* The initial weights w0 (*nparams floats). */
const float *wk_mlp_init(const wk_mlp_t *m, size_t *nparams);
/* Rows left out of step because their label is not a class index. */
uint64_t wk_mlp_bad_labels(const wk_mlp_t *m);

/* theta: the pulled chunks (nkeys x ZPS_MLP_CHUNK floats) -> g, the mean
 * gradient in the same layout (g must be zeroed by the caller).  Returns
 * the summed cross-entropy of the rows with valid labels (0 when there
 * are none), NAN when scratch memory cannot be had. */
double wk_mlp_step(wk_mlp_t *m, const wk_batch_t *b, const float *theta, float *g);

/* out[i] = probability of the predicted class cls[i] (cls may be NULL).
 * Returns the summed cross-entropy of rows with valid labels, or NAN. */
double wk_mlp_predict(wk_mlp_t *m, const wk_batch_t *b, const float *theta, float *out,
                      uint32_t *cls);

#endif
