/* SPDX-License-Identifier: MIT */
/*
 * FAT12/16/32 read-only (Microsoft's FAT specification): the BPB, the
 * first FAT read into memory (bounded), cluster chains followed at most
 * once round the volume, directories with VFAT long names (checksummed
 * against their short entry).  An ESP holding systemd-boot entries.
 *
 * A file's id is the volume offset of its short directory entry (0: the
 * root), so opening it again needs no state beyond the volume.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "guest-boot/mem.h"
#include "guest-boot/image/image.h"

#define FAT_MAX_BYTES (64u << 20)     /* the FAT we load */
#define DIR_MAX_BYTES (2u << 20)      /* 65536 entries, FAT's own limit */
#define ATTR_DIR 0x10
#define ATTR_VOLUME 0x08
#define ATTR_LFN 0x0f

struct vfat {
    struct img_fs fs;
    uint32_t bps, cluster_bytes, nclusters, root_cluster, root_entries;
    int bits;                        /* 12, 16 or 32 */
    uint64_t data_off, root_off;     /* bytes */
    uint8_t *fat;
    size_t fat_len;
};

/* priv layout of an img_file: first cluster at 0 (u32). */
static uint32_t f_cluster(const struct img_file *f) { return get_le32(f->priv); }

static bool valid_cluster(const struct vfat *v, uint32_t c)
{
    return c >= 2 && c - 2 < v->nclusters;
}

/* Next cluster in the chain, 0 at its end, UINT32_MAX when damaged. */
static uint32_t fat_next(const struct vfat *v, uint32_t c)
{
    uint32_t n;
    if (v->bits == 12) {
        size_t o = (size_t)c + c / 2;
        n = get_le16(v->fat + o);
        n = c & 1 ? n >> 4 : n & 0xfff;
        if (n >= 0xff8)
            return 0;
    } else if (v->bits == 16) {
        n = get_le16(v->fat + 2 * (size_t)c);
        if (n >= 0xfff8)
            return 0;
    } else {
        n = get_le32(v->fat + 4 * (size_t)c) & 0x0fffffff;
        if (n >= 0x0ffffff8)
            return 0;
    }
    /* A cluster naming itself is the one loop we can see at once; longer
       ones end at the cluster count. */
    return valid_cluster(v, n) && n != c ? n : UINT32_MAX;
}

static int bad_chain(struct vdk_error **errp, uint32_t c)
{
    return vdk_error_setf(errp, EINVAL, "vfat: the cluster chain starting "
                          "at %u is damaged", c);
}

/* Root directory of FAT12/16: a fixed region, not a chain. */
static bool fixed_root(const struct vfat *v, const struct img_file *f)
{
    return f->id == 0 && v->bits != 32;
}

static int vfat_pread(struct img_fs *fs, const struct img_file *f, void *buf,
                      size_t len, uint64_t off, struct vdk_error **errp)
{
    struct vfat *v = fs->priv;
    uint8_t *out = buf;
    if (off > f->size || len > f->size - off)
        return vdk_error_setf(errp, EINVAL, "vfat: read past the end of a file");
    if (fixed_root(v, f)) {
        if (img_vol_read(&fs->vol, out, len, v->root_off + off) < 0)
            return vdk_error_setf(errp, EIO, "vfat: cannot read the root");
        return 0;
    }
    uint32_t c = f_cluster(f), first = c;
    uint64_t skip = off / v->cluster_bytes;
    uint32_t in = (uint32_t)(off % v->cluster_bytes);
    for (uint64_t steps = 0; len; steps++) {
        if (!valid_cluster(v, c) || steps > v->nclusters)
            return bad_chain(errp, first);
        if (skip) {
            skip--;
            c = fat_next(v, c);
            continue;
        }
        /* Read as many following clusters as lie next to each other. */
        uint32_t run = 1, last = c;
        uint64_t avail = (uint64_t)v->cluster_bytes - in;
        while (avail < len && run < 256) {
            uint32_t n = fat_next(v, last);
            if (n != last + 1)
                break;
            last = n;
            run++;
            avail += v->cluster_bytes;
        }
        size_t n = avail < len ? (size_t)avail : len;
        uint64_t pos = v->data_off + (uint64_t)(c - 2) * v->cluster_bytes + in;
        if (img_vol_read(&fs->vol, out, n, pos) < 0)
            return vdk_error_setf(errp, EIO, "vfat: cannot read cluster %u", c);
        out += n;
        len -= n;
        in = 0;
        steps += run - 1;
        c = fat_next(v, last);
    }
    return 0;
}

static size_t utf8_put(char *s, uint32_t u)
{
    if (u < 0x80) {
        s[0] = (char)u;
        return 1;
    }
    if (u < 0x800) {
        s[0] = (char)(0xc0 | u >> 6);
        s[1] = (char)(0x80 | (u & 0x3f));
        return 2;
    }
    s[0] = (char)(0xe0 | u >> 12);
    s[1] = (char)(0x80 | (u >> 6 & 0x3f));
    s[2] = (char)(0x80 | (u & 0x3f));
    return 3;
}

