/* check_ranges: the range table (common/zps_ranges): the default table's
 * spread and chains, its agreement with zps_place, removal, joins (start,
 * completion, removal of a joiner or a donor), and the wire form's round
 * trip (with joins) and refusals (invalid joins too). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_suites.h"
#include "zps_err.h"
#include "zps_place.h"
#include "zps_ranges.h"
#include "zps_rng.h"

/* Check records every passing ck_assert, so loops assert only failures. */
#define S_REQUIRE(cond, ...)           \
    do {                               \
        if (!(cond))                   \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)

static zps_ranges_t *s_new(uint32_t ns, uint32_t r)
{
    zps_ranges_t *t = malloc(sizeof *t);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(zps_ranges_init(t, ns, r), 0);
    return t;
}

/* The valid parts of two tables are equal (slots past nrep, and donor and
 * cut without a join, are not). */
static int s_same(const zps_ranges_t *a, const zps_ranges_t *b)
{
    if (a->version != b->version || a->nservers != b->nservers || a->replicas != b->replicas)
        return 0;
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        if (a->nrep[r] != b->nrep[r])
            return 0;
        for (uint32_t i = 0; i < a->nrep[r]; i++)
            if (a->rep[r][i] != b->rep[r][i])
                return 0;
        if (a->join[r] != b->join[r])
            return 0;
        if (a->join[r] != ZPS_NO_RANK && (a->donor[r] != b->donor[r] || a->cut[r] != b->cut[r]))
            return 0;
    }
    return 1;
}

/* Every server heads 4096/S ranges +-1, every chain is the ring successors
 * of its home, min(R, S) distinct ranks, for S = 1..64 and R = 1..3. */
START_TEST(init_spread_and_chains)
{
    zps_ranges_t *t = malloc(sizeof *t);
    ck_assert_ptr_nonnull(t);
    for (uint32_t ns = 1; ns <= 64; ns++) {
        for (uint32_t rr = 1; rr <= ZPS_MAX_REPLICAS; rr++) {
            S_REQUIRE(zps_ranges_init(t, ns, rr) == 0, "init %u %u", ns, rr);
            S_REQUIRE(t->version == 1 && t->nservers == ns && t->replicas == rr,
                      "header of %u %u", ns, rr);
            uint32_t head[64] = {0}, held[64] = {0};
            uint32_t n = rr < ns ? rr : ns;
            for (uint32_t r = 0; r < ZPS_RANGES; r++) {
                uint32_t h = zps_range_home(r, ns);
                S_REQUIRE(t->nrep[r] == n, "S %u R %u range %u: %u replicas", ns, rr, r, t->nrep[r]);
                for (uint32_t i = 0; i < n; i++) {
                    S_REQUIRE(t->rep[r][i] == (h + i) % ns, "S %u R %u range %u replica %u is %u",
                              ns, rr, r, i, t->rep[r][i]);
                    for (uint32_t j = 0; j < i; j++)
                        S_REQUIRE(t->rep[r][j] != t->rep[r][i], "S %u range %u: rank twice", ns, r);
                    held[t->rep[r][i]]++;
                }
                head[t->rep[r][0]]++;
            }
            uint32_t lo = ZPS_RANGES / ns, hi = lo + (ZPS_RANGES % ns != 0);
            for (uint32_t s = 0; s < ns; s++) {
                S_REQUIRE(head[s] >= lo && head[s] <= hi, "S %u: server %u heads %u ranges", ns, s,
                          head[s]);
                uint32_t p, c = zps_ranges_count(t, s, &p);
                S_REQUIRE(c == held[s] && p == head[s], "S %u: count of server %u", ns, s);
                S_REQUIRE(zps_ranges_member(t, s), "S %u: server %u not a member", ns, s);
            }
            S_REQUIRE(zps_ranges_lost(t) == 0, "S %u: lost ranges", ns);
        }
    }
    ck_assert_int_eq(zps_ranges_init(t, 0, 1), ZPS_EINVAL);
    ck_assert_int_eq(zps_ranges_init(t, ZPS_RANGES_MAX_SERVERS + 1, 1), ZPS_EINVAL);
    ck_assert_int_eq(zps_ranges_init(t, 3, 0), ZPS_EINVAL);
    ck_assert_int_eq(zps_ranges_init(t, 3, ZPS_MAX_REPLICAS + 1), ZPS_EINVAL);
    ck_assert_int_eq(zps_ranges_init(t, ZPS_RANGES_MAX_SERVERS, 3), 0);
    free(t);
}
END_TEST

