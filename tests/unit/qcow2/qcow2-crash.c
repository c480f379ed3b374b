/* SPDX-License-Identifier: MIT */
/*
 * Crash consistency of qcow2 writes, as storage engines test it.
 *
 *   qcow2-crash DIR
 *
 * For each scenario (allocation, refcount-table growth, compressed
 * writes, discard and reuse, copy-on-write from a backing file, extended
 * L2, tiny metadata caches) the image is opened over the "record" protocol, a random workload
 * runs with flushes in between, and the log of file writes is replayed up
 * to random cut points: every write before the last flush before the cut
 * is kept, each write after it is kept or dropped at random.  Every such
 * crash state must pass `qemu-img check` (leaks allowed, no corruption),
 * open in vdk, and read back every sector whose last write was
 * acknowledged before that flush.  Deterministic (fixed seeds).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/driver.h"
#include "tests/unit/crash-replay.h"

#define CUTS 24

struct scenario {
    const char *name;
    const char *opts;
    bool backing;
    int kind; /* 0 random writes, 1 sequential, 2 compressed, 3 discard */
    const char *open_opts;
};

static const struct scenario scenarios[] = {
    { "alloc", "size=4M,cluster_size=64k", false, 0 },
    { "rtgrow", "size=4M,cluster_size=512,refcount_bits=64", false, 1 },
    { "compressed", "size=4M,cluster_size=64k,compression_type=zstd", false, 2 },
    { "discard", "size=4M,cluster_size=4k,refcount_bits=2", false, 3 },
    { "cow", "size=4M,cluster_size=64k", true, 0 },
    { "cow-extl2", "size=4M,cluster_size=64k,extended_l2=on", true, 0 },
    /* Tiny caches: tables are written back by eviction mid-workload. */
    { "tiny-cache", "size=4M,cluster_size=512,refcount_bits=16", false, 3,
      "l2-cache-size=1k,refcount-cache-size=1k" },
};

static void fill(uint8_t *p, size_t len, bool compressible)
{
    uint64_t v = rng();
    for (size_t i = 0; i < len; i++)
        p[i] = compressible ? (uint8_t)("qcow2 crash "[i % 12] + (v & 3)) : (uint8_t)rng();
}

/* Run the workload; returns 0 or 1 (failure printed). */
static int workload(struct vdk_node *n, struct crash_run *cr, const void *scp)
{
    const struct scenario *sc = scp;
    uint64_t cs = vdk_node_cluster_size(n), size = cr->size;
    uint8_t *buf = malloc(256 * 1024), *model = cr->model;
    uint32_t step = 0;
    int steps = sc->kind == 1 ? 48 : 60;
    for (int i = 0; i < steps; i++) {
        step++;
        uint64_t off, len;
        int r = 0, op = (int)(rng() % 8);
        if (sc->kind == 1) {
            off = (uint64_t)i * 65536 % size;
            len = 65536;
            op = 0;
        } else {
            len = 1 + rng() % (200 * 1024);
            off = rng() % (size - len);
            if (sc->kind == 2 && op < 5) {
                off = vdk_align_down(off, cs);
                len = cs;
                op = 8;
            }
        }
        if (op == 7 || (sc->kind == 1 && i % 6 == 5)) {
            if (crash_flush(cr, n, step))
                return 1;
            continue;
        }
        if (sc->kind == 3 && op >= 5) {
            off = vdk_align_down(off, cs);
            len = vdk_align_up(len, cs);
            if (off + len > size)
                len = size - off;
            r = op == 5 ? vdk_discard(n, off, len)
                        : vdk_pwrite_zeroes(n, off, len, VDK_REQ_MAY_UNMAP);
            memset(model + off, 0, len);
        } else {
            fill(buf, len, op == 8 || (op & 1));
            r = vdk_pwrite(n, buf, len, off, op == 8 ? VDK_REQ_COMPRESSED : 0);
            memcpy(model + off, buf, len);
        }
        if (r < 0)
            return crash_fail(cr, "write failed: ", strerror(-r));
        crash_note_write(cr, off, len, step);
    }
    free(buf);
    return 0;
}

static int run(const char *dir, const struct scenario *sc, uint64_t seed)
{
    char img[4096], base[4096], crash[4096], opts[512];
    struct crash_run cr;
    crash_run_init(&cr, "qcow2-crash", sc->name, 4 << 20);
    rng_state = seed;
    snprintf(img, sizeof(img), "%s/%s.qcow2", dir, sc->name);
    snprintf(crash, sizeof(crash), "%s/%s-crash.qcow2", dir, sc->name);
    snprintf(opts, sizeof(opts), "%s", sc->opts);
    if (sc->backing) {
        snprintf(base, sizeof(base), "%s/%s-base.raw", dir, sc->name);
        fill(cr.model, cr.size, false);
        write_file(base, cr.model, cr.size);
        snprintf(opts, sizeof(opts), "%s,backing_file=%s-base.raw,backing_fmt=raw",
                 sc->opts, sc->name);
    }
    struct crash_plain p = { "qcow2", NULL };
    int bad = crash_record_replay(&cr, img, "qcow2", opts, sc->open_opts, workload, sc, crash,
                                  CUTS, crash_check_plain, &p);
    crash_run_free(&cr);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: qcow2-crash DIR\n");
        return 1;
    }
    int bad = 0;
    vdk_driver_set_test_extra(&vdk_driver_record);
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        bad |= run(argv[1], &scenarios[i], 0x9e3779b97f4a7c15ull + i);
    return bad;
}
