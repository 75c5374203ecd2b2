/* wk_cli_wait: how the client waits (see wk_cli.h).
 *
 * DESIGN
 * There is no background thread: progress happens in wkc_pump, called by
 * every wait.  One round runs the retry scan (at most every WK_SCAN_MS),
 * sends heartbeats to servers not written to for heartbeat_ms, then polls
 * every socket for at most the slice asked (capped by the scan and
 * heartbeat periods, so neither is late) and drains what arrived.
 *
 * The retry scan, per server: every push it has not acknowledged whose
 * last send is older than the server's backoff interval is sent again,
 * oldest (lowest seq) first, then its overdue pulls (they wait at least
 * pull_retry_ms: a held ssp/bsp pull is unanswered by design).  The
 * interval doubles to 8 s while the server stays silent and starts over
 * with its next reply (wkc_drain).  Before scanning, it takes in replies
 * already queued, so a caller that did not wait for a while does not
 * resend what was answered.
 *
 * wk_client_wait pumps until its ticket completes, a sticky error, or the
 * deadline (server_timeout_ms from the first send when retrying), then
 * releases the ticket.  wkc_wait_retained holds a new push while the
 * retained bytes are over the cap, probing idle servers for their durable
 * mark. */
#include "wk_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zps_err.h"
#include "zps_time.h"

/* Send a HEARTBEAT to every server we have not sent anything to lately. */
static void s_heartbeats(wk_client_t *c)
{
    int64_t now = zps_now_ms();
    for (uint32_t s = 0; s < c->conf.nservers; s++) {
        if (now - c->last_sent[s] < c->conf.heartbeat_ms || (c->dead && c->dead[s]))
            continue;
        Zps__Envelope env;
        Zps__Heartbeat hb = ZPS__HEARTBEAT__INIT;
        zps_msg_env(&env, ZPS__MSG_TYPE__HEARTBEAT, c->conf.role, c->conf.rank, 0);
        hb.clock = c->clock;
        env.body_case = ZPS__ENVELOPE__BODY_HEARTBEAT;
        env.heartbeat = &hb;
        size_t wire = 0;
        if (zps_msg_send(c->socks[s], NULL, &env, NULL, 0, NULL, 0, &wire) == 0)
            c->sent += wire;
        c->last_sent[s] = now;
    }
}

/* The retry scan, at most every WK_SCAN_MS: for each server, every push it
 * has not acknowledged whose last send is older than the server's backoff
 * interval is sent again, oldest (lowest seq) first, then its overdue
 * pulls; the interval doubles (to 8 s) while the server stays silent and
 * starts over with its next reply.  on_wait hears about it. */
static void s_retry(wk_client_t *c)
{
    if (c->conf.retry_ms <= 0)
        return;
    int64_t now = zps_now_ms();
    if (now < c->next_scan_ms)
        return;
    c->next_scan_ms = now + WK_SCAN_MS;
    /* first take in what has arrived: after a caller that did not wait on
     * the client for a while, answers may be queued for overdue requests */
    if (zmq_poll(c->items, (int)c->conf.nservers, 0) > 0) {
        for (uint32_t s = 0; s < c->conf.nservers; s++)
            if (c->items[s].revents & ZMQ_POLLIN)
                wkc_drain(c, s);
        now = zps_now_ms();
    }
    /* pulls in flight (few), gathered once */
    uint32_t pulls[256], npulls = 0;
    for (uint32_t i = 0; i <= c->mask && npulls < 256; i++)
        if (c->reqs[i].kind == RQ_PULL && c->reqs[i].pending)
            pulls[npulls++] = i;
    int64_t pull_iv = c->conf.pull_retry_ms > 0 ? c->conf.pull_retry_ms : c->conf.retry_ms;
    for (uint32_t s = 0; s < c->conf.nservers; s++) {
        int64_t iv = c->retry_at_ms[s], piv = pull_iv > iv ? pull_iv : iv;
        int64_t oldest = 0;
        for (wk_retry_item_t *it = wk_retry_first_unacked(c->retry, s); it;
             it = wk_retry_next_unacked(c->retry, s, it))
            if (now - it->sent_ms >= iv && (!oldest || it->sent_ms < oldest))
                oldest = it->sent_ms;
        for (uint32_t j = 0; j < npulls; j++) {
            wk_req_t *r = &c->reqs[pulls[j]];
            if (r->waiting[s] && r->keep[s] && now - r->sent_ms[s] >= piv &&
                (!oldest || r->sent_ms[s] < oldest))
                oldest = r->sent_ms[s];
        }
        if (!oldest)
            continue;
        if (c->conf.on_wait && now - c->warned_ms[s] >= 5000) {
            c->warned_ms[s] = now;
            c->conf.on_wait(c->conf.on_wait_ctx, s, c->servers[s], (double)(now - oldest) / 1000.0);
        }
        for (wk_retry_item_t *it = wk_retry_first_unacked(c->retry, s); it;
             it = wk_retry_next_unacked(c->retry, s, it))
            if (now - it->sent_ms >= iv && wkc_resend_push(c, s, it) == 0)
                c->rs.retried++;
        for (uint32_t j = 0; j < npulls; j++) {
            wk_req_t *r = &c->reqs[pulls[j]];
            if (r->kind == RQ_PULL && r->waiting[s] && r->keep[s] && now - r->sent_ms[s] >= piv) {
                wkc_resend_pull(c, r, s);
                c->rs.pull_retried++;
            }
        }
        c->retry_at_ms[s] = iv * 2 > 8000 ? 8000 : iv * 2;
    }
}

