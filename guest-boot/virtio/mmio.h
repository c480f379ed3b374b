/* SPDX-License-Identifier: MIT */
/*
 * virtio-mmio transport, version 2 ("modern", virtio 1.x 4.2).  One
 * instance per device; the device type plugs in through virtio_dev_ops.
 * All register state is guarded by `lock`, which device workers also take
 * around ring access, so a driver reset can never race a completion.
 * The device model embeds struct virtio_mmio and finds itself from it
 * with container_of() (no untyped opaque pointer to get wrong).
 */
#ifndef VDK_BOOT_VIRTIO_MMIO_H
#define VDK_BOOT_VIRTIO_MMIO_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "guest-boot/hw/irq.h"
#include "guest-boot/mem.h"
#include "guest-boot/virtio/virtq.h"

#define VIRTIO_MMIO_MAGIC 0x74726976u /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x4b4456u  /* "VDK" */
#define VIRTIO_MAX_QUEUES 4
#define VIRTIO_F_VERSION_1 32

enum {
    VIRTIO_STATUS_ACKNOWLEDGE = 1,
    VIRTIO_STATUS_DRIVER = 2,
    VIRTIO_STATUS_DRIVER_OK = 4,
    VIRTIO_STATUS_FEATURES_OK = 8,
    VIRTIO_STATUS_NEEDS_RESET = 64,
    VIRTIO_STATUS_FAILED = 128,
};

/* Register offsets (4.2.2). */
enum {
    VMMIO_MAGIC = 0x000, VMMIO_VERSION = 0x004, VMMIO_DEVICE_ID = 0x008,
    VMMIO_VENDOR_ID = 0x00c, VMMIO_DEVICE_FEATURES = 0x010,
    VMMIO_DEVICE_FEATURES_SEL = 0x014, VMMIO_DRIVER_FEATURES = 0x020,
    VMMIO_DRIVER_FEATURES_SEL = 0x024, VMMIO_QUEUE_SEL = 0x030,
    VMMIO_QUEUE_NUM_MAX = 0x034, VMMIO_QUEUE_NUM = 0x038,
    VMMIO_QUEUE_READY = 0x044, VMMIO_QUEUE_NOTIFY = 0x050,
    VMMIO_INTERRUPT_STATUS = 0x060, VMMIO_INTERRUPT_ACK = 0x064,
    VMMIO_STATUS = 0x070, VMMIO_QUEUE_DESC_LOW = 0x080,
    VMMIO_QUEUE_DESC_HIGH = 0x084, VMMIO_QUEUE_DRIVER_LOW = 0x090,
    VMMIO_QUEUE_DRIVER_HIGH = 0x094, VMMIO_QUEUE_DEVICE_LOW = 0x0a0,
    VMMIO_QUEUE_DEVICE_HIGH = 0x0a4, VMMIO_CONFIG_GENERATION = 0x0fc,
    VMMIO_CONFIG = 0x100,
};

#define VIRTIO_INT_USED   1
#define VIRTIO_INT_CONFIG 2

struct virtio_mmio;

struct virtio_dev_ops {
    uint32_t device_id;
    int nqueues;
    /* Read device config bytes [off, off+len) (bounds checked by caller). */
    void (*config_read)(struct virtio_mmio *d, uint32_t off, uint8_t *buf,
                        uint32_t len);
    uint32_t config_len;
    /* The driver notified queue q (lock held). */
    void (*notify)(struct virtio_mmio *d, int q);
    /* Driver reset: return only when no request is in flight (lock held,
       may wait on the lock through a condition variable). */
    void (*reset)(struct virtio_mmio *d);
};

#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

struct virtio_mmio {
    pthread_mutex_t lock;
    const struct virtio_dev_ops *ops;
    const struct guest_mem *mem;
    uint64_t base;
    struct irq_line irq;

    uint64_t device_features;
    uint64_t driver_features;
    uint32_t dev_feat_sel, drv_feat_sel, queue_sel;
    uint32_t status;
    uint32_t isr;
    uint32_t config_generation;
    struct virtq vq[VIRTIO_MAX_QUEUES];
};

void virtio_mmio_init(struct virtio_mmio *d, const struct virtio_dev_ops *ops,
                      const struct guest_mem *mem, uint64_t base,
                      struct irq_line irq, uint64_t features);
void virtio_mmio_destroy(struct virtio_mmio *d);

/* Guest access at offset off (< LAYOUT_VIRTIO_SIZE) of the window. */
void virtio_mmio_read(struct virtio_mmio *d, uint64_t off, uint8_t *data,
                      uint32_t len);
void virtio_mmio_write(struct virtio_mmio *d, uint64_t off,
                       const uint8_t *data, uint32_t len);

/* Raise an interrupt reason (lock held). */
void virtio_mmio_interrupt(struct virtio_mmio *d, uint32_t reason);
/* The device hit a malformed ring: set NEEDS_RESET, tell the driver
   (lock held). */
void virtio_mmio_needs_reset(struct virtio_mmio *d);

#endif /* VDK_BOOT_VIRTIO_MMIO_H */
