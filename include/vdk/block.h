/* SPDX-License-Identifier: MIT */
/*
 * libvdk block layer: public API.
 *
 * A node is one open instance of a driver.  Nodes form a graph through
 * named child edges: "file" (where a format reads its bytes) and "backing"
 * (copy-on-write source).  Applications open the top node of an image with
 * vdk_open() and do I/O on it; the generic layer (block/io.c) checks every
 * request, emulates what the driver lacks (read-modify-write for unaligned
 * requests, zero writes, FUA, splitting at max_transfer) and then calls the
 * driver.
 *
 * Threads: I/O functions may be called concurrently from any thread on the
 * same node.  Graph changes (open, close, truncate, snapshot, commit,
 * amend) must happen on one control thread while no I/O is in flight.
 */
#ifndef VDK_BLOCK_H
#define VDK_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vdk/error.h"
#include "vdk/options.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VDK_VERSION_STRING "0.1.0"

struct vdk_node;
struct vdk_driver;

/* ---- open ---- */

enum {
    VDK_O_RDWR       = 1u << 0, /* open read-write (default read-only) */
    VDK_O_SHARE      = 1u << 1, /* -U: take no image locks, share with writers */
    VDK_O_NO_BACKING = 1u << 2, /* do not open the backing chain */
    VDK_O_DIRECT     = 1u << 3, /* O_DIRECT on file nodes (cache=none) */
    VDK_O_UNSAFE     = 1u << 4, /* cache=unsafe: flushes are no-ops */
    VDK_O_NO_FLUSH_ON_CLOSE = 1u << 5,
    VDK_O_CHECK_REPAIR = 1u << 6, /* open for check -r: allow corrupt images */
    VDK_O_NO_IO      = 1u << 7, /* metadata only (info of a locked image) */
    VDK_O_DISCARD    = 1u << 8, /* pass discards down (discard=unmap) */
    VDK_O_SNAPSHOT   = 1u << 9, /* throwaway overlay on top: the image is
                                   opened read-only, the returned node takes
                                   writes and forgets them at close */
    VDK_O_MAP        = 1u << 10, /* file nodes default to map=on (for
                                   callers that read mapped bytes in place,
                                   as a TLS server's cipher does) */
};

/*
 * Open `filename` as an image.
 *  - format: driver name ("raw", "qcow2", ...) or NULL to probe.  Probing
 *    happens only here, for the image the user names.  A probed raw image
 *    refuses a write to its first 512 bytes that would make it probe as
 *    another format; a probed image never opens a
 *    backing file whose format is not recorded in the image.
 *  - filename may be a URI ("nbd://host/export", "nbd+unix:///e?socket=p")
 *    which selects the protocol driver; otherwise the "file" protocol.
 *  - opts: driver options; "file.*" and "backing.*" keys go to the child
 *    nodes.  Consumed (freed) by the call, may be NULL.  Any key no driver
 *    reads is an error.
 * On success *out holds a reference the caller releases with vdk_close().
 */
VDK_API int vdk_open(struct vdk_node **out, const char *filename, const char *format,
             struct vdk_opts *opts, unsigned flags, struct vdk_error **errp);

/*
 * --image-opts style: everything in opts ("driver=qcow2,file.filename=a").
 * "driver" selects the format (absent: probe); "file.filename" or
 * "filename" names the file.  opts is consumed.
 */
VDK_API int vdk_open_opts(struct vdk_node **out, struct vdk_opts *opts, unsigned flags,
                  struct vdk_error **errp);

/*
 * Put a throwaway overlay on `base`: the returned node reads what base
 * holds, takes writes into an unlinked temporary file, and discards them
 * when closed (or when the process dies).  base is never written.  The
 * call takes over the caller's reference to base, also on failure.
 */
VDK_API int vdk_overlay_new(struct vdk_node **out, struct vdk_node *base,
                    struct vdk_error **errp);

/* Flush (unless opened unsafe or read-only) and release the whole graph.
   Returns the first error of writing out what the image kept in memory
   (qcow2's dirty bitmaps) or of the flush; the graph is released either
   way. */
VDK_API int vdk_close(struct vdk_node *n);

/* Take/release an extra reference (for sharing one graph among users). */
VDK_API void vdk_node_ref(struct vdk_node *n);
VDK_API void vdk_node_unref(struct vdk_node *n);

/* ---- I/O (hot path: -errno only) ---- */

