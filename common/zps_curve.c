/* zps_curve: see zps_curve.h. */
#include "zps_curve.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "zps_err.h"
#include "zps_file.h"

static int s_valid_z85(const char *k)
{
    if (strlen(k) != ZPS_Z85_LEN)
        return 0;
    uint8_t bin[32];
    return zmq_z85_decode(bin, k) != NULL;
}

int zps_curve_keygen(const char *base, char *err, size_t errlen)
{
    char pub[ZPS_Z85_LEN + 1], sec[ZPS_Z85_LEN + 1], kpath[1024], ppath[1024], buf[256];
    if (snprintf(kpath, sizeof kpath, "%s.key", base) >= (int)sizeof kpath ||
        snprintf(ppath, sizeof ppath, "%s.pub", base) >= (int)sizeof ppath) {
        snprintf(err, errlen, "key name too long: %s", base);
        return ZPS_EINVAL;
    }
    if (zmq_curve_keypair(pub, sec) != 0) {
        snprintf(err, errlen, "this libzmq cannot make CURVE keys: %s", zmq_strerror(errno));
        return ZPS_EIO;
    }
    /* both targets are checked (symlink, other owner) before either is
     * written; the secret goes to a new file created 0600 */
    int rc = ZPS_EIO;
    zps_file_t *kf = zps_file_atomic_open_path(kpath, 0600, err, errlen);
    zps_file_t *pf = kf ? zps_file_atomic_open_path(ppath, 0644, err, errlen) : NULL;
    if (!kf || !pf)
        goto out;
    int n = snprintf(buf, sizeof buf, "public %s\nsecret %s\n", pub, sec);
    zps_file_write(kf, buf, (size_t)n);
    if ((rc = zps_file_commit(&kf, err, errlen)) != 0)
        goto out;
    n = snprintf(buf, sizeof buf, "public %s\n", pub);
    zps_file_write(pf, buf, (size_t)n);
    if ((rc = zps_file_commit(&pf, err, errlen)) != 0) {
        size_t l = strlen(err);
        snprintf(err + l, errlen - l, " (%s was written)", kpath);
    }
out:
    zps_file_abort(&kf);
    zps_file_abort(&pf);
    explicit_bzero(sec, sizeof sec);
    explicit_bzero(buf, sizeof buf);
    return rc;
}

int zps_curve_read(const char *path, zps_curve_pair_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
        return ZPS_EIO;
    }
    char line[256], word[32], key[128];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (sscanf(line, "%31s %127s", word, key) != 2 || !s_valid_z85(key) ||
            (strcmp(word, "public") && strcmp(word, "secret"))) {
            snprintf(err, errlen, "%s:%d: expected 'public KEY' or 'secret KEY' (40 Z85 characters)",
                     path, lineno);
            rc = ZPS_EINVAL;
            break;
        }
        memcpy(word[0] == 'p' ? out->public_z85 : out->secret_z85, key, ZPS_Z85_LEN + 1);
    }
    fclose(f);
    if (!rc && !out->public_z85[0]) {
        snprintf(err, errlen, "%s: no public key", path);
        rc = ZPS_EINVAL;
    }
    return rc;
}

int zps_curve_read_dir(const char *dir, char (**keys)[ZPS_Z85_LEN + 1], size_t *n, char *err,
                       size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "cannot read allow directory %s: %s", dir, strerror(errno));
        return ZPS_EIO;
    }
    *keys = NULL;
    *n = 0;
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".pub"))
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        zps_curve_pair_t p;
        if ((rc = zps_curve_read(path, &p, err, errlen)) != 0)
            break;
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            char (*k)[ZPS_Z85_LEN + 1] = realloc(*keys, cap * sizeof **keys);
            if (!k) {
                rc = ZPS_ENOMEM;
                break;
            }
            *keys = k;
        }
        memcpy((*keys)[(*n)++], p.public_z85, ZPS_Z85_LEN + 1);
    }
    closedir(d);
    if (rc) {
        free(*keys);
        *keys = NULL;
        *n = 0;
    }
    return rc;
}
