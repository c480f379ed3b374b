/* SPDX-License-Identifier: MIT */
/*
 * VHD ("vpc" in qemu's naming): fixed, dynamic and differencing images of
 * Microsoft's Virtual Hard Disk format, version 1.0.
 *
 * Layout (all fields big-endian):
 *   fixed:        [ data (size bytes) ][ footer 512 ]
 *   dynamic/diff: [ footer copy 512 ][ dynamic header 1024 ][ BAT ]
 *                 [ parent locator data (diff) ][ blocks ... ][ footer 512 ]
 * A block is a sector bitmap (one bit per 512-byte sector, padded to a
 * sector) followed by block_size bytes of data.  A BAT entry is the
 * block's sector offset in the file, 0xffffffff when unallocated.
 *
 * Files: vhd-footer.c (footer, checksum, geometry, size rules),
 * vhd-dynamic.c (dynamic header, BAT, parent locators), vhd-io.c (read,
 * write, block allocation, block status), vhd-create.c, vhd-check.c,
 * vhd.c (driver table, open, info).
 */
#ifndef VDK_FORMATS_VHD_H
#define VDK_FORMATS_VHD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "block/driver.h"

#define VHD_SECTOR          512u
#define VHD_FOOTER_SIZE     512u
#define VHD_DYN_HEADER_SIZE 1024u
#define VHD_BAT_UNUSED      0xffffffffu

/* Largest disk the format addresses: 0xff000000 sectors = 2040 GiB. */
#define VHD_MAX_SECTORS     0xff000000ull
#define VHD_MAX_SIZE        (VHD_MAX_SECTORS * VHD_SECTOR)
/* CHS geometry at its maximum (65535/16/255): size then comes from the
   footer's current_size whatever the creator. */
#define VHD_CHS_MAX_C       65535u
#define VHD_CHS_MAX_H       16u
#define VHD_CHS_MAX_S       255u
#define VHD_CHS_MAX_SECTORS (65535ull * 16 * 255)

/* Bounds on dynamic-header fields read from an image: block sizes of
   512 B .. 256 MiB (real images use 512 KiB or 2 MiB), and a BAT we keep
   in memory of at most 2^26 entries (256 MiB). */
#define VHD_MIN_BLOCK_SIZE  512u
#define VHD_MAX_BLOCK_SIZE  (256u << 20)
#define VHD_MAX_BAT_ENTRIES (1u << 26)
/* Parent locator data: a path, bounded at 16 KiB of UTF-16/UTF-8. */
#define VHD_MAX_LOCATOR_LEN (16u * 1024)
#define VHD_LOCATORS        8

/* Footer disk types. */
enum { VHD_TYPE_FIXED = 2, VHD_TYPE_DYNAMIC = 3, VHD_TYPE_DIFF = 4 };

/* Parent locator platform codes. */
#define VHD_PLAT_W2KU 0x57326b75u /* "W2ku": absolute UTF-16LE path */
#define VHD_PLAT_W2RU 0x57327275u /* "W2ru": relative UTF-16LE path */
#define VHD_PLAT_MACX 0x4d616358u /* "MacX": file:// URL, UTF-8 */

/* Seconds between the Unix epoch and the VHD epoch (2000-01-01 UTC). */
#define VHD_EPOCH_OFFSET 946684800u

struct vhd_footer {
    uint32_t features;
    uint32_t version;
    uint64_t data_offset;   /* dynamic header offset, ~0 for fixed */
    uint32_t timestamp;
    uint8_t creator_app[4];
    uint32_t creator_version;
    uint32_t creator_os;
    uint64_t orig_size;
    uint64_t cur_size;
    uint16_t cyls;
    uint8_t heads, spt;
    uint32_t type;
    uint32_t checksum;
    uint8_t uuid[16];
    uint8_t saved_state;
};

struct vhd_locator {
    uint32_t code;
    uint32_t space;
    uint32_t len;
    uint64_t offset;
};

