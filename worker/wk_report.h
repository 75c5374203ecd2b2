/* wk_report: a worker's running counts and the lines that show them: the
 * progress line every --progress-every seconds (examples/s and train loss
 * over the window since the last line, holdout loss, keys, traffic, push
 * bytes per key and compression ratio, retained MB, ETA) and the last lines
 * of a run (rows and rate, keys, traffic and compression; with servers the
 * pushes acknowledged per server and the retry/retention counts).  The
 * wording is fixed: tests and operators grep these lines.
 *
 * Ownership: nothing is kept; the functions read the client they are given. */
#ifndef WK_REPORT_H
#define WK_REPORT_H

#include <stdint.h>

#include "wk_client.h"
#include "zps_log.h"

typedef struct {
    uint64_t rows, keys_pulled, keys_pushed;
    double loss;          /* summed train loss */
    uint64_t push_raw;    /* bytes the pushes would take dense and uncompressed */
    double t_start;       /* when training started (zps_now_s) */
    /* the progress window: since the last progress line */
    double t_last;
    uint64_t rows_last;
    double loss_last;
} wk_tally_t;

/* The progress line at time now, and a new window.  ep names the epoch
 * ("3/10", "2/auto"), done is the fraction of it read (0..1), eta the time
 * left as text, ho_loss the last holdout logloss (NAN: none). */
void wk_report_progress(wk_tally_t *k, zps_log_t *log, wk_client_t *client, double now,
                        const char *ep, double done, const char *eta, double ho_loss);

/* The last lines at time now: "finished: ..." or, if failed, "stopped: ...";
 * the per-server lines unless local. */
void wk_report_end(const wk_tally_t *k, zps_log_t *log, wk_client_t *client, double now,
                   int failed, int local, uint32_t nservers);

#endif
