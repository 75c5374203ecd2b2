/* zps: the public C API (zps.h) over the worker's client (wk_client.h).
 *
 * A zps_client_t is a wk_client_t opened as a tool (role TOOL, like
 * zps-ctl: it takes no part in ssp/bsp clocks), with every push sent to
 * every server (sync_all, so each server's exactly-once window sees this
 * client's sequence numbers without gaps) and retries on (a lost message is
 * sent again and never applied twice).  Only table 0 is exposed.  What the
 * API checks itself (the key order, the server list) is said in the
 * handle's error text, as wk_client says its own failures.  Built into
 * libzps.so.0, whose exported symbols are the ones of zps.h (worker/zps.map). */
#include "zps_err.h"

#include "zps.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wk_client.h"
#include "zps.pb-c.h"

struct zps_client {
    wk_client_t *wk;
    uint32_t nservers, dim;
    char err[512];
};

const char *zps_version(void)
{
    return ZPS_VERSION;
}

void zps_client_options_init(zps_client_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->connect_timeout_ms = 10000;
    o->timeout_ms = 60000;
}

static void s_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

zps_client_t *zps_client_connect(const char *servers, const zps_client_options_t *opts,
                                 char *err, size_t errlen)
{
    zps_client_options_t def;
    if (!opts) {
        zps_client_options_init(&def);
        opts = &def;
    }
    if (!servers || !*servers) {
        s_errf(err, errlen, "zps_client_connect: no servers given (want tcp://HOST:PORT,...)");
        return NULL;
    }
    char *list = strdup(servers);
    const char **eps = calloc(WK_MAX_SERVERS, sizeof *eps);
    zps_client_t *c = calloc(1, sizeof *c);
    if (!list || !eps || !c) {
        s_errf(err, errlen, "zps_client_connect: out of memory");
        goto fail;
    }
    uint32_t n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == WK_MAX_SERVERS) {
            s_errf(err, errlen, "zps_client_connect: more than %u servers", WK_MAX_SERVERS);
            goto fail;
        }
        if (strncmp(tok, "tcp://", 6) != 0 && strncmp(tok, "ipc://", 6) != 0) {
            s_errf(err, errlen, "zps_client_connect: server %u '%s' is not tcp://HOST:PORT", n,
                   tok);
            goto fail;
        }
        eps[n++] = tok;
    }
    if (n == 0) {
        s_errf(err, errlen, "zps_client_connect: no servers in '%s'", servers);
        goto fail;
    }
    wk_client_conf_t cc;
    wk_client_conf_defaults(&cc);
    cc.servers = eps;
    cc.nservers = n;
    cc.role = ZPS__ROLE__ROLE_TOOL;
    cc.rank = opts->rank;
    cc.sync_all = 1;
    cc.connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 10000;
    cc.timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 60000;
    cc.retry_ms = 1000;
    cc.server_timeout_ms = cc.timeout_ms;
    cc.curve_public = opts->curve_public;
    cc.curve_secret = opts->curve_secret;
    cc.server_public = opts->server_public;
    char werr[1024];
    c->wk = wk_client_new(&cc, werr, sizeof werr);
    if (!c->wk) {
        s_errf(err, errlen, "%s", werr);
        goto fail;
    }
    if (wk_client_ntables(c->wk) < 1) {
        s_errf(err, errlen, "zps_client_connect: the servers have no table");
        goto fail;
    }
    c->nservers = n;
    c->dim = wk_client_table(c->wk, 0)->dim;
    free(list); /* wk_client copied the endpoints */
    free(eps);
    return c;
fail:
    if (c)
        wk_client_destroy(&c->wk);
    free(c);
    free(list);
    free(eps);
    return NULL;
}

void zps_client_destroy(zps_client_t **cp)
{
    if (!cp || !*cp)
        return;
    wk_client_destroy(&(*cp)->wk);
    free(*cp);
    *cp = NULL;
}

uint32_t zps_client_num_servers(const zps_client_t *c)
{
    return c ? c->nservers : 0;
}

uint32_t zps_client_dim(const zps_client_t *c)
{
    return c ? c->dim : 0;
}

/* 0 if keys[0..n) are strictly increasing and not the bias key, else
 * ZPS_EINVAL with the reason in c->err. */
static int s_check_keys(zps_client_t *c, const char *what, const uint64_t *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (keys[i] == UINT64_MAX) {
            snprintf(c->err, sizeof c->err, "%s: key %zu is UINT64_MAX (reserved)", what, i);
            return ZPS_EINVAL;
        }
        if (i && keys[i] <= keys[i - 1]) {
            snprintf(c->err, sizeof c->err,
                     "%s: keys must be strictly increasing: key %zu (%llu) follows %llu", what,
                     i, (unsigned long long)keys[i], (unsigned long long)keys[i - 1]);
            return ZPS_EINVAL;
        }
    }
    return 0;
}

/* A wk_client failure's text into c->err. */
static int s_fail(zps_client_t *c, const char *what, int rc)
{
    const char *why = wk_client_error(c->wk);
    snprintf(c->err, sizeof c->err, "%s: %s", what, why && *why ? why : zps_strerror(rc));
    return rc;
}

int zps_client_pull(zps_client_t *c, const uint64_t *keys, size_t n, float *out)
{
    if (!c || (n && (!keys || !out)))
        return ZPS_EINVAL;
    c->err[0] = 0;
    if (n == 0)
        return 0;
    int rc = s_check_keys(c, "zps_client_pull", keys, n);
    if (!rc && (rc = wk_client_pull(c->wk, 0, keys, n, out)) != 0)
        s_fail(c, "zps_client_pull", rc);
    return rc;
}

int zps_client_push(zps_client_t *c, const uint64_t *keys, const float *grads, size_t n)
{
    if (!c || (n && (!keys || !grads)))
        return ZPS_EINVAL;
    c->err[0] = 0;
    if (n == 0)
        return 0;
    int rc = s_check_keys(c, "zps_client_push", keys, n);
    if (!rc && (rc = wk_client_push(c->wk, 0, keys, grads, n)) != 0)
        s_fail(c, "zps_client_push", rc);
    return rc;
}

int zps_client_stats(zps_client_t *c, uint32_t server, zps_server_stats_t *out)
{
    if (!c || !out)
        return ZPS_EINVAL;
    c->err[0] = 0;
    if (server >= c->nservers) {
        snprintf(c->err, sizeof c->err, "zps_client_stats: server %u of %u", server,
                 c->nservers);
        return ZPS_EINVAL;
    }
    wk_server_stats_t st;
    int rc = wk_client_stats(c->wk, server, &st);
    if (rc)
        return s_fail(c, "zps_client_stats", rc);
    memset(out, 0, sizeof *out);
    out->keys_stored = st.keys_stored;
    out->bytes_used = st.bytes_used;
    out->pushes = st.pushes;
    out->pulls = st.pulls;
    out->keys_pushed = st.keys_pushed;
    out->keys_pulled = st.keys_pulled;
    out->errors = st.errors;
    out->uptime_ms = st.uptime_ms;
    return 0;
}

const char *zps_client_error(const zps_client_t *c)
{
    return c ? c->err : "no client";
}
