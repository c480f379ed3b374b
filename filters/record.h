/* SPDX-License-Identifier: MIT */
/*
 * The "record" protocol: a pass-through to a file that logs every write,
 * size change and flush that reaches it, in order.  Crash-consistency
 * tests open a format with file.driver=record, run a workload, and replay
 * prefixes of the log (dropping unflushed writes at random) to build the
 * file states a power cut could leave.  Not in the driver table: a test
 * makes it visible with vdk_driver_set_test_extra(&vdk_driver_record).
 */
#ifndef VDK_FILTERS_RECORD_H
#define VDK_FILTERS_RECORD_H

#include <stddef.h>
#include <stdint.h>

struct vdk_node;
struct vdk_driver;

/* The driver (test seam: built into the tests' static library only). */
extern const struct vdk_driver vdk_driver_record;

enum vdk_record_kind { VDK_RECORD_WRITE, VDK_RECORD_FLUSH, VDK_RECORD_TRUNCATE };

struct vdk_record_op {
    enum vdk_record_kind kind;
    uint64_t offset; /* WRITE: file offset; TRUNCATE: new size */
    uint64_t len;
    uint8_t *data;   /* WRITE: len bytes */
};

/* Number of operations logged so far on a record node (0 for others). */
size_t vdk_record_count(struct vdk_node *n);
/* The i-th logged operation (valid until the node is closed), or NULL. */
const struct vdk_record_op *vdk_record_get(struct vdk_node *n, size_t i);

#endif /* VDK_FILTERS_RECORD_H */
