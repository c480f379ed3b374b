/* SPDX-License-Identifier: MIT */
/*
 * VMDK: VMware virtual disks as described by VMware's "Virtual Disk Format
 * 1.1" and 5.0 technical notes, with qemu-img 7.2's option names.
 *
 * An image is a text descriptor plus one or more extents:
 *   monolithicSparse, streamOptimized: one hosted sparse extent (KDMV)
 *     with the descriptor embedded at header.desc_offset;
 *   monolithicFlat, twoGbMaxExtentFlat, twoGbMaxExtentSparse, vmfs,
 *     vmfsSparse, seSparse: a standalone descriptor naming extent files
 *     relative to its own folder.
 *
 * Hosted sparse extent (all fields little-endian, offsets in sectors):
 *   [ header 512 ][ descriptor ][ redundant GD ][ its GTs ][ GD ][ GTs ]
 *   [ grains ... ]
 * The grain directory (GD) holds the sector offset of each grain table
 * (GT); a GT holds num_gtes_per_gt grain entries (GTE): 0 unallocated,
 * 1 a zeroed grain (header flag VMDK4_FLAG_ZERO_GRAIN), else the sector
 * of the grain.  Compressed extents (streamOptimized) store each grain as
 * a marker { u64 lba; u32 size } and `size` bytes of zlib data, padded to
 * a sector; with gd_offset == VMDK4_GD_AT_END the real header is the
 * footer at the end of the file:
 *   [ footer marker ][ footer (header copy) ][ end-of-stream marker ]
 *
 * Write ordering (crash safety): a new grain's data is written first; its
 * GT entries (and the redundant GT's) are kept in memory and written on
 * the next flush after the file was flushed; a GT allocated for a GD
 * entry of 0 is written before the GD entries that point at it, again
 * after a flush.  A crash thus leaks grains, never points at garbage.
 *
 * Files: vmdk-desc.c (descriptor parse/build), vmdk-sparse.c (KDMV and
 * COWD headers, GD/GT tables, footer), vmdk-sesparse.c (seSparse,
 * read-only), vmdk-io.c (read, write, status,
 * flush), vmdk-stream.c (compressed grains, markers, stream writer),
 * vmdk-create.c (create, measure), vmdk-check.c, vmdk.c (open, info,
 * driver table).
 */
#ifndef VDK_FORMATS_VMDK_H
#define VDK_FORMATS_VMDK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "block/driver.h"

#define VMDK_SECTOR        512u
#define VMDK4_MAGIC        0x564d444bu /* "KDMV" */
#define VMDK3_MAGIC        0x44574f43u /* "COWD" */
#define VMDK4_GD_AT_END    0xffffffffffffffffull

#define VMDK4_FLAG_NL_DETECT  (1u << 0)
#define VMDK4_FLAG_RGD        (1u << 1)
#define VMDK4_FLAG_ZERO_GRAIN (1u << 2)
#define VMDK4_FLAG_COMPRESS   (1u << 16)
#define VMDK4_FLAG_MARKER     (1u << 17)
#define VMDK4_COMPRESS_DEFLATE 1u

#define VMDK_GTE_ZEROED    1u

/* Stream marker types (val == 0 markers; a grain marker has size != 0). */
enum { VMDK_MARKER_EOS = 0, VMDK_MARKER_GT = 1, VMDK_MARKER_GD = 2,
       VMDK_MARKER_FOOTER = 3 };

/* ---- bounds on what an image may claim ---- */
/* Standalone descriptor file, embedded descriptor area, one line. */
#define VMDK_MAX_DESC_SIZE   (1u << 20)
#define VMDK_MAX_DESC_LINE   4096u
#define VMDK_MAX_EXTENTS     4096u
/* Capacity of the whole disk: 64 TiB (VMFS's limit is 62 TB). */
#define VMDK_MAX_SECTORS     (1ull << 37)
/* Grains of 1 .. 2048 sectors (1 MiB; VMware uses 128); qemu refuses GTs
   of more than 512 entries. */
#define VMDK_MAX_GRAIN_SECTORS 2048u
#define VMDK_MAX_GTES_PER_GT   512u
/* Grain tables kept in memory at once before the cache is emptied. */
#define VMDK_GT_CACHE_BYTES  (64u << 20)
/* A compressed grain never holds more than this (zlib's worst case for
   a 1 MiB grain is well below). */
