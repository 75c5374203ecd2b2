/* Unit tests for zps_table: lookups, crafted clusters (one home, adjacent
 * homes, the end of a segment and its spill), the side key (hash 0) and the
 * largest hash, growth and segment splits, hash-order iteration with
 * cursors that outlive changes, batch forms, zps_table_gen, reserve,
 * sampling, a reference model, big tables.  Each row's content is derived
 * from its key, so a lookup returning the wrong row fails.
 *
 * Keys with a chosen hash h are zps_unmix64(h, ZPS_SEED_TABLE).  In a table
 * made with a small hint there is one segment of depth 0 (until its homes
 * pass T_SEG) whose cap is zps_table_capacity(t), and h's home
 * is ((h >> 32) * cap) >> 32. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_suites.h"
#include "zps_err.h"
#include "zps_hash.h"
#include "zps_table.h"

#define T_SEED 0x5eed5eed12345678ull

/* Check's ck_assert_* record a mark point (a write to the runner) on every
 * success; these test first and only call into Check on failure, which keeps
 * the loops over millions of keys fast.  Arguments are evaluated once. */
#define T_NONNULL(p) do { const void *p_ = (p); \
    if (p_ == NULL) ck_abort_msg("%s is NULL", #p); } while (0)
#define T_NULL(p) do { const void *p_ = (p); \
    if (p_ != NULL) ck_abort_msg("%s == %p, expected NULL", #p, p_); } while (0)
#define T_PTR_EQ(a, b) do { const void *a_ = (a), *b_ = (b); \
    if (a_ != b_) ck_abort_msg("%s == %p, %s == %p", #a, a_, #b, b_); } while (0)
#define T_INT_EQ(a, b) do { intmax_t a_ = (a), b_ = (b); \
    if (a_ != b_) ck_abort_msg("%s == %jd, %s == %jd", #a, a_, #b, b_); } while (0)
#define T_UINT_EQ(a, b) do { uintmax_t a_ = (a), b_ = (b); \
    if (a_ != b_) ck_abort_msg("%s == %ju, %s == %ju", #a, a_, #b, b_); } while (0)
#define T_UINT_LE(a, b) do { uintmax_t a_ = (a), b_ = (b); \
    if (!(a_ <= b_)) ck_abort_msg("%s == %ju > %s == %ju", #a, a_, #b, b_); } while (0)
#define T_TRUE(c) do { if (!(c)) ck_abort_msg("false: %s", #c); } while (0)
#define T_FLOAT_EQ(a, b) do { float a_ = (a), b_ = (b); \
    if (a_ != b_) ck_abort_msg("%s == %.9g, %s == %.9g", #a, (double)a_, #b, (double)b_); \
} while (0)

/* Distinct pseudo-random keys: zps_mix64 is a bijection. */
static uint64_t s_key(uint64_t i)
{
    return zps_mix64(i, T_SEED);
}

/* The table's hash of a key, and the key with a chosen hash. */
static uint64_t s_h(uint64_t key)
{
    return zps_mix64(key, ZPS_SEED_TABLE);
}

/* Segments split past T_SEG homes here (the default, ZPS_TABLE_SEG_MAX, is
 * four times that: the splits would need four times the keys). */
#define T_SEG (1u << 19)

/* Tables here use the fixed seed ZPS_SEED_TABLE (zps_table_new picks a
 * random one), so that keys can be placed on purpose with s_kh. */
static zps_table_t *s_new(uint32_t row_floats, size_t hint)
{
    zps_table_t *t = zps_table_new_seed(row_floats, hint, ZPS_SEED_TABLE);
    if (t != NULL)
        zps_table_set_split(t, T_SEG);
    return t;
}

static uint64_t s_kh(uint64_t h)
{
    return zps_unmix64(h, ZPS_SEED_TABLE);
}

/* The key whose hash is 0 (kept in the side row) and the one whose hash is
 * the largest. */
#define K_SIDE (s_kh(0))
#define K_MAXH (s_kh(UINT64_MAX))

/* A hash whose home is j in a depth-0 segment of cap homes, with low 32
 * bits lo: the smallest top half x with (x * cap) >> 32 == j. */
static uint64_t s_h_home(size_t j, size_t cap, uint32_t lo)
{
    uint64_t x = (((uint64_t)j << 32) + cap - 1) / cap;
    return x << 32 | lo;
}

static size_t s_home0(uint64_t h, size_t cap)
{
    return (size_t)(((h >> 32) * (uint64_t)cap) >> 32);
}

/* xorshift64 (state not 0). */
static uint64_t s_rng(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Row values derived from the key (exact in a float: 24 bits each). */
static float s_v0(uint64_t key)
{
    return (float)(key >> 40);
}

static float s_v1(uint64_t key)
{
    return (float)(key & 0xffffffu) + 0.5f;
}

static void s_fill(float *row, uint32_t nf, uint64_t key)
{
    for (uint32_t j = 0; j < nf; j++)
        row[j] = (float)((key >> (j % 40)) & 0xffffffu) + (float)j * 0.25f;
}

static void s_check_row(const float *row, uint32_t nf, uint64_t key)
{
    for (uint32_t j = 0; j < nf; j++)
        T_FLOAT_EQ(row[j], (float)((key >> (j % 40)) & 0xffffffu) + (float)j * 0.25f);
}

static void s_check_zero(const float *row, uint32_t nf)
{
    for (uint32_t j = 0; j < nf; j++)
        T_FLOAT_EQ(row[j], 0.0f);
}

/* Insert key (must be new) with an s_fill row. */
static void s_put(zps_table_t *t, uint64_t key)
{
    uint32_t nf = zps_table_row_floats(t);
    int ins = -1;
    float *r = zps_table_upsert(t, key, &ins);
    T_NONNULL(r);
    T_INT_EQ(ins, 1);
    s_check_zero(r, nf);
    s_fill(r, nf, key);
}

/* key is stored with its s_fill row. */
static void s_expect(const zps_table_t *t, uint64_t key)
{
    float *r = zps_table_find(t, key);
    if (r == NULL)
        ck_abort_msg("key %#llx (hash %#llx) not found", (unsigned long long)key,
                     (unsigned long long)s_h(key));
    s_check_row(r, zps_table_row_floats(t), key);
}

/* Insert keys s_key(lo..hi) with s_fill rows; every one must be new. */
static void s_insert_range(zps_table_t *t, uint64_t lo, uint64_t hi)
{
    for (uint64_t i = lo; i < hi; i++)
        s_put(t, s_key(i));
}

static void s_check_range(const zps_table_t *t, uint64_t lo, uint64_t hi)
{
    for (uint64_t i = lo; i < hi; i++)
        s_expect(t, s_key(i));
}

static int s_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* A whole iteration from ZPS_TABLE_CUR_INIT visits exactly the hashes hs
 * (sorted here; n of them) in increasing order, each key with its own row
 * (== zps_table_find) and its s_fill content; the cursor's pos is the next
 * hash each time, done set at the end, and next keeps returning 0. */
static void s_check_iter(const zps_table_t *t, uint64_t *hs, size_t n)
{
    qsort(hs, n, sizeof *hs, s_u64_cmp);
    uint32_t nf = zps_table_row_floats(t);
    zps_table_cur_t c = ZPS_TABLE_CUR_INIT;
    T_UINT_EQ(c.pos, 0);
    T_INT_EQ(c.done, 0);
    uint64_t gen = zps_table_gen(t);
    for (size_t i = 0; i < n; i++) {
        uint64_t key = 0;
        float *row = NULL;
        if (zps_table_next(t, &c, &key, &row) != 1)
            ck_abort_msg("iteration ended after %zu of %zu keys", i, n);
        if (s_h(key) != hs[i])
            ck_abort_msg("visit %zu: hash %#llx, expected %#llx", i,
                         (unsigned long long)s_h(key), (unsigned long long)hs[i]);
        T_PTR_EQ(row, zps_table_find(t, key));
        s_check_row(row, nf, key);
        if (hs[i] == UINT64_MAX) {
            T_INT_EQ(c.done, 1);
        } else {
            T_INT_EQ(c.done, 0);
            T_UINT_EQ(c.pos, hs[i] + 1);
        }
    }
    uint64_t key = 12345;
    float *row = NULL;
    T_INT_EQ(zps_table_next(t, &c, &key, &row), 0);
    T_INT_EQ(c.done, 1);
    T_INT_EQ(zps_table_next(t, &c, &key, &row), 0);
    T_INT_EQ(zps_table_next(t, &c, NULL, NULL), 0);
    T_INT_EQ(c.done, 1);
    T_UINT_EQ(zps_table_gen(t), gen);
}

/* Hashes of keys[0..n) into a fresh array (caller frees). */
static uint64_t *s_hashes(const uint64_t *keys, size_t n)
{
    uint64_t *hs = malloc((n ? n : 1) * sizeof *hs);
    T_NONNULL(hs);
    for (size_t i = 0; i < n; i++)
        hs[i] = s_h(keys[i]);
    return hs;
}

static void s_check_iter_keys(const zps_table_t *t, const uint64_t *keys, size_t n)
{
    uint64_t *hs = s_hashes(keys, n);
    s_check_iter(t, hs, n);
    free(hs);
}

START_TEST(test_basic)
{
    T_NULL(s_new(0, 10));
    zps_table_t *t = s_new(2, 0);
    T_NONNULL(t);
    T_UINT_EQ(zps_table_size(t), 0);
    T_UINT_EQ(zps_table_row_floats(t), 2);
    ck_assert_uint_gt(zps_table_bytes(t), 0);
    ck_assert_uint_gt(zps_table_capacity(t), 0);
    T_NULL(zps_table_find(t, 42));
    T_INT_EQ(zps_table_delete(t, 42), 0);

    int ins = -1;
    float *r = zps_table_upsert(t, 42, &ins);
    T_NONNULL(r);
    T_INT_EQ(ins, 1);
    T_UINT_EQ((uintptr_t)r % _Alignof(float), 0);
    T_FLOAT_EQ(r[0], 0.0f);
    T_FLOAT_EQ(r[1], 0.0f);
    r[0] = 1.5f;
    r[1] = -2.0f;
    T_PTR_EQ(zps_table_upsert(t, 42, &ins), r);
    T_INT_EQ(ins, 0);
    T_PTR_EQ(zps_table_find(t, 42), r);
    T_FLOAT_EQ(r[0], 1.5f);
    T_FLOAT_EQ(r[1], -2.0f);
    T_UINT_EQ(zps_table_size(t), 1);

    float *r2 = zps_table_upsert(t, 43, NULL); /* inserted may be NULL */
    T_NONNULL(r2);
    T_FLOAT_EQ(r2[0], 0.0f);
    r2[0] = 7.0f;
    r = zps_table_find(t, 42); /* the insert may have moved it */
    T_NONNULL(r);
    ck_assert_ptr_ne(r2, r);
    T_FLOAT_EQ(r[0], 1.5f);
    T_FLOAT_EQ(r[1], -2.0f);
    T_UINT_EQ(zps_table_size(t), 2);
    T_PTR_EQ(zps_table_upsert(t, 43, NULL), r2);
    T_UINT_EQ(zps_table_size(t), 2);

    T_INT_EQ(zps_table_delete(t, 42), 1);
    T_INT_EQ(zps_table_delete(t, 42), 0);
    T_NULL(zps_table_find(t, 42));
    r2 = zps_table_find(t, 43);
    T_NONNULL(r2);
    T_FLOAT_EQ(r2[0], 7.0f);
    T_UINT_EQ(zps_table_size(t), 1);
    r = zps_table_upsert(t, 42, &ins); /* back, zero-filled */
    T_INT_EQ(ins, 1);
    T_FLOAT_EQ(r[0], 0.0f);
    T_FLOAT_EQ(r[1], 0.0f);

    zps_table_destroy(&t);
    T_NULL(t);
    zps_table_destroy(&t);
    zps_table_destroy(NULL);
}
END_TEST

/* Fill a table to exactly its hint: no grow may happen, and hits and
 * misses must still be right. */
static void s_high_load(size_t n)
{
    zps_table_t *t = s_new(2, n);
    T_NONNULL(t);
    const size_t cap = zps_table_capacity(t);
    T_UINT_LE(n * 10 / 9, cap);
    for (size_t i = 0; i < n; i++) {
        int ins = -1;
        float *r = zps_table_upsert(t, s_key(i), &ins);
        T_NONNULL(r);
        T_INT_EQ(ins, 1);
        r[0] = s_v0(s_key(i));
        r[1] = s_v1(s_key(i));
    }
    T_UINT_EQ(zps_table_capacity(t), cap); /* sized for the hint: no grow */
    T_UINT_EQ(zps_table_size(t), n);
    for (size_t i = 0; i < n; i++) {
        float *r = zps_table_find(t, s_key(i));
        T_NONNULL(r);
        T_FLOAT_EQ(r[0], s_v0(s_key(i)));
        T_FLOAT_EQ(r[1], s_v1(s_key(i)));
    }
    for (size_t i = n; i < 3 * n; i++)
        T_NULL(zps_table_find(t, s_key(i)));
    T_UINT_EQ(zps_table_size(t), n);
    T_UINT_EQ(zps_table_capacity(t), cap);
    zps_table_destroy(&t);
}

START_TEST(test_high_load)
{
    s_high_load(98304);
    s_high_load(((size_t)4 << 20) / 16 * 3 / 4); /* 4 MB of 16-byte entries at 3/4: the largest presize */
    s_high_load(1000);
    /* a big hint presizes only 4 MB of entries */
    for (uint32_t nf = 1; nf <= 64; nf *= 4) {
        zps_table_t *t = s_new(nf, (size_t)1 << 40);
        T_NONNULL(t);
        const size_t stride = 8 + 4 * (size_t)nf;
        T_UINT_LE(zps_table_capacity(t) * stride, ((size_t)4 << 20) + 2 * stride);
        T_UINT_LE(zps_table_bytes(t), ((size_t)4 << 20) + ZPS_TABLE_SPILL * stride + 8192);
        zps_table_destroy(&t);
    }
}
END_TEST

START_TEST(test_absent)
{
    zps_table_t *t = s_new(2, 0);
    T_NONNULL(t);
    const uint64_t n = 10000;
    for (uint64_t i = 0; i < 100000; i++)
        T_NULL(zps_table_find(t, s_key(i)));
    T_NULL(zps_table_find(t, K_SIDE));
    T_NULL(zps_table_find(t, K_MAXH));
    T_UINT_EQ(zps_table_size(t), 0);
    s_insert_range(t, 0, n);
    for (uint64_t i = n; i < 20 * n; i++)
        T_NULL(zps_table_find(t, s_key(i)));
    T_NULL(zps_table_find(t, K_SIDE));
    T_NULL(zps_table_find(t, K_MAXH));
    T_UINT_EQ(zps_table_size(t), n);

    uint64_t keys[100];
    float *rows[100];
    for (uint64_t i = 0; i < 100; i++)
        keys[i] = i == 50 ? K_SIDE : i == 51 ? K_MAXH : s_key(2000000 + i);
    zps_table_find_batch(t, keys, 100, rows);
    for (int i = 0; i < 100; i++)
        T_NULL(rows[i]);
    T_UINT_EQ(zps_table_size(t), n);
    s_check_range(t, 0, n);
    zps_table_destroy(&t);
}
END_TEST

static size_t s_gcd(size_t a, size_t b)
{
    while (b != 0) {
        size_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* Is h one of hs[0..n)? */
static int s_in(const uint64_t *hs, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++)
        if (hs[i] == h)
            return 1;
    return 0;
}

/* The stored hashes hs[0..n) are found with their rows; hashes next to
 * them, and more at the homes of groups (home j, low bits lo), are not. */
static void s_check_crafted(const zps_table_t *t, const uint64_t *hs, size_t n, size_t cap,
                            const size_t *homes, size_t nhomes)
{
    for (size_t i = 0; i < n; i++) {
        s_expect(t, s_kh(hs[i]));
        uint64_t near[2] = {hs[i] - 1, hs[i] + 1};
        for (int k = 0; k < 2; k++)
            if (near[k] != 0 && !s_in(hs, n, near[k]))
                T_NULL(zps_table_find(t, s_kh(near[k])));
    }
    for (size_t g = 0; g < nhomes; g++)
        for (uint64_t lo = 0x00800000u; lo < 0xff000000u; lo += 0x02000000u) {
            uint64_t h = s_h_home(homes[g], cap, (uint32_t)lo);
            if (!s_in(hs, n, h))
                T_NULL(zps_table_find(t, s_kh(h)));
        }
}

/* Many keys sharing one home and adjacent homes in the middle of one
 * segment, inserted out of order (each insert shifts part of the cluster):
 * all found with their rows after every insert, near misses absent; no
 * grow; iteration in hash order.  Deletes from the middle of the clusters
 * (backward shift) keep the rest found; re-inserts start at zero. */
START_TEST(test_cluster_one_home)
{
    zps_table_t *t = s_new(3, 1000);
    T_NONNULL(t);
    const size_t cap = zps_table_capacity(t);
    ck_assert_uint_lt(cap, T_SEG); /* one segment of depth 0 */
    ck_assert_uint_gt(cap, 400);
    enum { NA = 40, NB = 20, NC = 30, ND = 10, NE = 5, NF = 5 };
    enum { N = NA + NB + NC + ND + NE + NF };
    static uint64_t hs[N];
    size_t n = 0;
    for (uint32_t i = 0; i < NA; i++) /* home 100 */
        hs[n++] = s_h_home(100, cap, 0x01000000u * (i + 1) + 7);
    for (uint32_t i = 0; i < NB; i++) /* homes 101..105, 4 each */
        hs[n++] = s_h_home(101 + i / 4, cap, 0x03000000u * (i % 4 + 1) + 11);
    for (uint32_t i = 0; i < NC; i++) /* homes 120..129, 3 each */
        hs[n++] = s_h_home(120 + i / 3, cap, 0x05000000u * (i % 3 + 1) + 13);
    for (uint32_t i = 0; i < ND; i++) /* home 300: 300..309 */
        hs[n++] = s_h_home(300, cap, 0x10000000u * (i + 1));
    for (uint32_t i = 0; i < NE; i++) /* home 303: displaced to 310..314 */
        hs[n++] = s_h_home(303, cap, 0x10000000u * (i + 1) + 1);
    for (uint32_t i = 0; i < NF; i++) /* home 305: displaced to 315..319 */
        hs[n++] = s_h_home(305, cap, 0x10000000u * (i + 1) + 2);
    T_UINT_EQ(n, N);
    static const size_t homes[] = {100, 101, 105, 106, 120, 129, 300, 303, 305, 320};
    const size_t nh = sizeof homes / sizeof homes[0];
    for (size_t i = 0; i < NA; i++) /* the crafted homes are right */
        T_UINT_EQ(s_home0(hs[i], cap), 100);
    T_UINT_EQ(s_home0(hs[NA + NB - 1], cap), 105);
    T_UINT_EQ(s_home0(hs[NA + NB + NC + ND], cap), 303);

    const uint64_t gen0 = zps_table_gen(t);
    static uint64_t done[N];
    for (size_t k = 0; k < N; k++) {
        size_t i = k * 37 % N; /* 37 and N coprime: a scrambled order */
        s_put(t, s_kh(hs[i]));
        done[k] = hs[i];
        s_check_crafted(t, done, k + 1, cap, homes, nh);
    }
    T_UINT_EQ(zps_table_size(t), N);
    T_UINT_EQ(zps_table_capacity(t), cap); /* no grow */
    ck_assert_uint_ne(zps_table_gen(t), gen0); /* inserts shifted entries */
    s_check_crafted(t, hs, N, cap, homes, nh);
    memcpy(done, hs, sizeof hs);
    s_check_iter(t, done, N);

    /* delete from the middle of each cluster: every third key */
    static uint64_t left[N], gone[N];
    size_t nl = 0, ng = 0;
    for (size_t i = 0; i < N; i++) {
        if (i % 3 == 1) {
            uint64_t g = zps_table_gen(t);
            T_INT_EQ(zps_table_delete(t, s_kh(hs[i])), 1);
            ck_assert_uint_ne(zps_table_gen(t), g);
            T_INT_EQ(zps_table_delete(t, s_kh(hs[i])), 0);
            gone[ng++] = hs[i];
        } else {
            left[nl++] = hs[i];
        }
        /* those not yet reached, and those kept, are all still there */
        for (size_t j = i + 1; j < N; j++)
            s_expect(t, s_kh(hs[j]));
        for (size_t j = 0; j < nl; j++)
            s_expect(t, s_kh(left[j]));
        for (size_t j = 0; j < ng; j++)
            T_NULL(zps_table_find(t, s_kh(gone[j])));
    }
    T_UINT_EQ(zps_table_size(t), nl);
    s_check_crafted(t, left, nl, cap, homes, nh);
    memcpy(done, left, nl * sizeof *left);
    s_check_iter(t, done, nl);

    /* the home-300 run empties one key at a time: the displaced home-303
     * and home-305 runs shift back towards their homes, never past them */
    for (size_t i = NA + NB + NC; i < NA + NB + NC + ND; i++) {
        zps_table_delete(t, s_kh(hs[i]));
        for (size_t j = NA + NB + NC + ND; j < N; j++)
            if (s_in(left, nl, hs[j]))
                s_expect(t, s_kh(hs[j]));
    }
    /* back again: rows start at zero */
    for (size_t i = 0; i < N; i++) {
        if (zps_table_find(t, s_kh(hs[i])) == NULL)
            s_put(t, s_kh(hs[i]));
    }
    T_UINT_EQ(zps_table_size(t), N);
    s_check_crafted(t, hs, N, cap, homes, nh);
    memcpy(done, hs, sizeof hs);
    s_check_iter(t, done, N);

    /* all out, in another scrambled order */
    for (size_t k = 0; k < N; k++) {
        size_t i = k * 53 % N;
        T_INT_EQ(zps_table_delete(t, s_kh(hs[i])), 1);
        for (size_t j = k + 1; j < N; j++)
            s_expect(t, s_kh(hs[j * 53 % N]));
    }
    T_UINT_EQ(zps_table_size(t), 0);
    zps_table_cur_t c = ZPS_TABLE_CUR_INIT;
    T_INT_EQ(zps_table_next(t, &c, NULL, NULL), 0);
    T_INT_EQ(c.done, 1);
    T_UINT_EQ(zps_table_capacity(t), cap);
    zps_table_destroy(&t);
}
END_TEST

/* A cluster of g homes x per keys in the last homes of the segment, more
 * than those homes and the spill past the last home hold: some insert must
 * rebuild the segment with a longer spill (the same homes: more would not
 * move a cluster at the end) while it is far from 9/10 full.  Every key is
 * found after every insert, and misses next to them and above them (whose
 * scans run to the cluster's end: the array's last entry must stay empty)
 * are absent.  Returns the table. */
static zps_table_t *s_spill_end(size_t g, size_t per, uint64_t *hs)
{
    zps_table_t *t = s_new(2, 1000);
    T_NONNULL(t);
    const size_t cap = zps_table_capacity(t);
    ck_assert_uint_lt(cap, T_SEG); /* one segment of depth 0 */
    const size_t n = g * per;
    ck_assert_uint_gt(n, g + ZPS_TABLE_SPILL); /* cannot fit in [cap - g, cap + SPILL) */
    size_t m = 0;
    for (uint32_t j = 0; j < g; j++)
        for (uint32_t i = 0; i < per; i++)
            hs[m++] = s_h_home(cap - g + j, cap, 0x02000000u * (i + 1) + j);
    T_UINT_EQ(s_home0(hs[n - 1], cap), cap - 1);
    const size_t hm[3] = {cap - g, cap - 2, cap - 1};
    uint64_t gen = zps_table_gen(t);
    int bigger = 0;
    size_t step = 29; /* coprime with n, for a scrambled order */
    while (s_gcd(step, n) != 1)
        step++;
    static uint64_t done[256];
    ck_assert_uint_le(n, 256);
    for (size_t k = 0; k < n; k++) {
        size_t i = (k * step) % n;
        size_t before = zps_table_capacity(t), bbefore = zps_table_bytes(t);
        s_put(t, s_kh(hs[i]));
        done[k] = hs[i];
        if (zps_table_bytes(t) != bbefore) {
            /* grown although far below 9/10 full: the spill ran out */
            T_UINT_LE(zps_table_size(t) * 10, before * 9);
            T_UINT_EQ(zps_table_capacity(t), before);
            ck_assert_uint_gt(zps_table_bytes(t), bbefore);
            ck_assert_uint_ne(zps_table_gen(t), gen);
            bigger++;
        }
        gen = zps_table_gen(t);
        s_check_crafted(t, done, k + 1, cap, hm, 3);
        T_NULL(zps_table_find(t, K_MAXH));
    }
    ck_assert_int_ge(bigger, 1);
    T_UINT_EQ(zps_table_capacity(t), cap);
    T_UINT_EQ(zps_table_size(t), n);
    memcpy(done, hs, n * sizeof *hs);
    s_check_iter(t, done, n);
    return t;
}

START_TEST(test_cluster_spill_end)
{
    static uint64_t hs[256];
    /* from 3 homes (a few keys short of fitting after one bigger rebuild)
     * to 16; never one home alone (see test_cluster_segment_end) */
    for (size_t g = 3; g <= 16; g++)
        for (size_t per = (g + ZPS_TABLE_SPILL) / g + 1; per * g <= g + 90; per += 1 + g / 6) {
            zps_table_t *t = s_spill_end(g, per, hs);
            zps_table_destroy(&t);
        }

    /* random keys around one, then delete the crafted ones from the middle
     * out */
    enum { G = 12, PER = 7, N = G * PER };
    zps_table_t *t = s_spill_end(G, PER, hs);
    s_insert_range(t, 0, 5000);
    for (size_t i = 0; i < N; i++)
        s_expect(t, s_kh(hs[i]));
    s_check_range(t, 0, 5000);
    for (size_t k = 0; k < N; k++) {
        size_t i = (N / 2 + k * 5) % N;
        T_INT_EQ(zps_table_delete(t, s_kh(hs[i])), 1);
        T_NULL(zps_table_find(t, s_kh(hs[i])));
        for (size_t j = k + 1; j < N; j++)
            s_expect(t, s_kh(hs[(N / 2 + j * 5) % N]));
    }
    s_check_range(t, 0, 5000);
    T_UINT_EQ(zps_table_size(t), 5000);
    zps_table_destroy(&t);
}
END_TEST

/* 100 keys whose hashes share their top 32 bits, all ones: at depth 0 they
 * share the very last home whatever the cap, more than the spill holds, so
 * only splits (which bring lower hash bits into the home) can place them.
 * Many random keys live in the same table. */
START_TEST(test_cluster_top_bits)
{
    zps_table_t *t = s_new(2, 0);
    T_NONNULL(t);
    enum { N = 100, R = 30000 };
    static uint64_t keys[N + R];
    for (uint32_t i = 0; i < N; i++)
        keys[i] = s_kh(0xffffffff00000000ull | (zps_mix64(i, 3) & 0xffffffffu) | 1u);
    for (uint32_t i = 0; i < R; i++)
        keys[N + i] = s_key(i);
    for (size_t k = 0; k < N + R; k++) {
        /* crafted and random keys interleaved */
        size_t i = k < 2 * N ? (k % 2 ? N + k / 2 : k / 2) : k;
        s_put(t, keys[i]);
        if (k < 2 * N || k % 1000 == 0)
            for (size_t j = 0; j <= k; j++)
                s_expect(t, keys[j < 2 * N ? (j % 2 ? N + j / 2 : j / 2) : j]);
    }
    T_UINT_EQ(zps_table_size(t), N + R);
    for (size_t i = 0; i < N + R; i++)
        s_expect(t, keys[i]);
    s_check_iter_keys(t, keys, N + R);
    for (size_t i = 0; i < N; i += 2)
        T_INT_EQ(zps_table_delete(t, keys[i]), 1);
    for (size_t i = 0; i < N + R; i++) {
        if (i < N && i % 2 == 0)
            T_NULL(zps_table_find(t, keys[i]));
        else
            s_expect(t, keys[i]);
    }
    zps_table_destroy(&t);
}
END_TEST

/* A directory whose segments have different depths (65 keys sharing the
 * top 32 hash bits, all ones, split the top segment again and again, the
 * rest of the hash range stays in shallow segments): all keys found, and
 * destroy frees each segment once, reading none after freeing it (ASan
 * shows this). */
START_TEST(test_destroy_uneven)
{
    zps_table_t *t = s_new(2, 0);
    T_NONNULL(t);
    enum { N = ZPS_TABLE_SPILL + 1, R = 1000 };
    static uint64_t keys[N + R];
    for (uint32_t i = 0; i < N; i++)
        keys[i] = s_kh(0xffffffff00000000ull | (zps_mix64(i, 3) & 0xffffffffu) | 1u);
    for (uint32_t i = 0; i < R; i++)
        keys[N + i] = s_key(i);
    for (size_t i = 0; i < N + R; i++)
        s_put(t, keys[i]);
    for (size_t i = 0; i < N + R; i++)
        s_expect(t, keys[i]);
    s_check_iter_keys(t, keys, N + R);
    zps_table_destroy(&t);
    T_NULL(t);
}
END_TEST

/* The side key (hash 0) and the key with hash UINT64_MAX through every
 * call. */
START_TEST(test_side_key)
{
    const uint64_t k0 = K_SIDE, km = K_MAXH;
    T_UINT_EQ(s_h(k0), 0);
    T_UINT_EQ(s_h(km), UINT64_MAX);
    for (uint32_t nf = 1; nf <= 5; nf += 2) {
        zps_table_t *t = s_new(nf, 0);
        T_NONNULL(t);
        uint64_t key;
        float *row;
        T_NULL(zps_table_find(t, k0));
        T_NULL(zps_table_find(t, km));
        T_INT_EQ(zps_table_delete(t, k0), 0);
        T_INT_EQ(zps_table_delete(t, km), 0);
        T_INT_EQ(zps_table_sample(t, 0, &key, &row), 0);
        T_INT_EQ(zps_table_sample(t, 12345, &key, &row), 0);
        zps_table_cur_t c = ZPS_TABLE_CUR_INIT;
        T_INT_EQ(zps_table_next(t, &c, &key, &row), 0);

        /* the side key alone */
        int ins = -1;
        float *r0 = zps_table_upsert(t, k0, &ins);
        T_NONNULL(r0);
        T_INT_EQ(ins, 1);
        s_check_zero(r0, nf);
        s_fill(r0, nf, k0);
        T_UINT_EQ(zps_table_size(t), 1);
        T_PTR_EQ(zps_table_find(t, k0), r0);
        T_PTR_EQ(zps_table_upsert(t, k0, &ins), r0);
        T_INT_EQ(ins, 0);
        T_UINT_EQ(zps_table_size(t), 1);
        T_NULL(zps_table_find(t, km));
        T_NULL(zps_table_find(t, s_kh(1)));
        uint64_t kb[3] = {k0, km, k0};
        float *rb[3];
        zps_table_find_batch(t, kb, 3, rb);
        T_PTR_EQ(rb[0], r0);
        T_NULL(rb[1]);
        T_PTR_EQ(rb[2], r0);
        c = (zps_table_cur_t)ZPS_TABLE_CUR_INIT;
        T_INT_EQ(zps_table_next(t, &c, &key, &row), 1);
        T_UINT_EQ(key, k0);
        T_PTR_EQ(row, r0);
        T_UINT_EQ(c.pos, 1);
        T_INT_EQ(c.done, 0);
        T_INT_EQ(zps_table_next(t, &c, &key, &row), 0);
        T_INT_EQ(c.done, 1);
        static const uint64_t rs[] = {0, 1, 2, 1ull << 63, UINT64_MAX - 1, UINT64_MAX};
        for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++) {
            key = 0;
            row = NULL;
            T_INT_EQ(zps_table_sample(t, rs[i], &key, &row), 1);
            T_UINT_EQ(key, k0);
            T_PTR_EQ(row, r0);
        }

        /* with the largest hash and a few others */
        s_put(t, km);
        uint64_t ks[6] = {k0, km, s_kh(1), s_kh(2), s_kh(UINT64_MAX - 1), s_kh(1ull << 63)};
        for (int i = 2; i < 6; i++)
            s_put(t, ks[i]);
        T_UINT_EQ(zps_table_size(t), 6);
        for (int i = 0; i < 6; i++)
            s_expect(t, ks[i]);
        s_check_iter_keys(t, ks, 6); /* k0 first, km last (done at once) */
        for (uint64_t i = 0; i < 204; i++) {
            uint64_t r = i < 200 ? zps_mix64(i, 9) : i == 200 ? 0 : i == 201 ? 1 : UINT64_MAX - (i - 202);
            T_INT_EQ(zps_table_sample(t, r, &key, &row), 1);
            int found = 0;
            for (int j = 0; j < 6; j++)
                found |= key == ks[j];
            T_INT_EQ(found, 1);
            T_PTR_EQ(row, zps_table_find(t, key));
        }
        float *rows[8];
        uint8_t insb[8];
        uint64_t kb2[8] = {km, k0, s_kh(3), k0, km, s_kh(3), s_kh(UINT64_MAX - 2), k0};
        T_INT_EQ(zps_table_upsert_batch(t, kb2, 8, rows, insb), 0);
        static const uint8_t want[8] = {0, 0, 1, 0, 0, 0, 1, 0};
        for (int i = 0; i < 8; i++) {
            T_UINT_EQ(insb[i], want[i]);
            T_PTR_EQ(rows[i], zps_table_find(t, kb2[i]));
            if (want[i])
                s_fill(rows[i], nf, kb2[i]);
        }
        T_PTR_EQ(rows[1], rows[3]);
        T_PTR_EQ(rows[0], rows[4]);
        T_UINT_EQ(zps_table_size(t), 8);
        s_expect(t, k0);
        s_expect(t, km);

        /* delete each: the other stays; back at zero */
        T_INT_EQ(zps_table_delete(t, k0), 1);
        T_INT_EQ(zps_table_delete(t, k0), 0);
        T_NULL(zps_table_find(t, k0));
        s_expect(t, km);
        T_UINT_EQ(zps_table_size(t), 7);
        c = (zps_table_cur_t)ZPS_TABLE_CUR_INIT;
        T_INT_EQ(zps_table_next(t, &c, &key, NULL), 1);
        T_UINT_EQ(key, s_kh(1));
        T_INT_EQ(zps_table_delete(t, km), 1);
        T_NULL(zps_table_find(t, km));
        T_INT_EQ(zps_table_sample(t, UINT64_MAX, &key, &row), 1);
        ck_assert_uint_ne(key, km);
        ck_assert_uint_ne(key, k0);
        T_PTR_EQ(row, zps_table_find(t, key));
        s_put(t, k0);
        s_put(t, km);
        T_UINT_EQ(zps_table_size(t), 8);

        /* through growth and splits: the side key stays */
        uint64_t ng = 0;
        for (uint64_t i = 0; i < 5000; i++) {
            s_put(t, s_key(i));
            ng++;
        }
        s_expect(t, k0);
        s_expect(t, km);
        T_UINT_EQ(zps_table_size(t), 8 + ng);
        T_INT_EQ(zps_table_delete(t, k0), 1);
        T_INT_EQ(zps_table_delete(t, km), 1);
        T_UINT_EQ(zps_table_size(t), 6 + ng);
        s_check_range(t, 0, ng);
        zps_table_destroy(&t);
    }
}
END_TEST

/* From hint 0 to past 2 * T_SEG keys: segments must split;
 * keys crafted next to the boundaries of segments of depth up to 4 are
 * there from the start.  Every key is checked at checkpoints, then the
 * iteration. */
START_TEST(test_growth_splits)
{
    zps_table_t *t = s_new(1, 0);
    T_NONNULL(t);
    enum { B = 16, PER = 12 };
    static uint64_t bkeys[B * PER * 2];
    size_t nb = 0;
    for (uint64_t m = 0; m < B; m++)
        for (uint64_t i = 0; i < PER; i++) {
            bkeys[nb++] = s_kh((m << 60) + 1 + i * 5);  /* from a boundary up */
            bkeys[nb++] = s_kh((m << 60) - 2 - i * 5);  /* below it (m 0: the top) */
        }
    for (size_t i = 0; i < nb; i++)
        s_put(t, bkeys[i]);
    const uint64_t gen0 = zps_table_gen(t);
    const size_t n = 2 * T_SEG + T_SEG / 4;
    size_t cap = zps_table_capacity(t);
    uint64_t gen = zps_table_gen(t);
    int grows = 0;
    for (size_t i = 0; i < n; i++) {
        s_put(t, s_key(i));
        if (zps_table_capacity(t) != cap) {
            /* a rebuild or a split moved every entry of a segment */
            if (zps_table_gen(t) == gen)
                ck_abort_msg("capacity %zu -> %zu, gen unchanged", cap, zps_table_capacity(t));
            grows++;
            cap = zps_table_capacity(t);
        }
        gen = zps_table_gen(t);
        if ((i + 1) % (n / 4) == 0) {
            s_check_range(t, 0, i + 1);
            for (size_t j = 0; j < nb; j++)
                s_expect(t, bkeys[j]);
            T_UINT_LE((i + 1 + nb) * 10 / 9, zps_table_capacity(t));
        }
    }
    T_UINT_EQ(zps_table_size(t), n + nb);
    ck_assert_int_gt(grows, 10);
    ck_assert_uint_ne(zps_table_gen(t), gen0);
    /* more homes than one segment may have: it split */
    ck_assert_uint_gt(zps_table_capacity(t), 2 * T_SEG);
    s_check_range(t, 0, n);
    for (size_t j = 0; j < nb; j++)
        s_expect(t, bkeys[j]);
    for (size_t i = n; i < n + 200000; i++)
        T_NULL(zps_table_find(t, s_key(i)));
    for (uint64_t m = 0; m < B; m++) /* near the boundaries, absent */
        for (uint64_t i = 0; i < PER; i++) {
            T_NULL(zps_table_find(t, s_kh((m << 60) + 3 + i * 5)));
            T_NULL(zps_table_find(t, s_kh((m << 60) - 4 - i * 5)));
        }
    for (uint64_t m = 1; m < B; m++) /* each prefix's last hash */
        T_NULL(zps_table_find(t, s_kh((m << 60) - 1)));

    /* iteration: strictly increasing hashes, each key once */
    zps_table_cur_t c = ZPS_TABLE_CUR_INIT;
    uint64_t key, prev = 0, count = 0, nbseen = 0;
    float *row;
    while (zps_table_next(t, &c, &key, &row)) {
        uint64_t h = s_h(key);
        if (count > 0 && h <= prev)
            ck_abort_msg("hash %#llx after %#llx", (unsigned long long)h, (unsigned long long)prev);
        prev = h;
        s_check_row(row, 1, key);
        uint64_t i = zps_unmix64(key, T_SEED);
        if (i >= n) {
            T_INT_EQ(s_in(bkeys, nb, key), 1);
            nbseen++;
        }
        count++;
    }
    T_UINT_EQ(count, n + nb);
    T_UINT_EQ(nbseen, nb);
    zps_table_destroy(&t);
}
END_TEST

/* After a fill of N keys from hint 0 every segment is between 3/4 and 9/10
 * full (less 1/16 when a mapping of 2 MB or more is filled up to whole huge
 * pages), so capacity (homes) is in [N * 10/9, N * 4/3 * 17/16 + small],
 * and with 16-byte entries (row_floats 2) the bytes per key are at most
 * 16 / 0.75 * 17/16 and some spill; at least 16 * 10/9. */
START_TEST(test_fill_bounds)
{
    zps_table_t *t = s_new(2, 0);
    T_NONNULL(t);
    const size_t n = 3000000;
    for (size_t i = 0; i < n; i++) {
        float *r = zps_table_upsert(t, s_key(i), NULL);
        T_NONNULL(r);
        r[0] = s_v0(s_key(i));
        r[1] = s_v1(s_key(i));
        size_t k = i + 1;
        if (k % 100000 == 0) {
            size_t cap = zps_table_capacity(t);
            T_UINT_LE(k * 10 / 9, cap);
            T_UINT_LE(cap, k * 4 / 3 * 17 / 16 + k / 100);
        }
    }
    const size_t cap = zps_table_capacity(t), bytes = zps_table_bytes(t);
    T_UINT_LE(n * 10 / 9, cap);
    T_UINT_LE(cap, n * 4 / 3 * 17 / 16 + n / 100);
    T_UINT_LE(bytes, n * 16 * 4 / 3 * 17 / 16 + 2 * n); /* n * (16 / 0.75 * 17/16 + 2) */
    T_UINT_LE(n * 16 * 10 / 9, bytes);
    for (size_t i = 0; i < n; i += 3) {
        float *r = zps_table_find(t, s_key(i));
        T_NONNULL(r);
        T_FLOAT_EQ(r[0], s_v0(s_key(i)));
        T_FLOAT_EQ(r[1], s_v1(s_key(i)));
    }
    zps_table_destroy(&t);
}
END_TEST

/* A limit (zps_table_set_limit, an eviction cap): filled to its limit, a
 * table sits near 9/10 load, where the same fill without one is wherever
 * the last 4/3 step left it (here 0.77); keys past the limit still go in
 * (by small steps), and every key reads back.  Segments split (limit 2.5M,
 * T_SEG homes), so shares of the limit per segment are used. */
START_TEST(test_limit_load)
{
    const size_t lim = 2500000;
    zps_table_t *t = s_new(2, 0), *u = s_new(2, 0);
    T_NONNULL(t);
    T_NONNULL(u);
    zps_table_set_limit(t, lim);
    for (size_t i = 0; i < lim + lim / 10; i++) {
        if (i == lim) {
            double lt = (double)lim / (double)zps_table_capacity(t);
            double lu = (double)lim / (double)zps_table_capacity(u);
            ck_assert_msg(lt >= 0.85 && lt <= 0.9, "load at the limit %.3f", lt);
            ck_assert_msg(lu < 0.8, "without the limit %.3f: pick another size", lu);
        }
        float *r = zps_table_upsert(t, s_key(i), NULL);
        T_NONNULL(r);
        r[0] = s_v0(s_key(i));
        T_NONNULL(zps_table_upsert(u, s_key(i), NULL));
    }
    ck_assert_uint_gt(zps_table_capacity(t), T_SEG); /* it split */
    for (size_t i = 0; i < lim + lim / 10; i++) {
        float *r = zps_table_find(t, s_key(i));
        T_NONNULL(r);
        T_FLOAT_EQ(r[0], s_v0(s_key(i)));
    }
    zps_table_destroy(&t);
    zps_table_destroy(&u);
}
END_TEST

/* Key index of a visited key in the iteration tests (keys s_key(i)). */
static uint64_t s_index(uint64_t key)
{
    return zps_unmix64(key, T_SEED);
}

/* Hash order over random and extreme keys, and resuming from any pos (a
 * cursor travels as pos plus done): the first key visited is the one with
 * the smallest hash >= pos. */
START_TEST(test_iter_order)
{
    zps_table_t *t = s_new(3, 0);
    T_NONNULL(t);
    zps_table_cur_t c = ZPS_TABLE_CUR_INIT;
    T_INT_EQ(zps_table_next(t, &c, NULL, NULL), 0);
    T_INT_EQ(c.done, 1);
    T_INT_EQ(zps_table_next(t, &c, NULL, NULL), 0);

    enum { R = 150000, X = 8 };
    static uint64_t keys[R + X];
    for (uint64_t i = 0; i < R; i++)
        keys[i] = s_key(i);
    static const uint64_t xh[X] = {0, 1, 2, UINT64_MAX, UINT64_MAX - 1, 1ull << 63,
                                   (1ull << 63) - 1, 1ull << 62};
    for (int i = 0; i < X; i++)
        keys[R + i] = s_kh(xh[i]);
    for (size_t i = 0; i < R + X; i++)
        s_put(t, keys[i]);
    uint64_t *hs = s_hashes(keys, R + X);
    s_check_iter(t, hs, R + X); /* sorts hs */
    T_UINT_EQ(hs[0], 0);

    /* resume from chosen positions */
    uint64_t x = 99;
    for (int k = 0; k < 20000; k++) {
        uint64_t pos;
        switch (k % 4) {
        case 0: pos = s_rng(&x); break;
        case 1: pos = hs[s_rng(&x) % (R + X)]; break;
        case 2: pos = hs[s_rng(&x) % (R + X)] + 1; break;
        default: pos = hs[s_rng(&x) % (R + X)] - 1; break;
        }
        if (pos == 0)
            continue;
        /* first hash >= pos */
        size_t lo = 0, hi = R + X;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (hs[mid] < pos)
                lo = mid + 1;
            else
                hi = mid;
        }
        zps_table_cur_t cc = {pos, 0};
        uint64_t key;
        float *row;
        int rc = zps_table_next(t, &cc, &key, &row);
        if (lo == R + X) {
            T_INT_EQ(rc, 0);
            T_INT_EQ(cc.done, 1);
        } else {
            T_INT_EQ(rc, 1);
            T_UINT_EQ(s_h(key), hs[lo]);
            T_PTR_EQ(row, zps_table_find(t, key));
            if (lo + 1 < R + X) { /* and on to the next */
                T_INT_EQ(zps_table_next(t, &cc, &key, NULL), 1);
                T_UINT_EQ(s_h(key), hs[lo + 1]);
            }
        }
    }
    /* key and row may be NULL */
    c = (zps_table_cur_t)ZPS_TABLE_CUR_INIT;
    size_t cnt = 0;
    while (zps_table_next(t, &c, NULL, NULL))
        cnt++;
    T_UINT_EQ(cnt, R + X);
    free(hs);
    zps_table_destroy(&t);
}
END_TEST

/* One cursor of test_iter_survives and what it saw. */
typedef struct {
    zps_table_cur_t c;
    uint8_t *seen;
    uint64_t prev, visits;
    int started;
} iter_t;

/* One step of it: 0 at the end.  The key visited must be present, new to
 * this cursor, above the last one, with its own row. */
static int s_iter_step(const zps_table_t *t, iter_t *it, const uint8_t *present, uint64_t total)
{
    uint64_t key;
    float *row;
    if (!zps_table_next(t, &it->c, &key, &row))
        return 0;
    uint64_t h = s_h(key), i = s_index(key);
    if (it->started && h <= it->prev)
        ck_abort_msg("hash %#llx after %#llx", (unsigned long long)h, (unsigned long long)it->prev);
    it->started = 1;
    it->prev = h;
    if (i >= total)
        ck_abort_msg("visited a key never stored");
    if (!present[i])
        ck_abort_msg("visited key %llu, absent", (unsigned long long)i);
    if (it->seen[i])
        ck_abort_msg("visited key %llu twice", (unsigned long long)i);
    it->seen[i] = 1;
    it->visits++;
    T_PTR_EQ(row, zps_table_find(t, key));
    s_check_row(row, 2, key);
    return 1;
}

/* Cursors outlive changes.  Two cursors start on 120000 keys, then rounds
 * of 5000 inserts each (growth, and splits past T_SEG homes:
 * the table ends with several segments), deletes of keys visited and not
 * yet visited, re-inserts, and visits: one cursor slow (it walks into the
 * segments made meanwhile only at the end), one faster (it crosses segment
 * boundaries while splits happen).  For each: every key present
 * throughout is visited exactly once, no key twice, only keys present when
 * visited, in strictly increasing hash order. */
START_TEST(test_iter_survives)
{
    zps_table_t *t = s_new(2, 0);
    T_NONNULL(t);
    enum { N0 = 120000, ROUNDS = 150, PER = 5000, TOTAL = N0 + ROUNDS * PER };
    uint8_t *present = calloc(TOTAL, 1), *touched = calloc(TOTAL, 1);
    iter_t it[2];
    memset(it, 0, sizeof it);
    for (int j = 0; j < 2; j++) {
        it[j].c = (zps_table_cur_t)ZPS_TABLE_CUR_INIT;
        it[j].seen = calloc(TOTAL, 1);
        T_NONNULL(it[j].seen);
    }
    T_NONNULL(present);
    T_NONNULL(touched);
    s_insert_range(t, 0, N0);
    memset(present, 1, N0);
    for (int k = 0; k < 10000; k++)
        T_INT_EQ(s_iter_step(t, &it[0], present, TOTAL), 1);
    const size_t cap0 = zps_table_capacity(t);
    uint64_t x = 7, next = N0;
    enum { B = 1000 };
    static uint64_t keys[B];
    static float *rows[B];
    uint64_t pos_at_split = 0;
    for (int r = 0; r < ROUNDS; r++) {
        /* new keys: singly and in batches */
        if (r % 2) {
            s_insert_range(t, next, next + PER);
        } else {
            for (uint64_t b = next; b < next + PER; b += B) {
                for (size_t i = 0; i < B; i++)
                    keys[i] = s_key(b + i);
                T_INT_EQ(zps_table_upsert_batch(t, keys, B, rows, NULL), 0);
                for (size_t i = 0; i < B; i++)
                    s_fill(rows[i], 2, keys[i]);
            }
        }
        memset(present + next, 1, PER);
        memset(touched + next, 1, PER);
        next += PER;
        if (pos_at_split == 0 && zps_table_capacity(t) > T_SEG)
            pos_at_split = it[1].c.pos | 1;
        /* deletes: 100 that the slow cursor has not visited, 100 it has */
        int ahead = 0, behind = 0;
        for (int tries = 0; tries < 100000 && (ahead < 100 || behind < 100); tries++) {
            uint64_t i = s_rng(&x) % next;
            if (!present[i])
                continue;
            int vis = it[0].seen[i];
            if (vis ? behind >= 100 : ahead >= 100)
                continue;
            T_INT_EQ(zps_table_delete(t, s_key(i)), 1);
            present[i] = 0;
            touched[i] = 1;
            vis ? behind++ : ahead++;
        }
        T_INT_EQ(ahead, 100);
        T_INT_EQ(behind, 100);
        /* re-inserts of some deleted keys */
        for (int k = 0; k < 30; k++) {
            uint64_t i = s_rng(&x) % next;
            if (!present[i] && touched[i]) {
                s_put(t, s_key(i));
                present[i] = 1;
            }
        }
        for (int k = 0; k < 100; k++)
            s_iter_step(t, &it[0], present, TOTAL);
        for (int k = 0; k < 1800; k++)
            s_iter_step(t, &it[1], present, TOTAL);
    }
    ck_assert_uint_gt(zps_table_capacity(t), 4 * cap0);
    ck_assert_uint_gt(zps_table_capacity(t), T_SEG); /* split meanwhile */
    /* the faster cursor was mid-way when the table first split (where
     * exactly depends on the growth steps), and is past the middle now;
     * the slow one is still low */
    ck_assert_uint_ne(pos_at_split, 0);
    ck_assert_uint_lt(pos_at_split, 0xf000000000000000ull);
    ck_assert_uint_gt(it[1].c.pos, 1ull << 63);
    ck_assert_uint_lt(it[0].c.pos, 1ull << 62);
    for (int j = 0; j < 2; j++) {
        while (s_iter_step(t, &it[j], present, TOTAL))
            ;
        T_INT_EQ(it[j].c.done, 1);
        T_INT_EQ(zps_table_next(t, &it[j].c, NULL, NULL), 0);
        size_t must = 0;
        for (uint64_t i = 0; i < TOTAL; i++)
            if (present[i] && !touched[i]) { /* present throughout */
                must++;
                if (!it[j].seen[i])
                    ck_abort_msg("cursor %d: key %llu present throughout, never visited", j,
                                 (unsigned long long)i);
            }
        ck_assert_uint_gt(must, N0 / 2);
    }
    for (uint64_t i = 0; i < TOTAL; i++) {
        float *r = zps_table_find(t, s_key(i));
        if (present[i]) {
            T_NONNULL(r);
            s_check_row(r, 2, s_key(i));
        } else {
            T_NULL(r);
        }
    }
    free(present);
    free(touched);
    free(it[0].seen);
    free(it[1].seen);
    zps_table_destroy(&t);
}
END_TEST

/* upsert_batch whose inserts move entries (shifts in a cluster, growth,
 * splits): every rows[i] is valid afterwards (== zps_table_find), writes
 * through them land in the key's row. */
START_TEST(test_batch_moves)
{
    /* small: a key already stored is shifted by later keys of the batch
     * that sort before it at the same home */
    zps_table_t *t = s_new(2, 1000);
    T_NONNULL(t);
    const size_t cap = zps_table_capacity(t);
    uint64_t a = s_kh(s_h_home(300, cap, 0xf0000000u));
    s_put(t, a);
    for (size_t m = 1; m <= 40; m++) {
        uint64_t ks[41];
        float *rows[41];
        uint8_t ins[41];
        ks[0] = a;
        for (size_t i = 1; i <= m; i++)
            ks[i] = s_kh(s_h_home(300, cap, 0xe0000000u - (uint32_t)(m * 64 + i) * 0x10000u));
        const uint64_t g = zps_table_gen(t);
        T_INT_EQ(zps_table_upsert_batch(t, ks, m + 1, rows, ins), 0);
        ck_assert_uint_ne(zps_table_gen(t), g); /* a moved */
        T_UINT_EQ(ins[0], 0);
        for (size_t i = 0; i <= m; i++) {
            T_PTR_EQ(rows[i], zps_table_find(t, ks[i]));
            if (i > 0) {
                T_UINT_EQ(ins[i], 1);
                s_check_zero(rows[i], 2);
                s_fill(rows[i], 2, ks[i]);
            }
        }
        s_check_row(rows[0], 2, a);
        for (size_t i = 0; i <= m; i++)
            s_expect(t, ks[i]);
        for (size_t i = 1; i <= m; i++) /* out again: the next m starts afresh */
            T_INT_EQ(zps_table_delete(t, ks[i]), 1);
        s_expect(t, a);
    }
    zps_table_destroy(&t);

    /* big: random batches of new, old and repeated keys from hint 0 */
    t = s_new(3, 0);
    T_NONNULL(t);
    enum { MAXB = 20000 };
    uint64_t *keys = malloc(MAXB * sizeof *keys);
    float **rows = malloc(MAXB * sizeof *rows);
    uint8_t *ins = malloc(MAXB);
    T_TRUE(keys && rows && ins);
    static const size_t sizes[] = {1, 2, 3, 5, 23, 24, 25, 31, 32, 33, 100, 1000, 5000, MAXB};
    uint64_t x = 5, next = 0;
    int moved = 0;
    for (int round = 0; round < 80; round++) {
        size_t m = sizes[(size_t)round % (sizeof sizes / sizeof sizes[0])];
        for (size_t i = 0; i < m; i++) {
            uint64_t v = s_rng(&x);
            if (v % 4 == 0 && i > 0)
                keys[i] = keys[v / 4 % i]; /* a repeat in the batch */
            else if (v % 4 == 1 && next > 0)
                keys[i] = s_key(v / 4 % next); /* stored before */
            else if (v % 256 == 2) /* 8 clusters sharing their top 32 hash bits */
                keys[i] = s_kh(((v >> 40) % 8 * 2 + 1) << 60 | (uint32_t)(round * MAXB + i));
            else
                keys[i] = s_key(next++);
        }
        const uint64_t g = zps_table_gen(t);
        memset(ins, 0xee, m);
        T_INT_EQ(zps_table_upsert_batch(t, keys, m, rows, ins), 0);
        moved += zps_table_gen(t) != g;
        for (size_t i = 0; i < m; i++) {
            T_PTR_EQ(rows[i], zps_table_find(t, keys[i]));
            if (ins[i] == 1)
                s_check_zero(rows[i], 3);
            else
                T_UINT_EQ(ins[i], 0);
        }
        for (size_t i = 0; i < m; i++) /* write through, then read back */
            s_fill(rows[i], 3, keys[i]);
        for (size_t i = 0; i < m; i++)
            s_expect(t, keys[i]);
    }
    ck_assert_int_gt(moved, 20);
    T_UINT_LE(next, zps_table_size(t));
    s_check_range(t, 0, next);
    free(keys);
    free(rows);
    free(ins);
    zps_table_destroy(&t);
}
END_TEST

/* zps_table_gen: reads never change it, a delete does; while it stays the
 * same, rows taken earlier are still the keys' rows (and after it changes
 * they are taken again, not reused). */
START_TEST(test_gen)
{
    zps_table_t *t = s_new(2, 0);
    T_NONNULL(t);
    enum { T = 200, N = 60000 };
    static float *held[T];
    uint64_t gen = zps_table_gen(t);
    int same = 0, changed = 0;
    for (uint64_t i = 0; i < N; i++) {
        s_put(t, s_key(i));
        uint64_t g = zps_table_gen(t);
        uint64_t lim = i + 1 < T ? i + 1 : T;
        if (g == gen) {
            same++;
            for (uint64_t j = 0; j < lim && j < i; j++) { /* held rows are still right */
                T_PTR_EQ(held[j], zps_table_find(t, s_key(j)));
                s_check_row(held[j], 2, s_key(j));
            }
        } else {
            changed++;
        }
        for (uint64_t j = 0; j < lim; j++)
            held[j] = zps_table_find(t, s_key(j));
        gen = g;
    }
    ck_assert_int_gt(same, 100);
    ck_assert_int_gt(changed, 100);

    /* reads keep it */
    gen = zps_table_gen(t);
    uint64_t keys[300];
    float *rows[300];
    uint8_t ins[300];
    for (uint64_t i = 0; i < 300; i++)
        keys[i] = s_key(i * 101 % (2 * N));
    for (int i = 0; i < 300; i++)
        (void)zps_table_find(t, keys[i]);
    zps_table_find_batch(t, keys, 300, rows);
    zps_table_cur_t c = ZPS_TABLE_CUR_INIT;
    for (int i = 0; i < 1000; i++)
        T_INT_EQ(zps_table_next(t, &c, NULL, NULL), 1);
    for (uint64_t i = 0; i < 1000; i++)
        T_INT_EQ(zps_table_sample(t, zps_mix64(i, 4), NULL, NULL), 1);
    (void)zps_table_size(t);
    (void)zps_table_bytes(t);
    (void)zps_table_bytes_with(t, 12345);
    (void)zps_table_capacity(t);
    /* upserts of stored keys store nothing */
    for (uint64_t i = 0; i < 300; i++) {
        int in = -1;
        T_NONNULL(zps_table_upsert(t, s_key(i), &in));
        T_INT_EQ(in, 0);
    }
    for (uint64_t i = 0; i < 300; i++)
        keys[i] = s_key(i * 7);
    T_INT_EQ(zps_table_upsert_batch(t, keys, 300, rows, ins), 0);
    for (int i = 0; i < 300; i++)
        T_UINT_EQ(ins[i], 0);
    T_INT_EQ(zps_table_delete(t, s_key(N + 5)), 0); /* absent */
    T_UINT_EQ(zps_table_gen(t), gen);
    T_INT_EQ(zps_table_reserve(t, 0), 0);
    for (int i = 0; i < 300; i++) /* rows from before are the rows */
        T_PTR_EQ(rows[i], zps_table_find(t, keys[i]));

    /* a delete changes it, wherever the key was */
    for (uint64_t i = 0; i < 500; i++) {
        gen = zps_table_gen(t);
        T_INT_EQ(zps_table_delete(t, s_key(i * 13)), 1);
        ck_assert_uint_ne(zps_table_gen(t), gen);
    }
    s_put(t, K_SIDE);
    gen = zps_table_gen(t);
    T_INT_EQ(zps_table_delete(t, K_SIDE), 1);
    ck_assert_uint_ne(zps_table_gen(t), gen);
    zps_table_destroy(&t);
}
END_TEST

/* reserve(extra), then extra new random keys: 0, all found, rarely a
 * rebuild.  bytes_with(t, 0) is bytes(t) in every state, including a
 * segment at its 9/10 limit with the side key stored; bytes_with grows
 * with extra and says SIZE_MAX for the impossible. */
START_TEST(test_reserve)
{
    zps_table_t *t = s_new(2, 0);
    T_NONNULL(t);
    s_insert_range(t, 0, 10000);
    T_UINT_EQ(zps_table_bytes_with(t, 0), zps_table_bytes(t));
    const size_t extra = 400000; /* its share passes T_SEG: reserve splits */
    size_t predicted = zps_table_bytes_with(t, extra);
    T_UINT_LE(zps_table_bytes(t), predicted);
    /* 410000 16-byte entries at a load from 3/4 to 9/10 */
    T_UINT_LE((10000 + extra) * 16 * 10 / 9, predicted);
    T_UINT_LE(predicted, zps_table_bytes(t) + (10000 + extra) * 16 * 4 / 3);
    T_INT_EQ(zps_table_reserve(t, extra), 0);
    T_UINT_EQ(zps_table_size(t), 10000);
    s_check_range(t, 0, 10000);
    T_UINT_LE((10000 + extra) * 10 / 9, zps_table_capacity(t));
    T_UINT_EQ(zps_table_bytes_with(t, 0), zps_table_bytes(t));
    T_INT_EQ(zps_table_reserve(t, 0), 0);

    enum { B = 4096 };
    static uint64_t keys[B];
    static float *rows[B];
    static uint8_t ins[B];
    size_t cap = zps_table_capacity(t);
    int rebuilds = 0;
    for (size_t b = 0; b < extra; b += B) {
        size_t m = extra - b < B ? extra - b : B;
        if ((b / B) % 2) {
            for (size_t i = 0; i < m; i++) {
                s_put(t, s_key(10000 + b + i));
                rebuilds += zps_table_capacity(t) != cap;
                cap = zps_table_capacity(t);
            }
        } else {
            for (size_t i = 0; i < m; i++)
                keys[i] = s_key(10000 + b + i);
            T_INT_EQ(zps_table_upsert_batch(t, keys, m, rows, ins), 0);
            for (size_t i = 0; i < m; i++) {
                T_UINT_EQ(ins[i], 1);
                s_fill(rows[i], 2, keys[i]);
            }
            rebuilds += zps_table_capacity(t) != cap;
            cap = zps_table_capacity(t);
        }
    }
    ck_assert_int_le(rebuilds, 4); /* a forecast, "rarely" */
    T_UINT_EQ(zps_table_size(t), 10000 + extra);
    s_check_range(t, 0, 10000 + extra);
    T_UINT_EQ(zps_table_bytes_with(t, 0), zps_table_bytes(t));
    T_UINT_EQ(zps_table_bytes_with(t, SIZE_MAX), SIZE_MAX);
    size_t last = zps_table_bytes(t);
    for (size_t e = 1; e < ((size_t)1 << 40); e *= 3) {
        size_t w = zps_table_bytes_with(t, e);
        T_UINT_LE(last, w);
        last = w;
    }
    zps_table_destroy(&t);

    /* reserve on a table of several segments: every segment gets its
     * share (with 1/8 to spare), so the new keys cause no grow (a bigger
     * rebuild for a cluster at a segment's end is possible, and rare); and
     * no segment gets much more than its share */
    t = s_new(2, 0);
    T_NONNULL(t);
    s_insert_range(t, 0, 500000);
    ck_assert_uint_gt(zps_table_capacity(t), T_SEG);
    const size_t extra2 = 600000;
    T_INT_EQ(zps_table_reserve(t, extra2), 0);
    T_UINT_LE((500000 + extra2) * 10 / 9, zps_table_capacity(t));
    T_UINT_LE(zps_table_capacity(t), (500000 + extra2) * 3 / 2);
    cap = zps_table_capacity(t);
    rebuilds = 0;
    for (size_t b = 500000; b < 500000 + extra2; b += B) {
        size_t m = 500000 + extra2 - b < B ? 500000 + extra2 - b : B;
        for (size_t i = 0; i < m; i++)
            keys[i] = s_key(b + i);
        T_INT_EQ(zps_table_upsert_batch(t, keys, m, rows, ins), 0);
        for (size_t i = 0; i < m; i++)
            s_fill(rows[i], 2, keys[i]);
        rebuilds += zps_table_capacity(t) != cap;
        cap = zps_table_capacity(t);
    }
    ck_assert_int_le(rebuilds, 2);
    s_check_range(t, 0, 500000 + extra2);
    zps_table_destroy(&t);

    /* reserve on an empty table and on one with only the side key */
    for (int side = 0; side < 2; side++) {
        t = s_new(3, 0);
        T_NONNULL(t);
        if (side)
            s_put(t, K_SIDE);
        T_INT_EQ(zps_table_reserve(t, 50000), 0);
        s_insert_range(t, 0, 50000);
        if (side)
            s_expect(t, K_SIDE);
        s_check_range(t, 0, 50000);
        T_UINT_EQ(zps_table_bytes_with(t, 0), zps_table_bytes(t));
        zps_table_destroy(&t);
    }
}
END_TEST

/* bytes_with(t, 0) == bytes(t) in every state of small tables filled up to
 * (and through) their first grows, with and without the side key. */
START_TEST(test_bytes_with_zero)
{
    for (size_t hint = 0; hint <= 40; hint++)
        for (int side = 0; side < 2; side++) {
            zps_table_t *t = s_new(2, hint);
            T_NONNULL(t);
            if (side)
                s_put(t, K_SIDE);
            for (uint64_t i = 0; i < 3 * hint + 30; i++) {
                if (zps_table_bytes_with(t, 0) != zps_table_bytes(t))
                    ck_abort_msg("hint %zu, side key %d, %zu keys, capacity %zu: "
                                 "bytes_with(t, 0) == %zu, bytes(t) == %zu",
                                 hint, side, zps_table_size(t), zps_table_capacity(t),
                                 zps_table_bytes_with(t, 0), zps_table_bytes(t));
                s_put(t, s_key(i));
            }
            zps_table_destroy(&t);
        }
}
END_TEST

/* A reserve that cannot be met fails with the contents unchanged, and
 * leaves no great allocation behind. */
START_TEST(test_reserve_impossible)
{
    zps_table_t *t = s_new(2, 0);
    T_NONNULL(t);
    s_insert_range(t, 0, 1000);
    s_put(t, K_SIDE);
    const size_t bytes = zps_table_bytes(t);
    T_UINT_EQ(zps_table_bytes_with(t, SIZE_MAX), SIZE_MAX);
    T_INT_EQ(zps_table_reserve(t, SIZE_MAX), ZPS_ENOMEM);
    T_UINT_EQ(zps_table_size(t), 1001);
    s_check_range(t, 0, 1000);
    s_expect(t, K_SIDE);
    static uint64_t keys[1001];
    for (uint64_t i = 0; i < 1000; i++)
        keys[i] = s_key(i);
    keys[1000] = K_SIDE;
    s_check_iter_keys(t, keys, 1001);
    s_insert_range(t, 1000, 2000);
    s_check_range(t, 0, 2000);
    /* a failed reserve keeps no more than what the table had (the
     * directory included): at most twice, with a megabyte of slack */
    T_UINT_LE(zps_table_bytes(t), 2 * bytes + ((size_t)1 << 20));
    zps_table_destroy(&t);
}
END_TEST

/* 2561 keys with the largest hashes: at every depth and capacity they
 * share the last home of the last segment (they differ only in the low 12
 * bits, below every home's bits), 40 times what the spill holds at first.
 * They must be stored, and the table's size must follow the keys (a
 * version grew that segment's homes to ~930M, or split it 28 times, for
 * 65 such keys). */
START_TEST(test_cluster_segment_end)
{
    zps_table_t *t = s_new(2, 0);
    T_NONNULL(t);
    enum { N = 40 * ZPS_TABLE_SPILL + 1 }; /* several spill doublings */
    static uint64_t keys[N];
    for (uint64_t i = 0; i < N; i++) {
        keys[i] = s_kh(UINT64_MAX - i);
        s_put(t, keys[i]);
        for (uint64_t j = 0; j <= i; j++)
            s_expect(t, keys[j]);
    }
    T_UINT_EQ(zps_table_size(t), N);
    s_check_iter_keys(t, keys, N);
    /* the homes grow with the keys (9/10 load at most), not with the
     * cluster; the spill takes the cluster: memory stays a few times the
     * keys' entries */
    T_UINT_LE(zps_table_capacity(t), (size_t)N * 4 / 3 + 64);
    T_UINT_LE(zps_table_bytes(t), (size_t)N * 16 * 8 + 65536);
    zps_table_destroy(&t);
}
END_TEST

/* zps_table_sample: 0 on an empty table; only present keys, each with its
 * row; over many uniform r every key of a small table comes up, and keys
 * with evenly spread hashes come up about equally often. */
START_TEST(test_sample)
{
    zps_table_t *t = s_new(2, 0);
    T_NONNULL(t);
    uint64_t key = 7;
    float *row = NULL;
    for (uint64_t r = 0; r < 100; r++)
        T_INT_EQ(zps_table_sample(t, zps_mix64(r, 1), &key, &row), 0);
    T_INT_EQ(zps_table_sample(t, 0, &key, &row), 0);
    T_INT_EQ(zps_table_sample(t, UINT64_MAX, &key, &row), 0);

    enum { K = 50, S = 20000 };
    static uint64_t keys[K];
    static int hits[K];
    for (uint64_t i = 0; i < K; i++) {
        keys[i] = s_key(i);
        s_put(t, keys[i]);
    }
    memset(hits, 0, sizeof hits);
    for (uint64_t s = 0; s < S; s++) {
        T_INT_EQ(zps_table_sample(t, zps_mix64(s, 0x5a5a), &key, &row), 1);
        uint64_t i = s_index(key);
        if (i >= K)
            ck_abort_msg("sampled a key never stored");
        T_PTR_EQ(row, zps_table_find(t, key));
        s_check_row(row, 2, key);
        hits[i]++;
    }
    for (int i = 0; i < K; i++)
        if (hits[i] == 0)
            ck_abort_msg("key %d never sampled in %d draws", i, S);
    /* r chooses: the same r, the same key */
    const uint64_t gen = zps_table_gen(t);
    for (uint64_t s = 0; s < 1000; s++) {
        uint64_t k1, k2;
        T_INT_EQ(zps_table_sample(t, zps_mix64(s, 0x3c), &k1, NULL), 1);
        T_INT_EQ(zps_table_sample(t, zps_mix64(s, 0x3c), &k2, NULL), 1);
        T_UINT_EQ(k1, k2);
    }
    T_UINT_EQ(zps_table_gen(t), gen);
    /* empty again */
    for (int i = 0; i < K; i++)
        T_INT_EQ(zps_table_delete(t, keys[i]), 1);
    T_INT_EQ(zps_table_sample(t, 12345, &key, &row), 0);
    zps_table_destroy(&t);

    /* evenly spread hashes, the side key among them: each about 1/K */
    t = s_new(2, 0);
    T_NONNULL(t);
    const uint64_t gap = UINT64_MAX / K;
    for (uint64_t i = 0; i < K; i++) {
        keys[i] = s_kh(i * gap); /* i == 0: hash 0, the side key */
        s_put(t, keys[i]);
    }
    memset(hits, 0, sizeof hits);
    for (uint64_t s = 0; s < S; s++) {
        T_INT_EQ(zps_table_sample(t, zps_mix64(s, 0x77), &key, &row), 1);
        T_PTR_EQ(row, zps_table_find(t, key));
        uint64_t h = s_h(key);
        T_UINT_EQ(h % gap, 0);
        hits[h / gap]++;
    }
    for (int i = 0; i < K; i++)
        if (hits[i] < S / K / 2 || hits[i] > S / K * 2)
            ck_abort_msg("key %d sampled %d times in %d draws (expected about %d)", i,
                         hits[i], S, S / K);
    zps_table_destroy(&t);

    /* a bigger table of several segments: only present keys */
    t = s_new(1, 1000000);
    T_NONNULL(t);
    s_insert_range(t, 0, 200000);
    for (uint64_t i = 0; i < 200000; i += 2)
        T_INT_EQ(zps_table_delete(t, s_key(i)), 1);
    for (uint64_t s = 0; s < 100000; s++) {
        T_INT_EQ(zps_table_sample(t, zps_mix64(s, 0x99), &key, &row), 1);
        uint64_t i = s_index(key);
        if (i >= 200000 || i % 2 == 0)
            ck_abort_msg("sampled key %llu, not stored", (unsigned long long)i);
        T_PTR_EQ(row, zps_table_find(t, key));
    }
    zps_table_destroy(&t);
}
END_TEST

START_TEST(test_ten_million)
{
    const size_t n = 10000000, chunk = 4096;
    uint64_t *keys = malloc(chunk * sizeof *keys);
    float **rows = malloc(chunk * sizeof *rows);
    uint8_t *ins = malloc(chunk);
    ck_assert(keys && rows && ins);
    zps_table_t *t = s_new(2, 0);
    T_NONNULL(t);
    const size_t cap0 = zps_table_capacity(t);

    /* the first million one at a time, the rest in batches */
    for (uint64_t i = 0; i < 1000000; i++) {
        int in = -1;
        float *r = zps_table_upsert(t, s_key(i), &in);
        T_NONNULL(r);
        T_INT_EQ(in, 1);
        r[0] = s_v0(s_key(i));
        r[1] = s_v1(s_key(i));
    }
    for (uint64_t b = 1000000; b < n; b += chunk) {
        size_t m = n - b < chunk ? n - b : chunk;
        for (size_t i = 0; i < m; i++)
            keys[i] = s_key(b + i);
        T_INT_EQ(zps_table_upsert_batch(t, keys, m, rows, ins), 0);
        for (size_t i = 0; i < m; i++) {
            T_NONNULL(rows[i]);
            T_UINT_EQ(ins[i], 1);
            rows[i][0] = s_v0(keys[i]);
            rows[i][1] = s_v1(keys[i]);
        }
    }
    ck_assert_uint_gt(zps_table_capacity(t), cap0);
    T_UINT_EQ(zps_table_size(t), n);

    for (uint64_t b = 0; b < n; b += chunk) {
        size_t m = n - b < chunk ? n - b : chunk;
        for (size_t i = 0; i < m; i++)
            keys[i] = s_key(b + i);
        zps_table_find_batch(t, keys, m, rows);
        for (size_t i = 0; i < m; i++) {
            T_NONNULL(rows[i]);
            T_FLOAT_EQ(rows[i][0], s_v0(keys[i]));
            T_FLOAT_EQ(rows[i][1], s_v1(keys[i]));
        }
    }
    for (uint64_t i = 0; i < n; i += 7) {
        float *r = zps_table_find(t, s_key(i));
        T_NONNULL(r);
        T_FLOAT_EQ(r[0], s_v0(s_key(i)));
        T_FLOAT_EQ(r[1], s_v1(s_key(i)));
    }
    for (uint64_t i = n; i < n + 1000000; i++)
        T_NULL(zps_table_find(t, s_key(i)));
    T_UINT_EQ(zps_table_size(t), n);
    /* 16-byte entries at load >= 3/4 */
    T_UINT_LE(zps_table_bytes(t), n * (16 * 4 / 3 + 1) + n / 3);
    T_UINT_LE(n * 10 / 9, zps_table_capacity(t));
    zps_table_destroy(&t);
    free(keys);
    free(rows);
    free(ins);
}
END_TEST

static void s_dim_case(uint32_t nf, uint64_t n)
{
    zps_table_t *t = s_new(nf, 0);
    T_NONNULL(t);
    T_UINT_EQ(zps_table_row_floats(t), nf);
    for (uint64_t i = 0; i < n; i++) {
        int ins = -1;
        float *r = zps_table_upsert(t, s_key(i), &ins);
        T_NONNULL(r);
        T_INT_EQ(ins, 1);
        T_UINT_EQ((uintptr_t)r % _Alignof(float), 0);
        for (uint32_t j = 0; j < nf; j++)
            T_FLOAT_EQ(r[j], 0.0f); /* zero-filled */
        s_fill(r, nf, s_key(i));
    }
    /* checked only after all writes: overlapping rows would show here */
    s_check_range(t, 0, n);
    T_UINT_EQ(zps_table_size(t), n);
    ck_assert_uint_ge(zps_table_bytes(t), n * (8 + 4 * (size_t)nf));
    /* the batch forms (whose prefetch handles entries spanning two cache
     * lines) agree with the single ones */
    enum { B = 1000 };
    static uint64_t keys[B];
    static float *rows[B];
    static uint8_t ins[B];
    for (uint64_t b = 0; b < n; b += B) {
        size_t m = n - b < B ? (size_t)(n - b) : B;
        for (size_t i = 0; i < m; i++)
            keys[i] = s_key(b + i);
        zps_table_find_batch(t, keys, m, rows);
        for (size_t i = 0; i < m; i++)
            T_PTR_EQ(rows[i], zps_table_find(t, keys[i]));
        T_INT_EQ(zps_table_upsert_batch(t, keys, m, rows, ins), 0);
        for (size_t i = 0; i < m; i++) {
            T_UINT_EQ(ins[i], 0);
            T_PTR_EQ(rows[i], zps_table_find(t, keys[i]));
        }
    }
    T_UINT_EQ(zps_table_size(t), n);
    /* every other key out, the rest intact */
    for (uint64_t i = 0; i < n; i += 2)
        T_INT_EQ(zps_table_delete(t, s_key(i)), 1);
    for (uint64_t i = 0; i < n; i++) {
        if (i % 2)
            s_expect(t, s_key(i));
        else
            T_NULL(zps_table_find(t, s_key(i)));
    }
    T_UINT_EQ(zps_table_size(t), n / 2);
    zps_table_destroy(&t);
}

START_TEST(test_dim1)
{
    s_dim_case(1, 200000); /* the smallest entries */
}
END_TEST

START_TEST(test_dim3)
{
    s_dim_case(3, 140000); /* entries of an odd number of floats: some span two lines */
}
END_TEST

START_TEST(test_dim64)
{
    s_dim_case(64, 140000);
}
END_TEST

START_TEST(test_extreme_keys)
{
    zps_table_t *t = s_new(2, 0);
    T_NONNULL(t);
    enum { M = 1000 };
    static uint64_t keys[4 * M + 3];
    size_t n = 0;
    for (uint64_t i = 0; i < M; i++) {
        keys[n++] = i;                       /* 0, 1, ... */
        keys[n++] = UINT64_MAX - i;          /* 2^64 - 1, ... */
        keys[n++] = (1ull << 63) + i;        /* 2^63, ... */
        keys[n++] = (1ull << 63) - 1 - i;    /* 2^63 - 1, ... */
    }
    keys[n++] = 1ull << 32;
    keys[n++] = UINT32_MAX;
    keys[n++] = 0xffffffff00000000ull;

    /* key 0 must not be taken for an empty entry or a fresh zero row */
    for (size_t i = 1; i < n; i++) {
        int ins = -1;
        float *r = zps_table_upsert(t, keys[i], &ins);
        T_NONNULL(r);
        T_INT_EQ(ins, 1);
        r[0] = (float)i;
        r[1] = -(float)i;
    }
    T_NULL(zps_table_find(t, 0));
    int ins = -1;
    float *z = zps_table_upsert(t, 0, &ins);
    T_NONNULL(z);
    T_INT_EQ(ins, 1);
    T_FLOAT_EQ(z[0], 0.0f);
    z[0] = 0.25f;
    T_UINT_EQ(zps_table_size(t), n);
    for (size_t i = 0; i < n; i++) {
        float *r = zps_table_find(t, keys[i]);
        T_NONNULL(r);
        T_FLOAT_EQ(r[0], i == 0 ? 0.25f : (float)i);
        T_FLOAT_EQ(r[1], -(float)i);
        T_PTR_EQ(zps_table_upsert(t, keys[i], &ins), r);
        T_INT_EQ(ins, 0);
    }
    T_NULL(zps_table_find(t, UINT64_MAX - M));
    T_NULL(zps_table_find(t, (1ull << 63) + M));
    T_NULL(zps_table_find(t, M));
    T_UINT_EQ(zps_table_size(t), n);
    zps_table_destroy(&t);
}
END_TEST

/* Batch forms against single forms on twin tables fed the same key stream
 * (with repeats, also inside one batch), over batch sizes around the
 * pipeline distance and across grows. */
START_TEST(test_batch_agrees)
{
    zps_table_t *a = s_new(2, 0), *b = s_new(2, 0);
    T_NONNULL(a);
    T_NONNULL(b);
    static const size_t sizes[] = {0, 1, 2, 7, 15, 16, 17, 23, 24, 25, 31, 32, 33, 64, 100, 1000,
                                   5000};
    enum { MAXB = 5000 };
    static uint64_t keys[MAXB];
    static float *rows[MAXB], *rows2[MAXB];
    static uint8_t ins[MAXB];
    uint64_t rng = 1, stream = 0;
    const size_t cap0 = zps_table_capacity(b);
    for (int round = 0; round < 60; round++) {
        size_t m = sizes[(size_t)round % (sizeof sizes / sizeof sizes[0])];
        for (size_t i = 0; i < m; i++) {
            rng = zps_mix64(rng, 77);
            keys[i] = rng % 97 == 0 ? K_SIDE : s_key(rng % 40000); /* about half repeats */
        }
        memset(ins, 0xee, sizeof ins);
        T_INT_EQ(zps_table_upsert_batch(b, keys, m, rows, ins), 0);
        for (size_t i = 0; i < m; i++, stream++) {
            int in = -1;
            float *ra = zps_table_upsert(a, keys[i], &in);
            T_NONNULL(ra);
            T_NONNULL(rows[i]);
            T_UINT_EQ(ins[i], (uint8_t)in);
            if (in) {
                ra[0] = rows[i][0] = (float)stream;
                ra[1] = rows[i][1] = s_v1(keys[i]);
            }
            T_FLOAT_EQ(rows[i][0], ra[0]);
            T_FLOAT_EQ(rows[i][1], s_v1(keys[i]));
            for (size_t j = 0; j < i; j++) /* repeats within the batch */
                if (keys[j] == keys[i])
                    T_PTR_EQ(rows[j], rows[i]);
        }
        T_UINT_EQ(zps_table_size(a), zps_table_size(b));

        /* find_batch == find, present and absent keys mixed */
        for (size_t i = 0; i < m; i++)
            if (i % 3 == 0)
                keys[i] = s_key(1000000 + i);
        zps_table_find_batch(b, keys, m, rows2);
        for (size_t i = 0; i < m; i++) {
            T_PTR_EQ(rows2[i], zps_table_find(b, keys[i]));
            if (i % 3 == 0)
                T_NULL(rows2[i]);
            else
                T_PTR_EQ(rows2[i], rows[i]);
        }
    }
    ck_assert_uint_gt(zps_table_capacity(b), cap0); /* grew */
    /* same keys in the same (hash) order, same values */
    zps_table_cur_t ca = ZPS_TABLE_CUR_INIT, cb = ZPS_TABLE_CUR_INIT;
    size_t cnt = 0;
    uint64_t ka, kb;
    float *ra, *rb;
    while (zps_table_next(a, &ca, &ka, &ra)) {
        T_INT_EQ(zps_table_next(b, &cb, &kb, &rb), 1);
        T_UINT_EQ(ka, kb);
        T_FLOAT_EQ(ra[0], rb[0]);
        T_FLOAT_EQ(ra[1], rb[1]);
        cnt++;
    }
    T_INT_EQ(zps_table_next(b, &cb, &kb, &rb), 0);
    T_UINT_EQ(cnt, zps_table_size(a));
    zps_table_destroy(&a);
    zps_table_destroy(&b);
}
END_TEST

/* Reference-model tests: key universe, hash -> index. */
typedef struct {
    uint64_t h;
    uint32_t i;
} hix_t;

static int s_hix_cmp(const void *a, const void *b)
{
    uint64_t x = ((const hix_t *)a)->h, y = ((const hix_t *)b)->h;
    return x < y ? -1 : x > y;
}

static long s_hix_find(const hix_t *ix, size_t n, uint64_t h)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ix[mid].h < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && ix[lo].h == h ? (long)ix[lo].i : -1;
}

/* Every key of the universe found exactly when present with its own row,
 * and a whole iteration visits exactly the present keys in hash order. */
static void s_model_check(const zps_table_t *t, const uint64_t *keys, const uint8_t *present,
                          size_t u, size_t n)
{
    uint32_t nf = zps_table_row_floats(t);
    uint64_t *hs = malloc(u * sizeof *hs);
    T_NONNULL(hs);
    size_t m = 0;
    for (size_t i = 0; i < u; i++) {
        float *r = zps_table_find(t, keys[i]);
        if (present[i]) {
            T_NONNULL(r);
            s_check_row(r, nf, keys[i]);
            hs[m++] = s_h(keys[i]);
        } else {
            T_NULL(r);
        }
    }
    T_UINT_EQ(m, n);
    T_UINT_EQ(zps_table_size(t), n);
    s_check_iter(t, hs, m);
    free(hs);
}

/* Deletion against a reference: random upserts, finds, deletes and batch
 * calls over a small key universe (keys come and go many times, across
 * every grow).  After each step the sizes agree; at checkpoints every key
 * is found exactly when present with its own values, a re-inserted key's
 * row starts at zero, and zps_table_next visits exactly the present keys. */
START_TEST(test_delete_model)
{
    enum { U = 3000, STEPS = 60000 };
    static uint64_t keys[U];
    static uint8_t present[U];
    for (uint64_t i = 0; i < U; i++)
        keys[i] = s_key(i);
    memset(present, 0, sizeof present);
    zps_table_t *t = s_new(3, 0);
    T_NONNULL(t);
    uint64_t x = 88172645463325252ull;
    size_t n = 0, deleted = 0;
    for (int step = 0; step < STEPS; step++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t k = (size_t)(x % U);
        unsigned op = (unsigned)(x >> 40) % 10;
        /* phases: grow, churn, shrink, churn: deletes outnumber inserts in shrink */
        int shrink = (step / 10000) % 4 == 2;
        if (op < (shrink ? 2u : 5u)) {
            int ins = -1;
            float *r = zps_table_upsert(t, keys[k], &ins);
            T_NONNULL(r);
            T_INT_EQ(ins, !present[k]);
            if (ins)
                for (int j = 0; j < 3; j++)
                    T_FLOAT_EQ(r[j], 0.0f); /* a new row starts at zero */
            s_fill(r, 3, keys[k]);
            n += !present[k];
            present[k] = 1;
        } else if (op < 8) {
            int rc = zps_table_delete(t, keys[k]);
            T_INT_EQ(rc, present[k]);
            n -= present[k];
            deleted += present[k];
            present[k] = 0;
        } else if (op < 9) {
            float *r = zps_table_find(t, keys[k]);
            if (present[k]) {
                T_NONNULL(r);
                s_check_row(r, 3, keys[k]);
            } else {
                T_NULL(r);
            }
        } else {
            float *rows[64];
            uint64_t ks[64];
            uint8_t ins[64];
            size_t m = 1 + (size_t)(x >> 20) % 64;
            for (size_t i = 0; i < m; i++)
                ks[i] = keys[(k + i * 7) % U]; /* distinct: 7 and U are coprime, m < U */
            if ((x >> 30) & 1) {
                zps_table_find_batch(t, ks, m, rows);
                for (size_t i = 0; i < m; i++) {
                    size_t kk = (k + i * 7) % U;
                    if (present[kk])
                        s_check_row(rows[i], 3, keys[kk]);
                    else
                        T_NULL(rows[i]);
                }
            } else {
                T_INT_EQ(zps_table_upsert_batch(t, ks, m, rows, ins), 0);
                for (size_t i = 0; i < m; i++) {
                    size_t kk = (k + i * 7) % U;
                    T_INT_EQ(ins[i], !present[kk]);
                    if (ins[i])
                        s_fill(rows[i], 3, keys[kk]);
                    else
                        s_check_row(rows[i], 3, keys[kk]);
                    n += !present[kk];
                    present[kk] = 1;
                }
            }
        }
        T_UINT_EQ(zps_table_size(t), n);
        if (step % 5000 == 4999)
            s_model_check(t, keys, present, U, n);
    }
    T_UINT_EQ(deleted > 10000, 1);
    T_INT_EQ(zps_table_delete(t, s_key(U + 5)), 0); /* absent */
    zps_table_destroy(&t);
}
END_TEST

/* The mixed model: upsert, delete, find, both batch forms, sample, and a
 * persistent cursor that keeps iterating between the other calls, over a
 * universe where an eighth of the keys are crafted into clusters (shared
 * homes, the bottom and top of the hash range, both sides of 2^63 and
 * 2^62) plus the side key.  Each pass of the cursor must visit every key
 * present throughout it exactly once, no key twice, only present keys, in
 * increasing hash order.  While zps_table_gen stays, a held row stays the
 * key's row. */
START_TEST(test_model_mixed)
{
    enum { U = 4000, STEPS = 80000, NF = 2 };
    static uint64_t keys[U];
    static uint8_t present[U], stable[U], seen[U], tmp[U];
    static hix_t ix[U];
    uint64_t x = 0x1234567887654321ull;
    size_t nc = 0;
    keys[nc++] = K_SIDE;
    for (uint64_t i = 0; i < 16; i++) {
        keys[nc++] = s_kh(1 + i * 3);                  /* bottom */
        keys[nc++] = s_kh(UINT64_MAX - i * 3);         /* top */
        keys[nc++] = s_kh((1ull << 63) - 1 - i * 977); /* below 2^63 */
        keys[nc++] = s_kh((1ull << 63) + i * 977);     /* from 2^63 */
        keys[nc++] = s_kh((1ull << 62) - 1 - i * 5);   /* around 2^62 */
        keys[nc++] = s_kh((1ull << 62) + i * 5);
    }
    for (int w = 0; w < 10; w++) { /* 10 windows of 40 keys: one home each */
        uint64_t base = s_rng(&x) & ~((1ull << 32) - 1);
        for (uint64_t i = 0; i < 40; i++)
            keys[nc++] = s_kh(base + 1 + i * ((1ull << 26) + 3));
    }
    for (uint64_t i = 0; nc < U; i++)
        keys[nc++] = s_key(i);
    for (uint32_t i = 0; i < U; i++)
        ix[i] = (hix_t){s_h(keys[i]), i};
    qsort(ix, U, sizeof *ix, s_hix_cmp);
    for (size_t i = 1; i < U; i++)
        T_TRUE(ix[i].h != ix[i - 1].h); /* distinct keys */

    zps_table_t *t = s_new(NF, 0);
    T_NONNULL(t);
    size_t n = 0;
    zps_table_cur_t cur = ZPS_TABLE_CUR_INIT;
    uint64_t prev = 0;
    int started = 0, passes = 0, held_ok = 0;
    size_t passes_visits = 0;
    memcpy(stable, present, sizeof stable);
    memset(seen, 0, sizeof seen);
    long held = -1;
    float *held_row = NULL;
    uint64_t held_gen = 0;
    enum { MB = 80 };
    uint64_t ks[MB];
    size_t kk[MB];
    float *rows[MB];
    uint8_t ins[MB];
    for (int step = 0; step < STEPS; step++) {
        uint64_t v = s_rng(&x);
        size_t k = (size_t)(v % U);
        unsigned op = (unsigned)(v >> 32) % 100;
        int shrink = (step / 10000) % 4 == 2;
        if (op < (shrink ? 12u : 35u)) {
            int in = -1;
            float *r = zps_table_upsert(t, keys[k], &in);
            T_NONNULL(r);
            T_INT_EQ(in, !present[k]);
            if (in) {
                s_check_zero(r, NF);
                s_fill(r, NF, keys[k]);
                n++;
                present[k] = 1;
                stable[k] = 0;
            } else {
                s_check_row(r, NF, keys[k]);
            }
        } else if (op < 55) {
            T_INT_EQ(zps_table_delete(t, keys[k]), present[k]);
            if (present[k]) {
                n--;
                present[k] = 0;
                stable[k] = 0;
            }
        } else if (op < 63) {
            float *r = zps_table_find(t, keys[k]);
            if (present[k]) {
                T_NONNULL(r);
                s_check_row(r, NF, keys[k]);
            } else {
                T_NULL(r);
            }
        } else if (op < 80) {
            size_t m = 1 + (size_t)(v >> 48) % MB;
            for (size_t i = 0; i < m; i++) {
                uint64_t w = s_rng(&x);
                kk[i] = w % 5 == 0 && i > 0 ? kk[(w >> 8) % i] : (size_t)(w >> 16) % U;
                ks[i] = keys[kk[i]];
            }
            if (op < 70) {
                zps_table_find_batch(t, ks, m, rows);
                for (size_t i = 0; i < m; i++) {
                    T_PTR_EQ(rows[i], zps_table_find(t, ks[i]));
                    if (present[kk[i]])
                        s_check_row(rows[i], NF, ks[i]);
                    else
                        T_NULL(rows[i]);
                }
            } else {
                memset(ins, 0xee, sizeof ins);
                T_INT_EQ(zps_table_upsert_batch(t, ks, m, rows, ins), 0);
                for (size_t i = 0; i < m; i++)
                    tmp[kk[i]] = present[kk[i]];
                for (size_t i = 0; i < m; i++) {
                    T_PTR_EQ(rows[i], zps_table_find(t, ks[i]));
                    T_INT_EQ(ins[i], !tmp[kk[i]]);
                    if (ins[i]) {
                        s_check_zero(rows[i], NF);
                        tmp[kk[i]] = 1;
                        n++;
                        present[kk[i]] = 1;
                        stable[kk[i]] = 0;
                    }
                }
                for (size_t i = 0; i < m; i++)
                    s_fill(rows[i], NF, ks[i]);
            }
        } else if (op < 95) {
            /* the persistent cursor goes on */
            int steps = 1 + (int)((v >> 50) % 12);
            for (int s = 0; s < steps; s++) {
                uint64_t key;
                float *row;
                if (!zps_table_next(t, &cur, &key, &row)) {
                    T_INT_EQ(cur.done, 1);
                    T_INT_EQ(zps_table_next(t, &cur, &key, &row), 0);
                    for (size_t i = 0; i < U; i++)
                        if (stable[i] && !seen[i])
                            ck_abort_msg("pass %d: key %zu present throughout, not visited",
                                         passes, i);
                    passes++;
                    cur = (zps_table_cur_t)ZPS_TABLE_CUR_INIT;
                    memcpy(stable, present, sizeof stable);
                    memset(seen, 0, sizeof seen);
                    started = 0;
                    break;
                }
                uint64_t h = s_h(key);
                if (started && h <= prev)
                    ck_abort_msg("hash %#llx after %#llx", (unsigned long long)h,
                                 (unsigned long long)prev);
                started = 1;
                prev = h;
                long i = s_hix_find(ix, U, h);
                if (i < 0)
                    ck_abort_msg("visited a key not in the universe");
                T_INT_EQ(present[i], 1);
                T_INT_EQ(seen[i], 0);
                seen[i] = 1;
                passes_visits++;
                T_PTR_EQ(row, zps_table_find(t, key));
                s_check_row(row, NF, key);
            }
        } else {
            /* sample, and the held row while gen stays */
            uint64_t key;
            float *row;
            int rc = zps_table_sample(t, s_rng(&x), &key, &row);
            T_INT_EQ(rc, n > 0);
            if (rc) {
                long i = s_hix_find(ix, U, s_h(key));
                T_TRUE(i >= 0);
                T_INT_EQ(present[i], 1);
                T_PTR_EQ(row, zps_table_find(t, key));
                s_check_row(row, NF, key);
            }
            if (held >= 0 && zps_table_gen(t) == held_gen) {
                T_INT_EQ(present[held], 1);
                T_PTR_EQ(held_row, zps_table_find(t, keys[held]));
                held_ok++;
            }
            held = rc ? s_hix_find(ix, U, s_h(key)) : -1;
            held_row = rc ? row : NULL;
            held_gen = zps_table_gen(t);
        }
        if (zps_table_size(t) != n)
            ck_abort_msg("step %d: size %zu, model %zu", step, zps_table_size(t), n);
        if (step % 5000 == 4999)
            s_model_check(t, keys, present, U, n);
    }
    ck_assert_int_gt(passes, 5);
    ck_assert_uint_gt(passes_visits, 10 * (size_t)U);
    ck_assert_int_gt(held_ok, 10);
    zps_table_destroy(&t);
}
END_TEST

/* zps_table_new seeds each table at random: two tables place the same
 * keys differently (their iteration orders differ), and keys crafted to
 * share one home under the fixed seed are spread out, yet everything
 * behaves the same. */
START_TEST(test_random_seed)
{
    zps_table_t *a = zps_table_new(2, 0), *b = zps_table_new(2, 0);
    T_NONNULL(a);
    T_NONNULL(b);
    ck_assert(zps_table_seed(a) != zps_table_seed(b));
    enum { N = 2000 };
    for (uint64_t i = 0; i < N; i++) {
        /* hashes differing only in their low bits under ZPS_SEED_TABLE */
        uint64_t k = s_kh(UINT64_MAX - i);
        float *r = zps_table_upsert(a, k, NULL);
        T_NONNULL(r);
        s_fill(r, 2, k);
        T_NONNULL(zps_table_upsert(b, k, NULL));
    }
    T_UINT_EQ(zps_table_size(a), N);
    for (uint64_t i = 0; i < N; i++) {
        float *r = zps_table_find(a, s_kh(UINT64_MAX - i));
        T_NONNULL(r);
        s_check_row(r, 2, s_kh(UINT64_MAX - i));
    }
    /* spread out: no bigger than a table of N random keys would be */
    ck_assert_uint_le(zps_table_bytes(a), (size_t)N * 16 * 4 / 3 + ((size_t)4 << 20) + 65536);
    zps_table_cur_t ca = ZPS_TABLE_CUR_INIT, cb = ZPS_TABLE_CUR_INIT;
    uint64_t ka, kb;
    int differ = 0;
    size_t seen = 0;
    while (zps_table_next(a, &ca, &ka, NULL)) {
        T_INT_EQ(zps_table_next(b, &cb, &kb, NULL), 1);
        differ |= ka != kb;
        seen++;
    }
    T_UINT_EQ(seen, N);
    ck_assert(differ);
    zps_table_destroy(&a);
    zps_table_destroy(&b);
}
END_TEST

Suite *suite_table(void)
{
    Suite *s = suite_create("table");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_basic);
    tcase_add_test(tc, test_high_load);
    tcase_add_test(tc, test_absent);
    tcase_add_test(tc, test_cluster_one_home);
    tcase_add_test(tc, test_cluster_spill_end);
    tcase_add_test(tc, test_cluster_top_bits);
    tcase_add_test(tc, test_destroy_uneven);
    tcase_add_test(tc, test_side_key);
    tcase_add_test(tc, test_growth_splits);
    tcase_add_test(tc, test_fill_bounds);
    tcase_add_test(tc, test_limit_load);
    tcase_add_test(tc, test_iter_order);
    tcase_add_test(tc, test_iter_survives);
    tcase_add_test(tc, test_batch_moves);
    tcase_add_test(tc, test_gen);
    tcase_add_test(tc, test_reserve);
    tcase_add_test(tc, test_bytes_with_zero);
    tcase_add_test(tc, test_sample);
    tcase_add_test(tc, test_dim1);
    tcase_add_test(tc, test_dim3);
    tcase_add_test(tc, test_dim64);
    tcase_add_test(tc, test_extreme_keys);
    tcase_add_test(tc, test_batch_agrees);
    tcase_add_test(tc, test_delete_model);
    tcase_add_test(tc, test_model_mixed);
    suite_add_tcase(s, tc);

    /* Once seconds and gigabytes each (a reserve that could not be met
     * split segments for it; keys clustered at a segment's end grew it
     * without end): they must be quick now. */
    tcase_add_test(tc, test_reserve_impossible);
    tcase_add_test(tc, test_cluster_segment_end);
    tcase_add_test(tc, test_random_seed);

    TCase *big = tcase_create("big");
    tcase_set_timeout(big, 120); /* ~3 s release, ~3x that under ASan */
    tcase_add_test(big, test_ten_million);
    suite_add_tcase(s, big);
    return s;
}
