/* zps_shard: pulls and all-or-nothing pushes on one table of optimizer
 * rows.  See zps_shard.h.
 *
 * A push is one pass over its rows (a second pass would miss the cache on
 * every row again: it cost 40% of push throughput).  Chunk by chunk
 * (ZPS_SHARD_CHUNK keys), the batched lookup finds the rows and prefetches
 * them; an existing row's old value is saved in the undo buffer and the
 * update applied in place; a missing key's new row (its initial value,
 * then the update) is computed in the undo buffer instead.  Every updated
 * row is checked finite with the batched check.  Commit reserves room for
 * the new keys first, so their inserts cannot fail half-way; any refusal
 * restores the saved rows.
 *
 * Admission, when on, is decided in begin for each missing key (a sketch
 * read or a hash; nothing changes), marked in skip[], and applied in
 * commit: only admitted keys are inserted, the others' sketch counts are
 * raised.  With admission off, skip[] is never read.
 *
 * With a pool (zps_shard_set_pool), a pull or begin of more than one block
 * of keys runs its blocks on the pool's threads, each taking the next block
 * from an atomic counter.  Every per-key array (rowp, undo, skip) is
 * written only at that key's index, the counters are summed per thread,
 * and bdone[] records where each block stopped, so a refusal restores
 * exactly the rows that were changed.  Commit, abort and everything that
 * changes the table's structure stay in the caller's thread. */
#include "zps_shard.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zps_err.h"
#include "zps_hash.h"
#include "zps_pool.h"
#include "zps_sketch.h"

#ifndef ZPS_SHARD_CHUNK
#define ZPS_SHARD_CHUNK 256 /* keys per batched lookup (-D for experiments) */
#endif

struct zps_shard {
    zps_table_t *t;
    zps_optim_conf_t o;
    size_t rf, pf;          /* floats per row, per pushed key */
    size_t hint;            /* capacity_hint of zps_shard_new */
    int needs_init;         /* initial weights are not all zero */
    zps_pool_t *pool;       /* big requests split over its threads (NULL: none) */
    uint64_t split;         /* requests that were */
    float *tmp_g;           /* one clipped gradient row per thread */
    float **rowp;           /* per key of the push: its stored row, or NULL (new) */
    size_t rowp_cap;
    float *undo;            /* per key: old row (stored) or new row (missing) */
    size_t undo_cap;
    size_t *bdone;          /* per block of a push being begun: where it stopped */
    size_t bdone_cap;
    /* the open push */
    const uint64_t *keys;
    size_t n, done, missing;
    uint64_t gen;           /* the table's zps_table_gen when rowp was filled */
    int open;
    /* admission (off: adm.mode == ZPS_ADMIT_OFF, sk NULL) */
    zps_admit_conf_t adm;
    zps_sketch_t *sk;
    uint8_t *skip;          /* per key of the push: missing and not admitted */
    size_t skip_cap;
    size_t rejected;        /* keys of the open push not admitted */
    zps_admit_stats_t ast;
    /* expiry and eviction (zps_shard_set_bound): each row ends with a
     * 16-bit stamp (its last 2 bytes), the job clock in quanta of q ticks
     * at its last update, modulo 2^16 (see zps_shard.h); the job clock
     * runs while the server does */
    zps_bound_conf_t bnd;
    int stamped;
    size_t orf;             /* the optimizer's floats per row (rf: + the stamp's) */
    uint32_t q;             /* job ticks per stamp quantum */
    uint32_t span_q;        /* expiry: more than span_q quanta old (0: off) */
    uint64_t now;           /* job ticks */
    uint64_t base;          /* job ticks at mono0 */
    int64_t mono0;          /* -1: not started */
    int clock_known;        /* zps_shard_state_import gave the clock the rows'
                             * stamps were written in: its quantum and its
                             * time at the export */
    uint32_t saved_q;
    uint64_t saved_now;
    zps_table_cur_t sweep;  /* sweep cursor (hash order) */
    uint64_t rng;           /* eviction's samples */
    zps_bound_stats_t bst;
};

#define S_AGE_MAX 32768u /* ages at or over it are kept at it by the sweep */

static inline uint16_t s_stamp(const float *row, size_t rf)
{
    uint16_t v;
    memcpy(&v, (const char *)(row + rf) - 2, 2);
    return v;
}

static inline void s_set_stamp(float *row, size_t rf, uint16_t v)
{
    memcpy((char *)(row + rf) - 2, &v, 2);
}

/* the job clock in stamp quanta, modulo 2^16 */
static inline uint16_t s_qnow(const zps_shard_t *sh)
{
    return (uint16_t)(sh->now / sh->q);
}

/* quanta from the row's last update to clock qnow (modulo 2^16: exact
 * while the sweep keeps every age under 2^16, see zps_shard_sweep) */
