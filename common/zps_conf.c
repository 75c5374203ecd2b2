/* zps_conf: parsing of the training options shared by servers and workers.
 * See zps_conf.h.  Defaults that depend on the model are filled in by
 * zps_conf_finish, after every option has been seen. */
#include "zps_conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zps_args.h"
#include "zps_err.h"

void zps_conf_defaults(zps_conf_t *c)
{
    memset(c, 0, sizeof *c);
    c->model = ZPS_MODEL_LR;
    c->fm_dim = 8;
    c->init_scale = -1;
    c->seed = 1;
    c->shuffle_buffer = 200000;
    c->lr = c->l1 = c->l2 = c->beta = c->eps = -1;
    c->epochs = 0; /* auto */
    c->max_delay = 4;
    c->progress_every = 5;
    c->connect_timeout = 30;
    c->request_timeout = 60;
    c->num_workers = 1;
    c->clock_every = 1;
    c->heartbeat_timeout = 30;
    c->slow_worker = -1;
    c->checkpoint_every = 60;
    c->checkpoint_keep = 3;
    c->server_timeout = 120;
    c->max_retained_mb = 256;
    c->slow_factor = 1;
}

int zps_conf_job_desc(const zps_conf_t *c, char *buf, size_t len)
{
    char cons[32];
    if (c->consistency == ZPS_CONS_SSP)
        snprintf(cons, sizeof cons, "ssp:%u", c->staleness);
    else
        snprintf(cons, sizeof cons, "%s", c->consistency == ZPS_CONS_BSP ? "bsp" : "async");
    if (c->consistency == ZPS_CONS_ASYNC) /* servers do not track async workers */
        return snprintf(buf, len, "consistency=async");
    return snprintf(buf, len, "consistency=%s,workers=%u", cons, c->num_workers);
}

/* --compress: comma-separated items, see zps_conf_usage. */
static int s_parse_compress(zps_conf_t *c, const char *spec)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    c->push_codec = c->pull_codec = 0;
    c->key_cache = 0;
    c->sparse_mode = 0;
    c->sparse_momentum = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!strcmp(tok, "none")) continue;
        else if (!strcmp(tok, "fp16")) c->push_codec = 1;
        else if (!strcmp(tok, "int8")) c->push_codec = 2;
        else if (!strcmp(tok, "pull-fp16")) c->pull_codec = 1;
        else if (!strcmp(tok, "pull-int8")) c->pull_codec = 2;
        else if (!strcmp(tok, "keycache")) c->key_cache = 1;
        else if (!strncmp(tok, "topk:", 5)) {
            if (zps_parse_float(tok + 5, &c->sparse_ratio) || c->sparse_ratio <= 0 || c->sparse_ratio > 1)
                return ZPS_EINVAL;
            c->sparse_mode = 1;
        } else if (!strncmp(tok, "threshold:", 10)) {
            if (zps_parse_float(tok + 10, &c->sparse_threshold) || c->sparse_threshold < 0)
                return ZPS_EINVAL;
            c->sparse_mode = 2;
        } else if (!strncmp(tok, "momentum:", 9)) {
            if (zps_parse_float(tok + 9, &c->sparse_momentum) || c->sparse_momentum < 0 ||
                c->sparse_momentum >= 1)
                return ZPS_EINVAL;
        } else
            return ZPS_EINVAL;
    }
    if (c->sparse_momentum > 0 && !c->sparse_mode)
        return ZPS_EINVAL;
    return 0;
}

const char *zps_model_name(zps_model_kind_t m)
{
    return m == ZPS_MODEL_LR ? "lr" : m == ZPS_MODEL_FM ? "fm" : "mlp";
}

