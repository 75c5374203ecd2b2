/* wk_report: see wk_report.h.
 *
 * DESIGN
 * The counts live in a plain struct the trainer updates in its loop (no
 * calls per batch); this module only turns them, and the client's traffic,
 * push-byte and retry counters, into text.  Raw push bytes are the
 * trainer's count (8 + 4 x floats per key, before sparsification), not the
 * client's, so the ratio shows what sparsification and the codecs saved. */
#include "wk_report.h"

#include <math.h>
#include <stdio.h>

void wk_report_progress(wk_tally_t *k, zps_log_t *log, wk_client_t *client, double now,
                        const char *ep, double done, const char *eta, double ho_loss)
{
    double dt = now - k->t_last;
    uint64_t rows = k->rows - k->rows_last;
    double loss = rows ? (k->loss - k->loss_last) / (double)rows : 0;
    uint64_t sent, recv, praw, pwire, resends;
    wk_client_traffic(client, &sent, &recv);
    wk_client_push_bytes(client, &praw, &pwire, &resends);
    praw = k->push_raw;
    char ho[40] = "";
    if (!isnan(ho_loss))
        snprintf(ho, sizeof ho, " | holdout loss %.5f", ho_loss);
    wk_client_retry_stats_t rs;
    wk_client_retry_stats(client, &rs);
    zps_info(log,
             "epoch %s %5.1f%% | %.0f ex/s | train loss %.5f%s | keys pulled %llu pushed %llu | "
             "MB sent %.1f recv %.1f | push %.2f B/key, %.1fx | retained %.1f MB | ETA %s",
             ep, 100.0 * done,
             dt > 0 ? (double)rows / dt : 0.0, loss, ho, (unsigned long long)k->keys_pulled,
             (unsigned long long)k->keys_pushed, (double)sent / 1e6, (double)recv / 1e6,
             k->keys_pulled ? (double)pwire / (double)k->keys_pulled : 0.0,
             pwire ? (double)praw / (double)pwire : 0.0, (double)rs.retained_bytes / 1e6, eta);
    k->t_last = now;
    k->rows_last = k->rows;
    k->loss_last = k->loss;
}

void wk_report_end(const wk_tally_t *k, zps_log_t *log, wk_client_t *client, double now,
                   int failed, int local, uint32_t nservers)
{
    double dt = now - k->t_start;
    uint64_t sent, recv, praw, pwire, resends;
    wk_client_traffic(client, &sent, &recv);
    wk_client_push_bytes(client, &praw, &pwire, &resends);
    praw = k->push_raw;
    zps_info(log, "%s: %llu rows in %.1fs (%.0f ex/s), %llu keys pulled, %llu pushed",
             failed ? "stopped" : "finished", (unsigned long long)k->rows, dt,
             dt > 0 ? k->rows / dt : 0.0, (unsigned long long)k->keys_pulled,
             (unsigned long long)k->keys_pushed);
    zps_info(log,
             "traffic: %.1f MB sent, %.1f MB received, %.1f B/example; pushes %.1f MB raw "
             "(12 B per key/value) -> %.1f MB on the wire (%.1fx, %.2f B/key)%s",
             (double)sent / 1e6, (double)recv / 1e6,
             k->rows ? (double)(sent + recv) / (double)k->rows : 0.0,
             (double)praw / 1e6, (double)pwire / 1e6, pwire ? (double)praw / (double)pwire : 0.0,
             k->keys_pulled ? (double)pwire / (double)k->keys_pulled : 0.0,
             resends ? ", some key lists resent (cache misses or retries)" : "");
    if (!local) {
        char acks[512];
        int n = 0;
        for (uint32_t sv = 0; sv < nservers && n < (int)sizeof acks - 24; sv++)
            n += snprintf(acks + n, sizeof acks - (size_t)n, "%s%llu", sv ? "," : "",
                          (unsigned long long)wk_client_acked(client, sv));
        zps_info(log, "pushes acknowledged per server: %s", acks);
        wk_client_retry_stats_t rs;
        wk_client_retry_stats(client, &rs);
        zps_info(log,
                 "pushes: %llu acknowledged, %llu retried, %llu resent after %llu server "
                 "restart(s), %llu probes; retained %.1f MB now (%llu pushes), peak %.1f MB "
                 "(%llu bytes); %llu waits for a checkpoint (%.1f s); %llu duplicate acks, %llu "
                 "stale replies ignored; pull retries %llu",
                 (unsigned long long)rs.acked, (unsigned long long)rs.retried,
                 (unsigned long long)rs.restart_resent, (unsigned long long)rs.restarts,
                 (unsigned long long)rs.probes, (double)rs.retained_bytes / 1e6,
                 (unsigned long long)rs.retained_pushes, (double)rs.retained_peak / 1e6,
                 (unsigned long long)rs.retained_peak, (unsigned long long)rs.cap_waits,
                 (double)rs.cap_wait_ms / 1000.0, (unsigned long long)rs.dup_acks,
                 (unsigned long long)rs.stale_replies, (unsigned long long)rs.pull_retried);
    }
}
