/* check_coord: the coordinator's rules (ps/ps_coord) with a fake clock:
 * the table is built once every server has beaten, members get leases and
 * the table only when theirs is older, silence and restarted processes
 * remove a member, a restarted coordinator rebuilds its state from the
 * servers' reports, servers join (candidates get the under-replicated
 * ranges from their primaries and complete with Beat.joined; donors take
 * their joiners out with them), and bad input is refused.  Log lines are
 * read back from a temporary file and counted. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_suites.h"
#include "ps_coord.h"
#include "zps_err.h"
#include "zps_log.h"
#include "zps_msg.h"
#include "zps_ranges.h"

typedef struct {
    FILE *f;
    zps_log_t *log;
    ps_coord_t *c;
} s_fix_t;

static void s_open(s_fix_t *x, uint32_t ns, uint32_t r, uint32_t failure_ms, int64_t now)
{
    ps_coord_conf_t conf;
    ps_coord_conf_defaults(&conf);
    conf.nservers = ns;
    conf.replicas = r;
    conf.failure_ms = failure_ms;
    char err[200];
    x->f = tmpfile();
    ck_assert_ptr_nonnull(x->f);
    x->log = zps_log_new("coord", 0, x->f);
    ck_assert_ptr_nonnull(x->log);
    x->c = ps_coord_new(&conf, x->log, now, err, sizeof err);
    ck_assert_msg(x->c != NULL, "%s", err);
}

static void s_close(s_fix_t *x)
{
    ps_coord_destroy(&x->c);
    ck_assert_ptr_null(x->c);
    zps_log_destroy(&x->log);
    fclose(x->f);
}

/* Lines of the log holding every one of the needles (NULL-terminated). */
static size_t s_lines(s_fix_t *x, const char *n1, const char *n2)
{
    fflush(x->f);
    rewind(x->f);
    char line[4096];
    size_t n = 0;
    while (fgets(line, sizeof line, x->f))
        n += strstr(line, n1) && (!n2 || strstr(line, n2));
    fseek(x->f, 0, SEEK_END);
    return n;
}

/* The nonce of rank r's first process. */
static uint64_t s_nonce(uint32_t r)
{
    return 1000 + r;
}

static int s_beat(s_fix_t *x, int64_t now, uint32_t rank, uint64_t version, ps_coord_reply_t *rep)
{
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", 7000 + rank);
    return ps_coord_beat(x->c, now, rank, s_nonce(rank), ep, strlen(ep), version, NULL, 0, 0, rep);
}

/* A beat of rank's process nonce, with joined. */
static int s_beatj(s_fix_t *x, int64_t now, uint32_t rank, uint64_t nonce, uint64_t version,
                   uint64_t joined, ps_coord_reply_t *rep)
{
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", 7000 + rank);
    return ps_coord_beat(x->c, now, rank, nonce, ep, strlen(ep), version, NULL, 0, joined, rep);
}

/* Ticks every 50 ms after from, then at to, as zps-coord does: the
 * ranks removed.  (A gap of over failure_ms / 2 between ticks is taken for
 * a stall of the coordinator, test stall_not_counted.) */
static uint32_t s_tick_to(s_fix_t *x, int64_t from, int64_t to)
{
    uint32_t n = 0;
    for (int64_t t = from + 50; t < to; t += 50)
        n += ps_coord_tick(x->c, t);
    return n + ps_coord_tick(x->c, to);
}

/* A reply's table decoded. */
static void s_decode(const ps_coord_reply_t *rep, zps_ranges_t *t)
{
    char err[200];
    ck_assert_ptr_nonnull(rep->table);
    ck_assert_msg(zps_ranges_decode(t, rep->table, rep->table_len, err, sizeof err) == 0, "%s",
                  err);
}

