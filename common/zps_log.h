/* zps_log: one timestamped line per notable event, tagged with role/rank.
 *
 *   2026-11-27T18:30:00.123Z server/0 info: bound tcp://127.0.0.1:40123
 *
 * A logger is an object the daemon creates from its config and passes down;
 * there is no process-wide logger.  Each line is formatted into one buffer
 * and written with a single fwrite so lines from concurrent processes
 * sharing a terminal or a file do not interleave mid-line.
 * zps_log_limited() lets a caller rate-limit a noisy event class (bad
 * messages from a hostile peer): at most one line per class per interval,
 * with a count of what was suppressed; zps_log_burst() allows a burst of
 * lines per interval (per-peer events: hellos, refusals), so a flood from
 * any number of peers writes a bounded number of lines.
 *
 * Strings that come from the network are untrusted: zps_log_escape() makes
 * them safe to log (no control characters, bounded length). */
#ifndef ZPS_LOG_H
#define ZPS_LOG_H

#include <stdint.h>
#include <stdio.h>

typedef enum { ZPS_LOG_DEBUG = 0, ZPS_LOG_INFO, ZPS_LOG_WARN, ZPS_LOG_ERROR } zps_log_level_t;

typedef struct zps_log zps_log_t;

/* role is copied ("server", "worker", "bench", ...); out is not owned
 * (NULL = stderr). */
zps_log_t *zps_log_new(const char *role, int rank, FILE *out);
void zps_log_destroy(zps_log_t **log);
void zps_log_set_level(zps_log_t *log, zps_log_level_t level);
void zps_log_set_rank(zps_log_t *log, int rank);

void zps_log(zps_log_t *log, zps_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Rate-limited, at WARN: class_id taken modulo 32 (classes shared with
 * zps_log_burst); at most one line per class per interval_ms.  Returns 1 if a line was written. */
int zps_log_limited(zps_log_t *log, unsigned class_id, int64_t interval_ms,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* At most burst lines of class class_id in [0, 32) per interval_ms (a
 * fixed window), at the given level; the first line after a suppressed
 * stretch says how many were suppressed.  Returns 1 if a line was written. */
int zps_log_burst(zps_log_t *log, zps_log_level_t level, unsigned class_id, unsigned burst,
                  int64_t interval_ms, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Lines suppressed by the rate limits so far (all classes). */
uint64_t zps_log_suppressed(const zps_log_t *log);

/* Copy an untrusted string of len bytes (may hold NULs) into out, escaped
 * for a log line: backslash -> \\, newline -> \n, CR -> \r, tab -> \t,
 * any other byte outside 0x20..0x7e -> \xNN; at most max_chars input bytes
 * are taken, and "..." marks a cut.  out is always NUL-terminated (outlen
 * >= 1); 4 * max_chars + 4 bytes always suffice.  Returns out. */
char *zps_log_escape(const char *in, size_t len, char *out, size_t outlen, size_t max_chars);

/* The usual cap for wire strings in logs. */
#define ZPS_LOG_WIRE_CHARS 64
#define ZPS_LOG_WIRE_BUF (4 * ZPS_LOG_WIRE_CHARS + 4)

#define zps_debug(l, ...) zps_log((l), ZPS_LOG_DEBUG, __VA_ARGS__)
#define zps_info(l, ...)  zps_log((l), ZPS_LOG_INFO, __VA_ARGS__)
#define zps_warn(l, ...)  zps_log((l), ZPS_LOG_WARN, __VA_ARGS__)
#define zps_error(l, ...) zps_log((l), ZPS_LOG_ERROR, __VA_ARGS__)

#endif
