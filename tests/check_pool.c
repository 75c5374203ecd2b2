/* Unit tests of zps_pool and of the shard split over it (zps-server
 * --threads): every part runs exactly once, run after run; a shard with a
 * pool gives the same bits as one without, for pulls, pushes with new,
 * admitted and rejected keys, clipping and stamps; a refused push on a
 * pool restores every row it touched, whatever block the bad row was in,
 * and reports the first bad key; an aborted push after an eviction too. */
#include <check.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "check_suites.h"
#include "zps_err.h"
#include "zps_pool.h"
#include "zps_shard.h"

typedef struct {
    atomic_uint runs[16];
    atomic_uint total;
    atomic_uint parts_seen;
} s_count_t;

static void s_count(void *arg, unsigned part, unsigned parts)
{
    s_count_t *c = arg;
    atomic_fetch_add(&c->runs[part], 1);
    atomic_fetch_add(&c->total, 1);
    atomic_store(&c->parts_seen, parts); /* the same value from every part */
}

START_TEST(pool_runs_every_part_once)
{
    ck_assert_ptr_null(zps_pool_new(0));
    ck_assert_ptr_null(zps_pool_new(ZPS_POOL_MAX + 1));
    for (unsigned threads = 1; threads <= 4; threads++) {
        zps_pool_t *p = zps_pool_new(threads);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(zps_pool_threads(p), threads);
        for (unsigned parts = 1; parts <= 6; parts++) {
            s_count_t c;
            memset(&c, 0, sizeof c);
            for (int r = 0; r < 300; r++)
                zps_pool_run(p, parts, s_count, &c);
            ck_assert_uint_eq(atomic_load(&c.total), 300u * parts);
            for (unsigned i = 0; i < 16; i++)
                ck_assert_uint_eq(atomic_load(&c.runs[i]), i < parts ? 300u : 0u);
            ck_assert_uint_eq(atomic_load(&c.parts_seen), parts);
        }
        zps_pool_destroy(&p);
        ck_assert_ptr_null(p);
    }
    s_count_t c; /* no pool: every part in the caller */
    memset(&c, 0, sizeof c);
    zps_pool_run(NULL, 3, s_count, &c);
    ck_assert_uint_eq(atomic_load(&c.total), 3);
    zps_pool_destroy(NULL);
}
END_TEST

#define PN 100000 /* keys per push: 7 blocks of ZPS_SHARD_BLOCK */

/* keys of round r: a sliding window of a sparse id space, so each round
 * updates old keys and brings new ones */
static void s_round(uint64_t *keys, float *g, size_t pf, unsigned r)
{
    for (size_t i = 0; i < PN; i++) {
        keys[i] = 7 * (i + (size_t)r * (PN / 3)) + 1;
        for (size_t j = 0; j < pf; j++)
            g[i * pf + j] = (float)((int)((i * 131 + j * 17 + r * 7) % 97) - 48) / 32.0f;
    }
}

typedef struct {
    zps_shard_t *sh;
    zps_pool_t *pool;
} s_pair_t;

/* two shards alike, the second on a pool of 3 threads */
static void s_pair(s_pair_t p[2], const zps_optim_conf_t *o, const zps_admit_conf_t *a,
                   const zps_bound_conf_t *b)
{
    for (int k = 0; k < 2; k++) {
        p[k].sh = zps_shard_new(o, 16);
        ck_assert_ptr_nonnull(p[k].sh);
        if (a)
            ck_assert_int_eq(zps_shard_set_admit(p[k].sh, a), 0);
        if (b) {
            ck_assert_int_eq(zps_shard_set_bound(p[k].sh, b), 0);
            zps_shard_clock(p[k].sh, 1000);
        }
        p[k].pool = k ? zps_pool_new(3) : NULL;
        ck_assert_int_eq(zps_shard_set_pool(p[k].sh, p[k].pool), 0);
    }
}

static void s_pair_destroy(s_pair_t p[2])
{
    for (int k = 0; k < 2; k++) {
        zps_shard_destroy(&p[k].sh);
        zps_pool_destroy(&p[k].pool);
    }
}

