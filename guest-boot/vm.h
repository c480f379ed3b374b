/* SPDX-License-Identifier: MIT */
/*
 * One virtual machine: the KVM file descriptors, guest memory, devices,
 * vCPU threads and the verdict that ends the run.
 *
 * Threads: one per vCPU (device emulation for PIO/MMIO exits runs there),
 * disk workers (virtio/blk.c), and the main thread, which waits for the
 * verdict, the timeout, terminal input and signals.  The first verdict
 * wins; setting it wakes the main thread, which then stops everything.
 */
#ifndef VDK_BOOT_VM_H
#define VDK_BOOT_VM_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "guest-boot/hw/serial.h"
#include "guest-boot/mem.h"
#include "guest-boot/virtio/blk.h"
#include "guest-boot/x86/boot.h"
#include "guest-boot/x86/layout.h"
#include "vdk/error.h"

enum vm_verdict {
    VERDICT_NONE = 0,
    VERDICT_POWEROFF,    /* ACPI S5 */
    VERDICT_MATCHED,     /* --expect matched */
    VERDICT_TIMEOUT,
    VERDICT_PANIC,       /* "Kernel panic" on the console */
    VERDICT_KVM_ERROR,   /* triple fault, emulation failure, KVM error */
    VERDICT_RESET,       /* the guest asked for a reset (i8042, ACPI) */
    VERDICT_NO_MATCH,    /* powered off before --expect matched */
    VERDICT_INTERRUPTED, /* SIGINT/SIGTERM/SIGHUP */
};

struct vm;

struct vcpu {
    struct vm *vm;
    int id;
    int fd;
    struct kvm_run *run;
    size_t run_size;
    pthread_t thread;
    bool thread_started;
};

struct vm {
    int kvm_fd;
    int vm_fd;
    bool irqchip;              /* in-kernel PIC/IOAPIC/LAPIC present */
    struct guest_mem mem;
    size_t mem_map_size;
    int ncpus;
    struct vcpu cpu[MAX_CPUS];
    struct boot_entry entry;

    struct serial serial;
    struct virtio_blk *disk[MAX_DISKS];
    int ndisks;

    pthread_mutex_t pm_lock;   /* ACPI PM1 registers */
    uint16_t pm1_sts, pm1_en, pm1_cnt;

    pthread_mutex_t verdict_lock;
    enum vm_verdict verdict;
    char verdict_msg[256];
    int wake_fd;               /* eventfd: the main thread's wakeup */
    volatile sig_atomic_t stopping;
    bool verbose;
};

/* Zero the structure, no file descriptors; call once before anything. */
void vm_init(struct vm *vm);

/*
 * Open /dev/kvm (with a message saying what to do when it is missing or
 * unusable), create the VM with its TSS, in-kernel irqchip and PIT, and
 * map mem_size bytes of RAM (split around the 32-bit MMIO hole).
 */
int vm_create(struct vm *vm, uint64_t mem_size, int ncpus,
              struct vdk_error **errp);
/* Release everything (KVM objects are dropped by a short-lived child
   process, so that the caller need not wait for their teardown). */
void vm_destroy(struct vm *vm);

/* The interrupt line `gsi` of this VM, for a device model to hold. */
struct irq_line vm_irq(struct vm *vm, int gsi);

/* First caller wins; wakes the main thread.  Verdicts that end the
   guest (power-off, reset, triple fault, KVM errors) also stop every vCPU
   at once (vm_stop_guest), so the guest runs no further instruction. */
void vm_set_verdict(struct vm *vm, enum vm_verdict v, const char *fmt, ...)
    VDK_PRINTF(3, 4);
enum vm_verdict vm_get_verdict(struct vm *vm, char *msg, size_t msglen);

/* Exit dispatch from vCPU threads. */
void vm_pio(struct vm *vm, uint16_t port, bool write, uint8_t *data,
            unsigned size);
void vm_mmio(struct vm *vm, uint64_t addr, bool write, uint8_t *data,
             unsigned len);

/* vcpu.c: create the vCPUs with CPUID, MSRs and the boot register state
   for vm->entry; start, stop and join their threads. */
int vcpu_create_all(struct vm *vm, struct vdk_error **errp);
int vcpu_start_all(struct vm *vm, struct vdk_error **errp);
void vcpu_stop_all(struct vm *vm);
/* Make every vCPU leave KVM_RUN and not enter it again; callable from any
   thread, vCPU threads included (they return after the current exit). */
void vm_stop_guest(struct vm *vm);

/* hw/platform.c: ACPI PM1 block and the i8042 reset line. */
bool platform_pio(struct vm *vm, uint16_t port, bool write, uint8_t *data,
                  unsigned size);

#endif /* VDK_BOOT_VM_H */
