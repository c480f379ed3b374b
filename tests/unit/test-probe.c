/* SPDX-License-Identifier: MIT */
/*
 * Opening (block/node.c): probing picks the best score with raw as the
 * last resort, probed images never open a backing file of unrecorded
 * format, backing-chain loops and depth are bounded, and option mistakes
 * give one clear error.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testfmt.h"
#include "unit-util.h"

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

static void expect_msg(char *msg, const char *part)
{
    if (!strstr(msg, part))
        fail_msg("message '%s' lacks '%s'", msg, part);
    free(msg);
}

static void test_probe_choice(void **state)
{
    uint8_t junk[4096];
    unit_fill(junk, sizeof(junk), 3);
    assert_int_equal(vdk_memory_preset("junk", junk, sizeof(junk)), 0);
    struct vdk_node *n = unit_open("memory://junk", NULL, NULL, 0);
    assert_string_equal(vdk_node_driver_name(n), "raw");
    assert_true(n->probed);
    vdk_close(n);

    /* Empty and one-byte images are raw too. */
    n = unit_open("memory://empty", NULL, NULL, 0);
    assert_string_equal(vdk_node_driver_name(n), "raw");
    assert_int_equal(vdk_get_length(n), 0);
    vdk_close(n);
    assert_int_equal(vdk_memory_preset("one", "V", 1), 0);
    n = unit_open("memory://one", NULL, NULL, 0);
    assert_string_equal(vdk_node_driver_name(n), "raw");
    vdk_close(n);

    /* A format that recognises its magic beats raw. */
    testfmt_preset("tf", 4096, 4096, "D", 1, NULL, NULL);
    n = unit_open("memory://tf", NULL, NULL, VDK_O_RDWR);
    assert_string_equal(vdk_node_driver_name(n), "testfmt");
    assert_false(n->protect_sector0); /* only probed raw is protected */
    vdk_close(n);
    /* ... unless the user names the format. */
    n = unit_open("memory://tf", "raw", NULL, 0);
    assert_string_equal(vdk_node_driver_name(n), "raw");
    vdk_close(n);
    vdk_memory_preset("junk", NULL, 0);
    vdk_memory_preset("one", NULL, 0);
    vdk_memory_preset("tf", NULL, 0);
}

static void test_probed_backing_format(void **state)
{
    testfmt_preset("b", 4096, 4096, "D", 1, NULL, NULL);
    testfmt_preset("nofmt", 4096, 4096, ".", 1, "memory://b", NULL);
    /* Probed and no backing format recorded: refused. */
    expect_msg(unit_open_fail("memory://nofmt", NULL, NULL, 0, -EINVAL),
               "does not record the format of its backing file 'memory://b'");
    /* Format given: the backing file may be probed. */
    struct vdk_node *n = unit_open("memory://nofmt", "testfmt", NULL, 0);
    assert_string_equal(vdk_node_driver_name(vdk_node_backing(n)), "testfmt");
    vdk_close(n);
    /* Or the backing format given as an option. */
    n = unit_open("memory://nofmt", NULL, "backing.driver=raw", 0);
    assert_string_equal(vdk_node_driver_name(vdk_node_backing(n)), "raw");
    vdk_close(n);
    /* Recorded format: probing the top is fine. */
    testfmt_preset("withfmt", 4096, 4096, ".", 1, "memory://b", "raw");
    n = unit_open("memory://withfmt", NULL, NULL, 0);
    assert_string_equal(vdk_node_driver_name(vdk_node_backing(n)), "raw");
    assert_true(vdk_node_is_read_only(vdk_node_backing(n)));
    vdk_close(n);
    /* Writable top, read-only backing. */
    n = unit_open("memory://withfmt", "testfmt", NULL, VDK_O_RDWR);
    assert_false(vdk_node_is_read_only(n));
    assert_true(vdk_node_is_read_only(vdk_node_backing(n)));
    vdk_close(n);
    /* NO_BACKING: the chain stays closed. */
    n = unit_open("memory://nofmt", NULL, NULL, VDK_O_NO_BACKING);
    assert_null(vdk_node_backing(n));
    vdk_close(n);
    /* A missing backing file names itself in the message. */
    testfmt_preset("lost", 4096, 4096, ".", 1, "nbdx://nowhere/x", "raw");
    expect_msg(unit_open_fail("memory://lost", NULL, NULL, 0, -EINVAL),
               "opening backing file 'nbdx://nowhere/x': unknown protocol");
    vdk_memory_preset("b", NULL, 0);
    vdk_memory_preset("nofmt", NULL, 0);
    vdk_memory_preset("withfmt", NULL, 0);
    vdk_memory_preset("lost", NULL, 0);
}

