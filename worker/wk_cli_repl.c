/* wk_cli_repl: the client's side of a replicated job (see wk_cli.h).
 *
 * DESIGN
 * Replication is driven by the client: a push is split by the range table
 * (wk_split_by_table) into one part per server holding any replica of its
 * keys, each part held and retried per server as in any job, and the push
 * completes when every part is acknowledged; a pull goes to each range's
 * primary.  So every live replica of a range receives every push of it
 * straight from the client, and applies it exactly once through its own
 * per-(client, server) sequence window (ps_dedup), like a server of a job
 * without replication.
 *
 * The table comes from the coordinator (zps-coord): asked for at start,
 * then every 200 ms from wkc_pump (TABLE_GET with the version held; the
 * answer carries the table only when it changed).  A table that no longer
 * names server s means s failed (or was cut off; it has stopped
 * acknowledging by then, its lease having run out).  Failing over:
 *   - s's held pushes are dropped, and every push still waiting for s
 *     stops waiting for it: each of their keys went to every other replica
 *     of its range too, and those parts are held and retried until
 *     acknowledged, so nothing s acknowledged or would have is lost as
 *     long as one replica of each range lives;
 *   - every pull still waiting for s is split again by the new table and
 *     sent again under the same ticket with a new generation in the top
 *     bits of its request id (WK_GEN_SHIFT), so a late answer to the old
 *     split is told apart and dropped; so is every pull waiting for a
 *     server that no longer holds some range it held (the range moved:
 *     zps-ctl add-server / remove-server);
 *   - s gets no further requests, heartbeats or control messages.
 * A table with a range that has no replica left fails the client with
 * ZPS_ELOST (sticky): those weights exist nowhere now.
 *
 * Relays.  "Every other replica got its own part" does not cover the ranges
 * a server joined after the push was split: it gets those keys from its
 * donor (snapshot or forward), and a donor that dies before the joiner
 * acknowledged its forward leaves the push nowhere, unacknowledged.  So a
 * part the removed server never acknowledged is not dropped but relayed:
 * sent whole, as a new push (the target's own seq, Push.relay_*), to every
 * current replica of its keys' ranges.  The server applies only the keys
 * of ranges it joined from the removed server after the part's table and
 * only if its copy lacks that push (the donor's windows at the fork and the
 * forwards since record which pushes it has: ps_srv_join.c); the others
 * acknowledge it applying nothing.  A push's ticket, if it still waits,
 * completes once its relays are acknowledged too (wk_client_wait; a
 * relay's request id is the ticket's with WK_RELAY_ID). */
#include "wk_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zps_codec.h"
#include "zps_err.h"
#include "zps_time.h"

#define S_POLL_MS 200

static int s_ask(wk_client_t *c)
{
    Zps__Envelope env;
    Zps__TableGet tg = ZPS__TABLE_GET__INIT;
    uint64_t id = ++c->coord_seq;
    zps_msg_env(&env, ZPS__MSG_TYPE__TABLE_GET, c->conf.role, c->conf.rank, id);
    tg.have_version = c->ranges->version;
    env.body_case = ZPS__ENVELOPE__BODY_TABLE_GET;
    env.table_get = &tg;
    size_t wire = 0;
    int rc = zps_msg_send(c->coord, NULL, &env, NULL, 0, NULL, 0, &wire);
    c->coord_asked = id;
    c->coord_asked_ms = zps_now_ms();
    return rc;
}

static int s_listed(const uint32_t *list, size_t n, uint32_t s)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == s)
            return 1;
    return 0;
}

/* Connect slot s to the endpoint its server announced, if it has none yet
 * (a server added to the job) or another one (a new process in that slot). */
static void s_connect_slot(wk_client_t *c, uint32_t s)
{
    const char *ep = s < c->neps && c->eps[s] ? c->eps[s] : "";
    if (s < c->ngiven || !ep[0] || (c->connected[s] && !strcmp(ep, c->servers[s])))
        return;
    char *copy = strdup(ep);
    if (!copy)
        return;
    if (c->connected[s])
        zmq_disconnect(c->socks[s], c->servers[s]);
    c->connected[s] = 0;
    free(c->servers[s]);
    c->servers[s] = copy;
    if (zmq_connect(c->socks[s], copy) == 0)
        c->connected[s] = 1;
    else
        wkc_notice(c, "server %u: cannot connect to '%s': %s", s, copy, zmq_strerror(errno));
}

/* A part to relay: the collected copy, and the server it was for. */
typedef struct {
    wk_held_t *h;
    uint32_t from;
} s_relay_t;

