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
 * The test set is scored by worker 0 at the end of each epoch through the
 * same model code with synchronous pulls. */
#include "wk_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wk_client.h"
#include "wk_data.h"
#include "wk_metrics.h"
#include "wk_model.h"
#include "wk_sparsify.h"
#include "zps_out.h"
#include "zps_table.h"
#include "zps_curve.h"
#include "zps_err.h"
#include "zps_hash.h"
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
    wk_client_t *client;
    const char **servers;
    uint32_t nservers;
    char *servers_buf;
    wk_reader_t *reader;
    wk_slot_t slot[2];
    uint32_t dim, classes;
    uint32_t pdim;                  /* floats per key in a push (>= dim, wk_model_push_dim) */
    uint64_t pushes[WK_MAX_PUSHES]; /* ring of push tickets in flight */
    uint32_t push_rows[WK_MAX_PUSHES];
    uint32_t epoch;                 /* current epoch (0-based) */
    uint64_t rows_acked;            /* rows of this epoch whose pushes were acknowledged */
    uint32_t push_head, push_count;
    /* counters */
    uint64_t rows_total, keys_pulled, keys_pushed;
    double loss_total;
    /* progress window */
    double t_start, t_last, t_pass;
    uint64_t rows_last;
    double loss_last;
    uint64_t batches;     /* batches read so far (all epochs) */
    wk_eval_t eval;
    double fill_s;        /* time of the last batch fill (slow-worker experiments) */
    wk_sparsify_t *sparse;  /* --compress topk/threshold: residuals (error feedback) */
    uint64_t push_raw;      /* bytes the pushes would take dense and uncompressed */
    zps_table_t *audit;      /* --compress-audit: raw gradient sums per key */
    /* --epochs auto */
    uint32_t max_epochs;    /* --epochs N, or ZPS_AUTO_MAX_EPOCHS */
    int is_auto;
    int grow_step;           /* auto + norm: the step may grow (WK_AUTO_GROW_*) */
    int grew;                /* the step grew after the previous pass */
    int regrew_pass;         /* this pass was worse after a growth (no diagnostics) */
    float lr_scale;          /* the step's multiple of --lr now */
    int ho_building;        /* this pass picks the held-out rows */
    wk_batch_t ho;          /* the held-out rows (owned) */
    size_t ho_cap_rows, ho_cap_nnz;
    uint64_t *ho_set;       /* their row hashes, open addressing (0 = empty) */
    uint32_t ho_mask;
    uint64_t ho_seen;       /* rows looked at while picking */
    double ho_loss;         /* last holdout logloss (NAN before the first) */
    double label_sum;       /* sum of the trained labels (all passes) */
    int warned_small, warned_large;
};

/* ---- holdout (--epochs auto) ----------------------------------------------
 * A row is identified by a hash of its content (label, ids, values), so the
 * choice does not depend on the order the reader returns rows in (shuffle
 * windows, later passes from the cache).  During the first pass a row whose
 * hash is 0 mod WK_HOLDOUT_EVERY joins the holdout, until WK_HOLDOUT_CAP
 * rows are held; later passes skip exactly the rows whose hash is in the
 * set (rows past the cap are trained on in every pass).  Identical rows
 * share a hash and are all held out. */
#define WK_HOLDOUT_EVERY 20
#define WK_HOLDOUT_CAP 10000
#define WK_AUTO_TOL 1e-3 /* stop when the holdout logloss improves by less, relatively */
#define WK_AUTO_GROW_TOL 0.05 /* double the step when it improves by more (norm) */
#define WK_AUTO_GROW_MAX 16.0f /* ... up to this multiple of --lr */

static uint64_t s_row_hash(const wk_batch_t *b, size_t i)
{
    uint32_t lb;
    memcpy(&lb, &b->labels[i], sizeof lb);
    uint64_t h = zps_mix64(lb, 0x5bd1e9955bd1e995ULL);
    for (size_t j = b->offsets[i]; j < b->offsets[i + 1]; j++) {
        uint32_t vb;
        memcpy(&vb, &b->vals[j], sizeof vb);
        h = zps_mix64(h ^ b->ids[j], 0x27d4eb2f165667c5ULL);
        h = zps_mix64(h ^ vb, 0x94d049bb133111ebULL);
    }
    return h ? h : 1;
}

