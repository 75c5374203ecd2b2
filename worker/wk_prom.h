/* wk_prom: a worker's Prometheus metrics (--metrics-listen).
 *
 * worker_main makes the exporter from the option and hands it to the
 * trainer (wk_trainer_set_prom); the trainer calls wk_prom_tick from its
 * loop with what it already counts (wk_report's tally, the epoch, the
 * losses) and the client, whose traffic and retry counters are read here.
 * At most every 100 ms (unless forced) the values are copied into a
 * zps_prom registry and the rendered text is published to
 * zps_metrics_http, which serves it from its own thread.
 *
 * Ownership: the caller owns the exporter; a tick reads the client, keeps
 * nothing of it. */
#ifndef WK_PROM_H
#define WK_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "wk_client.h"

typedef struct wk_prom wk_prom_t;

/* What the trainer knows at a tick. */
typedef struct {
    uint64_t examples;     /* rows trained on, all epochs */
    double loss_sum;       /* their summed train loss */
    uint64_t batches;      /* batches read (one pull and one push each) */
    uint64_t keys_pulled, keys_pushed;
    uint32_t epoch;        /* 1-based, the one being trained */
    uint32_t epochs;       /* --epochs N; 0 with --epochs auto */
    double epoch_done;     /* fraction of this epoch read, 0..1 */
    double progress;       /* fraction of the job done (auto: of this pass) */
    double holdout_loss;   /* NAN: none yet */
    double test_loss;      /* last --test logloss (worker 0), NAN: none */
    double test_auc;       /* NAN: none (or multiclass) */
    uint64_t clock;        /* ssp/bsp: clock of the newest batch (0 under async) */
    wk_client_t *client;   /* NULL: no traffic counters */
} wk_prom_sample_t;

/* Serves on spec (ADDR:PORT or :PORT, see zps_metrics_http.h) for worker
 * rank.  NULL with the reason in err. */
wk_prom_t *wk_prom_new(const char *spec, uint32_t rank, char *err, size_t errlen);
void wk_prom_destroy(wk_prom_t **p);

/* ADDR:PORT actually bound. */
const char *wk_prom_address(const wk_prom_t *p);

/* Copies x in and publishes, at most every 100 ms unless force.  The
 * examples/s gauge is the rate over the last second or more. */
void wk_prom_tick(wk_prom_t *p, const wk_prom_sample_t *x, int force);

#endif
