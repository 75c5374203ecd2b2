/* zps_table: key -> row store (a server's shard, the --local store, and
 * any per-key float rows: bsp accumulators, the compression audit).
 *
 * Open addressing over a power-of-two slot array.  A slot is 8 bytes: the
 * high 32 bits are a tag taken from the key's hash (so most mismatches are
 * rejected without touching the row), the low 32 bits are row index + 1
 * (0 = empty).  A probe starts at the key's home slot, goes round the rest of
 * that slot's 64-byte line and only then moves on, line by line, so a lookup
 * nearly always reads one cache line of slots.  Rows live in slabs of
 * ZPS_TABLE_SLAB_ROWS rows; a row is the 8-byte key followed by row_floats
 * floats, so a row never moves once created and no key costs a malloc of its
 * own.  Slot arrays of 2 MB or more and the slabs are 2 MB-aligned mappings
 * that ask for transparent huge pages.
 *
 * Deletion (zps_table_delete, for expiry and eviction): the key's slot
 * becomes a tombstone, which probes step over and inserts reuse; its row
 * goes on a free list that the next insert takes before a new row (zeroed
 * again), and a bit per row marks it free for the iteration.  Tombstones
 * count towards the load; a grow when most of the load is tombstones
 * allocates an array of the same size, and the migration drops them.
 * Memory never shrinks: slabs and slot arrays stay at their high-water
 * mark, and free rows are reused.
 *
 * Growth is incremental (as Redis's dict does it): when the load passes 3/4 a
 * slot array twice the size is allocated, and every later insert or lookup
 * migrates a bounded number of old slots into it; lookups consult both arrays
 * until the old one is empty.  No single operation pays for a whole resize.
 *
 * Ownership: row pointers returned here stay valid until zps_table_destroy().
 * The table is not thread-safe; its owner uses it from one thread. */
#ifndef ZPS_TABLE_H
#define ZPS_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define ZPS_TABLE_SLAB_ROWS 131072u /* 16-byte rows: 2 MB, one huge page */

typedef struct zps_table zps_table_t;

/* New empty table for rows of row_floats floats (>= 1), sized for about
 * capacity_hint keys without growing.  Returns NULL on allocation failure. */
zps_table_t *zps_table_new(uint32_t row_floats, size_t capacity_hint);
void zps_table_destroy(zps_table_t **t);

/* Row of key, or NULL if absent.  Never inserts. */
float *zps_table_find(zps_table_t *t, uint64_t key);

/* Row of key, inserting a zero-filled row if absent (*inserted set to 1 then,
 * else 0; inserted may be NULL).  Returns NULL only on allocation failure. */
float *zps_table_upsert(zps_table_t *t, uint64_t key, int *inserted);

/* Batched forms: rows[i] for keys[i].  They run the keys through a software
 * pipeline that prefetches slot lines and rows well ahead, which hides most
 * of the memory latency of random keys.  find_batch stores NULL for absent
 * keys.  upsert_batch returns 0, or ZPS_ENOMEM (rows filled up to the
 * failure are valid); inserted (may be NULL) gets 1 for new rows. */
void zps_table_find_batch(zps_table_t *t, const uint64_t *keys, size_t n, float **rows);
int zps_table_upsert_batch(zps_table_t *t, const uint64_t *keys, size_t n, float **rows,
                          uint8_t *inserted);

/* Make room for extra more keys: after it returns 0, inserting up to extra
 * new keys (upsert, upsert_batch) cannot fail.  ZPS_ENOMEM leaves the
 * table's contents unchanged (a push is applied whole or not at all). */
int zps_table_reserve(zps_table_t *t, size_t extra);

/* What zps_table_bytes would be after extra more keys (SIZE_MAX: cannot). */
size_t zps_table_bytes_with(const zps_table_t *t, size_t extra);

/* Delete key: 1 if it was stored, 0 if not, ZPS_ENOMEM (nothing changed:
 * the first delete allocates the free-row bits, and the free list grows).
 * Its row pointer is invalid from then on (the row is reused).  Not between
 * the calls of one batch: no batched call deletes. */
int zps_table_delete(zps_table_t *t, uint64_t key);

size_t zps_table_size(const zps_table_t *t);       /* keys stored */
size_t zps_table_rows(const zps_table_t *t);       /* rows ever made: cursors of zps_table_next
                                                      run below it (free rows are skipped) */
size_t zps_table_bytes(const zps_table_t *t);      /* bytes allocated (slots + slabs) */
uint32_t zps_table_row_floats(const zps_table_t *t);
int zps_table_resizing(const zps_table_t *t);      /* 1 while an incremental grow is in progress */

/* Iterate over every stored row in row order (insertion order until a
 * delete; free rows are skipped): *cursor starts at 0 (a row index, below
 * zps_table_rows); returns 1 and fills key/row while rows remain, 0 at the
 * end. */
int zps_table_next(const zps_table_t *t, size_t *cursor, uint64_t *key, float **row);

#endif
