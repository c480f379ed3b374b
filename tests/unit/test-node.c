/* SPDX-License-Identifier: MIT */
/*
 * The rest of the generic layer: references and close, the raw window
 * (offset=, size=), resizing, discard, the null protocol, the error API
 * and the small helpers (path combining, zero detection).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit-util.h"

static void test_refs_and_close(void **state)
{
    struct vdk_node *n = unit_open("memory://r", "raw", "file.size=64k", VDK_O_RDWR);
    const struct vdk_memory_stats *st = vdk_memory_stats(unit_mem(n));
    uint8_t b[512] = { 1 };
    assert_int_equal(vdk_pwrite(n, b, 512, 0, 0), 0);
    vdk_node_ref(n);
    /* Not the last reference: no flush, the graph stays. */
    assert_int_equal(vdk_close(n), 0);
    assert_int_equal(st->flushes, 0);
    assert_int_equal(vdk_pread(n, b, 512, 0, 0), 0);
    assert_int_equal(vdk_flush(n), 0);
    assert_int_equal(st->flushes, 1);
    /* The last one flushes (stats die with the node; nothing to check
       after), unless asked not to. */
    assert_int_equal(vdk_close(n), 0);

    n = unit_open("memory://r", "raw", "file.size=64k",
                  VDK_O_RDWR | VDK_O_NO_FLUSH_ON_CLOSE);
    vdk_node_ref(n);
    st = vdk_memory_stats(unit_mem(n));
    vdk_close(n);
    assert_int_equal(st->flushes, 0);
    vdk_node_unref(n);

    /* cache=unsafe: flushes are no-ops. */
    n = unit_open("memory://r", "raw", "file.size=64k", VDK_O_RDWR | VDK_O_UNSAFE);
    st = vdk_memory_stats(unit_mem(n));
    assert_int_equal(vdk_flush(n), 0);
    assert_int_equal(vdk_pwrite(n, b, 512, 0, VDK_REQ_FUA), 0);
    assert_int_equal(st->flushes, 0);
    vdk_close(n);
    assert_int_equal(vdk_close(NULL), 0);
}

static void test_raw_window(void **state)
{
    uint8_t img[8192];
    for (size_t i = 0; i < sizeof(img); i++)
        img[i] = (uint8_t)(i / 512);
    assert_int_equal(vdk_memory_preset("win", img, sizeof(img)), 0);
    struct vdk_node *n = unit_open("memory://win", "raw", "offset=1024,size=2048",
                                   VDK_O_RDWR);
    assert_int_equal(vdk_get_length(n), 2048);
    uint8_t b[4096];
    assert_int_equal(vdk_pread(n, b, 2048, 0, 0), 0);
    assert_memory_equal(b, img + 1024, 2048);
    assert_int_equal(vdk_pread(n, b, 1, 2048, 0), -EINVAL);
    memset(b, 0xcc, sizeof(b));
    assert_int_equal(vdk_pwrite(n, b, 10, 2038, 0), 0);
    assert_int_equal(vdk_pwrite(n, b, 11, 2038, 0), -EINVAL);
    uint64_t len = 0;
    uint8_t *mem = vdk_memory_data(unit_mem(n), &len);
    assert_int_equal(len, sizeof(img));
    assert_int_equal(mem[1024 + 2037], img[1024 + 2037]);
    assert_int_equal(mem[1024 + 2038], 0xcc);
    assert_int_equal(mem[1024 + 2047], 0xcc);
    assert_int_equal(mem[1024 + 2048], img[1024 + 2048]);
    struct vdk_error *err = NULL;
    assert_int_equal(vdk_truncate(n, 4096, VDK_PREALLOC_OFF, false, &err), -ENOTSUP);
    assert_non_null(strstr(err->msg, "window"));
    vdk_error_free(err);
    vdk_close(n);
    /* Windows that do not fit are refused at open. */
    free(unit_open_fail("memory://win", "raw", "offset=4096,size=4097", 0, -EINVAL));
    free(unit_open_fail("memory://win", "raw", "offset=8193", 0, -EINVAL));
    free(unit_open_fail("memory://win", "raw", "offset=100,file.align=512", 0, -EINVAL));
    vdk_memory_preset("win", NULL, 0);
}

