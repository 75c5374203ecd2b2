/* ps_srv_prom: the server's Prometheus metrics (--metrics-listen).
 *
 * DESIGN
 * The numbers are the ones the server already keeps for STATS and its
 * last log lines (ps_server_stats_t, the per-code error counts, the held
 * pulls, the connection map, the clocks): nothing is counted twice.  Each
 * publish (at most every PS_PROM_EVERY_MS, from the loop's maintenance
 * pass) copies them into a zps_prom registry, renders it and hands the text
 * to zps_metrics_http, whose own thread serves it (see zps_metrics_http.c
 * for why a snapshot: a scraper never touches the loop).  The one thing
 * measured here is request latency: psv_handle times each PULL and PUSH
 * from the start of its handling to its reply (a held pull's wait for the
 * slowest worker is not included: zps_pull_waits_total counts those). */
#include "ps_srv.h"

#include <time.h>

#include "zps_metrics_http.h"
#include "zps_prom.h"

#define PS_PROM_EVERY_MS 100
#define PS_NCODES 16 /* ZPS_EINVAL .. ZPS_ESEQ */
#define PS_PROM_LAG_WORKERS 64 /* workers with a zps_worker_lag_clocks series */

/* Label of a refused request's reason, by error code. */
static const char *const s_reason[PS_NCODES] = {
    "invalid",   "no_memory", "protocol", "version",    "timeout",        "server",
    "io",        "mismatch",  "busy",     "too_big",    "interrupted",    "key_cache_miss",
    "permission", "limit",    "non_finite", "sequence"};

struct ps_prom {
    zps_prom_t *reg;
    zps_metrics_http_t *http;
    int64_t last_ms;
    uint64_t rejected[PS_NCODES];
    zps_prom_series_t *lat[2];   /* pull, push */
    zps_prom_series_t *keys, *bytes, *pushes, *pulls, *keys_pushed, *keys_pulled, *bytes_in,
        *bytes_out, *received, *applied, *dups, *rejected_pushes, *rej[PS_NCODES], *held,
        *held_total, *pull_waits, *staleness, *staleness_max, *min_clock, *workers_dropped,
        *peers, *refused_peers, *dropped_replies, *checkpoints, *lost, *restored, *start,
        *uptime, *maint_gap, *scrapes, *reply_queued;
    zps_prom_series_t *admitted, *adm_rej_keys, *adm_rej_pushes; /* admission */
    zps_prom_series_t *expired, *evicted;
    zps_prom_series_t *split; /* --threads */
    zps_prom_series_t *wlag[PS_PROM_LAG_WORKERS];
    uint32_t nwlag;
};

#define C ZPS_PROM_COUNTER
#define G ZPS_PROM_GAUGE

