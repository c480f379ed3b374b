/* SPDX-License-Identifier: MIT */
/*
 * Structure-aware mutators for fuzz-bootimg-ext4 and fuzz-bootimg-vfat
 * (fuzz-mutator.h; both little endian).  Each target's mutator calls its
 * step; the other stays unused (static inline).
 *
 * ext4: the superblock's geometry and feature fields; group descriptor
 * 0's bitmaps and inode table; an inode of the first few (the root
 * directory among them): its mode, size, flags (extents, inline data),
 * extent header (entries over the maximum, depth) and extent entries
 * (past the end, onto the superblock, length 0 or uninitialised, a block
 * another extent has); a directory entry of the root (record length 0,
 * past its block, a name longer than its record, the inode of itself).
 *
 * vfat: the boot sector's geometry; a FAT entry (free, reserved, bad,
 * end of chain, a loop, past the last cluster); a root directory entry
 * (attributes, first cluster, size, deleted and end markers, dot names,
 * a long-name entry's order and checksum).
 */
#ifndef VDK_FUZZ_BOOTIMG_FS_MUTATOR_H
#define VDK_FUZZ_BOOTIMG_FS_MUTATOR_H

#include "fuzz-mutator.h"

static const uint64_t ffs_edge[] = { 0, 1, 2, 3, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000,
                                     0xffff, 0x10000, 0x7fffffff, 0xffffffff };
#define FFS_NEDGE (sizeof(ffs_edge) / sizeof(ffs_edge[0]))

static inline void ffs_field(struct fmut *m, uint64_t off, unsigned width)
{
    if (fm_rand(m, 2))
        fm_put(m, off, width, false, ffs_edge[fm_rand(m, FFS_NEDGE)]);
    else
        fm_field_mutate(m, off, width, false);
}

/* ---- ext4 ---- */

struct ffs_ext4 {
    uint64_t bs, isz, itable, gd;
};

static inline bool ffs_ext4_geo(const struct fmut *m, struct ffs_ext4 *g)
{
    if (m->size < 2048 || fm_get(m, 1024 + 56, 2, false) != 0xef53)
        return false;
    unsigned lbs = (unsigned)fm_get(m, 1024 + 24, 4, false);
    if (lbs > 6)
        return false;
    g->bs = 1024ull << lbs;
    g->isz = fm_get(m, 1024 + 76, 4, false) ? fm_get(m, 1024 + 88, 2, false) : 128;
    g->gd = (fm_get(m, 1024 + 20, 4, false) + 1) * g->bs;
    g->itable = fm_get(m, g->gd + 8, 4, false) * g->bs;
    return g->isz >= 128;
}

/* The first data block of the root directory (extents or block map). */
static inline uint64_t ffs_ext4_rootdir(const struct fmut *m, const struct ffs_ext4 *g)
{
    uint64_t ino = g->itable + g->isz; /* inode 2 */
    if (!fm_in(m, ino, 100))
        return 0;
    uint64_t blk = fm_get(m, ino + 40, 2, false) == 0xf30a && !fm_get(m, ino + 46, 2, false)
                       ? fm_get(m, ino + 40 + 12 + 8, 4, false) |
                         fm_get(m, ino + 40 + 12 + 6, 2, false) << 32
                       : fm_get(m, ino + 40, 4, false);
    return blk * g->bs;
}