/* A copy of held push h (its frames shared, not copied); NULL: no memory. */
static wk_held_t *s_held_copy(const wk_held_t *h)
{
    wk_held_t *r = malloc(sizeof *r);
    if (!r)
        return NULL;
    *r = *h;
    zmq_msg_init(&r->keys);
    zmq_msg_copy(&r->keys, (zmq_msg_t *)&h->keys);
    zmq_msg_init(&r->vals);
    zmq_msg_copy(&r->vals, (zmq_msg_t *)&h->vals);
    return r;
}

/* The ticket of a relay item's push, if still in flight. */
static wk_req_t *s_relay_ticket(wk_client_t *c, const wk_held_t *h)
{
    uint64_t id = h->req_id & ~WK_RELAY_ID;
    wk_req_t *r = id ? wkc_req_find(c, id) : NULL;
    return r && r->kind == RQ_PUSH ? r : NULL;
}

void wkc_relay_done(wk_client_t *c, const wk_retry_item_t *it)
{
    const wk_held_t *h = it->payload;
    wk_req_t *r = h->relay_rank ? s_relay_ticket(c, h) : NULL;
    if (r && r->relays)
        r->relays--;
}

/* Keep what server s (failing: removed, or replaced by a new process) was
 * sent and never acknowledged, as relays (the frames are shared, not
 * copied).  0 or ZPS_ENOMEM. */
static int s_collect(wk_client_t *c, uint32_t s, s_relay_t **list, size_t *n)
{
    for (wk_retry_item_t *it = wk_retry_first_unacked(c->retry, s); it;
         it = wk_retry_next_unacked(c->retry, s, it)) {
        const wk_held_t *h = it->payload;
        s_relay_t *l = realloc(*list, (*n + 1) * sizeof *l);
        if (l)
            *list = l;
        wk_held_t *r = l ? s_held_copy(h) : NULL;
        if (!r)
            return ZPS_ENOMEM;
        /* the push's ticket, if it still waits, waits for the relays */
        r->req_id = (h->req_id & ~WK_RELAY_ID) | WK_RELAY_ID;
        if (h->relay_rank) {
            /* a relay of a relay keeps the first server's identity: the
             * joiners recorded what they copied from that one; this one is
             * replaced by the relays made of it */
            wkc_relay_done(c, it);
        } else {
            r->relay_rank = s + 1;
            r->relay_inc = c->ranges->inc[s];
            r->relay_seq = it->seq;
            r->relay_version = h->table_version;
        }
        (*list)[*n].h = r;
        (*list)[(*n)++].from = s;
    }
    return 0;
}

/* Send each collected part (c->ranges is the new table) to every current
 * replica of its keys' ranges but the server it was for; frees the list. */
static void s_relay(wk_client_t *c, s_relay_t *list, size_t n)
{
    uint32_t S = c->conf.nservers;
    uint64_t *keys = NULL;
    size_t cap = 0, sent = 0;
    for (size_t i = 0; i < n; i++) {
        wk_held_t *h = list[i].h;
        uint8_t to[WK_MAX_SERVERS];
        memset(to, 0, sizeof to);
        if (h->nkeys > cap) {
            uint64_t *k = realloc(keys, h->nkeys * sizeof *k);
            if (k) {
                keys = k;
                cap = h->nkeys;
            }
        }
        if (h->nkeys > cap || zps_keys_decode(zmq_msg_data(&h->keys), zmq_msg_size(&h->keys),
                                              h->nkeys, keys, NULL) != 0) {
            wkc_notice(c, "cannot relay push %llu of removed server %u (its keys do not decode, "
                       "or no memory)", (unsigned long long)h->relay_seq, h->relay_rank - 1);
            wkc_held_free(NULL, h);
            continue;
        }
        for (size_t k = 0; k < h->nkeys; k++) {
            uint32_t r = zps_range_of(keys[k]);
            for (uint32_t j = 0; j < c->ranges->nrep[r]; j++)
                if (c->ranges->rep[r][j] < S)
                    to[c->ranges->rep[r][j]] = 1;
        }
        to[list[i].from] = 0;
        h->table_version = c->ranges->version;
        wk_req_t *ticket = s_relay_ticket(c, h);
        for (uint32_t z = 0; z < S; z++) {
            if (!to[z] || c->dead[z])
                continue;
            wk_held_t *r = s_held_copy(h);
            if (!r) {
                wkc_notice(c, "out of memory relaying a push to server %u", z);
                continue;
            }
            uint64_t seq = c->seq_next[z] + 1;
            size_t bytes = zmq_msg_size(&r->keys) + zmq_msg_size(&r->vals) + sizeof *r;
            if (wk_retry_add(c->retry, z, seq, bytes, zps_now_ms(), r) != 0) {
                wkc_held_free(NULL, r);
                wkc_notice(c, "out of memory relaying a push to server %u", z);
                continue;
            }
            c->seq_next[z] = seq;
            if (ticket)
                ticket->relays++;
            wk_retry_item_t *it = wk_retry_find(c->retry, z, seq);
            if (it)
                wkc_resend_push(c, z, it); /* (a failed send: the retry scan) */
            c->rs.relayed++;
            sent++;
        }
        wkc_held_free(NULL, h);
    }
    if (n)
        wkc_notice(c, "relayed %zu push part%s that removed servers never acknowledged to %zu "
                   "current replica%s of their ranges", n, n == 1 ? "" : "s", sent,
                   sent == 1 ? "" : "s");
    free(keys);
    free(list);
}

