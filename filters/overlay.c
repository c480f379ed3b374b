/* SPDX-License-Identifier: MIT */
/*
 * The throwaway overlay: a filter node that takes writes and forgets them
 * at close, so the image below never changes (qemu-nbd -s, vdk-boot
 * snapshot=on).
 *
 * Written data lives in an unlinked temporary file (O_TMPFILE), so it is
 * discarded even if the process dies, and costs disk rather than memory.
 * A bitmap with one bit per OVERLAY_CLUSTER says which clusters have been
 * copied up.  A write that covers part of a cluster not yet copied reads
 * the rest from the image below under the copy-up lock; writes to copied
 * clusters and all reads run in parallel.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/driver.h"

#define OVERLAY_CLUSTER (64u * 1024)
/* Bitmap bound: 64 KiB clusters over at most 64 TiB is 128 MiB of bits. */
#define OVERLAY_MAX_SIZE (64ull << 40)

struct overlay_state {
    int fd;                       /* temporary file, same offsets as guest */
    _Atomic uint64_t *bitmap;     /* copied-up clusters */
    uint64_t nclusters;
    pthread_mutex_t copy_lock;    /* serialises copy-ups */
};

static bool cl_test(struct overlay_state *s, uint64_t c)
{
    return atomic_load(&s->bitmap[c / 64]) & (1ull << (c % 64));
}

static void cl_set(struct overlay_state *s, uint64_t c)
{
    atomic_fetch_or(&s->bitmap[c / 64], 1ull << (c % 64));
}

static int open_tmpfile(struct vdk_error **errp)
{
    const char *dirs[] = { getenv("TMPDIR"), "/var/tmp", "/tmp" };
    int last = ENOENT;
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        if (!dirs[i] || !*dirs[i])
            continue;
        int fd = open(dirs[i], O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd >= 0)
            return fd;
        last = errno;
    }
    return vdk_error_setf_errno(errp, last, "cannot create the temporary file for the "
                                "throwaway overlay (set TMPDIR to a writable directory)");
}

static int overlay_setup(struct vdk_node *n, struct vdk_error **errp)
{
    struct overlay_state *s = n->opaque;
    int64_t len = vdk_get_length(n->backing);
    if (len < 0)
        return vdk_error_setf_errno(errp, (int)len, "cannot get the size of '%s'",
                                    n->backing->filename);
    if ((uint64_t)len > OVERLAY_MAX_SIZE)
        return vdk_error_setf(errp, EFBIG, "image too large for a throwaway overlay "
                              "(at most 64 TiB)");
    s->nclusters = vdk_align_up((uint64_t)len, OVERLAY_CLUSTER) / OVERLAY_CLUSTER;
    s->bitmap = calloc(vdk_align_up(s->nclusters, 64) / 64 + 1, sizeof(*s->bitmap));
    if (!s->bitmap)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    s->fd = open_tmpfile(errp);
    if (s->fd < 0) {
        int r = s->fd;
        free(s->bitmap);
        return r;
    }
    pthread_mutex_init(&s->copy_lock, NULL);
    n->size = (uint64_t)len;
    n->limits = n->backing->limits;
    n->limits.request_alignment = 1;
    n->read_only = false;
    return 0;
}


static void overlay_close(struct vdk_node *n)
{
    struct overlay_state *s = n->opaque;
    close(s->fd);
    free(s->bitmap);
    pthread_mutex_destroy(&s->copy_lock);
}

static int tmp_pread(struct overlay_state *s, void *buf, uint64_t bytes, uint64_t off)
{
    uint8_t *p = buf;
    while (bytes) {
        ssize_t k = pread(s->fd, p, bytes, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0) {
            memset(p, 0, bytes);
            return 0;
        }
        p += k;
        off += (uint64_t)k;
        bytes -= (uint64_t)k;
    }
    return 0;
}

static int tmp_pwrite(struct overlay_state *s, const void *buf, uint64_t bytes,
                      uint64_t off)
{
    const uint8_t *p = buf;
    while (bytes) {
        ssize_t k = pwrite(s->fd, p, bytes, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? -errno : -EIO;
        p += k;
        off += (uint64_t)k;
        bytes -= (uint64_t)k;
    }
    return 0;
}

static int overlay_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                         void *buf, unsigned flags)
{
    struct overlay_state *s = n->opaque;
    uint8_t *p = buf;
    while (bytes) {
        uint64_t c = offset / OVERLAY_CLUSTER;
        bool up = cl_test(s, c);
        /* Extend over following clusters in the same state. */
        uint64_t end = (c + 1) * OVERLAY_CLUSTER;
        while (end < offset + bytes && cl_test(s, end / OVERLAY_CLUSTER) == up)
            end += OVERLAY_CLUSTER;
        uint64_t len = vdk_min_u64(end, offset + bytes) - offset;
        int r = up ? tmp_pread(s, p, len, offset) : vdk_pread(n->backing, p, len, offset, 0);
        if (r < 0)
            return r;
        p += len;
        offset += len;
        bytes -= len;
    }
    return 0;
}

