/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of qcow2 persistent dirty bitmaps on the memory protocol:
 * dirty runs at 64-bit word edges, granularity rounding, concurrent
 * writers, disabled bitmaps, merge across granularities, the stored
 * bitmaps read back by a fresh open with the image checking clean, and
 * the store on flush: what a second (read-only) open of the same bytes
 * sees after each step, which is what a crash there would leave.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "block/driver.h"
#include "formats/qcow2/qcow2.h"

extern const struct vdk_driver vdk_driver_qcow2;

/* bitmap-store-ms of read-write opens: 0 (every flush stores), so that
   the tests can tell exactly what each flush leaves on disk. */
static const char *store_ms = "0";

static struct vdk_node *open_on(struct vdk_node *file, const char *name, unsigned flags)
{
    struct vdk_error *err = NULL;
    struct vdk_node *n = vdk_node_new_internal(&vdk_driver_qcow2, name);
    assert_non_null(n);
    vdk_node_ref(file);
    n->file = file;
    n->read_only = !(flags & VDK_O_RDWR);
    struct vdk_opts *o = vdk_opts_new();
    if (flags & VDK_O_RDWR)
        vdk_opts_set(o, "bitmap-store-ms", store_ms);
    assert_int_equal(vdk_driver_qcow2.open(n, o, flags, &err), 0);
    vdk_opts_free(o);
    n->open_flags = flags;
    return n;
}

static struct vdk_node *create_mem(const char *name, const char *opts, struct vdk_node **file)
{
    struct vdk_error *err = NULL;
    struct vdk_opts *fo = vdk_opts_new();
    vdk_opts_set(fo, "size", "0");
    assert_int_equal(vdk_open_protocol(file, name, fo, VDK_O_RDWR, &err), 0);
    struct vdk_opts *co = vdk_opts_new();
    vdk_opts_parse(co, opts, NULL, NULL);
    assert_int_equal(vdk_driver_qcow2.create(name, *file, co, &err), 0);
    vdk_opts_free(co);
    return open_on(*file, name, VDK_O_RDWR);
}

/* The dirty runs of bitmap `name` as "start+len" pairs of dirty ranges. */
static void runs(struct vdk_node *n, const char *name, char *out, size_t cap)
{
    uint64_t size = (uint64_t)vdk_get_length(n), off = 0, pnum;
    size_t l = 0;
    out[0] = 0;
    while (off < size) {
        int r = vdk_bitmap_status(n, name, off, size - off, &pnum);
        assert_true(r == 0 || r == 1);
        assert_true(pnum > 0);
        if (r)
            l += (size_t)snprintf(out + l, cap - l, "%s%llu+%llu", l ? " " : "",
                                  (unsigned long long)off, (unsigned long long)pnum);
        off += pnum;
    }
}

/* A new image (create options opts) holding an enabled bitmap "b" with
   512-byte chunks. */
static struct vdk_node *create_with_b(const char *name, const char *opts,
                                      struct vdk_node **file)
{
    struct vdk_error *err = NULL;
    struct vdk_node *n = create_mem(name, opts, file);
    assert_int_equal(vdk_bitmap_op(n, VDK_BITMAP_ADD, "b", 512, &err), 0);
    return n;
}

