/* wk_cache: see wk_cache.h.
 *
 * DESIGN
 * Name: <basename>.zpscache.<shard>of<nshards>[b<B>].<format>-<labels>-h<bits>
 * (b<B> for block parts) next to the input, or in cache_dir with
 * ".p<FNV-1a of the input's real path>" appended (so equal basenames in
 * different directories do not collide).  One cache per part.
 *
 * Layout (host byte order): a 128-byte header (cache_hdr_t: magic, version,
 * source size and mtime in ns, format, label mode, hash bits, split kind,
 * shard, nshards, rows, nnz, skipped bad lines, block count, shard block
 * size and first global block), then cache blocks of up to S_BLOCK_ROWS
 * rows (or until S_BLOCK_NNZ features): {rows, nnz, unit id, skipped lines}
 * ids[nnz] vals[nnz] labels[rows] lens[rows] padded to 8 bytes.  The rows
 * of one unit are one or more consecutive cache blocks (a unit's last block
 * is written when it ends, also when empty, and carries its skipped-line
 * count), in the order the units were read.  wk_cache_check validates the
 * whole structure (sizes add up to the file size and the header's totals,
 * every unit of the part present exactly once) and keeps each unit's
 * offsets, so a cached epoch can read the units in any order; a block's
 * row lengths are checked against its nnz when it is read.
 *
 * Writing: the cache goes to a mkstemp name beside the final one (zero
 * header first, the real header pwritten last, then fchmod 0644, close and
 * rename).  One temporary is open at a time: units of several parts may
 * interleave (blocks in random order), and the writer reopens the
 * temporary of the part whose unit comes.  Any failure (cannot create,
 * disk full, a row longer than 2^32 features) marks the part failed: it is
 * not cached this epoch, and the caller removes the temporary
 * (wk_cache_w_abort). */
#include "wk_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wk_data.h"
#include "wk_parse.h"
#include "wk_paths.h"
#include "wk_source.h"
#include "zps_conf.h"
#include "zps_err.h"

#define S_CACHE_MAGIC "ZPSCACHE"
#define S_CACHE_VERSION 2u
#define S_CACHE_ENDIAN 0x01020304u
#define S_BLOCK_ROWS 65536u
#define S_BLOCK_NNZ (1u << 21)
#define S_BLK_HDR 32u /* cache block header: rows, nnz, unit id, bad lines */

typedef struct {
    char magic[8];
    uint32_t version, endian;
    uint64_t src_size;
    int64_t src_mtime_ns;
    uint32_t format, labels, hash_bits, split;
    uint32_t shard, nshards, hdr_bytes, pad;
    uint64_t rows, nnz, bad_lines, nblocks;
    uint64_t block_bytes, first_block; /* block layout, else 0 */
    uint8_t reserved[16];
} cache_hdr_t;
_Static_assert(sizeof(cache_hdr_t) == 128, "cache header is 128 bytes");

struct wk_cache_w {
    wk_rows_t blk;           /* rows of the current unit not yet written */
    uint32_t *lens;
    size_t lens_cap;
    int fd;                  /* the open temporary, of file `owner` */
    const wk_cache_file_t *owner;
};

static size_t s_block_bytes(uint64_t rows, uint64_t nnz)
{
    size_t b = S_BLK_HDR + (size_t)nnz * 12 + (size_t)rows * 8;
    return (b + 7) & ~(size_t)7;
}

static const char *s_fmt_name(uint32_t f)
{
    return f == ZPS_FMT_LIBSVM ? "libsvm" : f == ZPS_FMT_CRITEO ? "criteo" : "auto";
}

char *wk_cache_name(const char *path, const char *cache_dir, const wk_cache_meta_t *m)
{
    const char *base = wk_paths_base(path);
    char tag[128], blk[32] = "", ph[24] = "";
    if (m->block_bytes)
        snprintf(blk, sizeof blk, "b%llu", (unsigned long long)m->block_bytes);
    snprintf(tag, sizeof tag, ".zpscache.%uof%u%s.%s-%s-h%u", m->shard, m->nshards, blk,
             s_fmt_name(m->format), m->labels == WK_LABEL_CLASS ? "cls" : "bin", m->hash_bits);
    size_t dlen;
    const char *dir;
    if (cache_dir) {
        char *real = realpath(path, NULL);
        const char *rp = real ? real : path;
        snprintf(ph, sizeof ph, ".p%016llx", (unsigned long long)wk_fnv1a(rp, strlen(rp)));
        free(real);
        dir = cache_dir;
        dlen = strlen(dir);
    } else {
        dir = path;
        dlen = (size_t)(base - path);
    }
    size_t n = dlen + 1 + strlen(base) + strlen(tag) + strlen(ph) + 1;
    char *name = malloc(n);
    if (!name)
        return NULL;
    if (cache_dir)
        snprintf(name, n, "%.*s/%s%s%s", (int)dlen, dir, base, tag, ph);
    else
        snprintf(name, n, "%.*s%s%s%s", (int)dlen, dir, base, tag, ph);
    return name;
}

