/* SPDX-License-Identifier: MIT */
/*
 * Running NBD requests against the export's node and sending their
 * replies: simple replies, or structured ones (OFFSET_DATA / OFFSET_HOLE
 * chunks for reads, one BLOCK_STATUS chunk per metadata context, ERROR
 * chunks with a message).  Each reply goes out whole under the
 * connection's write lock, as soon as its request is done.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd-server/server.h"

/* Reads at least this long are sent sparsely (holes as OFFSET_HOLE);
   smaller ones skip the block-status lookup, which costs more than it
   saves on 4 KiB random reads. */
#define SPARSE_READ_MIN (64u * 1024)
/* Most chunks one sparse read reply is cut into. */
#define MAX_READ_CHUNKS 64
#define CACHE_CHUNK (1u << 20)

uint32_t nbd_errno_to_wire(int err)
{
    if (err < 0)
        err = -err;
    switch (err) {
    case 0:
        return NBD_SUCCESS;
    case EPERM:
    case EROFS:
    case EACCES:
        return NBD_EPERM;
    case ENOMEM:
        return NBD_ENOMEM;
    case EINVAL:
        return NBD_EINVAL;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return NBD_ENOSPC;
    case EOVERFLOW:
        return NBD_EOVERFLOW;
    case ENOTSUP:
#if EOPNOTSUPP != ENOTSUP
    case EOPNOTSUPP:
#endif
        return NBD_ENOTSUP;
    case ESHUTDOWN:
        return NBD_ESHUTDOWN;
    default:
        return NBD_EIO;
    }
}

/*
 * One request buffer kept per thread: a worker reuses it for its next
 * request instead of allocating and freeing every time (a worker runs one
 * request at a time, so one slot is enough).  Only buffers up to
 * BUF_CACHE_MAX stay; a worker's cached buffer is freed when it exits.
 */
#define BUF_CACHE_MAX (4u << 20)
static __thread void *cached_buf;
static __thread size_t cached_len;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_release(void *p)
{
    vdk_buffer_free(p);
}

static void cache_key_create(void)
{
    pthread_key_create(&cache_key, cache_release);
}

void *nbd_buf_get(size_t n)
{
    if (cached_buf && cached_len >= n) {
        void *p = cached_buf;
        cached_buf = NULL;
        pthread_setspecific(cache_key, NULL);
        return p;
    }
    return vdk_buffer_alloc(n < 4096 ? 4096 : n);
}

void nbd_buf_put(void *p, size_t n)
{
    if (!p)
        return;
    if (n < 4096)
        n = 4096;
    if (n > BUF_CACHE_MAX || (cached_buf && cached_len >= n)) {
        vdk_buffer_free(p);
        return;
    }
    pthread_once(&cache_once, cache_key_create);
    vdk_buffer_free(cached_buf);
    cached_buf = p;
    cached_len = n;
    /* The key frees the buffer when the thread exits. */
    pthread_setspecific(cache_key, p);
}

/* ---- replies ---- */

/* A send failed: the client is gone, or the reply is cut short on the
   wire.  Stop the reader too. */
static int conn_lost(struct nbd_conn *c, int r)
{
    atomic_store(&c->dead, true);
    nbd_io_shutdown_read(&c->io);
    return r;
}

int nbd_send_iov(struct nbd_conn *c, struct iovec *iov, int n)
{
    if (atomic_load(&c->dead))
        return -EPIPE;
    int r = nbd_io_writev(&c->io, iov, n);
    return r < 0 ? conn_lost(c, r) : r;
}

