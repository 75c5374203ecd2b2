/* wk_train: see wk_train.h.
 *
 * DESIGN
 * Two slots, each with its own copy of a batch, its own wk_model (the model
 * remembers the key mapping of the batch it last saw), weight and gradient
 * buffers and a pull ticket.  The loop:
 *
 *     fill(next): read a batch, copy it, find its keys, pull_async
 *     wait(cur.pull); step(cur); push_async(cur.grads)
 *     while pushes in flight > max_delay: wait for the oldest
 *     swap(cur, next)
 *
 * so one pull is always in flight while a batch is computed.  Gradients
 * are copied by the client when pushed, so a slot can be refilled at once.
 *
 * This file keeps the loop, the slots, resuming after a restart and the
 * end-of-pass sequence (s_end_pass); its parts are modules of their own
 * (issue 14):
 *   wk_link     --servers, the client's options, CURVE, the job check
 *   wk_auto     the --epochs auto rules as pure functions (holdout choice,
 *               stop, step doubling and stepping back)
 *   wk_holdout  the held-out rows and their hash set
 *   wk_eval     scoring the test set (--test-predictions) and the holdout
 *               with synchronous pulls through slot 0's model; the step-size
 *               diagnostics
 *   wk_audit    --compress-audit
 *   wk_report   the counts, the progress line and the last lines
 * The trainer applies wk_auto's verdicts (the step multiplier goes to the
 * client) and writes every log line about them, in the order they were
 * always written. */
#include "wk_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wk_audit.h"
#include "wk_auto.h"
#include "wk_client.h"
#include "wk_data.h"
#include "wk_eval.h"
#include "wk_holdout.h"
#include "wk_link.h"
#include "wk_model.h"
#include "wk_prom.h"
#include "wk_report.h"
#include "wk_sparsify.h"
#include "zps_err.h"
#include "zps_time.h"

#define WK_MAX_PUSHES 256

typedef struct {
    wk_model_t *model;
    /* owned copy of the batch */
    wk_batch_t b;
    size_t cap_rows, cap_nnz;
    const uint64_t *keys;
    size_t nkeys;
    float *w, *g;
    size_t cap_w;
    uint64_t *sel_keys;   /* sparsified push */
    float *sel_vals, *sent;
    uint64_t pull_ticket;
    int pulling;
    uint32_t read_rows;   /* reader rows behind the batch (held-out rows included) */
    uint64_t clock;   /* ssp/bsp clock of this batch */
    int tick;         /* its push finishes the clock */
} wk_slot_t;

struct wk_trainer {
    const zps_conf_t *conf;
    zps_log_t *log;
    wk_link_t *link;        /* --servers, the client's set-up (owns the client) */
    wk_client_t *client;    /* the link's */
    uint32_t nservers;
    wk_reader_t *reader;
    wk_slot_t slot[2];
    uint32_t dim, classes;
    uint32_t pdim;                  /* floats per key in a push (>= dim, wk_model_push_dim) */
    uint64_t pushes[WK_MAX_PUSHES]; /* ring of push tickets in flight */
    uint32_t push_rows[WK_MAX_PUSHES];
    uint32_t epoch;                 /* current epoch (0-based) */
    uint64_t rows_acked;            /* rows of this epoch whose pushes were acknowledged */
    uint32_t push_head, push_count;
    wk_tally_t k;           /* counts, and the progress window (wk_report) */
    double t_pass;          /* when this pass started */
    uint64_t batches;     /* batches read so far (all epochs) */
    wk_eval_t eval;
    double fill_s;        /* time of the last batch fill (slow-worker experiments) */
    wk_sparsify_t *sparse;  /* --compress topk/threshold: residuals (error feedback) */
    wk_audit_t *audit;       /* --compress-audit: raw gradient sums per key */
    /* --epochs auto */
    uint32_t max_epochs;    /* --epochs N, or ZPS_AUTO_MAX_EPOCHS */
    int is_auto;
    wk_auto_t autos;         /* the stop/grow/step-back state (wk_auto) */
    int ho_building;        /* this pass picks the held-out rows */
    wk_holdout_t *ho;       /* the held-out rows (auto only) */
    double ho_loss;         /* last holdout logloss (NAN before the first) */
    double label_sum;       /* sum of the trained labels (all passes) */
    wk_scorer_t *scorer;    /* test set and holdout, with slot 0's model */
    wk_diag_t diag;         /* step-size warnings given */
    wk_prom_t *prom;        /* --metrics-listen (not owned, NULL: off) */
};

