/* zps_time: monotonic and wall clocks, header-only. */
#ifndef ZPS_TIME_H
#define ZPS_TIME_H

#include <stdint.h>
#include <time.h>

static inline int64_t zps_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline int64_t zps_now_ms(void) { return zps_now_ns() / 1000000; }

static inline double zps_now_s(void) { return (double)zps_now_ns() * 1e-9; }

/* The wall clock, ms since 1970 (it can jump: for what must agree across
 * hosts, not for measuring). */
static inline int64_t zps_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
