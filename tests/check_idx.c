/* check_idx: the IDX image/label reader (worker/wk_idx.c) and its hook in
 * wk_data (--format idx and auto-detection).
 *
 * Every test writes small IDX files into its own mkdtemp directory.  Rows
 * are generated so that each is distinguishable (pixel 0 and 1 encode the
 * row number), and compared pixel by pixel with what was written:
 *   - round trip: every row's label, ids (nonzero pixels only, 0-based) and
 *     values (pixel / 255) through wk_reader, with --format idx and auto;
 *   - gzip: either file compressed gives the same rows;
 *   - the labels file found by the MNIST naming, also across compression;
 *   - shards 0..W-1 (W = 1..6) are contiguous, each row exactly once, and a
 *     shuffled epoch is a permutation of its shard that changes per epoch;
 *   - header and size errors: each names the file and the reason;
 *   - the options: --format idx, the mlp's default passes and Adam step. */
#include <check.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "check_suites.h"
#include "wk_data.h"
#include "wk_idx.h"
#include "zps_conf.h"
#include "zps_err.h"

#define T_REQUIRE(cond, ...)           \
    do {                               \
        if (!(cond))                   \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)

typedef struct {
    char dir[64];
} tdir_t;

static void s_tdir(tdir_t *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/zps-check-idx-XXXXXX");
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

static const char *s_path(char *buf, const tdir_t *t, const char *name)
{
    snprintf(buf, 512, "%s/%s", t->dir, name);
    return buf;
}

/* Writes an IDX file: header (0, 0, type, ndims, dims big-endian), then
 * data; gzip-compressed if gz.  extra: bytes appended after data (zeros);
 * cut: bytes removed from the end of the plain content. */
static void s_write_idx(const char *path, int gz, uint8_t type, uint8_t ndims,
                        const uint32_t *dims, const uint8_t *data, size_t len, size_t extra,
                        size_t cut)
{
    size_t hl = 4 + 4u * ndims, total = hl + len + extra;
    uint8_t *buf = calloc(total + 1, 1);
    ck_assert_ptr_nonnull(buf);
    buf[2] = type;
    buf[3] = ndims;
    for (uint32_t i = 0; i < ndims; i++) {
        buf[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
        buf[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
        buf[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
        buf[7 + 4 * i] = (uint8_t)dims[i];
    }
    if (len)
        memcpy(buf + hl, data, len);
    total -= cut;
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(gzwrite(f, buf, (unsigned)total), (int)total);
        ck_assert_int_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(buf, 1, total, f), total);
        ck_assert_int_eq(fclose(f), 0);
    }
    free(buf);
}

/* Pixel j of row i of the generated images (rows x F): 0 on every third
 * pixel (so rows are sparse), pixels 0 and 1 encode the row. */
static uint8_t s_pix(uint32_t i, uint32_t j)
{
    if (j == 0)
        return (uint8_t)(i % 255 + 1);
    if (j == 1)
        return (uint8_t)(i / 255 + 1);
    if (j % 3 == 2)
        return 0;
    return (uint8_t)((i * 31u + j * 17u) % 256);
}

static uint8_t s_label_of(uint32_t i)
{
    return (uint8_t)((i * 7u) % 10);
}

/* Writes images (n x 4 x 5) and labels. */
static void s_write_pair(const char *images, const char *labels, uint32_t n, int gz_images,
                         int gz_labels)
{
    const uint32_t F = 20;
    uint8_t *pix = malloc((size_t)n * F + 1), *lab = malloc(n + 1);
    ck_assert(pix && lab);
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < F; j++)
            pix[(size_t)i * F + j] = s_pix(i, j);
        lab[i] = s_label_of(i);
    }
    const uint32_t di[3] = {n, 4, 5}, dl[1] = {n};
    s_write_idx(images, gz_images, 0x08, 3, di, pix, (size_t)n * F, 0, 0);
    s_write_idx(labels, gz_labels, 0x08, 1, dl, lab, n, 0, 0);
    free(pix);
    free(lab);
}

/* Row number encoded in the batch's row r, after checking the row against
 * the generator (ids, values, label). */
