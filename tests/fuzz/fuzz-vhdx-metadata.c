/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the VHDX metadata region (table and items, parent
 * locator) over a valid template.  Its structure-aware mutator
 * (fuzz-mutator.h) changes table entries (item offsets onto the table,
 * onto another item, past the region; lengths; the user, virtual-disk and
 * required flags; a GUID made a duplicate or unknown; the entry count) and
 * item values (block size, has-parent flag, disk size, sector sizes, the
 * parent locator's key/value entries).  The target reseals the checksums.
 */
#include "fuzz-vhdx-common.h"
#include "fuzz-mutator.h"

static bool vhdx_meta_step(struct fmut *m)
{
    if (m->size < 64 || memcmp(m->data, "metadata", 8) != 0)
        return false;
    uint64_t count = fm_get(m, 10, 2, false);
    if (count > 2047)
        count = 2047;
    uint64_t e = 32 + 32 * (count ? fm_rand(m, (unsigned)count) : 0);
    uint64_t off = fm_get(m, e + 16, 4, false), len = fm_get(m, e + 20, 4, false);
    static const uint64_t specials[] = { 0 };
    uint64_t hot[] = { 0, 32, 65536, 65536 + 8, 1u << 20, off, off + len };
    struct fm_table t = { .off = 32 + 16, .count = count, .width = 4, .stride = 32,
                          .unit = 8, .mask = 0xffffffffu, .shift = 0, .file_len = 1u << 20,
                          .specials = specials, .nspecials = 1, .hot = hot, .nhot = 7 };
    const uint8_t *const guids[] = { vhdx_guid_file_params, vhdx_guid_disk_size,
                                     vhdx_guid_page83, vhdx_guid_lss, vhdx_guid_pss,
                                     vhdx_guid_parent_locator };
    switch (fm_rand(m, 10)) {
    case 0: case 1: /* where an item is */
        fm_table_mutate(m, &t);
        break;
    case 2: /* its length */
        fm_field_mutate(m, e + 20, 4, false);
        break;
    case 3: /* flags */
        fm_put(m, e + 24, 4, false, fm_get(m, e + 24, 4, false) ^ 1u << fm_rand(m, 4));
        break;
    case 4: /* the GUID: a known one (maybe a duplicate) or unknown */
        if (fm_in(m, e, 16)) {
            if (fm_rand(m, 4))
                memcpy(m->data + e, guids[fm_rand(m, 6)], 16);
            else
                m->data[e + fm_rand(m, 16)] ^= 0x40;
        }
        break;
    case 5:
        fm_field_mutate(m, 10, 2, false);
        break;
    default: { /* the item's value */
        if (!fm_in(m, e, 16))
            return false;
        if (memcmp(m->data + e, vhdx_guid_file_params, 16) == 0 && fm_rand(m, 2)) {
            if (fm_rand(m, 2))
                fm_put(m, off, 4, false, 1u << (18 + fm_rand(m, 13)));
            else
                fm_put(m, off + 4, 4, false, fm_get(m, off + 4, 4, false) ^ (1u + fm_rand(m, 2)));
        } else if ((memcmp(m->data + e, vhdx_guid_lss, 16) == 0 ||
                    memcmp(m->data + e, vhdx_guid_pss, 16) == 0) && fm_rand(m, 2)) {
            fm_put(m, off, 4, false, (uint32_t[]){ 512, 4096, 1024, 0 }[fm_rand(m, 4)]);
        } else if (memcmp(m->data + e, vhdx_guid_parent_locator, 16) == 0) {
            uint64_t kv = fm_get(m, off + 18, 2, false);
            uint64_t at = off + 20 + 12 * (kv ? fm_rand(m, (unsigned)(kv < 64 ? kv : 64)) : 0);
            static const unsigned f[][2] = { { 0, 4 }, { 4, 4 }, { 8, 2 }, { 10, 2 } };
            unsigned k = fm_rand(m, 5);
            if (k == 4)
                fm_field_mutate(m, off + 18, 2, false);
            else
                fm_field_mutate(m, at + f[k][0], f[k][1], false);
        } else {
            fm_field_mutate(m, off, len >= 8 ? 8 : 4, false);
        }
        break;
    }
    }
    return true;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    return fm_run(data, size, max_size, seed, vhdx_meta_step, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fv_run(data, size, FV_META, 1u << 20, NULL);
}
