/* SPDX-License-Identifier: MIT */
/*
 * Crash consistency of VHDX block allocation and log writes.
 *
 *   vhdx-crash DIR
 *
 * For each scenario (allocation in a dynamic image, whole-block zeroes
 * and discard, a differencing child copying from its parent, 4096-byte
 * sectors) the image is opened over the "record" protocol, a random
 * workload runs with flushes in between, and the log of file writes is
 * replayed up to random cut points: every write before the last flush
 * before the cut is kept, each write after it kept or dropped at random.
 * Every such crash state must open in vdk read-only (the VHDX log replayed
 * in memory, the file untouched) and read back every sector whose last
 * write was acknowledged before that flush; a read-write open must replay
 * the log in place and give the same data; where qemu can read the image
 * (512-byte sectors, no parent) `qemu-img check -r all` on a copy must
 * leave it clean with the same data.  Deterministic (fixed seeds).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/driver.h"
#include "tests/unit/crash-replay.h"

#define CUTS 16
#define SIZE (8u << 20)

struct scenario {
    const char *name;
    const char *opts;
    bool parent;
    bool zeroes;
    bool qemu;     /* qemu-img can open the image */
    uint32_t sector;
};

static const struct scenario scenarios[] = {
    { "alloc", "size=8M,block_size=1M", false, false, true, 512 },
    { "zero-discard", "size=8M,block_size=1M", false, true, true, 512 },
    { "diff", "block_size=1M", true, false, false, 512 },
    { "sector4k", "size=8M,block_size=1M,logical_sector_size=4096", false, true, false, 4096 },
};

static int workload(struct vdk_node *n, struct crash_run *cr, const void *scp)
{
    const struct scenario *sc = scp;
    uint8_t *buf = malloc(1 << 20), *model = cr->model;
    uint32_t step = 0, ss = sc->sector;
    for (int i = 0; i < 40; i++) {
        step++;
        int op = (int)(rng() % 8), r;
        uint64_t len = vdk_align_up(1 + rng() % (300 * 1024), ss);
        uint64_t off = vdk_align_down(rng() % (SIZE - len), ss);
        if (op == 7) {
            if (crash_flush(cr, n, step))
                return 1;
            continue;
        }
        if (sc->zeroes && op >= 5) {
            off = vdk_align_down(off, 1 << 20);
            len = 1 << 20;
            r = vdk_pwrite_zeroes(n, off, len, VDK_REQ_MAY_UNMAP);
            memset(model + off, 0, len);
        } else {
            for (uint64_t k = 0; k < len; k++)
                buf[k] = (uint8_t)rng();
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

static int shell(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Guest data of img opened with flags, into g. */
static int read_all(const char *img, unsigned flags, uint8_t *g, struct vdk_error **err)
{
    struct vdk_node *c;
    int r = vdk_open(&c, img, "vhdx", NULL, flags, err);
    if (r < 0)
        return r;
    r = vdk_pread(c, g, SIZE, 0, 0);
    vdk_close(c);
    return r;
}

struct vhdx_check {
    const struct scenario *sc;
    const char *copy;   /* where qemu-img repairs a copy */
    uint8_t *g;         /* SIZE bytes of guest data */
};

/*
 * A crash state opens read-only (log replayed in memory, file untouched)
 * with the flushed data; qemu-img repairs a copy to the same data where
 * it reads the image; a read-write open replays the log in place.
 */
static int check_state(struct crash_run *cr, const struct crash_state *st, void *opaque)
{
    struct vhdx_check *vc = opaque;
    struct vdk_error *err = NULL;
    char cmd[8192];
    const char *copy = vc->copy;
    uint8_t *g = vc->g;
    if (read_all(st->path, VDK_O_SHARE, g, &err) < 0)
        return crash_fail(cr, "read-only open of a crash state: ", vdk_error_msg(err));
    size_t l2 = 0;
    uint8_t *before = read_file(st->path, &l2);
    int bad = 0;
    if (!before || l2 != st->len || memcmp(before, st->data, st->len))
        bad = crash_fail(cr, "a read-only open wrote the file", NULL);
    free(before);
    if (!bad)
        bad = crash_verify(cr, g, st, "read-only");
    if (!bad && vc->sc->qemu) {
        snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && qemu-img check -q -r all -f vhdx '%s' "
                 ">/dev/null 2>&1; qemu-img check -q -f vhdx '%s' >/dev/null 2>&1 && "
                 "qemu-img convert -f vhdx -O raw '%s' '%s.raw'", st->path, copy, copy, copy,
                 copy, copy);
        if (shell(cmd) != 0)
            return crash_fail(cr, "qemu-img does not accept a crash state", NULL);
        snprintf(cmd, sizeof(cmd), "%s.raw", copy);
        size_t ql = 0;
        uint8_t *q = read_file(cmd, &ql);
        if (!q || ql != SIZE || memcmp(q, g, SIZE))
            bad = crash_fail(cr, "qemu-img's repair reads differently from vdk", NULL);
        free(q);
    }
    if (!bad && read_all(st->path, VDK_O_RDWR, g, &err) < 0)
        bad = crash_fail(cr, "read-write open of a crash state: ", vdk_error_msg(err));
    if (!bad)
        bad = crash_verify(cr, g, st, "read-write");
    return bad;
}

static int make_parent(const char *dir, struct crash_run *cr)
{
    char par[1024];
    struct vdk_error *err = NULL;
    snprintf(par, sizeof(par), "%s/%s-parent.vhdx", dir, cr->name);
    struct vdk_opts *po = vdk_opts_new();
    vdk_opts_parse(po, "size=8M,block_size=1M", NULL, NULL);
    struct vdk_node *p;
    if (vdk_create("vhdx", par, po, &err) < 0 ||
        vdk_open(&p, par, "vhdx", NULL, VDK_O_RDWR, &err) < 0)
        return crash_fail(cr, "parent: ", vdk_error_msg(err));
    for (uint64_t k = 0; k < SIZE; k++)
        cr->model[k] = (uint8_t)rng();
    vdk_pwrite(p, cr->model, SIZE, 0, 0);
    vdk_close(p);
    return 0;
}

static int run(const char *dir, const struct scenario *sc, uint64_t seed)
{
    char img[1024], crash[1024], copy[1024], opts[1600];
    struct crash_run cr;
    crash_run_init(&cr, "vhdx-crash", sc->name, SIZE);
    rng_state = seed;
    snprintf(img, sizeof(img), "%s/%s.vhdx", dir, sc->name);
    snprintf(crash, sizeof(crash), "%s/%s-crash.vhdx", dir, sc->name);
    snprintf(copy, sizeof(copy), "%s/%s-copy.vhdx", dir, sc->name);
    snprintf(opts, sizeof(opts), "%s", sc->opts);
    int bad = 0;
    if (sc->parent) {
        bad = make_parent(dir, &cr);
        snprintf(opts, sizeof(opts), "%s,backing_file=%s-parent.vhdx,backing_fmt=vhdx",
                 sc->opts, sc->name);
    }
    struct vhdx_check vc = { sc, copy, malloc(SIZE) };
    if (!bad)
        bad = crash_record_replay(&cr, img, "vhdx", opts, NULL, workload, sc, crash, CUTS,
                                  check_state, &vc);
    free(vc.g);
    crash_run_free(&cr);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: vhdx-crash DIR\n");
        return 1;
    }
    int bad = 0;
    vdk_driver_set_test_extra(&vdk_driver_record);
    vdk_set_warning_handler(NULL, NULL);
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        bad |= run(argv[1], &scenarios[i], 0x9e3779b97f4a7c15ull + 7 * i);
    return bad;
}
