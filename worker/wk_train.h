/* wk_train: the worker's training loop.
 *
 * Per minibatch: read rows, find the unique keys, pull their weights,
 * compute loss and gradients, push the gradients.  Two batch slots are
 * double-buffered so the pull for batch i+1 is in flight while batch i is
 * computed, and up to --max-delay pushes may wait for their acknowledgement
 * (the bounded delay of the OSDI'14 parameter server, per worker).  Under
 * async no worker ever waits for another; under ssp:N and bsp pulls wait
 * for the slowest worker (ps_clock on the servers).
 *
 * Every --progress-every seconds a progress line: examples/s, running train
 * loss, holdout loss (--epochs auto), keys pulled/pushed, MB sent/received,
 * push bytes per key and compression ratio, retained MB, epoch and ETA.  At the end of
 * every epoch worker 0 scores the --test file (logloss, AUC, accuracy).
 *
 * Ownership: the trainer keeps pointers to conf and log (not owned). */
#ifndef WK_TRAIN_H
#define WK_TRAIN_H

#include <signal.h>
#include <stddef.h>

#include "zps_conf.h"
#include "zps_log.h"

typedef struct wk_trainer wk_trainer_t;

typedef struct {
    double logloss, auc, accuracy;
    double spread;   /* binary: mean |p - 0.5| of the predictions */
    uint64_t rows;
} wk_eval_t;

wk_trainer_t *wk_trainer_new(const zps_conf_t *conf, zps_log_t *log, char *err, size_t errlen);
void wk_trainer_destroy(wk_trainer_t **t);

/* Train all epochs.  0, or a ZPS_E* code (the reason has been logged). */
int wk_trainer_run(wk_trainer_t *t, volatile sig_atomic_t *stop);

/* Metrics: the trainer updates p (not owned; NULL: none) from
 * its loop.  Call before wk_trainer_run. */
struct wk_prom;
void wk_trainer_set_prom(wk_trainer_t *t, struct wk_prom *p);

/* Metrics of the last test evaluation (rows == 0 if none). */
const wk_eval_t *wk_trainer_last_eval(const wk_trainer_t *t);

#endif
