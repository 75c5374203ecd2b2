/* bench_job: the processes of one zps-bench configuration (S servers x W
 * clients), seen from the parent.
 *
 * bench_job_start forks (with replicas: zps-coord, exec'd, first) S ps
 * servers and S raw echo servers (bench_srv),
 * reading each one's endpoint before the next starts, then W clients
 * (bench_cli) on a command pipe and a result pipe each, and waits until
 * every client has connected.  bench_job_measure is one barrier-released
 * measurement: a command to every client, each answers READY after its
 * preparation and warm-up, the parent writes one 'G' byte to each, and
 * sums what they report (pairs, messages, bytes; the elapsed time is the
 * longest).  While it waits for a client the parent checks every 200 ms
 * that no server died (a dead server would otherwise only show as a
 * client timeout much later).  Any failure is fatal (bench_super_die:
 * every child killed).  bench_job_stop sends QUIT to the clients, then
 * SIGTERM to the servers, and kills what does not exit within 5 s. */
#ifndef BENCH_JOB_H
#define BENCH_JOB_H

#include <stdint.h>
#include <sys/types.h>

#include "bench_pipe.h"
#include "bench_srv.h"
#include "bench_super.h"

typedef struct {
    bench_super_t *sup;
    uint32_t S, W;
    pid_t srv[BENCH_MAX_SRV], raw[BENCH_MAX_SRV], cli[BENCH_MAX_CLI];
    int cmd_fd[BENCH_MAX_CLI], res_fd[BENCH_MAX_CLI];
    char eps[BENCH_MAX_SRV][256], raw_eps[BENCH_MAX_SRV][256];
    char name[32];   /* "SxW", in messages */
    uint32_t R;      /* replicas: 0 without a coordinator */
    pid_t coord;     /* zps-coord (exec'd from zps-bench's directory) */
    char coord_ep[256];
    bench_srv_opts_t so;
} bench_job_t;

/* Starts the configuration S x W (servers sized for table_keys keys, run
 * with so: may be NULL); with R > 0 a replicated job: zps-coord --replicas
 * R first (the binary beside zps-bench), servers and clients given
 * --coordinator. */
void bench_job_start(bench_job_t *job, bench_super_t *sup, uint32_t S, uint32_t W,
                     uint64_t table_keys, uint32_t R, const bench_srv_opts_t *so);
void bench_job_stop(bench_job_t *job);

/* Sends cmd to client i / reads its result (what names the step in
 * messages); a failed result is fatal. */
void bench_job_put_cmd(const bench_job_t *job, uint32_t i, const bench_cmd_t *cmd);
void bench_job_get_res(const bench_job_t *job, uint32_t i, bench_res_t *res, const char *what);

/* One barrier-released measurement on clients 0..nc-1, summed into *agg. */
void bench_job_measure(const bench_job_t *job, uint32_t nc, const bench_cmd_t *cmd,
                       bench_res_t *agg);

#endif
