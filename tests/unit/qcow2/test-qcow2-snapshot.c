/* SPDX-License-Identifier: MIT */
/*
 * cmocka tests of qcow2 internal snapshots and the chain callbacks through
 * libvdk's public API: IDs, list fields, error codes (duplicate name,
 * unknown snapshot, read-only image), snapshot.id/snapshot.name opens,
 * reopen read-only <-> read-write, and commit emptying the overlay.
 * Interop with QEMU is tested in tests/integration/snapshot.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "block/driver.h"
#include "vdk/block.h"
#include "vdk/error.h"
#include "vdk/options.h"

#define SZ (1u << 20)

static char dir[] = "/tmp/vdk-qsnap.XXXXXX";
static char path[64], top[64];

static void make(const char *file, const char *extra)
{
    struct vdk_opts *o = vdk_opts_new();
    char s[128];
    snprintf(s, sizeof(s), "size=1M,cluster_size=4k%s", extra);
    assert_int_equal(vdk_opts_parse(o, s, NULL, NULL), 0);
    assert_int_equal(vdk_create("qcow2", file, o, NULL), 0);
}

static struct vdk_node *open_img(const char *file, const char *opts, unsigned flags)
{
    struct vdk_node *n = NULL;
    struct vdk_opts *o = NULL;
    if (opts) {
        o = vdk_opts_new();
        assert_int_equal(vdk_opts_parse(o, opts, NULL, NULL), 0);
    }
    int r = vdk_open(&n, file, "qcow2", o, flags, NULL);
    return r == 0 ? n : NULL;
}

static void fill(struct vdk_node *n, int pat)
{
    uint8_t *b = malloc(SZ);
    memset(b, pat, SZ);
    assert_int_equal(vdk_pwrite(n, b, SZ, 0, 0), 0);
    free(b);
}

static void expect(struct vdk_node *n, int pat)
{
    uint8_t *b = malloc(SZ);
    assert_int_equal(vdk_pread(n, b, SZ, 0, 0), 0);
    for (size_t i = 0; i < SZ; i += 4096)
        assert_int_equal(b[i], pat);
    free(b);
}

static void test_create_list_apply_delete(void **state)
{
    (void)state;
    make(path, "");
    struct vdk_node *n = open_img(path, NULL, VDK_O_RDWR);
    assert_non_null(n);
    struct vdk_error *err = NULL;
    fill(n, 0x11);
    assert_int_equal(vdk_snapshot_create(n, "a", NULL), 0);
    fill(n, 0x22);
    assert_int_equal(vdk_snapshot_create(n, "b", NULL), 0);
    fill(n, 0x33);
    assert_int_equal(vdk_snapshot_create(n, "a", &err), -EEXIST);
    assert_non_null(strstr(vdk_error_msg(err), "already exists"));
    vdk_error_free(err);
    assert_int_equal(vdk_snapshot_goto(n, "nope", NULL), -ENOENT);
    assert_int_equal(vdk_snapshot_delete(n, "nope", NULL), -ENOENT);

    struct vdk_snapshot_info *l = NULL;
    int cnt = 0;
    assert_int_equal(vdk_snapshot_list(n, &l, &cnt, NULL), 0);
    assert_int_equal(cnt, 2);
    assert_string_equal(l[0].id, "1");
    assert_string_equal(l[0].name, "a");
    assert_string_equal(l[1].id, "2");
    assert_string_equal(l[1].name, "b");
    assert_true(l[0].icount == UINT64_MAX);
    assert_true(l[0].vm_state_size == 0 && l[0].vm_clock_nsec == 0);
    assert_true(l[0].date_sec > 0);
    vdk_snapshot_list_free(l, cnt);

    assert_int_equal(vdk_snapshot_goto(n, "1", NULL), 0); /* by ID */
    expect(n, 0x11);
    assert_int_equal(vdk_snapshot_goto(n, "b", NULL), 0); /* by name */
    expect(n, 0x22);
    assert_int_equal(vdk_snapshot_delete(n, "a", NULL), 0);
    assert_int_equal(vdk_snapshot_create(n, "c", NULL), 0);
    assert_int_equal(vdk_snapshot_list(n, &l, &cnt, NULL), 0);
    assert_int_equal(cnt, 2);
    assert_string_equal(l[1].id, "3"); /* after the largest, never reused */
    vdk_snapshot_list_free(l, cnt);
    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    assert_int_equal(vdk_check(n, &res, 0, NULL), 0);
    assert_int_equal(res.corruptions, 0);
    assert_int_equal(res.leaks, 0);
    assert_int_equal(vdk_close(n), 0);
}

static void test_open_snapshot_readonly(void **state)
{
    (void)state;
    struct vdk_node *n = open_img(path, "snapshot.name=b", 0);
    assert_non_null(n);
    expect(n, 0x22);
    assert_int_equal(vdk_snapshot_create(n, "x", NULL), -EPERM);
    assert_int_equal(vdk_close(n), 0);
    n = open_img(path, "snapshot.id=2", 0);
    assert_non_null(n);
    expect(n, 0x22);
    assert_int_equal(vdk_close(n), 0);
    assert_null(open_img(path, "snapshot.name=nope", 0));
    assert_null(open_img(path, "snapshot.name=b", VDK_O_RDWR));
}

static void test_reopen_and_commit(void **state)
{
    (void)state;
    char opts[160];
    snprintf(opts, sizeof(opts), ",backing_file=%s,backing_fmt=qcow2", path);
    make(top, opts);
    struct vdk_node *t = open_img(top, NULL, VDK_O_RDWR);
    assert_non_null(t);
    fill(t, 0x44);
    struct vdk_node *base = t->backing;
    assert_true(base->read_only);
    assert_int_equal(vdk_reopen(base, VDK_O_RDWR, NULL), 0);
    assert_int_equal(vdk_reopen(base, 0, NULL), 0);
    uint8_t b[512] = { 0 };
    assert_true(vdk_pwrite(base, b, sizeof(b), 0, 0) < 0);
    assert_int_equal(vdk_commit(t, NULL, false, NULL, NULL), 0);
    assert_true(base->read_only);
    expect(t, 0x44);
    expect(base, 0x44);
    uint64_t pnum = 0;
    assert_int_equal(vdk_block_status(t, 0, SZ, &pnum, NULL, NULL) & VDK_BS_ALLOCATED, 0);
    assert_true(pnum == SZ);
    assert_int_equal(vdk_close(t), 0);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof(path), "%s/a.qcow2", dir);
    snprintf(top, sizeof(top), "%s/top.qcow2", dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_list_apply_delete),
        cmocka_unit_test(test_open_snapshot_readonly),
        cmocka_unit_test(test_reopen_and_commit),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(path);
    unlink(top);
    rmdir(dir);
    return r;
}
