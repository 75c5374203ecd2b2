/* check_parse: the pure line parsers (worker/wk_parse.c) and the layout of
 * shard blocks (worker/wk_layout.c), without files.
 *
 *   - numbers: every value token the parser accepts equals (float)strtod,
 *     double for double on the fast path (plain decimals) and the strtod
 *     path (exponents, hex, more than 19 digits); the tokens it refuses
 *     say why (missing, bad, not finite, out of float range);
 *   - LIBSVM lines: labels (0/1, -1/+1, strtod forms; class numbers), ids
 *     and values row by row, qid ignored, comments, CR, blank lines, ids in
 *     any order, hashing (ids < 2^bits, duplicates seen before hashing);
 *   - Criteo lines: the 40 fields, empty fields absent, integer buckets
 *     ("SP<v>" for v <= 2, floor(ln(v)^2) above) and the ids of
 *     wk_criteo_id, a CR before the newline;
 *   - every bad line gives its reason and 1-based column, word for word,
 *     and leaves the rows unchanged;
 *   - the format of a line (wk_parse_detect) and of a text (its first
 *     content line);
 *   - the block layout: for W = 1..5 workers and several file sets every
 *     byte of every plain file is in exactly one unit of one worker, gzip
 *     files are dealt whole (>= W of them) or read by all, and the unit
 *     order is a permutation that depends on the epoch. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_suites.h"
#include "wk_layout.h"
#include "wk_parse.h"
#include "zps_err.h"
#include "zps_rng.h"

static wk_parser_t *s_parser(wk_label_mode_t labels, uint32_t bits)
{
    wk_parser_t *wp = wk_parser_new(labels, bits);
    ck_assert_ptr_nonnull(wp);
    return wp;
}

/* Parses the NUL-terminated line s in format fmt into d. */
static int s_line(wk_parser_t *wp, zps_format_t fmt, wk_rows_t *d, const char *s)
{
    return wk_parse_line(wp, fmt, d, s, s + strlen(s));
}

/* ---- numbers ------------------------------------------------------------------ */

START_TEST(test_values)
{
    wk_parser_t *wp = s_parser(WK_LABEL_BINARY, 0);
    const char *fixed[] = {"0",      "1",        "-1",        "+2.5",      "0.1",
                           "3.",     ".5",       "-.25",      "1e5",       "2E-3",
                           "0x1p-2", "1e-40",    "-0",        "123456789012345678",
                           "9007199254740993", "1234567890123456789012", "0.30000000000000004",
                           "3.4028234e38", "1.17549435e-38", "00012.500"};
    char tok[64];
    uint64_t st = 99;
    for (int i = 0; i < 2000 + (int)(sizeof fixed / sizeof fixed[0]); i++) {
        if (i < (int)(sizeof fixed / sizeof fixed[0])) {
            snprintf(tok, sizeof tok, "%s", fixed[i]);
        } else {
            uint64_t x = zps_rng_next(&st);
            int kind = (int)(x % 4);
            if (kind == 0)
                snprintf(tok, sizeof tok, "%s%llu.%llu", x & 16 ? "-" : "",
                         (unsigned long long)(x >> 40), (unsigned long long)((x >> 8) % 100000));
            else if (kind == 1)
                snprintf(tok, sizeof tok, "%.17g", (double)(x >> 11) / 1048576.0);
            else if (kind == 2)
                snprintf(tok, sizeof tok, "%lluE%d", (unsigned long long)(x >> 50),
                         (int)(x % 61) - 30);
            else /* up to 19 digits: the fast path's limit, both sides of 2^53 */
                snprintf(tok, sizeof tok, "%llu", (unsigned long long)(x >> (x % 8)) % 10000000000000000000ULL);
        }
        double got = -12345, want = strtod(tok, NULL);
        int rc = wk_parse_value(wp, tok, tok + strlen(tok), &got);
        if (rc != 0 || got != want || (float)got != (float)want)
            ck_abort_msg("'%s': rc %d, %a, want %a (%s)", tok, rc, got, want, wk_parse_reason(wp));
    }
    wk_parser_destroy(&wp);
}
END_TEST

