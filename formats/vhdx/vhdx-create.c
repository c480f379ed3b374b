/* SPDX-License-Identifier: MIT */
/*
 * Creating VHDX images with qemu-img 7.2's layout: file identifier, two
 * headers (the same GUIDs, consecutive sequence numbers), two region
 * tables (BAT, then metadata), the log at 1 MiB, the BAT after the log,
 * the metadata region after the BAT, and data from 5 MiB past the end of
 * the BAT; qemu's option rules (size rounded to a sector, at most
 * 64 TiB; block size 0 = by size, rounded to MiB, capped at 256 MiB, a
 * power of two; log size rounded to MiB) and BAT contents (block_state_zero
 * marks payload blocks ZERO; fixed images get their space and, without
 * block_state_zero, fully present blocks).  Only the creator string, the
 * random GUIDs and the header sequence numbers differ from qemu-img's.
 * vdk only: logical_sector_size=4096, and differencing images
 * (backing_file, backing_fmt=vhdx) with a parent locator (relative and
 * absolute path, the parent's data write GUID as linkage).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fmt-util.h"
#include "formats/vhdx/vhdx.h"

#define VHDX_CREATOR "vdk v" VDK_VERSION_STRING

static const char *const subformat_values[] = { "dynamic", "fixed", NULL };

const struct vdk_opt_desc vhdx_create_opts[] = {
    { "size", VDK_OPT_SIZE, "Virtual disk size; max of 64TB.", NULL, NULL },
    { "log_size", VDK_OPT_SIZE, "Log size; min 1MB.", "1M", NULL },
    { "block_size", VDK_OPT_SIZE, "Block Size; min 1MB, max 256MB. 0 means auto-calculate "
      "based on image size.", "0", NULL },
    { "subformat", VDK_OPT_ENUM, "VHDX format type, can be either 'dynamic' or 'fixed'. "
      "Default is 'dynamic'.", "dynamic", subformat_values },
    { "block_state_zero", VDK_OPT_BOOL, "Force use of payload blocks of type 'ZERO'. "
      "Non-standard, but default.", "on", NULL },
    { "logical_sector_size", VDK_OPT_SIZE, "Logical sector size, 512 or 4096 (vdk only)",
      "512", NULL },
    { "backing_file", VDK_OPT_STRING, "Parent VHDX of a differencing image (vdk only)",
      NULL, NULL },
    { "backing_fmt", VDK_OPT_STRING, "Format of the parent: vhdx", NULL, NULL },
    { NULL, 0, NULL, NULL, NULL },
};

struct plan {
    uint64_t size, block, log, lss;
    bool fixed, zero, diff;
    uint64_t bat_off, bat_len, meta_off, data_off;
    struct vhdx_state geo;
};

static int make_plan(struct vdk_opts *opts, uint64_t size, bool diff, struct plan *p,
                     struct vdk_error **errp)
{
    int r, sub = vdk_opts_get_enum(opts, "subformat", subformat_values, 0, errp);
    if (sub < 0)
        return sub;
    memset(p, 0, sizeof(*p));
    if ((r = vdk_opts_get_size(opts, "log_size", VHDX_MiB, &p->log, errp)) < 0 ||
        (r = vdk_opts_get_size(opts, "block_size", 0, &p->block, errp)) < 0 ||
        (r = vdk_opts_get_bool(opts, "block_state_zero", true, &p->zero, errp)) < 0 ||
        (r = vdk_opts_get_size(opts, "logical_sector_size", 512, &p->lss, errp)) < 0)
        return r;
    p->fixed = sub == 1;
    p->diff = diff;
    if (p->lss != 512 && p->lss != 4096)
        return vdk_error_setf(errp, EINVAL, "logical_sector_size must be 512 or 4096");
    if (size > VHDX_MAX_SIZE)
        return vdk_error_setf(errp, EINVAL, "Image size too large; max of 64TB");
    p->size = vdk_align_up(size, p->lss);
    if (p->fixed && diff)
        return vdk_error_setf(errp, EINVAL, "a differencing VHDX cannot be fixed");
    if (p->log > (1ull << 31))
        return vdk_error_setf(errp, EINVAL, "Log size must be smaller than 2 GB");
    p->log = vdk_align_up(p->log ? p->log : VHDX_MiB, VHDX_MiB);
    if (!p->block)
        p->block = p->size > (32ull << 40) ? 64 * VHDX_MiB
                 : p->size > (100ull << 30) ? 32 * VHDX_MiB
                 : p->size > (1ull << 30) ? 16 * VHDX_MiB : 8 * VHDX_MiB;
    if (p->block > (1ull << 40))
        p->block = VHDX_MAX_BLOCK;
    p->block = vdk_align_up(p->block, VHDX_MiB);
    if (p->block > VHDX_MAX_BLOCK)
        p->block = VHDX_MAX_BLOCK;
    if (!vdk_is_pow2(p->block))
        return vdk_error_setf(errp, EINVAL, "Block size must be a power of two");
    p->geo.block_size = (uint32_t)p->block;
    p->geo.lss = (uint32_t)p->lss;
    p->geo.disk_size = p->size;
    p->geo.has_parent = diff;
    p->geo.bat_region.length = UINT32_MAX;
    if ((r = vhdx_bat_geometry(&p->geo, errp)) < 0)
        return r;
    p->bat_off = VHDX_MiB + p->log;
    p->bat_len = vdk_align_up(p->geo.bat_entries * 8, VHDX_MiB);
    if (!p->bat_len)
        p->bat_len = VHDX_MiB;
    p->meta_off = p->bat_off + p->bat_len;
    p->data_off = p->bat_off + p->bat_len + 5 * VHDX_MiB;
    return 0;
}

static void put_meta_entry(uint8_t *t, int i, const uint8_t *guid, uint32_t off, uint32_t len,
                           uint32_t flags)
{
    uint8_t *e = t + 32 + 32 * i;
    memcpy(e, guid, 16);
    fmt_put_le32(e + 16, off);
    fmt_put_le32(e + 20, len);
    fmt_put_le32(e + 24, flags);
}

/* Parent locator and size of a new differencing image. */
static int plan_parent(const char *filename, const char *backing, struct vhdx_parent *pl,
                       uint64_t *size, struct vdk_error **errp)
{
    struct vdk_node *par = NULL;
    char *full = vdk_path_combine(filename, backing);
    int r = full ? vdk_open(&par, full, "vhdx", NULL, VDK_O_NO_BACKING, errp) : -ENOMEM;
    if (r < 0) {
        free(full);
        return r == -ENOMEM ? vdk_error_setf(errp, ENOMEM, "out of memory") : r;
    }
    int64_t len = vdk_get_length(par);
    vdk_close(par);
    if (len < 0) {
        free(full);
        return vdk_error_setf_errno(errp, (int)len, "cannot get the size of the parent");
    }
    *size = (uint64_t)len;
    uint8_t guid[16];
    if ((r = vhdx_read_data_guid(full, guid, errp)) < 0) {
        free(full);
        return r;
    }
    char g[39];
    vhdx_guid_to_str(guid, g);
    pl->linkage = strdup(g);
    pl->relative_path = strdup(backing);
    pl->absolute_path = full[0] == '/' ? strdup(full) : NULL;
    free(full);
    if (!pl->linkage || !pl->relative_path)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    return 0;
}

