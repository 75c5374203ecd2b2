/* zps_pool: fork-join helpers on a mutex and two condition variables.
 * See zps_pool.h.
 *
 * A run bumps gen and wakes every helper; helper i runs part i when
 * i < parts, and the last one done wakes the caller.  Runs are rare and
 * long (a request of tens of thousands of keys or more), so a sleep and a
 * wake-up per run (tens of microseconds) cost nothing measurable and an
 * idle server burns no CPU. */
#define _POSIX_C_SOURCE 200809L
#include "zps_pool.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

typedef struct {
    zps_pool_t *p;
    unsigned idx;
    pthread_t th;
} s_helper_t;

struct zps_pool {
    unsigned threads;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long gen;   /* runs started */
    int stop;
    zps_pool_fn fn;
    void *arg;
    unsigned parts;      /* of the current run */
    unsigned active;     /* helpers 1..active run a part of it */
    unsigned pending;    /* helpers of the current run not done yet */
    unsigned made;       /* helpers started */
    s_helper_t h[ZPS_POOL_MAX];
};

static void *s_helper(void *v)
{
    s_helper_t *h = v;
    zps_pool_t *p = h->p;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->gen == seen)
            pthread_cond_wait(&p->go, &p->mu);
        if (p->stop)
            break;
        seen = p->gen;
        if (h->idx > p->active)
            continue;
        zps_pool_fn fn = p->fn;
        void *arg = p->arg;
        unsigned parts = p->parts;
        pthread_mutex_unlock(&p->mu);
        fn(arg, h->idx, parts);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

zps_pool_t *zps_pool_new(unsigned threads)
{
    if (threads < 1 || threads > ZPS_POOL_MAX)
        return NULL;
    zps_pool_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->threads = threads;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return NULL;
    }
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* helpers inherit: no signals */
    for (unsigned i = 1; i < threads; i++) {
        p->h[i].p = p;
        p->h[i].idx = i;
        if (pthread_create(&p->h[i].th, NULL, s_helper, &p->h[i]) != 0)
            break;
        p->made = i;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (p->made + 1 != threads)
        zps_pool_destroy(&p);
    return p;
}

void zps_pool_destroy(zps_pool_t **pp)
{
    zps_pool_t *p = pp ? *pp : NULL;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 1; i <= p->made; i++)
        pthread_join(p->h[i].th, NULL);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p);
    *pp = NULL;
}

unsigned zps_pool_threads(const zps_pool_t *p) { return p ? p->threads : 1; }

void zps_pool_run(zps_pool_t *p, unsigned parts, zps_pool_fn fn, void *arg)
{
    if (parts == 0)
        return;
    unsigned helped = p && p->threads > 1 ? (parts < p->threads ? parts : p->threads) - 1 : 0;
    if (helped) {
        pthread_mutex_lock(&p->mu);
        p->fn = fn;
        p->arg = arg;
        p->parts = parts;
        p->active = helped;
        p->pending = helped;
        p->gen++;
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->mu);
    }
    fn(arg, 0, parts);
    for (unsigned i = helped + 1; i < parts; i++) /* more parts than threads */
        fn(arg, i, parts);
    if (helped) {
        pthread_mutex_lock(&p->mu);
        while (p->pending)
            pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
