/* SPDX-License-Identifier: MIT */
/* The unit tests' format driver: see testfmt.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/memory.h"
#include "testfmt.h"

#define MAGIC "VDKTEST1"
#define HDR 512
#define MAX_CLUSTERS 65536

bool testfmt_bad_pnum;

struct tf_state {
    uint32_t cluster;
    uint64_t nclusters;
    uint64_t data_off;
    char *map;
};

uint64_t testfmt_data_off(uint64_t nclusters)
{
    return HDR + vdk_align_up(nclusters, 512);
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

void testfmt_preset(const char *name, uint64_t size, uint32_t cluster, const char *map,
                    uint8_t fill, const char *backing, const char *backing_fmt)
{
    uint64_t nc = strlen(map);
    uint64_t doff = testfmt_data_off(nc);
    size_t len = (size_t)(doff + nc * cluster);
    uint8_t *img = calloc(1, len);
    if (!img)
        abort();
    memcpy(img, MAGIC, 8);
    put64(img + 8, size);
    put64(img + 16, cluster);
    if (backing)
        strncpy((char *)img + 24, backing, 255);
    if (backing_fmt)
        strncpy((char *)img + 280, backing_fmt, 31);
    memcpy(img + HDR, map, nc);
    for (uint64_t i = 0; i < nc; i++)
        if (map[i] == 'D')
            memset(img + doff + i * cluster, (uint8_t)(fill + i), cluster);
    if (vdk_memory_preset(name, img, len) < 0)
        abort();
    free(img);
}

static int tf_probe(const uint8_t *buf, size_t len, const char *filename)
{
    return len >= 8 && memcmp(buf, MAGIC, 8) == 0 ? 100 : 0;
}

static char *field(const uint8_t *p, size_t max)
{
    size_t l = strnlen((const char *)p, max);
    return l ? strndup((const char *)p, l) : NULL;
}

static int tf_open(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                   struct vdk_error **errp)
{
    struct tf_state *s = n->opaque;
    uint8_t h[HDR];
    int r = vdk_pread(n->file, h, HDR, 0, 0);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot read the header");
    if (memcmp(h, MAGIC, 8) != 0)
        return vdk_error_setf(errp, EINVAL, "not a testfmt image");
    uint64_t size = get64(h + 8), cl = get64(h + 16);
    if (!vdk_is_pow2(cl) || cl < 512 || cl > 65536 || size > (uint64_t)MAX_CLUSTERS * cl)
        return vdk_error_setf(errp, EINVAL, "bad testfmt geometry");
    s->cluster = (uint32_t)cl;
    s->nclusters = vdk_align_up(size, cl) / cl;
    s->data_off = testfmt_data_off(s->nclusters);
    s->map = calloc(1, s->nclusters + 1);
    if (!s->map)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    if (s->nclusters && (r = vdk_pread(n->file, s->map, s->nclusters, HDR, 0)) < 0) {
        free(s->map);
        return vdk_error_setf_errno(errp, r, "cannot read the map");
    }
    n->backing_file = field(h + 24, 256);
    n->backing_fmt = field(h + 280, 32);
    n->size = size;
    return 0;
}

static void tf_close(struct vdk_node *n)
{
    struct tf_state *s = n->opaque;
    free(s->map);
}

static int tf_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *buf,
                    unsigned flags)
{
    struct tf_state *s = n->opaque;
    uint8_t *p = buf;
    while (bytes) {
        uint64_t ci = offset / s->cluster;
        uint64_t c = vdk_min_u64(bytes, (ci + 1) * s->cluster - offset);
        int r = 0;
        if (s->map[ci] == 'D') {
            r = vdk_pread(n->file, p, c, s->data_off + offset, 0);
        } else if (s->map[ci] == '.' && n->backing) {
            int64_t bl = vdk_get_length(n->backing);
            uint64_t in = bl > 0 && offset < (uint64_t)bl ? vdk_min_u64(c, (uint64_t)bl - offset)
                                                         : 0;
            if (in)
                r = vdk_pread(n->backing, p, in, offset, 0);
            memset(p + in, 0, c - in);
        } else {
            memset(p, 0, c);
        }
        if (r < 0)
            return r;
        p += c;
        offset += c;
        bytes -= c;
    }
    return 0;
}

static int tf_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                           uint64_t *pnum, uint64_t *map, struct vdk_node **file)
{
    struct tf_state *s = n->opaque;
    uint64_t ci = offset / s->cluster;
    char st = s->map[ci];
    uint64_t end = (ci + 1) * s->cluster;
    while (end < offset + bytes && s->map[end / s->cluster] == st)
        end += s->cluster;
    *pnum = vdk_min_u64(bytes, end - offset) + (testfmt_bad_pnum ? bytes : 0);
    if (st == 'D') {
        *map = s->data_off + offset;
        *file = n->file;
        return VDK_BS_DATA | VDK_BS_OFFSET_VALID;
    }
    return st == 'Z' ? VDK_BS_ZERO : 0;
}

const struct vdk_driver testfmt_driver = {
    .name = "testfmt",
    .kind = VDK_DRV_FORMAT,
    .state_size = sizeof(struct tf_state),
    .supports_backing = true,
    .probe = tf_probe,
    .open = tf_open,
    .close = tf_close,
    .pread = tf_pread,
    .block_status = tf_block_status,
};