static uint32_t s_check_row(const wk_batch_t *b, size_t r)
{
    const size_t o = b->offsets[r], e = b->offsets[r + 1];
    T_REQUIRE(e - o >= 2 && b->ids[o] == 0 && b->ids[o + 1] == 1, "row %zu lacks pixels 0, 1", r);
    uint32_t i = (uint32_t)(b->vals[o] * 255.0f + 0.5f) - 1 +
                 255u * ((uint32_t)(b->vals[o + 1] * 255.0f + 0.5f) - 1);
    size_t k = o;
    for (uint32_t j = 0; j < 20; j++) {
        uint8_t p = s_pix(i, j);
        if (p == 0)
            continue;
        T_REQUIRE(k < e && b->ids[k] == j, "row %u: pixel %u missing (id %llu)", i, j,
                  k < e ? (unsigned long long)b->ids[k] : 0ULL);
        T_REQUIRE(b->vals[k] == (float)p * (1.0f / 255.0f), "row %u pixel %u: %g, want %u/255",
                  i, j, (double)b->vals[k], p);
        T_REQUIRE(b->vals[k] >= 0 && b->vals[k] <= 1, "value out of [0,1]");
        k++;
    }
    T_REQUIRE(k == e, "row %u: %zu extra features", i, e - k);
    T_REQUIRE(b->labels[r] == (float)s_label_of(i), "row %u: label %g, want %u", i,
              (double)b->labels[r], s_label_of(i));
    return i;
}

static wk_reader_t *s_reader(const char *spec, zps_format_t fmt, uint32_t shard, uint32_t W,
                             uint32_t shuffle, char *err, size_t errlen)
{
    const char *paths[1] = {spec};
    wk_data_conf_t dc;
    memset(&dc, 0, sizeof dc);
    dc.paths = paths;
    dc.npaths = 1;
    dc.format = fmt;
    dc.shard = shard;
    dc.nshards = W;
    dc.labels = WK_LABEL_CLASS;
    dc.shuffle_buffer = shuffle;
    dc.seed = 7;
    return wk_reader_new(&dc, err, errlen);
}

/* Reads a whole epoch; seen[i] counts row i; order[] gets the rows in order. */
static size_t s_epoch(wk_reader_t *r, uint32_t n, uint32_t *seen, uint32_t *order,
                      size_t batch)
{
    wk_batch_t b;
    long got;
    size_t k = 0;
    while ((got = wk_reader_next(r, batch, &b)) > 0) {
        T_REQUIRE((size_t)got <= batch, "batch of %ld > %zu", got, batch);
        for (size_t i = 0; i < b.n; i++) {
            uint32_t row = s_check_row(&b, i);
            T_REQUIRE(row < n, "row %u out of range", row);
            seen[row]++;
            if (order)
                order[k] = row;
            k++;
        }
    }
    T_REQUIRE(got == 0, "reader error %ld: %s", got, wk_reader_error(r));
    return k;
}

START_TEST(test_round_trip)
{
    tdir_t t;
    s_tdir(&t);
    char im[512], lb[512], spec[1100], err[1024];
    const uint32_t n = 600;
    s_write_pair(s_path(im, &t, "a-images-idx3-ubyte"), s_path(lb, &t, "a-labels-idx1-ubyte"), n, 0,
                 0);
    for (int mode = 0; mode < 3; mode++) {
        /* explicit pair with --format idx; pair auto-detected; images only */
        if (mode < 2)
            snprintf(spec, sizeof spec, "%s,%s", im, lb);
        else
            snprintf(spec, sizeof spec, "%s", im);
        wk_reader_t *r = s_reader(spec, mode == 0 ? ZPS_FMT_IDX : ZPS_FMT_AUTO, 0, 1, 0, err,
                                  sizeof err);
        ck_assert_msg(r != NULL, "mode %d: %s", mode, err);
        uint32_t seen[600] = {0}, order[600];
        ck_assert_uint_eq(s_epoch(r, n, seen, order, 64), n);
        for (uint32_t i = 0; i < n; i++)
            T_REQUIRE(seen[i] == 1 && order[i] == i, "row %u: seen %u, at %u", i, seen[i],
                      order[i]);
        ck_assert_uint_eq(wk_reader_rows(r), n);
        ck_assert(wk_reader_progress(r) == 1.0);
        /* a second epoch gives the same rows */
        ck_assert_int_eq(wk_reader_rewind(r), 0);
        ck_assert(wk_reader_progress(r) == 0.0);
        memset(seen, 0, sizeof seen);
        ck_assert_uint_eq(s_epoch(r, n, seen, order, 1000), n);
        for (uint32_t i = 0; i < n; i++)
            T_REQUIRE(seen[i] == 1 && order[i] == i, "epoch 2 row %u", i);
        wk_reader_destroy(&r);
        ck_assert_ptr_null(r);
    }
    /* a libsvm file is not taken for IDX */
    FILE *f = fopen(s_path(im, &t, "x.libsvm"), "w");
    ck_assert_ptr_nonnull(f);
    fputs("1 3:1\n", f);
    fclose(f);
    ck_assert_int_eq(wk_idx_sniff(im), 0);
    s_tdir_rm(&t);
}
END_TEST

