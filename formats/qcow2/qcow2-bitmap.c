/* SPDX-License-Identifier: MIT */
/*
 * qcow2 persistent dirty bitmaps: the on-disk format (extension,
 * directory, tables, data) with its bounds, loading at open, marking in
 * use, and the store after a structural change (fresh clusters, directory
 * and header).  See qcow2-bitmap.h for the rules; the store on flush and
 * the in-use protocol of writers are in qcow2-bitmap-sync.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/qcow2/qcow2.h"
#include "formats/qcow2/qcow2-bitmap.h"

int qcow2_bitmap_parse_ext(struct vdk_node *n, const uint8_t *d, uint32_t len,
                           struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    if (len != 24)
        return vdk_error_setf(errp, EINVAL, "bitmaps_ext: Invalid extension length");
    if (qcow2_bitmaps_alloc(s) < 0)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    struct qcow2_bitmaps *b = s->bitmaps;
    b->has_ext = true;
    b->ext_nb = q_be32(d);
    b->dir_size = q_be64(d + 8);
    b->dir_offset = q_be64(d + 16);
    if (!(s->autoclear & QCOW2_AUTOCLEAR_BITMAPS)) {
        b->stale_ext = true;
        return 0;
    }
    if (q_be32(d + 4))
        return vdk_error_setf(errp, EINVAL, "bitmaps_ext: Reserved field is not zero");
    if (b->ext_nb > QCOW2_BME_MAX_BITMAPS)
        return vdk_error_setf(errp, EINVAL, "bitmaps_ext: Image has %" PRIu32 " bitmaps, "
                              "exceeding the QEMU supported maximum of %u", b->ext_nb,
                              QCOW2_BME_MAX_BITMAPS);
    if (b->ext_nb == 0)
        return vdk_error_setf(errp, EINVAL, "found bitmaps extension with zero bitmaps");
    if (q_offset_in_cluster(s, b->dir_offset))
        return vdk_error_setf(errp, EINVAL, "bitmaps_ext: invalid dirty bitmap directory "
                              "offset");
    if (b->dir_size > QCOW2_MAX_BITMAP_DIR)
        return vdk_error_setf(errp, EINVAL, "bitmaps_ext: bitmap directory size (%" PRIu64
                              ") exceeds the maximum supported size (%u)", b->dir_size,
                              QCOW2_MAX_BITMAP_DIR);
    return 0;
}

bool qcow2_bitmap_ext(const struct qcow2_state *s, uint8_t out[24])
{
    const struct qcow2_bitmaps *b = s->bitmaps;
    if (!b || !b->has_ext || b->stale_ext || !b->ext_nb || s->version < 3)
        return false;
    memset(out, 0, 24);
    q_st32(out, b->ext_nb);
    q_st64(out + 8, b->dir_size);
    q_st64(out + 16, b->dir_offset);
    return true;
}

static uint64_t entry_len(uint32_t name_len)
{
    return (QCOW2_BME_ENTRY_HDR + (uint64_t)name_len + 7) & ~7ull;
}

static uint64_t nbits_for(uint64_t size, unsigned gran_bits)
{
    return (size + (1ull << gran_bits) - 1) >> gran_bits;
}

/* Table entries the bitmap of `size` guest bytes needs (QEMU's rule). */
static uint64_t table_entries(const struct qcow2_state *s, uint64_t size, unsigned gb)
{
    uint64_t bytes = (nbits_for(size, gb) + 7) / 8;
    return (bytes + s->cluster_size - 1) >> s->cluster_bits;
}

/* QEMU's check_dir_entry, plus the same rules for a table we write. */
static bool entry_ok(const struct qcow2_state *s, uint64_t toff, uint32_t tsize,
                     uint32_t flags, uint8_t type, uint8_t gb, uint32_t nlen)
{
    if (!tsize || !toff || q_offset_in_cluster(s, toff) || tsize > QCOW2_BME_MAX_TABLE ||
        gb > QCOW2_BME_MAX_GRAN_BITS || gb < QCOW2_BME_MIN_GRAN_BITS ||
        (flags & QCOW2_BME_RESERVED_FLAGS) || nlen > QCOW2_BME_MAX_NAME ||
        type != QCOW2_BME_TYPE_DIRTY)
        return false;
    uint64_t phys = (uint64_t)tsize << s->cluster_bits;
    if (phys > QCOW2_BME_MAX_PHYS)
        return false;
    /* An in-use bitmap may have a table too small after a resize. */
    if (!(flags & QCOW2_BME_FLAG_IN_USE) && s->size > ((phys * 8) << gb))
        return false;
    return true;
}

