/* wk_eval: see wk_eval.h.
 *
 * DESIGN
 * Scoring is the training loop's forward half without a push: keys of a
 * batch, one synchronous pull into the scorer's own weight buffer, predict,
 * and the metrics (wk_metrics) plus the mean |p - 0.5| the diagnostics
 * use.  The holdout is scored in slices of its owned batch (no copy); the
 * test file through its own reader, opened per evaluation (no cache, one
 * shard).  The diagnostics are split into a pure verdict (testable) and
 * the once-only logging. */
#include "wk_eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "wk_metrics.h"
#include "zps_err.h"
#include "zps_out.h"

#define S_ROWS 1000 /* rows scored at a time */

struct wk_scorer {
    wk_model_t *model;
    wk_client_t *client;
    zps_log_t *log;
    uint32_t dim, classes;
    float *w;          /* pulled weights of the batch */
    size_t cap_w;
    float *prob;       /* predictions of the batch */
    uint32_t *cls;
    size_t cap_rows;
};

wk_scorer_t *wk_scorer_new(wk_model_t *model, wk_client_t *client, zps_log_t *log)
{
    wk_scorer_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->model = model;
    s->client = client;
    s->log = log;
    s->dim = wk_model_dim(model);
    s->classes = wk_model_classes(model);
    return s;
}

void wk_scorer_destroy(wk_scorer_t **sp)
{
    if (!sp || !*sp)
        return;
    wk_scorer_t *s = *sp;
    free(s->w);
    free(s->prob);
    free(s->cls);
    free(s);
    *sp = NULL;
}

/* Pulls the weights of b and predicts it into s->prob / s->cls; the summed
 * loss in *loss.  what names the data in an error. */
static int s_predict(wk_scorer_t *s, const wk_batch_t *b, const char *what, double *loss)
{
    const uint64_t *keys;
    size_t nk = wk_model_keys(s->model, b, &keys);
    if (nk * s->dim > s->cap_w) {
        float *w = realloc(s->w, nk * s->dim * sizeof *w);
        if (!w)
            return ZPS_ENOMEM;
        s->w = w;
        s->cap_w = nk * s->dim;
    }
    if (b->n > s->cap_rows) {
        float *p = realloc(s->prob, b->n * sizeof *p);
        if (p)
            s->prob = p;
        uint32_t *c = realloc(s->cls, b->n * sizeof *c);
        if (c)
            s->cls = c;
        if (!p || !c)
            return ZPS_ENOMEM;
        s->cap_rows = b->n;
    }
    int rc = wk_client_pull(s->client, 0, keys, nk, s->w);
    if (rc) {
        zps_error(s->log, "pull for the %s failed: %s", what, wk_client_error(s->client));
        return rc;
    }
    *loss = wk_model_predict(s->model, b, s->w, s->prob, s->cls);
    return 0;
}

static void s_fill(const wk_scorer_t *s, wk_metrics_t *m, double spread, wk_eval_t *ev)
{
    ev->rows = wk_metrics_count(m);
    ev->logloss = wk_metrics_logloss(m);
    ev->auc = s->classes > 1 ? NAN : wk_metrics_auc(m);
    ev->accuracy = wk_metrics_accuracy(m);
    ev->spread = ev->rows ? spread / (double)ev->rows : NAN;
}

int wk_scorer_test(wk_scorer_t *s, const wk_data_conf_t *dc, const char *predictions,
                   wk_eval_t *ev)
{
    char err[512];
    wk_reader_t *r = wk_reader_new(dc, err, sizeof err);
    if (!r) {
        zps_error(s->log, "test data: %s", err);
        return ZPS_EINVAL;
    }
    FILE *out = NULL;
    zps_out_t *po = NULL; /* through the atomic writer: whole at the end, or the old file */
    if (predictions) {
        if (!(po = zps_out_open(predictions, err, sizeof err))) {
            zps_error(s->log, "--test-predictions: %s", err);
            wk_reader_destroy(&r);
            return ZPS_EIO;
        }
        out = zps_out_file(po);
    }
    wk_metrics_t *m = wk_metrics_new(s->classes);
    int rc = m ? 0 : ZPS_ENOMEM;
    double spread = 0;
    wk_batch_t b;
    long n = 0;
    while (!rc && (n = wk_reader_next(r, S_ROWS, &b)) > 0) {
        double loss;
        if ((rc = s_predict(s, &b, "test set", &loss)) != 0)
            break;
        wk_metrics_add_preds(m, b.n, b.labels, s->prob, s->cls, loss);
        for (size_t i = 0; i < b.n; i++) {
            spread += fabs(s->prob[i] - 0.5);
            if (out) {
                if (s->classes > 1)
                    fprintf(out, "%u\n", s->cls[i]);
                else
                    fprintf(out, "%.9g\n", (double)s->prob[i]);
            }
        }
    }
    if (n < 0) {
        zps_error(s->log, "test data: %s", wk_reader_error(r));
        rc = (int)n;
    }
    if (!rc)
        s_fill(s, m, spread, ev);
    if (po && zps_out_close(&po, rc == 0, err, sizeof err) != 0) {
        zps_error(s->log, "--test-predictions: %s", err);
        rc = ZPS_EIO;
    }
    wk_metrics_destroy(&m);
    wk_reader_destroy(&r);
    return rc;
}