#define VMDK_MAX_CGRAIN(grain) ((grain) + ((grain) >> 3) + 4096u)

/* qemu-img create: hosted sparse extents of twoGbMaxExtent* hold 2 GiB. */
#define VMDK_SPLIT_EXTENT_BYTES (2ull << 30)
#define VMDK_DEFAULT_GRAIN    128u
#define VMDK_DEFAULT_GTES     512u
#define VMDK_DESC_SECTORS     20u

/* ---- descriptor ---- */

enum vmdk_access { VMDK_ACC_RW, VMDK_ACC_RDONLY, VMDK_ACC_NOACCESS };
enum vmdk_ext_type {
    VMDK_EXT_FLAT, VMDK_EXT_SPARSE, VMDK_EXT_ZERO, VMDK_EXT_VMFS,
    VMDK_EXT_VMFSSPARSE, VMDK_EXT_SESPARSE,
};

struct vmdk_desc_extent {
    enum vmdk_access access;
    uint64_t sectors;
    enum vmdk_ext_type type;
    char *file;           /* NULL for ZERO */
    uint64_t offset;      /* FLAT/VMFS: sectors into the file */
};

struct vmdk_desc {
    int version;
    uint32_t cid, parent_cid;
    char *create_type;
    char *parent_hint;    /* parentFileNameHint, or NULL */
    struct vmdk_desc_extent *ext;
    size_t n_ext;
    /* ddb.* keys in order, values unquoted. */
    char **ddb_keys, **ddb_vals;
    size_t n_ddb;
};

/* ---- open state ---- */

struct vmdk_extent {
    enum vmdk_ext_type type;
    enum vmdk_access access;
    struct vdk_node *file;  /* owned reference (n->file is referenced too) */
    char *filename;         /* as opened (for info and messages) */
    const char *desc_type;  /* "SPARSE", "FLAT", ... or "" (embedded) */
    uint64_t start;         /* first guest byte */
    uint64_t length;        /* bytes */
    uint64_t flat_offset;   /* FLAT/VMFS: bytes into the file */

    /* sparse (KDMV / COWD) */
    bool cowd;
    uint32_t version, flags;
    uint16_t compress_algo;
    bool compressed, has_marker, zeroed_grain;
    uint64_t grain;         /* bytes */
    uint32_t gtes;          /* entries per GT */
    uint32_t gd_entries;
    uint64_t gd_off, rgd_off; /* bytes; rgd_off 0: none */
    uint64_t overhead;      /* bytes: first grain offset */
    uint64_t file_len;      /* bytes, at open and after each allocation */
    uint64_t next_alloc;    /* where the next grain goes (bytes) */
    uint32_t *gd, *rgd;     /* host order */
    uint32_t **gt;          /* per GD entry: cached GT or NULL */
    uint8_t *gt_dirty;      /* per GD entry: GT has unwritten entries */
    uint8_t *gd_dirty;      /* per GD entry: GD entry unwritten */
    bool any_dirty;
    size_t gt_cached;       /* bytes of GTs in the cache */
    uint64_t desc_off, desc_size; /* embedded descriptor, bytes */
    uint8_t header[VMDK_SECTOR]; /* KDMV header as read (for writes) */

    /* seSparse (read-only; vmdk-sesparse.c): byte offsets of the grain
       table and grain areas and how many of each they hold */
    bool sesparse;
    uint64_t se_gt_off, se_gt_count, se_grain_off, se_grain_count;
    uint64_t *se_gd;        /* per GD entry, host order */
    uint64_t **se_gt;       /* per GD entry: cached GT or NULL */

    /* A finished stream image (GD_AT_END) taking writes: new grains and
       tables go where the footer was, the footer and EOS after them. */
    bool footer;

    /* stream writer (streamOptimized created by us, empty so far) */
    bool stream;
    bool stream_tail;       /* metadata tail written after stream_end */
    uint64_t stream_end;    /* end of the last grain */
};

struct vmdk_state {
    pthread_mutex_t lock;   /* guards every extent's tables */
    bool lock_init;
    struct vmdk_desc desc;
    char *desc_text;        /* the descriptor as read */
    bool embedded;          /* descriptor inside the (only) sparse extent */
    struct vmdk_extent *ext;
    size_t n_ext;
    bool read_only_ext;     /* an extent is RDONLY/NOACCESS or seSparse */
};

