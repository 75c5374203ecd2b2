/* fuzz_data_gz: the data readers on gzip files (worker/wk_data.c, wk_source.c: gzread,
 * the growing line buffer, line-modulo shards, truncated and corrupt streams).
 *
 * Input starting with the gzip magic (1f 8b): written as it is, a gzip
 * stream of unknown content, often broken: reads may fail only with ZPS_EIO
 * (broken stream) or ZPS_EINVAL (bad line), never crash.  Any other input is
 * text: compressed with zlib (level and a split into two gzip members picked
 * from the input's hash) and read as gzip; the results must be those of the
 * same text read from a plain file under the same name (rows, bad lines, the
 * error message with its line and column), and the checks of fuzz_data.h
 * apply.  A truncated copy of the compressed file must fail with ZPS_EIO
 * ("gzip data ends early") or at a bad line, never pass silently. */
#include <zlib.h>

#include "fuzz_data.h"

/* gzip of data into *out (malloc'd): one member, or two when split < size
 * (*first: where the second begins, else the length). */
static size_t gz_compress(const uint8_t *data, size_t size, int level, size_t split, uint8_t **out,
                          size_t *first)
{
    size_t cap = 2 * compressBound((uLong)size) + 64, len = 0;
    uint8_t *buf = malloc(cap);
    FUZZ_CHECK(buf, "out of memory");
    size_t parts[2][2] = {{0, split}, {split, size}};
    for (int m = 0; m < 2; m++) {
        if (m == 1 && split >= size)
            break;
        z_stream z;
        memset(&z, 0, sizeof z);
        FUZZ_CHECK(deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK,
                   "deflateInit2");
        z.next_in = (Bytef *)(uintptr_t)(data + parts[m][0]);
        z.avail_in = (uInt)(parts[m][1] - parts[m][0]);
        z.next_out = buf + len;
        z.avail_out = (uInt)(cap - len);
        FUZZ_CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END, "deflate");
        len = cap - z.avail_out;
        deflateEnd(&z);
        if (m == 0)
            *first = len;
    }
    *out = buf;
    return len;
}

/* Inputs that decompress to more than this are read in fewer ways. */
#define LIGHT_BYTES (256u << 10)

/* Decompressed size of (the gzip members of) data, as far as zlib gets. */
static size_t gunzip_size(const uint8_t *data, size_t size)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return 0;
    static uint8_t out[1 << 16];
    size_t total = 0;
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)size;
    for (;;) {
        z.next_out = out;
        z.avail_out = sizeof out;
        int rc = inflate(&z, Z_NO_FLUSH);
        total += sizeof out - z.avail_out;
        if (rc == Z_STREAM_END && z.avail_in > 0 && inflateReset(&z) == Z_OK)
            continue; /* next member */
        if (rc != Z_OK || total > (64u << 20))
            break;
    }
    inflateEnd(&z);
    return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[PATH_MAX];
    const char *dir = fuzz_tmpdir();
    if (!path[0]) {
        char cdir[PATH_MAX];
        snprintf(path, sizeof path, "%s/data.gz", dir);
        snprintf(cdir, sizeof cdir, "%s/cache", dir);
        mkdir(cdir, 0755);
    }
    if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
        fuzz_write_file(path, data, size);
        if (wk_idx_sniff(path)) /* IDX inside: read as IDX by --format auto (not text) */
            return 0;
        fd_check_all(dir, path, data, size, 1, 0, gunzip_size(data, size) > LIGHT_BYTES ? 1 : 2);
        return 0;
    }
    uint64_t h = fd_fnv(data, size);

    /* the plain reading first, under the same name (error messages name it) */
    fd_opts_t o;
    memset(&o, 0, sizeof o);
    o.labels = (h >> 8) & 1 ? WK_LABEL_CLASS : WK_LABEL_BINARY;
    o.max_rows = 1 + (h >> 11) % 5;
    o.nshards = 1;
    fd_result_t P[2], G[2];
    fuzz_write_file(path, data, size);
    if (wk_idx_sniff(path)) /* an IDX header: --format auto reads it as IDX (this fuzzes text) */
        return 0;
    o.skip = 0;
    fd_read(path, &o, 1, &P[0]);
    o.skip = 1;
    fd_read(path, &o, 1, &P[1]);

    uint8_t *gz;
    size_t first;
    size_t split = size ? (size_t)(h >> 24) % (size + 1) : 0;
    size_t gl = gz_compress(data, size, (int)((h >> 4) % 10), (h >> 3) & 1 ? split : size, &gz,
                            &first);
    fuzz_write_file(path, gz, gl);
    o.skip = 0;
    fd_read(path, &o, 1, &G[0]);
    o.skip = 1;
    fd_read(path, &o, 1, &G[1]);
    for (int k = 0; k < 2; k++) {
        FUZZ_CHECK(G[k].rc == P[k].rc && fd_same(&G[k], &P[k]),
                   "%s read: gzip %d (%llu rows, %llu bad: %s), plain %d (%llu rows, %llu bad: %s)",
                   k ? "skipping" : "strict", G[k].rc, (unsigned long long)G[k].rows,
                   (unsigned long long)G[k].bad, G[k].err, P[k].rc, (unsigned long long)P[k].rows,
                   (unsigned long long)P[k].bad, P[k].err);
        FUZZ_CHECK(strcmp(G[k].err, P[k].err) == 0, "gzip message '%s', plain '%s'", G[k].err,
                   P[k].err);
    }
    fd_check_all(dir, path, data, size, 1, 1, 2);

    /* the stream cut short (after the magic, not between two members): never
     * silently accepted */
    size_t cut = gl > 2 ? 2 + (size_t)(h >> 40) % (gl - 2) : 0;
    if (getenv("FUZZ_DEBUG"))
        fprintf(stderr, "gzip: %zu bytes of text, %zu compressed, first member %zu, cut at %zu\n",
                size, gl, first, cut);
    /* zlib ignores what follows a complete member unless it starts with the
     * two magic bytes: one byte of a second member is not an error */
    if (cut && cut != first && cut != first + 1) {
        fuzz_write_file(path, gz, cut);
        o.skip = 1;
        fd_result_t T;
        fd_read(path, &o, 1, &T);
        FUZZ_CHECK(T.rc == ZPS_EIO, "gzip cut to %zu of %zu bytes: read returned %d (%llu rows): %s",
                   cut, gl, T.rc, (unsigned long long)T.rows, T.err);
        FUZZ_CHECK(T.rows <= P[1].rows, "truncated stream gave more rows");
    }
    free(gz);
    return 0;
}
