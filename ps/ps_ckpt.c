/* ps_ckpt: see ps_ckpt.h for the file layout and guarantees.  The trailer is
 * zps_crc32 (zps_modelfile.h, zlib's CRC-32), streamed over the bytes in file
 * order: the writer feeds it each piece it writes (header, one client record,
 * one key, one row), the reader each block it reads (about 1 MiB); the value
 * does not depend on either split. */
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
#include "zps_place.h"
#include "zps_file.h"
#include "zps_hash.h"
#include "zps_modelfile.h"

#define CK_MAGIC "ZPSCKPT2"
#define CK_MAGIC_V1 "ZPSCKPT1"
#define CK_CLIENT_LEN (44u + 16u + 8u * PS_DEDUP_WORDS) /* body of a client record written by this version */
#define CK_CLIENT_MAX 65536u       /* longest record body a reader accepts */
#define CK_MAX_RANKS 65536u        /* the server keeps records for ranks < 65536 */

typedef struct {
    char magic[8];
    uint32_t version, header_bytes;
    uint32_t rank, nservers, dim, row_floats;
    uint64_t job_id;
    uint64_t counter, wall_ms;
    uint64_t nclients, client_bytes;
    uint64_t nkeys;
    char desc[256];
} ck_header_t;

_Static_assert(sizeof(ck_header_t) == 336, "checkpoint header is 336 bytes");

/* ---- client records: the one place that knows their fields ------------------------ */
/* EXTENSION POINT: to add fields, append them after the dedup window here
 * and in s_client_get, raise CK_CLIENT_LEN for the
 * writer, and in s_client_get read them only when len is long enough (a
 * shorter record is one written before the fields existed). */

static size_t s_client_put(uint8_t *p, const ps_ckpt_client_t *c)
{
    uint8_t *b = p + 4;
    memcpy(b, &c->rank, 4), b += 4;
    memcpy(b, &c->has_progress, 4), b += 4;
    memcpy(b, &c->nonce, 8), b += 8;
    memcpy(b, &c->last_seq, 8), b += 8;
    memcpy(b, &c->applied, 8), b += 8;
    memcpy(b, &c->progress_rows, 8), b += 8;
    memcpy(b, &c->progress_epoch, 4), b += 4;
    /* the exactly-once window (ps_dedup.h) */
    memcpy(b, &c->win.lwm, 8), b += 8;
    memcpy(b, &c->win.hwm, 8), b += 8;
    memcpy(b, c->win.bits, sizeof c->win.bits), b += sizeof c->win.bits;
    uint32_t len = (uint32_t)(b - p - 4);
    memcpy(p, &len, 4);
    return 4 + len;
}

/* Decode one record body of len bytes; 0 or -1 (too short, bad rank). */
static int s_client_get(const uint8_t *b, uint32_t len, ps_ckpt_client_t *c)
{
    if (len < 44)
        return -1;
    memset(c, 0, sizeof *c);
    memcpy(&c->rank, b, 4), b += 4;
    memcpy(&c->has_progress, b, 4), b += 4;
    memcpy(&c->nonce, b, 8), b += 8;
    memcpy(&c->last_seq, b, 8), b += 8;
    memcpy(&c->applied, b, 8), b += 8;
    memcpy(&c->progress_rows, b, 8), b += 8;
    memcpy(&c->progress_epoch, b, 4), b += 4;
    if (len >= CK_CLIENT_LEN) {
        memcpy(&c->win.lwm, b, 8), b += 8;
        memcpy(&c->win.hwm, b, 8), b += 8;
        memcpy(c->win.bits, b, sizeof c->win.bits);
        if (c->win.lwm > c->win.hwm)
            return -1;
    } else {
        /* a record without a window: everything up to last_seq was applied */
        c->win.lwm = c->win.hwm = c->last_seq;
    }
    return c->rank < CK_MAX_RANKS && c->has_progress <= 1 ? 0 : -1;
}

/* ---- names, listing, headers ----------------------------------------------------- */

typedef struct {
    uint64_t counter;
    uint32_t nservers;
} ck_entry_t;

static void s_name(char *out, size_t len, uint32_t rank, uint32_t ns, uint64_t c)
{
    snprintf(out, len, "ckpt-%u-of-%u-%08llu.zck", rank, ns, (unsigned long long)c);
}

