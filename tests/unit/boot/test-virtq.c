/* SPDX-License-Identifier: MIT */
/*
 * Virtqueues: well-formed chains, and every malformed thing a guest can
 * hand us (loops, indices and addresses out of range, overflowing
 * lengths, ordering, indirect descriptors, runaway avail index), plus the
 * virtio-mmio register file's checks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "guest-boot/virtio/mmio.h"
#include "guest-boot/virtio/virtq.h"

#define MEM (1u << 20)
#define DESC 0x1000
#define AVAIL 0x2000
#define USED 0x3000
#define QN 8

static struct guest_mem mem;
static struct virtq q;

static int setup(void **state)
{
    mem.host = calloc(1, MEM);
    mem.low_size = MEM;
    mem.high_size = 0;
    memset(&q, 0, sizeof(q));
    q.num = QN;
    q.desc = DESC;
    q.avail = AVAIL;
    q.used = USED;
    q.ready = true;
    return mem.host ? 0 : -1;
}

static int teardown(void **state)
{
    free(mem.host);
    return 0;
}

static void desc(int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t *d = mem.host + DESC + 16 * i;
    put_le64(d, addr);
    put_le32(d + 8, len);
    put_le16(d + 12, flags);
    put_le16(d + 14, next);
}

static uint16_t avail_idx;

static void offer(uint16_t head)
{
    put_le16(mem.host + AVAIL + 4 + 2 * (avail_idx % QN), head);
    avail_idx++;
    put_le16(mem.host + AVAIL + 2, avail_idx);
}

static int pop(struct vq_chain *c)
{
    return virtq_pop(&q, &mem, c);
}

static void test_good_chain(void **state)
{
    static struct vq_chain c;
    avail_idx = 0;
    memcpy(mem.host + 0x10000, "0123456789abcdef", 16);
    desc(0, 0x10000, 16, VIRTQ_DESC_F_NEXT, 3);
    desc(3, 0x20000, 4096, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 5);
    desc(5, 0x30000, 1, VIRTQ_DESC_F_WRITE, 0);
    assert_int_equal(pop(&c), 0); /* empty */
    offer(0);
    assert_int_equal(pop(&c), 1);
    assert_int_equal(c.head, 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.out_len, 16);
    assert_int_equal(c.in_len, 4097);
    assert_ptr_equal(c.buf[1].p, mem.host + 0x20000);
    assert_true(c.buf[2].write);

    char tmp[20] = { 0 };
    assert_int_equal(vq_chain_read(&c, 4, tmp, 100), 12);
    assert_string_equal(tmp, "456789abcdef");
    uint8_t s = 0x42;
    assert_int_equal(vq_chain_write(&c, 4096, &s, 1), 1);
    assert_int_equal(mem.host[0x30000], 0x42);
    assert_int_equal(vq_chain_write(&c, 5000, &s, 1), 0);

    assert_int_equal(virtq_push(&q, &mem, c.head, 4097), 1);
    assert_int_equal(get_le16(mem.host + USED + 2), 1);
    assert_int_equal(get_le32(mem.host + USED + 4), 0);
    assert_int_equal(get_le32(mem.host + USED + 8), 4097);
    assert_int_equal(pop(&c), 0);

    /* the driver asks for no interrupts */
    put_le16(mem.host + AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
    assert_int_equal(virtq_push(&q, &mem, 0, 1), 0);
    put_le16(mem.host + AVAIL, 0);
}

