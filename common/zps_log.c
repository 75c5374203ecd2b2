/* zps_log: see zps_log.h. */
#include "zps_log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "zps_time.h"

#define LOG_CLASSES 16

struct zps_log {
    char role[24];
    int rank;
    FILE *out;
    zps_log_level_t level;
    int64_t last_ms[LOG_CLASSES];
    uint64_t suppressed[LOG_CLASSES];
};

zps_log_t *zps_log_new(const char *role, int rank, FILE *out)
{
    zps_log_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    snprintf(l->role, sizeof l->role, "%s", role ? role : "zps");
    l->rank = rank;
    l->out = out ? out : stderr;
    l->level = ZPS_LOG_INFO;
    for (int i = 0; i < LOG_CLASSES; i++)
        l->last_ms[i] = INT64_MIN / 2;
    return l;
}

void zps_log_destroy(zps_log_t **log)
{
    if (log && *log) {
        free(*log);
        *log = NULL;
    }
}

void zps_log_set_level(zps_log_t *log, zps_log_level_t level) { log->level = level; }
void zps_log_set_rank(zps_log_t *log, int rank) { log->rank = rank; }

static void s_vlog(zps_log_t *log, zps_log_level_t level, const char *fmt, va_list ap)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    if (log->rank >= 0)
        n += snprintf(line + n, sizeof line - (size_t)n, ".%03dZ %s/%d %s: ",
                      (int)(tv.tv_usec / 1000), log->role, log->rank, names[level]);
    else
        n += snprintf(line + n, sizeof line - (size_t)n, ".%03dZ %s %s: ",
                      (int)(tv.tv_usec / 1000), log->role, names[level]);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, log->out);
    fflush(log->out);
}

void zps_log(zps_log_t *log, zps_log_level_t level, const char *fmt, ...)
{
    if (!log || level < log->level)
        return;
    va_list ap;
    va_start(ap, fmt);
    s_vlog(log, level, fmt, ap);
    va_end(ap);
}

int zps_log_limited(zps_log_t *log, unsigned class_id, int64_t interval_ms, const char *fmt, ...)
{
    if (!log)
        return 0;
    class_id %= LOG_CLASSES;
    int64_t now = zps_now_ms();
    if (now - log->last_ms[class_id] < interval_ms) {
        log->suppressed[class_id]++;
        return 0;
    }
    if (log->suppressed[class_id])
        zps_log(log, ZPS_LOG_WARN, "(%llu similar lines suppressed)",
                (unsigned long long)log->suppressed[class_id]);
    log->suppressed[class_id] = 0;
    log->last_ms[class_id] = now;
    va_list ap;
    va_start(ap, fmt);
    s_vlog(log, ZPS_LOG_WARN, fmt, ap);
    va_end(ap);
    return 1;
}
