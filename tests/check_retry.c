/* check_retry: the client's held pushes (wk_retry).
 *
 * - Order: items come back in seq order per server, the unacked ones too,
 *   whatever order the acks arrive in; the oldest unacked is first.
 * - Durability: an acked item is released only once the durable mark
 *   covers it; an unacked item covered by the mark is released by its ack;
 *   payloads are freed exactly once (release, drop or destroy).
 * - Restart: every held item (retained and unacked) comes back as unacked,
 *   in seq order, and the durable mark starts over.
 * - Bytes: the sum of what is held, and its peak, over all servers.
 * - A randomized run against a plain reference model (array of items)
 *   checks all of the above after every operation, through ring growth and
 *   tombstones. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_suites.h"
#include "wk_retry.h"
#include "zps_err.h"
#include "zps_hash.h"

#define S_REQUIRE(cond, ...)           \
    do {                               \
        if (!(cond))                   \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)

/* payloads are seq numbers in a counting free callback */
typedef struct {
    uint64_t freed;
    uint64_t freed_sum;
} frees_t;

static void s_free(void *ctx, void *payload)
{
    frees_t *f = ctx;
    f->freed++;
    f->freed_sum += (uint64_t)(uintptr_t)payload;
}

static void *P(uint64_t seq) { return (void *)(uintptr_t)seq; }

/* seqs of s's held items (all, or unacked only) into out; returns count */
static size_t s_list(wk_retry_t *r, uint32_t s, int unacked, uint64_t *out)
{
    size_t n = 0;
    wk_retry_item_t *it = unacked ? wk_retry_first_unacked(r, s) : wk_retry_first(r, s);
    while (it) {
        out[n++] = it->seq;
        it = unacked ? wk_retry_next_unacked(r, s, it) : wk_retry_next(r, s, it);
    }
    return n;
}

