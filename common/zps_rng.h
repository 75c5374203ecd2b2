/* zps_rng: the one pseudo-random generator of the tree, header-only.
 *
 * splitmix64 (Steele, Lea and Flood, OOPSLA 2014): the state is a 64-bit
 * counter advanced by the golden-ratio constant, and each output is that
 * counter through the zps_mix64 finalizer with seed 0.  Any state is valid
 * (0 included), a step is a few cycles, and streams from nearby seeds are
 * uncorrelated after the mixing.  It is used where reproducible randomness
 * is needed: data shuffles and generated data sets, stochastic rounding, test
 * inputs.  It is not cryptographic: CURVE keys come from ZeroMQ
 * (zps_curve) and temporary file names from getrandom (zps_file).
 *
 * The sequence is part of zps's outputs (a seed fixes the shuffles, the
 * generated data and the figures built from them): changing it changes every
 * such output, so it must stay bit-identical. */
#ifndef ZPS_RNG_H
#define ZPS_RNG_H

#include <stdint.h>

#include "zps_hash.h"

#define ZPS_RNG_GAMMA 0x9e3779b97f4a7c15ULL

/* Next 64 random bits; advances *state. */
static inline uint64_t zps_rng_next(uint64_t *state)
{
    *state += ZPS_RNG_GAMMA;
    return zps_mix64(*state, 0);
}

/* Uniform double in [0, 1) from the top 53 bits of a random word. */
static inline double zps_rng_unit(uint64_t bits)
{
    return (double)(bits >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform double in (0, 1] (never 0: safe for log). */
static inline double zps_rng_unit_open0(uint64_t bits)
{
    return (double)((bits >> 11) + 1) * (1.0 / 9007199254740992.0);
}

/* Next uniform double in [0, 1). */
static inline double zps_rng_uniform(uint64_t *state)
{
    return zps_rng_unit(zps_rng_next(state));
}

#endif
