/* SPDX-License-Identifier: MIT */
/*
 * A minimal virtio 1.x block driver over virtio-mmio: one split queue of
 * 8 entries, one request at a time, completion through the used-buffer
 * interrupt (as Linux's virtio_mmio: read InterruptStatus, acknowledge,
 * then look at the used ring).  The disk test
 * reads the pattern the host wrote, writes patterns, flushes, zeroes,
 * discards, and checks that out-of-range and read-only requests fail.
 *
 * Host-side contract (tests/integration/boot): the first 64 KiB hold byte
 * 0x5a, [3 MiB, +64 KiB) holds 0x77.  The guest writes 0xc3 over
 * [1 MiB, +64 KiB) and a position-dependent pattern over [2 MiB, +4 KiB),
 * and write-zeroes [3 MiB, +64 KiB) (when offered).
 */
#include "guest.h"

#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEV_FEAT 0x010
#define R_DEV_FEAT_SEL 0x014
#define R_DRV_FEAT 0x020
#define R_DRV_FEAT_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_INT_STATUS 0x060
#define R_INT_ACK 0x064
#define R_STATUS 0x070
#define R_DESC_LO 0x080
#define R_DESC_HI 0x084
#define R_AVAIL_LO 0x090
#define R_AVAIL_HI 0x094
#define R_USED_LO 0x0a0
#define R_USED_HI 0x0a4
#define R_CONFIG 0x100

#define F_RO 5
#define F_FLUSH 9
#define F_DISCARD 13
#define F_WRITE_ZEROES 14
#define F_SEG_MAX 2
#define F_VERSION_1 32

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define T_WRITE_ZEROES 13

#define QSIZE 8
#define SECT 512

struct desc {
    u64 addr;
    u32 len;
    u16 flags;
    u16 next;
};

struct ring {
    struct desc desc[QSIZE];         /* 128 bytes */
    u16 avail_flags, avail_idx, avail_ring[QSIZE], used_event;
    u8 pad[256 - 128 - 22];
    u16 used_flags;
    volatile u16 used_idx;
    struct { u32 id, len; } used_ring[QSIZE];
} __attribute__((aligned(4096)));

struct req_hdr {
    u32 type;
    u32 reserved;
    u64 sector;
};

static struct ring ring;
static struct req_hdr hdr;
static u8 status;
static u8 buf[64 * 1024] __attribute__((aligned(4096)));
static u8 seg[16];

static u64 dev;
static u64 features;
static volatile u32 used_irqs;

static void blk_isr(void)
{
    u32 st = mmio_read32(dev + R_INT_STATUS);
    mmio_write32(dev + R_INT_ACK, st);
    if (st & 1)
        used_irqs++;
}

static u32 rd(u32 off) { return mmio_read32(dev + off); }
static void wr(u32 off, u32 v) { mmio_write32(dev + off, v); }

/*
 * One request: header, up to two data descriptors (the buffer split in
 * halves so chains are exercised), status.  Returns the status byte.
 */
