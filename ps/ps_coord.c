/* ps_coord: the coordinator's state (see ps_coord.h for the rules).
 *
 * Per rank: the process nonce of its last beat, its endpoint, the time of
 * its last beat, whether it has beaten since this coordinator started, the
 * table version it last reported, and whether it is in some chain of the
 * table (cached, so a tick is O(S), not O(S x 4096)).  The table is kept
 * encoded as well (re-encoded on every change), since most beats of a
 * changed table carry it.
 *
 * Joining (ps_coord.h): per rank also the nonce of the process that was
 * last removed (a beat with that nonce is not a candidate: that process
 * may hold a partial or stale copy and must reset itself first), when its
 * joins began (for the completion line) and whether "ready to join" was
 * said already.
 *
 * Log classes 0..7 of the log are this module's (rate-limited events that
 * peers can cause); zps-coord's main uses 8 and up. */
#include "ps_coord.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zps_err.h"
#include "zps_msg.h"

enum { LC_ENDPOINT = 0, LC_NONCE = 1, LC_TABLE = 2, LC_NEWER = 3, LC_STALL = 4 };

#define S_MAX_FAILURE_MS 86400000u
/* the largest encoding (format 3): header, then per range nrep, its ranks
 * and the joiner, plus donor, cut and out with a join (a move may have a
 * full chain): at most 1 + 2 x 3 + 2 + 12 = 21 bytes; then 4 bytes of
 * incarnation per rank slot */
#define S_ENC_RANGE_MAX (1u + 2u * ZPS_MAX_REPLICAS + 2u + 12u)
#define S_ENC_MAX (28u + ZPS_RANGES * S_ENC_RANGE_MAX + 4u * ZPS_RANGES_MAX_SERVERS)

typedef struct {
    uint64_t nonce;       /* 0: not heard since start */
    int64_t last_ms;
    uint64_t reported;    /* table version of its last beat */
    int heard;
    int member;           /* in some chain or joining (valid with c->have) */
    uint64_t stale_nonce; /* the process last removed (0: none known) */
    int64_t join_ms;      /* when its joins began (or the table was adopted) */
    int join_known;       /* join_ms is the start, not the adoption */
    int ready_said;       /* "ready to join" logged for this process */
    int kept_said;        /* "kept: last replica" logged for this silence */
    int retiring;         /* remove-server: being drained */
    uint64_t retired_nonce; /* the process drained (its beats are answered retired) */
    int stuck_said;       /* "cannot drain: no server to take" logged */
    char endpoint[PS_COORD_MAX_ENDPOINT + 1];
    /* restore: the process that restored a checkpoint, written at rst_ms,
     * holding a copy of the ranges in rmask (rst_have 1; -1: its table was
     * bad; 0: not received yet).  Only ranges with no replica have bits
     * (in a running job: lost when the copy came); a range's bits are all
     * cleared when a copy is chosen or the range is joined: the other
     * copies are stale from then on, and their servers delete them */
    uint64_t rst_nonce, rst_ms;
    int rst_have;
    uint8_t rmask[ZPS_RANGES / 8];
} s_rank_t;

struct ps_coord {
    ps_coord_conf_t conf;
    zps_log_t *log;
    int64_t start_ms;
    int64_t grace_end_ms;     /* recovering: when the grace ends */
    size_t max_endpoint;      /* endpoints kept up to this length */
    int have;                 /* the table is built or adopted */
    zps_ranges_t table;
    uint8_t enc[S_ENC_MAX];   /* its encoding */
    size_t enc_len;
    int recovering;           /* restarted: a beat reported a table before we had one */
    int have_best;
    zps_ranges_t best;        /* the highest table reported while recovering */
    uint32_t best_rank;
    int grace_warned;
    int64_t last_tick_ms;
    uint32_t nheard;
    uint32_t nheard0;         /* of the first nservers ranks (the table is built when all are) */
    int64_t short_since_ms;   /* some range short of replicas since (0: none) */
    /* restore (ps_coord.h): the newest table a restored checkpoint held,
     * when the first restored copy came, and when lost ranges with a
     * restored copy were first seen (the copies of a grace are compared) */
    int have_rst;
    zps_ranges_t rst_best;
    int64_t rst_first_ms, rst_pending_ms;
    s_rank_t *ranks;
    ps_coord_stats_t st;
};

void ps_coord_conf_defaults(ps_coord_conf_t *conf)
{
    memset(conf, 0, sizeof *conf);
    conf->nservers = 1;
    conf->replicas = 1;
    conf->failure_ms = PS_COORD_FAILURE_MS_DEFAULT;
    conf->rereplicate_ms = PS_COORD_REREPLICATE_MS_DEFAULT;
    conf->restore_wait_ms = PS_COORD_RESTORE_WAIT_MS_DEFAULT;
}

ps_coord_t *ps_coord_new(const ps_coord_conf_t *conf, zps_log_t *log, int64_t now_ms, char *err,
                         size_t errlen)
{
    if (conf->nservers == 0 || conf->nservers > ZPS_RANGES_MAX_SERVERS) {
        snprintf(err, errlen, "--num-servers %u: expected 1..%u", conf->nservers,
                 ZPS_RANGES_MAX_SERVERS);
        return NULL;
    }
    if (conf->max_servers && (conf->max_servers < conf->nservers ||
                              conf->max_servers > ZPS_RANGES_MAX_SERVERS)) {
        snprintf(err, errlen, "--max-servers %u: expected %u..%u (at least --num-servers)",
                 conf->max_servers, conf->nservers, ZPS_RANGES_MAX_SERVERS);
        return NULL;
    }
    if (conf->replicas == 0 || conf->replicas > ZPS_MAX_REPLICAS) {
        snprintf(err, errlen, "--replicas %u: expected 1..%u", conf->replicas, ZPS_MAX_REPLICAS);
        return NULL;
    }
    if (conf->failure_ms < 2 || conf->failure_ms > S_MAX_FAILURE_MS) {
        snprintf(err, errlen, "--failure-timeout-ms %u: expected 2..%u", conf->failure_ms,
                 S_MAX_FAILURE_MS);
        return NULL;
    }
    uint32_t slots = conf->max_servers ? conf->max_servers : conf->nservers;
    ps_coord_t *c = calloc(1, sizeof *c);
    if (!c || !(c->ranks = calloc(slots, sizeof *c->ranks))) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->conf = *conf;
    c->conf.max_servers = slots;
    if (c->conf.replicas > c->conf.nservers)
        c->conf.replicas = c->conf.nservers;
    c->log = log;
    c->start_ms = now_ms;
    c->last_tick_ms = now_ms;
    /* every endpoint fits one TABLE_REPLY with the largest table: an
     * endpoint takes its length + 3 bytes there */
    size_t room = (ZPS_MSG_MAX_ENVELOPE - S_ENC_MAX - 4096) / c->conf.max_servers;
    c->max_endpoint = room - 3 < PS_COORD_MAX_ENDPOINT ? room - 3 : PS_COORD_MAX_ENDPOINT;
    return c;
}