struct vhd_dyn_header {
    uint64_t data_offset;
    uint64_t table_offset;
    uint32_t version;
    uint32_t max_entries;
    uint32_t block_size;
    uint32_t checksum;
    uint8_t parent_uuid[16];
    uint32_t parent_timestamp;
    uint8_t parent_name[512];  /* UTF-16BE as stored */
    struct vhd_locator loc[VHD_LOCATORS];
};

/* How the virtual size is taken from the footer (open option
   force_size_calc, as qemu's). */
enum vhd_size_calc { VHD_SIZE_AUTO, VHD_SIZE_CHS, VHD_SIZE_CURRENT };

struct vhd_state {
    /* Guards bat[], alloc_off, footer_off and bitmap updates. */
    pthread_mutex_t lock;
    bool lock_init;

    struct vhd_footer footer;
    uint8_t footer_raw[VHD_FOOTER_SIZE]; /* as written at the end */
    bool footer_from_copy;   /* the end footer was damaged; copy at 0 used */
    bool copy_differs;       /* both footers parse but differ (dynamic and
                                differencing): read-only opens only */
    uint64_t file_len;       /* length of the file at open / last alloc */

    /* dynamic and differencing */
    struct vhd_dyn_header hdr;
    uint32_t *bat;           /* host order, bat_entries of them */
    uint32_t bat_entries;    /* entries covering the virtual size */
    uint32_t block_size;
    uint32_t bitmap_size;    /* bytes, multiple of 512 */
    uint64_t alloc_off;      /* where the next block goes; the end footer
                                lives here */
    uint64_t used_end;       /* end of metadata and referenced blocks */
    uint64_t meta_end;       /* end of the header, BAT and locator data */
    uint32_t meta_blocks;    /* BAT entries whose block overlaps metadata
                                (read, never written; check reports them) */
    uint32_t bat_dirty_lo;   /* BAT entries [lo, hi) not yet written to */
    uint32_t bat_dirty_hi;   /* the file (written back on flush/close) */

    /* differencing */
    char *parent_path;       /* as resolved from the locators */
    uint8_t *bm_full;        /* bit per block: sector bitmap known all-ones */
};

static inline uint64_t vhd_max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* ---- vhd-footer.c ---- */
uint16_t vhd_be16(const uint8_t *p);
uint32_t vhd_be32(const uint8_t *p);
uint64_t vhd_be64(const uint8_t *p);
void vhd_put_be16(uint8_t *p, uint16_t v);
void vhd_put_be32(uint8_t *p, uint32_t v);
void vhd_put_be64(uint8_t *p, uint64_t v);

/* One's complement of the byte sum of buf[0..len) with the 4 bytes at
   csum_off counted as zero. */
uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t csum_off);

/* Parse a footer: 0 when the cookie and checksum hold; -EINVAL with a
   message naming which one failed. */
int vhd_footer_parse(const uint8_t buf[VHD_FOOTER_SIZE], struct vhd_footer *f,
                     struct vdk_error **errp);
/* Serialise f, computing the checksum (stored back into f). */
void vhd_footer_build(struct vhd_footer *f, uint8_t buf[VHD_FOOTER_SIZE]);

/*
 * CHS geometry for a sector count (the VHD specification's algorithm),
 * and qemu's create-time rounding: the smallest geometry whose size is at
 * least `sectors`.  vhd_geometry_round returns the rounded sector count
 * (cyls*heads*spt, or `sectors` itself when the geometry is at its
 * maximum).
 */
void vhd_geometry(uint64_t sectors, uint16_t *cyls, uint8_t *heads, uint8_t *spt);
uint64_t vhd_geometry_round(uint64_t sectors, uint16_t *cyls, uint8_t *heads,
                            uint8_t *spt);

/* The virtual size a reader sees for this footer (qemu's rules). */
uint64_t vhd_footer_virtual_size(const struct vhd_footer *f, enum vhd_size_calc calc);

/* 16 random bytes as a version-4 UUID; 0 or -errno. */
int vhd_uuid_generate(uint8_t uuid[16]);
/* "xxxxxxxx-xxxx-...", buf of 37 bytes. */
void vhd_uuid_format(const uint8_t uuid[16], char buf[37]);
/* Seconds since 2000-01-01 UTC, now. */
uint32_t vhd_timestamp_now(void);