int vhdx_create(const char *filename, struct vdk_node *file, struct vdk_opts *opts,
                struct vdk_error **errp)
{
    uint64_t size = 0;
    struct plan p;
    struct vhdx_parent pl = { 0 };
    uint8_t *buf = NULL;
    int r = vdk_opts_get_size(opts, "size", 0, &size, errp);
    if (r < 0)
        return r;
    const char *backing = vdk_opts_get(opts, "backing_file");
    const char *bfmt = vdk_opts_get(opts, "backing_fmt");
    if (backing && !*backing)
        backing = NULL;
    if (bfmt && strcmp(bfmt, "vhdx") != 0)
        return vdk_error_setf(errp, ENOTSUP, "a VHDX parent must be VHDX, not '%s'", bfmt);
    if (backing) {
        uint64_t psize = 0;
        if ((r = plan_parent(filename, backing, &pl, &psize, errp)) < 0)
            goto out;
        if (vdk_opts_has(opts, "size") && size != psize) {
            r = vdk_error_setf(errp, EINVAL, "a differencing VHDX has its parent's size "
                               "(%" PRIu64 ")", psize);
            goto out;
        }
        size = psize;
    }
    if ((r = make_plan(opts, size, backing != NULL, &p, errp)) < 0)
        goto out;

    /* everything up to the end of the metadata region, in one buffer */
    uint64_t meta_end = p.meta_off + VHDX_MiB;
    buf = calloc(1, meta_end);
    if (!buf) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    memcpy(buf, "vhdxfile", 8);
    {
        const char *c = VHDX_CREATOR;
        for (size_t i = 0; c[i]; i++)
            fmt_put_le16(buf + 8 + 2 * i, (uint8_t)c[i]);
    }
    struct vhdx_header h = { .version = 1, .log_length = (uint32_t)p.log,
                             .log_offset = VHDX_MiB };
    if ((r = fmt_uuid_generate(h.file_write_guid)) < 0 ||
        (r = fmt_uuid_generate(h.data_write_guid)) < 0) {
        vdk_error_setf_errno(errp, r, "cannot generate a GUID");
        goto out;
    }
    h.seq = 1;
    vhdx_header_build(&h, buf + VHDX_HEADER1_OFF);
    h.seq = 2;
    vhdx_header_build(&h, buf + VHDX_HEADER2_OFF);

