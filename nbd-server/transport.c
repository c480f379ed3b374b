/* SPDX-License-Identifier: MIT */
/*
 * The connection transport of vdk-nbd: reading and writing a client's
 * bytes over a plain socket, over a TLS session set up by tls.c, or from
 * memory (the fuzz target feeds the handshake and request parsers that
 * way).
 *
 * Threads: after the handshake the reader thread and the worker threads
 * sending replies share one SSL object, which OpenSSL does not allow
 * concurrently.  The socket is therefore non-blocking; every SSL call is
 * made under io->ssl_lock, and a call that would block drops the lock and
 * waits in poll() before trying again.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "nbd-server/server.h"

/* Read-ahead buffer: enough for many pipelined headers and small write
   payloads per recv(); larger payloads go straight to their buffer. */
#define RBUF_SIZE (64u << 10)
#define TLS_RECORD 16384u /* largest TLS plaintext record */

void nbd_io_init_fd(struct nbd_io *io, int fd)
{
    memset(io, 0, sizeof(*io));
    io->fd = fd;
    io->timeout_ms = -1;
    pthread_mutex_init(&io->ssl_lock, NULL);
}

void nbd_io_init_mem(struct nbd_io *io, const uint8_t *data, size_t len)
{
    memset(io, 0, sizeof(*io));
    io->fd = -1;
    io->timeout_ms = -1;
    io->mem = data;
    io->mem_len = len;
    pthread_mutex_init(&io->ssl_lock, NULL);
}

