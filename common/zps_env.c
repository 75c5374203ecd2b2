/* zps_env: ZPS_* environment variables -> extra "--name value" arguments.
 *
 * Two passes over envp: the first finds every ZPS_* variable, maps it to a
 * long option (ZPS_NUM_WORKERS -> num-workers) and decides: taken (the
 * option is not on the command line), overridden (it is), unset (empty, or
 * a flag's 0/false/no), ignored (no such option), the cluster's (no such
 * option, and a Kubernetes service link: zps_env_kubernetes) or an error (a
 * flag with a value other than 1/0/true/false/yes/no/empty).  The second builds the new argv.  Everything the handle hands
 * out is owned by it. */
#include "zps_env.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ENV_MAX 256 /* ZPS_* variables kept; half for options (more is an error) */

typedef struct {
    const char *var;   /* "ZPS_RANK=2" as in envp */
    size_t namelen;    /* of "ZPS_RANK" */
    const char *value; /* "2" */
    char *opt;         /* "rank", NULL when ignored */
    int has_arg;
    int state;         /* ENV_TAKEN, ENV_OVERRIDDEN, ENV_IGNORED, ENV_UNSET, ENV_CLUSTER */
} env_var_t;

enum { ENV_TAKEN = 1, ENV_OVERRIDDEN, ENV_IGNORED, ENV_UNSET, ENV_CLUSTER };

struct zps_env {
    char prog[64];
    env_var_t v[ENV_MAX];
    size_t nv;
    size_t more[2];  /* ignored / Kubernetes variables counted, not kept */
    int argc;
    char **argv;     /* argv[0], taken options, the command line's arguments */
    char **owned;    /* "--name" strings made here */
    size_t nowned;
};

int zps_env_reserved(const char *name)
{
    static const char *const fixed[] = {"BIN", "ROLE", "GLOBAL_RANK", "FM", "ARGS", NULL};
    for (size_t i = 0; fixed[i]; i++)
        if (!strcmp(name, fixed[i]))
            return 1;
    /* families of the scripts and tests: ZPS_TEST_*, ZPS_BENCH_*, ZPS_LAUNCH_* */
    return !strncmp(name, "TEST_", 5) || !strncmp(name, "BENCH_", 6) || !strncmp(name, "LAUNCH_", 7);
}

/* name ends with suffix, which starts name or follows a '_' */
static int s_ends_word(const char *name, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && !memcmp(name + n - k, suffix, k) && (n == k || name[n - k - 1] == '_');
}

int zps_env_kubernetes(const char *name)
{
    size_t n = strlen(name);
    /* <SVC>_SERVICE_HOST, <SVC>_SERVICE_PORT, <SVC>_PORT */
    if (s_ends_word(name, n, "SERVICE_HOST") || s_ends_word(name, n, "SERVICE_PORT") ||
        s_ends_word(name, n, "PORT"))
        return 1;
    /* <SVC>_SERVICE_PORT_<PORT-NAME> */
    const char *p = strstr(name, "SERVICE_PORT_");
    if (p && (p == name || p[-1] == '_') && p[13])
        return 1;
    /* <SVC>_PORT_<NUM>_<TCP|UDP|SCTP>[_PROTO|_PORT|_ADDR] */
    for (p = name; (p = strstr(p, "PORT_")) != NULL; p++) {
        if (p != name && p[-1] != '_')
            continue;
        const char *q = p + 5;
        if (!isdigit((unsigned char)*q))
            continue;
        while (isdigit((unsigned char)*q))
            q++;
        static const char *const proto[] = {"_TCP", "_UDP", "_SCTP"};
        for (int i = 0; i < 3; i++) {
            size_t k = strlen(proto[i]);
            if (strncmp(q, proto[i], k))
                continue;
            const char *r = q + k;
            if (!*r || !strcmp(r, "_PROTO") || !strcmp(r, "_PORT") || !strcmp(r, "_ADDR"))
                return 1;
        }
    }
    return 0;
}

/* "NUM_WORKERS" (len n) -> "num-workers" into out; 0 if it has characters
 * no option name has */
static int s_opt_name(const char *s, size_t n, char *out, size_t outlen)
{
    if (n == 0 || n >= outlen)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '_')
            out[i] = '-';
        else if (isupper((unsigned char)c) || isdigit((unsigned char)c))
            out[i] = (char)tolower((unsigned char)c);
        else
            return 0;
    }
    out[n] = '\0';
    return 1;
}

