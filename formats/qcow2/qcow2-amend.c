/* SPDX-License-Identifier: MIT */
/*
 * qcow2: resize (grow, and shrink with allow_shrink), L1 growth,
 * preallocation, amend (compat 0.10 <-> 1.1, lazy_refcounts, size) and
 * changing the backing file.
 * These run on the control thread with no I/O in flight.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "formats/qcow2/qcow2.h"
#include "formats/qcow2/qcow2-bitmap.h"

static int write_size(struct vdk_node *n, uint64_t size)
{
    uint8_t b[8];
    q_st64(b, size);
    int r = vdk_pwrite(n->file, b, 8, QH_SIZE, 0);
    return r == 0 ? vdk_flush(n->file) : r;
}

/* Unmap every cluster at or after guest offset `from` (shrink). */
static int free_tail(struct vdk_node *n, uint64_t from)
{
    struct qcow2_state *s = n->opaque;
    uint64_t cs = s->cluster_size, nent = 1ull << s->l2_bits;
    int r = 0;
    pthread_mutex_lock(&s->lock);
    for (uint32_t i = 0; r == 0 && i < s->l1_size; i++) {
        uint64_t l2 = s->l1[i] & QCOW2_OFFSET_MASK;
        uint64_t base = (uint64_t)i << (s->cluster_bits + s->l2_bits);
        if (!l2 || base + (nent << s->cluster_bits) <= from)
            continue;
        uint8_t *t;
        if (!(s->l1[i] & QCOW2_OFLAG_COPIED)) {
            r = -ENOTSUP; /* shared with a snapshot */
            break;
        }
        if ((r = qcow2_cache_get(n, &s->l2_cache, l2, true, &t)) < 0)
            break;
        uint64_t *old = calloc(nent, 8);
        uint64_t cnt = 0;
        if (!old) {
            r = -ENOMEM;
            break;
        }
        for (uint64_t j = 0; j < nent; j++) {
            if (base + (j << s->cluster_bits) < vdk_align_up(from, cs))
                continue;
            uint64_t e = q_be64(t + j * s->l2_entry_size);
            if (!e && !(s->extended_l2 && q_be64(t + j * 16 + 8)))
                continue;
            old[cnt++] = e;
            memset(t + j * s->l2_entry_size, 0, s->l2_entry_size);
        }
        qcow2_cache_mark_dirty(&s->l2_cache, l2);
        r = qcow2_cache_flush(n, &s->l2_cache);
        if (r == 0)
            r = vdk_flush(n->file);
        for (uint64_t j = 0; r == 0 && j < cnt; j++)
            r = qcow2_free_l2_entry(n, old[j]);
        free(old);
    }
    if (r == 0)
        r = qcow2_flush_metadata(n);
    pthread_mutex_unlock(&s->lock);
    return r;
}

int qcow2_truncate(struct vdk_node *n, uint64_t size, enum vdk_prealloc prealloc,
                   bool allow_shrink, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    int r;
    if (size % 512)
        return vdk_error_setf(errp, EINVAL, "the new size must be a multiple of 512 bytes");
    if (size > QCOW2_MAX_SIZE)
        return vdk_error_setf(errp, EFBIG, "the new size is too large");
    if (size < s->size && s->nb_snapshots)
        return vdk_error_setf(errp, ENOTSUP, "cannot shrink an image with internal "
                              "snapshots");
    /* Bitmaps resize with the image; an inconsistent one cannot (QEMU). */
    for (uint32_t i = 0; s->bitmaps && i < s->bitmaps->nb; i++)
        if (s->bitmaps->bm[i].inconsistent)
            return vdk_error_setf(errp, EBUSY, "Bitmap '%s' is inconsistent and cannot "
                                  "be used", s->bitmaps->bm[i].name);
    /* A stored (clean) bitmap would not fit the new size: "in use" first. */
    if ((r = qcow2_bitmaps_ensure_in_use(n)) < 0)
        return vdk_error_setf_errno(errp, r, "could not mark the bitmaps in use");
    uint64_t old = s->size;
    if (size < old) {
        if (prealloc != VDK_PREALLOC_OFF)
            return vdk_error_setf(errp, EINVAL, "preallocation cannot be used when "
                                  "shrinking an image");
        if ((r = free_tail(n, size)) < 0)
            return vdk_error_setf_errno(errp, r, "could not free the clusters past the "
                                        "new end");
    } else {
        pthread_mutex_lock(&s->lock);
        r = qcow2_grow_l1(n, qcow2_l1_entries(s, size));
        if (r == 0)
            r = qcow2_flush_metadata(n);
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
            return vdk_error_setf_errno(errp, r, "could not grow the L1 table");
    }
    if ((r = write_size(n, size)) < 0)
        return vdk_error_setf_errno(errp, r, "could not update the image size");
    s->size = size;
    n->size = size;
    if ((r = qcow2_bitmaps_resize(n, size)) < 0)
        return vdk_error_setf_errno(errp, r, "could not resize the dirty bitmaps");
    if (s->data_raw) {
        struct vdk_error *e = NULL;
        if ((r = vdk_truncate(s->data, size, prealloc == VDK_PREALLOC_METADATA ?
                              VDK_PREALLOC_OFF : prealloc, true, &e)) < 0) {
            vdk_error_propagate(errp, e);
            return r;
        }
    }
    if (size > old && prealloc != VDK_PREALLOC_OFF &&
        (r = qcow2_preallocate(n, old, size, prealloc)) < 0)
        return vdk_error_setf_errno(errp, r, "preallocation failed");
    return 0;
}

