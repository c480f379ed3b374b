/* SPDX-License-Identifier: MIT */
/*
 * qcow2 internal snapshots: the snapshot table (docs/interop/qcow2.txt,
 * "Snapshots"), create / apply / delete / list, loading a snapshot for a
 * read-only open, and the tree refcount walk they share with make_empty.
 * See qcow2-snapshot.h for the refcount rule.
 *
 * Crash safety follows QEMU's order: create copies the L1 table and
 * raises refcounts before the new table and then the header name it;
 * delete drops the entry from the table before it lowers refcounts; a
 * crash in between only leaks clusters.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "formats/qcow2/qcow2-snapshot.h"
#include "formats/qcow2/qcow2-bitmap.h"

struct qsn {
    uint64_t l1_offset;
    uint32_t l1_size;
    char *id, *name;
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock;
    uint64_t vm_state_size;
    uint64_t disk_size;
    uint64_t icount;          /* UINT64_MAX: none */
    uint8_t *extra_rest;      /* extra data past the fields we know, kept */
    uint32_t rest_len;
};

struct qsn_table {
    struct qsn *sn;
    uint32_t count;
    uint64_t bytes;           /* on-disk size of the table */
};

static void table_free(struct qsn_table *t)
{
    for (uint32_t i = 0; t->sn && i < t->count; i++) {
        free(t->sn[i].id);
        free(t->sn[i].name);
        free(t->sn[i].extra_rest);
    }
    free(t->sn);
    t->sn = NULL;
    t->count = 0;
}

static int table_read(struct vdk_node *n, struct qsn_table *t, struct vdk_error **errp);

int qcow2_snapshot_validate(struct vdk_node *n, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    struct qsn_table t;
    if (q_offset_in_cluster(s, s->snapshots_offset))
        return vdk_error_setf(errp, EINVAL, "snapshot table offset 0x%" PRIx64 " invalid "
                              "(unaligned); open read-only", s->snapshots_offset);
    int r = table_read(n, &t, errp);
    if (r == 0)
        table_free(&t);
    return r;
}

