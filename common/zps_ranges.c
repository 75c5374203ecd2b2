/* zps_ranges: the range table (see zps_ranges.h).
 *
 * Wire form, little-endian:
 *   "ZPSR" u32 format (3) u64 version u32 nservers (slots) u32 replicas
 *   u32 home (servers of the default table)
 *   then per range: u8 nrep, nrep x u16 rank, u16 joiner (0xffff: none)
 *   and, with a joiner, u16 donor, u64 cut and u16 out (0xffff: none);
 *   then per server rank: u32 incarnation */
#include "zps_ranges.h"

#include <stdio.h>
#include <string.h>

#include "zps_err.h"

#define S_FORMAT 3u
#define S_HEAD 28u
#define S_JOIN_BYTES 12u

int zps_ranges_init(zps_ranges_t *t, uint32_t nservers, uint32_t replicas)
{
    if (nservers == 0 || nservers > ZPS_RANGES_MAX_SERVERS || replicas == 0 ||
        replicas > ZPS_MAX_REPLICAS)
        return ZPS_EINVAL;
    memset(t, 0, sizeof *t);
    t->version = 1;
    t->nservers = nservers;
    t->home = nservers;
    t->replicas = replicas;
    uint32_t n = replicas < nservers ? replicas : nservers;
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        uint32_t h = zps_range_home(r, nservers);
        t->join[r] = ZPS_NO_RANK;
        t->out[r] = ZPS_NO_RANK;
        t->nrep[r] = (uint8_t)n;
        for (uint32_t i = 0; i < n; i++)
            t->rep[r][i] = (uint16_t)((h + i) % nservers);
    }
    return 0;
}

int zps_ranges_set_slots(zps_ranges_t *t, uint32_t slots)
{
    if (slots < t->nservers || slots > ZPS_RANGES_MAX_SERVERS)
        return ZPS_EINVAL;
    t->nservers = slots;
    return 0;
}

static void s_join_clear(zps_ranges_t *t, uint32_t r)
{
    t->join[r] = ZPS_NO_RANK;
    t->donor[r] = 0;
    t->cut[r] = 0;
    t->out[r] = ZPS_NO_RANK;
}

uint32_t zps_ranges_remove(zps_ranges_t *t, uint32_t rank, uint32_t *lost)
{
    uint32_t changed = 0;
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        uint32_t k = 0;
        for (uint32_t i = 0; i < t->nrep[r]; i++)
            if (t->rep[r][i] != rank)
                t->rep[r][k++] = t->rep[r][i];
        int drop = t->join[r] != ZPS_NO_RANK && (t->join[r] == rank || t->donor[r] == rank);
        if (k != t->nrep[r] || drop) {
            changed++;
            t->nrep[r] = (uint8_t)k;
        }
        if (drop)
            s_join_clear(t, r);
        else if (t->join[r] != ZPS_NO_RANK && t->out[r] == rank)
            t->out[r] = ZPS_NO_RANK; /* the move's out is gone: a plain join now */
    }
    if (changed)
        t->version++;
    if (lost)
        *lost = zps_ranges_lost(t);
    return changed;
}

int zps_ranges_move(zps_ranges_t *t, uint32_t range, uint32_t joiner, uint32_t donor,
                    uint32_t out, uint64_t cut)
{
    if (range >= ZPS_RANGES || joiner >= t->nservers || t->join[range] != ZPS_NO_RANK ||
        zps_ranges_has(t, range, joiner) || !zps_ranges_has(t, range, donor) || cut == 0)
        return ZPS_EINVAL;
    if (out == ZPS_NO_RANK ? t->nrep[range] >= t->replicas
                           : !zps_ranges_has(t, range, out))
        return ZPS_EINVAL;
    if (!zps_ranges_member(t, joiner))
        t->inc[joiner]++;
    t->join[range] = (uint16_t)joiner;
    t->donor[range] = (uint16_t)donor;
    t->cut[range] = cut;
    t->out[range] = (uint16_t)out;
    return 0;
}

int zps_ranges_join(zps_ranges_t *t, uint32_t range, uint32_t joiner, uint32_t donor,
                    uint64_t cut)
{
    return zps_ranges_move(t, range, joiner, donor, ZPS_NO_RANK, cut);
}

