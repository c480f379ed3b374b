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

#define CUTS 16
#define SIZE (8u << 20)

struct flush_point {
    size_t log_pos;
    uint32_t step;
    uint8_t *model;
};

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

static int failf(const char *sc, const char *what, const char *detail)
{
    fprintf(stderr, "vhdx-crash: %s: %s%s\n", sc, what, detail ? detail : "");
    return 1;
}

static int workload(const struct scenario *sc, struct vdk_node *n, struct vdk_node *rec,
                    uint8_t *model, uint32_t *last, struct flush_point *fp, int *nfp)
{
    uint8_t *buf = malloc(1 << 20);
    uint32_t step = 0, ss = sc->sector;
    for (int i = 0; i < 40; i++) {
        step++;
        int op = (int)(rng() % 8), r;
        uint64_t len = vdk_align_up(1 + rng() % (300 * 1024), ss);
        uint64_t off = vdk_align_down(rng() % (SIZE - len), ss);
        if (op == 7) {
            if (vdk_flush(n) < 0)
                return failf(sc->name, "flush failed", NULL);
            fp[*nfp] = (struct flush_point){ vdk_record_count(rec), step, malloc(SIZE) };
            memcpy(fp[*nfp].model, model, SIZE);
            (*nfp)++;
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
            return failf(sc->name, "write failed: ", strerror(-r));
        for (uint64_t s = off / 512; s < (off + len) / 512; s++)
            last[s] = step;
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

static int verify(const struct scenario *sc, const uint8_t *g, const uint32_t *last,
                  const struct flush_point *f, const char *how, size_t cut)
{
    for (uint64_t s = 0; f && s < SIZE / 512; s++)
        if (last[s] <= f->step && memcmp(g + s * 512, f->model + s * 512, 512)) {
            char d[128];
            snprintf(d, sizeof(d), "sector %" PRIu64 " (%s, cut %zu)", s, how, cut);
            return failf(sc->name, "flushed data lost at ", d);
        }
    return 0;
}

static int run(const char *dir, const struct scenario *sc, uint64_t seed)
{
    char img[1024], par[1024], crash[1024], copy[1024], cmd[8192], opts[1600];
    struct vdk_error *err = NULL;
    rng_state = seed;
    snprintf(img, sizeof(img), "%s/%s.vhdx", dir, sc->name);
    snprintf(crash, sizeof(crash), "%s/%s-crash.vhdx", dir, sc->name);
    snprintf(copy, sizeof(copy), "%s/%s-copy.vhdx", dir, sc->name);
    uint8_t *model = calloc(1, SIZE), *g = malloc(SIZE), *before;
    uint32_t *last = calloc(SIZE / 512, sizeof(*last));
    snprintf(opts, sizeof(opts), "%s", sc->opts);
    if (sc->parent) {
        snprintf(par, sizeof(par), "%s/%s-parent.vhdx", dir, sc->name);
        struct vdk_opts *po = vdk_opts_new();
        vdk_opts_parse(po, "size=8M,block_size=1M", NULL, NULL);
        struct vdk_node *p;
        if (vdk_create("vhdx", par, po, &err) < 0 ||
            vdk_open(&p, par, "vhdx", NULL, VDK_O_RDWR, &err) < 0)
            return failf(sc->name, "parent: ", vdk_error_msg(err));
        for (uint64_t k = 0; k < SIZE; k++)
            model[k] = (uint8_t)rng();
        vdk_pwrite(p, model, SIZE, 0, 0);
        vdk_close(p);
        snprintf(opts, sizeof(opts), "%s,backing_file=%s-parent.vhdx,backing_fmt=vhdx",
                 sc->opts, sc->name);
    }
    struct vdk_opts *o = vdk_opts_new();
    vdk_opts_parse(o, opts, NULL, NULL);
    if (vdk_create("vhdx", img, o, &err) < 0)
        return failf(sc->name, "create: ", vdk_error_msg(err));
    size_t blen = 0;
    uint8_t *start = read_file(img, &blen);
    struct vdk_node *n;
    o = vdk_opts_new();
    vdk_opts_set(o, "file.driver", "record");
    if (vdk_open(&n, img, "vhdx", o, VDK_O_RDWR, &err) < 0)
        return failf(sc->name, "open: ", vdk_error_msg(err));
    struct vdk_node *rec = vdk_node_file(n);
    struct flush_point fp[64];
    int nfp = 0;
    if (workload(sc, n, rec, model, last, fp, &nfp))
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
        const struct flush_point *f = NULL;
        for (int i = 0; i < nfp; i++)
            if (have_flush && fp[i].log_pos <= lastflush + 1)
                f = &fp[i];
        /* read-only: in-memory replay, file untouched */
        if (read_all(crash, VDK_O_SHARE, g, &err) < 0) {
            bad = failf(sc->name, "read-only open of a crash state: ", vdk_error_msg(err));
            free(st);
            break;
        }
        size_t l2 = 0;
        before = read_file(crash, &l2);
        if (l2 != len || memcmp(before, st, len))
            bad = failf(sc->name, "a read-only open wrote the file", NULL);
        free(before);
        free(st);
        if (!bad)
            bad = verify(sc, g, last, f, "read-only", cut);
        /* qemu's repair of a copy */
        if (!bad && sc->qemu) {
            snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && qemu-img check -q -r all -f vhdx '%s' "
                     ">/dev/null 2>&1; qemu-img check -q -f vhdx '%s' >/dev/null 2>&1 && "
                     "qemu-img convert -f vhdx -O raw '%s' '%s.raw'", crash, copy, copy, copy,
                     copy, copy);
            if (shell(cmd) != 0) {
                bad = failf(sc->name, "qemu-img does not accept a crash state", NULL);
                break;
            }
            snprintf(cmd, sizeof(cmd), "%s.raw", copy);
            size_t ql = 0;
            uint8_t *q = read_file(cmd, &ql);
            if (!q || ql != SIZE || memcmp(q, g, SIZE))
                bad = failf(sc->name, "qemu-img's repair reads differently from vdk", NULL);
            free(q);
        }
        /* read-write: replay in place */
        if (!bad && read_all(crash, VDK_O_RDWR, g, &err) < 0)
            bad = failf(sc->name, "read-write open of a crash state: ", vdk_error_msg(err));
        if (!bad)
            bad = verify(sc, g, last, f, "read-write", cut);
        checked++;
    }
    vdk_node_unref(rec);
    for (int i = 0; i < nfp; i++)
        free(fp[i].model);
    free(model);
    free(g);
    free(last);
    free(start);
    if (!bad)
        printf("%s: %d crash states of %zu logged operations OK\n", sc->name, checked, total);
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
