/* SPDX-License-Identifier: MIT */
/*
 * Checking a Parallels image, with qemu 7.2's messages and counters for
 * what it finds:
 *  - the in-use flag left set (the image was not closed): a corruption,
 *    repaired by clearing the flag at close;
 *  - clusters that start past the end of the file: corruptions, repaired
 *    by clearing their BAT entries;
 *  - space after the last cluster: leaks, repaired by cutting the file;
 * and beyond qemu 7.2, deliberately (docs/vdk-vm-formats.7, README.md):
 *  - clusters over the header or BAT: corruptions, entries cleared;
 *  - two entries naming one cluster, or (old magic, whose entries are
 *    sector offsets) overlapping clusters: corruptions, repaired by giving
 *    the later entry a copy of the data in a new cluster.  qemu 7.2 does
 *    not look: for it such an image is clean, or has only the leak that
 *    the orphaned cluster leaves (exit 3, "no harm to data"), while a
 *    write through one entry changes the other's data.  qemu 8.1 added
 *    the same check with the message used here ("duplicate offset in BAT
 *    entry N", a corruption: exit 2).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "formats/fmt-util.h"
#include "formats/parallels/parallels.h"

struct seen {
    uint64_t off;
    uint32_t idx;
};

static int cmp_seen(const void *a, const void *b)
{
    const struct seen *x = a, *y = b;
    if (x->off != y->off)
        return x->off < y->off ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Give entry idx its own copy of the cluster at `from`. */
static int copy_cluster(struct vdk_node *n, uint32_t idx, uint64_t from)
{
    struct prl_state *s = n->opaque;
    uint8_t *buf = vdk_blk_alloc(s->cluster_size);
    if (!buf)
        return -ENOMEM;
    int r = vdk_pread(n->file, buf, s->cluster_size, from, 0);
    int64_t to = r < 0 ? r : prl_alloc_cluster(n, idx);
    if (to < 0)
        r = (int)to;
    else
        r = vdk_pwrite(n->file, buf, s->cluster_size, (uint64_t)to, 0);
    vdk_blk_free(buf);
    return r;
}

static int find_duplicates(struct vdk_node *n, struct vdk_check_result *res, bool repair,
                           bool *flush_bat)
{
    struct prl_state *s = n->opaque;
    struct seen *v = malloc((size_t)s->bat_entries * sizeof(*v) + sizeof(*v));
    uint32_t cnt = 0;
    int r = 0;
    if (!v)
        return -ENOMEM;
    for (uint32_t i = 0; i < s->bat_entries; i++)
        if (s->bat[i])
            v[cnt++] = (struct seen){ prl_entry_sector(s, s->bat[i]) * PRL_SECTOR, i };
    qsort(v, cnt, sizeof(*v), cmp_seen);
    for (uint32_t k = 1, last = 0; k < cnt && r == 0; k++) {
        if (v[k].off >= v[last].off + s->cluster_size) {
            last = k;
            continue;
        }
        const char *what = repair ? "Repairing" : "ERROR";
        if (v[k].off == v[last].off)
            fprintf(stderr, "%s duplicate offset in BAT entry %" PRIu32 "\n", what, v[k].idx);
        else
            fprintf(stderr, "%s cluster %" PRIu32 " overlaps cluster %" PRIu32 "\n", what,
                    v[k].idx, v[last].idx);
        res->corruptions++;
        if (repair && (r = copy_cluster(n, v[k].idx, v[k].off)) == 0) {
            res->corruptions_fixed++;
            *flush_bat = true;
        }
    }
    free(v);
    return r;
}

int prl_check(struct vdk_node *n, struct vdk_check_result *res, unsigned fix,
              struct vdk_error **errp)
{
    struct prl_state *s = n->opaque;
    bool fix_err = fix & VDK_CHECK_FIX_ERRORS, fix_leaks = fix & VDK_CHECK_FIX_LEAKS;
    bool flush_bat = false;
    int r = 0;
    int64_t flen = vdk_get_length(n->file);
    if (flen < 0)
        return vdk_error_setf_errno(errp, (int)flen, "cannot get the file length");
    uint64_t size = (uint64_t)flen;
    pthread_mutex_lock(&s->lock);
    if (s->unclean) {
        fprintf(stderr, "%s image was not closed correctly\n", fix_err ? "Repairing" : "ERROR");
        res->corruptions++;
        if (fix_err) {
            s->unclean = false; /* close clears the flag */
            res->corruptions_fixed++;
        }
    }
    res->total_clusters = s->bat_entries;
    uint64_t high = 0, prev = 0;
    for (uint32_t i = 0; i < s->bat_entries; i++) {
        uint64_t off = prl_entry_sector(s, s->bat[i]) * PRL_SECTOR;
        if (!s->bat[i]) {
            prev = 0;
            continue;
        }
        const char *why = off > size ? "is outside image"
                        : off < s->meta_end ? "overlaps the header or BAT" : NULL;
        if (why) {
            fprintf(stderr, "%s cluster %" PRIu32 " %s\n", fix_err ? "Repairing" : "ERROR", i,
                    why);
            res->corruptions++;
            if (fix_err) {
                s->bat[i] = 0;
                prev = 0;
                flush_bat = true;
                res->corruptions_fixed++;
                continue;
            }
        }
        res->allocated_clusters++;
        if (off > high)
            high = off;
        if (prev && prev + s->cluster_size != off)
            res->fragmented_clusters++;
        prev = off;
    }
    if ((r = find_duplicates(n, res, fix_err, &flush_bat)) < 0)
        goto out;
    if (flush_bat) {
        /* Copies first, then the BAT that names them. */
        if ((r = vdk_flush(n->file)) < 0 ||
            (r = prl_write_bat(n, 0, s->bat_entries)) < 0 || (r = vdk_flush(n->file)) < 0)
            goto out;
        s->dirty_lo = UINT32_MAX;
        s->dirty_hi = 0;
        high = 0;
        for (uint32_t i = 0; i < s->bat_entries; i++)
            if (s->bat[i] && prl_entry_sector(s, s->bat[i]) * PRL_SECTOR > high)
                high = prl_entry_sector(s, s->bat[i]) * PRL_SECTOR;
    }
    /* qemu: the image ends after the highest cluster (vdk: and never
       before the data offset, which qemu 7.2 miscounts as leaked). */
    uint64_t data_off = fmt_le32(s->header + PRL_OFF_DATA_OFF);
    uint64_t end = high + s->cluster_size;
    if (data_off * PRL_SECTOR > end)
        end = data_off * PRL_SECTOR;
    res->image_end_offset = end;
    size = (uint64_t)vdk_get_length(n->file);
    if (size > end) {
        uint64_t count = (size - end + s->cluster_size - 1) / s->cluster_size;
        fprintf(stderr, "%s space leaked at the end of the image %" PRIu64 "\n",
                fix_leaks ? "Repairing" : "ERROR", size - end);
        res->leaks += (int)count;
        if (fix_leaks) {
            r = vdk_truncate(n->file, end, VDK_PREALLOC_OFF, true, errp);
            if (r < 0)
                goto out_locked_err;
            s->data_end = vdk_align_up(end / PRL_SECTOR, s->off_multiplier);
            res->leaks_fixed += (int)count;
        }
    }
out:
    pthread_mutex_unlock(&s->lock);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot repair the Parallels image");
    return 0;
out_locked_err:
    pthread_mutex_unlock(&s->lock);
    return r;
}
