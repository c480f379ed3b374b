/* SPDX-License-Identifier: MIT */
/*
 * Structure-aware mutators for the VHDX header and log targets
 * (fuzz-mutator.h; little endian).  The targets' inputs are pieces of
 * the file (see fuzz-vhdx-common.h), and the targets reseal checksums in
 * one of their two runs; the mutators reseal too, most of the time, so
 * the as-given run also gets past them.
 *
 * Headers (input = file bytes 64 KiB..320 KiB: the two headers, the two
 * region tables): sequence numbers equal, swapped, one apart, at their
 * maximum; the log GUID set or cleared, the log's version, offset and
 * length (unaligned, onto the headers, past the file, one MiB off); a
 * header copied over the other; a region table's count and entries
 * (offsets and lengths overlapping, duplicated, unknown GUIDs, the
 * required bit).
 *
 * Log (input = log GUID, then the log region): an entry's length, tail,
 * sequence, descriptor count, GUID and file offsets; a descriptor's kind
 * (data or zero), target offset (unaligned, onto the headers and region
 * tables, past the end), lengths and sequence; a data sector's split
 * sequence; an entry copied over another (replayed twice, out of order).
 */
#ifndef VDK_FUZZ_VHDX_MUTATOR_H
#define VDK_FUZZ_VHDX_MUTATOR_H

#include "fuzz-mutator.h"
#include "formats/vhdx/vhdx.h"

#define FVX_MIB (1ull << 20)

/* Reseal a structure that carries its CRC-32C at offset 4. */
static inline void fvx_seal(struct fmut *m, uint64_t at, uint64_t len)
{
    if (fm_in(m, at, (unsigned)len))
        fm_put(m, at + 4, 4, false, vhdx_checksum(m->data + at, len, 4));
}

/* Offsets worth pointing at, in bytes from the start of the file. */
static const uint64_t fvx_hot[] = { 0, 64u << 10, 128u << 10, 192u << 10, 256u << 10,
                                    FVX_MIB, 2 * FVX_MIB, 3 * FVX_MIB, 8 * FVX_MIB };

static inline bool fvx_header_step(struct fmut *m)
{
    if (m->size < (256u << 10) || memcmp(m->data, "head", 4) != 0)
        return false;
    uint64_t h = fm_rand(m, 2) ? 0 : 64u << 10, o = h ? 0 : 64u << 10;
    uint64_t rt = fm_rand(m, 2) ? 128u << 10 : 192u << 10;
    bool header = true;
    switch (fm_rand(m, 12)) {
    case 0: case 1: { /* sequence numbers */
        uint64_t s = fm_get(m, o + 8, 8, false);
        uint64_t v[] = { s, s + 1, s ? s - 1 : 0, 0, ~0ull, 1ull << 63 };
        fm_put(m, h + 8, 8, false, v[fm_rand(m, 6)]);
        break;
    }
    case 2: /* the log GUID: cleared, or set (a log to replay) */
        if (fm_rand(m, 2))
            memset(m->data + h + 48, 0, 16);
        else
            m->data[h + 48 + fm_rand(m, 16)] ^= (uint8_t)(1u << fm_rand(m, 8));
        break;
    case 3: /* log version, version */
        fm_put(m, h + 64 + 2 * fm_rand(m, 2), 2, false, fm_rand(m, 3));
        break;
    case 4: case 5: { /* log length and offset */
        struct fm_table t = { .off = h + 72, .count = 1, .width = 8, .unit = 1, .mask = ~0ull,
                              .file_len = 8 * FVX_MIB, .hot = fvx_hot, .nhot = 9 };
        if (fm_rand(m, 2))
            fm_table_mutate(m, &t);
        else
            fm_field_mutate(m, fm_rand(m, 2) ? h + 68 : h + 72, fm_rand(m, 2) ? 4 : 2, false);
        break;
    }
    case 6: /* one header over the other (same sequence, or the other's) */
        memcpy(m->data + h, m->data + o, 4096);
        break;
    case 7: { /* a region table's count */
        static const uint32_t v[] = { 0, 1, 2, 3, 2047, 2048, 2049, 0xffffffff };
        fm_put(m, rt + 8, 4, false, v[fm_rand(m, 8)]);
        header = false;
        break;
    }
    default: { /* a region entry: offset, length, GUID, required bit */
        uint64_t n = fm_get(m, rt + 8, 4, false);
        uint64_t e = rt + 16 + 32 * (n && n < 2048 ? fm_rand64(m) % n : fm_rand(m, 4));
        uint64_t e2 = rt + 16 + 32 * fm_rand(m, 2);
        header = false;
        switch (fm_rand(m, 5)) {
        case 0: case 1: {
            struct fm_table t = { .off = e + 16, .count = 1, .width = 8, .unit = 1,
                                  .mask = ~0ull, .file_len = 8 * FVX_MIB, .hot = fvx_hot,
                                  .nhot = 9 };
            fm_table_mutate(m, &t);
            break;
        }
        case 2: fm_field_mutate(m, e + 24, 4, false); break;
        case 3: /* another entry's GUID (a duplicate), or an unknown one */
            if (e2 != e && fm_rand(m, 2))
                memcpy(m->data + e, m->data + e2, 16);
            else
                m->data[e + fm_rand(m, 16)] ^= (uint8_t)(1u << fm_rand(m, 8));
            break;
        default: fm_put(m, e + 28, 4, false, fm_get(m, e + 28, 4, false) ^ (fm_rand(m, 2) ? 1 :
                        1u << fm_rand(m, 32)));
            break;
        }
        break;
    }
    }
    if (fm_rand(m, 4)) {
        if (header)
            fvx_seal(m, h, 4096);
        else
            fvx_seal(m, rt, 64u << 10);
    }
    return true;
}

