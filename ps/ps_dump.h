/* ps_dump: the server side of DUMP (read a whole table page by page; used
 * by zps-ctl dump).
 *
 * A page is read from a cursor in the table's hash order (zps_table_next:
 * the cursor is the next hash to visit, which growth, inserts and deletes
 * do not disturb, so a dump taken while pushes go on sees every row that
 * existed from its start to its end exactly once).  The page's keys are
 * sorted (the keys frame must be
 * strictly increasing) and its weight rows (zps_optim_weights: what a pull
 * would answer) follow the sorted order.
 *
 * The server's DUMP handler (ps_srv_req.c) calls ps_dump_page, then
 * ps_dump_reply; they only need the table and its optimizer. */
#ifndef PS_DUMP_H
#define PS_DUMP_H

#include <stddef.h>
#include <stdint.h>

#include "zps_optim.h"
#include "zps_table.h"
#include "zps.pb-c.h"

#define PS_DUMP_MAX_PAGE 65536u /* rows per page at most */

typedef struct {
    uint64_t nkeys, next_cursor;
    int done;
    uint8_t *keys;     /* malloc'd gap-varint keys frame (ownership passes to the sender) */
    size_t keys_len;
    float *vals;       /* malloc'd nkeys * dim floats */
    size_t vals_len;
} ps_dump_page_t;

/* Read up to max_keys rows (0 or more than PS_DUMP_MAX_PAGE: the cap) of t
 * from cursor.  0, or ZPS_ENOMEM (out untouched, nothing to free). */
int ps_dump_page(const zps_table_t *t, const zps_optim_conf_t *o, uint64_t cursor,
                 uint64_t max_keys, ps_dump_page_t *out);

/* Free a page that was not handed to a sender. */
void ps_dump_page_free(ps_dump_page_t *p);

/* Fill the DUMP_REPLY envelope for page p of table (dim floats per row). */
void ps_dump_reply(const ps_dump_page_t *p, uint32_t table, uint32_t dim, uint64_t keys_stored,
                   uint32_t server_rank, uint64_t request_id, Zps__Envelope *env,
                   Zps__DumpReply *body);

#endif