enum {
    VDK_REQ_FUA         = 1u << 0, /* write: durable before returning */
    VDK_REQ_MAY_UNMAP   = 1u << 1, /* zeroes: may deallocate */
    VDK_REQ_NO_FALLBACK = 1u << 2, /* zeroes: fail -ENOTSUP rather than
                                      write zero buffers (NBD FAST_ZERO) */
    VDK_REQ_COMPRESSED  = 1u << 3, /* write: store compressed (qcow2 -c).
                                      Whole, aligned clusters only; formats
                                      without compression fail -ENOTSUP.
                                      The caller's thread compresses, so
                                      parallel writers compress in parallel. */
};

VDK_API int vdk_pread(struct vdk_node *n, void *buf, uint64_t bytes, uint64_t offset,
              unsigned flags);
VDK_API int vdk_pwrite(struct vdk_node *n, const void *buf, uint64_t bytes,
               uint64_t offset, unsigned flags);
VDK_API int vdk_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                      unsigned flags);
/* Advisory: returns 0 when the driver cannot discard. */
VDK_API int vdk_discard(struct vdk_node *n, uint64_t offset, uint64_t bytes);
VDK_API int vdk_flush(struct vdk_node *n);

/* Guest-visible size in bytes, or -errno. */
VDK_API int64_t vdk_get_length(struct vdk_node *n);
/* Bytes used on the host (st_blocks*512 of the file chain), -1 unknown. */
VDK_API int64_t vdk_get_allocated_size(struct vdk_node *n);

enum vdk_prealloc {
    VDK_PREALLOC_OFF,
    VDK_PREALLOC_METADATA,
    VDK_PREALLOC_FALLOC,
    VDK_PREALLOC_FULL,
};
VDK_API extern const char *const vdk_prealloc_names[]; /* "off","metadata",... NULL */

/* Resize the image.  Shrinking requires allow_shrink. */
VDK_API int vdk_truncate(struct vdk_node *n, uint64_t size, enum vdk_prealloc prealloc,
                 bool allow_shrink, struct vdk_error **errp);

/* ---- block status ---- */

enum {
    VDK_BS_DATA         = 1u << 0, /* reads return data from this layer */
    VDK_BS_ZERO         = 1u << 1, /* reads return zeros */
    VDK_BS_OFFSET_VALID = 1u << 2, /* *map is the offset in *file */
    VDK_BS_ALLOCATED    = 1u << 3, /* this layer decides the content (not
                                      the backing file) */
    VDK_BS_EOF          = 1u << 4, /* range reaches the end of the node */
    VDK_BS_COMPRESSED   = 1u << 5, /* stored compressed (qcow2) */
    /* bits 6 and 7 are the library's own (block/driver.h) */
    VDK_BS_PLAIN        = 1u << 8, /* with OFFSET_VALID: the bytes at *map
                                      in *file are the guest's bytes as
                                      they are (not encrypted, not
                                      compressed), so reading or mapping
                                      *file there gives them */
};

/*
 * Status of [offset, offset+bytes) in this layer only.  Returns flags >= 0
 * and sets *pnum (1 <= *pnum <= bytes) to the length that shares the status;
 * -errno on error.  map/file may be NULL.  Unallocated (no ALLOCATED bit)
 * means "ask the backing node"; with no backing the range reads as zeros
 * and ZERO is set.
 */
VDK_API int vdk_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                     uint64_t *pnum, uint64_t *map, struct vdk_node **file);

/*
 * Status through the backing chain from n down to (not including) base
 * (NULL: whole chain).  *depth (may be NULL) receives the layer index
 * (0 = n) that decided the range.  For ranges no layer allocates it is the
 * lowest layer asked, as in qemu-img map: the bottom of the chain (chain
 * length - 1, result ZERO), a layer whose backing file ends before the
 * range (result ZERO), or the layer just above base (result 0).
 * ALLOCATED is set if a layer above base decided the range.
 */
VDK_API int vdk_block_status_above(struct vdk_node *n, struct vdk_node *base,
                           uint64_t offset, uint64_t bytes, uint64_t *pnum,
                           uint64_t *map, struct vdk_node **file, int *depth);

/* ---- zero-copy reads ---- */

