/* fuzz_predict: zps-predict's input side, in process: the parser's
 * unlabeled mode (worker/wk_parse.c, wk_parser_set_unlabeled) and the
 * stream reader scripts/tools/predict_in.c (plain, gzip, standard input).
 *
 * The input is a whole data file.
 *
 *   P  every line (up to 256), as LIBSVM and as Criteo, through a labeled
 *      and an unlabeled parser:
 *        - a line the labeled parser accepts (or calls blank) gives the same
 *          result, row for row, unlabeled (labeled lines are unaffected)
 *        - an unlabeled row (label NAN) is the row the labeled parser reads
 *          from the same line with a label put in front ("1 " / "1\t"):
 *          the same ids and values
 *        - every row: finite values, no bias key, ids below 2^hash_bits
 *          when hashed, labels NAN or of the label mode; a bad line has a
 *          reason and a column within the line (+2)
 *   S  predict_in over the file (format, label mode, hash bits and batch
 *      size picked from the input's hash), strict and skipping bad lines:
 *      rows, their line numbers, the bad-line count, the first bad line and
 *      the strict error ("FILE:LINE:COLUMN: reason") equal a reference that
 *      splits the lines itself and calls the parser (P's unlabeled one)
 *   G  the same text gzip-compressed reads identically; the compressed
 *      stream cut short fails with ZPS_EIO (never passes silently); some
 *      inputs are read as "-" (the file on descriptor 0) and must name
 *      "<stdin>"
 *   B  one input in eight, repeated to over 300 KiB (past predict_in's read
 *      chunk: lines straddle refills), read as in S against the reference
 *   An input starting with the gzip magic is also read as it is (a broken
 *   stream): ZPS_EIO, ZPS_EINVAL or rows, never a crash. */
#include <fcntl.h>
#include <math.h>
#include <zlib.h>

#include "fuzz_util.h"
#include "predict_in.h"
#include "wk_parse.h"
#include "wk_rows.h"
#include "zps_err.h"

#define MAX_LINES 256

