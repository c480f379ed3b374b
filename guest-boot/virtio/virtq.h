/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueues (virtio 1.x, 2.7).  The rings live in guest memory and
 * everything in them is untrusted: queue addresses, descriptor indices,
 * chain links, buffer addresses and lengths are all checked here, so the
 * device code only ever sees buffers that lie inside guest RAM.
 */
#ifndef VDK_BOOT_VIRTQ_H
#define VDK_BOOT_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>

#include "guest-boot/mem.h"

#define VIRTQ_MAX_SIZE 256   /* QueueNumMax we offer */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

struct virtq {
    uint16_t num;        /* queue size set by the driver */
    bool ready;
    uint64_t desc, avail, used;   /* guest addresses */
    uint16_t last_avail; /* next avail ring slot we will read */
    uint16_t used_idx;   /* our copy of used->idx */
};

struct vq_buf {
    uint8_t *p;          /* host pointer, inside guest RAM */
    uint32_t len;
    bool write;          /* device-writable */
};

struct vq_chain {
    uint16_t head;
    int n;
    uint64_t out_len;    /* total device-readable bytes */
    uint64_t in_len;     /* total device-writable bytes */
    struct vq_buf buf[VIRTQ_MAX_SIZE];
};

/*
 * Check the queue layout the driver set up (size a power of two up to
 * VIRTQ_MAX_SIZE, rings aligned and inside RAM).  0 or -EINVAL.
 */
int virtq_check_layout(const struct virtq *q, const struct guest_mem *m);

/*
 * Take the next available chain.  Returns 1 with *c filled, 0 when the
 * ring is empty, -EINVAL when the ring or the chain is malformed (index
 * out of range, loop, buffer outside RAM, readable after writable,
 * indirect descriptor, more avail entries than the queue holds).
 */
int virtq_pop(struct virtq *q, const struct guest_mem *m, struct vq_chain *c);

/*
 * Return a chain to the used ring with `len` bytes written.  Returns true
 * when the driver wants an interrupt (avail flags), -EINVAL on a bad ring.
 */
int virtq_push(struct virtq *q, const struct guest_mem *m, uint16_t head,
               uint32_t len);

/* Copy up to len device-readable bytes starting at offset off. */
uint64_t vq_chain_read(const struct vq_chain *c, uint64_t off, void *dst,
                       uint64_t len);
/* Copy up to len bytes into the device-writable part at offset off. */
uint64_t vq_chain_write(const struct vq_chain *c, uint64_t off,
                        const void *src, uint64_t len);

#endif /* VDK_BOOT_VIRTQ_H */
