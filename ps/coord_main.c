/* zps-coord: the coordinator of a replicated job (--replicas R > 1).
 *
 * Command line (or ZPS_* variables) -> s_conf_t; a ROUTER socket bound to
 * --listen; a loop that answers BEAT (from servers) with BEAT_REPLY and
 * TABLE_GET (from anyone) with TABLE_REPLY, and everything else with an
 * ERROR naming what was wrong.  The decisions are ps/ps_coord's; this file
 * only moves messages.  The loop polls at most 50 ms, then lets ps_coord
 * tick (failure detection), so a silent server is removed at most ~50 ms
 * after its failure timeout.  Replies never block: the socket fails a send
 * to a vanished or full peer at once (ZMQ_ROUTER_MANDATORY, ZMQ_SNDTIMEO
 * 0), counted and logged (rate-limited).  Nothing a peer sends is trusted:
 * zps_msg_recv validates the framing, frames over 1 MiB are dropped by
 * ZeroMQ unread, strings are escaped in logs, and noisy events are
 * rate-limited. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <zmq.h>

#include "ps_coord.h"
#include "zps_args.h"
#include "zps_daemon.h"
#include "zps_env.h"
#include "zps_err.h"
#include "zps_log.h"
#include "zps_msg.h"
#include "zps_out.h"
#include "zps_time.h"

extern char **environ;

static volatile sig_atomic_t g_stop; /* the only state a signal handler may touch */

static void s_on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* log classes of this file (ps_coord uses 0..7) */
enum { LC_REJECT = 8, LC_DROPPED = 9 };

#define S_MAX_FRAME (1 << 20) /* a beat with a table is under 70 KB */
#define S_DRAIN 256           /* messages per pass before ticking */

typedef struct {
    char listen[256];
    char ready_file[512];   /* --ready-file: the bound endpoint, written atomically */
    ps_coord_conf_t coord;
    zps_log_level_t level;
} s_conf_t;

typedef struct {
    void *sock;
    ps_coord_t *coord;
    zps_log_t *log;
    uint64_t table_gets, errors, dropped;
} s_daemon_t;

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: zps-coord --listen ENDPOINT --num-servers S [options]\n"
            "the coordinator of a replicated job: it decides which servers are alive and\n"
            "publishes the range table (servers beat to it, clients read the table)\n"
            "every option may also be given as a ZPS_* environment variable\n"
            "(--num-servers 3 as ZPS_NUM_SERVERS=3; the command line wins)\n"
            "options:\n"
            "  --listen ENDPOINT        address to bind, e.g. tcp://127.0.0.1:7400 or\n"
            "                           tcp://*:7400 (port 0: pick a free one)  [required]\n"
            "  --num-servers S          servers in the job, 1..%u               [1]\n"
            "  --replicas R             servers holding each key range, 1..%u (capped at S) [1]\n"
            "  --max-servers M          rank slots, so that servers can be added to the job\n"
            "                           later (zps-ctl add-server); M >= S    [2S, at least\n"
            "                           S + 2, at most 1024 unless S is more]\n"
            "  --failure-timeout-ms MS  a server silent this long is removed from the table;\n"
            "                           servers hold leases of MS / 2             [%u]\n"
            "  --rereplicate-after-ms MS  a key range short of replicas this long after a\n"
            "                           failure, with no server joining, is copied onto a\n"
            "                           live server (0: never)                   [%u]\n"
            "  --restore-wait-ms MS     servers restored from checkpoints and no live\n"
            "                           table: wait this long at most for every server of\n"
            "                           the newest restored table before choosing each\n"
            "                           range's copy                             [%u]\n"
            "  --ready-file FILE        write the bound endpoint to FILE once listening\n"
            "  --log-level LEVEL        debug, info, warn or error               [info]\n"
            "  --quiet                  --log-level warn\n"
            "  --help, --version\n",
            ZPS_RANGES_MAX_SERVERS, ZPS_MAX_REPLICAS, PS_COORD_FAILURE_MS_DEFAULT,
            PS_COORD_REREPLICATE_MS_DEFAULT, PS_COORD_RESTORE_WAIT_MS_DEFAULT);
}

enum { O_LISTEN = 1, O_NUM_SERVERS, O_REPLICAS, O_FAILURE_MS, O_LOG_LEVEL, O_QUIET, O_HELP, O_VERSION,
       O_READY_FILE, O_MAX_SERVERS, O_REREPL, O_RESTORE_WAIT };

