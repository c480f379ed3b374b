/* SPDX-License-Identifier: MIT */
/*
 * Block status (block/status.c): the answer of one layer, the merged
 * answer through a backing chain (vdk_block_status_above), and pnum
 * bounds.  Chains are built from the test format in testfmt.c held in
 * memory:// images.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testfmt.h"
#include "unit-util.h"

#define CL 4096u

static int setup(void **state)
{
    vdk_driver_set_test_extra(&testfmt_driver);
    return 0;
}

static int teardown(void **state)
{
    vdk_driver_set_test_extra(NULL);
    return 0;
}

static int status(struct vdk_node *n, uint64_t off, uint64_t bytes, uint64_t *pnum,
                  uint64_t *map, struct vdk_node **file)
{
    *pnum = 0;
    int r = vdk_block_status(n, off, bytes, pnum, map, file);
    if (r >= 0) {
        assert_true(*pnum >= 1);
        assert_true(*pnum <= bytes);
    }
    return r;
}

static void test_one_layer(void **state)
{
    testfmt_preset("one", 5 * CL, CL, "DDZ.D", 0x10, NULL, NULL);
    struct vdk_node *n = unit_open("memory://one", "testfmt", NULL, 0);
    struct vdk_node *mem = vdk_node_file(n), *f = NULL;
    uint64_t pnum, map;
    const uint64_t doff = testfmt_data_off(5);

    /* Two data clusters merge; map points into the file node. */
    int r = status(n, 0, 5 * CL, &pnum, &map, &f);
    assert_int_equal(r, VDK_BS_DATA | VDK_BS_OFFSET_VALID | VDK_BS_ALLOCATED);
    assert_int_equal(pnum, 2 * CL);
    assert_int_equal(map, doff);
    assert_ptr_equal(f, mem);
    /* Part of a cluster: pnum is what was asked, the map follows. */
    r = status(n, CL + 100, 10, &pnum, &map, &f);
    assert_int_equal(r, VDK_BS_DATA | VDK_BS_OFFSET_VALID | VDK_BS_ALLOCATED);
    assert_int_equal(pnum, 10);
    assert_int_equal(map, doff + CL + 100);
    /* Zero cluster: allocated here, no offset. */
    r = status(n, 2 * CL, 3 * CL, &pnum, &map, &f);
    assert_int_equal(r, VDK_BS_ZERO | VDK_BS_ALLOCATED);
    assert_int_equal(pnum, CL);
    assert_int_equal(map, 0);
    assert_null(f);
    /* Unallocated without backing: zeros, but not allocated. */
    r = status(n, 3 * CL, 2 * CL, &pnum, NULL, NULL);
    assert_int_equal(r, VDK_BS_ZERO);
    assert_int_equal(pnum, CL);
    /* Last cluster: EOF, also when asked for more than remains. */
    r = status(n, 4 * CL, 100 * CL, &pnum, &map, &f);
    assert_int_equal(r, VDK_BS_DATA | VDK_BS_OFFSET_VALID | VDK_BS_ALLOCATED | VDK_BS_EOF);
    assert_int_equal(pnum, CL);
    /* Bad requests. */
    assert_int_equal(vdk_block_status(n, 5 * CL, 1, &pnum, NULL, NULL), -EINVAL);
    assert_int_equal(vdk_block_status(n, 0, 0, &pnum, NULL, NULL), -EINVAL);
    assert_int_equal(vdk_block_status(n, UINT64_MAX, 1, &pnum, NULL, NULL), -EINVAL);
    assert_int_equal(vdk_block_status(n, 1, UINT64_MAX, &pnum, NULL, NULL), -EINVAL);
    /* A driver answering more than asked is caught, not trusted. */
    testfmt_bad_pnum = true;
    assert_int_equal(vdk_block_status(n, 0, CL, &pnum, NULL, NULL), -EIO);
    testfmt_bad_pnum = false;
    vdk_close(n);
    vdk_memory_preset("one", NULL, 0);
}

/* Raw passes the file's answer through, at its window offset. */
static void test_raw_passthrough(void **state)
{
    struct vdk_node *n = unit_open("memory://r", "raw", "file.size=64k,offset=4096", 0);
    uint64_t pnum = 0, map = 0;
    struct vdk_node *f = NULL;
    int r = status(n, 512, 100000, &pnum, &map, &f);
    assert_int_equal(r, VDK_BS_DATA | VDK_BS_OFFSET_VALID | VDK_BS_PLAIN | VDK_BS_ALLOCATED | VDK_BS_EOF);
    assert_int_equal(pnum, 60 * 1024 - 512);
    assert_int_equal(map, 4096 + 512);
    assert_ptr_equal(f, vdk_node_file(n));
    /* The memory node alone, past its end: zeros (it grows). */
    r = status(vdk_node_file(n), 1 << 20, 4096, &pnum, NULL, NULL);
    assert_true(r & VDK_BS_ZERO);
    assert_int_equal(pnum, 4096);
    vdk_close(n);
}

struct extent {
    uint64_t start, len;
    int flags, depth;
};

