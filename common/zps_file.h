/* zps_file: the one way zps writes a file that others will read (model
 * shards and their .sum files, the model manifest, checkpoints, CURVE keys).
 *
 *   f = zps_file_atomic_open(dir, name, mode, err, errlen);
 *   zps_file_write(f, ...) ...            (buffered; errors are remembered)
 *   zps_file_commit(&f, err, errlen);     (or zps_file_abort(&f))
 *
 * - The data goes to a NEW temporary file in the target's own directory,
 *   ".NAME.<16 random hex digits>.tmp" (random from getrandom), created with
 *   O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC and mode 0600, so it can be neither a
 *   planted file nor a planted symbolic link, and nobody else can open it
 *   while it is written.
 * - Commit: flush (write-all: short writes and EINTR are retried), set the
 *   final mode with fchmod (checked, and verified with fstat), fsync, check
 *   the target again, rename over it, fsync the directory.  A crash at any
 *   point leaves either the old file or the new one under NAME, never a mix.
 * - The target is refused (at open and again just before the rename) if it
 *   is a symbolic link, not a regular file, or owned by another user; the
 *   error names the path.  zps never writes through a link, and never
 *   replaces a file that is not its own.
 * - Abort (or any failed commit) unlinks the temporary file; the target is
 *   as it was.  A process killed mid-write leaves its temporary file behind
 *   (its name starts with '.' and ends in ".tmp"; nothing reads it).
 * All paths are used relative to an O_DIRECTORY descriptor of dir, so the
 * directory cannot be swapped between the checks and the rename. */
#ifndef ZPS_FILE_H
#define ZPS_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct zps_file zps_file_t;

/* Start writing dir/name (dir must exist; "" means ".").  mode is the final
 * permission of the file (e.g. 0600 for secrets).  NULL + err on failure,
 * including a target that is a symlink, not a regular file, or not ours. */
zps_file_t *zps_file_atomic_open(const char *dir, const char *name, mode_t mode, char *err,
                                 size_t errlen);

/* The same for a path "dir/name" (no slash: the current directory). */
zps_file_t *zps_file_atomic_open_path(const char *path, mode_t mode, char *err, size_t errlen);

/* Append n bytes (buffered).  0, or a negated errno once any write failed
 * (later writes are then ignored and commit fails). */
int zps_file_write(zps_file_t *f, const void *p, size_t n);

/* Write n bytes at offset off of the file (e.g. a header whose counts are
 * known only at the end); flushes the buffer first. */
int zps_file_pwrite(zps_file_t *f, uint64_t off, const void *p, size_t n);

/* Bytes written so far (the next append's offset). */
uint64_t zps_file_offset(const zps_file_t *f);

/* Path of the temporary file (for messages and tests). */
const char *zps_file_tmp_path(const zps_file_t *f);

/* Flush, fchmod, fsync, rename over the target, fsync the directory; frees
 * *f and sets it to NULL (also on failure, after unlinking the temporary
 * file).  0 or ZPS_EIO/ZPS_EPERM with a message naming the path. */
int zps_file_commit(zps_file_t **f, char *err, size_t errlen);

/* Unlink the temporary file and free *f; the target is untouched. */
void zps_file_abort(zps_file_t **f);

/* Whole file in one call: atomic_open + write + commit. */
int zps_file_write_atomic(const char *dir, const char *name, mode_t mode, const void *p,
                          size_t n, char *err, size_t errlen);

/* Is dir/name (if it exists) a regular file of ours that may be replaced?
 * 0 if it is or does not exist; ZPS_EPERM (symlink, other owner) or ZPS_EIO
 * (not a regular file, cannot stat) with the reason naming the path. */
int zps_file_check_target(const char *dir, const char *name, char *err, size_t errlen);

/* write(2) until all n bytes are written (retries short writes and EINTR).
 * 0 or a negated errno. */
int zps_write_all(int fd, const void *p, size_t n);

/* n random bytes from getrandom(2).  0 or a negated errno. */
int zps_random_bytes(void *p, size_t n);

#endif
