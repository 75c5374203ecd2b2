/* zps_pool: a fork-join pool of threads for one request's table work.
 *
 * A big pull or push spends its time waiting on memory: at 100M keys
 * every key is a random DRAM read (and, in a VM, a page walk), and one
 * core keeps only so many in flight.  zps_pool_run splits such a request
 * over T threads (the caller and T-1 helpers made once by zps_pool_new),
 * each on its own part of the keys, and returns when every part is done.
 * The parts must not write the same memory (the shard's parts are
 * disjoint ranges of sorted, unique keys, and the table's structure does
 * not change while they run).
 *
 * One caller at a time: a pool belongs to one server (its event loop
 * thread).  Helpers sleep on a condition variable between runs and block
 * every signal, so signals go to the daemon's own thread. */
#ifndef ZPS_POOL_H
#define ZPS_POOL_H

#define ZPS_POOL_MAX 64 /* threads per pool */

typedef struct zps_pool zps_pool_t;

/* fn(arg, part, parts) runs once for each part in [0, parts) */
typedef void (*zps_pool_fn)(void *arg, unsigned part, unsigned parts);

/* A pool of threads threads in all, the caller's included (1..ZPS_POOL_MAX;
 * 1: no helpers, zps_pool_run runs every part in the caller).  NULL when
 * threads is out of range or a thread cannot be made. */
zps_pool_t *zps_pool_new(unsigned threads);
/* Stops and joins the helpers; *p becomes NULL.  NULL is fine. */
void zps_pool_destroy(zps_pool_t **p);
unsigned zps_pool_threads(const zps_pool_t *p);

/* Run parts (1..threads) parts: part 0 in the caller, part i in helper i;
 * returns when all are done.  More parts than threads run in the caller,
 * after its own. */
void zps_pool_run(zps_pool_t *p, unsigned parts, zps_pool_fn fn, void *arg);

#endif
