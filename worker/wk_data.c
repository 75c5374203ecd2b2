/* wk_data: see wk_data.h for the contract.
 *
 * DESIGN
 * Files.  The reader is this file and five modules, each behind its own
 * header: wk_paths (the sorted input list), wk_layout (parts, units and
 * their order, the window permutation: pure), wk_source (mapped byte
 * ranges and gzip streams as lines), wk_parse (lines -> rows: pure) and
 * wk_cache (the binary cache), all on wk_rows (the CSR row buffer).  This
 * file ties them together per epoch: it stats the inputs, builds the
 * layout, decides per part whether its cache is valid, opens each unit from
 * the cache or the text, numbers bad lines, fills the shuffle window, cuts
 * batches and keeps the counters.  wk_idx serves --format idx behind the
 * same interface.
 *
 * Epochs.  At the start of every epoch the files are stat'ed and checked
 * for the gzip magic and the layout is built: "parts" (one per file this
 * worker reads) and "units" (read to their end in one go: a byte range of a
 * plain file, or a whole gzip part), read in the layout's order; every
 * worker computes the same.  Only one file is mapped at a time (text or
 * cache, kept while consecutive units use it); with blocks in random order
 * each block is madvise'd WILLNEED when opened.  A plain file's format
 * (AUTO) is detected from its first content line, by every worker alike; a
 * gzip unit detects it from its own first content line (kept or not).
 *
 * Cache use.  A part's cache is used only if it matches the input's size
 * and mtime when the epoch started, the format, the shard layout, the hash
 * settings and the cache version.  It is written while the part's units
 * are read from text and published as soon as all of them were read
 * without error (so a file's cache survives an error in a later file); an
 * abandoned part (error, rewind, destroy) removes its temporary; a part
 * whose input changed since the epoch started is not cached, a stale cache
 * is replaced.  A cached epoch returns the same rows in the same order for
 * a given (seed, epoch) as the text (a restarted worker skips acknowledged
 * rows by count).  Skipped bad lines are counted in the cache, so later
 * epochs report the same wk_reader_bad_lines, and a cache with skipped
 * lines is not used by a reader that does not skip them.  A cache that
 * cannot be written (directory missing or not writable, disk full) is
 * silently not written: caching is an optimisation.  wk_reader_from_cache
 * is 1 when every part of the epoch had a valid cache when the epoch
 * started (and was opened from it).
 *
 * Bad lines.  The parser says why and at which column; this file adds the
 * file and the absolute line number ("file:line:column: reason"): for a
 * byte range the number of its first line is counted only then.
 *
 * Shuffling.  With shuffle_buffer > 0 rows are read (units in their
 * permuted order) into a window of that many rows, served in a
 * wk_layout_shuffle order from one stream per (seed, epoch), and refilled
 * when used up.  The window's content does not depend on the batch sizes.
 *
 * Counters.  wk_reader_rows and wk_reader_bad_lines count the current epoch.
 * wk_reader_progress is (bytes, or a unit's cached rows as its bytes,
 * consumed) / (bytes of the shard), times rows returned / rows read (the
 * shuffle window reads ahead), updated per batch and never decreasing
 * within an epoch.  With skip_bad_lines, wk_reader_error returns the first
 * skipped line's "file:line:column: reason" (kept across epochs) while no
 * error is pending.  After an error wk_reader_next keeps returning it until
 * wk_reader_rewind. */
#include "wk_data.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "wk_cache.h"
#include "wk_idx.h"
#include "wk_layout.h"
#include "wk_parse.h"
#include "wk_paths.h"
#include "wk_rows.h"
#include "wk_source.h"
#include "zps_err.h"

#define S_MSGLEN 512

enum { SRC_NONE = 0, SRC_MAP, SRC_GZ, SRC_CACHE };

/* A part of this epoch's layout (r->lay.parts[i]) as the reader uses it. */
typedef struct {
    const char *path;        /* into wk_reader.files */
    struct stat st;          /* the input when the epoch started */
    size_t units_done;       /* units read to their end this epoch */
    int cache_ok;            /* a valid cache existed when the epoch started */
    struct stat cst;         /* ... this file */
    wk_cache_file_t cw;      /* the cache written this epoch */
} part_t;

