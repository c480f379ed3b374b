/* SPDX-License-Identifier: MIT */
/*
 * ext2/3/4, read-only (the kernel's Documentation/filesystems/ext4 layout):
 * superblock at byte 1024, group descriptors after it (32 bytes, or
 * s_desc_size with 64bit), inodes in per-group tables, file data through
 * an extent tree (depth at most 5, each level's depth checked, so a tree
 * cannot loop) or ext2/3 direct and 1-3 level indirect blocks.
 * Directories are read as linear blocks: htree index blocks look like
 * empty entries there.  A journal needing recovery is read as it is.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "guest-boot/mem.h"
#include "guest-boot/image/image.h"

#define EXT4_MAGIC 0xef53
#define EXT4_SB_OFF 1024

#define INCOMPAT_FILETYPE 0x2u
#define INCOMPAT_RECOVER 0x4u
#define INCOMPAT_JOURNAL_DEV 0x8u
#define INCOMPAT_META_BG 0x10u
#define INCOMPAT_EXTENTS 0x40u
#define INCOMPAT_64BIT 0x80u
#define INCOMPAT_OK (INCOMPAT_FILETYPE | INCOMPAT_RECOVER | INCOMPAT_EXTENTS | \
                     INCOMPAT_64BIT | 0x100u /* mmp */ | 0x200u /* flex_bg */ | \
                     0x400u /* ea_inode */ | 0x2000u /* csum_seed */ | \
                     0x4000u /* largedir */ | 0x8000u /* inline_data */ | \
                     0x10000u /* encrypt */ | 0x20000u /* casefold */)

#define FL_ENCRYPT 0x800u
#define FL_EXTENTS 0x80000u
#define FL_INLINE 0x10000000u

#define EXT_MAGIC 0xf30a
#define EXT_DEPTH_MAX 5
#define DIR_MAX (64ull << 20)   /* bytes of one directory we read */
#define CACHE_N 8               /* metadata blocks kept */
#define READ_CHUNK (1u << 20)

struct ext4 {
    struct img_fs fs;
    uint32_t bs;
    uint64_t blocks;
    uint32_t inodes, ipg, ngroups, first_data;
    uint32_t inode_size, desc_size;
    bool filetype, is64;
    uint64_t cache_blk[CACHE_N];
    uint8_t *cache[CACHE_N];
    unsigned cache_next;
};

/* Inode fields (offsets into the raw inode kept in img_file.priv). */
static uint16_t i_mode(const struct img_file *f) { return get_le16(f->priv); }
static uint32_t i_flags(const struct img_file *f) { return get_le32(f->priv + 0x20); }
static const uint8_t *i_block(const struct img_file *f) { return f->priv + 0x28; }

static int damaged(struct vdk_error **errp, const char *what, uint64_t n)
{
    return vdk_error_setf(errp, EINVAL, "ext4: %s %llu is damaged", what,
                          (unsigned long long)n);
}

/* A metadata block through the small cache (valid until CACHE_N more). */
static int meta_block(struct ext4 *e, uint64_t blk, const uint8_t **out,
                      struct vdk_error **errp)
{
    for (int i = 0; i < CACHE_N; i++)
        if (e->cache[i] && e->cache_blk[i] == blk) {
            *out = e->cache[i];
            return 0;
        }
    if (blk == 0 || blk >= e->blocks)
        return vdk_error_setf(errp, EINVAL, "ext4: block %llu lies outside "
                              "the filesystem", (unsigned long long)blk);
    unsigned i = e->cache_next++ % CACHE_N;
    if (!e->cache[i] && !(e->cache[i] = malloc(e->bs)))
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    e->cache_blk[i] = UINT64_MAX;
    if (img_vol_read(&e->fs.vol, e->cache[i], e->bs, blk * e->bs) < 0)
        return vdk_error_setf(errp, EIO, "ext4: cannot read block %llu",
                              (unsigned long long)blk);
    e->cache_blk[i] = blk;
    *out = e->cache[i];
    return 0;
}

