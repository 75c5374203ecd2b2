/* Unit tests for zps_table: lookups, collisions, incremental growth, batch
 * forms, iteration, row stability, big tables.  Each row's content is derived
 * from its key, so a lookup returning the wrong row fails. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_suites.h"
#include "zps_table.h"
#include "zps_err.h"
#include "zps_hash.h"

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
#define T_FLOAT_EQ(a, b) do { float a_ = (a), b_ = (b); \
    if (a_ != b_) ck_abort_msg("%s == %.9g, %s == %.9g", #a, (double)a_, #b, (double)b_); \
} while (0)

/* Distinct pseudo-random keys: zps_mix64 is a bijection. */
static uint64_t s_key(uint64_t i)
{
    return zps_mix64(i, T_SEED);
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

/* Inverse of zps_mix64, to build keys with a chosen hash. */
static uint64_t s_unxorshift(uint64_t y, unsigned s)
{
    uint64_t x = y;
    for (unsigned k = s; k < 64; k += s)
        x ^= y >> k;
    return x;
}

static uint64_t s_inv_odd(uint64_t a)
{
    uint64_t x = a; /* correct to 3 bits; each Newton step doubles that */
    for (int i = 0; i < 5; i++)
        x *= 2 - a * x;
    return x;
}

static uint64_t s_unmix64(uint64_t h, uint64_t seed)
{
    uint64_t x = s_unxorshift(h, 31);
    x *= s_inv_odd(0x94d049bb133111ebULL);
    x = s_unxorshift(x, 27);
    x *= s_inv_odd(0xbf58476d1ce4e5b9ULL);
    x = s_unxorshift(x, 30);
    return x ^ seed;
}

/* Insert keys s_key(lo..hi) with s_fill rows; every one must be new. */
static void s_insert_range(zps_table_t *t, uint64_t lo, uint64_t hi)
{
    uint32_t nf = zps_table_row_floats(t);
    for (uint64_t i = lo; i < hi; i++) {
        int ins = -1;
        float *r = zps_table_upsert(t, s_key(i), &ins);
        T_NONNULL(r);
        T_INT_EQ(ins, 1);
        s_fill(r, nf, s_key(i));
    }
}

static void s_check_range(zps_table_t *t, uint64_t lo, uint64_t hi)
{
    uint32_t nf = zps_table_row_floats(t);
    for (uint64_t i = lo; i < hi; i++) {
        float *r = zps_table_find(t, s_key(i));
        T_NONNULL(r);
        s_check_row(r, nf, s_key(i));
    }
}

START_TEST(test_basic)
{
    T_NULL(zps_table_new(0, 10));
    zps_table_t *t = zps_table_new(2, 0);
    T_NONNULL(t);
    T_UINT_EQ(zps_table_size(t), 0);
    T_UINT_EQ(zps_table_row_floats(t), 2);
    T_INT_EQ(zps_table_resizing(t), 0);
    ck_assert_uint_gt(zps_table_bytes(t), 0);
    T_NULL(zps_table_find(t, 42));

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
    ck_assert_ptr_ne(r2, r);
    T_FLOAT_EQ(r2[0], 0.0f);
    T_UINT_EQ(zps_table_size(t), 2);
    T_PTR_EQ(zps_table_upsert(t, 43, NULL), r2);
    T_UINT_EQ(zps_table_size(t), 2);

    zps_table_destroy(&t);
    T_NULL(t);
    zps_table_destroy(&t);
    zps_table_destroy(NULL);
}
END_TEST

/* Fill a table to exactly its hint (load 3/4 of a power of two here): no
 * grow may happen, and hits and misses must still be right. */
START_TEST(test_high_load)
{
    const size_t n = 98304; /* 3/4 of 2^17 */
    zps_table_t *t = zps_table_new(2, n);
    T_NONNULL(t);
    for (size_t i = 0; i < n; i++) {
        int ins = -1;
        float *r = zps_table_upsert(t, s_key(i), &ins);
        T_NONNULL(r);
        T_INT_EQ(ins, 1);
        T_INT_EQ(zps_table_resizing(t), 0);
        r[0] = s_v0(s_key(i));
        r[1] = s_v1(s_key(i));
    }
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
    T_INT_EQ(zps_table_resizing(t), 0);
    zps_table_destroy(&t);
}
END_TEST

/* Tiny initial table, many keys (every grow from the smallest size): dense
 * ids and ids that share their low 32 bits. */
START_TEST(test_collisions_tiny)
{
    zps_table_t *t = zps_table_new(1, 1);
    T_NONNULL(t);
    const uint64_t n = 30000;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t keys[2] = {i, (i << 32) | 0x80000007u};
        for (int k = 0; k < 2; k++) {
            int ins = -1;
            float *r = zps_table_upsert(t, keys[k], &ins);
            T_NONNULL(r);
            T_INT_EQ(ins, 1);
            r[0] = (float)(i * 2 + (uint64_t)k);
        }
    }
    T_UINT_EQ(zps_table_size(t), 2 * n);
    for (uint64_t i = 0; i < n; i++) {
        float *a = zps_table_find(t, i);
        float *b = zps_table_find(t, (i << 32) | 0x80000007u);
        T_NONNULL(a);
        T_NONNULL(b);
        T_FLOAT_EQ(a[0], (float)(i * 2));
        T_FLOAT_EQ(b[0], (float)(i * 2 + 1));
    }
    for (uint64_t i = n; i < 2 * n; i++)
        T_NULL(zps_table_find(t, i));
    zps_table_destroy(&t);
}
END_TEST

