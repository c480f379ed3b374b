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
    if (!o || vdk_opts_set(o, "size", s) < 0) {
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

#endif
