/* predict_in: see predict_in.h.
 *
 * DESIGN
 * zlib's gzread reads gzip and plain bytes alike (a non-gzip input is
 * copied through), from a descriptor, so stdin, a pipe and a file take the
 * same path.  Bytes go into one growing buffer; lines are cut with memchr
 * (a NUL byte inside a line is the parser's problem, not a truncation) and
 * handed to wk_parse_line, which appends a row to a wk_rows_t or leaves it
 * unchanged on a bad line.  The batch is that wk_rows_t. */
#include "predict_in.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "wk_parse.h"
#include "wk_rows.h"
#include "zps_err.h"

#define S_CHUNK (256u << 10)
#define S_MAX_LINE ((size_t)64 << 20)

struct predict_in {
    char name[1024];
    gzFile gz;
    int eof;
    char *buf;
    size_t cap, start, end;     /* unread bytes are buf[start..end) */
    uint64_t line;              /* lines consumed */
    int content;                /* the first content line was seen */
    zps_format_t fmt;
    wk_parser_t *parser;
    wk_rows_t rows;
    uint64_t *lines;            /* line of each row of the batch */
    size_t lines_cap;
    int skip_bad;
    uint64_t bad;
    char first_bad[1200];
    char err[1200];
};

predict_in_t *predict_in_open(const char *path, zps_format_t fmt, wk_label_mode_t labels,
                              uint32_t hash_bits, int skip_bad, char *err, size_t errlen)
{
    int stdin_ = strcmp(path, "-") == 0;
    int fd = stdin_ ? dup(0) : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", stdin_ ? "<stdin>" : path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: is a directory", path);
        close(fd);
        return NULL;
    }
    predict_in_t *in = calloc(1, sizeof *in);
    if (in)
        in->parser = wk_parser_new(labels, hash_bits);
    if (!in || !in->parser || !(in->gz = gzdopen(fd, "rb"))) {
        snprintf(err, errlen, "%s: out of memory", path);
        close(fd);
        predict_in_destroy(&in);
        return NULL;
    }
    gzbuffer(in->gz, S_CHUNK);
    wk_parser_set_unlabeled(in->parser, 1);
    snprintf(in->name, sizeof in->name, "%s", stdin_ ? "<stdin>" : path);
    in->fmt = fmt;
    in->skip_bad = skip_bad;
    return in;
}

void predict_in_destroy(predict_in_t **inp)
{
    if (!inp || !*inp)
        return;
    predict_in_t *in = *inp;
    if (in->gz)
        gzclose(in->gz);
    wk_parser_destroy(&in->parser);
    wk_rows_free(&in->rows);
    free(in->buf);
    free(in->lines);
    free(in);
    *inp = NULL;
}

/* zlib's error text without the "<fd:N>: " it puts before it. */
static const char *s_zmsg(gzFile gz, int *zerr)
{
    const char *msg = gzerror(gz, zerr);
    if (!strncmp(msg, "<fd:", 4) && strstr(msg, ": "))
        msg = strstr(msg, ": ") + 2;
    return msg;
}