static void test_loops(void **state)
{
    testfmt_preset("self", 4096, 4096, ".", 1, "memory://self", "testfmt");
    expect_msg(unit_open_fail("memory://self", "testfmt", NULL, 0, -ELOOP),
               "backing chain loop");
    testfmt_preset("a", 4096, 4096, ".", 1, "memory://b", "testfmt");
    testfmt_preset("b", 4096, 4096, ".", 1, "memory://a", "testfmt");
    expect_msg(unit_open_fail("memory://a", NULL, NULL, 0, -ELOOP), "backing chain loop");
    vdk_memory_preset("self", NULL, 0);
    vdk_memory_preset("a", NULL, 0);
    vdk_memory_preset("b", NULL, 0);
}

/* c0 -> c1 -> ... -> c<len-1>, the last without a backing file. */
static void make_chain(int len)
{
    char name[32], next[48];
    for (int i = 0; i < len; i++) {
        snprintf(name, sizeof(name), "c%d", i);
        snprintf(next, sizeof(next), "memory://c%d", i + 1);
        testfmt_preset(name, 512, 512, i == len - 1 ? "D" : ".", (uint8_t)i,
                       i == len - 1 ? NULL : next, "testfmt");
    }
}

static void drop_chain(int len)
{
    char name[32];
    for (int i = 0; i < len; i++) {
        snprintf(name, sizeof(name), "c%d", i);
        vdk_memory_preset(name, NULL, 0);
    }
}

static void test_depth_bound(void **state)
{
    /* 1000 images open, and read through to the bottom. */
    make_chain(1000);
    struct vdk_node *n = unit_open("memory://c0", "testfmt", NULL, 0);
    uint8_t b = 0;
    assert_int_equal(vdk_pread(n, &b, 1, 0, 0), 0);
    assert_int_equal(b, (uint8_t)999);
    int depth = -1;
    uint64_t pnum;
    assert_int_equal(vdk_block_status_above(n, NULL, 0, 512, &pnum, NULL, NULL, &depth),
                     VDK_BS_DATA | VDK_BS_OFFSET_VALID | VDK_BS_ALLOCATED | VDK_BS_EOF);
    assert_int_equal(depth, 999);
    vdk_close(n);
    drop_chain(1000);
    /* 1001 do not. */
    make_chain(1001);
    expect_msg(unit_open_fail("memory://c0", "testfmt", NULL, 0, -ELOOP),
               "backing chain deeper than 1000 images");
    drop_chain(1001);
}

static void test_open_errors(void **state)
{
    expect_msg(unit_open_fail("memory://x", "qcow7", NULL, 0, -EINVAL),
               "unknown image format 'qcow7'");
    expect_msg(unit_open_fail("bogus://x", "raw", NULL, 0, -EINVAL),
               "unknown protocol in 'bogus://x'");
    expect_msg(unit_open_fail("memory://x", "raw", "file.size=1k,colour=red", 0, -EINVAL),
               "invalid option 'colour' for driver 'raw'");
    expect_msg(unit_open_fail("memory://x", "raw", "file.colour=red", 0, -EINVAL),
               "invalid option 'colour' for driver 'memory'");
    expect_msg(unit_open_fail("memory://x", "raw", "file.size=1k,offset=2k", 0, -EINVAL),
               "beyond the end");
    expect_msg(unit_open_fail("memory://x", "raw", "file.size=1k,backing.driver=raw", 0,
                              -EINVAL), "has no backing file");
    expect_msg(unit_open_fail("memory://x", "memory", "size=lots", 0, -EINVAL),
               "parameter 'size' expects a size");
    expect_msg(unit_open_fail("memory://x", "memory", "align=3", 0, -EINVAL),
               "power of two");
    expect_msg(unit_open_fail(NULL, "raw", NULL, 0, -EINVAL), "no file name given");
    /* --image-opts style. */
    struct vdk_node *n = NULL;
    struct vdk_error *err = NULL;
    assert_int_equal(vdk_open_opts(&n, unit_opts("driver=raw,file.filename=memory://io,"
                                                 "file.size=8k"), 0, &err), 0);
    assert_int_equal(vdk_get_length(n), 8192);
    vdk_close(n);
}