/*
 * Map [offset, offset+bytes) of node n read-only into memory, as SQLite's
 * VFS xFetch does: *ptr then points at the node's bytes without a copy.
 * Only protocol nodes that can do it safely map (a regular file opened
 * with the reader's image lock, which keeps every vdk and QEMU process
 * from writing or resizing it, and without O_DIRECT); others fail
 * -ENOTSUP, and the caller reads instead.  Pair it with block status: a
 * range a format reports as VDK_BS_DATA | VDK_BS_OFFSET_VALID |
 * VDK_BS_PLAIN is stored as it is at *map in *file, so
 * vdk_node_map(file, map, ...) gives the guest's bytes.
 *
 * Returns 0, -ENOTSUP, -EINVAL (range past the node's end) or -EFAULT
 * (the bytes are gone: the file shrank).  Every successful map is paired
 * with vdk_node_unmap(), which returns -EFAULT if the file was truncated
 * meanwhile by a process that ignores the locks: the pages that vanished
 * read as zeros instead of killing the process with SIGBUS, and whatever
 * the caller did with the bytes must be redone from vdk_pread().  (To
 * do that, the library installs a SIGBUS handler on first use that
 * passes faults outside its mappings on to the previous handler.)  The
 * pointer must not be used after the node is closed.
 */
VDK_API int vdk_node_map(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                         const void **ptr);
VDK_API int vdk_node_unmap(struct vdk_node *n, const void *ptr, uint64_t bytes);

/*
 * Send [offset, offset+bytes) of node n to the socket sock without a copy
 * through user memory (sendfile(2) from the page cache), for servers
 * answering reads.  Pair it with block status as vdk_node_map() is.
 * Only protocol nodes whose bytes lie in a buffered regular file or block
 * device can (the file protocol without O_DIRECT); others return -ENOTSUP
 * before anything is sent.  bytes == 0 asks only whether the node can,
 * and never touches sock.
 *
 * Returns 0 with *sent == bytes; 0 with *sent < bytes when the file ended
 * first (it shrank meanwhile: the caller, who promised bytes, sends zeros
 * for the rest, as a read past a file's end gives); or -errno from the
 * socket or the file, with *sent what went out before it.  Unlike a read
 * into a buffer, the bytes leave the page cache when the peer takes them,
 * so a write racing with the send may show through, as it may in a read
 * racing with that write.
 */
VDK_API int vdk_node_sendfile(struct vdk_node *n, int sock, uint64_t offset, uint64_t bytes,
                              uint64_t *sent);

/* ---- graph inspection ---- */

VDK_API const char *vdk_node_driver_name(const struct vdk_node *n);
VDK_API const char *vdk_node_filename(const struct vdk_node *n);
VDK_API struct vdk_node *vdk_node_file(const struct vdk_node *n);
VDK_API struct vdk_node *vdk_node_backing(const struct vdk_node *n);
VDK_API bool vdk_node_is_read_only(const struct vdk_node *n);
VDK_API bool vdk_node_is_format(const struct vdk_node *n);
/* False when a freshly created image of this stack does not read back as
   zeros (LUKS: zeroed sectors decrypt to noise), so a copy into it must
   write its zero ranges instead of skipping them (qemu's has_zero_init). */
VDK_API bool vdk_node_has_zero_init(const struct vdk_node *n);
/* The recorded backing file name / format of a format node, or NULL. */
VDK_API const char *vdk_node_backing_name(const struct vdk_node *n);
VDK_API const char *vdk_node_backing_format(const struct vdk_node *n);
/* Best sizes for I/O: request alignment and preferred transfer. */
VDK_API uint32_t vdk_node_alignment(const struct vdk_node *n);
VDK_API uint32_t vdk_node_max_transfer(const struct vdk_node *n);
/* The preferred transfer size of the storage under n, the protocol node
   at the bottom of its file chain (0: none): a request smaller than it
   costs the storage nearly as much as one of this size (rbd: an object;
   a file: 1 MiB). */
VDK_API uint32_t vdk_node_storage_opt_transfer(const struct vdk_node *n);
/* Cluster size (0 if none) for block-status granularity hints; the driver
   records it when the node opens. */
VDK_API uint32_t vdk_node_cluster_size(const struct vdk_node *n);
/* VDK_REQ_* write flags the node handles natively (e.g. COMPRESSED, FUA). */
VDK_API unsigned vdk_node_write_flags(const struct vdk_node *n);
/* Every write must be VDK_REQ_COMPRESSED, each cluster written once (a
   streamOptimized VMDK): copies compress without being asked (-c). */