/* Keys built from chosen hashes: all share one home slot (in any table of
 * up to 2^16 slots), at the array's end so the cluster wraps; half of them
 * also share one tag, so only the key comparison tells them apart. */
START_TEST(test_collisions_forced)
{
    for (int i = 0; i < 4; i++) {
        uint64_t h = zps_mix64((uint64_t)i * 977, 1);
        T_UINT_EQ(zps_mix64(s_unmix64(h, ZPS_SEED_TABLE), ZPS_SEED_TABLE), h);
    }
    enum { N = 1200 };
    static uint64_t keys[N];
    for (uint64_t i = 0; i < N; i++) {
        uint64_t tag = i % 2 ? 0xabcdef01u : (uint64_t)(i + 1);
        uint64_t h = (tag << 32) | ((i + 1) << 16) | 0xffffu;
        keys[i] = s_unmix64(h, ZPS_SEED_TABLE);
    }
    zps_table_t *t = zps_table_new(3, 0);
    T_NONNULL(t);
    for (uint64_t i = 0; i < N; i++) {
        int ins = -1;
        float *r = zps_table_upsert(t, keys[i], &ins);
        T_NONNULL(r);
        T_INT_EQ(ins, 1);
        s_fill(r, 3, keys[i]);
        if (i % 97 == 0) { /* everything so far is still reachable */
            for (uint64_t j = 0; j <= i; j++) {
                float *q = zps_table_find(t, keys[j]);
                T_NONNULL(q);
                s_check_row(q, 3, keys[j]);
            }
        }
    }
    T_UINT_EQ(zps_table_size(t), N);
    for (uint64_t i = 0; i < N; i++) {
        float *q = zps_table_find(t, keys[i]);
        T_NONNULL(q);
        s_check_row(q, 3, keys[i]);
        /* same tag and home, different key: absent */
        uint64_t h = (0xabcdef01ull << 32) | ((i + N + 1) << 16) | 0xffffu;
        T_NULL(zps_table_find(t, s_unmix64(h, ZPS_SEED_TABLE)));
    }
    float *rows[N];
    zps_table_find_batch(t, keys, N, rows);
    for (uint64_t i = 0; i < N; i++)
        T_PTR_EQ(rows[i], zps_table_find(t, keys[i]));
    T_UINT_EQ(zps_table_size(t), N);
    zps_table_destroy(&t);
}
END_TEST

