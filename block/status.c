/* SPDX-License-Identifier: MIT */
/*
 * Block status: what one layer says about a range (DATA, ZERO,
 * OFFSET_VALID, ALLOCATED), and the merged answer through a backing chain.
 */
#include <errno.h>

#include "block/driver.h"

int vdk_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                     uint64_t *pnum, uint64_t *map, struct vdk_node **file)
{
    uint64_t lmap = 0, lpnum = 0;
    struct vdk_node *lfile = NULL;
    int ret;

    if (offset > INT64_MAX || bytes > INT64_MAX - offset || bytes == 0)
        return -EINVAL;
    int64_t len = vdk_get_length(n);
    if (len < 0)
        return (int)len;
    if (offset >= (uint64_t)len) {
        if (!n->growable)
            return -EINVAL;
        *pnum = bytes; /* past the end of a file: reads as zeros */
        return VDK_BS_ZERO | VDK_BS_EOF | VDK_BS_ALLOCATED;
    }
    bytes = vdk_min_u64(bytes, (uint64_t)len - offset);

    if (n->drv->block_status) {
        ret = n->drv->block_status(n, offset, bytes, &lpnum, &lmap, &lfile);
        if (ret < 0)
            return ret;
        if (lpnum == 0 || lpnum > bytes)
            return -EIO; /* driver bug: never loop forever on it */
        /* A protocol holds the bytes as they are. */
        if (n->drv->kind == VDK_DRV_PROTOCOL && (ret & VDK_BS_OFFSET_VALID))
            ret |= VDK_BS_PLAIN;
    } else if (n->drv->kind == VDK_DRV_PROTOCOL || !n->file) {
        lpnum = bytes;
        lmap = offset;
        lfile = n;
        ret = VDK_BS_DATA | VDK_BS_OFFSET_VALID | VDK_BS_PLAIN;
    } else {
        lpnum = bytes;
        lmap = offset;
        lfile = n->file;
        ret = VDK_BS_RECURSE | VDK_BS_OFFSET_VALID;
    }

    if ((ret & VDK_BS_RECURSE) && lfile && lfile != n) {
        /* Passthrough (raw, filters): the answer is the child's, at the
           mapped offset, through the child's own backing chain. */
        uint64_t p2 = 0, m2 = 0;
        struct vdk_node *f2 = NULL;
        int r2 = vdk_block_status_above(lfile, NULL, lmap, lpnum, &p2, &m2, &f2, NULL);
        if (r2 < 0)
            return r2;
        /* A zero run that reaches the child's end goes on to the end of
           the request: a raw node rounded up to whole sectors reads zeros
           past its file's end, and one run keeps copies of it sparse. */
        if ((r2 & VDK_BS_ZERO) && !(r2 & VDK_BS_DATA) && p2 < lpnum) {
            /* asked only then: a file's length costs a system call */
            int64_t clen = vdk_get_length(lfile);
            if (clen >= 0 && lmap + p2 >= (uint64_t)clen)
                p2 = lpnum;
        }
        lpnum = p2;
        lmap = m2;
        lfile = f2;
        /* The child's bytes are the guest's only if this layer passes
           them through as they are (raw yes, LUKS no). */
        unsigned keep = (ret & VDK_BS_PLAIN) ? ~0u : ~(unsigned)VDK_BS_PLAIN;
        ret = ((r2 & ~(VDK_BS_EOF | VDK_BS_RECURSE)) & keep) | VDK_BS_ALLOCATED;
    } else if ((ret & (VDK_BS_DATA | VDK_BS_ZERO | VDK_BS_OFFSET_VALID | VDK_BS_PEEK_HOLES)) ==
                   (VDK_BS_DATA | VDK_BS_OFFSET_VALID | VDK_BS_PEEK_HOLES) &&
               lfile && lfile != n && lfile->drv->kind == VDK_DRV_PROTOCOL) {
        /* Data mapped onto a hole of the file reads as zeros.  Only asked
           where the driver expects holes, as qemu does: a hole lookup per
           extent is costly, and on other images (fallocated ones) qemu
           reports the data as data. */
        uint64_t p2 = 0;
        int r2 = vdk_block_status(lfile, lmap, lpnum, &p2, NULL, NULL);
        if (r2 >= 0 && (r2 & VDK_BS_ZERO) && !(r2 & VDK_BS_DATA)) {
            ret |= VDK_BS_ZERO;
            lpnum = p2;
        } else if (r2 >= 0 && p2 < lpnum) {
            lpnum = p2;
        }
    }
    ret &= ~(VDK_BS_RECURSE | VDK_BS_PEEK_HOLES);

    if (ret & (VDK_BS_DATA | VDK_BS_ZERO))
        ret |= VDK_BS_ALLOCATED;
    if (!(ret & VDK_BS_ALLOCATED) && n->drv->kind == VDK_DRV_FORMAT) {
        if (!n->backing) {
            ret |= VDK_BS_ZERO;
        } else {
            int64_t blen = vdk_get_length(n->backing);
            if (blen >= 0 && offset >= (uint64_t)blen)
                ret |= VDK_BS_ZERO;
        }
    }
    if (offset + lpnum == (uint64_t)len)
        ret |= VDK_BS_EOF;
    if (!(ret & VDK_BS_OFFSET_VALID))
        ret &= ~VDK_BS_PLAIN;
    *pnum = lpnum;
    if (map)
        *map = (ret & VDK_BS_OFFSET_VALID) ? lmap : 0;
    if (file)
        *file = (ret & VDK_BS_OFFSET_VALID) ? lfile : NULL;
    return ret;
}

int vdk_block_status_above(struct vdk_node *n, struct vdk_node *base,
                           uint64_t offset, uint64_t bytes, uint64_t *pnum,
                           uint64_t *map, struct vdk_node **file, int *depth)
{
    int d = 0;
    struct vdk_node *cur = n;
    int ret = 0;
    uint64_t p = bytes;
    if (map)
        *map = 0;
    if (file)
        *file = NULL;
    while (cur && cur != base) {
        ret = vdk_block_status(cur, offset, bytes, &p, map, file);
        if (ret < 0)
            return ret;
        /* Data, zeros, or the bottom of the chain: this layer decides. */
        if (ret & (VDK_BS_DATA | VDK_BS_ZERO))
            break;
        bytes = p; /* the next layer answers for no more than this one */
        if (!cur->backing || cur->backing == base) {
            ret = 0;
            break;
        }
        /* Beyond the backing file's end reads as zeros (handled above by
           the ZERO bit); otherwise ask the next layer. */
        cur = cur->backing;
        d++;
    }
    if (!cur || cur == base)
        ret = 0;
    *pnum = p;
    if (depth)
        *depth = d;
    return ret;
}
