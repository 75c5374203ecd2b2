/* ctl_stats: the stats command (see ctl_stats.h). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl_conn.h"
#include "ctl_stats.h"
#include "zps_err.h"

static void s_stats_text(uint32_t s, const char *addr, const Zps__StatsReply *b)
{
    printf("server=%u addr=%s keys_stored=%" PRIu64 " bytes_used=%" PRIu64 " pushes=%" PRIu64
           " received_pushes=%" PRIu64 " applied_pushes=%" PRIu64 " duplicate_pushes=%" PRIu64
           " rejected_pushes=%" PRIu64 " lost_pushes=%" PRIu64 " restored_pushes=%" PRIu64
           " pulls=%" PRIu64 " held_pulls=%" PRIu64 " pull_waits=%" PRIu64 " errors=%" PRIu64
           " checkpoints=%" PRIu64 " min_clock=%" PRIu64 " worker_clocks=",
           s, addr, b->keys_stored, b->bytes_used, b->pushes, b->received_pushes,
           b->applied_pushes, b->duplicate_pushes, b->rejected_pushes, b->lost_pushes,
           b->restored_pushes, b->pulls, b->held_pulls, b->pull_waits, b->errors, b->checkpoints,
           b->min_clock);
    for (size_t w = 0; w < b->n_worker_clocks; w++)
        printf("%s%" PRIu64, w ? "," : "", b->worker_clocks[w]);
    printf("%s uptime_ms=%" PRIu64 " server_nonce=%016" PRIx64, b->n_worker_clocks ? "" : "-",
           b->uptime_ms, b->server_nonce);
    /* admission (--admit) */
    printf(" admitted_keys=%" PRIu64 " admission_rejected_keys=%" PRIu64
           " admission_rejected_pushes=%" PRIu64 " expired_keys=%" PRIu64
           " evicted_keys=%" PRIu64 " relays=%" PRIu64 " relay_keys=%" PRIu64
           " relays_known=%" PRIu64 " split_requests=%" PRIu64 "\n", b->admitted_keys,
           b->admission_rejected_keys, b->admission_rejected_pushes, b->expired_keys,
           b->evicted_keys, b->relays, b->relay_keys, b->relays_known, b->split_requests);
    for (size_t i = 0; i < b->n_clients; i++) {
        const Zps__ClientStats *k = b->clients[i];
        printf("  client server=%u rank=%u nonce=%016" PRIx64 " received=%" PRIu64
               " applied=%" PRIu64 " duplicates=%" PRIu64 " rejected=%" PRIu64
               " applied_seq=%" PRIu64 " durable_seq=%" PRIu64 "\n",
               s, k->rank, k->nonce, k->received, k->applied, k->duplicates, k->rejected,
               k->applied_seq, k->durable_seq);
    }
}

