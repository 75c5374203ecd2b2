/* zps-ctl: the operator's client for a running job (like redis-cli).
 *
 *   zps-ctl --servers A,B,... [connection options] COMMAND [command options]
 *     stats [--json] [--server R]   counters of every server (and per client process)
 *     pull KEY,KEY,...              one line per key: KEY V1 V2 ...
 *     push --file F [--window N]    each line of F is one push, applied exactly once
 *     dump [--out F]                every stored key and row, in key order
 *     health                        exit 0 iff every server answers
 *     shutdown [--server R]         asks the servers to exit (needs the admin token)
 *
 * DESIGN
 * pull and push go through the wk_client library (its public API only), so
 * they get its splitting by server, retries (a silent server is retried
 * every 2 s, backing off to 8 s, for --server-timeout seconds) and its
 * exactly-once push identity: this process is one client (rank --rank, one
 * random nonce) and each line of a push file is one push with its own
 * sequence number, so a line is applied once however often it is resent.
 * stats, dump, health and shutdown talk to each server on their own DEALER
 * socket (ctl_conn below): health must name every server that does not
 * answer (wk_client_new fails on the first), stats needs the per-client
 * records of StatsReply, shutdown carries the admin token and dump pages
 * through DUMP (a message added for this tool, server side ps/ps_dump.c).
 * Each of those sends a HELLO first (so a server that binds identities to
 * connections knows this one) and waits for each reply at most --timeout
 * seconds.
 *
 * Numbers on the command line and in files are base 10 (no octal or hex:
 * "010" is ten). */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "wk_client.h"
#include "zps.pb-c.h"
#include "zps_args.h"
#include "zps_codec.h"
#include "zps_curve.h"
#include "zps_err.h"
#include "zps_hash.h"
#include "zps_msg.h"
#include "zps_out.h"
#include "zps_time.h"

#define CTL_PAGE 65536u

typedef struct {
    char *servers_buf;
    const char **servers;
    uint32_t nservers;
    const char *curve_secret, *server_public, *token_file;
    double server_timeout, timeout, retry;
    uint32_t rank, table;
    int json;
    const char *file, *out, *reason;
    uint32_t window;
    int64_t server;          /* -1: all */
    zps_curve_pair_t mine, theirs;
    int curve;
} ctl_opts_t;

static void s_die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void s_die_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("zps-ctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see zps-ctl --help)\n", stderr);
    va_end(ap);
    exit(2);
}

/* ---- base-10 numbers (zps_args) -------------------------------------------- */

/* A finite decimal float (no hex, inf or nan); len bytes of s. */
static int s_float(const char *s, size_t len, float *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    return zps_parse_float(buf, out) ? -1 : 0;
}

static int s_seconds(const char *s, double *out)
{
    /* base-10 seconds, fractions allowed: 0.5 */
    float f;
    if (s_float(s, strlen(s), &f) || !(f > 0))
        return -1;
    *out = f;
    return 0;
}

/* Shortest text that reads back as the same float. */
static void s_fmt(float x, char out[32])
{
    if (x == 0) {
        strcpy(out, signbit(x) ? "-0" : "0");
        return;
    }
    if (x == truncf(x) && fabsf(x) < 1e15f) { /* integers as integers: 1000, not 1e+03 */
        snprintf(out, 32, "%.0f", (double)x);
        return;
    }
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(out, 32, "%.*g", prec, (double)x);
        if (strtof(out, NULL) == x)
            return;
    }
    snprintf(out, 32, "%.9g", (double)x);
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- the admin token ----------------------------------------------------------------- */

