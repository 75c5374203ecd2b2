/* dg_mc: zps-datagen's multiclass task -- dense multi-class data for an
 * MLP, labelled by a fixed random teacher network.
 *
 * x ~ N(0,1)^D and the label is the argmax over C classes of a teacher
 * D -> H ReLU -> C (W1 ~ N(0,1/D), b1 ~ N(0,0.25), W2 ~ N(0,1/H), all
 * hash-seeded); the output biases b2 are calibrated on a separate sample
 * (a damped step against each class's excess frequency) so that the
 * classes are about equally frequent.  With --margin, x is redrawn from
 * the row's stream until the top two logits differ by at least that many
 * logit standard deviations.  The teacher is applied to the values as
 * printed (%.6g, read back with strtod), so the label is a function of the
 * file's text; --noise replaces a label, with that probability, by a
 * uniformly random class.  The truth reports the teacher's accuracy
 * against the written labels, the margin acceptance rate and the class
 * frequencies (see datagen_main.c for the whole description). */
#ifndef DG_MC_H
#define DG_MC_H

#include "dg_opts.h"

/* Writes PREFIX.train, PREFIX.test and PREFIX.truth for o (task
 * multiclass); 0, or DG_EXIT_IO after a message. */
int dg_mc_run(const dg_opts_t *o);

#endif
