/* SPDX-License-Identifier: MIT */
/*
 * ELF kernels with a PVH entry: the PT_LOAD segments go to their physical
 * addresses, and the vCPU enters the XEN_ELFNOTE_PHYS32_ENTRY address in
 * flat 32-bit protected mode with ebx pointing at an hvm_start_info
 * (version 1: command line, RSDP, initrd as module 0, memory map).
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "guest-boot/x86/boot.h"
#include "guest-boot/x86/layout.h"

#define ELF_MAX_PHDRS 64
#define PT_LOAD 1
#define PT_NOTE 4
#define EM_386 3
#define EM_X86_64 62

struct phdr {
    uint32_t type;
    uint64_t offset, paddr, filesz, memsz;
};

static void read_phdr(const uint8_t *p, bool is64, struct phdr *ph)
{
    ph->type = get_le32(p);
    if (is64) {
        ph->offset = get_le64(p + 8);
        ph->paddr = get_le64(p + 24);
        ph->filesz = get_le64(p + 32);
        ph->memsz = get_le64(p + 40);
    } else {
        ph->offset = get_le32(p + 4);
        ph->paddr = get_le32(p + 12);
        ph->filesz = get_le32(p + 16);
        ph->memsz = get_le32(p + 20);
    }
}

/* Look for the PHYS32_ENTRY note in one PT_NOTE segment. */
static bool find_pvh_note(const uint8_t *k, const struct phdr *ph,
                          uint64_t *entry)
{
    uint64_t pos = ph->offset, end = ph->offset + ph->filesz;
    while (end - pos >= 12) {
        uint32_t namesz = get_le32(k + pos);
        uint32_t descsz = get_le32(k + pos + 4);
        uint32_t type = get_le32(k + pos + 8);
        uint64_t name = pos + 12;
        uint64_t desc = name + (((uint64_t)namesz + 3) & ~3ull);
        uint64_t next = desc + (((uint64_t)descsz + 3) & ~3ull);
        if (desc > end || next > end)
            return false;
        if (type == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 &&
            memcmp(k + name, "Xen", 4) == 0 && (descsz == 4 || descsz == 8)) {
            *entry = descsz == 4 ? get_le32(k + desc) : get_le64(k + desc);
            return true;
        }
        pos = next;
    }
    return false;
}

int pvh_load(const struct guest_mem *m, const struct boot_input *in,
             struct boot_entry *out, struct vdk_error **errp)
{
    const uint8_t *k = in->kernel;
    size_t len = in->kernel_len;

    if (len < 52)
        return vdk_error_setf(errp, EINVAL, "truncated ELF header");
    bool is64 = k[4] == 2;
    if ((k[4] != 1 && k[4] != 2) || k[5] != 1)
        return vdk_error_setf(errp, EINVAL,
                              "ELF kernel is not little-endian 32/64-bit");
    if (is64 && len < 64)
        return vdk_error_setf(errp, EINVAL, "truncated ELF header");
    uint16_t machine = get_le16(k + 18);
    if (machine != EM_X86_64 && machine != EM_386)
        return vdk_error_setf(errp, EINVAL,
                              "ELF kernel is for machine %u, not x86", machine);
    uint64_t phoff = is64 ? get_le64(k + 32) : get_le32(k + 28);
    unsigned phentsize = get_le16(k + (is64 ? 54 : 42));
    unsigned phnum = get_le16(k + (is64 ? 56 : 44));
    unsigned minent = is64 ? 56 : 32;
    if (phnum == 0 || phnum > ELF_MAX_PHDRS || phentsize < minent)
        return vdk_error_setf(errp, EINVAL,
                              "bad ELF program headers (%u of %u bytes)",
                              phnum, phentsize);
    if (phoff > len || (uint64_t)phnum * phentsize > len - phoff)
        return vdk_error_setf(errp, EINVAL,
                              "truncated ELF kernel: program headers past "
                              "the end of the file");

    /* First pass: every segment lies in the file; find the note. */
    uint64_t entry = 0, lo = UINT64_MAX, hi = 0;
    bool have_entry = false;
    int loads = 0;
    for (unsigned i = 0; i < phnum; i++) {
        struct phdr ph;
        read_phdr(k + phoff + (uint64_t)i * phentsize, is64, &ph);
        if (ph.type != PT_LOAD && ph.type != PT_NOTE)
            continue;
        if (ph.offset > len || ph.filesz > len - ph.offset)
            return vdk_error_setf(errp, EINVAL,
                                  "truncated ELF kernel: segment %u needs "
                                  "bytes past the end of the file", i);
        if (ph.type == PT_NOTE && !have_entry)
            have_entry = find_pvh_note(k, &ph, &entry);
    }
    if (!have_entry)
        return vdk_error_setf(errp, ENOTSUP,
                              "ELF kernel has no PVH entry note "
                              "(XEN_ELFNOTE_PHYS32_ENTRY); use a bzImage or a "
                              "kernel built with CONFIG_PVH");

