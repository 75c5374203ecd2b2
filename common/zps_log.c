/* zps_log: see zps_log.h. */
#include "zps_log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "zps_time.h"

#define LOG_CLASSES 32

struct zps_log {
    char role[24];
    int rank;
    FILE *out;
    zps_log_level_t level;
    int64_t last_ms[LOG_CLASSES];   /* window start */
    uint32_t in_window[LOG_CLASSES]; /* lines written in the window */
    uint64_t suppressed[LOG_CLASSES];
    uint64_t suppressed_total;
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
    /* one event, one line: a control character that slipped through
     * (callers escape wire strings with zps_log_escape) cannot split it */
    for (int i = 0; i < n; i++)
        if ((unsigned char)line[i] < 0x20)
            line[i] = '?';
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

static int s_burst(zps_log_t *log, zps_log_level_t level, unsigned class_id, unsigned burst,
                   int64_t interval_ms, const char *fmt, va_list ap)
{
    if (!log)
        return 0;
    class_id %= LOG_CLASSES;
    int64_t now = zps_now_ms();
    if (now - log->last_ms[class_id] >= interval_ms) {
        log->last_ms[class_id] = now;
        log->in_window[class_id] = 0;
    }
    if (log->in_window[class_id] >= burst || level < log->level) {
        if (level >= log->level) {
            log->suppressed[class_id]++;
            log->suppressed_total++;
        }
        return 0;
    }
    log->in_window[class_id]++;
    if (log->suppressed[class_id])
        zps_log(log, ZPS_LOG_WARN, "(%llu similar lines suppressed)",
                (unsigned long long)log->suppressed[class_id]);
    log->suppressed[class_id] = 0;
    s_vlog(log, level, fmt, ap);
    return 1;
}

int zps_log_limited(zps_log_t *log, unsigned class_id, int64_t interval_ms, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = s_burst(log, ZPS_LOG_WARN, class_id, 1, interval_ms, fmt, ap);
    va_end(ap);
    return r;
}

int zps_log_burst(zps_log_t *log, zps_log_level_t level, unsigned class_id, unsigned burst,
                  int64_t interval_ms, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = s_burst(log, level, class_id, burst, interval_ms, fmt, ap);
    va_end(ap);
    return r;
}

uint64_t zps_log_suppressed(const zps_log_t *log) { return log ? log->suppressed_total : 0; }

char *zps_log_escape(const char *in, size_t len, char *out, size_t outlen, size_t max_chars)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (outlen == 0)
        return out;
    if (!in)
        len = 0;
    size_t take = len < max_chars ? len : max_chars;
    for (size_t i = 0; i < take; i++) {
        unsigned char c = (unsigned char)in[i];
        char e[5];
        size_t el = 0;
        if (c == '\\') { e[0] = '\\'; e[1] = '\\'; el = 2; }
        else if (c == '\n') { e[0] = '\\'; e[1] = 'n'; el = 2; }
        else if (c == '\r') { e[0] = '\\'; e[1] = 'r'; el = 2; }
        else if (c == '\t') { e[0] = '\\'; e[1] = 't'; el = 2; }
        else if (c < 0x20 || c > 0x7e) {
            e[0] = '\\'; e[1] = 'x'; e[2] = hex[c >> 4]; e[3] = hex[c & 15]; el = 4;
        } else { e[0] = (char)c; el = 1; }
        /* keep room for the NUL, and for "..." while more input follows */
        if (o + el + 1 + (i + 1 < len ? 3 : 0) > outlen) {
            take = i;
            break;
        }
        memcpy(out + o, e, el);
        o += el;
    }
    if (len > take && o + 4 <= outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = 0;
    return out;
}