static void bitmap_free(struct qcow2_bitmap *b)
{
    free(b->name);
    free(b->words);
    free(b->dirty);
    free(b->writing);
    memset(b, 0, sizeof(*b));
}

int qcow2_bitmaps_alloc(struct qcow2_state *s)
{
    if (s->bitmaps)
        return 0;
    struct qcow2_bitmaps *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    pthread_rwlock_init(&b->mark_lock, NULL);
    pthread_mutex_init(&b->flag_lock, NULL);
    pthread_mutex_init(&b->sync_lock, NULL);
    b->disk = QCOW2_BM_DISK_DIRTY;
    s->bitmaps = b;
    return 0;
}

void qcow2_bitmaps_free(struct qcow2_state *s)
{
    struct qcow2_bitmaps *b = s->bitmaps;
    if (!b)
        return;
    qcow2_bitmaps_stop_storer(s);
    for (uint32_t i = 0; i < b->nb; i++)
        bitmap_free(&b->bm[i]);
    free(b->bm);
    free(b->dead);
    pthread_rwlock_destroy(&b->mark_lock);
    pthread_mutex_destroy(&b->flag_lock);
    pthread_mutex_destroy(&b->sync_lock);
    free(b);
    s->bitmaps = NULL;
    s->bm_track = false;
}

