/* zps_codec: gap-varint key frames (format in zps_codec.h).
 *
 * Design: one pass each way, no allocation.  The hot loops run only while a
 * worst-case varint (10 bytes) of output room or input remains, so they need
 * no per-byte bounds checks; the last few varints of a buffer go through a
 * checked path.  Dense key ranges encode as 1-byte varints, so the decoder
 * has a fast path for them: when 8 consecutive bytes all lack the
 * continuation bit and the running key is far enough from 2^64 that 8 gaps
 * of at most 128 cannot overflow, 8 keys are produced with one test.
 *
 * Errors from zps_keys_decode (all ZPS_EPROTO) and the offset stored in
 * *err_at:
 *   truncated input (mid-varint or too few varints)  -> len
 *   varint over 10 bytes, or 10th byte > 1            -> start of that varint
 *   gap that carries the key past UINT64_MAX          -> start of that varint
 *   bytes left after the n-th key                     -> first unused byte
 * Non-minimal varints (e.g. 0x80 0x00) are accepted, as LEB128 allows. */
#include "zps_codec.h"

#include <limits.h>
#include <string.h>

#include "zps_err.h"
#include "zps_hash.h"

#define S_CONT_MASK 0x8080808080808080ULL
/* Largest running key after which 8 one-byte gaps (each <= 128 including
 * the +1) surely stay <= UINT64_MAX. */
#define S_BLOCK_SAFE (UINT64_MAX - 8 * 128)

enum { S_TRUNC = 0, S_OVERLONG = -1 };

size_t zps_varint_put(uint64_t v, uint8_t *out)
{
    size_t i = 0;
    while (v >= 0x80) {
        out[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[i++] = (uint8_t)v;
    return i;
}

int zps_keys_check_sorted(const uint64_t *keys, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (keys[i] <= keys[i - 1])
            return ZPS_EINVAL;
    return 0;
}

long zps_keys_encode(const uint64_t *keys, size_t n, uint8_t *out, size_t cap)
{
    if (n == 0)
        return 0;
    if (cap > (size_t)LONG_MAX)
        cap = (size_t)LONG_MAX;

    size_t pos = 0;
    uint64_t prev = keys[0];
    uint64_t d = prev; /* value to write: first key, then gap - 1 */
    size_t i = 0;
    for (;;) {
        if (cap - pos >= 10) {
            if (d < 0x80)
                out[pos++] = (uint8_t)d;
            else
                pos += zps_varint_put(d, out + pos);
        } else {
            uint8_t tmp[10];
            size_t m = zps_varint_put(d, tmp);
            if (m > cap - pos) /* out of room: a caller bug outranks it */
                return zps_keys_check_sorted(keys + i, n - i) ? ZPS_EINVAL
                                                              : ZPS_ETOOBIG;
            memcpy(out + pos, tmp, m);
            pos += m;
        }
        if (++i == n)
            break;
        uint64_t k = keys[i];
        if (k <= prev)
            return ZPS_EINVAL;
        d = k - prev - 1;
        prev = k;
    }
    return (long)pos;
}

/* Reads one varint from p, of which avail bytes may be read.  Returns the
 * bytes used (1..10), S_TRUNC if the input ends first or S_OVERLONG.  With
 * avail >= 10 the bounds test never fires, and inlining lets the compiler
 * see that in the unchecked callers. */
static inline int s_get_varint(const uint8_t *p, size_t avail, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if ((size_t)i == avail)
            return S_TRUNC;
        uint64_t b = p[i];
        if (i == 9 && b > 1)
            return S_OVERLONG;
        x |= (b & 0x7f) << (7 * i);
        if (b < 0x80) {
            *v = x;
            return i + 1;
        }
    }
    return S_OVERLONG; /* not reached: a 10th byte <= 1 ends the varint */
}

/* Unchecked form for when at least 10 bytes remain and p[0] >= 0x80. */
static inline int s_get_varint10(const uint8_t *p, uint64_t *v)
{
    uint64_t x = p[0] & 0x7f;
    for (int i = 1; i < 9; i++) {
        uint64_t b = p[i];
        x |= (b & 0x7f) << (7 * i);
        if (b < 0x80) {
            *v = x;
            return i + 1;
        }
    }
    if (p[9] > 1)
        return S_OVERLONG;
    *v = x | ((uint64_t)p[9] << 63);
    return 10;
}

static int s_fail(size_t *err_at, size_t at)
{
    if (err_at)
        *err_at = at;
    return ZPS_EPROTO;
}

int zps_keys_decode(const uint8_t *buf, size_t len, size_t n, uint64_t *keys,
                    size_t *err_at)
{
    size_t pos = 0;
    if (n == 0)
        return len == 0 ? 0 : s_fail(err_at, 0);

    uint64_t v;
    int r = s_get_varint(buf, len, &v);
    if (r <= 0)
        return s_fail(err_at, r == S_TRUNC ? len : 0);
    uint64_t prev = v;
    keys[0] = prev;
    pos = (size_t)r;

    size_t i = 1;
    while (i < n) {
        if (len - pos >= 10) {
            const uint8_t *p = buf + pos;
            if (p[0] < 0x80) {
                uint64_t w;
                memcpy(&w, p, 8);
                if ((w & S_CONT_MASK) == 0 && n - i >= 8 && prev <= S_BLOCK_SAFE) {
                    uint64_t *k = keys + i;
                    prev += (uint64_t)p[0] + 1; k[0] = prev;
                    prev += (uint64_t)p[1] + 1; k[1] = prev;
                    prev += (uint64_t)p[2] + 1; k[2] = prev;
                    prev += (uint64_t)p[3] + 1; k[3] = prev;
                    prev += (uint64_t)p[4] + 1; k[4] = prev;
                    prev += (uint64_t)p[5] + 1; k[5] = prev;
                    prev += (uint64_t)p[6] + 1; k[6] = prev;
                    prev += (uint64_t)p[7] + 1; k[7] = prev;
                    i += 8;
                    pos += 8;
                    continue;
                }
                v = p[0];
                r = 1;
            } else {
                r = s_get_varint10(p, &v);
                if (r < 0)
                    return s_fail(err_at, pos);
            }
        } else {
            r = s_get_varint(buf + pos, len - pos, &v);
            if (r <= 0)
                return s_fail(err_at, r == S_TRUNC ? len : pos);
        }
        if (v >= UINT64_MAX - prev) /* prev + v + 1 > UINT64_MAX */
            return s_fail(err_at, pos);
        prev += v + 1;
        keys[i++] = prev;
        pos += (size_t)r;
    }
    if (pos != len)
        return s_fail(err_at, pos);
    return 0;
}

uint64_t zps_keys_sig(const uint64_t *keys, size_t n)
{
    return zps_hash_bytes64(n * 0x9e3779b97f4a7c15ULL, keys, n * sizeof *keys) | 1;
}
