/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the VHDX BAT (payload and sector-bitmap entries)
   over a valid template. */
#include "fuzz-vhdx-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fv_run(data, size, FV_BAT, 1u << 20, NULL);
}