static void test_runs(void **state)
{
    (void)state;
    struct vdk_node *file, *n = create_mem("memory://bm1", "size=1M,cluster_size=4k", &file);
    struct vdk_error *err = NULL;
    assert_int_equal(vdk_bitmap_op(n, VDK_BITMAP_ADD, "fine", 512, &err), 0);
    assert_int_equal(vdk_bitmap_op(n, VDK_BITMAP_ADD, "coarse", 65536, &err), 0);
    assert_int_equal(vdk_bitmap_op(n, VDK_BITMAP_ADD_DISABLED, "off", 0, &err), 0);
    uint8_t buf[4096] = { 1 };
    /* Across the first word edge (chunks 63 and 64), one byte in chunk
       127 (the last bit of word 1), and the image's last byte. */
    assert_int_equal(vdk_pwrite(n, buf, 1024, 63 * 512, 0), 0);
    assert_int_equal(vdk_pwrite(n, buf, 1, 127 * 512 + 511, 0), 0);
    assert_int_equal(vdk_pwrite(n, buf, 1, (1 << 20) - 1, 0), 0);
    char s[512];
    runs(n, "fine", s, sizeof(s));
    assert_string_equal(s, "32256+1024 65024+512 1048064+512");
    runs(n, "coarse", s, sizeof(s));
    assert_string_equal(s, "0+65536 983040+65536");
    runs(n, "off", s, sizeof(s));
    assert_string_equal(s, "");
    /* Status asked from inside a run reports the rest of it. */
    uint64_t pnum;
    assert_int_equal(vdk_bitmap_status(n, "fine", 32256 + 100, 5000, &pnum), 1);
    assert_int_equal(pnum, 1024 - 100);
    assert_int_equal(vdk_bitmap_status(n, "nope", 0, 512, &pnum), -ENOENT);
    /* Write-zeroes and discard mark the whole request. */
    assert_int_equal(vdk_pwrite_zeroes(n, 200000, 3000, 0), 0);
    assert_int_equal(vdk_discard(n, 300000, 100), 0);
    runs(n, "fine", s, sizeof(s));
    assert_string_equal(s, "32256+1024 65024+512 199680+3584 299520+1024 1048064+512");
    /* Merge the fine bitmap into the disabled one (4 KiB: the default). */
    assert_int_equal(vdk_bitmap_merge(n, "off", n, "fine", &err), 0);
    runs(n, "off", s, sizeof(s));
    assert_string_equal(s, "28672+8192 61440+4096 196608+8192 299008+4096 1044480+4096");
    assert_int_equal(vdk_bitmap_op(n, VDK_BITMAP_CLEAR, "coarse", 0, &err), 0);
    runs(n, "coarse", s, sizeof(s));
    assert_string_equal(s, "");

    /* Stored at close, read back by a fresh open; the image checks clean. */
    vdk_node_unref(n);
    n = open_on(file, "memory://bm1", 0);
    runs(n, "fine", s, sizeof(s));
    assert_string_equal(s, "32256+1024 65024+512 199680+3584 299520+1024 1048064+512");
    runs(n, "off", s, sizeof(s));
    assert_string_equal(s, "28672+8192 61440+4096 196608+8192 299008+4096 1044480+4096");
    struct vdk_bitmap_info *l;
    int cnt;
    assert_int_equal(vdk_bitmap_list(n, &l, &cnt, &err), 0);
    assert_int_equal(cnt, 3);
    assert_string_equal(l[2].name, "off");
    assert_false(l[2].enabled);
    assert_int_equal(l[2].granularity, 4096); /* the default for 4 KiB clusters */
    vdk_bitmap_list_free(l, cnt);
    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    assert_int_equal(vdk_check(n, &res, 0, &err), 0);
    assert_int_equal(res.corruptions, 0);
    assert_int_equal(res.leaks, 0);
    vdk_node_unref(n);
    vdk_node_unref(file);
}

struct job {
    struct vdk_node *n;
    unsigned id;
};

