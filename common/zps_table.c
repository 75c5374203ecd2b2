/* zps_table: key -> row table (the full design comment is in zps_table.h).
 *
 * An entry is [uint64 h][row_floats floats], h = zps_mix64(key, seed),
 * h == 0 empty; stride = 8 + 4 * row_floats, no padding
 * (entries are 4-byte aligned: the hash is read and written with memcpy,
 * which x86 does as one unaligned load; 12-, 20- and 24-byte entries may
 * span two lines, and the batch prefetches two anyway).  The directory has 2^gdepth pointers, indexed by h's top gdepth bits;
 * a segment of depth d <= gdepth is pointed to by the 2^(gdepth - d)
 * indices sharing its prefix `pfx`.  In a segment, h's home is
 * ((h << d) >> 32) * cap >> 32, a non-decreasing function of h; entries are
 * sorted by h, each at or after its home with no empty entry in between
 * (so the homes of successive entries never decrease either); the last
 * entry of the array is always empty, which ends every scan.
 *
 * Load: a segment grows when an insert would take it past 9/10 of its
 * homes, to 4/3 of its keys.  At 9/10 a hit scans ~5.5 entries from its
 * home on average (1 + 1/(1 - a)) / 2, a miss about as many (it stops at
 * the first larger hash), an insert shifts the ~50 entries up to the next
 * gap: inserts near the top of the range cost more, lookups stay short.
 *
 * Memory: blocks of 2 MB or more are anonymous mappings aligned to 2 MB and
 * marked MADV_HUGEPAGE, so that with transparent huge pages in "madvise"
 * (or "always") mode random reads over gigabytes do not miss the TLB on
 * nearly every key; where THP is off the madvise fails, which is ignored.
 * Smaller blocks come from the heap, 64-byte aligned.  zps_table_bytes
 * counts what was allocated.  A table is presized for its capacity hint
 * only up to ZT_PRESIZE_BYTES (4 MB) of entries, so that its bytes follow
 * the keys it holds (memory limits and stats count them), and grows from
 * there: growing costs about four sequential entry copies per key. */
#include "zps_table.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "zps_err.h"
#include "zps_hash.h"

#define ZT_MIN_CAP   8u
#define ZT_MAX_NUM   9u   /* a segment grows past 9/10 full ... */
#define ZT_MAX_DEN   10u
#define ZT_GROW_NUM  4u   /* ... to 4/3 of its keys (3/4 full) */
#define ZT_GROW_DEN  3u
#define ZT_MAX_DEPTH 28u  /* directory of at most 2^28 segments */
#ifndef ZT_DIST
#define ZT_DIST      20u  /* batch: keys from prefetch to scan (-D for experiments) */
#endif
#define ZT_DIST2     12u  /* batch: keys from a far scan's prefetch to its end */
#define ZT_RING      64u  /* > ZT_DIST + ZT_DIST2, power of 2 */
#define ZT_PRESIZE_BYTES ((size_t)4 << 20)
#define ZT_CAP_LIMIT ((size_t)UINT32_MAX - ZPS_TABLE_SPILL)
#define PS_HUGE      ((size_t)2 << 20) /* huge page size and alignment */
#define PS_PAGE      ((size_t)4096)
#define PS_INLINE    static inline __attribute__((always_inline))

typedef struct {
    unsigned char *e;  /* len entries */
    uint32_t cap;      /* home positions */
    uint32_t len;      /* cap + spill: ZPS_TABLE_SPILL, doubled while a
                          cluster at the end needs more */
    uint32_t count;    /* keys stored */
    uint32_t depth;    /* local depth: bits of pfx */
    uint64_t pfx;      /* the top `depth` bits of every hash stored here */
} zt_seg_t;

struct zps_table {
    zt_seg_t **dir;    /* 2^gdepth */
    unsigned gdepth;
    size_t nseg;       /* distinct segments */
    size_t stride;     /* bytes per entry: hash + floats */
    uint64_t seed;     /* of the hash: random per table (zps_table_new) */
    size_t seg_max;    /* homes a segment may have before it splits */
    size_t limit;      /* keys the table will hold at most (0: no limit) */
    size_t mem_bytes;  /* this machine's memory (0: unknown), read once */
    uint32_t row_floats;
    size_t nlive;      /* keys stored, the side key included */
    size_t seg_bytes;  /* allocated entry bytes over all segments */
    size_t cap_total;  /* homes over all segments */
    uint64_t gen;      /* bumped whenever entries may have moved */
    float *zrow;       /* row of the one key whose hash is 0 */
    int zlive;
};

