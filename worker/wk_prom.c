/* wk_prom: see wk_prom.h.
 *
 * DESIGN
 * The same split as the server's (ps_srv_prom.c): counters the worker
 * already keeps are copied into a registry, nothing is counted twice, and
 * the HTTP side serves a published snapshot (zps_metrics_http), so a worker
 * blocked in a long step (scoring the test set, waiting for the slowest
 * worker under bsp) still answers scrapes with its last values.  Two gauges
 * are computed here over a window of at least one second: examples/s and
 * the mean train loss of the window's examples (what the progress line
 * shows, at a finer grain); Prometheus's rate() of zps_worker_examples_total
 * gives the same rate over any window. */
#include "wk_prom.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "zps_metrics_http.h"
#include "zps_prom.h"
#include "zps_time.h"

#define WK_PROM_EVERY_MS 100
#define WK_PROM_WINDOW_S 1.0

struct wk_prom {
    zps_prom_t *reg;
    zps_metrics_http_t *http;
    int64_t last_ms;
    double t0;                       /* start of the rate window */
    uint64_t ex0;
    double loss0;
    zps_prom_series_t *start, *examples, *rate, *loss, *ho, *test_loss, *test_auc, *epoch,
        *epochs, *epoch_done, *progress, *batches, *keys_pulled, *keys_pushed, *sent, *recv,
        *acked, *retried, *pull_retried, *restarts, *retained, *scrapes, *clock;
};

#define C ZPS_PROM_COUNTER
#define G ZPS_PROM_GAUGE

wk_prom_t *wk_prom_new(const char *spec, uint32_t rank, char *err, size_t errlen)
{
    wk_prom_t *p = calloc(1, sizeof *p);
    if (!p || !(p->reg = zps_prom_new())) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    zps_prom_t *r = p->reg;
    char rk[16];
    snprintf(rk, sizeof rk, "%u", rank);
    const char *il[] = {"role", "worker", "rank", rk, "version", ZPS_VERSION, NULL};
    zps_prom_set(zps_prom_series(zps_prom_family(r, G, "zps_info", "Role, rank and version of "
                                                 "this process (always 1).", 0, NULL), il), 1);
    p->start = zps_prom_scalar(r, G, "zps_start_time_seconds", "When this process started, "
                               "seconds since the Unix epoch.");
    p->examples = zps_prom_scalar(r, C, "zps_worker_examples_total", "Examples trained on.");
    p->rate = zps_prom_scalar(r, G, "zps_worker_examples_per_second", "Examples trained per "
                              "second over the last second or more.");
    p->loss = zps_prom_scalar(r, G, "zps_worker_train_loss", "Mean train loss of the examples "
                              "of the last second or more.");
    p->ho = zps_prom_scalar(r, G, "zps_worker_holdout_loss", "Logloss on the held-out rows "
                            "after the last pass (--epochs auto; NaN before).");
    p->test_loss = zps_prom_scalar(r, G, "zps_worker_test_loss", "Logloss on --test after the "
                                   "last epoch (worker 0; NaN before).");
    p->test_auc = zps_prom_scalar(r, G, "zps_worker_test_auc", "AUC on --test after the last "
                                  "epoch (worker 0, binary; NaN before).");
    p->epoch = zps_prom_scalar(r, G, "zps_worker_epoch", "Epoch being trained (1-based).");
    p->epochs = zps_prom_scalar(r, G, "zps_worker_epochs", "Epochs asked for (0: --epochs auto).");
    p->epoch_done = zps_prom_scalar(r, G, "zps_worker_epoch_progress_ratio", "Fraction of this "
                                    "epoch's data read.");
    p->progress = zps_prom_scalar(r, G, "zps_worker_progress_ratio", "Fraction of the job "
                                  "done (--epochs auto: of this pass).");
    p->batches = zps_prom_scalar(r, C, "zps_worker_batches_total", "Minibatches trained (one "
                                 "pull and one push each).");
    p->keys_pulled = zps_prom_scalar(r, C, "zps_worker_keys_pulled_total", "Keys pulled.");
    p->keys_pushed = zps_prom_scalar(r, C, "zps_worker_keys_pushed_total", "Keys pushed.");
    p->sent = zps_prom_scalar(r, C, "zps_worker_sent_bytes_total", "Bytes sent to the servers.");
    p->recv = zps_prom_scalar(r, C, "zps_worker_received_bytes_total", "Bytes received from "
                              "the servers.");
    p->acked = zps_prom_scalar(r, C, "zps_worker_pushes_acked_total", "Push sub-requests (one "
                               "per server) acknowledged.");
    p->retried = zps_prom_scalar(r, C, "zps_worker_push_retries_total", "Push sends repeated "
                                 "because an answer was overdue.");
    p->pull_retried = zps_prom_scalar(r, C, "zps_worker_pull_retries_total", "Pull sends "
                                      "repeated.");
    p->restarts = zps_prom_scalar(r, C, "zps_worker_server_restarts_total", "Server restarts "
                                  "seen.");
    p->retained = zps_prom_scalar(r, G, "zps_worker_retained_bytes", "Push bytes held until a "
                                  "server's checkpoint covers them.");
    p->clock = zps_prom_scalar(r, G, "zps_worker_clock", "Clock of the newest batch (ssp/bsp; "
                               "0 under async); the servers' zps_worker_lag_clocks compares "
                               "workers at one instant.");
    p->scrapes = zps_prom_scalar(r, C, "zps_metrics_requests_total", "HTTP requests to this "
                                 "metrics endpoint.");
    zps_prom_set(p->start, (double)time(NULL));
    zps_prom_set(p->loss, NAN);
    zps_prom_set(p->ho, NAN);
    zps_prom_set(p->test_loss, NAN);
    zps_prom_set(p->test_auc, NAN);
    p->t0 = zps_now_s();
    p->http = zps_metrics_http_new(spec, err, errlen);
    if (!p->http) {
        wk_prom_destroy(&p);
        return NULL;
    }
    size_t len;
    char *text = zps_prom_render(p->reg, &len);
    zps_metrics_http_publish(p->http, text, len);
    return p;
}

