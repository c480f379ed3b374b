/* SPDX-License-Identifier: MIT */
/*
 * Crash consistency of VMDK sparse allocation, by record and replay (as
 * tests/unit/qcow2/qcow2-crash.c does for qcow2).
 *
 *   vmdk-crash DIR
 *
 * For each scenario (allocating writes, zeroed-grain writes, copy-on-write
 * from a VMDK parent, a twoGbMaxExtentSparse extent) the image is opened
 * with its sparse file over the "record" protocol, a random workload runs
 * with flushes in between, and the log of file writes is replayed up to
 * random cut points: every write before the last flush before the cut is
 * kept, each later one is kept or dropped at random.  Every crash state
 * must pass `qemu-img check` (no grain table entry past the end of the
 * file), open in vdk, and read back every sector whose last write came
 * before that flush.  Deterministic (fixed seeds).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/driver.h"
#include "tests/unit/crash-replay.h"

#define SECTOR 512u
#define CUTS 24

struct scenario {
    const char *name;
    const char *opts;
    bool backing;
    bool zeroes;
};

static const struct scenario scenarios[] = {
    { "alloc", "size=4M", false, false },
    { "zeroed-grain", "size=4M,zeroed_grain=on", false, true },
    { "cow", "size=4M", true, false },
};

static void fill(uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)rng();
}

static int workload(struct vdk_node *n, struct crash_run *cr, const void *scp)
{
    const struct scenario *sc = scp;
    uint8_t *buf = malloc(256 * 1024), *model = cr->model;
    uint64_t size = cr->size;
    uint32_t step = 0;
    for (int i = 0; i < 60; i++) {
        step++;
        int r, op = (int)(rng() % 8);
        uint64_t len = 512 * (1 + rng() % 400);
        uint64_t off = vdk_align_down(rng() % (size - len), SECTOR);
        if (op == 7) {
            if (crash_flush(cr, n, step))
                return 1;
            continue;
        }
        if (sc->zeroes && op >= 5) {
            off = vdk_align_down(off, 65536);
            len = vdk_align_up(len, 65536);
            if (off + len > size)
                len = size - off;
            r = vdk_pwrite_zeroes(n, off, len, VDK_REQ_MAY_UNMAP);
            memset(model + off, 0, len);
        } else {
            fill(buf, len);
            r = vdk_pwrite(n, buf, len, off, 0);
            memcpy(model + off, buf, len);
        }
        if (r < 0)
            return crash_fail(cr, "write failed: ", strerror(-r));
        crash_note_write(cr, off, len, step);
    }
    free(buf);
    return 0;
}

static int make_base(const char *dir, struct crash_run *cr)
{
    char base[4096];
    struct vdk_error *err = NULL;
    struct vdk_opts *o = vdk_opts_new();
    struct vdk_node *b;
    snprintf(base, sizeof(base), "%s/%s-base.vmdk", dir, cr->name);
    vdk_opts_parse(o, "size=4M", NULL, NULL);
    if (vdk_create("vmdk", base, o, &err) < 0 ||
        vdk_open(&b, base, "vmdk", NULL, VDK_O_RDWR, &err) < 0)
        return crash_fail(cr, "base: ", vdk_error_msg(err));
    fill(cr->model, cr->size);
    int r = vdk_pwrite(b, cr->model, cr->size, 0, 0);
    vdk_close(b);
    return r < 0 ? crash_fail(cr, "base write failed", NULL) : 0;
}

static int run(const char *dir, const struct scenario *sc, uint64_t seed)
{
    char img[4096], crash[4096], opts[512];
    struct crash_run cr;
    crash_run_init(&cr, "vmdk-crash", sc->name, 4 << 20);
    rng_state = seed;
    snprintf(img, sizeof(img), "%s/%s.vmdk", dir, sc->name);
    snprintf(crash, sizeof(crash), "%s/%s-crash.vmdk", dir, sc->name);
    snprintf(opts, sizeof(opts), "%s", sc->opts);
    int bad = 0;
    if (sc->backing) {
        bad = make_base(dir, &cr);
        snprintf(opts, sizeof(opts), "%s,backing_file=%s-base.vmdk,backing_fmt=vmdk",
                 sc->opts, sc->name);
    }
    struct crash_plain plain = { "vmdk", "vmdk" };
    if (!bad)
        bad = crash_record_replay(&cr, img, "vmdk", opts, NULL, workload, sc, crash, CUTS,
                                  crash_check_plain, &plain);
    crash_run_free(&cr);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: vmdk-crash DIR\n");
        return 1;
    }
    int bad = 0;
    vdk_driver_set_test_extra(&vdk_driver_record);
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        bad |= run(argv[1], &scenarios[i], 0x51ed2701a3f4c9d7ull + i);
    return bad;
}