static const struct option *s_find(const struct option *opts, const char *name)
{
    for (const struct option *o = opts; o->name; o++)
        if (!strcmp(o->name, name))
            return o;
    return NULL;
}

/* the option appears on the command line as --name or --name=... */
static int s_on_cmdline(int argc, char **argv, const char *name)
{
    size_t n = strlen(name);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] == '-' && !strncmp(a + 2, name, n) && (a[2 + n] == '\0' || a[2 + n] == '='))
            return 1;
    }
    return 0;
}

/* flag value: 1 set, 0 unset, -1 invalid */
static int s_flag_value(const char *v)
{
    if (!*v || !strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no"))
        return 0;
    if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes"))
        return 1;
    return -1;
}

static int s_classify(zps_env_t *e, const struct option *opts, char *const *envp, int argc, char **argv,
                      char *err, size_t errlen)
{
    for (size_t i = 0; envp && envp[i]; i++) {
        const char *s = envp[i];
        const char *eq = strchr(s, '=');
        if (strncmp(s, "ZPS_", 4) != 0 || !eq)
            continue;
        char name[80];
        size_t nlen = (size_t)(eq - (s + 4));
        if (nlen < sizeof name) {
            memcpy(name, s + 4, nlen);
            name[nlen] = '\0';
            if (zps_env_reserved(name))
                continue;
        }
        char oname[80];
        const struct option *o = NULL;
        if (s_opt_name(s + 4, nlen, oname, sizeof oname))
            o = s_find(opts, oname);
        int opt = o && strcmp(oname, "help") && strcmp(oname, "version");
        /* a Kubernetes service link of a Service named zps or zps-*
         * (ZPS_SERVERS_PORT=tcp://10.0.0.1:7000): the cluster's, not a
         * misspelt option; an option of that name would still win */
        int state = opt ? 0 : nlen < sizeof name && zps_env_kubernetes(name) ? ENV_CLUSTER
                                                                           : ENV_IGNORED;
        /* a namespace with many zps-* Services: past a quarter of the
         * slots their variables are only counted, past half so are the
         * ignored ones (the other half is for options, of which a program
         * has fewer): they never stop a daemon, nor hide a misspelling */
        if (state && e->nv >= (state == ENV_CLUSTER ? ENV_MAX / 4 : ENV_MAX / 2)) {
            e->more[state == ENV_CLUSTER]++;
            continue;
        }
        if (e->nv == ENV_MAX) {
            snprintf(err, errlen, "more than %d ZPS_* variables in the environment", ENV_MAX);
            return -1;
        }
        env_var_t *v = &e->v[e->nv++];
        v->var = s;
        v->namelen = (size_t)(eq - s);
        v->value = eq + 1;
        if (state) {
            v->state = state;
            continue;
        }
        v->opt = strdup(oname);
        if (!v->opt) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        v->has_arg = o->has_arg != no_argument;
        if (s_on_cmdline(argc, argv, oname)) {
            v->state = ENV_OVERRIDDEN;
            continue;
        }
        if (!v->has_arg) {
            int f = s_flag_value(v->value);
            if (f < 0) {
                snprintf(err, errlen,
                         "environment variable %.*s: '%.60s' is not a value for the flag --%s "
                         "(1, true, yes set it; 0, false, no or empty leave it unset)",
                         (int)v->namelen, v->var, v->value, oname);
                return -1;
            }
            v->state = f ? ENV_TAKEN : ENV_UNSET;
        } else /* empty: left unset, as for a flag (a template's blank) */
            v->state = *v->value ? ENV_TAKEN : ENV_UNSET;
    }
    return 0;
}

zps_env_t *zps_env_new(const char *prog, const struct option *opts, char *const *envp, int argc,
                       char **argv, char *err, size_t errlen)
{
    zps_env_t *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(e->prog, sizeof e->prog, "%s", prog);
    if (s_classify(e, opts, envp, argc, argv, err, errlen) != 0) {
        zps_env_destroy(&e);
        return NULL;
    }
    size_t taken = zps_env_taken(e);
    e->argv = calloc((size_t)argc + 2 * taken + 1, sizeof *e->argv);
    e->owned = calloc(taken + 1, sizeof *e->owned);
    if (!e->argv || !e->owned) {
        snprintf(err, errlen, "out of memory");
        zps_env_destroy(&e);
        return NULL;
    }
    int n = 0;
    e->argv[n++] = argc > 0 ? argv[0] : (char *)prog;
    for (size_t i = 0; i < e->nv; i++) {
        env_var_t *v = &e->v[i];
        if (v->state != ENV_TAKEN)
            continue;
        size_t len = strlen(v->opt) + 3;
        char *flag = malloc(len);
        if (!flag) {
            snprintf(err, errlen, "out of memory");
            zps_env_destroy(&e);
            return NULL;
        }
        snprintf(flag, len, "--%s", v->opt);
        e->owned[e->nowned++] = flag;
        e->argv[n++] = flag;
        if (v->has_arg)
            e->argv[n++] = (char *)v->value; /* lives in the environment */
    }
    for (int i = 1; i < argc; i++)
        e->argv[n++] = argv[i];
    e->argv[n] = NULL;
    e->argc = n;
    return e;
}

void zps_env_destroy(zps_env_t **ep)
{
    if (!ep || !*ep)
        return;
    zps_env_t *e = *ep;
    for (size_t i = 0; i < e->nv; i++)
        free(e->v[i].opt);
    for (size_t i = 0; i < e->nowned; i++)
        free(e->owned[i]);
    free(e->owned);
    free(e->argv);
    free(e);
    *ep = NULL;
}

int zps_env_argc(const zps_env_t *e) { return e->argc; }
char **zps_env_argv(const zps_env_t *e) { return e->argv; }

size_t zps_env_taken(const zps_env_t *e)
{
    size_t n = 0;
    for (size_t i = 0; i < e->nv; i++)
        n += e->v[i].state == ENV_TAKEN;
    return n;
}

/* "ZPS_RANK=2 ZPS_SERVERS=tcp://..." of the variables in state st, escaped
 * and capped, into out */
static size_t s_list(const zps_env_t *e, int st, int with_values, char *out, size_t outlen)
{
    size_t len = 0, n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < e->nv && len + 1 < outlen; i++) {
        const env_var_t *v = &e->v[i];
        if (v->state != st)
            continue;
        char val[160];
        zps_log_escape(v->value, strlen(v->value), val, sizeof val, 120);
        int w = with_values ? snprintf(out + len, outlen - len, "%s%.*s=%s", n ? " " : "", (int)v->namelen,
                                       v->var, val)
                            : snprintf(out + len, outlen - len, "%s%.*s", n ? " " : "", (int)v->namelen, v->var);
        if (w < 0)
            break;
        len += (size_t)w < outlen - len ? (size_t)w : outlen - len - 1;
        n++;
    }
    return n;
}

