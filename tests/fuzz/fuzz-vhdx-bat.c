/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the VHDX BAT (payload and sector-bitmap entries)
 * over a valid template.  Its structure-aware mutator (fuzz-mutator.h)
 * changes the entries the template's 8 MiB of 1 MiB blocks use (0-7, and
 * the sector-bitmap entry 4096 after them): every state, valid or not,
 * with offsets into the headers, log, BAT or metadata, onto another
 * block, past the end, or reserved bits set.  The target reseals the
 * checksums itself.
 */
#include "fuzz-vhdx-common.h"
#include "fuzz-mutator.h"

#define FVB_SB 4096u /* the template's chunk ratio: its sector-bitmap entry */

static bool vhdx_bat_step(struct fmut *m)
{
    static const uint64_t specials[] = { 0, 1, 2, 3, 6, 7, 4, 5 };
    static const uint64_t hot[] = { 0, 65536, FV_LOG, FV_BAT, FV_META, FV_LEN, 8u << 20 };
    uint64_t i = fm_rand(m, 8);
    if (fm_rand(m, 8) == 0) {   /* the sector-bitmap entry; grow the input to it */
        size_t need = (FVB_SB + 1) * 8;
        if (m->size < need && need <= m->max) {
            memset(m->data + m->size, 0, need - m->size);
            m->size = need;
        }
        i = FVB_SB;
    } else if (fm_rand(m, 8) == 0) {
        i = fm_rand(m, (unsigned)(m->size / 8 + 1));
    }
    /* One entry: location in MiB from bit 20, state in bits 0-2. */
    struct fm_table t = { .off = i * 8, .count = 1, .width = 8, .unit = 1u << 20,
                          .mask = ~0ull << 20, .shift = 20, .flags = 7,
                          .file_len = FV_LEN, .specials = specials, .nspecials = 8,
                          .hot = hot, .nhot = 7 };
    if (!fm_in(m, t.off, 8))
        return false;
    if (fm_rand(m, 3) == 0)     /* a valid state at a chosen place */
        fm_put(m, t.off, 8, false, (uint64_t)fm_rand(m, 9) << 20 | (uint64_t[]){ 6, 7, 2, 3, 0 }[fm_rand(m, 5)]);
    else
        fm_table_mutate(m, &t);
    return true;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    return fm_run(data, size, max_size, seed, vhdx_bat_step, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fv_run(data, size, FV_BAT, 1u << 20, NULL);
}
