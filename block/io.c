/* SPDX-License-Identifier: MIT */
/*
 * The request path.  Every request goes through here before it reaches a
 * driver, and the emulation happens once, for all drivers:
 *  - requests are checked against the node's size and read-only state;
 *  - unaligned requests become read-modify-write, serialised against
 *    overlapping writes so that concurrent writers never lose data;
 *  - requests are split at the node's max transfer;
 *  - write-zeroes falls back to writing zero buffers;
 *  - FUA falls back to a flush.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/driver.h"

/* Zero-buffer chunk for the write-zeroes fallback. */
#define ZERO_CHUNK (1u << 20)

struct vdk_tracked_req {
    uint64_t start, end;
    bool serialising;
    struct vdk_tracked_req *next;
};

static bool tracked_conflict(struct vdk_node *n, const struct vdk_tracked_req *r)
{
    for (struct vdk_tracked_req *t = n->tracked; t; t = t->next) {
        if (t->end <= r->start || r->end <= t->start)
            continue;
        if (r->serialising || t->serialising)
            return true;
    }
    return false;
}

/* Wait until no conflicting write is in flight, then register r. */
static void track_begin(struct vdk_node *n, struct vdk_tracked_req *r)
{
    pthread_mutex_lock(&n->track_lock);
    while (tracked_conflict(n, r))
        pthread_cond_wait(&n->track_cond, &n->track_lock);
    r->next = n->tracked;
    n->tracked = r;
    pthread_mutex_unlock(&n->track_lock);
}

