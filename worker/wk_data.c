/* wk_data: see wk_data.h for the contract.
 *
 * DESIGN
 * Inputs.  wk_reader_new expands every path (a file, a directory's regular
 * files without hidden and cache files, or a glob(3) pattern) and sorts the
 * whole list by name, so every worker sees the same list.
 *
 * Layout.  At the start of every epoch (s_layout) the files are stat'ed and
 * checked for the gzip magic, and the reader's "parts" (one per file it
 * reads: path, split kind, shard r of W, block layout) and "units" (what is
 * opened and read to its end in one go: a byte range of a plain file, or a
 * whole gzip part) are built; every worker computes the same layout.
 *   Block mode (shuffle_buffer > 0): B = block_bytes, or the largest power
 *   of two <= S_SHARD_BLOCK_MAX with about S_SHARD_BLOCKS_PER_WORKER blocks a
 *   worker over the plain bytes (>= S_SHARD_BLOCK_MIN).  Plain file f of
 *   size s has ceil(s/B) blocks with global numbers g_f, g_f + 1, ... (g_f:
 *   the blocks of the files before it); block k of f (bytes [kB, (k+1)B),
 *   the lines starting there) is a unit of worker (g_f + k) mod W, with unit
 *   id k.  With ngz >= W gzip files each takes one global number and is a
 *   whole unit ("0of1"); with fewer every worker reads each as one unit
 *   keeping lines l % W == r.  The units are read in a Fisher-Yates order
 *   seeded by (seed, epoch) (seed includes the rank, see wk_train).
 *   Sequential mode (shuffle_buffer == 0): one unit per part, in file order:
 *   with nfiles >= W file i is read whole (as shard 0 of 1) by worker i % W;
 *   otherwise every file is read by every worker as shard r of W (the byte
 *   range [s*r/W, s*(r+1)/W) of a plain file, every W-th line of a gzip
 *   file).
 * Only one file is mapped at a time (text or cache, kept while consecutive
 * units use it); with blocks in random order each block is madvise'd
 * WILLNEED when opened.
 *
 * Text.  A plain file is mmap'ed whole and parsed in place (bounded by
 * pointers, never NUL-terminated); a gzip file (magic 1f 8b) is read with
 * gzread into a growing line buffer.  A gzip stream that ends before its
 * trailer is reported as "file: gzip data ends early" (zlib's Z_BUF_ERROR at
 * end of input); other zlib errors are reported with zlib's message.  A byte
 * range starts at the first line that begins inside it; lines are counted
 * relative to that start and the absolute line number of a bad line is
 * computed only on error (by counting the newlines before the range).
 *
 * Parsing is hand-written: ids are decimal with overflow checks, values take
 * a fast path for plain decimals ([+-]digits[.digits], at most 19 digits,
 * mantissa < 2^53: one exact integer divided by an exact power of ten, which
 * equals (float)strtod) and fall back to strtod (exponents, hex, ...), then
 * must be finite and within float range.  Duplicate ids are cheap to rule out
 * when a row's ids are strictly increasing (the usual libsvm layout);
 * otherwise a small generation-stamped hash set checks them.  With
 * hash_bits > 0 libsvm ids become zps_mix64(id, S_LIBSVM_SEED) masked to
 * hash_bits (the reserved-id and duplicate checks see the original ids).
 *
 * Criteo.  40 tab-separated fields: label, I1..I13, C1..C26.  Integer v is
 * bucketed as in the Criteo competition winners' converter ("3 idiots"):
 * v <= 2 -> "SP<v>" (so small values and negatives keep their own buckets),
 * else the decimal of floor(ln(v)^2).  The feature id of field f (1..39) with
 * string s is wk_criteo_id(f, s): FNV-1a 64 of the bytes mixed with the field
 * through zps_mix64, masked to hash_bits when > 0; UINT64_MAX (the bias key)
 * becomes UINT64_MAX - 1.  Every present feature has value 1.
 *
 * Cache.  Name: <basename>.zpscache.<shard>of<nshards>[b<B>].<format>-
 * <labels>-h<bits> (b<B> for block parts) next to the input, or in
 * cache_dir with ".p<hash of the input's real path>" appended (so equal
 * basenames in different directories do not collide).  One cache per part.
 * Layout (host byte order): a 128-byte header (cache_hdr_t: magic, version,
 * source size and mtime in ns, format, label mode, hash bits, split kind,
 * shard, nshards, rows, nnz, skipped bad lines, block count, shard block
 * size and first global block), then cache blocks of up to S_BLOCK_ROWS
 * rows: {rows, nnz, unit id, skipped lines} ids[nnz] vals[nnz]
 * labels[rows] lens[rows] padded to 8 bytes.  The rows of one unit are one
 * or more consecutive cache blocks (a unit's last block is written when it
 * ends, also when empty, and carries its skipped-line count), in the order
 * the units were read; a reader validates the whole structure (sizes add up
 * to the file size and the header's totals, every unit of the part present
 * exactly once) at the epoch's start and keeps each unit's offsets, so a
 * cached epoch reads the units in the same permuted order as the text, and
 * returns the same rows in the same order for a given (seed, epoch) whether
 * or not the cache existed (a restarted worker skips acknowledged rows by
 * count).  The cache is written to a mkstemp name (one temporary open at a
 * time, reopened when units of another file come; header pwritten last)
 * and renamed as soon as all units of its part were read without error (so
 * a file's cache survives an error in a later file); an abandoned part
 * (error, rewind, destroy) unlinks the temporary; a part whose input
 * changed since the epoch started is not cached.  A whole-file part is
 * named "0of1" whatever W is: its rows are the same for a single worker
 * and for the worker that gets it in a run with nfiles >= W (or ngz >= W),
 * so that cache is shared; a byte-range, line-modulo or block part of
 * shard r of W is only ever used by that layout.  A stale cache (input size
 * or mtime changed) is ignored and replaced at the end of the epoch's read
 * of that part.  Rows of skipped bad lines are not in the cache; their
 * count is stored, so later epochs report the same wk_reader_bad_lines, and
 * a cache with skipped lines is not used by a reader that does not skip
 * them.  If the cache cannot be created or written (directory missing or
 * not writable, disk full) the reader silently continues without it:
 * caching is an optimisation, and wk_reader_from_cache tells the caller
 * whether it helped.  wk_reader_from_cache is 1 when every part of the
 * epoch was found with a valid cache when the epoch started (and opened
 * from it).
 *
 * Shuffling.  With shuffle_buffer > 0 rows are read (units in their
 * permuted order) into a window of that many rows, whose order is a
 * Fisher-Yates permutation from a splitmix64 stream seeded by (seed, epoch);
 * batches are cut from the permuted window, and the next window is read
 * when it is used up.  The window's content does not depend on the batch
 * sizes asked for.
 *
 * Counters.  wk_reader_rows and wk_reader_bad_lines count the current epoch.
 * wk_reader_progress is (bytes, or a unit's cached rows as its bytes,
 * consumed) / (bytes of the shard), times rows returned / rows read (the shuffle window reads ahead),
 * updated per batch and never decreasing within an epoch.
 * With skip_bad_lines, wk_reader_error returns the first skipped line's
 * "file:line:column: reason" (kept across epochs) while no error is pending.
 * After an error wk_reader_next keeps returning it until wk_reader_rewind. */
#include "wk_data.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "zps_err.h"
#include "zps_hash.h"
#include "zps_rng.h"
#include "wk_idx.h"

