/* SPDX-License-Identifier: MIT */
/*
 * Structure-aware mutator for the qcow2 table targets (fuzz-mutator.h):
 * finds the L1 table, an L2 table one of its entries names, the refcount
 * table and a refcount block, the snapshot table and the header fields
 * that describe them, and changes one of them: entries pointing at other
 * tables, at a duplicate or an overlapping cluster, past the end, off by
 * a sector; the COPIED, COMPRESSED and ZERO flags (the ZERO flag of a
 * version 2 image is reserved); reserved bits; extended L2 bitmaps with
 * both bits of a subcluster; refcounts of 0, 1 and their maximum;
 * compressed cluster descriptors and the streams they name.  qcow2
 * has no checksums, so nothing is resealed.
 */
#ifndef VDK_FUZZ_QCOW2_MUTATOR_H
#define VDK_FUZZ_QCOW2_MUTATOR_H

#include "fuzz-mutator.h"

#define FQ_OFFSET_MASK 0x00fffffffffffe00ull /* L1/L2 offset bits, in sectors */

struct fq_hdr {
    unsigned version, cluster_bits, refcount_bits;
    uint64_t cs, l1_off, l1_size, rt_off, rt_size, sn_off, nb_sn;
    bool ext_l2;
};

static bool fq_header(const struct fmut *m, struct fq_hdr *h)
{
    if (m->size < 104 || memcmp(m->data, "QFI\xfb", 4) != 0)
        return false;
    h->version = (unsigned)fm_get(m, 4, 4, true);
    h->cluster_bits = (unsigned)fm_get(m, 20, 4, true);
    if ((h->version != 2 && h->version != 3) || h->cluster_bits < 9 || h->cluster_bits > 21)
        return false;
    h->cs = 1ull << h->cluster_bits;
    h->l1_size = fm_get(m, 36, 4, true);
    h->l1_off = fm_get(m, 40, 8, true);
    h->rt_off = fm_get(m, 48, 8, true);
    h->rt_size = fm_get(m, 56, 4, true) * h->cs / 8;
    h->nb_sn = fm_get(m, 60, 4, true);
    h->sn_off = fm_get(m, 64, 8, true);
    unsigned order = h->version == 3 ? (unsigned)fm_get(m, 96, 4, true) : 4;
    h->refcount_bits = order <= 6 ? 1u << order : 16;
    h->ext_l2 = h->version == 3 && (fm_get(m, 72, 8, true) & (1u << 4));
    return true;
}

/* A table whose entries hold byte offsets (low 9 bits: flags or reserved). */
static struct fm_table fq_table(const struct fq_hdr *h, uint64_t off, uint64_t count,
                                uint64_t mask, uint64_t flags, const uint64_t *hot,
                                unsigned nhot)
{
    static const uint64_t specials[] = { 0, 1, 1ull << 63, 1ull << 62 };
    (void)h;
    return (struct fm_table){ .off = off, .count = count, .width = 8, .big = true,
                              .unit = 512, .mask = mask, .shift = 9, .flags = flags,
                              .specials = specials, .nspecials = 4, .hot = hot,
                              .nhot = nhot };
}

/* An offset one of t's entries names, inside the input; 0 when none. */
static uint64_t fq_named(struct fmut *m, const struct fm_table *t, uint64_t mask)
{
    uint64_t n = fm_table_count(m, t);
    for (unsigned k = 0; n && k < 8; k++) {
        uint64_t o = fm_entry(m, t, fm_rand64(m) % n) & mask;
        if (o && o < m->size)
            return o;
    }
    return 0;
}

/*
 * A compressed cluster descriptor in the L2 table at l2_off (a data
 * cluster's entry becomes one when the table has none), or the deflate or
 * zstd stream one names.  A descriptor is a host byte offset in bits 0 to
 * x - 1 and the count of further 512-byte sectors in bits x to 61, x = 62
 * - (cluster_bits - 8): streams that run past the end, start inside a
 * sector or on metadata, claim no or every sector; COPIED set (invalid);
 * COMPRESSED cleared; and damage inside the stream itself.
 */
