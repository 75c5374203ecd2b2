/* Unit tests of zps_shard: pulls give stored or initial weights without
 * inserting; a push gives exactly the rows zps_optim_apply gives one by
 * one; a refused or aborted push leaves every row and the key count as
 * they were, across chunk boundaries. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_suites.h"
#include "zps_err.h"
#include "zps_shard.h"

#define N 1000 /* keys per push: several 256-key chunks */

static zps_optim_conf_t s_conf(zps_opt_kind_t kind, uint32_t dim, float init)
{
    zps_optim_conf_t o;
    zps_optim_defaults(&o, kind);
    o.dim = dim;
    o.init_scale = init;
    o.init_seed = 7;
    return o;
}

/* keys 3, 6, 9, ... (sorted, unique); gradients g[i][j] = small values */
static void s_push_data(uint64_t *keys, float *g, size_t n, size_t pf, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        keys[i] = 3 * (i + 1);
        for (size_t j = 0; j < pf; j++)
            g[i * pf + j] = (float)((int)((i * 131 + j * 17 + seed) % 97) - 48) / 64.0f;
    }
}

/* the norm optimizer needs q >= 0 and x > 0 in its [g | q | x] push rows */
static void s_norm_fix(float *g, size_t n, uint32_t dim)
{
    size_t pf = 2 * dim + 1;
    for (size_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < dim; j++)
            g[i * pf + dim + j] = g[i * pf + j] * g[i * pf + j];
        g[i * pf + 2 * dim] = 1.0f + (float)(i % 3);
    }
}

/* the shard after a push equals rows built by hand with zps_optim_apply */
static void s_check_against_reference(zps_opt_kind_t kind, uint32_t dim, float init,
                                      float lr_scale)
{
    zps_optim_conf_t o = s_conf(kind, dim, init);
    zps_shard_t *sh = zps_shard_new(&o, 16);
    ck_assert_ptr_nonnull(sh);
    size_t pf = zps_optim_push_floats(&o), rf = zps_optim_row_floats(&o);
    uint64_t *keys = malloc(N * sizeof *keys);
    float *g = malloc(N * pf * sizeof *g), *ref = malloc(N * rf * sizeof *ref);
    float *w = malloc(N * dim * sizeof *w), *wr = malloc(dim * sizeof *wr);
    zps_optim_conf_t scaled = o;
    scaled.lr *= lr_scale;
    for (uint32_t round = 0; round < 3; round++) {
        s_push_data(keys, g, N, pf, round);
        if (kind == ZPS_OPT_NORM)
            s_norm_fix(g, N, dim);
        for (size_t i = 0; i < N; i++) {
            if (round == 0)
                zps_optim_init_row(&o, keys[i], ref + i * rf);
            zps_optim_apply(&scaled, ref + i * rf, g + i * pf);
        }
        zps_shard_push_t pr;
        ck_assert_int_eq(zps_shard_push_begin(sh, keys, N, g, lr_scale, 0, &pr), 0);
        ck_assert_uint_eq(pr.new_keys, round == 0 ? N : 0);
        ck_assert_int_eq(zps_shard_push_commit(sh), 0);
    }
    ck_assert_uint_eq(zps_table_size(zps_shard_table(sh)), N);
    zps_shard_pull(sh, keys, N, w);
    for (size_t i = 0; i < N; i++) {
        const float *row = zps_table_find(zps_shard_table(sh), keys[i]);
        ck_assert_ptr_nonnull(row);
        ck_assert_int_eq(memcmp(row, ref + i * rf, rf * sizeof *row), 0);
        zps_optim_weights(&o, ref + i * rf, wr);
        ck_assert_int_eq(memcmp(w + i * dim, wr, dim * sizeof *wr), 0);
    }
    free(keys);
    free(g);
    free(ref);
    free(w);
    free(wr);
    zps_shard_destroy(&sh);
    ck_assert_ptr_null(sh);
}

START_TEST(push_matches_reference)
{
    s_check_against_reference(ZPS_OPT_SGD, 1, 0, 1);
    s_check_against_reference(ZPS_OPT_ADAGRAD, 4, 0.1f, 1);
    s_check_against_reference(ZPS_OPT_FTRL, 1, 0, 1);
    s_check_against_reference(ZPS_OPT_ADAM, 9, 0.1f, 1);
    s_check_against_reference(ZPS_OPT_NORM, 9, 0.01f, 1);
    s_check_against_reference(ZPS_OPT_NORM, 1, 0, 4);
}
END_TEST

