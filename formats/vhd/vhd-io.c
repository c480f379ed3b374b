/* SPDX-License-Identifier: MIT */
/*
 * VHD data path: reads through the BAT and sector bitmaps, writes with
 * block allocation, write-zeroes and block status.
 *
 * Requests arrive 512-byte aligned (the driver's request alignment).
 * s->lock guards the BAT, the allocation point and bitmap updates; data
 * I/O to allocated blocks runs outside it.
 *
 * Allocation order, so that a crash never exposes garbage:
 *   1. bitmap + data of the new block at the allocation point (this
 *      overwrites the end footer);
 *   2. the footer after the new block;
 *   3. the BAT entry is updated in memory only and marked dirty;
 *   4. on the next flush (the caller's flush, FUA, or close): flush the
 *      file, then write the dirty BAT entries; the generic layer's flush
 *      of the file that follows makes them durable.
 * So the BAT on disk never points at a block whose data is not on disk.
 * A crash before 4 may leave no valid footer at the end (the copy at
 * offset 0 then serves) and blocks the BAT does not reference (leaks for
 * check); unflushed writes are lost, as the caller's flush contract
 * allows.  Allocation costs no flush of its own.
 *
 * Differencing images: a new block is filled from the parent for the
 * sectors the write does not cover and all its bitmap bits are set, so
 * later writes into it never touch the bitmap.  Blocks written by other
 * tools may have partial bitmaps; a write there sets the bits after the
 * data is flushed.  Without an open parent (VDK_O_NO_BACKING) exactly the
 * written sectors are marked.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "formats/vhd/vhd.h"

/* File offset of the data of the block whose BAT entry is e (after its
   sector bitmap). */
static uint64_t block_data(const struct vhd_state *s, uint32_t e)
{
    return (uint64_t)e * VHD_SECTOR + s->bitmap_size;
}

static bool bm_test(const uint8_t *bm, uint64_t sec)
{
    return bm[sec / 8] & (0x80u >> (sec % 8));
}

static void bm_set(uint8_t *bm, uint64_t sec)
{
    bm[sec / 8] |= (uint8_t)(0x80u >> (sec % 8));
}

static bool bm_all_set(const uint8_t *bm, uint32_t nsec)
{
    for (uint32_t i = 0; i < nsec; i++)
        if (!bm_test(bm, i))
            return false;
    return true;
}

static bool full_test(const struct vhd_state *s, uint32_t blk)
{
    return s->bm_full[blk / 8] & (1u << (blk % 8));
}

static void full_set(struct vhd_state *s, uint32_t blk)
{
    s->bm_full[blk / 8] |= (uint8_t)(1u << (blk % 8));
}

/* BAT entry of blk; *full (may be NULL): its bitmap is known all-ones
   (always so in dynamic images, whose bitmaps reads ignore). */
static uint32_t bat_get(struct vhd_state *s, uint32_t blk, bool *full)
{
    pthread_mutex_lock(&s->lock);
    uint32_t e = s->bat[blk];
    if (full)
        *full = s->footer.type == VHD_TYPE_DYNAMIC || full_test(s, blk);
    pthread_mutex_unlock(&s->lock);
    return e;
}

/* Guest bytes no layer of this image holds: the parent's, else zeros. */
static int read_parent(struct vdk_node *n, uint64_t offset, uint64_t bytes, uint8_t *buf)
{
    uint64_t have = 0;
    if (n->backing) {
        int64_t blen = vdk_get_length(n->backing);
        if (blen < 0)
            return (int)blen;
        if (offset < (uint64_t)blen) {
            have = vdk_min_u64(bytes, (uint64_t)blen - offset);
            int r = vdk_pread(n->backing, buf, have, offset, 0);
            if (r < 0)
                return r;
        }
    }
    memset(buf + have, 0, bytes - have);
    return 0;
}

/* Read a block's sector bitmap; buffer of s->bitmap_size bytes. */
static int read_bitmap(struct vdk_node *n, uint32_t entry, uint8_t *bm)
{
    struct vhd_state *s = n->opaque;
    return vdk_pread(n->file, bm, s->bitmap_size, (uint64_t)entry * VHD_SECTOR, 0);
}

/* Differencing block with a (possibly) partial bitmap: runs of sectors
   from this image or from the parent. */
