/* bench_pipe: what zps-bench's parent and its children say to each other.
 *
 * The parent never touches ZeroMQ: it forks every participant (bench_super)
 * and talks to them over pipes.  A server child writes one bench_hello_t
 * (its endpoint, or why it failed); a client child reads fixed-size
 * commands (bench_cmd_t) on one pipe and answers fixed-size results
 * (bench_res_t) on another, plus one 'G' byte from the parent as the start
 * barrier of a timed run.  Each message is one write() of at most PIPE_BUF
 * bytes, so it arrives whole; reads take a timeout (the parent's hang
 * guard).  Also here: the limits and the names of the operations, which
 * both sides share. */
#ifndef BENCH_PIPE_H
#define BENCH_PIPE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_SRV 32
#define BENCH_MAX_CLI 32
#define BENCH_MAX_WINDOW 1024
#define BENCH_POP_CHUNK 1000000u      /* keys per populate push */
#define BENCH_CLIENT_TIMEOUT_MS 30000
#define BENCH_PARENT_TIMEOUT_MS 600000 /* hang guard on any single answer from a child */

enum { BENCH_OP_PUSH = 0, BENCH_OP_PULL = 1, BENCH_OP_PUSHPULL = 2, BENCH_NOPS = 3 };
extern const char *const bench_op_name[BENCH_NOPS];

enum {
    BENCH_CMD_POPULATE = 1, BENCH_CMD_RUN, BENCH_CMD_RAW, BENCH_CMD_LAT, BENCH_CMD_RAWLAT,
    BENCH_CMD_QUIT
};

typedef struct {
    int cmd, op;
    uint64_t k, table_keys;
    int shuffle;                         /* populate: ids in a scrambled order */
    uint32_t window, lat_iters, lat_warmup;
    double min_s, max_s;
    uint64_t target_pairs;
    uint64_t req_bytes[2], rep_bytes[2]; /* raw: bytes per sub-message, [push, pull] */
} bench_cmd_t;

typedef struct {
    int status;                          /* 0, or failed (err says why) */
    uint64_t pairs, msgs, submsgs, sent, recv, keys_stored;
    double elapsed;                      /* seconds */
    double p50_us, p99_us;
    double lat_req[2], lat_rep[2];       /* bytes of a 1-key push / pull round trip */
    char err[640];
} bench_res_t;

typedef struct {
    int status;
    char text[512];                      /* endpoint, or the error */
} bench_hello_t;

/* each is written with one write(), so it arrives whole */
_Static_assert(sizeof(bench_cmd_t) <= PIPE_BUF && sizeof(bench_res_t) <= PIPE_BUF &&
                   sizeof(bench_hello_t) <= PIPE_BUF,
               "pipe messages must be atomic");

/* Writes all of buf; 0, or -1 when the pipe is gone. */
int bench_pipe_write(int fd, const void *buf, size_t len);

/* Reads exactly len bytes; timeout_ms < 0 waits forever.  0, or -1 on
 * EOF / error / timeout. */
int bench_pipe_read(int fd, void *buf, size_t len, int timeout_ms);

#endif
