/* SPDX-License-Identifier: MIT */
/*
 * The "fault" filter driver (see fault.h).  Every request is decided
 * whole before it reaches the child: a failing write writes nothing, and
 * the filter sees exactly the client's range (alignment 1, no splitting
 * below VDK_MAX_REQUEST), so a request one byte outside a fault's range
 * never fails and one overlapping it by one byte always matches.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block/driver.h"
#include "filters/fault.h"

struct fault_state {
    bool has_own;                 /* the node's keys name a fault */
    struct fault own;
    struct fault_control *ctl;    /* control=PATH, or NULL */
};

static int fault_open(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                      struct vdk_error **errp)
{
    struct fault_state *s = n->opaque;
    if (!n->file)
        return vdk_error_setf(errp, EINVAL, "fault: no image below (give file.filename=)");
    int64_t len = vdk_get_length(n->file);
    if (len < 0)
        return vdk_error_setf_errno(errp, (int)len, "fault: cannot get the size of '%s'",
                                    n->file->filename);
    const char *control = vdk_opts_get(opts, "control");
    /* Without control=, the node's keys are the fault (defaults: every
       request fails with EIO); with it, only if they name one. */
    s->has_own = !control || fault_opts_have_keys(opts);
    int r = fault_parse(&s->own, opts, (uint64_t)len ? (uint64_t)len : 1, "fault", errp);
    if (r < 0)
        return r;
    if (control && (r = fault_control_open(&s->ctl, control, (uint64_t)len ? (uint64_t)len : 1,
                                           errp)) < 0)
        return r;
    n->size = (uint64_t)len;
    n->cluster_size = n->file->cluster_size;
    n->growable = n->file->growable;
    n->limits = (struct vdk_limits){
        .request_alignment = 1,
        .max_transfer = VDK_MAX_REQUEST,
        .opt_transfer = n->file->limits.opt_transfer,
        .max_pwrite_zeroes = UINT32_MAX,
        .pwrite_zeroes_alignment = 1,
        .discard_alignment = 1,
    };
    n->supported_write_flags = n->file->supported_write_flags | VDK_REQ_FUA;
    n->supported_zero_flags = VDK_REQ_MAY_UNMAP | VDK_REQ_FUA;
    (void)flags;
    return 0;
}

static void fault_close(struct vdk_node *n)
{
    struct fault_state *s = n->opaque;
    fault_control_close(s->ctl);
}

static void decide(struct fault *f, unsigned op, uint64_t offset, uint64_t bytes,
                   int *err, uint64_t *delay)
{
    if (!fault_fires(f, op, offset, bytes))
        return;
    if (f->delay_ns)
        *delay += f->delay_ns;
    else if (!*err)
        *err = f->err;
}

/* 0: go on; -errno: fail the request.  Sleeps for the delays that fire. */
static int fault_check(struct vdk_node *n, unsigned op, uint64_t offset, uint64_t bytes)
{
    struct fault_state *s = n->opaque;
    int err = 0;
    uint64_t delay = 0;
    if (s->has_own)
        decide(&s->own, op, offset, bytes, &err, &delay);
    if (s->ctl) {
        const struct fault_set *set = fault_control_get(s->ctl);
        for (size_t i = 0; i < set->n; i++)
            decide(&set->f[i], op, offset, bytes, &err, &delay);
        fault_control_put(s->ctl);
    }
    if (delay) {
        if (delay > FAULT_MAX_DELAY_NS)
            delay = FAULT_MAX_DELAY_NS;
        struct timespec ts = { (time_t)(delay / 1000000000ull),
                               (long)(delay % 1000000000ull) };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
    return -err;
}

static int fault_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *buf,
                       unsigned flags)
{
    int r = fault_check(n, FAULT_OP_READ, offset, bytes);
    return r < 0 ? r : vdk_pread(n->file, buf, bytes, offset, flags);
}

static int fault_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                        const void *buf, unsigned flags)
{
    int r = fault_check(n, FAULT_OP_WRITE, offset, bytes);
    return r < 0 ? r : vdk_pwrite(n->file, buf, bytes, offset, flags);
}

static int fault_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                               unsigned flags)
{
    int r = fault_check(n, FAULT_OP_ZERO, offset, bytes);
    return r < 0 ? r : vdk_pwrite_zeroes(n->file, offset, bytes, flags);
}

static int fault_discard(struct vdk_node *n, uint64_t offset, uint64_t bytes)
{
    int r = fault_check(n, FAULT_OP_TRIM, offset, bytes);
    return r < 0 ? r : vdk_discard(n->file, offset, bytes);
}

static int fault_flush(struct vdk_node *n)
{
    /* The generic layer flushes the child after this, unless it fails. */
    return fault_check(n, FAULT_OP_FLUSH, 0, 0);
}

/* The range a read fault may hit reads as data here, whatever lies below:
   a client that skips holes (NBD structured reads, sparse convert) must
   still issue the read so that it can fail.  Elsewhere: the child's. */
static void covered_read(struct fault *f, uint64_t offset, bool *cov, uint64_t *until)
{
    uint64_t u;
    if (fault_covers_read(f, offset, &u))
        *cov = true;
    if (u < *until)
        *until = u;
}

static int fault_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                              uint64_t *pnum, uint64_t *map, struct vdk_node **file)
{
    struct fault_state *s = n->opaque;
    bool cov = false;
    uint64_t until = UINT64_MAX;
    if (s->has_own)
        covered_read(&s->own, offset, &cov, &until);
    if (s->ctl) {
        const struct fault_set *set = fault_control_get(s->ctl);
        for (size_t i = 0; i < set->n; i++)
            covered_read(&set->f[i], offset, &cov, &until);
        fault_control_put(s->ctl);
    }
    *pnum = until > offset ? vdk_min_u64(bytes, until - offset) : bytes;
    if (cov)
        return VDK_BS_DATA | VDK_BS_ALLOCATED;
    *map = offset;
    *file = n->file;
    return VDK_BS_RECURSE | VDK_BS_OFFSET_VALID;
}

static int64_t fault_get_length(struct vdk_node *n)
{
    return vdk_get_length(n->file);
}

static int fault_get_info(struct vdk_node *n, struct vdk_driver_info *info,
                          struct vdk_error **errp)
{
    /* Report what lies below (cluster size guides NBD block sizes). */
    if (n->file->drv->get_info)
        return n->file->drv->get_info(n->file, info, errp);
    return 0;
}

const struct vdk_driver vdk_driver_fault = {
    .name = "fault",
    .kind = VDK_DRV_FILTER,
    .state_size = sizeof(struct fault_state),
    .open_opts = vdk_fault_keys,
    .open = fault_open,
    .close = fault_close,
    .pread = fault_pread,
    .pwrite = fault_pwrite,
    .pwrite_zeroes = fault_pwrite_zeroes,
    .discard = fault_discard,
    .flush = fault_flush,
    .block_status = fault_block_status,
    .get_length = fault_get_length,
    .get_info = fault_get_info,
};
