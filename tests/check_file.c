/* check_file: file safety (zps_file, and its users: model files, CURVE key
 * files, checkpoints).
 *
 * - zps_file: a committed file has its content and mode and no temporary is
 *   left; a target that is a symlink (also dangling, also one planted after
 *   open), a directory, or a file owned by another user (chowned to nobody;
 *   needs root, else skipped with a note) is refused and what the link
 *   points to is unchanged; temporary names are random and distinct; abort
 *   and a child that dies without committing leave the old content; pwrite
 *   and writes larger than the buffer.
 * - model files: a planted shard-R-of-S.sum symlink is refused before
 *   anything is written; a written shard loads back.
 * - keygen: a .key of another user (mode 0666) is refused and left as it
 *   was; a .key symlink is refused; a fresh pair is 0600/0644 (stat) and
 *   replaces an own 0666 file with a new 0600 one.
 * - checkpoints: round trip of values, client records, job id; crafted newest
 *   files (nkeys*rowb overflowing to the right size with a valid crc, huge
 *   client counts, duplicate keys, non-finite values, truncated, one flipped
 *   byte, format version 1) each fall back to the older good checkpoint with
 *   its exact values; nothing usable leaves the caller's table pointer NULL;
 *   the new-job check names the directory, job and choices; pruning removes
 *   only superseded checkpoints of the same job. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "check_suites.h"
#include "ps_ckpt.h"
#include "zps_table.h"
#include "zps_curve.h"
#include "zps_err.h"
#include "zps_file.h"
#include "zps_log.h"
#include "zps_modelfile.h"

#define NOBODY 65534

/* ---- helpers --------------------------------------------------------------- */

static char g_dir[256];