START_TEST(pull_does_not_insert)
{
    zps_optim_conf_t o = s_conf(ZPS_OPT_ADAGRAD, 5, 0.1f);
    zps_shard_t *sh = zps_shard_new(&o, 16);
    uint64_t keys[600];
    float w[600 * 5], w0[5];
    for (size_t i = 0; i < 600; i++)
        keys[i] = 10 + 2 * i;
    zps_shard_pull(sh, keys, 600, w);
    ck_assert_uint_eq(zps_table_size(zps_shard_table(sh)), 0);
    for (size_t i = 0; i < 600; i++) {
        zps_optim_initial_weights(&o, keys[i], w0);
        ck_assert_int_eq(memcmp(w + i * 5, w0, sizeof w0), 0);
    }
    /* zero init: zeros */
    zps_optim_conf_t z = s_conf(ZPS_OPT_SGD, 3, 0);
    zps_shard_t *sz = zps_shard_new(&z, 16);
    float wz[600 * 3];
    memset(wz, 0xff, sizeof wz);
    zps_shard_pull(sz, keys, 600, wz);
    for (size_t i = 0; i < 600 * 3; i++)
        ck_assert(wz[i] == 0.0f);
    zps_shard_destroy(&sh);
    zps_shard_destroy(&sz);
}
END_TEST

/* A snapshot of every stored row, to compare after a refused push. */
static float *s_snapshot(zps_shard_t *sh, const uint64_t *keys, size_t n, size_t rf)
{
    float *snap = malloc(n * rf * sizeof *snap);
    for (size_t i = 0; i < n; i++) {
        const float *row = zps_table_find(zps_shard_table(sh), keys[i]);
        ck_assert_ptr_nonnull(row);
        memcpy(snap + i * rf, row, rf * sizeof *row);
    }
    return snap;
}

static void s_same_rows(zps_shard_t *sh, const uint64_t *keys, size_t n, size_t rf,
                        const float *snap)
{
    for (size_t i = 0; i < n; i++) {
        const float *row = zps_table_find(zps_shard_table(sh), keys[i]);
        ck_assert_ptr_nonnull(row);
        ck_assert_int_eq(memcmp(row, snap + i * rf, rf * sizeof *row), 0);
    }
}

START_TEST(nonfinite_refused_whole)
{
    zps_optim_conf_t o = s_conf(ZPS_OPT_SGD, 2, 0);
    zps_shard_t *sh = zps_shard_new(&o, 16);
    size_t pf = 2, rf = 2;
    uint64_t keys[N + 100];
    float g[(N + 100) * 2];
    s_push_data(keys, g, N, pf, 1);
    zps_shard_push_t pr;
    ck_assert_int_eq(zps_shard_push_begin(sh, keys, N, g, 1, 0, &pr), 0);
    ck_assert_int_eq(zps_shard_push_commit(sh), 0);
    float *snap = s_snapshot(sh, keys, N, rf);
    /* the same keys plus 100 new ones (interleaved at the end), one
     * gradient inf in the third chunk: every row of the first two chunks was
     * already updated in place and must come back */
    s_push_data(keys, g, N + 100, pf, 2);
    g[700 * pf + 1] = INFINITY;
    ck_assert_int_eq(zps_shard_push_begin(sh, keys, N + 100, g, 1, 0, &pr), ZPS_ENONFINITE);
    ck_assert_uint_eq(pr.bad, 700);
    ck_assert_uint_eq(zps_table_size(zps_shard_table(sh)), N);
    s_same_rows(sh, keys, N, rf, snap);
    /* finite gradients whose scaled step overflows a row (sgd, lr 0.1:
     * 0.1 x 64 x 3e38 is past FLT_MAX): also refused whole */
    g[700 * pf + 1] = 1.0f;
    g[5 * pf] = 3e38f;
    ck_assert_int_eq(zps_shard_push_begin(sh, keys, N + 100, g, 64, 0, &pr), ZPS_ENONFINITE);
    ck_assert_uint_eq(pr.bad, 5);
    ck_assert_uint_eq(zps_table_size(zps_shard_table(sh)), N);
    s_same_rows(sh, keys, N, rf, snap);
    /* at scale 1 the same push is finite and applies */
    ck_assert_int_eq(zps_shard_push_begin(sh, keys, N + 100, g, 1, 0, &pr), 0);
    ck_assert_uint_eq(pr.new_keys, 100);
    zps_shard_push_abort(sh);
    ck_assert_uint_eq(zps_table_size(zps_shard_table(sh)), N);
    s_same_rows(sh, keys, N, rf, snap);
    free(snap);
    zps_shard_destroy(&sh);
}
END_TEST