/* One round: the retry scan, heartbeats, then up to slice_ms for replies.
 * 0, or ZPS_EINTR / ZPS_EIO (c->err says why). */
int wkc_pump(wk_client_t *c, long slice_ms)
{
    wkc_repl_poll(c);
    s_retry(c);
    if (c->conf.retry_ms > 0 && slice_ms > WK_SCAN_MS)
        slice_ms = WK_SCAN_MS;
    if (c->conf.heartbeat_ms > 0) {
        s_heartbeats(c);
        if (slice_ms > c->conf.heartbeat_ms)
            slice_ms = c->conf.heartbeat_ms;
    }
    if (c->coord && slice_ms > 200)
        slice_ms = 200; /* the table is asked for every 200 ms */
    int rc = zmq_poll(c->items, (int)c->nitems, slice_ms);
    if (rc < 0) {
        if (errno == EINTR) {
            wkc_seterr(c, "interrupted while waiting for servers");
            return ZPS_EINTR;
        }
        wkc_seterr(c, "poll failed: %s", zmq_strerror(errno));
        return ZPS_EIO;
    }
    for (uint32_t s = 0; s < c->conf.nservers; s++)
        if (c->items[s].revents & ZMQ_POLLIN)
            wkc_drain(c, s);
    return 0;
}

int wk_client_wait(wk_client_t *c, uint64_t ticket, int timeout_ms)
{
    wk_req_t *r = wkc_req_find(c, ticket);
    if (!r) {
        wkc_seterr(c, "ticket %llu is not in flight", (unsigned long long)ticket);
        return ZPS_EINVAL;
    }
    if (timeout_ms < 0)
        timeout_ms = c->conf.timeout_ms;
    int retrying = c->conf.retry_ms > 0 && (r->kind == RQ_PULL || r->kind == RQ_PUSH);
    if (retrying)
        timeout_ms = c->conf.server_timeout_ms > 0 ? c->conf.server_timeout_ms : 120000;
    int64_t deadline = (retrying && r->first_ms ? r->first_ms : zps_now_ms()) + timeout_ms;
    uint32_t S = c->conf.nservers;
    /* a push is done once its relays are acknowledged too (wk_cli_repl.c) */
    while ((r->pending > 0 || r->relays > 0) && !c->sticky) {
        int64_t left = deadline - zps_now_ms();
        if (left <= 0) {
            char who[256];
            int n = 0;
            for (uint32_t s = 0; s < S && n < (int)sizeof who - 64; s++)
                if (r->waiting[s])
                    n += snprintf(who + n, sizeof who - (size_t)n, "%sserver %u at %s",
                                  n ? ", " : "", s, c->servers[s]);
            wkc_seterr(c, "no answer within %d ms from %s", timeout_ms, who);
            wkc_req_release(c, r);
            return ZPS_ETIMEDOUT;
        }
        int rc = wkc_pump(c, retrying && left > 250 ? 250 : (long)left);
        if (rc == ZPS_EINTR)
            return rc; /* ticket stays in flight; wait again */
        if (rc) {
            wkc_req_release(c, r);
            return rc;
        }
    }
    if (c->sticky) {
        wkc_req_release(c, r);
        return c->sticky;
    }
    int status = r->status;
    if (status)
        snprintf(c->err, sizeof c->err, "%s", r->err);
    wkc_req_release(c, r);
    return status;
}

