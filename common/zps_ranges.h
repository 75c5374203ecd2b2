/* zps_ranges: the range table, which servers hold which keys.
 *
 * The hashed key space (zps_mix64(key, ZPS_SEED_PLACE)) is cut into
 * ZPS_RANGES = 4096 fixed ranges by its top 12 bits.  A table assigns each
 * range an ordered replica list ("chain") of up to ZPS_MAX_REPLICAS server
 * ranks; the first live one is the range's primary.  A table has a version
 * that only grows; whoever changes it (the coordinator, ps/ps_coord) bumps
 * it, and clients and servers compare versions to know they hold the
 * latest.
 *
 * The default table of S servers and R replicas (zps_ranges_init) gives
 * range r the home server h = floor(r S / 4096) and the chain
 * (h, h+1, ..., h+R-1) mod S: ring successors, as in chain replication's
 * and Dynamo's preference lists.  Every server is home of 4096/S ranges
 * (+-1), so keys spread as evenly as a hash gives (within 2% for 1..64
 * servers, tests/check_place.c), and zps_place(key, S) is exactly the home
 * server of the key's range: a job without replication is the default table
 * with R = 1, never changed, and needs no table at all.  The ranges a
 * server heads all share one chain, so its backups are the next R-1 ranks.
 *
 * zps_ranges_remove takes a failed server out of every chain, keeping the
 * order of the others (the next replica becomes primary); a range whose
 * last replica goes is "lost" (nrep 0).
 *
 * Joining: a range may also have one joining replica (join[r]), which
 * copies the range from its donor (donor[r], a replica) as of the table
 * version cut[r] at which the join began, and receives every push split by
 * a table of that version or later; the donor forwards it the pushes split
 * by older tables that it applies after the cut (docs/architecture.md,
 * "Joining").  A joiner takes pushes but no pulls until
 * zps_ranges_complete appends it to the chain.
 *
 * A plain value type (about 28 KB: 4096 x (1 + 2 x 3) bytes plus a
 * header), copied as it is; zps_ranges_encode/decode give its wire form
 * (little-endian, fixed layout, validated on decode). */
#ifndef ZPS_RANGES_H
#define ZPS_RANGES_H

#include <stddef.h>
#include <stdint.h>

#include "zps_hash.h"

#define ZPS_RANGE_BITS 12
#define ZPS_RANGES (1u << ZPS_RANGE_BITS)
#define ZPS_MAX_REPLICAS 3
#define ZPS_RANGES_MAX_SERVERS 4096u
#define ZPS_NO_RANK 0xffffu   /* join[r]: no joining replica */

typedef struct {
    uint64_t version;                              /* >= 1 once built */
    uint32_t nservers;                             /* rank slots 0..nservers-1 */
    uint32_t home;                                 /* servers of the default table (homes) */
    uint32_t replicas;                             /* R wanted (1..ZPS_MAX_REPLICAS) */
    uint8_t nrep[ZPS_RANGES];                      /* live replicas of each range */
    uint16_t rep[ZPS_RANGES][ZPS_MAX_REPLICAS];    /* their ranks, primary first */
    uint16_t join[ZPS_RANGES];                     /* joining replica, or ZPS_NO_RANK */
    uint16_t donor[ZPS_RANGES];                    /* its donor (a replica of the range) */
    uint64_t cut[ZPS_RANGES];                      /* the version its join began at */
    uint16_t out[ZPS_RANGES];                      /* a move: the replica the joiner replaces
                                                      when it completes (ZPS_NO_RANK: none) */
    uint32_t inc[ZPS_RANGES_MAX_SERVERS];          /* per rank: its incarnation, raised when
                                                      a new process of it starts joining (a
                                                      client then forgets what it sent the
                                                      old one: sequence numbers, key lists) */
} zps_ranges_t;

/* The range of a key. */
static inline uint32_t zps_range_of(uint64_t key)
{
    return (uint32_t)(zps_mix64(key, ZPS_SEED_PLACE) >> (64 - ZPS_RANGE_BITS));
}

/* The home server of a range among S (the default table's primary). */
static inline uint32_t zps_range_home(uint32_t range, uint32_t nservers)
{
    return (uint32_t)(((uint64_t)range * nservers) >> ZPS_RANGE_BITS);
}

/* The default table: version 1, range r on (home, home+1, ...) mod S,
 * min(R, S) replicas.  ZPS_EINVAL for S outside 1..ZPS_RANGES_MAX_SERVERS
 * or R outside 1..ZPS_MAX_REPLICAS. */