static const struct {
    const char *tok, *reason;
} s_bad_values[] = {
    {"", "missing value"},
    {"abc", "bad value 'abc'"},
    {"1.2.3", "bad value '1.2.3'"},
    {"1,5", "bad value '1,5'"},
    {"inf", "value 'inf' is not finite"},
    {"-nan", "value '-nan' is not finite"},
    {"1e39", "value '1e39' is out of float range"},
    {"-3.5e38", "value '-3.5e38' is out of float range"},
    {"1e400", "value '1e400' is not finite"},
};

START_TEST(test_bad_values)
{
    wk_parser_t *wp = s_parser(WK_LABEL_BINARY, 0);
    const char *t = s_bad_values[_i].tok;
    double v;
    ck_assert_int_eq(wk_parse_value(wp, t, t + strlen(t), &v), WK_PARSE_BAD);
    ck_assert_str_eq(wk_parse_reason(wp), s_bad_values[_i].reason);
    ck_assert_uint_eq(wk_parse_column(wp), 1);
    wk_parser_destroy(&wp);
}
END_TEST

/* ---- LIBSVM ------------------------------------------------------------------------ */

/* Row i of d is label y with features "id:value ..." (NULL: none). */
static void s_row_is(const wk_rows_t *d, size_t i, float y, size_t k, const uint64_t *ids,
                     const float *vals)
{
    ck_assert_uint_lt(i, d->n);
    ck_assert_msg(d->labels[i] == y, "row %zu label %g, want %g", i, (double)d->labels[i],
                  (double)y);
    ck_assert_uint_eq(d->offsets[i + 1] - d->offsets[i], k);
    for (size_t j = 0; j < k; j++) {
        ck_assert_uint_eq(d->ids[d->offsets[i] + j], ids[j]);
        ck_assert_msg(d->vals[d->offsets[i] + j] == vals[j], "row %zu value %zu: %a, want %a", i,
                      j, (double)d->vals[d->offsets[i] + j], (double)vals[j]);
    }
}

START_TEST(test_libsvm_rows)
{
    wk_parser_t *wp = s_parser(WK_LABEL_BINARY, 0);
    wk_rows_t d = {0};
    ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, ""), 0);
    ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, "  \t \r"), 0);
    ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, "# 1 2:3"), 0);
    ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, "   # comment"), 0);
    ck_assert_uint_eq(d.n, 0);
    ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, "1 3:0.5 10:2"), 1);
    ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, "-1\t7:1e2 2:-3 qid:4 # 9:9"), 1);
    ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, "+1 \r"), 1);
    ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, "0 0:1\r"), 1);
    ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, "1e0 18446744073709551614:0x10"), 1);
    ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, "-1.0 5:1#c"), 1);
    ck_assert_uint_eq(d.n, 6);
    s_row_is(&d, 0, 1, 2, (uint64_t[]){3, 10}, (float[]){0.5f, 2});
    s_row_is(&d, 1, 0, 2, (uint64_t[]){7, 2}, (float[]){100, -3});
    s_row_is(&d, 2, 1, 0, NULL, NULL);
    s_row_is(&d, 3, 0, 1, (uint64_t[]){0}, (float[]){1});
    s_row_is(&d, 4, 1, 1, (uint64_t[]){UINT64_MAX - 1}, (float[]){16});
    s_row_is(&d, 5, 0, 1, (uint64_t[]){5}, (float[]){1});
    ck_assert_uint_eq(d.offsets[0], 0);
    ck_assert_uint_eq(d.nnz, 7);
    wk_rows_free(&d);
    wk_parser_destroy(&wp);
}
END_TEST

START_TEST(test_class_labels)
{
    wk_parser_t *wp = s_parser(WK_LABEL_CLASS, 0);
    wk_rows_t d = {0};
    ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, "0 1:1"), 1);
    ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, "9 1:1"), 1);
    ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, "16777216 1:1"), 1);
    ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, "007"), 1);
    ck_assert(d.labels[0] == 0 && d.labels[1] == 9 && d.labels[2] == 16777216.0f &&
              d.labels[3] == 7);
    const char *bad[] = {"16777217 1:1", "-1 1:1", "1.0 1:1", "123456789 1:1", "x 1:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, bad[i]), WK_PARSE_BAD);
        char want[128];
        snprintf(want, sizeof want, "bad class label '%.*s' (want an integer 0..16777216)",
                 (int)(strchr(bad[i], ' ') - bad[i]), bad[i]);
        ck_assert_str_eq(wk_parse_reason(wp), want);
    }
    ck_assert_uint_eq(d.n, 4);
    wk_rows_free(&d);
    wk_parser_destroy(&wp);
}
END_TEST