#define S_LIBSVM_SEED 0x2545f4914f6cdd1dULL
#define S_CRITEO_SEED 0x94d049bb133111ebULL
#define S_FIELD_SEED  0xd6e8feb86659fd93ULL
#define S_SHUFFLE_SEED 0xa0761d6478bd642fULL
#define S_ORDER_SEED 0xe7037ed1a0b428dbULL
#define S_CACHE_MAGIC "ZPSCACHE"
#define S_CACHE_VERSION 2u
#define S_CACHE_ENDIAN 0x01020304u
#define S_BLOCK_ROWS 65536u
#define S_BLOCK_NNZ (1u << 21)
#define S_BLK_HDR 32u            /* cache block header: rows, nnz, unit id, bad lines */
#define S_SHARD_BLOCK_MAX (1u << 20) /* automatic shard block size: at most 1 MiB, */
#define S_SHARD_BLOCK_MIN 64u        /*   at least 64 bytes, about S_SHARD_BLOCKS_PER_WORKER a worker */
#define S_SHARD_BLOCKS_PER_WORKER 64u
#define S_GZ_READ (1u << 20)
#define S_MSGLEN 512
#define S_BAD (-1) /* parser result: bad line, reason in r->bad_reason */

enum { SRC_NONE = 0, SRC_MAP, SRC_GZ, SRC_CACHE };
enum { SPLIT_WHOLE = 0, SPLIT_RANGE = 1, SPLIT_LINES = 2, SPLIT_BLOCKS = 3 };

typedef struct {
    size_t n, nnz;
    size_t cap_rows, cap_nnz;
    float *labels;
    size_t *offsets; /* cap_rows + 1 */
    uint64_t *ids;
    float *vals;
} csr_t;

typedef struct {
    char magic[8];
    uint32_t version, endian;
    uint64_t src_size;
    int64_t src_mtime_ns;
    uint32_t format, labels, hash_bits, split;
    uint32_t shard, nshards, hdr_bytes, pad;
    uint64_t rows, nnz, bad_lines, nblocks;
    uint64_t block_bytes, first_block; /* SPLIT_BLOCKS layout, else 0 */
    uint8_t reserved[16];
} cache_hdr_t;
_Static_assert(sizeof(cache_hdr_t) == 128, "cache header is 128 bytes");

typedef struct {
    uint32_t part;           /* index into wk_reader.parts */
    uint64_t id;             /* unit id in the part's cache: block index in the file, or 0 */
    uint64_t lo, hi;         /* plain file: the lines that start in [lo, hi) */
    uint64_t weight;         /* progress weight: bytes + 1 */
    uint64_t c_off, c_end;   /* its cache blocks in the part's valid cache */
    uint64_t c_rows, c_bad;
} unit_t;

typedef struct {
    const char *path;        /* into wk_reader.files */
    uint32_t split;          /* SPLIT_* */
    uint32_t shard, nshards; /* 0 of 1: the whole file; LINES: line % nshards == shard */
    uint64_t block_bytes;    /* SPLIT_BLOCKS: block size and the file's first global */
    uint64_t first_block;    /*   block index (both checked in the cache header) */
    int gz;
    struct stat st;          /* the input when the epoch started */
    size_t unit0, nunits;    /* its units: wk_reader.units[unit0 .. unit0 + nunits) */
    size_t units_done;       /* units read to their end this epoch */
    int cache_ok;            /* a valid cache existed when the epoch started */
    struct stat cst;         /* ... this file */
    /* the cache written this epoch: tmp != NULL while writing */
    char *tmp;
    int cw_failed;
    uint64_t cw_off, cw_rows, cw_nnz, cw_nblocks, cw_bad, cw_units;
} part_t;

typedef struct {
    int kind;
    part_t *part;
    unit_t *unit;
    zps_format_t fmt;      /* AUTO until detected */
    uint64_t line;         /* lines passed: since `first` (map) or in the file (gz) */
    /* SRC_MAP (into the reader's mapping) */
    const char *map;
    size_t map_len;
    const char *pos, *lim; /* next line start; our lines start before lim */
    size_t first, range_lo, range_hi;
    uint64_t line_base;    /* 0: not computed yet */
    /* SRC_GZ */
    gzFile gz;
    size_t len, off;       /* valid bytes in r->gzbuf, next line start */
    int eof;
    /* SRC_CACHE (into the reader's mapping) */
    size_t cpos, cend;     /* next cache block, end of the unit's blocks */
    uint64_t crows, crows_done;
    uint64_t blk_rows, blk_row;
    const uint64_t *blk_ids;
    const float *blk_vals, *blk_labels;
    const uint32_t *blk_lens;
    int writing;           /* the rows go to the part's cache */
    uint64_t bad0;         /* r->bad when the unit was opened */
} src_t;

