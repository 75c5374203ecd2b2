/* zps_place: which server owns a key when nothing has failed.
 *
 * One function, used by clients to split requests and by servers to reject
 * keys that are not theirs in a job without replication.  The key is mixed
 * with zps_mix64 into the hashed space, which the range table
 * (zps_ranges.h) cuts into 4096 fixed ranges by its top bits; range r's
 * home among S servers is floor(r S / 4096).  So this is the primary of
 * the default range table, and a replicated job whose servers are all alive
 * places every key exactly as a job without one.  Sequential ids, strided
 * ids and Zipf-popular ids all spread evenly (tests/check_place.c checks
 * 1..64 servers to within 2%); at most 4096 servers.  ps-lite's unhashed
 * range split would put ids 0..N all on server 0.
 * (Until 2026-12 this was the multiply-high (h * S) >> 64 of the whole
 * hash, which equals the range form only for S a power of two; checkpoints
 * record the placement, see ps/ps_ckpt.h.) */
#ifndef ZPS_PLACE_H
#define ZPS_PLACE_H

#include <stdint.h>

#include "zps_ranges.h"

static inline uint32_t zps_place(uint64_t key, uint32_t nservers)
{
    return zps_range_home(zps_range_of(key), nservers);
}

#endif