/* Past the retention cap: wait until the servers' durable marks release
 * enough held pushes.  A server with held pushes that are all acknowledged
 * is probed by resending its oldest one (a duplicate: acknowledged again,
 * not applied, with its current durable mark), backing off from 200 ms to
 * 2 s; a server that answers nothing for --server-timeout fails the wait. */
int wkc_wait_retained(wk_client_t *c)
{
    uint64_t cap = c->conf.max_retained_bytes;
    if (!c->retain || wk_retry_bytes(c->retry) < cap)
        return 0;
    int64_t t0 = zps_now_ms(), warned = t0;
    int64_t timeout = c->conf.server_timeout_ms > 0 ? c->conf.server_timeout_ms : 120000;
    c->rs.cap_waits++;
    wkc_notice(c, "%.1f MB of pushes held for durability (--max-retained-mb %g): waiting for "
               "the servers' next checkpoint", (double)wk_retry_bytes(c->retry) / 1e6,
               (double)cap / 1048576.0);
    uint32_t S = c->conf.nservers;
    int64_t *probe_at = calloc(S, sizeof *probe_at), *probe_iv = calloc(S, sizeof *probe_iv);
    int64_t *asked = calloc(S, sizeof *asked); /* first unanswered probe */
    int rc = 0;
    if (!probe_at || !probe_iv || !asked) {
        wkc_seterr(c, "out of memory");
        rc = ZPS_ENOMEM;
    }
    for (uint32_t s = 0; !rc && s < S; s++)
        probe_iv[s] = 200;
    while (!rc && wk_retry_bytes(c->retry) >= cap && wk_retry_bytes(c->retry) > 0) {
        if (c->sticky) {
            rc = c->sticky;
            break;
        }
        int64_t now = zps_now_ms();
        for (uint32_t s = 0; s < S && !rc; s++) {
            if (asked[s] && c->last_recv_ms[s] >= asked[s]) {
                asked[s] = 0; /* answered */
                probe_iv[s] = 200;
            }
            if (asked[s] && now - asked[s] >= timeout) {
                wkc_seterr(c, "no answer within %lld ms from server %u at %s (waiting for it to "
                           "checkpoint held pushes)", (long long)timeout, s, c->servers[s]);
                rc = ZPS_ETIMEDOUT;
                break;
            }
            if (wk_retry_unacked(c->retry, s) || now < probe_at[s])
                continue; /* pushes in flight bring marks of their own */
            wk_retry_item_t *it = wk_retry_oldest_retained(c->retry, s);
            if (!it)
                continue;
            if (wkc_resend_push(c, s, it) == 0) {
                c->rs.probes++;
                if (!asked[s])
                    asked[s] = now;
            }
            probe_at[s] = now + probe_iv[s];
            probe_iv[s] = probe_iv[s] * 2 > 2000 ? 2000 : probe_iv[s] * 2;
        }
        if (rc)
            break;
        if (now - warned >= 10000) {
            warned = now;
            wkc_notice(c, "still waiting for a checkpoint: %.1f MB held for %.0f s",
                       (double)wk_retry_bytes(c->retry) / 1e6, (double)(now - t0) / 1000.0);
        }
        rc = wkc_pump(c, WK_SCAN_MS);
    }
    c->rs.cap_wait_ms += (uint64_t)(zps_now_ms() - t0);
    free(probe_at);
    free(probe_iv);
    free(asked);
    return rc;
}