static void s_path(char *out, size_t len, const char *dir, uint32_t rank, uint32_t ns, uint64_t c)
{
    char name[96];
    s_name(name, sizeof name, rank, ns, c);
    snprintf(out, len, "%s/%s", dir, name);
}

/* Parses a decimal number at *p; 0 if none or overflow. */
static int s_num(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (*s < '0' || *s > '9')
        return 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *p = s;
    *out = v;
    return 1;
}

/* Checkpoints of rank (of ns servers; 0: any) in dir, newest (highest
 * counter) first, malloc'd in *out.  Returns the count (0 also when dir
 * cannot be read). */
static size_t s_scan(const char *dir, uint32_t rank, uint32_t ns, ck_entry_t **out)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "ckpt-%u-of-", rank);
    size_t n = 0, cap = 0, pl = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *p = e->d_name;
        uint64_t s, c;
        if (strncmp(p, prefix, pl))
            continue;
        p += pl;
        if (!s_num(&p, &s) || *p++ != '-' || !s_num(&p, &c) || strcmp(p, ".zck") ||
            s > UINT32_MAX || (ns && s != ns))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            ck_entry_t *ne = realloc(*out, cap * sizeof *ne);
            if (!ne)
                break;
            *out = ne;
        }
        (*out)[n].counter = c;
        (*out)[n].nservers = (uint32_t)s;
        n++;
    }
    closedir(d);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && (*out)[j].counter > (*out)[j - 1].counter; j--) {
            ck_entry_t t = (*out)[j];
            (*out)[j] = (*out)[j - 1];
            (*out)[j - 1] = t;
        }
    return n;
}

/* Header of a file: 0, ZPS_EVERSION (format 1 or another version) or
 * ZPS_EPROTO/ZPS_EIO, with the reason in why. */
#define CK_HEADER_V3 (sizeof(ck_header_t) + 8)  /* + admission-block bytes */
#define CK_HEADER_V4 (sizeof(ck_header_t) + 16) /* + admission and range-table bytes */
#define CK_RANGES_MAX (1u << 20)                 /* an encoded table is under 110 KB */

static int s_check_header(const ck_header_t *h, size_t got, char *why, size_t wlen)
{
    if (got >= 8 && !memcmp(h->magic, CK_MAGIC_V1, 8)) {
        snprintf(why, wlen, "checkpoint format version 1 (written by an older zps); this zps "
                 "reads version %u only: restore it with the zps that wrote it, or start the "
                 "job afresh with another --checkpoint-dir", PS_CKPT_VERSION);
        return ZPS_EVERSION;
    }
    if (got < sizeof *h || memcmp(h->magic, CK_MAGIC, 8)) {
        snprintf(why, wlen, "not a zps checkpoint (bad magic or shorter than a header)");
        return ZPS_EPROTO;
    }
    if (!(h->version == PS_CKPT_VERSION && h->header_bytes == sizeof *h) &&
        !(h->version == PS_CKPT_VERSION_ADMIT && h->header_bytes == CK_HEADER_V3) &&
        !(h->version == PS_CKPT_VERSION_RANGES && h->header_bytes == CK_HEADER_V4)) {
        snprintf(why, wlen, "checkpoint format version %u (header %u bytes); this zps reads "
                 "versions %u to %u", h->version, h->header_bytes, PS_CKPT_VERSION,
                 PS_CKPT_VERSION_RANGES);
        return ZPS_EVERSION;
    }
    return 0;
}

static int s_read_header(const char *path, ck_header_t *h, char *why, size_t wlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, wlen, "cannot open: %s", strerror(errno));
        return ZPS_EIO;
    }
    memset(h, 0, sizeof *h);
    size_t got = fread(h, 1, sizeof *h, f);
    fclose(f);
    h->desc[sizeof h->desc - 1] = 0;
    return s_check_header(h, got, why, wlen);
}

uint64_t ps_ckpt_new_job_id(void)
{
    uint64_t id = 0;
    if (zps_random_bytes(&id, sizeof id) != 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        id = zps_mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)getpid(),
                       0x9e3779b97f4a7c15ULL);
    }
    return id ? id : 1;
}