/* Copy cluster c up, merging [offset, offset+len) of buf into it. */
static int copy_up(struct vdk_node *n, uint64_t c, uint64_t offset, uint64_t len,
                   const uint8_t *buf)
{
    struct overlay_state *s = n->opaque;
    uint64_t cstart = c * OVERLAY_CLUSTER;
    uint64_t clen = vdk_min_u64(OVERLAY_CLUSTER, n->size - cstart);
    int r = 0;
    pthread_mutex_lock(&s->copy_lock);
    if (cl_test(s, c)) {
        pthread_mutex_unlock(&s->copy_lock);
        return tmp_pwrite(s, buf, len, offset);
    }
    uint8_t *tmp = malloc(clen);
    if (!tmp) {
        r = -ENOMEM;
        goto out;
    }
    r = vdk_pread(n->backing, tmp, clen, cstart, 0);
    if (r == 0) {
        memcpy(tmp + (offset - cstart), buf, len);
        r = tmp_pwrite(s, tmp, clen, cstart);
    }
    if (r == 0)
        cl_set(s, c);
    free(tmp);
out:
    pthread_mutex_unlock(&s->copy_lock);
    return r;
}

static int overlay_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                          const void *buf, unsigned flags)
{
    struct overlay_state *s = n->opaque;
    const uint8_t *p = buf;
    while (bytes) {
        uint64_t c = offset / OVERLAY_CLUSTER;
        uint64_t cend = vdk_min_u64((c + 1) * OVERLAY_CLUSTER, n->size);
        uint64_t len = vdk_min_u64(cend, offset + bytes) - offset;
        int r;
        if (cl_test(s, c)) {
            r = tmp_pwrite(s, p, len, offset);
        } else if (offset == c * OVERLAY_CLUSTER && offset + len == cend) {
            /* Whole cluster: nothing to copy.  Under the lock so a racing
               partial copy-up cannot overwrite it with older data. */
            pthread_mutex_lock(&s->copy_lock);
            r = tmp_pwrite(s, p, len, offset);
            if (r == 0)
                cl_set(s, c);
            pthread_mutex_unlock(&s->copy_lock);
        } else {
            r = copy_up(n, c, offset, len, p);
        }
        if (r < 0)
            return r;
        p += len;
        offset += len;
        bytes -= len;
    }
    return 0;
}

static int overlay_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                                uint64_t *pnum, uint64_t *map, struct vdk_node **file)
{
    struct overlay_state *s = n->opaque;
    uint64_t c = offset / OVERLAY_CLUSTER;
    bool up = cl_test(s, c);
    uint64_t end = (c + 1) * OVERLAY_CLUSTER;
    while (end < offset + bytes && cl_test(s, end / OVERLAY_CLUSTER) == up)
        end += OVERLAY_CLUSTER;
    *pnum = vdk_min_u64(end, offset + bytes) - offset;
    /* Clusters not copied up are the image's: unallocated here, so the
       chain walk (and qemu:allocation-depth) goes on to the image. */
    return up ? VDK_BS_DATA | VDK_BS_ALLOCATED : 0;
}

static int overlay_flush(struct vdk_node *n)
{
    return 0; /* nothing here is meant to last; the image is read-only */
}

const struct vdk_driver vdk_driver_overlay = {
    .name = "throwaway-overlay",
    .kind = VDK_DRV_FILTER,
    .state_size = sizeof(struct overlay_state),
    .close = overlay_close,
    .pread = overlay_pread,
    .pwrite = overlay_pwrite,
    .flush = overlay_flush,
    .block_status = overlay_block_status,
};

int vdk_overlay_new(struct vdk_node **out, struct vdk_node *base,
                    struct vdk_error **errp)
{
    *out = NULL;
    struct vdk_node *n = vdk_node_new_internal(&vdk_driver_overlay, base->filename);
    if (!n) {
        vdk_node_unref(base);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    /* The image is the overlay's backing layer: reads of clusters not
       copied up go there, and chain walks count it as one layer down. */
    n->backing = base;
    n->open_flags = base->open_flags | VDK_O_RDWR;
    int r = overlay_setup(n, errp);
    if (r < 0) {
        vdk_node_free_internal(n); /* drops base too */
        return r;
    }
    *out = n;
    return 0;
}