void ps_coord_destroy(ps_coord_t **cp)
{
    if (!cp || !*cp)
        return;
    free((*cp)->ranks);
    free(*cp);
    *cp = NULL;
}

/* The table changed: its encoding and the member flags follow. */
static void s_changed(ps_coord_t *c)
{
    c->enc_len = zps_ranges_encode(&c->table, c->enc, sizeof c->enc);
    for (uint32_t i = 0; i < c->conf.max_servers; i++)
        c->ranks[i].member = 0;
    uint32_t members = 0;
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        for (uint32_t i = 0; i < c->table.nrep[r]; i++) {
            s_rank_t *k = &c->ranks[c->table.rep[r][i]];
            members += !k->member;
            k->member = 1;
        }
        if (c->table.join[r] != ZPS_NO_RANK && c->table.join[r] < c->conf.max_servers) {
            s_rank_t *k = &c->ranks[c->table.join[r]];
            members += !k->member;
            k->member = 1;
            k->rmask[r >> 3] &= (uint8_t)~(1u << (r & 7)); /* its copy is reset */
        }
    }
    c->st.members = members;
    c->st.version = c->table.version;
    c->st.lost = zps_ranges_lost(&c->table);
    for (uint32_t i = 0; i < c->conf.max_servers; i++) {
        s_rank_t *k = &c->ranks[i];
        if (!k->retiring || k->member)
            continue;
        /* drained: every range it held has moved */
        k->retiring = 0;
        k->retired_nonce = k->nonce;
        k->stale_nonce = k->nonce; /* not a candidate: it exits */
        c->st.retired++;
        zps_info(c->log, "server %u retired: every range it held has moved (table version %llu, "
                 "%u servers in the table); it stops", i, (unsigned long long)c->table.version,
                 members);
    }
}

static const char *s_ep(const ps_coord_t *c, uint32_t rank, char *buf, size_t len)
{
    const char *e = c->ranks[rank].endpoint;
    if (!e[0])
        return "no endpoint";
    return zps_log_escape(e, strlen(e), buf, len, ZPS_LOG_WIRE_CHARS);
}

/* Take rank out of every chain and join, with the log lines an operator
 * needs.  Its process (nonce) may not be a candidate any more. */
static void s_remove_one(ps_coord_t *c, uint32_t rank, const char *why)
{
    uint32_t lost = 0;
    char ep[ZPS_LOG_WIRE_BUF];
    zps_ranges_remove(&c->table, rank, &lost);
    s_changed(c);
    c->st.removals++;
    c->ranks[rank].retiring = 0;
    c->ranks[rank].stale_nonce = c->ranks[rank].nonce;
    c->ranks[rank].ready_said = 0;
    zps_warn(c->log, "removed server %u (%s): %s; table version %llu, %u of %u servers left, "
             "%u ranges with no replica", rank, s_ep(c, rank, ep, sizeof ep), why,
             (unsigned long long)c->table.version, c->st.members, c->conf.nservers, lost);
    if (lost)
        zps_error(c->log, "%u of %u ranges have lost every replica: the job cannot continue "
                  "without restoring checkpoints", lost, ZPS_RANGES);
}

/* Remove rank; when it was a donor, also every joiner copying from it:
 * zps_ranges_remove drops those joins, and a joiner's copy of the other
 * ranges it joins was begun at the same cut and is of no use alone (it
 * resets itself when it sees it is out, and joins afresh).  Returns the
 * ranks removed. */
static uint32_t s_remove(ps_coord_t *c, uint32_t rank, const char *why)
{
    uint8_t *joiner = calloc(c->conf.max_servers, 1);
    uint32_t n = 1;
    for (uint32_t r = 0; joiner && r < ZPS_RANGES; r++)
        if (c->table.join[r] != ZPS_NO_RANK && c->table.donor[r] == rank &&
            c->table.join[r] < c->conf.max_servers)
            joiner[c->table.join[r]] = 1;
    s_remove_one(c, rank, why);
    char why2[96];
    snprintf(why2, sizeof why2, "its donor server %u was removed: its copy is incomplete", rank);
    for (uint32_t j = 0; joiner && j < c->conf.max_servers; j++) {
        if (!joiner[j] || j == rank || !c->ranks[j].member)
            continue;
        s_remove_one(c, j, why2);
        c->st.joiners_removed++;
        n++;
    }
    if (!joiner)
        zps_warn(c->log, "out of memory finding the joiners of server %u", rank);
    free(joiner);
    return n;
}

static void s_build(ps_coord_t *c)
{
    zps_ranges_init(&c->table, c->conf.nservers, c->conf.replicas); /* conf checked in _new */
    zps_ranges_set_slots(&c->table, c->conf.max_servers);
    c->have = 1;
    s_changed(c);
    uint32_t lo = ZPS_RANGES / c->conf.nservers, hi = lo + (ZPS_RANGES % c->conf.nservers != 0);
    char per[32];
    if (lo == hi)
        snprintf(per, sizeof per, "%u", lo);
    else
        snprintf(per, sizeof per, "%u or %u", lo, hi);
    zps_info(c->log, "table version 1: %u servers, %u replicas, %s ranges per server as primary, "
             "%u ranges in all", c->conf.nservers, c->conf.replicas, per, ZPS_RANGES);
}

/* A table reported by a server fits this coordinator (its rank slots and
 * R): 0, or ZPS_EPROTO with err saying how not. */
static int s_fits(const ps_coord_t *c, const zps_ranges_t *t, char *err, size_t errlen)
{
    if (t->nservers == c->conf.max_servers && t->replicas == c->conf.replicas)
        return 0;
    snprintf(err, errlen, "it has %u server slots and %u replicas, this coordinator %u and %u",
             t->nservers, t->replicas, c->conf.max_servers, c->conf.replicas);
    return ZPS_EPROTO;
}

/* ---- restore from checkpoints ------------------------------------------------ */

static int s_in(const uint8_t *mask, uint32_t r)
{
    return mask[r >> 3] >> (r & 7) & 1;
}

static uint32_t s_restore_lost(ps_coord_t *c, int64_t now_ms);

/* Lost ranges (no replica, no join) that a live restored process holds a
 * copy of: each gets the copy of the newest checkpoint (latest wall time;
 * ties: the lowest rank) as its one replica, in one new version.  A
 * process given ranges that was no member is a new incarnation (clients
 * number from 1 with it).  Returns the ranges given. */
