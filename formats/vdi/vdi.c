/* SPDX-License-Identifier: MIT */
/*
 * The VDI driver: probing, the header (qemu's acceptance rules and
 * messages), opening with a bounded block map, info and the driver table.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fmt-util.h"
#include "formats/vdi/vdi.h"

static int vdi_probe(const uint8_t *buf, size_t len, const char *filename)
{
    (void)filename;
    if (len < VDI_OFF_SIGNATURE + 4)
        return 0;
    return fmt_le32(buf + VDI_OFF_SIGNATURE) == VDI_SIGNATURE ? 100 : 0;
}

int vdi_header_parse(const uint8_t *b, struct vdi_header *h, uint64_t file_len,
                     struct vdk_error **errp)
{
    memset(h, 0, sizeof(*h));
    if (fmt_le32(b + VDI_OFF_SIGNATURE) != VDI_SIGNATURE)
        return vdk_error_setf(errp, EINVAL, "Image not in VDI format (bad signature %08" PRIx32 ")",
                              fmt_le32(b + VDI_OFF_SIGNATURE));
    h->version = fmt_le32(b + VDI_OFF_VERSION);
    h->header_size = fmt_le32(b + VDI_OFF_HEADER_SIZE);
    h->image_type = fmt_le32(b + VDI_OFF_IMAGE_TYPE);
    h->offset_bmap = fmt_le32(b + VDI_OFF_BMAP);
    h->offset_data = fmt_le32(b + VDI_OFF_DATA);
    h->sector_size = fmt_le32(b + VDI_OFF_SECTOR_SIZE);
    h->disk_size = fmt_le64(b + VDI_OFF_DISK_SIZE);
    h->block_size = fmt_le32(b + VDI_OFF_BLOCK_SIZE);
    h->block_extra = fmt_le32(b + VDI_OFF_BLOCK_EXTRA);
    h->blocks = fmt_le32(b + VDI_OFF_BLOCKS);
    h->allocated = fmt_le32(b + VDI_OFF_ALLOCATED);
    memcpy(h->uuid_image, b + VDI_OFF_UUID_IMAGE, 16);
    memcpy(h->uuid_snap, b + VDI_OFF_UUID_SNAP, 16);
    memcpy(h->uuid_link, b + VDI_OFF_UUID_LINK, 16);
    memcpy(h->uuid_parent, b + VDI_OFF_UUID_PARENT, 16);

    /* VirtBox convert can record odd sizes; the excess sector is ignored. */
    h->disk_size &= ~(uint64_t)(VDI_SECTOR - 1);
    if (h->version != VDI_VERSION_1_1)
        return vdk_error_setf(errp, ENOTSUP, "unsupported VDI image (version %" PRIu32
                              ".%" PRIu32 ")", h->version >> 16, h->version & 0xffff);
    if (h->offset_bmap % VDI_SECTOR)
        return vdk_error_setf(errp, ENOTSUP, "unsupported VDI image (unaligned block map "
                              "offset 0x%" PRIx32 ")", h->offset_bmap);
    if (h->offset_data % VDI_SECTOR)
        return vdk_error_setf(errp, ENOTSUP, "unsupported VDI image (unaligned data "
                              "offset 0x%" PRIx32 ")", h->offset_data);
    if (h->sector_size != VDI_SECTOR)
        return vdk_error_setf(errp, ENOTSUP, "unsupported VDI image (sector size %" PRIu32
                              " is not %u)", h->sector_size, VDI_SECTOR);
    if (h->block_size != VDI_BLOCK_SIZE)
        return vdk_error_setf(errp, ENOTSUP, "unsupported VDI image (block size %" PRIu32
                              " is not %u)", h->block_size, VDI_BLOCK_SIZE);
    if (h->block_extra != 0)
        return vdk_error_setf(errp, ENOTSUP, "unsupported VDI image (block_extra %" PRIu32
                              " is not 0)", h->block_extra);
    if (h->disk_size > (uint64_t)h->blocks * h->block_size)
        return vdk_error_setf(errp, ENOTSUP, "unsupported VDI image (disk size %" PRIu64
                              ", image bitmap has room for %" PRIu64 ")", h->disk_size,
                              (uint64_t)h->blocks * h->block_size);
    if (!fmt_uuid_is_null(h->uuid_link))
        return vdk_error_setf(errp, ENOTSUP, "unsupported VDI image (non-NULL link UUID)");
    if (!fmt_uuid_is_null(h->uuid_parent))
        return vdk_error_setf(errp, ENOTSUP, "unsupported VDI image (non-NULL parent UUID)");
    if (h->blocks > VDI_BLOCKS_MAX)
        return vdk_error_setf(errp, ENOTSUP, "unsupported VDI image (too many blocks %" PRIu32
                              ", max is %u)", h->blocks, VDI_BLOCKS_MAX);
    if (h->image_type != VDI_TYPE_DYNAMIC && h->image_type != VDI_TYPE_STATIC)
        return vdk_error_setf(errp, ENOTSUP, "unsupported VDI image (type %" PRIu32 ")",
                              h->image_type);
    /* Beyond qemu: the map must sit between the header and the data,
       inside the file, which also bounds the memory it takes. */
    uint64_t bmap_bytes = (uint64_t)h->blocks * 4;
    if (h->offset_bmap < VDI_HEADER_SIZE ||
        (uint64_t)h->offset_bmap + bmap_bytes > h->offset_data)
        return vdk_error_setf(errp, EINVAL, "VDI block map at 0x%" PRIx32 " (%" PRIu64
                              " bytes) overlaps the header or the data at 0x%" PRIx32,
                              h->offset_bmap, bmap_bytes, h->offset_data);
    if (file_len && (uint64_t)h->offset_bmap + bmap_bytes > file_len)
        return vdk_error_setf(errp, EINVAL, "VDI block map at 0x%" PRIx32 " (%" PRIu64
                              " bytes) is beyond the end of the file", h->offset_bmap,
                              bmap_bytes);
    return 0;
}

