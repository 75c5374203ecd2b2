/* Unit tests of zps_log: escaping of untrusted strings, rate limits. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_suites.h"
#include "zps_log.h"

START_TEST(escape_control_and_cap)
{
    char out[ZPS_LOG_WIRE_BUF];
    ck_assert_str_eq(zps_log_escape("plain v1.0", 10, out, sizeof out, 64), "plain v1.0");
    ck_assert_str_eq(zps_log_escape("a\nb\rc\td\\e", 9, out, sizeof out, 64), "a\\nb\\rc\\td\\\\e");
    ck_assert_str_eq(zps_log_escape("\x01\x7f\xff", 3, out, sizeof out, 64), "\\x01\\x7f\\xff");
    /* embedded NUL is escaped, not a terminator */
    ck_assert_str_eq(zps_log_escape("a\0b", 3, out, sizeof out, 64), "a\\x00b");
    ck_assert_str_eq(zps_log_escape(NULL, 5, out, sizeof out, 64), "");
    /* capped at max_chars input bytes, with "..." */
    char big[1000];
    memset(big, 'x', sizeof big);
    zps_log_escape(big, sizeof big, out, sizeof out, 64);
    ck_assert_uint_eq(strlen(out), 67);
    ck_assert_str_eq(out + 64, "...");
    /* worst case: every byte escaped to 4, still fits the documented buffer */
    memset(big, '\n', sizeof big);
    zps_log_escape(big, sizeof big, out, sizeof out, 64);
    ck_assert_uint_eq(strlen(out), 2 * 64 + 3);
    memset(big, 0x80, sizeof big);
    zps_log_escape(big, sizeof big, out, sizeof out, 64);
    ck_assert_uint_eq(strlen(out), 4 * 64 + 3);
    /* a small buffer cuts on an escape boundary and still says so */
    char small[12];
    zps_log_escape("\n\n\n\n\n\n\n\n", 8, small, sizeof small, 64);
    ck_assert_str_eq(small, "\\n\\n\\n\\n...");
    for (size_t i = 0; out[i]; i++)
        ck_assert(out[i] >= 0x20 && out[i] <= 0x7e);
}
END_TEST

static size_t s_count_lines(FILE *f, const char *needle)
{
    fflush(f);
    rewind(f);
    char line[4096];
    size_t n = 0;
    while (fgets(line, sizeof line, f))
        if (!needle || strstr(line, needle))
            n++;
    return n;
}

/* 10,000 events of one class with a long interval: burst lines and no more;
 * the count of suppressed lines is kept. */
START_TEST(burst_limit_bounds_lines)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    zps_log_t *log = zps_log_new("server", 0, f);
    int written = 0;
    for (int i = 0; i < 10000; i++)
        written += zps_log_burst(log, ZPS_LOG_INFO, 3, 5, 3600 * 1000, "hello from peer %d", i);
    ck_assert_int_eq(written, 5);
    ck_assert_uint_eq(s_count_lines(f, "hello from peer"), 5);
    ck_assert_uint_eq(zps_log_suppressed(log), 9995);
    /* another class is independent */
    ck_assert_int_eq(zps_log_burst(log, ZPS_LOG_WARN, 4, 1, 3600 * 1000, "other"), 1);
    ck_assert_int_eq(zps_log_limited(log, 4, 3600 * 1000, "other again"), 0);
    /* interval 0: a new window every time, nothing suppressed; the first
     * line after the suppressed stretch reports it */
    ck_assert_int_eq(zps_log_burst(log, ZPS_LOG_INFO, 3, 1, 0, "after"), 1);
    ck_assert_uint_eq(s_count_lines(f, "9995 similar lines suppressed"), 1);
    zps_log_destroy(&log);
    fclose(f);
}
END_TEST

/* A control character that reaches a log line anyway cannot split it. */
START_TEST(one_event_one_line)
{
    FILE *f = tmpfile();
    zps_log_t *log = zps_log_new("server", 1, f);
    zps_info(log, "client says %s", "v1\nFAKE 2026-01-01 server/0 info: forged\r");
    ck_assert_uint_eq(s_count_lines(f, NULL), 1);
    ck_assert_uint_eq(s_count_lines(f, "client says v1?FAKE"), 1);
    zps_log_destroy(&log);
    fclose(f);
}
END_TEST

Suite *suite_log(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, escape_control_and_cap);
    tcase_add_test(tc, burst_limit_bounds_lines);
    tcase_add_test(tc, one_event_one_line);
    suite_add_tcase(s, tc);
    return s;
}
