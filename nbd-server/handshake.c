/* SPDX-License-Identifier: MIT */
/*
 * The fixed newstyle handshake: the server greets, the client sends
 * options one at a time and the server answers each, until NBD_OPT_GO or
 * NBD_OPT_EXPORT_NAME picks an export (transmission starts) or the client
 * aborts.  Oldstyle and plain newstyle clients are refused.
 *
 * Every option payload is read whole into a buffer bounded by
 * NBD_MAX_OPTION_LEN before it is parsed, and the parsers check each
 * embedded length against what remains of that buffer.
 */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd-server/server.h"

void nbd_conn_init(struct nbd_conn *c, struct nbd_server *srv)
{
    memset(c, 0, sizeof(*c));
    c->srv = srv;
    pthread_mutex_init(&c->write_lock, NULL);
    atomic_init(&c->dead, false);
    snprintf(c->peer, sizeof(c->peer), "client");
}

void nbd_conn_destroy(struct nbd_conn *c)
{
    free(c->meta_export);
    c->meta_export = NULL;
    pthread_mutex_destroy(&c->write_lock);
}

static int send_reply(struct nbd_conn *c, uint32_t opt, uint32_t type,
                      const void *a, size_t alen, const void *b, size_t blen)
{
    struct nbd_option_reply h = {
        .magic = htobe64(NBD_REP_MAGIC),
        .option = htobe32(opt),
        .reply = htobe32(type),
        .length = htobe32((uint32_t)(alen + blen)),
    };
    struct iovec iov[3] = {
        { &h, sizeof(h) }, { (void *)a, alen }, { (void *)b, blen },
    };
    return nbd_io_writev(&c->io, iov, 3);
}

static int send_ack(struct nbd_conn *c, uint32_t opt)
{
    return send_reply(c, opt, NBD_REP_ACK, NULL, 0, NULL, 0);
}

/* Error reply with a human readable message (logged at debug level). */
static int send_error(struct nbd_conn *c, uint32_t opt, uint32_t type,
                      const char *fmt, ...) VDK_PRINTF(4, 5);
static int send_error(struct nbd_conn *c, uint32_t opt, uint32_t type,
                      const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    nbd_log(NBD_LOG_DEBUG, "%s: option %u refused: %s", c->peer, opt, msg);
    return send_reply(c, opt, type, msg, strlen(msg), NULL, 0);
}

/* Bounded big-endian readers over an option payload. */
struct cursor {
    const uint8_t *p;
    size_t left;
};

static bool take(struct cursor *cur, void *out, size_t n)
{
    if (cur->left < n)
        return false;
    memcpy(out, cur->p, n);
    cur->p += n;
    cur->left -= n;
    return true;
}

static bool take_u32(struct cursor *cur, uint32_t *v)
{
    if (!take(cur, v, 4))
        return false;
    *v = be32toh(*v);
    return true;
}

static bool take_u16(struct cursor *cur, uint16_t *v)
{
    if (!take(cur, v, 2))
        return false;
    *v = be16toh(*v);
    return true;
}

/* A length-prefixed string: 4-byte length then bytes, at most max long.
   Returns a NUL-terminated copy (names never contain NUL). */
static char *take_string(struct cursor *cur, uint32_t max)
{
    uint32_t len;
    if (!take_u32(cur, &len) || len > max || len > cur->left)
        return NULL;
    if (memchr(cur->p, 0, len))
        return NULL;
    char *s = malloc((size_t)len + 1);
    if (!s)
        return NULL;
    memcpy(s, cur->p, len);
    s[len] = '\0';
    cur->p += len;
    cur->left -= len;
    return s;
}

static uint16_t conn_eflags(struct nbd_conn *c, const struct nbd_export *e)
{
    uint16_t f = e->eflags;
    if (!c->structured)
        f &= (uint16_t)~NBD_FLAG_SEND_DF;
    return f;
}

