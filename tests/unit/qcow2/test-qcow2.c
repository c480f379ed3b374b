/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of qcow2 internals: refcount entry packing for every width,
 * compression round trips, and a create/write/read/check cycle on the
 * memory protocol through the public API (threads writing in parallel,
 * compressed clusters, zero writes, discards, backing-less COW).
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

#include <cmocka.h>
#include <zlib.h>

#include "block/driver.h"
#include "formats/qcow2/qcow2.h"

static void test_refcount_widths(void **state)
{
    (void)state;
    struct qcow2_state s;
    uint8_t blk[512];
    for (uint32_t order = 0; order <= 6; order++) {
        memset(&s, 0, sizeof(s));
        memset(blk, 0, sizeof(blk));
        s.refcount_order = order;
        uint64_t entries = sizeof(blk) * 8 >> order;
        uint64_t max = order == 6 ? UINT64_MAX : (1ull << (1u << order)) - 1;
        for (uint64_t i = 0; i < entries; i++)
            qcow2_rb_set(&s, blk, i, (i * 0x9e3779b97f4a7c15ull) & max);
        for (uint64_t i = 0; i < entries; i++)
            assert_int_equal(qcow2_rb_get(&s, blk, i), (i * 0x9e3779b97f4a7c15ull) & max);
        /* Neighbours are untouched by a single update. */
        qcow2_rb_set(&s, blk, 3, 0);
        assert_int_equal(qcow2_rb_get(&s, blk, 2), (2 * 0x9e3779b97f4a7c15ull) & max);
        assert_int_equal(qcow2_rb_get(&s, blk, 4), (4 * 0x9e3779b97f4a7c15ull) & max);
    }
    /* Spec layout of narrow entries: bit order within a byte is LSB first. */
    memset(&s, 0, sizeof(s));
    memset(blk, 0, sizeof(blk));
    s.refcount_order = 0;
    qcow2_rb_set(&s, blk, 1, 1);
    assert_int_equal(blk[0], 2);
    s.refcount_order = 4;
    qcow2_rb_set(&s, blk, 1, 0x1234);
    assert_int_equal(blk[2], 0x12);
    assert_int_equal(blk[3], 0x34);
}

static void test_compress_roundtrip(void **state)
{
    (void)state;
    size_t cs = 65536;
    uint8_t *in = malloc(cs), *out = malloc(cs), *back = malloc(cs);
    for (size_t i = 0; i < cs; i++)
        in[i] = (uint8_t)("compressible qcow2 "[i % 19]);
    for (uint8_t t = 0; t <= 1; t++) {
        int64_t n = qcow2_compress(t, in, cs, out, cs - 1);
        assert_true(n > 0 && n < (int64_t)cs / 4);
        /* Padding after the stream (to the sector) is ignored. */
        memset(out + n, 0xee, cs - 1 - (size_t)n);
        assert_int_equal(qcow2_decompress(t, out, (size_t)n + 300, back, cs), 0);
        assert_memory_equal(in, back, cs);
        /* A truncated stream is an error, not a short read. */
        assert_int_not_equal(qcow2_decompress(t, out, (size_t)n / 2, back, cs), 0);
    }
    srand(1);
    for (size_t i = 0; i < cs; i++)
        in[i] = (uint8_t)rand();
    assert_int_equal(qcow2_compress(0, in, cs, out, cs - 1), -ENOSPC);
    assert_int_equal(qcow2_compress(1, in, cs, out, cs - 1), -ENOSPC);
    free(in);
    free(out);
    free(back);
}

/* zlib's deflate() with QEMU's parameters into cap bytes; -1: no fit. */
static int64_t zlib_deflate(const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
{
    z_stream z = { 0 };
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)n;
    z.next_out = dst;
    z.avail_out = (uInt)cap;
    int r = deflate(&z, Z_FINISH);
    int64_t len = r == Z_STREAM_END ? (int64_t)(cap - z.avail_out) : -1;
    deflateEnd(&z);
    return len;
}

static uint32_t rng = 12345;
static uint32_t next_rand(void)
{
    rng = rng * 1103515245u + 12345u;
    return rng >> 8;
}