/* Zero-filled block of n bytes: >= PS_HUGE, a 2 MB-aligned anonymous mapping
 * with huge pages requested; else 64-byte aligned from the heap.
 * s_mem_free needs the same n. */
static void *s_mem_alloc(size_t n)
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
    (void)madvise(q, len, MADV_HUGEPAGE); /* best effort: THP may be off */
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

static inline uint64_t s_load(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void s_store(unsigned char *p, uint64_t v)
{
    memcpy(p, &v, sizeof v);
}

static inline float *s_row(unsigned char *e)
{
    return (float *)(void *)(e + sizeof(uint64_t));
}

static inline uint64_t s_hash(const zps_table_t *t, uint64_t key)
{
    return zps_mix64(key, t->seed);
}

static inline zt_seg_t *s_seg(const zps_table_t *t, uint64_t h)
{
    return t->dir[t->gdepth ? (size_t)(h >> (64 - t->gdepth)) : 0];
}

static inline size_t s_home(const zt_seg_t *s, uint64_t h)
{
    return (size_t)((((h << s->depth) >> 32) * (uint64_t)s->cap) >> 32);
}

/* Entry of h (not 0) in s, or NULL. */
/* From entry e on (at or before h's place), the entry holding h, or NULL */
static inline unsigned char *s_scan(unsigned char *e, size_t stride, uint64_t h)
{
    for (;; e += stride) {
        uint64_t v = s_load(e);
        if (v >= h)
            return v == h ? e : NULL;
        if (v == 0)
            return NULL;
    }
}

static inline unsigned char *s_seg_find(const zt_seg_t *s, size_t stride, uint64_t h)
{
    return s_scan(s->e + s_home(s, h) * stride, stride, h);
}

static inline float *s_find_h(const zps_table_t *t, uint64_t h)
{
    if (h == 0)
        return t->zlive ? t->zrow : NULL;
    unsigned char *e = s_seg_find(s_seg(t, h), t->stride, h);
    return e != NULL ? s_row(e) : NULL;
}

static size_t s_seg_bytes(const zps_table_t *t, size_t len)
{
    return s_mem_size(len * t->stride);
}

static void s_seg_free(const zps_table_t *t, zt_seg_t *s)
{
    if (s != NULL) {
        s_mem_free(s->e, (size_t)s->len * t->stride);
        free(s);
    }
}

/* New segment (depth, pfx) with cap homes holding src's entries (those
 * whose hash has pfx's last bit at src's next bit, when depth is one more
 * than src's: a split), in one ordered pass.  NULL when out of memory, or
 * with *over set when the entries would run past the spill. */
static zt_seg_t *s_build(const zps_table_t *t, const zt_seg_t *src, uint32_t depth, uint64_t pfx,
                         size_t cap, size_t spill, int *over)
{
    const size_t st = t->stride;
    *over = 0;
    if (cap > ZT_CAP_LIMIT || spill > ZT_CAP_LIMIT - cap)
        return NULL;
    /* a mapping of 2 MB or more is filled up to a whole number of huge
     * pages with more homes, when that adds at most 1/16: the tail of a
     * mapping in 4 KB pages missed the TLB on every key that fell there
     * (with 4-8 MB segments, a fifth of them: 30% slower at 100M keys) */
    size_t bytes = (cap + spill) * st, whole = (bytes + PS_HUGE - 1) & ~(PS_HUGE - 1);
    if (bytes >= PS_HUGE && whole - bytes <= bytes / 16 && whole / st - spill <= t->seg_max)
        cap = whole / st - spill;
    zt_seg_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->cap = (uint32_t)cap;
    s->len = (uint32_t)(cap + spill);
    s->depth = depth;
    s->pfx = pfx;
    if ((s->e = s_mem_alloc((size_t)s->len * st)) == NULL) {
        free(s);
        return NULL;
    }
    if (src == NULL)
        return s;
    const int split = depth > src->depth;
    const unsigned bit = 63u - src->depth;
    size_t pos = 0;
    for (size_t i = 0; i < src->len; i++) {
        const unsigned char *from = src->e + i * st;
        uint64_t h = s_load(from);
        if (h == 0 || (split && (h >> bit & 1) != (pfx & 1)))
            continue;
        size_t home = s_home(s, h);
        if (pos < home)
            pos = home;
        if (pos + 1 >= s->len) {
            *over = 1;
            s_seg_free(t, s);
            return NULL;
        }
        memcpy(s->e + pos * st, from, st);
        pos++;
        s->count++;
    }
    return s;
}

/* Segment for src's entries (or a split half) with cap homes and at least
 * `spill` entries past them: the spill doubles while a cluster runs past
 * its end.  (More homes would not help a cluster whose hashes differ only
 * below the home bits, as crafted keys can: it stays at the end however
 * big the segment; a longer spill holds it at the cost of its own size.) */
static zt_seg_t *s_build_for(const zps_table_t *t, const zt_seg_t *src, uint32_t depth,
                             uint64_t pfx, size_t cap, size_t spill)
{
    if (cap < ZT_MIN_CAP)
        cap = ZT_MIN_CAP;
    if (spill < ZPS_TABLE_SPILL)
        spill = ZPS_TABLE_SPILL;
    for (;;) {
        int over;
        zt_seg_t *s = s_build(t, src, depth, pfx, cap, spill, &over);
        if (s != NULL || !over)
            return s;
        spill *= 2;
    }
}

/* Point the directory indices of neu's prefix at neu. */
static void s_dir_set(zps_table_t *t, zt_seg_t *neu)
{
    size_t span = (size_t)1 << (t->gdepth - neu->depth);
    size_t lo = (size_t)neu->pfx << (t->gdepth - neu->depth);
    for (size_t i = lo; i < lo + span; i++)
        t->dir[i] = neu;
}

static int s_dir_double(zps_table_t *t)
{
    if (t->gdepth >= ZT_MAX_DEPTH)
        return ZPS_ENOMEM;
    size_t n = (size_t)1 << t->gdepth;
    zt_seg_t **d = malloc(2 * n * sizeof *d);
    if (d == NULL)
        return ZPS_ENOMEM;
    for (size_t i = 0; i < n; i++)
        d[2 * i] = d[2 * i + 1] = t->dir[i];
    free(t->dir);
    t->dir = d;
    t->gdepth++;
    return 0;
}

static void s_account(zps_table_t *t, const zt_seg_t *s, int sign)
{
    size_t b = s_seg_bytes(t, s->len);
    if (sign > 0) {
        t->seg_bytes += b;
        t->cap_total += s->cap;
        t->nseg++;
    } else {
        t->seg_bytes -= b;
        t->cap_total -= s->cap;
        t->nseg--;
    }
}

/* Split s in two by its next hash bit, each half sized for its keys. */
static int s_split(zps_table_t *t, zt_seg_t *s)
{
    if (s->depth == t->gdepth && s_dir_double(t) != 0)
        return ZPS_ENOMEM;
    const unsigned bit = 63u - s->depth;
    size_t c[2] = {0, 0};
    for (size_t i = 0; i < s->len; i++) {
        uint64_t h = s_load(s->e + i * t->stride);
        if (h != 0)
            c[h >> bit & 1]++;
    }
    zt_seg_t *kid[2];
    for (int b = 0; b < 2; b++) {
        kid[b] = s_build_for(t, s, s->depth + 1, s->pfx * 2 + (uint64_t)b,
                             c[b] * ZT_GROW_NUM / ZT_GROW_DEN + 1, ZPS_TABLE_SPILL);
        if (kid[b] == NULL) {
            if (b == 1)
                s_seg_free(t, kid[0]);
            return ZPS_ENOMEM;
        }
    }
    for (int b = 0; b < 2; b++) {
        s_dir_set(t, kid[b]);
        s_account(t, kid[b], 1);
    }
    s_account(t, s, -1);
    s_seg_free(t, s);
    t->gen++;
    return 0;
}

/* Make s ready for `need` keys: rebuilt 4/3 as big as that, or split when
 * that passes ZPS_TABLE_SEG_MAX homes; with `spill_end` (a cluster hit the
 * end of the spill below 9/10 load) the same homes and twice the spill.
 * Contents unchanged on ZPS_ENOMEM. */
static int s_grow(zps_table_t *t, zt_seg_t *s, size_t need, int spill_end)
{
    size_t cap = need / ZT_GROW_DEN * ZT_GROW_NUM + need % ZT_GROW_DEN * ZT_GROW_NUM / ZT_GROW_DEN + 1;
    size_t spill = ZPS_TABLE_SPILL;
    if (t->limit && !spill_end && s->depth < 64) {
        /* a bounded table: no more homes than the segment's share of the
         * limit (plus 3 standard deviations) needs at 9/10 load, and at
         * least need's at 9/10 plus 1/32 */
        double share = (double)t->limit / (double)((uint64_t)1 << s->depth);
        size_t top = (size_t)((share + 3 * sqrt(share) + 16) * ZT_MAX_DEN / ZT_MAX_NUM);
        size_t least = need * ZT_MAX_DEN / ZT_MAX_NUM + need / 32 + 1;
        cap = cap < top ? cap : top;
        cap = cap > least ? cap : least;
    }
    if (spill_end) {
        cap = s->cap;
        spill = 2 * ((size_t)s->len - s->cap);
    } else if (cap > t->seg_max && s->depth < ZT_MAX_DEPTH) {
        return s_split(t, s);
    }
    zt_seg_t *n = s_build_for(t, s, s->depth, s->pfx, cap, spill);
    if (n == NULL)
        return ZPS_ENOMEM;
    s_dir_set(t, n);
    s_account(t, n, 1);
    s_account(t, s, -1);
    s_seg_free(t, s);
    t->gen++;
    return 0;
}

/* Insert h (not 0, absent) into s if it fits without growing: its entry,
 * zeroed, or NULL (s too full, or the shift would reach the last entry). */
static unsigned char *s_seg_insert(zps_table_t *t, zt_seg_t *s, uint64_t h)
{
    if (((size_t)s->count + 1) * ZT_MAX_DEN > (size_t)s->cap * ZT_MAX_NUM)
        return NULL;
    const size_t st = t->stride;
    size_t p = s_home(s, h);
    uint64_t v;
    while ((v = s_load(s->e + p * st)) != 0 && v < h)
        p++;
    size_t q = p;
    while (s_load(s->e + q * st) != 0)
        q++;
    if (q + 1 >= s->len)
        return NULL;
    unsigned char *e = s->e + p * st;
    if (q > p) {
        memmove(e + st, e, (q - p) * st);
        t->gen++;
    }
    memset(e, 0, st);
    s_store(e, h);
    s->count++;
    return e;
}

static float *s_upsert_h(zps_table_t *t, uint64_t h, int *inserted)
{
    float *r = s_find_h(t, h);
    *inserted = 0;
    if (r != NULL)
        return r;
    if (h == 0) {
        memset(t->zrow, 0, t->row_floats * sizeof *t->zrow);
        t->zlive = 1;
    } else {
        for (;;) {
            zt_seg_t *s = s_seg(t, h);
            unsigned char *e = s_seg_insert(t, s, h);
            if (e != NULL) {
                r = s_row(e);
                break;
            }
            int full = ((size_t)s->count + 1) * ZT_MAX_DEN > (size_t)s->cap * ZT_MAX_NUM;
            if (s_grow(t, s, (size_t)s->count + 1, !full) != 0)
                return NULL;
        }
    }
    t->nlive++;
    *inserted = 1;
    return r != NULL ? r : t->zrow;
}

zps_table_t *zps_table_new_seed(uint32_t row_floats, size_t capacity_hint, uint64_t seed)
{
    if (row_floats == 0)
        return NULL;
    size_t stride = (size_t)8 + (size_t)4 * row_floats;
    zps_table_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->stride = stride;
    t->row_floats = row_floats;
    t->seed = seed;
    t->seg_max = ZPS_TABLE_SEG_MAX;
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages > 0 && psz > 0 && (size_t)pages <= SIZE_MAX / (size_t)psz)
        t->mem_bytes = (size_t)pages * (size_t)psz;
    size_t keys = capacity_hint;
    if (keys > ZT_PRESIZE_BYTES / stride * ZT_GROW_DEN / ZT_GROW_NUM)
        keys = ZT_PRESIZE_BYTES / stride * ZT_GROW_DEN / ZT_GROW_NUM;
    size_t cap = keys / ZT_GROW_DEN * ZT_GROW_NUM + 1;
    unsigned g = 0;
    while ((cap >> g) > ZPS_TABLE_SEG_MAX)
        g++;
    t->gdepth = g;
    t->dir = calloc((size_t)1 << g, sizeof *t->dir);
    t->zrow = calloc(row_floats, sizeof *t->zrow);
    if (t->dir == NULL || t->zrow == NULL) {
        zps_table_destroy(&t);
        return NULL;
    }
    for (size_t i = 0; i < ((size_t)1 << g); i++) {
        int over;
        size_t c = (cap >> g) + 1;
        zt_seg_t *s = s_build(t, NULL, g, i, c < ZT_MIN_CAP ? ZT_MIN_CAP : c, ZPS_TABLE_SPILL, &over);
        if (s == NULL) {
            zps_table_destroy(&t);
            return NULL;
        }
        t->dir[i] = s;
        s_account(t, s, 1);
    }
    return t;
}

