/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the VHD driver: the input is the image file, held
 * in a memory node.  The driver opens it (footer, dynamic header, BAT,
 * parent locators; the parent itself is not opened), then reads a few
 * sectors, walks block status, asks for info and a check, and when the
 * image opened with small blocks writes one sector (allocation path).
 * An image a write open refuses (footers that differ) is exercised
 * read-only.  The structure-aware mutator is in fuzz-vhd-mutator.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/driver.h"
#include "fuzz-util.h"
#include "fuzz-vhd-mutator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(const char *msg, void *opaque)
{
    (void)msg;
    (void)opaque;
}

static void exercise(struct vdk_node *n, bool rw)
{
    uint8_t buf[8192];
    uint64_t len = n->size;
    if (len >= sizeof(buf)) {
        vdk_pread(n, buf, sizeof(buf), 0, 0);
        vdk_pread(n, buf, sizeof(buf), len - sizeof(buf), 0);
        vdk_pread(n, buf, 4096, (len / 2) & ~511ull, 0);
    }
    uint64_t off = 0;
    for (int i = 0; i < 64 && off < len; i++) {
        uint64_t pnum = 0;
        if (vdk_block_status(n, off, len - off, &pnum, NULL, NULL) < 0)
            break;
        off += pnum;
    }
    struct vdk_image_info info = VDK_IMAGE_INFO_INIT;
    if (vdk_get_info(n, &info, NULL) == 0) {
        uint32_t cs = info.cluster_size;
        vdk_image_info_clear(&info);
        if (rw && len >= 4096 && cs <= (2u << 20)) {
            memset(buf, 0xa5, 4096);
            if (vdk_pwrite(n, buf, 4096, (len / 3) & ~511ull, 0) == 0)
                vdk_pread(n, buf, 4096, (len / 3) & ~511ull, 0);
        }
    }
    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    vdk_check(n, &res, 0, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct vdk_driver *drv = vdk_driver_find("vpc");
    vdk_set_warning_handler(quiet, NULL);
    if (!drv || size > (64u << 20))
        return 0;
    struct vdk_node *mem = fuzz_memory(data, size);
    if (!mem)
        return 0;
    /* A format node over the memory file, as node.c builds one. */
    vdk_node_ref(mem);
    bool rw = true;
    struct vdk_node *n = fuzz_format_open(drv, "fuzz.vhd", mem, VDK_O_RDWR | VDK_O_NO_BACKING);
    if (!n) {
        vdk_node_ref(mem);
        rw = false;
        n = fuzz_format_open(drv, "fuzz.vhd", mem, VDK_O_NO_BACKING);
    }
    vdk_node_unref(mem);
    if (!n)
        return 0;
    exercise(n, rw);
    fuzz_format_close(n);
    return 0;
}
