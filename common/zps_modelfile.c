/* zps_modelfile: see zps_modelfile.h for the layout.  Every file is written
 * through zps_file (new temporary file, fsync, rename; never through a
 * symlink, never over a file of another user).
 *
 * Checksum (format 2): the CRC-32 of the file's bytes in file order, so a
 * reader streams it in any block size.  The writer learns the key count only
 * at close, when it rewrites the header at offset 0; it keeps the CRC of the
 * records and joins it to the CRC of the final header with crc32_combine.
 * Format 1 shards are verified by s_v1_sum (read-only, below). */
#include "zps_modelfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "zps_err.h"
#include "zps_file.h"
#include "zps_hash.h"

_Static_assert(sizeof(z_off_t) >= 8, "crc32_combine needs a 64-bit z_off_t");

#define SHARD_MAGIC "ZPSSHARD"

typedef struct {
    char magic[8];
    uint32_t version, rank, nservers, dim;
    uint64_t nkeys;
    uint8_t pad[32];
} shard_header_t;

_Static_assert(sizeof(shard_header_t) == 64, "shard header is 64 bytes");

struct zps_mf_writer {
    zps_file_t *f;
    char dir[1024], name[64], sum[64];
    shard_header_t h;
    uint32_t crc;         /* CRC-32 of the records so far */
    uint64_t bytes;       /* their length */
};

uint32_t zps_crc32(uint32_t crc, const void *data, size_t len)
{
    const Bytef *p = data;
    uLong c = crc;
    while (len > 0) {   /* zlib takes uInt lengths */
        uInt n = len < (1u << 30) ? (uInt)len : (1u << 30);
        c = crc32(c, p, n);
        p += n;
        len -= n;
    }
    return (uint32_t)c;
}

uint32_t zps_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
    return (uint32_t)crc32_combine(crc_a, crc_b, (z_off_t)len_b);
}

/* ---- format 1, read-only -------------------------------------------------------- */
/* LEGACY: the checksum of format 1 shards (zps before format 2), kept only so
 * that models saved by those versions still load.  The 8-byte words of each
 * call's bytes are mixed in turn, then the tail with its length, so the value
 * depends on the call boundaries: the writer called it once per record (key
 * + weights) and finally once over the 64-byte header.  Never used to
 * write.  zps_hash_bytes64 (zps_hash.h) mixes the same way for the key
 * cache; this copy belongs to format 1 and is frozen with it, whatever
 * happens to the hash (check_file loads a shard written by format-1 zps). */
static uint64_t s_v1_sum(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = zps_mix64(h ^ w, 0x2545f4914f6cdd1dULL);
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    if (len)
        memcpy(&w, p, len);
    return zps_mix64(h ^ w ^ ((uint64_t)len << 56), 0x2545f4914f6cdd1dULL);
}

/* ---- write ---------------------------------------------------------------------- */

static int s_mkdir(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return ZPS_EIO;
    }
    return 0;
}

zps_mf_writer_t *zps_mf_writer_new(const char *dir, uint32_t rank, uint32_t nservers,
                                   uint32_t dim, char *err, size_t errlen)
{
    if (s_mkdir(dir, err, errlen))
        return NULL;
    zps_mf_writer_t *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    snprintf(w->name, sizeof w->name, "shard-%u-of-%u.bin", rank, nservers);
    snprintf(w->sum, sizeof w->sum, "shard-%u-of-%u.sum", rank, nservers);
    /* both targets are checked before anything is written */
    if (zps_file_check_target(dir, w->sum, err, errlen) != 0 ||
        !(w->f = zps_file_atomic_open(dir, w->name, 0644, err, errlen))) {
        free(w);
        return NULL;
    }
    memcpy(w->h.magic, SHARD_MAGIC, 8);
    w->h.version = ZPS_MODELFILE_VERSION;
    w->h.rank = rank;
    w->h.nservers = nservers;
    w->h.dim = dim;
    /* header is rewritten with the key count at close */
    zps_file_write(w->f, &w->h, sizeof w->h);
    return w;
}

int zps_mf_writer_add(zps_mf_writer_t *w, uint64_t key, const float *weights)
{
    uint8_t rec[8 + 4 * 1024];
    size_t len = 8 + 4 * (size_t)w->h.dim;
    if (w->h.dim > 1024)
        return ZPS_EINVAL;
    memcpy(rec, &key, 8);
    memcpy(rec + 8, weights, len - 8);
    w->crc = zps_crc32(w->crc, rec, len);
    w->bytes += len;
    w->h.nkeys++;
    return zps_file_write(w->f, rec, len) ? ZPS_EIO : 0;
}

