/* SPDX-License-Identifier: MIT */
/*
 * Checking a VHD: the open already refused bad checksums, bad sizes and
 * blocks outside the file, so check looks at what open tolerates:
 *  - a damaged end footer (open used the copy at offset 0), or a copy at
 *    0 that differs from the end footer: corruptions, repaired by
 *    rewriting the footer (-r all);
 *  - blocks over the footer copy, dynamic header, BAT or locator data
 *    (open takes them, as qemu does, and refuses writes into them):
 *    corruptions, repaired by clearing their BAT entries (-r all; what
 *    they read was metadata, never guest data);
 *  - blocks that overlap each other: corruptions, not repairable;
 *  - space after the last referenced block (an allocation cut short
 *    before its BAT entry was written): leaks, repaired by moving the
 *    footer back and truncating the file (-r leaks);
 *  - BAT entries past the virtual size that reference blocks (nothing
 *    can read them): leaks, repaired by clearing the entries.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/vhd/vhd.h"

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Overlapping blocks among the allocated ones; fills allocated/fragmented. */
static int check_blocks(struct vhd_state *s, struct vdk_check_result *res)
{
    uint32_t *sorted = malloc((size_t)s->bat_entries * 4 + 4);
    uint32_t n = 0;
    uint64_t span = (uint64_t)s->bitmap_size + s->block_size;
    if (!sorted)
        return -ENOMEM;
    uint32_t prev = VHD_BAT_UNUSED;
    for (uint32_t i = 0; i < s->bat_entries; i++) {
        uint32_t e = s->bat[i];
        if (e == VHD_BAT_UNUSED)
            continue;
        if (prev != VHD_BAT_UNUSED && (uint64_t)e * VHD_SECTOR != (uint64_t)prev * VHD_SECTOR + span)
            res->fragmented_clusters++;
        prev = e;
        sorted[n++] = e;
    }
    res->allocated_clusters = n;
    qsort(sorted, n, 4, cmp_u32);
    for (uint32_t i = 1; i < n; i++) {
        if ((uint64_t)sorted[i] * VHD_SECTOR < (uint64_t)sorted[i - 1] * VHD_SECTOR + span) {
            fprintf(stderr, "ERROR block at 0x%" PRIx64 " overlaps the block at 0x%" PRIx64 "\n",
                    (uint64_t)sorted[i] * VHD_SECTOR, (uint64_t)sorted[i - 1] * VHD_SECTOR);
            res->corruptions++;
        }
    }
    free(sorted);
    return 0;
}

/* Blocks over the metadata: report, and with fix clear their entries
   (written back by the caller's flush).  Called with s->lock held. */
static void check_meta_blocks(struct vhd_state *s, struct vdk_check_result *res, bool fix)
{
    for (uint32_t i = 0; s->meta_blocks && i < s->bat_entries; i++) {
        uint32_t e = s->bat[i];
        if (e == VHD_BAT_UNUSED || !vhd_block_over_meta(s, e))
            continue;
        fprintf(stderr, "%s BAT entry %" PRIu32 " (block at 0x%" PRIx64 ") overlaps the image "
                "metadata\n", fix ? "Repairing" : "ERROR", i, (uint64_t)e * VHD_SECTOR);
        if (!fix) {
            res->corruptions++;
            continue;
        }
        s->bat[i] = VHD_BAT_UNUSED;
        if (s->bat_dirty_hi == 0 || i < s->bat_dirty_lo)
            s->bat_dirty_lo = i;
        if (i + 1 > s->bat_dirty_hi)
            s->bat_dirty_hi = i + 1;
        s->meta_blocks--;
        res->corruptions_fixed++;
    }
}

/*
 * BAT entries in [bat_entries, max_entries) that are not unused: count
 * them, and with fix clear them on disk.  Returns the count or -errno.
 */
static int check_bat_tail(struct vdk_node *n, bool fix)
{
    struct vhd_state *s = n->opaque;
    uint64_t cnt = s->hdr.max_entries - s->bat_entries;
    if (cnt > VHD_MAX_BAT_ENTRIES)
        cnt = VHD_MAX_BAT_ENTRIES;
    if (!cnt)
        return 0;
    uint64_t off = s->hdr.table_offset + (uint64_t)s->bat_entries * 4;
    uint8_t *tail = malloc(cnt * 4);
    if (!tail)
        return -ENOMEM;
    int r = vdk_pread(n->file, tail, cnt * 4, off, 0);
    int used = 0;
    for (uint64_t i = 0; r == 0 && i < cnt; i++) {
        if (vhd_be32(tail + 4 * i) == VHD_BAT_UNUSED)
            continue;
        fprintf(stderr, "Leaked block: BAT entry %" PRIu64 " lies past the virtual size\n",
                s->bat_entries + i);
        used++;
    }
    if (r == 0 && used && fix) {
        memset(tail, 0xff, cnt * 4);
        r = vdk_pwrite(n->file, tail, cnt * 4, off, 0);
    }
    free(tail);
    return r < 0 ? r : used;
}

