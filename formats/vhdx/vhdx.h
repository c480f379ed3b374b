/* SPDX-License-Identifier: MIT */
/*
 * VHDX (Microsoft's [MS-VHDX] 1.0): dynamic, fixed and differencing images,
 * 512 and 4096-byte logical sectors, with the metadata log.
 *
 * Layout (little-endian, GUIDs in Microsoft's mixed-endian order):
 *   0       file identifier "vhdxfile" + creator (UTF-16LE)
 *   64 KiB  header 1, 128 KiB header 2 (4 KiB each, CRC-32C, sequence
 *           number: the valid one with the higher number is current)
 *   192 KiB region table 1, 256 KiB region table 2 (64 KiB, CRC-32C):
 *           where the BAT and the metadata region are
 *   log     at the header's log_offset (circular, 4 KiB sectors)
 *   BAT     u64 entries: state in bits 0-2, file offset in MiB from bit
 *           20; after every chunk_ratio payload entries one sector-bitmap
 *           entry (chunk_ratio = 2^23 * logical_sector_size / block_size)
 *   metadata table (64 KiB) + items: file parameters, virtual disk size,
 *           page 83 data, logical and physical sector size, parent locator
 *   blocks  1 MiB aligned
 *
 * Every metadata change vdk makes (BAT entries, after the data they point
 * at is flushed) is written to the log first, flushed, then applied in
 * place and flushed, so a crash at any point replays to a consistent
 * image.  A log left by a crash is replayed by a read-write open; a
 * read-only open replays it in memory only and never writes the file.
 *
 * Files: vhdx-header.c (CRC-32C, GUIDs, file identifier, headers, region
 * table), vhdx-metadata.c (metadata table and items, parent locator),
 * vhdx-log.c (log reading, replay, writing), vhdx-io.c (reads, writes,
 * allocation, block status), vhdx-create.c, vhdx-check.c, vhdx-chain.c
 * (rebase, commit's emptying), vhdx.c (open, close, info, driver table).
 */
#ifndef VDK_FORMATS_VHDX_H
#define VDK_FORMATS_VHDX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "block/driver.h"

#define VHDX_MiB            (1ull << 20)
#define VHDX_HEADER1_OFF    (64u << 10)
#define VHDX_HEADER2_OFF    (128u << 10)
#define VHDX_HEADER_SIZE    4096u
#define VHDX_RT1_OFF        (192u << 10)
#define VHDX_RT2_OFF        (256u << 10)
#define VHDX_RT_SIZE        (64u << 10)
#define VHDX_RT_MAX_ENTRIES 2047u
#define VHDX_META_TABLE_SIZE (64u << 10)
#define VHDX_META_MAX_ENTRIES 2047u
#define VHDX_LOG_SECTOR     4096u
#define VHDX_MAX_SIZE       (64ull << 40)   /* 64 TiB */
#define VHDX_MIN_BLOCK      VHDX_MiB
#define VHDX_MAX_BLOCK      (256u << 20)
/* Largest log vdk reads for replay (the whole log is scanned in memory). */
#define VHDX_MAX_LOG        (256u << 20)
/* A parent locator item, bounded well above any real path set. */
#define VHDX_MAX_LOCATOR    (64u << 10)

/* BAT entry states */
enum {
    VHDX_BLK_NOT_PRESENT = 0,
    VHDX_BLK_UNDEFINED = 1,
    VHDX_BLK_ZERO = 2,
    VHDX_BLK_UNMAPPED = 3,
    VHDX_BLK_UNMAPPED_V095 = 5, /* unmapped in the 0.95 draft: read as zeros,
                                   as qemu reads it */
    VHDX_BLK_FULLY_PRESENT = 6,
    VHDX_BLK_PARTIALLY_PRESENT = 7,
    VHDX_SB_PRESENT = 6,
};
#define VHDX_BAT_STATE(e)  ((unsigned)((e) & 7))
#define VHDX_BAT_OFFSET(e) ((e) & ~(uint64_t)(VHDX_MiB - 1))

/* Known GUIDs (bytes as stored). */
extern const uint8_t vhdx_guid_bat[16];
extern const uint8_t vhdx_guid_metadata[16];
extern const uint8_t vhdx_guid_file_params[16];
extern const uint8_t vhdx_guid_disk_size[16];
extern const uint8_t vhdx_guid_page83[16];
extern const uint8_t vhdx_guid_lss[16];
extern const uint8_t vhdx_guid_pss[16];
extern const uint8_t vhdx_guid_parent_locator[16];
extern const uint8_t vhdx_guid_locator_type[16];

