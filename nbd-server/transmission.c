/* SPDX-License-Identifier: MIT */
/*
 * Transmission phase.  A small pool of threads per connection takes turns
 * reading requests (and write payloads); each runs the request it read
 * against the export's node and sends the reply as soon as it is ready,
 * holding the connection's write lock only while the reply is on the
 * wire.  Replies may therefore leave in a different order than the
 * requests came, as the protocol allows.
 *
 * Bounds: a request's length is checked against NBD_MAX_REQUEST_LEN and
 * the export size before any buffer is allocated, and the reader stops
 * taking requests while the connection holds more than max_inflight bytes
 * of buffers, so a client cannot make the server allocate without limit.
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
/* Accounting cost of a request without a data buffer. */
#define MIN_COST 4096u

struct work {
    struct nbd_request_parsed {
        uint16_t flags, type;
        uint64_t handle, offset;
        uint32_t length;
    } req;
    uint32_t error;          /* wire error found while parsing, 0: none */
    const char *errmsg;
    uint8_t *buf;            /* write payload */
    uint64_t cost;
};

/*
 * Workers take turns being the reader (leader/follower): the thread that
 * holds read_lock reads one request and its payload, lets go of the lock,
 * then runs the request and sends its reply itself.  No queue and no
 * hand-off between threads: the next reader is simply the next thread
 * the mutex lets in.
 */
struct pool {
    struct nbd_conn *c;
    pthread_mutex_t read_lock;  /* the reader role */
    atomic_bool closing;     /* stop reading: DISC, end of stream, error */
    int result;              /* why the reading stopped (under read_lock) */
    atomic_uint waiting;     /* threads queued for the reader role */
    pthread_t *threads;      /* started so far (under read_lock) */
    unsigned n_threads;
    unsigned max_threads;    /* besides the caller; 0 with workers=0: inline */
    /* Accounting is atomic so the common case takes no lock; only a
       reader over the cap sleeps on `room`. */
    pthread_mutex_t lock;
    pthread_cond_t room;     /* in-flight bytes went down */
    _Atomic uint64_t inflight; /* bytes held by requests read and not done */
    atomic_uint pending;     /* requests read and not done */
    atomic_uint room_waiters;
};

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

static void *buf_alloc(size_t n)
{
    void *p = NULL;
    /* Page aligned so cache=none (O_DIRECT) needs no bounce buffer. */
    return posix_memalign(&p, 4096, n ? n : 1) == 0 ? p : NULL;
}

/* ---- replies ---- */

static int send_iov(struct nbd_conn *c, struct iovec *iov, int n)
{
    if (atomic_load(&c->dead))
        return -EPIPE;
    int r = nbd_io_writev(&c->io, iov, n);
    if (r < 0) {
        /* The client is gone: stop the reader too. */
        atomic_store(&c->dead, true);
        nbd_io_shutdown_read(&c->io);
    }
    return r;
}

static void chunk_header(struct nbd_structured_reply *h, uint16_t flags, uint16_t type,
                         uint64_t handle, uint32_t len)
{
    h->magic = htobe32(NBD_STRUCTURED_REPLY_MAGIC);
    h->flags = htobe16(flags);
    h->type = htobe16(type);
    h->handle = handle; /* opaque: echoed as received */
    h->length = htobe32(len);
}

/* A whole reply (all its chunks) under the write lock. */
static int send_simple(struct nbd_conn *c, const struct work *w, uint32_t error,
                       const void *data, size_t len)
{
    struct nbd_simple_reply h = {
        .magic = htobe32(NBD_SIMPLE_REPLY_MAGIC),
        .error = htobe32(error),
        .handle = w->req.handle,
    };
    struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)data, error ? 0 : len } };
    pthread_mutex_lock(&c->write_lock);
    int r = send_iov(c, iov, 2);
    pthread_mutex_unlock(&c->write_lock);
    return r;
}

static int send_error(struct nbd_conn *c, const struct work *w, uint32_t error,
                      const char *msg)
{
    if (!c->structured)
        return send_simple(c, w, error, NULL, 0);
    size_t ml = msg ? strlen(msg) : 0;
    if (ml > 1024)
        ml = 1024;
    struct nbd_structured_reply h;
    struct nbd_chunk_error e = { .error = htobe32(error), .msglen = htobe16((uint16_t)ml) };
    chunk_header(&h, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, w->req.handle,
                 (uint32_t)(sizeof(e) + ml));
    struct iovec iov[3] = { { &h, sizeof(h) }, { &e, sizeof(e) }, { (void *)msg, ml } };
    pthread_mutex_lock(&c->write_lock);
    int r = send_iov(c, iov, 3);
    pthread_mutex_unlock(&c->write_lock);
    return r;
}

