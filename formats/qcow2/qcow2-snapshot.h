/* SPDX-License-Identifier: MIT */
/*
 * qcow2 internal snapshots (formats/qcow2/qcow2-snapshot.c), and the
 * cluster-tree refcount walk shared by snapshots and make_empty.
 *
 * The snapshot table is read from the image for every operation (it is
 * small and snapshot operations are rare), so no state is kept between
 * calls.  Every field read from it is bounded; a bad table gives a clear
 * error, never a crash or a write.
 *
 * Refcount rule (as QEMU): the refcount of a data cluster is the number of
 * L1 trees (the active one and each snapshot's) that reach it, whether or
 * not they share the L2 table in between; an L2 table's refcount is the
 * number of L1 tables pointing at it.  COPIED is set exactly on the active
 * tree's entries whose refcount is one.
 *
 * All functions run on the control thread and take s->lock themselves.
 */
#ifndef VDK_QCOW2_SNAPSHOT_H
#define VDK_QCOW2_SNAPSHOT_H

#include "formats/qcow2/qcow2.h"

/* Bounds on the snapshot table (as QEMU's). */
#define QCOW2_MAX_SNAPSHOTS        65536u
#define QCOW2_MAX_SNAPSHOTS_BYTES  (64u << 20)
#define QCOW2_MAX_SN_EXTRA         1024u
#define QCOW2_MAX_SN_ID            127u    /* fits vdk_snapshot_info.id */
#define QCOW2_SN_EXTRA_V3          24u     /* vm_state_size, disk_size, icount */

/* The table as a write open needs it: offset cluster aligned (even with
   no snapshots, as qemu checks), every entry within bounds. */
int qcow2_snapshot_validate(struct vdk_node *n, struct vdk_error **errp);
int qcow2_snapshot_create(struct vdk_node *n, const char *name, struct vdk_error **errp);
int qcow2_snapshot_goto(struct vdk_node *n, const char *id_or_name,
                        struct vdk_error **errp);
int qcow2_snapshot_delete(struct vdk_node *n, const char *id_or_name,
                          struct vdk_error **errp);
int qcow2_snapshot_list(struct vdk_node *n, struct vdk_snapshot_info **list, int *count,
                        struct vdk_error **errp);

/*
 * Open-time hook: make a read-only node show the snapshot named by id
 * and/or name (open options snapshot.id / snapshot.name; both given must
 * both match).  Replaces the in-memory L1 table; the size stays the
 * image's current one (as QEMU).
 */
int qcow2_snapshot_load_tmp(struct vdk_node *n, const char *id, const char *name,
                            struct vdk_error **errp);

/* make_empty: drop the whole active tree so the backing file shows. */
int qcow2_make_empty(struct vdk_node *n, struct vdk_error **errp);

/* reopen: switch between read-only and read-write (flags VDK_O_RDWR or 0). */
int qcow2_reopen(struct vdk_node *n, unsigned flags, struct vdk_error **errp);

#endif /* VDK_QCOW2_SNAPSHOT_H */
