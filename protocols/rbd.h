/* SPDX-License-Identifier: MIT */
/*
 * The rbd protocol driver's shared state (rbd.c: connecting, opening and
 * the request path; rbd-image.c: create, resize, snapshots, reopen).
 */
#ifndef VDK_PROTOCOLS_RBD_H
#define VDK_PROTOCOLS_RBD_H

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "block/driver.h"
#include "protocols/rbd-spec.h"

/* Defaults for the bounded waits (seconds; 0 means wait for ever). */
#define RBD_CONNECT_TIMEOUT_DEFAULT 30
#define RBD_OP_TIMEOUT_DEFAULT 60
#define RBD_TIMEOUT_MAX 86400

/* Where and how to connect: the parsed name plus the timeouts. */
struct rbd_where {
    struct rbd_spec spec;
    uint64_t connect_timeout; /* client_mount_timeout (and the ceph CLI's) */
    uint64_t op_timeout;      /* rados_osd_op_timeout, rados_mon_op_timeout */
    bool lock;                /* writers take the exclusive lock */
};

struct rbd_state {
    struct rbd_where where;
    char *display;            /* pool/[ns/]image[@snap] */
    rados_t cluster;
    rados_ioctx_t io;
    rbd_image_t image;
    uint64_t features;
    bool locked;              /* we hold the exclusive lock (managed) */
};

/*
 * Fill *w from the open or create options: either filename ("rbd:...")
 * or pool=, namespace=, image=, snapshot=, conf=, user=; plus the
 * timeouts.  Consumes the keys it reads.  0 or -errno with errp set.
 */
int vdk_rbd_where_from_opts(struct rbd_where *w, struct vdk_opts *opts, bool for_create,
                            struct vdk_error **errp);

/* Connect to the cluster and open the pool (and namespace) of w. */
int vdk_rbd_connect(const struct rbd_where *w, rados_t *cluster, rados_ioctx_t *io,
                    struct vdk_error **errp);
void vdk_rbd_disconnect(rados_t cluster, rados_ioctx_t io);

/* Open the image read-only or writable (taking the lock if asked), with a
   clear message for a missing image or snapshot and a held lock. */
int vdk_rbd_open_image(struct rbd_state *s, bool writable, rbd_image_t *out,
                       struct vdk_error **errp);

extern const struct vdk_opt_desc vdk_rbd_create_opts[];
int vdk_rbd_create(const char *filename, struct vdk_node *file, struct vdk_opts *opts,
                   struct vdk_error **errp);
int vdk_rbd_truncate(struct vdk_node *n, uint64_t size, enum vdk_prealloc prealloc,
                     bool allow_shrink, struct vdk_error **errp);
int vdk_rbd_reopen(struct vdk_node *n, unsigned flags, struct vdk_error **errp);
int vdk_rbd_get_info(struct vdk_node *n, struct vdk_driver_info *info,
                     struct vdk_error **errp);
int vdk_rbd_snapshot_create(struct vdk_node *n, const char *name, struct vdk_error **errp);
int vdk_rbd_snapshot_goto(struct vdk_node *n, const char *name, struct vdk_error **errp);
int vdk_rbd_snapshot_delete(struct vdk_node *n, const char *name, struct vdk_error **errp);
int vdk_rbd_snapshot_list(struct vdk_node *n, struct vdk_snapshot_info **list, int *count,
                          struct vdk_error **errp);

#endif
