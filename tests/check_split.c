/* check_split: cutting a request by server and putting the replies back
 * (wk_split), against a naive reference.
 *
 * - The plan: for every server count 1..64 and request sizes 0, 1, small
 *   and many, pos/off equal what a plain per-server scan of the keys gives
 *   (server s's indices in increasing order), every key's recorded owner
 *   is zps_place's, and each server's keys are sorted and its own.
 * - Round trips: rows of width dim (1, 2, 3, 17, 64) gathered per server
 *   are each server's rows in order; scattered back (also from an
 *   unaligned buffer, as a received frame may be) they rebuild the
 *   caller's array exactly, every position written once (a sentinel shows
 *   an unwritten row, a count a twice-written one).
 * - One server: the plan is the identity.  An empty request writes only
 *   off (all zero).  Exact positions: a hand-made case where the servers'
 *   keys are known. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_suites.h"
#include "wk_split.h"
#include "zps_place.h"

/* Check records every passing ck_assert; loops test plainly and report
 * only a failure. */
#define S_REQUIRE(cond, ...)           \
    do {                               \
        if (!(cond))                   \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)

static uint64_t s_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* n sorted, strictly increasing keys: random gaps (dense or sparse) */
static uint64_t *s_keys(size_t n, uint64_t seed, int sparse)
{
    uint64_t *k = malloc((n ? n : 1) * sizeof *k), st = seed, x = s_rand(&st) & 0xffff;
    ck_assert_ptr_nonnull(k);
    for (size_t i = 0; i < n; i++) {
        x += 1 + (sparse ? s_rand(&st) >> 24 : s_rand(&st) % 3);
        k[i] = x;
    }
    return k;
}

/* the plan, checked against a per-server scan of the keys */
static void s_check_plan(const uint64_t *keys, size_t n, uint32_t S, const uint32_t *owner,
                         const uint32_t *pos, const size_t *off)
{
    S_REQUIRE(off[0] == 0 && off[S] == n, "S=%u n=%zu: off[0]=%zu off[S]=%zu", S, n, off[0],
              off[S]);
    size_t at = 0;
    for (uint32_t s = 0; s < S; s++) {
        S_REQUIRE(off[s] == at, "S=%u n=%zu: off[%u]=%zu, expected %zu", S, n, s, off[s], at);
        for (size_t i = 0; i < n; i++) {
            if (zps_place(keys[i], S) != s)
                continue;
            S_REQUIRE(at < off[s + 1] && pos[at] == i,
                      "S=%u n=%zu: server %u's key %zu is not at pos[%zu]", S, n, s, i, at);
            S_REQUIRE(owner[i] == s, "S=%u: owner[%zu]=%u, expected %u", S, i, owner[i], s);
            at++;
        }
        S_REQUIRE(off[s + 1] == at, "S=%u n=%zu: server %u has %zu keys, expected %zu", S, n,
                  s, off[s + 1] - off[s], at - off[s]);
    }
}

/* split, gather keys and rows per server, scatter back; everything checked */
static void s_round_trip(const uint64_t *keys, size_t n, uint32_t S, size_t dim, uint64_t seed)
{
    uint32_t *owner = malloc((n + 1) * sizeof *owner), *pos = malloc((n + 1) * sizeof *pos);
    size_t *off = malloc(((size_t)S + 1) * sizeof *off);
    uint64_t *part = malloc((n + 1) * sizeof *part);
    float *rows = malloc((n * dim + 1) * sizeof *rows), *back = malloc((n * dim + 1) * sizeof *back);
    float *tmp = malloc((n * dim + 1) * sizeof *tmp);
    unsigned char *raw = malloc(n * dim * sizeof(float) + 8);
    uint8_t *seen = calloc(n + 1, 1);
    ck_assert(owner && pos && off && part && rows && back && tmp && raw && seen);
    uint64_t st = seed;
    for (size_t i = 0; i < n * dim; i++) {
        rows[i] = (float)(int64_t)(s_rand(&st) >> 40) - 8388608.0f;
        back[i] = NAN;
    }
    memset(off, 0xab, ((size_t)S + 1) * sizeof *off);
    wk_split_by_server(keys, n, S, owner, pos, off);
    s_check_plan(keys, n, S, owner, pos, off);
    for (uint32_t s = 0; s < S; s++) {
        size_t cnt = off[s + 1] - off[s];
        const uint32_t *p = pos + off[s];
        wk_split_keys(keys, p, cnt, part);
        for (size_t j = 0; j < cnt; j++) {
            S_REQUIRE(part[j] == keys[p[j]] && zps_place(part[j], S) == s,
                      "S=%u: server %u's key %zu wrong", S, s, j);
            S_REQUIRE(j == 0 || part[j - 1] < part[j], "S=%u: server %u's keys not sorted", S, s);
            S_REQUIRE(!seen[p[j]], "S=%u: key %u in two parts", S, p[j]);
            seen[p[j]] = 1;
        }
        wk_split_gather(rows, dim, p, cnt, tmp);
        for (size_t j = 0; j < cnt; j++)
            S_REQUIRE(memcmp(tmp + j * dim, rows + (size_t)p[j] * dim, dim * sizeof(float)) == 0,
                      "S=%u dim=%zu: server %u's row %zu gathered wrong", S, dim, s, j);
        /* odd servers' rows come from an unaligned frame */
        if (s & 1) {
            memcpy(raw + 1, tmp, cnt * dim * sizeof(float));
            wk_split_scatter(raw + 1, dim, p, cnt, back);
        } else {
            wk_split_scatter(tmp, dim, p, cnt, back);
        }
    }
    for (size_t i = 0; i < n; i++)
        S_REQUIRE(seen[i], "S=%u n=%zu: key %zu in no part", S, n, i);
    for (size_t i = 0; i < n * dim; i++)
        S_REQUIRE(memcmp(&back[i], &rows[i], sizeof(float)) == 0,
                  "S=%u n=%zu dim=%zu: value %zu not put back (%g, expected %g)", S, n, dim, i,
                  (double)back[i], (double)rows[i]);
    free(owner);
    free(pos);
    free(off);
    free(part);
    free(rows);
    free(back);
    free(tmp);
    free(raw);
    free(seen);
}

