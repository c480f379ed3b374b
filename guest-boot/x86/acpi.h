/* SPDX-License-Identifier: MIT */
/*
 * ACPI tables for the guest: RSDP -> XSDT -> FADT (with FACS and DSDT),
 * MADT.  The FADT describes a PM1a event/control block so that writing
 * SLP_TYP=5|SLP_EN powers the guest off (ACPI S5), and a reset register
 * on the i8042 port.  The DSDT declares \_S5 and one LNRO0005
 * (virtio-mmio) device per disk with its MMIO window and interrupt, in a
 * few bytes of hand-assembled AML.
 */
#ifndef VDK_BOOT_X86_ACPI_H
#define VDK_BOOT_X86_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "guest-boot/x86/layout.h"

struct acpi_config {
    int ncpus;                       /* 1..MAX_CPUS */
    int ndev;                        /* virtio-mmio devices, 0..MAX_DISKS */
    uint64_t dev_base[MAX_DISKS];
    uint32_t dev_size;
    uint8_t dev_irq[MAX_DISKS];
};

/*
 * Build the tables into buf, which the guest sees at guest address base
 * (16-byte aligned).  Returns the number of bytes used (> 0) and sets
 * *rsdp, or -ENOSPC when buflen is too small.
 */
int acpi_build(uint8_t *buf, size_t buflen, uint64_t base,
               const struct acpi_config *cfg, uint64_t *rsdp);

/* Sum of bytes, for checksums (a valid table sums to 0). */
uint8_t acpi_sum(const uint8_t *p, size_t len);

#endif /* VDK_BOOT_X86_ACPI_H */