/* A seed nobody outside this process knows: getrandom, or failing that
 * the clock, the pid and an address mixed. */
static uint64_t s_random_seed(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v)
        return v;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    v = zps_mix64((uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30, (uint64_t)getpid());
    return zps_mix64(v, (uint64_t)(uintptr_t)&ts);
}

zps_table_t *zps_table_new(uint32_t row_floats, size_t capacity_hint)
{
    return zps_table_new_seed(row_floats, capacity_hint, s_random_seed());
}

uint64_t zps_table_seed(const zps_table_t *t)
{
    return t->seed;
}

void zps_table_set_split(zps_table_t *t, size_t homes)
{
    t->seg_max = homes < ZT_MIN_CAP ? ZT_MIN_CAP : homes;
}

void zps_table_set_limit(zps_table_t *t, size_t keys)
{
    t->limit = keys;
}

void zps_table_destroy(zps_table_t **tp)
{
    if (tp == NULL || *tp == NULL)
        return;
    zps_table_t *t = *tp;
    if (t->dir != NULL) {
        size_t n = (size_t)1 << t->gdepth;
        for (size_t i = 0; i < n;) {
            zt_seg_t *s = t->dir[i];
            if (s == NULL) { /* a table that failed half-way through new */
                i++;
                continue;
            }
            size_t span = (size_t)1 << (t->gdepth - s->depth);
            s_seg_free(t, s);
            i += span;
        }
    }
    free(t->dir);
    free(t->zrow);
    free(t);
    *tp = NULL;
}

