/* SPDX-License-Identifier: MIT */
/*
 * qcow2: guest-to-host mapping through the L1/L2 tables, reads, L2 tables
 * made writable, and block status.  Data writes: qcow2-write.c; zero
 * writes and discard: qcow2-zero.c; L1 growth and preallocation:
 * qcow2-amend.c.  Locking and ordering: qcow2.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "formats/qcow2/qcow2.h"

uint64_t qcow2_l1_entries(const struct qcow2_state *s, uint64_t size)
{
    uint64_t shift = s->cluster_bits + s->l2_bits;
    return (size + (1ull << shift) - 1) >> shift;
}

uint64_t qcow2_l1_index(const struct qcow2_state *s, uint64_t g)
{
    return g >> (s->cluster_bits + s->l2_bits);
}

static uint64_t l2_index(const struct qcow2_state *s, uint64_t g)
{
    return (g >> s->cluster_bits) & ((1ull << s->l2_bits) - 1);
}

/* L2 table offset for guest offset g (0: none).  Validates the L1 entry. */
static int l2_offset_of(struct vdk_node *n, uint64_t g, uint64_t *l2off)
{
    struct qcow2_state *s = n->opaque;
    uint64_t i = qcow2_l1_index(s, g);
    *l2off = 0;
    if (i >= s->l1_size)
        return 0;
    uint64_t e = s->l1[i], off = e & QCOW2_OFFSET_MASK;
    if (e & QCOW2_L1_RESERVED & ~0x1ffull)
        return qcow2_signal_corruption(n, "L1 entry 0x%" PRIx64 " has reserved bits set "
                                       "(L1 index %" PRIu64 ")", e, i);
    if (!off)
        return 0;
    if (q_offset_in_cluster(s, e & 0x00ffffffffffffffull))
        return qcow2_signal_corruption(n, "L2 table offset 0x%" PRIx64 " in L1 entry %"
                                       PRIu64 " is not cluster aligned", e, i);
    if (!qcow2_in_file(n, off))
        return qcow2_signal_corruption(n, "L2 table at 0x%" PRIx64 " (L1 entry %" PRIu64
                                       ") beyond end of file", off, i);
    *l2off = off;
    return 0;
}

/* Read the L2 entry (and subcluster bitmap) of guest offset g. */
int qcow2_get_l2_entry(struct vdk_node *n, uint64_t g, uint64_t *entry, uint64_t *bitmap)
{
    struct qcow2_state *s = n->opaque;
    uint64_t l2off;
    uint8_t *t;
    *entry = *bitmap = 0;
    int r = l2_offset_of(n, g, &l2off);
    if (r < 0 || !l2off)
        return r;
    if ((r = qcow2_cache_get(n, &s->l2_cache, l2off, true, &t)) < 0)
        return r;
    uint64_t i = l2_index(s, g);
    *entry = q_be64(t + i * s->l2_entry_size);
    if (s->extended_l2)
        *bitmap = q_be64(t + i * 16 + 8);
    return 0;
}

/* Type of the (sub)cluster containing g from its entry (in the L2 table
   at l2off). */