int zps_ranges_init(zps_ranges_t *t, uint32_t nservers, uint32_t replicas);

/* Room for servers that join later (zps-ctl add-server): rank slots
 * 0..slots-1, slots >= the servers the table was built with.  ZPS_EINVAL
 * if out of range.  The caller bumps the version if the table was
 * published already. */
int zps_ranges_set_slots(zps_ranges_t *t, uint32_t slots);

/* Take rank out of every chain (others keep their order), and out of every
 * join, as joiner (the join is dropped) or as donor (the join is dropped
 * too: the joiner's copy is incomplete).  Returns the number of ranges it
 * was removed from; the version grows by one if that is not 0.  *lost (may
 * be NULL) receives how many ranges have no replica left after the call. */
uint32_t zps_ranges_remove(zps_ranges_t *t, uint32_t rank, uint32_t *lost);

/* Start a join: joiner copies range from donor (a replica of it, not the
 * joiner) as of cut (the version the caller is about to publish).  The
 * joiner's incarnation is raised if it held nothing so far (a new process).  0, or
 * ZPS_EINVAL (the range has a join already, the joiner is a replica, the
 * donor is not, the chain has R replicas already).  The caller bumps the
 * version (to cut). */
int zps_ranges_join(zps_ranges_t *t, uint32_t range, uint32_t joiner, uint32_t donor,
                    uint64_t cut);

/* Start a move: as zps_ranges_join, but at completion the joiner takes the
 * place of out (a replica of the range, not the donor's requirement) in the
 * chain, so the chain may be full.  Used to rebalance onto an added server
 * and to drain a server being removed (ps/ps_coord).  If out is removed
 * before completion, the move becomes a plain join. */
int zps_ranges_move(zps_ranges_t *t, uint32_t range, uint32_t joiner, uint32_t donor,
                    uint32_t out, uint64_t cut);

/* The joins of joiner that began at cut are done: a move's joiner takes its
 * out's place in the chain; any other joiner becomes a replica, the primary
 * of the ranges whose home it is (so a server that failed and rejoined
 * serves the pulls it served before), else the last.  Returns how many;
 * the version grows by one if that is not 0. */
uint32_t zps_ranges_complete(zps_ranges_t *t, uint32_t joiner, uint64_t cut);

/* Does rank take pushes of range: a replica, or its joiner? */
static inline int zps_ranges_takes(const zps_ranges_t *t, uint32_t range, uint32_t rank)
{
    if (t->join[range] == rank)
        return 1;
    for (uint32_t i = 0; i < t->nrep[range]; i++)
        if (t->rep[range][i] == rank)
            return 1;
    return 0;
}

/* Is rank a replica of range? */
static inline int zps_ranges_has(const zps_ranges_t *t, uint32_t range, uint32_t rank)
{
    for (uint32_t i = 0; i < t->nrep[range]; i++)
        if (t->rep[range][i] == rank)
            return 1;
    return 0;
}

/* The primary of a range (UINT32_MAX if lost). */
static inline uint32_t zps_ranges_primary(const zps_ranges_t *t, uint32_t range)
{
    return t->nrep[range] ? t->rep[range][0] : UINT32_MAX;
}

/* Restore: a lost range (no replica, no join) gets rank as its one
 * replica, whose copy comes from a checkpoint (ps/ps_coord, "restore").
 * The caller raises rank's incarnation if it was not a member (a new
 * process) and bumps the version.  0, or ZPS_EINVAL. */
int zps_ranges_restore(zps_ranges_t *t, uint32_t range, uint32_t rank);

/* Ranges with no replica left. */
uint32_t zps_ranges_lost(const zps_ranges_t *t);

/* Ranges rank holds (as primary: *primary, may be NULL). */
uint32_t zps_ranges_count(const zps_ranges_t *t, uint32_t rank, uint32_t *primary);

/* Is rank in any chain, or joining any range? */
int zps_ranges_member(const zps_ranges_t *t, uint32_t rank);

/* Wire form: bytes needed, and the encoding (returns bytes written, 0 if
 * cap is too small). */
size_t zps_ranges_encoded_size(const zps_ranges_t *t);
size_t zps_ranges_encode(const zps_ranges_t *t, uint8_t *buf, size_t cap);

/* Decode and validate (magic, sizes, version >= 1, ranks < nservers, no
 * rank twice in a chain, nrep <= replicas).  0, or ZPS_EPROTO with err
 * saying what is wrong; t is untouched on error. */
int zps_ranges_decode(zps_ranges_t *t, const uint8_t *buf, size_t len, char *err, size_t errlen);

#endif
