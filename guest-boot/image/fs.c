/* SPDX-License-Identifier: MIT */
/*
 * Volumes, filesystem detection and path resolution, shared by the ext4
 * and vfat readers: a filesystem only lists directories, opens entries and
 * reads files; symlinks, "..", and every bound on a path walk are here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "guest-boot/image/image.h"

int img_vol_read(const struct img_vol *v, void *buf, size_t len, uint64_t off)
{
    if (off > v->size || len > v->size - off)
        return -ERANGE;
    if (len == 0)
        return 0;
    return v->disk->read(v->disk->opaque, buf, len, v->off + off);
}

static int mem_read(void *opaque, void *buf, size_t len, uint64_t off)
{
    const struct img_mem *m = opaque;
    if (off > m->size || len > m->size - off)
        return -EIO;
    memcpy(buf, m->data + off, len);
    return 0;
}

void img_disk_from_mem(struct img_disk *d, struct img_mem *m)
{
    d->read = mem_read;
    d->opaque = m;
    d->size = m->size;
}

/* Magic numbers of filesystems (and containers) we name but do not read. */
static const struct {
    uint64_t off;
    const char *magic;
    size_t len;
    const char *name;
} foreign[] = {
    { 0x10040, "_BHRfS_M", 8, "btrfs" },
    { 0, "XFSB", 4, "xfs" },
    { 0, "LUKS\xba\xbe", 6, "LUKS" },
    { 0x218, "LVM2 001", 8, "LVM" },
    { 0xff6, "SWAPSPACE2", 10, "swap" },
    { 0xff6, "SWAP-SPACE", 10, "swap" },
    { 0x400, "\x10\x20\xf5\xf2", 4, "f2fs" },
    { 0, "hsqs", 4, "squashfs" },
    { 3, "NTFS    ", 8, "NTFS" },
    { 3, "EXFAT   ", 8, "exFAT" },
    { 0x8001, "CD001", 5, "ISO 9660" },
    { 0x10034, "ReIsEr", 6, "reiserfs" },
    { 0x1000, "\xe2\xe1\xf5\xe0", 4, "erofs" },
    { 0, "\x2c\x4a\xc0\x37", 4, "bcachefs" },
};

const char *img_fs_foreign(const struct img_vol *v)
{
    for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++) {
        char buf[16];
        if (img_vol_read(v, buf, foreign[i].len, foreign[i].off) == 0 &&
            !memcmp(buf, foreign[i].magic, foreign[i].len))
            return foreign[i].name;
    }
    /* LVM's label sits in any of the first four sectors. */
    for (uint64_t s = 0; s < 4; s++) {
        char buf[8];
        if (img_vol_read(v, buf, 8, s * 512) == 0 && !memcmp(buf, "LABELONE", 8))
            return "LVM";
    }
    return NULL;
}

int img_fs_open(const struct img_vol *v, struct img_fs **out,
                struct vdk_error **errp)
{
    int r = img_ext4_open(v, out, errp);
    if (r != -ENOENT)
        return r;
    r = img_vfat_open(v, out, errp);
    if (r != -ENOENT)
        return r;
    const char *name = img_fs_foreign(v);
    if (name)
        return vdk_error_setf(errp, ENOTSUP, "%s is not supported", name);
    return -ENOENT;
}

void img_fs_close(struct img_fs *fs)
{
    if (fs)
        fs->ops->close(fs);
}

/* ---- path resolution ---- */

struct find_ctx {
    const char *name;
    size_t len;
    bool fold;
    uint64_t id;
    bool found;
};

static int find_cb(void *opaque, const char *name, size_t len, uint64_t id)
{
    struct find_ctx *c = opaque;
    if (len != c->len)
        return 0;
    if (c->fold ? strncasecmp(name, c->name, len) : memcmp(name, c->name, len))
        return 0;
    c->id = id;
    c->found = true;
    return 1;
}

static int lookup(struct img_fs *fs, const struct img_file *dir,
                  const char *name, size_t len, struct img_file *out,
                  struct vdk_error **errp)
{
    struct find_ctx c = { name, len, fs->ops->fold_case, 0, false };
    int r = fs->ops->iterate(fs, dir, find_cb, &c, errp);
    if (r < 0)
        return r;
    if (!c.found)
        return -ENOENT;
    return fs->ops->open(fs, c.id, out, errp);
}

#define DIR_STACK 64

int img_fs_resolve(struct img_fs *fs, const char *path, struct img_file *out,
                   struct vdk_error **errp)
{
    /* rest: what is left to walk; symlink targets are spliced in front. */
    size_t cap = IMG_PATH_MAX * 4;
    char *rest = malloc(cap), *tmp = malloc(cap);
    struct img_file *stack = malloc(DIR_STACK * sizeof(*stack));
    int depth = 0, links = 0, steps = 0, r = 0;

