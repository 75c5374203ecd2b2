/* check_codec: the gap-varint key frame and the raw float32 value frame.
 *
 * Key frames: round trips (empty, one key, dense ranges, 1M random sorted
 * keys, keys at the top of the 64-bit range), exact bytes for hand-computed
 * cases, and rejection of malformed input with the reported offset:
 *   truncated -> len, overlong varint / gap overflow -> start of the varint,
 *   trailing bytes -> first unused byte.
 * Value frames are not coded at all: a value frame is the raw little-endian
 * float32 array (proto/zps.proto), so the test only pins that a memcpy'd
 * frame keeps every bit pattern (NaN payloads, infinities, signed zeros,
 * denormals, FLT_MAX).
 * Key-list signatures (zps_keys_sig, the key cache): pinned to the values of
 * the zps that introduced them, since a worker and a server of different
 * builds must agree; and sensitive to every key and to the count. */
#include <check.h>
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_suites.h"
#include "zps_codec.h"
#include "zps_err.h"
#include "zps_rng.h"

/* Check records every passing ck_assert (a write to its result pipe), so
 * loops over many items test plainly and only report a failure. */
#define S_REQUIRE(cond, ...)          \
    do {                              \
        if (!(cond))                  \
            ck_abort_msg(__VA_ARGS__); \
    } while (0)

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Sum of the varint lengths the format prescribes for keys[0..n). */
static size_t s_expected_size(const uint64_t *keys, size_t n)
{
    uint8_t tmp[10];
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += zps_varint_put(i ? keys[i] - keys[i - 1] - 1 : keys[0], tmp);
    return total;
}

/* Encodes, checks the size against the format, decodes, compares; also
 * checks that exactly-sized output works and one byte less is ETOOBIG.
 * Returns the encoded length. */
static size_t s_round_trip(const uint64_t *keys, size_t n)
{
    size_t cap = zps_keys_bound(n);
    uint8_t *buf = malloc(cap ? cap : 1);
    uint64_t *out = malloc((n ? n : 1) * sizeof *out);
    ck_assert_ptr_nonnull(buf);
    ck_assert_ptr_nonnull(out);

    long len = zps_keys_encode(keys, n, buf, cap);
    ck_assert_int_ge(len, 0);
    ck_assert_uint_eq((size_t)len, s_expected_size(keys, n));
    size_t err_at = 12345;
    ck_assert_int_eq(zps_keys_decode(buf, (size_t)len, n, out, &err_at), 0);
    ck_assert_uint_eq(err_at, 12345); /* untouched on success */
    for (size_t i = 0; i < n; i++)
        S_REQUIRE(out[i] == keys[i], "key %zu: %llu, want %llu", i,
                  (unsigned long long)out[i], (unsigned long long)keys[i]);

    ck_assert_int_eq(zps_keys_encode(keys, n, buf, (size_t)len), len);
    if (len > 0)
        ck_assert_int_eq(zps_keys_encode(keys, n, buf, (size_t)len - 1), ZPS_ETOOBIG);
    free(buf);
    free(out);
    return (size_t)len;
}

/* Decode must fail with ZPS_EPROTO at offset want_at. */
static void s_expect_reject(const uint8_t *buf, size_t len, size_t n, size_t want_at)
{
    uint64_t *out = malloc((n ? n : 1) * sizeof *out);
    ck_assert_ptr_nonnull(out);
    size_t err_at = (size_t)-1;
    ck_assert_int_eq(zps_keys_decode(buf, len, n, out, &err_at), ZPS_EPROTO);
    ck_assert_uint_eq(err_at, want_at);
    ck_assert_int_eq(zps_keys_decode(buf, len, n, out, NULL), ZPS_EPROTO);
    free(out);
}

/* ---- varints and hand-computed frames ---------------------------------- */

