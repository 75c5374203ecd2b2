/* wk_idx: see wk_idx.h for the contract.
 *
 * DESIGN
 * Both files are read through zlib's gzread, which reads plain files as
 * they are (gzdirect tells which it was).  A header is 4 bytes (0, 0, type,
 * ndims) and ndims big-endian u32; the payload is the product of the
 * dimensions (one byte each: only type 0x08 is accepted).  The product is
 * computed with overflow checks, and one image must have at most 2^24
 * pixels (feature ids and the mlp's input width are bounded the same way).
 * A plain file's size must equal header + payload before anything else is
 * read; a gzip file is decompressed to its end (the rows before and after
 * the shard are read into a scratch buffer and dropped) and its length
 * checked then, so a truncated or padded file fails in every worker, not
 * only in the one whose rows are missing.
 *
 * Memory: the shard's pixels as bytes (rows x features) and its labels as
 * floats; a batch is built on demand as CSR of the nonzero pixels (ids,
 * values /255) in buffers that grow to the largest batch and are reused.
 * Nothing is global. */
#include "wk_idx.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "zps_err.h"
#include "zps_hash.h"
#include "zps_rng.h"

#define S_MAX_DIMS 8u
#define S_MAX_FEATURES (1u << 24)
#define S_CHUNK (1u << 20)
#define S_SHUFFLE_SEED 0x6a09e667f3bcc909ULL

struct wk_idx {
    wk_idx_conf_t conf;     /* spec not kept */
    uint64_t total;         /* rows in the file */
    uint64_t lo, rows;      /* this shard: rows lo .. lo + rows - 1 */
    uint32_t features;
    uint8_t *pix;           /* rows x features */
    float *labels;          /* rows */
    uint32_t *perm;         /* rows, with shuffle */
    uint64_t pos, epoch;
    /* batch buffers */
    size_t cap_rows, cap_nnz;
    float *b_labels, *b_vals;
    size_t *b_offsets;
    uint64_t *b_ids;
};

typedef struct {
    const char *path;
    gzFile gz;
    int plain;              /* 1: not gzip */
    uint64_t size;          /* plain: file size */
    uint8_t type, ndims;
    uint32_t dims[S_MAX_DIMS];
    uint64_t hdr, payload;  /* bytes */
    uint64_t features;      /* product of dims[1..] */
    uint64_t done;          /* payload bytes read so far */
} s_file_t;

static int s_errf(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int s_errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static uint32_t s_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads exactly n bytes: 0, or an error naming the file (short read = the
 * data ends early). */
static int s_read(s_file_t *f, void *buf, size_t n, char *err, size_t errlen)
{
    uint8_t *p = buf;
    while (n > 0) {
        unsigned want = n > S_CHUNK ? S_CHUNK : (unsigned)n;
        int got = gzread(f->gz, p, want);
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(f->gz, &zerr);
            if (zerr == Z_ERRNO)
                msg = strerror(errno);
            return s_errf(err, errlen, ZPS_EIO, "%s: read error: %s", f->path, msg);
        }
        if (got == 0) {
            uint64_t at = f->hdr + f->done;
            return s_errf(err, errlen, ZPS_EINVAL,
                          "%s: data ends early: %s%llu bytes where the header says %llu",
                          f->path, f->plain ? "" : "decompressed to ", (unsigned long long)at,
                          (unsigned long long)(f->hdr + f->payload));
        }
        p += got;
        n -= (size_t)got;
        f->done += (uint64_t)got;
    }
    return 0;
}

/* Reads and drops n bytes. */
static int s_skip(s_file_t *f, uint64_t n, uint8_t *scratch, char *err, size_t errlen)
{
    while (n > 0) {
        size_t k = n > S_CHUNK ? S_CHUNK : (size_t)n;
        int rc = s_read(f, scratch, k, err, errlen);
        if (rc)
            return rc;
        n -= k;
    }
    return 0;
}

