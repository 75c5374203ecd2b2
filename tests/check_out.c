/* check_out: zps_out, the user-named output.
 *
 * A regular file appears only at a successful close, whole; a dropped
 * output (ok = 0) and a failed one leave the previous file as it was; a
 * symbolic link is refused and its target untouched; /dev/null is written
 * as a stream (it cannot be replaced) and closes cleanly. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_suites.h"
#include "zps_out.h"

static char g_dir[256];

static void s_setup(void)
{
    snprintf(g_dir, sizeof g_dir, "%s/zps-out.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
}

static void s_teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void s_read(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = 0;
    fclose(f);
}

START_TEST(test_regular_atomic)
{
    char path[400], err[1200], buf[64];
    snprintf(path, sizeof path, "%s/pred.txt", g_dir);
    zps_out_t *o = zps_out_open(path, err, sizeof err);
    ck_assert_msg(o != NULL, "%s", err);
    fprintf(zps_out_file(o), "0.5\n0.25\n");
    fflush(zps_out_file(o));
    ck_assert_int_ne(access(path, F_OK), 0); /* nothing under the name yet */
    ck_assert_int_eq(zps_out_close(&o, 1, err, sizeof err), 0);
    ck_assert_ptr_null(o);
    s_read(path, buf, sizeof buf);
    ck_assert_str_eq(buf, "0.5\n0.25\n");

    /* a dropped output leaves the previous file */
    o = zps_out_open(path, err, sizeof err);
    ck_assert_ptr_nonnull(o);
    fprintf(zps_out_file(o), "half\n");
    ck_assert_int_eq(zps_out_close(&o, 0, err, sizeof err), 0);
    s_read(path, buf, sizeof buf);
    ck_assert_str_eq(buf, "0.5\n0.25\n");

    /* a replacement appears whole */
    o = zps_out_open(path, err, sizeof err);
    ck_assert_ptr_nonnull(o);
    fprintf(zps_out_file(o), "1\n");
    ck_assert_int_eq(zps_out_close(&o, 1, err, sizeof err), 0);
    s_read(path, buf, sizeof buf);
    ck_assert_str_eq(buf, "1\n");
}
END_TEST

START_TEST(test_symlink_refused)
{
    char path[400], target[400], err[1200], buf[64];
    snprintf(target, sizeof target, "%s/target", g_dir);
    snprintf(path, sizeof path, "%s/link", g_dir);
    FILE *f = fopen(target, "w");
    ck_assert_ptr_nonnull(f);
    fputs("keep\n", f);
    fclose(f);
    ck_assert_int_eq(symlink(target, path), 0);
    err[0] = 0;
    ck_assert_ptr_null(zps_out_open(path, err, sizeof err));
    ck_assert_msg(strstr(err, "symbolic link") != NULL, "%s", err);
    s_read(target, buf, sizeof buf);
    ck_assert_str_eq(buf, "keep\n");
}
END_TEST

START_TEST(test_device_stream)
{
    char err[1200];
    zps_out_t *o = zps_out_open("/dev/null", err, sizeof err);
    ck_assert_msg(o != NULL, "%s", err);
    for (int i = 0; i < 100000; i++)
        fprintf(zps_out_file(o), "%d\n", i);
    ck_assert_int_eq(zps_out_close(&o, 1, err, sizeof err), 0);
}
END_TEST

START_TEST(test_missing_dir)
{
    char path[400], err[1200];
    snprintf(path, sizeof path, "%s/no/such/dir/out.txt", g_dir);
    err[0] = 0;
    ck_assert_ptr_null(zps_out_open(path, err, sizeof err));
    ck_assert(err[0] != 0);
}
END_TEST

Suite *suite_out(void)
{
    Suite *s = suite_create("out");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_regular_atomic);
    tcase_add_test(tc, test_symlink_refused);
    tcase_add_test(tc, test_device_stream);
    tcase_add_test(tc, test_missing_dir);
    suite_add_tcase(s, tc);
    return s;
}
