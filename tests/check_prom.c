/* Unit tests of zps_prom (the registry and its text format) and
 * zps_metrics_http (the endpoint, over a loopback socket). */
#include <arpa/inet.h>
#include <check.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_suites.h"
#include "ps_server.h"
#include "zps_metrics_http.h"
#include "zps_prom.h"

START_TEST(render_counter_gauge_exact)
{
    zps_prom_t *p = zps_prom_new();
    zps_prom_series_t *c = zps_prom_scalar(p, ZPS_PROM_COUNTER, "zps_pushes_total", "Pushes.");
    zps_prom_series_t *g = zps_prom_scalar(p, ZPS_PROM_GAUGE, "zps_train_loss", "Loss.");
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(g);
    zps_prom_set(c, 41);
    zps_prom_add(c, 1);
    zps_prom_set(g, 0.25);
    size_t len = 0;
    char *t = zps_prom_render(p, &len);
    ck_assert_str_eq(t, "# HELP zps_pushes_total Pushes.\n"
                        "# TYPE zps_pushes_total counter\n"
                        "zps_pushes_total 42\n"
                        "# HELP zps_train_loss Loss.\n"
                        "# TYPE zps_train_loss gauge\n"
                        "zps_train_loss 0.25\n");
    ck_assert_uint_eq(len, strlen(t));
    free(t);
    zps_prom_destroy(&p);
    ck_assert_ptr_null(p);
}
END_TEST

START_TEST(labels_escaped_in_order)
{
    zps_prom_t *p = zps_prom_new();
    zps_prom_fam_t *f = zps_prom_family(p, ZPS_PROM_COUNTER, "zps_rejected_requests_total",
                                        "Refused: a \\ b\nc", 0, NULL);
    const char *l1[] = {"reason", "limit", NULL};
    const char *l2[] = {"reason", "a\"b\\c\nd", "peer", "x", NULL};
    zps_prom_series_t *a = zps_prom_series(f, l1);
    zps_prom_series_t *b = zps_prom_series(f, l2);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    zps_prom_set(a, 3);
    char *t = zps_prom_render(p, NULL);
    ck_assert_str_eq(t, "# HELP zps_rejected_requests_total Refused: a \\\\ b\\nc\n"
                        "# TYPE zps_rejected_requests_total counter\n"
                        "zps_rejected_requests_total{reason=\"limit\"} 3\n"
                        "zps_rejected_requests_total{reason=\"a\\\"b\\\\c\\nd\",peer=\"x\"} 0\n");
    free(t);
    zps_prom_destroy(&p);
}
END_TEST

START_TEST(histogram_cumulative_buckets)
{
    zps_prom_t *p = zps_prom_new();
    const double b[] = {0.001, 0.01, 0.1};
    zps_prom_fam_t *f = zps_prom_family(p, ZPS_PROM_HISTOGRAM, "zps_request_duration_seconds",
                                        "Time.", 3, b);
    const char *lp[] = {"type", "push", NULL};
    zps_prom_series_t *s = zps_prom_series(f, lp);
    ck_assert_ptr_nonnull(s);
    zps_prom_observe(s, 0.0005);
    zps_prom_observe(s, 0.001);  /* le is inclusive */
    zps_prom_observe(s, 0.05);
    zps_prom_observe(s, 2.0);
    char *t = zps_prom_render(p, NULL);
    ck_assert_str_eq(t, "# HELP zps_request_duration_seconds Time.\n"
                        "# TYPE zps_request_duration_seconds histogram\n"
                        "zps_request_duration_seconds_bucket{type=\"push\",le=\"0.001\"} 2\n"
                        "zps_request_duration_seconds_bucket{type=\"push\",le=\"0.01\"} 2\n"
                        "zps_request_duration_seconds_bucket{type=\"push\",le=\"0.1\"} 3\n"
                        "zps_request_duration_seconds_bucket{type=\"push\",le=\"+Inf\"} 4\n"
                        "zps_request_duration_seconds_sum{type=\"push\"} 2.0515\n"
                        "zps_request_duration_seconds_count{type=\"push\"} 4\n");
    free(t);
    zps_prom_destroy(&p);
}
END_TEST