START_TEST(test_hashed_ids)
{
    wk_parser_t *plain = s_parser(WK_LABEL_BINARY, 0), *h = s_parser(WK_LABEL_BINARY, 12);
    wk_rows_t a = {0}, b = {0};
    char line[4096];
    uint64_t st = 5;
    for (int i = 0; i < 300; i++) {
        int n = snprintf(line, sizeof line, "%d", i & 1);
        for (int j = 0; j < 20; j++)
            n += snprintf(line + n, sizeof line - (size_t)n, " %llu:1",
                          (unsigned long long)(zps_rng_next(&st) >> (i % 60)) | 1);
        int ra = s_line(plain, ZPS_FMT_LIBSVM, &a, line), rb = s_line(h, ZPS_FMT_LIBSVM, &b, line);
        ck_assert_int_eq(ra, rb); /* the duplicate check sees the original ids */
        if (rb == WK_PARSE_BAD)
            ck_assert_str_eq(wk_parse_reason(h), wk_parse_reason(plain));
    }
    ck_assert_uint_eq(a.nnz, b.nnz);
    ck_assert_uint_gt(b.n, 100);
    size_t differ = 0;
    for (size_t i = 0; i < b.nnz; i++) {
        ck_assert_uint_lt(b.ids[i], 1u << 12);
        differ += a.ids[i] != b.ids[i];
    }
    ck_assert_uint_gt(differ, b.nnz / 2);
    /* the same id hashes the same way in every row */
    wk_rows_t c = {0};
    ck_assert_int_eq(s_line(h, ZPS_FMT_LIBSVM, &c, "1 77:1 5:2"), 1);
    ck_assert_int_eq(s_line(h, ZPS_FMT_LIBSVM, &c, "0 5:1 77:3"), 1);
    ck_assert_uint_eq(c.ids[0], c.ids[3]);
    ck_assert_uint_eq(c.ids[1], c.ids[2]);
    wk_rows_free(&a);
    wk_rows_free(&b);
    wk_rows_free(&c);
    wk_parser_destroy(&plain);
    wk_parser_destroy(&h);
}
END_TEST

/* ---- Criteo ------------------------------------------------------------------------- */

/* A Criteo line: label, 13 integers, 26 categories; "" for an empty field. */
static void s_criteo_line(char *b, size_t n, const char *label, const char *const *ints,
                          const char *const *cats, const char *end)
{
    size_t k = (size_t)snprintf(b, n, "%s", label);
    for (int i = 0; i < 13; i++)
        k += (size_t)snprintf(b + k, n - k, "\t%s", ints[i]);
    for (int i = 0; i < 26; i++)
        k += (size_t)snprintf(b + k, n - k, "\t%s", cats[i]);
    snprintf(b + k, n - k, "%s", end);
}