static int classify(struct vdk_node *n, uint64_t g, uint64_t e, uint64_t bm, int64_t dlen,
                    uint64_t l2off, enum qcow2_map_type *type, uint64_t *host,
                    bool *host_valid)
{
    struct qcow2_state *s = n->opaque;
    *host = 0;
    *host_valid = false;
    if (!(e & QCOW2_OFLAG_COMPRESSED)) {
        /* Reserved bits mean damage: never guess what the entry meant.  In
           v2 the zero flag is reserved, and reading past it would return
           the cluster's stale bytes (qemu refuses with this message). */
        if ((e & QCOW2_OFLAG_ZERO) && s->version < 3)
            return qcow2_signal_corruption(n, "Zero cluster entry found in pre-v3 image "
                                           "(L2 offset: %#" PRIx64 ", L2 index: %#" PRIx64
                                           ")", l2off, l2_index(s, g));
        if (e & qcow2_l2_reserved(s))
            return qcow2_signal_corruption(n, "L2 entry 0x%" PRIx64 " has reserved bits set "
                                           "(L2 offset: %#" PRIx64 ", L2 index: %#" PRIx64
                                           ")", e, l2off, l2_index(s, g));
    }
    if (e & QCOW2_OFLAG_COMPRESSED) {
        if (s->data != n->file)
            return qcow2_signal_corruption(n, "compressed cluster with an external data file");
        uint64_t coff = e & s->coffset_mask;
        if (coff < s->cluster_size || !qcow2_in_file(n, coff))
            return qcow2_signal_corruption(n, "compressed cluster descriptor 0x%" PRIx64
                                           " for guest offset 0x%" PRIx64 " out of range",
                                           e, g);
        *type = QCOW2_MAP_COMPRESSED;
        *host = e;
        return 0;
    }
    uint64_t off = e & QCOW2_OFFSET_MASK;
    bool has = qcow2_std_entry_has_host(s, e);
    if (off && q_offset_in_cluster(s, e & 0x00fffffffffffffeull))
        return qcow2_signal_corruption(n, "data cluster offset in L2 entry 0x%" PRIx64
                                       " is not cluster aligned", e);
    if (s->extended_l2) {
        unsigned sc = (unsigned)(q_offset_in_cluster(s, g) >> s->sc_bits);
        bool a = (bm >> sc) & 1, z = (bm >> (32 + sc)) & 1;
        if (a && z)
            return qcow2_signal_corruption(n, "subcluster both allocated and zero at "
                                           "guest offset 0x%" PRIx64, g);
        if (a && !has)
            return qcow2_signal_corruption(n, "allocated subcluster without a host "
                                           "cluster at guest offset 0x%" PRIx64, g);
        *type = a ? QCOW2_MAP_NORMAL : z ? QCOW2_MAP_ZERO : QCOW2_MAP_UNALLOCATED;
    } else if (e & QCOW2_OFLAG_ZERO) {
        *type = QCOW2_MAP_ZERO;
    } else {
        *type = has ? QCOW2_MAP_NORMAL : QCOW2_MAP_UNALLOCATED;
    }
    if (*type != QCOW2_MAP_NORMAL && has && (!s->extended_l2 || off || s->data != n->file)) {
        /* Zero cluster or unallocated subcluster with a preallocated host
           cluster (qemu's ZERO_ALLOC and UNALLOCATED_ALLOC). */
        *host = off + q_offset_in_cluster(s, g);
        *host_valid = true;
    }
    if (*type == QCOW2_MAP_NORMAL) {
        *host_valid = true;
        if (s->data == n->file && off < s->cluster_size)
            return qcow2_signal_corruption(n, "data cluster for guest offset 0x%" PRIx64
                                           " points at the header", g);
        if (dlen >= 0 && off >= (uint64_t)dlen && s->data == n->file)
            return qcow2_signal_corruption(n, "data cluster 0x%" PRIx64 " for guest "
                                           "offset 0x%" PRIx64 " beyond end of file", off, g);
        *host = off + q_offset_in_cluster(s, g);
    }
    return 0;
}

int qcow2_get_mapping(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                      struct qcow2_mapping *m)
{
    struct qcow2_state *s = n->opaque;
    uint64_t g = offset, end = offset + bytes;
    /* Stay inside one L2 table. */
    uint64_t tbl_end = (qcow2_l1_index(s, g) + 1) << (s->cluster_bits + s->l2_bits);
    if (end > tbl_end)
        end = tbl_end;
    memset(m, 0, sizeof(*m));
    /* One table lookup and one file-size query per call, not per cluster:
       long backing chains scan unallocated ranges in every layer. */
    uint64_t l2off;
    const uint8_t *tbl = NULL;
    int r = l2_offset_of(n, g, &l2off);
    if (r < 0)
        return r;
    if (!l2off) {
        m->type = QCOW2_MAP_UNALLOCATED;
        m->bytes = end - offset;
        return 0;
    }
    uint8_t *tp;
    if ((r = qcow2_cache_get(n, &s->l2_cache, l2off, true, &tp)) < 0)
        return r;
    tbl = tp;
    int64_t dlen = vdk_get_length(s->data);
    bool first = true;
    while (g < end) {
        uint64_t host, i = l2_index(s, g);
        uint64_t e = q_be64(tbl + i * s->l2_entry_size);
        uint64_t bm = s->extended_l2 ? q_be64(tbl + i * 16 + 8) : 0;
        enum qcow2_map_type t;
        bool hv;
        if ((r = classify(n, g, e, bm, dlen, l2off, &t, &host, &hv)) < 0)
            return r;
        uint64_t unit = 1ull << s->sc_bits;
        uint64_t len = vdk_min_u64(vdk_align_down(g, unit) + unit, end) - g;
        bool copied = (e & QCOW2_OFLAG_COPIED) != 0 || s->data != n->file;
        if (first) {
            m->type = t;
            m->host = host;
            m->host_valid = hv;
            m->copied = copied;
            first = false;
        } else if (t != m->type || t == QCOW2_MAP_COMPRESSED || hv != m->host_valid ||
                   (hv && (host != m->host + m->bytes || copied != m->copied))) {
            break;
        }
        m->bytes += len;
        g += len;
        if (t == QCOW2_MAP_COMPRESSED) {
            /* One cluster per mapping. */
            uint64_t ce = vdk_align_down(offset, s->cluster_size) + s->cluster_size;
            m->bytes = vdk_min_u64(ce, end) - offset;
            break;
        }
    }
    return 0;
}

