/* bench_srv: zps-bench's server children (see bench_srv.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "bench_pipe.h"
#include "bench_srv.h"
#include "bench_super.h"
#include "ps_server.h"
#include "zps_log.h"
#include "zps_optim.h"

void bench_srv_child(int wfd, uint32_t rank, uint32_t S, uint64_t table_keys, const char *coord,
                     const bench_srv_opts_t *so)
{
    bench_super_child_signals();
    bench_hello_t h;
    memset(&h, 0, sizeof h);
    zps_log_t *log = zps_log_new("server", (int)rank, stderr);
    if (!log) {
        h.status = 1;
        snprintf(h.text, sizeof h.text, "out of memory");
        bench_pipe_write(wfd, &h, sizeof h);
        _exit(1);
    }
    zps_log_set_level(log, ZPS_LOG_WARN);
    ps_server_conf_t conf;
    ps_server_conf_defaults(&conf);
    snprintf(conf.bind, sizeof conf.bind, "tcp://127.0.0.1:0");
    conf.rank = rank;
    conf.nservers = S;
    conf.ntables = 1;
    zps_optim_defaults(&conf.tables[0], so ? (zps_opt_kind_t)so->optimizer : ZPS_OPT_SGD);
    conf.tables[0].lr = 0.01f;
    conf.capacity_hint = (uint64_t)((double)table_keys / S * 1.3) + 1024;
    if (so)
        conf.accum = so->accum;
    if (so && so->threads)
        conf.threads = so->threads;
    if (so && so->evict) { /* the stamp per row, no eviction */
        conf.bound.evict = 1;
        conf.limit_keys = 2 * table_keys + 1024;
    }
    if (coord && coord[0]) /* replicated: each server holds R of S shares */
        snprintf(conf.coordinator, sizeof conf.coordinator, "%s", coord);
    char err[512];
    ps_server_t *srv = ps_server_new(&conf, log, err, sizeof err);
    if (!srv) {
        h.status = 1;
        snprintf(h.text, sizeof h.text, "server %u: %.480s", rank, err);
        bench_pipe_write(wfd, &h, sizeof h);
        _exit(1);
    }
    snprintf(h.text, sizeof h.text, "%s", ps_server_endpoint(srv));
    bench_pipe_write(wfd, &h, sizeof h);
    close(wfd);
    int rc = ps_server_run(srv, bench_super_stop_flag());
    ps_server_destroy(&srv);
    zps_log_destroy(&log);
    _exit(rc ? 1 : 0);
}

/* Raw echo: [id][request] -> [id][reply of the size in request bytes 0..3]. */
void bench_srv_raw_child(int wfd)
{
    bench_super_child_signals();
    bench_hello_t h;
    memset(&h, 0, sizeof h);
    void *ctx = zmq_ctx_new();
    void *sock = ctx ? zmq_socket(ctx, ZMQ_ROUTER) : NULL;
    int hwm = 100000, linger = 0;
    if (sock) {
        zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    }
    if (!sock || zmq_bind(sock, "tcp://127.0.0.1:*") != 0) {
        h.status = 1;
        snprintf(h.text, sizeof h.text, "raw server: cannot bind: %s", zmq_strerror(errno));
        bench_pipe_write(wfd, &h, sizeof h);
        _exit(1);
    }
    size_t elen = sizeof h.text;
    zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, h.text, &elen);
    bench_pipe_write(wfd, &h, sizeof h);
    close(wfd);
    /* Replies are sent zero-copy from a constant buffer; when a bigger one is
     * needed the old one may still be queued, so it is kept until exit. */
    char *buf = NULL, *old[64];
    size_t cap = 0;
    int nold = 0;
    volatile sig_atomic_t *stop = bench_super_stop_flag();
    while (!*stop) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        if (zmq_msg_recv(&id, sock, 0) < 0) {
            zmq_msg_close(&id);
            if (errno == EINTR)
                continue;
            break;
        }
        uint32_t rep = 0;
        int more = zmq_msg_more(&id);
        while (more) {
            zmq_msg_init(&body);
            if (zmq_msg_recv(&body, sock, 0) < 0) {
                zmq_msg_close(&body);
                break;
            }
            if (zmq_msg_size(&body) >= 4 && rep == 0)
                memcpy(&rep, zmq_msg_data(&body), 4);
            more = zmq_msg_more(&body);
            zmq_msg_close(&body);
        }
        if (rep > cap) {
            size_t nc = cap * 2 > rep ? cap * 2 : rep;
            char *nb = malloc(nc);
            if (!nb)
                _exit(1);
            memset(nb, 0x5a, nc);
            if (buf) {
                if (nold == 64)
                    _exit(1);
                old[nold++] = buf;
            }
            buf = nb;
            cap = nc;
        }
        zmq_msg_t r;
        if (rep)
            zmq_msg_init_data(&r, buf, rep, NULL, NULL); /* constant: no copy, no free */
        else
            zmq_msg_init(&r);
        if (zmq_msg_send(&id, sock, ZMQ_SNDMORE) < 0 || zmq_msg_send(&r, sock, 0) < 0) {
            zmq_msg_close(&id);
            zmq_msg_close(&r);
        }
    }
    zmq_close(sock);
    zmq_ctx_term(ctx);
    for (int i = 0; i < nold; i++)
        free(old[i]);
    free(buf);
    _exit(0);
}