static void s_json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void s_stats_json(uint32_t s, const char *addr, const Zps__StatsReply *b, const char *err)
{
    printf("    {\"server\": %u, \"addr\": ", s);
    s_json_str(addr);
    if (!b) {
        printf(", \"error\": ");
        s_json_str(err);
        printf("}");
        return;
    }
    printf(", \"keys_stored\": %" PRIu64 ", \"bytes_used\": %" PRIu64 ", \"pushes\": %" PRIu64
           ", \"received_pushes\": %" PRIu64 ", \"applied_pushes\": %" PRIu64
           ", \"duplicate_pushes\": %" PRIu64 ", \"rejected_pushes\": %" PRIu64
           ", \"lost_pushes\": %" PRIu64 ", \"restored_pushes\": %" PRIu64 ", \"pulls\": %" PRIu64
           ", \"held_pulls\": %" PRIu64 ", \"pull_waits\": %" PRIu64 ", \"errors\": %" PRIu64
           ", \"checkpoints\": %" PRIu64 ", \"min_clock\": %" PRIu64 ", \"uptime_ms\": %" PRIu64
           ", \"server_nonce\": \"%016" PRIx64 "\", \"worker_clocks\": [",
           b->keys_stored, b->bytes_used, b->pushes, b->received_pushes, b->applied_pushes,
           b->duplicate_pushes, b->rejected_pushes, b->lost_pushes, b->restored_pushes, b->pulls,
           b->held_pulls, b->pull_waits, b->errors, b->checkpoints, b->min_clock, b->uptime_ms,
           b->server_nonce);
    for (size_t w = 0; w < b->n_worker_clocks; w++)
        printf("%s%" PRIu64, w ? ", " : "", b->worker_clocks[w]);
    /* admission (--admit) */
    printf("], \"admitted_keys\": %" PRIu64 ", \"admission_rejected_keys\": %" PRIu64
           ", \"admission_rejected_pushes\": %" PRIu64 ", \"expired_keys\": %" PRIu64
           ", \"evicted_keys\": %" PRIu64 ", \"relays\": %" PRIu64 ", \"relay_keys\": %" PRIu64
           ", \"relays_known\": %" PRIu64 ", \"split_requests\": %" PRIu64, b->admitted_keys,
           b->admission_rejected_keys, b->admission_rejected_pushes, b->expired_keys,
           b->evicted_keys, b->relays, b->relay_keys, b->relays_known, b->split_requests);
    printf(", \"clients\": [");
    for (size_t i = 0; i < b->n_clients; i++) {
        const Zps__ClientStats *k = b->clients[i];
        printf("%s{\"rank\": %u, \"nonce\": \"%016" PRIx64 "\", \"received\": %" PRIu64
               ", \"applied\": %" PRIu64 ", \"duplicates\": %" PRIu64 ", \"rejected\": %" PRIu64
               ", \"applied_seq\": %" PRIu64 ", \"durable_seq\": %" PRIu64 "}",
               i ? ", " : "", k->rank, k->nonce, k->received, k->applied, k->duplicates,
               k->rejected, k->applied_seq, k->durable_seq);
    }
    printf("]}");
}

int ctl_stats(const ctl_opts_t *o)
{
    ctl_conn_t *c = ctl_conn_new(o);
    if (!c)
        return 1;
    int failed = 0, first = 1;
    uint64_t tot[7] = {0};
    if (o->json)
        printf("{\n  \"servers\": [\n");
    for (uint32_t s = 0; s < o->nservers; s++) {
        if (o->server >= 0 && (uint32_t)o->server != s)
            continue;
        Zps__Envelope env;
        Zps__Stats st = ZPS__STATS__INIT;
        ctl_conn_env(c, &env, ZPS__MSG_TYPE__STATS);
        env.body_case = ZPS__ENVELOPE__BODY_STATS;
        env.stats = &st;
        zps_msg_t m;
        char err[600];
        int rc = ctl_conn_call(c, s, &env, &m, err, sizeof err);
        if (!rc && m.env->body_case != ZPS__ENVELOPE__BODY_STATS_REPLY) {
            snprintf(err, sizeof err, "answered stats with %s", zps_msg_type_name(m.env->type));
            zps_msg_close(&m);
            rc = ZPS_EPROTO;
        }
        if (o->json && !first)
            printf(",\n");
        first = 0;
        if (rc) {
            failed = 1;
            if (o->json)
                s_stats_json(s, o->servers[s], NULL, err);
            else
                printf("server=%u addr=%s error=\"%s\"\n", s, o->servers[s], err);
            fprintf(stderr, "zps-ctl: server %u at %s: %s\n", s, o->servers[s], err);
            continue;
        }
        const Zps__StatsReply *b = m.env->stats_reply;
        if (o->json)
            s_stats_json(s, o->servers[s], b, NULL);
        else
            s_stats_text(s, o->servers[s], b);
        uint64_t v[7] = {b->keys_stored, b->received_pushes, b->applied_pushes, b->duplicate_pushes,
                         b->rejected_pushes, b->lost_pushes, b->pushes};
        for (int i = 0; i < 7; i++)
            tot[i] += v[i];
        zps_msg_close(&m);
    }
    if (o->json)
        printf("\n  ]\n}\n");
    else
        printf("total keys_stored=%" PRIu64 " received_pushes=%" PRIu64 " applied_pushes=%" PRIu64
               " duplicate_pushes=%" PRIu64 " rejected_pushes=%" PRIu64 " lost_pushes=%" PRIu64
               " pushes=%" PRIu64 "%s\n",
               tot[0], tot[1], tot[2], tot[3], tot[4], tot[5], tot[6],
               failed ? " (some servers did not answer)" : "");
    ctl_conn_destroy(&c);
    return failed;
}
