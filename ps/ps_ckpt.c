/* ps_ckpt: see ps_ckpt.h for the file layout and guarantees. */
#include "ps_ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "zps_err.h"
#include "zps_modelfile.h"

#define CK_MAGIC "ZPSCKPT1"

typedef struct {
    char magic[8];
    uint32_t version, rank, nservers, dim, row_floats, pad;
    uint64_t counter, wall_ms, nclients, nkeys;
    char desc[256];
} ck_header_t;

/* Buffered writer that checksums what it writes. */
typedef struct {
    FILE *f;
    uint64_t csum;
    int err;
    uint8_t buf[1 << 16];
    size_t len;
} ck_out_t;

static void s_flush(ck_out_t *o)
{
    if (o->len && !o->err) {
        o->csum = zps_checksum64(o->csum, o->buf, o->len);
        if (fwrite(o->buf, 1, o->len, o->f) != o->len)
            o->err = errno ? errno : EIO;
    }
    o->len = 0;
}

/* Fill 64 KiB blocks exactly, so the reader can checksum the same blocks. */
static void s_put(ck_out_t *o, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        size_t take = sizeof o->buf - o->len < n ? sizeof o->buf - o->len : n;
        memcpy(o->buf + o->len, b, take);
        o->len += take;
        b += take;
        n -= take;
        if (o->len == sizeof o->buf)
            s_flush(o);
    }
}

static void s_name(char *out, size_t len, const char *dir, uint32_t rank, uint32_t ns, uint64_t c)
{
    snprintf(out, len, "%s/ckpt-%u-of-%u-%08llu.zck", dir, rank, ns, (unsigned long long)c);
}

/* Checkpoint counters of this shard present in dir, newest first. */
static size_t s_list(const char *dir, uint32_t rank, uint32_t ns, uint64_t *out, size_t max)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "ckpt-%u-of-%u-", rank, ns);
    size_t n = 0, pl = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, prefix, pl) || l < pl + 4 || strcmp(e->d_name + l - 4, ".zck"))
            continue;
        char *end;
        unsigned long long c = strtoull(e->d_name + pl, &end, 10);
        if (end == e->d_name + l - 4)
            out[n++] = c;
    }
    closedir(d);
    /* newest first */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && out[j] > out[j - 1]; j--) {
            uint64_t t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

int ps_ckpt_write(const char *dir, const ps_ckpt_info_t *info, const ps_table_t *t,
                  const ps_ckpt_client_t *clients, size_t nclients, int keep, char *err,
                  size_t errlen)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create checkpoint directory %s: %s", dir, strerror(errno));
        return ZPS_EIO;
    }
    char path[1100], tmp[1200];
    s_name(path, sizeof path, dir, info->rank, info->nservers, info->counter);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    ck_out_t *o = calloc(1, sizeof *o);
    if (!o) {
        snprintf(err, errlen, "out of memory");
        return ZPS_ENOMEM;
    }
    o->f = fopen(tmp, "wb");
    if (!o->f) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        free(o);
        return ZPS_EIO;
    }
    ck_header_t h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CK_MAGIC, 8);
    h.version = PS_CKPT_VERSION;
    h.rank = info->rank;
    h.nservers = info->nservers;
    h.dim = info->dim;
    h.row_floats = info->row_floats;
    h.counter = info->counter;
    h.wall_ms = (uint64_t)time(NULL) * 1000;
    h.nclients = nclients;
    h.nkeys = ps_table_size(t);
    snprintf(h.desc, sizeof h.desc, "%s", info->desc);
    s_put(o, &h, sizeof h);
    for (size_t i = 0; i < nclients; i++)
        s_put(o, &clients[i], sizeof clients[i]);
    size_t cursor = 0;
    uint64_t key;
    float *row;
    while (!o->err && ps_table_next(t, &cursor, &key, &row)) {
        s_put(o, &key, sizeof key);
        s_put(o, row, info->row_floats * sizeof(float));
    }
    s_flush(o);
    uint64_t csum = o->csum;
    if (!o->err && fwrite(&csum, 8, 1, o->f) != 1)
        o->err = errno ? errno : EIO;
    if (!o->err && fflush(o->f) != 0)
        o->err = errno ? errno : EIO;
    if (!o->err && fsync(fileno(o->f)) != 0)
        o->err = errno;
    if (fclose(o->f) != 0 && !o->err)
        o->err = errno ? errno : EIO;
    int e = o->err;
    free(o);
    if (e) {
        snprintf(err, errlen, "writing %s failed: %s (previous checkpoints kept)", tmp, strerror(e));
        unlink(tmp);
        return ZPS_EIO;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return ZPS_EIO;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    /* keep the newest `keep` */
    uint64_t list[256];
    size_t n = s_list(dir, info->rank, info->nservers, list, 256);
    for (size_t i = (size_t)(keep > 0 ? keep : 1); i < n; i++) {
        char old[1100];
        s_name(old, sizeof old, dir, info->rank, info->nservers, list[i]);
        unlink(old);
    }
    return 0;
}

