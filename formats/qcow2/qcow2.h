/* SPDX-License-Identifier: MIT */
/*
 * qcow2 format driver: on-disk layout and in-memory state shared by the
 * files of formats/qcow2/.  Format reference: QEMU's docs/interop/qcow2.txt.
 *
 * Locking: s->lock (one mutex) guards all metadata: the L1 table, the L2
 * and refcount caches, the refcount table, the allocator and the header.
 * Data I/O to clusters that are already allocated and owned (COPIED) runs
 * outside it, and so does the data write of an allocating write: its guest
 * clusters are listed in s->inflight meanwhile, and any other write to them
 * waits on s->inflight_done.  s->free_lock is read-held by such data I/O
 * and write-held by any operation that can free a cluster (discard,
 * overwrite of compressed or shared clusters, shrink), so a cluster is
 * never reused while a reader or writer still uses its old mapping.
 *
 * Crash-consistency rules for writes (a crash may leak clusters, never
 * corrupt the image):
 *   1. refcount increments reach the disk before any L2/L1/refcount-table
 *      entry that points at the cluster (the refcount cache is flushed and
 *      the file synced before a dirty L2 table is written);
 *   2. a new L2 table is written (and synced) before the L1 entry pointing
 *      at it, a new refcount block before the refcount-table entry;
 *   3. a cluster is freed (refcount decremented) only after the L2 entry
 *      that pointed at it has been overwritten on disk.
 * With lazy_refcounts, rule 1 is relaxed and the dirty bit marks the image
 * for a refcount rebuild on the next read-write open.
 */
#ifndef VDK_QCOW2_H
#define VDK_QCOW2_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "block/driver.h"

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */

/* Header field offsets (big endian on disk). */
#define QH_VERSION            4
#define QH_BACKING_OFFSET     8
#define QH_BACKING_SIZE       16
#define QH_CLUSTER_BITS       20
#define QH_SIZE               24
#define QH_CRYPT_METHOD       32
#define QH_L1_SIZE            36
#define QH_L1_OFFSET          40
#define QH_RT_OFFSET          48
#define QH_RT_CLUSTERS        56
#define QH_NB_SNAPSHOTS       60
#define QH_SNAPSHOTS_OFFSET   64
#define QH_INCOMPAT           72
#define QH_COMPAT             80
#define QH_AUTOCLEAR          88
#define QH_REFCOUNT_ORDER     96
#define QH_HEADER_LENGTH      100
#define QH_COMPRESSION_TYPE   104
#define QCOW2_V2_HEADER_LEN   72
#define QCOW2_V3_HEADER_LEN   104
#define QCOW2_V3_HEADER_LEN_CT 112 /* with compression_type, padded */

/* Feature bits. */
#define QCOW2_INCOMPAT_DIRTY       (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT     (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE   (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2       (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN       0x1full
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)
#define QCOW2_AUTOCLEAR_BITMAPS    (1ull << 0)
#define QCOW2_AUTOCLEAR_DATA_RAW   (1ull << 1)

/* Header extension types. */
#define QCOW2_EXT_END          0x00000000u
#define QCOW2_EXT_BACKING_FMT  0xe2792acau
#define QCOW2_EXT_FEATURES     0x6803f857u
#define QCOW2_EXT_BITMAPS      0x23852875u
/* Bound on the persistent-bitmap directory we read. */
#define QCOW2_MAX_BITMAP_DIR   (64u << 20)
#define QCOW2_EXT_CRYPTO       0x0537be77u
#define QCOW2_EXT_DATA_FILE    0x44415441u

/* L1/L2 entry bits. */
#define QCOW2_OFLAG_COPIED     (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO       (1ull << 0)
#define QCOW2_OFFSET_MASK      0x00fffffffffffe00ull /* bits 9..55 */
#define QCOW2_L1_RESERVED      0x7f000000000001ffull
#define QCOW2_L2_RESERVED      0x3f000000000001feull

/* Bounds on what we accept from an image. */
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_SIZE         (1ull << 62)   /* guest bytes */
#define QCOW2_MAX_L1_BYTES     (32u << 20)    /* as QEMU */
#define QCOW2_MAX_RT_BYTES     (8u << 20)     /* as QEMU */
#define QCOW2_MAX_BACKING_NAME 1023
#define QCOW2_MAX_EXTS_TOTAL   (1u << 20)
#define QCOW2_SUBCLUSTERS      32

