/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: LUKS1 header parsing and keyslot unlocking (see
 * fuzz-luks-common.h).
 */
#include "fuzz-luks-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vdk_node *file = fuzz_memory(data, size);
    if (file)
        fuzz_luks_exercise(file);
    return 0;
}
