/* SPDX-License-Identifier: MIT */
/*
 * The raw format: the image is the file's bytes, optionally a window of
 * them (offset=, size=).  Everything passes through to the file child.
 */
#include <errno.h>
#include <inttypes.h>

#include "block/driver.h"

struct raw_state {
    uint64_t offset;
    bool has_size; /* fixed window: size does not follow the file */
};

static const struct vdk_opt_desc raw_open_opts[] = {
    { "offset", VDK_OPT_SIZE, "Offset of the image in the file", "0", NULL },
    { "size", VDK_OPT_SIZE, "Size of the image window (default: to end of file)",
      NULL, NULL },
    { NULL, 0, NULL, NULL, NULL },
};

static const struct vdk_opt_desc raw_create_opts[] = {
    { "size", VDK_OPT_SIZE, "Virtual disk size", NULL, NULL },
    { "preallocation", VDK_OPT_ENUM, "Preallocation mode", NULL,
      (const char *const[]){ "off", "falloc", "full", NULL } },
    { NULL, 0, NULL, NULL, NULL },
};

static int raw_probe(const uint8_t *buf, size_t len, const char *filename)
{
    return 1; /* anything is raw, as a last resort */
}

static int raw_open(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                    struct vdk_error **errp)
{
    struct raw_state *s = n->opaque;
    uint64_t size = 0;
    int r;
    if ((r = vdk_opts_get_size(opts, "offset", 0, &s->offset, errp)) < 0)
        return r;
    s->has_size = vdk_opts_has(opts, "size");
    if ((r = vdk_opts_get_size(opts, "size", 0, &size, errp)) < 0)
        return r;
    int64_t flen = vdk_get_length(n->file);
    if (flen < 0)
        return vdk_error_setf_errno(errp, (int)flen, "could not get the size of '%s'",
                                    n->filename);
    if (s->offset > (uint64_t)flen)
        return vdk_error_setf(errp, EINVAL, "offset %" PRIu64 " is beyond the end of "
                              "'%s' (%" PRId64 " bytes)", s->offset, n->filename, flen);
    if (s->has_size) {
        if (size > (uint64_t)flen - s->offset)
            return vdk_error_setf(errp, EINVAL, "the window offset=%" PRIu64 ",size=%" PRIu64
                                  " reaches past the end of '%s' (%" PRId64 " bytes)",
                                  s->offset, size, n->filename, flen);
        n->size = size;
    } else {
        /* Whole 512-byte sectors, the tail read as zeros: qemu-img's size
           (and what it converts) for a file of any length. */
        n->size = vdk_align_up((uint64_t)flen - s->offset, 512);
    }
    n->limits = n->file->limits;
    if (s->offset % n->limits.request_alignment)
        return vdk_error_setf(errp, EINVAL, "offset %" PRIu64 " is not a multiple of the "
                              "file's alignment %" PRIu32, s->offset,
                              n->limits.request_alignment);
    n->supported_write_flags = n->file->supported_write_flags;
    n->supported_zero_flags = n->file->supported_zero_flags;
    return 0;
}

static int raw_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *buf,
                     unsigned flags)
{
    struct raw_state *s = n->opaque;
    return vdk_pread(n->file, buf, bytes, s->offset + offset, flags);
}

static int raw_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                      const void *buf, unsigned flags)
{
    struct raw_state *s = n->opaque;
    return vdk_pwrite(n->file, buf, bytes, s->offset + offset, flags);
}

static int raw_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                             unsigned flags)
{
    struct raw_state *s = n->opaque;
    return vdk_pwrite_zeroes(n->file, s->offset + offset, bytes, flags);
}

static int raw_discard(struct vdk_node *n, uint64_t offset, uint64_t bytes)
{
    struct raw_state *s = n->opaque;
    return vdk_discard(n->file, s->offset + offset, bytes);
}

static int raw_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                            uint64_t *pnum, uint64_t *map, struct vdk_node **file)
{
    struct raw_state *s = n->opaque;
    *pnum = bytes;
    *map = s->offset + offset;
    *file = n->file;
    return VDK_BS_RECURSE | VDK_BS_OFFSET_VALID | VDK_BS_PLAIN;
}

