/* SPDX-License-Identifier: MIT */
/*
 * vCPUs: CPUID from KVM_GET_SUPPORTED_CPUID (with per-CPU topology), the
 * boot MSRs, and the entry register state for the two boot protocols:
 *  - bzImage 64-bit: long mode, identity-mapped 4 GiB (2 MiB pages), boot
 *    GDT with __BOOT_CS 0x10 / __BOOT_DS 0x18, rsi = zero page;
 *  - PVH: flat 32-bit protected mode, paging off, ebx = hvm_start_info.
 * Application processors are created in the wait-for-SIPI state the
 * in-kernel local APIC gives them: the guest starts them if it wants.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guest-boot/vm.h"

#define GDT_CODE32 0x08
#define GDT_CODE64 0x10
#define GDT_DATA   0x18
#define GDT_TSS    0x20

#define CR0_PE 0x1ull
#define CR0_MP 0x2ull
#define CR0_ET 0x10ull
#define CR0_NE 0x20ull
#define CR0_WP 0x10000ull
#define CR0_PG 0x80000000ull
#define CR4_PAE 0x20ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull

static struct kvm_cpuid2 *get_supported_cpuid(int kvm_fd)
{
    for (unsigned n = 64; n <= 4096; n *= 2) {
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
        if (!c)
            return NULL;
        c->nent = n;
        if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
            return c;
        free(c);
        if (errno != E2BIG)
            return NULL;
    }
    return NULL;
}

/*
 * kvm_pvm runs guest kernel code through an instruction emulator that
 * stops on xgetbv/xrstor, cmpxchg16b and clac/stac.  Hide the features
 * that lead a kernel to use them.
 */
static bool is_pvm(void)
{
    return access("/sys/module/kvm_pvm", F_OK) == 0;
}

static void pvm_mask(struct kvm_cpuid_entry2 *e)
{
    if (e->function == 1) {
        e->ecx &= ~((1u << 13) | (1u << 26) | (1u << 27) | (1u << 28) |
                    (1u << 12) | (1u << 29)); /* CX16 XSAVE OSXSAVE AVX FMA F16C */
    } else if (e->function == 7 && e->index == 0) {
        e->ebx &= ~((1u << 5) | (1u << 20) | (1u << 16) | (1u << 17) |
                    (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) |
                    (1u << 30) | (1u << 31)); /* AVX2 SMAP AVX512* */
        e->ecx &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) |
                    (1u << 14));
    } else if (e->function == 0xd) {
        e->eax = e->ebx = e->ecx = e->edx = 0;
    }
}

#define KVM_SIGNATURE_LEAF 0x40000000u
#define KVM_FEATURES_LEAF  0x40000001u

/*
 * The guest must know it runs under KVM: the hypervisor bit and KVM's
 * signature leaf lead Linux to kvm-clock (a stable clocksource instead of
 * calibrating the TSC against the PIT) and to paravirtual spinlocks, EOI
 * and TLB flushes as KVM offers them in its feature leaf.  KVM lists both
 * leaves in KVM_GET_SUPPORTED_CPUID; when a hypervisor does not, the
 * signature leaf is added with no features (the caller left room).
 */
static void add_kvm_leaves(struct kvm_cpuid2 *c)
{
    bool sig = false, feat = false;
    for (unsigned i = 0; i < c->nent; i++) {
        sig |= c->entries[i].function == KVM_SIGNATURE_LEAF;
        feat |= c->entries[i].function == KVM_FEATURES_LEAF;
    }
    if (!sig) {
        struct kvm_cpuid_entry2 *e = &c->entries[c->nent++];
        memset(e, 0, sizeof(*e));
        e->function = KVM_SIGNATURE_LEAF;
        e->eax = KVM_FEATURES_LEAF;
        memcpy(&e->ebx, "KVMK", 4);
        memcpy(&e->ecx, "VMKV", 4);
        memcpy(&e->edx, "M\0\0\0", 4);
    }
    if (!feat) {
        struct kvm_cpuid_entry2 *e = &c->entries[c->nent++];
        memset(e, 0, sizeof(*e));
        e->function = KVM_FEATURES_LEAF;
    }
}

