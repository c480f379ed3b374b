/* SPDX-License-Identifier: MIT */
/*
 * Parallels reads, writes, cluster allocation, flush and block status.
 *
 * A new cluster goes at data_end (qemu's place): its data is written with
 * zeros around the request, and its BAT entry is set in memory and written
 * on the next flush after the file was flushed, so the BAT on disk never
 * points at data that is not on disk.  The in-use flag stays set on disk
 * while the image is open read-write, so after a crash qemu and vdk both
 * ask for a check.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fmt-util.h"
#include "formats/parallels/parallels.h"

/* Byte offset of the cluster for entry e, 0 when unallocated, -EIO when
   it would overlap the header or BAT. */
static int64_t cluster_offset(const struct prl_state *s, uint32_t e)
{
    if (!e)
        return 0;
    uint64_t off = prl_entry_sector(s, e) * PRL_SECTOR;
    if (off < s->meta_end)
        return -EIO;
    return (int64_t)off;
}

/* File offset of guest cluster idx for fmt_read_mapped(). */
static int64_t map_cluster(struct vdk_node *n, uint64_t idx)
{
    struct prl_state *s = n->opaque;
    int64_t off = 0;
    if (idx < s->bat_entries) {
        pthread_mutex_lock(&s->lock);
        off = cluster_offset(s, s->bat[idx]);
        pthread_mutex_unlock(&s->lock);
    }
    return off;
}

int prl_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *buf,
              unsigned flags)
{
    struct prl_state *s = n->opaque;
    (void)flags;
    return fmt_read_mapped(n, s->cluster_size, map_cluster, offset, bytes, buf);
}

int prl_write_bat(struct vdk_node *n, uint32_t lo, uint32_t hi)
{
    struct prl_state *s = n->opaque;
    if (lo >= hi)
        return 0;
    uint8_t *raw = malloc((size_t)(hi - lo) * 4);
    if (!raw)
        return -ENOMEM;
    for (uint32_t i = lo; i < hi; i++)
        fmt_put_le32(raw + 4 * (size_t)(i - lo), s->bat[i]);
    int r = vdk_pwrite(n->file, raw, (uint64_t)(hi - lo) * 4,
                       PRL_HEADER_SIZE + (uint64_t)lo * 4, 0);
    free(raw);
    return r;
}

/* A cluster more than one cluster past the end of the file: the data
   offset or a BAT entry is damaged (see fmt_check_reach). */
static int within_reach(struct vdk_node *n, uint64_t off)
{
    struct prl_state *s = n->opaque;
    return fmt_check_reach(n, off, s->cluster_size, &s->warned_far, "cluster", "BAT");
}

int64_t prl_alloc_cluster(struct vdk_node *n, uint32_t idx)
{
    struct prl_state *s = n->opaque;
    uint64_t unit = s->data_end / s->off_multiplier;
    if (unit == 0 || unit > UINT32_MAX)
        return -ENOSPC; /* not addressable by a 32-bit BAT entry */
    int r = within_reach(n, unit * s->off_multiplier * PRL_SECTOR);
    if (r < 0)
        return r;
    s->bat[idx] = (uint32_t)unit;
    s->data_end += s->tracks;
    if (idx < s->dirty_lo)
        s->dirty_lo = idx;
    if (idx + 1 > s->dirty_hi)
        s->dirty_hi = idx + 1;
    return (int64_t)(unit * s->off_multiplier * PRL_SECTOR);
}