/* Read and bound the whole snapshot table. */
static int table_read(struct vdk_node *n, struct qsn_table *t, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    memset(t, 0, sizeof(*t));
    if (!s->nb_snapshots)
        return 0;
    if (s->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
        return vdk_error_setf(errp, EINVAL, "too many snapshots (%" PRIu32 ")",
                              s->nb_snapshots);
    int64_t flen = vdk_get_length(n->file);
    if (flen < 0)
        return vdk_error_setf_errno(errp, (int)flen, "could not get the file size");
    if (q_offset_in_cluster(s, s->snapshots_offset) || s->snapshots_offset == 0 ||
        s->snapshots_offset >= (uint64_t)flen)
        return vdk_error_setf(errp, EINVAL, "snapshot table offset 0x%" PRIx64
                              " invalid or beyond end of file", s->snapshots_offset);
    t->sn = calloc(s->nb_snapshots, sizeof(*t->sn));
    if (!t->sn)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    uint64_t off = s->snapshots_offset, end = (uint64_t)flen;
    int r = 0;
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        struct qsn *sn = &t->sn[i];
        uint8_t h[40], extra[QCOW2_MAX_SN_EXTRA];
        if (off - s->snapshots_offset > QCOW2_MAX_SNAPSHOTS_BYTES - 40 || end - off < 40) {
            r = vdk_error_setf(errp, EINVAL, "snapshot table entry %" PRIu32
                               " beyond end of file or table too large", i);
            goto fail;
        }
        if ((r = vdk_pread(n->file, h, 40, off, 0)) < 0) {
            vdk_error_setf_errno(errp, r, "could not read the snapshot table");
            goto fail;
        }
        t->count = i + 1;
        sn->l1_offset = q_be64(h);
        sn->l1_size = q_be32(h + 8);
        uint32_t id_len = q_be16(h + 12), name_len = q_be16(h + 14);
        sn->date_sec = q_be32(h + 16);
        sn->date_nsec = q_be32(h + 20);
        sn->vm_clock = q_be64(h + 24);
        sn->vm_state_size = q_be32(h + 32);
        uint32_t extra_len = q_be32(h + 36);
        if (extra_len > QCOW2_MAX_SN_EXTRA) {
            r = vdk_error_setf(errp, EINVAL, "snapshot %" PRIu32 ": extra data of %" PRIu32
                               " bytes is too large", i, extra_len);
            goto fail;
        }
        if (id_len > QCOW2_MAX_SN_ID) {
            r = vdk_error_setf(errp, EINVAL, "snapshot %" PRIu32 ": ID of %" PRIu32
                               " bytes is too long", i, id_len);
            goto fail;
        }
        uint64_t len = 40 + (uint64_t)extra_len + id_len + name_len;
        if (len > end - off || off - s->snapshots_offset + len > QCOW2_MAX_SNAPSHOTS_BYTES) {
            r = vdk_error_setf(errp, EINVAL, "snapshot table entry %" PRIu32
                               " beyond end of file", i);
            goto fail;
        }
        sn->id = calloc(1, id_len + 1u);
        sn->name = calloc(1, name_len + 1u);
        if (!sn->id || !sn->name) {
            r = vdk_error_setf(errp, ENOMEM, "out of memory");
            goto fail;
        }
        if ((extra_len && (r = vdk_pread(n->file, extra, extra_len, off + 40, 0)) < 0) ||
            (id_len && (r = vdk_pread(n->file, sn->id, id_len, off + 40 + extra_len, 0)) < 0) ||
            (name_len && (r = vdk_pread(n->file, sn->name, name_len,
                                        off + 40 + extra_len + id_len, 0)) < 0)) {
            vdk_error_setf_errno(errp, r, "could not read the snapshot table");
            goto fail;
        }
        sn->disk_size = s->size; /* legacy entries without it: current size */
        sn->icount = UINT64_MAX;
        if (extra_len >= 8)
            sn->vm_state_size = q_be64(extra);
        if (extra_len >= 16)
            sn->disk_size = q_be64(extra + 8);
        if (extra_len >= 24)
            sn->icount = q_be64(extra + 16);
        if (extra_len > QCOW2_SN_EXTRA_V3) {
            sn->rest_len = extra_len - QCOW2_SN_EXTRA_V3;
            sn->extra_rest = malloc(sn->rest_len);
            if (!sn->extra_rest) {
                r = vdk_error_setf(errp, ENOMEM, "out of memory");
                goto fail;
            }
            memcpy(sn->extra_rest, extra + QCOW2_SN_EXTRA_V3, sn->rest_len);
        }
        /* The snapshot's L1 table: bounded, aligned, inside the file, and
           large enough for its disk size. */
        if (sn->l1_size > QCOW2_MAX_L1_BYTES / 8 || sn->disk_size > QCOW2_MAX_SIZE ||
            q_offset_in_cluster(s, sn->l1_offset) ||
            (sn->l1_size && (sn->l1_offset < s->cluster_size || sn->l1_offset > end ||
                             (uint64_t)sn->l1_size * 8 > end - sn->l1_offset)) ||
            qcow2_l1_entries(s, sn->disk_size) > sn->l1_size) {
            r = vdk_error_setf(errp, EINVAL, "snapshot %" PRIu32 " ('%s'): L1 table at 0x%"
                               PRIx64 " (%" PRIu32 " entries) invalid or beyond end of "
                               "file", i, sn->id, sn->l1_offset, sn->l1_size);
            goto fail;
        }
        off += vdk_align_up(len, 8);
    }
    t->bytes = off - s->snapshots_offset;
    return 0;
fail:
    table_free(t);
    return r;
}

/* Serialise the table, write it to new clusters, point the header at it,
   then free the old table.  On success s->nb_snapshots/snapshots_offset
   follow. */
