/* wk_layout: see wk_layout.h.
 *
 * DESIGN
 * Block mode (shuffle_buffer > 0): B = block_bytes, or the largest power
 * of two <= S_SHARD_BLOCK_MAX with about S_SHARD_BLOCKS_PER_WORKER blocks a
 * worker over the plain bytes (>= S_SHARD_BLOCK_MIN).  Plain file f of
 * size s has ceil(s/B) blocks with global numbers g_f, g_f + 1, ... (g_f:
 * the blocks of the files before it); block k of f (bytes [kB, (k+1)B),
 * the lines starting there) is a unit of worker (g_f + k) mod W, with unit
 * id k; the worker's blocks of f make one part (WK_SPLIT_BLOCKS).  With
 * ngz >= W gzip files each takes one global number and is a whole unit
 * ("0of1"); with fewer every worker reads each as one unit keeping lines
 * l % W == r (WK_SPLIT_LINES).  The units are read in a Fisher-Yates order
 * from a splitmix64 stream seeded by (seed, epoch) (seed includes the rank,
 * see wk_train).
 *
 * Sequential mode (shuffle_buffer == 0): one unit per part, in file order:
 * with nfiles >= W file i is read whole (as shard 0 of 1) by worker i % W;
 * otherwise every file is read by every worker as shard r of W (the byte
 * range [s*r/W, s*(r+1)/W) of a plain file, every W-th line of a gzip
 * file); with W == 1 that is the whole file.
 *
 * A whole-file part is "0 of 1" whatever W is, so its cache is shared by a
 * single worker and by the worker that gets the file with nfiles >= W.
 *
 * Window: the reader fills a window of shuffle_buffer rows and serves it in
 * a Fisher-Yates order drawn from one stream per (seed, epoch) (seeded
 * apart from the unit order). */
#include "wk_layout.h"

#include <stdlib.h>
#include <string.h>

#include "wk_rows.h"
#include "zps_err.h"
#include "zps_hash.h"
#include "zps_rng.h"

#define S_SHUFFLE_SEED 0xa0761d6478bd642fULL
#define S_ORDER_SEED 0xe7037ed1a0b428dbULL
#define S_EPOCH_MUL 0x9e3779b97f4a7c15ULL
#define S_SHARD_BLOCK_MAX (1u << 20) /* automatic shard block size: at most 1 MiB, */
#define S_SHARD_BLOCK_MIN 64u        /*   at least 64 bytes, about S_SHARD_BLOCKS_PER_WORKER a worker */
#define S_SHARD_BLOCKS_PER_WORKER 64u

uint64_t wk_layout_auto_block(uint64_t total, uint32_t W)
{
    uint64_t target = total / ((uint64_t)S_SHARD_BLOCKS_PER_WORKER * W), b = S_SHARD_BLOCK_MAX;
    while (b > S_SHARD_BLOCK_MIN && b > target)
        b >>= 1;
    return b;
}

uint64_t wk_layout_range_at(uint64_t size, uint32_t i, uint32_t n)
{
    return size / n * i + size % n * i / n; /* floor(size * i / n) without overflow */
}

uint64_t wk_layout_window_rng(uint64_t seed, uint64_t epoch)
{
    return zps_mix64(seed + epoch * S_EPOCH_MUL, S_SHUFFLE_SEED);
}