/* Read a compressed cluster (descriptor e) whole into out (cluster size). */
static int read_compressed(struct vdk_node *n, uint64_t e, uint8_t *out)
{
    struct qcow2_state *s = n->opaque;
    uint64_t coff = e & s->coffset_mask;
    uint64_t nb = ((e >> s->csize_shift) & s->csize_mask) + 1;
    uint64_t clen = nb * 512 - (coff & 511);
    uint8_t *in = malloc(clen);
    if (!in)
        return -ENOMEM;
    int r = vdk_pread(n->file, in, clen, coff, 0);
    if (r == 0 && qcow2_decompress(s->compression_type, in, clen, out, s->cluster_size) < 0)
        r = qcow2_signal_corruption(n, "compressed cluster at 0x%" PRIx64
                                    " does not decompress", coff);
    free(in);
    return r;
}

/*
 * Read guest bytes.  `locked`: the caller holds s->lock (copy-on-write
 * reads inside an allocating write); otherwise each mapping step takes it.
 */
int qcow2_read_range(struct vdk_node *n, uint64_t offset, uint64_t bytes, uint8_t *buf,
                     bool locked)
{
    struct qcow2_state *s = n->opaque;
    uint8_t *cbuf = NULL;
    int r = 0;
    while (bytes) {
        struct qcow2_mapping m;
        if (!locked)
            pthread_mutex_lock(&s->lock);
        r = qcow2_get_mapping(n, offset, bytes, &m);
        if (r == 0 && m.type == QCOW2_MAP_COMPRESSED) {
            if (!cbuf && !(cbuf = malloc(s->cluster_size)))
                r = -ENOMEM;
            if (r == 0)
                r = read_compressed(n, m.host, cbuf);
        }
        if (!locked)
            pthread_mutex_unlock(&s->lock);
        if (r < 0)
            break;
        switch (m.type) {
        case QCOW2_MAP_UNALLOCATED:
            r = vdk_node_read_backing(n, offset, m.bytes, buf);
            break;
        case QCOW2_MAP_ZERO:
            memset(buf, 0, m.bytes);
            break;
        case QCOW2_MAP_NORMAL:
            r = vdk_pread(s->data, buf, m.bytes, m.host, 0);
            if (r == 0 && s->crypt_method)
                r = qcow2_crypto_decrypt(n, m.host, buf, m.bytes);
            break;
        case QCOW2_MAP_COMPRESSED:
            memcpy(buf, cbuf + q_offset_in_cluster(s, offset), m.bytes);
            break;
        }
        if (r < 0)
            break;
        offset += m.bytes;
        buf += m.bytes;
        bytes -= m.bytes;
    }
    free(cbuf);
    return r;
}

int qcow2_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *buf,
                unsigned flags)
{
    struct qcow2_state *s = n->opaque;
    pthread_rwlock_rdlock(&s->free_lock);
    int r = qcow2_read_range(n, offset, bytes, buf, false);
    pthread_rwlock_unlock(&s->free_lock);
    return r;
}

/* Write an L1 entry to disk. */
static int write_l1_entry(struct vdk_node *n, uint64_t i)
{
    struct qcow2_state *s = n->opaque;
    uint8_t b[8];
    q_st64(b, s->l1[i]);
    return vdk_pwrite(n->file, b, 8, s->l1_offset + i * 8, 0);
}

int64_t qcow2_get_l2_for_write(struct vdk_node *n, uint64_t g)
{
    struct qcow2_state *s = n->opaque;
    uint64_t i = qcow2_l1_index(s, g), old;
    int r = l2_offset_of(n, g, &old);
    if (r < 0)
        return r;
    if (i >= s->l1_size)
        return -EIO;
    if (old && (s->l1[i] & QCOW2_OFLAG_COPIED))
        return (int64_t)old;
    /* New table, or copy of a shared one (internal snapshots). */
    int64_t t = qcow2_alloc_clusters(n, 1);
    if (t < 0)
        return t;
    uint8_t *buf;
    if (old) {
        uint8_t *src;
        if ((r = qcow2_cache_get(n, &s->l2_cache, old, true, &src)) < 0)
            return r;
        uint8_t *copy = malloc(s->cluster_size);
        if (!copy)
            return -ENOMEM;
        memcpy(copy, src, s->cluster_size);
        r = qcow2_cache_get(n, &s->l2_cache, (uint64_t)t, false, &buf);
        if (r == 0)
            memcpy(buf, copy, s->cluster_size);
        free(copy);
    } else {
        r = qcow2_cache_get(n, &s->l2_cache, (uint64_t)t, false, &buf);
    }
    if (r < 0)
        return r;
    /* Rule 1 and 2: refcounts, then the table, then the L1 entry. */
    if ((r = qcow2_cache_flush(n, &s->rb_cache)) < 0 ||
        (r = qcow2_check_overlap(n, (uint64_t)t, s->cluster_size)) < 0)
        return r;
    if ((r = vdk_pwrite(n->file, buf, s->cluster_size, (uint64_t)t, 0)) < 0 ||
        (r = vdk_flush(n->file)) < 0)
        return r;
    s->l1[i] = (uint64_t)t | QCOW2_OFLAG_COPIED;
    if ((r = write_l1_entry(n, i)) < 0) {
        s->l1[i] = old ? old : 0;
        return r;
    }
    if (old) {
        if ((r = vdk_flush(n->file)) < 0)
            return r;
        if ((r = qcow2_update_refcount(n, old, s->cluster_size, -1)) < 0)
            return r;
    }
    return t;
}