static uint32_t s_restore_lost(ps_coord_t *c, int64_t now_ms)
{
    zps_ranges_t *t = &c->table;
    uint32_t M = c->conf.max_servers, n = 0;
    uint32_t *got = calloc(M, sizeof *got);
    uint8_t *was = calloc(M, 1);
    if (!got || !was) {
        free(got);
        free(was);
        zps_warn(c->log, "out of memory restoring lost ranges");
        return 0;
    }
    for (uint32_t i = 0; i < M; i++)
        was[i] = (uint8_t)c->ranks[i].member;
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        if (t->nrep[r] || t->join[r] != ZPS_NO_RANK)
            continue;
        uint32_t j = UINT32_MAX;
        for (uint32_t i = 0; i < M; i++) {
            const s_rank_t *k = &c->ranks[i];
            if (k->rst_have != 1 || k->rst_nonce != k->nonce || !s_in(k->rmask, r) ||
                k->retiring || k->nonce == k->stale_nonce ||
                now_ms - k->last_ms > (int64_t)c->conf.failure_ms)
                continue;
            if (j == UINT32_MAX || k->rst_ms > c->ranks[j].rst_ms)
                j = i;
        }
        if (j != UINT32_MAX && zps_ranges_restore(t, r, j) == 0) {
            /* the other copies are older and never used now: their
             * servers may delete those rows (--left-rows-ms) */
            for (uint32_t i = 0; i < M; i++)
                c->ranks[i].rmask[r >> 3] &= (uint8_t)~(1u << (r & 7));
            got[j]++;
            n++;
        }
    }
    if (n) {
        t->version++;
        for (uint32_t i = 0; i < M; i++)
            if (got[i] && !was[i])
                t->inc[i]++;
        s_changed(c);
        c->st.restored += n;
        char list[400];
        size_t off = 0;
        list[0] = 0;
        for (uint32_t i = 0; i < M && off < sizeof list; i++)
            if (got[i]) {
                int w = snprintf(list + off, sizeof list - off, "%sserver %u: %u (checkpoint "
                                 "of wall time %llu ms)", off ? ", " : "", i, got[i],
                                 (unsigned long long)c->ranks[i].rst_ms);
                off += w > 0 ? (size_t)w : 0;
            }
        zps_info(c->log, "restored %u ranges from the newest checkpoint copy of each at version "
                 "%llu (%s); %u ranges have no replica", n, (unsigned long long)t->version, list,
                 c->st.lost);
        /* the other replicas are copied from these at once */
        if (c->conf.rereplicate_ms)
            c->short_since_ms = now_ms - (int64_t)c->conf.rereplicate_ms;
    }
    free(got);
    free(was);
    return n;
}

/* A restarted coordinator with no live table, and servers that restored
 * checkpoints: once every member of the newest restored table has beaten
 * (or restore_wait_ms has passed since the first restored copy), start
 * from that table with every chain empty and give each range the newest
 * copy (s_restore_lost).  Ranges no checkpoint holds stay lost. */
static void s_restore_build(ps_coord_t *c, int64_t now_ms)
{
    uint32_t missing = 0;
    uint8_t *in = calloc(c->conf.max_servers, 1);
    if (!in)
        return;
    for (uint32_t r = 0; r < ZPS_RANGES; r++)
        for (uint32_t i = 0; i < c->rst_best.nrep[r]; i++)
            in[c->rst_best.rep[r][i]] = 1; /* < max_servers: checked on decode */
    for (uint32_t i = 0; i < c->conf.max_servers; i++)
        missing += in[i] && !c->ranks[i].heard;
    free(in);
    if (missing && now_ms - c->rst_first_ms < (int64_t)c->conf.restore_wait_ms) {
        if (!c->grace_warned)
            zps_info(c->log, "restoring from checkpoints: waiting for %u more servers of table "
                     "version %llu (at most %u ms)", missing,
                     (unsigned long long)c->rst_best.version, c->conf.restore_wait_ms);
        c->grace_warned = 1;
        return;
    }
    zps_ranges_t *t = &c->table;
    *t = c->rst_best;
    t->version = c->rst_best.version + 1;
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        t->nrep[r] = 0;
        t->join[r] = ZPS_NO_RANK;
        t->donor[r] = 0;
        t->cut[r] = 0;
        t->out[r] = ZPS_NO_RANK;
    }
    c->have = 1;
    c->recovering = 0;
    s_changed(c);
    zps_info(c->log, "restoring from checkpoints: no server holds a live table; starting from "
             "the newest restored table (version %llu)%s", (unsigned long long)c->rst_best.version,
             missing ? "; some of its servers never beat" : "");
    s_restore_lost(c, now_ms);
    c->rst_pending_ms = 0;
    if (c->st.lost)
        zps_error(c->log, "%u of %u ranges are in no restored checkpoint: they have no replica "
                  "(clients fail with ZPS_ELOST)", c->st.lost, ZPS_RANGES);
}

static int s_alive(const ps_coord_t *c, uint32_t rank, int64_t now_ms);

/* Does range r have a live replica (one that beats: a silent last replica
 * kept in the table does not count) other than but? */
static int s_lives(const ps_coord_t *c, uint32_t r, uint32_t but, int64_t now_ms)
{
    const zps_ranges_t *t = &c->table;
    for (uint32_t i = 0; i < t->nrep[r]; i++)
        if (t->rep[r][i] != but && s_alive(c, t->rep[r][i], now_ms))
            return 1;
    return 0;
}

int ps_coord_restored(ps_coord_t *c, int64_t now_ms, uint32_t rank, uint64_t nonce,
                      uint64_t wall_ms, const uint8_t *table, size_t table_len)
{
    if (rank >= c->conf.max_servers || nonce == 0 || wall_ms == 0)
        return 0;
    s_rank_t *k = &c->ranks[rank];
    if (k->rst_nonce != nonce) {
        k->rst_nonce = nonce;
        k->rst_ms = wall_ms;
        k->rst_have = 0;
        memset(k->rmask, 0, sizeof k->rmask);
    }
    if (k->rst_have)
        return 0;
    if (!table || !table_len)
        return 1;
    zps_ranges_t *t = malloc(sizeof *t);
    char err[200];
    int rc = t ? zps_ranges_decode(t, table, table_len, err, sizeof err) : ZPS_ENOMEM;
    if (rc == 0)
        rc = s_fits(c, t, err, sizeof err);
    if (rc != 0) {
        c->st.bad_tables++;
        k->rst_have = -1;
        zps_log_burst(c->log, ZPS_LOG_WARN, LC_TABLE, 20, 10000, "the restored checkpoint of "
                      "server %u is not used: %s%s", rank, t ? err : "out of memory",
                      c->have ? "" : " (start zps-coord with the job's --num-servers, "
                      "--max-servers and --replicas; until then no table is built)");
        free(t);
        return 0;
    }
    /* a running job: only the ranges lost now can use this copy (the
     * others have live replicas, newer than any checkpoint); the server
     * deletes its rows of ranges that have replicas elsewhere */
    uint32_t n = 0;
    /* (this rank's entries in the table are its previous process's, which
     * this beat removes when the nonce changed) */
    int gone = k->nonce != nonce;
    for (uint32_t r = 0; r < ZPS_RANGES; r++)
        if (zps_ranges_has(t, r, rank) &&
            !(c->have && s_lives(c, r, gone ? rank : UINT32_MAX, now_ms))) {
            k->rmask[r >> 3] |= (uint8_t)(1u << (r & 7));
            n++;
        }
    k->rst_have = 1;
    if (!c->rst_first_ms)
        c->rst_first_ms = now_ms;
    if (!c->have_rst || t->version > c->rst_best.version) {
        c->rst_best = *t;
        c->have_rst = 1;
    }
    zps_info(c->log, "server %u restored a checkpoint written at wall time %llu ms holding a copy "
             "of %u ranges (table version %llu)", rank, (unsigned long long)wall_ms, n,
             (unsigned long long)t->version);
    free(t);
    return 0;
}