START_TEST(abort_and_commit)
{
    zps_optim_conf_t o = s_conf(ZPS_OPT_ADAGRAD, 3, 0.05f);
    zps_shard_t *sh = zps_shard_new(&o, 16);
    size_t pf = 3, rf = zps_optim_row_floats(&o);
    uint64_t keys[N];
    float g[N * 3];
    s_push_data(keys, g, N / 2, pf, 3);
    zps_shard_push_t pr;
    ck_assert_int_eq(zps_shard_push_begin(sh, keys, N / 2, g, 1, 0, &pr), 0);
    ck_assert_int_eq(zps_shard_push_commit(sh), 0);
    float *snap = s_snapshot(sh, keys, N / 2, rf);
    s_push_data(keys, g, N, pf, 4);
    ck_assert_int_eq(zps_shard_push_begin(sh, keys, N, g, 1, 0, &pr), 0);
    ck_assert_uint_eq(pr.new_keys, N - N / 2);
    zps_shard_push_abort(sh);
    ck_assert_uint_eq(zps_table_size(zps_shard_table(sh)), N / 2);
    s_same_rows(sh, keys, N / 2, rf, snap);
    for (size_t i = N / 2; i < N; i++)
        ck_assert_ptr_null(zps_table_find(zps_shard_table(sh), keys[i]));
    /* the same push committed: new keys start from their initial row */
    ck_assert_int_eq(zps_shard_push_begin(sh, keys, N, g, 1, 0, &pr), 0);
    ck_assert_int_eq(zps_shard_push_commit(sh), 0);
    ck_assert_uint_eq(zps_table_size(zps_shard_table(sh)), N);
    float ref[8];
    for (size_t i = N / 2; i < N; i++) {
        zps_optim_init_row(&o, keys[i], ref);
        zps_optim_apply(&o, ref, g + i * pf);
        ck_assert_int_eq(memcmp(zps_table_find(zps_shard_table(sh), keys[i]), ref,
                                rf * sizeof *ref), 0);
    }
    /* a second commit or abort without a begin changes nothing */
    ck_assert_int_eq(zps_shard_push_commit(sh), 0);
    zps_shard_push_abort(sh);
    ck_assert_uint_eq(zps_table_size(zps_shard_table(sh)), N);
    free(snap);
    zps_shard_destroy(&sh);
}
END_TEST

START_TEST(clip_each_value)
{
    zps_optim_conf_t o = s_conf(ZPS_OPT_SGD, 4, 0);
    zps_shard_t *sh = zps_shard_new(&o, 16);
    uint64_t keys[300];
    float g[300 * 4], c[4], ref[4];
    s_push_data(keys, g, 300, 4, 5);
    zps_shard_push_t pr;
    ck_assert_int_eq(zps_shard_push_begin(sh, keys, 300, g, 1, 0.25f, &pr), 0);
    ck_assert_int_eq(zps_shard_push_commit(sh), 0);
    for (size_t i = 0; i < 300; i++) {
        memcpy(c, g + i * 4, sizeof c);
        zps_optim_clip(c, 4, 0.25f);
        memset(ref, 0, sizeof ref);
        zps_optim_apply(&o, ref, c);
        ck_assert_int_eq(memcmp(zps_table_find(zps_shard_table(sh), keys[i]), ref, sizeof ref), 0);
        for (int j = 0; j < 4; j++)
            ck_assert(fabsf(ref[j]) <= 0.25f * o.lr + 1e-7f);
    }
    zps_shard_destroy(&sh);
}
END_TEST

START_TEST(adopt_checks_rows)
{
    zps_optim_conf_t o = s_conf(ZPS_OPT_ADAGRAD, 2, 0);
    zps_shard_t *sh = zps_shard_new(&o, 16);
    zps_table_t *wrong = zps_table_new(3, 16), *right = zps_table_new(4, 16);
    ck_assert_int_eq(zps_shard_adopt(sh, &wrong), ZPS_EINVAL);
    ck_assert_ptr_nonnull(wrong);
    float *row = zps_table_upsert(right, 42, NULL);
    row[0] = 0.5f;
    ck_assert_int_eq(zps_shard_adopt(sh, &right), 0);
    ck_assert_ptr_null(right);
    float w[2];
    uint64_t k = 42;
    zps_shard_pull(sh, &k, 1, w);
    ck_assert(w[0] == 0.5f);
    zps_table_destroy(&wrong);
    zps_shard_destroy(&sh);
}
END_TEST

/* An SGD shard (lr 1, dim 1) with expiry/eviction b; o gets its optimizer */
static zps_shard_t *s_bound_shard(zps_optim_conf_t *o, zps_bound_conf_t b)
{
    *o = s_conf(ZPS_OPT_SGD, 1, 0);
    o->lr = 1;
    zps_shard_t *sh = zps_shard_new(o, 16);
    ck_assert_ptr_nonnull(sh);
    ck_assert_int_eq(zps_shard_set_bound(sh, &b), 0);
    return sh;
}