static size_t walk(struct vdk_node *n, struct vdk_node *base, struct extent *out, size_t max)
{
    int64_t len = vdk_get_length(n);
    uint64_t off = 0;
    size_t k = 0;
    assert_true(len > 0);
    while (off < (uint64_t)len) {
        uint64_t pnum = 0, map = 0;
        struct vdk_node *f = NULL;
        int depth = -1;
        int r = vdk_block_status_above(n, base, off, (uint64_t)len - off, &pnum, &map, &f,
                                       &depth);
        assert_true(r >= 0);
        assert_true(pnum >= 1 && pnum <= (uint64_t)len - off);
        r &= ~VDK_BS_EOF;
        if (k && out[k - 1].flags == r && out[k - 1].depth == depth &&
            !(r & VDK_BS_OFFSET_VALID)) {
            out[k - 1].len += pnum;
        } else {
            assert_true(k < max);
            out[k++] = (struct extent){ off, pnum, r, depth };
        }
        off += pnum;
    }
    return k;
}

static void expect(const struct extent *e, uint64_t start, uint64_t len, int flags, int depth)
{
    if (e->start != start || e->len != len || e->flags != flags || e->depth != depth)
        fail_msg("extent at %llu+%llu flags %#x depth %d; expected %llu+%llu %#x depth %d",
                 (unsigned long long)e->start, (unsigned long long)e->len, e->flags,
                 e->depth, (unsigned long long)start, (unsigned long long)len, flags, depth);
}

/*
 * cluster:  0  1  2  3  4  5  6  7
 * top       D  .  .  .  .  .  .  .    (8 clusters)
 * mid       .  Z  .  D  .  .          (6 clusters)
 * base      D  D  .  .  D  D          (6 clusters)
 */
static void test_chain(void **state)
{
    const int D = VDK_BS_DATA | VDK_BS_OFFSET_VALID | VDK_BS_ALLOCATED;
    const int Z = VDK_BS_ZERO | VDK_BS_ALLOCATED;
    testfmt_preset("base", 6 * CL, CL, "DD..DD", 0x20, NULL, NULL);
    testfmt_preset("mid", 6 * CL, CL, ".Z.D..", 0x40, "memory://base", "testfmt");
    testfmt_preset("top", 8 * CL, CL, "D.......", 0x60, "memory://mid", "testfmt");
    struct vdk_node *top = unit_open("memory://top", "testfmt", NULL, 0);
    struct vdk_node *mid = vdk_node_backing(top), *base = vdk_node_backing(mid);
    assert_non_null(base);
    assert_string_equal(vdk_node_backing_name(top), "memory://mid");
    assert_string_equal(vdk_node_backing_format(top), "testfmt");

    struct extent e[16];
    size_t k = walk(top, NULL, e, 16);
    assert_int_equal(k, 6);
    expect(&e[0], 0, CL, D, 0);
    expect(&e[1], CL, CL, Z, 1);
    expect(&e[2], 2 * CL, CL, VDK_BS_ZERO, 2);  /* nobody allocates it: depth 2 as
                                                   qemu-img map reports it */
    expect(&e[3], 3 * CL, CL, D, 1);
    expect(&e[4], 4 * CL, 2 * CL, D, 2);
    expect(&e[5], 6 * CL, 2 * CL, VDK_BS_ZERO, 0); /* past the backing file's end */

    /* Reads agree with the map. */
    uint8_t buf[8 * CL];
    assert_int_equal(vdk_pread(top, buf, sizeof(buf), 0, 0), 0);
    const int want[8] = { 0x60, 0, 0, 0x43, 0x24, 0x25, 0, 0 };
    for (int c = 0; c < 8; c++)
        for (uint32_t i = 0; i < CL; i += 511)
            assert_int_equal(buf[c * CL + i], want[c]);

    /* Above mid: what mid and base hold does not count. */
    k = walk(top, mid, e, 16);
    assert_int_equal(k, 2);
    expect(&e[0], 0, CL, D, 0);
    expect(&e[1], CL, 7 * CL, 0, 0);
    /* Base is the node itself: nothing is above it. */
    uint64_t pnum = 0;
    int depth = -1;
    assert_int_equal(vdk_block_status_above(top, top, 0, CL, &pnum, NULL, NULL, &depth), 0);
    assert_int_equal(pnum, CL);
    /* A lower layer answers for no more than the upper one asked. */
    assert_int_equal(vdk_block_status_above(top, NULL, CL, 3 * CL, &pnum, NULL, NULL, &depth),
                     Z);
    assert_int_equal(pnum, CL);
    assert_int_equal(depth, 1);
    assert_int_equal(vdk_block_status_above(top, NULL, 4 * CL + 1, 100, &pnum, NULL, NULL,
                                            &depth), D);
    assert_int_equal(pnum, 100);
    assert_int_equal(depth, 2);
    vdk_close(top);
    vdk_memory_preset("base", NULL, 0);
    vdk_memory_preset("mid", NULL, 0);
    vdk_memory_preset("top", NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_layer),
        cmocka_unit_test(test_raw_passthrough),
        cmocka_unit_test(test_chain),
    };
    return cmocka_run_group_tests_name("status", tests, setup, teardown);
}
