/* SPDX-License-Identifier: MIT */
/*
 * Shared parts of kernel loading: the memory map, the command line, the
 * initrd, and telling a bzImage from an ELF kernel.
 */
#include <errno.h>
#include <string.h>

#include "guest-boot/x86/boot.h"
#include "guest-boot/x86/layout.h"

int e820_build(const struct guest_mem *m, struct e820_entry *out, int max)
{
    struct e820_entry map[E820_MAX];
    int n = 0;

    /* Conventional memory up to the EBDA, the BIOS area reserved (the
       ACPI tables live there), then RAM from 1 MiB on. */
    map[n++] = (struct e820_entry){ 0, LAYOUT_EBDA, E820_RAM };
    map[n++] = (struct e820_entry){ LAYOUT_EBDA, 0xa0000 - LAYOUT_EBDA,
                                    E820_RESERVED };
    map[n++] = (struct e820_entry){ LAYOUT_ACPI,
                                    LAYOUT_ACPI_END - LAYOUT_ACPI,
                                    E820_RESERVED };
    if (m->low_size > LAYOUT_HIGH_MEM)
        map[n++] = (struct e820_entry){ LAYOUT_HIGH_MEM,
                                        m->low_size - LAYOUT_HIGH_MEM,
                                        E820_RAM };
    if (m->high_size)
        map[n++] = (struct e820_entry){ GUEST_HIGH_BASE, m->high_size,
                                        E820_RAM };
    if (n > max)
        n = max;
    memcpy(out, map, (size_t)n * sizeof(map[0]));
    return n;
}

int boot_place_initrd(const struct guest_mem *m, const uint8_t *data,
                      size_t len, uint64_t floor, uint64_t limit,
                      uint64_t *addr)
{
    if (limit > m->low_size)
        limit = m->low_size;
    if (len > limit || limit - len < floor)
        return -ENOSPC;
    uint64_t a = (limit - len) & ~0xfffull;
    if (a < floor)
        return -ENOSPC;
    uint8_t *p = guest_ptr(m, a, len);
    if (!p)
        return -ENOSPC;
    memcpy(p, data, len);
    *addr = a;
    return 0;
}

int boot_put_cmdline(const struct guest_mem *m, const char *cmdline,
                     size_t max, struct vdk_error **errp)
{
    size_t len = strlen(cmdline);
    if (max > LAYOUT_CMDLINE_MAX)
        max = LAYOUT_CMDLINE_MAX;
    if (len + 1 > max)
        return vdk_error_setf(errp, E2BIG,
                              "kernel command line is %zu bytes, the kernel "
                              "accepts at most %zu", len, max - 1);
    uint8_t *p = guest_ptr(m, LAYOUT_CMDLINE, len + 1);
    if (!p)
        return vdk_error_setf(errp, ENOSPC, "no room for the command line");
    memcpy(p, cmdline, len + 1);
    return 0;
}

int boot_load_kernel(const struct guest_mem *m, const struct boot_input *in,
                     struct boot_entry *out, struct vdk_error **errp)
{
    const uint8_t *k = in->kernel;
    size_t len = in->kernel_len;

    memset(out, 0, sizeof(*out));
    if (len >= 4 && memcmp(k, "\177ELF", 4) == 0)
        return pvh_load(m, in, out, errp);
    if (len >= BZ_HEADER + 4 && get_le32(k + BZ_HEADER) == BZ_HDR_MAGIC &&
        get_le16(k + BZ_BOOT_FLAG) == 0xaa55)
        return bzimage_load(m, in, out, errp);
    if (len < 1024)
        return vdk_error_setf(errp, EINVAL,
                              "not a kernel: %zu bytes is too short for a "
                              "bzImage or ELF header", len);
    return vdk_error_setf(errp, EINVAL,
                          "not a bzImage or ELF kernel (wrong magic: no "
                          "\"HdrS\" setup header and no ELF header)");
}
