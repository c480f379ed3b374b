/* SPDX-License-Identifier: MIT */
/*
 * The request path (block/io.c) on the memory driver: read-modify-write at
 * every alignment, serialisation of concurrent unaligned writes, the
 * write-zeroes and FUA fallbacks, splitting at max transfer, and the
 * checks made before a request reaches a driver.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit-util.h"

#define IMG_SIZE (64u * 1024)

/* Raw over memory, or the memory node itself. */
static struct vdk_node *open_aligned(bool raw, uint32_t align, const char *extra)
{
    char o[256];
    const char *p = raw ? "file." : "";
    snprintf(o, sizeof(o), "%ssize=%u,%salign=%u%s%s", p, IMG_SIZE, p, align,
             extra ? "," : "", extra ? extra : "");
    return unit_open("memory://io", raw ? "raw" : "memory", o, VDK_O_RDWR);
}

static void check_image(struct vdk_node *n, const uint8_t *shadow)
{
    uint8_t *buf = malloc(IMG_SIZE);
    assert_non_null(buf);
    assert_int_equal(vdk_pread(n, buf, IMG_SIZE, 0, 0), 0);
    assert_memory_equal(buf, shadow, IMG_SIZE);
    uint64_t len = 0;
    uint8_t *mem = vdk_memory_data(unit_mem(n), &len);
    assert_true(len >= IMG_SIZE);
    assert_memory_equal(mem, shadow, IMG_SIZE);
    free(buf);
}

/*
 * For one alignment: writes, zero writes and reads at offsets around block
 * edges with lengths around the block size, against a shadow copy.
 */
static void rmw_grid(bool raw, uint32_t a)
{
    struct vdk_node *n = open_aligned(raw, a, NULL);
    struct vdk_node *mem = unit_mem(n);
    uint8_t *shadow = calloc(1, IMG_SIZE), *buf = malloc(IMG_SIZE), *rd = malloc(IMG_SIZE);
    assert_true(shadow && buf && rd);
    const uint64_t edges[] = { 0, a, 2ull * a, 5ull * a };
    const int64_t deltas[] = { -1, 0, 1, a / 2, a - 1 };
    const uint64_t lens[] = { 1, a > 1 ? a - 1 : 1, a, a + 1ull, 2ull * a + 3, 3ull * a, 7 };
    uint32_t seed = a;
    for (size_t e = 0; e < sizeof(edges) / sizeof(edges[0]); e++) {
        for (size_t d = 0; d < sizeof(deltas) / sizeof(deltas[0]); d++) {
            if ((int64_t)edges[e] + deltas[d] < 0)
                continue;
            uint64_t off = (uint64_t)((int64_t)edges[e] + deltas[d]);
            for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
                uint64_t len = lens[l];
                if (off + len > IMG_SIZE)
                    continue;
                unit_fill(buf, len, ++seed);
                assert_int_equal(vdk_pwrite(n, buf, len, off, 0), 0);
                memcpy(shadow + off, buf, len);
                /* Unaligned read of exactly that range. */
                memset(rd, 0xa5, len);
                assert_int_equal(vdk_pread(n, rd, len, off, 0), 0);
                assert_memory_equal(rd, buf, len);
                /* Zero an overlapping, shifted range every other time. */
                if (seed & 1) {
                    uint64_t zo = off + len / 2, zl = len;
                    if (zo + zl <= IMG_SIZE) {
                        assert_int_equal(vdk_pwrite_zeroes(n, zo, zl, 0), 0);
                        memset(shadow + zo, 0, zl);
                    }
                }
            }
        }
    }
    check_image(n, shadow);
    const struct vdk_memory_stats *st = vdk_memory_stats(mem);
    assert_int_equal(st->unaligned, 0);
    assert_true(st->writes > 0);
    free(shadow);
    free(buf);
    free(rd);
    assert_int_equal(vdk_close(n), 0);
}

static void test_rmw_all_alignments(void **state)
{
    for (uint32_t a = 1; a <= 4096; a *= 2) {
        rmw_grid(false, a);
        rmw_grid(true, a);
    }
}

/* ---- concurrency ---- */

#define THREADS 6
#define ROUNDS 160

