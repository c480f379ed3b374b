/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for VMDK sparse extents (KDMV header, grain directory,
 * grain tables, the streamOptimized footer, COWD): the input is the image
 * file in a memory node.  The driver opens it (no descriptor files are
 * opened: the extent is the file itself), then reads, walks block status,
 * checks, writes one grain's worth (allocation or compressed grain) and
 * flushes (table write-back or stream tail).
 * Its structure-aware mutator (fuzz-mutator.h) changes grain-table
 * entries (duplicates, overlaps, into the header, GD or GTs, past the end,
 * 0 and the zeroed-grain value 1), grain-directory entries (a shared or
 * missing table, the redundant directory disagreeing) and the header fields
 * that size and place them; VMDK has no checksums.
 *
 * An input starting with the seSparse magic is a seSparse extent: it is
 * preset as "memory://fuzz-sesparse" and opened read-only through a
 * descriptor naming it, sized by the extent's own capacity field.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz-util.h"
#include "fuzz-mutator.h"
#include "protocols/memory.h"

static bool vmdk_step(struct fmut *m)
{
    if (m->size < 512 || fm_get(m, 0, 4, false) != 0x564d444bu)
        return false;
    uint64_t h = 0;       /* the header in use: the footer's when GD is at the end */
    if (fm_get(m, 56, 8, false) == ~0ull && m->size >= 1536 &&
        fm_get(m, m->size - 1024, 4, false) == 0x564d444bu)
        h = m->size - 1024;
    uint64_t grain = fm_get(m, h + 20, 8, false), cap = fm_get(m, h + 12, 8, false);
    uint64_t gtes = fm_get(m, h + 44, 4, false);
    uint64_t gd = fm_get(m, h + 56, 8, false) * 512, rgd = fm_get(m, h + 48, 8, false) * 512;
    if (!grain || !gtes || grain > 2048 || gtes > 512 || cap > (1ull << 37))
        return false;
    uint64_t gd_n = ((cap + grain - 1) / grain + gtes - 1) / gtes;
    static const uint64_t specials[] = { 0, 1 };
    uint64_t hot[] = { 0, gd, rgd, fm_get(m, h + 64, 8, false) * 512, m->size - 1024 };
    struct fm_table gdt = { .off = fm_rand(m, 4) ? gd : rgd, .count = gd_n, .width = 4,
                            .unit = 512, .mask = 0xffffffffu, .specials = specials,
                            .nspecials = 1, .hot = hot, .nhot = 5 };
    uint64_t n = fm_table_count(m, &gdt);
    uint64_t gt = n ? fm_entry(m, &gdt, fm_pick(m, &gdt, n)) * 512 : 0;
    hot[3] = gt ? gt : hot[3];
    switch (fm_rand(m, 10)) {
    default: { /* grain-table entries */
        if (!gt)
            return false;
        struct fm_table gtt = gdt;
        gtt.off = gt, gtt.count = gtes, gtt.nspecials = 2;
        fm_table_mutate(m, &gtt);
        break;
    }
    case 6: case 7: /* directory entries (either copy) */
        fm_table_mutate(m, &gdt);
        break;
    case 8: {
        static const unsigned f[] = { 12, 20, 44, 48, 56, 64, 28, 36 };
        unsigned k = fm_rand(m, sizeof(f) / sizeof(f[0]));
        fm_field_mutate(m, h + f[k], f[k] == 44 ? 4 : 8, false);
        break;
    }
    case 9: /* flags: redundant GD, zeroed grains, compression, markers */
        fm_put(m, h + 8, 4, false, fm_get(m, h + 8, 4, false) ^
               (uint32_t[]){ 2, 4, 1u << 16, 1u << 17, 1 }[fm_rand(m, 5)]);
        break;
    }
    return true;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    return fm_run(data, size, max_size, seed, vmdk_step, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(const char *msg, void *opaque)
{
    (void)msg;
    (void)opaque;
}

static void exercise(struct vdk_node *n)
{
    static uint8_t buf[1u << 17];
    uint64_t len = n->size;
    if (len >= 4096) {
        vdk_pread(n, buf, 4096, 0, 0);
        vdk_pread(n, buf, 4096, len - 4096, 0);
        vdk_pread(n, buf, len < sizeof(buf) ? len & ~511ull : sizeof(buf), 0, 0);
    }
    uint64_t off = 0;
    for (int i = 0; i < 64 && off < len; i++) {
        uint64_t pnum = 0;
        if (vdk_block_status(n, off, len - off, &pnum, NULL, NULL) < 0)
            break;
        off += pnum;
    }
    struct vdk_image_info info = VDK_IMAGE_INFO_INIT;
    if (vdk_get_info(n, &info, NULL) == 0)
        vdk_image_info_clear(&info);
    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    vdk_check(n, &res, 0, NULL);
    if (len >= 8192) {
        memset(buf, 0x5a, 8192);
        vdk_pwrite(n, buf, 8192, (len / 3) & ~511ull, 0);
        vdk_pwrite_zeroes(n, 0, 4096, VDK_REQ_MAY_UNMAP);
        vdk_flush(n);
        vdk_pread(n, buf, 8192, (len / 3) & ~511ull, 0);
    }
}

static const uint8_t se_magic[8] = { 0xbe, 0xba, 0xfe, 0xca, 0, 0, 0, 0 };

static void sesparse_one(const struct vdk_driver *drv, const uint8_t *data, size_t size)
{
    uint64_t cap = 0;
    if (size >= 24)
        for (int i = 7; i >= 0; i--)
            cap = cap << 8 | data[16 + i];
    if (cap > (1ull << 31)) /* the descriptor says what the fuzzer invents */
        cap = 1ull << 31;
    char desc[256];
    int len = snprintf(desc, sizeof(desc), "# Disk DescriptorFile\nversion=1\nCID=1\n"
                       "parentCID=ffffffff\ncreateType=\"seSparse\"\n"
                       "RW %llu SESPARSE \"memory://fuzz-sesparse\"\n",
                       (unsigned long long)cap);
    if (vdk_memory_preset("fuzz-sesparse", data, size) < 0)
        return;
    struct vdk_node *mem = fuzz_memory((const uint8_t *)desc, (size_t)len);
    struct vdk_node *n = mem ? fuzz_format_open(drv, "fuzz.vmdk", mem, VDK_O_NO_BACKING) : NULL;
    if (n) {
        exercise(n);
        fuzz_format_close(n);
    }
    vdk_memory_preset("fuzz-sesparse", NULL, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct vdk_driver *drv = vdk_driver_find("vmdk");
    vdk_set_warning_handler(quiet, NULL);
    if (drv && size >= 8 && size <= (16u << 20) && memcmp(data, se_magic, 8) == 0) {
        sesparse_one(drv, data, size);
        return 0;
    }
    if (!drv || size > (16u << 20) || size < 4 ||
        (memcmp(data, "KDMV", 4) != 0 && memcmp(data, "COWD", 4) != 0))
        return 0; /* text descriptors would name files: fuzz-vmdk-desc */
    struct vdk_node *mem = fuzz_memory(data, size);
    if (!mem)
        return 0;
    struct vdk_node *n = fuzz_format_open(drv, "fuzz.vmdk", mem,
                                          VDK_O_RDWR | VDK_O_NO_BACKING);
    if (!n)
        return 0;
    /* sizes the fuzzer invents are fine to read, not to fill */
    if (n->size <= (1ull << 40))
        exercise(n);
    fuzz_format_close(n);
    return 0;
}