static inline uint32_t s_age(uint16_t qnow, const float *row, size_t rf)
{
    return (uint16_t)(qnow - s_stamp(row, rf));
}

zps_shard_t *zps_shard_new(const zps_optim_conf_t *o, size_t capacity_hint)
{
    zps_shard_t *sh = calloc(1, sizeof *sh);
    if (!sh)
        return NULL;
    sh->o = *o;
    sh->rf = sh->orf = zps_optim_row_floats(o);
    sh->q = 1;
    sh->pf = zps_optim_push_floats(o);
    sh->needs_init = o->init_scale != 0.0f;
    sh->mono0 = -1;
    sh->rng = 0x9e3779b97f4a7c15ull;
    sh->hint = capacity_hint;
    sh->t = zps_table_new((uint32_t)sh->rf, capacity_hint);
    sh->tmp_g = malloc(sh->pf * sizeof *sh->tmp_g);
    if (!sh->t || !sh->tmp_g)
        zps_shard_destroy(&sh);
    return sh;
}

int zps_shard_set_pool(zps_shard_t *sh, zps_pool_t *pool)
{
    if (sh->open)
        return ZPS_EINVAL;
    float *g = realloc(sh->tmp_g, zps_pool_threads(pool) * sh->pf * sizeof *g);
    if (!g)
        return ZPS_ENOMEM;
    sh->tmp_g = g;
    sh->pool = pool;
    return 0;
}

uint64_t zps_shard_split_requests(const zps_shard_t *sh) { return sh->split; }

void zps_shard_destroy(zps_shard_t **shp)
{
    zps_shard_t *sh = *shp;
    if (!sh)
        return;
    *shp = NULL;
    zps_table_destroy(&sh->t);
    free(sh->tmp_g);
    free(sh->rowp);
    free(sh->undo);
    free(sh->bdone);
    free(sh->skip);
    zps_sketch_destroy(&sh->sk);
    free(sh);
}

zps_table_t *zps_shard_table(zps_shard_t *sh) { return sh->t; }
const zps_optim_conf_t *zps_shard_optim(const zps_shard_t *sh) { return &sh->o; }

int zps_shard_adopt(zps_shard_t *sh, zps_table_t **t)
{
    if (sh->open || !*t || zps_table_row_floats(*t) != sh->rf)
        return ZPS_EINVAL;
    zps_table_destroy(&sh->t);
    sh->t = *t;
    *t = NULL;
    zps_table_set_limit(sh->t, sh->bnd.evict ? sh->bnd.max_keys : 0);
    if (sh->stamped) {
        /* stamps in the clock zps_shard_state_import restored: kept, or
         * put into this shard's quantum and clock (the wall clock moved on
         * since the export); without it, ages are unknown and every row
         * counts as updated now (nothing expires early) */
        const uint16_t qnow = s_qnow(sh);
        const uint16_t qsaved = sh->clock_known ? (uint16_t)(sh->saved_now / sh->saved_q) : 0;
        const uint64_t since = sh->now > sh->saved_now ? sh->now - sh->saved_now : 0;
        zps_table_cur_t cur = ZPS_TABLE_CUR_INIT;
        uint64_t key;
        float *row;
        while ((!sh->clock_known || sh->saved_q != sh->q || since) &&
               zps_table_next(sh->t, &cur, &key, &row)) {
            uint64_t age = 0;
            if (sh->clock_known) {
                age = ((uint64_t)s_age(qsaved, row, sh->rf) * sh->saved_q + since) / sh->q;
                age = age < S_AGE_MAX ? age : S_AGE_MAX;
            }
            s_set_stamp(row, sh->rf, (uint16_t)(qnow - age));
        }
        sh->sweep = (zps_table_cur_t)ZPS_TABLE_CUR_INIT;
    }
    sh->clock_known = 0;
    return 0;
}

int zps_shard_set_bound(zps_shard_t *sh, const zps_bound_conf_t *b)
{
    if (sh->open || zps_table_size(sh->t) != 0)
        return ZPS_EINVAL;
    int stamped = b->expire_s != 0 || b->evict;
    /* the stamp goes in the row's spare bytes (uf16 ftrl, odd dim), else
     * in one more float */
    size_t rf = sh->orf + (stamped && zps_optim_row_spare(&sh->o) < 2 ? 1 : 0);
    if (rf != sh->rf) {
        zps_table_t *t = zps_table_new((uint32_t)rf, sh->hint);
        if (!t)
            return ZPS_ENOMEM;
        zps_table_destroy(&sh->t);
        sh->t = t;
        sh->rf = rf;
        free(sh->undo);
        sh->undo = NULL;
        sh->undo_cap = 0;
    }
    sh->bnd = *b;
    sh->stamped = stamped;
    zps_table_set_limit(sh->t, b->evict ? b->max_keys : 0);
    /* quanta of 1/4 s, or longer for a long expiry: the span is then at
     * most 8192 quanta, far under S_AGE_MAX */
    uint64_t span = (uint64_t)b->expire_s * ZPS_SHARD_TICKS;
    sh->q = (uint32_t)(span > 8192 * 16 ? (span + 8191) / 8192 : 16);
    sh->span_q = (uint32_t)((span + sh->q - 1) / sh->q);
    return 0;
}

