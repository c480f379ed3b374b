/* SPDX-License-Identifier: MIT */
/*
 * Chains of differencing VHDX images: rebase (the parent locator rewritten,
 * or removed to make the image a dynamic one) and the emptying of a child
 * after commit.  qemu-img cannot open differencing VHDX images at all.
 *
 * Every change goes through the log like any metadata write: the new
 * metadata-region and BAT sectors are logged, flushed, applied and
 * flushed, so a crash leaves the old or the new parent, never a mix.
 * Blocks a change makes unreachable are given back only after the BAT
 * that no longer points at them is durable.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fmt-util.h"
#include "formats/vhdx/vhdx.h"

/* The metadata table entry of the item `id` in table t, or -1. */
static int meta_find(const uint8_t *t, const uint8_t id[16])
{
    uint16_t count = fmt_le16(t + 10);
    for (uint16_t i = 0; i < count && i < VHDX_META_MAX_ENTRIES; i++)
        if (memcmp(t + 32 + 32 * (size_t)i, id, 16) == 0)
            return i;
    return -1;
}

/* Log the 4 KiB sectors of the metadata region that differ. */
static int meta_commit(struct vdk_node *n, struct vhdx_state *s, const uint8_t *old,
                       const uint8_t *nw)
{
    size_t nsec = s->meta_region.length / VHDX_LOG_SECTOR, cnt = 0;
    uint64_t *offs = malloc(nsec * sizeof(*offs) + 8);
    uint8_t *data = malloc(s->meta_region.length + 1);
    int r = offs && data ? 0 : -ENOMEM;
    for (size_t k = 0; r == 0 && k < nsec; k++) {
        size_t o = k * VHDX_LOG_SECTOR;
        if (memcmp(old + o, nw + o, VHDX_LOG_SECTOR) == 0)
            continue;
        offs[cnt] = s->meta_region.offset + o;
        memcpy(data + cnt * VHDX_LOG_SECTOR, nw + o, VHDX_LOG_SECTOR);
        cnt++;
    }
    if (r == 0 && cnt)
        r = vhdx_log_write(n, s, offs, data, cnt);
    free(offs);
    free(data);
    return r;
}

/* A new locator for `backing` in the metadata copy nw (entry `li`). */
static int set_locator(struct vdk_node *n, struct vhdx_state *s, uint8_t *nw, int li,
                       const char *backing, struct vhdx_parent *pl, struct vdk_error **errp)
{
    char *full = vdk_path_combine(n->filename, backing);
    uint8_t guid[16];
    char g[39];
    int r = full ? vhdx_read_data_guid(full, guid, errp) : -ENOMEM;
    if (r < 0) {
        free(full);
        return r == -ENOMEM ? vdk_error_setf(errp, ENOMEM, "out of memory") : r;
    }
    vhdx_guid_to_str(guid, g);
    pl->linkage = strdup(g);
    pl->relative_path = strdup(backing);
    pl->absolute_path = full[0] == '/' ? full : NULL;
    if (!pl->absolute_path)
        free(full);
    uint8_t *loc = malloc(VHDX_MAX_LOCATOR);
    long l = loc && pl->linkage && pl->relative_path ?
             vhdx_locator_build(pl, loc, VHDX_MAX_LOCATOR) : -ENOMEM;
    if (l < 0) {
        free(loc);
        return l == -ENOMEM ? vdk_error_setf(errp, ENOMEM, "out of memory")
                            : vdk_error_setf(errp, ENAMETOOLONG, "parent path too long "
                                             "for a VHDX locator");
    }
    uint8_t *e = nw + 32 + 32 * (size_t)li;
    uint32_t off = fmt_le32(e + 16), len = fmt_le32(e + 20);
    memset(nw + off, 0, len); /* inside the region: checked at open */
    if ((uint64_t)l > len) {
        /* after every item: the region holds far more than the items */
        uint64_t end = VHDX_META_TABLE_SIZE;
        for (uint16_t i = 0; i < fmt_le16(nw + 10); i++) {
            const uint8_t *x = nw + 32 + 32 * (size_t)i;
            if (fmt_le32(x + 20) && (uint64_t)fmt_le32(x + 16) + fmt_le32(x + 20) > end)
                end = (uint64_t)fmt_le32(x + 16) + fmt_le32(x + 20);
        }
        off = (uint32_t)vdk_align_up(end, 8);
        if ((uint64_t)off + (uint64_t)l > s->meta_region.length) {
            free(loc);
            return vdk_error_setf(errp, ENOSPC, "no room for the new parent locator in the "
                                  "VHDX metadata region");
        }
    }
    memcpy(nw + off, loc, (size_t)l);
    fmt_put_le32(e + 16, off);
    fmt_put_le32(e + 20, (uint32_t)l);
    free(loc);
    return 0;
}

/* The image stops being a differencing one: partially present blocks are
   filled (clear sectors read zeros from now on), sector bitmaps dropped,
   the has-parent flag cleared and the locator removed from nw. */