/* A newer table: fail over from every server it no longer names (a
 * server drained by remove-server, listed in retired, keeps its held
 * pushes: it still answers them). */
static void s_apply(wk_client_t *c, const zps_ranges_t *t, const uint32_t *retired,
                    size_t nretired)
{
    uint32_t S = c->conf.nservers;
    uint8_t removed[WK_MAX_SERVERS];
    int any = 0;
    uint64_t old = c->ranges->version;
    /* the parts servers that fail now never acknowledged: relayed below */
    s_relay_t *relays = NULL;
    size_t nrelays = 0;
    for (uint32_t s = 0; s < S; s++) {
        int fails = c->ranges->version &&
                    (t->inc[s] != c->ranges->inc[s] ||
                     (!c->dead[s] && !zps_ranges_member(t, s) && !s_listed(retired, nretired, s)));
        if (fails && s_collect(c, s, &relays, &nrelays) != 0)
            wkc_notice(c, "out of memory keeping the pushes server %u never acknowledged: they "
                       "are not relayed", s);
    }
    for (uint32_t s = 0; s < S; s++) {
        removed[s] = 0;
        if (t->inc[s] != c->ranges->inc[s] || (c->dead[s] && zps_ranges_member(t, s)))
            s_connect_slot(c, s);
        if (c->ranges->version && t->inc[s] != c->ranges->inc[s]) {
            /* a new process of rank s joins: it knows nothing of this
             * client (sequence numbers from 1, empty key cache); what was
             * held for the old one lives on the other replicas */
            c->dead[s] = 0;
            wk_retry_reset(c->retry, s);
            c->seq_next[s] = 0;
            c->acked[s] = 0;
            c->snonce[s] = 0;
            c->retry_at_ms[s] = c->conf.retry_ms;
            wk_keysig_forget(c->sigs, s);
            wkc_notice(c, "server %u at %s is in the range table again (version %llu): a new "
                       "process joining", s, c->servers[s], (unsigned long long)t->version);
            removed[s] = 1; /* requests waiting for the old process stop waiting */
            any = 1;
            c->failovers++;
            continue;
        }
        removed[s] = !c->dead[s] && !zps_ranges_member(t, s);
        if (removed[s] && s_listed(retired, nretired, s)) {
            /* drained: its ranges moved; what it has not acknowledged yet
             * is still retried to it (it may be the only copy), pulls move */
            c->dead[s] = 1;
            removed[s] = 2;
            any = 1;
            wkc_notice(c, "server %u at %s was removed from the job (range table version %llu): "
                       "its ranges moved", s, c->servers[s], (unsigned long long)t->version);
        } else if (removed[s]) {
            c->dead[s] = 1;
            any = 1;
            c->failovers++;
            wkc_notice(c, "server %u at %s is not in the range table (version %llu): failing "
                       "over to its replicas", s, c->servers[s], (unsigned long long)t->version);
        } else if (c->dead[s] && zps_ranges_member(t, s)) {
            /* a server added to the job (same incarnation: nothing to forget) */
            c->dead[s] = 0;
            wkc_notice(c, "server %u at %s is in the range table (version %llu)", s,
                       c->servers[s], (unsigned long long)t->version);
        }
    }
    /* servers that no longer hold a range they held (it moved): a pull
     * waiting for one of them is split again too (the server answers
     * ZPS_ESTALE for keys it does not hold; a push part is still taken:
     * psv_join_accepts) */
    uint8_t shrunk[WK_MAX_SERVERS];
    memset(shrunk, 0, S);
    if (old)
        for (uint32_t r = 0; r < ZPS_RANGES; r++)
            for (uint32_t i = 0; i < c->ranges->nrep[r]; i++) {
                uint32_t s = c->ranges->rep[r][i];
                if (s < S && !shrunk[s] && !zps_ranges_has(t, r, s)) {
                    shrunk[s] = 1;
                    any = 1;
                }
            }
    *c->ranges = *t;
    if (old)
        wkc_notice(c, "range table version %llu (was %llu)", (unsigned long long)t->version,
                   (unsigned long long)old);
    uint32_t lost = zps_ranges_lost(t);
    if (lost && !c->sticky) {
        c->sticky = ZPS_ELOST;
        wkc_seterr(c, "%u of the %u key ranges have no replica left (range table version %llu): "
                   "every server holding them failed; the job cannot go on without restoring "
                   "checkpoints", lost, ZPS_RANGES, (unsigned long long)t->version);
    }
    if (!any) {
        s_relay(c, relays, nrelays);
        return;
    }
    for (uint32_t s = 0; s < S; s++) {
        if (removed[s] != 1)
            continue;
        wk_retry_item_t *it;
        while ((it = wk_retry_first(c->retry, s)) != NULL)
            wk_retry_drop(c->retry, s, it->seq);
    }
    s_relay(c, relays, nrelays);
    for (uint32_t i = 0; i <= c->mask; i++) {
        wk_req_t *r = &c->reqs[i];
        if (r->kind == RQ_FREE)
            continue;
        int hit = 0, moved = 0;
        for (uint32_t s = 0; s < S; s++) {
            hit |= removed[s] && r->waiting[s];
            moved |= shrunk[s] && r->waiting[s];
        }
        if (r->kind == RQ_PULL && (hit || moved)) {
            wkc_repull(c, r);
            c->rs.pull_retried++;
            continue;
        }
        if (!hit)
            continue;
        for (uint32_t s = 0; s < S; s++) {
            if (removed[s] != 1 || !r->waiting[s])
                continue;
            r->waiting[s] = 0;
            r->pending--;
            if (r->kind == RQ_STATS)
                wkc_req_err(r, ZPS_ENOLEASE, "server %u at %s was removed from the job", s,
                            c->servers[s]);
        }
    }
}

