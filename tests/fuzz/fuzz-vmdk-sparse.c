/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for VMDK sparse extents (KDMV header, grain directory,
 * grain tables, the streamOptimized footer, COWD): the input is the image
 * file in a memory node.  The driver opens it (no descriptor files are
 * opened: the extent is the file itself), then reads, walks block status,
 * checks, writes one grain's worth (allocation or compressed grain) and
 * flushes (table write-back or stream tail).
 */
#include <stdint.h>
#include <string.h>

#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(const char *msg, void *opaque)
{
    (void)msg;
    (void)opaque;
}

static void exercise(struct vdk_node *n)
{
    static uint8_t buf[1u << 17];
    uint64_t len = n->size;
    if (len >= 4096) {
        vdk_pread(n, buf, 4096, 0, 0);
        vdk_pread(n, buf, 4096, len - 4096, 0);
        vdk_pread(n, buf, len < sizeof(buf) ? len & ~511ull : sizeof(buf), 0, 0);
    }
    uint64_t off = 0;
    for (int i = 0; i < 64 && off < len; i++) {
        uint64_t pnum = 0;
        if (vdk_block_status(n, off, len - off, &pnum, NULL, NULL) < 0)
            break;
        off += pnum;
    }
    struct vdk_image_info info = VDK_IMAGE_INFO_INIT;
    if (vdk_get_info(n, &info, NULL) == 0)
        vdk_image_info_clear(&info);
    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    vdk_check(n, &res, 0, NULL);
    if (len >= 8192) {
        memset(buf, 0x5a, 8192);
        vdk_pwrite(n, buf, 8192, (len / 3) & ~511ull, 0);
        vdk_pwrite_zeroes(n, 0, 4096, VDK_REQ_MAY_UNMAP);
        vdk_flush(n);
        vdk_pread(n, buf, 8192, (len / 3) & ~511ull, 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct vdk_driver *drv = vdk_driver_find("vmdk");
    vdk_set_warning_handler(quiet, NULL);
    if (!drv || size > (16u << 20) || size < 4 ||
        (memcmp(data, "KDMV", 4) != 0 && memcmp(data, "COWD", 4) != 0))
        return 0; /* text descriptors would name files: fuzz-vmdk-desc */
    struct vdk_node *mem = fuzz_memory(data, size);
    if (!mem)
        return 0;
    struct vdk_node *n = fuzz_format_open(drv, "fuzz.vmdk", mem,
                                          VDK_O_RDWR | VDK_O_NO_BACKING);
    if (!n)
        return 0;
    /* sizes the fuzzer invents are fine to read, not to fill */
    if (n->size <= (1ull << 40))
        exercise(n);
    fuzz_format_close(n);
    return 0;
}
