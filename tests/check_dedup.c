/* Unit tests of ps_dedup: every seq applied exactly once, in any order of
 * arrival, with duplicates; seq 0 and seqs beyond the window refused. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_suites.h"
#include "ps_dedup.h"
#include "zps_err.h"
#include "zps_hash.h"

START_TEST(in_order)
{
    ps_dedup_win_t w;
    ps_dedup_init(&w);
    for (uint64_t s = 1; s <= 10000; s++) {
        ck_assert_int_eq(ps_dedup_check(&w, s), PS_DEDUP_NEW);
        ck_assert_int_eq(ps_dedup_mark(&w, s), PS_DEDUP_NEW);
        ck_assert_uint_eq(w.lwm, s);
        ck_assert_int_eq(ps_dedup_check(&w, s), PS_DEDUP_DUP);
    }
    ck_assert_uint_eq(ps_dedup_pending(&w), 0);
    ck_assert(ps_dedup_valid(&w));
}
END_TEST

START_TEST(zero_and_beyond_window)
{
    ps_dedup_win_t w;
    ps_dedup_init(&w);
    ck_assert_int_eq(ps_dedup_check(&w, 0), ZPS_ESEQ);
    ck_assert_int_eq(ps_dedup_mark(&w, 0), ZPS_ESEQ);
    ck_assert_int_eq(ps_dedup_check(&w, PS_DEDUP_WINDOW), PS_DEDUP_NEW);
    ck_assert_int_eq(ps_dedup_check(&w, PS_DEDUP_WINDOW + 1), ZPS_ESEQ);
    ck_assert_int_eq(ps_dedup_mark(&w, PS_DEDUP_WINDOW + 1), ZPS_ESEQ);
    ck_assert_int_eq(ps_dedup_check(&w, UINT64_MAX), ZPS_ESEQ);
    ck_assert_uint_eq(w.lwm, 0);
    ck_assert_uint_eq(w.hwm, 0);
    /* the far end of the window, then everything below it: lwm jumps */
    ck_assert_int_eq(ps_dedup_mark(&w, PS_DEDUP_WINDOW), PS_DEDUP_NEW);
    ck_assert_uint_eq(w.lwm, 0);
    ck_assert(ps_dedup_valid(&w));
    for (uint64_t s = PS_DEDUP_WINDOW - 1; s >= 2; s--)
        ck_assert_int_eq(ps_dedup_mark(&w, s), PS_DEDUP_NEW);
    ck_assert_uint_eq(w.lwm, 0);
    ck_assert_int_eq(ps_dedup_mark(&w, 1), PS_DEDUP_NEW);
    ck_assert_uint_eq(w.lwm, PS_DEDUP_WINDOW);
    ck_assert_uint_eq(ps_dedup_pending(&w), 0);
    /* the window moved with lwm */
    ck_assert_int_eq(ps_dedup_check(&w, 2 * PS_DEDUP_WINDOW), PS_DEDUP_NEW);
    ck_assert_int_eq(ps_dedup_check(&w, 2 * PS_DEDUP_WINDOW + 1), ZPS_ESEQ);
    ck_assert_int_eq(ps_dedup_check(&w, 1), PS_DEDUP_DUP);
}
END_TEST

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Random arrival orders with duplicates: a seq is NEW exactly once.  The
 * stream is what a retrying client produces: seqs 1..N, each sent 1..4
 * times, shuffled within a horizon smaller than the window (a client never
 * has more than the window in flight). */
