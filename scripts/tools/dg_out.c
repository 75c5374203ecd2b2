/* dg_out: output files, integer formatter and progress (see dg_out.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dg_num.h"
#include "dg_out.h"

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- output buffer --------------------------------------------------------- */

int dg_out_open(dg_out_t *o, const char *path, size_t cap)
{
    memset(o, 0, sizeof *o);
    o->path = path;
    char err[1200];
    o->f = zps_file_atomic_open_path(path, 0644, err, sizeof err);
    if (!o->f) {
        fprintf(stderr, DG_PROG ": cannot write '%s': %s\n", path, err);
        return -1;
    }
    o->buf = malloc(cap);
    if (!o->buf) {
        fprintf(stderr, DG_PROG ": out of memory\n");
        zps_file_abort(&o->f);
        return -1;
    }
    o->cap = cap;
    return 0;
}

int dg_out_flush(dg_out_t *o)
{
    if (o->failed)
        return -1;
    int rc = o->len ? zps_file_write(o->f, o->buf, o->len) : 0;
    if (rc) {
        fprintf(stderr, DG_PROG ": cannot write '%s': %s\n", o->path, strerror(-rc));
        o->failed = 1;
        return -1;
    }
    o->len = 0;
    return 0;
}

/* Commits the file (or, after a failure, drops it: the target is as it was). */
int dg_out_close(dg_out_t *o)
{
    int rc = dg_out_flush(o);
    if (o->f) {
        char err[1200];
        if (rc)
            zps_file_abort(&o->f);
        else if (zps_file_commit(&o->f, err, sizeof err) != 0) {
            fprintf(stderr, DG_PROG ": cannot write '%s': %s\n", o->path, err);
            rc = -1;
        }
    }
    free(o->buf);
    o->buf = NULL;
    return rc;
}

char *dg_path(const char *prefix, const char *ext)
{
    size_t a = strlen(prefix), b = strlen(ext);
    char *p = malloc(a + b + 1);
    if (!p) {
        fprintf(stderr, DG_PROG ": out of memory\n");
        return NULL;
    }
    memcpy(p, prefix, a);
    memcpy(p + a, ext, b + 1);
    return p;
}

const char dg_digits2[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* ---- progress --------------------------------------------------------------- */

void dg_progress_start(dg_progress_t *pr, const char *what, uint64_t total)
{
    pr->what = what;
    pr->total = total;
    pr->t0 = pr->last = s_now();
}

void dg_progress_tick(dg_progress_t *pr, uint64_t done)
{
    double t = s_now();
    if (t - pr->last < 2.0)
        return;
    pr->last = t;
    fprintf(stderr, DG_PROG ": %s %llu/%llu rows (%.0f rows/s)\n", pr->what,
            (unsigned long long)done, (unsigned long long)pr->total,
            (double)done / (t - pr->t0));
}

void dg_progress_end(dg_progress_t *pr, uint64_t done)
{
    double dt = s_now() - pr->t0;
    if (dt >= 2.0)
        fprintf(stderr, DG_PROG ": %s %llu rows in %.1f s (%.0f rows/s)\n", pr->what,
                (unsigned long long)done, dt, dt > 0 ? (double)done / dt : 0.0);
}
