/* predict_export: zps-predict --export, a saved model as text.
 *
 * Format (one file, '#' lines first):
 *
 *   # zps model export 1
 *   # model lr dim 1 keys 12345 shards 2 format 2
 *   # table optimizer=norm ...          (the manifest's table line)
 *   # options --model lr ...            (the manifest's training options)
 *   # bias key 18446744073709551615
 *   # columns: key w                    (fm: key w v1 .. vk; mlp: key theta1 ..)
 *   KEY W [V1 ... Vk]
 *
 * one line per stored key in increasing key order, the key in decimal and
 * the dim floats of its row as "%.9g" (which reads back to the same float).
 * lr: p = sigmoid(w[bias] + sum_i w[i] x_i) over the row's features (with
 * --hash-bits the keys are the hashed ids).  fm: w then the k embedding
 * columns.  mlp: the row is a ZPS_MLP_CHUNK-float chunk of theta, the
 * servers' offset from the seeded initial weights (wk_model.h), not the
 * weights themselves.  kv (a raw --table-dim table): the row as stored. */
#ifndef PREDICT_EXPORT_H
#define PREDICT_EXPORT_H

#include <stdio.h>

#include "zps_modelfile.h"
#include "zps_table.h"

/* Writes table t (loaded from the model dir described by mf) to out.
 * 0, or ZPS_ENOMEM / ZPS_EIO. */
int predict_export(FILE *out, const zps_mf_manifest_t *mf, zps_table_t *t);

#endif
