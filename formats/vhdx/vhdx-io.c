/* SPDX-License-Identifier: MIT */
/*
 * VHDX reads, writes, block allocation, zeroes, discard, flush and block
 * status.
 *
 * Block states: fully present blocks read from the file; partially
 * present ones (differencing) per sector by the chunk's sector bitmap,
 * from the block or the parent; not-present blocks from the parent
 * (differencing) or as zeros; zero, unmapped and undefined blocks as
 * zeros.
 *
 * A write to a block that is not fully present makes it fully present:
 * a new block at the end of the file (or the block's own space when its
 * entry keeps an offset) gets the old content (zeros, or the parent's
 * sectors where the bitmap or the state says so) around the new data.
 * Its BAT entry changes in memory only; flush makes the data durable,
 * then writes the changed BAT sectors through the log.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fmt-util.h"
#include "formats/vhdx/vhdx.h"

#define COPY_CHUNK (1u << 20)

void vhdx_bat_set(struct vhdx_state *s, uint64_t i, uint64_t entry)
{
    s->bat[i] = entry;
    s->bat_dirty[i / 512] = 1;
    s->any_dirty = true;
}

int vhdx_bat_sync(struct vdk_node *n, struct vhdx_state *s)
{
    if (!s->any_dirty)
        return 0;
    uint64_t nsec = (s->bat_entries + 511) / 512, cnt = 0;
    for (uint64_t k = 0; k < nsec; k++)
        cnt += s->bat_dirty[k];
    uint64_t *offs = malloc(cnt * sizeof(*offs) + 8);
    uint8_t *data = malloc(cnt * VHDX_LOG_SECTOR + 1);
    if (!offs || !data) {
        free(offs);
        free(data);
        return -ENOMEM;
    }
    uint64_t j = 0;
    for (uint64_t k = 0; k < nsec; k++) {
        if (!s->bat_dirty[k])
            continue;
        offs[j] = s->bat_region.offset + k * VHDX_LOG_SECTOR;
        for (int e = 0; e < 512; e++)
            fmt_put_le64(data + j * VHDX_LOG_SECTOR + 8 * e, s->bat[k * 512 + e]);
        j++;
    }
    /* The data the new entries point at is durable first. */
    int r = vdk_flush(n->file);
    if (r == 0)
        r = vhdx_log_write(n, s, offs, data, cnt);
    if (r == 0) {
        memset(s->bat_dirty, 0, nsec);
        s->any_dirty = false;
    }
    free(offs);
    free(data);
    return r;
}

/* Parent data for [off, off+len) of the guest; zeros past its end. */
static int read_parent(struct vdk_node *n, uint64_t off, uint64_t len, uint8_t *buf)
{
    if (!n->backing) {
        memset(buf, 0, len);
        return 0;
    }
    int64_t plen = vdk_get_length(n->backing);
    if (plen < 0)
        return (int)plen;
    uint64_t have = off >= (uint64_t)plen ? 0 : vdk_min_u64(len, (uint64_t)plen - off);
    if (have) {
        int r = vdk_pread(n->backing, buf, have, off, 0);
        if (r < 0)
            return r;
    }
    memset(buf + have, 0, len - have);
    return 0;
}

/* Sector-bitmap bits of block b for sectors [first, first+count) of the
   block, one byte per sector in out.  -EIO when the bitmap is missing. */
static int read_bitmap(struct vdk_node *n, struct vhdx_state *s, uint64_t b, uint64_t first,
                       uint64_t count, uint8_t *out)
{
    uint64_t chunk = b / s->chunk_ratio;
    uint64_t sb = s->bat[chunk * (s->chunk_ratio + 1) + s->chunk_ratio];
    if (VHDX_BAT_STATE(sb) != VHDX_SB_PRESENT) {
        memset(out, 0, count);
        return 0;
    }
    uint64_t spb = s->block_size / s->lss;
    uint64_t bit0 = (b % s->chunk_ratio) * spb + first;
    uint64_t byte0 = bit0 / 8, nbytes = (bit0 % 8 + count + 7) / 8;
    uint8_t *bits = malloc(nbytes);
    if (!bits)
        return -ENOMEM;
    int r = vhdx_file_read(n, VHDX_BAT_OFFSET(sb) + byte0, nbytes, bits);
    for (uint64_t i = 0; r == 0 && i < count; i++) {
        uint64_t bit = bit0 % 8 + i;
        out[i] = (bits[bit / 8] >> (bit % 8)) & 1;
    }
    free(bits);
    return r;
}

