/* SPDX-License-Identifier: MIT */
/*
 * The rbd protocol driver's shared state (rbd.c: connecting, opening and
 * the request path; rbd-image.c: create, resize, snapshots, reopen).
 */
#ifndef VDK_PROTOCOLS_RBD_H
#define VDK_PROTOCOLS_RBD_H

#include "block/driver.h"
#include "protocols/rbd-lib.h"    /* librbd, librados: loaded on first use */
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
    bool no_cache;            /* cache=none: rbd_cache=false, as qemu */
};

/* Objects seen holding data by the last per-object block status
   (rbd-status.c), under lock. */
struct rbd_status_cache {
    pthread_mutex_t lock;
    bool ready;               /* lock initialised */
    uint64_t first, count;    /* the window: objects [first, first+count) */
    uint64_t *bits;           /* one per object: held data at filled_ns */
    uint64_t filled_ns;       /* CLOCK_MONOTONIC */
    uint64_t gen;             /* bumped by vdk_rbd_status_forget */
};

struct rbd_state {
    struct rbd_where where;
    char *display;            /* pool/[ns/]image[@snap] */
    rados_t cluster;
    rados_ioctx_t io;
    rbd_image_t image;
    uint64_t features;
    uint64_t obj_size;        /* bytes per object */
    bool locked;              /* we hold the exclusive lock (managed) */
    struct rbd_status_cache status;
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

/*
 * Block status (rbd-status.c): from rbd_diff_iterate2, per object from a
 * short-lived window when the image has a valid fast-diff.  init before
 * the first question, forget after anything that may turn data into holes
 * (our discards and zero writes, resize, rollback, reopen), destroy at
 * close (safe when init never ran).
 */
int vdk_rbd_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                         uint64_t *pnum, uint64_t *map, struct vdk_node **file);
void vdk_rbd_status_init(struct rbd_state *s);
void vdk_rbd_status_forget(struct rbd_state *s);
void vdk_rbd_status_destroy(struct rbd_state *s);

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
