/* check_place: zps_place() is deterministic, in range and balanced.
 *
 * Balance is measured as max load / mean load - 1 over every server count
 * 1..64 and must stay within 2%.  With 2M keys, 64 servers hold 31250 keys
 * each on average; a uniform hash gives a standard deviation of ~177 keys
 * (0.57%) per server, so the largest of 64 is expected ~1.4% above the mean.
 * Key sets: sequential ids 0..2M-1, ids strided by 2^20 (a bad case for
 * modulo placement), and the distinct ids of a seeded Zipf(1.1) sample over a
 * 2^40 id space (popular ids are the small ones).  Distinct keys are what a
 * server stores, so that is what we balance. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "check_suites.h"
#include "zps_place.h"
#include "zps_rng.h"

/* Check records every passing ck_assert (a write to its result pipe), so
 * loops over many items test plainly and only report a failure. */
#define S_REQUIRE(cond, ...)          \
    do {                              \
        if (!(cond))                  \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)

#define S_MAX_SERVERS 64
#define S_NKEYS (2u << 20)
#define S_TOL 0.02

/* splitmix64 step: a small seeded PRNG, state passed by the caller. */
/* Uniform double in [0, 1). */
/* Checks max/mean - 1 <= S_TOL (and min/mean >= 1 - S_TOL) for 1..64
 * servers; returns the worst max/mean - 1 seen. */