/* Fill buf with data of kind k: random, small alphabets, repeats with
   edits, sparse bytes in zeros, long runs, word salad, and halves. */
static void fill_kind(uint8_t *buf, size_t n, int k)
{
    static const char *words[] = { "qcow2 ", "cluster ", "the ", "a ", "refcount ",
                                   "deflate\n", "window ", "x", "0123456789 " };
    size_t i = 0;
    switch (k) {
    case 0: for (; i < n; i++) buf[i] = (uint8_t)next_rand(); break;
    case 1: case 2: case 3: case 4: {
        unsigned alpha = 1u << (2 * k - 1); /* 2, 8, 32, 128 symbols */
        for (; i < n; i++) buf[i] = (uint8_t)('!' + next_rand() % alpha);
        break;
    }
    case 5: {
        uint8_t pat[777];
        for (size_t j = 0; j < sizeof(pat); j++) pat[j] = (uint8_t)next_rand();
        for (; i < n; i++) buf[i] = next_rand() % 97 ? pat[i % sizeof(pat)] : (uint8_t)next_rand();
        break;
    }
    case 6:
        memset(buf, 0, n);
        for (size_t j = 0; j < n / 64; j++) buf[next_rand() % n] = (uint8_t)next_rand();
        break;
    case 7:
        while (i < n) {
            size_t run = 1 + next_rand() % 600;
            uint8_t c = (uint8_t)next_rand();
            for (size_t j = 0; j < run && i < n; j++) buf[i++] = c;
        }
        break;
    case 8:
        while (i < n) {
            const char *w = words[next_rand() % 9];
            for (size_t j = 0; w[j] && i < n; j++) buf[i++] = (uint8_t)w[j];
        }
        break;
    default: /* compressible and random halves, either order */
        fill_kind(buf, n / 2, k % 2 ? 0 : 8);
        fill_kind(buf + n / 2, n - n / 2, k % 2 ? 8 : 0);
        break;
    }
}

/* qcow2_compress(zlib) writes exactly what QEMU's zlib call writes, and
   gives up exactly when it does, over cluster sizes 512 B to 2 MiB. */
static void test_deflate_matches_zlib(void **state)
{
    (void)state;
    static const size_t sizes[] = { 512, 4096, 65536, 2u << 20 };
    size_t cmp = 0;
    for (size_t si = 0; si < 4; si++) {
        size_t cs = sizes[si];
        uint8_t *in = malloc(cs), *a = malloc(cs), *b = malloc(cs);
        assert_non_null(in && a && b);
        for (int k = 0; k < 11; k++) {
            if (cs == (2u << 20) && k % 3)
                continue; /* the big cluster: a few kinds are enough */
            fill_kind(in, cs, k);
            int64_t la = zlib_deflate(in, cs, a, cs - 1);
            int64_t lb = qcow2_compress(QCOW2_COMP_ZLIB, in, cs, b, cs - 1);
            if (la < 0) {
                assert_int_equal(lb, -ENOSPC);
            } else {
                assert_int_equal(lb, la);
                assert_memory_equal(a, b, (size_t)la);
            }
            cmp++;
        }
        free(in);
        free(a);
        free(b);
    }
    assert_int_equal(cmp, 3 * 11 + 4);
}

struct wjob {
    struct vdk_node *n;
    int idx;
    unsigned flags;
    int ret;
};

static void *writer(void *arg)
{
    struct wjob *j = arg;
    uint8_t buf[65536];
    for (int c = j->idx; c < 64; c += 4) {
        memset(buf, 'a' + c % 26, sizeof(buf));
        int r = vdk_pwrite(j->n, buf, sizeof(buf), (uint64_t)c * 65536, j->flags);
        if (r < 0)
            j->ret = r;
    }
    return NULL;
}

