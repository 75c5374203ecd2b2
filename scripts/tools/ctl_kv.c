/* ctl_kv: pull and push through wk_client (see ctl_kv.h). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "ctl_kv.h"
#include "ctl_num.h"
#include "wk_client.h"
#include "zps.pb-c.h"
#include "zps_args.h"
#include "zps_err.h"
#include "zps_time.h"

/* ---- wk_client for pull and push ----------------------------------------------------- */

static void s_on_wait(void *ctx, uint32_t server, const char *addr, double waited)
{
    (void)ctx;
    fprintf(stderr, "zps-ctl: waiting for server %u at %s: no answer for %.0f s, retrying\n",
            server, addr, waited);
}

static void s_on_notice(void *ctx, const char *text)
{
    (void)ctx;
    fprintf(stderr, "zps-ctl: %s\n", text);
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
    cc.coordinator = o->coordinator;
    cc.server_timeout_ms = (int)(o->server_timeout * 1000);
    cc.timeout_ms = cc.server_timeout_ms;
    cc.on_wait = s_on_wait;
    cc.on_notice = s_on_notice;
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
        /* at most 5 attempts a second: a failure that is not a timeout
         * (a server listed under the wrong rank) comes back at once */
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
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

int ctl_pull(const ctl_opts_t *o, const char *list)
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
    qsort(uniq, n, sizeof *uniq, ctl_cmp_u64);
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
            uint64_t *at = bsearch(&keys[i], uniq, u, sizeof *uniq, ctl_cmp_u64);
            const float *row = vals + (size_t)(at - uniq) * dim;
            printf("%" PRIu64, keys[i]);
            for (uint32_t j = 0; j < dim; j++) {
                char f[32];
                ctl_fmt_float(row[j], f);
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
    return ctl_cmp_u64(&((const ctl_kv_t *)a)->key, &((const ctl_kv_t *)b)->key);
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
        if (ctl_grow((void **)&w->kv, &w->kv_cap, nk + 1, sizeof *w->kv) ||
            ctl_grow((void **)&w->lv, &w->lv_cap, (nk + 1) * dim, sizeof *w->lv)) {
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
            if (!end || ctl_parse_float(v, (size_t)(end - v), &w->lv[nk * dim + j])) {
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
    if (ctl_grow((void **)&w->keys, &w->keys_cap, w->n + nk, sizeof *w->keys) ||
        ctl_grow((void **)&w->vals, &w->vals_cap, (w->n + nk) * dim, sizeof *w->vals) ||
        ctl_grow((void **)&w->line_off, &w->lines_cap, w->nlines + 2, sizeof *w->line_off)) {
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

int ctl_push(const ctl_opts_t *o)
{
    if (!o->file)
        ctl_die_usage("push needs --file F");
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
