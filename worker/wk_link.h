/* wk_link: a worker's connection to its servers, set up from the job
 * options: --servers split into endpoints, the client's timeouts, retries
 * and retention limit, the consistency model's heartbeats and held-pull
 * waits, CURVE keys (--curve-secret, --server-public), --local's in-process
 * store; then the hello, and the check that the servers run the job and
 * table this worker's options describe (else an error saying so).  The
 * client's notices and "waiting for server" messages go to the log as
 * warnings.
 *
 * Two steps, so that a trainer reports a missing --servers before it opens
 * its data and connects only after the data checks passed.
 *
 * Ownership: the link owns the endpoint strings and the client; it keeps
 * pointers to conf and log (not owned). */
#ifndef WK_LINK_H
#define WK_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "wk_client.h"
#include "zps_conf.h"
#include "zps_log.h"

typedef struct wk_link wk_link_t;

/* Splits --servers (not needed with --local).  NULL + err on no servers;
 * NULL with err untouched when out of memory. */
wk_link_t *wk_link_new(const zps_conf_t *conf, zps_log_t *log, char *err, size_t errlen);
void wk_link_destroy(wk_link_t **l);

/* Connects and checks the job and table.  The client (owned by the link),
 * or NULL + err. */
wk_client_t *wk_link_connect(wk_link_t *l, char *err, size_t errlen);

/* The number of servers (0 with --local). */
uint32_t wk_link_nservers(const wk_link_t *l);

#endif
