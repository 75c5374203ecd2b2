/* zps-bench: key/value push/pull throughput and latency, next to a raw
 * ZeroMQ ceiling measured in the same run.
 *
 *   zps-bench kv [--configs 1x1,2x2] [--sizes 1000,100000,1000000] [--runs 3]
 *                [--table-keys 10000000] [--window 4] [--quick] [--json FILE]
 *   zps-bench mem [--keys N] ...  (bench_mem.h: the table's work in
 *                process, next to the machine's random-read ceiling)
 *
 * DESIGN
 * The parent process never touches ZeroMQ: it forks every participant and
 * talks to them over pipes, so no ZeroMQ context ever crosses a fork.
 *   ps servers   S children, each a ps_server in-process (SGD lr 0.01, bound
 *                to tcp://127.0.0.1:0) reporting its endpoint over a pipe
 *   raw servers  S children, each a plain ROUTER that answers every request
 *                with a reply of the size written in the request's first 4
 *                bytes, without looking at anything else
 *   clients      W children, each with its own wk_client (to the ps servers)
 *                and, for the ceiling, S raw DEALER sockets (one per raw
 *                server); they take fixed-size commands on one pipe and
 *                answer fixed-size results on another
 * A measurement is: command to every client -> each prepares (pre-generated
 * key samples, a short warm-up) and answers READY -> the parent writes one GO
 * byte to each (the barrier) -> each runs its timed loop with `window`
 * requests in flight, waiting on the oldest, until its time budget is spent,
 * and reports pairs, wire bytes and elapsed time.  Aggregate throughput is
 * sum(pairs) / max(elapsed).  Every figure is the median over --runs.
 *
 * The raw ceiling uses the same topology (a logical request = one message to
 * each of the S raw servers), the same window, the same time budget and
 * message sizes equal to the average request and reply bytes per
 * sub-message that wk_client_traffic measured for our push / pull of that
 * size.  Raw messages are single frames sent zero-copy from a constant
 * buffer: pure transport, no encoding, no table.
 *
 * Robustness: children die with the parent (PR_SET_PDEATHSIG); SIGINT and
 * SIGTERM in the parent kill and reap every child; any client error is
 * reported with wk_client_error() and ends the run with exit status 1.
 *
 * Modules (scripts/tools/, prefix bench_): bench_kv the kv driver and its
 * report, bench_job a configuration's processes seen from the parent,
 * bench_srv the server children, bench_cli the client children, bench_pipe
 * the parent/child messages, bench_super the process supervisor (forks,
 * reaping, the signal handlers and the only process-wide state).  This
 * file reads the subcommand and installs the supervisor. */
#include <stdio.h>
#include <string.h>

#include "bench_kv.h"
#include "bench_mem.h"
#include "bench_super.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        bench_kv_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        bench_kv_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("zps-bench %s\n", ZPS_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "mem") == 0)
        return bench_mem_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "kv") != 0) {
        fprintf(stderr, "zps-bench: unknown subcommand '%s'\n", argv[1]);
        bench_kv_usage(stderr);
        return 2;
    }
    char cmdline[2048];
    size_t n = 0;
    cmdline[0] = 0;
    for (int i = 0; i < argc && n < sizeof cmdline - 1; i++)
        n += (size_t)snprintf(cmdline + n, sizeof cmdline - n, "%s%s", i ? " " : "", argv[i]);
    if (n >= sizeof cmdline)
        n = sizeof cmdline - 1;

    bench_super_t *sup = bench_super_new();
    if (!sup) {
        fprintf(stderr, "zps-bench: out of memory\n");
        return 1;
    }
    int rc = bench_kv_run(sup, argc - 1, argv + 1, cmdline);
    bench_super_destroy(&sup);
    return rc;
}
