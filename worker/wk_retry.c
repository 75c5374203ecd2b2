/* wk_retry: see wk_retry.h for the contract.
 *
 * DESIGN
 * Per server a ring of slots addressed by absolute position: positions
 * head..tail-1 are in use, slot p lives at ring[p & (cap - 1)], and seqs
 * increase with position, so a lookup by seq is a binary search.  A released
 * item in the middle (acked and durable while an older one still waits for
 * its ack) becomes a tombstone; the head skips tombstones, so the ring holds
 * at most the span from the oldest live item to the newest.  Growing the ring
 * re-places slots at p & (new cap - 1), keeping positions valid.
 *
 * The unacked items are also on a doubly linked list of positions in seq
 * order (new items are the newest, so they are appended; an ack unlinks).
 * Durable releases walk a cursor forward from the head over the items the
 * mark covers, so each item is visited once per durable mark rise, not on
 * every ack; an item still unacked when the cursor passes it is released
 * by its ack.  A restart rewinds the cursor and relinks every live item. */
#include "wk_retry.h"

#include <stdlib.h>
#include <string.h>

#include "zps_err.h"

#define NIL UINT64_MAX

typedef struct {
    wk_retry_item_t it; /* first: items handed out point here */
    uint64_t pos;       /* absolute position */
    uint64_t prev, next; /* unacked list */
    int live;
} slot_t;

typedef struct {
    slot_t *ring;
    uint64_t cap;            /* power of two, or 0 */
    uint64_t head, tail;     /* positions in use: [head, tail) */
    uint64_t un_first, un_last;
    size_t held, unacked;
    uint64_t durable, cursor;
    uint64_t last_seq;       /* highest seq ever added */
} srv_t;

struct wk_retry {
    uint32_t n;
    srv_t *srv;
    wk_retry_free_fn free_payload;
    void *ctx;
    uint64_t bytes, peak;
};

static slot_t *s_at(srv_t *v, uint64_t pos) { return &v->ring[pos & (v->cap - 1)]; }

wk_retry_t *wk_retry_new(uint32_t nservers, wk_retry_free_fn free_payload, void *ctx)
{
    wk_retry_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->n = nservers;
    r->free_payload = free_payload;
    r->ctx = ctx;
    r->srv = calloc(nservers ? nservers : 1, sizeof *r->srv);
    if (!r->srv) {
        free(r);
        return NULL;
    }
    for (uint32_t s = 0; s < nservers; s++)
        r->srv[s].un_first = r->srv[s].un_last = NIL;
    return r;
}

void wk_retry_destroy(wk_retry_t **rp)
{
    if (!rp || !*rp)
        return;
    wk_retry_t *r = *rp;
    for (uint32_t s = 0; s < r->n; s++) {
        srv_t *v = &r->srv[s];
        for (uint64_t p = v->head; p < v->tail; p++) {
            slot_t *sl = s_at(v, p);
            if (sl->live && r->free_payload)
                r->free_payload(r->ctx, sl->it.payload);
        }
        free(v->ring);
    }
    free(r->srv);
    free(r);
    *rp = NULL;
}

static void s_unlink(srv_t *v, slot_t *sl)
{
    if (sl->prev != NIL)
        s_at(v, sl->prev)->next = sl->next;
    else
        v->un_first = sl->next;
    if (sl->next != NIL)
        s_at(v, sl->next)->prev = sl->prev;
    else
        v->un_last = sl->prev;
    sl->prev = sl->next = NIL;
    v->unacked--;
}

static void s_append(srv_t *v, slot_t *sl)
{
    sl->prev = v->un_last;
    sl->next = NIL;
    if (v->un_last != NIL)
        s_at(v, v->un_last)->next = sl->pos;
    else
        v->un_first = sl->pos;
    v->un_last = sl->pos;
    v->unacked++;
}

/* Release a live slot: free its payload, leave a tombstone, pop the head. */
static void s_release(wk_retry_t *r, srv_t *v, slot_t *sl)
{
    if (!sl->it.acked)
        s_unlink(v, sl);
    sl->live = 0;
    r->bytes -= sl->it.bytes;
    v->held--;
    if (r->free_payload)
        r->free_payload(r->ctx, sl->it.payload);
    sl->it.payload = NULL;
    while (v->head < v->tail && !s_at(v, v->head)->live)
        v->head++;
    if (v->cursor < v->head)
        v->cursor = v->head;
}

static int s_grow(srv_t *v)
{
    uint64_t ncap = v->cap ? v->cap * 2 : 16;
    slot_t *nr = malloc(ncap * sizeof *nr);
    if (!nr)
        return ZPS_ENOMEM;
    for (uint64_t p = v->head; p < v->tail; p++)
        nr[p & (ncap - 1)] = v->ring[p & (v->cap - 1)];
    free(v->ring);
    v->ring = nr;
    v->cap = ncap;
    return 0;
}

