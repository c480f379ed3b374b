/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the Parallels driver: header, BAT, in-use flag,
 * I/O, check.  Its structure-aware mutator (fuzz-mutator.h) changes BAT
 * entries (duplicates, overlaps, into the header or BAT, past the end, 0)
 * and the header fields that size and place them, and sets or clears the
 * in-use flag; the format has no checksums.
 */
#include "fuzz-format.h"
#include "fuzz-mutator.h"

static bool prl_step(struct fmut *m)
{
    if (m->size < 64 || (memcmp(m->data, "WithoutFreeSpace", 16) != 0 &&
                         memcmp(m->data, "WithouFreSpacExt", 16) != 0))
        return false;
    bool ext = m->data[6] == 'F';   /* "WithouFreSpacExt": entries in clusters */
    uint64_t tracks = fm_get(m, 28, 4, false);
    uint64_t entries = fm_get(m, 32, 4, false), data = fm_get(m, 48, 4, false) * 512;
    static const uint64_t specials[] = { 0 };
    uint64_t hot[] = { 0, 64, data };
    struct fm_table t = { .off = 64, .count = entries, .width = 4,
                          .unit = ext && tracks ? tracks * 512 : 512, .mask = 0xffffffffu,
                          .specials = specials, .nspecials = 1, .hot = hot, .nhot = 3 };
    switch (fm_rand(m, 8)) {
    default:
        fm_table_mutate(m, &t);
        break;
    case 6: {
        static const unsigned f[] = { 16, 20, 24, 28, 32, 36, 48, 52, 56 };
        unsigned k = fm_rand(m, sizeof(f) / sizeof(f[0]));
        fm_field_mutate(m, f[k], f[k] == 36 || f[k] == 56 ? 8 : 4, false);
        break;
    }
    case 7:
        fm_put(m, 44, 4, false, fm_rand(m, 2) ? 0x746f6e59u : 0);
        break;
    }
    return true;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    return fm_run(data, size, max_size, seed, prl_step, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_format_run("parallels", data, size);
}
