/* wk_sparsify: top-k / threshold sparsification with error feedback and
 * DGC momentum correction (API and semantics in wk_sparsify.h).
 *
 * Table.  Slot = (hash >> 32) << 32 | (row + 1), 0 = empty, home index
 * hash & mask, linear probing, hash = zps_mix64(key, S_SEED).  The tag
 * rejects most foreign slots without touching their row.  Past 3/4 load the
 * slot array doubles and is rebuilt by walking the rows in order (sequential
 * reads, keys re-hashed); keys are never deleted, so there are no
 * tombstones.  The table belongs to one worker thread and is only touched
 * inside its calls, so a whole rebuild (tens of ms per million keys, once
 * per doubling) is acceptable; the server's zps_table grows incrementally
 * because it must answer other requests meanwhile.
 *
 * Rows.  [uint64 key | v: dim floats | u: dim floats, momentum only], the
 * stride rounded up to 8 bytes, in zero-filled slabs of 2^slab_shift rows
 * (the most that fit in 2 MB, at least one).  Row i lives at
 * slabs[i >> slab_shift] + (i & slab_mask) * stride and never moves.
 *
 * Memory.  Blocks of 2 MB or more (slabs, big slot arrays) are anonymous
 * mappings aligned to 2 MB with MADV_HUGEPAGE, as in zps_table: random
 * probes over hundreds of MB then do not miss the TLB on nearly every key
 * (best effort; with THP off they are plain 4 KB pages).  Smaller blocks
 * come from calloc.
 *
 * Lookups run as a pipeline over the keys of a call (s_pipe_*): the slot of
 * key i + 16 and the row of key i + 8 are prefetched while key i is
 * handled.  On the 2-core development VM a 1M-row push over a 2M-key
 * table costs ~80 ns per row of dim 1 once the keys exist.
 *
 * Step.  Pass 1 finds or inserts every key's row, updates v (and u) and
 * scores the row: squared L2 norm in double for topk, max |v| >= T for
 * threshold.  topk then runs a quickselect over (score, index) candidates
 * ordered by score descending, index ascending (keys are sorted, so index
 * order is key order): a strict total order, so the chosen set is exactly
 * the specified one and equal scores cost nothing.  Pivots are the median
 * of three positions drawn from a per-object zps_rng state (deterministic;
 * expected linear time on any input that does not know the state).  Pass 2
 * walks the rows in index order, copies the selected v to the output and
 * zeroes v and u.  When every row is going to be sent (topk with
 * ceil(ratio * n) == n, threshold 0) one streaming pass does it all
 * without scratch space.
 *
 * Out of memory.  A row that cannot be allocated (slab, or the slot array
 * cannot grow and is nearly full) is "forced": its gradient is staged in
 * its own out_vals row (momentum correction of a fresh row gives u = g,
 * v = g) and it is always selected; pass 2 moves rows towards the front of
 * out_vals only (output row j <= input row i), so staged rows are read
 * before anything overwrites them.  If even the per-step scratch cannot be
 * allocated, the streaming path sends every row.
 *
 * Scratch.  rows[n] (pointer to each v), cand[n] (16 bytes) and sel[n]
 * grow with the largest push (to exactly n, or by 1.5x) and are kept. */
#include "wk_sparsify.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "zps_hash.h"
#include "zps_rng.h"

#define S_SEED        0x3c6ef372fe94f82bULL /* table hashing, this module only */
#define S_MIN_SLOTS   64u
#define S_HUGE        ((size_t)2 << 20) /* huge page size and alignment */
#define S_PAGE        ((size_t)4096)
#define S_SLAB_BYTES  S_HUGE
#define S_MAX_ROWS    ((size_t)UINT32_MAX - 1) /* row + 1 fits in 32 bits */
#define S_MAX_DIM     (1u << 24)
#define S_TAG_MASK    0xffffffff00000000ULL
#define S_DSLOT       16u /* pipeline: keys from slot prefetch to use */
#define S_DROW        8u  /* pipeline: keys from row prefetch to use */
#define S_RING        32u /* hashes in flight, power of 2 > S_DSLOT */