START_TEST(conf_checked)
{
    ps_coord_conf_t conf;
    char err[200];
    const uint32_t bad[][3] = {{0, 1, 1000}, {4097, 1, 1000}, {3, 0, 1000}, {3, 4, 1000},
                               {3, 1, 1}, {3, 1, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ps_coord_conf_defaults(&conf);
        conf.nservers = bad[i][0];
        conf.replicas = bad[i][1];
        conf.failure_ms = bad[i][2];
        err[0] = 0;
        ck_assert_ptr_null(ps_coord_new(&conf, NULL, 0, err, sizeof err));
        ck_assert_msg(strstr(err, "expected"), "case %zu: %s", i, err);
    }
    ps_coord_conf_defaults(&conf);
    ck_assert_uint_eq(conf.failure_ms, 1000);
    /* R is capped at S */
    s_fix_t x;
    s_open(&x, 2, 3, 1000, 0);
    ck_assert_uint_eq(ps_coord_replicas(x.c), 2);
    ps_coord_reply_t rep;
    s_beat(&x, 0, 0, 0, &rep);
    s_beat(&x, 0, 1, 0, &rep);
    ck_assert_uint_eq(ps_coord_table(x.c)->replicas, 2);
    ck_assert_uint_eq(ps_coord_table(x.c)->nrep[0], 2);
    s_close(&x);
    ps_coord_destroy(NULL);
}
END_TEST

START_TEST(build_after_all_beat)
{
    s_fix_t x;
    ps_coord_reply_t rep;
    zps_ranges_t *t = malloc(sizeof *t), *want = malloc(sizeof *want);
    ck_assert(t && want);
    s_open(&x, 3, 2, 1000, 5000);
    ck_assert_ptr_null(ps_coord_table(x.c));
    size_t len = 1;
    ck_assert_ptr_null(ps_coord_encoded(x.c, &len));
    ck_assert_uint_eq(len, 0);
    /* two of three: registered, no table, no lease */
    for (uint32_t r = 0; r < 2; r++) {
        ck_assert_int_eq(s_beat(&x, 5000, r, 0, &rep), 0);
        ck_assert(!rep.member && rep.lease_ms == 0 && rep.table_version == 0 && !rep.send_table);
        ck_assert_ptr_null(rep.table);
        ck_assert_uint_eq(rep.table_len, 0);
    }
    /* and again: still nothing (and a tick changes nothing) */
    ck_assert_int_eq(s_beat(&x, 5100, 0, 0, &rep), 0);
    ck_assert(!rep.member && rep.table_version == 0);
    ck_assert_uint_eq(ps_coord_tick(x.c, 9000), 0);
    ck_assert_ptr_null(ps_coord_table(x.c));
    ck_assert_uint_eq(s_lines(&x, "table version 1", NULL), 0);
    /* the third: the default table, version 1, in the reply */
    ck_assert_int_eq(s_beat(&x, 9000, 2, 0, &rep), 0);
    ck_assert(rep.member);
    ck_assert_uint_eq(rep.lease_ms, 500);
    ck_assert_uint_eq(rep.table_version, 1);
    s_decode(&rep, t);
    zps_ranges_init(want, 3, 2);
    ck_assert(memcmp(t, want, sizeof *t) == 0);
    ck_assert_ptr_nonnull(ps_coord_table(x.c));
    ck_assert(memcmp(ps_coord_table(x.c), want, sizeof *want) == 0);
    ck_assert_ptr_eq(ps_coord_encoded(x.c, &len), rep.table);
    ck_assert_uint_eq(len, zps_ranges_encoded_size(want));
    ck_assert_uint_eq(s_lines(&x, "table version 1: 3 servers, 2 replicas", NULL), 1);
    /* a member still at version 0 gets the table; at version 1, not */
    ck_assert_int_eq(s_beat(&x, 9050, 0, 0, &rep), 0);
    ck_assert(rep.member && rep.lease_ms == 500 && rep.table_version == 1 && rep.table);
    ck_assert_int_eq(s_beat(&x, 9100, 0, 1, &rep), 0);
    ck_assert(rep.member && rep.lease_ms == 500 && rep.table_version == 1);
    ck_assert_ptr_null(rep.table);
    ck_assert_uint_eq(rep.table_len, 0);
    ck_assert(!rep.send_table);
    /* built once */
    ck_assert_int_eq(s_beat(&x, 9100, 1, 1, &rep), 0);
    ck_assert_uint_eq(s_lines(&x, "table version 1:", NULL), 1);
    ck_assert_uint_eq(s_lines(&x, "registered at tcp://127.0.0.1:700", NULL), 3);
    ck_assert_str_eq(ps_coord_endpoint(x.c, 2), "tcp://127.0.0.1:7002");
    ck_assert_ptr_null(ps_coord_endpoint(x.c, 3));
    ps_coord_stats_t st;
    ps_coord_get_stats(x.c, &st);
    ck_assert_uint_eq(st.beats, 7);
    ck_assert_uint_eq(st.version, 1);
    ck_assert_uint_eq(st.members, 3);
    ck_assert_uint_eq(st.removals, 0);
    ck_assert_uint_eq(st.lost, 0);
    ck_assert(!st.recovering);
    s_close(&x);
    free(t);
    free(want);
}
END_TEST

/* S servers all beat at now with version v. */
static void s_all(s_fix_t *x, uint32_t ns, int64_t now, uint64_t v)
{
    ps_coord_reply_t rep;
    for (uint32_t r = 0; r < ns; r++)
        ck_assert_int_eq(s_beat(x, now, r, v, &rep), 0);
}

START_TEST(failure_removes_after_timeout)
{
    s_fix_t x;
    ps_coord_reply_t rep;
    zps_ranges_t *t = malloc(sizeof *t);
    s_open(&x, 3, 2, 1000, 0);
    s_all(&x, 3, 100, 0);
    ck_assert_uint_eq(ps_coord_table(x.c)->version, 1);
    /* 0 and 1 keep beating, 2 falls silent after t = 100 */
    for (int64_t now = 200; now <= 1100; now += 100) {
        s_beat(&x, now, 0, 1, &rep);
        s_beat(&x, now, 1, 1, &rep);
        ck_assert_uint_eq(ps_coord_tick(x.c, now), 0);
    }
    /* silent for exactly failure_ms: still in */
    ck_assert_uint_eq(ps_coord_tick(x.c, 1100), 0);
    ck_assert_uint_eq(ps_coord_table(x.c)->version, 1);
    /* a millisecond more: out, version 2, nothing lost (R = 2) */
    ck_assert_uint_eq(ps_coord_tick(x.c, 1101), 1);
    ck_assert_uint_eq(ps_coord_table(x.c)->version, 2);
    ck_assert(!zps_ranges_member(ps_coord_table(x.c), 2));
    ck_assert_uint_eq(ps_coord_tick(x.c, 1101), 0);
    ck_assert_uint_eq(s_lines(&x, "removed server 2 (tcp://127.0.0.1:7002): silent for 1001 ms",
                              "table version 2, 2 of 3 servers left, 0 ranges with no replica"), 1);
    ck_assert_uint_eq(s_lines(&x, "cannot continue", NULL), 0);
    /* members at version 1 get version 2 */
    ck_assert_int_eq(s_beat(&x, 1150, 0, 1, &rep), 0);
    ck_assert(rep.member && rep.lease_ms == 500 && rep.table_version == 2);
    s_decode(&rep, t);
    ck_assert_uint_eq(t->version, 2);
    ck_assert(!zps_ranges_member(t, 2) && zps_ranges_member(t, 0) && zps_ranges_member(t, 1));
    /* the removed one, beating again: not a member, no lease, told the version */
    ck_assert_int_eq(s_beat(&x, 1200, 2, 1, &rep), 0);
    ck_assert(!rep.member && rep.lease_ms == 0 && rep.table_version == 2);
    /* and it stays out (no rejoin) */
    ck_assert_int_eq(s_beat(&x, 1300, 2, 2, &rep), 0);
    ck_assert(!rep.member && rep.lease_ms == 0);
    ck_assert_ptr_null(rep.table);
    /* 0 and 1 silent now: each holds the last replica of some ranges (2's
     * home ranges are on 0 alone, 1's on 1 alone), so neither is removed
     * for silence: that would lose ranges for good */
    ck_assert_uint_eq(s_tick_to(&x, 1300, 5000), 0);
    ps_coord_stats_t st;
    ps_coord_get_stats(x.c, &st);
    ck_assert_uint_eq(st.removals, 1);
    ck_assert_uint_eq(st.version, 2);
    ck_assert_uint_eq(st.members, 2);
    ck_assert_uint_eq(st.lost, 0);
    ck_assert_uint_eq(s_lines(&x, "holds the last replica of", "kept in the table"), 2);
    ck_assert_uint_eq(s_lines(&x, "cannot continue", NULL), 0);
    s_close(&x);

    /* R = 1: every server holds the last replica of its ranges, so a silent
     * one is kept (the job waits for it) rather than its ranges lost */
    s_open(&x, 4, 1, 300, 0);
    s_all(&x, 4, 0, 0);
    s_beat(&x, 250, 0, 1, &rep);
    s_beat(&x, 250, 1, 1, &rep);
    s_beat(&x, 250, 2, 1, &rep);
    ck_assert_uint_eq(s_tick_to(&x, 0, 300), 0);
    ck_assert_uint_eq(ps_coord_tick(x.c, 301), 0);
    ck_assert_uint_eq(s_lines(&x, "server 3 (", "holds the last replica of 1024 ranges"), 1);
    ck_assert_uint_eq(s_lines(&x, "lost every replica", NULL), 0);
    ck_assert_int_eq(s_beat(&x, 310, 1, 1, &rep), 0);
    ck_assert(rep.member && rep.lease_ms == 150 && rep.table_version == 1);
    s_close(&x);
    free(t);
}
END_TEST

START_TEST(restarted_process_removed)
{
    s_fix_t x;
    ps_coord_reply_t rep;
    s_open(&x, 3, 3, 1000, 0);
    s_all(&x, 3, 0, 0);
    s_all(&x, 3, 100, 1);
    /* rank 1's process restarted: a new nonce, version 0 */
    const char *ep = "tcp://127.0.0.1:7001";
    ck_assert_int_eq(ps_coord_beat(x.c, 150, 1, 555, ep, strlen(ep), 0, NULL, 0, 0, &rep), 0);
    ck_assert(!rep.member && rep.lease_ms == 0);
    ck_assert_uint_eq(rep.table_version, 2);
    ck_assert(!zps_ranges_member(ps_coord_table(x.c), 1));
    ck_assert_uint_eq(s_lines(&x, "removed server 1", "process restarted"), 1);
    /* its next beat: a candidate, joining every range (test join_after_restart) */
    ck_assert_int_eq(ps_coord_beat(x.c, 200, 1, 555, ep, strlen(ep), 2, NULL, 0, 0, &rep), 0);
    ck_assert(rep.member && rep.lease_ms == 500 && rep.table_version == 3);
    ck_assert_uint_eq(s_lines(&x, "server 1 (tcp://127.0.0.1:7001) joins 4096 ranges", NULL), 1);
    /* restarted again while joining: removed again, its joins dropped */
    ck_assert_int_eq(ps_coord_beat(x.c, 300, 1, 777, ep, strlen(ep), 3, NULL, 0, 0, &rep), 0);
    ck_assert(!rep.member && rep.lease_ms == 0);
    ck_assert_uint_eq(ps_coord_table(x.c)->version, 4);
    ck_assert_uint_eq(ps_coord_table(x.c)->join[0], ZPS_NO_RANK);
    ck_assert_uint_eq(s_lines(&x, "removed server", NULL), 2);
    /* a non-member with a new nonce: logged, and a candidate at once */
    ck_assert_int_eq(ps_coord_beat(x.c, 350, 1, 888, ep, strlen(ep), 4, NULL, 0, 0, &rep), 0);
    ck_assert_uint_eq(s_lines(&x, "server 1 (tcp://127.0.0.1:7001) is a new process", NULL), 1);
    ck_assert(rep.member && rep.table_version == 5);
    /* the others are untouched */
    ck_assert_int_eq(s_beat(&x, 350, 0, 2, &rep), 0);
    ck_assert(rep.member && rep.lease_ms == 500);
    ps_coord_stats_t st;
    ps_coord_get_stats(x.c, &st);
    ck_assert_uint_eq(st.removals, 2);
    ck_assert_uint_eq(st.members, 3);
    ck_assert_uint_eq(st.joins_started, 2 * 4096);
    ck_assert_uint_eq(st.joins_completed, 0);
    s_close(&x);
}
END_TEST

/* A table as a server would report it: default (S, R) less the ranks in
 * out[] (each removal one version). */
static uint8_t *s_report(uint32_t ns, uint32_t r, const uint32_t *out, size_t nout, size_t *len,
                         uint64_t *version)
{
    zps_ranges_t *t = malloc(sizeof *t);
    zps_ranges_init(t, ns, r);
    for (size_t i = 0; i < nout; i++)
        zps_ranges_remove(t, out[i], NULL);
    *len = zps_ranges_encoded_size(t);
    uint8_t *b = malloc(*len);
    zps_ranges_encode(t, b, *len);
    *version = t->version;
    free(t);
    return b;
}

static int s_beat_table(s_fix_t *x, int64_t now, uint32_t rank, uint64_t version,
                        const uint8_t *b, size_t len, ps_coord_reply_t *rep)
{
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", 7000 + rank);
    return ps_coord_beat(x->c, now, rank, s_nonce(rank), ep, strlen(ep), version, b, len, 0, rep);
}

/* The coordinator restarted: the servers report their tables, the highest
 * is adopted after the grace, and members not heard are removed. */
START_TEST(coordinator_restart_adopts_highest)
{
    s_fix_t x;
    ps_coord_reply_t rep;
    size_t l1, l2;
    uint64_t v1, v2;
    const uint32_t gone[] = {3};
    uint8_t *t1 = s_report(4, 3, NULL, 0, &l1, &v1);   /* version 1 */
    uint8_t *t2 = s_report(4, 3, gone, 1, &l2, &v2);   /* version 2: 3 removed */
    ck_assert_uint_eq(v1, 1);
    ck_assert_uint_eq(v2, 2);
    s_open(&x, 4, 3, 1000, 10000);
    /* rank 2 holds version 1: asked for it, no lease */
    ck_assert_int_eq(s_beat(&x, 10010, 2, 1, &rep), 0);
    ck_assert(rep.send_table && !rep.member && rep.lease_ms == 0 && rep.table_version == 0);
    ck_assert_ptr_null(rep.table);
    ck_assert_int_eq(s_beat_table(&x, 10100, 2, 1, t1, l1, &rep), 0);
    ck_assert(!rep.send_table && !rep.member && rep.lease_ms == 0);
    /* rank 0 holds version 2: newer, asked for */
    ck_assert_int_eq(s_beat(&x, 10110, 0, 2, &rep), 0);
    ck_assert(rep.send_table && !rep.member);
    /* a table that does not decode is ignored, logged naming the rank */
    ck_assert_int_eq(s_beat_table(&x, 10150, 0, 2, (const uint8_t *)"garbage", 7, &rep), 0);
    ck_assert(rep.send_table);
    ck_assert_uint_eq(s_lines(&x, "table from server 0 ignored", "not a range table"), 1);
    ck_assert_int_eq(s_beat_table(&x, 10200, 0, 2, t2, l2, &rep), 0);
    ck_assert(!rep.send_table && !rep.member);
    /* rank 2 at version 1 is no longer asked: 2 is known */
    ck_assert_int_eq(s_beat(&x, 10210, 2, 1, &rep), 0);
    ck_assert(!rep.send_table);
    /* rank 3 (out of table 2) is a new process; rank 1 stays silent */
    ck_assert_int_eq(s_beat(&x, 10300, 3, 0, &rep), 0);
    ck_assert(!rep.member && !rep.send_table && rep.table_version == 0);
    /* grace (1000 ms from the first report, at 10010) not over: no table */
    ck_assert_uint_eq(s_tick_to(&x, 10000, 11009), 0);
    ck_assert_ptr_null(ps_coord_table(x.c));
    ps_coord_stats_t st;
    ps_coord_get_stats(x.c, &st);
    ck_assert(st.recovering);
    ck_assert_uint_eq(st.bad_tables, 1);
    /* grace over: table 2 adopted, rank 1 (a member, not heard) removed */
    s_beat(&x, 10900, 0, 2, &rep);
    s_beat(&x, 10900, 2, 1, &rep);
    ck_assert_uint_eq(ps_coord_tick(x.c, 11010), 1);
    const zps_ranges_t *t = ps_coord_table(x.c);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(t->version, 3);
    ck_assert(zps_ranges_member(t, 0) && !zps_ranges_member(t, 1) && zps_ranges_member(t, 2) &&
              !zps_ranges_member(t, 3));
    ck_assert_uint_eq(zps_ranges_lost(t), 0);
    ck_assert_uint_eq(s_lines(&x, "adopted table version 2 reported by server 0", NULL), 1);
    ck_assert_uint_eq(s_lines(&x, "removed server 1 (no endpoint): not heard during the grace",
                              "table version 3"), 1);
    ck_assert_uint_eq(s_lines(&x, "table version 1:", NULL), 0); /* never built one */
    /* members get leases and the table; rank 3, never in this table, is a
     * candidate: it joins every range (each lacks a replica), with donors
     * 0 and 2, the primaries */
    ck_assert_int_eq(s_beat(&x, 11050, 2, 1, &rep), 0);
    ck_assert(rep.member && rep.lease_ms == 500 && rep.table_version == 3 && !rep.send_table);
    ck_assert_ptr_nonnull(rep.table);
    ck_assert_int_eq(s_beat(&x, 11050, 3, 0, &rep), 0);
    ck_assert(rep.member && rep.lease_ms == 500 && rep.table_version == 4);
    ck_assert_uint_eq(s_lines(&x, "server 3 (tcp://127.0.0.1:7003) joins 4096 ranges at version 4",
                              "(donors: server 0: 2048 ranges, server 2: 2048 ranges)"), 1);
    /* 0 beat last at 10900: silent 1000 ms later, but it holds the last
     * replica of its ranges (R = 1): kept, and its joiner with it */
    ck_assert_uint_eq(s_tick_to(&x, 11010, 11900), 0);
    ck_assert_uint_eq(ps_coord_tick(x.c, 11901), 0);
    ck_assert_uint_eq(s_lines(&x, "server 0 (", "holds the last replica of"), 1);
    ps_coord_get_stats(x.c, &st);
    ck_assert(!st.recovering);
    ck_assert_uint_eq(st.version, 4);
    ck_assert_uint_eq(st.removals, 1);
    ck_assert_uint_eq(st.joiners_removed, 0);
    s_close(&x);
    free(t1);
    free(t2);
}
END_TEST

/* After a restart a member that beats without a table is a new process:
 * removed at adoption.  A table of another shape is refused. */
START_TEST(coordinator_restart_removes_new_processes)
{
    s_fix_t x;
    ps_coord_reply_t rep;
    size_t l1, lx;
    uint64_t v1, vx;
    uint8_t *t1 = s_report(3, 2, NULL, 0, &l1, &v1);
    uint8_t *tx = s_report(5, 2, NULL, 0, &lx, &vx);
    s_open(&x, 3, 2, 400, 0);
    ck_assert_int_eq(s_beat_table(&x, 10, 1, 1, tx, lx, &rep), 0);
    ck_assert(rep.send_table);
    ck_assert_uint_eq(s_lines(&x, "table from server 1 ignored", "5 server slots and 2 replicas"), 1);
    /* the version must be the one beaten */
    ck_assert_int_eq(s_beat_table(&x, 20, 1, 7, t1, l1, &rep), 0);
    ck_assert(rep.send_table);
    ck_assert_uint_eq(s_lines(&x, "table from server 1 ignored", "beat says 7"), 1);
    ck_assert_int_eq(s_beat_table(&x, 30, 1, 1, t1, l1, &rep), 0);
    ck_assert(!rep.send_table);
    s_beat(&x, 100, 0, 1, &rep);
    s_beat(&x, 100, 2, 0, &rep); /* restarted with the coordinator */
    ck_assert(!rep.member && !rep.send_table);
    ck_assert_uint_eq(s_tick_to(&x, 0, 409), 0); /* grace from the first report, at 10 */
    ck_assert_uint_eq(ps_coord_tick(x.c, 410), 1);
    ck_assert_uint_eq(s_lines(&x, "removed server 2", "a new process"), 1);
    ck_assert_uint_eq(ps_coord_table(x.c)->version, 2);
    /* 2 beating version 0 again: no table built, not a member */
    ck_assert_int_eq(s_beat(&x, 410, 2, 0, &rep), 0);
    ck_assert(!rep.member && rep.table_version == 2 && rep.table);
    s_close(&x);

    /* no valid table by the end of the grace: wait, say so once */
    s_open(&x, 2, 2, 100, 0);
    s_beat_table(&x, 10, 0, 3, (const uint8_t *)"ZPSR", 4, &rep);
    ck_assert_uint_eq(s_tick_to(&x, 0, 300), 0);
    ck_assert_ptr_null(ps_coord_table(x.c));
    ck_assert_uint_eq(s_lines(&x, "no valid table reported yet", NULL), 1);
    /* a fresh-looking beat does not build a table while recovering */
    s_beat(&x, 310, 1, 0, &rep);
    ck_assert_ptr_null(ps_coord_table(x.c));
    /* one comes: adopted at the next beat or tick */
    uint8_t *t3 = s_report(2, 2, NULL, 0, &l1, &v1);
    ck_assert_int_eq(s_beat_table(&x, 320, 0, 1, t3, l1, &rep), 0);
    ck_assert_ptr_nonnull(ps_coord_table(x.c));
    ck_assert_uint_eq(ps_coord_tick(x.c, 330), 0);
    /* 1 beat with version 0 during the grace: removed at adoption */
    ck_assert(!zps_ranges_member(ps_coord_table(x.c), 1));
    ck_assert(rep.member);
    s_close(&x);

    /* a report that never gives a valid table, and then every server
     * beats without one: after the grace, a new table as at a fresh start */
    s_open(&x, 2, 2, 100, 0);
    s_beat_table(&x, 10, 0, 5, (const uint8_t *)"junk", 4, &rep);
    ck_assert(rep.send_table);
    s_beat(&x, 50, 0, 0, &rep);
    s_beat(&x, 50, 1, 0, &rep);
    ck_assert_ptr_null(ps_coord_table(x.c));
    ck_assert_uint_eq(s_tick_to(&x, 0, 109), 0);
    ck_assert_ptr_null(ps_coord_table(x.c));
    ck_assert_uint_eq(ps_coord_tick(x.c, 110), 0);
    ck_assert_ptr_nonnull(ps_coord_table(x.c));
    ck_assert_uint_eq(ps_coord_table(x.c)->version, 1);
    ck_assert_uint_eq(s_lines(&x, "starting afresh", NULL), 1);
    ck_assert_uint_eq(s_lines(&x, "table version 1: 2 servers", NULL), 1);
    ck_assert_int_eq(s_beat(&x, 120, 1, 0, &rep), 0);
    ck_assert(rep.member && rep.lease_ms == 50 && rep.table);
    s_close(&x);
    free(t1);
    free(tx);
    free(t3);
}
END_TEST

/* A long gap between ticks is the coordinator's stall, not the servers'
 * silence: nobody is removed for it, and the time after it counts. */
START_TEST(stall_not_counted)
{
    s_fix_t x;
    ps_coord_reply_t rep;
    s_open(&x, 2, 2, 1000, 0);
    s_all(&x, 2, 0, 0);
    s_all(&x, 2, 100, 1);
    ck_assert_uint_eq(s_tick_to(&x, 0, 500), 0);
    /* 2500 ms without a tick (and without beats read) */
    ck_assert_uint_eq(ps_coord_tick(x.c, 3000), 0);
    ps_coord_stats_t st;
    ps_coord_get_stats(x.c, &st);
    ck_assert_uint_eq(st.stalls, 1);
    ck_assert_uint_eq(s_lines(&x, "did not run for 2500 ms", NULL), 1);
    /* rank 0's queued beat is read now; rank 1 stays silent: its 100 ms
     * before the stall and the time after it count */
    ck_assert_int_eq(s_beat(&x, 3010, 0, 1, &rep), 0);
    ck_assert(rep.member);
    ck_assert_uint_eq(s_tick_to(&x, 3000, 3600), 0);
    ck_assert_uint_eq(ps_coord_tick(x.c, 3601), 1);
    ck_assert(zps_ranges_member(ps_coord_table(x.c), 0));
    ck_assert(!zps_ranges_member(ps_coord_table(x.c), 1));
    ck_assert_uint_eq(s_lines(&x, "removed server 1", "silent for 1001 ms"), 1);
    ps_coord_get_stats(x.c, &st);
    ck_assert_uint_eq(st.stalls, 1);
    s_close(&x);
}
END_TEST

START_TEST(bad_beats_refused)
{
    s_fix_t x;
    ps_coord_reply_t rep;
    s_open(&x, 2, 2, 1000, 0);
    ck_assert_int_eq(ps_coord_beat(x.c, 0, 2, 1, "e", 1, 0, NULL, 0, 0, &rep), ZPS_EINVAL);
    ck_assert_int_eq(ps_coord_beat(x.c, 0, UINT32_MAX, 1, "e", 1, 0, NULL, 0, 0, &rep), ZPS_EINVAL);
    ck_assert_int_eq(ps_coord_beat(x.c, 0, 0, 0, "e", 1, 0, NULL, 0, 0, &rep), ZPS_EPROTO);
    ck_assert(!rep.member && rep.lease_ms == 0);
    ps_coord_stats_t st;
    ps_coord_get_stats(x.c, &st);
    ck_assert_uint_eq(st.refused, 3);
    ck_assert_uint_eq(st.beats, 0);
    /* nothing was registered by them */
    ck_assert_int_eq(s_beat(&x, 0, 0, 0, &rep), 0);
    ck_assert_ptr_null(ps_coord_table(x.c));
    /* endpoints: kept as given when printable and short, else empty */
    char big[PS_COORD_MAX_ENDPOINT + 2];
    memset(big, 'a', sizeof big);
    ck_assert_int_eq(ps_coord_beat(x.c, 0, 1, 9, big, sizeof big, 0, NULL, 0, 0, &rep), 0);
    ck_assert_str_eq(ps_coord_endpoint(x.c, 1), "");
    ck_assert_ptr_nonnull(ps_coord_table(x.c)); /* still counts as a beat */
    ck_assert_int_eq(ps_coord_beat(x.c, 0, 1, 9, big, PS_COORD_MAX_ENDPOINT, 1, NULL, 0, 0, &rep), 0);
    ck_assert_uint_eq(strlen(ps_coord_endpoint(x.c, 1)), PS_COORD_MAX_ENDPOINT);
    ck_assert_int_eq(ps_coord_beat(x.c, 0, 1, 9, "tcp://x\n:1", 10, 1, NULL, 0, 0, &rep), 0);
    ck_assert_str_eq(ps_coord_endpoint(x.c, 1), "");
    ck_assert_int_eq(ps_coord_beat(x.c, 0, 1, 9, "a\0b", 3, 1, NULL, 0, 0, &rep), 0);
    ck_assert_str_eq(ps_coord_endpoint(x.c, 1), "");
    ck_assert_int_eq(ps_coord_beat(x.c, 0, 1, 9, NULL, 5, 1, NULL, 0, 0, &rep), 0);
    ck_assert_str_eq(ps_coord_endpoint(x.c, 1), "");
    ck_assert_int_eq(ps_coord_beat(x.c, 0, 1, 9, "tcp://h:1", 9, 1, NULL, 0, 0, &rep), 0);
    ck_assert_str_eq(ps_coord_endpoint(x.c, 1), "tcp://h:1");
    ck_assert(rep.member);
    /* the refusal is logged (rate-limited), escaped: every line is one
     * timestamped line, none cut by a raw newline */
    ck_assert_uint_ge(s_lines(&x, "server 1 announced an endpoint of 257 bytes", "aaaa..."), 1);
    ck_assert_uint_eq(s_lines(&x, "", NULL), s_lines(&x, "Z coord/0 ", NULL));
    /* with 4096 servers endpoints are kept up to 34 bytes, so that a
     * TABLE_REPLY or BEAT_REPLY with every one and the largest table (with
     * joins) fits a client's envelope limit (test reply_fits) */
    ps_coord_t *c2;
    ps_coord_conf_t conf;
    ps_coord_conf_defaults(&conf);
    conf.nservers = 4096;
    conf.replicas = 3;
    char err[200];
    c2 = ps_coord_new(&conf, x.log, 0, err, sizeof err);
    ck_assert_ptr_nonnull(c2);
    ck_assert_int_eq(ps_coord_beat(c2, 0, 4095, 9, big, 34, 0, NULL, 0, 0, &rep), 0);
    ck_assert_uint_eq(strlen(ps_coord_endpoint(c2, 4095)), 34);
    ck_assert_int_eq(ps_coord_beat(c2, 0, 4095, 9, big, 35, 0, NULL, 0, 0, &rep), 0);
    ck_assert_str_eq(ps_coord_endpoint(c2, 4095), "");
    ps_coord_destroy(&c2);
    /* a table reported while running is not needed: ignored */
    ck_assert_int_eq(ps_coord_beat(x.c, 10, 1, 9, "tcp://h:1", 9, 1, (const uint8_t *)"x", 1, 0, &rep), 0);
    ck_assert(rep.member && !rep.send_table);
    s_close(&x);
}
END_TEST

/* R = 2, S = 3: a member restarts, is removed, and its next beat makes it
 * a candidate: it joins exactly the ranges it lost (2/3 of them), from
 * their primaries, in one version; it is a member with a lease from then
 * on; its joined report completes them (appended last, one version). */
START_TEST(join_after_restart)
{
    s_fix_t x;
    ps_coord_reply_t rep;
    zps_ranges_t *t = malloc(sizeof *t);
    ck_assert_ptr_nonnull(t);
    s_open(&x, 3, 2, 1000, 0);
    s_all(&x, 3, 0, 0);
    s_all(&x, 3, 100, 1);
    ck_assert_int_eq(s_beatj(&x, 150, 1, 555, 0, 0, &rep), 0);
    ck_assert(!rep.member && rep.lease_ms == 0 && rep.table_version == 2);
    ck_assert_uint_eq(s_lines(&x, "joins", NULL), 0);
    /* its next beat (it holds version 2 now): joins at cut 3 */
    ck_assert_int_eq(s_beatj(&x, 200, 1, 555, 2, 0, &rep), 0);
    ck_assert(rep.member && rep.lease_ms == 500 && rep.table_version == 3);
    s_decode(&rep, t);
    ck_assert_uint_eq(t->version, 3);
    uint32_t joins = 0;
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        uint32_t h = zps_range_home(r, 3);
        if (h == 2) { /* (2, 0): never held 1 */
            if (t->join[r] != ZPS_NO_RANK || t->nrep[r] != 2)
                ck_abort_msg("range %u: a join", r);
            continue;
        }
        /* (0, 1) -> (0) and (1, 2) -> (2): joined by 1 from the primary */
        if (t->nrep[r] != 1 || t->join[r] != 1 || t->donor[r] != (h == 0 ? 0 : 2) ||
            t->cut[r] != 3 || t->rep[r][0] != t->donor[r])
            ck_abort_msg("range %u: join %u donor %u cut %llu", r, t->join[r], t->donor[r],
                         (unsigned long long)t->cut[r]);
        joins++;
    }
    ck_assert_uint_eq(joins, 2731);
    ck_assert_uint_eq(s_lines(&x, "server 1 (tcp://127.0.0.1:7001) joins 2731 ranges at version 3 "
                              "(donors: server 0: 1366 ranges, server 2: 1365 ranges)", NULL), 1);
    ps_coord_stats_t st;
    ps_coord_get_stats(x.c, &st);
    ck_assert_uint_eq(st.joins_started, 2731);
    ck_assert_uint_eq(st.members, 3);
    ck_assert_uint_eq(st.version, 3);
    /* a member now: lease, no table when current, removed if silent */
    ck_assert_int_eq(s_beatj(&x, 250, 1, 555, 3, 0, &rep), 0);
    ck_assert(rep.member && rep.lease_ms == 500 && rep.table_version == 3);
    ck_assert_ptr_null(rep.table);
    /* joined values that match nothing are ignored: another cut, another rank */
    ck_assert_int_eq(s_beatj(&x, 300, 1, 555, 3, 2, &rep), 0);
    ck_assert_int_eq(s_beatj(&x, 300, 0, s_nonce(0), 3, 3, &rep), 0);
    ck_assert(rep.member && rep.table_version == 3);
    ck_assert_uint_eq(ps_coord_table(x.c)->version, 3);
    /* done: version 4, sent in the reply; primary again of its home
     * ranges, last in the others */
    ck_assert_int_eq(s_beatj(&x, 350, 1, 555, 3, 3, &rep), 0);
    ck_assert(rep.member && rep.lease_ms == 500 && rep.table_version == 4);
    s_decode(&rep, t);
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        uint32_t h = zps_range_home(r, 3);
        uint32_t want0 = h, want1 = (h + 1) % 3;
        if (t->join[r] != ZPS_NO_RANK || t->nrep[r] != 2 || t->rep[r][0] != want0 ||
            t->rep[r][1] != want1)
            ck_abort_msg("range %u: (%u, %u)", r, t->rep[r][0], t->rep[r][1]);
    }
    ck_assert_uint_eq(s_lines(&x, "server 1 completed its join of 2731 ranges (version 4, took "
                              "150 ms since the join began)", NULL), 1);
    /* reported again (it has not seen version 4 yet): nothing */
    ck_assert_int_eq(s_beatj(&x, 400, 1, 555, 3, 3, &rep), 0);
    ck_assert(rep.member && rep.table_version == 4 && rep.table);
    ps_coord_get_stats(x.c, &st);
    ck_assert_uint_eq(st.joins_completed, 2731);
    ck_assert_uint_eq(st.version, 4);
    ck_assert_uint_eq(st.members, 3);
    ck_assert_uint_eq(st.removals, 1);
    ck_assert_uint_eq(s_lines(&x, "completed its join", NULL), 1);
    s_close(&x);
    free(t);
}
END_TEST