int nbd_send_file(struct nbd_conn *c, struct vdk_node *file, uint64_t off, uint64_t len)
{
    static const uint8_t zeros[64 << 10];
    if (atomic_load(&c->dead))
        return -EPIPE;
    uint64_t sent = 0;
    int r = vdk_node_sendfile(file, c->io.fd, off, len, &sent);
    if (r < 0) {
        nbd_log(NBD_LOG_INFO, "%s: sending image data: %s", c->peer, strerror(-r));
        return conn_lost(c, r);
    }
    /* The file shrank under the send: the header promised len bytes, and
       past a file's end reads give zeros. */
    while (r == 0 && sent < len) {
        uint64_t k = len - sent < sizeof(zeros) ? len - sent : sizeof(zeros);
        struct iovec iov = { (void *)zeros, (size_t)k };
        r = nbd_send_iov(c, &iov, 1);
        sent += k;
    }
    return r;
}

void nbd_chunk_header(struct nbd_structured_reply *h, uint16_t flags, uint16_t type,
                      uint64_t handle, uint32_t len)
{
    h->magic = htobe32(NBD_STRUCTURED_REPLY_MAGIC);
    h->flags = htobe16(flags);
    h->type = htobe16(type);
    h->handle = handle; /* opaque: echoed as received */
    h->length = htobe32(len);
}

/* A whole reply (all its chunks) under the write lock. */
static int send_simple(struct nbd_conn *c, const struct nbd_work *w, uint32_t error,
                       const void *data, size_t len)
{
    struct nbd_simple_reply h = {
        .magic = htobe32(NBD_SIMPLE_REPLY_MAGIC),
        .error = htobe32(error),
        .handle = w->req.handle,
    };
    struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)data, error ? 0 : len } };
    pthread_mutex_lock(&c->write_lock);
    int r = nbd_send_iov(c, iov, 2);
    pthread_mutex_unlock(&c->write_lock);
    return r;
}

static int send_error(struct nbd_conn *c, const struct nbd_work *w, uint32_t error,
                      const char *msg)
{
    if (!c->structured)
        return send_simple(c, w, error, NULL, 0);
    size_t ml = msg ? strlen(msg) : 0;
    if (ml > 1024)
        ml = 1024;
    struct nbd_structured_reply h;
    struct nbd_chunk_error e = { .error = htobe32(error), .msglen = htobe16((uint16_t)ml) };
    nbd_chunk_header(&h, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, w->req.handle,
                 (uint32_t)(sizeof(e) + ml));
    struct iovec iov[3] = { { &h, sizeof(h) }, { &e, sizeof(e) }, { (void *)msg, ml } };
    pthread_mutex_lock(&c->write_lock);
    int r = nbd_send_iov(c, iov, 3);
    pthread_mutex_unlock(&c->write_lock);
    return r;
}

static int send_ok(struct nbd_conn *c, const struct nbd_work *w)
{
    if (!c->structured)
        return send_simple(c, w, 0, NULL, 0);
    struct nbd_structured_reply h;
    nbd_chunk_header(&h, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, w->req.handle, 0);
    struct iovec iov = { &h, sizeof(h) };
    pthread_mutex_lock(&c->write_lock);
    int r = nbd_send_iov(c, &iov, 1);
    pthread_mutex_unlock(&c->write_lock);
    return r;
}

/* Reply to a failed operation, logging errors that are the server's. */
int nbd_reply_errno(struct nbd_conn *c, const struct nbd_work *w, int err, const char *what)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "%s at offset %" PRIu64 " length %" PRIu32 ": %s", what,
             w->req.offset, w->req.length, strerror(-err));
    if (err != -EINVAL && err != -ENOTSUP && err != -EPERM)
        nbd_log(NBD_LOG_ERR, "%s: export '%s': %s", c->peer, c->exp->name, msg);
    return send_error(c, w, nbd_errno_to_wire(err), msg);
}

/* ---- commands ---- */

struct extent {
    uint64_t len;
    bool zero;
};

