/* zps_prom: a metrics registry (counters, gauges, histograms with fixed
 * buckets) rendered in the Prometheus text exposition format 0.0.4.
 *
 * A registry holds families (one name, one type, one HELP text) in the
 * order they were added; a family holds series, one per label set, in the
 * order they were added.  The owner updates series with plain stores (no
 * locks: one thread owns a registry) and calls zps_prom_render for a text
 * snapshot, which another thread may then serve (zps_metrics_http).
 *
 * Names follow Prometheus's rules ([a-zA-Z_:][a-zA-Z0-9_:]* for metrics,
 * [a-zA-Z_][a-zA-Z0-9_]* and no leading "__" for labels); a bad name is
 * refused when the family or series is made, never at render time.  Label
 * values are escaped at render time (\\, \", \n), HELP text likewise (\\,
 * \n).  Values print as integers when they are whole and below 2^53, else
 * in the shortest %g form that reads back to the same double; NaN and
 * +/-Inf as "NaN", "+Inf", "-Inf".
 *
 * Ownership: the registry owns its families and series; handles stay valid
 * until zps_prom_destroy. */
#ifndef ZPS_PROM_H
#define ZPS_PROM_H

#include <stddef.h>

typedef enum { ZPS_PROM_COUNTER, ZPS_PROM_GAUGE, ZPS_PROM_HISTOGRAM } zps_prom_type_t;

typedef struct zps_prom zps_prom_t;
typedef struct zps_prom_fam zps_prom_fam_t;
typedef struct zps_prom_series zps_prom_series_t;

#define ZPS_PROM_MAX_BUCKETS 32
#define ZPS_PROM_MAX_LABELS 8

zps_prom_t *zps_prom_new(void);
void zps_prom_destroy(zps_prom_t **p);

/* A family.  Histograms take nbuckets upper bounds, strictly increasing and
 * finite (+Inf is added at render time); other types take 0 and NULL.
 * NULL on a bad or duplicate name, bad buckets or no memory. */
zps_prom_fam_t *zps_prom_family(zps_prom_t *p, zps_prom_type_t type, const char *name,
                                const char *help, size_t nbuckets, const double *bounds);

/* A series of family f with the labels given as name, value pairs ending
 * with NULL (labels may be NULL: no labels).  NULL on a bad label name, a
 * label set the family already has, more than ZPS_PROM_MAX_LABELS labels,
 * or no memory. */
zps_prom_series_t *zps_prom_series(zps_prom_fam_t *f, const char *const *labels);

/* A family of one series without labels: the series (NULL as above). */
zps_prom_series_t *zps_prom_scalar(zps_prom_t *p, zps_prom_type_t type, const char *name,
                                   const char *help);

/* Counters and gauges: set the value, or add to it (a counter's value is
 * the caller's to keep monotone: it is usually copied from a counter the
 * program already keeps).  No-ops on a NULL series. */
void zps_prom_set(zps_prom_series_t *s, double v);
void zps_prom_add(zps_prom_series_t *s, double v);
double zps_prom_value(const zps_prom_series_t *s);

/* Histograms: count v in the first bucket whose bound is >= v (NaN is
 * counted in +Inf only), add it to the sum. */
void zps_prom_observe(zps_prom_series_t *s, double v);

/* The whole registry as text, NUL-terminated, in a buffer the caller frees;
 * *len (if not NULL) is its length.  NULL if out of memory. */
char *zps_prom_render(const zps_prom_t *p, size_t *len);

/* A value as the text format writes it (see above); out has room for 32
 * bytes.  Returns out. */
char *zps_prom_format_value(double v, char *out);

#endif
