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
    size_t log_pos;   /* ops logged when the flush returned */
    uint32_t step;    /* workload step of the flush */
    uint8_t *model;   /* guest content at that point */
};

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

static int failf(const char *sc, const char *fmt, const char *detail)
{
    fprintf(stderr, "qcow2-crash: %s: %s%s\n", sc, fmt, detail ? detail : "");
    return 1;
}

static void fill(uint8_t *p, size_t len, bool compressible)
{
    uint64_t v = rng();
    for (size_t i = 0; i < len; i++)
        p[i] = compressible ? (uint8_t)("qcow2 crash "[i % 12] + (v & 3)) : (uint8_t)rng();
}

/* Run the workload; returns 0 or 1 (failure printed). */
static int workload(const struct scenario *sc, struct vdk_node *n, struct vdk_node *rec,
                    uint8_t *model, uint32_t *last, uint64_t size,
                    struct flush_point *fp, int *nfp)
{
    uint64_t cs = vdk_node_cluster_size(n);
    uint8_t *buf = malloc(256 * 1024);
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
            if ((r = vdk_flush(n)) < 0)
                return failf(sc->name, "flush failed", NULL);
            fp[*nfp].log_pos = vdk_record_count(rec);
            fp[*nfp].step = step;
            fp[*nfp].model = malloc(size);
            memcpy(fp[*nfp].model, model, size);
            (*nfp)++;
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
            return failf(sc->name, "write failed: ", strerror(-r));
        for (uint64_t s = off / SECTOR; s < (off + len + SECTOR - 1) / SECTOR; s++)
            last[s] = step;
    }
    free(buf);
    return 0;
}

static int qemu_check(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "qemu-img check -q '%s' >/dev/null 2>&1", path);
    int st = system(cmd);
    if (!WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

static int run(const char *dir, const struct scenario *sc, uint64_t seed)
{
    char img[4096], base[4096], crash[4096], opts[512];
    uint64_t size = 4 << 20;
    rng_state = seed;
    snprintf(img, sizeof(img), "%s/%s.qcow2", dir, sc->name);
    snprintf(crash, sizeof(crash), "%s/%s-crash.qcow2", dir, sc->name);
    snprintf(opts, sizeof(opts), "%s", sc->opts);
    uint8_t *model = calloc(1, size);
    uint32_t *last = calloc(size / SECTOR, sizeof(*last));
    if (sc->backing) {
        snprintf(base, sizeof(base), "%s/%s-base.raw", dir, sc->name);
        fill(model, size, false);
        write_file(base, model, size);
        snprintf(opts, sizeof(opts), "%s,backing_file=%s-base.raw,backing_fmt=raw",
                 sc->opts, sc->name);
    }
    struct vdk_error *err = NULL;
    struct vdk_opts *o = vdk_opts_new();
    vdk_opts_parse(o, opts, NULL, NULL);
    if (vdk_create("qcow2", img, o, &err) < 0)
        return failf(sc->name, "create: ", vdk_error_msg(err));
    size_t blen = 0;
    uint8_t *start = read_file(img, &blen);
    struct vdk_node *n;
    o = vdk_opts_new();
    if (sc->open_opts)
        vdk_opts_parse(o, sc->open_opts, NULL, NULL);
    vdk_opts_set(o, "file.driver", "record");
    if (vdk_open(&n, img, "qcow2", o, VDK_O_RDWR, &err) < 0)
        return failf(sc->name, "open: ", vdk_error_msg(err));
    struct vdk_node *rec = vdk_node_file(n);
    struct flush_point fp[64];
    int nfp = 0;
    if (workload(sc, n, rec, model, last, size, fp, &nfp))
        return 1;
    /* Keep the log alive: take a reference to the record node. */
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
            /* Before the last flush: on disk.  After it: maybe. */
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
        /* The newest flush point whose marker is inside the kept prefix. */
        const struct flush_point *f = NULL;
        for (int i = 0; i < nfp; i++)
            if (have_flush && fp[i].log_pos <= lastflush + 1)
                f = &fp[i];
        struct vdk_node *c;
        if (vdk_open(&c, crash, "qcow2", NULL, VDK_O_SHARE, &err) < 0) {
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
        fprintf(stderr, "usage: qcow2-crash DIR\n");
        return 1;
    }
    int bad = 0;
    vdk_driver_set_test_extra(&vdk_driver_record);
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        bad |= run(argv[1], &scenarios[i], 0x9e3779b97f4a7c15ull + i);
    return bad;
}
