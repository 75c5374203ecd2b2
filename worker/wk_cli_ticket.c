/* wk_cli_ticket: the client's ticket ring (see wk_cli.h).
 *
 * DESIGN
 * Tickets live in a power-of-two ring indexed by (ticket & mask); ticket
 * ids only grow, so a slot is reused for id + k*cap once its request
 * finished, and a new request finds its slot still busy only when cap
 * requests are in flight (the caller must wait for some).  A slot records
 * which servers still owe a reply (waiting[s], counted in pending) and
 * what the reply needs: for a pull split over several servers, the
 * original position of every key grouped by server (pos/off, wk_split),
 * so replies are scattered straight into the caller's output; for a push,
 * the seq of each server's part (its held copy in c->retry).  The per-server
 * arrays are allocated once with the ring; pos grows with the largest pull.
 *
 * Matching: a reply names its request id; wkc_req_find gives the slot only
 * if that request is still in flight, and the caller checks waiting[s], so
 * a late reply to a released ticket, or a duplicate, touches nothing. */
#include "wk_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zps_err.h"

void wkc_req_err(wk_req_t *r, int code, const char *fmt, ...)
{
    if (r->status)
        return; /* keep the first error */
    r->status = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
}

wk_req_t *wkc_req_new(wk_client_t *c, int kind)
{
    uint64_t id = c->next_id;
    wk_req_t *r = &c->reqs[id & c->mask];
    if (r->kind != RQ_FREE) {
        wkc_seterr(c, "%u requests in flight: wait for some before sending more", c->inflight);
        return NULL;
    }
    c->next_id++;
    r->id = id;
    r->kind = kind;
    r->pending = 0;
    r->relays = 0;
    r->status = 0;
    r->out = NULL;
    r->stats = NULL;
    r->n = 0;
    r->err[0] = 0;
    r->first_ms = 0;
    r->gen = 0;
    memset(r->waiting, 0, c->conf.nservers);
    c->inflight++;
    return r;
}

void wkc_req_release(wk_client_t *c, wk_req_t *r)
{
    if (r->kind == RQ_FREE)
        return;
    for (uint32_t s = 0; s < c->conf.nservers; s++) {
        /* a push given up on (timeout): stop retrying it */
        if (r->kind == RQ_PUSH && r->waiting[s] && c->retry)
            wk_retry_drop(c->retry, s, r->seqs[s]);
        if (r->keep[s])
            zmq_msg_close(&r->keep_keys[s]);
        r->keep[s] = 0;
    }
    r->kind = RQ_FREE;
    memset(r->waiting, 0, c->conf.nservers);
    r->pending = 0;
    r->relays = 0;
    c->inflight--;
}

int wkc_ring_new(wk_client_t *c, uint32_t cap, uint32_t nslots)
{
    c->mask = cap - 1;
    c->reqs = calloc(cap, sizeof *c->reqs);
    if (!c->reqs)
        return ZPS_ENOMEM;
    for (uint32_t i = 0; i < cap; i++) {
        wk_req_t *r = &c->reqs[i];
        r->off = calloc((size_t)nslots + 1, sizeof(size_t));
        r->waiting = calloc(nslots, 1);
        r->keep = calloc(nslots, 1);
        r->sent_ms = calloc(nslots, sizeof(int64_t));
        r->keep_keys = calloc(nslots, sizeof(zmq_msg_t));
        r->seqs = calloc(nslots, sizeof(uint64_t));
        if (!r->off || !r->waiting || !r->keep || !r->keep_keys || !r->seqs || !r->sent_ms)
            return ZPS_ENOMEM;
    }
    return 0;
}

void wkc_ring_free(wk_client_t *c)
{
    if (!c->reqs)
        return;
    for (uint32_t i = 0; i <= c->mask; i++)
        if (c->reqs[i].keep)
            wkc_req_release(c, &c->reqs[i]);
    for (uint32_t i = 0; i <= c->mask; i++) {
        free(c->reqs[i].keep);
        free(c->reqs[i].sent_ms);
        free(c->reqs[i].keep_keys);
        free(c->reqs[i].seqs);
        free(c->reqs[i].pos);
        free(c->reqs[i].keys);
        free(c->reqs[i].off);
        free(c->reqs[i].waiting);
    }
    free(c->reqs);
    c->reqs = NULL;
}
