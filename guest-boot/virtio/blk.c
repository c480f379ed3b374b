/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk request processing.  A request chain is: a 16-byte readable
 * header {le32 type, le32 reserved, le64 sector}, data (readable for
 * writes, writable for reads), and a final writable status byte.  Every
 * sector range is checked against the capacity; bad requests get IOERR or
 * UNSUPP, a malformed chain puts the device in NEEDS_RESET.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "guest-boot/virtio/blk.h"

#define SECTOR 512u
#define CONFIG_LEN 0x3c

static void blk_config_read(struct virtio_mmio *d, uint32_t off, uint8_t *buf,
                            uint32_t len)
{
    struct virtio_blk *b = container_of(d, struct virtio_blk, mmio);
    uint8_t c[CONFIG_LEN];
    memset(c, 0, sizeof(c));
    put_le64(c + 0x00, b->capacity);
    put_le32(c + 0x0c, VIRTQ_MAX_SIZE - 2);        /* seg_max */
    put_le32(c + 0x24, VIRTIO_BLK_MAX_SECTORS);    /* max_discard_sectors */
    put_le32(c + 0x28, VIRTIO_BLK_MAX_SEGS);       /* max_discard_seg */
    put_le32(c + 0x2c, 1);                         /* discard alignment */
    put_le32(c + 0x30, VIRTIO_BLK_MAX_SECTORS);    /* max_write_zeroes */
    put_le32(c + 0x34, VIRTIO_BLK_MAX_SEGS);
    c[0x38] = 1;                                   /* may unmap */
    memcpy(buf, c + off, len);
}

static void blk_notify(struct virtio_mmio *d, int q)
{
    struct virtio_blk *b = container_of(d, struct virtio_blk, mmio);
    b->kicks++;
    pthread_cond_signal(&b->work);
}

static void blk_reset(struct virtio_mmio *d)
{
    struct virtio_blk *b = container_of(d, struct virtio_blk, mmio);
    while (b->inflight > 0)
        pthread_cond_wait(&b->idle, &d->lock);
    b->kicks = 0;
}

static const struct virtio_dev_ops blk_ops = {
    .device_id = 2,
    .nqueues = 1,
    .config_read = blk_config_read,
    .config_len = CONFIG_LEN,
    .notify = blk_notify,
    .reset = blk_reset,
};

static bool range_ok(const struct virtio_blk *b, uint64_t sector,
                     uint64_t sectors)
{
    return sector <= b->capacity && sectors <= b->capacity - sector;
}

/* Read or write the data buffers; `first`/`last` select them in c. */
static int do_rw(struct virtio_blk *b, const struct vq_chain *c, bool write,
                 uint64_t sector, uint64_t bytes)
{
    if (bytes % SECTOR || !range_ok(b, sector, bytes / SECTOR))
        return VIRTIO_BLK_S_IOERR;
    if (write && b->read_only)
        return VIRTIO_BLK_S_IOERR;
    uint64_t off = sector * SECTOR;
    uint64_t skip = write ? 16 : 0; /* the header precedes write data */
    uint64_t left = bytes;
    for (int i = 0; i < c->n && left; i++) {
        const struct vq_buf *v = &c->buf[i];
        if (v->write != !write)
            continue;
        uint64_t s = 0, len = v->len;
        if (skip) {
            s = skip < len ? skip : len;
            skip -= s;
        }
        len -= s;
        if (len > left)
            len = left;
        if (!len)
            continue;
        int r = write ? vdk_pwrite(b->node, v->p + s, len, off, 0)
                      : vdk_pread(b->node, v->p + s, len, off, 0);
        if (r < 0)
            return VIRTIO_BLK_S_IOERR;
        off += len;
        left -= len;
    }
    return VIRTIO_BLK_S_OK;
}

static int do_segments(struct virtio_blk *b, const struct vq_chain *c,
                       uint32_t type)
{
    uint64_t bytes = c->out_len - 16;
    if (b->read_only)
        return VIRTIO_BLK_S_IOERR;
    if (bytes == 0 || bytes % 16 || bytes / 16 > VIRTIO_BLK_MAX_SEGS)
        return VIRTIO_BLK_S_UNSUPP;
    for (uint64_t i = 0; i < bytes / 16; i++) {
        uint8_t seg[16];
        vq_chain_read(c, 16 + 16 * i, seg, 16);
        uint64_t sector = get_le64(seg);
        uint32_t n = get_le32(seg + 8);
        uint32_t flags = get_le32(seg + 12);
        bool unmap = flags & 1;
        if ((flags & ~1u) || (unmap && type == VIRTIO_BLK_T_DISCARD))
            return VIRTIO_BLK_S_UNSUPP;
        if (n > VIRTIO_BLK_MAX_SECTORS || !range_ok(b, sector, n))
            return VIRTIO_BLK_S_IOERR;
        int r = type == VIRTIO_BLK_T_DISCARD
                    ? vdk_discard(b->node, sector * SECTOR, (uint64_t)n * SECTOR)
                    : vdk_pwrite_zeroes(b->node, sector * SECTOR,
                                        (uint64_t)n * SECTOR,
                                        unmap ? VDK_REQ_MAY_UNMAP : 0);
        if (r < 0)
            return VIRTIO_BLK_S_IOERR;
    }
    return VIRTIO_BLK_S_OK;
}