static void s_expect(wk_retry_t *r, uint32_t s, int unacked, const uint64_t *want, size_t n)
{
    uint64_t got[64];
    size_t m = s_list(r, s, unacked, got);
    ck_assert_uint_eq(m, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(got[i], want[i]);
}

START_TEST(test_order_oldest_first)
{
    frees_t f = {0, 0};
    wk_retry_t *r = wk_retry_new(2, s_free, &f);
    ck_assert_ptr_nonnull(r);
    /* two servers, interleaved, each in its own seq order */
    for (uint64_t q = 1; q <= 6; q++) {
        ck_assert_int_eq(wk_retry_add(r, 0, q, 10, (int64_t)q, P(q)), 0);
        ck_assert_int_eq(wk_retry_add(r, 1, q, 100, (int64_t)q, P(q)), 0);
    }
    ck_assert_uint_eq(wk_retry_bytes(r), 6 * 110);
    /* acks out of order: 4, 2, 6 */
    ck_assert_int_eq(wk_retry_ack(r, 0, 4), 1);
    ck_assert_int_eq(wk_retry_ack(r, 0, 2), 1);
    ck_assert_int_eq(wk_retry_ack(r, 0, 6), 1);
    static const uint64_t un[] = {1, 3, 5}, all[] = {1, 2, 3, 4, 5, 6};
    s_expect(r, 0, 1, un, 3);
    s_expect(r, 0, 0, all, 6); /* no durable mark: acked ones are retained */
    ck_assert_uint_eq(wk_retry_first_unacked(r, 0)->seq, 1);
    ck_assert_uint_eq(wk_retry_unacked(r, 0), 3);
    ck_assert_uint_eq(wk_retry_held(r, 0), 6);
    /* server 1 untouched */
    s_expect(r, 1, 1, all, 6);
    ck_assert_uint_eq(wk_retry_oldest_retained(r, 0)->seq, 2);
    ck_assert_ptr_null(wk_retry_oldest_retained(r, 1));
    /* duplicate and unknown acks change nothing */
    ck_assert_int_eq(wk_retry_ack(r, 0, 4), 0);
    ck_assert_int_eq(wk_retry_ack(r, 0, 99), 0);
    ck_assert_int_eq(wk_retry_ack(r, 7, 1), 0);
    s_expect(r, 0, 1, un, 3);
    /* seqs must grow and start at 1 */
    ck_assert_int_eq(wk_retry_add(r, 0, 6, 1, 0, P(6)), ZPS_EINVAL);
    ck_assert_int_eq(wk_retry_add(r, 0, 0, 1, 0, P(0)), ZPS_EINVAL);
    ck_assert_uint_eq(f.freed, 0);
    wk_retry_destroy(&r);
    ck_assert_ptr_null(r);
    ck_assert_uint_eq(f.freed, 12); /* destroy frees whatever is held */
}
END_TEST

START_TEST(test_durable_release)
{
    frees_t f = {0, 0};
    wk_retry_t *r = wk_retry_new(1, s_free, &f);
    for (uint64_t q = 1; q <= 8; q++)
        ck_assert_int_eq(wk_retry_add(r, 0, q, (size_t)q, 0, P(q)), 0);
    for (uint64_t q = 1; q <= 6; q++)
        if (q != 3)
            wk_retry_ack(r, 0, q);
    /* mark 5: 1,2,4,5 released; 3 (unacked) stays although covered */
    wk_retry_durable(r, 0, 5);
    static const uint64_t a1[] = {3, 6, 7, 8};
    s_expect(r, 0, 0, a1, 4);
    ck_assert_uint_eq(f.freed, 4);
    ck_assert_uint_eq(f.freed_sum, 1 + 2 + 4 + 5);
    ck_assert_uint_eq(wk_retry_bytes(r), 3 + 6 + 7 + 8);
    ck_assert_uint_eq(wk_retry_peak_bytes(r), 36);
    /* a lower mark is ignored */
    wk_retry_durable(r, 0, 2);
    ck_assert_uint_eq(wk_retry_durable_mark(r, 0), 5);
    /* 3's ack comes late: covered, so released at once */
    ck_assert_int_eq(wk_retry_ack(r, 0, 3), 1);
    static const uint64_t a2[] = {6, 7, 8};
    s_expect(r, 0, 0, a2, 3);
    ck_assert_uint_eq(f.freed, 5);
    /* 6 acked, mark 8: 6 released, 7 and 8 unacked stay */
    wk_retry_durable(r, 0, 8);
    static const uint64_t a3[] = {7, 8};
    s_expect(r, 0, 0, a3, 2);
    s_expect(r, 0, 1, a3, 2);
    ck_assert_int_eq(wk_retry_ack(r, 0, 8), 1);
    ck_assert_int_eq(wk_retry_ack(r, 0, 7), 1);
    ck_assert_uint_eq(wk_retry_held(r, 0), 0);
    ck_assert_uint_eq(wk_retry_bytes(r), 0);
    ck_assert_uint_eq(f.freed, 8);
    ck_assert_uint_eq(f.freed_sum, 36);
    ck_assert_ptr_null(wk_retry_first(r, 0));
    /* drop: released whatever the state */
    wk_retry_add(r, 0, 9, 9, 0, P(9));
    wk_retry_add(r, 0, 10, 10, 0, P(10));
    wk_retry_drop(r, 0, 9);
    ck_assert_uint_eq(f.freed, 9);
    ck_assert_ptr_null(wk_retry_find(r, 0, 9));
    ck_assert_uint_eq(wk_retry_find(r, 0, 10)->seq, 10);
    wk_retry_destroy(&r);
    ck_assert_uint_eq(f.freed, 10);
    ck_assert_uint_eq(f.freed_sum, 55);
}
END_TEST

START_TEST(test_restart_resends_all_in_order)
{
    frees_t f = {0, 0};
    wk_retry_t *r = wk_retry_new(2, s_free, &f);
    for (uint64_t q = 1; q <= 10; q++)
        wk_retry_add(r, 0, q, 1, 0, P(q));
    wk_retry_add(r, 1, 1, 1, 0, P(1));
    for (uint64_t q = 1; q <= 7; q++)
        wk_retry_ack(r, 0, q == 5 ? 8 : q); /* 5 and 9, 10 stay unacked */
    wk_retry_ack(r, 1, 1);
    wk_retry_durable(r, 0, 3);
    static const uint64_t before[] = {5, 9, 10};
    s_expect(r, 0, 1, before, 3);
    wk_retry_restart(r, 0);
    /* every held push, retained or not, oldest first */
    static const uint64_t after[] = {4, 5, 6, 7, 8, 9, 10};
    s_expect(r, 0, 1, after, 7);
    s_expect(r, 0, 0, after, 7);
    ck_assert_uint_eq(wk_retry_durable_mark(r, 0), 0);
    ck_assert_ptr_null(wk_retry_oldest_retained(r, 0));
    /* server 1 is not affected */
    ck_assert_uint_eq(wk_retry_unacked(r, 1), 0);
    ck_assert_uint_eq(wk_retry_held(r, 1), 1);
    /* the restarted server acks and checkpoints: a new (lower) mark counts */
    for (uint64_t q = 4; q <= 10; q++)
        ck_assert_int_eq(wk_retry_ack(r, 0, q), 1);
    wk_retry_durable(r, 0, 2); /* lower than before the restart, still applied */
    ck_assert_uint_eq(wk_retry_held(r, 0), 7);
    wk_retry_durable(r, 0, 6);
    static const uint64_t left[] = {7, 8, 9, 10};
    s_expect(r, 0, 0, left, 4);
    ck_assert_uint_eq(f.freed, 3 + 3);
    wk_retry_destroy(&r);
    ck_assert_uint_eq(f.freed, 11);
}
END_TEST

START_TEST(test_bytes_cap)
{
    wk_retry_t *r = wk_retry_new(3, NULL, NULL);
    /* 3 servers x 100 pushes of 1000 bytes: what a cap of 250 KB would stop */
    uint64_t q = 0;
    for (int i = 0; i < 100; i++) {
        q++;
        for (uint32_t s = 0; s < 3; s++)
            ck_assert_int_eq(wk_retry_add(r, s, q, 1000, 0, NULL), 0);
        for (uint32_t s = 0; s < 3; s++)
            wk_retry_ack(r, s, q);
    }
    ck_assert_uint_eq(wk_retry_bytes(r), 300000);
    ck_assert_uint_eq(wk_retry_peak_bytes(r), 300000);
    wk_retry_durable(r, 0, 100);
    wk_retry_durable(r, 1, 50);
    ck_assert_uint_eq(wk_retry_bytes(r), 150000);
    ck_assert_uint_eq(wk_retry_peak_bytes(r), 300000);
    ck_assert_uint_eq(wk_retry_held(r, 0), 0);
    ck_assert_uint_eq(wk_retry_held(r, 1), 50);
    ck_assert_uint_eq(wk_retry_oldest_retained(r, 1)->seq, 51);
    wk_retry_destroy(&r);
}
END_TEST

/* ---- randomized against a reference model ------------------------------- */

enum { RM_MAX = 4096 };
typedef struct {
    uint64_t seq;
    size_t bytes;
    int acked;
} ref_item_t;

typedef struct {
    ref_item_t it[RM_MAX];
    size_t n;
    uint64_t durable, last;
} ref_srv_t;

static void s_ref_release(ref_srv_t *v, size_t i, uint64_t *bytes, uint64_t *freed)
{
    *bytes -= v->it[i].bytes;
    (*freed)++;
    memmove(&v->it[i], &v->it[i + 1], (v->n - i - 1) * sizeof v->it[0]);
    v->n--;
}

START_TEST(test_random_vs_reference)
{
    enum { NS = 3, OPS = 60000 };
    static ref_srv_t ref[NS];
    memset(ref, 0, sizeof ref);
    frees_t f = {0, 0};
    wk_retry_t *r = wk_retry_new(NS, s_free, &f);
    uint64_t rng = 0x7e57ab1e;
    uint64_t bytes = 0, peak = 0, freed = 0;
    static uint64_t got[RM_MAX];
    for (int op = 0; op < OPS; op++) {
        rng = zps_mix64(rng, (uint64_t)op);
        uint32_t s = (uint32_t)(rng % NS);
        ref_srv_t *v = &ref[s];
        unsigned kind = (unsigned)((rng >> 8) % 100);
        if (kind < 35 && v->n < RM_MAX) { /* add, sometimes skipping seqs */
            uint64_t seq = v->last + 1 + ((rng >> 20) % 4 == 0);
            size_t b = (size_t)((rng >> 24) % 5000);
            S_REQUIRE(wk_retry_add(r, s, seq, b, op, P(seq)) == 0, "add failed");
            v->it[v->n++] = (ref_item_t){seq, b, 0};
            v->last = seq;
            bytes += b;
            if (bytes > peak)
                peak = bytes;
        } else if (kind < 75) { /* ack a random seq near the held ones */
            uint64_t seq = v->last ? 1 + (rng >> 16) % (v->last + 2) : 1;
            int want = 0;
            for (size_t i = 0; i < v->n; i++)
                if (v->it[i].seq == seq && !v->it[i].acked) {
                    want = 1;
                    v->it[i].acked = 1;
                    if (seq <= v->durable)
                        s_ref_release(v, i, &bytes, &freed);
                    break;
                }
            S_REQUIRE(wk_retry_ack(r, s, seq) == want, "op %d ack %llu: want %d", op,
                      (unsigned long long)seq, want);
        } else if (kind < 90) { /* durable mark somewhere around the acks */
            uint64_t d = v->last ? (rng >> 16) % (v->last + 1) : 0;
            wk_retry_durable(r, s, d);
            if (d > v->durable) {
                v->durable = d;
                for (size_t i = 0; i < v->n;)
                    if (v->it[i].acked && v->it[i].seq <= d)
                        s_ref_release(v, i, &bytes, &freed);
                    else
                        i++;
            }
        } else if (kind < 94) { /* drop */
            uint64_t seq = v->last ? 1 + (rng >> 16) % v->last : 1;
            wk_retry_drop(r, s, seq);
            for (size_t i = 0; i < v->n; i++)
                if (v->it[i].seq == seq) {
                    s_ref_release(v, i, &bytes, &freed);
                    break;
                }
        } else if (kind < 96) { /* restart */
            wk_retry_restart(r, s);
            v->durable = 0;
            for (size_t i = 0; i < v->n; i++)
                v->it[i].acked = 0;
        } else { /* a burst of in-order acks, as after a resend */
            for (size_t i = 0; i < v->n;) {
                if (!v->it[i].acked) {
                    uint64_t seq = v->it[i].seq;
                    S_REQUIRE(wk_retry_ack(r, s, seq) == 1, "burst ack %llu", (unsigned long long)seq);
                    v->it[i].acked = 1;
                    if (seq <= v->durable) {
                        s_ref_release(v, i, &bytes, &freed);
                        continue;
                    }
                }
                i++;
            }
        }
        /* compare everything for this server */
        size_t m = s_list(r, s, 0, got);
        S_REQUIRE(m == v->n, "op %d: %zu held, reference %zu", op, m, v->n);
        for (size_t i = 0; i < m; i++)
            S_REQUIRE(got[i] == v->it[i].seq, "op %d: held[%zu] %llu, reference %llu", op, i,
                      (unsigned long long)got[i], (unsigned long long)v->it[i].seq);
        m = s_list(r, s, 1, got);
        size_t k = 0;
        for (size_t i = 0; i < v->n; i++)
            if (!v->it[i].acked) {
                S_REQUIRE(k < m && got[k] == v->it[i].seq, "op %d: unacked order differs", op);
                k++;
            }
        S_REQUIRE(k == m, "op %d: %zu unacked, reference %zu", op, m, k);
        S_REQUIRE(wk_retry_unacked(r, s) == k, "op %d: unacked count", op);
        S_REQUIRE(wk_retry_held(r, s) == v->n, "op %d: held count", op);
        S_REQUIRE(wk_retry_bytes(r) == bytes, "op %d: bytes %llu, reference %llu", op,
                  (unsigned long long)wk_retry_bytes(r), (unsigned long long)bytes);
        S_REQUIRE(wk_retry_peak_bytes(r) == peak, "op %d: peak", op);
        S_REQUIRE(f.freed == freed, "op %d: %llu payloads freed, reference %llu", op,
                  (unsigned long long)f.freed, (unsigned long long)freed);
        const wk_retry_item_t *old = wk_retry_oldest_retained(r, s);
        const ref_item_t *rold = NULL;
        for (size_t i = 0; i < v->n && !rold; i++)
            if (v->it[i].acked)
                rold = &v->it[i];
        S_REQUIRE((old == NULL) == (rold == NULL) && (!old || old->seq == rold->seq),
                  "op %d: oldest retained differs", op);
    }
    uint64_t held = 0;
    for (int s = 0; s < NS; s++)
        held += ref[s].n;
    wk_retry_destroy(&r);
    ck_assert_uint_eq(f.freed, freed + held);
}
END_TEST

Suite *suite_retry(void)
{
    Suite *s = suite_create("retry");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_order_oldest_first);
    tcase_add_test(tc, test_durable_release);
    tcase_add_test(tc, test_restart_resends_all_in_order);
    tcase_add_test(tc, test_bytes_cap);
    tcase_add_test(tc, test_random_vs_reference);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
