/* bench_super: zps-bench's process supervisor (see bench_super.h). */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_pipe.h"
#include "bench_super.h"
#include "zps_time.h"

#define S_MAX_KIDS (2 * BENCH_MAX_SRV + BENCH_MAX_CLI)

/* The only process-wide state, because the signal handlers need it (a
 * handler has no argument to be handed a supervisor):
 *   s_kids   the live children; the parent's SIGINT/SIGTERM handler kills
 *            and reaps them.  Changed with those signals blocked when a
 *            child is added (bench_super_spawn); a slot cleared as its
 *            child is reaped at worst makes the handler kill a pid that is
 *            already gone.
 *   s_stop   a child's stop flag, set by its SIGTERM/SIGINT handler.
 * s_live only enforces one supervisor per process (the handlers are per
 * process); the handlers never read it. */
static volatile pid_t s_kids[S_MAX_KIDS];
static volatile sig_atomic_t s_stop;
static int s_live;

struct bench_super {
    pid_t parent;                  /* a child checks it is still this one's */
    int pfds[4 * S_MAX_KIDS];      /* parent-side pipe ends, closed in children */
    int npfds;
    int midline;                   /* a progress line awaits its end */
};

static void s_child_stop(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_kill_all(int sig)
{
    for (int i = 0; i < S_MAX_KIDS; i++)
        if (s_kids[i] > 0)
            kill(s_kids[i], sig);
}

static void s_parent_on_signal(int sig)
{
    static const char msg[] = "\nzps-bench: interrupted, killing children\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    s_kill_all(SIGKILL);
    for (int i = 0; i < S_MAX_KIDS; i++)
        if (s_kids[i] > 0)
            waitpid(s_kids[i], NULL, 0);
    _exit(128 + sig);
}

static void s_kill_and_reap_all(bench_super_t *sp)
{
    s_kill_all(SIGKILL);
    for (int i = 0; i < S_MAX_KIDS; i++)
        if (s_kids[i] > 0) {
            pid_t p = s_kids[i];
            waitpid(p, NULL, 0);
            bench_super_forget(sp, p);
        }
}

bench_super_t *bench_super_new(void)
{
    if (s_live)
        return NULL;
    bench_super_t *sp = calloc(1, sizeof *sp);
    if (!sp)
        return NULL;
    s_live = 1;
    sp->parent = getpid();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_parent_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return sp;
}

void bench_super_destroy(bench_super_t **spp)
{
    bench_super_t *sp = *spp;
    if (!sp)
        return;
    *spp = NULL;
    s_kill_and_reap_all(sp);
    free(sp);
    s_live = 0;
}

void bench_super_forget(bench_super_t *sp, pid_t p)
{
    (void)sp;
    for (int i = 0; i < S_MAX_KIDS; i++)
        if (s_kids[i] == p)
            s_kids[i] = 0;
}

int bench_super_reap(bench_super_t *sp, pid_t pid, int ms, int *status)
{
    int64_t end = zps_now_ms() + ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD)) {
            bench_super_forget(sp, pid);
            return 1;
        }
        if (zps_now_ms() >= end)
            return 0;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void bench_super_midline(bench_super_t *sp, int on)
{
    sp->midline = on;
}

void bench_super_die(bench_super_t *sp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%szps-bench: ", sp->midline ? "\n" : "");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stdout);
    s_kill_and_reap_all(sp);
    exit(1);
}

pid_t bench_super_spawn(bench_super_t *sp)
{
    sigset_t all, old;
    sigemptyset(&all);
    sigaddset(&all, SIGINT);
    sigaddset(&all, SIGTERM);
    sigprocmask(SIG_BLOCK, &all, &old);
    fflush(stdout);
    fflush(stderr);
    pid_t p = fork();
    if (p < 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        bench_super_die(sp, "fork failed: %s", strerror(errno));
    }
    if (p > 0) {
        int i = 0;
        while (i < S_MAX_KIDS && s_kids[i] > 0)
            i++;
        if (i == S_MAX_KIDS) {
            kill(p, SIGKILL);
            waitpid(p, NULL, 0);
            sigprocmask(SIG_SETMASK, &old, NULL);
            bench_super_die(sp, "too many child processes");
        }
        s_kids[i] = p;
        sigprocmask(SIG_SETMASK, &old, NULL);
        return p;
    }
    for (int i = 0; i < S_MAX_KIDS; i++)
        s_kids[i] = 0; /* a child owns no siblings */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != sp->parent)
        _exit(1);
    for (int i = 0; i < sp->npfds; i++)
        close(sp->pfds[i]);
    sp->npfds = 0;
    sigprocmask(SIG_SETMASK, &old, NULL);
    return 0;
}

void bench_super_keep_fd(bench_super_t *sp, int fd)
{
    sp->pfds[sp->npfds++] = fd;
}

void bench_super_drop_fd(bench_super_t *sp, int fd)
{
    for (int i = 0; i < sp->npfds; i++)
        if (sp->pfds[i] == fd) {
            sp->pfds[i] = sp->pfds[--sp->npfds];
            return;
        }
}

void bench_super_child_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_child_stop; /* no SA_RESTART: blocking calls return EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

volatile sig_atomic_t *bench_super_stop_flag(void)
{
    return &s_stop;
}