/* Parse the directory as QEMU's bitmap_list_load does. */
static int read_directory(struct vdk_node *n, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    struct qcow2_bitmaps *b = s->bitmaps;
    if (b->dir_size == 0)
        return vdk_error_setf(errp, EINVAL, "Requested bitmap directory size is zero");
    uint8_t *dir = malloc(b->dir_size);
    if (!dir || !(b->bm = calloc(b->ext_nb, sizeof(*b->bm)))) {
        free(dir);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    int r = vdk_pread(n->file, dir, b->dir_size, b->dir_offset, 0);
    if (r < 0) {
        free(dir);
        return vdk_error_setf_errno(errp, r, "Failed to read bitmap directory");
    }
    uint64_t off = 0;
    r = 0;
    while (off < b->dir_size) {
        const uint8_t *e = dir + off;
        if (b->dir_size - off < QCOW2_BME_ENTRY_HDR) {
            r = vdk_error_setf(errp, EINVAL, "Broken bitmap directory");
            break;
        }
        if (b->nb >= b->ext_nb) {
            r = vdk_error_setf(errp, EINVAL, "More bitmaps found than specified in header "
                               "extension");
            break;
        }
        uint64_t toff = q_be64(e);
        uint32_t tsize = q_be32(e + 8), flags = q_be32(e + 12), extra = q_be32(e + 20);
        uint8_t type = e[16], gb = e[17];
        uint16_t nlen = q_be16(e + 18);
        uint64_t elen = (QCOW2_BME_ENTRY_HDR + (uint64_t)extra + nlen + 7) & ~7ull;
        if (elen > b->dir_size - off) {
            r = vdk_error_setf(errp, EINVAL, "Broken bitmap directory");
            break;
        }
        if (extra) {
            r = vdk_error_setf(errp, ENOTSUP, "Bitmap extra data is not supported");
            break;
        }
        if (!entry_ok(s, toff, tsize, flags, type, gb, nlen)) {
            r = vdk_error_setf(errp, EINVAL, "Bitmap '%.*s' doesn't satisfy the "
                               "constraints", (int)nlen, (const char *)e + 24);
            break;
        }
        struct qcow2_bitmap *bm = &b->bm[b->nb];
        if (!(bm->name = strndup((const char *)e + 24, nlen))) {
            r = vdk_error_setf(errp, ENOMEM, "out of memory");
            break;
        }
        b->nb++;
        bm->name_len = nlen;
        bm->gran_bits = gb;
        bm->enabled = flags & QCOW2_BME_FLAG_AUTO;
        bm->inconsistent = flags & QCOW2_BME_FLAG_IN_USE;
        bm->table_offset = toff;
        bm->table_size = tsize;
        bm->nbits = nbits_for(s->size, gb);
        if (strlen(bm->name) != nlen || qcow2_bitmap_find(s, bm->name) != bm) {
            r = vdk_error_setf(errp, EEXIST, "Bitmap already exists: %s", bm->name);
            break;
        }
        off += elen;
    }
    if (r == 0 && b->nb != b->ext_nb)
        r = vdk_error_setf(errp, EINVAL, "Less bitmaps found than specified in header "
                           "extension");
    free(dir);
    return r;
}

int qcow2_bitmap_read_table(struct vdk_node *n, uint64_t off, uint32_t size, uint64_t **out)
{
    struct qcow2_state *s = n->opaque;
    uint64_t *t = malloc((uint64_t)size * 8);
    if (!t)
        return -ENOMEM;
    int r = vdk_pread(n->file, t, (uint64_t)size * 8, off, 0);
    for (uint32_t i = 0; r == 0 && i < size; i++) {
        uint64_t e = q_be64((uint8_t *)&t[i]), o = e & QCOW2_BME_TE_OFFSET;
        t[i] = e;
        if ((e & QCOW2_BME_TE_RESERVED) ||
            (o && ((e & QCOW2_BME_TE_ALL_ONES) || q_offset_in_cluster(s, o))))
            r = -EINVAL;
    }
    if (r < 0) {
        free(t);
        return r;
    }
    *out = t;
    return 0;
}

/* Little-endian 64-bit words <-> bytes, so bit j of byte i is chunk 8i+j
   on any host. */
static void words_from_bytes(uint64_t *w, const uint8_t *p, uint64_t bytes)
{
    for (uint64_t i = 0; i < bytes; i++)
        w[i / 8] |= (uint64_t)p[i] << (8 * (i % 8));
}

void qcow2_bitmap_data(const struct qcow2_bitmap *b, uint8_t *p, uint64_t at, uint64_t len)
{
    for (uint64_t i = 0; i < len; i += 8) {
        uint64_t w = __atomic_load_n(&b->words[(at + i) / 8], __ATOMIC_RELAXED);
        for (uint64_t k = 0; k < 8 && i + k < len; k++)
            p[i + k] = (uint8_t)(w >> (8 * k));
    }
}

int qcow2_bitmap_alloc_dirty(const struct qcow2_state *s, struct qcow2_bitmap *b)
{
    uint64_t bytes = (b->nbits + 7) / 8;
    unsigned ub = s->cluster_bits < 12 ? s->cluster_bits : 12;
    uint64_t nc = (bytes + (1ull << ub) - 1) >> ub;
    uint64_t nw = (nc + 63) / 64;
    uint64_t *d = calloc(nw ? nw : 1, 8), *w = calloc(nw ? nw : 1, 8);
    if (!d || !w) {
        free(d);
        free(w);
        return -ENOMEM;
    }
    free(b->dirty);
    free(b->writing);
    b->dirty = d;
    b->writing = w;
    b->nunits = nc;
    b->unit_bits = ub;
    return 0;
}

static uint64_t nwords(uint64_t nbits)
{
    return (nbits + 63) / 64;
}

/* Clear the bits past nbits in the last word. */
static void trim_tail(struct qcow2_bitmap *b)
{
    if (b->nbits % 64)
        b->words[b->nbits / 64] &= (1ull << (b->nbits % 64)) - 1;
}

int qcow2_bitmap_load(struct vdk_node *n, struct qcow2_bitmap *b)
{
    struct qcow2_state *s = n->opaque;
    if (b->loaded)
        return 0;
    if (b->inconsistent)
        return -EINVAL;
    uint64_t nw = nwords(b->nbits);
    if (nw * 8 > QCOW2_BME_MAX_MEM - s->bitmaps->mem)
        return -EFBIG;
    uint64_t *w = calloc(nw ? nw : 1, 8);
    if (!w || qcow2_bitmap_alloc_dirty(s, b) < 0) {
        free(w);
        return -ENOMEM;
    }
    uint64_t *t = NULL;
    int r = b->table_offset ? qcow2_bitmap_read_table(n, b->table_offset, b->table_size, &t)
                            : 0;
    uint8_t *buf = r == 0 ? malloc(s->cluster_size) : NULL;
    if (r == 0 && !buf)
        r = -ENOMEM;
    uint64_t bytes = (b->nbits + 7) / 8;
    for (uint64_t i = 0; r == 0 && t && i < b->table_size; i++) {
        uint64_t at = i << s->cluster_bits;
        if (at >= bytes)
            break;
        uint64_t len = vdk_min_u64(s->cluster_size, bytes - at);
        uint64_t o = t[i] & QCOW2_BME_TE_OFFSET;
        if (o)
            r = vdk_pread(n->file, buf, len, o, 0);
        else if (t[i] & QCOW2_BME_TE_ALL_ONES)
            memset(buf, 0xff, len);
        else
            continue;
        if (r == 0)
            words_from_bytes(w + at / 8, buf, len);
    }
    free(buf);
    free(t);
    if (r < 0) {
        free(w);
        return r;
    }
    b->words = w;
    b->loaded = true;
    s->bitmaps->mem += nw * 8;
    trim_tail(b);
    return 0;
}

static int load_all(struct vdk_node *n, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    for (uint32_t i = 0; s->bitmaps && i < s->bitmaps->nb; i++) {
        struct qcow2_bitmap *b = &s->bitmaps->bm[i];
        if (b->inconsistent)
            continue;
        int r = qcow2_bitmap_load(n, b);
        if (r == -EFBIG)
            return vdk_error_setf(errp, EFBIG, "the bitmaps of '%s' would take more than "
                                  "%llu MiB of memory", n->filename, QCOW2_BME_MAX_MEM >> 20);
        if (r < 0)
            return vdk_error_setf_errno(errp, r, "Could not read bitmap '%s' from image",
                                        b->name);
    }
    return 0;
}

uint8_t *qcow2_bitmaps_build_directory(struct qcow2_state *s, bool in_use, uint64_t *size)
{
    struct qcow2_bitmaps *b = s->bitmaps;
    uint64_t total = 0;
    for (uint32_t i = 0; i < b->nb; i++)
        total += entry_len(b->bm[i].name_len);
    uint8_t *d = calloc(1, total ? total : 1);
    if (!d)
        return NULL;
    uint64_t off = 0;
    for (uint32_t i = 0; i < b->nb; i++) {
        const struct qcow2_bitmap *bm = &b->bm[i];
        uint8_t *e = d + off;
        uint32_t flags = (bm->enabled ? QCOW2_BME_FLAG_AUTO : 0) |
                         (bm->inconsistent || in_use ? QCOW2_BME_FLAG_IN_USE : 0);
        q_st64(e, bm->table_offset);
        q_st32(e + 8, bm->table_size);
        q_st32(e + 12, flags);
        e[16] = QCOW2_BME_TYPE_DIRTY;
        e[17] = bm->gran_bits;
        q_st16(e + 18, bm->name_len);
        memcpy(e + 24, bm->name, bm->name_len);
        off += entry_len(bm->name_len);
    }
    *size = total;
    return d;
}

static int write_autoclear(struct vdk_node *n)
{
    struct qcow2_state *s = n->opaque;
    uint8_t v[8];
    q_st64(v, s->autoclear);
    int r = vdk_pwrite(n->file, v, 8, QH_AUTOCLEAR, 0);
    return r < 0 ? r : vdk_flush(n->file);
}

/* Mark every bitmap in use: the directory rewritten in place, with the
   autoclear bit dropped meanwhile so a torn directory is never trusted. */
static int set_in_use(struct vdk_node *n)
{
    struct qcow2_state *s = n->opaque;
    struct qcow2_bitmaps *b = s->bitmaps;
    uint64_t size;
    uint8_t *d = qcow2_bitmaps_build_directory(s, true, &size);
    if (!d)
        return -ENOMEM;
    int r = -EIO;
    if (size == b->dir_size) {
        s->autoclear &= ~QCOW2_AUTOCLEAR_BITMAPS;
        r = write_autoclear(n);
        if (r == 0)
            r = vdk_pwrite(n->file, d, size, b->dir_offset, 0);
        if (r == 0)
            r = vdk_flush(n->file);
        if (r == 0) {
            s->autoclear |= QCOW2_AUTOCLEAR_BITMAPS;
            r = write_autoclear(n);
        }
    }
    free(d);
    if (r == 0)
        __atomic_store_n(&b->disk, QCOW2_BM_DISK_DIRTY, __ATOMIC_RELEASE);
    return r;
}

int qcow2_bitmaps_open(struct vdk_node *n, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    struct qcow2_bitmaps *b = s->bitmaps;
    if (!b || !b->has_ext)
        return 0;
    if (b->stale_ext) {
        vdk_warn("%s: a program lacking bitmap support modified this file, so all "
                 "bitmaps are now considered inconsistent; some clusters may be leaked, "
                 "run 'check -r' on the image file to fix", n->filename);
        if (!s->writable)
            return 0;
        /* Drop the extension for good, as QEMU does. */
        b->has_ext = b->stale_ext = false;
        return qcow2_write_header(n, errp);
    }
    int r = read_directory(n, errp);
    if (r < 0)
        return r;
    if (s->writable)
        return qcow2_bitmaps_reopen_rw(n, errp);
    return 0;
}

int qcow2_bitmaps_reopen_rw(struct vdk_node *n, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    struct qcow2_bitmaps *b = s->bitmaps;
    if (!b || !b->nb)
        return 0;
    int r = load_all(n, errp);
    if (r < 0)
        return r;
    if ((r = set_in_use(n)) < 0)
        return vdk_error_setf_errno(errp, r, "could not mark the bitmaps in use");
    qcow2_bitmaps_update_track(s);
    return 0;
}

/* Write one bitmap's data and table to fresh clusters. */
static int write_bitmap(struct vdk_node *n, struct qcow2_bitmap *bm, uint8_t *buf,
                        uint64_t *toff, uint32_t *tsize)
{
    struct qcow2_state *s = n->opaque;
    uint64_t cs = s->cluster_size, bytes = (bm->nbits + 7) / 8;
    uint64_t n_ent = table_entries(s, s->size, bm->gran_bits);
    if (n_ent == 0)
        n_ent = 1;
    uint64_t tbytes = vdk_align_up(n_ent * 8, cs);
    uint8_t *t = calloc(1, tbytes);
    if (!t)
        return -ENOMEM;
    int r = 0;
    for (uint64_t i = 0; r == 0 && i < n_ent; i++) {
        uint64_t at = i * cs;
        if (at >= bytes)
            break;
        uint64_t len = vdk_min_u64(cs, bytes - at);
        memset(buf, 0, cs);
        qcow2_bitmap_data(bm, buf, at, len);
        bool zero = true;
        for (uint64_t k = 0; k < len && zero; k++)
            zero = buf[k] == 0;
        if (zero)
            continue;
        int64_t o = qcow2_alloc_clusters(n, 1);
        if (o < 0)
            r = (int)o;
        else if ((r = vdk_pwrite(n->file, buf, cs, (uint64_t)o, 0)) == 0)
            q_st64(t + i * 8, (uint64_t)o);
    }
    int64_t to = r == 0 ? qcow2_alloc_clusters(n, tbytes / cs) : 0;
    if (to < 0)
        r = (int)to;
    if (r == 0)
        r = vdk_pwrite(n->file, t, tbytes, (uint64_t)to, 0);
    if (r == 0) {
        *toff = (uint64_t)to;
        *tsize = (uint32_t)n_ent;
    } else {
        /* Data clusters written so far leak; check -r reclaims them. */
    }
    free(t);
    return r;
}

/* Release a table and the data clusters it names. */
static int free_table(struct vdk_node *n, uint64_t off, uint32_t size)
{
    struct qcow2_state *s = n->opaque;
    uint64_t *t;
    int r = qcow2_bitmap_read_table(n, off, size, &t);
    if (r < 0)
        return r;
    /* The offsets come from the image: a damaged entry naming the L1
       table or a refcount block would otherwise free it for reuse.  Such
       an image is marked corrupt instead (the caller holds s->lock). */
    for (uint32_t i = 0; r == 0 && i < size; i++) {
        uint64_t o = t[i] & QCOW2_BME_TE_OFFSET;
        if (o && (r = qcow2_check_free(n, o, s->cluster_size)) == 0)
            r = qcow2_update_refcount(n, o, s->cluster_size, -1);
    }
    free(t);
    uint64_t tbytes = vdk_align_up((uint64_t)size * 8, s->cluster_size);
    if (r == 0 && (r = qcow2_check_free(n, off, tbytes)) == 0)
        r = qcow2_update_refcount(n, off, tbytes, -1);
    return r;
}

int qcow2_bitmaps_store_full(struct vdk_node *n)
{
    struct qcow2_state *s = n->opaque;
    struct qcow2_bitmaps *b = s->bitmaps;
    pthread_mutex_lock(&s->lock);
    int r = 0;
    uint8_t *buf = malloc(s->cluster_size);
    struct qcow2_bm_table *old = calloc(b->nb + 1, sizeof(*old));
    uint32_t nold = 0;
    if (!buf || !old)
        r = -ENOMEM;
    /* 1. Changed bitmaps to fresh clusters. */
    for (uint32_t i = 0; r == 0 && i < b->nb; i++) {
        struct qcow2_bitmap *bm = &b->bm[i];
        if (bm->inconsistent || !bm->loaded ||
            (!bm->changed && bm->table_offset && !qcow2_bits_any(bm->dirty, bm->nunits) &&
             !qcow2_bits_any(bm->writing, bm->nunits)))
            continue;
        uint64_t toff = 0;
        uint32_t tsize = 0;
        if ((r = write_bitmap(n, bm, buf, &toff, &tsize)) < 0)
            break;
        if (bm->table_offset)
            old[nold++] = (struct qcow2_bm_table){ bm->table_offset, bm->table_size };
        bm->table_offset = toff;
        bm->table_size = tsize;
        bm->changed = false;
        memset(bm->dirty, 0, (bm->nunits + 63) / 64 * 8);
        memset(bm->writing, 0, (bm->nunits + 63) / 64 * 8);
    }
    /* 2. A fresh directory, refcounts and data on disk before the header. */
    uint64_t dsize = 0, doff = 0;
    uint8_t *d = NULL;
    if (r == 0 && b->nb) {
        d = qcow2_bitmaps_build_directory(s, false, &dsize);
        if (!d)
            r = -ENOMEM;
        int64_t o = r == 0 ? qcow2_alloc_clusters(n, vdk_align_up(dsize, s->cluster_size) >>
                                                  s->cluster_bits) : 0;
        if (o < 0)
            r = (int)o;
        doff = (uint64_t)o;
        if (r == 0)
            r = vdk_pwrite(n->file, d, dsize, doff, 0);
    }
    free(d);
    if (r == 0)
        r = qcow2_flush_metadata(n);
    if (r == 0)
        r = vdk_flush(n->file);
    /* 3. The header names the new directory. */
    uint64_t old_doff = b->has_ext ? b->dir_offset : 0, old_dsize = b->dir_size;
    if (r == 0) {
        b->has_ext = b->nb != 0;
        b->ext_nb = b->nb;
        b->dir_size = dsize;
        b->dir_offset = doff;
        if (b->nb)
            s->autoclear |= QCOW2_AUTOCLEAR_BITMAPS;
        else
            s->autoclear &= ~QCOW2_AUTOCLEAR_BITMAPS;
        r = qcow2_write_header(n, NULL);
        if (r == 0)
            r = vdk_flush(n->file);
    }
    /* 4. Free what the old directory named (rule 3). */
    if (r == 0 && old_doff)
        r = qcow2_update_refcount(n, old_doff, vdk_align_up(old_dsize, s->cluster_size), -1);
    for (uint32_t i = 0; r == 0 && i < nold; i++)
        r = free_table(n, old[i].off, old[i].size);
    for (uint32_t i = 0; r == 0 && i < b->ndead; i++)
        r = free_table(n, b->dead[i].off, b->dead[i].size);
    if (r == 0) {
        b->ndead = 0;
        b->structural = false;
        __atomic_store_n(&b->disk, b->has_ext ? QCOW2_BM_DISK_CLEAN : QCOW2_BM_DISK_DIRTY,
                         __ATOMIC_RELEASE);
        r = qcow2_flush_metadata(n);
    }
    pthread_mutex_unlock(&s->lock);
    free(buf);
    free(old);
    return r;
}

int qcow2_bitmaps_refs(struct vdk_node *n, void (*add)(void *ctx, uint64_t off,
                       uint64_t len), void *ctx)
{
    struct qcow2_state *s = n->opaque;
    struct qcow2_bitmaps *b = s->bitmaps;
    int bad = 0;
    if (!b || !b->has_ext || b->stale_ext || !b->ext_nb)
        return 0;
    add(ctx, b->dir_offset, b->dir_size);
    /* The bitmaps, and those removed this session (the directory on disk
       still names them until the close). */
    for (uint32_t i = 0; i < b->nb + b->ndead; i++) {
        bool dead = i >= b->nb;
        uint64_t toff = dead ? b->dead[i - b->nb].off : b->bm[i].table_offset;
        uint32_t tsize = dead ? b->dead[i - b->nb].size : b->bm[i].table_size;
        if (!toff)
            continue;
        add(ctx, toff, (uint64_t)tsize * 8);
        uint64_t *t;
        int r = qcow2_bitmap_read_table(n, toff, tsize, &t);
        if (r == -EINVAL) {
            fprintf(stderr, "ERROR bitmap table at 0x%" PRIx64 " is invalid\n", toff);
            bad++;
            continue;
        }
        if (r < 0)
            return r;
        for (uint32_t j = 0; j < tsize; j++)
            if (t[j] & QCOW2_BME_TE_OFFSET)
                add(ctx, t[j] & QCOW2_BME_TE_OFFSET, s->cluster_size);
        free(t);
    }
    return bad;
}

uint64_t qcow2_bitmaps_measure(struct vdk_node *n, uint64_t cs)
{
    struct qcow2_state *s = n->opaque;
    struct qcow2_bitmaps *b = s->bitmaps;
    uint64_t dir = 0, total = 0;
    for (uint32_t i = 0; b && i < b->nb; i++) {
        const struct qcow2_bitmap *bm = &b->bm[i];
        uint64_t bits = nbits_for(s->size, bm->gran_bits);
        uint64_t clusters = ((bits + 7) / 8 + cs - 1) / cs;
        total += clusters * cs + vdk_align_up(clusters * 8, cs);
        dir += entry_len(bm->name_len);
    }
    return total + vdk_align_up(dir, cs);
}

int qcow2_bitmaps_resize(struct vdk_node *n, uint64_t size)
{
    struct qcow2_state *s = n->opaque;
    struct qcow2_bitmaps *b = s->bitmaps;
    int r = qcow2_bitmaps_settle(n);
    if (r < 0)
        return r;
    for (uint32_t i = 0; b && i < b->nb; i++) {
        struct qcow2_bitmap *bm = &b->bm[i];
        uint64_t nb = nbits_for(size, bm->gran_bits);
        if (bm->inconsistent || !bm->loaded) {
            bm->nbits = nb;
            continue;
        }
        uint64_t ow = nwords(bm->nbits), nw = nwords(nb);
        if (nw > ow && (nw - ow) * 8 > QCOW2_BME_MAX_MEM - b->mem)
            return -EFBIG;
        uint64_t *w = realloc(bm->words, (nw ? nw : 1) * 8);
        if (!w)
            return -ENOMEM;
        b->mem = b->mem - ow * 8 + nw * 8;
        if (nw > ow)
            memset(w + ow, 0, (nw - ow) * 8);
        bm->words = w;
        bm->nbits = nb;
        trim_tail(bm);
        bm->changed = true;
        if (qcow2_bitmap_alloc_dirty(s, bm) < 0)
            return -ENOMEM;
    }
    if (b)
        b->structural = true;
    return 0;
}