/* A restarted coordinator: adopt the best table reported once the grace
 * is over, then remove the members it has no live process of.  With no
 * valid table by then, and every server now beating without one (the
 * reports were a hostile or broken peer's, or every server restarted too):
 * build a new table, as at a fresh start. */
static uint32_t s_maybe_adopt(ps_coord_t *c, int64_t now_ms)
{
    if (c->have || !c->recovering || now_ms < c->grace_end_ms)
        return 0;
    if (!c->have_best) {
        uint32_t fresh = 0;
        for (uint32_t i = 0; i < c->conf.max_servers; i++) {
            const s_rank_t *k = &c->ranks[i];
            if (k->heard && k->rst_nonce == k->nonce && k->rst_have != 1)
                return 0; /* a restored checkpoint's table is on its way, or does not
                             fit this coordinator: never build afresh over it */
            fresh += k->heard && k->reported == 0 && k->rst_nonce != k->nonce;
        }
        if (c->have_rst) {
            s_restore_build(c, now_ms);
            return 0;
        }
        if (fresh == c->nheard && c->nheard0 == c->conf.nservers) {
            zps_warn(c->log, "no valid table was reported and every server now beats without "
                     "one: starting afresh");
            c->recovering = 0;
            s_build(c);
            return 0;
        }
        if (!c->grace_warned)
            zps_warn(c->log, "grace of %u ms over and no valid table reported yet: waiting for "
                     "one (servers refuse requests meanwhile)", c->conf.failure_ms);
        c->grace_warned = 1;
        return 0;
    }
    c->table = c->best;
    c->have = 1;
    c->recovering = 0;
    s_changed(c);
    for (uint32_t r = 0; r < ZPS_RANGES; r++)
        if (c->table.join[r] != ZPS_NO_RANK) {
            c->ranks[c->table.join[r]].join_ms = now_ms;
            c->ranks[c->table.join[r]].join_known = 0;
        }
    zps_info(c->log, "adopted table version %llu reported by server %u after a grace of %u ms: "
             "%u servers, %u replicas, %u servers in the table, %u ranges with no replica",
             (unsigned long long)c->table.version, c->best_rank, c->conf.failure_ms,
             c->table.nservers, c->table.replicas, c->st.members, c->st.lost);
    uint32_t removed = 0;
    char why[160];
    for (uint32_t i = 0; i < c->conf.max_servers; i++) {
        if (!c->ranks[i].member)
            continue;
        if (!c->ranks[i].heard) {
            snprintf(why, sizeof why, "not heard during the grace of %u ms after the "
                     "coordinator's restart", c->conf.failure_ms);
            removed += s_remove(c, i, why);
        } else if (c->ranks[i].reported == 0) {
            removed += s_remove(c, i, "it beats without a table: a new process, the data of its "
                                "replicas is gone");
        }
    }
    return removed;
}

/* A table reported by a beat while recovering: keep the highest valid one. */
static void s_report(ps_coord_t *c, uint32_t rank, uint64_t version, const uint8_t *buf,
                     size_t len)
{
    zps_ranges_t *t = malloc(sizeof *t);
    char err[200];
    if (!t) {
        zps_warn(c->log, "out of memory reading the table of server %u", rank);
        return;
    }
    int rc = zps_ranges_decode(t, buf, len, err, sizeof err);
    if (rc == 0 && t->version != version) {
        snprintf(err, sizeof err, "it is version %llu but the beat says %llu",
                 (unsigned long long)t->version, (unsigned long long)version);
        rc = ZPS_EPROTO;
    }
    if (rc == 0)
        rc = s_fits(c, t, err, sizeof err);
    if (rc != 0) {
        c->st.bad_tables++;
        zps_log_burst(c->log, ZPS_LOG_WARN, LC_TABLE, 20, 10000, "table from server %u ignored: %s",
                      rank, err);
    } else if (!c->have_best || t->version > c->best.version) {
        zps_info(c->log, "server %u reported table version %llu (%u ranges with no replica)", rank,
                 (unsigned long long)t->version, zps_ranges_lost(t));
        c->best = *t;
        c->best_rank = rank;
        c->have_best = 1;
    }
    free(t);
}

/* Keep the endpoint as given when it is short and printable, else "". */
static void s_endpoint(ps_coord_t *c, uint32_t rank, const char *ep, size_t len)
{
    s_rank_t *k = &c->ranks[rank];
    char esc[ZPS_LOG_WIRE_BUF];
    int ok = len <= c->max_endpoint;
    for (size_t i = 0; ok && i < len; i++)
        ok = ep[i] >= 0x21 && ep[i] <= 0x7e;
    if (!ok) {
        if (k->endpoint[0] || !k->heard)
            zps_log_limited(c->log, LC_ENDPOINT, 1000, "server %u announced an endpoint of %zu "
                            "bytes that is over %zu or not printable: %s", rank, len,
                            c->max_endpoint,
                            zps_log_escape(ep, len, esc, sizeof esc, ZPS_LOG_WIRE_CHARS));
        k->endpoint[0] = 0;
        return;
    }
    if (strlen(k->endpoint) == len && memcmp(k->endpoint, ep, len) == 0)
        return;
    if (k->heard)
        zps_log_burst(c->log, ZPS_LOG_INFO, LC_ENDPOINT, 20, 10000, "server %u: endpoint now %s",
                      rank, zps_log_escape(ep, len, esc, sizeof esc, ZPS_LOG_WIRE_CHARS));
    if (len)
        memcpy(k->endpoint, ep, len);
    k->endpoint[len] = 0;
}

/* Is rank, not a member, a candidate to join: heard within failure_ms
 * from a process that was not removed? */