/* R = 3, S = 4: a donor failing mid-join takes its joiner out too; the
 * joiner's old process stays out, its reset (new nonce) joins afresh. */
START_TEST(join_donor_fails)
{
    s_fix_t x;
    ps_coord_reply_t rep;
    s_open(&x, 4, 3, 1000, 0);
    s_all(&x, 4, 0, 0);
    s_all(&x, 4, 100, 1);
    ck_assert_int_eq(s_beatj(&x, 150, 3, 555, 0, 0, &rep), 0);
    ck_assert(!rep.member);
    ck_assert_int_eq(s_beatj(&x, 200, 3, 555, 2, 0, &rep), 0);
    ck_assert(rep.member && rep.table_version == 3);
    ck_assert_uint_eq(s_lines(&x, "server 3 (tcp://127.0.0.1:7003) joins 3072 ranges at version 3 "
                              "(donors: server 0: 1024 ranges, server 1: 1024 ranges, server 2: "
                              "1024 ranges)", NULL), 1);
    /* 2 falls silent after 100 */
    for (int64_t now = 300; now <= 1100; now += 100) {
        s_beat(&x, now, 0, 3, &rep);
        s_beat(&x, now, 1, 3, &rep);
        s_beatj(&x, now, 3, 555, 3, 0, &rep);
        ck_assert(rep.member);
        ck_assert_uint_eq(ps_coord_tick(x.c, now), 0);
    }
    ck_assert_uint_eq(ps_coord_tick(x.c, 1101), 2);
    const zps_ranges_t *t = ps_coord_table(x.c);
    ck_assert_uint_eq(t->version, 5);
    ck_assert(!zps_ranges_member(t, 2) && !zps_ranges_member(t, 3));
    for (uint32_t r = 0; r < ZPS_RANGES; r++)
        if (t->join[r] != ZPS_NO_RANK || t->nrep[r] == 0)
            ck_abort_msg("range %u: join %u, %u replicas", r, t->join[r], t->nrep[r]);
    ck_assert_uint_eq(s_lines(&x, "removed server 2", "silent for 1001 ms"), 1);
    ck_assert_uint_eq(s_lines(&x, "removed server 3 (tcp://127.0.0.1:7003): its donor server 2 "
                              "was removed: its copy is incomplete", "table version 5"), 1);
    ps_coord_stats_t st;
    ps_coord_get_stats(x.c, &st);
    ck_assert_uint_eq(st.joiners_removed, 1);
    ck_assert_uint_eq(st.removals, 3);
    ck_assert_uint_eq(st.members, 2);
    ck_assert_uint_eq(st.lost, 0);
    /* its process (555) beats on: not a candidate, it must reset first */
    ck_assert_int_eq(s_beatj(&x, 1150, 3, 555, 3, 3, &rep), 0);
    ck_assert(!rep.member && rep.lease_ms == 0 && rep.table_version == 5 && rep.table);
    ck_assert_int_eq(s_beatj(&x, 1160, 3, 555, 5, 0, &rep), 0);
    ck_assert(!rep.member);
    ck_assert_uint_eq(ps_coord_table(x.c)->version, 5);
    /* reset (nonce 556): joins every range, all lacking a replica */
    ck_assert_int_eq(s_beatj(&x, 1200, 3, 556, 0, 0, &rep), 0);
    ck_assert(rep.member && rep.lease_ms == 500 && rep.table_version == 6);
    ck_assert_uint_eq(s_lines(&x, "server 3 (tcp://127.0.0.1:7003) joins 4096 ranges at version 6 "
                              "(donors: server 0: 3072 ranges, server 1: 1024 ranges)", NULL), 1);
    s_close(&x);
}
END_TEST