/* ---- little-endian helpers ---- */
static inline uint16_t vmdk_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t vmdk_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t vmdk_le64(const uint8_t *p)
{
    return (uint64_t)vmdk_le32(p) | (uint64_t)vmdk_le32(p + 4) << 32;
}
static inline void vmdk_put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void vmdk_put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void vmdk_put_le64(uint8_t *p, uint64_t v)
{
    vmdk_put_le32(p, (uint32_t)v);
    vmdk_put_le32(p + 4, (uint32_t)(v >> 32));
}

/* ---- vmdk-desc.c ---- */
/*
 * Parse descriptor text (len bytes, need not be NUL-terminated; NULs end
 * it).  Bounds: VMDK_MAX_DESC_SIZE bytes, VMDK_MAX_DESC_LINE per line,
 * VMDK_MAX_EXTENTS extents, extent sizes within VMDK_MAX_SECTORS in sum.
 * `embedded`: inside a sparse file (no extent files opened from it).
 */
int vmdk_desc_parse(const char *text, size_t len, struct vmdk_desc *d,
                    struct vdk_error **errp);
void vmdk_desc_free(struct vmdk_desc *d);
/* The value of ddb key `key` (e.g. "ddb.adapterType"), or NULL. */
const char *vmdk_desc_ddb(const struct vmdk_desc *d, const char *key);
const char *vmdk_ext_type_name(enum vmdk_ext_type t);
/* True when buf looks like a text descriptor (qemu's probe rule). */
bool vmdk_desc_probe(const uint8_t *buf, size_t len);

/* qemu-img's descriptor for a new image.  Caller frees. */
struct vmdk_desc_build {
    uint32_t cid, parent_cid;
    const char *create_type;
    const char *parent_hint;   /* NULL: none */
    const char *extents;       /* extent lines, each ending in \n */
    const char *hwversion;
    uint64_t cylinders;
    unsigned heads;
    const char *adapter;
    const char *toolsversion;
};
char *vmdk_desc_build(const struct vmdk_desc_build *b);
/* Replace the value of one "key=value" line (CID, parentCID,
   parentFileNameHint, or add the latter).  Caller frees. */
char *vmdk_desc_set(const char *text, const char *key, const char *value);

/* ---- vmdk-sparse.c ---- */
/* Read the header and tables of a sparse extent (KDMV or COWD) of
   e->file; checks every offset and count against the file's length. */
int vmdk_sparse_open(struct vmdk_extent *e, bool writable, struct vdk_error **errp);
/* Parse a 512-byte KDMV header into e (no table reads): 0 or -EINVAL. */
int vmdk_header_parse(const uint8_t *buf, uint64_t file_len, struct vmdk_extent *e,
                      struct vdk_error **errp);
/* Build a KDMV header. */
struct vmdk_hdr_params {
    uint32_t version, flags;
    uint64_t capacity, grain, desc_off, desc_size;
    uint32_t gtes;
    uint64_t rgd_off, gd_off, overhead;
    uint16_t compress;
};
void vmdk_header_build(uint8_t buf[VMDK_SECTOR], const struct vmdk_hdr_params *p);
void vmdk_sparse_free(struct vmdk_extent *e);
/*
 * GTE for grain `g` of the extent (lock held): 0 / VMDK_GTE_ZEROED /
 * sector; loads the GT on demand.  -errno on I/O errors or a GTE past
 * the end of the file.
 */
int vmdk_gte_get(struct vmdk_extent *e, uint64_t g, uint32_t *gte);
/*
 * Whether an allocated GTE of an uncompressed extent puts its grain over
 * the header, descriptor or tables, below the first grain's offset.  Such
 * a grain reads as those bytes (as in qemu) and is never written (writing
 * would overwrite them); check reports it.
 */
static inline bool vmdk_grain_over_meta(const struct vmdk_extent *e, uint32_t gte)
{
    return !e->cowd && !e->compressed && (uint64_t)gte * VMDK_SECTOR < e->overhead;
}
/* Set GTE (lock held), marking it for write-back; may allocate a GT. */
int vmdk_gte_set(struct vmdk_extent *e, uint64_t g, uint32_t gte);
/* Write dirty GTs, then (after a flush of the file) dirty GD entries.
   Caller flushed the grains first.  Lock held. */