static int table_write(struct vdk_node *n, const struct qsn_table *t, uint64_t old_bytes,
                       struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < t->count; i++)
        bytes += vdk_align_up(40 + QCOW2_SN_EXTRA_V3 + (uint64_t)t->sn[i].rest_len +
                              strlen(t->sn[i].id) + strlen(t->sn[i].name), 8);
    if (bytes > QCOW2_MAX_SNAPSHOTS_BYTES)
        return vdk_error_setf(errp, EFBIG, "snapshot table too large");
    uint64_t alloc = vdk_align_up(bytes, s->cluster_size);
    uint8_t *buf = alloc ? vdk_blk_alloc(alloc) : NULL;
    if (alloc && !buf)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    uint64_t o = 0;
    for (uint32_t i = 0; i < t->count; i++) {
        const struct qsn *sn = &t->sn[i];
        size_t il = strlen(sn->id), nl = strlen(sn->name);
        uint8_t *p = buf + o;
        q_st64(p, sn->l1_offset);
        q_st32(p + 8, sn->l1_size);
        q_st16(p + 12, (uint16_t)il);
        q_st16(p + 14, (uint16_t)nl);
        q_st32(p + 16, sn->date_sec);
        q_st32(p + 20, sn->date_nsec);
        q_st64(p + 24, sn->vm_clock);
        q_st32(p + 32, sn->vm_state_size > UINT32_MAX ? 0 : (uint32_t)sn->vm_state_size);
        q_st32(p + 36, QCOW2_SN_EXTRA_V3 + sn->rest_len);
        q_st64(p + 40, sn->vm_state_size);
        q_st64(p + 48, sn->disk_size);
        q_st64(p + 56, sn->icount);
        p += 40 + QCOW2_SN_EXTRA_V3;
        if (sn->rest_len)
            memcpy(p, sn->extra_rest, sn->rest_len);
        memcpy(p + sn->rest_len, sn->id, il);
        memcpy(p + sn->rest_len + il, sn->name, nl);
        o += vdk_align_up(40 + QCOW2_SN_EXTRA_V3 + (uint64_t)sn->rest_len + il + nl, 8);
    }
    int64_t noff = 0;
    int r = 0;
    if (alloc) {
        noff = qcow2_alloc_clusters(n, alloc >> s->cluster_bits);
        if (noff < 0)
            r = (int)noff;
        if (r == 0)
            r = qcow2_flush_metadata(n);
        if (r == 0)
            r = vdk_pwrite(n->file, buf, alloc, (uint64_t)noff, 0);
        if (r == 0)
            r = vdk_flush(n->file);
    }
    vdk_blk_free(buf);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "could not write the snapshot table");
    uint8_t h[12];
    q_st32(h, t->count);
    q_st64(h + 4, (uint64_t)noff);
    if ((r = vdk_pwrite(n->file, h, 12, QH_NB_SNAPSHOTS, 0)) < 0 ||
        (r = vdk_flush(n->file)) < 0)
        return vdk_error_setf_errno(errp, r, "could not update the header");
    uint64_t old = s->snapshots_offset;
    s->nb_snapshots = t->count;
    s->snapshots_offset = (uint64_t)noff;
    if (old && old_bytes &&
        (r = qcow2_update_refcount(n, old, vdk_align_up(old_bytes, s->cluster_size), -1)) < 0)
        return vdk_error_setf_errno(errp, r, "could not free the old snapshot table");
    return 0;
}

/* Index of the snapshot whose ID, else name, is `key`; -1 if none. */
static int table_find(const struct qsn_table *t, const char *key)
{
    for (uint32_t i = 0; i < t->count; i++)
        if (!strcmp(t->sn[i].id, key))
            return (int)i;
    for (uint32_t i = 0; i < t->count; i++)
        if (!strcmp(t->sn[i].name, key))
            return (int)i;
    return -1;
}

/* Read an L1 table (host endian) of `size` entries at `off`. */
static int read_l1(struct vdk_node *n, uint64_t off, uint32_t size, uint64_t **out)
{
    *out = calloc(size ? size : 1, 8);
    if (!*out)
        return -ENOMEM;
    int r = size ? vdk_pread(n->file, *out, (uint64_t)size * 8, off, 0) : 0;
    if (r < 0) {
        free(*out);
        *out = NULL;
        return r;
    }
    for (uint32_t i = 0; i < size; i++)
        (*out)[i] = q_be64((uint8_t *)&(*out)[i]);
    return 0;
}

/* Write `l1` (host endian, `size` entries) at `off`, zero-padding to `disk` entries. */
static int write_l1(struct vdk_node *n, uint64_t off, const uint64_t *l1, uint32_t size,
                    uint32_t disk)
{
    uint8_t *b = calloc(disk ? disk : 1, 8);
    if (!b)
        return -ENOMEM;
    for (uint32_t i = 0; i < size && i < disk; i++)
        q_st64(b + 8 * i, l1[i]);
    int r = disk ? vdk_pwrite(n->file, b, (uint64_t)disk * 8, off, 0) : 0;
    free(b);
    return r;
}

/*
 * Walk the tree of `l1` and add `addend` (+1, -1) to the refcount of every
 * L2 table and cluster it reaches, or with addend 0 recompute the COPIED
 * flags (active tree).  With addend +1 COPIED is cleared (everything is
 * now shared).  L1 flags are updated in `l1`; the caller writes it.
 */
