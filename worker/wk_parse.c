/* wk_parse: see wk_parse.h.
 *
 * DESIGN
 * Parsing is hand-written: ids are decimal with overflow checks, values take
 * a fast path for plain decimals ([+-]digits[.digits], at most 19 digits,
 * mantissa < 2^53: one exact integer divided by an exact power of ten, which
 * equals (float)strtod) and fall back to strtod (exponents, hex, ...), then
 * must be finite and within float range.  Duplicate ids are cheap to rule out
 * when a row's ids are strictly increasing (the usual libsvm layout);
 * otherwise a small generation-stamped hash set checks them.  With
 * hash_bits > 0 libsvm ids become zps_mix64(id, S_LIBSVM_SEED) masked to
 * hash_bits (the reserved-id and duplicate checks see the original ids).
 * A libsvm row's room is reserved before parsing (one feature per two bytes
 * of the line at most) and committed only when the whole line is good, so
 * a bad line leaves d unchanged.
 *
 * Criteo.  40 tab-separated fields: label, I1..I13, C1..C26.  Integer v is
 * bucketed as in the Criteo competition winners' converter ("3 idiots"):
 * v <= 2 -> "SP<v>" (so small values and negatives keep their own buckets),
 * else the decimal of floor(ln(v)^2).  The feature id of field f (1..39) with
 * string s is wk_criteo_id(f, s): FNV-1a 64 of the bytes mixed with the field
 * through zps_mix64, masked to hash_bits when > 0; UINT64_MAX (the bias key)
 * becomes UINT64_MAX - 1.  Every present feature has value 1.
 *
 * Labels.  Binary: 0/1, or any number strtod reads as 1, 0 or -1 (-1 is 0);
 * classes: an unsigned decimal integer 0..2^24.  With unlabeled rows allowed
 * (wk_parser_set_unlabeled) a libsvm line whose first token has a ':' and a
 * Criteo line of 39 fields are rows with the label NAN. */
#include "wk_parse.h"

/* The digit loops below are most of a worker's parse time; where they fall
 * across a 32-byte boundary they ran 15-25% slower (measured: 300K rows of
 * 40 features, 0.15 s against 0.12 s), which depended only on what code
 * came before them.  Aligning loops makes the speed independent of that. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("align-loops=32")
#endif

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zps_err.h"
#include "zps_hash.h"

#define S_LIBSVM_SEED 0x2545f4914f6cdd1dULL
#define S_CRITEO_SEED 0x94d049bb133111ebULL
#define S_FIELD_SEED  0xd6e8feb86659fd93ULL
#define S_BAD WK_PARSE_BAD

struct wk_parser {
    wk_label_mode_t labels;
    uint32_t hash_bits;
    int unlabeled;         /* lines without a label are rows labelled NAN */
    char *tok;             /* strtod scratch */
    size_t tok_cap;
    uint64_t *hs_keys;     /* duplicate check set */
    uint32_t *hs_gen;
    size_t hs_cap;
    uint32_t hs_stamp;
    size_t bad_col;
    char bad_reason[256];
};

/* Records a bad-line reason at byte column col; returns S_BAD. */
static int s_bad(wk_parser_t *wp, size_t col, const char *fmt, ...)
{
    va_list ap;
    wp->bad_col = col;
    va_start(ap, fmt);
    vsnprintf(wp->bad_reason, sizeof wp->bad_reason, fmt, ap);
    va_end(ap);
    return S_BAD;
}

static int s_is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* End of a libsvm token: whitespace, comment or end of line. */
static int s_is_delim(const char *p, const char *e)
{
    return p == e || *p == ' ' || *p == '\t' || *p == '\r' || *p == '#';
}

