/* SPDX-License-Identifier: MIT */
/*
 * qcow2: refcount table and blocks (entries of 1..64 bits), the cluster
 * allocator, refcount-table growth and the metadata overlap check.
 * Everything here runs with s->lock held.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "formats/qcow2/qcow2.h"

/* Largest host offset we allocate at (the L2 offset field has 56 bits). */
#define QCOW2_MAX_HOST_OFFSET (1ull << 56)

int qcow2_refcount_init(struct vdk_node *n, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    uint64_t bytes = (uint64_t)s->rt_clusters * s->cluster_size;
    s->rt_size = bytes / 8;
    s->rt = malloc(bytes);
    if (!s->rt)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    int r = vdk_pread(n->file, s->rt, bytes, s->rt_offset, 0);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "could not read the refcount table");
    int64_t flen = vdk_get_length(n->file);
    for (uint64_t i = 0; i < s->rt_size; i++) {
        s->rt[i] = q_be64((uint8_t *)&s->rt[i]);
        if (!s->rt[i])
            continue;
        s->rt_hi = i + 1;
        if (q_offset_in_cluster(s, s->rt[i]) && !s->repair_open)
            return vdk_error_setf(errp, EINVAL, "refcount block %" PRIu64 " at 0x%"
                                  PRIx64 " is not cluster aligned", i, s->rt[i]);
        if ((n->open_flags & VDK_O_RDWR) && !s->repair_open && flen >= 0 &&
            s->rt[i] >= (uint64_t)flen)
            return vdk_error_setf(errp, EINVAL, "refcount block %" PRIu64 " at 0x%"
                                  PRIx64 " is beyond end of file", i, s->rt[i]);
    }
    s->free_hint = 1;
    return 0;
}

uint64_t qcow2_rb_get(const struct qcow2_state *s, const uint8_t *blk, uint64_t i)
{
    switch (s->refcount_order) {
    case 0: return (blk[i / 8] >> (i % 8)) & 1;
    case 1: return (blk[i / 4] >> (2 * (i % 4))) & 3;
    case 2: return (blk[i / 2] >> (4 * (i % 2))) & 15;
    case 3: return blk[i];
    case 4: return q_be16(blk + 2 * i);
    case 5: return q_be32(blk + 4 * i);
    default: return q_be64(blk + 8 * i);
    }
}

void qcow2_rb_set(const struct qcow2_state *s, uint8_t *blk, uint64_t i, uint64_t v)
{
    unsigned sh;
    switch (s->refcount_order) {
    case 0: sh = (unsigned)(i % 8); blk[i / 8] = (uint8_t)((blk[i / 8] & ~(1u << sh)) | (v & 1) << sh); break;
    case 1: sh = 2 * (unsigned)(i % 4); blk[i / 4] = (uint8_t)((blk[i / 4] & ~(3u << sh)) | (v & 3) << sh); break;
    case 2: sh = 4 * (unsigned)(i % 2); blk[i / 2] = (uint8_t)((blk[i / 2] & ~(15u << sh)) | (v & 15) << sh); break;
    case 3: blk[i] = (uint8_t)v; break;
    case 4: q_st16(blk + 2 * i, (uint16_t)v); break;
    case 5: q_st32(blk + 4 * i, (uint32_t)v); break;
    default: q_st64(blk + 8 * i, v); break;
    }
}

/* Refcount block holding `cluster`: offset, or 0 when none exists. */
static int block_of(struct vdk_node *n, uint64_t cluster, uint64_t *boff)
{
    struct qcow2_state *s = n->opaque;
    uint64_t rti = cluster >> s->rb_bits;
    *boff = rti < s->rt_size ? s->rt[rti] : 0;
    if (*boff && q_offset_in_cluster(s, *boff))
        return qcow2_signal_corruption(n, "refcount block %" PRIu64 " unaligned", rti);
    return 0;
}

