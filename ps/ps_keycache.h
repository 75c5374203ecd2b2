/* ps_keycache: the server's cache of recently seen key lists (key caching).
 *
 * A client that sends the same sorted key list to the same server again
 * (typically: the push of a minibatch after its pull, or every batch of a
 * dense model) sends only a 64-bit signature; the server looks the list up
 * here.  The cache is a FIFO ring bounded both in lists and in total keys;
 * a miss is answered with ZPS_EKEYCACHE and the client resends the full
 * list.  The signature is checked when a list is inserted (the server
 * recomputes it from the decoded keys), so a client cannot plant a list
 * under another list's signature.
 *
 * Signatures are zps_keys_sig (common/zps_codec.h).
 *
 * Ownership: pointers returned by ps_keycache_get stay valid until the next
 * ps_keycache_put. */
#ifndef PS_KEYCACHE_H
#define PS_KEYCACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ps_keycache ps_keycache_t;

ps_keycache_t *ps_keycache_new(size_t max_lists, size_t max_keys);
void ps_keycache_destroy(ps_keycache_t **kc);

/* The cached list of signature sig with n keys, or NULL. */
const uint64_t *ps_keycache_get(ps_keycache_t *kc, uint64_t sig, size_t n);

/* Remember keys[0..n) under sig (evicting the oldest lists as needed).
 * Returns 0, or ZPS_ETOOBIG if the list alone exceeds the key bound. */
int ps_keycache_put(ps_keycache_t *kc, uint64_t sig, const uint64_t *keys, size_t n);

#endif