struct wk_reader {
    wk_data_conf_t conf;   /* paths not kept; cache_dir owned */
    char **files;
    size_t nfiles;
    int mixed;             /* block sharding, permuted order (shuffle_buffer > 0) */
    uint64_t block_bytes;  /* this epoch's block size (mixed) */
    part_t *parts;
    size_t nparts;
    unit_t *units;
    size_t nunits, next_unit;
    size_t *order;         /* read order of the units this epoch */
    src_t src;
    /* the one mapped file: the text (m_cache 0) or the cache of part m_part */
    const char *m_map;
    size_t m_len;
    long m_part;
    int m_cache;
    zps_format_t m_fmt;    /* text: detected from its first content line */
    /* cache writer: rows of the current unit not yet written, one open fd */
    csr_t cw_blk;
    uint32_t *cw_lens;
    size_t cw_lens_cap;
    int cw_fd;
    long cw_part;
    char *gzbuf;
    size_t gzcap;
    uint64_t epoch, rng;
    int status, done, from_cache;
    uint64_t rows_out, rows_in, bad;
    uint64_t weight_total, weight_done;
    double progress;       /* reported: never decreases within an epoch */
    csr_t batch, win;
    size_t *perm;
    size_t perm_cap, win_pos;
    char *tok;             /* strtod scratch */
    size_t tok_cap;
    uint64_t *hs_keys;     /* duplicate check set */
    uint32_t *hs_gen;
    size_t hs_cap;
    uint32_t hs_stamp;
    size_t bad_col;
    char bad_reason[256];
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

/* Records a bad-line reason at byte column col; returns S_BAD. */
static int s_bad(wk_reader_t *r, size_t col, const char *fmt, ...)
{
    va_list ap;
    r->bad_col = col;
    va_start(ap, fmt);
    vsnprintf(r->bad_reason, sizeof r->bad_reason, fmt, ap);
    va_end(ap);
    return S_BAD;
}

static int s_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return ZPS_ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

static int s_csr_reserve(csr_t *c, size_t rows, size_t nnz)
{
    if (c->n + rows > c->cap_rows || !c->offsets) {
        size_t need = c->n + rows, cap = c->cap_rows ? c->cap_rows : 64;
        while (cap < need)
            cap *= 2;
        float *l = realloc(c->labels, cap * sizeof *l);
        if (!l)
            return ZPS_ENOMEM;
        c->labels = l;
        size_t *o = realloc(c->offsets, (cap + 1) * sizeof *o);
        if (!o)
            return ZPS_ENOMEM;
        if (!c->offsets)
            o[0] = 0;
        c->offsets = o;
        c->cap_rows = cap;
    }
    if (c->nnz + nnz > c->cap_nnz) {
        size_t need = c->nnz + nnz, cap = c->cap_nnz ? c->cap_nnz : 256;
        while (cap < need)
            cap *= 2;
        uint64_t *ids = realloc(c->ids, cap * sizeof *ids);
        if (!ids)
            return ZPS_ENOMEM;
        c->ids = ids;
        float *v = realloc(c->vals, cap * sizeof *v);
        if (!v)
            return ZPS_ENOMEM;
        c->vals = v;
        c->cap_nnz = cap;
    }
    return 0;
}

static void s_csr_clear(csr_t *c)
{
    c->n = 0;
    c->nnz = 0;
    if (c->offsets)
        c->offsets[0] = 0;
}

static void s_csr_free(csr_t *c)
{
    free(c->labels);
    free(c->offsets);
    free(c->ids);
    free(c->vals);
    memset(c, 0, sizeof *c);
}

/* Appends rows [n0, n1) of src to dst. */
static int s_csr_append(csr_t *dst, const csr_t *src, size_t n0, size_t n1)
{
    size_t z0 = src->offsets[n0], z1 = src->offsets[n1];
    int rc = s_csr_reserve(dst, n1 - n0, z1 - z0);
    if (rc < 0)
        return rc;
    if (n1 > n0)
        memcpy(dst->labels + dst->n, src->labels + n0, (n1 - n0) * sizeof *dst->labels);
    if (z1 > z0) { /* rows without features leave ids/vals unallocated */
        memcpy(dst->ids + dst->nnz, src->ids + z0, (z1 - z0) * sizeof *dst->ids);
        memcpy(dst->vals + dst->nnz, src->vals + z0, (z1 - z0) * sizeof *dst->vals);
    }
    for (size_t i = n0; i < n1; i++)
        dst->offsets[dst->n + (i - n0) + 1] = dst->nnz + (src->offsets[i + 1] - z0);
    dst->n += n1 - n0;
    dst->nnz += z1 - z0;
    return 0;
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

static int s_is_cache_name(const char *name)
{
    return strstr(name, ".zpscache.") != NULL;
}

static const char *s_base(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

static uint64_t s_fnv1a(const char *s, size_t len)
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
    uint64_t h = s_fnv1a(value, len);
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
static int s_float_tok(wk_reader_t *r, const char *t, const char *te, size_t col,
                       const char *what, double *out)
{
    const char *q = s_fast_float(t, te, out);
    if (q == te)
        return 0;
    size_t len = (size_t)(te - t);
    if (len == 0)
        return s_bad(r, col, "missing %s", what);
    if (s_grow((void **)&r->tok, &r->tok_cap, len + 1, 1) < 0)
        return ZPS_ENOMEM;
    memcpy(r->tok, t, len);
    r->tok[len] = '\0';
    char *end;
    double v = strtod(r->tok, &end);
    int shown = len > 40 ? 40 : (int)len;
    if (end != r->tok + len)
        return s_bad(r, col, "bad %s '%.*s'", what, shown, t);
    if (!isfinite(v))
        return s_bad(r, col, "%s '%.*s' is not finite", what, shown, t);
    if (fabs(v) > FLT_MAX)
        return s_bad(r, col, "%s '%.*s' is out of float range", what, shown, t);
    *out = v;
    return 0;
}

/* Label token [t, te) at column col. */
static int s_label(wk_reader_t *r, const char *t, const char *te, size_t col, float *out)
{
    size_t len = (size_t)(te - t);
    int shown = len > 40 ? 40 : (int)len;
    if (len == 0)
        return s_bad(r, col, "missing label");
    if (r->conf.labels == WK_LABEL_CLASS) {
        uint32_t v = 0;
        int ok = len <= 8;
        for (size_t i = 0; ok && i < len; i++) {
            unsigned d = (unsigned)(unsigned char)t[i] - '0';
            ok = d < 10;
            v = v * 10 + d;
        }
        if (!ok || v > (1u << 24))
            return s_bad(r, col, "bad class label '%.*s' (want an integer 0..%u)", shown, t,
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
            return s_bad(r, col, "bad label '%.*s' (binary labels are 0/1 or -1/+1)", shown, t);
        memcpy(buf, t, len);
        buf[len] = '\0';
        char *end;
        v = strtod(buf, &end);
        if (end != buf + len)
            return s_bad(r, col, "bad label '%.*s' (binary labels are 0/1 or -1/+1)", shown, t);
    }
    if (v == 1.0)
        *out = 1.0f;
    else if (v == 0.0 || v == -1.0)
        *out = 0.0f;
    else
        return s_bad(r, col, "bad label '%.*s' (binary labels are 0/1 or -1/+1)", shown, t);
    return 0;
}

/* ---- duplicate ids ------------------------------------------------------- */

/* 1 and *at = index of the first repeated id in ids[0..k), else 0. */
static int s_find_dup(wk_reader_t *r, const uint64_t *ids, size_t k, size_t *at)
{
    *at = 0;
    size_t cap = 64;
    while (cap < 2 * k)
        cap *= 2;
    if (cap > r->hs_cap) {
        uint64_t *keys = malloc(cap * sizeof *keys);
        uint32_t *gen = calloc(cap, sizeof *gen);
        if (!keys || !gen) {
            free(keys);
            free(gen);
            *at = SIZE_MAX; /* out of memory: report no duplicate */
            return 0;
        }
        free(r->hs_keys);
        free(r->hs_gen);
        r->hs_keys = keys;
        r->hs_gen = gen;
        r->hs_cap = cap;
        r->hs_stamp = 0;
    }
    if (++r->hs_stamp == 0) {
        memset(r->hs_gen, 0, r->hs_cap * sizeof *r->hs_gen);
        r->hs_stamp = 1;
    }
    size_t mask = cap - 1;
    for (size_t j = 0; j < k; j++) {
        size_t h = (size_t)zps_mix64(ids[j], 0) & mask;
        while (r->hs_gen[h] == r->hs_stamp) {
            if (r->hs_keys[h] == ids[j]) {
                *at = j;
                return 1;
            }
            h = (h + 1) & mask;
        }
        r->hs_gen[h] = r->hs_stamp;
        r->hs_keys[h] = ids[j];
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
static int s_parse_libsvm(wk_reader_t *r, csr_t *d, const char *ls, const char *le)
{
    const char *p = ls;
    while (p < le && s_is_ws(*p))
        p++;
    if (p == le || *p == '#')
        return 0;
    if (s_csr_reserve(d, 1, (size_t)(le - p) / 2 + 1) < 0)
        return ZPS_ENOMEM;

    const char *t = p;
    while (!s_is_delim(p, le))
        p++;
    if (memchr(t, ':', (size_t)(p - t)))
        return s_bad(r, (size_t)(t - ls) + 1, "missing label (the line starts with a feature)");
    float label;
    int rc = s_label(r, t, p, (size_t)(t - ls) + 1, &label);
    if (rc < 0)
        return rc;
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
                return s_bad(r, (size_t)(t - ls) + 1, "feature id overflows 64 bits");
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
                return s_bad(r, (size_t)(t - ls) + 1, "bad feature id '%.*s'", shown, t);
            return s_bad(r, (size_t)(t - ls) + 1, "expected id:value, got '%.*s'", shown, t);
        }
        if (p == t)
            return s_bad(r, (size_t)(t - ls) + 1, "missing feature id before ':'");
        if (id == UINT64_MAX)
            return s_bad(r, (size_t)(t - ls) + 1,
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
            rc = s_float_tok(r, vt, p, (size_t)(vt - ls) + 1, "value", &v);
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
        if (s_find_dup(r, ids, k, &at))
            return s_bad(r, s_feature_col(ls, label_end, le, at), "duplicate feature id %llu",
                         (unsigned long long)ids[at]);
        if (at == SIZE_MAX)
            return ZPS_ENOMEM;
    }
    if (r->conf.hash_bits) {
        uint64_t mask = s_mask(r->conf.hash_bits);
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
static int s_parse_criteo(wk_reader_t *r, csr_t *d, const char *ls, const char *le)
{
    const char *p = ls;
    while (p < le && (*p == ' ' || *p == '\r'))
        p++;
    if (p == le || *p == '#')
        return 0;
    if (s_csr_reserve(d, 1, 39) < 0)
        return ZPS_ENOMEM;
    uint64_t *ids = d->ids + d->nnz;
    float *vals = d->vals + d->nnz;
    size_t k = 0;
    float label = 0;
    const char *f = ls;
    for (uint32_t field = 0; field < 40; field++) {
        const char *fe = memchr(f, '\t', (size_t)(le - f));
        if (!fe)
            fe = le;
        size_t col = (size_t)(f - ls) + 1;
        if (field < 39 && fe == le)
            return s_bad(r, (size_t)(le - ls) + 1,
                         "expected 40 tab-separated fields, got %u", field + 1);
        if (field == 39 && fe != le) {
            uint32_t n = 40;
            for (const char *x = fe; x < le; x++)
                n += *x == '\t';
            return s_bad(r, (size_t)(fe - ls) + 2,
                         "expected 40 tab-separated fields, got %u", n);
        }
        if (field == 0) {
            int rc = s_label(r, f, fe, col, &label);
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
                return s_bad(r, col, "bad integer '%.*s' in field I%u", shown, f, field);
            }
            char b[32];
            size_t bl = s_criteo_bucket(neg ? -(int64_t)u : (int64_t)u, b);
            ids[k] = wk_criteo_id(field, b, bl, r->conf.hash_bits);
            vals[k++] = 1.0f;
        } else {
            ids[k] = wk_criteo_id(field, f, (size_t)(fe - f), r->conf.hash_bits);
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
static zps_format_t s_detect(const char *ls, const char *le)
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

/* One line (without its newline) of the current text source. */
static int s_parse_line(wk_reader_t *r, src_t *s, csr_t *d, const char *ls, const char *le)
{
    if (s->fmt == ZPS_FMT_AUTO) {
        s->fmt = s_detect(ls, le);
        if (s->fmt == ZPS_FMT_AUTO)
            return 0;
    }
    if (s->fmt == ZPS_FMT_CRITEO) {
        if (le > ls && le[-1] == '\r')
            le--;
        return s_parse_criteo(r, d, ls, le);
    }
    return s_parse_libsvm(r, d, ls, le);
}

/* After a parser's S_BAD for the line being read: skip and count it, or
 * turn it into the reader's error. */
static int s_bad_line(wk_reader_t *r, src_t *s)
{
    if (r->conf.skip_bad_lines && r->first_bad[0]) {
        r->bad++; /* only the first one is named: no line number needed */
        return 0;
    }
    uint64_t line;
    if (s->kind == SRC_MAP) {
        if (!s->line_base) {
            uint64_t nl = 0;
            const char *p = s->map, *e = s->map + s->first;
            while (p < e && (p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
                nl++;
                p++;
            }
            s->line_base = nl + 1;
        }
        line = s->line_base + s->line;
    } else {
        line = s->line + 1;
    }
    char msg[S_MSGLEN];
    snprintf(msg, sizeof msg, "%s:%llu:%zu: %s", s->part->path, (unsigned long long)line,
             r->bad_col, r->bad_reason);
    if (r->conf.skip_bad_lines) {
        r->bad++;
        if (!r->first_bad[0])
            memcpy(r->first_bad, msg, sizeof msg);
        return 0;
    }
    memcpy(r->err, msg, sizeof msg);
    return ZPS_EINVAL;
}

/* ---- text sources -------------------------------------------------------- */

/* Parses lines of a mapped file until d has want rows or the range ends
 * (*at_end = 1). */
static int s_read_map(wk_reader_t *r, src_t *s, csr_t *d, size_t want, int *at_end)
{
    while (d->n < want) {
        if (s->pos >= s->lim) {
            *at_end = 1;
            return 0;
        }
        const char *end = s->map + s->map_len;
        const char *ls = s->pos;
        const char *nl = memchr(ls, '\n', (size_t)(end - ls));
        const char *le = nl ? nl : end;
        s->pos = nl ? nl + 1 : end;
        int rc = s_parse_line(r, s, d, ls, le);
        if (rc == S_BAD)
            rc = s_bad_line(r, s);
        s->line++;
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Reads more decompressed bytes into r->gzbuf after moving the unread tail
 * to the front (growing the buffer for long lines). */
static int s_gz_more(wk_reader_t *r, src_t *s)
{
    if (s->off > 0) {
        memmove(r->gzbuf, r->gzbuf + s->off, s->len - s->off);
        s->len -= s->off;
        s->off = 0;
    }
    if (r->gzcap - s->len < S_GZ_READ / 2) {
        size_t cap = r->gzcap;
        if (s_grow((void **)&r->gzbuf, &cap, s->len + S_GZ_READ, 1) < 0)
            return s_fail(r, ZPS_ENOMEM, "%s: out of memory for a line", s->part->path);
        r->gzcap = cap;
    }
    size_t room = r->gzcap - s->len;
    if (room > INT_MAX)
        room = INT_MAX;
    int n = gzread(s->gz, r->gzbuf + s->len, (unsigned)room);
    int zerr = Z_OK;
    const char *zmsg = gzerror(s->gz, &zerr);
    if (n < 0 || (zerr != Z_OK && zerr != Z_BUF_ERROR))
        return s_fail(r, ZPS_EIO, "%s: %s", s->part->path,
                      zerr == Z_ERRNO ? strerror(errno) : zmsg);
    if (n == 0) {
        if (zerr == Z_BUF_ERROR)
            return s_fail(r, ZPS_EIO, "%s: gzip data ends early (truncated file)",
                          s->part->path);
        s->eof = 1;
    }
    s->len += (size_t)n;
    return 0;
}

static int s_read_gz(wk_reader_t *r, src_t *s, csr_t *d, size_t want, int *at_end)
{
    uint32_t W = s->part->nshards, me = s->part->shard;
    while (d->n < want) {
        char *ls = r->gzbuf + s->off;
        char *nl = s->len > s->off ? memchr(ls, '\n', s->len - s->off) : NULL;
        const char *le;
        if (nl) {
            le = nl;
            s->off = (size_t)(nl - r->gzbuf) + 1;
        } else if (!s->eof) {
            int rc = s_gz_more(r, s);
            if (rc < 0)
                return rc;
            continue;
        } else if (s->off < s->len) {
            le = r->gzbuf + s->len; /* last line without a newline */
            s->off = s->len;
        } else {
            *at_end = 1;
            return 0;
        }
        int rc = 0;
        if (W <= 1 || s->line % W == me) {
            rc = s_parse_line(r, s, d, ls, le);
            if (rc == S_BAD)
                rc = s_bad_line(r, s);
        } else if (s->fmt == ZPS_FMT_AUTO) {
            s->fmt = s_detect(ls, le);
        }
        s->line++;
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- cache ------------------------------------------------------------------ */

static int64_t s_mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

static int s_same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           s_mtime_ns(a) == s_mtime_ns(b);
}

static size_t s_block_bytes(uint64_t rows, uint64_t nnz)
{
    size_t b = S_BLK_HDR + (size_t)nnz * 12 + (size_t)rows * 8;
    return (b + 7) & ~(size_t)7;
}

static const char *s_fmt_name(zps_format_t f)
{
    return f == ZPS_FMT_LIBSVM ? "libsvm" : f == ZPS_FMT_CRITEO ? "criteo" : "auto";
}

static char *s_cache_name(const wk_reader_t *r, const part_t *pt)
{
    const char *path = pt->path, *base = s_base(path);
    char tag[128], blk[32] = "", ph[24] = "";
    if (pt->split == SPLIT_BLOCKS)
        snprintf(blk, sizeof blk, "b%llu", (unsigned long long)pt->block_bytes);
    snprintf(tag, sizeof tag, ".zpscache.%uof%u%s.%s-%s-h%u", pt->shard, pt->nshards, blk,
             s_fmt_name(r->conf.format), r->conf.labels == WK_LABEL_CLASS ? "cls" : "bin",
             r->conf.hash_bits);
    size_t dlen;
    const char *dir;
    if (r->conf.cache_dir) {
        char *real = realpath(path, NULL);
        const char *rp = real ? real : path;
        snprintf(ph, sizeof ph, ".p%016llx", (unsigned long long)s_fnv1a(rp, strlen(rp)));
        free(real);
        dir = r->conf.cache_dir;
        dlen = strlen(dir);
    } else {
        dir = path;
        dlen = (size_t)(base - path);
    }
    size_t n = dlen + 1 + strlen(base) + strlen(tag) + strlen(ph) + 1;
    char *name = malloc(n);
    if (!name)
        return NULL;
    if (r->conf.cache_dir)
        snprintf(name, n, "%.*s/%s%s%s", (int)dlen, dir, base, tag, ph);
    else
        snprintf(name, n, "%.*s%s%s%s", (int)dlen, dir, base, tag, ph);
    return name;
}

/* The part's unit with cache id `id`, or NULL (units are in ascending id). */
static unit_t *s_unit_by_id(wk_reader_t *r, const part_t *pt, uint64_t id)
{
    size_t lo = pt->unit0, hi = pt->unit0 + pt->nunits;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->units[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < pt->unit0 + pt->nunits && r->units[lo].id == id ? &r->units[lo] : NULL;
}

/* Checks the part's cache: complete, made from this input (pt->st) with this
 * reader's settings and layout, every unit of the part present once as a run
 * of consecutive blocks.  Sets the units' c_* fields and pt->cst; 1 if valid. */
static int s_cache_check(wk_reader_t *r, part_t *pt, const char *name)
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
             hdr.src_size == (uint64_t)pt->st.st_size &&
             hdr.src_mtime_ns == s_mtime_ns(&pt->st) && hdr.format == (uint32_t)r->conf.format &&
             hdr.labels == (uint32_t)r->conf.labels && hdr.hash_bits == r->conf.hash_bits &&
             hdr.split == pt->split && hdr.shard == pt->shard && hdr.nshards == pt->nshards &&
             hdr.block_bytes == pt->block_bytes && hdr.first_block == pt->first_block &&
             (hdr.bad_lines == 0 || r->conf.skip_bad_lines);
    for (size_t i = 0; ok && i < pt->nunits; i++)
        r->units[pt->unit0 + i].c_off = 0; /* 0: not seen (a block is never at 0) */
    /* the blocks must tile the file, add up to the header's totals and hold
     * every unit once, as consecutive blocks */
    size_t off = sizeof hdr, seen = 0;
    uint64_t rows = 0, nnz = 0, bad = 0;
    unit_t *cur = NULL;
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
            cur = s_unit_by_id(r, pt, bh[2]);
            if (!cur || cur->c_off != 0) {
                ok = 0;
                break;
            }
            cur->c_off = off;
            cur->c_rows = cur->c_bad = 0;
            seen++;
        }
        off += s_block_bytes(bh[0], bh[1]);
        cur->c_end = off;
        cur->c_rows += bh[0];
        cur->c_bad += bh[3];
        rows += bh[0];
        nnz += bh[1];
        bad += bh[3];
    }
    ok = ok && off == n && rows == hdr.rows && nnz == hdr.nnz && bad == hdr.bad_lines &&
         seen == pt->nunits;
    munmap(m, n);
    if (ok)
        pt->cst = cst;
    return ok;
}

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
    part_t *pt = &r->parts[pi];
    char *name = s_cache_name(r, pt);
    int fd = name ? open(name, O_RDONLY | O_CLOEXEC) : -1;
    free(name);
    if (fd < 0)
        return -1;
    struct stat cst;
    void *m = MAP_FAILED;
    if (fstat(fd, &cst) == 0 && s_same_file(&cst, &pt->cst))
        m = mmap(NULL, (size_t)cst.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return -1;
    r->m_map = m;
    r->m_len = (size_t)cst.st_size;
    r->m_part = (long)pi;
    r->m_cache = 1;
    return 0;
}

static int s_pwrite_all(int fd, const void *p, size_t n, uint64_t *off)
{
    const char *c = p;
    while (n) {
        ssize_t w = pwrite(fd, c, n, (off_t)*off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
        *off += (uint64_t)w;
    }
    return 0;
}

static void s_cw_close_fd(wk_reader_t *r)
{
    if (r->cw_fd >= 0)
        close(r->cw_fd);
    r->cw_fd = -1;
    r->cw_part = -1;
}

/* The open temporary of part pi (one is kept open at a time), or -1. */
static int s_cw_fd(wk_reader_t *r, size_t pi)
{
    if (r->cw_part == (long)pi)
        return r->cw_fd;
    s_cw_close_fd(r);
    int fd = open(r->parts[pi].tmp, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        r->cw_fd = fd;
        r->cw_part = (long)pi;
    }
    return fd;
}

/* Starts the part's cache (its first unit is read from text): a mkstemp
 * file beside the final name with a zero header.  On failure there is no
 * cache this epoch (see the design comment). */
static void s_cw_start(wk_reader_t *r, size_t pi)
{
    part_t *pt = &r->parts[pi];
    pt->cw_failed = 1;
    char *final = s_cache_name(r, pt);
    size_t n = final ? strlen(final) + 16 : 0;
    char *tmp = final ? malloc(n) : NULL;
    if (!tmp) {
        free(final);
        return;
    }
    snprintf(tmp, n, "%s.tmpXXXXXX", final);
    free(final);
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
    s_cw_close_fd(r);
    r->cw_fd = fd;
    r->cw_part = (long)pi;
    pt->tmp = tmp;
    pt->cw_failed = 0;
    pt->cw_off = off;
    pt->cw_rows = pt->cw_nnz = pt->cw_nblocks = pt->cw_bad = pt->cw_units = 0;
}

/* Writes the buffered rows of unit u as one cache block (also when empty:
 * every unit has a block, which carries its id and skipped-line count). */
static void s_cw_flush(wk_reader_t *r, unit_t *u, uint64_t bad)
{
    part_t *pt = &r->parts[u->part];
    csr_t *b = &r->cw_blk;
    if (!pt->tmp || pt->cw_failed) {
        s_csr_clear(b);
        return;
    }
    int fd = s_cw_fd(r, u->part);
    int ok = fd >= 0 && s_grow((void **)&r->cw_lens, &r->cw_lens_cap, b->n + 1,
                               sizeof *r->cw_lens) == 0;
    for (size_t i = 0; ok && i < b->n; i++) {
        size_t l = b->offsets[i + 1] - b->offsets[i];
        ok = l <= UINT32_MAX;
        r->cw_lens[i] = (uint32_t)l;
    }
    uint64_t bh[4] = {b->n, b->nnz, u->id, bad};
    size_t used = S_BLK_HDR + b->nnz * 12 + b->n * 8;
    static const char pad[8] = {0};
    uint64_t *off = &pt->cw_off;
    ok = ok && s_pwrite_all(fd, bh, sizeof bh, off) == 0 &&
         (b->nnz == 0 || (s_pwrite_all(fd, b->ids, b->nnz * sizeof *b->ids, off) == 0 &&
                          s_pwrite_all(fd, b->vals, b->nnz * sizeof *b->vals, off) == 0)) &&
         (b->n == 0 || (s_pwrite_all(fd, b->labels, b->n * sizeof *b->labels, off) == 0 &&
                        s_pwrite_all(fd, r->cw_lens, b->n * sizeof *r->cw_lens, off) == 0)) &&
         s_pwrite_all(fd, pad, s_block_bytes(b->n, b->nnz) - used, off) == 0;
    if (!ok) {
        pt->cw_failed = 1;
    } else {
        pt->cw_rows += b->n;
        pt->cw_nnz += b->nnz;
        pt->cw_bad += bad;
        pt->cw_nblocks++;
    }
    s_csr_clear(b);
}

/* Rows [n0, n1) of d were parsed from the unit being read. */
static void s_cw_add(wk_reader_t *r, src_t *s, const csr_t *d, size_t n0, size_t n1)
{
    if (!s->writing || s->part->cw_failed || n0 == n1)
        return;
    if (s_csr_append(&r->cw_blk, d, n0, n1) < 0) {
        s->part->cw_failed = 1;
        return;
    }
    if (r->cw_blk.n >= S_BLOCK_ROWS || r->cw_blk.nnz >= S_BLOCK_NNZ)
        s_cw_flush(r, s->unit, 0);
}

/* Removes the part's unfinished cache. */
static void s_cw_abort(wk_reader_t *r, part_t *pt)
{
    if (!pt->tmp)
        return;
    if (r->cw_part == (long)(pt - r->parts))
        s_cw_close_fd(r);
    unlink(pt->tmp);
    free(pt->tmp);
    pt->tmp = NULL;
}

/* Every unit of the part was written without error: complete and publish. */
static void s_cw_finish(wk_reader_t *r, part_t *pt)
{
    size_t pi = (size_t)(pt - r->parts);
    cache_hdr_t h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, S_CACHE_MAGIC, 8);
    h.version = S_CACHE_VERSION;
    h.endian = S_CACHE_ENDIAN;
    h.hdr_bytes = sizeof h;
    h.src_size = (uint64_t)pt->st.st_size;
    h.src_mtime_ns = s_mtime_ns(&pt->st);
    h.format = (uint32_t)r->conf.format;
    h.labels = (uint32_t)r->conf.labels;
    h.hash_bits = r->conf.hash_bits;
    h.split = pt->split;
    h.shard = pt->shard;
    h.nshards = pt->nshards;
    h.block_bytes = pt->block_bytes;
    h.first_block = pt->first_block;
    h.rows = pt->cw_rows;
    h.nnz = pt->cw_nnz;
    h.bad_lines = pt->cw_bad;
    h.nblocks = pt->cw_nblocks;
    int fd = pt->cw_failed ? -1 : s_cw_fd(r, pi);
    uint64_t off = 0;
    if (fd >= 0 && s_pwrite_all(fd, &h, sizeof h, &off) == 0 && fchmod(fd, 0644) == 0) {
        r->cw_fd = -1; /* closed here: a failing close means the data may be lost */
        r->cw_part = -1;
        char *final = close(fd) == 0 ? s_cache_name(r, pt) : NULL;
        if (final && rename(pt->tmp, final) == 0) {
            free(pt->tmp);
            pt->tmp = NULL;
        }
        free(final);
    }
    s_cw_abort(r, pt);
}

/* The unit was read to its end without error. */
static void s_unit_end(wk_reader_t *r, src_t *s)
{
    part_t *pt = s->part;
    if (s->writing && !pt->cw_failed) {
        s_cw_flush(r, s->unit, r->bad - s->bad0);
        pt->cw_units++;
    }
    pt->units_done++;
    if (pt->tmp && pt->units_done == pt->nunits) {
        if (pt->cw_units == pt->nunits && !pt->cw_failed)
            s_cw_finish(r, pt);
        else
            s_cw_abort(r, pt);
    }
}

/* Rows of the unit from its cache blocks. */
static int s_read_cache(wk_reader_t *r, src_t *s, csr_t *d, size_t want, int *at_end)
{
    while (d->n < want) {
        if (s->blk_row == s->blk_rows) {
            if (s->cpos >= s->cend) {
                *at_end = 1;
                return 0;
            }
            const char *b = s->map + s->cpos;
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
                return s_fail(r, ZPS_EIO, "%s: cache file is corrupt", s->part->path);
            s->cpos += s_block_bytes(bh[0], bh[1]);
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
        if (s_csr_reserve(d, k, nz) < 0)
            return s_fail(r, ZPS_ENOMEM, "out of memory");
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
        s->crows_done += k;
    }
    return 0;
}

/* ---- units ----------------------------------------------------------------- */

static void s_src_close(wk_reader_t *r, src_t *s)
{
    if (s->gz)
        gzclose(s->gz);
    s_csr_clear(&r->cw_blk); /* rows of an unfinished unit */
    memset(s, 0, sizeof *s);
    s->kind = SRC_NONE;
}

static uint64_t s_range_at(uint64_t size, uint32_t i, uint32_t n)
{
    return size / n * i + size % n * i / n; /* floor(size * i / n) without overflow */
}

/* Maps the text of part pi unless mapped.  A file that changed since the
 * epoch started is read as it is now, but not cached. */
static int s_map_text(wk_reader_t *r, size_t pi)
{
    if (r->m_part == (long)pi && !r->m_cache)
        return 0;
    s_unmap(r);
    part_t *pt = &r->parts[pi];
    int fd = open(pt->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return s_fail(r, ZPS_EIO, "%s: %s", pt->path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return s_fail(r, ZPS_EIO, "%s: %s", pt->path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return s_fail(r, ZPS_EIO, "%s: not a regular file", pt->path);
    }
    if (!s_same_file(&st, &pt->st))
        pt->cw_failed = 1;
    size_t size = (size_t)st.st_size;
    r->m_part = (long)pi;
    r->m_cache = 0;
    r->m_fmt = ZPS_FMT_AUTO;
    if (size == 0) { /* no lines */
        close(fd);
        return 0;
    }
    void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int merr = errno;
    close(fd);
    if (m == MAP_FAILED) {
        r->m_part = -1;
        return s_fail(r, ZPS_EIO, "%s: mmap: %s", pt->path, strerror(merr));
    }
    if (!r->mixed)
        madvise(m, size, MADV_SEQUENTIAL);
    r->m_map = m;
    r->m_len = size;
    /* every worker detects the format from the file's first content line */
    const char *p = r->m_map, *e = r->m_map + size;
    while (r->m_fmt == ZPS_FMT_AUTO && p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        const char *le = nl ? nl : e;
        r->m_fmt = s_detect(p, le);
        p = le + 1;
    }
    return 0;
}

static int s_src_open(wk_reader_t *r, size_t ui)
{
    src_t *s = &r->src;
    unit_t *u = &r->units[ui];
    part_t *pt = &r->parts[u->part];
    s->part = pt;
    s->unit = u;
    s->fmt = r->conf.format;
    s->bad0 = r->bad;
    if (pt->cache_ok && s_map_cache(r, u->part) == 0) {
        s->kind = SRC_CACHE;
        s->map = r->m_map;
        s->map_len = r->m_len;
        s->cpos = u->c_off;
        s->cend = u->c_end;
        s->crows = u->c_rows;
        r->bad += u->c_bad;
        return 0;
    }
    r->from_cache = 0;
    if (r->conf.use_cache && !pt->cache_ok && !pt->tmp && !pt->cw_failed && pt->units_done == 0)
        s_cw_start(r, u->part);
    s->writing = pt->tmp && !pt->cw_failed;
    if (pt->gz) {
        int fd = open(pt->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return s_fail(r, ZPS_EIO, "%s: %s", pt->path, strerror(errno));
        struct stat st;
        if (fstat(fd, &st) == 0 && !s_same_file(&st, &pt->st))
            pt->cw_failed = 1;
        s->gz = gzdopen(fd, "rb");
        if (!s->gz) {
            close(fd);
            return s_fail(r, ZPS_ENOMEM, "%s: cannot open gzip stream", pt->path);
        }
        gzbuffer(s->gz, 1u << 18);
        if (!r->gzbuf) {
            r->gzbuf = malloc(S_GZ_READ);
            if (!r->gzbuf)
                return s_fail(r, ZPS_ENOMEM, "out of memory");
            r->gzcap = S_GZ_READ;
        }
        s->kind = SRC_GZ;
        return 0;
    }
    int rc = s_map_text(r, u->part);
    if (rc < 0)
        return rc;
    s->kind = SRC_MAP;
    if (r->m_len == 0) /* no lines; pos == lim == NULL */
        return 0;
    s->map = r->m_map;
    s->map_len = r->m_len;
    if (s->fmt == ZPS_FMT_AUTO)
        s->fmt = r->m_fmt;
    size_t size = r->m_len;
    size_t lo = u->lo < size ? (size_t)u->lo : size;
    size_t hi = u->hi < size ? (size_t)u->hi : size;
    s->range_lo = lo;
    s->range_hi = hi;
    size_t start = lo;
    if (start > 0 && s->map[start - 1] != '\n') {
        const char *nl = memchr(s->map + start, '\n', size - start);
        start = nl ? (size_t)(nl - s->map) + 1 : size;
    }
    s->first = start;
    s->pos = s->map + start;
    s->lim = s->map + hi;
    if (r->mixed && hi > lo) { /* units come in random order: read the block ahead */
        size_t pg = (size_t)sysconf(_SC_PAGESIZE), a = lo / pg * pg;
        madvise((void *)(s->map + a), hi - a, MADV_WILLNEED);
    }
    return 0;
}

/* Fraction of the current unit consumed. */
static double s_src_frac(const src_t *s)
{
    switch (s->kind) {
    case SRC_MAP: {
        size_t span = s->range_hi - s->range_lo;
        if (span == 0 || s->pos >= s->lim)
            return 1.0;
        size_t at = (size_t)(s->pos - s->map);
        return at <= s->range_lo ? 0.0 : (double)(at - s->range_lo) / (double)span;
    }
    case SRC_GZ: {
        off_t size = s->part->st.st_size;
        double f = size > 0 ? (double)gzoffset(s->gz) / (double)size : 1.0;
        return f > 1.0 ? 1.0 : f < 0.0 ? 0.0 : f;
    }
    case SRC_CACHE:
        return s->crows ? (double)s->crows_done / (double)s->crows : 1.0;
    default:
        return 0.0;
    }
}

/* Appends rows to d until it has want rows or the epoch ends (r->done). */
static int s_fill(wk_reader_t *r, csr_t *d, size_t want)
{
    while (d->n < want) {
        src_t *s = &r->src;
        if (s->kind == SRC_NONE) {
            if (r->next_unit == r->nunits) {
                r->done = 1;
                return 0;
            }
            int rc = s_src_open(r, r->order[r->next_unit++]);
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
        s_cw_add(r, s, d, n0, d->n);
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
    for (size_t i = 0; i < r->nparts; i++)
        s_cw_abort(r, &r->parts[i]);
    s_cw_close_fd(r);
    s_unmap(r);
    free(r->parts);
    free(r->units);
    free(r->order);
    r->parts = NULL;
    r->units = NULL;
    r->order = NULL;
    r->nparts = r->nunits = r->next_unit = 0;
}

/* Automatic shard block size: the largest power of two <= 1 MiB that gives
 * about S_SHARD_BLOCKS_PER_WORKER (64) blocks a worker, at least 64 bytes. */
static uint64_t s_auto_block(uint64_t total, uint32_t W)
{
    uint64_t target = total / ((uint64_t)S_SHARD_BLOCKS_PER_WORKER * W), b = S_SHARD_BLOCK_MAX;
    while (b > S_SHARD_BLOCK_MIN && b > target)
        b >>= 1;
    return b;
}

static part_t *s_add_part(wk_reader_t *r, size_t *cap, const char *path, const struct stat *st,
                          int gz, uint32_t split, uint32_t shard, uint32_t nshards)
{
    if (s_grow((void **)&r->parts, cap, r->nparts + 1, sizeof *r->parts) < 0)
        return NULL;
    part_t *pt = &r->parts[r->nparts++];
    memset(pt, 0, sizeof *pt);
    pt->path = path;
    pt->st = *st;
    pt->gz = gz;
    pt->split = split;
    pt->shard = shard;
    pt->nshards = nshards;
    pt->unit0 = r->nunits;
    return pt;
}

static int s_add_unit(wk_reader_t *r, size_t *cap, uint64_t id, uint64_t lo, uint64_t hi)
{
    if (s_grow((void **)&r->units, cap, r->nunits + 1, sizeof *r->units) < 0)
        return ZPS_ENOMEM;
    unit_t *u = &r->units[r->nunits++];
    memset(u, 0, sizeof *u);
    u->part = (uint32_t)(r->nparts - 1);
    u->id = id;
    u->lo = lo;
    u->hi = hi;
    u->weight = (hi > lo ? hi - lo : 0) + 1;
    r->parts[r->nparts - 1].nunits++;
    return 0;
}

/* This epoch's parts and units from the files as they are now (see the
 * design comment); every worker computes the same layout. */
static int s_layout(wk_reader_t *r)
{
    uint32_t W = r->conf.nshards, me = r->conf.shard;
    size_t n = r->nfiles, pcap = 0, ucap = 0;
    struct stat *st = calloc(n ? n : 1, sizeof *st);
    int *gz = calloc(n ? n : 1, sizeof *gz);
    if (!st || !gz) {
        free(st);
        free(gz);
        return ZPS_ENOMEM;
    }
    size_t ngz = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        int fd = open(r->files[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st[i]) < 0)
            memset(&st[i], 0, sizeof st[i]); /* read as empty: the open reports it */
        unsigned char mg[2] = {0, 0};
        if (fd >= 0 && pread(fd, mg, 2, 0) == 2 && mg[0] == 0x1f && mg[1] == 0x8b)
            gz[i] = 1;
        if (fd >= 0)
            close(fd);
        ngz += (size_t)gz[i];
        if (!gz[i])
            total += (uint64_t)st[i].st_size;
    }
    int rc = 0;
    part_t *pt;
    if (!r->mixed) {
        for (size_t i = 0; i < n && rc == 0; i++) {
            uint64_t size = (uint64_t)st[i].st_size;
            if (n >= W) {
                if (i % W != me)
                    continue;
                pt = s_add_part(r, &pcap, r->files[i], &st[i], gz[i], SPLIT_WHOLE, 0, 1);
                rc = pt ? s_add_unit(r, &ucap, 0, 0, size) : ZPS_ENOMEM;
            } else {
                uint32_t split = W == 1 ? SPLIT_WHOLE : gz[i] ? SPLIT_LINES : SPLIT_RANGE;
                pt = s_add_part(r, &pcap, r->files[i], &st[i], gz[i], split, W == 1 ? 0 : me,
                                W);
                rc = pt ? s_add_unit(r, &ucap, 0, s_range_at(size, me, W),
                                     s_range_at(size, me + 1, W))
                        : ZPS_ENOMEM;
            }
        }
    } else {
        uint64_t B = r->conf.block_bytes ? r->conf.block_bytes : s_auto_block(total, W);
        r->block_bytes = B;
        uint64_t g = 0; /* global index of the file's first block */
        for (size_t i = 0; i < n && rc == 0; i++) {
            uint64_t size = (uint64_t)st[i].st_size;
            if (gz[i] && ngz >= W) { /* dealt whole, as one block */
                if (g++ % W == me) {
                    pt = s_add_part(r, &pcap, r->files[i], &st[i], 1, SPLIT_WHOLE, 0, 1);
                    rc = pt ? s_add_unit(r, &ucap, 0, 0, size) : ZPS_ENOMEM;
                }
            } else if (gz[i]) { /* every worker decompresses it, keeps its lines */
                pt = s_add_part(r, &pcap, r->files[i], &st[i], 1, SPLIT_LINES, me, W);
                rc = pt ? s_add_unit(r, &ucap, 0, s_range_at(size, me, W),
                                     s_range_at(size, me + 1, W))
                        : ZPS_ENOMEM;
            } else {
                uint64_t nb = size / B + (size % B != 0);
                uint64_t k = (me + W - g % W) % W; /* first block of this worker */
                if (k < nb) {
                    pt = s_add_part(r, &pcap, r->files[i], &st[i], 0, SPLIT_BLOCKS, me, W);
                    if (!pt)
                        rc = ZPS_ENOMEM;
                    else {
                        pt->block_bytes = B;
                        pt->first_block = g;
                    }
                    for (; rc == 0 && k < nb; k += W)
                        rc = s_add_unit(r, &ucap, k, k * B, k + 1 < nb ? (k + 1) * B : size);
                }
                g += nb;
            }
        }
    }
    free(st);
    free(gz);
    if (rc == 0 && r->nunits) {
        r->order = malloc(r->nunits * sizeof *r->order);
        if (!r->order)
            rc = ZPS_ENOMEM;
    }
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < r->nunits; i++)
        r->order[i] = i;
    if (r->mixed && r->nunits > 1) {
        uint64_t rng = zps_mix64(r->conf.seed + r->epoch * 0x9e3779b97f4a7c15ULL, S_ORDER_SEED);
        for (size_t i = r->nunits - 1; i > 0; i--) {
            size_t j = (size_t)(zps_rng_next(&rng) % (i + 1));
            size_t t = r->order[i];
            r->order[i] = r->order[j];
            r->order[j] = t;
        }
    }
    return 0;
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
    s_csr_clear(&r->win);
    s_csr_clear(&r->batch);
    s_csr_clear(&r->cw_blk);
    r->win_pos = 0;
    r->rng = zps_mix64(r->conf.seed + r->epoch * 0x9e3779b97f4a7c15ULL, S_SHUFFLE_SEED);
    int rc = s_layout(r);
    if (rc < 0) {
        r->status = s_fail(r, rc, "out of memory");
        return rc;
    }
    int all = r->nparts > 0 && r->conf.use_cache;
    for (size_t i = 0; i < r->nparts; i++) {
        part_t *pt = &r->parts[i];
        char *name = r->conf.use_cache ? s_cache_name(r, pt) : NULL;
        pt->cache_ok = name && s_cache_check(r, pt, name);
        free(name);
        all = all && pt->cache_ok;
    }
    for (size_t i = 0; i < r->nunits; i++)
        r->weight_total += r->units[i].weight;
    r->from_cache = all;
    return 0;
}

/* ---- paths ----------------------------------------------------------------- */

typedef struct {
    char **v;
    size_t n, cap;
} strv_t;

static int s_strv_add(strv_t *sv, const char *dir, const char *name)
{
    if (s_grow((void **)&sv->v, &sv->cap, sv->n + 1, sizeof *sv->v) < 0)
        return ZPS_ENOMEM;
    size_t n = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;
    char *s = malloc(n);
    if (!s)
        return ZPS_ENOMEM;
    if (dir)
        snprintf(s, n, "%s%s%s", dir, dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", name);
    else
        snprintf(s, n, "%s", name);
    sv->v[sv->n++] = s;
    return 0;
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int s_is_reg(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Expands one input path into sv; ZPS_EINVAL/ENOMEM with err. */
static int s_expand(strv_t *sv, const char *path, char *err, size_t errlen)
{
    struct stat st;
    size_t n0 = sv->n;
    if (stat(path, &st) == 0) {
        if (S_ISREG(st.st_mode))
            return s_strv_add(sv, NULL, path);
        if (!S_ISDIR(st.st_mode)) {
            s_errf(err, errlen, "%s: not a regular file or directory", path);
            return ZPS_EINVAL;
        }
        DIR *dir = opendir(path);
        if (!dir) {
            s_errf(err, errlen, "%s: %s", path, strerror(errno));
            return ZPS_EINVAL;
        }
        struct dirent *de;
        int rc = 0;
        while (rc == 0 && (de = readdir(dir)) != NULL) {
            if (de->d_name[0] == '.' || s_is_cache_name(de->d_name))
                continue;
            rc = s_strv_add(sv, path, de->d_name);
            if (rc == 0 && !s_is_reg(sv->v[sv->n - 1]))
                free(sv->v[--sv->n]);
        }
        closedir(dir);
        if (rc < 0) {
            s_errf(err, errlen, "out of memory");
            return rc;
        }
        if (sv->n == n0) {
            s_errf(err, errlen, "%s: no input files in this directory", path);
            return ZPS_EINVAL;
        }
        return 0;
    }
    if (!strpbrk(path, "*?[")) {
        s_errf(err, errlen, "%s: %s", path, strerror(errno));
        return ZPS_EINVAL;
    }
    glob_t g;
    int grc = glob(path, 0, NULL, &g);
    if (grc != 0 && grc != GLOB_NOMATCH) {
        s_errf(err, errlen, "%s: glob failed", path);
        return ZPS_EINVAL;
    }
    int rc = 0;
    for (size_t i = 0; grc == 0 && rc == 0 && i < g.gl_pathc; i++)
        if (!s_is_cache_name(s_base(g.gl_pathv[i])) && s_is_reg(g.gl_pathv[i]))
            rc = s_strv_add(sv, NULL, g.gl_pathv[i]);
    if (grc == 0)
        globfree(&g);
    if (rc < 0) {
        s_errf(err, errlen, "out of memory");
        return rc;
    }
    if (sv->n == n0) {
        s_errf(err, errlen, "%s: no input files match", path);
        return ZPS_EINVAL;
    }
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
    r->cw_fd = -1;
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
    r->cw_fd = -1;
    r->cw_part = -1;
    if (conf->cache_dir && conf->cache_dir[0]) {
        r->conf.cache_dir = strdup(conf->cache_dir);
        if (!r->conf.cache_dir)
            goto nomem;
        if (conf->use_cache)
            (void)mkdir(conf->cache_dir, 0755); /* best effort */
    }
    strv_t sv = {NULL, 0, 0};
    for (size_t i = 0; i < conf->npaths; i++) {
        int rc = conf->paths[i] ? s_expand(&sv, conf->paths[i], err, errlen) : ZPS_EINVAL;
        if (rc < 0) {
            if (!conf->paths[i])
                s_errf(err, errlen, "NULL input path");
            r->files = sv.v;
            r->nfiles = sv.n;
            wk_reader_destroy(&r);
            return NULL;
        }
    }
    qsort(sv.v, sv.n, sizeof *sv.v, s_cmp_str);
    r->files = sv.v;
    r->nfiles = sv.n;

    r->mixed = conf->shuffle_buffer > 0;
    if (s_csr_reserve(&r->batch, 1, 1) < 0 || s_csr_reserve(&r->win, 1, 1) < 0)
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
    s_csr_free(&r->cw_blk);
    free(r->cw_lens);
    for (size_t i = 0; i < r->nfiles; i++)
        free(r->files[i]);
    free(r->files);
    free((char *)r->conf.cache_dir);
    free(r->gzbuf);
    s_csr_free(&r->batch);
    s_csr_free(&r->win);
    free(r->perm);
    free(r->tok);
    free(r->hs_keys);
    free(r->hs_gen);
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
        w += (double)r->src.unit->weight * s_src_frac(&r->src);
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
    s_csr_clear(&r->batch);
    int rc = 0;
    if (r->conf.shuffle_buffer == 0) {
        rc = s_fill(r, &r->batch, max_rows);
    } else {
        while (rc == 0 && r->batch.n < max_rows) {
            if (r->win_pos == r->win.n) {
                if (r->done)
                    break;
                s_csr_clear(&r->win);
                r->win_pos = 0;
                rc = s_fill(r, &r->win, r->conf.shuffle_buffer);
                if (rc < 0)
                    break;
                size_t n = r->win.n;
                if (n == 0)
                    break;
                if (s_grow((void **)&r->perm, &r->perm_cap, n, sizeof *r->perm) < 0) {
                    rc = s_fail(r, ZPS_ENOMEM, "out of memory");
                    break;
                }
                for (size_t i = 0; i < n; i++)
                    r->perm[i] = i;
                for (size_t i = n - 1; i > 0; i--) {
                    size_t j = (size_t)(zps_rng_next(&r->rng) % (i + 1));
                    size_t t = r->perm[i];
                    r->perm[i] = r->perm[j];
                    r->perm[j] = t;
                }
            }
            while (r->batch.n < max_rows && r->win_pos < r->win.n) {
                size_t i = r->perm[r->win_pos++];
                rc = s_csr_append(&r->batch, &r->win, i, i + 1);
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
    if (!r || !r->conf.use_cache || r->nparts == 0)
        return 0;
    char *name = s_cache_name(r, &r->parts[0]);
    if (!name)
        return 0;
    snprintf(buf, len, "%s", name);
    free(name);
    return r->nparts;
}

int wk_reader_all_empty(const wk_reader_t *r, char *names, size_t len)
{
    size_t n = 0;
    if (len)
        names[0] = 0;
    for (size_t i = 0; r && i < r->nfiles; i++) {
        struct stat st;
        if (stat(r->files[i], &st) != 0 || st.st_size != 0)
            return 0;
        if (n + 4 < len) {
            int w = snprintf(names + n, len - n, "%s%s", i ? ", " : "", r->files[i]);
            n = w > 0 && n + (size_t)w < len ? n + (size_t)w : len - 4;
            if (n == len - 4)
                snprintf(names + n, 4, "...");
        }
    }
    return r && r->nfiles > 0;
}
