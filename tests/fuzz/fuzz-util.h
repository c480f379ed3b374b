/* SPDX-License-Identifier: MIT */
/* Helpers shared by the fuzz targets. */
#ifndef VDK_FUZZ_UTIL_H
#define VDK_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>

#include "block/driver.h"

/*
 * A read-write memory protocol node holding the `size` bytes of `data`
 * (the fuzz input as an image file).  NULL when it cannot be made.
 */
static inline struct vdk_node *fuzz_memory(const uint8_t *data, size_t size)
{
    struct vdk_node *file = NULL;
    struct vdk_opts *o = vdk_opts_new();
    char s[32];
    snprintf(s, sizeof(s), "%zu", size);
    /* A file-size limit: formats may place a cluster a whole cluster
       (Parallels: up to 1 GiB) past the end of the file, which is a sparse
       hole in a file but a zeroed buffer here; past 256 MiB the write
       fails with EFBIG, the error path a full disk takes. */
    if (!o || vdk_opts_set(o, "size", s) < 0 || vdk_opts_set(o, "max-size", "256M") < 0) {
        vdk_opts_free(o);
        return NULL;
    }
    if (vdk_open_protocol(&file, "memory://fuzz", o, VDK_O_RDWR, NULL) < 0)
        return NULL;
    if (size && vdk_pwrite(file, data, size, 0, 0) < 0) {
        vdk_node_unref(file);
        return NULL;
    }
    return file;
}

/*
 * A node of the format driver drv over `file` (the reference is taken
 * over), opened with `flags` and no options as node.c opens one.  NULL
 * when the driver refuses the input.  Release with fuzz_format_close().
 */
static inline struct vdk_node *fuzz_format_open(const struct vdk_driver *drv, const char *name,
                                                struct vdk_node *file, unsigned flags)
{
    struct vdk_node *n = vdk_node_new_internal(drv, name);
    struct vdk_opts *o = vdk_opts_new();
    struct vdk_error *err = NULL;
    if (!n || !o) {
        if (n)
            vdk_node_free_internal(n);
        vdk_opts_free(o);
        vdk_node_unref(file);
        return NULL;
    }
    n->file = file; /* freed with n */
    n->open_flags = flags;
    n->read_only = !(flags & VDK_O_RDWR);
    int r = drv->open(n, o, flags, &err);
    vdk_error_free(err);
    vdk_opts_free(o);
    if (r < 0) {
        vdk_node_free_internal(n);
        return NULL;
    }
    return n;
}

static inline void fuzz_format_close(struct vdk_node *n)
{
    n->drv->close(n);
    vdk_node_free_internal(n);
}

#endif