/* A log entry header in the log input (GUID first: entries at 16 +
   4 KiB * k); 0 when none of a few tries finds one. */
static inline uint64_t fvx_entry(struct fmut *m)
{
    uint64_t n = m->size > 16 ? (m->size - 16) / 4096 : 0;
    for (unsigned k = 0; n && k < 16; k++) {
        uint64_t at = 16 + 4096 * (fm_rand64(m) % n);
        if (memcmp(m->data + at, "loge", 4) == 0)
            return at;
    }
    return 0;
}

static inline bool fvx_log_step(struct fmut *m)
{
    uint64_t e = fvx_entry(m);
    if (!e)
        return false;
    uint64_t len = fm_get(m, e + 8, 4, false), seq = fm_get(m, e + 16, 8, false);
    uint64_t nd = fm_get(m, e + 24, 4, false), nd_fit = nd < 126 ? nd : 126;
    uint64_t d = e + 64 + 32 * (nd_fit ? fm_rand64(m) % nd_fit : 0);
    switch (fm_rand(m, 14)) {
    case 0: { /* the entry's length */
        uint64_t v[] = { 0, 4096, len + 4096, len - 4096, len + 1, FVX_MIB, 0xfffff000 };
        fm_put(m, e + 8, 4, false, v[fm_rand(m, 7)]);
        break;
    }
    case 1: /* the tail: another entry, unaligned, past the log */
        fm_put(m, e + 12, 4, false, fm_rand(m, 2) ? 4096 * fm_rand(m, 256) : fm_rand64(m));
        break;
    case 2: { /* the sequence: repeated, one back, a gap, its maximum */
        uint64_t v[] = { seq + 1, seq - 1, seq + 2, 0, ~0ull, seq ^ 1ull << 63 };
        fm_put(m, e + 16, 8, false, v[fm_rand(m, 6)]);
        break;
    }
    case 3: { /* the descriptor count */
        uint64_t v[] = { 0, nd + 1, nd - 1, 126, 127, 0xffffffff };
        fm_put(m, e + 24, 4, false, v[fm_rand(m, 6)]);
        break;
    }
    case 4: /* the entry's GUID against the header's */
        m->data[(fm_rand(m, 2) ? e + 32 : 0) + fm_rand(m, 16)] ^= (uint8_t)(1u << fm_rand(m, 8));
        break;
    case 5: { /* the flushed and last file offsets */
        struct fm_table t = { .off = e + (fm_rand(m, 2) ? 48 : 56), .count = 1, .width = 8,
                              .unit = 1, .mask = ~0ull, .file_len = 8 * FVX_MIB,
                              .hot = fvx_hot, .nhot = 9 };
        fm_table_mutate(m, &t);
        break;
    }
    case 6: /* a descriptor's kind */
        memcpy(m->data + d, fm_rand(m, 3) ? (memcmp(m->data + d, "desc", 4) ? "desc" : "zero")
                                          : "dexc", 4);
        break;
    case 7: case 8: { /* a descriptor's target: unaligned, on metadata, past the end */
        struct fm_table t = { .off = d + 16, .count = 1, .width = 8, .unit = 1, .mask = ~0ull,
                              .file_len = 8 * FVX_MIB, .hot = fvx_hot, .nhot = 9 };
        fm_table_mutate(m, &t);
        break;
    }
    case 9: /* a descriptor's trailing or leading bytes (zero: its length) */
        fm_field_mutate(m, fm_rand(m, 2) ? d + 4 : d + 8, fm_rand(m, 2) ? 4 : 8, false);
        break;
    case 10: /* a descriptor's sequence */
        fm_put(m, d + 24, 8, false, fm_rand(m, 2) ? seq + 1 : fm_get(m, d + 24, 8, false) ^ 1);
        break;
    case 11: { /* a data sector's sequence halves */
        uint64_t s = e + 4096 * (1 + fm_rand64(m) % (len / 4096 > 1 ? len / 4096 - 1 : 1));
        if (!fm_in(m, s, 4096) || memcmp(m->data + s, "data", 4) != 0)
            return false;
        fm_put(m, fm_rand(m, 2) ? s + 4 : s + 4092, 4, false, fm_rand64(m));
        break;
    }
    default: { /* an entry copied over another */
        uint64_t n = (m->size - 16) / 4096, to = 16 + 4096 * (fm_rand64(m) % n);
        uint64_t l = len && len % 4096 == 0 && len <= 64 * 4096 ? len : 4096;
        if (to == e || !fm_in(m, e, (unsigned)l) || !fm_in(m, to, (unsigned)l))
            return false;
        memmove(m->data + to, m->data + e, l);
        return true;
    }
    }
    len = fm_get(m, e + 8, 4, false);
    if (fm_rand(m, 4) && len && len % 4096 == 0)
        fvx_seal(m, e, len);
    return true;
}

#endif /* VDK_FUZZ_VHDX_MUTATOR_H */
