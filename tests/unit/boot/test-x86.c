/* SPDX-License-Identifier: MIT */
/* Kernel loading: bzImage zero page, e820 map, PVH start info, bad files. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "guest-boot/x86/boot.h"
#include "guest-boot/x86/layout.h"

#define MEM (64u << 20)

static struct guest_mem mem;

static int setup(void **state)
{
    mem.host = calloc(1, MEM);
    mem.low_size = MEM;
    mem.high_size = 0;
    return mem.host ? 0 : -1;
}

static int teardown(void **state)
{
    free(mem.host);
    return 0;
}

struct bz {
    uint16_t version;
    uint8_t xlf;
    uint32_t payload;
    uint32_t init_size;
    uint64_t pref;
    uint8_t reloc;
    uint32_t align;
    uint32_t cmdline_size;
};

static uint8_t *make_bz(const struct bz *b, size_t *len)
{
    size_t setup = 5 * 512; /* setup_sects = 4 */
    *len = setup + b->payload;
    uint8_t *k = calloc(1, *len);
    k[BZ_SETUP_SECTS] = 4;
    put_le32(k + BZ_SYSSIZE, b->payload / 16);
    put_le16(k + BZ_BOOT_FLAG, 0xaa55);
    k[BZ_JUMP] = 0xeb;
    k[BZ_JUMP + 1] = 0x66;
    put_le32(k + BZ_HEADER, BZ_HDR_MAGIC);
    put_le16(k + BZ_VERSION, b->version);
    k[BZ_LOADFLAGS] = LOADED_HIGH;
    put_le32(k + BZ_INITRD_ADDR_MAX, 0x37ffffff);
    put_le32(k + BZ_KERNEL_ALIGNMENT, b->align);
    k[BZ_RELOCATABLE] = b->reloc;
    put_le16(k + BZ_XLOADFLAGS, b->xlf);
    put_le32(k + BZ_CMDLINE_SIZE, b->cmdline_size);
    put_le64(k + BZ_PREF_ADDRESS, b->pref);
    put_le32(k + BZ_INIT_SIZE, b->init_size);
    for (uint32_t i = 0; i < b->payload; i++)
        k[setup + i] = (uint8_t)(i * 7 + 1);
    return k;
}

static const struct bz good = { 0x020f, XLF_KERNEL_64, 8192, 1 << 20, 0x100000,
                                0, 0x200000, 2047 };

static int load(const uint8_t *k, size_t len, const char *cmdline,
                const uint8_t *initrd, size_t ilen, struct boot_entry *e)
{
    struct vdk_error *err = NULL;
    struct boot_input in = { k, len, initrd, ilen, cmdline, 0xe0000 };
    memset(mem.host, 0, MEM);
    int r = boot_load_kernel(&mem, &in, e, &err);
    assert_true((r < 0) == (err != NULL));
    vdk_error_free(err);
    return r;
}

static void test_bz_zero_page(void **state)
{
    size_t len;
    uint8_t *k = make_bz(&good, &len);
    uint8_t initrd[5000];
    memset(initrd, 0xab, sizeof(initrd));
    struct boot_entry e;
    assert_int_equal(load(k, len, "console=ttyS0 root=/dev/vda", initrd,
                          sizeof(initrd), &e), 0);
    assert_int_equal(e.kind, BOOT_BZIMAGE);
    assert_int_equal(e.rip, 0x100200);
    assert_int_equal(e.arg, LAYOUT_ZERO_PAGE);
    assert_int_equal(e.protocol, 0x020f);

    const uint8_t *zp = mem.host + LAYOUT_ZERO_PAGE;
    assert_int_equal(get_le32(zp + BZ_HEADER), BZ_HDR_MAGIC);
    assert_int_equal(zp[BZ_TYPE_OF_LOADER], 0xff);
    assert_int_equal(get_le32(zp + BZ_CMD_LINE_PTR), LAYOUT_CMDLINE);
    assert_string_equal((char *)mem.host + LAYOUT_CMDLINE,
                        "console=ttyS0 root=/dev/vda");
    assert_int_equal(get_le64(zp + ZP_ACPI_RSDP_ADDR), 0xe0000);
    /* initrd: page aligned, below initrd_addr_max and RAM, above kernel */
    uint32_t ri = get_le32(zp + BZ_RAMDISK_IMAGE);
    assert_int_equal(get_le32(zp + BZ_RAMDISK_SIZE), sizeof(initrd));
    assert_int_equal(ri % 4096, 0);
    assert_true(ri >= e.kernel_end && ri + sizeof(initrd) <= MEM);
    assert_memory_equal(mem.host + ri, initrd, sizeof(initrd));
    assert_int_equal(e.initrd_addr, ri);
    /* payload at 1 MiB */
    assert_memory_equal(mem.host + 0x100000, k + 5 * 512, good.payload);
    /* e820 in the zero page */
    int n = zp[ZP_E820_ENTRIES];
    assert_int_equal(n, 4);
    const uint8_t *t = zp + ZP_E820_TABLE;
    assert_int_equal(get_le64(t), 0);
    assert_int_equal(get_le32(t + 16), E820_RAM);
    assert_int_equal(get_le64(t + 60), 0x100000);
    assert_int_equal(get_le64(t + 68), MEM - 0x100000);
    assert_int_equal(get_le32(t + 76), E820_RAM);
    free(k);
}