int wk_scorer_rows(wk_scorer_t *s, const wk_batch_t *rows, wk_eval_t *ev, double *pos_rate)
{
    wk_metrics_t *m = wk_metrics_new(s->classes);
    int rc = m ? 0 : ZPS_ENOMEM;
    double pos = 0, spread = 0;
    for (size_t i0 = 0; i0 < rows->n && !rc; i0 += S_ROWS) {
        wk_batch_t b = {rows->n - i0 < S_ROWS ? rows->n - i0 : S_ROWS, rows->labels + i0,
                        rows->offsets + i0, rows->ids, rows->vals};
        double loss;
        if ((rc = s_predict(s, &b, "holdout", &loss)) != 0)
            break;
        wk_metrics_add_preds(m, b.n, b.labels, s->prob, s->cls, loss);
        for (size_t i = 0; i < b.n; i++) {
            pos += b.labels[i];
            spread += fabs(s->prob[i] - 0.5);
        }
    }
    if (!rc) {
        s_fill(s, m, spread, ev);
        ev->spread = rows->n ? spread / (double)rows->n : NAN;
        *pos_rate = rows->n ? pos / (double)rows->n : NAN;
    }
    wk_metrics_destroy(&m);
    return rc;
}

/* ---- diagnostics ----------------------------------------------------------- */

double wk_diag_rate_loss(double q)
{
    if (!(q > 0 && q < 1))
        return 0;
    return -(q * log(q) + (1 - q) * log(1 - q));
}

int wk_diag_verdict(double train, double q_train, const wk_eval_t *ev, double q)
{
    double loss = ev ? ev->logloss : NAN, auc = ev ? ev->auc : NAN;
    double spread = ev ? ev->spread : NAN;
    double h_train = wk_diag_rate_loss(q_train), h = isnan(q) ? NAN : wk_diag_rate_loss(q);
    int v = 0;
    /* with held-out metrics only they count: the first pass's train loss
     * includes the transient of the first batches */
    if (isnan(loss) ? h_train > 0 && train > 1.5 * h_train : h > 0 && loss > 1.5 * h)
        v |= WK_DIAG_LARGE;
    if (h > 0 && loss >= h && (auc >= 0.7 || (auc >= 0.55 && spread < 0.1)))
        v |= WK_DIAG_SMALL;
    return v;
}

void wk_diagnose(wk_diag_t *d, zps_log_t *log, uint32_t classes, uint32_t pass, double train,
                 double q_train, const wk_eval_t *ev, double q, double lr, double def)
{
    if (classes > 1)
        return;
    double loss = ev ? ev->logloss : NAN, auc = ev ? ev->auc : NAN;
    double h_train = wk_diag_rate_loss(q_train), h = isnan(q) ? NAN : wk_diag_rate_loss(q);
    int v = wk_diag_verdict(train, q_train, ev, q);
    char held[48] = "";
    if (!isnan(loss))
        snprintf(held, sizeof held, " (held-out %.4f)", loss);
    if (!d->warned_large && (v & WK_DIAG_LARGE)) {
        d->warned_large = 1;
        zps_warn(log, "the loss diverges: after pass %u the train loss is %.4f%s, far above "
                 "%.4f, the loss of always predicting the label rate: the step size is too "
                 "large, lower --lr (now %g; the default is %g)", pass + 1, train, held,
                 h_train, lr, def);
    }
    if (!d->warned_small && !d->warned_large && (v & WK_DIAG_SMALL)) {
        d->warned_small = 1;
        zps_warn(log, "the step size looks too small: after pass %u the AUC is %.3f but the "
                 "logloss %.4f is no better than %.4f, the loss of always predicting the label "
                 "rate (predictions too timid): raise --lr (now %g; the default is %g)",
                 pass + 1, auc, loss, h, lr, def);
    }
}
