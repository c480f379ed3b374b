/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the VHD driver: geometry and size rules, footer and
 * header checksums, UTF-16 conversion, and create/open/read/write of
 * fixed, dynamic and differencing images through the public API, in a
 * scratch directory.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "formats/vhd/vhd.h"

static char dir[256];

static const char *path_of(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
    return buf[k];
}

static void create(const char *name, const char *opts)
{
    struct vdk_opts *o = vdk_opts_new();
    struct vdk_error *err = NULL;
    assert_int_equal(vdk_opts_parse(o, opts, NULL, &err), 0);
    int r = vdk_create("vpc", path_of(name), o, &err);
    if (r < 0)
        fail_msg("create %s: %s", name, vdk_error_msg(err));
}

static struct vdk_node *open_img(const char *name, unsigned flags)
{
    struct vdk_node *n = NULL;
    struct vdk_error *err = NULL;
    if (vdk_open(&n, path_of(name), "vpc", NULL, flags, &err) < 0)
        fail_msg("open %s: %s", name, vdk_error_msg(err));
    return n;
}

static void test_geometry(void **st)
{
    uint16_t c;
    uint8_t h, s;
    assert_int_equal(vhd_geometry_round(64 << 11, &c, &h, &s), 131104);
    assert_int_equal(c, 964);
    assert_int_equal(h, 8);
    assert_int_equal(s, 17);
    /* qemu-img create -f vpc x 1G gives 1073995776 bytes */
    assert_int_equal(vhd_geometry_round(1 << 21, &c, &h, &s) * 512, 1073995776ull);
    assert_int_equal(vhd_geometry_round(195313, &c, &h, &s) * 512, 100061184ull);
    /* 127 GiB: still a geometry; 130 GiB: maximal geometry, size kept */
    assert_int_equal(vhd_geometry_round(127ull << 21, &c, &h, &s) * 512, 136365219840ull);
    assert_int_equal(vhd_geometry_round(130ull << 21, &c, &h, &s), 130ull << 21);
    assert_int_equal(c, 65535);
    assert_int_equal(s, 255);
}

static void test_size_rules(void **st)
{
    struct vhd_footer f = { .cyls = 964, .heads = 8, .spt = 17, .cur_size = 64 << 20 };
    memcpy(f.creator_app, "qemu", 4);
    assert_int_equal(vhd_footer_virtual_size(&f, VHD_SIZE_AUTO), 67125248);
    assert_int_equal(vhd_footer_virtual_size(&f, VHD_SIZE_CURRENT), 64 << 20);
    memcpy(f.creator_app, "win ", 4);
    assert_int_equal(vhd_footer_virtual_size(&f, VHD_SIZE_AUTO), 64 << 20);
    assert_int_equal(vhd_footer_virtual_size(&f, VHD_SIZE_CHS), 67125248);
    memcpy(f.creator_app, "tap\0", 4);
    assert_int_equal(vhd_footer_virtual_size(&f, VHD_SIZE_AUTO), 64 << 20);
    memcpy(f.creator_app, "vpc ", 4);
    f.cyls = 65535;
    f.heads = 16;
    f.spt = 255;
    /* maximal geometry: current_size even when chs is forced */
    assert_int_equal(vhd_footer_virtual_size(&f, VHD_SIZE_CHS), 64 << 20);
}

static void test_footer_checksum(void **st)
{
    struct vhd_footer f = { .type = VHD_TYPE_DYNAMIC, .cur_size = 1 << 20, .cyls = 30 }, g;
    uint8_t raw[VHD_FOOTER_SIZE];
    struct vdk_error *err = NULL;
    memcpy(f.creator_app, "qemu", 4);
    vhd_footer_build(&f, raw);
    assert_int_equal(vhd_footer_parse(raw, &g, NULL), 0);
    assert_int_equal(g.cur_size, 1 << 20);
    assert_int_equal(g.type, VHD_TYPE_DYNAMIC);
    raw[100] ^= 1;
    assert_int_equal(vhd_footer_parse(raw, &g, &err), -EINVAL);
    assert_non_null(strstr(vdk_error_msg(err), "checksum"));
    vdk_error_free(err);
    err = NULL;
    raw[0] = 'x';
    assert_int_equal(vhd_footer_parse(raw, &g, &err), -EINVAL);
    assert_non_null(strstr(vdk_error_msg(err), "conectix"));
    vdk_error_free(err);
}