void zps_shard_clock(zps_shard_t *sh, int64_t ms)
{
    if (sh->bnd.wall_clock) {
        sh->now = ms > 0 ? (uint64_t)ms * ZPS_SHARD_TICKS / 1000 : 0;
        return;
    }
    if (sh->mono0 < 0 || ms < sh->mono0)
        sh->mono0 = ms;
    sh->now = sh->base + (uint64_t)(ms - sh->mono0) * ZPS_SHARD_TICKS / 1000;
}

void zps_shard_bound_stats(const zps_shard_t *sh, zps_bound_stats_t *out)
{
    *out = sh->bst;
    out->now = sh->now / ZPS_SHARD_TICKS;
}

size_t zps_shard_sweep(zps_shard_t *sh, size_t budget)
{
    if (!sh->stamped || sh->open)
        return 0;
    /* stamps are whole quanta: an age over span_q quanta is more than
     * span_q * q >= expire_s seconds since the update, never less */
    const uint32_t span_q = sh->span_q;
    const uint16_t qnow = s_qnow(sh);
    size_t rows = zps_table_size(sh->t), deleted = 0;
    if (budget > rows)
        budget = rows; /* once round at most */
    uint64_t key;
    float *row;
    /* the cursor is a hash: deletes behind or ahead of it do not disturb it */
    for (size_t seen = 0; seen < budget; seen++) {
        if (!zps_table_next(sh->t, &sh->sweep, &key, &row)) {
            sh->sweep = (zps_table_cur_t)ZPS_TABLE_CUR_INIT; /* round done: on from the start */
            if (!zps_table_next(sh->t, &sh->sweep, &key, &row))
                break;
        }
        uint32_t age = s_age(qnow, row, sh->rf);
        if (span_q && age > span_q) {
            if (zps_table_delete(sh->t, key) == 1)
                deleted++;
        } else if (age >= S_AGE_MAX) {
            s_set_stamp(row, sh->rf, (uint16_t)(qnow - S_AGE_MAX));
        }
    }
    sh->bst.expired += deleted;
    return deleted;
}

/* Is k one of the open push's keys (sorted, unique)? */
static int s_in_push(const zps_shard_t *sh, uint64_t k)
{
    if (!sh->open)
        return 0;
    size_t lo = 0, hi = sh->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sh->keys[mid] < k)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < sh->n && sh->keys[lo] == k;
}

size_t zps_shard_evict(zps_shard_t *sh, size_t count)
{
    size_t done = 0;
    if (!sh->stamped || zps_table_size(sh->t) == 0)
        return 0;
    const uint16_t qnow = s_qnow(sh);
    while (done < count && zps_table_size(sh->t) > 0) {
        /* sampled LRU: of ZPS_SHARD_EVICT_SAMPLES live rows (not the open
         * push's), the one updated longest ago */
        uint64_t best_key = 0, key;
        uint32_t best = 0;
        int have = 0;
        float *row;
        /* samples that hit the push's rows do not count, up to 8 times as
         * many draws: a sample is the first key at or after a random hash,
         * and rows never evicted (the push's) gather the gaps of evicted
         * neighbours in front of them, so they are drawn more and more */
        for (unsigned got = 0, draws = 0;
             got < ZPS_SHARD_EVICT_SAMPLES && draws < 8 * ZPS_SHARD_EVICT_SAMPLES; draws++) {
            sh->rng ^= sh->rng << 13, sh->rng ^= sh->rng >> 7, sh->rng ^= sh->rng << 17;
            if (!zps_table_sample(sh->t, sh->rng, &key, &row))
                break;
            if (s_in_push(sh, key))
                continue;
            got++;
            uint32_t v = s_age(qnow, row, sh->rf);
            if (!have || v > best) {
                best = v;
                best_key = key;
                have = 1;
            }
        }
        /* still nothing: the first row past a random point that is not the
         * push's, so eviction fails only when the push's rows are all there is */
        zps_table_cur_t cur = {sh->rng | 1, 0};
        for (int round = 0; !have && round < 2; round++, cur = (zps_table_cur_t)ZPS_TABLE_CUR_INIT)
            while (!have && zps_table_next(sh->t, &cur, &key, &row))
                if (!s_in_push(sh, key)) {
                    best_key = key;
                    have = 1;
                }
        if (!have || zps_table_delete(sh->t, best_key) != 1)
            break; /* nothing but the push's own rows */
        done++;
    }
    sh->bst.evicted += done;
    return done;
}