void wk_layout_shuffle(size_t *a, size_t n, uint64_t *rng)
{
    for (size_t i = n > 1 ? n - 1 : 0; i > 0; i--) {
        size_t j = (size_t)(zps_rng_next(rng) % (i + 1));
        size_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

typedef struct {
    wk_layout_t *L;
    size_t pcap, ucap;
} build_t;

static wk_part_t *s_add_part(build_t *b, size_t file, int gz, uint32_t split, uint32_t shard,
                             uint32_t nshards)
{
    wk_layout_t *L = b->L;
    if (wk_grow((void **)&L->parts, &b->pcap, L->nparts + 1, sizeof *L->parts) < 0)
        return NULL;
    wk_part_t *pt = &L->parts[L->nparts++];
    memset(pt, 0, sizeof *pt);
    pt->file = file;
    pt->gz = gz;
    pt->split = split;
    pt->shard = shard;
    pt->nshards = nshards;
    pt->unit0 = L->nunits;
    return pt;
}

/* A unit of the last part. */
static int s_add_unit(build_t *b, uint64_t id, uint64_t lo, uint64_t hi)
{
    wk_layout_t *L = b->L;
    if (wk_grow((void **)&L->units, &b->ucap, L->nunits + 1, sizeof *L->units) < 0)
        return ZPS_ENOMEM;
    wk_unit_t *u = &L->units[L->nunits++];
    memset(u, 0, sizeof *u);
    u->part = (uint32_t)(L->nparts - 1);
    u->id = id;
    u->lo = lo;
    u->hi = hi;
    u->weight = (hi > lo ? hi - lo : 0) + 1;
    L->parts[L->nparts - 1].nunits++;
    return 0;
}

static int s_sequential(build_t *b, const wk_layout_conf_t *c, const uint64_t *sizes,
                        const int *gz, size_t n)
{
    uint32_t W = c->nshards, me = c->shard;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint64_t size = sizes[i];
        if (n >= W) {
            if (i % W != me)
                continue;
            rc = s_add_part(b, i, gz[i], WK_SPLIT_WHOLE, 0, 1) ? s_add_unit(b, 0, 0, size)
                                                               : ZPS_ENOMEM;
        } else {
            uint32_t split = W == 1 ? WK_SPLIT_WHOLE : gz[i] ? WK_SPLIT_LINES : WK_SPLIT_RANGE;
            rc = s_add_part(b, i, gz[i], split, W == 1 ? 0 : me, W)
                     ? s_add_unit(b, 0, wk_layout_range_at(size, me, W),
                                  wk_layout_range_at(size, me + 1, W))
                     : ZPS_ENOMEM;
        }
    }
    return rc;
}

static int s_blocks(build_t *b, const wk_layout_conf_t *c, const uint64_t *sizes, const int *gz,
                    size_t n)
{
    uint32_t W = c->nshards, me = c->shard;
    size_t ngz = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        ngz += gz[i] != 0;
        if (!gz[i])
            total += sizes[i];
    }
    uint64_t B = c->block_bytes ? c->block_bytes : wk_layout_auto_block(total, W);
    b->L->block_bytes = B;
    uint64_t g = 0; /* global index of the file's first block */
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint64_t size = sizes[i];
        if (gz[i] && ngz >= W) { /* dealt whole, as one block */
            if (g++ % W == me)
                rc = s_add_part(b, i, 1, WK_SPLIT_WHOLE, 0, 1) ? s_add_unit(b, 0, 0, size)
                                                               : ZPS_ENOMEM;
        } else if (gz[i]) { /* every worker decompresses it, keeps its lines */
            rc = s_add_part(b, i, 1, WK_SPLIT_LINES, me, W)
                     ? s_add_unit(b, 0, wk_layout_range_at(size, me, W),
                                  wk_layout_range_at(size, me + 1, W))
                     : ZPS_ENOMEM;
        } else {
            uint64_t nb = size / B + (size % B != 0);
            uint64_t k = (me + W - g % W) % W; /* first block of this worker */
            if (k < nb) {
                wk_part_t *pt = s_add_part(b, i, 0, WK_SPLIT_BLOCKS, me, W);
                if (!pt)
                    rc = ZPS_ENOMEM;
                else {
                    pt->block_bytes = B;
                    pt->first_block = g;
                }
                for (; rc == 0 && k < nb; k += W)
                    rc = s_add_unit(b, k, k * B, k + 1 < nb ? (k + 1) * B : size);
            }
            g += nb;
        }
    }
    return rc;
}

int wk_layout_build(wk_layout_t *L, const wk_layout_conf_t *c, const uint64_t *sizes,
                    const int *gz, size_t n)
{
    memset(L, 0, sizeof *L);
    build_t b = {L, 0, 0};
    int rc = c->blocks ? s_blocks(&b, c, sizes, gz, n) : s_sequential(&b, c, sizes, gz, n);
    if (rc == 0 && L->nunits) {
        L->order = malloc(L->nunits * sizeof *L->order);
        if (!L->order)
            rc = ZPS_ENOMEM;
    }
    if (rc < 0) {
        wk_layout_free(L);
        return rc;
    }
    for (size_t i = 0; i < L->nunits; i++)
        L->order[i] = i;
    if (c->blocks && L->nunits > 1) {
        uint64_t rng = zps_mix64(c->seed + c->epoch * S_EPOCH_MUL, S_ORDER_SEED);
        wk_layout_shuffle(L->order, L->nunits, &rng);
    }
    return 0;
}

void wk_layout_free(wk_layout_t *L)
{
    free(L->parts);
    free(L->units);
    free(L->order);
    memset(L, 0, sizeof *L);
}
