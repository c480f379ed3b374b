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
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "block/driver.h"
#include "filters/record.h"
#include "vdk/block.h"
#include "tests/unit/qcow2/crash-util.h"

#define SECTOR 512u
#define CUTS 24

struct flush_point {
    size_t log_pos;
    uint32_t step;
    uint8_t *model;
};

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

static int failf(const char *sc, const char *msg, const char *detail)
{
    fprintf(stderr, "vmdk-crash: %s: %s%s\n", sc, msg, detail ? detail : "");
    return 1;
}

static void fill(uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)rng();
}

static int workload(const struct scenario *sc, struct vdk_node *n, struct vdk_node *rec,
                    uint8_t *model, uint32_t *last, uint64_t size, struct flush_point *fp,
                    int *nfp)
{
    uint8_t *buf = malloc(256 * 1024);
    uint32_t step = 0;
    for (int i = 0; i < 60; i++) {
        step++;
        int r, op = (int)(rng() % 8);
        uint64_t len = 512 * (1 + rng() % 400);
        uint64_t off = vdk_align_down(rng() % (size - len), SECTOR);
        if (op == 7) {
            if (vdk_flush(n) < 0)
                return failf(sc->name, "flush failed", NULL);
            fp[*nfp].log_pos = vdk_record_count(rec);
            fp[*nfp].step = step;
            fp[*nfp].model = malloc(size);
            memcpy(fp[*nfp].model, model, size);
            (*nfp)++;
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
            return failf(sc->name, "write failed: ", strerror(-r));
        for (uint64_t s = off / SECTOR; s < (off + len) / SECTOR; s++)
            last[s] = step;
    }
    free(buf);
    return 0;
}

static int qemu_check(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "qemu-img check -q -f vmdk '%s' >/dev/null 2>&1", path);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int make_base(const char *dir, const struct scenario *sc, uint8_t *model, uint64_t size)
{
    char base[4096];
    struct vdk_error *err = NULL;
    struct vdk_opts *o = vdk_opts_new();
    struct vdk_node *b;
    snprintf(base, sizeof(base), "%s/%s-base.vmdk", dir, sc->name);
    vdk_opts_parse(o, "size=4M", NULL, NULL);
    if (vdk_create("vmdk", base, o, &err) < 0 ||
        vdk_open(&b, base, "vmdk", NULL, VDK_O_RDWR, &err) < 0)
        return failf(sc->name, "base: ", vdk_error_msg(err));
    fill(model, size);
    int r = vdk_pwrite(b, model, size, 0, 0);
    vdk_close(b);
    return r < 0 ? failf(sc->name, "base write failed", NULL) : 0;
}

static int run(const char *dir, const struct scenario *sc, uint64_t seed)
{
    char img[4096], crash[4096], opts[512];
    uint64_t size = 4 << 20;
    rng_state = seed;
    snprintf(img, sizeof(img), "%s/%s.vmdk", dir, sc->name);
    snprintf(crash, sizeof(crash), "%s/%s-crash.vmdk", dir, sc->name);
    snprintf(opts, sizeof(opts), "%s", sc->opts);
    uint8_t *model = calloc(1, size);
    uint32_t *last = calloc(size / SECTOR, sizeof(*last));
    if (sc->backing) {
        if (make_base(dir, sc, model, size))
            return 1;
        snprintf(opts, sizeof(opts), "%s,backing_file=%s-base.vmdk,backing_fmt=vmdk",
                 sc->opts, sc->name);
    }
    struct vdk_error *err = NULL;
    struct vdk_opts *o = vdk_opts_new();
    vdk_opts_parse(o, opts, NULL, NULL);
    if (vdk_create("vmdk", img, o, &err) < 0)
        return failf(sc->name, "create: ", vdk_error_msg(err));
    size_t blen = 0;
    uint8_t *start = read_file(img, &blen);
    struct vdk_node *n;
    o = vdk_opts_new();
    vdk_opts_set(o, "file.driver", "record");
    if (vdk_open(&n, img, "vmdk", o, VDK_O_RDWR, &err) < 0)
        return failf(sc->name, "open: ", vdk_error_msg(err));
    struct vdk_node *rec = vdk_node_file(n);
    struct flush_point fp[64];
    int nfp = 0;
    if (workload(sc, n, rec, model, last, size, fp, &nfp))
        return 1;
    vdk_node_ref(rec);
    vdk_close(n);
    size_t total = vdk_record_count(rec);
    int bad = 0, checked = 0;
    for (int k = 0; k < CUTS && !bad; k++) {
        size_t cut = k == CUTS - 1 ? total : (size_t)(rng() % (total + 1));
        size_t lastflush = 0;
        bool have_flush = false;
        for (size_t i = 0; i < cut; i++)
            if (vdk_record_get(rec, i)->kind == VDK_RECORD_FLUSH) {
                lastflush = i;
                have_flush = true;
            }
        size_t cap = blen, len = blen;
        uint8_t *st = malloc(cap ? cap : 1);
        memcpy(st, start, blen);
        for (size_t i = 0; i < cut; i++) {
            const struct vdk_record_op *op = vdk_record_get(rec, i);
            if (op->kind == VDK_RECORD_FLUSH)
                continue;
            bool keep = (have_flush && i < lastflush) || k == CUTS - 1 || (rng() & 1);
            if (!keep && op->kind == VDK_RECORD_WRITE)
                continue;
            uint64_t end = op->kind == VDK_RECORD_WRITE ? op->offset + op->len : op->offset;
            if (end > cap) {
                cap = end * 2;
                st = realloc(st, cap);
            }
            if (end > len) {
                memset(st + len, 0, end - len);
                len = end;
            }
            if (op->kind == VDK_RECORD_TRUNCATE)
                len = end;
            else
                memcpy(st + op->offset, op->data, op->len);
        }
        write_file(crash, st, len);
        free(st);
        int rc = qemu_check(crash);
        if (rc != 0 && rc != 3) {
            char d[64];
            snprintf(d, sizeof(d), "%d (cut %zu of %zu)", rc, cut, total);
            bad = failf(sc->name, "qemu-img check of a crash state exited ", d);
            break;
        }
        const struct flush_point *f = NULL;
        for (int i = 0; i < nfp; i++)
            if (have_flush && fp[i].log_pos <= lastflush + 1)
                f = &fp[i];
        struct vdk_node *c;
        if (vdk_open(&c, crash, "vmdk", NULL, VDK_O_SHARE, &err) < 0) {
            bad = failf(sc->name, "vdk cannot open a crash state: ", vdk_error_msg(err));
            break;
        }
        uint8_t *g = malloc(size);
        if (vdk_pread(c, g, size, 0, 0) < 0)
            bad = failf(sc->name, "vdk cannot read a crash state", NULL);
        for (uint64_t s = 0; f && !bad && s < size / SECTOR; s++)
            if (last[s] <= f->step && memcmp(g + s * SECTOR, f->model + s * SECTOR, SECTOR)) {
                char d[96];
                snprintf(d, sizeof(d), "sector %" PRIu64 " (cut %zu of %zu)", s, cut, total);
                bad = failf(sc->name, "flushed data lost at ", d);
            }
        free(g);
        vdk_close(c);
        checked++;
    }
    vdk_node_unref(rec);
    for (int i = 0; i < nfp; i++)
        free(fp[i].model);
    free(model);
    free(last);
    free(start);
    if (!bad)
        printf("%s: %d crash states of %zu logged operations OK\n", sc->name, checked, total);
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
