/* wk_link: see wk_link.h.
 *
 * DESIGN
 * What used to open wk_trainer_new: the endpoints are one strdup of
 * --servers cut at the commas (the client keeps pointers to them, so the
 * link holds them as long as the client); the link itself is the context
 * of the client's callbacks, which need only the log and --server-timeout.
 * Everything else is a translation of zps_conf_t into wk_client_conf_t,
 * done once. */
#include "wk_link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zps_curve.h"
#include "zps_err.h"
#include "zps_optim.h"

struct wk_link {
    const zps_conf_t *conf;
    zps_log_t *log;
    const char **servers;
    uint32_t nservers;
    char *servers_buf;
    wk_client_t *client;
};

static int s_split_servers(wk_link_t *l, char *err, size_t errlen)
{
    if (!l->conf->servers || !*l->conf->servers) {
        snprintf(err, errlen, "no servers given (--servers A,B,...; zps-launch sets it)");
        return ZPS_EINVAL;
    }
    l->servers_buf = strdup(l->conf->servers);
    size_t n = 1;
    for (const char *p = l->conf->servers; *p; p++)
        n += *p == ',';
    l->servers = calloc(n, sizeof *l->servers);
    if (!l->servers_buf || !l->servers)
        return ZPS_ENOMEM;
    char *save = NULL;
    for (char *tok = strtok_r(l->servers_buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        l->servers[l->nservers++] = tok;
    return 0;
}

static void s_on_notice(void *ctx, const char *text)
{
    wk_link_t *l = ctx;
    zps_warn(l->log, "%s", text);
}

static void s_on_wait(void *ctx, uint32_t server, const char *addr, double waited)
{
    wk_link_t *l = ctx;
    zps_warn(l->log, "waiting for server %u at %s: no answer for %.0f s, retrying (gives up after "
             "--server-timeout %.0f s)", server, addr, waited, l->conf->server_timeout);
}

wk_link_t *wk_link_new(const zps_conf_t *conf, zps_log_t *log, char *err, size_t errlen)
{
    wk_link_t *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->conf = conf;
    l->log = log;
    if (!conf->local && s_split_servers(l, err, errlen))
        wk_link_destroy(&l);
    return l;
}

void wk_link_destroy(wk_link_t **lp)
{
    if (!lp || !*lp)
        return;
    wk_link_t *l = *lp;
    wk_client_destroy(&l->client);
    free(l->servers);
    free(l->servers_buf);
    free(l);
    *lp = NULL;
}

uint32_t wk_link_nservers(const wk_link_t *l)
{
    return l->nservers;
}

wk_client_t *wk_link_connect(wk_link_t *l, char *err, size_t errlen)
{
    const zps_conf_t *conf = l->conf;
    wk_client_conf_t cc;
    wk_client_conf_defaults(&cc);
    cc.servers = l->servers;
    cc.nservers = l->nservers;
    cc.rank = conf->rank;
    cc.connect_timeout_ms = (int)(conf->connect_timeout * 1000);
    cc.timeout_ms = (int)(conf->request_timeout * 1000);
    cc.push_codec = conf->push_codec;
    cc.pull_codec = conf->pull_codec;
    cc.key_cache = conf->key_cache;
    cc.seed = conf->seed;
    cc.retry_ms = 2000;
    cc.server_timeout_ms = (int)(conf->server_timeout * 1000);
    cc.coordinator = conf->coordinator;
    cc.max_retained_bytes = (uint64_t)(conf->max_retained_mb * 1048576.0);
    cc.on_wait = s_on_wait;
    cc.on_notice = s_on_notice;
    cc.on_wait_ctx = l;
    if (conf->consistency != ZPS_CONS_ASYNC)
        cc.pull_retry_ms = (int)(conf->heartbeat_timeout * 2000); /* held pulls wait by design */
    if (conf->consistency != ZPS_CONS_ASYNC) {
        cc.sync_all = 1;
        cc.heartbeat_ms = (int)(conf->heartbeat_timeout * 1000 / 4);
        if (cc.heartbeat_ms < 50)
            cc.heartbeat_ms = 50;
        /* a held pull may legitimately wait for the slowest worker */
        if (cc.timeout_ms < (int)(conf->heartbeat_timeout * 2000))
            cc.timeout_ms = (int)(conf->heartbeat_timeout * 2000);
    }
    zps_curve_pair_t mine, theirs;
    if (conf->curve_secret || conf->server_public) {
        if (!conf->curve_secret || !conf->server_public) {
            snprintf(err, errlen, "CURVE needs both --curve-secret and --server-public");
            return NULL;
        }
        if (zps_curve_read(conf->curve_secret, &mine, err, errlen) ||
            zps_curve_read(conf->server_public, &theirs, err, errlen))
            return NULL;
        if (!mine.secret_z85[0]) {
            snprintf(err, errlen, "%s has no secret key (use the .key file)", conf->curve_secret);
            return NULL;
        }
        cc.curve_public = mine.public_z85;
        cc.curve_secret = mine.secret_z85;
        cc.server_public = theirs.public_z85;
    }
    zps_optim_conf_t local_opt;
    char local_job[128];
    if (conf->local) {
        zps_conf_table(conf, &local_opt);
        zps_conf_job_desc(conf, local_job, sizeof local_job);
        cc.local = &local_opt;
        cc.local_job = local_job;
    }
    char cerr[512];
    l->client = wk_client_new(&cc, cerr, sizeof cerr);
    if (!l->client) {
        snprintf(err, errlen, "%s", cerr);
        return NULL;
    }
    /* the servers must run the table this worker's options describe */
    zps_optim_conf_t want;
    char wdesc[256];
    zps_conf_table(conf, &want);
    zps_optim_describe(&want, wdesc, sizeof wdesc);
    char jdesc[128];
    zps_conf_job_desc(conf, jdesc, sizeof jdesc);
    if (strcmp(wk_client_job(l->client), jdesc) != 0) {
        snprintf(err, errlen,
                 "the servers run '%s' but this worker's options give '%s': start servers and "
                 "workers with the same training options",
                 wk_client_job(l->client), jdesc);
        return NULL;
    }
    const wk_table_info_t *have = wk_client_table(l->client, 0);
    if (strcmp(have->options, wdesc) != 0) {
        snprintf(err, errlen,
                 "the servers run table '%s' but this worker's options give '%s': start servers "
                 "and workers with the same training options",
                 have->options, wdesc);
        return NULL;
    }
    return l->client;
}