    /* Second pass: the loadable segments fit in guest RAM. */
    for (unsigned i = 0; i < phnum; i++) {
        struct phdr ph;
        read_phdr(k + phoff + (uint64_t)i * phentsize, is64, &ph);
        if (ph.type != PT_LOAD)
            continue;
        if (ph.filesz > ph.memsz)
            return vdk_error_setf(errp, EINVAL,
                                  "bad ELF segment %u: file size above "
                                  "memory size", i);
        if (ph.paddr < LAYOUT_HIGH_MEM || !guest_ptr(m, ph.paddr, ph.memsz))
            return vdk_error_setf(errp, ENOSPC,
                                  "kernel too big for memory: segment %u at "
                                  "0x%llx+0x%llx is outside the guest's RAM "
                                  "above 1 MiB (raise --mem)", i,
                                  (unsigned long long)ph.paddr,
                                  (unsigned long long)ph.memsz);
        if (ph.paddr < lo)
            lo = ph.paddr;
        if (ph.paddr + ph.memsz > hi)
            hi = ph.paddr + ph.memsz;
        loads++;
    }
    if (loads == 0)
        return vdk_error_setf(errp, EINVAL, "ELF kernel has no PT_LOAD segment");
    if (entry < lo || entry >= hi)
        return vdk_error_setf(errp, EINVAL,
                              "PVH entry 0x%llx is outside the loaded kernel",
                              (unsigned long long)entry);

    for (unsigned i = 0; i < phnum; i++) {
        struct phdr ph;
        read_phdr(k + phoff + (uint64_t)i * phentsize, is64, &ph);
        if (ph.type != PT_LOAD)
            continue;
        uint8_t *dst = guest_ptr(m, ph.paddr, ph.memsz);
        memcpy(dst, k + ph.offset, ph.filesz);
        memset(dst + ph.filesz, 0, ph.memsz - ph.filesz);
    }

    int r = boot_put_cmdline(m, in->cmdline, LAYOUT_CMDLINE_MAX, errp);
    if (r < 0)
        return r;

    uint8_t *si = guest_ptr(m, LAYOUT_START_INFO, 0x200);
    uint8_t *mm = guest_ptr(m, LAYOUT_PVH_MEMMAP, 24 * E820_MAX);
    if (!si || !mm)
        return vdk_error_setf(errp, ENOSPC, "guest memory too small");
    memset(si, 0, 0x200);
    put_le32(si, HVM_START_MAGIC);
    put_le32(si + 4, 1);
    put_le64(si + 24, LAYOUT_CMDLINE);
    put_le64(si + 32, in->rsdp);

    uint64_t initrd = 0;
    if (in->initrd) {
        r = boot_place_initrd(m, in->initrd, in->initrd_len, hi,
                              m->low_size, &initrd);
        if (r < 0)
            return vdk_error_setf(errp, ENOSPC,
                                  "initrd of %zu bytes does not fit in guest "
                                  "memory above the kernel (raise --mem)",
                                  in->initrd_len);
        uint8_t *mod = si + 0x40;
        put_le32(si + 12, 1);
        put_le64(si + 16, LAYOUT_START_INFO + 0x40);
        put_le64(mod, initrd);
        put_le64(mod + 8, in->initrd_len);
    }

    struct e820_entry map[E820_MAX];
    int n = e820_build(m, map, E820_MAX);
    for (int i = 0; i < n; i++) {
        put_le64(mm + 24 * i, map[i].addr);
        put_le64(mm + 24 * i + 8, map[i].size);
        put_le32(mm + 24 * i + 16, map[i].type);
        put_le32(mm + 24 * i + 20, 0);
    }
    put_le64(si + 40, LAYOUT_PVH_MEMMAP);
    put_le32(si + 48, (uint32_t)n);

    out->kind = BOOT_PVH;
    out->rip = entry;
    out->arg = LAYOUT_START_INFO;
    out->kernel_start = lo;
    out->kernel_end = hi;
    out->initrd_addr = initrd;
    return 0;
}