/* A gzip file must end right after the payload. */
static int s_check_end(s_file_t *f, uint8_t *scratch, char *err, size_t errlen)
{
    if (f->plain)
        return 0; /* the size was checked at open */
    uint64_t extra = 0;
    for (;;) {
        int got = gzread(f->gz, scratch, S_CHUNK);
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(f->gz, &zerr);
            return s_errf(err, errlen, ZPS_EIO, "%s: read error: %s", f->path,
                          zerr == Z_ERRNO ? strerror(errno) : msg);
        }
        if (got == 0)
            break;
        extra += (uint64_t)got;
    }
    if (extra)
        return s_errf(err, errlen, ZPS_EINVAL,
                      "%s: %llu bytes after the data the header describes (%llu bytes)", f->path,
                      (unsigned long long)extra, (unsigned long long)(f->hdr + f->payload));
    return 0;
}

static void s_close(s_file_t *f)
{
    if (f->gz)
        gzclose(f->gz);
    f->gz = NULL;
}

static const char *s_type_name(uint8_t t)
{
    switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return "unknown";
    }
}

/* Opens path and reads its header; labels: 1 for a labels file (1
 * dimension), 0 for images (>= 2). */
static int s_open(s_file_t *f, const char *path, int labels, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    struct stat st;
    if (stat(path, &st) != 0)
        return s_errf(err, errlen, ZPS_EIO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return s_errf(err, errlen, ZPS_EINVAL, "%s: not a regular file", path);
    f->size = (uint64_t)st.st_size;
    f->gz = gzopen(path, "rb");
    if (!f->gz)
        return s_errf(err, errlen, ZPS_EIO, "%s: %s", path, errno ? strerror(errno) : "cannot open");
    gzbuffer(f->gz, 1u << 17);
    uint8_t h[4];
    int got = gzread(f->gz, h, 4);
    f->plain = gzdirect(f->gz);
    if (got != 4)
        return s_errf(err, errlen, ZPS_EINVAL, "%s: not an IDX file (shorter than a header)", path);
    if (h[0] != 0 || h[1] != 0)
        return s_errf(err, errlen, ZPS_EINVAL,
                      "%s: not an IDX file (magic %02x %02x %02x %02x; expected 00 00 08 0N)",
                      path, h[0], h[1], h[2], h[3]);
    f->type = h[2];
    f->ndims = h[3];
    if (f->type != 0x08)
        return s_errf(err, errlen, ZPS_EINVAL,
                      "%s: IDX type 0x%02x (%s) is not supported: %s must be unsigned bytes (0x08)",
                      path, f->type, s_type_name(f->type), labels ? "labels" : "images");
    if (labels ? f->ndims != 1 : (f->ndims < 2 || f->ndims > S_MAX_DIMS))
        return s_errf(err, errlen, ZPS_EINVAL,
                      "%s: %u dimensions; %s", path, f->ndims,
                      labels ? "a labels file has 1 (the count)"
                             : "an images file has 2 to 8 (the count, then each image's shape)");
    uint8_t d[4 * S_MAX_DIMS];
    if (gzread(f->gz, d, 4u * f->ndims) != (int)(4u * f->ndims))
        return s_errf(err, errlen, ZPS_EINVAL, "%s: header ends early (%u dimensions announced)",
                      path, f->ndims);
    f->hdr = 4 + 4ull * f->ndims;
    uint64_t feat = 1;
    for (uint32_t i = 0; i < f->ndims; i++) {
        f->dims[i] = s_be32(d + 4 * i);
        if (i == 0)
            continue;
        if (f->dims[i] == 0)
            return s_errf(err, errlen, ZPS_EINVAL, "%s: dimension %u is 0", path, i + 1);
        feat *= f->dims[i];
        if (feat > S_MAX_FEATURES)
            return s_errf(err, errlen, ZPS_EINVAL, "%s: images of more than 2^24 pixels", path);
    }
    f->features = feat;
    /* count x features < 2^32 x 2^24: no overflow */
    const uint64_t n = (uint64_t)f->dims[0] * feat;
    f->payload = n;
    if (f->plain && f->size != f->hdr + f->payload)
        return s_errf(err, errlen, ZPS_EINVAL,
                      "%s: file is %llu bytes; its header (%u x ... = %llu values) says %llu",
                      path, (unsigned long long)f->size, f->dims[0], (unsigned long long)n,
                      (unsigned long long)(f->hdr + f->payload));
    return 0;
}

static int s_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int wk_idx_labels_name(const char *images, char *out, size_t outlen)
{
    size_t n = strlen(images);
    if (n + 1 > outlen)
        return ZPS_EINVAL;
    memcpy(out, images, n + 1);
    const char *slash = strrchr(out, '/');
    char *base = slash ? (char *)slash + 1 : out;
    char *im = NULL, *i3 = NULL;
    for (char *p = base; (p = strstr(p, "images")) != NULL; p++)
        im = p;
    for (char *p = base; (p = strstr(p, "idx3")) != NULL; p++)
        i3 = p;
    if (!im || !i3)
        return ZPS_EINVAL;
    memcpy(im, "labels", 6);
    i3[3] = '1';
    return 0;
}

/* Splits the spec into images and labels paths (malloc'd, one block). */
static int s_paths(const char *spec, char **images, char **labels, char *err, size_t errlen)
{
    size_t n = strlen(spec);
    const char *comma = strrchr(spec, ',');
    char *buf = malloc(2 * n + 8);
    if (!buf)
        return s_errf(err, errlen, ZPS_ENOMEM, "out of memory");
    *images = buf;
    *labels = buf + n + 1;
    if (comma && !s_exists(spec)) {
        size_t k = (size_t)(comma - spec);
        memcpy(buf, spec, k);
        buf[k] = '\0';
        memcpy(*labels, comma + 1, n - k);
        if (!buf[0] || !(*labels)[0]) {
            free(buf);
            return s_errf(err, errlen, ZPS_EINVAL, "'%s': want IMAGES,LABELS", spec);
        }
        return 0;
    }
    memcpy(buf, spec, n + 1);
    if (wk_idx_labels_name(spec, *labels, n + 7) != 0) {
        free(buf);
        return s_errf(err, errlen, ZPS_EINVAL,
                      "%s: cannot name its labels file (no 'images' and 'idx3' in the name); "
                      "give IMAGES,LABELS", spec);
    }
    if (!s_exists(*labels)) {
        /* the other compression */
        size_t m = strlen(*labels);
        char alt[4096];
        if (m > 3 && !strcmp(*labels + m - 3, ".gz"))
            snprintf(alt, sizeof alt, "%.*s", (int)(m - 3), *labels);
        else
            snprintf(alt, sizeof alt, "%s.gz", *labels);
        if (strlen(alt) <= n + 6 && s_exists(alt)) {
            memcpy(*labels, alt, strlen(alt) + 1);
        } else {
            int rc = s_errf(err, errlen, ZPS_EIO,
                            "%s: labels file %s (or %s) not found; give IMAGES,LABELS", spec,
                            *labels, alt);
            free(buf);
            return rc;
        }
    }
    return 0;
}

int wk_idx_sniff(const char *spec)
{
    if (!spec)
        return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s", spec);
    if (!s_exists(path)) {
        char *comma = strrchr(path, ',');
        if (!comma)
            return 0;
        *comma = '\0';
        if (!s_exists(path))
            return 0;
    }
    gzFile g = gzopen(path, "rb");
    if (!g)
        return 0;
    uint8_t h[4];
    int ok = gzread(g, h, 4) == 4 && h[0] == 0 && h[1] == 0 && h[2] == 0x08 && h[3] >= 2 &&
             h[3] <= S_MAX_DIMS;
    gzclose(g);
    return ok;
}

static uint64_t s_cut(uint64_t n, uint32_t i, uint32_t w)
{
    /* n * i / w without overflow for n < 2^63 */
    return (uint64_t)(((unsigned __int128)n * i) / w);
}

wk_idx_t *wk_idx_new(const wk_idx_conf_t *conf, char *err, size_t errlen)
{
    s_errf(err, errlen, 0, "%s", "");
    if (!conf || !conf->spec || !conf->spec[0]) {
        s_errf(err, errlen, ZPS_EINVAL, "no IDX input");
        return NULL;
    }
    uint32_t W = conf->nshards ? conf->nshards : 1;
    if (conf->shard >= W) {
        s_errf(err, errlen, ZPS_EINVAL, "shard %u out of range (%u shards)", conf->shard, W);
        return NULL;
    }
    char *ipath = NULL, *lpath = NULL;
    if (s_paths(conf->spec, &ipath, &lpath, err, errlen))
        return NULL;
    wk_idx_t *x = calloc(1, sizeof *x);
    uint8_t *scratch = malloc(S_CHUNK);
    s_file_t fi, fl;
    memset(&fi, 0, sizeof fi);
    memset(&fl, 0, sizeof fl);
    uint8_t *lab8 = NULL;
    if (!x || !scratch) {
        s_errf(err, errlen, ZPS_ENOMEM, "out of memory");
        goto fail;
    }
    x->conf = *conf;
    x->conf.spec = NULL;
    x->conf.nshards = W;
    if (s_open(&fi, ipath, 0, err, errlen) || s_open(&fl, lpath, 1, err, errlen))
        goto fail;
    if (fl.dims[0] != fi.dims[0]) {
        s_errf(err, errlen, ZPS_EINVAL, "%s has %u images but %s has %u labels", ipath,
               fi.dims[0], lpath, fl.dims[0]);
        goto fail;
    }
    x->total = fi.dims[0];
    x->features = (uint32_t)fi.features;
    x->lo = s_cut(x->total, conf->shard, W);
    x->rows = s_cut(x->total, conf->shard + 1, W) - x->lo;
    const uint64_t F = x->features;
    x->pix = malloc(x->rows * F + 1);
    x->labels = malloc((x->rows + 1) * sizeof *x->labels);
    lab8 = malloc(x->rows + 1);
    if (!x->pix || !x->labels || !lab8) {
        s_errf(err, errlen, ZPS_ENOMEM, "out of memory (%llu rows of %u pixels)",
               (unsigned long long)x->rows, x->features);
        goto fail;
    }
    if (s_skip(&fi, x->lo * F, scratch, err, errlen) ||
        s_read(&fi, x->pix, x->rows * F, err, errlen) ||
        s_skip(&fi, (x->total - x->lo - x->rows) * F, scratch, err, errlen) ||
        s_check_end(&fi, scratch, err, errlen))
        goto fail;
    if (s_skip(&fl, x->lo, scratch, err, errlen) || s_read(&fl, lab8, x->rows, err, errlen) ||
        s_skip(&fl, x->total - x->lo - x->rows, scratch, err, errlen) ||
        s_check_end(&fl, scratch, err, errlen))
        goto fail;
    for (uint64_t i = 0; i < x->rows; i++) {
        if (conf->labels == WK_LABEL_BINARY && lab8[i] > 1) {
            s_errf(err, errlen, ZPS_EINVAL,
                   "%s: label %u of row %llu is not 0 or 1 (binary models; use --model mlp "
                   "for classes)", lpath, lab8[i], (unsigned long long)(x->lo + i));
            goto fail;
        }
        x->labels[i] = (float)lab8[i];
    }
    if (conf->shuffle) {
        x->perm = malloc((x->rows + 1) * sizeof *x->perm);
        if (!x->perm || x->rows > UINT32_MAX) {
            s_errf(err, errlen, ZPS_ENOMEM, "out of memory");
            goto fail;
        }
    }
    s_close(&fi);
    s_close(&fl);
    free(lab8);
    free(scratch);
    free(ipath);
    x->epoch = 0;
    wk_idx_rewind(x); /* epoch 1: the permutation of seed index 0 */
    return x;
fail:
    s_close(&fi);
    s_close(&fl);
    free(lab8);
    free(scratch);
    free(ipath);
    wk_idx_destroy(&x);
    return NULL;
}

void wk_idx_destroy(wk_idx_t **xp)
{
    if (!xp || !*xp)
        return;
    wk_idx_t *x = *xp;
    free(x->pix);
    free(x->labels);
    free(x->perm);
    free(x->b_labels);
    free(x->b_vals);
    free(x->b_offsets);
    free(x->b_ids);
    free(x);
    *xp = NULL;
}

void wk_idx_rewind(wk_idx_t *x)
{
    if (!x)
        return;
    x->pos = 0;
    x->epoch++;
    if (!x->perm)
        return;
    const uint64_t n = x->rows, S = x->conf.shuffle;
    uint64_t rng = zps_mix64(x->conf.seed + (x->epoch - 1) * 0x9e3779b97f4a7c15ULL,
                             S_SHUFFLE_SEED);
    for (uint64_t i = 0; i < n; i++)
        x->perm[i] = (uint32_t)i;
    for (uint64_t w0 = 0; w0 < n; w0 += S) {
        uint64_t m = n - w0 < S ? n - w0 : S;
        uint32_t *p = x->perm + w0;
        for (uint64_t i = m; i-- > 1;) {
            uint64_t j = zps_rng_next(&rng) % (i + 1);
            uint32_t t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
    }
}

static int s_reserve(wk_idx_t *x, size_t rows, size_t nnz)
{
    if (rows > x->cap_rows) {
        float *l = realloc(x->b_labels, rows * sizeof *l);
        if (l)
            x->b_labels = l;
        size_t *o = realloc(x->b_offsets, (rows + 1) * sizeof *o);
        if (o)
            x->b_offsets = o;
        if (!l || !o)
            return ZPS_ENOMEM;
        x->cap_rows = rows;
    }
    if (nnz > x->cap_nnz) {
        float *v = realloc(x->b_vals, nnz * sizeof *v);
        if (v)
            x->b_vals = v;
        uint64_t *id = realloc(x->b_ids, nnz * sizeof *id);
        if (id)
            x->b_ids = id;
        if (!v || !id)
            return ZPS_ENOMEM;
        x->cap_nnz = nnz;
    }
    return 0;
}

long wk_idx_next(wk_idx_t *x, size_t max_rows, wk_batch_t *b)
{
    if (!x || !b || max_rows == 0)
        return ZPS_EINVAL;
    uint64_t left = x->rows - x->pos;
    size_t n = left < max_rows ? (size_t)left : max_rows;
    memset(b, 0, sizeof *b);
    if (n == 0)
        return 0;
    const size_t F = x->features;
    if (s_reserve(x, n, n * F > 0 ? n * F : 1) != 0)
        return ZPS_ENOMEM;
    const float inv255 = 1.0f / 255.0f;
    size_t k = 0;
    x->b_offsets[0] = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t row = x->perm ? x->perm[x->pos + i] : x->pos + i;
        const uint8_t *px = x->pix + row * F;
        for (size_t j = 0; j < F; j++) {
            if (px[j]) {
                x->b_ids[k] = j;
                x->b_vals[k] = (float)px[j] * inv255;
                k++;
            }
        }
        x->b_offsets[i + 1] = k;
        x->b_labels[i] = x->labels[row];
    }
    x->pos += n;
    b->n = n;
    b->labels = x->b_labels;
    b->offsets = x->b_offsets;
    b->ids = x->b_ids;
    b->vals = x->b_vals;
    return (long)n;
}

uint64_t wk_idx_rows(const wk_idx_t *x)
{
    return x ? x->pos : 0;
}

double wk_idx_progress(const wk_idx_t *x)
{
    return !x || x->rows == 0 ? 1.0 : (double)x->pos / (double)x->rows;
}

uint64_t wk_idx_total(const wk_idx_t *x)
{
    return x ? x->total : 0;
}

uint32_t wk_idx_features(const wk_idx_t *x)
{
    return x ? x->features : 0;
}

uint64_t wk_idx_first_row(const wk_idx_t *x)
{
    return x ? x->lo : 0;
}

uint64_t wk_idx_shard_rows(const wk_idx_t *x)
{
    return x ? x->rows : 0;
}