bool qcow2_detect_meta_prealloc(struct vdk_node *n)
{
    struct qcow2_state *s = n->opaque;
    int64_t alloc = vdk_get_allocated_size(n->file);
    int64_t flen = vdk_get_length(n->file);
    if (alloc < 0 || flen <= 0)
        return false;
    uint64_t real = (uint64_t)alloc >> s->cluster_bits;
    uint64_t need = real * 10 / 9 > real + 2 ? real * 10 / 9 : real + 2;
    uint64_t nb = ((uint64_t)flen + s->cluster_size - 1) >> s->cluster_bits;
    uint64_t per = 1ull << s->rb_bits, used = 0;
    if (nb < need)
        return false; /* not even the file's length in clusters */
    for (uint64_t c = 0; c < nb; c = (c | (per - 1)) + 1) {
        uint64_t boff;
        uint8_t *blk;
        if (block_of(n, c, &boff) < 0)
            return false;
        if (!boff || qcow2_cache_get(n, &s->rb_cache, boff, true, &blk) < 0)
            continue;
        uint64_t end = vdk_min_u64((c | (per - 1)) + 1, nb);
        for (uint64_t i = c; i < end; i++)
            if (qcow2_rb_get(s, blk, i & (per - 1)) && ++used >= need)
                return true;
    }
    return false;
}

int qcow2_get_refcount(struct vdk_node *n, uint64_t cluster, uint64_t *rc)
{
    struct qcow2_state *s = n->opaque;
    uint64_t boff;
    uint8_t *blk;
    int r = block_of(n, cluster, &boff);
    *rc = 0;
    if (r < 0 || !boff)
        return r;
    if ((r = qcow2_cache_get(n, &s->rb_cache, boff, true, &blk)) < 0)
        return r;
    *rc = qcow2_rb_get(s, blk, cluster & ((1ull << s->rb_bits) - 1));
    return 0;
}

/*
 * First run of `count` free clusters at or after the hint.  Scans whole
 * refcount blocks at a time; ranges without a block are free.  A scan far
 * past the end of the file means the refcounts claim clusters that cannot
 * exist: the image is corrupt (and the scan would take forever).
 */
static int64_t find_free(struct vdk_node *n, uint64_t count)
{
    struct qcow2_state *s = n->opaque;
    uint64_t c = s->free_hint ? s->free_hint : 1, start = c, run = 0;
    uint64_t first_free = 0; /* first free cluster seen, 0: none yet */
    uint64_t limit = QCOW2_MAX_HOST_OFFSET >> s->cluster_bits;
    uint64_t per = 1ull << s->rb_bits;
    int64_t flen = vdk_get_length(n->file);
    uint64_t fcl = flen > 0 ? (uint64_t)flen >> s->cluster_bits : 0;
    while (run < count) {
        if (c >= limit)
            return -ENOSPC;
        if (c > fcl + (1ull << 20) + count)
            return qcow2_signal_corruption(n, "refcounts claim clusters far past the "
                                           "end of the file");
        uint64_t boff, bend = (c | (per - 1)) + 1;
        uint8_t *blk;
        int r = block_of(n, c, &boff);
        if (r < 0)
            return r;
        if (!boff) {
            if (run == 0)
                start = c;
            if (!first_free)
                first_free = c;
            run += bend - c;
            c = bend;
            continue;
        }
        if ((r = qcow2_cache_get(n, &s->rb_cache, boff, true, &blk)) < 0)
            return r;
        for (; c < bend && run < count; c++) {
            if (qcow2_rb_get(s, blk, c & (per - 1)) == 0) {
                if (run++ == 0)
                    start = c;
                if (!first_free)
                    first_free = c;
            } else {
                run = 0;
            }
        }
    }
    /* Everything from the hint up to the first free cluster is in use:
       the next search starts there, not over the same clusters again. */
    if (first_free > s->free_hint)
        s->free_hint = first_free;
    return (int64_t)start;
}

static int write_rt_entry(struct vdk_node *n, uint64_t rti)
{
    struct qcow2_state *s = n->opaque;
    uint8_t b[8];
    q_st64(b, s->rt[rti]);
    return vdk_pwrite(n->file, b, 8, s->rt_offset + rti * 8, 0);
}

