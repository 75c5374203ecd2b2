/* zps_out: an output file the user names (zps-predict --out, zps-ctl --out,
 * zps-bench --json, zps-datagen's files go through zps_file directly), as a
 * stdio FILE * so the caller can fprintf into it.
 *
 * A regular file (or a path that does not exist yet) is written with
 * zps_file, the one atomic writer: the output appears whole under its name
 * at zps_out_close, a failed run leaves the previous file, and a symbolic
 * link or another user's file is refused.  A character device or a FIFO
 * (/dev/null, /dev/stdout on a pipe, a named pipe) has nothing to replace
 * atomically and is written in place, as a stream.
 *
 *   zps_out_t *o = zps_out_open(path, err, errlen);
 *   fprintf(zps_out_file(o), ...);
 *   zps_out_close(&o, ok, err, errlen);   (ok = 0: drop the output) */
#ifndef ZPS_OUT_H
#define ZPS_OUT_H

#include <stddef.h>
#include <stdio.h>

typedef struct zps_out zps_out_t;

/* NULL with err on failure (naming the path). */
zps_out_t *zps_out_open(const char *path, char *err, size_t errlen);

FILE *zps_out_file(zps_out_t *o);

/* ok: flush and commit (0, or ZPS_EIO/ZPS_EPERM with err when any write or
 * the commit failed; the target is then as it was); !ok: drop the output
 * (returns 0).  Frees *o and sets it to NULL. */
int zps_out_close(zps_out_t **o, int ok, char *err, size_t errlen);

#endif
