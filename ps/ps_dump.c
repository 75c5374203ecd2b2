/* ps_dump: see ps_dump.h.
 *
 * DESIGN
 * A page is at most PS_DUMP_MAX_PAGE rows (64K rows of dim 1: ~0.8 MB on the
 * wire), so one DUMP costs the server a bounded amount of work and memory
 * however big the table is, and the client drives the pace.  The page's
 * (key, row position) pairs are sorted by key, then the keys are coded and
 * the weights written in that order. */
#include "ps_dump.h"

#include <stdlib.h>
#include <string.h>

#include "zps_codec.h"
#include "zps_err.h"
#include "zps_msg.h"

typedef struct {
    uint64_t key;
    const float *row;
} s_ent_t;

static int s_cmp(const void *a, const void *b)
{
    uint64_t x = ((const s_ent_t *)a)->key, y = ((const s_ent_t *)b)->key;
    return x < y ? -1 : x > y;
}

int ps_dump_page(const zps_table_t *t, const zps_optim_conf_t *o, uint64_t cursor,
                 uint64_t max_keys, ps_dump_page_t *out)
{
    /* the cursor is the next hash to visit (zps_table_cur_t.pos): it stays
     * valid while the table grows, shrinks or moves its entries */
    size_t total = zps_table_size(t);
    if (max_keys == 0 || max_keys > PS_DUMP_MAX_PAGE)
        max_keys = PS_DUMP_MAX_PAGE;
    size_t n = total < max_keys ? total : (size_t)max_keys;
    s_ent_t *ent = malloc((n ? n : 1) * sizeof *ent);
    uint64_t *keys = malloc((n ? n : 1) * sizeof *keys);
    uint8_t *kb = malloc(zps_keys_bound(n) + 1);
    float *vals = malloc((n ? n * o->dim : 1) * sizeof *vals);
    if (!ent || !keys || !kb || !vals) {
        free(ent);
        free(keys);
        free(kb);
        free(vals);
        return ZPS_ENOMEM;
    }
    zps_table_cur_t cur = {cursor, 0};
    size_t got = 0;
    uint64_t key;
    float *row;
    while (got < n && zps_table_next(t, &cur, &key, &row)) {
        ent[got].key = key;
        ent[got].row = row;
        got++;
    }
    qsort(ent, got, sizeof *ent, s_cmp);
    for (size_t i = 0; i < got; i++) {
        keys[i] = ent[i].key;
        zps_optim_weights(o, ent[i].row, vals + i * o->dim);
    }
    long klen = zps_keys_encode(keys, got, kb, zps_keys_bound(got) + 1);
    free(ent);
    free(keys);
    if (klen < 0) { /* cannot happen: keys are unique in a table */
        free(kb);
        free(vals);
        return ZPS_EINVAL;
    }
    memset(out, 0, sizeof *out);
    out->nkeys = got;
    out->next_cursor = cur.pos;
    zps_table_cur_t peek = cur;
    out->done = !zps_table_next(t, &peek, NULL, NULL);
    out->keys = kb;
    out->keys_len = (size_t)klen;
    out->vals = vals;
    out->vals_len = got * o->dim * sizeof(float);
    return 0;
}

void ps_dump_page_free(ps_dump_page_t *p)
{
    free(p->keys);
    free(p->vals);
    p->keys = NULL;
    p->vals = NULL;
}

void ps_dump_reply(const ps_dump_page_t *p, uint32_t table, uint32_t dim, uint64_t keys_stored,
                   uint32_t server_rank, uint64_t request_id, Zps__Envelope *env,
                   Zps__DumpReply *body)
{
    zps__dump_reply__init(body);
    body->table = table;
    body->nkeys = p->nkeys;
    body->dim = dim;
    body->next_cursor = p->next_cursor;
    body->done = p->done;
    body->keys_stored = keys_stored;
    zps_msg_env(env, ZPS__MSG_TYPE__DUMP_REPLY, ZPS__ROLE__ROLE_SERVER, server_rank, request_id);
    env->body_case = ZPS__ENVELOPE__BODY_DUMP_REPLY;
    env->dump_reply = body;
}