static const struct option s_options[] = {
    {"listen", required_argument, 0, O_LISTEN},
    {"num-servers", required_argument, 0, O_NUM_SERVERS},
    {"replicas", required_argument, 0, O_REPLICAS},
    {"max-servers", required_argument, 0, O_MAX_SERVERS},
    {"rereplicate-after-ms", required_argument, 0, O_REREPL},
    {"restore-wait-ms", required_argument, 0, O_RESTORE_WAIT},
    {"failure-timeout-ms", required_argument, 0, O_FAILURE_MS},
    {"log-level", required_argument, 0, O_LOG_LEVEL},
    {"ready-file", required_argument, 0, O_READY_FILE},
    {"quiet", no_argument, 0, O_QUIET},
    {"help", no_argument, 0, O_HELP},
    {"version", no_argument, 0, O_VERSION},
    {0, 0, 0, 0}};

/* One option's value: 0, or ZPS_EINVAL with err saying why. */
static int s_opt(s_conf_t *conf, int o, const char *v, char *err, size_t errlen)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    uint32_t u;
    switch (o) {
    case O_LISTEN:
        if (!v[0] || strlen(v) >= sizeof conf->listen) {
            snprintf(err, errlen, "invalid value for --listen: expected an endpoint such as "
                     "tcp://127.0.0.1:7400 (under %zu characters)", sizeof conf->listen);
            return ZPS_EINVAL;
        }
        snprintf(conf->listen, sizeof conf->listen, "%s", v);
        return 0;
    case O_NUM_SERVERS:
    case O_REPLICAS:
    case O_FAILURE_MS:
    case O_MAX_SERVERS:
    case O_REREPL:
    case O_RESTORE_WAIT:
        if (zps_parse_u32(v, &u) != 0 || (o == O_MAX_SERVERS && u == 0)) {
            snprintf(err, errlen, "invalid value '%s' for --%s: %s", v,
                     o == O_NUM_SERVERS  ? "num-servers"
                     : o == O_REPLICAS   ? "replicas"
                     : o == O_MAX_SERVERS ? "max-servers"
                     : o == O_REREPL     ? "rereplicate-after-ms"
                     : o == O_RESTORE_WAIT ? "restore-wait-ms"
                                          : "failure-timeout-ms",
                     u == 0 ? "expected at least 1" : zps_args_why(v, ZPS_ARGS_UINT));
            return ZPS_EINVAL;
        }
        if (o == O_NUM_SERVERS)
            conf->coord.nservers = u;
        else if (o == O_MAX_SERVERS)
            conf->coord.max_servers = u;
        else if (o == O_REREPL)
            conf->coord.rereplicate_ms = u;
        else if (o == O_RESTORE_WAIT)
            conf->coord.restore_wait_ms = u;
        else if (o == O_REPLICAS)
            conf->coord.replicas = u;
        else
            conf->coord.failure_ms = u;
        return 0; /* ranges: ps_coord_new */
    case O_LOG_LEVEL:
        for (int i = 0; i < 4; i++)
            if (!strcmp(v, levels[i])) {
                conf->level = (zps_log_level_t)i;
                return 0;
            }
        snprintf(err, errlen, "invalid value '%s' for --log-level: expected debug, info, warn or "
                 "error", v);
        return ZPS_EINVAL;
    case O_QUIET:
        conf->level = ZPS_LOG_WARN;
        return 0;
    case O_READY_FILE:
        if (!v[0] || strlen(v) >= sizeof conf->ready_file) {
            snprintf(err, errlen, "invalid value for --ready-file");
            return ZPS_EINVAL;
        }
        snprintf(conf->ready_file, sizeof conf->ready_file, "%s", v);
        return 0;
    }
    snprintf(err, errlen, "unknown option");
    return ZPS_EINVAL;
}

/* --listen's ":0" -> ":*", ZeroMQ's "any free port". */
static void s_bind_spec(const char *in, char *out, size_t len)
{
    size_t n = strlen(in);
    if (n >= 2 && strcmp(in + n - 2, ":0") == 0)
        snprintf(out, len, "%.*s:*", (int)(n - 2), in);
    else
        snprintf(out, len, "%s", in);
}