static int drop_parent(struct vdk_node *n, struct vhdx_state *s, uint8_t *nw, int li)
{
    struct vdk_node *parent = n->backing;
    int r = 0;
    n->backing = NULL; /* vhdx_fill_block reads zeros for clear sectors */
    for (uint64_t b = 0; r == 0 && b < s->payload_blocks; b++)
        if (VHDX_BAT_STATE(s->bat[vhdx_payload_index(s, b)]) == VHDX_BLK_PARTIALLY_PRESENT)
            r = vhdx_fill_block(n, s, b, 0, 0, NULL);
    n->backing = parent;
    for (uint64_t i = s->chunk_ratio; r == 0 && i < s->bat_entries; i += s->chunk_ratio + 1)
        if (s->bat[i])
            vhdx_bat_set(s, i, 0);
    if (r == 0)
        r = vhdx_bat_sync(n, s);
    if (r < 0)
        return r;
    int fi = meta_find(nw, vhdx_guid_file_params);
    if (fi < 0)
        return -EINVAL;
    uint8_t *fp = nw + fmt_le32(nw + 32 + 32 * (size_t)fi + 16);
    fmt_put_le32(fp + 4, fmt_le32(fp + 4) & ~2u);
    uint8_t *e = nw + 32 + 32 * (size_t)li;
    memset(nw + fmt_le32(e + 16), 0, fmt_le32(e + 20));
    uint16_t count = fmt_le16(nw + 10);
    memmove(e, e + 32, 32 * (size_t)(count - 1 - li));
    memset(nw + 32 + 32 * (size_t)(count - 1), 0, 32);
    fmt_put_le16(nw + 10, (uint16_t)(count - 1));
    return 0;
}

int vhdx_change_backing_file(struct vdk_node *n, const char *backing_file,
                             const char *backing_fmt, struct vdk_error **errp)
{
    struct vhdx_state *s = n->opaque;
    if (!s->has_parent) {
        if (!backing_file)
            return 0;
        return vdk_error_setf(errp, ENOTSUP, "'%s' is not a differencing VHDX; only those "
                              "have a parent", n->filename);
    }
    if (backing_file && backing_fmt && strcmp(backing_fmt, "vhdx") != 0)
        return vdk_error_setf(errp, ENOTSUP, "a VHDX parent must be VHDX, not '%s'",
                              backing_fmt);
    if (!s->rw)
        return vdk_error_setf(errp, EROFS, "'%s' is open read-only", n->filename);
    char *bf = backing_file ? strdup(backing_file) : NULL;
    char *bfmt = backing_file ? strdup("vhdx") : NULL;
    uint8_t *old = malloc(s->meta_region.length), *nw = malloc(s->meta_region.length);
    struct vhdx_parent pl = { 0 };
    int r = old && nw && (!backing_file || (bf && bfmt)) ? 0 : -ENOMEM;
    pthread_mutex_lock(&s->lock);
    if (r == 0 && (r = vhdx_file_read(n, s->meta_region.offset, s->meta_region.length, old)) < 0)
        vdk_error_setf_errno(errp, r, "cannot read the VHDX metadata");
    int li = r == 0 ? meta_find(old, vhdx_guid_parent_locator) : -1;
    if (r == 0 && li < 0)
        r = vdk_error_setf(errp, EINVAL, "differencing VHDX without a parent locator");
    if (r == 0) {
        memcpy(nw, old, s->meta_region.length);
        if (backing_file)
            r = set_locator(n, s, nw, li, backing_file, &pl, errp);
        else if ((r = drop_parent(n, s, nw, li)) < 0)
            vdk_error_setf_errno(errp, r, "cannot fill the blocks of '%s'", n->filename);
    }
    if (r == 0 && (r = meta_commit(n, s, old, nw)) < 0)
        vdk_error_setf_errno(errp, r, "cannot write the VHDX metadata");
    if (r == 0) {
        vhdx_parent_clear(&s->parent);
        s->parent = pl;
        memset(&pl, 0, sizeof(pl));
        if (!backing_file) {
            s->has_parent = false;
            r = vhdx_bat_geometry(s, errp);
            n->supported_zero_flags = VDK_REQ_MAY_UNMAP;
        }
        free(n->backing_file);
        free(n->backing_fmt);
        n->backing_file = bf;
        n->backing_fmt = bfmt;
        bf = bfmt = NULL;
    } else if (r == -ENOMEM) {
        vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    pthread_mutex_unlock(&s->lock);
    vhdx_parent_clear(&pl);
    free(old);
    free(nw);
    free(bf);
    free(bfmt);
    return r;
}

int vhdx_make_empty(struct vdk_node *n, struct vdk_error **errp)
{
    struct vhdx_state *s = n->opaque;
    if (!s->has_parent)
        return vdk_error_setf(errp, ENOTSUP, "'%s' is not a differencing VHDX", n->filename);
    if (!s->rw)
        return vdk_error_setf(errp, EROFS, "'%s' is open read-only", n->filename);
    pthread_mutex_lock(&s->lock);
    for (uint64_t i = 0; i < s->bat_entries; i++)
        if (s->bat[i])
            vhdx_bat_set(s, i, 0); /* payload: not present; bitmap: none */
    int r = vhdx_bat_sync(n, s);
    /* Nothing points past the metadata any more: give the blocks back. */
    uint64_t end = VHDX_MiB;
    uint64_t ends[] = { s->bat_region.offset + s->bat_region.length,
                        s->meta_region.offset + s->meta_region.length,
                        s->hdr.log_offset + s->hdr.log_length };
    for (int i = 0; i < 3; i++)
        if (ends[i] > end)
            end = ends[i];
    end = vdk_align_up(end, VHDX_MiB);
    int64_t flen = r == 0 ? vdk_get_length(n->file) : 0;
    if (flen < 0)
        r = (int)flen;
    if (r == 0 && (uint64_t)flen > end)
        r = vdk_truncate(n->file, end, VDK_PREALLOC_OFF, true, NULL);
    if (r == 0)
        s->file_end = end;
    pthread_mutex_unlock(&s->lock);
    return r < 0 ? vdk_error_setf_errno(errp, r, "cannot empty '%s'", n->filename) : 0;
}