/* push n keys from base (stride 1) with gradient 1: 0 or the push's error */
static int s_push1(zps_shard_t *sh, uint64_t base, size_t n)
{
    uint64_t *keys = malloc(n * sizeof *keys);
    float *g = malloc(n * sizeof *g);
    for (size_t i = 0; i < n; i++) {
        keys[i] = base + i;
        g[i] = 1.0f;
    }
    zps_shard_push_t pr;
    int rc = zps_shard_push_begin(sh, keys, n, g, 1, 0, &pr);
    if (rc == 0)
        rc = zps_shard_push_commit(sh);
    free(keys);
    free(g);
    return rc;
}

/* Expiry in job seconds: nothing expires early (a row updated at second s
 * with expire_s N lives while now - s <= N), everything eventually (a small
 * budget per call still reaches every row), a re-pushed row lives again. */
START_TEST(expire_rows)
{
    zps_optim_conf_t o;
    zps_shard_t *sh = s_bound_shard(&o, (zps_bound_conf_t){.expire_s = 3});
    zps_table_t *t = zps_shard_table(sh);
    ck_assert_uint_eq(zps_table_row_floats(t), zps_optim_row_floats(&o) + 1);
    zps_shard_clock(sh, 1000);           /* job second 0 */
    ck_assert_int_eq(s_push1(sh, 100, 500), 0);  /* A: updated at 0 */
    zps_shard_clock(sh, 6500);           /* second 5 */
    ck_assert_int_eq(s_push1(sh, 1000, 500), 0); /* B: at 5 */
    ck_assert_int_eq(s_push1(sh, 100, 10), 0);   /* A's first 10 again, at 5 */
    zps_shard_clock(sh, 8999);           /* second 7: B (5) is 2 s old, A (0) 7 s */
    size_t gone = 0;
    for (int i = 0; i < 100; i++)        /* 16 rows a call: the cursor goes round */
        gone += zps_shard_sweep(sh, 16);
    ck_assert_uint_eq(gone, 490);
    ck_assert_uint_eq(zps_table_size(t), 510);
    for (uint64_t k = 100; k < 600; k++)
        ck_assert((zps_table_find(t, k) != NULL) == (k < 110));
    zps_shard_clock(sh, 9000);           /* second 8: B is 3 s old: not yet */
    ck_assert_uint_eq(zps_shard_sweep(sh, SIZE_MAX), 0);
    zps_shard_clock(sh, 10000);          /* second 9: 4 s: gone */
    gone = 0;
    for (int i = 0; i < 100; i++)
        gone += zps_shard_sweep(sh, 64);
    ck_assert_uint_eq(gone, 510);
    ck_assert_uint_eq(zps_table_size(t), 0);
    zps_bound_stats_t st;
    zps_shard_bound_stats(sh, &st);
    ck_assert_uint_eq(st.expired, 1000);
    ck_assert_uint_eq(st.now, 9);
    /* an expired key is a new key */
    ck_assert_int_eq(s_push1(sh, 100, 1), 0);
    ck_assert_float_eq(zps_table_find(t, 100)[0], -1.0f);
    zps_shard_destroy(&sh);
}
END_TEST

/* Eviction keeps the table at its cap with hot keys in it: a stream of
 * cold keys and a few hot keys pushed every second; before each commit the
 * caller evicts what the new keys need beyond the cap (as the server
 * does).  The cap is never exceeded after a push, every hot key is still
 * there at the end with every one of its updates, and no push's own row
 * is evicted (its update would be lost). */
