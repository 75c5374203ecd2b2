/* fuzz_data.h: the data-reader checks shared by fuzz_data (plain text) and
 * fuzz_data_gz (gzip).  Included by those two harnesses only.
 *
 * The fuzz input is a whole data file.  It is read through the public API
 * (wk_reader_new / wk_reader_next / wk_reader_rewind) as an ordinary worker
 * does, and the results of different readings of the same bytes must agree:
 *
 *   for each format (auto, libsvm, criteo):
 *     A  strict (skip_bad_lines = 0), one shard
 *     B  skip_bad_lines = 1, one shard
 *        B never fails; if A succeeded, B equals A (rows, features, the rows
 *        themselves as an order-free checksum) with no bad line; if A failed,
 *        its error is "path:line:column: reason" with a line that exists in
 *        the file, B counted at least one bad line, and B's first skipped
 *        line (wk_reader_error) is A's error, word for word
 *   for one format (picked from the input's hash):
 *     C  skip_bad_lines, 2 and 3 shards: together the same rows, the same
 *        bad-line count as B, and A's error is the first bad line of one of
 *        the shards (line numbers of a byte-range shard are absolute)
 *     D  the binary cache: epoch 1 writes it, epoch 2 (after rewind) reads it
 *        and must give the same rows and bad-line count, from the cache
 *     E  a shuffle window: the same rows in another order
 *   every batch: at most max_rows rows, offsets from 0 and non-decreasing,
 *   labels 0/1 (binary) or integers 0..2^24 (classes), finite values, no
 *   bias key (UINT64_MAX), ids below 2^hash_bits when hashed, no repeated id
 *   in a libsvm row read without hashing; progress in [0, 1], never
 *   decreasing; wk_reader_rows = rows returned.
 * Label mode, hash bits and batch size are picked from a hash of the input,
 * so a given input always reads the same way. */
#ifndef FUZZ_DATA_H
#define FUZZ_DATA_H

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "wk_data.h"
#include "wk_idx.h"
#include "zps_err.h"

typedef struct {
    int rc;                 /* 0 or the negative code of wk_reader_next */
    uint64_t rows, nnz, bad;
    uint64_t sum, xr;       /* order-free checksum of the rows */
    int from_cache;         /* at the start of the last epoch */
    char err[600];          /* the error, or the first skipped line */
} fd_result_t;

typedef struct {
    zps_format_t format;
    int skip;
    uint32_t shard, nshards;
    int use_cache;
    const char *cache_dir;
    uint32_t shuffle;
    wk_label_mode_t labels;
    uint32_t hash_bits;
    size_t max_rows;
} fd_opts_t;

static uint64_t fd_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

static uint64_t fd_fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* The input as lines: how many lines (a last line without '\n' counts). */
static uint64_t fd_count_lines(const uint8_t *data, size_t size)
{
    uint64_t n = 0;
    for (size_t i = 0; i < size; i++)
        n += data[i] == '\n';
    return n + (size > 0 && data[size - 1] != '\n');
}

static void fd_check_batch(const fd_opts_t *o, const wk_batch_t *b, long got, fd_result_t *res)
{
    FUZZ_CHECK(got > 0 && (size_t)got == b->n && b->n <= o->max_rows, "batch of %ld rows (max %zu)",
               got, o->max_rows);
    FUZZ_CHECK(b->offsets[0] == 0, "offsets[0] = %zu", b->offsets[0]);
    for (size_t i = 0; i < b->n; i++) {
        size_t a = b->offsets[i], e = b->offsets[i + 1];
        FUZZ_CHECK(a <= e, "row %zu: offsets %zu > %zu", i, a, e);
        float l = b->labels[i];
        if (o->labels == WK_LABEL_BINARY)
            FUZZ_CHECK(l == 0.0f || l == 1.0f, "binary label %g", (double)l);
        else
            FUZZ_CHECK(l >= 0 && l <= (float)(1u << 24) && l == floorf(l), "class label %g",
                       (double)l);
        uint64_t h = fd_mix((uint64_t)(l * 7.0f) + 0x9e37 * (e - a));
        for (size_t j = a; j < e; j++) {
            uint64_t id = b->ids[j];
            float v = b->vals[j];
            FUZZ_CHECK(isfinite(v), "row %zu: value %g", i, (double)v);
            FUZZ_CHECK(id != UINT64_MAX, "row %zu: the bias key as a feature id", i);
            if (o->hash_bits > 0 && o->hash_bits < 64)
                FUZZ_CHECK(id < (1ULL << o->hash_bits), "id %llu over %u hash bits",
                           (unsigned long long)id, o->hash_bits);
            if (o->hash_bits == 0 && o->format == ZPS_FMT_LIBSVM)
                for (size_t k = a; k < j; k++)
                    FUZZ_CHECK(b->ids[k] != id, "row %zu: id %llu twice", i, (unsigned long long)id);
            uint32_t vb;
            memcpy(&vb, &v, 4);
            h = fd_mix(h ^ id) + vb;
        }
        res->sum += h;
        res->xr ^= fd_mix(h + 1);
        res->nnz += e - a;
    }
    res->rows += b->n;
}

