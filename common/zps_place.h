/* zps_place: which server owns a key.
 *
 * One function, used by clients to split requests and by servers to reject
 * keys that are not theirs.  The key is mixed with zps_mix64 and the 64-bit
 * hashed space is cut into nservers equal ranges by a multiply-high
 * ((h * S) >> 64), which needs no division and is exact for any S.
 * Sequential ids, strided ids and Zipf-popular ids all spread evenly
 * (tests/check_place.c checks 1..64 servers to within 2%).  ps-lite's
 * unhashed range split would put ids 0..N all on server 0. */
#ifndef ZPS_PLACE_H
#define ZPS_PLACE_H

#include <stdint.h>

#include "zps_hash.h"

static inline uint32_t zps_place(uint64_t key, uint32_t nservers)
{
    uint64_t h = zps_mix64(key, ZPS_SEED_PLACE);
    return (uint32_t)(((unsigned __int128)h * nservers) >> 64);
}

#endif