const char *zps_conf_usage(void)
{
    return "training options (the same list goes to servers and workers):\n"
           "  --model lr|fm|mlp        model                                   [lr]\n"
           "  --dim K                  fm embedding size                       [8]\n"
           "  --layers A,B,...,C       mlp layer widths: input, hidden..., classes\n"
           "  --init-scale X           initial embedding scale (fm)  [norm 0.01, else 0.1]\n"
           "  --seed N                 seed of initial weights, shuffling      [1]\n"
           "  --hash-bits B            hash feature ids into [0, 2^B)          [off]\n"
           "  --optimizer NAME         norm|sgd|adagrad|ftrl|adam  [lr, fm: norm; mlp: adam]\n"
           "                           (norm: adaptive steps normalised by each feature's\n"
           "                           largest |x|, the same for any feature scaling)\n"
           "  --lr X                   step size (ftrl: alpha)\n"
           "                           [norm 0.07, ftrl 0.05, adagrad 0.05, adam 0.001 (mlp 0.0005),\n"
           "                           sgd: 0.001 for lr/fm (batch-sum gradients), 0.1 for mlp]\n"
           "  --l1 X --l2 X            regularisation                          [0]\n"
           "  --beta X                 ftrl beta                               [1]\n"
           "  --eps X                  adagrad/adam epsilon\n"
           "  --train PATH             training data: file, glob or directory (repeatable)\n"
           "  --test FILE              scored at the end of every epoch by worker 0\n"
           "  --format libsvm|criteo|idx|auto                                  [auto]\n"
           "                           idx: --train/--test IMAGES[,LABELS] (MNIST IDX files,\n"
           "                           gzip or not; LABELS found by the MNIST naming if left\n"
           "                           out; auto-detected by the images file's header)\n"
           "  --cache-dir DIR          where parsed-data caches go   [next to the input]\n"
           "  --no-cache               always parse the text\n"
           "  --skip-bad-lines         count and skip malformed lines instead of stopping\n"
           "  --shuffle-buffer N       shuffle rows within windows of N rows   [200000]\n"
           "                           (0: contiguous shard in file order, no shuffling)\n"
           "  --epochs N|auto          passes over the data; auto: hold out 1 row in 20\n"
           "                           (by content, at most 10000 per worker), score it\n"
           "                           after each pass, stop when its logloss improves by\n"
           "                           less than 0.1% (at most 30 passes)\n"
           "                                                     [lr/fm auto, mlp 30]\n"
           "  --max-train-seconds S    a time budget: the pass that ends past S s of\n"
           "                           training is the last (a success)       [none]\n"
           "  --batch N                rows per minibatch          [lr/fm 500, mlp 100]\n"
           "  --max-delay N            pushes in flight without acknowledgement [4]\n"
           "  --consistency async|ssp:N|bsp                                    [async]\n"
           "  --clock-every N          batches per clock (ssp, bsp)            [1]\n"
           "  --heartbeat-timeout S    a silent worker leaves the clock after S seconds [30]\n"
           "  --compress LIST          none | comma list of: fp16, int8 (push values),\n"
           "                           pull-fp16, pull-int8, keycache, topk:R, threshold:T,\n"
           "                           momentum:M (with topk/threshold)        [none]\n"
           "  --compress-audit FILE    write per-key gradient/residual sums (tests)\n"
           "  --slow-worker R --slow-factor F   make worker R take F times as long per\n"
           "                           batch (experiments with stragglers)\n"
           "  --progress-every SECONDS                                         [5]\n"
           "  --connect-timeout SECONDS  time to reach every server at start   [30]\n"
           "  --request-timeout SECONDS  time a pull or push may wait          [60]\n"
           "  --test-predictions FILE  worker 0 writes its final test probabilities here\n"
           "  --checkpoint-dir DIR     servers write checkpoints (weights, optimizer state,\n"
           "                           worker progress) here\n"
           "  --checkpoint-every S     seconds between checkpoints             [60]\n"
           "  --checkpoint-keep K      checkpoints kept per server             [3]\n"
           "  --server-timeout S       workers retry a silent server for S seconds [120]\n"
           "  --max-retained-mb M      workers keep each push until a server checkpoint holds\n"
           "                           it (resent if the server restarts); past M MB new\n"
           "                           pushes wait for a checkpoint; 0: keep a push only\n"
           "                           until it is acknowledged                [256]\n"
           "  --curve-secret FILE      CURVE key pair of this process (zps-keygen NAME.key)\n"
           "  --allow-dir DIR          servers: accept only clients whose NAME.pub is in DIR\n"
           "  --server-public FILE     workers: the servers' public key (NAME.pub)\n"
           "  --servers A,B,...        server endpoints (set by zps-launch)\n"
           "  --coordinator EP         a replicated job: zps-coord's endpoint (tcp://HOST:PORT);\n"
           "                           servers beat to it and serve only while it grants them a\n"
           "                           lease, workers take the range table from it and fail\n"
           "                           over when it removes a server (zps-launch --replicas)\n"
           "  --local                  zps-worker only: train in one process against an\n"
           "                           in-process store (the single-machine baseline)\n"
           "  --rank R --num-workers W this worker's rank and the worker count\n";
}