START_TEST(test_criteo_rows)
{
    wk_parser_t *wp = s_parser(WK_LABEL_BINARY, 20);
    wk_rows_t d = {0};
    const char *ints[13] = {"100", "-3", "2", "3", "", "0", "+7", "", "", "", "", "", "1"};
    const char *cats[26] = {"68fd1e64", "", "abc"};
    for (int i = 3; i < 26; i++)
        cats[i] = "";
    char line[1024];
    s_criteo_line(line, sizeof line, "1", ints, cats, "\r");
    ck_assert_int_eq(s_line(wp, ZPS_FMT_CRITEO, &d, line), 1);
    /* buckets: 100 -> floor(ln(100)^2) = 21, -3 -> SP-3, 2 -> SP2,
     * 3 -> floor(1.2069) = 1, 0 -> SP0, +7 -> floor(3.786) = 3, 1 -> SP1 */
    uint64_t want[] = {wk_criteo_id(1, "21", 2, 20),  wk_criteo_id(2, "SP-3", 4, 20),
                       wk_criteo_id(3, "SP2", 3, 20), wk_criteo_id(4, "1", 1, 20),
                       wk_criteo_id(6, "SP0", 3, 20), wk_criteo_id(7, "3", 1, 20),
                       wk_criteo_id(13, "SP1", 3, 20), wk_criteo_id(14, "68fd1e64", 8, 20),
                       wk_criteo_id(16, "abc", 3, 20)};
    float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    s_row_is(&d, 0, 1, 9, want, ones);
    for (int i = 0; i < 9; i++)
        ck_assert_uint_lt(want[i], 1u << 20);
    /* the field is part of the id; equal strings in other fields differ */
    ck_assert_uint_ne(wk_criteo_id(14, "abc", 3, 0), wk_criteo_id(15, "abc", 3, 0));
    ck_assert_uint_ne(wk_criteo_id(14, "abc", 3, 0), UINT64_MAX);
    /* all fields empty: a row without features; a comment line is no row */
    const char *none[26] = {""};
    for (int i = 0; i < 26; i++)
        none[i] = "";
    s_criteo_line(line, sizeof line, "0", none, none, "");
    ck_assert_int_eq(s_line(wp, ZPS_FMT_CRITEO, &d, line), 1);
    s_row_is(&d, 1, 0, 0, NULL, NULL);
    ck_assert_int_eq(s_line(wp, ZPS_FMT_CRITEO, &d, "# 1\t2"), 0);
    ck_assert_int_eq(s_line(wp, ZPS_FMT_CRITEO, &d, " \r"), 0);
    ck_assert_uint_eq(d.n, 2);
    wk_rows_free(&d);
    wk_parser_destroy(&wp);
}
END_TEST

/* ---- bad lines ------------------------------------------------------------------------ */

static const struct {
    zps_format_t fmt;
    wk_label_mode_t labels;
    const char *line;
    size_t col;
    const char *reason;
} s_bad_lines[] = {
    {ZPS_FMT_LIBSVM, WK_LABEL_BINARY, "3:1 4:1", 1, "missing label (the line starts with a feature)"},
    {ZPS_FMT_LIBSVM, WK_LABEL_BINARY, "2 1:1", 1, "bad label '2' (binary labels are 0/1 or -1/+1)"},
    {ZPS_FMT_LIBSVM, WK_LABEL_BINARY, "  yes 1:1", 3, "bad label 'yes' (binary labels are 0/1 or -1/+1)"},
    {ZPS_FMT_LIBSVM, WK_LABEL_BINARY, "0.5 1:1", 1, "bad label '0.5' (binary labels are 0/1 or -1/+1)"},
    {ZPS_FMT_LIBSVM, WK_LABEL_BINARY, "1 abc:1", 3, "bad feature id 'abc:1'"},
    {ZPS_FMT_LIBSVM, WK_LABEL_BINARY, "1 -4:1", 3, "bad feature id '-4:1'"},
    {ZPS_FMT_LIBSVM, WK_LABEL_BINARY, "1 4x:1", 3, "bad feature id '4x:1'"},
    {ZPS_FMT_LIBSVM, WK_LABEL_BINARY, "1 2:1 5", 7, "expected id:value, got '5'"},
    {ZPS_FMT_LIBSVM, WK_LABEL_BINARY, "1 :3", 3, "missing feature id before ':'"},
    {ZPS_FMT_LIBSVM, WK_LABEL_BINARY, "1 3:", 5, "missing value"},
    {ZPS_FMT_LIBSVM, WK_LABEL_BINARY, "1 3:x", 5, "bad value 'x'"},
    {ZPS_FMT_LIBSVM, WK_LABEL_BINARY, "1 3:inf", 5, "value 'inf' is not finite"},
    {ZPS_FMT_LIBSVM, WK_LABEL_BINARY, "1 3:1e39", 5, "value '1e39' is out of float range"},
    {ZPS_FMT_LIBSVM, WK_LABEL_BINARY, "1 18446744073709551616:1", 3, "feature id overflows 64 bits"},
    {ZPS_FMT_LIBSVM, WK_LABEL_BINARY, "1 18446744073709551615:1", 3,
     "feature id 18446744073709551615 is reserved for the bias key"},
    {ZPS_FMT_LIBSVM, WK_LABEL_BINARY, "1 4:1 2:1 4:2", 11, "duplicate feature id 4"},
    {ZPS_FMT_LIBSVM, WK_LABEL_BINARY, "1 9:1 qid:3 2:1  9:2", 18, "duplicate feature id 9"},
    {ZPS_FMT_LIBSVM, WK_LABEL_CLASS, "1.5 1:1", 1, "bad class label '1.5' (want an integer 0..16777216)"},
    {ZPS_FMT_CRITEO, WK_LABEL_BINARY, "1\t2\t3", 6, "expected 40 tab-separated fields, got 3"},
    {ZPS_FMT_CRITEO, WK_LABEL_BINARY, "1", 2, "expected 40 tab-separated fields, got 1"},
};

