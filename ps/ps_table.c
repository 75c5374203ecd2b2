/* ps_table: key -> row hash table (the full design comment is in ps_table.h).
 *
 * Slot = (hash >> 32) << 32 | (row + 1), at home index hash & mask, hash =
 * zps_mix64(key, ZPS_SEED_TABLE).  Rows are [uint64 key][row_floats floats]
 * with the stride rounded up to 8, in calloc'ed slabs (so new rows are zero).
 *
 * Incremental growth: at load > 3/4 a 2x array becomes `slots` and the
 * previous one becomes `old`.  `old` is never written again; each operation
 * copies the next few old slots into `slots` (re-hashing the key read from the
 * row) and lookups try `slots`, then `old`.  Nothing is removed from `old`, so
 * its linear-probe chains stay intact while it drains, and a hit there is the
 * right row whether or not that slot was already copied.  Inserts go only to
 * `slots` and only after both arrays missed, so no key is stored twice.  A
 * grow starts at 3/4 * old_cap keys; `slots` (2 * old_cap) reaches its own
 * 3/4 only after another 3/4 * old_cap inserts, while migration copies 64
 * old slots per single call and 16 per key of a batch, so it is done within
 * old_cap / 16 inserts.  (Should that ever not hold, e.g. at the tail of a
 * batch, s_grow finishes the pending migration first.) */
#include "ps_table.h"

#include <stdlib.h>

#include "zps_err.h"
#include "zps_hash.h"

#define PS_MIN_SLOTS   8u
#define PS_MIGRATE_OP  64u  /* old slots copied per single find / upsert */
#define PS_MIGRATE_KEY 16u  /* old slots copied per key of a batch call */
#define PS_BLOCK       16u  /* migration: rows prefetched together */
#define PS_PIPE        16u  /* batch pipeline: keys between stages */
#define PS_RING        64u  /* pipeline state ring, > 2 * PS_PIPE, power of 2 */
#define PS_MAX_ROWS    ((size_t)UINT32_MAX) /* row + 1 must fit in 32 bits */
#define PS_TAG_MASK    0xffffffff00000000ull

struct ps_table {
    uint64_t *slots;        /* current slot array; every insert goes here */
    size_t mask;            /* slot count - 1 */
    uint64_t *old;          /* previous array while a grow is in progress */
    size_t old_mask;
    size_t old_pos;         /* old slots below this index are copied */
    unsigned char **slabs;  /* PS_TABLE_SLAB_ROWS rows each */
    size_t nslabs, slabs_cap;
    size_t nrows;
    size_t stride;          /* bytes per row: key + floats, multiple of 8 */
    uint32_t row_floats;
};

static inline unsigned char *s_row_base(const ps_table_t *t, size_t row)
{
    return t->slabs[row / PS_TABLE_SLAB_ROWS] + (row % PS_TABLE_SLAB_ROWS) * t->stride;
}

static inline unsigned char *s_slot_row(const ps_table_t *t, uint64_t slot)
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

/* Row of key in one slot array, or NULL. */
static inline float *s_probe(const ps_table_t *t, const uint64_t *slots, size_t mask,
                             uint64_t key, uint64_t h)
{
    const uint64_t tag = h & PS_TAG_MASK;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
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
static inline unsigned char *s_candidate(const ps_table_t *t, const uint64_t *slots,
                                         size_t mask, uint64_t h)
{
    const uint64_t tag = h & PS_TAG_MASK;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint64_t v = slots[i];
        if (v == 0)
            return NULL;
        if ((v & PS_TAG_MASK) == tag)
            return s_slot_row(t, v);
    }
}

static inline float *s_find_h(const ps_table_t *t, uint64_t key, uint64_t h)
{
    float *r = s_probe(t, t->slots, t->mask, key, h);
    if (r == NULL && t->old != NULL)
        r = s_probe(t, t->old, t->old_mask, key, h);
    return r;
}

/* Store v in the first empty slot from h's home (the key is known absent). */
static inline void s_place(uint64_t *slots, size_t mask, uint64_t h, uint64_t v)
{
    size_t i = h & mask;
    while (slots[i] != 0)
        i = (i + 1) & mask;
    slots[i] = v;
}