/* Load one file; 0 or an error with the reason. */
static int s_load(const char *path, ps_ckpt_info_t *info, ps_table_t *t,
                  ps_ckpt_client_t **clients, size_t *nclients, char *why, size_t wlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, wlen, "cannot open: %s", strerror(errno));
        return ZPS_EIO;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    int rc = ZPS_EPROTO;
    ck_header_t h;
    ps_ckpt_client_t *cl = NULL;
    if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, CK_MAGIC, 8) != 0) {
        snprintf(why, wlen, "not a checkpoint (bad header)");
        goto out;
    }
    h.desc[sizeof h.desc - 1] = 0;
    if (h.version != PS_CKPT_VERSION || h.rank != info->rank || h.nservers != info->nservers ||
        h.dim != info->dim || h.row_floats != info->row_floats || strcmp(h.desc, info->desc)) {
        snprintf(why, wlen,
                 "belongs to another layout (version %u, shard %u of %u, dim %u, '%s'); this "
                 "server is shard %u of %u with '%s'",
                 h.version, h.rank, h.nservers, h.dim, h.desc, info->rank, info->nservers,
                 info->desc);
        rc = ZPS_EMISMATCH;
        goto out;
    }
    if (h.nclients > 1000000) {
        snprintf(why, wlen, "implausible header");
        goto out;
    }
    cl = calloc(h.nclients ? h.nclients : 1, sizeof *cl);
    if (!cl) {
        rc = ZPS_ENOMEM;
        goto out;
    }
    for (uint64_t i = 0; i < h.nclients; i++) {
        if (fread(&cl[i], sizeof *cl, 1, f) != 1) {
            snprintf(why, wlen, "truncated in the worker records");
            goto out;
        }
    }
    rc = 0;
out:
    if (rc) {
        free(cl);
        fclose(f);
        return rc;
    }
    /* second pass: verify the checksum over the exact byte stream (the
     * writer checksums 64 KiB blocks; so does this) */
    rewind(f);
    {
        uint8_t *buf = malloc(1 << 16);
        if (!buf) {
            free(cl);
            fclose(f);
            return ZPS_ENOMEM;
        }
        struct stat st;
        fstat(fileno(f), &st);
        if (st.st_size < (off_t)(sizeof h + 8)) {
            snprintf(why, wlen, "truncated");
            free(buf);
            free(cl);
            fclose(f);
            return ZPS_EPROTO;
        }
        uint64_t body = (uint64_t)st.st_size - 8, done = 0, sum = 0;
        while (done < body) {
            size_t chunk = body - done < (1 << 16) ? (size_t)(body - done) : (1 << 16);
            if (fread(buf, 1, chunk, f) != chunk)
                break;
            sum = zps_checksum64(sum, buf, chunk);
            done += chunk;
        }
        uint64_t want = 0;
        free(buf);
        uint64_t rowb = 8 + (uint64_t)h.row_floats * 4;
        if (done != body || fread(&want, 8, 1, f) != 1 || want != sum ||
            body != sizeof h + h.nclients * sizeof(ps_ckpt_client_t) + h.nkeys * rowb) {
            snprintf(why, wlen, "torn or corrupt (checksum or size mismatch)");
            free(cl);
            fclose(f);
            return ZPS_EPROTO;
        }
    }
    /* third: load rows (the file is known to be intact) */
    if (fseek(f, (long)(sizeof h + h.nclients * sizeof(ps_ckpt_client_t)), SEEK_SET) != 0) {
        free(cl);
        fclose(f);
        return ZPS_EIO;
    }
    {
        /* blocks of records: one fread and one batched upsert per block */
        enum { BLK = 4096 };
        size_t rec = 8 + (size_t)h.row_floats * 4;
        uint8_t *buf = malloc(BLK * rec);
        uint64_t *keys = malloc(BLK * sizeof *keys);
        float **rows = malloc(BLK * sizeof *rows);
        int bad = !buf || !keys || !rows;
        for (uint64_t k = 0; !bad && k < h.nkeys; k += BLK) {
            size_t m = h.nkeys - k < BLK ? (size_t)(h.nkeys - k) : BLK;
            if (fread(buf, rec, m, f) != m) {
                snprintf(why, wlen, "read error");
                bad = ZPS_EIO;
                break;
            }
            for (size_t j = 0; j < m; j++)
                memcpy(&keys[j], buf + j * rec, 8);
            if (ps_table_upsert_batch(t, keys, m, rows, NULL) != 0) {
                bad = ZPS_ENOMEM;
                break;
            }
            for (size_t j = 0; j < m; j++)
                memcpy(rows[j], buf + j * rec + 8, rec - 8);
        }
        free(buf);
        free(keys);
        free(rows);
        if (bad) {
            free(cl);
            fclose(f);
            return bad > 0 ? ZPS_ENOMEM : bad;
        }
    }
    fclose(f);
    info->counter = h.counter;
    *clients = cl;
    *nclients = h.nclients;
    return 0;
}

int ps_ckpt_restore(const char *dir, ps_ckpt_info_t *info, ps_table_t *t,
                    ps_ckpt_client_t **clients, size_t *nclients, zps_log_t *log, char *err,
                    size_t errlen)
{
    uint64_t list[256];
    size_t n = s_list(dir, info->rank, info->nservers, list, 256);
    if (n == 0)
        return 1;
    if (info->row_floats > 4096) {
        snprintf(err, errlen, "rows of %u floats are over the restore limit", info->row_floats);
        return ZPS_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        char path[1100], why[1200];
        s_name(path, sizeof path, dir, info->rank, info->nservers, list[i]);
        if (ps_table_size(t) != 0) {
            snprintf(err, errlen, "a partly loaded checkpoint cannot be undone");
            return ZPS_EINVAL;
        }
        int rc = s_load(path, info, t, clients, nclients, why, sizeof why);
        if (rc == 0)
            return 0;
        zps_warn(log, "checkpoint %s is unusable: %s%s", path, why,
                 i + 1 < n ? "; trying the previous one" : "");
    }
    snprintf(err, errlen, "no usable checkpoint in %s (%zu found, all unusable)", dir, n);
    return ZPS_EPROTO;
}