/* Reads every epoch of path with o; res[e] for epoch e. */
static void fd_read(const char *path, const fd_opts_t *o, int epochs, fd_result_t *res)
{
    wk_data_conf_t c;
    memset(&c, 0, sizeof c);
    const char *paths[1] = {path};
    c.paths = paths;
    c.npaths = 1;
    c.format = o->format;
    c.shard = o->shard;
    c.nshards = o->nshards;
    c.cache_dir = o->cache_dir;
    c.use_cache = o->use_cache;
    c.skip_bad_lines = o->skip;
    c.labels = o->labels;
    c.hash_bits = o->hash_bits;
    c.shuffle_buffer = o->shuffle;
    c.seed = 42;
    char err[600];
    wk_reader_t *r = wk_reader_new(&c, err, sizeof err);
    FUZZ_CHECK(r, "wk_reader_new: %s", err);
    for (int ep = 0; ep < epochs; ep++) {
        fd_result_t *x = &res[ep];
        memset(x, 0, sizeof *x);
        if (ep > 0)
            FUZZ_CHECK(wk_reader_rewind(r) == 0, "rewind");
        x->from_cache = wk_reader_from_cache(r);
        double prog = 0;
        for (;;) {
            wk_batch_t b;
            long got = wk_reader_next(r, o->max_rows, &b);
            double p = wk_reader_progress(r);
            FUZZ_CHECK(p >= prog && p <= 1.0, "progress %g after %g", p, prog);
            prog = p;
            if (got < 0) {
                x->rc = (int)got;
                /* the error stays until rewind */
                FUZZ_CHECK(wk_reader_next(r, o->max_rows, &b) == got, "error not sticky");
                break;
            }
            if (got == 0)
                break;
            fd_check_batch(o, &b, got, x);
            FUZZ_CHECK(wk_reader_rows(r) == x->rows, "wk_reader_rows %llu, returned %llu",
                       (unsigned long long)wk_reader_rows(r), (unsigned long long)x->rows);
        }
        if (x->rc == 0)
            FUZZ_CHECK(prog == 1.0, "progress %g at the end of the epoch", prog);
        x->bad = wk_reader_bad_lines(r);
        snprintf(x->err, sizeof x->err, "%s", wk_reader_error(r));
    }
    wk_reader_destroy(&r);
    FUZZ_CHECK(r == NULL, "destroy");
}

/* "path:line:col: reason" -> line and column (checks the shape). */
static void fd_parse_err(const char *path, const char *msg, uint64_t *line, uint64_t *col)
{
    size_t pl = strlen(path);
    FUZZ_CHECK(strncmp(msg, path, pl) == 0 && msg[pl] == ':', "error '%s' does not name %s", msg,
               path);
    char *end;
    errno = 0;
    *line = strtoull(msg + pl + 1, &end, 10);
    FUZZ_CHECK(*end == ':' && *line >= 1, "error '%s': no line number", msg);
    *col = strtoull(end + 1, &end, 10);
    FUZZ_CHECK(*end == ':' && end[1] == ' ' && end[2] && *col >= 1, "error '%s': no column", msg);
}

static int fd_same(const fd_result_t *a, const fd_result_t *b)
{
    return a->rows == b->rows && a->nnz == b->nnz && a->sum == b->sum && a->xr == b->xr &&
           a->bad == b->bad;
}

/* path (in dir) holds the input; text is its content when text_known (else
 * a gzip stream of unknown content).  gz: the file is gzip, whose stream may
 * be broken (ZPS_EIO).  light: 0 everything; 1 only A and B with format
 * auto (big inputs); 2 only the format picked for C, D, E (the gzip harness:
 * fuzz_data covers the rest). */