static int send_ok(struct nbd_conn *c, const struct work *w)
{
    if (!c->structured)
        return send_simple(c, w, 0, NULL, 0);
    struct nbd_structured_reply h;
    chunk_header(&h, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, w->req.handle, 0);
    struct iovec iov = { &h, sizeof(h) };
    pthread_mutex_lock(&c->write_lock);
    int r = send_iov(c, &iov, 1);
    pthread_mutex_unlock(&c->write_lock);
    return r;
}

/* Reply to a failed operation, logging errors that are the server's. */
static int reply_errno(struct nbd_conn *c, const struct work *w, int err, const char *what)
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

static int cmd_read(struct nbd_conn *c, struct work *w)
{
    struct vdk_node *n = c->exp->node;
    uint64_t off = w->req.offset;
    uint32_t len = w->req.length;
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
    uint8_t *buf = buf_alloc(len);
    if (!buf)
        return reply_errno(c, w, -ENOMEM, "read");
    uint64_t pos = 0;
    for (int i = 0; i < next; i++) {
        if (!ext[i].zero) {
            int r = vdk_pread(n, buf + pos, ext[i].len, off + pos, 0);
            if (r < 0) {
                free(buf);
                return reply_errno(c, w, r, "read");
            }
        }
        pos += ext[i].len;
    }
    int r;
    if (!c->structured) {
        r = send_simple(c, w, 0, buf, len);
        free(buf);
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
            chunk_header(&hdr[i], fl, NBD_REPLY_TYPE_OFFSET_HOLE, w->req.handle, 12);
            hole[i].offset = htobe64(off + pos);
            hole[i].length = htobe32(el);
            iov[ni++] = (struct iovec){ &hdr[i], sizeof(hdr[i]) };
            iov[ni++] = (struct iovec){ &hole[i], sizeof(hole[i]) };
        } else {
            chunk_header(&hdr[i], fl, NBD_REPLY_TYPE_OFFSET_DATA, w->req.handle, 8 + el);
            boff[i] = htobe64(off + pos);
            iov[ni++] = (struct iovec){ &hdr[i], sizeof(hdr[i]) };
            iov[ni++] = (struct iovec){ &boff[i], 8 };
            iov[ni++] = (struct iovec){ buf + pos, el };
        }
        pos += el;
    }
    pthread_mutex_lock(&c->write_lock);
    r = send_iov(c, iov, ni);
    pthread_mutex_unlock(&c->write_lock);
    free(buf);
    return r;
}

static unsigned write_flags(struct nbd_conn *c, const struct work *w)
{
    return (w->req.flags & NBD_CMD_FLAG_FUA) || c->exp->writethrough ? VDK_REQ_FUA : 0;
}

static int cmd_write(struct nbd_conn *c, struct work *w)
{
    int r = vdk_pwrite(c->exp->node, w->buf, w->req.length, w->req.offset,
                       write_flags(c, w));
    return r < 0 ? reply_errno(c, w, r, "write") : send_ok(c, w);
}

static int cmd_zeroes(struct nbd_conn *c, struct work *w)
{
    unsigned fl = write_flags(c, w);
    if (!(w->req.flags & NBD_CMD_FLAG_NO_HOLE) && c->exp->discard)
        fl |= VDK_REQ_MAY_UNMAP;
    if (w->req.flags & NBD_CMD_FLAG_FAST_ZERO)
        fl |= VDK_REQ_NO_FALLBACK;
    int r = vdk_pwrite_zeroes(c->exp->node, w->req.offset, w->req.length, fl);
    return r < 0 ? reply_errno(c, w, r, "write zeroes") : send_ok(c, w);
}

static int cmd_trim(struct nbd_conn *c, struct work *w)
{
    int r = 0;
    if (c->exp->discard)
        r = vdk_discard(c->exp->node, w->req.offset, w->req.length);
    if (r == 0 && (write_flags(c, w) & VDK_REQ_FUA))
        r = vdk_flush(c->exp->node);
    return r < 0 ? reply_errno(c, w, r, "trim") : send_ok(c, w);
}

static int cmd_flush(struct nbd_conn *c, struct work *w)
{
    int r = vdk_flush(c->exp->node);
    return r < 0 ? reply_errno(c, w, r, "flush") : send_ok(c, w);
}