static int tree_update(struct vdk_node *n, uint64_t *l1, uint32_t l1_size, int addend)
{
    struct qcow2_state *s = n->opaque;
    int64_t flen = vdk_get_length(n->file);
    bool own_data = s->data == n->file;
    uint8_t *tbl = malloc(s->cluster_size), *cached;
    if (flen < 0 || !tbl) {
        free(tbl);
        return flen < 0 ? (int)flen : -ENOMEM;
    }
    uint64_t entries = s->cluster_size / s->l2_entry_size;
    int r = 0;
    for (uint32_t i = 0; r == 0 && i < l1_size; i++) {
        uint64_t l2off = l1[i] & QCOW2_OFFSET_MASK, rc;
        if (!l2off)
            continue;
        if (q_offset_in_cluster(s, l2off) || l2off >= (uint64_t)flen) {
            r = qcow2_signal_corruption(n, "L2 table offset 0x%" PRIx64 " invalid", l2off);
            break;
        }
        if ((r = qcow2_cache_get(n, &s->l2_cache, l2off, true, &cached)) < 0)
            break;
        memcpy(tbl, cached, s->cluster_size);
        uint64_t l2rc = 0;
        if (addend == 0 && (r = qcow2_get_refcount(n, l2off >> s->cluster_bits, &l2rc)) < 0)
            break;
        bool changed = false;
        for (uint64_t j = 0; r == 0 && own_data && j < entries; j++) {
            uint8_t *p = tbl + j * s->l2_entry_size;
            uint64_t e = q_be64(p), ne = e;
            /* Never touch refcounts for clusters past the end of the file
               (a damaged table would grow the refcount table to match). */
            uint64_t host = (e & QCOW2_OFLAG_COMPRESSED) ? e & s->coffset_mask
                                                         : e & QCOW2_OFFSET_MASK;
            if (host >= (uint64_t)flen) {
                r = qcow2_signal_corruption(n, "cluster 0x%" PRIx64 " in L2 table 0x%"
                                            PRIx64 " beyond end of file", host, l2off);
                break;
            }
            if (e & QCOW2_OFLAG_COMPRESSED) {
                if (addend) {
                    uint64_t coff = e & s->coffset_mask;
                    uint64_t nb = ((e >> s->csize_shift) & s->csize_mask) + 1;
                    r = qcow2_update_refcount(n, coff & ~511ull, nb * 512, addend);
                }
                continue;
            }
            uint64_t off = e & QCOW2_OFFSET_MASK;
            if (!off)
                continue;
            if (addend)
                r = qcow2_update_refcount(n, off, s->cluster_size, addend);
            if (addend > 0) {
                ne = e & ~QCOW2_OFLAG_COPIED;
            } else if (addend == 0) {
                /* Entries of a shared table are all shared. */
                rc = 2;
                if (l2rc == 1 && (r = qcow2_get_refcount(n, off >> s->cluster_bits, &rc)) < 0)
                    break;
                ne = rc == 1 ? e | QCOW2_OFLAG_COPIED : e & ~QCOW2_OFLAG_COPIED;
            }
            if (ne != e) {
                q_st64(p, ne);
                changed = true;
            }
        }
        if (r == 0 && changed) {
            if ((r = qcow2_cache_get(n, &s->l2_cache, l2off, true, &cached)) < 0)
                break;
            memcpy(cached, tbl, s->cluster_size);
            qcow2_cache_mark_dirty(&s->l2_cache, l2off);
        }
        if (r == 0 && addend)
            r = qcow2_update_refcount(n, l2off, s->cluster_size, addend);
        if (addend > 0)
            l1[i] &= ~QCOW2_OFLAG_COPIED;
        else if (addend == 0)
            l1[i] = l2rc == 1 ? l1[i] | QCOW2_OFLAG_COPIED : l1[i] & ~QCOW2_OFLAG_COPIED;
    }
    free(tbl);
    return r;
}

/*
 * Before tree_update(+1): -ERANGE if a refcount would overflow, so that
 * nothing is changed.  A compressed host cluster gets one increment per
 * descriptor in it, at most its current refcount: 2 * rc must fit.
 */