    uint8_t *rt = buf + VHDX_RT1_OFF;
    memcpy(rt, "regi", 4);
    fmt_put_le32(rt + 8, 2);
    memcpy(rt + 16, vhdx_guid_bat, 16);
    fmt_put_le64(rt + 32, p.bat_off);
    fmt_put_le32(rt + 40, (uint32_t)p.bat_len);
    memcpy(rt + 48, vhdx_guid_metadata, 16);
    fmt_put_le64(rt + 64, p.meta_off);
    fmt_put_le32(rt + 72, (uint32_t)VHDX_MiB);
    fmt_put_le32(rt + 4, vhdx_checksum(rt, VHDX_RT_SIZE, 4));
    memcpy(buf + VHDX_RT2_OFF, rt, VHDX_RT_SIZE);

    uint8_t *mt = buf + p.meta_off, *items = mt + VHDX_META_TABLE_SIZE;
    memcpy(mt, "metadata", 8);
    fmt_put_le16(mt + 10, backing ? 6 : 5);
    put_meta_entry(mt, 0, vhdx_guid_file_params, 0x10000, 8, 4);
    put_meta_entry(mt, 1, vhdx_guid_disk_size, 0x10008, 8, 6);
    put_meta_entry(mt, 2, vhdx_guid_page83, 0x10010, 16, 6);
    put_meta_entry(mt, 3, vhdx_guid_lss, 0x10020, 4, 6);
    put_meta_entry(mt, 4, vhdx_guid_pss, 0x10024, 4, 6);
    fmt_put_le32(items, (uint32_t)p.block);
    /* qemu marks fixed images "leave blocks allocated" */
    fmt_put_le32(items + 4, backing ? 2 : p.fixed ? 1 : 0);
    fmt_put_le64(items + 8, p.size);
    if ((r = fmt_uuid_generate(items + 16)) < 0) {
        vdk_error_setf_errno(errp, r, "cannot generate a GUID");
        goto out;
    }
    fmt_put_le32(items + 32, (uint32_t)p.lss);
    fmt_put_le32(items + 36, (uint32_t)p.lss);
    if (backing) {
        long l = vhdx_locator_build(&pl, items + 40, VHDX_MAX_LOCATOR);
        if (l < 0) {
            r = vdk_error_setf(errp, ENAMETOOLONG, "parent path too long for a VHDX locator");
            goto out;
        }
        put_meta_entry(mt, 5, vhdx_guid_parent_locator, 0x10028, (uint32_t)l, 4);
    }

    /* BAT: payload entries by qemu's rules; sector-bitmap entries 0. */
    if (!backing && (p.fixed || p.zero)) {
        uint8_t *bat = buf + p.bat_off;
        for (uint64_t b = 0; b < p.geo.payload_blocks; b++) {
            uint64_t e = p.zero ? VHDX_BLK_ZERO
                       : vdk_align_up(p.data_off + b * p.block, VHDX_MiB) | VHDX_BLK_FULLY_PRESENT;
            fmt_put_le64(bat + 8 * vhdx_payload_index(&p.geo, b), e);
        }
    }
    r = vdk_pwrite(file, buf, meta_end, 0, 0);
    if (r == 0)
        r = vdk_truncate(file, p.data_off + (p.fixed ? p.size : 0), VDK_PREALLOC_OFF, false,
                         NULL);
    if (r < 0)
        vdk_error_setf_errno(errp, r, "cannot write the VHDX image");
out:
    free(buf);
    vhdx_parent_clear(&pl);
    return r;
}

int vhdx_measure(struct vdk_opts *opts, struct vdk_node *src, uint64_t size,
                 struct vdk_measure *out, struct vdk_error **errp)
{
    struct plan p;
    int r;
    if ((r = fmt_measure_size(src, &size, errp)) < 0)
        return r;
    if ((r = make_plan(opts, size, false, &p, errp)) < 0)
        return r;
    uint64_t used = 0;
    if (p.fixed)
        used = p.geo.payload_blocks;
    else if (src && (r = fmt_count_data_blocks(src, size, p.block, &used)) < 0)
        return vdk_error_setf_errno(errp, r, "cannot read the allocation of the source");
    out->fully_allocated = p.data_off + p.geo.payload_blocks * p.block;
    out->required = p.data_off + (p.fixed ? p.size : used * p.block);
    return 0;
}