static void test_utf16(void **st)
{
    uint8_t buf[64];
    const char *s = "dir/p\xc3\xa4rent-\xf0\x9f\x98\x80.vhd";
    long n = vhd_utf8_to_utf16(s, buf, sizeof(buf), false);
    assert_true(n > 0);
    char *back = vhd_utf16_to_utf8(buf, (size_t)n, false);
    assert_string_equal(back, s);
    free(back);
    assert_int_equal(vhd_utf8_to_utf16(s, buf, 8, true), -1);
    uint8_t lone[2] = { 0x00, 0xdc }; /* unpaired low surrogate, LE */
    assert_null(vhd_utf16_to_utf8(lone, 2, false));
}

static void fill(uint8_t *b, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        b[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 9));
}

static void test_dynamic_rw(void **st)
{
    create("dyn.vhd", "size=10M");
    struct vdk_node *n = open_img("dyn.vhd", VDK_O_RDWR);
    assert_int_equal(vdk_get_length(n), 10514432); /* as qemu-img gives */
    size_t len = 3 << 20;
    uint8_t *w = malloc(len), *r = malloc(len);
    fill(w, len, 1);
    /* crosses a block boundary at 2 MiB, leaves block 2 partly unwritten */
    assert_int_equal(vdk_pwrite(n, w, len, 1 << 20, 0), 0);
    assert_int_equal(vdk_pread(n, r, len, 1 << 20, 0), 0);
    assert_memory_equal(w, r, len);
    uint64_t pnum = 0;
    int st2 = vdk_block_status(n, 6 << 20, 1 << 20, &pnum, NULL, NULL);
    assert_int_equal(st2 & (VDK_BS_ALLOCATED | VDK_BS_DATA), 0);
    assert_true(st2 & VDK_BS_ZERO);
    st2 = vdk_block_status(n, 1 << 20, 4096, &pnum, NULL, NULL);
    assert_true(st2 & VDK_BS_DATA);
    assert_int_equal(vdk_pwrite_zeroes(n, 1 << 20, 4096, 0), 0);
    assert_int_equal(vdk_pwrite_zeroes(n, 8 << 20, 1 << 20, 0), 0);
    /* discard of written data in a dynamic image reads back as zeros */
    assert_int_equal(vdk_discard(n, 3 << 20, 512), 0);
    memset(w + (2 << 20), 0, 512);
    assert_int_equal(vdk_close(n), 0);

    n = open_img("dyn.vhd", 0);
    memset(w, 0, 4096);
    assert_int_equal(vdk_pread(n, r, len, 1 << 20, 0), 0);
    assert_memory_equal(w, r, len);
    assert_int_equal(vdk_pread(n, r, 1 << 20, 8 << 20, 0), 0);
    assert_true(vdk_buffer_is_zero(r, 1 << 20));
    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    assert_int_equal(vdk_check(n, &res, 0, NULL), 0);
    assert_int_equal(res.corruptions + res.leaks, 0);
    assert_int_equal(res.allocated_clusters, 2);
    /* measure: converting this image needs exactly as much as it uses */
    struct vdk_measure m = VDK_MEASURE_INIT;
    struct vdk_opts *mo = vdk_opts_new();
    assert_int_equal(vdk_measure("vpc", mo, n, 0, &m, NULL), 0);
    FILE *f = fopen(path_of("dyn.vhd"), "rb");
    fseek(f, 0, SEEK_END);
    assert_int_equal(m.required, (uint64_t)ftell(f));
    fclose(f);
    assert_int_equal(m.fully_allocated, 2560 + 6 * ((2 << 20) + 512));
    vdk_opts_set(mo, "subformat", "fixed");
    assert_int_equal(vdk_measure("vpc", mo, NULL, 1 << 20, &m, NULL), 0);
    assert_int_equal(m.required, 1079808); /* qemu-img create -f vpc -o subformat=fixed 1M */
    vdk_opts_free(mo);
    vdk_close(n);
    free(w);
    free(r);
}