VDK_API bool vdk_node_needs_compressed_writes(const struct vdk_node *n);

/* ---- create ---- */

/*
 * Create an image.  opts holds the format's create options ("size",
 * "preallocation", "cluster_size", "backing_file", ...); protocol options
 * may be given under "file.".  opts is consumed.  Unknown options are an
 * error naming the option and the format.  The format's options are
 * checked before the file is touched, so a create refused for them leaves
 * an existing file as it was; a create that fails later removes the file
 * if it made it (a local file that did not exist before).
 */
VDK_API int vdk_create(const char *format, const char *filename, struct vdk_opts *opts,
               struct vdk_error **errp);

/*
 * Removing a local file that an operation created, when a later step of
 * it fails (convert removes a target it made): vdk_created_file_before()
 * before creating, vdk_created_file_after() once the file exists, and
 * vdk_created_file_remove() unlinks the file only if it did not exist
 * before and is still the same file.  URIs are left alone.
 */
struct vdk_created_file {
    bool existed, created;
    uint64_t dev, ino;
};
VDK_API void vdk_created_file_before(struct vdk_created_file *c, const char *filename);
VDK_API void vdk_created_file_after(struct vdk_created_file *c, const char *filename);
VDK_API void vdk_created_file_remove(struct vdk_created_file *c, const char *filename);

/*
 * Print the create options of `format` (and of the protocol `filename`
 * would use) in qemu-img's "-o help" layout.
 */
VDK_API void vdk_create_print_help(const char *format, const char *filename, FILE *out);

/* ---- drivers ---- */

/* NULL if unknown. */
VDK_API const struct vdk_driver *vdk_driver_find(const char *name);
/* Iterate the table: returns NULL past the end. */
VDK_API const struct vdk_driver *vdk_driver_nth(size_t i);
VDK_API const char *vdk_driver_name(const struct vdk_driver *drv);
/* Does filename name a network image ("nbd://...", "rbd:pool/image") rather
   than a local path?  Such names are never combined with a directory. */
VDK_API bool vdk_filename_is_remote(const char *filename);
/* The protocol driver that opens filename: "file" for a local path, the
   driver of its scheme or prefix ("nbd", "rbd"), NULL for one vdk lacks. */
VDK_API const struct vdk_driver *vdk_protocol_driver(const char *filename);
VDK_API bool vdk_driver_is_format(const struct vdk_driver *drv);
VDK_API bool vdk_driver_can_create(const struct vdk_driver *drv);
/* The format can change options of existing images (vdk_amend). */
VDK_API bool vdk_driver_can_amend(const struct vdk_driver *drv);
/* Create-option table (NULL-terminated) or NULL. */
VDK_API const struct vdk_opt_desc *vdk_driver_create_opts(const struct vdk_driver *drv);
/* Runtime-option table or NULL. */
VDK_API const struct vdk_opt_desc *vdk_driver_open_opts(const struct vdk_driver *drv);

/* ---- info, check, measure, amend, snapshots ---- */

/*
 * Result structs the caller allocates start with struct_size, which the
 * caller sets to sizeof the struct it was compiled with (the *_INIT
 * initialisers do).  The library fills no more than that, so the structs
 * can grow at the end without breaking programs built against older
 * headers; a struct_size smaller than the first version is -EINVAL.
 */
struct vdk_image_info {
    uint32_t struct_size;        /* sizeof(struct vdk_image_info) */
    const char *format;          /* driver name */
    uint64_t virtual_size;
    int64_t actual_size;         /* -1 unknown */
    uint32_t cluster_size;       /* 0: none */
    bool encrypted;
    bool has_dirty_flag;
    bool dirty_flag;
    /* driver-specific data as JSON text in qemu's "format-specific" shape,
       {"type": "qcow2", "data": {...}}, or NULL; vdk_image_info_clear()
       frees it */
    char *format_specific;
};
#define VDK_IMAGE_INFO_INIT { .struct_size = sizeof(struct vdk_image_info) }

/* Fill info for the node (format layer).  Free with vdk_image_info_clear(). */
VDK_API int vdk_get_info(struct vdk_node *n, struct vdk_image_info *info,
                 struct vdk_error **errp);
VDK_API void vdk_image_info_clear(struct vdk_image_info *info);