/* Appends to slot s the rows of in that are trained on (all of them
 * without a holdout); held-out rows go to the holdout during its first
 * pass.  Returns the rows appended or ZPS_ENOMEM. */
static long s_batch_append(wk_trainer_t *t, wk_slot_t *s, const wk_batch_t *in)
{
    size_t n0 = s->b.n, nnz0 = n0 ? s->b.offsets[n0] : 0;
    size_t nnz = nnz0 + (in->offsets[in->n] - in->offsets[0]);
    if (n0 + in->n > s->cap_rows) {
        size_t cap = n0 + in->n;
        float *l = realloc(s->b.labels, cap * sizeof *l);
        size_t *o = realloc(s->b.offsets, (cap + 1) * sizeof *o);
        if (l)
            s->b.labels = l;
        if (o)
            s->b.offsets = o;
        if (!l || !o)
            return ZPS_ENOMEM;
        s->cap_rows = cap;
    }
    if (nnz > s->cap_nnz || !s->b.ids) {
        size_t cap = nnz ? nnz : 1;
        uint64_t *id = realloc(s->b.ids, cap * sizeof *id);
        float *v = realloc(s->b.vals, cap * sizeof *v);
        if (id)
            s->b.ids = id;
        if (v)
            s->b.vals = v;
        if (!id || !v)
            return ZPS_ENOMEM;
        s->cap_nnz = cap;
    }
    size_t n = n0, at = nnz0;
    s->b.offsets[0] = 0;
    for (size_t i = 0; i < in->n; i++) {
        if (t->is_auto) {
            uint64_t h = wk_auto_row_hash(in, i);
            if (wk_holdout_has(t->ho, h))
                continue;
            if (t->ho_building) {
                int took = wk_holdout_offer(t->ho, in, i, h);
                if (took < 0)
                    return ZPS_ENOMEM;
                if (took)
                    continue;
            }
        }
        size_t k = in->offsets[i + 1] - in->offsets[i];
        memcpy(s->b.ids + at, in->ids + in->offsets[i], k * sizeof *in->ids);
        memcpy(s->b.vals + at, in->vals + in->offsets[i], k * sizeof *in->vals);
        s->b.labels[n] = in->labels[i];
        at += k;
        s->b.offsets[++n] = at;
    }
    s->b.n = n;
    return (long)(n - n0);
}

static int s_slot_buffers(wk_slot_t *s, size_t nkeys, uint32_t dim)
{
    size_t need = nkeys * dim;
    if (need <= s->cap_w)
        return 0;
    float *w = realloc(s->w, need * sizeof *w);
    if (w)
        s->w = w;
    float *g = realloc(s->g, need * sizeof *g);
    if (g)
        s->g = g;
    float *sv = realloc(s->sel_vals, need * sizeof *sv);
    if (sv)
        s->sel_vals = sv;
    float *st = realloc(s->sent, need * sizeof *st);
    if (st)
        s->sent = st;
    uint64_t *sk = realloc(s->sel_keys, nkeys * sizeof *sk);
    if (sk)
        s->sel_keys = sk;
    if (!w || !g || !sv || !st || !sk)
        return ZPS_ENOMEM;
    s->cap_w = need;
    return 0;
}

static void s_data_conf(const zps_conf_t *c, wk_data_conf_t *d, int test)
{
    memset(d, 0, sizeof *d);
    d->paths = test ? &c->test : c->train;
    d->npaths = test ? 1 : c->ntrain;
    d->format = c->format;
    d->shard = test ? 0 : c->rank;
    d->nshards = test ? 1 : c->num_workers;
    d->cache_dir = c->cache_dir;
    d->use_cache = !c->no_cache;
    d->skip_bad_lines = c->skip_bad_lines;
    d->labels = c->model == ZPS_MODEL_MLP ? WK_LABEL_CLASS : WK_LABEL_BINARY;
    d->hash_bits = c->hash_bits;
    d->shuffle_buffer = test ? 0 : c->shuffle_buffer;
    d->seed = c->seed * 1000003ULL + c->rank;
}