int zps_mf_writer_close(zps_mf_writer_t **wp, char *err, size_t errlen)
{
    zps_mf_writer_t *w = *wp;
    *wp = NULL;
    /* the trailer covers the header as rewritten (with the key count), then
     * the records: the CRC of the file's first bytes in order */
    uint32_t crc = zps_crc32_combine(zps_crc32(0, &w->h, sizeof w->h), w->crc, w->bytes);
    uint64_t total = crc;
    zps_file_write(w->f, &total, 8);
    zps_file_pwrite(w->f, 0, &w->h, sizeof w->h);
    int rc = zps_file_commit(&w->f, err, errlen);
    if (!rc) {
        char line[128];
        int n = snprintf(line, sizeof line, "keys %llu crc32 %08x\n",
                         (unsigned long long)w->h.nkeys, (unsigned)crc);
        rc = zps_file_write_atomic(w->dir, w->sum, 0644, line, (size_t)n, err, errlen);
    }
    free(w);
    return rc;
}

int zps_mf_write_manifest(const char *dir, const char *model, uint32_t dim, uint32_t nservers,
                          const char *table_desc, const char *options, const uint8_t *present,
                          char *err, size_t errlen)
{
    if (s_mkdir(dir, err, errlen))
        return ZPS_EIO;
    char *list = NULL;
    size_t llen = 0;
    if (present) {
        FILE *lf = open_memstream(&list, &llen);
        if (!lf) {
            snprintf(err, errlen, "out of memory");
            return ZPS_ENOMEM;
        }
        fputs("shards", lf);
        for (uint32_t r = 0; r < nservers; r++)
            if (present[r])
                fprintf(lf, " %u", r);
        fputc('\n', lf);
        fclose(lf);
    }
    char *text = NULL;
    int n = asprintf(&text, "zps-model %u\nmodel %s\ndim %u\nservers %u\ntable %s\noptions %s\n%s",
                     ZPS_MODELFILE_VERSION, model, dim, nservers, table_desc, options,
                     list ? list : "");
    free(list);
    if (n < 0) {
        snprintf(err, errlen, "out of memory");
        return ZPS_ENOMEM;
    }
    int rc = zps_file_write_atomic(dir, "manifest", 0644, text, (size_t)n, err, errlen);
    free(text);
    return rc;
}

int zps_mf_read_manifest(const char *dir, zps_mf_manifest_t *m, char *err, size_t errlen)
{
    char path[1024], line[1200];
    snprintf(path, sizeof path, "%s/manifest", dir);
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s (is %s a saved model?)", path, strerror(errno),
                 dir);
        return ZPS_EIO;
    }
    unsigned version = 0;
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\n")] = 0;
        char *sp = strchr(line, ' ');
        const char *val = sp ? sp + 1 : "";
        if (sp)
            *sp = 0;
        if (!strcmp(line, "zps-model")) version = (unsigned)strtoul(val, NULL, 10);
        else if (!strcmp(line, "model")) snprintf(m->model, sizeof m->model, "%s", val);
        else if (!strcmp(line, "dim")) m->dim = (uint32_t)strtoul(val, NULL, 10);
        else if (!strcmp(line, "servers")) m->nservers = (uint32_t)strtoul(val, NULL, 10);
        else if (!strcmp(line, "table")) snprintf(m->table, sizeof m->table, "%s", val);
        else if (!strcmp(line, "options")) snprintf(m->options, sizeof m->options, "%s", val);
        else if (!strcmp(line, "shards")) {
            /* every rank not listed is absent */
            memset(m->absent, 0xff, sizeof m->absent);
            for (const char *p = val; *p;) {
                char *end;
                unsigned long r = strtoul(p, &end, 10);
                if (end == p || r >= ZPS_MF_MAX_SHARDS) {
                    snprintf(err, errlen, "%s:%d: bad shard list '%s'", path, lineno, val);
                    fclose(f);
                    return ZPS_EPROTO;
                }
                m->absent[r / 8] &= (uint8_t)~(1u << (r % 8));
                p = end;
                while (*p == ' ')
                    p++;
            }
        }
    }
    fclose(f);
    (void)lineno;
    m->version = version;
    if (version < ZPS_MODELFILE_VERSION_MIN || version > ZPS_MODELFILE_VERSION) {
        snprintf(err, errlen,
                 "%s: model format version %u; this zps reads versions %u (older zps) and %u%s",
                 path, version, ZPS_MODELFILE_VERSION_MIN, ZPS_MODELFILE_VERSION,
                 version > ZPS_MODELFILE_VERSION ? " (a newer zps wrote it)" : "");
        rc = ZPS_EVERSION;
    } else if (!m->model[0] || m->dim == 0 || m->dim > 1024 || m->nservers == 0) {
        snprintf(err, errlen, "%s: incomplete manifest (model, dim, servers)", path);
        rc = ZPS_EPROTO;
    }
    return rc;
}

