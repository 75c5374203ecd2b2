/* ps_clock: ssp/bsp clock state.  See ps_clock.h.
 *
 * The minimum is cached and recomputed (one pass over the workers) after
 * every change, so ps_clock_ready, asked for every pull, is O(1); changes
 * come with pushes marked "tick", heartbeats and timeouts, far less often.
 * Drops only mark it stale, so a pass that drops many workers costs one
 * recompute, not one per worker. */
#include "ps_clock.h"

#include <stdlib.h>

typedef struct {
    uint64_t finished;
    int64_t last_seen;
    int alive, done;
} ps_wstate_t;

struct ps_clock {
    ps_wstate_t *w;
    uint32_t n;
    uint64_t bound;
    uint64_t min;
    int stale;   /* min needs a recompute (after drops) */
};

static void s_recompute(ps_clock_t *c)
{
    c->stale = 0;
    uint64_t mn = UINT64_MAX;
    for (uint32_t i = 0; i < c->n; i++)
        if (c->w[i].alive && !c->w[i].done && c->w[i].finished < mn)
            mn = c->w[i].finished;
    c->min = mn;
}

ps_clock_t *ps_clock_new(uint32_t nworkers, uint64_t bound, int64_t now_ms)
{
    if (nworkers == 0)
        return NULL;
    ps_clock_t *c = calloc(1, sizeof *c);
    if (!c || !(c->w = calloc(nworkers, sizeof *c->w))) {
        free(c);
        return NULL;
    }
    c->n = nworkers;
    c->bound = bound;
    for (uint32_t i = 0; i < nworkers; i++) {
        c->w[i].alive = 1;
        c->w[i].last_seen = now_ms;
    }
    s_recompute(c); /* 0 */
    return c;
}

void ps_clock_destroy(ps_clock_t **cp)
{
    if (!*cp)
        return;
    free((*cp)->w);
    free(*cp);
    *cp = NULL;
}

uint32_t ps_clock_workers(const ps_clock_t *c) { return c->n; }
uint64_t ps_clock_min(ps_clock_t *c)
{
    if (c->stale)
        s_recompute(c);
    return c->min;
}
uint64_t ps_clock_finished(const ps_clock_t *c, uint32_t w) { return c->w[w].finished; }
int64_t ps_clock_last_seen(const ps_clock_t *c, uint32_t w) { return c->w[w].last_seen; }
int ps_clock_live(const ps_clock_t *c, uint32_t w) { return c->w[w].alive && !c->w[w].done; }

int ps_clock_ready(ps_clock_t *c, uint64_t clock)
{
    uint64_t mn = ps_clock_min(c);
    if (mn == UINT64_MAX || clock == 0)
        return 1;
    return clock <= mn + c->bound + 1;
}

void ps_clock_finish(ps_clock_t *c, uint32_t w, uint64_t clock)
{
    if (clock > c->w[w].finished)
        c->w[w].finished = clock;
    s_recompute(c);
}

void ps_clock_done(ps_clock_t *c, uint32_t w)
{
    c->w[w].done = 1;
    s_recompute(c);
}

int ps_clock_heard(ps_clock_t *c, uint32_t w, int64_t now_ms)
{
    ps_wstate_t *s = &c->w[w];
    s->last_seen = now_ms;
    if (s->alive && !s->done)
        return 0;
    uint64_t mn = ps_clock_min(c); /* the others' minimum: s is not part of it */
    s->alive = 1;
    s->done = 0;
    if (mn != UINT64_MAX && s->finished < mn)
        s->finished = mn;
    s_recompute(c);
    return 1;
}

int ps_clock_expire_next(ps_clock_t *c, int64_t now_ms, int64_t timeout_ms, uint32_t *w)
{
    for (uint32_t i = *w; i < c->n; i++) {
        ps_wstate_t *s = &c->w[i];
        if (s->alive && !s->done && now_ms - s->last_seen > timeout_ms) {
            s->alive = 0;
            c->stale = 1; /* one recompute after all the drops of a pass */
            *w = i;
            return 1;
        }
    }
    return 0;
}
