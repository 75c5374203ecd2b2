/* zps-ctl: the operator's client for a running job (like redis-cli).
 *
 *   zps-ctl --servers A,B,... [connection options] COMMAND [command options]
 *     stats [--json] [--server R]   counters of every server (and per client process)
 *     pull KEY,KEY,...              one line per key: KEY V1 V2 ...
 *     push --file F [--window N]    each line of F is one push, applied exactly once
 *     dump [--out F]                every stored key and row, in key order
 *     health                        exit 0 iff every server answers
 *     shutdown [--server R]         asks the servers to exit (needs the admin token)
 *   zps-ctl --coordinator EP table | add-server ENDPOINT | remove-server RANK
 *                                   a replicated job's range table, growing and
 *                                   shrinking it (ctl_table)
 *   zps-ctl top --metrics HOST:PORT,... [--once]   a live view from /metrics
 *                                     (ctl_top; no --servers: it reads HTTP only)
 *
 * DESIGN
 * pull and push go through the wk_client library (its public API only), so
 * they get its splitting by server, retries (a silent server is retried
 * every 2 s, backing off to 8 s, for --server-timeout seconds) and its
 * exactly-once push identity: this process is one client (rank --rank, one
 * random nonce) and each line of a push file is one push with its own
 * sequence number, so a line is applied once however often it is resent.
 * stats, dump, health and shutdown talk to each server on their own DEALER
 * socket (ctl_conn.c): health must name every server that does not
 * answer (wk_client_new fails on the first), stats needs the per-client
 * records of StatsReply, shutdown carries the admin token and dump pages
 * through DUMP (a message added for this tool, server side ps/ps_dump.c).
 * Each of those sends a HELLO first (so a server that binds identities to
 * connections knows this one) and waits for each reply at most --timeout
 * seconds.
 *
 * Numbers on the command line and in files are base 10 (no octal or hex:
 * "010" is ten).
 *
 * Modules (scripts/tools/, prefix ctl_): ctl_opts the command line and
 * usage, ctl_kv pull and push (wk_client), ctl_conn the control
 * connection, ctl_stats, ctl_dump, ctl_admin (health, shutdown and the
 * admin token) the other commands, ctl_num numbers in and out.  This file
 * only dispatches. */
#include <string.h>

#include "ctl_admin.h"
#include "ctl_dump.h"
#include "ctl_kv.h"
#include "ctl_opts.h"
#include "ctl_stats.h"
#include "ctl_table.h"
#include "ctl_top.h"

int main(int argc, char **argv)
{
    /* metrics: top reads the daemons' /metrics, not the servers'
     * sockets, and has its own options */
    if (argc >= 2 && !strcmp(argv[1], "top"))
        return ctl_top_main(argc - 1, argv + 1);
    ctl_opts_t o;
    const char *cmd, *arg;
    int rc = ctl_opts_parse(argc, argv, &o, &cmd, &arg);
    if (rc < 0) {
        if (!strcmp(cmd, "stats"))
            rc = ctl_stats(&o);
        else if (!strcmp(cmd, "pull"))
            rc = ctl_pull(&o, arg);
        else if (!strcmp(cmd, "push"))
            rc = ctl_push(&o);
        else if (!strcmp(cmd, "dump"))
            rc = ctl_dump(&o);
        else if (!strcmp(cmd, "health"))
            rc = ctl_health(&o);
        else if (!strcmp(cmd, "table"))
            rc = ctl_table(&o);
        else if (!strcmp(cmd, "add-server") || !strcmp(cmd, "remove-server"))
            rc = ctl_reconfig(&o, cmd, arg);
        else
            rc = ctl_shutdown(&o);
    }
    ctl_opts_free(&o);
    return rc;
}