int ps_ckpt_check_new_job(const char *dir, uint32_t rank, char *err, size_t errlen)
{
    ck_entry_t *e;
    size_t n = s_scan(dir, rank, 0, &e);
    if (n == 0) {
        free(e);
        return 0;
    }
    char path[1200], name[96], who[1400];
    s_path(path, sizeof path, dir, rank, e[0].nservers, e[0].counter);
    s_name(name, sizeof name, rank, e[0].nservers, e[0].counter);
    ck_header_t h;
    int rc = s_read_header(path, &h, who, sizeof who);
    if (rc == 0)
        snprintf(who, sizeof who, "job %016llx", (unsigned long long)h.job_id);
    else if (rc == ZPS_EVERSION && !memcmp(h.magic, CK_MAGIC_V1, 8))
        snprintf(who, sizeof who, "a job of an older zps (format version 1)");
    else
        snprintf(who, sizeof who, "an unknown job (header unreadable)");
    snprintf(err, errlen,
             "checkpoint directory %s already holds %zu checkpoint%s of shard %u of %s (newest: "
             "%s); this server was started without --restore, as a new job. Use --restore to "
             "continue that job, or another --checkpoint-dir for a new one",
             dir, n, n == 1 ? "" : "s", rank, who, name);
    free(e);
    return ZPS_EMISMATCH;
}

/* ---- write ----------------------------------------------------------------------- */

typedef struct {
    zps_file_t *f;
    uint32_t crc;
} ck_out_t;

static void s_put(ck_out_t *o, const void *p, size_t n)
{
    o->crc = zps_crc32(o->crc, p, n);
    zps_file_write(o->f, p, n);
}

/* Remove this job's checkpoints of this shard beyond the newest keep. */
static void s_prune(const char *dir, const ps_ckpt_info_t *info, int keep)
{
    ck_entry_t *e;
    size_t n = s_scan(dir, info->rank, info->nservers, &e);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        char path[1200], why[600];
        ck_header_t h;
        s_path(path, sizeof path, dir, info->rank, info->nservers, e[i].counter);
        if (s_read_header(path, &h, why, sizeof why) != 0 || h.job_id != info->job_id ||
            h.counter != e[i].counter || h.rank != info->rank || h.nservers != info->nservers)
            continue;   /* not provably ours: left alone */
        if (++kept > (size_t)(keep > 0 ? keep : 1))
            unlink(path);
    }
    free(e);
}

int ps_ckpt_write(const char *dir, const ps_ckpt_info_t *info, const zps_table_t *t,
                  const ps_ckpt_client_t *clients, size_t nclients, int keep, char *err,
                  size_t errlen)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create checkpoint directory %s: %s", dir, strerror(errno));
        return ZPS_EIO;
    }
    char name[96];
    s_name(name, sizeof name, info->rank, info->nservers, info->counter);
    ck_out_t o = {zps_file_atomic_open(dir, name, 0600, err, errlen), 0};
    if (!o.f)
        return ZPS_EIO;
    ck_header_t h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CK_MAGIC, 8);
    const uint64_t admit_len = info->admit_in ? info->admit_in_len : 0;
    const uint64_t ranges_len = info->ranges_in ? info->ranges_in_len : 0;
    h.version = ranges_len ? PS_CKPT_VERSION_RANGES
                : admit_len ? PS_CKPT_VERSION_ADMIT : PS_CKPT_VERSION;
    h.header_bytes = ranges_len ? (uint32_t)CK_HEADER_V4
                     : admit_len ? (uint32_t)CK_HEADER_V3 : (uint32_t)sizeof h;
    h.rank = info->rank;
    h.nservers = info->nservers;
    h.dim = info->dim;
    h.row_floats = info->row_floats;
    h.job_id = info->job_id;
    h.counter = info->counter;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    h.wall_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
    h.nclients = nclients;
    h.client_bytes = nclients * (4 + CK_CLIENT_LEN);
    h.nkeys = zps_table_size(t);
    snprintf(h.desc, sizeof h.desc, "%s", info->desc);
    s_put(&o, &h, sizeof h);
    if (admit_len || ranges_len)
        s_put(&o, &admit_len, 8);
    if (ranges_len)
        s_put(&o, &ranges_len, 8);
    for (size_t i = 0; i < nclients; i++) {
        uint8_t rec[4 + CK_CLIENT_LEN];
        size_t len = s_client_put(rec, &clients[i]);
        s_put(&o, rec, len);
    }
    if (admit_len)
        s_put(&o, info->admit_in, admit_len);
    if (ranges_len)
        s_put(&o, info->ranges_in, ranges_len);
    zps_table_cur_t cursor = ZPS_TABLE_CUR_INIT;
    uint64_t key;
    float *row;
    while (zps_table_next(t, &cursor, &key, &row)) {
        s_put(&o, &key, sizeof key);
        s_put(&o, row, info->row_floats * sizeof(float));
    }
    uint64_t trailer = o.crc;
    zps_file_write(o.f, &trailer, 8);
    char why[1400];
    if (zps_file_commit(&o.f, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s (previous checkpoints kept)", why);
        return ZPS_EIO;
    }
    s_prune(dir, info, keep);
    return 0;
}