static void test_bz_relocatable(void **state)
{
    struct bz b = good;
    b.reloc = 1;
    b.pref = 0x1000001;
    size_t len;
    uint8_t *k = make_bz(&b, &len);
    struct boot_entry e;
    assert_int_equal(load(k, len, "", NULL, 0, &e), 0);
    assert_int_equal(e.kernel_start, 0x1200000); /* aligned up to 2 MiB */
    assert_int_equal(e.rip, 0x1200200);
    free(k);

    b.align = 0x300000; /* not a power of two */
    k = make_bz(&b, &len);
    assert_int_equal(load(k, len, "", NULL, 0, &e), -EINVAL);
    free(k);
}

static void test_bz_errors(void **state)
{
    struct boot_entry e;
    size_t len;
    struct bz b = good;

    b.version = 0x020b;
    uint8_t *k = make_bz(&b, &len);
    assert_int_equal(load(k, len, "", NULL, 0, &e), -ENOTSUP);
    free(k);

    b = good;
    b.xlf = 0;
    k = make_bz(&b, &len);
    assert_int_equal(load(k, len, "", NULL, 0, &e), -ENOTSUP);
    free(k);

    /* truncated: payload shorter than syssize, inside the header, setup */
    k = make_bz(&good, &len);
    assert_int_equal(load(k, len - 16, "", NULL, 0, &e), -EINVAL);
    assert_int_equal(load(k, 0x210, "", NULL, 0, &e), -EINVAL);
    assert_int_equal(load(k, 0x205, "", NULL, 0, &e), -EINVAL);
    assert_int_equal(load(k, 1024, "", NULL, 0, &e), -EINVAL);
    assert_int_equal(load(k, 3, "", NULL, 0, &e), -EINVAL);

    /* command line longer than cmdline_size */
    char cl[3000];
    memset(cl, 'x', sizeof(cl) - 1);
    cl[sizeof(cl) - 1] = 0;
    assert_int_equal(load(k, len, cl, NULL, 0, &e), -E2BIG);

    /* initrd bigger than what is left */
    uint8_t *big = calloc(1, MEM - (1 << 20));
    assert_int_equal(load(k, len, "", big, MEM - (1 << 20), &e), -ENOSPC);
    free(big);

    /* wrong magic */
    put_le32(k + BZ_HEADER, 0x12345678);
    assert_int_equal(load(k, len, "", NULL, 0, &e), -EINVAL);
    free(k);

    /* too big for memory: init_size, or load address */
    b = good;
    b.init_size = MEM;
    k = make_bz(&b, &len);
    assert_int_equal(load(k, len, "", NULL, 0, &e), -ENOSPC);
    free(k);
    b = good;
    b.pref = UINT64_MAX - 0xfff;
    k = make_bz(&b, &len);
    assert_int_equal(load(k, len, "", NULL, 0, &e), -ENOSPC);
    free(k);
}

static void test_e820(void **state)
{
    struct e820_entry map[E820_MAX];
    struct guest_mem m = { NULL, 0xc0000000ull, 1ull << 30 };
    int n = e820_build(&m, map, E820_MAX);
    assert_int_equal(n, 5);
    for (int i = 1; i < n; i++)
        assert_true(map[i].addr >= map[i - 1].addr + map[i - 1].size);
    assert_int_equal(map[0].type, E820_RAM);
    assert_int_equal(map[0].addr + map[0].size, LAYOUT_EBDA);
    assert_int_equal(map[2].addr, LAYOUT_ACPI);
    assert_int_equal(map[2].type, E820_RESERVED);
    assert_int_equal(map[3].addr + map[3].size, 0xc0000000ull);
    assert_int_equal(map[4].addr, GUEST_HIGH_BASE);
    assert_int_equal(map[4].size, 1ull << 30);
    assert_int_equal(e820_build(&m, map, 2), 2);
}

