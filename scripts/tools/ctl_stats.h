/* ctl_stats: zps-ctl stats -- the counters of every server (or of
 * --server R), and per client process, as key=value lines or JSON.
 *
 * One STATS request per server over the control connection (ctl_conn).  A
 * server that does not answer gets an error line (or object) of its own
 * and the exit status 1, the others are still shown; the text output ends
 * with a 'total' line over the servers that answered.  Field names are
 * those of StatsReply and ClientStats (docs/zps-ctl.md). */
#ifndef CTL_STATS_H
#define CTL_STATS_H

#include "ctl_opts.h"

/* Exit status: 0, or 1 when a server did not answer. */
int ctl_stats(const ctl_opts_t *o);

#endif