/* A joiner silent past the failure timeout is removed like any member: its
 * joins are dropped, the chains are as before. */
START_TEST(join_joiner_fails)
{
    s_fix_t x;
    ps_coord_reply_t rep;
    s_open(&x, 3, 2, 1000, 0);
    s_all(&x, 3, 0, 0);
    s_all(&x, 3, 100, 1);
    s_beatj(&x, 150, 1, 555, 0, 0, &rep);
    s_beatj(&x, 200, 1, 555, 2, 0, &rep);
    ck_assert(rep.member && rep.table_version == 3);
    zps_ranges_t *before = malloc(sizeof *before);
    ck_assert_ptr_nonnull(before);
    *before = *ps_coord_table(x.c);
    for (int64_t now = 300; now <= 1200; now += 100) {
        s_beat(&x, now, 0, 3, &rep);
        s_beat(&x, now, 2, 3, &rep);
        ck_assert_uint_eq(ps_coord_tick(x.c, now), 0);
    }
    ck_assert_uint_eq(ps_coord_tick(x.c, 1201), 1);
    const zps_ranges_t *t = ps_coord_table(x.c);
    ck_assert_uint_eq(t->version, 4);
    for (uint32_t r = 0; r < ZPS_RANGES; r++)
        if (t->join[r] != ZPS_NO_RANK || t->nrep[r] != before->nrep[r] ||
            memcmp(t->rep[r], before->rep[r], sizeof t->rep[r]) != 0)
            ck_abort_msg("range %u changed", r);
    ck_assert_uint_eq(s_lines(&x, "removed server 1", "silent for 1001 ms"), 1);
    ps_coord_stats_t st;
    ps_coord_get_stats(x.c, &st);
    ck_assert_uint_eq(st.joiners_removed, 0);
    ck_assert_uint_eq(st.members, 2);
    ck_assert_uint_eq(st.joins_completed, 0);
    /* its late report changes nothing; its process stays out */
    ck_assert_int_eq(s_beatj(&x, 1250, 1, 555, 3, 3, &rep), 0);
    ck_assert(!rep.member && rep.lease_ms == 0 && rep.table_version == 4);
    ck_assert_uint_eq(ps_coord_table(x.c)->version, 4);
    s_close(&x);
    free(before);
}
END_TEST