/* Split [off, off+len) into data and zero pieces (at most max). */
static int read_extents(struct vdk_node *n, uint64_t off, uint64_t len,
                        struct extent *ext, int max)
{
    int k = 0;
    while (len) {
        uint64_t pnum = 0;
        int r = vdk_block_status_above(n, NULL, off, len, &pnum, NULL, NULL, NULL);
        if (r < 0 || pnum == 0 || pnum > len)
            return r < 0 ? r : -EIO;
        bool zero = r & VDK_BS_ZERO;
        if (k > 0 && ext[k - 1].zero == zero) {
            ext[k - 1].len += pnum;
        } else if (k == max) {
            ext[k - 1].len += len; /* the rest is sent as it lands */
            ext[k - 1].zero = false;
            return k;
        } else {
            ext[k].len = pnum;
            ext[k].zero = zero;
            k++;
        }
        off += pnum;
        len -= pnum;
    }
    return k;
}

static int cmd_read(struct nbd_conn *c, struct nbd_work *w)
{
    struct vdk_node *n = c->exp->node;
    uint64_t off = w->req.offset;
    uint32_t len = w->req.length;
    if (nbd_read_zerocopy(c, w))
        return 0;
    struct extent ext[MAX_READ_CHUNKS];
    int next = 1;
    ext[0].len = len;
    ext[0].zero = false;
    bool sparse = c->structured && !(w->req.flags & NBD_CMD_FLAG_DF) &&
                  len >= SPARSE_READ_MIN;
    if (sparse) {
        int r = read_extents(n, off, len, ext, MAX_READ_CHUNKS);
        if (r > 0)
            next = r;
        /* On error fall back to one data chunk; the read reports errors. */
    }
    uint8_t *buf = nbd_buf_get(len);
    if (!buf)
        return nbd_reply_errno(c, w, -ENOMEM, "read");
    uint64_t pos = 0;
    for (int i = 0; i < next; i++) {
        if (!ext[i].zero) {
            int r = vdk_pread(n, buf + pos, ext[i].len, off + pos, 0);
            if (r < 0) {
                nbd_buf_put(buf, len);
                return nbd_reply_errno(c, w, r, "read");
            }
        }
        pos += ext[i].len;
    }
    int r;
    if (!c->structured) {
        r = send_simple(c, w, 0, buf, len);
        nbd_buf_put(buf, len);
        return r;
    }
    /* Header + offset (+ data) per chunk, all in one locked write. */
    struct nbd_structured_reply hdr[MAX_READ_CHUNKS];
    struct nbd_chunk_offset_hole hole[MAX_READ_CHUNKS];
    uint64_t boff[MAX_READ_CHUNKS];
    struct iovec iov[MAX_READ_CHUNKS * 3];
    int ni = 0;
    pos = 0;
    for (int i = 0; i < next; i++) {
        uint16_t fl = i == next - 1 ? NBD_REPLY_FLAG_DONE : 0;
        uint32_t el = (uint32_t)ext[i].len;
        if (ext[i].zero) {
            nbd_chunk_header(&hdr[i], fl, NBD_REPLY_TYPE_OFFSET_HOLE, w->req.handle, 12);
            hole[i].offset = htobe64(off + pos);
            hole[i].length = htobe32(el);
            iov[ni++] = (struct iovec){ &hdr[i], sizeof(hdr[i]) };
            iov[ni++] = (struct iovec){ &hole[i], sizeof(hole[i]) };
        } else {
            nbd_chunk_header(&hdr[i], fl, NBD_REPLY_TYPE_OFFSET_DATA, w->req.handle, 8 + el);
            boff[i] = htobe64(off + pos);
            iov[ni++] = (struct iovec){ &hdr[i], sizeof(hdr[i]) };
            iov[ni++] = (struct iovec){ &boff[i], 8 };
            iov[ni++] = (struct iovec){ buf + pos, el };
        }
        pos += el;
    }
    pthread_mutex_lock(&c->write_lock);
    r = nbd_send_iov(c, iov, ni);
    pthread_mutex_unlock(&c->write_lock);
    nbd_buf_put(buf, len);
    return r;
}

unsigned nbd_write_flags(const struct nbd_conn *c, const struct nbd_work *w)
{
    return (w->req.flags & NBD_CMD_FLAG_FUA) || c->exp->writethrough ? VDK_REQ_FUA : 0;
}

