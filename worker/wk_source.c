/* wk_source: see wk_source.h.
 *
 * DESIGN
 * A plain file is mmap'ed whole and parsed in place (bounded by pointers,
 * never NUL-terminated).  A byte range starts at the first line that begins
 * inside it; its lines are counted by the caller relative to that start and
 * the absolute line number (wk_maplines_base) is computed only when asked
 * (a bad line), by counting the newlines before the range.
 *
 * A gzip file is read with gzread (zlib buffer 256 KiB) into a line buffer
 * of at least S_GZ_READ bytes: when no newline is left, the unread tail
 * moves to the front and more is read, the buffer doubling while less than
 * half of S_GZ_READ is free (a long line grows it).  The buffer lives as
 * long as the wk_gzlines_t, so reading many gzip units allocates once.  A
 * stream that ends before its trailer is reported as "file: gzip data ends
 * early (truncated file)" (zlib's Z_BUF_ERROR at end of input); other zlib
 * errors with zlib's message (or errno's for Z_ERRNO). */
#include "wk_source.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "wk_rows.h"
#include "zps_err.h"

#define S_GZ_READ (1u << 20)

struct wk_gzlines {
    gzFile gz;
    const char *path;      /* for messages: the caller's, while open */
    char *buf;
    size_t cap, len, off;  /* valid bytes in buf, next line start */
    int eof;
};

static int s_errf(int code, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- files ------------------------------------------------------------------ */

int64_t wk_mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

int wk_same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           wk_mtime_ns(a) == wk_mtime_ns(b);
}

void wk_source_probe(const char *path, struct stat *st, int *gz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, st) < 0)
        memset(st, 0, sizeof *st); /* read as empty: the open reports it */
    unsigned char mg[2] = {0, 0};
    *gz = fd >= 0 && pread(fd, mg, 2, 0) == 2 && mg[0] == 0x1f && mg[1] == 0x8b;
    if (fd >= 0)
        close(fd);
}