static void s_endpoints(wk_client_t *c, const Zps__TableReply *tr);

static void s_on_reply(wk_client_t *c, const Zps__Envelope *env)
{
    if (env->request_id == c->coord_asked)
        c->coord_asked = 0;
    if (env->body_case == ZPS__ENVELOPE__BODY_ERROR) {
        wkc_notice(c, "coordinator %s: %s", c->conf.coordinator, env->error->text);
        return;
    }
    if (env->body_case != ZPS__ENVELOPE__BODY_TABLE_REPLY)
        return;
    s_endpoints(c, env->table_reply);
    if (env->table_reply->table.len == 0)
        return;
    zps_ranges_t *t = malloc(sizeof *t);
    char err[200];
    if (!t)
        return;
    if (zps_ranges_decode(t, env->table_reply->table.data, env->table_reply->table.len, err,
                          sizeof err) != 0) {
        wkc_notice(c, "coordinator %s sent a bad table: %s", c->conf.coordinator, err);
    } else if (!c->dead) {
        /* before the per-server arrays exist (wkc_repl_connect) */
        if (t->version > c->ranges->version)
            *c->ranges = *t;
    } else if (t->nservers != c->conf.nservers) {
        if (!c->sticky) {
            c->sticky = ZPS_EMISMATCH;
            wkc_seterr(c, "coordinator %s has a range table of %u rank slots, this client "
                       "started with %u", c->conf.coordinator, t->nservers, c->conf.nservers);
        }
    } else if (t->version > c->ranges->version) {
        s_apply(c, t, env->table_reply->retired, env->table_reply->n_retired);
    }
    free(t);
}

/* Every reply's endpoints (as the servers announced them). */
static void s_endpoints(wk_client_t *c, const Zps__TableReply *tr)
{
    size_t n = tr->n_endpoints < WK_MAX_SERVERS ? tr->n_endpoints : WK_MAX_SERVERS;
    if (n > c->neps) {
        char **e = realloc(c->eps, n * sizeof *e);
        if (!e)
            return;
        for (size_t i = c->neps; i < n; i++)
            e[i] = NULL;
        c->eps = e;
        c->neps = (uint32_t)n;
    }
    for (size_t i = 0; i < n; i++) {
        const char *ep = tr->endpoints[i] ? tr->endpoints[i] : "";
        if (c->eps[i] && !strcmp(c->eps[i], ep))
            continue;
        char *copy = strdup(ep);
        if (!copy)
            continue;
        free(c->eps[i]);
        c->eps[i] = copy;
    }
}

