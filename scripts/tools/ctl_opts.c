/* ctl_opts: zps-ctl's command line (see ctl_opts.h). */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_num.h"
#include "ctl_opts.h"
#include "wk_client.h"
#include "zps_args.h"

void ctl_die_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("zps-ctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see zps-ctl --help)\n", stderr);
    va_end(ap);
    exit(2);
}

static int s_seconds(const char *s, double *out)
{
    /* base-10 seconds, fractions allowed: 0.5 */
    float f;
    if (ctl_parse_float(s, strlen(s), &f) || !(f > 0))
        return -1;
    *out = f;
    return 0;
}

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
           "  table [--file KEYS]          (with --coordinator, no --servers needed) a replicated\n"
           "                               job's range table: version, per server the ranges it\n"
           "                               holds and heads; with --file (one key per line): each\n"
           "                               key's range and replicas, primary first\n"
           "  add-server ENDPOINT          (with --coordinator) give the server that announced\n"
           "                               ENDPOINT (started with --coordinator, a free --rank and\n"
           "                               --announce ENDPOINT; or give its rank) a fair share of\n"
           "                               the ranges: they are copied to it while the job runs,\n"
           "                               then it replaces the servers they came from\n"
           "  remove-server RANK           (with --coordinator) move every range of server RANK to\n"
           "                               the other servers, then it exits; both wait until done\n"
           "                               (--no-wait: return once started; at most\n"
           "                               --server-timeout seconds)\n"
           "  shutdown [--server R] [--reason TEXT]\n"
           "                               ask the servers to exit (needs --admin-token-file)\n"
           "  top --metrics HOST:PORT,...  (first, without --servers) a live view of servers and\n"
           "                               workers from their /metrics; zps-ctl top --help\n"
           "options:\n"
           "  --servers A,B,...            server endpoints, in rank order\n"
           "  --coordinator EP             pull/push in a replicated job: take the range table\n"
           "                               from zps-coord at EP (push to every replica, fail over;\n"
           "                               --servers may then be left out)\n"
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