/* A table as the servers hold it: S = 3, R = 2, every range on (0, 1),
 * version v; with joins_of 1 (mid-join, see join_survives_restart) range
 * r's chain is (0) and 1 joins it from 0 at cut v. */
static uint8_t *s_custom(uint64_t v, int joining, size_t *len)
{
    zps_ranges_t *t = malloc(sizeof *t);
    zps_ranges_init(t, 3, 2);
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        t->nrep[r] = joining ? 1 : 2;
        t->rep[r][0] = 0;
        t->rep[r][1] = 1;
        if (joining)
            ck_assert_int_eq(zps_ranges_join(t, r, 1, 0, v), 0);
    }
    t->version = v;
    *len = zps_ranges_encoded_size(t);
    uint8_t *b = malloc(*len);
    ck_assert_uint_eq(zps_ranges_encode(t, b, *len), *len);
    free(t);
    return b;
}

/* A candidate with nothing to take stays out and says so once; when a
 * member fails, its next beat joins.  (Here after a coordinator restart:
 * rank 2 was never in the adopted table.) */
START_TEST(join_nothing_to_take)
{
    s_fix_t x;
    ps_coord_reply_t rep;
    size_t len;
    uint8_t *b = s_custom(5, 0, &len);
    s_open(&x, 3, 2, 1000, 0);
    ck_assert_int_eq(s_beat_table(&x, 10, 0, 5, b, len, &rep), 0);
    ck_assert_int_eq(s_beat(&x, 10, 1, 5, &rep), 0);
    ck_assert_int_eq(s_beat(&x, 10, 2, 0, &rep), 0);
    ck_assert_uint_eq(s_tick_to(&x, 0, 1010), 0);
    ck_assert_uint_eq(s_lines(&x, "adopted table version 5", NULL), 1);
    s_beat(&x, 1000, 0, 5, &rep);
    s_beat(&x, 1000, 1, 5, &rep);
    for (int64_t now = 1020; now <= 1100; now += 40) {
        ck_assert_int_eq(s_beat(&x, now, 2, 5, &rep), 0);
        ck_assert(!rep.member && rep.lease_ms == 0 && rep.table_version == 5);
    }
    ck_assert_uint_eq(s_lines(&x, "server 2 (tcp://127.0.0.1:7002) is ready to join, but every "
                              "range has 2 replicas", NULL), 1);
    ps_coord_stats_t st;
    ps_coord_get_stats(x.c, &st);
    ck_assert_uint_eq(st.joins_started, 0);
    ck_assert_uint_eq(st.members, 2);
    /* 0 falls silent (last beat at 1000): removed at 2001; then 2 joins
     * every range, from 1 */
    for (int64_t now = 1100; now <= 2000; now += 100) {
        s_beat(&x, now, 1, 5, &rep);
        s_beat(&x, now, 2, 5, &rep);
        ck_assert(!rep.member);
        ck_assert_uint_eq(ps_coord_tick(x.c, now), 0);
    }
    ck_assert_uint_eq(ps_coord_tick(x.c, 2001), 1);
    ck_assert_int_eq(s_beat(&x, 2050, 2, 6, &rep), 0);
    ck_assert(rep.member && rep.lease_ms == 500 && rep.table_version == 7);
    ck_assert_uint_eq(s_lines(&x, "server 2 (tcp://127.0.0.1:7002) joins 4096 ranges at version 7 "
                              "(donors: server 1: 4096 ranges)", NULL), 1);
    ck_assert_uint_eq(s_lines(&x, "ready to join", NULL), 1);
    s_close(&x);
    free(b);
}
END_TEST

/* Joins are in the table: a restarted coordinator adopts them, and the
 * joiner's report completes them. */
START_TEST(join_survives_restart)
{
    s_fix_t x;
    ps_coord_reply_t rep;
    size_t len;
    uint8_t *b = s_custom(4, 1, &len);
    s_open(&x, 3, 2, 1000, 0);
    ck_assert_int_eq(s_beat_table(&x, 10, 0, 4, b, len, &rep), 0);
    ck_assert_int_eq(s_beat(&x, 10, 1, 4, &rep), 0);
    ck_assert_int_eq(s_beat(&x, 10, 2, 0, &rep), 0);
    ck_assert_uint_eq(s_tick_to(&x, 0, 1010), 0);
    ps_coord_stats_t st;
    ps_coord_get_stats(x.c, &st);
    ck_assert_uint_eq(st.version, 4);
    ck_assert_uint_eq(st.members, 2); /* 0 and the joiner 1 */
    ck_assert_int_eq(s_beatj(&x, 1020, 1, s_nonce(1), 4, 0, &rep), 0);
    ck_assert(rep.member && rep.lease_ms == 500 && rep.table_version == 4);
    ck_assert_int_eq(s_beatj(&x, 1030, 1, s_nonce(1), 4, 4, &rep), 0);
    ck_assert(rep.member && rep.table_version == 5 && rep.table);
    const zps_ranges_t *t = ps_coord_table(x.c);
    for (uint32_t r = 0; r < ZPS_RANGES; r++)
        if (t->nrep[r] != 2 || t->rep[r][zps_range_home(r, t->nservers) == 1 ? 0 : 1] != 1 ||
            t->join[r] != ZPS_NO_RANK)
            ck_abort_msg("range %u not completed", r);
    ck_assert_uint_eq(s_lines(&x, "server 1 completed its join of 4096 ranges (version 5, took "
                              "over 20 ms", NULL), 1);
    s_close(&x);
    free(b);
}
END_TEST

