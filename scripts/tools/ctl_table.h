/* ctl_table: the coordinator's commands.
 * zps-ctl table -- a replicated job's range table, read from
 * its coordinator (TABLE_GET): the version, the servers' endpoints, per
 * server the ranges it holds and heads, ranges with no replica left; with
 * --file KEYS, one line per key: "KEY RANGE R1 R2 ..." (its replicas,
 * primary first; "lost" when none is left). */
#ifndef CTL_TABLE_H
#define CTL_TABLE_H

#include "ctl_opts.h"

/* Exit status: 0, or 1 (no answer, a bad table, an unreadable key file). */
int ctl_table(const ctl_opts_t *o);

/* zps-ctl add-server ENDPOINT / remove-server RANK: one RECONFIG to the
 * coordinator, its answer printed; then (without --no-wait) the table is
 * read every 200 ms until the moves are done (add-server: the server joins
 * nothing any more; remove-server: the rank is in no chain), one progress
 * line a second, at most --server-timeout seconds.  Exit status 0 when
 * done, 1 when refused or not done in time. */
int ctl_reconfig(const ctl_opts_t *o, const char *cmd, const char *arg);

#endif
