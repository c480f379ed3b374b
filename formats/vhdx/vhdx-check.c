/* SPDX-License-Identifier: MIT */
/*
 * Checking a VHDX image:
 *  - a log left by a crash: a read-write open (check -r) has replayed it
 *    (counted as a repaired corruption, as qemu does); a read-only check
 *    reports it;
 *  - BAT entries whose block starts or ends past the end of the file, or
 *    overlaps the log, BAT or metadata region: corruptions, reported in
 *    qemu-img 7.2's words ("prog: VHDX BAT entry N start offset ...",
 *    "prog: VHDX region A-B overlaps with region C-D");
 *  - beyond qemu 7.2, deliberately (docs/vdk-vm-formats.7): blocks over
 *    the headers (qemu registers no region there, so a write to such a
 *    block overwrites them), blocks over each other (a write through one
 *    entry changes the other's data), and entries in states the format
 *    does not define or partially present ones without a parent (reads
 *    of them fail in qemu; vdk refuses to open the image): corruptions.
 * -r all (qemu-img counts only) resets those entries (the data they named
 * is lost) and writes the BAT through the log.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "formats/vhdx/vhdx.h"

struct span {
    uint64_t off, len, idx;
};

static int cmp_span(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    if (x->off != y->off)
        return x->off < y->off ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static bool over(uint64_t a, uint64_t al, uint64_t b, uint64_t bl)
{
    return a < b + bl && b < a + al;
}

/* qemu reports BAT damage with error_report(): "prog: message". */
static void bat_msg(bool fix, const char *fmt, ...) VDK_PRINTF(2, 3);
static void bat_msg(bool fix, const char *fmt, ...)
{
    va_list ap;
    if (fix)
        fputs("Repairing ", stderr);
    else
        fprintf(stderr, "%s: ", program_invocation_short_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* The region a block at [off, off + len) overlaps, in the order qemu
   looks (the last region it registered first); false if none. */
static bool over_region(const struct vhdx_state *s, uint64_t off, uint64_t len,
                        uint64_t *r_off, uint64_t *r_len)
{
    const uint64_t regions[][2] = {
        { s->meta_region.offset, s->meta_region.length },
        { s->bat_region.offset, s->bat_region.length },
        { s->hdr.log_offset, s->hdr.log_length },
        { 0, VHDX_MiB }, /* the headers: vdk only */
    };
    for (size_t i = 0; i < sizeof(regions) / sizeof(regions[0]); i++) {
        if (over(off, len, regions[i][0], regions[i][1])) {
            *r_off = regions[i][0];
            *r_len = regions[i][1];
            return true;
        }
    }
    return false;
}

int vhdx_check_bat(struct vdk_node *n, struct vhdx_state *s, uint64_t file_len, bool report,
                   bool fix, int *errors, int *fixed)
{
    struct span *v = malloc((size_t)s->bat_entries * sizeof(*v) + sizeof(*v));
    uint64_t cnt = 0;
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
            if (st == 4)
                bad = "has an undefined block state";
            if (st == VHDX_BLK_PARTIALLY_PRESENT && !s->has_parent)
                bad = "is partially present in an image without a parent";
        }
        uint64_t off = VHDX_BAT_OFFSET(e), len = sb ? VHDX_MiB : s->block_size;
        if (!bad && present) {
            /* qemu allows the image's last block to end early */
            uint64_t guest = (i - i / (s->chunk_ratio + 1)) * s->block_size;
            uint64_t need = len;
            if (!sb && guest < s->disk_size && s->disk_size - guest < len)
                need = s->disk_size - guest;
            uint64_t r_off, r_len;
            if (off >= file_len) {
                if (report)
                    bat_msg(fix, "VHDX BAT entry %" PRIu64 " start offset %" PRIu64 " points "
                            "after end of file (%" PRIu64 "). Image has probably been "
                            "truncated.", i, off, file_len);
                (*errors)++;
                goto reset;
            }
            if (off + need > file_len) {
                if (report)
                    bat_msg(fix, "VHDX BAT entry %" PRIu64 " end offset %" PRIu64 " points "
                            "after end of file (%" PRIu64 "). Image has probably been "
                            "truncated.", i, off + need - 1, file_len);
                (*errors)++;
                goto reset;
            }
            if (over_region(s, off, len, &r_off, &r_len)) {
                if (report)
                    bat_msg(fix, "VHDX region %" PRIu64 "-%" PRIu64 " overlaps with region %"
                            PRIu64 "-%" PRIu64, off, off + len, r_off, r_off + r_len);
                (*errors)++;
                goto reset;
            }
        }
        if (bad) {
            if (report)
                bat_msg(fix, "VHDX BAT entry %" PRIu64 " %s", i, bad);
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
                bat_msg(fix, "VHDX BAT entry %" PRIu64 " overlaps the block of entry %" PRIu64,
                        v[k].idx, v[last].idx);
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
            /* counted, silently, in every pass, as qemu does */
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