/* zps_place(key, S) is the primary of the key's range in the default table. */
START_TEST(place_is_default_primary)
{
    const uint32_t servers[] = {1, 2, 3, 5, 7, 16, 63, 64, 100, 4096};
    zps_ranges_t *t = malloc(sizeof *t);
    ck_assert_ptr_nonnull(t);
    for (size_t s = 0; s < sizeof servers / sizeof servers[0]; s++) {
        ck_assert_int_eq(zps_ranges_init(t, servers[s], 2), 0);
        uint64_t st = 7 + s;
        for (int i = 0; i < 100000; i++) {
            uint64_t key = i < 1000 ? (uint64_t)i : zps_rng_next(&st);
            uint32_t r = zps_range_of(key);
            S_REQUIRE(r < ZPS_RANGES, "range %u", r);
            S_REQUIRE(zps_place(key, servers[s]) == zps_ranges_primary(t, r),
                      "key %llu, %u servers: place %u, primary %u", (unsigned long long)key,
                      servers[s], zps_place(key, servers[s]), zps_ranges_primary(t, r));
        }
    }
    free(t);
}
END_TEST

/* Removal keeps the others' order, bumps the version once, counts lost. */
START_TEST(remove_keeps_order)
{
    zps_ranges_t *t = s_new(4, 3), *orig = s_new(4, 3);
    uint32_t lost = 99;
    /* server 1 is in the chains of homes 3, 0 and 1: 3 x 1024 ranges */
    ck_assert_uint_eq(zps_ranges_remove(t, 1, &lost), 3 * 1024);
    ck_assert_uint_eq(lost, 0);
    ck_assert_uint_eq(t->version, 2);
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        uint32_t k = 0;
        for (uint32_t i = 0; i < orig->nrep[r]; i++)
            if (orig->rep[r][i] != 1) {
                S_REQUIRE(k < t->nrep[r] && t->rep[r][k] == orig->rep[r][i],
                          "range %u: order changed", r);
                k++;
            }
        S_REQUIRE(k == t->nrep[r] && !zps_ranges_has(t, r, 1), "range %u: %u replicas", r,
                  t->nrep[r]);
    }
    ck_assert(!zps_ranges_member(t, 1));
    ck_assert_uint_eq(zps_ranges_count(t, 1, NULL), 0);
    /* the next replica became primary of server 1's ranges */
    ck_assert_uint_eq(zps_ranges_primary(t, 1024), 2);
    /* again: nothing to do, the version stays */
    ck_assert_uint_eq(zps_ranges_remove(t, 1, NULL), 0);
    ck_assert_uint_eq(t->version, 2);
    /* a rank beyond the servers: nothing either */
    ck_assert_uint_eq(zps_ranges_remove(t, 77, &lost), 0);
    ck_assert_uint_eq(t->version, 2);

    /* R = 1: a removal loses the server's ranges */
    ck_assert_int_eq(zps_ranges_init(t, 4, 1), 0);
    ck_assert_uint_eq(zps_ranges_remove(t, 2, &lost), 1024);
    ck_assert_uint_eq(lost, 1024);
    ck_assert_uint_eq(zps_ranges_lost(t), 1024);
    ck_assert_uint_eq(zps_ranges_primary(t, 2048), UINT32_MAX);
    ck_assert_uint_eq(t->version, 2);

    /* R = 2: two adjacent servers lose the ranges the first heads */
    ck_assert_int_eq(zps_ranges_init(t, 4, 2), 0);
    ck_assert_uint_eq(zps_ranges_remove(t, 1, &lost), 2048);
    ck_assert_uint_eq(lost, 0);
    ck_assert_uint_eq(zps_ranges_remove(t, 2, &lost), 2048);
    ck_assert_uint_eq(lost, 1024);
    ck_assert_uint_eq(t->version, 3);
    /* two that are not adjacent lose nothing */
    ck_assert_int_eq(zps_ranges_init(t, 4, 2), 0);
    zps_ranges_remove(t, 0, NULL);
    ck_assert_uint_eq(zps_ranges_remove(t, 2, &lost), 2048);
    ck_assert_uint_eq(lost, 0);
    free(t);
    free(orig);
}
END_TEST

