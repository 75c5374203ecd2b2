/* zps_table: key -> row hash table (the full design comment is in zps_table.h).
 *
 * Slot = (hash >> 32) << 32 | (row + 1), at home index hash & mask, hash =
 * zps_mix64(key, ZPS_SEED_TABLE); probes follow s_step's line-first order.
 * Rows are [uint64 key][row_floats floats] with the stride rounded up to 8,
 * in zero-filled slabs (so new rows are zero) of ZPS_TABLE_SLAB_ROWS rows,
 * 2 MB or more.
 *
 * Memory: blocks of 2 MB or more (every slab, slot arrays from 256K slots)
 * are anonymous mappings aligned to 2 MB and marked MADV_HUGEPAGE (except a
 * small table's first slab), so that with transparent huge pages in
 * "madvise" (or "always") mode random probes over hundreds of MB do not miss
 * the TLB on nearly every key.  Where THP is off the madvise fails, which is
 * ignored: the mapping works with 4 KB pages.  Smaller slot arrays come from
 * the heap, 64-byte aligned.  zps_table_bytes counts what was allocated
 * (mapping lengths are page-rounded; a huge page never extends past a
 * mapping, so it adds nothing unaccounted).
 *
 * Load: at most 3/4 (ZT_LOAD_NUM / ZT_LOAD_DEN).  7/8 was measured too: an
 * unsuccessful probe (a miss, an insert) averages ~34 slots at load 7/8
 * against ~9 at 3/4, and misses and inserts near the top of the range cost
 * about twice as much, for ~7% less memory on average.
 *
 * Incremental growth: at load > 3/4 a 2x array becomes `slots` and the
 * previous one becomes `old`.  `old` is never written again; each operation
 * copies the next few old slots into `slots` (re-hashing the key read from
 * the row) and lookups try `slots`, then `old`.  Nothing is removed from
 * `old`, so its probe chains stay intact while it drains, and a hit there is
 * the right row whether or not that slot was already copied.  Inserts go
 * only to `slots` and only after both arrays missed, so no key is stored
 * twice.  A grow starts at 3/4 * old_cap keys; `slots` (2 * old_cap) reaches
 * its own 3/4 only after another 3/4 * old_cap inserts, while migration
 * copies 64 old slots per single call and 16 per key of a batch, so it is
 * done within old_cap / 16 inserts.  (Should that ever not hold, e.g. at the
 * tail of a batch, s_grow finishes the pending migration first.) */
#include "zps_table.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "zps_err.h"
#include "zps_hash.h"

#define ZT_MIN_SLOTS   8u   /* one line: s_step needs mask >= 7 */
#define ZT_LOAD_NUM    3u   /* maximum load ZT_LOAD_NUM / ZT_LOAD_DEN */
#define ZT_LOAD_DEN    4u
#define ZT_MIGRATE_OP  64u  /* old slots copied per single find / upsert */
#define ZT_MIGRATE_KEY 16u  /* old slots copied per key of a batch call */
#define ZT_MIGRATE_GAP 16u  /* batch: keys between migration steps */
#define ZT_BLOCK       16u  /* migration: rows prefetched together */
#define PS_DSLOT       32u  /* batch pipeline: keys from slot prefetch to scan */
#define PS_DROW        16u  /* batch pipeline: keys from row prefetch to resolve */
#define PS_RING        128u /* pipeline state ring, > PS_DSLOT + PS_DROW, power of 2 */
#define PS_MAX_ROWS    ((size_t)UINT32_MAX) /* row + 1 must fit in 32 bits */
#define PS_TAG_MASK    0xffffffff00000000ull
#define PS_HUGE        ((size_t)2 << 20)    /* huge page size and alignment */
#define PS_PAGE        ((size_t)4096)
/* the batch pipeline's stages are inlined, and s_batch into both callers,
 * so the steady-state loop is straight code with `upsert` a constant */
#define PS_INLINE      static inline __attribute__((always_inline))

