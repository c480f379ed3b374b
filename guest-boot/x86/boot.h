/* SPDX-License-Identifier: MIT */
/*
 * Kernel loading: the bzImage 64-bit boot protocol (Linux
 * Documentation/arch/x86/boot.rst, zero-page.rst) and ELF kernels with a
 * PVH entry note (Xen's hvm_start_info ABI).  Both write straight into
 * guest memory and return the entry state for the boot vCPU.
 *
 * The kernel file is untrusted: every header field is bounded against the
 * file length and guest memory before use, and a bad file gives a one-line
 * error, never a partial load that runs.
 */
#ifndef VDK_BOOT_X86_BOOT_H
#define VDK_BOOT_X86_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "guest-boot/mem.h"
#include "vdk/error.h"

/* e820 / PVH memory map entry types. */
enum { E820_RAM = 1, E820_RESERVED = 2, E820_ACPI = 3 };

struct e820_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
};

#define E820_MAX 8

/* The map vdk-boot gives every guest; returns the number of entries. */
int e820_build(const struct guest_mem *m, struct e820_entry *out, int max);

enum boot_kind { BOOT_BZIMAGE, BOOT_PVH };

struct boot_input {
    const uint8_t *kernel;
    size_t kernel_len;
    const uint8_t *initrd;  /* NULL: none */
    size_t initrd_len;
    const char *cmdline;    /* never NULL */
    uint64_t rsdp;          /* guest address of the ACPI RSDP */
};

struct boot_entry {
    enum boot_kind kind;
    uint64_t rip;           /* 64-bit entry (bzImage) or 32-bit (PVH) */
    uint64_t arg;           /* rsi = zero page, or ebx = hvm_start_info */
    uint64_t kernel_start;  /* loaded range, for -v and tests */
    uint64_t kernel_end;
    uint64_t initrd_addr;   /* 0: none */
    uint16_t protocol;      /* bzImage boot protocol version, 0 for PVH */
};

/* Detect the kind and load.  Errors name what is wrong with the file. */
int boot_load_kernel(const struct guest_mem *m, const struct boot_input *in,
                     struct boot_entry *out, struct vdk_error **errp);

int bzimage_load(const struct guest_mem *m, const struct boot_input *in,
                 struct boot_entry *out, struct vdk_error **errp);
int pvh_load(const struct guest_mem *m, const struct boot_input *in,
             struct boot_entry *out, struct vdk_error **errp);

/*
 * Place the initrd as high as possible below `limit` (exclusive) and above
 * `floor`, 4 KiB aligned, and copy it.  Returns 0 and *addr, or -ENOSPC.
 */
int boot_place_initrd(const struct guest_mem *m, const uint8_t *data,
                      size_t len, uint64_t floor, uint64_t limit,
                      uint64_t *addr);

/* Copy the command line to LAYOUT_CMDLINE; -E2BIG if longer than max-1. */
int boot_put_cmdline(const struct guest_mem *m, const char *cmdline,
                     size_t max, struct vdk_error **errp);

/* Boot protocol constants (boot.rst). */
#define BZ_SETUP_SECTS      0x1f1
#define BZ_SYSSIZE          0x1f4
#define BZ_BOOT_FLAG        0x1fe
#define BZ_JUMP             0x200
#define BZ_HEADER           0x202 /* "HdrS" */
#define BZ_VERSION          0x206
#define BZ_TYPE_OF_LOADER   0x210
#define BZ_LOADFLAGS        0x211
#define BZ_CODE32_START     0x214
#define BZ_RAMDISK_IMAGE    0x218
#define BZ_RAMDISK_SIZE     0x21c
#define BZ_HEAP_END_PTR     0x224
#define BZ_CMD_LINE_PTR     0x228
#define BZ_INITRD_ADDR_MAX  0x22c
#define BZ_KERNEL_ALIGNMENT 0x230
#define BZ_RELOCATABLE      0x234
#define BZ_XLOADFLAGS       0x236
#define BZ_CMDLINE_SIZE     0x238
#define BZ_PREF_ADDRESS     0x258
#define BZ_INIT_SIZE        0x260
#define BZ_HDR_MAGIC        0x53726448u /* "HdrS" */
#define BZ_MIN_PROTOCOL     0x020c      /* 2.12: xloadflags, 64-bit entry */
#define XLF_KERNEL_64       (1u << 0)
#define LOADED_HIGH         (1u << 0)

/* Zero page (zero-page.rst). */
#define ZP_ACPI_RSDP_ADDR   0x070
#define ZP_EXT_RAMDISK_IMAGE 0x0c0
#define ZP_EXT_RAMDISK_SIZE 0x0c4
#define ZP_EXT_CMD_LINE_PTR 0x0c8
#define ZP_E820_ENTRIES     0x1e8
#define ZP_E820_TABLE       0x2d0
#define ZP_E820_MAX         128

/* PVH (xen/include/public/arch-x86/hvm/start_info.h). */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC     0x336ec578u

#endif /* VDK_BOOT_X86_BOOT_H */
