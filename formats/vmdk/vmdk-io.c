/* SPDX-License-Identifier: MIT */
/*
 * Reads, writes, zero writes, block status and flush over the extents.
 *
 * Sparse extents: table lookups and allocations happen under s->lock;
 * reads and overwrites of allocated grains run outside it.  Allocating
 * writes put whole grains (the rest filled from the parent or zeros) at
 * the end of the extent file, consecutive new grains in one write, and
 * set their GT entries in memory; vmdk_flush writes the tables after the
 * grains are durable.  Compressed extents take every write as a new
 * compressed grain at the end (compressed outside the lock, so parallel
 * writers compress in parallel).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "formats/vmdk/vmdk.h"

struct vmdk_extent *vmdk_find_extent(struct vmdk_state *s, uint64_t offset)
{
    size_t lo = 0, hi = s->n_ext;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (s->ext[mid].start <= offset)
            lo = mid;
        else
            hi = mid;
    }
    return &s->ext[lo];
}

static bool is_sparse(const struct vmdk_extent *e)
{
    return e->type == VMDK_EXT_SPARSE || e->type == VMDK_EXT_VMFSSPARSE;
}

static bool gte_allocated(const struct vmdk_extent *e, uint32_t gte)
{
    return gte > 1 || (gte == 1 && !e->zeroed_grain);
}

int vmdk_grain_find(struct vmdk_extent *e, uint64_t g, uint64_t *sector)
{
    uint32_t gte;
    *sector = 0;
    if (e->sesparse)
        return vmdk_se_grain_find(e, g, sector);
    int r = vmdk_gte_get(e, g, &gte);
    if (r < 0)
        return r;
    if (gte == 0)
        return VMDK_G_UNALLOC;
    if (!gte_allocated(e, gte))
        return VMDK_G_ZERO;
    *sector = gte;
    return VMDK_G_DATA;
}

/*
 * Read from one sparse or seSparse extent: runs of grains whose data is
 * contiguous in the file become one read.
 */
static int sparse_read(struct vdk_node *n, struct vmdk_extent *e, uint64_t eoff,
                       uint64_t len, uint8_t *buf)
{
    struct vmdk_state *s = n->opaque;
    const uint64_t gsec = e->grain / VMDK_SECTOR;
    while (len) {
        uint64_t g = eoff / e->grain, in = eoff % e->grain;
        uint64_t chunk = vdk_min_u64(len, e->grain - in);
        uint64_t sec, run = chunk;
        pthread_mutex_lock(&s->lock);
        int st = vmdk_grain_find(e, g, &sec);
        if (st == VMDK_G_DATA && !e->compressed) {
            /* extend over following grains stored right after */
            uint64_t want = sec + gsec, s2;
            while (run < len &&
                   vmdk_grain_find(e, g + (run + in) / e->grain, &s2) == VMDK_G_DATA &&
                   s2 == want) {
                run = vdk_min_u64(len, run + e->grain);
                want += gsec;
            }
        }
        pthread_mutex_unlock(&s->lock);
        int r = 0;
        if (st < 0)
            return st == -ERANGE || st == -EINVAL ? -EIO : st;
        if (st == VMDK_G_UNALLOC) {
            r = vdk_node_read_backing(n, e->start + eoff, chunk, buf);
        } else if (st == VMDK_G_ZERO) {
            memset(buf, 0, chunk);
        } else if (e->compressed) {
            uint8_t *tmp = vmdk_thread_buf(0, e->grain);
            if (!tmp)
                return -ENOMEM;
            r = vmdk_cgrain_read(e, g, sec, tmp);
            if (r == 0)
                memcpy(buf, tmp + in, chunk);
            if (r < 0)
                return -EIO;
        } else {
            r = vdk_pread(e->file, buf, run, sec * VMDK_SECTOR + in, 0);
            chunk = run;
        }
        if (r < 0)
            return r;
        buf += chunk;
        eoff += chunk;
        len -= chunk;
    }
    return 0;
}

int vmdk_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *vbuf,
               unsigned flags)
{
    struct vmdk_state *s = n->opaque;
    uint8_t *buf = vbuf;
    (void)flags;
    while (bytes) {
        struct vmdk_extent *e = vmdk_find_extent(s, offset);
        uint64_t eoff = offset - e->start;
        uint64_t len = vdk_min_u64(bytes, e->length - eoff);
        int r = 0;
        if (e->access == VMDK_ACC_NOACCESS)
            return -EACCES;
        if (e->type == VMDK_EXT_ZERO)
            memset(buf, 0, len);
        else if (is_sparse(e) || e->sesparse)
            r = sparse_read(n, e, eoff, len, buf);
        else
            r = vdk_pread(e->file, buf, len, e->flat_offset + eoff, 0);
        if (r < 0)
            return r;
        buf += len;
        offset += len;
        bytes -= len;
    }
    return 0;
}