static const char *s_role(const zps_msg_t *m)
{
    if (!m->env)
        return "peer";
    switch (m->env->role) {
    case ZPS__ROLE__ROLE_SERVER: return "server";
    case ZPS__ROLE__ROLE_WORKER: return "worker";
    case ZPS__ROLE__ROLE_TOOL: return "tool";
    default: return "peer";
    }
}

static void s_send(s_daemon_t *d, zps_msg_t *m, const Zps__Envelope *env)
{
    if (!m->has_ident)
        return;
    if (zps_msg_send(d->sock, &m->ident, env, NULL, 0, NULL, 0, NULL) != 0) {
        d->dropped++;
        zps_log_limited(d->log, LC_DROPPED, 1000, "reply to %s %s/%u dropped (%llu so far): its "
                        "queue is full or it has left", m->peer, s_role(m),
                        m->env ? m->env->rank : 0, (unsigned long long)d->dropped);
    }
}

/* ERROR to the sender, and a rate-limited line naming it. */
static void s_error(s_daemon_t *d, zps_msg_t *m, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_error(s_daemon_t *d, zps_msg_t *m, int code, const char *fmt, ...)
{
    char text[400];
    int n = snprintf(text, sizeof text, "coordinator: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + n, sizeof text - (size_t)n, fmt, ap);
    va_end(ap);
    d->errors++;
    zps_log_limited(d->log, LC_REJECT, 1000, "rejected a request from %s %s/%u (%llu so far): %s",
                    m->peer, s_role(m), m->env ? m->env->rank : 0,
                    (unsigned long long)d->errors, text);
    Zps__Envelope env;
    Zps__Error body = ZPS__ERROR__INIT;
    zps_msg_env(&env, ZPS__MSG_TYPE__ERROR, ZPS__ROLE__ROLE_SERVER, 0,
                m->env ? m->env->request_id : 0);
    body.code = code;
    body.text = text;
    env.body_case = ZPS__ENVELOPE__BODY_ERROR;
    env.error = &body;
    s_send(d, m, &env);
}

static void s_beat(s_daemon_t *d, zps_msg_t *m)
{
    const Zps__Beat *b = m->env->beat;
    if (m->env->role != ZPS__ROLE__ROLE_SERVER) {
        s_error(d, m, ZPS_EPROTO, "BEAT from a %s: only servers beat", s_role(m));
        return;
    }
    if (b->rank != m->env->rank) {
        s_error(d, m, ZPS_EPROTO, "BEAT for rank %u in an envelope of rank %u", b->rank,
                m->env->rank);
        return;
    }
    ps_coord_reply_t r;
    const char *ep = b->endpoint ? b->endpoint : "";
    int64_t now = zps_now_ms();
    int want = b->restored_ms
                   ? ps_coord_restored(d->coord, now, b->rank, b->server_nonce, b->restored_ms,
                                       b->restored_table.len ? b->restored_table.data : NULL,
                                       b->restored_table.len)
                   : 0;
    int rc = ps_coord_beat(d->coord, now, b->rank, b->server_nonce, ep, strlen(ep),
                           b->table_version, b->table.len ? b->table.data : NULL, b->table.len,
                           b->joined, &r);
    r.send_table |= want;
    if (rc == ZPS_EINVAL) {
        s_error(d, m, rc, "BEAT from server rank %u, but the job has %u rank slots (zps-coord "
                "--max-servers)", b->rank, ps_coord_nservers(d->coord));
        return;
    }
    if (rc != 0) {
        s_error(d, m, rc, "BEAT from server rank %u with server_nonce 0", b->rank);
        return;
    }
    Zps__Envelope env;
    Zps__BeatReply body = ZPS__BEAT_REPLY__INIT;
    zps_msg_env(&env, ZPS__MSG_TYPE__BEAT_REPLY, ZPS__ROLE__ROLE_SERVER, 0, m->env->request_id);
    body.member = r.member != 0;
    body.lease_ms = r.lease_ms;
    body.table_version = r.table_version;
    body.send_table = r.send_table != 0;
    body.retired = r.retired != 0;
    body.table.data = (uint8_t *)r.table;
    body.table.len = r.table_len;
    /* with the table, every server's endpoint: a donor reaches its joiner
     * there (ps_coord caps them so that this fits, as TABLE_REPLY) */
    uint32_t ns = ps_coord_nservers(d->coord);
    char **eps = NULL;
    if (r.table) {
        eps = malloc(ns * sizeof *eps);
        if (!eps) {
            s_error(d, m, ZPS_ENOMEM, "out of memory");
            return;
        }
        for (uint32_t i = 0; i < ns; i++)
            eps[i] = (char *)ps_coord_endpoint(d->coord, i);
        body.n_endpoints = ns;
        body.endpoints = eps;
    }
    env.body_case = ZPS__ENVELOPE__BODY_BEAT_REPLY;
    env.beat_reply = &body;
    zps_debug(d->log, "beat of server %u from %s holding version %llu: member %d, lease %u ms, "
              "version %llu%s%s", b->rank, m->peer, (unsigned long long)b->table_version, r.member,
              r.lease_ms, (unsigned long long)r.table_version, r.table ? ", with the table" : "",
              r.send_table ? ", asked for its table" : "");
    size_t packed = zps__envelope__get_packed_size(&env);
    if (packed > ZPS_MSG_MAX_ENVELOPE)
        s_error(d, m, ZPS_ETOOBIG, "the beat reply would take %zu bytes, over the %u a server "
                "reads: shorter endpoints or fewer servers", packed, ZPS_MSG_MAX_ENVELOPE);
    else
        s_send(d, m, &env);
    free(eps);
}

static void s_table_get(s_daemon_t *d, zps_msg_t *m)
{
    uint32_t ns = ps_coord_nservers(d->coord);
    char **eps = malloc(ns * sizeof *eps);
    if (!eps) {
        s_error(d, m, ZPS_ENOMEM, "out of memory");
        return;
    }
    for (uint32_t i = 0; i < ns; i++)
        eps[i] = (char *)ps_coord_endpoint(d->coord, i);
    size_t len = 0;
    const uint8_t *enc = ps_coord_encoded(d->coord, &len);
    const zps_ranges_t *t = ps_coord_table(d->coord);
    Zps__Envelope env;
    Zps__TableReply body = ZPS__TABLE_REPLY__INIT;
    zps_msg_env(&env, ZPS__MSG_TYPE__TABLE_REPLY, ZPS__ROLE__ROLE_SERVER, 0, m->env->request_id);
    body.version = t ? t->version : 0;
    if (t && t->version > m->env->table_get->have_version) {
        body.table.data = (uint8_t *)enc;
        body.table.len = len;
    }
    body.n_endpoints = ns;
    body.endpoints = eps;
    uint32_t retired[64];
    size_t nret = 0;
    for (uint32_t i = 0; i < ns && nret < 64; i++)
        if (ps_coord_retired(d->coord, i))
            retired[nret++] = i;
    body.n_retired = nret;
    body.retired = retired;
    env.body_case = ZPS__ENVELOPE__BODY_TABLE_REPLY;
    env.table_reply = &body;
    d->table_gets++;
    size_t packed = zps__envelope__get_packed_size(&env);
    if (packed > ZPS_MSG_MAX_ENVELOPE)
        s_error(d, m, ZPS_ETOOBIG, "the table reply would take %zu bytes, over the %u a client "
                "reads: shorter endpoints or fewer servers", packed, ZPS_MSG_MAX_ENVELOPE);
    else
        s_send(d, m, &env);
    free(eps);
}

/* zps-ctl add-server / remove-server.  The coordinator has no
 * authentication (docs/operations.md): bind it where only the job's hosts
 * reach it. */
static void s_reconfig(s_daemon_t *d, zps_msg_t *m)
{
    const Zps__Reconfig *q = m->env->reconfig;
    char text[600];
    int rc;
    if (m->env->role != ZPS__ROLE__ROLE_TOOL) {
        s_error(d, m, ZPS_EPROTO, "RECONFIG from a %s: only zps-ctl reconfigures", s_role(m));
        return;
    }
    const char *op = q->op ? q->op : "";
    if (!strcmp(op, "add-server")) {
        const char *ep = q->endpoint ? q->endpoint : "";
        rc = ps_coord_add_server(d->coord, zps_now_ms(), ep, text, sizeof text);
    } else if (!strcmp(op, "remove-server")) {
        rc = ps_coord_remove_server(d->coord, zps_now_ms(), q->rank, text, sizeof text);
    } else {
        char esc[ZPS_LOG_WIRE_BUF];
        s_error(d, m, ZPS_EINVAL, "RECONFIG '%s': expected add-server or remove-server",
                zps_log_escape(op, strlen(op), esc, sizeof esc, ZPS_LOG_WIRE_CHARS));
        return;
    }
    zps_info(d->log, "%s from %s: %s%s", op, m->peer, rc ? "refused: " : "", text);
    if (rc) {
        s_error(d, m, rc, "%s: %s", op, text);
        return;
    }
    const zps_ranges_t *t = ps_coord_table(d->coord);
    Zps__Envelope env;
    Zps__ReconfigReply body = ZPS__RECONFIG_REPLY__INIT;
    zps_msg_env(&env, ZPS__MSG_TYPE__RECONFIG_REPLY, ZPS__ROLE__ROLE_SERVER, 0,
                m->env->request_id);
    body.text = text;
    body.table_version = t ? t->version : 0;
    env.body_case = ZPS__ENVELOPE__BODY_RECONFIG_REPLY;
    env.reconfig_reply = &body;
    s_send(d, m, &env);
}

static void s_handle(s_daemon_t *d, zps_msg_t *m)
{
    if (m->nbulk > 0) {
        s_error(d, m, ZPS_EPROTO, "%s with %d bulk frames: the coordinator takes none",
                zps_msg_type_name(m->env->type), m->nbulk);
        return;
    }
    if (m->env->body_case == ZPS__ENVELOPE__BODY_BEAT && m->env->type == ZPS__MSG_TYPE__BEAT)
        s_beat(d, m);
    else if (m->env->body_case == ZPS__ENVELOPE__BODY_TABLE_GET &&
             m->env->type == ZPS__MSG_TYPE__TABLE_GET)
        s_table_get(d, m);
    else if (m->env->body_case == ZPS__ENVELOPE__BODY_RECONFIG &&
             m->env->type == ZPS__MSG_TYPE__RECONFIG)
        s_reconfig(d, m);
    else
        s_error(d, m, ZPS_EPROTO, "zps-coord answers BEAT, TABLE_GET and RECONFIG, not %s",
                zps_msg_type_name(m->env->type));
}

static int s_serve(const s_conf_t *conf, zps_log_t *log)
{
    char err[300];
    ps_coord_t *coord = ps_coord_new(&conf->coord, log, zps_now_ms(), err, sizeof err);
    if (!coord) {
        zps_error(log, "cannot start: %s", err);
        return 2;
    }
    void *ctx = zmq_ctx_new();
    void *sock = ctx ? zmq_socket(ctx, ZMQ_ROUTER) : NULL;
    int rc = 1;
    if (!sock) {
        zps_error(log, "cannot create a ZeroMQ socket: %s", zmq_strerror(errno));
        goto out;
    }
    int64_t maxmsg = S_MAX_FRAME;
    int mandatory = 1, sndtimeo = 0, linger = 0, hwm = 10000;
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    /* a reply to a full or vanished peer fails at once (counted), never blocks */
    zmq_setsockopt(sock, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory);
    zmq_setsockopt(sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
    char spec[300], endpoint[300];
    s_bind_spec(conf->listen, spec, sizeof spec);
    if (zmq_bind(sock, spec) != 0) {
        zps_error(log, "cannot bind %s: %s", conf->listen, zmq_strerror(errno));
        goto out;
    }
    size_t elen = sizeof endpoint;
    if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, endpoint, &elen) != 0)
        snprintf(endpoint, sizeof endpoint, "%s", conf->listen);
    zps_info(log, "listening on %s: %u servers (%u rank slots), %u replicas, failure timeout %u "
             "ms (leases of %u ms)", endpoint, conf->coord.nservers, ps_coord_nservers(coord),
             ps_coord_replicas(coord),
             conf->coord.failure_ms, conf->coord.failure_ms / 2);
    printf("zps-coord listening on %s\n", endpoint);
    fflush(stdout);
    if (conf->ready_file[0]) {
        /* the endpoint, through the atomic writer: a reader sees the whole
         * line or no file (zps-launch waits for it) */
        char why[600];
        zps_out_t *of = zps_out_open(conf->ready_file, why, sizeof why);
        if (of)
            fprintf(zps_out_file(of), "%s\n", endpoint);
        if (!of || zps_out_close(&of, 1, why, sizeof why) != 0) {
            zps_error(log, "cannot write --ready-file %s: %s", conf->ready_file, why);
            goto out;
        }
    }

    s_daemon_t d = {.sock = sock, .coord = coord, .log = log};
    while (!g_stop) {
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 50) < 0 && errno != EINTR) {
            zps_error(log, "poll failed: %s", zmq_strerror(errno));
            goto out;
        }
        for (int k = 0; k < S_DRAIN && !g_stop; k++) {
            zps_msg_t m;
            int r = zps_msg_recv(sock, 1, &m, ZMQ_DONTWAIT);
            if (r == ZPS_EIO || r == ZPS_EINTR) {
                zps_msg_close(&m);
                break; /* EAGAIN: drained */
            }
            if (r != 0)
                s_error(&d, &m, r, "%s", m.reason);
            else
                s_handle(&d, &m);
            zps_msg_close(&m);
        }
        ps_coord_tick(coord, zps_now_ms());
    }
    rc = 0;
    ps_coord_stats_t st;
    ps_coord_get_stats(coord, &st);
    zps_info(log, "signal received, exiting: table version %llu, %u of %u servers in the table, "
             "%u ranges with no replica; %llu beats, %llu table requests, %llu removals, %llu "
             "ranges given to joiners, %llu joined, %llu joiners removed with their donor, %llu "
             "ranges restored from checkpoints, %llu errors, %llu bad tables, %llu replies "
             "dropped", (unsigned long long)st.version,
             st.members, ps_coord_nservers(coord), st.lost, (unsigned long long)st.beats,
             (unsigned long long)d.table_gets, (unsigned long long)st.removals,
             (unsigned long long)st.joins_started, (unsigned long long)st.joins_completed,
             (unsigned long long)st.joiners_removed, (unsigned long long)st.restored,
             (unsigned long long)(d.errors), (unsigned long long)st.bad_tables,
             (unsigned long long)d.dropped);
