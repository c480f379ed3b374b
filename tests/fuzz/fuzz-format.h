/* SPDX-License-Identifier: MIT */
/*
 * Shared body of the fuzz targets for image formats whose whole state is
 * in one file (VDI, Parallels, VHDX): the input is the image file, held in
 * a memory node; the driver opens it read-write, then reads, walks block
 * status, asks for info, writes one sector (the allocation path), checks
 * and repairs.  A second open read-only covers read-only paths (VHDX's
 * in-memory log replay).
 */
#ifndef VDK_FUZZ_FORMAT_H
#define VDK_FUZZ_FORMAT_H

#include <stdint.h>
#include <string.h>

#include "block/driver.h"
#include "fuzz-util.h"

static void fuzz_format_quiet(const char *msg, void *opaque)
{
    (void)msg;
    (void)opaque;
}

static void fuzz_format_exercise(struct vdk_node *n, bool rw)
{
    static uint8_t buf[65536];
    uint64_t len = n->size;
    if (len >= 8192) {
        vdk_pread(n, buf, 8192, 0, 0);
        vdk_pread(n, buf, 8192, len - 8192, 0);
        vdk_pread(n, buf, 4096, (len / 2) & ~4095ull, 0);
    }
    uint64_t off = 0;
    for (int i = 0; i < 64 && off < len; i++) {
        uint64_t pnum = 0;
        if (vdk_block_status(n, off, len - off, &pnum, NULL, NULL) < 0)
            break;
        off += pnum;
    }
    struct vdk_image_info info;
    if (vdk_get_info(n, &info, NULL) == 0)
        vdk_image_info_clear(&info);
    if (rw && len >= 8192 && len <= (1ull << 40)) {
        memset(buf, 0xa5, 4096);
        if (vdk_pwrite(n, buf, 4096, (len / 3) & ~4095ull, 0) == 0)
            vdk_pread(n, buf, 4096, (len / 3) & ~4095ull, 0);
        vdk_pwrite_zeroes(n, 0, 4096, VDK_REQ_MAY_UNMAP);
        vdk_discard(n, (len / 3) & ~4095ull, 4096);
    }
    struct vdk_check_result res;
    vdk_check(n, &res, rw ? VDK_CHECK_FIX_LEAKS | VDK_CHECK_FIX_ERRORS : 0, NULL);
}

/* Open drv over a memory copy of the input and exercise it. */
static void fuzz_format_one(const char *drvname, const uint8_t *data, size_t size, bool rw)
{
    const struct vdk_driver *drv = vdk_driver_find(drvname);
    if (!drv)
        return;
    struct vdk_node *mem = fuzz_memory(data, size);
    if (!mem)
        return;
    struct vdk_node *n = vdk_node_new_internal(drv, "fuzz.img");
    struct vdk_opts *o = vdk_opts_new();
    struct vdk_error *err = NULL;
    if (!n || !o) {
        if (n)
            vdk_node_free_internal(n);
        vdk_opts_free(o);
        vdk_node_unref(mem);
        return;
    }
    n->file = mem; /* freed with n */
    n->open_flags = (rw ? VDK_O_RDWR : 0) | VDK_O_NO_BACKING;
    n->read_only = !rw;
    if (drv->open(n, o, n->open_flags, &err) == 0) {
        fuzz_format_exercise(n, rw);
        drv->close(n);
    }
    vdk_error_free(err);
    vdk_opts_free(o);
    vdk_node_free_internal(n);
}

static inline int fuzz_format_run(const char *drvname, const uint8_t *data, size_t size)
{
    vdk_set_warning_handler(fuzz_format_quiet, NULL);
    if (size > (16u << 20))
        return 0;
    fuzz_format_one(drvname, data, size, false);
    fuzz_format_one(drvname, data, size, true);
    return 0;
}

#endif /* VDK_FUZZ_FORMAT_H */