int vhd_check(struct vdk_node *n, struct vdk_check_result *res, unsigned fix,
              struct vdk_error **errp)
{
    struct vhd_state *s = n->opaque;
    uint8_t copy[VHD_FOOTER_SIZE];
    int r;
    if (s->footer.type == VHD_TYPE_FIXED) {
        res->image_end_offset = n->size + VHD_FOOTER_SIZE;
        return 0;
    }
    /* Repairs work on the BAT as the file holds it. */
    if (fix && (r = vhd_flush(n)) < 0)
        return vdk_error_setf_errno(errp, r, "cannot write back the VHD BAT");
    pthread_mutex_lock(&s->lock);
    check_meta_blocks(s, res, fix & VDK_CHECK_FIX_ERRORS);
    pthread_mutex_unlock(&s->lock);
    if (res->corruptions_fixed && (r = vhd_flush(n)) < 0)
        return vdk_error_setf_errno(errp, r, "cannot write back the VHD BAT");
    bool footer_bad = s->footer_from_copy;
    bool copy_bad = false;
    if ((r = vdk_pread(n->file, copy, sizeof(copy), 0, 0)) < 0)
        return vdk_error_setf_errno(errp, r, "cannot read the VHD footer copy");
    if (memcmp(copy, s->footer_raw, VHD_FOOTER_SIZE) != 0)
        copy_bad = true;
    if (footer_bad)
        fprintf(stderr, "ERROR the footer at the end of the image is damaged\n");
    if (copy_bad)
        fprintf(stderr, "ERROR the footer copy at offset 0 differs from the footer\n");
    if ((r = check_blocks(s, res)) < 0)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    res->total_clusters = s->bat_entries;

    /* Whole blocks' worth of unreferenced space before the footer. */
    uint64_t span = (uint64_t)s->bitmap_size + s->block_size;
    uint64_t leaked = s->alloc_off > s->used_end ? s->alloc_off - s->used_end : 0;
    int leaks = (int)((leaked + span - 1) / span);
    if (leaks)
        fprintf(stderr, "Leaked space: %" PRIu64 " bytes after the last block\n", leaked);

    bool fix_errors = (fix & VDK_CHECK_FIX_ERRORS) && (footer_bad || copy_bad);
    bool fix_leaks = (fix & VDK_CHECK_FIX_LEAKS) && leaks;
    if (fix_leaks || fix_errors) {
        pthread_mutex_lock(&s->lock);
        uint64_t foot = fix_leaks ? s->used_end : s->alloc_off;
        r = vdk_pwrite(n->file, s->footer_raw, VHD_FOOTER_SIZE, foot, 0);
        if (r == 0 && copy_bad && (fix & VDK_CHECK_FIX_ERRORS))
            r = vdk_pwrite(n->file, s->footer_raw, VHD_FOOTER_SIZE, 0, 0);
        if (r == 0)
            r = vdk_flush(n->file);
        if (r == 0 && foot + VHD_FOOTER_SIZE < s->file_len)
            r = vdk_truncate(n->file, foot + VHD_FOOTER_SIZE, VDK_PREALLOC_OFF, true, NULL);
        if (r == 0) {
            s->alloc_off = foot;
            s->file_len = foot + VHD_FOOTER_SIZE;
            s->footer_from_copy = false;
            if (copy_bad && (fix & VDK_CHECK_FIX_ERRORS))
                s->copy_differs = false;
            if (fix_leaks)
                res->leaks_fixed = leaks;
            else
                res->leaks = leaks;
            if (fix & VDK_CHECK_FIX_ERRORS)
                res->corruptions_fixed += footer_bad + copy_bad;
            else
                res->corruptions += footer_bad + copy_bad;
        }
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
            return vdk_error_setf_errno(errp, r, "cannot repair the VHD footer");
    } else {
        res->leaks = leaks;
        res->corruptions += footer_bad + copy_bad;
    }
    bool fix_tail = fix & VDK_CHECK_FIX_LEAKS;
    if ((r = check_bat_tail(n, fix_tail)) < 0)
        return vdk_error_setf_errno(errp, r, "cannot check the VHD BAT past the virtual size");
    if (fix_tail)
        res->leaks_fixed += r;
    else
        res->leaks += r;
    res->image_end_offset = s->alloc_off + VHD_FOOTER_SIZE;
    return 0;
}
