/* SPDX-License-Identifier: MIT */
/*
 * vdk-img convert --bitmaps [--skip-broken-bitmaps]: copy the source's
 * persistent dirty bitmaps (name, granularity, enabled state, dirty bits)
 * into the target once the data is copied, with qemu-img 7.2's checks and
 * messages.  Kept apart from cmd-convert.c, which only calls in here.
 */
#include <errno.h>
#include <string.h>

#include "convert.h"

int cvt_bitmaps_check_args(bool bitmaps, bool skip_broken, size_t nsrc)
{
    if (skip_broken && !bitmaps)
        return img_error("Use of --skip-broken-bitmaps requires --bitmaps");
    if (bitmaps && nsrc > 1)
        return img_error("Copying bitmaps only possible with single source");
    return -1;
}

int cvt_bitmaps_check_source(struct vdk_node *src, bool skip_broken)
{
    struct vdk_bitmap_info *l = NULL;
    struct vdk_error *err = NULL;
    int cnt = 0, ret = -1;
    int r = vdk_bitmap_list(src, &l, &cnt, &err);
    if (r == -ENOTSUP) {
        vdk_error_free(err);
        return img_error("Source lacks bitmap support");
    }
    if (r < 0)
        return img_report(err, "Could not list the source's bitmaps");
    for (int i = 0; i < cnt && ret < 0 && !skip_broken; i++) {
        if (l[i].in_use) {
            ret = img_error("Cannot copy inconsistent bitmap '%s'", l[i].name);
            fprintf(stderr, "Try --skip-broken-bitmaps, or use 'vdk-img bitmap --remove' "
                    "to delete it\n");
        }
    }
    vdk_bitmap_list_free(l, cnt);
    return ret;
}

int cvt_bitmaps_check_target(struct vdk_node *tgt)
{
    struct vdk_bitmap_info *l = NULL;
    struct vdk_error *err = NULL;
    int cnt = 0;
    if (vdk_bitmap_list(tgt, &l, &cnt, &err) < 0) {
        vdk_error_free(err);
        return img_error("Format driver '%s' does not support bitmaps",
                         vdk_node_driver_name(tgt));
    }
    vdk_bitmap_list_free(l, cnt);
    return -1;
}

int cvt_bitmaps_copy(struct vdk_node *src, struct vdk_node *tgt, bool skip_broken)
{
    struct vdk_bitmap_info *l = NULL;
    struct vdk_error *err = NULL;
    int cnt = 0, ret = 0;
    if (vdk_bitmap_list(src, &l, &cnt, &err) < 0)
        return img_report(err, "Could not list the source's bitmaps");
    for (int i = 0; i < cnt && ret == 0; i++) {
        const char *name = l[i].name;
        if (l[i].in_use) {
            if (skip_broken)
                vdk_warn("Skipping inconsistent bitmap '%s'", name);
            continue;
        }
        if (vdk_bitmap_op(tgt, l[i].enabled ? VDK_BITMAP_ADD : VDK_BITMAP_ADD_DISABLED,
                          name, l[i].granularity, &err) < 0) {
            ret = img_report(err, "Failed to create bitmap %s", name);
            break;
        }
        if (vdk_bitmap_merge(tgt, name, src, name, &err) < 0) {
            ret = img_report(err, "Failed to populate bitmap %s", name);
            vdk_bitmap_op(tgt, VDK_BITMAP_REMOVE, name, 0, NULL);
        }
    }
    vdk_bitmap_list_free(l, cnt);
    return ret;
}
