/* SPDX-License-Identifier: MIT */
/*
 * Internal driver interface of libvdk (not installed).
 *
 * A driver is one static struct of callbacks listed in the table in
 * block/drivers.c.  NULL callbacks mean "unsupported" or "use the generic
 * fallback" as documented per field.  Drivers never check request bounds or
 * alignment: the generic layer (block/io.c) guarantees that every request a
 * driver sees is inside [0, size), aligned to limits.request_alignment, and
 * no larger than limits.max_transfer.
 *
 * Drivers may be called concurrently from several threads; each guards its
 * own metadata with its own lock and should do data I/O outside it.
 */
#ifndef VDK_BLOCK_DRIVER_H
#define VDK_BLOCK_DRIVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "vdk/block.h"

struct json_object;

/* Block-status bits for drivers only, beside the public VDK_BS_* ones. */
enum {
    VDK_BS_RECURSE    = 1u << 6, /* status is that of *file at *map (raw
                                    passthrough) */
    VDK_BS_PEEK_HOLES = 1u << 7, /* DATA at *map may be a hole of *file,
                                    which reads as zeros: ask *file (qcow2
                                    with preallocated metadata) */
};

/* What a format's get_info callback fills (vdk_get_info adds the rest). */
struct vdk_driver_info {
    uint32_t cluster_size;       /* 0: none */
    bool encrypted;
    bool has_dirty_flag;
    bool dirty_flag;
    /* qemu's "format-specific" object ({"type": .., "data": {..}}) or
       NULL; the generic layer takes the reference */
    struct json_object *format_specific;
};
#include "vdk/error.h"
#include "vdk/options.h"

enum vdk_driver_kind {
    VDK_DRV_PROTOCOL,
    VDK_DRV_FORMAT,
    VDK_DRV_FILTER,
};

struct vdk_limits {
    uint32_t request_alignment; /* power of two, >= 1 */
    uint32_t max_transfer;      /* 0: VDK_DEFAULT_MAX_TRANSFER */
    uint32_t opt_transfer;      /* preferred I/O size, 0: unknown */
    uint32_t max_pwrite_zeroes; /* 0: same as unlimited (split at 1 GiB) */
    uint32_t pwrite_zeroes_alignment;
    uint32_t discard_alignment;
};

#define VDK_DEFAULT_MAX_TRANSFER (32u << 20)
/* Largest single request any node accepts (NBD's limit, and a bound on
 * bounce buffers). */
#define VDK_MAX_REQUEST (1u << 30)

struct vdk_node {
    const struct vdk_driver *drv;
    void *opaque;              /* drv->state_size bytes, zeroed */
    char *filename;            /* as opened (resolved path for files) */
    char *display_name;        /* for messages: filename or URI */
    struct vdk_node *file;     /* "file" child edge */
    struct vdk_node *backing;  /* "backing" child edge */
    char *backing_file;        /* as recorded in the image, or NULL */
    char *backing_fmt;         /* as recorded, or NULL */
    char *full_backing_file;   /* resolved path, or NULL */
    unsigned open_flags;       /* VDK_O_* */
    bool read_only;
    bool probed;               /* format was guessed */
    bool protect_sector0;      /* probed raw: refuse writes to bytes 0..511
                                  that make it probe as another format */
    pthread_mutex_t sector0_lock; /* held across such a write's check and I/O */
    bool growable;             /* protocol whose size follows writes (file,
                                  memory): requests are not bounded by size;
                                  reads past the end return zeros */
    bool no_zero_init;         /* set by open: this image's unwritten areas
                                  need not read as zeros (drv->no_zero_init
                                  for one image, e.g. encrypted preallocation) */
    uint64_t size;             /* guest-visible length, kept by drivers */
    uint32_t cluster_size;     /* allocation unit, set by open (0: none) */
    struct vdk_limits limits;
    unsigned supported_write_flags; /* VDK_REQ_FUA if native */
    bool needs_compressed_writes;   /* set by open: every write compressed
                                       (streamOptimized VMDK) */
    unsigned supported_zero_flags;  /* VDK_REQ_MAY_UNMAP | VDK_REQ_FUA */
    atomic_int refcnt;

    /* Serialisation of read-modify-write (block/io.c). */
    pthread_mutex_t track_lock;
    pthread_cond_t track_cond;
    struct vdk_tracked_req *tracked;
};

