/* SPDX-License-Identifier: MIT */
/*
 * VHDX metadata region: the table and its items (file parameters, virtual
 * disk size, page 83 data, logical and physical sector size, parent
 * locator), and the BAT geometry they define.  Every item is bounded by
 * the region; duplicate items and unknown required items are refused.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fmt-util.h"
#include "formats/vhd/vhd.h"
#include "formats/vhdx/vhdx.h"

enum { META_USER = 1, META_VDISK = 2, META_REQUIRED = 4 };

void vhdx_parent_clear(struct vhdx_parent *p)
{
    free(p->linkage);
    free(p->linkage2);
    free(p->relative_path);
    free(p->absolute_path);
    free(p->volume_path);
    memset(p, 0, sizeof(*p));
}

int vhdx_locator_parse(const uint8_t *buf, size_t len, struct vhdx_parent *p,
                       struct vdk_error **errp)
{
    if (len < 20)
        return vdk_error_setf(errp, EINVAL, "VHDX parent locator too short");
    if (memcmp(buf, vhdx_guid_locator_type, 16) != 0)
        return vdk_error_setf(errp, ENOTSUP, "VHDX parent locator of an unknown type");
    uint16_t count = fmt_le16(buf + 18);
    if (20 + 12 * (size_t)count > len)
        return vdk_error_setf(errp, EINVAL, "VHDX parent locator entries exceed the item");
    for (uint16_t i = 0; i < count; i++) {
        const uint8_t *e = buf + 20 + 12 * (size_t)i;
        uint32_t ko = fmt_le32(e), vo = fmt_le32(e + 4);
        uint16_t kl = fmt_le16(e + 8), vl = fmt_le16(e + 10);
        if ((uint64_t)ko + kl > len || (uint64_t)vo + vl > len || !kl || !vl)
            return vdk_error_setf(errp, EINVAL, "VHDX parent locator entry %u is out of "
                                  "bounds", i);
        char *k = vhd_utf16_to_utf8(buf + ko, kl, false);
        char *v = vhd_utf16_to_utf8(buf + vo, vl, false);
        if (!k || !v) {
            free(k);
            free(v);
            return vdk_error_setf(errp, EINVAL, "VHDX parent locator entry %u is not UTF-16", i);
        }
        char **slot = !strcmp(k, "parent_linkage") ? &p->linkage
                    : !strcmp(k, "parent_linkage2") ? &p->linkage2
                    : !strcmp(k, "relative_path") ? &p->relative_path
                    : !strcmp(k, "absolute_win32_path") ? &p->absolute_path
                    : !strcmp(k, "volume_path") ? &p->volume_path : NULL;
        free(k);
        if (slot && *slot) {
            free(v);
            return vdk_error_setf(errp, EINVAL, "VHDX parent locator repeats a key");
        }
        if (slot)
            *slot = v;
        else
            free(v);
    }
    if (!p->linkage)
        return vdk_error_setf(errp, EINVAL, "VHDX parent locator lacks parent_linkage");
    return 0;
}

long vhdx_locator_build(const struct vhdx_parent *p, uint8_t *buf, size_t cap)
{
    const char *keys[] = { "parent_linkage", "relative_path", "absolute_win32_path" };
    const char *vals[] = { p->linkage, p->relative_path, p->absolute_path };
    int count = 0;
    for (int i = 0; i < 3; i++)
        count += vals[i] != NULL;
    size_t pos = 20 + 12 * (size_t)count;
    if (pos > cap)
        return -ENOSPC;
    memset(buf, 0, pos);
    memcpy(buf, vhdx_guid_locator_type, 16);
    fmt_put_le16(buf + 18, (uint16_t)count);
    int k = 0;
    for (int i = 0; i < 3; i++) {
        if (!vals[i])
            continue;
        uint8_t *e = buf + 20 + 12 * k++;
        long kl = vhd_utf8_to_utf16(keys[i], buf + pos, cap - pos, false);
        if (kl <= 0)
            return -ENOSPC;
        fmt_put_le32(e, (uint32_t)pos);
        fmt_put_le16(e + 8, (uint16_t)kl);
        pos += (size_t)kl;
        long vl = vhd_utf8_to_utf16(vals[i], buf + pos, cap - pos, false);
        if (vl <= 0 || vl > 0xffff)
            return -ENOSPC;
        fmt_put_le32(e + 4, (uint32_t)pos);
        fmt_put_le16(e + 10, (uint16_t)vl);
        pos += (size_t)vl;
    }
    return (long)pos;
}

int vhdx_bat_geometry(struct vhdx_state *s, struct vdk_error **errp)
{
    s->chunk_ratio = ((uint64_t)1 << 23) * s->lss / s->block_size;
    s->payload_blocks = (s->disk_size + s->block_size - 1) / s->block_size;
    s->bitmap_blocks = (s->payload_blocks + s->chunk_ratio - 1) / s->chunk_ratio;
    if (s->has_parent)
        s->bat_entries = s->bitmap_blocks * (s->chunk_ratio + 1);
    else
        s->bat_entries = s->payload_blocks ? s->payload_blocks +
                         (s->payload_blocks - 1) / s->chunk_ratio : 0;
    if (s->bat_entries * 8 > s->bat_region.length)
        return vdk_error_setf(errp, EINVAL, "VHDX BAT region of %" PRIu32 " bytes is too small "
                              "for %" PRIu64 " entries", s->bat_region.length, s->bat_entries);
    return 0;
}

/* Read item e's bytes (length bounded by the caller). */
static int item_read(struct vdk_node *n, struct vhdx_state *s, const uint8_t *e, void *buf,
                     uint32_t want, struct vdk_error **errp)
{
    uint32_t off = fmt_le32(e + 16), len = fmt_le32(e + 20);
    if (len != want)
        return vdk_error_setf(errp, EINVAL, "VHDX metadata item has %" PRIu32 " bytes, "
                              "expected %" PRIu32, len, want);
    int r = vhdx_file_read(n, s->meta_region.offset + off, len, buf);
    return r < 0 ? vdk_error_setf_errno(errp, r, "cannot read VHDX metadata") : 0;
}