/* The next chunk's first keys start loading while this chunk's rows are
 * worked on (its find_batch then starts with them in cache) */
static inline void s_ahead(const zps_shard_t *sh, const uint64_t *keys, size_t n, size_t next)
{
#ifndef ZPS_SHARD_AHEAD
#define ZPS_SHARD_AHEAD 32 /* keys (-D for experiments; 0: off) */
#endif
    const size_t ahead = ZPS_SHARD_AHEAD;
    if (ahead && next < n)
        zps_table_prefetch(sh->t, keys + next, n - next < ahead ? n - next : ahead);
}

/* A request over a pool's threads goes in blocks of ZPS_SHARD_BLOCK keys
 * (whole chunks), taken in order from a shared counter by whichever
 * thread is free: on a busy machine a thread that loses its core for a
 * while holds up only the block it has, not a fixed share of the keys. */
_Static_assert(ZPS_SHARD_BLOCK % ZPS_SHARD_CHUNK == 0, "a block is whole chunks");

static inline size_t s_nblocks(size_t n) { return (n + ZPS_SHARD_BLOCK - 1) / ZPS_SHARD_BLOCK; }

/* keys [*lo, return) of block k of a request of n keys */
static inline size_t s_block(size_t k, size_t n, size_t *lo)
{
    *lo = k * ZPS_SHARD_BLOCK;
    return n - *lo < ZPS_SHARD_BLOCK ? n : *lo + ZPS_SHARD_BLOCK;
}

/* How many threads a request of n keys runs on: one for fewer than two
 * blocks (a helper's wake-up, tens of microseconds, would not pay) */
static unsigned s_parts(const zps_shard_t *sh, size_t n)
{
    unsigned t = zps_pool_threads(sh->pool);
    size_t blocks = s_nblocks(n);
    return blocks < 2 || t < 2 ? 1u : (unsigned)(blocks < t ? blocks : t);
}

typedef struct {
    zps_shard_t *sh;
    const uint64_t *keys;
    size_t n, blocks;
    float *out;
    atomic_size_t next; /* the next block to take */
} s_pull_t;

static void s_pull_part(void *arg, unsigned part, unsigned parts)
{
    (void)part;
    (void)parts;
    s_pull_t *p = arg;
    zps_shard_t *sh = p->sh;
    const uint64_t *keys = p->keys;
    const size_t dim = sh->o.dim;
    float *rows[ZPS_SHARD_CHUNK];
    for (size_t k; (k = atomic_fetch_add(&p->next, 1)) < p->blocks;) {
        size_t lo, hi = s_block(k, p->n, &lo);
        for (size_t i = lo; i < hi; i += ZPS_SHARD_CHUNK) {
            size_t c = hi - i < ZPS_SHARD_CHUNK ? hi - i : ZPS_SHARD_CHUNK;
            zps_table_find_batch(sh->t, keys + i, c, rows);
            s_ahead(sh, keys, p->n, i + c); /* into the next block too: it is
                                              * likely next here or on another core */
            float *out = p->out + i * dim;
            size_t found = 0;
            for (size_t j = 0; j < c; j++)
                found += rows[j] != NULL;
            if (found == c) { /* the usual case: one batched call */
                zps_optim_weights_n(&sh->o, rows, c, out);
                continue;
            }
            for (size_t j = 0; j < c; j++) {
                float *w = out + j * dim;
                if (rows[j])
                    zps_optim_weights(&sh->o, rows[j], w);
                else if (sh->needs_init)
                    zps_optim_initial_weights(&sh->o, keys[i + j], w);
                else
                    memset(w, 0, dim * sizeof *w);
            }
        }
    }
}

void zps_shard_pull(zps_shard_t *sh, const uint64_t *keys, size_t n, float *out)
{
    s_pull_t p = {sh, keys, n, s_nblocks(n), out, 0};
    unsigned parts = s_parts(sh, n);
    sh->split += parts > 1;
    zps_pool_run(sh->pool, parts, s_pull_part, &p);
}

int zps_shard_set_admit(zps_shard_t *sh, const zps_admit_conf_t *a)
{
    if (sh->open)
        return ZPS_EINVAL;
    if (a->mode == ZPS_ADMIT_COUNT && (a->count < 1 || a->count > ZPS_SKETCH_MAX || a->ids < 1))
        return ZPS_EINVAL;
    if (a->mode == ZPS_ADMIT_PROB && !(a->prob > 0 && a->prob <= 1))
        return ZPS_EINVAL;
    zps_sketch_t *sk = NULL;
    if (a->mode == ZPS_ADMIT_COUNT && !(sk = zps_sketch_new(a->ids, a->seed)))
        return ZPS_ENOMEM;
    zps_sketch_destroy(&sh->sk);
    sh->sk = sk;
    sh->adm = *a;
    sh->ast.sketch_bytes = sk ? zps_sketch_bytes(sk) : 0;
    return 0;
}

