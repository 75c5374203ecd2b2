/* ctl_top: see ctl_top.h.
 *
 * DESIGN
 * Everything comes from /metrics, so top needs no admin key and sees
 * workers too (their counters live only in them).  Each round fetches
 * every target with libcurl (Debian's maintained HTTP client; 2 s timeout
 * per target, loopback or whatever address the target names) and keeps the
 * few samples it shows, found by name in the text format: a line is
 * `name{labels} value`, and only zps_info's labels are read (role, rank).
 * Rates are the difference of two rounds' counters over the time between
 * them, so the first frame of a live view has none ("-"); --once scrapes
 * twice.  A body is capped at 1 MiB: a target that sends more is shown
 * DOWN, not read on. */
#include "ctl_top.h"

#include <curl/curl.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zps_args.h"
#include "zps_time.h"

#define TOP_MAX_TARGETS 1024
#define TOP_MAX_BODY (1 << 20)
#define TOP_LAG_WORKERS 64     /* the servers' zps_worker_lag_clocks cover these ranks */

/* What one scrape of one target gave. */
typedef struct {
    int up;
    char err[128];
    char role[16];
    long rank;
    double t;                  /* when (seconds, monotonic) */
    /* server */
    double keys, table_bytes, pushes, pulls, held, lag, peers, rejected;
    double wlag[TOP_LAG_WORKERS];   /* per worker rank, as this server sees it (NAN: none) */
    /* worker */
    double examples, rate, loss, holdout, epoch, epochs, progress, clock;
} top_sample_t;

typedef struct {
    char *p;
    size_t len;
    int over;
} top_body_t;

static volatile sig_atomic_t g_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static size_t s_write(char *data, size_t size, size_t n, void *ud)
{
    top_body_t *b = ud;
    size_t add = size * n;
    if (b->len + add > TOP_MAX_BODY) {
        b->over = 1;
        return 0;
    }
    char *p = realloc(b->p, b->len + add + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, data, add);
    b->p = p;
    b->len += add;
    b->p[b->len] = 0;
    return add;
}

/* The value of the sample on line (after the name and labels), NAN if none. */
static double s_value(const char *line)
{
    const char *v = line;
    if (*v == '{') {
        /* label values may hold '}' inside quotes */
        int q = 0;
        for (v++; *v && (q || *v != '}'); v++) {
            if (*v == '\\' && q && v[1])
                v++;
            else if (*v == '"')
                q = !q;
        }
        if (*v == '}')
            v++;
    }
    char *end;
    double d = strtod(v, &end);
    return end == v ? NAN : d;
}

/* The value of label name in a {..} label block, into out. */
static void s_label(const char *labels, const char *name, char *out, size_t outlen)
{
    char key[40];
    snprintf(key, sizeof key, "%s=\"", name);
    const char *p = strstr(labels, key);
    out[0] = 0;
    if (!p)
        return;
    p += strlen(key);
    size_t i = 0;
    while (*p && *p != '"' && i + 1 < outlen)
        out[i++] = *p++;
    out[i] = 0;
}

static void s_parse(const char *text, top_sample_t *s)
{
    static const struct {
        const char *name;
        size_t off;
    } want[] = {
        {"zps_keys_stored", offsetof(top_sample_t, keys)},
        {"zps_table_bytes", offsetof(top_sample_t, table_bytes)},
        {"zps_pushes_total", offsetof(top_sample_t, pushes)},
        {"zps_pulls_total", offsetof(top_sample_t, pulls)},
        {"zps_held_pulls", offsetof(top_sample_t, held)},
        {"zps_staleness_clocks", offsetof(top_sample_t, lag)},
        {"zps_connected_peers", offsetof(top_sample_t, peers)},
        {"zps_worker_examples_total", offsetof(top_sample_t, examples)},
        {"zps_worker_examples_per_second", offsetof(top_sample_t, rate)},
        {"zps_worker_train_loss", offsetof(top_sample_t, loss)},
        {"zps_worker_holdout_loss", offsetof(top_sample_t, holdout)},
        {"zps_worker_epoch", offsetof(top_sample_t, epoch)},
        {"zps_worker_epochs", offsetof(top_sample_t, epochs)},
        {"zps_worker_progress_ratio", offsetof(top_sample_t, progress)},
        {"zps_worker_clock", offsetof(top_sample_t, clock)},
    };
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        if (*line != '#') {
            size_t n = strcspn(line, "{ \n");
            if (n == 8 && !strncmp(line, "zps_info", 8) && line[n] == '{') {
                char rank[16];
                s_label(line + n, "role", s->role, sizeof s->role);
                s_label(line + n, "rank", rank, sizeof rank);
                s->rank = rank[0] ? strtol(rank, NULL, 10) : -1;
            } else if (n == 21 && !strncmp(line, "zps_worker_lag_clocks", 21) && line[n] == '{') {
                char w[16];
                s_label(line + n, "worker", w, sizeof w);
                long r = w[0] ? strtol(w, NULL, 10) : -1;
                if (r >= 0 && r < TOP_LAG_WORKERS)
                    s->wlag[r] = s_value(line + n);
            } else if (n == 27 && !strncmp(line, "zps_rejected_requests_total", 27)) {
                double v = s_value(line + n);
                if (isfinite(v))
                    s->rejected += v;
            } else {
                for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
                    if (strlen(want[k].name) == n && !strncmp(line, want[k].name, n)) {
                        *(double *)(void *)((char *)s + want[k].off) = s_value(line + n);
                        break;
                    }
            }
        }
        line = nl ? nl + 1 : NULL;
    }
}