/* Read [in, in+len) of partially present block b. */
static int read_partial(struct vdk_node *n, struct vhdx_state *s, uint64_t b, uint64_t e,
                        uint64_t in, uint64_t len, uint8_t *buf)
{
    uint64_t first = in / s->lss, count = len / s->lss;
    uint8_t *bits = malloc(count);
    if (!bits)
        return -ENOMEM;
    int r = read_bitmap(n, s, b, first, count, bits);
    for (uint64_t i = 0; r == 0 && i < count;) {
        uint64_t j = i;
        while (j < count && bits[j] == bits[i])
            j++;
        uint64_t o = (first + i) * s->lss, l = (j - i) * s->lss;
        uint8_t *p = buf + i * s->lss;
        if (bits[i])
            r = vhdx_file_read(n, VHDX_BAT_OFFSET(e) + o, l, p);
        else
            r = read_parent(n, b * s->block_size + o, l, p);
        i = j;
    }
    free(bits);
    return r;
}

int vhdx_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *buf,
               unsigned flags)
{
    struct vhdx_state *s = n->opaque;
    uint8_t *p = buf;
    (void)flags;
    while (bytes) {
        uint64_t b = offset / s->block_size, in = offset % s->block_size;
        uint64_t len = vdk_min_u64(bytes, s->block_size - in);
        pthread_mutex_lock(&s->lock);
        uint64_t e = s->bat[vhdx_payload_index(s, b)];
        int r = 0;
        switch (VHDX_BAT_STATE(e)) {
        case VHDX_BLK_FULLY_PRESENT:
            pthread_mutex_unlock(&s->lock);
            r = s->n_ovl ? vhdx_file_read(n, VHDX_BAT_OFFSET(e) + in, len, p)
                         : vdk_pread(n->file, p, len, VHDX_BAT_OFFSET(e) + in, 0);
            break;
        case VHDX_BLK_PARTIALLY_PRESENT:
            r = read_partial(n, s, b, e, in, len, p);
            pthread_mutex_unlock(&s->lock);
            break;
        case VHDX_BLK_NOT_PRESENT:
            pthread_mutex_unlock(&s->lock);
            if (s->has_parent)
                r = read_parent(n, offset, len, p);
            else
                memset(p, 0, len);
            break;
        default:
            pthread_mutex_unlock(&s->lock);
            memset(p, 0, len);
        }
        if (r < 0)
            return r;
        p += len;
        offset += len;
        bytes -= len;
    }
    return 0;
}

/* Before the first change the guest can see, a new data write GUID
   (which a differencing child's parent linkage names). */
static int user_visible_write(struct vdk_node *n, struct vhdx_state *s)
{
    if (s->data_guid_done)
        return 0;
    int r = fmt_uuid_generate(s->hdr.data_write_guid);
    if (r == 0)
        r = vhdx_header_update(n, s);
    if (r == 0)
        s->data_guid_done = true;
    return r;
}

/*
 * Make block b fully present with buf at [in, in+len); lock held.  The old
 * content around the write: parent sectors (not present in a differencing
 * image, or clear bitmap bits), else zeros.
 */