struct vdk_driver {
    const char *name;
    enum vdk_driver_kind kind;
    size_t state_size;
    /* URI schemes served by a protocol driver ("nbd", "nbd+unix", ...). */
    const char *const *protocols;
    const struct vdk_opt_desc *open_opts;   /* runtime options */
    const struct vdk_opt_desc *create_opts; /* create options */
    /* This format stores a backing file reference (qcow2, vhd diff). */
    bool supports_backing;
    /* A child records its parent's state (VHDX: the data write GUID), so
       commit writes the child's link again (change_backing_file) once the
       parent changed. */
    bool relink_after_commit;
    /* A new image does not read back as zeros (vdk_node_has_zero_init). */
    bool no_zero_init;
    /* flush() flushes n->file itself, so the generic layer does not: qcow2
       writes its bitmaps' cleared "in use" flag after that flush, which
       saves the flush a store would otherwise need before the clear. */
    bool flush_covers_file;

    /*
     * Score 0..100 how likely buf (the first len bytes, len <= 4096,
     * fewer for short files) is this format.  Raw answers 1.
     */
    int (*probe)(const uint8_t *buf, size_t len, const char *filename);
    /*
     * Optional, for formats with a trailer (a fixed VHD's footer): score
     * the last len (512) bytes of a file of file_len bytes.  The format's
     * score is the larger of the two.
     */
    int (*probe_tail)(const uint8_t *tail, size_t len, uint64_t file_len);

    /*
     * Open.  For formats n->file is already open; the driver reads its
     * header, sets n->size, n->limits, n->backing_file/backing_fmt.  The
     * generic layer opens the backing chain afterwards.  Read every option
     * the driver understands from opts with vdk_opts_get*(); leftovers are
     * an error.  Protocols get the name in opts "filename".
     * On failure, open releases everything it allocated itself (close is
     * not called).  Bound every size, offset and count read from the image
     * before use.
     */
    int (*open)(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                struct vdk_error **errp);
    void (*close)(struct vdk_node *n);

    /*
     * Create.  Protocols: file is NULL, create `filename` (size from opts).
     * Formats: `file` is the open (read-write, empty or truncated) protocol
     * node to write the image into.  Consume the options you know.
     */
    int (*create)(const char *filename, struct vdk_node *file,
                  struct vdk_opts *opts, struct vdk_error **errp);
    /*
     * Optional: check create options (a copy) as create would, without
     * touching any file, so that a create refused for its options leaves
     * an existing file as it was.  create repeats the checks.
     */
    int (*create_check)(const char *filename, struct vdk_opts *opts, struct vdk_error **errp);

    int (*pread)(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                 void *buf, unsigned flags);
    int (*pwrite)(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                  const void *buf, unsigned flags);
    /* NULL or -ENOTSUP: generic layer writes zero buffers (unless
       VDK_REQ_NO_FALLBACK).  flags may carry VDK_REQ_NO_FALLBACK: a driver
       that zeroes through a child passes it on. */
    int (*pwrite_zeroes)(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                         unsigned flags);
    /* NULL: discard is a no-op. */
    int (*discard)(struct vdk_node *n, uint64_t offset, uint64_t bytes);
    /* Write back cached metadata.  The generic layer then flushes n->file,
       so drivers need not (unless flush_covers_file: then they must).
       NULL: nothing cached. */
    int (*flush)(struct vdk_node *n);
    /*
     * NULL: protocols report DATA|ALLOCATED|OFFSET_VALID at the same
     * offset; formats/filters RECURSE into n->file at the same offset.
     * Set *pnum (1..bytes); may set *map and *file with OFFSET_VALID.
     */
    int (*block_status)(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                        uint64_t *pnum, uint64_t *map, struct vdk_node **file);
    /* NULL: n->size. */
    int64_t (*get_length)(struct vdk_node *n);
    /* NULL: formats sum their children; protocols report -1. */
    int64_t (*get_allocated_size)(struct vdk_node *n);
    int (*truncate)(struct vdk_node *n, uint64_t size, enum vdk_prealloc prealloc,
                    bool allow_shrink, struct vdk_error **errp);
    /*
     * Switch between read-only and read-write (flags: VDK_O_RDWR or not).
     * To read-write: called after n->file was reopened; to read-only:
     * before it is (the driver may still write its last metadata).  Both
     * before n->read_only changes.
     * NULL: nothing to do (protocols without it refuse to switch).
     */
    int (*reopen)(struct vdk_node *n, unsigned flags, struct vdk_error **errp);
    /* Before a reopen read-only, while n->file is still writable: write
       what the read-write session keeps in memory (qcow2's bitmaps). */
    int (*inactivate)(struct vdk_node *n);
    /*
     * Drop every cluster this layer allocates, so the backing file shows
     * through again (commit without -d).  NULL: not supported.
     */
    int (*make_empty)(struct vdk_node *n, struct vdk_error **errp);