int qcow2_change_backing_file(struct vdk_node *n, const char *backing_file,
                              const char *backing_fmt, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    if (backing_file && s->data_raw)
        return vdk_error_setf(errp, EINVAL, "cannot set a backing file on an image with "
                              "a raw external data file");
    char *bf = backing_file ? strdup(backing_file) : NULL;
    char *bfmt = backing_file && backing_fmt ? strdup(backing_fmt) : NULL;
    if ((backing_file && !bf) || (backing_file && backing_fmt && !bfmt)) {
        free(bf);
        free(bfmt);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    char *ob = n->backing_file, *of = n->backing_fmt;
    n->backing_file = bf;
    n->backing_fmt = bfmt;
    pthread_mutex_lock(&s->lock);
    int r = qcow2_write_header(n, errp);
    if (r == 0 && (r = vdk_flush(n->file)) < 0)
        vdk_error_setf_errno(errp, r, "could not flush the header");
    pthread_mutex_unlock(&s->lock);
    if (r < 0) {
        n->backing_file = ob;
        n->backing_fmt = of;
        free(bf);
        free(bfmt);
        return r;
    }
    free(ob);
    free(of);
    return 0;
}

/* Downgrade to v2: zero clusters do not exist there.  Unallocated zero
   clusters become unallocated when nothing is below, otherwise they (and
   preallocated zero clusters) are written with zeros. */
static int expand_zero_clusters(struct vdk_node *n)
{
    struct qcow2_state *s = n->opaque;
    uint64_t cs = s->cluster_size, nent = 1ull << s->l2_bits;
    uint8_t *zero = vdk_blk_alloc(cs);
    int r = zero ? 0 : -ENOMEM;
    pthread_mutex_lock(&s->lock);
    for (uint32_t i = 0; r == 0 && i < s->l1_size; i++) {
        for (uint64_t j = 0; r == 0 && j < nent; j++) {
            uint64_t g = ((uint64_t)i << (s->cluster_bits + s->l2_bits)) | (j << s->cluster_bits);
            if (g >= s->size)
                break;
            uint64_t l2 = s->l1[i] & QCOW2_OFFSET_MASK;
            if (!l2)
                break;
            uint8_t *t;
            if ((r = qcow2_cache_get(n, &s->l2_cache, l2, true, &t)) < 0)
                break;
            uint64_t e = q_be64(t + j * 8);
            if (!(e & QCOW2_OFLAG_ZERO) || (e & QCOW2_OFLAG_COMPRESSED))
                continue;
            uint64_t off = e & QCOW2_OFFSET_MASK, ne = 0;
            if (off || n->backing) {
                if (!off) {
                    int64_t h = qcow2_alloc_clusters(n, 1);
                    if (h < 0) {
                        r = (int)h;
                        break;
                    }
                    off = (uint64_t)h;
                }
                if ((r = qcow2_check_overlap(n, off, cs)) < 0 ||
                    (r = vdk_pwrite(s->data, zero, cs, off, 0)) < 0)
                    break;
                ne = off | QCOW2_OFLAG_COPIED;
            }
            if ((r = qcow2_cache_get(n, &s->l2_cache, l2, true, &t)) < 0)
                break;
            q_st64(t + j * 8, ne);
            qcow2_cache_mark_dirty(&s->l2_cache, l2);
        }
    }
    if (r == 0)
        r = qcow2_flush_metadata(n);
    pthread_mutex_unlock(&s->lock);
    vdk_blk_free(zero);
    return r;
}

int qcow2_amend(struct vdk_node *n, struct vdk_opts *opts, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    const char *k, *v;
    int r;
    if ((r = qcow2_crypto_amend(n, opts, errp)) < 0) /* encrypt.*: keyslots */
        return r;
    for (size_t i = 0; vdk_opts_nth(opts, i, &k, &v); i++) {
        if (!strcmp(k, "compat") || !strcmp(k, "lazy_refcounts") || !strcmp(k, "size"))
            continue;
        if (!strcmp(k, "refcount_bits") && strtoull(v, NULL, 10) == 1ull << s->refcount_order)
            continue;
        if (!strcmp(k, "refcount_bits") || !strcmp(k, "data_file") ||
            !strcmp(k, "data_file_raw") || !strcmp(k, "backing_file") ||
            !strcmp(k, "backing_fmt"))
            return vdk_error_setf(errp, EINVAL, "changing '%s' with amend is not "
                                  "supported", k);
        return vdk_error_setf(errp, EINVAL, "Invalid parameter '%s': this option is only "
                              "supported for image creation", k);
    }
    (void)vdk_opts_get(opts, "refcount_bits");
    bool lazy = s->compat & QCOW2_COMPAT_LAZY_REFCOUNTS;
    if ((r = vdk_opts_get_bool(opts, "lazy_refcounts", lazy, &lazy, errp)) < 0)
        return r;
    const char *compat = vdk_opts_get(opts, "compat");
    uint32_t ver = s->version;
    if (compat) {
        if (!strcmp(compat, "0.10") || !strcmp(compat, "v2"))
            ver = 2;
        else if (!strcmp(compat, "1.1") || !strcmp(compat, "v3"))
            ver = 3;
        else
            return vdk_error_setf(errp, EINVAL, "unknown compatibility level '%s'", compat);
    }
    if (vdk_opts_has(opts, "size")) {
        uint64_t size;
        if ((r = vdk_opts_get_size(opts, "size", 0, &size, errp)) < 0)
            return r;
        if (size != s->size &&
            (r = qcow2_truncate(n, size, VDK_PREALLOC_OFF, size < s->size, errp)) < 0)
            return r;
    }
    if (ver == 2 && lazy)
        return vdk_error_setf(errp, EINVAL, "lazy refcounts only supported with "
                              "compatibility level 1.1 and above (use compat=1.1 or greater)");
    if (ver == 2 && s->version >= 3) {
        if (s->refcount_order != 4)
            return vdk_error_setf(errp, EINVAL, "compat=0.10 requires refcount_bits=16");
        if (s->extended_l2 || s->compression_type ||
            (s->incompat & QCOW2_INCOMPAT_DATA_FILE))
            return vdk_error_setf(errp, EINVAL, "cannot downgrade an image with extended "
                                  "L2 entries, zstd compression or an external data file "
                                  "to compat=0.10");
        if ((r = expand_zero_clusters(n)) < 0)
            return vdk_error_setf_errno(errp, r, "could not expand zero clusters");
    }
    pthread_mutex_lock(&s->lock);
    r = qcow2_flush_metadata(n);
    if (r == 0)
        r = vdk_flush(n->file);
    pthread_mutex_unlock(&s->lock);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "could not write back metadata");
    if (!lazy && s->dirty_set) {
        s->incompat &= ~QCOW2_INCOMPAT_DIRTY;
        s->dirty_set = false;
    }
    s->version = ver;
    s->lazy = lazy;
    s->compat = lazy ? (s->compat | QCOW2_COMPAT_LAZY_REFCOUNTS)
                     : (s->compat & ~QCOW2_COMPAT_LAZY_REFCOUNTS);
    if (ver == 2) {
        s->compat = s->incompat = s->autoclear = 0;
    }
    pthread_mutex_lock(&s->lock);
    r = qcow2_write_header(n, errp);
    pthread_mutex_unlock(&s->lock);
    if (r == 0 && (r = vdk_flush(n->file)) < 0)
        vdk_error_setf_errno(errp, r, "could not flush the header");
    return r;
}

