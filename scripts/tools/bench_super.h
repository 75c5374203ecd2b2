/* bench_super: zps-bench's process supervisor -- forks the servers and
 * clients of a run, and makes sure none outlives the run.
 *
 * Children die with the parent (PR_SET_PDEATHSIG, set right after the
 * fork, then a check that the parent did not die before it).  SIGINT and
 * SIGTERM in the parent kill and reap every child and exit 128 + signal;
 * bench_super_die (any fatal error of the parent) does the same with
 * exit status 1.  fork happens with those signals blocked, so a Ctrl-C
 * never misses a just-born child.  A child starts with default signal
 * dispositions, owns no siblings and closes the parent's pipe ends that
 * were registered with bench_super_keep_fd (so a pipe's EOF means what it
 * should).
 *
 * Process-wide state.  A signal handler takes no argument, so what the
 * handlers need lives at file scope in bench_super.c, and only that: the
 * table of live children (the parent's SIGINT/SIGTERM handler kills and
 * reaps them) and the stop flag of a child (its SIGTERM/SIGINT handler
 * sets it, the child's loop reads it).  Everything else -- the parent's
 * pid, the pipe ends to close in a child, whether a progress line awaits
 * its end -- is in the handle.  Since the handlers are per process, there
 * is at most one supervisor per process: bench_super_new refuses a
 * second. */
#ifndef BENCH_SUPER_H
#define BENCH_SUPER_H

#include <signal.h>
#include <sys/types.h>

typedef struct bench_super bench_super_t;

/* The supervisor of this process: installs the parent's SIGINT/SIGTERM
 * handler and ignores SIGPIPE.  NULL when out of memory or when one
 * already exists. */
bench_super_t *bench_super_new(void);

/* Kills and reaps the children left, frees the handle. */
void bench_super_destroy(bench_super_t **sp);

/* fork: the child's pid in the parent, 0 in the child (see above). */
pid_t bench_super_spawn(bench_super_t *sp);

/* A parent-side pipe end that the children must not keep open / no longer
 * one (it is being closed). */
void bench_super_keep_fd(bench_super_t *sp, int fd);
void bench_super_drop_fd(bench_super_t *sp, int fd);

/* Waits for the child pid up to ms milliseconds; 1 if reaped (*status
 * filled when not NULL), 0 if it still runs. */
int bench_super_reap(bench_super_t *sp, pid_t pid, int ms, int *status);

/* pid was reaped by the caller: no longer a child to kill. */
void bench_super_forget(bench_super_t *sp, pid_t pid);

/* Whether stderr holds a progress line without its end (a fatal message
 * then starts on a new line). */
void bench_super_midline(bench_super_t *sp, int on);

/* "zps-bench: <message>" on stderr, every child killed and reaped, exit 1. */
void bench_super_die(bench_super_t *sp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/* In a child: SIGTERM and SIGINT set the stop flag (without SA_RESTART,
 * so blocking calls return EINTR), SIGPIPE is ignored. */
void bench_super_child_signals(void);

/* The child's stop flag (for ps_server_run and the child's loops). */
volatile sig_atomic_t *bench_super_stop_flag(void);

#endif
