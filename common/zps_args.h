/* zps_args: command-line arguments, read by the same rules in every zps
 * binary.
 *
 * Numbers are base 10, always: "010" is ten and "08" is eight (strtoul's
 * base 0 would read octal and refuse 08), "0x10" is refused.  An integer is
 * decimal digits only, with a leading '-' for the signed ones; a sign on an
 * unsigned value, spaces, trailing junk and a value past the type's range
 * are refused, never truncated or wrapped.  A real is a decimal number with
 * an optional sign, fraction and exponent ("-1.5e-3", ".5", "2."): no hex
 * floats, inf or nan, and it must be finite.  Each parser returns 0, or
 * ZPS_EINVAL and leaves *out alone.
 *
 * Options: zps_getopt is getopt_long with the rules every main shares: long
 * options as `--name value` or `--name=value`; names exact (getopt_long's
 * unambiguous abbreviations are refused, so `--epoch` is an unknown option,
 * not `--epochs`); an unknown option, a missing value and a value given to a
 * flag are refused with a message naming the option.  The caller loops
 * until -1 and then looks at argv[optind..] for positional arguments. */
#ifndef ZPS_ARGS_H
#define ZPS_ARGS_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

int zps_parse_u64(const char *s, uint64_t *out);
int zps_parse_u32(const char *s, uint32_t *out);
int zps_parse_int(const char *s, int *out);
int zps_parse_float(const char *s, float *out);   /* finite only */
int zps_parse_double(const char *s, double *out); /* finite only */

/* Why the value v of a numeric option was refused, for a message: not a
 * number of the kind ("expected a non-negative base-10 integer", "expected
 * a base-10 integer", "expected a decimal number"), else "out of range". */
typedef enum { ZPS_ARGS_UINT, ZPS_ARGS_INT, ZPS_ARGS_REAL } zps_args_kind_t;
const char *zps_args_why(const char *v, zps_args_kind_t kind);

/* One option: its val (the long option's val, or a short option's letter
 * from shortopts), *index = its entry in opts (-1 for a short option); -1
 * when the options end; ZPS_EINVAL with err ("unknown option '--foo'",
 * "option '--epochs' needs a value", ...).  To parse a second argv in the
 * same process, set optind = 0 first. */
int zps_getopt(int argc, char **argv, const char *shortopts, const struct option *opts,
               int *index, char *err, size_t errlen);

/* dst = a's entries, then b's entries whose name a does not have, then the
 * zero entry; cap counts dst's entries.  Returns the entries written
 * (without the zero one), or 0 when cap is too small. */
size_t zps_options_join(struct option *dst, size_t cap, const struct option *a,
                        const struct option *b);

#endif
