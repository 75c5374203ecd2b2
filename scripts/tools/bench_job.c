/* bench_job: one configuration's processes, parent side (see bench_job.h). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_cli.h"
#include "bench_job.h"
#include "bench_srv.h"
#include "zps_time.h"

static void s_read_hello(const bench_job_t *job, int fd, const char *what, uint32_t i, char *out,
                         size_t len)
{
    bench_hello_t h;
    if (bench_pipe_read(fd, &h, sizeof h, BENCH_PARENT_TIMEOUT_MS) != 0)
        bench_super_die(job->sup, "[%s] %s %u did not start", job->name, what, i);
    if (h.status)
        bench_super_die(job->sup, "[%s] %s %u failed to start: %s", job->name, what, i, h.text);
    snprintf(out, len, "%.255s", h.text);
}

/* A server that died would only show as a client timeout much later. */
static void s_check_servers(const bench_job_t *job)
{
    for (uint32_t s = 0; s < job->S; s++) {
        pid_t pp[2] = {job->srv[s], job->raw[s]};
        for (int k = 0; k < 2; k++) {
            int st;
            if (pp[k] > 0 && waitpid(pp[k], &st, WNOHANG) == pp[k]) {
                bench_super_forget(job->sup, pp[k]);
                if (WIFSIGNALED(st))
                    bench_super_die(job->sup, "[%s] %s %u died (signal %d)", job->name,
                                    k ? "raw server" : "server", s, WTERMSIG(st));
                bench_super_die(job->sup, "[%s] %s %u exited with status %d", job->name,
                                k ? "raw server" : "server", s, WEXITSTATUS(st));
            }
        }
    }
}

void bench_job_get_res(const bench_job_t *job, uint32_t i, bench_res_t *res, const char *what)
{
    /* results are written whole (< PIPE_BUF): once readable, all of it is there */
    int64_t end = zps_now_ms() + BENCH_PARENT_TIMEOUT_MS;
    for (;;) {
        struct pollfd pf = {job->res_fd[i], POLLIN, 0};
        int r = poll(&pf, 1, 200);
        if (r > 0)
            break;
        if (r < 0 && errno != EINTR)
            bench_super_die(job->sup, "poll: %s", strerror(errno));
        s_check_servers(job);
        if (zps_now_ms() > end)
            bench_super_die(job->sup, "[%s] client %u hung during %s", job->name, i, what);
    }
    if (bench_pipe_read(job->res_fd[i], res, sizeof *res, BENCH_PARENT_TIMEOUT_MS) != 0)
        bench_super_die(job->sup, "[%s] client %u died during %s", job->name, i, what);
    if (res->status)
        bench_super_die(job->sup, "[%s] client %u: %s: %s", job->name, i, what, res->err);
}

void bench_job_put_cmd(const bench_job_t *job, uint32_t i, const bench_cmd_t *cmd)
{
    if (bench_pipe_write(job->cmd_fd[i], cmd, sizeof *cmd) != 0)
        bench_super_die(job->sup, "[%s] client %u is gone", job->name, i);
}

/* zps-coord beside this binary, --listen on a free port; its endpoint
 * from its --ready-file. */
