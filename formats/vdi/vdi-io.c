/* SPDX-License-Identifier: MIT */
/*
 * VDI reads, writes and block status.
 *
 * A new block goes after the last allocated one (offset_data +
 * allocated * block_size), as qemu and VirtualBox place them.  Its map
 * entry and the allocated count change in memory; flush (and close) makes
 * the data durable, then writes the header with the count, then the map
 * entries.  A crash leaves at worst blocks no entry references (the count
 * says more than the map holds: check reports it, -r all repairs it); it
 * never leaves an entry naming unwritten data or two entries sharing a
 * block.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fmt-util.h"
#include "formats/vdi/vdi.h"

static uint32_t get_entry(struct vdi_state *s, uint64_t idx)
{
    pthread_mutex_lock(&s->lock);
    uint32_t e = s->bmap[idx];
    pthread_mutex_unlock(&s->lock);
    return e;
}

/* File offset of guest block idx for fmt_read_mapped(). */
static int64_t map_block(struct vdk_node *n, uint64_t idx)
{
    struct vdi_state *s = n->opaque;
    uint32_t e = get_entry(s, idx);
    if (!VDI_IS_ALLOCATED(e))
        return 0;
    if (e >= s->hdr.blocks)
        return -EIO; /* corrupt map entry: check reports it */
    return (int64_t)vdi_block_offset(s, e); /* > 0: data follows the header */
}

int vdi_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *buf,
              unsigned flags)
{
    struct vdi_state *s = n->opaque;
    (void)flags;
    return fmt_read_mapped(n, s->hdr.block_size, map_block, offset, bytes, buf);
}

int vdi_write_meta(struct vdk_node *n, uint32_t first, uint32_t last)
{
    struct vdi_state *s = n->opaque;
    uint32_t cnt = last - first + 1;
    uint8_t *raw = malloc((size_t)cnt * 4);
    if (!raw)
        return -ENOMEM;
    for (uint32_t i = 0; i < cnt; i++)
        fmt_put_le32(raw + 4 * i, s->bmap[first + i]);
    int r = vdk_pwrite(n->file, raw, (uint64_t)cnt * 4,
                       s->hdr.offset_bmap + (uint64_t)first * 4, 0);
    free(raw);
    return r;
}

static int write_header(struct vdk_node *n)
{
    struct vdi_state *s = n->opaque;
    fmt_put_le32(s->header_raw + VDI_OFF_ALLOCATED, s->hdr.allocated);
    return vdk_pwrite(n->file, s->header_raw, VDI_HEADER_SIZE, 0, 0);
}

int vdi_block_within_reach(struct vdk_node *n, uint32_t block)
{
    struct vdi_state *s = n->opaque;
    return fmt_check_reach(n, vdi_block_offset(s, block), s->hdr.block_size, &s->warned_far,
                           "block", "block map");
}

/* Allocate block idx holding buf at `in`; caller holds the lock.  The map
   entry and the count change in memory; vdi_flush writes them. */
static int allocate_block(struct vdk_node *n, uint64_t idx, uint64_t in, uint64_t len,
                          const void *buf)
{
    struct vdi_state *s = n->opaque;
    if (s->next_block >= s->hdr.blocks)
        return -EIO; /* the count is corrupt: every block is taken */
    uint32_t e = s->next_block;
    uint64_t off = vdi_block_offset(s, e);
    int r = vdi_block_within_reach(n, e);
    if (r == 0 && in)
        r = vdk_pwrite_zeroes(n->file, off, in, 0);
    if (r == 0)
        r = vdk_pwrite(n->file, buf, len, off + in, 0);
    if (r == 0 && in + len < s->hdr.block_size)
        r = vdk_pwrite_zeroes(n->file, off + in + len, s->hdr.block_size - in - len, 0);
    if (r < 0)
        return r;
    s->next_block = e + 1;
    s->hdr.allocated = e + 1;
    s->bmap[idx] = e;
    if (idx < s->dirty_lo)
        s->dirty_lo = (uint32_t)idx;
    if (idx + 1 > s->dirty_hi)
        s->dirty_hi = (uint32_t)idx + 1;
    return 0;
}