/* Key with hash (tag << 32) | low: its home slot is low & mask. */
static uint64_t s_key_with(uint32_t tag, uint32_t low)
{
    return s_unmix64(((uint64_t)tag << 32) | low, ZPS_SEED_TABLE);
}

/* The probe order: home slot, the rest of its 8-slot line (wrapping within
 * the line), then the next lines.  A line overfilled by keys of one home
 * spills into the next line, where keys homed there also live; the last line
 * spills into the first.  Hits, misses that share a home and a tag with
 * present keys, and misses with fresh tags, by single and batch calls. */
START_TEST(test_line_probe)
{
    zps_table_t *t = zps_table_new(2, 1000); /* 2048 slots, no grow below 1536 */
    T_NONNULL(t);
    enum { NA = 12, NB = 6, NC = 11, N = NA + NB + NC };
    static uint64_t keys[N];
    size_t n = 0;
    for (uint32_t i = 0; i < NA; i++) /* home 83: offset 3 of line 10 */
        keys[n++] = s_key_with(i % 2 ? 0x5a5a5a5au : 100 + i, (i << 11) | 83u);
    for (uint32_t i = 0; i < NB; i++) /* home 93: offset 5 of line 11 */
        keys[n++] = s_key_with(200 + i, (i << 11) | 93u);
    for (uint32_t i = 0; i < NC; i++) /* home 2047: the last slot */
        keys[n++] = s_key_with(i % 3 ? 300 + i : 0x5a5a5a5au, (i << 11) | 2047u);
    /* interleave the groups so spills and home keys compete for slots */
    static const uint8_t order[N] = {0,  12, 18, 1,  2,  13, 19, 3,  4,  20, 5,  14, 6,  21, 7,
                                     22, 8,  15, 9,  23, 10, 16, 11, 24, 17, 25, 26, 27, 28};
    for (size_t k = 0; k < N; k++) {
        uint64_t key = keys[order[k]];
        int ins = -1;
        float *r = zps_table_upsert(t, key, &ins);
        T_NONNULL(r);
        T_INT_EQ(ins, 1);
        s_fill(r, 2, key);
        for (size_t j = 0; j <= k; j++) { /* everything so far is reachable */
            float *q = zps_table_find(t, keys[order[j]]);
            T_NONNULL(q);
            s_check_row(q, 2, keys[order[j]]);
        }
    }
    T_INT_EQ(zps_table_resizing(t), 0);
    T_UINT_EQ(zps_table_size(t), N);

    /* absent: same homes, shared or fresh tags */
    static uint64_t absent[3 * 8];
    size_t na = 0;
    static const uint32_t homes[3] = {83, 93, 2047};
    for (int g = 0; g < 3; g++)
        for (uint32_t i = 0; i < 8; i++)
            absent[na++] = s_key_with(i % 2 ? 0x5a5a5a5au : 900 + i + 10 * (uint32_t)g,
                                      ((40 + i) << 11) | homes[g]);
    for (size_t i = 0; i < na; i++)
        T_NULL(zps_table_find(t, absent[i]));

    float *rows[N], *arows[3 * 8];
    uint8_t ins[N];
    zps_table_find_batch(t, keys, N, rows);
    for (size_t i = 0; i < N; i++) {
        T_NONNULL(rows[i]);
        s_check_row(rows[i], 2, keys[i]);
    }
    zps_table_find_batch(t, absent, na, arows);
    for (size_t i = 0; i < na; i++)
        T_NULL(arows[i]);
    float *rows2[N];
    T_INT_EQ(zps_table_upsert_batch(t, keys, N, rows2, ins), 0);
    for (size_t i = 0; i < N; i++) {
        T_UINT_EQ(ins[i], 0);
        T_PTR_EQ(rows2[i], rows[i]);
    }
    T_UINT_EQ(zps_table_size(t), N);
    zps_table_destroy(&t);
}
END_TEST