static int s_candidate(const ps_coord_t *c, uint32_t rank, int64_t now_ms)
{
    const s_rank_t *k = &c->ranks[rank];
    return k->heard && !k->member && k->nonce != k->stale_nonce &&
           now_ms - k->last_ms <= (int64_t)c->conf.failure_ms;
}

/* Candidate rank beats: give it a join of every range that has fewer than
 * min(R, members + candidates) replicas, no join in progress and a
 * replica to copy from (the primary donates), all at one cut, one new
 * version.  Else it stays out, and says why once. */
static void s_offer(ps_coord_t *c, uint32_t rank, int64_t now_ms)
{
    zps_ranges_t *t = &c->table;
    s_rank_t *k = &c->ranks[rank];
    uint32_t cands = 0;
    for (uint32_t i = 0; i < c->conf.max_servers; i++)
        cands += s_candidate(c, i, now_ms);
    uint32_t want = c->st.members + cands < c->conf.replicas ? c->st.members + cands
                                                             : c->conf.replicas;
    uint32_t *per = calloc(c->conf.max_servers, sizeof *per);
    if (!per) {
        zps_warn(c->log, "out of memory offering ranges to server %u", rank);
        return;
    }
    uint64_t cut = t->version + 1;
    uint32_t n = 0, busy = 0, under = 0;
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        if (t->nrep[r] == 0 || t->nrep[r] >= want || zps_ranges_has(t, r, rank))
            continue;
        under++;
        if (t->join[r] != ZPS_NO_RANK) {
            busy++;
            continue;
        }
        if (zps_ranges_join(t, r, rank, t->rep[r][0], cut) == 0) {
            per[t->rep[r][0]]++;
            n++;
        }
    }
    char ep[ZPS_LOG_WIRE_BUF];
    if (n == 0) {
        if (!k->ready_said) {
            if (under == 0)
                zps_info(c->log, "server %u (%s) is ready to join, but every range has %u "
                         "replicas%s", rank, s_ep(c, rank, ep, sizeof ep), want,
                         want < c->conf.replicas ? " (as many as there are servers)" : "");
            else
                zps_info(c->log, "server %u (%s) is ready to join: %u ranges lack a replica, "
                         "all with a join in progress; it waits for them", rank,
                         s_ep(c, rank, ep, sizeof ep), busy);
        }
        k->ready_said = 1;
        free(per);
        return;
    }
    t->version = cut;
    s_changed(c);
    k->join_ms = now_ms;
    k->join_known = 1;
    k->ready_said = 0;
    c->st.joins_started += n;
    char donors[400];
    size_t off = 0;
    uint32_t listed = 0, more = 0;
    for (uint32_t d = 0; d < c->conf.max_servers; d++) {
        if (!per[d])
            continue;
        if (listed == 8) {
            more++;
            continue;
        }
        int w = snprintf(donors + off, sizeof donors - off, "%sserver %u: %u ranges",
                         listed ? ", " : "", d, per[d]);
        if (w > 0 && (size_t)w < sizeof donors - off)
            off += (size_t)w;
        listed++;
    }
    if (more)
        snprintf(donors + off, sizeof donors - off, " and %u more servers", more);
    zps_info(c->log, "server %u (%s) joins %u ranges at version %llu (donors: %s)", rank,
             s_ep(c, rank, ep, sizeof ep), n, (unsigned long long)cut, donors);
    free(per);
}

/* rank reports it has copied every range it joins at cut joined. */
static void s_joined(ps_coord_t *c, uint32_t rank, uint64_t joined, int64_t now_ms)
{
    s_rank_t *k = &c->ranks[rank];
    uint32_t n = zps_ranges_complete(&c->table, rank, joined);
    if (n == 0) {
        zps_debug(c->log, "server %u reports its joins at version %llu done, but it has none "
                  "there: ignored", rank, (unsigned long long)joined);
        return;
    }
    s_changed(c);
    c->st.joins_completed += n;
    zps_info(c->log, "server %u completed its join of %u ranges (version %llu, took %s%lld ms "
             "since the join began)", rank, n, (unsigned long long)c->table.version,
             k->join_known ? "" : "over ", (long long)(now_ms - k->join_ms));
}

int ps_coord_beat(ps_coord_t *c, int64_t now_ms, uint32_t rank, uint64_t nonce,
                  const char *endpoint, size_t endpoint_len, uint64_t table_version,
                  const uint8_t *table, size_t table_len, uint64_t joined,
                  ps_coord_reply_t *reply)
{
    memset(reply, 0, sizeof *reply);
    if (rank >= c->conf.max_servers) {
        c->st.refused++;
        return ZPS_EINVAL;
    }
    if (nonce == 0) {
        c->st.refused++;
        return ZPS_EPROTO;
    }
    c->st.beats++;
    s_maybe_adopt(c, now_ms);
    s_rank_t *k = &c->ranks[rank];
    s_endpoint(c, rank, endpoint ? endpoint : "", endpoint ? endpoint_len : 0);
    char ep[ZPS_LOG_WIRE_BUF];
    int restarted = 0; /* this beat removed the rank: its next one may join */
    if (k->heard && k->nonce != nonce) {
        k->ready_said = 0;
        if (c->have && k->member) {
            s_remove(c, rank, "its process restarted (new nonce): the data of its replicas is gone");
            restarted = 1;
        } else
            zps_log_burst(c->log, ZPS_LOG_INFO, LC_NONCE, 20, 10000,
                          "server %u (%s) is a new process (not in the table)", rank,
                          s_ep(c, rank, ep, sizeof ep));
    }
    if (!k->heard) {
        c->nheard++;
        c->nheard0 += rank < c->conf.nservers;
        zps_info(c->log, "server %u registered at %s holding table version %llu (%u servers "
                 "heard, %u of the first %u)", rank, s_ep(c, rank, ep, sizeof ep),
                 (unsigned long long)table_version, c->nheard, c->nheard0, c->conf.nservers);
    }
    k->heard = 1;
    k->nonce = nonce;
    k->last_ms = now_ms;
    k->reported = table_version;

    int restored = k->rst_nonce == nonce;
    if (!c->have && (table_version > 0 || restored)) {
        if (!c->recovering) {
            /* the grace counts from the first report, not from our start:
             * servers cut off from a coordinator that has just started must
             * not miss it */
            c->grace_end_ms = now_ms + c->conf.failure_ms;
            zps_info(c->log, "server %u holds %s and this coordinator no table: restarted, "
                     "collecting the servers' tables for %u ms", rank,
                     table_version ? "a table" : "a restored checkpoint", c->conf.failure_ms);
        }
        c->recovering = 1;
        if (table && table_len && table_version)
            s_report(c, rank, table_version, table, table_len);
        reply->send_table = table_version && (!c->have_best || table_version > c->best.version);
        s_maybe_adopt(c, now_ms);
    }
    if (!c->have && !c->recovering && c->nheard0 == c->conf.nservers)
        s_build(c);
    if (!c->have)
        return 0;
    if (joined && k->member)
        s_joined(c, rank, joined, now_ms);
    else if (joined)
        zps_debug(c->log, "server %u reports joins at version %llu done, but it is not in the "
                  "table: ignored", rank, (unsigned long long)joined);
    if (!restarted && s_candidate(c, rank, now_ms))
        s_offer(c, rank, now_ms);
    if (table_version > c->table.version)
        zps_log_limited(c->log, LC_NEWER, 1000, "server %u holds table version %llu, newer than "
                        "this coordinator's %llu", rank, (unsigned long long)table_version,
                        (unsigned long long)c->table.version);
    reply->member = k->member;
    reply->retired = !k->member && k->retired_nonce == nonce && nonce != 0;
    reply->lease_ms = k->member ? c->conf.failure_ms / 2 : 0;
    reply->table_version = c->table.version;
    if (table_version < c->table.version) {
        reply->table = c->enc;
        reply->table_len = c->enc_len;
    }
    return 0;
}

