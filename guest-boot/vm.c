/* SPDX-License-Identifier: MIT */
/*
 * VM setup with KVM ioctls, the verdict, and I/O exit dispatch.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guest-boot/vm.h"

#define KVM_TSS_ADDR      0xfffbd000ul
#define KVM_IDENTITY_ADDR 0xfffbc000ull

static int open_kvm(struct vdk_error **errp)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd >= 0)
        return fd;
    int e = errno;
    if (e == ENOENT)
        return vdk_error_setf(errp, e,
                              "/dev/kvm does not exist: enable virtualization "
                              "in the firmware and load kvm (modprobe kvm_intel "
                              "or kvm_amd), or run where KVM is available");
    if (e == EACCES || e == EPERM)
        return vdk_error_setf(errp, e,
                              "no permission to open /dev/kvm: add your user "
                              "to the group owning it (usually 'kvm') and log "
                              "in again");
    return vdk_error_setf_errno(errp, e, "cannot open /dev/kvm");
}

void vm_init(struct vm *vm)
{
    memset(vm, 0, sizeof(*vm));
    vm->kvm_fd = vm->vm_fd = vm->wake_fd = -1;
    for (int i = 0; i < MAX_CPUS; i++)
        vm->cpu[i].fd = -1;
    pthread_mutex_init(&vm->verdict_lock, NULL);
    pthread_mutex_init(&vm->pm_lock, NULL);
}

int vm_create(struct vm *vm, uint64_t mem_size, int ncpus,
              struct vdk_error **errp)
{
    vm->ncpus = ncpus;

    int r = open_kvm(errp);
    if (r < 0)
        return r;
    vm->kvm_fd = r;
    int api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
    if (api < 0)
        return vdk_error_setf_errno(errp, errno,
                                    "/dev/kvm is not a KVM device: it is not "
                                    "usable (KVM_GET_API_VERSION)");
    if (api != KVM_API_VERSION)
        return vdk_error_setf(errp, ENOTSUP,
                              "/dev/kvm speaks KVM API %d, not %d: it is not "
                              "usable", api, KVM_API_VERSION);
    if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) <= 0)
        return vdk_error_setf(errp, ENOTSUP,
                              "/dev/kvm lacks user memory regions: it is not "
                              "usable");
    int max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    if (max <= 0)
        max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
    if (max > 0 && ncpus > max)
        return vdk_error_setf(errp, EINVAL,
                              "--cpus %d is more than this KVM allows (%d)",
                              ncpus, max);

    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0)
        return vdk_error_setf_errno(errp, errno,
                                    "/dev/kvm is not usable: KVM_CREATE_VM "
                                    "failed");
    /* VMX needs these two pages below 4 GiB; other hypervisors may not
       implement them, which is harmless. */
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0 && vm->verbose)
        fprintf(stderr, "vdk-boot: KVM_SET_TSS_ADDR: %s (ignored)\n",
                strerror(errno));
    uint64_t ident = KVM_IDENTITY_ADDR;
    if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0)
        ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &ident);
    /* Without an in-kernel irqchip the guest gets no interrupts (and no
       PIT), which polling guests such as the test guest do not need:
       carry on, but say so. */
    vm->irqchip = ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) == 0;
    if (!vm->irqchip) {
        fprintf(stderr, "vdk-boot: warning: KVM_CREATE_IRQCHIP: %s; the guest "
                "will get no interrupts\n", strerror(errno));
    } else {
        struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
        if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
            fprintf(stderr, "vdk-boot: warning: KVM_CREATE_PIT2: %s; the "
                    "guest has no 8254 timer\n", strerror(errno));
    }

    uint64_t low = mem_size < LAYOUT_MMIO_HOLE ? mem_size : LAYOUT_MMIO_HOLE;
    vm->mem.low_size = low;
    vm->mem.high_size = mem_size - low;
    vm->mem_map_size = mem_size;
    void *p = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return vdk_error_setf_errno(errp, errno,
                                    "cannot map %llu MiB of guest memory",
                                    (unsigned long long)(mem_size >> 20));
    vm->mem.host = p;
    /* Huge pages make the hypervisor's mappings of guest RAM much cheaper
       to build (notably with shadow paging); advisory only. */
    madvise(p, mem_size, MADV_HUGEPAGE);
    struct kvm_userspace_memory_region reg = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = low,
        .userspace_addr = (uintptr_t)p,
    };
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &reg) < 0)
        return vdk_error_setf_errno(errp, errno, "KVM_SET_USER_MEMORY_REGION");
    if (vm->mem.high_size) {
        reg = (struct kvm_userspace_memory_region){
            .slot = 1, .guest_phys_addr = GUEST_HIGH_BASE,
            .memory_size = vm->mem.high_size,
            .userspace_addr = (uintptr_t)p + low,
        };
        if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &reg) < 0)
            return vdk_error_setf_errno(errp, errno,
                                        "KVM_SET_USER_MEMORY_REGION (high)");
    }

    vm->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (vm->wake_fd < 0)
        return vdk_error_setf_errno(errp, errno, "eventfd");
    return 0;
}