static int cmd_write(struct nbd_conn *c, struct nbd_work *w)
{
    int r = vdk_pwrite(c->exp->node, w->buf, w->req.length, w->req.offset,
                       nbd_write_flags(c, w));
    return r < 0 ? nbd_reply_errno(c, w, r, "write") : send_ok(c, w);
}

static int cmd_zeroes(struct nbd_conn *c, struct nbd_work *w)
{
    unsigned fl = nbd_write_flags(c, w);
    if (!(w->req.flags & NBD_CMD_FLAG_NO_HOLE) && c->exp->discard)
        fl |= VDK_REQ_MAY_UNMAP;
    if (w->req.flags & NBD_CMD_FLAG_FAST_ZERO)
        fl |= VDK_REQ_NO_FALLBACK;
    int r = vdk_pwrite_zeroes(c->exp->node, w->req.offset, w->req.length, fl);
    return r < 0 ? nbd_reply_errno(c, w, r, "write zeroes") : send_ok(c, w);
}

static int cmd_trim(struct nbd_conn *c, struct nbd_work *w)
{
    int r = 0;
    if (c->exp->discard)
        r = vdk_discard(c->exp->node, w->req.offset, w->req.length);
    if (r == 0 && (nbd_write_flags(c, w) & VDK_REQ_FUA))
        r = vdk_flush(c->exp->node);
    return r < 0 ? nbd_reply_errno(c, w, r, "trim") : send_ok(c, w);
}

static int cmd_flush(struct nbd_conn *c, struct nbd_work *w)
{
    int r = vdk_flush(c->exp->node);
    return r < 0 ? nbd_reply_errno(c, w, r, "flush") : send_ok(c, w);
}

/* Advisory prefetch: read the range through the page cache and drop it. */
static int cmd_cache(struct nbd_conn *c, struct nbd_work *w)
{
    uint64_t off = w->req.offset, left = w->req.length;
    uint8_t *buf = vdk_buffer_alloc(CACHE_CHUNK);
    if (!buf)
        return nbd_reply_errno(c, w, -ENOMEM, "cache");
    int r = 0;
    while (left && r == 0 && !atomic_load(&c->dead)) {
        uint64_t n = left < CACHE_CHUNK ? left : CACHE_CHUNK;
        r = vdk_pread(c->exp->node, buf, n, off, 0);
        off += n;
        left -= n;
    }
    vdk_buffer_free(buf);
    return r < 0 ? nbd_reply_errno(c, w, r, "cache") : send_ok(c, w);
}

uint64_t nbd_extent_push(struct nbd_block_descriptor *d, int *k, int max, uint64_t pnum,
                         uint32_t flags)
{
    if (*k > 0 && be32toh(d[*k - 1].status_flags) == flags &&
        (uint64_t)be32toh(d[*k - 1].length) + pnum <= UINT32_MAX) {
        d[*k - 1].length = htobe32(be32toh(d[*k - 1].length) + (uint32_t)pnum);
        return pnum;
    }
    if (*k == max)
        return 0;
    if (pnum > UINT32_MAX - 511) /* one descriptor holds under 4 GiB, in sectors */
        pnum = UINT32_MAX - 511;
    d[*k].length = htobe32((uint32_t)pnum);
    d[*k].status_flags = htobe32(flags);
    (*k)++;
    return pnum;
}

/* Fill descriptors for one context.  Returns the count or -errno. */
static int status_extents(struct nbd_conn *c, bool depth_ctx, uint64_t off, uint64_t len,
                          int max, struct nbd_block_descriptor *d)
{
    struct vdk_node *n = c->exp->node;
    int k = 0;
    while (len) {
        uint64_t pnum = 0;
        int depth = 0;
        int r = vdk_block_status_above(n, NULL, off, len, &pnum, NULL, NULL, &depth);
        if (r < 0)
            return r;
        if (pnum == 0 || pnum > len)
            return -EIO;
        uint32_t v;
        if (depth_ctx)
            v = (r & VDK_BS_ALLOCATED) ? (uint32_t)depth + 1 : 0;
        else
            v = ((r & VDK_BS_DATA) ? 0 : NBD_STATE_HOLE) | ((r & VDK_BS_ZERO) ? NBD_STATE_ZERO : 0);
        pnum = nbd_extent_push(d, &k, max, pnum, v);
        if (pnum == 0)
            break;
        off += pnum;
        len -= pnum;
    }
    return k;
}

