/* SPDX-License-Identifier: MIT */
/*
 * The "null" protocol (QEMU's null-co): a fixed-size device that discards
 * writes and reads zeros.  For benchmarks of the layers above it.
 */
#include <errno.h>
#include <string.h>

#include "block/driver.h"

struct null_state {
    bool read_zeroes;
};

static const struct vdk_opt_desc null_open_opts[] = {
    { "filename", VDK_OPT_STRING, "Ignored (null-co://)", NULL, NULL },
    { "size", VDK_OPT_SIZE, "Size of the device", "1G", NULL },
    { "read-zeroes", VDK_OPT_BOOL,
      "Fill read buffers with zeros (off leaves them untouched)", "on", NULL },
    { NULL, 0, NULL, NULL, NULL },
};

static int null_open(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                     struct vdk_error **errp)
{
    struct null_state *s = n->opaque;
    uint64_t size;
    int r;
    (void)vdk_opts_get(opts, "filename");
    if ((r = vdk_opts_get_size(opts, "size", 1ull << 30, &size, errp)) < 0 ||
        (r = vdk_opts_get_bool(opts, "read-zeroes", true, &s->read_zeroes, errp)) < 0)
        return r;
    n->size = size;
    n->limits.max_transfer = VDK_MAX_REQUEST;
    n->supported_write_flags = VDK_REQ_FUA;
    n->supported_zero_flags = VDK_REQ_MAY_UNMAP | VDK_REQ_FUA;
    return 0;
}

static int null_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                      void *buf, unsigned flags)
{
    struct null_state *s = n->opaque;
    if (s->read_zeroes)
        memset(buf, 0, bytes);
    return 0;
}

static int null_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                       const void *buf, unsigned flags)
{
    return 0;
}

static int null_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                              unsigned flags)
{
    return 0;
}

static int null_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                             uint64_t *pnum, uint64_t *map, struct vdk_node **file)
{
    struct null_state *s = n->opaque;
    *pnum = bytes;
    *map = offset;
    *file = n;
    return VDK_BS_OFFSET_VALID | (s->read_zeroes ? VDK_BS_ZERO : VDK_BS_DATA);
}

const struct vdk_driver vdk_driver_null = {
    .name = "null-co",
    .kind = VDK_DRV_PROTOCOL,
    .state_size = sizeof(struct null_state),
    .protocols = (const char *const[]){ "null-co", "null", NULL },
    .open_opts = null_open_opts,
    .open = null_open,
    .pread = null_pread,
    .pwrite = null_pwrite,
    .pwrite_zeroes = null_pwrite_zeroes,
    .block_status = null_block_status,
};
