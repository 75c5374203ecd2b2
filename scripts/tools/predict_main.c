/* zps-predict: score a data file with a saved model, without servers.
 *
 * Loads every shard of the model directory (zps_modelfile.h) into a local
 * zps_table, rebuilds the job's options from the manifest (so features are
 * hashed and keys missing from the model get exactly the initial value the
 * servers would have answered), and runs the same wk_model code as the
 * workers.  Output: one line per input row, in input order: the probability
 * of the positive class, or for mlp the predicted class.
 *
 * A model directory holding a file PARTIAL was left by a job that did not
 * finish (zps-launch stages --save-model there and renames it into place
 * only on success): it is refused, naming the reason written in PARTIAL,
 * unless --allow-partial. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zps_optim.h"
#include "zps_table.h"
#include "wk_data.h"
#include "wk_metrics.h"
#include "wk_model.h"
#include "zps_args.h"
#include "zps_conf.h"
#include "zps_err.h"
#include "zps_modelfile.h"
#include "zps_out.h"

typedef struct {
    zps_table_t *t;
    uint32_t dim;
} load_ctx_t;

static int s_load_key(void *ctx, uint64_t key, const float *w)
{
    load_ctx_t *l = ctx;
    float *row = zps_table_upsert(l->t, key, NULL);
    if (!row)
        return ZPS_ENOMEM;
    memcpy(row, w, l->dim * sizeof(float));
    return 0;
}

/* A PARTIAL file in dir: refused (non-zero) unless allow, with its first
 * line (the reason) in the message; allowed with a warning. */
static int s_check_partial(const char *dir, int allow)
{
    char path[4096], why[512] = "";
    if (snprintf(path, sizeof path, "%s/PARTIAL", dir) >= (int)sizeof path)
        return 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (!fgets(why, sizeof why, f))
        why[0] = 0;
    fclose(f);
    why[strcspn(why, "\n")] = 0;
    if (!allow) {
        fprintf(stderr,
                "zps-predict: %s is a partial model: %s exists (%s); it was left by a job "
                "that did not finish, and may lack shards or hold a model mid-training; "
                "use --allow-partial to score it anyway\n",
                dir, path, why[0] ? why : "no reason given");
        return 1;
    }
    fprintf(stderr, "zps-predict: warning: %s is a partial model (%s); scoring it (--allow-partial)\n",
            dir, why[0] ? why : "no reason given");
    return 0;
}

static void s_usage(FILE *f)
{
    fprintf(f, "usage: zps-predict --model DIR --data FILE --out FILE [--metrics] "
               "[--format libsvm|criteo|idx|auto] [--skip-bad-lines] [--allow-partial]\n"
               "  writes one line per input row, in input order: the probability of the\n"
               "  positive class (lr, fm) or the predicted class (mlp).  --metrics prints\n"
               "  logloss, AUC and accuracy computed from the labels in FILE.\n"
               "  A model directory with a PARTIAL file (left by a job that failed) is\n"
               "  refused unless --allow-partial.\n");
}

