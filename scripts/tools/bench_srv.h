/* bench_srv: zps-bench's server children.
 *
 *   ps servers   each a ps_server in-process (SGD lr 0.01, bound to
 *                tcp://127.0.0.1:0, its table sized for its share of
 *                --table-keys), logging warnings only
 *   raw servers  each a plain ROUTER that answers every request with a
 *                reply of the size written in the request's first 4 bytes,
 *                without looking at anything else: the transport ceiling.
 *                Replies are sent zero-copy from a constant buffer.
 * Each reports its endpoint (or why it failed) as one bench_hello_t on the
 * pipe wfd, then serves until SIGTERM/SIGINT (the child's stop flag), and
 * exits: these functions never return. */
#ifndef BENCH_SRV_H
#define BENCH_SRV_H

#include <stdint.h>

/* What the ps servers run beyond the defaults above: the optimizer of
 * their table (zps_opt_kind_t; SGD by default) and eviction (zps-server
 * --evict with a cap of twice the table: the per-row stamp is written,
 * nothing is evicted), to measure what a row layout costs. */
typedef struct {
    int optimizer;
    int evict;
    int accum;      /* zps-server --accum: PS_ACCUM_AUTO (0), _F32, _UF16 */
    uint32_t threads; /* zps-server --threads (0: the default, auto) */
} bench_srv_opts_t;

/* Server rank of S, for a table of table_keys keys in all (so may be NULL:
 * the defaults). */
void bench_srv_child(int wfd, uint32_t rank, uint32_t S, uint64_t table_keys, const char *coord,
                     const bench_srv_opts_t *so) __attribute__((noreturn));

void bench_srv_raw_child(int wfd) __attribute__((noreturn));

#endif
