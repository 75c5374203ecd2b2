/* wk_paths: see wk_paths.h.
 *
 * DESIGN
 * stat(2) decides: a regular file is taken as it is; a directory is read
 * with readdir and keeps its regular files (following symlinks), skipping
 * names starting with '.' and cache files; anything else that exists is
 * refused.  A path that does not exist is a glob pattern if it holds one of
 * "*?[", else its stat error is the message.  Globs keep regular files
 * that are not caches.  A directory or pattern that yields nothing is an
 * error ("no input files in this directory", "no input files match").
 * Sorting is the last step, over all paths together. */
#include "wk_paths.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "wk_rows.h"
#include "zps_err.h"

static void s_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int wk_paths_is_cache(const char *name)
{
    return strstr(name, ".zpscache.") != NULL;
}

const char *wk_paths_base(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

typedef struct {
    char **v;
    size_t n, cap;
} strv_t;

static int s_strv_add(strv_t *sv, const char *dir, const char *name)
{
    if (wk_grow((void **)&sv->v, &sv->cap, sv->n + 1, sizeof *sv->v) < 0)
        return ZPS_ENOMEM;
    size_t n = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;
    char *s = malloc(n);
    if (!s)
        return ZPS_ENOMEM;
    if (dir)
        snprintf(s, n, "%s%s%s", dir, dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", name);
    else
        snprintf(s, n, "%s", name);
    sv->v[sv->n++] = s;
    return 0;
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int s_is_reg(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Expands one input path into sv; ZPS_EINVAL/ENOMEM with err. */
static int s_expand(strv_t *sv, const char *path, char *err, size_t errlen)
{
    struct stat st;
    size_t n0 = sv->n;
    if (stat(path, &st) == 0) {
        if (S_ISREG(st.st_mode))
            return s_strv_add(sv, NULL, path);
        if (!S_ISDIR(st.st_mode)) {
            s_errf(err, errlen, "%s: not a regular file or directory", path);
            return ZPS_EINVAL;
        }
        DIR *dir = opendir(path);
        if (!dir) {
            s_errf(err, errlen, "%s: %s", path, strerror(errno));
            return ZPS_EINVAL;
        }
        struct dirent *de;
        int rc = 0;
        while (rc == 0 && (de = readdir(dir)) != NULL) {
            if (de->d_name[0] == '.' || wk_paths_is_cache(de->d_name))
                continue;
            rc = s_strv_add(sv, path, de->d_name);
            if (rc == 0 && !s_is_reg(sv->v[sv->n - 1]))
                free(sv->v[--sv->n]);
        }
        closedir(dir);
        if (rc < 0) {
            s_errf(err, errlen, "out of memory");
            return rc;
        }
        if (sv->n == n0) {
            s_errf(err, errlen, "%s: no input files in this directory", path);
            return ZPS_EINVAL;
        }
        return 0;
    }
    if (!strpbrk(path, "*?[")) {
        s_errf(err, errlen, "%s: %s", path, strerror(errno));
        return ZPS_EINVAL;
    }
    glob_t g;
    int grc = glob(path, 0, NULL, &g);
    if (grc != 0 && grc != GLOB_NOMATCH) {
        s_errf(err, errlen, "%s: glob failed", path);
        return ZPS_EINVAL;
    }
    int rc = 0;
    for (size_t i = 0; grc == 0 && rc == 0 && i < g.gl_pathc; i++)
        if (!wk_paths_is_cache(wk_paths_base(g.gl_pathv[i])) && s_is_reg(g.gl_pathv[i]))
            rc = s_strv_add(sv, NULL, g.gl_pathv[i]);
    if (grc == 0)
        globfree(&g);
    if (rc < 0) {
        s_errf(err, errlen, "out of memory");
        return rc;
    }
    if (sv->n == n0) {
        s_errf(err, errlen, "%s: no input files match", path);
        return ZPS_EINVAL;
    }
    return 0;
}

void wk_paths_free(char **files, size_t nfiles)
{
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
}

int wk_paths_expand(const char *const *paths, size_t npaths, char ***files, size_t *nfiles,
                    char *err, size_t errlen)
{
    strv_t sv = {NULL, 0, 0};
    *files = NULL;
    *nfiles = 0;
    for (size_t i = 0; i < npaths; i++) {
        int rc = paths[i] ? s_expand(&sv, paths[i], err, errlen) : ZPS_EINVAL;
        if (rc < 0) {
            if (!paths[i])
                s_errf(err, errlen, "NULL input path");
            wk_paths_free(sv.v, sv.n);
            return rc;
        }
    }
    qsort(sv.v, sv.n, sizeof *sv.v, s_cmp_str);
    *files = sv.v;
    *nfiles = sv.n;
    return 0;
}

int wk_paths_all_empty(char *const *files, size_t nfiles, char *names, size_t len)
{
    size_t n = 0;
    if (len)
        names[0] = 0;
    for (size_t i = 0; i < nfiles; i++) {
        struct stat st;
        if (stat(files[i], &st) != 0 || st.st_size != 0)
            return 0;
        if (n + 4 < len) {
            int w = snprintf(names + n, len - n, "%s%s", i ? ", " : "", files[i]);
            n = w > 0 && n + (size_t)w < len ? n + (size_t)w : len - 4;
            if (n == len - 4)
                snprintf(names + n, 4, "...");
        }
    }
    return nfiles > 0;
}