struct vdk_check_result {
    uint32_t struct_size;        /* sizeof(struct vdk_check_result) */
    int corruptions;
    int leaks;
    int check_errors;
    int corruptions_fixed;
    int leaks_fixed;
    uint64_t image_end_offset;   /* 0: unknown */
    uint64_t total_clusters;     /* 0: not cluster-based */
    uint64_t allocated_clusters;
    uint64_t fragmented_clusters;
    uint64_t compressed_clusters;
};
#define VDK_CHECK_RESULT_INIT { .struct_size = sizeof(struct vdk_check_result) }

enum { VDK_CHECK_FIX_LEAKS = 1, VDK_CHECK_FIX_ERRORS = 2 };

/* -ENOTSUP if the format cannot be checked. */
VDK_API int vdk_check(struct vdk_node *n, struct vdk_check_result *res, unsigned fix,
              struct vdk_error **errp);

struct vdk_measure {
    uint32_t struct_size;     /* sizeof(struct vdk_measure) */
    uint64_t required;        /* bytes for the converted image */
    uint64_t fully_allocated; /* bytes if every cluster were allocated */
    bool has_bitmaps;         /* the source's persistent bitmaps can be
                                 carried over (qcow2 v3 to qcow2 v3) */
    uint64_t bitmaps;         /* bytes they would take in the new image */
};
#define VDK_MEASURE_INIT { .struct_size = sizeof(struct vdk_measure) }

/*
 * Size a new image of `format` with create options `opts` (not consumed),
 * holding the data of `src` (may be NULL, then `size` is used).
 */
VDK_API int vdk_measure(const char *format, struct vdk_opts *opts, struct vdk_node *src,
                uint64_t size, struct vdk_measure *out, struct vdk_error **errp);

/* Change create-time options of an open (read-write) image. */
VDK_API int vdk_amend(struct vdk_node *n, struct vdk_opts *opts, struct vdk_error **errp);

/* Change the recorded backing file (rebase -u).  NULL removes it. */
VDK_API int vdk_change_backing_file(struct vdk_node *n, const char *backing_file,
                            const char *backing_fmt, struct vdk_error **errp);

struct vdk_snapshot_info {
    char id[128];
    char *name;
    uint64_t vm_state_size;
    uint32_t date_sec;
    uint32_t date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t icount;            /* UINT64_MAX: none */
};

VDK_API int vdk_snapshot_list(struct vdk_node *n, struct vdk_snapshot_info **list,
                      int *count, struct vdk_error **errp);
VDK_API void vdk_snapshot_list_free(struct vdk_snapshot_info *list, int count);
VDK_API int vdk_snapshot_create(struct vdk_node *n, const char *name,
                        struct vdk_error **errp);
VDK_API int vdk_snapshot_goto(struct vdk_node *n, const char *id_or_name,
                      struct vdk_error **errp);
VDK_API int vdk_snapshot_delete(struct vdk_node *n, const char *id_or_name,
                        struct vdk_error **errp);

/* ---- persistent dirty bitmaps (qcow2) ----
 * Bitmaps live in the format node; every write, write-zeroes and discard
 * through it marks the enabled ones.  Changes are stored when the node is
 * closed (or reopened read-only).  Control operations must not run beside
 * I/O to the same node.  Nodes without bitmap support fail with -ENOTSUP. */
struct vdk_bitmap_info {
    char *name;
    uint64_t granularity;       /* bytes */
    bool enabled;               /* "auto": writes mark it */
    bool in_use;                /* inconsistent: found in use (a crash) */
};
/* The node's bitmaps; -ENOTSUP when it cannot hold any (not qcow2 v3). */
VDK_API int vdk_bitmap_list(struct vdk_node *n, struct vdk_bitmap_info **list,
                            int *count, struct vdk_error **errp);
VDK_API void vdk_bitmap_list_free(struct vdk_bitmap_info *list, int count);

enum vdk_bitmap_op {
    VDK_BITMAP_ADD,             /* granularity 0: the format's default */
    VDK_BITMAP_ADD_DISABLED,
    VDK_BITMAP_REMOVE,
    VDK_BITMAP_CLEAR,
    VDK_BITMAP_ENABLE,
    VDK_BITMAP_DISABLE,
};
/* One operation on the bitmap `name` of a read-write node; errors carry
   qemu-img's words ("Dirty bitmap 'x' not found", ...). */
VDK_API int vdk_bitmap_op(struct vdk_node *n, enum vdk_bitmap_op op, const char *name,
                          uint64_t granularity, struct vdk_error **errp);
