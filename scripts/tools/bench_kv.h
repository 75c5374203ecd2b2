/* bench_kv: the driver of zps-bench kv -- key/value push/pull throughput
 * and latency, next to a raw ZeroMQ ceiling measured in the same run.
 *
 * For each configuration S x W (bench_job): populate the table from client
 * 0 (and check the servers' key count), measure the latency of a 1-key
 * push then pull (ours, then raw ZeroMQ with our measured sizes), then for
 * every message size and operation (push, pull, pushpull) --runs
 * measurements of ours and of the raw ceiling.  The raw ceiling uses the
 * same topology (a logical request = one message to each of the S raw
 * servers), the same window, the same time budget and message sizes equal
 * to the average request and reply bytes per sub-message that
 * wk_client_traffic measured for our push / pull of that size.  Aggregate
 * throughput is sum(pairs) / max(elapsed); every figure is the median over
 * --runs.  Progress goes to stderr, the report (a markdown table, the
 * latencies, the population times) to stdout, and with --json also to a
 * file written atomically (zps_out, opened before the runs so a bad path
 * fails early). */
#ifndef BENCH_KV_H
#define BENCH_KV_H

#include <stdio.h>

#include "bench_super.h"

/* The usage text of zps-bench. */
void bench_kv_usage(FILE *f);

/* zps-bench kv with argv[0] = "kv"; cmdline is the whole command line, for
 * the report.  Returns the exit status (0, 1 failure, 2 usage error);
 * fatal errors exit through bench_super_die. */
int bench_kv_run(bench_super_t *sup, int argc, char **argv, const char *cmdline);

#endif