static void test_longest_chain(void **state)
{
    static struct vq_chain c;
    avail_idx = 0;
    for (int i = 0; i < QN; i++)
        desc(i, 0x10000 + 512u * (unsigned)i, 512,
             i < QN - 1 ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
    offer(0);
    assert_int_equal(pop(&c), 1);
    assert_int_equal(c.n, QN);
}

static void expect_bad(void)
{
    static struct vq_chain c;
    offer(0);
    assert_int_equal(pop(&c), -EINVAL);
}

static void test_loop(void **state)
{
    avail_idx = 0;
    desc(0, 0x10000, 16, VIRTQ_DESC_F_NEXT, 1);
    desc(1, 0x10000, 16, VIRTQ_DESC_F_NEXT, 0);
    expect_bad();
    desc(0, 0x10000, 16, VIRTQ_DESC_F_NEXT, 0); /* self loop */
    expect_bad();
}

static void test_index_range(void **state)
{
    static struct vq_chain c;
    avail_idx = 0;
    desc(0, 0x10000, 16, VIRTQ_DESC_F_NEXT, QN); /* next out of range */
    expect_bad();
    offer(QN + 3);                                /* head out of range */
    assert_int_equal(pop(&c), -EINVAL);
    /* the avail index runs more than a ring ahead */
    put_le16(mem.host + AVAIL + 2, (uint16_t)(q.last_avail + QN + 1));
    assert_int_equal(pop(&c), -EINVAL);
}

static void test_addresses(void **state)
{
    avail_idx = 0;
    desc(0, MEM, 1, 0, 0);                    /* just past RAM */
    expect_bad();
    desc(0, MEM - 16, 17, 0, 0);              /* straddles the end */
    expect_bad();
    desc(0, UINT64_MAX - 4, 16, 0, 0);        /* wraps around */
    expect_bad();
    desc(0, 0, UINT32_MAX, 0, 0);             /* huge length */
    expect_bad();
    desc(0, 0xfee00000ull, 4, 0, 0);          /* MMIO, not RAM */
    expect_bad();
    desc(0, MEM - 16, 16, 0, 0);              /* exactly fits */
    static struct vq_chain c;
    offer(0);
    assert_int_equal(pop(&c), 1);
}

static void test_order_and_indirect(void **state)
{
    avail_idx = 0;
    desc(0, 0x10000, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    desc(1, 0x10000, 16, 0, 0);               /* readable after writable */
    expect_bad();
    desc(0, 0x10000, 16, VIRTQ_DESC_F_INDIRECT, 0);
    expect_bad();
}

static void test_layout(void **state)
{
    struct virtq l = q;
    assert_int_equal(virtq_check_layout(&l, &mem), 0);
    l.num = 0;
    assert_int_equal(virtq_check_layout(&l, &mem), -EINVAL);
    l.num = 6;
    assert_int_equal(virtq_check_layout(&l, &mem), -EINVAL);
    l.num = 512;
    assert_int_equal(virtq_check_layout(&l, &mem), -EINVAL);
    l = q;
    l.desc = DESC + 8;
    assert_int_equal(virtq_check_layout(&l, &mem), -EINVAL);
    l = q;
    l.used = MEM - 8;
    assert_int_equal(virtq_check_layout(&l, &mem), -EINVAL);
    l = q;
    l.avail = UINT64_MAX - 1;
    assert_int_equal(virtq_check_layout(&l, &mem), -EINVAL);
    l = q;
    l.ready = false;
    static struct vq_chain c;
    assert_int_equal(virtq_pop(&l, &mem, &c), -EINVAL);
}

/* ---- the virtio-mmio register file ---- */

static int notified;
static void t_notify(struct virtio_mmio *d, int qi) { notified++; }
static void t_config(struct virtio_mmio *d, uint32_t off, uint8_t *b, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++)
        b[i] = (uint8_t)(off + i);
}
static const struct virtio_dev_ops t_ops = {
    .device_id = 2, .nqueues = 1, .config_read = t_config, .config_len = 8,
    .notify = t_notify,
};

static uint32_t rd(struct virtio_mmio *d, uint64_t off)
{
    uint8_t b[4];
    virtio_mmio_read(d, off, b, 4);
    return get_le32(b);
}

static void wr(struct virtio_mmio *d, uint64_t off, uint32_t v)
{
    uint8_t b[4];
    put_le32(b, v);
    virtio_mmio_write(d, off, b, 4);
}

static void test_mmio(void **state)
{
    struct virtio_mmio d;
    virtio_mmio_init(&d, &t_ops, &mem, 0xd0000000,
                     (struct irq_line){ .vm = NULL, .gsi = 5 }, 1u << 9);
    assert_int_equal(rd(&d, VMMIO_MAGIC), VIRTIO_MMIO_MAGIC);
    assert_int_equal(rd(&d, VMMIO_VERSION), 2);
    assert_int_equal(rd(&d, VMMIO_DEVICE_ID), 2);
    wr(&d, VMMIO_DEVICE_FEATURES_SEL, 1);
    assert_int_equal(rd(&d, VMMIO_DEVICE_FEATURES), 1);
    wr(&d, VMMIO_DEVICE_FEATURES_SEL, 7);
    assert_int_equal(rd(&d, VMMIO_DEVICE_FEATURES), 0);

    uint8_t b[8];
    virtio_mmio_read(&d, VMMIO_MAGIC + 1, b, 4); /* unaligned: reads 0 */
    assert_int_equal(get_le32(b), 0);
    virtio_mmio_read(&d, VMMIO_CONFIG + 6, b, 2);
    assert_int_equal(b[0], 6);
    assert_int_equal(b[1], 7);
    virtio_mmio_read(&d, VMMIO_CONFIG + 6, b, 4); /* past the config */
    assert_int_equal(get_le32(b), 0);

    /* Without VERSION_1, or with an unoffered feature: no FEATURES_OK. */
    wr(&d, VMMIO_STATUS, 3);
    wr(&d, VMMIO_DRIVER_FEATURES_SEL, 0);
    wr(&d, VMMIO_DRIVER_FEATURES, 1u << 9);
    wr(&d, VMMIO_STATUS, 3 | VIRTIO_STATUS_FEATURES_OK);
    assert_int_equal(rd(&d, VMMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK, 0);
    wr(&d, VMMIO_DRIVER_FEATURES_SEL, 1);
    wr(&d, VMMIO_DRIVER_FEATURES, 1 | 2);
    wr(&d, VMMIO_STATUS, 3 | VIRTIO_STATUS_FEATURES_OK);
    assert_int_equal(rd(&d, VMMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK, 0);
    wr(&d, VMMIO_DRIVER_FEATURES, 1);
    wr(&d, VMMIO_STATUS, 3 | VIRTIO_STATUS_FEATURES_OK);
    assert_int_equal(rd(&d, VMMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK,
                     VIRTIO_STATUS_FEATURES_OK);

    /* A ring outside RAM is not accepted. */
    wr(&d, VMMIO_QUEUE_SEL, 0);
    assert_int_equal(rd(&d, VMMIO_QUEUE_NUM_MAX), VIRTQ_MAX_SIZE);
    wr(&d, VMMIO_QUEUE_NUM, 8);
    wr(&d, VMMIO_QUEUE_DESC_LOW, 0);
    wr(&d, VMMIO_QUEUE_DESC_HIGH, 0x10);
    wr(&d, VMMIO_QUEUE_DRIVER_LOW, AVAIL);
    wr(&d, VMMIO_QUEUE_DEVICE_LOW, USED);
    wr(&d, VMMIO_QUEUE_READY, 1);
    assert_int_equal(rd(&d, VMMIO_QUEUE_READY), 0);
    wr(&d, VMMIO_QUEUE_DESC_HIGH, 0);
    wr(&d, VMMIO_QUEUE_DESC_LOW, DESC);
    wr(&d, VMMIO_QUEUE_READY, 1);
    assert_int_equal(rd(&d, VMMIO_QUEUE_READY), 1);
    /* ready queues ignore address changes */
    wr(&d, VMMIO_QUEUE_DESC_LOW, 0x5000);
    assert_int_equal(d.vq[0].desc, DESC);

    /* Notify only after DRIVER_OK, only for existing queues. */
    notified = 0;
    wr(&d, VMMIO_QUEUE_NOTIFY, 0);
    assert_int_equal(notified, 0);
    wr(&d, VMMIO_STATUS, 3 | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    wr(&d, VMMIO_QUEUE_NOTIFY, 0);
    wr(&d, VMMIO_QUEUE_NOTIFY, 3);
    assert_int_equal(notified, 1);
    wr(&d, VMMIO_QUEUE_SEL, 9);
    assert_int_equal(rd(&d, VMMIO_QUEUE_NUM_MAX), 0);
    wr(&d, VMMIO_QUEUE_NUM, 8); /* no queue 9: ignored */

    virtio_mmio_needs_reset(&d);
    assert_true(rd(&d, VMMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    assert_int_equal(rd(&d, VMMIO_INTERRUPT_STATUS), VIRTIO_INT_CONFIG);
    wr(&d, VMMIO_STATUS, 0);
    assert_int_equal(rd(&d, VMMIO_STATUS), 0);
    assert_int_equal(d.vq[0].ready, 0);
    virtio_mmio_destroy(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_longest_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_addresses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_and_indirect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mmio, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
