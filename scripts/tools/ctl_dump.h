/* ctl_dump: zps-ctl dump -- every stored key of a table and its row, in
 * key order, on stdout or atomically into --out F.
 *
 * Each server is paged through with DUMP requests (server side
 * ps/ps_dump.c): up to CTL_PAGE keys a page, a cursor to resume from,
 * 'done' on the last page.  A reply is checked before it is used (page
 * size, dim equal across pages and servers, value bytes = keys x dim, a
 * cursor that never goes back).  The rows of all servers are gathered,
 * sorted by key and printed with the shortest text of each float
 * (ctl_fmt_float), so a dump can be read back exactly.  The whole dump is
 * held in memory: it is an operator's tool for tables that fit. */
#ifndef CTL_DUMP_H
#define CTL_DUMP_H

#include "ctl_opts.h"

/* Exit status: 0 or 1. */
int ctl_dump(const ctl_opts_t *o);

#endif