int psv_prom_new(ps_server_t *s, char *err, size_t errlen)
{
    struct ps_prom *p = calloc(1, sizeof *p);
    if (!p || !(p->reg = zps_prom_new())) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return ZPS_ENOMEM;
    }
    s->prom = p;
    zps_prom_t *r = p->reg;
    char rank[16];
    snprintf(rank, sizeof rank, "%u", s->conf.rank);
    const char *il[] = {"role", "server", "rank", rank, "version", ZPS_VERSION, NULL};
    zps_prom_set(zps_prom_series(zps_prom_family(r, G, "zps_info", "Role, rank and version of "
                                                 "this process (always 1).", 0, NULL), il), 1);
    p->start = zps_prom_scalar(r, G, "zps_start_time_seconds", "When this process started, "
                               "seconds since the Unix epoch.");
    p->uptime = zps_prom_scalar(r, G, "zps_uptime_seconds", "Seconds since this process started.");
    p->keys = zps_prom_scalar(r, G, "zps_keys_stored", "Keys stored in this server's tables.");
    p->bytes = zps_prom_scalar(r, G, "zps_table_bytes", "Bytes used by this server's tables.");
    p->pushes = zps_prom_scalar(r, C, "zps_pushes_total", "Pushes acknowledged (applied or "
                                "duplicate).");
    p->pulls = zps_prom_scalar(r, C, "zps_pulls_total", "Pulls answered.");
    p->keys_pushed = zps_prom_scalar(r, C, "zps_keys_pushed_total", "Keys in acknowledged "
                                     "pushes.");
    p->keys_pulled = zps_prom_scalar(r, C, "zps_keys_pulled_total", "Keys in answered pulls.");
    p->bytes_in = zps_prom_scalar(r, C, "zps_received_bytes_total", "Message bytes received.");
    p->bytes_out = zps_prom_scalar(r, C, "zps_sent_bytes_total", "Reply bytes sent.");
    p->received = zps_prom_scalar(r, C, "zps_pushes_received_total", "Pushes received "
                                  "(applied, duplicate or rejected).");
    p->applied = zps_prom_scalar(r, C, "zps_pushes_applied_total", "Pushes applied to the "
                                 "tables (once each).");
    p->dups = zps_prom_scalar(r, C, "zps_duplicate_pushes_total", "Pushes received again and "
                              "discarded (acknowledged, not applied).");
    p->rejected_pushes = zps_prom_scalar(r, C, "zps_rejected_pushes_total", "Pushes refused "
                                         "whole.");
    /* admission (--admit; 0 without it) */
    p->expired = zps_prom_scalar(r, C, "zps_expired_keys_total", "Rows deleted by expiry "
                                 "(--expire-after).");
    p->evicted = zps_prom_scalar(r, C, "zps_evicted_keys_total", "Rows evicted to make room "
                                 "at the capacity (--evict).");
    p->split = zps_prom_scalar(r, C, "zps_split_requests_total", "Pulls and pushes whose "
                               "table work was split over the server's threads (--threads).");
    p->admitted = zps_prom_scalar(r, C, "zps_admitted_keys_total", "Keys given a row by "
                                  "feature admission (--admit).");
    p->adm_rej_keys = zps_prom_scalar(r, C, "zps_admission_rejected_keys_total", "Key updates "
                                      "dropped because the key was not admitted yet (once per "
                                      "push).");
    p->adm_rej_pushes = zps_prom_scalar(r, C, "zps_admission_rejected_pushes_total", "Pushes "
                                        "with at least one key not admitted yet.");
    zps_prom_fam_t *rf = zps_prom_family(r, C, "zps_rejected_requests_total", "Requests "
                                         "answered with an error, by reason.", 0, NULL);
    for (int i = 0; i < PS_NCODES; i++) {
        const char *l[] = {"reason", s_reason[i], NULL};
        p->rej[i] = zps_prom_series(rf, l);
    }
    static const double lb[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
    zps_prom_fam_t *lf = zps_prom_family(r, ZPS_PROM_HISTOGRAM, "zps_request_duration_seconds",
                                         "Time to handle a request, from its arrival to its "
                                         "reply, by type.", sizeof lb / sizeof lb[0], lb);
    const char *lpull[] = {"type", "pull", NULL}, *lpush[] = {"type", "push", NULL};
    p->lat[0] = zps_prom_series(lf, lpull);
    p->lat[1] = zps_prom_series(lf, lpush);
    p->held = zps_prom_scalar(r, G, "zps_held_pulls", "Pulls waiting for the slowest worker "
                              "(ssp/bsp).");
    p->pull_waits = zps_prom_scalar(r, C, "zps_pull_waits_total", "Pulls that had to wait for "
                                    "the slowest worker (ssp/bsp).");
    p->staleness = zps_prom_scalar(r, G, "zps_staleness_clocks", "Clocks between the fastest "
                                   "and the slowest live worker (ssp/bsp; 0 under async).");
    p->staleness_max = zps_prom_scalar(r, G, "zps_staleness_max_clocks", "Most clocks a pull "
                                       "answered was ahead of the slowest worker (ssp).");
    p->min_clock = zps_prom_scalar(r, G, "zps_min_clock", "Clock the slowest live worker has "
                                   "finished (ssp/bsp).");
    if (s->clock) {
        zps_prom_fam_t *wf = zps_prom_family(r, G, "zps_worker_lag_clocks", "Clocks a worker "
                                             "is behind the fastest live worker, as this server "
                                             "sees them (ssp/bsp; NaN: not live; the first 64 "
                                             "ranks).", 0, NULL);
        p->nwlag = ps_clock_workers(s->clock);
        if (p->nwlag > PS_PROM_LAG_WORKERS)
            p->nwlag = PS_PROM_LAG_WORKERS;
        for (uint32_t w = 0; w < p->nwlag; w++) {
            char wr[16];
            snprintf(wr, sizeof wr, "%u", w);
            const char *l[] = {"worker", wr, NULL};
            p->wlag[w] = zps_prom_series(wf, l);
        }
    }
    p->workers_dropped = zps_prom_scalar(r, C, "zps_workers_dropped_total", "Workers dropped "
                                         "from the clock after the heartbeat timeout.");
    p->peers = zps_prom_scalar(r, G, "zps_connected_peers", "Connections now served.");
    p->refused_peers = zps_prom_scalar(r, C, "zps_refused_connections_total", "Messages "
                                       "refused by the connection limit.");
    p->dropped_replies = zps_prom_scalar(r, C, "zps_dropped_replies_total", "Replies dropped: "
                                         "the peer's queue was full or it had gone.");
    p->reply_queued = zps_prom_scalar(r, G, "zps_reply_queued_bytes", "Reply bytes queued "
                                      "unread by peers, all connections.");
    p->checkpoints = zps_prom_scalar(r, C, "zps_checkpoints_total", "Checkpoints written.");
    p->restored = zps_prom_scalar(r, C, "zps_restored_pushes_total", "Pushes in the "
                                  "checkpoint restored at start.");
    p->lost = zps_prom_scalar(r, G, "zps_lost_pushes", "Acknowledged pushes a restore lost "
                              "(estimate; clients resend them).");
    p->maint_gap = zps_prom_scalar(r, G, "zps_maintenance_max_gap_seconds", "Longest time "
                                   "between two maintenance passes of the loop.");
    p->scrapes = zps_prom_scalar(r, C, "zps_metrics_requests_total", "HTTP requests to this "
                                 "metrics endpoint.");
    zps_prom_set(p->start, (double)time(NULL) - (double)(zps_now_ms() - s->start_ms) / 1000.0);
    p->http = zps_metrics_http_new(s->conf.metrics_listen, err, errlen);
    if (!p->http)
        return ZPS_EINVAL;
    psv_prom_publish(s, 1);
    zps_info(s->log, "metrics on http://%s/metrics", zps_metrics_http_address(p->http));
    return 0;
}

