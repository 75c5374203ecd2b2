/* zps_metrics_http: the /metrics endpoint of a daemon, served by
 * libmicrohttpd from a text snapshot the daemon publishes.
 *
 *   h = zps_metrics_http_new(":9100", err, sizeof err);   // 127.0.0.1:9100
 *   ... in the daemon's loop, every 100 ms or so:
 *   zps_metrics_http_publish(h, zps_prom_render(reg, &len), len);
 *
 * GET (and HEAD) /metrics answer the last snapshot as
 * "text/plain; version=0.0.4; charset=utf-8"; any other path is 404, any
 * other method 405.  See zps_metrics_http.c for why a snapshot.
 *
 * Ownership: publish takes the text (malloc'd); the endpoint frees it. */
#ifndef ZPS_METRICS_HTTP_H
#define ZPS_METRICS_HTTP_H

#include <stddef.h>
#include <stdint.h>

typedef struct zps_metrics_http zps_metrics_http_t;

#define ZPS_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define ZPS_METRICS_MAX_CONNECTIONS 16   /* scrapers served at once */
#define ZPS_METRICS_TIMEOUT_S 10         /* an idle connection is closed after this */

/* Parses "ADDR:PORT" (ADDR an IPv4 address, "localhost" or "*" for
 * 0.0.0.0) or ":PORT" (127.0.0.1); PORT 0 picks a free one.  Writes the
 * address as dotted text to addr (16 bytes) and the port.  0, or -1 with
 * the reason in err. */
int zps_metrics_parse_listen(const char *spec, char *addr, uint16_t *port, char *err,
                             size_t errlen);

/* Starts serving on spec (see above).  NULL with the reason in err. */
zps_metrics_http_t *zps_metrics_http_new(const char *spec, char *err, size_t errlen);
void zps_metrics_http_destroy(zps_metrics_http_t **h);

/* "ADDR:PORT" actually bound (the port chosen when 0 was asked). */
const char *zps_metrics_http_address(const zps_metrics_http_t *h);

/* Replaces the snapshot with text (len bytes, malloc'd, taken over; NULL:
 * keep the old one).  Never waits for a scraper: the lock is held only to
 * swap a pointer, and scrapers copy under it. */
void zps_metrics_http_publish(zps_metrics_http_t *h, char *text, size_t len);

/* Requests answered so far (any status): for the daemon's own metrics. */
uint64_t zps_metrics_http_requests(const zps_metrics_http_t *h);

#endif