START_TEST(bad_names_refused)
{
    zps_prom_t *p = zps_prom_new();
    ck_assert_ptr_null(zps_prom_scalar(p, ZPS_PROM_GAUGE, "9lives", ""));
    ck_assert_ptr_null(zps_prom_scalar(p, ZPS_PROM_GAUGE, "a-b", ""));
    ck_assert_ptr_null(zps_prom_scalar(p, ZPS_PROM_GAUGE, "", ""));
    ck_assert_ptr_nonnull(zps_prom_scalar(p, ZPS_PROM_GAUGE, "ok:name_1", ""));
    ck_assert_ptr_null(zps_prom_scalar(p, ZPS_PROM_GAUGE, "ok:name_1", "")); /* duplicate */
    zps_prom_fam_t *f = zps_prom_family(p, ZPS_PROM_GAUGE, "g", "", 0, NULL);
    const char *colon[] = {"a:b", "v", NULL}, *under[] = {"__x", "v", NULL},
               *dup[] = {"a", "1", "a", "2", NULL}, *ok[] = {"a", "1", NULL};
    ck_assert_ptr_null(zps_prom_series(f, colon));
    ck_assert_ptr_null(zps_prom_series(f, under));
    ck_assert_ptr_null(zps_prom_series(f, dup));
    ck_assert_ptr_nonnull(zps_prom_series(f, ok));
    ck_assert_ptr_null(zps_prom_series(f, ok)); /* same label set twice */
    /* histograms: increasing finite bounds, no "le" label, at least one bucket */
    const double up[] = {1, 2}, down[] = {2, 1}, inf[] = {1, INFINITY};
    ck_assert_ptr_null(zps_prom_family(p, ZPS_PROM_HISTOGRAM, "h1", "", 2, down));
    ck_assert_ptr_null(zps_prom_family(p, ZPS_PROM_HISTOGRAM, "h2", "", 2, inf));
    ck_assert_ptr_null(zps_prom_family(p, ZPS_PROM_HISTOGRAM, "h3", "", 0, NULL));
    zps_prom_fam_t *h = zps_prom_family(p, ZPS_PROM_HISTOGRAM, "h4", "", 2, up);
    const char *le[] = {"le", "1", NULL};
    ck_assert_ptr_null(zps_prom_series(h, le));
    zps_prom_destroy(&p);
}
END_TEST

START_TEST(values_formatted)
{
    char b[32];
    ck_assert_str_eq(zps_prom_format_value(0, b), "0");
    ck_assert_str_eq(zps_prom_format_value(-0.0, b), "0");
    ck_assert_str_eq(zps_prom_format_value(12345678901234.0, b), "12345678901234");
    ck_assert_str_eq(zps_prom_format_value(0.1, b), "0.1");
    ck_assert_str_eq(zps_prom_format_value(1.0 / 3, b), "0.3333333333333333");
    ck_assert_str_eq(zps_prom_format_value(1e300, b), "1e+300");
    ck_assert_str_eq(zps_prom_format_value(NAN, b), "NaN");
    ck_assert_str_eq(zps_prom_format_value(INFINITY, b), "+Inf");
    ck_assert_str_eq(zps_prom_format_value(-INFINITY, b), "-Inf");
    ck_assert(strtod(zps_prom_format_value(0.6931471805599453, b), NULL) == 0.6931471805599453);
}
END_TEST

START_TEST(listen_spec_parsed)
{
    char a[16], err[200];
    uint16_t port;
    ck_assert_int_eq(zps_metrics_parse_listen(":9100", a, &port, err, sizeof err), 0);
    ck_assert_str_eq(a, "127.0.0.1");
    ck_assert_uint_eq(port, 9100);
    ck_assert_int_eq(zps_metrics_parse_listen("0.0.0.0:80", a, &port, err, sizeof err), 0);
    ck_assert_str_eq(a, "0.0.0.0");
    ck_assert_int_eq(zps_metrics_parse_listen("*:0", a, &port, err, sizeof err), 0);
    ck_assert_str_eq(a, "0.0.0.0");
    ck_assert_uint_eq(port, 0);
    ck_assert_int_eq(zps_metrics_parse_listen("localhost:1", a, &port, err, sizeof err), 0);
    ck_assert_str_eq(a, "127.0.0.1");
    ck_assert_int_eq(zps_metrics_parse_listen("9100", a, &port, err, sizeof err), -1);
    ck_assert_int_eq(zps_metrics_parse_listen(":65536", a, &port, err, sizeof err), -1);
    ck_assert_int_eq(zps_metrics_parse_listen(":-1", a, &port, err, sizeof err), -1);
    ck_assert_int_eq(zps_metrics_parse_listen("host.example:9", a, &port, err, sizeof err), -1);
    ck_assert(strstr(err, "not an IPv4 address") != NULL);
}
END_TEST

