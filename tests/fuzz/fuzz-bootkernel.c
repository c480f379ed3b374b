/* SPDX-License-Identifier: MIT */
/*
 * vdk-boot's kernel loaders (bzImage setup header, ELF program headers
 * and PVH note) on arbitrary files, into a 64 MiB guest memory.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest-boot/x86/boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM (64u << 20)

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
