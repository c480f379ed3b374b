/* SPDX-License-Identifier: MIT */
/* The "record" protocol: see record.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/driver.h"
#include "filters/record.h"

/* Bound on what a test may log (memory). */
#define RECORD_MAX_BYTES (1ull << 30)

struct record_state {
    pthread_mutex_t lock;
    struct vdk_record_op *ops;
    size_t n, cap;
    uint64_t bytes;
};

static const struct vdk_opt_desc record_open_opts[] = {
    { "filename", VDK_OPT_STRING, "File to pass through to", NULL, NULL },
    { NULL, 0, NULL, NULL, NULL },
};

static int log_op(struct vdk_node *n, enum vdk_record_kind kind, uint64_t off,
                  uint64_t len, const void *data)
{
    struct record_state *s = n->opaque;
    int r = 0;
    pthread_mutex_lock(&s->lock);
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        struct vdk_record_op *o = realloc(s->ops, cap * sizeof(*o));
        if (!o)
            r = -ENOMEM;
        else {
            s->ops = o;
            s->cap = cap;
        }
    }
    if (r == 0 && data && (s->bytes += len) > RECORD_MAX_BYTES)
        r = -ENOSPC;
    struct vdk_record_op op = { kind, off, len, NULL };
    if (r == 0 && data) {
        op.data = malloc(len ? len : 1);
        if (!op.data)
            r = -ENOMEM;
        else
            memcpy(op.data, data, len);
    }
    if (r == 0)
        s->ops[s->n++] = op;
    pthread_mutex_unlock(&s->lock);
    return r;
}

static int record_open(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                       struct vdk_error **errp)
{
    struct record_state *s = n->opaque;
    const char *fn = vdk_opts_get(opts, "filename");
    if (!fn)
        return vdk_error_setf(errp, EINVAL, "record: no file name given");
    int r = vdk_open_protocol(&n->file, fn, NULL, flags, errp);
    if (r < 0)
        return r;
    pthread_mutex_init(&s->lock, NULL);
    n->growable = n->file->growable;
    n->size = n->file->size;
    n->limits = n->file->limits;
    return 0;
}

static void record_close(struct vdk_node *n)
{
    struct record_state *s = n->opaque;
    for (size_t i = 0; i < s->n; i++)
        free(s->ops[i].data);
    free(s->ops);
    pthread_mutex_destroy(&s->lock);
}

static int record_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *buf,
                        unsigned flags)
{
    return vdk_pread(n->file, buf, bytes, offset, flags);
}

static int record_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                         const void *buf, unsigned flags)
{
    int r = log_op(n, VDK_RECORD_WRITE, offset, bytes, buf);
    if (r == 0)
        r = vdk_pwrite(n->file, buf, bytes, offset, flags);
    return r;
}

static int record_flush(struct vdk_node *n)
{
    /* The generic layer flushes n->file after this returns; logging first
       is conservative (a cut just after the marker keeps fewer writes). */
    return log_op(n, VDK_RECORD_FLUSH, 0, 0, NULL);
}

static int64_t record_get_length(struct vdk_node *n)
{
    return vdk_get_length(n->file);
}

static int record_truncate(struct vdk_node *n, uint64_t size, enum vdk_prealloc prealloc,
                           bool allow_shrink, struct vdk_error **errp)
{
    int r = log_op(n, VDK_RECORD_TRUNCATE, size, 0, NULL);
    if (r < 0)
        return vdk_error_setf(errp, r, "record: cannot log");
    return vdk_truncate(n->file, size, prealloc, allow_shrink, errp);
}

size_t vdk_record_count(struct vdk_node *n)
{
    if (!n || n->drv != &vdk_driver_record)
        return 0;
    struct record_state *s = n->opaque;
    pthread_mutex_lock(&s->lock);
    size_t c = s->n;
    pthread_mutex_unlock(&s->lock);
    return c;
}

const struct vdk_record_op *vdk_record_get(struct vdk_node *n, size_t i)
{
    if (!n || n->drv != &vdk_driver_record)
        return NULL;
    struct record_state *s = n->opaque;
    pthread_mutex_lock(&s->lock);
    const struct vdk_record_op *o = i < s->n ? &s->ops[i] : NULL;
    pthread_mutex_unlock(&s->lock);
    return o;
}

const struct vdk_driver vdk_driver_record = {
    .name = "record",
    .kind = VDK_DRV_PROTOCOL,
    .state_size = sizeof(struct record_state),
    .open_opts = record_open_opts,
    .open = record_open,
    .close = record_close,
    .pread = record_pread,
    .pwrite = record_pwrite,
    .flush = record_flush,
    .get_length = record_get_length,
    .truncate = record_truncate,
};
