/* wk_audit: see wk_audit.h.
 *
 * DESIGN
 * The sums live in a zps_table with rows of pdim floats (a new key's row
 * starts at 0), so the audit costs one upsert per key of every push and
 * nothing when --compress-audit is off (the trainer makes no audit).  The
 * file is written in the table's order; tests key their checks by the
 * first column.  The residual row is read into a buffer of pdim floats
 * (earlier a fixed 2049-float array, too small for fm with a dim over
 * 1023 under norm). */
#include "wk_audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zps_err.h"
#include "zps_out.h"
#include "zps_table.h"

struct wk_audit {
    uint32_t pdim;
    zps_table_t *sums;   /* raw gradient sums per key */
};

wk_audit_t *wk_audit_new(uint32_t pdim)
{
    wk_audit_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->pdim = pdim;
    if (!(a->sums = zps_table_new(pdim, 1 << 16)))
        wk_audit_destroy(&a);
    return a;
}

void wk_audit_destroy(wk_audit_t **ap)
{
    if (!ap || !*ap)
        return;
    zps_table_destroy(&(*ap)->sums);
    free(*ap);
    *ap = NULL;
}

int wk_audit_add(wk_audit_t *a, const uint64_t *keys, const float *g, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float *row = zps_table_upsert(a->sums, keys[i], NULL);
        if (!row)
            return ZPS_ENOMEM;
        for (uint32_t j = 0; j < a->pdim; j++)
            row[j] += g[i * a->pdim + j];
    }
    return 0;
}

int wk_audit_write(const wk_audit_t *a, const char *path, wk_sparsify_t *sparse, zps_log_t *log)
{
    char err[512];
    float *resid = calloc(a->pdim, sizeof *resid);
    if (!resid) {
        zps_error(log, "--compress-audit: out of memory");
        return ZPS_EIO;
    }
    zps_out_t *o = zps_out_open(path, err, sizeof err);
    if (!o) {
        zps_error(log, "--compress-audit: %s", err);
        free(resid);
        return ZPS_EIO;
    }
    FILE *f = zps_out_file(o);
    zps_table_cur_t cursor = ZPS_TABLE_CUR_INIT;
    uint64_t key;
    float *row;
    while (zps_table_next(a->sums, &cursor, &key, &row)) {
        if (sparse)
            wk_sparsify_residual(sparse, key, resid);
        else
            memset(resid, 0, a->pdim * sizeof(float));
        fprintf(f, "%llu", (unsigned long long)key);
        for (uint32_t j = 0; j < a->pdim; j++)
            fprintf(f, " %.9g", (double)row[j]);
        for (uint32_t j = 0; j < a->pdim; j++)
            fprintf(f, " %.9g", (double)resid[j]);
        fputc('\n', f);
    }
    free(resid);
    if (zps_out_close(&o, 1, err, sizeof err) != 0) {
        zps_error(log, "--compress-audit: %s", err);
        return ZPS_EIO;
    }
    return 0;
}