int zps_ranges_restore(zps_ranges_t *t, uint32_t range, uint32_t rank)
{
    if (range >= ZPS_RANGES || rank >= t->nservers || t->nrep[range] != 0 ||
        t->join[range] != ZPS_NO_RANK)
        return ZPS_EINVAL;
    t->rep[range][0] = (uint16_t)rank;
    t->nrep[range] = 1;
    return 0;
}

uint32_t zps_ranges_complete(zps_ranges_t *t, uint32_t joiner, uint64_t cut)
{
    uint32_t n = 0;
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        if (t->join[r] != joiner || t->cut[r] != cut)
            continue;
        if (t->out[r] != ZPS_NO_RANK) {
            /* a move: the joiner takes the leaving replica's place */
            for (uint32_t i = 0; i < t->nrep[r]; i++)
                if (t->rep[r][i] == t->out[r])
                    t->rep[r][i] = (uint16_t)joiner;
        } else if (t->nrep[r] >= t->replicas) {
            continue;
        } else if (zps_range_home(r, t->home) == joiner) {
            /* its home: primary again, as in the default table */
            memmove(&t->rep[r][1], &t->rep[r][0], t->nrep[r] * sizeof t->rep[r][0]);
            t->rep[r][0] = (uint16_t)joiner;
            t->nrep[r]++;
        } else {
            t->rep[r][t->nrep[r]++] = (uint16_t)joiner;
        }
        s_join_clear(t, r);
        n++;
    }
    if (n)
        t->version++;
    return n;
}

uint32_t zps_ranges_lost(const zps_ranges_t *t)
{
    uint32_t n = 0;
    for (uint32_t r = 0; r < ZPS_RANGES; r++)
        n += t->nrep[r] == 0;
    return n;
}

uint32_t zps_ranges_count(const zps_ranges_t *t, uint32_t rank, uint32_t *primary)
{
    uint32_t n = 0, p = 0;
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        n += (uint32_t)zps_ranges_has(t, r, rank);
        p += t->nrep[r] && t->rep[r][0] == rank;
    }
    if (primary)
        *primary = p;
    return n;
}

int zps_ranges_member(const zps_ranges_t *t, uint32_t rank)
{
    for (uint32_t r = 0; r < ZPS_RANGES; r++)
        if (zps_ranges_takes(t, r, rank))
            return 1;
    return 0;
}

static void s_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void s_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t s_get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t s_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

size_t zps_ranges_encoded_size(const zps_ranges_t *t)
{
    size_t n = S_HEAD + 3u * ZPS_RANGES + 4u * t->nservers;
    for (uint32_t r = 0; r < ZPS_RANGES; r++)
        n += 2u * t->nrep[r] + (t->join[r] != ZPS_NO_RANK ? S_JOIN_BYTES : 0u);
    return n;
}

size_t zps_ranges_encode(const zps_ranges_t *t, uint8_t *buf, size_t cap)
{
    size_t need = zps_ranges_encoded_size(t);
    if (cap < need)
        return 0;
    memcpy(buf, "ZPSR", 4);
    s_put32(buf + 4, S_FORMAT);
    s_put64(buf + 8, t->version);
    s_put32(buf + 16, t->nservers);
    s_put32(buf + 20, t->replicas);
    s_put32(buf + 24, t->home);
    uint8_t *p = buf + S_HEAD;
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        *p++ = t->nrep[r];
        for (uint32_t i = 0; i < t->nrep[r]; i++, p += 2) {
            p[0] = (uint8_t)t->rep[r][i];
            p[1] = (uint8_t)(t->rep[r][i] >> 8);
        }
        p[0] = (uint8_t)t->join[r];
        p[1] = (uint8_t)(t->join[r] >> 8);
        p += 2;
        if (t->join[r] != ZPS_NO_RANK) {
            p[0] = (uint8_t)t->donor[r];
            p[1] = (uint8_t)(t->donor[r] >> 8);
            s_put64(p + 2, t->cut[r]);
            p[10] = (uint8_t)t->out[r];
            p[11] = (uint8_t)(t->out[r] >> 8);
            p += S_JOIN_BYTES;
        }
    }
    for (uint32_t s = 0; s < t->nservers; s++, p += 4)
        s_put32(p, t->inc[s]);
    return need;
}

