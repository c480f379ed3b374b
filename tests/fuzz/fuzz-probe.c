/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: format probing and opening an image of unknown format.
 * The input becomes the contents of "memory://fuzz", opened read-only with
 * no format given, so every format's probe and then the chosen driver's
 * open run on it.  After a successful open: info, a bounded walk of block
 * status, reads at the start and the end, check and the snapshot list.
 * Backing files are not opened: their names come from the input, and a
 * fuzzer must not wander the host's file system.
 *
 * Checked beyond "no crash": a failed open says why and leaves no node; a
 * successful one answers block status within bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "block/driver.h"
#include "protocols/memory.h"
#include "vdk/block.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (4u << 20)
#define MAX_STATUS_STEPS 256
#define READ_BYTES (64u * 1024)

static void quiet(const char *msg, void *opaque)
{
}

static void exercise(struct vdk_node *n)
{
    struct vdk_error *err = NULL;
    struct vdk_image_info info = VDK_IMAGE_INFO_INIT;
    if (vdk_get_info(n, &info, &err) == 0)
        vdk_image_info_clear(&info);
    vdk_error_free(err);
    err = NULL;

    int64_t len = vdk_get_length(n);
    if (len <= 0)
        return;
    uint64_t off = 0;
    for (int i = 0; i < MAX_STATUS_STEPS && off < (uint64_t)len; i++) {
        uint64_t pnum = 0, map = 0;
        struct vdk_node *file = NULL;
        int depth = 0;
        int r = vdk_block_status_above(n, NULL, off, (uint64_t)len - off, &pnum, &map,
                                       &file, &depth);
        if (r < 0)
            break;
        if (pnum == 0 || pnum > (uint64_t)len - off)
            abort();
        off += pnum;
    }

    uint8_t *buf = malloc(READ_BYTES);
    if (buf) {
        uint64_t l = (uint64_t)len;
        uint64_t c = l < READ_BYTES ? l : READ_BYTES;
        (void)vdk_pread(n, buf, c, 0, 0);
        (void)vdk_pread(n, buf, c, l - c, 0);
        (void)vdk_pread(n, buf, 1, l / 2, 0);
        free(buf);
    }

    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    (void)vdk_check(n, &res, 0, &err);
    vdk_error_free(err);
    err = NULL;
    struct vdk_snapshot_info *list = NULL;
    int count = 0;
    if (vdk_snapshot_list(n, &list, &count, &err) == 0)
        vdk_snapshot_list_free(list, count);
    vdk_error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    vdk_set_warning_handler(quiet, NULL);
    if (vdk_memory_preset("fuzz", data, size) < 0)
        return 0;
    struct vdk_node *n = NULL;
    struct vdk_error *err = NULL;
    int r = vdk_open(&n, "memory://fuzz", NULL, NULL, VDK_O_NO_BACKING, &err);
    if (r < 0) {
        if (n || !err || !err->msg[0])
            abort();
        vdk_error_free(err);
    } else {
        if (!n || err)
            abort();
        exercise(n);
        vdk_close(n);
    }
    vdk_memory_preset("fuzz", NULL, 0);
    return 0;
}