static bool fq_compressed(struct fmut *m, const struct fq_hdr *h, uint64_t l2_off,
                          const uint64_t *hot, unsigned nhot)
{
    unsigned stride = h->ext_l2 ? 16 : 8, x = 62 - (h->cluster_bits - 8);
    uint64_t n = h->cs / stride, at = 0, v = 0;
    uint64_t omask = (1ull << x) - 1, smask = (1ull << (h->cluster_bits - 8)) - 1;
    if (!l2_off || !fm_in(m, l2_off, 8))
        return false;
    for (unsigned k = 0; k < 32 && !(v >> 62 & 1); k++) {
        at = l2_off + stride * (fm_rand64(m) % n);
        v = fm_get(m, at, 8, true);
    }
    if (!fm_in(m, at, 8))
        return false;
    if (!(v >> 62 & 1)) { /* make one: the cluster's data as a stream */
        uint64_t host = v & FQ_OFFSET_MASK;
        if (!host)
            return false;
        fm_put(m, at, 8, true, 1ull << 62 | (fm_rand64(m) & smask) << x | (host & omask));
        return true;
    }
    uint64_t host = v & omask, ns = v >> x & smask;
    switch (fm_rand(m, 12)) {
    case 0: ns = 0; break;
    case 1: ns = smask; break;
    case 2: ns = (ns + (fm_rand(m, 2) ? 1 : smask)) & smask; break;
    case 3: host = m->size - 1 - fm_rand(m, m->size < 512 ? (unsigned)m->size : 512); break;
    case 4: host = m->size + fm_rand(m, 4096); break;
    case 5: host = hot[fm_rand(m, nhot)]; break;
    case 6: host ^= 1ull << fm_rand(m, 12); break;
    case 7: v |= 1ull << 63; break;
    case 8: v &= ~(1ull << 62); break;
    default: { /* the stream: a bit, its first (block header) byte, its tail */
        uint64_t len = (ns + 1) * 512 - (host & 511);
        if (!fm_in(m, host, 1))
            return false;
        if (len > m->size - host)
            len = m->size - host;
        uint64_t p = fm_rand64(m) % len;
        switch (fm_rand(m, 3)) {
        case 0: m->data[host + p] ^= (uint8_t)(1u << fm_rand(m, 8)); break;
        case 1: m->data[host] = (uint8_t)fm_rand(m, 256); break;
        default: memset(m->data + host + p, fm_rand(m, 2) ? 0 : 0xff, len - p); break;
        }
        return true;
    }
    }
    fm_put(m, at, 8, true, (v & ~(omask | smask << x)) | (host & omask) | (ns & smask) << x);
    return true;
}

