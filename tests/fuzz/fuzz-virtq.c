/* SPDX-License-Identifier: MIT */
/*
 * virtqueue rings and virtio-blk requests as a guest could write them.
 * Input: 8 bytes of queue setup (size, ring addresses, start index, read-
 * only flag), then the first 64 KiB of guest memory.  Chains are taken,
 * run against a 1 MiB memory disk and returned, as a worker would.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest-boot/virtio/blk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* No VM here (vm.c is not linked): interrupts go nowhere. */
void irq_line_set(const struct irq_line *line, int level)
{
    (void)line;
    (void)level;
}

#define GMEM (64u * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct guest_mem m;
    static struct vdk_node *node;
    static struct virtio_blk b;
    static struct vq_chain c;
    if (!node) {
        struct vdk_opts *o = vdk_opts_new();
        vdk_opts_set(o, "file.size", "1M");
        m.host = calloc(1, GMEM);
        m.low_size = GMEM;
        if (!m.host || vdk_open(&node, "memory://fuzz", "raw", o, VDK_O_RDWR,
                                NULL) < 0)
            abort();
        b.node = node;
        b.capacity = 2048;
        memcpy(b.id, "fuzz-disk", 9);
    }
    if (size < 8)
        return 0;
    memset(m.host, 0, GMEM);
    memcpy(m.host, data + 8, size - 8 < GMEM ? size - 8 : GMEM);

    struct virtq q = {
        .num = (uint16_t)(1u << (data[0] % 10)), /* 1..512: 512 is refused */
        .ready = true,
        .desc = (uint64_t)get_le16(data + 1) * 16 % (GMEM + 4096),
        .avail = (uint64_t)get_le16(data + 3) * 2 % (GMEM + 4096),
        .used = (uint64_t)get_le16(data + 5) * 4 % (GMEM + 4096),
        .last_avail = data[7],
    };
    b.read_only = data[0] & 0x80;
    for (int i = 0; i < 64; i++) {
        int r = virtq_pop(&q, &m, &c);
        if (r <= 0)
            break;
        for (int j = 0; j < c.n; j++) /* every buffer lies in guest RAM */
            if (c.buf[j].p < m.host || c.buf[j].p + c.buf[j].len > m.host + GMEM)
                abort();
        int64_t w = virtio_blk_process(&b, &c);
        if (w >= 0 && virtq_push(&q, &m, c.head, (uint32_t)w) < 0)
            break;
    }
    return 0;
}
