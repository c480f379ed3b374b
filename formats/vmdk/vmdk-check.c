/* SPDX-License-Identifier: MIT */
/*
 * check, as qemu-img 7.2 checks VMDK: the grain table entries of every
 * sparse extent are walked in guest order and the first one that points
 * past the end of its file stops the check ("ERROR: cluster offset for
 * sector N points after EOF", then "Check failed: Invalid argument",
 * exit 1, as qemu).  qemu looks at nothing else.  Beyond it, on purpose,
 * a grain over the header, descriptor or tables is a corruption (exit 2;
 * qemu reads it and a write through it overwrites the metadata, which vdk
 * refuses).  vdk also warns
 * (stderr, exit code unchanged) about a redundant grain table that
 * differs from its primary one (qemu and vdk read only the primary ones
 * and write new entries to both, so the difference harms no read) and about
 * compressed grains that do not decode (their reads fail in both).
 * Repair (-r all; qemu-img has none for VMDK and exits 63) rewrites a
 * redundant grain table that differs from its primary; entries past the
 * end of the file are reported, not guessed at.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/vmdk/vmdk.h"

/* Only errors are counted: qemu-img reports no cluster statistics for
   VMDK, and neither does vdk, so the outputs match. */
static int check_extent(struct vmdk_extent *e, struct vdk_check_result *res, unsigned fix)
{
    uint64_t grains = (e->length + e->grain - 1) / e->grain;
    size_t gt_bytes = (size_t)e->gtes * 4;
    uint8_t *a = malloc(gt_bytes), *b = malloc(gt_bytes);
    if (!a || !b) {
        free(a);
        free(b);
        return -ENOMEM;
    }
    /* The redundant tables should hold what the primary ones hold. */
    for (uint32_t i = 0; e->rgd && i < e->gd_entries; i++) {
        if (!e->gd[i] && !e->rgd[i])
            continue;
        bool same = e->gd[i] && e->rgd[i] &&
                    vdk_pread(e->file, a, gt_bytes, (uint64_t)e->gd[i] * VMDK_SECTOR, 0) == 0 &&
                    vdk_pread(e->file, b, gt_bytes, (uint64_t)e->rgd[i] * VMDK_SECTOR, 0) == 0 &&
                    memcmp(a, b, gt_bytes) == 0;
        if (same)
            continue;
        if ((fix & VDK_CHECK_FIX_ERRORS) && e->gd[i] && e->rgd[i] &&
            vdk_pwrite(e->file, a, gt_bytes, (uint64_t)e->rgd[i] * VMDK_SECTOR, 0) == 0) {
            fprintf(stderr, "Repairing redundant grain table %" PRIu32 " of '%s', which "
                    "differed from the primary one\n", i, e->filename);
            res->corruptions_fixed++;
            continue;
        }
        vdk_warn("redundant grain table %" PRIu32 " of '%s' differs from the primary one "
                 "(reads use the primary one; 'check -r all' rewrites it)", i, e->filename);
    }
    free(a);
    free(b);
    uint8_t *tmp = e->compressed ? malloc(e->grain) : NULL;
    if (e->compressed && !tmp)
        return -ENOMEM;
    int r = 0;
    for (uint64_t g = 0; g < grains; g++) {
        uint32_t gte;
        r = vmdk_gte_get(e, g, &gte);
        if (r == -ERANGE || (r == 0 && gte > 1 && (uint64_t)gte * VMDK_SECTOR >= e->file_len)) {
            fprintf(stderr, "ERROR: cluster offset for sector %" PRIu64 " points after EOF\n",
                    (e->start + g * e->grain) / VMDK_SECTOR);
            res->corruptions++;
            r = -EINVAL; /* qemu stops at the first one */
            break;
        }
        if (r < 0) {
            res->check_errors++;
            r = 0;
            continue;
        }
        if (gte == 0 || (gte == 1 && e->zeroed_grain))
            continue;
        if (vmdk_grain_over_meta(e, gte)) {
            /* beyond qemu (exit 0 there): its writes would overwrite the
               header, descriptor or tables */
            fprintf(stderr, "ERROR: grain for sector %" PRIu64 " lies over the VMDK metadata\n",
                    (e->start + g * e->grain) / VMDK_SECTOR);
            res->corruptions++;
        }
        if (e->compressed && vmdk_cgrain_read(e, g, gte, tmp) < 0)
            vdk_warn("compressed grain for sector %" PRIu64 " of '%s' is damaged",
                     (e->start + g * e->grain) / VMDK_SECTOR, e->filename);
    }
    free(tmp);
    return r;
}

/* seSparse (read-only): every directory and table entry well formed and
   inside its area and the file. */
static void check_se_extent(struct vmdk_extent *e, struct vdk_check_result *res)
{
    uint64_t grains = (e->length + e->grain - 1) / e->grain, sec;
    for (uint64_t g = 0; g < grains; g++) {
        /* a directory entry without a table: skip its grains at once */
        if (g / e->gtes < e->gd_entries && !e->se_gd[g / e->gtes]) {
            g = (g / e->gtes + 1) * e->gtes - 1;
            continue;
        }
        int r = vmdk_se_grain_find(e, g, &sec);
        bool table = g / e->gtes < e->gd_entries && !e->se_gt[g / e->gtes];
        if (r == -EINVAL || r == -ERANGE) {
            fprintf(stderr, "ERROR: %s %s for sector %" PRIu64 "\n",
                    table ? "grain directory entry" : "grain table entry",
                    r == -EINVAL ? "is malformed" : "points past the end of the file",
                    (e->start + g * e->grain) / VMDK_SECTOR);
            res->corruptions++;
            if (table) /* the table itself is bad: once for all its grains */
                g = (g / e->gtes + 1) * e->gtes - 1;
        } else if (r < 0) {
            res->check_errors++;
        }
    }
}

int vmdk_check(struct vdk_node *n, struct vdk_check_result *res, unsigned fix,
               struct vdk_error **errp)
{
    struct vmdk_state *s = n->opaque;
    int r = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_ext && r == 0; i++) {
        struct vmdk_extent *e = &s->ext[i];
        if (e->type == VMDK_EXT_SPARSE || e->type == VMDK_EXT_VMFSSPARSE)
            r = check_extent(e, res, fix);
        else if (e->sesparse)
            check_se_extent(e, res);
    }
    pthread_mutex_unlock(&s->lock);
    if (r == -EINVAL)
        return vdk_error_setf(errp, EINVAL, "a grain of '%s' lies past the end of its file",
                              n->filename);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot check '%s'", n->filename);
    return 0;
}