enum qcow2_compression { QCOW2_COMP_ZLIB = 0, QCOW2_COMP_ZSTD = 1 };

/* One header extension we do not interpret, kept to write back. */
struct qcow2_ext {
    uint32_t type;
    uint32_t len;
    uint8_t *data;
};

/* One entry of the feature name table. */
struct qcow2_feature_name {
    uint8_t type; /* 0 incompatible, 1 compatible, 2 autoclear */
    uint8_t bit;
    char name[47];
};

/* A write-back cache of table clusters (L2 tables or refcount blocks). */
struct qcow2_cache_entry {
    uint64_t offset; /* 0: free slot */
    uint8_t *buf;
    uint64_t lru;
    int32_t next;    /* hash chain */
    bool dirty;
};

struct qcow2_cache {
    struct qcow2_cache_entry *e;
    int32_t *head;   /* hash buckets: first entry index or -1 */
    uint32_t nbuckets;
    uint32_t n;
    uint32_t table_size; /* bytes per table (cluster size) */
    uint64_t tick;
};

/* What one guest range maps to (see qcow2_get_mapping). */
enum qcow2_map_type {
    QCOW2_MAP_UNALLOCATED, /* ask the backing file */
    QCOW2_MAP_ZERO,        /* reads as zeros */
    QCOW2_MAP_NORMAL,      /* data at host offset */
    QCOW2_MAP_COMPRESSED,  /* whole cluster compressed at host offset */
};

struct qcow2_mapping {
    enum qcow2_map_type type;
    uint64_t host;     /* NORMAL: host offset of the guest offset asked;
                          COMPRESSED: the L2 descriptor */
    uint64_t bytes;    /* length with the same type (contiguous on host) */
    bool host_valid;   /* NORMAL, or ZERO with a preallocated host cluster */
    bool copied;       /* NORMAL: refcount is exactly one (writable in place) */
};

/* Guest clusters [g0, g1) being allocated, their data write in flight. */
struct qcow2_inflight {
    uint64_t g0, g1;
    struct qcow2_inflight *next;
};

struct qcow2_state {
    pthread_mutex_t lock;
    pthread_rwlock_t free_lock;
    struct qcow2_inflight *inflight;  /* under lock */
    pthread_cond_t inflight_done;     /* an entry left the list */

    /* Header. */
    uint32_t version;
    uint32_t cluster_bits;
    uint32_t cluster_size;
    uint64_t size;
    uint32_t l1_size;
    uint64_t l1_offset;
    uint64_t rt_offset;
    uint32_t rt_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t incompat, compat, autoclear;
    uint32_t refcount_order;
    uint32_t header_length;
    uint8_t compression_type;
    uint64_t backing_offset;
    uint32_t backing_size;

    /* Derived. */
    bool extended_l2;
    uint32_t l2_entry_size;   /* 8 or 16 */
    uint32_t l2_bits;         /* log2(entries per L2 table) */
    uint32_t sc_bits;         /* log2(subcluster size) */
    uint32_t rb_bits;         /* log2(refcount entries per block) */
    uint64_t refcount_max;
    uint32_t csize_shift;
    uint64_t csize_mask;
    uint64_t coffset_mask;

    uint64_t *l1;             /* host endian, l1_size entries */
    uint64_t *rt;             /* host endian, rt_size entries */
    uint64_t rt_size;
    uint64_t rt_hi;           /* entries up to the last non-zero one */

    struct qcow2_cache l2_cache;
    struct qcow2_cache rb_cache;

    /* Header extensions. */
    struct qcow2_ext *exts;   /* unknown ones, in file order */
    uint32_t nb_exts;
    struct qcow2_feature_name *fnames;
    uint32_t nb_fnames;
    char *data_file_name;     /* external data file, as recorded */
    struct vdk_node *data;    /* where data clusters live (n->file or own) */
    bool own_data;            /* data is a node we opened */
    bool data_raw;

