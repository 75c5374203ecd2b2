/* zps.h: the public C API of zps (libzps.so.0; `pkg-config --cflags --libs zps`).
 *
 * A client of a running zps job: connect to its servers, push sparse
 * key/value gradients, pull weights, read the servers' counters.  It is the
 * worker's own client (worker/wk_client.h) behind an opaque handle, with
 * no ZeroMQ or protobuf type in sight.
 *
 *   char err[512];
 *   zps_client_t *c = zps_client_connect("tcp://10.0.0.1:7000,tcp://10.0.0.2:7000",
 *                                        NULL, err, sizeof err);
 *   if (!c) { fprintf(stderr, "%s\n", err); exit(1); }
 *   uint64_t keys[] = {3, 17, 42};            (strictly increasing)
 *   float g[3] = {-1, -2, -3}, w[3];          (n * zps_client_dim(c) floats)
 *   int rc = zps_client_push(c, keys, g, 3);  (the servers' optimizer applies g)
 *   if (!rc) rc = zps_client_pull(c, keys, 3, w);
 *   if (rc) fprintf(stderr, "%s\n", zps_client_error(c));
 *   zps_client_destroy(&c);
 *
 * Keys are any 64-bit ids but UINT64_MAX (the models' bias key); each call
 * takes them sorted, strictly increasing.  Each key holds dim floats (the
 * servers' --table-dim, or the model's row size).  A push is a gradient:
 * the server's optimizer applies it (with --optimizer sgd --lr 1 it is
 * subtracted: w -= g); it is applied exactly once, even when retried.
 * Calls block until every server involved answered (or the timeout).
 *
 * Errors: functions returning int give 0 or a negative ZPS_E* code below;
 * zps_strerror names a code, zps_client_error says what failed last
 * (naming the server and its address).  Nothing here exits or prints.
 *
 * Threads: a handle is used by one thread at a time; separate handles are
 * independent.  Stability: names and structs here keep their meaning for
 * the life of soname libzps.so.0. */
#ifndef ZPS_H
#define ZPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZPS_API_VERSION 1

#ifndef ZPS_ERR_H /* the codes of zps's common/zps_err.h, which defines them inside zps */
#define ZPS_ERR_H
enum {
    ZPS_OK        = 0,
    ZPS_EINVAL    = -30900, /* bad argument or configuration */
    ZPS_ENOMEM    = -30901, /* allocation failed */
    ZPS_EPROTO    = -30902, /* malformed message */
    ZPS_EVERSION  = -30903, /* peer speaks another protocol version */
    ZPS_ETIMEDOUT = -30904, /* peer did not answer in time */
    ZPS_ESERVER   = -30905, /* server answered with an error */
    ZPS_EIO       = -30906, /* transport or file I/O error */
    ZPS_EMISMATCH = -30907, /* peer configuration disagrees with ours */
    ZPS_EBUSY     = -30908, /* too many requests in flight */
    ZPS_ETOOBIG   = -30909, /* message or count over a limit */
    ZPS_EINTR     = -30910, /* interrupted by a signal */
    ZPS_EKEYCACHE = -30911, /* key list signature not in the server's cache */
    ZPS_EPERM     = -30912, /* not allowed: admin secret or identity missing or wrong */
    ZPS_ELIMIT    = -30913, /* a configured resource limit would be exceeded */
    ZPS_ENONFINITE = -30914, /* the update would make a weight or state non-finite */
    ZPS_ESEQ      = -30915, /* push sequence number invalid (0, or outside the window) */
    ZPS_ENOLEASE  = -30916, /* replicated job: the server holds no lease from the coordinator
                               (cut off, removed, or not started yet): retry elsewhere/later */
    ZPS_ELOST     = -30917, /* replicated job: every replica of a key range failed */
    ZPS_ESTALE    = -30918, /* replicated job: the server's range table is older than the
                               request's (it is about to learn the new one): retry soon */
};

/* Static text for a ZPS_E* code or a negated errno; never NULL. */
const char *zps_strerror(int code);
#endif

/* The library's version, e.g. "0.1.0". */
const char *zps_version(void);

typedef struct zps_client zps_client_t;

typedef struct {
    int connect_timeout_ms;     /* for the hello with every server [10000] */
    int timeout_ms;             /* a pull or push fails after this long [60000] */
    uint32_t rank;              /* this client's number in the servers' logs [0]; the
                                   servers bind a rank to one connection (exactly-
                                   once pushes): clients that push at the same time
                                   need different ranks, else the later one's pushes
                                   fail with ZPS_EPERM */
    /* CURVE (a job started with --secure): this client's key pair and the
     * servers' public key, Z85 text as zps-keygen writes them; all NULL
     * (the default) for a plaintext job. */
    const char *curve_public, *curve_secret, *server_public;
} zps_client_options_t;

/* Fills o with the defaults above. */
void zps_client_options_init(zps_client_options_t *o);

/* Connects to the job's servers, "tcp://HOST:PORT" in rank order separated
 * by commas (what zps-launch prints and ZPS_SERVERS holds), and checks that
 * they agree on their tables.  opts NULL: the defaults.  NULL on failure,
 * the reason (naming the server) in err. */
zps_client_t *zps_client_connect(const char *servers, const zps_client_options_t *opts,
                                 char *err, size_t errlen);

/* Closes the connections; *c becomes NULL (NULL and *c NULL are fine). */
void zps_client_destroy(zps_client_t **c);

uint32_t zps_client_num_servers(const zps_client_t *c);
/* Floats per key. */
uint32_t zps_client_dim(const zps_client_t *c);

/* Weights of n keys (sorted, strictly increasing) into out (n * dim floats);
 * a key never pushed has its initial value (0 for a raw table). */
int zps_client_pull(zps_client_t *c, const uint64_t *keys, size_t n, float *out);

/* Pushes the gradients grads (n * dim floats) of n keys (sorted, strictly
 * increasing); returns once every server involved acknowledged it. */
int zps_client_push(zps_client_t *c, const uint64_t *keys, const float *grads, size_t n);

typedef struct {
    uint64_t keys_stored;       /* keys in the server's table */
    uint64_t bytes_used;        /* memory the table takes */
    uint64_t pushes, pulls;     /* requests served */
    uint64_t keys_pushed, keys_pulled;
    uint64_t errors;            /* requests refused */
    uint64_t uptime_ms;
} zps_server_stats_t;

/* Counters of server `server` (0 .. num_servers - 1). */
int zps_client_stats(zps_client_t *c, uint32_t server, zps_server_stats_t *out);

/* What failed last on c ("" if nothing did). */
const char *zps_client_error(const zps_client_t *c);

#ifdef __cplusplus
}
#endif

#endif