int ctl_opts_parse(int argc, char **argv, ctl_opts_t *o, const char **cmd, const char **arg)
{
    memset(o, 0, sizeof *o);
    o->server_timeout = 120;
    o->timeout = 10;
    o->retry = 2;
    o->server = -1;
    const char *servers = NULL;
    enum { O_SERVERS = 256, O_CSEC, O_SPUB, O_STO, O_TOKEN, O_TIMEOUT, O_RANK, O_TABLE, O_JSON,
           O_FILE, O_WINDOW, O_OUT, O_REASON, O_SERVER, O_HELP, O_VERSION, O_RETRY, O_COORD, O_NO_WAIT };
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
        {"coordinator", required_argument, 0, O_COORD},
        {"no-wait", no_argument, 0, O_NO_WAIT},
        {"help", no_argument, 0, O_HELP},
        {"version", no_argument, 0, O_VERSION},
        {0, 0, 0, 0}};
    char oerr[300];
    int ch, li;
    while ((ch = zps_getopt(argc, argv, NULL, lo, &li, oerr, sizeof oerr)) != -1) {
        uint32_t u;
        switch (ch) {
        case O_SERVERS: servers = optarg; break;
        case O_CSEC: o->curve_secret = optarg; break;
        case O_SPUB: o->server_public = optarg; break;
        case O_STO:
            if (s_seconds(optarg, &o->server_timeout))
                ctl_die_usage("--server-timeout needs seconds > 0, got '%s'", optarg);
            break;
        case O_TIMEOUT:
            if (s_seconds(optarg, &o->timeout))
                ctl_die_usage("--timeout needs seconds > 0, got '%s'", optarg);
            break;
        case O_RETRY:
            if (s_seconds(optarg, &o->retry))
                ctl_die_usage("--retry needs seconds > 0, got '%s'", optarg);
            break;
        case O_TOKEN: o->token_file = optarg; break;
        case O_COORD: o->coordinator = optarg; break;
        case O_RANK:
            if (zps_parse_u32(optarg, &o->rank))
                ctl_die_usage("--rank needs a base-10 number, got '%s'", optarg);
            break;
        case O_TABLE:
            if (zps_parse_u32(optarg, &o->table))
                ctl_die_usage("--table needs a base-10 number, got '%s'", optarg);
            break;
        case O_JSON: o->json = 1; break;
        case O_FILE: o->file = optarg; break;
        case O_NO_WAIT: o->no_wait = 1; break;
        case O_WINDOW:
            if (zps_parse_u32(optarg, &o->window) || o->window == 0 || o->window > 65536)
                ctl_die_usage("--window needs 1..65536, got '%s'", optarg);
            break;
        case O_OUT: o->out = optarg; break;
        case O_REASON: o->reason = optarg; break;
        case O_SERVER:
            if (zps_parse_u32(optarg, &u))
                ctl_die_usage("--server needs a base-10 rank, got '%s'", optarg);
            o->server = u;
            break;
        case O_HELP: s_usage(); return 0;
        case O_VERSION: printf("zps-ctl %s (protocol 1)\n", ZPS_VERSION); return 0;
        default:
            ctl_die_usage("%s", oerr);
        }
    }
    if (optind >= argc)
        ctl_die_usage("no command given");
    const char *c = argv[optind++];
    const char *a = optind < argc ? argv[optind++] : NULL;
    if (optind < argc)
        ctl_die_usage("unexpected argument '%s'", argv[optind]);
    int coord_cmd = !strcmp(c, "table") || !strcmp(c, "add-server") || !strcmp(c, "remove-server");
    int needs_arg = !strcmp(c, "pull") || (coord_cmd && strcmp(c, "table"));
    if (strcmp(c, "stats") && strcmp(c, "pull") && strcmp(c, "push") && strcmp(c, "dump") &&
        strcmp(c, "health") && strcmp(c, "shutdown") && !coord_cmd)
        ctl_die_usage("unknown command '%s'", c);
    if (needs_arg && !a)
        ctl_die_usage("%s needs an argument", c);
    if (!needs_arg && a)
        ctl_die_usage("unexpected argument '%s' for %s", a, c);
    if (coord_cmd) {
        if (!o->coordinator)
            ctl_die_usage("%s needs --coordinator EP", c);
        if (!strcmp(c, "remove-server") && zps_parse_u32(a, &(uint32_t){0}) != 0)
            ctl_die_usage("remove-server needs a base-10 rank, got '%s'", a);
        *cmd = c;
        *arg = a;
        return -1;
    }
    if ((!servers || !*servers) && o->coordinator && (!strcmp(c, "pull") || !strcmp(c, "push"))) {
        /* replicated: the coordinator names the servers */
        *cmd = c;
        *arg = a;
        return -1;
    }
    if (!servers || !*servers)
        ctl_die_usage("--servers A,B,... is required");
    o->servers_buf = strdup(servers);
    o->servers = calloc(strlen(servers) / 2 + 2, sizeof *o->servers);
    if (!o->servers_buf || !o->servers)
        return 1;
    char *save = NULL;
    for (char *t = strtok_r(o->servers_buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        o->servers[o->nservers++] = t;
    if (o->nservers == 0 || o->nservers > WK_MAX_SERVERS)
        ctl_die_usage("--servers needs 1..%d endpoints", WK_MAX_SERVERS);
    if (o->server >= 0 && (uint32_t)o->server >= o->nservers)
        ctl_die_usage("--server %lld: there are %u servers", (long long)o->server, o->nservers);
    if (o->curve_secret || o->server_public) {
        char err[1300];
        if (!o->curve_secret || !o->server_public)
            ctl_die_usage("CURVE needs both --curve-secret and --server-public");
        if (zps_curve_read(o->curve_secret, &o->mine, err, sizeof err) ||
            zps_curve_read(o->server_public, &o->theirs, err, sizeof err)) {
            fprintf(stderr, "zps-ctl: %s\n", err);
            return 1;
        }
        if (!o->mine.secret_z85[0]) {
            fprintf(stderr, "zps-ctl: %s has no secret key (use the .key file)\n", o->curve_secret);
            return 1;
        }
        o->curve = 1;
    }
    *cmd = c;
    *arg = a;
    return -1;
}

void ctl_opts_free(ctl_opts_t *o)
{
    free(o->servers);
    free(o->servers_buf);
    o->servers = NULL;
    o->servers_buf = NULL;
}