struct lfn {
    uint16_t ch[20 * 13];
    int count;                 /* pieces announced, 0: none pending */
    int next;                  /* the ordinal expected next */
    uint8_t sum;
};

static void lfn_piece(struct lfn *l, const uint8_t *e)
{
    static const uint8_t pos[13] = { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30 };
    int ord = e[0] & 0x1f;
    if (e[0] & 0x40) {
        l->count = ord;
        l->next = ord;
        l->sum = e[13];
    }
    if (ord < 1 || ord > 20 || ord != l->next || e[13] != l->sum) {
        l->count = 0;
        return;
    }
    for (int i = 0; i < 13; i++)
        l->ch[(ord - 1) * 13 + i] = get_le16(e + pos[i]);
    l->next--;
}

/* The entry's name: the long one when complete and matching. */
static size_t entry_name(struct lfn *l, const uint8_t *e, char *name)
{
    size_t n = 0;
    if (l->count && l->next == 0) {
        uint8_t sum = 0;
        for (int i = 0; i < 11; i++)
            sum = (uint8_t)(((sum & 1) << 7) + (sum >> 1) + e[i]);
        if (sum == l->sum) {
            for (int i = 0; i < l->count * 13 && l->ch[i] && l->ch[i] != 0xffff; i++)
                n += utf8_put(name + n, l->ch[i]);
            l->count = 0;
            if (n)
                return n;
        }
    }
    l->count = 0;
    int base = 8, ext = 3;
    while (base && e[base - 1] == ' ')
        base--;
    while (ext && e[8 + ext - 1] == ' ')
        ext--;
    for (int i = 0; i < base; i++) {
        char ch = (char)(i == 0 && e[0] == 0x05 ? 0xe5 : e[i]);
        name[n++] = (e[12] & 0x08) && ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
    }
    if (ext) {
        name[n++] = '.';
        for (int i = 0; i < ext; i++) {
            char ch = (char)e[8 + i];
            name[n++] = (e[12] & 0x10) && ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
        }
    }
    return n;
}

static int vfat_iterate(struct img_fs *fs, const struct img_file *dir,
                        img_dir_fn fn, void *ctx, struct vdk_error **errp)
{
    struct vfat *v = fs->priv;
    struct lfn *l = calloc(1, sizeof(*l));
    uint8_t *buf = malloc(v->cluster_bytes > 32 * 16 ? v->cluster_bytes : 32 * 16);
    int r = 0;
    if (!l || !buf) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    uint32_t c = f_cluster(dir);
    uint64_t total = 0;
    for (uint64_t steps = 0;; steps++) {
        size_t n;
        uint64_t pos;
        if (fixed_root(v, dir)) {
            if (total >= (uint64_t)v->root_entries * 32)
                break;
            n = 32 * 16;
            if (n > (uint64_t)v->root_entries * 32 - total)
                n = (size_t)((uint64_t)v->root_entries * 32 - total);
            pos = v->root_off + total;
        } else {
            if (c == 0)
                break;
            if (!valid_cluster(v, c) || steps > v->nclusters) {
                r = bad_chain(errp, f_cluster(dir));
                goto out;
            }
            n = v->cluster_bytes;
            pos = v->data_off + (uint64_t)(c - 2) * v->cluster_bytes;
            c = fat_next(v, c);
            if (c == UINT32_MAX)
                c = 1;   /* damaged: read this cluster, then stop with the error */
        }
        if (total + n > DIR_MAX_BYTES) {
            r = vdk_error_setf(errp, EINVAL, "vfat: a directory is too large");
            goto out;
        }
        if (img_vol_read(&fs->vol, buf, n, pos) < 0) {
            r = vdk_error_setf(errp, EIO, "vfat: cannot read a directory");
            goto out;
        }
        total += n;
        for (size_t i = 0; i + 32 <= n; i += 32) {
            const uint8_t *e = buf + i;
            if (e[0] == 0)
                goto out;
            if (e[0] == 0xe5) {
                l->count = 0;
                continue;
            }
            if ((e[11] & 0x3f) == ATTR_LFN) {
                lfn_piece(l, e);
                continue;
            }
            if (e[11] & ATTR_VOLUME) {
                l->count = 0;
                continue;
            }
            char name[20 * 13 * 3 + 1];
            size_t len = entry_name(l, e, name);
            r = fn(ctx, name, len, pos + i);
            if (r != 0) {
                if (r < 0 && (!errp || !*errp))
                    vdk_error_setf(errp, -r, "vfat: listing a directory failed");
                goto out;
            }
        }
    }
out:
    free(l);
    free(buf);
    return r < 0 ? r : 0;
}

static int vfat_root(struct img_fs *fs, struct img_file *out,
                     struct vdk_error **errp)
{
    struct vfat *v = fs->priv;
    (void)errp;
    memset(out, 0, sizeof(*out));
    out->type = IMG_DIR;
    put_le32(out->priv, v->bits == 32 ? v->root_cluster : 0);
    out->size = v->bits == 32 ? 0 : (uint64_t)v->root_entries * 32;
    return 0;
}