static int ext4_open_ino(struct img_fs *fs, uint64_t ino, struct img_file *f,
                         struct vdk_error **errp)
{
    struct ext4 *e = fs->priv;
    if (ino < 1 || ino > e->inodes)
        return damaged(errp, "inode number", ino);
    uint32_t g = (uint32_t)((ino - 1) / e->ipg), idx = (uint32_t)((ino - 1) % e->ipg);
    uint8_t d[64];
    uint64_t gdt = (uint64_t)(e->first_data + 1) * e->bs;
    if (img_vol_read(&fs->vol, d, e->desc_size < 64 ? e->desc_size : 64,
                     gdt + (uint64_t)g * e->desc_size) < 0)
        return damaged(errp, "group descriptor", g);
    uint64_t table = get_le32(d + 8);
    if (e->is64 && e->desc_size >= 64)
        table |= (uint64_t)get_le32(d + 0x28) << 32;
    uint64_t off = (uint64_t)idx * e->inode_size;
    if (table == 0 || table >= e->blocks ||
        off / e->bs >= e->blocks - table)
        return damaged(errp, "inode table of group", g);
    memset(f, 0, sizeof(*f));
    size_t n = e->inode_size < sizeof(f->priv) ? e->inode_size : sizeof(f->priv);
    if (img_vol_read(&fs->vol, f->priv, n, table * e->bs + off) < 0)
        return damaged(errp, "inode", ino);
    f->id = ino;
    f->size = get_le32(f->priv + 4) | (uint64_t)get_le32(f->priv + 0x6c) << 32;
    switch (i_mode(f) & 0xf000) {
    case 0x8000: f->type = IMG_REG; break;
    case 0x4000: f->type = IMG_DIR; break;
    case 0xa000: f->type = IMG_LNK; break;
    default: f->type = IMG_OTHER; break;
    }
    if (i_mode(f) == 0 && get_le16(f->priv + 0x1a) == 0)
        return vdk_error_setf(errp, EINVAL, "ext4: inode %llu is not in use",
                              (unsigned long long)ino);
    return 0;
}

static int ext4_root(struct img_fs *fs, struct img_file *out,
                     struct vdk_error **errp)
{
    int r = ext4_open_ino(fs, 2, out, errp);
    if (r == 0 && out->type != IMG_DIR)
        return vdk_error_setf(errp, EINVAL, "ext4: the root is not a directory");
    return r;
}

/* Fast symlinks keep their target in i_block. */
static bool fast_symlink(const struct ext4 *e, const struct img_file *f)
{
    if (f->type != IMG_LNK || f->size >= 60 || (i_flags(f) & (FL_EXTENTS | FL_INLINE)))
        return false;
    uint32_t blocks = get_le32(f->priv + 0x1c);
    uint32_t acl = get_le32(f->priv + 0x68);
    return blocks == 0 || (acl && blocks == e->bs / 512);
}

/*
 * Map logical block lblk: *pblk (0: a hole or unwritten extent, reads as
 * zeros) and *run, how many blocks from lblk the answer holds for.
 */
static int map_extent(struct ext4 *e, const struct img_file *f, uint64_t lblk,
                      uint64_t *pblk, uint64_t *run, struct vdk_error **errp)
{
    const uint8_t *node = i_block(f);
    size_t node_len = 60;
    int want_depth = -1;
    uint64_t limit = UINT64_MAX;    /* lblk below the next subtree */
    for (int level = 0;; level++) {
        uint16_t n = get_le16(node + 2), max = get_le16(node + 4);
        int depth = get_le16(node + 6);
        if (get_le16(node) != EXT_MAGIC || n > max ||
            12 + (size_t)max * 12 > node_len || depth > EXT_DEPTH_MAX ||
            (want_depth >= 0 && depth != want_depth) || level > EXT_DEPTH_MAX)
            return damaged(errp, "extent tree of inode", f->id);
        const uint8_t *ent = node + 12;
        if (depth > 0) {
            int k = -1;
            for (int i = 0; i < n && get_le32(ent + 12 * i) <= lblk; i++)
                k = i;
            if (k < 0) {
                *pblk = 0;
                *run = (n ? get_le32(ent) : limit) - lblk;
                return 0;
            }
            if (k + 1 < n && get_le32(ent + 12 * (k + 1)) < limit)
                limit = get_le32(ent + 12 * (k + 1));
            uint64_t child = get_le32(ent + 12 * k + 4) |
                             (uint64_t)get_le16(ent + 12 * k + 8) << 32;
            int r = meta_block(e, child, &node, errp);
            if (r < 0)
                return r;
            node_len = e->bs;
            want_depth = depth - 1;
            continue;
        }
        for (int i = 0; i < n; i++) {
            const uint8_t *x = ent + 12 * i;
            uint64_t first = get_le32(x);
            uint32_t len = get_le16(x + 4);
            bool unwritten = len > 32768;
            if (unwritten)
                len -= 32768;
            if (lblk < first) {
                *pblk = 0;
                *run = (first < limit ? first : limit) - lblk;
                return 0;
            }
            if (lblk >= first + len)
                continue;
            uint64_t start = get_le32(x + 8) | (uint64_t)get_le16(x + 6) << 32;
            if (start == 0 || start >= e->blocks || len > e->blocks - start)
                return damaged(errp, "extent of inode", f->id);
            *pblk = unwritten ? 0 : start + (lblk - first);
            *run = first + len - lblk;
            return 0;
        }
        *pblk = 0;
        *run = limit == UINT64_MAX ? UINT64_MAX - lblk : limit - lblk;
        return 0;
    }
}

