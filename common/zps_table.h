/* zps_table: key -> row store (a server's shard, the --local store, and
 * any per-key float rows: bsp accumulators, the compression audit).
 *
 * Rows live inside the table: an entry is the key's 64-bit hash h =
 * zps_mix64(key, seed) (a bijection, so the key is recovered with
 * zps_unmix64 and never stored; the seed is random per table, so that
 * nobody outside the process can choose keys that pile up in one place
 * of it, the hash-flooding attack) followed by the row's floats, with
 * no padding.  An FTRL row of one weight (z, n) is a 16-byte entry, four
 * to a cache line, also with an eviction stamp (n in 16 bits and the
 * 16-bit stamp share its second float: zps_optim.h, zps_shard.h); SGD's
 * is 12 bytes, 16 with the stamp; a lookup reads the entry's line
 * (and now and then the next), one random memory access per key where a
 * slot array plus separate rows took two.
 *
 * Layout: an ordered linear-probing table (Amble and Knuth, 1974) split
 * into segments under an extendible-hashing directory (Fagin et al.,
 * 1979).  The directory is indexed by h's top bits; a segment of local
 * depth d holds every h with one d-bit prefix, in an array of cap home
 * positions plus a spill of ZPS_TABLE_SPILL more entries (no wrap-around;
 * the spill doubles if a cluster at the end ever needs more).  Entry h's
 * home is the next 32 bits of h scaled to cap, so homes rise with h; the
 * entries of a segment are kept sorted by h, each at or after its home with
 * no empty entry in between.  A lookup scans from the home while entries
 * are below h (a miss stops at the first larger one, so misses are as
 * short as hits); an insert shifts the rest of its cluster up by one; a
 * delete shifts it back (no tombstones).  h == 0 marks an empty entry; the
 * one key whose hash is 0 has a row of its own beside the segments.
 *
 * Growth, in small steps: a segment over 9/10 full is rebuilt 4/3 as big
 * (a single sequential pass: its entries are already in order), so a
 * table's load stays between 3/4 and 9/10 (16-byte entries: 17.8 to 21.3
 * bytes per key; 19.8 measured on average over a fill), against a whole array
 * doubling at once.  A segment that would pass ZPS_TABLE_SEG_MAX homes
 * splits in two by its next hash bit instead (the directory doubles when
 * needed), so no step rebuilds more than one segment of at most 32 MB
 * (16-byte entries).
 * Segments of 2 MB or more are 2 MB-aligned mappings that ask for
 * transparent huge pages.
 *
 * Order and cursors: iteration (zps_table_next) runs in hash order, which
 * growth, splits, inserts and deletes never change; a cursor is the next
 * hash to visit, so it stays valid while the table changes (each key
 * present throughout is visited exactly once).
 *
 * Row pointers stay valid until the next call that inserts or deletes
 * (upsert, upsert_batch, reserve, delete): those move entries.  Finds never
 * move anything.  zps_table_gen changes whenever entries may have moved.
 * The table is not thread-safe; its owner uses it from one thread. */
#ifndef ZPS_TABLE_H
#define ZPS_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define ZPS_TABLE_SEG_MAX (1u << 21) /* home positions a segment may have before it splits */
#define ZPS_TABLE_SPILL   64u        /* entries past a segment's last home */

typedef struct zps_table zps_table_t;

/* New empty table for rows of row_floats floats (>= 1), sized for about
 * capacity_hint keys or 4 MB of entries, whichever is less (it grows from
 * there), with a random hash seed.  Returns NULL on allocation failure.
 * _seed: the same with a given seed (tests that place keys on purpose). */
zps_table_t *zps_table_new(uint32_t row_floats, size_t capacity_hint);
zps_table_t *zps_table_new_seed(uint32_t row_floats, size_t capacity_hint, uint64_t seed);
uint64_t zps_table_seed(const zps_table_t *t);

/* Homes a segment may have before it splits rather than grows (default
 * ZPS_TABLE_SEG_MAX: 32 MB of 16-byte entries; a growth step took 22-23
 * ms on average, 54 ms at worst, here).  Smaller segments make shorter growth steps, but more of the
 * table sits in the 4 KB-page tails of its mappings, which costs lookups
 * at scale (segments of 4-8 MB were 30% slower at 100M keys); tests use
 * small ones to split often. */