START_TEST(test_bad_lines)
{
    wk_parser_t *wp = s_parser(s_bad_lines[_i].labels, (uint32_t)(_i % 2) * 16);
    wk_rows_t d = {0};
    ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, "1 1:1"), 1); /* a row before */
    ck_assert_int_eq(s_line(wp, s_bad_lines[_i].fmt, &d, s_bad_lines[_i].line), WK_PARSE_BAD);
    ck_assert_str_eq(wk_parse_reason(wp), s_bad_lines[_i].reason);
    ck_assert_uint_eq(wk_parse_column(wp), s_bad_lines[_i].col);
    ck_assert_uint_eq(d.n, 1); /* nothing appended */
    ck_assert_uint_eq(d.nnz, 1);
    ck_assert_uint_eq(d.offsets[1], 1);
    wk_rows_free(&d);
    wk_parser_destroy(&wp);
}
END_TEST

START_TEST(test_bad_criteo)
{
    wk_parser_t *wp = s_parser(WK_LABEL_BINARY, 0);
    wk_rows_t d = {0};
    const char *ints[13], *cats[26];
    for (int i = 0; i < 13; i++)
        ints[i] = "1";
    for (int i = 0; i < 26; i++)
        cats[i] = "c";
    char line[1024];
    s_criteo_line(line, sizeof line, "1", ints, cats, "\textra\tmore");
    ck_assert_int_eq(s_line(wp, ZPS_FMT_CRITEO, &d, line), WK_PARSE_BAD);
    ck_assert_str_eq(wk_parse_reason(wp), "expected 40 tab-separated fields, got 42");
    ck_assert_uint_eq(wk_parse_column(wp), strlen(line) - strlen("\textra\tmore") + 2);
    ints[4] = "12a";
    s_criteo_line(line, sizeof line, "1", ints, cats, "");
    ck_assert_int_eq(s_line(wp, ZPS_FMT_CRITEO, &d, line), WK_PARSE_BAD);
    ck_assert_str_eq(wk_parse_reason(wp), "bad integer '12a' in field I5");
    ck_assert_uint_eq(wk_parse_column(wp), 11); /* "1\t1\t1\t1\t1\t" is 10 bytes */
    ints[4] = "99999999999999999999";
    s_criteo_line(line, sizeof line, "1", ints, cats, "");
    ck_assert_int_eq(s_line(wp, ZPS_FMT_CRITEO, &d, line), WK_PARSE_BAD);
    ck_assert_str_eq(wk_parse_reason(wp), "bad integer '99999999999999999999' in field I5");
    ints[4] = "-";
    s_criteo_line(line, sizeof line, "1", ints, cats, "");
    ck_assert_int_eq(s_line(wp, ZPS_FMT_CRITEO, &d, line), WK_PARSE_BAD);
    ck_assert_str_eq(wk_parse_reason(wp), "bad integer '-' in field I5");
    ints[4] = "1";
    s_criteo_line(line, sizeof line, "", ints, cats, "");
    ck_assert_int_eq(s_line(wp, ZPS_FMT_CRITEO, &d, line), WK_PARSE_BAD);
    ck_assert_str_eq(wk_parse_reason(wp), "missing label");
    ck_assert_uint_eq(wk_parse_column(wp), 1);
    ck_assert_uint_eq(d.n, 0);
    wk_rows_free(&d);
    wk_parser_destroy(&wp);
}
END_TEST