typedef struct {
    int kind;
    part_t *part;
    const wk_part_t *lp;
    const wk_unit_t *unit;
    size_t ui;
    zps_format_t fmt;      /* AUTO until detected */
    uint64_t line;         /* lines passed: since the range's first (map) or in the file (gz) */
    wk_maplines_t ml;      /* SRC_MAP (into the reader's mapping) */
    wk_cache_rd_t cr;      /* SRC_CACHE (into the reader's mapping); SRC_GZ: r->gz */
    int writing;           /* the rows go to the part's cache */
    uint64_t bad0;         /* r->bad when the unit was opened */
} src_t;

struct wk_reader {
    wk_data_conf_t conf;   /* paths not kept; cache_dir owned */
    char **files;
    size_t nfiles;
    int mixed;             /* block sharding, permuted order (shuffle_buffer > 0) */
    wk_layout_t lay;       /* this epoch's parts, units and order */
    part_t *parts;         /* lay.nparts */
    wk_cache_unit_t *cunits; /* lay.nunits: ids, and where a valid cache holds them */
    size_t next_unit;
    src_t src;
    /* the one mapped file: the text (m_cache 0) or the cache of part m_part */
    const char *m_map;
    size_t m_len;
    long m_part;
    int m_cache;
    zps_format_t m_fmt;    /* text: detected from its first content line */
    size_t m_first;        /* text: where that line starts (the lines before are skipped) */
    wk_cache_w_t *cw;
    wk_gzlines_t *gz;
    wk_parser_t *parser;
    uint64_t epoch, rng;
    int status, done, from_cache;
    uint64_t rows_out, rows_in, bad;
    uint64_t weight_total, weight_done;
    double progress;       /* reported: never decreases within an epoch */
    wk_rows_t batch, win;
    size_t *perm;
    size_t perm_cap, win_pos;
    char err[S_MSGLEN];
    char first_bad[S_MSGLEN];
    wk_idx_t *idx;         /* --format idx: that reader serves every call */
};

/* ---- small helpers ------------------------------------------------------- */

static void s_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Sets the reader's error and returns code. */
static int s_fail(wk_reader_t *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    return code;
}

/* What the cache of part pi must match. */
static wk_cache_meta_t s_meta(const wk_reader_t *r, size_t pi)
{
    const wk_part_t *lp = &r->lay.parts[pi];
    const part_t *pt = &r->parts[pi];
    wk_cache_meta_t m = {
        .src_size = (uint64_t)pt->st.st_size,
        .src_mtime_ns = wk_mtime_ns(&pt->st),
        .format = (uint32_t)r->conf.format,
        .labels = (uint32_t)r->conf.labels,
        .hash_bits = r->conf.hash_bits,
        .split = lp->split,
        .shard = lp->shard,
        .nshards = lp->nshards,
        .block_bytes = lp->block_bytes,
        .first_block = lp->first_block,
    };
    return m;
}

static char *s_cache_name(const wk_reader_t *r, size_t pi)
{
    wk_cache_meta_t m = s_meta(r, pi);
    return wk_cache_name(r->parts[pi].path, r->conf.cache_dir, &m);
}

/* ---- lines --------------------------------------------------------------- */

/* One line (without its newline) of the current text source. */
static int s_parse_line(wk_reader_t *r, src_t *s, wk_rows_t *d, const char *ls, const char *le)
{
    if (s->fmt == ZPS_FMT_AUTO) {
        s->fmt = wk_parse_detect(ls, le);
        if (s->fmt == ZPS_FMT_AUTO)
            return 0;
    }
    return wk_parse_line(r->parser, s->fmt, d, ls, le);
}

/* After the parser's WK_PARSE_BAD for the line being read: skip and count
 * it, or turn it into the reader's error. */
static int s_bad_line(wk_reader_t *r, src_t *s)
{
    if (r->conf.skip_bad_lines && r->first_bad[0]) {
        r->bad++; /* only the first one is named: no line number needed */
        return 0;
    }
    uint64_t line = s->kind == SRC_MAP ? wk_maplines_base(&s->ml) + s->line : s->line + 1;
    char msg[S_MSGLEN];
    snprintf(msg, sizeof msg, "%s:%llu:%zu: %s", s->part->path, (unsigned long long)line,
             wk_parse_column(r->parser), wk_parse_reason(r->parser));
    if (r->conf.skip_bad_lines) {
        r->bad++;
        if (!r->first_bad[0])
            memcpy(r->first_bad, msg, sizeof msg);
        return 0;
    }
    memcpy(r->err, msg, sizeof msg);
    return ZPS_EINVAL;
}