START_TEST(encode_decode_round_trip)
{
    const uint32_t shapes[][2] = {{1, 1}, {1, 3}, {5, 3}, {7, 2}, {64, 1}, {4096, 3}};
    zps_ranges_t *t = malloc(sizeof *t), *u = malloc(sizeof *u);
    uint8_t *buf = malloc(1 << 16);
    char err[200];
    ck_assert(t && u && buf);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        ck_assert_int_eq(zps_ranges_init(t, shapes[s][0], shapes[s][1]), 0);
        for (int step = 0; step < 3; step++) {
            size_t need = zps_ranges_encoded_size(t);
            ck_assert_uint_eq(zps_ranges_encode(t, buf, need - 1), 0);
            ck_assert_uint_eq(zps_ranges_encode(t, buf, 1 << 16), need);
            memset(u, 0x5a, sizeof *u);
            ck_assert_int_eq(zps_ranges_decode(u, buf, need, err, sizeof err), 0);
            ck_assert_msg(s_same(t, u), "shape %zu step %d", s, step);
            /* take a server out (a lost range too, at R = 1) and again */
            zps_ranges_remove(t, (uint32_t)step % t->nservers, NULL);
        }
    }
    free(t);
    free(u);
    free(buf);
}
END_TEST

/* Joins: started only for a non-replica joiner from a replica donor into
 * a free slot; completion appends the joiner last (version + 1) for the
 * joins of that cut only; removing the joiner or the donor drops the join,
 * removing another replica keeps it; member and takes count joins. */
START_TEST(join_complete_remove)
{
    zps_ranges_t *t = s_new(4, 3);
    /* range 0: (0, 1, 2), full */
    ck_assert_uint_eq(t->join[0], ZPS_NO_RANK);
    ck_assert_int_eq(zps_ranges_join(t, 0, 3, 0, 2), ZPS_EINVAL); /* full chain */
    zps_ranges_remove(t, 3, NULL);                                 /* version 2 */
    ck_assert_uint_eq(t->version, 2);
    ck_assert(!zps_ranges_member(t, 3));
    /* range 0 is still full; range 1100 (home 1: 1, 2, 3) is (1, 2) now */
    ck_assert_uint_eq(zps_range_home(1100, 4), 1);
    ck_assert_uint_eq(t->nrep[1100], 2);
    ck_assert_int_eq(zps_ranges_join(t, 1100, 1, 1, 3), ZPS_EINVAL); /* joiner a replica */
    ck_assert_int_eq(zps_ranges_join(t, 1100, 3, 0, 3), ZPS_EINVAL); /* donor not one */
    ck_assert_int_eq(zps_ranges_join(t, 1100, 3, 1, 0), ZPS_EINVAL); /* cut 0 */
    ck_assert_int_eq(zps_ranges_join(t, 1100, 4, 1, 3), ZPS_EINVAL); /* joiner >= S */
    ck_assert_int_eq(zps_ranges_join(t, ZPS_RANGES, 3, 1, 3), ZPS_EINVAL);
    ck_assert_int_eq(zps_ranges_join(t, 1100, 3, 1, 3), 0);
    ck_assert_int_eq(zps_ranges_join(t, 1100, 0, 1, 3), ZPS_EINVAL); /* has a join */
    ck_assert_uint_eq(t->version, 2); /* the caller bumps it */
    t->version = 3;
    ck_assert(zps_ranges_member(t, 3));
    ck_assert(zps_ranges_takes(t, 1100, 3) && !zps_ranges_has(t, 1100, 3));
    ck_assert(zps_ranges_takes(t, 1100, 1) && !zps_ranges_takes(t, 1100, 0));
    ck_assert_uint_eq(zps_ranges_count(t, 3, NULL), 0);
    /* a second join of 3 at another cut (range 2100: home 2: (2, 0)) */
    ck_assert_int_eq(zps_ranges_join(t, 2100, 3, 0, 4), 0);
    t->version = 4;
    /* completion: another cut or another joiner changes nothing */
    ck_assert_uint_eq(zps_ranges_complete(t, 3, 2), 0);
    ck_assert_uint_eq(zps_ranges_complete(t, 0, 3), 0);
    ck_assert_uint_eq(t->version, 4);
    ck_assert_uint_eq(zps_ranges_complete(t, 3, 3), 1);
    ck_assert_uint_eq(t->version, 5);
    ck_assert_uint_eq(t->nrep[1100], 3);
    ck_assert_uint_eq(t->rep[1100][0], 1);
    ck_assert_uint_eq(t->rep[1100][1], 2);
    ck_assert_uint_eq(t->rep[1100][2], 3);
    ck_assert_uint_eq(t->join[1100], ZPS_NO_RANK);
    ck_assert_uint_eq(t->join[2100], 3); /* the other cut's join stays */
    ck_assert_uint_eq(zps_ranges_count(t, 3, NULL), 1);
    /* removing another replica (1) keeps the join of 2100 (donor 0) */
    zps_ranges_remove(t, 1, NULL);
    ck_assert_uint_eq(t->join[2100], 3);
    ck_assert_uint_eq(t->donor[2100], 0);
    /* removing the donor drops the join (and only its) */
    ck_assert_int_eq(zps_ranges_join(t, 1100, 0, 2, t->version + 1), 0); /* (2, 3) <- 0 */
    t->version++;
    uint64_t v = t->version;
    /* 2 is in the chains of homes 0, 1 (1100 too) and 2: 3 x 1024 ranges */
    ck_assert_uint_eq(zps_ranges_remove(t, 2, NULL), 3 * 1024);
    ck_assert_uint_eq(t->version, v + 1);
    ck_assert_uint_eq(t->join[1100], ZPS_NO_RANK);
    ck_assert_uint_eq(t->join[2100], 3);
    /* removing the joiner drops its join; a rank with only joins changes
     * the ranges it joined */
    zps_ranges_t *u = s_new(3, 2);
    zps_ranges_remove(u, 1, NULL);
    ck_assert_int_eq(zps_ranges_join(u, 0, 1, 0, 3), 0);
    u->version = 3;
    ck_assert_uint_eq(zps_ranges_remove(u, 1, NULL), 1);
    ck_assert_uint_eq(u->join[0], ZPS_NO_RANK);
    ck_assert_uint_eq(u->version, 4);
    ck_assert(!zps_ranges_member(u, 1));
    free(u);
    free(t);
}
END_TEST