int wk_source_map(const char *path, int sequential, const char **map, size_t *len,
                  struct stat *st, char *err, size_t errlen)
{
    *map = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return s_errf(ZPS_EIO, err, errlen, "%s: %s", path, strerror(errno));
    if (fstat(fd, st) < 0) {
        int e = errno;
        close(fd);
        return s_errf(ZPS_EIO, err, errlen, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return s_errf(ZPS_EIO, err, errlen, "%s: not a regular file", path);
    }
    size_t size = (size_t)st->st_size;
    if (size == 0) { /* no lines */
        close(fd);
        return 0;
    }
    void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int merr = errno;
    close(fd);
    if (m == MAP_FAILED)
        return s_errf(ZPS_EIO, err, errlen, "%s: mmap: %s", path, strerror(merr));
    if (sequential)
        madvise(m, size, MADV_SEQUENTIAL);
    *map = m;
    *len = size;
    return 0;
}

/* ---- lines of a mapped byte range --------------------------------------------- */

void wk_maplines_open(wk_maplines_t *m, const char *map, size_t len, uint64_t lo64,
                      uint64_t hi64)
{
    memset(m, 0, sizeof *m);
    if (len == 0) /* no lines; pos == lim == NULL */
        return;
    m->map = map;
    m->len = len;
    size_t lo = lo64 < len ? (size_t)lo64 : len;
    size_t hi = hi64 < len ? (size_t)hi64 : len;
    m->lo = lo;
    m->hi = hi;
    size_t start = lo;
    if (start > 0 && map[start - 1] != '\n') {
        const char *nl = memchr(map + start, '\n', len - start);
        start = nl ? (size_t)(nl - map) + 1 : len;
    }
    m->first = start;
    m->pos = map + start;
    m->lim = map + hi;
}

void wk_maplines_prefetch(const wk_maplines_t *m)
{
    if (m->hi > m->lo) {
        size_t pg = (size_t)sysconf(_SC_PAGESIZE), a = m->lo / pg * pg;
        madvise((void *)(m->map + a), m->hi - a, MADV_WILLNEED);
    }
}

uint64_t wk_maplines_base(wk_maplines_t *m)
{
    if (!m->base) {
        uint64_t nl = 0;
        const char *p = m->map, *e = m->map + m->first;
        while (p < e && (p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
            nl++;
            p++;
        }
        m->base = nl + 1;
    }
    return m->base;
}

double wk_maplines_frac(const wk_maplines_t *m)
{
    size_t span = m->hi - m->lo;
    if (span == 0 || m->pos >= m->lim)
        return 1.0;
    size_t at = (size_t)(m->pos - m->map);
    return at <= m->lo ? 0.0 : (double)(at - m->lo) / (double)span;
}

/* ---- lines of a gzip stream ----------------------------------------------------- */

wk_gzlines_t *wk_gzlines_new(void)
{
    return calloc(1, sizeof(wk_gzlines_t));
}

void wk_gzlines_close(wk_gzlines_t *g)
{
    if (g->gz)
        gzclose(g->gz);
    g->gz = NULL;
    g->path = NULL;
    g->len = g->off = 0;
    g->eof = 0;
}

void wk_gzlines_destroy(wk_gzlines_t **gp)
{
    if (!gp || !*gp)
        return;
    wk_gzlines_close(*gp);
    free((*gp)->buf);
    free(*gp);
    *gp = NULL;
}

int wk_gzlines_open(wk_gzlines_t *g, const char *path, const struct stat *expect, int *changed,
                    char *err, size_t errlen)
{
    wk_gzlines_close(g);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return s_errf(ZPS_EIO, err, errlen, "%s: %s", path, strerror(errno));
    struct stat st;
    *changed = fstat(fd, &st) == 0 && !wk_same_file(&st, expect);
    g->gz = gzdopen(fd, "rb");
    if (!g->gz) {
        close(fd);
        return s_errf(ZPS_ENOMEM, err, errlen, "%s: cannot open gzip stream", path);
    }
    gzbuffer(g->gz, 1u << 18);
    if (!g->buf) {
        g->buf = malloc(S_GZ_READ);
        if (!g->buf)
            return s_errf(ZPS_ENOMEM, err, errlen, "out of memory");
        g->cap = S_GZ_READ;
    }
    g->path = path;
    return 0;
}

/* Reads more decompressed bytes after moving the unread tail to the front
 * (growing the buffer for long lines). */
static int s_gz_more(wk_gzlines_t *g, char *err, size_t errlen)
{
    if (g->off > 0) {
        memmove(g->buf, g->buf + g->off, g->len - g->off);
        g->len -= g->off;
        g->off = 0;
    }
    if (g->cap - g->len < S_GZ_READ / 2) {
        size_t cap = g->cap;
        if (wk_grow((void **)&g->buf, &cap, g->len + S_GZ_READ, 1) < 0)
            return s_errf(ZPS_ENOMEM, err, errlen, "%s: out of memory for a line", g->path);
        g->cap = cap;
    }
    size_t room = g->cap - g->len;
    if (room > INT_MAX)
        room = INT_MAX;
    int n = gzread(g->gz, g->buf + g->len, (unsigned)room);
    int zerr = Z_OK;
    const char *zmsg = gzerror(g->gz, &zerr);
    if (n < 0 || (zerr != Z_OK && zerr != Z_BUF_ERROR))
        return s_errf(ZPS_EIO, err, errlen, "%s: %s", g->path,
                      zerr == Z_ERRNO ? strerror(errno) : zmsg);
    if (n == 0) {
        if (zerr == Z_BUF_ERROR)
            return s_errf(ZPS_EIO, err, errlen, "%s: gzip data ends early (truncated file)",
                          g->path);
        g->eof = 1;
    }
    g->len += (size_t)n;
    return 0;
}

int wk_gzlines_next(wk_gzlines_t *g, const char **ls, const char **le, char *err,
                    size_t errlen)
{
    for (;;) {
        char *l = g->buf + g->off;
        char *nl = g->len > g->off ? memchr(l, '\n', g->len - g->off) : NULL;
        if (nl) {
            *ls = l;
            *le = nl;
            g->off = (size_t)(nl - g->buf) + 1;
            return 1;
        }
        if (!g->eof) {
            int rc = s_gz_more(g, err, errlen);
            if (rc < 0)
                return rc;
            continue;
        }
        if (g->off < g->len) { /* last line without a newline */
            *ls = l;
            *le = g->buf + g->len;
            g->off = g->len;
            return 1;
        }
        return 0;
    }
}

double wk_gzlines_frac(const wk_gzlines_t *g, uint64_t size)
{
    double f = size > 0 ? (double)gzoffset(g->gz) / (double)size : 1.0;
    return f > 1.0 ? 1.0 : f < 0.0 ? 0.0 : f;
}
