/* bench_cli: a zps-bench client child.
 *
 * One wk_client to the job's ps servers and, for the ceiling, one raw
 * DEALER socket per raw server (connected on first use).  It takes
 * commands on the pipe rfd and answers each with one result on wfd:
 *   POPULATE  (client 0) pushes ids 0..N-1 once in BENCH_POP_CHUNK-key
 *             pushes, then reads every server's key count
 *   RUN, RAW  prepares NSAMP random sorted samples of ~k distinct ids
 *             (each id taken with probability k/N by geometric skips) and
 *             a warm-up window, answers READY, waits for the 'G' byte, then
 *             keeps `window` requests in flight, waiting on the oldest,
 *             until its time budget is spent; RAW sends, per logical
 *             request, one message of our measured request size to each
 *             raw server, zero-copy from a constant buffer
 *   LAT, RAWLAT  sequential 1-key push + pull round trips (our client / raw
 *             sockets with our measured sizes): p50 and p99
 *   QUIT      exits
 * Any failure is reported in the result (wk_client_error() included) and
 * ends the child with status 1.  Never returns. */
#ifndef BENCH_CLI_H
#define BENCH_CLI_H

#include <stdint.h>

#include "bench_job.h"

/* Client idx of job (its endpoints are read from job). */
void bench_cli_child(const bench_job_t *job, uint32_t idx, int rfd, int wfd)
    __attribute__((noreturn));

#endif