static void test_cycle(void **state)
{
    (void)state;
    /* Create into a memory node kept open across create and open. */
    struct vdk_node *file = NULL, *n = NULL;
    struct vdk_error *err = NULL;
    struct vdk_opts *fo = vdk_opts_new();
    vdk_opts_set(fo, "size", "0");
    assert_int_equal(vdk_open_protocol(&file, "memory://unit", fo, VDK_O_RDWR, &err), 0);
    struct vdk_opts *co = vdk_opts_new();
    vdk_opts_parse(co, "size=4M,cluster_size=64k,compression_type=zstd", NULL, NULL);
    extern const struct vdk_driver vdk_driver_qcow2;
    assert_int_equal(vdk_driver_qcow2.create("memory://unit", file, co, &err), 0);
    vdk_opts_free(co);

    n = vdk_node_new_internal(&vdk_driver_qcow2, "memory://unit");
    assert_non_null(n);
    vdk_node_ref(file);
    n->file = file;
    struct vdk_opts *oo = vdk_opts_new();
    assert_int_equal(vdk_driver_qcow2.open(n, oo, VDK_O_RDWR, &err), 0);
    n->open_flags = VDK_O_RDWR;
    vdk_opts_free(oo);

    pthread_t th[4];
    struct wjob jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct wjob){ n, i, i % 2 ? VDK_REQ_COMPRESSED : 0, 0 };
        pthread_create(&th[i], NULL, writer, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].ret, 0);
    }
    assert_int_equal(vdk_pwrite_zeroes(n, 65536, 65536, VDK_REQ_MAY_UNMAP), 0);
    assert_int_equal(vdk_discard(n, 2 * 65536, 65536), 0);
    uint8_t small[100];
    memset(small, 'Z', sizeof(small));
    assert_int_equal(vdk_pwrite(n, small, sizeof(small), 3 * 65536 + 1000, 0), 0);
    assert_int_equal(vdk_flush(n), 0);

    uint8_t *buf = malloc(65536), *want = malloc(65536);
    for (int c = 0; c < 64; c++) {
        assert_int_equal(vdk_pread(n, buf, 65536, (uint64_t)c * 65536, 0), 0);
        memset(want, (c == 1 || c == 2) ? 0 : 'a' + c % 26, 65536);
        if (c == 3)
            memset(want + 1000, 'Z', 100);
        assert_memory_equal(buf, want, 65536);
    }
    uint64_t pnum, map;
    struct vdk_node *f;
    int st = vdk_block_status(n, 65536, 65536, &pnum, &map, &f);
    assert_true(st & VDK_BS_ZERO);
    st = vdk_block_status(n, 5 * 65536, 65536, &pnum, &map, &f);
    assert_true(st & VDK_BS_COMPRESSED);

    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    assert_int_equal(vdk_check(n, &res, 0, &err), 0);
    assert_int_equal(res.corruptions, 0);
    assert_int_equal(res.leaks, 0);
    /* 32 written compressed; 1 was zeroed, 3 partly rewritten (copied out). */
    assert_int_equal(res.compressed_clusters, 30);
    free(buf);
    free(want);
    vdk_node_unref(n);
    vdk_node_unref(file);
}

/*
 * Stress: 4 threads on disjoint cluster sets (thread i owns clusters with
 * index % 4 == i) of one image with small clusters and tiny caches, so
 * they share L2 tables, refcount blocks and the allocator.  Random partial
 * and whole writes, compressed writes, zero writes, discards and reads
 * checked against a per-thread model; the image checks clean at the end.
 */
#define ST_CLUSTER 4096u
#define ST_CLUSTERS 512u

struct sjob {
    struct vdk_node *n;
    uint8_t *model; /* shared, each thread touches only its clusters */
    unsigned idx;
    uint64_t seed;
    int bad;
};

static uint64_t srng(uint64_t *st)
{
    *st ^= *st >> 12;
    *st ^= *st << 25;
    *st ^= *st >> 27;
    return *st * 0x2545F4914F6CDD1Dull;
}