/*
 * Grow the refcount table to more than `min_index` entries.  The new table
 * and the refcount blocks describing it go to a fresh area past everything
 * in use, and describe themselves; the header switches over only after they
 * are on disk, then the old table is freed.
 */
static int grow_rt(struct vdk_node *n, uint64_t min_index)
{
    struct qcow2_state *s = n->opaque;
    uint64_t cs = s->cluster_size;
    int64_t flen = vdk_get_length(n->file);
    if (flen < 0)
        return (int)flen;
    uint64_t a = s->rt_size << s->rb_bits;
    uint64_t fc = vdk_align_up((uint64_t)flen, cs) >> s->cluster_bits;
    if (fc > a)
        a = fc;
    uint64_t entries = s->rt_size * 2 > min_index + 1 ? s->rt_size * 2 : min_index + 1;
    uint64_t nb_rb = 1, tbl, first, last;
    for (;;) {
        entries = vdk_align_up(entries, cs / 8);
        tbl = entries * 8 / cs;
        first = a >> s->rb_bits;
        last = (a + tbl + nb_rb - 1) >> s->rb_bits;
        if (last >= entries) {
            entries = last + 1;
            continue;
        }
        if (last - first + 1 > nb_rb) {
            nb_rb = last - first + 1;
            continue;
        }
        break;
    }
    if (entries * 8 > QCOW2_MAX_RT_BYTES)
        return -EFBIG;
    uint64_t total = tbl + nb_rb;
    uint8_t *area = vdk_blk_alloc(total * cs);
    if (!area)
        return -ENOMEM;
    for (uint64_t k = a; k < a + total; k++) {
        uint64_t bi = (k >> s->rb_bits) - first;
        qcow2_rb_set(s, area + bi * cs, k & ((1ull << s->rb_bits) - 1), 1);
    }
    uint8_t *t = area + nb_rb * cs;
    for (uint64_t i = 0; i < s->rt_size; i++)
        q_st64(t + 8 * i, s->rt[i]);
    for (uint64_t i = 0; i < nb_rb; i++)
        q_st64(t + 8 * (first + i), (a + i) * cs);
    uint64_t *nrt = calloc(entries, 8);
    int r = nrt ? 0 : -ENOMEM;
    if (r == 0)
        r = vdk_pwrite(n->file, area, total * cs, a * cs, 0);
    if (r == 0)
        r = vdk_flush(n->file);
    uint8_t h[12];
    q_st64(h, (a + nb_rb) * cs);
    q_st32(h + 8, (uint32_t)tbl);
    if (r == 0)
        r = vdk_pwrite(n->file, h, 12, QH_RT_OFFSET, 0);
    if (r == 0)
        r = vdk_flush(n->file);
    vdk_blk_free(area);
    if (r < 0) {
        free(nrt);
        return r;
    }
    memcpy(nrt, s->rt, s->rt_size * 8);
    for (uint64_t i = 0; i < nb_rb; i++)
        nrt[first + i] = (a + i) * cs;
    uint64_t old_off = s->rt_offset, old_clusters = s->rt_clusters;
    free(s->rt);
    s->rt = nrt;
    s->rt_size = entries;
    s->rt_offset = (a + nb_rb) * cs;
    s->rt_clusters = (uint32_t)tbl;
    s->rt_hi = first + nb_rb > s->rt_hi ? first + nb_rb : s->rt_hi;
    return qcow2_update_refcount(n, old_off, old_clusters * cs, -1);
}

