/* ctl_conn: the control connection (see ctl_conn.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "ctl_conn.h"
#include "zps_err.h"
#include "zps_hash.h"
#include "zps_time.h"

struct ctl_conn {
    const ctl_opts_t *o;
    void *ctx;
    void **socks;
    uint64_t next_id, nonce;
};

static int s_open(ctl_conn_t *c, const ctl_opts_t *o)
{
    memset(c, 0, sizeof *c);
    c->o = o;
    c->next_id = 1;
    c->nonce = zps_mix64((uint64_t)zps_now_ns() ^ ((uint64_t)getpid() << 32), 0xc71) | 1;
    c->ctx = zmq_ctx_new();
    c->socks = calloc(o->nservers, sizeof *c->socks);
    if (!c->ctx || !c->socks)
        return ZPS_ENOMEM;
    for (uint32_t s = 0; s < o->nservers; s++) {
        void *k = zmq_socket(c->ctx, ZMQ_DEALER);
        if (!k)
            return ZPS_EIO;
        c->socks[s] = k;
        int linger = 0, sndtimeo = 1000;
        zmq_setsockopt(k, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(k, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
        if (o->curve && (zmq_setsockopt(k, ZMQ_CURVE_SERVERKEY, o->theirs.public_z85, 40) ||
                         zmq_setsockopt(k, ZMQ_CURVE_PUBLICKEY, o->mine.public_z85, 40) ||
                         zmq_setsockopt(k, ZMQ_CURVE_SECRETKEY, o->mine.secret_z85, 40))) {
            fprintf(stderr, "zps-ctl: cannot set CURVE keys: %s\n", zmq_strerror(errno));
            return ZPS_EINVAL;
        }
        if (zmq_connect(k, o->servers[s]) != 0) {
            fprintf(stderr, "zps-ctl: server %u: cannot connect to '%s': %s\n", s, o->servers[s],
                    zmq_strerror(errno));
            return ZPS_EINVAL;
        }
    }
    return 0;
}

ctl_conn_t *ctl_conn_new(const ctl_opts_t *o)
{
    ctl_conn_t *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    if (s_open(c, o) != 0)
        ctl_conn_destroy(&c);
    return c;
}

void ctl_conn_destroy(ctl_conn_t **cp)
{
    ctl_conn_t *c = *cp;
    if (!c)
        return;
    *cp = NULL;
    for (uint32_t s = 0; c->socks && s < c->o->nservers; s++)
        if (c->socks[s])
            zmq_close(c->socks[s]);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    free(c->socks);
    free(c);
}

void *ctl_conn_socket(ctl_conn_t *c, uint32_t s)
{
    return c->socks[s];
}

void ctl_conn_env(ctl_conn_t *c, Zps__Envelope *env, Zps__MsgType type)
{
    zps_msg_env(env, type, ZPS__ROLE__ROLE_TOOL, c->o->rank, c->next_id++);
}

int ctl_conn_send(ctl_conn_t *c, uint32_t s, Zps__Envelope *env)
{
    if (zps_msg_send(c->socks[s], NULL, env, NULL, 0, NULL, 0, NULL) != 0)
        return ZPS_EIO;
    return 0;
}

/* Wait for the reply to request id from server s (others are dropped). */
static int s_wait(ctl_conn_t *c, uint32_t s, uint64_t id, zps_msg_t *reply, char *err, size_t errlen)
{
    int64_t deadline = zps_now_ms() + (int64_t)(c->o->timeout * 1000);
    for (;;) {
        int64_t left = deadline - zps_now_ms();
        if (left <= 0) {
            snprintf(err, errlen, "no answer within %g s", c->o->timeout);
            return ZPS_ETIMEDOUT;
        }
        zmq_pollitem_t it = {c->socks[s], 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&it, 1, (long)left);
        if (n < 0 && errno != EINTR) {
            snprintf(err, errlen, "poll failed: %s", zmq_strerror(errno));
            return ZPS_EIO;
        }
        if (n <= 0)
            continue;
        int rc = zps_msg_recv(c->socks[s], 0, reply, ZMQ_DONTWAIT);
        if (rc == ZPS_EIO) {
            zps_msg_close(reply);
            continue;
        }
        if (rc) {
            snprintf(err, errlen, "unreadable reply: %s", reply->reason);
            zps_msg_close(reply);
            return rc;
        }
        if (reply->env->request_id != id) {
            zps_msg_close(reply);
            continue;
        }
        if (reply->env->body_case == ZPS__ENVELOPE__BODY_ERROR) {
            snprintf(err, errlen, "%s (%s)", reply->env->error->text,
                     zps_strerror(reply->env->error->code));
            int code = reply->env->error->code;
            zps_msg_close(reply);
            return code < 0 ? code : ZPS_ESERVER;
        }
        return 0;
    }
}

void ctl_conn_hello_env(ctl_conn_t *c, Zps__Envelope *env, Zps__Hello *h)
{
    ctl_conn_env(c, env, ZPS__MSG_TYPE__HELLO);
    zps__hello__init(h);
    h->client_version = "zps-ctl " ZPS_VERSION;
    h->client_nonce = c->nonce;
    env->body_case = ZPS__ENVELOPE__BODY_HELLO;
    env->hello = h;
}

/* HELLO then one request to server s; reply filled on success. */
int ctl_conn_call(ctl_conn_t *c, uint32_t s, Zps__Envelope *req, zps_msg_t *reply, char *err,
                  size_t errlen)
{
    Zps__Envelope env;
    Zps__Hello h;
    ctl_conn_hello_env(c, &env, &h);
    if (ctl_conn_send(c, s, &env)) {
        snprintf(err, errlen, "cannot send: %s", zmq_strerror(errno));
        return ZPS_EIO;
    }
    int rc = s_wait(c, s, env.request_id, reply, err, errlen);
    if (rc)
        return rc;
    zps_msg_close(reply);
    req->request_id = c->next_id++;
    if (ctl_conn_send(c, s, req)) {
        snprintf(err, errlen, "cannot send: %s", zmq_strerror(errno));
        return ZPS_EIO;
    }
    return s_wait(c, s, req->request_id, reply, err, errlen);
}
