/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the VHDX headers and region tables (bytes 64 KiB ..
   320 KiB of the file) over a valid template. */
#include "fuzz-vhdx-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fv_run(data, size, VHDX_HEADER1_OFF, 256u << 10, NULL);
}
