/* SPDX-License-Identifier: MIT */
/*
 * Batches of small requests.  A client that keeps many small reads and
 * writes in flight (4 KiB random I/O at queue depth 32) sends their
 * headers together, and one recv() brings several in.  The worker holding
 * the reader role then takes every small request already received (up to
 * NBD_BATCH_MAX, and as many bytes as its batch arena holds), runs them
 * one after another, and sends all their replies in one sendmsg under one
 * take of the write lock.  Per request that saves the hand-over of the
 * reader role to another thread (a futex wake and a context switch), the
 * write lock, and a system call; a worker that is busy with a batch is no
 * slower than the several workers it replaces, since the requests only
 * copy from and to the page cache.
 *
 * Requests in a batch use slices of a per-thread arena for their data,
 * so a batch allocates nothing.  A request that fails is answered on its
 * own after the batch, with the usual error reply.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "nbd-server/server.h"

/* One slice per request, aligned for O_DIRECT exports. */
#define SLICE_ALIGN 4096u

static __thread uint8_t *arena;
static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static void arena_release(void *p)
{
    vdk_buffer_free(p);
}

static void arena_key_create(void)
{
    pthread_key_create(&arena_key, arena_release);
}

uint8_t *nbd_batch_arena(void)
{
    if (!arena) {
        pthread_once(&arena_once, arena_key_create);
        arena = vdk_buffer_alloc(NBD_BATCH_ARENA);
        if (arena)
            pthread_setspecific(arena_key, arena); /* freed at thread exit */
    }
    return arena;
}

uint32_t nbd_batch_slice(uint32_t len)
{
    return (len + SLICE_ALIGN - 1) / SLICE_ALIGN * SLICE_ALIGN;
}

bool nbd_batchable(const struct nbd_conn *c, const struct nbd_req *q)
{
    /* Reads below the sparse-read size (no block-status lookup, one data
       chunk) and writes that will run; each must fit an arena slice. */
    if (q->length == 0 || q->length > NBD_BATCH_LEN_MAX)
        return false;
    if (q->type == NBD_CMD_READ)
        return true;
    return q->type == NBD_CMD_WRITE && !c->exp->readonly;
}

int nbd_ok_reply(const struct nbd_conn *c, const struct nbd_req *q, struct nbd_ok_reply *b,
                 void *data, struct iovec *iov)
{
    int ni = 0;
    bool rd = q->type == NBD_CMD_READ;
    if (!c->structured) {
        b->h.simple = (struct nbd_simple_reply){ .magic = htobe32(NBD_SIMPLE_REPLY_MAGIC),
                                                 .handle = q->handle };
        iov[ni++] = (struct iovec){ &b->h.simple, sizeof(b->h.simple) };
    } else if (rd) {
        nbd_chunk_header(&b->h.chunk, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA,
                         q->handle, 8 + q->length);
        b->offset = htobe64(q->offset);
        iov[ni++] = (struct iovec){ &b->h.chunk, sizeof(b->h.chunk) };
        iov[ni++] = (struct iovec){ &b->offset, 8 };
    } else {
        nbd_chunk_header(&b->h.chunk, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, q->handle, 0);
        iov[ni++] = (struct iovec){ &b->h.chunk, sizeof(b->h.chunk) };
    }
    if (rd)
        iov[ni++] = (struct iovec){ data, q->length };
    return ni;
}

void nbd_run_batch(struct nbd_conn *c, struct nbd_work *w, int n)
{
    struct vdk_node *node = c->exp->node;
    struct nbd_ok_reply rep[NBD_BATCH_MAX];
    struct iovec iov[NBD_BATCH_MAX * 3];
    int res[NBD_BATCH_MAX];
    int ni = 0;
    for (int i = 0; i < n; i++) {
        const struct nbd_req *q = &w[i].req;
        bool rd = q->type == NBD_CMD_READ;
        if (w[i].error) { /* refused by validation: its own reply below */
            res[i] = -EINVAL;
            continue;
        }
        res[i] = rd ? vdk_pread(node, w[i].buf, q->length, q->offset, 0)
                    : vdk_pwrite(node, w[i].buf, q->length, q->offset, nbd_write_flags(c, &w[i]));
        if (res[i] < 0)
            continue;
        ni += nbd_ok_reply(c, q, &rep[i], w[i].buf, iov + ni);
    }
    if (ni) {
        pthread_mutex_lock(&c->write_lock);
        nbd_send_iov(c, iov, ni); /* on failure the connection is dead */
        pthread_mutex_unlock(&c->write_lock);
    }
    for (int i = 0; i < n; i++) {
        if (w[i].error)
            nbd_run_request(c, &w[i]);
        else if (res[i] < 0)
            nbd_reply_errno(c, &w[i], res[i],
                            w[i].req.type == NBD_CMD_READ ? "read" : "write");
    }
}
