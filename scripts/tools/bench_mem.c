/* bench_mem: zps-bench mem (see bench_mem.h).
 *
 * Three measurements, each the median of --rounds, each over --batch keys
 * drawn at random (a fresh draw per round) from the N stored ids:
 *   ceiling  random reads of one 16-byte entry in a region of the table's
 *            size (mmap, MADV_HUGEPAGE, touched first), with D reads in
 *            flight through software prefetch, D in 0 (none) 8 16 32 64:
 *            what any table that reads one random line per key can reach
 *            on this machine;
 *   table    zps_table_find_batch in chunks of 256 keys (the shard's);
 *   shard    zps_shard_pull and a push (zps_shard_push_begin + commit,
 *            sorted unique keys, every key stored) of the whole batch on an
 *            FTRL shard of dim 1 (16-byte entries), or --optimizer sgd.
 * The region's and the table's huge pages (AnonHugePages of
 * /proc/self/smaps_rollup) are reported: without them every read is a TLB
 * miss too.  Rates are per second of the thread's CPU time (steal left
 * out).  With --threads T the shard's pull and push are measured again
 * in wall time, split over a zps_pool of T threads and in one, rounds
 * alternating (CPU time would not show what threads gain).  Filling N keys takes most of the run (100M keys: about half a
 * minute). */
#include "bench_mem.h"

#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "zps_args.h"
#include "zps_hash.h"
#include "zps_optim.h"
#include "zps_pool.h"
#include "zps_shard.h"
#include "zps_time.h"

#define M_CHUNK 256
#define M_ROUNDS_MAX 64

void bench_mem_usage(FILE *f)
{
    fprintf(f, "usage: zps-bench mem [--keys N] [--batch B] [--rounds R] [--optimizer ftrl|sgd]\n"
               "                     [--threads T]\n"
               "  --keys N       keys stored                                 [100000000]\n"
               "  --batch B      keys per measured batch                     [1000000]\n"
               "  --rounds R     batches per figure (the median is shown)    [5]\n"
               "  --optimizer O  ftrl (16-byte entries) or sgd (12)          [ftrl]\n"
               "  --threads T    also the shard split over T threads (zps_pool;\n"
               "                 wall time, against one thread)              [1: off]\n");
}

/* this thread's CPU time, ns: unlike wall time it leaves out the time the
 * host gave the vCPU to others (steal), the larger part of this shared
 * machine's noise; a memory-bound loop's CPU time still includes its stalls */
