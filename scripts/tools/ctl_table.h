/* ctl_table: zps-ctl table -- a replicated job's range table, read from
 * its coordinator (TABLE_GET): the version, the servers' endpoints, per
 * server the ranges it holds and heads, ranges with no replica left; with
 * --file KEYS, one line per key: "KEY RANGE R1 R2 ..." (its replicas,
 * primary first; "lost" when none is left). */
#ifndef CTL_TABLE_H
#define CTL_TABLE_H

#include "ctl_opts.h"

/* Exit status: 0, or 1 (no answer, a bad table, an unreadable key file). */
int ctl_table(const ctl_opts_t *o);

#endif