    /* Allocator. */
    uint64_t free_hint;       /* first cluster index that may be free */
    uint64_t free_byte;       /* compressed packing: next byte, 0: none */
    uint64_t free_byte2;      /* the free tail of an earlier packing
                                 cluster, still usable; 0: none */
    bool writable;
    bool dirty_set;           /* we set the dirty bit (lazy refcounts) */
    bool lazy;                /* lazy refcounts in use */
    bool corrupt;             /* marked corrupt during this session */
    bool repair_open;         /* opened with VDK_O_CHECK_REPAIR */
    uint64_t flen_lb;         /* a length the file had: it only grows while
                                 open, except by our own truncation */
    int8_t meta_prealloc;     /* clusters in use but not in the file:
                                 -1 not yet known, 0 no, 1 yes */

    /* LUKS encryption (qcow2-crypto.c): crypt_method 2 and the 0x0537be77
       extension saying where in the file the LUKS header lives. */
    uint32_t crypt_method;    /* 0 none, 1 AES (refused), 2 LUKS */
    bool has_crypto_ext;
    uint64_t crypto_offset, crypto_length;
    struct vdk_luks *luks;    /* set while an encrypted image is open */
    bool crypto_locked;       /* opened for metadata only: no key */

    /* Persistent dirty bitmaps (qcow2-bitmap.c); NULL: no extension and
       none added.  bm_track: writes have enabled bitmaps to mark. */
    struct qcow2_bitmaps *bitmaps;
    bool bm_track;
    bool bm_store_close;      /* bitmap-store=close: not on flush */
    uint64_t bm_store_ns;     /* bitmap-store-ms, in ns */
};

/* ---- big-endian helpers ---- */
static inline uint16_t q_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t q_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t q_be64(const uint8_t *p) { return (uint64_t)q_be32(p) << 32 | q_be32(p + 4); }
static inline void q_st16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void q_st32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void q_st64(uint8_t *p, uint64_t v) { q_st32(p, (uint32_t)(v >> 32)); q_st32(p + 4, (uint32_t)v); }

/* A standard (not compressed) L2 entry names a host cluster; false for
   compressed entries, see qcow2_entry_owns_host().  Offset 0 is valid in
   an external data file, where COPIED tells it from "unallocated" (spec). */
static inline bool qcow2_std_entry_has_host(const struct qcow2_state *s, uint64_t e)
{
    return !(e & QCOW2_OFLAG_COMPRESSED) &&
           ((e & QCOW2_OFFSET_MASK) ||
            ((s->incompat & QCOW2_INCOMPAT_DATA_FILE) && (e & QCOW2_OFLAG_COPIED)));
}

/* Reserved bits of a standard (uncompressed) L2 entry: bits 1-8 and 56-61,
   and bit 0 (the zero flag) with extended L2 entries (spec) and in v2. */
static inline uint64_t qcow2_l2_reserved(const struct qcow2_state *s)
{
    return QCOW2_L2_RESERVED | (s->extended_l2 || s->version < 3 ? QCOW2_OFLAG_ZERO : 0);
}

static inline uint64_t q_offset_in_cluster(const struct qcow2_state *s, uint64_t o)
{
    return o & (s->cluster_size - 1);
}

/* ---- qcow2.c ---- */
/* Set the corrupt bit (once) and print why; returns -EIO. */
int qcow2_signal_corruption(struct vdk_node *n, const char *fmt, ...) VDK_PRINTF(2, 3);
/* Write the 8-byte incompatible-features field from s->incompat. */
int qcow2_write_incompat(struct vdk_node *n);
/* Before the first metadata change of a lazy-refcount session: set dirty. */
int qcow2_mark_dirty(struct vdk_node *n);
/* Parse the header at open; fills s (used by open and the fuzz target). */
int qcow2_read_header(struct vdk_node *n, struct vdk_error **errp);
/* Whether offset `off` lies inside the image file (n->file).  Asks the
   file only when off is past the last length seen, so table lookups do not
   cost a system call each.  Holds s->lock. */
bool qcow2_in_file(struct vdk_node *n, uint64_t off);
/* Write flags the node supports natively: compression, except for
   encrypted images. */
unsigned qcow2_write_flags(const struct vdk_node *n);

/* ---- qcow2-cache.c ---- */
int qcow2_cache_init(struct qcow2_cache *c, uint32_t entries, uint32_t table_size);
void qcow2_cache_destroy(struct qcow2_cache *c);
/* Table at `offset` (cluster aligned) into the cache; *buf valid until the
   next cache call.  `fill`: read from the file (else zero-filled, new table). */
