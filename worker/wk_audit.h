/* wk_audit: --compress-audit, for the tests that check that compression
 * drops no gradient mass (tests/it_compress.sh): per key the sum of every
 * raw gradient row the worker computed (before sparsification and
 * quantisation), written at the end as one line per key,
 * "key raw_sum[0..pdim) residual[0..pdim)" ("%.9g"), the residual being
 * what wk_sparsify still holds for the key (zeros without it).  A test
 * then checks applied + residual = raw sum.
 *
 * Ownership: the audit owns its table; wk_audit_write reads the sparsifier
 * it is given (not owned). */
#ifndef WK_AUDIT_H
#define WK_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "wk_sparsify.h"
#include "zps_log.h"

typedef struct wk_audit wk_audit_t;

/* pdim: floats per key in a gradient row.  NULL when out of memory. */
wk_audit_t *wk_audit_new(uint32_t pdim);
void wk_audit_destroy(wk_audit_t **a);

/* Adds the n gradient rows g (n x pdim) of keys.  0 or ZPS_ENOMEM. */
int wk_audit_add(wk_audit_t *a, const uint64_t *keys, const float *g, size_t n);

/* Writes the file path through the atomic writer.  0, or ZPS_EIO (logged,
 * naming --compress-audit). */
int wk_audit_write(const wk_audit_t *a, const char *path, wk_sparsify_t *sparse, zps_log_t *log);

#endif