static void test_fixed_and_sizes(void **st)
{
    create("fix.vhd", "size=100000000,subformat=fixed,force_size=on");
    struct vdk_node *n = open_img("fix.vhd", VDK_O_RDWR);
    assert_int_equal(vdk_get_length(n), 100000256);
    uint8_t buf[4096];
    fill(buf, sizeof(buf), 3);
    assert_int_equal(vdk_pwrite(n, buf, sizeof(buf), 100000256 - 4096, 0), 0);
    vdk_close(n);
    create("az.vhd", "size=100000000,subformat=fixed,azure_align=on");
    n = open_img("az.vhd", 0);
    assert_int_equal(vdk_get_length(n), 96 << 20);
    vdk_close(n);
    /* force_size_calc=chs: the geometry's size instead (qemu's option) */
    struct vdk_opts *oo = vdk_opts_new();
    vdk_opts_set(oo, "force_size_calc", "chs");
    assert_int_equal(vdk_open(&n, path_of("az.vhd"), "vpc", oo, 0, NULL), 0);
    uint16_t c;
    uint8_t h, sp;
    vhd_geometry((96 << 20) / 512, &c, &h, &sp);
    assert_int_equal(vdk_get_length(n), (int64_t)c * h * sp * 512);
    assert_true(vdk_get_length(n) < (96 << 20));
    vdk_close(n);
    struct vdk_opts *o = vdk_opts_new();
    struct vdk_error *err = NULL;
    vdk_opts_set(o, "size", "2041G");
    assert_true(vdk_create("vpc", path_of("big.vhd"), o, &err) < 0);
    assert_non_null(strstr(vdk_error_msg(err), "2040 GiB"));
    vdk_error_free(err);
}

static void test_differencing(void **st)
{
    create("par.vhd", "size=6M");
    struct vdk_node *p = open_img("par.vhd", VDK_O_RDWR);
    uint64_t size = (uint64_t)vdk_get_length(p);
    uint8_t *pb = malloc(size), *cb = malloc(size), *got = malloc(size);
    fill(pb, size, 5);
    assert_int_equal(vdk_pwrite(p, pb, size, 0, 0), 0);
    vdk_close(p);
    create("child.vhd", "backing_file=par.vhd,backing_fmt=vpc");
    struct vdk_node *c = open_img("child.vhd", VDK_O_RDWR);
    assert_int_equal(vdk_get_length(c), size);
    assert_string_equal(vdk_node_backing_name(c), "par.vhd");
    memcpy(cb, pb, size);
    memset(cb + 3 * 512, 0xee, 1024);              /* partial block: copied from parent */
    assert_int_equal(vdk_pwrite(c, cb + 3 * 512, 1024, 3 * 512, 0), 0);
    uint64_t pnum;
    int depth;
    int s = vdk_block_status_above(c, NULL, 4 << 20, 4096, &pnum, NULL, NULL, &depth);
    assert_int_equal(depth, 1);
    assert_true(s & VDK_BS_DATA);
    vdk_close(c);
    c = open_img("child.vhd", 0);
    assert_int_equal(vdk_pread(c, got, size, 0, 0), 0);
    assert_memory_equal(got, cb, size);
    vdk_close(c);

    /* Without the parent open, writes mark exactly the written sectors. */
    c = open_img("child.vhd", VDK_O_RDWR | VDK_O_NO_BACKING);
    memset(cb + (2 << 20) + 4096, 0x77, 512);
    assert_int_equal(vdk_pwrite(c, cb + (2 << 20) + 4096, 512, (2 << 20) + 4096, 0), 0);
    vdk_close(c);
    c = open_img("child.vhd", 0);
    assert_int_equal(vdk_pread(c, got, size, 0, 0), 0);
    assert_memory_equal(got, cb, size);
    s = vdk_block_status(c, 2 << 20, 1 << 20, &pnum, NULL, NULL);
    assert_int_equal(s & VDK_BS_ALLOCATED, 0);
    assert_int_equal(pnum, 4096);
    /* then a write into that partial block sets its bits */
    vdk_close(c);
    c = open_img("child.vhd", VDK_O_RDWR);
    memset(cb + (2 << 20), 0x55, 1024);
    assert_int_equal(vdk_pwrite(c, cb + (2 << 20), 1024, 2 << 20, 0), 0);
    assert_int_equal(vdk_pread(c, got, size, 0, 0), 0);
    assert_memory_equal(got, cb, size);
    vdk_close(c);
    free(pb);
    free(cb);
    free(got);
}

static void test_damaged_footer(void **st)
{
    create("dmg.vhd", "size=4M");
    struct vdk_node *n = open_img("dmg.vhd", VDK_O_RDWR);
    uint8_t buf[4096];
    fill(buf, sizeof(buf), 9);
    assert_int_equal(vdk_pwrite(n, buf, sizeof(buf), 8192, 0), 0);
    vdk_close(n);
    /* garbage where the end footer is, as a crash mid-allocation leaves */
    FILE *f = fopen(path_of("dmg.vhd"), "r+b");
    assert_non_null(f);
    fseek(f, -512, SEEK_END);
    fwrite("garbage!", 1, 8, f);
    fclose(f);
    n = open_img("dmg.vhd", VDK_O_RDWR);
    uint8_t r[4096];
    assert_int_equal(vdk_pread(n, r, sizeof(r), 8192, 0), 0);
    assert_memory_equal(r, buf, sizeof(buf));
    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    assert_int_equal(vdk_check(n, &res, 0, NULL), 0);
    assert_int_equal(res.corruptions, 1);
    assert_int_equal(vdk_check(n, &res, VDK_CHECK_FIX_ERRORS, NULL), 0);
    assert_int_equal(res.corruptions_fixed, 1);
    vdk_close(n);
    n = open_img("dmg.vhd", 0);
    assert_int_equal(vdk_check(n, &res, 0, NULL), 0);
    assert_int_equal(res.corruptions, 0);
    vdk_close(n);
}

