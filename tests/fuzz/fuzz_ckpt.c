/* fuzz_ckpt: restoring a server checkpoint from a damaged file
 * (ps/ps_ckpt.c: ps_ckpt_restore, its header, record, checksum and size
 * checks, and the fallback to an older checkpoint).
 *
 * Input: a mode byte, then the bytes of the newest checkpoint file of shard 0
 * of 1 (a table of dim 2 with 4 floats per row).  Mode bits:
 *   0x01  recompute the trailing checksum (as the writer does: zlib crc32
 *         of every byte before the trailer), so that damage gets past it;
 *   0x02  force the header's layout fields (magic, version, header size,
 *         shard, dim, row floats, optimizer, counter) to this server's;
 *   0x04  set the header's key count to what the file's size implies;
 *   0x08  also put a valid older checkpoint (3 keys) next to it.
 * (Format 4, a replicated server's, carries an opaque range-table block:
 * seed valid-ranges-5-keys.)
 * The header fix-ups use a copy of the header layout, checked at start-up
 * against the size of a checkpoint that ps_ckpt_write writes for an empty
 * table (a different size turns them off, with a warning).
 *
 * Checks: the result is 0, ZPS_EPROTO, ZPS_EMISMATCH or ZPS_EIO (1 is
 * impossible: a file is there); with the valid older checkpoint present a
 * failure is impossible too: an unusable newest file falls back to it, and
 * the table then holds exactly its 3 keys and rows; whatever is loaded has
 * the key count and client records of one of the two files; a checkpoint
 * written back from what was restored restores to the same table.
 *
 * FUZZ_CKPT_SEEDS=dir: write seed inputs to dir and exit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz_util.h"
#include "ps_ckpt.h"
#include "zps_table.h"
#include "zps_err.h"
#include "zps_log.h"
#include "zps_modelfile.h"

#define DIM 2
#define ROWF 4

/* Mirror of ck_header_t in ps/ps_ckpt.c (checked at start-up). */
typedef struct {
    char magic[8];
    uint32_t version, header_bytes;
    uint32_t rank, nservers, dim, row_floats;
    uint64_t job_id;
    uint64_t counter, wall_ms;
    uint64_t nclients, client_bytes;
    uint64_t nkeys;
    char desc[256];
} hdr_t;

static const char *g_dir;
static char g_newest[PATH_MAX], g_older[PATH_MAX];
static uint8_t *g_older_bytes;
static size_t g_older_len;
static int g_hdr_ok;
static zps_log_t *g_log;
static FILE *g_null;