struct writer {
    struct vdk_node *n;
    int id;
    int mode; /* 0: adjacent ranges in shared blocks, 1: one overlapping range */
    int err;
};

/* Thread t owns bytes [blk*4096 + 37 + t*600, +555) of every block. */
static uint64_t adj_off(int blk, int t) { return (uint64_t)blk * 4096 + 37 + (uint64_t)t * 600; }

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    uint8_t buf[8192];
    for (int i = 0; i < ROUNDS && !w->err; i++) {
        int r;
        if (w->mode == 0) {
            memset(buf, (w->id << 4) | (i & 15), 555);
            r = vdk_pwrite(w->n, buf, 555, adj_off(i % 8, w->id), 0);
            if (r == 0 && i % 7 == 0) /* a read in between must not disturb */
                r = vdk_pread(w->n, buf, 555, adj_off(i % 8, w->id), 0);
        } else {
            /* Everyone rewrites the same unaligned 3-block range. */
            memset(buf, w->id + 1, 8000);
            r = vdk_pwrite(w->n, buf, 8000, 4096 + 100, 0);
        }
        if (r < 0)
            w->err = r;
    }
    return NULL;
}

static void concurrent(bool raw)
{
    /* Every driver read and write takes 50 us: a read-modify-write that
       is not serialised then loses its neighbours' data almost surely. */
    struct vdk_node *n = open_aligned(raw, 4096, raw ? "file.latency=50" : "latency=50");
    struct writer w[THREADS];
    pthread_t th[THREADS];

    for (int mode = 0; mode < 2; mode++) {
        for (int t = 0; t < THREADS; t++) {
            w[t] = (struct writer){ n, t, mode, 0 };
            assert_int_equal(pthread_create(&th[t], NULL, writer_main, &w[t]), 0);
        }
        for (int t = 0; t < THREADS; t++) {
            pthread_join(th[t], NULL);
            assert_int_equal(w[t].err, 0);
        }
        uint8_t buf[8192];
        if (mode == 0) {
            /* Every thread's last write of every block is intact. */
            for (int blk = 0; blk < 8; blk++) {
                for (int t = 0; t < THREADS; t++) {
                    int last = ROUNDS - 8 + blk; /* last i with i % 8 == blk */
                    assert_int_equal(vdk_pread(n, buf, 555, adj_off(blk, t), 0), 0);
                    for (int k = 0; k < 555; k++)
                        if (buf[k] != (uint8_t)((t << 4) | (last & 15)))
                            fail_msg("block %d thread %d byte %d: %#x lost", blk, t, k,
                                     buf[k]);
                }
            }
        } else {
            /* The range holds one writer's data, whole. */
            assert_int_equal(vdk_pread(n, buf, 8000, 4096 + 100, 0), 0);
            assert_true(buf[0] >= 1 && buf[0] <= THREADS);
            for (int k = 1; k < 8000; k++)
                if (buf[k] != buf[0])
                    fail_msg("torn write at byte %d: %#x vs %#x", k, buf[k], buf[0]);
        }
    }
    assert_int_equal(vdk_memory_stats(unit_mem(n))->unaligned, 0);
    vdk_close(n);
}

static void test_concurrent_unaligned_writes(void **state)
{
    concurrent(false);
    concurrent(true);
}

/* ---- zeroes and FUA ---- */