/* The whole grain g with buf[in..in+len) replacing its old content. */
static int grain_merge(struct vdk_node *n, struct vmdk_extent *e, uint64_t g, uint32_t gte,
                       uint64_t in, uint64_t len, const uint8_t *data, uint8_t *out)
{
    int r = 0;
    if (len < e->grain) {
        if (gte == 0)
            r = vdk_node_read_backing(n, e->start + g * e->grain, e->grain, out);
        else if (!gte_allocated(e, gte))
            memset(out, 0, e->grain);
        else if (e->compressed)
            r = vmdk_cgrain_read(e, g, gte, out) < 0 ? -EIO : 0;
        else
            r = vdk_pread(e->file, out, e->grain, (uint64_t)gte * VMDK_SECTOR, 0);
    }
    /* The tail of the last grain past the extent stays as it reads. */
    if (r == 0)
        memcpy(out + in, data, len);
    return r;
}

/* Write one compressed grain: compress outside the lock, place it at the
   end of the file and point its GT entry at it under the lock. */
static int compressed_write(struct vdk_node *n, struct vmdk_extent *e, uint64_t g,
                            uint64_t in, uint64_t len, const uint8_t *data)
{
    struct vmdk_state *s = n->opaque;
    uint8_t *grain = vmdk_thread_buf(0, e->grain);
    size_t cap = VMDK_MAX_CGRAIN(e->grain);
    uint8_t *cbuf = vmdk_thread_buf(2, cap);
    uint32_t gte = 0;
    int r = grain && cbuf ? 0 : -ENOMEM;
    if (r == 0 && len < e->grain) {
        pthread_mutex_lock(&s->lock);
        r = vmdk_gte_get(e, g, &gte);
        pthread_mutex_unlock(&s->lock);
    }
    if (r == 0)
        r = grain_merge(n, e, g, gte, in, len, data, grain);
    long clen = r == 0 ? vmdk_cgrain_build(e, g, grain, cbuf, cap) : r;
    if (clen < 0)
        r = (int)clen;
    if (r == 0) {
        pthread_mutex_lock(&s->lock);
        uint64_t pos = e->stream ? e->stream_end : e->next_alloc;
        uint64_t old_next = e->next_alloc;
        if (pos / VMDK_SECTOR > UINT32_MAX) {
            r = -EFBIG;
        } else if (e->stream) {
            r = vdk_pwrite(e->file, cbuf, (uint64_t)clen, pos, 0);
            if (r == 0)
                r = vmdk_gte_set(e, g, (uint32_t)(pos / VMDK_SECTOR));
            if (r == 0) {
                e->stream_end = pos + (uint64_t)clen;
                e->stream_tail = false;
            }
        } else {
            /* The grain's place is taken first, so that a new grain table
               goes after it.  A footer image gets its footer and EOS at
               the new end before the grain overwrites the old ones: at
               every moment the file ends in a valid footer. */
            e->next_alloc = pos + (uint64_t)clen;
            r = vmdk_gte_set(e, g, (uint32_t)(pos / VMDK_SECTOR));
            if (r == 0 && e->footer)
                r = vmdk_footer_move(e);
            if (r == 0)
                r = vdk_pwrite(e->file, cbuf, (uint64_t)clen, pos, 0);
            if (r < 0)
                e->next_alloc = old_next;
        }
        uint64_t end = e->stream ? e->stream_end : e->next_alloc;
        if (r == 0 && end > e->file_len)
            e->file_len = end;
        pthread_mutex_unlock(&s->lock);
    }
    return r;
}

/*
 * Allocating write of [eoff, eoff+len) of a plain sparse extent (lock
 * held): consecutive whole unallocated grains are written at once.
 * Returns bytes consumed or -errno.
 */
