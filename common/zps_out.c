/* zps_out: see zps_out.h.
 *
 * The path is opened O_WRONLY (no O_CREAT, no O_TRUNC: a regular file is
 * not touched) only to see what it is by fstat on the open descriptor, so
 * a file swapped in after a stat cannot be mistaken for a device.  A
 * regular file or a missing path goes to zps_file through a fopencookie
 * stream whose writes append to the zps_file; a device or FIFO keeps the
 * descriptor, fdopen'ed. */
#include "zps_out.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zps_err.h"
#include "zps_file.h"

struct zps_out {
    FILE *fp;
    zps_file_t *f; /* NULL for a device or FIFO */
    int werr;      /* first errno of a failed write into f */
    char path[1024];
};

static ssize_t s_cookie_write(void *cookie, const char *buf, size_t n)
{
    zps_out_t *o = cookie;
    int rc = zps_file_write(o->f, buf, n);
    if (rc) {
        if (!o->werr)
            o->werr = -rc;
        errno = -rc;
        return -1;
    }
    return (ssize_t)n;
}

zps_out_t *zps_out_open(const char *path, char *err, size_t errlen)
{
    zps_out_t *o = calloc(1, sizeof *o);
    if (!o) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(o->path, sizeof o->path, "%s", path);
    /* (a FIFO blocks here until it has a reader, as fopen would) */
    int fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) {
        if ((o->fp = fdopen(fd, "w")) != NULL)
            return o;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        free(o);
        return NULL;
    }
    if (fd >= 0)
        close(fd);
    /* a regular file, a missing one, or something zps_file will refuse
     * with the reason (a symlink to a regular file, a directory, ...) */
    if (!(o->f = zps_file_atomic_open_path(path, 0644, err, errlen))) {
        free(o);
        return NULL;
    }
    cookie_io_functions_t io = {NULL, s_cookie_write, NULL, NULL};
    if (!(o->fp = fopencookie(o, "w", io))) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        zps_file_abort(&o->f);
        free(o);
        return NULL;
    }
    return o;
}

FILE *zps_out_file(zps_out_t *o)
{
    return o->fp;
}

int zps_out_close(zps_out_t **op, int ok, char *err, size_t errlen)
{
    zps_out_t *o = *op;
    if (!o)
        return 0;
    *op = NULL;
    int rc = 0;
    const int closed_ok = fclose(o->fp) == 0;
    if (!o->f) {
        if (ok && !closed_ok) {
            snprintf(err, errlen, "writing %s: %s", o->path, strerror(errno));
            rc = ZPS_EIO;
        }
    } else if (!ok) {
        zps_file_abort(&o->f);
    } else if (!closed_ok || o->werr) {
        snprintf(err, errlen, "writing %s: %s", o->path, strerror(o->werr ? o->werr : errno));
        zps_file_abort(&o->f);
        rc = ZPS_EIO;
    } else {
        rc = zps_file_commit(&o->f, err, errlen);
    }
    free(o);
    return rc;
}