static void test_zeroes_fallback(void **state)
{
    uint8_t buf[IMG_SIZE], z[IMG_SIZE] = { 0 };
    for (int raw = 0; raw < 2; raw++) {
        /* Native zeroes: the driver gets the aligned middle. */
        struct vdk_node *n = open_aligned(raw, 512, NULL);
        const struct vdk_memory_stats *st = vdk_memory_stats(unit_mem(n));
        memset(buf, 0xee, sizeof(buf));
        assert_int_equal(vdk_pwrite(n, buf, IMG_SIZE, 0, 0), 0);
        uint64_t w0 = st->writes;
        assert_int_equal(vdk_pwrite_zeroes(n, 1024, 8192, 0), 0);
        assert_int_equal(st->writes, w0);
        assert_int_equal(st->zero_writes, 1);
        assert_int_equal(vdk_pwrite_zeroes(n, 4096, 4096, VDK_REQ_NO_FALLBACK), 0);
        /* Unaligned edges cannot be zeroed fast: NO_FALLBACK fails, and
           before touching anything. */
        uint64_t zw = st->zero_writes;
        w0 = st->writes;
        assert_int_equal(vdk_pwrite_zeroes(n, 20000, 3000, VDK_REQ_NO_FALLBACK), -ENOTSUP);
        assert_int_equal(vdk_pwrite_zeroes(n, 20480, 3000, VDK_REQ_NO_FALLBACK), -ENOTSUP);
        assert_int_equal(vdk_pwrite_zeroes(n, 20000, 100, VDK_REQ_NO_FALLBACK), -ENOTSUP);
        assert_int_equal(st->zero_writes, zw);
        assert_int_equal(st->writes, w0);
        assert_int_equal(vdk_pread(n, buf, 4096, 20000, 0), 0);
        for (int i = 0; i < 4096; i++)
            assert_int_equal(buf[i], 0xee);
        /* Without NO_FALLBACK the edges are written. */
        assert_int_equal(vdk_pwrite_zeroes(n, 20000, 3000, 0), 0);
        assert_int_equal(vdk_pread(n, buf, 3000, 20000, 0), 0);
        assert_memory_equal(buf, z, 3000);
        assert_int_equal(vdk_pread(n, buf, 1, 19999, 0), 0);
        assert_int_equal(buf[0], 0xee);
        assert_int_equal(vdk_pread(n, buf, 1, 23000, 0), 0);
        assert_int_equal(buf[0], 0xee);
        assert_int_equal(st->unaligned, 0);
        vdk_close(n);

        /* zeroes=off: the generic layer writes zero buffers. */
        n = open_aligned(raw, 512, raw ? "file.zeroes=off" : "zeroes=off");
        st = vdk_memory_stats(unit_mem(n));
        memset(buf, 0x11, sizeof(buf));
        assert_int_equal(vdk_pwrite(n, buf, IMG_SIZE, 0, 0), 0);
        w0 = st->writes;
        assert_int_equal(vdk_pwrite_zeroes(n, 513, 10000, 0), 0);
        assert_true(st->writes > w0);
        assert_int_equal(st->zero_writes, 0);
        assert_int_equal(vdk_pread(n, buf, 10000, 513, 0), 0);
        assert_memory_equal(buf, z, 10000);
        w0 = st->writes;
        assert_int_equal(vdk_pwrite_zeroes(n, 0, 4096, VDK_REQ_NO_FALLBACK), -ENOTSUP);
        assert_int_equal(vdk_pwrite_zeroes(n, 1, 4096, VDK_REQ_NO_FALLBACK), -ENOTSUP);
        assert_int_equal(st->writes, w0);
        assert_int_equal(vdk_pread(n, buf, 1, 0, 0), 0);
        assert_int_equal(buf[0], 0x11);
        assert_int_equal(st->unaligned, 0);
        vdk_close(n);
    }
}

static void test_fua_falls_back_to_flush(void **state)
{
    uint8_t buf[4096] = { 1 };
    for (int raw = 0; raw < 2; raw++) {
        struct vdk_node *n = open_aligned(raw, 512, raw ? "file.zeroes=off" : "zeroes=off");
        const struct vdk_memory_stats *st = vdk_memory_stats(unit_mem(n));
        assert_int_equal(vdk_pwrite(n, buf, 4096, 0, 0), 0);
        assert_int_equal(st->flushes, 0);
        assert_int_equal(vdk_pwrite(n, buf, 4096, 0, VDK_REQ_FUA), 0);
        assert_int_equal(st->flushes, 1);
        assert_int_equal(vdk_pwrite(n, buf, 100, 7, VDK_REQ_FUA), 0);
        assert_int_equal(st->flushes, 2);
        assert_int_equal(vdk_pwrite_zeroes(n, 0, 4096, VDK_REQ_FUA), 0);
        assert_int_equal(st->flushes, 3);
        assert_int_equal(vdk_flush(n), 0);
        assert_int_equal(st->flushes, 4);
        vdk_close(n);
    }
    /* Native zeroes with FUA: one flush too. */
    struct vdk_node *n = open_aligned(true, 512, NULL);
    const struct vdk_memory_stats *st = vdk_memory_stats(unit_mem(n));
    assert_int_equal(vdk_pwrite_zeroes(n, 0, 8192, VDK_REQ_FUA), 0);
    assert_int_equal(st->flushes, 1);
    /* Compressed writes need a format that compresses. */
    assert_int_equal(vdk_pwrite(n, buf, 4096, 0, VDK_REQ_COMPRESSED), -ENOTSUP);
    vdk_close(n);
}