struct vhdx_header {
    uint32_t checksum;
    uint64_t seq;
    uint8_t file_write_guid[16];
    uint8_t data_write_guid[16];
    uint8_t log_guid[16];
    uint16_t log_version;
    uint16_t version;
    uint32_t log_length;
    uint64_t log_offset;
};

struct vhdx_region {
    uint64_t offset;
    uint32_t length;
};

/* A sector the log replaced, for read-only opens (replay in memory). */
struct vhdx_overlay {
    uint64_t off;             /* 4 KiB aligned file offset */
    uint64_t len;             /* 4096 with data; any multiple for zeros */
    uint8_t *data;            /* 4096 bytes, NULL: zeros */
};

struct vhdx_parent {
    char *linkage;            /* "{guid}" */
    char *linkage2;
    char *relative_path;      /* as stored (UTF-8) */
    char *absolute_path;      /* absolute_win32_path */
    char *volume_path;
};

struct vhdx_state {
    pthread_mutex_t lock;     /* guards bat[], file_end, the dirty set, log */
    bool lock_init;
    struct vhdx_header hdr;   /* current */
    int cur_hdr;              /* 0 or 1: slot of the current header */
    struct vhdx_region bat_region, meta_region;

    /* metadata */
    uint32_t block_size;
    bool leave_blocks_allocated;
    bool has_parent;
    uint64_t disk_size;
    uint32_t lss, pss;
    uint8_t page83[16];
    struct vhdx_parent parent;

    /* BAT */
    uint64_t chunk_ratio;
    uint64_t payload_blocks;
    uint64_t bitmap_blocks;
    uint64_t bat_entries;
    uint64_t *bat;            /* host order */
    uint8_t *bat_dirty;       /* one flag per 4 KiB sector of the BAT */
    bool any_dirty;

    /* allocation */
    uint64_t file_end;        /* where the next block goes (MiB aligned) */
    bool data_guid_done;      /* data_write_guid renewed for this open */
    bool rw;

    /* log */
    uint64_t log_seq;         /* next sequence number */
    uint32_t log_head;        /* next entry offset inside the log */
    bool log_active;          /* header log_guid set by us */
    struct vhdx_overlay *ovl; /* read-only replay */
    size_t n_ovl;
    bool replayed;            /* a log was replayed at open */
};

/* ---- vhdx-header.c ---- */
uint32_t vhdx_crc32c(uint32_t crc, const void *buf, size_t len);
/* CRC-32C of buf with the 4 bytes at csum_off taken as zero. */
uint32_t vhdx_checksum(const uint8_t *buf, size_t len, size_t csum_off);
void vhdx_guid_to_str(const uint8_t g[16], char buf[39]); /* "{...}" upper? no: lower */
int vhdx_guid_from_str(const char *s, uint8_t g[16]);
int vhdx_header_parse(const uint8_t *buf, struct vhdx_header *h);
void vhdx_header_build(const struct vhdx_header *h, uint8_t buf[VHDX_HEADER_SIZE]);
/* Read both headers and pick the current one; validates the log fields. */
int vhdx_headers_read(struct vdk_node *n, struct vhdx_state *s, uint64_t file_len,
                      struct vdk_error **errp);
/* Write a new header (seq+1) into the other slot and flush; it becomes
   current.  0 or -errno. */
int vhdx_header_update(struct vdk_node *n, struct vhdx_state *s);
/* Read and validate the region table (first valid copy). */
int vhdx_regions_read(struct vdk_node *n, struct vhdx_state *s, uint64_t file_len,
                      struct vdk_error **errp);
/* Reads of the file, through the in-memory log overlay if any. */
int vhdx_file_read(struct vdk_node *n, uint64_t off, uint64_t len, void *buf);

/* ---- vhdx.c ---- */
/* The data write GUID in the current header of the VHDX file at path
   (what a differencing child's parent linkage names). */
int vhdx_read_data_guid(const char *path, uint8_t guid[16], struct vdk_error **errp);