struct zps_table {
    uint64_t *slots;        /* current slot array; every insert goes here */
    size_t mask;            /* slot count - 1 */
    uint64_t *old;          /* previous array while a grow is in progress */
    size_t old_mask;
    size_t old_pos;         /* old slots below this index are copied */
    unsigned char **slabs;  /* ZPS_TABLE_SLAB_ROWS rows each */
    size_t nslabs, slabs_cap;
    size_t nrows;
    size_t stride;          /* bytes per row: key + floats, multiple of 8 */
    size_t slab_bytes;      /* stride * ZPS_TABLE_SLAB_ROWS */
    int straddle;           /* a row may span two cache lines */
    int big;                /* hinted at half a slab or more of rows */
    uint32_t row_floats;
    /* deletion (zps_table_delete): a deleted key's slot becomes a tombstone
     * (ZT_TOMB), its row goes on a free list and is marked in `dead` (one
     * bit per row, NULL until the first delete), and the next insert takes
     * a free row before a new one */
    size_t nlive;           /* keys stored (nrows less the free rows) */
    size_t ntomb;           /* tombstones in `slots` */
    uint32_t *free_rows;
    size_t nfree, free_cap;
    uint64_t *dead;         /* bit per row: 1 = free */
    size_t dead_words;
};

/* A tombstone: low 32 bits 0 (no row), so no live slot equals it; no key's
 * tag is ZT_TOMB either (s_tag), so a probe steps over it like over any
 * other key's slot. */
#define ZT_TOMB PS_TAG_MASK

static inline uint64_t s_tag(uint64_t h)
{
    uint64_t t = h & PS_TAG_MASK;
    return t == ZT_TOMB ? t ^ ((uint64_t)1 << 32) : t;
}

static inline int s_live_slot(uint64_t v)
{
    return (uint32_t)v != 0;
}

/* Zero-filled block of n bytes: >= PS_HUGE, a 2 MB-aligned anonymous mapping
 * (with huge pages requested if `huge`); else 64-byte aligned from the heap.
 * s_mem_free needs the same n. */
