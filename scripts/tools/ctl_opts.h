/* ctl_opts: zps-ctl's command line.
 *
 * Connection options come before the command, command options anywhere
 * (getopt_long through zps_getopt: exact names, no abbreviations); the
 * command is the first argument that is not an option, pull, add-server and
 * remove-server take one more (the key list, the endpoint, the rank).  Numbers are base 10 (zps_args: "010" is ten),
 * seconds may have fractions.  --servers is split in place into the
 * endpoint list; --curve-secret and --server-public are read here, so a
 * command starts with its keys loaded.  A usage error prints one line
 * naming the problem and exits with status 2. */
#ifndef CTL_OPTS_H
#define CTL_OPTS_H

#include <stdint.h>

#include "zps_curve.h"

typedef struct {
    char *servers_buf;
    const char **servers;
    uint32_t nservers;
    const char *curve_secret, *server_public, *token_file;
    const char *coordinator;  /* --coordinator: a replicated job's zps-coord */
    double server_timeout, timeout, retry;
    uint32_t rank, table;
    int json;
    const char *file, *out, *reason;
    uint32_t window;
    int64_t server;          /* -1: all */
    zps_curve_pair_t mine, theirs;
    int curve;
    int no_wait;             /* add-server, remove-server: return once started */
} ctl_opts_t;

/* Prints "zps-ctl: <message> (see zps-ctl --help)" and exits with status 2. */
void ctl_die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Reads argv into o, *cmd (the command) and *arg (pull's key list, else
 * NULL).  Returns -1 when the command is to run, else the exit status: 0
 * after --help or --version, 1 when a key file cannot be used or memory
 * runs out.  Usage errors exit (ctl_die_usage).  ctl_opts_free(o) in every
 * case. */
int ctl_opts_parse(int argc, char **argv, ctl_opts_t *o, const char **cmd, const char **arg);

void ctl_opts_free(ctl_opts_t *o);

#endif
