/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueue handling.  Ring layout (virtio 1.x, 2.7.5-2.7.8):
 *   descriptor: le64 addr, le32 len, le16 flags, le16 next (16 bytes)
 *   avail:      le16 flags, le16 idx, le16 ring[num], le16 used_event
 *   used:       le16 flags, le16 idx, {le32 id, le32 len}[num], le16 avail_event
 */
#include <errno.h>
#include <string.h>

#include "guest-boot/virtio/virtq.h"

int virtq_check_layout(const struct virtq *q, const struct guest_mem *m)
{
    uint64_t n = q->num;
    if (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1)))
        return -EINVAL;
    if ((q->desc & 15) || (q->avail & 1) || (q->used & 3))
        return -EINVAL;
    if (!guest_ptr(m, q->desc, 16 * n) || !guest_ptr(m, q->avail, 6 + 2 * n) ||
        !guest_ptr(m, q->used, 6 + 8 * n))
        return -EINVAL;
    return 0;
}

static uint16_t load16_acquire(const uint8_t *p)
{
    /* Rings are 2-byte aligned (checked at setup); x86 is little-endian. */
    return __atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_ACQUIRE);
}

int virtq_pop(struct virtq *q, const struct guest_mem *m, struct vq_chain *c)
{
    if (!q->ready || virtq_check_layout(q, m) < 0)
        return -EINVAL;
    uint8_t *avail = guest_ptr(m, q->avail, 6 + 2 * (uint64_t)q->num);
    uint8_t *desc = guest_ptr(m, q->desc, 16 * (uint64_t)q->num);
    uint16_t idx = load16_acquire(avail + 2);
    uint16_t pending = (uint16_t)(idx - q->last_avail);
    if (pending == 0)
        return 0;
    if (pending > q->num)
        return -EINVAL;

    uint16_t head = get_le16(avail + 4 + 2 * (q->last_avail % q->num));
    q->last_avail++;
    if (head >= q->num)
        return -EINVAL;

    c->head = head;
    c->n = 0;
    c->out_len = c->in_len = 0;
    uint16_t i = head;
    for (;;) {
        const uint8_t *d = desc + 16 * (uint64_t)i;
        uint64_t addr = get_le64(d);
        uint32_t len = get_le32(d + 8);
        uint16_t flags = get_le16(d + 12);
        uint16_t next = get_le16(d + 14);

        /* A chain can never be longer than the table: longer means loop. */
        if (c->n >= q->num || (flags & VIRTQ_DESC_F_INDIRECT))
            return -EINVAL;
        uint8_t *p = guest_ptr(m, addr, len);
        if (!p)
            return -EINVAL;
        bool w = flags & VIRTQ_DESC_F_WRITE;
        if (!w && c->in_len)
            return -EINVAL; /* readable after writable */
        c->buf[c->n++] = (struct vq_buf){ p, len, w };
        if (w)
            c->in_len += len;
        else
            c->out_len += len;
        if (!(flags & VIRTQ_DESC_F_NEXT))
            break;
        if (next >= q->num)
            return -EINVAL;
        i = next;
    }
    return 1;
}

int virtq_push(struct virtq *q, const struct guest_mem *m, uint16_t head,
               uint32_t len)
{
    uint8_t *used = guest_ptr(m, q->used, 6 + 8 * (uint64_t)q->num);
    uint8_t *avail = guest_ptr(m, q->avail, 6 + 2 * (uint64_t)q->num);
    if (!q->num || !used || !avail)
        return -EINVAL;
    uint8_t *e = used + 4 + 8 * (uint64_t)(q->used_idx % q->num);
    put_le32(e, head);
    put_le32(e + 4, len);
    q->used_idx++;
    __atomic_store_n((uint16_t *)(void *)(used + 2), q->used_idx,
                     __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return !(get_le16(avail) & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

uint64_t vq_chain_read(const struct vq_chain *c, uint64_t off, void *dst,
                       uint64_t len)
{
    uint8_t *out = dst;
    uint64_t done = 0;
    for (int i = 0; i < c->n && done < len; i++) {
        const struct vq_buf *b = &c->buf[i];
        if (b->write)
            break;
        if (off >= b->len) {
            off -= b->len;
            continue;
        }
        uint64_t k = b->len - off;
        if (k > len - done)
            k = len - done;
        memcpy(out + done, b->p + off, k);
        done += k;
        off = 0;
    }
    return done;
}

uint64_t vq_chain_write(const struct vq_chain *c, uint64_t off,
                        const void *src, uint64_t len)
{
    const uint8_t *in = src;
    uint64_t done = 0;
    for (int i = 0; i < c->n && done < len; i++) {
        const struct vq_buf *b = &c->buf[i];
        if (!b->write)
            continue;
        if (off >= b->len) {
            off -= b->len;
            continue;
        }
        uint64_t k = b->len - off;
        if (k > len - done)
            k = len - done;
        memcpy(b->p + off, in + done, k);
        done += k;
        off = 0;
    }
    return done;
}