static int read_diff_block(struct vdk_node *n, uint32_t blk, uint32_t entry, uint32_t in,
                           uint32_t c, uint8_t *p)
{
    struct vhd_state *s = n->opaque;
    uint64_t data_off = block_data(s, entry);
    uint8_t *bm = malloc(s->bitmap_size);
    if (!bm)
        return -ENOMEM;
    int r = read_bitmap(n, entry, bm);
    if (r < 0)
        goto out;
    uint64_t sec = in / VHD_SECTOR, end = (in + (uint64_t)c) / VHD_SECTOR;
    while (sec < end) {
        bool set = bm_test(bm, sec);
        uint64_t run = sec + 1;
        while (run < end && bm_test(bm, run) == set)
            run++;
        uint64_t len = (run - sec) * VHD_SECTOR;
        uint8_t *dst = p + (sec * VHD_SECTOR - in);
        if (set)
            r = vdk_pread(n->file, dst, len, data_off + sec * VHD_SECTOR, 0);
        else
            r = read_parent(n, (uint64_t)blk * s->block_size + sec * VHD_SECTOR, len, dst);
        if (r < 0)
            goto out;
        sec = run;
    }
out:
    free(bm);
    return r;
}

int vhd_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *buf,
              unsigned flags)
{
    struct vhd_state *s = n->opaque;
    uint8_t *p = buf;
    if (s->footer.type == VHD_TYPE_FIXED)
        return vdk_pread(n->file, buf, bytes, offset, flags);
    while (bytes) {
        uint32_t blk = (uint32_t)(offset / s->block_size);
        uint32_t in = (uint32_t)(offset % s->block_size);
        uint32_t c = (uint32_t)vdk_min_u64(bytes, s->block_size - in);
        bool full;
        uint32_t e = bat_get(s, blk, &full);
        int r;
        if (e == VHD_BAT_UNUSED)
            r = read_parent(n, offset, c, p);
        else if (full)
            r = vdk_pread(n->file, p, c, block_data(s, e) + in, 0);
        else
            r = read_diff_block(n, blk, e, in, c, p);
        if (r < 0)
            return r;
        offset += c;
        bytes -= c;
        p += c;
    }
    return 0;
}

/*
 * Allocate block blk at the allocation point and write [in, in+c) of it
 * from p.  Called with s->lock held.
 */
static int alloc_block(struct vdk_node *n, uint32_t blk, uint32_t in, uint32_t c,
                       const uint8_t *p)
{
    struct vhd_state *s = n->opaque;
    uint64_t pos = s->alloc_off;
    uint64_t data_off = pos + s->bitmap_size;
    uint64_t footer_off = data_off + s->block_size;
    uint32_t nsec = s->block_size / VHD_SECTOR;
    bool diff = s->footer.type == VHD_TYPE_DIFF;
    bool copy_parent = diff && n->backing;
    int r;

    if (pos / VHD_SECTOR >= VHD_BAT_UNUSED)
        return -EFBIG; /* a BAT entry holds a 32-bit sector number */
    /* Only a partial write over a parent needs the whole block in memory;
       otherwise the bitmap and the caller's data go out as they are (no
       block-sized buffer to allocate, zero and copy per new block). */
    bool merge_parent = copy_parent && c < s->block_size;
    uint8_t *buf = vdk_blk_alloc((size_t)s->bitmap_size + (merge_parent ? s->block_size : 0));
    if (!buf)
        return -ENOMEM;
    uint8_t *bm = buf, *data = buf + s->bitmap_size;
    if (!diff || copy_parent) {
        memset(bm, 0xff, s->bitmap_size);
    } else {
        for (uint32_t sec = in / VHD_SECTOR; sec < (in + c) / VHD_SECTOR; sec++)
            bm_set(bm, sec);
    }
    /* Bytes of the file past the footer we overwrite are not ours to
       trust: the new block must read as zeros where it is not written. */
    if (s->file_len > data_off) {
        r = vdk_pwrite_zeroes(n->file, data_off,
                              vdk_min_u64(s->file_len, footer_off) - data_off, 0);
        if (r < 0)
            goto out;
    }
    if (merge_parent) {
        uint64_t gstart = (uint64_t)blk * s->block_size;
        uint64_t valid = vdk_min_u64(s->block_size, n->size - gstart);
        r = read_parent(n, gstart, valid, data);
        if (r < 0)
            goto out;
        memcpy(data + in, p, c);
        r = vdk_pwrite(n->file, buf, (uint64_t)s->bitmap_size + s->block_size, pos, 0);
    } else {
        r = vdk_pwrite(n->file, bm, s->bitmap_size, pos, 0);
        if (r == 0)
            r = vdk_pwrite(n->file, p, c, data_off + in, 0);
    }
    if (r == 0)
        r = vdk_pwrite(n->file, s->footer_raw, VHD_FOOTER_SIZE, footer_off, 0);
    if (r == 0) {
        s->bat[blk] = (uint32_t)(pos / VHD_SECTOR);
        if (s->bat_dirty_hi == 0 || blk < s->bat_dirty_lo)
            s->bat_dirty_lo = blk;
        if (blk + 1 > s->bat_dirty_hi)
            s->bat_dirty_hi = blk + 1;
        s->alloc_off = s->used_end = footer_off;
        s->file_len = vhd_max_u64(s->file_len, footer_off + VHD_FOOTER_SIZE);
        s->footer_from_copy = false;
        if (bm_all_set(bm, nsec))
            full_set(s, blk);
    }
out:
    vdk_blk_free(buf);
    return r;
}

