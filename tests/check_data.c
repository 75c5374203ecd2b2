/* check_data: the training-data reader through its public API (worker/wk_data.c
 * and its modules wk_paths, wk_layout, wk_source, wk_parse, wk_cache; the
 * pure parsers and the layout alone: check_parse.c).
 *
 * Every test writes small files into its own mkdtemp directory and removes
 * it at the end.  Parsing tests compare every label, id and value against
 * hand-written expectations; error tests compare the exact
 * "file:line:column: " prefix and the reason.  Property tests compare the
 * multiset of rows (each row printed exactly, floats as %a) of a sharded or
 * cached or shuffled read against a plain single-worker read:
 *   - the union of shards 0..W-1 is the file, each row once (W = 1..5; plain
 *     files with CRLF, blank, comment, long and unterminated lines; gzip;
 *     several files dealt round-robin or split);
 *   - a cached epoch returns the same rows; a changed input (size or mtime)
 *     is parsed again; other settings do not use the cache;
 *   - block shards (shuffle_buffer > 0): the union of W = 1..5 workers is
 *     the input exactly once for several block sizes and inputs (one file;
 *     plain files with a gzip one; gzip files dealt whole); a label-sorted
 *     file gives every worker both labels and no worker a contiguous range;
 *     blocks come in a permuted order per (seed, epoch), the same from the
 *     text or the cache; block caches are per layout and survive errors;
 *   - a shuffled epoch is a permutation of the input. */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check_suites.h"
#include "wk_data.h"
#include "zps_err.h"
#include "zps_rng.h"

/* Check records each passing ck_assert; loops test plainly and only call
 * into Check on failure. */
#define T_REQUIRE(cond, ...)           \
    do {                               \
        if (!(cond))                   \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)

/* ---- files ------------------------------------------------------------------ */

typedef struct {
    char dir[64];
} tdir_t;

static void s_tdir(tdir_t *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/zps-check-data-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t->dir));
}