static void info_init(ps_ckpt_info_t *in)
{
    memset(in, 0, sizeof *in);
    in->rank = 0;
    in->nservers = 1;
    in->dim = DIM;
    in->row_floats = ROWF;
    snprintf(in->desc, sizeof in->desc, "opt=adagrad,dim=2,lr=0.1");
    in->job_id = 0x1234;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    FUZZ_CHECK(f, "open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    FUZZ_CHECK(b && fread(b, 1, (size_t)n, f) == (size_t)n, "read %s", path);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Writes a checkpoint of nkeys keys (and 2 client records) as counter c in
 * dir; returns its bytes. */
static uint8_t *make_ckpt(const char *dir, uint64_t c, size_t nkeys, int ranges, size_t *len)
{
    ps_ckpt_info_t in;
    info_init(&in);
    in.counter = c;
    static const unsigned char rtab[40] = "a replicated server's range table bytes";
    if (ranges) { /* format 4: the block is opaque to ps_ckpt */
        in.ranges_in = rtab;
        in.ranges_in_len = sizeof rtab;
    }
    zps_table_t *t = zps_table_new(ROWF, 16);
    FUZZ_CHECK(t, "table");
    for (size_t k = 0; k < nkeys; k++) {
        float *row = zps_table_upsert(t, 1000 + 7 * k, NULL);
        FUZZ_CHECK(row, "upsert");
        for (int j = 0; j < ROWF; j++)
            row[j] = (float)(k * 10 + (size_t)j);
    }
    ps_ckpt_client_t cl[2];
    memset(cl, 0, sizeof cl);
    cl[0].rank = 0;
    cl[0].nonce = 0xabc;
    cl[0].last_seq = 5;
    cl[0].applied = 5;
    cl[1].rank = 1;
    cl[1].has_progress = 1;
    cl[1].progress_epoch = 2;
    cl[1].progress_rows = 77;
    char err[512];
    FUZZ_CHECK(ps_ckpt_write(dir, &in, t, cl, nkeys ? 2 : 0, 100, err, sizeof err) == 0,
               "ps_ckpt_write: %s", err);
    zps_table_destroy(&t);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/ckpt-0-of-1-%08llu.zck", dir, (unsigned long long)c);
    uint8_t *b = slurp(path, len);
    unlink(path);
    return b;
}

static uint64_t checksum(const uint8_t *p, size_t n)
{
    return (uint64_t)crc32(crc32(0, NULL, 0), p, (uInt)n);
}

static void setup(void)
{
    if (g_dir)
        return;
    g_dir = fuzz_tmpdir();
    g_null = fopen("/dev/null", "w");
    g_log = zps_log_new("fuzz", 0, g_null);
    size_t elen;
    uint8_t *empty = make_ckpt(g_dir, 9, 0, 0, &elen);
    g_hdr_ok = elen == sizeof(hdr_t) + 8;
    if (!g_hdr_ok)
        fprintf(stderr, "fuzz_ckpt: checkpoint header is %zu bytes, mirror %zu: header "
                        "fix-ups off (update hdr_t)\n", elen - 8, sizeof(hdr_t));
    free(empty);
    g_older_bytes = make_ckpt(g_dir, 1, 3, 0, &g_older_len);
    snprintf(g_older, sizeof g_older, "%s/ckpt-0-of-1-00000001.zck", g_dir);
    snprintf(g_newest, sizeof g_newest, "%s/ckpt-0-of-1-00000002.zck", g_dir);
}

static void write_seeds(const char *out)
{
    setup();
    struct {
        const char *name;
        uint8_t mode;
        size_t nkeys;
        int cut, ranges;
    } s[] = {{"valid-3-keys", 0, 3, 0, 0}, {"valid-empty", 0, 0, 0, 0}, {"valid-40-keys", 0, 40, 0, 0},
             {"truncated", 0x08, 3, 9, 0}, {"fixed-sum-40-keys", 0x0f, 40, 0, 0},
             {"valid-ranges-5-keys", 0, 5, 0, 1}};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        size_t len;
        uint8_t *b = make_ckpt(g_dir, 2, s[i].nkeys, s[i].ranges, &len);
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", out, s[i].name);
        FILE *f = fopen(path, "wb");
        FUZZ_CHECK(f, "%s", path);
        fputc(s[i].mode, f);
        fwrite(b, 1, len - (size_t)s[i].cut, f);
        fclose(f);
        free(b);
    }
    exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (getenv("FUZZ_CKPT_SEEDS"))
        write_seeds(getenv("FUZZ_CKPT_SEEDS"));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    fuzz_in_t in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    size_t len = in.n;
    uint8_t *b = malloc(len + sizeof(hdr_t) + 8);
    FUZZ_CHECK(b, "out of memory");
    memcpy(b, in.p, len);
    if ((mode & 0x06) && g_hdr_ok && len >= sizeof(hdr_t) + 8) {
        hdr_t h;
        memcpy(&h, b, sizeof h);
        if (mode & 0x02) {
            ps_ckpt_info_t info;
            info_init(&info);
            memcpy(h.magic, "ZPSCKPT2", 8);
            h.version = PS_CKPT_VERSION;
            h.header_bytes = sizeof h;
            h.counter = 2;
            h.rank = 0;
            h.nservers = 1;
            h.dim = DIM;
            h.row_floats = ROWF;
            memset(h.desc, 0, sizeof h.desc);
            snprintf(h.desc, sizeof h.desc, "%s", info.desc);
        }
        if ((mode & 0x04) && h.nclients <= 1000000) {
            uint64_t rest = len - 8 - sizeof h, cb = h.client_bytes;
            uint64_t rowb = 8 + (uint64_t)h.row_floats * 4;
            if (rest >= cb)
                h.nkeys = (rest - cb) / rowb;
        }
        memcpy(b, &h, sizeof h);
    }
    if ((mode & 0x01) && len >= 8) {
        uint64_t sum = checksum(b, len - 8);
        memcpy(b + len - 8, &sum, 8);
    }
    fuzz_write_file(g_newest, b, len);
    int older = (mode & 0x08) != 0;
    if (older)
        fuzz_write_file(g_older, g_older_bytes, g_older_len);
    else
        unlink(g_older);

    ps_ckpt_info_t info;
    info_init(&info);
    zps_table_t *t = NULL;
    ps_ckpt_client_t *cl = NULL;
    size_t ncl = 0;
    char err[1024] = "";
    int rc = ps_ckpt_restore(g_dir, &info, 16, &t, &cl, &ncl, g_log, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == ZPS_EPROTO || rc == ZPS_EMISMATCH || rc == ZPS_EIO ||
                   rc == ZPS_EVERSION,
               "restore returned %d: %s", rc, err);
    if (older)
        FUZZ_CHECK(rc == 0, "a valid older checkpoint is there, restore failed (%d): %s", rc, err);
    FUZZ_CHECK((rc == 0) == (t != NULL), "restore returned %d with%s a table", rc, t ? "" : "out");
    if (rc == 0) {
        /* the older one (counter 1): exactly its 3 keys and rows */
        int is_older = info.counter == 1 && zps_table_size(t) == 3 && ncl == 2;
        for (size_t k = 0; is_older && k < 3; k++) {
            float *row = zps_table_find(t, 1000 + 7 * k);
            for (int j = 0; row && j < ROWF; j++)
                is_older = is_older && row[j] == (float)(k * 10 + (size_t)j);
            is_older = is_older && row;
        }
        if (!is_older) {
            /* the newest one: its header's counts */
            hdr_t h;
            FUZZ_CHECK(len >= sizeof h + 8, "a %zu-byte file restored", len);
            memcpy(&h, b, sizeof h);
            FUZZ_CHECK(info.counter == h.counter, "counter %llu, header %llu",
                       (unsigned long long)info.counter, (unsigned long long)h.counter);
            FUZZ_CHECK(ncl == h.nclients, "%zu client records, header %llu", ncl,
                       (unsigned long long)h.nclients);
            FUZZ_CHECK(zps_table_size(t) == h.nkeys, "%zu keys, header %llu", zps_table_size(t),
                       (unsigned long long)h.nkeys);
            /* written back and restored again: the same table */
            char d2[PATH_MAX];
            snprintf(d2, sizeof d2, "%s/again", g_dir);
            mkdir(d2, 0700);
            fuzz_empty_dir(d2);
            ps_ckpt_info_t i2;
            info_init(&i2);
            i2.counter = 3;
            FUZZ_CHECK(ps_ckpt_write(d2, &i2, t, cl, ncl, 1, err, sizeof err) == 0, "rewrite: %s",
                       err);
            zps_table_t *t2 = NULL;
            ps_ckpt_client_t *cl2 = NULL;
            size_t ncl2 = 0;
            FUZZ_CHECK(ps_ckpt_restore(d2, &i2, 16, &t2, &cl2, &ncl2, g_log, err, sizeof err) == 0,
                       "restore of a rewritten checkpoint: %s", err);
            FUZZ_CHECK(zps_table_size(t2) == zps_table_size(t) && ncl2 == ncl,
                       "rewritten checkpoint: %zu keys / %zu, %zu clients / %zu",
                       zps_table_size(t2), zps_table_size(t), ncl2, ncl);
            zps_table_cur_t cur = ZPS_TABLE_CUR_INIT;
            uint64_t key;
            float *row;
            while (zps_table_next(t, &cur, &key, &row)) {
                float *r2 = zps_table_find(t2, key);
                FUZZ_CHECK(r2 && memcmp(r2, row, ROWF * sizeof(float)) == 0,
                           "key %llu differs after rewrite", (unsigned long long)key);
            }
            FUZZ_CHECK(ncl == 0 || memcmp(cl, cl2, ncl * sizeof *cl) == 0, "client records differ");
            free(cl2);
            zps_table_destroy(&t2);
            fuzz_empty_dir(d2);
        }
    }
    FUZZ_CHECK(rc == 0 || (!info.admit_out && !info.ranges_out), "blocks handed out on failure");
    free(info.admit_out);
    free(info.ranges_out);
    free(cl);
    zps_table_destroy(&t);
    free(b);
    return 0;
}