static int do_list(struct nbd_conn *c, uint32_t opt, uint32_t len)
{
    if (len)
        return send_error(c, opt, NBD_REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
    for (size_t i = 0; i < c->srv->n_exports; i++) {
        const struct nbd_export *e = c->srv->exports[i];
        size_t nl = strlen(e->name);
        size_t dl = e->description ? strlen(e->description) : 0;
        uint8_t *buf = malloc(4 + nl + dl);
        if (!buf)
            return -ENOMEM;
        uint32_t be = htobe32((uint32_t)nl);
        memcpy(buf, &be, 4);
        memcpy(buf + 4, e->name, nl);
        if (dl)
            memcpy(buf + 4 + nl, e->description, dl);
        int r = send_reply(c, opt, NBD_REP_SERVER, buf, 4 + nl + dl, NULL, 0);
        free(buf);
        if (r < 0)
            return r;
    }
    return send_ack(c, opt);
}

static int send_info(struct nbd_conn *c, uint32_t opt, uint16_t type,
                     const char *s)
{
    uint16_t t = htobe16(type);
    return send_reply(c, opt, NBD_REP_INFO, &t, 2, s, strlen(s));
}

/* NBD_OPT_INFO and NBD_OPT_GO.  Returns 1 when GO selected an export. */
static int do_info_go(struct nbd_conn *c, uint32_t opt, const uint8_t *data, uint32_t len)
{
    struct cursor cur = { data, len };
    char *name = take_string(&cur, NBD_MAX_STRING);
    uint16_t nreq = 0;
    if (!name || !take_u16(&cur, &nreq) || cur.left != (size_t)nreq * 2) {
        free(name);
        return send_error(c, opt, NBD_REP_ERR_INVALID, "malformed %s request",
                          opt == NBD_OPT_GO ? "NBD_OPT_GO" : "NBD_OPT_INFO");
    }
    bool want_name = false, want_desc = false;
    for (uint16_t i = 0; i < nreq; i++) {
        uint16_t t = 0;
        take_u16(&cur, &t);
        want_name |= t == NBD_INFO_NAME;
        want_desc |= t == NBD_INFO_DESCRIPTION;
    }
    struct nbd_export *e = nbd_export_find(c->srv, name);
    if (!e) {
        nbd_log(NBD_LOG_INFO, "%s: unknown export '%.64s'", c->peer, name);
        int r = send_error(c, opt, NBD_REP_ERR_UNKNOWN, "export '%.64s' not found", name);
        free(name);
        return r;
    }
    if (atomic_load(&c->srv->stopping)) {
        free(name);
        return send_error(c, opt, NBD_REP_ERR_SHUTDOWN, "server is shutting down");
    }
    struct nbd_info_export ie = {
        .info = htobe16(NBD_INFO_EXPORT),
        .size = htobe64(e->size),
        .eflags = htobe16(conn_eflags(c, e)),
    };
    struct nbd_info_block_size bs = {
        .info = htobe16(NBD_INFO_BLOCK_SIZE),
        .minimum = htobe32(e->min_block),
        .preferred = htobe32(e->pref_block),
        .maximum = htobe32(e->max_block),
    };
    int r = send_reply(c, opt, NBD_REP_INFO, &ie, sizeof(ie), NULL, 0);
    if (r == 0 && want_name)
        r = send_info(c, opt, NBD_INFO_NAME, e->name);
    if (r == 0 && want_desc && e->description)
        r = send_info(c, opt, NBD_INFO_DESCRIPTION, e->description);
    if (r == 0)
        r = send_reply(c, opt, NBD_REP_INFO, &bs, sizeof(bs), NULL, 0);
    if (r == 0)
        r = send_ack(c, opt);
    if (r < 0 || opt != NBD_OPT_GO) {
        free(name);
        return r;
    }
    /* Contexts chosen for another export do not carry over. */
    if (c->meta_export && strcmp(c->meta_export, name) != 0)
        c->meta_base = c->meta_depth = false, c->meta_bitmaps = 0;
    free(name);
    c->exp = e;
    c->eflags = conn_eflags(c, e);
    return 1;
}

static int send_context(struct nbd_conn *c, uint32_t opt, uint32_t id, const char *name)
{
    uint32_t be = htobe32(id);
    return send_reply(c, opt, NBD_REP_META_CONTEXT, &be, 4, name, strlen(name));
}

struct meta_send {
    struct nbd_conn *c;
    uint32_t opt;
};

static int send_bitmap_context(void *ctx, uint32_t id, const char *name)
{
    struct meta_send *m = ctx;
    return send_context(m->c, m->opt, id, name);
}

#define CTX_BASE "base:allocation"
#define CTX_DEPTH "qemu:allocation-depth"

static int do_meta(struct nbd_conn *c, uint32_t opt, const uint8_t *data, uint32_t len)
{
    bool set = opt == NBD_OPT_SET_META_CONTEXT;
    const char *oname = set ? "NBD_OPT_SET_META_CONTEXT" : "NBD_OPT_LIST_META_CONTEXT";
    if (set && !c->structured)
        return send_error(c, opt, NBD_REP_ERR_INVALID,
                          "%s needs structured replies first", oname);
    struct cursor cur = { data, len };
    char *name = take_string(&cur, NBD_MAX_STRING);
    uint32_t nq = 0;
    if (!name || !take_u32(&cur, &nq) || nq > NBD_MAX_META_QUERIES) {
        free(name);
        return send_error(c, opt, NBD_REP_ERR_INVALID, "malformed %s request", oname);
    }
    bool base = false, depth = false;
    bool offer_depth = c->srv->allocation_depth;
    struct nbd_export *exp = nbd_export_find(c->srv, name);
    uint64_t bitmaps = 0;
    for (uint32_t i = 0; i < nq; i++) {
        char *q = take_string(&cur, NBD_MAX_STRING);
        if (!q) {
            free(name);
            return send_error(c, opt, NBD_REP_ERR_INVALID, "malformed %s query", oname);
        }
        if (strcmp(q, CTX_BASE) == 0 || (!set && strcmp(q, "base:") == 0))
            base = true;
        else if (offer_depth && (strcmp(q, CTX_DEPTH) == 0 ||
                                 (!set && strcmp(q, "qemu:") == 0)))
            depth = true;
        bitmaps |= nbd_meta_bitmap_query(exp, q, !set);
        free(q);
    }
    if (cur.left) {
        free(name);
        return send_error(c, opt, NBD_REP_ERR_INVALID, "trailing bytes in %s", oname);
    }
    if (!exp) {
        int r = send_error(c, opt, NBD_REP_ERR_UNKNOWN, "export '%.64s' not found", name);
        free(name);
        return r;
    }
    if (!set && nq == 0) {
        base = true;
        depth = offer_depth;
        bitmaps = nbd_meta_bitmap_query(exp, "qemu:", true);
    }
    if (set) {
        c->meta_base = base;
        c->meta_depth = depth;
        c->meta_bitmaps = bitmaps;
        free(c->meta_export);
        c->meta_export = name;
        name = NULL;
    }
    free(name);
    int r = 0;
    if (base)
        r = send_context(c, opt, NBD_META_ID_BASE_ALLOCATION, CTX_BASE);
    if (r == 0 && depth)
        r = send_context(c, opt, NBD_META_ID_ALLOCATION_DEPTH, CTX_DEPTH);
    struct meta_send ms = { c, opt };
    if (r == 0)
        r = nbd_meta_bitmap_send(exp, bitmaps, send_bitmap_context, &ms);
    return r < 0 ? r : send_ack(c, opt);
}

/* Old-style export selection: no reply on failure but a hang-up. */
static int do_export_name(struct nbd_conn *c, const uint8_t *data, uint32_t len)
{
    char name[NBD_MAX_STRING + 1];
    if (len > NBD_MAX_STRING || (len && memchr(data, 0, len)))
        return -EINVAL;
    if (len)
        memcpy(name, data, len);
    name[len] = '\0';
    struct nbd_export *e = nbd_export_find(c->srv, name);
    if (!e) {
        nbd_log(NBD_LOG_INFO, "%s: unknown export '%.64s'", c->peer, name);
        return -ENOENT;
    }
    if (atomic_load(&c->srv->stopping))
        return -ESHUTDOWN;
    if (c->meta_export && strcmp(c->meta_export, name) != 0)
        c->meta_base = c->meta_depth = false, c->meta_bitmaps = 0;
    c->exp = e;
    c->eflags = conn_eflags(c, e);
    struct nbd_export_name_reply rep = { .size = htobe64(e->size),
                                         .eflags = htobe16(c->eflags) };
    struct iovec iov = { &rep, c->no_zeroes ? 10 : sizeof(rep) };
    return nbd_io_writev(&c->io, &iov, 1);
}

static int do_starttls(struct nbd_conn *c, uint32_t opt, uint32_t len)
{
    if (len)
        return send_error(c, opt, NBD_REP_ERR_INVALID, "NBD_OPT_STARTTLS takes no data");
    if (c->srv->tls_mode == NBD_TLS_OFF || !c->srv->tls)
        return send_error(c, opt, NBD_REP_ERR_UNSUP, "TLS is not configured");
    if (c->io.ssl)
        return send_error(c, opt, NBD_REP_ERR_INVALID, "TLS is already active");
    /* Bytes sent after STARTTLS before our reply could only be a
       plaintext injection: never let them count as protected. */
    if (nbd_io_pending(&c->io)) {
        nbd_log(NBD_LOG_INFO, "%s: data after STARTTLS before the reply", c->peer);
        return -EPROTO;
    }
    int r = send_ack(c, opt);
    if (r < 0)
        return r;
    r = nbd_io_starttls(&c->io, c->srv->tls, c->peer);
    if (r < 0)
        return r;
    /* Whatever was negotiated in the clear is forgotten. */
    c->structured = c->meta_base = c->meta_depth = false;
    c->meta_bitmaps = 0;
    free(c->meta_export);
    c->meta_export = NULL;
    return 0;
}

int nbd_handshake(struct nbd_conn *c)
{
    struct nbd_new_handshake hello = {
        .nbdmagic = htobe64(NBD_MAGIC),
        .version = htobe64(NBD_IHAVEOPT),
        .gflags = htobe16(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES),
    };
    struct iovec iov = { &hello, sizeof(hello) };
    int r = nbd_io_writev(&c->io, &iov, 1);
    if (r < 0)
        return r;
    uint32_t cflags;
    if ((r = nbd_io_read(&c->io, &cflags, 4)) < 0)
        return r;
    cflags = be32toh(cflags);
    if (!(cflags & NBD_FLAG_C_FIXED_NEWSTYLE) ||
        (cflags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))) {
        nbd_log(NBD_LOG_INFO, "%s: client flags 0x%x unsupported (fixed newstyle "
                "only)", c->peer, cflags);
        return -EPROTO;
    }
    c->no_zeroes = cflags & NBD_FLAG_C_NO_ZEROES;

    for (unsigned n = 0; n < NBD_MAX_OPTIONS; n++) {
        struct nbd_option_header oh;
        if ((r = nbd_io_read(&c->io, &oh, sizeof(oh))) < 0)
            return r;
        if (be64toh(oh.magic) != NBD_IHAVEOPT) {
            nbd_log(NBD_LOG_INFO, "%s: bad option magic", c->peer);
            return -EPROTO;
        }
        uint32_t opt = be32toh(oh.option), len = be32toh(oh.length);
        if (len > NBD_MAX_OPTION_LEN) {
            if (opt == NBD_OPT_EXPORT_NAME)
                return -EPROTO;
            if ((r = nbd_io_skip(&c->io, len)) < 0)
                return r;
            if ((r = send_error(c, opt, NBD_REP_ERR_TOO_BIG, "option data of %u bytes "
                                "is too large", len)) < 0)
                return r;
            continue;
        }
        uint8_t *data = len ? malloc(len) : NULL;
        if (len && !data)
            return -ENOMEM;
        if (len && (r = nbd_io_read(&c->io, data, len)) < 0) {
            free(data);
            return r;
        }
        bool need_tls = c->srv->tls_mode == NBD_TLS_REQUIRE && !c->io.ssl;
        if (need_tls && opt != NBD_OPT_STARTTLS && opt != NBD_OPT_ABORT) {
            free(data);
            if (opt == NBD_OPT_EXPORT_NAME) {
                nbd_log(NBD_LOG_INFO, "%s: plaintext refused, TLS is required", c->peer);
                return -EPERM;
            }
            if ((r = send_error(c, opt, NBD_REP_ERR_TLS_REQD, "TLS is required")) < 0)
                return r;
            continue;
        }
        switch (opt) {
        case NBD_OPT_EXPORT_NAME:
            r = do_export_name(c, data, len);
            free(data);
            return r < 0 ? r : 0;
        case NBD_OPT_ABORT:
            (void)send_ack(c, opt); /* courtesy: the client may be gone */
            free(data);
            return -ECONNABORTED;
        case NBD_OPT_LIST:
            r = do_list(c, opt, len);
            break;
        case NBD_OPT_STARTTLS:
            r = do_starttls(c, opt, len);
            break;
        case NBD_OPT_INFO:
        case NBD_OPT_GO:
            r = do_info_go(c, opt, data, len);
            if (r == 1) {
                free(data);
                return 0;
            }
            break;
        case NBD_OPT_STRUCTURED_REPLY:
            if (len)
                r = send_error(c, opt, NBD_REP_ERR_INVALID,
                               "NBD_OPT_STRUCTURED_REPLY takes no data");
            else if (c->structured)
                r = send_error(c, opt, NBD_REP_ERR_INVALID,
                               "structured replies already negotiated");
            else {
                c->structured = true;
                r = send_ack(c, opt);
            }
            break;
        case NBD_OPT_LIST_META_CONTEXT:
        case NBD_OPT_SET_META_CONTEXT:
            r = do_meta(c, opt, data, len);
            break;
        default:
            r = send_error(c, opt, NBD_REP_ERR_UNSUP, "option %u is not supported", opt);
            break;
        }
        free(data);
        if (r < 0)
            return r;
    }
    nbd_log(NBD_LOG_INFO, "%s: too many options", c->peer);
    return -EPROTO;
}