/* Make sure a refcount block covers `cluster` (rule 2 in qcow2.h). */
static int ensure_block(struct vdk_node *n, uint64_t cluster, int depth)
{
    struct qcow2_state *s = n->opaque;
    uint64_t cs = s->cluster_size;
    int r;
    if (depth > 4)
        return -EIO;
    for (;;) {
        uint64_t rti = cluster >> s->rb_bits;
        if (rti >= s->rt_size) {
            if ((r = grow_rt(n, rti)) < 0)
                return r;
            continue;
        }
        if (s->rt[rti])
            return 0;
        int64_t cand = find_free(n, 1);
        if (cand < 0)
            return (int)cand;
        uint64_t crti = (uint64_t)cand >> s->rb_bits;
        if (crti >= s->rt_size) {
            if ((r = grow_rt(n, crti)) < 0)
                return r;
            continue;
        }
        uint8_t *blk = vdk_blk_alloc(cs);
        if (!blk)
            return -ENOMEM;
        if (crti == rti) {
            /* The new block describes itself. */
            qcow2_rb_set(s, blk, (uint64_t)cand & ((1ull << s->rb_bits) - 1), 1);
            r = vdk_pwrite(n->file, blk, cs, (uint64_t)cand * cs, 0);
        } else if (!s->rt[crti]) {
            vdk_blk_free(blk);
            if ((r = ensure_block(n, (uint64_t)cand, depth + 1)) < 0)
                return r;
            continue;
        } else {
            r = qcow2_update_refcount(n, (uint64_t)cand * cs, cs, 1);
            if (r == 0)
                r = vdk_pwrite(n->file, blk, cs, (uint64_t)cand * cs, 0);
            if (r == 0)
                r = qcow2_cache_flush(n, &s->rb_cache);
        }
        vdk_blk_free(blk);
        if (r == 0)
            r = vdk_flush(n->file);
        if (r < 0)
            return r;
        s->rt[rti] = (uint64_t)cand * cs;
        if ((r = write_rt_entry(n, rti)) < 0) {
            s->rt[rti] = 0;
            return r;
        }
        if (rti + 1 > s->rt_hi)
            s->rt_hi = rti + 1;
        return 0;
    }
}

/*
 * Change the refcount of every cluster in [offset, offset+len): add delta,
 * or (absolute) set it to `value`.  Magnitudes are unsigned so 64-bit
 * refcounts cannot overflow the arithmetic.
 */
static int change_refcount(struct vdk_node *n, uint64_t offset, uint64_t len,
                           int64_t delta, bool absolute, uint64_t value)
{
    struct qcow2_state *s = n->opaque;
    if (!len)
        return 0;
    uint64_t mag = delta < 0 ? 0 - (uint64_t)delta : (uint64_t)delta;
    uint64_t c0 = offset >> s->cluster_bits, c1 = (offset + len - 1) >> s->cluster_bits;
    for (uint64_t c = c0; c <= c1; c++) {
        uint64_t boff;
        uint8_t *blk;
        int r = block_of(n, c, &boff);
        if (r < 0)
            return r;
        if (!boff) {
            if (absolute ? value == 0 : delta <= 0) {
                if (absolute || delta == 0)
                    continue;
                return qcow2_signal_corruption(n, "freeing cluster 0x%" PRIx64
                                               " that has no refcount block",
                                               c << s->cluster_bits);
            }
            if ((r = ensure_block(n, c, 0)) < 0 || (r = block_of(n, c, &boff)) < 0)
                return r;
        }
        if ((r = qcow2_cache_get(n, &s->rb_cache, boff, true, &blk)) < 0)
            return r;
        uint64_t idx = c & ((1ull << s->rb_bits) - 1);
        uint64_t v = qcow2_rb_get(s, blk, idx);
        if (absolute) {
            if (value > s->refcount_max)
                return -ERANGE;
            v = value;
        } else if (delta < 0) {
            if (v < mag)
                return qcow2_signal_corruption(n, "refcount of cluster 0x%" PRIx64
                                               " would drop below zero",
                                               c << s->cluster_bits);
            v -= mag;
        } else {
            if (mag > s->refcount_max - v)
                return -ERANGE;
            v += mag;
        }
        qcow2_rb_set(s, blk, idx, v);
        qcow2_cache_mark_dirty(&s->rb_cache, boff);
        if (v == 0) {
            if (c < s->free_hint)
                s->free_hint = c;
            qcow2_cache_discard(&s->l2_cache, c << s->cluster_bits);
            if (s->free_byte && (s->free_byte >> s->cluster_bits) == c)
                s->free_byte = 0;
            if (s->free_byte2 && (s->free_byte2 >> s->cluster_bits) == c)
                s->free_byte2 = 0;
        }
    }
    return 0;
}

