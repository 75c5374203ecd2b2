/* ps_dedup: see ps_dedup.h. */
#include "ps_dedup.h"

#include <string.h>

#include "zps_err.h"

#define W PS_DEDUP_WINDOW

static int s_bit(const ps_dedup_win_t *w, uint64_t seq)
{
    uint64_t b = seq % W;
    return (int)((w->bits[b / 64] >> (b % 64)) & 1u);
}

static void s_set(ps_dedup_win_t *w, uint64_t seq, int on)
{
    uint64_t b = seq % W, m = 1ULL << (b % 64);
    if (on)
        w->bits[b / 64] |= m;
    else
        w->bits[b / 64] &= ~m;
}

void ps_dedup_init(ps_dedup_win_t *w) { memset(w, 0, sizeof *w); }

int ps_dedup_check(const ps_dedup_win_t *w, uint64_t seq)
{
    if (seq == 0)
        return ZPS_ESEQ;
    if (seq <= w->lwm)
        return PS_DEDUP_DUP;
    if (seq - w->lwm > W)
        return ZPS_ESEQ;
    return s_bit(w, seq) ? PS_DEDUP_DUP : PS_DEDUP_NEW;
}

int ps_dedup_mark(ps_dedup_win_t *w, uint64_t seq)
{
    int r = ps_dedup_check(w, seq);
    if (r != PS_DEDUP_NEW)
        return r;
    if (seq > w->hwm)
        w->hwm = seq;
    if (seq != w->lwm + 1) {
        s_set(w, seq, 1);
        return r;
    }
    w->lwm = seq;
    while (w->lwm < w->hwm && s_bit(w, w->lwm + 1)) {
        s_set(w, w->lwm + 1, 0);
        w->lwm++;
    }
    return r;
}

uint32_t ps_dedup_pending(const ps_dedup_win_t *w)
{
    uint32_t n = 0;
    for (unsigned i = 0; i < PS_DEDUP_WORDS; i++)
        n += (uint32_t)__builtin_popcountll(w->bits[i]);
    return n;
}

int ps_dedup_valid(const ps_dedup_win_t *w)
{
    if (w->hwm < w->lwm || w->hwm - w->lwm > W)
        return 0;
    if (w->hwm == w->lwm)
        return ps_dedup_pending(w) == 0;
    if (s_bit(w, w->lwm + 1) || !s_bit(w, w->hwm))
        return 0;
    /* no bit for a seq in (hwm, lwm + W] */
    for (uint64_t s = w->hwm + 1; s <= w->lwm + W; s++)
        if (s_bit(w, s))
            return 0;
    return 1;
}