void zps_shard_admit_stats(const zps_shard_t *sh, zps_admit_stats_t *out) { *out = sh->ast; }

/* Is missing key k admitted by the push being begun? */
static int s_admitted(const zps_shard_t *sh, uint64_t k)
{
    if (sh->adm.mode == ZPS_ADMIT_COUNT)
        return zps_sketch_estimate(sh->sk, k) + 1 >= sh->adm.count;
    double u = (double)(zps_mix64(k, zps_mix64(sh->ast.push_seq, sh->adm.seed)) >> 11) *
               (1.0 / 9007199254740992.0);
    return u < sh->adm.prob;
}

#define S_ADM_HEAD (4 + 4 + 4 + 8 * 6)

static void s_put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void s_put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t s_get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t s_get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

#define S_BND_LEN (4 + 4 + 4 + 4 + 8 * 2)

int zps_shard_state_export(const zps_shard_t *sh, unsigned char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    const int adm = sh->adm.mode != ZPS_ADMIT_OFF;
    size_t skl = sh->sk ? zps_sketch_serial_size(sh->sk) : 0;
    size_t total = (adm ? S_ADM_HEAD + skl : 0) + (sh->stamped ? S_BND_LEN : 0);
    if (!total)
        return 0;
    unsigned char *b = malloc(total), *p = b;
    if (!b)
        return ZPS_ENOMEM;
    if (adm) {
        uint64_t pb;
        memcpy(&pb, &sh->adm.prob, 8);
        memcpy(p, "ZAD1", 4);
        s_put64(p + 4, (uint64_t)sh->adm.mode | ((uint64_t)sh->adm.count << 32));
        s_put64(p + 12, pb);
        s_put64(p + 20, sh->ast.admitted_keys);
        s_put64(p + 28, sh->ast.rejected_keys);
        s_put64(p + 36, sh->ast.rejected_pushes);
        s_put64(p + 44, sh->ast.push_seq);
        s_put64(p + 52, skl);
        if (skl)
            zps_sketch_serialize(sh->sk, p + S_ADM_HEAD);
        p += S_ADM_HEAD + skl;
    }
    if (sh->stamped) {
        memcpy(p, "ZBD1", 4);
        s_put32(p + 4, sh->q);
        s_put64(p + 8, sh->now);
        s_put64(p + 16, sh->bst.expired);
        s_put64(p + 24, sh->bst.evicted);
    }
    *buf = b;
    *len = total;
    return 0;
}

/* The blocks of a state blob, each at most once (NULL: absent) */
typedef struct {
    const unsigned char *adm, *bnd;
    size_t adm_len;
} s_blob_t;

/* 0, or ZPS_EPROTO with the reason in err. */
static int s_blocks(const unsigned char *buf, size_t len, s_blob_t *b, char *err, size_t errlen)
{
    *b = (s_blob_t){NULL, NULL, 0};
    for (size_t pos = 0; pos < len;) {
        const unsigned char *p = buf + pos;
        size_t left = len - pos;
        if (left >= S_ADM_HEAD && !b->adm && !memcmp(p, "ZAD1", 4) &&
            s_get64(p + 52) <= left - S_ADM_HEAD) {
            b->adm = p;
            b->adm_len = S_ADM_HEAD + (size_t)s_get64(p + 52);
            pos += b->adm_len;
        } else if (left >= S_BND_LEN && !b->bnd && !memcmp(p, "ZBD1", 4) &&
                   s_get32(p + 4) != 0 && s_get64(p + 8) / 64 < ((uint64_t)1 << 48)) {
            b->bnd = p;
            pos += S_BND_LEN;
        } else {
            snprintf(err, errlen, "shard state of %zu bytes: no admission or expiry block "
                     "at byte %zu (bad header or length)", len, pos);
            return ZPS_EPROTO;
        }
    }
    return 0;
}

