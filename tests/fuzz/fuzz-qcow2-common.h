/* SPDX-License-Identifier: MIT */
/*
 * Shared by the qcow2 fuzz targets: put the input in a memory node and
 * open the qcow2 driver directly over it.  An external data file named by
 * the input is replaced by a memory node, so no input can reach the disk.
 */
#ifndef FUZZ_QCOW2_COMMON_H
#define FUZZ_QCOW2_COMMON_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/driver.h"
#include "fuzz-util.h"
#include "formats/qcow2/qcow2.h"
#include "formats/qcow2/qcow2-bitmap.h"

extern const struct vdk_driver vdk_driver_qcow2;

static void fuzz_quiet(const char *msg, void *opaque) { (void)msg; (void)opaque; }

/*
 * Open qcow2 over file into *n (zeroed by the caller), with one extra open
 * option when key is not NULL.  0 or -errno.
 */
static int fuzz_open_opt(struct vdk_node *n, struct vdk_node *file, unsigned flags,
                         const char *key, const char *val)
{
    uint8_t h[80] = { 0 };
    vdk_set_warning_handler(fuzz_quiet, NULL);
    n->drv = &vdk_driver_qcow2;
    n->file = file;
    n->filename = (char *)"fuzz.qcow2";
    n->open_flags = flags;
    n->read_only = !(flags & VDK_O_RDWR);
    n->opaque = calloc(1, vdk_driver_qcow2.state_size);
    if (!n->opaque)
        return -ENOMEM;
    struct vdk_opts *o = vdk_opts_new();
    if (!o || (key && vdk_opts_set(o, key, val) < 0)) {
        free(n->opaque);
        n->opaque = NULL;
        vdk_opts_free(o);
        return -ENOMEM;
    }
    (void)vdk_pread(file, h, sizeof(h), 0, 0);
    if (q_be32(h + 4) >= 3 && (q_be64(h + 72) & QCOW2_INCOMPAT_DATA_FILE))
        vdk_opts_set(o, "data-file", "memory://fuzzdata");
    struct vdk_error *err = NULL;
    int r = vdk_driver_qcow2.open(n, o, flags, &err);
    vdk_error_free(err);
    vdk_opts_free(o);
    if (r < 0) {
        free(n->opaque);
        free(n->backing_file);
        free(n->backing_fmt);
        n->opaque = NULL;
        n->backing_file = n->backing_fmt = NULL;
    }
    return r;
}

static int fuzz_open(struct vdk_node *n, struct vdk_node *file, unsigned flags)
{
    return fuzz_open_opt(n, file, flags, NULL, NULL);
}

static void fuzz_close(struct vdk_node *n)
{
    vdk_driver_qcow2.close(n);
    free(n->opaque);
    free(n->backing_file);
    free(n->backing_fmt);
    n->opaque = NULL;
    n->backing_file = n->backing_fmt = NULL;
}

/* Open qcow2 over file with flags, run fn on it (when not NULL), close.
   Returns whether the open succeeded. */
static inline bool fuzz_with(struct vdk_node *file, unsigned flags,
                             void (*fn)(struct vdk_node *n))
{
    struct vdk_node n;
    memset(&n, 0, sizeof(n));
    if (fuzz_open(&n, file, flags) < 0)
        return false;
    if (fn)
        fn(&n);
    fuzz_close(&n);
    return true;
}

#endif
