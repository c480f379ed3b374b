/* SPDX-License-Identifier: MIT */
/*
 * Persistent dirty bitmaps: the public entry points over the driver
 * callbacks (qcow2 is the one format that keeps them), and merge, which
 * works across nodes and granularities through status and mark.
 */
#include <errno.h>
#include <stdlib.h>

#include "block/driver.h"

int vdk_bitmap_list(struct vdk_node *n, struct vdk_bitmap_info **list, int *count,
                    struct vdk_error **errp)
{
    *list = NULL;
    *count = 0;
    if (!n->drv->bitmap_list)
        return vdk_error_setf(errp, ENOTSUP, "Format driver '%s' does not support bitmaps",
                              n->drv->name);
    return n->drv->bitmap_list(n, list, count, errp);
}

void vdk_bitmap_list_free(struct vdk_bitmap_info *list, int count)
{
    for (int i = 0; list && i < count; i++)
        free(list[i].name);
    free(list);
}

int vdk_bitmap_op(struct vdk_node *n, enum vdk_bitmap_op op, const char *name,
                  uint64_t granularity, struct vdk_error **errp)
{
    if (!n->drv->bitmap_op) {
        if (op == VDK_BITMAP_ADD || op == VDK_BITMAP_ADD_DISABLED)
            return vdk_error_setf(errp, ENOTSUP, "Can't store persistent bitmaps to %s: "
                                  "Operation not supported", n->filename);
        return vdk_error_setf(errp, ENOENT, "Dirty bitmap '%s' not found", name);
    }
    if (n->read_only)
        return vdk_error_setf(errp, EPERM, "image '%s' is read-only", n->filename);
    return n->drv->bitmap_op(n, op, name, granularity, errp);
}

int vdk_bitmap_status(struct vdk_node *n, const char *name, uint64_t offset,
                      uint64_t bytes, uint64_t *pnum)
{
    if (!n->drv->bitmap_status)
        return -ENOENT;
    return n->drv->bitmap_status(n, name, offset, bytes, pnum);
}

int vdk_bitmap_merge(struct vdk_node *n, const char *name, struct vdk_node *src,
                     const char *src_name, struct vdk_error **errp)
{
    if (!n->drv->bitmap_mark)
        return vdk_error_setf(errp, ENOENT, "Dirty bitmap '%s' not found", name);
    if (n->read_only)
        return vdk_error_setf(errp, EPERM, "image '%s' is read-only", n->filename);
    uint64_t pnum;
    /* Probe both names before the first change. */
    int r = n->drv->bitmap_status ? n->drv->bitmap_status(n, name, 0, 0, &pnum) : -ENOENT;
    if (r == -ENOENT)
        return vdk_error_setf(errp, ENOENT, "Dirty bitmap '%s' not found", name);
    if (r == -EINVAL)
        return vdk_error_setf(errp, EINVAL, "Bitmap '%s' is inconsistent and cannot be "
                              "used", name);
    r = vdk_bitmap_status(src, src_name, 0, 0, &pnum);
    if (r == -ENOENT)
        return vdk_error_setf(errp, ENOENT, "Dirty bitmap '%s' not found", src_name);
    if (r == -EINVAL)
        return vdk_error_setf(errp, EINVAL, "Bitmap '%s' is inconsistent and cannot be "
                              "used", src_name);
    int64_t len = vdk_get_length(src);
    if (len < 0)
        return vdk_error_setf_errno(errp, (int)len, "could not get the size of '%s'",
                                    src->filename);
    int64_t dlen = vdk_get_length(n);
    if (dlen < 0)
        return vdk_error_setf_errno(errp, (int)dlen, "could not get the size of '%s'",
                                    n->filename);
    /* Bitmaps of differently sized images merge over the common part. */
    uint64_t end = (uint64_t)(len < dlen ? len : dlen);
    for (uint64_t off = 0; off < end; off += pnum) {
        r = vdk_bitmap_status(src, src_name, off, end - off, &pnum);
        if (r < 0)
            return vdk_error_setf_errno(errp, r, "could not read bitmap '%s'", src_name);
        if (pnum == 0)
            break;
        if (r == 1 && (r = n->drv->bitmap_mark(n, name, off, pnum)) < 0)
            return vdk_error_setf_errno(errp, r, "could not merge into bitmap '%s'", name);
    }
    return 0;
}
