/* ctl_admin: zps-ctl health and shutdown.
 *
 * health sends a HELLO to every server at once and waits one --timeout for
 * all of them (a dead server costs one timeout, not one each); a server is
 * healthy if it answers with a HelloReply naming the rank and server count
 * it is listed with.  It prints one line per server and exits 0 iff all
 * are healthy.
 *
 * shutdown carries the job's admin token, read from --admin-token-file: the
 * file must be this user's and not readable by others (like the servers'
 * own check), its first line is the token.  Without the file the request
 * still goes out (the servers refuse it; the operator is told to use
 * SIGTERM).  The token is wiped from memory when done. */
#ifndef CTL_ADMIN_H
#define CTL_ADMIN_H

#include "ctl_opts.h"

/* Exit status: 0 iff every server answers as listed. */
int ctl_health(const ctl_opts_t *o);

/* Exit status: 0 iff every addressed server accepted. */
int ctl_shutdown(const ctl_opts_t *o);

#endif