static int tree_room(struct vdk_node *n, const uint64_t *l1, uint32_t l1_size)
{
    struct qcow2_state *s = n->opaque;
    if (s->refcount_max >= UINT32_MAX)
        return 0; /* 64 snapshots per cluster would not reach it */
    uint64_t entries = s->cluster_size / s->l2_entry_size, rc;
    uint8_t *t;
    int r = 0;
    for (uint32_t i = 0; r == 0 && i < l1_size; i++) {
        uint64_t l2off = l1[i] & QCOW2_OFFSET_MASK;
        if (!l2off)
            continue;
        if ((r = qcow2_get_refcount(n, l2off >> s->cluster_bits, &rc)) < 0)
            break;
        if (rc >= s->refcount_max)
            return -ERANGE;
        for (uint64_t j = 0; r == 0 && s->data == n->file && j < entries; j++) {
            if ((r = qcow2_cache_get(n, &s->l2_cache, l2off, true, &t)) < 0)
                break;
            uint64_t e = q_be64(t + j * s->l2_entry_size), off;
            bool comp = (e & QCOW2_OFLAG_COMPRESSED) != 0;
            off = comp ? (e & s->coffset_mask) & ~(uint64_t)(s->cluster_size - 1)
                       : e & QCOW2_OFFSET_MASK;
            if (!off)
                continue;
            if ((r = qcow2_get_refcount(n, off >> s->cluster_bits, &rc)) < 0)
                break;
            if (comp ? rc > s->refcount_max / 2 : rc >= s->refcount_max)
                return -ERANGE;
        }
    }
    return r;
}

/* Write the in-memory active L1 table after a flush of the metadata caches. */
static int write_active_l1(struct vdk_node *n)
{
    struct qcow2_state *s = n->opaque;
    int r = qcow2_flush_metadata(n);
    if (r == 0)
        r = vdk_flush(n->file);
    if (r == 0)
        r = write_l1(n, s->l1_offset, s->l1, s->l1_size, s->l1_size);
    if (r == 0)
        r = vdk_flush(n->file);
    return r;
}

/* Common entry checks; locks on success. */
static int sn_begin(struct vdk_node *n, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    if (!s->writable)
        return vdk_error_setf(errp, EPERM, "image is read-only");
    if (s->corrupt || (s->incompat & QCOW2_INCOMPAT_CORRUPT))
        return vdk_error_setf(errp, EIO, "image is corrupt");
    if (s->incompat & QCOW2_INCOMPAT_DATA_FILE)
        return vdk_error_setf(errp, ENOTSUP, "internal snapshots are not supported with "
                              "an external data file");
    pthread_rwlock_wrlock(&s->free_lock);
    pthread_mutex_lock(&s->lock);
    return 0;
}

static void sn_end(struct vdk_node *n)
{
    struct qcow2_state *s = n->opaque;
    pthread_mutex_unlock(&s->lock);
    pthread_rwlock_unlock(&s->free_lock);
}

/* Next free numeric ID: one more than the largest numeric one. */
static void new_id(const struct qsn_table *t, char *out, size_t len)
{
    unsigned long long max = 0;
    for (uint32_t i = 0; i < t->count; i++) {
        char *end;
        unsigned long long v = strtoull(t->sn[i].id, &end, 10);
        if (*t->sn[i].id && !*end && v > max)
            max = v;
    }
    snprintf(out, len, "%llu", max + 1);
}

