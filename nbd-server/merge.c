/* SPDX-License-Identifier: MIT */
/*
 * Merged reads.  Where each request costs the storage a round of its own
 * whatever its size (an rbd image: one OSD operation per request, 4 MiB
 * objects), a client reading sequentially in 256 KiB requests makes the
 * cluster do sixteen operations per object.  The worker holding the
 * reader role therefore takes, with a READ, the READs already received
 * that continue it (same flags, each starting where the last ended, up to
 * the storage's preferred transfer in all), reads them from the export
 * as one request, and answers each with its own reply, all sent in one
 * sendmsg.
 *
 * Only requests that have all arrived are merged, so the one read starts
 * after every request it answers was sent: each still sees every write
 * that finished before it was sent, as with separate reads.  A range
 * with holes (structured replies send those as hole chunks) or a read
 * that fails runs as separate requests instead, so that replies and
 * errors are exactly those of the ordinary path.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "nbd-server/server.h"

/* Storage whose preferred transfer is below this gains nothing.  Above
   the file protocol's 1 MiB on purpose: read-only file exports send with
   sendfile (zerocopy.c), which merging into one buffer would undo. */
#define MERGE_MIN_OPT (2u << 20)
#define MERGE_MAX_BYTES (8u << 20)

uint32_t nbd_merge_max(struct vdk_node *node)
{
    uint32_t opt = vdk_node_storage_opt_transfer(node);
    if (opt < MERGE_MIN_OPT)
        return 0;
    return opt > MERGE_MAX_BYTES ? MERGE_MAX_BYTES : opt;
}

bool nbd_merge_joins(const struct nbd_conn *c, const struct nbd_work *w, int n,
                     const struct nbd_req *q)
{
    /* Every request taken so far was validated, so end <= the export's
       size.  The first may alone exceed merge_max (it was read the
       ordinary way): nothing joins it then. */
    uint64_t end = w[n - 1].req.offset + w[n - 1].req.length;
    uint64_t total = end - w[0].req.offset;
    return n < NBD_MERGE_MAX && q->type == NBD_CMD_READ && q->flags == w[0].req.flags &&
           q->offset == end && q->length > 0 && total < c->exp->merge_max &&
           q->length <= c->exp->merge_max - total &&
           q->length <= c->exp->size - end;
}

void nbd_run_merged(struct nbd_conn *c, struct nbd_work *w, int n)
{
    struct vdk_node *node = c->exp->node;
    uint64_t off = w[0].req.offset, total = 0;
    bool whole = true;
    for (int i = 0; i < n; i++) {
        total += w[i].req.length;
        whole = whole && !w[i].error;
    }
    if (whole && c->structured && !(w[0].req.flags & NBD_CMD_FLAG_DF)) {
        uint64_t pnum = 0, map = 0;
        struct vdk_node *file = NULL;
        int st = vdk_block_status_above(node, NULL, off, total, &pnum, &map, &file, NULL);
        whole = st >= 0 && !(st & VDK_BS_ZERO) && pnum >= total;
    }
    uint8_t *buf = whole ? nbd_buf_get(total) : NULL;
    if (buf && vdk_pread(node, buf, total, off, 0) == 0) {
        struct nbd_ok_reply rep[NBD_MERGE_MAX];
        struct iovec iov[NBD_MERGE_MAX * 3];
        int ni = 0;
        uint8_t *p = buf;
        for (int i = 0; i < n; i++) {
            ni += nbd_ok_reply(c, &w[i].req, &rep[i], p, iov + ni);
            p += w[i].req.length;
        }
        pthread_mutex_lock(&c->write_lock);
        nbd_send_iov(c, iov, ni); /* on failure the connection is dead */
        pthread_mutex_unlock(&c->write_lock);
        nbd_buf_put(buf, total);
        nbd_log(NBD_LOG_DEBUG, "%s: %d reads merged into one of %" PRIu64 " bytes", c->peer,
                n, total);
        return;
    }
    if (buf)
        nbd_buf_put(buf, total);
    for (int i = 0; i < n; i++)
        nbd_run_request(c, &w[i]);
}
