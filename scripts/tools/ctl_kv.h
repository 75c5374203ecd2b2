/* ctl_kv: zps-ctl's pull and push, through the wk_client library (its
 * public API only).
 *
 * They get its splitting by server, its retries (a silent server is
 * retried every --retry seconds, backing off to 8 s, for --server-timeout
 * seconds; a lost hello costs one connection attempt) and its exactly-once
 * push identity: this process is one client (rank --rank, one random
 * nonce) and each line of a push file is one push with its own sequence
 * number, so a line is applied once however often it is resent.  Every
 * line goes to every server (sync_all; empty where a server owns none of
 * its keys), so each server's dedup window sees this client's sequence
 * numbers without gaps.
 *
 * pull prints one line per key given, in the order given (duplicates
 * pulled once).  push reads the whole file first -- the table's dim,
 * learnt on connecting, decides how a line is read; a key twice in a line
 * is summed; a bad line is an error and nothing is pushed -- then keeps
 * --window lines in flight. */
#ifndef CTL_KV_H
#define CTL_KV_H

#include "ctl_opts.h"

/* pull KEY,KEY,...: exit status 0, 1 (failed) or 2 (bad key list). */
int ctl_pull(const ctl_opts_t *o, const char *list);

/* push --file F: exit status 0 or 1 (a usage error exits with 2). */
int ctl_push(const ctl_opts_t *o);

#endif