/* ---- unlabeled rows (zps-predict) ---------------------------------- */
START_TEST(test_unlabeled)
{
    wk_parser_t *wp = s_parser(WK_LABEL_BINARY, 0);
    wk_rows_t d = {0};
    /* off (training): a line starting with a feature is bad */
    ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, "3:1 7:0.5"), WK_PARSE_BAD);
    ck_assert_str_eq(wk_parse_reason(wp), "missing label (the line starts with a feature)");
    wk_parser_set_unlabeled(wp, 1);
    ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, "3:1 7:0.5"), 1);
    ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, "1 3:1 7:0.5"), 1);
    ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, "17:1"), 1);
    ck_assert_uint_eq(d.n, 3);
    ck_assert(isnan(d.labels[0]));
    ck_assert(d.labels[1] == 1.0f);
    ck_assert(isnan(d.labels[2]));
    /* the unlabeled row has the labeled row's features */
    ck_assert_uint_eq(d.offsets[1], 2);
    ck_assert_uint_eq(d.offsets[2], 4);
    ck_assert(d.ids[0] == d.ids[2] && d.ids[1] == d.ids[3] && d.vals[1] == 0.5f);
    ck_assert_uint_eq(d.ids[4], 17);
    ck_assert_int_eq(s_line(wp, ZPS_FMT_LIBSVM, &d, "3:1 3:2"), WK_PARSE_BAD);
    ck_assert_str_eq(wk_parse_reason(wp), "duplicate feature id 3");
    ck_assert_uint_eq(wk_parse_column(wp), 5);
    /* criteo: 39 fields are a row without its label, with the same ids */
    const char *ints[13], *cats[26];
    for (int i = 0; i < 13; i++)
        ints[i] = "5";
    for (int i = 0; i < 26; i++)
        cats[i] = "ab";
    char line[1024];
    s_criteo_line(line, sizeof line, "0", ints, cats, "");
    ck_assert_int_eq(s_line(wp, ZPS_FMT_CRITEO, &d, line), 1);
    ck_assert_int_eq(s_line(wp, ZPS_FMT_CRITEO, &d, line + 2), 1); /* without "0\t" */
    ck_assert_uint_eq(d.n, 5);
    ck_assert(d.labels[3] == 0.0f);
    ck_assert(isnan(d.labels[4]));
    ck_assert_uint_eq(d.offsets[4] - d.offsets[3], 39);
    ck_assert_uint_eq(d.offsets[5] - d.offsets[4], 39);
    ck_assert_int_eq(memcmp(d.ids + d.offsets[3], d.ids + d.offsets[4], 39 * sizeof *d.ids), 0);
    ck_assert_int_eq(s_line(wp, ZPS_FMT_CRITEO, &d, line + 4), WK_PARSE_BAD); /* 38 fields */
    ck_assert_str_eq(wk_parse_reason(wp),
                     "expected 40 tab-separated fields (39 without the label), got 38");
    ck_assert_uint_eq(d.n, 5);
    wk_rows_free(&d);
    wk_parser_destroy(&wp);
}
END_TEST