/* ---- vhdx-metadata.c ---- */
int vhdx_metadata_read(struct vdk_node *n, struct vhdx_state *s, struct vdk_error **errp);
void vhdx_parent_clear(struct vhdx_parent *p);
/* Serialise a parent locator item; returns its length or -errno. */
long vhdx_locator_build(const struct vhdx_parent *p, uint8_t *buf, size_t cap);
/* Parse a parent locator item (bounded); 0 or -EINVAL with a message. */
int vhdx_locator_parse(const uint8_t *buf, size_t len, struct vhdx_parent *p,
                       struct vdk_error **errp);
/* BAT geometry from the metadata: chunk ratio, block and entry counts. */
int vhdx_bat_geometry(struct vhdx_state *s, struct vdk_error **errp);

/* ---- vhdx-log.c ---- */
/*
 * If the current header names a log, find its active sequence (checksums,
 * GUID, sequence numbers) and replay it: in place when rw (then the
 * header's log GUID is cleared), else into s->ovl.  0 or -errno.
 */
int vhdx_log_replay(struct vdk_node *n, struct vhdx_state *s, bool rw, uint64_t file_len,
                    struct vdk_error **errp);
/*
 * Write `count` 4 KiB sectors (offsets in offs[], contents in data) as
 * one or more log entries, flush, apply them in place and flush.
 */
int vhdx_log_write(struct vdk_node *n, struct vhdx_state *s, const uint64_t *offs,
                   const uint8_t *data, size_t count);
/* Clear the header's log GUID (clean close). */
int vhdx_log_close(struct vdk_node *n, struct vhdx_state *s);
void vhdx_overlay_free(struct vhdx_state *s);

/* ---- vhdx-io.c ---- */
int vhdx_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *buf,
               unsigned flags);
int vhdx_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes, const void *buf,
                unsigned flags);
int vhdx_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                       unsigned flags);
int vhdx_discard(struct vdk_node *n, uint64_t offset, uint64_t bytes);
int vhdx_flush(struct vdk_node *n);
int vhdx_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                      uint64_t *pnum, uint64_t *map, struct vdk_node **file);
/* BAT index of payload block b. */
static inline uint64_t vhdx_payload_index(const struct vhdx_state *s, uint64_t b)
{
    return b + b / s->chunk_ratio;
}
/* Set BAT entry i and mark its sector dirty; caller holds the lock. */
void vhdx_bat_set(struct vhdx_state *s, uint64_t i, uint64_t entry);
/* Write the dirty BAT sectors through the log (lock held). */
int vhdx_bat_sync(struct vdk_node *n, struct vhdx_state *s);
/* Make block b fully present holding buf at [in, in+len) (len may be 0):
   the rest from the block's present sectors, the parent (n->backing, or
   zeros without one) or zeros; BAT entry set, not synced.  Lock held. */
int vhdx_fill_block(struct vdk_node *n, struct vhdx_state *s, uint64_t b, uint64_t in,
                    uint64_t len, const uint8_t *buf);

/* ---- vhdx-chain.c ---- */
/* rebase: point the parent locator at another VHDX (its data write GUID
   as the linkage), or with backing_file NULL make the image a dynamic
   one (partially present blocks filled, parent locator removed). */
int vhdx_change_backing_file(struct vdk_node *n, const char *backing_file,
                             const char *backing_fmt, struct vdk_error **errp);
/* commit without -d: every block of a differencing image not present
   again, its space given back. */
int vhdx_make_empty(struct vdk_node *n, struct vdk_error **errp);

/* ---- vhdx-create.c ---- */
extern const struct vdk_opt_desc vhdx_create_opts[];
int vhdx_create(const char *filename, struct vdk_node *file, struct vdk_opts *opts,
                struct vdk_error **errp);
int vhdx_measure(struct vdk_opts *opts, struct vdk_node *src, uint64_t size,
                 struct vdk_measure *out, struct vdk_error **errp);

/* ---- vhdx-check.c ---- */
int vhdx_check(struct vdk_node *n, struct vdk_check_result *res, unsigned fix,
               struct vdk_error **errp);
/* Blocks past the end of the file or over metadata or each other:
   count them (messages when report); with fix, reset their entries. */
int vhdx_check_bat(struct vdk_node *n, struct vhdx_state *s, uint64_t file_len, bool report,
                   bool fix, int *errors, int *fixed);

#endif /* VDK_FORMATS_VHDX_H */