static int64_t s_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double s_median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static long s_anon_huge_kb(void)
{
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* B distinct random ids below n, sorted (a push's keys: sorted, unique) */
static void s_draw(uint64_t *keys, size_t b, uint64_t n, uint64_t seed)
{
    size_t u = 0;
    for (uint64_t x = 0; u < b;) {
        while (u < b) /* top up, then sort and drop repeats */
            keys[u++] = zps_mix64(x++, seed) % n;
        qsort(keys, b, sizeof *keys, s_cmp_u64);
        u = 0;
        for (size_t i = 0; i < b; i++)
            if (!u || keys[i] != keys[u - 1])
                keys[u++] = keys[i];
    }
}

/* M random 16-byte reads/s over a region of `entries` entries, d in flight */
static double s_ceiling(const uint64_t *region, size_t entries, size_t b, unsigned d,
                        uint64_t seed, uint64_t *sink)
{
    uint64_t acc = 0;
    int64_t t0 = s_cpu_ns();
    for (size_t i = 0; i < b; i++) {
        if (d)
            __builtin_prefetch(region + 2 * (zps_mix64(i + d, seed) % entries));
        acc += region[2 * (zps_mix64(i, seed) % entries)];
    }
    *sink += acc;
    return (double)b / ((double)(s_cpu_ns() - t0) / 1e3);
}

/* the shard's pull and push in wall time, one thread against T, rounds
 * alternating */
static int s_threads(zps_shard_t *sh, unsigned threads, uint64_t *keys, float *vals, size_t b,
                     uint64_t n, uint64_t rounds)
{
    zps_pool_t *pool = zps_pool_new(threads);
    if (!pool) {
        fprintf(stderr, "zps-bench mem: cannot start %u threads\n", threads);
        return 1;
    }
    double fig[2][2][M_ROUNDS_MAX]; /* [pull, push][1 thread, T] */
    for (uint64_t r = 0; r < rounds; r++)
        for (int w = 0; w < 2; w++) {
            if (zps_shard_set_pool(sh, w ? pool : NULL) != 0) {
                fprintf(stderr, "zps-bench mem: out of memory\n");
                return 1;
            }
            s_draw(keys, b, n, 377 + 2 * r + (uint64_t)w);
            int64_t a = zps_now_ns();
            zps_shard_pull(sh, keys, b, vals);
            fig[0][w][r] = (double)b / ((double)(zps_now_ns() - a) / 1e3);
            for (size_t i = 0; i < b; i++)
                vals[i] = 0.01f;
            zps_shard_push_t pr;
            a = zps_now_ns();
            if (zps_shard_push_begin(sh, keys, b, vals, 1, 0, &pr) != 0 ||
                zps_shard_push_commit(sh)) {
                fprintf(stderr, "zps-bench mem: push failed\n");
                return 1;
            }
            fig[1][w][r] = (double)b / ((double)(zps_now_ns() - a) / 1e3);
        }
    (void)zps_shard_set_pool(sh, NULL);
    zps_pool_destroy(&pool);
    printf("shard, wall time, 1 thread against %u (rounds alternating):\n", threads);
    for (int k = 0; k < 2; k++) {
        double one = s_median(fig[k][0], (int)rounds), many = s_median(fig[k][1], (int)rounds);
        printf("  shard %s:  %7.1f M keys/s, %u threads %7.1f (x%.2f)\n", k ? "push" : "pull",
               one, threads, many, many / one);
    }
    return 0;
}

int bench_mem_main(int argc, char **argv)
{
    uint64_t n = 100000000, b = 1000000, rounds = 5, threads = 1;
    const char *opt = "ftrl";
    static const struct option lo[] = {{"keys", 1, 0, 'k'}, {"batch", 1, 0, 'b'},
                                       {"rounds", 1, 0, 'r'}, {"optimizer", 1, 0, 'o'},
                                       {"threads", 1, 0, 't'}, {"help", 0, 0, 'h'},
                                       {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'k': bad = zps_parse_u64(optarg, &n) || n < 1000; break;
        case 'b': bad = zps_parse_u64(optarg, &b) || b < 1; break;
        case 'r': bad = zps_parse_u64(optarg, &rounds) || rounds < 1 || rounds > M_ROUNDS_MAX; break;
        case 'o':
            opt = optarg;
            bad = strcmp(opt, "ftrl") && strcmp(opt, "sgd");
            break;
        case 't': bad = zps_parse_u64(optarg, &threads) || threads < 1 || threads > ZPS_POOL_MAX; break;
        case 'h': bench_mem_usage(stdout); return 0;
        default: bench_mem_usage(stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "zps-bench mem: invalid value '%s' for --%s\n", optarg,
                    lo[c == 'k' ? 0 : c == 'b' ? 1 : c == 'r' ? 2 : c == 'o' ? 3 : 4].name);
            return 2;
        }
    }
    if (b > n) {
        fprintf(stderr, "zps-bench mem: --batch %llu is more than --keys %llu\n",
                (unsigned long long)b, (unsigned long long)n);
        return 2;
    }
    zps_optim_conf_t o;
    zps_optim_defaults(&o, strcmp(opt, "sgd") ? ZPS_OPT_FTRL : ZPS_OPT_SGD);
    const size_t entry = 8 + 4 * (size_t)zps_optim_row_floats(&o);
    uint64_t *keys = malloc(b * sizeof *keys);
    float *vals = malloc(b * sizeof *vals);
    float **rows = malloc(M_CHUNK * sizeof *rows);
    if (!keys || !vals || !rows) {
        fprintf(stderr, "zps-bench mem: out of memory\n");
        return 1;
    }
    uint64_t sink = 0;
    double fig[M_ROUNDS_MAX];
    printf("zps-bench mem: %llu keys, batches of %llu, median of %llu rounds, %s (%zu-byte "
           "entries)\n", (unsigned long long)n, (unsigned long long)b,
           (unsigned long long)rounds, opt, entry);

    /* ---- ceiling: a region the size of the table at a load of 0.82 ---- */
    size_t entries = (size_t)((double)n / 0.82), bytes = entries * 16;
    uint64_t *region = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) {
        fprintf(stderr, "zps-bench mem: cannot map %zu bytes\n", bytes);
        return 1;
    }
    madvise(region, bytes, MADV_HUGEPAGE);
    long huge0 = s_anon_huge_kb();
    for (size_t i = 0; i < entries; i++)
        region[2 * i] = i;
    printf("ceiling: random 16-byte reads over %.0f MiB (huge pages: %.0f MiB of it)\n",
           (double)bytes / 1048576.0, (double)(s_anon_huge_kb() - huge0) / 1024.0);
    static const unsigned dist[] = {0, 8, 16, 32, 64};
    for (size_t k = 0; k < sizeof dist / sizeof dist[0]; k++) {
        for (uint64_t r = 0; r < rounds; r++)
            fig[r] = s_ceiling(region, entries, b, dist[k], 1000 + r, &sink);
        printf("  %2u in flight: %7.1f M reads/s\n", dist[k], s_median(fig, (int)rounds));
    }
    munmap(region, bytes);

    /* ---- the table and the shard ---- */
    zps_shard_t *sh = zps_shard_new(&o, 0);
    if (!sh) {
        fprintf(stderr, "zps-bench mem: out of memory\n");
        return 1;
    }
    zps_table_t *t = zps_shard_table(sh);
    long huge1 = s_anon_huge_kb();
    int64_t t0 = zps_now_ns();
    for (uint64_t i = 0; i < n; i += M_CHUNK) {
        uint64_t ck[M_CHUNK];
        size_t c2 = n - i < M_CHUNK ? (size_t)(n - i) : M_CHUNK;
        for (size_t j = 0; j < c2; j++)
            ck[j] = i + j;
        if (zps_table_upsert_batch(t, ck, c2, rows, NULL) != 0) {
            fprintf(stderr, "zps-bench mem: out of memory at %llu keys\n", (unsigned long long)i);
            return 1;
        }
        for (size_t j = 0; j < c2; j++)
            memset(rows[j], 0, 4 * (size_t)zps_optim_row_floats(&o));
    }
    double fill_s = (double)(zps_now_ns() - t0) / 1e9;
    printf("table: %llu keys filled in %.1f s, %.1f bytes/key, huge pages %.0f MiB\n",
           (unsigned long long)n, fill_s, (double)zps_table_bytes(t) / (double)n,
           (double)(s_anon_huge_kb() - huge1) / 1024.0);
    for (uint64_t r = 0; r < rounds; r++) {
        s_draw(keys, b, n, 77 + r);
        int64_t a = s_cpu_ns();
        for (size_t i = 0; i < b; i += M_CHUNK) {
            size_t c2 = b - i < M_CHUNK ? b - i : M_CHUNK;
            zps_table_find_batch(t, keys + i, c2, rows);
            for (size_t j = 0; j < c2; j++)
                sink += rows[j] != NULL;
        }
        fig[r] = (double)b / ((double)(s_cpu_ns() - a) / 1e3);
    }
    printf("  find_batch:  %7.1f M keys/s\n", s_median(fig, (int)rounds));
    for (uint64_t r = 0; r < rounds; r++) {
        s_draw(keys, b, n, 177 + r);
        int64_t a = s_cpu_ns();
        zps_shard_pull(sh, keys, b, vals);
        fig[r] = (double)b / ((double)(s_cpu_ns() - a) / 1e3);
    }
    printf("  shard pull:  %7.1f M keys/s\n", s_median(fig, (int)rounds));
    for (size_t i = 0; i < b; i++)
        vals[i] = 0.01f;
    for (uint64_t r = 0; r < rounds; r++) {
        s_draw(keys, b, n, 277 + r);
        zps_shard_push_t pr;
        int64_t a = s_cpu_ns();
        if (zps_shard_push_begin(sh, keys, b, vals, 1, 0, &pr) != 0 || zps_shard_push_commit(sh)) {
            fprintf(stderr, "zps-bench mem: push failed\n");
            return 1;
        }
        fig[r] = (double)b / ((double)(s_cpu_ns() - a) / 1e3);
    }
    printf("  shard push:  %7.1f M keys/s\n", s_median(fig, (int)rounds));
    if (threads > 1 && s_threads(sh, (unsigned)threads, keys, vals, b, n, rounds) != 0)
        return 1;
    printf("(checksum %llu)\n", (unsigned long long)(sink & 0xff));
    zps_shard_destroy(&sh);
    free(keys);
    free(vals);
    free(rows);
    return 0;
}
