/* SPDX-License-Identifier: MIT */
/*
 * vdk-nbd internals: the modules of the NBD server and how they meet.
 *
 *   main.c          command line, exports, daemon start and stop
 *   sockets.c       listening sockets (unix, TCP, systemd), accept loop,
 *                   one thread per connection, connection cap, signals
 *   transport.c     connection I/O over a plain socket, a TLS session, or
 *                   memory (the fuzzer's transport)
 *   tls.c           TLS proper: the OpenSSL context, X.509 or PSK
 *                   credentials, the STARTTLS handshake
 *   handshake.c     fixed newstyle option haggling
 *   transmission.c  request parsing and validation, the per-connection
 *                   worker pool, the in-flight cap
 *   commands.c      running requests, simple and structured replies
 *   batch.c         small requests received together, run and answered
 *                   as one batch
 *   export.c        export definitions, opening images, export flags
 *   zerocopy.c      large reads sent straight from mapped image files
 *   log.c           stderr or syslog
 *
 * Every length read from a client is bounded before use: option payloads
 * by NBD_MAX_OPTION_LEN, strings by NBD_MAX_STRING, requests by
 * NBD_MAX_REQUEST_LEN, and the bytes a connection may hold in flight by
 * the server's max_inflight.
 */
#ifndef VDK_NBD_SERVER_H
#define VDK_NBD_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vdk/block.h"
#include "vdk/error.h"

#include "nbd-server/nbd-protocol.h"

/* Largest option payload we accept (a meta-context query list). */
#define NBD_MAX_OPTION_LEN (64u * 1024)
/* Largest READ/WRITE/CACHE/... request, the protocol's customary 32 MiB. */
#define NBD_MAX_REQUEST_LEN (32u << 20)
/* Most option round trips before transmission (guards against a client
   that haggles forever). */
#define NBD_MAX_OPTIONS 4096
/* Most meta-context queries in one option. */
#define NBD_MAX_META_QUERIES 64
/* Extents in one block-status reply chunk. */
#define NBD_MAX_EXTENTS 2048

/* Meta context ids we hand out (fixed, so every connection agrees). */
#define NBD_META_ID_BASE_ALLOCATION 1
#define NBD_META_ID_ALLOCATION_DEPTH 2
/* qemu:dirty-bitmap:NAME of an export's bitmap i is NBD_META_ID_BITMAP0 + i. */
#define NBD_META_ID_BITMAP0 3
/* Most dirty bitmaps one export offers. */
#define NBD_MAX_BITMAPS 64

/* ---- log.c ---- */
enum { NBD_LOG_ERR = 3, NBD_LOG_WARNING = 4, NBD_LOG_INFO = 6, NBD_LOG_DEBUG = 7 };
void nbd_log_init(bool use_syslog, int max_level);
void nbd_log(int level, const char *fmt, ...) VDK_PRINTF(2, 3);

/* ---- transport.c (connection I/O) and tls.c (TLS set-up) ---- */
enum nbd_tls_mode { NBD_TLS_OFF, NBD_TLS_ON, NBD_TLS_REQUIRE };

struct nbd_tls;      /* an SSL_CTX with certificates or PSKs */
struct ssl_st;

struct nbd_io {
    int fd;                  /* -1 for the memory transport */
    struct ssl_st *ssl;      /* non-NULL once STARTTLS completed */
    pthread_mutex_t ssl_lock;/* OpenSSL objects are not thread safe: the
                                reader and the repliers take turns */
    int timeout_ms;          /* TLS: longest wait for the peer, -1: none */
    /* Plain sockets: bytes received ahead of need, so that a client with
       many requests queued costs one recv() for many headers. */
    uint8_t *rbuf;
    size_t rlen, rpos;
    /* Memory transport (fuzzing): reads come from here, writes vanish. */
    const uint8_t *mem;
    size_t mem_len, mem_pos;
};

/* tls.c.  Load X.509 files from certdir (ca-cert.pem optional, server-cert.pem,
   server-key.pem) or PSKs from pskfile ("user:hexkey" lines). */