int vhdx_metadata_read(struct vdk_node *n, struct vhdx_state *s, struct vdk_error **errp)
{
    uint8_t *t = malloc(VHDX_META_TABLE_SIZE);
    uint8_t b[16];
    int r;
    if (!t)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    if ((r = vhdx_file_read(n, s->meta_region.offset, VHDX_META_TABLE_SIZE, t)) < 0) {
        vdk_error_setf_errno(errp, r, "cannot read the VHDX metadata table");
        goto out;
    }
    r = -EINVAL;
    if (memcmp(t, "metadata", 8) != 0) {
        vdk_error_setf(errp, EINVAL, "VHDX metadata table has a bad signature");
        goto out;
    }
    uint16_t count = fmt_le16(t + 10);
    if (count > VHDX_META_MAX_ENTRIES) {
        vdk_error_setf(errp, EINVAL, "VHDX metadata table has %u entries", count);
        goto out;
    }
    unsigned seen = 0;
    for (uint16_t i = 0; i < count; i++) {
        const uint8_t *e = t + 32 + 32 * (size_t)i;
        uint32_t off = fmt_le32(e + 16), len = fmt_le32(e + 20), flags = fmt_le32(e + 24);
        if (len && (off < VHDX_META_TABLE_SIZE || (uint64_t)off + len > s->meta_region.length)) {
            vdk_error_setf(errp, EINVAL, "VHDX metadata item %u is outside the region", i);
            goto out;
        }
        for (uint16_t k = 0; k < i; k++)
            if (memcmp(t + 32 + 32 * (size_t)k, e, 16) == 0) {
                vdk_error_setf(errp, EINVAL, "VHDX metadata item %u appears twice", i);
                goto out;
            }
        const uint8_t *ids[] = { vhdx_guid_file_params, vhdx_guid_disk_size, vhdx_guid_page83,
                                 vhdx_guid_lss, vhdx_guid_pss, vhdx_guid_parent_locator };
        int which = -1;
        for (int k = 0; k < 6; k++)
            if (memcmp(e, ids[k], 16) == 0)
                which = k;
        if (which < 0 || (flags & META_USER)) {
            if ((flags & META_REQUIRED) && !(flags & META_USER)) {
                char g[39];
                vhdx_guid_to_str(e, g);
                vdk_error_setf(errp, ENOTSUP, "unsupported required VHDX metadata item %s", g);
                goto out;
            }
            continue;
        }
        seen |= 1u << which;
        switch (which) {
        case 0:
            if (item_read(n, s, e, b, 8, errp) < 0)
                goto out;
            s->block_size = fmt_le32(b);
            s->leave_blocks_allocated = fmt_le32(b + 4) & 1;
            s->has_parent = fmt_le32(b + 4) & 2;
            break;
        case 1:
            if (item_read(n, s, e, b, 8, errp) < 0)
                goto out;
            s->disk_size = fmt_le64(b);
            break;
        case 2:
            if (item_read(n, s, e, s->page83, 16, errp) < 0)
                goto out;
            break;
        case 3:
            if (item_read(n, s, e, b, 4, errp) < 0)
                goto out;
            s->lss = fmt_le32(b);
            break;
        case 4:
            if (item_read(n, s, e, b, 4, errp) < 0)
                goto out;
            s->pss = fmt_le32(b);
            break;
        case 5: {
            if (len > VHDX_MAX_LOCATOR || len < 20) {
                vdk_error_setf(errp, EINVAL, "VHDX parent locator of %" PRIu32 " bytes", len);
                goto out;
            }
            uint8_t *loc = malloc(len);
            if (!loc) {
                vdk_error_setf(errp, ENOMEM, "out of memory");
                goto out;
            }
            r = item_read(n, s, e, loc, len, errp);
            if (r == 0) {
                vhdx_parent_clear(&s->parent);
                r = vhdx_locator_parse(loc, len, &s->parent, errp);
            }
            free(loc);
            if (r < 0)
                goto out;
            r = -EINVAL;
            break;
        }
        }
    }
    if ((seen & 0x1f) != 0x1f) {
        vdk_error_setf(errp, EINVAL, "VHDX metadata lacks a required item");
        goto out;
    }
    if (s->has_parent && !(seen & 0x20)) {
        vdk_error_setf(errp, EINVAL, "differencing VHDX without a parent locator");
        goto out;
    }
    if (!vdk_is_pow2(s->block_size) || s->block_size < VHDX_MIN_BLOCK ||
        s->block_size > VHDX_MAX_BLOCK) {
        vdk_error_setf(errp, EINVAL, "VHDX block size %" PRIu32 " is not a power of two "
                       "from 1 MiB to 256 MiB", s->block_size);
        goto out;
    }
    if ((s->lss != 512 && s->lss != 4096) || (s->pss != 512 && s->pss != 4096)) {
        vdk_error_setf(errp, EINVAL, "VHDX sector sizes %" PRIu32 "/%" PRIu32 " (512 or 4096 "
                       "expected)", s->lss, s->pss);
        goto out;
    }
    if (s->disk_size % s->lss || s->disk_size > VHDX_MAX_SIZE) {
        vdk_error_setf(errp, EINVAL, "VHDX virtual size %" PRIu64 " is not a multiple of the "
                       "sector size or exceeds 64 TiB", s->disk_size);
        goto out;
    }
    r = vhdx_bat_geometry(s, errp);
out:
    free(t);
    return r;
}
