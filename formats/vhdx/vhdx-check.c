/* SPDX-License-Identifier: MIT */
/*
 * Checking a VHDX image:
 *  - a log left by a crash: a read-write open (check -r) has replayed it
 *    (counted as a repaired corruption, as qemu does); a read-only check
 *    reports it;
 *  - BAT entries in states the format does not define, blocks or sector
 *    bitmaps that start past the end of the file (qemu's message), that
 *    overlap the headers, log, BAT or metadata, or each other: corruptions;
 *    -r all resets those entries (the data they named is lost) and writes
 *    the BAT through the log.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "formats/vhdx/vhdx.h"

struct span {
    uint64_t off, len, idx;
};

static int cmp_span(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

static bool over(uint64_t a, uint64_t al, uint64_t b, uint64_t bl)
{
    return a < b + bl && b < a + al;
}

int vhdx_check_bat(struct vdk_node *n, struct vhdx_state *s, uint64_t file_len, bool report,
                   bool fix, int *errors, int *fixed)
{
    struct span *v = malloc((size_t)s->bat_entries * sizeof(*v) + sizeof(*v));
    uint64_t cnt = 0;
    const char *what = fix ? "Repairing" : "ERROR";
    (void)n;
    if (!v)
        return -ENOMEM;
    for (uint64_t i = 0; i < s->bat_entries; i++) {
        uint64_t e = s->bat[i];
        bool sb = i % (s->chunk_ratio + 1) == s->chunk_ratio;
        unsigned st = VHDX_BAT_STATE(e);
        const char *bad = NULL;
        bool present;
        if (sb) {
            present = st == VHDX_SB_PRESENT;
            if (st != 0 && !present)
                bad = "has an undefined sector bitmap state";
            if (present && !s->has_parent)
                bad = "is a sector bitmap in an image without a parent";
        } else {
            present = st == VHDX_BLK_FULLY_PRESENT || st == VHDX_BLK_PARTIALLY_PRESENT;
            if (st == 4 || st == 5)
                bad = "has an undefined block state";
            if (st == VHDX_BLK_PARTIALLY_PRESENT && !s->has_parent)
                bad = "is partially present in an image without a parent";
        }
        uint64_t off = VHDX_BAT_OFFSET(e), len = sb ? VHDX_MiB : s->block_size;
        if (!bad && present) {
            if (off >= file_len) {
                if (report)
                    fprintf(stderr, "%s VHDX BAT entry %" PRIu64 " start offset %" PRIu64
                            " points after end of file (%" PRIu64 "). Image has probably "
                            "been truncated.\n", what, i, off, file_len);
                (*errors)++;
                goto reset;
            }
            if (off < VHDX_MiB ||
                over(off, len, s->hdr.log_offset, s->hdr.log_length) ||
                over(off, len, s->bat_region.offset, s->bat_region.length) ||
                over(off, len, s->meta_region.offset, s->meta_region.length))
                bad = "overlaps the VHDX metadata";
        }
        if (bad) {
            if (report)
                fprintf(stderr, "%s VHDX BAT entry %" PRIu64 " %s\n", what, i, bad);
            (*errors)++;
            goto reset;
        }
        if (present)
            v[cnt++] = (struct span){ off, len, i };
        continue;
reset:
        if (fix) {
            vhdx_bat_set(s, i, sb || !s->has_parent ? 0 : VHDX_BLK_ZERO);
            (*fixed)++;
        }
    }
    qsort(v, cnt, sizeof(*v), cmp_span);
    for (uint64_t k = 1, last = 0; k < cnt; k++) {
        if (v[k].off < v[last].off + v[last].len) {
            if (report)
                fprintf(stderr, "%s VHDX BAT entry %" PRIu64 " overlaps the block of entry %"
                        PRIu64 "\n", what, v[k].idx, v[last].idx);
            (*errors)++;
            if (fix) {
                bool sb = v[k].idx % (s->chunk_ratio + 1) == s->chunk_ratio;
                vhdx_bat_set(s, v[k].idx, sb || !s->has_parent ? 0 : VHDX_BLK_ZERO);
                (*fixed)++;
            }
            continue;
        }
        last = k;
    }
    free(v);
    return 0;
}

int vhdx_check(struct vdk_node *n, struct vdk_check_result *res, unsigned fix,
               struct vdk_error **errp)
{
    struct vhdx_state *s = n->opaque;
    bool repair = fix & VDK_CHECK_FIX_ERRORS;
    int64_t flen = vdk_get_length(n->file);
    if (flen < 0)
        return vdk_error_setf_errno(errp, (int)flen, "cannot get the file length");
    if (s->replayed) {
        if (s->rw) {
            fprintf(stderr, "Repairing: the VHDX log was replayed\n");
            res->corruptions_fixed++;
        } else {
            fprintf(stderr, "ERROR the VHDX log holds updates that were never applied "
                    "(replayed in memory only)\n");
            res->corruptions++;
        }
    }
    int errors = 0, fixed = 0;
    pthread_mutex_lock(&s->lock);
    int r = vhdx_check_bat(n, s, (uint64_t)flen, true, repair, &errors, &fixed);
    if (r == 0 && fixed)
        r = vhdx_bat_sync(n, s);
    pthread_mutex_unlock(&s->lock);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot check the VHDX BAT");
    res->corruptions += errors;
    res->corruptions_fixed += fixed;
    return 0;
}
