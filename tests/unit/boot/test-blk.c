/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk requests on a memory disk: read, write, flush, get-id,
 * discard, write-zeroes, and everything a guest can get wrong (ranges past
 * the end, partial sectors, short chains, bad segment flags, writes to a
 * read-only disk), and IOERR for reads and writes the fault filter fails.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "protocols/memory.h"
#include "guest-boot/virtio/blk.h"

#define CAP 2048 /* sectors: 1 MiB */

static struct virtio_blk b;
static uint8_t hdr[16], data[8192], status;
static struct vq_chain c;

static int setup(void **state)
{
    struct vdk_opts *o = vdk_opts_new();
    vdk_opts_set(o, "file.size", "1M");
    memset(&b, 0, sizeof(b));
    if (vdk_open(&b.node, "memory://blk", "raw", o, VDK_O_RDWR, NULL) < 0)
        return -1;
    b.capacity = CAP;
    memcpy(b.id, "unit-disk", 9);
    return 0;
}

static int teardown(void **state)
{
    vdk_close(b.node);
    return 0;
}

/* header, then data (device-writable for reads), then status */
static int64_t req(uint32_t type, uint64_t sector, uint32_t len, bool dev_writes)
{
    put_le32(hdr, type);
    put_le32(hdr + 4, 0);
    put_le64(hdr + 8, sector);
    status = 0xee;
    c.n = 0;
    c.out_len = c.in_len = 0;
    c.buf[c.n++] = (struct vq_buf){ hdr, 16, false };
    c.out_len = 16;
    if (len) {
        c.buf[c.n++] = (struct vq_buf){ data, len, dev_writes };
        if (dev_writes)
            c.in_len += len;
        else
            c.out_len += len;
    }
    c.buf[c.n++] = (struct vq_buf){ &status, 1, true };
    c.in_len += 1;
    return virtio_blk_process(&b, &c);
}

static void test_rw(void **state)
{
    memset(data, 0xc3, 4096);
    assert_int_equal(req(VIRTIO_BLK_T_OUT, 8, 4096, false), 1);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    uint64_t len;
    uint8_t *disk = vdk_memory_data(vdk_node_file(b.node), &len);
    assert_non_null(disk);
    assert_int_equal(disk[8 * 512], 0xc3);
    assert_int_equal(disk[8 * 512 + 4095], 0xc3);
    memset(data, 0, 4096);
    assert_int_equal(req(VIRTIO_BLK_T_IN, 8, 4096, true), 4097);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    assert_int_equal(data[4095], 0xc3);
    /* the last sector is fine, one past is not */
    assert_int_equal(req(VIRTIO_BLK_T_IN, CAP - 1, 512, true), 513);
    assert_int_equal(req(VIRTIO_BLK_T_IN, CAP - 1, 1024, true), 1);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    assert_int_equal(req(VIRTIO_BLK_T_OUT, CAP, 512, false), 1);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    assert_int_equal(req(VIRTIO_BLK_T_IN, UINT64_MAX, 512, true), 1);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    /* not whole sectors */
    assert_int_equal(req(VIRTIO_BLK_T_IN, 0, 100, true), 1);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    assert_int_equal(req(VIRTIO_BLK_T_FLUSH, 0, 0, false), 1);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    assert_int_equal(req(99, 0, 0, false), 1);
    assert_int_equal(status, VIRTIO_BLK_S_UNSUPP);
}

static void test_get_id(void **state)
{
    memset(data, 0, 64);
    assert_int_equal(req(VIRTIO_BLK_T_GET_ID, 0, 64, true), 21);
    assert_string_equal((char *)data, "unit-disk");
    assert_int_equal(req(VIRTIO_BLK_T_GET_ID, 0, 4, true), 5); /* short */
}

static void seg(uint64_t sector, uint32_t n, uint32_t flags)
{
    put_le64(data, sector);
    put_le32(data + 8, n);
    put_le32(data + 12, flags);
}

