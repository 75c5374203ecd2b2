/* ctl_admin: the health and shutdown commands (see ctl_admin.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "ctl_admin.h"
#include "ctl_conn.h"
#include "zps_err.h"
#include "zps_time.h"

int ctl_health(const ctl_opts_t *o)
{
    ctl_conn_t *c = ctl_conn_new(o);
    if (!c)
        return 1;
    uint32_t S = o->nservers;
    uint64_t *ids = calloc(S, sizeof *ids);
    int *state = calloc(S, sizeof *state); /* 0 waiting, 1 ok, -1 bad */
    char (*why)[300] = calloc(S, sizeof *why);
    if (!ids || !state || !why) {
        fprintf(stderr, "zps-ctl: out of memory\n");
        return 1;
    }
    for (uint32_t s = 0; s < S; s++) {
        Zps__Envelope env;
        Zps__Hello h;
        ctl_conn_hello_env(c, &env, &h);
        ids[s] = env.request_id;
        if (ctl_conn_send(c, s, &env)) {
            state[s] = -1;
            snprintf(why[s], sizeof why[s], "cannot send: %s", zmq_strerror(errno));
        }
    }
    /* all at once: a dead server costs one --timeout, not one each */
    int64_t deadline = zps_now_ms() + (int64_t)(o->timeout * 1000);
    zmq_pollitem_t *it = calloc(S, sizeof *it);
    for (;;) {
        uint32_t waiting = 0;
        for (uint32_t s = 0; s < S; s++) {
            it[s] = (zmq_pollitem_t){ctl_conn_socket(c, s), 0,
                                     state[s] == 0 ? ZMQ_POLLIN : 0, 0};
            waiting += state[s] == 0;
        }
        int64_t left = deadline - zps_now_ms();
        if (!waiting || left <= 0)
            break;
        if (zmq_poll(it, (int)S, (long)left) <= 0)
            continue;
        for (uint32_t s = 0; s < S; s++) {
            if (!(it[s].revents & ZMQ_POLLIN))
                continue;
            zps_msg_t m;
            int rc = zps_msg_recv(ctl_conn_socket(c, s), 0, &m, ZMQ_DONTWAIT);
            if (rc == 0 && m.env->request_id == ids[s]) {
                if (m.env->body_case == ZPS__ENVELOPE__BODY_HELLO_REPLY) {
                    const Zps__HelloReply *h = m.env->hello_reply;
                    if (h->server_rank != s || h->num_servers != S) {
                        state[s] = -1;
                        snprintf(why[s], sizeof why[s], "answers as rank %u of %u, but is listed "
                                 "as server %u of %u", h->server_rank, h->num_servers, s, S);
                    } else {
                        state[s] = 1;
                        snprintf(why[s], sizeof why[s], "ok (zps-server %.40s, rank %u of %u)",
                                 h->server_version, h->server_rank, h->num_servers);
                    }
                } else {
                    state[s] = -1;
                    snprintf(why[s], sizeof why[s], "answered hello with %s%s%.200s",
                             zps_msg_type_name(m.env->type),
                             m.env->body_case == ZPS__ENVELOPE__BODY_ERROR ? ": " : "",
                             m.env->body_case == ZPS__ENVELOPE__BODY_ERROR ? m.env->error->text : "");
                }
            } else if (rc && rc != ZPS_EIO) {
                state[s] = -1;
                snprintf(why[s], sizeof why[s], "unreadable reply: %s", m.reason);
            }
            zps_msg_close(&m);
        }
    }
    int bad = 0;
    for (uint32_t s = 0; s < S; s++) {
        if (state[s] == 0)
            snprintf(why[s], sizeof why[s], "NOT ANSWERING (no reply within %g s)", o->timeout);
        if (state[s] != 1) {
            bad = 1;
            if (state[s] == -1) {
                char t[300];
                snprintf(t, sizeof t, "%s", why[s]);
                snprintf(why[s], sizeof why[s], "NOT HEALTHY: %.280s", t);
            }
        }
        printf("server %u at %s: %s\n", s, o->servers[s], why[s]);
    }
    free(it);
    free(ids);
    free(state);
    free(why);
    ctl_conn_destroy(&c);
    return bad;
}

/* ---- the admin token ----------------------------------------------------------------- */

static int s_read_token(const char *path, char *tok, size_t len)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "zps-ctl: cannot read the admin token file %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (st.st_mode & 077) {
        fprintf(stderr, "zps-ctl: the admin token file %s is readable by others (mode %03o): "
                "chmod 600 it\n", path, (unsigned)(st.st_mode & 0777));
        return -1;
    }
    if (st.st_uid != getuid()) {
        fprintf(stderr, "zps-ctl: the admin token file %s is not owned by this user\n", path);
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (!f || !fgets(tok, (int)len, f)) {
        fprintf(stderr, "zps-ctl: cannot read the admin token file %s\n", path);
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    size_t n = strlen(tok);
    while (n && isspace((unsigned char)tok[n - 1]))
        tok[--n] = 0;
    if (!n) {
        fprintf(stderr, "zps-ctl: the admin token file %s is empty\n", path);
        return -1;
    }
    return 0;
}

int ctl_shutdown(const ctl_opts_t *o)
{
    char token[512] = "";
    if (o->token_file && s_read_token(o->token_file, token, sizeof token))
        return 1;
    if (!o->token_file)
        fprintf(stderr, "zps-ctl: no --admin-token-file: the servers will refuse (they accept "
                "SHUTDOWN only with the job's admin token; or use SIGTERM)\n");
    ctl_conn_t *c = ctl_conn_new(o);
    if (!c)
        return 1;
    int failed = 0;
    for (uint32_t s = 0; s < o->nservers; s++) {
        if (o->server >= 0 && (uint32_t)o->server != s)
            continue;
        Zps__Envelope env;
        Zps__Shutdown sd = ZPS__SHUTDOWN__INIT;
        sd.reason = (char *)(o->reason ? o->reason : "zps-ctl shutdown");
        sd.admin_token = token;
        ctl_conn_env(c, &env, ZPS__MSG_TYPE__SHUTDOWN);
        env.body_case = ZPS__ENVELOPE__BODY_SHUTDOWN;
        env.shutdown = &sd;
        zps_msg_t m;
        char err[600];
        int rc = ctl_conn_call(c, s, &env, &m, err, sizeof err);
        if (!rc && m.env->type != ZPS__MSG_TYPE__SHUTDOWN_ACK) {
            snprintf(err, sizeof err, "answered with %s", zps_msg_type_name(m.env->type));
            rc = ZPS_EPROTO;
        }
        if (!rc)
            zps_msg_close(&m);
        if (rc) {
            failed = 1;
            printf("server %u at %s: shutdown refused or failed: %s\n", s, o->servers[s], err);
        } else {
            printf("server %u at %s: shutting down\n", s, o->servers[s]);
        }
    }
    memset(token, 0, sizeof token);
    ctl_conn_destroy(&c);
    return failed;
}
