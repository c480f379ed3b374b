/* SPDX-License-Identifier: MIT */
/*
 * virtio-mmio register file.  Accesses to the register area must be
 * aligned 32-bit (4.2.2); others read 0 and are ignored on write.  The
 * device config area may be accessed at any width.
 */
#include <string.h>

#include "guest-boot/virtio/mmio.h"
#include "guest-boot/x86/layout.h"

void virtio_mmio_init(struct virtio_mmio *d, const struct virtio_dev_ops *ops,
                      const struct guest_mem *mem, uint64_t base,
                      struct irq_line irq, uint64_t features)
{
    memset(d, 0, sizeof(*d));
    pthread_mutex_init(&d->lock, NULL);
    d->ops = ops;
    d->mem = mem;
    d->base = base;
    d->irq = irq;
    d->device_features = features | (1ull << VIRTIO_F_VERSION_1);
}

void virtio_mmio_destroy(struct virtio_mmio *d)
{
    pthread_mutex_destroy(&d->lock);
}

void virtio_mmio_interrupt(struct virtio_mmio *d, uint32_t reason)
{
    d->isr |= reason;
    /* The line is edge-triggered (ISA IRQ, see the DSDT): pulse it. */
    irq_line_set(&d->irq, 1);
    irq_line_set(&d->irq, 0);
}

void virtio_mmio_needs_reset(struct virtio_mmio *d)
{
    if (d->status & VIRTIO_STATUS_NEEDS_RESET)
        return;
    d->status |= VIRTIO_STATUS_NEEDS_RESET;
    for (int i = 0; i < VIRTIO_MAX_QUEUES; i++)
        d->vq[i].ready = false;
    if (d->status & VIRTIO_STATUS_DRIVER_OK)
        virtio_mmio_interrupt(d, VIRTIO_INT_CONFIG);
}

static void reset(struct virtio_mmio *d)
{
    if (d->ops->reset)
        d->ops->reset(d);
    d->status = 0;
    d->driver_features = 0;
    d->dev_feat_sel = d->drv_feat_sel = d->queue_sel = 0;
    d->isr = 0;
    memset(d->vq, 0, sizeof(d->vq));
}

static uint32_t reg_read(struct virtio_mmio *d, uint64_t off)
{
    struct virtq *q = d->queue_sel < (uint32_t)d->ops->nqueues
                          ? &d->vq[d->queue_sel] : NULL;
    switch (off) {
    case VMMIO_MAGIC:
        return VIRTIO_MMIO_MAGIC;
    case VMMIO_VERSION:
        return 2;
    case VMMIO_DEVICE_ID:
        return d->ops->device_id;
    case VMMIO_VENDOR_ID:
        return VIRTIO_MMIO_VENDOR;
    case VMMIO_DEVICE_FEATURES:
        if (d->dev_feat_sel > 1)
            return 0;
        return (uint32_t)(d->device_features >> (32 * d->dev_feat_sel));
    case VMMIO_QUEUE_NUM_MAX:
        return q ? VIRTQ_MAX_SIZE : 0;
    case VMMIO_QUEUE_READY:
        return q ? q->ready : 0;
    case VMMIO_INTERRUPT_STATUS:
        return d->isr;
    case VMMIO_STATUS:
        return d->status;
    case VMMIO_CONFIG_GENERATION:
        return d->config_generation;
    default:
        return 0;
    }
}

static void set_low(uint64_t *a, uint32_t v)
{
    *a = (*a & ~0xffffffffull) | v;
}

static void set_high(uint64_t *a, uint32_t v)
{
    *a = (*a & 0xffffffffull) | (uint64_t)v << 32;
}

