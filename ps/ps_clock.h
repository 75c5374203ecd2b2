/* ps_clock: the clocks of ssp:N and bsp, as pure state (no I/O, no time
 * source: the caller passes now_ms).
 *
 * Every worker has a finished clock (the clock of its last push marked
 * "tick"), the time it was last heard from, and whether it is live (part
 * of the clock) and not done.  The minimum is the slowest live, not-done
 * worker's finished clock (UINT64_MAX when there is none).  A pull stamped
 * with clock t may be answered when t is 0, when there is no live worker,
 * or when t <= min + bound + 1 (bound: N for ssp:N, 0 for bsp).
 *
 * A worker silent for longer than the heartbeat timeout is dropped from the
 * clock (ps_clock_expire_next); when it is heard from again it rejoins,
 * fast-forwarded to the current minimum so it stalls no one; a worker that
 * said it is done leaves the minimum and rejoins the same way if it speaks
 * again.  The server acts on the changes: a new minimum applies a bsp
 * clock and answers held pulls (ps_server.c, s_advance). */
#ifndef PS_CLOCK_H
#define PS_CLOCK_H

#include <stddef.h>
#include <stdint.h>

typedef struct ps_clock ps_clock_t;

/* nworkers workers, all live at clock 0, last heard at now_ms.  NULL when
 * out of memory or nworkers is 0. */
ps_clock_t *ps_clock_new(uint32_t nworkers, uint64_t bound, int64_t now_ms);
void ps_clock_destroy(ps_clock_t **c);

uint32_t ps_clock_workers(const ps_clock_t *c);
uint64_t ps_clock_min(ps_clock_t *c);
int ps_clock_ready(ps_clock_t *c, uint64_t clock);
uint64_t ps_clock_finished(const ps_clock_t *c, uint32_t w);
int64_t ps_clock_last_seen(const ps_clock_t *c, uint32_t w);
int ps_clock_live(const ps_clock_t *c, uint32_t w); /* live and not done */

/* Worker w finished clock (later clocks only move it forward). */
void ps_clock_finish(ps_clock_t *c, uint32_t w, uint64_t clock);
/* Worker w is done: it no longer holds the others back. */
void ps_clock_done(ps_clock_t *c, uint32_t w);
/* Worker w was heard from at now_ms.  1 if it was dropped or done and
 * rejoins now (its finished clock raised to the minimum), else 0. */
int ps_clock_heard(ps_clock_t *c, uint32_t w, int64_t now_ms);
/* Drop the next live worker at or after *w silent for more than
 * timeout_ms at now_ms: 1 and *w set to it, or 0 when there is none.
 *     for (uint32_t w = 0; ps_clock_expire_next(c, now, t, &w); w++) ... */
int ps_clock_expire_next(ps_clock_t *c, int64_t now_ms, int64_t timeout_ms, uint32_t *w);

#endif