static void track_end(struct vdk_node *n, struct vdk_tracked_req *r)
{
    pthread_mutex_lock(&n->track_lock);
    for (struct vdk_tracked_req **pp = &n->tracked; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    pthread_cond_broadcast(&n->track_cond);
    pthread_mutex_unlock(&n->track_lock);
}

static int check_range(struct vdk_node *n, uint64_t offset, uint64_t bytes)
{
    if (offset > INT64_MAX || bytes > INT64_MAX - offset)
        return -EINVAL;
    if (!n->growable && offset + bytes > n->size)
        return -EINVAL;
    return 0;
}

static int check_write(struct vdk_node *n, uint64_t offset, uint64_t bytes)
{
    if (n->read_only)
        return -EPERM;
    return check_range(n, offset, bytes);
}

/*
 * A probed raw image (QEMU's rule): a write that touches the first 512
 * bytes is refused only when the probe window, with the write applied,
 * would name another format.  buf NULL stands for zeros (write-zeroes,
 * discard).  The caller holds n->sector0_lock across this check and the
 * write, so two halves of a header cannot pass one at a time.
 */
static bool sector0_write_needs_check(const struct vdk_node *n, uint64_t offset,
                                      uint64_t bytes)
{
    return n->protect_sector0 && offset < 512 && bytes;
}

static int sector0_check(struct vdk_node *n, const void *buf, uint64_t bytes,
                         uint64_t offset)
{
    size_t w = (size_t)vdk_min_u64(n->size, VDK_PROBE_BYTES);
    uint8_t *win = calloc(1, VDK_PROBE_BYTES);
    if (!win)
        return -ENOMEM;
    int r = w ? vdk_pread(n, win, w, 0, 0) : 0;
    if (r == 0 && offset < w) {
        size_t c = (size_t)vdk_min_u64(bytes, w - offset);
        if (buf)
            memcpy(win + offset, buf, c);
        else
            memset(win + offset, 0, c);
        if (!vdk_probe_head_is_raw(win, w, n->filename))
            r = -EPERM;
    }
    free(win);
    return r;
}

/* Aligned read, split at max transfer. */
static int do_read(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *buf,
                   unsigned flags)
{
    uint32_t mt = vdk_node_effective_max_transfer(n);
    uint8_t *p = buf;
    if (!n->drv->pread)
        return -ENOTSUP;
    while (bytes) {
        uint64_t c = vdk_min_u64(bytes, mt);
        int r = n->drv->pread(n, offset, c, p, flags);
        if (r < 0)
            return r;
        offset += c;
        p += c;
        bytes -= c;
    }
    return 0;
}

static int do_write(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                    const void *buf, unsigned flags)
{
    uint32_t mt = vdk_node_effective_max_transfer(n);
    const uint8_t *p = buf;
    if (!n->drv->pwrite)
        return -ENOTSUP;
    unsigned dflags = flags & n->supported_write_flags;
    while (bytes) {
        uint64_t c = vdk_min_u64(bytes, mt);
        int r = n->drv->pwrite(n, offset, c, p, dflags);
        if (r < 0)
            return r;
        offset += c;
        p += c;
        bytes -= c;
    }
    return 0;
}

/*
 * Read-modify-write of the aligned block(s) around [offset, offset+bytes)
 * where that range lies within one bounce buffer.
 */
static int rmw_write_piece(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                           const void *buf, unsigned flags)
{
    uint32_t a = n->limits.request_alignment;
    uint64_t a0 = vdk_align_down(offset, a);
    uint64_t a1 = vdk_align_up(offset + bytes, a);
    uint8_t *bounce = vdk_blk_alloc(a1 - a0);
    if (!bounce)
        return -ENOMEM;
    int r = do_read(n, a0, a1 - a0, bounce, 0);
    if (r == 0) {
        if (buf)
            memcpy(bounce + (offset - a0), buf, bytes);
        else
            memset(bounce + (offset - a0), 0, bytes);
        r = do_write(n, a0, a1 - a0, bounce, flags);
    }
    vdk_blk_free(bounce);
    return r;
}

int vdk_pread(struct vdk_node *n, void *buf, uint64_t bytes, uint64_t offset,
              unsigned flags)
{
    int r = check_range(n, offset, bytes);
    if (r < 0 || bytes == 0)
        return r;
    uint32_t a = n->limits.request_alignment;
    if (a <= 1 || ((offset | bytes) & (a - 1)) == 0)
        return do_read(n, offset, bytes, buf, flags);

    uint8_t *p = buf;
    uint64_t end = offset + bytes;
    uint64_t a0 = vdk_align_down(offset, a), a1 = vdk_align_up(end, a);
    uint8_t *bounce = vdk_blk_alloc(a);
    if (!bounce)
        return -ENOMEM;
    /* Head block. */
    if (offset != a0 || a1 - a0 == a) {
        r = do_read(n, a0, a, bounce, flags);
        if (r < 0)
            goto out;
        uint64_t c = vdk_min_u64(end, a0 + a) - offset;
        memcpy(p, bounce + (offset - a0), c);
        offset += c;
        p += c;
    }
    /* Aligned middle straight into the caller's buffer. */
    uint64_t mid_end = vdk_align_down(end, a);
    if (offset < mid_end) {
        r = do_read(n, offset, mid_end - offset, p, flags);
        if (r < 0)
            goto out;
        p += mid_end - offset;
        offset = mid_end;
    }
    /* Tail block. */
    if (offset < end) {
        r = do_read(n, offset, a, bounce, flags);
        if (r < 0)
            goto out;
        memcpy(p, bounce, end - offset);
    }
out:
    vdk_blk_free(bounce);
    return r;
}

/* buf == NULL writes zeros (used by the write-zeroes fallback's edges). */
static int write_common(struct vdk_node *n, const void *buf, uint64_t bytes,
                        uint64_t offset, unsigned flags)
{
    uint32_t a = n->limits.request_alignment;
    bool unaligned = a > 1 && ((offset | bytes) & (a - 1));
    struct vdk_tracked_req tr = {
        .start = vdk_align_down(offset, a),
        .end = vdk_align_up(offset + bytes, a),
        .serialising = unaligned,
    };
    bool track = a > 1;
    int r = 0;
    if (track)
        track_begin(n, &tr);
    if (!unaligned) {
        r = do_write(n, offset, bytes, buf, flags);
        goto done;
    }
    uint64_t end = offset + bytes;
    const uint8_t *p = buf;
    uint64_t head_end = vdk_min_u64(end, vdk_align_up(offset + 1, a));
    if (offset & (a - 1) || head_end - offset < a) {
        r = rmw_write_piece(n, offset, head_end - offset, p, flags);
        if (r < 0)
            goto done;
        if (p)
            p += head_end - offset;
        offset = head_end;
    }
    uint64_t mid_end = vdk_align_down(end, a);
    if (offset < mid_end) {
        r = do_write(n, offset, mid_end - offset, p, flags);
        if (r < 0)
            goto done;
        if (p)
            p += mid_end - offset;
        offset = mid_end;
    }
    if (offset < end)
        r = rmw_write_piece(n, offset, end - offset, p, flags);
done:
    if (track)
        track_end(n, &tr);
    return r;
}

static int pwrite_checked(struct vdk_node *n, const void *buf, uint64_t bytes,
                          uint64_t offset, unsigned flags)
{
    int r = check_write(n, offset, bytes);
    if (r < 0 || bytes == 0)
        return r;
    if ((flags & VDK_REQ_COMPRESSED) && !(n->supported_write_flags & VDK_REQ_COMPRESSED))
        return -ENOTSUP;
    r = write_common(n, buf, bytes, offset, flags);
    if (r == 0 && (flags & VDK_REQ_FUA) && !(n->supported_write_flags & VDK_REQ_FUA))
        r = vdk_flush(n);
    return r;
}

/* Fallback: write zero buffers, at most ZERO_CHUNK at a time. */
static int zeroes_by_writing(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                             unsigned flags)
{
    uint32_t a = n->limits.request_alignment;
    uint64_t chunk = vdk_min_u64(bytes, vdk_align_up(ZERO_CHUNK, a));
    chunk = vdk_min_u64(chunk, vdk_node_effective_max_transfer(n));
    void *zero = vdk_blk_alloc(chunk);
    if (!zero)
        return -ENOMEM;
    int r = 0;
    while (bytes && r == 0) {
        uint64_t c = vdk_min_u64(bytes, chunk);
        r = write_common(n, zero, c, offset, flags & ~VDK_REQ_FUA);
        offset += c;
        bytes -= c;
    }
    vdk_blk_free(zero);
    return r;
}

static int pwrite_zeroes_checked(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                                 unsigned flags)
{
    int r = check_write(n, offset, bytes);
    if (r < 0 || bytes == 0)
        return r;
    uint32_t za = n->limits.pwrite_zeroes_alignment;
    if (za < n->limits.request_alignment || !vdk_is_pow2(za))
        za = n->limits.request_alignment;
    uint64_t end = offset + bytes;
    if (n->drv->pwrite_zeroes) {
        /* The driver zeroes the aligned middle; edges are written. */
        uint64_t m0 = vdk_align_up(offset, za), m1 = vdk_align_down(end, za);
        if (m0 < m1) {
            /* Edges can only be written as data, which NO_FALLBACK forbids:
               fail before touching anything. */
            if ((flags & VDK_REQ_NO_FALLBACK) && (offset < m0 || m1 < end))
                return -ENOTSUP;
            uint64_t maxz = n->limits.max_pwrite_zeroes ? n->limits.max_pwrite_zeroes
                                                        : (1u << 30);
            maxz = vdk_align_down(maxz, za);
            if (!maxz)
                maxz = za;
            /* NO_FALLBACK is for the generic layer of every node below too
               (raw passes zeroes on to its file). */
            unsigned dflags = (flags & n->supported_zero_flags) |
                              (flags & VDK_REQ_NO_FALLBACK);
            /* Zeros written as data carry no FUA (zeroes_by_writing): a
               flush makes them durable even when the driver does FUA. */
            bool wrote = offset < m0 || m1 < end;
            uint64_t o = m0;
            while (o < m1) {
                uint64_t c = vdk_min_u64(m1 - o, maxz);
                struct vdk_tracked_req tr = { o, o + c, false, NULL };
                bool track = n->limits.request_alignment > 1;
                if (track)
                    track_begin(n, &tr);
                r = n->drv->pwrite_zeroes(n, o, c, dflags);
                if (track)
                    track_end(n, &tr);
                if (r == -ENOTSUP && !(flags & VDK_REQ_NO_FALLBACK)) {
                    r = zeroes_by_writing(n, o, c, flags);
                    wrote = true;
                }
                if (r < 0)
                    return r;
                o += c;
            }
            if (offset < m0 && (r = zeroes_by_writing(n, offset, m0 - offset, flags)) < 0)
                return r;
            if (m1 < end && (r = zeroes_by_writing(n, m1, end - m1, flags)) < 0)
                return r;
            if ((flags & VDK_REQ_FUA) && (wrote || !(n->supported_zero_flags & VDK_REQ_FUA)))
                r = vdk_flush(n);
            return r;
        }
    }
    if (flags & VDK_REQ_NO_FALLBACK)
        return -ENOTSUP;
    r = zeroes_by_writing(n, offset, bytes, flags);
    if (r == 0 && (flags & VDK_REQ_FUA))
        r = vdk_flush(n);
    return r;
}

static int discard_checked(struct vdk_node *n, uint64_t offset, uint64_t bytes)
{
    int r = check_write(n, offset, bytes);
    if (r < 0 || bytes == 0)
        return r;
    if (!n->drv->discard)
        return 0;
    uint32_t da = n->limits.discard_alignment;
    if (da < n->limits.request_alignment)
        da = n->limits.request_alignment;
    if (!vdk_is_pow2(da))
        da = 1;
    /* Discard is advisory: drop the unaligned edges. */
    uint64_t d0 = vdk_align_up(offset, da), d1 = vdk_align_down(offset + bytes, da);
    if (d0 >= d1)
        return 0;
    struct vdk_tracked_req tr = { d0, d1, false, NULL };
    bool track = n->limits.request_alignment > 1;
    if (track)
        track_begin(n, &tr);
    r = n->drv->discard(n, d0, d1 - d0);
    if (track)
        track_end(n, &tr);
    return r == -ENOTSUP ? 0 : r;
}

enum write_kind { WRITE_DATA, WRITE_ZEROES, WRITE_DISCARD };

static int write_dispatch(struct vdk_node *n, enum write_kind k, const void *buf,
                          uint64_t bytes, uint64_t offset, unsigned flags)
{
    switch (k) {
    case WRITE_DATA: return pwrite_checked(n, buf, bytes, offset, flags);
    case WRITE_ZEROES: return pwrite_zeroes_checked(n, offset, bytes, flags);
    default: return discard_checked(n, offset, bytes);
    }
}

static int write_entry(struct vdk_node *n, enum write_kind k, const void *buf,
                       uint64_t bytes, uint64_t offset, unsigned flags)
{
    if (!sector0_write_needs_check(n, offset, bytes))
        return write_dispatch(n, k, buf, bytes, offset, flags);
    int r = check_write(n, offset, bytes);
    if (r < 0)
        return r;
    pthread_mutex_lock(&n->sector0_lock);
    r = sector0_check(n, k == WRITE_DATA ? buf : NULL, bytes, offset);
    if (r == 0)
        r = write_dispatch(n, k, buf, bytes, offset, flags);
    pthread_mutex_unlock(&n->sector0_lock);
    return r;
}

int vdk_pwrite(struct vdk_node *n, const void *buf, uint64_t bytes, uint64_t offset,
               unsigned flags)
{
    return write_entry(n, WRITE_DATA, buf, bytes, offset, flags);
}

int vdk_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes, unsigned flags)
{
    return write_entry(n, WRITE_ZEROES, NULL, bytes, offset, flags);
}

