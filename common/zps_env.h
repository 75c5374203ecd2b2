/* zps_env: options from ZPS_* environment variables, for engines that start
 * processes without a command line of ours (Kubernetes ConfigMaps, Slurm,
 * MPI, systemd units).
 *
 * The rule is one for every option: `--foo-bar VALUE` may be given as
 * ZPS_FOO_BAR=VALUE (upper case, '-' -> '_').  A flag on the command line
 * wins over its variable: a variable is used only when its option does not
 * appear on the command line at all (so a repeatable option such as --train
 * takes either the command line's values or the variable's one value).  An
 * option without a value is set by 1/true/yes and left unset by
 * 0/false/no/empty; anything else is an error naming the variable.  ZPS_*
 * variables that name no option of the program are reported as ignored (a
 * misspelt ZPS_EPOCH must not pass silently), except those the scripts and
 * tests use for themselves (zps_env_reserved).
 *
 * zps_env_new builds a new argv: argv[0], then "--name value" for every
 * variable taken, then the command line's arguments; the mains parse it as
 * usual.  The strings live as long as the handle (a parsed configuration
 * keeps pointers into them), so destroy it last. */
#ifndef ZPS_ENV_H
#define ZPS_ENV_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include "zps_log.h"

typedef struct zps_env zps_env_t;

/* opts: the program's long options (zero entry last); envp: NULL-terminated
 * "NAME=VALUE" strings (environ).  NULL with err on a bad value or no
 * memory. */
zps_env_t *zps_env_new(const char *prog, const struct option *opts, char *const *envp, int argc,
                       char **argv, char *err, size_t errlen);
void zps_env_destroy(zps_env_t **e);

int zps_env_argc(const zps_env_t *e);
char **zps_env_argv(const zps_env_t *e);
/* options taken from the environment */
size_t zps_env_taken(const zps_env_t *e);

/* One log line naming the variables taken ("options from the environment:
 * ZPS_RANK=2 ...") and one per variable ignored; nothing when none. */
void zps_env_log(const zps_env_t *e, zps_log_t *log);
/* The same to f, for an error before the log exists: which options came
 * from the environment, so that an error about --rank can be traced to
 * ZPS_RANK. */
void zps_env_explain(const zps_env_t *e, FILE *f);

/* 1 when name (without the ZPS_ prefix) is a variable of the scripts and
 * tests, not an option (BIN, ROLE, GLOBAL_RANK, TEST_VARIANT, ...). */
int zps_env_reserved(const char *name);

#endif
