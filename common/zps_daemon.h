/* zps_daemon: process set-up shared by the daemons' mains. */
#ifndef ZPS_DAEMON_H
#define ZPS_DAEMON_H

/* SIGTERM and SIGINT call on_stop (which should only set a sig_atomic_t
 * flag); SIGPIPE is ignored. */
void zps_daemon_signals(void (*on_stop)(int));

#endif