static inline bool ffs_ext4_step(struct fmut *m)
{
    struct ffs_ext4 g;
    if (!ffs_ext4_geo(m, &g))
        return false;
    uint64_t ino = g.itable + g.isz * fm_rand(m, 12);
    switch (fm_rand(m, 12)) {
    case 0: case 1: { /* superblock geometry and features */
        static const struct { unsigned off, width; } f[] = {
            { 0, 4 }, { 4, 4 }, { 20, 4 }, { 24, 4 }, { 32, 4 }, { 40, 4 }, { 76, 4 },
            { 84, 4 }, { 88, 2 }, { 92, 4 }, { 96, 4 }, { 100, 4 }, { 254, 2 }, { 336, 4 },
        };
        unsigned k = fm_rand(m, sizeof(f) / sizeof(f[0]));
        if (f[k].off >= 92 && f[k].off <= 100 && fm_rand(m, 2)) /* one feature bit */
            fm_put(m, 1024 + f[k].off, 4, false,
                   fm_get(m, 1024 + f[k].off, 4, false) ^ 1u << fm_rand(m, 20));
        else
            ffs_field(m, 1024 + f[k].off, f[k].width);
        return true;
    }
    case 2: { /* group descriptor 0: bitmaps, inode table */
        uint64_t hot[] = { 0, 1024, g.gd, g.itable, m->size };
        struct fm_table t = { .off = g.gd + 4 * fm_rand(m, 3), .count = 1, .width = 4,
                              .unit = g.bs, .mask = 0xffffffff, .hot = hot, .nhot = 5 };
        fm_table_mutate(m, &t);
        return true;
    }
    case 3: /* an inode's mode: another file type */
        fm_put(m, ino, 2, false, (fm_get(m, ino, 2, false) & 0xfff) |
               (uint64_t)(fm_rand(m, 16) << 12));
        return true;
    case 4: /* its size */
        ffs_field(m, ino + (fm_rand(m, 2) ? 4 : 108), 4);
        return true;
    case 5: /* its flags: extents, inline data, index, a random one */
        fm_put(m, ino + 32, 4, false, fm_get(m, ino + 32, 4, false) ^
               (fm_rand(m, 2) ? (fm_rand(m, 2) ? 0x80000u : 0x10000000u) : 1u << fm_rand(m, 32)));
        return true;
    case 6: { /* its extent header: entries, maximum, depth */
        if (fm_get(m, ino + 40, 2, false) != 0xf30a)
            return false;
        static const uint64_t v[] = { 0, 1, 4, 5, 6, 0xffff };
        fm_put(m, ino + 42 + 2 * fm_rand(m, 3), 2, false, v[fm_rand(m, 6)]);
        return true;
    }
    case 7: case 8: { /* an extent (or an index entry) */
        if (fm_get(m, ino + 40, 2, false) != 0xf30a)
            return false;
        uint64_t e = ino + 52 + 12 * fm_rand(m, 4), hot[] = { 0, 1024, g.gd, g.itable };
        switch (fm_rand(m, 4)) {
        case 0: { /* start: past the end, on metadata */
            struct fm_table t = { .off = e + 8, .count = 1, .width = 4, .unit = g.bs,
                                  .mask = 0xffffffff, .hot = hot, .nhot = 4 };
            fm_table_mutate(m, &t);
            break;
        }
        case 1: { /* length: 0, the maximum, uninitialised */
            static const uint64_t v[] = { 0, 1, 32768, 32769, 0xffff };
            fm_put(m, e + 4, 2, false, v[fm_rand(m, 5)]);
            break;
        }
        case 2: /* logical block: overlapping the previous extent */
            fm_put(m, e, 4, false, fm_rand(m, 2) ? 0 : fm_get(m, e, 4, false) + 1);
            break;
        default: /* start high bits */
            fm_put(m, e + 6, 2, false, fm_rand(m, 2) ? 1 : 0xffff);
            break;
        }
        return true;
    }
    default: { /* a root directory entry */
        uint64_t d = ffs_ext4_rootdir(m, &g), at = d;
        if (!d || !fm_in(m, d, 12))
            return false;
        for (unsigned k = fm_rand(m, 8); k && fm_in(m, at, 12); k--) {
            uint64_t rl = fm_get(m, at, 4, false) ? fm_get(m, at + 4, 2, false) : 0;
            if (rl < 12 || at + rl >= d + g.bs)
                break;
            at += rl;
        }
        switch (fm_rand(m, 4)) {
        case 0: { /* record length */
            uint64_t v[] = { 0, 1, 8, 12, g.bs, g.bs + 4, 0xffff };
            fm_put(m, at + 4, 2, false, v[fm_rand(m, 7)]);
            break;
        }
        case 1: /* name length past the record */
            m->data[at + 6] = fm_rand(m, 2) ? 255 : (uint8_t)(fm_get(m, at + 4, 2, false) - 7);
            break;
        case 2: /* the inode: none, the root, past the count */
            fm_put(m, at, 4, false, fm_rand(m, 3) ? fm_rand(m, 3) : 0xffffffff);
            break;
        default: /* file type */
            m->data[at + 7] = (uint8_t)fm_rand(m, 9);
            break;
        }
        return true;
    }
    }
}