/* One BLOCK_STATUS chunk per selected context: base:allocation,
   qemu:allocation-depth, then each qemu:dirty-bitmap:NAME. */
static int cmd_block_status(struct nbd_conn *c, struct nbd_work *w)
{
    enum { NCTX = 2 + NBD_MAX_BITMAPS };
    int max = (w->req.flags & NBD_CMD_FLAG_REQ_ONE) ? 1 : NBD_MAX_EXTENTS;
    struct nbd_block_descriptor *d[NCTX] = { NULL };
    uint32_t ids[NCTX], idbe[NCTX];
    int cnt[NCTX], nctx = 0, r = 0;
    for (int i = 0; i < NCTX && r >= 0; i++) {
        bool on = i == 0 ? c->meta_base : i == 1 ? c->meta_depth
                                                 : (c->meta_bitmaps >> (i - 2)) & 1;
        if (!on)
            continue;
        d[nctx] = malloc(sizeof(*d[nctx]) * (size_t)max);
        if (!d[nctx]) {
            r = -ENOMEM;
            break;
        }
        ids[nctx] = i == 0 ? NBD_META_ID_BASE_ALLOCATION
                    : i == 1 ? NBD_META_ID_ALLOCATION_DEPTH
                             : NBD_META_ID_BITMAP0 + (uint32_t)(i - 2);
        r = cnt[nctx] = i < 2 ? status_extents(c, i == 1, w->req.offset, w->req.length,
                                               max, d[nctx])
                              : nbd_bitmap_extents(c->exp, (size_t)(i - 2), w->req.offset,
                                                   w->req.length, max, d[nctx]);
        nctx++;
    }
    struct nbd_structured_reply h[NCTX];
    struct iovec iov[3 * NCTX];
    int ni = 0;
    for (int i = 0; r >= 0 && i < nctx; i++) {
        idbe[i] = htobe32(ids[i]);
        size_t dl = sizeof(*d[i]) * (size_t)cnt[i];
        nbd_chunk_header(&h[i], i == nctx - 1 ? NBD_REPLY_FLAG_DONE : 0,
                         NBD_REPLY_TYPE_BLOCK_STATUS, w->req.handle, (uint32_t)(4 + dl));
        iov[ni++] = (struct iovec){ &h[i], sizeof(h[i]) };
        iov[ni++] = (struct iovec){ &idbe[i], 4 };
        iov[ni++] = (struct iovec){ d[i], dl };
    }
    if (r >= 0) {
        pthread_mutex_lock(&c->write_lock);
        r = nbd_send_iov(c, iov, ni);
        pthread_mutex_unlock(&c->write_lock);
    } else {
        r = nbd_reply_errno(c, w, r, "block status");
    }
    for (int i = 0; i < nctx; i++)
        free(d[i]);
    return r;
}

int nbd_run_request(struct nbd_conn *c, struct nbd_work *w)
{
    if (w->error)
        return send_error(c, w, w->error, w->errmsg);
    switch (w->req.type) {
    case NBD_CMD_READ: return cmd_read(c, w);
    case NBD_CMD_WRITE: return cmd_write(c, w);
    case NBD_CMD_WRITE_ZEROES: return cmd_zeroes(c, w);
    case NBD_CMD_TRIM: return cmd_trim(c, w);
    case NBD_CMD_FLUSH: return cmd_flush(c, w);
    case NBD_CMD_CACHE: return cmd_cache(c, w);
    case NBD_CMD_BLOCK_STATUS: return cmd_block_status(c, w);
    default: return send_error(c, w, NBD_EINVAL, "unknown command");
    }
}