/* Parses lines of a mapped range until d has want rows or the range ends
 * (*at_end = 1). */
static int s_read_map(wk_reader_t *r, src_t *s, wk_rows_t *d, size_t want, int *at_end)
{
    while (d->n < want) {
        const char *ls, *le;
        if (!wk_maplines_next(&s->ml, &ls, &le)) {
            *at_end = 1;
            return 0;
        }
        /* the lines before the file's first content line are blank or
         * comments (wk_parse_first_content): skipped whatever the format, as
         * a gzip stream skips them while it detects the format */
        int rc = ls < r->m_map + r->m_first ? 0 : s_parse_line(r, s, d, ls, le);
        if (rc == WK_PARSE_BAD)
            rc = s_bad_line(r, s);
        s->line++;
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The same for a gzip stream, keeping the lines of this shard. */
static int s_read_gz(wk_reader_t *r, src_t *s, wk_rows_t *d, size_t want, int *at_end)
{
    uint32_t W = s->lp->nshards, me = s->lp->shard;
    while (d->n < want) {
        const char *ls, *le;
        int rc = wk_gzlines_next(r->gz, &ls, &le, r->err, sizeof r->err);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            *at_end = 1;
            return 0;
        }
        rc = 0;
        if (W <= 1 || s->line % W == me) {
            rc = s_parse_line(r, s, d, ls, le);
            if (rc == WK_PARSE_BAD)
                rc = s_bad_line(r, s);
        } else if (s->fmt == ZPS_FMT_AUTO) {
            s->fmt = wk_parse_detect(ls, le);
        }
        s->line++;
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int s_read_cache(wk_reader_t *r, src_t *s, wk_rows_t *d, size_t want, int *at_end)
{
    int rc = wk_cache_rd_next(&s->cr, d, want, at_end);
    if (rc == ZPS_EIO)
        return s_fail(r, ZPS_EIO, "%s: cache file is corrupt", s->part->path);
    if (rc < 0)
        return s_fail(r, ZPS_ENOMEM, "out of memory");
    return 0;
}

/* ---- the mapped file ------------------------------------------------------------ */

static void s_unmap(wk_reader_t *r)
{
    if (r->m_map)
        munmap((void *)r->m_map, r->m_len);
    r->m_map = NULL;
    r->m_len = 0;
    r->m_part = -1;
}

/* Maps the cache of part pi (checked at the epoch's start) unless mapped.
 * 0, or -1 if it is gone or was replaced since. */
static int s_map_cache(wk_reader_t *r, size_t pi)
{
    if (r->m_part == (long)pi && r->m_cache)
        return 0;
    s_unmap(r);
    char *name = s_cache_name(r, pi);
    const char *map;
    size_t len;
    int rc = wk_cache_map(name, &r->parts[pi].cst, &map, &len);
    free(name);
    if (rc < 0)
        return -1;
    r->m_map = map;
    r->m_len = len;
    r->m_part = (long)pi;
    r->m_cache = 1;
    return 0;
}

/* Maps the text of part pi unless mapped.  A file that changed since the
 * epoch started is read as it is now, but not cached. */
static int s_map_text(wk_reader_t *r, size_t pi)
{
    if (r->m_part == (long)pi && !r->m_cache)
        return 0;
    s_unmap(r);
    part_t *pt = &r->parts[pi];
    struct stat st;
    const char *map;
    size_t len;
    int rc = wk_source_map(pt->path, !r->mixed, &map, &len, &st, r->err, sizeof r->err);
    if (rc < 0)
        return rc;
    if (!wk_same_file(&st, &pt->st))
        pt->cw.failed = 1;
    r->m_map = map;
    r->m_len = len;
    r->m_part = (long)pi;
    r->m_cache = 0;
    r->m_fmt = wk_parse_first_content(map, len, &r->m_first); /* the same for every worker */
    return 0;
}

/* ---- units ----------------------------------------------------------------- */

static void s_src_close(wk_reader_t *r, src_t *s)
{
    if (r->gz)
        wk_gzlines_close(r->gz);
    if (r->cw)
        wk_cache_w_drop(r->cw); /* rows of an unfinished unit */
    memset(s, 0, sizeof *s);
    s->kind = SRC_NONE;
}

/* Starts the part's cache (its first unit is read from text). */
static void s_cw_start(wk_reader_t *r, size_t pi)
{
    char *name = s_cache_name(r, pi);
    wk_cache_w_start(r->cw, &r->parts[pi].cw, name);
    free(name);
}

static int s_src_open(wk_reader_t *r, size_t ui)
{
    src_t *s = &r->src;
    const wk_unit_t *u = &r->lay.units[ui];
    size_t pi = u->part;
    part_t *pt = &r->parts[pi];
    s->part = pt;
    s->lp = &r->lay.parts[pi];
    s->unit = u;
    s->ui = ui;
    s->fmt = r->conf.format;
    s->bad0 = r->bad;
    if (pt->cache_ok && s_map_cache(r, pi) == 0) {
        s->kind = SRC_CACHE;
        wk_cache_rd_open(&s->cr, r->m_map, &r->cunits[ui]);
        r->bad += r->cunits[ui].bad;
        return 0;
    }
    r->from_cache = 0;
    if (r->conf.use_cache && !pt->cache_ok && !pt->cw.tmp && !pt->cw.failed &&
        pt->units_done == 0)
        s_cw_start(r, pi);
    s->writing = pt->cw.tmp && !pt->cw.failed;
    if (s->lp->gz) {
        int changed = 0;
        int rc = wk_gzlines_open(r->gz, pt->path, &pt->st, &changed, r->err, sizeof r->err);
        if (changed)
            pt->cw.failed = 1;
        if (rc < 0)
            return rc;
        s->kind = SRC_GZ;
        return 0;
    }
    int rc = s_map_text(r, pi);
    if (rc < 0)
        return rc;
    s->kind = SRC_MAP;
    if (r->m_len == 0) /* no lines */
        return 0;
    if (s->fmt == ZPS_FMT_AUTO)
        s->fmt = r->m_fmt;
    wk_maplines_open(&s->ml, r->m_map, r->m_len, u->lo, u->hi);
    if (r->mixed) /* units come in random order: read the block ahead */
        wk_maplines_prefetch(&s->ml);
    return 0;
}

/* Fraction of the current unit consumed. */
static double s_src_frac(const wk_reader_t *r, const src_t *s)
{
    switch (s->kind) {
    case SRC_MAP:
        return wk_maplines_frac(&s->ml);
    case SRC_GZ:
        return wk_gzlines_frac(r->gz, (uint64_t)s->part->st.st_size);
    case SRC_CACHE:
        return wk_cache_rd_frac(&s->cr);
    default:
        return 0.0;
    }
}

/* The unit was read to its end without error. */
static void s_unit_end(wk_reader_t *r, src_t *s)
{
    part_t *pt = s->part;
    if (s->writing && !pt->cw.failed)
        wk_cache_w_end_unit(r->cw, &pt->cw, s->unit->id, r->bad - s->bad0);
    pt->units_done++;
    if (pt->cw.tmp && pt->units_done == s->lp->nunits) {
        if (pt->cw.units == s->lp->nunits && !pt->cw.failed) {
            size_t pi = (size_t)(pt - r->parts);
            wk_cache_meta_t m = s_meta(r, pi);
            char *name = s_cache_name(r, pi);
            wk_cache_w_finish(r->cw, &pt->cw, &m, name);
            free(name);
        } else {
            wk_cache_w_abort(r->cw, &pt->cw);
        }
    }
}

/* Appends rows to d until it has want rows or the epoch ends (r->done). */
static int s_fill(wk_reader_t *r, wk_rows_t *d, size_t want)
{
    while (d->n < want) {
        src_t *s = &r->src;
        if (s->kind == SRC_NONE) {
            if (r->next_unit == r->lay.nunits) {
                r->done = 1;
                return 0;
            }
            int rc = s_src_open(r, r->lay.order[r->next_unit++]);
            if (rc < 0) {
                s_src_close(r, s);
                return rc;
            }
        }
        size_t n0 = d->n;
        int at_end = 0, rc;
        if (s->kind == SRC_MAP)
            rc = s_read_map(r, s, d, want, &at_end);
        else if (s->kind == SRC_GZ)
            rc = s_read_gz(r, s, d, want, &at_end);
        else
            rc = s_read_cache(r, s, d, want, &at_end);
        if (rc == ZPS_ENOMEM && !r->err[0])
            s_fail(r, rc, "%s: out of memory", s->part->path);
        if (rc < 0)
            return rc;
        if (s->writing)
            wk_cache_w_add(r->cw, &s->part->cw, s->unit->id, d, n0, d->n);
        r->rows_in += d->n - n0;
        if (at_end) {
            s_unit_end(r, s);
            r->weight_done += s->unit->weight;
            s_src_close(r, s);
        }
    }
    return 0;
}

/* ---- epochs ------------------------------------------------------------------ */

/* Drops the epoch's layout: unfinished caches are removed. */
static void s_layout_free(wk_reader_t *r)
{
    s_src_close(r, &r->src);
    for (size_t i = 0; r->cw && i < r->lay.nparts; i++)
        wk_cache_w_abort(r->cw, &r->parts[i].cw);
    if (r->cw)
        wk_cache_w_close(r->cw);
    s_unmap(r);
    free(r->parts);
    free(r->cunits);
    r->parts = NULL;
    r->cunits = NULL;
    wk_layout_free(&r->lay);
    r->next_unit = 0;
}

/* This epoch's layout from the files as they are now; every worker
 * computes the same. */
static int s_layout(wk_reader_t *r)
{
    size_t n = r->nfiles;
    struct stat *st = calloc(n ? n : 1, sizeof *st);
    int *gz = calloc(n ? n : 1, sizeof *gz);
    uint64_t *sizes = calloc(n ? n : 1, sizeof *sizes);
    int rc = st && gz && sizes ? 0 : ZPS_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        wk_source_probe(r->files[i], &st[i], &gz[i]);
        sizes[i] = (uint64_t)st[i].st_size;
    }
    wk_layout_conf_t c = {r->conf.nshards, r->conf.shard, r->mixed, r->conf.block_bytes,
                         r->conf.seed, r->epoch};
    if (rc == 0)
        rc = wk_layout_build(&r->lay, &c, sizes, gz, n);
    if (rc == 0) {
        r->parts = calloc(r->lay.nparts ? r->lay.nparts : 1, sizeof *r->parts);
        r->cunits = calloc(r->lay.nunits ? r->lay.nunits : 1, sizeof *r->cunits);
        if (!r->parts || !r->cunits)
            rc = ZPS_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < r->lay.nparts; i++) {
        size_t f = r->lay.parts[i].file;
        r->parts[i].path = r->files[f];
        r->parts[i].st = st[f];
    }
    for (size_t i = 0; rc == 0 && i < r->lay.nunits; i++)
        r->cunits[i].id = r->lay.units[i].id;
    free(st);
    free(gz);
    free(sizes);
    return rc;
}

static int s_epoch_start(wk_reader_t *r)
{
    s_layout_free(r);
    r->status = 0;
    r->err[0] = '\0';
    r->done = 0;
    r->rows_out = r->rows_in = r->bad = 0;
    r->weight_total = r->weight_done = 0;
    r->progress = 0.0;
    wk_rows_clear(&r->win);
    wk_rows_clear(&r->batch);
    wk_cache_w_drop(r->cw);
    r->win_pos = 0;
    r->rng = wk_layout_window_rng(r->conf.seed, r->epoch);
    int rc = s_layout(r);
    if (rc < 0) {
        r->status = s_fail(r, rc, "out of memory");
        return rc;
    }
    int all = r->lay.nparts > 0 && r->conf.use_cache;
    for (size_t i = 0; i < r->lay.nparts; i++) {
        part_t *pt = &r->parts[i];
        const wk_part_t *lp = &r->lay.parts[i];
        char *name = r->conf.use_cache ? s_cache_name(r, i) : NULL;
        wk_cache_meta_t m = s_meta(r, i);
        pt->cache_ok = name && wk_cache_check(name, &m, r->conf.skip_bad_lines,
                                              &r->cunits[lp->unit0], lp->nunits, &pt->cst);
        free(name);
        all = all && pt->cache_ok;
    }
    for (size_t i = 0; i < r->lay.nunits; i++)
        r->weight_total += r->lay.units[i].weight;
    r->from_cache = all;
    return 0;
}

/* ---- public -------------------------------------------------------------- */
/* IDX image/label pairs (wk_idx) bypass the text readers and the cache. */
static wk_reader_t *s_new_idx(const wk_data_conf_t *conf, char *err, size_t errlen)
{
    if (conf->npaths != 1) {
        s_errf(err, errlen, "--format idx reads one IMAGES[,LABELS] pair per --train/--test");
        return NULL;
    }
    wk_idx_conf_t ic = {conf->paths[0], conf->shard, conf->nshards, conf->labels,
                        conf->shuffle_buffer, conf->seed};
    wk_reader_t *r = calloc(1, sizeof *r);
    if (!r || !(r->idx = wk_idx_new(&ic, err, errlen))) {
        if (!r)
            s_errf(err, errlen, "out of memory");
        free(r);
        return NULL;
    }
    return r;
}

wk_reader_t *wk_reader_new(const wk_data_conf_t *conf, char *err, size_t errlen)
{
    s_errf(err, errlen, "%s", "");
    if (!conf || !conf->paths || conf->npaths == 0) {
        s_errf(err, errlen, "no input paths");
        return NULL;
    }
    uint32_t W = conf->nshards ? conf->nshards : 1;
    if (conf->shard >= W) {
        s_errf(err, errlen, "shard %u out of range (%u shards)", conf->shard, W);
        return NULL;
    }
    if (conf->format == ZPS_FMT_IDX ||
        (conf->format == ZPS_FMT_AUTO && conf->npaths == 1 && wk_idx_sniff(conf->paths[0])))
        return s_new_idx(conf, err, errlen);
    if (conf->hash_bits > 64 || (unsigned)conf->format > ZPS_FMT_CRITEO ||
        (unsigned)conf->labels > WK_LABEL_CLASS) {
        s_errf(err, errlen, "bad data options (format, labels or hash bits > 64)");
        return NULL;
    }
    wk_reader_t *r = calloc(1, sizeof *r);
    if (!r) {
        s_errf(err, errlen, "out of memory");
        return NULL;
    }
    r->conf = *conf;
    r->conf.paths = NULL;
    r->conf.npaths = 0;
    r->conf.nshards = W;
    r->conf.cache_dir = NULL;
    r->m_part = -1;
    if (conf->cache_dir && conf->cache_dir[0]) {
        r->conf.cache_dir = strdup(conf->cache_dir);
        if (!r->conf.cache_dir)
            goto nomem;
        if (conf->use_cache)
            (void)mkdir(conf->cache_dir, 0755); /* best effort */
    }
    if (wk_paths_expand(conf->paths, conf->npaths, &r->files, &r->nfiles, err, errlen) < 0) {
        wk_reader_destroy(&r);
        return NULL;
    }

    r->mixed = conf->shuffle_buffer > 0;
    r->parser = wk_parser_new(conf->labels, conf->hash_bits);
    r->cw = wk_cache_w_new();
    r->gz = wk_gzlines_new();
    if (!r->parser || !r->cw || !r->gz)
        goto nomem;
    if (wk_rows_reserve(&r->batch, 1, 1) < 0 || wk_rows_reserve(&r->win, 1, 1) < 0)
        goto nomem;
    if (s_epoch_start(r) < 0)
        goto nomem;
    return r;
nomem:
    s_errf(err, errlen, "out of memory");
    wk_reader_destroy(&r);
    return NULL;
}

void wk_reader_destroy(wk_reader_t **rp)
{
    if (!rp || !*rp)
        return;
    wk_reader_t *r = *rp;
    wk_idx_destroy(&r->idx);
    s_layout_free(r);
    wk_cache_w_destroy(&r->cw);
    wk_gzlines_destroy(&r->gz);
    wk_parser_destroy(&r->parser);
    wk_paths_free(r->files, r->nfiles);
    free((char *)r->conf.cache_dir);
    wk_rows_free(&r->batch);
    wk_rows_free(&r->win);
    free(r->perm);
    free(r);
    *rp = NULL;
}

/* Progress estimate after a batch: bytes (or cached rows) consumed, scaled
 * down by the rows still waiting in the shuffle window. */
static double s_progress(const wk_reader_t *r)
{
    if (r->done && r->win_pos == r->win.n)
        return 1.0;
    if (r->weight_total == 0)
        return 0.0;
    double w = (double)r->weight_done;
    if (r->src.kind != SRC_NONE)
        w += (double)r->src.unit->weight * s_src_frac(r, &r->src);
    double f = w / (double)r->weight_total;
    /* rows read ahead into the shuffle window are not consumed yet */
    if (r->rows_in > 0 && r->rows_out < r->rows_in)
        f *= (double)r->rows_out / (double)r->rows_in;
    return f > 1.0 ? 1.0 : f;
}

long wk_reader_next(wk_reader_t *r, size_t max_rows, wk_batch_t *b)
{
    if (!r || !b || max_rows == 0)
        return ZPS_EINVAL;
    if (r->idx)
        return wk_idx_next(r->idx, max_rows, b);
    if (r->status < 0)
        return r->status;
    wk_rows_clear(&r->batch);
    int rc = 0;
    if (r->conf.shuffle_buffer == 0) {
        rc = s_fill(r, &r->batch, max_rows);
    } else {
        while (rc == 0 && r->batch.n < max_rows) {
            if (r->win_pos == r->win.n) {
                if (r->done)
                    break;
                wk_rows_clear(&r->win);
                r->win_pos = 0;
                rc = s_fill(r, &r->win, r->conf.shuffle_buffer);
                if (rc < 0)
                    break;
                size_t n = r->win.n;
                if (n == 0)
                    break;
                if (wk_grow((void **)&r->perm, &r->perm_cap, n, sizeof *r->perm) < 0) {
                    rc = s_fail(r, ZPS_ENOMEM, "out of memory");
                    break;
                }
                for (size_t i = 0; i < n; i++)
                    r->perm[i] = i;
                wk_layout_shuffle(r->perm, n, &r->rng);
            }
            while (r->batch.n < max_rows && r->win_pos < r->win.n) {
                size_t i = r->perm[r->win_pos++];
                rc = wk_rows_append(&r->batch, &r->win, i, i + 1);
                if (rc < 0) {
                    s_fail(r, rc, "out of memory");
                    break;
                }
            }
        }
    }
    if (rc < 0) {
        r->status = rc;
        if (!r->err[0])
            s_fail(r, rc, "%s", zps_strerror(rc));
        return rc;
    }
    r->rows_out += r->batch.n;
    double pr = s_progress(r);
    if (pr > r->progress)
        r->progress = pr;
    b->n = r->batch.n;
    b->labels = r->batch.labels;
    b->offsets = r->batch.offsets;
    b->ids = r->batch.ids;
    b->vals = r->batch.vals;
    return (long)r->batch.n;
}

int wk_reader_rewind(wk_reader_t *r)
{
    if (!r)
        return ZPS_EINVAL;
    if (r->idx) {
        wk_idx_rewind(r->idx);
        return 0;
    }
    r->epoch++;
    return s_epoch_start(r);
}

const char *wk_reader_error(const wk_reader_t *r)
{
    if (!r)
        return "no reader";
    return r->err[0] ? r->err : r->first_bad;
}

uint64_t wk_reader_bad_lines(const wk_reader_t *r)
{
    return r ? r->bad : 0;
}

uint64_t wk_reader_rows(const wk_reader_t *r)
{
    return r ? (r->idx ? wk_idx_rows(r->idx) : r->rows_out) : 0;
}

double wk_reader_progress(const wk_reader_t *r)
{
    return r ? (r->idx ? wk_idx_progress(r->idx) : r->progress) : 0.0;
}

int wk_reader_from_cache(const wk_reader_t *r)
{
    return r ? r->from_cache : 0;
}

size_t wk_reader_cache_path(const wk_reader_t *r, char *buf, size_t len)
{
    if (len)
        buf[0] = 0;
    if (!r || !r->conf.use_cache || r->lay.nparts == 0)
        return 0;
    char *name = s_cache_name(r, 0);
    if (!name)
        return 0;
    snprintf(buf, len, "%s", name);
    free(name);
    return r->lay.nparts;
}

int wk_reader_all_empty(const wk_reader_t *r, char *names, size_t len)
{
    if (len)
        names[0] = 0;
    return r && wk_paths_all_empty(r->files, r->nfiles, names, len);
}