static void cpuid_for(struct kvm_cpuid2 *c, int id, int ncpus, bool pvm)
{
    add_kvm_leaves(c);
    for (unsigned i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == 1) {
            e->ebx = (e->ebx & 0x0000ffffu) | ((uint32_t)id << 24) |
                     ((uint32_t)(ncpus > 255 ? 255 : ncpus) << 16);
            e->ecx |= 1u << 31; /* hypervisor present */
            if (ncpus > 1)
                e->edx |= 1u << 28; /* HTT: several logical processors */
        } else if (e->function == 0xb || e->function == 0x1f) {
            e->edx = (uint32_t)id; /* x2APIC ID */
        }
        if (pvm)
            pvm_mask(e);
    }
}

static int set_msrs(struct vcpu *c)
{
    static const struct { uint32_t index; uint64_t data; } boot_msrs[] = {
        { 0x1a0, 1 },           /* IA32_MISC_ENABLE: fast strings */
        { 0x2ff, (1u << 11) | 6 }, /* MTRRdefType: enabled, write-back */
        { 0x174, 0 }, { 0x175, 0 }, { 0x176, 0 }, /* SYSENTER_* */
        { 0xc0000081, 0 }, { 0xc0000082, 0 }, { 0xc0000083, 0 },
        { 0xc0000084, 0 }, { 0xc0000102, 0 }, /* STAR..KERNEL_GS_BASE */
        { 0x10, 0 },            /* TSC */
    };
    /* One at a time: a hypervisor lacking one MSR must not lose the rest. */
    for (size_t i = 0; i < sizeof(boot_msrs) / sizeof(boot_msrs[0]); i++) {
        struct {
            struct kvm_msrs h;
            struct kvm_msr_entry e;
        } m;
        memset(&m, 0, sizeof(m));
        m.h.nmsrs = 1;
        m.e.index = boot_msrs[i].index;
        m.e.data = boot_msrs[i].data;
        if (ioctl(c->fd, KVM_SET_MSRS, &m) != 1 && c->vm->verbose)
            fprintf(stderr, "vdk-boot: MSR 0x%x not settable (ignored)\n",
                    boot_msrs[i].index);
    }
    return 0;
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64,
                bool db)
{
    memset(s, 0, sizeof(*s));
    s->base = 0;
    s->limit = 0xffffffff;
    s->selector = sel;
    s->type = type;
    s->present = 1;
    s->s = 1;
    s->l = code64;
    s->db = db;
    s->g = 1;
}

static int setup_boot_state(struct vm *vm, struct vcpu *c,
                            struct vdk_error **errp)
{
    const struct guest_mem *m = &vm->mem;
    bool lm = vm->entry.kind == BOOT_BZIMAGE;
    uint8_t *gdt = guest_ptr(m, LAYOUT_GDT, 8 * 6);
    uint8_t *pt = guest_ptr(m, LAYOUT_PML4, 0x6000);
    if (!gdt || !pt)
        return vdk_error_setf(errp, ENOSPC, "guest memory too small");

    memset(gdt, 0, 8 * 6);
    put_le64(gdt + GDT_CODE32, 0x00cf9b000000ffffull);
    put_le64(gdt + GDT_CODE64, 0x00af9b000000ffffull);
    put_le64(gdt + GDT_DATA, 0x00cf93000000ffffull);
    put_le64(gdt + GDT_TSS, 0x00008b0000000067ull);

    struct kvm_sregs s;
    if (ioctl(c->fd, KVM_GET_SREGS, &s) < 0)
        return vdk_error_setf_errno(errp, errno, "KVM_GET_SREGS");
    s.gdt.base = LAYOUT_GDT;
    s.gdt.limit = 8 * 6 - 1;
    s.idt.base = 0;
    s.idt.limit = 0;
    seg(&s.cs, lm ? GDT_CODE64 : GDT_CODE32, 11, lm, !lm);
    seg(&s.ds, GDT_DATA, 3, false, true);
    s.es = s.fs = s.gs = s.ss = s.ds;
    memset(&s.tr, 0, sizeof(s.tr));
    s.tr.selector = GDT_TSS;
    s.tr.limit = 0x67;
    s.tr.type = 11; /* busy 32-bit TSS */
    s.tr.present = 1;
    memset(&s.ldt, 0, sizeof(s.ldt));
    s.ldt.type = 2;
    s.ldt.unusable = 1;

