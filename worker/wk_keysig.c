/* wk_keysig: see wk_keysig.h.
 *
 * DESIGN
 * One flat array of nservers rings of per_server signatures and one write
 * cursor per server.  A lookup scans the server's ring (64 entries in the
 * client: one or two cache lines' worth of compares per sub-request, no
 * hashing); a miss overwrites the slot under the cursor and advances it. */
#include "wk_keysig.h"

#include <stdlib.h>
#include <string.h>

struct wk_keysig {
    uint32_t nservers, per;
    uint64_t *sigs;   /* nservers * per */
    uint32_t *next;   /* per server: write cursor (mod per) */
};

wk_keysig_t *wk_keysig_new(uint32_t nservers, uint32_t per_server)
{
    if (per_server == 0)
        return NULL;
    wk_keysig_t *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->nservers = nservers;
    k->per = per_server;
    k->sigs = calloc((size_t)nservers * per_server + 1, sizeof *k->sigs);
    k->next = calloc((size_t)nservers + 1, sizeof *k->next);
    if (!k->sigs || !k->next)
        wk_keysig_destroy(&k);
    return k;
}

void wk_keysig_destroy(wk_keysig_t **kp)
{
    if (!kp || !*kp)
        return;
    free((*kp)->sigs);
    free((*kp)->next);
    free(*kp);
    *kp = NULL;
}

int wk_keysig_seen(wk_keysig_t *k, uint32_t s, uint64_t sig)
{
    uint64_t *ring = k->sigs + (size_t)s * k->per;
    for (uint32_t i = 0; i < k->per; i++)
        if (ring[i] == sig)
            return 1;
    ring[k->next[s]] = sig;
    k->next[s] = k->next[s] + 1 == k->per ? 0 : k->next[s] + 1;
    return 0;
}

void wk_keysig_forget(wk_keysig_t *k, uint32_t s)
{
    if (s >= k->nservers)
        return;
    memset(k->sigs + (size_t)s * k->per, 0, k->per * sizeof *k->sigs);
    k->next[s] = 0;
}