int nbd_tls_new(struct nbd_tls **out, const char *certdir, const char *pskfile,
                struct vdk_error **errp);
void nbd_tls_free(struct nbd_tls *t);
/* Free the calling thread's OpenSSL state (error queue, random generators).
   A detached thread must call it before it signals that it is done: left
   to the thread's exit, it races the process's exit, and the state of a
   thread still exiting when OpenSSL cleans up is lost (a leak). */
void nbd_tls_thread_end(void);

/* transport.c */
void nbd_io_init_fd(struct nbd_io *io, int fd);
void nbd_io_init_mem(struct nbd_io *io, const uint8_t *data, size_t len);
/* Read exactly len bytes.  0, or -errno (-ECONNRESET at end of stream). */
int nbd_io_read(struct nbd_io *io, void *buf, size_t len);
/* Bytes received but not yet consumed (plain sockets). */
size_t nbd_io_pending(const struct nbd_io *io);
/* The next len input bytes if they are already received (plain sockets
   and memory), without consuming them; else NULL. */
const uint8_t *nbd_io_peek(const struct nbd_io *io, size_t len);
/* Plain sockets: when nothing is buffered, wait for input and buffer what
   one recv() brings.  0, or -errno (-ECONNRESET at end of stream). */
int nbd_io_wait_input(struct nbd_io *io);
/* Discard exactly len bytes of input. */
int nbd_io_skip(struct nbd_io *io, uint64_t len);
/* Write all of iov (the caller serialises whole messages). */
int nbd_io_writev(struct nbd_io *io, struct iovec *iov, int iovcnt);
/* tls.c.  Server side TLS handshake on io.  On failure the connection is
   dead. */
int nbd_io_starttls(struct nbd_io *io, struct nbd_tls *t, const char *peer);
/* "TLSv1.3" etc. once TLS is up, else NULL. */
const char *nbd_io_tls_version(const struct nbd_io *io);
/* transport.c */
/* Stop reading (wakes a blocked reader; replies can still be sent). */
void nbd_io_shutdown_read(struct nbd_io *io);
/* Cut the connection both ways (wakes a blocked sender too). */
void nbd_io_abort(struct nbd_io *io);
void nbd_io_close(struct nbd_io *io);

/* ---- export.c ---- */
enum nbd_cache_mode { NBD_CACHE_WRITEBACK, NBD_CACHE_NONE, NBD_CACHE_WRITETHROUGH,
                      NBD_CACHE_DIRECTSYNC, NBD_CACHE_UNSAFE };

struct nbd_export {
    char *name;
    char *description;       /* NULL: none */
    char *file;              /* image file name, or --image-opts string */
    char *format;            /* NULL: probe */
    bool image_opts;         /* file is an option string */
    bool readonly;
    bool snapshot;
    struct vdk_node *node;   /* shared by every connection of the export */
    uint64_t size;
    uint16_t eflags;         /* transmission flags (before per-conn bits) */
    uint32_t min_block, pref_block, max_block;
    uint32_t merge_max;      /* merge consecutive reads up to this, 0: no
                                (merge.c) */
    bool discard;            /* --discard=unmap: trims and may-unmap zeroes */
    bool writethrough;       /* every write is FUA */
    char **bitmaps;          /* -B / bitmap=: qemu:dirty-bitmap:NAME offered */
    size_t n_bitmaps;
    struct vdk_node *bitmap_node; /* holds them: node, or the image under -s */
    atomic_uint clients;
};

struct nbd_server {
    struct nbd_export **exports;
    size_t n_exports;
    enum nbd_tls_mode tls_mode;
    struct nbd_tls *tls;
    bool allocation_depth;   /* -A: offer qemu:allocation-depth */
    unsigned workers;        /* worker threads per connection, 0: inline */
    uint64_t max_inflight;   /* bytes a connection may hold in flight */
    atomic_bool stopping;    /* SIGTERM: refuse new work */
};

/* Parse "name=N,file=PATH[,format=F][,readonly=on][,snapshot=on]
   [,description=D]". */
int nbd_export_parse(const char *spec, struct nbd_export **out,
                     struct vdk_error **errp);