static void s_start_coord(bench_job_t *job)
{
    char exe[4096], path[4200], ready[256], ns[16], rs[16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        bench_super_die(job->sup, "cannot find zps-bench's own path: %s", strerror(errno));
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    snprintf(path, sizeof path, "%s/zps-coord", exe);
    snprintf(ready, sizeof ready, "%s/zps-bench-coord.%ld.ready",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (long)getpid());
    unlink(ready);
    snprintf(ns, sizeof ns, "%u", job->S);
    snprintf(rs, sizeof rs, "%u", job->R);
    pid_t pid = bench_super_spawn(job->sup);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(127);
        execl(path, path, "--listen", "tcp://127.0.0.1:0", "--num-servers", ns, "--replicas", rs,
              "--ready-file", ready, "--quiet", (char *)NULL);
        fprintf(stderr, "zps-bench: cannot run %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    job->coord = pid;
    int64_t end = zps_now_ms() + BENCH_PARENT_TIMEOUT_MS;
    for (;;) {
        FILE *f = fopen(ready, "r");
        if (f) {
            int ok = fgets(job->coord_ep, sizeof job->coord_ep, f) != NULL;
            fclose(f);
            if (ok) {
                job->coord_ep[strcspn(job->coord_ep, "\n")] = 0;
                break;
            }
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            bench_super_forget(job->sup, pid);
            bench_super_die(job->sup, "[%s] zps-coord (%s) exited at start", job->name, path);
        }
        if (zps_now_ms() > end)
            bench_super_die(job->sup, "[%s] zps-coord did not start", job->name);
        usleep(20000);
    }
    unlink(ready);
}

void bench_job_start(bench_job_t *job, bench_super_t *sup, uint32_t S, uint32_t W,
                     uint64_t table_keys, uint32_t R, const bench_srv_opts_t *so)
{
    memset(job, 0, sizeof *job);
    if (so)
        job->so = *so;
    job->sup = sup;
    job->S = S;
    job->W = W;
    job->R = R;
    if (R)
        snprintf(job->name, sizeof job->name, "%ux%u R=%u", S, W, R);
    else
        snprintf(job->name, sizeof job->name, "%ux%u", S, W);
    if (R)
        s_start_coord(job);
    for (int kind = 0; kind < 2; kind++) {
        for (uint32_t s = 0; s < S; s++) {
            int p[2];
            if (pipe(p) != 0)
                bench_super_die(job->sup, "pipe: %s", strerror(errno));
            bench_super_keep_fd(job->sup, p[0]);
            pid_t pid = bench_super_spawn(job->sup);
            if (pid == 0) { /* bench_super_spawn closed p[0] */
                if (kind == 0)
                    bench_srv_child(p[1], s, S, table_keys, job->coord_ep, so ? &job->so : NULL);
                else
                    bench_srv_raw_child(p[1]);
            }
            close(p[1]);
            if (kind == 0) {
                job->srv[s] = pid;
                s_read_hello(job, p[0], "server", s, job->eps[s], sizeof job->eps[s]);
            } else {
                job->raw[s] = pid;
                s_read_hello(job, p[0], "raw server", s, job->raw_eps[s],
                             sizeof job->raw_eps[s]);
            }
            bench_super_drop_fd(job->sup, p[0]);
            close(p[0]);
        }
    }
    for (uint32_t w = 0; w < W; w++) {
        int cp[2], rp[2];
        if (pipe(cp) != 0 || pipe(rp) != 0)
            bench_super_die(job->sup, "pipe: %s", strerror(errno));
        bench_super_keep_fd(job->sup, cp[1]);
        bench_super_keep_fd(job->sup, rp[0]);
        pid_t pid = bench_super_spawn(job->sup);
        if (pid == 0) /* bench_super_spawn closed cp[1] and rp[0] */
            bench_cli_child(job, w, cp[0], rp[1]);
        close(cp[0]);
        close(rp[1]);
        job->cli[w] = pid;
        job->cmd_fd[w] = cp[1];
        job->res_fd[w] = rp[0];
    }
    for (uint32_t w = 0; w < W; w++) {
        bench_res_t r;
        bench_job_get_res(job, w, &r, "connecting");
    }
}

void bench_job_stop(bench_job_t *job)
{
    bench_cmd_t q;
    memset(&q, 0, sizeof q);
    q.cmd = BENCH_CMD_QUIT;
    for (uint32_t w = 0; w < job->W; w++) {
        bench_pipe_write(job->cmd_fd[w], &q, sizeof q);
        bench_super_drop_fd(job->sup, job->cmd_fd[w]);
        bench_super_drop_fd(job->sup, job->res_fd[w]);
        close(job->cmd_fd[w]);
        close(job->res_fd[w]);
    }
    for (uint32_t w = 0; w < job->W; w++)
        if (!bench_super_reap(job->sup, job->cli[w], 5000, NULL)) {
            kill(job->cli[w], SIGKILL);
            bench_super_reap(job->sup, job->cli[w], 5000, NULL);
        }
    for (uint32_t s = 0; s < job->S; s++) {
        kill(job->srv[s], SIGTERM);
        kill(job->raw[s], SIGTERM);
    }
    for (uint32_t s = 0; s < job->S; s++) {
        pid_t pp[2] = {job->srv[s], job->raw[s]};
        for (int i = 0; i < 2; i++) {
            int st = 0;
            if (!bench_super_reap(job->sup, pp[i], 5000, &st)) {
                fprintf(stderr, "zps-bench: [%s] %s %u did not stop, killing it\n", job->name,
                        i ? "raw server" : "server", s);
                kill(pp[i], SIGKILL);
                bench_super_reap(job->sup, pp[i], 5000, NULL);
            }
        }
    }
    if (job->coord > 0) {
        kill(job->coord, SIGTERM);
        if (!bench_super_reap(job->sup, job->coord, 5000, NULL)) {
            kill(job->coord, SIGKILL);
            bench_super_reap(job->sup, job->coord, 5000, NULL);
        }
    }
}

/* One barrier-released measurement on clients 0..nc-1; aggregate into *agg. */
void bench_job_measure(const bench_job_t *job, uint32_t nc, const bench_cmd_t *cmd,
                       bench_res_t *agg)
{
    const char *what = cmd->cmd == BENCH_CMD_RUN ? bench_op_name[cmd->op] : "raw ZeroMQ run";
    for (uint32_t i = 0; i < nc; i++)
        bench_job_put_cmd(job, i, cmd);
    bench_res_t r;
    for (uint32_t i = 0; i < nc; i++)
        bench_job_get_res(job, i, &r, what); /* ready */
    for (uint32_t i = 0; i < nc; i++)
        if (bench_pipe_write(job->cmd_fd[i], "G", 1) != 0)
            bench_super_die(job->sup, "[%s] client %u is gone", job->name, i);
    memset(agg, 0, sizeof *agg);
    for (uint32_t i = 0; i < nc; i++) {
        bench_job_get_res(job, i, &r, what);
        agg->pairs += r.pairs;
        agg->msgs += r.msgs;
        agg->submsgs += r.submsgs;
        agg->sent += r.sent;
        agg->recv += r.recv;
        if (r.elapsed > agg->elapsed)
            agg->elapsed = r.elapsed;
    }
}