static void test_truncate(void **state)
{
    struct vdk_node *n = unit_open("memory://t", "raw", "file.size=64k", VDK_O_RDWR);
    struct vdk_error *err = NULL;
    assert_int_equal(vdk_truncate(n, 128 * 1024, VDK_PREALLOC_OFF, false, &err), 0);
    assert_int_equal(vdk_get_length(n), 128 * 1024);
    uint8_t b = 1;
    assert_int_equal(vdk_pwrite(n, &b, 1, 128 * 1024 - 1, 0), 0);
    assert_int_equal(vdk_truncate(n, 4096, VDK_PREALLOC_OFF, false, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "--shrink"));
    vdk_error_free(err);
    err = NULL;
    assert_int_equal(vdk_truncate(n, 4096, VDK_PREALLOC_OFF, true, &err), 0);
    assert_int_equal(vdk_get_length(n), 4096);
    assert_int_equal(vdk_pwrite(n, &b, 1, 4096, 0), -EINVAL);
    assert_int_equal(vdk_truncate(n, 8192, VDK_PREALLOC_METADATA, false, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "metadata"));
    vdk_error_free(err);
    err = NULL;
    assert_int_equal(vdk_truncate(n, (uint64_t)INT64_MAX + 1, VDK_PREALLOC_OFF, false, &err),
                     -EFBIG);
    vdk_error_free(err);
    err = NULL;
    /* The memory driver's own bound. */
    assert_int_equal(vdk_truncate(n, 5ull << 30, VDK_PREALLOC_OFF, false, &err), -EFBIG);
    vdk_error_free(err);
    assert_int_equal(vdk_get_length(n), 4096);
    /* Allocation is unknown for memory. */
    assert_int_equal(vdk_get_allocated_size(n), -1);
    vdk_close(n);
}

static void test_discard(void **state)
{
    struct vdk_node *n = unit_open("memory://d", "raw", "file.size=64k,file.align=4096",
                                   VDK_O_RDWR);
    const struct vdk_memory_stats *st = vdk_memory_stats(unit_mem(n));
    uint8_t b[65536];
    memset(b, 0x33, sizeof(b));
    assert_int_equal(vdk_pwrite(n, b, sizeof(b), 0, 0), 0);
    /* Advisory: the unaligned edges are dropped, a sub-block range is a
       no-op that never reaches the driver. */
    assert_int_equal(vdk_discard(n, 100, 3000), 0);
    assert_int_equal(st->discards, 0);
    assert_int_equal(vdk_discard(n, 1000, 10000), 0);
    assert_int_equal(st->discards, 1);
    assert_int_equal(st->unaligned, 0);
    assert_int_equal(vdk_pread(n, b, sizeof(b), 0, 0), 0);
    for (int i = 0; i < 65536; i += 512)
        assert_int_equal(b[i], i >= 4096 && i < 8192 ? 0 : 0x33);
    vdk_close(n);
}

static void test_null(void **state)
{
    struct vdk_node *n = unit_open("null-co://", "null-co", "size=1M", VDK_O_RDWR);
    uint8_t b[4096];
    memset(b, 0xff, sizeof(b));
    assert_int_equal(vdk_get_length(n), 1 << 20);
    assert_int_equal(vdk_pwrite(n, b, sizeof(b), 0, VDK_REQ_FUA), 0);
    assert_int_equal(vdk_pread(n, b, sizeof(b), 4096, 0), 0);
    assert_true(vdk_buffer_is_zero(b, sizeof(b)));
    assert_int_equal(vdk_pread(n, b, 1, 1 << 20, 0), -EINVAL); /* fixed size */
    uint64_t pnum;
    assert_int_equal(vdk_block_status(n, 0, 1 << 20, &pnum, NULL, NULL),
                     VDK_BS_ZERO | VDK_BS_OFFSET_VALID | VDK_BS_PLAIN | VDK_BS_ALLOCATED | VDK_BS_EOF);
    vdk_close(n);
    /* read-zeroes=off leaves buffers alone and says DATA. */
    n = unit_open("null://", NULL, "file.read-zeroes=off,file.size=4k", 0);
    memset(b, 0xff, sizeof(b));
    assert_int_equal(vdk_pread(n, b, 16, 0, 0), 0);
    assert_int_equal(b[0], 0xff);
    vdk_close(n);
}

