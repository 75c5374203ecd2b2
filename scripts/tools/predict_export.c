/* predict_export: see predict_export.h.  The keys are collected from the
 * table, sorted (zps_sort's radix sort), then written with their rows. */
#include "predict_export.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "zps_conf.h"
#include "zps_err.h"
#include "zps_sort.h"

int predict_export(FILE *out, const zps_mf_manifest_t *mf, zps_table_t *t)
{
    size_t n = zps_table_size(t), i = 0;
    zps_table_cur_t cur = ZPS_TABLE_CUR_INIT;
    uint32_t dim = zps_table_row_floats(t);
    uint64_t *buf = malloc((n ? n : 1) * sizeof *buf), *tmp = malloc((n ? n : 1) * sizeof *tmp);
    uint64_t key;
    float *row;
    if (!buf || !tmp) {
        free(buf);
        free(tmp);
        return ZPS_ENOMEM;
    }
    while (i < n && zps_table_next(t, &cur, &key, &row))
        buf[i++] = key;
    n = i;
    const uint64_t *keys = zps_sort_u64(buf, tmp, n);
    fprintf(out, "# zps model export 1\n");
    fprintf(out, "# model %s dim %u keys %zu shards %u format %u\n", mf->model, dim, n,
            mf->nservers, mf->version);
    fprintf(out, "# table %s\n", mf->table[0] ? mf->table : "-");
    fprintf(out, "# options %s\n", mf->options[0] ? mf->options : "-");
    fprintf(out, "# bias key %" PRIu64 "\n", (uint64_t)ZPS_BIAS_KEY);
    if (!strcmp(mf->model, "lr"))
        fprintf(out, "# columns: key w\n");
    else if (!strcmp(mf->model, "fm"))
        fprintf(out, "# columns: key w v1 .. v%u\n", dim - 1);
    else if (!strcmp(mf->model, "mlp"))
        fprintf(out, "# columns: key theta1 .. theta%u (a chunk of the offset from the "
                     "seeded initial weights)\n", dim);
    else
        fprintf(out, "# columns: key x1 .. x%u\n", dim);
    for (i = 0; i < n; i++) {
        const float *r = zps_table_find(t, keys[i]);
        fprintf(out, "%" PRIu64, keys[i]);
        for (uint32_t d = 0; d < dim; d++)
            fprintf(out, " %.9g", r ? (double)r[d] : 0.0);
        fputc('\n', out);
    }
    free(buf);
    free(tmp);
    return ferror(out) ? ZPS_EIO : 0;
}