typedef struct {
    double score;
    size_t idx;
} s_cand_t;

struct wk_sparsify {
    wk_sparsify_conf_t conf;
    uint32_t dim;
    int momentum;             /* rows carry u */
    size_t stride;            /* bytes per row */
    unsigned slab_shift;      /* rows per slab = 1 << slab_shift */
    uint64_t *slots;
    size_t mask;              /* slot count - 1 */
    unsigned char **slabs;
    size_t nslabs, slabs_cap;
    size_t slab_bytes;        /* stride << slab_shift */
    size_t nrows;
    /* per-step scratch, capacity scap rows */
    float **rows;
    s_cand_t *cand;
    unsigned char *sel;
    size_t scap;
    uint64_t pivot_state;     /* zps_rng state of the pivot draws */
};

/* Zero-filled block of n bytes: from S_HUGE up a 2 MB-aligned anonymous
 * mapping marked MADV_HUGEPAGE (best effort), else calloc.  s_mem_free
 * needs the same n. */
static void *s_mem_alloc(size_t n)
{
    if (n < S_HUGE)
        return calloc(1, n);
    size_t len = (n + S_PAGE - 1) & ~(S_PAGE - 1);
    if (len < n || len > SIZE_MAX - S_HUGE)
        return NULL;
    unsigned char *p = mmap(NULL, len + S_HUGE, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    size_t head = (S_HUGE - (uintptr_t)p % S_HUGE) % S_HUGE; /* a page multiple */
    unsigned char *q = p + head;
    if (head > 0)
        munmap(p, head);
    munmap(q + len, S_HUGE - head);
#ifdef MADV_HUGEPAGE
    (void)madvise(q, len, MADV_HUGEPAGE); /* THP may be off: 4 KB pages then */
#endif
    return q;
}

static void s_mem_free(void *p, size_t n)
{
    if (p == NULL)
        return;
    if (n < S_HUGE)
        free(p);
    else
        munmap(p, (n + S_PAGE - 1) & ~(S_PAGE - 1));
}

/* Bytes s_mem_alloc(n) takes (page-rounded mappings). */
static size_t s_mem_size(size_t n)
{
    return n < S_HUGE ? n : (n + S_PAGE - 1) & ~(S_PAGE - 1);
}

static inline uint64_t s_hash(uint64_t key)
{
    return zps_mix64(key, S_SEED);
}

static inline unsigned char *s_row(const wk_sparsify_t *s, size_t r)
{
    size_t rmask = ((size_t)1 << s->slab_shift) - 1;
    return s->slabs[r >> s->slab_shift] + (r & rmask) * s->stride;
}

static inline uint64_t s_row_key(const unsigned char *row)
{
    uint64_t k;
    memcpy(&k, row, sizeof k);
    return k;
}

static inline float *s_row_v(unsigned char *row)
{
    return (float *)(void *)(row + sizeof(uint64_t));
}

static int s_valid_conf(const wk_sparsify_conf_t *c)
{
    if (!(isfinite(c->momentum) && c->momentum >= 0.0f && c->momentum < 1.0f))
        return 0;
    switch (c->mode) {
    case WK_SPARSE_TOPK: return isfinite(c->ratio) && c->ratio > 0.0f && c->ratio <= 1.0f;
    case WK_SPARSE_THRESHOLD: return isfinite(c->threshold) && c->threshold >= 0.0f;
    default: return 0;
    }
}

wk_sparsify_t *wk_sparsify_new(const wk_sparsify_conf_t *c, uint32_t dim)
{
    if (c == NULL || dim == 0 || dim > S_MAX_DIM || !s_valid_conf(c))
        return NULL;
    wk_sparsify_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->conf = *c;
    s->dim = dim;
    s->momentum = c->momentum > 0.0f;
    size_t floats = (size_t)dim * (s->momentum ? 2 : 1);
    s->stride = (sizeof(uint64_t) + floats * sizeof(float) + 7) & ~(size_t)7;
    while (s->slab_shift < 30 && (s->stride << (s->slab_shift + 1)) <= S_SLAB_BYTES)
        s->slab_shift++;
    s->slab_bytes = s->stride << s->slab_shift;
    s->slots = s_mem_alloc(S_MIN_SLOTS * sizeof *s->slots);
    if (s->slots == NULL) {
        free(s);
        return NULL;
    }
    s->mask = S_MIN_SLOTS - 1;
    s->pivot_state = 0x9e3779b97f4a7c15ULL;
    return s;
}

void wk_sparsify_destroy(wk_sparsify_t **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    wk_sparsify_t *s = *sp;
    for (size_t i = 0; i < s->nslabs; i++)
        s_mem_free(s->slabs[i], s->slab_bytes);
    free(s->slabs);
    s_mem_free(s->slots, (s->mask + 1) * sizeof *s->slots);
    free(s->rows);
    free(s->cand);
    free(s->sel);
    free(s);
    *sp = NULL;
}

/* ---- table ------------------------------------------------------------- */

/* Doubles the slot array and re-inserts every row.  0 or -1 (no memory;
 * the old array stays). */
static int s_grow(wk_sparsify_t *s)
{
    size_t cap = (s->mask + 1) * 2;
    uint64_t *slots = s_mem_alloc(cap * sizeof *slots);
    if (slots == NULL)
        return -1;
    size_t mask = cap - 1;
    for (size_t r = 0; r < s->nrows; r++) {
        uint64_t h = s_hash(s_row_key(s_row(s, r)));
        size_t i = h & mask;
        while (slots[i] != 0)
            i = (i + 1) & mask;
        slots[i] = (h & S_TAG_MASK) | (uint64_t)(r + 1);
    }
    s_mem_free(s->slots, (s->mask + 1) * sizeof *s->slots);
    s->slots = slots;
    s->mask = mask;
    return 0;
}

/* A new zero row for key: its index, or SIZE_MAX when out of memory. */
static size_t s_new_row(wk_sparsify_t *s, uint64_t key)
{
    if (s->nrows >= S_MAX_ROWS)
        return SIZE_MAX;
    size_t r = s->nrows, slab = r >> s->slab_shift;
    if (slab == s->nslabs) {
        if (s->nslabs == s->slabs_cap) {
            size_t cap = s->slabs_cap ? 2 * s->slabs_cap : 16;
            unsigned char **p = realloc(s->slabs, cap * sizeof *p);
            if (p == NULL)
                return SIZE_MAX;
            s->slabs = p;
            s->slabs_cap = cap;
        }
        unsigned char *mem = s_mem_alloc(s->slab_bytes);
        if (mem == NULL)
            return SIZE_MAX;
        s->slabs[s->nslabs++] = mem;
    }
    memcpy(s_row(s, r), &key, sizeof key);
    s->nrows++;
    return r;
}

/* Slot index of key (hash h) or of the empty slot where it would go. */
static inline size_t s_probe(const wk_sparsify_t *s, uint64_t key, uint64_t h)
{
    uint64_t tag = h & S_TAG_MASK;
    size_t i = h & s->mask;
    for (;;) {
        uint64_t slot = s->slots[i];
        if (slot == 0)
            return i;
        if ((slot & S_TAG_MASK) == tag &&
            s_row_key(s_row(s, (size_t)(slot & 0xffffffffu) - 1)) == key)
            return i;
        i = (i + 1) & s->mask;
    }
}

/* v of key (hash h), inserting a zero row if absent; NULL when out of
 * memory. */
static float *s_upsert(wk_sparsify_t *s, uint64_t key, uint64_t h)
{
    size_t i = s_probe(s, key, h);
    if (s->slots[i] != 0)
        return s_row_v(s_row(s, (size_t)(s->slots[i] & 0xffffffffu) - 1));
    size_t cap = s->mask + 1;
    if ((s->nrows + 1) * 4 > cap * 3) {
        /* without a bigger array, tolerate up to 15/16 load */
        if (s_grow(s) == 0)
            i = s_probe(s, key, h);
        else if ((s->nrows + 1) * 16 > cap * 15)
            return NULL;
    }
    size_t r = s_new_row(s, key);
    if (r == SIZE_MAX)
        return NULL;
    s->slots[i] = (h & S_TAG_MASK) | (uint64_t)(r + 1);
    return s_row_v(s_row(s, r));
}

static const float *s_find(const wk_sparsify_t *s, uint64_t key)
{
    size_t i = s_probe(s, key, s_hash(key));
    if (s->slots[i] == 0)
        return NULL;
    return s_row_v(s_row(s, (size_t)(s->slots[i] & 0xffffffffu) - 1));
}

/* Lookup pipeline over the keys of a batch: the slot of key i + S_DSLOT
 * and the row its slot points to for key i + S_DROW are prefetched while
 * key i is handled, which hides most of the memory latency of random keys
 * in a big table.  Prefetches are hints: a grow in between is harmless. */
typedef struct {
    uint64_t h[S_RING];
} s_pipe_t;

static inline void s_pipe_slot(const wk_sparsify_t *s, s_pipe_t *p, const uint64_t *keys,
                               size_t i)
{
    uint64_t h = s_hash(keys[i]);
    p->h[i % S_RING] = h;
    __builtin_prefetch(&s->slots[h & s->mask]);
}

static inline void s_pipe_start(const wk_sparsify_t *s, s_pipe_t *p, const uint64_t *keys,
                                size_t n)
{
    for (size_t i = 0; i < n && i < S_DSLOT; i++)
        s_pipe_slot(s, p, keys, i);
}

/* Hash of key i, after prefetching for the keys ahead. */
static inline uint64_t s_pipe_next(const wk_sparsify_t *s, s_pipe_t *p, const uint64_t *keys,
                                   size_t n, size_t i)
{
    if (i + S_DSLOT < n)
        s_pipe_slot(s, p, keys, i + S_DSLOT);
    if (i + S_DROW < n) {
        uint64_t h = p->h[(i + S_DROW) % S_RING], slot = s->slots[h & s->mask];
        if (slot != 0 && ((slot ^ h) & S_TAG_MASK) == 0)
            __builtin_prefetch(s_row(s, (size_t)(slot & 0xffffffffu) - 1));
    }
    return p->h[i % S_RING];
}

/* ---- selection --------------------------------------------------------- */

/* Rows to send for topk: ceil(ratio * n) in [1, n], with ratio * n within
 * relative 2^-23 of an integer taken as that integer. */
static size_t s_topk_count(float ratio, size_t n)
{
    double x = (double)ratio * (double)n;
    double m = ceil(x - x * 0x1p-23);
    if (m < 1)
        return 1;
    return m >= (double)n ? n : (size_t)m;
}

static inline int s_better(const s_cand_t *a, const s_cand_t *b)
{
    return a->score > b->score || (a->score == b->score && a->idx < b->idx);
}

static inline void s_swap(s_cand_t *a, s_cand_t *b)
{
    s_cand_t t = *a;
    *a = *b;
    *b = t;
}

static inline size_t s_rand_below(uint64_t *st, size_t n)
{
    return (size_t)(zps_rng_next(st) % n);
}

/* Rearranges c[0..n) so that c[0..k) are the k best candidates (in no
 * particular order), 0 < k < n.  Lomuto partitions around the median of
 * three random elements; all candidates are distinct under s_better. */
static void s_select(s_cand_t *c, size_t n, size_t k, uint64_t *st)
{
    size_t lo = 0, hi = n; /* c[0..lo) better than c[lo..n); c[0..hi) better than c[hi..n) */
    while (lo < k && k < hi) {
        size_t len = hi - lo;
        size_t a = lo + s_rand_below(st, len), b = lo + s_rand_below(st, len),
               d = lo + s_rand_below(st, len);
        /* median of a, b, d under s_better */
        size_t m = s_better(&c[a], &c[b])
                       ? (s_better(&c[b], &c[d]) ? b : s_better(&c[a], &c[d]) ? d : a)
                       : (s_better(&c[a], &c[d]) ? a : s_better(&c[b], &c[d]) ? d : b);
        s_swap(&c[m], &c[hi - 1]);
        const s_cand_t p = c[hi - 1];
        size_t st_i = lo;
        for (size_t i = lo; i < hi - 1; i++) {
            if (s_better(&c[i], &p)) {
                s_swap(&c[i], &c[st_i]);
                st_i++;
            }
        }
        s_swap(&c[st_i], &c[hi - 1]); /* pivot in its final place */
        if (st_i == k || st_i + 1 == k)
            return;
        if (st_i < k)
            lo = st_i + 1;
        else
            hi = st_i;
    }
}

/* ---- step -------------------------------------------------------------- */

static int s_reserve(wk_sparsify_t *s, size_t n)
{
    if (n <= s->scap)
        return 0;
    size_t cap = s->scap + s->scap / 2; /* 1.5x, or exactly n if more */
    if (cap < n)
        cap = n;
    float **rows = realloc(s->rows, cap * sizeof *rows);
    if (rows == NULL)
        return -1;
    s->rows = rows;
    s_cand_t *cand = realloc(s->cand, cap * sizeof *cand);
    if (cand == NULL)
        return -1;
    s->cand = cand;
    unsigned char *sel = realloc(s->sel, cap);
    if (sel == NULL)
        return -1;
    s->sel = sel;
    s->scap = cap;
    return 0;
}

/* Adds gradient row g into the state row v (and u after it): v += g, or
 * u = m u + g; v += u. */
static inline void s_accumulate(const wk_sparsify_t *s, float *v, const float *g)
{
    uint32_t dim = s->dim;
    if (s->momentum) {
        float m = s->conf.momentum, *u = v + dim;
        for (uint32_t j = 0; j < dim; j++) {
            u[j] = m * u[j] + g[j];
            v[j] += u[j];
        }
    } else {
        for (uint32_t j = 0; j < dim; j++)
            v[j] += g[j];
    }
}

static inline void s_clear(const wk_sparsify_t *s, float *v)
{
    memset(v, 0, (size_t)s->dim * (s->momentum ? 2 : 1) * sizeof *v);
}

/* Every row is sent: one pass, no scratch. */
static size_t s_step_all(wk_sparsify_t *s, const uint64_t *keys, const float *g, size_t n,
                         uint64_t *out_keys, float *out_vals)
{
    size_t dim = s->dim;
    s_pipe_t pipe;
    s_pipe_start(s, &pipe, keys, n);
    for (size_t i = 0; i < n; i++) {
        float *v = s_upsert(s, keys[i], s_pipe_next(s, &pipe, keys, n, i));
        out_keys[i] = keys[i];
        if (v == NULL) { /* no state: the gradient as it is */
            memcpy(out_vals + i * dim, g + i * dim, dim * sizeof *g);
            continue;
        }
        s_accumulate(s, v, g + i * dim);
        memcpy(out_vals + i * dim, v, dim * sizeof *v);
        s_clear(s, v);
    }
    return n;
}

size_t wk_sparsify_step(wk_sparsify_t *s, const uint64_t *keys, const float *g, size_t n,
                        uint64_t *out_keys, float *out_vals)
{
    if (n == 0)
        return 0;
    int topk = s->conf.mode == WK_SPARSE_TOPK;
    size_t k = topk ? s_topk_count(s->conf.ratio, n) : 0;
    if ((topk && k == n) || (!topk && s->conf.threshold <= 0.0f) || s_reserve(s, n) != 0)
        return s_step_all(s, keys, g, n, out_keys, out_vals);

    size_t dim = s->dim, forced = 0;
    float thr = s->conf.threshold;
    s_pipe_t pipe;
    s_pipe_start(s, &pipe, keys, n);
    for (size_t i = 0; i < n; i++) {
        float *v = s_upsert(s, keys[i], s_pipe_next(s, &pipe, keys, n, i));
        int force = v == NULL;
        if (force) { /* staged in its own output row, always sent */
            v = out_vals + i * dim;
            memcpy(v, g + i * dim, dim * sizeof *g);
            forced++;
        } else {
            s_accumulate(s, v, g + i * dim);
        }
        s->rows[i] = v;
        if (topk) {
            double sq = 0;
            for (size_t j = 0; j < dim; j++)
                sq += (double)v[j] * v[j];
            s->cand[i].score = force ? INFINITY : sq;
            s->cand[i].idx = i;
        } else {
            float mx = 0;
            for (size_t j = 0; j < dim; j++) {
                float a = fabsf(v[j]);
                mx = a > mx ? a : mx;
            }
            s->sel[i] = force || mx >= thr;
        }
    }
    if (topk) {
        if (forced > k)
            k = forced; /* forced rows score +inf: all among the first k */
        memset(s->sel, 0, n);
        if (k < n)
            s_select(s->cand, n, k, &s->pivot_state);
        for (size_t i = 0; i < k; i++)
            s->sel[s->cand[i].idx] = 1;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!s->sel[i])
            continue;
        float *v = s->rows[i], *dst = out_vals + m * dim;
        out_keys[m] = keys[i];
        if (v == out_vals + i * dim) { /* forced: staged in place */
            if (m != i)
                memcpy(dst, v, dim * sizeof *v);
        } else {
            memcpy(dst, v, dim * sizeof *v);
            s_clear(s, v);
        }
        m++;
    }
    return m;
}