START_TEST(test_absent)
{
    zps_table_t *t = zps_table_new(2, 0);
    T_NONNULL(t);
    const uint64_t n = 10000;
    for (uint64_t i = 0; i < 100000; i++)
        T_NULL(zps_table_find(t, s_key(i)));
    T_UINT_EQ(zps_table_size(t), 0);
    s_insert_range(t, 0, n);
    for (uint64_t i = n; i < 20 * n; i++)
        T_NULL(zps_table_find(t, s_key(i)));
    T_UINT_EQ(zps_table_size(t), n);

    /* absent lookups during a grow */
    uint64_t next = n;
    while (!zps_table_resizing(t))
        s_insert_range(t, next, next + 1), next++;
    size_t size = zps_table_size(t);
    int steps = 0;
    for (uint64_t i = 1000000; zps_table_resizing(t); i++, steps++)
        T_NULL(zps_table_find(t, s_key(i)));
    ck_assert_int_gt(steps, 1);
    T_UINT_EQ(zps_table_size(t), size);

    uint64_t keys[100];
    float *rows[100];
    for (uint64_t i = 0; i < 100; i++)
        keys[i] = s_key(2000000 + i);
    zps_table_find_batch(t, keys, 100, rows);
    for (int i = 0; i < 100; i++)
        T_NULL(rows[i]);
    T_UINT_EQ(zps_table_size(t), size);
    s_check_range(t, 0, next);
    zps_table_destroy(&t);
}
END_TEST

/* Insert keys s_key(0, 1, ...) until a grow starts; returns how many. */
static uint64_t s_fill_until_grow(zps_table_t *t)
{
    uint64_t i = 0;
    do {
        s_insert_range(t, i, i + 1);
        i++;
    } while (!zps_table_resizing(t));
    return i;
}

/* Exhaustive: for every state s of one grow (s lookups after it started)
 * and every key, a fresh identical table in state s finds that key (and
 * misses absent ones).  A lookup itself advances the migration, hence the
 * rebuild per (state, key). */
START_TEST(test_resize_every_point)
{
    zps_table_t *t = zps_table_new(2, 300); /* 512 slots; grows 512 -> 1024 */
    T_NONNULL(t);
    const uint64_t n = s_fill_until_grow(t);
    ck_assert_uint_gt(n, 300);
    int states = 0;
    while (zps_table_resizing(t)) {
        T_NONNULL(zps_table_find(t, s_key(0)));
        states++;
        ck_assert_int_lt(states, 100000);
    }
    zps_table_destroy(&t);
    ck_assert_int_gt(states, 1); /* the grow really spanned several calls */

    for (int s = 0; s <= states; s++) {
        for (uint64_t k = 0; k < n + 20; k++) {
            t = zps_table_new(2, 300);
            T_NONNULL(t);
            T_UINT_EQ(s_fill_until_grow(t), n);
            for (int j = 0; j < s; j++)
                T_NONNULL(zps_table_find(t, s_key((uint64_t)j % n)));
            T_INT_EQ(zps_table_resizing(t), s < states);
            float *r = zps_table_find(t, s_key(k));
            if (k < n) {
                T_NONNULL(r);
                s_check_row(r, 2, s_key(k));
            } else {
                T_NULL(r);
            }
            zps_table_destroy(&t);
        }
    }
}
END_TEST

/* Mixed operations across many grows of a larger table: every call made while
 * resizing is checked, and every key is checked after each grow. */