static int wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = events };
    for (;;) {
        int r = poll(&p, 1, timeout_ms);
        if (r > 0)
            return 0;
        if (r == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

/* One SSL_read/SSL_write step: >0 bytes done, 0 retry after waiting, <0 error. */
static int ssl_step(struct nbd_io *io, bool writing, void *buf, size_t len)
{
    size_t done = 0;
    pthread_mutex_lock(&io->ssl_lock);
    int ok = writing ? SSL_write_ex(io->ssl, buf, len, &done)
                     : SSL_read_ex(io->ssl, buf, len, &done);
    int err = ok ? SSL_ERROR_NONE : SSL_get_error(io->ssl, 0);
    if (!ok)
        ERR_clear_error();
    pthread_mutex_unlock(&io->ssl_lock);
    switch (err) {
    case SSL_ERROR_NONE:
        return (int)done;
    case SSL_ERROR_WANT_READ:
        return wait_fd(io->fd, POLLIN, io->timeout_ms) < 0 ? -EIO : 0;
    case SSL_ERROR_WANT_WRITE:
        return wait_fd(io->fd, POLLOUT, io->timeout_ms) < 0 ? -EIO : 0;
    case SSL_ERROR_ZERO_RETURN:
        return -ECONNRESET;
    default:
        return writing ? -EPIPE : -ECONNRESET;
    }
}

int nbd_io_read(struct nbd_io *io, void *buf, size_t len)
{
    uint8_t *p = buf;
    if (io->mem) {
        if (io->mem_len - io->mem_pos < len) {
            io->mem_pos = io->mem_len;
            return -ECONNRESET;
        }
        memcpy(p, io->mem + io->mem_pos, len);
        io->mem_pos += len;
        return 0;
    }
    if (io->fd < 0)
        return -ECONNRESET;
    while (len) {
        if (io->ssl) {
            /* Chunks below INT_MAX so the step's int return cannot wrap. */
            int k = ssl_step(io, false, p, len > (1u << 30) ? (1u << 30) : len);
            if (k < 0)
                return k;
            p += k;
            len -= (size_t)k;
            continue;
        }
        if (io->rpos < io->rlen) {
            size_t n = io->rlen - io->rpos < len ? io->rlen - io->rpos : len;
            memcpy(p, io->rbuf + io->rpos, n);
            io->rpos += n;
            p += n;
            len -= n;
            continue;
        }
        /* Large reads (write payloads) go straight to their buffer;
           small ones refill the read-ahead buffer. */
        bool direct = len >= RBUF_SIZE / 2;
        if (!direct && !io->rbuf && !(io->rbuf = malloc(RBUF_SIZE)))
            direct = true;
        ssize_t k = direct ? recv(io->fd, p, len, 0) : recv(io->fd, io->rbuf, RBUF_SIZE, 0);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return -ETIMEDOUT;
            return -errno;
        }
        if (k == 0)
            return -ECONNRESET;
        if (direct) {
            p += k;
            len -= (size_t)k;
        } else {
            io->rlen = (size_t)k;
            io->rpos = 0;
        }
    }
    return 0;
}

size_t nbd_io_pending(const struct nbd_io *io)
{
    return io->rlen - io->rpos;
}

const uint8_t *nbd_io_peek(const struct nbd_io *io, size_t len)
{
    if (io->mem)
        return io->mem_len - io->mem_pos >= len ? io->mem + io->mem_pos : NULL;
    if (io->ssl || !io->rbuf)
        return NULL;
    return io->rlen - io->rpos >= len ? io->rbuf + io->rpos : NULL;
}

int nbd_io_wait_input(struct nbd_io *io)
{
    if (io->mem || io->ssl || io->fd < 0 || io->rpos < io->rlen)
        return 0;
    if (!io->rbuf && !(io->rbuf = malloc(RBUF_SIZE)))
        return 0; /* the reads that follow go direct */
    for (;;) {
        ssize_t k = recv(io->fd, io->rbuf, RBUF_SIZE, 0);
        if (k > 0) {
            io->rlen = (size_t)k;
            io->rpos = 0;
            return 0;
        }
        if (k == 0)
            return -ECONNRESET;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
    }
}

int nbd_io_skip(struct nbd_io *io, uint64_t len)
{
    uint8_t scratch[16384];
    while (len) {
        size_t c = len < sizeof(scratch) ? (size_t)len : sizeof(scratch);
        int r = nbd_io_read(io, scratch, c);
        if (r < 0)
            return r;
        len -= c;
    }
    return 0;
}

static int ssl_write_all(struct nbd_io *io, const uint8_t *p, size_t len)
{
    while (len) {
        /* Chunks below INT_MAX so the step's int return cannot wrap. */
        int k = ssl_step(io, true, (void *)p, len > (1u << 30) ? (1u << 30) : len);
        if (k < 0)
            return k;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

/*
 * A whole reply over TLS.  Every SSL_write of a short piece (a 20-byte
 * chunk header, an 8-byte offset) would be a record and a system call of
 * its own, so short pieces are gathered with the start of what follows
 * into one full record; the bulk of a large payload goes to SSL_write
 * as it is, which cuts it into full records without a copy.
 */
static int ssl_writev(struct nbd_io *io, const struct iovec *iov, int iovcnt)
{
    uint8_t stage[TLS_RECORD];
    size_t used = 0;
    int r = 0;
    for (int i = 0; i < iovcnt && r == 0; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        while (len && r == 0) {
            if (used == 0 && len >= TLS_RECORD) {
                /* Whole records straight from the caller's buffer; a
                   tail shorter than a record is gathered with the next
                   piece, if there is one. */
                size_t direct = i + 1 < iovcnt ? len - len % TLS_RECORD : len;
                r = ssl_write_all(io, p, direct);
                p += direct;
                len -= direct;
                continue;
            }
            size_t n = len < TLS_RECORD - used ? len : TLS_RECORD - used;
            memcpy(stage + used, p, n);
            used += n;
            p += n;
            len -= n;
            if (used == TLS_RECORD) {
                r = ssl_write_all(io, stage, used);
                used = 0;
            }
        }
    }
    if (r == 0 && used)
        r = ssl_write_all(io, stage, used);
    return r;
}

int nbd_io_writev(struct nbd_io *io, struct iovec *iov, int iovcnt)
{
    if (io->mem)
        return 0;
    if (io->fd < 0)
        return -EPIPE;
    if (io->ssl)
        return ssl_writev(io, iov, iovcnt);
    while (iovcnt > 0) {
        struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)iovcnt };
        ssize_t k = sendmsg(io->fd, &m, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        /* Advance past what was sent. */
        while (iovcnt > 0 && (size_t)k >= iov->iov_len) {
            k -= (ssize_t)iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + k;
            iov->iov_len -= (size_t)k;
        }
    }
    return 0;
}

void nbd_io_shutdown_read(struct nbd_io *io)
{
    if (io->fd >= 0)
        shutdown(io->fd, SHUT_RD);
}

void nbd_io_abort(struct nbd_io *io)
{
    if (io->fd >= 0)
        shutdown(io->fd, SHUT_RDWR);
}

void nbd_io_close(struct nbd_io *io)
{
    if (io->ssl) {
        /* Best effort close_notify; never block on a vanished peer. */
        SSL_shutdown(io->ssl);
        ERR_clear_error();
        SSL_free(io->ssl);
        io->ssl = NULL;
    }
    if (io->fd >= 0)
        close(io->fd);
    io->fd = -1;
    free(io->rbuf);
    io->rbuf = NULL;
    io->rlen = io->rpos = 0;
    pthread_mutex_destroy(&io->ssl_lock);
}