/* ---- restore --------------------------------------------------------------------- */

static int s_fread(FILE *f, void *p, size_t n, uint32_t *crc)
{
    if (fread(p, 1, n, f) != n)
        return -1;
    *crc = zps_crc32(*crc, p, n);
    return 0;
}

static int s_finite_row(const uint8_t *p, uint32_t nf)
{
    for (uint32_t i = 0; i < nf; i++) {
        uint32_t bits;
        memcpy(&bits, p + 4 * (size_t)i, 4);
        if ((bits & 0x7f800000u) == 0x7f800000u)
            return 0;
    }
    return 1;
}

/* Load one file into a new table; 0 (then *out, *clients, *ncl, *hout set)
 * or an error with the reason in why.  Nothing is handed over on error. */
static int s_load(const char *path, uint64_t want_counter, const ps_ckpt_info_t *want,
                  size_t hint, zps_table_t **out, ck_header_t *hout, ps_ckpt_client_t **clients,
                  size_t *ncl, unsigned char **admit, size_t *admit_len, unsigned char **rtab,
                  size_t *rtab_len, char *why, size_t wlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, wlen, "cannot open: %s", strerror(errno));
        return ZPS_EIO;
    }
    int rc = ZPS_EPROTO;
    ps_ckpt_client_t *cl = NULL;
    uint8_t *buf = NULL, *adm = NULL, *rt = NULL;
    uint64_t admit_bytes = 0, ranges_bytes = 0;
    uint64_t *keys = NULL;
    float **rows = NULL;
    zps_table_t *t = NULL;
    ck_header_t h;
    uint32_t crc = 0;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, wlen, "not a regular file");
        goto out;
    }
    uint64_t size = (uint64_t)st.st_size;
    memset(&h, 0, sizeof h);
    size_t got = fread(&h, 1, sizeof h, f);
    crc = zps_crc32(crc, &h, got);   /* the bytes as read, before desc is terminated */
    h.desc[sizeof h.desc - 1] = 0;
    if ((rc = s_check_header(&h, got, why, wlen)) != 0)
        goto out;
    if ((h.version == PS_CKPT_VERSION_ADMIT || h.version == PS_CKPT_VERSION_RANGES) &&
        s_fread(f, &admit_bytes, 8, &crc) != 0) {
        rc = ZPS_EPROTO;
        snprintf(why, wlen, "truncated in the header");
        goto out;
    }
    if (h.version == PS_CKPT_VERSION_RANGES &&
        (s_fread(f, &ranges_bytes, 8, &crc) != 0 || ranges_bytes == 0 ||
         ranges_bytes > CK_RANGES_MAX)) {
        rc = ZPS_EPROTO;
        snprintf(why, wlen, "truncated in the header, or a range table of %llu bytes",
                 (unsigned long long)ranges_bytes);
        goto out;
    }
    rc = ZPS_EMISMATCH;
    if (h.rank != want->rank || h.nservers != want->nservers || h.dim != want->dim ||
        h.row_floats != want->row_floats || strcmp(h.desc, want->desc)) {
        snprintf(why, wlen,
                 "belongs to another layout (shard %u of %u, dim %u, '%s'); this server is "
                 "shard %u of %u with '%s'",
                 h.rank, h.nservers, h.dim, h.desc, want->rank, want->nservers, want->desc);
        goto out;
    }
    rc = ZPS_EPROTO;
    if (h.counter != want_counter) {
        snprintf(why, wlen, "header says checkpoint %llu, the file name %llu",
                 (unsigned long long)h.counter, (unsigned long long)want_counter);
        goto out;
    }
    /* every count against the size, by division: nothing can overflow */
    uint64_t rowb = 8 + (uint64_t)h.row_floats * 4;   /* row_floats <= 4096 (checked) */
    uint64_t hb = h.header_bytes; /* 336, 344 or 352 (checked) */
    uint64_t avail = size >= hb + 8 ? size - hb - 8 : 0;
    if (avail >= ranges_bytes) /* ranges_bytes <= 1 MiB (checked) */
        avail -= ranges_bytes;
    else
        size = 0;
    if (size < hb + 8 || h.client_bytes > avail || admit_bytes > avail - h.client_bytes ||
        h.nclients > CK_MAX_RANKS || h.nclients > h.client_bytes / (4 + 44) ||
        (avail - h.client_bytes - admit_bytes) % rowb != 0 ||
        h.nkeys != (avail - h.client_bytes - admit_bytes) / rowb ||
        h.client_bytes > h.nclients * (4ull + CK_CLIENT_MAX)) {
        snprintf(why, wlen,
                 "torn or corrupt: %llu bytes, but the header says %llu keys of %llu bytes, "
                 "%llu client records in %llu bytes and %llu bytes of admission state",
                 (unsigned long long)size, (unsigned long long)h.nkeys, (unsigned long long)rowb,
                 (unsigned long long)h.nclients, (unsigned long long)h.client_bytes,
                 (unsigned long long)admit_bytes);
        goto out;
    }
    /* client records */
    rc = ZPS_ENOMEM;
    buf = malloc(h.client_bytes ? (size_t)h.client_bytes : 1);
    cl = calloc(h.nclients ? (size_t)h.nclients : 1, sizeof *cl);
    if (!buf || !cl)
        goto out;
    rc = ZPS_EPROTO;
    if (s_fread(f, buf, (size_t)h.client_bytes, &crc) != 0) {
        snprintf(why, wlen, "truncated in the client records");
        goto out;
    }
    {
        uint64_t off = 0, i = 0;
        while (off < h.client_bytes) {
            uint32_t len;
            if (h.client_bytes - off < 4 || i == h.nclients)
                break;
            memcpy(&len, buf + off, 4);
            off += 4;
            if (len > CK_CLIENT_MAX || len > h.client_bytes - off ||
                s_client_get(buf + off, len, &cl[i]) != 0)
                break;
            off += len;
            i++;
        }
        if (off != h.client_bytes || i != h.nclients) {
            snprintf(why, wlen, "corrupt client record %llu", (unsigned long long)i);
            goto out;
        }
    }
    free(buf);
    buf = NULL;
    /* the admission block (format 3), checked by the shard when imported */
    if (admit_bytes) {
        rc = ZPS_ENOMEM;
        if (!(adm = malloc((size_t)admit_bytes))) {
            snprintf(why, wlen, "out of memory for %llu bytes of admission state",
                     (unsigned long long)admit_bytes);
            goto out;
        }
        rc = ZPS_EPROTO;
        if (s_fread(f, adm, (size_t)admit_bytes, &crc) != 0) {
            snprintf(why, wlen, "truncated in the admission state");
            goto out;
        }
    }
    /* the range table (format 4), decoded and checked by the server */
    if (ranges_bytes) {
        rc = ZPS_ENOMEM;
        if (!(rt = malloc((size_t)ranges_bytes))) {
            snprintf(why, wlen, "out of memory for the range table");
            goto out;
        }
        rc = ZPS_EPROTO;
        if (s_fread(f, rt, (size_t)ranges_bytes, &crc) != 0) {
            snprintf(why, wlen, "truncated in the range table");
            goto out;
        }
    }
    /* rows, into a new table, in blocks of about 1 MiB */
    size_t rec = (size_t)rowb;
    size_t blk = (1u << 20) / rec ? (1u << 20) / rec : 1;
    rc = ZPS_ENOMEM;
    t = zps_table_new(want->row_floats, h.nkeys > hint ? (size_t)h.nkeys : hint);
    buf = malloc(blk * rec);
    keys = malloc(blk * sizeof *keys);
    rows = malloc(blk * sizeof *rows);
    if (!t || !buf || !keys || !rows) {
        snprintf(why, wlen, "out of memory for %llu keys", (unsigned long long)h.nkeys);
        goto out;
    }
    for (uint64_t k = 0; k < h.nkeys; k += blk) {
        size_t m = h.nkeys - k < blk ? (size_t)(h.nkeys - k) : blk;
        if (s_fread(f, buf, m * rec, &crc) != 0) {
            snprintf(why, wlen, "truncated after %llu of %llu keys", (unsigned long long)k,
                     (unsigned long long)h.nkeys);
            rc = ZPS_EPROTO;
            goto out;
        }
        for (size_t j = 0; j < m; j++) {
            memcpy(&keys[j], buf + j * rec, 8);
            if (!s_finite_row(buf + j * rec + 8, h.row_floats)) {
                snprintf(why, wlen, "key %llu has a non-finite value", (unsigned long long)keys[j]);
                rc = ZPS_EPROTO;
                goto out;
            }
            if (!ranges_bytes && zps_place(keys[j], h.nservers) != h.rank) {
                snprintf(why, wlen,
                         "key %llu belongs to server %u of %u, not %u: written under another "
                         "key placement (zps before the range table of 2026-12) or corrupt",
                         (unsigned long long)keys[j], zps_place(keys[j], h.nservers), h.nservers,
                         h.rank);
                rc = ZPS_EMISMATCH;
                goto out;
            }
        }
        if (zps_table_upsert_batch(t, keys, m, rows, NULL) != 0) {
            snprintf(why, wlen, "out of memory after %llu keys", (unsigned long long)k);
            goto out;
        }
        for (size_t j = 0; j < m; j++)
            memcpy(rows[j], buf + j * rec + 8, rec - 8);
    }
    rc = ZPS_EPROTO;
    uint64_t trailer = 0;
    if (fread(&trailer, 8, 1, f) != 1 || trailer != crc || fgetc(f) != EOF) {
        snprintf(why, wlen, "torn or corrupt (checksum mismatch)");
        goto out;
    }
    if (zps_table_size(t) != h.nkeys) {
        snprintf(why, wlen, "corrupt: %llu keys in the header, %zu distinct in the file",
                 (unsigned long long)h.nkeys, zps_table_size(t));
        goto out;
    }
    rc = 0;
    *out = t;
    t = NULL;
    *clients = cl;
    cl = NULL;
    *ncl = (size_t)h.nclients;
    *hout = h;
    *admit = adm;
    *admit_len = (size_t)admit_bytes;
    adm = NULL;
    *rtab = rt;
    *rtab_len = (size_t)ranges_bytes;
    rt = NULL;
