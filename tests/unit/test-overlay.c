/* SPDX-License-Identifier: MIT */
/*
 * The throwaway overlay: writes are visible through the overlay, never
 * reach the image, vanish at close, and concurrent partial writes to one
 * cluster lose nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vdk/block.h"

#define IMG_SIZE (1u << 20)

static char path[256];

static int setup(void **state)
{
    snprintf(path, sizeof(path), "%s/overlay-test-%d.raw",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    struct vdk_opts *o = vdk_opts_new();
    vdk_opts_set(o, "size", "1M");
    struct vdk_error *err = NULL;
    assert_int_equal(vdk_create("raw", path, o, &err), 0);
    struct vdk_node *n;
    assert_int_equal(vdk_open(&n, path, "raw", NULL, VDK_O_RDWR, &err), 0);
    uint8_t buf[4096];
    for (unsigned off = 0; off < IMG_SIZE; off += sizeof(buf)) {
        memset(buf, (int)(off >> 12) & 0xff, sizeof(buf));
        assert_int_equal(vdk_pwrite(n, buf, sizeof(buf), off, 0), 0);
    }
    assert_int_equal(vdk_close(n), 0);
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    return 0;
}

static void expect_base_pattern(struct vdk_node *n)
{
    uint8_t *buf = malloc(IMG_SIZE);
    assert_non_null(buf);
    assert_int_equal(vdk_pread(n, buf, IMG_SIZE, 0, 0), 0);
    for (unsigned off = 0; off < IMG_SIZE; off++)
        if (buf[off] != ((off >> 12) & 0xff))
            fail_msg("byte %u is %u, want %u", off, buf[off], (off >> 12) & 0xff);
    free(buf);
}

static void test_writes_are_thrown_away(void **state)
{
    struct vdk_error *err = NULL;
    struct vdk_node *n;
    assert_int_equal(vdk_open(&n, path, "raw", NULL, VDK_O_RDWR | VDK_O_SNAPSHOT, &err), 0);
    assert_false(vdk_node_is_read_only(n));
    assert_int_equal(vdk_get_length(n), IMG_SIZE);

    /* Unaligned write straddling a 64 KiB cluster edge. */
    uint8_t w[5000], r[5000];
    memset(w, 0xEE, sizeof(w));
    assert_int_equal(vdk_pwrite(n, w, sizeof(w), 65536 - 1234, 0), 0);
    assert_int_equal(vdk_pread(n, r, sizeof(r), 65536 - 1234, 0), 0);
    assert_memory_equal(w, r, sizeof(w));
    /* Neighbouring bytes still come from the image. */
    uint8_t b;
    assert_int_equal(vdk_pread(n, &b, 1, 65536 - 1235, 0), 0);
    assert_int_equal(b, ((65536 - 1235) >> 12) & 0xff);
    assert_int_equal(vdk_pread(n, &b, 1, 65536 - 1234 + 5000, 0), 0);
    assert_int_equal(b, ((65536 - 1234 + 5000) >> 12) & 0xff);
    /* Zero writes and whole-cluster writes. */
    assert_int_equal(vdk_pwrite_zeroes(n, 200000, 70000, VDK_REQ_MAY_UNMAP), 0);
    assert_int_equal(vdk_pread(n, r, 4096, 200000, 0), 0);
    for (int i = 0; i < 4096; i++)
        assert_int_equal(r[i], 0);

    /* Block status: copied clusters are this layer's data. */
    uint64_t pnum;
    int st = vdk_block_status(n, 65536, 4096, &pnum, NULL, NULL);
    assert_true(st & VDK_BS_DATA);
    assert_true(st & VDK_BS_ALLOCATED);

    assert_int_equal(vdk_flush(n), 0);
    assert_int_equal(vdk_close(n), 0);

    /* The image never changed. */
    assert_int_equal(vdk_open(&n, path, "raw", NULL, 0, &err), 0);
    expect_base_pattern(n);
    vdk_close(n);
}

static void test_image_locked_read_only(void **state)
{
    /* Under an overlay the image is held read-only: another reader may
       open it, a writer may not. */
    struct vdk_error *err = NULL;
    struct vdk_node *ov, *rd, *wr = NULL;
    assert_int_equal(vdk_open(&ov, path, "raw", NULL, VDK_O_RDWR | VDK_O_SNAPSHOT, &err), 0);
    assert_int_equal(vdk_open(&rd, path, "raw", NULL, 0, &err), 0);
    assert_int_not_equal(vdk_open(&wr, path, "raw", NULL, VDK_O_RDWR, &err), 0);
    assert_non_null(err);
    vdk_error_free(err);
    vdk_close(rd);
    vdk_close(ov);
}

struct writer {
    struct vdk_node *n;
    int id;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    uint8_t buf[1000];
    memset(buf, 0x10 + w->id, sizeof(buf));
    /* Each thread owns disjoint 1000-byte slots inside the same clusters. */
    for (int k = 0; k < 50; k++) {
        uint64_t off = (uint64_t)(k * 8 + w->id) * 1000;
        if (vdk_pwrite(w->n, buf, sizeof(buf), off, 0) < 0)
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent_copy_up(void **state)
{
    struct vdk_error *err = NULL;
    struct vdk_node *n;
    assert_int_equal(vdk_open(&n, path, "raw", NULL, VDK_O_RDWR | VDK_O_SNAPSHOT, &err), 0);
    pthread_t th[8];
    struct writer ws[8];
    for (int i = 0; i < 8; i++) {
        ws[i] = (struct writer){ n, i };
        pthread_create(&th[i], NULL, writer_main, &ws[i]);
    }
    for (int i = 0; i < 8; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
    uint8_t buf[1000];
    for (int k = 0; k < 50; k++) {
        for (int id = 0; id < 8; id++) {
            uint64_t off = (uint64_t)(k * 8 + id) * 1000;
            assert_int_equal(vdk_pread(n, buf, sizeof(buf), off, 0), 0);
            for (int i = 0; i < 1000; i++)
                if (buf[i] != 0x10 + id)
                    fail_msg("slot %d/%d byte %d lost", k, id, i);
        }
    }
    vdk_close(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writes_are_thrown_away),
        cmocka_unit_test(test_image_locked_read_only),
        cmocka_unit_test(test_concurrent_copy_up),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