static int s_parse_layers(zps_conf_t *c, const char *s)
{
    c->nlayers = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        uint32_t v;
        if (c->nlayers >= ZPS_MAX_LAYERS || zps_parse_u32(tok, &v) || v == 0)
            return ZPS_EINVAL;
        c->layers[c->nlayers++] = v;
    }
    return c->nlayers >= 2 ? 0 : ZPS_EINVAL;
}

/* The training options, written once: the mains hand this table to
 * getopt_long (through zps_getopt) and give every match to zps_conf_set. */
#define S_V required_argument
static const struct option s_options[] = {
    {"model", S_V, 0, ZPS_CONF_OPT}, {"dim", S_V, 0, ZPS_CONF_OPT},
    {"layers", S_V, 0, ZPS_CONF_OPT}, {"init-scale", S_V, 0, ZPS_CONF_OPT},
    {"seed", S_V, 0, ZPS_CONF_OPT}, {"hash-bits", S_V, 0, ZPS_CONF_OPT},
    {"optimizer", S_V, 0, ZPS_CONF_OPT}, {"lr", S_V, 0, ZPS_CONF_OPT},
    {"l1", S_V, 0, ZPS_CONF_OPT}, {"l2", S_V, 0, ZPS_CONF_OPT},
    {"beta", S_V, 0, ZPS_CONF_OPT}, {"eps", S_V, 0, ZPS_CONF_OPT},
    {"train", S_V, 0, ZPS_CONF_OPT}, {"test", S_V, 0, ZPS_CONF_OPT},
    {"format", S_V, 0, ZPS_CONF_OPT}, {"cache-dir", S_V, 0, ZPS_CONF_OPT},
    {"no-cache", no_argument, 0, ZPS_CONF_OPT},
    {"skip-bad-lines", no_argument, 0, ZPS_CONF_OPT},
    {"shuffle-buffer", S_V, 0, ZPS_CONF_OPT}, {"epochs", S_V, 0, ZPS_CONF_OPT},
    {"max-train-seconds", S_V, 0, ZPS_CONF_OPT}, {"batch", S_V, 0, ZPS_CONF_OPT},
    {"max-delay", S_V, 0, ZPS_CONF_OPT}, {"consistency", S_V, 0, ZPS_CONF_OPT},
    {"progress-every", S_V, 0, ZPS_CONF_OPT}, {"connect-timeout", S_V, 0, ZPS_CONF_OPT},
    {"request-timeout", S_V, 0, ZPS_CONF_OPT}, {"clock-every", S_V, 0, ZPS_CONF_OPT},
    {"heartbeat-timeout", S_V, 0, ZPS_CONF_OPT}, {"compress", S_V, 0, ZPS_CONF_OPT},
    {"compress-audit", S_V, 0, ZPS_CONF_OPT}, {"slow-worker", S_V, 0, ZPS_CONF_OPT},
    {"slow-factor", S_V, 0, ZPS_CONF_OPT}, {"checkpoint-dir", S_V, 0, ZPS_CONF_OPT},
    {"checkpoint-every", S_V, 0, ZPS_CONF_OPT}, {"checkpoint-keep", S_V, 0, ZPS_CONF_OPT},
    {"server-timeout", S_V, 0, ZPS_CONF_OPT}, {"curve-secret", S_V, 0, ZPS_CONF_OPT},
    {"allow-dir", S_V, 0, ZPS_CONF_OPT}, {"server-public", S_V, 0, ZPS_CONF_OPT},
    {"test-predictions", S_V, 0, ZPS_CONF_OPT}, {"servers", S_V, 0, ZPS_CONF_OPT},
    {"coordinator", S_V, 0, ZPS_CONF_OPT},
    {"rank", S_V, 0, ZPS_CONF_OPT}, {"num-workers", S_V, 0, ZPS_CONF_OPT},
    {"max-retained-mb", S_V, 0, ZPS_CONF_OPT}, {"save-model", S_V, 0, ZPS_CONF_OPT},
    {"local", no_argument, 0, ZPS_CONF_OPT},
    {0, 0, 0, 0}};
#undef S_V