static void s_scrape(CURL *h, const char *target, top_sample_t *s)
{
    memset(s, 0, sizeof *s);
    s->rank = -1;
    s->loss = s->holdout = NAN;
    for (int i = 0; i < TOP_LAG_WORKERS; i++)
        s->wlag[i] = NAN;
    char url[300];
    snprintf(url, sizeof url, "http://%s/metrics", target);
    top_body_t b = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    CURLcode rc = curl_easy_perform(h);
    s->t = zps_now_s();
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK)
        snprintf(s->err, sizeof s->err, "%s", b.over ? "answer over 1 MiB" : curl_easy_strerror(rc));
    else if (code != 200)
        snprintf(s->err, sizeof s->err, "HTTP status %ld", code);
    else if (!b.p)
        snprintf(s->err, sizeof s->err, "empty answer");
    else {
        s_parse(b.p, s);
        s->up = s->role[0] != 0;
        if (!s->up)
            snprintf(s->err, sizeof s->err, "no zps_info: not a zps daemon?");
    }
    free(b.p);
}

/* "12.3" or "-" when the rate is unknown. */
static const char *s_rate(double now, double then, double dt, char *buf, size_t len)
{
    if (!(dt > 0) || !isfinite(now) || !isfinite(then) || now < then)
        return "-";
    snprintf(buf, len, "%.1f", (now - then) / dt);
    return buf;
}

static const char *s_num(double v, const char *fmt, char *buf, size_t len)
{
    if (!isfinite(v))
        return "-";
    snprintf(buf, len, fmt, v);
    return buf;
}

static void s_frame(FILE *f, char **targets, size_t n, const top_sample_t *cur,
                    const top_sample_t *prev, int have_prev, double interval, int tty)
{
    if (tty)
        fputs("\033[H\033[2J", f);
    time_t now = time(NULL);
    struct tm tm;
    char ts[32];
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    size_t up = 0;
    const top_sample_t *first_server = NULL; /* its clocks give the workers' lag */
    for (size_t i = 0; i < n; i++) {
        up += cur[i].up != 0;
        if (cur[i].up && !strcmp(cur[i].role, "server") && !first_server)
            first_server = &cur[i];
    }
    fprintf(f, "zps top  %s  %zu of %zu targets up  (every %g s)\n", ts, up, n, interval);
    fprintf(f, "%-7s %-5s %-21s %10s %9s %9s %9s %6s %5s %6s %8s\n", "SERVER", "RANK", "TARGET",
            "KEYS", "TABLE_MB", "PUSH/S", "PULL/S", "HELD", "LAG", "PEERS", "REJECTED");
    char a[32], b[32], c[32];
    for (size_t i = 0; i < n; i++) {
        const top_sample_t *s = &cur[i], *p = &prev[i];
        if (!s->up || strcmp(s->role, "server"))
            continue;
        double dt = have_prev && p->up ? s->t - p->t : 0;
        fprintf(f, "%-7s %-5ld %-21s %10.0f %9.1f %9s %9s %6.0f %5.0f %6.0f %8.0f\n", "server",
                s->rank, targets[i], s->keys, s->table_bytes / 1048576.0,
                s_rate(s->pushes, p->pushes, dt, a, sizeof a),
                s_rate(s->pulls, p->pulls, dt, b, sizeof b), s->held, s->lag, s->peers,
                s->rejected);
    }
    fprintf(f, "%-7s %-5s %-21s %10s %9s %9s %9s %6s %5s %6s %8s\n", "WORKER", "RANK", "TARGET",
            "EXAMPLES", "EX/S", "LOSS", "HOLDOUT", "EPOCH", "LAG", "DONE%", "");
    for (size_t i = 0; i < n; i++) {
        const top_sample_t *s = &cur[i], *p = &prev[i];
        if (!s->up || strcmp(s->role, "worker"))
            continue;
        double dt = have_prev && p->up ? s->t - p->t : 0;
        const char *rate = s_rate(s->examples, p->examples, dt, a, sizeof a);
        if (!strcmp(rate, "-"))
            rate = s_num(s->rate, "%.1f", a, sizeof a);
        char ep[24];
        if (s->epochs > 0)
            snprintf(ep, sizeof ep, "%.0f/%.0f", s->epoch, s->epochs);
        else
            snprintf(ep, sizeof ep, "%.0f/auto", s->epoch);
        char lag[24];
        double l = first_server && s->rank >= 0 && s->rank < TOP_LAG_WORKERS
                       ? first_server->wlag[s->rank] : NAN;
        s_num(l, "%.0f", lag, sizeof lag);
        fprintf(f, "%-7s %-5ld %-21s %10.0f %9s %9s %9s %6s %5s %6.1f\n", "worker", s->rank,
                targets[i], s->examples, rate, s_num(s->loss, "%.5f", b, sizeof b),
                s_num(s->holdout, "%.5f", c, sizeof c), ep, isfinite(l) ? lag : "-",
                100.0 * (isfinite(s->progress) ? s->progress : 0));
    }
    for (size_t i = 0; i < n; i++)
        if (!cur[i].up)
            fprintf(f, "%-7s %-5s %-21s %s\n", "DOWN", "-", targets[i], cur[i].err);
    if (!tty)
        fputc('\n', f);
    fflush(f);
}

