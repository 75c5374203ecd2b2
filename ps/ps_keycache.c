/* ps_keycache: see ps_keycache.h.  Lookup is a linear scan of the ring's
 * signatures (a few hundred entries: cheaper than the request it saves). */
#include "ps_keycache.h"

#include <stdlib.h>
#include <string.h>

#include "zps_err.h"

typedef struct {
    uint64_t sig;
    size_t n;
    uint64_t *keys;
} kc_entry_t;

struct ps_keycache {
    kc_entry_t *ring;
    size_t max_lists, max_keys, head, count, total;
};

ps_keycache_t *ps_keycache_new(size_t max_lists, size_t max_keys)
{
    ps_keycache_t *kc = calloc(1, sizeof *kc);
    if (!kc)
        return NULL;
    kc->ring = calloc(max_lists ? max_lists : 1, sizeof *kc->ring);
    if (!kc->ring) {
        free(kc);
        return NULL;
    }
    kc->max_lists = max_lists ? max_lists : 1;
    kc->max_keys = max_keys;
    return kc;
}

void ps_keycache_destroy(ps_keycache_t **kcp)
{
    if (!kcp || !*kcp)
        return;
    ps_keycache_t *kc = *kcp;
    for (size_t i = 0; i < kc->max_lists; i++)
        free(kc->ring[i].keys);
    free(kc->ring);
    free(kc);
    *kcp = NULL;
}

const uint64_t *ps_keycache_get(ps_keycache_t *kc, uint64_t sig, size_t n)
{
    for (size_t i = 0; i < kc->max_lists; i++)
        if (kc->ring[i].keys && kc->ring[i].sig == sig && kc->ring[i].n == n)
            return kc->ring[i].keys;
    return NULL;
}

static void s_evict_oldest(ps_keycache_t *kc)
{
    size_t oldest = (kc->head + kc->max_lists - kc->count) % kc->max_lists;
    kc_entry_t *e = &kc->ring[oldest];
    kc->total -= e->n;
    free(e->keys);
    memset(e, 0, sizeof *e);
    kc->count--;
}

int ps_keycache_put(ps_keycache_t *kc, uint64_t sig, const uint64_t *keys, size_t n)
{
    if (n > kc->max_keys)
        return ZPS_ETOOBIG;
    if (ps_keycache_get(kc, sig, n))
        return 0;
    while (kc->count && (kc->count == kc->max_lists || kc->total + n > kc->max_keys))
        s_evict_oldest(kc);
    uint64_t *copy = malloc(n ? n * sizeof *copy : 1);
    if (!copy)
        return ZPS_ENOMEM;
    if (n)
        memcpy(copy, keys, n * sizeof *copy);
    kc_entry_t *e = &kc->ring[kc->head];
    free(e->keys); /* empty after eviction; defensive */
    e->sig = sig;
    e->n = n;
    e->keys = copy;
    kc->head = (kc->head + 1) % kc->max_lists;
    kc->count++;
    kc->total += n;
    return 0;
}
