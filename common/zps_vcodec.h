/* zps_vcodec: value codecs for float32 arrays on the wire.
 *
 * A codec turns n floats into a byte string of exactly zps_vc_size(c, n)
 * bytes and back.  All multi-byte fields are little-endian and buffers may
 * have any alignment.
 *
 *   ZPS_VC_F32   raw IEEE binary32, 4 bytes per value; lossless.
 *   ZPS_VC_F16   IEEE binary16, 2 bytes per value.  Magnitudes beyond the
 *                largest finite half (65504) are clamped to +-65504 (never
 *                infinity); values below 2^-14 become half subnormals
 *                (quantum 2^-24).  Relative error <= 2^-11 (nearest) or
 *                < 2^-10 (stochastic) in the normal half range.
 *   ZPS_VC_INT8  blocks of ZPS_VC_INT8_BLOCK (64) values, the last one
 *                shorter: a float32 scale s = max|x| / 127 (0 for an
 *                all-zero block; moved by one float ulp at the extremes:
 *                up where it is subnormal and 127 * s < max|x|, down where
 *                127 * s would overflow) then one int8 q per value, q = round(x / s)
 *                clamped to [-127, 127]; decoded x' = q * s.  Error <= s / 2
 *                (nearest) or < s (stochastic).  Size: 4 bytes per block plus
 *                1 per value.
 *
 * Rounding.  With rng == NULL, f16 and int8 round to nearest (ties to even).
 * With rng != NULL they round stochastically: a value between the two
 * neighbouring representable values a < x < b becomes b with probability
 * (x - a) / (b - a), so E[decode(encode(x))] = x (unbiased), which is what
 * error-feedback-free gradient compression needs.  Exceptions: the f16 clamp
 * at +-65504 and the int8 clamp at +-127 (only reachable through float
 * rounding of x / s at the block maximum), and inputs below 2^-64 in
 * magnitude, which f16 encodes as zero.  *rng is a splitmix64 state (any
 * 64-bit value, 0 included) that encode advances; the same state and input
 * give the same bytes.  f32 ignores rng.
 *
 * Inputs must be finite (the caller guarantees it; results are undefined
 * otherwise).  Decoding f16 reproduces whatever halves the buffer holds,
 * infinities and NaNs included, and a hostile int8 scale near FLT_MAX can
 * decode to infinity, so a receiver that requires finite values checks them
 * after decoding, exactly as for f32.  (What an encoder here produces always
 * decodes to finite values.)
 *
 * Pure functions: no state, thread-safe. */
#ifndef ZPS_VCODEC_H
#define ZPS_VCODEC_H

#include <stddef.h>
#include <stdint.h>

typedef enum { ZPS_VC_F32 = 0, ZPS_VC_F16 = 1, ZPS_VC_INT8 = 2 } zps_vcodec_t;

#define ZPS_VC_INT8_BLOCK 64

/* Exact encoded bytes for n floats; 0 for an unknown codec. */
size_t zps_vc_size(zps_vcodec_t c, size_t n);

/* Encode n floats into out (room for zps_vc_size(c, n) bytes).  rng: the
 * caller's splitmix64 state for stochastic rounding (advanced), or NULL for
 * round-to-nearest.  Returns the bytes written (= zps_vc_size(c, n)), 0 for
 * an unknown codec. */
size_t zps_vc_encode(zps_vcodec_t c, const float *in, size_t n, uint8_t *out, uint64_t *rng);

/* Decode exactly n floats from buf[0..len) into out.  Returns 0, or
 * ZPS_EPROTO when len != zps_vc_size(c, n), the codec is unknown, or an int8
 * block scale is negative (sign bit set, -0 included), infinite or NaN. */
int zps_vc_decode(zps_vcodec_t c, const uint8_t *buf, size_t len, size_t n, float *out);

/* "f32", "f16", "int8"; "unknown" for anything else. */
const char *zps_vc_name(zps_vcodec_t c);

/* 1 if every value is finite.  The lossy encoders need finite input: callers
 * send a frame with non-finite values as f32 instead. */
int zps_vc_all_finite(const float *in, size_t n);

/* Inverse of zps_vc_name (exact, case-sensitive): 0 and *c set, or
 * ZPS_EINVAL for an unknown name. */
int zps_vc_parse(const char *name, zps_vcodec_t *c);

#endif