static void test_discard_zeroes(void **state)
{
    uint64_t len;
    uint8_t *disk = vdk_memory_data(vdk_node_file(b.node), &len);
    assert_non_null(disk);
    memset(disk + 64 * 512, 0x77, 4096);
    seg(64, 8, 1);
    assert_int_equal(req(VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false), 1);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    assert_int_equal(disk[64 * 512], 0);
    assert_int_equal(disk[64 * 512 + 4095], 0);
    seg(64, 8, 0);
    assert_int_equal(req(VIRTIO_BLK_T_DISCARD, 0, 16, false), 1);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    seg(64, 8, 1); /* unmap is meaningless for discard */
    assert_int_equal(req(VIRTIO_BLK_T_DISCARD, 0, 16, false), 1);
    assert_int_equal(status, VIRTIO_BLK_S_UNSUPP);
    seg(64, 8, 4); /* unknown flag */
    assert_int_equal(req(VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false), 1);
    assert_int_equal(status, VIRTIO_BLK_S_UNSUPP);
    seg(CAP - 4, 8, 0); /* past the end */
    assert_int_equal(req(VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false), 1);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    seg(0, UINT32_MAX, 0); /* too many sectors in one segment */
    assert_int_equal(req(VIRTIO_BLK_T_DISCARD, 0, 16, false), 1);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    assert_int_equal(req(VIRTIO_BLK_T_DISCARD, 0, 12, false), 1); /* partial */
    assert_int_equal(status, VIRTIO_BLK_S_UNSUPP);
    assert_int_equal(req(VIRTIO_BLK_T_DISCARD, 0, 16 * (VIRTIO_BLK_MAX_SEGS + 1),
                         false), 1);
    assert_int_equal(status, VIRTIO_BLK_S_UNSUPP);
}

static void test_read_only(void **state)
{
    b.read_only = true;
    assert_int_equal(req(VIRTIO_BLK_T_OUT, 0, 512, false), 1);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    seg(0, 8, 0);
    assert_int_equal(req(VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false), 1);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    assert_int_equal(req(VIRTIO_BLK_T_DISCARD, 0, 16, false), 1);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    assert_int_equal(req(VIRTIO_BLK_T_IN, 0, 512, true), 513);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    b.read_only = false;
}

static void test_short_chains(void **state)
{
    /* no status byte */
    c.n = 1;
    c.buf[0] = (struct vq_buf){ hdr, 16, false };
    c.out_len = 16;
    c.in_len = 0;
    assert_int_equal(virtio_blk_process(&b, &c), -EINVAL);
    /* header too short */
    c.n = 2;
    c.buf[0] = (struct vq_buf){ hdr, 8, false };
    c.buf[1] = (struct vq_buf){ &status, 1, true };
    c.out_len = 8;
    c.in_len = 1;
    assert_int_equal(virtio_blk_process(&b, &c), -EINVAL);
    /* header split over two descriptors is fine */
    put_le32(hdr, VIRTIO_BLK_T_FLUSH);
    c.n = 3;
    c.buf[0] = (struct vq_buf){ hdr, 5, false };
    c.buf[1] = (struct vq_buf){ hdr + 5, 11, false };
    c.buf[2] = (struct vq_buf){ &status, 1, true };
    c.out_len = 16;
    assert_int_equal(virtio_blk_process(&b, &c), 1);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
}

/* A disk behind the fault filter: a read that touches the faulted
   sectors gets IOERR and nothing else, the rest of the disk still reads,
   and a faulted write leaves the disk as it was. */
static void test_fault_filter(void **state)
{
    struct virtio_blk saved = b;
    struct vdk_opts *o = vdk_opts_new();
    assert_int_equal(vdk_opts_parse(o, "driver=fault,ops=read|write,offset=4096,"
                                    "length=512,file.driver=raw,"
                                    "file.file.filename=memory://fblk,"
                                    "file.file.size=1M", NULL, NULL), 0);
    assert_int_equal(vdk_open_opts(&b.node, o, VDK_O_RDWR, NULL), 0);
    assert_int_equal(req(VIRTIO_BLK_T_IN, 8, 512, true), 1);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    assert_int_equal(req(VIRTIO_BLK_T_IN, 0, 8192, true), 1);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    assert_int_equal(req(VIRTIO_BLK_T_IN, 7, 512, true), 513);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    assert_int_equal(req(VIRTIO_BLK_T_IN, 9, 4096, true), 4097);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    memset(data, 0x5a, 4096);
    assert_int_equal(req(VIRTIO_BLK_T_OUT, 6, 2048, false), 1);
    assert_int_equal(status, VIRTIO_BLK_S_IOERR);
    uint64_t len;
    struct vdk_node *mem = vdk_node_file(vdk_node_file(b.node));
    uint8_t *disk = vdk_memory_data(mem, &len);
    assert_non_null(disk);
    assert_int_equal(disk[6 * 512], 0);
    assert_int_equal(req(VIRTIO_BLK_T_OUT, 9, 512, false), 1);
    assert_int_equal(status, VIRTIO_BLK_S_OK);
    assert_int_equal(disk[9 * 512], 0x5a);
    vdk_close(b.node);
    b = saved;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rw),
        cmocka_unit_test(test_get_id),
        cmocka_unit_test(test_discard_zeroes),
        cmocka_unit_test(test_read_only),
        cmocka_unit_test(test_short_chains),
        cmocka_unit_test(test_fault_filter),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