START_TEST(random_permutations_with_duplicates)
{
    const uint64_t N = 20000;
    const size_t horizon = 3000;
    uint64_t *stream = malloc(N * 5 * sizeof *stream);
    uint8_t *applied = malloc(N + 1);
    uint64_t *order = malloc(N * 5 * sizeof *order), *shuffled = malloc(N * 5 * sizeof *shuffled);
    for (uint64_t trial = 0; trial < 12; trial++) {
        uint64_t rng = zps_mix64(trial, 99);
        size_t n = 0;
        for (uint64_t s = 1; s <= N; s++) {
            rng = zps_mix64(rng, s);
            int copies = 1 + (int)(rng % 4);
            for (int c = 0; c < copies; c++)
                stream[n++] = s;
        }
        /* bounded shuffle: sort by (position + random delay < horizon), so
         * nothing arrives more than horizon places late or early */
        for (size_t i = 0; i < n; i++) {
            rng = zps_mix64(rng, i);
            order[i] = (uint64_t)(i + rng % horizon) << 32 | i;
        }
        qsort(order, n, sizeof *order, s_cmp_u64);
        for (size_t i = 0; i < n; i++)
            shuffled[i] = stream[order[i] & 0xffffffffu];
        memcpy(stream, shuffled, n * sizeof *stream);
        memset(applied, 0, N + 1);
        ps_dedup_win_t w;
        ps_dedup_init(&w);
        uint64_t news = 0, dups = 0;
        for (size_t i = 0; i < n; i++) {
            int r = ps_dedup_check(&w, stream[i]);
            ck_assert_msg(r == PS_DEDUP_NEW || r == PS_DEDUP_DUP, "seq %llu out of window (lwm %llu)",
                          (unsigned long long)stream[i], (unsigned long long)w.lwm);
            if (r == PS_DEDUP_NEW) {
                ck_assert_int_eq(applied[stream[i]], 0);
                applied[stream[i]] = 1;
                ck_assert_int_eq(ps_dedup_mark(&w, stream[i]), PS_DEDUP_NEW);
                news++;
            } else {
                ck_assert_int_eq(applied[stream[i]], 1);
                ck_assert_int_eq(ps_dedup_mark(&w, stream[i]), PS_DEDUP_DUP);
                dups++;
            }
            if (i % 997 == 0)
                ck_assert(ps_dedup_valid(&w));
        }
        ck_assert_uint_eq(news, N);
        ck_assert_uint_eq(news + dups, n);
        ck_assert_uint_eq(w.lwm, N);
        ck_assert_uint_eq(w.hwm, N);
        ck_assert_uint_eq(ps_dedup_pending(&w), 0);
    }
    free(stream);
    free(applied);
    free(order);
    free(shuffled);
}
END_TEST

/* A push that failed is not marked, so its retry applies; a window copied
 * (as a checkpoint does) and restored goes on exactly where it was. */
START_TEST(copy_and_retry)
{
    ps_dedup_win_t w, saved;
    ps_dedup_init(&w);
    for (uint64_t s = 1; s <= 100; s++)
        if (s != 50)
            ps_dedup_mark(&w, s);
    ck_assert_uint_eq(w.lwm, 49);
    ck_assert_uint_eq(w.hwm, 100);
    ck_assert_uint_eq(ps_dedup_pending(&w), 50);
    memcpy(&saved, &w, sizeof w);
    ck_assert(ps_dedup_valid(&saved));
    for (uint64_t s = 1; s <= 100; s++)
        ck_assert_int_eq(ps_dedup_check(&saved, s), s == 50 ? PS_DEDUP_NEW : PS_DEDUP_DUP);
    ck_assert_int_eq(ps_dedup_mark(&saved, 50), PS_DEDUP_NEW);
    ck_assert_uint_eq(saved.lwm, 100);
    /* corrupt windows are recognised */
    w.bits[0] ^= 1ULL << 50; /* seq 50's bit: lwm+1 set */
    ck_assert(!ps_dedup_valid(&w));
    w.bits[0] ^= 1ULL << 50;
    w.bits[3] |= 1ULL << 5; /* seq 197, above hwm */
    ck_assert(!ps_dedup_valid(&w));
    w.bits[3] = 0;
    w.hwm = w.lwm + PS_DEDUP_WINDOW + 1;
    ck_assert(!ps_dedup_valid(&w));
}
END_TEST

Suite *suite_dedup(void)
{
    Suite *s = suite_create("dedup");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, in_order);
    tcase_add_test(tc, zero_and_beyond_window);
    tcase_add_test(tc, random_permutations_with_duplicates);
    tcase_add_test(tc, copy_and_retry);
    suite_add_tcase(s, tc);
    return s;
}