static void test_errors_api(void **state)
{
    struct vdk_error *err = NULL;
    assert_int_equal(vdk_error_setf(&err, EINVAL, "bad %s", "thing"), -EINVAL);
    assert_int_equal(err->code, EINVAL);
    /* First error wins. */
    assert_int_equal(vdk_error_setf(&err, -ENOSPC, "second"), -ENOSPC);
    assert_string_equal(err->msg, "bad thing");
    vdk_error_prepend(&err, "opening '%s'", "a.img");
    assert_string_equal(err->msg, "opening 'a.img': bad thing");
    vdk_error_free(err);
    err = NULL;
    assert_int_equal(vdk_error_setf_errno(&err, -ENOENT, "could not open '%s'", "x"), -ENOENT);
    assert_string_equal(err->msg, "could not open 'x': No such file or directory");
    struct vdk_error *dst = NULL;
    vdk_error_propagate(&dst, err);
    assert_ptr_equal(dst, err);
    vdk_error_propagate(&dst, NULL);
    vdk_error_free(dst);
    /* Code 0 becomes EIO; NULL errp still returns the code. */
    err = NULL;
    assert_int_equal(vdk_error_setf(&err, 0, "x"), -EIO);
    vdk_error_free(err);
    assert_int_equal(vdk_error_setf(NULL, ENOMEM, "x"), -ENOMEM);
    vdk_error_prepend(NULL, "x");
    assert_string_equal(vdk_error_msg(NULL), "unknown error");
}

static void test_helpers(void **state)
{
    char *p;
    static const char *const cases[][3] = {
        { "/a/b/top.qcow2", "base.qcow2", "/a/b/base.qcow2" },
        { "/a/b/top.qcow2", "../c/base.qcow2", "/a/b/../c/base.qcow2" },
        { "/a/b/top.qcow2", "/abs/base", "/abs/base" },
        { "top.qcow2", "base.qcow2", "base.qcow2" },
        { "dir/top.qcow2", "base.qcow2", "dir/base.qcow2" },
        { "dir/top.qcow2", "nbd://host/export", "nbd://host/export" },
        { "nbd+unix:///e?socket=/s", "base.qcow2", "base.qcow2" },
        { "dir/top", "memory://b", "memory://b" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        p = vdk_path_combine(cases[i][0], cases[i][1]);
        if (!p || strcmp(p, cases[i][2]) != 0)
            fail_msg("combine('%s', '%s') = '%s', expected '%s'", cases[i][0], cases[i][1],
                     p ? p : "(null)", cases[i][2]);
        free(p);
    }
    assert_null(vdk_path_combine("a", NULL));

    /* Zero detection at every head alignment and length around 64. */
    uint8_t *buf = calloc(1, 512);
    for (size_t off = 0; off < 16; off++) {
        for (size_t len = 0; len < 200; len++) {
            assert_true(vdk_buffer_is_zero(buf + off, len));
            if (!len)
                continue;
            for (size_t k = 0; k < len; k++) { /* a non-zero byte anywhere */
                buf[off + k] = 1;
                assert_false(vdk_buffer_is_zero(buf + off, len));
                buf[off + k] = 0;
            }
        }
    }
    free(buf);
    assert_string_equal(vdk_version(), VDK_VERSION_STRING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refs_and_close),
        cmocka_unit_test(test_raw_window),
        cmocka_unit_test(test_truncate),
        cmocka_unit_test(test_discard),
        cmocka_unit_test(test_null),
        cmocka_unit_test(test_errors_api),
        cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests_name("node", tests, NULL, NULL);
}