/* every row of a's table is in b's with the same bits, and the sizes agree */
static void s_same_tables(zps_shard_t *a, zps_shard_t *b)
{
    zps_table_t *ta = zps_shard_table(a), *tb = zps_shard_table(b);
    ck_assert_uint_eq(zps_table_size(ta), zps_table_size(tb));
    size_t rf = zps_table_row_floats(ta), seen = 0;
    zps_table_cur_t cur = ZPS_TABLE_CUR_INIT;
    uint64_t key;
    float *row;
    while (zps_table_next(ta, &cur, &key, &row)) {
        const float *other = zps_table_find(tb, key);
        ck_assert_ptr_nonnull(other);
        ck_assert_int_eq(memcmp(row, other, rf * sizeof *row), 0);
        seen++;
    }
    ck_assert_uint_eq(seen, zps_table_size(ta));
}

static void s_same_bits(const zps_optim_conf_t *o, const zps_admit_conf_t *a,
                        const zps_bound_conf_t *b, float clip)
{
    s_pair_t p[2];
    s_pair(p, o, a, b);
    size_t pf = zps_optim_push_floats(o);
    uint64_t *keys = malloc(PN * sizeof *keys);
    float *g = malloc(PN * pf * sizeof *g);
    float *w[2] = {malloc(PN * o->dim * sizeof(float)), malloc(PN * o->dim * sizeof(float))};
    for (unsigned r = 0; r < 4; r++) {
        s_round(keys, g, pf, r);
        zps_shard_push_t pr[2];
        for (int k = 0; k < 2; k++) {
            if (b)
                zps_shard_clock(p[k].sh, 1000 + 700 * (int64_t)r);
            ck_assert_int_eq(zps_shard_push_begin(p[k].sh, keys, PN, g, 0.5f, clip, &pr[k]), 0);
            ck_assert_int_eq(zps_shard_push_commit(p[k].sh), 0);
        }
        ck_assert_uint_eq(pr[0].new_keys, pr[1].new_keys);
        if (r > 0 && !a)
            ck_assert_uint_eq(pr[0].new_keys, PN / 3); /* the sliding window's new third */
        s_round(keys, g, pf, r + 1); /* a pull of stored and unseen keys */
        for (int k = 0; k < 2; k++)
            zps_shard_pull(p[k].sh, keys, PN, w[k]);
        ck_assert_int_eq(memcmp(w[0], w[1], PN * o->dim * sizeof(float)), 0);
    }
    s_same_tables(p[0].sh, p[1].sh);
    if (a) {
        zps_admit_stats_t s0, s1;
        zps_shard_admit_stats(p[0].sh, &s0);
        zps_shard_admit_stats(p[1].sh, &s1);
        ck_assert_uint_eq(s0.admitted_keys, s1.admitted_keys);
        ck_assert_uint_eq(s0.rejected_keys, s1.rejected_keys);
        ck_assert_uint_gt(s0.rejected_keys, 0);
        ck_assert_uint_gt(s0.admitted_keys, 0);
    }
    free(keys);
    free(g);
    free(w[0]);
    free(w[1]);
    s_pair_destroy(p);
}

START_TEST(threads_same_bits)
{
    zps_optim_conf_t o;
    zps_optim_defaults(&o, ZPS_OPT_FTRL);
    s_same_bits(&o, NULL, NULL, 0);
    s_same_bits(&o, NULL, NULL, 0.3f); /* clipping: a scratch row per thread */
    o.accum = ZPS_ACCUM_UF16;          /* stochastic rounding, stamps, admission */
    zps_admit_conf_t a = {.mode = ZPS_ADMIT_COUNT, .count = 2, .ids = 1 << 16, .seed = 5};
    zps_bound_conf_t b = {.evict = 1, .max_keys = 1 << 20};
    s_same_bits(&o, &a, &b, 0);
    a = (zps_admit_conf_t){.mode = ZPS_ADMIT_PROB, .prob = 0.5, .seed = 9};
    s_same_bits(&o, &a, NULL, 0);
    zps_optim_defaults(&o, ZPS_OPT_ADAGRAD);
    o.dim = 3;
    o.init_scale = 0.01f;
    o.init_seed = 3;
    s_same_bits(&o, NULL, NULL, 0);
}
END_TEST

/* A push refused on a pool: bad in block 5 and in block 1 (and a block
 * after the first bad one may or may not have run): every row is as it
 * was, the first bad key is named, nothing is inserted. */