const struct option *zps_conf_options(void)
{
    return s_options;
}

int zps_conf_option_arg(const char *name)
{
    for (const struct option *o = s_options; o->name; o++)
        if (!strcmp(o->name, name))
            return o->has_arg != no_argument;
    return -1;
}

/* What a numeric option's value must look like, for the error message:
 * 'u', 'i' or 'r' (zps_args_kind_t), 0 for the others. */
static char s_numeric(const char *name)
{
    static const char *const ints[] = {"dim", "seed", "hash-bits", "shuffle-buffer", "epochs",
                                       "batch", "max-delay", "clock-every", "checkpoint-keep",
                                       "rank", "num-workers", NULL};
    static const char *const reals[] = {"init-scale", "lr", "l1", "l2", "beta", "eps",
                                        "max-train-seconds", "progress-every",
                                        "connect-timeout", "request-timeout",
                                        "heartbeat-timeout", "checkpoint-every",
                                        "server-timeout", "max-retained-mb", "slow-factor", NULL};
    for (int k = 0; ints[k]; k++)
        if (!strcmp(name, ints[k]))
            return 'u';
    for (int k = 0; reals[k]; k++)
        if (!strcmp(name, reals[k]))
            return 'r';
    return !strcmp(name, "slow-worker") ? 'i' : 0;
}

