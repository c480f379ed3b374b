/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the VDI driver: header, block map, I/O, check.
 * Its structure-aware mutator (fuzz-mutator.h) changes block-map entries
 * (duplicates, indexes past the allocated count or the file, the
 * unallocated and discarded values) and the header fields that place and
 * count them; VDI has no checksums.
 */
#include "fuzz-format.h"
#include "fuzz-mutator.h"

static bool vdi_step(struct fmut *m)
{
    if (m->size < 512 || fm_get(m, 0x40, 4, false) != 0xbeda107fu)
        return false;
    uint64_t bmap = fm_get(m, 0x154, 4, false), data = fm_get(m, 0x158, 4, false);
    uint64_t bs = fm_get(m, 0x178, 4, false), blocks = fm_get(m, 0x180, 4, false);
    static const uint64_t specials[] = { 0xffffffffu, 0xfffffffeu, 0 };
    uint64_t hot[] = { 0, bmap, data };
    struct fm_table t = { .off = bmap, .count = blocks, .width = 4, .unit = bs ? bs : 1,
                          .base = data, .mask = 0xffffffffu, .specials = specials,
                          .nspecials = 3, .hot = hot, .nhot = 3 };
    if (fm_rand(m, 4)) {
        fm_table_mutate(m, &t);
    } else {
        static const unsigned f[] = { 0x154, 0x158, 0x170, 0x178, 0x17c, 0x180, 0x184,
                                      0x4c, 0x44, 0x48, 0x168 };
        unsigned k = fm_rand(m, sizeof(f) / sizeof(f[0]));
        fm_field_mutate(m, f[k], f[k] == 0x170 ? 8 : 4, false);
    }
    return true;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    return fm_run(data, size, max_size, seed, vdi_step, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_format_run("vdi", data, size);
}