    if (lm) {
        /* Identity map of the first 4 GiB: PML4 -> PDPT -> 4 PDs. */
        memset(pt, 0, 0x6000);
        put_le64(pt, LAYOUT_PDPT | 3);
        for (uint64_t i = 0; i < 4; i++) {
            put_le64(pt + 0x1000 + 8 * i, (LAYOUT_PD + 0x1000 * i) | 3);
            for (uint64_t j = 0; j < 512; j++)
                put_le64(pt + 0x2000 + 0x1000 * i + 8 * j,
                         ((i * 512 + j) << 21) | 0x83);
        }
        s.cr3 = LAYOUT_PML4;
        s.cr4 = CR4_PAE;
        s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
        s.efer = EFER_LME | EFER_LMA;
    } else {
        s.cr3 = 0;
        s.cr4 = 0;
        s.cr0 = CR0_PE | CR0_ET;
        s.efer = 0;
    }
    if (ioctl(c->fd, KVM_SET_SREGS, &s) < 0)
        return vdk_error_setf_errno(errp, errno, "KVM_SET_SREGS");

    struct kvm_regs r;
    memset(&r, 0, sizeof(r));
    r.rflags = 2;
    r.rip = vm->entry.rip;
    if (lm)
        r.rsi = vm->entry.arg;
    else
        r.rbx = vm->entry.arg;
    if (ioctl(c->fd, KVM_SET_REGS, &r) < 0)
        return vdk_error_setf_errno(errp, errno, "KVM_SET_REGS");
    return 0;
}

/* LINT0 = ExtINT, LINT1 = NMI: the PC's virtual-wire wiring. */
static void setup_lapic(struct vcpu *c)
{
    struct kvm_lapic_state l;
    if (ioctl(c->fd, KVM_GET_LAPIC, &l) < 0)
        return;
    uint32_t lvt0, lvt1;
    memcpy(&lvt0, l.regs + 0x350, 4);
    memcpy(&lvt1, l.regs + 0x360, 4);
    lvt0 = (lvt0 & ~0x700u & ~(1u << 16)) | 0x700;
    lvt1 = (lvt1 & ~0x700u & ~(1u << 16)) | 0x400;
    memcpy(l.regs + 0x350, &lvt0, 4);
    memcpy(l.regs + 0x360, &lvt1, 4);
    ioctl(c->fd, KVM_SET_LAPIC, &l);
}

int vcpu_create_all(struct vm *vm, struct vdk_error **errp)
{
    int mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (mmap_size <= 0)
        return vdk_error_setf_errno(errp, errno, "KVM_GET_VCPU_MMAP_SIZE");
    struct kvm_cpuid2 *supported = get_supported_cpuid(vm->kvm_fd);
    if (!supported)
        return vdk_error_setf_errno(errp, errno, "KVM_GET_SUPPORTED_CPUID");
    size_t csize = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
    /* Room for the two KVM leaves add_kvm_leaves() may append. */
    struct kvm_cpuid2 *cpuid = malloc(csize + 2 * sizeof(supported->entries[0]));
    bool pvm = is_pvm();
    int r = 0;

    for (int i = 0; i < vm->ncpus && r == 0; i++) {
        struct vcpu *c = &vm->cpu[i];
        c->vm = vm;
        c->id = i;
        c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, i);
        if (c->fd < 0) {
            r = vdk_error_setf_errno(errp, errno, "creating vCPU %d", i);
            break;
        }
        c->run_size = (size_t)mmap_size;
        c->run = mmap(NULL, c->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                      c->fd, 0);
        if (c->run == MAP_FAILED) {
            c->run = NULL;
            r = vdk_error_setf_errno(errp, errno, "mapping vCPU %d", i);
            break;
        }
        if (!cpuid) {
            r = vdk_error_setf(errp, ENOMEM, "out of memory");
            break;
        }
        memcpy(cpuid, supported, csize);
        cpuid_for(cpuid, i, vm->ncpus, pvm);
        if (ioctl(c->fd, KVM_SET_CPUID2, cpuid) < 0) {
            r = vdk_error_setf_errno(errp, errno, "KVM_SET_CPUID2");
            break;
        }
        set_msrs(c);
        struct kvm_fpu fpu;
        memset(&fpu, 0, sizeof(fpu));
        fpu.fcw = 0x37f;
        fpu.mxcsr = 0x1f80;
        ioctl(c->fd, KVM_SET_FPU, &fpu);
        setup_lapic(c);
        if (i == 0)
            r = setup_boot_state(vm, c, errp);
    }
    free(supported);
    free(cpuid);
    return r;
}