START_TEST(test_varint_put)
{
    static const struct {
        uint64_t v;
        size_t len;
        uint8_t bytes[10];
    } cases[] = {
        {0, 1, {0x00}},
        {1, 1, {0x01}},
        {127, 1, {0x7f}},
        {128, 2, {0x80, 0x01}},
        {300, 2, {0xac, 0x02}},
        {16383, 2, {0xff, 0x7f}},
        {16384, 3, {0x80, 0x80, 0x01}},
        {1ULL << 63, 10, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}},
        {UINT64_MAX, 10, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t out[10];
        ck_assert_uint_eq(zps_varint_put(cases[i].v, out), cases[i].len);
        ck_assert_mem_eq(out, cases[i].bytes, cases[i].len);
    }
}
END_TEST

START_TEST(test_exact_frames)
{
    static const struct {
        size_t n;
        uint64_t keys[4];
        size_t len;
        uint8_t bytes[16];
    } cases[] = {
        /* dense: first key, then gaps of 1 -> gap-1 = 0 */
        {3, {1, 2, 3}, 3, {0x01, 0x00, 0x00}},
        /* the examples of docs/protocol.md */
        {3, {0, 1, 2}, 3, {0x00, 0x00, 0x00}},
        {1, {300}, 2, {0xac, 0x02}},
        {2, {5, 1000}, 3, {0x05, 0xe2, 0x07}}, /* 994 = 7*128 + 98 */
        /* 5; 10-5-1 = 4; 300-10-1 = 289 = 2*128 + 33 */
        {3, {5, 10, 300}, 4, {0x05, 0x04, 0xa1, 0x02}},
        /* 0; 127; 16384 = 2^14 needs 3 bytes */
        {3, {0, 128, 128 + 16385}, 5, {0x00, 0x7f, 0x80, 0x80, 0x01}},
        /* 0; UINT64_MAX-2 (10 bytes); 0 */
        {3, {0, UINT64_MAX - 1, UINT64_MAX}, 12,
         {0x00, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00}},
        {1, {UINT64_MAX}, 10,
         {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[40];
        long len = zps_keys_encode(cases[i].keys, cases[i].n, buf, sizeof buf);
        ck_assert_int_eq(len, (long)cases[i].len);
        ck_assert_mem_eq(buf, cases[i].bytes, cases[i].len);
        s_round_trip(cases[i].keys, cases[i].n);
    }
}
END_TEST

/* ---- round trips -------------------------------------------------------- */

START_TEST(test_empty)
{
    uint8_t buf[4] = {0};
    uint64_t k = 0;
    ck_assert_int_eq(zps_keys_encode(NULL, 0, NULL, 0), 0);
    ck_assert_int_eq(zps_keys_encode(&k, 0, buf, sizeof buf), 0);
    ck_assert_int_eq(zps_keys_decode(buf, 0, 0, &k, NULL), 0);
    ck_assert_int_eq(zps_keys_check_sorted(NULL, 0), 0);
    s_expect_reject(buf, 1, 0, 0); /* one trailing byte */
}
END_TEST

START_TEST(test_one_key)
{
    const uint64_t vals[] = {0, 1, 127, 128, 1ULL << 32, (1ULL << 63) - 1,
                             1ULL << 63, UINT64_MAX - 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        s_round_trip(&vals[i], 1);
    ck_assert_uint_eq(s_round_trip(&vals[0], 1), 1);
    ck_assert_uint_eq(s_round_trip(&vals[3], 1), 2);
    ck_assert_uint_eq(s_round_trip(&vals[8], 1), 10);
}
END_TEST

START_TEST(test_near_max)
{
    const uint64_t a[] = {0, UINT64_MAX - 1, UINT64_MAX};
    const uint64_t b[] = {UINT64_MAX - 1, UINT64_MAX};
    const uint64_t c[] = {0, UINT64_MAX};
    const uint64_t d[] = {0, 1ULL << 63, UINT64_MAX};
    ck_assert_uint_eq(s_round_trip(a, 3), 12);
    ck_assert_uint_eq(s_round_trip(b, 2), 11);
    ck_assert_uint_eq(s_round_trip(c, 2), 11); /* gap-1 = UINT64_MAX - 1 */
    ck_assert_uint_eq(s_round_trip(d, 3), 1 + 9 + 9); /* 2^63-1, 2^63-2 */
}
END_TEST

/* 0..N-1 costs one zero byte per key; the same run ending at UINT64_MAX
 * goes through the decoder's overflow guard for 8-key blocks. */
START_TEST(test_dense)
{
    const size_t n = 1000000;
    uint64_t *keys = malloc(n * sizeof *keys);
    ck_assert_ptr_nonnull(keys);
    for (size_t i = 0; i < n; i++)
        keys[i] = i;
    ck_assert_uint_eq(s_round_trip(keys, n), n);
    for (size_t i = 0; i < n; i++)
        keys[i] = UINT64_MAX - (n - 1) + i;
    ck_assert_uint_eq(s_round_trip(keys, n), 10 + (n - 1));
    /* dense with varying small gaps (all 1-byte) */
    uint64_t st = 5, k = 1000;
    for (size_t i = 0; i < n; i++) {
        keys[i] = k;
        k += 1 + zps_rng_next(&st) % 128;
    }
    ck_assert_uint_eq(s_round_trip(keys, n), 2 + (n - 1));
    free(keys);
}
END_TEST

START_TEST(test_random_1m)
{
    const size_t n = 1000000;
    uint64_t *keys = malloc(n * sizeof *keys);
    ck_assert_ptr_nonnull(keys);
    uint64_t st = 99;

    /* gaps of random bit length 0..40: every varint length 1..6 is mixed */
    uint64_t k = zps_rng_next(&st) >> 8;
    for (size_t i = 0; i < n; i++) {
        keys[i] = k;
        unsigned bits = (unsigned)(zps_rng_next(&st) % 41);
        k += 1 + (bits ? zps_rng_next(&st) >> (64 - bits) : 0);
    }
    s_round_trip(keys, n);

    /* uniform random 64-bit ids, sorted and deduplicated */
    for (size_t i = 0; i < n; i++)
        keys[i] = zps_rng_next(&st);
    qsort(keys, n, sizeof *keys, s_cmp_u64);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || keys[i] != keys[m - 1])
            keys[m++] = keys[i];
    s_round_trip(keys, m);
    free(keys);
}
END_TEST

/* ---- encoder input checks ---------------------------------------------- */

START_TEST(test_encode_rejects_unsorted)
{
    uint8_t buf[64];
    const uint64_t unsorted[] = {1, 5, 3};
    const uint64_t dup[] = {1, 2, 2, 3};
    const uint64_t dup0[] = {0, 0};
    const uint64_t desc_max[] = {UINT64_MAX, 0};
    ck_assert_int_eq(zps_keys_encode(unsorted, 3, buf, sizeof buf), ZPS_EINVAL);
    ck_assert_int_eq(zps_keys_encode(dup, 4, buf, sizeof buf), ZPS_EINVAL);
    ck_assert_int_eq(zps_keys_encode(dup0, 2, buf, sizeof buf), ZPS_EINVAL);
    ck_assert_int_eq(zps_keys_encode(desc_max, 2, buf, sizeof buf), ZPS_EINVAL);
    ck_assert_int_eq(zps_keys_check_sorted(unsorted, 3), ZPS_EINVAL);
    ck_assert_int_eq(zps_keys_check_sorted(dup, 4), ZPS_EINVAL);
    ck_assert_int_eq(zps_keys_check_sorted(dup, 2), 0);
    ck_assert_int_eq(zps_keys_check_sorted(desc_max, 1), 0);
    /* a bad list is reported as such even when the buffer is also short */
    ck_assert_int_eq(zps_keys_encode(unsorted, 3, buf, 1), ZPS_EINVAL);
    ck_assert_int_eq(zps_keys_encode(desc_max, 2, buf, 3), ZPS_EINVAL);
    ck_assert_int_eq(zps_keys_encode(dup, 2, buf, 1), ZPS_ETOOBIG);
    ck_assert_int_eq(zps_keys_encode(dup, 2, buf, 0), ZPS_ETOOBIG);
}
END_TEST

/* ---- decoder rejections ------------------------------------------------ */

/* A frame mixing every varint length, so truncation hits both the checked
 * tail path and the fast path of the decoder. */
static size_t s_mixed_frame(uint64_t *keys, size_t *n, uint8_t *buf, size_t cap)
{
    size_t m = 0;
    keys[m++] = 3;
    for (unsigned bits = 1; bits <= 61; bits += 3) {
        keys[m] = keys[m - 1] + (1ULL << bits);
        m++;
    }
    for (int i = 0; i < 20; i++) {
        keys[m] = keys[m - 1] + 1 + (uint64_t)(i % 5);
        m++;
    }
    keys[m++] = UINT64_MAX;
    *n = m;
    long len = zps_keys_encode(keys, m, buf, cap);
    ck_assert_int_gt(len, 0);
    return (size_t)len;
}

START_TEST(test_reject_truncated)
{
    uint64_t keys[64];
    uint8_t buf[640];
    size_t n;
    size_t len = s_mixed_frame(keys, &n, buf, sizeof buf);
    for (size_t cut = 0; cut < len; cut++)
        s_expect_reject(buf, cut, n, cut);
    /* a single key cut anywhere */
    const uint64_t big = UINT64_MAX;
    uint8_t one[10];
    ck_assert_int_eq(zps_keys_encode(&big, 1, one, sizeof one), 10);
    for (size_t cut = 0; cut < 10; cut++)
        s_expect_reject(one, cut, 1, cut);
}
END_TEST

START_TEST(test_reject_wrong_count_and_trailing)
{
    uint64_t keys[64];
    uint8_t buf[640 + 1];
    size_t n;
    size_t len = s_mixed_frame(keys, &n, buf, sizeof buf - 1);
    /* one key too many: runs out of input */
    s_expect_reject(buf, len, n + 1, len);
    /* one key too few: the last varint (UINT64_MAX - prev - 1) is left over */
    uint8_t tmp[10];
    size_t last = zps_varint_put(keys[n - 1] - keys[n - 2] - 1, tmp);
    s_expect_reject(buf, len, n - 1, len - last);
    /* trailing bytes, complete or not */
    buf[len] = 0x00;
    s_expect_reject(buf, len + 1, n, len);
    buf[len] = 0x80;
    s_expect_reject(buf, len + 1, n, len);
    /* zero keys expected but bytes present */
    s_expect_reject(buf, len, 0, 0);
}
END_TEST

START_TEST(test_reject_overlong)
{
    uint8_t buf[64];
    /* 11-byte varint as the first key */
    memset(buf, 0x80, 10);
    buf[10] = 0x00;
    s_expect_reject(buf, 11, 1, 0);
    /* 10 bytes whose last byte is > 1 (value >= 2^64) */
    memset(buf, 0xff, 9);
    buf[9] = 0x02;
    s_expect_reject(buf, 10, 1, 0);
    buf[9] = 0x81;
    s_expect_reject(buf, 11, 1, 0);
    /* 10th byte == 1 is the largest legal varint, 0 a legal redundant one */
    buf[9] = 0x01;
    uint64_t k;
    ck_assert_int_eq(zps_keys_decode(buf, 10, 1, &k, NULL), 0);
    ck_assert_uint_eq(k, UINT64_MAX);
    buf[9] = 0x00;
    ck_assert_int_eq(zps_keys_decode(buf, 10, 1, &k, NULL), 0);
    ck_assert_uint_eq(k, UINT64_MAX >> 1);

    /* as a later key (the decoder's unchecked path: an overlong varint
     * always has 10 bytes of input), at the end and with input after it */
    uint64_t out[40];
    buf[0] = 0x05;
    memset(buf + 1, 0x80, 10);
    buf[11] = 0x00;
    s_expect_reject(buf, 12, 2, 1);
    memset(buf + 12, 0x00, 30);
    s_expect_reject(buf, 42, 32, 1);
    /* 10th byte 2 after a valid key, fast path */
    memset(buf + 1, 0xff, 9);
    buf[10] = 0x02;
    s_expect_reject(buf, 42, 32, 1);
    ck_assert_int_eq(zps_keys_decode(buf, 42, 32, out, NULL), ZPS_EPROTO);
}
END_TEST

START_TEST(test_reject_gap_overflow)
{
    uint8_t buf[64];
    size_t p;
    /* UINT64_MAX then any gap */
    p = zps_varint_put(UINT64_MAX, buf);
    buf[p++] = 0x00;
    s_expect_reject(buf, p, 2, 10);
    /* UINT64_MAX-1 then gap-1 = 1 (would be UINT64_MAX + 1); gap-1 = 0 is ok */
    p = zps_varint_put(UINT64_MAX - 1, buf);
    buf[p++] = 0x01;
    s_expect_reject(buf, p, 2, 10);
    buf[p - 1] = 0x00;
    uint64_t out[32];
    ck_assert_int_eq(zps_keys_decode(buf, p, 2, out, NULL), 0);
    ck_assert_uint_eq(out[1], UINT64_MAX);
    /* 1 then gap-1 = UINT64_MAX - 1: 1 + UINT64_MAX overflows */
    buf[0] = 0x01;
    p = 1 + zps_varint_put(UINT64_MAX - 1, buf + 1);
    s_expect_reject(buf, p, 2, 1);
    /* 0 then gap-1 = UINT64_MAX: also overflows (2^64) */
    buf[0] = 0x00;
    p = 1 + zps_varint_put(UINT64_MAX, buf + 1);
    s_expect_reject(buf, p, 2, 1);
    /* one-byte gaps climbing over the top with input to spare (fast path):
     * UINT64_MAX-1000, then gaps of 128; the 8th would pass UINT64_MAX */
    p = zps_varint_put(UINT64_MAX - 1000, buf);
    size_t first = p;
    memset(buf + p, 0x7f, 30);
    p += 30;
    s_expect_reject(buf, p, 31, first + 7);
    /* UINT64_MAX-1024 is the last start for a decoded block of 8 gaps of
     * 128: it lands exactly on UINT64_MAX and the 9th gap overflows */
    p = zps_varint_put(UINT64_MAX - 1024, buf);
    memset(buf + p, 0x7f, 9);
    ck_assert_int_eq(zps_keys_decode(buf, p + 8, 9, out, NULL), 0);
    ck_assert_uint_eq(out[8], UINT64_MAX);
    s_expect_reject(buf, p + 9, 10, p + 8);
    memset(buf + p + 9, 0x00, 20); /* same with more input behind */
    s_expect_reject(buf, p + 29, 30, p + 8);
}
END_TEST

/* Random bytes: the decoder never reads out of bounds (ASan run) and any
 * accepted frame is strictly increasing and re-encodes to at most its
 * length (equal unless it used redundant varints). */
START_TEST(test_decode_garbage)
{
    uint64_t st = 1234;
    uint8_t buf[48], re[480];
    uint64_t keys[48];
    int accepted = 0;
    for (int iter = 0; iter < 200000; iter++) {
        size_t len = zps_rng_next(&st) % sizeof buf;
        uint64_t r = zps_rng_next(&st);
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)(zps_rng_next(&st) >> (r & 1 ? 56 : 57)); /* often < 0x80 */
        size_t n = len ? zps_rng_next(&st) % (len + 1) : 0;
        if (r & 2)
            n = len; /* all one-byte varints would fit exactly */
        uint8_t *in = malloc(len ? len : 1); /* exact size, for ASan */
        memcpy(in, buf, len);
        size_t err_at = (size_t)-1;
        int rc = zps_keys_decode(in, len, n, keys, &err_at);
        free(in);
        if (rc == 0) {
            accepted++;
            S_REQUIRE(zps_keys_check_sorted(keys, n) == 0, "iter %d: unsorted", iter);
            long m = zps_keys_encode(keys, n, re, sizeof re);
            S_REQUIRE(m >= 0 && (size_t)m <= len, "iter %d: re-encoded to %ld > %zu",
                      iter, m, len);
        } else {
            S_REQUIRE(rc == ZPS_EPROTO && err_at <= len, "iter %d: rc %d err_at %zu",
                      iter, rc, err_at);
        }
    }
    ck_assert_int_gt(accepted, 1000);
}
END_TEST

/* ---- value frames ------------------------------------------------------- */

/* Values computed by zps at commit af77f65 (before zps_keys_sig moved from
 * the file checksum zps_checksum64 to zps_hash_bytes64): a changed value
 * would make every cached push of a mixed-version job miss or be refused. */
START_TEST(test_keys_sig_pinned)
{
    uint64_t keys[5] = {1, 2, 3, 1000, UINT64_MAX};
    static uint64_t many[1000];
    for (uint64_t i = 0; i < 1000; i++)
        many[i] = i * i + 7;
    ck_assert_uint_eq(zps_keys_sig(keys, 0), 0x952f14f1e8ddc491ULL);
    ck_assert_uint_eq(zps_keys_sig(keys, 1), 0x5ef5ba165c7620d9ULL);
    ck_assert_uint_eq(zps_keys_sig(keys, 5), 0x1918fd4f52dcdf43ULL);
    ck_assert_uint_eq(zps_keys_sig(many, 1000), 0xeb2cc9f56d206b09ULL);
    /* never 0; any one key changed, or the count, changes it */
    uint64_t base = zps_keys_sig(many, 1000);
    for (size_t i = 0; i < 1000; i++) {
        many[i] ^= 1ULL << (i % 64);
        S_REQUIRE(zps_keys_sig(many, 1000) != base && zps_keys_sig(many, 1000) != 0,
                  "key %zu changed, same signature", i);
        many[i] ^= 1ULL << (i % 64);
    }
    ck_assert_uint_ne(zps_keys_sig(many, 999), base);
}
END_TEST

START_TEST(test_value_frame_bits)
{
    static const uint32_t bits[] = {
        0x7fc00000u, /* quiet NaN */
        0x7fc12345u, /* quiet NaN with payload */
        0x7f800001u, /* signalling NaN */
        0xffc00001u, /* negative NaN with payload */
        0x7f800000u, /* +inf */
        0xff800000u, /* -inf */
        0x00000000u, /* +0 */
        0x80000000u, /* -0 */
        0x00000001u, /* smallest denormal */
        0x007fffffu, /* largest denormal */
        0x80000001u, /* negative denormal */
        0x00800000u, /* FLT_MIN */
        0x7f7fffffu, /* FLT_MAX */
        0xff7fffffu, /* -FLT_MAX */
        0x3f800000u, /* 1.0 */
    };
    enum { N = sizeof bits / sizeof bits[0] };
    float vals[N], back[N];
    memcpy(vals, bits, sizeof vals);
    ck_assert(vals[12] == FLT_MAX && vals[11] == FLT_MIN && vals[14] == 1.0f);

    /* sender: the frame is the float array itself */
    uint8_t frame[N * 4];
    memcpy(frame, vals, sizeof frame);
    /* ...which is little-endian float32 on the wire */
    for (size_t i = 0; i < N; i++)
        for (int b = 0; b < 4; b++)
            ck_assert_uint_eq(frame[4 * i + b], (bits[i] >> (8 * b)) & 0xff);
    /* receiver: copy back out, bits identical */
    memcpy(back, frame, sizeof back);
    ck_assert_mem_eq(back, bits, sizeof back);
}
END_TEST

Suite *suite_codec(void)
{
    Suite *s = suite_create("codec");
    TCase *tc = tcase_create("frames");
    tcase_add_test(tc, test_varint_put);
    tcase_add_test(tc, test_exact_frames);
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_one_key);
    tcase_add_test(tc, test_near_max);
    tcase_add_test(tc, test_encode_rejects_unsorted);
    tcase_add_test(tc, test_reject_truncated);
    tcase_add_test(tc, test_reject_wrong_count_and_trailing);
    tcase_add_test(tc, test_reject_overlong);
    tcase_add_test(tc, test_reject_gap_overflow);
    tcase_add_test(tc, test_value_frame_bits);
    tcase_add_test(tc, test_keys_sig_pinned);
    suite_add_tcase(s, tc);

    tc = tcase_create("bulk");
    tcase_set_timeout(tc, 60); /* 1M-key frames, slower under ASan */
    tcase_add_test(tc, test_dense);
    tcase_add_test(tc, test_random_1m);
    tcase_add_test(tc, test_decode_garbage);
    suite_add_tcase(s, tc);
    return s;
}
