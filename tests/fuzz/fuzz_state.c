/* fuzz_state: a shard's state blob (common/zps_shard.c: admission sketch
 * and counters, the clock of expiry and eviction), which a server reads
 * from checkpoint files (zps_shard_state_import) and from a joining
 * peer's snapshot page (zps_shard_state_merge: any client that says it is
 * a server can send one in a job without CURVE).
 *
 * Input: the blob's bytes, as they are.  Two shards take it: one with
 * count:3 admission and expiry/eviction (the blob's every block applies),
 * one with nothing on (every block is ignored).
 *
 * Checks:
 *   - import and merge return 0 or ZPS_EPROTO / ZPS_EINVAL, and a refusal
 *     changes nothing (the shard's own export is the same before and after);
 *   - what an import took exports again, and that export imports again
 *     (the format round-trips);
 *   - a shard that took an import adopts a table of stamped rows (the
 *     stamps are converted to its clock) and sweeps, evicts and pushes
 *     without fault;
 *   - the shard with nothing on takes any valid blob and stays empty of
 *     state (no export). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "zps_err.h"
#include "zps_shard.h"

static zps_shard_t *s_shard(int bounded)
{
    zps_optim_conf_t o;
    zps_optim_defaults(&o, ZPS_OPT_FTRL);
    o.accum = bounded ? ZPS_ACCUM_UF16 : ZPS_ACCUM_F32;
    zps_shard_t *sh = zps_shard_new(&o, 64);
    FUZZ_CHECK(sh != NULL, "shard");
    if (bounded) {
        zps_admit_conf_t a = {ZPS_ADMIT_COUNT, 3, 0, 4096, 7};
        FUZZ_CHECK(zps_shard_set_admit(sh, &a) == 0, "admit");
        zps_bound_conf_t b = {.expire_s = 60, .evict = 1, .max_keys = 100};
        FUZZ_CHECK(zps_shard_set_bound(sh, &b) == 0, "bound");
        zps_shard_clock(sh, 1000);
    }
    return sh;
}

/* the shard's export, malloc'd (NULL, 0: none) */
static unsigned char *s_export(const zps_shard_t *sh, size_t *len)
{
    unsigned char *b = NULL;
    FUZZ_CHECK(zps_shard_state_export(sh, &b, len) == 0, "export");
    return b;
}

static void s_same(const zps_shard_t *sh, const unsigned char *b0, size_t l0, const char *what)
{
    size_t l1;
    unsigned char *b1 = s_export(sh, &l1);
    FUZZ_CHECK(l0 == l1 && (l0 == 0 || memcmp(b0, b1, l0) == 0), "%s changed the state", what);
    free(b1);
}

static void s_push(zps_shard_t *sh, uint64_t base, size_t n)
{
    uint64_t keys[16];
    float g[16];
    for (size_t i = 0; i < n; i++) {
        keys[i] = base + i;
        g[i] = 0.5f;
    }
    zps_shard_push_t pr;
    if (zps_shard_push_begin(sh, keys, n, g, 1, 0, &pr) == 0) {
        zps_shard_evict(sh, pr.new_keys);
        FUZZ_CHECK(zps_shard_push_commit(sh) == 0, "commit");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zps_shard_t *sh = s_shard(1), *off = s_shard(0);
    char err[300];
    size_t l0;
    unsigned char *b0 = s_export(sh, &l0);
    int rc = zps_shard_state_merge(sh, data, size, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == ZPS_EPROTO || rc == ZPS_EINVAL, "merge rc %d", rc);
    if (rc)
        s_same(sh, b0, l0, "a refused merge");
    free(b0);
    b0 = s_export(sh, &l0);
    rc = zps_shard_state_import(sh, data, size, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == ZPS_EPROTO, "import rc %d", rc);
    if (rc) {
        s_same(sh, b0, l0, "a refused import");
    } else {
        /* round trip through export */
        size_t l1;
        unsigned char *b1 = s_export(sh, &l1);
        zps_shard_t *again = s_shard(1);
        FUZZ_CHECK(zps_shard_state_import(again, b1, l1, err, sizeof err) == 0,
                   "an export does not import: %s", err);
        free(b1);
        zps_shard_destroy(&again);
        /* rows with arbitrary stamps, adopted in the imported clock */
        zps_table_t *t = zps_table_new(zps_table_row_floats(zps_shard_table(sh)), 16);
        FUZZ_CHECK(t != NULL, "table");
        for (uint64_t k = 0; k < 40; k++) {
            float *r = zps_table_upsert(t, k * 7919, NULL);
            FUZZ_CHECK(r != NULL, "upsert");
            uint32_t bits = (uint32_t)(k * 2654435761u) ^ (size ? data[k % size] : 0);
            memcpy(r, &(float){0.25f}, 4);
            memcpy(r + 1, &bits, 4);
        }
        FUZZ_CHECK(zps_shard_adopt(sh, &t) == 0, "adopt");
        zps_shard_clock(sh, 500000);
        zps_shard_sweep(sh, 1000);
        s_push(sh, 1000, 16);
        zps_shard_sweep(sh, 1000);
    }
    free(b0);
    rc = zps_shard_state_import(off, data, size, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == ZPS_EPROTO, "import (off) rc %d", rc);
    size_t lo;
    unsigned char *bo = s_export(off, &lo);
    FUZZ_CHECK(bo == NULL && lo == 0, "a shard with nothing on exports state");
    zps_shard_destroy(&sh);
    zps_shard_destroy(&off);
    return 0;
}
