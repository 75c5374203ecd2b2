/* ctl_table: the table command (see ctl_table.h). */
#include "ctl_table.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "zps_args.h"
#include "zps_err.h"
#include "zps_msg.h"
#include "zps_ranges.h"
#include "zps_time.h"

/* One TABLE_GET to the coordinator; the decoded table and endpoints
 * (eps may be NULL). */
static int s_fetch(const ctl_opts_t *o, zps_ranges_t *t, char ***eps, size_t *neps)
{
    void *ctx = zmq_ctx_new(), *sock = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    int rc = 1, zero = 0;
    if (!sock) {
        fprintf(stderr, "zps-ctl: table: cannot create a socket\n");
        goto out;
    }
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(sock, o->coordinator) != 0) {
        fprintf(stderr, "zps-ctl: table: cannot connect to '%s': %s\n", o->coordinator,
                zmq_strerror(errno));
        goto out;
    }
    Zps__Envelope env;
    Zps__TableGet tg = ZPS__TABLE_GET__INIT;
    zps_msg_env(&env, ZPS__MSG_TYPE__TABLE_GET, ZPS__ROLE__ROLE_TOOL, o->rank, 1);
    env.body_case = ZPS__ENVELOPE__BODY_TABLE_GET;
    env.table_get = &tg;
    size_t wire;
    if (zps_msg_send(sock, NULL, &env, NULL, 0, NULL, 0, &wire) != 0) {
        fprintf(stderr, "zps-ctl: table: cannot send to %s\n", o->coordinator);
        goto out;
    }
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, (long)(o->timeout * 1000)) <= 0) {
        fprintf(stderr, "zps-ctl: table: no answer from the coordinator at %s within %.0f s\n",
                o->coordinator, o->timeout);
        goto out;
    }
    zps_msg_t m;
    int r = zps_msg_recv(sock, 0, &m, 0);
    char err[200];
    if (r != 0 || m.env->body_case != ZPS__ENVELOPE__BODY_TABLE_REPLY) {
        fprintf(stderr, "zps-ctl: table: %s\n",
                r ? m.reason : m.env->body_case == ZPS__ENVELOPE__BODY_ERROR ? m.env->error->text
                                                                         : "unexpected answer");
    } else if (m.env->table_reply->version == 0) {
        fprintf(stderr, "zps-ctl: table: the coordinator has no table yet (not every server has "
                "started)\n");
    } else if (zps_ranges_decode(t, m.env->table_reply->table.data, m.env->table_reply->table.len,
                                 err, sizeof err) != 0) {
        fprintf(stderr, "zps-ctl: table: %s\n", err);
    } else {
        if (eps) {
            *neps = m.env->table_reply->n_endpoints;
            *eps = calloc(*neps + 1, sizeof **eps);
            for (size_t i = 0; *eps && i < *neps; i++)
                (*eps)[i] = strdup(m.env->table_reply->endpoints[i]);
        }
        rc = 0;
    }
    zps_msg_close(&m);
out:
    if (sock)
        zmq_close(sock);
    if (ctx)
        zmq_ctx_term(ctx);
    return rc;
}