int main(int argc, char **argv)
{
    openblas_set_num_threads(1);
    const char *model_dir = NULL, *data = NULL, *out_path = NULL, *format = NULL;
    int metrics = 0, skip_bad = 0, allow_partial = 0;
    enum { O_MODEL = 1, O_DATA, O_OUT, O_FORMAT, O_METRICS, O_SKIP_BAD, O_ALLOW_PARTIAL, O_HELP,
           O_VERSION };
    static const struct option opts[] = {{"model", required_argument, 0, O_MODEL},
                                         {"data", required_argument, 0, O_DATA},
                                         {"out", required_argument, 0, O_OUT},
                                         {"format", required_argument, 0, O_FORMAT},
                                         {"metrics", no_argument, 0, O_METRICS},
                                         {"skip-bad-lines", no_argument, 0, O_SKIP_BAD},
                                         {"allow-partial", no_argument, 0, O_ALLOW_PARTIAL},
                                         {"help", no_argument, 0, O_HELP},
                                         {"version", no_argument, 0, O_VERSION},
                                         {0, 0, 0, 0}};
    char oerr[300];
    int c, li;
    while ((c = zps_getopt(argc, argv, NULL, opts, &li, oerr, sizeof oerr)) != -1) {
        switch (c) {
        case O_MODEL: model_dir = optarg; break;
        case O_DATA: data = optarg; break;
        case O_OUT: out_path = optarg; break;
        case O_FORMAT: format = optarg; break;
        case O_METRICS: metrics = 1; break;
        case O_SKIP_BAD: skip_bad = 1; break;
        case O_ALLOW_PARTIAL: allow_partial = 1; break;
        case O_HELP: s_usage(stdout); return 0;
        case O_VERSION: printf("zps-predict %s\n", ZPS_VERSION); return 0;
        default:
            fprintf(stderr, "zps-predict: %s\n", oerr);
            s_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "zps-predict: unexpected argument '%s'\n", argv[optind]);
        s_usage(stderr);
        return 2;
    }
    if (!model_dir || !data || !out_path) {
        s_usage(stderr);
        return 2;
    }
    char err[1200];
    if (s_check_partial(model_dir, allow_partial) != 0)
        return 1;
    zps_mf_manifest_t mf;
    if (zps_mf_read_manifest(model_dir, &mf, err, sizeof err)) {
        fprintf(stderr, "zps-predict: %s\n", err);
        return 1;
    }
    /* rebuild the job's options from the manifest */
    zps_conf_t conf;
    zps_conf_defaults(&conf);
    char optbuf[1024];
    snprintf(optbuf, sizeof optbuf, "%s", mf.options);
    char *save = NULL;
    for (char *tok = strtok_r(optbuf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        /* "--name value" or "--name", as zps-server wrote them */
        int has = strncmp(tok, "--", 2) ? -1 : zps_conf_option_arg(tok + 2);
        char *val = has == 1 ? strtok_r(NULL, " ", &save) : NULL;
        if (has < 0 || (has == 1 && !val) || zps_conf_set(&conf, tok + 2, val, err, sizeof err) != 1) {
            fprintf(stderr, "zps-predict: %s/manifest: bad option '%s'\n", model_dir, tok);
            return 1;
        }
    }
    if (format && zps_conf_set(&conf, "format", format, err, sizeof err) != 1) {
        fprintf(stderr, "zps-predict: %s\n", err);
        return 2;
    }
    conf.skip_bad_lines = skip_bad;
    if (zps_conf_finish(&conf, err, sizeof err)) {
        fprintf(stderr, "zps-predict: %s/manifest: %s\n", model_dir, err);
        return 1;
    }
    if (strcmp(mf.model, zps_model_name(conf.model)) != 0) {
        fprintf(stderr, "zps-predict: %s is a '%s' model; zps-predict scores lr, fm and mlp models\n",
                model_dir, mf.model);
        return 1;
    }
    wk_model_t *model = wk_model_new(&conf, err, sizeof err);
    if (!model) {
        fprintf(stderr, "zps-predict: %s\n", err);
        return 1;
    }
    uint32_t dim = wk_model_dim(model), classes = wk_model_classes(model);
    if (dim != mf.dim) {
        fprintf(stderr, "zps-predict: manifest dim %u does not match the model's %u\n", mf.dim, dim);
        return 1;
    }
    zps_optim_conf_t tconf;
    zps_conf_table(&conf, &tconf);
    load_ctx_t lc = {zps_table_new(dim, 1 << 16), dim};
    if (!lc.t || zps_mf_load(model_dir, &mf, s_load_key, &lc, err, sizeof err)) {
        fprintf(stderr, "zps-predict: %s\n", lc.t ? err : "out of memory");
        return 1;
    }
    fprintf(stderr, "zps-predict: loaded %s model, %zu keys from %u shards\n", mf.model,
            zps_table_size(lc.t), mf.nservers);

    wk_data_conf_t dc;
    memset(&dc, 0, sizeof dc);
    const char *paths[1] = {data};
    dc.paths = paths;
    dc.npaths = 1;
    dc.format = conf.format;
    dc.nshards = 1;
    dc.skip_bad_lines = skip_bad;
    dc.labels = conf.model == ZPS_MODEL_MLP ? WK_LABEL_CLASS : WK_LABEL_BINARY;
    dc.hash_bits = conf.hash_bits;
    wk_reader_t *r = wk_reader_new(&dc, err, sizeof err);
    if (!r) {
        fprintf(stderr, "zps-predict: %s\n", err);
        return 1;
    }
    zps_out_t *outf = zps_out_open(out_path, err, sizeof err);
    if (!outf) {
        fprintf(stderr, "zps-predict: cannot write %s: %s\n", out_path, err);
        return 1;
    }
    FILE *out = zps_out_file(outf);
    wk_metrics_t *m = wk_metrics_new(classes);
    float *w = NULL, *prob = NULL;
    uint32_t *cls = NULL;
    size_t wcap = 0, pcap = 0;
    wk_batch_t b;
    long n;
    int rc = 0;
    while ((n = wk_reader_next(r, 4096, &b)) > 0) {
        const uint64_t *keys;
        size_t nk = wk_model_keys(model, &b, &keys);
        if (nk * dim > wcap) {
            wcap = nk * dim;
            w = realloc(w, wcap * sizeof *w);
        }
        if ((size_t)n > pcap) {
            pcap = (size_t)n;
            prob = realloc(prob, pcap * sizeof *prob);
            cls = realloc(cls, pcap * sizeof *cls);
        }
        if (!w || !prob || !cls) {
            rc = ZPS_ENOMEM;
            break;
        }
        for (size_t k = 0; k < nk; k++) {
            const float *row = zps_table_find(lc.t, keys[k]);
            if (row)
                memcpy(w + k * dim, row, dim * sizeof(float));
            else
                zps_optim_initial_weights(&tconf, keys[k], w + k * dim);
        }
        double loss = wk_model_predict(model, &b, w, prob, cls);
        wk_metrics_add_preds(m, (size_t)n, b.labels, prob, cls, loss);
        for (long i = 0; i < n; i++) {
            if (classes > 1)
                fprintf(out, "%u\n", cls[i]);
            else
                fprintf(out, "%.9g\n", (double)prob[i]);
        }
    }
    if (n < 0) {
        fprintf(stderr, "zps-predict: %s\n", wk_reader_error(r));
        rc = (int)n;
    }
    /* the predictions appear under out_path only when every row was scored */
    if (zps_out_close(&outf, rc == 0, err, sizeof err) != 0) {
        fprintf(stderr, "zps-predict: writing %s failed: %s\n", out_path, err);
        rc = ZPS_EIO;
    }
    if (!rc && metrics) {
        if (classes > 1)
            printf("rows %llu logloss %.5f accuracy %.4f\n",
                   (unsigned long long)wk_metrics_count(m), wk_metrics_logloss(m),
                   wk_metrics_accuracy(m));
        else
            printf("rows %llu logloss %.5f auc %.5f accuracy %.4f\n",
                   (unsigned long long)wk_metrics_count(m), wk_metrics_logloss(m),
                   wk_metrics_auc(m), wk_metrics_accuracy(m));
    }
    if (wk_reader_bad_lines(r))
        fprintf(stderr, "zps-predict: skipped %llu bad lines\n",
                (unsigned long long)wk_reader_bad_lines(r));
    wk_metrics_destroy(&m);
    wk_reader_destroy(&r);
    wk_model_destroy(&model);
    zps_table_destroy(&lc.t);
    free(w);
    free(prob);
    free(cls);
    return rc ? 1 : 0;
}
