/* SPDX-License-Identifier: MIT */
/*
 * The node graph: a node's life (new, references, close, free) and what
 * can be asked of it.  Opening images is node.c's; filters that build
 * nodes by hand (the overlay) use the lifecycle calls here, so neither
 * needs the other.
 */
#include <stdlib.h>
#include <string.h>

#include "block/driver.h"

struct vdk_node *vdk_node_new_internal(const struct vdk_driver *drv, const char *filename)
{
    struct vdk_node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->drv = drv;
    if (drv->state_size && !(n->opaque = calloc(1, drv->state_size))) {
        free(n);
        return NULL;
    }
    n->filename = filename ? strdup(filename) : NULL;
    n->limits.request_alignment = 1;
    atomic_init(&n->refcnt, 1);
    pthread_mutex_init(&n->track_lock, NULL);
    pthread_mutex_init(&n->sector0_lock, NULL);
    pthread_cond_init(&n->track_cond, NULL);
    return n;
}

void vdk_node_free_internal(struct vdk_node *n)
{
    if (n->backing)
        vdk_node_unref(n->backing);
    if (n->file)
        vdk_node_unref(n->file);
    pthread_mutex_destroy(&n->track_lock);
    pthread_mutex_destroy(&n->sector0_lock);
    pthread_cond_destroy(&n->track_cond);
    free(n->opaque);
    free(n->filename);
    free(n->display_name);
    free(n->backing_file);
    free(n->backing_fmt);
    free(n->full_backing_file);
    free(n);
}

void vdk_node_ref(struct vdk_node *n)
{
    if (n)
        atomic_fetch_add(&n->refcnt, 1);
}

void vdk_node_unref(struct vdk_node *n)
{
    if (!n || atomic_fetch_sub(&n->refcnt, 1) != 1)
        return;
    if (n->drv->close)
        n->drv->close(n);
    vdk_node_free_internal(n);
}

int vdk_close(struct vdk_node *n)
{
    if (!n)
        return 0;
    int r = 0;
    bool last = atomic_load(&n->refcnt) == 1 && !n->read_only &&
                !(n->open_flags & VDK_O_NO_FLUSH_ON_CLOSE);
    /* What the driver keeps in memory until the close (qcow2's dirty
       bitmaps, stored at close even when opened unsafe) is written first,
       so that the caller learns when that fails; the driver's close could
       only warn. */
    if (last && n->drv->inactivate)
        r = n->drv->inactivate(n);
    if (last && !(n->open_flags & VDK_O_UNSAFE)) {
        int r2 = vdk_flush(n);
        if (r == 0)
            r = r2;
    }
    vdk_node_unref(n);
    return r;
}

/* ---- inspection ---- */

const char *vdk_node_driver_name(const struct vdk_node *n) { return n->drv->name; }
const char *vdk_node_filename(const struct vdk_node *n) { return n->filename; }
struct vdk_node *vdk_node_file(const struct vdk_node *n) { return n->file; }
struct vdk_node *vdk_node_backing(const struct vdk_node *n) { return n->backing; }
bool vdk_node_is_read_only(const struct vdk_node *n) { return n->read_only; }
bool vdk_node_is_format(const struct vdk_node *n) { return n->drv->kind == VDK_DRV_FORMAT; }

bool vdk_node_has_zero_init(const struct vdk_node *n)
{
    for (; n; n = n->file)
        if (n->drv->no_zero_init || n->no_zero_init)
            return false;
    return true;
}
const char *vdk_node_backing_name(const struct vdk_node *n) { return n->backing_file; }
const char *vdk_node_backing_format(const struct vdk_node *n) { return n->backing_fmt; }
uint32_t vdk_node_alignment(const struct vdk_node *n) { return n->limits.request_alignment; }
uint32_t vdk_node_max_transfer(const struct vdk_node *n) { return vdk_node_effective_max_transfer(n); }
uint32_t vdk_node_storage_opt_transfer(const struct vdk_node *n)
{
    while (n->file)
        n = n->file;
    return n->limits.opt_transfer;
}
unsigned vdk_node_write_flags(const struct vdk_node *n) { return n->supported_write_flags; }
bool vdk_node_needs_compressed_writes(const struct vdk_node *n) { return n->needs_compressed_writes; }

uint32_t vdk_node_cluster_size(const struct vdk_node *n) { return n->cluster_size; }
