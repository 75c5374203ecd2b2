/* wk_client: see wk_client.h for the contract.
 *
 * DESIGN
 * One module in six files sharing the private header wk_cli.h (functions
 * shared between them carry the prefix wkc_; see the header for which file
 * does what).  This file is the API around them: the handle's life cycle
 * (one DEALER socket per server, the hello, which checks that server i is
 * rank i of nservers and that all servers agree on the job and their
 * tables), the blocking and asynchronous pull/push entry points (the work
 * is wkc_start's, in wk_cli_send.c), the control messages (hello, stats,
 * the finishing CLOCK, shutdown: one envelope per server, then a wait),
 * and the counters.
 *
 * The handle is one struct (wk_cli.h) that only this module's files see.
 * Per-server state is in arrays indexed by server rank; a ticket is a slot
 * of the ring (wk_cli_ticket.c); pushes held until durable are in
 * c->retry (wk_retry); --local replaces the sockets by one in-process
 * shard (wk_cli_local.c). */
#include "wk_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zps_err.h"
#include "zps_hash.h"
#include "zps_time.h"

/* ---- errors, notices, counters, settings ---------------------------------- */

void wk_client_conf_defaults(wk_client_conf_t *c)
{
    memset(c, 0, sizeof *c);
    c->role = ZPS__ROLE__ROLE_WORKER;
    c->connect_timeout_ms = 10000;
    c->timeout_ms = 60000;
    c->max_inflight = 256;
    c->max_retained_bytes = 256ull << 20;
}

