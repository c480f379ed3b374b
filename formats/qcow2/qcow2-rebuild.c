/* SPDX-License-Identifier: MIT */
/*
 * qcow2: the refcount structures as check sees them (which table entries
 * are usable, which blocks overlap other clusters), and their rebuild from
 * counted references (check repair, when they are themselves damaged).
 *
 * The new refcount blocks and the new refcount table go to a fresh area
 * starting at the first cluster past the end of the file, so nothing the
 * old image uses is overwritten.  The area is sized by iterating to a fixed
 * point, because the new structures must count themselves and counting
 * them can need one more block or one more table cluster.  Only once every
 * new cluster is written and flushed does one 12-byte header write switch
 * refcount_table_offset and refcount_table_clusters together (then flush
 * again).  A crash before that write leaves the old image with some
 * unreferenced clusters past its end; a crash after it leaves the new image,
 * where the clusters of the old structures are simply free.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/qcow2/qcow2.h"

/* Largest host offset the new structures may reach (56-bit offsets). */
#define QCOW2_REBUILD_MAX_CLUSTER_END (1ull << 56)
/* The fixed point is reached in a handful of rounds; more means a bug. */
#define QCOW2_REBUILD_MAX_ROUNDS 64

bool qcow2_rt_entry_usable(const struct qcow2_state *s, uint64_t e, uint64_t nb)
{
    return e && !(e & 511) && !q_offset_in_cluster(s, e) && (e >> s->cluster_bits) < nb;
}

static void count_one(uint32_t *refs, uint64_t nb, uint64_t k, int delta)
{
    if (k >= nb)
        return;
    if (delta > 0 && refs[k] < UINT32_MAX)
        refs[k]++;
    else if (delta < 0 && refs[k] > 0 && refs[k] < UINT32_MAX)
        refs[k]--;
}

/* Add (delta 1) or take back (-1) the references of the table and of every
   usable block. */
static void count_structs(struct qcow2_state *s, uint32_t *refs, uint64_t nb, int delta)
{
    uint64_t k0 = s->rt_offset >> s->cluster_bits;
    for (uint64_t k = k0; k < k0 + s->rt_clusters; k++)
        count_one(refs, nb, k, delta);
    for (uint64_t i = 0; i < s->rt_size; i++)
        if (qcow2_rt_entry_usable(s, s->rt[i], nb))
            count_one(refs, nb, s->rt[i] >> s->cluster_bits, delta);
}

uint64_t qcow2_count_refcount_structs(struct vdk_node *n, uint32_t *refs, uint64_t nb,
                                      bool fixing)
{
    struct qcow2_state *s = n->opaque;
    uint64_t bad = 0;
    count_structs(s, refs, nb, 1);
    for (uint64_t i = 0; i < s->rt_size; i++) {
        uint64_t b = s->rt[i];
        if (!b || qcow2_rt_entry_usable(s, b, nb))
            continue;
        if (b & 511)
            fprintf(stderr, "ERROR refcount table entry %" PRIu64 " has reserved bits "
                    "set\n", i);
        else if (q_offset_in_cluster(s, b))
            fprintf(stderr, "ERROR refcount block %" PRIu64 " is not cluster aligned; "
                    "refcount table entry corrupted\n", i);
        else
            fprintf(stderr, "%s refcount block %" PRIu64 " is outside image\n",
                    fixing ? "Repairing" : "ERROR", i);
        bad++;
    }
    return bad;
}

uint64_t qcow2_check_refcount_overlaps(struct vdk_node *n, const uint32_t *refs,
                                       uint64_t nb)
{
    struct qcow2_state *s = n->opaque;
    uint64_t bad = 0, k0 = s->rt_offset >> s->cluster_bits;
    for (uint64_t i = 0; i < s->rt_size; i++) {
        uint64_t b = s->rt[i];
        if (!qcow2_rt_entry_usable(s, b, nb) || refs[b >> s->cluster_bits] == 1)
            continue;
        fprintf(stderr, "ERROR refcount block %" PRIu64 " refcount=%" PRIu32 "\n", i,
                refs[b >> s->cluster_bits]);
        bad++;
    }
    for (uint64_t k = k0; k < k0 + s->rt_clusters && k < nb; k++) {
        if (refs[k] == 1)
            continue;
        fprintf(stderr, "ERROR refcount table cluster %" PRIu64 " overlaps other "
                "metadata (reference=%" PRIu32 ")\n", k - k0, refs[k]);
        bad++;
    }
    return bad;
}