static int s_keys(const ctl_opts_t *o, const zps_ranges_t *t)
{
    FILE *f = fopen(o->file, "r");
    if (!f) {
        fprintf(stderr, "zps-ctl: table: cannot read %s\n", o->file);
        return 1;
    }
    char line[128];
    unsigned long ln = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        line[strcspn(line, " \t\r\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        uint64_t key;
        if (zps_parse_u64(line, &key) != 0) {
            fprintf(stderr, "zps-ctl: table: %s:%lu: not a key: '%s'\n", o->file, ln, line);
            rc = 1;
            break;
        }
        uint32_t r = zps_range_of(key);
        printf("%" PRIu64 " %u", key, r);
        if (!t->nrep[r])
            printf(" lost");
        for (uint32_t i = 0; i < t->nrep[r]; i++)
            printf(" %u", t->rep[r][i]);
        putchar('\n');
    }
    fclose(f);
    return rc;
}

int ctl_table(const ctl_opts_t *o)
{
    zps_ranges_t *t = malloc(sizeof *t);
    char **eps = NULL;
    size_t neps = 0;
    if (!t || s_fetch(o, t, &eps, &neps) != 0) {
        free(t);
        return 1;
    }
    int rc = 0;
    if (o->file) {
        rc = s_keys(o, t);
    } else {
        printf("version %" PRIu64 " servers %u replicas %u ranges %u lost %u\n", t->version,
               t->nservers, t->replicas, ZPS_RANGES, zps_ranges_lost(t));
        for (uint32_t s = 0; s < t->nservers; s++) {
            uint32_t prim = 0, n = zps_ranges_count(t, s, &prim);
            printf("server %u %s ranges %u primary %u%s\n", s,
                   s < neps && eps[s] && eps[s][0] ? eps[s] : "-", n, prim,
                   n ? "" : " (not in the table)");
        }
    }
    for (size_t i = 0; eps && i < neps; i++)
        free(eps[i]);
    free(eps);
    free(t);
    return rc;
}

/* add-server / remove-server: the request. */
static int s_ask(const ctl_opts_t *o, const char *cmd, const char *arg)
{
    void *ctx = zmq_ctx_new(), *sock = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    int rc = 1, zero = 0;
    if (!sock || zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_connect(sock, o->coordinator) != 0) {
        fprintf(stderr, "zps-ctl: %s: cannot connect to '%s'\n", cmd, o->coordinator);
        goto out;
    }
    Zps__Envelope env;
    Zps__Reconfig q = ZPS__RECONFIG__INIT;
    zps_msg_env(&env, ZPS__MSG_TYPE__RECONFIG, ZPS__ROLE__ROLE_TOOL, o->rank, 1);
    q.op = (char *)cmd;
    if (!strcmp(cmd, "add-server"))
        q.endpoint = (char *)arg;
    else
        zps_parse_u32(arg, &q.rank); /* checked by ctl_opts */
    env.body_case = ZPS__ENVELOPE__BODY_RECONFIG;
    env.reconfig = &q;
    size_t wire;
    if (zps_msg_send(sock, NULL, &env, NULL, 0, NULL, 0, &wire) != 0) {
        fprintf(stderr, "zps-ctl: %s: cannot send to %s\n", cmd, o->coordinator);
        goto out;
    }
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, (long)(o->timeout * 1000)) <= 0) {
        fprintf(stderr, "zps-ctl: %s: no answer from the coordinator at %s within %.0f s\n", cmd,
                o->coordinator, o->timeout);
        goto out;
    }
    zps_msg_t m;
    int r = zps_msg_recv(sock, 0, &m, 0);
    if (r != 0)
        fprintf(stderr, "zps-ctl: %s: %s\n", cmd, m.reason);
    else if (m.env->body_case == ZPS__ENVELOPE__BODY_ERROR)
        fprintf(stderr, "zps-ctl: %s refused: %s\n", cmd, m.env->error->text);
    else if (m.env->body_case != ZPS__ENVELOPE__BODY_RECONFIG_REPLY)
        fprintf(stderr, "zps-ctl: %s: unexpected answer\n", cmd);
    else {
        printf("%s: %s\n", cmd, m.env->reconfig_reply->text);
        rc = 0;
    }
    zps_msg_close(&m);
out:
    if (sock)
        zmq_close(sock);
    if (ctx)
        zmq_ctx_term(ctx);
    return rc;
}

int ctl_reconfig(const ctl_opts_t *o, const char *cmd, const char *arg)
{
    int add = !strcmp(cmd, "add-server");
    zps_ranges_t *t = malloc(sizeof *t);
    char **eps = NULL;
    size_t neps = 0;
    if (!t) {
        fprintf(stderr, "zps-ctl: out of memory\n");
        return 1;
    }
    /* the rank: given, or the slot announcing the endpoint */
    uint32_t rank = UINT32_MAX;
    if (!add || zps_parse_u32(arg, &rank) != 0) {
        rank = UINT32_MAX;
        if (!add)
            zps_parse_u32(arg, &rank);
        else if (s_fetch(o, t, &eps, &neps) == 0)
            for (size_t i = 0; i < neps; i++)
                if (eps[i] && !strcmp(eps[i], arg))
                    rank = (uint32_t)i;
    }
    for (size_t i = 0; eps && i < neps; i++)
        free(eps[i]);
    free(eps);
    int rc = s_ask(o, cmd, arg);
    if (rc || o->no_wait) {
        free(t);
        return rc;
    }
    int64_t start = zps_now_ms(), last = start;
    int64_t limit = start + (int64_t)(o->server_timeout * 1000);
    for (;;) {
        if (s_fetch(o, t, NULL, NULL) != 0) {
            rc = 1;
            break;
        }
        uint32_t moving = 0, held = rank < t->nservers ? zps_ranges_count(t, rank, NULL) : 0;
        for (uint32_t r = 0; r < ZPS_RANGES; r++)
            moving += t->join[r] != ZPS_NO_RANK && (t->join[r] == rank || t->out[r] == rank);
        int done = rank == UINT32_MAX || (add ? moving == 0 : held == 0);
        int64_t now = zps_now_ms();
        if (done) {
            printf("%s: done in %.1f s (table version %" PRIu64 "; server %u holds %u ranges)\n",
                   cmd, (double)(now - start) / 1000.0, t->version, rank, held);
            break;
        }
        if (now >= limit) {
            fprintf(stderr, "zps-ctl: %s: not done after %.0f s: %u ranges still moving (see the "
                    "coordinator's log)\n", cmd, o->server_timeout, moving);
            rc = 1;
            break;
        }
        if (now - last >= 1000) {
            printf("%s: %u ranges moving (table version %" PRIu64 ")\n", cmd, moving, t->version);
            fflush(stdout);
            last = now;
        }
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
    free(t);
    return rc;
}