/* Copy up to n more old slots into the current array; free `old` when done. */
static void s_migrate(ps_table_t *t, size_t n)
{
    size_t end = t->old_mask + 1;
    if (n < end - t->old_pos)
        end = t->old_pos + n;
    size_t i = t->old_pos;
    while (i < end) {
        uint64_t v[PS_BLOCK], h[PS_BLOCK];
        unsigned m = 0;
        for (; i < end && m < PS_BLOCK; i++) {
            if (t->old[i] != 0) {
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
            s_place(t->slots, t->mask, h[k], v[k]);
    }
    t->old_pos = end;
    if (end == t->old_mask + 1) {
        free(t->old);
        t->old = NULL;
        t->old_mask = 0;
        t->old_pos = 0;
    }
}

static int s_grow(ps_table_t *t)
{
    if (t->old != NULL)
        s_migrate(t, SIZE_MAX);
    size_t ncap = (t->mask + 1) * 2;
    if (ncap > SIZE_MAX / sizeof(uint64_t))
        return ZPS_ENOMEM;
    uint64_t *ns = calloc(ncap, sizeof *ns);
    if (ns == NULL)
        return ZPS_ENOMEM;
    t->old = t->slots;
    t->old_mask = t->mask;
    t->old_pos = 0;
    t->slots = ns;
    t->mask = ncap - 1;
    return 0;
}

/* Base of row t->nrows, allocating its slab if needed; NULL on ENOMEM. */
static unsigned char *s_next_row(ps_table_t *t)
{
    size_t s = t->nrows / PS_TABLE_SLAB_ROWS;
    if (s == t->nslabs) {
        if (t->nslabs == t->slabs_cap) {
            size_t ncap = t->slabs_cap ? t->slabs_cap * 2 : 4;
            unsigned char **p = realloc(t->slabs, ncap * sizeof *p);
            if (p == NULL)
                return NULL;
            t->slabs = p;
            t->slabs_cap = ncap;
        }
        unsigned char *slab = calloc(PS_TABLE_SLAB_ROWS, t->stride);
        if (slab == NULL)
            return NULL;
        t->slabs[t->nslabs++] = slab;
    }
    return s_row_base(t, t->nrows);
}

/* Insert key (known absent from both arrays); NULL on ENOMEM. */
static float *s_insert(ps_table_t *t, uint64_t key, uint64_t h)
{
    if (t->nrows >= PS_MAX_ROWS)
        return NULL;
    if ((t->nrows + 1) * 4 > (t->mask + 1) * 3 && s_grow(t) != 0)
        return NULL;
    unsigned char *b = s_next_row(t);
    if (b == NULL)
        return NULL;
    *(uint64_t *)(void *)b = key;
    s_place(t->slots, t->mask, h, (h & PS_TAG_MASK) | (uint64_t)(t->nrows + 1));
    t->nrows++;
    return s_row_floats(b);
}

static inline float *s_upsert_h(ps_table_t *t, uint64_t key, uint64_t h, int *inserted)
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

ps_table_t *ps_table_new(uint32_t row_floats, size_t capacity_hint)
{
    if (row_floats == 0)
        return NULL;
    if (capacity_hint > PS_MAX_ROWS)
        capacity_hint = PS_MAX_ROWS;
    size_t need = capacity_hint + (capacity_hint + 2) / 3; /* keys <= 3/4 slots */
    size_t cap = PS_MIN_SLOTS;
    while (cap < need && cap <= SIZE_MAX / 2)
        cap *= 2;
    size_t stride = ((size_t)8 + (size_t)4 * row_floats + 7) & ~(size_t)7;
    if (stride > SIZE_MAX / PS_TABLE_SLAB_ROWS)
        return NULL;

    ps_table_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->row_floats = row_floats;
    t->stride = stride;
    t->mask = cap - 1;
    t->slots = calloc(cap, sizeof *t->slots);
    t->slabs_cap = (capacity_hint + PS_TABLE_SLAB_ROWS - 1) / PS_TABLE_SLAB_ROWS;
    if (t->slabs_cap > 0)
        t->slabs = malloc(t->slabs_cap * sizeof *t->slabs);
    if (t->slots == NULL || (t->slabs_cap > 0 && t->slabs == NULL)) {
        ps_table_destroy(&t);
        return NULL;
    }
    return t;
}

void ps_table_destroy(ps_table_t **tp)
{
    if (tp == NULL || *tp == NULL)
        return;
    ps_table_t *t = *tp;
    for (size_t i = 0; i < t->nslabs; i++)
        free(t->slabs[i]);
    free(t->slabs);
    free(t->slots);
    free(t->old);
    free(t);
    *tp = NULL;
}

float *ps_table_find(ps_table_t *t, uint64_t key)
{
    if (t->old != NULL)
        s_migrate(t, PS_MIGRATE_OP);
    return s_find_h(t, key, s_hash(key));
}

float *ps_table_upsert(ps_table_t *t, uint64_t key, int *inserted)
{
    int dummy;
    if (t->old != NULL)
        s_migrate(t, PS_MIGRATE_OP);
    return s_upsert_h(t, key, s_hash(key), inserted ? inserted : &dummy);
}

/* Batch lookup as a software pipeline, PS_PIPE keys between stages: key i
 * is hashed and its home slots prefetched; key i - PS_PIPE has its slots
 * scanned for the first tag match, whose row is prefetched; key i - 2*PS_PIPE
 * is resolved (the candidate row if its key matches, else a full lookup or
 * upsert).  Candidates are only hints: rows never move, so a candidate whose
 * key matches is right even if an insert in between grew the table.  Returns
 * the number of keys done (< n only when an insert ran out of memory). */
static inline size_t s_batch(ps_table_t *t, const uint64_t *keys, size_t n, float **rows,
                             uint8_t *inserted, int upsert)
{
    uint64_t h[PS_RING];
    unsigned char *cand[PS_RING];
    for (size_t i = 0; i < n + 2 * PS_PIPE; i++) {
        if (i < n) {
            if (i % PS_PIPE == 0 && t->old != NULL)
                s_migrate(t, PS_PIPE * PS_MIGRATE_KEY);
            uint64_t hi = s_hash(keys[i]);
            h[i % PS_RING] = hi;
            __builtin_prefetch(&t->slots[hi & t->mask]);
            if (t->old != NULL)
                __builtin_prefetch(&t->old[hi & t->old_mask]);
        }
        if (i >= PS_PIPE && i - PS_PIPE < n) {
            size_t j = (i - PS_PIPE) % PS_RING;
            unsigned char *c = s_candidate(t, t->slots, t->mask, h[j]);
            if (c == NULL && t->old != NULL)
                c = s_candidate(t, t->old, t->old_mask, h[j]);
            if (c != NULL)
                __builtin_prefetch(c);
            cand[j] = c;
        }
        if (i >= 2 * PS_PIPE) {
            size_t k = i - 2 * PS_PIPE, j = k % PS_RING;
            uint64_t key = keys[k];
            float *r;
            int ins = 0;
            if (cand[j] != NULL && s_row_key(cand[j]) == key)
                r = s_row_floats(cand[j]);
            else if (upsert)
                r = s_upsert_h(t, key, h[j], &ins);
            else
                r = s_find_h(t, key, h[j]);
            rows[k] = r;
            if (upsert) {
                if (inserted != NULL)
                    inserted[k] = (uint8_t)ins;
                if (r == NULL)
                    return k;
            }
        }
    }
    return n;
}

void ps_table_find_batch(ps_table_t *t, const uint64_t *keys, size_t n, float **rows)
{
    s_batch(t, keys, n, rows, NULL, 0);
}

int ps_table_upsert_batch(ps_table_t *t, const uint64_t *keys, size_t n, float **rows,
                          uint8_t *inserted)
{
    return s_batch(t, keys, n, rows, inserted, 1) == n ? 0 : ZPS_ENOMEM;
}

size_t ps_table_size(const ps_table_t *t)
{
    return t->nrows;
}

size_t ps_table_bytes(const ps_table_t *t)
{
    size_t b = sizeof *t + (t->mask + 1) * sizeof(uint64_t);
    if (t->old != NULL)
        b += (t->old_mask + 1) * sizeof(uint64_t);
    b += t->slabs_cap * sizeof *t->slabs;
    b += t->nslabs * (size_t)PS_TABLE_SLAB_ROWS * t->stride;
    return b;
}

uint32_t ps_table_row_floats(const ps_table_t *t)
{
    return t->row_floats;
}

int ps_table_resizing(const ps_table_t *t)
{
    return t->old != NULL;
}

int ps_table_next(const ps_table_t *t, size_t *cursor, uint64_t *key, float **row)
{
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
