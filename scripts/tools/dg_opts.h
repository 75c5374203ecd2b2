/* dg_opts: zps-datagen's command line.
 *
 * One table (s_optdefs) names every option once, with the tasks it applies
 * to; getopt_long (through zps_getopt: exact names, no abbreviations)
 * reads them, the task is the one argument that is not an option, and an
 * option given for the other task is a usage error.  Numbers are base 10
 * (zps_args) and range-checked; the defaults that depend on the task
 * (--rows, --test-rows) are filled in once the task is known. */
#ifndef DG_OPTS_H
#define DG_OPTS_H

#include <stdint.h>

typedef enum { DG_TASK_CTR = 1, DG_TASK_MC = 2 } dg_task_t;

typedef struct {
    dg_task_t task;
    uint64_t rows, test_rows, seed;
    int rows_set, test_rows_set;
    const char *out;
    double noise;
    /* ctr */
    uint64_t features, informative;
    uint32_t nnz;
    double zipf, signal, fm_share, pos_rate, sigma_w, sigma_v;
    int interactions;
    /* multiclass */
    uint32_t dim, classes, hidden;
    double margin;
} dg_opts_t;

/* Parses argv into o.  Returns 0, 1 when --help/--version was handled, or
 * -1 after a message (usage error). */
int dg_opts_parse(int argc, char **argv, dg_opts_t *o);

#endif