static int s_read_token(const char *path, char *tok, size_t len)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "zps-ctl: cannot read the admin token file %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (st.st_mode & 077) {
        fprintf(stderr, "zps-ctl: the admin token file %s is readable by others (mode %03o): "
                "chmod 600 it\n", path, (unsigned)(st.st_mode & 0777));
        return -1;
    }
    if (st.st_uid != getuid()) {
        fprintf(stderr, "zps-ctl: the admin token file %s is not owned by this user\n", path);
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (!f || !fgets(tok, (int)len, f)) {
        fprintf(stderr, "zps-ctl: cannot read the admin token file %s\n", path);
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    size_t n = strlen(tok);
    while (n && isspace((unsigned char)tok[n - 1]))
        tok[--n] = 0;
    if (!n) {
        fprintf(stderr, "zps-ctl: the admin token file %s is empty\n", path);
        return -1;
    }
    return 0;
}

/* ---- ctl_conn: one DEALER per server for control requests ------------------------------ */

typedef struct {
    const ctl_opts_t *o;
    void *ctx;
    void **socks;
    uint64_t next_id, nonce;
} ctl_conn_t;

static int s_conn_open(ctl_conn_t *c, const ctl_opts_t *o)
{
    memset(c, 0, sizeof *c);
    c->o = o;
    c->next_id = 1;
    c->nonce = zps_mix64((uint64_t)zps_now_ns() ^ ((uint64_t)getpid() << 32), 0xc71) | 1;
    c->ctx = zmq_ctx_new();
    c->socks = calloc(o->nservers, sizeof *c->socks);
    if (!c->ctx || !c->socks)
        return ZPS_ENOMEM;
    for (uint32_t s = 0; s < o->nservers; s++) {
        void *k = zmq_socket(c->ctx, ZMQ_DEALER);
        if (!k)
            return ZPS_EIO;
        c->socks[s] = k;
        int linger = 0, sndtimeo = 1000;
        zmq_setsockopt(k, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(k, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
        if (o->curve && (zmq_setsockopt(k, ZMQ_CURVE_SERVERKEY, o->theirs.public_z85, 40) ||
                         zmq_setsockopt(k, ZMQ_CURVE_PUBLICKEY, o->mine.public_z85, 40) ||
                         zmq_setsockopt(k, ZMQ_CURVE_SECRETKEY, o->mine.secret_z85, 40))) {
            fprintf(stderr, "zps-ctl: cannot set CURVE keys: %s\n", zmq_strerror(errno));
            return ZPS_EINVAL;
        }
        if (zmq_connect(k, o->servers[s]) != 0) {
            fprintf(stderr, "zps-ctl: server %u: cannot connect to '%s': %s\n", s, o->servers[s],
                    zmq_strerror(errno));
            return ZPS_EINVAL;
        }
    }
    return 0;
}

static void s_conn_close(ctl_conn_t *c)
{
    for (uint32_t s = 0; c->socks && s < c->o->nservers; s++)
        if (c->socks[s])
            zmq_close(c->socks[s]);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    free(c->socks);
}

static void s_env(ctl_conn_t *c, Zps__Envelope *env, Zps__MsgType type)
{
    zps_msg_env(env, type, ZPS__ROLE__ROLE_TOOL, c->o->rank, c->next_id++);
}

static int s_send(ctl_conn_t *c, uint32_t s, Zps__Envelope *env)
{
    if (zps_msg_send(c->socks[s], NULL, env, NULL, 0, NULL, 0, NULL) != 0)
        return ZPS_EIO;
    return 0;
}

/* Wait for the reply to request id from server s (others are dropped). */
static int s_wait(ctl_conn_t *c, uint32_t s, uint64_t id, zps_msg_t *reply, char *err, size_t errlen)
{
    int64_t deadline = zps_now_ms() + (int64_t)(c->o->timeout * 1000);
    for (;;) {
        int64_t left = deadline - zps_now_ms();
        if (left <= 0) {
            snprintf(err, errlen, "no answer within %g s", c->o->timeout);
            return ZPS_ETIMEDOUT;
        }
        zmq_pollitem_t it = {c->socks[s], 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&it, 1, (long)left);
        if (n < 0 && errno != EINTR) {
            snprintf(err, errlen, "poll failed: %s", zmq_strerror(errno));
            return ZPS_EIO;
        }
        if (n <= 0)
            continue;
        int rc = zps_msg_recv(c->socks[s], 0, reply, ZMQ_DONTWAIT);
        if (rc == ZPS_EIO) {
            zps_msg_close(reply);
            continue;
        }
        if (rc) {
            snprintf(err, errlen, "unreadable reply: %s", reply->reason);
            zps_msg_close(reply);
            return rc;
        }
        if (reply->env->request_id != id) {
            zps_msg_close(reply);
            continue;
        }
        if (reply->env->body_case == ZPS__ENVELOPE__BODY_ERROR) {
            snprintf(err, errlen, "%s (%s)", reply->env->error->text,
                     zps_strerror(reply->env->error->code));
            int code = reply->env->error->code;
            zps_msg_close(reply);
            return code < 0 ? code : ZPS_ESERVER;
        }
        return 0;
    }
}

static void s_hello_env(ctl_conn_t *c, Zps__Envelope *env, Zps__Hello *h)
{
    s_env(c, env, ZPS__MSG_TYPE__HELLO);
    zps__hello__init(h);
    h->client_version = "zps-ctl " ZPS_VERSION;
    h->client_nonce = c->nonce;
    env->body_case = ZPS__ENVELOPE__BODY_HELLO;
    env->hello = h;
}

/* HELLO then one request to server s; reply filled on success. */
static int s_call(ctl_conn_t *c, uint32_t s, Zps__Envelope *req, zps_msg_t *reply, char *err,
                  size_t errlen)
{
    Zps__Envelope env;
    Zps__Hello h;
    s_hello_env(c, &env, &h);
    if (s_send(c, s, &env)) {
        snprintf(err, errlen, "cannot send: %s", zmq_strerror(errno));
        return ZPS_EIO;
    }
    int rc = s_wait(c, s, env.request_id, reply, err, errlen);
    if (rc)
        return rc;
    zps_msg_close(reply);
    req->request_id = c->next_id++;
    if (s_send(c, s, req)) {
        snprintf(err, errlen, "cannot send: %s", zmq_strerror(errno));
        return ZPS_EIO;
    }
    return s_wait(c, s, req->request_id, reply, err, errlen);
}

/* ---- wk_client for pull and push ----------------------------------------------------- */

static void s_on_wait(void *ctx, uint32_t server, const char *addr, double waited)
{
    (void)ctx;
    fprintf(stderr, "zps-ctl: waiting for server %u at %s: no answer for %.0f s, retrying\n",
            server, addr, waited);
}

static wk_client_t *s_client(const ctl_opts_t *o)
{
    wk_client_conf_t cc;
    wk_client_conf_defaults(&cc);
    cc.servers = o->servers;
    cc.nservers = o->nservers;
    cc.role = ZPS__ROLE__ROLE_TOOL;
    cc.rank = o->rank;
    cc.retry_ms = (int)(o->retry * 1000);
    /* every line to every server (empty where it owns none of the line's keys):
     * each server sees this client's sequence numbers without gaps, so its
     * dedup window's low-water mark (and durable_seq) can cover every line */
    cc.sync_all = 1;
    cc.server_timeout_ms = (int)(o->server_timeout * 1000);
    cc.timeout_ms = cc.server_timeout_ms;
    cc.on_wait = s_on_wait;
    uint32_t w = o->window ? o->window : 64;
    cc.max_inflight = w + 1 > 256 ? w + 1 : 256;
    if (o->curve) {
        cc.curve_public = o->mine.public_z85;
        cc.curve_secret = o->mine.secret_z85;
        cc.server_public = o->theirs.public_z85;
    }
    /* the hello has no retry of its own: a lost hello (or reply) costs one
     * attempt; attempts go on until --server-timeout (over a lossy network
     * every server's hello must get through in the same attempt) */
    int per = (int)(o->retry * 2000) < 1000 ? 1000 : (int)(o->retry * 2000);
    cc.connect_timeout_ms = per < (int)(o->timeout * 1000) ? per : (int)(o->timeout * 1000);
    int64_t deadline = zps_now_ms() + cc.server_timeout_ms;
    char err[1024];
    wk_client_t *c = NULL;
    for (int attempt = 1; !c; attempt++) {
        c = wk_client_new(&cc, err, sizeof err);
        if (c || zps_now_ms() >= deadline)
            break;
        fprintf(stderr, "zps-ctl: attempt %d to connect failed (%s); trying again\n", attempt, err);
    }
    if (!c)
        fprintf(stderr, "zps-ctl: %s\n", err);
    else if (o->table >= wk_client_ntables(c)) {
        fprintf(stderr, "zps-ctl: table %u does not exist (the servers have %u)\n", o->table,
                wk_client_ntables(c));
        wk_client_destroy(&c);
    }
    return c;
}

/* ---- pull ------------------------------------------------------------------------------ */

static int s_cmd_pull(const ctl_opts_t *o, const char *list)
{
    size_t n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    uint64_t *keys = malloc(n * sizeof *keys), *uniq = malloc(n * sizeof *uniq);
    char *buf = strdup(list);
    if (!keys || !uniq || !buf) {
        fprintf(stderr, "zps-ctl: out of memory\n");
        return 1;
    }
    size_t i = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (zps_parse_u64(tok, &keys[i])) {
            fprintf(stderr, "zps-ctl: pull: '%s' is not a key (a base-10 number < 2^64)\n", tok);
            free(buf);
            free(keys);
            free(uniq);
            return 2;
        }
        i++;
    }
    n = i;
    free(buf);
    if (n == 0) {
        fprintf(stderr, "zps-ctl: pull: no keys given\n");
        free(keys);
        free(uniq);
        return 2;
    }
    memcpy(uniq, keys, n * sizeof *keys);
    qsort(uniq, n, sizeof *uniq, s_cmp_u64);
    size_t u = 0;
    for (i = 0; i < n; i++)
        if (u == 0 || uniq[u - 1] != uniq[i])
            uniq[u++] = uniq[i];
    wk_client_t *c = s_client(o);
    uint32_t dim = c ? wk_client_table(c, o->table)->dim : 0;
    float *vals = c ? malloc(u * dim * sizeof *vals) : NULL;
    int rc = vals ? wk_client_pull(c, o->table, uniq, u, vals) : ZPS_ENOMEM;
    if (c && !vals)
        fprintf(stderr, "zps-ctl: out of memory\n");
    if (rc && vals) {
        fprintf(stderr, "zps-ctl: pull failed: %s\n", wk_client_error(c));
    } else if (!rc) {
        for (i = 0; i < n; i++) {
            uint64_t *at = bsearch(&keys[i], uniq, u, sizeof *uniq, s_cmp_u64);
            const float *row = vals + (size_t)(at - uniq) * dim;
            printf("%" PRIu64, keys[i]);
            for (uint32_t j = 0; j < dim; j++) {
                char f[32];
                s_fmt(row[j], f);
                printf(" %s", f);
            }
            putchar('\n');
        }
    }
    wk_client_destroy(&c);
    free(vals);
    free(keys);
    free(uniq);
    return rc ? 1 : 0;
}

/* ---- push -------------------------------------------------------------------------------- */

typedef struct {
    uint64_t key;
    size_t at; /* index of its values in the line scratch */
} ctl_kv_t;

typedef struct {
    uint64_t *keys;      /* all lines' keys, each line's sorted and unique */
    float *vals;         /* their rows */
    size_t n, keys_cap, vals_cap;
    size_t *line_off;    /* nlines + 1 */
    size_t nlines, lines_cap;
    ctl_kv_t *kv;        /* scratch: one line */
    float *lv;
    size_t kv_cap, lv_cap;
} ctl_work_t;

static void s_work_free(ctl_work_t *w)
{
    free(w->keys);
    free(w->vals);
    free(w->line_off);
    free(w->kv);
    free(w->lv);
}

static int s_cmp_kv(const void *a, const void *b)
{
    return s_cmp_u64(&((const ctl_kv_t *)a)->key, &((const ctl_kv_t *)b)->key);
}

static int s_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* Parse one line (NUL-terminated, no newline) of dim-wide rows into w.
 * Duplicate keys of a line are summed.  Returns 0, 1 (empty/comment line),
 * or -1 with the reason in why. */
static int s_parse_line(char *line, uint32_t dim, ctl_work_t *w, char *why, size_t whylen)
{
    char *p = line;
    while (isspace((unsigned char)*p))
        p++;
    if (!*p || *p == '#')
        return 1;
    size_t nk = 0;
    char *save = NULL;
    for (char *tok = strtok_r(p, " \t\r", &save); tok; tok = strtok_r(NULL, " \t\r", &save)) {
        char *colon = strchr(tok, ':');
        if (!colon) {
            snprintf(why, whylen, "'%.100s' is not KEY:VALUE", tok);
            return -1;
        }
        *colon = 0;
        uint64_t key;
        if (zps_parse_u64(tok, &key)) {
            snprintf(why, whylen, "'%.100s' is not a key (a base-10 number < 2^64)", tok);
            return -1;
        }
        if (s_grow((void **)&w->kv, &w->kv_cap, nk + 1, sizeof *w->kv) ||
            s_grow((void **)&w->lv, &w->lv_cap, (nk + 1) * dim, sizeof *w->lv)) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
        w->kv[nk].key = key;
        w->kv[nk].at = nk * dim;
        const char *v = colon + 1;
        if (dim == 1 && strchr(v, ',')) {
            snprintf(why, whylen, "key %" PRIu64 ": more than 1 value (the table's dim is 1)", key);
            return -1;
        }
        for (uint32_t j = 0; j < dim; j++) {
            const char *end = j + 1 < dim ? strchr(v, ',') : v + strlen(v);
            if (!end || s_float(v, (size_t)(end - v), &w->lv[nk * dim + j])) {
                if (!end)
                    snprintf(why, whylen, "key %" PRIu64 ": %u values needed (the table's dim), "
                             "got %u", key, dim, j + 1);
                else
                    snprintf(why, whylen, "key %" PRIu64 ": '%.*s' is not a finite decimal number",
                             key, (int)(end - v > 60 ? 60 : end - v), v);
                return -1;
            }
            v = end + (j + 1 < dim);
        }
        if (*v) {
            snprintf(why, whylen, "key %" PRIu64 ": more than %u value%s (the table's dim)", key,
                     dim, dim == 1 ? "" : "s");
            return -1;
        }
        nk++;
    }
    if (nk > 1)
        qsort(w->kv, nk, sizeof *w->kv, s_cmp_kv);
    if (s_grow((void **)&w->keys, &w->keys_cap, w->n + nk, sizeof *w->keys) ||
        s_grow((void **)&w->vals, &w->vals_cap, (w->n + nk) * dim, sizeof *w->vals) ||
        s_grow((void **)&w->line_off, &w->lines_cap, w->nlines + 2, sizeof *w->line_off)) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    size_t start = w->n;
    for (size_t i = 0; i < nk; i++) {
        const float *src = w->lv + w->kv[i].at;
        if (w->n > start && w->keys[w->n - 1] == w->kv[i].key) {
            float *dst = w->vals + (w->n - 1) * dim;
            for (uint32_t j = 0; j < dim; j++)
                dst[j] += src[j];
            continue;
        }
        w->keys[w->n] = w->kv[i].key;
        memcpy(w->vals + w->n * dim, src, dim * sizeof *src);
        w->n++;
    }
    for (size_t i = start * dim; i < w->n * dim; i++)
        if (!isfinite(w->vals[i])) {
            snprintf(why, whylen, "key %" PRIu64 ": the sum of its values overflows a float",
                     w->keys[i / dim]);
            return -1;
        }
    w->line_off[w->nlines] = start;
    w->nlines++;
    w->line_off[w->nlines] = w->n;
    return 0;
}

static int s_cmd_push(const ctl_opts_t *o)
{
    if (!o->file)
        s_die_usage("push needs --file F");
    FILE *f = strcmp(o->file, "-") ? fopen(o->file, "r") : stdin;
    if (!f) {
        fprintf(stderr, "zps-ctl: cannot open %s: %s\n", o->file, strerror(errno));
        return 1;
    }
    /* connect first: the table's dim decides how lines are read */
    wk_client_t *c = s_client(o);
    if (!c) {
        if (f != stdin)
            fclose(f);
        return 1;
    }
    uint32_t dim = wk_client_table(c, o->table)->dim;
    ctl_work_t w = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint64_t lineno = 0;
    int bad = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len && line[len - 1] == '\n')
            line[len - 1] = 0;
        char why[256];
        if (s_parse_line(line, dim, &w, why, sizeof why) < 0) {
            fprintf(stderr, "zps-ctl: %s:%" PRIu64 ": %s\n", o->file, lineno, why);
            bad = 1;
            break;
        }
    }
    free(line);
    if (f != stdin)
        fclose(f);
    if (bad) {
        fprintf(stderr, "zps-ctl: nothing pushed\n");
        wk_client_destroy(&c);
        s_work_free(&w);
        return 1;
    }
    uint32_t win = o->window ? o->window : 64;
    uint64_t *tickets = malloc((w.nlines ? w.nlines : 1) * sizeof *tickets);
    size_t sent = 0, done = 0;
    int rc = tickets ? 0 : ZPS_ENOMEM;
    while (!rc && done < w.nlines) {
        if (sent < w.nlines && sent - done < win) {
            size_t a = w.line_off[sent], b = w.line_off[sent + 1];
            rc = wk_client_push_async(c, o->table, w.keys + a, w.vals + a * dim, b - a,
                                      &tickets[sent]);
            if (!rc)
                sent++;
            continue;
        }
        rc = wk_client_wait(c, tickets[done], -1);
        if (rc == ZPS_EINTR)
            break;
        if (!rc)
            done++;
    }
    if (rc)
        fprintf(stderr, "zps-ctl: push of line %zu failed: %s (%zu of %zu lines acknowledged)\n",
                done + 1, wk_client_error(c), done, w.nlines);
    else
        printf("pushed %zu lines, %zu keys\n", w.nlines, w.n);
    wk_client_destroy(&c);
    free(tickets);
    s_work_free(&w);
    return rc ? 1 : 0;
}