int zps_conf_set(zps_conf_t *c, const char *name, const char *value, char *err, size_t errlen)
{
    const int has_arg = zps_conf_option_arg(name);
    if (has_arg < 0)
        return 0;
    if (has_arg == 0) {
        if (value) {
            snprintf(err, errlen, "option --%s takes no value", name);
            return ZPS_EINVAL;
        }
        if (!strcmp(name, "no-cache")) c->no_cache = 1;
        else if (!strcmp(name, "skip-bad-lines")) c->skip_bad_lines = 1;
        else c->local = 1;
        return 1;
    }
    if (!value) {
        snprintf(err, errlen, "option --%s needs a value", name);
        return ZPS_EINVAL;
    }
    const char *v = value;
    int r = 0;
    if (!strcmp(name, "model")) {
        if (!strcmp(v, "lr")) c->model = ZPS_MODEL_LR;
        else if (!strcmp(v, "fm")) c->model = ZPS_MODEL_FM;
        else if (!strcmp(v, "mlp")) c->model = ZPS_MODEL_MLP;
        else r = ZPS_EINVAL;
    } else if (!strcmp(name, "dim")) {
        r = zps_parse_u32(v, &c->fm_dim);
        if (!r && (c->fm_dim == 0 || c->fm_dim > 1000))
            r = ZPS_EINVAL;
    } else if (!strcmp(name, "layers")) {
        r = s_parse_layers(c, v);
    } else if (!strcmp(name, "init-scale")) {
        r = zps_parse_float(v, &c->init_scale);
        if (!r && c->init_scale < 0)
            r = ZPS_EINVAL;
    } else if (!strcmp(name, "seed")) {
        r = zps_parse_u64(v, &c->seed);
    } else if (!strcmp(name, "hash-bits")) {
        r = zps_parse_u32(v, &c->hash_bits);
        if (!r && c->hash_bits > 63)
            r = ZPS_EINVAL;
    } else if (!strcmp(name, "optimizer")) {
        r = zps_optim_parse_kind(v, &c->optimizer);
        c->optimizer_set = !r;
    } else if (!strcmp(name, "lr")) {
        r = zps_parse_float(v, &c->lr);
        if (!r && c->lr <= 0)
            r = ZPS_EINVAL;
    } else if (!strcmp(name, "l1") || !strcmp(name, "l2") || !strcmp(name, "beta") ||
               !strcmp(name, "eps")) {
        float *dst = name[1] == '1' ? &c->l1 : name[1] == '2' ? &c->l2 : name[0] == 'b' ? &c->beta : &c->eps;
        r = zps_parse_float(v, dst);
        if (!r && *dst < 0)
            r = ZPS_EINVAL;
    } else if (!strcmp(name, "train")) {
        if (c->ntrain >= ZPS_MAX_PATHS) {
            snprintf(err, errlen, "at most %d --train paths", ZPS_MAX_PATHS);
            return ZPS_EINVAL;
        }
        c->train[c->ntrain++] = v;
    } else if (!strcmp(name, "test")) {
        c->test = v;
    } else if (!strcmp(name, "format")) {
        if (!strcmp(v, "auto")) c->format = ZPS_FMT_AUTO;
        else if (!strcmp(v, "libsvm")) c->format = ZPS_FMT_LIBSVM;
        else if (!strcmp(v, "criteo")) c->format = ZPS_FMT_CRITEO;
        else if (!strcmp(v, "idx")) c->format = ZPS_FMT_IDX;
        else r = ZPS_EINVAL;
    } else if (!strcmp(name, "cache-dir")) {
        c->cache_dir = v;
    } else if (!strcmp(name, "shuffle-buffer")) {
        r = zps_parse_u32(v, &c->shuffle_buffer);
    } else if (!strcmp(name, "epochs")) {
        c->epochs_set = 1;
        if (!strcmp(v, "auto"))
            c->epochs = 0;
        else {
            r = zps_parse_u32(v, &c->epochs);
            if (!r && c->epochs == 0)
                r = ZPS_EINVAL;
        }
    } else if (!strcmp(name, "max-train-seconds")) {
        r = zps_parse_double(v, &c->max_train_seconds);
        if (!r && !(c->max_train_seconds > 0 && c->max_train_seconds <= 1e9))
            r = ZPS_EINVAL;
    } else if (!strcmp(name, "batch")) {
        r = zps_parse_u32(v, &c->batch);
        if (!r && (c->batch == 0 || c->batch > 10000000))
            r = ZPS_EINVAL;
    } else if (!strcmp(name, "max-delay")) {
        r = zps_parse_u32(v, &c->max_delay);
        if (!r && (c->max_delay == 0 || c->max_delay > 128))
            r = ZPS_EINVAL;
    } else if (!strcmp(name, "consistency")) {
        if (!strcmp(v, "async")) c->consistency = ZPS_CONS_ASYNC;
        else if (!strcmp(v, "bsp")) c->consistency = ZPS_CONS_BSP;
        else if (!strncmp(v, "ssp:", 4) && !zps_parse_u32(v + 4, &c->staleness))
            c->consistency = ZPS_CONS_SSP;
        else r = ZPS_EINVAL;
    } else if (!strcmp(name, "progress-every")) {
        r = zps_parse_double(v, &c->progress_every);
        if (!r && c->progress_every <= 0)
            r = ZPS_EINVAL;
    } else if (!strcmp(name, "connect-timeout") || !strcmp(name, "request-timeout")) {
        double *dst = name[1] == 'o' ? &c->connect_timeout : &c->request_timeout;
        r = zps_parse_double(v, dst);
        if (!r && (*dst <= 0 || *dst > 86400))
            r = ZPS_EINVAL;
    } else if (!strcmp(name, "clock-every")) {
        r = zps_parse_u32(v, &c->clock_every);
        if (!r && c->clock_every == 0)
            r = ZPS_EINVAL;
    } else if (!strcmp(name, "heartbeat-timeout")) {
        r = zps_parse_double(v, &c->heartbeat_timeout);
        if (!r && (c->heartbeat_timeout < 0.1 || c->heartbeat_timeout > 86400))
            r = ZPS_EINVAL;
    } else if (!strcmp(name, "compress")) {
        c->compress_spec = v;
        r = s_parse_compress(c, v);
    } else if (!strcmp(name, "curve-secret")) {
        c->curve_secret = v;
    } else if (!strcmp(name, "coordinator")) {
        c->coordinator = v;
        if (!*v || strncmp(v, "tcp://", 6) != 0)
            r = ZPS_EINVAL;
    } else if (!strcmp(name, "allow-dir")) {
        c->allow_dir = v;
    } else if (!strcmp(name, "server-public")) {
        c->server_public = v;
    } else if (!strcmp(name, "checkpoint-dir")) {
        c->checkpoint_dir = v;
    } else if (!strcmp(name, "checkpoint-every") || !strcmp(name, "server-timeout")) {
        double *dst = name[0] == 'c' ? &c->checkpoint_every : &c->server_timeout;
        r = zps_parse_double(v, dst);
        if (!r && (*dst < 0.05 || *dst > 86400 * 365))
            r = ZPS_EINVAL;
    } else if (!strcmp(name, "max-retained-mb")) {
        r = zps_parse_double(v, &c->max_retained_mb);
        if (!r && !(c->max_retained_mb >= 0 && c->max_retained_mb <= 1048576))
            r = ZPS_EINVAL;
    } else if (!strcmp(name, "save-model")) {
        c->save_model = v;
    } else if (!strcmp(name, "checkpoint-keep")) {
        r = zps_parse_u32(v, &c->checkpoint_keep);
        if (!r && (c->checkpoint_keep == 0 || c->checkpoint_keep > 100))
            r = ZPS_EINVAL;
    } else if (!strcmp(name, "compress-audit")) {
        c->compress_audit = v;
    } else if (!strcmp(name, "slow-worker")) {
        r = zps_parse_int(v, &c->slow_worker);
    } else if (!strcmp(name, "slow-factor")) {
        r = zps_parse_float(v, &c->slow_factor);
        if (!r && (c->slow_factor < 1 || c->slow_factor > 1000))
            r = ZPS_EINVAL;
    } else if (!strcmp(name, "test-predictions")) {
        c->test_predictions = v;
    } else if (!strcmp(name, "servers")) {
        c->servers = v;
    } else if (!strcmp(name, "rank")) {
        r = zps_parse_u32(v, &c->rank);
    } else if (!strcmp(name, "num-workers")) {
        r = zps_parse_u32(v, &c->num_workers);
        if (!r && c->num_workers == 0)
            r = ZPS_EINVAL;
    }
    if (r) {
        /* say whether the number itself or its range is wrong */
        const char num = s_numeric(name);
        const char *why = !num ? NULL
                          : zps_args_why(v, num == 'u' ? ZPS_ARGS_UINT
                                            : num == 'i' ? ZPS_ARGS_INT : ZPS_ARGS_REAL);
        if (!strcmp(name, "epochs") && why && why[0] == 'e')
            why = "expected a non-negative base-10 integer or auto";
        snprintf(err, errlen, "invalid value '%s' for --%s%s%s", v, name, why ? ": " : "",
                 why ? why : "");
        return ZPS_EINVAL;
    }
    return 1;
}

