/* SPDX-License-Identifier: MIT */
/*
 * vdk-boot's kernel loaders (bzImage setup header, ELF program headers
 * and PVH note) on arbitrary files, into a 64 MiB guest memory.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest-boot/x86/boot.h"
#include "fuzz-mutator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM (64u << 20)

/*
 * Structure-aware mutator.  A bzImage: the setup header's fields at
 * their edges (setup sectors, protocol version, load and xload flags,
 * kernel alignment, relocatable, preferred address, init size, initrd
 * and command line limits, "HdrS" and the boot flag).  An ELF kernel:
 * the class and machine, the program header table's place, count and
 * entry size, a program header's type, offset, address and sizes (past
 * the file, above guest RAM, file size over memory size), and the PVH
 * note (name and descriptor sizes, type, the entry it holds).
 */
static bool bk_step(struct fmut *m)
{
    static const uint64_t edge[] = { 0, 1, 2, 0x1000, 0x100000, 0x1000000, MEM - 1, MEM,
                                     MEM + 1, 0x7fffffff, 0xffffffff, ~0ull };
    if (m->size >= 0x268 && fm_get(m, BZ_HEADER, 4, false) == BZ_HDR_MAGIC) {
        static const struct { unsigned off, width; } f[] = {
            { BZ_SETUP_SECTS, 1 }, { BZ_VERSION, 2 }, { BZ_LOADFLAGS, 1 },
            { BZ_KERNEL_ALIGNMENT, 4 }, { BZ_RELOCATABLE, 1 }, { BZ_XLOADFLAGS, 2 },
            { BZ_PREF_ADDRESS, 8 }, { BZ_INIT_SIZE, 4 }, { BZ_INITRD_ADDR_MAX, 4 },
            { BZ_CMDLINE_SIZE, 4 }, { BZ_SYSSIZE, 4 }, { BZ_CODE32_START, 4 },
            { BZ_HEADER, 4 }, { BZ_BOOT_FLAG, 2 },
        };
        static const uint64_t versions[] = { 0x0200, 0x020b, 0x020c, 0x020d, 0x020f, 0x0300 };
        unsigned k = fm_rand(m, sizeof(f) / sizeof(f[0]));
        if (k == 1 && fm_rand(m, 2))
            fm_put(m, BZ_VERSION, 2, false, versions[fm_rand(m, 6)]);
        else if (fm_rand(m, 2))
            fm_put(m, f[k].off, f[k].width, false, edge[fm_rand(m, 12)]);
        else
            fm_field_mutate(m, f[k].off, f[k].width, false);
        return true;
    }
    if (m->size < 64 || memcmp(m->data, "\x7f" "ELF", 4) != 0)
        return false;
    bool is64 = m->data[4] == 2;
    uint64_t phoff = is64 ? fm_get(m, 32, 8, false) : fm_get(m, 28, 4, false);
    unsigned phnum_at = is64 ? 56 : 44, phent = is64 ? 56 : 32;
    uint64_t phnum = fm_get(m, phnum_at, 2, false);
    uint64_t ph = phoff + phent * (phnum ? fm_rand64(m) % (phnum < 64 ? phnum : 64) : 0);
    unsigned w = is64 ? 8 : 4;
    switch (fm_rand(m, 8)) {
    case 0: /* class, machine */
        if (fm_rand(m, 2))
            m->data[4] = (uint8_t)fm_rand(m, 4);
        else
            fm_put(m, 18, 2, false, fm_rand(m, 2) ? 3 : fm_rand(m, 2) ? 62 : 40);
        break;
    case 1: /* the table: place, count, entry size */
        switch (fm_rand(m, 3)) {
        case 0: fm_put(m, is64 ? 32 : 28, w, false, edge[fm_rand(m, 12)] % (m->size + 64)); break;
        case 1: fm_put(m, phnum_at, 2, false, fm_rand(m, 2) ? 65 : fm_rand(m, 2) ? 0 : 0xffff); break;
        default: fm_put(m, phnum_at - 2, 2, false, fm_rand(m, 2) ? phent - 1 : 0); break;
        }
        break;
    case 2: /* a program header's type: LOAD, NOTE, other */
        fm_put(m, ph, 4, false, fm_rand(m, 3) ? 1 + 3 * fm_rand(m, 2) : fm_rand(m, 8));
        break;
    case 3: case 4: case 5: { /* its offset, address, sizes */
        unsigned at = is64 ? 8 + 8 * fm_rand(m, 5) : 4 + 4 * fm_rand(m, 5);
        if (fm_rand(m, 2))
            fm_put(m, ph + at, w, false, edge[fm_rand(m, 12)]);
        else
            fm_field_mutate(m, ph + at, w, false);
        break;
    }
    default: { /* the PVH note: a NOTE segment's first note */
        uint64_t type = fm_get(m, ph, 4, false);
        uint64_t off = is64 ? fm_get(m, ph + 8, 8, false) : fm_get(m, ph + 4, 4, false);
        if (type != 4 || !fm_in(m, off, 20))
            return false;
        static const uint64_t v[] = { 0, 3, 4, 5, 8, 18, 0xffffffff };
        unsigned k = fm_rand(m, 4);
        if (k < 3)
            fm_put(m, off + 4 * k, 4, false, v[fm_rand(m, 7)]);
        else
            fm_put(m, off + 12 + ((fm_get(m, off, 4, false) + 3) & ~3ull), 4, false,
                   edge[fm_rand(m, 12)]);
        break;
    }
    }
    return true;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    return fm_run(data, size, max_size, seed, bk_step, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct guest_mem m;
    static const uint8_t initrd[4096] = { 1 };
    if (!m.host) {
        m.host = calloc(1, MEM);
        if (!m.host)
            return 0;
        m.low_size = MEM;
    }
    struct vdk_error *err = NULL;
    struct boot_entry e;
    struct boot_input in = { data, size, initrd, sizeof(initrd),
                             "console=ttyS0 virtio_mmio.device=512@0xd0000000:5",
                             0xe0000 };
    if (boot_load_kernel(&m, &in, &e, &err) == 0) {
        /* A loaded kernel lies inside guest RAM. */
        if (!guest_ptr(&m, e.kernel_start, e.kernel_end - e.kernel_start))
            abort();
    } else if (!err) {
        abort(); /* a failure must explain itself */
    }
    vdk_error_free(err);
    return 0;
}