void zps_table_set_split(zps_table_t *t, size_t homes);
/* The table will hold at most about `keys` keys (an eviction cap; 0: no
 * limit): a segment then grows to no more than its share of the limit
 * needs at 9/10 load (the share plus 3 standard deviations), rather than
 * 4/3 of its keys, so a table held at its cap sits near 9/10 load instead
 * of wherever the last growth step left it (as low as 3/4).  Keys past the
 * limit still fit: a segment over 9/10 then grows by small steps. */
void zps_table_set_limit(zps_table_t *t, size_t keys);
void zps_table_destroy(zps_table_t **t);

/* Row of key, or NULL if absent.  Never inserts, never moves rows. */
float *zps_table_find(const zps_table_t *t, uint64_t key);

/* Row of key, inserting a zero-filled row if absent (*inserted set to 1 then,
 * else 0; inserted may be NULL).  Returns NULL only on allocation failure.
 * Other rows' pointers are invalid afterwards if it inserted. */
float *zps_table_upsert(zps_table_t *t, uint64_t key, int *inserted);

/* Batched forms: rows[i] for keys[i].  They run the keys through a software
 * pipeline that prefetches each key's entry line well ahead, which hides
 * most of the memory latency of random keys.  find_batch stores NULL for
 * absent keys.  upsert_batch returns 0 with every rows[i] valid (if its
 * inserts moved entries, it looks the batch's rows up again), or
 * ZPS_ENOMEM: some of the keys may have been stored (delete the new ones to
 * undo) and no rows[] is valid.  inserted (may be NULL) gets 1 for new
 * rows. */
void zps_table_find_batch(const zps_table_t *t, const uint64_t *keys, size_t n, float **rows);
/* Start loading the home lines of keys[0..n) (a batch's first stage and
 * nothing else), so that a find_batch of them soon after finds them in
 * cache: a caller that works on one chunk's rows calls it on the next
 * chunk's first keys first, and memory keeps working meanwhile. */
void zps_table_prefetch(const zps_table_t *t, const uint64_t *keys, size_t n);
int zps_table_upsert_batch(zps_table_t *t, const uint64_t *keys, size_t n, float **rows,
                          uint8_t *inserted);

/* Grow ahead for extra more keys spread over the table as hashes spread
 * (a big push's new keys), so that inserting them rarely rebuilds a
 * segment.  0, or ZPS_ENOMEM with the contents unchanged (at once when the
 * estimate, zps_table_bytes_with, passes this machine's memory).  It is a
 * forecast, not a promise: an insert can still need memory (a segment
 * that gets more than its share), and can fail if there is none. */
int zps_table_reserve(zps_table_t *t, size_t extra);

/* What zps_table_bytes would be after extra more keys, estimated as the
 * bytes at the load a grown segment starts at (SIZE_MAX: cannot). */
size_t zps_table_bytes_with(const zps_table_t *t, size_t extra);

/* Delete key: 1 if it was stored, 0 if not.  Never allocates, never fails.
 * Row pointers are invalid afterwards. */
int zps_table_delete(zps_table_t *t, uint64_t key);

size_t zps_table_size(const zps_table_t *t);       /* keys stored */
size_t zps_table_bytes(const zps_table_t *t);      /* bytes allocated (entries, directory) */
size_t zps_table_capacity(const zps_table_t *t);   /* home positions over all segments */
uint32_t zps_table_row_floats(const zps_table_t *t);
uint64_t zps_table_gen(const zps_table_t *t);      /* changes when entries may have moved */

/* Iteration in hash order.  A cursor starts as ZPS_TABLE_CUR_INIT; each
 * call returns 1 and fills key/row (either may be NULL) while keys remain,
 * 0 at the end.  Between calls the table may change: a key present from
 * start to end is visited exactly once, one inserted or deleted meanwhile
 * at most once.  pos is the next hash to visit (0: not started) and done
 * is set once the end was passed, so a cursor can travel as one number
 * plus a flag (the DUMP message does). */
typedef struct {
    uint64_t pos;
    int done;
} zps_table_cur_t;
#define ZPS_TABLE_CUR_INIT {0, 0}

int zps_table_next(const zps_table_t *t, zps_table_cur_t *cur, uint64_t *key, float **row);

/* A stored key chosen by r (any 64-bit value; uniform r gives each key
 * roughly equal odds): 1 with key/row filled, 0 if the table is empty. */
int zps_table_sample(const zps_table_t *t, uint64_t r, uint64_t *key, float **row);

#endif