int zps_conf_finish(zps_conf_t *c, char *err, size_t errlen)
{
    if (!c->optimizer_set)
        c->optimizer = c->model == ZPS_MODEL_MLP ? ZPS_OPT_ADAM : ZPS_OPT_NORM;
    if (c->model == ZPS_MODEL_MLP && c->optimizer == ZPS_OPT_NORM) {
        snprintf(err, errlen, "--optimizer norm is for the sparse models (lr, fm), not mlp");
        return ZPS_EINVAL;
    }
    if (c->batch == 0)
        c->batch = c->model == ZPS_MODEL_MLP ? 100 : 500;
    /* mlp: a fixed 30 passes (about the optimizer steps of Keras's fit()
     * default, 10 epochs of batch 32); auto stopped Fashion-MNIST after 8
     * passes at 0.869 (its holdout loss is too noisy for the rule) */
    if (c->model == ZPS_MODEL_MLP && !c->epochs_set)
        c->epochs = ZPS_MLP_EPOCHS;
    if (c->model == ZPS_MODEL_MLP) {
        if (c->nlayers < 2 || c->layers[c->nlayers - 1] < 2) {
            snprintf(err, errlen, "--model mlp needs --layers IN,HIDDEN...,CLASSES with at least 2 classes");
            return ZPS_EINVAL;
        }
    }
    if (c->rank >= c->num_workers) {
        snprintf(err, errlen, "--rank %u is not below --num-workers %u", c->rank, c->num_workers);
        return ZPS_EINVAL;
    }
    zps_optim_conf_t t;
    zps_conf_table(c, &t);
    char why[200];
    if (zps_optim_validate(&t, why, sizeof why)) {
        snprintf(err, errlen, "%s", why);
        return ZPS_EINVAL;
    }
    return 0;
}