static int vfat_open_entry(struct img_fs *fs, uint64_t id, struct img_file *out,
                           struct vdk_error **errp)
{
    struct vfat *v = fs->priv;
    uint8_t e[32];
    if (id == 0)
        return vfat_root(fs, out, errp);
    if (img_vol_read(&fs->vol, e, 32, id) < 0)
        return vdk_error_setf(errp, EIO, "vfat: cannot read a directory entry");
    uint32_t c = get_le16(e + 26);
    if (v->bits == 32)
        c |= (uint32_t)get_le16(e + 20) << 16;
    if ((e[11] & ATTR_DIR) && c == 0)     /* ".." of a top directory */
        return vfat_root(fs, out, errp);
    memset(out, 0, sizeof(*out));
    out->id = id;
    out->type = e[11] & ATTR_DIR ? IMG_DIR : IMG_REG;
    out->size = out->type == IMG_DIR ? 0 : get_le32(e + 28);
    if (out->size && !valid_cluster(v, c))
        return bad_chain(errp, c);
    put_le32(out->priv, c);
    return 0;
}

static void vfat_close(struct img_fs *fs)
{
    struct vfat *v = fs->priv;
    free(v->fat);
    free(v);
}

static const struct img_fs_ops vfat_ops = {
    .name = "vfat",
    .fold_case = true,
    .root = vfat_root,
    .open = vfat_open_entry,
    .iterate = vfat_iterate,
    .pread = vfat_pread,
    .close = vfat_close,
};

int img_vfat_open(const struct img_vol *vol, struct img_fs **out,
                  struct vdk_error **errp)
{
    uint8_t b[512];
    if (img_vol_read(vol, b, sizeof(b), 0) < 0)
        return -ENOENT;
    bool named = !memcmp(b + 0x36, "FAT1", 4) || !memcmp(b + 0x52, "FAT32", 5);
    uint32_t bps = get_le16(b + 11), spc = b[13], rsv = get_le16(b + 14);
    uint32_t nfats = b[16], rootents = get_le16(b + 17);
    uint64_t total = get_le16(b + 19) ? get_le16(b + 19) : get_le32(b + 32);
    uint64_t fatsz = get_le16(b + 22) ? get_le16(b + 22) : get_le32(b + 36);
    if ((b[0] != 0xeb && b[0] != 0xe9) || b[510] != 0x55 || b[511] != 0xaa ||
        (bps != 512 && bps != 1024 && bps != 2048 && bps != 4096) ||
        spc == 0 || (spc & (spc - 1)) || rsv == 0 || nfats == 0 || nfats > 4)
        return named ? vdk_error_setf(errp, EINVAL, "vfat: bad boot sector")
                     : -ENOENT;
    uint64_t rootsec = ((uint64_t)rootents * 32 + bps - 1) / bps;
    uint64_t meta = rsv + nfats * fatsz + rootsec;
    const char *bad = NULL;
    /* A volume shorter than the BPB says is read as far as it goes. */
    if (fatsz == 0 || meta >= total || meta * bps > vol->size)
        bad = "sizes beyond the partition";
    uint64_t nclusters = bad ? 0 : (total - meta) / spc;
    int bits = nclusters < 4085 ? 12 : nclusters < 65525 ? 16 : 32;
    uint64_t need = bits == 12 ? (nclusters + 2) * 3 / 2 + 2 : (nclusters + 2) * (uint64_t)bits / 8;
    if (!bad && (nclusters == 0 || need > fatsz * bps))
        bad = "FAT smaller than the cluster count";
    if (!bad && need > FAT_MAX_BYTES)
        bad = "FAT too large";
    if (!bad && bits == 32 && rootents)
        bad = "FAT32 with a fixed root directory";
    uint32_t root_cluster = get_le32(b + 44);
    if (!bad && bits == 32 && (root_cluster < 2 || root_cluster - 2 >= nclusters))
        bad = "root cluster";
    if (bad)
        return vdk_error_setf(errp, EINVAL, "vfat: bad boot sector (%s)", bad);
    struct vfat *v = calloc(1, sizeof(*v));
    if (!v || !(v->fat = malloc((size_t)need))) {
        free(v);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    v->fat_len = (size_t)need;
    if (img_vol_read(vol, v->fat, v->fat_len, (uint64_t)rsv * bps) < 0) {
        free(v->fat);
        free(v);
        return vdk_error_setf(errp, EIO, "vfat: cannot read the FAT");
    }
    v->bps = bps;
    v->cluster_bytes = bps * spc;
    v->nclusters = (uint32_t)nclusters;
    v->bits = bits;
    v->root_cluster = root_cluster;
    v->root_entries = rootents;
    v->root_off = (rsv + nfats * fatsz) * bps;
    v->data_off = meta * bps;
    v->fs.ops = &vfat_ops;
    v->fs.vol = *vol;
    v->fs.priv = v;
    *out = &v->fs;
    return 0;
}