float *zps_table_find(const zps_table_t *t, uint64_t key)
{
    return s_find_h(t, s_hash(t, key));
}

float *zps_table_upsert(zps_table_t *t, uint64_t key, int *inserted)
{
    int dummy;
    return s_upsert_h(t, s_hash(t, key), inserted ? inserted : &dummy);
}

/* Batch stage A: hash key i and prefetch the two lines from its home
 * entry's line (a hit scans a few entries on from its home); the home entry
 * goes in `home` for stage B.  Written out here, not in a helper of its
 * own: GCC 12 deems a function that only prefetches free of side effects
 * (IPA modref) and deletes calls to it. */
PS_INLINE void s_stage_hash(const zps_table_t *t, const uint64_t *keys, size_t i, uint64_t *h,
                            unsigned char **home)
{
    uint64_t hi = s_hash(t, keys[i]);
    h[i % ZT_RING] = hi;
    const zt_seg_t *s = s_seg(t, hi);
    unsigned char *e = s->e + s_home(s, hi) * t->stride;
    home[i % ZT_RING] = e;
    __builtin_prefetch(e);
    __builtin_prefetch(e + 64);
}

/* Batch lookup as a three-stage software pipeline.  A: key i is hashed
 * and the two lines from its home entry's line prefetched.  B (key
 * i - ZT_DIST, whose lines have arrived): its scan runs over those two
 * lines; most keys are resolved there.  A scan that would go past them
 * (the key sits far from its home: about one in six at 9/10 load) leaves
 * where it stopped and prefetches the next two lines.  C (key
 * i - ZT_DIST - ZT_DIST2): the scans left over finish.  Prefetching a third
 * line for every key instead took 25% more time at 100M keys; leaving the
 * far keys to stall took 50% more. */
