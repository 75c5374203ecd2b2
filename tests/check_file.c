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
 *   only superseded checkpoints of the same job; a change of any single byte
 *   of a checkpoint makes it unusable; a checkpoint written by the release
 *   before zps_crc32 (format 2, bytes and trailer as that zps wrote them)
 *   still restores.
 * - the file checksum zps_crc32: the CRC-32 check value; the same value for
 *   1-, 7-, 8-, 4096-, 65536-, 65537-byte, 1 MiB and random pieces and when
 *   two parts are joined (zps_crc32_combine); any change of any single byte
 *   changes it.
 * - model files (format 2): size, version, trailer = CRC-32 of everything
 *   before it, .sum line, manifest; any single changed byte (inside the
 *   records: reported as a checksum mismatch), a cut or an added byte is
 *   refused; a format 1 shard written by the release before the change loads
 *   with its exact values and its legacy checksum is verified; format 3, a
 *   missing version and a format-1 shard under a format-2 manifest are
 *   refused naming the file and the versions. */
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
#include "zps_hash.h"
#include "zps_log.h"
#include "zps_modelfile.h"
#include "zps_place.h"

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
    ck_assert_int_eq(zps_mf_write_manifest(g_dir, "lr", 2, 1, "opt=sgd", "--model lr", NULL, err,
                                           sizeof err), 0);
    ck_assert_int_eq(s_count(".tmp"), 0);
    zps_mf_manifest_t m;
    ck_assert_int_eq(zps_mf_read_manifest(g_dir, &m, err, sizeof err), 0);
    double acc[2] = {0, 0};
    ck_assert_int_eq(zps_mf_load(g_dir, &m, s_sum_key, acc, err, sizeof err), 0);
    ck_assert(acc[0] == 5050.0 && acc[1] == 5050.0 + 50.0);
    ck_assert(strstr(s_read_name("shard-0-of-1.sum"), "keys 100 crc32 "));
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

/* ---- the file checksum and the model-file formats ------------------------------ */

static uint64_t s_rng(uint64_t *st)
{
    uint64_t z = (*st += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* zps_crc32 in pieces of `step` bytes (0: random sizes from 1 to 100000). */
static uint32_t s_crc_pieces(const uint8_t *b, size_t len, size_t step, uint64_t *st)
{
    uint32_t c = 0;
    for (size_t off = 0; off < len;) {
        size_t n = step ? step : 1 + (size_t)(s_rng(st) % 100000);
        if (n > len - off)
            n = len - off;
        c = zps_crc32(c, b + off, n);
        off += n;
    }
    return c;
}

START_TEST(test_crc_chunking)
{
    /* the standard CRC-32 check value: the algorithm is zlib's, unchanged */
    ck_assert_uint_eq(zps_crc32(0, "123456789", 9), 0xcbf43926u);
    ck_assert_uint_eq(zps_crc32(0x1234u, NULL, 0), 0x1234u);
    size_t len = (3u << 20) + 13;
    uint8_t *b = malloc(len);
    ck_assert_ptr_nonnull(b);
    uint64_t st = 42;
    for (size_t i = 0; i < len; i++)
        b[i] = (uint8_t)(s_rng(&st) >> 56);
    uint32_t want = (uint32_t)crc32(0, b, (uInt)len);   /* zlib, one call */
    ck_assert_uint_eq(zps_crc32(0, b, len), want);
    const size_t steps[] = {1, 7, 8, 4096, 65536, 65537, 1u << 20};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++)
        ck_assert_msg(s_crc_pieces(b, len, steps[i], &st) == want, "pieces of %zu", steps[i]);
    for (int r = 0; r < 5; r++)
        ck_assert_msg(s_crc_pieces(b, len, 0, &st) == want, "random pieces, round %d", r);
    /* joined from two parts at several cuts */
    const size_t cuts[] = {0, 1, 7, 65536, len / 2, len - 1, len};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        size_t c = cuts[i];
        ck_assert_uint_eq(zps_crc32_combine(zps_crc32(0, b, c), zps_crc32(0, b + c, len - c),
                                            len - c), want);
    }
    /* what format 1 did wrong: a word-wise hash depends on the pieces */
    uint64_t h1 = 0;
    for (size_t off = 0; off < 4096; off += 7)
        h1 = zps_hash_bytes64(h1, b + off, off + 7 <= 4096 ? 7 : 4096 - off);
    ck_assert_uint_ne(h1, zps_hash_bytes64(0, b, 4096));
    free(b);
}
END_TEST