static void *writer(void *arg)
{
    struct job *j = arg;
    uint8_t buf[512];
    memset(buf, (int)j->id, sizeof(buf));
    /* Interleaved chunks: every 64-bit word is shared by all threads. */
    for (uint64_t c = j->id; c < 4096; c += 4)
        if (vdk_pwrite(j->n, buf, 512, c * 512, 0) < 0)
            return (void *)1;
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct vdk_node *file, *n = create_with_b("memory://bm2", "size=2M,cluster_size=64k", &file);
    pthread_t th[4];
    struct job jobs[4];
    for (unsigned i = 0; i < 4; i++) {
        jobs[i] = (struct job){ n, i };
        pthread_create(&th[i], NULL, writer, &jobs[i]);
    }
    for (unsigned i = 0; i < 4; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
    uint64_t pnum;
    assert_int_equal(vdk_bitmap_status(n, "b", 0, 2 << 20, &pnum), 1);
    assert_int_equal(pnum, 2 << 20);
    vdk_node_unref(n);
    vdk_node_unref(file);
}

/* Whether bitmap `name` is in use in the file's bytes as they are now,
   and its dirty runs (when it is not) into out. */
static bool on_disk(struct vdk_node *file, const char *fname, const char *name, char *out,
                    size_t cap)
{
    struct vdk_error *err = NULL;
    struct vdk_node *c = open_on(file, fname, 0);
    struct vdk_bitmap_info *l;
    int cnt;
    bool in_use = false, found = false;
    assert_int_equal(vdk_bitmap_list(c, &l, &cnt, &err), 0);
    for (int i = 0; i < cnt; i++)
        if (strcmp(l[i].name, name) == 0) {
            in_use = l[i].in_use;
            found = true;
        }
    vdk_bitmap_list_free(l, cnt);
    assert_true(found);
    out[0] = 0;
    if (!in_use) {
        runs(c, name, out, cap);
        struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
        assert_int_equal(vdk_check(c, &res, 0, &err), 0);
        assert_int_equal(res.corruptions, 0);
        assert_int_equal(res.leaks, 0);
    }
    vdk_node_unref(c);
    return in_use;
}

/* A flush, after which "b" is stored (not in use) with dirty runs want. */
static void flush_leaves(struct vdk_node *n, struct vdk_node *file, const char *fn,
                         const char *want)
{
    char s[512];
    assert_int_equal(vdk_flush(n), 0);
    assert_false(on_disk(file, fn, "b", s, sizeof(s)));
    assert_string_equal(s, want);
}

/* The close of n, after which "b" is stored with dirty runs want; then
   the file goes too. */
static void close_leaves(struct vdk_node *n, struct vdk_node *file, const char *fn,
                         const char *want)
{
    char s[512];
    vdk_node_unref(n);
    assert_false(on_disk(file, fn, "b", s, sizeof(s)));
    assert_string_equal(s, want);
    vdk_node_unref(file);
}

static void test_flush_store(void **state)
{
    (void)state;
    const char *fn = "memory://bm3";
    /* 512-byte clusters and chunks: 1 KiB of bitmap data, two clusters. */
    struct vdk_node *file, *n = create_with_b(fn, "size=4M,cluster_size=512", &file);
    struct vdk_error *err = NULL;
    char s[512];
    uint8_t buf[4096];
    memset(buf, 7, sizeof(buf));
    assert_int_equal(vdk_bitmap_op(n, VDK_BITMAP_ADD_DISABLED, "off", 0, &err), 0);
    /* A new bitmap is stored (fresh directory) by the flush. */
    assert_int_equal(vdk_flush(n), 0);
    assert_false(on_disk(file, fn, "b", s, sizeof(s)));
    assert_string_equal(s, "");
    assert_false(on_disk(file, fn, "off", s, sizeof(s)));
    /* A write with new bits: "in use" before it, until the next flush. */
    assert_int_equal(vdk_pwrite(n, buf, 1024, 1024, 0), 0);
    assert_true(on_disk(file, fn, "b", s, sizeof(s)));
    assert_true(on_disk(file, fn, "off", s, sizeof(s)));
    assert_int_equal(vdk_flush(n), 0);
    assert_false(on_disk(file, fn, "b", s, sizeof(s)));
    assert_string_equal(s, "1024+1024");
    /* The second data cluster (chunks from 4096 on, 2 MiB) is new: a
       cluster is allocated and the table entry written; the first is
       rewritten in place. */
    assert_int_equal(vdk_pwrite(n, buf, 512, 3 << 20, 0), 0);
    assert_int_equal(vdk_pwrite(n, buf, 100, 5000, 0), 0);
    assert_int_equal(vdk_discard(n, 1 << 20, 4096), 0);
    assert_true(on_disk(file, fn, "b", s, sizeof(s)));
    assert_int_equal(vdk_flush(n), 0);
    assert_false(on_disk(file, fn, "b", s, sizeof(s)));
    assert_string_equal(s, "1024+1024 4608+512 1048576+4096 3145728+512");
    /* Rewrites of dirty chunks and a flush with nothing new: still clean. */
    assert_int_equal(vdk_pwrite(n, buf, 1000, 1030, 0), 0);
    assert_false(on_disk(file, fn, "b", s, sizeof(s)));
    assert_int_equal(vdk_flush(n), 0);
    assert_false(on_disk(file, fn, "b", s, sizeof(s)));
    assert_string_equal(s, "1024+1024 4608+512 1048576+4096 3145728+512");
    /* After a clear (a control operation) the flush stores it whole. */
    assert_int_equal(vdk_bitmap_op(n, VDK_BITMAP_CLEAR, "b", 0, &err), 0);
    assert_true(on_disk(file, fn, "b", s, sizeof(s)));
    assert_int_equal(vdk_pwrite(n, buf, 512, 2 << 20, 0), 0);
    flush_leaves(n, file, fn, "2097152+512");
    close_leaves(n, file, fn, "2097152+512");
}

struct flusher {
    struct vdk_node *n;
    int stop, failed;
};

static void *flush_loop(void *arg)
{
    struct flusher *f = arg;
    while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE))
        if (vdk_flush(f->n) < 0)
            f->failed = 1;
    return NULL;
}

/* Writers setting new bits while another thread flushes over and over:
   every bit ends up stored, and the image checks clean. */