struct nbd_export *nbd_export_new(const char *name, const char *file,
                                  const char *format);
/* Open the image and compute size, flags and block sizes. */
int nbd_export_open(struct nbd_export *e, enum nbd_cache_mode cache, bool tls,
                    bool discard, struct vdk_error **errp);
/* Set up an export on an already open node (tests, fuzzing). */
int nbd_export_attach(struct nbd_export *e, struct vdk_node *node,
                      struct vdk_error **errp);
/* Flush and close the image; free the export. */
int nbd_export_free(struct nbd_export *e);
struct nbd_export *nbd_export_find(struct nbd_server *s, const char *name);

/* ---- bitmap.c: qemu:dirty-bitmap:NAME contexts ---- */
/* Offer bitmap `name` (duplicates ignored); -E2BIG past NBD_MAX_BITMAPS. */
int nbd_export_add_bitmap(struct nbd_export *e, const char *name);
void nbd_export_free_bitmaps(struct nbd_export *e);
/* Once the image is open: each name must be a consistent bitmap of it. */
int nbd_export_check_bitmaps(struct nbd_export *e, struct vdk_error **errp);
/* Bitmaps a context query selects (list: "qemu:" and "qemu:dirty-bitmap:"
   select all). */
uint64_t nbd_meta_bitmap_query(const struct nbd_export *e, const char *q, bool list);
/* send(ctx, id, name) for each selected bitmap, in qemu-nbd's order. */
int nbd_meta_bitmap_send(const struct nbd_export *e, uint64_t mask,
                         int (*send)(void *ctx, uint32_t id, const char *name), void *ctx);
/* commands.c: append an extent of pnum bytes with these flags to d[0..*k),
   merging it into the last descriptor when the flags match and the sum
   stays under 4 GiB.  Returns the bytes taken (pnum, or less when one
   descriptor cannot hold it), or 0 when d already holds max descriptors. */
uint64_t nbd_extent_push(struct nbd_block_descriptor *d, int *k, int max, uint64_t pnum,
                         uint32_t flags);
/* Block-status descriptors of bitmap idx; the count or -errno. */
int nbd_bitmap_extents(struct nbd_export *e, size_t idx, uint64_t off, uint64_t len,
                       int max, struct nbd_block_descriptor *d);

/* ---- handshake.c / transmission.c: one connection ---- */
struct nbd_conn {
    struct nbd_server *srv;
    struct nbd_io io;
    char peer[128];
    bool no_zeroes;
    bool structured;
    bool meta_base;          /* base:allocation selected */
    bool meta_depth;         /* qemu:allocation-depth selected */
    uint64_t meta_bitmaps;   /* bit i: the export's bitmap i selected */
    char *meta_export;       /* export the contexts were set for */
    struct nbd_export *exp;  /* chosen export */
    uint16_t eflags;         /* flags sent to this client */
    pthread_mutex_t write_lock; /* one reply on the wire at a time */
    atomic_bool dead;        /* socket failed: stop sending */
};

void nbd_conn_init(struct nbd_conn *c, struct nbd_server *srv);
void nbd_conn_destroy(struct nbd_conn *c);
/* Negotiate.  0: c->exp is set, go to transmission.  <0: close. */
int nbd_handshake(struct nbd_conn *c);
/* Serve requests until DISC, end of stream or shutdown.  Waits for every
   request in flight before returning. */
int nbd_transmission(struct nbd_conn *c);

/* ---- commands.c: one request ---- */
struct nbd_req {             /* a request header, host byte order */
    uint16_t flags, type;
    uint64_t handle;         /* opaque cookie, kept in wire order */
    uint64_t offset;
    uint32_t length;
};

struct nbd_work {
    struct nbd_req req;
    uint32_t error;          /* wire error found while parsing, 0: none */
    const char *errmsg;
    uint8_t *buf;            /* a write's payload (or a batched read's data) */
    bool in_batch;           /* buf is a slice of the thread's batch arena */
    uint64_t cost;           /* bytes charged to the in-flight cap */
};