int qcow2_grow_l1(struct vdk_node *n, uint64_t min_size)
{
    struct qcow2_state *s = n->opaque;
    if (min_size <= s->l1_size)
        return 0;
    if (min_size > QCOW2_MAX_L1_BYTES / 8)
        return -EFBIG;
    uint64_t bytes = vdk_align_up(min_size * 8, s->cluster_size);
    uint8_t *t = vdk_blk_alloc(bytes);
    uint64_t *nl1 = calloc(min_size, 8);
    if (!t || !nl1) {
        vdk_blk_free(t);
        free(nl1);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < s->l1_size; i++) {
        q_st64(t + 8 * i, s->l1[i]);
        nl1[i] = s->l1[i];
    }
    int64_t off = qcow2_alloc_clusters(n, bytes >> s->cluster_bits);
    int r = off < 0 ? (int)off : 0;
    if (r == 0)
        r = qcow2_cache_flush(n, &s->rb_cache);
    /* The table's bytes only, not the rest of its cluster, as qemu: a new
       image's file then ends where qemu-img's does (libvirt shows the
       file size as the volume's physical size). */
    if (r == 0)
        r = vdk_pwrite(n->file, t, min_size * 8, (uint64_t)off, 0);
    if (r == 0)
        r = vdk_flush(n->file);
    uint8_t h[12];
    q_st32(h, (uint32_t)min_size);
    q_st64(h + 4, (uint64_t)off);
    if (r == 0)
        r = vdk_pwrite(n->file, h, 12, QH_L1_SIZE, 0);
    if (r == 0)
        r = vdk_flush(n->file);
    vdk_blk_free(t);
    if (r < 0) {
        free(nl1);
        return r;
    }
    uint64_t old = s->l1_offset, oldb = vdk_align_up((uint64_t)s->l1_size * 8, s->cluster_size);
    free(s->l1);
    s->l1 = nl1;
    s->l1_size = (uint32_t)min_size;
    s->l1_offset = (uint64_t)off;
    return old && oldb ? qcow2_update_refcount(n, old, oldb, -1) : 0;
}

