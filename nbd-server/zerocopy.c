/* SPDX-License-Identifier: MIT */
/*
 * Zero-copy reads: a large read whose data the image stores as it is
 * (block status DATA | OFFSET_VALID | PLAIN) in a file goes to the client
 * without passing through a buffer of ours.  One block-status descent
 * gives both the holes and where the data lies.  Then:
 *
 *  - on a plain socket, for a read-only export, each data extent goes
 *    out with sendfile(2) (vdk_node_sendfile: buffered files, not
 *    O_DIRECT), which hands the socket the page-cache pages themselves:
 *    no copy on the server's side, where pread-then-send copies twice.
 *    The reply headers go in a sendmsg before each extent, all under the
 *    write lock;
 *  - over TLS, where the cipher must read the bytes, from a mapping of
 *    the file (vdk_node_map: files opened with map=on and held under the
 *    reader's lock), which the cipher reads in place, saving the copy
 *    into a buffer.
 *
 * Anything else (encrypted or compressed clusters, backing files that can
 * do neither, ranges a filter such as fault reports as plain data, more
 * extents than a reply carries) takes the ordinary path.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "nbd-server/server.h"

/* Smaller reads are cheaper copied through a buffer. */
#define ZEROCOPY_MIN (64u * 1024)
#define ZC_MAX_EXTENTS 32

struct zc_ext {
    uint64_t len, map;
    struct vdk_node *file;
    const void *ptr;         /* mapped bytes */
    bool send;               /* data sent with sendfile from file at map */
};                           /* neither: a hole */

static void unmap_all(struct zc_ext *x, int k)
{
    for (int i = 0; i < k; i++)
        if (x[i].ptr)
            vdk_node_unmap(x[i].file, x[i].ptr, x[i].len);
}

/* One descent: [off, off+len) as holes and file ranges to send (when
   `send`) or map.  Returns the count, or 0 when some part is none
   of these (take the ordinary path). */
static int map_extents(struct vdk_node *n, uint64_t off, uint64_t len, bool holes,
                       bool send, struct zc_ext *x)
{
    const unsigned want = VDK_BS_DATA | VDK_BS_OFFSET_VALID | VDK_BS_PLAIN;
    int k = 0;
    while (len) {
        uint64_t pnum = 0, map = 0;
        struct vdk_node *file = NULL;
        int r = vdk_block_status_above(n, NULL, off, len, &pnum, &map, &file, NULL);
        if (r < 0 || pnum == 0 || pnum > len)
            goto no;
        bool zero = (r & VDK_BS_ZERO) != 0;
        if ((zero && !holes) || (!zero && ((unsigned)r & want) != want) || k == ZC_MAX_EXTENTS)
            goto no;
        x[k] = (struct zc_ext){ pnum, map, file, NULL, false };
        if (!zero && send && vdk_node_sendfile(file, -1, 0, 0, NULL) == 0)
            x[k].send = true;
        else if (!zero && vdk_node_map(file, map, pnum, &x[k].ptr) < 0)
            goto no;
        k++;
        off += pnum;
        len -= pnum;
    }
    return k;
no:
    unmap_all(x, k);
    return 0;
}

/* The reply's pieces so far, then the extent's file range (with e). */
static int flush(struct nbd_conn *c, struct iovec *iov, int *ni, const struct zc_ext *e)
{
    int r = 0;
    if (*ni)
        r = nbd_send_iov(c, iov, *ni);
    *ni = 0;
    if (r == 0 && e)
        r = nbd_send_file(c, e->file, e->map, e->len);
    return r;
}

int nbd_read_zerocopy(struct nbd_conn *c, const struct nbd_work *w)
{
    uint64_t off = w->req.offset;
    uint32_t len = w->req.length;
    if (c->io.fd < 0 || len < ZEROCOPY_MIN)
        return 0;
    /* Holes become hole chunks only with structured replies (and not
       under DF, which asks for one data chunk). */
    bool holes = c->structured && !(w->req.flags & NBD_CMD_FLAG_DF);
    struct zc_ext x[ZC_MAX_EXTENTS];
    /* sendfile only for read-only exports: the pages leave when the client
       takes them, and on a writable qcow2 the cluster could meanwhile be
       freed and reused for another offset's data, which the client would
       then receive.  Read-only, the image lock keeps every writer out. */
    bool send = !c->io.ssl && c->exp->readonly;
    int k = map_extents(c->exp->node, off, len, holes, send, x);
    if (k == 0)
        return 0;
    struct nbd_simple_reply sh;
    struct nbd_structured_reply h[ZC_MAX_EXTENTS];
    uint64_t boff[ZC_MAX_EXTENTS];
    struct nbd_chunk_offset_hole hole[ZC_MAX_EXTENTS];
    struct iovec iov[ZC_MAX_EXTENTS * 3 + 1];
    int ni = 0, r = 0;
    pthread_mutex_lock(&c->write_lock);
    if (!c->structured) {
        sh = (struct nbd_simple_reply){ .magic = htobe32(NBD_SIMPLE_REPLY_MAGIC),
                                        .handle = w->req.handle };
        iov[ni++] = (struct iovec){ &sh, sizeof(sh) };
    }
    uint64_t pos = off;
    for (int i = 0; i < k && r == 0; i++) {
        uint16_t fl = i == k - 1 ? NBD_REPLY_FLAG_DONE : 0;
        uint32_t el = (uint32_t)x[i].len;
        bool data = x[i].ptr || x[i].send;
        if (c->structured && !data) {
            nbd_chunk_header(&h[i], fl, NBD_REPLY_TYPE_OFFSET_HOLE, w->req.handle,
                             sizeof(hole[i]));
            hole[i].offset = htobe64(pos);
            hole[i].length = htobe32(el);
            iov[ni++] = (struct iovec){ &h[i], sizeof(h[i]) };
            iov[ni++] = (struct iovec){ &hole[i], sizeof(hole[i]) };
        } else if (c->structured) {
            nbd_chunk_header(&h[i], fl, NBD_REPLY_TYPE_OFFSET_DATA, w->req.handle, 8 + el);
            boff[i] = htobe64(pos);
            iov[ni++] = (struct iovec){ &h[i], sizeof(h[i]) };
            iov[ni++] = (struct iovec){ &boff[i], 8 };
        }
        if (x[i].send)
            r = flush(c, iov, &ni, &x[i]);
        else if (x[i].ptr)
            iov[ni++] = (struct iovec){ (void *)x[i].ptr, el };
        pos += el;
    }
    if (r == 0)
        flush(c, iov, &ni, NULL);
    pthread_mutex_unlock(&c->write_lock);
    /* A file truncated behind the locks meanwhile read as zeros, which is
       what the ordinary path returns past a file's end too. */
    unmap_all(x, k);
    return 1;
}