PS_INLINE void s_stage_scan(const zps_table_t *t, size_t k, const uint64_t *h,
                            unsigned char *const *home, const unsigned char **cont, float **rows)
{
    const size_t st = t->stride;
    const uint64_t hk = h[k % ZT_RING];
    cont[k % ZT_RING] = NULL;
    if (hk == 0) {
        rows[k] = t->zlive ? t->zrow : NULL;
        return;
    }
    unsigned char *e = home[k % ZT_RING];
    const uintptr_t end = ((uintptr_t)e & ~(uintptr_t)63) + 128;
    for (;; e += st) {
        if ((uintptr_t)e + st > end) {
            cont[k % ZT_RING] = e;
            __builtin_prefetch(e);
            __builtin_prefetch(e + 64);
            return;
        }
        uint64_t v = s_load(e);
        if (v >= hk) {
            rows[k] = v == hk ? s_row(e) : NULL;
            return;
        }
        if (v == 0) {
            rows[k] = NULL;
            return;
        }
    }
}

PS_INLINE void s_stage_finish(const zps_table_t *t, size_t k, const uint64_t *h,
                              const unsigned char *const *cont, float **rows)
{
    const unsigned char *e = cont[k % ZT_RING];
    if (e == NULL)
        return;
    unsigned char *f = s_scan((unsigned char *)(uintptr_t)e, t->stride, h[k % ZT_RING]);
    rows[k] = f != NULL ? s_row(f) : NULL;
}

