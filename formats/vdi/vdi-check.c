/* SPDX-License-Identifier: MIT */
/*
 * Checking a VDI image, with qemu-img 7.2's messages, numbers and counts
 * for what qemu finds:
 *  - map entries that name a block past the map's size ("too large"),
 *  - two entries sharing one block ("also used by"; qemu prints the
 *    shared block's number twice, and so do we),
 *  - a header count of allocated blocks that differs from the map ("is
 *    <entries in the map>, should be <header count>", where the map's
 *    count includes entries sharing a block, as qemu counts them).
 * Beyond qemu, an entry whose block lies (partly) past the end of the
 * file gets a warning, not an error: its missing bytes read as zeros in
 * qemu and vdk alike and no write can land on another block through it,
 * so the exit code stays qemu's.
 * qemu cannot repair VDI images (`check -r` exits 63 there); `-r all`
 * here clears the bad entries (their data is lost or belongs to the
 * other entry), moves the highest blocks into any holes this leaves so
 * the blocks in use are exactly 0..count-1, and rewrites the count, so
 * VirtualBox and qemu, which put the next block at index `count`, never
 * overwrite one in use.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/vdi/vdi.h"

/* Move block `from` (mapped by entry idx) into the free block `to`. */
static int move_block(struct vdk_node *n, uint32_t idx, uint32_t from, uint32_t to)
{
    struct vdi_state *s = n->opaque;
    /* The same rule as for a guest write: a damaged data offset must not
       send the repair's write gigabytes past the end of the file. */
    int r = vdi_block_within_reach(n, to);
    if (r < 0)
        return r;
    uint8_t *buf = vdk_blk_alloc(s->hdr.block_size);
    if (!buf)
        return -ENOMEM;
    r = vdk_pread(n->file, buf, s->hdr.block_size, vdi_block_offset(s, from), 0);
    if (r == 0)
        r = vdk_pwrite(n->file, buf, s->hdr.block_size, vdi_block_offset(s, to), 0);
    if (r == 0)
        r = vdk_flush(n->file);
    vdk_blk_free(buf);
    if (r < 0)
        return r;
    s->bmap[idx] = to;
    return vdi_write_meta(n, idx, idx);
}

/* Make the mapped blocks exactly 0..count-1. */
static int compact(struct vdk_node *n, uint32_t *owner, uint32_t count)
{
    struct vdi_state *s = n->opaque;
    uint32_t lo = 0, hi = s->hdr.blocks;
    for (;;) {
        while (lo < count && owner[lo] != VDI_UNALLOCATED)
            lo++;
        while (hi > count && owner[hi - 1] == VDI_UNALLOCATED)
            hi--;
        if (lo >= count || hi <= count)
            return 0;
        uint32_t idx = owner[hi - 1];
        int r = move_block(n, idx, hi - 1, lo);
        if (r < 0)
            return r;
        owner[lo] = idx;
        owner[hi - 1] = VDI_UNALLOCATED;
    }
}

int vdi_check(struct vdk_node *n, struct vdk_check_result *res, unsigned fix,
              struct vdk_error **errp)
{
    struct vdi_state *s = n->opaque;
    bool repair = fix & VDK_CHECK_FIX_ERRORS;
    const char *what = repair ? "Repairing" : "ERROR:";
    uint32_t nb = s->hdr.blocks, count = 0;
    int64_t flen = vdk_get_length(n->file);
    if (flen < 0)
        return vdk_error_setf_errno(errp, (int)flen, "cannot get the file length");
    /* owner[b]: the entry that maps block b */
    uint32_t *owner = malloc((size_t)nb * 4 + 4);
    if (!owner)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    memset(owner, 0xff, (size_t)nb * 4 + 4);
    int r = 0;
    uint32_t mapped = 0; /* qemu's count: every entry inside the map */
    pthread_mutex_lock(&s->lock);
    for (uint32_t i = 0; i < nb; i++) {
        uint32_t e = s->bmap[i];
        if (!VDI_IS_ALLOCATED(e))
            continue;
        if (e < nb)
            mapped++;
        if (e < nb && owner[e] == VDI_UNALLOCATED) {
            owner[e] = i;
            count++;
            if (vdi_block_offset(s, e) + s->hdr.block_size > (uint64_t)flen)
                vdk_warn("block index %" PRIu32 " maps block %" PRIu32 " past the end of "
                         "the file; its missing bytes read as zeros", i, e);
            continue;
        }
        if (e >= nb)
            fprintf(stderr, "%s block index %" PRIu32 " too large, is %" PRIu32 "\n",
                    what, i, e);
        else
            fprintf(stderr, "%s block index %" PRIu32 " also used by %" PRIu32 "\n",
                    what, e, e);
        res->corruptions++;
        if (repair) {
            s->bmap[i] = VDI_UNALLOCATED;
            if ((r = vdi_write_meta(n, i, i)) < 0)
                goto out;
            res->corruptions_fixed++;
        }
    }
    /* A repair keeps `count` entries (the bad ones are cleared). */
    uint32_t have = repair ? count : mapped;
    if (have != s->hdr.allocated) {
        fprintf(stderr, "%s allocated blocks mismatch, is %" PRIu32 ", should be %" PRIu32 "\n",
                what, have, s->hdr.allocated);
        res->corruptions++;
    }
    if (repair && (r = compact(n, owner, count)) == 0) {
        if (count != s->hdr.allocated)
            res->corruptions_fixed++;
        s->hdr.allocated = count;
        s->next_block = count;
        uint8_t *h = s->header_raw;
        h[VDI_OFF_ALLOCATED] = (uint8_t)count;
        h[VDI_OFF_ALLOCATED + 1] = (uint8_t)(count >> 8);
        h[VDI_OFF_ALLOCATED + 2] = (uint8_t)(count >> 16);
        h[VDI_OFF_ALLOCATED + 3] = (uint8_t)(count >> 24);
        r = vdk_pwrite(n->file, h, VDI_HEADER_SIZE, 0, 0);
    }
out:
    pthread_mutex_unlock(&s->lock);
    free(owner);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot repair the VDI block map");
    return 0;
}
