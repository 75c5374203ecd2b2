/* fuzz_keys: the key-frame codec (common/zps_codec.c).
 *
 * Input: a mode byte, then the frame.  The key count n handed to the decoder
 * is the number of varints the frame holds (bytes without the continuation
 * bit), that number plus or minus one, or an explicit 16-bit count (mode).
 *
 * Checks:
 *   - zps_keys_decode agrees with a plain byte-at-a-time reference decoder
 *     written from the format description (result, every key, and the error
 *     offset err_at), so the 8-key fast path and the unchecked 10-byte path
 *     are compared against the obvious code;
 *   - a decoded list is strictly increasing; re-encoding it gives at most
 *     len bytes (the encoder is minimal), decodes back to the same keys, needs
 *     exactly that capacity (one byte less: ZPS_ETOOBIG) and its signature is
 *     non-zero;
 *   - the frame bytes read as raw uint64 keys go through the encoder too:
 *     ZPS_EINVAL exactly when they are not strictly increasing, else a round
 *     trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "zps_codec.h"
#include "zps_err.h"

static int ref_fail(size_t *at, size_t where)
{
    *at = where;
    return ZPS_EPROTO;
}

/* The format, as documented in zps_codec.h / docs/protocol.md. */
static int ref_decode(const uint8_t *buf, size_t len, size_t n, uint64_t *keys, size_t *at)
{
    if (n == 0)
        return len == 0 ? 0 : ref_fail(at, 0);
    size_t pos = 0;
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        size_t start = pos;
        uint64_t v = 0;
        for (int j = 0;; j++) {
            if (pos == len)
                return ref_fail(at, len); /* truncated */
            uint8_t b = buf[pos];
            if (j == 9 && b > 1)
                return ref_fail(at, start); /* over 64 bits */
            v |= (uint64_t)(b & 0x7f) << (7 * j);
            pos++;
            if (b < 0x80)
                break;
        }
        if (i == 0) {
            prev = v;
        } else {
            if (v >= UINT64_MAX - prev)
                return ref_fail(at, start); /* gap past 2^64 - 1 */
            prev += v + 1;
        }
        keys[i] = prev;
    }
    if (pos != len)
        return ref_fail(at, pos); /* trailing bytes */
    return 0;
}

static void round_trip(const uint64_t *keys, size_t n, size_t max_len)
{
    size_t cap = zps_keys_bound(n);
    uint8_t *enc = malloc(cap ? cap : 1);
    uint64_t *back = malloc((n ? n : 1) * sizeof *back);
    FUZZ_CHECK(enc && back, "out of memory");
    long w = zps_keys_encode(keys, n, enc, cap);
    FUZZ_CHECK(w >= 0, "encode of a sorted list of %zu keys failed: %ld", n, w);
    FUZZ_CHECK((size_t)w <= max_len, "encoded %zu keys into %ld bytes, more than %zu", n, w,
               max_len);
    FUZZ_CHECK(n == 0 || (size_t)w >= n, "%zu keys in %ld bytes", n, w);
    size_t at = 0;
    int rc = zps_keys_decode(enc, (size_t)w, n, back, &at);
    FUZZ_CHECK(rc == 0, "decode of our own encoding failed at byte %zu", at);
    FUZZ_CHECK(n == 0 || memcmp(keys, back, n * sizeof *keys) == 0, "round trip changed keys");
    if (w > 0) {
        /* exactly w bytes of room: same bytes; one less: ETOOBIG */
        uint8_t *tight = malloc((size_t)w);
        FUZZ_CHECK(tight, "out of memory");
        long w2 = zps_keys_encode(keys, n, tight, (size_t)w);
        FUZZ_CHECK(w2 == w && memcmp(tight, enc, (size_t)w) == 0,
                   "encode with exact capacity gave %ld (want %ld)", w2, w);
        long w3 = zps_keys_encode(keys, n, tight, (size_t)w - 1);
        FUZZ_CHECK(w3 == ZPS_ETOOBIG, "encode into %ld bytes (need %ld) returned %ld", w - 1, w,
                   w3);
        free(tight);
    }
    FUZZ_CHECK(zps_keys_check_sorted(keys, n) == 0, "decoded list not sorted");
    FUZZ_CHECK(zps_keys_sig(keys, n) != 0, "signature 0");
    free(enc);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    size_t n;
    if ((mode & 3) == 3) {
        n = fuzz_u16(&in);
    } else {
        size_t ends = 0;
        for (size_t i = 0; i < in.n; i++)
            ends += in.p[i] < 0x80;
        n = (mode & 3) == 0 ? ends : (mode & 3) == 1 ? (ends ? ends - 1 : 0) : ends + 1;
    }
    const uint8_t *buf = in.p;
    size_t len = in.n;

    /* a copy of exactly len bytes, so ASan sees any read past the frame */
    uint8_t *frame = malloc(len ? len : 1);
    uint64_t *keys = malloc((n ? n : 1) * sizeof *keys);
    uint64_t *ref = malloc((n ? n : 1) * sizeof *ref);
    FUZZ_CHECK(frame && keys && ref, "out of memory");
    if (len)
        memcpy(frame, buf, len);

    size_t at = (size_t)-1, rat = (size_t)-1;
    int rc = zps_keys_decode(frame, len, n, keys, &at);
    int rrc = ref_decode(frame, len, n, ref, &rat);
    FUZZ_CHECK(rc == rrc, "decode of %zu keys from %zu bytes: %d, reference %d (at %zu)", n, len,
               rc, rrc, rat);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(keys[i] == ref[i], "key %zu: %llu, reference %llu", i,
                       (unsigned long long)keys[i], (unsigned long long)ref[i]);
        round_trip(keys, n, len);
    } else {
        FUZZ_CHECK(rc == ZPS_EPROTO, "decode error %d is not ZPS_EPROTO", rc);
        FUZZ_CHECK(at == rat, "error offset %zu, reference %zu (n %zu, len %zu)", at, rat, n, len);
        FUZZ_CHECK(at <= len, "error offset %zu past the frame (%zu)", at, len);
        /* without err_at: same result */
        FUZZ_CHECK(zps_keys_decode(frame, len, n, keys, NULL) == rc, "err_at NULL changes result");
    }

    /* the same bytes as raw keys through the encoder */
    size_t nk = len / 8;
    if (nk) {
        uint64_t *raw = malloc(nk * sizeof *raw);
        FUZZ_CHECK(raw, "out of memory");
        memcpy(raw, frame, nk * 8);
        if (mode & 4) { /* make them increasing (gaps raw >> shift, + 1) until 2^64 */
            unsigned shift = (mode >> 3) & 31;
            for (size_t i = 1; i < nk; i++) {
                uint64_t next = raw[i - 1] + (raw[i] >> (32 + shift)) + 1;
                if (next > raw[i - 1])
                    raw[i] = next;
            }
        }
        size_t cap = zps_keys_bound(nk);
        uint8_t *enc = malloc(cap);
        FUZZ_CHECK(enc, "out of memory");
        long w = zps_keys_encode(raw, nk, enc, cap);
        int sorted = zps_keys_check_sorted(raw, nk) == 0;
        if (sorted)
            round_trip(raw, nk, cap);
        else
            FUZZ_CHECK(w == ZPS_EINVAL, "unsorted keys encoded: %ld", w);
        free(enc);
        free(raw);
    }
    free(frame);
    free(keys);
    free(ref);
    return 0;
}