int zps_shard_state_import(zps_shard_t *sh, const unsigned char *buf, size_t len, char *err,
                           size_t errlen)
{
    /* the blocks first, all of them, so that a bad one changes nothing */
    s_blob_t b;
    if (s_blocks(buf, len, &b, err, errlen))
        return ZPS_EPROTO;
    const unsigned char *adm = b.adm, *bnd = b.bnd;
    const size_t adm_len = b.adm_len;
    if (sh->open)
        return 0;
    zps_sketch_t *sk = NULL;
    if (adm && sh->adm.mode != ZPS_ADMIT_OFF) {
        uint32_t mode = (uint32_t)s_get64(adm + 4);
        if (mode == ZPS_ADMIT_COUNT && sh->adm.mode == ZPS_ADMIT_COUNT) {
            if (adm_len == S_ADM_HEAD) {
                snprintf(err, errlen, "count:N admission state without its sketch");
                return ZPS_EPROTO;
            }
            if (!(sk = zps_sketch_load(adm + S_ADM_HEAD, adm_len - S_ADM_HEAD, err, errlen)))
                return ZPS_EPROTO;
        }
        if (sk) {
            zps_sketch_destroy(&sh->sk);
            sh->sk = sk;
            sh->ast.sketch_bytes = zps_sketch_bytes(sk);
        }
        sh->ast.admitted_keys = s_get64(adm + 20);
        sh->ast.rejected_keys = s_get64(adm + 28);
        sh->ast.rejected_pushes = s_get64(adm + 36);
        sh->ast.push_seq = s_get64(adm + 44);
    }
    if (bnd && sh->stamped) {
        sh->saved_q = s_get32(bnd + 4);
        sh->saved_now = s_get64(bnd + 8);
        if (!sh->bnd.wall_clock) { /* the job clock goes on from the export */
            sh->base = sh->now = sh->saved_now;
            sh->mono0 = -1;
        }
        sh->clock_known = 1;
        sh->bst.expired = s_get64(bnd + 16);
        sh->bst.evicted = s_get64(bnd + 24);
    }
    return 0;
}

int zps_shard_state_merge(zps_shard_t *sh, const unsigned char *buf, size_t len, char *err,
                          size_t errlen)
{
    s_blob_t b;
    if (s_blocks(buf, len, &b, err, errlen))
        return ZPS_EPROTO;
    if (!b.adm || !sh->sk || b.adm_len == S_ADM_HEAD)
        return 0; /* no counts to take, or none to give */
    zps_sketch_t *sk = zps_sketch_load(b.adm + S_ADM_HEAD, b.adm_len - S_ADM_HEAD, err, errlen);
    if (!sk)
        return ZPS_EPROTO;
    int rc = zps_sketch_merge(sh->sk, sk);
    if (rc)
        snprintf(err, errlen, "its count-min sketch has another shape or seed (--admit-ids, "
                 "--seed)");
    zps_sketch_destroy(&sk);
    return rc;
}

int zps_shard_storage(const zps_shard_t *sh, char *buf, size_t len)
{
    return snprintf(buf, len, "row_floats=%zu,accum=%s,stamp_q=%u", sh->rf,
                    sh->o.accum == ZPS_ACCUM_UF16 ? "uf16" : "f32",
                    sh->stamped ? (unsigned)sh->q : 0u);
}

static int s_grow(zps_shard_t *sh, size_t n)
{
    if (sh->adm.mode != ZPS_ADMIT_OFF && sh->skip_cap < n) {
        uint8_t *k = realloc(sh->skip, n ? n : 1);
        if (!k)
            return ZPS_ENOMEM;
        sh->skip = k;
        sh->skip_cap = n;
    }
    size_t blocks = s_nblocks(n);
    if (sh->bdone_cap < blocks) {
        size_t *d = realloc(sh->bdone, blocks * sizeof *d);
        if (!d)
            return ZPS_ENOMEM;
        sh->bdone = d;
        sh->bdone_cap = blocks;
    }
    if (sh->rowp_cap < n) {
        float **r = realloc(sh->rowp, (n ? n : 1) * sizeof *r);
        if (!r)
            return ZPS_ENOMEM;
        sh->rowp = r;
        sh->rowp_cap = n;
    }
    if (sh->undo_cap < n * sh->rf) {
        float *u = realloc(sh->undo, (n > 0 ? n * sh->rf : 1) * sizeof *u);
        if (!u)
            return ZPS_ENOMEM;
        sh->undo = u;
        sh->undo_cap = n * sh->rf;
    }
    return 0;
}

/* rowp again if entries moved since it was filled (an eviction while the
 * push was open, or commit's inserts); keys found stay found: nothing
 * deletes the open push's own keys */
static void s_rowp_fresh(zps_shard_t *sh)
{
    if (zps_table_gen(sh->t) == sh->gen)
        return;
    float *r[ZPS_SHARD_CHUNK];
    for (size_t i = 0; i < sh->done; i += ZPS_SHARD_CHUNK) {
        size_t c = sh->done - i < ZPS_SHARD_CHUNK ? sh->done - i : ZPS_SHARD_CHUNK;
        zps_table_find_batch(sh->t, sh->keys + i, c, r);
        for (size_t j = 0; j < c; j++)
            if (sh->rowp[i + j])
                sh->rowp[i + j] = r[j];
    }
    sh->gen = zps_table_gen(sh->t);
}

