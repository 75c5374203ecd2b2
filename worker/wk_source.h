/* wk_source: where the text of a data file comes from, as lines.
 *
 *   - a plain file is mapped whole (wk_source_map) and read as a byte range
 *     [lo, hi) of lines (wk_maplines_t): the lines that start in the range;
 *   - a gzip file (magic 1f 8b) is decompressed as a stream into a growing
 *     line buffer (wk_gzlines_t), every line in order.
 * Lines are [ls, le) without the newline; the last line may lack one.  No
 * parsing here (wk_parse), no sharding decisions (wk_layout): the reader
 * (wk_data) picks the range or the line numbers it keeps. */
#ifndef WK_SOURCE_H
#define WK_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

/* ---- files ------------------------------------------------------------------ */

/* st_mtim in nanoseconds. */
int64_t wk_mtime_ns(const struct stat *st);

/* 1 if a and b are the same file with the same size and mtime. */
int wk_same_file(const struct stat *a, const struct stat *b);

/* stat of path (zeroed if it cannot be opened) and whether it starts with
 * the gzip magic. */
void wk_source_probe(const char *path, struct stat *st, int *gz);

/* Maps the regular file path read-only: *map (NULL for an empty file),
 * *len and its stat in *st; sequential: madvise SEQUENTIAL.  0, or ZPS_EIO
 * with "path: reason" in err. */
int wk_source_map(const char *path, int sequential, const char **map, size_t *len,
                  struct stat *st, char *err, size_t errlen);

/* ---- lines of a mapped byte range --------------------------------------------- */

typedef struct {
    const char *map;
    size_t len;
    const char *pos, *lim;  /* next line start; the range's lines start before lim */
    size_t lo, hi, first;   /* the range, and where its first line starts */
    uint64_t base;          /* absolute number of the first line, 0: not counted yet */
} wk_maplines_t;

/* The lines of map[0..len) that start in [lo, hi) (clamped to len).  A
 * zeroed wk_maplines_t has no lines. */
void wk_maplines_open(wk_maplines_t *m, const char *map, size_t len, uint64_t lo, uint64_t hi);

/* Next line: 1 with [*ls, *le), 0 after the last. */
static inline int wk_maplines_next(wk_maplines_t *m, const char **ls, const char **le)
{
    if (m->pos >= m->lim)
        return 0;
    const char *end = m->map + m->len, *l = m->pos;
    const char *nl = memchr(l, '\n', (size_t)(end - l));
    *ls = l;
    *le = nl ? nl : end;
    m->pos = nl ? nl + 1 : end;
    return 1;
}

/* Asks the kernel to read the range ahead (blocks read in random order). */
void wk_maplines_prefetch(const wk_maplines_t *m);

/* 1-based line number in the file of the range's first line (counted on
 * first use: only bad lines need it). */
uint64_t wk_maplines_base(wk_maplines_t *m);

/* Fraction of the range consumed, 0..1. */
double wk_maplines_frac(const wk_maplines_t *m);

/* ---- lines of a gzip stream ----------------------------------------------------- */

typedef struct wk_gzlines wk_gzlines_t;

/* A line reader; its buffer is kept from one stream to the next.  NULL
 * when out of memory. */
wk_gzlines_t *wk_gzlines_new(void);
void wk_gzlines_destroy(wk_gzlines_t **g);

/* Opens the gzip file path; *changed = 1 if it is no longer the file
 * *expect (another file, size or mtime).  0, or ZPS_EIO / ZPS_ENOMEM with
 * the reason in err. */
int wk_gzlines_open(wk_gzlines_t *g, const char *path, const struct stat *expect, int *changed,
                    char *err, size_t errlen);

/* Next line: 1 with [*ls, *le) (valid until the next call), 0 at the end
 * of the data, or ZPS_EIO / ZPS_ENOMEM with "path: reason" in err (a
 * stream that ends before its trailer: "gzip data ends early"). */
int wk_gzlines_next(wk_gzlines_t *g, const char **ls, const char **le, char *err,
                    size_t errlen);

/* Compressed bytes consumed / size, 0..1. */
double wk_gzlines_frac(const wk_gzlines_t *g, uint64_t size);

/* Ends the stream (no-op when none is open). */
void wk_gzlines_close(wk_gzlines_t *g);

#endif