/* R = 3, S = 3, two servers restart: the first to beat joins every range;
 * the second waits (the ranges have a join in progress) and joins them
 * once the first has completed. */
START_TEST(join_two_candidates)
{
    s_fix_t x;
    ps_coord_reply_t rep;
    s_open(&x, 3, 3, 1000, 0);
    s_all(&x, 3, 0, 0);
    s_all(&x, 3, 100, 1);
    ck_assert_int_eq(s_beatj(&x, 150, 1, 555, 0, 0, &rep), 0);
    ck_assert_int_eq(s_beatj(&x, 150, 2, 666, 0, 0, &rep), 0);
    ck_assert(!rep.member && rep.table_version == 3);
    ck_assert_int_eq(s_beatj(&x, 200, 1, 555, 3, 0, &rep), 0);
    ck_assert(rep.member && rep.table_version == 4);
    ck_assert_uint_eq(s_lines(&x, "server 1 (tcp://127.0.0.1:7001) joins 4096 ranges at version 4 "
                              "(donors: server 0: 4096 ranges)", NULL), 1);
    for (int64_t now = 200; now <= 260; now += 30) {
        ck_assert_int_eq(s_beatj(&x, now, 2, 666, 3, 0, &rep), 0);
        ck_assert(!rep.member && rep.lease_ms == 0 && rep.table_version == 4);
    }
    ck_assert_uint_eq(s_lines(&x, "server 2 (tcp://127.0.0.1:7002) is ready to join: 4096 ranges "
                              "lack a replica, all with a join in progress", NULL), 1);
    ck_assert_int_eq(s_beatj(&x, 300, 1, 555, 4, 4, &rep), 0);
    ck_assert(rep.member && rep.table_version == 5);
    ck_assert_int_eq(s_beatj(&x, 350, 2, 666, 4, 0, &rep), 0);
    ck_assert(rep.member && rep.lease_ms == 500 && rep.table_version == 6);
    /* server 1 is primary again of its home ranges (zps_ranges_complete) */
    ck_assert_uint_eq(s_lines(&x, "server 2 (tcp://127.0.0.1:7002) joins 4096 ranges at version 6 "
                              "(donors: server 0: 2731 ranges, server 1: 1365 ranges)", NULL), 1);
    ck_assert_int_eq(s_beatj(&x, 400, 2, 666, 6, 6, &rep), 0);
    ck_assert(rep.member && rep.table_version == 7);
    const zps_ranges_t *t = ps_coord_table(x.c);
    for (uint32_t r = 0; r < ZPS_RANGES; r++)
        if (t->nrep[r] != 3 || t->rep[r][0] != zps_range_home(r, 3) ||
            t->rep[r][0] + t->rep[r][1] + t->rep[r][2] != 3 || t->rep[r][1] == t->rep[r][2])
            ck_abort_msg("range %u: home %u, chain %u %u %u", r, zps_range_home(r, 3),
                         t->rep[r][0], t->rep[r][1], t->rep[r][2]);
    ps_coord_stats_t st;
    ps_coord_get_stats(x.c, &st);
    ck_assert_uint_eq(st.joins_started, 8192);
    ck_assert_uint_eq(st.joins_completed, 8192);
    ck_assert_uint_eq(st.members, 3);
    ck_assert_uint_eq(st.removals, 2);
    s_close(&x);
}
END_TEST

/* The largest BEAT_REPLY and TABLE_REPLY (4096 servers, every endpoint at
 * the cap, the largest table: every range with a full chain and a move,
 * 64 retired ranks) fit the envelope limit. */
START_TEST(reply_fits)
{
    s_fix_t x;
    ps_coord_reply_t rep;
    s_open(&x, 4096, 3, 1000, 0);
    char ep[PS_COORD_MAX_ENDPOINT + 1];
    size_t cap = 0;
    memset(ep, 'e', sizeof ep);
    for (size_t n = 1; n <= PS_COORD_MAX_ENDPOINT; n++) {
        ps_coord_beat(x.c, 0, 0, 1, ep, n, 0, NULL, 0, 0, &rep);
        if (strlen(ps_coord_endpoint(x.c, 0)) == n)
            cap = n;
    }
    ck_assert_uint_eq(cap, 34);
    zps_ranges_t *t = malloc(sizeof *t);
    ck_assert_int_eq(zps_ranges_init(t, 4096, 3), 0);
    for (uint32_t r = 0; r < ZPS_RANGES; r++)
        ck_assert_int_eq(zps_ranges_move(t, r, (t->rep[r][2] + 1) % 4096, t->rep[r][0],
                                         t->rep[r][1], 1), 0);
    t->version = UINT64_MAX;
    size_t len = zps_ranges_encoded_size(t);
    ck_assert_uint_eq(len, 28 + ZPS_RANGES * 21 + 4 * 4096);
    uint8_t *enc = malloc(len);
    ck_assert_uint_eq(zps_ranges_encode(t, enc, len), len);
    char **eps = malloc(4096 * sizeof *eps);
    ck_assert(enc && eps);
    ep[cap] = 0;
    for (uint32_t i = 0; i < 4096; i++)
        eps[i] = ep;
    Zps__Envelope env;
    Zps__BeatReply br = ZPS__BEAT_REPLY__INIT;
    zps_msg_env(&env, ZPS__MSG_TYPE__BEAT_REPLY, ZPS__ROLE__ROLE_SERVER, UINT32_MAX, UINT64_MAX);
    br.member = 1;
    br.lease_ms = UINT32_MAX;
    br.table_version = UINT64_MAX;
    br.send_table = 1;
    br.table.data = enc;
    br.table.len = len;
    br.n_endpoints = 4096;
    br.endpoints = eps;
    env.body_case = ZPS__ENVELOPE__BODY_BEAT_REPLY;
    env.beat_reply = &br;
    size_t packed = zps__envelope__get_packed_size(&env);
    ck_assert_msg(packed <= ZPS_MSG_MAX_ENVELOPE, "%zu", packed);
    Zps__TableReply tr = ZPS__TABLE_REPLY__INIT;
    zps_msg_env(&env, ZPS__MSG_TYPE__TABLE_REPLY, ZPS__ROLE__ROLE_SERVER, UINT32_MAX, UINT64_MAX);
    tr.version = UINT64_MAX;
    tr.table.data = enc;
    tr.table.len = len;
    tr.n_endpoints = 4096;
    tr.endpoints = eps;
    uint32_t retired[64];
    for (int i = 0; i < 64; i++)
        retired[i] = UINT32_MAX;
    tr.n_retired = 64;
    tr.retired = retired;
    env.body_case = ZPS__ENVELOPE__BODY_TABLE_REPLY;
    env.table_reply = &tr;
    packed = zps__envelope__get_packed_size(&env);
    ck_assert_msg(packed <= ZPS_MSG_MAX_ENVELOPE, "%zu", packed);
    free(eps);
    free(enc);
    free(t);
    s_close(&x);
}
END_TEST

/* A coordinator of ns servers (+ slots) at time 0, every server beaten. */
static void s_open_slots(s_fix_t *x, uint32_t ns, uint32_t r, uint32_t slots)
{
    ps_coord_conf_t conf;
    ps_coord_conf_defaults(&conf);
    conf.nservers = ns;
    conf.replicas = r;
    conf.max_servers = slots;
    conf.failure_ms = 1000;
    char err[200];
    x->f = tmpfile();
    ck_assert_ptr_nonnull(x->f);
    x->log = zps_log_new("coord", 0, x->f);
    ck_assert_ptr_nonnull(x->log);
    x->c = ps_coord_new(&conf, x->log, 0, err, sizeof err);
    ck_assert_msg(x->c != NULL, "%s", err);
    ps_coord_reply_t rep;
    for (uint32_t i = 0; i < ns; i++)
        ck_assert_int_eq(s_beat(x, 0, i, 0, &rep), 0);
    ck_assert_ptr_nonnull(ps_coord_table(x->c));
    ck_assert_uint_eq(ps_coord_table(x->c)->nservers, slots);
}

/* Every range: nrep replicas, none lost, no join. */
static void s_settled(const zps_ranges_t *t, uint32_t nrep)
{
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        ck_assert_uint_eq(t->nrep[r], nrep);
        ck_assert_uint_eq(t->join[r], ZPS_NO_RANK);
    }
}

/* add-server: a spare in rank slot 2 of a 2-server job takes a third of
 * the primaries, as moves out of the servers with most; remove-server 0
 * moves all of 0's ranges to 1 and 2 (fewest first), then 0 is retired:
 * its beats say so, and it is no candidate.  Refusals name the reason. */
