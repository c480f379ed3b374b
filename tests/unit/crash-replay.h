/* SPDX-License-Identifier: MIT */
/*
 * Crash-consistency harness shared by the format crash programs
 * (tests/unit/qcow2/qcow2-crash.c, tests/unit/vmdk/vmdk-crash.c,
 * tests/unit/vhdx/vhdx-crash.c).
 *
 * A program creates an image, opens it over the "record" protocol with
 * crash_open_recorded(), runs its own workload (noting each write with
 * crash_note_write() and each flush with crash_flush()), then calls
 * crash_replay(): the log is replayed up to random cut points, every write
 * before the last flush before the cut kept and each later one kept or
 * dropped at random (the last cut keeps everything), and each such crash
 * state is written to a file and handed to the program's check callback.
 * crash_check_plain() is the check qcow2 and vmdk share.
 *
 * Header-only on purpose: it draws from the rng of crash-util.h, whose
 * state is per translation unit, so the programs keep their exact seeded
 * sequences.
 */
#ifndef VDK_TEST_CRASH_REPLAY_H
#define VDK_TEST_CRASH_REPLAY_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "filters/record.h"
#include "vdk/block.h"
#include "tests/unit/qcow2/crash-util.h"

#define CRASH_SECTOR 512u
#define CRASH_MAX_FLUSH 64

struct crash_flush_point {
    size_t log_pos;   /* ops logged when the flush returned */
    uint32_t step;    /* workload step of the flush */
    uint8_t *model;   /* guest content at that point */
};

/* One scenario's recording: the guest model and what was flushed when. */
struct crash_run {
    const char *prog;          /* program name for messages */
    const char *name;          /* scenario name */
    uint64_t size;             /* guest size */
    uint8_t *model;            /* current guest content (size bytes) */
    uint32_t *last;            /* step of each 512-byte sector's last write */
    struct vdk_node *rec;      /* the record node under the image */
    uint8_t *start;            /* file content before the workload */
    size_t start_len;
    struct crash_flush_point fp[CRASH_MAX_FLUSH];
    int nfp;
};

/* One crash state handed to a check callback. */
struct crash_state {
    const char *path;                      /* the crash image, already written */
    const uint8_t *data;                   /* its bytes */
    size_t len;
    const struct crash_flush_point *flushed; /* newest flush kept, or NULL */
    size_t cut, total;
};

/* 0 if the state is good; 1 after printing a failure. */
typedef int (*crash_check_fn)(struct crash_run *run, const struct crash_state *st,
                              void *opaque);

static inline int crash_fail(const struct crash_run *run, const char *what, const char *detail)
{
    fprintf(stderr, "%s: %s: %s%s\n", run->prog, run->name, what, detail ? detail : "");
    return 1;
}

/* Zeroed model and last-write map for a guest of size bytes. */
static inline void crash_run_init(struct crash_run *run, const char *prog, const char *name,
                                  uint64_t size)
{
    memset(run, 0, sizeof(*run));
    run->prog = prog;
    run->name = name;
    run->size = size;
    run->model = calloc(1, size);
    run->last = calloc(size / CRASH_SECTOR, sizeof(*run->last));
}

static inline void crash_run_free(struct crash_run *run)
{
    if (run->rec)
        vdk_node_unref(run->rec);
    for (int i = 0; i < run->nfp; i++)
        free(run->fp[i].model);
    free(run->model);
    free(run->last);
    free(run->start);
}

/*
 * Keep img's current bytes as the replay base, then open it as fmt
 * (extra open options in open_opts, or NULL) over the record protocol.
 */
