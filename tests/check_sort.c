/* check_sort: zps_sort against qsort, and its stability.
 *
 * Sizes around every switch of the implementation (insertion sort at <= 32
 * keys; digit widths that grow with n up to 11 bits at 2048) and key sets
 * that exercise the varying-bit range: full 64-bit random keys, a narrow
 * range, keys that differ only in their top or bottom bits, heavy
 * duplicates, all equal, already sorted and reversed.  Every result is
 * compared with qsort's element by element, and must be the returned one
 * of the two buffers.  Stability: equal keys keep their input order, for
 * pairs and for bit-range sorts with a payload below the sort bits.  The
 * float key: order-preserving over signs, zeros, subnormals and infinities. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_suites.h"
#include "zps_rng.h"
#include "zps_sort.h"

static const size_t s_sizes[] = {0, 1, 2, 3, 31, 32, 33, 64, 100, 1000, 2047, 2048, 2049, 70000};
#define S_NSIZES (sizeof s_sizes / sizeof s_sizes[0])

enum { K_FULL, K_NARROW, K_TOP, K_BOTTOM, K_DUPS, K_EQUAL, K_SORTED, K_REVERSED, K_NKINDS };

static uint64_t s_key(int kind, uint64_t *st, size_t i, size_t n)
{
    uint64_t r = zps_rng_next(st);
    switch (kind) {
    case K_FULL: return r;
    case K_NARROW: return 0x5a5a000000000000ULL | (r >> 40);          /* 24 bits vary */
    case K_TOP: return (r & 0xf000000000000000ULL) | 0x123456789ULL;   /* top 4 bits */
    case K_BOTTOM: return 0xabcdef0000000000ULL | (r & 7);              /* bottom 3 bits */
    case K_DUPS: return (r % 5) << 33;
    case K_EQUAL: return 42;
    case K_SORTED: return (uint64_t)i * 3;
    default: return (uint64_t)(n - i) << 20;
    }
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

START_TEST(test_u64_vs_qsort)
{
    uint64_t st = 2026;
    for (size_t si = 0; si < S_NSIZES; si++) {
        size_t n = s_sizes[si];
        uint64_t *a = malloc((n + 1) * sizeof *a), *tmp = malloc((n + 1) * sizeof *tmp),
                 *ref = malloc((n + 1) * sizeof *ref);
        ck_assert(a && tmp && ref);
        for (int kind = 0; kind < K_NKINDS; kind++) {
            for (size_t i = 0; i < n; i++)
                a[i] = ref[i] = s_key(kind, &st, i, n);
            qsort(ref, n, sizeof *ref, s_cmp_u64);
            uint64_t *r = zps_sort_u64(a, tmp, n);
            ck_assert_msg(r == a || r == tmp, "n %zu kind %d: result in neither buffer", n, kind);
            for (size_t i = 0; i < n; i++)
                if (r[i] != ref[i])
                    ck_abort_msg("n %zu kind %d: [%zu] %llx, qsort has %llx", n, kind, i,
                                 (unsigned long long)r[i], (unsigned long long)ref[i]);
        }
        free(a);
        free(tmp);
        free(ref);
    }
}
END_TEST

/* Sorting by bits 32..hi with the input position in the low 32 bits: the
 * sort bits ascend, positions ascend within equal sort bits (stable), and
 * every element is still there. */
START_TEST(test_bits_stable_payload)
{
    uint64_t st = 7;
    const unsigned widths[] = {1, 3, 12, 24, 32};
    for (size_t si = 0; si < S_NSIZES; si++) {
        size_t n = s_sizes[si];
        uint64_t *a = malloc((n + 1) * sizeof *a), *tmp = malloc((n + 1) * sizeof *tmp);
        unsigned char *seen = calloc(n + 1, 1);
        ck_assert(a && tmp && seen);
        for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
            unsigned w = widths[wi];
            uint64_t wmask = ((uint64_t)1 << w) - 1;
            for (size_t i = 0; i < n; i++)
                a[i] = (zps_rng_next(&st) & wmask) << 32 | (uint64_t)i;
            uint64_t *r = zps_sort_u64_bits(a, tmp, n, 32, 32 + w);
            ck_assert(r == a || r == tmp);
            memset(seen, 0, n + 1);
            for (size_t i = 0; i < n; i++) {
                uint32_t pos = (uint32_t)r[i];
                ck_assert_uint_lt(pos, n);
                ck_assert_msg(!seen[pos], "n %zu w %u: element %u twice", n, w, pos);
                seen[pos] = 1;
                if (i > 0) {
                    uint64_t k0 = r[i - 1] >> 32, k1 = r[i] >> 32;
                    ck_assert_msg(k0 < k1 || (k0 == k1 && (uint32_t)r[i - 1] < pos),
                                  "n %zu w %u: [%zu] out of order or unstable", n, w, i);
                }
            }
        }
        free(a);
        free(tmp);
        free(seen);
    }
}
END_TEST