    if (!rest || !tmp || !stack) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    if (strlen(path) >= IMG_PATH_MAX) {
        r = vdk_error_setf(errp, ENAMETOOLONG, "path too long");
        goto out;
    }
    snprintf(rest, cap, "%s", path);
    if ((r = fs->ops->root(fs, &stack[0], errp)) < 0)
        goto out;
    size_t pos = 0;
    for (;;) {
        while (rest[pos] == '/')
            pos++;
        if (!rest[pos])
            break;
        size_t len = strcspn(rest + pos, "/");
        const char *name = rest + pos;
        pos += len;
        if (++steps > IMG_COMPONENTS_MAX) {
            r = vdk_error_setf(errp, ELOOP, "'%s': too many path components",
                               path);
            goto out;
        }
        if (len == 1 && name[0] == '.')
            continue;
        if (len == 2 && name[0] == '.' && name[1] == '.') {
            if (depth > 0)
                depth--;
            continue;
        }
        if (len > IMG_NAME_MAX) {
            r = vdk_error_setf(errp, ENAMETOOLONG, "'%s': name too long", path);
            goto out;
        }
        if (stack[depth].type != IMG_DIR) {
            r = vdk_error_setf(errp, ENOTDIR, "'%s': not a directory", path);
            goto out;
        }
        struct img_file f;
        r = lookup(fs, &stack[depth], name, len, &f, errp);
        if (r == -ENOENT && (!errp || !*errp)) {
            vdk_error_setf(errp, ENOENT, "'%s' not found", path);
            goto out;
        }
        if (r < 0)
            goto out;
        if (f.type == IMG_LNK) {
            if (++links > IMG_SYMLINK_MAX) {
                r = vdk_error_setf(errp, ELOOP, "'%s': too many levels of "
                                   "symbolic links", path);
                goto out;
            }
            if (f.size == 0 || f.size >= IMG_PATH_MAX) {
                r = vdk_error_setf(errp, EINVAL, "'%s': bad symlink length "
                                   "%llu", path, (unsigned long long)f.size);
                goto out;
            }
            char target[IMG_PATH_MAX];
            if ((r = fs->ops->pread(fs, &f, target, f.size, 0, errp)) < 0)
                goto out;
            target[f.size] = 0;
            if (strlen(target) != f.size) {
                r = vdk_error_setf(errp, EINVAL, "'%s': symlink holds a NUL",
                                   path);
                goto out;
            }
            if (strlen(rest + pos) + f.size + 2 > cap) {
                r = vdk_error_setf(errp, ENAMETOOLONG, "'%s': path too long",
                                   path);
                goto out;
            }
            size_t tl = (size_t)f.size, rl = strlen(rest + pos);
            memcpy(tmp, target, tl);
            tmp[tl] = '/';
            memcpy(tmp + tl + 1, rest + pos, rl + 1);
            memcpy(rest, tmp, tl + rl + 2);
            pos = 0;
            if (target[0] == '/')
                depth = 0;
            continue;
        }
        if (depth + 1 == DIR_STACK) {
            r = vdk_error_setf(errp, ELOOP, "'%s': directories nested too deep", path);
            goto out;
        }
        stack[++depth] = f;
    }
    *out = stack[depth];
    r = 0;
out:
    free(rest);
    free(tmp);
    free(stack);
    return r;
}

int img_fs_read_file(struct img_fs *fs, const char *path, uint64_t max,
                     uint8_t **buf, size_t *len, struct vdk_error **errp)
{
    struct img_file f;
    int r = img_fs_resolve(fs, path, &f, errp);
    if (r < 0)
        return r;
    if (f.type != IMG_REG)
        return vdk_error_setf(errp, EINVAL, "'%s' is not a regular file", path);
    if (f.size > max)
        return vdk_error_setf(errp, EFBIG, "'%s' is too big (%llu bytes, at "
                              "most %llu)", path, (unsigned long long)f.size,
                              (unsigned long long)max);
    uint8_t *p = malloc(f.size ? (size_t)f.size : 1);
    if (!p)
        return vdk_error_setf(errp, ENOMEM, "out of memory for '%s'", path);
    r = fs->ops->pread(fs, &f, p, (size_t)f.size, 0, errp);
    if (r < 0) {
        free(p);
        vdk_error_prepend(errp, "reading '%s'", path);
        return r;
    }
    *buf = p;
    *len = (size_t)f.size;
    return 0;
}

struct list_ctx {
    char **names;
    int max, n;
};

static int list_cb(void *opaque, const char *name, size_t len, uint64_t id)
{
    struct list_ctx *c = opaque;
    (void)id;
    if ((len == 1 && name[0] == '.') || (len == 2 && !memcmp(name, "..", 2)))
        return 0;
    if (c->n == c->max)
        return 1;
    c->names[c->n] = strndup(name, len);
    if (!c->names[c->n])
        return -ENOMEM;
    c->n++;
    return 0;
}

int img_fs_list_dir(struct img_fs *fs, const char *path, char **names,
                    int max, struct vdk_error **errp)
{
    struct img_file d;
    int r = img_fs_resolve(fs, path, &d, errp);
    if (r < 0)
        return r;
    if (d.type != IMG_DIR)
        return vdk_error_setf(errp, ENOTDIR, "'%s' is not a directory", path);
    struct list_ctx c = { names, max, 0 };
    r = fs->ops->iterate(fs, &d, list_cb, &c, errp);
    if (r < 0) {
        for (int i = 0; i < c.n; i++)
            free(names[i]);
        if (!errp || !*errp)
            vdk_error_setf(errp, -r, "listing '%s' failed", path);
        return r;
    }
    return c.n;
}