START_TEST(evict_keeps_hot_keys)
{
    zps_optim_conf_t o;
    zps_shard_t *sh = s_bound_shard(&o, (zps_bound_conf_t){.evict = 1});
    zps_table_t *t = zps_shard_table(sh);
    const size_t cap = 2000, hot = 50, cold = 300;
    uint64_t keys[400];
    float g[400];
    uint64_t next_cold = 1000000;
    for (int sec = 0; sec < 60; sec++) {
        zps_shard_clock(sh, 1000 * (int64_t)sec);
        for (size_t i = 0; i < hot; i++) { /* hot: 1..50 */
            keys[i] = 1 + i;
            g[i] = 1.0f;
        }
        for (size_t i = 0; i < cold; i++) { /* cold: fresh each second */
            keys[hot + i] = next_cold++;
            g[hot + i] = 1.0f;
        }
        zps_shard_push_t pr;
        ck_assert_int_eq(zps_shard_push_begin(sh, keys, hot + cold, g, 1, 0, &pr), 0);
        size_t size = zps_table_size(t);
        if (size + pr.new_keys > cap)
            ck_assert_uint_eq(zps_shard_evict(sh, size + pr.new_keys - cap),
                              size + pr.new_keys - cap);
        ck_assert_int_eq(zps_shard_push_commit(sh), 0);
        ck_assert_uint_le(zps_table_size(t), cap);
        for (size_t i = 0; i < hot + cold; i++) { /* the push's rows are all there */
            float *r = zps_table_find(t, keys[i]);
            ck_assert_ptr_nonnull(r);
            ck_assert_float_eq(r[0], i < hot ? -(float)(sec + 1) : -1.0f);
        }
    }
    ck_assert_uint_eq(zps_table_size(t), cap);
    for (uint64_t k = 1; k <= hot; k++) {
        float *r = zps_table_find(t, k);
        ck_assert_ptr_nonnull(r);
        ck_assert_float_eq(r[0], -60.0f); /* sgd, lr 1: every update kept */
    }
    zps_bound_stats_t st;
    zps_shard_bound_stats(sh, &st);
    ck_assert_uint_eq(st.evicted, hot + 60 * cold - cap);
    zps_shard_destroy(&sh);
}
END_TEST

/* An eviction between push_begin and its abort (or commit) moves rows in
 * the table (deletes shift entries back): the abort must still put the
 * push's rows back as they were, in their own keys' rows, and a commit
 * after it must leave exactly the pushed values. */
START_TEST(evict_then_abort)
{
    zps_optim_conf_t o;
    zps_shard_t *sh = s_bound_shard(&o, (zps_bound_conf_t){.evict = 1});
    zps_table_t *t = zps_shard_table(sh);
    zps_shard_clock(sh, 0);
    ck_assert_int_eq(s_push1(sh, 1, 3000), 0); /* keys 1..3000 at -1 */
    enum { P = 200 };
    uint64_t keys[P];
    float g[P];
    for (size_t i = 0; i < P; i++) { /* 150 stored keys, 50 new */
        keys[i] = i < 150 ? 1 + 7 * i : 100000 + i;
        g[i] = 2.0f;
    }
    for (int commit = 0; commit < 2; commit++) {
        zps_shard_clock(sh, 1000 * (int64_t)(commit + 1));
        zps_shard_push_t pr;
        ck_assert_int_eq(zps_shard_push_begin(sh, keys, P, g, 1, 0, &pr), 0);
        ck_assert_uint_eq(pr.new_keys, 50); /* the abort kept none of them */
        uint64_t gen = zps_table_gen(t);
        ck_assert_uint_eq(zps_shard_evict(sh, 1000), 1000);
        ck_assert_uint_ne(zps_table_gen(t), gen); /* rows really moved */
        if (!commit) {
            zps_shard_push_abort(sh);
            for (size_t i = 0; i < P; i++) {
                float *r = zps_table_find(t, keys[i]);
                if (i < 150) {
                    ck_assert_ptr_nonnull(r);
                    ck_assert_float_eq(r[0], -1.0f); /* as before the push */
                } else {
                    ck_assert_ptr_null(r);
                }
            }
            ck_assert_uint_eq(zps_table_size(t), 2000);
        } else {
            ck_assert_int_eq(zps_shard_push_commit(sh), 0);
            for (size_t i = 0; i < P; i++) {
                float *r = zps_table_find(t, keys[i]);
                ck_assert_ptr_nonnull(r);
                ck_assert_float_eq(r[0], i < 150 ? -3.0f : -2.0f);
            }
        }
    }
    /* every other stored key still holds its own value */
    size_t n = 0;
    zps_table_cur_t cur = ZPS_TABLE_CUR_INIT;
    uint64_t key;
    float *row;
    while (zps_table_next(t, &cur, &key, &row)) {
        int pushed = 0;
        for (size_t i = 0; i < P; i++)
            pushed |= keys[i] == key;
        if (!pushed)
            ck_assert_float_eq(row[0], -1.0f);
        n++;
    }
    ck_assert_uint_eq(n, zps_table_size(t));
    zps_shard_destroy(&sh);
}
END_TEST

/* Eviction fails only when nothing but the open push's rows is left: a
 * push holding 900 of 1000 stored keys, and an eviction of 100, evicts the
 * other 100 exactly (random samples mostly hit the push's rows here; they
 * do not count, and past 64 draws a scan finds the rest), and one more is
 * refused.  Repeated with 20 tables of random hash seeds. */
