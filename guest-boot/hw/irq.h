/* SPDX-License-Identifier: MIT */
/*
 * One interrupt line as a device model holds it: the VM whose interrupt
 * controller it reaches and the line's GSI.  Devices keep it by value and
 * drive it with irq_line_set(); there is no untyped opaque pointer, so a
 * device can never hand the controller some other object (vdk-boot once
 * passed the console where the VM was expected, and the UART's interrupt
 * never reached the guest).
 */
#ifndef VDK_BOOT_HW_IRQ_H
#define VDK_BOOT_HW_IRQ_H

struct vm;

struct irq_line {
    struct vm *vm;   /* NULL: not connected (unit tests, fuzz targets) */
    int gsi;
};

/* Set the line to level (0 or 1); vm.c.  A failing KVM_IRQ_LINE ends the
   run with a KVM error verdict. */
void irq_line_set(const struct irq_line *line, int level);

#endif /* VDK_BOOT_HW_IRQ_H */