out:
    fclose(f);
    free(buf);
    free(adm);
    free(rt);
    free(keys);
    free(rows);
    free(cl);
    zps_table_destroy(&t);
    return rc;
}

int ps_ckpt_restore(const char *dir, ps_ckpt_info_t *info, size_t capacity_hint, zps_table_t **t,
                    ps_ckpt_client_t **clients, size_t *nclients, zps_log_t *log, char *err,
                    size_t errlen)
{
    if (info->row_floats == 0 || info->row_floats > 4096) {
        snprintf(err, errlen, "rows of %u floats are over the restore limit", info->row_floats);
        return ZPS_EINVAL;
    }
    ck_entry_t *e;
    size_t n = s_scan(dir, info->rank, info->nservers, &e);
    if (n == 0) {
        free(e);
        return 1;
    }
    info->last_counter = e[0].counter;
    info->admit_out = NULL;
    info->admit_out_len = 0;
    info->ranges_out = NULL;
    info->ranges_out_len = 0;
    for (size_t i = 0; i < n; i++) {
        char path[1200], why[1200];
        s_path(path, sizeof path, dir, info->rank, info->nservers, e[i].counter);
        ck_header_t h;
        memset(&h, 0, sizeof h);
        int rc = s_load(path, e[i].counter, info, capacity_hint, t, &h, clients, nclients,
                        &info->admit_out, &info->admit_out_len, &info->ranges_out,
                        &info->ranges_out_len, why, sizeof why);
        if (rc == 0) {
            info->counter = h.counter;
            info->job_id = h.job_id;
            info->wall_ms = h.wall_ms;
            free(e);
            return 0;
        }
        zps_warn(log, "checkpoint %s is unusable: %s%s", path, why,
                 i + 1 < n ? "; trying the previous one" : "");
    }
    snprintf(err, errlen, "no usable checkpoint in %s (%zu found, all unusable; see above)", dir,
             n);
    free(e);
    return ZPS_EPROTO;
}