int qcow2_snapshot_create(struct vdk_node *n, const char *name, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    if (!*name || strlen(name) > 1023)
        return vdk_error_setf(errp, EINVAL, "snapshot name must be 1 to 1023 bytes long");
    int r = sn_begin(n, errp);
    if (r < 0)
        return r;
    struct qsn_table t;
    struct qsn *nt = NULL;
    uint64_t l1_off = 0, l1_bytes = vdk_align_up((uint64_t)s->l1_size * 8, s->cluster_size);
    if ((r = table_read(n, &t, errp)) < 0)
        goto out_unlocked_table;
    for (uint32_t i = 0; i < t.count; i++)
        if (!strcmp(t.sn[i].name, name)) {
            r = vdk_error_setf(errp, EEXIST, "a snapshot named '%s' already exists", name);
            goto out;
        }
    if (t.count >= QCOW2_MAX_SNAPSHOTS) {
        r = vdk_error_setf(errp, EFBIG, "too many snapshots");
        goto out;
    }
    char id[32];
    new_id(&t, id, sizeof(id));
    if ((r = tree_room(n, s->l1, s->l1_size)) < 0) {
        if (r == -ERANGE)
            vdk_error_setf(errp, ERANGE, "refcount overflow (refcount_bits "
                           "too small for another snapshot)");
        else
            vdk_error_setf_errno(errp, r, "could not read refcounts");
        goto out;
    }
    /* 1. A copy of the active L1 table (without COPIED flags). */
    if (l1_bytes) {
        int64_t o = qcow2_alloc_clusters(n, l1_bytes >> s->cluster_bits);
        if (o < 0) {
            r = vdk_error_setf_errno(errp, (int)o, "could not allocate the snapshot L1 table");
            goto out;
        }
        l1_off = (uint64_t)o;
        uint64_t *copy = malloc((uint64_t)(s->l1_size ? s->l1_size : 1) * 8);
        if (!copy) {
            r = vdk_error_setf(errp, ENOMEM, "out of memory");
            goto out_free_l1;
        }
        for (uint32_t i = 0; i < s->l1_size; i++)
            copy[i] = s->l1[i] & ~QCOW2_OFLAG_COPIED;
        r = qcow2_flush_metadata(n);
        if (r == 0)
            r = write_l1(n, l1_off, copy, s->l1_size, s->l1_size);
        free(copy);
        if (r < 0) {
            vdk_error_setf_errno(errp, r, "could not write the snapshot L1 table");
            goto out_free_l1;
        }
    }
    /* 2. Everything the active tree reaches is now shared. */
    if ((r = tree_update(n, s->l1, s->l1_size, 1)) < 0 || (r = write_active_l1(n)) < 0) {
        if (r == -ERANGE)
            vdk_error_setf(errp, ERANGE, "refcount overflow (refcount_bits too small "
                           "for another snapshot)");
        else
            vdk_error_setf_errno(errp, r, "could not update refcounts");
        goto out;
    }
    /* 3. The new table, then the header. */
    nt = realloc(t.sn, (t.count + 1) * sizeof(*t.sn));
    if (!nt) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    t.sn = nt;
    struct qsn *sn = &t.sn[t.count];
    memset(sn, 0, sizeof(*sn));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    sn->l1_offset = l1_off;
    sn->l1_size = s->l1_size;
    sn->id = strdup(id);
    sn->name = strdup(name);
    sn->date_sec = (uint32_t)ts.tv_sec;
    sn->date_nsec = (uint32_t)ts.tv_nsec;
    sn->disk_size = s->size;
    sn->icount = UINT64_MAX;
    t.count++;
    if (!sn->id || !sn->name) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    r = table_write(n, &t, t.bytes, errp);
    goto out;
out_free_l1:
    if (l1_off)
        (void)qcow2_update_refcount(n, l1_off, l1_bytes, -1);
out:
    if (r == 0)
        r = qcow2_flush_metadata(n);
    table_free(&t);
out_unlocked_table:
    sn_end(n);
    return r;
}

int qcow2_snapshot_goto(struct vdk_node *n, const char *id_or_name, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    int r = sn_begin(n, errp);
    if (r < 0)
        return r;
    struct qsn_table t;
    uint64_t *snl1 = NULL, *old = NULL;
    if ((r = table_read(n, &t, errp)) < 0)
        goto unlock;
    int i = table_find(&t, id_or_name);
    if (i < 0) {
        r = vdk_error_setf(errp, ENOENT, "Can't find the snapshot");
        goto out;
    }
    const struct qsn *sn = &t.sn[i];
    if ((r = qcow2_grow_l1(n, sn->l1_size)) < 0 ||
        (r = read_l1(n, sn->l1_offset, sn->l1_size, &snl1)) < 0) {
        vdk_error_setf_errno(errp, r, "could not read the snapshot L1 table");
        goto out;
    }
    old = malloc((uint64_t)(s->l1_size ? s->l1_size : 1) * 8);
    if (!old) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    memcpy(old, s->l1, (uint64_t)s->l1_size * 8);
    if ((r = tree_room(n, snl1, sn->l1_size)) < 0) {
        if (r == -ERANGE)
            vdk_error_setf(errp, ERANGE, "refcount overflow (refcount_bits "
                           "too small)");
        else
            vdk_error_setf_errno(errp, r, "could not read refcounts");
        goto out;
    }
    /* Take references for the snapshot's tree first, so clusters shared
       with the current state never drop to zero. */
    if ((r = tree_update(n, snl1, sn->l1_size, 1)) < 0) {
        vdk_error_setf_errno(errp, r, "could not update refcounts");
        goto out;
    }
    for (uint32_t k = 0; k < s->l1_size; k++)
        s->l1[k] = k < sn->l1_size ? snl1[k] : 0;
    if ((r = write_active_l1(n)) < 0) {
        memcpy(s->l1, old, (uint64_t)s->l1_size * 8);
        vdk_error_setf_errno(errp, r, "could not write the L1 table");
        goto out;
    }
    if (sn->disk_size != s->size) {
        uint8_t b[8];
        q_st64(b, sn->disk_size);
        if ((r = vdk_pwrite(n->file, b, 8, QH_SIZE, 0)) < 0 || (r = vdk_flush(n->file)) < 0) {
            vdk_error_setf_errno(errp, r, "could not update the header");
            goto out;
        }
        s->size = n->size = sn->disk_size;
    }
    /* Drop the old state's references, then fix the COPIED flags. */
    if ((r = tree_update(n, old, s->l1_size, -1)) < 0 ||
        (r = tree_update(n, s->l1, s->l1_size, 0)) < 0 ||
        (r = write_active_l1(n)) < 0)
        vdk_error_setf_errno(errp, r, "could not update refcounts");
out:
    free(snl1);
    free(old);
    table_free(&t);
unlock:
    sn_end(n);
    return r;
}

