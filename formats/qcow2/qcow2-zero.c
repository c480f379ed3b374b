/* SPDX-License-Identifier: MIT */
/*
 * qcow2: zero writes and discards.  Whole clusters (subclusters with
 * extended L2) change their L2 entries to "zero" or "unallocated"; host
 * clusters are released only after the new entries are on disk (rule 3 in
 * qcow2.h), in batches over the range.  Partial clusters are left to the generic layer, which writes
 * zero buffers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "formats/qcow2/qcow2.h"
#include "formats/qcow2/qcow2-bitmap.h"

/* Replaced entries whose host clusters are released together: one L2
   write-back and flush per batch instead of one per cluster. */
#define ZERO_FREE_BATCH 256

/*
 * Zero or discard whole clusters (subclusters with extended L2) of
 * [offset, offset+bytes).  unmap: release host clusters.  discard: entries
 * become "unallocated" where the result still reads as zeros or the
 * format cannot say otherwise (qemu's rules: v2 always, v3 without backing
 * for unallocated clusters).
 */
static int zero_range(struct vdk_node *n, uint64_t offset, uint64_t bytes, bool unmap,
                      bool discard)
{
    struct qcow2_state *s = n->opaque;
    uint64_t cs = s->cluster_size, sc = 1ull << s->sc_bits;
    uint64_t batch[ZERO_FREE_BATCH], nbatch = 0;
    int r = 0;
    pthread_rwlock_wrlock(&s->free_lock);
    pthread_mutex_lock(&s->lock);
    if (s->corrupt)
        r = -EIO;
    while (r == 0 && bytes) {
        uint64_t c0 = vdk_align_down(offset, cs);
        uint64_t len = vdk_min_u64(c0 + cs - offset, bytes);
        uint64_t e, bm;
        if ((r = qcow2_get_l2_entry(n, c0, &e, &bm)) < 0)
            break;
        bool whole = len == cs || (offset == c0 && offset + len >= s->size);
        uint64_t ne = e, nbm = bm, freed = 0;
        if (s->extended_l2 && !whole && !(e & QCOW2_OFLAG_COMPRESSED)) {
            unsigned a = (unsigned)((offset - c0) / sc);
            unsigned b = (unsigned)(vdk_align_up(offset + len - c0, sc) / sc);
            uint64_t mask = ((1ull << (b - a)) - 1) << a;
            nbm = (bm & ~mask) | (mask << 32);
        } else if (!whole) {
            r = -ENOTSUP; /* generic layer writes the partial cluster */
            break;
        } else if (s->extended_l2) {
            ne = (!unmap && (e & QCOW2_OFLAG_COPIED) && !(e & QCOW2_OFLAG_COMPRESSED))
                     ? e : 0;
            nbm = 0xffffffff00000000ull;
            if (ne != e)
                freed = e;
        } else if (discard && (s->version < 3 || (!n->backing && !qcow2_entry_owns_host(s, e)))) {
            ne = 0;
            freed = e;
        } else if (!unmap && (e & QCOW2_OFLAG_COPIED) && qcow2_std_entry_has_host(s, e)) {
            ne = e | QCOW2_OFLAG_ZERO; /* keep the preallocated cluster */
        } else {
            ne = QCOW2_OFLAG_ZERO;
            freed = e;
        }
        if (ne != e || nbm != bm) {
            /* A discard of what already reads as zeros with nothing below
               leaves it unallocated; a zero write marks it zero (as qemu). */
            bool nothing = discard && !e && !(bm & 0xffffffffull) && !n->backing;
            if (!nothing && (r = qcow2_set_l2_entry(n, c0, ne, nbm)) == 0 && s->data != n->file)
                freed = 0; /* external data: nothing to free */
            if (r == 0 && qcow2_entry_owns_host(s, freed)) {
                batch[nbatch++] = freed;
                if (nbatch == ZERO_FREE_BATCH) {
                    r = qcow2_free_old_entries(n, batch, nbatch);
                    nbatch = 0;
                }
            }
        }
        /* A raw data file must keep showing the guest content. */
        if (r == 0 && s->data_raw && (ne != e || nbm != bm))
            r = vdk_pwrite_zeroes(s->data, offset, len, unmap ? VDK_REQ_MAY_UNMAP : 0);
        offset += len;
        bytes -= len;
    }
    /* On error the batch is not released: a leak, never a cluster still
       named by an L2 entry on disk. */
    if (r == 0 && nbatch)
        r = qcow2_free_old_entries(n, batch, nbatch);
    pthread_mutex_unlock(&s->lock);
    pthread_rwlock_unlock(&s->free_lock);
    return r;
}

int qcow2_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                        unsigned flags)
{
    struct qcow2_state *s = n->opaque;
    int r = qcow2_bitmaps_mark(n, offset, bytes);
    if (r < 0)
        return r;
    if (s->version < 3 && !s->extended_l2)
        return -ENOTSUP;
    uint64_t cs = s->cluster_size;
    if (!s->extended_l2 && (q_offset_in_cluster(s, offset) ||
                            (q_offset_in_cluster(s, bytes) && offset + bytes != s->size)))
        return -ENOTSUP;
    (void)cs;
    return zero_range(n, offset, bytes, (flags & VDK_REQ_MAY_UNMAP) != 0, false);
}

int qcow2_discard(struct vdk_node *n, uint64_t offset, uint64_t bytes)
{
    struct qcow2_state *s = n->opaque;
    /* The whole request is dirty, as in QEMU, even where nothing is freed. */
    int r = qcow2_bitmaps_mark(n, offset, bytes);
    if (r < 0)
        return r;
    /* Only whole clusters (the last may be partial at the image end). */
    uint64_t end = offset + bytes;
    if (end != s->size)
        end = vdk_align_down(end, s->cluster_size);
    offset = vdk_align_up(offset, s->cluster_size);
    if (offset >= end)
        return 0;
    return zero_range(n, offset, end - offset, true, true);
}