int qcow2_cache_get(struct vdk_node *n, struct qcow2_cache *c, uint64_t offset,
                    bool fill, uint8_t **buf);
void qcow2_cache_mark_dirty(struct qcow2_cache *c, uint64_t offset);
/* Write every dirty table of c (honouring rule 1 for the L2 cache). */
int qcow2_cache_flush(struct vdk_node *n, struct qcow2_cache *c);
/* Drop an entry (the cluster was freed); its dirty contents are lost. */
void qcow2_cache_discard(struct qcow2_cache *c, uint64_t offset);
/* Write all metadata caches in dependency order. */
int qcow2_flush_metadata(struct vdk_node *n);

/* ---- qcow2-refcount.c ---- */
int qcow2_refcount_init(struct vdk_node *n, struct vdk_error **errp);
int qcow2_get_refcount(struct vdk_node *n, uint64_t cluster, uint64_t *rc);
/* Add delta to the refcount of every cluster in [offset, offset+len). */
/* Whether the image looks preallocated with preallocation=metadata: more
   clusters in use than the file has allocated, by over a ninth, so data
   clusters may be holes in the file.  Holds s->lock. */
bool qcow2_detect_meta_prealloc(struct vdk_node *n);
int qcow2_update_refcount(struct vdk_node *n, uint64_t offset, uint64_t len,
                          int64_t delta);
/* Set the refcount of one cluster (check repair). */
int qcow2_set_refcount(struct vdk_node *n, uint64_t cluster, uint64_t value);
/* Allocate `count` contiguous clusters; returns the host offset or -errno. */
int64_t qcow2_alloc_clusters(struct vdk_node *n, uint64_t count);
/* Allocate `bytes` (< cluster) for compressed data, packing clusters. */
int64_t qcow2_alloc_bytes(struct vdk_node *n, uint64_t bytes);
/* Refcount entry helpers for a block buffer of any width. */
uint64_t qcow2_rb_get(const struct qcow2_state *s, const uint8_t *blk, uint64_t i);
void qcow2_rb_set(const struct qcow2_state *s, uint8_t *blk, uint64_t i, uint64_t v);
/* Return 0, or -EIO (and mark corrupt) if [off, off+len) overlaps metadata
   other than `ignore` (a metadata offset being legitimately rewritten). */
int qcow2_check_overlap(struct vdk_node *n, uint64_t off, uint64_t len);
/* The same for a range about to be freed by an offset the image named
   (a bitmap table entry): 0, or -EIO and the image marked corrupt. */
int qcow2_check_free(struct vdk_node *n, uint64_t off, uint64_t len);
/* Free the clusters of a compressed descriptor / a normal L2 entry. */
int qcow2_free_l2_entry(struct vdk_node *n, uint64_t entry);

/* ---- qcow2-cluster.c ---- */
uint64_t qcow2_l1_index(const struct qcow2_state *s, uint64_t g);
/* L2 entry (and subcluster bitmap) of guest offset g; 0s when none. */
int qcow2_get_l2_entry(struct vdk_node *n, uint64_t g, uint64_t *entry, uint64_t *bitmap);
/* Set the L2 entry of g, making its L2 table writable first. */
int qcow2_set_l2_entry(struct vdk_node *n, uint64_t g, uint64_t e, uint64_t bm);
/* Any entry (normal, preallocated zero or compressed) owns host clusters
   that must be released when it is replaced. */
bool qcow2_entry_owns_host(const struct qcow2_state *s, uint64_t e);
/* Release replaced entries once their replacements are on disk (rule 3). */
int qcow2_free_old_entries(struct vdk_node *n, const uint64_t *old, uint64_t cnt);
/* Host clusters for new data at guest offset g (allocated, or the guest
   offset itself in an external data file). */
int64_t qcow2_alloc_data(struct vdk_node *n, uint64_t g, uint64_t count);
int qcow2_get_mapping(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                      struct qcow2_mapping *m);
/* Read guest [offset, offset+bytes) through the mappings (backing file,
   zeros, compressed clusters); locked: the caller holds s->lock. */
int qcow2_read_range(struct vdk_node *n, uint64_t offset, uint64_t bytes, uint8_t *buf,
                     bool locked);
int qcow2_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *buf,
                unsigned flags);
