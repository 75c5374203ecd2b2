/* bench_mem: zps-bench mem -- what one server's table work can reach at
 * scale, in process, with no ZeroMQ and no encoding: the machine's ceiling
 * for random reads of a table-sized region, then zps_table lookups and
 * zps_shard pulls and pushes of 1M-key batches at N stored keys.  It tells
 * the table's share of `zps-bench kv` apart from the transport's. */
#ifndef BENCH_MEM_H
#define BENCH_MEM_H

#include <stdio.h>

void bench_mem_usage(FILE *f);

/* zps-bench mem with argv[0] = "mem".  Returns the exit status (0, 1
 * failure, 2 usage error). */
int bench_mem_main(int argc, char **argv);

#endif
