/* wk_eval: scoring with the current weights, and the step-size diagnostics
 * that read the scores.
 *
 * A scorer pulls the weights of a batch synchronously and predicts with a
 * model it borrows (the trainer lends the model of its first batch slot,
 * idle between passes): the --test file (worker 0, at the end of every
 * pass, writing --test-predictions at the last) and the --epochs auto
 * holdout.  Both read 1000 rows at a time.
 *
 * Diagnostics (binary models; each said once, as a warning naming --lr,
 * its value and the default), with h the logloss of always predicting the
 * label rate:
 *   too large: holdout (or test) loss > 1.5 h, or without either the train
 *              loss > 1.5 h of the train rows (a constant does much
 *              better: the weights overshoot);
 *   too small: the logloss is still >= h while the model ranks (AUC >=
 *              0.7), or ranks a little (AUC >= 0.55) with timid
 *              predictions (mean |p - 0.5| < 0.1: the bias is not even
 *              learnt).  (--epochs auto also says it when the 30th pass is
 *              still improving: wk_train.)
 *
 * Ownership: the scorer keeps pointers to model, client and log (not
 * owned); the caller keeps them alive while it lives. */
#ifndef WK_EVAL_H
#define WK_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "wk_client.h"
#include "wk_data.h"
#include "wk_model.h"
#include "wk_train.h"
#include "zps_log.h"

typedef struct wk_scorer wk_scorer_t;

wk_scorer_t *wk_scorer_new(wk_model_t *model, wk_client_t *client, zps_log_t *log);
void wk_scorer_destroy(wk_scorer_t **s);

/* Scores the data dc describes (the --test file) into *ev (left alone on
 * error); with predictions != NULL also writes one line per row to that
 * file through the atomic writer: the predicted class (classes > 1) or the
 * probability of label 1 ("%.9g").  0, or a ZPS_E* code (logged). */
int wk_scorer_test(wk_scorer_t *s, const wk_data_conf_t *dc, const char *predictions,
                   wk_eval_t *ev);

/* Scores the rows of b (the holdout) into *ev and their rate of label 1
 * into *pos_rate.  0, or a ZPS_E* code (logged). */
int wk_scorer_rows(wk_scorer_t *s, const wk_batch_t *b, wk_eval_t *ev, double *pos_rate);

/* Logloss of always predicting the rate q of label 1 (0 unless 0 < q < 1). */
double wk_diag_rate_loss(double q);

enum { WK_DIAG_LARGE = 1, WK_DIAG_SMALL = 2 };

/* The diagnostics' verdict (WK_DIAG_* bits) after a pass, binary models:
 * train is the pass's mean train loss and q_train its rate of label 1; ev
 * and q the holdout's (or the test set's) metrics and label rate (NULL /
 * NAN if none). */
int wk_diag_verdict(double train, double q_train, const wk_eval_t *ev, double q);

typedef struct {
    int warned_small, warned_large;
} wk_diag_t;

/* Logs the verdict's warnings not yet given (too small only if too large
 * has never been said).  pass is 0-based; lr the step size, def the
 * optimizer's default.  Nothing for classes > 1. */
void wk_diagnose(wk_diag_t *d, zps_log_t *log, uint32_t classes, uint32_t pass, double train,
                 double q_train, const wk_eval_t *ev, double q, double lr, double def);

#endif