static bool fq_step(struct fmut *m)
{
    struct fq_hdr h;
    if (!fq_header(m, &h))
        return false;
    uint64_t hot[6] = { 0, h.l1_off, h.rt_off, h.sn_off, 0, m->size };
    /* L1: bit 63 COPIED; L2: 63 COPIED, 62 COMPRESSED, 0 ZERO (reserved
       in version 2, so left to the reserved-bit choice there). */
    struct fm_table l1 = fq_table(&h, h.l1_off, h.l1_size, FQ_OFFSET_MASK, 1ull << 63, hot, 6);
    struct fm_table rt = fq_table(&h, h.rt_off, h.rt_size, ~0x1ffull, 0, hot, 6);
    uint64_t l2_off = fq_named(m, &l1, FQ_OFFSET_MASK);
    uint64_t rb_off = fq_named(m, &rt, ~0x1ffull);
    hot[4] = l2_off ? l2_off : rb_off;
    switch (fm_rand(m, 22)) {
    case 0: case 1: case 2:
        fm_table_mutate(m, &l1);
        break;
    case 3: case 4: case 5: case 6: case 7: case 8: { /* L2 entries */
        if (!l2_off)
            return false;
        uint64_t fl = (1ull << 63) | (1ull << 62) | (h.version == 3 ? 1 : 0);
        struct fm_table l2 = fq_table(&h, l2_off, h.cs / 8, FQ_OFFSET_MASK, fl, hot, 6);
        if (h.ext_l2) /* entry, bitmap pairs */
            l2.stride = 16, l2.count = h.cs / 16;
        fm_table_mutate(m, &l2);
        break;
    }
    case 9: /* an extended L2 bitmap (alloc bits 0-31, zero bits 32-63) */
        if (!l2_off || !h.ext_l2)
            return false;
        {
            uint64_t at = l2_off + 16 * fm_rand(m, (unsigned)(h.cs / 16)) + 8;
            uint64_t b = fm_get(m, at, 8, true);
            unsigned sc = fm_rand(m, 32);
            switch (fm_rand(m, 3)) {
            case 0: b |= 1ull << sc | 1ull << (sc + 32); break; /* both: invalid */
            case 1: b ^= 1ull << fm_rand(m, 64); break;
            default: b = fm_rand(m, 2) ? ~0ull : 0xffffffffull; break;
            }
            fm_put(m, at, 8, true, b);
        }
        break;
    case 10: case 11: case 12:
        fm_table_mutate(m, &rt);
        break;
    case 13: case 14: { /* a refcount */
        if (!rb_off)
            return false;
        unsigned bits = h.refcount_bits, width = bits >= 8 ? bits / 8 : 1;
        uint64_t i = fm_rand64(m) % (h.cs * 8 / (bits >= 8 ? bits : 8));
        uint64_t max = bits >= 64 ? ~0ull : (1ull << (bits >= 8 ? bits : 8)) - 1;
        static const uint64_t v[] = { 0, 1, 2 };
        if (fm_rand(m, 3))
            fm_put(m, rb_off + i * width, width, true, fm_rand(m, 2) ? v[fm_rand(m, 3)] : max);
        else
            fm_field_mutate(m, rb_off + i * width, width, true);
        break;
    }
    case 15: case 16: { /* header fields that place and size the tables */
        static const struct { unsigned off, width; } f[] = {
            { 24, 8 }, { 36, 4 }, { 40, 8 }, { 48, 8 }, { 56, 4 }, { 60, 4 }, { 64, 8 },
            { 96, 4 }, { 20, 4 },
        };
        unsigned k = fm_rand(m, sizeof(f) / sizeof(f[0]));
        fm_field_mutate(m, f[k].off, f[k].width, true);
        break;
    }
    case 17: /* the version (v3 images relabelled v2) and feature bits */
        if (fm_rand(m, 2))
            fm_put(m, 4, 4, true, h.version == 3 ? 2 : 3);
        else
            fm_put(m, 72 + 8 * fm_rand(m, 3), 8, true,
                   fm_get(m, 72, 8, true) ^ 1ull << fm_rand(m, 6));
        break;
    case 18: case 19:
        return fq_compressed(m, &h, l2_off, hot, 6);
    default: { /* a snapshot table entry: L1 offset and size, extra data size */
        if (!h.nb_sn || h.sn_off >= m->size)
            return false;
        uint64_t at = h.sn_off;
        for (unsigned i = fm_rand(m, (unsigned)(h.nb_sn < 8 ? h.nb_sn : 8)); i; i--) {
            uint64_t len = 40 + fm_get(m, at + 36, 4, true) + fm_get(m, at + 12, 2, true) +
                           fm_get(m, at + 14, 2, true);
            at += (len + 7) & ~7ull;
        }
        static const struct { unsigned off, width; } f[] = {
            { 0, 8 }, { 8, 4 }, { 12, 2 }, { 14, 2 }, { 32, 4 }, { 36, 4 },
        };
        unsigned k = fm_rand(m, sizeof(f) / sizeof(f[0]));
        if (k == 0 && fm_rand(m, 2)) {
            struct fm_table sn = fq_table(&h, at, 1, FQ_OFFSET_MASK, 0, hot, 6);
            fm_table_mutate(m, &sn);
        } else {
            fm_field_mutate(m, at + f[k].off, f[k].width, true);
        }
        break;
    }
    }
    return true;
}

#ifndef FQ_CUSTOM_MUTATOR /* a target's own mutator builds on fq_step */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    return fm_run(data, size, max_size, seed, fq_step, NULL);
}
#endif

#endif /* VDK_FUZZ_QCOW2_MUTATOR_H */
