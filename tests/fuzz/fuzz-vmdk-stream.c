/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for streamOptimized markers: the input is a stream
 * file; the footer reader looks for the footer and end-of-stream markers,
 * and every sector is tried as a grain marker (lba, size, zlib data) for
 * grain lba/128 with markers on and off, as a GT entry would point there.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "formats/vmdk/vmdk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (4u << 20))
        return 0;
    struct vdk_node *mem = fuzz_memory(data, size);
    if (!mem)
        return 0;
    uint8_t hdr[VMDK_SECTOR];
    (void)vmdk_footer_read(mem, size, hdr, NULL);
    struct vmdk_extent e;
    memset(&e, 0, sizeof(e));
    e.file = mem;
    e.file_len = size;
    e.grain = 128 * VMDK_SECTOR;
    e.compressed = true;
    uint8_t *out = malloc(e.grain);
    for (uint64_t s = 0; out && s < size / VMDK_SECTOR && s < 256; s++) {
        uint64_t lba = size >= (s + 1) * VMDK_SECTOR ? vmdk_le64(data + s * VMDK_SECTOR) : 0;
        e.has_marker = true;
        (void)vmdk_cgrain_read(&e, lba / 128, s, out);
        e.has_marker = false;
        (void)vmdk_cgrain_read(&e, 0, s, out);
    }
    free(out);
    vdk_node_unref(mem);
    return 0;
}
