/* fuzz_ranges: the range table's wire form and its operations
 * (common/zps_ranges.c), which every server, client and the coordinator
 * decode from the network.
 *
 * Input: a table's bytes (the first two input bytes give their length,
 * little-endian), then up to 32 operations, 6 bytes each: kind, range
 * (u16), rank, rank, rank (u8 each, taken modulo the table's slots).  A
 * table that does not decode is replaced by a default one (its shape from
 * the next two bytes) for the operations.
 *
 * Checks:
 *   - a table that decodes satisfies what decoding promises (version >= 1,
 *     1 <= homes <= slots, ranks below the slots, no rank twice in a chain,
 *     at most R replicas, a join's donor in the chain and joiner not, a
 *     move's out in the chain, a plain join only beside a free place);
 *   - it encodes to exactly the bytes it came from (the format has one
 *     encoding per table), and zps_ranges_encoded_size says so;
 *   - after every operation (remove, join, move, complete, set_slots) the
 *     table still satisfies the same rules and round-trips through its
 *     encoding, and the version never goes down;
 *   - a refused decode leaves the output untouched. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "zps_err.h"
#include "zps_ranges.h"

static zps_ranges_t g_t, g_u, g_poison;
static uint8_t g_buf[(28 + 4096 * 21 + 4 * 4096) + 64];

static void s_valid(const zps_ranges_t *t)
{
    FUZZ_CHECK(t->version >= 1, "version 0");
    FUZZ_CHECK(t->nservers >= 1 && t->nservers <= ZPS_RANGES_MAX_SERVERS, "slots %u", t->nservers);
    FUZZ_CHECK(t->home >= 1 && t->home <= t->nservers, "homes %u of %u", t->home, t->nservers);
    FUZZ_CHECK(t->replicas >= 1 && t->replicas <= ZPS_MAX_REPLICAS, "R %u", t->replicas);
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        FUZZ_CHECK(t->nrep[r] <= t->replicas, "range %u: %u replicas", r, t->nrep[r]);
        for (uint32_t i = 0; i < t->nrep[r]; i++) {
            FUZZ_CHECK(t->rep[r][i] < t->nservers, "range %u: rank %u", r, t->rep[r][i]);
            for (uint32_t j = 0; j < i; j++)
                FUZZ_CHECK(t->rep[r][i] != t->rep[r][j], "range %u: rank twice", r);
        }
        if (t->join[r] == ZPS_NO_RANK)
            continue;
        FUZZ_CHECK(t->join[r] < t->nservers, "range %u: joiner %u", r, t->join[r]);
        FUZZ_CHECK(!zps_ranges_has(t, r, t->join[r]), "range %u: joiner a replica", r);
        FUZZ_CHECK(zps_ranges_has(t, r, t->donor[r]), "range %u: donor not a replica", r);
        FUZZ_CHECK(t->cut[r] >= 1 && t->cut[r] <= t->version, "range %u: cut %llu", r,
                   (unsigned long long)t->cut[r]);
        if (t->out[r] == ZPS_NO_RANK)
            FUZZ_CHECK(t->nrep[r] < t->replicas, "range %u: plain join into a full chain", r);
        else
            FUZZ_CHECK(zps_ranges_has(t, r, t->out[r]), "range %u: out not a replica", r);
    }
}

/* Encode, decode, compare. */
static void s_round_trip(const zps_ranges_t *t)
{
    size_t need = zps_ranges_encoded_size(t);
    FUZZ_CHECK(need <= sizeof g_buf, "encoded size %zu", need);
    size_t n = zps_ranges_encode(t, g_buf, sizeof g_buf);
    FUZZ_CHECK(n == need, "encode wrote %zu, size said %zu", n, need);
    FUZZ_CHECK(zps_ranges_encode(t, g_buf, need - 1) == 0, "encode into a short buffer");
    char err[200];
    int rc = zps_ranges_decode(&g_u, g_buf, n, err, sizeof err);
    FUZZ_CHECK(rc == 0, "own encoding refused: %s", err);
    FUZZ_CHECK(g_u.version == t->version && g_u.nservers == t->nservers && g_u.home == t->home &&
                   g_u.replicas == t->replicas,
               "header changed");
    FUZZ_CHECK(!memcmp(g_u.nrep, t->nrep, sizeof t->nrep) && !memcmp(g_u.join, t->join, sizeof t->join),
               "chains changed");
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        FUZZ_CHECK(!memcmp(g_u.rep[r], t->rep[r], t->nrep[r] * sizeof t->rep[r][0]), "range %u", r);
        if (t->join[r] != ZPS_NO_RANK)
            FUZZ_CHECK(g_u.donor[r] == t->donor[r] && g_u.cut[r] == t->cut[r] &&
                           g_u.out[r] == t->out[r],
                       "range %u: join changed", r);
    }
    FUZZ_CHECK(!memcmp(g_u.inc, t->inc, t->nservers * sizeof t->inc[0]), "incarnations changed");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    size_t len = fuzz_u16(&in), got;
    const uint8_t *tb = fuzz_bytes(&in, len, &got);
    char err[200];
    memset(&g_t, 0x5a, sizeof g_t);
    g_poison = g_t;
    if (zps_ranges_decode(&g_t, tb, got, err, sizeof err) != 0) {
        FUZZ_CHECK(!memcmp(&g_t, &g_poison, sizeof g_t), "a refused decode changed its output");
        /* no valid table: operate on a default one instead */
        uint8_t s = fuzz_u8(&in), r = fuzz_u8(&in);
        if (zps_ranges_init(&g_t, 1u + s % 16u, 1u + r % ZPS_MAX_REPLICAS) != 0)
            return 0;
    } else {
        /* one encoding per table */
        size_t n = zps_ranges_encode(&g_t, g_buf, sizeof g_buf);
        FUZZ_CHECK(n == got && !memcmp(g_buf, tb, got), "re-encoding differs (%zu bytes, %zu in)",
                   n, got);
    }
    s_valid(&g_t);
    s_round_trip(&g_t);
    for (int ops = 0; ops < 32 && in.n >= 6; ops++) {
        uint8_t kind = fuzz_u8(&in);
        uint32_t range = fuzz_u16(&in) % ZPS_RANGES;
        uint32_t a = fuzz_u8(&in) % g_t.nservers, b = fuzz_u8(&in) % g_t.nservers,
                 c = fuzz_u8(&in) % g_t.nservers;
        uint64_t v = g_t.version;
        switch (kind % 5) {
        case 0:
            zps_ranges_remove(&g_t, a, NULL);
            break;
        case 1:
            if (zps_ranges_join(&g_t, range, a, b, v + 1) == 0)
                g_t.version = v + 1;
            break;
        case 2:
            if (zps_ranges_move(&g_t, range, a, b, c, v + 1) == 0)
                g_t.version = v + 1;
            break;
        case 3:
            zps_ranges_complete(&g_t, a, g_t.join[range] != ZPS_NO_RANK ? g_t.cut[range] : v);
            break;
        default:
            zps_ranges_set_slots(&g_t, g_t.nservers + (a & 3));
            break;
        }
        FUZZ_CHECK(g_t.version >= v, "version went down");
        s_valid(&g_t);
        s_round_trip(&g_t);
    }
    return 0;
}