static int s_ho_has(const wk_trainer_t *t, uint64_t h)
{
    if (!t->ho_set)
        return 0;
    for (uint32_t k = (uint32_t)h & t->ho_mask;; k = (k + 1) & t->ho_mask) {
        if (t->ho_set[k] == h)
            return 1;
        if (t->ho_set[k] == 0)
            return 0;
    }
}

/* First pass: does the row of hash h (not yet in the set) join the
 * holdout?  Its hash is 0 mod WK_HOLDOUT_EVERY, the cap is not reached, and
 * the holdout stays below 1 in WK_HOLDOUT_EVERY of the rows seen (so the
 * first row is always trained on and a tiny shard keeps rows to train on). */
static int s_ho_pick(wk_trainer_t *t, uint64_t h)
{
    t->ho_seen++;
    return h % WK_HOLDOUT_EVERY == 0 && t->ho.n < WK_HOLDOUT_CAP &&
           (t->ho.n + 1) * WK_HOLDOUT_EVERY <= t->ho_seen;
}

/* Row i of b into the holdout (a copy) and its hash into the set. */
static int s_ho_add(wk_trainer_t *t, const wk_batch_t *b, size_t i, uint64_t h)
{
    if (!t->ho_set) {
        t->ho_mask = 4 * WK_HOLDOUT_CAP;
        while (t->ho_mask & (t->ho_mask - 1))
            t->ho_mask &= t->ho_mask - 1;
        t->ho_mask = 2 * t->ho_mask - 1; /* > 4 x the cap: load < 1/4 */
        if (!(t->ho_set = calloc((size_t)t->ho_mask + 1, sizeof *t->ho_set)))
            return ZPS_ENOMEM;
        if (!(t->ho.offsets = calloc(1, sizeof *t->ho.offsets)))
            return ZPS_ENOMEM;
    }
    wk_batch_t *o = &t->ho;
    size_t k = b->offsets[i + 1] - b->offsets[i], nnz = o->offsets[o->n];
    if (o->n + 1 > t->ho_cap_rows) {
        size_t cap = t->ho_cap_rows ? 2 * t->ho_cap_rows : 256;
        float *l = realloc(o->labels, cap * sizeof *l);
        if (l)
            o->labels = l;
        size_t *of = realloc(o->offsets, (cap + 1) * sizeof *of);
        if (of)
            o->offsets = of;
        if (!l || !of)
            return ZPS_ENOMEM;
        t->ho_cap_rows = cap;
    }
    if (nnz + k > t->ho_cap_nnz) {
        size_t cap = t->ho_cap_nnz ? t->ho_cap_nnz : 4096;
        while (cap < nnz + k)
            cap *= 2;
        uint64_t *id = realloc(o->ids, cap * sizeof *id);
        if (id)
            o->ids = id;
        float *v = realloc(o->vals, cap * sizeof *v);
        if (v)
            o->vals = v;
        if (!id || !v)
            return ZPS_ENOMEM;
        t->ho_cap_nnz = cap;
    }
    memcpy(o->ids + nnz, b->ids + b->offsets[i], k * sizeof *o->ids);
    memcpy(o->vals + nnz, b->vals + b->offsets[i], k * sizeof *o->vals);
    o->labels[o->n] = b->labels[i];
    o->offsets[++o->n] = nnz + k;
    uint32_t s = (uint32_t)h & t->ho_mask;
    while (t->ho_set[s] && t->ho_set[s] != h)
        s = (s + 1) & t->ho_mask;
    t->ho_set[s] = h;
    return 0;
}

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
            uint64_t h = s_row_hash(in, i);
            if (s_ho_has(t, h))
                continue;
            if (t->ho_building && s_ho_pick(t, h)) {
                if (s_ho_add(t, in, i, h))
                    return ZPS_ENOMEM;
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

static int s_split_servers(wk_trainer_t *t, char *err, size_t errlen)
{
    if (!t->conf->servers || !*t->conf->servers) {
        snprintf(err, errlen, "no servers given (--servers A,B,...; zps-launch sets it)");
        return ZPS_EINVAL;
    }
    t->servers_buf = strdup(t->conf->servers);
    size_t n = 1;
    for (const char *p = t->conf->servers; *p; p++)
        n += *p == ',';
    t->servers = calloc(n, sizeof *t->servers);
    if (!t->servers_buf || !t->servers)
        return ZPS_ENOMEM;
    char *save = NULL;
    for (char *tok = strtok_r(t->servers_buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        t->servers[t->nservers++] = tok;
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

static void s_on_notice(void *ctx, const char *text)
{
    wk_trainer_t *t = ctx;
    zps_warn(t->log, "%s", text);
}

static void s_on_wait(void *ctx, uint32_t server, const char *addr, double waited)
{
    wk_trainer_t *t = ctx;
    zps_warn(t->log, "waiting for server %u at %s: no answer for %.0f s, retrying (gives up after "
             "--server-timeout %.0f s)", server, addr, waited, t->conf->server_timeout);
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
    t->lr_scale = 1.0f;
    {
        zps_optim_conf_t oc;
        zps_conf_table(conf, &oc);
        t->grow_step = t->is_auto && oc.kind == ZPS_OPT_NORM;
    }
    if (conf->ntrain == 0) {
        snprintf(err, errlen, "no training data (--train PATH)");
        goto fail;
    }
    if (!conf->local && s_split_servers(t, err, errlen))
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
    if (conf->compress_audit && !(t->audit = zps_table_new(t->pdim, 1 << 16))) {
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

    wk_client_conf_t cc;
    wk_client_conf_defaults(&cc);
    cc.servers = t->servers;
    cc.nservers = t->nservers;
    cc.rank = conf->rank;
    cc.connect_timeout_ms = (int)(conf->connect_timeout * 1000);
    cc.timeout_ms = (int)(conf->request_timeout * 1000);
    cc.push_codec = conf->push_codec;
    cc.pull_codec = conf->pull_codec;
    cc.key_cache = conf->key_cache;
    cc.seed = conf->seed;
    cc.retry_ms = 2000;
    cc.server_timeout_ms = (int)(conf->server_timeout * 1000);
    cc.max_retained_bytes = (uint64_t)(conf->max_retained_mb * 1048576.0);
    cc.on_wait = s_on_wait;
    cc.on_notice = s_on_notice;
    cc.on_wait_ctx = t;
    if (conf->consistency != ZPS_CONS_ASYNC)
        cc.pull_retry_ms = (int)(conf->heartbeat_timeout * 2000); /* held pulls wait by design */
    if (conf->consistency != ZPS_CONS_ASYNC) {
        cc.sync_all = 1;
        cc.heartbeat_ms = (int)(conf->heartbeat_timeout * 1000 / 4);
        if (cc.heartbeat_ms < 50)
            cc.heartbeat_ms = 50;
        /* a held pull may legitimately wait for the slowest worker */
        if (cc.timeout_ms < (int)(conf->heartbeat_timeout * 2000))
            cc.timeout_ms = (int)(conf->heartbeat_timeout * 2000);
    }
    zps_curve_pair_t mine, theirs;
    if (conf->curve_secret || conf->server_public) {
        if (!conf->curve_secret || !conf->server_public) {
            snprintf(err, errlen, "CURVE needs both --curve-secret and --server-public");
            goto fail;
        }
        if (zps_curve_read(conf->curve_secret, &mine, err, errlen) ||
            zps_curve_read(conf->server_public, &theirs, err, errlen))
            goto fail;
        if (!mine.secret_z85[0]) {
            snprintf(err, errlen, "%s has no secret key (use the .key file)", conf->curve_secret);
            goto fail;
        }
        cc.curve_public = mine.public_z85;
        cc.curve_secret = mine.secret_z85;
        cc.server_public = theirs.public_z85;
    }
    zps_optim_conf_t local_opt;
    char local_job[128];
    if (conf->local) {
        zps_conf_table(conf, &local_opt);
        zps_conf_job_desc(conf, local_job, sizeof local_job);
        cc.local = &local_opt;
        cc.local_job = local_job;
    }
    char cerr[512];
    t->client = wk_client_new(&cc, cerr, sizeof cerr);
    if (!t->client) {
        snprintf(err, errlen, "%s", cerr);
        goto fail;
    }
    /* the servers must run the table this worker's options describe */
    zps_optim_conf_t want;
    char wdesc[256];
    zps_conf_table(conf, &want);
    zps_optim_describe(&want, wdesc, sizeof wdesc);
    char jdesc[128];
    zps_conf_job_desc(conf, jdesc, sizeof jdesc);
    if (strcmp(wk_client_job(t->client), jdesc) != 0) {
        snprintf(err, errlen,
                 "the servers run '%s' but this worker's options give '%s': start servers and "
                 "workers with the same training options",
                 wk_client_job(t->client), jdesc);
        goto fail;
    }
    const wk_table_info_t *have = wk_client_table(t->client, 0);
    if (strcmp(have->options, wdesc) != 0) {
        snprintf(err, errlen,
                 "the servers run table '%s' but this worker's options give '%s': start servers "
                 "and workers with the same training options",
                 have->options, wdesc);
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
    wk_client_destroy(&t->client);
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
    zps_table_destroy(&t->audit);
    free(t->ho.labels);
    free(t->ho.offsets);
    free(t->ho.ids);
    free(t->ho.vals);
    free(t->ho_set);
    free(t->servers);
    free(t->servers_buf);
    free(t);
    *tp = NULL;
}

const wk_eval_t *wk_trainer_last_eval(const wk_trainer_t *t) { return &t->eval; }

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
    t->keys_pulled += s->nkeys;
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
    t->loss_total += loss;
    t->rows_total += s->b.n;
    for (size_t i = 0; i < s->b.n; i++)
        t->label_sum += s->b.labels[i];
    while (t->push_count >= t->conf->max_delay)
        if ((rc = s_wait_push(t)) != 0)
            return rc;
    uint64_t ticket;
    wk_push_meta_t meta = {(uint32_t)s->b.n, t->classes > 1, s->tick, NULL, t->epoch,
                           t->rows_acked};
    if (t->audit) {
        for (size_t i = 0; i < s->nkeys; i++) {
            float *row = zps_table_upsert(t->audit, s->keys[i], NULL);
            if (!row)
                return ZPS_ENOMEM;
            for (uint32_t j = 0; j < t->pdim; j++)
                row[j] += s->g[i * t->pdim + j];
        }
    }
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
    t->keys_pushed += pn;
    t->push_raw += s->nkeys * (8 + 4 * (uint64_t)t->pdim); /* before sparsification */
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
    double now = zps_now_s();
    if (!force && now - t->t_last < t->conf->progress_every)
        return;
    double dt = now - t->t_last;
    uint64_t rows = t->rows_total - t->rows_last;
    double loss = rows ? (t->loss_total - t->loss_last) / (double)rows : 0;
    uint64_t sent, recv, praw, pwire, resends;
    wk_client_traffic(t->client, &sent, &recv);
    wk_client_push_bytes(t->client, &praw, &pwire, &resends);
    praw = t->push_raw;
    /* ETA from this epoch's progress and the elapsed time (auto: of this pass) */
    double frac = t->is_auto ? wk_reader_progress(t->reader)
                             : ((double)epoch + wk_reader_progress(t->reader)) / t->conf->epochs;
    double elapsed = now - (t->is_auto ? t->t_pass : t->t_start);
    char eta[48] = "?", ep[32], ho[40] = "";
    if (frac > 0.001)
        snprintf(eta, sizeof eta, "%.0fs%s", elapsed / frac - elapsed,
                 t->is_auto ? " (this pass)" : "");
    s_epoch_name(t, epoch, ep, sizeof ep);
    if (t->is_auto && !isnan(t->ho_loss))
        snprintf(ho, sizeof ho, " | holdout loss %.5f", t->ho_loss);
    wk_client_retry_stats_t rs;
    wk_client_retry_stats(t->client, &rs);
    zps_info(t->log,
             "epoch %s %5.1f%% | %.0f ex/s | train loss %.5f%s | keys pulled %llu pushed %llu | "
             "MB sent %.1f recv %.1f | push %.2f B/key, %.1fx | retained %.1f MB | ETA %s",
             ep, 100.0 * wk_reader_progress(t->reader),
             dt > 0 ? (double)rows / dt : 0.0, loss, ho, (unsigned long long)t->keys_pulled,
             (unsigned long long)t->keys_pushed, (double)sent / 1e6, (double)recv / 1e6,
             t->keys_pulled ? (double)pwire / (double)t->keys_pulled : 0.0,
             pwire ? (double)praw / (double)pwire : 0.0, (double)rs.retained_bytes / 1e6, eta);
    t->t_last = now;
    t->rows_last = t->rows_total;
    t->loss_last = t->loss_total;
}

/* Score the test file with the current weights (worker 0). */
static int s_evaluate(wk_trainer_t *t, int write_predictions)
{
    const zps_conf_t *c = t->conf;
    wk_data_conf_t dc;
    s_data_conf(c, &dc, 1);
    char err[512];
    wk_reader_t *r = wk_reader_new(&dc, err, sizeof err);
    if (!r) {
        zps_error(t->log, "test data: %s", err);
        return ZPS_EINVAL;
    }
    FILE *out = NULL;
    zps_out_t *po = NULL; /* through the atomic writer: whole at the end, or the old file */
    if (write_predictions && c->test_predictions) {
        if (!(po = zps_out_open(c->test_predictions, err, sizeof err))) {
            zps_error(t->log, "--test-predictions: %s", err);
            wk_reader_destroy(&r);
            return ZPS_EIO;
        }
        out = zps_out_file(po);
    }
    wk_metrics_t *m = wk_metrics_new(t->classes);
    wk_slot_t *s = &t->slot[0];
    float *prob = NULL;
    uint32_t *cls = NULL;
    size_t cap = 0;
    int rc = 0;
    double spread = 0;
    wk_batch_t b;
    long n;
    while ((n = wk_reader_next(r, 1000, &b)) > 0) {
        const uint64_t *keys;
        size_t nk = wk_model_keys(s->model, &b, &keys);
        if ((rc = s_slot_buffers(s, nk, t->pdim)) != 0)
            break;
        if ((rc = wk_client_pull(t->client, 0, keys, nk, s->w)) != 0) {
            s_fail(t, rc, "pull for the test set failed");
            break;
        }
        if ((size_t)n > cap) {
            cap = (size_t)n;
            prob = realloc(prob, cap * sizeof *prob);
            cls = realloc(cls, cap * sizeof *cls);
        }
        double loss = wk_model_predict(s->model, &b, s->w, prob, cls);
        wk_metrics_add_preds(m, (size_t)n, b.labels, prob, cls, loss);
        for (long i = 0; i < n; i++) {
            spread += fabs(prob[i] - 0.5);
            if (out) {
                if (t->classes > 1)
                    fprintf(out, "%u\n", cls[i]);
                else
                    fprintf(out, "%.9g\n", (double)prob[i]);
            }
        }
    }
    if (n < 0) {
        zps_error(t->log, "test data: %s", wk_reader_error(r));
        rc = (int)n;
    }
    if (!rc) {
        t->eval.rows = wk_metrics_count(m);
        t->eval.logloss = wk_metrics_logloss(m);
        t->eval.auc = t->classes > 1 ? NAN : wk_metrics_auc(m);
        t->eval.accuracy = wk_metrics_accuracy(m);
        t->eval.spread = t->eval.rows ? spread / (double)t->eval.rows : NAN;
    }
    if (po && zps_out_close(&po, rc == 0, err, sizeof err) != 0) {
        zps_error(t->log, "--test-predictions: %s", err);
        rc = ZPS_EIO;
    }
    free(prob);
    free(cls);
    wk_metrics_destroy(&m);
    wk_reader_destroy(&r);
    return rc;
}

/* Score the holdout with the current weights: logloss, AUC (binary) and
 * the rate of label 1 in *pos_rate. */
static int s_holdout_eval(wk_trainer_t *t, wk_eval_t *ev, double *pos_rate)
{
    wk_metrics_t *m = wk_metrics_new(t->classes);
    wk_slot_t *s = &t->slot[0];
    float *prob = malloc(1000 * sizeof *prob);
    uint32_t *cls = malloc(1000 * sizeof *cls);
    int rc = m && prob && cls ? 0 : ZPS_ENOMEM;
    double pos = 0, spread = 0;
    for (size_t i0 = 0; i0 < t->ho.n && !rc; i0 += 1000) {
        wk_batch_t b = {t->ho.n - i0 < 1000 ? t->ho.n - i0 : 1000, t->ho.labels + i0,
                        t->ho.offsets + i0, t->ho.ids, t->ho.vals};
        const uint64_t *keys;
        size_t nk = wk_model_keys(s->model, &b, &keys);
        if ((rc = s_slot_buffers(s, nk, t->pdim)) != 0)
            break;
        if ((rc = wk_client_pull(t->client, 0, keys, nk, s->w)) != 0) {
            s_fail(t, rc, "pull for the holdout failed");
            break;
        }
        double loss = wk_model_predict(s->model, &b, s->w, prob, cls);
        wk_metrics_add_preds(m, b.n, b.labels, prob, cls, loss);
        for (size_t i = 0; i < b.n; i++) {
            pos += b.labels[i];
            spread += fabs(prob[i] - 0.5);
        }
    }
    if (!rc) {
        ev->rows = wk_metrics_count(m);
        ev->logloss = wk_metrics_logloss(m);
        ev->auc = t->classes > 1 ? NAN : wk_metrics_auc(m);
        ev->accuracy = wk_metrics_accuracy(m);
        ev->spread = t->ho.n ? spread / (double)t->ho.n : NAN;
        *pos_rate = t->ho.n ? pos / (double)t->ho.n : NAN;
    }
    free(prob);
    free(cls);
    wk_metrics_destroy(&m);
    return rc;
}

/* Logloss of always predicting the rate q of label 1 (binary). */
static double s_rate_loss(double q)
{
    if (!(q > 0 && q < 1))
        return 0;
    return -(q * log(q) + (1 - q) * log(1 - q));
}

/* Step-size diagnostics after a pass (binary models; each said once).
 * train: this pass's mean train loss, q_train its rate of label 1; ev, q:
 * the holdout's (or the test set's) metrics and label rate (NULL / NAN if
 * none).  With h the loss of always predicting the label rate:
 *   too large: holdout (or test) loss > 1.5 h, or without either the
 *              train loss (a constant does much better: the weights
 *              overshoot);
 *   too small: the logloss is still >= h while the model ranks
 *              (AUC >= 0.7), or ranks a little (AUC >= 0.55) with timid
 *              predictions (mean |p - 0.5| < 0.1: the bias is not even
 *              learnt); with --epochs auto also: still improving at the
 *              last pass (said where the run stops). */
static void s_diagnose(wk_trainer_t *t, uint32_t epoch, double train, double q_train,
                       const wk_eval_t *ev, double q)
{
    double loss = ev ? ev->logloss : NAN, auc = ev ? ev->auc : NAN;
    double spread = ev ? ev->spread : NAN;
    if (t->classes > 1)
        return;
    double h_train = s_rate_loss(q_train), h = isnan(q) ? NAN : s_rate_loss(q);
    double lr = s_lr(t), def = s_default_lr(t);
    char held[48] = "";
    if (!isnan(loss))
        snprintf(held, sizeof held, " (held-out %.4f)", loss);
    /* with held-out metrics only they count: the first pass's train loss
     * includes the transient of the first batches */
    int large = isnan(loss) ? h_train > 0 && train > 1.5 * h_train : h > 0 && loss > 1.5 * h;
    if (!t->warned_large && large) {
        t->warned_large = 1;
        zps_warn(t->log, "the loss diverges: after pass %u the train loss is %.4f%s, far above "
                 "%.4f, the loss of always predicting the label rate: the step size is too "
                 "large, lower --lr (now %g; the default is %g)", epoch + 1, train, held,
                 h_train, lr, def);
    }
    if (!t->warned_small && !t->warned_large && h > 0 && loss >= h &&
        (auc >= 0.7 || (auc >= 0.55 && spread < 0.1))) {
        t->warned_small = 1;
        zps_warn(t->log, "the step size looks too small: after pass %u the AUC is %.3f but the "
                 "logloss %.4f is no better than %.4f, the loss of always predicting the label "
                 "rate (predictions too timid): raise --lr (now %g; the default is %g)",
                 epoch + 1, auc, loss, h, lr, def);
    }
}

/* --compress-audit: "key raw_sum... residual..." per key, for tests that
 * check that no gradient mass is dropped. */
static int s_write_audit(wk_trainer_t *t)
{
    char err[512];
    zps_out_t *o = zps_out_open(t->conf->compress_audit, err, sizeof err);
    if (!o) {
        zps_error(t->log, "--compress-audit: %s", err);
        return ZPS_EIO;
    }
    FILE *f = zps_out_file(o);
    size_t cursor = 0;
    uint64_t key;
    float *row, resid[2 * 1024 + 1];
    while (zps_table_next(t->audit, &cursor, &key, &row)) {
        if (t->sparse)
            wk_sparsify_residual(t->sparse, key, resid);
        else
            memset(resid, 0, t->pdim * sizeof(float));
        fprintf(f, "%llu", (unsigned long long)key);
        for (uint32_t j = 0; j < t->pdim; j++)
            fprintf(f, " %.9g", (double)row[j]);
        for (uint32_t j = 0; j < t->pdim; j++)
            fprintf(f, " %.9g", (double)resid[j]);
        fputc('\n', f);
    }
    if (zps_out_close(&o, 1, err, sizeof err) != 0) {
        zps_error(t->log, "--compress-audit: %s", err);
        return ZPS_EIO;
    }
    return 0;
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
    wk_batch_t b;
    long n;
    int rc = 0;
    while (!rc && t->ho.n < WK_HOLDOUT_CAP && (n = wk_reader_next(r, 1000, &b)) > 0)
        for (size_t i = 0; i < b.n && !rc && t->ho.n < WK_HOLDOUT_CAP; i++) {
            uint64_t h = s_row_hash(&b, i);
            if (!s_ho_has(t, h) && s_ho_pick(t, h))
                rc = s_ho_add(t, &b, i, h);
        }
    wk_reader_destroy(&r);
    return rc;
}

int wk_trainer_run(wk_trainer_t *t, volatile sig_atomic_t *stop)
{
    const zps_conf_t *c = t->conf;
    t->t_start = t->t_last = zps_now_s();
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
                     (unsigned long long)t->ho.n);
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
    double best = INFINITY;
    uint32_t best_pass = 0;
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
        uint64_t rows0 = t->rows_total;
        double loss0 = t->loss_total, labels0 = t->label_sum;
        double t0 = zps_now_s();
        int cur = 0;
        long n = s_fill(t, &t->slot[cur]);
        if (n == 0 && e == first_epoch && t->rows_acked == 0 && t->rows_total == 0) {
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
        uint64_t rows = t->rows_total - rows0;
        double train = rows ? (t->loss_total - loss0) / (double)rows : 0.0;
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
        wk_eval_t dev = {NAN, NAN, NAN, NAN, 0};
        int have_dev = 0;
        double dq = NAN;
        if (t->is_auto) {
            if (t->ho_building) {
                t->ho_building = 0;
                zps_info(t->log, "holdout: %llu rows of this worker's data (every %uth by content, "
                         "at most %u), never trained on", (unsigned long long)t->ho.n,
                         WK_HOLDOUT_EVERY, WK_HOLDOUT_CAP);
            }
            if (t->ho.n == 0) {
                zps_info(t->log, "stopping after pass %u: no holdout rows in this worker's data "
                         "(--epochs N sets the number of passes)", e + 1);
                last = 1;
            } else {
                wk_eval_t hv;
                if ((rc = s_holdout_eval(t, &hv, &dq)) != 0)
                    break;
                t->ho_loss = hv.logloss;
                dev = hv;
                have_dev = 1;
                int improved = hv.logloss < best * (1 - WK_AUTO_TOL);
                if (t->classes > 1)
                    zps_info(t->log, "epoch %s holdout: logloss %.5f accuracy %.4f (%llu rows)", ep,
                             hv.logloss, hv.accuracy, (unsigned long long)hv.rows);
                else
                    zps_info(t->log, "epoch %s holdout: logloss %.5f auc %.5f (%llu rows)", ep,
                             hv.logloss, hv.auc, (unsigned long long)hv.rows);
                /* a holdout still falling fast after the first pass: the
                 * step is too small for this data, so it doubles (norm only;
                 * at most WK_AUTO_GROW_MAX x); if the next pass is then no
                 * better, the step goes back, grows no more, and training
                 * goes on (docs/architecture.md) */
                if (t->grew && !improved) {
                    t->lr_scale /= 2;
                    t->grow_step = 0;
                    wk_client_set_lr_scale(t->client, t->lr_scale);
                    zps_info(t->log, "holdout logloss %.5f after the doubled step is no better "
                             "than %.5f: step back to %g x --lr %g, no more growth", hv.logloss,
                             best, (double)t->lr_scale, (double)s_lr(t));
                    t->regrew_pass = 1;
                }
                t->grew = 0;
                if (t->grow_step && e > first_epoch && hv.logloss < best * (1 - WK_AUTO_GROW_TOL) &&
                    t->lr_scale * 2 <= WK_AUTO_GROW_MAX && e + 1 < max_epochs) {
                    t->lr_scale *= 2;
                    t->grew = 1;
                    wk_client_set_lr_scale(t->client, t->lr_scale);
                    zps_info(t->log, "holdout logloss fell %.1f%% in pass %u (more than %g%%): "
                             "step doubled, now %g x --lr %g (--epochs N keeps it fixed)",
                             100 * (1 - hv.logloss / best), e + 1, 100 * WK_AUTO_GROW_TOL,
                             (double)t->lr_scale, (double)s_lr(t));
                }
                if (t->regrew_pass && e + 1 < max_epochs) {
                    /* not a stop: the pass after the step went back decides */
                } else if (e > first_epoch && !improved) {
                    zps_info(t->log, "stopping after %u passes: holdout logloss %.5f did not "
                             "improve by %g%% on the best, %.5f after pass %u (--epochs auto; "
                             "--epochs N sets the number of passes)", e + 1, hv.logloss,
                             100 * WK_AUTO_TOL, best, best_pass + 1);
                    last = 1;
                } else if (e + 1 == max_epochs) {
                    zps_info(t->log, "stopping after %u passes: the most --epochs auto makes "
                             "(holdout logloss %.5f, still improving)", e + 1, hv.logloss);
                    if (t->classes == 1 && !t->warned_small) {
                        t->warned_small = 1;
                        zps_warn(t->log, "the holdout loss was still improving after %u passes: "
                                 "the step size may be too small: raise --lr (now %g), or set "
                                 "--epochs N", e + 1, (double)s_lr(t));
                    }
                }
                if (hv.logloss < best) {
                    best = hv.logloss;
                    best_pass = e;
                }
            }
        }
        if (c->rank == 0 && c->test) {
            if ((rc = s_evaluate(t, last)) != 0)
                break;
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
        if (!t->regrew_pass) /* a pass spoiled by a doubled step is not the user's --lr */
            s_diagnose(t, e, train, q_train, have_dev ? &dev : NULL, dq);
        t->regrew_pass = 0;
        if (last)
            break;
    }
    while (t->push_count && !rc)
        rc = s_wait_push(t);
    if (c->consistency != ZPS_CONS_ASYNC && !rc && (rc = wk_client_done(t->client)) != 0)
        s_fail(t, rc, "leaving the clock failed");
    if (t->audit && !rc)
        rc = s_write_audit(t);
    uint64_t bad = wk_reader_bad_lines(t->reader);
    if (bad)
        zps_warn(t->log, "skipped %llu bad lines in the training data", (unsigned long long)bad);
    double dt = zps_now_s() - t->t_start;
    uint64_t sent, recv, praw, pwire, resends;
    wk_client_traffic(t->client, &sent, &recv);
    wk_client_push_bytes(t->client, &praw, &pwire, &resends);
    praw = t->push_raw;
    zps_info(t->log, "%s: %llu rows in %.1fs (%.0f ex/s), %llu keys pulled, %llu pushed",
             rc ? "stopped" : "finished", (unsigned long long)t->rows_total, dt,
             dt > 0 ? t->rows_total / dt : 0.0, (unsigned long long)t->keys_pulled,
             (unsigned long long)t->keys_pushed);
    zps_info(t->log,
             "traffic: %.1f MB sent, %.1f MB received, %.1f B/example; pushes %.1f MB raw "
             "(12 B per key/value) -> %.1f MB on the wire (%.1fx, %.2f B/key)%s",
             (double)sent / 1e6, (double)recv / 1e6,
             t->rows_total ? (double)(sent + recv) / (double)t->rows_total : 0.0,
             (double)praw / 1e6, (double)pwire / 1e6, pwire ? (double)praw / (double)pwire : 0.0,
             t->keys_pulled ? (double)pwire / (double)t->keys_pulled : 0.0,
             resends ? ", some key lists resent (cache misses or retries)" : "");
    if (!c->local) {
        char acks[512];
        int n = 0;
        for (uint32_t sv = 0; sv < t->nservers && n < (int)sizeof acks - 24; sv++)
            n += snprintf(acks + n, sizeof acks - (size_t)n, "%s%llu", sv ? "," : "",
                          (unsigned long long)wk_client_acked(t->client, sv));
        zps_info(t->log, "pushes acknowledged per server: %s", acks);
        wk_client_retry_stats_t rs;
        wk_client_retry_stats(t->client, &rs);
        zps_info(t->log,
                 "pushes: %llu acknowledged, %llu retried, %llu resent after %llu server "
                 "restart(s), %llu probes; retained %.1f MB now (%llu pushes), peak %.1f MB "
                 "(%llu bytes); %llu waits for a checkpoint (%.1f s); %llu duplicate acks, %llu "
                 "stale replies ignored; pull retries %llu",
                 (unsigned long long)rs.acked, (unsigned long long)rs.retried,
                 (unsigned long long)rs.restart_resent, (unsigned long long)rs.restarts,
                 (unsigned long long)rs.probes, (double)rs.retained_bytes / 1e6,
                 (unsigned long long)rs.retained_pushes, (double)rs.retained_peak / 1e6,
                 (unsigned long long)rs.retained_peak, (unsigned long long)rs.cap_waits,
                 (double)rs.cap_wait_ms / 1000.0, (unsigned long long)rs.dup_acks,
                 (unsigned long long)rs.stale_replies, (unsigned long long)rs.pull_retried);
    }
    return rc;
}
