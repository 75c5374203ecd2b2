/* dg_out: zps-datagen's output files, its integer formatter and its
 * progress lines.
 *
 * Rows are formatted into a large buffer handed to zps_file, the atomic
 * writer: each output appears whole under its name when it is closed (a
 * failed or interrupted run leaves the previous file, never half a file),
 * and a symbolic link or another user's file is not written through.  A
 * generator reserves room for its longest line (dg_out_reserve), writes
 * the line at buf + len itself and advances len: no formatted-I/O call per
 * value.  Integers go through a hand-written formatter (dg_fmt_u64, two
 * digits per step), floats through printf in the C locale (setlocale is
 * never called), so the files do not depend on the environment.
 *
 * Progress: a line on stderr every 2 s, and a summary when the split took
 * 2 s or more (stdout carries only the truth). */
#ifndef DG_OUT_H
#define DG_OUT_H

#include <stddef.h>
#include <stdint.h>

#include "zps_file.h"

#define DG_OUTBUF (4u << 20)   /* buffer of a data file */

typedef struct {
    zps_file_t *f;
    const char *path;
    char *buf;
    size_t len, cap;
    int failed;
} dg_out_t;

/* Opens path for an atomic write with a cap-byte buffer; 0, or -1 after a
 * message on stderr. */
int dg_out_open(dg_out_t *o, const char *path, size_t cap);

/* Hands the buffer to the file; 0, or -1 after a message (and for good). */
int dg_out_flush(dg_out_t *o);

/* Makes room for need bytes (need <= cap). */
static inline int dg_out_reserve(dg_out_t *o, size_t need)
{
    if (o->cap - o->len < need)
        return dg_out_flush(o);
    return o->failed ? -1 : 0;
}

/* Commits the file (or, after a failure, drops it: the target is as it was). */
int dg_out_close(dg_out_t *o);

/* prefix + ext in a new string (NULL after a message). */
char *dg_path(const char *prefix, const char *ext);

extern const char dg_digits2[201];

/* Writes the decimal digits of v at p; returns the number of chars. */
static inline size_t dg_fmt_u64(char *p, uint64_t v)
{
    size_t n = 1;
    for (uint64_t t = v; t >= 10; t /= 10)
        n++;
    char *e = p + n;
    while (v >= 100) {
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        *--e = dg_digits2[d + 1];
        *--e = dg_digits2[d];
    }
    if (v >= 10) {
        *--e = dg_digits2[v * 2 + 1];
        *--e = dg_digits2[v * 2];
    } else {
        *--e = (char)('0' + v);
    }
    return n;
}

/* ---- progress --------------------------------------------------------------- */

typedef struct {
    const char *what;
    uint64_t total;
    double t0, last;
} dg_progress_t;

void dg_progress_start(dg_progress_t *pr, const char *what, uint64_t total);
/* done of total rows written: a line at most every 2 s */
void dg_progress_tick(dg_progress_t *pr, uint64_t done);
/* the rate, if the whole took 2 s or more */
void dg_progress_end(dg_progress_t *pr, uint64_t done);

#endif
