/* SPDX-License-Identifier: MIT */
/*
 * The "nbd" protocol driver: an NBD export as a node, through libnbd.
 * URIs: nbd://host[:port]/export, nbds://... (TLS), nbd+unix:///export?
 * socket=PATH, nbds+unix://..., with libnbd's query parameters (tls-psk-
 * file, tls-certificates, ...).
 *
 * Connecting (TCP or unix connect, TLS and the NBD handshake) is bounded
 * by connect-timeout (seconds, default 30, 0: wait for ever), so a server
 * that accepts and never speaks is a clear error, not a hang.
 *
 * A libnbd handle runs one synchronous command at a time, so the node
 * keeps a small pool of handles, each behind its own mutex.  More than
 * one connection is only opened when the server advertises multi-conn
 * (then a flush on any connection covers writes made on all of them).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libnbd.h>

#include "block/driver.h"
#include "protocols/nbd-lib.h"

#define NBD_POOL_MAX 4
#define NBD_CLIENT_MAX_REQUEST (32u << 20)
#define NBD_CONNECT_TIMEOUT_DEFAULT 30
#define NBD_CONNECT_TIMEOUT_MAX 86400

struct nbd_conn_slot {
    struct nbd_handle *h;
    pthread_mutex_t lock;
};

struct nbd_client_state {
    struct nbd_conn_slot slot[NBD_POOL_MAX];
    int n;
    atomic_uint next;
    bool can_flush, can_zero, can_trim, has_status;
};

static const struct vdk_opt_desc nbd_open_opts[] = {
    { "filename", VDK_OPT_STRING, "NBD URI (nbd://, nbds://, nbd+unix://, nbds+unix://)",
      NULL, NULL },
    { "connect-timeout", VDK_OPT_NUMBER, "Seconds to wait for the connection and the NBD "
      "handshake (0: for ever)", "30", NULL },
    { NULL, 0, NULL, NULL, NULL },
};

static int nbd_errno(void)
{
    int e = nbd_get_errno();
    return e > 0 ? -e : -EIO;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* nbd_connect_uri with a deadline: the asynchronous connect, polled. */
static int connect_bounded(struct nbd_handle *h, const char *uri, unsigned timeout_s,
                           struct vdk_error **errp)
{
    if (nbd_aio_connect_uri(h, uri) < 0)
        return vdk_error_setf(errp, -nbd_errno(), "cannot connect to '%s': %s", uri,
                              nbd_get_error());
    int64_t deadline = now_ms() + (int64_t)timeout_s * 1000;
    while (nbd_aio_is_connecting(h) == 1) {
        int wait = -1;
        if (timeout_s) {
            int64_t left = deadline - now_ms();
            if (left <= 0)
                return vdk_error_setf(errp, ETIMEDOUT, "cannot connect to '%s': no NBD "
                                      "handshake within %u s (connect-timeout)", uri,
                                      timeout_s);
            wait = left > 1000 ? 1000 : (int)left;
        }
        if (nbd_poll(h, wait) < 0)
            return vdk_error_setf(errp, -nbd_errno(), "cannot connect to '%s': %s", uri,
                                  nbd_get_error());
    }
    if (nbd_aio_is_ready(h) != 1) {
        const char *why = nbd_get_error();
        return vdk_error_setf(errp, ECONNREFUSED, "cannot connect to '%s': %s", uri,
                              why ? why : "the server closed the connection");
    }
    return 0;
}

static struct nbd_handle *connect_one(const char *uri, bool want_status, unsigned timeout_s,
                                      struct vdk_error **errp)
{
    struct nbd_handle *h = nbd_create();
    if (!h) {
        vdk_error_setf(errp, ENOMEM, "cannot create an NBD handle: %s", nbd_get_error());
        return NULL;
    }
    if (want_status)
        nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION);
    /* The user named this URI like a file name; let its tls-psk-file= and
       tls-certificates= parameters be read. */
    nbd_set_uri_allow_local_file(h, true);
    if (connect_bounded(h, uri, timeout_s, errp) < 0) {
        nbd_close(h);
        return NULL;
    }
    return h;
}

static void close_all(struct nbd_client_state *s)
{
    for (int i = 0; i < s->n; i++) {
        nbd_shutdown(s->slot[i].h, 0);
        nbd_close(s->slot[i].h);
        pthread_mutex_destroy(&s->slot[i].lock);
    }
    s->n = 0;
}