/* Refcount of cluster k in the rebuilt image. */
static uint64_t new_refcount(const uint32_t *refs, uint64_t nb, uint64_t area,
                             uint64_t area_len, uint64_t k)
{
    if (k < nb)
        return refs[k];
    return k >= area && k - area < area_len ? 1 : 0;
}

/* Does refcount block `bi` describe any referenced cluster? */
static bool block_needed(const struct qcow2_state *s, const uint32_t *refs, uint64_t nb,
                         uint64_t area, uint64_t area_len, uint64_t bi)
{
    uint64_t per = 1ull << s->rb_bits, first = bi * per, end = first + per;
    if (area_len && first < area + area_len && area < end)
        return true;
    for (uint64_t k = first; k < end && k < nb; k++)
        if (refs[k])
            return true;
    return false;
}

/*
 * Size the new area: `*nr` refcount blocks then `*nt` table clusters at
 * cluster `area`, so that the blocks cover every referenced cluster,
 * themselves and the table, and the table has an entry for each block.
 * `used_old`: blocks needed by the clusters below `area` alone.
 */
static int size_area(const struct qcow2_state *s, const uint32_t *refs, uint64_t nb,
                     uint64_t area, uint64_t used_old, uint64_t *nr, uint64_t *nt,
                     struct vdk_error **errp)
{
    uint64_t cs = s->cluster_size, r = 0, t = 1;
    /* Is the block holding `area` already counted in used_old? */
    uint64_t first_new = area >> s->rb_bits;
    bool shared = block_needed(s, refs, nb, area, 0, first_new);
    for (int round = 0; round < QCOW2_REBUILD_MAX_ROUNDS; round++) {
        uint64_t end = area + r + t; /* one past the last cluster in use */
        uint64_t last_blk = (end - 1) >> s->rb_bits;
        uint64_t entries = last_blk + 1;
        uint64_t r2 = used_old + (last_blk - first_new + 1) - (shared ? 1 : 0);
        uint64_t t2 = vdk_align_up(entries * 8, cs) / cs;
        if (t2 * cs > QCOW2_MAX_RT_BYTES)
            return vdk_error_setf(errp, EFBIG, "the rebuilt refcount table would "
                                  "exceed %u bytes", QCOW2_MAX_RT_BYTES);
        if (end > (QCOW2_REBUILD_MAX_CLUSTER_END >> s->cluster_bits))
            return vdk_error_setf(errp, EFBIG, "the rebuilt refcount structures would "
                                  "lie past the largest host offset");
        if (r2 == r && t2 == t) {
            *nr = r;
            *nt = t;
            return 0;
        }
        r = r2 > r ? r2 : r;
        t = t2 > t ? t2 : t;
    }
    return vdk_error_setf(errp, EIO, "could not size the rebuilt refcount structures");
}

/* Point the in-memory state at the new table; drop cached old blocks. */
static void switch_state(struct vdk_node *n, uint64_t *nrt, uint64_t entries,
                         uint64_t rt_off, uint64_t nt)
{
    struct qcow2_state *s = n->opaque;
    for (uint64_t i = 0; i < s->rt_size; i++)
        if (s->rt[i] && !(s->rt[i] & (s->cluster_size - 1)))
            qcow2_cache_discard(&s->rb_cache, s->rt[i]);
    for (uint64_t i = 0; i < entries; i++)
        if (nrt[i])
            qcow2_cache_discard(&s->rb_cache, nrt[i]);
    free(s->rt);
    s->rt = nrt;
    s->rt_size = entries;
    s->rt_hi = 0;
    for (uint64_t i = 0; i < entries; i++)
        if (nrt[i])
            s->rt_hi = i + 1;
    s->rt_offset = rt_off;
    s->rt_clusters = (uint32_t)nt;
}

