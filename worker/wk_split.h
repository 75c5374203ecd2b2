/* wk_split: a request's keys and values cut by server, and put back.
 *
 * A client request names n sorted keys (and, for a push, n rows of dim
 * floats).  Server s gets the keys it owns (zps_place(key, S) == s), in
 * the same order; its reply carries one row per such key, which goes back
 * to the key's position in the caller's array.  This module is that
 * bookkeeping as pure functions over arrays the caller owns (no state, no
 * allocation):
 *
 *   wk_split_by_server   positions of each server's keys: pos/off
 *   wk_split_keys        one server's keys, gathered (a sorted list)
 *   wk_split_gather      one server's rows of a caller's array
 *   wk_split_scatter     one server's rows back into the caller's array
 *
 * pos[off[s] .. off[s+1]) are the indices (into the request) of server
 * s's keys, increasing; off has S + 1 entries, off[0] = 0, off[S] = n.
 * With one server pos is the identity (the client skips the split then and
 * sends the caller's arrays as they are). */
#ifndef WK_SPLIT_H
#define WK_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "zps_ranges.h"

/* Group the indices 0..n-1 of keys by owning server among S (>= 1).
 * owner: scratch of n entries (the server of each key; left as such).
 * Writes pos[0..n) and off[0..S]. */
void wk_split_by_server(const uint64_t *keys, size_t n, uint32_t S, uint32_t *owner,
                        uint32_t *pos, size_t *off);

/* The same by a range table (a replicated job): each key goes to every
 * replica of its range and its joiner if it has one (all = 1: a push) or
 * to its primary (all = 0: a pull).  range: scratch of n entries; pos must
 * hold n * (ZPS_MAX_REPLICAS + 1) entries (all) or n; off has
 * t->nservers + 1.  Keys of a range with no
 * replica left go nowhere: returns how many (0 normally). */
size_t wk_split_by_table(const uint64_t *keys, size_t n, const zps_ranges_t *t, int all,
                         uint32_t *range, uint32_t *pos, size_t *off);

/* out[j] = keys[pos[j]] for j < cnt (pos: one server's part, pos + off[s]). */
void wk_split_keys(const uint64_t *keys, const uint32_t *pos, size_t cnt, uint64_t *out);

/* Row j of out (dim floats) = row pos[j] of rows, for j < cnt. */
void wk_split_gather(const float *rows, size_t dim, const uint32_t *pos, size_t cnt, float *out);

/* Row pos[j] of out = row j of src, for j < cnt.  src may be unaligned
 * (a received frame): it is read with memcpy. */
void wk_split_scatter(const void *src, size_t dim, const uint32_t *pos, size_t cnt, float *out);

#endif
