/* ps_dedup: exactly-once bookkeeping of push sequence numbers.
 *
 * Every push of a client process (rank, nonce) carries a sequence number
 * seq >= 1.  The server keeps, per client process, a sliding window:
 *   lwm    the low-water mark: every seq <= lwm has been applied
 *   bits   one bit per seq in (lwm, lwm + PS_DEDUP_WINDOW]: applied or not
 * so pushes may arrive in any order, any number of times (retries, resends
 * after a server restart) and each seq is applied exactly once.  A seq of 0,
 * or one beyond lwm + PS_DEDUP_WINDOW, is refused (ZPS_ESEQ): it is not a
 * duplicate, and accepting it would need an unbounded window.
 *
 * The bitmap is a ring: seq s lives at bit s % PS_DEDUP_WINDOW, which is
 * unambiguous for the PS_DEDUP_WINDOW seqs above lwm.  When seq lwm+1 is
 * marked, lwm advances over every consecutive marked seq, clearing their
 * bits for reuse.  Pure functions over a plain struct, so the window can be
 * copied into checkpoints as it is (ps_ckpt_client_t embeds one).
 *
 * Usage: r = ps_dedup_check(&w, seq); if r == PS_DEDUP_NEW, apply the push
 * and only THEN ps_dedup_mark(&w, seq) (a push that failed is not recorded,
 * so its retry is applied). */
#ifndef PS_DEDUP_H
#define PS_DEDUP_H

#include <stdint.h>

#define PS_DEDUP_WINDOW 4096u
#define PS_DEDUP_WORDS (PS_DEDUP_WINDOW / 64u)

typedef struct {
    uint64_t lwm;                    /* every seq <= lwm has been applied */
    uint64_t hwm;                    /* highest seq applied (0: none) */
    uint64_t bits[PS_DEDUP_WORDS];   /* seq s in (lwm, lwm + W]: bit s % W */
} ps_dedup_win_t;

enum { PS_DEDUP_NEW = 0, PS_DEDUP_DUP = 1 };

/* Empty window (nothing applied). */
void ps_dedup_init(ps_dedup_win_t *w);

/* PS_DEDUP_NEW (not applied yet), PS_DEDUP_DUP (applied before), or
 * ZPS_ESEQ (seq 0, or seq > lwm + PS_DEDUP_WINDOW).  Changes nothing. */
int ps_dedup_check(const ps_dedup_win_t *w, uint64_t seq);

/* Record seq as applied (call after the push applied).  Returns the same
 * codes as ps_dedup_check did before the call; on PS_DEDUP_DUP or ZPS_ESEQ
 * the window is unchanged. */
int ps_dedup_mark(ps_dedup_win_t *w, uint64_t seq);

/* Number of seqs applied above lwm (bits set). */
uint32_t ps_dedup_pending(const ps_dedup_win_t *w);

/* Is the window internally consistent (bit of lwm+1 clear, no bit beyond
 * hwm, hwm >= lwm)?  For checkpoints read back from disk. */
int ps_dedup_valid(const ps_dedup_win_t *w);

#endif
