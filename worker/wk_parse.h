/* wk_parse: text lines -> rows, with no I/O: LIBSVM/svmlight lines,
 * Criteo TSV lines, their labels and numbers, and the format of a line.
 *
 * A parser holds only settings (label mode, hash bits) and scratch space
 * (a token copy for strtod, the duplicate-id set); the reason for the last
 * bad line is kept in it until the next line.  Lines are [ls, le) without
 * their newline and are never NUL-terminated.  Used by wk_data for every
 * text source (mapped or gzip). */
#ifndef WK_PARSE_H
#define WK_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "wk_data.h"
#include "wk_rows.h"
#include "zps_conf.h"

#define WK_PARSE_BAD (-1) /* bad line: reason and column in the parser */

typedef struct wk_parser wk_parser_t;

/* labels: 0/1 (-1/+1) or class numbers; hash_bits as wk_data_conf_t's.
 * NULL when out of memory. */
wk_parser_t *wk_parser_new(wk_label_mode_t labels, uint32_t hash_bits);
void wk_parser_destroy(wk_parser_t **wp);

/* Unlabeled rows (for scoring, zps-predict): with on != 0 a line may lack
 * its label, and such a row gets the label NAN.  A libsvm line lacks it
 * when its first token is a feature (has a ':', e.g. "3:1 7:0.5"); a Criteo
 * line when it has 39 tab-separated fields (the label column dropped, as in
 * Criteo's test.txt) instead of 40.  Off by default (training: a line
 * without a label is bad). */
void wk_parser_set_unlabeled(wk_parser_t *wp, int on);

/* One line in format fmt (ZPS_FMT_LIBSVM or ZPS_FMT_CRITEO; a trailing CR
 * is whitespace).  Returns 1 (one row appended to d), 0 (blank or comment
 * line), WK_PARSE_BAD (nothing appended; wk_parse_reason and
 * wk_parse_column say why and where) or ZPS_ENOMEM. */
int wk_parse_line(wk_parser_t *wp, zps_format_t fmt, wk_rows_t *d, const char *ls,
                  const char *le);

/* The format of a content line: CRITEO when its second tab-separated field
 * has no ':', else LIBSVM; AUTO for blank and comment lines. */
zps_format_t wk_parse_detect(const char *ls, const char *le);

/* The format of the first content line of text[0..len) (AUTO if none;
 * text may be NULL when len is 0). */
zps_format_t wk_parse_first_format(const char *text, size_t len);

/* The same, and *off = the offset of that line's first byte (len if none):
 * the lines before it are blank or comments for wk_parse_detect, and a
 * reader skips them whatever the format (a gzip stream, detecting as it
 * goes, does the same). */
zps_format_t wk_parse_first_content(const char *text, size_t len, size_t *off);

/* A feature value token [t, te) as the parsers read it (plain decimals
 * exactly as (float)strtod, others through strtod; finite, within float
 * range).  0, WK_PARSE_BAD (reason set; *out unspecified) or ZPS_ENOMEM. */
int wk_parse_value(wk_parser_t *wp, const char *t, const char *te, double *out);

/* Why the last line was bad ("bad feature id 'x'") and its 1-based byte
 * column. */
const char *wk_parse_reason(const wk_parser_t *wp);
size_t wk_parse_column(const wk_parser_t *wp);

/* FNV-1a 64 of the bytes (Criteo values; also names cache files). */
uint64_t wk_fnv1a(const char *s, size_t len);

#endif
