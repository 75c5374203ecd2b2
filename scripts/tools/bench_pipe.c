/* bench_pipe: the parent/child pipe messages of zps-bench (see bench_pipe.h). */
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "bench_pipe.h"
#include "zps_time.h"

const char *const bench_op_name[BENCH_NOPS] = {"push", "pull", "pushpull"};

int bench_pipe_write(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Read exactly len bytes; timeout_ms < 0 waits forever.  0, or -1 on
 * EOF / error / timeout. */
int bench_pipe_read(int fd, void *buf, size_t len, int timeout_ms)
{
    char *p = buf;
    int64_t end = timeout_ms < 0 ? 0 : zps_now_ms() + timeout_ms;
    while (len) {
        if (timeout_ms >= 0) {
            struct pollfd pf = {fd, POLLIN, 0};
            int64_t left = end - zps_now_ms();
            if (left <= 0)
                return -1;
            int r = poll(&pf, 1, (int)left);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return -1;
        }
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