/* Bits outside [lo, hi) do not take part: keys that differ only there keep
 * their input order. */
START_TEST(test_bits_ignores_other_bits)
{
    enum { N = 500 };
    uint64_t a[N], tmp[N], st = 99;
    for (size_t i = 0; i < N; i++)
        a[i] = (zps_rng_next(&st) & 0xffff00000000ffffULL) | (zps_rng_next(&st) % 4) << 20;
    uint64_t in[N];
    memcpy(in, a, sizeof a);
    uint64_t *r = zps_sort_u64_bits(a, tmp, N, 20, 22);
    size_t k = 0;
    for (uint64_t d = 0; d < 4; d++)
        for (size_t i = 0; i < N; i++)
            if ((in[i] >> 20 & 3) == d)
                ck_assert_msg(r[k++] == in[i], "digit %llu: input %zu moved out of order",
                              (unsigned long long)d, i);
    ck_assert_uint_eq(k, N);
}
END_TEST

static int s_cmp_pair_pos(const void *a, const void *b)
{
    const zps_sort_pair_t *x = a, *y = b;
    if (x->key != y->key)
        return (x->key > y->key) - (x->key < y->key);
    return (x->val > y->val) - (x->val < y->val);
}

/* Pairs with val = input position: the result equals qsort by (key,
 * position), which is what a stable sort by key must give. */
START_TEST(test_pairs_stable_vs_qsort)
{
    uint64_t st = 31337;
    for (size_t si = 0; si < S_NSIZES; si++) {
        size_t n = s_sizes[si];
        zps_sort_pair_t *a = malloc((n + 1) * sizeof *a), *tmp = malloc((n + 1) * sizeof *tmp),
                        *ref = malloc((n + 1) * sizeof *ref);
        ck_assert(a && tmp && ref);
        for (int kind = 0; kind < K_NKINDS; kind++) {
            for (size_t i = 0; i < n; i++)
                a[i] = ref[i] = (zps_sort_pair_t){s_key(kind, &st, i, n), (uint32_t)i};
            qsort(ref, n, sizeof *ref, s_cmp_pair_pos);
            zps_sort_pair_t *r = zps_sort_pairs(a, tmp, n);
            ck_assert(r == a || r == tmp);
            for (size_t i = 0; i < n; i++)
                if (r[i].key != ref[i].key || r[i].val != ref[i].val)
                    ck_abort_msg("n %zu kind %d: [%zu] (%llx, %u), expected (%llx, %u)", n, kind,
                                 i, (unsigned long long)r[i].key, r[i].val,
                                 (unsigned long long)ref[i].key, ref[i].val);
        }
        free(a);
        free(tmp);
        free(ref);
    }
}
END_TEST

START_TEST(test_key_f64_order)
{
    const double v[] = {-INFINITY, -DBL_MAX, -1e300, -2.5, -1, -DBL_MIN, -DBL_TRUE_MIN, 0,
                        DBL_TRUE_MIN, DBL_MIN, 0.1, 1, 1.0000000000000002, 2.5, 1e300,
                        DBL_MAX, INFINITY};
    const size_t n = sizeof v / sizeof v[0];
    for (size_t i = 1; i < n; i++)
        ck_assert_msg(zps_sort_key_f64(v[i - 1]) < zps_sort_key_f64(v[i]),
                      "key(%g) >= key(%g)", v[i - 1], v[i]);
    ck_assert_uint_eq(zps_sort_key_f64(-0.0), zps_sort_key_f64(0.0));
    /* floats widened to double keep their order and ties */
    ck_assert_uint_eq(zps_sort_key_f64((double)0.3f), zps_sort_key_f64((double)0.3f));
    ck_assert_uint_lt(zps_sort_key_f64((double)0.3f), zps_sort_key_f64((double)nextafterf(0.3f, 1)));
}
END_TEST

Suite *suite_sort(void)
{
    Suite *s = suite_create("sort");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_u64_vs_qsort);
    tcase_add_test(tc, test_bits_stable_payload);
    tcase_add_test(tc, test_bits_ignores_other_bits);
    tcase_add_test(tc, test_pairs_stable_vs_qsort);
    tcase_add_test(tc, test_key_f64_order);
    suite_add_tcase(s, tc);
    return s;
}