/* A node with native FUA gets the flag and no flush, except for zeros the
   generic layer wrote as data (unaligned edges), which need one. */
static void test_native_fua(void **state)
{
    uint8_t buf[4096] = { 2 };
    for (int raw = 0; raw < 2; raw++) {
        struct vdk_node *n = open_aligned(raw, 512, raw ? "file.fua=on" : "fua=on");
        const struct vdk_memory_stats *st = vdk_memory_stats(unit_mem(n));
        assert_int_equal(vdk_pwrite(n, buf, 4096, 0, VDK_REQ_FUA), 0);
        assert_int_equal(st->fua, 1);
        assert_int_equal(vdk_pwrite(n, buf, 100, 7, VDK_REQ_FUA), 0); /* RMW */
        assert_int_equal(st->fua, 2);
        assert_int_equal(vdk_pwrite_zeroes(n, 0, 8192, VDK_REQ_FUA), 0);
        assert_int_equal(st->fua, 3);
        assert_int_equal(st->flushes, 0);
        assert_int_equal(vdk_pwrite_zeroes(n, 100, 8192, VDK_REQ_FUA), 0);
        assert_int_equal(st->flushes, 1);
        assert_int_equal(vdk_pwrite(n, buf, 4096, 0, 0), 0);
        assert_int_equal(st->fua, 4); /* the middle of the last zero write */
        vdk_close(n);
    }
}

static void test_max_transfer_split(void **state)
{
    for (int raw = 0; raw < 2; raw++) {
        struct vdk_node *n = open_aligned(raw, 512, raw ? "file.max-transfer=8k,file.zeroes=off"
                                                        : "max-transfer=8k,zeroes=off");
        const struct vdk_memory_stats *st = vdk_memory_stats(unit_mem(n));
        assert_int_equal(vdk_node_max_transfer(n), 8192);
        uint8_t *buf = malloc(IMG_SIZE), *rd = malloc(IMG_SIZE);
        unit_fill(buf, IMG_SIZE, 7);
        assert_int_equal(vdk_pwrite(n, buf, IMG_SIZE, 0, 0), 0);
        assert_int_equal(st->writes, IMG_SIZE / 8192);
        assert_int_equal(vdk_pwrite(n, buf + 3, 40000, 1001, 0), 0);
        memmove(buf + 1001, buf + 3, 40000);
        assert_int_equal(vdk_pread(n, rd, IMG_SIZE - 5, 5, 0), 0);
        assert_memory_equal(rd, buf + 5, IMG_SIZE - 5);
        assert_int_equal(vdk_pwrite_zeroes(n, 100, 50000, 0), 0);
        memset(buf + 100, 0, 50000);
        assert_int_equal(vdk_pread(n, rd, IMG_SIZE, 0, 0), 0);
        assert_memory_equal(rd, buf, IMG_SIZE);
        assert_true(st->max_request <= 8192);
        assert_true(st->max_request > 0);
        assert_int_equal(st->unaligned, 0);
        free(buf);
        free(rd);
        vdk_close(n);
    }
    /* A max-transfer that is not a multiple of the alignment is refused. */
    free(unit_open_fail("memory://x", "memory", "align=4096,max-transfer=6000",
                        VDK_O_RDWR, -EINVAL));
}