/* The unit with id `id` in units[0..n) (ascending ids), or NULL. */
static wk_cache_unit_t *s_unit_by_id(wk_cache_unit_t *units, size_t n, uint64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (units[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && units[lo].id == id ? &units[lo] : NULL;
}

int wk_cache_check(const char *name, const wk_cache_meta_t *want, int allow_bad,
                   wk_cache_unit_t *units, size_t nunits, struct stat *cst_out)
{
    int fd = open(name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat cst;
    cache_hdr_t hdr;
    if (fstat(fd, &cst) < 0 || !S_ISREG(cst.st_mode) || cst.st_size < (off_t)sizeof hdr) {
        close(fd);
        return 0;
    }
    size_t n = (size_t)cst.st_size;
    void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return 0;
    const char *b = m;
    memcpy(&hdr, b, sizeof hdr);
    int ok = memcmp(hdr.magic, S_CACHE_MAGIC, 8) == 0 && hdr.version == S_CACHE_VERSION &&
             hdr.endian == S_CACHE_ENDIAN && hdr.hdr_bytes == sizeof hdr &&
             hdr.src_size == want->src_size && hdr.src_mtime_ns == want->src_mtime_ns &&
             hdr.format == want->format && hdr.labels == want->labels &&
             hdr.hash_bits == want->hash_bits && hdr.split == want->split &&
             hdr.shard == want->shard && hdr.nshards == want->nshards &&
             hdr.block_bytes == want->block_bytes && hdr.first_block == want->first_block &&
             (hdr.bad_lines == 0 || allow_bad);
    for (size_t i = 0; ok && i < nunits; i++)
        units[i].off = 0; /* 0: not seen (a block is never at 0) */
    /* the blocks must tile the file, add up to the header's totals and hold
     * every unit once, as consecutive blocks */
    size_t off = sizeof hdr, seen = 0;
    uint64_t rows = 0, nnz = 0, bad = 0;
    wk_cache_unit_t *cur = NULL;
    for (uint64_t i = 0; ok && i < hdr.nblocks; i++) {
        uint64_t bh[4];
        if (n - off < sizeof bh) {
            ok = 0;
            break;
        }
        memcpy(bh, b + off, sizeof bh);
        size_t left = n - off - sizeof bh;
        if (bh[0] > left / 8 || bh[1] > left / 12 || s_block_bytes(bh[0], bh[1]) > n - off) {
            ok = 0;
            break;
        }
        if (!cur || cur->id != bh[2]) {
            cur = s_unit_by_id(units, nunits, bh[2]);
            if (!cur || cur->off != 0) {
                ok = 0;
                break;
            }
            cur->off = off;
            cur->rows = cur->bad = 0;
            seen++;
        }
        off += s_block_bytes(bh[0], bh[1]);
        cur->end = off;
        cur->rows += bh[0];
        cur->bad += bh[3];
        rows += bh[0];
        nnz += bh[1];
        bad += bh[3];
    }
    ok = ok && off == n && rows == hdr.rows && nnz == hdr.nnz && bad == hdr.bad_lines &&
         seen == nunits;
    munmap(m, n);
    if (ok)
        *cst_out = cst;
    return ok;
}

int wk_cache_map(const char *name, const struct stat *want, const char **map, size_t *len)
{
    int fd = name ? open(name, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return -1;
    struct stat cst;
    void *m = MAP_FAILED;
    if (fstat(fd, &cst) == 0 && wk_same_file(&cst, want))
        m = mmap(NULL, (size_t)cst.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return -1;
    *map = m;
    *len = (size_t)cst.st_size;
    return 0;
}

/* ---- reading a unit's rows ------------------------------------------------------- */

void wk_cache_rd_open(wk_cache_rd_t *c, const char *map, const wk_cache_unit_t *u)
{
    memset(c, 0, sizeof *c);
    c->map = map;
    c->pos = u->off;
    c->end = u->end;
    c->rows = u->rows;
}

int wk_cache_rd_next(wk_cache_rd_t *s, wk_rows_t *d, size_t want, int *at_end)
{
    while (d->n < want) {
        if (s->blk_row == s->blk_rows) {
            if (s->pos >= s->end) {
                *at_end = 1;
                return 0;
            }
            const char *b = s->map + s->pos;
            uint64_t bh[2];
            memcpy(bh, b, sizeof bh);
            const char *p = b + S_BLK_HDR;
            s->blk_ids = (const uint64_t *)(const void *)p;
            s->blk_vals = (const float *)(const void *)(p + bh[1] * 8);
            s->blk_labels = (const float *)(const void *)(p + bh[1] * 12);
            s->blk_lens = (const uint32_t *)(const void *)(p + bh[1] * 12 + bh[0] * 4);
            uint64_t sum = 0;
            for (uint64_t i = 0; i < bh[0]; i++)
                sum += s->blk_lens[i];
            if (sum != bh[1])
                return ZPS_EIO;
            s->pos += s_block_bytes(bh[0], bh[1]);
            s->blk_rows = bh[0];
            s->blk_row = 0;
            /* blk_ids/vals point at the block's first row; advance as rows go */
            continue;
        }
        size_t k = want - d->n;
        if (k > s->blk_rows - s->blk_row)
            k = (size_t)(s->blk_rows - s->blk_row);
        const uint32_t *lens = s->blk_lens + s->blk_row;
        size_t nz = 0;
        for (size_t i = 0; i < k; i++)
            nz += lens[i];
        if (wk_rows_reserve(d, k, nz) < 0)
            return ZPS_ENOMEM;
        memcpy(d->labels + d->n, s->blk_labels + s->blk_row, k * sizeof *d->labels);
        if (nz) {
            memcpy(d->ids + d->nnz, s->blk_ids, nz * sizeof *d->ids);
            memcpy(d->vals + d->nnz, s->blk_vals, nz * sizeof *d->vals);
        }
        size_t o = d->nnz;
        for (size_t i = 0; i < k; i++) {
            o += lens[i];
            d->offsets[d->n + i + 1] = o;
        }
        d->n += k;
        d->nnz = o;
        s->blk_ids += nz;
        s->blk_vals += nz;
        s->blk_row += k;
        s->rows_done += k;
    }
    return 0;
}

double wk_cache_rd_frac(const wk_cache_rd_t *c)
{
    return c->rows ? (double)c->rows_done / (double)c->rows : 1.0;
}

/* ---- writing ------------------------------------------------------------------------ */

wk_cache_w_t *wk_cache_w_new(void)
{
    wk_cache_w_t *w = calloc(1, sizeof *w);
    if (w)
        w->fd = -1;
    return w;
}

void wk_cache_w_close(wk_cache_w_t *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    w->owner = NULL;
}

void wk_cache_w_destroy(wk_cache_w_t **wp)
{
    if (!wp || !*wp)
        return;
    wk_cache_w_close(*wp);
    wk_rows_free(&(*wp)->blk);
    free((*wp)->lens);
    free(*wp);
    *wp = NULL;
}

void wk_cache_w_drop(wk_cache_w_t *w)
{
    wk_rows_clear(&w->blk);
}

static int s_pwrite_all(int fd, const void *p, size_t n, uint64_t *off)
{
    const char *c = p;
    while (n) {
        ssize_t k = pwrite(fd, c, n, (off_t)*off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
        *off += (uint64_t)k;
    }
    return 0;
}

/* The open temporary of f (one is kept open at a time), or -1. */
static int s_fd(wk_cache_w_t *w, const wk_cache_file_t *f)
{
    if (w->owner == f)
        return w->fd;
    wk_cache_w_close(w);
    int fd = open(f->tmp, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        w->fd = fd;
        w->owner = f;
    }
    return fd;
}

void wk_cache_w_start(wk_cache_w_t *w, wk_cache_file_t *f, const char *final)
{
    f->failed = 1;
    size_t n = final ? strlen(final) + 16 : 0;
    char *tmp = final ? malloc(n) : NULL;
    if (!tmp)
        return;
    snprintf(tmp, n, "%s.tmpXXXXXX", final);
    int fd = mkstemp(tmp);
    cache_hdr_t zero;
    memset(&zero, 0, sizeof zero);
    uint64_t off = 0;
    if (fd < 0 || s_pwrite_all(fd, &zero, sizeof zero, &off) < 0) {
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        return;
    }
    wk_cache_w_close(w);
    w->fd = fd;
    w->owner = f;
    f->tmp = tmp;
    f->failed = 0;
    f->off = off;
    f->rows = f->nnz = f->nblocks = f->bad = f->units = 0;
}

/* Writes the buffered rows of unit `id` as one cache block (also when
 * empty: every unit has a block, which carries its id and skipped-line
 * count). */
static void s_flush(wk_cache_w_t *w, wk_cache_file_t *f, uint64_t id, uint64_t bad)
{
    wk_rows_t *b = &w->blk;
    if (!f->tmp || f->failed) {
        wk_rows_clear(b);
        return;
    }
    int fd = s_fd(w, f);
    int ok = fd >= 0 && wk_grow((void **)&w->lens, &w->lens_cap, b->n + 1, sizeof *w->lens) == 0;
    for (size_t i = 0; ok && i < b->n; i++) {
        size_t l = b->offsets[i + 1] - b->offsets[i];
        ok = l <= UINT32_MAX;
        w->lens[i] = (uint32_t)l;
    }
    uint64_t bh[4] = {b->n, b->nnz, id, bad};
    size_t used = S_BLK_HDR + b->nnz * 12 + b->n * 8;
    static const char pad[8] = {0};
    uint64_t *off = &f->off;
    ok = ok && s_pwrite_all(fd, bh, sizeof bh, off) == 0 &&
         (b->nnz == 0 || (s_pwrite_all(fd, b->ids, b->nnz * sizeof *b->ids, off) == 0 &&
                          s_pwrite_all(fd, b->vals, b->nnz * sizeof *b->vals, off) == 0)) &&
         (b->n == 0 || (s_pwrite_all(fd, b->labels, b->n * sizeof *b->labels, off) == 0 &&
                        s_pwrite_all(fd, w->lens, b->n * sizeof *w->lens, off) == 0)) &&
         s_pwrite_all(fd, pad, s_block_bytes(b->n, b->nnz) - used, off) == 0;
    if (!ok) {
        f->failed = 1;
    } else {
        f->rows += b->n;
        f->nnz += b->nnz;
        f->bad += bad;
        f->nblocks++;
    }
    wk_rows_clear(b);
}

void wk_cache_w_add(wk_cache_w_t *w, wk_cache_file_t *f, uint64_t unit_id, const wk_rows_t *d,
                    size_t n0, size_t n1)
{
    if (f->failed || n0 == n1)
        return;
    if (wk_rows_append(&w->blk, d, n0, n1) < 0) {
        f->failed = 1;
        return;
    }
    if (w->blk.n >= S_BLOCK_ROWS || w->blk.nnz >= S_BLOCK_NNZ)
        s_flush(w, f, unit_id, 0);
}

void wk_cache_w_end_unit(wk_cache_w_t *w, wk_cache_file_t *f, uint64_t unit_id, uint64_t bad)
{
    s_flush(w, f, unit_id, bad);
    f->units++;
}

void wk_cache_w_abort(wk_cache_w_t *w, wk_cache_file_t *f)
{
    if (!f->tmp)
        return;
    if (w->owner == f)
        wk_cache_w_close(w);
    unlink(f->tmp);
    free(f->tmp);
    f->tmp = NULL;
}

void wk_cache_w_finish(wk_cache_w_t *w, wk_cache_file_t *f, const wk_cache_meta_t *m,
                       const char *final)
{
    cache_hdr_t h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, S_CACHE_MAGIC, 8);
    h.version = S_CACHE_VERSION;
    h.endian = S_CACHE_ENDIAN;
    h.hdr_bytes = sizeof h;
    h.src_size = m->src_size;
    h.src_mtime_ns = m->src_mtime_ns;
    h.format = m->format;
    h.labels = m->labels;
    h.hash_bits = m->hash_bits;
    h.split = m->split;
    h.shard = m->shard;
    h.nshards = m->nshards;
    h.block_bytes = m->block_bytes;
    h.first_block = m->first_block;
    h.rows = f->rows;
    h.nnz = f->nnz;
    h.bad_lines = f->bad;
    h.nblocks = f->nblocks;
    int fd = f->failed ? -1 : s_fd(w, f);
    uint64_t off = 0;
    if (fd >= 0 && s_pwrite_all(fd, &h, sizeof h, &off) == 0 && fchmod(fd, 0644) == 0) {
        w->fd = -1; /* closed here: a failing close means the data may be lost */
        w->owner = NULL;
        if (close(fd) == 0 && final && rename(f->tmp, final) == 0) {
            free(f->tmp);
            f->tmp = NULL;
        }
    }
    wk_cache_w_abort(w, f);
}