static void *stress_worker(void *arg)
{
    struct sjob *j = arg;
    uint8_t buf[ST_CLUSTER], rd[ST_CLUSTER];
    for (int it = 0; it < 1500 && !j->bad; it++) {
        uint64_t c = (srng(&j->seed) % (ST_CLUSTERS / 4)) * 4 + j->idx;
        uint64_t base = c * ST_CLUSTER, op = srng(&j->seed) % 6;
        uint8_t *m = j->model + base;
        int r = 0;
        if (op == 0 || op == 1) {
            uint64_t a = srng(&j->seed) % ST_CLUSTER, len = 1 + srng(&j->seed) % (ST_CLUSTER - a);
            memset(buf, (int)(srng(&j->seed) & 0xff), len);
            r = vdk_pwrite(j->n, buf, len, base + a, 0);
            memcpy(m + a, buf, len);
        } else if (op == 2) {
            for (unsigned k = 0; k < ST_CLUSTER; k++)
                buf[k] = (uint8_t)("stress"[k % 6] + (it & 3));
            r = vdk_pwrite(j->n, buf, ST_CLUSTER, base, VDK_REQ_COMPRESSED);
            memcpy(m, buf, ST_CLUSTER);
        } else if (op == 3) {
            r = vdk_pwrite_zeroes(j->n, base, ST_CLUSTER, it & 1 ? VDK_REQ_MAY_UNMAP : 0);
            memset(m, 0, ST_CLUSTER);
        } else if (op == 4) {
            r = vdk_discard(j->n, base, ST_CLUSTER);
            memset(m, 0, ST_CLUSTER);
        } else {
            r = vdk_pread(j->n, rd, ST_CLUSTER, base, 0);
            if (r == 0 && memcmp(rd, m, ST_CLUSTER))
                j->bad = 2;
        }
        if (r < 0) {
            fprintf(stderr, "stress: op %d at cluster %d: %s\n", (int)op, (int)c, strerror(-r));
            j->bad = 1;
        }
    }
    return NULL;
}

/* A qcow2 image created with create_opts on a memory file called name and
   opened read-write with open_opts (may be NULL); *file gets the file. */
static struct vdk_node *open_mem_qcow2(const char *name, const char *create_opts,
                                       const char *open_opts, struct vdk_node **file)
{
    extern const struct vdk_driver vdk_driver_qcow2;
    struct vdk_error *err = NULL;
    struct vdk_opts *fo = vdk_opts_new();
    vdk_opts_set(fo, "size", "0");
    assert_int_equal(vdk_open_protocol(file, name, fo, VDK_O_RDWR, &err), 0);
    struct vdk_opts *co = vdk_opts_new();
    vdk_opts_parse(co, create_opts, NULL, NULL);
    assert_int_equal(vdk_driver_qcow2.create(name, *file, co, &err), 0);
    vdk_opts_free(co);
    struct vdk_node *n = vdk_node_new_internal(&vdk_driver_qcow2, name);
    vdk_node_ref(*file);
    n->file = *file;
    struct vdk_opts *oo = NULL;
    if (open_opts) {
        oo = vdk_opts_new();
        vdk_opts_parse(oo, open_opts, NULL, NULL);
    }
    assert_int_equal(vdk_driver_qcow2.open(n, oo, VDK_O_RDWR, &err), 0);
    vdk_opts_free(oo);
    n->open_flags = VDK_O_RDWR;
    return n;
}

/* Overlapping writers: every thread writes the same few clusters (whole,
   partial, compressed, zeroed), so allocating writes meet on one guest
   cluster while another's data is in flight.  No cluster may be allocated
   twice (a leak) or lost (corruption), and each 512-byte sector holds a
   whole sector of one writer's pattern or zeros. */
