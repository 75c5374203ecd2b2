/* wk_auto: see wk_auto.h.
 *
 * DESIGN
 * The --epochs auto rules were inline in wk_train's loop; here they are
 * functions of their inputs only (the state a wk_auto_t carries from pass to
 * pass is the best loss, its pass, the step multiplier and two flags), so a
 * test can feed a sequence of holdout losses and read every decision.  The
 * order of the checks is the order of the log lines the trainer writes
 * (step back, doubled, stop). */
#include "wk_auto.h"

#include <math.h>
#include <string.h>

#include "zps_hash.h"

uint64_t wk_auto_row_hash(const wk_batch_t *b, size_t i)
{
    uint32_t lb;
    memcpy(&lb, &b->labels[i], sizeof lb);
    uint64_t h = zps_mix64(lb, 0x5bd1e9955bd1e995ULL);
    for (size_t j = b->offsets[i]; j < b->offsets[i + 1]; j++) {
        uint32_t vb;
        memcpy(&vb, &b->vals[j], sizeof vb);
        h = zps_mix64(h ^ b->ids[j], 0x27d4eb2f165667c5ULL);
        h = zps_mix64(h ^ vb, 0x94d049bb133111ebULL);
    }
    return h ? h : 1;
}

int wk_auto_pick(uint64_t h, uint64_t held, uint64_t seen)
{
    return h % WK_HOLDOUT_EVERY == 0 && held < WK_HOLDOUT_CAP &&
           (held + 1) * WK_HOLDOUT_EVERY <= seen;
}

void wk_auto_init(wk_auto_t *a, int grow)
{
    memset(a, 0, sizeof *a);
    a->best = INFINITY;
    a->lr_scale = 1.0f;
    a->can_grow = grow;
}

void wk_auto_pass(wk_auto_t *a, double loss, uint32_t pass, uint32_t first, uint32_t max,
                  wk_auto_verdict_t *v)
{
    memset(v, 0, sizeof *v);
    v->prev_best = a->best;
    v->prev_best_pass = a->best_pass;
    v->improved = loss < a->best * (1 - WK_AUTO_TOL);
    /* the pass after a doubling is no better: back, and no more growth */
    if (a->grew && !v->improved) {
        a->lr_scale /= 2;
        a->can_grow = 0;
        v->stepped_back = 1;
    }
    a->grew = 0;
    /* still falling fast after the first pass: the step is too small */
    if (a->can_grow && pass > first && loss < a->best * (1 - WK_AUTO_GROW_TOL) &&
        a->lr_scale * 2 <= WK_AUTO_GROW_MAX && pass + 1 < max) {
        a->lr_scale *= 2;
        a->grew = 1;
        v->doubled = 1;
    }
    if (v->stepped_back && pass + 1 < max) {
        /* not a stop: the pass after the step went back decides */
    } else if (pass > first && !v->improved) {
        v->stop = WK_AUTO_STOP_NO_GAIN;
    } else if (pass + 1 == max) {
        v->stop = WK_AUTO_STOP_CAP;
    }
    if (loss < a->best) {
        a->best = loss;
        a->best_pass = pass;
    }
}