static void vdi_free_state(struct vdi_state *s)
{
    free(s->bmap);
    s->bmap = NULL;
    if (s->lock_init)
        pthread_mutex_destroy(&s->lock);
    s->lock_init = false;
}

static int vdi_open(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                    struct vdk_error **errp)
{
    struct vdi_state *s = n->opaque;
    (void)opts;
    (void)flags;
    int64_t flen = vdk_get_length(n->file);
    if (flen < 0)
        return vdk_error_setf_errno(errp, (int)flen, "cannot get the length of '%s'",
                                    n->filename);
    s->file_len = (uint64_t)flen;
    if (s->file_len < VDI_HEADER_SIZE)
        return vdk_error_setf(errp, EINVAL, "Image not in VDI format (file too short)");
    int r = vdk_pread(n->file, s->header_raw, VDI_HEADER_SIZE, 0, 0);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot read the VDI header");
    r = vdi_header_parse(s->header_raw, &s->hdr, s->file_len, errp);
    if (r < 0)
        return r;
    size_t nb = (size_t)s->hdr.blocks;
    s->bmap = malloc(nb * 4 + 4);
    if (!s->bmap)
        return vdk_error_setf(errp, ENOMEM, "out of memory for the VDI block map");
    if (nb) {
        r = vdk_pread(n->file, s->bmap, nb * 4, s->hdr.offset_bmap, 0);
        if (r < 0) {
            vdi_free_state(s);
            return vdk_error_setf_errno(errp, r, "cannot read the VDI block map");
        }
        for (size_t i = 0; i < nb; i++)
            s->bmap[i] = fmt_le32((const uint8_t *)&s->bmap[i]);
    }
    s->next_block = s->hdr.allocated;
    for (size_t i = 0; i < nb; i++)
        if (VDI_IS_ALLOCATED(s->bmap[i]) && s->bmap[i] < s->hdr.blocks &&
            s->bmap[i] >= s->next_block)
            s->next_block = s->bmap[i] + 1;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        vdi_free_state(s);
        return vdk_error_setf(errp, ENOMEM, "cannot create the VDI lock");
    }
    s->lock_init = true;
    s->dirty_lo = UINT32_MAX;
    n->size = s->hdr.disk_size;
    n->limits.request_alignment = VDI_SECTOR;
    n->limits.opt_transfer = VDI_BLOCK_SIZE;
    n->limits.pwrite_zeroes_alignment = VDI_SECTOR;
    return 0;
}

static void vdi_close(struct vdk_node *n)
{
    struct vdi_state *s = n->opaque;
    if (s->bmap && !n->read_only && vdi_flush(n) < 0)
        vdk_warn("could not write the block map of '%s'", n->filename);
    vdi_free_state(s);
}

static int vdi_get_info(struct vdk_node *n, struct vdk_driver_info *info,
                        struct vdk_error **errp)
{
    (void)errp;
    struct vdi_state *s = n->opaque;
    /* qemu-img shows cluster-size and "dirty-flag": false, nothing more. */
    info->cluster_size = s->hdr.block_size;
    info->has_dirty_flag = true;
    return 0;
}

const struct vdk_driver vdk_driver_vdi = {
    .name = "vdi",
    .kind = VDK_DRV_FORMAT,
    .state_size = sizeof(struct vdi_state),
    .create_opts = vdi_create_opts,
    .probe = vdi_probe,
    .open = vdi_open,
    .close = vdi_close,
    .create = vdi_create,
    .pread = vdi_pread,
    .pwrite = vdi_pwrite,
    .pwrite_zeroes = vdi_pwrite_zeroes,
    .flush = vdi_flush,
    .block_status = vdi_block_status,
    .get_info = vdi_get_info,
    .check = vdi_check,
    .measure = vdi_measure,
};