START_TEST(test_gzip)
{
    tdir_t t;
    s_tdir(&t);
    char im[512], lb[512], spec[1100], err[1024];
    const uint32_t n = 300;
    for (int gi = 0; gi < 2; gi++)
        for (int gl = 0; gl < 2; gl++) {
            snprintf(spec, sizeof spec, "g%d%d", gi, gl);
            char name_i[64], name_l[64];
            snprintf(name_i, sizeof name_i, "t%d%d-images-idx3-ubyte%s", gi, gl, gi ? ".gz" : "");
            snprintf(name_l, sizeof name_l, "t%d%d-labels-idx1-ubyte%s", gi, gl, gl ? ".gz" : "");
            s_write_pair(s_path(im, &t, name_i), s_path(lb, &t, name_l), n, gi, gl);
            /* images only: the labels file is found with either compression */
            wk_reader_t *r = s_reader(im, ZPS_FMT_AUTO, 0, 1, 0, err, sizeof err);
            ck_assert_msg(r != NULL, "gz %d/%d: %s", gi, gl, err);
            uint32_t seen[300] = {0}, order[300];
            ck_assert_uint_eq(s_epoch(r, n, seen, order, 77), n);
            for (uint32_t i = 0; i < n; i++)
                T_REQUIRE(seen[i] == 1 && order[i] == i, "gz %d/%d row %u", gi, gl, i);
            wk_reader_destroy(&r);
        }
    s_tdir_rm(&t);
}
END_TEST

START_TEST(test_labels_name)
{
    char out[256];
    ck_assert_int_eq(wk_idx_labels_name("/d/train-images-idx3-ubyte.gz", out, sizeof out), 0);
    ck_assert_str_eq(out, "/d/train-labels-idx1-ubyte.gz");
    ck_assert_int_eq(wk_idx_labels_name("images/t10k-images.idx3-ubyte", out, sizeof out), 0);
    ck_assert_str_eq(out, "images/t10k-labels.idx1-ubyte");
    ck_assert_int_eq(wk_idx_labels_name("/d/pictures.idx3", out, sizeof out), ZPS_EINVAL);
    ck_assert_int_eq(wk_idx_labels_name("/images-idx3/x.bin", out, sizeof out), ZPS_EINVAL);
}
END_TEST