static long sparse_alloc(struct vdk_node *n, struct vmdk_extent *e, uint64_t eoff,
                         uint64_t len, const uint8_t *data, uint32_t gte)
{
    uint64_t g = eoff / e->grain, in = eoff % e->grain;
    uint64_t pos = e->next_alloc;
    int r;
    if (in == 0 && len >= e->grain) {
        uint64_t run = e->grain;
        while (run + e->grain <= len) {
            uint32_t g2;
            if (vmdk_gte_get(e, g + run / e->grain, &g2) < 0 || gte_allocated(e, g2))
                break;
            run += e->grain;
        }
        if ((pos + run) / VMDK_SECTOR > UINT32_MAX)
            return -EFBIG;
        if ((r = vdk_pwrite(e->file, data, run, pos, 0)) < 0)
            return r;
        for (uint64_t k = 0; k < run / e->grain; k++)
            if ((r = vmdk_gte_set(e, g + k, (uint32_t)((pos + k * e->grain) / VMDK_SECTOR))) < 0)
                return r;
        e->next_alloc = pos + run;
        return (long)run;
    }
    uint64_t chunk = vdk_min_u64(len, e->grain - in);
    uint8_t *grain = vmdk_thread_buf(0, e->grain);
    if (!grain)
        return -ENOMEM;
    if (pos / VMDK_SECTOR + e->grain / VMDK_SECTOR > UINT32_MAX)
        r = -EFBIG;
    else
        r = grain_merge(n, e, g, gte, in, chunk, data, grain);
    if (r == 0)
        r = vdk_pwrite(e->file, grain, e->grain, pos, 0);
    if (r == 0)
        r = vmdk_gte_set(e, g, (uint32_t)(pos / VMDK_SECTOR));
    if (r < 0)
        return r;
    e->next_alloc = pos + e->grain;
    return (long)chunk;
}

static int sparse_write(struct vdk_node *n, struct vmdk_extent *e, uint64_t eoff,
                        uint64_t len, const uint8_t *buf)
{
    struct vmdk_state *s = n->opaque;
    while (len) {
        uint64_t g = eoff / e->grain, in = eoff % e->grain;
        uint64_t chunk = vdk_min_u64(len, e->grain - in);
        if (e->compressed) {
            int r = compressed_write(n, e, g, in, chunk, buf);
            if (r < 0)
                return r;
        } else {
            uint32_t gte;
            pthread_mutex_lock(&s->lock);
            int r = vmdk_gte_get(e, g, &gte);
            if (r == 0 && !gte_allocated(e, gte)) {
                long done = sparse_alloc(n, e, eoff, len, buf, gte);
                pthread_mutex_unlock(&s->lock);
                if (done < 0)
                    return (int)done;
                chunk = (uint64_t)done;
            } else {
                pthread_mutex_unlock(&s->lock);
                if (r < 0)
                    return r == -ERANGE ? -EIO : r;
                if (vmdk_grain_over_meta(e, gte))
                    return -EIO; /* the grain is the extent's metadata */
                r = vdk_pwrite(e->file, buf, chunk, (uint64_t)gte * VMDK_SECTOR + in, 0);
                if (r < 0)
                    return r;
            }
        }
        buf += chunk;
        eoff += chunk;
        len -= chunk;
    }
    return 0;
}

int vmdk_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes, const void *vbuf,
                unsigned flags)
{
    struct vmdk_state *s = n->opaque;
    const uint8_t *buf = vbuf;
    while (bytes) {
        struct vmdk_extent *e = vmdk_find_extent(s, offset);
        uint64_t eoff = offset - e->start;
        uint64_t len = vdk_min_u64(bytes, e->length - eoff);
        int r;
        if (e->access != VMDK_ACC_RW || e->type == VMDK_EXT_ZERO ||
            e->type == VMDK_EXT_SESPARSE)
            return -EACCES;
        if (is_sparse(e))
            r = sparse_write(n, e, eoff, len, buf);
        else
            r = vdk_pwrite(e->file, buf, len, e->flat_offset + eoff, 0);
        if (r < 0)
            return r;
        buf += len;
        offset += len;
        bytes -= len;
    }
    return 0;
}

/*
 * Zero writes: whole grains of an extent with zeroed-grain GTEs become
 * GTE 1; unallocated grains without a parent already read as zeros.
 * Anything else is left to the generic fallback (-ENOTSUP), decided
 * before changing anything.
 */
