/* wk_auto: the policy of --epochs auto as pure functions (no I/O, no
 * allocation), so that its rules can be tested on sequences of numbers
 * (tests/check_auto.c).  wk_train applies the decisions and logs them;
 * wk_holdout keeps the rows this policy picks.  docs/architecture.md, "The
 * worker loop", says the same in prose.
 *
 * Holdout choice.  A row is named by a hash of its content (label, ids,
 * values: wk_auto_row_hash), never by its position, so the choice does not
 * depend on the order the reader returns rows in (shuffle windows, later
 * passes from the cache).  During the first pass a row whose hash is 0 mod
 * WK_HOLDOUT_EVERY joins the holdout while fewer than WK_HOLDOUT_CAP rows
 * are held and the holdout stays at most 1 in WK_HOLDOUT_EVERY of the rows
 * looked at so far (wk_auto_pick: the first row is always trained on and a
 * tiny shard keeps rows to train on).  Later passes skip exactly the held
 * hashes.
 *
 * Passes.  After every pass the holdout logloss L goes to wk_auto_pass,
 * which keeps the best loss so far and says, in this order:
 *   - step back: the step grew after the previous pass and L is not at
 *     least WK_AUTO_TOL (0.1%) below the best: the multiplier halves and
 *     never grows again; that pass does not stop the run (unless it is the
 *     last allowed), and its diagnostics are skipped by the caller;
 *   - doubled: the step may grow (--epochs auto with the norm optimizer,
 *     and no step back yet), this is not the run's first pass, L is more
 *     than WK_AUTO_GROW_TOL (5%) below the best, the multiplier stays <=
 *     WK_AUTO_GROW_MAX (16) and a further pass is allowed: it doubles;
 *   - stop: not the run's first pass and L not at least 0.1% below the best
 *     (WK_AUTO_STOP_NO_GAIN), or the last allowed pass
 *     (WK_AUTO_STOP_CAP: ZPS_AUTO_MAX_EPOCHS, 30).
 * "The run's first pass" is the first pass this process trains (a worker
 * resumed after a restart starts its history afresh). */
#ifndef WK_AUTO_H
#define WK_AUTO_H

#include <stddef.h>
#include <stdint.h>

#include "wk_data.h"

#define WK_HOLDOUT_EVERY 20
#define WK_HOLDOUT_CAP 10000
#define WK_AUTO_TOL 1e-3       /* stop when the holdout logloss improves by less, relatively */
#define WK_AUTO_GROW_TOL 0.05  /* double the step when it improves by more (norm) */
#define WK_AUTO_GROW_MAX 16.0f /* ... up to this multiple of --lr */

/* Hash of row i of b (label, ids, values); never 0. */
uint64_t wk_auto_row_hash(const wk_batch_t *b, size_t i);

/* Does a row of hash h, not yet held, join the holdout when held rows are
 * held and seen rows (this one included) have been looked at? */
int wk_auto_pick(uint64_t h, uint64_t held, uint64_t seen);

typedef struct {
    double best;        /* lowest holdout logloss so far (INFINITY before) */
    uint32_t best_pass; /* its pass (0-based) */
    float lr_scale;     /* the step's multiple of --lr (1 at the start) */
    int can_grow;       /* the step may still double */
    int grew;           /* it doubled after the previous pass */
} wk_auto_t;

enum { WK_AUTO_GO_ON = 0, WK_AUTO_STOP_NO_GAIN, WK_AUTO_STOP_CAP };

typedef struct {
    int improved;        /* L at least WK_AUTO_TOL below the previous best */
    int stepped_back;    /* the multiplier halved, growth off for good */
    int doubled;         /* the multiplier doubled */
    int stop;            /* WK_AUTO_GO_ON or the reason to stop */
    double prev_best;    /* the best before this pass (for the log lines) */
    uint32_t prev_best_pass;
} wk_auto_verdict_t;

/* grow: the step may grow at all (auto with the norm optimizer). */
void wk_auto_init(wk_auto_t *a, int grow);

/* The holdout logloss after pass (0-based) of a run whose first pass is
 * first and that allows max passes: updates a and fills v. */
void wk_auto_pass(wk_auto_t *a, double loss, uint32_t pass, uint32_t first, uint32_t max,
                  wk_auto_verdict_t *v);

#endif