    /*
     * Zero-copy reads (protocols; vdk_node_map): point *ptr at the bytes
     * [offset, offset+bytes) of the node, valid until the node closes, or
     * fail -ENOTSUP (cannot map here) / -EFAULT (bytes gone).  The range
     * is inside the node's length.  unmap returns -EFAULT when the bytes
     * handed out may have been replaced since (file truncated by a
     * process ignoring the locks).  NULL: not mappable.
     */
    int (*map)(struct vdk_node *n, uint64_t offset, uint64_t bytes, const void **ptr);
    int (*unmap)(struct vdk_node *n, const void *ptr, uint64_t bytes);
    /*
     * Zero-copy sends (protocols; vdk_node_sendfile): the range fits an
     * off_t and may pass the node's end (stop there); bytes == 0 only
     * asks.  NULL: cannot.
     */
    int (*sendfile)(struct vdk_node *n, int sock, uint64_t offset, uint64_t bytes,
                    uint64_t *sent);

    /* Fill cluster_size, encrypted, dirty flag, format_specific. */
    int (*get_info)(struct vdk_node *n, struct vdk_driver_info *info,
                    struct vdk_error **errp);
    int (*check)(struct vdk_node *n, struct vdk_check_result *res, unsigned fix,
                 struct vdk_error **errp);
    int (*measure)(struct vdk_opts *opts, struct vdk_node *src, uint64_t size,
                   struct vdk_measure *out, struct vdk_error **errp);
    int (*amend)(struct vdk_node *n, struct vdk_opts *opts,
                 struct vdk_error **errp);
    /* Rewrite the backing reference (NULL removes it) and update
       n->backing_file / n->backing_fmt to match. */
    int (*change_backing_file)(struct vdk_node *n, const char *backing_file,
                               const char *backing_fmt, struct vdk_error **errp);

    int (*snapshot_create)(struct vdk_node *n, const char *name,
                           struct vdk_error **errp);
    int (*snapshot_goto)(struct vdk_node *n, const char *id_or_name,
                         struct vdk_error **errp);
    int (*snapshot_delete)(struct vdk_node *n, const char *id_or_name,
                           struct vdk_error **errp);
    int (*snapshot_list)(struct vdk_node *n, struct vdk_snapshot_info **list,
                         int *count, struct vdk_error **errp);

    /* Persistent dirty bitmaps (see vdk_bitmap_* in block.h); bitmap_mark
       sets [offset, offset+bytes) dirty in one named bitmap (merge). */
    int (*bitmap_list)(struct vdk_node *n, struct vdk_bitmap_info **list, int *count,
                       struct vdk_error **errp);
    int (*bitmap_op)(struct vdk_node *n, enum vdk_bitmap_op op, const char *name,
                     uint64_t granularity, struct vdk_error **errp);
    int (*bitmap_status)(struct vdk_node *n, const char *name, uint64_t offset,
                         uint64_t bytes, uint64_t *pnum);
    int (*bitmap_mark)(struct vdk_node *n, const char *name, uint64_t offset,
                       uint64_t bytes);
};

/* ---- helpers for drivers ---- */