void zps_table_find_batch(const zps_table_t *t, const uint64_t *keys, size_t n, float **rows)
{
    enum { LAG = ZT_DIST + ZT_DIST2 };
    _Static_assert(LAG < ZT_RING && (ZT_RING & (ZT_RING - 1)) == 0, "pipeline ring");
    uint64_t h[ZT_RING];
    unsigned char *home[ZT_RING];
    const unsigned char *cont[ZT_RING];
    size_t i = 0;
    for (; i < LAG && i < n; i++) {
        s_stage_hash(t, keys, i, h, home);
        if (i >= ZT_DIST)
            s_stage_scan(t, i - ZT_DIST, h, home, cont, rows);
    }
    for (; i < n; i++) { /* steady state: no bounds tests */
        s_stage_hash(t, keys, i, h, home);
        s_stage_scan(t, i - ZT_DIST, h, home, cont, rows);
        s_stage_finish(t, i - LAG, h, cont, rows);
    }
    for (; i < n + LAG; i++) {
        if (i >= ZT_DIST && i - ZT_DIST < n)
            s_stage_scan(t, i - ZT_DIST, h, home, cont, rows);
        if (i >= LAG)
            s_stage_finish(t, i - LAG, h, cont, rows);
    }
}

void zps_table_prefetch(const zps_table_t *t, const uint64_t *keys, size_t n)
{
    uint64_t h[ZT_RING];
    unsigned char *home[ZT_RING];
    for (size_t i = 0; i < n; i++)
        s_stage_hash(t, keys, i, h, home);
}

int zps_table_upsert_batch(zps_table_t *t, const uint64_t *keys, size_t n, float **rows,
                          uint8_t *inserted)
{
    uint64_t h[ZT_RING];
    unsigned char *home[ZT_RING]; /* hints only: inserts may move entries */
    const uint64_t gen0 = t->gen;
    size_t i = 0;
    for (; i < n + ZT_DIST; i++) {
        if (i < n)
            s_stage_hash(t, keys, i, h, home);
        if (i >= ZT_DIST) {
            size_t k = i - ZT_DIST;
            int ins;
            float *r = s_upsert_h(t, h[k % ZT_RING], &ins);
            if (r == NULL)
                return ZPS_ENOMEM;
            rows[k] = r;
            if (inserted != NULL)
                inserted[k] = (uint8_t)ins;
        }
    }
    if (t->gen != gen0) /* inserts moved entries: the early rows may be stale */
        zps_table_find_batch(t, keys, n, rows);
    return 0;
}

int zps_table_reserve(zps_table_t *t, size_t extra)
{
    if (extra == 0)
        return 0;
    /* more than this machine's memory could hold is refused at once, not
     * after splitting segments for it */
    size_t want = zps_table_bytes_with(t, extra);
    if (want == SIZE_MAX || (t->mem_bytes && want > t->mem_bytes))
        return ZPS_ENOMEM;
    uint64_t pos = 0;
    for (;;) {
        zt_seg_t *s = s_seg(t, pos);
        size_t share = s->depth >= 64 ? 0 : extra >> s->depth;
        size_t need = (size_t)s->count + share + share / 8 + 16;
        if (need * ZT_MAX_DEN > (size_t)s->cap * ZT_MAX_NUM) {
            if (s_grow(t, s, need, 0) != 0)
                return ZPS_ENOMEM;
            continue; /* the same position: the new segment (or half) */
        }
        if (s->depth == 0 || ((s->pfx + 1) >> s->depth) != 0)
            return 0;
        pos = (s->pfx + 1) << (64 - s->depth);
    }
}