START_TEST(test_resize_interleaved)
{
    zps_table_t *t = zps_table_new(2, 0);
    T_NONNULL(t);
    uint64_t next = 0;
    int grows = 0, resizing_calls = 0;
    while (next < 150000) {
        s_insert_range(t, next, next + 1);
        next++;
        if (!zps_table_resizing(t))
            continue;
        grows++;
        float *p0 = zps_table_find(t, s_key(0));
        T_NONNULL(p0);
        for (uint64_t j = 0; zps_table_resizing(t); j++) {
            resizing_calls++;
            switch (j % 4) {
            case 0: { /* present key, rotating over all of them */
                uint64_t k = (j * 7919) % next;
                float *r = zps_table_find(t, s_key(k));
                T_NONNULL(r);
                s_check_row(r, 2, s_key(k));
                break;
            }
            case 1: /* absent key */
                T_NULL(zps_table_find(t, s_key(next + 1000000 + j)));
                break;
            case 2: { /* upsert of an existing key */
                uint64_t k = (j * 104729) % next;
                int ins = -1;
                float *r = zps_table_upsert(t, s_key(k), &ins);
                T_INT_EQ(ins, 0);
                s_check_row(r, 2, s_key(k));
                break;
            }
            default: /* a new key */
                s_insert_range(t, next, next + 1);
                next++;
            }
        }
        T_PTR_EQ(zps_table_find(t, s_key(0)), p0);
        T_UINT_EQ(zps_table_size(t), next);
        s_check_range(t, 0, next);
    }
    ck_assert_int_gt(grows, 12);
    ck_assert_int_gt(resizing_calls, 1000);
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
    zps_table_t *t = zps_table_new(2, 0);
    T_NONNULL(t);

    /* the first million one at a time, the rest in batches */
    for (uint64_t i = 0; i < 1000000; i++) {
        int in = -1;
        float *r = zps_table_upsert(t, s_key(i), &in);
        T_NONNULL(r);
        T_INT_EQ(in, 1);
        r[0] = s_v0(s_key(i));
        r[1] = s_v1(s_key(i));
    }
    int saw_resize = 0;
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
        saw_resize |= zps_table_resizing(t);
    }
    T_INT_EQ(saw_resize, 1);
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
    /* 16-byte rows plus 8-byte slots at load >= 3/8 */
    ck_assert_uint_le(zps_table_bytes(t), n * 40);
    zps_table_destroy(&t);
    free(keys);
    free(rows);
    free(ins);
}
END_TEST

static void s_dim_case(uint32_t nf, uint64_t n)
{
    zps_table_t *t = zps_table_new(nf, 0);
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
    /* the batch forms (whose row prefetch handles rows spanning two cache
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
    zps_table_destroy(&t);
}

START_TEST(test_dim1)
{
    s_dim_case(1, 200000); /* > ZPS_TABLE_SLAB_ROWS: several slabs */
}
END_TEST

START_TEST(test_dim3)
{
    s_dim_case(3, 140000); /* 24-byte rows: some span two cache lines */
}
END_TEST

START_TEST(test_dim64)
{
    s_dim_case(64, 140000);
}
END_TEST