int vdk_discard(struct vdk_node *n, uint64_t offset, uint64_t bytes)
{
    return write_entry(n, WRITE_DISCARD, NULL, bytes, offset, 0);
}

int vdk_flush(struct vdk_node *n)
{
    if (!n || n->read_only || (n->open_flags & VDK_O_UNSAFE))
        return 0;
    int r = n->drv->flush ? n->drv->flush(n) : 0;
    if (r == 0 && n->file && !n->drv->flush_covers_file)
        r = vdk_flush(n->file);
    return r;
}

int64_t vdk_get_length(struct vdk_node *n)
{
    if (n->drv->get_length)
        return n->drv->get_length(n);
    return (int64_t)n->size;
}

int64_t vdk_get_allocated_size(struct vdk_node *n)
{
    if (n->drv->get_allocated_size)
        return n->drv->get_allocated_size(n);
    if (n->drv->kind == VDK_DRV_PROTOCOL)
        return -1;
    int64_t sum = 0;
    bool any = false;
    if (n->file) {
        int64_t s = vdk_get_allocated_size(n->file);
        if (s >= 0) {
            sum += s;
            any = true;
        }
    }
    return any ? sum : -1;
}

const char *const vdk_prealloc_names[] = { "off", "metadata", "falloc", "full", NULL };