static double s_check_balance(const uint64_t *keys, size_t n, const char *what)
{
    uint64_t count[S_MAX_SERVERS];
    double worst = 0;
    for (uint32_t ns = 1; ns <= S_MAX_SERVERS; ns++) {
        memset(count, 0, sizeof count);
        for (size_t i = 0; i < n; i++)
            count[zps_place(keys[i], ns)]++;
        uint64_t mx = 0, mn = UINT64_MAX;
        for (uint32_t s = 0; s < ns; s++) {
            if (count[s] > mx) mx = count[s];
            if (count[s] < mn) mn = count[s];
        }
        double mean = (double)n / ns;
        double over = (double)mx / mean - 1, under = 1 - (double)mn / mean;
        /* the range table's quantisation on top: a server is home of
         * floor(q) or ceil(q) of the 4096 ranges, q = 4096 / ns */
        double q = (double)ZPS_RANGES / ns;
        double qover = ceil(q) / q - 1, qunder = 1 - floor(q) / q;
        ck_assert_msg(over <= S_TOL + qover && under <= S_TOL + qunder,
                      "%s, %u servers: max %.4f, min %.4f of mean (range quantisation +%.4f -%.4f)",
                      what, ns, 1 + over, 1 - under, qover, qunder);
        if (over > worst)
            worst = over;
    }
    return worst;
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

START_TEST(test_range_and_determinism)
{
    const uint32_t servers[] = {1, 2, 3, 7, 64, 1000, 65535, 1u << 31, UINT32_MAX};
    uint64_t st = 42;
    for (int i = 0; i < 20000; i++) {
        uint64_t key = i < 10 ? (uint64_t)i : i < 20 ? UINT64_MAX - (uint64_t)(i - 10)
                                                     : zps_rng_next(&st);
        for (size_t s = 0; s < sizeof servers / sizeof servers[0]; s++) {
            uint32_t p = zps_place(key, servers[s]);
            S_REQUIRE(p < servers[s] && p == zps_place(key, servers[s]),
                      "key %llu, %u servers: %u", (unsigned long long)key,
                      servers[s], p);
        }
        S_REQUIRE(zps_place(key, 1) == 0, "key %llu", (unsigned long long)key);
    }
}
END_TEST

/* Clients and servers built separately must agree on placement, so the
 * function is pinned: changing these values changes the wire contract. */
START_TEST(test_golden_values)
{
    ck_assert_uint_eq(zps_place(0, 2), 1);
    ck_assert_uint_eq(zps_place(0, 64), 56);
    ck_assert_uint_eq(zps_place(1, 10), 8);
    ck_assert_uint_eq(zps_place(2, 64), 37);
    ck_assert_uint_eq(zps_place(123456789, 1000), 574);
    ck_assert_uint_eq(zps_place(UINT64_MAX, 64), 55);
}
END_TEST

/* Growing from S to S+1 servers moves keys only as a contiguous re-cut of
 * the hash range: a key's server index never decreases. */
START_TEST(test_monotone_in_servers)
{
    uint64_t st = 7;
    for (int i = 0; i < 5000; i++) {
        uint64_t key = zps_rng_next(&st);
        uint32_t prev = 0;
        for (uint32_t ns = 1; ns <= 64; ns++) {
            uint32_t p = zps_place(key, ns);
            S_REQUIRE(p >= prev, "key %llu: %u servers -> %u, %u -> %u",
                      (unsigned long long)key, ns - 1, prev, ns, p);
            prev = p;
        }
    }
}
END_TEST

START_TEST(test_balance_sequential)
{
    uint64_t *keys = malloc(S_NKEYS * sizeof *keys);
    ck_assert_ptr_nonnull(keys);
    for (size_t i = 0; i < S_NKEYS; i++)
        keys[i] = i;
    s_check_balance(keys, S_NKEYS, "sequential ids");
    free(keys);
}
END_TEST

START_TEST(test_balance_strided)
{
    uint64_t *keys = malloc(S_NKEYS * sizeof *keys);
    ck_assert_ptr_nonnull(keys);
    for (size_t i = 0; i < S_NKEYS; i++)
        keys[i] = (uint64_t)i << 20;
    s_check_balance(keys, S_NKEYS, "ids strided by 2^20");
    free(keys);
}
END_TEST

/* Ranks from a continuous power law with exponent 1.1 truncated to
 * [1, 2^40] (inverse CDF), id = rank - 1; then deduplicated. */
START_TEST(test_balance_zipf)
{
    const size_t draws = 15u << 19;
    const double s = 1.1, nmax = 1099511627776.0; /* 2^40 */
    const double a = pow(nmax, 1 - s) - 1;
    uint64_t *ids = malloc(draws * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    uint64_t st = 20240601;
    for (size_t i = 0; i < draws; i++) {
        double r = pow(a * zps_rng_uniform(&st) + 1, 1 / (1 - s));
        uint64_t rank = r >= nmax ? (uint64_t)nmax : (uint64_t)r;
        ids[i] = rank - 1;
    }
    qsort(ids, draws, sizeof *ids, s_cmp_u64);
    size_t n = 0;
    for (size_t i = 0; i < draws; i++)
        if (n == 0 || ids[i] != ids[n - 1])
            ids[n++] = ids[i];
    /* Zipf really is skewed here: the most popular ids repeat a lot ... */
    ck_assert_uint_lt(n, draws * 9 / 10);
    ck_assert_uint_eq(ids[0], 0);
    /* ... and enough distinct ids remain for a 2% test at 64 servers. */
    ck_assert_uint_ge(n, 1900000); /* 2.03M with this seed */
    s_check_balance(ids, n, "distinct Zipf(1.1) ids");
    free(ids);
}
END_TEST

Suite *suite_place(void)
{
    Suite *s = suite_create("place");
    TCase *tc = tcase_create("basic");
    tcase_add_test(tc, test_range_and_determinism);
    tcase_add_test(tc, test_golden_values);
    tcase_add_test(tc, test_monotone_in_servers);
    suite_add_tcase(s, tc);

    tc = tcase_create("balance");
    tcase_set_timeout(tc, 120); /* ~400M placements; slower under ASan */
    tcase_add_test(tc, test_balance_sequential);
    tcase_add_test(tc, test_balance_strided);
    tcase_add_test(tc, test_balance_zipf);
    suite_add_tcase(s, tc);
    return s;
}
