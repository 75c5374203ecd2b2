/* ps_done: the finished workers of a job.  See ps_done.h.  One byte per
 * worker and a count, so ps_done_all is O(1). */
#include "ps_done.h"

#include <stdlib.h>

struct ps_done {
    unsigned char *done;
    uint32_t n, count;
};

ps_done_t *ps_done_new(uint32_t nworkers)
{
    if (nworkers == 0)
        return NULL;
    ps_done_t *d = calloc(1, sizeof *d);
    if (!d || !(d->done = calloc(nworkers, 1))) {
        free(d);
        return NULL;
    }
    d->n = nworkers;
    return d;
}

void ps_done_destroy(ps_done_t **dp)
{
    if (!*dp)
        return;
    free((*dp)->done);
    free(*dp);
    *dp = NULL;
}

int ps_done_mark(ps_done_t *d, uint32_t w)
{
    if (w >= d->n || d->done[w])
        return 0;
    d->done[w] = 1;
    d->count++;
    return 1;
}

int ps_done_is(const ps_done_t *d, uint32_t w) { return w < d->n && d->done[w]; }
uint32_t ps_done_count(const ps_done_t *d) { return d->count; }
uint32_t ps_done_workers(const ps_done_t *d) { return d->n; }
int ps_done_all(const ps_done_t *d) { return d->count == d->n; }