/* ---- add-server, remove-server --------------------------------------------- */

static int s_alive(const ps_coord_t *c, uint32_t rank, int64_t now_ms)
{
    const s_rank_t *k = &c->ranks[rank];
    return k->heard && now_ms - k->last_ms <= (int64_t)c->conf.failure_ms;
}

/* Is rank joining some range (a join in progress)? */
static int s_joining(const ps_coord_t *c, uint32_t rank)
{
    for (uint32_t r = 0; r < ZPS_RANGES; r++)
        if (c->table.join[r] == rank)
            return 1;
    return 0;
}

/* Ranges each rank holds (held) and heads (prim), moves counted as done. */
static void s_loads(const ps_coord_t *c, uint32_t *held, uint32_t *prim)
{
    const zps_ranges_t *t = &c->table;
    memset(held, 0, c->conf.max_servers * sizeof *held);
    memset(prim, 0, c->conf.max_servers * sizeof *prim);
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        for (uint32_t i = 0; i < t->nrep[r]; i++) {
            uint32_t k = t->rep[r][i];
            if (t->join[r] != ZPS_NO_RANK && t->out[r] == k)
                k = t->join[r];
            held[k]++;
            prim[k] += i == 0;
        }
        if (t->join[r] != ZPS_NO_RANK && t->out[r] == ZPS_NO_RANK)
            held[t->join[r]]++;
    }
}

int ps_coord_add_server(ps_coord_t *c, int64_t now_ms, const char *endpoint, char *msg,
                        size_t msglen)
{
    zps_ranges_t *t = &c->table;
    uint32_t n = UINT32_MAX, M = c->conf.max_servers;
    char *end = NULL;
    unsigned long v = endpoint[0] >= '0' && endpoint[0] <= '9' ? strtoul(endpoint, &end, 10) : 0;
    if (end && !*end && v < M)
        n = (uint32_t)v;
    for (uint32_t i = 0; n == UINT32_MAX && i < M; i++)
        if (c->ranks[i].heard && strcmp(c->ranks[i].endpoint, endpoint) == 0 &&
            c->ranks[i].nonce != c->ranks[i].stale_nonce)
            n = i;
    if (!c->have) {
        snprintf(msg, msglen, "no range table yet (the servers have not all started)");
        return ZPS_EBUSY;
    }
    if (n == UINT32_MAX || !s_alive(c, n, now_ms) || c->ranks[n].nonce == c->ranks[n].stale_nonce) {
        snprintf(msg, msglen, "no live server announces '%s' to this coordinator (start it with "
                 "--coordinator, a free --rank below %u and --announce %s first)", endpoint, M,
                 endpoint);
        return ZPS_EINVAL;
    }
    if (c->ranks[n].retiring || s_joining(c, n)) {
        snprintf(msg, msglen, "server %u is %s", n,
                 c->ranks[n].retiring ? "being removed" : "joining already: try again later");
        return ZPS_EBUSY;
    }
    uint32_t *held = calloc(M, sizeof *held), *prim = calloc(M, sizeof *prim);
    uint32_t *from = calloc(M, sizeof *from);
    if (!held || !prim || !from) {
        free(held);
        free(prim);
        free(from);
        snprintf(msg, msglen, "out of memory");
        return ZPS_ENOMEM;
    }
    s_loads(c, held, prim);
    uint32_t members = 0, slots = 0;
    for (uint32_t i = 0; i < M; i++) {
        members += c->ranks[i].member && i != n;
        slots += held[i];
    }
    uint64_t cut = t->version + 1;
    uint32_t want_p = ZPS_RANGES / (members + 1), want_h = slots / (members + 1);
    uint32_t got_p = prim[n], got_h = held[n], moved = 0, p0 = prim[n];
    /* primaries first (pulls follow them), then backups; each from the
     * server with most, a range without a join that n does not hold */
    for (int pass = 0; pass < 2; pass++) {
        for (;;) {
            if (pass == 0 ? got_p >= want_p : got_h >= want_h)
                break;
            uint32_t f = UINT32_MAX;
            for (uint32_t i = 0; i < M; i++) {
                uint32_t load = pass == 0 ? prim[i] : held[i] - prim[i];
                if (i != n && c->ranks[i].member && load > 0 &&
                    (f == UINT32_MAX || load > (pass == 0 ? prim[f] : held[f] - prim[f])))
                    f = i;
            }
            if (f == UINT32_MAX)
                break;
            uint32_t r;
            for (r = 0; r < ZPS_RANGES; r++) {
                if (t->join[r] != ZPS_NO_RANK || zps_ranges_has(t, r, n) || t->nrep[r] == 0)
                    continue;
                int at = -1;
                for (uint32_t i = 0; i < t->nrep[r]; i++)
                    if (t->rep[r][i] == f)
                        at = (int)i;
                if (pass == 0 ? at == 0 : at > 0)
                    break;
            }
            if (r == ZPS_RANGES || zps_ranges_move(t, r, n, t->rep[r][0], f, cut) != 0) {
                /* nothing movable left at f: take it out of the count */
                if (pass == 0)
                    prim[f] = 0;
                else
                    held[f] = prim[f];
                continue;
            }
            if (pass == 0) {
                prim[f]--;
                got_p++;
            }
            held[f]--;
            got_h++;
            from[f]++;
            moved++;
        }
    }
    if (!moved) {
        free(held);
        free(prim);
        free(from);
        snprintf(msg, msglen, "server %u holds its share already (%u ranges, %u as primary, of "
                 "%u servers): nothing to move", n, got_h, got_p, members + 1);
        return ZPS_EINVAL;
    }
    t->version = cut;
    s_changed(c);
    c->ranks[n].join_ms = now_ms;
    c->ranks[n].join_known = 1;
    c->ranks[n].ready_said = 0;
    c->st.moves_started += moved;
    c->st.joins_started += moved;
    size_t off = (size_t)snprintf(msg, msglen, "server %u takes %u ranges (%u as primary) at "
                                  "version %llu, from", n, moved, got_p - p0,
                                  (unsigned long long)cut);
    for (uint32_t i = 0; i < M && off < msglen; i++)
        if (from[i])
            off += (size_t)snprintf(msg + off, msglen - off, " server %u: %u", i, from[i]);
    zps_info(c->log, "add-server: %s", msg);
    free(held);
    free(prim);
    free(from);
    return 0;
}