int qcow2_update_refcount(struct vdk_node *n, uint64_t offset, uint64_t len,
                          int64_t delta)
{
    return change_refcount(n, offset, len, delta, false, 0);
}

int qcow2_set_refcount(struct vdk_node *n, uint64_t cluster, uint64_t value)
{
    struct qcow2_state *s = n->opaque;
    return change_refcount(n, cluster << s->cluster_bits, 1, 0, true, value);
}

/* Allocate [start, start+count) if all free; 1 if done, 0 if not free. */
static int alloc_at(struct vdk_node *n, uint64_t start, uint64_t count)
{
    struct qcow2_state *s = n->opaque;
    for (;;) {
        bool again = false;
        for (uint64_t c = start; c < start + count; c++) {
            uint64_t rc, boff;
            int r = qcow2_get_refcount(n, c, &rc);
            if (r < 0)
                return r;
            if (rc)
                return 0;
            if ((r = block_of(n, c, &boff)) < 0)
                return r;
            if (!boff) {
                if ((r = ensure_block(n, c, 0)) < 0)
                    return r;
                again = true; /* the new block may sit in our range */
                break;
            }
        }
        if (!again)
            break;
    }
    int r = qcow2_update_refcount(n, start << s->cluster_bits, count << s->cluster_bits, 1);
    return r < 0 ? r : 1;
}

int64_t qcow2_alloc_clusters(struct vdk_node *n, uint64_t count)
{
    struct qcow2_state *s = n->opaque;
    int r = qcow2_mark_dirty(n);
    if (r < 0)
        return r;
    for (;;) {
        int64_t start = find_free(n, count);
        if (start < 0)
            return start;
        r = alloc_at(n, (uint64_t)start, count);
        if (r < 0)
            return r;
        if (r == 1) {
            if (s->free_hint == (uint64_t)start)
                s->free_hint = (uint64_t)start + count;
            return (int64_t)((uint64_t)start << s->cluster_bits);
        }
    }
}

/* Whether the packing cluster of *fb can take one more compressed cluster
   (its refcount is below the width's maximum); clears *fb if not. */
static int packing_usable(struct vdk_node *n, uint64_t *fb)
{
    struct qcow2_state *s = n->opaque;
    uint64_t rc;
    if (!*fb)
        return 0;
    int r = qcow2_get_refcount(n, *fb >> s->cluster_bits, &rc);
    if (r < 0)
        return r;
    if (rc >= s->refcount_max)
        *fb = 0;
    return *fb != 0;
}

int64_t qcow2_alloc_bytes(struct vdk_node *n, uint64_t bytes)
{
    struct qcow2_state *s = n->opaque;
    uint64_t cs = s->cluster_size;
    int64_t off = -1;
    int r;
    /* First the tail an earlier packing cluster left when a stream did not
       fit and the next cluster was taken (by uncompressed data or a
       table): filling it keeps images as small as qemu's or smaller
       whatever order parallel writers finish in. */
    if ((r = packing_usable(n, &s->free_byte2)) < 0)
        return r;
    if (r && bytes <= cs - q_offset_in_cluster(s, s->free_byte2)) {
        if ((r = qcow2_update_refcount(n, vdk_align_down(s->free_byte2, cs), 1, 1)) < 0)
            return r;
        off = (int64_t)s->free_byte2;
        s->free_byte2 += bytes;
        if (q_offset_in_cluster(s, s->free_byte2) == 0)
            s->free_byte2 = 0;
        return off;
    }
    if ((r = packing_usable(n, &s->free_byte)) < 0)
        return r;
    if (r) {
        uint64_t space = cs - q_offset_in_cluster(s, s->free_byte);
        uint64_t fcl = s->free_byte >> s->cluster_bits;
        if (bytes <= space) {
            r = qcow2_update_refcount(n, fcl << s->cluster_bits, 1, 1);
            if (r < 0)
                return r;
            off = (int64_t)s->free_byte;
        } else {
            uint64_t extra = (bytes - space + cs - 1) / cs;
            r = alloc_at(n, fcl + 1, extra);
            if (r < 0)
                return r;
            if (r == 1) {
                if ((r = qcow2_update_refcount(n, fcl << s->cluster_bits, 1, 1)) < 0)
                    return r;
                off = (int64_t)s->free_byte;
            }
        }
    }
    if (off < 0) {
        uint64_t old = s->free_byte;
        off = qcow2_alloc_clusters(n, (bytes + cs - 1) / cs);
        if (off < 0)
            return off;
        /* Keep the larger of the two tails for later streams. */
        if (old && (!s->free_byte2 || q_offset_in_cluster(s, old) <
                                          q_offset_in_cluster(s, s->free_byte2)))
            s->free_byte2 = old;
    }
    s->free_byte = (uint64_t)off + bytes;
    if (q_offset_in_cluster(s, s->free_byte) == 0)
        s->free_byte = 0;
    return off;
}