/*
 * Formats vdk recognises without a driver (block/probe.c) are refused by
 * name; a driver of that format in the table takes over by probing it.
 */
static int takeover_probe(const uint8_t *buf, size_t len, const char *filename)
{
    return len >= 4 && memcmp(buf, "QED", 4) == 0 ? 100 : 0;
}

static int takeover_open(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                         struct vdk_error **errp)
{
    n->size = 0;
    return 0;
}

static const struct vdk_driver takeover_driver = {
    .name = "qed",
    .kind = VDK_DRV_FORMAT,
    .probe = takeover_probe,
    .open = takeover_open,
};

static void test_known_formats(void **state)
{
    static const struct { const char *magic; size_t off, len; const char *what; } cases[] = {
        { "QED", 0, 4, "QED" },
        { "QFI\xfb\0\0\0\1", 0, 8, "qcow (version 1)" },
        { "Bochs Virtual HD Image", 0, 23, "Bochs" },
    };
    uint8_t img[4096];
    char want[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(img, 0, sizeof(img));
        memcpy(img + cases[i].off, cases[i].magic, cases[i].len);
        assert_int_equal(vdk_memory_preset("k", img, sizeof(img)), 0);
        snprintf(want, sizeof(want), "is a %s image, which vdk cannot open yet",
                 cases[i].what);
        expect_msg(unit_open_fail("memory://k", NULL, NULL, 0, -ENOTSUP), want);
    }
    /* A dmg's "koly" trailer is found at the end. */
    memset(img, 0, sizeof(img));
    memcpy(img + sizeof(img) - 512, "koly\0\0\0\4\0\0\2\0", 12);
    assert_int_equal(vdk_memory_preset("k", img, sizeof(img)), 0);
    expect_msg(unit_open_fail("memory://k", NULL, NULL, 0, -ENOTSUP), "is a DMG image");

    /* Formats that have a driver now go to it: damaged headers get the
       driver's error, never "cannot open yet" and never raw. */
    static const struct { const char *magic; size_t off, len; } own[] = {
        { "KDMV", 0, 4 }, { "COWD", 0, 4 }, { "vhdxfile", 0, 8 },
        { "\x7f\x10\xda\xbe", 0x40, 4 }, { "WithoutFreeSpace", 0, 16 },
        { "WithouFreSpacExt", 0, 16 },
    };
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
        memset(img, 0, sizeof(img));
        memcpy(img + own[i].off, own[i].magic, own[i].len);
        assert_int_equal(vdk_memory_preset("k", img, sizeof(img)), 0);
        struct vdk_node *bad = NULL;
        struct vdk_error *err = NULL;
        assert_true(vdk_open(&bad, "memory://k", NULL, NULL, 0, &err) < 0);
        assert_null(strstr(vdk_error_msg(err), "cannot open yet"));
        vdk_error_free(err);
    }

    /* A driver for a recognised format takes over the magics it probes,
       not the others. */
    vdk_driver_set_test_extra(&takeover_driver);
    memset(img, 0, sizeof(img));
    memcpy(img, "QED", 4);
    assert_int_equal(vdk_memory_preset("k", img, sizeof(img)), 0);
    struct vdk_node *n = unit_open("memory://k", NULL, NULL, 0);
    assert_string_equal(vdk_node_driver_name(n), "qed");
    vdk_close(n);
    memcpy(img, "QFI\xfb\0\0\0\1", 8);
    assert_int_equal(vdk_memory_preset("k", img, sizeof(img)), 0);
    expect_msg(unit_open_fail("memory://k", NULL, NULL, 0, -ENOTSUP), "is a qcow (version 1) image");
    vdk_driver_set_test_extra(&testfmt_driver);
    vdk_memory_preset("k", NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_choice),
        cmocka_unit_test(test_known_formats),
        cmocka_unit_test(test_probed_backing_format),
        cmocka_unit_test(test_loops),
        cmocka_unit_test(test_depth_bound),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests_name("probe", tests, setup, teardown);
}