/* Advisory prefetch: read the range through the page cache and drop it. */
static int cmd_cache(struct nbd_conn *c, struct work *w)
{
    uint64_t off = w->req.offset, left = w->req.length;
    uint8_t *buf = buf_alloc(CACHE_CHUNK);
    if (!buf)
        return reply_errno(c, w, -ENOMEM, "cache");
    int r = 0;
    while (left && r == 0 && !atomic_load(&c->dead)) {
        uint64_t n = left < CACHE_CHUNK ? left : CACHE_CHUNK;
        r = vdk_pread(c->exp->node, buf, n, off, 0);
        off += n;
        left -= n;
    }
    free(buf);
    return r < 0 ? reply_errno(c, w, r, "cache") : send_ok(c, w);
}

/* Fill descriptors for one context.  Returns the count or -errno. */
static int status_extents(struct nbd_conn *c, bool depth_ctx, uint64_t off, uint64_t len,
                          int max, struct nbd_block_descriptor *d)
{
    struct vdk_node *n = c->exp->node;
    int k = 0;
    uint32_t last = 0;
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
        /* Merge with the previous descriptor while it stays under 4 GiB. */
        if (k > 0 && v == last && (uint64_t)be32toh(d[k - 1].length) + pnum <= UINT32_MAX) {
            d[k - 1].length = htobe32(be32toh(d[k - 1].length) + (uint32_t)pnum);
        } else {
            if (k == max)
                break;
            d[k].length = htobe32((uint32_t)pnum);
            d[k].status_flags = htobe32(v);
            last = v;
            k++;
        }
        off += pnum;
        len -= pnum;
    }
    return k;
}

static int cmd_block_status(struct nbd_conn *c, struct work *w)
{
    int max = (w->req.flags & NBD_CMD_FLAG_REQ_ONE) ? 1 : NBD_MAX_EXTENTS;
    bool ctx[2] = { c->meta_base, c->meta_depth };
    uint32_t ids[2] = { NBD_META_ID_BASE_ALLOCATION, NBD_META_ID_ALLOCATION_DEPTH };
    struct nbd_block_descriptor *d[2] = { NULL, NULL };
    int cnt[2] = { 0, 0 };
    int r = 0;
    for (int i = 0; i < 2 && r >= 0; i++) {
        if (!ctx[i])
            continue;
        d[i] = malloc(sizeof(*d[i]) * (size_t)max);
        if (!d[i]) {
            r = -ENOMEM;
            break;
        }
        r = cnt[i] = status_extents(c, i == 1, w->req.offset, w->req.length, max, d[i]);
    }
    if (r < 0) {
        free(d[0]);
        free(d[1]);
        return reply_errno(c, w, r, "block status");
    }
    struct nbd_structured_reply h[2];
    uint32_t idbe[2];
    struct iovec iov[6];
    int ni = 0, last = ctx[1] ? 1 : 0;
    for (int i = 0; i < 2; i++) {
        if (!ctx[i])
            continue;
        idbe[i] = htobe32(ids[i]);
        size_t dl = sizeof(*d[i]) * (size_t)cnt[i];
        chunk_header(&h[i], i == last ? NBD_REPLY_FLAG_DONE : 0,
                     NBD_REPLY_TYPE_BLOCK_STATUS, w->req.handle, (uint32_t)(4 + dl));
        iov[ni++] = (struct iovec){ &h[i], sizeof(h[i]) };
        iov[ni++] = (struct iovec){ &idbe[i], 4 };
        iov[ni++] = (struct iovec){ d[i], dl };
    }
    pthread_mutex_lock(&c->write_lock);
    r = send_iov(c, iov, ni);
    pthread_mutex_unlock(&c->write_lock);
    free(d[0]);
    free(d[1]);
    return r;
}

static void run_work(struct nbd_conn *c, struct work *w)
{
    if (w->error) {
        send_error(c, w, w->error, w->errmsg);
        return;
    }
    switch (w->req.type) {
    case NBD_CMD_READ: cmd_read(c, w); break;
    case NBD_CMD_WRITE: cmd_write(c, w); break;
    case NBD_CMD_WRITE_ZEROES: cmd_zeroes(c, w); break;
    case NBD_CMD_TRIM: cmd_trim(c, w); break;
    case NBD_CMD_FLUSH: cmd_flush(c, w); break;
    case NBD_CMD_CACHE: cmd_cache(c, w); break;
    case NBD_CMD_BLOCK_STATUS: cmd_block_status(c, w); break;
    default: send_error(c, w, NBD_EINVAL, "unknown command"); break;
    }
}

/* ---- request validation (no I/O: shared with the fuzzer) ---- */

/*
 * Check a request against the export.  Returns 0 when it may run, or a
 * wire error with *msg set.  *payload is how many bytes follow the header
 * (a write's data, which must be read even when the request is refused).
 */