int wk_retry_add(wk_retry_t *r, uint32_t s, uint64_t seq, size_t bytes, int64_t now_ms,
                 void *payload)
{
    if (s >= r->n || seq == 0)
        return ZPS_EINVAL;
    srv_t *v = &r->srv[s];
    if (seq <= v->last_seq)
        return ZPS_EINVAL;
    if (v->tail - v->head == v->cap && s_grow(v) != 0)
        return ZPS_ENOMEM;
    slot_t *sl = s_at(v, v->tail);
    memset(sl, 0, sizeof *sl);
    sl->pos = v->tail++;
    sl->live = 1;
    sl->it.seq = seq;
    sl->it.bytes = bytes;
    sl->it.sent_ms = now_ms;
    sl->it.payload = payload;
    s_append(v, sl);
    v->held++;
    v->last_seq = seq;
    r->bytes += bytes;
    if (r->bytes > r->peak)
        r->peak = r->bytes;
    return 0;
}

static slot_t *s_find(wk_retry_t *r, uint32_t s, uint64_t seq)
{
    if (s >= r->n)
        return NULL;
    srv_t *v = &r->srv[s];
    uint64_t lo = v->head, hi = v->tail;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (s_at(v, mid)->it.seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == v->tail)
        return NULL;
    slot_t *sl = s_at(v, lo);
    return sl->live && sl->it.seq == seq ? sl : NULL;
}

wk_retry_item_t *wk_retry_find(wk_retry_t *r, uint32_t s, uint64_t seq)
{
    slot_t *sl = s_find(r, s, seq);
    return sl ? &sl->it : NULL;
}

int wk_retry_ack(wk_retry_t *r, uint32_t s, uint64_t seq)
{
    slot_t *sl = s_find(r, s, seq);
    if (!sl || sl->it.acked)
        return 0;
    srv_t *v = &r->srv[s];
    s_unlink(v, sl);
    sl->it.acked = 1;
    if (seq <= v->durable)
        s_release(r, v, sl);
    return 1;
}

void wk_retry_durable(wk_retry_t *r, uint32_t s, uint64_t durable)
{
    if (s >= r->n)
        return;
    srv_t *v = &r->srv[s];
    if (durable <= v->durable)
        return;
    v->durable = durable;
    if (v->cursor < v->head)
        v->cursor = v->head;
    while (v->cursor < v->tail) {
        slot_t *sl = s_at(v, v->cursor);
        if (sl->it.seq > durable)
            break;
        v->cursor++;
        if (sl->live && sl->it.acked)
            s_release(r, v, sl); /* may move head (and cursor) forward */
    }
}

void wk_retry_drop(wk_retry_t *r, uint32_t s, uint64_t seq)
{
    slot_t *sl = s_find(r, s, seq);
    if (sl)
        s_release(r, &r->srv[s], sl);
}

void wk_retry_reset(wk_retry_t *r, uint32_t s)
{
    if (s >= r->n)
        return;
    wk_retry_item_t *it;
    while ((it = wk_retry_first(r, s)) != NULL)
        wk_retry_drop(r, s, it->seq);
    r->srv[s].last_seq = 0;
    r->srv[s].durable = 0;
}

void wk_retry_restart(wk_retry_t *r, uint32_t s)
{
    if (s >= r->n)
        return;
    srv_t *v = &r->srv[s];
    v->durable = 0;
    v->cursor = v->head;
    v->un_first = v->un_last = NIL;
    v->unacked = 0;
    for (uint64_t p = v->head; p < v->tail; p++) {
        slot_t *sl = s_at(v, p);
        if (!sl->live)
            continue;
        sl->it.acked = 0;
        s_append(v, sl);
    }
}

wk_retry_item_t *wk_retry_first(wk_retry_t *r, uint32_t s)
{
    if (s >= r->n)
        return NULL;
    srv_t *v = &r->srv[s];
    return v->head < v->tail ? &s_at(v, v->head)->it : NULL; /* the head is always live */
}

wk_retry_item_t *wk_retry_next(wk_retry_t *r, uint32_t s, const wk_retry_item_t *it)
{
    srv_t *v = &r->srv[s];
    for (uint64_t p = ((const slot_t *)it)->pos + 1; p < v->tail; p++)
        if (s_at(v, p)->live)
            return &s_at(v, p)->it;
    return NULL;
}

wk_retry_item_t *wk_retry_first_unacked(wk_retry_t *r, uint32_t s)
{
    if (s >= r->n || r->srv[s].un_first == NIL)
        return NULL;
    return &s_at(&r->srv[s], r->srv[s].un_first)->it;
}

wk_retry_item_t *wk_retry_next_unacked(wk_retry_t *r, uint32_t s, const wk_retry_item_t *it)
{
    uint64_t next = ((const slot_t *)it)->next;
    return next == NIL ? NULL : &s_at(&r->srv[s], next)->it;
}

wk_retry_item_t *wk_retry_oldest_retained(wk_retry_t *r, uint32_t s)
{
    for (wk_retry_item_t *it = wk_retry_first(r, s); it; it = wk_retry_next(r, s, it))
        if (it->acked)
            return it;
    return NULL;
}

size_t wk_retry_held(const wk_retry_t *r, uint32_t s) { return s < r->n ? r->srv[s].held : 0; }
size_t wk_retry_unacked(const wk_retry_t *r, uint32_t s)
{
    return s < r->n ? r->srv[s].unacked : 0;
}
uint64_t wk_retry_durable_mark(const wk_retry_t *r, uint32_t s)
{
    return s < r->n ? r->srv[s].durable : 0;
}
uint64_t wk_retry_bytes(const wk_retry_t *r) { return r->bytes; }
uint64_t wk_retry_peak_bytes(const wk_retry_t *r) { return r->peak; }