void zps_conf_table(const zps_conf_t *c, zps_optim_conf_t *t)
{
    zps_optim_defaults(t, c->optimizer);
    if (c->lr > 0)
        t->lr = c->lr;
    else
        t->lr = c->optimizer == ZPS_OPT_ADAM ? (c->model == ZPS_MODEL_MLP ? ZPS_MLP_ADAM_LR : 0.001f)
                : c->optimizer == ZPS_OPT_SGD ? (c->model == ZPS_MODEL_MLP ? 0.1f : 0.001f)
                : c->optimizer == ZPS_OPT_NORM ? ZPS_NORM_LR : 0.05f;
    if (c->l1 >= 0)
        t->l1 = c->l1;
    if (c->l2 >= 0)
        t->l2 = c->l2;
    if (c->beta >= 0)
        t->beta = c->beta;
    if (c->eps >= 0)
        t->eps = c->eps;
    t->init_seed = c->seed;
    switch (c->model) {
    case ZPS_MODEL_LR:
        t->dim = 1;
        t->init_scale = 0;
        break;
    case ZPS_MODEL_FM:
        t->dim = c->fm_dim + 1;
        /* norm: steps do not depend on the initial scale, and a small one
         * keeps the first pairwise terms small at any feature scale */
        t->init_scale = c->init_scale >= 0 ? c->init_scale
                        : c->optimizer == ZPS_OPT_NORM ? 0.01f : 0.1f;
        t->init_skip = 1;
        break;
    case ZPS_MODEL_MLP:
        t->dim = ZPS_MLP_CHUNK;
        /* the servers hold theta = W - W0, which starts at 0; the workers
         * compute W0 from the seed (and --init-scale) themselves */
        t->init_scale = 0;
        break;
    }
}

/* An input path: exists and is readable (a directory: listable).  Glob
 * patterns that name no existing path are left to the reader. */
static int s_check_input(const char *opt, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT && strpbrk(path, "*?["))
            return 0;
        snprintf(err, errlen, "%s %s: %s", opt, path, strerror(errno));
        return ZPS_EINVAL;
    }
    int dir = S_ISDIR(st.st_mode);
    if (!dir && !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s %s: not a regular file or directory", opt, path);
        return ZPS_EINVAL;
    }
    if (access(path, dir ? R_OK | X_OK : R_OK) != 0) {
        snprintf(err, errlen, "%s %s: cannot read it: %s", opt, path, strerror(errno));
        return ZPS_EINVAL;
    }
    return 0;
}

/* A directory this process will write into: exists, is one, is writable. */
static int s_check_dir(const char *opt, const char *what, const char *dir, char *err,
                       size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        snprintf(err, errlen, "%s: %s %s: %s", opt, what, dir, strerror(errno));
        return ZPS_EINVAL;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: %s %s is not a directory", opt, what, dir);
        return ZPS_EINVAL;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "%s: %s %s is not writable: %s", opt, what, dir, strerror(errno));
        return ZPS_EINVAL;
    }
    return 0;
}

/* The directory an output path will be created in (its parent). */
static int s_check_parent(const char *opt, const char *path, char *err, size_t errlen)
{
    char dir[4096];
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--; /* "out/model/" names out/model */
    const char *slash = NULL;
    for (size_t i = 0; i < n; i++)
        if (path[i] == '/')
            slash = path + i;
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    char what[4200];
    snprintf(what, sizeof what, "the directory of %s,", path);
    return s_check_dir(opt, what, dir, err, errlen);
}

int zps_conf_check_paths(const zps_conf_t *c, int test, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < c->ntrain; i++)
        if (s_check_input("--train", c->train[i], err, errlen))
            return ZPS_EINVAL;
    if (test && c->test && s_check_input("--test", c->test, err, errlen))
        return ZPS_EINVAL;
    if (c->cache_dir && c->cache_dir[0] && !c->no_cache) {
        struct stat st;
        if (stat(c->cache_dir, &st) == 0) {
            if (s_check_dir("--cache-dir", "cache directory", c->cache_dir, err, errlen))
                return ZPS_EINVAL;
        } else if (errno != ENOENT) {
            snprintf(err, errlen, "--cache-dir %s: %s", c->cache_dir, strerror(errno));
            return ZPS_EINVAL;
        } else if (s_check_parent("--cache-dir", c->cache_dir, err, errlen)) {
            return ZPS_EINVAL; /* the reader creates it there */
        }
    }
    if (c->save_model && s_check_parent("--save-model", c->save_model, err, errlen))
        return ZPS_EINVAL;
    if (test && c->test_predictions &&
        s_check_parent("--test-predictions", c->test_predictions, err, errlen))
        return ZPS_EINVAL;
    if (c->compress_audit && s_check_parent("--compress-audit", c->compress_audit, err, errlen))
        return ZPS_EINVAL;
    return 0;
}
