/* zps-predict: score rows with a saved model, without servers; or export
 * the model as text (--export, predict_export.h).
 *
 * Loads every shard of the model directory (zps_modelfile.h) into a local
 * zps_table, rebuilds the job's options from the manifest (so features are
 * hashed and keys missing from the model get exactly the initial value the
 * servers would have answered), and runs the same wk_model code as the
 * workers.  Output: one line per input row, in input order: the probability
 * of the positive class, or for mlp the predicted class.
 *
 * Input: "-" (stdin) or a single text file is streamed by predict_in, which
 * also takes unlabeled rows (a libsvm line starting with a feature, a
 * Criteo line of 39 fields); IDX pairs, directories and globs go through the
 * workers' reader (wk_data), labeled.  --metrics needs a label on every row.
 * Output "-" (the default) is stdout, written as rows are scored; a file is
 * written atomically and appears only when every row was scored.
 *
 * A model directory holding a file PARTIAL was left by a job that did not
 * finish (zps-launch stages --save-model there and renames it into place
 * only on success): it is refused, naming the reason written in PARTIAL,
 * unless --allow-partial. */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zps_optim.h"
#include "zps_table.h"
#include "wk_data.h"
#include "wk_idx.h"
#include "wk_metrics.h"
#include "wk_model.h"
#include "predict_export.h"
#include "predict_in.h"
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
    fprintf(f,
            "Usage: zps-predict --model DIR [--data FILE|-] [--out FILE|-] [OPTIONS]\n"
            "       zps-predict --model DIR --export [--out FILE|-]\n"
            "Score rows with a model saved by zps-server --save-model DIR, without servers,\n"
            "or write the model as text.\n"
            "\n"
            "Options:\n"
            "  --model DIR         the saved model directory (manifest, shard-R-of-S.*)\n"
            "  --data FILE|-       rows to score; - (the default) reads standard input\n"
            "  --out FILE|-        where to write; - (the default) is standard output\n"
            "  --format F          libsvm, criteo, idx or auto (the model's --format)\n"
            "  --metrics           print rows, logloss, AUC and accuracy (every row needs\n"
            "                      a label); on stderr when --out is -\n"
            "  --skip-bad-lines    count and skip bad lines instead of stopping\n"
            "  --allow-partial     score a model left by a job that failed (PARTIAL file)\n"
            "  --export            write the model as text instead of scoring\n"
            "  --help, --version\n"
            "\n"
            "Input (plain or gzip; blank lines and '#' comments are skipped):\n"
            "  libsvm  [LABEL] ID:VALUE ...   the label is optional: a line whose first\n"
            "          token is ID:VALUE (e.g. '3:1 7:0.5') is an unlabeled row\n"
            "  criteo  40 tab-separated fields LABEL, I1..I13, C1..C26; a line of 39\n"
            "          fields (no label column, as Criteo's test.txt) is an unlabeled row\n"
            "  idx     IMAGES[,LABELS] files (a file, not -); directories and globs are\n"
            "          read as training reads them, labeled\n"
            "  A bad row stops with FILE:LINE:COLUMN: reason (exit 1).\n"
            "\n"
            "Output: one line per input row, in input order: the probability of label 1\n"
            "(lr, fm) or the predicted class (mlp).  A FILE appears only when every row\n"
            "was scored; - is written as rows are scored.\n"
            "\n"
            "--export: '#' header lines (model, dim, keys, optimizer, options, bias key),\n"
            "then one line per key in increasing order: KEY W [V1 .. Vk] (%%.9g floats).\n"
            "\n"
            "Exit status: 0 ok, 1 error (bad model, bad row, I/O), 2 usage.\n");
}

/* What --data names is read by predict_in (stdin, or one text file) or,
 * for IDX pairs, directories and globs, by wk_data. */
