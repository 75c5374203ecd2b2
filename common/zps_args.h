/* zps_args: strict parsing of numeric command-line values.
 * Each returns 0, or ZPS_EINVAL if the whole string is not a valid number
 * in range (no trailing junk, no silent truncation). */
#ifndef ZPS_ARGS_H
#define ZPS_ARGS_H

#include <stdint.h>

int zps_parse_u64(const char *s, uint64_t *out);
int zps_parse_u32(const char *s, uint32_t *out);
int zps_parse_int(const char *s, int *out);
int zps_parse_float(const char *s, float *out);   /* finite only */
int zps_parse_double(const char *s, double *out); /* finite only */

#endif
