/* ps_member: a server's membership in a replicated job (--coordinator).
 *
 * A thread of its own, so a busy or forking server loop never delays its
 * heartbeats: it sends the coordinator (zps-coord) a BEAT every beat_ms on
 * its own DEALER socket and reads the answers.  Each answer is a lease: the
 * server may acknowledge pushes and answer pulls until the answered beat's
 * SEND time plus lease_ms (the coordinator grants failure_timeout / 2).
 * The coordinator declares a server dead only after failure_timeout without
 * a beat, so by the time it gives the server's ranges to others the
 * server's lease has run out on its own clock: a server cut off from the
 * coordinator stops acknowledging before anyone replaces it (no split
 * brain; it relies on the two clocks running at the same rate, not on
 * them agreeing).  A server the coordinator does not count as a member
 * (removed, or no table yet) holds no lease.
 *
 * The coordinator's range table reaches the server loop through
 * ps_member_table (copied under a mutex when newer than the caller's), with
 * the servers' endpoints (ps_member_endpoint: a donor reaches its joiner).
 * A joiner reports the joins it has completed in its beats
 * (ps_member_set_joined).
 * The lease is one atomic word, read per request.  The thread logs through
 * the server's zps_log with plain calls only (one fwrite per line). */
#ifndef PS_MEMBER_H
#define PS_MEMBER_H

#include <stdint.h>

#include "zps_log.h"
#include "zps_ranges.h"

typedef struct ps_member ps_member_t;

typedef struct {
    const char *coordinator;   /* endpoint of zps-coord */
    uint32_t rank;
    uint64_t nonce;            /* the server process's nonce */
    const char *endpoint;      /* where clients reach this server */
    void *zmq_ctx;             /* shared ZeroMQ context (sockets are the thread's own) */
    int beat_ms;               /* 0: 100 */
    /* --restore of a replicated server: when its checkpoint was written
     * (ms since 1970; 0: nothing restored) and the range table it holds
     * (copied); beats report the time, and the table when the coordinator
     * asks, so it can pick one source per range (ps_coord.h, "restore") */
    uint64_t restored_ms;
    const uint8_t *restored_table;
    size_t restored_len;
} ps_member_conf_t;

/* WAITING: no answer or no table yet; CANDIDATE: a table exists and this
 * server is not in it and never was (it may be given ranges to join); IN:
 * in the table (serving or joining); OUT: it was in the table and was
 * removed (declared failed): its data is stale; RETIRED: zps-ctl
 * remove-server moved every range it held elsewhere (it answers late pushes
 * for a moment, then exits 0). */
enum { PS_MEMBER_WAITING = 0, PS_MEMBER_IN = 1, PS_MEMBER_OUT = 2, PS_MEMBER_CANDIDATE = 3,
       PS_MEMBER_RETIRED = 4 };

/* Starts the thread.  NULL + err on failure. */
ps_member_t *ps_member_new(const ps_member_conf_t *conf, zps_log_t *log, char *err, size_t errlen);
/* Stops and joins the thread; *m = NULL. */
void ps_member_destroy(ps_member_t **m);

/* 1 while the server holds a lease at now_ms (zps_now_ms). */
int ps_member_leased(const ps_member_t *m, int64_t now_ms);

/* PS_MEMBER_WAITING, _CANDIDATE, _IN or _OUT (above). */
int ps_member_state(const ps_member_t *m);

/* From now on, beats report the joins that began at cut as complete. */
void ps_member_set_joined(ps_member_t *m, uint64_t cut);

/* Server rank's endpoint as the coordinator last sent it ("" unknown). */
void ps_member_endpoint(ps_member_t *m, uint32_t rank, char *out, size_t outlen);

/* If the coordinator's table is newer than t->version (0: none), copy it
 * into *t and return 1; else 0. */
int ps_member_table(ps_member_t *m, zps_ranges_t *t);

/* Beats sent and answered, for stats. */
void ps_member_counts(const ps_member_t *m, uint64_t *sent, uint64_t *answered);

#endif