void zps_env_log(const zps_env_t *e, zps_log_t *log)
{
    if (!e || !log)
        return;
    char buf[2048];
    if (s_list(e, ENV_TAKEN, 1, buf, sizeof buf))
        zps_log(log, ZPS_LOG_INFO, "options from the environment: %s", buf);
    if (s_list(e, ENV_OVERRIDDEN, 0, buf, sizeof buf))
        zps_log(log, ZPS_LOG_INFO, "environment overridden by the command line: %s", buf);
    if (s_list(e, ENV_UNSET, 0, buf, sizeof buf))
        zps_log(log, ZPS_LOG_INFO, "environment: left unset (empty, 0, false or no): %s", buf);
    char more[64] = "";
    if (s_list(e, ENV_CLUSTER, 0, buf, sizeof buf) + e->more[1]) {
        if (e->more[1])
            snprintf(more, sizeof more, " and %zu more", e->more[1]);
        zps_log(log, ZPS_LOG_INFO, "environment: Kubernetes service variables, not options: %s%s",
                buf, more);
    }
    if (s_list(e, ENV_IGNORED, 0, buf, sizeof buf) + e->more[0]) {
        more[0] = '\0';
        if (e->more[0])
            snprintf(more, sizeof more, " and %zu more", e->more[0]);
        zps_log(log, ZPS_LOG_WARN, "environment: ignored (no such option of %s): %s%s", e->prog,
                buf, more);
    }
}

void zps_env_explain(const zps_env_t *e, FILE *f)
{
    char buf[2048];
    if (e && s_list(e, ENV_TAKEN, 1, buf, sizeof buf))
        fprintf(f, "%s: (options from the environment: %s)\n", e->prog, buf);
}