/* rows [lo, hi) of the push, as they were */
static void s_undo_rows(zps_shard_t *sh, size_t lo, size_t hi)
{
    for (size_t j = lo; j < hi; j++)
        if (sh->rowp[j])
            memcpy(sh->rowp[j], sh->undo + j * sh->rf, sh->rf * sizeof *sh->undo);
}

/* every row the open push touched, as it was */
static void s_undo(zps_shard_t *sh)
{
    s_rowp_fresh(sh);
    s_undo_rows(sh, 0, sh->done);
    sh->open = 0;
}

/* One push being begun: its settings, and what each thread found */
typedef struct {
    zps_shard_t *sh;
    zps_optim_conf_t scaled; /* the push's step multiplier applied */
    const uint64_t *keys;
    const float *g;
    size_t n, blocks;
    float clip;
    uint16_t qnow;
    atomic_size_t next;      /* the next block to take */
    atomic_int stop;         /* a row was not finite: take no more blocks */
    struct {
        size_t missing, rejected, bad;
    } part[ZPS_POOL_MAX];
} s_begin_t;

/* Apply the push to the keys of block k, chunk by chunk, up to its first
 * row that is not finite (then the index of that key, else SIZE_MAX);
 * sh->bdone[k]: where it stopped */
static size_t s_begin_block(s_begin_t *b, size_t k, float *tmp_g, size_t *missing,
                            size_t *rejected)
{
    zps_shard_t *sh = b->sh;
    const uint64_t *keys = b->keys;
    const float *g = b->g;
    const size_t rf = sh->rf, pf = sh->pf;
    const int clipping = b->clip > 0;
    const int admitting = sh->adm.mode != ZPS_ADMIT_OFF;
    const int stamped = sh->stamped;
    const uint16_t qnow = b->qnow;
    const int own_stamp = rf > sh->orf; /* the stamp has a float of its own */
    float *cr[ZPS_SHARD_CHUNK];
    size_t lo, hi = s_block(k, b->n, &lo);
    size_t bad = SIZE_MAX, i;
    for (i = lo; i < hi && bad == SIZE_MAX; i += ZPS_SHARD_CHUNK) {
        size_t c = hi - i < ZPS_SHARD_CHUNK ? hi - i : ZPS_SHARD_CHUNK;
        zps_table_find_batch(sh->t, keys + i, c, sh->rowp + i);
        s_ahead(sh, keys, b->n, i + c);
        for (size_t j = i; j < i + c; j++) {
            float *row = sh->rowp[j], *u = sh->undo + j * rf;
            if (row) {
                /* a loop, not memcpy: rows are a few floats, and a libc
                 * call per key cost 4% of push throughput */
                for (size_t q = 0; q < rf; q++)
                    u[q] = row[q];
                if (stamped)
                    s_set_stamp(row, rf, qnow);
            } else {
                if (admitting) {
                    /* computed and checked like any row, not inserted if skipped */
                    int a = s_admitted(sh, keys[j]);
                    sh->skip[j] = (uint8_t)!a;
                    *rejected += !a;
                    *missing += a;
                } else {
                    ++*missing;
                }
                zps_optim_init_row(&sh->o, keys[j], u);
                if (own_stamp)
                    u[rf - 1] = 0.0f;
                if (stamped)
                    s_set_stamp(u, rf, qnow);
                row = u;
            }
            cr[j - i] = row;
            if (clipping) {
                memcpy(tmp_g, g + j * pf, pf * sizeof *g);
                zps_optim_clip(tmp_g, pf, b->clip);
                zps_optim_apply_n(&b->scaled, &cr[j - i], tmp_g, 1);
            }
        }
        if (!clipping)
            zps_optim_apply_n(&b->scaled, cr, g + i * pf, c);
        size_t f = zps_optim_rows_finite(&sh->o, cr, c);
        if (f < c)
            bad = i + f;
    }
    sh->bdone[k] = i < hi ? i : hi;
    return bad;
}

static void s_begin_part(void *arg, unsigned part, unsigned parts)
{
    (void)parts;
    s_begin_t *b = arg;
    float *tmp_g = b->sh->tmp_g + (size_t)part * b->sh->pf;
    size_t missing = 0, rejected = 0, bad = SIZE_MAX;
    for (size_t k; !atomic_load(&b->stop) && (k = atomic_fetch_add(&b->next, 1)) < b->blocks;) {
        size_t kb = s_begin_block(b, k, tmp_g, &missing, &rejected);
        if (kb != SIZE_MAX) {
            atomic_store(&b->stop, 1);
            if (kb < bad)
                bad = kb;
        }
    }
    b->part[part].missing = missing;
    b->part[part].rejected = rejected;
    b->part[part].bad = bad;
}