int qcow2_snapshot_delete(struct vdk_node *n, const char *id_or_name,
                          struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    int r = sn_begin(n, errp);
    if (r < 0)
        return r;
    struct qsn_table t;
    uint64_t *snl1 = NULL;
    if ((r = table_read(n, &t, errp)) < 0)
        goto unlock;
    int i = table_find(&t, id_or_name);
    if (i < 0) {
        r = vdk_error_setf(errp, ENOENT, "Can't find the snapshot");
        goto out;
    }
    struct qsn gone = t.sn[i];
    if ((r = read_l1(n, gone.l1_offset, gone.l1_size, &snl1)) < 0) {
        vdk_error_setf_errno(errp, r, "could not read the snapshot L1 table");
        goto out;
    }
    /* 1. Out of the table (a crash from here on only leaks). */
    memmove(&t.sn[i], &t.sn[i + 1], (t.count - (uint32_t)i - 1) * sizeof(*t.sn));
    t.count--;
    r = table_write(n, &t, t.bytes, errp);
    t.sn[t.count] = gone; /* freed with the table */
    t.count++;
    if (r < 0)
        goto out;
    /* 2. Its references, its L1 table, then the active flags. */
    if ((r = tree_update(n, snl1, gone.l1_size, -1)) < 0 ||
        (gone.l1_size &&
         (r = qcow2_update_refcount(n, gone.l1_offset,
                                    vdk_align_up((uint64_t)gone.l1_size * 8,
                                                 s->cluster_size), -1)) < 0) ||
        (r = tree_update(n, s->l1, s->l1_size, 0)) < 0 ||
        (r = write_active_l1(n)) < 0)
        vdk_error_setf_errno(errp, r, "could not update refcounts");
out:
    free(snl1);
    table_free(&t);
unlock:
    sn_end(n);
    return r;
}

int qcow2_snapshot_list(struct vdk_node *n, struct vdk_snapshot_info **list, int *count,
                        struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    struct qsn_table t;
    *list = NULL;
    *count = 0;
    pthread_mutex_lock(&s->lock);
    int r = table_read(n, &t, errp);
    pthread_mutex_unlock(&s->lock);
    if (r < 0 || !t.count)
        return r;
    struct vdk_snapshot_info *l = calloc(t.count, sizeof(*l));
    if (!l) {
        table_free(&t);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < t.count; i++) {
        snprintf(l[i].id, sizeof(l[i].id), "%s", t.sn[i].id);
        l[i].name = t.sn[i].name;
        t.sn[i].name = NULL;
        l[i].vm_state_size = t.sn[i].vm_state_size;
        l[i].date_sec = t.sn[i].date_sec;
        l[i].date_nsec = t.sn[i].date_nsec;
        l[i].vm_clock_nsec = t.sn[i].vm_clock;
        l[i].icount = t.sn[i].icount;
    }
    *list = l;
    *count = (int)t.count;
    table_free(&t);
    return 0;
}

