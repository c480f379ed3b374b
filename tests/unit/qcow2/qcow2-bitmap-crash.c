/* SPDX-License-Identifier: MIT */
/*
 * Crash consistency of qcow2 persistent dirty bitmaps stored on flush.
 *
 *   qcow2-bitmap-crash DIR
 *
 * An image holding an enabled bitmap "b" and a disabled one is opened
 * over the "record" protocol; random writes, write-zeroes and discards run
 * with flushes in between (each flush stores the bitmaps and clears their
 * in-use flag, the next write with new bits sets it again; one scenario
 * adds a bitmap midway, so its flush takes the full store; one limits the
 * rate of stores, so that a thread does many of them).  The log of
 * file writes is replayed to random cut points (tests/unit/crash-replay.h:
 * writes after the last flush before the cut kept or dropped at random).
 * Every crash state must pass `qemu-img check` (leaks allowed) and read
 * back flushed data; qemu-img info and vdk must agree on whether "b" is
 * in use; and a "b" not in use must be dirty wherever the guest data
 * differs from the image's start (all zeros): never a cleared flag with
 * stale bits.  Deterministic (fixed seeds), but for the rate-limited
 * scenario, whose thread's stores land where the timing puts them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/driver.h"
#include "tests/unit/crash-replay.h"

#define CUTS 48

/* Crash states whose bitmap "b" was consistent (coverage checked). */
static int consistent;

struct scenario {
    const char *name;
    const char *opts;
    uint64_t gran;
    bool add_midway;
    bool prefill;   /* the first 256 KiB allocated (zeros) before */
    const char *open_opts; /* NULL: every flush stores (deterministic) */
};

static const struct scenario scenarios[] = {
    /* 1 KiB of bitmap data in two 512-byte clusters: in-place rewrites
       and a data cluster allocated by the first bit in it. */
    { "bitmap-512", "size=4M,cluster_size=512", 512, false },
    { "bitmap-64k", "size=4M,cluster_size=64k", 65536, false },
    /* Chunks smaller than clusters, clusters allocated beforehand:
       writes go in place, reach the file with no flush of their own and
       set new bits, so "in use" must be on disk before them. */
    { "bitmap-sub", "size=4M,cluster_size=64k", 512, false, true },
    { "bitmap-add", "size=4M,cluster_size=4k", 4096, true },
    /* Stores rate-limited: many are left to the thread, at times that
       vary from run to run, as in a server. */
    { "bitmap-rate", "size=4M,cluster_size=64k", 65536, false, false, "bitmap-store-ms=20" },
};

static int workload(struct vdk_node *n, struct crash_run *cr, const void *scp)
{
    const struct scenario *sc = scp;
    struct vdk_error *err = NULL;
    uint64_t size = cr->size;
    uint8_t *buf = malloc(256 * 1024);
    uint32_t step = 0;
    for (int i = 0; i < 100; i++) {
        step++;
        int r = 0, op = (int)(rng() % 8);
        if (sc->prefill && op == 5) /* keep the clusters allocated */
            op = 0;
        if (sc->add_midway && i == 40 &&
            vdk_bitmap_op(n, VDK_BITMAP_ADD, "late", 0, &err) < 0)
            return crash_fail(cr, "bitmap add: ", vdk_error_msg(err));
        if (op == 7) {
            if (crash_flush(cr, n, step))
                return 1;
            continue;
        }
        /* Mostly the first 256 KiB, so that later flushes find chunks
           dirty already and leave the bitmap clean; sometimes anywhere. */
        uint64_t len = 1 + rng() % (op == 6 || sc->prefill ? 4096 : 64 * 1024);
        uint64_t top = rng() % 8 ? (256 << 10) : size;
        uint64_t off = rng() % (top - len);
        if (op == 5) { /* whole clusters: they read as zeros after */
            uint64_t cs = vdk_node_cluster_size(n);
            off = vdk_align_down(off, cs);
            len = vdk_align_up(len, cs);
            r = vdk_discard(n, off, len);
            memset(cr->model + off, 0, len);
        } else if (op == 6) {
            r = vdk_pwrite_zeroes(n, off, len, 0);
            memset(cr->model + off, 0, len);
        } else {
            for (uint64_t k = 0; k < len; k++)
                buf[k] = (uint8_t)(rng() | 1);
            r = vdk_pwrite(n, buf, len, off, 0);
            memcpy(cr->model + off, buf, len);
        }
        if (r < 0)
            return crash_fail(cr, "write failed: ", strerror(-r));
        crash_note_write(cr, off, len, step);
    }
    free(buf);
    return 0;
}

/* What qemu-img info says: 1 a bitmap in use, 0 bitmaps none in use,
   -1 no bitmaps (an extension left by a crash in the middle of marking
   them in use at the open, whose autoclear bit is clear), -2 it failed. */