int zps_shard_push_begin(zps_shard_t *sh, const uint64_t *keys, size_t n, const float *g,
                         float lr_scale, float clip, zps_shard_push_t *out)
{
    out->new_keys = 0;
    out->bad = SIZE_MAX;
    sh->open = 0;
    if (s_grow(sh, n))
        return ZPS_ENOMEM;
    s_begin_t b;
    b.sh = sh;
    b.scaled = sh->o;
    b.scaled.lr *= lr_scale;
    b.keys = keys;
    b.g = g;
    b.n = n;
    b.blocks = s_nblocks(n);
    b.clip = clip;
    b.qnow = sh->stamped ? s_qnow(sh) : 0;
    atomic_init(&b.next, 0);
    atomic_init(&b.stop, 0);
    for (size_t k = 0; k < b.blocks; k++) /* a block never taken did nothing */
        sh->bdone[k] = k * ZPS_SHARD_BLOCK;
    sh->keys = keys;
    sh->n = n;
    unsigned parts = s_parts(sh, n);
    sh->split += parts > 1;
    zps_pool_run(sh->pool, parts, s_begin_part, &b);
    size_t missing = 0, rejected = 0, bad = SIZE_MAX;
    for (unsigned p = 0; p < parts; p++) {
        missing += b.part[p].missing;
        rejected += b.part[p].rejected;
        if (b.part[p].bad < bad)
            bad = b.part[p].bad;
    }
    if (bad != SIZE_MAX) { /* nothing was inserted: rowp is as found */
        for (size_t k = 0; k < b.blocks; k++)
            s_undo_rows(sh, k * ZPS_SHARD_BLOCK, sh->bdone[k]);
        sh->done = 0;
        out->bad = bad;
        return ZPS_ENONFINITE;
    }
    sh->done = n;
    sh->missing = out->new_keys = missing;
    sh->rejected = rejected;
    sh->gen = zps_table_gen(sh->t);
    sh->open = 1;
    return 0;
}

int zps_shard_push_commit(zps_shard_t *sh)
{
    if (!sh->open)
        return 0;
    size_t missing = sh->missing;
    if (missing && zps_table_reserve(sh->t, missing) != 0) {
        s_undo(sh);
        return ZPS_ENOMEM;
    }
    /* the new keys, a chunk at a time through the batched (prefetching) insert */
    uint64_t mk[ZPS_SHARD_CHUNK];
    size_t mj[ZPS_SHARD_CHUNK], cnt = 0;
    float *rows[ZPS_SHARD_CHUNK];
    const int admitting = sh->adm.mode != ZPS_ADMIT_OFF;
    for (size_t j = 0; missing && j < sh->n; j++) {
        if (!sh->rowp[j] && !(admitting && sh->skip[j])) {
            mk[cnt] = sh->keys[j];
            mj[cnt++] = j;
            missing--;
        }
        if (cnt == ZPS_SHARD_CHUNK || (cnt && (!missing || j + 1 == sh->n))) {
            if (zps_table_upsert_batch(sh->t, mk, cnt, rows, NULL) != 0) {
                /* rare after the reserve (a segment got far more than its
                 * share and memory ran out): take out every new key
                 * inserted so far, then put the rows back */
                for (size_t q = 0; q <= j; q++)
                    if (!sh->rowp[q] && !(admitting && sh->skip[q]))
                        (void)zps_table_delete(sh->t, sh->keys[q]);
                s_undo(sh);
                return ZPS_ENOMEM;
            }
            for (size_t q = 0; q < cnt; q++)
                memcpy(rows[q], sh->undo + mj[q] * sh->rf, sh->rf * sizeof *sh->undo);
            cnt = 0;
        }
    }
    if (admitting) {
        if (sh->rejected && sh->sk)
            for (size_t j = 0; j < sh->n; j++)
                if (!sh->rowp[j] && sh->skip[j])
                    zps_sketch_add(sh->sk, sh->keys[j]);
        sh->ast.admitted_keys += sh->missing;
        sh->ast.rejected_keys += sh->rejected;
        sh->ast.rejected_pushes += sh->rejected > 0;
        sh->ast.push_seq++;
    }
    sh->open = 0;
    return 0;
}

void zps_shard_push_abort(zps_shard_t *sh)
{
    if (sh->open)
        s_undo(sh);
}

void zps_shard_trim(zps_shard_t *sh, size_t keep)
{
    if (sh->open)
        return;
    if (sh->rowp_cap > keep) {
        free(sh->rowp);
        sh->rowp = NULL;
        sh->rowp_cap = 0;
    }
    if (sh->skip_cap > keep) {
        free(sh->skip);
        sh->skip = NULL;
        sh->skip_cap = 0;
    }
    if (sh->undo_cap > keep * sh->rf) {
        free(sh->undo);
        sh->undo = NULL;
        sh->undo_cap = 0;
    }
}
