/* zps_metrics_http: see zps_metrics_http.h.
 *
 * DESIGN
 * The daemons are single-threaded ZeroMQ loops (the server's must never
 * wait on a peer), so HTTP runs beside them, not in them: libmicrohttpd
 * with its own polling thread (MHD_USE_AUTO_INTERNAL_THREAD: epoll or
 * poll, so descriptors past FD_SETSIZE on a busy server are no problem)
 * answers every scrape from the last text snapshot the loop published.
 * The loop renders its registry (a few KB) at most every 100 ms and swaps
 * the pointer in under a mutex; a scraper copies the text under the same
 * mutex.  Neither side ever waits on anything but a memcpy of a few KB:
 * a slow, hostile or stuck scraper holds only libmicrohttpd's connection
 * slot, never the mutex, so it cannot stall the loop.  The other design,
 * libmicrohttpd in external-select mode with its descriptors in the
 * loop's zmq_poll, would keep one thread but put HTTP parsing and the
 * connection bookkeeping of every scraper inside the loop; a snapshot also
 * means a scrape sees one consistent set of values, and metrics of a
 * worker blocked in a long synchronous step (scoring the test set) are
 * still served, a little old.
 *
 * Bounds: ZPS_METRICS_MAX_CONNECTIONS connections (more are refused at
 * accept), ZPS_METRICS_TIMEOUT_S idle timeout, 16 KiB of memory per
 * connection (a longer request head is refused by libmicrohttpd), request
 * bodies are read and dropped.  Signals are blocked in the HTTP thread so
 * SIGTERM reaches the daemon's loop. */
#include "zps_metrics_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct zps_metrics_http {
    struct MHD_Daemon *d;
    pthread_mutex_t mu;
    char *text;               /* the snapshot (under mu) */
    size_t len;
    _Atomic uint64_t requests;
    char address[32];
};

int zps_metrics_parse_listen(const char *spec, char *addr, uint16_t *port, char *err,
                             size_t errlen)
{
    const char *colon = spec ? strrchr(spec, ':') : NULL;
    if (!colon) {
        snprintf(err, errlen, "'%s' is not ADDR:PORT or :PORT", spec ? spec : "");
        return -1;
    }
    size_t hlen = (size_t)(colon - spec);
    char host[64];
    if (hlen >= sizeof host) {
        snprintf(err, errlen, "'%s': address too long", spec);
        return -1;
    }
    memcpy(host, spec, hlen);
    host[hlen] = 0;
    const char *p = colon + 1;
    unsigned long v = 0;
    if (!*p || strlen(p) > 5) {
        snprintf(err, errlen, "'%s': the port must be a number 0..65535", spec);
        return -1;
    }
    for (; *p; p++) {
        if (*p < '0' || *p > '9') {
            snprintf(err, errlen, "'%s': the port must be a number 0..65535", spec);
            return -1;
        }
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v > 65535) {
        snprintf(err, errlen, "'%s': the port must be a number 0..65535", spec);
        return -1;
    }
    const char *a = !host[0] || !strcmp(host, "localhost") ? "127.0.0.1"
                    : !strcmp(host, "*")                  ? "0.0.0.0"
                                                          : host;
    struct in_addr in;
    if (inet_pton(AF_INET, a, &in) != 1) {
        snprintf(err, errlen, "'%s': '%s' is not an IPv4 address (or localhost, or * for all)",
                 spec, host);
        return -1;
    }
    inet_ntop(AF_INET, &in, addr, 16);
    *port = (uint16_t)v;
    return 0;
}

static enum MHD_Result s_reply(struct MHD_Connection *c, unsigned status, const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, "Allow", "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result s_handler(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **req_cls)
{
    (void)version;
    (void)upload_data;
    zps_metrics_http_t *h = cls;
    static int first_call;
    if (*req_cls == NULL) {        /* headers only: answer once the body (if any) is read */
        *req_cls = &first_call;
        return MHD_YES;
    }
    if (*upload_data_size) {       /* a body: read and dropped */
        *upload_data_size = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&h->requests, 1);
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return s_reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    if (strcmp(url, "/metrics"))
        return s_reply(c, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n");
    pthread_mutex_lock(&h->mu);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(h->len, h->text ? h->text : (void *)"", MHD_RESPMEM_MUST_COPY);
    pthread_mutex_unlock(&h->mu);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ZPS_METRICS_CONTENT_TYPE);
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

zps_metrics_http_t *zps_metrics_http_new(const char *spec, char *err, size_t errlen)
{
    char addr[16];
    uint16_t port;
    if (zps_metrics_parse_listen(spec, addr, &port, err, errlen) != 0)
        return NULL;
    zps_metrics_http_t *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&h->mu, NULL);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    inet_pton(AF_INET, addr, &sa.sin_addr);
    /* the HTTP thread inherits a mask with every signal blocked */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    h->d = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD, port, NULL, NULL, s_handler, h,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)ZPS_METRICS_MAX_CONNECTIONS,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)ZPS_METRICS_TIMEOUT_S,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,
                            MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!h->d) {
        snprintf(err, errlen, "cannot serve metrics on %s:%u (address in use, or not this "
                 "machine's?)", addr, (unsigned)port);
        zps_metrics_http_destroy(&h);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(h->address, sizeof h->address, "%s:%u", addr,
             di ? (unsigned)di->port : (unsigned)port);
    return h;
}

void zps_metrics_http_destroy(zps_metrics_http_t **hp)
{
    if (!hp || !*hp)
        return;
    zps_metrics_http_t *h = *hp;
    if (h->d)
        MHD_stop_daemon(h->d);
    pthread_mutex_destroy(&h->mu);
    free(h->text);
    free(h);
    *hp = NULL;
}

const char *zps_metrics_http_address(const zps_metrics_http_t *h) { return h->address; }

void zps_metrics_http_publish(zps_metrics_http_t *h, char *text, size_t len)
{
    if (!h || !text)
        return;
    pthread_mutex_lock(&h->mu);
    char *old = h->text;
    h->text = text;
    h->len = len;
    pthread_mutex_unlock(&h->mu);
    free(old);
}

uint64_t zps_metrics_http_requests(const zps_metrics_http_t *h)
{
    return h ? atomic_load(&((zps_metrics_http_t *)h)->requests) : 0;
}