/* Next line [*ls, *le): 1, 0 at the end, or a ZPS_E* code (reason in err). */
static int s_next_line(predict_in_t *in, const char **ls, const char **le)
{
    size_t scan = in->start;
    for (;;) {
        char *nl = in->end > scan ? memchr(in->buf + scan, '\n', in->end - scan) : NULL;
        if (nl || (in->eof && in->end > in->start)) {
            *ls = in->buf + in->start;
            *le = nl ? nl : in->buf + in->end;
            in->start = nl ? (size_t)(nl - in->buf) + 1 : in->end;
            in->line++;
            return 1;
        }
        if (in->eof)
            return 0;
        scan = in->end;
        if (in->start > 0) { /* keep the partial line at the front */
            memmove(in->buf, in->buf + in->start, in->end - in->start);
            scan -= in->start;
            in->end -= in->start;
            in->start = 0;
        }
        if (in->end >= S_MAX_LINE) {
            snprintf(in->err, sizeof in->err, "%s:%llu: line longer than %zu MiB", in->name,
                     (unsigned long long)in->line + 1, S_MAX_LINE >> 20);
            return ZPS_ETOOBIG;
        }
        if (in->cap - in->end < S_CHUNK) {
            size_t cap = in->cap ? in->cap * 2 : 2 * S_CHUNK;
            char *nb = realloc(in->buf, cap);
            if (!nb) {
                snprintf(in->err, sizeof in->err, "%s: out of memory", in->name);
                return ZPS_ENOMEM;
            }
            in->buf = nb;
            in->cap = cap;
        }
        int got = gzread(in->gz, in->buf + in->end, (unsigned)(in->cap - in->end));
        if (got < 0) {
            int zerr;
            const char *msg = s_zmsg(in->gz, &zerr);
            snprintf(in->err, sizeof in->err, "%s: %s", in->name,
                     zerr == Z_ERRNO ? strerror(errno) : msg);
            return ZPS_EIO;
        }
        if (got == 0) {
            int zerr;
            const char *msg = s_zmsg(in->gz, &zerr);
            if (zerr != Z_OK && zerr != Z_STREAM_END) {
                snprintf(in->err, sizeof in->err, "%s: gzip data: %s", in->name, msg);
                return ZPS_EIO;
            }
            in->eof = 1;
        }
        in->end += (size_t)got;
    }
}

long predict_in_next(predict_in_t *in, size_t max_rows, wk_batch_t *b)
{
    if (in->err[0])
        return ZPS_EIO;
    wk_rows_clear(&in->rows);
    if (wk_grow((void **)&in->lines, &in->lines_cap, max_rows, sizeof *in->lines) < 0) {
        snprintf(in->err, sizeof in->err, "%s: out of memory", in->name);
        return ZPS_ENOMEM;
    }
    const char *ls, *le;
    while (in->rows.n < max_rows) {
        int rc = s_next_line(in, &ls, &le);
        if (rc < 0)
            return rc;
        if (rc == 0)
            break;
        zps_format_t f = wk_parse_detect(ls, le);
        if (!in->content) { /* blank and comment lines before the first row */
            if (f == ZPS_FMT_AUTO)
                continue;
            in->content = 1;
            if (in->fmt == ZPS_FMT_AUTO)
                in->fmt = f;
        }
        size_t before = in->rows.n;
        rc = wk_parse_line(in->parser, in->fmt, &in->rows, ls, le);
        if (rc == WK_PARSE_BAD) {
            char msg[sizeof in->first_bad];
            snprintf(msg, sizeof msg, "%s:%llu:%zu: %s", in->name,
                     (unsigned long long)in->line, wk_parse_column(in->parser),
                     wk_parse_reason(in->parser));
            if (!in->skip_bad) {
                memcpy(in->err, msg, sizeof in->err);
                return ZPS_EINVAL;
            }
            if (!in->bad++)
                memcpy(in->first_bad, msg, sizeof msg);
            continue;
        }
        if (rc < 0) {
            snprintf(in->err, sizeof in->err, "%s: out of memory", in->name);
            return rc;
        }
        if (in->rows.n > before)
            in->lines[before] = in->line;
    }
    b->n = in->rows.n;
    b->labels = in->rows.labels;
    b->offsets = in->rows.offsets;
    b->ids = in->rows.ids;
    b->vals = in->rows.vals;
    return (long)in->rows.n;
}

const char *predict_in_error(const predict_in_t *in)
{
    return in->err;
}

const char *predict_in_name(const predict_in_t *in)
{
    return in->name;
}

uint64_t predict_in_line(const predict_in_t *in, size_t i)
{
    return i < in->rows.n ? in->lines[i] : 0;
}

uint64_t predict_in_bad_lines(const predict_in_t *in)
{
    return in->bad;
}

const char *predict_in_first_bad(const predict_in_t *in)
{
    return in->first_bad;
}