int qcow2_rebuild_refcounts(struct vdk_node *n, uint32_t *refs, uint64_t nb,
                            struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    uint64_t cs = s->cluster_size, per = 1ull << s->rb_bits;
    int r;
    if (!s->writable)
        return vdk_error_setf(errp, EROFS, "the image is not open for writing");
    /* The old structures are not carried over: in the new image their
       clusters are free (and a block that shares a data cluster no longer
       adds to its count, which a 1-bit refcount could not hold). */
    count_structs(s, refs, nb, -1);
    for (uint64_t k = 0; k < nb; k++)
        if (refs[k] > s->refcount_max)
            return vdk_error_setf(errp, ERANGE, "cluster %" PRIu64 " has %" PRIu32
                                  " references, more than refcount_bits=%u can hold",
                                  k, refs[k], 1u << s->refcount_order);
    /* Blocks needed by the existing clusters alone. */
    uint64_t used_old = 0;
    for (uint64_t bi = 0; bi * per < nb; bi++)
        used_old += block_needed(s, refs, nb, 0, 0, bi);

    uint64_t area = nb, nr = 0, nt = 0;
    if ((r = size_area(s, refs, nb, area, used_old, &nr, &nt, errp)) < 0)
        return r;
    uint64_t area_len = nr + nt, rt_off = (area + nr) * cs;
    uint64_t entries = nt * cs / 8;
    uint64_t *nrt = calloc(entries, sizeof(*nrt));
    uint8_t *tbl = calloc(nt, cs);
    uint8_t *blk = vdk_blk_alloc(cs);
    if (!nrt || !tbl || !blk) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    /* Refcount blocks, in table order, at area, area+1, ... */
    uint64_t next = area, last_blk = (area + area_len - 1) >> s->rb_bits;
    for (uint64_t bi = 0; bi <= last_blk; bi++) {
        if (!block_needed(s, refs, nb, area, area_len, bi))
            continue;
        if (next >= area + nr) {
            r = vdk_error_setf(errp, EIO, "rebuilt refcount structures miscounted");
            goto out;
        }
        memset(blk, 0, cs);
        for (uint64_t j = 0; j < per; j++) {
            uint64_t v = new_refcount(refs, nb, area, area_len, bi * per + j);
            if (v)
                qcow2_rb_set(s, blk, j, v);
        }
        if ((r = vdk_pwrite(n->file, blk, cs, next * cs, 0)) < 0) {
            vdk_error_setf_errno(errp, r, "could not write a refcount block");
            goto out;
        }
        nrt[bi] = next * cs;
        q_st64(tbl + 8 * bi, next * cs);
        next++;
    }
    if (next != area + nr) {
        r = vdk_error_setf(errp, EIO, "rebuilt refcount structures miscounted");
        goto out;
    }
    if ((r = vdk_pwrite(n->file, tbl, nt * cs, rt_off, 0)) < 0) {
        vdk_error_setf_errno(errp, r, "could not write the refcount table");
        goto out;
    }
    /* Everything new is on disk before the header names it. */
    if ((r = vdk_flush(n->file)) < 0) {
        vdk_error_setf_errno(errp, r, "could not flush the refcount structures");
        goto out;
    }
    uint8_t h[12];
    q_st64(h, rt_off);
    q_st32(h + 8, (uint32_t)nt);
    if ((r = vdk_pwrite(n->file, h, sizeof(h), QH_RT_OFFSET, 0)) < 0 ||
        (r = vdk_flush(n->file)) < 0) {
        vdk_error_setf_errno(errp, r, "could not update the header");
        goto out;
    }
    switch_state(n, nrt, entries, rt_off, nt);
    nrt = NULL;
    r = 0;
out:
    free(nrt);
    free(tbl);
    vdk_blk_free(blk);
    return r;
}