static void report_internal_error(struct vcpu *c)
{
    struct kvm_regs r;
    unsigned long long rip = 0;
    if (ioctl(c->fd, KVM_GET_REGS, &r) == 0)
        rip = r.rip;
    vm_set_verdict(c->vm, VERDICT_KVM_ERROR,
                   "KVM could not run vCPU %d (internal error %u%s) at "
                   "rip 0x%llx", c->id, c->run->internal.suberror,
                   c->run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
                       ? ": instruction emulation failed" : "",
                   rip);
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *c = arg;
    struct vm *vm = c->vm;
    struct kvm_run *run = c->run;

    while (!__atomic_load_n(&vm->stopping, __ATOMIC_ACQUIRE)) {
        if (ioctl(c->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            vm_set_verdict(vm, VERDICT_KVM_ERROR, "KVM_RUN on vCPU %d: %s",
                           c->id, strerror(errno));
            break;
        }
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            uint8_t *data = (uint8_t *)run + run->io.data_offset;
            unsigned size = run->io.size;
            if (run->io.data_offset + (uint64_t)size * run->io.count > c->run_size)
                break;
            for (uint32_t i = 0; i < run->io.count; i++)
                vm_pio(vm, run->io.port, run->io.direction == KVM_EXIT_IO_OUT,
                       data + (size_t)i * size, size);
            break;
        }
        case KVM_EXIT_MMIO:
            vm_mmio(vm, run->mmio.phys_addr, run->mmio.is_write, run->mmio.data,
                    run->mmio.len > 8 ? 8 : run->mmio.len);
            break;
        case KVM_EXIT_HLT:
            /* Only without an in-kernel APIC: nothing can wake it. */
            while (!__atomic_load_n(&vm->stopping, __ATOMIC_ACQUIRE))
                usleep(10000);
            break;
        case KVM_EXIT_SHUTDOWN: {
            struct kvm_regs r;
            unsigned long long rip = 0;
            if (ioctl(c->fd, KVM_GET_REGS, &r) == 0)
                rip = r.rip;
            vm_set_verdict(vm, VERDICT_KVM_ERROR,
                           "triple fault: vCPU %d shut down at rip 0x%llx",
                           c->id, rip);
            return NULL;
        }
        case KVM_EXIT_SYSTEM_EVENT:
            if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
                vm_set_verdict(vm, VERDICT_POWEROFF, "guest powered off");
            else if (run->system_event.type == KVM_SYSTEM_EVENT_CRASH)
                vm_set_verdict(vm, VERDICT_PANIC, "guest crashed");
            else
                vm_set_verdict(vm, VERDICT_RESET, "guest requested a reset");
            return NULL;
        case KVM_EXIT_INTERNAL_ERROR:
            report_internal_error(c);
            return NULL;
        case KVM_EXIT_FAIL_ENTRY:
            vm_set_verdict(vm, VERDICT_KVM_ERROR,
                           "KVM could not enter vCPU %d (hardware reason 0x%llx)",
                           c->id, (unsigned long long)
                           run->fail_entry.hardware_entry_failure_reason);
            return NULL;
        case KVM_EXIT_INTR:
            break;
        default:
            vm_set_verdict(vm, VERDICT_KVM_ERROR,
                           "unexpected KVM exit %u on vCPU %d",
                           run->exit_reason, c->id);
            return NULL;
        }
    }
    return NULL;
}

static void kick_handler(int sig)
{
    (void)sig; /* only interrupts KVM_RUN */
}

int vcpu_start_all(struct vm *vm, struct vdk_error **errp)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kick_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    for (int i = 0; i < vm->ncpus; i++) {
        int r = pthread_create(&vm->cpu[i].thread, NULL, vcpu_thread,
                               &vm->cpu[i]);
        if (r)
            return vdk_error_setf_errno(errp, r, "starting vCPU %d", i);
        __atomic_store_n(&vm->cpu[i].thread_started, true, __ATOMIC_RELEASE);
    }
    return 0;
}

void vm_stop_guest(struct vm *vm)
{
    __atomic_store_n(&vm->stopping, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < vm->ncpus; i++) {
        struct vcpu *c = &vm->cpu[i];
        if (c->run)
            __atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_RELEASE);
        if (__atomic_load_n(&c->thread_started, __ATOMIC_ACQUIRE) &&
            !pthread_equal(c->thread, pthread_self()))
            pthread_kill(c->thread, SIGUSR1);
    }
}

void vcpu_stop_all(struct vm *vm)
{
    vm_stop_guest(vm);
    for (int i = 0; i < vm->ncpus; i++) {
        struct vcpu *c = &vm->cpu[i];
        if (!c->thread_started)
            continue;
        /* A thread may have been between its stop check and KVM_RUN when
           the signal came: immediate_exit makes that KVM_RUN return. */
        pthread_join(c->thread, NULL);
        c->thread_started = false;
    }
}