int vhdx_fill_block(struct vdk_node *n, struct vhdx_state *s, uint64_t b, uint64_t in,
                    uint64_t len, const uint8_t *buf)
{
    uint64_t idx = vhdx_payload_index(s, b), e = s->bat[idx];
    unsigned st = VHDX_BAT_STATE(e);
    uint64_t off = VHDX_BAT_OFFSET(e), old_end = s->file_end;
    bool from_parent = s->has_parent && (st == VHDX_BLK_NOT_PRESENT ||
                                         st == VHDX_BLK_PARTIALLY_PRESENT);
    int r = 0;
    if (st == VHDX_BLK_PARTIALLY_PRESENT) {
        /* keep its place; only clear sectors take parent data */
    } else if (!off || st == VHDX_BLK_NOT_PRESENT || st == VHDX_BLK_UNMAPPED_V095) {
        /* (a 0.95 entry's offset is not ours to trust: a new place) */
        off = s->file_end;
        s->file_end += s->block_size;
    }
    uint64_t gbase = b * s->block_size;
    if (!from_parent) {
        if (in)
            r = vdk_pwrite_zeroes(n->file, off, in, 0);
        if (r == 0 && in + len < s->block_size)
            r = vdk_pwrite_zeroes(n->file, off + in + len, s->block_size - in - len, 0);
    } else {
        uint8_t *tmp = vdk_blk_alloc(COPY_CHUNK);
        uint8_t *bits = st == VHDX_BLK_PARTIALLY_PRESENT ? malloc(COPY_CHUNK / 512) : NULL;
        if (!tmp || (st == VHDX_BLK_PARTIALLY_PRESENT && !bits))
            r = -ENOMEM;
        for (uint64_t o = 0; r == 0 && o < s->block_size; o += COPY_CHUNK) {
            uint64_t l = vdk_min_u64(COPY_CHUNK, s->block_size - o);
            if (o + l <= in || o >= in + len || in > o || in + len < o + l) {
                r = read_parent(n, gbase + o, l, tmp);
                if (r == 0 && bits) {
                    /* sectors the block already holds stay */
                    uint64_t ns = l / s->lss;
                    r = read_bitmap(n, s, b, o / s->lss, ns, bits);
                    for (uint64_t k = 0; r == 0 && k < ns; k++)
                        if (bits[k])
                            r = vdk_pread(n->file, tmp + k * s->lss, s->lss,
                                          off + o + k * s->lss, 0);
                }
                if (r == 0)
                    r = vdk_pwrite(n->file, tmp, l, off + o, 0);
            }
        }
        vdk_blk_free(tmp);
        free(bits);
    }
    if (r == 0 && len)
        r = vdk_pwrite(n->file, buf, len, off + in, 0);
    if (r < 0) {
        s->file_end = old_end;
        return r;
    }
    vhdx_bat_set(s, idx, off | VHDX_BLK_FULLY_PRESENT);
    return 0;
}