static int s_streamed(const char *data, zps_format_t fmt)
{
    struct stat st;
    if (!strcmp(data, "-"))
        return 1;
    if (fmt == ZPS_FMT_IDX || stat(data, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    return !(fmt == ZPS_FMT_AUTO && wk_idx_sniff(data));
}

typedef struct {
    const char *model_dir, *data, *out_path, *format;
    int metrics, skip_bad, allow_partial, export_;
} opts_t;

/* The rows of --data, scored into out.  0, or 1 after an error (said). */
static int s_score(const opts_t *o, const zps_conf_t *conf, wk_model_t *model, zps_table_t *t,
                   FILE *out, FILE *mout)
{
    char err[1200];
    uint32_t dim = wk_model_dim(model), classes = wk_model_classes(model);
    wk_label_mode_t labels = conf->model == ZPS_MODEL_MLP ? WK_LABEL_CLASS : WK_LABEL_BINARY;
    zps_optim_conf_t tconf;
    zps_conf_table(conf, &tconf);
    predict_in_t *in = NULL;
    wk_reader_t *r = NULL;
    if (!strcmp(o->data, "-") && conf->format == ZPS_FMT_IDX) {
        fprintf(stderr, "zps-predict: --format idx reads IMAGES[,LABELS] files; it cannot read "
                        "standard input (give --data FILE)\n");
        return 1;
    }
    if (!strcmp(o->data, "-") && isatty(0))
        fprintf(stderr, "zps-predict: reading rows from standard input (a terminal; end with "
                        "Ctrl-D, or give --data FILE)\n");
    if (s_streamed(o->data, conf->format)) {
        in = predict_in_open(o->data, conf->format, labels, conf->hash_bits, o->skip_bad, err,
                             sizeof err);
    } else {
        wk_data_conf_t dc;
        memset(&dc, 0, sizeof dc);
        const char *paths[1] = {o->data};
        dc.paths = paths;
        dc.npaths = 1;
        dc.format = conf->format;
        dc.nshards = 1;
        dc.skip_bad_lines = o->skip_bad;
        dc.labels = labels;
        dc.hash_bits = conf->hash_bits;
        r = wk_reader_new(&dc, err, sizeof err);
    }
    if (!in && !r) {
        fprintf(stderr, "zps-predict: %s\n", err);
        return 1;
    }
    wk_metrics_t *m = wk_metrics_new(classes);
    float *w = NULL, *prob = NULL;
    uint32_t *cls = NULL;
    size_t wcap = 0, pcap = 0;
    wk_batch_t b;
    long n;
    int rc = 0;
    uint64_t unlabeled = 0;
    while ((n = in ? predict_in_next(in, 4096, &b) : wk_reader_next(r, 4096, &b)) > 0) {
        for (long i = 0; i < n; i++) {
            if (!isnan(b.labels[i]))
                continue;
            if (o->metrics) {
                /* (only predict_in reads unlabeled rows; wk_data's are labeled) */
                fprintf(stderr, "zps-predict: %s:%llu: the row has no label; --metrics needs "
                                "a label on every row\n", in ? predict_in_name(in) : o->data,
                        in ? (unsigned long long)predict_in_line(in, (size_t)i) : 0ULL);
                rc = ZPS_EINVAL;
                break;
            }
            b.labels[i] = 0; /* scored all the same; its loss is not reported */
            unlabeled++;
        }
        if (rc)
            break;
        const uint64_t *keys;
        size_t nk = wk_model_keys(model, &b, &keys);
        if (nk * dim > wcap) {
            wcap = nk * dim;
            free(w);
            w = malloc(wcap * sizeof *w);
        }
        if ((size_t)n > pcap) {
            pcap = (size_t)n;
            free(prob);
            free(cls);
            prob = malloc(pcap * sizeof *prob);
            cls = malloc(pcap * sizeof *cls);
        }
        if (!w || !prob || !cls) {
            fprintf(stderr, "zps-predict: out of memory\n");
            rc = ZPS_ENOMEM;
            break;
        }
        for (size_t k = 0; k < nk; k++) {
            const float *row = zps_table_find(t, keys[k]);
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
        fprintf(stderr, "zps-predict: %s\n", in ? predict_in_error(in) : wk_reader_error(r));
        rc = (int)n;
    }
    if (!rc && o->metrics) {
        if (classes > 1)
            fprintf(mout, "rows %llu logloss %.5f accuracy %.4f\n",
                    (unsigned long long)wk_metrics_count(m), wk_metrics_logloss(m),
                    wk_metrics_accuracy(m));
        else
            fprintf(mout, "rows %llu logloss %.5f auc %.5f accuracy %.4f\n",
                    (unsigned long long)wk_metrics_count(m), wk_metrics_logloss(m),
                    wk_metrics_auc(m), wk_metrics_accuracy(m));
    }
    uint64_t bad = in ? predict_in_bad_lines(in) : wk_reader_bad_lines(r);
    if (bad)
        fprintf(stderr, "zps-predict: skipped %llu bad lines%s%s\n", (unsigned long long)bad,
                in ? ", the first: " : "", in ? predict_in_first_bad(in) : "");
    if (!rc)
        fprintf(stderr, "zps-predict: scored %llu rows (%llu unlabeled)\n",
                (unsigned long long)wk_metrics_count(m), (unsigned long long)unlabeled);
    wk_metrics_destroy(&m);
    predict_in_destroy(&in);
    wk_reader_destroy(&r);
    free(w);
    free(prob);
    free(cls);
    return rc ? 1 : 0;
}

/* The job's options from the manifest (and --format, --skip-bad-lines).
 * 0, or 1 / 2 after an error (said). */
static int s_conf(const opts_t *o, const zps_mf_manifest_t *mf, zps_conf_t *conf)
{
    char err[1200];
    zps_conf_defaults(conf);
    char optbuf[1024];
    snprintf(optbuf, sizeof optbuf, "%s", mf->options);
    char *save = NULL;
    for (char *tok = strtok_r(optbuf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        /* "--name value" or "--name", as zps-server wrote them */
        int has = strncmp(tok, "--", 2) ? -1 : zps_conf_option_arg(tok + 2);
        char *val = has == 1 ? strtok_r(NULL, " ", &save) : NULL;
        if (has < 0 || (has == 1 && !val) || zps_conf_set(conf, tok + 2, val, err, sizeof err) != 1) {
            fprintf(stderr, "zps-predict: %s/manifest: bad option '%s'\n", o->model_dir, tok);
            return 1;
        }
    }
    if (o->format && zps_conf_set(conf, "format", o->format, err, sizeof err) != 1) {
        fprintf(stderr, "zps-predict: %s\n", err);
        return 2;
    }
    conf->skip_bad_lines = o->skip_bad;
    if (zps_conf_finish(conf, err, sizeof err)) {
        fprintf(stderr, "zps-predict: %s/manifest: %s\n", o->model_dir, err);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    openblas_set_num_threads(1);
    opts_t o = {.data = "-", .out_path = "-"};
    enum { O_MODEL = 1, O_DATA, O_OUT, O_FORMAT, O_METRICS, O_SKIP_BAD, O_ALLOW_PARTIAL, O_EXPORT,
           O_HELP, O_VERSION };
    static const struct option opts[] = {{"model", required_argument, 0, O_MODEL},
                                         {"data", required_argument, 0, O_DATA},
                                         {"out", required_argument, 0, O_OUT},
                                         {"format", required_argument, 0, O_FORMAT},
                                         {"metrics", no_argument, 0, O_METRICS},
                                         {"skip-bad-lines", no_argument, 0, O_SKIP_BAD},
                                         {"allow-partial", no_argument, 0, O_ALLOW_PARTIAL},
                                         {"export", no_argument, 0, O_EXPORT},
                                         {"help", no_argument, 0, O_HELP},
                                         {"version", no_argument, 0, O_VERSION},
                                         {0, 0, 0, 0}};
    char oerr[300];
    int c, li, data_given = 0;
    while ((c = zps_getopt(argc, argv, NULL, opts, &li, oerr, sizeof oerr)) != -1) {
        switch (c) {
        case O_MODEL: o.model_dir = optarg; break;
        case O_DATA: o.data = optarg; data_given = 1; break;
        case O_OUT: o.out_path = optarg; break;
        case O_FORMAT: o.format = optarg; break;
        case O_METRICS: o.metrics = 1; break;
        case O_SKIP_BAD: o.skip_bad = 1; break;
        case O_ALLOW_PARTIAL: o.allow_partial = 1; break;
        case O_EXPORT: o.export_ = 1; break;
        case O_HELP: s_usage(stdout); return 0;
        case O_VERSION: printf("zps-predict %s\n", ZPS_VERSION); return 0;
        default:
            fprintf(stderr, "zps-predict: %s\n", oerr);
            fprintf(stderr, "Try 'zps-predict --help'.\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "zps-predict: unexpected argument '%s'\nTry 'zps-predict --help'.\n",
                argv[optind]);
        return 2;
    }
    if (!o.model_dir) {
        fprintf(stderr, "zps-predict: --model DIR is required\nTry 'zps-predict --help'.\n");
        return 2;
    }
    if (!*o.model_dir || !*o.data || !*o.out_path) {
        fprintf(stderr, "zps-predict: --%s is given an empty path\nTry 'zps-predict --help'.\n",
                !*o.model_dir ? "model" : !*o.data ? "data" : "out");
        return 2;
    }
    if (o.export_ && (data_given || o.metrics || o.format || o.skip_bad)) {
        fprintf(stderr, "zps-predict: --export writes the model; it takes no --data, --metrics, "
                        "--format or --skip-bad-lines\n");
        return 2;
    }
    char err[1200];
    if (s_check_partial(o.model_dir, o.allow_partial) != 0)
        return 1;
    zps_mf_manifest_t mf;
    if (zps_mf_read_manifest(o.model_dir, &mf, err, sizeof err)) {
        fprintf(stderr, "zps-predict: %s\n", err);
        return 1;
    }
    zps_conf_t conf;
    wk_model_t *model = NULL;
    uint32_t dim = mf.dim;
    if (!o.export_) { /* export needs no model code: any table, kv included */
        int rc = s_conf(&o, &mf, &conf);
        if (rc)
            return rc;
        if (strcmp(mf.model, zps_model_name(conf.model)) != 0) {
            /* a model kind zps-predict cannot score, or a manifest whose
             * "model" line and options disagree (edited or damaged) */
            if (!strcmp(mf.model, "lr") || !strcmp(mf.model, "fm") || !strcmp(mf.model, "mlp"))
                fprintf(stderr, "zps-predict: %s/manifest: model %s, but its options say "
                                "--model %s (a damaged manifest?)\n", o.model_dir, mf.model,
                        zps_model_name(conf.model));
            else
                fprintf(stderr, "zps-predict: %s is a '%s' model; zps-predict scores lr, fm and "
                                "mlp models (--export writes any)\n", o.model_dir, mf.model);
            return 1;
        }
        model = wk_model_new(&conf, err, sizeof err);
        if (!model) {
            fprintf(stderr, "zps-predict: %s\n", err);
            return 1;
        }
        dim = wk_model_dim(model);
        if (dim != mf.dim) {
            fprintf(stderr, "zps-predict: %s/manifest: dim %u does not match the model's %u\n",
                    o.model_dir, mf.dim, dim);
            wk_model_destroy(&model);
            return 1;
        }
    }
    /* the output first: a --out that cannot be written (a missing
     * directory) is said before a large model is loaded; nothing appears
     * under its name unless every row is written */
    int to_stdout = !strcmp(o.out_path, "-");
    zps_out_t *outf = to_stdout ? NULL : zps_out_open(o.out_path, err, sizeof err);
    if (!to_stdout && !outf) {
        fprintf(stderr, "zps-predict: cannot write %s: %s\n", o.out_path, err);
        wk_model_destroy(&model);
        return 1;
    }
    load_ctx_t lc = {zps_table_new(dim ? dim : 1, 1 << 16), dim};
    if (!dim || !lc.t || zps_mf_load(o.model_dir, &mf, s_load_key, &lc, err, sizeof err)) {
        if (!dim)
            fprintf(stderr, "zps-predict: %s/manifest: dim 0\n", o.model_dir);
        else
            fprintf(stderr, "zps-predict: %s\n", lc.t ? err : "out of memory");
        zps_table_destroy(&lc.t);
        wk_model_destroy(&model);
        zps_out_close(&outf, 0, err, sizeof err);
        return 1;
    }
    uint32_t nshards = 0;
    for (uint32_t r = 0; r < mf.nservers; r++)
        nshards += r >= ZPS_MF_MAX_SHARDS || !(mf.absent[r / 8] >> (r % 8) & 1);
    fprintf(stderr, "zps-predict: loaded %s model, %zu keys from %u shard%s%s\n", mf.model,
            zps_table_size(lc.t), nshards, nshards == 1 ? "" : "s",
            nshards < mf.nservers ? " (of a replicated job's surviving servers)" : "");

    FILE *out = to_stdout ? stdout : zps_out_file(outf);
    int rc;
    if (o.export_) {
        rc = predict_export(out, &mf, lc.t);
        if (rc)
            fprintf(stderr, "zps-predict: export: %s\n", zps_strerror(rc));
    } else {
        rc = s_score(&o, &conf, model, lc.t, out, to_stdout ? stderr : stdout);
    }
    /* a file appears under out_path only when every row was written */
    if (to_stdout) {
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "zps-predict: writing to stdout failed: %s\n", strerror(errno));
            rc = 1;
        }
    } else if (zps_out_close(&outf, rc == 0, err, sizeof err) != 0) {
        fprintf(stderr, "zps-predict: writing %s failed: %s\n", o.out_path, err);
        rc = 1;
    }
    wk_model_destroy(&model);
    zps_table_destroy(&lc.t);
    return rc ? 1 : 0;
}