uint64_t wk_fnv1a(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t s_mask(uint32_t bits)
{
    return bits == 0 || bits >= 64 ? UINT64_MAX : (1ULL << bits) - 1;
}

/* Decimal of v into b (>= 21 bytes); returns the length. */
static size_t s_fmt_i64(char *b, int64_t v)
{
    char t[24];
    size_t n = 0, len = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        t[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        b[len++] = '-';
    while (n)
        b[len++] = t[--n];
    return len;
}

uint64_t wk_criteo_id(uint32_t field, const char *value, size_t len, uint32_t hash_bits)
{
    uint64_t h = wk_fnv1a(value, len);
    h = zps_mix64(h ^ zps_mix64(field, S_FIELD_SEED), S_CRITEO_SEED);
    h &= s_mask(hash_bits);
    return h == UINT64_MAX ? UINT64_MAX - 1 : h;
}

/* ---- numbers --------------------------------------------------------------- */

static const double s_pow10[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
    1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
};

/* Fast path for [+-]digits[.digits]: returns the end, or NULL if the token
 * needs strtod (no digits, > 19 digits, mantissa >= 2^53). */
static inline const char *s_fast_float(const char *p, const char *e, double *out)
{
    int neg = 0;
    if (p < e && (*p == '-' || *p == '+')) {
        neg = *p == '-';
        p++;
    }
    uint64_t m = 0;
    const char *d0 = p;
    unsigned d;
    while (p < e && (d = (unsigned)(unsigned char)*p - '0') < 10) {
        m = m * 10 + d;
        p++;
    }
    size_t nd = (size_t)(p - d0), frac = 0;
    if (p < e && *p == '.') {
        const char *f0 = ++p;
        while (p < e && (d = (unsigned)(unsigned char)*p - '0') < 10) {
            m = m * 10 + d;
            p++;
        }
        frac = (size_t)(p - f0);
        nd += frac;
    }
    if (nd == 0 || nd > 19 || m > (1ULL << 53))
        return NULL;
    double v = (double)m;
    if (frac)
        v /= s_pow10[frac];
    *out = neg ? -v : v;
    return p;
}

/* Any float token [t, te): fast path, else strtod on a NUL-terminated copy.
 * Returns 0, S_BAD (reason set with column col) or ZPS_ENOMEM. */
static int s_float_tok(wk_parser_t *wp, const char *t, const char *te, size_t col,
                       const char *what, double *out)
{
    const char *q = s_fast_float(t, te, out);
    if (q == te)
        return 0;
    size_t len = (size_t)(te - t);
    if (len == 0)
        return s_bad(wp, col, "missing %s", what);
    if (wk_grow((void **)&wp->tok, &wp->tok_cap, len + 1, 1) < 0)
        return ZPS_ENOMEM;
    memcpy(wp->tok, t, len);
    wp->tok[len] = '\0';
    char *end;
    double v = strtod(wp->tok, &end);
    int shown = len > 40 ? 40 : (int)len;
    if (end != wp->tok + len)
        return s_bad(wp, col, "bad %s '%.*s'", what, shown, t);
    if (!isfinite(v))
        return s_bad(wp, col, "%s '%.*s' is not finite", what, shown, t);
    if (fabs(v) > FLT_MAX)
        return s_bad(wp, col, "%s '%.*s' is out of float range", what, shown, t);
    *out = v;
    return 0;
}

/* Label token [t, te) at column col. */
static int s_label(wk_parser_t *wp, const char *t, const char *te, size_t col, float *out)
{
    size_t len = (size_t)(te - t);
    int shown = len > 40 ? 40 : (int)len;
    if (len == 0)
        return s_bad(wp, col, "missing label");
    if (wp->labels == WK_LABEL_CLASS) {
        uint32_t v = 0;
        int ok = len <= 8;
        for (size_t i = 0; ok && i < len; i++) {
            unsigned d = (unsigned)(unsigned char)t[i] - '0';
            ok = d < 10;
            v = v * 10 + d;
        }
        if (!ok || v > (1u << 24))
            return s_bad(wp, col, "bad class label '%.*s' (want an integer 0..%u)", shown, t,
                         1u << 24);
        *out = (float)v;
        return 0;
    }
    if (len == 1 && (t[0] == '0' || t[0] == '1')) {
        *out = (float)(t[0] - '0');
        return 0;
    }
    double v = 0;
    const char *q = s_fast_float(t, te, &v);
    if (q != te) {
        /* strtod accepts forms like 1e0 */
        char buf[64];
        if (len >= sizeof buf)
            return s_bad(wp, col, "bad label '%.*s' (binary labels are 0/1 or -1/+1)", shown, t);
        memcpy(buf, t, len);
        buf[len] = '\0';
        char *end;
        v = strtod(buf, &end);
        if (end != buf + len)
            return s_bad(wp, col, "bad label '%.*s' (binary labels are 0/1 or -1/+1)", shown, t);
    }
    if (v == 1.0)
        *out = 1.0f;
    else if (v == 0.0 || v == -1.0)
        *out = 0.0f;
    else
        return s_bad(wp, col, "bad label '%.*s' (binary labels are 0/1 or -1/+1)", shown, t);
    return 0;
}

/* ---- duplicate ids ------------------------------------------------------- */

/* 1 and *at = index of the first repeated id in ids[0..k), else 0. */
static int s_find_dup(wk_parser_t *wp, const uint64_t *ids, size_t k, size_t *at)
{
    *at = 0;
    size_t cap = 64;
    while (cap < 2 * k)
        cap *= 2;
    if (cap > wp->hs_cap) {
        uint64_t *keys = malloc(cap * sizeof *keys);
        uint32_t *gen = calloc(cap, sizeof *gen);
        if (!keys || !gen) {
            free(keys);
            free(gen);
            *at = SIZE_MAX; /* out of memory: report no duplicate */
            return 0;
        }
        free(wp->hs_keys);
        free(wp->hs_gen);
        wp->hs_keys = keys;
        wp->hs_gen = gen;
        wp->hs_cap = cap;
        wp->hs_stamp = 0;
    }
    if (++wp->hs_stamp == 0) {
        memset(wp->hs_gen, 0, wp->hs_cap * sizeof *wp->hs_gen);
        wp->hs_stamp = 1;
    }
    size_t mask = cap - 1;
    for (size_t j = 0; j < k; j++) {
        size_t h = (size_t)zps_mix64(ids[j], 0) & mask;
        while (wp->hs_gen[h] == wp->hs_stamp) {
            if (wp->hs_keys[h] == ids[j]) {
                *at = j;
                return 1;
            }
            h = (h + 1) & mask;
        }
        wp->hs_gen[h] = wp->hs_stamp;
        wp->hs_keys[h] = ids[j];
    }
    return 0;
}

/* Column of the j-th feature token (qid tokens skipped) of a libsvm line
 * whose label ends at p. */
static size_t s_feature_col(const char *ls, const char *p, const char *le, size_t j)
{
    for (;;) {
        while (p < le && s_is_ws(*p))
            p++;
        if (p == le || *p == '#')
            return (size_t)(p - ls) + 1;
        int qid = le - p >= 4 && memcmp(p, "qid:", 4) == 0;
        if (!qid && j-- == 0)
            return (size_t)(p - ls) + 1;
        while (!s_is_delim(p, le))
            p++;
    }
}

/* ---- line parsers -------------------------------------------------------- */

/* LIBSVM line [ls, le) (no newline; a trailing CR is whitespace).  Returns 1
 * (row appended to d), 0 (blank or comment), S_BAD or a ZPS_E* code. */
static int s_parse_libsvm(wk_parser_t *wp, wk_rows_t *d, const char *ls, const char *le)
{
    const char *p = ls;
    while (p < le && s_is_ws(*p))
        p++;
    if (p == le || *p == '#')
        return 0;
    if (wk_rows_reserve(d, 1, (size_t)(le - p) / 2 + 1) < 0)
        return ZPS_ENOMEM;

    const char *t = p;
    while (!s_is_delim(p, le))
        p++;
    float label;
    int rc;
    if (memchr(t, ':', (size_t)(p - t))) {
        if (!wp->unlabeled)
            return s_bad(wp, (size_t)(t - ls) + 1,
                         "missing label (the line starts with a feature)");
        label = NAN; /* an unlabeled row: its first token is a feature */
        p = t;
    } else {
        rc = s_label(wp, t, p, (size_t)(t - ls) + 1, &label);
        if (rc < 0)
            return rc;
    }
    const char *label_end = p;

    uint64_t *ids = d->ids + d->nnz;
    float *vals = d->vals + d->nnz;
    size_t k = 0;
    int increasing = 1;
    uint64_t prev = 0;
    for (;;) {
        while (p < le && s_is_ws(*p))
            p++;
        if (p == le || *p == '#')
            break;
        t = p;
        uint64_t id = 0;
        unsigned dg;
        /* 19 digits cannot overflow; check from the 20th on */
        const char *dl = le - p > 19 ? p + 19 : le;
        while (p < dl && (dg = (unsigned)(unsigned char)*p - '0') < 10) {
            id = id * 10 + dg;
            p++;
        }
        while (p < le && (dg = (unsigned)(unsigned char)*p - '0') < 10) {
            if (__builtin_mul_overflow(id, 10u, &id) || __builtin_add_overflow(id, dg, &id))
                return s_bad(wp, (size_t)(t - ls) + 1, "feature id overflows 64 bits");
            p++;
        }
        if (p == le || *p != ':') {
            const char *te = p;
            while (!s_is_delim(te, le))
                te++;
            int shown = te - t > 40 ? 40 : (int)(te - t);
            if (p == t && te - t >= 4 && memcmp(t, "qid:", 4) == 0) {
                p = te; /* svmlight query id: ignored */
                continue;
            }
            if (p == t || !s_is_delim(p, le))
                return s_bad(wp, (size_t)(t - ls) + 1, "bad feature id '%.*s'", shown, t);
            return s_bad(wp, (size_t)(t - ls) + 1, "expected id:value, got '%.*s'", shown, t);
        }
        if (p == t)
            return s_bad(wp, (size_t)(t - ls) + 1, "missing feature id before ':'");
        if (id == UINT64_MAX)
            return s_bad(wp, (size_t)(t - ls) + 1,
                         "feature id %llu is reserved for the bias key",
                         (unsigned long long)id);
        const char *vt = ++p;
        double v = 0;
        const char *q = s_fast_float(vt, le, &v);
        if (q && s_is_delim(q, le)) {
            p = q;
        } else {
            while (!s_is_delim(p, le))
                p++;
            rc = s_float_tok(wp, vt, p, (size_t)(vt - ls) + 1, "value", &v);
            if (rc < 0)
                return rc;
        }
        if (k && id <= prev)
            increasing = 0;
        prev = id;
        ids[k] = id;
        vals[k] = (float)v;
        k++;
    }
    if (!increasing) {
        size_t at;
        if (s_find_dup(wp, ids, k, &at))
            return s_bad(wp, s_feature_col(ls, label_end, le, at), "duplicate feature id %llu",
                         (unsigned long long)ids[at]);
        if (at == SIZE_MAX)
            return ZPS_ENOMEM;
    }
    if (wp->hash_bits) {
        uint64_t mask = s_mask(wp->hash_bits);
        for (size_t i = 0; i < k; i++) {
            uint64_t h = zps_mix64(ids[i], S_LIBSVM_SEED) & mask;
            ids[i] = h == UINT64_MAX ? UINT64_MAX - 1 : h;
        }
    }
    d->labels[d->n] = label;
    d->nnz += k;
    d->offsets[++d->n] = d->nnz;
    return 1;
}

/* Criteo integer feature v -> bucket string in b; returns its length. */
static size_t s_criteo_bucket(int64_t v, char *b)
{
    if (v <= 2) {
        b[0] = 'S';
        b[1] = 'P';
        return 2 + s_fmt_i64(b + 2, v);
    }
    double l = log((double)v);
    return s_fmt_i64(b, (int64_t)floor(l * l));
}

/* Criteo TSV line; same results as s_parse_libsvm. */
static int s_parse_criteo(wk_parser_t *wp, wk_rows_t *d, const char *ls, const char *le)
{
    const char *p = ls;
    while (p < le && (*p == ' ' || *p == '\r'))
        p++;
    if (p == le || *p == '#')
        return 0;
    if (wk_rows_reserve(d, 1, 39) < 0)
        return ZPS_ENOMEM;
    uint64_t *ids = d->ids + d->nnz;
    float *vals = d->vals + d->nnz;
    size_t k = 0;
    float label = 0;
    const char *f = ls;
    /* unlabeled rows allowed: 39 fields are I1..C26 without the label */
    uint32_t first = 0;
    const char *want = "expected 40 tab-separated fields";
    if (wp->unlabeled) {
        uint32_t tabs = 0;
        for (const char *x = ls; x < le; x++)
            tabs += *x == '\t';
        want = "expected 40 tab-separated fields (39 without the label)";
        if (tabs == 38) {
            first = 1;
            label = NAN;
        } else if (tabs != 39) { /* which of the two was meant is unknown: say so first */
            return s_bad(wp, (size_t)(le - ls) + 1, "%s, got %u", want, tabs + 1);
        }
    }
    for (uint32_t field = first; field < 40; field++) {
        const char *fe = memchr(f, '\t', (size_t)(le - f));
        if (!fe)
            fe = le;
        size_t col = (size_t)(f - ls) + 1;
        if (field < 39 && fe == le)
            return s_bad(wp, (size_t)(le - ls) + 1, "%s, got %u", want, field - first + 1);
        if (field == 39 && fe != le) {
            uint32_t n = 40 - first;
            for (const char *x = fe; x < le; x++)
                n += *x == '\t';
            return s_bad(wp, (size_t)(fe - ls) + 2, "%s, got %u", want, n);
        }
        if (field == 0) {
            int rc = s_label(wp, f, fe, col, &label);
            if (rc < 0)
                return rc;
        } else if (f == fe) {
            /* empty: feature absent */
        } else if (field <= 13) {
            const char *x = f;
            int neg = 0;
            if (*x == '-' || *x == '+')
                neg = *x++ == '-';
            uint64_t u = 0;
            int ok = x < fe;
            for (; x < fe && ok; x++) {
                unsigned dg = (unsigned)(unsigned char)*x - '0';
                ok = dg < 10 && u <= (uint64_t)INT64_MAX / 10;
                u = u * 10 + dg;
            }
            if (!ok || u > (uint64_t)INT64_MAX) {
                int shown = fe - f > 40 ? 40 : (int)(fe - f);
                return s_bad(wp, col, "bad integer '%.*s' in field I%u", shown, f, field);
            }
            char b[32];
            size_t bl = s_criteo_bucket(neg ? -(int64_t)u : (int64_t)u, b);
            ids[k] = wk_criteo_id(field, b, bl, wp->hash_bits);
            vals[k++] = 1.0f;
        } else {
            ids[k] = wk_criteo_id(field, f, (size_t)(fe - f), wp->hash_bits);
            vals[k++] = 1.0f;
        }
        f = fe + 1;
    }
    d->labels[d->n] = label;
    d->nnz += k;
    d->offsets[++d->n] = d->nnz;
    return 1;
}

/* Format of a content line, AUTO for blank and comment lines. */
zps_format_t wk_parse_detect(const char *ls, const char *le)
{
    const char *p = ls;
    while (p < le && s_is_ws(*p))
        p++;
    if (p == le || *p == '#')
        return ZPS_FMT_AUTO;
    const char *tab = memchr(ls, '\t', (size_t)(le - ls));
    if (!tab)
        return ZPS_FMT_LIBSVM;
    const char *f = tab + 1, *fe = memchr(f, '\t', (size_t)(le - f));
    if (!fe)
        fe = le;
    return memchr(f, ':', (size_t)(fe - f)) ? ZPS_FMT_LIBSVM : ZPS_FMT_CRITEO;
}


zps_format_t wk_parse_first_content(const char *text, size_t len, size_t *off)
{
    zps_format_t f = ZPS_FMT_AUTO;
    *off = len;
    if (len == 0) /* text may be NULL */
        return f;
    const char *p = text, *e = text + len;
    while (f == ZPS_FMT_AUTO && p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        const char *le = nl ? nl : e;
        f = wk_parse_detect(p, le);
        if (f != ZPS_FMT_AUTO)
            *off = (size_t)(p - text);
        p = le + 1;
    }
    return f;
}

zps_format_t wk_parse_first_format(const char *text, size_t len)
{
    size_t off;
    return wk_parse_first_content(text, len, &off);
}

/* ---- public ------------------------------------------------------------------ */

wk_parser_t *wk_parser_new(wk_label_mode_t labels, uint32_t hash_bits)
{
    wk_parser_t *wp = calloc(1, sizeof *wp);
    if (!wp)
        return NULL;
    wp->labels = labels;
    wp->hash_bits = hash_bits;
    return wp;
}

void wk_parser_set_unlabeled(wk_parser_t *wp, int on)
{
    wp->unlabeled = on != 0;
}

void wk_parser_destroy(wk_parser_t **wpp)
{
    if (!wpp || !*wpp)
        return;
    wk_parser_t *wp = *wpp;
    free(wp->tok);
    free(wp->hs_keys);
    free(wp->hs_gen);
    free(wp);
    *wpp = NULL;
}

int wk_parse_line(wk_parser_t *wp, zps_format_t fmt, wk_rows_t *d, const char *ls,
                  const char *le)
{
    if (fmt == ZPS_FMT_CRITEO) {
        if (le > ls && le[-1] == '\r')
            le--;
        return s_parse_criteo(wp, d, ls, le);
    }
    return s_parse_libsvm(wp, d, ls, le);
}

int wk_parse_value(wk_parser_t *wp, const char *t, const char *te, double *out)
{
    return s_float_tok(wp, t, te, 1, "value", out);
}

const char *wk_parse_reason(const wk_parser_t *wp)
{
    return wp->bad_reason;
}

size_t wk_parse_column(const wk_parser_t *wp)
{
    return wp->bad_col;
}