static int nbdc_open(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                     struct vdk_error **errp)
{
    struct nbd_client_state *s = n->opaque;
    const char *uri = vdk_opts_get(opts, "filename");
    if (!uri || !*uri)
        return vdk_error_setf(errp, EINVAL, "no NBD URI given");
    int lr = vdk_libnbd_load(errp);
    if (lr < 0)
        return lr;
    uint64_t timeout = 0;
    int r = vdk_opts_get_uint(opts, "connect-timeout", NBD_CONNECT_TIMEOUT_DEFAULT, &timeout,
                              errp);
    if (r < 0)
        return r;
    if (timeout > NBD_CONNECT_TIMEOUT_MAX)
        return vdk_error_setf(errp, EINVAL, "connect-timeout must be at most %u seconds",
                              NBD_CONNECT_TIMEOUT_MAX);
    struct nbd_handle *h = connect_one(uri, true, (unsigned)timeout, errp);
    if (!h)
        return -EIO;
    int64_t size = nbd_get_size(h);
    if (size < 0) {
        vdk_error_setf(errp, EIO, "'%s': cannot get the export size: %s", uri,
                       nbd_get_error());
        nbd_close(h);
        return -EIO;
    }
    if ((flags & VDK_O_RDWR) && nbd_is_read_only(h) == 1) {
        nbd_close(h);
        return vdk_error_setf(errp, EROFS, "'%s': the export is read-only", uri);
    }
    s->slot[0].h = h;
    pthread_mutex_init(&s->slot[0].lock, NULL);
    s->n = 1;
    s->can_flush = nbd_can_flush(h) == 1;
    s->can_zero = nbd_can_zero(h) == 1;
    s->can_trim = nbd_can_trim(h) == 1;
    s->has_status = nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
    if (nbd_can_multi_conn(h) == 1) {
        for (int i = 1; i < NBD_POOL_MAX; i++) {
            struct vdk_error *ignored = NULL;
            struct nbd_handle *h2 = connect_one(uri, s->has_status, (unsigned)timeout,
                                                &ignored);
            if (!h2) {
                vdk_error_free(ignored); /* fewer connections still work */
                break;
            }
            s->slot[i].h = h2;
            pthread_mutex_init(&s->slot[i].lock, NULL);
            s->n++;
        }
    }
    n->size = (uint64_t)size;
    int64_t minb = nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM);
    int64_t maxb = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);
    n->limits.request_alignment =
        minb > 1 && minb <= 65536 && vdk_is_pow2((uint64_t)minb) ? (uint32_t)minb : 1;
    uint32_t mt = NBD_CLIENT_MAX_REQUEST;
    if (maxb > 0 && maxb < mt)
        mt = (uint32_t)maxb;
    n->limits.max_transfer = mt;
    int64_t pref = nbd_get_block_size(h, LIBNBD_SIZE_PREFERRED);
    n->limits.opt_transfer = pref > 0 && pref <= mt ? (uint32_t)pref : 0;
    if (nbd_can_fua(h) == 1) {
        n->supported_write_flags = VDK_REQ_FUA;
        n->supported_zero_flags = VDK_REQ_FUA;
    }
    n->supported_zero_flags |= VDK_REQ_MAY_UNMAP;
    if (nbd_can_fast_zero(h) == 1)
        n->supported_zero_flags |= VDK_REQ_NO_FALLBACK;
    return 0;
}

static void nbdc_close(struct vdk_node *n)
{
    close_all(n->opaque);
}

/* Take a free handle if there is one, else wait on one in turn. */
static struct nbd_conn_slot *slot_get(struct nbd_client_state *s)
{
    unsigned start = atomic_fetch_add(&s->next, 1);
    for (int i = 0; i < s->n; i++) {
        struct nbd_conn_slot *sl = &s->slot[(start + (unsigned)i) % (unsigned)s->n];
        if (pthread_mutex_trylock(&sl->lock) == 0)
            return sl;
    }
    struct nbd_conn_slot *sl = &s->slot[start % (unsigned)s->n];
    pthread_mutex_lock(&sl->lock);
    return sl;
}

static void slot_put(struct nbd_conn_slot *sl)
{
    pthread_mutex_unlock(&sl->lock);
}

static int nbdc_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *buf,
                      unsigned flags)
{
    struct nbd_conn_slot *sl = slot_get(n->opaque);
    int r = nbd_pread(sl->h, buf, bytes, offset, 0) < 0 ? nbd_errno() : 0;
    slot_put(sl);
    return r;
}

static int nbdc_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                       const void *buf, unsigned flags)
{
    struct nbd_conn_slot *sl = slot_get(n->opaque);
    uint32_t f = (flags & VDK_REQ_FUA) ? LIBNBD_CMD_FLAG_FUA : 0;
    int r = nbd_pwrite(sl->h, buf, bytes, offset, f) < 0 ? nbd_errno() : 0;
    slot_put(sl);
    return r;
}