/* OR the dirty bits of src's bitmap src_name into n's bitmap name (any
   granularities; src may be n). */
VDK_API int vdk_bitmap_merge(struct vdk_node *n, const char *name, struct vdk_node *src,
                             const char *src_name, struct vdk_error **errp);
/* Whether [offset, offset+bytes) starts dirty in bitmap `name`: 1 dirty,
   0 clean, with *pnum the length of that run (at most bytes); -ENOENT
   when there is no such bitmap, -EINVAL when it is inconsistent. */
VDK_API int vdk_bitmap_status(struct vdk_node *n, const char *name, uint64_t offset,
                              uint64_t bytes, uint64_t *pnum);

/* ---- backing chains ---- */

/*
 * Switch a node (and its file child) between read-only and read-write;
 * flags is VDK_O_RDWR or 0.  Takes the matching image locks, so it fails
 * cleanly with the "in use" message when another process holds the image.
 */
VDK_API int vdk_reopen(struct vdk_node *n, unsigned flags, struct vdk_error **errp);

/* Progress callback for long operations; total may grow. */
typedef void (*vdk_progress_fn)(uint64_t done, uint64_t total, void *opaque);

struct vdk_ratelimit; /* vdk/ratelimit.h */

/*
 * Options of vdk_commit() and vdk_rebase(); NULL means all defaults.
 * struct_size is sizeof(struct vdk_chain_opts) as the caller was built
 * (fields past it read as zero), so the struct can grow.
 */
struct vdk_chain_opts {
    size_t struct_size;
    vdk_progress_fn progress;     /* may be NULL */
    void *opaque;                 /* for progress */
    struct vdk_ratelimit *limit;  /* commit: every byte written into the
                                     base is paid for first; NULL: none */
    bool compress;                /* rebase: the clusters it copies are
                                     written VDK_REQ_COMPRESSED (the image
                                     must support it) */
};

/*
 * Commit (qemu-img commit): copy everything the layers from `top` down to,
 * but not including, `base` allocate into `base` (NULL: top's backing
 * file).  `base` is reopened read-write for the copy and grown if smaller
 * than top.  When base is not top's immediate backing file, top's backing
 * file becomes base (intermediate images leave the chain).  Unless
 * keep_top, top is emptied afterwards so the chain still reads the same.
 */
VDK_API int vdk_commit(struct vdk_node *top, struct vdk_node *base, bool keep_top,
               const struct vdk_chain_opts *opts, struct vdk_error **errp);

/*
 * Rebase (qemu-img rebase).  Safe mode (unsafe false): for every range top
 * does not allocate, where the old chain and the new backing file differ,
 * the old data is written into top, so the guest-visible data is
 * unchanged; then the backing file reference is changed.  Unsafe mode
 * changes only the reference.  new_backing NULL or "" removes the backing
 * file; new_fmt may be NULL to probe (safe mode) / not record (unsafe).
 * With opts->compress, data is copied in whole clusters, each written
 * compressed; it fails with ENOTSUP when top cannot store compressed
 * clusters.
 */
VDK_API int vdk_rebase(struct vdk_node *top, const char *new_backing, const char *new_fmt,
               bool unsafe, const struct vdk_chain_opts *opts, struct vdk_error **errp);

/* ---- helpers ---- */

/*
 * A page-aligned buffer of size bytes, fit for I/O on any node (O_DIRECT
 * included, so no bounce buffer is needed).  Not zeroed.  NULL when out
 * of memory.  Release with vdk_buffer_free().
 */
VDK_API void *vdk_buffer_alloc(size_t size);
VDK_API void vdk_buffer_free(void *p);

/*
 * Read the whole regular file `path` of at most max bytes into a new
 * malloc'ed buffer (*data, free() it; *len bytes).  `what` names the file
 * in errors ("kernel", "secret file"): "cannot open kernel 'x': ...",
 * "... is not a regular file", "... is too big (N bytes, at most M)".
 */
VDK_API int vdk_read_file(const char *path, const char *what, size_t max,
                          uint8_t **data, size_t *len, struct vdk_error **errp);

/* True when buf is all zero bytes (fast, word-at-a-time). */
VDK_API bool vdk_buffer_is_zero(const void *buf, size_t len);

/*
 * Library version: VDK_VERSION_STRING.
 */
VDK_API const char *vdk_version(void);

#ifdef __cplusplus
}
#endif

#endif /* VDK_BLOCK_H */