int64_t virtio_blk_process(struct virtio_blk *b, const struct vq_chain *c)
{
    uint8_t hdr[16];
    if (c->out_len < 16 || c->in_len < 1 ||
        vq_chain_read(c, 0, hdr, 16) != 16)
        return -EINVAL;
    uint32_t type = get_le32(hdr);
    uint64_t sector = get_le64(hdr + 8);
    uint64_t written = 1;
    int st;

    switch (type) {
    case VIRTIO_BLK_T_IN:
        st = do_rw(b, c, false, sector, c->in_len - 1);
        if (st == VIRTIO_BLK_S_OK)
            written += c->in_len - 1;
        break;
    case VIRTIO_BLK_T_OUT:
        st = do_rw(b, c, true, sector, c->out_len - 16);
        break;
    case VIRTIO_BLK_T_FLUSH:
        st = vdk_flush(b->node) < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
        break;
    case VIRTIO_BLK_T_GET_ID: {
        uint64_t n = c->in_len - 1;
        if (n > VIRTIO_BLK_ID_BYTES)
            n = VIRTIO_BLK_ID_BYTES;
        vq_chain_write(c, 0, b->id, n);
        written += n;
        st = VIRTIO_BLK_S_OK;
        break;
    }
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        st = do_segments(b, c, type);
        break;
    default:
        st = VIRTIO_BLK_S_UNSUPP;
        break;
    }
    uint8_t s = (uint8_t)st;
    vq_chain_write(c, c->in_len - 1, &s, 1);
    return (int64_t)written;
}

static void *worker(void *arg)
{
    struct virtio_blk *b = arg;
    struct virtio_mmio *d = &b->mmio;
    struct vq_chain *c = malloc(sizeof(*c));
    if (!c)
        return NULL;

    pthread_mutex_lock(&d->lock);
    for (;;) {
        while (!b->stop && b->kicks == 0)
            pthread_cond_wait(&b->work, &d->lock);
        if (b->stop)
            break;
        if (!d->vq[0].ready) { /* disabled or reset since the notify */
            b->kicks = 0;
            continue;
        }
        int r = virtq_pop(&d->vq[0], d->mem, c);
        if (r == 0) {
            b->kicks = 0; /* ring drained */
            continue;
        }
        if (r < 0) {
            virtio_mmio_needs_reset(d);
            b->kicks = 0;
            continue;
        }
        /* Let another worker take the next chain while this one does
           the I/O. */
        pthread_cond_signal(&b->work);
        b->inflight++;
        pthread_mutex_unlock(&d->lock);
        int64_t w = virtio_blk_process(b, c);
        pthread_mutex_lock(&d->lock);
        b->inflight--;
        b->requests++;
        if (w < 0) {
            virtio_mmio_needs_reset(d);
        } else if (d->vq[0].ready) {
            int want = virtq_push(&d->vq[0], d->mem, c->head, (uint32_t)w);
            if (want < 0)
                virtio_mmio_needs_reset(d);
            else if (want)
                virtio_mmio_interrupt(d, VIRTIO_INT_USED);
        }
        if (b->inflight == 0)
            pthread_cond_broadcast(&b->idle);
    }
    pthread_mutex_unlock(&d->lock);
    free(c);
    return NULL;
}

int virtio_blk_start(struct virtio_blk *b, struct vdk_node *node,
                     bool read_only, const char *id,
                     const struct guest_mem *mem, uint64_t base,
                     struct irq_line irq, struct vdk_error **errp)
{
    int64_t len = vdk_get_length(node);
    if (len < 0)
        return vdk_error_setf_errno(errp, (int)-len, "disk size");
    memset(b, 0, sizeof(*b));
    b->node = node;
    b->read_only = read_only;
    b->capacity = (uint64_t)len / SECTOR;
    if (id) /* the ID is not NUL-terminated when it fills all 20 bytes */
        memcpy(b->id, id, strnlen(id, sizeof(b->id)));
    uint64_t f = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_FLUSH);
    if (read_only)
        f |= 1ull << VIRTIO_BLK_F_RO;
    else
        f |= (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
    virtio_mmio_init(&b->mmio, &blk_ops, mem, base, irq, f);
    pthread_cond_init(&b->work, NULL);
    pthread_cond_init(&b->idle, NULL);
    for (int i = 0; i < VIRTIO_BLK_WORKERS; i++) {
        int r = pthread_create(&b->workers[i], NULL, worker, b);
        if (r) {
            virtio_blk_stop(b);
            return vdk_error_setf_errno(errp, r, "starting disk worker");
        }
        b->nworkers++;
    }
    return 0;
}

void virtio_blk_stop(struct virtio_blk *b)
{
    pthread_mutex_lock(&b->mmio.lock);
    b->stop = true;
    pthread_cond_broadcast(&b->work);
    pthread_mutex_unlock(&b->mmio.lock);
    for (int i = 0; i < b->nworkers; i++)
        pthread_join(b->workers[i], NULL);
    b->nworkers = 0;
    pthread_cond_destroy(&b->work);
    pthread_cond_destroy(&b->idle);
    virtio_mmio_destroy(&b->mmio);
}