START_TEST(evict_all_but_push)
{
    for (int rep = 0; rep < 20; rep++) {
        zps_optim_conf_t o;
        zps_shard_t *sh = s_bound_shard(&o, (zps_bound_conf_t){.evict = 1});
        zps_shard_clock(sh, 0);
        ck_assert_int_eq(s_push1(sh, 1, 1000), 0);
        uint64_t keys[900];
        float g[900];
        for (size_t i = 0; i < 900; i++) {
            keys[i] = 1 + i;
            g[i] = 1.0f;
        }
        zps_shard_push_t pr;
        ck_assert_int_eq(zps_shard_push_begin(sh, keys, 900, g, 1, 0, &pr), 0);
        ck_assert_uint_eq(zps_shard_evict(sh, 100), 100);
        ck_assert_uint_eq(zps_shard_evict(sh, 1), 0);
        ck_assert_int_eq(zps_shard_push_commit(sh), 0);
        ck_assert_uint_eq(zps_table_size(zps_shard_table(sh)), 900);
        for (uint64_t k = 1; k <= 900; k++)
            ck_assert_float_eq(zps_table_find(zps_shard_table(sh), k)[0], -2.0f);
        zps_shard_destroy(&sh);
    }
}
END_TEST

/* a copy of sh's rows, as a restore makes */
static zps_table_t *s_copy_rows(zps_shard_t *sh)
{
    zps_table_t *c = zps_table_new(zps_table_row_floats(zps_shard_table(sh)), 16);
    zps_table_cur_t cur = ZPS_TABLE_CUR_INIT;
    uint64_t key;
    float *row;
    while (zps_table_next(zps_shard_table(sh), &cur, &key, &row))
        memcpy(zps_table_upsert(c, key, NULL), row, zps_table_row_floats(c) * sizeof(float));
    return c;
}

/* Stamps travel with the rows (checkpoints hold whole rows) and the job
 * clock with the shard's state: a shard that imports the state and adopts
 * the rows goes on from the saved clock, so a restored job does not age by
 * the time it was stopped, and expiry goes on by the old stamps.  Without
 * the clock, ages are unknown: every row counts as new (none expires
 * early).  With another quantum (another --expire-after), ages carry over. */
START_TEST(bound_adopt_goes_on)
{
    zps_optim_conf_t o = s_conf(ZPS_OPT_FTRL, 1, 0);
    o.accum = ZPS_ACCUM_UF16;
    zps_shard_t *a = zps_shard_new(&o, 16), *b2 = zps_shard_new(&o, 16);
    zps_shard_t *b3 = zps_shard_new(&o, 16), *b4 = zps_shard_new(&o, 16);
    zps_bound_conf_t b = {.expire_s = 10, .evict = 1};
    zps_bound_conf_t blong = {.expire_s = 4000, .evict = 1}; /* quanta of 1/2 s */
    ck_assert_int_eq(zps_shard_set_bound(a, &b), 0);
    ck_assert_int_eq(zps_shard_set_bound(b2, &b), 0);
    ck_assert_int_eq(zps_shard_set_bound(b3, &b), 0);
    ck_assert_int_eq(zps_shard_set_bound(b4, &blong), 0);
    /* ftrl, uf16 n, dim 1: the stamp fits the row's spare bytes */
    ck_assert_uint_eq(zps_table_row_floats(zps_shard_table(a)), 2);
    zps_shard_clock(a, 0);
    ck_assert_int_eq(s_push1(a, 1, 100), 0);       /* at 0 */
    zps_shard_clock(a, 100000);
    ck_assert_int_eq(s_push1(a, 1000, 100), 0);    /* at 100 */
    ck_assert_uint_eq(zps_shard_sweep(a, SIZE_MAX), 100);
    ck_assert_int_eq(s_push1(a, 1, 100), 0);       /* at 100 again: 300 pushes made */
    zps_shard_clock(a, 120000);
    ck_assert_int_eq(s_push1(a, 1, 50), 0);        /* keys 1..50 at 120 */
    unsigned char *blob;
    size_t blen;
    char err[200];
    ck_assert_int_eq(zps_shard_state_export(a, &blob, &blen), 0);
    ck_assert_uint_eq(blen, 32);
    ck_assert_int_eq(zps_shard_state_import(b2, blob, blen - 1, err, sizeof err), ZPS_EPROTO);
    ck_assert_int_eq(zps_shard_state_import(b2, blob, blen, err, sizeof err), 0);
    zps_table_t *c = s_copy_rows(a);
    ck_assert_int_eq(zps_shard_adopt(b2, &c), 0);
    zps_shard_clock(b2, 5000000);                  /* a new process: its clock from 120 */
    zps_bound_stats_t st;
    zps_shard_bound_stats(b2, &st);
    ck_assert_uint_eq(st.now, 120);
    ck_assert_uint_eq(st.expired, 100);            /* the counters came along */
    /* keys 51..100 and 1000..1099 (at 100) are 20 s old, 1..50 (at 120) new */
    ck_assert_uint_eq(zps_shard_sweep(b2, SIZE_MAX), 150);
    ck_assert_uint_eq(zps_table_size(zps_shard_table(b2)), 50);
    /* without the clock: every row is new; all expire 10 s later */
    c = s_copy_rows(a);
    ck_assert_int_eq(zps_shard_adopt(b3, &c), 0);
    zps_shard_clock(b3, 0);
    ck_assert_uint_eq(zps_shard_sweep(b3, SIZE_MAX), 0);
    zps_shard_clock(b3, 10000);
    ck_assert_uint_eq(zps_shard_sweep(b3, SIZE_MAX), 0);
    zps_shard_clock(b3, 11000);
    ck_assert_uint_eq(zps_shard_sweep(b3, SIZE_MAX), 200);
    /* another quantum: ages carry over (20 s and 0 s at 120) */
    ck_assert_int_eq(zps_shard_state_import(b4, blob, blen, err, sizeof err), 0);
    c = s_copy_rows(a);
    ck_assert_int_eq(zps_shard_adopt(b4, &c), 0);
    zps_shard_clock(b4, 0);
    ck_assert_uint_eq(zps_shard_sweep(b4, SIZE_MAX), 0);
    zps_shard_clock(b4, 3980000);                  /* 4100: the 100s are 4000 s old */
    ck_assert_uint_eq(zps_shard_sweep(b4, SIZE_MAX), 0);
    zps_shard_clock(b4, 3981000);                  /* 4101: over 4000 s */
    ck_assert_uint_eq(zps_shard_sweep(b4, SIZE_MAX), 150);
    /* set_bound needs an empty shard */
    ck_assert_int_eq(zps_shard_set_bound(b2, &b), ZPS_EINVAL);
    free(blob);
    zps_shard_destroy(&a);
    zps_shard_destroy(&b2);
    zps_shard_destroy(&b3);
    zps_shard_destroy(&b4);
}
END_TEST