/* A small ELF64 with one PT_LOAD at 1 MiB and a PT_NOTE. */
static uint8_t *make_elf(size_t *len, uint32_t note_type, uint64_t entry,
                         uint64_t paddr)
{
    size_t sz = 0x2000;
    uint8_t *k = calloc(1, sz);
    memcpy(k, "\177ELF", 4);
    k[4] = 2;
    k[5] = 1;
    put_le16(k + 18, 62);
    put_le64(k + 32, 64);       /* phoff */
    put_le16(k + 54, 56);
    put_le16(k + 56, 2);
    uint8_t *ph = k + 64;
    put_le32(ph, 1);            /* PT_LOAD */
    put_le64(ph + 8, 0x1000);
    put_le64(ph + 24, paddr);
    put_le64(ph + 32, 0x1000);
    put_le64(ph + 40, 0x3000);
    ph += 56;
    put_le32(ph, 4);            /* PT_NOTE */
    put_le64(ph + 8, 0x200);
    put_le64(ph + 32, 20);
    uint8_t *n = k + 0x200;
    put_le32(n, 4);
    put_le32(n + 4, 4);
    put_le32(n + 8, note_type);
    memcpy(n + 12, "Xen", 4);
    put_le32(n + 16, (uint32_t)entry);
    memset(k + 0x1000, 0x90, 0x1000);
    *len = sz;
    return k;
}

static void test_pvh(void **state)
{
    size_t len;
    uint8_t *k = make_elf(&len, XEN_ELFNOTE_PHYS32_ENTRY, 0x100040, 0x100000);
    uint8_t initrd[100] = { 1, 2, 3 };
    struct boot_entry e;
    assert_int_equal(load(k, len, "hello", initrd, sizeof(initrd), &e), 0);
    assert_int_equal(e.kind, BOOT_PVH);
    assert_int_equal(e.rip, 0x100040);
    assert_int_equal(e.arg, LAYOUT_START_INFO);
    const uint8_t *si = mem.host + LAYOUT_START_INFO;
    assert_int_equal(get_le32(si), HVM_START_MAGIC);
    assert_int_equal(get_le32(si + 4), 1);
    assert_int_equal(get_le32(si + 12), 1);
    assert_int_equal(get_le64(si + 24), LAYOUT_CMDLINE);
    assert_int_equal(get_le64(si + 32), 0xe0000);
    const uint8_t *mod = mem.host + get_le64(si + 16);
    assert_memory_equal(mem.host + get_le64(mod), initrd, sizeof(initrd));
    assert_int_equal(get_le64(mod + 8), sizeof(initrd));
    assert_int_equal(get_le32(si + 48), 4); /* memmap entries */
    const uint8_t *mm = mem.host + get_le64(si + 40);
    assert_int_equal(get_le64(mm + 3 * 24), 0x100000);
    /* loaded bytes and zeroed bss */
    assert_int_equal(mem.host[0x100000], 0x90);
    assert_int_equal(mem.host[0x101000], 0);
    free(k);
}

static void test_pvh_errors(void **state)
{
    size_t len;
    struct boot_entry e;
    uint8_t *k = make_elf(&len, 17, 0x100040, 0x100000); /* wrong note */
    assert_int_equal(load(k, len, "", NULL, 0, &e), -ENOTSUP);
    free(k);
    k = make_elf(&len, XEN_ELFNOTE_PHYS32_ENTRY, 0x900000, 0x100000);
    assert_int_equal(load(k, len, "", NULL, 0, &e), -EINVAL); /* entry outside */
    free(k);
    k = make_elf(&len, XEN_ELFNOTE_PHYS32_ENTRY, 0x100040, 0x1000); /* low */
    assert_int_equal(load(k, len, "", NULL, 0, &e), -ENOSPC);
    free(k);
    k = make_elf(&len, XEN_ELFNOTE_PHYS32_ENTRY, 0x100040, MEM - 0x1000);
    assert_int_equal(load(k, len, "", NULL, 0, &e), -ENOSPC); /* past RAM */
    free(k);
    k = make_elf(&len, XEN_ELFNOTE_PHYS32_ENTRY, 0x100040, 0x100000);
    assert_int_equal(load(k, 0x1800, "", NULL, 0, &e), -EINVAL); /* truncated */
    assert_int_equal(load(k, 100, "", NULL, 0, &e), -EINVAL);
    put_le32(k + 0x200, 0xfffffff0); /* namesz runs past the note */
    assert_int_equal(load(k, len, "", NULL, 0, &e), -ENOTSUP);
    put_le32(k + 0x200, 4);
    put_le16(k + 56, 0);             /* no program headers */
    assert_int_equal(load(k, len, "", NULL, 0, &e), -EINVAL);
    put_le16(k + 56, 2);
    put_le64(k + 64 + 40, 0x10);     /* filesz > memsz */
    assert_int_equal(load(k, len, "", NULL, 0, &e), -EINVAL);
    put_le64(k + 64 + 40, 0x3000);
    put_le64(k + 64 + 8, UINT64_MAX - 8); /* offset overflow */
    assert_int_equal(load(k, len, "", NULL, 0, &e), -EINVAL);
    k[4] = 3;
    assert_int_equal(load(k, len, "", NULL, 0, &e), -EINVAL);
    free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bz_zero_page),
        cmocka_unit_test(test_bz_relocatable),
        cmocka_unit_test(test_bz_errors),
        cmocka_unit_test(test_e820),
        cmocka_unit_test(test_pvh),
        cmocka_unit_test(test_pvh_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