int vdk_truncate(struct vdk_node *n, uint64_t size, enum vdk_prealloc prealloc,
                 bool allow_shrink, struct vdk_error **errp)
{
    if (n->read_only)
        return vdk_error_setf(errp, EPERM, "image '%s' is read-only", n->filename);
    if (size > INT64_MAX)
        return vdk_error_setf(errp, EFBIG, "size too large");
    if (!n->drv->truncate)
        return vdk_error_setf(errp, ENOTSUP, "format '%s' does not support resizing",
                              n->drv->name);
    int64_t cur = vdk_get_length(n);
    if (cur >= 0 && size < (uint64_t)cur && !allow_shrink)
        return vdk_error_setf(errp, EINVAL,
                              "use the --shrink option to make an image smaller; "
                              "data past the new end is lost");
    return n->drv->truncate(n, size, prealloc, allow_shrink, errp);
}

int vdk_node_map(struct vdk_node *n, uint64_t offset, uint64_t bytes, const void **ptr)
{
    if (!n->drv->map)
        return -ENOTSUP;
    int64_t len = vdk_get_length(n);
    if (len < 0)
        return (int)len;
    if (bytes == 0 || offset > (uint64_t)len || bytes > (uint64_t)len - offset)
        return -EINVAL;
    return n->drv->map(n, offset, bytes, ptr);
}