static void reg_write(struct virtio_mmio *d, uint64_t off, uint32_t v)
{
    struct virtq *q = d->queue_sel < (uint32_t)d->ops->nqueues
                          ? &d->vq[d->queue_sel] : NULL;
    /* Queue registers may only change while the queue is not ready. */
    bool qw = q && !q->ready;

    switch (off) {
    case VMMIO_DEVICE_FEATURES_SEL:
        d->dev_feat_sel = v;
        break;
    case VMMIO_DRIVER_FEATURES:
        if (d->drv_feat_sel <= 1 && !(d->status & VIRTIO_STATUS_FEATURES_OK)) {
            uint64_t f = d->driver_features;
            if (d->drv_feat_sel)
                set_high(&f, v);
            else
                set_low(&f, v);
            d->driver_features = f;
        }
        break;
    case VMMIO_DRIVER_FEATURES_SEL:
        d->drv_feat_sel = v;
        break;
    case VMMIO_QUEUE_SEL:
        d->queue_sel = v;
        break;
    case VMMIO_QUEUE_NUM:
        if (qw)
            q->num = v > VIRTQ_MAX_SIZE ? 0 : (uint16_t)v;
        break;
    case VMMIO_QUEUE_READY:
        if (!q)
            break;
        if (v == 1 && !q->ready) {
            /* A layout outside RAM is refused: the queue stays not
               ready, which the driver sees on read-back. */
            if (virtq_check_layout(q, d->mem) == 0) {
                q->ready = true;
                q->last_avail = 0;
                q->used_idx = 0;
            }
        } else if (v == 0) {
            q->ready = false;
        }
        break;
    case VMMIO_QUEUE_NOTIFY:
        if (v < (uint32_t)d->ops->nqueues && d->vq[v].ready &&
            (d->status & VIRTIO_STATUS_DRIVER_OK) && d->ops->notify)
            d->ops->notify(d, (int)v);
        break;
    case VMMIO_INTERRUPT_ACK:
        d->isr &= ~v;
        break;
    case VMMIO_STATUS:
        if (v == 0) {
            reset(d);
            break;
        }
        if ((v & VIRTIO_STATUS_FEATURES_OK) &&
            !(d->status & VIRTIO_STATUS_FEATURES_OK)) {
            /* Only offered features, and we speak virtio 1.x only. */
            if ((d->driver_features & ~d->device_features) ||
                !(d->driver_features & (1ull << VIRTIO_F_VERSION_1)))
                v &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
        }
        d->status = v | (d->status & VIRTIO_STATUS_NEEDS_RESET);
        break;
    case VMMIO_QUEUE_DESC_LOW:
        if (qw)
            set_low(&q->desc, v);
        break;
    case VMMIO_QUEUE_DESC_HIGH:
        if (qw)
            set_high(&q->desc, v);
        break;
    case VMMIO_QUEUE_DRIVER_LOW:
        if (qw)
            set_low(&q->avail, v);
        break;
    case VMMIO_QUEUE_DRIVER_HIGH:
        if (qw)
            set_high(&q->avail, v);
        break;
    case VMMIO_QUEUE_DEVICE_LOW:
        if (qw)
            set_low(&q->used, v);
        break;
    case VMMIO_QUEUE_DEVICE_HIGH:
        if (qw)
            set_high(&q->used, v);
        break;
    default:
        break;
    }
}

void virtio_mmio_read(struct virtio_mmio *d, uint64_t off, uint8_t *data,
                      uint32_t len)
{
    memset(data, 0, len);
    pthread_mutex_lock(&d->lock);
    if (off >= VMMIO_CONFIG) {
        uint64_t c = off - VMMIO_CONFIG;
        if (c < d->ops->config_len && len <= d->ops->config_len - c)
            d->ops->config_read(d, (uint32_t)c, data, len);
    } else if (len == 4 && !(off & 3)) {
        put_le32(data, reg_read(d, off));
    }
    pthread_mutex_unlock(&d->lock);
}

void virtio_mmio_write(struct virtio_mmio *d, uint64_t off,
                       const uint8_t *data, uint32_t len)
{
    pthread_mutex_lock(&d->lock);
    /* The block device config space is read-only to the driver
       (writeback toggling is not offered). */
    if (off < VMMIO_CONFIG && len == 4 && !(off & 3))
        reg_write(d, off, get_le32(data));
    pthread_mutex_unlock(&d->lock);
}
