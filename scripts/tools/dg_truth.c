/* dg_truth: the truth file and the exact AUC (see dg_truth.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dg_num.h"
#include "dg_out.h"
#include "dg_truth.h"
#include "wk_metrics.h"

void dg_truth_add(dg_truth_t *t, const char *fmt, ...)
{
    if (t->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = 1;
            return;
        }
        if (t->buf && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t ncap = t->cap ? t->cap * 2 : 4096;
        while (ncap < t->len + (size_t)n + 1)
            ncap *= 2;
        char *nb = realloc(t->buf, ncap);
        if (!nb) {
            t->oom = 1;
            return;
        }
        t->buf = nb;
        t->cap = ncap;
    }
}

/* Prints a metric, "nan" when undefined (never locale dependent). */
void dg_truth_metric(dg_truth_t *t, const char *key, double v)
{
    if (isnan(v))
        dg_truth_add(t, "%s=nan\n", key);
    else
        dg_truth_add(t, "%s=%.6f\n", key, v);
}

int dg_truth_write(const char *prefix, const dg_truth_t *t)
{
    size_t plen = strlen(prefix);
    char *path = malloc(plen + 8);
    if (!path) {
        fprintf(stderr, DG_PROG ": out of memory\n");
        return -1;
    }
    memcpy(path, prefix, plen);
    memcpy(path + plen, ".truth", 7);
    dg_out_t out;
    int rc = dg_out_open(&out, path, t->len + 1);
    if (!rc) {
        memcpy(out.buf, t->buf, t->len);
        out.len = t->len;
        rc = dg_out_close(&out);
    }
    free(path);
    if (!rc) {
        fwrite(t->buf, 1, t->len, stdout);
        fflush(stdout);
    }
    return rc;
}

/* ---- exact AUC ---------------------------------------------------------------- */

int dg_truth_scores_init(dg_truth_scores_t *sc, uint64_t cap)
{
    sc->npos = sc->nneg = 0;
    sc->cap = cap;
    sc->key = malloc((cap ? cap : 1) * sizeof *sc->key);
    if (!sc->key) {
        fprintf(stderr, DG_PROG ": out of memory (truth scores for %llu rows)\n",
                (unsigned long long)cap);
        return -1;
    }
    return 0;
}

void dg_truth_scores_free(dg_truth_scores_t *sc)
{
    free(sc->key);
    sc->key = NULL;
}

double dg_truth_scores_auc(dg_truth_scores_t *sc)
{
    return wk_metrics_auc_keys(sc->key, sc->npos, sc->key + sc->cap - sc->nneg, sc->nneg);
}