START_TEST(test_crc_single_byte_changes)
{
    /* every change of any one byte of a 300-byte string changes the CRC */
    uint8_t b[300];
    uint64_t st = 7;
    for (size_t i = 0; i < sizeof b; i++)
        b[i] = (uint8_t)s_rng(&st);
    uint32_t want = zps_crc32(0, b, sizeof b);
    for (size_t i = 0; i < sizeof b; i++)
        for (unsigned x = 1; x < 256; x++) {
            b[i] ^= (uint8_t)x;
            uint32_t c = zps_crc32(0, b, sizeof b);
            b[i] ^= (uint8_t)x;
            if (c == want)
                ck_abort_msg("byte %zu ^ %02x: same crc", i, x);
        }
}
END_TEST

#define MDIM 3

static float s_mval(uint64_t k, int j)
{
    return (float)(k % 977) * 0.5f - (float)j * 0.125f;
}

/* Writes shard 0 of 1 (dim MDIM) with nkeys keys, and the manifest. */
static void s_write_model(size_t nkeys)
{
    char err[1500];
    zps_mf_writer_t *w = zps_mf_writer_new(g_dir, 0, 1, MDIM, err, sizeof err);
    ck_assert_msg(w != NULL, "%s", err);
    for (size_t i = 0; i < nkeys; i++) {
        float v[MDIM];
        for (int j = 0; j < MDIM; j++)
            v[j] = s_mval(s_key(i), j);
        ck_assert_int_eq(zps_mf_writer_add(w, s_key(i), v), 0);
    }
    ck_assert_msg(zps_mf_writer_close(&w, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(zps_mf_write_manifest(g_dir, "lr", MDIM, 1, "opt=sgd", "--model lr", NULL, err,
                                        sizeof err) == 0, "%s", err);
}

typedef struct {
    size_t n, bad;
} mcount_t;

static int s_mcheck(void *ctx, uint64_t key, const float *w)
{
    mcount_t *c = ctx;
    for (int j = 0; j < MDIM; j++)
        if (w[j] != s_mval(key, j))
            c->bad++;
    c->n++;
    return 0;
}

/* zps_mf_load of g_dir; rc, with err and the counts out. */
static int s_load_model(mcount_t *c, char *err, size_t errlen)
{
    zps_mf_manifest_t m;
    memset(c, 0, sizeof *c);
    int rc = zps_mf_read_manifest(g_dir, &m, err, errlen);
    return rc ? rc : zps_mf_load(g_dir, &m, s_mcheck, c, err, errlen);
}

START_TEST(test_model_v2_layout)
{
    const size_t counts[] = {0, 1, 5000};
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
        size_t nk = counts[i];
        s_write_model(nk);
        char p[600], err[1500];
        s_path(p, sizeof p, "shard-0-of-1.bin");
        size_t len;
        uint8_t *b = s_slurp(p, &len);
        ck_assert_uint_eq(len, 64 + nk * (8 + 4 * MDIM) + 8);
        uint32_t version;
        uint64_t nkeys, trailer;
        memcpy(&version, b + 8, 4);
        memcpy(&nkeys, b + 24, 8);
        memcpy(&trailer, b + len - 8, 8);
        ck_assert_uint_eq(version, 2);
        ck_assert_uint_eq(nkeys, nk);
        /* the trailer is the CRC-32 of every byte before it, in one call */
        uint32_t crc = (uint32_t)crc32(0, b, (uInt)(len - 8));
        ck_assert_uint_eq(trailer, crc);
        char sum[64];
        snprintf(sum, sizeof sum, "keys %zu crc32 %08x\n", nk, (unsigned)crc);
        ck_assert_str_eq(s_read_name("shard-0-of-1.sum"), sum);
        ck_assert(strstr(s_read_name("manifest"), "zps-model 2\n") == s_read_name("manifest"));
        mcount_t c;
        ck_assert_msg(s_load_model(&c, err, sizeof err) == 0, "%s", err);
        ck_assert_uint_eq(c.n, nk);
        ck_assert_uint_eq(c.bad, 0);
        free(b);
    }
}
END_TEST

/* Every change of any one byte of a shard (three patterns per byte), one byte
 * cut off or added, is refused; inside the records only the checksum can
 * notice, and says so. */
START_TEST(test_model_any_byte_corrupt)
{
    s_write_model(6);
    char p[600], err[1500];
    s_path(p, sizeof p, "shard-0-of-1.bin");
    size_t len;
    uint8_t *b = s_slurp(p, &len);
    const uint8_t pats[] = {0x01, 0x80, 0xff};
    mcount_t c;
    for (size_t i = 0; i < len; i++)
        for (size_t q = 0; q < sizeof pats; q++) {
            b[i] ^= pats[q];
            s_spill(p, b, len);
            b[i] ^= pats[q];
            err[0] = 0;
            if (s_load_model(&c, err, sizeof err) == 0)
                ck_abort_msg("byte %zu ^ %02x of %zu accepted", i, pats[q], len);
            if (i >= 64 && !strstr(err, "checksum mismatch"))
                ck_abort_msg("byte %zu ^ %02x: %s", i, pats[q], err);
        }
    s_spill(p, b, len - 1);
    ck_assert_int_ne(s_load_model(&c, err, sizeof err), 0);
    b[len] = 0;
    s_spill(p, b, len + 1);
    ck_assert_int_ne(s_load_model(&c, err, sizeof err), 0);
    ck_assert(strstr(err, "trailing data"));
    s_spill(p, b, len);
    ck_assert_msg(s_load_model(&c, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(c.n, 6);
    free(b);
}
END_TEST

/* A model saved by zps at commit af77f65 (model format 1, before the CRC):
 * 4 keys 0x9e3779b97f4a7c15 * (k + 1) with weights {k/2, -1.25, k + 1/8},
 * dim 3, so records are 20 bytes (not a multiple of 8: the old checksum's
 * tail handling is exercised). */
static const char s_v1_manifest[] =
    "zps-model 1\nmodel lr\ndim 3\nservers 1\ntable opt=sgd\noptions --model lr\n";
static const char s_v1_shard_hex[] =
    "5a50535348415244010000000000000001000000030000000400000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "157c4a7fb979379e000000000000a0bf0000003e2af894fe72f36e3c0000003f"
    "0000a0bf0000903f3f74df7d2c6da6da0000803f0000a0bf0000084054f029fd"
    "e5e6dd780000c03f0000a0bf00004840e9442244bfbdc628";

static size_t s_unhex(const char *hex, uint8_t *out)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

typedef struct {
    size_t n;
    uint64_t keys[8];
    float w[8][3];
} mgrab_t;

static int s_mgrab(void *ctx, uint64_t key, const float *w)
{
    mgrab_t *g = ctx;
    if (g->n == 8)
        return ZPS_EINVAL;
    g->keys[g->n] = key;
    memcpy(g->w[g->n], w, sizeof g->w[0]);
    g->n++;
    return 0;
}

START_TEST(test_model_v1_loads)
{
    uint8_t b[256];
    size_t len = s_unhex(s_v1_shard_hex, b);
    ck_assert_uint_eq(len, 64 + 4 * 20 + 8);
    char p[600], err[1500];
    s_path(p, sizeof p, "shard-0-of-1.bin");
    s_spill(p, b, len);
    s_put_file("manifest", s_v1_manifest);
    zps_mf_manifest_t m;
    ck_assert_msg(zps_mf_read_manifest(g_dir, &m, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(m.version, 1);
    mgrab_t g;
    memset(&g, 0, sizeof g);
    ck_assert_msg(zps_mf_load(g_dir, &m, s_mgrab, &g, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(g.n, 4);
    for (uint64_t k = 0; k < 4; k++) {
        ck_assert_uint_eq(g.keys[k], 0x9e3779b97f4a7c15ULL * (k + 1));
        ck_assert(g.w[k][0] == (float)k * 0.5f && g.w[k][1] == -1.25f &&
                  g.w[k][2] == (float)k + 0.125f);
    }
    /* the legacy verifier verifies: any changed record or trailer byte is refused */
    for (size_t i = 64; i < len; i++) {
        b[i] ^= 0x10;
        s_spill(p, b, len);
        b[i] ^= 0x10;
        memset(&g, 0, sizeof g);
        if (zps_mf_load(g_dir, &m, s_mgrab, &g, err, sizeof err) == 0 ||
            !strstr(err, "checksum mismatch") || !strstr(err, "format version 1"))
            ck_abort_msg("format 1, byte %zu changed: %s", i, err);
    }
    /* a format-2 manifest beside a format-1 shard: refused, both named */
    s_spill(p, b, len);
    m.version = 2;
    ck_assert_int_eq(zps_mf_load(g_dir, &m, s_mgrab, &g, err, sizeof err), ZPS_EVERSION);
    ck_assert_msg(strstr(err, p) && strstr(err, "shard format version 1") &&
                      strstr(err, "manifest says version 2"),
                  "%s", err);
}
END_TEST

START_TEST(test_model_versions_refused)
{
    s_write_model(3);
    char err[1500], mp[600];
    s_path(mp, sizeof mp, "manifest");
    zps_mf_manifest_t m;
    /* a newer format: refused, naming the file and both versions */
    s_put_file("manifest", "zps-model 3\nmodel lr\ndim 3\nservers 1\ntable t\noptions o\n");
    ck_assert_int_eq(zps_mf_read_manifest(g_dir, &m, err, sizeof err), ZPS_EVERSION);
    ck_assert_msg(strstr(err, mp) && strstr(err, "model format version 3") &&
                      strstr(err, "versions 1") && strstr(err, "and 2") &&
                      strstr(err, "newer zps"),
                  "%s", err);
    s_put_file("manifest", "model lr\ndim 3\nservers 1\ntable t\noptions o\n");
    ck_assert_int_eq(zps_mf_read_manifest(g_dir, &m, err, sizeof err), ZPS_EVERSION);
    ck_assert_msg(strstr(err, "model format version 0"), "%s", err);
    /* a shard header with version 3 under a format-2 manifest */
    s_put_file("manifest", "zps-model 2\nmodel lr\ndim 3\nservers 1\ntable t\noptions o\n");
    char p[600];
    s_path(p, sizeof p, "shard-0-of-1.bin");
    size_t len;
    uint8_t *b = s_slurp(p, &len);
    b[8] = 3;
    s_spill(p, b, len);
    free(b);
    ck_assert_int_eq(zps_mf_read_manifest(g_dir, &m, err, sizeof err), 0);
    mcount_t c;
    ck_assert_int_eq(zps_mf_load(g_dir, &m, s_mcheck, &c, err, sizeof err), ZPS_EVERSION);
    ck_assert_msg(strstr(err, p) && strstr(err, "shard format version 3"), "%s", err);
}
END_TEST

/* ---- checkpoints: the checksum ------------------------------------------------- */

/* Every change of any one byte of a checkpoint makes it unusable: the older
 * one is restored, exactly. */
START_TEST(test_ckpt_any_byte_corrupt)
{
    s_write_ckpt(1, 0x4444, 4, 1, 10);
    s_write_ckpt(2, 0x4444, 3, 2, 10);
    char p[600];
    s_ckpt_path(p, sizeof p, 2);
    size_t len;
    uint8_t *b = s_slurp(p, &len);
    for (size_t i = 0; i < len; i++) {
        b[i] ^= (uint8_t)(1u << (i % 8));
        s_spill(p, b, len);
        b[i] ^= (uint8_t)(1u << (i % 8));
        ps_ckpt_info_t in;
        s_info(&in, 0, 0);
        zps_table_t *t = NULL;
        ps_ckpt_client_t *cl = NULL;
        size_t ncl = 0;
        char err[1500];
        int rc = ps_ckpt_restore(g_dir, &in, 16, &t, &cl, &ncl, g_log, err, sizeof err);
        size_t n = t ? zps_table_size(t) : 0;
        free(cl);
        zps_table_destroy(&t);
        if (rc != 0 || in.counter != 1 || n != 4)
            ck_abort_msg("byte %zu of %zu changed: rc %d, restored %llu with %zu keys", i, len,
                         rc, (unsigned long long)in.counter, n);
        /* the log is not needed past this point */
        fflush(g_logf);
        rewind(g_logf);
    }
    s_spill(p, b, len);
    s_expect_restore(2, 0x4444, 3, 2);
    free(b);
}
END_TEST

/* A checkpoint written by zps at commit af77f65 (format 2, no client
 * records): rows of keys 1000 and 1001, written field by field here, and the
 * trailer that zps wrote.  This zps still restores it. */
START_TEST(test_ckpt_release_file_restores)
{
    uint8_t b[392];
    memset(b, 0, sizeof b);
    const uint32_t u32[] = {2, 336, 0, 1, 2, 4};   /* version, header, rank, servers, dim, rf */
    const uint64_t u64[] = {0x0123456789abcdefULL, 5, 0x1a2495d9318ULL, 0, 0, 2};
    memcpy(b, "ZPSCKPT2", 8);
    memcpy(b + 8, u32, sizeof u32);
    memcpy(b + 32, u64, sizeof u64);   /* job, counter, wall ms, nclients, bytes, nkeys */
    memcpy(b + 80, DESC, strlen(DESC));
    for (uint64_t i = 0; i < 2; i++) {
        uint64_t key = 1000 + i;
        memcpy(b + HDR + i * 24, &key, 8);
        for (int j = 0; j < 4; j++) {
            float v = (float)i + 0.25f * (float)j;
            memcpy(b + HDR + i * 24 + 8 + 4 * j, &v, 4);
        }
    }
    const uint64_t trailer = 0xee36561aULL;
    memcpy(b + HDR + 48, &trailer, 8);
    char p[600];
    s_ckpt_path(p, sizeof p, 5);
    s_spill(p, b, sizeof b);
    ps_ckpt_info_t in;
    s_info(&in, 0, 0);
    zps_table_t *t = NULL;
    ps_ckpt_client_t *cl = NULL;
    size_t ncl = 0;
    char err[1500];
    ck_assert_msg(ps_ckpt_restore(g_dir, &in, 16, &t, &cl, &ncl, g_log, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_uint_eq(in.counter, 5);
    ck_assert_uint_eq(in.job_id, 0x0123456789abcdefULL);
    ck_assert_uint_eq(ncl, 0);
    ck_assert_uint_eq(zps_table_size(t), 2);
    for (uint64_t i = 0; i < 2; i++) {
        float *row = zps_table_find(t, 1000 + i);
        ck_assert_ptr_nonnull(row);
        for (int j = 0; j < 4; j++)
            ck_assert(row[j] == (float)i + 0.25f * (float)j);
    }
    free(cl);
    zps_table_destroy(&t);
}
END_TEST

/* Format 4 (a replicated server's): the range-table block comes back byte
 * for byte with the checkpoint's wall time, keys of any placement are
 * accepted (a replica holds other servers' home ranges), and a file cut in
 * the table block is refused. */
START_TEST(test_ckpt_ranges_block)
{
    ps_ckpt_info_t in;
    s_info(&in, 5, 0x4444);
    in.rank = 1;
    in.nservers = 2;
    zps_table_t *t = zps_table_new(RF, 16);
    size_t other = 0;
    for (size_t i = 0; i < 200; i++) {
        float *row = zps_table_upsert(t, s_key(i), NULL);
        for (int j = 0; j < RF; j++)
            row[j] = s_val(s_key(i), j, 0);
        other += zps_place(s_key(i), 2) != 1;
    }
    ck_assert_uint_gt(other, 0);
    unsigned char tab[3000];
    for (size_t i = 0; i < sizeof tab; i++)
        tab[i] = (unsigned char)(i * 7 + 1);
    in.ranges_in = tab;
    in.ranges_in_len = sizeof tab;
    char err[1500];
    ck_assert_msg(ps_ckpt_write(g_dir, &in, t, NULL, 0, 3, err, sizeof err) == 0, "%s", err);
    ps_ckpt_info_t out;
    s_info(&out, 0, 0);
    out.rank = 1;
    out.nservers = 2;
    zps_table_t *r = NULL;
    ps_ckpt_client_t *cl = NULL;
    size_t ncl = 0;
    int rc = ps_ckpt_restore(g_dir, &out, 16, &r, &cl, &ncl, g_log, err, sizeof err);
    ck_assert_msg(rc == 0, "restore: %d %s", rc, err);
    ck_assert_uint_eq(zps_table_size(r), 200);
    ck_assert_uint_eq(out.ranges_out_len, sizeof tab);
    ck_assert_int_eq(memcmp(out.ranges_out, tab, sizeof tab), 0);
    ck_assert_uint_gt(out.wall_ms, 1700000000000ull); /* ms since 1970, not seconds */
    free(out.ranges_out);
    free(cl);
    zps_table_destroy(&r);
    /* the file is format 4 with a 352-byte header */
    char p[600];
    snprintf(p, sizeof p, "%s/ckpt-1-of-2-00000005.zck", g_dir);
    FILE *f = fopen(p, "rb");
    ck_assert_ptr_nonnull(f);
    uint32_t vh[2];
    ck_assert_int_eq(fseek(f, 8, SEEK_SET), 0);
    ck_assert_uint_eq(fread(vh, 4, 2, f), 2);
    fclose(f);
    ck_assert_uint_eq(vh[0], PS_CKPT_VERSION_RANGES);
    ck_assert_uint_eq(vh[1], 352);
    /* cut inside the table block: unusable, and nothing else to fall back on */
    ck_assert_int_eq(truncate(p, 352 + 1000), 0);
    s_info(&out, 0, 0);
    out.rank = 1;
    out.nservers = 2;
    rc = ps_ckpt_restore(g_dir, &out, 16, &r, &cl, &ncl, g_log, err, sizeof err);
    ck_assert_int_ne(rc, 0);
    ck_assert_ptr_null(r);
    ck_assert_ptr_null(out.ranges_out);
    /* without the block, the same keys are refused: they are not all this shard's */
    in.ranges_in = NULL;
    in.ranges_in_len = 0;
    in.counter = 6;
    ck_assert_msg(ps_ckpt_write(g_dir, &in, t, NULL, 0, 3, err, sizeof err) == 0, "%s", err);
    rc = ps_ckpt_restore(g_dir, &out, 16, &r, &cl, &ncl, g_log, err, sizeof err);
    ck_assert_int_ne(rc, 0);
    ck_assert_ptr_null(r);
    zps_table_destroy(&t);
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
    tcase_add_test(ck, test_ckpt_ranges_block);
    tcase_add_loop_test(ck, test_ckpt_damaged_newest_falls_back, 0, D_N);
    tcase_add_test(ck, test_ckpt_none_usable);
    tcase_add_test(ck, test_ckpt_job_identity);
    tcase_add_test(ck, test_ckpt_prune_same_job_only);
    tcase_add_test(ck, test_ckpt_any_byte_corrupt);
    tcase_add_test(ck, test_ckpt_release_file_restores);
    suite_add_tcase(s, ck);
    TCase *cs = tcase_create("csum");
    tcase_set_timeout(cs, 60);
    tcase_add_checked_fixture(cs, s_setup, s_teardown);
    tcase_add_test(cs, test_crc_chunking);
    tcase_add_test(cs, test_crc_single_byte_changes);
    tcase_add_test(cs, test_model_v2_layout);
    tcase_add_test(cs, test_model_any_byte_corrupt);
    tcase_add_test(cs, test_model_v1_loads);
    tcase_add_test(cs, test_model_versions_refused);
    suite_add_tcase(s, cs);
    return s;
}