/* ---- stats ------------------------------------------------------------------------------ */

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
    printf("%s uptime_ms=%" PRIu64 " server_nonce=%016" PRIx64 "\n",
           b->n_worker_clocks ? "" : "-", b->uptime_ms, b->server_nonce);
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
    printf("], \"clients\": [");
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

static int s_cmd_stats(const ctl_opts_t *o)
{
    ctl_conn_t c;
    if (s_conn_open(&c, o)) {
        s_conn_close(&c);
        return 1;
    }
    int failed = 0, first = 1;
    uint64_t tot[7] = {0};
    if (o->json)
        printf("{\n  \"servers\": [\n");
    for (uint32_t s = 0; s < o->nservers; s++) {
        if (o->server >= 0 && (uint32_t)o->server != s)
            continue;
        Zps__Envelope env;
        Zps__Stats st = ZPS__STATS__INIT;
        s_env(&c, &env, ZPS__MSG_TYPE__STATS);
        env.body_case = ZPS__ENVELOPE__BODY_STATS;
        env.stats = &st;
        zps_msg_t m;
        char err[600];
        int rc = s_call(&c, s, &env, &m, err, sizeof err);
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
    s_conn_close(&c);
    return failed;
}

/* ---- dump ------------------------------------------------------------------------------- */

typedef struct {
    uint64_t key;
    size_t at;
} ctl_row_t;

static int s_cmp_row(const void *a, const void *b)
{
    return s_cmp_u64(&((const ctl_row_t *)a)->key, &((const ctl_row_t *)b)->key);
}

static int s_cmd_dump(const ctl_opts_t *o)
{
    ctl_conn_t c;
    if (s_conn_open(&c, o)) {
        s_conn_close(&c);
        return 1;
    }
    ctl_row_t *rows = NULL;
    float *vals = NULL;
    size_t n = 0, rcap = 0, vcap = 0;
    uint32_t dim = 0;
    uint64_t *page = malloc(CTL_PAGE * sizeof *page);
    int rc = page ? 0 : ZPS_ENOMEM;
    char err[600] = "out of memory";
    uint32_t s = 0;
    for (; !rc && s < o->nservers; s++) {
        uint64_t cursor = 0;
        for (;;) {
            Zps__Envelope env;
            Zps__Dump d = ZPS__DUMP__INIT;
            d.table = o->table;
            d.cursor = cursor;
            d.max_keys = CTL_PAGE;
            s_env(&c, &env, ZPS__MSG_TYPE__DUMP);
            env.body_case = ZPS__ENVELOPE__BODY_DUMP;
            env.dump = &d;
            zps_msg_t m;
            if ((rc = s_call(&c, s, &env, &m, err, sizeof err)) != 0)
                break;
            const Zps__DumpReply *b = m.env->dump_reply;
            size_t klen, vlen;
            const uint8_t *kb = zps_msg_bulk(&m, 0, &klen);
            const uint8_t *vb = zps_msg_bulk(&m, 1, &vlen);
            if (m.env->body_case != ZPS__ENVELOPE__BODY_DUMP_REPLY || b->nkeys > CTL_PAGE ||
                (dim && b->dim != dim) || b->dim == 0 || vlen != b->nkeys * b->dim * sizeof(float) ||
                zps_keys_decode(kb, klen, b->nkeys, page, NULL) != 0 ||
                (b->nkeys == 0 && !b->done) || b->next_cursor < cursor) {
                snprintf(err, sizeof err, "malformed dump reply");
                zps_msg_close(&m);
                rc = ZPS_EPROTO;
                break;
            }
            dim = b->dim;
            if (s_grow((void **)&rows, &rcap, n + b->nkeys, sizeof *rows) ||
                s_grow((void **)&vals, &vcap, (n + b->nkeys) * dim, sizeof *vals)) {
                zps_msg_close(&m);
                rc = ZPS_ENOMEM;
                break;
            }
            if (vlen) /* an empty table's page has no values (and vals may be NULL) */
                memcpy(vals + n * dim, vb, vlen);
            for (size_t i = 0; i < b->nkeys; i++) {
                rows[n].key = page[i];
                rows[n].at = n * dim;
                n++;
            }
            int done = b->done;
            cursor = b->next_cursor;
            zps_msg_close(&m);
            if (done)
                break;
        }
        if (rc)
            break;
    }
    if (rc) {
        fprintf(stderr, "zps-ctl: dump: server %u at %s: %s\n", s, o->servers[s], err);
    } else {
        if (n > 1)
            qsort(rows, n, sizeof *rows, s_cmp_row);
        /* --out is written atomically (zps_out); stdout as a stream */
        zps_out_t *out = o->out ? zps_out_open(o->out, err, sizeof err) : NULL;
        FILE *f = out ? zps_out_file(out) : o->out ? NULL : stdout;
        if (!f) {
            fprintf(stderr, "zps-ctl: cannot write %s: %s\n", o->out, err);
            rc = ZPS_EIO;
        } else {
            for (size_t i = 0; i < n; i++) {
                fprintf(f, "%" PRIu64, rows[i].key);
                for (uint32_t j = 0; j < dim; j++) {
                    char t[32];
                    s_fmt(vals[rows[i].at + j], t);
                    fprintf(f, " %s", t);
                }
                fputc('\n', f);
            }
            if (out ? zps_out_close(&out, 1, err, sizeof err) != 0 : fflush(f) != 0) {
                fprintf(stderr, "zps-ctl: writing %s failed%s%s\n", o->out ? o->out : "stdout",
                        o->out ? ": " : "", o->out ? err : "");
                rc = ZPS_EIO;
            }
            if (!rc && o->out)
                fprintf(stderr, "zps-ctl: dumped %zu keys of dim %u to %s\n", n, dim, o->out);
        }
    }
    free(page);
    free(rows);
    free(vals);
    s_conn_close(&c);
    return rc ? 1 : 0;
}

/* ---- health ----------------------------------------------------------------------------- */

static int s_cmd_health(const ctl_opts_t *o)
{
    ctl_conn_t c;
    if (s_conn_open(&c, o)) {
        s_conn_close(&c);
        return 1;
    }
    uint32_t S = o->nservers;
    uint64_t *ids = calloc(S, sizeof *ids);
    int *state = calloc(S, sizeof *state); /* 0 waiting, 1 ok, -1 bad */
    char (*why)[300] = calloc(S, sizeof *why);
    if (!ids || !state || !why) {
        fprintf(stderr, "zps-ctl: out of memory\n");
        return 1;
    }
    for (uint32_t s = 0; s < S; s++) {
        Zps__Envelope env;
        Zps__Hello h;
        s_hello_env(&c, &env, &h);
        ids[s] = env.request_id;
        if (s_send(&c, s, &env)) {
            state[s] = -1;
            snprintf(why[s], sizeof why[s], "cannot send: %s", zmq_strerror(errno));
        }
    }
    /* all at once: a dead server costs one --timeout, not one each */
    int64_t deadline = zps_now_ms() + (int64_t)(o->timeout * 1000);
    zmq_pollitem_t *it = calloc(S, sizeof *it);
    for (;;) {
        uint32_t waiting = 0;
        for (uint32_t s = 0; s < S; s++) {
            it[s] = (zmq_pollitem_t){c.socks[s], 0, state[s] == 0 ? ZMQ_POLLIN : 0, 0};
            waiting += state[s] == 0;
        }
        int64_t left = deadline - zps_now_ms();
        if (!waiting || left <= 0)
            break;
        if (zmq_poll(it, (int)S, (long)left) <= 0)
            continue;
        for (uint32_t s = 0; s < S; s++) {
            if (!(it[s].revents & ZMQ_POLLIN))
                continue;
            zps_msg_t m;
            int rc = zps_msg_recv(c.socks[s], 0, &m, ZMQ_DONTWAIT);
            if (rc == 0 && m.env->request_id == ids[s]) {
                if (m.env->body_case == ZPS__ENVELOPE__BODY_HELLO_REPLY) {
                    const Zps__HelloReply *h = m.env->hello_reply;
                    if (h->server_rank != s || h->num_servers != S) {
                        state[s] = -1;
                        snprintf(why[s], sizeof why[s], "answers as rank %u of %u, but is listed "
                                 "as server %u of %u", h->server_rank, h->num_servers, s, S);
                    } else {
                        state[s] = 1;
                        snprintf(why[s], sizeof why[s], "ok (zps-server %.40s, rank %u of %u)",
                                 h->server_version, h->server_rank, h->num_servers);
                    }
                } else {
                    state[s] = -1;
                    snprintf(why[s], sizeof why[s], "answered hello with %s%s%.200s",
                             zps_msg_type_name(m.env->type),
                             m.env->body_case == ZPS__ENVELOPE__BODY_ERROR ? ": " : "",
                             m.env->body_case == ZPS__ENVELOPE__BODY_ERROR ? m.env->error->text : "");
                }
            } else if (rc && rc != ZPS_EIO) {
                state[s] = -1;
                snprintf(why[s], sizeof why[s], "unreadable reply: %s", m.reason);
            }
            zps_msg_close(&m);
        }
    }
    int bad = 0;
    for (uint32_t s = 0; s < S; s++) {
        if (state[s] == 0)
            snprintf(why[s], sizeof why[s], "NOT ANSWERING (no reply within %g s)", o->timeout);
        if (state[s] != 1) {
            bad = 1;
            if (state[s] == -1) {
                char t[300];
                snprintf(t, sizeof t, "%s", why[s]);
                snprintf(why[s], sizeof why[s], "NOT HEALTHY: %.280s", t);
            }
        }
        printf("server %u at %s: %s\n", s, o->servers[s], why[s]);
    }
    free(it);
    free(ids);
    free(state);
    free(why);
    s_conn_close(&c);
    return bad;
}

/* ---- shutdown --------------------------------------------------------------------------- */

static int s_cmd_shutdown(const ctl_opts_t *o)
{
    char token[512] = "";
    if (o->token_file && s_read_token(o->token_file, token, sizeof token))
        return 1;
    if (!o->token_file)
        fprintf(stderr, "zps-ctl: no --admin-token-file: the servers will refuse (they accept "
                "SHUTDOWN only with the job's admin token; or use SIGTERM)\n");
    ctl_conn_t c;
    if (s_conn_open(&c, o)) {
        s_conn_close(&c);
        return 1;
    }
    int failed = 0;
    for (uint32_t s = 0; s < o->nservers; s++) {
        if (o->server >= 0 && (uint32_t)o->server != s)
            continue;
        Zps__Envelope env;
        Zps__Shutdown sd = ZPS__SHUTDOWN__INIT;
        sd.reason = (char *)(o->reason ? o->reason : "zps-ctl shutdown");
        sd.admin_token = token;
        s_env(&c, &env, ZPS__MSG_TYPE__SHUTDOWN);
        env.body_case = ZPS__ENVELOPE__BODY_SHUTDOWN;
        env.shutdown = &sd;
        zps_msg_t m;
        char err[600];
        int rc = s_call(&c, s, &env, &m, err, sizeof err);
        if (!rc && m.env->type != ZPS__MSG_TYPE__SHUTDOWN_ACK) {
            snprintf(err, sizeof err, "answered with %s", zps_msg_type_name(m.env->type));
            rc = ZPS_EPROTO;
        }
        if (!rc)
            zps_msg_close(&m);
        if (rc) {
            failed = 1;
            printf("server %u at %s: shutdown refused or failed: %s\n", s, o->servers[s], err);
        } else {
            printf("server %u at %s: shutting down\n", s, o->servers[s]);
        }
    }
    memset(token, 0, sizeof token);
    s_conn_close(&c);
    return failed;
}

/* ---- main ------------------------------------------------------------------------------- */

static void s_usage(void)
{
    printf("usage: zps-ctl --servers A,B,... [options] COMMAND [command options]\n"
           "commands:\n"
           "  stats [--json] [--server R]  per server: keys stored, table bytes, pushes received/\n"
           "                               applied/duplicate/rejected/lost (and per client process),\n"
           "                               held pulls, clocks, uptime; a 'total' line last\n"
           "  pull KEY,KEY,...             one line per key (in the order given): KEY V1 V2 ...\n"
           "  push --file F [--window N]   each line of F is one push: 'KEY:VALUE KEY:VALUE ...'\n"
           "                               (dim 1) or 'KEY:V1,V2,...' (wider rows); a key twice in a\n"
           "                               line is summed; blank and '#' lines are skipped.  Every\n"
           "                               line is applied exactly once (retries included); N lines\n"
           "                               in flight [64].  A bad line: error, nothing pushed.\n"
           "  dump [--out F]               every stored key and its row, in key order\n"
           "  health                       exit 0 iff every server answers; names those that don't\n"
           "  shutdown [--server R] [--reason TEXT]\n"
           "                               ask the servers to exit (needs --admin-token-file)\n"
           "options:\n"
           "  --servers A,B,...            server endpoints, in rank order\n"
           "  --curve-secret FILE          CURVE key pair of this client (zps-keygen NAME.key)\n"
           "  --server-public FILE         the servers' public key (NAME.pub)\n"
           "  --admin-token-file FILE      the job's admin token (mode 0600), for shutdown\n"
           "  --server-timeout S           pull/push: retry a silent server for S seconds [120]\n"
           "  --retry S                    pull/push: resend an unanswered request after S\n"
           "                               seconds, backing off to 8 s [2]\n"
           "  --timeout S                  other commands: wait S seconds per reply [10]\n"
           "  --rank R                     the rank this client uses (give concurrent pushers\n"
           "                               different ranks, apart from the workers') [0]\n"
           "  --table T                    table [0]\n"
           "  --help, --version\n"
           "Numbers are base 10.  Exit status: 0 success, 1 failure, 2 usage error.\n");
}

int main(int argc, char **argv)
{
    ctl_opts_t o;
    memset(&o, 0, sizeof o);
    o.server_timeout = 120;
    o.timeout = 10;
    o.retry = 2;
    o.server = -1;
    const char *servers = NULL;
    enum { O_SERVERS = 256, O_CSEC, O_SPUB, O_STO, O_TOKEN, O_TIMEOUT, O_RANK, O_TABLE, O_JSON,
           O_FILE, O_WINDOW, O_OUT, O_REASON, O_SERVER, O_HELP, O_VERSION, O_RETRY };
    static const struct option lo[] = {
        {"servers", required_argument, 0, O_SERVERS},
        {"curve-secret", required_argument, 0, O_CSEC},
        {"server-public", required_argument, 0, O_SPUB},
        {"server-timeout", required_argument, 0, O_STO},
        {"admin-token-file", required_argument, 0, O_TOKEN},
        {"timeout", required_argument, 0, O_TIMEOUT},
        {"rank", required_argument, 0, O_RANK},
        {"table", required_argument, 0, O_TABLE},
        {"json", no_argument, 0, O_JSON},
        {"file", required_argument, 0, O_FILE},
        {"window", required_argument, 0, O_WINDOW},
        {"out", required_argument, 0, O_OUT},
        {"reason", required_argument, 0, O_REASON},
        {"server", required_argument, 0, O_SERVER},
        {"retry", required_argument, 0, O_RETRY},
        {"help", no_argument, 0, O_HELP},
        {"version", no_argument, 0, O_VERSION},
        {0, 0, 0, 0}};
    char oerr[300];
    int ch, li;
    while ((ch = zps_getopt(argc, argv, NULL, lo, &li, oerr, sizeof oerr)) != -1) {
        uint32_t u;
        switch (ch) {
        case O_SERVERS: servers = optarg; break;
        case O_CSEC: o.curve_secret = optarg; break;
        case O_SPUB: o.server_public = optarg; break;
        case O_STO:
            if (s_seconds(optarg, &o.server_timeout))
                s_die_usage("--server-timeout needs seconds > 0, got '%s'", optarg);
            break;
        case O_TIMEOUT:
            if (s_seconds(optarg, &o.timeout))
                s_die_usage("--timeout needs seconds > 0, got '%s'", optarg);
            break;
        case O_RETRY:
            if (s_seconds(optarg, &o.retry))
                s_die_usage("--retry needs seconds > 0, got '%s'", optarg);
            break;
        case O_TOKEN: o.token_file = optarg; break;
        case O_RANK:
            if (zps_parse_u32(optarg, &o.rank))
                s_die_usage("--rank needs a base-10 number, got '%s'", optarg);
            break;
        case O_TABLE:
            if (zps_parse_u32(optarg, &o.table))
                s_die_usage("--table needs a base-10 number, got '%s'", optarg);
            break;
        case O_JSON: o.json = 1; break;
        case O_FILE: o.file = optarg; break;
        case O_WINDOW:
            if (zps_parse_u32(optarg, &o.window) || o.window == 0 || o.window > 65536)
                s_die_usage("--window needs 1..65536, got '%s'", optarg);
            break;
        case O_OUT: o.out = optarg; break;
        case O_REASON: o.reason = optarg; break;
        case O_SERVER:
            if (zps_parse_u32(optarg, &u))
                s_die_usage("--server needs a base-10 rank, got '%s'", optarg);
            o.server = u;
            break;
        case O_HELP: s_usage(); return 0;
        case O_VERSION: printf("zps-ctl %s (protocol 1)\n", ZPS_VERSION); return 0;
        default:
            s_die_usage("%s", oerr);
        }
    }
    if (optind >= argc)
        s_die_usage("no command given");
    const char *cmd = argv[optind++];
    const char *arg = optind < argc ? argv[optind++] : NULL;
    if (optind < argc)
        s_die_usage("unexpected argument '%s'", argv[optind]);
    int needs_arg = !strcmp(cmd, "pull");
    if (strcmp(cmd, "stats") && strcmp(cmd, "pull") && strcmp(cmd, "push") && strcmp(cmd, "dump") &&
        strcmp(cmd, "health") && strcmp(cmd, "shutdown"))
        s_die_usage("unknown command '%s'", cmd);
    if (needs_arg && !arg)
        s_die_usage("%s needs an argument", cmd);
    if (!needs_arg && arg)
        s_die_usage("unexpected argument '%s' for %s", arg, cmd);
    if (!servers || !*servers)
        s_die_usage("--servers A,B,... is required");
    o.servers_buf = strdup(servers);
    o.servers = calloc(strlen(servers) / 2 + 2, sizeof *o.servers);
    if (!o.servers_buf || !o.servers)
        return 1;
    char *save = NULL;
    for (char *t = strtok_r(o.servers_buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        o.servers[o.nservers++] = t;
    if (o.nservers == 0 || o.nservers > WK_MAX_SERVERS)
        s_die_usage("--servers needs 1..%d endpoints", WK_MAX_SERVERS);
    if (o.server >= 0 && (uint32_t)o.server >= o.nservers)
        s_die_usage("--server %lld: there are %u servers", (long long)o.server, o.nservers);
    if (o.curve_secret || o.server_public) {
        char err[1300];
        if (!o.curve_secret || !o.server_public)
            s_die_usage("CURVE needs both --curve-secret and --server-public");
        if (zps_curve_read(o.curve_secret, &o.mine, err, sizeof err) ||
            zps_curve_read(o.server_public, &o.theirs, err, sizeof err)) {
            fprintf(stderr, "zps-ctl: %s\n", err);
            return 1;
        }
        if (!o.mine.secret_z85[0]) {
            fprintf(stderr, "zps-ctl: %s has no secret key (use the .key file)\n", o.curve_secret);
            return 1;
        }
        o.curve = 1;
    }
    int rc;
    if (!strcmp(cmd, "stats"))
        rc = s_cmd_stats(&o);
    else if (!strcmp(cmd, "pull"))
        rc = s_cmd_pull(&o, arg);
    else if (!strcmp(cmd, "push"))
        rc = s_cmd_push(&o);
    else if (!strcmp(cmd, "dump"))
        rc = s_cmd_dump(&o);
    else if (!strcmp(cmd, "health"))
        rc = s_cmd_health(&o);
    else
        rc = s_cmd_shutdown(&o);
    free(o.servers);
    free(o.servers_buf);
    return rc;
}