int zps_mf_load(const char *dir, const zps_mf_manifest_t *m,
                int (*fn)(void *ctx, uint64_t key, const float *w), void *ctx, char *err,
                size_t errlen)
{
    size_t rec = 8 + 4 * (size_t)m->dim;
    uint8_t *buf = malloc(rec);
    if (!buf)
        return ZPS_ENOMEM;
    int rc = 0;
    for (uint32_t r = 0; r < m->nservers && !rc; r++) {
        if (r < ZPS_MF_MAX_SHARDS && (m->absent[r / 8] >> (r % 8) & 1))
            continue; /* a replicated job's failed server: its keys are in the others' shards */
        char path[1024];
        snprintf(path, sizeof path, "%s/shard-%u-of-%u.bin", dir, r, m->nservers);
        FILE *f = fopen(path, "rb");
        if (!f) {
            snprintf(err, errlen, "cannot open %s: %s (the model has %u shards)", path,
                     strerror(errno), m->nservers);
            rc = ZPS_EIO;
            break;
        }
        setvbuf(f, NULL, _IOFBF, 1 << 20);
        shard_header_t h;
        memset(&h, 0, sizeof h);
        if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, SHARD_MAGIC, 8) != 0) {
            snprintf(err, errlen, "%s: not a zps shard file", path);
            rc = ZPS_EPROTO;
        } else if (h.version < ZPS_MODELFILE_VERSION_MIN || h.version > ZPS_MODELFILE_VERSION ||
                   (m->version && h.version != m->version)) {
            snprintf(err, errlen,
                     "%s: shard format version %u; this zps reads versions %u and %u, and the "
                     "manifest says version %u",
                     path, h.version, ZPS_MODELFILE_VERSION_MIN, ZPS_MODELFILE_VERSION,
                     m->version);
            rc = ZPS_EVERSION;
        } else if (h.rank != r || h.nservers != m->nservers || h.dim != m->dim) {
            snprintf(err, errlen,
                     "%s: header says shard %u of %u, dim %u; manifest expects shard %u of %u, "
                     "dim %u",
                     path, h.rank, h.nservers, h.dim, r, m->nservers, m->dim);
            rc = ZPS_EPROTO;
        }
        int v1 = h.version == 1;
        uint64_t v1sum = 0;                          /* format 1 */
        uint32_t crc = rc ? 0 : zps_crc32(0, &h, sizeof h);   /* format 2: file order */
        for (uint64_t k = 0; !rc && k < h.nkeys; k++) {
            if (fread(buf, 1, rec, f) != rec) {
                snprintf(err, errlen, "%s: truncated after %llu of %llu keys", path,
                         (unsigned long long)k, (unsigned long long)h.nkeys);
                rc = ZPS_EPROTO;
                break;
            }
            if (v1)
                v1sum = s_v1_sum(v1sum, buf, rec);
            else
                crc = zps_crc32(crc, buf, rec);
            uint64_t key;
            memcpy(&key, buf, 8);
            float w[1024];
            memcpy(w, buf + 8, rec - 8);
            rc = fn(ctx, key, w);
            if (rc)
                snprintf(err, errlen, "%s: cannot load key %llu: %s", path,
                         (unsigned long long)key, zps_strerror(rc));
        }
        if (!rc) {
            uint64_t want, got = v1 ? s_v1_sum(v1sum, &h, sizeof h) : crc;
            if (fread(&want, 8, 1, f) != 1 || want != got || fgetc(f) != EOF) {
                snprintf(err, errlen,
                         "%s: checksum mismatch or trailing data (format version %u): file is "
                         "corrupt",
                         path, h.version);
                rc = ZPS_EPROTO;
            }
        }
        fclose(f);
    }
    free(buf);
    return rc;
}
