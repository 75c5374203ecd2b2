/* zps_curve: key files for ZeroMQ CURVE (authentication + encryption).
 *
 * zps-keygen writes a pair:
 *   NAME.key   mode 0600: two lines, "public Z85" and "secret Z85"
 *   NAME.pub   mode 0644: one line, "public Z85"
 * Keys are Z85 text (40 characters for 32 bytes), as ZeroMQ's own tools
 * print them.  A server loads its NAME.key and the *.pub files of an allow
 * directory; a client loads its NAME.key and the server's NAME.pub. */
#ifndef ZPS_CURVE_H
#define ZPS_CURVE_H

#include <stddef.h>

#define ZPS_Z85_LEN 40

typedef struct {
    char public_z85[ZPS_Z85_LEN + 1];
    char secret_z85[ZPS_Z85_LEN + 1];
} zps_curve_pair_t;

/* Generate a pair and write base.key (mode 0600) / base.pub (0644) through
 * zps_file: each is a new file renamed into place, so an existing file is
 * never written into; a target that is a symlink or owned by another user
 * is refused (before either file is written).  0 or ZPS_E* + err. */
int zps_curve_keygen(const char *base, char *err, size_t errlen);

/* Read a .key file (both keys) or a .pub file (public only; secret empty). */
int zps_curve_read(const char *path, zps_curve_pair_t *out, char *err, size_t errlen);

/* Load every *.pub in dir into a malloc'd array of Z85 public keys. */
int zps_curve_read_dir(const char *dir, char (**keys)[ZPS_Z85_LEN + 1], size_t *n, char *err,
                       size_t errlen);

#endif