/* max-size: the memory node grows up to it, and not a byte further. */
static void test_memory_max_size(void **state)
{
    (void)state;
    char o[64];
    snprintf(o, sizeof(o), "size=%u,max-size=%u", IMG_SIZE, 2 * IMG_SIZE);
    struct vdk_node *n = unit_open("memory://max", "memory", o, VDK_O_RDWR);
    uint8_t buf[512] = { 1 };
    assert_int_equal(vdk_pwrite(n, buf, 512, 2 * IMG_SIZE - 512, 0), 0);
    assert_int_equal(vdk_pwrite(n, buf, 512, 2 * IMG_SIZE - 511, 0), -EFBIG);
    assert_int_equal(vdk_pwrite_zeroes(n, 2 * IMG_SIZE, 512, 0), -EFBIG);
    assert_true(vdk_truncate(n, 2 * IMG_SIZE + 512, VDK_PREALLOC_OFF, false, NULL) < 0);
    assert_int_equal(vdk_get_length(n), 2 * IMG_SIZE);
    vdk_close(n);
    snprintf(o, sizeof(o), "size=%u,max-size=%u", 2 * IMG_SIZE, IMG_SIZE);
    free(unit_open_fail("memory://max", "memory", o, VDK_O_RDWR, -EFBIG));
    free(unit_open_fail("memory://max", "memory", "max-size=5G", VDK_O_RDWR, -EINVAL));
}

/* ---- checks before the driver ---- */

static void test_out_of_range(void **state)
{
    struct vdk_node *n = open_aligned(true, 512, NULL);
    const struct vdk_memory_stats *st = vdk_memory_stats(unit_mem(n));
    uint8_t buf[1024] = { 0 };
    struct vdk_memory_stats before = *st;
    assert_int_equal(vdk_pread(n, buf, 2, IMG_SIZE - 1, 0), -EINVAL);
    assert_int_equal(vdk_pread(n, buf, 1, IMG_SIZE, 0), -EINVAL);
    assert_int_equal(vdk_pwrite(n, buf, 2, IMG_SIZE - 1, 0), -EINVAL);
    assert_int_equal(vdk_pwrite(n, buf, 1, UINT64_MAX, 0), -EINVAL);
    assert_int_equal(vdk_pread(n, buf, 1, (uint64_t)INT64_MAX, 0), -EINVAL);
    assert_int_equal(vdk_pwrite(n, buf, UINT64_MAX, 1, 0), -EINVAL);
    assert_int_equal(vdk_pwrite_zeroes(n, IMG_SIZE - 512, 1024, 0), -EINVAL);
    assert_int_equal(vdk_pwrite_zeroes(n, 0, UINT64_MAX, 0), -EINVAL);
    assert_int_equal(vdk_discard(n, IMG_SIZE, 512), -EINVAL);
    assert_memory_equal(st, &before, sizeof(before));
    /* Zero-length requests inside and at the end are no-ops. */
    assert_int_equal(vdk_pread(n, buf, 0, IMG_SIZE, 0), 0);
    assert_int_equal(vdk_pwrite(n, buf, 0, 0, 0), 0);
    assert_int_equal(vdk_pwrite_zeroes(n, IMG_SIZE, 0, 0), 0);
    assert_memory_equal(st, &before, sizeof(before));
    /* The last byte is fine. */
    assert_int_equal(vdk_pwrite(n, buf, 1, IMG_SIZE - 1, 0), 0);
    assert_int_equal(vdk_pread(n, buf, 1, IMG_SIZE - 1, 0), 0);
    vdk_close(n);

    /* The memory protocol grows: reads past its end are zeros. */
    n = open_aligned(false, 1, NULL);
    memset(buf, 0xff, sizeof(buf));
    assert_int_equal(vdk_pread(n, buf, sizeof(buf), IMG_SIZE * 2, 0), 0);
    for (size_t i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0);
    vdk_close(n);
}

static void test_read_only(void **state)
{
    struct vdk_node *n = unit_open("memory://ro", "raw", "file.size=64k,file.align=512", 0);
    const struct vdk_memory_stats *st = vdk_memory_stats(unit_mem(n));
    uint8_t buf[512] = { 0 };
    assert_true(vdk_node_is_read_only(n));
    assert_int_equal(vdk_pwrite(n, buf, 512, 0, 0), -EPERM);
    assert_int_equal(vdk_pwrite(n, buf, 5, 3, 0), -EPERM);
    assert_int_equal(vdk_pwrite_zeroes(n, 0, 512, 0), -EPERM);
    assert_int_equal(vdk_discard(n, 0, 512), -EPERM);
    assert_int_equal(st->writes + st->zero_writes + st->discards, 0);
    struct vdk_error *err = NULL;
    assert_int_equal(vdk_truncate(n, 4096, VDK_PREALLOC_OFF, true, &err), -EPERM);
    assert_non_null(strstr(vdk_error_msg(err), "read-only"));
    vdk_error_free(err);
    assert_int_equal(vdk_pread(n, buf, 512, 0, 0), 0);
    assert_int_equal(vdk_flush(n), 0);
    assert_int_equal(st->flushes, 0);
    vdk_close(n);
}