void wk_sparsify_feedback(wk_sparsify_t *s, const uint64_t *keys, const float *intended,
                          const float *sent, size_t m)
{
    size_t dim = s->dim;
    s_pipe_t pipe;
    s_pipe_start(s, &pipe, keys, m);
    for (size_t i = 0; i < m; i++) {
        float *v = s_upsert(s, keys[i], s_pipe_next(s, &pipe, keys, m, i));
        if (v == NULL)
            continue; /* out of memory: this correction is lost */
        const float *a = intended + i * dim, *b = sent + i * dim;
        for (size_t j = 0; j < dim; j++)
            v[j] += a[j] - b[j];
    }
}

void wk_sparsify_residual(const wk_sparsify_t *s, uint64_t key, float *out)
{
    const float *v = s_find(s, key);
    if (v)
        memcpy(out, v, s->dim * sizeof *v);
    else
        memset(out, 0, s->dim * sizeof *out);
}

int wk_sparsify_next(const wk_sparsify_t *s, size_t *cursor, uint64_t *key, const float **resid)
{
    if (*cursor >= s->nrows)
        return 0;
    unsigned char *row = s_row(s, (*cursor)++);
    *key = s_row_key(row);
    *resid = s_row_v(row);
    return 1;
}

size_t wk_sparsify_keys(const wk_sparsify_t *s)
{
    return s->nrows;
}

size_t wk_sparsify_bytes(const wk_sparsify_t *s)
{
    return sizeof *s + s_mem_size((s->mask + 1) * sizeof *s->slots) +
           s->slabs_cap * sizeof *s->slabs + s->nslabs * s_mem_size(s->slab_bytes) +
           s->scap * (sizeof *s->rows + sizeof *s->cand + sizeof *s->sel);
}
