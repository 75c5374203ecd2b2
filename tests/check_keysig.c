/* check_keysig: the client's memory of key lists sent per server
 * (wk_keysig), against a plain reference (an array per server, oldest
 * forgotten first).
 *
 * - A list is "seen" only by the server it was sent to, and only while it
 *   is among that server's last per_server new lists.
 * - A repeat does not refresh or move a list (the ring forgets in order of
 *   first sending).
 * - A randomized run over several servers and ring sizes agrees with the
 *   reference after every call. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_suites.h"
#include "wk_keysig.h"

#define S_REQUIRE(cond, ...)           \
    do {                               \
        if (!(cond))                   \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)

START_TEST(per_server_and_forgetting)
{
    wk_keysig_t *k = wk_keysig_new(3, 4);
    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(wk_keysig_seen(k, 0, 100), 0);
    ck_assert_int_eq(wk_keysig_seen(k, 0, 100), 1);
    ck_assert_int_eq(wk_keysig_seen(k, 1, 100), 0); /* another server */
    ck_assert_int_eq(wk_keysig_seen(k, 2, 101), 0);
    ck_assert_int_eq(wk_keysig_seen(k, 0, 101), 0);
    /* server 0: 100, 101, then 102, 103 fill the ring of 4 */
    ck_assert_int_eq(wk_keysig_seen(k, 0, 102), 0);
    ck_assert_int_eq(wk_keysig_seen(k, 0, 103), 0);
    ck_assert_int_eq(wk_keysig_seen(k, 0, 100), 1); /* a repeat: no refresh */
    ck_assert_int_eq(wk_keysig_seen(k, 0, 104), 0); /* forgets 100, the oldest */
    ck_assert_int_eq(wk_keysig_seen(k, 0, 101), 1);
    ck_assert_int_eq(wk_keysig_seen(k, 0, 100), 0); /* forgotten; now forgets 101 */
    ck_assert_int_eq(wk_keysig_seen(k, 0, 101), 0);
    ck_assert_int_eq(wk_keysig_seen(k, 1, 100), 1); /* server 1 untouched */
    wk_keysig_destroy(&k);
    ck_assert_ptr_null(k);
    wk_keysig_destroy(&k);
    ck_assert_ptr_null(wk_keysig_new(2, 0));
}
END_TEST

START_TEST(matches_reference)
{
    static const uint32_t pers[] = {1, 2, 5, 64};
    uint64_t st = 12345;
    for (size_t p = 0; p < sizeof pers / sizeof pers[0]; p++) {
        uint32_t S = 5, per = pers[p];
        wk_keysig_t *k = wk_keysig_new(S, per);
        ck_assert_ptr_nonnull(k);
        /* reference: per server, signatures in order of first sending */
        uint64_t *ref = calloc((size_t)S * per, sizeof *ref);
        uint32_t *nref = calloc(S, sizeof *nref);
        ck_assert(ref && nref);
        for (int i = 0; i < 20000; i++) {
            st = st * 6364136223846793005ULL + 1442695040888963407ULL;
            uint32_t s = (uint32_t)(st >> 33) % S;
            uint64_t sig = 1 + (st >> 40) % (per * 3 + 2); /* repeats often */
            uint64_t *r = ref + (size_t)s * per;
            int want = 0;
            for (uint32_t j = 0; j < nref[s]; j++)
                want |= r[j] == sig;
            if (!want) {
                if (nref[s] == per) {
                    memmove(r, r + 1, (per - 1) * sizeof *r);
                    nref[s]--;
                }
                r[nref[s]++] = sig;
            }
            int got = wk_keysig_seen(k, s, sig);
            S_REQUIRE(got == want, "per %u, call %d: server %u sig %llu: seen %d, expected %d", per,
                      i, s, (unsigned long long)sig, got, want);
        }
        free(ref);
        free(nref);
        wk_keysig_destroy(&k);
    }
}
END_TEST

Suite *suite_keysig(void)
{
    Suite *s = suite_create("keysig");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, per_server_and_forgetting);
    tcase_add_test(tc, matches_reference);
    suite_add_tcase(s, tc);
    return s;
}