/* Set the L2 entry of guest offset g (table already writable). */
int qcow2_set_l2_entry(struct vdk_node *n, uint64_t g, uint64_t e, uint64_t bm)
{
    struct qcow2_state *s = n->opaque;
    int64_t t = qcow2_get_l2_for_write(n, g);
    if (t < 0)
        return (int)t;
    uint8_t *buf;
    int r = qcow2_cache_get(n, &s->l2_cache, (uint64_t)t, true, &buf);
    if (r < 0)
        return r;
    uint64_t i = l2_index(s, g);
    q_st64(buf + i * s->l2_entry_size, e);
    if (s->extended_l2)
        q_st64(buf + i * 16 + 8, bm);
    qcow2_cache_mark_dirty(&s->l2_cache, (uint64_t)t);
    return 0;
}

/* An entry owns a host cluster that must be released when replaced. */
bool qcow2_entry_owns_host(const struct qcow2_state *s, uint64_t e)
{
    return (e & QCOW2_OFLAG_COMPRESSED) || qcow2_std_entry_has_host(s, e);
}

/* Free replaced entries, after their replacements are on disk (rule 3). */
int qcow2_free_old_entries(struct vdk_node *n, const uint64_t *old, uint64_t cnt)
{
    struct qcow2_state *s = n->opaque;
    bool any = false;
    for (uint64_t i = 0; i < cnt; i++)
        any |= qcow2_entry_owns_host(s, old[i]);
    if (!any)
        return 0;
    int r = qcow2_cache_flush(n, &s->l2_cache);
    if (r == 0)
        r = vdk_flush(n->file);
    for (uint64_t i = 0; r == 0 && i < cnt; i++)
        if (qcow2_entry_owns_host(s, old[i]))
            r = qcow2_free_l2_entry(n, old[i]);
    return r;
}

/* Host cluster for new data at guest cluster g: allocated in the image, or
   the guest offset itself with an external data file (spec). */
int64_t qcow2_alloc_data(struct vdk_node *n, uint64_t g, uint64_t count)
{
    struct qcow2_state *s = n->opaque;
    if (s->data != n->file)
        return (int64_t)vdk_align_down(g, s->cluster_size);
    return qcow2_alloc_clusters(n, count);
}

int qcow2_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                       uint64_t *pnum, uint64_t *map, struct vdk_node **file)
{
    struct qcow2_state *s = n->opaque;
    struct qcow2_mapping m;
    pthread_mutex_lock(&s->lock);
    int r = qcow2_get_mapping(n, offset, bytes, &m);
    if (r == 0 && m.type == QCOW2_MAP_NORMAL && s->meta_prealloc < 0)
        s->meta_prealloc = qcow2_detect_meta_prealloc(n);
    pthread_mutex_unlock(&s->lock);
    if (r < 0)
        return r;
    *pnum = m.bytes;
    switch (m.type) {
    case QCOW2_MAP_UNALLOCATED:
        if (m.host_valid) {
            *map = m.host;
            *file = s->data;
            return VDK_BS_OFFSET_VALID;
        }
        return 0;
    case QCOW2_MAP_ZERO:
        if (m.host_valid) {
            *map = m.host;
            *file = s->data;
            return VDK_BS_ZERO | VDK_BS_OFFSET_VALID | VDK_BS_ALLOCATED;
        }
        return VDK_BS_ZERO | VDK_BS_ALLOCATED;
    case QCOW2_MAP_COMPRESSED:
        return VDK_BS_DATA | VDK_BS_COMPRESSED | VDK_BS_ALLOCATED;
    default:
        *map = m.host;
        *file = s->data;
        /* As qemu: only a metadata-preallocated image asks the file
           whether its data clusters are holes. */
        return VDK_BS_DATA | VDK_BS_OFFSET_VALID | VDK_BS_PLAIN | VDK_BS_ALLOCATED |
               (s->meta_prealloc > 0 ? VDK_BS_PEEK_HOLES : 0);
    }
}
