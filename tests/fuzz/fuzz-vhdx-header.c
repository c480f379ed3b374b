/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the VHDX headers and region tables (bytes 64 KiB ..
   320 KiB of the file) over a valid template. */
#include "fuzz-vhdx-common.h"
#include "fuzz-vhdx-mutator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fv_run(data, size, VHDX_HEADER1_OFF, 256u << 10, NULL);
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    return fm_run(data, size, max_size, seed, fvx_header_step, NULL);
}
