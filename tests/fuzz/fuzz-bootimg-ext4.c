/* SPDX-License-Identifier: MIT */
/* vdk-boot's ext4 reader on an arbitrary volume (see fuzz-bootimg-fs.h). */
#include <errno.h>
#include <stdio.h>

#include "tests/fuzz/fuzz-bootimg-fs.h"
#include "tests/fuzz/fuzz-bootimg-fs-mutator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_fs_walk(data, size, img_ext4_open);
    return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    return fm_run(data, size, max_size, seed, ffs_ext4_step, NULL);
}
