/* wk_retry: the pushes a client still holds, per server, in sequence order.
 *
 * A push sent to server s is held (its encoded frames, as an opaque payload
 * of the caller's) from its first send until BOTH
 *   - s has acknowledged it (wk_retry_ack), and
 *   - s has said it is durable: s's durable mark covers its seq
 *     (wk_retry_durable; every seq <= the mark survives a crash of s).
 * Until it is acknowledged the push is "unacked" and the caller retries it;
 * after that it is "retained" only to be resent if s restarts
 * (wk_retry_restart turns every held push back into unacked, oldest first).
 *
 * Sequence numbers are per server and added in increasing order; items are
 * kept in that order, so "oldest" is "lowest seq".  Lookups by seq are a
 * binary search; the unacked items are also threaded on a list in seq order
 * so a retry scan visits only them, not the retained ones.  Held bytes are
 * summed over all servers (for a cap) with their peak.
 *
 * Pure bookkeeping: no I/O, no clock (callers pass now_ms).  Payloads are
 * freed through the callback given to wk_retry_new when their item is
 * released, dropped, or the structure destroyed.  Item pointers stay valid
 * only until the next wk_retry_add/ack/durable/drop/restart on that server. */
#ifndef WK_RETRY_H
#define WK_RETRY_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t seq;      /* per-server push sequence number (>= 1) */
    size_t bytes;      /* bytes the payload holds (counted against the cap) */
    int64_t sent_ms;   /* last (re)send, the caller's clock */
    int acked;         /* acknowledged (by the server as it is now) */
    void *payload;     /* the caller's */
} wk_retry_item_t;

typedef void (*wk_retry_free_fn)(void *ctx, void *payload);

typedef struct wk_retry wk_retry_t;

/* free_payload may be NULL (payloads are not owned). */
wk_retry_t *wk_retry_new(uint32_t nservers, wk_retry_free_fn free_payload, void *ctx);
void wk_retry_destroy(wk_retry_t **r);

/* Hold a new push for server s.  seq must be >= 1 and above every seq added
 * for s before: ZPS_EINVAL otherwise, ZPS_ENOMEM if out of memory (the
 * payload then stays the caller's). */
int wk_retry_add(wk_retry_t *r, uint32_t s, uint64_t seq, size_t bytes, int64_t now_ms,
                 void *payload);

/* The held item of seq, or NULL. */
wk_retry_item_t *wk_retry_find(wk_retry_t *r, uint32_t s, uint64_t seq);

/* An acknowledgement of seq from s.  1 if it was held and unacked (it is now
 * acked, and released at once if the durable mark covers it); 0 if it was
 * already acked or is not held (a duplicate or late ack: ignore it). */
int wk_retry_ack(wk_retry_t *r, uint32_t s, uint64_t seq);

/* Server s's durable mark: every seq <= durable survives its crash.  Releases
 * every acked item it covers (an unacked one is released when its ack comes).
 * The mark only rises; a lower value is ignored until wk_retry_restart. */
void wk_retry_durable(wk_retry_t *r, uint32_t s, uint64_t durable);

/* Forget seq whatever its state (the server refused it for good). */
void wk_retry_drop(wk_retry_t *r, uint32_t s, uint64_t seq);

/* Forget server s entirely: every held push is dropped and its sequence
 * numbers start again from 1 (a replicated job's server that was removed,
 * whose new process joins: its pushes live on the other replicas). */
void wk_retry_reset(wk_retry_t *r, uint32_t s);

/* Server s restarted (its state may be older than what it acknowledged):
 * its durable mark goes back to 0 and every held item becomes unacked; the
 * caller resends them all, oldest first (wk_retry_first_unacked/next). */
void wk_retry_restart(wk_retry_t *r, uint32_t s);

/* Held items of s in seq order: all of them, or the unacked ones only.
 * NULL at the end. */
wk_retry_item_t *wk_retry_first(wk_retry_t *r, uint32_t s);
wk_retry_item_t *wk_retry_next(wk_retry_t *r, uint32_t s, const wk_retry_item_t *it);
wk_retry_item_t *wk_retry_first_unacked(wk_retry_t *r, uint32_t s);
wk_retry_item_t *wk_retry_next_unacked(wk_retry_t *r, uint32_t s, const wk_retry_item_t *it);

/* Oldest held item of s that is acked (retained for durability), or NULL. */
wk_retry_item_t *wk_retry_oldest_retained(wk_retry_t *r, uint32_t s);

/* Counts of s; bytes and their peak over all servers. */
size_t wk_retry_held(const wk_retry_t *r, uint32_t s);
size_t wk_retry_unacked(const wk_retry_t *r, uint32_t s);
uint64_t wk_retry_durable_mark(const wk_retry_t *r, uint32_t s);
uint64_t wk_retry_bytes(const wk_retry_t *r);
uint64_t wk_retry_peak_bytes(const wk_retry_t *r);

#endif