START_TEST(test_extreme_keys)
{
    zps_table_t *t = zps_table_new(2, 0);
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

    /* key 0 must not be taken for an empty slot or a fresh zero row */
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
 * (with repeats, also inside one batch), over batch sizes around the block
 * size and across grows. */
START_TEST(test_batch_agrees)
{
    zps_table_t *a = zps_table_new(2, 0), *b = zps_table_new(2, 0);
    T_NONNULL(a);
    T_NONNULL(b);
    static const size_t sizes[] = {0, 1, 2, 7, 15, 16, 17, 31, 32, 33, 64, 100, 1000, 5000};
    enum { MAXB = 5000 };
    static uint64_t keys[MAXB];
    static float *rows[MAXB], *rows2[MAXB];
    static uint8_t ins[MAXB];
    uint64_t rng = 1, stream = 0;
    int saw_resize = 0;
    for (int round = 0; round < 60; round++) {
        size_t m = sizes[(size_t)round % (sizeof sizes / sizeof sizes[0])];
        for (size_t i = 0; i < m; i++) {
            rng = zps_mix64(rng, 77);
            keys[i] = s_key(rng % 40000); /* about half repeats */
        }
        memset(ins, 0xee, sizeof ins);
        T_INT_EQ(zps_table_upsert_batch(b, keys, m, rows, ins), 0);
        saw_resize |= zps_table_resizing(b);
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
    T_INT_EQ(saw_resize, 1);
    /* same keys, same insertion order */
    size_t ca = 0, cb = 0, cnt = 0;
    uint64_t ka, kb;
    float *ra, *rb;
    while (zps_table_next(a, &ca, &ka, &ra)) {
        T_INT_EQ(zps_table_next(b, &cb, &kb, &rb), 1);
        T_UINT_EQ(ka, kb);
        T_FLOAT_EQ(ra[0], rb[0]);
        cnt++;
    }
    T_INT_EQ(zps_table_next(b, &cb, &kb, &rb), 0);
    T_UINT_EQ(cnt, zps_table_size(a));
    zps_table_destroy(&a);
    zps_table_destroy(&b);
}
END_TEST

START_TEST(test_next)
{
    zps_table_t *t = zps_table_new(3, 0);
    T_NONNULL(t);
    size_t cur = 0;
    uint64_t key;
    float *row;
    T_INT_EQ(zps_table_next(t, &cur, &key, &row), 0);

    const uint64_t n = 150000;
    int saw_resize = 0;
    for (uint64_t i = 0; i < n; i++) {
        s_insert_range(t, i, i + 1);
        saw_resize |= zps_table_resizing(t);
    }
    T_INT_EQ(saw_resize, 1);
    uint8_t *seen = calloc(n, 1);
    T_NONNULL(seen);
    cur = 0;
    uint64_t count = 0;
    while (zps_table_next(t, &cur, &key, &row)) {
        /* insertion order: the i-th row is s_key(i) */
        if (count >= n)
            ck_abort_msg("more rows than keys");
        T_UINT_EQ(key, s_key(count));
        T_UINT_EQ(seen[count], 0);
        seen[count] = 1;
        T_PTR_EQ(row, zps_table_find(t, key));
        s_check_row(row, 3, key);
        count++;
    }
    T_UINT_EQ(count, n);
    T_INT_EQ(zps_table_next(t, &cur, &key, &row), 0);
    T_INT_EQ(zps_table_next(t, &cur, NULL, NULL), 0);
    free(seen);
    zps_table_destroy(&t);
}
END_TEST

/* Row pointers taken early keep their address and content through many grows
 * and new slabs, including ones taken in the middle of a grow. */
START_TEST(test_row_stability)
{
    zps_table_t *t = zps_table_new(4, 0);
    T_NONNULL(t);
    enum { K = 1000 };
    static float *early[K];
    for (uint64_t i = 0; i < K; i++) {
        early[i] = zps_table_upsert(t, s_key(i), NULL);
        T_NONNULL(early[i]);
        s_fill(early[i], 4, s_key(i));
    }
    uint64_t next = K, mid_key = 0;
    float *mid = NULL;
    while (next < 400000) {
        s_insert_range(t, next, next + 1);
        if (mid == NULL && next > 100000 && zps_table_resizing(t)) {
            mid_key = s_key(next);
            mid = zps_table_find(t, mid_key);
        }
        next++;
    }
    T_NONNULL(mid);
    for (uint64_t i = 0; i < K; i++) {
        T_PTR_EQ(zps_table_find(t, s_key(i)), early[i]);
        s_check_row(early[i], 4, s_key(i));
    }
    T_PTR_EQ(zps_table_find(t, mid_key), mid);
    s_check_row(mid, 4, mid_key);
    zps_table_destroy(&t);
}
END_TEST

START_TEST(test_bytes)
{
    zps_table_t *t = zps_table_new(2, 0);
    T_NONNULL(t);
    size_t b0 = zps_table_bytes(t);
    s_insert_range(t, 0, 1000000);
    size_t b1 = zps_table_bytes(t);
    ck_assert_uint_gt(b1, b0);
    /* 1M keys: 16 B rows + 8 B slots at load 0.48 (+ slab slack) */
    ck_assert_uint_ge(b1, 1000000u * 24);
    ck_assert_uint_le(b1, 1000000u * 40);
    zps_table_destroy(&t);

    /* a table sized by its hint holds that many keys without extra slots */
    t = zps_table_new(2, 786432); /* 3/4 of 2^20 */
    T_NONNULL(t);
    s_insert_range(t, 0, 786432);
    T_INT_EQ(zps_table_resizing(t), 0);
    ck_assert_uint_le(zps_table_bytes(t), 786432u * 28);
    zps_table_destroy(&t);

    /* one key: a whole slab of ZPS_TABLE_SLAB_ROWS rows is counted */
    for (uint32_t nf = 1; nf <= 3; nf++) {
        size_t stride = nf == 3 ? 24 : 16;
        t = zps_table_new(nf, 0);
        T_NONNULL(t);
        s_insert_range(t, 0, 1);
        ck_assert_uint_ge(zps_table_bytes(t), stride * ZPS_TABLE_SLAB_ROWS);
        ck_assert_uint_le(zps_table_bytes(t), stride * ZPS_TABLE_SLAB_ROWS + 8192);
        zps_table_destroy(&t);
    }
}
END_TEST

/* After zps_table_reserve(extra), extra inserts need no allocation: the
 * slot array and slabs do not change, and zps_table_bytes_with predicted the
 * bytes.  Works in the middle of an incremental grow too. */
START_TEST(test_reserve)
{
    zps_table_t *t = zps_table_new(2, 16);
    for (uint64_t k = 0; k < 13; k++) /* past 3/4 of 16 slots: a grow is pending */
        ck_assert_ptr_nonnull(zps_table_upsert(t, k * 7919, NULL));
    const size_t extra = 300000; /* over two slabs' worth, many doublings */
    size_t predicted = zps_table_bytes_with(t, extra);
    ck_assert_int_eq(zps_table_reserve(t, extra), 0);
    size_t after_reserve = zps_table_bytes(t);
    ck_assert_uint_le(after_reserve, predicted + 1); /* the old array is still counted */
    uint64_t *keys = malloc(extra * sizeof *keys);
    for (size_t i = 0; i < extra; i++)
        keys[i] = zps_mix64(i, 5) | 1ULL << 62;
    float **rows = malloc(extra * sizeof *rows);
    uint8_t *ins = malloc(extra);
    ck_assert_int_eq(zps_table_upsert_batch(t, keys, extra, rows, ins), 0);
    /* nothing grew: no slot array, no slab was allocated by the inserts
     * (the old array may have been freed by migration) */
    ck_assert_uint_le(zps_table_bytes(t), after_reserve);
    ck_assert_uint_eq(zps_table_size(t), 13 + extra);
    for (uint64_t k = 0; k < 13; k++)
        ck_assert_ptr_nonnull(zps_table_find(t, k * 7919));
    for (size_t i = 0; i < extra; i += 997)
        ck_assert_ptr_eq(zps_table_find(t, keys[i]), rows[i]);
    ck_assert_int_eq(zps_table_reserve(t, 0), 0);
    ck_assert_int_eq(zps_table_reserve(t, SIZE_MAX), ZPS_ENOMEM);
    ck_assert_uint_eq(zps_table_bytes_with(t, SIZE_MAX), SIZE_MAX);
    free(keys);
    free(rows);
    free(ins);
    zps_table_destroy(&t);
}
END_TEST

/* Deletion against a reference: random upserts, finds, deletes and batch
 * calls over a small key universe (keys come and go many times, across
 * every grow, with tombstones and free rows reused), a quarter of the keys
 * with the tombstone's tag (0xffffffff).  After each step the sizes agree;
 * at checkpoints every key is found exactly when present with its own
 * values, a re-inserted key's row starts at zero, and zps_table_next visits
 * exactly the present keys. */
START_TEST(test_delete_model)
{
    enum { U = 3000, STEPS = 60000 };
    static uint64_t keys[U];
    static uint8_t present[U];
    for (uint64_t i = 0; i < U; i++)
        keys[i] = i % 4 == 0 ? s_key_with(0xffffffffu, (uint32_t)(i * 2654435761u)) : s_key(i);
    memset(present, 0, sizeof present);
    zps_table_t *t = zps_table_new(3, 0);
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
                    T_FLOAT_EQ(r[j], 0.0f); /* a reused row starts at zero */
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
                    n += !present[kk];
                    present[kk] = 1;
                }
            }
        }
        T_UINT_EQ(zps_table_size(t), n);
        if (step % 5000 == 4999) {
            for (size_t i = 0; i < U; i++) {
                float *r = zps_table_find(t, keys[i]);
                if (present[i]) {
                    T_NONNULL(r);
                    s_check_row(r, 3, keys[i]);
                } else {
                    T_NULL(r);
                }
            }
            size_t cur = 0, seen = 0;
            uint64_t key;
            float *row;
            while (zps_table_next(t, &cur, &key, &row)) {
                s_check_row(row, 3, key);
                seen++;
            }
            T_UINT_EQ(seen, n);
            T_UINT_EQ(zps_table_rows(t) >= n, 1);
        }
    }
    T_UINT_EQ(deleted > 10000, 1);
    /* memory: rows are reused, so rows ever made stay near the peak of keys */
    T_UINT_EQ(zps_table_rows(t) <= U, 1);
    T_INT_EQ(zps_table_delete(t, s_key(U + 5)), 0); /* absent */
    zps_table_destroy(&t);
}
END_TEST

