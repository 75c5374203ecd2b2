/* wk_paths: the input list of a reader.  Each path is a regular file, a
 * directory (its regular files, without hidden names and cache files) or a
 * glob(3) pattern; the whole list is sorted by name (strcmp), so every
 * worker given the same paths sees the same list.  A path that names
 * nothing is an error naming it. */
#ifndef WK_PATHS_H
#define WK_PATHS_H

#include <stddef.h>

/* Expands paths[0..npaths) into a new sorted array of new strings
 * (*files, *nfiles; free with wk_paths_free).  0, or ZPS_EINVAL /
 * ZPS_ENOMEM with the reason in err and nothing allocated. */
int wk_paths_expand(const char *const *paths, size_t npaths, char ***files, size_t *nfiles,
                    char *err, size_t errlen);
void wk_paths_free(char **files, size_t nfiles);

/* 1 if every file has 0 bytes (and there is one); their names,
 * comma-separated (shortened with "..."), in names[0..len). */
int wk_paths_all_empty(char *const *files, size_t nfiles, char *names, size_t len);

/* 1 if the file name is one of the binary caches (".zpscache."): never an
 * input. */
int wk_paths_is_cache(const char *name);

/* The file name part of path (after the last '/'). */
const char *wk_paths_base(const char *path);

#endif