/* ---- vfat ---- */

static inline bool ffs_vfat_step(struct fmut *m)
{
    if (m->size < 1024 || fm_get(m, 510, 2, false) != 0xaa55)
        return false;
    uint64_t bps = fm_get(m, 11, 2, false), spc = m->data[13];
    uint64_t rsvd = fm_get(m, 14, 2, false), nfats = m->data[16];
    uint64_t fatsz = fm_get(m, 22, 2, false) ? fm_get(m, 22, 2, false) : fm_get(m, 36, 4, false);
    bool fat32 = !fm_get(m, 22, 2, false);
    if (bps < 512 || bps > 4096 || !spc || !nfats)
        return false;
    uint64_t fat = rsvd * bps, root_ents = fm_get(m, 17, 2, false);
    uint64_t data = fat + nfats * fatsz * bps + (root_ents * 32 + bps - 1) / bps * bps;
    uint64_t root = fat32 ? data + (fm_get(m, 44, 4, false) - 2) * spc * bps
                          : fat + nfats * fatsz * bps;
    switch (fm_rand(m, 10)) {
    case 0: case 1: { /* boot sector geometry */
        static const struct { unsigned off, width; } f[] = {
            { 11, 2 }, { 13, 1 }, { 14, 2 }, { 16, 1 }, { 17, 2 }, { 19, 2 }, { 22, 2 },
            { 32, 4 }, { 36, 4 }, { 44, 4 },
        };
        unsigned k = fm_rand(m, sizeof(f) / sizeof(f[0]));
        ffs_field(m, f[k].off, f[k].width);
        return true;
    }
    case 2: case 3: case 4: { /* a FAT entry (FAT16 and FAT32; FAT12 packs them) */
        unsigned w = fat32 ? 4 : 2;
        uint64_t n = fatsz * bps / w, i = 2 + fm_rand64(m) % (n > 66 ? 64 : (n > 2 ? n - 2 : 1));
        uint64_t eoc = fat32 ? 0x0ffffff8 : 0xfff8, bad = fat32 ? 0x0ffffff7 : 0xfff7;
        uint64_t v[] = { 0, 1, i, i + 1, i - 1, eoc, bad, n, n + 1, fat32 ? 0xffffffff : 0xffff };
        fm_put(m, fat + w * i, w, false, v[fm_rand(m, 10)]);
        return true;
    }
    default: { /* a root directory entry */
        uint64_t e = root + 32 * fm_rand(m, 16);
        if (!fm_in(m, e, 32))
            return false;
        switch (fm_rand(m, 6)) {
        case 0: { /* attributes: directory, long name, volume label, archive */
            static const uint8_t v[] = { 0x10, 0x0f, 0x08, 0x20, 0x00, 0xff, 0x18 };
            m->data[e + 11] = v[fm_rand(m, 7)];
            break;
        }
        case 1: case 2: { /* first cluster: none, the root (a loop), past the end */
            static const uint64_t v[] = { 0, 1, 2, 3, 0xfff7, 0xffff, 0x0ffffff8 };
            uint64_t c = fm_rand(m, 2) ? v[fm_rand(m, 7)] : fm_rand64(m);
            fm_put(m, e + 26, 2, false, c & 0xffff);
            if (fat32)
                fm_put(m, e + 20, 2, false, c >> 16 & 0xffff);
            break;
        }
        case 3: /* size */
            ffs_field(m, e + 28, 4);
            break;
        case 4: { /* the name: deleted, end, dot entries, the 0x05 escape */
            static const char *const v[] = { "\xe5", "", ".          ", "..         ", "\x05",
                                             "VMLINUZ    ", "LOADER     " };
            const char *s = v[fm_rand(m, 7)];
            memcpy(m->data + e, s, strlen(s) ? strlen(s) : 1);
            break;
        }
        default: /* a long-name entry: order, checksum */
            m->data[e + 11] = 0x0f;
            m->data[e + (fm_rand(m, 2) ? 0 : 13)] = (uint8_t)fm_rand(m, 256);
            break;
        }
        return true;
    }
    }
}

#endif /* VDK_FUZZ_BOOTIMG_FS_MUTATOR_H */