static void s_usage(FILE *f)
{
    fprintf(f, "usage: zps-ctl top --metrics HOST:PORT,HOST:PORT,... [--interval S] [--once]\n"
               "  a live view of a job from its daemons' /metrics endpoints (zps-launch\n"
               "  --metrics-port-base prints the list): per server keys, table MB, push/s,\n"
               "  pull/s, held pulls, clock lag, peers, rejected requests; per worker\n"
               "  examples, examples/s, train and holdout loss, epoch, clock lag, progress.\n"
               "  --interval S   seconds between frames                         [1]\n"
               "  --once         one frame (two scrapes S apart, for the rates), then exit:\n"
               "                 0 if every target answered, else 1\n");
}

int ctl_top_main(int argc, char **argv)
{
    const char *list = NULL;
    double interval = 1.0;
    int once = 0;
    enum { O_METRICS = 1, O_INTERVAL, O_ONCE, O_HELP };
    static const struct option lo[] = {{"metrics", required_argument, 0, O_METRICS},
                                       {"interval", required_argument, 0, O_INTERVAL},
                                       {"once", no_argument, 0, O_ONCE},
                                       {"help", no_argument, 0, O_HELP},
                                       {0, 0, 0, 0}};
    char err[200];
    int ch, li;
    optind = 0;
    while ((ch = zps_getopt(argc, argv, NULL, lo, &li, err, sizeof err)) != -1) {
        switch (ch) {
        case O_METRICS: list = optarg; break;
        case O_INTERVAL:
            if (zps_parse_double(optarg, &interval) || !(interval >= 0.1) || interval > 3600) {
                fprintf(stderr, "zps-ctl top: --interval needs seconds in 0.1..3600, got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case O_ONCE: once = 1; break;
        case O_HELP: s_usage(stdout); return 0;
        default: fprintf(stderr, "zps-ctl top: %s\n", err); s_usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "zps-ctl top: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!list || !*list) {
        fprintf(stderr, "zps-ctl top: --metrics HOST:PORT,... is needed\n");
        s_usage(stderr);
        return 2;
    }
    char *copy = strdup(list);
    char **targets = calloc(TOP_MAX_TARGETS, sizeof *targets);
    top_sample_t *cur = calloc(TOP_MAX_TARGETS, sizeof *cur);
    top_sample_t *prev = calloc(TOP_MAX_TARGETS, sizeof *prev);
    size_t n = 0;
    int rc = 0;
    if (!copy || !targets || !cur || !prev) {
        fprintf(stderr, "zps-ctl top: out of memory\n");
        rc = 1;
        goto out;
    }
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == TOP_MAX_TARGETS || strlen(t) > 200 || strpbrk(t, "/ ?#@")) {
            fprintf(stderr, "zps-ctl top: bad or too many targets at '%s' (HOST:PORT, at most "
                    "%d)\n", t, TOP_MAX_TARGETS);
            rc = 2;
            goto out;
        }
        targets[n++] = t;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "zps-ctl top: cannot initialise libcurl\n");
        rc = 1;
        goto out;
    }
    CURL *h = curl_easy_init();
    if (!h) {
        fprintf(stderr, "zps-ctl top: cannot initialise libcurl\n");
        curl_global_cleanup();
        rc = 1;
        goto out;
    }
    signal(SIGINT, s_on_signal);
    signal(SIGTERM, s_on_signal);
    int tty = isatty(STDOUT_FILENO);
    int have_prev = 0;
    while (!g_stop) {
        double t0 = zps_now_s();
        for (size_t i = 0; i < n; i++)
            s_scrape(h, targets[i], &cur[i]);
        if (!once || have_prev) {
            s_frame(stdout, targets, n, cur, prev, have_prev, interval, tty && !once);
            if (once) {
                for (size_t i = 0; i < n; i++)
                    if (!cur[i].up)
                        rc = 1;
                break;
            }
        }
        memcpy(prev, cur, n * sizeof *cur);
        have_prev = 1;
        double left = interval - (zps_now_s() - t0);
        if (left > 0 && !g_stop) {
            struct timespec ts = {(time_t)left, (long)((left - (time_t)left) * 1e9)};
            nanosleep(&ts, NULL);
        }
    }
    curl_easy_cleanup(h);
    curl_global_cleanup();
out:
    free(copy);
    free(targets);
    free(cur);
    free(prev);
    return rc;
}