/* ---- qcow2-write.c ---- */
/* flags: VDK_REQ_COMPRESSED (whole clusters, compressed in the caller's
   thread). */
int qcow2_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                 const void *buf, unsigned flags);
/* ---- qcow2-zero.c ---- */
int qcow2_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                        unsigned flags);
int qcow2_discard(struct vdk_node *n, uint64_t offset, uint64_t bytes);
/* ---- qcow2-cluster.c (continued) ---- */
int qcow2_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                       uint64_t *pnum, uint64_t *map, struct vdk_node **file);
/* Make sure guest cluster index gc has an L2 table; returns its offset. */
int64_t qcow2_get_l2_for_write(struct vdk_node *n, uint64_t guest_off);
/* Number of L1 entries needed for `size` guest bytes. */
uint64_t qcow2_l1_entries(const struct qcow2_state *s, uint64_t size);

/* ---- qcow2-amend.c ---- */
/* Grow the L1 table to hold at least min_size entries (moves it). */
int qcow2_grow_l1(struct vdk_node *n, uint64_t min_size);
/* Allocate (without writing data) every cluster of [from, to): preallocation
   metadata, falloc, full. */
int qcow2_preallocate(struct vdk_node *n, uint64_t from, uint64_t to,
                      enum vdk_prealloc mode);

/* ---- qcow2-create.c ---- */
/* Rewrite the whole header cluster (fields, extensions, backing name). */
int qcow2_write_header(struct vdk_node *n, struct vdk_error **errp);

/* ---- qcow2-deflate.c ---- */
/* A raw-deflate encoder giving zlib's exact output for QEMU's parameters
   (level 6, 4 KiB window, memLevel 9), faster.  One per thread. */
struct qcow2_deflate;
struct qcow2_deflate *qcow2_deflate_new(void);
void qcow2_deflate_free(struct qcow2_deflate *z);
/* Compress src into dst; the size, or -ENOSPC unless it is below dcap
   (zlib's deflate() into dcap bytes returning Z_STREAM_END). */
int64_t qcow2_deflate(struct qcow2_deflate *z, const uint8_t *src, size_t slen,
                      uint8_t *dst, size_t dcap);

/* ---- qcow2-compress.c ---- */
/* Decompress one cluster; 0 or -EIO. */
int qcow2_decompress(uint8_t type, const uint8_t *src, size_t slen, uint8_t *dst,
                     size_t dlen);
/* Compress into dst (capacity dcap); returns size, or -ENOSPC when the data
   would not shrink below dcap.  Thread-safe: each thread keeps its own
   compression context, freed when the thread exits. */
int64_t qcow2_compress(uint8_t type, const uint8_t *src, size_t slen, uint8_t *dst,
                       size_t dcap);

/* ---- driver callbacks defined outside qcow2.c ---- */
/* qcow2-create.c */
extern const struct vdk_opt_desc qcow2_create_opts[];
int qcow2_create_check(const char *filename, struct vdk_opts *opts, struct vdk_error **errp);
int qcow2_create(const char *filename, struct vdk_node *file, struct vdk_opts *opts,
                 struct vdk_error **errp);
int qcow2_measure(struct vdk_opts *opts, struct vdk_node *src, uint64_t size,
                  struct vdk_measure *out, struct vdk_error **errp);
/* qcow2-check.c */
int qcow2_check(struct vdk_node *n, struct vdk_check_result *res, unsigned fix,
                struct vdk_error **errp);
/* qcow2-amend.c */
int qcow2_truncate(struct vdk_node *n, uint64_t size, enum vdk_prealloc prealloc,
                   bool allow_shrink, struct vdk_error **errp);
int qcow2_amend(struct vdk_node *n, struct vdk_opts *opts, struct vdk_error **errp);
int qcow2_change_backing_file(struct vdk_node *n, const char *backing_file,
                              const char *backing_fmt, struct vdk_error **errp);
/* qcow2.c (used by the fuzz target too) */
int qcow2_get_info(struct vdk_node *n, struct vdk_driver_info *info,
                   struct vdk_error **errp);

/* ---- qcow2-rebuild.c: the refcount structures seen by check ----
 * A refcount table entry is usable when it is non-zero, has no reserved
 * bits (0-8), is cluster aligned and names a cluster below nb (the
 * clusters in the file, rounded up). */