static int nbdc_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                              unsigned flags)
{
    struct nbd_client_state *s = n->opaque;
    if (!s->can_zero)
        return -ENOTSUP;
    uint32_t f = 0;
    if (flags & VDK_REQ_FUA)
        f |= LIBNBD_CMD_FLAG_FUA;
    if (!(flags & VDK_REQ_MAY_UNMAP))
        f |= LIBNBD_CMD_FLAG_NO_HOLE;
    if (flags & VDK_REQ_NO_FALLBACK)
        f |= LIBNBD_CMD_FLAG_FAST_ZERO;
    struct nbd_conn_slot *sl = slot_get(s);
    int r = nbd_zero(sl->h, bytes, offset, f) < 0 ? nbd_errno() : 0;
    slot_put(sl);
    return r;
}

static int nbdc_discard(struct vdk_node *n, uint64_t offset, uint64_t bytes)
{
    struct nbd_client_state *s = n->opaque;
    if (!s->can_trim)
        return 0;
    struct nbd_conn_slot *sl = slot_get(s);
    int r = nbd_trim(sl->h, bytes, offset, 0) < 0 ? nbd_errno() : 0;
    slot_put(sl);
    return r;
}

static int nbdc_flush(struct vdk_node *n)
{
    struct nbd_client_state *s = n->opaque;
    if (!s->can_flush)
        return 0;
    /* With one handle, or multi-conn, one flush covers every write. */
    struct nbd_conn_slot *sl = slot_get(s);
    int r = nbd_flush(sl->h, 0) < 0 ? nbd_errno() : 0;
    slot_put(sl);
    return r;
}

struct status_result {
    bool got;
    uint32_t len, flags;
};

static int extent_cb(void *opaque, const char *ctx, uint64_t offset, uint32_t *entries,
                     size_t nr, int *error)
{
    struct status_result *res = opaque;
    if (strcmp(ctx, LIBNBD_CONTEXT_BASE_ALLOCATION) == 0 && nr >= 2 && !res->got) {
        res->got = true;
        res->len = entries[0];
        res->flags = entries[1];
    }
    return 0;
}

static int nbdc_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                             uint64_t *pnum, uint64_t *map, struct vdk_node **file)
{
    struct nbd_client_state *s = n->opaque;
    *pnum = bytes;
    /* Like any protocol: the bytes live at the same offset of this node
       (qemu-img map shows "offset" for NBD sources too). */
    *map = offset;
    *file = n;
    if (!s->has_status)
        return VDK_BS_DATA | VDK_BS_OFFSET_VALID;
    /* The protocol's lengths are 32-bit: ask for at most 2 GiB at a time. */
    uint64_t ask = vdk_min_u64(bytes, 1u << 31);
    struct status_result res = { 0 };
    struct nbd_conn_slot *sl = slot_get(s);
    int r = nbd_block_status(sl->h, ask, offset,
                             (nbd_extent_callback){ .callback = extent_cb, .user_data = &res },
                             LIBNBD_CMD_FLAG_REQ_ONE);
    if (r < 0)
        r = nbd_errno();
    slot_put(sl);
    if (r < 0)
        return r;
    if (!res.got || res.len == 0)
        return VDK_BS_DATA | VDK_BS_OFFSET_VALID; /* nothing useful: data */
    *pnum = vdk_min_u64(res.len, bytes);
    int ret = 0;
    if (!(res.flags & LIBNBD_STATE_HOLE))
        ret |= VDK_BS_DATA;
    if (res.flags & LIBNBD_STATE_ZERO)
        ret |= VDK_BS_ZERO;
    /* A hole that does not promise zeros must still be read. */
    return (ret ? ret : VDK_BS_DATA) | VDK_BS_OFFSET_VALID;
}

const struct vdk_driver vdk_driver_nbd = {
    .name = "nbd",
    .kind = VDK_DRV_PROTOCOL,
    .state_size = sizeof(struct nbd_client_state),
    .protocols = (const char *const[]){ "nbd", "nbds", "nbd+unix", "nbds+unix",
                                        "nbd+vsock", "nbds+vsock", NULL },
    .open_opts = nbd_open_opts,
    .open = nbdc_open,
    .close = nbdc_close,
    .pread = nbdc_pread,
    .pwrite = nbdc_pwrite,
    .pwrite_zeroes = nbdc_pwrite_zeroes,
    .discard = nbdc_discard,
    .flush = nbdc_flush,
    .block_status = nbdc_block_status,
};
