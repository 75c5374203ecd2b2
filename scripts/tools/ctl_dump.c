/* ctl_dump: the dump command (see ctl_dump.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_conn.h"
#include "ctl_dump.h"
#include "ctl_num.h"
#include "zps_codec.h"
#include "zps_err.h"
#include "zps_out.h"

#define CTL_PAGE 65536u

typedef struct {
    uint64_t key;
    size_t at;
} ctl_row_t;

static int s_cmp_row(const void *a, const void *b)
{
    return ctl_cmp_u64(&((const ctl_row_t *)a)->key, &((const ctl_row_t *)b)->key);
}

int ctl_dump(const ctl_opts_t *o)
{
    ctl_conn_t *c = ctl_conn_new(o);
    if (!c)
        return 1;
    ctl_row_t *rows = NULL;
    float *vals = NULL;
    size_t n = 0, rcap = 0, vcap = 0;
    uint32_t dim = 0;
    uint64_t *page = malloc(CTL_PAGE * sizeof *page);
    int rc = page ? 0 : ZPS_ENOMEM;
    char err[600] = "out of memory";
    uint32_t s = 0;
    for (; !rc && s < o->nservers; s++) {
        uint64_t cursor = 0;
        for (;;) {
            Zps__Envelope env;
            Zps__Dump d = ZPS__DUMP__INIT;
            d.table = o->table;
            d.cursor = cursor;
            d.max_keys = CTL_PAGE;
            ctl_conn_env(c, &env, ZPS__MSG_TYPE__DUMP);
            env.body_case = ZPS__ENVELOPE__BODY_DUMP;
            env.dump = &d;
            zps_msg_t m;
            if ((rc = ctl_conn_call(c, s, &env, &m, err, sizeof err)) != 0)
                break;
            const Zps__DumpReply *b = m.env->dump_reply;
            size_t klen, vlen;
            const uint8_t *kb = zps_msg_bulk(&m, 0, &klen);
            const uint8_t *vb = zps_msg_bulk(&m, 1, &vlen);
            if (m.env->body_case != ZPS__ENVELOPE__BODY_DUMP_REPLY || b->nkeys > CTL_PAGE ||
                (dim && b->dim != dim) || b->dim == 0 || vlen != b->nkeys * b->dim * sizeof(float) ||
                zps_keys_decode(kb, klen, b->nkeys, page, NULL) != 0 ||
                (b->nkeys == 0 && !b->done) || b->next_cursor < cursor) {
                snprintf(err, sizeof err, "malformed dump reply");
                zps_msg_close(&m);
                rc = ZPS_EPROTO;
                break;
            }
            dim = b->dim;
            if (ctl_grow((void **)&rows, &rcap, n + b->nkeys, sizeof *rows) ||
                ctl_grow((void **)&vals, &vcap, (n + b->nkeys) * dim, sizeof *vals)) {
                zps_msg_close(&m);
                rc = ZPS_ENOMEM;
                break;
            }
            if (vlen) /* an empty table's page has no values (and vals may be NULL) */
                memcpy(vals + n * dim, vb, vlen);
            for (size_t i = 0; i < b->nkeys; i++) {
                rows[n].key = page[i];
                rows[n].at = n * dim;
                n++;
            }
            int done = b->done;
            cursor = b->next_cursor;
            zps_msg_close(&m);
            if (done)
                break;
        }
        if (rc)
            break;
    }
    if (rc) {
        fprintf(stderr, "zps-ctl: dump: server %u at %s: %s\n", s, o->servers[s], err);
    } else {
        if (n > 1)
            qsort(rows, n, sizeof *rows, s_cmp_row);
        /* --out is written atomically (zps_out); stdout as a stream */
        zps_out_t *out = o->out ? zps_out_open(o->out, err, sizeof err) : NULL;
        FILE *f = out ? zps_out_file(out) : o->out ? NULL : stdout;
        if (!f) {
            fprintf(stderr, "zps-ctl: cannot write %s: %s\n", o->out, err);
            rc = ZPS_EIO;
        } else {
            for (size_t i = 0; i < n; i++) {
                fprintf(f, "%" PRIu64, rows[i].key);
                for (uint32_t j = 0; j < dim; j++) {
                    char t[32];
                    ctl_fmt_float(vals[rows[i].at + j], t);
                    fprintf(f, " %s", t);
                }
                fputc('\n', f);
            }
            if (out ? zps_out_close(&out, 1, err, sizeof err) != 0 : fflush(f) != 0) {
                fprintf(stderr, "zps-ctl: writing %s failed%s%s\n", o->out ? o->out : "stdout",
                        o->out ? ": " : "", o->out ? err : "");
                rc = ZPS_EIO;
            }
            if (!rc && o->out)
                fprintf(stderr, "zps-ctl: dumped %zu keys of dim %u to %s\n", n, dim, o->out);
        }
    }
    free(page);
    free(rows);
    free(vals);
    ctl_conn_destroy(&c);
    return rc ? 1 : 0;
}