void psv_prom_destroy(ps_server_t *s)
{
    struct ps_prom *p = s->prom;
    if (!p)
        return;
    zps_metrics_http_destroy(&p->http);
    zps_prom_destroy(&p->reg);
    free(p);
    s->prom = NULL;
}

const char *psv_prom_address(const ps_server_t *s)
{
    return s->prom && s->prom->http ? zps_metrics_http_address(s->prom->http) : NULL;
}

void psv_prom_rejected(ps_server_t *s, int code)
{
    int i = ZPS_EINVAL - code;
    if (s->prom && i >= 0 && i < PS_NCODES)
        s->prom->rejected[i]++;
}

void psv_prom_request(ps_server_t *s, int push, int64_t ns)
{
    if (s->prom)
        zps_prom_observe(s->prom->lat[push ? 1 : 0], (double)ns * 1e-9);
}

/* Clocks between the fastest and the slowest live worker; each live
 * worker's distance from the fastest into the per-worker series. */
static uint64_t s_lag(const ps_server_t *s)
{
    struct ps_prom *p = s->prom;
    if (!s->clock || s->min_clock == UINT64_MAX) {
        for (uint32_t w = 0; w < p->nwlag; w++)
            zps_prom_set(p->wlag[w], NAN);
        return 0;
    }
    uint64_t hi = s->min_clock;
    for (uint32_t w = 0; w < ps_clock_workers(s->clock); w++)
        if (ps_clock_live(s->clock, w) && ps_clock_finished(s->clock, w) > hi)
            hi = ps_clock_finished(s->clock, w);
    for (uint32_t w = 0; w < p->nwlag; w++)
        zps_prom_set(p->wlag[w], ps_clock_live(s->clock, w)
                                     ? (double)(hi - ps_clock_finished(s->clock, w)) : NAN);
    return hi - s->min_clock;
}