static uint32_t check_request(const struct nbd_conn *c, const struct nbd_request_parsed *q,
                              uint32_t *payload, const char **msg)
{
    const struct nbd_export *e = c->exp;
    static const uint16_t allowed[] = {
        [NBD_CMD_READ] = NBD_CMD_FLAG_DF,
        [NBD_CMD_WRITE] = NBD_CMD_FLAG_FUA,
        [NBD_CMD_DISC] = 0,
        [NBD_CMD_FLUSH] = 0,
        [NBD_CMD_TRIM] = NBD_CMD_FLAG_FUA,
        [NBD_CMD_CACHE] = 0,
        [NBD_CMD_WRITE_ZEROES] = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE |
                                 NBD_CMD_FLAG_FAST_ZERO,
        [NBD_CMD_BLOCK_STATUS] = NBD_CMD_FLAG_REQ_ONE,
    };
    *payload = q->type == NBD_CMD_WRITE ? q->length : 0;
    if (q->type > NBD_CMD_BLOCK_STATUS) {
        *msg = "unknown command";
        return NBD_EINVAL;
    }
    if (q->flags & ~allowed[q->type]) {
        *msg = "flag not valid for this command";
        return NBD_EINVAL;
    }
    if ((q->flags & NBD_CMD_FLAG_DF) && !c->structured) {
        *msg = "DF needs structured replies";
        return NBD_EINVAL;
    }
    bool writes = q->type == NBD_CMD_WRITE || q->type == NBD_CMD_TRIM ||
                  q->type == NBD_CMD_WRITE_ZEROES;
    if (writes && e->readonly) {
        *msg = "export is read-only";
        return NBD_EPERM;
    }
    if ((q->type == NBD_CMD_READ || q->type == NBD_CMD_WRITE) &&
        q->length > NBD_MAX_REQUEST_LEN) {
        *msg = "request larger than 32 MiB";
        return NBD_EINVAL;
    }
    if (q->type == NBD_CMD_FLUSH)
        return 0; /* offset and length are meaningless */
    if (q->offset > e->size || q->length > e->size - q->offset) {
        *msg = "request beyond the end of the export";
        return writes ? NBD_ENOSPC : NBD_EINVAL;
    }
    if (q->type == NBD_CMD_BLOCK_STATUS) {
        if (!c->structured || (!c->meta_base && !c->meta_depth)) {
            *msg = "no metadata context was negotiated";
            return NBD_EINVAL;
        }
        if (q->length == 0) {
            *msg = "zero length block status";
            return NBD_EINVAL;
        }
    }
    return 0;
}

/* ---- the pool ---- */

static bool has_room(struct pool *p, uint64_t cost)
{
    return atomic_load(&p->pending) == 0 ||
           atomic_load(&p->inflight) + cost <= p->c->srv->max_inflight;
}

/* Wait for room under the in-flight cap (a lone request always fits).
   Only the thread holding the reader role calls this. */
static void reserve(struct pool *p, uint64_t cost)
{
    if (!has_room(p, cost)) {
        pthread_mutex_lock(&p->lock);
        atomic_fetch_add(&p->room_waiters, 1);
        while (!has_room(p, cost))
            pthread_cond_wait(&p->room, &p->lock);
        atomic_fetch_sub(&p->room_waiters, 1);
        pthread_mutex_unlock(&p->lock);
    }
    atomic_fetch_add(&p->inflight, cost);
    atomic_fetch_add(&p->pending, 1);
}

static void release(struct pool *p, uint64_t cost)
{
    atomic_fetch_sub(&p->inflight, cost);
    atomic_fetch_sub(&p->pending, 1);
    /* Sequentially consistent: either the waiter sees the new totals
       before it sleeps, or we see it waiting and wake it. */
    if (atomic_load(&p->room_waiters)) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->room);
        pthread_mutex_unlock(&p->lock);
    }
}

/*
 * Read one request (and a write's payload).  Returns 1 with *out set, or
 * 0 at DISC / end of stream, or -errno.  Requests that fail validation
 * come back with w->error set so they are answered in order of arrival.
 */