int vdi_flush(struct vdk_node *n)
{
    struct vdi_state *s = n->opaque;
    int r = 0;
    pthread_mutex_lock(&s->lock);
    if (s->dirty_lo < s->dirty_hi) {
        /* data first, then the count, then the entries naming it */
        r = vdk_flush(n->file);
        if (r == 0)
            r = write_header(n);
        if (r == 0)
            r = vdi_write_meta(n, s->dirty_lo, s->dirty_hi - 1);
        if (r == 0) {
            s->dirty_lo = UINT32_MAX;
            s->dirty_hi = 0;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

int vdi_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes, const void *buf,
               unsigned flags)
{
    struct vdi_state *s = n->opaque;
    const uint8_t *p = buf;
    while (bytes) {
        uint64_t idx = offset / s->hdr.block_size;
        uint64_t in = offset % s->hdr.block_size;
        uint64_t len = vdk_min_u64(bytes, s->hdr.block_size - in);
        int r;
        pthread_mutex_lock(&s->lock);
        uint32_t e = s->bmap[idx];
        if (VDI_IS_ALLOCATED(e)) {
            pthread_mutex_unlock(&s->lock);
            if (e >= s->hdr.blocks)
                return -EIO;
            r = vdi_block_within_reach(n, e);
            if (r == 0)
                r = vdk_pwrite(n->file, p, len, vdi_block_offset(s, e) + in, 0);
        } else {
            r = allocate_block(n, idx, in, len, p);
            pthread_mutex_unlock(&s->lock);
        }
        if (r < 0)
            return r;
        p += len;
        offset += len;
        bytes -= len;
    }
    return 0;
}

/* Unallocated and discarded blocks read as zeros already; allocated ones
   are zeroed in the file. */
int vdi_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                      unsigned flags)
{
    struct vdi_state *s = n->opaque;
    while (bytes) {
        uint64_t idx = offset / s->hdr.block_size;
        uint64_t in = offset % s->hdr.block_size;
        uint64_t len = vdk_min_u64(bytes, s->hdr.block_size - in);
        uint32_t e = get_entry(s, idx);
        if (VDI_IS_ALLOCATED(e)) {
            if (e >= s->hdr.blocks)
                return -EIO;
            int r = vdi_block_within_reach(n, e);
            if (r == 0)
                r = vdk_pwrite_zeroes(n->file, vdi_block_offset(s, e) + in, len,
                                      flags & (VDK_REQ_NO_FALLBACK | VDK_REQ_MAY_UNMAP));
            if (r < 0)
                return r;
        }
        offset += len;
        bytes -= len;
    }
    return 0;
}

int vdi_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                     uint64_t *pnum, uint64_t *map, struct vdk_node **file)
{
    struct vdi_state *s = n->opaque;
    uint64_t bs = s->hdr.block_size;
    uint64_t idx = offset / bs;
    uint64_t in = offset % bs;
    pthread_mutex_lock(&s->lock);
    uint32_t e = s->bmap[idx];
    bool alloc = VDI_IS_ALLOCATED(e);
    uint64_t done = vdk_min_u64(bytes, bs - in);
    /* Extend over following blocks in the same state (and, when
       allocated, contiguous in the file). */
    uint32_t prev = e;
    while (done < bytes) {
        uint32_t f = s->bmap[++idx];
        if (VDI_IS_ALLOCATED(f) != alloc || (alloc && f != prev + 1))
            break;
        prev = f;
        done = vdk_min_u64(bytes, done + bs);
    }
    pthread_mutex_unlock(&s->lock);
    *pnum = done;
    /* As qemu: a block no entry maps reads as zeros and counts as
       present (VDI has no backing file). */
    if (!alloc)
        return VDK_BS_ZERO | VDK_BS_ALLOCATED;
    if (e >= s->hdr.blocks || prev >= s->hdr.blocks)
        return -EIO;
    *map = vdi_block_offset(s, e) + in;
    *file = n->file;
    /* Static images were extended, not written: their blocks may be
       holes of the file (qemu's BDRV_BLOCK_RECURSE). */
    return VDK_BS_DATA | VDK_BS_ALLOCATED | VDK_BS_OFFSET_VALID | VDK_BS_PLAIN |
           (s->hdr.image_type == VDI_TYPE_STATIC ? VDK_BS_PEEK_HOLES : 0);
}
