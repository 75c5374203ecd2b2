/* wk_holdout: the rows --epochs auto holds out of training (wk_auto.h says
 * which): an owned copy of the rows, to score after every pass, and the set
 * of their content hashes, which later passes skip.
 *
 * Ownership: the holdout owns its rows and set; wk_holdout_rows points into
 * it and is valid until the next wk_holdout_offer. */
#ifndef WK_HOLDOUT_H
#define WK_HOLDOUT_H

#include <stddef.h>
#include <stdint.h>

#include "wk_data.h"

typedef struct wk_holdout wk_holdout_t;

/* An empty holdout (memory for rows and set is taken at the first row). */
wk_holdout_t *wk_holdout_new(void);
void wk_holdout_destroy(wk_holdout_t **ho);

/* Is a row of hash h (wk_auto_row_hash) held out? */
int wk_holdout_has(const wk_holdout_t *ho, uint64_t h);

/* While picking (the first pass): row i of b, of hash h and not held, is
 * looked at; if wk_auto_pick takes it, it is copied in.  1 taken, 0 not,
 * or ZPS_ENOMEM. */
int wk_holdout_offer(wk_holdout_t *ho, const wk_batch_t *b, size_t i, uint64_t h);

/* A worker resumed after its first pass: pick again from r, a reader that
 * returns the rows in the first pass's order (to its end or the cap; a
 * reading error ends the picking).  0 or ZPS_ENOMEM. */
int wk_holdout_rebuild(wk_holdout_t *ho, wk_reader_t *r);

/* The held rows, in the order they were picked. */
const wk_batch_t *wk_holdout_rows(const wk_holdout_t *ho);

#endif