static int qemu_in_use(const char *path)
{
    char cmd[4200], line[4096];
    snprintf(cmd, sizeof(cmd), "qemu-img info -U --output=json '%s' 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    int in_use = -1;
    while (fgets(line, sizeof(line), p)) {
        if (strstr(line, "\"bitmaps\"") && in_use < 0)
            in_use = 0;
        if (strstr(line, "\"in-use\""))
            in_use = 1;
    }
    return pclose(p) == 0 ? in_use : -2;
}

static int check(struct crash_run *run, const struct crash_state *st, void *opaque)
{
    (void)opaque;
    struct crash_plain p = { "qcow2", "qcow2" };
    int bad = crash_check_plain(run, st, &p);
    if (bad)
        return bad;
    struct vdk_error *err = NULL;
    struct vdk_node *c;
    if (vdk_open(&c, st->path, "qcow2", NULL, VDK_O_SHARE, &err) < 0)
        return crash_fail(run, "vdk cannot open a crash state: ", vdk_error_msg(err));
    struct vdk_bitmap_info *l = NULL;
    int cnt = 0, in_use = -1;
    if (vdk_bitmap_list(c, &l, &cnt, &err) < 0)
        bad = crash_fail(run, "bitmap list: ", vdk_error_msg(err));
    for (int i = 0; !bad && i < cnt; i++)
        if (strcmp(l[i].name, "b") == 0)
            in_use = l[i].in_use;
    vdk_bitmap_list_free(l, cnt);
    char d[160];
    snprintf(d, sizeof(d), " (cut %zu of %zu)", st->cut, st->total);
    /* No "b": the extension is ignored (a crash in the open's marking),
       as good as in use; qemu-img must not list it either. */
    if (!bad && qemu_in_use(st->path) != in_use)
        bad = crash_fail(run, "qemu-img info disagrees about in-use", d);
    uint8_t *g = in_use == 0 ? malloc(run->size) : NULL;
    consistent += !bad && in_use == 0;
    if (!bad && g && vdk_pread(c, g, run->size, 0, 0) < 0)
        bad = crash_fail(run, "cannot read a crash state", d);
    static const uint8_t zero[CRASH_SECTOR];
    for (uint64_t s = 0; !bad && g && s < run->size; s += CRASH_SECTOR) {
        uint64_t pnum;
        if (memcmp(g + s, zero, CRASH_SECTOR) == 0)
            continue;
        int r = vdk_bitmap_status(c, "b", s, CRASH_SECTOR, &pnum);
        if (r != 1) {
            snprintf(d, sizeof(d), "sector at %llu (status %d, cut %zu of %zu)",
                     (unsigned long long)s, r, st->cut, st->total);
            bad = crash_fail(run, "changed data not dirty in a consistent bitmap: ", d);
        }
    }
    free(g);
    vdk_close(c);
    return bad;
}

static int run(const char *dir, const struct scenario *sc, uint64_t seed)
{
    char img[4096], crash[4096];
    struct crash_run cr;
    struct vdk_error *err = NULL;
    struct vdk_node *n;
    crash_run_init(&cr, "qcow2-bitmap-crash", sc->name, 4 << 20);
    rng_state = seed;
    snprintf(img, sizeof(img), "%s/%s.qcow2", dir, sc->name);
    snprintf(crash, sizeof(crash), "%s/%s-crash.qcow2", dir, sc->name);
    struct vdk_opts *o = vdk_opts_new();
    vdk_opts_parse(o, sc->opts, NULL, NULL);
    int bad = vdk_create("qcow2", img, o, &err) < 0;
    if (bad)
        bad = crash_fail(&cr, "create: ", vdk_error_msg(err));
    if (!bad && vdk_open(&n, img, "qcow2", NULL, VDK_O_RDWR, &err) < 0)
        bad = crash_fail(&cr, "open: ", vdk_error_msg(err));
    if (!bad) {
        if (vdk_bitmap_op(n, VDK_BITMAP_ADD, "b", sc->gran, &err) < 0 ||
            vdk_bitmap_op(n, VDK_BITMAP_ADD_DISABLED, "off", 0, &err) < 0)
            bad = crash_fail(&cr, "bitmap add: ", vdk_error_msg(err));
        if (!bad && sc->prefill &&
            (vdk_pwrite(n, cr.model, 256 << 10, 0, 0) < 0 ||
             vdk_bitmap_op(n, VDK_BITMAP_CLEAR, "b", 0, &err) < 0))
            bad = crash_fail(&cr, "prefill failed", NULL);
        vdk_close(n);
    }
    if (!bad)
        bad = crash_open_recorded(&cr, img, "qcow2",
                                  sc->open_opts ? sc->open_opts : "bitmap-store-ms=0", &n);
    if (!bad) {
        bad = workload(n, &cr, sc);
        vdk_close(n);
    }
    int checked;
    consistent = 0;
    if (!bad)
        bad = crash_replay(&cr, crash, CUTS, check, NULL, &checked);
    if (!bad)
        printf("%s: bitmap consistent (and covering) in %d of them\n", sc->name, consistent);
    crash_run_free(&cr);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: qcow2-bitmap-crash DIR\n");
        return 1;
    }
    int bad = 0;
    vdk_driver_set_test_extra(&vdk_driver_record);
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        bad |= run(argv[1], &scenarios[i], 0x2545f4914f6cdd1dull + i);
    return bad;
}