START_TEST(test_shards)
{
    tdir_t t;
    s_tdir(&t);
    char im[512], lb[512], spec[1100], err[1024];
    const uint32_t n = 1001;
    s_write_pair(s_path(im, &t, "s-images-idx3-ubyte.gz"), s_path(lb, &t, "s-labels-idx1-ubyte"),
                 n, 1, 0);
    snprintf(spec, sizeof spec, "%s,%s", im, lb);
    static uint32_t seen[1001], order[1001];
    for (uint32_t W = 1; W <= 6; W++) {
        memset(seen, 0, sizeof seen);
        uint64_t next = 0;
        for (uint32_t s = 0; s < W; s++) {
            wk_idx_conf_t ic = {spec, s, W, WK_LABEL_CLASS, 0, 1};
            wk_idx_t *x = wk_idx_new(&ic, err, sizeof err);
            ck_assert_msg(x != NULL, "%s", err);
            ck_assert_uint_eq(wk_idx_total(x), n);
            ck_assert_uint_eq(wk_idx_features(x), 20);
            /* contiguous: shard s starts where s - 1 ended */
            T_REQUIRE(wk_idx_first_row(x) == next, "W %u shard %u starts at %llu, want %llu", W,
                      s, (unsigned long long)wk_idx_first_row(x), (unsigned long long)next);
            uint64_t rows = wk_idx_shard_rows(x);
            T_REQUIRE(rows >= n / W && rows <= n / W + 1, "unbalanced shard: %llu rows",
                      (unsigned long long)rows);
            wk_idx_destroy(&x);

            wk_reader_t *r = s_reader(spec, ZPS_FMT_IDX, s, W, 0, err, sizeof err);
            ck_assert_msg(r != NULL, "%s", err);
            size_t k = s_epoch(r, n, seen, order, 50);
            T_REQUIRE(k == rows, "shard read %zu rows, want %llu", k, (unsigned long long)rows);
            for (size_t i = 0; i < k; i++)
                T_REQUIRE(order[i] == next + i, "W %u shard %u: row %zu is %u", W, s, i, order[i]);
            next += rows;
            wk_reader_destroy(&r);
        }
        ck_assert_uint_eq(next, n);
        for (uint32_t i = 0; i < n; i++)
            T_REQUIRE(seen[i] == 1, "W %u: row %u read %u times", W, i, seen[i]);
    }
    s_tdir_rm(&t);
}
END_TEST

START_TEST(test_shuffle)
{
    tdir_t t;
    s_tdir(&t);
    char im[512], lb[512], spec[1100], err[1024];
    const uint32_t n = 500;
    s_write_pair(s_path(im, &t, "h-images-idx3-ubyte"), s_path(lb, &t, "h-labels-idx1-ubyte"), n, 0,
                 0);
    snprintf(spec, sizeof spec, "%s", im);
    /* shard 1 of 2 = rows 250..499, windows of 100 rows */
    wk_reader_t *r = s_reader(spec, ZPS_FMT_IDX, 1, 2, 100, err, sizeof err);
    ck_assert_msg(r != NULL, "%s", err);
    uint32_t seen[500] = {0}, o1[500], o2[500];
    ck_assert_uint_eq(s_epoch(r, n, seen, o1, 64), 250);
    ck_assert_int_eq(wk_reader_rewind(r), 0);
    ck_assert_uint_eq(s_epoch(r, n, seen, o2, 64), 250);
    size_t moved = 0, differ = 0;
    for (uint32_t i = 0; i < 250; i++) {
        T_REQUIRE(seen[250 + i] == 2 && seen[i] == 0, "row %u read %u times", 250 + i,
                  seen[250 + i]);
        /* window w holds rows 250 + 100 w .. : a permutation within it */
        T_REQUIRE((o1[i] - 250) / 100 == i / 100 && (o2[i] - 250) / 100 == i / 100,
                  "row %u left its window", o1[i]);
        moved += o1[i] != 250 + i;
        differ += o1[i] != o2[i];
    }
    ck_assert_msg(moved > 200 && differ > 200, "shuffle moved %zu, epochs differ in %zu", moved,
                  differ);
    wk_reader_destroy(&r);
    s_tdir_rm(&t);
}
END_TEST

/* ---- errors ------------------------------------------------------------------ */

typedef struct {
    const char *what;
    int bad;           /* 0: the images file is bad, 1: the labels file */
    int gz;
    uint8_t type, ndims;
    uint32_t dims[3];
    size_t extra, cut;
    uint32_t nlabels;  /* labels count (for the images cases: 10) */
    int binary;
    const char *reason;
} err_case_t;