static bool is_kvm_fd(const struct vm *vm, int fd)
{
    if (fd == vm->kvm_fd || fd == vm->vm_fd)
        return true;
    for (int i = 0; i < vm->ncpus; i++)
        if (fd == vm->cpu[i].fd)
            return true;
    return false;
}

void vm_destroy(struct vm *vm)
{
    for (int i = 0; i < vm->ncpus; i++)
        if (vm->cpu[i].run)
            munmap(vm->cpu[i].run, vm->cpu[i].run_size);
    if (vm->mem.host)
        munmap(vm->mem.host, vm->mem_map_size);
    if (vm->wake_fd >= 0)
        close(vm->wake_fd);

    /*
     * Destroying a VM that has run can take a hundred milliseconds on some
     * hosts (the kernel waits for RCU grace periods), and the run is over:
     * a child process inherits the last references to the KVM objects and
     * drops them after we have exited.  It keeps nothing else open (no
     * pipe of our caller's, no image lock), so nobody waits for it.
     */
    if (vm->vm_fd >= 0 && fork() == 0) {
        for (int fd = 0; fd < 1024; fd++)
            if (!is_kvm_fd(vm, fd))
                close(fd);
        for (int i = 0; i < vm->ncpus; i++)
            if (vm->cpu[i].fd >= 0)
                close(vm->cpu[i].fd);
        close(vm->vm_fd);
        close(vm->kvm_fd);
        _exit(0);
    }
    for (int i = 0; i < vm->ncpus; i++)
        if (vm->cpu[i].fd >= 0)
            close(vm->cpu[i].fd);
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    pthread_mutex_destroy(&vm->verdict_lock);
    pthread_mutex_destroy(&vm->pm_lock);
}

struct irq_line vm_irq(struct vm *vm, int gsi)
{
    return (struct irq_line){ .vm = vm, .gsi = gsi };
}

void irq_line_set(const struct irq_line *line, int level)
{
    struct vm *vm = line->vm;
    if (!vm || !vm->irqchip)
        return;
    struct kvm_irq_level l = { .irq = (uint32_t)line->gsi,
                               .level = (uint32_t)level };
    if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0)
        vm_set_verdict(vm, VERDICT_KVM_ERROR, "KVM_IRQ_LINE (GSI %d): %s",
                       line->gsi, strerror(errno));
}

void vm_set_verdict(struct vm *vm, enum vm_verdict v, const char *fmt, ...)
{
    pthread_mutex_lock(&vm->verdict_lock);
    if (vm->verdict == VERDICT_NONE) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(vm->verdict_msg, sizeof(vm->verdict_msg), fmt, ap);
        va_end(ap);
        vm->verdict = v;
        /* The guest is finished: not one more instruction (a guest that
           powered off must not print after its last words). */
        if (v == VERDICT_POWEROFF || v == VERDICT_RESET ||
            v == VERDICT_KVM_ERROR)
            vm_stop_guest(vm);
        uint64_t one = 1;
        if (write(vm->wake_fd, &one, sizeof(one)) < 0) {
            /* the counter is already non-zero: the main thread wakes */
        }
    }
    pthread_mutex_unlock(&vm->verdict_lock);
}

enum vm_verdict vm_get_verdict(struct vm *vm, char *msg, size_t msglen)
{
    pthread_mutex_lock(&vm->verdict_lock);
    enum vm_verdict v = vm->verdict;
    if (msg && msglen)
        snprintf(msg, msglen, "%s", vm->verdict_msg);
    pthread_mutex_unlock(&vm->verdict_lock);
    return v;
}

void vm_pio(struct vm *vm, uint16_t port, bool write, uint8_t *data,
            unsigned size)
{
    if (port >= PORT_COM1 && port < PORT_COM1 + 8 && size == 1) {
        if (write)
            serial_write(&vm->serial, port - PORT_COM1, data[0]);
        else
            data[0] = serial_read(&vm->serial, port - PORT_COM1);
        return;
    }
    if (platform_pio(vm, port, write, data, size))
        return;
    /* Nothing there: reads float high, writes are dropped. */
    if (!write)
        memset(data, 0xff, size);
}

void vm_mmio(struct vm *vm, uint64_t addr, bool write, uint8_t *data,
             unsigned len)
{
    if (addr >= LAYOUT_VIRTIO_BASE && len <= 8) {
        uint64_t i = (addr - LAYOUT_VIRTIO_BASE) / LAYOUT_VIRTIO_STRIDE;
        uint64_t off = (addr - LAYOUT_VIRTIO_BASE) % LAYOUT_VIRTIO_STRIDE;
        if (i < (uint64_t)vm->ndisks && off + len <= LAYOUT_VIRTIO_SIZE) {
            struct virtio_mmio *d = &vm->disk[i]->mmio;
            if (write)
                virtio_mmio_write(d, off, data, len);
            else
                virtio_mmio_read(d, off, data, len);
            return;
        }
    }
    if (!write)
        memset(data, 0xff, len);
}
