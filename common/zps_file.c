/* zps_file: see zps_file.h for the rules. */
#include "zps_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zps_err.h"

#define ZF_BUF (1u << 20)

struct zps_file {
    int dfd, fd;
    mode_t mode;
    int err;              /* first errno of a failed write */
    uint64_t off;         /* bytes in the file + buffer */
    size_t len;           /* bytes in buf */
    char name[256], tmpname[300];
    char path[1100], tmp[1400];   /* for messages */
    uint8_t *buf;
};

int zps_write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int zps_random_bytes(void *p, size_t n)
{
    uint8_t *b = p;
    while (n) {
        ssize_t r = getrandom(b, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

static void s_join(char *out, size_t len, const char *dir, const char *name)
{
    if (!dir[0])
        snprintf(out, len, "%s", name);
    else if (dir[strlen(dir) - 1] == '/')
        snprintf(out, len, "%s%s", dir, name);
    else
        snprintf(out, len, "%s/%s", dir, name);
}

/* The target rules, relative to the directory descriptor. */
static int s_check_at(int dfd, const char *path, const char *name, char *err, size_t errlen)
{
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot check %s: %s", path, strerror(errno));
        return ZPS_EIO;
    }
    if (S_ISLNK(st.st_mode)) {
        snprintf(err, errlen, "%s is a symbolic link: refusing to write through or replace it "
                 "(remove it, or choose another path)", path);
        return ZPS_EPERM;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a regular file: refusing to replace it", path);
        return ZPS_EIO;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, errlen, "%s is owned by uid %u, not by this user (uid %u): refusing to "
                 "replace it", path, (unsigned)st.st_uid, (unsigned)geteuid());
        return ZPS_EPERM;
    }
    return 0;
}

static int s_open_dir(const char *dir, char *err, size_t errlen)
{
    int dfd = open(dir[0] ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        snprintf(err, errlen, "cannot open directory %s: %s", dir[0] ? dir : ".", strerror(errno));
    return dfd;
}

int zps_file_check_target(const char *dir, const char *name, char *err, size_t errlen)
{
    char path[1100];
    s_join(path, sizeof path, dir, name);
    int dfd = s_open_dir(dir, err, errlen);
    if (dfd < 0)
        return ZPS_EIO;
    int rc = s_check_at(dfd, path, name, err, errlen);
    close(dfd);
    return rc;
}

zps_file_t *zps_file_atomic_open(const char *dir, const char *name, mode_t mode, char *err,
                                 size_t errlen)
{
    if (!name[0] || strchr(name, '/') || strlen(name) >= 256 || !strcmp(name, ".") ||
        !strcmp(name, "..")) {
        snprintf(err, errlen, "invalid file name '%s'", name);
        return NULL;
    }
    zps_file_t *f = calloc(1, sizeof *f);
    if (!f || !(f->buf = malloc(ZF_BUF))) {
        snprintf(err, errlen, "out of memory");
        free(f);
        return NULL;
    }
    f->fd = -1;
    f->mode = mode & 07777;
    snprintf(f->name, sizeof f->name, "%s", name);
    s_join(f->path, sizeof f->path, dir, name);
    f->dfd = s_open_dir(dir, err, errlen);
    if (f->dfd < 0 || s_check_at(f->dfd, f->path, name, err, errlen) != 0)
        goto fail;
    for (int attempt = 0; attempt < 8 && f->fd < 0; attempt++) {
        uint64_t r;
        int rc = zps_random_bytes(&r, sizeof r);
        if (rc) {
            snprintf(err, errlen, "getrandom failed: %s", strerror(-rc));
            goto fail;
        }
        snprintf(f->tmpname, sizeof f->tmpname, ".%s.%016llx.tmp", name, (unsigned long long)r);
        s_join(f->tmp, sizeof f->tmp, dir, f->tmpname);
        f->fd = openat(f->dfd, f->tmpname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       0600);
        if (f->fd < 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", f->tmp, strerror(errno));
            goto fail;
        }
    }
    if (f->fd < 0) {
        snprintf(err, errlen, "cannot create a temporary file beside %s (names taken)", f->path);
        goto fail;
    }
    return f;
fail:
    if (f->dfd >= 0)
        close(f->dfd);
    free(f->buf);
    free(f);
    return NULL;
}

zps_file_t *zps_file_atomic_open_path(const char *path, mode_t mode, char *err, size_t errlen)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return zps_file_atomic_open("", path, mode, err, errlen);
    char dir[1024];
    size_t dl = (size_t)(slash - path);
    if (dl >= sizeof dir) {
        snprintf(err, errlen, "path too long: %s", path);
        return NULL;
    }
    memcpy(dir, path, dl);
    dir[dl] = 0;
    return zps_file_atomic_open(dl ? dir : "/", slash + 1, mode, err, errlen);
}

static int s_flush(zps_file_t *f)
{
    if (f->len && !f->err) {
        int rc = zps_write_all(f->fd, f->buf, f->len);
        if (rc)
            f->err = -rc;
    }
    f->len = 0;
    return f->err ? -f->err : 0;
}

int zps_file_write(zps_file_t *f, const void *p, size_t n)
{
    const uint8_t *b = p;
    f->off += n;
    if (f->err)
        return -f->err;
    if (n >= ZF_BUF) {
        if (s_flush(f))
            return -f->err;
        int rc = zps_write_all(f->fd, b, n);
        if (rc)
            f->err = -rc;
        return rc;
    }
    if (f->len + n > ZF_BUF && s_flush(f))
        return -f->err;
    memcpy(f->buf + f->len, b, n);
    f->len += n;
    return 0;
}

int zps_file_pwrite(zps_file_t *f, uint64_t off, const void *p, size_t n)
{
    if (s_flush(f))
        return -f->err;
    const uint8_t *b = p;
    while (n) {
        ssize_t w = pwrite(f->fd, b, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            f->err = w < 0 ? errno : EIO;
            return -f->err;
        }
        b += w;
        off += (uint64_t)w;
        n -= (size_t)w;
    }
    return 0;
}

uint64_t zps_file_offset(const zps_file_t *f)
{
    return f->off;
}

const char *zps_file_tmp_path(const zps_file_t *f)
{
    return f->tmp;
}

static void s_free(zps_file_t *f, int unlink_tmp)
{
    if (f->fd >= 0)
        close(f->fd);
    if (unlink_tmp)
        unlinkat(f->dfd, f->tmpname, 0);
    close(f->dfd);
    free(f->buf);
    free(f);
}

void zps_file_abort(zps_file_t **fp)
{
    if (!fp || !*fp)
        return;
    s_free(*fp, 1);
    *fp = NULL;
}

int zps_file_commit(zps_file_t **fp, char *err, size_t errlen)
{
    zps_file_t *f = *fp;
    *fp = NULL;
    int rc = ZPS_EIO;
    struct stat st;
    if (s_flush(f)) {
        snprintf(err, errlen, "writing %s failed: %s", f->tmp, strerror(f->err));
        goto fail;
    }
    if (fchmod(f->fd, f->mode) != 0) {
        snprintf(err, errlen, "cannot set mode %04o on %s: %s", (unsigned)f->mode, f->tmp,
                 strerror(errno));
        goto fail;
    }
    if (fstat(f->fd, &st) != 0 || (st.st_mode & 07777) != f->mode || st.st_uid != geteuid()) {
        snprintf(err, errlen, "%s: mode %04o owner %u after fchmod, wanted mode %04o owner %u",
                 f->tmp, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)f->mode,
                 (unsigned)geteuid());
        rc = ZPS_EPERM;
        goto fail;
    }
    if (fsync(f->fd) != 0) {
        snprintf(err, errlen, "fsync of %s failed: %s", f->tmp, strerror(errno));
        goto fail;
    }
    if (close(f->fd) != 0) {
        f->fd = -1;
        snprintf(err, errlen, "writing %s failed: %s", f->tmp, strerror(errno));
        goto fail;
    }
    f->fd = -1;
    /* again: something may have appeared under the name meanwhile */
    if ((rc = s_check_at(f->dfd, f->path, f->name, err, errlen)) != 0)
        goto fail;
    if (renameat(f->dfd, f->tmpname, f->dfd, f->name) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", f->tmp, f->path, strerror(errno));
        rc = ZPS_EIO;
        goto fail;
    }
    if (fsync(f->dfd) != 0 && errno != EINVAL) {
        snprintf(err, errlen, "fsync of the directory of %s failed: %s", f->path, strerror(errno));
        s_free(f, 0);
        return ZPS_EIO;
    }
    s_free(f, 0);
    return 0;
fail:
    s_free(f, 1);
    return rc;
}

int zps_file_write_atomic(const char *dir, const char *name, mode_t mode, const void *p,
                          size_t n, char *err, size_t errlen)
{
    zps_file_t *f = zps_file_atomic_open(dir, name, mode, err, errlen);
    if (!f)
        return ZPS_EIO;
    zps_file_write(f, p, n);
    return zps_file_commit(&f, err, errlen);
}
