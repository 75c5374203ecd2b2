/* fuzz_data: the LIBSVM / Criteo text readers (worker/wk_data.c reading through wk_parse.c) on plain
 * files.  The input is the file's content; it is written to a private
 * directory (in /dev/shm when there is one) and read many ways, whose results
 * must agree: see fuzz_data.h.  An input that starts with the gzip magic is
 * read as gzip (its stream may be broken); fuzz_data_gz covers gzip fully. */
#include "fuzz_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[PATH_MAX];
    const char *dir = fuzz_tmpdir();
    if (!path[0]) {
        char cdir[PATH_MAX];
        snprintf(path, sizeof path, "%s/data.txt", dir);
        snprintf(cdir, sizeof cdir, "%s/cache", dir);
        mkdir(cdir, 0755);
    }
    fuzz_write_file(path, data, size);
    if (wk_idx_sniff(path)) /* an IDX header: --format auto reads it as IDX (this fuzzes text) */
        return 0;
    int gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    fd_check_all(dir, path, data, size, gz, !gz, 0);
    return 0;
}
