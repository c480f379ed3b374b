/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the VDI driver: header, block map, I/O, check. */
#include "fuzz-format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_format_run("vdi", data, size);
}