int vmdk_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes, unsigned flags)
{
    struct vmdk_state *s = n->opaque;
    (void)flags;
    for (int pass = 0; pass < 2; pass++) {
        uint64_t off = offset, left = bytes;
        pthread_mutex_lock(&s->lock);
        while (left) {
            struct vmdk_extent *e = vmdk_find_extent(s, off);
            uint64_t eoff = off - e->start;
            uint64_t len = vdk_min_u64(left, e->length - eoff);
            int r = 0;
            if (e->access != VMDK_ACC_RW || !is_sparse(e) || e->compressed || e->stream) {
                r = -ENOTSUP;
            } else {
                for (uint64_t o = eoff; r == 0 && o < eoff + len;) {
                    uint64_t g = o / e->grain, in = o % e->grain;
                    uint64_t c = vdk_min_u64(eoff + len - o, e->grain - in);
                    uint32_t gte;
                    r = vmdk_gte_get(e, g, &gte);
                    if (r < 0)
                        break;
                    bool whole = in == 0 && c == e->grain;
                    if (gte == 0 && !n->backing)
                        ; /* reads as zeros already */
                    else if (e->zeroed_grain && whole)
                        r = pass ? vmdk_gte_set(e, g, VMDK_GTE_ZEROED) : 0;
                    else
                        r = -ENOTSUP;
                    o += c;
                }
            }
            if (r < 0) {
                pthread_mutex_unlock(&s->lock);
                return r == -ERANGE ? -EIO : r;
            }
            off += len;
            left -= len;
        }
        pthread_mutex_unlock(&s->lock);
    }
    return 0;
}

int vmdk_flush(struct vdk_node *n)
{
    struct vmdk_state *s = n->opaque;
    int r = 0;
    if (n->read_only)
        return 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; r == 0 && i < s->n_ext; i++) {
        struct vmdk_extent *e = &s->ext[i];
        if (!is_sparse(e) || e->access != VMDK_ACC_RW)
            continue;
        if (e->stream) {
            if (!e->stream_tail)
                r = vmdk_stream_finish(e, e->length / VMDK_SECTOR);
        } else if (e->any_dirty) {
            /* grains durable before the tables that point at them */
            r = vdk_flush(e->file);
            if (r == 0)
                r = vmdk_tables_write(e);
        }
        if (r == 0 && e->file != n->file)
            r = vdk_flush(e->file);
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

int vmdk_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                      uint64_t *pnum, uint64_t *map, struct vdk_node **file)
{
    struct vmdk_state *s = n->opaque;
    struct vmdk_extent *e = vmdk_find_extent(s, offset);
    uint64_t eoff = offset - e->start;
    uint64_t len = vdk_min_u64(bytes, e->length - eoff);
    if (e->type == VMDK_EXT_ZERO) {
        *pnum = len;
        return VDK_BS_ZERO | VDK_BS_ALLOCATED;
    }
    if (!is_sparse(e) && !e->sesparse) {
        *pnum = len;
        *map = e->flat_offset + eoff;
        *file = e->file;
        /* qemu's answer: data, and zero too where the file has a hole */
        return VDK_BS_DATA | VDK_BS_OFFSET_VALID | VDK_BS_PLAIN | VDK_BS_PEEK_HOLES;
    }
    int ret = -1;
    uint64_t done = 0, want_next = 0;
    pthread_mutex_lock(&s->lock);
    while (done < len) {
        uint64_t o = eoff + done;
        uint64_t g = o / e->grain, in = o % e->grain;
        uint64_t c = vdk_min_u64(len - done, e->grain - in);
        uint64_t sec;
        int gst = vmdk_grain_find(e, g, &sec);
        if (gst < 0) {
            pthread_mutex_unlock(&s->lock);
            return gst == -ERANGE || gst == -EINVAL ? -EIO : gst;
        }
        int st;
        uint64_t m = 0;
        if (gst == VMDK_G_UNALLOC) {
            st = 0;
        } else if (gst == VMDK_G_ZERO) {
            st = VDK_BS_ZERO | VDK_BS_ALLOCATED;
        } else if (e->compressed) {
            st = VDK_BS_DATA | VDK_BS_ALLOCATED | VDK_BS_COMPRESSED;
        } else {
            /* stored as it is: convert may map it instead of reading */
            st = VDK_BS_DATA | VDK_BS_ALLOCATED | VDK_BS_OFFSET_VALID | VDK_BS_PLAIN;
            m = sec * VMDK_SECTOR + in;
        }
        if (ret < 0) {
            ret = st;
            *map = m;
        } else if (st != ret || ((st & VDK_BS_OFFSET_VALID) && m != want_next)) {
            break;
        }
        want_next = m + c;
        done += c;
        /* compressed grains are reported one at a time (qemu's answer) */
        if (st & VDK_BS_COMPRESSED)
            break;
    }
    pthread_mutex_unlock(&s->lock);
    *pnum = done;
    if (ret & VDK_BS_OFFSET_VALID)
        *file = e->file;
    return ret;
}
