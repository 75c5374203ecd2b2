/* ps_done: which of the job's workers have said they finished (a CLOCK
 * message with done=1 from the connection bound to that worker rank, after
 * its HELLO), as pure state for --exit-when-done: a server that counts all
 * W of them saves (--save-model) and exits 0 by itself, so an engine that
 * starts servers and workers together (one mpirun) sees the whole job end.
 * Marking is idempotent per rank; a rank out of range is ignored. */
#ifndef PS_DONE_H
#define PS_DONE_H

#include <stdint.h>

typedef struct ps_done ps_done_t;

/* nworkers workers, none done.  NULL when out of memory or nworkers is 0. */
ps_done_t *ps_done_new(uint32_t nworkers);
void ps_done_destroy(ps_done_t **d);

/* Worker w said it finished: 1 if that is news, 0 if it was already
 * counted or w is not a worker of the job. */
int ps_done_mark(ps_done_t *d, uint32_t w);
int ps_done_is(const ps_done_t *d, uint32_t w);
uint32_t ps_done_count(const ps_done_t *d);
uint32_t ps_done_workers(const ps_done_t *d);
/* 1 once every worker has finished. */
int ps_done_all(const ps_done_t *d);

#endif
