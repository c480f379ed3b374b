/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk (virtio 1.x 5.2) on a libvdk node.  Requests run on worker
 * threads that do blocking I/O straight into guest memory; the vCPU that
 * notifies only wakes them.  Supported: read, write, flush, get-id,
 * discard, write-zeroes; read-only disks advertise VIRTIO_BLK_F_RO and
 * fail writes with IOERR.
 */
#ifndef VDK_BOOT_VIRTIO_BLK_H
#define VDK_BOOT_VIRTIO_BLK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "guest-boot/virtio/mmio.h"
#include "vdk/block.h"

#define VIRTIO_BLK_WORKERS 2
#define VIRTIO_BLK_ID_BYTES 20

enum {
    VIRTIO_BLK_T_IN = 0, VIRTIO_BLK_T_OUT = 1, VIRTIO_BLK_T_FLUSH = 4,
    VIRTIO_BLK_T_GET_ID = 8, VIRTIO_BLK_T_DISCARD = 11,
    VIRTIO_BLK_T_WRITE_ZEROES = 13,
};
enum { VIRTIO_BLK_S_OK = 0, VIRTIO_BLK_S_IOERR = 1, VIRTIO_BLK_S_UNSUPP = 2 };
enum {
    VIRTIO_BLK_F_SEG_MAX = 2, VIRTIO_BLK_F_RO = 5, VIRTIO_BLK_F_FLUSH = 9,
    VIRTIO_BLK_F_DISCARD = 13, VIRTIO_BLK_F_WRITE_ZEROES = 14,
};
#define VIRTIO_BLK_MAX_SEGS 32     /* discard/write-zeroes segments */
#define VIRTIO_BLK_MAX_SECTORS (1u << 20) /* per discard/zero segment */

struct virtio_blk {
    struct virtio_mmio mmio;
    struct vdk_node *node;
    bool read_only;
    uint64_t capacity;           /* 512-byte sectors */
    char id[VIRTIO_BLK_ID_BYTES];
    pthread_t workers[VIRTIO_BLK_WORKERS];
    int nworkers;
    pthread_cond_t work;         /* a notify arrived, or stop */
    pthread_cond_t idle;         /* inflight dropped to 0 */
    unsigned kicks;              /* notifies not yet drained */
    int inflight;
    bool stop;
    uint64_t requests;           /* statistics for -v */
};

/*
 * Set up the device on an open node (ownership stays with the caller) and
 * start its workers.  Returns 0 or -errno with *errp set.
 */
int virtio_blk_start(struct virtio_blk *b, struct vdk_node *node,
                     bool read_only, const char *id,
                     const struct guest_mem *mem, uint64_t base,
                     struct irq_line irq, struct vdk_error **errp);
/*
 * Run one request chain against the node (what the workers do between
 * taking a chain and returning it; exposed for tests and the fuzz
 * target).  Writes the status byte and returns the number of bytes
 * written to the device-writable part, or -EINVAL when the chain has no
 * room for a header or a status byte.
 */
int64_t virtio_blk_process(struct virtio_blk *b, const struct vq_chain *c);

/* Stop the workers (waits for requests in flight). */
void virtio_blk_stop(struct virtio_blk *b);

#endif /* VDK_BOOT_VIRTIO_BLK_H */
