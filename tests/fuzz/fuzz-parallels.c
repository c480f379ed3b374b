/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the Parallels driver: header, BAT, in-use flag, I/O, check. */
#include "fuzz-format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_format_run("parallels", data, size);
}