int vdk_node_unmap(struct vdk_node *n, const void *ptr, uint64_t bytes)
{
    return n->drv->unmap ? n->drv->unmap(n, ptr, bytes) : 0;
}

int vdk_node_sendfile(struct vdk_node *n, int sock, uint64_t offset, uint64_t bytes,
                      uint64_t *sent)
{
    if (sent)
        *sent = 0;
    if (!n->drv->sendfile)
        return -ENOTSUP;
    if (bytes == 0)
        return n->drv->sendfile(n, -1, 0, 0, NULL);
    /* No length lookup (an fstat per reply): the driver stops at the
       file's end, and the caller pads.  Only the range must fit an off_t. */
    if (!sent || offset > (uint64_t)INT64_MAX || bytes > (uint64_t)INT64_MAX - offset)
        return -EINVAL;
    return n->drv->sendfile(n, sock, offset, bytes, sent);
}

uint32_t vdk_node_effective_max_transfer(const struct vdk_node *n)
{
    uint32_t mt = n->limits.max_transfer ? n->limits.max_transfer : VDK_DEFAULT_MAX_TRANSFER;
    if (mt > VDK_MAX_REQUEST)
        mt = VDK_MAX_REQUEST;
    uint32_t a = n->limits.request_alignment;
    mt = (uint32_t)vdk_align_down(mt, a);
    return mt ? mt : a;
}
