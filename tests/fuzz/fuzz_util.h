/* fuzz_util.h: small helpers shared by the libFuzzer harnesses (header only).
 *
 *   FUZZ_CHECK(cond, fmt, ...)  an invariant of the code under test: prints
 *                               the failure and aborts, which libFuzzer
 *                               reports as a crash and saves the input
 *   fuzz_in_t                   consumes a fuzz input field by field
 *   fuzz_tmpdir()               a private directory (in /dev/shm when
 *                               possible) removed at exit */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_CHECK(cond, ...)                                                         \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
            abort();                                                                  \
        }                                                                             \
    } while (0)

typedef struct {
    const uint8_t *p;
    size_t n;
} fuzz_in_t;

static inline uint8_t fuzz_u8(fuzz_in_t *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint16_t fuzz_u16(fuzz_in_t *in)
{
    uint16_t v = fuzz_u8(in);
    return (uint16_t)(v | (uint16_t)fuzz_u8(in) << 8);
}

static inline uint32_t fuzz_u32(fuzz_in_t *in)
{
    uint32_t v = fuzz_u16(in);
    return v | (uint32_t)fuzz_u16(in) << 16;
}

static inline uint64_t fuzz_u64(fuzz_in_t *in)
{
    uint64_t v = fuzz_u32(in);
    return v | (uint64_t)fuzz_u32(in) << 32;
}

/* Up to want bytes (fewer at the end of the input). */
static inline const uint8_t *fuzz_bytes(fuzz_in_t *in, size_t want, size_t *got)
{
    const uint8_t *p = in->p;
    *got = want < in->n ? want : in->n;
    in->p += *got;
    in->n -= *got;
    return p;
}

static char fuzz_tmp_path[PATH_MAX];

static void fuzz_rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char sub[PATH_MAX];
            snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
            struct stat st;
            if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
                fuzz_rm_tree(sub);
            else
                unlink(sub);
        }
        closedir(d);
        rmdir(path);
    }
}

/* Removes every entry of dir (not dir itself). */
static inline void fuzz_empty_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
        unlink(sub);
    }
    closedir(d);
}

static void fuzz_tmp_cleanup(void)
{
    if (fuzz_tmp_path[0])
        fuzz_rm_tree(fuzz_tmp_path);
}

/* A directory of our own, base/zps-fuzz.<pid>, created once and removed at
 * exit.  A crash (abort) skips atexit, so directories of processes that no
 * longer exist are removed when the next harness starts. */
static inline const char *fuzz_tmpdir(void)
{
    if (fuzz_tmp_path[0])
        return fuzz_tmp_path;
    struct stat st;
    const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
                               access("/dev/shm", W_OK) == 0
                           ? "/dev/shm"
                           : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    DIR *d = opendir(base);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            char *end;
            if (strncmp(de->d_name, "zps-fuzz.", 9) != 0)
                continue;
            long pid = strtol(de->d_name + 9, &end, 10);
            if (*end || pid <= 0 || pid == (long)getpid())
                continue;
            char proc[64];
            snprintf(proc, sizeof proc, "/proc/%ld", pid);
            if (stat(proc, &st) == 0 || stat("/proc/self", &st) != 0)
                continue; /* alive (or no /proc to tell) */
            char old[PATH_MAX];
            snprintf(old, sizeof old, "%s/%s", base, de->d_name);
            if (lstat(old, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid())
                fuzz_rm_tree(old);
        }
        closedir(d);
    }
    snprintf(fuzz_tmp_path, sizeof fuzz_tmp_path, "%s/zps-fuzz.%ld", base, (long)getpid());
    fuzz_rm_tree(fuzz_tmp_path);
    if (mkdir(fuzz_tmp_path, 0700) != 0) {
        perror(fuzz_tmp_path);
        abort();
    }
    atexit(fuzz_tmp_cleanup);
    return fuzz_tmp_path;
}

/* Writes data to path (replacing it); aborts on failure (not a finding). */
static inline void fuzz_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

#endif