out:
    if (sock)
        zmq_close(sock);
    if (ctx)
        zmq_ctx_term(ctx);
    ps_coord_destroy(&coord);
    return rc;
}

static int s_run(int argc, char **argv, const zps_env_t *env)
{
    s_conf_t conf;
    memset(&conf, 0, sizeof conf);
    ps_coord_conf_defaults(&conf.coord);
    conf.level = ZPS_LOG_INFO;
    char err[600];
    int o, li;
    while ((o = zps_getopt(argc, argv, NULL, s_options, &li, err, sizeof err)) != -1) {
        if (o == O_HELP) {
            s_usage(stdout);
            return 0;
        }
        if (o == O_VERSION) {
            printf("zps-coord %s (protocol %u)\n", ZPS_VERSION, ZPS_PROTOCOL_VERSION);
            return 0;
        }
        if (o < 0 || s_opt(&conf, o, optarg, err, sizeof err) != 0) {
            fprintf(stderr, "zps-coord: %s (see --help)\n", err);
            return 2;
        }
    }
    if (conf.coord.max_servers == 0) {
        uint32_t S = conf.coord.nservers, m2 = 2 * S < S + 2 ? S + 2 : 2 * S;
        if (m2 > 1024)
            m2 = S > 1024 ? S : 1024;
        if (m2 > ZPS_RANGES_MAX_SERVERS)
            m2 = ZPS_RANGES_MAX_SERVERS;
        conf.coord.max_servers = m2 < S ? S : m2;
    }
    if (optind < argc) {
        fprintf(stderr, "zps-coord: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    if (!conf.listen[0]) {
        fprintf(stderr, "zps-coord: --listen ENDPOINT is required (see --help)\n");
        return 2;
    }
    zps_log_t *log = zps_log_new("coord", 0, stderr);
    if (!log)
        return 1;
    zps_log_set_level(log, conf.level);
    zps_env_log(env, log);
    zps_daemon_signals(s_on_signal);
    /* every server and client holds a connection: descriptors up to the
     * hard limit (past it ZeroMQ refuses new connections, and serves on) */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int rc = s_serve(&conf, log);
    zps_log_destroy(&log);
    return rc;
}

int main(int argc, char **argv)
{
    /* ZPS_* variables become the options the command line does not give */
    char err[512];
    zps_env_t *env = zps_env_new("zps-coord", s_options, environ, argc, argv, err, sizeof err);
    if (!env) {
        fprintf(stderr, "zps-coord: %s\n", err);
        return 2;
    }
    int rc = s_run(zps_env_argc(env), zps_env_argv(env), env);
    if (rc == 2) /* a usage error: say which options came from the environment */
        zps_env_explain(env, stderr);
    zps_env_destroy(&env);
    return rc;
}