START_TEST(add_and_remove_server)
{
    s_fix_t x;
    ps_coord_reply_t rep;
    char msg[600];
    s_open_slots(&x, 2, 1, 4);
    const zps_ranges_t *t = ps_coord_table(x.c);
    /* refused: unknown endpoint, a slot never heard, a busy or only server */
    ck_assert_int_eq(ps_coord_add_server(x.c, 10, "tcp://127.0.0.1:7002", msg, sizeof msg),
                     ZPS_EINVAL);
    ck_assert_msg(strstr(msg, "no live server announces"), "%s", msg);
    ck_assert_int_eq(ps_coord_remove_server(x.c, 10, 3, msg, sizeof msg), ZPS_EINVAL);
    ck_assert_msg(strstr(msg, "not in the range table"), "%s", msg);
    /* the spare beats: no range lacks a replica, so it waits */
    ck_assert_int_eq(s_beat(&x, 100, 2, 0, &rep), 0);
    ck_assert(!rep.member);
    ck_assert_uint_eq(s_lines(&x, "server 2", "is ready to join, but every range has 1"), 1);
    ck_assert_int_eq(ps_coord_add_server(x.c, 150, "tcp://127.0.0.1:7002", msg, sizeof msg), 0);
    ck_assert_msg(strstr(msg, "server 2 takes 1365 ranges (1365 as primary)"), "%s", msg);
    ck_assert_uint_eq(t->version, 2);
    uint32_t from[3] = {0, 0, 0};
    for (uint32_t r = 0; r < ZPS_RANGES; r++)
        if (t->join[r] != ZPS_NO_RANK) {
            ck_assert_uint_eq(t->join[r], 2);
            ck_assert_uint_eq(t->out[r], t->rep[r][0]);
            ck_assert_uint_eq(t->donor[r], t->rep[r][0]);
            from[t->out[r]]++;
        }
    ck_assert(from[0] >= 682 && from[0] <= 683 && from[1] >= 682 && from[1] <= 683);
    ck_assert_uint_eq(t->inc[2], 1); /* a new process: clients start its numbering afresh */
    ck_assert_int_eq(ps_coord_add_server(x.c, 160, "2", msg, sizeof msg), ZPS_EBUSY);
    ck_assert_int_eq(s_beat(&x, 200, 2, 2, &rep), 0);
    ck_assert(rep.member);
    ck_assert_int_eq(s_beatj(&x, 250, 2, s_nonce(2), 2, 2, &rep), 0);
    s_settled(t, 1);
    uint32_t p;
    for (uint32_t i = 0; i < 3; i++) {
        ck_assert_uint_le(zps_ranges_count(t, i, &p), 1366);
        ck_assert_uint_ge(p, 1365);
    }
    /* added again: it holds its share already */
    ck_assert_int_eq(ps_coord_add_server(x.c, 300, "2", msg, sizeof msg), ZPS_EINVAL);
    ck_assert_msg(strstr(msg, "nothing to move"), "%s", msg);
    /* remove 0: its ranges go to 1 and 2 */
    uint64_t v = t->version;
    ck_assert_int_eq(ps_coord_remove_server(x.c, 300, 0, msg, sizeof msg), 0);
    ck_assert_uint_eq(t->version, v + 1);
    uint32_t to[3] = {0, 0, 0};
    for (uint32_t r = 0; r < ZPS_RANGES; r++)
        if (t->join[r] != ZPS_NO_RANK) {
            ck_assert_uint_eq(t->out[r], 0);
            to[t->join[r]]++;
        }
    ck_assert_uint_eq(to[0], 0);
    ck_assert_uint_eq(to[1] + to[2], 1365);
    ck_assert(to[1] >= 682 && to[2] >= 682);
    ck_assert_int_eq(ps_coord_remove_server(x.c, 310, 0, msg, sizeof msg), ZPS_EBUSY);
    ck_assert_int_eq(ps_coord_remove_server(x.c, 310, 1, msg, sizeof msg), ZPS_EBUSY);
    ck_assert_msg(strstr(msg, "joining"), "%s", msg);
    /* 0 still serves until the moves complete */
    ck_assert_int_eq(s_beat(&x, 350, 0, t->version, &rep), 0);
    ck_assert(rep.member && !rep.retired);
    ck_assert_int_eq(s_beatj(&x, 400, 1, s_nonce(1), t->version, v + 1, &rep), 0);
    ck_assert_int_eq(s_beatj(&x, 400, 2, s_nonce(2), t->version, v + 1, &rep), 0);
    s_settled(t, 1);
    ck_assert_uint_eq(zps_ranges_count(t, 0, NULL), 0);
    ck_assert_uint_eq(zps_ranges_count(t, 1, NULL) + zps_ranges_count(t, 2, NULL), 4096);
    ck_assert_uint_eq(s_lines(&x, "server 0 retired", NULL), 1);
    ck_assert_int_eq(s_beat(&x, 450, 0, t->version, &rep), 0);
    ck_assert(!rep.member && rep.retired && rep.lease_ms == 0);
    ck_assert(ps_coord_retired(x.c, 0));
    /* no candidate: nothing is offered to it when a range lacks replicas */
    ck_assert_uint_eq(s_lines(&x, "server 0", "joins"), 0);
    /* the only live server left is not removed */
    s_tick_to(&x, 450, 1600); /* 1 falls silent: kept (last replicas), not live */
    ck_assert_int_eq(s_beat(&x, 1600, 2, t->version, &rep), 0);
    ck_assert_int_eq(ps_coord_remove_server(x.c, 1600, 2, msg, sizeof msg), ZPS_EINVAL);
    ck_assert_msg(strstr(msg, "only live server"), "%s", msg);
    ps_coord_stats_t st;
    ps_coord_get_stats(x.c, &st);
    ck_assert_uint_eq(st.moves_started, 2730);
    ck_assert_uint_eq(st.retired, 1);
    s_close(&x);
}
END_TEST

/* remove-server with 2 replicas of 3 servers: each range of 0 moves to the
 * one server not holding it; that joiner fails: its moves are dropped, and
 * the coordinator plans again -- to the survivor where it does not hold
 * the range, else 0 just leaves the chain (one replica fewer).  In the end
 * 0 is retired and nothing is lost. */
START_TEST(remove_server_replans)
{
    s_fix_t x;
    ps_coord_reply_t rep;
    char msg[600];
    s_open_slots(&x, 3, 2, 3);
    const zps_ranges_t *t = ps_coord_table(x.c);
    ck_assert_int_eq(ps_coord_remove_server(x.c, 10, 0, msg, sizeof msg), 0);
    uint32_t moving = 0;
    for (uint32_t r = 0; r < ZPS_RANGES; r++)
        if (t->join[r] != ZPS_NO_RANK) {
            ck_assert(!zps_ranges_has(t, r, t->join[r]));
            moving++;
        }
    ck_assert_uint_eq(moving, zps_ranges_count(t, 0, NULL));
    /* 1 falls silent (a joiner of some, replica of others): removed */
    int64_t now = 10;
    for (; now <= 1200; now += 50) {
        s_beat(&x, now, 0, t->version, &rep);
        s_beat(&x, now, 2, t->version, &rep);
        ps_coord_tick(x.c, now);
    }
    ck_assert_uint_eq(s_lines(&x, "removed server 1", NULL), 1);
    ck_assert_uint_eq(zps_ranges_lost(t), 0);
    /* replanned: every range 0 still holds moves to 2, or 2 holds it */
    for (uint32_t r = 0; r < ZPS_RANGES; r++)
        if (zps_ranges_has(t, r, 0)) {
            ck_assert_msg(t->join[r] == 2 || zps_ranges_has(t, r, 2), "range %u", r);
            ck_assert(t->join[r] == ZPS_NO_RANK || t->out[r] == 0);
        }
    uint64_t cut = 0;
    for (uint32_t r = 0; r < ZPS_RANGES; r++)
        if (t->join[r] == 2)
            cut = t->cut[r];
    ck_assert_uint_ne(cut, 0);
    ck_assert_int_eq(s_beatj(&x, now, 2, s_nonce(2), t->version, cut, &rep), 0);
    ck_assert_uint_eq(zps_ranges_count(t, 0, NULL), 0);
    ck_assert_uint_eq(zps_ranges_count(t, 2, NULL), 4096);
    ck_assert_uint_eq(zps_ranges_lost(t), 0);
    ck_assert_int_eq(s_beat(&x, now + 50, 0, t->version, &rep), 0);
    ck_assert(rep.retired);
    s_close(&x);
}
END_TEST

/* Re-replication: 3 servers, 2 replicas; server 1 falls silent and is
 * removed; no server process joins; rereplicate_ms later every range short
 * of a replica gets the survivor that lacks it (one cut), and once both
 * report the cut every range has 2 replicas again on servers 0 and 2.
 * Off with rereplicate_ms 0. */