static void fd_check_all(const char *dir, const char *path, const uint8_t *text, size_t tlen,
                         int gz, int text_known, int light)
{
    uint64_t h = fd_fnv(text, tlen);
    fd_opts_t o;
    memset(&o, 0, sizeof o);
    o.labels = (h >> 8) & 1 ? WK_LABEL_CLASS : WK_LABEL_BINARY;
    static const uint32_t bits[4] = {0, 0, 18, 64};
    o.hash_bits = bits[(h >> 9) & 3];
    o.max_rows = 1 + (h >> 11) % 5;
    o.nshards = 1;
    uint64_t nlines = fd_count_lines(text, tlen);
    static const zps_format_t fmts[3] = {ZPS_FMT_AUTO, ZPS_FMT_LIBSVM, ZPS_FMT_CRITEO};
    zps_format_t pick = fmts[(h >> 14) % 3];
    for (int f = 0; f < (light == 1 ? 1 : 3); f++) {
        o.format = fmts[f];
        if (light == 2 && fmts[f] != pick)
            continue;
        fd_result_t A, B;
        o.skip = 0;
        fd_read(path, &o, 1, &A);
        o.skip = 1;
        fd_read(path, &o, 1, &B);
        FUZZ_CHECK(A.bad == 0, "strict read counted %llu bad lines", (unsigned long long)A.bad);
        /* only a broken gzip stream stops a skipping reader; a strict one may
         * meet a bad line first */
        if (A.rc == ZPS_EIO || B.rc != 0) {
            FUZZ_CHECK(gz && B.rc == ZPS_EIO && (A.rc == ZPS_EIO || A.rc == ZPS_EINVAL),
                       "format %d, reads failed: strict %d (%s), skipping %d (%s)", f, A.rc, A.err,
                       B.rc, B.err);
            continue;
        }
        if (A.rc == 0) {
            FUZZ_CHECK(fd_same(&A, &B), "format %d: strict and skipping reads differ (%llu/%llu rows)",
                       f, (unsigned long long)A.rows, (unsigned long long)B.rows);
        } else {
            FUZZ_CHECK(A.rc == ZPS_EINVAL, "format %d: strict read failed with %d: %s", f, A.rc,
                       A.err);
            uint64_t line, col;
            fd_parse_err(path, A.err, &line, &col);
            if (text_known)
                FUZZ_CHECK(line <= nlines, "error at line %llu of %llu: %s",
                           (unsigned long long)line, (unsigned long long)nlines, A.err);
            FUZZ_CHECK(B.bad >= 1, "format %d: strict read failed (%s), skipping read found no "
                       "bad line", f, A.err);
            FUZZ_CHECK(strcmp(A.err, B.err) == 0, "format %d: first bad line '%s', strict error '%s'",
                       f, B.err, A.err);
            FUZZ_CHECK(B.rows >= A.rows, "skipping read has fewer rows");
        }
        if (fmts[f] != pick || light == 1)
            continue;

        /* C: shards */
        for (uint32_t W = 2; W <= 3; W++) {
            fd_result_t S, sum;
            memset(&sum, 0, sizeof sum);
            int found = A.rc == 0;
            for (uint32_t r = 0; r < W; r++) {
                fd_opts_t os = o;
                os.shard = r;
                os.nshards = W;
                fd_read(path, &os, 1, &S);
                FUZZ_CHECK(S.rc == 0, "shard %u of %u failed: %s", r, W, S.err);
                sum.rows += S.rows;
                sum.nnz += S.nnz;
                sum.sum += S.sum;
                sum.xr ^= S.xr;
                sum.bad += S.bad;
                if (!found && S.bad && strcmp(S.err, A.err) == 0)
                    found = 1;
                if (S.bad) {
                    uint64_t line, col;
                    fd_parse_err(path, S.err, &line, &col);
                    if (text_known)
                        FUZZ_CHECK(line <= nlines, "shard %u/%u: bad line %llu of %llu: %s", r, W,
                                   (unsigned long long)line, (unsigned long long)nlines, S.err);
                }
            }
            FUZZ_CHECK(fd_same(&sum, &B), "format %d, %u shards: %llu rows %llu bad, one reader "
                       "%llu rows %llu bad", f, W, (unsigned long long)sum.rows,
                       (unsigned long long)sum.bad, (unsigned long long)B.rows,
                       (unsigned long long)B.bad);
            FUZZ_CHECK(found, "format %d, %u shards: no shard reports the first bad line %s", f, W,
                       A.err);
        }

        /* D: cache written in epoch 1, read in epoch 2 */
        char cdir[PATH_MAX];
        snprintf(cdir, sizeof cdir, "%s/cache", dir);
        fuzz_empty_dir(cdir);
        fd_opts_t oc = o;
        oc.use_cache = 1;
        oc.cache_dir = cdir;
        fd_result_t E[2];
        fd_read(path, &oc, 2, E);
        FUZZ_CHECK(E[0].rc == 0 && E[1].rc == 0, "cached reads failed: %s / %s", E[0].err, E[1].err);
        FUZZ_CHECK(fd_same(&E[0], &B), "first cached epoch differs from a plain read");
        FUZZ_CHECK(fd_same(&E[1], &E[0]), "epoch from the cache differs (%llu/%llu rows, %llu/%llu bad)",
                   (unsigned long long)E[1].rows, (unsigned long long)E[0].rows,
                   (unsigned long long)E[1].bad, (unsigned long long)E[0].bad);
        FUZZ_CHECK(E[1].from_cache, "second epoch not read from the cache");
        /* a strict reader does not use a cache with skipped lines */
        if (B.bad) {
            fd_opts_t os = oc;
            os.skip = 0;
            fd_result_t X;
            fd_read(path, &os, 1, &X);
            FUZZ_CHECK(X.rc == A.rc && !X.from_cache, "strict reader used a cache with bad lines");
        }
        fuzz_empty_dir(cdir);

        /* E: shuffle window, two epochs */
        fd_opts_t osh = o;
        osh.shuffle = 1 + (uint32_t)((h >> 20) % 7);
        fd_read(path, &osh, 2, E);
        FUZZ_CHECK(E[0].rc == 0 && fd_same(&E[0], &B) && fd_same(&E[1], &B),
                   "shuffled reads differ from a plain read");
    }
}

#endif
