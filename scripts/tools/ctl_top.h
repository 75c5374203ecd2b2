/* ctl_top: zps-ctl top -- a terminal view of a running job, refreshed
 * every second, read from the daemons' /metrics endpoints.
 *
 *   zps-ctl top --metrics HOST:PORT,HOST:PORT,... [--interval S] [--once]
 *
 * (the list zps-launch --metrics-port-base prints).  One line per server
 * (keys, table MB, push/s, pull/s, held pulls, clock lag, peers, rejected
 * requests) and per worker (examples/s, train and holdout loss, epoch,
 * progress, clock lag behind the fastest worker under ssp/bsp, as the
 * first server that answers sees it); a target that does not
 * answer gets a DOWN line.  On a terminal each frame replaces the last;
 * otherwise frames are plain text, one after the other.  --once prints one
 * frame (two scrapes --interval apart, for the rates) and exits: 0 if every
 * target answered, 1 if not.
 *
 * Ownership: nothing is kept between calls. */
#ifndef CTL_TOP_H
#define CTL_TOP_H

/* argv[0] is "top".  Exit status: 0, 1 (a target down with --once), 2 usage. */
int ctl_top_main(int argc, char **argv);

#endif