START_TEST(rereplicate_onto_survivors)
{
    for (int off = 0; off < 2; off++) {
        s_fix_t x;
        ps_coord_reply_t rep;
        ps_coord_conf_t conf;
        ps_coord_conf_defaults(&conf);
        conf.nservers = 3;
        conf.replicas = 2;
        conf.failure_ms = 1000;
        conf.rereplicate_ms = off ? 0 : 2000;
        char err[200];
        x.f = tmpfile();
        x.log = zps_log_new("coord", 0, x.f);
        x.c = ps_coord_new(&conf, x.log, 0, err, sizeof err);
        ck_assert_ptr_nonnull(x.c);
        for (uint32_t i = 0; i < 3; i++)
            ck_assert_int_eq(s_beat(&x, 0, i, 0, &rep), 0);
        const zps_ranges_t *t = ps_coord_table(x.c);
        int64_t now = 0;
        for (; now <= 1200; now += 50) {
            s_beat(&x, now, 0, t->version, &rep);
            s_beat(&x, now, 2, t->version, &rep);
            ps_coord_tick(x.c, now);
        }
        ck_assert_uint_eq(s_lines(&x, "removed server 1", NULL), 1);
        uint32_t shortn = 0;
        for (uint32_t r = 0; r < ZPS_RANGES; r++)
            shortn += t->nrep[r] == 1;
        ck_assert_uint_gt(shortn, 2000);
        uint64_t v = t->version;
        /* not before rereplicate_ms */
        for (; now <= 2600; now += 50) {
            s_beat(&x, now, 0, t->version, &rep);
            s_beat(&x, now, 2, t->version, &rep);
            ps_coord_tick(x.c, now);
        }
        ck_assert_uint_eq(t->version, v);
        for (; now <= 4000; now += 50) {
            s_beat(&x, now, 0, t->version, &rep);
            s_beat(&x, now, 2, t->version, &rep);
            ps_coord_tick(x.c, now);
        }
        if (off) {
            ck_assert_uint_eq(t->version, v);
            ck_assert_uint_eq(s_lines(&x, "re-replicating", NULL), 0);
            s_close(&x);
            continue;
        }
        ck_assert_uint_eq(t->version, v + 1);
        ck_assert_uint_eq(s_lines(&x, "re-replicating", "onto live servers"), 1);
        uint32_t joining = 0;
        for (uint32_t r = 0; r < ZPS_RANGES; r++)
            if (t->join[r] != ZPS_NO_RANK) {
                ck_assert(t->join[r] == 0 || t->join[r] == 2);
                ck_assert(!zps_ranges_has(t, r, t->join[r]));
                ck_assert_uint_eq(t->out[r], ZPS_NO_RANK);
                joining++;
            }
        ck_assert_uint_eq(joining, shortn);
        ck_assert_int_eq(s_beatj(&x, now, 0, s_nonce(0), t->version, v + 1, &rep), 0);
        ck_assert_int_eq(s_beatj(&x, now, 2, s_nonce(2), t->version, v + 1, &rep), 0);
        for (uint32_t r = 0; r < ZPS_RANGES; r++) {
            ck_assert_uint_eq(t->nrep[r], 2);
            ck_assert(zps_ranges_has(t, r, 0) && zps_ranges_has(t, r, 2));
            ck_assert_uint_eq(t->join[r], ZPS_NO_RANK);
        }
        ps_coord_stats_t st;
        ps_coord_get_stats(x.c, &st);
        ck_assert_uint_eq(st.rereplicated, shortn);
        s_close(&x);
    }
}
END_TEST

/* A restored process's beat: its checkpoint's wall time and (when asked)
 * table, then the beat itself. */
static int s_beat_restored(s_fix_t *x, int64_t now, uint32_t rank, uint64_t nonce, uint64_t wall,
                           const zps_ranges_t *t, ps_coord_reply_t *rep)
{
    uint8_t *buf = malloc(zps_ranges_encoded_size(t));
    ck_assert_ptr_nonnull(buf);
    size_t len = zps_ranges_encode(t, buf, zps_ranges_encoded_size(t));
    int want = ps_coord_restored(x->c, now, rank, nonce, wall, NULL, 0);
    if (want)
        ck_assert_int_eq(ps_coord_restored(x->c, now, rank, nonce, wall, buf, len), 0);
    free(buf);
    /* asked once per process: the table arrived */
    ck_assert_int_eq(ps_coord_restored(x->c, now, rank, nonce, wall, NULL, 0), 0);
    return s_beatj(x, now, rank, nonce, 0, 0, rep);
}

/* The whole job restarted from checkpoints: server 0's is the oldest and
 * was written under table 3 (default chains), servers 1 and 2 wrote theirs
 * later under table 5, after server 0 had been removed.  Every range gets
 * the newest copy: server 0 is the source of none; the ranges both 1 and 2
 * hold come from 1 (the newest); then the other replicas are copied. */
START_TEST(restore_newest_copy)
{
    s_fix_t x;
    s_open(&x, 3, 2, 1000, 0);
    zps_ranges_t *old = malloc(sizeof *old), *late = malloc(sizeof *late);
    ck_assert_ptr_nonnull(old);
    ck_assert_ptr_nonnull(late);
    zps_ranges_init(old, 3, 2);
    old->version = 3;
    *late = *old;
    zps_ranges_remove(late, 0, NULL);
    late->version = 5;
    ps_coord_reply_t rep;
    /* a bad table (another R) is refused and not used */
    zps_ranges_t *bad = malloc(sizeof *bad);
    ck_assert_ptr_nonnull(bad);
    zps_ranges_init(bad, 3, 2);
    zps_ranges_set_slots(bad, 6);
    bad->version = 9;
    ck_assert_int_eq(s_beat_restored(&x, 0, 0, 50, 900, bad, &rep), 0);
    ck_assert(!rep.member);
    ck_assert_int_eq(s_beat_restored(&x, 10, 0, 100, 1000, old, &rep), 0);
    ck_assert_int_eq(s_beat_restored(&x, 20, 1, 101, 3000, late, &rep), 0);
    ck_assert_int_eq(s_beat_restored(&x, 30, 2, 102, 2000, late, &rep), 0);
    ck_assert(!rep.member); /* nothing decided before the grace */
    ck_assert_ptr_null(ps_coord_table(x.c));
    for (int64_t t = 100; t <= 1100; t += 100) {
        s_beatj(&x, t, 0, 100, 0, 0, &rep);
        s_beatj(&x, t, 1, 101, 0, 0, &rep);
        s_beatj(&x, t, 2, 102, 0, 0, &rep);
        ps_coord_tick(x.c, t);
    }
    const zps_ranges_t *t = ps_coord_table(x.c);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_gt(t->version, 5);
    ck_assert_uint_eq(zps_ranges_lost(t), 0);
    ps_coord_stats_t st;
    ps_coord_get_stats(x.c, &st);
    ck_assert_uint_eq(st.restored, ZPS_RANGES);
    ck_assert_uint_ge(st.bad_tables, 1);
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        uint32_t p = t->rep[r][0];
        ck_assert_uint_ne(p, 0);
        if (zps_ranges_has(late, r, 1))
            ck_assert_uint_eq(p, 1); /* 1's copy is the newest */
        else
            ck_assert_uint_eq(p, 2);
    }
    ck_assert_uint_ne(t->inc[1], late->inc[1]); /* clients number from 1 again */
    ck_assert_uint_ne(t->inc[2], late->inc[2]);
    ck_assert_uint_eq(s_lines(&x, "restored 4096 ranges from the newest checkpoint copy", NULL), 1);
    /* the other replicas follow at once (server 0 as a candidate, 1 and 2
     * by re-replication) */
    for (int64_t now = 1150; now <= 1400; now += 50) {
        s_beatj(&x, now, 0, 100, 0, 0, &rep);
        ps_coord_tick(x.c, now);
    }
    ps_coord_get_stats(x.c, &st);
    ck_assert_uint_gt(st.joins_started, 0);
    free(old);
    free(late);
    free(bad);
    s_close(&x);
}
END_TEST

/* A running job loses every replica of some ranges (servers 1 and 2 die
 * together and come back as new processes, restored): after a grace of
 * failure_ms the lost ranges get the newest restored copy; nothing else
 * changes hands. */
START_TEST(restore_lost_ranges)
{
    s_fix_t x;
    s_open(&x, 3, 2, 1000, 0);
    ps_coord_reply_t rep;
    for (uint32_t r = 0; r < 3; r++)
        s_beat(&x, 0, r, 0, &rep);
    zps_ranges_t *t0 = malloc(sizeof *t0);
    ck_assert_ptr_nonnull(t0);
    *t0 = *ps_coord_table(x.c);
    /* new processes of 1 and 2: removed at once; the ranges of chain (1, 2) are lost */
    ck_assert_int_eq(s_beat_restored(&x, 100, 1, 201, 5000, t0, &rep), 0);
    ck_assert_int_eq(s_beat_restored(&x, 100, 2, 202, 6000, t0, &rep), 0);
    ps_coord_stats_t st;
    ps_coord_get_stats(x.c, &st);
    uint32_t lost = st.lost;
    ck_assert_uint_gt(lost, 0);
    ck_assert_uint_eq(st.restored, 0);
    for (int64_t now = 150; now <= 1300; now += 50) {
        s_beatj(&x, now, 0, s_nonce(0), ps_coord_table(x.c)->version, 0, &rep);
        s_beatj(&x, now, 1, 201, 0, 0, &rep);
        s_beatj(&x, now, 2, 202, 0, 0, &rep);
        ps_coord_tick(x.c, now);
    }
    ps_coord_get_stats(x.c, &st);
    ck_assert_uint_eq(st.lost, 0);
    ck_assert_uint_eq(st.restored, lost);
    const zps_ranges_t *t = ps_coord_table(x.c);
    for (uint32_t r = 0; r < ZPS_RANGES; r++)
        if (t0->nrep[r] == 2 && t0->rep[r][0] == 1 && t0->rep[r][1] == 2)
            ck_assert_uint_eq(t->rep[r][0], 2); /* 2's checkpoint is the newer */
        else
            ck_assert_uint_eq(t->rep[r][0], 0); /* server 0 kept what it had */
    free(t0);
    s_close(&x);
}
END_TEST

Suite *suite_coord(void)
{
    Suite *s = suite_create("coord");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, conf_checked);
    tcase_add_test(tc, build_after_all_beat);
    tcase_add_test(tc, failure_removes_after_timeout);
    tcase_add_test(tc, restarted_process_removed);
    tcase_add_test(tc, coordinator_restart_adopts_highest);
    tcase_add_test(tc, coordinator_restart_removes_new_processes);
    tcase_add_test(tc, stall_not_counted);
    tcase_add_test(tc, bad_beats_refused);
    tcase_add_test(tc, join_after_restart);
    tcase_add_test(tc, join_donor_fails);
    tcase_add_test(tc, join_joiner_fails);
    tcase_add_test(tc, join_nothing_to_take);
    tcase_add_test(tc, join_survives_restart);
    tcase_add_test(tc, join_two_candidates);
    tcase_add_test(tc, reply_fits);
    tcase_add_test(tc, add_and_remove_server);
    tcase_add_test(tc, remove_server_replans);
    tcase_add_test(tc, rereplicate_onto_survivors);
    tcase_add_test(tc, restore_newest_copy);
    tcase_add_test(tc, restore_lost_ranges);
    suite_add_tcase(s, tc);
    return s;
}