int zps_ranges_decode(zps_ranges_t *out, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    zps_ranges_t tmp;
    if (len < S_HEAD || memcmp(buf, "ZPSR", 4) != 0) {
        snprintf(err, errlen, "range table: %zu bytes, not a range table", len);
        return ZPS_EPROTO;
    }
    if (s_get32(buf + 4) != S_FORMAT) {
        snprintf(err, errlen, "range table: format %u (this build reads %u)", s_get32(buf + 4),
                 S_FORMAT);
        return ZPS_EPROTO;
    }
    memset(&tmp, 0, sizeof tmp);
    tmp.version = s_get64(buf + 8);
    tmp.nservers = s_get32(buf + 16);
    tmp.replicas = s_get32(buf + 20);
    tmp.home = s_get32(buf + 24);
    if (tmp.version == 0 || tmp.nservers == 0 || tmp.nservers > ZPS_RANGES_MAX_SERVERS ||
        tmp.replicas == 0 || tmp.replicas > ZPS_MAX_REPLICAS || tmp.home == 0 ||
        tmp.home > tmp.nservers) {
        snprintf(err, errlen, "range table: version %llu, %u servers (%u at first), %u replicas "
                 "is invalid", (unsigned long long)tmp.version, tmp.nservers, tmp.home,
                 tmp.replicas);
        return ZPS_EPROTO;
    }
    const uint8_t *p = buf + S_HEAD, *end = buf + len;
    for (uint32_t r = 0; r < ZPS_RANGES; r++) {
        if (p >= end) {
            snprintf(err, errlen, "range table: truncated at range %u", r);
            return ZPS_EPROTO;
        }
        uint32_t n = *p++;
        if (n > tmp.replicas || (size_t)(end - p) < 2u * n) {
            snprintf(err, errlen, "range table: range %u has %u replicas (of %u) or is truncated",
                     r, n, tmp.replicas);
            return ZPS_EPROTO;
        }
        for (uint32_t i = 0; i < n; i++, p += 2) {
            uint32_t rank = (uint32_t)p[0] | (uint32_t)p[1] << 8;
            if (rank >= tmp.nservers || zps_ranges_has(&tmp, r, rank)) {
                snprintf(err, errlen, "range table: range %u names server %u %s", r, rank,
                         rank >= tmp.nservers ? "beyond the servers" : "twice");
                return ZPS_EPROTO;
            }
            tmp.rep[r][i] = (uint16_t)rank;
            tmp.nrep[r] = (uint8_t)(i + 1);
        }
        if ((size_t)(end - p) < 2) {
            snprintf(err, errlen, "range table: truncated at range %u", r);
            return ZPS_EPROTO;
        }
        uint32_t j = (uint32_t)p[0] | (uint32_t)p[1] << 8;
        p += 2;
        tmp.join[r] = (uint16_t)j;
        tmp.out[r] = ZPS_NO_RANK;
        if (j != ZPS_NO_RANK) {
            if ((size_t)(end - p) < S_JOIN_BYTES) {
                snprintf(err, errlen, "range table: truncated at range %u", r);
                return ZPS_EPROTO;
            }
            uint32_t d = (uint32_t)p[0] | (uint32_t)p[1] << 8;
            uint64_t cut = s_get64(p + 2);
            uint32_t o = (uint32_t)p[10] | (uint32_t)p[11] << 8;
            p += S_JOIN_BYTES;
            if (j >= tmp.nservers || zps_ranges_has(&tmp, r, j) || !zps_ranges_has(&tmp, r, d) ||
                cut == 0 || cut > tmp.version ||
                (o == ZPS_NO_RANK ? n >= tmp.replicas : !zps_ranges_has(&tmp, r, o))) {
                snprintf(err, errlen, "range table: range %u has an invalid join (server %u from "
                         "%u at version %llu)", r, j, d, (unsigned long long)cut);
                return ZPS_EPROTO;
            }
            tmp.donor[r] = (uint16_t)d;
            tmp.cut[r] = cut;
            tmp.out[r] = (uint16_t)o;
        }
    }
    if ((size_t)(end - p) < 4u * tmp.nservers) {
        snprintf(err, errlen, "range table: truncated in the incarnations");
        return ZPS_EPROTO;
    }
    for (uint32_t s = 0; s < tmp.nservers; s++, p += 4)
        tmp.inc[s] = s_get32(p);
    if (p != end) {
        snprintf(err, errlen, "range table: %zu bytes after the last range", (size_t)(end - p));
        return ZPS_EPROTO;
    }
    *out = tmp;
    return 0;
}
