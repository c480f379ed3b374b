/* SPDX-License-Identifier: MIT */
/*
 * Transmission phase.  A small pool of threads per connection takes turns
 * reading requests (and write payloads); each runs the request it read
 * against the export's node and sends the reply as soon as it is ready,
 * holding the connection's write lock only while the reply is on the
 * wire.  Replies may therefore leave in a different order than the
 * requests came, as the protocol allows.  Small requests that arrived
 * together are taken and answered as one batch (batch.c).
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

/* Accounting cost of a request without a data buffer. */
#define MIN_COST 4096u

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

/* ---- request validation (no I/O: shared with the fuzzer) ---- */

/*
 * Check a request against the export.  Returns 0 when it may run, or a
 * wire error with *msg set.  *payload is how many bytes follow the header
 * (a write's data, which must be read even when the request is refused).
 */
static uint32_t check_request(const struct nbd_conn *c, const struct nbd_req *q,
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
        if (!c->structured || (!c->meta_base && !c->meta_depth && !c->meta_bitmaps)) {
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
 * Read one request (and a write's payload, into slot when it is not NULL:
 * a batch arena slice).  Returns 1 with *w set, or 0 at DISC / end of
 * stream, or -errno.  Requests that fail validation come back with
 * w->error set so they are answered in order of arrival.
 */
static int read_request(struct pool *p, struct nbd_work *w, uint8_t *slot)
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
    struct nbd_req q = {
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
    memset(w, 0, sizeof(*w));
    w->in_batch = slot != NULL;
    if (payload && !err && !(w->buf = slot ? slot : nbd_buf_get(payload))) {
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
            if (!w->in_batch)
                nbd_buf_put(w->buf, payload);
            w->buf = NULL;
            release(p, cost);
            return r == -ECONNRESET ? 0 : r;
        }
    }
    if (atomic_load(&c->srv->stopping)) {
        /* Shutting down: refuse what has not started. */
        w->error = NBD_ESHUTDOWN;
        w->errmsg = "server is shutting down";
    }
    if (slot && !err && q.type == NBD_CMD_READ)
        w->buf = slot; /* where the batch reads the data to */
    return 1;
}

/*
 * Take the requests to run next (called holding the reader role): every
 * small request already received, as one batch (batch.c), or else one
 * request read the ordinary way.  Returns 1 with *n >= 1 requests in w,
 * or the end of reading (0 or -errno), with *n requests still to run.
 */
/* The next request's header if it has been received whole (nothing is
   consumed), decoded into q; false if not, or if its magic is wrong
   (read_request then reports that). */
static bool peek_request(struct nbd_conn *c, struct nbd_req *q)
{
    const uint8_t *h = nbd_io_peek(&c->io, sizeof(struct nbd_request));
    if (!h)
        return false;
    struct nbd_request raw;
    memcpy(&raw, h, sizeof(raw));
    *q = (struct nbd_req){ .flags = be16toh(raw.flags), .type = be16toh(raw.type),
                           .handle = raw.handle, .offset = be64toh(raw.offset),
                           .length = be32toh(raw.length) };
    return be32toh(raw.magic) == NBD_REQUEST_MAGIC;
}

static int take_requests(struct pool *p, struct nbd_work *w, int *n)
{
    struct nbd_conn *c = p->c;
    *n = 0;
    int r = nbd_io_wait_input(&c->io);
    if (r < 0)
        return r == -ECONNRESET ? 0 : r;
    uint8_t *arena = nbd_batch_arena();
    uint32_t used = 0;
    while (arena && *n < NBD_BATCH_MAX) {
        struct nbd_req q;
        if (!peek_request(c, &q) || !nbd_batchable(c, &q))
            break;
        uint32_t slice = nbd_batch_slice(q.length);
        /* Never wait for in-flight room while holding a batch: stop. */
        if (used + slice > NBD_BATCH_ARENA ||
            (*n && !has_room(p, MIN_COST + (uint64_t)q.length)))
            break;
        r = read_request(p, &w[*n], arena + used);
        if (r <= 0)
            return r;
        used += slice;
        (*n)++;
    }
    if (*n)
        return 1;
    r = read_request(p, &w[0], NULL);
    if (r <= 0)
        return r;
    *n = 1;
    /* READs already received that continue this one join it (merge.c). */
    while (c->exp->merge_max && w[0].req.type == NBD_CMD_READ && !w[0].error) {
        struct nbd_req q;
        if (!peek_request(c, &q) || !nbd_merge_joins(c, w, *n, &q) ||
            !has_room(p, MIN_COST + (uint64_t)q.length))
            break;
        r = read_request(p, &w[*n], NULL);
        if (r <= 0)
            return r;
        (*n)++;
    }
    return 1;
}

static void finish_work(struct pool *p, struct nbd_work *w, int n)
{
    if (n == 1 && !w->in_batch) {
        int r = nbd_run_request(p->c, w);
        if (r < 0)
            nbd_log(NBD_LOG_DEBUG, "%s: reply to request %" PRIu64 " not sent: %s",
                    p->c->peer, be64toh(w->req.handle), strerror(-r));
        nbd_buf_put(w->buf, w->req.type == NBD_CMD_WRITE ? w->req.length : 0);
    } else if (!w->in_batch) {
        nbd_run_merged(p->c, w, n);
    } else {
        nbd_run_batch(p->c, w, n);
    }
    for (int i = 0; i < n; i++) {
        w[i].buf = NULL;
        release(p, w[i].cost);
    }
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
        struct nbd_work w[NBD_BATCH_MAX];
        int n;
        int r = take_requests(p, w, &n);
        if (r <= 0) {
            p->result = r;
            atomic_store(&p->closing, true);
            pthread_mutex_unlock(&p->read_lock);
            if (n)
                finish_work(p, w, n); /* read before the end: still answered */
            break;
        }
        maybe_grow(p);
        pthread_mutex_unlock(&p->read_lock);
        finish_work(p, w, n);
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
        struct nbd_work w[NBD_BATCH_MAX];
        int n, r;
        while ((r = take_requests(&p, w, &n)) > 0)
            finish_work(&p, w, n);
        if (n)
            finish_work(&p, w, n);
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
