/* SPDX-License-Identifier: MIT */
/*
 * bzImage through the 64-bit boot protocol (boot.rst, "64-bit BOOT
 * PROTOCOL"): the protected-mode kernel is copied to its load address, the
 * setup header goes into a zero page with the e820 map, command line and
 * initrd, and the vCPU enters at load address + 0x200 in long mode with
 * rsi pointing at the zero page.  No real-mode setup code runs.
 */
#include <errno.h>
#include <string.h>

#include "guest-boot/x86/boot.h"
#include "guest-boot/x86/layout.h"

#define MIB(x) ((unsigned long long)((x) >> 20))

int bzimage_load(const struct guest_mem *m, const struct boot_input *in,
                 struct boot_entry *out, struct vdk_error **errp)
{
    const uint8_t *k = in->kernel;
    size_t len = in->kernel_len;

    if (len < BZ_VERSION + 2)
        return vdk_error_setf(errp, EINVAL, "truncated bzImage: %zu bytes", len);
    uint16_t version = get_le16(k + BZ_VERSION);
    if (version < BZ_MIN_PROTOCOL)
        return vdk_error_setf(errp, ENOTSUP,
                              "boot protocol %u.%02u is too old: the 64-bit "
                              "entry needs 2.12 or later",
                              version >> 8, version & 0xff);
    if (len < BZ_INIT_SIZE + 4)
        return vdk_error_setf(errp, EINVAL,
                              "truncated bzImage: %zu bytes end inside the "
                              "setup header", len);

    unsigned setup_sects = k[BZ_SETUP_SECTS] ? k[BZ_SETUP_SECTS] : 4;
    uint64_t setup_size = (uint64_t)(setup_sects + 1) * 512;
    uint64_t payload = (uint64_t)get_le32(k + BZ_SYSSIZE) * 16;
    if (setup_size >= len)
        return vdk_error_setf(errp, EINVAL,
                              "truncated bzImage: setup code needs %llu bytes, "
                              "file has %zu", (unsigned long long)setup_size,
                              len);
    if (payload == 0)
        payload = len - setup_size;
    if (payload > len - setup_size)
        return vdk_error_setf(errp, EINVAL,
                              "truncated bzImage: header promises %llu kernel "
                              "bytes, file has %llu",
                              (unsigned long long)payload,
                              (unsigned long long)(len - setup_size));
    if (!(k[BZ_XLOADFLAGS] & XLF_KERNEL_64))
        return vdk_error_setf(errp, ENOTSUP,
                              "bzImage has no 64-bit entry point "
                              "(XLF_KERNEL_64 not set)");
    if (!(k[BZ_LOADFLAGS] & LOADED_HIGH))
        return vdk_error_setf(errp, ENOTSUP,
                              "zImage (loaded low) is not supported");

    /* Load address: the preferred one, aligned as a relocatable kernel
       asks; a non-relocatable kernel gets exactly what it names. */
    uint64_t addr = get_le64(k + BZ_PREF_ADDRESS);
    if (addr < LAYOUT_HIGH_MEM)
        addr = LAYOUT_HIGH_MEM;
    if (k[BZ_RELOCATABLE]) {
        uint32_t align = get_le32(k + BZ_KERNEL_ALIGNMENT);
        if (align && (align & (align - 1)))
            return vdk_error_setf(errp, EINVAL,
                                  "bad kernel_alignment 0x%x (not a power "
                                  "of two)", align);
        if (align > (1u << 30))
            return vdk_error_setf(errp, EINVAL,
                                  "bad kernel_alignment 0x%x", align);
        if (align)
            addr = (addr + align - 1) & ~(uint64_t)(align - 1);
    }
    uint64_t need = get_le32(k + BZ_INIT_SIZE);
    if (need < payload)
        need = payload;
    if (addr >= m->low_size || need > m->low_size - addr)
        return vdk_error_setf(errp, ENOSPC,
                              "kernel too big for memory: it needs %llu MiB "
                              "from %llu MiB on, the guest has %llu MiB below "
                              "the MMIO hole (raise --mem)",
                              MIB(need + 0xfffff), MIB(addr),
                              MIB(m->low_size));
    uint8_t *dst = guest_ptr(m, addr, payload);
    uint8_t *zp = guest_ptr(m, LAYOUT_ZERO_PAGE, 4096);
    if (!dst || !zp)
        return vdk_error_setf(errp, ENOSPC, "guest memory too small");
    memcpy(dst, k + setup_size, payload);

    /* Zero page: the setup header as the file has it, then our fields. */
    memset(zp, 0, 4096);
    size_t hdr_end = (size_t)BZ_JUMP + 2 + k[BZ_JUMP + 1];
    if (hdr_end > len)
        hdr_end = len;
    if (hdr_end > ZP_E820_TABLE)
        hdr_end = ZP_E820_TABLE;
    memcpy(zp + BZ_SETUP_SECTS, k + BZ_SETUP_SECTS, hdr_end - BZ_SETUP_SECTS);
    zp[BZ_TYPE_OF_LOADER] = 0xff;
    put_le32(zp + BZ_CODE32_START, (uint32_t)addr);

    size_t cmax = 256;
    if (version >= 0x0206)
        cmax = (size_t)get_le32(k + BZ_CMDLINE_SIZE) + 1;
    int r = boot_put_cmdline(m, in->cmdline, cmax, errp);
    if (r < 0)
        return r;
    put_le32(zp + BZ_CMD_LINE_PTR, (uint32_t)LAYOUT_CMDLINE);

    uint64_t initrd = 0;
    if (in->initrd) {
        uint64_t limit = (uint64_t)get_le32(k + BZ_INITRD_ADDR_MAX) + 1;
        r = boot_place_initrd(m, in->initrd, in->initrd_len, addr + need,
                              limit, &initrd);
        if (r < 0)
            return vdk_error_setf(errp, ENOSPC,
                                  "initrd of %zu bytes does not fit in guest "
                                  "memory above the kernel (raise --mem)",
                                  in->initrd_len);
        put_le32(zp + BZ_RAMDISK_IMAGE, (uint32_t)initrd);
        put_le32(zp + BZ_RAMDISK_SIZE, (uint32_t)in->initrd_len);
        put_le32(zp + ZP_EXT_RAMDISK_IMAGE, (uint32_t)(initrd >> 32));
        put_le32(zp + ZP_EXT_RAMDISK_SIZE, (uint32_t)((uint64_t)in->initrd_len >> 32));
    }
    put_le64(zp + ZP_ACPI_RSDP_ADDR, in->rsdp);

    struct e820_entry map[E820_MAX];
    int n = e820_build(m, map, E820_MAX);
    zp[ZP_E820_ENTRIES] = (uint8_t)n;
    for (int i = 0; i < n; i++) {
        uint8_t *e = zp + ZP_E820_TABLE + 20 * i;
        put_le64(e, map[i].addr);
        put_le64(e + 8, map[i].size);
        put_le32(e + 16, map[i].type);
    }

    out->kind = BOOT_BZIMAGE;
    out->rip = addr + 0x200;
    out->arg = LAYOUT_ZERO_PAGE;
    out->kernel_start = addr;
    out->kernel_end = addr + need;
    out->initrd_addr = initrd;
    out->protocol = version;
    return 0;
}
