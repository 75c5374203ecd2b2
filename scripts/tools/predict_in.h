/* predict_in: zps-predict's rows to score, read as a stream from one text
 * file or from standard input ("-"), LIBSVM or Criteo TSV, plain or gzip
 * (zlib reads either), in input order.
 *
 * Unlike the workers' reader (wk_data) it needs no regular file (no map,
 * no seek, no shards, no cache), and it accepts unlabeled rows: the parser
 * runs with wk_parser_set_unlabeled, so a libsvm line starting with a
 * feature ("3:1 7:0.5") and a Criteo line of 39 fields (no label column)
 * are rows whose label is NAN.  Lines before the first content line are
 * skipped whatever the format, as wk_data does; the format (AUTO) is that
 * of the first content line.
 *
 * Bad lines stop the reader with "FILE:LINE:COLUMN: reason" ("<stdin>" for
 * "-"), or with skip_bad are counted and skipped (the first one is kept
 * for the summary).  A line over 64 MiB is an error.
 *
 * Ownership: a batch points into the reader and is valid until the next
 * predict_in_next or predict_in_destroy. */
#ifndef PREDICT_IN_H
#define PREDICT_IN_H

#include <stddef.h>
#include <stdint.h>

#include "wk_data.h"
#include "zps_conf.h"

typedef struct predict_in predict_in_t;

/* path: a file or "-" (standard input); fmt: LIBSVM, CRITEO or AUTO.
 * NULL with the reason (naming the file) in err. */
predict_in_t *predict_in_open(const char *path, zps_format_t fmt, wk_label_mode_t labels,
                              uint32_t hash_bits, int skip_bad, char *err, size_t errlen);
void predict_in_destroy(predict_in_t **in);

/* Up to max_rows rows: their count (> 0), 0 at the end of the input, or a
 * negative ZPS_E* code with the reason in predict_in_error. */
long predict_in_next(predict_in_t *in, size_t max_rows, wk_batch_t *b);

const char *predict_in_error(const predict_in_t *in);
const char *predict_in_name(const predict_in_t *in);        /* the path, or "<stdin>" */
uint64_t predict_in_line(const predict_in_t *in, size_t i);  /* line of row i of the batch */
uint64_t predict_in_bad_lines(const predict_in_t *in);
const char *predict_in_first_bad(const predict_in_t *in);   /* "" if none */

#endif