/* Plan a move for every range rank holds without a join: to the live
 * member holding fewest ranges that does not hold it, is not being
 * removed and joins nothing at another cut.  Returns the ranges planned
 * or dropped; *stuck the ranges that found nobody (left to a later tick). */
static uint32_t s_drain(ps_coord_t *c, uint32_t rank, int64_t now_ms, uint32_t *stuck)
{
    zps_ranges_t *t = &c->table;
    uint32_t M = c->conf.max_servers;
    uint32_t *held = calloc(M, sizeof *held), *prim = calloc(M, sizeof *prim);
    uint8_t *ok = calloc(M, 1);
    *stuck = 0;
    if (!held || !prim || !ok) {
        free(held);
        free(prim);
        free(ok);
        return 0;
    }
    s_loads(c, held, prim);
    for (uint32_t i = 0; i < M; i++)
        ok[i] = i != rank && c->ranks[i].member && !c->ranks[i].retiring && s_alive(c, i, now_ms) &&
                !s_joining(c, i);
    uint64_t cut = t->version + 1;
    uint32_t n = 0, dropped = 0;
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        if (!zps_ranges_has(t, r, rank) || t->join[r] != ZPS_NO_RANK)
            continue;
        uint32_t j = UINT32_MAX;
        for (uint32_t i = 0; i < M; i++)
            if (ok[i] && !zps_ranges_has(t, r, i) && (j == UINT32_MAX || held[i] < held[j]))
                j = i;
        if (j != UINT32_MAX && zps_ranges_move(t, r, j, t->rep[r][0], rank, cut) == 0) {
            held[j]++;
            n++;
        } else if (t->nrep[r] > 1) {
            /* every other server holds it already: one replica fewer */
            uint32_t k = 0;
            for (uint32_t i = 0; i < t->nrep[r]; i++)
                if (t->rep[r][i] != rank)
                    t->rep[r][k++] = t->rep[r][i];
            t->nrep[r] = (uint8_t)k;
            dropped++;
        } else {
            (*stuck)++;
        }
    }
    if (n || dropped) {
        t->version = cut;
        for (uint32_t i = 0; i < M; i++)
            if (ok[i] && held[i] && s_joining(c, i)) {
                c->ranks[i].join_ms = now_ms;
                c->ranks[i].join_known = 1;
            }
        c->st.moves_started += n;
        c->st.joins_started += n;
        s_changed(c);
    }
    free(held);
    free(prim);
    free(ok);
    return n + dropped;
}

int ps_coord_remove_server(ps_coord_t *c, int64_t now_ms, uint32_t rank, char *msg,
                           size_t msglen)
{
    if (!c->have) {
        snprintf(msg, msglen, "no range table yet (the servers have not all started)");
        return ZPS_EBUSY;
    }
    if (rank >= c->conf.max_servers || !c->ranks[rank].member) {
        snprintf(msg, msglen, "server %u is not in the range table", rank);
        return ZPS_EINVAL;
    }
    if (!s_alive(c, rank, now_ms)) {
        snprintf(msg, msglen, "server %u is silent: the failure detector removes it (or keeps it "
                 "while it holds a range's last replica)", rank);
        return ZPS_EINVAL;
    }
    if (c->ranks[rank].retiring) {
        snprintf(msg, msglen, "server %u is being removed already", rank);
        return ZPS_EBUSY;
    }
    if (s_joining(c, rank)) {
        snprintf(msg, msglen, "server %u is joining ranges: try again when its join is done", rank);
        return ZPS_EBUSY;
    }
    uint32_t others = 0;
    for (uint32_t i = 0; i < c->conf.max_servers; i++)
        others += i != rank && c->ranks[i].member && !c->ranks[i].retiring && s_alive(c, i, now_ms);
    if (!others) {
        snprintf(msg, msglen, "server %u is the only live server: nobody could take its ranges",
                 rank);
        return ZPS_EINVAL;
    }
    uint32_t held = zps_ranges_count(&c->table, rank, NULL), stuck = 0;
    c->ranks[rank].retiring = 1;
    c->ranks[rank].stuck_said = 0;
    uint32_t planned = s_drain(c, rank, now_ms, &stuck);
    snprintf(msg, msglen, "server %u: %u of its %u ranges move or drop a replica at version "
             "%llu%s", rank, planned, held, (unsigned long long)c->table.version,
             stuck ? "; the others wait for a server that is not joining" : "");
    zps_info(c->log, "remove-server: %s", msg);
    return 0;
}

/* Re-replication (ps_coord_tick): ranges short of min(R, live members)
 * replicas for conf.rereplicate_ms, with no join in progress anywhere (a
 * restarted or spare server takes them at once by joining; this is for
 * when none comes), each to the live member not being removed that holds
 * the fewest ranges and lacks it, all at one cut. */