static char *last_warning;

static void catch_warning(const char *msg, void *opaque)
{
    free(last_warning);
    last_warning = strdup(msg);
}

static void test_probed_raw_sector0(void **state)
{
    uint8_t buf[1024];
    memset(buf, 0x5a, sizeof(buf));
    vdk_set_warning_handler(catch_warning, NULL);

    /* Probed and read-write: writes to the first 512 bytes are refused
       only when they would make the image probe as another format. */
    struct vdk_node *n = unit_open("memory://p", NULL, "file.size=64k", VDK_O_RDWR);
    assert_string_equal(vdk_node_driver_name(n), "raw");
    assert_non_null(last_warning);
    assert_non_null(strstr(last_warning, "probing guessed raw"));
    assert_true(n->protect_sector0);
    const struct vdk_memory_stats *st = vdk_memory_stats(unit_mem(n));
    static const uint8_t qcow2_magic[] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 3 };
    uint8_t hdr[512] = { 0 };
    memcpy(hdr, qcow2_magic, sizeof(qcow2_magic));
    hdr[27] = 0; /* backing name length */
    uint64_t before = st->writes;
    assert_int_equal(vdk_pwrite(n, hdr, 512, 0, 0), -EPERM);
    /* Two halves of the magic, one at a time: the second one is refused. */
    assert_int_equal(vdk_pwrite(n, qcow2_magic, 2, 0, 0), 0);
    assert_int_equal(vdk_pwrite(n, qcow2_magic + 2, 6, 2, 0), -EPERM);
    assert_int_equal(st->writes, before + 1);
    /* Ordinary data anywhere in sector 0 is fine, zeros and trims too. */
    assert_int_equal(vdk_pwrite(n, buf, 512, 0, 0), 0);
    assert_int_equal(vdk_pwrite(n, buf, 1, 511, 0), 0);
    assert_int_equal(vdk_pwrite(n, buf, 1024, 100, 0), 0);
    assert_int_equal(vdk_pwrite_zeroes(n, 0, 4096, 0), 0);
    assert_int_equal(vdk_discard(n, 0, 4096), 0);
    assert_int_equal(vdk_pwrite(n, buf, 1024, 512, 0), 0);
    assert_int_equal(vdk_pread(n, buf, 512, 0, 0), 0);
    vdk_close(n);

    /* Probed read-only: no protection flag, no warning. */
    free(last_warning);
    last_warning = NULL;
    n = unit_open("memory://p", NULL, "file.size=64k", 0);
    assert_false(n->protect_sector0);
    assert_true(n->probed);
    assert_null(last_warning);
    vdk_close(n);

    /* Format given: sector 0 is writable. */
    n = unit_open("memory://p", "raw", "file.size=64k", VDK_O_RDWR);
    assert_false(n->probed);
    assert_null(last_warning);
    assert_int_equal(vdk_pwrite(n, buf, 512, 0, 0), 0);
    assert_int_equal(vdk_pwrite_zeroes(n, 0, 512, 0), 0);
    vdk_close(n);
    vdk_set_warning_handler(NULL, NULL);
    free(last_warning);
    last_warning = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmw_all_alignments),
        cmocka_unit_test(test_concurrent_unaligned_writes),
        cmocka_unit_test(test_zeroes_fallback),
        cmocka_unit_test(test_fua_falls_back_to_flush),
        cmocka_unit_test(test_native_fua),
        cmocka_unit_test(test_max_transfer_split),
        cmocka_unit_test(test_memory_max_size),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_read_only),
        cmocka_unit_test(test_probed_raw_sector0),
    };
    return cmocka_run_group_tests_name("io", tests, NULL, NULL);
}