static int read_request(struct pool *p, struct work **out)
{
    struct nbd_conn *c = p->c;
    struct nbd_request raw;
    int r = nbd_io_read(&c->io, &raw, sizeof(raw));
    if (r < 0)
        return r == -ECONNRESET ? 0 : r; /* client gone, or shutdown */
    if (be32toh(raw.magic) != NBD_REQUEST_MAGIC) {
        nbd_log(NBD_LOG_INFO, "%s: bad request magic, disconnecting", c->peer);
        return -EPROTO;
    }
    struct nbd_request_parsed q = {
        .flags = be16toh(raw.flags),
        .type = be16toh(raw.type),
        .handle = raw.handle,
        .offset = be64toh(raw.offset),
        .length = be32toh(raw.length),
    };
    if (q.type == NBD_CMD_DISC)
        return 0;
    const char *msg = NULL;
    uint32_t payload = 0;
    uint32_t err = check_request(c, &q, &payload, &msg);
    uint64_t cost = MIN_COST;
    if (!err && (q.type == NBD_CMD_READ || q.type == NBD_CMD_WRITE))
        cost += q.length;
    reserve(p, cost);
    struct work *w = calloc(1, sizeof(*w));
    if (w && payload && !err && !(w->buf = buf_alloc(payload))) {
        free(w);
        w = NULL;
    }
    if (!w) {
        release(p, cost);
        nbd_log(NBD_LOG_ERR, "%s: out of memory", c->peer);
        return -ENOMEM;
    }
    w->req = q;
    w->error = err;
    w->errmsg = msg;
    w->cost = cost;
    if (payload) {
        /* A refused write's data is read and dropped to stay in step. */
        r = w->buf ? nbd_io_read(&c->io, w->buf, payload) : nbd_io_skip(&c->io, payload);
        if (r < 0) {
            free(w->buf);
            free(w);
            release(p, cost);
            return r == -ECONNRESET ? 0 : r;
        }
    }
    if (atomic_load(&c->srv->stopping)) {
        /* Shutting down: refuse what has not started. */
        w->error = NBD_ESHUTDOWN;
        w->errmsg = "server is shutting down";
    }
    *out = w;
    return 1;
}

static void finish_work(struct pool *p, struct work *w)
{
    run_work(p->c, w);
    uint64_t cost = w->cost;
    free(w->buf);
    free(w);
    release(p, cost);
}

static void *worker_main(void *arg);

/* Start one more worker when nobody is queued to read next.  Called
   with read_lock held. */
static void maybe_grow(struct pool *p)
{
    if (atomic_load(&p->waiting) || p->n_threads >= p->max_threads)
        return;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1u << 20);
    if (pthread_create(&p->threads[p->n_threads], &attr, worker_main, p) == 0)
        p->n_threads++;
    pthread_attr_destroy(&attr);
}

static void *worker_main(void *arg)
{
    struct pool *p = arg;
    for (;;) {
        atomic_fetch_add(&p->waiting, 1);
        pthread_mutex_lock(&p->read_lock);
        atomic_fetch_sub(&p->waiting, 1);
        if (atomic_load(&p->closing)) {
            pthread_mutex_unlock(&p->read_lock);
            break;
        }
        struct work *w = NULL;
        int r = read_request(p, &w);
        if (r <= 0) {
            p->result = r;
            atomic_store(&p->closing, true);
            pthread_mutex_unlock(&p->read_lock);
            break;
        }
        maybe_grow(p);
        pthread_mutex_unlock(&p->read_lock);
        finish_work(p, w);
    }
    return NULL;
}

int nbd_transmission(struct nbd_conn *c)
{
    struct pool p;
    memset(&p, 0, sizeof(p));
    p.c = c;
    atomic_init(&p.closing, false);
    atomic_init(&p.waiting, 0);
    atomic_init(&p.inflight, 0);
    atomic_init(&p.pending, 0);
    atomic_init(&p.room_waiters, 0);
    pthread_mutex_init(&p.read_lock, NULL);
    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.room, NULL);
    unsigned max = c->srv->workers;
    if (max > 1 && !(p.threads = calloc(max - 1, sizeof(*p.threads))))
        max = 1;
    p.max_threads = max ? max - 1 : 0; /* the caller is one of them */
    if (max == 0) {
        /* Inline: read, run, repeat (the fuzzer; deterministic). */
        struct work *w = NULL;
        int r;
        while ((r = read_request(&p, &w)) > 0)
            finish_work(&p, w);
        p.result = r;
    } else {
        worker_main(&p);
        /* Everything in flight finishes before the connection closes.
           No thread starts once closing is set, so n_threads is final. */
        pthread_mutex_lock(&p.read_lock);
        unsigned n = p.n_threads;
        pthread_mutex_unlock(&p.read_lock);
        for (unsigned i = 0; i < n; i++)
            pthread_join(p.threads[i], NULL);
    }
    free(p.threads);
    pthread_mutex_destroy(&p.read_lock);
    pthread_mutex_destroy(&p.lock);
    pthread_cond_destroy(&p.room);
    return p.result;
}