static inline int crash_open_recorded(struct crash_run *run, const char *img, const char *fmt,
                                      const char *open_opts, struct vdk_node **n)
{
    struct vdk_error *err = NULL;
    run->start = read_file(img, &run->start_len);
    if (!run->start)
        return crash_fail(run, "cannot read the new image", NULL);
    struct vdk_opts *o = vdk_opts_new();
    if (open_opts)
        vdk_opts_parse(o, open_opts, NULL, NULL);
    vdk_opts_set(o, "file.driver", "record");
    if (vdk_open(n, img, fmt, o, VDK_O_RDWR, &err) < 0)
        return crash_fail(run, "open: ", vdk_error_msg(err));
    run->rec = vdk_node_file(*n);
    /* Keep the log alive past vdk_close() of the image. */
    vdk_node_ref(run->rec);
    return 0;
}

/* Flush n and remember the model as of workload step. */
static inline int crash_flush(struct crash_run *run, struct vdk_node *n, uint32_t step)
{
    if (vdk_flush(n) < 0)
        return crash_fail(run, "flush failed", NULL);
    if (run->nfp == CRASH_MAX_FLUSH)
        return crash_fail(run, "too many flushes", NULL);
    struct crash_flush_point *f = &run->fp[run->nfp++];
    f->log_pos = vdk_record_count(run->rec);
    f->step = step;
    f->model = malloc(run->size);
    memcpy(f->model, run->model, run->size);
    return 0;
}

/* Every sector touched by [off, off + len) was last written at step. */
static inline void crash_note_write(struct crash_run *run, uint64_t off, uint64_t len,
                                    uint32_t step)
{
    for (uint64_t s = off / CRASH_SECTOR; s < (off + len + CRASH_SECTOR - 1) / CRASH_SECTOR; s++)
        run->last[s] = step;
}

/*
 * Fail if guest data g lost a sector whose last write came before the
 * flush f (no flush: nothing to check).  how, if not NULL, names the way
 * the state was opened.
 */
static inline int crash_verify(const struct crash_run *run, const uint8_t *g,
                               const struct crash_state *st, const char *how)
{
    const struct crash_flush_point *f = st->flushed;
    for (uint64_t s = 0; f && s < run->size / CRASH_SECTOR; s++)
        if (run->last[s] <= f->step &&
            memcmp(g + s * CRASH_SECTOR, f->model + s * CRASH_SECTOR, CRASH_SECTOR)) {
            char d[128];
            snprintf(d, sizeof(d), "sector %" PRIu64 " (%s%scut %zu of %zu)", s,
                     how ? how : "", how ? ", " : "", st->cut, st->total);
            return crash_fail(run, "flushed data lost at ", d);
        }
    return 0;
}

/*
 * Replay the recorded log into cuts crash states at path and check each;
 * 0 if all pass, 1 at the first failure.  *checked counts the states.
 */
