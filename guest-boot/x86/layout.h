/* SPDX-License-Identifier: MIT */
/*
 * Guest physical layout chosen by vdk-boot.  Everything the launcher puts
 * in low memory lives below 0xa0000 (boot structures) or in the BIOS area
 * 0xe0000-0xfffff (ACPI tables, where the legacy RSDP search looks).
 */
#ifndef VDK_BOOT_LAYOUT_H
#define VDK_BOOT_LAYOUT_H

#define LAYOUT_GDT          0x500ull   /* boot GDT (5 entries) */
#define LAYOUT_START_INFO   0x6000ull  /* PVH hvm_start_info + module list */
#define LAYOUT_PVH_MEMMAP   0x6200ull  /* PVH memory map (up to 64 entries) */
#define LAYOUT_ZERO_PAGE    0x7000ull  /* bzImage boot_params */
#define LAYOUT_PML4         0x9000ull  /* identity map: PML4, PDPT, 4 PDs */
#define LAYOUT_PDPT         0xa000ull
#define LAYOUT_PD           0xb000ull  /* 4 pages: 4 GiB in 2 MiB pages */
#define LAYOUT_CMDLINE      0x20000ull
#define LAYOUT_CMDLINE_MAX  0x10000ull /* our own bound on --append */
#define LAYOUT_EBDA         0x9fc00ull /* top of low RAM in the e820 map */
#define LAYOUT_ACPI         0xe0000ull /* RSDP first, then the tables */
#define LAYOUT_ACPI_END     0x100000ull
#define LAYOUT_HIGH_MEM     0x100000ull /* 1 MiB: default kernel load */

/* 32-bit hole: RAM stops here; devices live above it. */
#define LAYOUT_MMIO_HOLE    0xc0000000ull
#define LAYOUT_VIRTIO_BASE  0xd0000000ull
#define LAYOUT_VIRTIO_SIZE  0x200ull    /* one virtio-mmio window */
#define LAYOUT_VIRTIO_STRIDE 0x1000ull
#define LAYOUT_IOAPIC       0xfec00000ull
#define LAYOUT_LAPIC        0xfee00000ull

/* Legacy I/O ports. */
#define PORT_COM1           0x3f8
#define IRQ_COM1            4
#define PORT_PM1A_EVT       0x600      /* 4 bytes: status, enable */
#define PORT_PM1A_CNT       0x604      /* 2 bytes */
#define IRQ_SCI             9
#define ACPI_S5_SLP_TYP     5          /* value of \_S5 and PM1 SLP_TYP */

#define MAX_DISKS           8
#define MAX_CPUS            64

#endif /* VDK_BOOT_LAYOUT_H */
