/* wk_sparsify: gradient sparsification with error feedback, worker side.
 *
 * For `--compress topk:R` and `--compress threshold:T`.  The worker does not
 * send every gradient row it computes: per key it keeps a residual v_k (what
 * was computed but not yet sent), adds each new gradient to it and sends
 * only the rows whose residual is large; the rest stays in v_k and goes out
 * with a later push of the same key.  Nothing is dropped: over any sequence
 * of pushes, for every key, sum(sent rows) + v_k == sum(gradients) (up to
 * float rounding).
 *
 * With momentum m > 0 this is DGC's momentum correction (Lin et al., Deep
 * Gradient Compression, ICLR'18): u_k = m * u_k + g_k; v_k += u_k, and a
 * sent row clears u_k as well as v_k ("momentum factor masking").  The
 * server then applies the sent rows with plain SGD (no server momentum).
 *
 * Selection per push of n rows:
 *   topk       the ceil(ratio * n) rows with the largest L2 norm of v_k,
 *              at least 1 when n > 0; equal norms go to the smaller key.
 *              ratio * n within float precision (relative 2^-23) of an
 *              integer counts as that integer, so ratio 0.1f of 10 rows is 1.
 *   threshold  the rows with max_i |v_k[i]| >= threshold.
 * Rows are chosen in O(n) expected time (quickselect), not by sorting.
 *
 * Quantization feedback: when the caller sends the selected rows through a
 * lossy codec (zps_vcodec f16 / int8), it reports what was intended and what
 * was actually sent with wk_sparsify_feedback(), and the difference joins
 * the residual, so the invariant above holds for the values that arrive.
 *
 * Storage: an open-addressing hash table (linear probing, 8-byte slots of
 * 32-bit hash tag + 32-bit row index) over rows [key | v | u] kept in
 * fixed-size slabs: no allocation per key, rows never move.  Keys are never
 * removed: a key keeps its (possibly zero) row once pushed.  Memory per key
 * about 8 + 4 * dim (8 * dim with momentum) bytes rounded up to 8, plus
 * 10.7..21 bytes of slots (load kept between 3/8 and 3/4).
 *
 * Out of memory: a row whose state cannot be allocated is always sent (its
 * gradient as is), so no gradient mass is lost; selection counts may then
 * exceed ceil(ratio * n).
 *
 * Not thread-safe: one object per worker thread.  Pointers returned by
 * wk_sparsify_next stay valid until the next step / feedback / destroy. */
#ifndef WK_SPARSIFY_H
#define WK_SPARSIFY_H

#include <stddef.h>
#include <stdint.h>

typedef enum { WK_SPARSE_TOPK = 1, WK_SPARSE_THRESHOLD = 2 } wk_sparse_mode_t;

typedef struct {
    wk_sparse_mode_t mode;
    float ratio;      /* topk: fraction (0,1] of this push's rows to send (at least 1 row if n>0) */
    float threshold;  /* threshold: send rows whose max |v| >= threshold (finite, >= 0) */
    float momentum;   /* 0: plain error feedback (v += g); in (0,1): u = m*u + g; v += u */
} wk_sparsify_conf_t;

typedef struct wk_sparsify wk_sparsify_t;

/* New empty state for rows of dim floats.  NULL when the configuration is
 * invalid (unknown mode, ratio outside (0,1] for topk, threshold negative or
 * not finite for threshold, momentum outside [0,1), dim 0 or over 2^24) or
 * on allocation failure.  The configuration is copied. */
wk_sparsify_t *wk_sparsify_new(const wk_sparsify_conf_t *c, uint32_t dim);

/* Frees everything and sets *s to NULL; NULL and *s == NULL are fine. */
void wk_sparsify_destroy(wk_sparsify_t **s);

/* One push: keys[n] sorted ascending and unique, g[n * dim] raw gradients.
 * Per key: v_k += g_k (or u_k = m * u_k + g_k; v_k += u_k).  Rows are
 * selected as described above; the selected keys are written in ascending
 * order to out_keys and their v_k to out_vals (row-major), then v_k (and
 * u_k) of the selected rows are set to zero.  Unselected rows keep v_k for
 * later pushes.  Returns the number m of selected rows (0 iff n == 0).
 * out_keys / out_vals need room for n rows and must not overlap keys / g. */
size_t wk_sparsify_step(wk_sparsify_t *s, const uint64_t *keys, const float *g, size_t n,
                        uint64_t *out_keys, float *out_vals);

/* Quantization error feedback: the caller sent `sent` instead of `intended`
 * (both m * dim floats) for these m keys; adds intended - sent to their
 * residuals (creating state for a key that has none). */
void wk_sparsify_feedback(wk_sparsify_t *s, const uint64_t *keys, const float *intended,
                          const float *sent, size_t m);

/* Residual v_k of key into out (dim floats; zeros if the key has no state). */
void wk_sparsify_residual(const wk_sparsify_t *s, uint64_t key, float *out);

/* Iteration over every key with state, in insertion order: *cursor starts
 * at 0; returns 1 and sets *key and *resid (its dim residual floats, owned
 * by s) while keys remain, 0 at the end. */
int wk_sparsify_next(const wk_sparsify_t *s, size_t *cursor, uint64_t *key, const float **resid);

size_t wk_sparsify_keys(const wk_sparsify_t *s);   /* keys with state */
size_t wk_sparsify_bytes(const wk_sparsify_t *s);  /* memory used: table, rows, scratch */

#endif
