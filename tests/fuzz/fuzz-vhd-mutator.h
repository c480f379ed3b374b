/* SPDX-License-Identifier: MIT */
/*
 * Structure-aware mutator for fuzz-vhd (fuzz-mutator.h): finds the footer
 * (at the end, or its copy at offset 0), the dynamic header and the BAT,
 * and changes one of them: BAT entries pointing into the header, the BAT
 * or the footer, at a duplicate or an overlapping block, past the end,
 * 0xFFFFFFFF; a block's sector bitmap; header and footer fields (table
 * offset, entry count, block size, locators, sizes, disk type, creator).
 * Both checksums are resealed and the footer copy at offset 0 kept equal
 * to the end footer, except in one mutation in eight which leaves the two
 * footers disagreeing (each valid).
 */
#ifndef VDK_FUZZ_VHD_MUTATOR_H
#define VDK_FUZZ_VHD_MUTATOR_H

#include "fuzz-mutator.h"

#define FVH_FOOTER 512u
#define FVH_HDR    1024u

static bool fvh_disagree; /* this mutation leaves the two footers differing */

/* Where the footer the driver reads is: the end, else the copy at 0. */
static bool fvh_footer(const struct fmut *m, uint64_t *at)
{
    if (m->size < FVH_FOOTER)
        return false;
    if (memcmp(m->data + m->size - FVH_FOOTER, "conectix", 8) == 0)
        *at = m->size - FVH_FOOTER;
    else if (memcmp(m->data, "conectix", 8) == 0)
        *at = 0;
    else
        return false;
    return true;
}

static void fvh_sum(struct fmut *m, uint64_t at, unsigned len, unsigned field)
{
    if (!fm_in(m, at, len))
        return;
    fm_put(m, at + field, 4, true, 0);
    uint32_t sum = 0;
    for (unsigned i = 0; i < len; i++)
        sum += m->data[at + i];
    fm_put(m, at + field, 4, true, ~sum);
}

static bool fvh_step(struct fmut *m)
{
    uint64_t foot;
    if (!fvh_footer(m, &foot))
        return false;
    uint64_t hdr = fm_get(m, foot + 16, 8, true);
    bool dyn = fm_in(m, hdr, FVH_HDR) && memcmp(m->data + hdr, "cxsparse", 8) == 0;
    uint64_t bat = dyn ? fm_get(m, hdr + 16, 8, true) : 0;
    uint64_t entries = dyn ? fm_get(m, hdr + 28, 4, true) : 0;
    uint64_t span = dyn ? fm_get(m, hdr + 32, 4, true) / 512 + 1 : 1; /* + bitmap */
    static const uint64_t specials[] = { 0xffffffffu, 0 };
    uint64_t hot[] = { 0, hdr, bat, m->size - FVH_FOOTER, m->size };
    struct fm_table t = { .off = bat, .count = entries, .width = 4, .big = true,
                          .unit = 512, .mask = 0xffffffffu, .specials = specials,
                          .nspecials = 2, .hot = hot, .nhot = 5 };
    switch (dyn ? fm_rand(m, 16) : 12 + fm_rand(m, 4)) {
    default: /* 0-7: BAT entries */
        fm_table_mutate(m, &t);
        break;
    case 8: { /* a duplicate run: two entries naming one block, or a block
                 that overlaps the next */
        uint64_t n = fm_table_count(m, &t);
        if (n < 2)
            return false;
        uint64_t i = fm_rand64(m) % (n - 1), v = fm_entry(m, &t, i);
        fm_put(m, bat + 4 * (i + 1), 4, true, fm_rand(m, 2) ? v : v + span - 1);
        break;
    }
    case 9: { /* the sector bitmap of an allocated block */
        uint64_t n = fm_table_count(m, &t);
        uint64_t blk = n ? fm_entry(m, &t, fm_pick(m, &t, n)) * 512 : 0;
        if (!n || !fm_in(m, blk, 512))
            return false;
        if (fm_rand(m, 2))
            m->data[blk + fm_rand(m, 512)] ^= (uint8_t)(1u << fm_rand(m, 8));
        else
            memset(m->data + blk, fm_rand(m, 2) ? 0xff : 0, 512);
        break;
    }
    case 10: case 11: { /* header: offsets, entries, block size, a locator */
        static const struct { unsigned off, width; } f[] = {
            { 8, 8 }, { 16, 8 }, { 24, 4 }, { 28, 4 }, { 32, 4 },
            { 576 + 4, 4 }, { 576 + 8, 4 }, { 576 + 16, 8 }, { 600 + 16, 8 },
        };
        unsigned k = fm_rand(m, sizeof(f) / sizeof(f[0]));
        if (k == 4 && fm_rand(m, 2)) /* a power of two, often a valid one */
            fm_put(m, hdr + 32, 4, true, 1u << (9 + fm_rand(m, 22)));
        else
            fm_field_mutate(m, hdr + f[k].off, f[k].width, true);
        break;
    }
    case 12: case 13: { /* footer: data offset, sizes, geometry, disk type */
        static const struct { unsigned off, width; } f[] = {
            { 16, 8 }, { 40, 8 }, { 48, 8 }, { 56, 2 }, { 58, 1 }, { 59, 1 }, { 60, 4 },
            { 8, 4 }, { 12, 4 },
        };
        unsigned k = fm_rand(m, sizeof(f) / sizeof(f[0]));
        if (k == 6 && fm_rand(m, 2))
            fm_put(m, foot + 60, 4, true, 2 + fm_rand(m, 3));
        else
            fm_field_mutate(m, foot + f[k].off, f[k].width, true);
        break;
    }
    case 14: { /* creator: the size rule follows it */
        static const char *const app[] = { "win ", "qem2", "qemu", "vpc ", "d2v ", "tap\0" };
        memcpy(m->data + foot + 28, app[fm_rand(m, 6)], 4);
        break;
    }
    case 15: /* the two footers differ */
        if (!dyn)
            return false;
        fvh_disagree = true;
        fm_field_mutate(m, (fm_rand(m, 2) ? 0 : m->size - FVH_FOOTER) + 24, 4, true);
        break;
    }
    return true;
}

static void fvh_seal(struct fmut *m)
{
    uint64_t foot;
    if (!fvh_footer(m, &foot))
        return;
    uint64_t end = m->size - FVH_FOOTER;
    /* Keep the copy equal; a file shorter than two footers has no room for
       both (they would overlap: memcpy's arguments must not). */
    if (!fvh_disagree && foot == end && end >= FVH_FOOTER &&
        memcmp(m->data, "conectix", 8) == 0)
        memcpy(m->data, m->data + end, FVH_FOOTER);
    fvh_sum(m, end, FVH_FOOTER, 64);
    if (memcmp(m->data, "conectix", 8) == 0)
        fvh_sum(m, 0, FVH_FOOTER, 64);
    uint64_t hdr = fm_get(m, foot + 16, 8, true);
    if (fm_in(m, hdr, FVH_HDR) && memcmp(m->data + hdr, "cxsparse", 8) == 0)
        fvh_sum(m, hdr, FVH_HDR, 36);
    fvh_disagree = false;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    fvh_disagree = false;
    return fm_run(data, size, max_size, seed, fvh_step, fvh_seal);
}

#endif /* VDK_FUZZ_VHD_MUTATOR_H */
