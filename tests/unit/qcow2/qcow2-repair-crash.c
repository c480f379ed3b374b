/* SPDX-License-Identifier: MIT */
/*
 * Crash consistency of `check -r all` on a damaged qcow2 image.
 *
 *   qcow2-repair-crash DAMAGED GUEST.raw CRASH
 *
 * DAMAGED is repaired over the "record" protocol, then the log of its file
 * writes is replayed up to every cut point: keeping every write; keeping
 * each write after the last flush before the cut only at random; and
 * dropping each one of those unflushed writes in turn.
 * Each crash state (written to CRASH, next to DAMAGED so a relative backing
 * file name still resolves) must be one of two things:
 *   - the old image: refcount_table_offset/clusters unchanged and every
 *     byte of DAMAGED unchanged (the file may have grown);
 *   - a repaired image: `qemu-img check` finds no corruption (leaks
 *     allowed) and the guest data equal GUEST.raw (`qemu-img compare`).
 * Deterministic (fixed seed).  Exit 0 when every state passes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "block/driver.h"
#include "filters/record.h"
#include "vdk/block.h"
#include "tests/unit/qcow2/crash-util.h"


/* Exit status of a shell command, -1 if it did not exit normally. */
static int run(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

enum { KEEP_ALL = -1, DROP_RANDOM = -2 };

/* Writes after the last flush before `cut`. */
static int unflushed(struct vdk_node *rec, size_t cut)
{
    int m = 0;
    for (size_t i = 0; i < cut; i++) {
        enum vdk_record_kind k = vdk_record_get(rec, i)->kind;
        m = k == VDK_RECORD_FLUSH ? 0 : m + (k == VDK_RECORD_WRITE);
    }
    return m;
}

/* The file after the first `cut` logged operations; of the unflushed
   writes, `drop` keeps all, keeps each at random, or drops the one with
   that index. */
static uint8_t *replay(struct vdk_node *rec, const uint8_t *start, size_t blen,
                       size_t cut, int drop, size_t *out_len)
{
    int j = 0;
    size_t lastflush = 0, cap = blen ? blen : 1, len = blen;
    for (size_t i = 0; i < cut; i++)
        if (vdk_record_get(rec, i)->kind == VDK_RECORD_FLUSH)
            lastflush = i + 1;
    uint8_t *st = malloc(cap);
    if (!st)
        return NULL;
    memcpy(st, start, blen);
    for (size_t i = 0; i < cut; i++) {
        const struct vdk_record_op *op = vdk_record_get(rec, i);
        if (op->kind == VDK_RECORD_FLUSH)
            continue;
        if (op->kind == VDK_RECORD_WRITE && i >= lastflush) {
            bool skip = drop == DROP_RANDOM ? (rng() & 1) : drop == j;
            j++;
            if (skip)
                continue;
        }
        uint64_t end = op->kind == VDK_RECORD_WRITE ? op->offset + op->len : op->offset;
        if (end > cap) {
            uint8_t *p = realloc(st, end * 2);
            if (!p) {
                free(st);
                return NULL;
            }
            st = p;
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
    *out_len = len;
    return st;
}

/* 0 if the state at CRASH is the old image or a sound repaired one. */
static int judge(const char *crash, const char *guest, const uint8_t *start, size_t blen,
                 const uint8_t *st, size_t len, size_t cut, size_t total, int *nnew)
{
    char cmd[8400];
    if (len >= 60 && blen >= 60 && !memcmp(st + 48, start + 48, 12)) {
        if (len < blen || memcmp(st, start, blen)) {
            fprintf(stderr, "cut %zu of %zu: old header but the old image changed\n",
                    cut, total);
            return 1;
        }
        return 0;
    }
    (*nnew)++;
    snprintf(cmd, sizeof(cmd), "qemu-img check -q '%s' >/dev/null 2>&1", crash);
    int rc = run(cmd);
    if (rc != 0 && rc != 3) {
        fprintf(stderr, "cut %zu of %zu: qemu-img check exited %d\n", cut, total, rc);
        return 1;
    }
    snprintf(cmd, sizeof(cmd), "qemu-img compare -q -f qcow2 -F raw '%s' '%s'", crash, guest);
    if ((rc = run(cmd)) != 0) {
        fprintf(stderr, "cut %zu of %zu: guest data differ (compare exited %d)\n", cut,
                total, rc);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: qcow2-repair-crash DAMAGED GUEST.raw CRASH\n");
        return 1;
    }
    const char *img = argv[1], *guest = argv[2], *crash = argv[3];
    rng_state = 0x243f6a8885a308d3ull;
    vdk_driver_set_test_extra(&vdk_driver_record);
    size_t blen = 0;
    uint8_t *start = read_file(img, &blen);
    if (!start) {
        fprintf(stderr, "cannot read %s\n", img);
        return 1;
    }
    struct vdk_error *err = NULL;
    struct vdk_opts *o = vdk_opts_new();
    struct vdk_node *n;
    vdk_opts_set(o, "file.driver", "record");
    if (vdk_open(&n, img, "qcow2", o, VDK_O_RDWR | VDK_O_CHECK_REPAIR | VDK_O_NO_BACKING,
                 &err) < 0) {
        fprintf(stderr, "open: %s\n", vdk_error_msg(err));
        return 1;
    }
    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    if (vdk_check(n, &res, VDK_CHECK_FIX_LEAKS | VDK_CHECK_FIX_ERRORS, &err) < 0 ||
        res.corruptions || res.check_errors) {
        fprintf(stderr, "repair failed: %s\n", err ? vdk_error_msg(err) : "corruptions left");
        return 1;
    }
    struct vdk_node *rec = vdk_node_file(n);
    vdk_node_ref(rec); /* keep the log past the close */
    vdk_close(n);
    size_t total = vdk_record_count(rec);
    int bad = 0, nnew = 0, states = 0;
    for (size_t cut = 0; cut <= total && !bad; cut++) {
        int m = unflushed(rec, cut);
        /* Keep all; with unflushed writes also random and single drops. */
        for (int v = 0; v < (m ? m + 2 : 1) && !bad; v++) {
            int drop = v == 0 ? KEEP_ALL : v == 1 ? DROP_RANDOM : v - 2;
            size_t len = 0;
            uint8_t *st = replay(rec, start, blen, cut, drop, &len);
            if (!st || write_file(crash, st, len) < 0) {
                fprintf(stderr, "cannot write %s\n", crash);
                bad = 1;
            } else {
                bad = judge(crash, guest, start, blen, st, len, cut, total, &nnew);
            }
            free(st);
            states++;
        }
    }
    if (!bad && nnew == 0) {
        fprintf(stderr, "no crash state reached the repaired image\n");
        bad = 1;
    }
    vdk_node_unref(rec);
    free(start);
    if (!bad)
        printf("%d crash states of %zu logged operations OK (%d repaired)\n", states,
               total, nnew);
    return bad;
}