static void s_setup(void)
{
    snprintf(g_dir, sizeof g_dir, "%s/zps-check-file.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
}

static void s_rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            s_rm_rf(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void s_teardown(void)
{
    s_rm_rf(g_dir);
}

static void s_path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", g_dir, name);
}

static void s_put_file(const char *name, const char *text)
{
    char p[600];
    s_path(p, sizeof p, name);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Whole content of a file ("" if missing), static buffer. */
static const char *s_read(const char *path)
{
    static char buf[4096];
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return buf;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static const char *s_read_name(const char *name)
{
    char p[600];
    s_path(p, sizeof p, name);
    return s_read(p);
}

/* Number of directory entries (without . and ..) whose name contains sub. */
static int s_count(const char *sub)
{
    DIR *d = opendir(g_dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strstr(e->d_name, sub))
            n++;
    closedir(d);
    return n;
}

static int s_is_root(void)
{
    if (geteuid() == 0)
        return 1;
    fprintf(stderr, "check_file: not root, the foreign-owner case is skipped\n");
    return 0;
}

/* ---- zps_file -------------------------------------------------------------- */

START_TEST(test_atomic_basic)
{
    char err[1500];
    s_put_file("t", "old contents\n");
    zps_file_t *f = zps_file_atomic_open(g_dir, "t", 0640, err, sizeof err);
    ck_assert_msg(f != NULL, "%s", err);
    ck_assert_int_eq(s_count(".tmp"), 1);
    ck_assert_int_eq(zps_file_write(f, "new ", 4), 0);
    ck_assert_int_eq(zps_file_write(f, "contents\n", 9), 0);
    ck_assert_str_eq(s_read_name("t"), "old contents\n");   /* nothing visible yet */
    ck_assert_int_eq(zps_file_commit(&f, err, sizeof err), 0);
    ck_assert_ptr_null(f);
    ck_assert_str_eq(s_read_name("t"), "new contents\n");
    char p[600];
    s_path(p, sizeof p, "t");
    struct stat st;
    ck_assert_int_eq(lstat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0640);
    ck_assert_int_eq(s_count(".tmp"), 0);
    /* open_path splits dir/name */
    f = zps_file_atomic_open_path(p, 0600, err, sizeof err);
    ck_assert_msg(f != NULL, "%s", err);
    zps_file_write(f, "x", 1);
    ck_assert_int_eq(zps_file_commit(&f, err, sizeof err), 0);
    ck_assert_str_eq(s_read(p), "x");
    ck_assert_int_eq(lstat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0600);
}
END_TEST

START_TEST(test_atomic_big_and_pwrite)
{
    char err[1500];
    size_t n = 3u << 20;   /* over the 1 MiB buffer, in odd pieces */
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 131 + (i >> 11));
    zps_file_t *f = zps_file_atomic_open(g_dir, "big", 0644, err, sizeof err);
    ck_assert_msg(f != NULL, "%s", err);
    for (size_t off = 0; off < n;) {
        size_t c = off % 3 == 0 ? 1 : (off % 3 == 1 ? 70001 : 1500000);
        if (c > n - off)
            c = n - off;
        ck_assert_int_eq(zps_file_write(f, data + off, c), 0);
        off += c;
    }
    ck_assert_uint_eq(zps_file_offset(f), n);
    ck_assert_int_eq(zps_file_pwrite(f, 10, "HEADER", 6), 0);
    memcpy(data + 10, "HEADER", 6);
    ck_assert_int_eq(zps_file_commit(&f, err, sizeof err), 0);
    char p[600];
    s_path(p, sizeof p, "big");
    FILE *r = fopen(p, "rb");
    uint8_t *back = malloc(n + 1);
    ck_assert_uint_eq(fread(back, 1, n + 1, r), n);
    fclose(r);
    ck_assert(memcmp(back, data, n) == 0);
    free(back);
    free(data);
}
END_TEST

START_TEST(test_atomic_symlink_refused)
{
    char err[1500], link[600], victim[600];
    s_put_file("victim", "precious\n");
    s_path(victim, sizeof victim, "victim");
    s_path(link, sizeof link, "t");
    ck_assert_int_eq(symlink(victim, link), 0);
    zps_file_t *f = zps_file_atomic_open(g_dir, "t", 0644, err, sizeof err);
    ck_assert_ptr_null(f);
    ck_assert_msg(strstr(err, link) && strstr(err, "symbolic link"), "%s", err);
    ck_assert_int_eq(zps_file_write_atomic(g_dir, "t", 0644, "evil", 4, err, sizeof err), ZPS_EIO);
    ck_assert_str_eq(s_read(victim), "precious\n");
    struct stat st;
    ck_assert_int_eq(lstat(link, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_eq(s_count(".tmp"), 0);
    /* a dangling link: its target must not be created */
    char nowhere[600], dl[600];
    s_path(nowhere, sizeof nowhere, "created-through-link");
    s_path(dl, sizeof dl, "dangling");
    ck_assert_int_eq(symlink(nowhere, dl), 0);
    ck_assert_ptr_null(zps_file_atomic_open(g_dir, "dangling", 0644, err, sizeof err));
    ck_assert_int_eq(access(nowhere, F_OK), -1);
    /* a link planted after open: the commit refuses it and cleans up */
    f = zps_file_atomic_open(g_dir, "late", 0644, err, sizeof err);
    ck_assert_msg(f != NULL, "%s", err);
    zps_file_write(f, "evil", 4);
    char late[600];
    s_path(late, sizeof late, "late");
    ck_assert_int_eq(symlink(victim, late), 0);
    ck_assert_int_eq(zps_file_commit(&f, err, sizeof err), ZPS_EPERM);
    ck_assert_msg(strstr(err, late) && strstr(err, "symbolic link"), "%s", err);
    ck_assert_str_eq(s_read(victim), "precious\n");
    ck_assert_int_eq(lstat(late, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_eq(s_count(".tmp"), 0);
    /* a directory is not replaced either */
    char sub[600];
    s_path(sub, sizeof sub, "sub");
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    ck_assert_ptr_null(zps_file_atomic_open(g_dir, "sub", 0644, err, sizeof err));
    ck_assert_msg(strstr(err, "not a regular file"), "%s", err);
}
END_TEST

START_TEST(test_atomic_foreign_owner_refused)
{
    if (!s_is_root())
        return;
    char err[1500], p[600];
    s_put_file("theirs", "their data\n");
    s_path(p, sizeof p, "theirs");
    ck_assert_int_eq(chown(p, NOBODY, NOBODY), 0);
    ck_assert_int_eq(chmod(p, 0666), 0);
    ck_assert_ptr_null(zps_file_atomic_open(g_dir, "theirs", 0644, err, sizeof err));
    ck_assert_msg(strstr(err, p) && strstr(err, "owned by uid 65534"), "%s", err);
    ck_assert_int_eq(zps_file_check_target(g_dir, "theirs", err, sizeof err), ZPS_EPERM);
    ck_assert_str_eq(s_read(p), "their data\n");
    struct stat st;
    ck_assert_int_eq(lstat(p, &st), 0);
    ck_assert_int_eq((int)st.st_uid, NOBODY);
    ck_assert_int_eq(s_count(".tmp"), 0);
}
END_TEST

START_TEST(test_atomic_tmp_names)
{
    char err[1500];
    enum { N = 16 };
    zps_file_t *f[N];
    char names[N][600];
    for (int i = 0; i < N; i++) {
        f[i] = zps_file_atomic_open(g_dir, "t", 0644, err, sizeof err);
        ck_assert_msg(f[i] != NULL, "%s", err);
        snprintf(names[i], sizeof names[i], "%s", zps_file_tmp_path(f[i]));
        /* DIR/.t.<16 hex>.tmp */
        const char *base = strrchr(names[i], '/') + 1;
        ck_assert_uint_eq(strlen(base), 3 + 16 + 4);
        ck_assert(!strncmp(base, ".t.", 3) && !strcmp(base + 19, ".tmp"));
        for (int k = 3; k < 19; k++)
            ck_assert(strchr("0123456789abcdef", base[k]));
        struct stat st;
        ck_assert_int_eq(lstat(names[i], &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0600);   /* private while written */
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(names[i], names[j]);
    }
    ck_assert_int_eq(s_count(".tmp"), N);
    for (int i = 0; i < N; i++)
        zps_file_abort(&f[i]);
    ck_assert_int_eq(s_count(""), 0);
    zps_file_abort(&f[0]);   /* NULL is fine */
}
END_TEST

START_TEST(test_atomic_abort_and_crash)
{
    char err[1500];
    s_put_file("t", "old\n");
    zps_file_t *f = zps_file_atomic_open(g_dir, "t", 0644, err, sizeof err);
    ck_assert_msg(f != NULL, "%s", err);
    zps_file_write(f, "new\n", 4);
    zps_file_abort(&f);
    ck_assert_str_eq(s_read_name("t"), "old\n");
    ck_assert_int_eq(s_count(".tmp"), 0);
    /* a writer that dies mid-way (no commit, no abort) */
    pid_t pid = fork();
    if (pid == 0) {
        zps_file_t *c = zps_file_atomic_open(g_dir, "t", 0644, err, sizeof err);
        if (!c)
            _exit(2);
        for (int i = 0; i < 1000; i++)
            zps_file_write(c, "partial data ", 13);
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_str_eq(s_read_name("t"), "old\n");
    ck_assert_int_eq(s_count(".t."), 1);   /* its temporary file stays, under another name */
}
END_TEST

/* ---- model files -------------------------------------------------------------- */

static int s_sum_key(void *ctx, uint64_t key, const float *w)
{
    double *acc = ctx;
    acc[0] += (double)key;
    acc[1] += w[0] + w[1];
    return 0;
}

START_TEST(test_model_sum_symlink)
{
    char err[1500], victim[600], link[600];
    s_put_file("victim", "precious\n");
    s_path(victim, sizeof victim, "victim");
    s_path(link, sizeof link, "shard-0-of-1.sum");
    ck_assert_int_eq(symlink(victim, link), 0);
    zps_mf_writer_t *w = zps_mf_writer_new(g_dir, 0, 1, 2, err, sizeof err);
    ck_assert_ptr_null(w);
    ck_assert_msg(strstr(err, link) && strstr(err, "symbolic link"), "%s", err);
    ck_assert_str_eq(s_read(victim), "precious\n");
    ck_assert_int_eq(s_count("shard-0-of-1.bin"), 0);
    unlink(link);
    /* without the link: written, loadable */
    w = zps_mf_writer_new(g_dir, 0, 1, 2, err, sizeof err);
    ck_assert_msg(w != NULL, "%s", err);
    for (uint64_t k = 1; k <= 100; k++) {
        float v[2] = {(float)k, 0.5f};
        ck_assert_int_eq(zps_mf_writer_add(w, k, v), 0);
    }
    ck_assert_int_eq(zps_mf_writer_close(&w, err, sizeof err), 0);
    ck_assert_int_eq(zps_mf_write_manifest(g_dir, "lr", 2, 1, "opt=sgd", "--model lr", err,
                                           sizeof err), 0);
    ck_assert_int_eq(s_count(".tmp"), 0);
    zps_mf_manifest_t m;
    ck_assert_int_eq(zps_mf_read_manifest(g_dir, &m, err, sizeof err), 0);
    double acc[2] = {0, 0};
    ck_assert_int_eq(zps_mf_load(g_dir, &m, s_sum_key, acc, err, sizeof err), 0);
    ck_assert(acc[0] == 5050.0 && acc[1] == 5050.0 + 50.0);
    ck_assert(strstr(s_read_name("shard-0-of-1.sum"), "keys 100 checksum "));
}
END_TEST

/* ---- CURVE key files ----------------------------------------------------------- */

START_TEST(test_keygen_files)
{
    char err[1500], base[500], key[600], pub[600];
    s_path(base, sizeof base, "w");
    snprintf(key, sizeof key, "%s.key", base);
    snprintf(pub, sizeof pub, "%s.pub", base);
    /* an own, world-writable file is replaced by a new 0600 file */
    s_put_file("w.key", "old\n");
    ck_assert_int_eq(chmod(key, 0666), 0);
    ck_assert_msg(zps_curve_keygen(base, err, sizeof err) == 0, "%s", err);
    struct stat st;
    ck_assert_int_eq(lstat(key, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_int_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(st.st_uid, geteuid());
    ck_assert_int_eq(lstat(pub, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0644);
    zps_curve_pair_t kp, pp;
    ck_assert_int_eq(zps_curve_read(key, &kp, err, sizeof err), 0);
    ck_assert_int_eq(zps_curve_read(pub, &pp, err, sizeof err), 0);
    ck_assert(kp.secret_z85[0]);
    ck_assert_str_eq(kp.public_z85, pp.public_z85);
    ck_assert_int_eq(s_count(".tmp"), 0);
    /* a symlinked .key: refused, the link's target untouched, no .pub */
    char base2[500], victim[600], key2[600], pub2[600];
    s_path(base2, sizeof base2, "s");
    snprintf(key2, sizeof key2, "%s.key", base2);
    snprintf(pub2, sizeof pub2, "%s.pub", base2);
    s_put_file("victim", "precious\n");
    s_path(victim, sizeof victim, "victim");
    ck_assert_int_eq(symlink(victim, key2), 0);
    ck_assert_int_ne(zps_curve_keygen(base2, err, sizeof err), 0);
    ck_assert_msg(strstr(err, key2) && strstr(err, "symbolic link"), "%s", err);
    ck_assert_str_eq(s_read(victim), "precious\n");
    ck_assert_int_eq(access(pub2, F_OK), -1);
    ck_assert_int_eq(s_count(".tmp"), 0);
}
END_TEST

START_TEST(test_keygen_foreign_refused)
{
    if (!s_is_root())
        return;
    char err[1500], base[500], key[600], pub[600];
    s_path(base, sizeof base, "n");
    snprintf(key, sizeof key, "%s.key", base);
    snprintf(pub, sizeof pub, "%s.pub", base);
    s_put_file("n.key", "planted\n");
    ck_assert_int_eq(chown(key, NOBODY, NOBODY), 0);
    ck_assert_int_eq(chmod(key, 0666), 0);
    ck_assert_int_ne(zps_curve_keygen(base, err, sizeof err), 0);
    ck_assert_msg(strstr(err, key) && strstr(err, "owned by uid 65534"), "%s", err);
    ck_assert_str_eq(s_read(key), "planted\n");
    struct stat st;
    ck_assert_int_eq(lstat(key, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0666);
    ck_assert_int_eq((int)st.st_uid, NOBODY);
    ck_assert_int_eq(access(pub, F_OK), -1);
    /* a foreign .pub blocks the pair too, before the .key is written */
    unlink(key);
    s_put_file("n.pub", "planted\n");
    ck_assert_int_eq(chown(pub, NOBODY, NOBODY), 0);
    ck_assert_int_ne(zps_curve_keygen(base, err, sizeof err), 0);
    ck_assert_int_eq(access(key, F_OK), -1);
    ck_assert_str_eq(s_read(pub), "planted\n");
}
END_TEST

/* ---- checkpoints --------------------------------------------------------------- */

#define RF 4
#define CKREC (44 + 16 + 8 * PS_DEDUP_WORDS) /* client record body: fields + dedup window */
#define DESC "opt=adagrad,dim=2,lr=0.1"

static zps_log_t *g_log;
static char *g_logbuf;
static size_t g_loglen;
static FILE *g_logf;

static void s_ck_setup(void)
{
    s_setup();
    g_logf = open_memstream(&g_logbuf, &g_loglen);
    g_log = zps_log_new("check", 0, g_logf);
}

static void s_ck_teardown(void)
{
    zps_log_destroy(&g_log);
    fclose(g_logf);
    free(g_logbuf);
    g_logbuf = NULL;
    s_teardown();
}

static void s_info(ps_ckpt_info_t *in, uint64_t counter, uint64_t job)
{
    memset(in, 0, sizeof *in);
    in->rank = 0;
    in->nservers = 1;
    in->dim = 2;
    in->row_floats = RF;
    snprintf(in->desc, sizeof in->desc, DESC);
    in->counter = counter;
    in->job_id = job;
}

/* Value j of key k's row in a checkpoint made with tag. */
static float s_val(uint64_t k, int j, int tag)
{
    return (float)(k % 1000) * 0.25f + (float)j + (float)tag * 1000.0f;
}

static uint64_t s_key(size_t i)
{
    return 0x9e3779b97f4a7c15ULL * (i + 1);
}

/* Writes checkpoint counter of job with nkeys keys valued by tag. */
static void s_write_ckpt(uint64_t counter, uint64_t job, size_t nkeys, int tag, int keep)
{
    ps_ckpt_info_t in;
    s_info(&in, counter, job);
    zps_table_t *t = zps_table_new(RF, 16);
    for (size_t i = 0; i < nkeys; i++) {
        float *row = zps_table_upsert(t, s_key(i), NULL);
        for (int j = 0; j < RF; j++)
            row[j] = s_val(s_key(i), j, tag);
    }
    ps_ckpt_client_t cl[2];
    memset(cl, 0, sizeof cl);
    cl[0].rank = 0;
    cl[0].nonce = 0xabcdef;
    cl[0].last_seq = 17 + (uint64_t)tag;
    cl[0].applied = 16 + (uint64_t)tag;
    cl[1].rank = 3;
    cl[1].has_progress = 1;
    cl[1].progress_epoch = 2;
    cl[1].progress_rows = 777;
    char err[1500];
    ck_assert_msg(ps_ckpt_write(g_dir, &in, t, cl, 2, keep, err, sizeof err) == 0, "%s", err);
    zps_table_destroy(&t);
}

/* Restores and checks that exactly checkpoint counter (nkeys, tag) came back. */
static void s_expect_restore(uint64_t counter, uint64_t job, size_t nkeys, int tag)
{
    ps_ckpt_info_t in;
    s_info(&in, 0, 0);
    zps_table_t *t = NULL;
    ps_ckpt_client_t *cl = NULL;
    size_t ncl = 0;
    char err[1500];
    int rc = ps_ckpt_restore(g_dir, &in, 16, &t, &cl, &ncl, g_log, err, sizeof err);
    ck_assert_msg(rc == 0, "restore: %d %s", rc, err);
    ck_assert_uint_eq(in.counter, counter);
    ck_assert_uint_eq(in.job_id, job);
    ck_assert_uint_eq(zps_table_size(t), nkeys);
    for (size_t i = 0; i < nkeys; i++) {
        float *row = zps_table_find(t, s_key(i));
        ck_assert_ptr_nonnull(row);
        for (int j = 0; j < RF; j++)
            ck_assert(row[j] == s_val(s_key(i), j, tag));
    }
    ck_assert_uint_eq(ncl, 2);
    ck_assert_uint_eq(cl[0].rank, 0);
    ck_assert_uint_eq(cl[0].nonce, 0xabcdef);
    ck_assert_uint_eq(cl[0].last_seq, 17 + (uint64_t)tag);
    ck_assert_uint_eq(cl[0].applied, 16 + (uint64_t)tag);
    ck_assert_uint_eq(cl[1].rank, 3);
    ck_assert_uint_eq(cl[1].has_progress, 1);
    ck_assert_uint_eq(cl[1].progress_epoch, 2);
    ck_assert_uint_eq(cl[1].progress_rows, 777);
    free(cl);
    zps_table_destroy(&t);
}

static void s_ckpt_path(char *out, size_t len, uint64_t counter)
{
    snprintf(out, len, "%s/ckpt-0-of-1-%08llu.zck", g_dir, (unsigned long long)counter);
}

static uint8_t *s_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    uint8_t *b = malloc(*len + 1);
    ck_assert_uint_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void s_spill(const char *path, const uint8_t *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, len, f), len);
    fclose(f);
}

/* Header offsets (ps_ckpt.h layout) */
#define OFF_NCLIENTS 56
#define OFF_CLIENT_BYTES 64
#define OFF_NKEYS 72
#define HDR 336

static void s_fix_crc(uint8_t *b, size_t len)
{
    uint64_t c = crc32(crc32(0, NULL, 0), b, (uInt)(len - 8));
    memcpy(b + len - 8, &c, 8);
}

static void s_set64(uint8_t *b, size_t off, uint64_t v)
{
    memcpy(b + off, &v, 8);
}

START_TEST(test_ckpt_roundtrip)
{
    /* over 1 MiB of rows: the reader's blocks and the writer's pieces differ */
    s_write_ckpt(7, 0x1111, 60000, 1, 3);
    s_expect_restore(7, 0x1111, 60000, 1);
    char p[600];
    s_ckpt_path(p, sizeof p, 7);
    struct stat st;
    ck_assert_int_eq(lstat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0600);
    ck_assert_uint_eq((uint64_t)st.st_size, HDR + 2 * (4 + CKREC) + 60000 * (8 + 4 * RF) + 8);
    ck_assert_int_eq(s_count(".tmp"), 0);
}
END_TEST

/* Each damage of the newest file (counter 2) falls back to counter 1. */
enum { D_OVERFLOW, D_HUGE_CLIENTS, D_CLIENT_BYTES, D_DUP_KEY, D_NAN, D_TRUNC, D_FLIP, D_V1,
       D_BAD_RECLEN, D_NKEYS_PLUS1, D_N };

START_TEST(test_ckpt_damaged_newest_falls_back)
{
    int d = _i;
    s_write_ckpt(1, 0x2222, 50, 1, 10);
    /* over 4096 keys: the old loader had upserted a whole block of a bad file
     * before it noticed, and then refused every older checkpoint */
    s_write_ckpt(2, 0x2222, 5000, 2, 10);
    char p[600];
    s_ckpt_path(p, sizeof p, 2);
    size_t len;
    uint8_t *b = s_slurp(p, &len);
    uint64_t nkeys;
    memcpy(&nkeys, b + OFF_NKEYS, 8);
    ck_assert_uint_eq(nkeys, 5000);
    size_t rows = HDR + 2 * (4 + CKREC), rowb = 8 + 4 * RF;
    const char *why = NULL;
    switch (d) {
    case D_OVERFLOW:
        /* nkeys * 24 wraps round to the true size: 2^61 * 24 = 3 * 2^64 */
        s_set64(b, OFF_NKEYS, nkeys + (1ULL << 61));
        s_fix_crc(b, len);
        why = "torn or corrupt";
        break;
    case D_HUGE_CLIENTS:
        s_set64(b, OFF_NCLIENTS, UINT64_MAX / (4 + CKREC) + 2);
        s_fix_crc(b, len);
        why = "torn or corrupt";
        break;
    case D_CLIENT_BYTES:
        s_set64(b, OFF_CLIENT_BYTES, UINT64_MAX - 100);
        s_fix_crc(b, len);
        why = "torn or corrupt";
        break;
    case D_DUP_KEY:
        memcpy(b + rows + rowb, b + rows, 8);   /* key 1 := key 0 */
        s_fix_crc(b, len);
        why = "distinct";
        break;
    case D_NAN: {
        uint32_t nan = 0x7fc00000u;
        memcpy(b + rows + 3 * rowb + 8, &nan, 4);
        s_fix_crc(b, len);
        why = "non-finite";
        break;
    }
    case D_TRUNC:
        len = len / 2;
        why = "torn or corrupt";
        break;
    case D_FLIP:
        b[len / 2] ^= 0x40;
        why = "checksum mismatch";
        break;
    case D_V1:
        memcpy(b, "ZPSCKPT1", 8);
        why = "format version 1";
        break;
    case D_BAD_RECLEN: {
        uint32_t l = CKREC + 3;   /* the first record claims 3 bytes of the second */
        memcpy(b + HDR, &l, 4);
        s_fix_crc(b, len);
        why = "corrupt client record";
        break;
    }
    case D_NKEYS_PLUS1:
        s_set64(b, OFF_NKEYS, nkeys + 1);
        s_fix_crc(b, len);
        why = "torn or corrupt";
        break;
    }
    s_spill(p, b, len);
    free(b);
    s_expect_restore(1, 0x2222, 50, 1);
    fflush(g_logf);
    ck_assert_msg(strstr(g_logbuf, "ckpt-0-of-1-00000002.zck is unusable") &&
                      strstr(g_logbuf, why) && strstr(g_logbuf, "trying the previous one"),
                  "damage %d: log: %s", d, g_logbuf);
}
END_TEST

START_TEST(test_ckpt_none_usable)
{
    s_write_ckpt(1, 0x3333, 5, 1, 10);
    char p[600];
    s_ckpt_path(p, sizeof p, 1);
    ck_assert_int_eq(truncate(p, 100), 0);
    ps_ckpt_info_t in;
    s_info(&in, 0, 0);
    zps_table_t *t = NULL;
    ps_ckpt_client_t *cl = NULL;
    size_t ncl = 0;
    char err[1500];
    ck_assert_int_eq(ps_ckpt_restore(g_dir, &in, 16, &t, &cl, &ncl, g_log, err, sizeof err),
                     ZPS_EPROTO);
    ck_assert_ptr_null(t);
    ck_assert_ptr_null(cl);
    ck_assert(strstr(err, "no usable checkpoint"));
    unlink(p);
    ck_assert_int_eq(ps_ckpt_restore(g_dir, &in, 16, &t, &cl, &ncl, g_log, err, sizeof err), 1);
    /* another layout is refused */
    s_write_ckpt(1, 0x3333, 5, 1, 10);
    snprintf(in.desc, sizeof in.desc, "opt=sgd,dim=2,lr=0.1");
    ck_assert_int_eq(ps_ckpt_restore(g_dir, &in, 16, &t, &cl, &ncl, g_log, err, sizeof err),
                     ZPS_EPROTO);
    ck_assert_ptr_null(t);
    fflush(g_logf);
    ck_assert(strstr(g_logbuf, "another layout"));
}
END_TEST

START_TEST(test_ckpt_job_identity)
{
    char err[1500];
    ck_assert_int_eq(ps_ckpt_check_new_job(g_dir, 0, err, sizeof err), 0);
    char missing[600];
    s_path(missing, sizeof missing, "missing");
    ck_assert_int_eq(ps_ckpt_check_new_job(missing, 0, err, sizeof err), 0);
    s_write_ckpt(4, 0x0123456789abcdefULL, 3, 1, 3);
    ck_assert_int_eq(ps_ckpt_check_new_job(g_dir, 0, err, sizeof err), ZPS_EMISMATCH);
    ck_assert_msg(strstr(err, g_dir) && strstr(err, "job 0123456789abcdef") &&
                      strstr(err, "--restore") && strstr(err, "--checkpoint-dir") &&
                      strstr(err, "ckpt-0-of-1-00000004.zck"),
                  "%s", err);
    ck_assert_int_eq(ps_ckpt_check_new_job(g_dir, 1, err, sizeof err), 0);   /* another rank */
    /* restore adopts the id and reports the highest counter in the directory */
    s_write_ckpt(9, 0x0123456789abcdefULL, 3, 2, 3);
    char p[600];
    s_ckpt_path(p, sizeof p, 12);
    s_spill(p, (const uint8_t *)"junk", 4);
    ps_ckpt_info_t in;
    s_info(&in, 0, 0);
    zps_table_t *t = NULL;
    ps_ckpt_client_t *cl = NULL;
    size_t ncl = 0;
    ck_assert_int_eq(ps_ckpt_restore(g_dir, &in, 16, &t, &cl, &ncl, g_log, err, sizeof err), 0);
    ck_assert_uint_eq(in.counter, 9);
    ck_assert_uint_eq(in.job_id, 0x0123456789abcdefULL);
    ck_assert_uint_eq(in.last_counter, 12);
    free(cl);
    zps_table_destroy(&t);
    uint64_t a = ps_ckpt_new_job_id(), b = ps_ckpt_new_job_id();
    ck_assert(a && b && a != b);
}
END_TEST

START_TEST(test_ckpt_prune_same_job_only)
{
    for (uint64_t c = 1; c <= 5; c++)
        s_write_ckpt(c, 0xA, 3, (int)c, 2);
    ck_assert_int_eq(s_count(".zck"), 2);
    ck_assert_int_eq(s_count("00000004.zck") + s_count("00000005.zck"), 2);
    s_write_ckpt(6, 0xB, 3, 6, 2);   /* another job: prunes none of A's */
    ck_assert_int_eq(s_count(".zck"), 3);
    s_write_ckpt(7, 0xA, 3, 7, 2);   /* A again: 4 superseded by 5 and 7 */
    ck_assert_int_eq(s_count(".zck"), 3);
    ck_assert_int_eq(s_count("00000004.zck"), 0);
    ck_assert_int_eq(s_count("00000005.zck") + s_count("00000006.zck") + s_count("00000007.zck"),
                     3);
    /* an unreadable file is not provably A's: kept */
    char p[600];
    s_ckpt_path(p, sizeof p, 3);
    s_spill(p, (const uint8_t *)"junk", 4);
    s_write_ckpt(8, 0xA, 3, 8, 2);
    ck_assert_int_eq(s_count("00000003.zck") + s_count("00000006.zck") + s_count("00000007.zck") +
                         s_count("00000008.zck"),
                     4);
    ck_assert_int_eq(s_count("00000005.zck"), 0);
    ck_assert_int_eq(s_count(".tmp"), 0);
}
END_TEST

Suite *suite_file(void)
{
    Suite *s = suite_create("file");
    TCase *tc = tcase_create("atomic");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_atomic_basic);
    tcase_add_test(tc, test_atomic_big_and_pwrite);
    tcase_add_test(tc, test_atomic_symlink_refused);
    tcase_add_test(tc, test_atomic_foreign_owner_refused);
    tcase_add_test(tc, test_atomic_tmp_names);
    tcase_add_test(tc, test_atomic_abort_and_crash);
    tcase_add_test(tc, test_model_sum_symlink);
    tcase_add_test(tc, test_keygen_files);
    tcase_add_test(tc, test_keygen_foreign_refused);
    suite_add_tcase(s, tc);
    TCase *ck = tcase_create("ckpt");
    tcase_set_timeout(ck, 60);
    tcase_add_checked_fixture(ck, s_ck_setup, s_ck_teardown);
    tcase_add_test(ck, test_ckpt_roundtrip);
    tcase_add_loop_test(ck, test_ckpt_damaged_newest_falls_back, 0, D_N);
    tcase_add_test(ck, test_ckpt_none_usable);
    tcase_add_test(ck, test_ckpt_job_identity);
    tcase_add_test(ck, test_ckpt_prune_same_job_only);
    suite_add_tcase(s, ck);
    return s;
}