static int map_indirect(struct ext4 *e, const struct img_file *f, uint64_t lblk,
                        uint64_t *pblk, uint64_t *run, struct vdk_error **errp)
{
    uint64_t p = e->bs / 4;
    uint64_t idx[3];
    int levels;
    uint64_t blk;
    *run = 1;
    if (lblk < 12) {
        *pblk = get_le32(i_block(f) + 4 * lblk);
        goto check;
    }
    lblk -= 12;
    if (lblk < p) {
        levels = 1;
        idx[0] = lblk;
        blk = get_le32(i_block(f) + 48);
    } else if ((lblk -= p) < p * p) {
        levels = 2;
        idx[0] = lblk / p;
        idx[1] = lblk % p;
        blk = get_le32(i_block(f) + 52);
    } else if ((lblk -= p * p) < p * p * p) {
        levels = 3;
        idx[0] = lblk / (p * p);
        idx[1] = lblk / p % p;
        idx[2] = lblk % p;
        blk = get_le32(i_block(f) + 56);
    } else {
        return damaged(errp, "block map of inode", f->id);
    }
    for (int i = 0; i < levels && blk; i++) {
        const uint8_t *b;
        int r = meta_block(e, blk, &b, errp);
        if (r < 0)
            return r;
        blk = get_le32(b + 4 * idx[i]);
    }
    *pblk = blk;
check:
    if (*pblk >= e->blocks)
        return damaged(errp, "block map of inode", f->id);
    return 0;
}