/* Tables with joins (from every shape's first replica into the first free
 * slot) survive the wire. */
START_TEST(encode_decode_with_joins)
{
    zps_ranges_t *t = malloc(sizeof *t), *u = malloc(sizeof *u);
    uint8_t *buf = malloc(1 << 17);
    char err[200];
    ck_assert(t && u && buf);
    const uint32_t shapes[][2] = {{3, 2}, {4, 3}, {4096, 3}};
    for (size_t s = 0; s < 3; s++) {
        ck_assert_int_eq(zps_ranges_init(t, shapes[s][0], shapes[s][1]), 0);
        uint32_t out = t->nservers - 1;
        zps_ranges_remove(t, out, NULL);
        uint32_t joins = 0;
        for (uint32_t r = 0; r < ZPS_RANGES; r++)
            if (t->nrep[r] < t->replicas)
                joins += zps_ranges_join(t, r, out, t->rep[r][0], t->version + 1) == 0;
        S_REQUIRE(joins > 0, "shape %zu: no joins", s);
        t->version++;
        size_t need = zps_ranges_encoded_size(t);
        ck_assert_uint_eq(zps_ranges_encode(t, buf, need - 1), 0);
        ck_assert_uint_eq(zps_ranges_encode(t, buf, 1 << 17), need);
        memset(u, 0x5a, sizeof *u);
        ck_assert_int_eq(zps_ranges_decode(u, buf, need, err, sizeof err), 0);
        ck_assert_msg(s_same(t, u), "shape %zu", s);
        for (uint32_t r = 0; r < ZPS_RANGES; r++)
            S_REQUIRE(u->join[r] == ZPS_NO_RANK || (u->join[r] == out && u->cut[r] == t->version),
                      "shape %zu range %u", s, r);
        /* and completed */
        ck_assert_uint_eq(zps_ranges_complete(t, out, t->version), joins);
        need = zps_ranges_encoded_size(t);
        ck_assert_uint_eq(zps_ranges_encode(t, buf, 1 << 17), need);
        ck_assert_int_eq(zps_ranges_decode(u, buf, need, err, sizeof err), 0);
        ck_assert(s_same(t, u));
    }
    free(t);
    free(u);
    free(buf);
}
END_TEST