/* A new block's BAT entry reaches the file only on flush, after the data:
   a second reader of the file sees nothing before, everything after. */
static void test_alloc_ordering(void **st)
{
    create("ord.vhd", "size=8M");
    struct vdk_node *w = open_img("ord.vhd", VDK_O_RDWR);
    uint8_t buf[4096], r[4096];
    fill(buf, sizeof(buf), 11);
    assert_int_equal(vdk_pwrite(w, buf, sizeof(buf), 3 << 20, 0), 0);
    struct vdk_node *ro = open_img("ord.vhd", VDK_O_SHARE);
    assert_int_equal(vdk_pread(ro, r, sizeof(r), 3 << 20, 0), 0);
    assert_true(vdk_buffer_is_zero(r, sizeof(r)));
    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    assert_int_equal(vdk_check(ro, &res, 0, NULL), 0);
    assert_int_equal(res.corruptions, 0);
    assert_int_equal(res.leaks, 1); /* the block is written, not yet referenced */
    vdk_close(ro);
    assert_int_equal(vdk_flush(w), 0);
    ro = open_img("ord.vhd", VDK_O_SHARE);
    assert_int_equal(vdk_pread(ro, r, sizeof(r), 3 << 20, 0), 0);
    assert_memory_equal(r, buf, sizeof(buf));
    assert_int_equal(vdk_check(ro, &res, 0, NULL), 0);
    assert_int_equal(res.corruptions + res.leaks, 0);
    vdk_close(ro);
    vdk_close(w);
}

/* Threads writing interleaved 4 KiB pieces race to allocate the same
   blocks: every piece must land, each block be allocated once. */
struct writer {
    struct vdk_node *n;
    int id, nthreads;
    uint64_t size;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    uint8_t buf[4096];
    for (uint64_t off = (uint64_t)w->id * 4096; off + 4096 <= w->size;
         off += 4096u * (uint64_t)w->nthreads) {
        fill(buf, sizeof(buf), (unsigned)(off >> 12));
        if (vdk_pwrite(w->n, buf, sizeof(buf), off, 0) < 0)
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent_alloc(void **st)
{
    enum { NT = 4 };
    create("conc.vhd", "size=8M,force_size=on");
    struct vdk_node *n = open_img("conc.vhd", VDK_O_RDWR);
    pthread_t t[NT];
    struct writer w[NT];
    for (int i = 0; i < NT; i++) {
        w[i] = (struct writer){ n, i, NT, 8 << 20 };
        assert_int_equal(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
    }
    for (int i = 0; i < NT; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        assert_null(ret);
    }
    vdk_close(n);
    n = open_img("conc.vhd", 0);
    uint8_t buf[4096], want[4096];
    for (uint64_t off = 0; off < (8 << 20); off += 4096) {
        fill(want, sizeof(want), (unsigned)(off >> 12));
        assert_int_equal(vdk_pread(n, buf, sizeof(buf), off, 0), 0);
        assert_memory_equal(buf, want, sizeof(buf));
    }
    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    assert_int_equal(vdk_check(n, &res, 0, NULL), 0);
    assert_int_equal(res.corruptions + res.leaks, 0);
    assert_int_equal(res.allocated_clusters, 4);
    vdk_close(n);
}

static int setup(void **st)
{
    snprintf(dir, sizeof(dir), "/tmp/vdk-vhd-unit.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **st)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometry),
        cmocka_unit_test(test_size_rules),
        cmocka_unit_test(test_footer_checksum),
        cmocka_unit_test(test_utf16),
        cmocka_unit_test(test_dynamic_rw),
        cmocka_unit_test(test_fixed_and_sizes),
        cmocka_unit_test(test_differencing),
        cmocka_unit_test(test_damaged_footer),
        cmocka_unit_test(test_alloc_ordering),
        cmocka_unit_test(test_concurrent_alloc),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