void wkc_seterr(wk_client_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

void wkc_notice(wk_client_t *c, const char *fmt, ...)
{
    if (!c->conf.on_notice)
        return;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    c->conf.on_notice(c->conf.on_wait_ctx, text);
}

const char *wk_client_error(const wk_client_t *c) { return c->err; }

void wk_client_retry_stats(const wk_client_t *c, wk_client_retry_stats_t *out)
{
    *out = c->rs;
    out->retained_bytes = c->retry ? wk_retry_bytes(c->retry) : 0;
    out->retained_peak = c->retry ? wk_retry_peak_bytes(c->retry) : 0;
    out->retained_pushes = 0;
    for (uint32_t s = 0; c->retry && s < c->conf.nservers; s++)
        out->retained_pushes += wk_retry_held(c->retry, s);
}
uint64_t wk_client_acked(const wk_client_t *c, uint32_t server)
{
    return c->acked && server < c->conf.nservers ? c->acked[server] : 0;
}
int wk_client_progress(const wk_client_t *c, uint32_t *epoch, uint64_t *rows)
{
    int have = 0;
    *epoch = 0;
    *rows = 0;
    for (uint32_t s = 0; s < c->conf.nservers; s++) {
        const wk_hello_t *h = &c->hello[s];
        if (!h->has_progress)
            continue;
        if (!have || h->progress_epoch > *epoch ||
            (h->progress_epoch == *epoch && h->progress_rows > *rows)) {
            *epoch = h->progress_epoch;
            *rows = h->progress_rows;
        }
        have = 1;
    }
    return have;
}

const char *wk_client_job(const wk_client_t *c)
{
    if (c->lshard)
        return c->ljob;
    uint32_t ref = 0; /* replicated: the first server in the table (as s_check_hellos) */
    while (c->dead && ref < c->conf.nservers - 1 && c->dead[ref])
        ref++;
    return c->hello[ref].job;
}
void wk_client_set_clock(wk_client_t *c, uint64_t clock) { c->clock = clock; }

void wk_client_set_lr_scale(wk_client_t *c, float scale)
{
    c->lr_scale = scale;
}
uint32_t wk_client_inflight(const wk_client_t *c) { return c->inflight; }
uint32_t wk_client_ntables(const wk_client_t *c) { return c->ntables; }

const wk_table_info_t *wk_client_table(const wk_client_t *c, uint32_t table)
{
    return table < c->ntables ? &c->tables[table] : NULL;
}

void wk_client_push_bytes(const wk_client_t *c, uint64_t *raw, uint64_t *wire,
                          uint64_t *key_cache_resends)
{
    *raw = c->push_raw;
    *wire = c->push_wire;
    *key_cache_resends = c->key_cache_resends;
}

void wk_client_traffic(const wk_client_t *c, uint64_t *sent, uint64_t *received)
{
    *sent = c->sent;
    *received = c->received;
}

/* ---- pull and push (wk_cli_send.c does the work) ------------------------ */

int wk_client_pull_async(wk_client_t *c, uint32_t table, const uint64_t *keys, size_t n,
                         float *out, uint64_t *ticket)
{
    return wkc_start(c, RQ_PULL, table, keys, NULL, n, out, NULL, ticket);
}

int wk_client_push_async(wk_client_t *c, uint32_t table, const uint64_t *keys,
                         const float *grads, size_t n, uint64_t *ticket)
{
    return wkc_start(c, RQ_PUSH, table, keys, grads, n, NULL, NULL, ticket);
}

int wk_client_push_ex(wk_client_t *c, uint32_t table, const uint64_t *keys, const float *grads,
                      size_t n, const wk_push_meta_t *meta, uint64_t *ticket)
{
    return wkc_start(c, RQ_PUSH, table, keys, grads, n, NULL, meta, ticket);
}

int wk_client_pull(wk_client_t *c, uint32_t table, const uint64_t *keys, size_t n, float *out)
{
    uint64_t t;
    int rc = wk_client_pull_async(c, table, keys, n, out, &t);
    return rc ? rc : wk_client_wait(c, t, -1);
}

int wk_client_push(wk_client_t *c, uint32_t table, const uint64_t *keys, const float *grads,
                   size_t n)
{
    uint64_t t;
    int rc = wk_client_push_async(c, table, keys, grads, n, &t);
    return rc ? rc : wk_client_wait(c, t, -1);
}

/* ---- control messages ----------------------------------------------------- */

/* One control message (hello / stats / shutdown / clock done) to server s
 * (or all if s == UINT32_MAX), then wait. */
static int s_control(wk_client_t *c, int kind, uint32_t server, wk_server_stats_t *stats,
                     const char *reason, int timeout_ms)
{
    wk_req_t *r = wkc_req_new(c, kind);
    if (!r)
        return ZPS_EBUSY;
    r->stats = stats;
    int rc = 0;
    for (uint32_t s = 0; s < c->conf.nservers && !rc; s++) {
        if (server != UINT32_MAX && s != server)
            continue;
        if (c->dead && c->dead[s]) {
            if (server != UINT32_MAX) {
                wkc_req_err(r, ZPS_ENOLEASE, "server %u at %s was removed from the job", s,
                            c->servers[s]);
                rc = ZPS_ENOLEASE;
            }
            continue;
        }
        Zps__Envelope env;
        Zps__Hello hello = ZPS__HELLO__INIT;
        Zps__Stats st = ZPS__STATS__INIT;
        Zps__Shutdown sd = ZPS__SHUTDOWN__INIT;
        Zps__Clock ck = ZPS__CLOCK__INIT;
        if (kind == RQ_CLOCK) {
            zps_msg_env(&env, ZPS__MSG_TYPE__CLOCK, c->conf.role, c->conf.rank, r->id);
            ck.clock = c->clock;
            ck.done = 1;
            env.body_case = ZPS__ENVELOPE__BODY_CLOCK;
            env.clock = &ck;
        } else if (kind == RQ_HELLO) {
            zps_msg_env(&env, ZPS__MSG_TYPE__HELLO, c->conf.role, c->conf.rank, r->id);
            hello.client_version = ZPS_VERSION;
            hello.client_nonce = c->nonce;
            env.body_case = ZPS__ENVELOPE__BODY_HELLO;
            env.hello = &hello;
        } else if (kind == RQ_STATS) {
            zps_msg_env(&env, ZPS__MSG_TYPE__STATS, c->conf.role, c->conf.rank, r->id);
            env.body_case = ZPS__ENVELOPE__BODY_STATS;
            env.stats = &st;
        } else {
            zps_msg_env(&env, ZPS__MSG_TYPE__SHUTDOWN, c->conf.role, c->conf.rank, r->id);
            sd.reason = (char *)(reason ? reason : "");
            env.body_case = ZPS__ENVELOPE__BODY_SHUTDOWN;
            env.shutdown = &sd;
        }
        rc = wkc_send_ctl(c, r, s, &env);
    }
    if (rc) {
        snprintf(c->err, sizeof c->err, "%s", r->err);
        wkc_req_release(c, r);
        return rc;
    }
    return wk_client_wait(c, r->id, timeout_ms);
}

int wk_client_stats(wk_client_t *c, uint32_t server, wk_server_stats_t *out)
{
    if (c->lshard) {
        wkc_local_stats(c, out);
        return 0;
    }
    if (server >= c->conf.nservers) {
        wkc_seterr(c, "no server %u", server);
        return ZPS_EINVAL;
    }
    memset(out, 0, sizeof *out);
    return s_control(c, RQ_STATS, server, out, NULL, -1);
}

int wk_client_done(wk_client_t *c)
{
    if (c->lshard)
        return 0;
    return s_control(c, RQ_CLOCK, UINT32_MAX, NULL, NULL, -1);
}

int wk_client_shutdown(wk_client_t *c, uint32_t server, const char *reason)
{
    if (server >= c->conf.nservers) {
        wkc_seterr(c, "no server %u", server);
        return ZPS_EINVAL;
    }
    return s_control(c, RQ_SHUTDOWN, server, NULL, reason, -1);
}

/* ---- life cycle ----------------------------------------------------------- */

/* The hello replies agree with the server list and with each other. */
static int s_check_hello(wk_client_t *c, char *err, size_t errlen)
{
    uint32_t S = c->conf.nservers, ref = 0;
    while (c->dead && ref < S - 1 && c->dead[ref])
        ref++; /* replicated: servers removed from the table were not asked */
    for (uint32_t s = 0; s < S; s++) {
        const wk_hello_t *h = &c->hello[s];
        if (c->dead && c->dead[s])
            continue;
        if (h->rank != s || (!c->coord && h->nservers != S)) {
            snprintf(err, errlen,
                     "server at %s says it is rank %u of %u servers, but it is listed as server "
                     "%u of %u",
                     c->servers[s], h->rank, h->nservers, s, S);
            return ZPS_EMISMATCH;
        }
        if (h->ntables == 0) {
            snprintf(err, errlen, "server %u at %s has no tables", s, c->servers[s]);
            return ZPS_EMISMATCH;
        }
        if (s == ref)
            continue;
        const wk_hello_t *h0 = &c->hello[ref];
        if (strcmp(h->job, h0->job) != 0) {
            snprintf(err, errlen, "servers disagree on the job: server %u at %s has '%s', server %u at %s has '%s'",
                     ref, c->servers[ref], h0->job, s, c->servers[s], h->job);
            return ZPS_EMISMATCH;
        }
        for (uint32_t t = 0; t < h->ntables || t < h0->ntables; t++) {
            if (t >= h->ntables || t >= h0->ntables ||
                strcmp(h->tables[t].options, h0->tables[t].options) != 0) {
                snprintf(err, errlen,
                         "servers disagree on table %u: server %u at %s has '%s', server %u at %s "
                         "has '%s'",
                         t, ref, c->servers[ref], t < h0->ntables ? h0->tables[t].options : "(none)", s,
                         c->servers[s], t < h->ntables ? h->tables[t].options : "(none)");
                return ZPS_EMISMATCH;
            }
        }
    }
    c->ntables = c->hello[ref].ntables;
    memcpy(c->tables, c->hello[ref].tables, sizeof c->tables);
    return 0;
}

wk_client_t *wk_client_new(const wk_client_conf_t *conf, char *err, size_t errlen)
{
    if (conf->local)
        return wkc_local_new(conf, err, errlen);
    int replicated = conf->coordinator && conf->coordinator[0];
    if ((!replicated && (!conf->servers || conf->nservers == 0)) ||
        conf->nservers > WK_MAX_SERVERS) {
        snprintf(err, errlen, "need 1..%d servers", WK_MAX_SERVERS);
        return NULL;
    }
    wk_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->lr_scale = 1.0f;
    c->conf = *conf;
    c->ctx = zmq_ctx_new();
    if (!c->ctx) {
        snprintf(err, errlen, "cannot create a ZeroMQ context: %s", zmq_strerror(errno));
        free(c);
        return NULL;
    }
    /* replicated: the table first; its rank slots size the per-server
     * arrays (servers added later take the slots past --servers) */
    if (conf->coordinator && conf->coordinator[0]) {
        if (wkc_repl_connect(c, err, errlen) != 0)
            goto fail;
        if (c->ranges->nservers < conf->nservers || c->ranges->nservers > WK_MAX_SERVERS) {
            snprintf(err, errlen, "the coordinator %s has %u rank slots, but %u servers were "
                     "given (--servers)%s", conf->coordinator, c->ranges->nservers,
                     conf->nservers, c->ranges->nservers > WK_MAX_SERVERS ? " (or over 1024)" : "");
            goto fail;
        }
        c->conf.nservers = c->ranges->nservers;
    }
    uint32_t S = c->conf.nservers;
    uint32_t cap = 1;
    while (cap < (conf->max_inflight ? conf->max_inflight : 256))
        cap <<= 1;
    c->next_id = 1;
    c->servers = calloc(S, sizeof *c->servers);
    c->socks = calloc(S, sizeof *c->socks);
    c->items = calloc((size_t)S + 1, sizeof *c->items); /* + the coordinator's */
    c->nitems = S;
    c->hello = calloc(S, sizeof *c->hello);
    c->last_sent = calloc(S, sizeof *c->last_sent);
    c->sigs = wk_keysig_new(S, WK_SIG_RING);
    c->rng = conf->seed * 0x9e3779b97f4a7c15ULL + conf->rank + 1;
    c->nonce = zps_mix64((uint64_t)zps_now_ns() ^ ((uint64_t)getpid() << 32), conf->rank) | 1;
    c->acked = calloc(S, sizeof *c->acked);
    c->seq_next = calloc(S, sizeof *c->seq_next);
    c->snonce = calloc(S, sizeof *c->snonce);
    c->old_nonces = calloc((size_t)S * WK_NONCES, sizeof *c->old_nonces);
    c->last_recv_ms = calloc(S, sizeof *c->last_recv_ms);
    c->retry = wk_retry_new(S, wkc_held_free, NULL);
    c->retain = conf->retry_ms > 0 && conf->max_retained_bytes > 0;
    c->retry_at_ms = calloc(S, sizeof *c->retry_at_ms);
    c->warned_ms = calloc(S, sizeof *c->warned_ms);
    for (uint32_t s = 0; c->retry_at_ms && s < S; s++)
        c->retry_at_ms[s] = conf->retry_ms;
    c->connected = calloc(S, 1);
    if (!c->servers || !c->socks || !c->items || !c->hello || !c->last_sent || !c->connected ||
        !c->sigs || !c->acked || !c->retry_at_ms || !c->warned_ms ||
        !c->seq_next || !c->snonce || !c->old_nonces || !c->last_recv_ms || !c->retry) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (wkc_ring_new(c, cap, S) != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (uint32_t s = 0; s < S; s++) {
        /* the given list, then (replicated) what the servers announced */
        const char *ep = s < conf->nservers ? conf->servers[s]
                         : s < c->neps && c->eps[s] ? c->eps[s] : "";
        c->servers[s] = strdup(ep);
        c->socks[s] = zmq_socket(c->ctx, ZMQ_DEALER);
        if (!c->servers[s] || !c->socks[s]) {
            snprintf(err, errlen, "cannot create socket for server %u: %s", s,
                     zmq_strerror(errno));
            goto fail;
        }
        int linger = 0, hwm = 100000, sndtimeo = conf->timeout_ms > 0 ? conf->timeout_ms : 60000;
        zmq_setsockopt(c->socks[s], ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(c->socks[s], ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(c->socks[s], ZMQ_RCVHWM, &hwm, sizeof hwm);
        zmq_setsockopt(c->socks[s], ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
        /* a TCP connect that has not completed in 2 s is dropped and tried
         * again, resolving a host name anew: a server that came back under
         * its name at another address (a Kubernetes pod) is found within
         * seconds, not after the kernel's ~2 minute connect timeout to the
         * address it had (scripts/check-k8s --container, a server pod killed) */
        int connect_timeout = 2000;
        zmq_setsockopt(c->socks[s], ZMQ_CONNECT_TIMEOUT, &connect_timeout, sizeof connect_timeout);
        if (conf->server_public &&
            (zmq_setsockopt(c->socks[s], ZMQ_CURVE_SERVERKEY, conf->server_public, 40) ||
             zmq_setsockopt(c->socks[s], ZMQ_CURVE_PUBLICKEY, conf->curve_public, 40) ||
             zmq_setsockopt(c->socks[s], ZMQ_CURVE_SECRETKEY, conf->curve_secret, 40))) {
            snprintf(err, errlen, "cannot set CURVE keys: %s", zmq_strerror(errno));
            goto fail;
        }
        if (!c->servers[s][0] && s >= conf->nservers) {
            /* an empty slot: connected when a table names it (wk_cli_repl.c) */
        } else if (zmq_connect(c->socks[s], c->servers[s]) != 0) {
            snprintf(err, errlen, "server %u: cannot connect to '%s': %s", s, c->servers[s],
                     zmq_strerror(errno));
            goto fail;
        } else {
            c->connected[s] = 1;
        }
        c->items[s].socket = c->socks[s];
        c->items[s].events = ZMQ_POLLIN;
    }
    /* replicated: servers not in the table are not asked */
    if (conf->coordinator && conf->coordinator[0] && wkc_repl_start(c, err, errlen) != 0)
        goto fail;
    int rc = s_control(c, RQ_HELLO, UINT32_MAX, NULL, NULL,
                       conf->connect_timeout_ms > 0 ? conf->connect_timeout_ms : 10000);
    if (rc) {
        if (rc == ZPS_ETIMEDOUT)
            snprintf(err, errlen, "cannot reach the servers: %s (is the server running and the "
                     "address right?)", c->err);
        else
            snprintf(err, errlen, "%s", c->err);
        goto fail;
    }
    if (s_check_hello(c, err, errlen))
        goto fail;
    c->err[0] = 0;
    return c;
fail:
    wk_client_destroy(&c);
    return NULL;
}

void wk_client_destroy(wk_client_t **cp)
{
    if (!cp || !*cp)
        return;
    wk_client_t *c = *cp;
    wkc_ring_free(c);
    wk_retry_destroy(&c->retry);
    wkc_repl_free(c);
    for (uint32_t s = 0; c->socks && s < c->conf.nservers; s++)
        if (c->socks[s])
            zmq_close(c->socks[s]);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    for (uint32_t s = 0; c->servers && s < c->conf.nservers; s++)
        free(c->servers[s]);
    free(c->servers);
    free(c->socks);
    free(c->items);
    free(c->hello);
    free(c->last_sent);
    wk_keysig_destroy(&c->sigs);
    free(c->acked);
    free(c->seq_next);
    free(c->snonce);
    free(c->old_nonces);
    free(c->last_recv_ms);
    free(c->connected);
    free(c->retry_at_ms);
    free(c->warned_ms);
    free(c->vscratch);
    free(c->sscratch);
    free(c->dscratch);
    zps_shard_destroy(&c->lshard);
    free(c->owner);
    free(c->kscratch);
    free(c);
    *cp = NULL;
}