static void *overlap_worker(void *arg)
{
    struct sjob *j = arg;
    uint8_t buf[3 * ST_CLUSTER];
    for (int it = 0; it < 2000 && !j->bad; it++) {
        uint64_t off = (srng(&j->seed) % (8 * ST_CLUSTER / 512)) * 512;
        uint64_t len = 512 * (1 + srng(&j->seed) % (sizeof(buf) / 512));
        if (off + len > 8 * ST_CLUSTER)
            len = 8 * ST_CLUSTER - off;
        uint64_t op = srng(&j->seed) % 8;
        int r;
        if (op == 0) {
            r = vdk_pwrite_zeroes(j->n, vdk_align_down(off, ST_CLUSTER), ST_CLUSTER, 0);
        } else if (op == 1) {
            memset(buf, 'A' + (int)j->idx, ST_CLUSTER);
            r = vdk_pwrite(j->n, buf, ST_CLUSTER, vdk_align_down(off, ST_CLUSTER),
                           VDK_REQ_COMPRESSED);
        } else {
            memset(buf, 'A' + (int)j->idx, len);
            r = vdk_pwrite(j->n, buf, len, off, 0);
        }
        if (r < 0) {
            fprintf(stderr, "overlap: op %d at %d: %s\n", (int)op, (int)off, strerror(-r));
            j->bad = 1;
        }
    }
    return NULL;
}

/* Four writers on the same 8 clusters: plain, compressed and zero writes
   that overlap.  Repeated, because the races it looks for (a compressed
   write committed while an allocating write of the same cluster was in
   flight leaked the compressed bytes) need a few rounds to show. */
static void overlap_round(unsigned round)
{
    struct vdk_node *file = NULL;
    struct vdk_error *err = NULL;
    struct vdk_node *n = open_mem_qcow2("memory://overlap", "size=1M,cluster_size=4k", NULL,
                                        &file);
    pthread_t th[4];
    struct sjob jobs[4];
    for (unsigned i = 0; i < 4; i++) {
        jobs[i] = (struct sjob){ n, NULL, i, 0x9e3779b9ull * (i + 7 + 4 * round), 0 };
        pthread_create(&th[i], NULL, overlap_worker, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].bad, 0);
    }
    uint8_t *all = malloc(8 * ST_CLUSTER);
    assert_int_equal(vdk_pread(n, all, 8 * ST_CLUSTER, 0, 0), 0);
    for (unsigned s = 0; s < 8 * ST_CLUSTER / 512; s++) {
        uint8_t c = all[s * 512];
        assert_true(c == 0 || (c >= 'A' && c <= 'D'));
        for (unsigned k = 1; k < 512; k++)
            assert_int_equal(all[s * 512 + k], c);
    }
    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    assert_int_equal(vdk_check(n, &res, 0, &err), 0);
    assert_int_equal(res.corruptions, 0);
    assert_int_equal(res.leaks, 0);
    free(all);
    vdk_node_unref(n);
    vdk_node_unref(file);
}

static void test_overlap(void **state)
{
    (void)state;
    for (unsigned round = 0; round < 8; round++)
        overlap_round(round);
}

static void test_stress(void **state)
{
    (void)state;
    struct vdk_node *file = NULL;
    struct vdk_error *err = NULL;
    struct vdk_node *n = open_mem_qcow2("memory://stress",
                                        "size=2M,cluster_size=4k,refcount_bits=4",
                                        "l2-cache-size=8k,refcount-cache-size=8k", &file);
    uint8_t *model = calloc(1, ST_CLUSTER * ST_CLUSTERS);
    pthread_t th[4];
    struct sjob jobs[4];
    for (unsigned i = 0; i < 4; i++) {
        jobs[i] = (struct sjob){ n, model, i, 0x1234567ull * (i + 1), 0 };
        pthread_create(&th[i], NULL, stress_worker, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].bad, 0);
    }
    uint8_t *all = malloc(ST_CLUSTER * ST_CLUSTERS);
    assert_int_equal(vdk_pread(n, all, ST_CLUSTER * ST_CLUSTERS, 0, 0), 0);
    assert_memory_equal(all, model, ST_CLUSTER * ST_CLUSTERS);
    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    assert_int_equal(vdk_check(n, &res, 0, &err), 0);
    assert_int_equal(res.corruptions, 0);
    assert_int_equal(res.leaks, 0);
    free(all);
    free(model);
    vdk_node_unref(n);
    vdk_node_unref(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refcount_widths),
        cmocka_unit_test(test_compress_roundtrip),
        cmocka_unit_test(test_deflate_matches_zlib),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_cycle),
        cmocka_unit_test(test_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
