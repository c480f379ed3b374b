/* SPDX-License-Identifier: MIT */
/*
 * Zero-copy reads: large reads of raw images and of read-only qcow2
 * images go from the page cache to a plain socket with sendfile(), one
 * block-status descent giving both the holes and where the data lies in
 * the file, instead of a descent for holes, a second for the data and a
 * copy through a user buffer.
 *
 * Safe only where the mapping cannot change under the read and the file
 * holds the guest's bytes as they are:
 *   - raw: the mapping is the identity (plus the raw offset);
 *   - qcow2, unencrypted, exported read-only: no write can move or free a
 *     cluster (a writable qcow2 may free a cluster and reuse it for other
 *     data between the lookup and the send, which the driver's free_lock
 *     would prevent on the ordinary path);
 *   - the image's own file only (not a backing file, an external data file
 *     or anything behind a filter such as fault, whose reads must reach
 *     it), through the page cache (not cache=none), on plain sockets (TLS
 *     encrypts in user space).
 * Anything else, or an extent list longer than a reply carries, takes the
 * ordinary path.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "nbd-server/server.h"

/* Smaller reads are cheaper copied: two syscalls either way, and sendfile
   sets up more per call. */
#define SENDFILE_MIN (64u * 1024)
#define SF_MAX_EXTENTS 64

void nbd_export_setup_sendfile(struct nbd_export *e, bool direct)
{
    e->sf_fd = -1;
    e->sf_node = NULL;
    struct vdk_node *n = e->node, *f = n ? vdk_node_file(n) : NULL;
    if (!n || !f || direct || strcmp(vdk_node_driver_name(f), "file") != 0)
        return;
    const char *drv = vdk_node_driver_name(n);
    if (strcmp(drv, "raw") != 0) {
        if (strcmp(drv, "qcow2") != 0 || !e->readonly)
            return;
        struct vdk_image_info info = { 0 };
        bool enc = vdk_get_info(n, &info, NULL) < 0 || info.encrypted;
        vdk_image_info_clear(&info);
        if (enc)
            return;
    }
    const char *path = vdk_node_filename(f);
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return;
    e->sf_fd = fd;
    e->sf_node = f;
}

void nbd_export_close_sendfile(struct nbd_export *e)
{
    if (e->sf_fd >= 0)
        close(e->sf_fd);
    e->sf_fd = -1;
}

struct sf_ext {
    uint64_t len, map;
    bool zero;
};

/* One descent: extents of [off, off+len) as holes or file ranges.  Returns
   the count, or 0 when some part is neither (take the ordinary path). */
static int map_extents(struct nbd_export *e, uint64_t off, uint64_t len, bool holes,
                       struct sf_ext *x)
{
    int k = 0;
    while (len) {
        uint64_t pnum = 0, map = 0;
        struct vdk_node *file = NULL;
        int r = vdk_block_status_above(e->node, NULL, off, len, &pnum, &map, &file, NULL);
        if (r < 0 || pnum == 0 || pnum > len)
            return 0;
        bool zero = (r & VDK_BS_ZERO) != 0;
        if (zero && !holes)
            return 0;
        if (!zero && (!(r & VDK_BS_DATA) || !(r & VDK_BS_OFFSET_VALID) || file != e->sf_node))
            return 0;
        if (k > 0 && x[k - 1].zero == zero &&
            (zero || x[k - 1].map + x[k - 1].len == map)) {
            x[k - 1].len += pnum;
        } else {
            if (k == SF_MAX_EXTENTS)
                return 0;
            x[k++] = (struct sf_ext){ pnum, map, zero };
        }
        off += pnum;
        len -= pnum;
    }
    return k;
}

/* Send len bytes of the file from map; past its end, zeros. */
static int send_file_range(int sock, int fd, uint64_t map, uint64_t len)
{
    static const uint8_t zeros[65536];
    off_t o = (off_t)map;
    while (len) {
        ssize_t k = sendfile(sock, fd, &o, len > (1u << 30) ? (1u << 30) : len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0) {
            /* The file ends here (shrunk meanwhile): the rest reads as
               zeros, as it would through the driver. */
            while (len) {
                size_t c = len < sizeof(zeros) ? len : sizeof(zeros);
                struct iovec iov = { (void *)zeros, c };
                ssize_t w = writev(sock, &iov, 1);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w < 0)
                    return -errno;
                len -= (uint64_t)w;
            }
            return 0;
        }
        len -= (uint64_t)k;
    }
    return 0;
}

int nbd_read_sendfile(struct nbd_conn *c, const struct nbd_work *w)
{
    struct nbd_export *e = c->exp;
    uint64_t off = w->req.offset;
    uint32_t len = w->req.length;
    if (e->sf_fd < 0 || c->io.ssl || c->io.fd < 0 || len < SENDFILE_MIN)
        return 0;
    /* Holes become hole chunks only with structured replies (and not
       under DF, which asks for one data chunk). */
    bool holes = c->structured && !(w->req.flags & NBD_CMD_FLAG_DF);
    struct sf_ext x[SF_MAX_EXTENTS];
    int k = map_extents(e, off, len, holes, x);
    if (k == 0)
        return 0;
    int r = 0;
    pthread_mutex_lock(&c->write_lock);
    if (atomic_load(&c->dead)) {
        r = -EPIPE;
    } else if (!c->structured) {
        struct nbd_simple_reply h = {
            .magic = htobe32(NBD_SIMPLE_REPLY_MAGIC), .error = 0, .handle = w->req.handle,
        };
        struct iovec iov = { &h, sizeof(h) };
        r = nbd_io_writev(&c->io, &iov, 1);
        for (int i = 0; i < k && r == 0; i++)
            r = send_file_range(c->io.fd, e->sf_fd, x[i].map, x[i].len);
    } else {
        uint64_t pos = off;
        for (int i = 0; i < k && r == 0; i++) {
            uint16_t fl = i == k - 1 ? NBD_REPLY_FLAG_DONE : 0;
            struct nbd_structured_reply h;
            uint32_t el = (uint32_t)x[i].len;
            if (x[i].zero) {
                struct nbd_chunk_offset_hole hole = { htobe64(pos), htobe32(el) };
                nbd_chunk_header(&h, fl, NBD_REPLY_TYPE_OFFSET_HOLE, w->req.handle,
                                 sizeof(hole));
                struct iovec iov[2] = { { &h, sizeof(h) }, { &hole, sizeof(hole) } };
                r = nbd_io_writev(&c->io, iov, 2);
            } else {
                uint64_t boff = htobe64(pos);
                nbd_chunk_header(&h, fl, NBD_REPLY_TYPE_OFFSET_DATA, w->req.handle, 8 + el);
                struct iovec iov[2] = { { &h, sizeof(h) }, { &boff, 8 } };
                r = nbd_io_writev(&c->io, iov, 2);
                if (r == 0)
                    r = send_file_range(c->io.fd, e->sf_fd, x[i].map, x[i].len);
            }
            pos += el;
        }
    }
    if (r < 0) {
        /* A reply cut short cannot be finished: the connection is over. */
        atomic_store(&c->dead, true);
        nbd_io_abort(&c->io);
    }
    pthread_mutex_unlock(&c->write_lock);
    return 1;
}