static int ext4_pread(struct img_fs *fs, const struct img_file *f, void *buf,
                      size_t len, uint64_t off, struct vdk_error **errp)
{
    struct ext4 *e = fs->priv;
    uint8_t *out = buf;
    if (off > f->size || len > f->size - off)
        return vdk_error_setf(errp, EINVAL, "ext4: read past the end of "
                              "inode %llu", (unsigned long long)f->id);
    if (fast_symlink(e, f)) {
        memcpy(out, i_block(f) + off, len);
        return 0;
    }
    if (i_flags(f) & FL_INLINE)
        return vdk_error_setf(errp, ENOTSUP, "ext4: inode %llu has inline "
                              "data, which is not supported",
                              (unsigned long long)f->id);
    if (i_flags(f) & FL_ENCRYPT)
        return vdk_error_setf(errp, ENOTSUP, "ext4: inode %llu is encrypted",
                              (unsigned long long)f->id);
    bool ext = i_flags(f) & FL_EXTENTS;
    while (len) {
        uint64_t lblk = off / e->bs, pblk, run;
        uint32_t in = (uint32_t)(off % e->bs);
        int r = ext ? map_extent(e, f, lblk, &pblk, &run, errp)
                    : map_indirect(e, f, lblk, &pblk, &run, errp);
        if (r < 0)
            return r;
        /* Grow the run while the next blocks follow on disk. */
        uint64_t want = ((uint64_t)in + len + e->bs - 1) / e->bs;
        if (want > READ_CHUNK / e->bs)
            want = READ_CHUNK / e->bs;
        while (run < want) {
            uint64_t p2, r2;
            r = ext ? map_extent(e, f, lblk + run, &p2, &r2, errp)
                    : map_indirect(e, f, lblk + run, &p2, &r2, errp);
            if (r < 0)
                return r;
            if ((pblk == 0) != (p2 == 0) || (pblk && p2 != pblk + run))
                break;
            run += r2;
        }
        if (run > want)
            run = want;
        uint64_t n64 = run * e->bs - in;
        size_t n = n64 < len ? (size_t)n64 : len;
        if (pblk == 0)
            memset(out, 0, n);
        else if (img_vol_read(&fs->vol, out, n, pblk * e->bs + in) < 0)
            return vdk_error_setf(errp, EIO, "ext4: cannot read block %llu",
                                  (unsigned long long)pblk);
        out += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int ext4_iterate(struct img_fs *fs, const struct img_file *dir,
                        img_dir_fn fn, void *ctx, struct vdk_error **errp)
{
    struct ext4 *e = fs->priv;
    if (dir->size > DIR_MAX || dir->size % e->bs)
        return damaged(errp, "directory inode", dir->id);
    uint8_t *b = malloc(e->bs);
    if (!b)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    int r = 0;
    for (uint64_t off = 0; off < dir->size && r == 0; off += e->bs) {
        if ((r = ext4_pread(fs, dir, b, e->bs, off, errp)) < 0)
            break;
        for (uint32_t p = 0; p + 8 <= e->bs;) {
            uint32_t ino = get_le32(b + p);
            uint32_t rec = get_le16(b + p + 4);
            uint32_t nlen = e->filetype ? b[p + 6] : get_le16(b + p + 6);
            if (e->bs == 65536 && (rec == 0 || rec == 65535))
                rec = 65536;
            if (rec < 8 || rec % 4 || rec > e->bs - p || nlen + 8 > rec) {
                r = damaged(errp, "directory inode", dir->id);
                break;
            }
            if (ino && nlen) {
                if (ino > e->inodes) {
                    r = damaged(errp, "directory inode", dir->id);
                    break;
                }
                r = fn(ctx, (const char *)b + p + 8, nlen, ino);
                if (r != 0) {
                    if (r < 0 && (!errp || !*errp))
                        vdk_error_setf(errp, -r, "ext4: listing a directory "
                                       "failed");
                    break;
                }
            }
            p += rec;
        }
    }
    free(b);
    return r < 0 ? r : 0;
}

static void ext4_close(struct img_fs *fs)
{
    struct ext4 *e = fs->priv;
    for (int i = 0; i < CACHE_N; i++)
        free(e->cache[i]);
    free(e);
}

static const struct img_fs_ops ext4_ops = {
    .name = "ext4",
    .root = ext4_root,
    .open = ext4_open_ino,
    .iterate = ext4_iterate,
    .pread = ext4_pread,
    .close = ext4_close,
};

int img_ext4_open(const struct img_vol *v, struct img_fs **out,
                  struct vdk_error **errp)
{
    uint8_t sb[1024];
    if (img_vol_read(v, sb, sizeof(sb), EXT4_SB_OFF) < 0 ||
        get_le16(sb + 0x38) != EXT4_MAGIC)
        return -ENOENT;
    uint32_t log = get_le32(sb + 0x18), rev = get_le32(sb + 0x4c);
    uint32_t incompat = get_le32(sb + 0x60);
    if (log > 6)
        return vdk_error_setf(errp, EINVAL, "ext4: bad superblock (block size)");
    if (incompat & INCOMPAT_JOURNAL_DEV)
        return vdk_error_setf(errp, ENOTSUP, "an ext4 external journal is not "
                              "a filesystem");
    if (incompat & INCOMPAT_META_BG)
        return vdk_error_setf(errp, ENOTSUP, "ext4 with meta_bg is not "
                              "supported");
    if (incompat & ~INCOMPAT_OK)
        return vdk_error_setf(errp, ENOTSUP, "ext4 features 0x%x are not "
                              "supported", incompat & ~INCOMPAT_OK);
    struct ext4 *e = calloc(1, sizeof(*e));
    if (!e)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    e->bs = 1024u << log;
    e->inodes = get_le32(sb + 0x0);
    e->blocks = get_le32(sb + 0x4);
    e->first_data = get_le32(sb + 0x14);
    uint32_t bpg = get_le32(sb + 0x20);
    e->ipg = get_le32(sb + 0x28);
    e->filetype = incompat & INCOMPAT_FILETYPE;
    e->is64 = incompat & INCOMPAT_64BIT;
    if (e->is64)
        e->blocks |= (uint64_t)get_le32(sb + 0x150) << 32;
    e->inode_size = rev == 0 ? 128 : get_le16(sb + 0x58);
    e->desc_size = e->is64 ? get_le16(sb + 0xfe) : 32;
    const char *bad = NULL;
    if (e->blocks == 0 || e->blocks > (v->size / e->bs) + 1)
        bad = "block count beyond the partition";
    else if (bpg == 0 || bpg > 8 * e->bs || e->ipg == 0 || e->ipg > 8 * e->bs)
        bad = "blocks or inodes per group";
    else if (e->first_data > 1 || e->first_data >= e->blocks)
        bad = "first data block";
    else if (e->inode_size < 128 || e->inode_size > e->bs ||
             (e->inode_size & (e->inode_size - 1)))
        bad = "inode size";
    else if (e->desc_size < 32 || e->desc_size > 1024 ||
             (e->desc_size & (e->desc_size - 1)) || (e->is64 && e->desc_size < 64))
        bad = "descriptor size";
    if (!bad) {
        uint64_t ng = (e->blocks - e->first_data + bpg - 1) / bpg;
        if (ng > UINT32_MAX || e->inodes == 0 ||
            e->inodes > ng * e->ipg || ng * e->desc_size > e->blocks * e->bs)
            bad = "inode or group count";
        e->ngroups = (uint32_t)ng;
    }
    if (bad) {
        free(e);
        return vdk_error_setf(errp, EINVAL, "ext4: bad superblock (%s)", bad);
    }
    e->fs.ops = &ext4_ops;
    e->fs.vol = *v;
    e->fs.priv = e;
    *out = &e->fs;
    return 0;
}