void wk_prom_destroy(wk_prom_t **pp)
{
    if (!pp || !*pp)
        return;
    wk_prom_t *p = *pp;
    zps_metrics_http_destroy(&p->http);
    zps_prom_destroy(&p->reg);
    free(p);
    *pp = NULL;
}

const char *wk_prom_address(const wk_prom_t *p) { return zps_metrics_http_address(p->http); }

void wk_prom_tick(wk_prom_t *p, const wk_prom_sample_t *x, int force)
{
    if (!p)
        return;
    int64_t now_ms = zps_now_ms();
    if (!force && now_ms - p->last_ms < WK_PROM_EVERY_MS)
        return;
    p->last_ms = now_ms;
    double now = zps_now_s();
    if (now - p->t0 >= WK_PROM_WINDOW_S || force) {
        double dt = now - p->t0;
        uint64_t n = x->examples - p->ex0;
        if (dt > 0)
            zps_prom_set(p->rate, (double)n / dt);
        if (n)
            zps_prom_set(p->loss, (x->loss_sum - p->loss0) / (double)n);
        p->t0 = now;
        p->ex0 = x->examples;
        p->loss0 = x->loss_sum;
    }
    zps_prom_set(p->examples, (double)x->examples);
    zps_prom_set(p->ho, x->holdout_loss);
    zps_prom_set(p->test_loss, x->test_loss);
    zps_prom_set(p->test_auc, x->test_auc);
    zps_prom_set(p->epoch, x->epoch);
    zps_prom_set(p->epochs, x->epochs);
    zps_prom_set(p->epoch_done, x->epoch_done);
    zps_prom_set(p->progress, x->progress);
    zps_prom_set(p->batches, (double)x->batches);
    zps_prom_set(p->clock, (double)x->clock);
    zps_prom_set(p->keys_pulled, (double)x->keys_pulled);
    zps_prom_set(p->keys_pushed, (double)x->keys_pushed);
    if (x->client) {
        uint64_t sent, recv;
        wk_client_traffic(x->client, &sent, &recv);
        wk_client_retry_stats_t rs;
        wk_client_retry_stats(x->client, &rs);
        zps_prom_set(p->sent, (double)sent);
        zps_prom_set(p->recv, (double)recv);
        zps_prom_set(p->acked, (double)rs.acked);
        zps_prom_set(p->retried, (double)rs.retried);
        zps_prom_set(p->pull_retried, (double)rs.pull_retried);
        zps_prom_set(p->restarts, (double)rs.restarts);
        zps_prom_set(p->retained, (double)rs.retained_bytes);
    }
    zps_prom_set(p->scrapes, (double)zps_metrics_http_requests(p->http));
    size_t len;
    char *text = zps_prom_render(p->reg, &len);
    zps_metrics_http_publish(p->http, text, len);
}