void wkc_repl_poll(wk_client_t *c)
{
    if (!c->coord)
        return;
    for (;;) {
        zps_msg_t m;
        int rc = zps_msg_recv(c->coord, 0, &m, ZMQ_DONTWAIT);
        if (rc == 0)
            s_on_reply(c, m.env);
        zps_msg_close(&m);
        if (rc == ZPS_EIO || rc == ZPS_EINTR)
            break;
    }
    int64_t now = zps_now_ms();
    if (now < c->coord_next_ms || (c->coord_asked && now - c->coord_asked_ms < 1000))
        return;
    c->coord_next_ms = now + S_POLL_MS;
    s_ask(c);
}

int wkc_repl_connect(wk_client_t *c, char *err, size_t errlen)
{
    c->ranges = calloc(1, sizeof *c->ranges);
    c->coord = zmq_socket(c->ctx, ZMQ_DEALER);
    c->ngiven = c->conf.nservers;
    if (!c->ranges || !c->coord) {
        snprintf(err, errlen, "out of memory");
        return ZPS_ENOMEM;
    }
    int zero = 0, ivl = 100, cto = 2000;
    zmq_setsockopt(c->coord, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(c->coord, ZMQ_SNDTIMEO, &zero, sizeof zero);
    zmq_setsockopt(c->coord, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(c->coord, ZMQ_CONNECT_TIMEOUT, &cto, sizeof cto);
    if (zmq_connect(c->coord, c->conf.coordinator) != 0) {
        snprintf(err, errlen, "cannot connect to the coordinator '%s': %s", c->conf.coordinator,
                 zmq_strerror(errno));
        return ZPS_EINVAL;
    }
    /* the first table: the coordinator builds it once every server beat */
    int wait_ms = c->conf.connect_timeout_ms > 0 ? c->conf.connect_timeout_ms : 10000;
    int64_t deadline = zps_now_ms() + wait_ms;
    while (c->ranges->version == 0 && !c->sticky) {
        int64_t left = deadline - zps_now_ms();
        if (left <= 0) {
            snprintf(err, errlen, "no range table from the coordinator %s within %d ms (is "
                     "zps-coord running there, and have all %u servers started?)",
                     c->conf.coordinator, wait_ms, c->conf.nservers);
            return ZPS_ETIMEDOUT;
        }
        wkc_repl_poll(c);
        zmq_pollitem_t it = {c->coord, 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, left < 50 ? (long)left : 50);
    }
    if (c->sticky) {
        snprintf(err, errlen, "%s", c->err);
        return c->sticky;
    }
    return 0;
}

int wkc_repl_start(wk_client_t *c, char *err, size_t errlen)
{
    uint32_t S = c->conf.nservers;
    c->dead = calloc(S, 1);
    if (!c->dead) {
        snprintf(err, errlen, "out of memory");
        return ZPS_ENOMEM;
    }
    /* ranks not in the table are not asked (failed, or slots for servers
     * added later) */
    for (uint32_t s = 0; s < S; s++)
        c->dead[s] = !zps_ranges_member(c->ranges, s);
    c->items[S].socket = c->coord;
    c->items[S].events = ZMQ_POLLIN;
    c->nitems = S + 1;
    uint32_t lost = zps_ranges_lost(c->ranges);
    if (lost) {
        c->sticky = ZPS_ELOST;
        snprintf(err, errlen, "%u of the %u key ranges have no replica left (range table version "
                 "%llu): the job cannot go on without restoring checkpoints", lost, ZPS_RANGES,
                 (unsigned long long)c->ranges->version);
        return ZPS_ELOST;
    }
    c->retain = 0; /* acknowledged by every replica: durable */
    return 0;
}

void wkc_repl_free(wk_client_t *c)
{
    if (c->coord)
        zmq_close(c->coord);
    c->coord = NULL;
    free(c->ranges);
    c->ranges = NULL;
    free(c->dead);
    c->dead = NULL;
    for (uint32_t i = 0; i < c->neps; i++)
        free(c->eps[i]);
    free(c->eps);
    c->eps = NULL;
    c->neps = 0;
}