/* Write into an allocated differencing block whose bitmap may be partial:
   data first and flushed, then the bits. */
static int write_diff_block(struct vdk_node *n, uint32_t blk, uint32_t e, uint32_t in,
                            uint32_t c, const uint8_t *p)
{
    struct vhd_state *s = n->opaque;
    uint64_t bm_off = (uint64_t)e * VHD_SECTOR;
    int r = vdk_pwrite(n->file, p, c, bm_off + s->bitmap_size + in, 0);
    if (r < 0)
        return r;
    uint8_t *bm = malloc(s->bitmap_size);
    if (!bm)
        return -ENOMEM;
    pthread_mutex_lock(&s->lock);
    r = read_bitmap(n, e, bm);
    bool changed = false;
    for (uint64_t sec = in / VHD_SECTOR; r == 0 && sec < (in + (uint64_t)c) / VHD_SECTOR; sec++) {
        if (!bm_test(bm, sec)) {
            bm_set(bm, sec);
            changed = true;
        }
    }
    if (r == 0 && changed) {
        r = vdk_flush(n->file);
        if (r == 0)
            r = vdk_pwrite(n->file, bm, s->bitmap_size, bm_off, 0);
    }
    if (r == 0 && bm_all_set(bm, s->block_size / VHD_SECTOR))
        full_set(s, blk);
    pthread_mutex_unlock(&s->lock);
    free(bm);
    return r;
}

int vhd_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes, const void *buf,
               unsigned flags)
{
    struct vhd_state *s = n->opaque;
    const uint8_t *p = buf;
    if (s->footer.type == VHD_TYPE_FIXED)
        return vdk_pwrite(n->file, buf, bytes, offset, flags);
    while (bytes) {
        uint32_t blk = (uint32_t)(offset / s->block_size);
        uint32_t in = (uint32_t)(offset % s->block_size);
        uint32_t c = (uint32_t)vdk_min_u64(bytes, s->block_size - in);
        int r;
        pthread_mutex_lock(&s->lock);
        uint32_t e = s->bat[blk];
        if (e == VHD_BAT_UNUSED) {
            r = alloc_block(n, blk, in, c, p);
            pthread_mutex_unlock(&s->lock);
        } else {
            bool direct = s->footer.type == VHD_TYPE_DYNAMIC || full_test(s, blk);
            bool meta = s->meta_blocks && vhd_block_over_meta(s, e);
            pthread_mutex_unlock(&s->lock);
            if (meta)
                r = -EIO; /* the block is the image's metadata */
            else if (direct)
                r = vdk_pwrite(n->file, p, c, block_data(s, e) + in,
                               0);
            else
                r = write_diff_block(n, blk, e, in, c, p);
        }
        if (r < 0)
            return r;
        offset += c;
        bytes -= c;
        p += c;
    }
    return 0;
}

int vhd_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                      unsigned flags)
{
    struct vhd_state *s = n->opaque;
    if (s->footer.type == VHD_TYPE_FIXED)
        return vdk_pwrite_zeroes(n->file, offset, bytes, flags);
    /* An unallocated differencing block shows the parent, not zeros. */
    if (s->footer.type != VHD_TYPE_DYNAMIC)
        return -ENOTSUP;
    while (bytes) {
        uint32_t blk = (uint32_t)(offset / s->block_size);
        uint32_t in = (uint32_t)(offset % s->block_size);
        uint32_t c = (uint32_t)vdk_min_u64(bytes, s->block_size - in);
        uint32_t e = bat_get(s, blk, NULL);
        if (e != VHD_BAT_UNUSED && s->meta_blocks && vhd_block_over_meta(s, e))
            return -EIO;
        if (e != VHD_BAT_UNUSED) {
            int r = vdk_pwrite_zeroes(n->file, block_data(s, e) + in,
                                      c, flags);
            if (r < 0)
                return r;
        }
        offset += c;
        bytes -= c;
    }
    return 0;
}

int vhd_discard(struct vdk_node *n, uint64_t offset, uint64_t bytes)
{
    struct vhd_state *s = n->opaque;
    if (s->footer.type == VHD_TYPE_FIXED)
        return vdk_discard(n->file, offset, bytes);
    /* Dynamic: punch the data out of allocated blocks (they then read as
       zeros, the blocks stay allocated).  Differencing: reading the
       parent's data back would be wrong, and zeros cost space. */
    if (s->footer.type == VHD_TYPE_DYNAMIC)
        return vhd_pwrite_zeroes(n, offset, bytes, VDK_REQ_MAY_UNMAP);
    return -ENOTSUP;
}