static void s_rereplicate(ps_coord_t *c, int64_t now_ms)
{
    zps_ranges_t *t = &c->table;
    uint32_t M = c->conf.max_servers, live = 0;
    if (!c->conf.rereplicate_ms)
        return;
    for (uint32_t i = 0; i < M; i++)
        live += c->ranks[i].member && !c->ranks[i].retiring && s_alive(c, i, now_ms);
    uint32_t want = live < c->conf.replicas ? live : c->conf.replicas;
    uint32_t shortn = 0, joins = 0;
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        joins += t->join[r] != ZPS_NO_RANK;
        shortn += t->nrep[r] > 0 && t->nrep[r] < want;
    }
    if (!shortn || joins) {
        c->short_since_ms = shortn ? c->short_since_ms : 0;
        if (shortn && !c->short_since_ms)
            c->short_since_ms = now_ms;
        return;
    }
    if (!c->short_since_ms) {
        c->short_since_ms = now_ms;
        return;
    }
    if (now_ms - c->short_since_ms < (int64_t)c->conf.rereplicate_ms)
        return;
    uint32_t *held = calloc(M, sizeof *held), *prim = calloc(M, sizeof *prim);
    uint32_t *got = calloc(M, sizeof *got);
    if (!held || !prim || !got) {
        free(held);
        free(prim);
        free(got);
        return;
    }
    s_loads(c, held, prim);
    uint64_t cut = t->version + 1;
    uint32_t n = 0;
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        if (t->nrep[r] == 0 || t->nrep[r] >= want)
            continue;
        uint32_t j = UINT32_MAX;
        for (uint32_t i = 0; i < M; i++)
            if (c->ranks[i].member && !c->ranks[i].retiring && s_alive(c, i, now_ms) &&
                !zps_ranges_has(t, r, i) && (j == UINT32_MAX || held[i] < held[j]))
                j = i;
        if (j != UINT32_MAX && zps_ranges_join(t, r, j, t->rep[r][0], cut) == 0) {
            held[j]++;
            got[j]++;
            n++;
        }
    }
    c->short_since_ms = 0;
    if (n) {
        t->version = cut;
        s_changed(c);
        c->st.joins_started += n;
        c->st.rereplicated += n;
        char list[300];
        size_t off = 0;
        list[0] = 0;
        for (uint32_t i = 0; i < M && off < sizeof list; i++)
            if (got[i]) {
                c->ranks[i].join_ms = now_ms;
                c->ranks[i].join_known = 1;
                off += (size_t)snprintf(list + off, sizeof list - off, "%sserver %u: %u",
                                        off ? ", " : "", i, got[i]);
            }
        zps_info(c->log, "re-replicating %u ranges short of %u replicas for %u ms onto live "
                 "servers at version %llu (%s)", n, want, c->conf.rereplicate_ms,
                 (unsigned long long)cut, list);
    }
    free(held);
    free(prim);
    free(got);
}

uint32_t ps_coord_tick(ps_coord_t *c, int64_t now_ms)
{
    /* a gap between ticks of over failure_ms / 2 is the coordinator's own
     * stall (descheduled, stopped, swapping): the servers' beats of that
     * time may still sit in its socket, so the gap is not their silence */
    int64_t gap = now_ms - c->last_tick_ms;
    if (gap > (int64_t)c->conf.failure_ms / 2) {
        c->st.stalls++;
        for (uint32_t i = 0; i < c->conf.max_servers; i++) {
            int64_t t = c->ranks[i].last_ms + gap;
            c->ranks[i].last_ms = t < now_ms ? t : now_ms;
        }
        zps_log_limited(c->log, LC_STALL, 1000, "the coordinator did not run for %lld ms: that "
                        "time is not counted as the servers' silence", (long long)gap);
    }
    if (gap > 0)
        c->last_tick_ms = now_ms;
    uint32_t removed = s_maybe_adopt(c, now_ms);
    if (!c->have)
        return removed;
    char why[96];
    for (uint32_t i = 0; i < c->conf.max_servers; i++) {
        s_rank_t *k = &c->ranks[i];
        if (!k->member || now_ms - k->last_ms <= (int64_t)c->conf.failure_ms) {
            k->kept_said = 0;
            continue;
        }
        /* the last replica of a range is never removed for silence: that
         * would lose the range for good, and silence is not proof of death
         * (this coordinator may be the one cut off: every server goes
         * silent at once).  It holds no lease, so it serves nothing; the
         * job waits for it (clients give up after --server-timeout) */
        uint32_t sole = 0;
        for (uint32_t r = 0; r < ZPS_RANGES; r++)
            sole += c->table.nrep[r] == 1 && c->table.rep[r][0] == i;
        if (sole) {
            if (!k->kept_said) {
                char ep[ZPS_LOG_WIRE_BUF];
                zps_error(c->log, "server %u (%s) is silent for %lld ms, but it holds the last "
                          "replica of %u ranges: kept in the table (without a lease it serves "
                          "nothing; the job waits for it to come back)", i,
                          s_ep(c, i, ep, sizeof ep), (long long)(now_ms - k->last_ms), sole);
                k->kept_said = 1;
            }
            continue;
        }
        snprintf(why, sizeof why, "silent for %lld ms (failure timeout %u ms)",
                 (long long)(now_ms - k->last_ms), c->conf.failure_ms);
        removed += s_remove(c, i, why);
    }
    if (c->have_rst && c->st.lost) {
        /* lost ranges and restored copies: compare the copies that come
         * within a grace of failure_ms, then restore */
        uint32_t cover = 0;
        for (uint32_t i = 0; i < c->conf.max_servers && !cover; i++)
            cover = c->ranks[i].rst_have == 1 && c->ranks[i].rst_nonce == c->ranks[i].nonce;
        if (cover && !c->rst_pending_ms)
            c->rst_pending_ms = now_ms;
        if (c->rst_pending_ms && now_ms - c->rst_pending_ms >= (int64_t)c->conf.failure_ms) {
            s_restore_lost(c, now_ms);
            c->rst_pending_ms = 0;
        }
    }
    s_rereplicate(c, now_ms);
    /* a server being removed whose ranges lost their joiner: plan again */
    for (uint32_t i = 0; i < c->conf.max_servers; i++) {
        s_rank_t *k = &c->ranks[i];
        if (!k->retiring || !s_alive(c, i, now_ms))
            continue;
        uint32_t waiting = 0;
        for (uint32_t r = 0; r < ZPS_RANGES; r++)
            waiting += zps_ranges_has(&c->table, r, i) && c->table.join[r] == ZPS_NO_RANK;
        if (!waiting)
            continue;
        uint32_t stuck = 0, n = s_drain(c, i, now_ms, &stuck);
        if (n)
            zps_info(c->log, "remove-server %u: %u more ranges move (version %llu)", i, n,
                     (unsigned long long)c->table.version);
        if (stuck && !k->stuck_said)
            zps_warn(c->log, "remove-server %u: %u ranges wait for a live server that joins "
                     "nothing else", i, stuck);
        k->stuck_said = stuck != 0;
    }
    return removed;
}

const zps_ranges_t *ps_coord_table(const ps_coord_t *c)
{
    return c->have ? &c->table : NULL;
}

const uint8_t *ps_coord_encoded(const ps_coord_t *c, size_t *len)
{
    *len = c->have ? c->enc_len : 0;
    return c->have ? c->enc : NULL;
}

const char *ps_coord_endpoint(const ps_coord_t *c, uint32_t rank)
{
    return rank < c->conf.max_servers ? c->ranks[rank].endpoint : NULL;
}

uint32_t ps_coord_nservers(const ps_coord_t *c)
{
    return c->conf.max_servers;
}

int ps_coord_retired(const ps_coord_t *c, uint32_t rank)
{
    if (rank >= c->conf.max_servers)
        return 0;
    const s_rank_t *k = &c->ranks[rank];
    return !k->member && k->retired_nonce && k->retired_nonce == k->nonce;
}

uint32_t ps_coord_replicas(const ps_coord_t *c)
{
    return c->conf.replicas;
}

void ps_coord_get_stats(const ps_coord_t *c, ps_coord_stats_t *st)
{
    *st = c->st;
    st->recovering = c->recovering;
}