static void *s_mem_alloc(size_t n, int huge)
{
    if (n < PS_HUGE) {
        size_t len = (n + 63) & ~(size_t)63;
        void *p = len >= n ? aligned_alloc(64, len) : NULL;
        if (p != NULL)
            memset(p, 0, len);
        return p;
    }
    size_t len = (n + PS_PAGE - 1) & ~(PS_PAGE - 1);
    if (len < n || len > SIZE_MAX - PS_HUGE)
        return NULL;
    unsigned char *p = mmap(NULL, len + PS_HUGE, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    size_t head = (PS_HUGE - (uintptr_t)p % PS_HUGE) % PS_HUGE; /* page multiple */
    unsigned char *q = p + head;
    if (head > 0)
        munmap(p, head);
    munmap(q + len, PS_HUGE - head);
#ifdef MADV_HUGEPAGE
    if (huge)
        (void)madvise(q, len, MADV_HUGEPAGE); /* best effort: THP may be off */
#else
    (void)huge;
#endif
    return q;
}

static void s_mem_free(void *p, size_t n)
{
    if (p == NULL)
        return;
    if (n < PS_HUGE)
        free(p);
    else
        munmap(p, (n + PS_PAGE - 1) & ~(PS_PAGE - 1));
}

/* Bytes s_mem_alloc(n) really takes. */
static size_t s_mem_size(size_t n)
{
    return n < PS_HUGE ? (n + 63) & ~(size_t)63 : (n + PS_PAGE - 1) & ~(PS_PAGE - 1);
}

static inline unsigned char *s_row_base(const zps_table_t *t, size_t row)
{
    return t->slabs[row / ZPS_TABLE_SLAB_ROWS] + (row % ZPS_TABLE_SLAB_ROWS) * t->stride;
}

static inline unsigned char *s_slot_row(const zps_table_t *t, uint64_t slot)
{
    return s_row_base(t, (size_t)(uint32_t)slot - 1u);
}

static inline uint64_t s_row_key(const unsigned char *base)
{
    return *(const uint64_t *)(const void *)base;
}

static inline float *s_row_floats(unsigned char *base)
{
    return (float *)(void *)(base + sizeof(uint64_t));
}

static inline uint64_t s_hash(uint64_t key)
{
    return zps_mix64(key, ZPS_SEED_TABLE);
}

/* Next slot of a probe sequence.  The sequence visits the home slot, the
 * rest of its 8-slot line (wrapping around within the line), then each
 * following line from its start: a probe leaves the line that was
 * prefetched only when that line is full.  (Plain linear probing leaves it
 * whenever the run from the home slot crosses the line end: 9% of hits at
 * load 0.6 against 2% here.)  `first` is the slot where the probe entered
 * the current line; arrays are 64-byte aligned so lines are cache lines. */
static inline size_t s_step(size_t i, size_t *first, size_t mask)
{
    i = (i & ~(size_t)7) | ((i + 1) & 7);
    if (i == *first) {
        i = ((i | 7) + 1) & mask;
        *first = i;
    }
    return i;
}

/* Row of key in one slot array, or NULL. */
static inline float *s_probe(const zps_table_t *t, const uint64_t *slots, size_t mask,
                             uint64_t key, uint64_t h)
{
    const uint64_t tag = s_tag(h);
    for (size_t i = h & mask, first = i;; i = s_step(i, &first, mask)) {
        uint64_t v = slots[i];
        if (v == 0)
            return NULL;
        if ((v & PS_TAG_MASK) == tag) {
            unsigned char *b = s_slot_row(t, v);
            if (s_row_key(b) == key)
                return s_row_floats(b);
        }
    }
}

/* First row whose tag matches h (the likely hit), or NULL; batch prefetch. */
static inline unsigned char *s_candidate(const zps_table_t *t, const uint64_t *slots,
                                         size_t mask, uint64_t h)
{
    const uint64_t tag = s_tag(h);
    for (size_t i = h & mask, first = i;; i = s_step(i, &first, mask)) {
        uint64_t v = slots[i];
        if (v == 0)
            return NULL;
        if ((v & PS_TAG_MASK) == tag)
            return s_slot_row(t, v);
    }
}

static inline float *s_find_h(const zps_table_t *t, uint64_t key, uint64_t h)
{
    float *r = s_probe(t, t->slots, t->mask, key, h);
    if (r == NULL && t->old != NULL)
        r = s_probe(t, t->old, t->old_mask, key, h);
    return r;
}

/* Store v in the first empty or tombstone slot of h's probe sequence (the
 * key is known absent from both arrays, so a lookup meets its slot before
 * any empty one).  Returns 1 when it took a tombstone. */
static inline int s_place(uint64_t *slots, size_t mask, uint64_t h, uint64_t v)
{
    size_t i = h & mask, first = i;
    while (slots[i] != 0 && slots[i] != ZT_TOMB)
        i = s_step(i, &first, mask);
    int tomb = slots[i] == ZT_TOMB;
    slots[i] = v;
    return tomb;
}

/* Copy up to n more old slots into the current array; free `old` when done. */
static void s_migrate(zps_table_t *t, size_t n)
{
    size_t end = t->old_mask + 1;
    if (n < end - t->old_pos)
        end = t->old_pos + n;
    size_t i = t->old_pos;
    while (i < end) {
        uint64_t v[ZT_BLOCK], h[ZT_BLOCK];
        unsigned m = 0;
        for (; i < end && m < ZT_BLOCK; i++) {
            if (s_live_slot(t->old[i])) {
                v[m] = t->old[i];
                __builtin_prefetch(s_slot_row(t, v[m]));
                m++;
            }
        }
        for (unsigned k = 0; k < m; k++) {
            h[k] = s_hash(s_row_key(s_slot_row(t, v[k])));
            __builtin_prefetch(&t->slots[h[k] & t->mask], 1);
        }
        for (unsigned k = 0; k < m; k++)
            t->ntomb -= (size_t)s_place(t->slots, t->mask, h[k], v[k]);
    }
    t->old_pos = end;
    if (end == t->old_mask + 1) {
        s_mem_free(t->old, (t->old_mask + 1) * sizeof(uint64_t));
        t->old = NULL;
        t->old_mask = 0;
        t->old_pos = 0;
    }
}

static int s_grow(zps_table_t *t)
{
    if (t->old != NULL)
        s_migrate(t, SIZE_MAX);
    /* mostly tombstones: a new array of the same size drops them */
    size_t ncap = (t->nlive + 1) * ZT_LOAD_DEN * 2 <= (t->mask + 1) * ZT_LOAD_NUM
                      ? t->mask + 1 : (t->mask + 1) * 2;
    if (ncap > SIZE_MAX / sizeof(uint64_t))
        return ZPS_ENOMEM;
    uint64_t *ns = s_mem_alloc(ncap * sizeof *ns, 1);
    if (ns == NULL)
        return ZPS_ENOMEM;
    t->old = t->slots;
    t->old_mask = t->mask;
    t->old_pos = 0;
    t->slots = ns;
    t->mask = ncap - 1;
    t->ntomb = 0; /* those of the old array are dropped as it drains */
    return 0;
}

static inline int s_is_dead(const zps_table_t *t, size_t row)
{
    return t->dead != NULL && (t->dead[row >> 6] >> (row & 63) & 1);
}

/* The free-row bits cover nslabs slabs (no-op before the first delete). */
static int s_dead_cover(zps_table_t *t, size_t nslabs)
{
    size_t w = nslabs * (ZPS_TABLE_SLAB_ROWS / 64);
    if (t->dead == NULL || w <= t->dead_words)
        return 0;
    uint64_t *d = realloc(t->dead, w * sizeof *d);
    if (d == NULL)
        return ZPS_ENOMEM;
    memset(d + t->dead_words, 0, (w - t->dead_words) * sizeof *d);
    t->dead = d;
    t->dead_words = w;
    return 0;
}

/* Base of row t->nrows, allocating its slab if needed; NULL on ENOMEM. */
static unsigned char *s_next_row(zps_table_t *t)
{
    size_t s = t->nrows / ZPS_TABLE_SLAB_ROWS;
    if (s == t->nslabs) {
        if (t->nslabs == t->slabs_cap) {
            size_t ncap = t->slabs_cap ? t->slabs_cap * 2 : 4;
            unsigned char **p = realloc(t->slabs, ncap * sizeof *p);
            if (p == NULL)
                return NULL;
            t->slabs = p;
            t->slabs_cap = ncap;
        }
        /* a small table's first slab keeps 4 KB pages: its RSS stays
         * proportional to its rows instead of a 2 MB page at once */
        if (s_dead_cover(t, t->nslabs + 1) != 0)
            return NULL;
        unsigned char *slab = s_mem_alloc(t->slab_bytes, t->nslabs > 0 || t->big);
        if (slab == NULL)
            return NULL;
        t->slabs[t->nslabs++] = slab;
    }
    return s_row_base(t, t->nrows);
}

/* Insert key (known absent from both arrays): a free row if there is one,
 * else a new one; NULL on ENOMEM. */
static float *s_insert(zps_table_t *t, uint64_t key, uint64_t h)
{
    if (t->nfree == 0 && t->nrows >= PS_MAX_ROWS)
        return NULL;
    if ((t->nlive + t->ntomb + 1) * ZT_LOAD_DEN > (t->mask + 1) * ZT_LOAD_NUM && s_grow(t) != 0)
        return NULL;
    size_t row;
    unsigned char *b;
    if (t->nfree > 0) {
        row = t->free_rows[--t->nfree];
        b = s_row_base(t, row);
        memset(b, 0, t->stride);
        t->dead[row >> 6] &= ~((uint64_t)1 << (row & 63));
    } else {
        if ((b = s_next_row(t)) == NULL)
            return NULL;
        row = t->nrows++;
    }
    *(uint64_t *)(void *)b = key;
    t->ntomb -= (size_t)s_place(t->slots, t->mask, h, s_tag(h) | (uint64_t)(row + 1));
    t->nlive++;
    return s_row_floats(b);
}

/* Index of key's slot in one array, or SIZE_MAX. */
static size_t s_probe_slot(const zps_table_t *t, const uint64_t *slots, size_t mask, uint64_t key,
                           uint64_t h)
{
    const uint64_t tag = s_tag(h);
    for (size_t i = h & mask, first = i;; i = s_step(i, &first, mask)) {
        uint64_t v = slots[i];
        if (v == 0)
            return SIZE_MAX;
        if ((v & PS_TAG_MASK) == tag && s_row_key(s_slot_row(t, v)) == key)
            return i;
    }
}

int zps_table_delete(zps_table_t *t, uint64_t key)
{
    if (t->dead == NULL) {
        size_t w = t->nslabs * (ZPS_TABLE_SLAB_ROWS / 64);
        if ((t->dead = calloc(w ? w : 1, sizeof *t->dead)) == NULL)
            return ZPS_ENOMEM;
        t->dead_words = w;
    }
    if (t->nfree == t->free_cap) {
        size_t ncap = t->free_cap ? t->free_cap * 2 : 1024;
        uint32_t *f = realloc(t->free_rows, ncap * sizeof *f);
        if (f == NULL)
            return ZPS_ENOMEM;
        t->free_rows = f;
        t->free_cap = ncap;
    }
    uint64_t h = s_hash(key), v = 0;
    /* both arrays: a slot of `old` already copied is also in `slots`, and a
     * lookup that missed `slots` would still find it there */
    size_t i = s_probe_slot(t, t->slots, t->mask, key, h);
    if (i != SIZE_MAX) {
        v = t->slots[i];
        t->slots[i] = ZT_TOMB;
        t->ntomb++;
    }
    if (t->old != NULL && (i = s_probe_slot(t, t->old, t->old_mask, key, h)) != SIZE_MAX) {
        v = t->old[i];
        t->old[i] = ZT_TOMB; /* skipped by the migration */
    }
    if (v == 0)
        return 0;
    size_t row = (size_t)(uint32_t)v - 1u;
    t->dead[row >> 6] |= (uint64_t)1 << (row & 63);
    t->free_rows[t->nfree++] = (uint32_t)row;
    t->nlive--;
    return 1;
}

static inline float *s_upsert_h(zps_table_t *t, uint64_t key, uint64_t h, int *inserted)
{
    float *r = s_find_h(t, key, h);
    if (r != NULL) {
        *inserted = 0;
        return r;
    }
    r = s_insert(t, key, h);
    *inserted = r != NULL;
    return r;
}

zps_table_t *zps_table_new(uint32_t row_floats, size_t capacity_hint)
{
    if (row_floats == 0)
        return NULL;
    if (capacity_hint > PS_MAX_ROWS)
        capacity_hint = PS_MAX_ROWS;
    /* keys <= ZT_LOAD_NUM / ZT_LOAD_DEN of the slots */
    size_t need = capacity_hint + (capacity_hint * (ZT_LOAD_DEN - ZT_LOAD_NUM) +
                                   ZT_LOAD_NUM - 1) / ZT_LOAD_NUM;
    size_t cap = ZT_MIN_SLOTS;
    while (cap < need && cap <= SIZE_MAX / 2)
        cap *= 2;
    size_t stride = ((size_t)8 + (size_t)4 * row_floats + 7) & ~(size_t)7;
    /* slabs are >= 2 MB (huge pages): ZPS_TABLE_SLAB_ROWS * 16 bytes at least */
    _Static_assert(ZPS_TABLE_SLAB_ROWS * 16u >= PS_HUGE, "slabs below a huge page");
    if (stride > SIZE_MAX / ZPS_TABLE_SLAB_ROWS)
        return NULL;

    zps_table_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->row_floats = row_floats;
    t->stride = stride;
    t->slab_bytes = stride * ZPS_TABLE_SLAB_ROWS;
    /* rows of 16, 32 or 64 bytes in 2 MB-aligned slabs never straddle lines */
    t->straddle = 64 % stride != 0;
    t->mask = cap - 1;
    t->big = capacity_hint >= ZPS_TABLE_SLAB_ROWS / 2;
    t->slots = s_mem_alloc(cap * sizeof *t->slots, 1);
    t->slabs_cap = (capacity_hint + ZPS_TABLE_SLAB_ROWS - 1) / ZPS_TABLE_SLAB_ROWS;
    if (t->slabs_cap > 0)
        t->slabs = malloc(t->slabs_cap * sizeof *t->slabs);
    if (t->slots == NULL || (t->slabs_cap > 0 && t->slabs == NULL)) {
        zps_table_destroy(&t);
        return NULL;
    }
    return t;
}

void zps_table_destroy(zps_table_t **tp)
{
    if (tp == NULL || *tp == NULL)
        return;
    zps_table_t *t = *tp;
    for (size_t i = 0; i < t->nslabs; i++)
        s_mem_free(t->slabs[i], t->slab_bytes);
    free(t->slabs);
    free(t->free_rows);
    free(t->dead);
    s_mem_free(t->slots, (t->mask + 1) * sizeof(uint64_t));
    s_mem_free(t->old, (t->old_mask + 1) * sizeof(uint64_t));
    free(t);
    *tp = NULL;
}

float *zps_table_find(zps_table_t *t, uint64_t key)
{
    if (t->old != NULL)
        s_migrate(t, ZT_MIGRATE_OP);
    return s_find_h(t, key, s_hash(key));
}

float *zps_table_upsert(zps_table_t *t, uint64_t key, int *inserted)
{
    int dummy;
    if (t->old != NULL)
        s_migrate(t, ZT_MIGRATE_OP);
    return s_upsert_h(t, key, s_hash(key), inserted ? inserted : &dummy);
}

/* Batch pipeline stage A: hash key i and prefetch its home slot line (in
 * both arrays while a grow is in progress). */
PS_INLINE void s_stage_hash(const zps_table_t *t, const uint64_t *keys, size_t i,
                            uint64_t *h)
{
    uint64_t hi = s_hash(keys[i]);
    h[i % PS_RING] = hi;
    __builtin_prefetch(&t->slots[hi & t->mask]);
    if (t->old != NULL)
        __builtin_prefetch(&t->old[hi & t->old_mask]);
}

/* Stage B: scan key i's slots for the first tag match and prefetch its row. */
PS_INLINE void s_stage_scan(const zps_table_t *t, size_t i, const uint64_t *h,
                            unsigned char **cand)
{
    size_t r = i % PS_RING;
    unsigned char *c = s_candidate(t, t->slots, t->mask, h[r]);
    if (c == NULL && t->old != NULL)
        c = s_candidate(t, t->old, t->old_mask, h[r]);
    /* The row prefetch is written here, not in a helper: GCC 12 deems a
     * function that only prefetches free of side effects (IPA modref) and
     * deletes calls to it. */
    if (c != NULL) {
        __builtin_prefetch(c);
        if (t->straddle) { /* both lines of a row that spans two */
            const unsigned char *e = c + t->stride - 1;
            if ((((uintptr_t)c ^ (uintptr_t)e) & ~(uintptr_t)63) != 0)
                __builtin_prefetch(e);
        }
    }
    cand[r] = c;
}

/* Stage C: resolve key k.  Returns 0, or -1 when an insert failed. */
PS_INLINE int s_stage_resolve(zps_table_t *t, const uint64_t *keys, size_t k,
                              const uint64_t *h, unsigned char *const *cand,
                              float **rows, uint8_t *inserted, int upsert)
{
    size_t r = k % PS_RING;
    const uint64_t key = keys[k];
    unsigned char *c = cand[r];
    float *row;
    int ins = 0;
    if (c != NULL && s_row_key(c) == key)
        row = s_row_floats(c);
    else if (upsert)
        row = s_upsert_h(t, key, h[r], &ins);
    else if (c == NULL) /* find: no tag match in either array, and */
        row = NULL;     /* migration since then only copied slots */
    else
        row = s_find_h(t, key, h[r]);
    rows[k] = row;
    if (upsert) {
        if (inserted != NULL)
            inserted[k] = (uint8_t)ins;
        if (row == NULL)
            return -1;
    }
    return 0;
}

/* Batch lookup as a software pipeline: while key i is hashed and its slot
 * line prefetched (stage A), key i - PS_DSLOT has its slots scanned for the
 * first tag match, the candidate, whose row is prefetched (B), and key
 * i - PS_DSLOT - PS_DROW is resolved (C): the candidate row if its key
 * matches, else a full lookup or upsert.  Measured here (2 vCPUs, ~12 ns per
 * random DRAM line at best), distances from 16 to 64 keys all perform alike:
 * the memory system, not the lead time, is the limit.  The steady state runs
 * the three stages without bounds tests, in blocks of ZT_MIGRATE_GAP keys
 * with one migration step each while a grow is in progress.  Candidates are
 * only hints: rows never move, so a candidate whose key matches is right
 * even if an insert in between grew the table.  Returns the number of keys
 * done (< n only when an insert ran out of memory). */
PS_INLINE size_t s_batch(zps_table_t *t, const uint64_t *keys, size_t n, float **rows,
                         uint8_t *inserted, int upsert)
{
    enum { LAG = PS_DSLOT + PS_DROW };
    _Static_assert(LAG < PS_RING && (PS_RING & (PS_RING - 1)) == 0, "pipeline ring");
    uint64_t h[PS_RING];
    unsigned char *cand[PS_RING];
    size_t i = 0;
    /* fill: stages A and B only */
    for (; i < LAG && i < n; i++) {
        if (i % ZT_MIGRATE_GAP == 0 && t->old != NULL)
            s_migrate(t, ZT_MIGRATE_GAP * ZT_MIGRATE_KEY);
        s_stage_hash(t, keys, i, h);
        if (i >= PS_DSLOT)
            s_stage_scan(t, i - PS_DSLOT, h, cand);
    }
    /* steady state, one migration step per ZT_MIGRATE_GAP keys */
    for (; i + ZT_MIGRATE_GAP <= n; ) {
        if (t->old != NULL)
            s_migrate(t, ZT_MIGRATE_GAP * ZT_MIGRATE_KEY);
        for (size_t e = i + ZT_MIGRATE_GAP; i < e; i++) {
            s_stage_hash(t, keys, i, h);
            s_stage_scan(t, i - PS_DSLOT, h, cand);
            if (s_stage_resolve(t, keys, i - LAG, h, cand, rows, inserted, upsert))
                return i - LAG;
        }
    }
    /* tail and drain */
    for (; i < n + LAG; i++) {
        if (i < n) {
            if (i % ZT_MIGRATE_GAP == 0 && t->old != NULL)
                s_migrate(t, ZT_MIGRATE_GAP * ZT_MIGRATE_KEY);
            s_stage_hash(t, keys, i, h);
        }
        if (i >= PS_DSLOT && i - PS_DSLOT < n)
            s_stage_scan(t, i - PS_DSLOT, h, cand);
        if (i >= LAG && s_stage_resolve(t, keys, i - LAG, h, cand, rows, inserted, upsert))
            return i - LAG;
    }
    return n;
}

void zps_table_find_batch(zps_table_t *t, const uint64_t *keys, size_t n, float **rows)
{
    s_batch(t, keys, n, rows, NULL, 0);
}

int zps_table_upsert_batch(zps_table_t *t, const uint64_t *keys, size_t n, float **rows,
                          uint8_t *inserted)
{
    return s_batch(t, keys, n, rows, inserted, 1) == n ? 0 : ZPS_ENOMEM;
}

/* Slot-array size that holds rows keys at the maximum load. */
static size_t s_cap_for(size_t rows)
{
    size_t need = rows + (rows * (ZT_LOAD_DEN - ZT_LOAD_NUM) + ZT_LOAD_NUM - 1) / ZT_LOAD_NUM;
    size_t cap = ZT_MIN_SLOTS;
    while (cap < need && cap <= SIZE_MAX / 4)
        cap *= 2;
    return cap;
}

int zps_table_reserve(zps_table_t *t, size_t extra)
{
    if (extra == 0)
        return 0;
    /* free rows first, then new ones */
    size_t fresh = extra > t->nfree ? extra - t->nfree : 0;
    if (fresh > PS_MAX_ROWS - t->nrows)
        return ZPS_ENOMEM;
    size_t rows = t->nrows + fresh;
    /* slabs first: a failure here leaves only unused zeroed slabs behind */
    size_t nslabs = (rows + ZPS_TABLE_SLAB_ROWS - 1) / ZPS_TABLE_SLAB_ROWS;
    if (nslabs > t->slabs_cap) {
        unsigned char **p = realloc(t->slabs, nslabs * sizeof *p);
        if (p == NULL)
            return ZPS_ENOMEM;
        t->slabs = p;
        t->slabs_cap = nslabs;
    }
    if (s_dead_cover(t, nslabs) != 0)
        return ZPS_ENOMEM;
    while (t->nslabs < nslabs) {
        unsigned char *slab = s_mem_alloc(t->slab_bytes, t->nslabs > 0 || t->big);
        if (slab == NULL)
            return ZPS_ENOMEM;
        t->slabs[t->nslabs++] = slab;
    }
    /* then a slot array that takes every key without growing again: an
     * insert grows when (nlive + ntomb + 1) * DEN > cap * NUM */
    size_t keys = t->nlive + extra;
    if ((keys + t->ntomb) * ZT_LOAD_DEN <= (t->mask + 1) * ZT_LOAD_NUM)
        return 0;
    size_t ncap = s_cap_for(keys);
    if (ncap > SIZE_MAX / sizeof(uint64_t))
        return ZPS_ENOMEM;
    uint64_t *ns = s_mem_alloc(ncap * sizeof *ns, 1);
    if (ns == NULL)
        return ZPS_ENOMEM;
    if (t->old != NULL)
        s_migrate(t, SIZE_MAX);
    t->old = t->slots;
    t->old_mask = t->mask;
    t->old_pos = 0;
    t->slots = ns;
    t->mask = ncap - 1;
    t->ntomb = 0;
    return 0;
}

size_t zps_table_bytes_with(const zps_table_t *t, size_t extra)
{
    size_t b = zps_table_bytes(t);
    if (extra == 0)
        return b;
    size_t fresh = extra > t->nfree ? extra - t->nfree : 0;
    if (fresh > PS_MAX_ROWS - t->nrows)
        return SIZE_MAX;
    size_t rows = t->nrows + fresh;
    size_t nslabs = (rows + ZPS_TABLE_SLAB_ROWS - 1) / ZPS_TABLE_SLAB_ROWS;
    if (nslabs > t->nslabs)
        b += (nslabs - t->nslabs) * s_mem_size(t->slab_bytes);
    if (nslabs > t->slabs_cap)
        b += (nslabs - t->slabs_cap) * sizeof *t->slabs;
    size_t keys = t->nlive + extra;
    if ((keys + t->ntomb) * ZT_LOAD_DEN > (t->mask + 1) * ZT_LOAD_NUM)
        b += s_mem_size(s_cap_for(keys) * sizeof(uint64_t)); /* the old array goes later */
    return b;
}

size_t zps_table_size(const zps_table_t *t)
{
    return t->nlive;
}

size_t zps_table_rows(const zps_table_t *t)
{
    return t->nrows;
}

size_t zps_table_bytes(const zps_table_t *t)
{
    size_t b = sizeof *t + s_mem_size((t->mask + 1) * sizeof(uint64_t));
    if (t->old != NULL)
        b += s_mem_size((t->old_mask + 1) * sizeof(uint64_t));
    b += t->slabs_cap * sizeof *t->slabs;
    b += t->nslabs * s_mem_size(t->slab_bytes);
    b += t->free_cap * sizeof *t->free_rows + t->dead_words * sizeof *t->dead;
    return b;
}

uint32_t zps_table_row_floats(const zps_table_t *t)
{
    return t->row_floats;
}

int zps_table_resizing(const zps_table_t *t)
{
    return t->old != NULL;
}

int zps_table_next(const zps_table_t *t, size_t *cursor, uint64_t *key, float **row)
{
    while (*cursor < t->nrows && s_is_dead(t, *cursor))
        (*cursor)++;
    if (*cursor >= t->nrows)
        return 0;
    unsigned char *b = s_row_base(t, *cursor);
    if (key != NULL)
        *key = s_row_key(b);
    if (row != NULL)
        *row = s_row_floats(b);
    (*cursor)++;
    return 1;
}