START_TEST(plan_and_round_trip_1_to_64_servers)
{
    static const size_t sizes[] = {0, 1, 2, 7, 100, 1000};
    static const size_t dims[] = {1, 3, 17};
    for (uint32_t S = 1; S <= 64; S++)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            uint64_t *k = s_keys(sizes[i], S * 131 + i, (int)(i & 1));
            s_round_trip(k, sizes[i], S, dims[(S + i) % 3], S * 7 + i);
            free(k);
        }
}
END_TEST

START_TEST(many_keys_wide_rows)
{
    uint64_t *k = s_keys(300000, 99, 1);
    s_round_trip(k, 300000, 7, 1, 1);
    s_round_trip(k, 300000, 64, 2, 2);
    s_round_trip(k, 20000, 5, 64, 3);
    free(k);
}
END_TEST

START_TEST(one_server_is_the_identity)
{
    uint64_t *k = s_keys(5000, 3, 1);
    uint32_t *owner = malloc(5000 * sizeof *owner), *pos = malloc(5000 * sizeof *pos);
    size_t off[2] = {7, 7};
    ck_assert(owner && pos);
    wk_split_by_server(k, 5000, 1, owner, pos, off);
    ck_assert_uint_eq(off[0], 0);
    ck_assert_uint_eq(off[1], 5000);
    for (uint32_t i = 0; i < 5000; i++)
        S_REQUIRE(pos[i] == i && owner[i] == 0, "pos[%u] = %u", i, pos[i]);
    s_round_trip(k, 5000, 1, 4, 5);
    free(k);
    free(owner);
    free(pos);
}
END_TEST

START_TEST(empty_request)
{
    uint64_t key = 0;
    uint32_t owner = 77, pos = 77;
    size_t off[9];
    memset(off, 0xab, sizeof off);
    wk_split_by_server(&key, 0, 8, &owner, &pos, off);
    for (int s = 0; s <= 8; s++)
        ck_assert_uint_eq(off[s], 0);
    ck_assert_uint_eq(owner, 77); /* nothing else written */
    ck_assert_uint_eq(pos, 77);
    float out = 5.0f;
    wk_split_scatter(NULL, 3, &pos, 0, &out);
    wk_split_gather(&out, 3, &pos, 0, NULL);
    ck_assert(out == 5.0f);
}
END_TEST

START_TEST(exact_positions)
{
    /* keys chosen by placement: among 3 servers, a known owner for each */
    uint64_t keys[6];
    uint32_t want[6] = {2, 0, 0, 1, 2, 0};
    uint64_t x = 1;
    for (int i = 0; i < 6; i++) {
        while (zps_place(x, 3) != want[i])
            x++;
        keys[i] = x++;
    }
    uint32_t owner[6], pos[6];
    size_t off[4];
    wk_split_by_server(keys, 6, 3, owner, pos, off);
    const uint32_t pos_want[6] = {1, 2, 5, 3, 0, 4};
    const size_t off_want[4] = {0, 3, 4, 6};
    for (int i = 0; i < 6; i++) {
        ck_assert_uint_eq(pos[i], pos_want[i]);
        ck_assert_uint_eq(owner[i], want[i]);
    }
    for (int s = 0; s < 4; s++)
        ck_assert_uint_eq(off[s], off_want[s]);
    /* server 0 answers rows 10, 20, 30 (dim 2): they land at keys 1, 2, 5 */
    const float reply[6] = {10, 11, 20, 21, 30, 31};
    float out[12];
    for (int i = 0; i < 12; i++)
        out[i] = -1;
    wk_split_scatter(reply, 2, pos + off[0], off[1] - off[0], out);
    const float out_want[12] = {-1, -1, 10, 11, 20, 21, -1, -1, -1, -1, 30, 31};
    for (int i = 0; i < 12; i++)
        ck_assert(out[i] == out_want[i]);
    float g[6];
    wk_split_gather(out_want, 2, pos + off[0], 3, g);
    for (int i = 0; i < 6; i++)
        ck_assert(g[i] == reply[i]);
    uint64_t k0[3];
    wk_split_keys(keys, pos + off[0], 3, k0);
    ck_assert(k0[0] == keys[1] && k0[1] == keys[2] && k0[2] == keys[5]);
}
END_TEST

Suite *suite_split(void)
{
    Suite *s = suite_create("split");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, plan_and_round_trip_1_to_64_servers);
    tcase_add_test(tc, many_keys_wide_rows);
    tcase_add_test(tc, one_server_is_the_identity);
    tcase_add_test(tc, empty_request);
    tcase_add_test(tc, exact_positions);
    suite_add_tcase(s, tc);
    return s;
}