int qcow2_free_l2_entry(struct vdk_node *n, uint64_t entry)
{
    struct qcow2_state *s = n->opaque;
    if (entry & QCOW2_OFLAG_COMPRESSED) {
        uint64_t coff = entry & s->coffset_mask;
        uint64_t nb = ((entry >> s->csize_shift) & s->csize_mask) + 1;
        return qcow2_update_refcount(n, coff & ~511ull, nb * 512, -1);
    }
    uint64_t off = entry & QCOW2_OFFSET_MASK;
    if (!off || s->data != n->file)
        return 0; /* external data files have no refcounts */
    return qcow2_update_refcount(n, off, s->cluster_size, -1);
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return blen && alen && a < b + blen && b < a + alen;
}

/* What metadata [off, off+len) overlaps, or NULL. */
static const char *overlap_what(struct vdk_node *n, uint64_t off, uint64_t len)
{
    struct qcow2_state *s = n->opaque;
    uint64_t cs = s->cluster_size;
    if (s->data != n->file)
        return NULL;
    const char *what = NULL;
    if (overlaps(off, len, 0, cs))
        what = "the header";
    else if (overlaps(off, len, s->l1_offset, vdk_align_up((uint64_t)s->l1_size * 8, cs)))
        what = "the active L1 table";
    else if (overlaps(off, len, s->rt_offset, (uint64_t)s->rt_clusters * cs))
        what = "the refcount table";
    else if (s->nb_snapshots && overlaps(off, len, s->snapshots_offset, cs))
        what = "the snapshot table";
    else if (qcow2_crypto_overlaps(s, off, len))
        what = "the encryption header";
    for (uint64_t i = 0; !what && i < s->rt_hi; i++)
        if (s->rt[i] && overlaps(off, len, s->rt[i] & ~(cs - 1), cs))
            what = "a refcount block";
    for (uint32_t i = 0; !what && i < s->l1_size; i++) {
        uint64_t l2 = s->l1[i] & QCOW2_OFFSET_MASK;
        if (l2 && overlaps(off, len, l2, cs))
            what = "an active L2 table";
    }
    return what;
}

/* Mark the image corrupt if [off, off+len) overlaps metadata. */
static int overlap_refuse(struct vdk_node *n, uint64_t off, uint64_t len, bool freeing)
{
    const char *what = overlap_what(n, off, len);
    if (!what)
        return 0;
    return qcow2_signal_corruption(n, freeing ? "freeing 0x%" PRIx64 " (%" PRIu64 " bytes) "
                                                "would release %s"
                                              : "write at 0x%" PRIx64 " (%" PRIu64 " bytes) "
                                                "would overwrite %s",
                                   off, len, what);
}

int qcow2_check_overlap(struct vdk_node *n, uint64_t off, uint64_t len)
{
    return overlap_refuse(n, off, len, false);
}

int qcow2_check_free(struct vdk_node *n, uint64_t off, uint64_t len)
{
    return overlap_refuse(n, off, len, true);
}