static inline int crash_replay(struct crash_run *run, const char *path, int cuts,
                               crash_check_fn check, void *opaque, int *checked)
{
    struct vdk_node *rec = run->rec;
    size_t total = vdk_record_count(rec);
    int bad = 0;
    *checked = 0;
    for (int k = 0; k < cuts && !bad; k++) {
        size_t cut = k == cuts - 1 ? total : (size_t)(rng() % (total + 1));
        size_t lastflush = 0;
        bool have_flush = false;
        for (size_t i = 0; i < cut; i++)
            if (vdk_record_get(rec, i)->kind == VDK_RECORD_FLUSH) {
                lastflush = i;
                have_flush = true;
            }
        size_t cap = run->start_len, len = run->start_len;
        uint8_t *st = malloc(cap ? cap : 1);
        if (!st)
            return crash_fail(run, "out of memory replaying to ", path);
        memcpy(st, run->start, run->start_len);
        for (size_t i = 0; i < cut; i++) {
            const struct vdk_record_op *op = vdk_record_get(rec, i);
            if (op->kind == VDK_RECORD_FLUSH)
                continue;
            /* Before the last flush: on disk.  After it: maybe. */
            bool keep = (have_flush && i < lastflush) || k == cuts - 1 || (rng() & 1);
            if (!keep && op->kind == VDK_RECORD_WRITE)
                continue;
            uint64_t end = op->kind == VDK_RECORD_WRITE ? op->offset + op->len : op->offset;
            if (end > cap) {
                uint8_t *grown = realloc(st, end * 2);
                if (!grown) {
                    free(st);
                    return crash_fail(run, "out of memory replaying to ", path);
                }
                st = grown;
                cap = end * 2;
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
        if (write_file(path, st, len) < 0) {
            free(st);
            return crash_fail(run, "cannot write a crash state to ", path);
        }
        /* The newest flush point whose marker is inside the kept prefix. */
        const struct crash_flush_point *f = NULL;
        for (int i = 0; i < run->nfp; i++)
            if (have_flush && run->fp[i].log_pos <= lastflush + 1)
                f = &run->fp[i];
        struct crash_state state = { path, st, len, f, cut, total };
        bad = check(run, &state, opaque);
        free(st);
        if (!bad)
            (*checked)++;
    }
    if (!bad)
        printf("%s: %d crash states of %zu logged operations OK\n", run->name, *checked, total);
    return bad;
}

/* A program's workload over the recorded image n; 0 or 1 (printed). */
typedef int (*crash_workload_fn)(struct vdk_node *n, struct crash_run *run, const void *sc);

/*
 * The whole scenario: create img as fmt (create_opts), open it recorded
 * (open_opts or NULL), run workload(n, run, sc), then crash_replay()
 * into path with check.  0 or 1 (printed).
 */
static inline int crash_record_replay(struct crash_run *run, const char *img, const char *fmt,
                                      const char *create_opts, const char *open_opts,
                                      crash_workload_fn workload, const void *sc,
                                      const char *path, int cuts, crash_check_fn check,
                                      void *opaque)
{
    struct vdk_error *err = NULL;
    struct vdk_opts *o = vdk_opts_new();
    struct vdk_node *n;
    int checked;
    vdk_opts_parse(o, create_opts, NULL, NULL);
    if (vdk_create(fmt, img, o, &err) < 0)
        return crash_fail(run, "create: ", vdk_error_msg(err));
    int bad = crash_open_recorded(run, img, fmt, open_opts, &n);
    if (bad)
        return bad;
    bad = workload(n, run, sc);
    vdk_close(n);
    return bad ? bad : crash_replay(run, path, cuts, check, opaque, &checked);
}

/* For crash_check_plain(): the format, and qemu-img's -f (NULL: probe). */
struct crash_plain {
    const char *fmt;
    const char *qemu_fmt;
};

/*
 * The check of qcow2 and vmdk: `qemu-img check` finds no corruption
 * (leaks allowed), vdk opens the state and reads back flushed data.
 */
static inline int crash_check_plain(struct crash_run *run, const struct crash_state *st,
                                    void *opaque)
{
    const struct crash_plain *p = opaque;
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "qemu-img check -q%s%s '%s' >/dev/null 2>&1",
             p->qemu_fmt ? " -f " : "", p->qemu_fmt ? p->qemu_fmt : "", st->path);
    int ws = system(cmd), rc = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
    if (rc != 0 && rc != 3) {
        char d[64];
        snprintf(d, sizeof(d), "%d (cut %zu of %zu)", rc, st->cut, st->total);
        return crash_fail(run, "qemu-img check of a crash state exited ", d);
    }
    struct vdk_error *err = NULL;
    struct vdk_node *c;
    if (vdk_open(&c, st->path, p->fmt, NULL, VDK_O_SHARE, &err) < 0)
        return crash_fail(run, "vdk cannot open a crash state: ", vdk_error_msg(err));
    uint8_t *g = malloc(run->size);
    int bad = 0;
    if (vdk_pread(c, g, run->size, 0, 0) < 0)
        bad = crash_fail(run, "vdk cannot read a crash state", NULL);
    if (!bad)
        bad = crash_verify(run, g, st, NULL);
    free(g);
    vdk_close(c);
    return bad;
}

#endif
