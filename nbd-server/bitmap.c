/* SPDX-License-Identifier: MIT */
/*
 * The qemu:dirty-bitmap:NAME metadata contexts (vdk-nbd -B NAME, or
 * bitmap=NAME in --export): the names an export offers, their context
 * queries and ids, and their block-status extents (flag 1: dirty), as
 * qemu-nbd sends them.  The bitmaps are the image's persistent ones
 * (vdk_bitmap_status); a writable export keeps marking the enabled ones.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nbd-server/server.h"

#define CTX_BITMAP "qemu:dirty-bitmap:"

int nbd_export_add_bitmap(struct nbd_export *e, const char *name)
{
    if (e->n_bitmaps >= NBD_MAX_BITMAPS)
        return -E2BIG;
    for (size_t i = 0; i < e->n_bitmaps; i++)
        if (strcmp(e->bitmaps[i], name) == 0)
            return 0;
    char **b = realloc(e->bitmaps, (e->n_bitmaps + 1) * sizeof(*b));
    if (!b)
        return -ENOMEM;
    e->bitmaps = b;
    if (!(b[e->n_bitmaps] = strdup(name)))
        return -ENOMEM;
    e->n_bitmaps++;
    return 0;
}

void nbd_export_free_bitmaps(struct nbd_export *e)
{
    for (size_t i = 0; i < e->n_bitmaps; i++)
        free(e->bitmaps[i]);
    free(e->bitmaps);
    e->bitmaps = NULL;
    e->n_bitmaps = 0;
}

int nbd_export_check_bitmaps(struct nbd_export *e, struct vdk_error **errp)
{
    /* Under -s the image is the throwaway overlay's backing node. */
    e->bitmap_node = e->node;
    if (e->snapshot && e->n_bitmaps && vdk_node_backing(e->node))
        e->bitmap_node = vdk_node_backing(e->node);
    for (size_t i = 0; i < e->n_bitmaps; i++) {
        uint64_t pnum;
        int r = vdk_bitmap_status(e->bitmap_node, e->bitmaps[i], 0, 0, &pnum);
        if (r == -ENOENT)
            return vdk_error_setf(errp, ENOENT, "Bitmap '%s' is not found", e->bitmaps[i]);
        if (r == -EINVAL)
            return vdk_error_setf(errp, EINVAL, "Bitmap '%s' is inconsistent and cannot be "
                                  "used", e->bitmaps[i]);
        if (r < 0)
            return vdk_error_setf_errno(errp, r, "could not read bitmap '%s'",
                                        e->bitmaps[i]);
    }
    return 0;
}

uint64_t nbd_meta_bitmap_query(const struct nbd_export *e, const char *q, bool list)
{
    if (!e)
        return 0;
    uint64_t all = e->n_bitmaps >= 64 ? ~0ull : (1ull << e->n_bitmaps) - 1;
    if (list && (strcmp(q, "qemu:") == 0 || strcmp(q, CTX_BITMAP) == 0))
        return all;
    if (strncmp(q, CTX_BITMAP, strlen(CTX_BITMAP)) != 0)
        return 0;
    for (size_t i = 0; i < e->n_bitmaps; i++)
        if (strcmp(q + strlen(CTX_BITMAP), e->bitmaps[i]) == 0)
            return 1ull << i;
    return 0;
}

int nbd_meta_bitmap_send(const struct nbd_export *e, uint64_t mask,
                         int (*send)(void *ctx, uint32_t id, const char *name), void *ctx)
{
    /* qemu-nbd lists its -B bitmaps last first. */
    for (size_t i = e ? e->n_bitmaps : 0; i-- > 0;) {
        if (!(mask & (1ull << i)))
            continue;
        char name[sizeof(CTX_BITMAP) + NBD_MAX_STRING];
        snprintf(name, sizeof(name), CTX_BITMAP "%s", e->bitmaps[i]);
        int r = send(ctx, NBD_META_ID_BITMAP0 + (uint32_t)i, name);
        if (r < 0)
            return r;
    }
    return 0;
}

int nbd_bitmap_extents(struct nbd_export *e, size_t idx, uint64_t off, uint64_t len,
                       int max, struct nbd_block_descriptor *d)
{
    int k = 0;
    while (len) {
        uint64_t pnum = 0;
        int r = vdk_bitmap_status(e->bitmap_node, e->bitmaps[idx], off, len, &pnum);
        if (r < 0)
            return r == -ENOENT || r == -EINVAL ? -EIO : r;
        if (pnum == 0 || pnum > len)
            return -EIO;
        uint32_t v = r ? NBD_STATE_DIRTY : 0;
        pnum = nbd_extent_push(d, &k, max, pnum, v);
        if (pnum == 0)
            break;
        off += pnum;
        len -= pnum;
    }
    return k;
}