static void test_flush_threads(void **state)
{
    (void)state;
    const char *fn = "memory://bm4";
    struct vdk_node *file, *n = create_with_b(fn, "size=2M,cluster_size=512", &file);
    char s[512];
    assert_int_equal(vdk_flush(n), 0);
    struct flusher fl = { n, 0, 0 };
    pthread_t ft, th[4];
    struct job jobs[4];
    pthread_create(&ft, NULL, flush_loop, &fl);
    for (unsigned i = 0; i < 4; i++) {
        jobs[i] = (struct job){ n, i };
        pthread_create(&th[i], NULL, writer, &jobs[i]);
    }
    for (unsigned i = 0; i < 4; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
    __atomic_store_n(&fl.stop, 1, __ATOMIC_RELEASE);
    pthread_join(ft, NULL);
    assert_int_equal(fl.failed, 0);
    assert_int_equal(vdk_flush(n), 0);
    assert_false(on_disk(file, fn, "b", s, sizeof(s)));
    assert_string_equal(s, "0+2097152");
    vdk_node_unref(n);
    vdk_node_unref(file);
}

/* 16 KiB of bitmap in one 64 KiB cluster: a store rewrites only the 4 KiB
   units that changed, and what it leaves is the whole bitmap. */
static void test_flush_units(void **state)
{
    (void)state;
    const char *fn = "memory://bm6";
    struct vdk_node *file, *n = create_with_b(fn, "size=64M,cluster_size=64k", &file);
    uint8_t buf[512];
    memset(buf, 9, sizeof(buf));
    assert_int_equal(vdk_pwrite(n, buf, 512, 0, 0), 0);
    assert_int_equal(vdk_flush(n), 0); /* the full store */
    assert_int_equal(vdk_pwrite(n, buf, 512, 40 << 20, 0), 0);   /* unit 2 */
    flush_leaves(n, file, fn, "0+512 41943040+512");
    assert_int_equal(vdk_pwrite(n, buf, 512, 1024, 0), 0);       /* unit 0 */
    assert_int_equal(vdk_pwrite(n, buf, 512, (64 << 20) - 512, 0), 0); /* unit 3 */
    flush_leaves(n, file, fn, "0+512 1024+512 41943040+512 67108352+512");
    close_leaves(n, file, fn, "0+512 1024+512 41943040+512 67108352+512");
}

static double secs(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Stores rate-limited: a flush soon after a store leaves the flag set
   and its store to the thread, which does it once the time has passed,
   with every bit; a write with new bits meanwhile finds the flag set. */
static void test_flush_rate(void **state)
{
    (void)state;
    const char *fn = "memory://bm5";
    store_ms = "2000";
    struct vdk_node *file, *n = create_with_b(fn, "size=4M,cluster_size=512", &file);
    store_ms = "0";
    struct vdk_error *err = NULL;
    char s[512];
    uint8_t buf[4096];
    memset(buf, 7, sizeof(buf));
    assert_int_equal(vdk_flush(n), 0); /* the whole store: never postponed */
    double t0 = secs();
    assert_false(on_disk(file, fn, "b", s, sizeof(s)));
    assert_int_equal(vdk_pwrite(n, buf, 1024, 1024, 0), 0);
    assert_int_equal(vdk_flush(n), 0);
    /* Only what timing guarantees: a slow host may pass the 2 s. */
    if (secs() - t0 < 1.5)
        assert_true(on_disk(file, fn, "b", s, sizeof(s)));
    assert_int_equal(vdk_pwrite(n, buf, 512, 3 << 20, 0), 0);
    assert_int_equal(vdk_flush(n), 0);
    int i = 0;
    while (on_disk(file, fn, "b", s, sizeof(s)) && i++ < 200)
        usleep(50 * 1000);
    assert_false(on_disk(file, fn, "b", s, sizeof(s)));
    assert_string_equal(s, "1024+1024 3145728+512");
    /* A control operation first does a postponed store. */
    assert_int_equal(vdk_pwrite(n, buf, 512, 8192, 0), 0);
    assert_int_equal(vdk_flush(n), 0);
    assert_int_equal(vdk_bitmap_op(n, VDK_BITMAP_ADD, "c", 512, &err), 0);
    assert_int_equal(vdk_flush(n), 0); /* the whole store */
    assert_false(on_disk(file, fn, "b", s, sizeof(s)));
    assert_string_equal(s, "1024+1024 8192+512 3145728+512");
    vdk_node_unref(n);
    assert_false(on_disk(file, fn, "b", s, sizeof(s)));
    vdk_node_unref(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_flush_store),
        cmocka_unit_test(test_flush_rate),
        cmocka_unit_test(test_flush_units),
        cmocka_unit_test(test_flush_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