wk_trainer_t *wk_trainer_new(const zps_conf_t *conf, zps_log_t *log, char *err, size_t errlen)
{
    wk_trainer_t *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->conf = conf;
    t->log = log;
    t->is_auto = conf->epochs == 0;
    t->max_epochs = t->is_auto ? ZPS_AUTO_MAX_EPOCHS : conf->epochs;
    t->ho_loss = NAN;
    {
        zps_optim_conf_t oc;
        zps_conf_table(conf, &oc);
        wk_auto_init(&t->autos, t->is_auto && oc.kind == ZPS_OPT_NORM);
    }
    if (t->is_auto && !(t->ho = wk_holdout_new())) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (conf->ntrain == 0) {
        snprintf(err, errlen, "no training data (--train PATH)");
        goto fail;
    }
    if (!(t->link = wk_link_new(conf, log, err, errlen)))
        goto fail;
    for (int i = 0; i < 2; i++) {
        t->slot[i].model = wk_model_new(conf, err, errlen);
        if (!t->slot[i].model)
            goto fail;
    }
    t->dim = wk_model_dim(t->slot[0].model);
    t->pdim = wk_model_push_dim(t->slot[0].model);
    t->classes = wk_model_classes(t->slot[0].model);
    if (conf->sparse_mode) {
        wk_sparsify_conf_t sc = {conf->sparse_mode == 1 ? WK_SPARSE_TOPK : WK_SPARSE_THRESHOLD,
                                 conf->sparse_ratio, conf->sparse_threshold,
                                 conf->sparse_momentum};
        t->sparse = wk_sparsify_new(&sc, t->pdim);
        if (!t->sparse) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    if (conf->compress_audit && !(t->audit = wk_audit_new(t->pdim))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    wk_data_conf_t dc;
    s_data_conf(conf, &dc, 0);
    t->reader = wk_reader_new(&dc, err, errlen);
    if (!t->reader)
        goto fail;
    char names[1024];
    if (wk_reader_all_empty(t->reader, names, sizeof names)) {
        snprintf(err, errlen, "no rows in the training data: %s %s empty (--train)", names,
                 strchr(names, ',') ? "are" : "is");
        goto fail;
    }
    if (conf->rank == 0 && conf->test) {
        /* the test set is read after the first epoch: find a mistake now */
        wk_data_conf_t tc;
        s_data_conf(conf, &tc, 1);
        tc.use_cache = 0;
        char terr[512];
        wk_reader_t *tr = wk_reader_new(&tc, terr, sizeof terr);
        if (!tr) {
            snprintf(err, errlen, "test data (--test): %s", terr);
            goto fail;
        }
        int empty = wk_reader_all_empty(tr, names, sizeof names);
        wk_reader_destroy(&tr);
        if (empty) {
            snprintf(err, errlen, "no rows in the test data: %s is empty (--test)", names);
            goto fail;
        }
    }
    char cpath[1024];
    size_t nparts = wk_reader_cache_path(t->reader, cpath, sizeof cpath);
    if (nparts)
        zps_info(log, "binary data cache: %s%s (written during the first epoch, read by the "
                 "later ones)", cpath, nparts > 1 ? " (and one per further input file)" : "");
    else if (conf->no_cache)
        zps_info(log, "binary data cache: off (--no-cache)");

    if (!(t->client = wk_link_connect(t->link, err, errlen)))
        goto fail;
    t->nservers = wk_link_nservers(t->link);
    if (!(t->scorer = wk_scorer_new(t->slot[0].model, t->client, log))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return t;
fail:
    wk_trainer_destroy(&t);
    return NULL;
}

void wk_trainer_destroy(wk_trainer_t **tp)
{
    if (!tp || !*tp)
        return;
    wk_trainer_t *t = *tp;
    wk_link_destroy(&t->link);
    wk_reader_destroy(&t->reader);
    for (int i = 0; i < 2; i++) {
        wk_slot_t *s = &t->slot[i];
        wk_model_destroy(&s->model);
        free(s->b.labels);
        free(s->b.offsets);
        free(s->b.ids);
        free(s->b.vals);
        free(s->w);
        free(s->g);
        free(s->sel_keys);
        free(s->sel_vals);
        free(s->sent);
    }
    wk_sparsify_destroy(&t->sparse);
    wk_audit_destroy(&t->audit);
    wk_holdout_destroy(&t->ho);
    wk_scorer_destroy(&t->scorer);
    free(t);
    *tp = NULL;
}

const wk_eval_t *wk_trainer_last_eval(const wk_trainer_t *t) { return &t->eval; }

void wk_trainer_set_prom(wk_trainer_t *t, struct wk_prom *p) { t->prom = p; }

/* metrics: what the trainer counts, to the exporter (wk_prom
 * publishes at most every 100 ms unless force) */
static void s_prom(wk_trainer_t *t, uint32_t epoch, int force)
{
    if (!t->prom)
        return;
    double done = wk_reader_progress(t->reader);
    wk_prom_sample_t x = {
        .examples = t->k.rows, .loss_sum = t->k.loss, .batches = t->batches,
        .keys_pulled = t->k.keys_pulled, .keys_pushed = t->k.keys_pushed,
        .epoch = epoch + 1, .epochs = t->is_auto ? 0 : t->conf->epochs, .epoch_done = done,
        .progress = t->is_auto ? done : ((double)epoch + done) / t->conf->epochs,
        .holdout_loss = t->ho_loss, .test_loss = t->eval.rows ? t->eval.logloss : NAN,
        .test_auc = t->eval.rows && t->classes <= 1 ? t->eval.auc : NAN,
        .clock = t->conf->consistency == ZPS_CONS_ASYNC ? 0
                 : t->slot[0].clock > t->slot[1].clock ? t->slot[0].clock : t->slot[1].clock,
        .client = t->client};
    wk_prom_tick(t->prom, &x, force);
}

/* The step size the table runs with (--lr or the optimizer's default). */
static float s_lr(const wk_trainer_t *t)
{
    zps_optim_conf_t oc;
    zps_conf_table(t->conf, &oc);
    return oc.lr;
}

/* The optimizer's default step size (what --lr replaces). */
static float s_default_lr(const wk_trainer_t *t)
{
    zps_conf_t c = *t->conf;
    c.lr = -1;
    zps_optim_conf_t oc;
    zps_conf_table(&c, &oc);
    return oc.lr;
}

static int s_fail(wk_trainer_t *t, int rc, const char *what)
{
    zps_error(t->log, "%s: %s", what, wk_client_error(t->client));
    return rc;
}

/* Wait for the oldest push in flight. */
static int s_wait_push(wk_trainer_t *t)
{
    uint64_t ticket = t->pushes[t->push_head];
    uint32_t rows = t->push_rows[t->push_head];
    t->push_head = (t->push_head + 1) % WK_MAX_PUSHES;
    t->push_count--;
    int rc = wk_client_wait(t->client, ticket, -1);
    if (rc)
        return s_fail(t, rc, "push failed");
    t->rows_acked += rows;
    return 0;
}

/* Read the next batch into slot s and start its pull.  Returns rows (0 at
 * the end of the epoch) or a negative code.  With a holdout, batches are
 * read until at least one row is left to train on (or the epoch ends). */
static long s_fill(wk_trainer_t *t, wk_slot_t *s)
{
    wk_batch_t b;
    s->b.n = 0;
    s->read_rows = 0;
    long n;
    do {
        n = wk_reader_next(t->reader, t->conf->batch, &b);
        if (n < 0) {
            zps_error(t->log, "reading training data: %s", wk_reader_error(t->reader));
            return n;
        }
        if (n == 0)
            break;
        s->read_rows += (uint32_t)n;
        long kept = s_batch_append(t, s, &b);
        if (kept < 0)
            return kept;
    } while (s->b.n == 0);
    if (s->b.n == 0)
        return 0;
    n = (long)s->b.n;
    s->nkeys = wk_model_keys(s->model, &s->b, &s->keys);
    if (s_slot_buffers(s, s->nkeys, t->pdim))
        return ZPS_ENOMEM;
    uint64_t b_no = ++t->batches;
    s->clock = (b_no - 1) / t->conf->clock_every + 1;
    s->tick = b_no % t->conf->clock_every == 0;
    wk_client_set_clock(t->client, s->clock);
    int rc = wk_client_pull_async(t->client, 0, s->keys, s->nkeys, s->w, &s->pull_ticket);
    if (rc)
        return s_fail(t, rc, "pull failed");
    s->pulling = 1;
    t->k.keys_pulled += s->nkeys;
    return n;
}

/* Compute slot s (its pull is in flight) and push its gradients. */
static int s_compute(wk_trainer_t *t, wk_slot_t *s)
{
    const zps_conf_t *c = t->conf;
    int rc = wk_client_wait(t->client, s->pull_ticket, -1);
    s->pulling = 0;
    if (rc)
        return s_fail(t, rc, "pull failed");
    double loss = wk_model_step(s->model, &s->b, s->w, s->g);
    if (!isfinite(loss)) {
        zps_error(t->log, "training loss is not finite (%g): the step size is too large? "
                  "(lower --lr, now %g)", loss, (double)s_lr(t));
        return ZPS_EINVAL;
    }
    t->k.loss += loss;
    t->k.rows += s->b.n;
    for (size_t i = 0; i < s->b.n; i++)
        t->label_sum += s->b.labels[i];
    while (t->push_count >= t->conf->max_delay)
        if ((rc = s_wait_push(t)) != 0)
            return rc;
    uint64_t ticket;
    wk_push_meta_t meta = {(uint32_t)s->b.n, t->classes > 1, s->tick, NULL, t->epoch,
                           t->rows_acked};
    if (t->audit && (rc = wk_audit_add(t->audit, s->keys, s->g, s->nkeys)) != 0)
        return rc;
    const uint64_t *pkeys = s->keys;
    const float *pvals = s->g;
    size_t pn = s->nkeys;
    if (t->sparse) {
        /* error feedback: what is not sent now stays in the residual */
        pn = wk_sparsify_step(t->sparse, s->keys, s->g, s->nkeys, s->sel_keys, s->sel_vals);
        pkeys = s->sel_keys;
        pvals = s->sel_vals;
        if (c->push_codec)
            meta.sent = s->sent;
    }
    wk_client_set_clock(t->client, s->clock);
    rc = wk_client_push_ex(t->client, 0, pkeys, pvals, pn, &meta, &ticket);
    if (rc)
        return s_fail(t, rc, "push failed");
    if (t->sparse && meta.sent) /* quantisation error goes back to the residual too */
        wk_sparsify_feedback(t->sparse, pkeys, pvals, meta.sent, pn);
    t->pushes[(t->push_head + t->push_count) % WK_MAX_PUSHES] = ticket;
    t->push_rows[(t->push_head + t->push_count) % WK_MAX_PUSHES] = s->read_rows;
    t->push_count++;
    t->k.keys_pushed += pn;
    t->k.push_raw += s->nkeys * (8 + 4 * (uint64_t)t->pdim); /* before sparsification */
    return 0;
}

/* "3/10", or "3/auto" with --epochs auto. */
static void s_epoch_name(const wk_trainer_t *t, uint32_t epoch, char *buf, size_t len)
{
    if (t->is_auto)
        snprintf(buf, len, "%u/auto", epoch + 1);
    else
        snprintf(buf, len, "%u/%u", epoch + 1, t->conf->epochs);
}

static void s_progress(wk_trainer_t *t, uint32_t epoch, int force)
{
    s_prom(t, epoch, force); /* metrics */
    double now = zps_now_s();
    if (!force && now - t->k.t_last < t->conf->progress_every)
        return;
    /* ETA from this epoch's progress and the elapsed time (auto: of this pass) */
    double done = wk_reader_progress(t->reader);
    double frac = t->is_auto ? done : ((double)epoch + done) / t->conf->epochs;
    double elapsed = now - (t->is_auto ? t->t_pass : t->k.t_start);
    char eta[48] = "?", ep[32];
    if (frac > 0.001)
        snprintf(eta, sizeof eta, "%.0fs%s", elapsed / frac - elapsed,
                 t->is_auto ? " (this pass)" : "");
    s_epoch_name(t, epoch, ep, sizeof ep);
    wk_report_progress(&t->k, t->log, t->client, now, ep, done, eta,
                       t->is_auto ? t->ho_loss : NAN);
}

/* A worker resumed after its first pass: pick the holdout again from a
 * reading of the first pass's order (its own reader, without the cache). */
static int s_holdout_rebuild(wk_trainer_t *t)
{
    wk_data_conf_t dc;
    s_data_conf(t->conf, &dc, 0);
    dc.use_cache = 0;
    char err[512];
    wk_reader_t *r = wk_reader_new(&dc, err, sizeof err);
    if (!r) {
        zps_error(t->log, "training data (holdout): %s", err);
        return ZPS_EINVAL;
    }
    int rc = wk_holdout_rebuild(t->ho, r);
    wk_reader_destroy(&r);
    return rc;
}

/* After pass e (0-based; first: the first pass of this run, ep its name):
 * with --epochs auto score the holdout and apply wk_auto's verdict (may set
 * *last); worker 0 scores the test set (and writes --test-predictions at the
 * last pass); then the step-size diagnostics.  train, q_train: the pass's
 * mean train loss and rate of label 1.  0 or a ZPS_E* code (logged). */
static int s_end_pass(wk_trainer_t *t, uint32_t e, uint32_t first, const char *ep, double train,
                      double q_train, int *last)
{
    const zps_conf_t *c = t->conf;
    wk_eval_t dev = {NAN, NAN, NAN, NAN, 0};
    int have_dev = 0, stepped_back = 0, rc;
    double dq = NAN;
    if (t->is_auto) {
        const wk_batch_t *ho = wk_holdout_rows(t->ho);
        if (t->ho_building) {
            t->ho_building = 0;
            zps_info(t->log, "holdout: %llu rows of this worker's data (every %uth by content, "
                     "at most %u), never trained on", (unsigned long long)ho->n,
                     WK_HOLDOUT_EVERY, WK_HOLDOUT_CAP);
        }
        if (ho->n == 0) {
            zps_info(t->log, "stopping after pass %u: no holdout rows in this worker's data "
                     "(--epochs N sets the number of passes)", e + 1);
            *last = 1;
        } else {
            wk_eval_t hv;
            if ((rc = wk_scorer_rows(t->scorer, ho, &hv, &dq)) != 0)
                return rc;
            t->ho_loss = hv.logloss;
            dev = hv;
            have_dev = 1;
            if (t->classes > 1)
                zps_info(t->log, "epoch %s holdout: logloss %.5f accuracy %.4f (%llu rows)", ep,
                         hv.logloss, hv.accuracy, (unsigned long long)hv.rows);
            else
                zps_info(t->log, "epoch %s holdout: logloss %.5f auc %.5f (%llu rows)", ep,
                         hv.logloss, hv.auc, (unsigned long long)hv.rows);
            wk_auto_verdict_t v;
            wk_auto_pass(&t->autos, hv.logloss, e, first, t->max_epochs, &v);
            const double best = v.prev_best, scale = t->autos.lr_scale;
            if (v.stepped_back || v.doubled)
                wk_client_set_lr_scale(t->client, t->autos.lr_scale);
            if (v.stepped_back)
                zps_info(t->log, "holdout logloss %.5f after the doubled step is no better "
                         "than %.5f: step back to %g x --lr %g, no more growth", hv.logloss,
                         best, scale, (double)s_lr(t));
            if (v.doubled)
                zps_info(t->log, "holdout logloss fell %.1f%% in pass %u (more than %g%%): "
                         "step doubled, now %g x --lr %g (--epochs N keeps it fixed)",
                         100 * (1 - hv.logloss / best), e + 1, 100 * WK_AUTO_GROW_TOL, scale,
                         (double)s_lr(t));
            if (v.stop == WK_AUTO_STOP_NO_GAIN) {
                zps_info(t->log, "stopping after %u passes: holdout logloss %.5f did not "
                         "improve by %g%% on the best, %.5f after pass %u (--epochs auto; "
                         "--epochs N sets the number of passes)", e + 1, hv.logloss,
                         100 * WK_AUTO_TOL, best, v.prev_best_pass + 1);
                *last = 1;
            } else if (v.stop == WK_AUTO_STOP_CAP) {
                zps_info(t->log, "stopping after %u passes: the most --epochs auto makes "
                         "(holdout logloss %.5f, still improving)", e + 1, hv.logloss);
                if (t->classes == 1 && !t->diag.warned_small) {
                    t->diag.warned_small = 1;
                    zps_warn(t->log, "the holdout loss was still improving after %u passes: "
                             "the step size may be too small: raise --lr (now %g), or set "
                             "--epochs N", e + 1, (double)s_lr(t));
                }
            }
            stepped_back = v.stepped_back;
        }
    }
    if (c->rank == 0 && c->test) {
        wk_data_conf_t dc;
        s_data_conf(c, &dc, 1);
        if ((rc = wk_scorer_test(t->scorer, &dc, *last ? c->test_predictions : NULL,
                                 &t->eval)) != 0)
            return rc;
        if (t->classes > 1)
            zps_info(t->log, "epoch %s test: logloss %.5f accuracy %.4f (%llu rows)", ep,
                     t->eval.logloss, t->eval.accuracy, (unsigned long long)t->eval.rows);
        else
            zps_info(t->log, "epoch %s test: logloss %.5f auc %.5f accuracy %.4f (%llu rows)",
                     ep, t->eval.logloss, t->eval.auc, t->eval.accuracy,
                     (unsigned long long)t->eval.rows);
        if (!t->is_auto) { /* no holdout: the diagnostics use the test set */
            dev = t->eval;
            have_dev = 1;
            dq = q_train; /* its label rate: taken as the train rows' */
        }
    }
    if (!stepped_back) /* a pass spoiled by a doubled step is not the user's --lr */
        wk_diagnose(&t->diag, t->log, t->classes, e, train, q_train, have_dev ? &dev : NULL, dq,
                    s_lr(t), s_default_lr(t));
    return 0;
}

int wk_trainer_run(wk_trainer_t *t, volatile sig_atomic_t *stop)
{
    const zps_conf_t *c = t->conf;
    t->k.t_start = t->k.t_last = zps_now_s();
    int rc = 0;
    uint32_t first_epoch = 0;
    uint64_t skip_rows = 0;
    const uint32_t max_epochs = t->max_epochs;
    if (wk_client_progress(t->client, &first_epoch, &skip_rows)) {
        if (!t->is_auto && first_epoch >= max_epochs) {
            zps_info(t->log, "the servers recorded that this worker finished all %u epochs",
                     c->epochs);
            first_epoch = max_epochs;
        } else {
            if (first_epoch >= max_epochs) /* auto: a last pass, to decide again */
                first_epoch = max_epochs - 1;
            zps_info(t->log, "resuming where the servers recorded this worker: epoch %u, "
                     "after %llu rows", first_epoch + 1, (unsigned long long)skip_rows);
        }
        for (uint32_t e = 0; e < first_epoch && e + 1 < max_epochs && !rc; e++)
            rc = wk_reader_rewind(t->reader);
        if (t->is_auto && (first_epoch > 0 || skip_rows > 0) && !rc) {
            /* the holdout was picked in the first pass, which is over */
            if ((rc = s_holdout_rebuild(t)) != 0)
                return rc;
            zps_info(t->log, "holdout: %llu rows picked again from the first pass's order",
                     (unsigned long long)wk_holdout_rows(t->ho)->n);
        }
    }
    t->ho_building = t->is_auto && first_epoch == 0 && skip_rows == 0;
    char ep[32];
    char passes[64];
    if (t->is_auto)
        snprintf(passes, sizeof passes, "epochs auto (at most %u, holdout every %uth row)",
                 max_epochs, WK_HOLDOUT_EVERY);
    else
        snprintf(passes, sizeof passes, "%u epochs", c->epochs);
    if (c->local)
        zps_info(t->log, "training %s: %s, batch %u, in-process store (--local)",
                 zps_model_name(c->model), passes, c->batch);
    else
        zps_info(t->log, "training %s: %s, batch %u, max delay %u, %u servers",
                 zps_model_name(c->model), passes, c->batch, c->max_delay, t->nservers);
    double train_t0 = zps_now_s();
    for (uint32_t e = first_epoch; e < max_epochs && !rc; e++) {
        if (e > first_epoch && (rc = wk_reader_rewind(t->reader)) != 0) {
            zps_error(t->log, "rewinding training data: %s", wk_reader_error(t->reader));
            break;
        }
        s_epoch_name(t, e, ep, sizeof ep);
        t->t_pass = zps_now_s();
        t->epoch = e;
        t->rows_acked = 0;
        /* fm: the first pass fits the bias and the linear weights alone, the
         * embeddings learn from pass 2 on (docs/architecture.md, "fm's first
         * pass"); with one pass everything trains from the start */
        int fm_warm = c->model == ZPS_MODEL_FM && e == 0 && max_epochs > 1;
        for (int si = 0; si < 2; si++)
            wk_model_fm_linear_only(t->slot[si].model, fm_warm);
        if (fm_warm)
            zps_info(t->log, "fm: pass 1 trains the bias and the linear weights only; the "
                     "embeddings learn from pass 2 on");
        if (e == first_epoch && skip_rows) {
            /* rows whose pushes the servers acknowledged before this worker died */
            wk_batch_t skip;
            long got;
            while (t->rows_acked < skip_rows &&
                   (got = wk_reader_next(t->reader, (size_t)(skip_rows - t->rows_acked < c->batch
                                                          ? skip_rows - t->rows_acked : c->batch),
                                         &skip)) > 0)
                t->rows_acked += (uint64_t)got;
        }
        uint64_t rows0 = t->k.rows;
        double loss0 = t->k.loss, labels0 = t->label_sum;
        double t0 = zps_now_s();
        int cur = 0;
        long n = s_fill(t, &t->slot[cur]);
        if (n == 0 && e == first_epoch && t->rows_acked == 0 && t->k.rows == 0) {
            /* nothing to train on: an error, not a model of initial weights */
            char args[512];
            int k = 0;
            for (uint32_t i = 0; i < c->ntrain && k < (int)sizeof args - 8; i++)
                k += snprintf(args + k, sizeof args - (size_t)k, "%s%s", i ? ", " : "", c->train[i]);
            uint64_t bad = wk_reader_bad_lines(t->reader);
            if (c->num_workers == 1) {
                zps_error(t->log, "no rows in the training data %s%s", args,
                          bad ? " (every line was bad and skipped)" : "");
                rc = ZPS_EINVAL;
                break;
            }
            /* other workers may have rows (a small file over many workers) */
            zps_warn(t->log, "no rows in this worker's share (%u of %u) of the training data %s%s",
                     c->rank, c->num_workers, args,
                     bad ? " (every line of it was bad and skipped)" : ": fewer rows than workers?");
        }
        while (n > 0) {
            if (stop && *stop) {
                rc = ZPS_EINTR;
                break;
            }
            double f0 = zps_now_s();
            long next = s_fill(t, &t->slot[cur ^ 1]);
            t->fill_s = zps_now_s() - f0;
            if (next < 0) {
                rc = (int)next;
                break;
            }
            double it0 = zps_now_s();
            if ((rc = s_compute(t, &t->slot[cur])) != 0)
                break;
            if ((int32_t)c->rank == c->slow_worker && c->slow_factor > 1) {
                /* straggler experiments: this worker takes slow_factor times as long */
                double extra = (zps_now_s() - it0 + t->fill_s) * (c->slow_factor - 1);
                struct timespec ts = {(time_t)extra, (long)((extra - (time_t)extra) * 1e9)};
                nanosleep(&ts, NULL);
            }
            s_progress(t, e, 0);
            cur ^= 1;
            n = next;
        }
        if (n < 0 && !rc)
            rc = (int)n;
        /* a slot whose pull is still in flight: finish it (error paths) */
        for (int i = 0; i < 2; i++)
            if (t->slot[i].pulling) {
                wk_client_wait(t->client, t->slot[i].pull_ticket, -1);
                t->slot[i].pulling = 0;
            }
        while (t->push_count && !rc)
            rc = s_wait_push(t);
        if (rc)
            break;
        double dt = zps_now_s() - t0;
        uint64_t rows = t->k.rows - rows0;
        double train = rows ? (t->k.loss - loss0) / (double)rows : 0.0;
        double q_train = rows ? (t->label_sum - labels0) / (double)rows : NAN;
        zps_info(t->log, "epoch %s done: %llu rows in %.1fs (%.0f ex/s)%s, mean train loss %.5f",
                 ep, (unsigned long long)rows, dt, dt > 0 ? rows / dt : 0.0,
                 wk_reader_from_cache(t->reader) ? " from cache" : "", train);
        /* --epochs auto: score the holdout, decide whether this was the last pass */
        int last = e + 1 == max_epochs;
        if (!last && c->max_train_seconds > 0 && zps_now_s() - train_t0 >= c->max_train_seconds) {
            zps_info(t->log, "time budget of %.0f s (--max-train-seconds) reached: pass %u was the "
                     "last", c->max_train_seconds, e + 1);
            last = 1;
        }
        if ((rc = s_end_pass(t, e, first_epoch, ep, train, q_train, &last)) != 0)
            break;
        s_prom(t, e, 1); /* metrics: the pass's losses at once */
        if (last)
            break;
    }
    while (t->push_count && !rc)
        rc = s_wait_push(t);
    /* done=1 in every mode: ssp/bsp servers take the worker out of the
     * clock, and a server with --exit-when-done counts it */
    if (!rc && (rc = wk_client_done(t->client)) != 0)
        s_fail(t, rc, c->consistency != ZPS_CONS_ASYNC
                          ? "leaving the clock failed"
                          : "telling the servers this worker is done failed (every push was "
                            "acknowledged; a server with --exit-when-done would wait)");
    if (t->audit && !rc)
        rc = wk_audit_write(t->audit, c->compress_audit, t->sparse, t->log);
    uint64_t bad = wk_reader_bad_lines(t->reader);
    if (bad)
        zps_warn(t->log, "skipped %llu bad lines in the training data", (unsigned long long)bad);
    wk_report_end(&t->k, t->log, t->client, zps_now_s(), rc != 0, c->local, t->nservers);
    return rc;
}
