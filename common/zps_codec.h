/* zps_codec: the key frame.
 *
 * A key frame holds n sorted, strictly increasing uint64 keys.  The first key
 * is written as a LEB128 varint; every following key as the varint of its gap
 * minus one (k[i] - k[i-1] - 1).  Keys sorted by id (not by their placement
 * hash) from a hashed CTR vocabulary mostly take 2-4 bytes; dense ranges take
 * one byte per key.  Because gaps are >= 1 by construction, a decoded list is
 * always strictly increasing: an unsorted or duplicate list cannot be encoded,
 * and the decoder rejects gaps that overflow 2^64, varints longer than 10
 * bytes, trailing bytes and truncated input.
 *
 * Buffers belong to the caller; nothing here allocates. */
#ifndef ZPS_CODEC_H
#define ZPS_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* Worst-case encoded size of n keys (10 bytes each). */
static inline size_t zps_keys_bound(size_t n) { return n * 10; }

/* Returns 0 if keys[0..n) is strictly increasing, else ZPS_EINVAL. */
int zps_keys_check_sorted(const uint64_t *keys, size_t n);

/* Encode n strictly increasing keys into out (capacity cap bytes).
 * Returns the number of bytes written, or a negative ZPS_E* code
 * (ZPS_EINVAL if keys are not strictly increasing, ZPS_ETOOBIG if cap is
 * too small). */
long zps_keys_encode(const uint64_t *keys, size_t n, uint8_t *out, size_t cap);

/* Decode exactly n keys from buf[0..len) into keys (room for n).
 * Returns 0, or ZPS_EPROTO if the buffer is truncated, has trailing bytes,
 * a varint longer than 10 bytes or a gap that overflows 64 bits.
 * On error, *err_at (if not NULL) receives the byte offset of the problem. */
int zps_keys_decode(const uint8_t *buf, size_t len, size_t n, uint64_t *keys,
                    size_t *err_at);

/* Signature of a key list for key caching (never 0): a 64-bit hash
 * (zps_hash_bytes64, zps_hash.h) of the keys and their count; its values
 * never change, so clients and servers of different builds agree. */
uint64_t zps_keys_sig(const uint64_t *keys, size_t n);

/* Single varint helpers (used by the codec and by tests). */
size_t zps_varint_put(uint64_t v, uint8_t *out); /* needs 10 bytes of room */

#endif