/* Protocol and format drivers defined in the tree (table in drivers.c). */
extern const struct vdk_driver vdk_driver_file;
extern const struct vdk_driver vdk_driver_memory;
extern const struct vdk_driver vdk_driver_null;
extern const struct vdk_driver vdk_driver_nbd;
extern const struct vdk_driver vdk_driver_rbd;
extern const struct vdk_driver vdk_driver_raw;
extern const struct vdk_driver vdk_driver_qcow2;
extern const struct vdk_driver vdk_driver_vpc;
extern const struct vdk_driver vdk_driver_vmdk;
extern const struct vdk_driver vdk_driver_ova;
extern const struct vdk_driver vdk_driver_luks;
extern const struct vdk_driver vdk_driver_vdi;
extern const struct vdk_driver vdk_driver_parallels;
extern const struct vdk_driver vdk_driver_vhdx;
extern const struct vdk_driver vdk_driver_overlay;
extern const struct vdk_driver vdk_driver_fault;

/* Bytes at the head of an image the format probes look at. */
#define VDK_PROBE_BYTES 4096
/* Does an image starting with head[0, len) still probe as raw (no format
   driver, and no format vdk knows but cannot open, scores higher)?  The
   guard on a probed raw image's first sector (block/io.c). */
bool vdk_probe_head_is_raw(const uint8_t *head, size_t len, const char *filename);

/*
 * Node lifecycle for code that builds graphs by hand (filters): a new node
 * with zeroed driver state and refcount 1, and freeing one whose driver
 * open failed or never ran (children are unreferenced, close is not
 * called).
 */
struct vdk_node *vdk_node_new_internal(const struct vdk_driver *drv,
                                       const char *filename);
void vdk_node_free_internal(struct vdk_node *n);

/*
 * Unit tests only: make one extra driver (a test format with backing
 * files, say) visible to vdk_driver_find(), vdk_driver_nth() and probing,
 * after the built-in table.  NULL removes it.  Programs never call this.
 */
void vdk_driver_set_test_extra(const struct vdk_driver *drv);

/*
 * Probing (block/probe.c): the format driver with the highest score for
 * the protocol node `file`.  A format vdk recognises but has no driver for
 * (or a driver that does not take this variant) fails with an error naming
 * it; nothing recognised at all gives raw (score 1).
 */
int vdk_probe_format(struct vdk_node *file, const struct vdk_driver **out,
                     struct vdk_error **errp);

/* Driver used for a URI such as "nbd://..."; NULL if not a URI we serve. */
const struct vdk_driver *vdk_driver_for_uri(const char *filename);
/* The protocol of a plain path (the file driver): block/ names it only
   through the registry, never by its symbol. */
const struct vdk_driver *vdk_driver_default_protocol(void);

/*
 * Open a protocol node for `filename` (file or URI) with options opts
 * (consumed).  Used by formats that open extra files (VHD parents, qcow2
 * external data files) and by vdk_open itself.
 */
int vdk_open_protocol(struct vdk_node **out, const char *filename,
                      struct vdk_opts *opts, unsigned flags,
                      struct vdk_error **errp);

/*
 * Resolve a backing/parent path recorded in an image relative to the
 * directory of `base_filename` (absolute paths and URIs are returned as
 * is).  Caller frees.
 */
char *vdk_path_combine(const char *base_filename, const char *rel);

/*
 * Guest bytes [offset, offset+bytes) below a format node: from its backing
 * node, zeros past the backing node's end or without one (copy-on-write
 * fills).  0 or -errno.
 */
int vdk_node_read_backing(struct vdk_node *n, uint64_t offset, uint64_t bytes, uint8_t *buf);

/* Allocate a zeroed, page-aligned buffer suitable for O_DIRECT (the
   public vdk_buffer_alloc() without the zeroing is the one allocator). */
void *vdk_blk_alloc(size_t size);
void vdk_blk_free(void *p);

/* read() until n bytes, end of file or an error other than EINTR: the
   bytes read, or -errno.  (block/util.c; vdk_read_file() is built on it.) */
ssize_t vdk_read_full(int fd, void *buf, size_t n);

/* Minimum of two uint64_t. */
static inline uint64_t vdk_min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static inline uint64_t vdk_align_down(uint64_t x, uint64_t a) { return x & ~(a - 1); }
static inline uint64_t vdk_align_up(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }
static inline bool vdk_is_pow2(uint64_t x) { return x && !(x & (x - 1)); }

/* Effective max transfer of a node (never 0, multiple of alignment;
   block/io.c). */
uint32_t vdk_node_effective_max_transfer(const struct vdk_node *n);

#endif /* VDK_BLOCK_DRIVER_H */