START_TEST(threads_refuse_whole)
{
    zps_optim_conf_t o;
    zps_optim_defaults(&o, ZPS_OPT_SGD);
    s_pair_t p[2];
    s_pair(p, &o, NULL, NULL);
    zps_shard_t *sh = p[1].sh;
    uint64_t *keys = malloc(PN * sizeof *keys);
    float *g = malloc(PN * sizeof *g);
    s_round(keys, g, 1, 0);
    zps_shard_push_t pr;
    ck_assert_int_eq(zps_shard_push_begin(sh, keys, PN, g, 1, 0, &pr), 0);
    ck_assert_int_eq(zps_shard_push_commit(sh), 0);
    zps_table_t *t = zps_shard_table(sh);
    float *snap = malloc(PN * sizeof *snap);
    for (size_t i = 0; i < PN; i++)
        snap[i] = zps_table_find(t, keys[i])[0];
    s_round(keys, g, 1, 1); /* two thirds stored, a third new */
    const size_t bad1 = 5 * ZPS_SHARD_BLOCK + 77, bad0 = ZPS_SHARD_BLOCK + 3;
    g[bad1] = INFINITY;
    ck_assert_int_eq(zps_shard_push_begin(sh, keys, PN, g, 1, 0, &pr), ZPS_ENONFINITE);
    ck_assert_uint_eq(pr.bad, bad1);
    g[bad0] = NAN;
    ck_assert_int_eq(zps_shard_push_begin(sh, keys, PN, g, 1, 0, &pr), ZPS_ENONFINITE);
    ck_assert_uint_eq(pr.bad, bad0);
    ck_assert_uint_eq(zps_table_size(t), PN);
    s_round(keys, g, 1, 0);
    for (size_t i = 0; i < PN; i++)
        ck_assert(zps_table_find(t, keys[i])[0] == snap[i]);
    free(snap);
    free(keys);
    free(g);
    s_pair_destroy(p);
}
END_TEST

/* Begun on a pool, then evictions move rows (the server evicts between
 * begin and commit), then abort: every surviving row is as it was. */
START_TEST(threads_evict_then_abort)
{
    zps_optim_conf_t o;
    zps_optim_defaults(&o, ZPS_OPT_FTRL);
    o.accum = ZPS_ACCUM_UF16;
    zps_bound_conf_t b = {.evict = 1, .max_keys = 2 * PN};
    s_pair_t p[2];
    s_pair(p, &o, NULL, &b);
    zps_shard_t *sh = p[1].sh;
    zps_table_t *t = zps_shard_table(sh);
    uint64_t *keys = malloc(PN * sizeof *keys);
    float *g = malloc(PN * sizeof *g);
    size_t rf = zps_table_row_floats(t);
    zps_shard_push_t pr;
    for (unsigned r = 0; r < 2; r++) {
        s_round(keys, g, 1, 4 * r); /* two disjoint sets of keys */
        ck_assert_int_eq(zps_shard_push_begin(sh, keys, PN, g, 1, 0, &pr), 0);
        ck_assert_int_eq(zps_shard_push_commit(sh), 0);
    }
    float *snap = malloc(2 * PN * rf * sizeof *snap);
    uint64_t *all = malloc(2 * PN * sizeof *all);
    for (unsigned r = 0; r < 2; r++) {
        s_round(all + r * PN, g, 1, 4 * r);
        for (size_t i = 0; i < PN; i++)
            memcpy(snap + (r * PN + i) * rf, zps_table_find(t, all[r * PN + i]), rf * sizeof *snap);
    }
    s_round(keys, g, 1, 1); /* two thirds of the first set, a third new */
    ck_assert_int_eq(zps_shard_push_begin(sh, keys, PN, g, 1, 0, &pr), 0);
    ck_assert_uint_eq(zps_shard_evict(sh, PN / 2), PN / 2);
    zps_shard_push_abort(sh);
    ck_assert_uint_eq(zps_table_size(t), 2 * PN - PN / 2);
    size_t kept = 0;
    for (size_t i = 0; i < 2 * PN; i++) {
        const float *row = zps_table_find(t, all[i]);
        if (row) {
            ck_assert_int_eq(memcmp(row, snap + i * rf, rf * sizeof *row), 0);
            kept++;
        }
    }
    ck_assert_uint_eq(kept, 2 * PN - PN / 2);
    free(snap);
    free(all);
    free(keys);
    free(g);
    s_pair_destroy(p);
}
END_TEST

Suite *suite_pool(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, pool_runs_every_part_once);
    tcase_add_test(tc, threads_same_bits);
    tcase_add_test(tc, threads_refuse_whole);
    tcase_add_test(tc, threads_evict_then_abort);
    suite_add_tcase(s, tc);
    return s;
}