static int raw_truncate(struct vdk_node *n, uint64_t size, enum vdk_prealloc prealloc,
                        bool allow_shrink, struct vdk_error **errp)
{
    struct raw_state *s = n->opaque;
    if (s->has_size || s->offset)
        return vdk_error_setf(errp, ENOTSUP, "cannot resize a raw image with an "
                              "offset or size window");
    if (prealloc == VDK_PREALLOC_METADATA)
        return vdk_error_setf(errp, EINVAL, "preallocation mode 'metadata' is not "
                              "supported for raw images (use off, falloc or full)");
    int r = vdk_truncate(n->file, size, prealloc, allow_shrink, errp);
    if (r == 0)
        n->size = size;
    return r;
}

/* The size and preallocation mode of a new raw image. */
static int raw_create_params(struct vdk_opts *opts, uint64_t *size, int *pa,
                             struct vdk_error **errp)
{
    int r = vdk_opts_get_size(opts, "size", 0, size, errp);
    if (r < 0)
        return r;
    *pa = vdk_opts_get_enum(opts, "preallocation", vdk_prealloc_names, VDK_PREALLOC_OFF,
                            errp);
    if (*pa < 0)
        return *pa;
    if (*pa == VDK_PREALLOC_METADATA)
        return vdk_error_setf(errp, EINVAL, "preallocation mode 'metadata' is not "
                              "supported for raw images (use off, falloc or full)");
    return 0;
}

static int raw_create_check(const char *filename, struct vdk_opts *opts,
                            struct vdk_error **errp)
{
    uint64_t size;
    int pa;
    return raw_create_params(opts, &size, &pa, errp);
}

static int raw_create(const char *filename, struct vdk_node *file, struct vdk_opts *opts,
                      struct vdk_error **errp)
{
    uint64_t size = 0;
    int pa;
    int r = raw_create_params(opts, &size, &pa, errp);
    if (r < 0)
        return r;
    return vdk_truncate(file, size, (enum vdk_prealloc)pa, true, errp);
}

static int raw_get_info(struct vdk_node *n, struct vdk_driver_info *info,
                        struct vdk_error **errp)
{
    info->has_dirty_flag = true; /* qemu-img prints "dirty-flag": false for raw */
    /* The protocol's allocation unit (an rbd image's object size), as
       qemu-img shows it for raw. */
    if (n->file && n->file->drv->kind == VDK_DRV_PROTOCOL && n->file->drv->get_info) {
        struct vdk_driver_info fi = { .cluster_size = n->file->cluster_size };
        if (n->file->drv->get_info(n->file, &fi, NULL) == 0)
            info->cluster_size = fi.cluster_size;
    }
    return 0;
}

/*
 * A raw image needs exactly its virtual size (a sparse target stores less,
 * but qemu-img reports the full size too, so scripts get the same
 * figure).  Without a source the size is rounded up to whole sectors.
 */
static int raw_measure(struct vdk_opts *opts, struct vdk_node *src, uint64_t size,
                       struct vdk_measure *out, struct vdk_error **errp)
{
    uint64_t req = size;
    if (src) {
        int64_t len = vdk_get_length(src);
        if (len < 0)
            return vdk_error_setf_errno(errp, (int)len, "could not get the size of '%s'",
                                        vdk_node_filename(src));
        req = (uint64_t)len;
    } else if (opts && vdk_opts_peek(opts, "size")) {
        int r = vdk_parse_size(vdk_opts_peek(opts, "size"), &req);
        if (r < 0)
            return vdk_error_setf(errp, EINVAL, "invalid size '%s'",
                                  vdk_opts_peek(opts, "size"));
    }
    if (req > (uint64_t)INT64_MAX - 511)
        return vdk_error_setf(errp, ERANGE, "image size is too large");
    req = vdk_align_up(req, 512);
    out->required = req;
    out->fully_allocated = req;
    return 0;
}

const struct vdk_driver vdk_driver_raw = {
    .name = "raw",
    .kind = VDK_DRV_FORMAT,
    .state_size = sizeof(struct raw_state),
    .open_opts = raw_open_opts,
    .create_opts = raw_create_opts,
    .probe = raw_probe,
    .open = raw_open,
    .create = raw_create,
    .create_check = raw_create_check,
    .pread = raw_pread,
    .pwrite = raw_pwrite,
    .pwrite_zeroes = raw_pwrite_zeroes,
    .discard = raw_discard,
    .block_status = raw_block_status,
    .truncate = raw_truncate,
    .get_info = raw_get_info,
    .measure = raw_measure,
};