/* A replicated job's clock is the wall clock: a row copied to another
 * server (a joiner's snapshot pages: rows inserted as they are) keeps its
 * age there without any conversion, and a restore ages the rows by the
 * time between the export and the restore. */
START_TEST(wall_clock_stamps)
{
    zps_optim_conf_t o = s_conf(ZPS_OPT_FTRL, 1, 0);
    o.accum = ZPS_ACCUM_UF16;
    zps_bound_conf_t b = {.expire_s = 3, .evict = 1, .wall_clock = 1};
    zps_shard_t *a = zps_shard_new(&o, 16), *j = zps_shard_new(&o, 16), *r = zps_shard_new(&o, 16);
    ck_assert_int_eq(zps_shard_set_bound(a, &b), 0);
    ck_assert_int_eq(zps_shard_set_bound(j, &b), 0);
    ck_assert_int_eq(zps_shard_set_bound(r, &b), 0);
    const int64_t t0 = 1796000000000; /* ms since 1970 */
    zps_shard_clock(a, t0);
    ck_assert_int_eq(s_push1(a, 1, 100), 0);        /* at t0 */
    zps_shard_clock(a, t0 + 2000);
    ck_assert_int_eq(s_push1(a, 1000, 100), 0);     /* at t0 + 2 s */
    zps_bound_stats_t st;
    zps_shard_bound_stats(a, &st);
    ck_assert_uint_eq(st.now, (uint64_t)(t0 + 2000) / 1000);
    /* a joiner, another process started later: its clock is the same */
    zps_shard_clock(j, t0 + 2500);
    zps_table_t *jt = zps_shard_table(j);
    zps_table_cur_t cur = ZPS_TABLE_CUR_INIT;
    uint64_t key;
    float *row;
    while (zps_table_next(zps_shard_table(a), &cur, &key, &row))
        memcpy(zps_table_upsert(jt, key, NULL), row, 2 * sizeof(float));
    zps_shard_clock(j, t0 + 3000);
    ck_assert_uint_eq(zps_shard_sweep(j, SIZE_MAX), 0);
    zps_shard_clock(j, t0 + 3300);                  /* keys 1..100: 3.3 s old */
    ck_assert_uint_eq(zps_shard_sweep(j, SIZE_MAX), 100);
    ck_assert_uint_eq(zps_table_size(jt), 100);
    /* a restore 1.5 s after the export: keys 1000.. are 3.5 s old then */
    unsigned char *blob;
    size_t blen;
    char err[200];
    ck_assert_int_eq(zps_shard_state_export(a, &blob, &blen), 0);
    zps_table_t *c = s_copy_rows(a);
    zps_shard_clock(r, t0 + 3500);
    ck_assert_int_eq(zps_shard_state_import(r, blob, blen, err, sizeof err), 0);
    ck_assert_int_eq(zps_shard_adopt(r, &c), 0);
    ck_assert_uint_eq(zps_shard_sweep(r, SIZE_MAX), 100); /* keys 1..100 */
    zps_shard_clock(r, t0 + 5300);
    ck_assert_uint_eq(zps_shard_sweep(r, SIZE_MAX), 100); /* keys 1000.. */
    free(blob);
    zps_shard_destroy(&a);
    zps_shard_destroy(&j);
    zps_shard_destroy(&r);
}
END_TEST