static int request(u32 type, u64 sector, void *data, u32 len, int dev_writes)
{
    int n = 0;
    hdr.type = type;
    hdr.reserved = 0;
    hdr.sector = sector;
    status = 0xff;

    ring.desc[n] = (struct desc){ (u64)&hdr, sizeof(hdr), 1, 1 };
    n++;
    if (len) {
        u32 half = len > SECT ? len / 2 : len;
        ring.desc[n] = (struct desc){ (u64)data, half, (u16)(1 | (dev_writes ? 2 : 0)),
                                      (u16)(n + 1) };
        n++;
        if (half < len) {
            ring.desc[n] = (struct desc){ (u64)data + half, len - half,
                                          (u16)(1 | (dev_writes ? 2 : 0)), (u16)(n + 1) };
            n++;
        }
    }
    ring.desc[n] = (struct desc){ (u64)&status, 1, 2, 0 };

    u16 idx = ring.avail_idx;
    u16 used = ring.used_idx;
    u32 irqs = used_irqs;
    ring.avail_ring[idx % QSIZE] = 0;
    barrier();
    __atomic_store_n(&ring.avail_idx, (u16)(idx + 1), __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    wr(R_QUEUE_NOTIFY, 0);
    while (ring.used_idx == used) {
        irq_wait(&used_irqs, irqs, "virtio used-buffer interrupt");
        irqs = used_irqs;
    }
    barrier();
    return status;
}

static int has(int bit)
{
    return (features >> bit) & 1;
}

static void disk_print(int idx, const char *what)
{
    print("vdk-guest: disk ");
    put_dec((u64)idx);
    print(": ");
    print(what);
}

int blk_test(int idx, u64 base, u32 irq)
{
    dev = base;
    used_irqs = 0;
    irq_route(irq, blk_isr);
    if (rd(R_MAGIC) != 0x74726976 || rd(R_VERSION) != 2)
        fail("virtio-mmio magic/version wrong");
    if (rd(R_DEVICE_ID) != 2)
        fail("not a virtio-blk device");

    wr(R_STATUS, 0);
    wr(R_STATUS, 1);
    wr(R_STATUS, 1 | 2);
    wr(R_DEV_FEAT_SEL, 0);
    u64 f = rd(R_DEV_FEAT);
    wr(R_DEV_FEAT_SEL, 1);
    f |= (u64)rd(R_DEV_FEAT) << 32;
    if (!((f >> F_VERSION_1) & 1))
        fail("device does not offer VIRTIO_F_VERSION_1");
    u64 want = (1ull << F_VERSION_1) | (1ull << F_RO) | (1ull << F_FLUSH) |
               (1ull << F_DISCARD) | (1ull << F_WRITE_ZEROES) |
               (1ull << F_SEG_MAX);
    features = f & want;
    wr(R_DRV_FEAT_SEL, 0);
    wr(R_DRV_FEAT, (u32)features);
    wr(R_DRV_FEAT_SEL, 1);
    wr(R_DRV_FEAT, (u32)(features >> 32));
    wr(R_STATUS, 1 | 2 | 8);
    if (!(rd(R_STATUS) & 8))
        fail("FEATURES_OK not accepted");

    wr(R_QUEUE_SEL, 0);
    if (rd(R_QUEUE_NUM_MAX) < QSIZE)
        fail("queue too small");
    memset(&ring, 0, sizeof(ring));
    wr(R_QUEUE_NUM, QSIZE);
    wr(R_DESC_LO, (u32)(u64)&ring.desc);
    wr(R_DESC_HI, 0);
    wr(R_AVAIL_LO, (u32)(u64)&ring.avail_flags);
    wr(R_AVAIL_HI, 0);
    wr(R_USED_LO, (u32)(u64)&ring.used_flags);
    wr(R_USED_HI, 0);
    wr(R_QUEUE_READY, 1);
    if (rd(R_QUEUE_READY) != 1)
        fail("queue not ready");
    wr(R_STATUS, 1 | 2 | 8 | 4);

    u64 cap = rd(R_CONFIG) | (u64)rd(R_CONFIG + 4) << 32;
    char id[21];
    memset(buf, 0, 20);
    if (request(T_GET_ID, 0, buf, 20, 1) != 0)
        fail("get-id failed");
    memcpy(id, buf, 20);
    id[20] = 0;
    disk_print(idx, "id '");
    print(id);
    print("' capacity ");
    put_dec(cap);
    print(" sectors");
    print(has(F_RO) ? " read-only\n" : "\n");
    if (cap < 5 * 2048)
        fail("disk smaller than 5 MiB");

    /* The host's pattern, read as one 64 KiB request. */
    if (request(T_IN, 0, buf, sizeof(buf), 1) != 0)
        fail("read failed");
    if (check64(buf, 0x5a5a5a5a5a5a5a5aull, sizeof(buf)))
        fail("data read does not match the host's pattern");
    disk_print(idx, "read 64 KiB, pattern ok\n");

    /* Bounds: a read past the end must fail. */
    if (request(T_IN, cap - 1, buf, 1024, 1) == 0)
        fail("read past the end succeeded");

    if (has(F_RO)) {
        fill64(buf, 0x1111111111111111ull, 4096);
        if (request(T_OUT, 2048, buf, 4096, 0) == 0)
            fail("write to a read-only disk succeeded");
        if (has(F_FLUSH) && request(T_FLUSH, 0, 0, 0, 0) != 0)
            fail("flush failed");
        disk_print(idx, "read-only, write refused\n");
        wr(R_STATUS, 0);
        return 0;
    }

    fill64(buf, 0xc3c3c3c3c3c3c3c3ull, sizeof(buf));
    if (request(T_OUT, 2048, buf, sizeof(buf), 0) != 0)
        fail("write failed");
    /* Position-dependent pattern: each sector differs. */
    for (u32 s = 0; s < 8; s++)
        for (u32 w = 0; w < SECT / 8; w++)
            ((u64 *)buf)[s * (SECT / 8) + w] =
                0x0101010101010101ull * (s + 1) ^ ((u64)w << 32);
    if (request(T_OUT, 4096, buf, 4096, 0) != 0)
        fail("write failed");
    if (!has(F_FLUSH) || request(T_FLUSH, 0, 0, 0, 0) != 0)
        fail("flush failed");
    memset(buf, 0, 4096);
    if (request(T_IN, 4096, buf, 4096, 1) != 0)
        fail("read back failed");
    for (u32 s = 0; s < 8; s++)
        for (u32 w = 0; w < SECT / 8; w++)
            if (((u64 *)buf)[s * (SECT / 8) + w] !=
                (0x0101010101010101ull * (s + 1) ^ ((u64)w << 32)))
                fail("read back does not match what was written");
    if (request(T_IN, 2048, buf, sizeof(buf), 1) != 0 ||
        check64(buf, 0xc3c3c3c3c3c3c3c3ull, sizeof(buf)))
        fail("read back of 64 KiB does not match");
    disk_print(idx, "wrote, flushed and read back\n");

    if (has(F_WRITE_ZEROES)) {
        *(u64 *)seg = 6144;
        *(u32 *)(seg + 8) = 128;
        *(u32 *)(seg + 12) = 0;
        if (request(T_WRITE_ZEROES, 0, seg, 16, 0) != 0)
            fail("write-zeroes failed");
        if (request(T_IN, 6144, buf, sizeof(buf), 1) != 0 ||
            check64(buf, 0, sizeof(buf)))
            fail("zeroed range does not read as zeros");
        disk_print(idx, "write-zeroes ok\n");
    }
    if (has(F_DISCARD)) {
        *(u64 *)seg = 8192;
        *(u32 *)(seg + 8) = 128;
        *(u32 *)(seg + 12) = 0;
        if (request(T_DISCARD, 0, seg, 16, 0) != 0)
            fail("discard failed");
        disk_print(idx, "discard ok\n");
    }
    if (request(T_FLUSH, 0, 0, 0, 0) != 0)
        fail("flush failed");
    disk_print(idx, "");
    put_dec(used_irqs);
    print(" used-buffer interrupts on IRQ ");
    put_dec(irq);
    print("\n");
    wr(R_STATUS, 0);
    return 0;
}