static int s_rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static void s_tdir_rm(tdir_t *t)
{
    nftw(t->dir, s_rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

/* dir/name into buf (256 bytes). */
static const char *s_path(char *buf, const tdir_t *t, const char *name)
{
    snprintf(buf, 256, "%s/%s", t->dir, name);
    return buf;
}

static void s_write(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static void s_write_str(const char *path, const char *data)
{
    s_write(path, data, strlen(data));
}

static void s_write_gz(const char *path, const char *data, size_t len)
{
    gzFile g = gzopen(path, "wb6");
    ck_assert_ptr_nonnull(g);
    if (len)
        ck_assert_int_eq(gzwrite(g, data, (unsigned)len), (int)len);
    ck_assert_int_eq(gzclose(g), Z_OK);
}

static size_t s_count_glob(const tdir_t *t, const char *pattern)
{
    char pat[256];
    glob_t g;
    if (glob(s_path(pat, t, pattern), 0, NULL, &g) != 0)
        return 0;
    size_t n = g.gl_pathc;
    globfree(&g);
    return n;
}

/* growable string */
typedef struct {
    char *s;
    size_t n, cap;
} sb_t;

static void s_sb_printf(sb_t *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        ck_assert_int_ge(k, 0);
        if (b->s && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        b->cap = (b->cap + (size_t)k + 1) * 2;
        b->s = realloc(b->s, b->cap);
        ck_assert_ptr_nonnull(b->s);
    }
}

/* ---- readers --------------------------------------------------------------- */

static wk_data_conf_t s_conf(const char *const *paths, size_t n)
{
    wk_data_conf_t c;
    memset(&c, 0, sizeof c);
    c.paths = paths;
    c.npaths = n;
    c.format = ZPS_FMT_AUTO;
    c.shard = 0;
    c.nshards = 1;
    c.labels = WK_LABEL_BINARY;
    return c;
}

static wk_reader_t *s_open(const wk_data_conf_t *c)
{
    char err[512] = "";
    wk_reader_t *r = wk_reader_new(c, err, sizeof err);
    ck_assert_msg(r != NULL, "wk_reader_new: %s", err);
    return r;
}

/* A small epoch, flattened. */
typedef struct {
    size_t n, nnz;
    float labels[256];
    size_t off[257];
    uint64_t ids[2048];
    float vals[2048];
} flat_t;

/* Reads the rest of the epoch into f in batches of `batch` rows; returns 0
 * or the reader's error code. */
static long s_read_flat(wk_reader_t *r, size_t batch, flat_t *f)
{
    memset(f, 0, sizeof *f);
    wk_batch_t b;
    long n;
    while ((n = wk_reader_next(r, batch, &b)) > 0) {
        ck_assert_uint_le((size_t)n, batch);
        ck_assert_uint_eq(b.n, (size_t)n);
        ck_assert_uint_eq(b.offsets[0], 0);
        for (size_t i = 0; i < b.n; i++) {
            ck_assert_uint_lt(f->n, 256);
            f->labels[f->n] = b.labels[i];
            for (size_t k = b.offsets[i]; k < b.offsets[i + 1]; k++) {
                ck_assert_uint_lt(f->nnz, 2048);
                f->ids[f->nnz] = b.ids[k];
                f->vals[f->nnz++] = b.vals[k];
            }
            f->off[++f->n] = f->nnz;
        }
    }
    return n;
}

static void s_flat_expect(const flat_t *f, size_t n, const float *labels, const size_t *off,
                          const uint64_t *ids, const float *vals)
{
    ck_assert_uint_eq(f->n, n);
    for (size_t i = 0; i < n; i++) {
        T_REQUIRE(f->labels[i] == labels[i], "row %zu label %g, want %g", i,
                  (double)f->labels[i], (double)labels[i]);
        T_REQUIRE(f->off[i + 1] == off[i + 1], "row %zu ends at %zu, want %zu", i,
                  f->off[i + 1], off[i + 1]);
    }
    for (size_t k = 0; k < off[n]; k++) {
        T_REQUIRE(f->ids[k] == ids[k], "feature %zu id %llu, want %llu", k,
                  (unsigned long long)f->ids[k], (unsigned long long)ids[k]);
        T_REQUIRE(f->vals[k] == vals[k], "feature %zu value %.9g, want %.9g", k,
                  (double)f->vals[k], (double)vals[k]);
    }
}

/* An epoch as one exact string per row ("label id:value ..."), in order. */
typedef struct {
    char **v;
    size_t n, cap;
} rows_t;

static void s_rows_free(rows_t *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        free(rs->v[i]);
    free(rs->v);
    memset(rs, 0, sizeof *rs);
}

static long s_read_rows(wk_reader_t *r, size_t batch, rows_t *rs)
{
    wk_batch_t b;
    long n;
    while ((n = wk_reader_next(r, batch, &b)) > 0) {
        T_REQUIRE((size_t)n <= batch && b.offsets[0] == 0, "bad batch shape");
        for (size_t i = 0; i < b.n; i++) {
            sb_t sb = {NULL, 0, 0};
            s_sb_printf(&sb, "%g", (double)b.labels[i]);
            for (size_t k = b.offsets[i]; k < b.offsets[i + 1]; k++)
                s_sb_printf(&sb, " %llu:%a", (unsigned long long)b.ids[k], (double)b.vals[k]);
            if (rs->n == rs->cap) {
                rs->cap = rs->cap ? 2 * rs->cap : 64;
                rs->v = realloc(rs->v, rs->cap * sizeof *rs->v);
                ck_assert_ptr_nonnull(rs->v);
            }
            rs->v[rs->n++] = sb.s;
        }
    }
    return n;
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void s_rows_sort(rows_t *rs)
{
    if (rs->n)
        qsort(rs->v, rs->n, sizeof *rs->v, s_cmp_str);
}

static void s_rows_eq(const rows_t *a, const rows_t *b, const char *what)
{
    T_REQUIRE(a->n == b->n, "%s: %zu rows, want %zu", what, a->n, b->n);
    for (size_t i = 0; i < a->n; i++)
        T_REQUIRE(strcmp(a->v[i], b->v[i]) == 0, "%s: row %zu is '%s', want '%s'", what, i,
                  a->v[i], b->v[i]);
}

static int s_rows_same_order(const rows_t *a, const rows_t *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            return 0;
    return 1;
}

/* All rows of paths read as one worker (sorted). */
static void s_rows_whole(const char *const *paths, size_t n, const wk_data_conf_t *base,
                         rows_t *out)
{
    wk_data_conf_t c = *base;
    c.paths = paths;
    c.npaths = n;
    c.shard = 0;
    c.nshards = 1;
    wk_reader_t *r = s_open(&c);
    ck_assert_int_eq(s_read_rows(r, 7, out), 0);
    wk_reader_destroy(&r);
    s_rows_sort(out);
}

/* Union of W shards (sorted) must equal whole; each shard's second epoch,
 * from its cache, must repeat its first. */
static void s_check_union(const char *const *paths, size_t n, uint32_t W, const rows_t *whole,
                          const char *what)
{
    rows_t all = {NULL, 0, 0};
    for (uint32_t s = 0; s < W; s++) {
        wk_data_conf_t c = s_conf(paths, n);
        c.shard = s;
        c.nshards = W;
        c.use_cache = 1;
        wk_reader_t *r = s_open(&c);
        size_t n0 = all.n;
        long rc = s_read_rows(r, 5, &all);
        ck_assert_msg(rc == 0, "%s W=%u shard %u: %s", what, W, s, wk_reader_error(r));
        ck_assert_int_eq(wk_reader_rewind(r), 0);
        ck_assert_int_eq(wk_reader_from_cache(r), 1);
        rows_t again = {NULL, 0, 0};
        ck_assert_int_eq(s_read_rows(r, 3, &again), 0);
        rows_t first = {all.v + n0, all.n - n0, all.n - n0};
        s_rows_eq(&again, &first, "shard from its cache");
        s_rows_free(&again);
        wk_reader_destroy(&r);
    }
    s_rows_sort(&all);
    char msg[128];
    snprintf(msg, sizeof msg, "%s, union of %u shards", what, W);
    s_rows_eq(&all, whole, msg);
    s_rows_free(&all);
}

/* ---- libsvm -------------------------------------------------------------- */

START_TEST(test_libsvm_syntax)
{
    tdir_t t;
    char p[256];
    s_tdir(&t);
    const char *text =
        "# header comment\n"
        "1 3:1 7:0.5 12:-3.25\n"
        "\n"
        "   \t  \n"
        "-1\t4:2  \t 9:1e-3   \r\n"
        "+1 qid:7 5:.5 6:+2 # trailing comment 8:1\n"
        "0 18446744073709551614:1.0#c 3:3\r\n"
        "1.0\n"
        "   # indented comment\n"
        "0.0 2:1   \n"
        "\r\n"
        "-1.0 1:7 0:2 10:-0 11:123456.75 13:0.1 14:1e-45";
    s_write_str(s_path(p, &t, "a.svm"), text);
    const char *paths[] = {p};
    wk_data_conf_t c = s_conf(paths, 1);
    static const float labels[] = {1, 0, 1, 0, 1, 0, 0};
    static const size_t off[] = {0, 3, 5, 7, 8, 8, 9, 15};
    static const uint64_t ids[] = {3, 7, 12, 4, 9, 5, 6, UINT64_MAX - 1, 2, 1, 0, 10, 11, 13, 14};
    const float vals[] = {1, 0.5f, -3.25f, 2, 1e-3f, 0.5f, 2, 1, 1, 7, 2, -0.0f, 123456.75f,
                          0.1f, 1e-45f};
    for (size_t batch = 1; batch <= 8; batch += 3) {
        for (int fmt = 0; fmt < 2; fmt++) {
            c.format = fmt ? ZPS_FMT_LIBSVM : ZPS_FMT_AUTO;
            wk_reader_t *r = s_open(&c);
            flat_t f;
            ck_assert_msg(s_read_flat(r, batch, &f) == 0, "%s", wk_reader_error(r));
            s_flat_expect(&f, 7, labels, off, ids, vals);
            ck_assert_uint_eq(wk_reader_rows(r), 7);
            ck_assert_uint_eq(wk_reader_bad_lines(r), 0);
            ck_assert_str_eq(wk_reader_error(r), "");
            /* the epoch stays finished */
            wk_batch_t b;
            ck_assert_int_eq(wk_reader_next(r, 4, &b), 0);
            ck_assert_uint_eq(b.n, 0);
            wk_reader_destroy(&r);
            ck_assert_ptr_null(r);
        }
    }
    s_tdir_rm(&t);
}
END_TEST

/* Values through the fast path and strtod equal (float)strtod. */
START_TEST(test_values_match_strtod)
{
    tdir_t t;
    char p[256];
    s_tdir(&t);
    sb_t sb = {NULL, 0, 0};
    char vals[600][48];
    uint64_t st = 12345;
    for (int i = 0; i < 600; i++) {
        uint64_t x = zps_rng_next(&st) >> 11;
        int kind = i % 6, frac = (int)(x % 9);
        long long ip = (long long)((x >> 8) % 100000000ULL);
        if (kind == 0)
            snprintf(vals[i], 48, "%lld", ip - 50000000);
        else if (kind == 1)
            snprintf(vals[i], 48, "%s%lld.%0*llu", x & 1 ? "-" : "", ip % 1000, frac + 1,
                     (unsigned long long)((x >> 30) % 1000000000ULL) % 1000000000ULL);
        else if (kind == 2)
            snprintf(vals[i], 48, "%.17g", (double)(x % 1000003) / 997.0);
        else if (kind == 3)
            snprintf(vals[i], 48, "%ge%d", (double)(x % 1000) / 10.0, (int)(x % 60) - 30);
        else if (kind == 4)
            snprintf(vals[i], 48, "0.%0*llu", frac + 1, (unsigned long long)(x % 1000));
        else
            snprintf(vals[i], 48, "12345678901234567.%d", frac); /* > 2^53: strtod */
        s_sb_printf(&sb, "%d %d:%s\n", i & 1, i, vals[i]);
    }
    s_write(s_path(p, &t, "v.svm"), sb.s, sb.n);
    free(sb.s);
    const char *paths[] = {p};
    wk_data_conf_t c = s_conf(paths, 1);
    wk_reader_t *r = s_open(&c);
    wk_batch_t b;
    long n = wk_reader_next(r, 1000, &b);
    ck_assert_int_eq(n, 600);
    for (int i = 0; i < 600; i++) {
        float want = (float)strtod(vals[i], NULL);
        T_REQUIRE(b.offsets[i + 1] - b.offsets[i] == 1 && b.ids[b.offsets[i]] == (uint64_t)i,
                  "row %d shape", i);
        T_REQUIRE(memcmp(&b.vals[i], &want, sizeof want) == 0, "'%s' -> %a, want %a", vals[i],
                  (double)b.vals[i], (double)want);
    }
    wk_reader_destroy(&r);
    s_tdir_rm(&t);
}
END_TEST

START_TEST(test_labels)
{
    tdir_t t;
    char p[256];
    s_tdir(&t);
    const char *paths[] = {p};
    s_path(p, &t, "l.svm");
    s_write_str(p, "-1 1:1\n+1 1:1\n0 1:1\n1 1:1\n1.0 1:1\n0.0 1:1\n-1.0 1:1\n1e0 1:1\n+1.000\n");
    wk_data_conf_t c = s_conf(paths, 1);
    wk_reader_t *r = s_open(&c);
    flat_t f;
    ck_assert_int_eq(s_read_flat(r, 100, &f), 0);
    static const float want[] = {0, 1, 0, 1, 1, 0, 0, 1, 1};
    ck_assert_uint_eq(f.n, 9);
    for (size_t i = 0; i < 9; i++)
        ck_assert_msg(f.labels[i] == want[i], "row %zu: %g", i, (double)f.labels[i]);
    wk_reader_destroy(&r);

    /* class labels */
    s_write_str(p, "0 1:1\n3 1:1\n12 2:1\n16777216\n");
    c.labels = WK_LABEL_CLASS;
    r = s_open(&c);
    ck_assert_int_eq(s_read_flat(r, 100, &f), 0);
    ck_assert_uint_eq(f.n, 4);
    ck_assert(f.labels[0] == 0 && f.labels[1] == 3 && f.labels[2] == 12 &&
              f.labels[3] == 16777216.0f);
    wk_reader_destroy(&r);

    /* labels one mode accepts and the other rejects */
    static const struct {
        const char *line;
        int mode;
        const char *reason;
    } bad[] = {
        {"2 1:1", WK_LABEL_BINARY, "bad label '2' (binary labels are 0/1 or -1/+1)"},
        {"0.5 1:1", WK_LABEL_BINARY, "bad label '0.5'"},
        {"-2 1:1", WK_LABEL_BINARY, "bad label '-2'"},
        {"yes 1:1", WK_LABEL_BINARY, "bad label 'yes'"},
        {"-1 1:1", WK_LABEL_CLASS, "bad class label '-1'"},
        {"1.5 1:1", WK_LABEL_CLASS, "bad class label '1.5'"},
        {"16777217 1:1", WK_LABEL_CLASS, "bad class label '16777217'"},
        {"+1 1:1", WK_LABEL_CLASS, "bad class label '+1'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "1 1:1\n%s\n", bad[i].line);
        s_write_str(p, text);
        c.labels = (wk_label_mode_t)bad[i].mode;
        r = s_open(&c);
        ck_assert_int_eq(s_read_flat(r, 100, &f), ZPS_EINVAL);
        char want[512];
        snprintf(want, sizeof want, "%s:2:1: %s", p, bad[i].reason);
        ck_assert_msg(strncmp(wk_reader_error(r), want, strlen(want)) == 0, "'%s': got '%s'",
                      bad[i].line, wk_reader_error(r));
        wk_reader_destroy(&r);
    }
    s_tdir_rm(&t);
}
END_TEST

static const struct {
    const char *line;
    size_t col;
    const char *reason;
} s_bad_cases[] = {
    {"1:1 2:1", 1, "missing label"},
    {"abc 1:1", 1, "bad label 'abc'"},
    {"   abc 1:1", 4, "bad label 'abc'"},
    {"1 5", 3, "expected id:value, got '5'"},
    {"1 2:1 x:1", 7, "bad feature id 'x:1'"},
    {"1 -3:1", 3, "bad feature id '-3:1'"},
    {"1 :1", 3, "missing feature id"},
    {"1 3:abc", 5, "bad value 'abc'"},
    {"1 3:", 5, "missing value"},
    {"1 3: 4:1", 5, "missing value"},
    {"1 3:1.5x", 5, "bad value '1.5x'"},
    {"1 3:1:2", 5, "bad value '1:2'"},
    {"1 3:nan", 5, "value 'nan' is not finite"},
    {"1 3:inf", 5, "value 'inf' is not finite"},
    {"1 3:-Infinity", 5, "value '-Infinity' is not finite"},
    {"1 3:1e39", 5, "value '1e39' is out of float range"},
    {"1 18446744073709551616:1", 3, "feature id overflows 64 bits"},
    {"1 1:1 99999999999999999999999:1", 7, "feature id overflows 64 bits"},
    {"1 18446744073709551615:1", 3,
     "feature id 18446744073709551615 is reserved for the bias key"},
    {"1 4:1 2:1 4:2", 11, "duplicate feature id 4"},
    {"1 2:1 2:1", 7, "duplicate feature id 2"},
    {"1\t7:1 qid:3 5:1 7:0\r", 17, "duplicate feature id 7"},
};

START_TEST(test_bad_lines)
{
    tdir_t t;
    char p[256];
    s_tdir(&t);
    const char *paths[] = {p};
    s_path(p, &t, "bad.svm");
    size_t i = (size_t)_i;
    char text[256];
    snprintf(text, sizeof text, "# c\n1 1:1\n%s\n0 2:1\n", s_bad_cases[i].line);
    s_write_str(p, text);
    char want[512];
    snprintf(want, sizeof want, "%s:3:%zu: %s", p, s_bad_cases[i].col, s_bad_cases[i].reason);

    for (uint32_t hash_bits = 0; hash_bits <= 12; hash_bits += 12) {
        /* stop at the bad line, and keep returning the error */
        wk_data_conf_t c = s_conf(paths, 1);
        c.hash_bits = hash_bits;
        wk_reader_t *r = s_open(&c);
        flat_t f;
        ck_assert_int_eq(s_read_flat(r, 100, &f), ZPS_EINVAL);
        ck_assert_msg(strncmp(wk_reader_error(r), want, strlen(want)) == 0,
                      "'%s': got '%s', want '%s'", s_bad_cases[i].line, wk_reader_error(r), want);
        wk_batch_t b;
        ck_assert_int_eq(wk_reader_next(r, 100, &b), ZPS_EINVAL);
        /* a rewind starts over and meets it again */
        ck_assert_int_eq(wk_reader_rewind(r), 0);
        ck_assert_int_eq(wk_reader_next(r, 1, &b), 1);
        ck_assert_int_eq(wk_reader_next(r, 1, &b), ZPS_EINVAL);
        wk_reader_destroy(&r);

        /* skip and count it */
        c.skip_bad_lines = 1;
        r = s_open(&c);
        ck_assert_int_eq(s_read_flat(r, 100, &f), 0);
        ck_assert_uint_eq(f.n, 2);
        ck_assert(f.labels[0] == 1 && f.labels[1] == 0);
        ck_assert_uint_eq(f.off[2], 2);
        if (!hash_bits)
            ck_assert(f.ids[0] == 1 && f.ids[1] == 2);
        ck_assert_uint_eq(wk_reader_bad_lines(r), 1);
        ck_assert_uint_eq(wk_reader_rows(r), 2);
        ck_assert_msg(strncmp(wk_reader_error(r), want, strlen(want)) == 0, "skipped: '%s'",
                      wk_reader_error(r));
        wk_reader_destroy(&r);
    }
    s_tdir_rm(&t);
}
END_TEST

/* Line numbers are absolute in a byte-range shard and in a gzip shard. */
START_TEST(test_bad_line_number_in_shard)
{
    tdir_t t;
    char p[256], pg[256];
    s_tdir(&t);
    sb_t sb = {NULL, 0, 0};
    for (int i = 1; i <= 10; i++)
        s_sb_printf(&sb, i == 8 ? "1 x:1\n" : "1 %d:1\n", i % 10);
    s_write(s_path(p, &t, "a.svm"), sb.s, sb.n);
    s_write_gz(s_path(pg, &t, "a.svm.gz"), sb.s, sb.n);
    free(sb.s);
    for (int gz = 0; gz < 2; gz++) {
        const char *paths[] = {gz ? pg : p};
        wk_data_conf_t c = s_conf(paths, 1);
        c.nshards = 2;
        c.shard = 0;
        wk_reader_t *r = s_open(&c);
        flat_t f;
        ck_assert_int_eq(s_read_flat(r, 3, &f), 0);
        ck_assert_uint_eq(f.n, 5);
        wk_reader_destroy(&r);
        c.shard = 1;
        r = s_open(&c);
        ck_assert_int_eq(s_read_flat(r, 3, &f), ZPS_EINVAL);
        char want[300];
        snprintf(want, sizeof want, "%s:8:3: bad feature id 'x:1'", paths[0]);
        ck_assert_str_eq(wk_reader_error(r), want);
        wk_reader_destroy(&r);
    }
    s_tdir_rm(&t);
}
END_TEST

START_TEST(test_hash_bits_libsvm)
{
    tdir_t t;
    char p[256];
    s_tdir(&t);
    const char *paths[] = {p};
    s_write_str(s_path(p, &t, "h.svm"),
                "1 5:1 77:2 18446744073709551614:3\n0 77:4 5:5\n1 1000000:1 5:0.5\n");
    wk_data_conf_t c = s_conf(paths, 1);
    c.hash_bits = 10;
    wk_reader_t *r = s_open(&c);
    flat_t f;
    ck_assert_int_eq(s_read_flat(r, 10, &f), 0);
    ck_assert_uint_eq(f.n, 3);
    ck_assert_uint_eq(f.nnz, 7);
    for (size_t k = 0; k < f.nnz; k++)
        ck_assert_uint_lt(f.ids[k], 1024);
    /* the same id hashes the same everywhere; values stay attached */
    ck_assert_uint_eq(f.ids[0], f.ids[4]);
    ck_assert_uint_eq(f.ids[0], f.ids[6]);
    ck_assert_uint_eq(f.ids[1], f.ids[3]);
    ck_assert(f.vals[4] == 5 && f.vals[3] == 4 && f.vals[6] == 0.5f);
    /* ids are hashed, not kept */
    ck_assert(f.ids[0] != 5 || f.ids[1] != 77);
    wk_reader_destroy(&r);
    /* another width: ids differ and stay in range */
    c.hash_bits = 40;
    r = s_open(&c);
    ck_assert_int_eq(s_read_flat(r, 10, &f), 0);
    ck_assert_uint_eq(f.ids[0], f.ids[4]);
    ck_assert_uint_lt(f.ids[2], 1ULL << 40);
    ck_assert(f.ids[0] != f.ids[1] && f.ids[0] != f.ids[2] && f.ids[1] != f.ids[2]);
    wk_reader_destroy(&r);
    s_tdir_rm(&t);
}
END_TEST

/* ---- criteo ---------------------------------------------------------------- */

/* A Criteo line from 40 fields. */
static void s_criteo_line(sb_t *sb, const char *const *fields, const char *eol)
{
    for (int i = 0; i < 40; i++)
        s_sb_printf(sb, "%s%s", fields[i] ? fields[i] : "", i < 39 ? "\t" : eol);
}

START_TEST(test_criteo)
{
    tdir_t t;
    char p[256];
    s_tdir(&t);
    const char *paths[] = {p};
    const char *f1[40] = {"1", "", "-1", "2", "3", "1000", "8", "1000000", "0"};
    f1[14] = "68fd1e64";
    f1[15] = "80e26c9b";
    f1[39] = "ffffffff";
    const char *f2[40] = {"0", "5"};
    f2[20] = "a";
    sb_t sb = {NULL, 0, 0};
    s_sb_printf(&sb, "# criteo sample\n");
    s_criteo_line(&sb, f1, "\r\n");
    s_sb_printf(&sb, "\n");
    s_criteo_line(&sb, f2, ""); /* last line without a newline */
    s_write(s_path(p, &t, "day_0"), sb.s, sb.n);
    free(sb.s);

    for (uint32_t bits = 0; bits <= 20; bits += 20) {
        for (int fmt = 0; fmt < 2; fmt++) {
            wk_data_conf_t c = s_conf(paths, 1);
            c.format = fmt ? ZPS_FMT_CRITEO : ZPS_FMT_AUTO;
            c.hash_bits = bits;
            wk_reader_t *r = s_open(&c);
            flat_t f;
            ck_assert_msg(s_read_flat(r, 10, &f) == 0, "%s", wk_reader_error(r));
            /* buckets: v <= 2 -> SP<v>; else floor(ln(v)^2):
             * ln 3 = 1.0986 -> 1; ln 1000 = 6.9078 -> 47; ln 8 = 2.0794 -> 4;
             * ln 1e6 = 13.8155 -> 190; 5 -> ln 5 = 1.6094 -> 2 */
            const uint64_t want[] = {
                wk_criteo_id(2, "SP-1", 4, bits), wk_criteo_id(3, "SP2", 3, bits),
                wk_criteo_id(4, "1", 1, bits), wk_criteo_id(5, "47", 2, bits),
                wk_criteo_id(6, "4", 1, bits), wk_criteo_id(7, "190", 3, bits),
                wk_criteo_id(8, "SP0", 3, bits), wk_criteo_id(14, "68fd1e64", 8, bits),
                wk_criteo_id(15, "80e26c9b", 8, bits), wk_criteo_id(39, "ffffffff", 8, bits),
                /* row 2 */
                wk_criteo_id(1, "2", 1, bits), wk_criteo_id(20, "a", 1, bits),
            };
            const float labels[] = {1, 0};
            const size_t off[] = {0, 10, 12};
            const float vals[12] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
            s_flat_expect(&f, 2, labels, off, want, vals);
            for (size_t k = 0; k < f.nnz; k++)
                if (bits)
                    ck_assert_uint_lt(f.ids[k], 1u << bits);
            wk_reader_destroy(&r);
        }
    }

    /* wk_criteo_id: field-dependent, deterministic, masked */
    ck_assert_uint_eq(wk_criteo_id(14, "abc", 3, 0), wk_criteo_id(14, "abc", 3, 0));
    ck_assert_uint_ne(wk_criteo_id(14, "abc", 3, 0), wk_criteo_id(15, "abc", 3, 0));
    ck_assert_uint_ne(wk_criteo_id(14, "abc", 3, 0), wk_criteo_id(14, "abd", 3, 0));
    ck_assert_uint_ne(wk_criteo_id(1, "SP1", 3, 0), wk_criteo_id(1, "1", 1, 0));
    ck_assert_uint_eq(wk_criteo_id(14, "abc", 3, 0) & 0xfff, wk_criteo_id(14, "abc", 3, 12));
    ck_assert_uint_ne(wk_criteo_id(14, "abc", 3, 0), UINT64_MAX);

    /* bad lines */
    const char *f39[40] = {"1"};
    const char *bad_int[40] = {"1", "4", "", "abc"};
    const char *bad_label[40] = {"x", "4"};
    const char *empty_label[40] = {NULL};
    static const struct {
        int which;
        const char *reason;
    } cases[] = {
        {0, "expected 40 tab-separated fields, got 39"},
        {1, "expected 40 tab-separated fields, got 42"},
        {2, "bad integer 'abc' in field I3"},
        {3, "bad label 'x'"},
        {4, "missing label"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sb_t b = {NULL, 0, 0};
        s_criteo_line(&b, f2, "\n");
        size_t col;
        size_t start = b.n;
        if (cases[i].which == 0) {
            for (int k = 0; k < 39; k++)
                s_sb_printf(&b, "%s%s", f39[k] ? f39[k] : "", k < 38 ? "\t" : "\n");
            col = b.n - start; /* just past the line's end */
        } else if (cases[i].which == 1) {
            s_criteo_line(&b, f2, "\tx\ty\n");
            col = b.n - start - 4 + 1; /* the 41st field */
        } else {
            const char *const *fl = cases[i].which == 2 ? bad_int
                                    : cases[i].which == 3 ? bad_label : empty_label;
            s_criteo_line(&b, fl, "\n");
            col = cases[i].which == 2 ? 6 : 1;
        }
        s_write(p, b.s, b.n);
        free(b.s);
        wk_data_conf_t c = s_conf(paths, 1);
        c.format = ZPS_FMT_CRITEO;
        wk_reader_t *r = s_open(&c);
        flat_t f;
        ck_assert_int_eq(s_read_flat(r, 10, &f), ZPS_EINVAL);
        char want[400];
        snprintf(want, sizeof want, "%s:2:%zu: %s", p, col, cases[i].reason);
        ck_assert_msg(strncmp(wk_reader_error(r), want, strlen(want)) == 0, "got '%s' want '%s'",
                      wk_reader_error(r), want);
        wk_reader_destroy(&r);
    }
    s_tdir_rm(&t);
}
END_TEST

START_TEST(test_auto_detect)
{
    tdir_t t;
    char p[256], d[256];
    s_tdir(&t);
    mkdir(s_path(d, &t, "in"), 0755);
    /* libsvm with tabs, after comments */
    s_write_str(s_path(p, &t, "in/a"), "# x\n\n1\t3:1\t4:2\n0\t5:1\n");
    sb_t sb = {NULL, 0, 0};
    const char *f[40] = {"1", "", "2"};
    s_sb_printf(&sb, "# criteo\n");
    s_criteo_line(&sb, f, "\n");
    s_write(s_path(p, &t, "in/b"), sb.s, sb.n);
    s_write_gz(s_path(p, &t, "in/c"), sb.s, sb.n); /* gzip detected by magic */
    free(sb.s);
    const char *paths[] = {d};
    wk_data_conf_t c = s_conf(paths, 1);
    wk_reader_t *r = s_open(&c);
    flat_t fl;
    ck_assert_msg(s_read_flat(r, 10, &fl) == 0, "%s", wk_reader_error(r));
    static const float labels[] = {1, 0, 1, 1};
    static const size_t off[] = {0, 2, 3, 4, 5};
    const uint64_t ids[] = {3, 4, 5, wk_criteo_id(2, "SP2", 3, 0), wk_criteo_id(2, "SP2", 3, 0)};
    static const float vals[] = {1, 2, 1, 1, 1};
    s_flat_expect(&fl, 4, labels, off, ids, vals);
    wk_reader_destroy(&r);
    /* forcing libsvm on the criteo file is a bad line */
    s_path(p, &t, "in/b");
    const char *pb[] = {p};
    c = s_conf(pb, 1);
    c.format = ZPS_FMT_LIBSVM;
    r = s_open(&c);
    ck_assert_int_eq(s_read_flat(r, 10, &fl), ZPS_EINVAL);
    char want[300];
    snprintf(want, sizeof want, "%s:2:4: expected id:value, got '2'", p);
    ck_assert_msg(strncmp(wk_reader_error(r), want, strlen(want)) == 0, "%s", wk_reader_error(r));
    wk_reader_destroy(&r);
    s_tdir_rm(&t);
}
END_TEST

/* ---- gzip ------------------------------------------------------------------ */

/* ~n lines of assorted content (pseudo-random, so it compresses poorly). */
static void s_make_text(sb_t *sb, int n, uint64_t seed)
{
    uint64_t s = seed;
    for (int i = 0; i < n; i++) {
        uint64_t x = zps_rng_next(&s) >> 16;
        switch (i % 11) {
        case 3:
            s_sb_printf(sb, "\n");
            break;
        case 5:
            s_sb_printf(sb, "# comment %llu\n", (unsigned long long)x);
            break;
        case 7:
            s_sb_printf(sb, "%d %d:%llu.5 %llu:1\r\n", (int)(x & 1), 1000000 + i,
                        (unsigned long long)(x % 1000), (unsigned long long)(x % 999983) + 2000000);
            break;
        case 9: /* a long line */
            s_sb_printf(sb, "-1 %d:1", 1000000 + i);
            for (int k = 0; k < (int)(x % 60); k++)
                s_sb_printf(sb, " %d:%d", 3000000 + k * 7, (int)(x >> k) & 0xff);
            s_sb_printf(sb, "\n");
            break;
        default:
            s_sb_printf(sb, "%d %d:1  %llu:-0.25\t%llu:%llu\n", (int)(x >> 5) & 1, 1000000 + i,
                        (unsigned long long)(x % 100003) + 5000000,
                        (unsigned long long)(x % 77777) + 6000000, (unsigned long long)(x % 13));
        }
    }
}

/* Rows among s_make_text's n lines. */
static size_t s_text_rows(int n)
{
    size_t rows = 0;
    for (int i = 0; i < n; i++)
        rows += i % 11 != 3 && i % 11 != 5;
    return rows;
}

START_TEST(test_gzip_equals_plain)
{
    tdir_t t;
    char p[256], pg[256];
    s_tdir(&t);
    sb_t sb = {NULL, 0, 0};
    s_make_text(&sb, 300, 1);
    s_sb_printf(&sb, "1 42:1"); /* unterminated */
    s_write(s_path(p, &t, "x.svm"), sb.s, sb.n);
    s_write_gz(s_path(pg, &t, "x.gz"), sb.s, sb.n);
    free(sb.s);
    const char *pp[] = {p}, *pz[] = {pg};
    wk_data_conf_t c = s_conf(pp, 1);
    rows_t a = {NULL, 0, 0}, b = {NULL, 0, 0};
    wk_reader_t *r = s_open(&c);
    ck_assert_int_eq(s_read_rows(r, 13, &a), 0);
    ck_assert_uint_eq(wk_reader_progress(r), 1.0);
    wk_reader_destroy(&r);
    c.paths = pz;
    r = s_open(&c);
    ck_assert_int_eq(s_read_rows(r, 13, &b), 0);
    ck_assert(wk_reader_progress(r) == 1.0);
    wk_reader_destroy(&r);
    ck_assert_uint_gt(a.n, 200);
    s_rows_eq(&b, &a, "gzip vs plain, in order");
    s_rows_free(&a);
    s_rows_free(&b);
    s_tdir_rm(&t);
}
END_TEST

START_TEST(test_gzip_truncated)
{
    tdir_t t;
    char p[256];
    s_tdir(&t);
    sb_t sb = {NULL, 0, 0};
    s_make_text(&sb, 400, 2);
    s_write_gz(s_path(p, &t, "t.gz"), sb.s, sb.n);
    free(sb.s);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    size_t size = (size_t)st.st_size;
    char *all = malloc(size);
    ck_assert_ptr_nonnull(all);
    FILE *fp = fopen(p, "rb");
    ck_assert_uint_eq(fread(all, 1, size, fp), size);
    fclose(fp);
    const size_t cuts[] = {size - 1, size - 4, size - 8, size / 2, 40, 12, 3};
    const char *paths[] = {p};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        s_write(p, all, cuts[i]);
        for (int cache = 0; cache < 2; cache++) {
            wk_data_conf_t c = s_conf(paths, 1);
            c.use_cache = cache;
            wk_reader_t *r = s_open(&c);
            rows_t rs = {NULL, 0, 0};
            long rc = s_read_rows(r, 50, &rs);
            s_rows_free(&rs);
            ck_assert_msg(rc == ZPS_EIO, "cut at %zu of %zu: rc %ld", cuts[i], size, rc);
            char want[300];
            snprintf(want, sizeof want, "%s: gzip data ends early", p);
            ck_assert_msg(strncmp(wk_reader_error(r), want, strlen(want)) == 0,
                          "cut at %zu: '%s'", cuts[i], wk_reader_error(r));
            wk_reader_destroy(&r);
        }
        ck_assert_uint_eq(s_count_glob(&t, "*zpscache*"), 0); /* no cache of a bad file */
    }
    /* corrupt data: zlib's error, naming the file */
    memcpy(all + size / 2, "garbage!", 8);
    s_write(p, all, size);
    wk_data_conf_t c = s_conf(paths, 1);
    wk_reader_t *r = s_open(&c);
    rows_t rs = {NULL, 0, 0};
    long rc = s_read_rows(r, 50, &rs);
    s_rows_free(&rs);
    ck_assert_msg(rc == ZPS_EIO, "corrupt gzip: rc %ld", rc);
    ck_assert_msg(strncmp(wk_reader_error(r), p, strlen(p)) == 0, "%s", wk_reader_error(r));
    wk_reader_destroy(&r);
    free(all);
    s_tdir_rm(&t);
}
END_TEST

/* ---- paths ----------------------------------------------------------------- */

START_TEST(test_paths)
{
    tdir_t t;
    char d[256], p[256], err[512];
    s_tdir(&t);
    mkdir(s_path(d, &t, "in"), 0755);
    mkdir(s_path(p, &t, "in/sub"), 0755);
    s_write_str(s_path(p, &t, "in/b.txt"), "0 2:1\n");
    s_write_str(s_path(p, &t, "in/a.txt"), "1 1:1\n");
    s_write_str(s_path(p, &t, "in/c.dat"), "1 3:1\n");
    s_write_str(s_path(p, &t, "in/.hidden"), "1 99:1\n");
    s_write_str(s_path(p, &t, "in/a.txt.zpscache.0of1.auto-bin-h0"), "junk");
    s_write_str(s_path(p, &t, "in/sub/z.txt"), "1 98:1\n");

    /* directory: regular files sorted by name */
    const char *pd[] = {d};
    wk_data_conf_t c = s_conf(pd, 1);
    wk_reader_t *r = s_open(&c);
    flat_t f;
    ck_assert_int_eq(s_read_flat(r, 10, &f), 0);
    ck_assert_uint_eq(f.n, 3);
    ck_assert(f.ids[0] == 1 && f.ids[1] == 2 && f.ids[2] == 3);
    wk_reader_destroy(&r);

    /* glob, and paths given out of order are sorted */
    char g[256], one[256];
    s_path(g, &t, "in/*.txt");
    s_path(one, &t, "in/c.dat");
    const char *pg[] = {one, g};
    c = s_conf(pg, 2);
    r = s_open(&c);
    ck_assert_int_eq(s_read_flat(r, 10, &f), 0);
    ck_assert_uint_eq(f.n, 3);
    ck_assert(f.ids[0] == 1 && f.ids[1] == 2 && f.ids[2] == 3);
    wk_reader_destroy(&r);

    /* missing file, unmatched glob, empty directory: errors naming them */
    char miss[256], nog[256], empty[256];
    s_path(miss, &t, "in/nope.txt");
    s_path(nog, &t, "in/*.nope");
    mkdir(s_path(empty, &t, "empty"), 0755);
    const char *bad[] = {miss, nog, empty};
    for (int i = 0; i < 3; i++) {
        const char *pb[] = {g, bad[i]};
        c = s_conf(pb, 2);
        err[0] = '\0';
        r = wk_reader_new(&c, err, sizeof err);
        ck_assert_ptr_null(r);
        ck_assert_msg(strncmp(err, bad[i], strlen(bad[i])) == 0 && err[strlen(bad[i])] == ':',
                      "error '%s' does not name '%s'", err, bad[i]);
    }
    ck_assert_ptr_nonnull(strstr(err, "no input files"));
    /* bad settings */
    c = s_conf(pd, 1);
    c.shard = 2;
    c.nshards = 2;
    ck_assert_ptr_null(wk_reader_new(&c, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "shard"));
    s_tdir_rm(&t);
}
END_TEST

/* ---- sharding -------------------------------------------------------------- */

START_TEST(test_shard_union_plain)
{
    tdir_t t;
    char p[256], q[256], s[256];
    s_tdir(&t);
    sb_t sb = {NULL, 0, 0};
    s_make_text(&sb, 150, 3);
    s_sb_printf(&sb, "0 77:1 78:2"); /* no trailing newline */
    s_write(s_path(p, &t, "u.svm"), sb.s, sb.n);
    free(sb.s);
    s_write_str(s_path(q, &t, "tiny.svm"), "1 1:1\n0 2:1");
    /* lines much longer than a shard */
    sb_t lb = {NULL, 0, 0};
    for (int i = 0; i < 3; i++) {
        s_sb_printf(&lb, "%d", i & 1);
        for (int k = 0; k < 50; k++)
            s_sb_printf(&lb, " %d:%d", i * 1000 + k, k);
        s_sb_printf(&lb, i == 1 ? "\r\n\n" : "\n");
    }
    s_write(s_path(s, &t, "long.svm"), lb.s, lb.n);
    free(lb.s);
    const char *files[] = {p, q, s};
    for (int i = 0; i < 3; i++) {
        const char *paths[] = {files[i]};
        wk_data_conf_t c = s_conf(paths, 1);
        rows_t whole = {NULL, 0, 0};
        s_rows_whole(paths, 1, &c, &whole);
        ck_assert_uint_eq(whole.n, i == 0 ? s_text_rows(150) + 1 : i == 1 ? 2 : 3);
        for (size_t k = 1; k < whole.n; k++)
            ck_assert_str_ne(whole.v[k - 1], whole.v[k]); /* rows are distinct */
        for (uint32_t W = 1; W <= 5; W++)
            s_check_union(paths, 1, W, &whole, files[i]);
        s_rows_free(&whole);
    }
    s_tdir_rm(&t);
}
END_TEST

START_TEST(test_shard_union_gzip)
{
    tdir_t t;
    char p[256];
    s_tdir(&t);
    sb_t sb = {NULL, 0, 0};
    s_make_text(&sb, 150, 4);
    s_sb_printf(&sb, "1 77:1");
    s_write_gz(s_path(p, &t, "u.gz"), sb.s, sb.n);
    free(sb.s);
    const char *paths[] = {p};
    wk_data_conf_t c = s_conf(paths, 1);
    rows_t whole = {NULL, 0, 0};
    s_rows_whole(paths, 1, &c, &whole);
    ck_assert_uint_eq(whole.n, s_text_rows(150) + 1);
    for (uint32_t W = 1; W <= 5; W++)
        s_check_union(paths, 1, W, &whole, "gzip");
    s_rows_free(&whole);

    /* line modulo W: with W = 2 shard 0 has the odd-numbered lines */
    s_write_gz(p, "1 1:1\n1 2:1\n\n1 4:1\n1 5:1", 24);
    c.nshards = 2;
    wk_reader_t *r = s_open(&c);
    flat_t f;
    ck_assert_int_eq(s_read_flat(r, 10, &f), 0);
    ck_assert_uint_eq(f.n, 2);
    ck_assert(f.ids[0] == 1 && f.ids[1] == 5);
    wk_reader_destroy(&r);
    s_tdir_rm(&t);
}
END_TEST

START_TEST(test_shard_union_files)
{
    tdir_t t;
    char d[256], p[4][256];
    s_tdir(&t);
    mkdir(s_path(d, &t, "in"), 0755);
    const char *names[] = {"in/f0", "in/f1", "in/f2", "in/f3"};
    for (int i = 0; i < 4; i++) {
        sb_t sb = {NULL, 0, 0};
        s_make_text(&sb, 40 + 7 * i, 10 + (uint64_t)i);
        s_sb_printf(&sb, "1 %d:1", 900 + i); /* marker row of file i */
        s_path(p[i], &t, names[i]);
        if (i == 2)
            s_write_gz(p[i], sb.s, sb.n);
        else
            s_write(p[i], sb.s, sb.n);
        free(sb.s);
    }
    const char *paths[] = {d};
    wk_data_conf_t c = s_conf(paths, 1);
    rows_t whole = {NULL, 0, 0};
    s_rows_whole(paths, 1, &c, &whole);
    for (uint32_t W = 1; W <= 5; W++)
        s_check_union(paths, 1, W, &whole, "4 files");
    s_rows_free(&whole);

    /* W = 3: files dealt round-robin, worker 0 reads f0 and f3 whole */
    for (uint32_t s = 0; s < 3; s++) {
        c = s_conf(paths, 1);
        c.nshards = 3;
        c.shard = s;
        wk_reader_t *r = s_open(&c);
        rows_t rs = {NULL, 0, 0};
        ck_assert_int_eq(s_read_rows(r, 100, &rs), 0);
        int seen[4] = {0, 0, 0, 0};
        for (size_t k = 0; k < rs.n; k++)
            for (int i = 0; i < 4; i++) {
                char m[32];
                snprintf(m, sizeof m, "1 %d:0x1p+0", 900 + i);
                seen[i] += strcmp(rs.v[k], m) == 0;
            }
        for (int i = 0; i < 4; i++)
            ck_assert_msg(seen[i] == (i % 3 == (int)s), "shard %u file %d seen %d", s, i, seen[i]);
        s_rows_free(&rs);
        wk_reader_destroy(&r);
    }
    s_tdir_rm(&t);
}
END_TEST

/* ---- cache ------------------------------------------------------------------ */

static long s_epoch_rows(wk_reader_t *r, size_t batch, rows_t *rs)
{
    memset(rs, 0, sizeof *rs);
    return s_read_rows(r, batch, rs);
}

START_TEST(test_cache)
{
    tdir_t t;
    char p[256], pz[256];
    s_tdir(&t);
    sb_t sb = {NULL, 0, 0};
    s_make_text(&sb, 120, 5);
    s_write(s_path(p, &t, "c.svm"), sb.s, sb.n);
    s_write_gz(s_path(pz, &t, "d.gz"), sb.s, sb.n);
    const char *paths[] = {p, pz};
    wk_data_conf_t c = s_conf(paths, 2);
    c.use_cache = 1;
    c.nshards = 1;
    rows_t e1, e2, e3;
    wk_reader_t *r = s_open(&c);
    ck_assert_int_eq(wk_reader_from_cache(r), 0);
    ck_assert_int_eq(s_epoch_rows(r, 10, &e1), 0);
    ck_assert_uint_gt(e1.n, 150);
    ck_assert_uint_eq(wk_reader_rows(r), e1.n);
    ck_assert_uint_eq(s_count_glob(&t, "c.svm.zpscache.0of1.auto-bin-h0"), 1);
    ck_assert_uint_eq(s_count_glob(&t, "d.gz.zpscache.0of1.auto-bin-h0"), 1);
    ck_assert_uint_eq(s_count_glob(&t, "*.tmp*"), 0);

    /* epoch 2 from the cache, same rows in the same order */
    ck_assert_int_eq(wk_reader_rewind(r), 0);
    ck_assert_int_eq(wk_reader_from_cache(r), 1);
    ck_assert(wk_reader_progress(r) == 0.0);
    ck_assert_int_eq(s_epoch_rows(r, 7, &e2), 0);
    ck_assert_int_eq(wk_reader_from_cache(r), 1);
    ck_assert(wk_reader_progress(r) == 1.0);
    s_rows_eq(&e2, &e1, "cached epoch");
    s_rows_free(&e2);

    /* a new reader with the same settings uses it; other settings do not */
    wk_reader_t *r2 = s_open(&c);
    ck_assert_int_eq(wk_reader_from_cache(r2), 1);
    ck_assert_int_eq(s_epoch_rows(r2, 1000, &e2), 0);
    s_rows_eq(&e2, &e1, "cache in a new reader");
    s_rows_free(&e2);
    wk_reader_destroy(&r2);
    const char *one[] = {p};
    for (int k = 0; k < 4; k++) {
        wk_data_conf_t o = c;
        if (k == 0) { /* one file over 2 workers: byte ranges, not this cache */
            o.paths = one;
            o.npaths = 1;
            o.nshards = 2;
        }
        else if (k == 1)
            o.hash_bits = 8;
        else if (k == 2)
            o.format = ZPS_FMT_LIBSVM;
        else
            o.labels = WK_LABEL_CLASS;
        r2 = s_open(&o);
        ck_assert_msg(wk_reader_from_cache(r2) == 0, "setting %d used the cache", k);
        wk_reader_destroy(&r2);
    }
    ck_assert_uint_eq(s_count_glob(&t, "c.svm.zpscache.*"), 1);

    /* the input grows: parsed again, then cached again */
    s_sb_printf(&sb, "1 4242:1\n");
    s_write(p, sb.s, sb.n);
    ck_assert_int_eq(wk_reader_rewind(r), 0);
    ck_assert_int_eq(wk_reader_from_cache(r), 0);
    ck_assert_int_eq(s_epoch_rows(r, 10, &e2), 0);
    ck_assert_uint_eq(e2.n, e1.n + 1);
    ck_assert_int_eq(wk_reader_rewind(r), 0);
    ck_assert_int_eq(wk_reader_from_cache(r), 1);
    ck_assert_int_eq(s_epoch_rows(r, 10, &e3), 0);
    s_rows_eq(&e3, &e2, "re-cached epoch");
    s_rows_free(&e2);
    s_rows_free(&e3);

    /* same size, new content and mtime */
    char *eq = strstr(sb.s, "1 4242:1\n");
    ck_assert_ptr_nonnull(eq);
    memcpy(eq, "0 4243:1\n", 9);
    s_write(p, sb.s, sb.n);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    ts[1].tv_sec -= 1000;
    ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
    ck_assert_int_eq(wk_reader_rewind(r), 0);
    ck_assert_int_eq(wk_reader_from_cache(r), 0);
    ck_assert_int_eq(s_epoch_rows(r, 10, &e2), 0);
    int found = 0;
    for (size_t i = 0; i < e2.n; i++)
        found += strcmp(e2.v[i], "0 4243:0x1p+0") == 0;
    ck_assert_int_eq(found, 1);
    s_rows_free(&e2);
    /* touching alone (same content, other mtime) also invalidates */
    ck_assert_int_eq(wk_reader_rewind(r), 0);
    ck_assert_int_eq(wk_reader_from_cache(r), 1);
    ts[1].tv_sec += 1;
    ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
    ck_assert_int_eq(wk_reader_rewind(r), 0);
    ck_assert_int_eq(wk_reader_from_cache(r), 0);
    wk_reader_destroy(&r);

    /* a corrupt cache (bad size) is ignored and rewritten */
    char cn[256];
    s_path(cn, &t, "d.gz.zpscache.0of1.auto-bin-h0");
    ck_assert_int_eq(truncate(cn, 200), 0);
    const char *pzs[] = {pz};
    wk_data_conf_t cz = s_conf(pzs, 1);
    cz.use_cache = 1;
    r = s_open(&cz);
    ck_assert_int_eq(wk_reader_from_cache(r), 0);
    ck_assert_int_eq(s_epoch_rows(r, 10, &e2), 0);
    ck_assert_int_eq(wk_reader_rewind(r), 0);
    ck_assert_int_eq(wk_reader_from_cache(r), 1);
    ck_assert_int_eq(s_epoch_rows(r, 10, &e3), 0);
    s_rows_eq(&e3, &e2, "rewritten cache");
    s_rows_free(&e2);
    s_rows_free(&e3);
    wk_reader_destroy(&r);

    s_rows_free(&e1);
    free(sb.s);
    s_tdir_rm(&t);
}
END_TEST

START_TEST(test_cache_dir_and_partial_epoch)
{
    tdir_t t;
    char p[256], cd[256], nd[256];
    s_tdir(&t);
    sb_t sb = {NULL, 0, 0};
    s_make_text(&sb, 60, 6);
    s_write(s_path(p, &t, "c.svm"), sb.s, sb.n);
    free(sb.s);
    const char *paths[] = {p};
    rows_t e1, e2;

    /* cache_dir (created if missing); W = 2 shards cache separately */
    for (uint32_t s = 0; s < 2; s++) {
        wk_data_conf_t c = s_conf(paths, 1);
        c.use_cache = 1;
        c.cache_dir = s_path(cd, &t, "cache");
        c.nshards = 2;
        c.shard = s;
        wk_reader_t *r = s_open(&c);
        ck_assert_int_eq(s_epoch_rows(r, 10, &e1), 0);
        ck_assert_int_eq(wk_reader_rewind(r), 0);
        ck_assert_int_eq(wk_reader_from_cache(r), 1);
        ck_assert_int_eq(s_epoch_rows(r, 10, &e2), 0);
        s_rows_eq(&e2, &e1, "cache_dir epoch");
        s_rows_free(&e1);
        s_rows_free(&e2);
        wk_reader_destroy(&r);
    }
    ck_assert_uint_eq(s_count_glob(&t, "cache/c.svm.zpscache.0of2.auto-bin-h0.p*"), 1);
    ck_assert_uint_eq(s_count_glob(&t, "cache/c.svm.zpscache.1of2.auto-bin-h0.p*"), 1);
    ck_assert_uint_eq(s_count_glob(&t, "*zpscache*"), 0);

    /* an unusable cache dir: reads work, nothing cached */
    s_write_str(s_path(nd, &t, "notadir"), "x");
    strcat(nd, "/sub");
    wk_data_conf_t c = s_conf(paths, 1);
    c.use_cache = 1;
    c.cache_dir = nd;
    wk_reader_t *r = s_open(&c);
    ck_assert_int_eq(s_epoch_rows(r, 10, &e1), 0);
    ck_assert_int_eq(wk_reader_rewind(r), 0);
    ck_assert_int_eq(wk_reader_from_cache(r), 0);
    ck_assert_int_eq(s_epoch_rows(r, 10, &e2), 0);
    s_rows_eq(&e2, &e1, "no cache dir");
    s_rows_free(&e2);
    wk_reader_destroy(&r);

    /* an epoch cut short leaves no cache and no temporary file */
    c.cache_dir = NULL;
    r = s_open(&c);
    wk_batch_t b;
    ck_assert_int_eq(wk_reader_next(r, 3, &b), 3);
    double pr = wk_reader_progress(r);
    ck_assert_msg(pr > 0.0 && pr < 1.0, "progress %g", pr);
    ck_assert_uint_eq(s_count_glob(&t, "c.svm.zpscache.*.tmp*"), 1);
    ck_assert_int_eq(wk_reader_rewind(r), 0);
    ck_assert_int_eq(wk_reader_from_cache(r), 0);
    ck_assert_uint_eq(s_count_glob(&t, "*zpscache*"), 0);
    ck_assert_int_eq(s_epoch_rows(r, 10, &e2), 0);
    s_rows_eq(&e2, &e1, "after a cut epoch");
    s_rows_free(&e2);
    ck_assert_int_eq(wk_reader_rewind(r), 0);
    ck_assert_int_eq(wk_reader_from_cache(r), 1);
    wk_reader_destroy(&r);
    /* destroy mid-epoch removes the temporary too */
    c.hash_bits = 16;
    r = s_open(&c);
    ck_assert_int_eq(wk_reader_next(r, 3, &b), 3);
    wk_reader_destroy(&r);
    ck_assert_uint_eq(s_count_glob(&t, "*.tmp*"), 0);
    ck_assert_uint_eq(s_count_glob(&t, "*zpscache*"), 1);
    s_rows_free(&e1);
    s_tdir_rm(&t);
}
END_TEST

START_TEST(test_cache_skipped_lines)
{
    tdir_t t;
    char p[256];
    s_tdir(&t);
    s_write_str(s_path(p, &t, "s.svm"), "1 1:1\n1 x:1\n0 2:1\n1 3:nan\n0 4:1\n");
    const char *paths[] = {p};
    wk_data_conf_t c = s_conf(paths, 1);
    c.use_cache = 1;
    c.skip_bad_lines = 1;
    wk_reader_t *r = s_open(&c);
    flat_t f1, f2;
    ck_assert_int_eq(s_read_flat(r, 10, &f1), 0);
    ck_assert_uint_eq(f1.n, 3);
    ck_assert_uint_eq(wk_reader_bad_lines(r), 2);
    char want[300];
    snprintf(want, sizeof want, "%s:2:3: bad feature id 'x:1'", p);
    ck_assert_str_eq(wk_reader_error(r), want);
    ck_assert_int_eq(wk_reader_rewind(r), 0);
    ck_assert_int_eq(wk_reader_from_cache(r), 1);
    ck_assert_int_eq(s_read_flat(r, 10, &f2), 0);
    ck_assert_uint_eq(wk_reader_bad_lines(r), 2);
    ck_assert_str_eq(wk_reader_error(r), want);
    ck_assert_uint_eq(f2.n, 3);
    ck_assert(f2.ids[0] == 1 && f2.ids[1] == 2 && f2.ids[2] == 4);
    ck_assert(f2.labels[0] == 1 && f2.labels[1] == 0 && f2.labels[2] == 0);
    wk_reader_destroy(&r);
    /* a reader that does not skip ignores that cache and stops at line 2 */
    c.skip_bad_lines = 0;
    r = s_open(&c);
    ck_assert_int_eq(wk_reader_from_cache(r), 0);
    ck_assert_int_eq(s_read_flat(r, 10, &f2), ZPS_EINVAL);
    ck_assert_str_eq(wk_reader_error(r), want);
    wk_reader_destroy(&r);
    s_tdir_rm(&t);
}
END_TEST

/* ---- shuffle, progress, empty input -------------------------------------- */

/* Line index i of a row whose first feature id is 1000000 + i (s_make_text
 * and the files below), or -1. */
static long s_row_line(const char *row)
{
    unsigned long long id;
    if (sscanf(row, "%*s %llu:", &id) != 1 || id < 1000000 || id >= 2000000)
        return -1;
    return (long)(id - 1000000);
}

/* "label 1000000+i:1" for i < n, labels sorted: 0 for i < n0, then 1. */
static void s_make_sorted(sb_t *sb, int n, int n0)
{
    for (int i = 0; i < n; i++)
        s_sb_printf(sb, "%d %d:1\n", i >= n0, 1000000 + i);
}

START_TEST(test_shuffle)
{
    tdir_t t;
    char p[256];
    s_tdir(&t);
    sb_t sb = {NULL, 0, 0};
    s_make_text(&sb, 200, 9);
    s_write(s_path(p, &t, "s.svm"), sb.s, sb.n);
    free(sb.s);
    const char *paths[] = {p};
    wk_data_conf_t c = s_conf(paths, 1);
    rows_t plain, a1, a2, b1, b2, x1, sp;
    wk_reader_t *r = s_open(&c);
    ck_assert_int_eq(s_epoch_rows(r, 100, &plain), 0);
    wk_reader_destroy(&r);
    sp = plain;
    sp.v = malloc(plain.n * sizeof *sp.v);
    ck_assert_ptr_nonnull(sp.v);
    memcpy(sp.v, plain.v, plain.n * sizeof *sp.v);
    s_rows_sort(&sp);

    c.shuffle_buffer = 16;
    c.block_bytes = 512;
    c.seed = 7;
    c.use_cache = 1;
    r = s_open(&c);
    ck_assert_int_eq(s_epoch_rows(r, 5, &a1), 0);
    ck_assert_int_eq(wk_reader_rewind(r), 0);
    ck_assert_int_eq(wk_reader_from_cache(r), 1);
    ck_assert_int_eq(s_epoch_rows(r, 64, &a2), 0);
    wk_reader_destroy(&r);
    ck_assert_uint_eq(s_count_glob(&t, "s.svm.zpscache.0of1b512.auto-bin-h0"), 1);
    /* a new reader (a restarted worker) reads epoch 0 from the cache in the
     * order the text gave, whatever the batch sizes */
    r = s_open(&c);
    ck_assert_int_eq(wk_reader_from_cache(r), 1);
    ck_assert_int_eq(s_epoch_rows(r, 1, &b1), 0);
    wk_reader_destroy(&r);
    ck_assert(s_rows_same_order(&b1, &a1));
    s_rows_free(&b1);
    c.use_cache = 0;
    r = s_open(&c);
    ck_assert_int_eq(s_epoch_rows(r, 3, &b1), 0);
    ck_assert_int_eq(wk_reader_rewind(r), 0);
    ck_assert_int_eq(s_epoch_rows(r, 1000, &b2), 0);
    wk_reader_destroy(&r);
    c.seed = 8;
    r = s_open(&c);
    ck_assert_int_eq(s_epoch_rows(r, 3, &x1), 0);
    wk_reader_destroy(&r);

    ck_assert(!s_rows_same_order(&a1, &plain));
    ck_assert(!s_rows_same_order(&a2, &a1));   /* another epoch, another order */
    ck_assert(s_rows_same_order(&b1, &a1));    /* same seed, same order */
    ck_assert(s_rows_same_order(&b2, &a2));    /* ... from the text or the cache */
    ck_assert(!s_rows_same_order(&x1, &a1));   /* other seed */
    rows_t *all[] = {&a1, &a2, &x1};
    for (int k = 0; k < 3; k++) {
        s_rows_sort(all[k]);
        s_rows_eq(all[k], &sp, "shuffled epoch");
    }
    /* shuffle_buffer 1: rows in file order within a block, blocks permuted:
     * the epoch is runs of consecutive lines, and the runs are out of order */
    c.shuffle_buffer = 1;
    s_rows_free(&x1);
    r = s_open(&c);
    ck_assert_int_eq(s_epoch_rows(r, 30, &x1), 0);
    wk_reader_destroy(&r);
    size_t runs = 1, back = 0;
    for (size_t i = 1; i < x1.n; i++) {
        long l0 = s_row_line(x1.v[i - 1]), l1 = s_row_line(x1.v[i]);
        ck_assert(l0 >= 0 && l1 >= 0);
        if (l1 < l0)
            back++;
        if (l1 < l0 || l1 > l0 + 3) /* lines 3 and 5 of 11 are not rows */
            runs++;
    }
    ck_assert_msg(runs >= 5 && back >= 2, "%zu runs, %zu back", runs, back);
    ck_assert_msg(runs <= (size_t)(200 * 60) / 512 + 2, "%zu runs: rows not in blocks", runs);
    s_rows_sort(&x1);
    s_rows_eq(&x1, &sp, "blocks in permuted order");
    s_rows_free(&plain);
    free(sp.v);
    s_rows_free(&a1);
    s_rows_free(&a2);
    s_rows_free(&b1);
    s_rows_free(&b2);
    s_rows_free(&x1);
    s_tdir_rm(&t);
}
END_TEST

/* Union of W block shards (sorted) must equal whole.  Each shard: its second
 * epoch comes from its cache, holds the same rows, and is in the same order
 * as a reader without cache gives for that epoch. */
static void s_check_union_mixed(const char *const *paths, size_t n, uint32_t W, uint64_t B,
                                const rows_t *whole, const char *what)
{
    rows_t all = {NULL, 0, 0};
    for (uint32_t s = 0; s < W; s++) {
        wk_data_conf_t c = s_conf(paths, n);
        c.shard = s;
        c.nshards = W;
        c.use_cache = 1;
        c.shuffle_buffer = 5;
        c.block_bytes = B;
        c.seed = 100 + s;
        wk_reader_t *r = s_open(&c);
        size_t n0 = all.n;
        long rc = s_read_rows(r, 4, &all);
        ck_assert_msg(rc == 0, "%s W=%u B=%llu shard %u: %s", what, W, (unsigned long long)B, s,
                      wk_reader_error(r));
        ck_assert_int_eq(wk_reader_rewind(r), 0);
        T_REQUIRE(wk_reader_from_cache(r) == 1, "%s W=%u B=%llu shard %u: epoch 2 not cached",
                  what, W, (unsigned long long)B, s);
        rows_t again = {NULL, 0, 0}, text = {NULL, 0, 0};
        ck_assert_int_eq(s_read_rows(r, 3, &again), 0);
        wk_reader_destroy(&r);
        c.use_cache = 0;
        r = s_open(&c);
        ck_assert_int_eq(wk_reader_rewind(r), 0);
        ck_assert_int_eq(s_read_rows(r, 7, &text), 0);
        wk_reader_destroy(&r);
        T_REQUIRE(s_rows_same_order(&again, &text), "%s W=%u B=%llu shard %u: cached epoch "
                  "in another order than the text", what, W, (unsigned long long)B, s);
        rows_t first = {NULL, 0, 0};
        for (size_t i = n0; i < all.n; i++) {
            if (first.n == first.cap) {
                first.cap = first.cap ? 2 * first.cap : 64;
                first.v = realloc(first.v, first.cap * sizeof *first.v);
                ck_assert_ptr_nonnull(first.v);
            }
            first.v[first.n++] = all.v[i];
        }
        s_rows_sort(&first);
        s_rows_sort(&again);
        s_rows_eq(&again, &first, "shard from its cache");
        free(first.v);
        s_rows_free(&again);
        s_rows_free(&text);
    }
    s_rows_sort(&all);
    char msg[160];
    snprintf(msg, sizeof msg, "%s, union of %u block shards (B=%llu)", what, W,
             (unsigned long long)B);
    s_rows_eq(&all, whole, msg);
    s_rows_free(&all);
}

START_TEST(test_mixed_union)
{
    tdir_t t;
    char d1[256], d2[256], p[256];
    s_tdir(&t);
    mkdir(s_path(d1, &t, "plain"), 0755);
    mkdir(s_path(d2, &t, "gz"), 0755);
    /* one file; three plain files and a gzip one; four gzip files and a plain one */
    sb_t sb = {NULL, 0, 0};
    s_make_text(&sb, 300, 21);
    s_sb_printf(&sb, "0 77:1 78:2"); /* no trailing newline */
    s_write(s_path(p, &t, "one.svm"), sb.s, sb.n);
    free(sb.s);
    for (int i = 0; i < 5; i++) {
        char name[64], q[256];
        sb_t fb = {NULL, 0, 0};
        s_make_text(&fb, 20 + 37 * i, 30 + (uint64_t)i);
        s_sb_printf(&fb, "1 %d:1\n", 900 + i);
        snprintf(name, sizeof name, "plain/f%d", i);
        if (i < 4) {
            if (i == 2)
                s_write_gz(s_path(q, &t, name), fb.s, fb.n);
            else
                s_write(s_path(q, &t, name), fb.s, fb.n);
        }
        snprintf(name, sizeof name, "gz/f%d", i);
        if (i < 4)
            s_write_gz(s_path(q, &t, name), fb.s, fb.n);
        else
            s_write(s_path(q, &t, name), fb.s, fb.n);
        free(fb.s);
    }
    const char *sets[] = {p, d1, d2};
    static const uint64_t blocks[] = {0, 64, 200, 1000};
    for (int k = 0; k < 3; k++) {
        const char *paths[] = {sets[k]};
        wk_data_conf_t c = s_conf(paths, 1);
        rows_t whole = {NULL, 0, 0};
        s_rows_whole(paths, 1, &c, &whole);
        ck_assert_uint_gt(whole.n, 100);
        for (uint32_t W = 1; W <= 5; W++)
            for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++)
                s_check_union_mixed(paths, 1, W, blocks[b], &whole, sets[k]);
        s_rows_free(&whole);
    }
    s_tdir_rm(&t);
}
END_TEST

/* A label-sorted file: no worker's part is one contiguous range, every
 * worker gets both labels, and one worker alone (--local) reads the blocks
 * out of order. */
START_TEST(test_mixed_sorted_spread)
{
    tdir_t t;
    char p[256];
    s_tdir(&t);
    sb_t sb = {NULL, 0, 0};
    s_make_sorted(&sb, 2000, 1500);
    s_write(s_path(p, &t, "sorted.svm"), sb.s, sb.n);
    free(sb.s);
    const char *paths[] = {p};
    for (uint32_t W = 1; W <= 5; W++) {
        int total = 0;
        for (uint32_t s = 0; s < W; s++) {
            wk_data_conf_t c = s_conf(paths, 1);
            c.shard = s;
            c.nshards = W;
            c.shuffle_buffer = 1; /* blocks permuted, rows in order within a block */
            c.seed = 5;
            wk_reader_t *r = s_open(&c);
            rows_t rs = {NULL, 0, 0};
            ck_assert_int_eq(s_read_rows(r, 50, &rs), 0);
            wk_reader_destroy(&r);
            ck_assert_uint_gt(rs.n, 0);
            char *seen = calloc(2000, 1);
            ck_assert_ptr_nonnull(seen);
            long lo = 2000, hi = -1;
            size_t ones_first_half = 0, zeros_second_half = 0;
            for (size_t i = 0; i < rs.n; i++) {
                long l = s_row_line(rs.v[i]);
                ck_assert(l >= 0 && l < 2000 && !seen[l]);
                seen[l] = 1;
                lo = l < lo ? l : lo;
                hi = l > hi ? l : hi;
                if (i < rs.n / 2)
                    ones_first_half += l >= 1500;
                else
                    zeros_second_half += l < 1500;
            }
            total += (int)rs.n;
            /* both labels; not one contiguous range */
            T_REQUIRE(lo < 1500 && hi >= 1500, "W=%u shard %u: lines %ld..%ld, one label", W, s,
                      lo, hi);
            if (W > 1)
                T_REQUIRE((long)rs.n < hi - lo + 1, "W=%u shard %u: lines %ld..%ld contiguous",
                          W, s, lo, hi);
            /* blocks out of file order: ones early and zeros late */
            T_REQUIRE(ones_first_half > 0 && zeros_second_half > 0,
                      "W=%u shard %u: blocks read in file order", W, s);
            free(seen);
            s_rows_free(&rs);
        }
        ck_assert_int_eq(total, 2000);
    }
    /* one worker, blocks of 256 bytes (~23 rows), a window of 500 rows (a
     * quarter of the file, ~20 blocks): every window mixes both labels */
    wk_data_conf_t c = s_conf(paths, 1);
    c.shuffle_buffer = 500;
    c.block_bytes = 256;
    c.seed = 9;
    wk_reader_t *r = s_open(&c);
    wk_batch_t b;
    long n;
    int batches = 0;
    while ((n = wk_reader_next(r, 500, &b)) > 0) {
        int ones = 0;
        for (long i = 0; i < n; i++)
            ones += b.labels[i] == 1.0f;
        T_REQUIRE(n == 500 && ones > 0 && ones < n, "window %d: %d of %ld rows are 1", batches,
                  ones, n);
        batches++;
    }
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(batches, 4);
    wk_reader_destroy(&r);
    s_tdir_rm(&t);
}
END_TEST

/* Block caches: one per file and worker, named with the block size; other
 * layouts do not use it; a broken one is rewritten; skipped lines keep
 * their count; bad lines are named by their absolute line number. */
START_TEST(test_mixed_cache)
{
    tdir_t t;
    char p[256], cn[256];
    s_tdir(&t);
    sb_t sb = {NULL, 0, 0};
    s_make_text(&sb, 120, 5);
    s_write(s_path(p, &t, "m.svm"), sb.s, sb.n);
    free(sb.s);
    const char *paths[] = {p};
    wk_data_conf_t c = s_conf(paths, 1);
    c.use_cache = 1;
    c.shuffle_buffer = 10;
    c.block_bytes = 256;
    c.nshards = 2;
    c.shard = 1;
    rows_t e1, e2;
    wk_reader_t *r = s_open(&c);
    ck_assert_int_eq(s_epoch_rows(r, 10, &e1), 0);
    wk_reader_destroy(&r);
    ck_assert_uint_eq(s_count_glob(&t, "m.svm.zpscache.1of2b256.auto-bin-h0"), 1);
    ck_assert_uint_eq(s_count_glob(&t, "*.tmp*"), 0);
    for (int k = 0; k < 4; k++) {
        wk_data_conf_t o = c;
        if (k == 0)
            o.block_bytes = 512;
        else if (k == 1)
            o.nshards = 3;
        else if (k == 2)
            o.shuffle_buffer = 0; /* contiguous shard */
        else
            o.shard = 0;
        r = s_open(&o);
        ck_assert_msg(wk_reader_from_cache(r) == 0, "layout %d used the cache", k);
        wk_reader_destroy(&r);
    }
    r = s_open(&c);
    ck_assert_int_eq(wk_reader_from_cache(r), 1);
    wk_reader_destroy(&r);
    /* a truncated cache is ignored, and rewritten by the next full epoch */
    s_path(cn, &t, "m.svm.zpscache.1of2b256.auto-bin-h0");
    struct stat st;
    ck_assert_int_eq(stat(cn, &st), 0);
    ck_assert_int_eq(truncate(cn, st.st_size - 8), 0);
    r = s_open(&c);
    ck_assert_int_eq(wk_reader_from_cache(r), 0);
    ck_assert_int_eq(s_epoch_rows(r, 10, &e2), 0);
    s_rows_sort(&e1);
    s_rows_sort(&e2);
    s_rows_eq(&e2, &e1, "after a broken cache");
    s_rows_free(&e2);
    ck_assert_int_eq(wk_reader_rewind(r), 0);
    ck_assert_int_eq(wk_reader_from_cache(r), 1);
    ck_assert_int_eq(s_epoch_rows(r, 10, &e2), 0);
    s_rows_sort(&e2);
    s_rows_eq(&e2, &e1, "rewritten cache");
    s_rows_free(&e2);
    wk_reader_destroy(&r);
    /* an epoch cut short leaves no temporary file */
    c.hash_bits = 12;
    r = s_open(&c);
    wk_batch_t b;
    ck_assert_int_eq(wk_reader_next(r, 3, &b), 3);
    ck_assert_uint_eq(s_count_glob(&t, "*.tmp*"), 1);
    ck_assert_int_eq(wk_reader_rewind(r), 0);
    ck_assert_uint_eq(s_count_glob(&t, "*.tmp*"), 0);
    ck_assert_int_eq(wk_reader_from_cache(r), 0);
    wk_reader_destroy(&r);
    ck_assert_uint_eq(s_count_glob(&t, "*.tmp*"), 0);
    s_rows_free(&e1);

    /* bad lines: 40 lines, 7 and 33 bad, blocks of 32 bytes, 3 workers */
    sb_t bb = {NULL, 0, 0};
    for (int i = 1; i <= 40; i++)
        if (i == 7 || i == 33)
            s_sb_printf(&bb, "1 %d:x\n", 1000000 + i);
        else
            s_sb_printf(&bb, "%d %d:1\n", i & 1, 1000000 + i);
    s_write(p, bb.s, bb.n);
    free(bb.s);
    int failed = 0;
    uint64_t skipped = 0;
    for (uint32_t s = 0; s < 3; s++) {
        wk_data_conf_t o = s_conf(paths, 1);
        o.shuffle_buffer = 4;
        o.block_bytes = 32;
        o.nshards = 3;
        o.shard = s;
        o.seed = s;
        r = s_open(&o);
        flat_t f;
        long rc = s_read_flat(r, 3, &f);
        if (rc != 0) {
            ck_assert_int_eq(rc, ZPS_EINVAL);
            char w7[300], w33[300];
            snprintf(w7, sizeof w7, "%s:7:11: bad value 'x'", p);
            snprintf(w33, sizeof w33, "%s:33:11: bad value 'x'", p);
            const char *e = wk_reader_error(r);
            T_REQUIRE(strcmp(e, w7) == 0 || strcmp(e, w33) == 0, "error '%s'", e);
            failed++;
        }
        wk_reader_destroy(&r);
        o.skip_bad_lines = 1;
        o.use_cache = 1;
        r = s_open(&o);
        uint64_t b0 = 0;
        for (int epoch = 0; epoch < 2; epoch++) {
            ck_assert_int_eq(s_read_flat(r, 3, &f), 0);
            if (epoch == 0) {
                b0 = wk_reader_bad_lines(r);
                skipped += b0;
            } else {
                ck_assert_int_eq(wk_reader_from_cache(r), 1);
                ck_assert_uint_eq(wk_reader_bad_lines(r), b0);
            }
            ck_assert_int_eq(wk_reader_rewind(r), 0);
        }
        wk_reader_destroy(&r);
    }
    ck_assert_int_ge(failed, 1);
    ck_assert_uint_eq(skipped, 2);
    s_tdir_rm(&t);
}
END_TEST

START_TEST(test_progress_and_empty)
{
    tdir_t t;
    char p[256], q[256];
    s_tdir(&t);
    sb_t sb = {NULL, 0, 0};
    s_make_text(&sb, 200, 8);
    s_write(s_path(p, &t, "a.svm"), sb.s, sb.n);
    s_write_gz(s_path(q, &t, "b.gz"), sb.s, sb.n);
    free(sb.s);
    for (int shuffle = 0; shuffle < 2; shuffle++) {
        const char *paths[] = {p, q};
        wk_data_conf_t c = s_conf(paths, 2);
        c.shuffle_buffer = shuffle ? 50 : 0;
        c.use_cache = 1;
        wk_reader_t *r = s_open(&c);
        for (int epoch = 0; epoch < 2; epoch++) {
            ck_assert(wk_reader_progress(r) == 0.0);
            double last = 0.0;
            wk_batch_t b;
            long n;
            uint64_t rows = 0;
            while ((n = wk_reader_next(r, 20, &b)) > 0) {
                double pr = wk_reader_progress(r);
                rows += (uint64_t)n;
                ck_assert_uint_eq(wk_reader_rows(r), rows);
                ck_assert_msg(pr >= last && pr <= 1.0, "progress %g after %g", pr, last);
                last = pr;
            }
            ck_assert_int_eq(n, 0);
            ck_assert(wk_reader_progress(r) == 1.0);
            /* a block-shard cache is not the contiguous shard's: epoch 0 parses */
            ck_assert_int_eq(wk_reader_from_cache(r), epoch);
            ck_assert_int_eq(wk_reader_rewind(r), 0);
        }
        wk_reader_destroy(&r);
    }
    /* an empty file: no rows, and an empty cache works */
    s_write(p, "", 0);
    s_write_str(q, "# nothing\n\n");
    const char *paths[] = {p, q};
    wk_data_conf_t c = s_conf(paths, 2);
    c.use_cache = 1;
    wk_reader_t *r = s_open(&c);
    flat_t f;
    for (int epoch = 0; epoch < 2; epoch++) {
        ck_assert_int_eq(s_read_flat(r, 10, &f), 0);
        ck_assert_uint_eq(f.n, 0);
        ck_assert(wk_reader_progress(r) == 1.0);
        ck_assert_int_eq(wk_reader_rewind(r), 0);
        ck_assert_int_eq(wk_reader_from_cache(r), 1);
    }
    wk_batch_t b;
    ck_assert_int_eq(wk_reader_next(r, 0, &b), ZPS_EINVAL);
    wk_reader_destroy(&r);
    s_tdir_rm(&t);
}
END_TEST

Suite *suite_data(void)
{
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("parse");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_libsvm_syntax);
    tcase_add_test(tc, test_values_match_strtod);
    tcase_add_test(tc, test_labels);
    tcase_add_loop_test(tc, test_bad_lines, 0, (int)(sizeof s_bad_cases / sizeof s_bad_cases[0]));
    tcase_add_test(tc, test_bad_line_number_in_shard);
    tcase_add_test(tc, test_hash_bits_libsvm);
    tcase_add_test(tc, test_criteo);
    tcase_add_test(tc, test_auto_detect);
    tcase_add_test(tc, test_gzip_equals_plain);
    tcase_add_test(tc, test_gzip_truncated);
    tcase_add_test(tc, test_paths);
    suite_add_tcase(s, tc);

    tc = tcase_create("shards");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_shard_union_plain);
    tcase_add_test(tc, test_shard_union_gzip);
    tcase_add_test(tc, test_shard_union_files);
    tcase_add_test(tc, test_mixed_union);
    tcase_add_test(tc, test_mixed_sorted_spread);
    suite_add_tcase(s, tc);

    tc = tcase_create("cache");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_cache);
    tcase_add_test(tc, test_cache_dir_and_partial_epoch);
    tcase_add_test(tc, test_cache_skipped_lines);
    tcase_add_test(tc, test_shuffle);
    tcase_add_test(tc, test_mixed_cache);
    tcase_add_test(tc, test_progress_and_empty);
    suite_add_tcase(s, tc);
    return s;
}