/* A table that only deletes and re-inserts keeps its slot array: the
 * tombstones are dropped by a same-size rebuild, not by growing. */
START_TEST(test_delete_tombstones_bounded)
{
    zps_table_t *t = zps_table_new(1, 1000);
    T_NONNULL(t);
    for (uint64_t i = 0; i < 1000; i++)
        T_NONNULL(zps_table_upsert(t, s_key(i), NULL));
    size_t b0 = zps_table_bytes(t);
    for (uint64_t round = 1; round <= 200; round++)
        for (uint64_t i = 0; i < 1000; i += 2) {
            T_INT_EQ(zps_table_delete(t, s_key(i + (round - 1) * 1000)), i % 2 == 0);
            T_NONNULL(zps_table_upsert(t, s_key(i + round * 1000), NULL));
        }
    /* 500 deleted and 500 new per round: the size stays and so does memory */
    T_UINT_EQ(zps_table_size(t), 1000);
    T_UINT_EQ(zps_table_bytes(t) <= 2 * b0, 1);
    zps_table_destroy(&t);
}
END_TEST

Suite *suite_table(void)
{
    Suite *s = suite_create("table");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_basic);
    tcase_add_test(tc, test_delete_model);
    tcase_add_test(tc, test_delete_tombstones_bounded);
    tcase_add_test(tc, test_high_load);
    tcase_add_test(tc, test_collisions_tiny);
    tcase_add_test(tc, test_collisions_forced);
    tcase_add_test(tc, test_line_probe);
    tcase_add_test(tc, test_absent);
    tcase_add_test(tc, test_resize_every_point);
    tcase_add_test(tc, test_resize_interleaved);
    tcase_add_test(tc, test_dim1);
    tcase_add_test(tc, test_dim3);
    tcase_add_test(tc, test_dim64);
    tcase_add_test(tc, test_extreme_keys);
    tcase_add_test(tc, test_batch_agrees);
    tcase_add_test(tc, test_next);
    tcase_add_test(tc, test_row_stability);
    tcase_add_test(tc, test_bytes);
    tcase_add_test(tc, test_reserve);
    suite_add_tcase(s, tc);

    TCase *big = tcase_create("big");
    tcase_set_timeout(big, 120); /* ~3 s release, ~3x that under ASan */
    tcase_add_test(big, test_ten_million);
    suite_add_tcase(s, big);
    return s;
}