int qcow2_preallocate(struct vdk_node *n, uint64_t from, uint64_t to,
                      enum vdk_prealloc mode)
{
    struct qcow2_state *s = n->opaque;
    uint64_t cs = s->cluster_size;
    uint64_t g = vdk_align_down(from, cs);
    int r = 0;
    pthread_mutex_lock(&s->lock);
    uint64_t last_end = 0;
    while (r == 0 && g < to) {
        uint64_t tbl_end = (qcow2_l1_index(s, g) + 1) << (s->cluster_bits + s->l2_bits);
        uint64_t run_end = vdk_min_u64(vdk_align_up(to, cs), tbl_end);
        /* Make sure the L2 table exists before the data clusters, so the
           data of one table is contiguous as with qemu. */
        int64_t t = qcow2_get_l2_for_write(n, g);
        if (t < 0) {
            r = (int)t;
            break;
        }
        uint64_t count = (run_end - g) >> s->cluster_bits;
        int64_t host = qcow2_alloc_data(n, g, count);
        if (host < 0) {
            r = (int)host;
            break;
        }
        for (uint64_t i = 0; r == 0 && i < count; i++) {
            uint64_t e, bm;
            if ((r = qcow2_get_l2_entry(n, g + i * cs, &e, &bm)) < 0)
                break;
            if (qcow2_std_entry_has_host(s, e))
                continue; /* only fresh clusters */
            /* Extended L2: host clusters only, subclusters stay unallocated
               (reads fall through to the backing file), as qemu does. */
            r = qcow2_set_l2_entry(n, g + i * cs, ((uint64_t)host + i * cs) | QCOW2_OFLAG_COPIED, 0);
        }
        last_end = (uint64_t)host + count * cs;
        g = run_end;
    }
    if (r == 0)
        r = qcow2_flush_metadata(n);
    pthread_mutex_unlock(&s->lock);
    if (r == 0 && last_end) {
        int64_t flen = vdk_get_length(s->data);
        struct vdk_error *err = NULL;
        if (flen >= 0 && last_end > (uint64_t)flen) {
            r = vdk_truncate(s->data, last_end, mode == VDK_PREALLOC_METADATA
                             ? VDK_PREALLOC_OFF : mode, false, &err);
            vdk_error_free(err);
        }
    }
    return r;
}