/* Stamps are 16 bits: over two days the clock goes round them many times.
 * The sweep keeps every age exact up to 2^15 quanta (2.3 hours) and
 * clamps older ones there.  (1) Eviction still tells hot keys (pushed
 * every 10 minutes) from cold ones (pushed once, 45 hours ago): at the
 * end the cold keys' true age is 10 x 2^16 + 1000 quanta, which read
 * modulo 2^16 (no clamp) is younger than the hot keys' 1160; eviction
 * takes cold keys only.  (2) Expiry of 3 hours (its own quantum of 85
 * ticks) never deletes keys pushed every 2 hours and deletes a key pushed
 * once in its first sweep after 3 hours. */
START_TEST(stamps_wrap)
{
    zps_optim_conf_t o;
    zps_shard_t *ev = s_bound_shard(&o, (zps_bound_conf_t){.evict = 1});
    zps_shard_t *ex = s_bound_shard(&o, (zps_bound_conf_t){.expire_s = 3 * 3600});
    zps_shard_clock(ev, 0);
    zps_shard_clock(ex, 0);
    ck_assert_int_eq(s_push1(ev, 1000, 500), 0);   /* cold */
    ck_assert_int_eq(s_push1(ex, 1000, 1), 0);     /* once */
    ck_assert_int_eq(s_push1(ex, 1, 10), 0);       /* every 2 hours */
    int64_t gone_at = -1;
    for (int64_t min = 10; min <= 2730; min += 10) {
        zps_shard_clock(ev, min * 60000);
        zps_shard_clock(ex, min * 60000);
        ck_assert_int_eq(s_push1(ev, 1, 50), 0);   /* hot */
        if (min % 120 == 0)
            ck_assert_int_eq(s_push1(ex, 1, 10), 0);
        zps_shard_sweep(ev, SIZE_MAX);
        if (zps_shard_sweep(ex, SIZE_MAX)) {
            ck_assert_int_eq(gone_at, -1);
            gone_at = min;
        }
        ck_assert_uint_eq(zps_table_size(zps_shard_table(ex)), gone_at < 0 ? 11 : 10);
    }
    ck_assert_int_eq(gone_at, 3 * 60 + 10);        /* the first sweep after 3 h */
    zps_shard_clock(ev, 164090000);                /* (10 x 65536 + 1000) / 4 s */
    zps_shard_push_t pr;
    uint64_t k = 99999;
    float g = 1;
    ck_assert_int_eq(zps_shard_push_begin(ev, &k, 1, &g, 1, 0, &pr), 0);
    ck_assert_uint_eq(zps_shard_evict(ev, 250), 250);
    ck_assert_int_eq(zps_shard_push_commit(ev), 0);
    for (uint64_t h = 1; h <= 50; h++)
        ck_assert_ptr_nonnull(zps_table_find(zps_shard_table(ev), h));
    ck_assert_uint_eq(zps_table_size(zps_shard_table(ev)), 301);
    zps_shard_destroy(&ev);
    zps_shard_destroy(&ex);
}
END_TEST

Suite *suite_shard(void)
{
    Suite *s = suite_create("shard");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, push_matches_reference);
    tcase_add_test(tc, pull_does_not_insert);
    tcase_add_test(tc, nonfinite_refused_whole);
    tcase_add_test(tc, abort_and_commit);
    tcase_add_test(tc, clip_each_value);
    tcase_add_test(tc, adopt_checks_rows);
    tcase_add_test(tc, expire_rows);
    tcase_add_test(tc, evict_keeps_hot_keys);
    tcase_add_test(tc, evict_then_abort);
    tcase_add_test(tc, bound_adopt_goes_on);
    tcase_add_test(tc, stamps_wrap);
    tcase_add_test(tc, evict_all_but_push);
    tcase_add_test(tc, wall_clock_stamps);
    suite_add_tcase(s, tc);
    return s;
}