/* Run a request (or refuse it when w->error is set) and send its reply.
   Returns 0 once the reply is sent, or -errno when it could not be (the
   client is gone; the connection is then marked dead).  An error of the
   request itself is a reply, not a failure. */
int nbd_run_request(struct nbd_conn *c, struct nbd_work *w);
/* A request buffer of at least n bytes, from this thread's one-slot cache
   when it fits; give it back with nbd_buf_put (same thread), never free. */
void *nbd_buf_get(size_t n);
void nbd_buf_put(void *p, size_t n);

/* Reply to a request that failed with err (a negative errno), naming the
   operation in the structured error message. */
int nbd_reply_errno(struct nbd_conn *c, const struct nbd_work *w, int err, const char *what);
/* VDK_REQ_FUA when a write must be durable before its reply. */
unsigned nbd_write_flags(const struct nbd_conn *c, const struct nbd_work *w);

/* ---- batch.c: small requests run and answered together ---- */
#define NBD_MERGE_MAX 16              /* READs in one merged read (at most
                                         NBD_BATCH_MAX: they share arrays) */
#define NBD_BATCH_MAX 16              /* requests in one batch */
#define NBD_BATCH_ARENA (256u << 10)  /* data bytes one batch holds */
#define NBD_BATCH_LEN_MAX (32u << 10) /* largest request batched */
/* Whether a request may join a batch (before validation: one that fails
   it still gets its error reply from the batch). */
bool nbd_batchable(const struct nbd_conn *c, const struct nbd_req *q);
/* The calling thread's arena (NBD_BATCH_ARENA bytes), NULL if out of
   memory; and the arena bytes a request of len bytes takes. */
uint8_t *nbd_batch_arena(void);
uint32_t nbd_batch_slice(uint32_t len);
/* Headers of a successful READ or WRITE reply, one per request. */
struct nbd_ok_reply {
    union {
        struct nbd_simple_reply simple;
        struct nbd_structured_reply chunk;
    } h;
    uint64_t offset;         /* OFFSET_DATA: where the data starts */
};
/* Fill b and append the reply's iovecs (at most 3: headers, and a READ's
   q->length bytes at data) at iov; returns how many. */
int nbd_ok_reply(const struct nbd_conn *c, const struct nbd_req *q, struct nbd_ok_reply *b,
                 void *data, struct iovec *iov);
/* Run n requests whose data buffers are arena slices and send their
   replies together. */
void nbd_run_batch(struct nbd_conn *c, struct nbd_work *w, int n);

/* Fill a structured reply chunk header (handle kept in wire order). */
void nbd_chunk_header(struct nbd_structured_reply *h, uint16_t flags, uint16_t type,
                      uint64_t handle, uint32_t len);

/* Send a whole reply; the caller holds c->write_lock.  On failure the
   connection is marked dead. */
int nbd_send_iov(struct nbd_conn *c, struct iovec *iov, int n);
/* Send len bytes of file at off with vdk_node_sendfile() (plain sockets
   only), zeros for any part the file no longer has; the same contract. */
int nbd_send_file(struct nbd_conn *c, struct vdk_node *file, uint64_t off, uint64_t len);

/* ---- merge.c ---- */
/* How large merged reads of the export may be (0: never merge). */
uint32_t nbd_merge_max(struct vdk_node *node);
/* Whether q, just peeked, may join the merged read of n requests in w. */
bool nbd_merge_joins(const struct nbd_conn *c, const struct nbd_work *w, int n,
                     const struct nbd_req *q);
/* Run n consecutive READs (w[0] first) as one read of the export, each
   answered with its own reply, all sent together.  Frees nothing. */
void nbd_run_merged(struct nbd_conn *c, struct nbd_work *w, int n);

/* ---- zerocopy.c ---- */
/* Answer a READ straight from image files' page cache (see zerocopy.c).  1: answered
   (or the connection is dead), 0: not eligible, use the ordinary path. */
int nbd_read_zerocopy(struct nbd_conn *c, const struct nbd_work *w);

/* Map -errno to the protocol's error numbers. */
uint32_t nbd_errno_to_wire(int err);

#endif /* VDK_NBD_SERVER_H */