int qcow2_snapshot_load_tmp(struct vdk_node *n, const char *id, const char *name,
                            struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    if (s->writable)
        return vdk_error_setf(errp, EINVAL, "a snapshot can only be loaded read-only");
    struct qsn_table t;
    int r = table_read(n, &t, errp);
    if (r < 0)
        return r;
    int found = -1;
    for (uint32_t i = 0; i < t.count && found < 0; i++)
        if ((!id || !strcmp(t.sn[i].id, id)) && (!name || !strcmp(t.sn[i].name, name)))
            found = (int)i;
    if (found < 0) {
        table_free(&t);
        return vdk_error_setf(errp, ENOENT, "Can't find snapshot '%s'", id ? id : name);
    }
    uint64_t *l1;
    if ((r = read_l1(n, t.sn[found].l1_offset, t.sn[found].l1_size, &l1)) < 0) {
        table_free(&t);
        return vdk_error_setf_errno(errp, r, "could not read the snapshot L1 table");
    }
    free(s->l1);
    s->l1 = l1;
    s->l1_size = t.sn[found].l1_size;
    s->l1_offset = t.sn[found].l1_offset;
    /* The size stays the image's current one, as QEMU's load_tmp: past the
       snapshot's L1 table everything reads as unallocated. */
    table_free(&t);
    return 0;
}

int qcow2_make_empty(struct vdk_node *n, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    if (!s->writable)
        return vdk_error_setf(errp, EPERM, "image is read-only");
    pthread_rwlock_wrlock(&s->free_lock);
    pthread_mutex_lock(&s->lock);
    int r = -ENOMEM;
    uint64_t *old = malloc((uint64_t)(s->l1_size ? s->l1_size : 1) * 8);
    if (old) {
        memcpy(old, s->l1, (uint64_t)s->l1_size * 8);
        /* Unhook every L2 table from the L1 first (rule 3), then drop the
           references the active tree held. */
        memset(s->l1, 0, (uint64_t)s->l1_size * 8);
        r = write_active_l1(n);
        if (r < 0)
            memcpy(s->l1, old, (uint64_t)s->l1_size * 8);
        else
            r = tree_update(n, old, s->l1_size, -1);
        if (r == 0)
            r = qcow2_flush_metadata(n);
        free(old);
    }
    pthread_mutex_unlock(&s->lock);
    pthread_rwlock_unlock(&s->free_lock);
    return r < 0 ? vdk_error_setf_errno(errp, r, "could not empty the image") : 0;
}

int qcow2_reopen(struct vdk_node *n, unsigned flags, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    bool rw = (flags & VDK_O_RDWR) != 0;
    if (rw == s->writable)
        return 0;
    if (!rw) {
        /* The generic layer flushed us before n->file became read-only; a
           dirty bit we set (lazy refcounts) stays and is repaired at the
           next read-write open.  The bitmaps were stored by inactivate. */
        s->writable = false;
        s->bm_track = false;
        n->supported_write_flags = 0;
        n->supported_zero_flags = 0;
        return 0;
    }
    if (s->corrupt || (s->incompat & QCOW2_INCOMPAT_CORRUPT))
        return vdk_error_setf(errp, EIO, "qcow2 image is corrupt; it may be opened "
                              "read-only or repaired with 'check -r all'");
    if (s->incompat & QCOW2_INCOMPAT_DIRTY)
        return vdk_error_setf(errp, EIO, "image has stale refcounts (dirty); open it "
                              "read-write once to repair them");
    /* Autoclear bits we do not maintain are invalidated by our writes. */
    uint64_t keep = s->autoclear & (QCOW2_AUTOCLEAR_DATA_RAW | QCOW2_AUTOCLEAR_BITMAPS);
    if (s->autoclear != keep && s->version >= 3) {
        uint8_t b[8];
        q_st64(b, keep);
        int r = vdk_pwrite(n->file, b, 8, QH_AUTOCLEAR, 0);
        if (r < 0)
            return vdk_error_setf_errno(errp, r, "could not update the header");
        s->autoclear = keep;
    }
    s->writable = true;
    int r = qcow2_bitmaps_reopen_rw(n, errp);
    if (r < 0) {
        s->writable = false;
        return r;
    }
    n->supported_write_flags = qcow2_write_flags(n);
    n->supported_zero_flags = VDK_REQ_MAY_UNMAP;
    return 0;
}