bool qcow2_rt_entry_usable(const struct qcow2_state *s, uint64_t e, uint64_t nb);
/* Count the refcount table clusters and every usable block into refs[0..nb)
   (saturating); report each unusable entry on stderr in qemu-img's words
   ("Repairing" when fixing) and return how many there are. */
uint64_t qcow2_count_refcount_structs(struct vdk_node *n, uint32_t *refs, uint64_t nb,
                                      bool fixing);
/* Once every reference is counted: report each usable block and each table
   cluster not referenced exactly once (it is also something else) and
   return how many.  A non-zero count from either asks for a rebuild. */
uint64_t qcow2_check_refcount_overlaps(struct vdk_node *n, const uint32_t *refs,
                                       uint64_t nb);
/* Replace the refcount table and every refcount block with fresh ones.
 * refs[0..nb): every reference counted, including those of the current
 * table and usable blocks as qcow2_count_refcount_structs() counts them;
 * the rebuild takes those back (refs is updated), so the old structures
 * are free clusters in the new image.  Each remaining refs[k] must fit the
 * refcount width, else -ERANGE before any write.  The new structures count
 * themselves and are written past the end of the file, flushed, and only
 * then named by one header write of refcount_table_offset and
 * refcount_table_clusters (flushed again): a crash leaves the old image or
 * the new one.  refcount_order is kept.  Needs s->lock and a writable
 * node; the in-memory table and the refcount cache follow the new
 * structures. */
int qcow2_rebuild_refcounts(struct vdk_node *n, uint32_t *refs, uint64_t nb,
                            struct vdk_error **errp);

/* ---- qcow2-crypto.c: encrypt.format=luks ----
 * Data clusters of an encrypted image hold LUKS payload sectors whose IV
 * sector number is the HOST offset / 512 (in the data file), as QEMU.
 * Requests reach the data path 512-byte aligned (request_alignment). */
struct json_object;
/* The 16-byte extension body (offset, length): 0x0537be77. */
int qcow2_crypto_parse_ext(struct vdk_node *n, const uint8_t *d, uint32_t len,
                           struct vdk_error **errp);
/* Header sanity once the tables are known (crypt_method, extension bounds). */
int qcow2_crypto_check_header(struct vdk_node *n, uint64_t flen, struct vdk_error **errp);
/* Unlock with encrypt.key-secret (metadata-only opens need no key). */
int qcow2_crypto_open(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                      struct vdk_error **errp);
void qcow2_crypto_close(struct qcow2_state *s);
/* Create: 1 if encrypt.* asks for LUKS (validated; *hdr_bytes its header
   size), 0 if not encrypted.  need_secret: the passphrase must exist. */
int qcow2_crypto_create_check(struct vdk_opts *opts, bool need_secret,
                              uint64_t *hdr_bytes, struct vdk_error **errp);
/* Create: allocate the header clusters, format LUKS, rewrite the header. */
int qcow2_crypto_setup(struct vdk_node *n, struct vdk_opts *opts, struct vdk_error **errp);
/* Extension body to write (false: none). */
bool qcow2_crypto_ext(const struct qcow2_state *s, uint8_t out[16]);
/* [off, off+len) overlaps the LUKS header clusters. */
bool qcow2_crypto_overlaps(const struct qcow2_state *s, uint64_t off, uint64_t len);
/* Add qemu's "encrypt" object to the format-specific data. */
int qcow2_crypto_info(struct vdk_node *n, struct json_object *data);
/* amend: apply and remove the encrypt.* keys of opts (keyslots). */
int qcow2_crypto_amend(struct vdk_node *n, struct vdk_opts *opts, struct vdk_error **errp);
/* Hot path: host-offset IV, len a multiple of the sector size. */
int qcow2_crypto_decrypt(struct vdk_node *n, uint64_t host, void *buf, uint64_t len);
int qcow2_crypto_encrypt(struct vdk_node *n, uint64_t host, void *buf, uint64_t len);
/* Encrypt into a bounce buffer and write to the data file at host. */
int qcow2_crypto_pwrite(struct vdk_node *n, uint64_t host, const void *buf, uint64_t len);
/* Block status with QEMU's rule: no host offsets for encrypted images. */
int qcow2_crypto_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                              uint64_t *pnum, uint64_t *map, struct vdk_node **file);

#endif /* VDK_QCOW2_H */
