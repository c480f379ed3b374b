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
#include "fuzz-mutator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* No VM here (vm.c is not linked): interrupts go nowhere. */
void irq_line_set(const struct irq_line *line, int level)
{
    (void)line;
    (void)level;
}

#define GMEM (64u * 1024)

/*
 * Structure-aware mutator: reads the queue set-up as the target does and
 * changes one thing a guest controls: a descriptor's address (onto the
 * rings, across the end of RAM), length, flags (NEXT, WRITE, INDIRECT)
 * and next index (itself: a loop, out of range); the avail ring's index
 * (none, one, a whole queue, more) and its head entries (duplicates, out
 * of range); a virtio-blk request header (type, sector at the capacity);
 * or the set-up itself (ring sizes, overlapping rings).
 */
static bool vq_step(struct fmut *m)
{
    if (m->size < 8 + 64)
        return false;
    uint64_t num = 1u << (m->data[0] % 10);
    uint64_t desc = fm_get(m, 1, 2, false) * 16 % (GMEM + 4096);
    uint64_t avail = fm_get(m, 3, 2, false) * 2 % (GMEM + 4096);
    uint64_t d = 8 + desc + 16 * (fm_rand64(m) % num);  /* input offsets */
    uint64_t a = 8 + avail;
    switch (fm_rand(m, 10)) {
    case 0: { /* a descriptor's address */
        uint64_t v[] = { desc, avail, fm_get(m, 5, 2, false) * 4 % (GMEM + 4096), GMEM - 1,
                         GMEM - 16, GMEM, ~0ull - 15, 0 };
        fm_put(m, d, 8, false, v[fm_rand(m, 8)]);
        break;
    }
    case 1: { /* its length */
        static const uint64_t v[] = { 0, 1, 15, 16, 17, 512, 4096, GMEM, 0xffffffff };
        fm_put(m, d + 8, 4, false, v[fm_rand(m, 9)]);
        break;
    }
    case 2: /* its flags */
        fm_put(m, d + 12, 2, false, fm_get(m, d + 12, 2, false) ^ (1u << fm_rand(m, 3)));
        break;
    case 3: { /* its next: itself, the first, out of range */
        uint64_t self = (d - 8 - desc) / 16;
        uint64_t v[] = { self, 0, self + 1, num - 1, num, 0xffff };
        fm_put(m, d + 14, 2, false, v[fm_rand(m, 6)]);
        fm_put(m, d + 12, 2, false, fm_get(m, d + 12, 2, false) | 1);
        break;
    }
    case 4: { /* the avail index */
        uint64_t last = m->data[7];
        uint64_t v[] = { last, last + 1, last + num, last + num + 1, last - 1, 0xffff };
        fm_put(m, a + 2, 2, false, v[fm_rand(m, 6)]);
        break;
    }
    case 5: { /* an avail ring entry: a duplicate head, out of range */
        uint64_t v[] = { 0, 1, num - 1, num, 0xffff, fm_get(m, a + 4, 2, false) };
        fm_put(m, a + 4 + 2 * (fm_rand64(m) % num), 2, false, v[fm_rand(m, 6)]);
        break;
    }
    case 6: case 7: { /* the request header a descriptor points at */
        uint64_t at = 8 + fm_get(m, d, 8, false);
        static const uint64_t types[] = { 0, 1, 4, 8, 11, 13, 2, 0xffffffff };
        static const uint64_t sectors[] = { 0, 2047, 2048, 2049, 1ull << 55, ~0ull };
        if (at < 8 || !fm_in(m, at, 16))
            return false;
        if (fm_rand(m, 2))
            fm_put(m, at, 4, false, types[fm_rand(m, 8)]);
        else
            fm_put(m, at + 8, 8, false, sectors[fm_rand(m, 6)]);
        break;
    }
    case 8: /* the queue size (512 is refused), read-only */
        m->data[0] = (uint8_t)((m->data[0] & 0x80) | fm_rand(m, 10)) ^ (fm_rand(m, 4) ? 0 : 0x80);
        break;
    default: /* the rings: overlapping, at the end of RAM */
        fm_put(m, 1 + 2 * fm_rand(m, 3), 2, false,
               fm_rand(m, 2) ? fm_get(m, 1 + 2 * fm_rand(m, 3), 2, false) : fm_rand(m, 65536));
        break;
    }
    return true;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    return fm_run(data, size, max_size, seed, vq_step, NULL);
}

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