static const err_case_t s_err_cases[] = {
    {"bad magic", 0, 0, 0x08, 3, {10, 2, 2}, 0, 0, 10, 0, "not an IDX file"},
    {"float images", 0, 0, 0x0D, 3, {10, 2, 2}, 0, 0, 10, 0, "IDX type 0x0d (float) is not supported"},
    {"1-d images", 0, 0, 0x08, 1, {10, 0, 0}, 0, 0, 10, 0, "1 dimensions; an images file has 2 to 8"},
    {"3-d labels", 1, 0, 0x08, 3, {10, 2, 2}, 0, 0, 10, 0, "3 dimensions; a labels file has 1"},
    {"count mismatch", 1, 0, 0x08, 1, {9, 0, 0}, 0, 0, 9, 0, "has 10 images but"},
    {"short plain", 0, 0, 0x08, 3, {10, 2, 2}, 0, 1, 10, 0, "file is 55 bytes; its header"},
    {"long plain", 0, 0, 0x08, 3, {10, 2, 2}, 3, 0, 10, 0, "file is 59 bytes; its header"},
    {"short gzip", 0, 1, 0x08, 3, {10, 2, 2}, 0, 5, 10, 0, "data ends early"},
    {"long gzip", 1, 1, 0x08, 1, {10, 0, 0}, 4, 0, 10, 0, "4 bytes after the data"},
    {"short header", 0, 0, 0x08, 3, {10, 2, 2}, 0, 50, 10, 0, "header ends early"},
    {"zero dimension", 0, 0, 0x08, 3, {10, 0, 2}, 0, 0, 10, 0, "dimension 2 is 0"},
    {"binary labels", 1, 0, 0x08, 1, {10, 0, 0}, 0, 0, 10, 1, "is not 0 or 1"},
};

START_TEST(test_errors)
{
    const err_case_t *c = &s_err_cases[_i];
    tdir_t t;
    s_tdir(&t);
    char im[512], lb[512], spec[1100], err[1024] = "";
    s_path(im, &t, c->bad == 0 && c->gz ? "e-images-idx3-ubyte.gz" : "e-images-idx3-ubyte");
    s_path(lb, &t, c->bad == 1 && c->gz ? "e-labels-idx1-ubyte.gz" : "e-labels-idx1-ubyte");
    uint8_t data[64];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i % 10); /* labels 0..9 */
    const uint32_t good_i[3] = {10, 2, 2}, good_l[1] = {10};
    size_t len = 1;
    for (uint32_t d = 0; d < c->ndims; d++)
        len *= c->dims[d];
    if (c->bad == 0) {
        s_write_idx(im, c->gz, c->type, c->ndims, c->dims, data, len, c->extra, c->cut);
        s_write_idx(lb, 0, 0x08, 1, good_l, data, 10, 0, 0);
    } else {
        s_write_idx(im, 0, 0x08, 3, good_i, data, 40, 0, 0);
        s_write_idx(lb, c->gz, c->type, c->ndims, c->dims, data, len, c->extra, c->cut);
    }
    if (!strcmp(c->what, "bad magic")) {
        FILE *f = fopen(im, "r+b");
        ck_assert_ptr_nonnull(f);
        fputc(0x1, f);
        fclose(f);
    }
    snprintf(spec, sizeof spec, "%s,%s", im, lb);
    const char *paths[1] = {spec};
    wk_data_conf_t dc;
    memset(&dc, 0, sizeof dc);
    dc.paths = paths;
    dc.npaths = 1;
    dc.format = ZPS_FMT_IDX;
    dc.nshards = 2;
    dc.shard = 1;
    dc.labels = c->binary ? WK_LABEL_BINARY : WK_LABEL_CLASS;
    wk_reader_t *r = wk_reader_new(&dc, err, sizeof err);
    ck_assert_msg(r == NULL, "%s: accepted", c->what);
    const char *bad = c->bad ? lb : im;
    ck_assert_msg(strstr(err, bad) != NULL, "%s: error does not name %s: %s", c->what, bad, err);
    ck_assert_msg(strstr(err, c->reason) != NULL, "%s: error '%s' lacks '%s'", c->what, err,
                  c->reason);
    s_tdir_rm(&t);
}
END_TEST