int vmdk_tables_write(struct vmdk_extent *e);
/* Unallocate every grain (commit): tables zeroed and flushed, then the
   file cut after the metadata.  Lock held. */
int vmdk_sparse_make_empty(struct vmdk_extent *e);

/* ---- vmdk-stream.c ---- */
/* A buffer of at least size bytes owned by the calling thread, kept for
   its next call: which = 0 a whole grain, 1 vmdk_cgrain_read's input,
   2 a compressed grain being built. */
uint8_t *vmdk_thread_buf(int which, size_t size);
/* Read grain g of a compressed extent at sector `sec` into out (e->grain
   bytes).  Checks the marker's lba and size against the file. */
int vmdk_cgrain_read(struct vmdk_extent *e, uint64_t g, uint64_t sec, uint8_t *out);
/* Compress grain (e->grain bytes) into out, a marker first when
   e->has_marker; returns bytes to write (sector padded) or -errno. */
long vmdk_cgrain_build(const struct vmdk_extent *e, uint64_t g, const uint8_t *grain,
                       uint8_t *out, size_t cap);
/* A marker sector: val = sectors, type (GT, GD, FOOTER, EOS). */
void vmdk_marker_build(uint8_t m[VMDK_SECTOR], uint64_t sectors, uint32_t type);
/* Footer images (e->footer): write the footer marker, the footer
   (e->header) and the EOS marker at e->next_alloc, the file's new end. */
int vmdk_footer_move(struct vmdk_extent *e);
/* Stream images: read the footer of a GD_AT_END extent into buf. */
int vmdk_footer_read(struct vdk_node *file, uint64_t file_len, uint8_t buf[VMDK_SECTOR],
                     struct vdk_error **errp);
/* Write the stream's metadata tail (GTs, GD, footer, EOS) after the
   last grain (lock held).  Idempotent: rewritten after more grains. */
int vmdk_stream_finish(struct vmdk_extent *e, uint64_t capacity_sectors);

/* ---- vmdk-sesparse.c ---- */
/* Open the seSparse extent e->file: both headers checked as qemu checks
   them, every area bounded, the grain directory read. */
int vmdk_se_open(struct vmdk_extent *e, struct vdk_error **errp);
void vmdk_se_free(struct vmdk_extent *e);
/* States of a grain (vmdk_grain_find, vmdk_se_grain_find). */
enum { VMDK_G_UNALLOC = 0, VMDK_G_ZERO = 1, VMDK_G_DATA = 2 };
/* Grain g of a seSparse extent (lock held): a VMDK_G_* state, *sector
   the grain's first sector for VMDK_G_DATA; -EINVAL for a malformed
   entry, -ERANGE for a table or grain past the end of the file. */
int vmdk_se_grain_find(struct vmdk_extent *e, uint64_t g, uint64_t *sector);

/* ---- vmdk-io.c ---- */
/* Grain g of a sparse or seSparse extent (lock held), as
   vmdk_se_grain_find answers; for a compressed extent *sector is that of
   the grain's marker. */
int vmdk_grain_find(struct vmdk_extent *e, uint64_t g, uint64_t *sector);
int vmdk_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *buf,
               unsigned flags);
int vmdk_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes, const void *buf,
                unsigned flags);
int vmdk_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                       unsigned flags);
int vmdk_flush(struct vdk_node *n);
int vmdk_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                      uint64_t *pnum, uint64_t *map, struct vdk_node **file);
/* The extent holding guest byte `offset`. */
struct vmdk_extent *vmdk_find_extent(struct vmdk_state *s, uint64_t offset);

/* ---- vmdk-create.c ---- */
extern const struct vdk_opt_desc vmdk_create_opts[];
int vmdk_create(const char *filename, struct vdk_node *file, struct vdk_opts *opts,
                struct vdk_error **errp);
int vmdk_measure(struct vdk_opts *opts, struct vdk_node *src, uint64_t size,
                 struct vdk_measure *out, struct vdk_error **errp);
int vmdk_change_backing_file(struct vdk_node *n, const char *backing, const char *fmt,
                             struct vdk_error **errp);
/* A random CID as qemu makes them. */
uint32_t vmdk_new_cid(void);

/* ---- vmdk-check.c ---- */
int vmdk_check(struct vdk_node *n, struct vdk_check_result *res, unsigned fix,
               struct vdk_error **errp);

#endif /* VDK_FORMATS_VMDK_H */