int vhdx_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes, const void *buf,
                unsigned flags)
{
    struct vhdx_state *s = n->opaque;
    const uint8_t *p = buf;
    while (bytes) {
        uint64_t b = offset / s->block_size, in = offset % s->block_size;
        uint64_t len = vdk_min_u64(bytes, s->block_size - in);
        int r;
        pthread_mutex_lock(&s->lock);
        r = user_visible_write(n, s);
        uint64_t e = s->bat[vhdx_payload_index(s, b)];
        if (r == 0 && VHDX_BAT_STATE(e) == VHDX_BLK_FULLY_PRESENT) {
            pthread_mutex_unlock(&s->lock);
            r = vdk_pwrite(n->file, p, len, VHDX_BAT_OFFSET(e) + in, 0);
        } else {
            if (r == 0)
                r = vhdx_fill_block(n, s, b, in, len, p);
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

/*
 * Whole blocks become ZERO (their space punched with MAY_UNMAP); parts of
 * fully present blocks are zeroed in the file; parts of blocks that read
 * as zeros already are left; the rest falls back to writing zeros.
 */
int vhdx_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes, unsigned flags)
{
    struct vhdx_state *s = n->opaque;
    while (bytes) {
        uint64_t b = offset / s->block_size, in = offset % s->block_size;
        uint64_t len = vdk_min_u64(bytes, s->block_size - in);
        uint64_t idx = vhdx_payload_index(s, b);
        int r;
        pthread_mutex_lock(&s->lock);
        r = user_visible_write(n, s);
        uint64_t e = s->bat[idx];
        unsigned st = VHDX_BAT_STATE(e);
        bool reads_zero = st == VHDX_BLK_ZERO || st == VHDX_BLK_UNMAPPED ||
                          st == VHDX_BLK_UNMAPPED_V095 || st == VHDX_BLK_UNDEFINED ||
                          (st == VHDX_BLK_NOT_PRESENT && !s->has_parent);
        if (r < 0 || reads_zero) {
            /* nothing to do */
        } else if (len == s->block_size) {
            if (st == VHDX_BLK_FULLY_PRESENT && (flags & VDK_REQ_MAY_UNMAP))
                vdk_discard(n->file, VHDX_BAT_OFFSET(e), s->block_size);
            bool keep = st == VHDX_BLK_FULLY_PRESENT && !(flags & VDK_REQ_MAY_UNMAP);
            if (keep)
                r = vdk_pwrite_zeroes(n->file, VHDX_BAT_OFFSET(e), len, 0);
            else
                vhdx_bat_set(s, idx, VHDX_BLK_ZERO);
        } else if (st == VHDX_BLK_FULLY_PRESENT) {
            r = vdk_pwrite_zeroes(n->file, VHDX_BAT_OFFSET(e) + in, len,
                                  flags & (VDK_REQ_NO_FALLBACK | VDK_REQ_MAY_UNMAP));
        } else {
            r = -ENOTSUP;
        }
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
            return r;
        offset += len;
        bytes -= len;
    }
    return 0;
}

/* Whole blocks of dynamic images become UNMAPPED and their space is
   punched; differencing and fixed images ignore discards. */
int vhdx_discard(struct vdk_node *n, uint64_t offset, uint64_t bytes)
{
    struct vhdx_state *s = n->opaque;
    if (s->has_parent)
        return 0;
    uint64_t b = (offset + s->block_size - 1) / s->block_size;
    uint64_t end = (offset + bytes) / s->block_size;
    int r = 0;
    pthread_mutex_lock(&s->lock);
    for (; b < end && r == 0; b++) {
        uint64_t idx = vhdx_payload_index(s, b), e = s->bat[idx];
        if (VHDX_BAT_STATE(e) != VHDX_BLK_FULLY_PRESENT)
            continue;
        if ((r = user_visible_write(n, s)) < 0)
            break;
        vdk_discard(n->file, VHDX_BAT_OFFSET(e), s->block_size);
        vhdx_bat_set(s, idx, VHDX_BLK_UNMAPPED);
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

int vhdx_flush(struct vdk_node *n)
{
    struct vhdx_state *s = n->opaque;
    pthread_mutex_lock(&s->lock);
    int r = vhdx_bat_sync(n, s);
    pthread_mutex_unlock(&s->lock);
    return r;
}

int vhdx_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                      uint64_t *pnum, uint64_t *map, struct vdk_node **file)
{
    struct vhdx_state *s = n->opaque;
    uint64_t bs = s->block_size;
    uint64_t b = offset / bs, in = offset % bs;
    uint64_t len = vdk_min_u64(bytes, bs - in);
    int ret = 0, r = 0;
    pthread_mutex_lock(&s->lock);
    uint64_t e = s->bat[vhdx_payload_index(s, b)];
    unsigned st = VHDX_BAT_STATE(e);
    if (st == VHDX_BLK_PARTIALLY_PRESENT) {
        uint64_t count = len / s->lss;
        uint8_t *bits = malloc(count);
        if (!bits) {
            r = -ENOMEM;
        } else if ((r = read_bitmap(n, s, b, in / s->lss, count, bits)) == 0) {
            uint64_t j = 1;
            while (j < count && bits[j] == bits[0])
                j++;
            len = j * s->lss;
            st = bits[0] ? VHDX_BLK_FULLY_PRESENT : VHDX_BLK_NOT_PRESENT;
        }
        free(bits);
    } else {
        /* merge following blocks in the same state */
        uint64_t prev = e;
        while (len < bytes) {
            uint64_t f = s->bat[vhdx_payload_index(s, ++b)];
            if (VHDX_BAT_STATE(f) != st ||
                (st == VHDX_BLK_FULLY_PRESENT && VHDX_BAT_OFFSET(f) != VHDX_BAT_OFFSET(prev) + bs))
                break;
            prev = f;
            len = vdk_min_u64(bytes, len + bs);
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (r < 0)
        return r;
    *pnum = len;
    if (st == VHDX_BLK_FULLY_PRESENT) {
        /* With a log replayed in memory the file's bytes may not be the
           guest's: no offset then, so readers go through the driver. */
        ret = VDK_BS_DATA | VDK_BS_ALLOCATED;
        if (!s->n_ovl) {
            *map = VHDX_BAT_OFFSET(e) + in;
            *file = n->file;
            ret |= VDK_BS_OFFSET_VALID | VDK_BS_PLAIN;
        }
    } else if (st != VHDX_BLK_NOT_PRESENT) {
        ret = VDK_BS_ZERO | VDK_BS_ALLOCATED;
    }
    return ret;
}