size_t zps_table_bytes_with(const zps_table_t *t, size_t extra)
{
    size_t b = zps_table_bytes(t);
    if (extra == 0)
        return b;
    if (extra > SIZE_MAX / 4 - t->nlive)
        return SIZE_MAX;
    size_t keys = t->nlive - (size_t)t->zlive + extra; /* in the segments */
    if (keys * ZT_MAX_DEN <= t->cap_total * ZT_MAX_NUM)
        return b;
    size_t cap = keys / ZT_GROW_DEN * ZT_GROW_NUM;
    if (cap <= t->cap_total)
        return b;
    if ((cap - t->cap_total) > SIZE_MAX / 2 / t->stride)
        return SIZE_MAX;
    return b + (cap - t->cap_total) * t->stride;
}

int zps_table_delete(zps_table_t *t, uint64_t key)
{
    uint64_t h = s_hash(t, key);
    if (h == 0) {
        if (!t->zlive)
            return 0;
        t->zlive = 0;
    } else {
        zt_seg_t *s = s_seg(t, h);
        const size_t st = t->stride;
        unsigned char *e = s_seg_find(s, st, h);
        if (e == NULL)
            return 0;
        /* shift back the entries after it that sit past their homes */
        size_t p = (size_t)(e - s->e) / st, q = p + 1;
        uint64_t v;
        while ((v = s_load(s->e + q * st)) != 0 && s_home(s, v) < q)
            q++;
        memmove(e, e + st, (q - p - 1) * st);
        memset(s->e + (q - 1) * st, 0, st);
        s->count--;
    }
    t->nlive--;
    t->gen++;
    return 1;
}

size_t zps_table_size(const zps_table_t *t)
{
    return t->nlive;
}

size_t zps_table_bytes(const zps_table_t *t)
{
    return sizeof *t + (sizeof *t->dir << t->gdepth) + t->nseg * sizeof(zt_seg_t) +
           t->seg_bytes + t->row_floats * sizeof *t->zrow;
}

size_t zps_table_capacity(const zps_table_t *t)
{
    return t->cap_total;
}

uint32_t zps_table_row_floats(const zps_table_t *t)
{
    return t->row_floats;
}

uint64_t zps_table_gen(const zps_table_t *t)
{
    return t->gen;
}

int zps_table_next(const zps_table_t *t, zps_table_cur_t *c, uint64_t *key, float **row)
{
    if (c->done)
        return 0;
    if (c->pos == 0) {
        c->pos = 1;
        if (t->zlive) {
            if (key != NULL)
                *key = zps_unmix64(0, t->seed);
            if (row != NULL)
                *row = t->zrow;
            return 1;
        }
    }
    const size_t st = t->stride;
    for (;;) {
        const zt_seg_t *s = s_seg(t, c->pos);
        /* the first entry >= pos is at or after pos's home (homes rise
         * with hashes); entries before it there are displaced smaller ones */
        for (size_t i = s_home(s, c->pos); i < s->len; i++) {
            unsigned char *e = s->e + i * st;
            uint64_t v = s_load(e);
            if (v >= c->pos) {
                if (key != NULL)
                    *key = zps_unmix64(v, t->seed);
                if (row != NULL)
                    *row = s_row(e);
                if (v == UINT64_MAX)
                    c->done = 1;
                else
                    c->pos = v + 1;
                return 1;
            }
        }
        if (s->depth == 0 || ((s->pfx + 1) >> s->depth) != 0)
            break; /* the last prefix */
        c->pos = (s->pfx + 1) << (64 - s->depth);
    }
    c->done = 1;
    return 0;
}

int zps_table_sample(const zps_table_t *t, uint64_t r, uint64_t *key, float **row)
{
    if (t->nlive == 0)
        return 0;
    zps_table_cur_t c = {r > 1 ? r : 1, 0};
    if (zps_table_next(t, &c, key, row))
        return 1;
    c.pos = 0; /* wrap round: the smallest (or the side key) */
    c.done = 0;
    return zps_table_next(t, &c, key, row);
}