int prl_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes, const void *buf,
               unsigned flags)
{
    struct prl_state *s = n->opaque;
    const uint8_t *p = buf;
    while (bytes) {
        uint64_t idx = offset / s->cluster_size, in = offset % s->cluster_size;
        uint64_t len = vdk_min_u64(bytes, s->cluster_size - in);
        if (idx >= s->bat_entries)
            return -EIO; /* the BAT does not cover the virtual size */
        int r;
        pthread_mutex_lock(&s->lock);
        int64_t off = cluster_offset(s, s->bat[idx]);
        if (off != 0) {
            pthread_mutex_unlock(&s->lock);
            if (off < 0)
                return (int)off;
            r = within_reach(n, (uint64_t)off);
            if (r == 0)
                r = vdk_pwrite(n->file, p, len, (uint64_t)off + in, 0);
        } else {
            uint64_t old_end = s->data_end;
            off = prl_alloc_cluster(n, (uint32_t)idx);
            r = off < 0 ? (int)off : 0;
            uint64_t o = (uint64_t)off;
            if (r == 0 && in)
                r = vdk_pwrite_zeroes(n->file, o, in, 0);
            if (r == 0)
                r = vdk_pwrite(n->file, p, len, o + in, 0);
            if (r == 0 && in + len < s->cluster_size)
                r = vdk_pwrite_zeroes(n->file, o + in + len, s->cluster_size - in - len, 0);
            if (r < 0 && off > 0) {
                s->bat[idx] = 0;
                s->data_end = old_end;
            }
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

/* Unallocated clusters read as zeros already; allocated ones are zeroed
   in the file. */
int prl_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                      unsigned flags)
{
    struct prl_state *s = n->opaque;
    while (bytes) {
        uint64_t idx = offset / s->cluster_size, in = offset % s->cluster_size;
        uint64_t len = vdk_min_u64(bytes, s->cluster_size - in);
        int64_t off = map_cluster(n, idx);
        if (off < 0)
            return (int)off;
        if (off > 0) {
            int r = within_reach(n, (uint64_t)off);
            if (r == 0)
                r = vdk_pwrite_zeroes(n->file, (uint64_t)off + in, len,
                                      flags & (VDK_REQ_NO_FALLBACK | VDK_REQ_MAY_UNMAP));
            if (r < 0)
                return r;
        }
        offset += len;
        bytes -= len;
    }
    return 0;
}

int prl_flush(struct vdk_node *n)
{
    struct prl_state *s = n->opaque;
    int r = 0;
    pthread_mutex_lock(&s->lock);
    if (s->dirty_lo < s->dirty_hi) {
        r = vdk_flush(n->file);
        if (r == 0)
            r = prl_write_bat(n, s->dirty_lo, s->dirty_hi);
        if (r == 0) {
            s->dirty_lo = UINT32_MAX;
            s->dirty_hi = 0;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

int prl_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                     uint64_t *pnum, uint64_t *map, struct vdk_node **file)
{
    struct prl_state *s = n->opaque;
    uint64_t cs = s->cluster_size;
    uint64_t idx = offset / cs, in = offset % cs;
    uint64_t done = vdk_min_u64(bytes, cs - in);
    pthread_mutex_lock(&s->lock);
    int64_t off = idx < s->bat_entries ? cluster_offset(s, s->bat[idx]) : 0;
    int64_t prev = off;
    while (off >= 0 && done < bytes) {
        idx++;
        if (!off && idx >= s->bat_entries) {
            /* Past the BAT (its size is the header's, not the virtual
               size's) nothing is allocated: one answer, not a loop over
               every cluster of a virtual size of up to 2 TiB. */
            done = bytes;
            break;
        }
        int64_t next = idx < s->bat_entries ? cluster_offset(s, s->bat[idx]) : 0;
        if (next < 0 || (next == 0) != (off == 0) ||
            (off && next != prev + (int64_t)cs))
            break;
        prev = next;
        done = vdk_min_u64(bytes, done + cs);
    }
    pthread_mutex_unlock(&s->lock);
    if (off < 0)
        return (int)off;
    *pnum = done;
    if (!off)
        return 0;
    *map = (uint64_t)off + in;
    *file = n->file;
    return VDK_BS_DATA | VDK_BS_ALLOCATED | VDK_BS_OFFSET_VALID | VDK_BS_PLAIN;
}