/* Decode err and leave the output exactly as it was. */
static void s_refused(const uint8_t *buf, size_t len, const char *want, const char *what)
{
    static zps_ranges_t out, before;
    char err[200] = "";
    memset(&out, 0xab, sizeof out);
    before = out;
    int rc = zps_ranges_decode(&out, buf, len, err, sizeof err);
    S_REQUIRE(rc == ZPS_EPROTO, "%s: decoded (%d)", what, rc);
    S_REQUIRE(memcmp(&out, &before, sizeof out) == 0, "%s: output changed", what);
    S_REQUIRE(!want || strstr(err, want), "%s: error '%s' lacks '%s'", what, err, want);
}

static void s_put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

START_TEST(decode_refuses)
{
    zps_ranges_t *t = s_new(3, 2);
    size_t n = zps_ranges_encoded_size(t);
    uint8_t *good = malloc(n + 16), *b = malloc(n + 16); /* room for a join */
    ck_assert(good && b);
    ck_assert_uint_eq(zps_ranges_encode(t, good, n), n);

    s_refused(good, 0, "not a range table", "empty");
    memcpy(b, good, n);
    b[0] = 'X';
    s_refused(b, n, "not a range table", "bad magic");
    memcpy(b, good, n);
    b[4] = 2;
    s_refused(b, n, "format 2", "format 2");
    /* cut anywhere: refused */
    for (size_t len = 0; len < n; len++)
        s_refused(good, len, NULL, "truncated");
    s_refused(good, 27, "not a range table", "truncated header");
    s_refused(good, 28, "truncated at range 0", "no ranges");
    s_refused(good, n - 1, "truncated", "last rank cut");
    memcpy(b, good, n);
    b[n] = 0;
    s_refused(b, n + 1, "1 bytes after", "trailing byte");
    /* header fields */
    memcpy(b, good, n);
    memset(b + 8, 0, 8);
    s_refused(b, n, "version 0", "version 0");
    memcpy(b, good, n);
    memset(b + 16, 0, 4);
    s_refused(b, n, "0 servers", "0 servers");
    memcpy(b, good, n);
    b[16] = 0x01, b[17] = 0x10; /* 4097 */
    s_refused(b, n, "4097 servers", "4097 servers");
    memcpy(b, good, n);
    b[20] = 4;
    s_refused(b, n, "4 replicas", "4 replicas");
    memcpy(b, good, n);
    b[20] = 0;
    s_refused(b, n, "0 replicas", "0 replicas");
    memcpy(b, good, n);
    memset(b + 24, 0, 4);
    s_refused(b, n, "(0 at first)", "home 0");
    memcpy(b, good, n);
    b[24] = 4; /* more homes than slots */
    s_refused(b, n, "(4 at first)", "home > slots");
    /* range 0's chain is at offset 28: u8 nrep (2), then ranks 0 and 1 */
    ck_assert_uint_eq(good[28], 2);
    memcpy(b, good, n);
    s_put16(b + 31, 3);
    s_refused(b, n, "server 3 beyond", "rank >= S");
    memcpy(b, good, n);
    s_put16(b + 31, 0xffff);
    s_refused(b, n, "beyond", "rank 65535");
    memcpy(b, good, n);
    s_put16(b + 31, 0);
    s_refused(b, n, "server 0 twice", "rank twice");
    /* nrep 3 > replicas 2 (the bytes after would hold a third rank) */
    memcpy(b, good, n);
    b[28] = 3;
    s_refused(b, n, "range 0 has 3 replicas", "nrep > replicas");
    b[28] = 255;
    s_refused(b, n, "range 0 has 255", "nrep 255");
    /* joins: range 0's u16 joiner follows its chain (offset 33); make it
     * a move of 2 from 0 at cut 1 (the version), out 1 (the chain is full
     * for R = 2: a plain join would be refused): 12 more bytes */
    ck_assert_uint_eq(good[33], 0xff);
    ck_assert_uint_eq(good[34], 0xff);
    uint8_t *j = malloc(n + 12);
    ck_assert_ptr_nonnull(j);
    memcpy(j, good, 33);
    s_put16(j + 33, 2);
    s_put16(j + 35, 0);
    memset(j + 37, 0, 8);
    j[37] = 1;
    s_put16(j + 45, 1);
    memcpy(j + 47, good + 35, n - 35);
    zps_ranges_t *u = malloc(sizeof *u);
    char err[200];
    ck_assert_int_eq(zps_ranges_decode(u, j, n + 12, err, sizeof err), 0);
    ck_assert_uint_eq(u->join[0], 2);
    ck_assert_uint_eq(u->donor[0], 0);
    ck_assert_uint_eq(u->cut[0], 1);
    ck_assert_uint_eq(u->out[0], 1);
    ck_assert_uint_eq(u->join[1], ZPS_NO_RANK);
    memcpy(b, j, n + 12);
    s_put16(b + 33, 1);
    s_refused(b, n + 12, "invalid join (server 1 from 0", "joiner is a replica");
    memcpy(b, j, n + 12);
    s_put16(b + 35, 2);
    s_refused(b, n + 12, "invalid join (server 2 from 2", "donor not a replica");
    memcpy(b, j, n + 12);
    s_put16(b + 35, 0xfffe);
    s_refused(b, n + 12, "invalid join", "donor beyond the servers");
    memcpy(b, j, n + 12);
    b[37] = 0;
    s_refused(b, n + 12, "at version 0", "cut 0");
    memcpy(b, j, n + 12);
    b[37] = 2;
    s_refused(b, n + 12, "at version 2", "cut > version");
    memcpy(b, j, n + 12);
    s_put16(b + 33, 3);
    s_refused(b, n + 12, "invalid join (server 3", "joiner >= S");
    memcpy(b, j, n + 12);
    s_put16(b + 33, 0xfffe);
    s_refused(b, n + 12, "invalid join", "joiner 65534");
    /* a move's out must be a replica; a plain join needs a free place */
    memcpy(b, j, n + 12);
    s_put16(b + 45, 0);
    ck_assert_int_eq(zps_ranges_decode(u, b, n + 12, err, sizeof err), 0);
    ck_assert_uint_eq(u->out[0], 0);
    s_put16(b + 45, 2);
    s_refused(b, n + 12, "invalid join", "out not a replica");
    s_put16(b + 45, 0xffff);
    s_refused(b, n + 12, "invalid join", "plain join into a chain of R replicas");
    s_refused(j, n + 11, "truncated", "join cut short");
    s_refused(j, 39, "truncated at range 0", "join's donor and cut cut short");
    free(j);
    /* full chain: a 3-replica table whose range 0 (0, 1, 2) has a join:
     * refused as a plain join, taken as a move (out 1) */
    zps_ranges_t *f = s_new(4, 3);
    size_t fn = zps_ranges_encoded_size(f);
    uint8_t *fg = malloc(fn + 12), *fb = malloc(fn + 12);
    ck_assert(fg && fb);
    ck_assert_uint_eq(zps_ranges_encode(f, fg, fn), fn);
    ck_assert_uint_eq(fg[28], 3);
    memcpy(fb, fg, 35);
    s_put16(fb + 35, 3);
    s_put16(fb + 37, 0);
    memset(fb + 39, 0, 8);
    fb[39] = 1;
    s_put16(fb + 47, 0xffff);
    memcpy(fb + 49, fg + 37, fn - 37);
    s_refused(fb, fn + 12, "invalid join (server 3 from 0", "full chain");
    s_put16(fb + 47, 1);
    ck_assert_int_eq(zps_ranges_decode(u, fb, fn + 12, err, sizeof err), 0);
    ck_assert_uint_eq(u->join[0], 3);
    ck_assert_uint_eq(u->out[0], 1);
    free(f);
    free(fg);
    free(fb);
    /* the good one still decodes */
    ck_assert_int_eq(zps_ranges_decode(u, good, n, err, sizeof err), 0);
    ck_assert(s_same(t, u));
    free(u);
    free(t);
    free(good);
    free(b);
}
END_TEST

Suite *suite_ranges(void)
{
    Suite *s = suite_create("ranges");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, init_spread_and_chains);
    tcase_add_test(tc, place_is_default_primary);
    tcase_add_test(tc, remove_keeps_order);
    tcase_add_test(tc, encode_decode_round_trip);
    tcase_add_test(tc, decode_refuses);
    tcase_add_test(tc, join_complete_remove);
    tcase_add_test(tc, encode_decode_with_joins);
    suite_add_tcase(s, tc);
    return s;
}