/* "fixed", "dynamic", "differencing" or "unknown". */
const char *vhd_type_name(uint32_t type);

/* ---- vhd-dynamic.c ---- */
int vhd_dyn_header_parse(const uint8_t buf[VHD_DYN_HEADER_SIZE],
                         struct vhd_dyn_header *h, struct vdk_error **errp);
void vhd_dyn_header_build(struct vhd_dyn_header *h, uint8_t buf[VHD_DYN_HEADER_SIZE]);

/*
 * Read and validate the dynamic header and BAT of an open image whose
 * footer is in s->footer and virtual size in n->size.  Fills s->hdr,
 * s->bat, s->block_size, s->bitmap_size, s->alloc_off.
 */
int vhd_dynamic_open(struct vdk_node *n, struct vhd_state *s, struct vdk_error **errp);

/* Whether the block of BAT entry e overlaps the footer copy, dynamic
   header, BAT or parent locator data. */
bool vhd_block_over_meta(const struct vhd_state *s, uint32_t e);

/*
 * Resolve the parent of a differencing image from its locators (W2ru,
 * W2ku, MacX, then the parent name), relative to the child.  Sets
 * *path (caller frees) to the first candidate that exists, or to the
 * first candidate when none does.  -ENOENT with a message when the image
 * records no usable parent name.
 */
int vhd_parent_resolve(struct vdk_node *n, struct vhd_state *s, char **path,
                       struct vdk_error **errp);

/* Read a VHD footer (end, else the copy at 0) of an open protocol node. */
int vhd_read_footer(struct vdk_node *file, struct vhd_footer *f, uint8_t raw[VHD_FOOTER_SIZE],
                    bool *from_copy, struct vdk_error **errp);

/* UTF-16 (le or be) to UTF-8; at most in_len bytes, stops at NUL.  NULL on
   bad input or allocation failure. */
char *vhd_utf16_to_utf8(const uint8_t *in, size_t in_len, bool big_endian);
/* UTF-8 to UTF-16 into out (cap bytes); returns bytes written or -1. */
long vhd_utf8_to_utf16(const char *in, uint8_t *out, size_t cap, bool big_endian);

/* ---- vhd-io.c ---- */
int vhd_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *buf,
              unsigned flags);
int vhd_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes, const void *buf,
               unsigned flags);
int vhd_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                      unsigned flags);
/* Fixed: passed to the file; dynamic: zeroes with unmap; else -ENOTSUP. */
int vhd_discard(struct vdk_node *n, uint64_t offset, uint64_t bytes);
/* Write back BAT entries of new blocks once their data is durable:
   flush the file, then write the entries.  0 or -errno. */
int vhd_flush(struct vdk_node *n);
/* Unallocate every block (commit): BAT cleared, file cut after the
   metadata.  Differencing images only. */
int vhd_make_empty(struct vdk_node *n, struct vdk_error **errp);
int vhd_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                     uint64_t *pnum, uint64_t *map, struct vdk_node **file);

/* ---- vhd-create.c ---- */
extern const struct vdk_opt_desc vhd_create_opts[];
int vhd_create_check(const char *filename, struct vdk_opts *opts, struct vdk_error **errp);
int vhd_create(const char *filename, struct vdk_node *file, struct vdk_opts *opts,
               struct vdk_error **errp);
/* Bytes a new image needs: metadata + footer, plus for dynamic images one
   block (bitmap + 2 MiB) per 2 MiB of src holding non-zero data. */
int vhd_measure(struct vdk_opts *opts, struct vdk_node *src, uint64_t size,
                struct vdk_measure *out, struct vdk_error **errp);

/* Record another VHD parent in a differencing image (rebase). */
int vhd_change_backing_file(struct vdk_node *n, const char *backing, const char *fmt,
                            struct vdk_error **errp);

/* ---- vhd-check.c ---- */
int vhd_check(struct vdk_node *n, struct vdk_check_result *res, unsigned fix,
              struct vdk_error **errp);

#endif /* VDK_FORMATS_VHD_H */