/* One request over a fresh loopback connection; the whole answer in out. */
static void s_http(const char *addr, const char *req, char *out, size_t outlen)
{
    const char *colon = strrchr(addr, ':');
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    size_t n = 0;
    ssize_t r;
    while (n + 1 < outlen && (r = read(fd, out + n, outlen - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = 0;
    close(fd);
}

START_TEST(endpoint_serves_snapshot)
{
    char err[200], resp[4096];
    zps_metrics_http_t *h = zps_metrics_http_new(":0", err, sizeof err);
    ck_assert_msg(h != NULL, "%s", err);
    const char *addr = zps_metrics_http_address(h);
    ck_assert(!strncmp(addr, "127.0.0.1:", 10) && strcmp(addr, "127.0.0.1:0"));
    zps_metrics_http_publish(h, strdup("zps_up 1\n"), 9);
    s_http(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", resp, sizeof resp);
    ck_assert_msg(!strncmp(resp, "HTTP/1.1 200", 12), "%s", resp);
    ck_assert(strstr(resp, "Content-Type: " ZPS_METRICS_CONTENT_TYPE "\r\n") != NULL);
    ck_assert(strstr(resp, "\r\n\r\nzps_up 1\n") != NULL);
    zps_metrics_http_publish(h, strdup("zps_up 2\n"), 9);
    s_http(addr, "GET /metrics HTTP/1.0\r\n\r\n", resp, sizeof resp);
    ck_assert(strstr(resp, "\r\n\r\nzps_up 2\n") != NULL);
    s_http(addr, "HEAD /metrics HTTP/1.0\r\n\r\n", resp, sizeof resp);
    ck_assert_msg(strstr(resp, " 200 ") != NULL, "%s", resp);
    ck_assert(strstr(resp, "zps_up") == NULL); /* headers only */
    s_http(addr, "GET /other HTTP/1.0\r\n\r\n", resp, sizeof resp);
    ck_assert_msg(!strncmp(resp, "HTTP/1.0 404", 12) || !strncmp(resp, "HTTP/1.1 404", 12), "%s", resp);
    s_http(addr, "POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc", resp, sizeof resp);
    ck_assert_msg(strstr(resp, " 405 ") != NULL, "%s", resp);
    s_http(addr, "\x01\x02garbage\r\n\r\n", resp, sizeof resp);
    ck_assert(strstr(resp, "zps_up") == NULL);
    ck_assert_uint_ge(zps_metrics_http_requests(h), 4);
    zps_metrics_http_destroy(&h);
    ck_assert_ptr_null(h);
    /* a bad address is an error naming it */
    ck_assert_ptr_null(zps_metrics_http_new("10.0.0.300:1", err, sizeof err));
    ck_assert(strstr(err, "10.0.0.300") != NULL);
}
END_TEST

/* A server with --metrics-listen: its page names it and counts its tables;
 * without the option it has no endpoint. */
START_TEST(server_page)
{
    ps_server_conf_t c;
    ps_server_conf_defaults(&c);
    snprintf(c.metrics_listen, sizeof c.metrics_listen, ":0");
    c.rank = 1;
    c.nservers = 2;
    c.capacity_hint = 1024;
    FILE *devnull = fopen("/dev/null", "w");
    zps_log_t *log = zps_log_new("server", 1, devnull);
    char err[600], resp[16384];
    ps_server_t *s = ps_server_new(&c, log, err, sizeof err);
    ck_assert_msg(s != NULL, "%s", err);
    const char *addr = ps_server_metrics_address(s);
    ck_assert_ptr_nonnull(addr);
    s_http(addr, "GET /metrics HTTP/1.0\r\n\r\n", resp, sizeof resp);
    ck_assert_msg(strstr(resp, "\nzps_info{role=\"server\",rank=\"1\",version=\"") != NULL, "%s", resp);
    ck_assert(strstr(resp, "\nzps_keys_stored 0\n") != NULL);
    ck_assert(strstr(resp, "\nzps_pushes_total 0\n") != NULL);
    ck_assert(strstr(resp, "\nzps_rejected_requests_total{reason=\"limit\"} 0\n") != NULL);
    ck_assert(strstr(resp, "\nzps_request_duration_seconds_count{type=\"push\"} 0\n") != NULL);
    ck_assert(strstr(resp, "zps_worker_lag_clocks") == NULL); /* async: no clocks */
    ps_server_destroy(&s);
    /* without --metrics-listen: no endpoint */
    c.metrics_listen[0] = 0;
    s = ps_server_new(&c, log, err, sizeof err);
    ck_assert_msg(s != NULL, "%s", err);
    ck_assert_ptr_null(ps_server_metrics_address(s));
    ps_server_destroy(&s);
    zps_log_destroy(&log);
    fclose(devnull);
}
END_TEST

Suite *suite_prom(void)
{
    Suite *s = suite_create("prom");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, render_counter_gauge_exact);
    tcase_add_test(tc, labels_escaped_in_order);
    tcase_add_test(tc, histogram_cumulative_buckets);
    tcase_add_test(tc, bad_names_refused);
    tcase_add_test(tc, values_formatted);
    tcase_add_test(tc, listen_spec_parsed);
    tcase_add_test(tc, endpoint_serves_snapshot);
    tcase_add_test(tc, server_page);
    suite_add_tcase(s, tc);
    return s;
}