START_TEST(test_missing_and_empty)
{
    tdir_t t;
    s_tdir(&t);
    char im[512], lb[512], err[1024] = "";
    s_write_pair(s_path(im, &t, "m-images-idx3-ubyte"), s_path(lb, &t, "other-labels"), 5, 0, 0);
    wk_reader_t *r = s_reader(im, ZPS_FMT_IDX, 0, 1, 0, err, sizeof err);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(err, "m-labels-idx1-ubyte") && strstr(err, "not found"), "%s", err);
    /* no naming to follow */
    r = s_reader(lb, ZPS_FMT_IDX, 0, 1, 0, err, sizeof err);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(err, "give IMAGES,LABELS"), "%s", err);
    /* an empty pair reads as an empty epoch, for every shard */
    s_write_pair(s_path(im, &t, "z-images-idx3-ubyte"), s_path(lb, &t, "z-labels-idx1-ubyte"), 0, 1,
                 1);
    for (uint32_t s = 0; s < 3; s++) {
        r = s_reader(im, ZPS_FMT_AUTO, s, 3, 10, err, sizeof err);
        ck_assert_msg(r != NULL, "%s", err);
        wk_batch_t b;
        ck_assert_int_eq(wk_reader_next(r, 10, &b), 0);
        wk_reader_destroy(&r);
    }
    s_tdir_rm(&t);
}
END_TEST

/* The training options: --format idx, and the mlp's defaults (30 passes
 * unless --epochs, adam lr 0.0005 unless --lr; lr keeps auto and 0.001). */
static int s_conf(zps_conf_t *c, const char *const *args, int n, char *err, size_t errlen)
{
    zps_conf_defaults(c);
    for (int i = 0; i < n; i++) {
        const char *name = args[i] + 2; /* every one is "--name" */
        const char *value = zps_conf_option_arg(name) == 1 && i + 1 < n ? args[++i] : NULL;
        if (zps_conf_set(c, name, value, err, errlen) != 1)
            return -1;
    }
    return zps_conf_finish(c, err, errlen);
}

START_TEST(test_conf)
{
    char err[256] = "";
    zps_conf_t c;
    zps_optim_conf_t t;
    const char *a1[] = {"--model", "mlp", "--layers", "784,128,10", "--format", "idx"};
    ck_assert_int_eq(s_conf(&c, a1, 6, err, sizeof err), 0);
    ck_assert_int_eq(c.format, ZPS_FMT_IDX);
    ck_assert_uint_eq(c.epochs, 30);
    ck_assert_int_eq(c.optimizer, ZPS_OPT_ADAM);
    zps_conf_table(&c, &t);
    ck_assert_float_eq(t.lr, 0.0005f);
    ck_assert_float_eq(t.init_scale, 0); /* theta starts at 0 (W = W0 + theta) */
    const char *a2[] = {"--model", "mlp", "--layers", "784,128,10", "--epochs", "auto",
                        "--lr", "0.01"};
    ck_assert_int_eq(s_conf(&c, a2, 8, err, sizeof err), 0);
    ck_assert_uint_eq(c.epochs, 0); /* auto when asked */
    zps_conf_table(&c, &t);
    ck_assert_float_eq(t.lr, 0.01f);
    const char *a3[] = {"--model", "mlp", "--layers", "784,128,10", "--epochs", "3"};
    ck_assert_int_eq(s_conf(&c, a3, 6, err, sizeof err), 0);
    ck_assert_uint_eq(c.epochs, 3);
    const char *a4[] = {"--model", "fm", "--optimizer", "adam"};
    ck_assert_int_eq(s_conf(&c, a4, 4, err, sizeof err), 0);
    ck_assert_uint_eq(c.epochs, 0); /* lr, fm: auto */
    zps_conf_table(&c, &t);
    ck_assert_float_eq(t.lr, 0.001f);
    const char *a5[] = {"--format", "mnist"};
    ck_assert_int_eq(s_conf(&c, a5, 2, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "--format") != NULL, "%s", err);
}
END_TEST

Suite *suite_idx(void)
{
    Suite *s = suite_create("idx");
    TCase *tc = tcase_create("idx");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_gzip);
    tcase_add_test(tc, test_labels_name);
    tcase_add_test(tc, test_shards);
    tcase_add_test(tc, test_shuffle);
    tcase_add_loop_test(tc, test_errors, 0, (int)(sizeof s_err_cases / sizeof s_err_cases[0]));
    tcase_add_test(tc, test_missing_and_empty);
    tcase_add_test(tc, test_conf);
    suite_add_tcase(s, tc);
    return s;
}