int vhd_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                     uint64_t *pnum, uint64_t *map, struct vdk_node **file)
{
    struct vhd_state *s = n->opaque;
    if (s->footer.type == VHD_TYPE_FIXED) {
        *pnum = bytes;
        *map = offset;
        *file = n->file;
        return VDK_BS_RECURSE | VDK_BS_OFFSET_VALID | VDK_BS_PLAIN;
    }
    uint32_t blk = (uint32_t)(offset / s->block_size);
    uint32_t in = (uint32_t)(offset % s->block_size);
    uint64_t c = vdk_min_u64(bytes, s->block_size - in);
    bool full;
    uint32_t e = bat_get(s, blk, &full);
    if (e == VHD_BAT_UNUSED) {
        /* Merge following unallocated blocks. */
        while (c < bytes && blk + 1 < s->bat_entries && bat_get(s, blk + 1, NULL) == VHD_BAT_UNUSED) {
            blk++;
            c = vdk_min_u64(bytes, c + s->block_size);
        }
        *pnum = c;
        return 0;
    }
    uint64_t data_off = block_data(s, e);
    if (!full) {
        uint8_t *bm = malloc(s->bitmap_size);
        if (!bm)
            return -ENOMEM;
        int r = read_bitmap(n, e, bm);
        if (r < 0) {
            free(bm);
            return r;
        }
        uint64_t sec = in / VHD_SECTOR, end = (in + c) / VHD_SECTOR;
        bool set = bm_test(bm, sec);
        uint64_t run = sec + 1;
        while (run < end && bm_test(bm, run) == set)
            run++;
        free(bm);
        c = (run - sec) * VHD_SECTOR;
        if (!set) {
            *pnum = c;
            return 0;
        }
    }
    *pnum = c;
    *map = data_off + in;
    *file = n->file;
    return VDK_BS_DATA | VDK_BS_OFFSET_VALID | VDK_BS_PLAIN;
}

/* Called with s->lock held. */
static int write_dirty_bat(struct vdk_node *n)
{
    struct vhd_state *s = n->opaque;
    if (s->bat_dirty_hi == 0)
        return 0;
    int r = vdk_flush(n->file);
    if (r < 0)
        return r;
    uint32_t lo = s->bat_dirty_lo, cnt = s->bat_dirty_hi - lo;
    uint8_t *be = malloc((size_t)cnt * 4);
    if (!be)
        return -ENOMEM;
    for (uint32_t i = 0; i < cnt; i++)
        vhd_put_be32(be + 4 * i, s->bat[lo + i]);
    r = vdk_pwrite(n->file, be, (uint64_t)cnt * 4, s->hdr.table_offset + (uint64_t)lo * 4, 0);
    free(be);
    if (r == 0)
        s->bat_dirty_lo = s->bat_dirty_hi = 0;
    return r;
}

int vhd_flush(struct vdk_node *n)
{
    struct vhd_state *s = n->opaque;
    if (s->footer.type == VHD_TYPE_FIXED)
        return 0;
    pthread_mutex_lock(&s->lock);
    int r = write_dirty_bat(n);
    pthread_mutex_unlock(&s->lock);
    return r;
}

int vhd_make_empty(struct vdk_node *n, struct vdk_error **errp)
{
    struct vhd_state *s = n->opaque;
    if (s->footer.type != VHD_TYPE_DIFF)
        return vdk_error_setf(errp, ENOTSUP, "only a differencing VHD can be emptied");
    size_t bytes = (size_t)s->bat_entries * 4;
    uint8_t *bat = malloc(bytes ? bytes : 1);
    if (!bat)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    memset(bat, 0xff, bytes);
    pthread_mutex_lock(&s->lock);
    /* BAT first: a crash after it leaves unreferenced blocks (leaks),
       never references to cut-off ones. */
    int r = vdk_pwrite(n->file, bat, bytes, s->hdr.table_offset, 0);
    if (r == 0)
        r = vdk_flush(n->file);
    if (r == 0) {
        memset(s->bat, 0xff, bytes);
        memset(s->bm_full, 0, s->bat_entries / 8 + 1);
        s->bat_dirty_lo = s->bat_dirty_hi = 0;
        r = vdk_pwrite(n->file, s->footer_raw, VHD_FOOTER_SIZE, s->meta_end, 0);
    }
    if (r == 0)
        r = vdk_flush(n->file);
    if (r == 0)
        r = vdk_truncate(n->file, s->meta_end + VHD_FOOTER_SIZE, VDK_PREALLOC_OFF, true, NULL);
    if (r == 0) {
        s->alloc_off = s->used_end = s->meta_end;
        s->file_len = s->meta_end + VHD_FOOTER_SIZE;
    }
    pthread_mutex_unlock(&s->lock);
    free(bat);
    return r < 0 ? vdk_error_setf_errno(errp, r, "cannot empty the differencing VHD") : 0;
}
