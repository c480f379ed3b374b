/* SPDX-License-Identifier: MIT */
/*
 * Creating VDI images the way qemu-img 7.2 does: the same header bytes
 * (its text line, version 1.1, header size 0x180, map at 0x200, data
 * after the map rounded to a sector, no geometry), random image and
 * last-snapshot UUIDs, the size rounded up to a sector; static images
 * map every block in order and the file is extended to hold them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fmt-util.h"
#include "formats/vdi/vdi.h"

#define VDI_TEXT "<<< QEMU VM Virtual Disk Image >>>\n"
#define VDI_QEMU_HEADER_SIZE 0x180u

const struct vdk_opt_desc vdi_create_opts[] = {
    { "size", VDK_OPT_SIZE, "Virtual disk size", NULL, NULL },
    { "static", VDK_OPT_BOOL, "VDI static (pre-allocated) image", "off", NULL },
    { NULL, 0, NULL, NULL, NULL },
};

struct vdi_plan {
    uint64_t size;
    uint32_t blocks;
    uint32_t offset_data;
};

static int plan(uint64_t req, struct vdi_plan *p, struct vdk_error **errp)
{
    p->size = vdk_align_up(req, VDI_SECTOR);
    if (req > VDI_DISK_SIZE_MAX || p->size > VDI_DISK_SIZE_MAX)
        return vdk_error_setf(errp, EINVAL, "Unsupported VDI image size (size is 0x%" PRIx64
                              ", max supported is 0x%" PRIx64 ")", req, VDI_DISK_SIZE_MAX);
    p->blocks = (uint32_t)((p->size + VDI_BLOCK_SIZE - 1) / VDI_BLOCK_SIZE);
    p->offset_data = VDI_HEADER_SIZE + (uint32_t)vdk_align_up((uint64_t)p->blocks * 4,
                                                               VDI_SECTOR);
    return 0;
}

int vdi_create(const char *filename, struct vdk_node *file, struct vdk_opts *opts,
               struct vdk_error **errp)
{
    uint64_t req = 0;
    bool is_static = false;
    struct vdi_plan p;
    int r;
    (void)filename;
    if ((r = vdk_opts_get_size(opts, "size", 0, &req, errp)) < 0 ||
        (r = vdk_opts_get_bool(opts, "static", false, &is_static, errp)) < 0)
        return r;
    if ((r = plan(req, &p, errp)) < 0)
        return r;
    size_t meta = p.offset_data;
    uint8_t *buf = calloc(1, meta);
    if (!buf)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    memcpy(buf, VDI_TEXT, strlen(VDI_TEXT));
    fmt_put_le32(buf + VDI_OFF_SIGNATURE, VDI_SIGNATURE);
    fmt_put_le32(buf + VDI_OFF_VERSION, VDI_VERSION_1_1);
    fmt_put_le32(buf + VDI_OFF_HEADER_SIZE, VDI_QEMU_HEADER_SIZE);
    fmt_put_le32(buf + VDI_OFF_IMAGE_TYPE, is_static ? VDI_TYPE_STATIC : VDI_TYPE_DYNAMIC);
    fmt_put_le32(buf + VDI_OFF_BMAP, VDI_HEADER_SIZE);
    fmt_put_le32(buf + VDI_OFF_DATA, p.offset_data);
    fmt_put_le32(buf + VDI_OFF_SECTOR_SIZE, VDI_SECTOR);
    fmt_put_le64(buf + VDI_OFF_DISK_SIZE, p.size);
    fmt_put_le32(buf + VDI_OFF_BLOCK_SIZE, VDI_BLOCK_SIZE);
    fmt_put_le32(buf + VDI_OFF_BLOCKS, p.blocks);
    fmt_put_le32(buf + VDI_OFF_ALLOCATED, is_static ? p.blocks : 0);
    if ((r = fmt_uuid_generate(buf + VDI_OFF_UUID_IMAGE)) < 0 ||
        (r = fmt_uuid_generate(buf + VDI_OFF_UUID_SNAP)) < 0) {
        free(buf);
        return vdk_error_setf_errno(errp, r, "cannot generate a UUID");
    }
    for (uint32_t i = 0; i < p.blocks; i++)
        fmt_put_le32(buf + VDI_HEADER_SIZE + 4 * (size_t)i, is_static ? i : VDI_UNALLOCATED);
    r = vdk_pwrite(file, buf, meta, 0, 0);
    free(buf);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot write the VDI header");
    if (is_static) {
        uint64_t end = p.offset_data + (uint64_t)p.blocks * VDI_BLOCK_SIZE;
        r = vdk_truncate(file, end, VDK_PREALLOC_OFF, false, errp);
        if (r < 0)
            return r;
    }
    return 0;
}

int vdi_measure(struct vdk_opts *opts, struct vdk_node *src, uint64_t size,
                struct vdk_measure *out, struct vdk_error **errp)
{
    bool is_static = false;
    struct vdi_plan p;
    int r;
    if ((r = vdk_opts_get_bool(opts, "static", false, &is_static, errp)) < 0)
        return r;
    if ((r = fmt_measure_size(src, &size, errp)) < 0)
        return r;
    if ((r = plan(size, &p, errp)) < 0)
        return r;
    uint64_t used = p.blocks;
    if (!is_static) {
        used = 0;
        if (src && (r = fmt_count_data_blocks(src, size, VDI_BLOCK_SIZE, &used)) < 0)
            return vdk_error_setf_errno(errp, r, "cannot read the allocation of the source");
    }
    out->fully_allocated = p.offset_data + (uint64_t)p.blocks * VDI_BLOCK_SIZE;
    out->required = p.offset_data + used * VDI_BLOCK_SIZE;
    return 0;
}
