/* wk_keysig: which key lists the client has sent each server lately.
 *
 * With --compress keycache a key list the server has seen travels as its
 * 64-bit signature (zps_keys_sig) and an empty keys frame.  The client
 * remembers, per server, the signatures of the last `per_server` key lists
 * it sent there (a ring: the oldest is forgotten first).  The server's own
 * cache is larger but may have evicted a list or restarted: it then answers
 * ZPS_EKEYCACHE and the client sends the keys in full, so a false "seen"
 * costs a round trip, never a wrong answer. */
#ifndef WK_KEYSIG_H
#define WK_KEYSIG_H

#include <stdint.h>

typedef struct wk_keysig wk_keysig_t;

/* NULL when out of memory or per_server == 0. */
wk_keysig_t *wk_keysig_new(uint32_t nservers, uint32_t per_server);
void wk_keysig_destroy(wk_keysig_t **k);

/* 1 if sig is among the signatures remembered for server s (left as it
 * is); else remembers it in place of s's oldest and returns 0.  The ring
 * starts zeroed, so a signature 0 counts as seen: zps_keys_sig gives 0
 * with probability 2^-64, and the server's answer covers that case too. */
int wk_keysig_seen(wk_keysig_t *k, uint32_t s, uint64_t sig);

/* Forget every signature sent to server s (a new process: its key cache
 * is empty). */
void wk_keysig_forget(wk_keysig_t *k, uint32_t s);

#endif