START_TEST(test_detect)
{
    static const struct {
        const char *line;
        zps_format_t want;
    } c[] = {
        {"", ZPS_FMT_AUTO},
        {"  \t", ZPS_FMT_AUTO},
        {"# x\ty", ZPS_FMT_AUTO},
        {"1 2:3", ZPS_FMT_LIBSVM},
        {"1\t2:3 4:5", ZPS_FMT_LIBSVM},
        {"1\t2:3\t", ZPS_FMT_LIBSVM},
        {"1\t5\t\tab", ZPS_FMT_CRITEO},
        {"0\t\t\t", ZPS_FMT_CRITEO},
        {"1\t", ZPS_FMT_CRITEO},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        ck_assert_msg(wk_parse_detect(c[i].line, c[i].line + strlen(c[i].line)) == c[i].want,
                      "'%s': %d, want %d", c[i].line,
                      (int)wk_parse_detect(c[i].line, c[i].line + strlen(c[i].line)),
                      (int)c[i].want);
    /* a text's format is its first content line's; none: AUTO */
    const char *t1 = "\n# c\t1\n  \n1\t2\t3\n1 2:3\n", *t2 = "# only\n\n", *t3 = "0 1:1";
    ck_assert_int_eq(wk_parse_first_format(t1, strlen(t1)), ZPS_FMT_CRITEO);
    ck_assert_int_eq(wk_parse_first_format(t1, 10), ZPS_FMT_AUTO); /* bounded */
    ck_assert_int_eq(wk_parse_first_format(t2, strlen(t2)), ZPS_FMT_AUTO);
    ck_assert_int_eq(wk_parse_first_format(t3, strlen(t3)), ZPS_FMT_LIBSVM);
    ck_assert_int_eq(wk_parse_first_format(t3, 0), ZPS_FMT_AUTO);
    ck_assert_int_eq(wk_parse_first_format(NULL, 0), ZPS_FMT_AUTO);
    /* the offset of the first content line: a tab-only line before a Criteo
     * line is blank, not a Criteo row (a gzip stream skips it too) */
    size_t off = 99;
    const char *t4 = "\t\t\n V\tx\n";
    ck_assert_int_eq(wk_parse_first_content(t4, strlen(t4), &off), ZPS_FMT_CRITEO);
    ck_assert_uint_eq(off, 3);
    ck_assert_int_eq(wk_parse_first_content(t2, strlen(t2), &off), ZPS_FMT_AUTO);
    ck_assert_uint_eq(off, strlen(t2));
    ck_assert_int_eq(wk_parse_first_content(t3, strlen(t3), &off), ZPS_FMT_LIBSVM);
}
END_TEST

/* Lines are bounded by pointers: the byte after le is never read as part
 * of the line. */
START_TEST(test_bounded)
{
    wk_parser_t *wp = s_parser(WK_LABEL_BINARY, 0);
    wk_rows_t d = {0};
    const char *buf = "1 3:25 7:1";
    ck_assert_int_eq(wk_parse_line(wp, ZPS_FMT_LIBSVM, &d, buf, buf + 5), 1); /* "1 3:2" */
    s_row_is(&d, 0, 1, 1, (uint64_t[]){3}, (float[]){2});
    double v;
    ck_assert_int_eq(wk_parse_value(wp, buf + 4, buf + 5, &v), 0);
    ck_assert(v == 2.0);
    wk_rows_free(&d);
    wk_parser_destroy(&wp);
}
END_TEST

/* ---- layout ------------------------------------------------------------------------- */

START_TEST(test_layout_partition)
{
    static const uint64_t sets[][4] = {{1000, 0, 0, 0}, {70, 0, 9000, 123}, {64, 65, 1, 4096}};
    static const int gzs[][4] = {{0, 0, 0, 0}, {0, 1, 0, 0}, {1, 1, 0, 1}};
    for (size_t s = 0; s < 3; s++) {
        for (uint32_t W = 1; W <= 5; W++) {
            for (uint64_t B = 64; B <= 1024; B *= 4) {
                uint8_t seen[4][9000] = {{0}};
                unsigned gz_readers[4] = {0};
                for (uint32_t me = 0; me < W; me++) {
                    wk_layout_conf_t c = {W, me, 1, B, 7, 0};
                    wk_layout_t L;
                    ck_assert_int_eq(wk_layout_build(&L, &c, sets[s], gzs[s], 4), 0);
                    for (size_t u = 0; u < L.nunits; u++) {
                        const wk_unit_t *un = &L.units[u];
                        const wk_part_t *p = &L.parts[un->part];
                        ck_assert_uint_ge(u, p->unit0);
                        ck_assert_uint_lt(u, p->unit0 + p->nunits);
                        if (p->gz) {
                            gz_readers[p->file]++;
                            continue;
                        }
                        ck_assert_int_eq(p->split, WK_SPLIT_BLOCKS);
                        ck_assert_uint_eq((p->first_block + un->id) % W, me);
                        ck_assert_uint_eq(un->lo, un->id * B);
                        for (uint64_t x = un->lo; x < un->hi; x++)
                            seen[p->file][x]++;
                    }
                    /* the order is a permutation of the units */
                    uint8_t got[512] = {0};
                    ck_assert_uint_le(L.nunits, 512);
                    for (size_t u = 0; u < L.nunits; u++)
                        got[L.order[u]]++;
                    for (size_t u = 0; u < L.nunits; u++)
                        ck_assert_uint_eq(got[u], 1);
                    wk_layout_free(&L);
                }
                size_t ngz = 0;
                for (int f = 0; f < 4; f++)
                    ngz += gzs[s][f] != 0;
                for (int f = 0; f < 4; f++) {
                    if (gzs[s][f]) { /* whole by one worker, or by every worker */
                        ck_assert_uint_eq(gz_readers[f], ngz >= W ? 1 : W);
                        continue;
                    }
                    for (uint64_t x = 0; x < sets[s][f]; x++)
                        if (seen[f][x] != 1)
                            ck_abort_msg("set %zu W %u B %llu: file %d byte %llu read %u times",
                                         s, W, (unsigned long long)B, f, (unsigned long long)x,
                                         seen[f][x]);
                }
            }
        }
    }
}
END_TEST

START_TEST(test_layout_order)
{
    uint64_t sizes[1] = {64 * 100};
    int gz[1] = {0};
    wk_layout_conf_t c = {1, 0, 1, 64, 11, 0};
    wk_layout_t a, b, e;
    ck_assert_int_eq(wk_layout_build(&a, &c, sizes, gz, 1), 0);
    ck_assert_int_eq(wk_layout_build(&b, &c, sizes, gz, 1), 0);
    c.epoch = 1;
    ck_assert_int_eq(wk_layout_build(&e, &c, sizes, gz, 1), 0);
    ck_assert_uint_eq(a.nunits, 100);
    ck_assert_uint_eq(a.block_bytes, 64);
    size_t same = 0, ident = 0, moved = 0;
    for (size_t i = 0; i < 100; i++) {
        ck_assert_uint_eq(a.order[i], b.order[i]); /* a function of (seed, epoch) */
        same += a.order[i] == e.order[i];
        ident += a.order[i] == i;
        moved += a.units[i].id == i; /* units stay in file order; only order moves */
    }
    ck_assert_uint_lt(same, 20);
    ck_assert_uint_lt(ident, 20);
    ck_assert_uint_eq(moved, 100);
    /* sequential mode: file order, one unit per part, byte ranges of W */
    wk_layout_conf_t q = {3, 1, 0, 0, 11, 0};
    wk_layout_t s;
    uint64_t two[2] = {10, 7};
    int nogz[2] = {0, 1};
    ck_assert_int_eq(wk_layout_build(&s, &q, two, nogz, 2), 0);
    ck_assert_uint_eq(s.nparts, 2);
    ck_assert_int_eq(s.parts[0].split, WK_SPLIT_RANGE);
    ck_assert_int_eq(s.parts[1].split, WK_SPLIT_LINES);
    ck_assert_uint_eq(s.units[0].lo, 3);
    ck_assert_uint_eq(s.units[0].hi, 6);
    ck_assert_uint_eq(s.order[0], 0);
    ck_assert_uint_eq(s.order[1], 1);
    /* the automatic block: a power of two, 64 B .. 1 MiB, ~64 a worker */
    ck_assert_uint_eq(wk_layout_auto_block(0, 1), 64);
    ck_assert_uint_eq(wk_layout_auto_block(1ULL << 40, 2), 1u << 20);
    ck_assert_uint_eq(wk_layout_auto_block(64 * 4 * 4096, 4), 4096);
    ck_assert_uint_eq(wk_layout_auto_block(64 * 4 * 4096 - 1, 4), 2048);
    wk_layout_free(&a);
    wk_layout_free(&b);
    wk_layout_free(&e);
    wk_layout_free(&s);
}
END_TEST

Suite *suite_parse(void)
{
    Suite *s = suite_create("parse");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_values);
    tcase_add_loop_test(tc, test_bad_values, 0,
                        (int)(sizeof s_bad_values / sizeof s_bad_values[0]));
    tcase_add_test(tc, test_libsvm_rows);
    tcase_add_test(tc, test_class_labels);
    tcase_add_test(tc, test_hashed_ids);
    tcase_add_test(tc, test_criteo_rows);
    tcase_add_loop_test(tc, test_bad_lines, 0, (int)(sizeof s_bad_lines / sizeof s_bad_lines[0]));
    tcase_add_test(tc, test_bad_criteo);
    tcase_add_test(tc, test_detect);
    tcase_add_test(tc, test_unlabeled);
    tcase_add_test(tc, test_bounded);
    suite_add_tcase(s, tc);
    TCase *tl = tcase_create("layout");
    tcase_add_test(tl, test_layout_partition);
    tcase_add_test(tl, test_layout_order);
    suite_add_tcase(s, tl);
    return s;
}