static uint64_t fp_fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static int fp_same_label(float a, float b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

/* Row r of a equals row s of b (label optional). */
static int fp_same_row(const wk_rows_t *a, size_t r, const wk_rows_t *b, size_t s, int label)
{
    size_t na = a->offsets[r + 1] - a->offsets[r], nb = b->offsets[s + 1] - b->offsets[s];
    if (na != nb || (label && !fp_same_label(a->labels[r], b->labels[s])))
        return 0;
    for (size_t j = 0; j < na; j++)
        if (a->ids[a->offsets[r] + j] != b->ids[b->offsets[s] + j] ||
            memcmp(&a->vals[a->offsets[r] + j], &b->vals[b->offsets[s] + j], sizeof(float)))
            return 0;
    return 1;
}

static void fp_check_row(const wk_rows_t *d, size_t r, wk_label_mode_t labels, uint32_t bits)
{
    float l = d->labels[r];
    if (!isnan(l)) {
        if (labels == WK_LABEL_BINARY)
            FUZZ_CHECK(l == 0.0f || l == 1.0f, "binary label %g", (double)l);
        else
            FUZZ_CHECK(l >= 0 && l <= (float)(1u << 24) && l == floorf(l), "class label %g",
                       (double)l);
    }
    FUZZ_CHECK(d->offsets[r] <= d->offsets[r + 1], "offsets");
    for (size_t j = d->offsets[r]; j < d->offsets[r + 1]; j++) {
        FUZZ_CHECK(isfinite(d->vals[j]), "value %g", (double)d->vals[j]);
        FUZZ_CHECK(d->ids[j] != UINT64_MAX, "the bias key as a feature id");
        if (bits > 0 && bits < 64)
            FUZZ_CHECK(d->ids[j] < (1ULL << bits), "id over %u hash bits", bits);
    }
}

/* P: one line, one format. */
static void fp_line(wk_parser_t *lab, wk_parser_t *unl, zps_format_t fmt, const char *ls,
                    const char *le, wk_label_mode_t labels, uint32_t bits)
{
    static wk_rows_t a, b, c;
    static char *pre;
    static size_t pre_cap;
    wk_rows_clear(&a);
    wk_rows_clear(&b);
    wk_rows_clear(&c);
    int ra = wk_parse_line(lab, fmt, &a, ls, le);
    int rb = wk_parse_line(unl, fmt, &b, ls, le);
    FUZZ_CHECK(ra >= WK_PARSE_BAD && ra <= 1 && rb >= WK_PARSE_BAD && rb <= 1,
               "results %d / %d", ra, rb);
    FUZZ_CHECK((size_t)ra == a.n || (ra != 1 && a.n == 0), "labeled: %d, %zu rows", ra, a.n);
    FUZZ_CHECK((size_t)rb == b.n || (rb != 1 && b.n == 0), "unlabeled: %d, %zu rows", rb, b.n);
    size_t len = (size_t)(le - ls);
    if (rb == WK_PARSE_BAD) {
        FUZZ_CHECK(wk_parse_reason(unl)[0], "bad line without a reason");
        FUZZ_CHECK(wk_parse_column(unl) >= 1 && wk_parse_column(unl) <= len + 2,
                   "column %zu of a %zu-byte line", wk_parse_column(unl), len);
    }
    if (ra >= 0) {
        FUZZ_CHECK(rb == ra, "format %d: labeled %d, unlabeled %d (%s)", fmt, ra, rb,
                   rb == WK_PARSE_BAD ? wk_parse_reason(unl) : "");
        if (ra == 1)
            FUZZ_CHECK(fp_same_row(&a, 0, &b, 0, 1), "format %d: a labeled line reads "
                       "differently in unlabeled mode", fmt);
    }
    if (rb == 1)
        fp_check_row(&b, 0, labels, bits);
    if (rb != 1 || !isnan(b.labels[0]))
        return;
    FUZZ_CHECK(ra == WK_PARSE_BAD, "format %d: an unlabeled row, labeled parser %d", fmt, ra);
    /* the same line with a label in front */
    if (pre_cap < len + 2) {
        pre_cap = 2 * (len + 2);
        pre = realloc(pre, pre_cap);
        FUZZ_CHECK(pre, "out of memory");
    }
    pre[0] = '1';
    pre[1] = fmt == ZPS_FMT_CRITEO ? '\t' : ' ';
    memcpy(pre + 2, ls, len);
    int rc = wk_parse_line(lab, fmt, &c, pre, pre + len + 2);
    FUZZ_CHECK(rc == 1, "format %d: unlabeled row, but with a label in front the line is %d "
               "(%s)", fmt, rc, rc == WK_PARSE_BAD ? wk_parse_reason(lab) : "");
    FUZZ_CHECK(fp_same_row(&b, 0, &c, 0, 0), "format %d: unlabeled row differs from the same "
               "line with a label", fmt);
}

/* The expected reading of a file: rows, their lines, bad lines. */
typedef struct {
    wk_rows_t rows;
    uint64_t *lines;
    size_t lines_cap;
    int rc;
    uint64_t bad;
    char first_bad[1200];
    char err[1200];
} fp_ref_t;

static void fp_reference(const uint8_t *data, size_t size, const char *name, zps_format_t fmt,
                         wk_parser_t *unl, int skip, fp_ref_t *r)
{
    wk_rows_clear(&r->rows);
    r->rc = 0;
    r->bad = 0;
    r->first_bad[0] = r->err[0] = 0;
    int content = 0;
    uint64_t line = 0;
    const char *p = (const char *)data, *e = p + size;
    while (p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        const char *le = nl ? nl : e;
        line++;
        zps_format_t f = wk_parse_detect(p, le);
        if (!content && f != ZPS_FMT_AUTO) {
            content = 1;
            if (fmt == ZPS_FMT_AUTO)
                fmt = f;
        }
        if (content) {
            size_t before = r->rows.n;
            int rc = wk_parse_line(unl, fmt, &r->rows, p, le);
            FUZZ_CHECK(rc != ZPS_ENOMEM, "out of memory");
            if (rc == WK_PARSE_BAD) {
                char msg[1200];
                snprintf(msg, sizeof msg, "%s:%llu:%zu: %s", name, (unsigned long long)line,
                         wk_parse_column(unl), wk_parse_reason(unl));
                if (!skip) {
                    snprintf(r->err, sizeof r->err, "%s", msg);
                    r->rc = ZPS_EINVAL;
                    return;
                }
                if (!r->bad++)
                    snprintf(r->first_bad, sizeof r->first_bad, "%s", msg);
            } else if (r->rows.n > before) {
                FUZZ_CHECK(wk_grow((void **)&r->lines, &r->lines_cap, before + 1,
                                   sizeof *r->lines) == 0, "out of memory");
                r->lines[before] = line;
            }
        }
        p = le + 1;
    }
}

/* Reads path (or "-": path on descriptor 0) with predict_in; compares with
 * ref unless ref is NULL; returns the result code (0 at the end). */
static int fp_read(const char *path, int as_stdin, zps_format_t fmt, wk_label_mode_t labels,
                   uint32_t bits, int skip, size_t max_rows, const fp_ref_t *ref, uint64_t *rows)
{
    int saved = -1;
    if (as_stdin) {
        int fd = open(path, O_RDONLY);
        FUZZ_CHECK(fd >= 0, "open %s", path);
        saved = dup(0);
        FUZZ_CHECK(saved >= 0 && dup2(fd, 0) == 0, "dup2");
        close(fd);
    }
    char err[1200];
    predict_in_t *in = predict_in_open(as_stdin ? "-" : path, fmt, labels, bits, skip, err,
                                       sizeof err);
    if (as_stdin) {
        FUZZ_CHECK(dup2(saved, 0) == 0, "dup2 back");
        close(saved);
    }
    FUZZ_CHECK(in, "predict_in_open: %s", err);
    FUZZ_CHECK(strcmp(predict_in_name(in), as_stdin ? "<stdin>" : path) == 0, "name %s",
               predict_in_name(in));
    size_t k = 0;
    long got;
    uint64_t prev_line = 0;
    for (;;) {
        wk_batch_t b;
        got = predict_in_next(in, max_rows, &b);
        if (got <= 0)
            break;
        FUZZ_CHECK((size_t)got == b.n && b.n <= max_rows, "batch of %ld rows", got);
        wk_rows_t view = {.n = b.n, .labels = b.labels, .offsets = b.offsets, .ids = b.ids,
                          .vals = b.vals};
        FUZZ_CHECK(b.offsets[0] == 0, "offsets[0]");
        for (size_t i = 0; i < b.n; i++, k++) {
            fp_check_row(&view, i, labels, bits);
            uint64_t ln = predict_in_line(in, i);
            FUZZ_CHECK(ln > prev_line, "row line %llu after %llu", (unsigned long long)ln,
                       (unsigned long long)prev_line);
            prev_line = ln;
            if (!ref)
                continue;
            FUZZ_CHECK(k < ref->rows.n, "more rows than the reference (%zu)", ref->rows.n);
            FUZZ_CHECK(fp_same_row(&view, i, &ref->rows, k, 1), "row %zu differs", k);
            FUZZ_CHECK(ln == ref->lines[k], "row %zu: line %llu, reference %llu", k,
                       (unsigned long long)ln, (unsigned long long)ref->lines[k]);
        }
    }
    if (got < 0) {
        FUZZ_CHECK(predict_in_error(in)[0], "error %ld without a message", got);
        wk_batch_t b;
        FUZZ_CHECK(predict_in_next(in, max_rows, &b) < 0, "reading on after an error");
    }
    if (ref) {
        FUZZ_CHECK(got == 0 || got == ZPS_EINVAL, "read failed: %ld %s", got,
                   predict_in_error(in));
        FUZZ_CHECK((int)got == ref->rc, "result %ld, reference %d (%s / %s)", got, ref->rc,
                   predict_in_error(in), ref->err);
        FUZZ_CHECK(k == ref->rows.n || ref->rc, "%zu rows, reference %zu", k, ref->rows.n);
        if (ref->rc)
            FUZZ_CHECK(strcmp(predict_in_error(in), ref->err) == 0, "error '%s', reference '%s'",
                       predict_in_error(in), ref->err);
        FUZZ_CHECK(predict_in_bad_lines(in) == ref->bad, "%llu bad lines, reference %llu",
                   (unsigned long long)predict_in_bad_lines(in), (unsigned long long)ref->bad);
        FUZZ_CHECK(strcmp(predict_in_first_bad(in), ref->first_bad) == 0,
                   "first bad '%s', reference '%s'", predict_in_first_bad(in), ref->first_bad);
    }
    if (rows)
        *rows = k;
    predict_in_destroy(&in);
    FUZZ_CHECK(in == NULL, "destroy");
    return (int)got;
}

static size_t fp_gzip(const uint8_t *data, size_t size, int level, uint8_t **out)
{
    size_t cap = compressBound((uLong)size) + 64;
    uint8_t *buf = malloc(cap);
    FUZZ_CHECK(buf, "out of memory");
    z_stream z;
    memset(&z, 0, sizeof z);
    FUZZ_CHECK(deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK,
               "deflateInit2");
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)size;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    FUZZ_CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END, "deflate");
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    *out = buf;
    return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[PATH_MAX], gzpath[PATH_MAX];
    static fp_ref_t ref;
    const char *dir = fuzz_tmpdir();
    if (!path[0]) {
        snprintf(path, sizeof path, "%s/rows.txt", dir);
        snprintf(gzpath, sizeof gzpath, "%s/rows.gz", dir);
    }
    if (size > (1u << 20))
        return 0;
    uint64_t h = fp_fnv(data, size);
    wk_label_mode_t labels = (h >> 8) & 1 ? WK_LABEL_CLASS : WK_LABEL_BINARY;
    static const uint32_t bitsv[4] = {0, 0, 18, 64};
    uint32_t bits = bitsv[(h >> 9) & 3];
    size_t max_rows = 1 + (h >> 11) % 5;
    static const zps_format_t fmts[3] = {ZPS_FMT_AUTO, ZPS_FMT_LIBSVM, ZPS_FMT_CRITEO};
    zps_format_t fmt = fmts[(h >> 14) % 3];
    int as_stdin = (h >> 17) & 1;

    wk_parser_t *lab = wk_parser_new(labels, bits), *unl = wk_parser_new(labels, bits);
    FUZZ_CHECK(lab && unl, "wk_parser_new");
    wk_parser_set_unlabeled(unl, 1);

    /* P */
    const char *p = (const char *)data, *e = p + size;
    for (int n = 0; p < e && n < MAX_LINES; n++) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        const char *le = nl ? nl : e;
        fp_line(lab, unl, ZPS_FMT_LIBSVM, p, le, labels, bits);
        fp_line(lab, unl, ZPS_FMT_CRITEO, p, le, labels, bits);
        p = le + 1;
    }

    int gzmagic = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    fuzz_write_file(path, data, size);
    if (gzmagic) { /* a gzip stream of unknown content, maybe broken */
        int rc = fp_read(path, 0, fmt, labels, bits, (h >> 18) & 1, max_rows, NULL, NULL);
        FUZZ_CHECK(rc == 0 || rc == ZPS_EIO || rc == ZPS_EINVAL || rc == ZPS_ETOOBIG,
                   "raw gzip: %d", rc);
        wk_parser_destroy(&lab);
        wk_parser_destroy(&unl);
        return 0;
    }

    /* S: strict and skipping, plain (maybe as standard input) */
    const char *name = as_stdin ? "<stdin>" : path;
    uint64_t rows_skip = 0;
    for (int skip = 0; skip <= 1; skip++) {
        fp_reference(data, size, name, fmt, unl, skip, &ref);
        fp_read(path, as_stdin, fmt, labels, bits, skip, max_rows, &ref, skip ? &rows_skip : NULL);
    }

    /* G: gzip equals plain; cut short fails */
    uint8_t *gz;
    size_t gl = fp_gzip(data, size, (int)((h >> 4) % 10), &gz);
    fuzz_write_file(gzpath, gz, gl);
    int skip = (h >> 19) & 1;
    fp_reference(data, size, gzpath, fmt, unl, skip, &ref);
    fp_read(gzpath, 0, fmt, labels, bits, skip, max_rows, &ref, NULL);
    size_t cut = gl > 2 ? 2 + (size_t)(h >> 40) % (gl - 2) : 0;
    if (cut) {
        fuzz_write_file(gzpath, gz, cut);
        uint64_t got_rows = 0;
        int rc = fp_read(gzpath, as_stdin, fmt, labels, bits, 1, max_rows, NULL, &got_rows);
        FUZZ_CHECK(rc == ZPS_EIO, "gzip cut to %zu of %zu bytes: result %d (%llu rows)", cut, gl,
                   rc, (unsigned long long)got_rows);
        FUZZ_CHECK(got_rows <= rows_skip, "a truncated stream gave more rows");
    }
    free(gz);

    /* B: one input in eight repeated past predict_in's 256 KiB read chunk,
     * so lines straddle refills and the buffer moves and grows (fuzz
     * inputs are smaller than a chunk) */
    if (((h >> 21) & 7) == 0 && size > 0) {
        size_t reps = (300u << 10) / size + 1, blen = reps * size;
        uint8_t *big = malloc(blen);
        FUZZ_CHECK(big, "out of memory");
        for (size_t r = 0; r < reps; r++)
            memcpy(big + r * size, data, size);
        fuzz_write_file(path, big, blen);
        skip = (h >> 24) & 1;
        fp_reference(big, blen, name, fmt, unl, skip, &ref);
        fp_read(path, as_stdin, fmt, labels, bits, skip, 1 + (h >> 25) % 4096, &ref, NULL);
        free(big);
    }
    wk_parser_destroy(&lab);
    wk_parser_destroy(&unl);
    return 0;
}