void psv_prom_publish(ps_server_t *s, int force)
{
    struct ps_prom *p = s->prom;
    if (!p || !p->http)
        return;
    int64_t now = zps_now_ms();
    if (!force && now - p->last_ms < PS_PROM_EVERY_MS)
        return;
    p->last_ms = now;
    ps_server_stats_t st;
    ps_server_get_stats(s, &st);
    zps_prom_set(p->uptime, (double)st.uptime_ms / 1000.0);
    zps_prom_set(p->keys, (double)st.keys_stored);
    zps_prom_set(p->bytes, (double)st.bytes_used);
    zps_prom_set(p->pushes, (double)st.pushes);
    zps_prom_set(p->pulls, (double)st.pulls);
    zps_prom_set(p->keys_pushed, (double)st.keys_pushed);
    zps_prom_set(p->keys_pulled, (double)st.keys_pulled);
    zps_prom_set(p->bytes_in, (double)st.bytes_in);
    zps_prom_set(p->bytes_out, (double)st.bytes_out);
    zps_prom_set(p->received, (double)st.received_pushes);
    zps_prom_set(p->applied, (double)st.applied_pushes);
    zps_prom_set(p->dups, (double)st.duplicate_pushes);
    zps_prom_set(p->rejected_pushes, (double)st.rejected_pushes);
    zps_prom_set(p->admitted, (double)st.admitted_keys); /* admission */
    zps_prom_set(p->adm_rej_keys, (double)st.admission_rejected_keys);
    zps_prom_set(p->adm_rej_pushes, (double)st.admission_rejected_pushes);
    zps_prom_set(p->expired, (double)st.expired_keys);
    zps_prom_set(p->evicted, (double)st.evicted_keys);
    zps_prom_set(p->split, (double)st.split_requests);
    for (int i = 0; i < PS_NCODES; i++)
        zps_prom_set(p->rej[i], (double)p->rejected[i]);
    zps_prom_set(p->held, (double)st.held_pulls);
    zps_prom_set(p->pull_waits, (double)st.pull_waits);
    zps_prom_set(p->staleness, (double)s_lag(s));
    zps_prom_set(p->staleness_max, (double)st.max_staleness);
    zps_prom_set(p->min_clock, (double)st.min_clock);
    zps_prom_set(p->workers_dropped, (double)st.workers_dropped);
    zps_prom_set(p->peers, (double)s->nconns);
    zps_prom_set(p->refused_peers, (double)st.refused_peers);
    zps_prom_set(p->dropped_replies, (double)st.dropped_replies);
    zps_prom_set(p->reply_queued, s->outq ? (double)atomic_load(s->outq) : 0.0);
    zps_prom_set(p->checkpoints, (double)st.checkpoints);
    zps_prom_set(p->restored, (double)st.restored_pushes);
    zps_prom_set(p->lost, (double)st.lost_pushes);
    zps_prom_set(p->maint_gap, (double)st.maintenance_max_gap_ms / 1000.0);
    zps_prom_set(p->scrapes, (double)zps_metrics_http_requests(p->http));
    size_t len;
    char *text = zps_prom_render(p->reg, &len);
    zps_metrics_http_publish(p->http, text, len);
}
