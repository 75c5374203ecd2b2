/* ctl_conn: zps-ctl's control connection -- one DEALER socket per server,
 * for the requests that do not go through wk_client (stats, dump, health,
 * shutdown).
 *
 * health must name every server that does not answer (wk_client_new fails
 * on the first), stats needs the per-client records of StatsReply,
 * shutdown carries the admin token and dump pages through DUMP: so these
 * speak the protocol directly.  A call (ctl_conn_call) sends a HELLO first
 * (so a server that binds identities to connections knows this one; the
 * nonce is one per process), then the request, and waits for each reply at
 * most --timeout seconds; replies to other request ids are dropped, an
 * ERROR reply becomes its code and text.  CURVE keys come from the
 * options. */
#ifndef CTL_CONN_H
#define CTL_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "ctl_opts.h"
#include "zps.pb-c.h"
#include "zps_msg.h"

typedef struct ctl_conn ctl_conn_t;

/* Connects to every server of o (kept by reference); NULL after a message
 * on stderr (or silently when out of memory). */
ctl_conn_t *ctl_conn_new(const ctl_opts_t *o);
void ctl_conn_destroy(ctl_conn_t **c);

/* The DEALER socket of server s, for a caller that polls several. */
void *ctl_conn_socket(ctl_conn_t *c, uint32_t s);

/* Fills env as a request of type from this tool with the next request id. */
void ctl_conn_env(ctl_conn_t *c, Zps__Envelope *env, Zps__MsgType type);

/* env as this process's HELLO (h its body). */
void ctl_conn_hello_env(ctl_conn_t *c, Zps__Envelope *env, Zps__Hello *h);

/* Sends env to server s; 0 or ZPS_EIO. */
int ctl_conn_send(ctl_conn_t *c, uint32_t s, Zps__Envelope *env);

/* HELLO then req to server s (req's request id is set here); 0 with the
 * reply in *reply (zps_msg_close it), or a ZPS_E* code with err filled. */
int ctl_conn_call(ctl_conn_t *c, uint32_t s, Zps__Envelope *req, zps_msg_t *reply, char *err,
                  size_t errlen);

#endif
