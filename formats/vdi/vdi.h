/* SPDX-License-Identifier: MIT */
/*
 * VDI: VirtualBox disk images, dynamic and static, as qemu-img 7.2 reads
 * and writes them (header version 1.1, 1 MiB blocks, no parents).
 *
 * Layout (all fields little-endian):
 *   [ header, one 512-byte sector: text, signature 0xbeda107f, version,
 *     geometry, sizes, UUIDs ]
 *   [ block map at offset_bmap: one u32 per block, 0xffffffff unallocated,
 *     0xfffffffe discarded (reads as zeros), else the index of the block
 *     in the data area ]
 *   [ data area at offset_data: blocks of block_size bytes ]
 * A dynamic image appends blocks in allocation order; a static image has
 * every block preallocated (entry i = i).
 *
 * Files: vdi.c (probe, open, info, driver table), vdi-io.c (read, write,
 * allocation, block status), vdi-create.c (create, measure), vdi-check.c.
 */
#ifndef VDK_FORMATS_VDI_H
#define VDK_FORMATS_VDI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "block/driver.h"

#define VDI_SECTOR         512u
#define VDI_HEADER_SIZE    512u   /* what we read and rewrite */
#define VDI_SIGNATURE      0xbeda107fu
#define VDI_VERSION_1_1    0x00010001u
#define VDI_BLOCK_SIZE     (1u << 20) /* the only block size qemu handles */
#define VDI_UNALLOCATED    0xffffffffu
#define VDI_DISCARDED      0xfffffffeu
#define VDI_IS_ALLOCATED(e) ((e) < VDI_DISCARDED)
/* qemu's bound: the block map is at most 4 GiB / 4 entries... kept as its
   0x3fffffff blocks (just under 1 PiB at 1 MiB blocks). */
#define VDI_BLOCKS_MAX     0x3fffffffu
#define VDI_DISK_SIZE_MAX  ((uint64_t)VDI_BLOCKS_MAX * VDI_BLOCK_SIZE)

enum { VDI_TYPE_DYNAMIC = 1, VDI_TYPE_STATIC = 2 };

/* Field offsets in the header sector. */
enum {
    VDI_OFF_SIGNATURE = 0x40,
    VDI_OFF_VERSION = 0x44,
    VDI_OFF_HEADER_SIZE = 0x48,
    VDI_OFF_IMAGE_TYPE = 0x4c,
    VDI_OFF_IMAGE_FLAGS = 0x50,
    VDI_OFF_DESCRIPTION = 0x54,
    VDI_OFF_BMAP = 0x154,
    VDI_OFF_DATA = 0x158,
    VDI_OFF_CYLS = 0x15c,
    VDI_OFF_HEADS = 0x160,
    VDI_OFF_SECTORS = 0x164,
    VDI_OFF_SECTOR_SIZE = 0x168,
    VDI_OFF_DISK_SIZE = 0x170,
    VDI_OFF_BLOCK_SIZE = 0x178,
    VDI_OFF_BLOCK_EXTRA = 0x17c,
    VDI_OFF_BLOCKS = 0x180,
    VDI_OFF_ALLOCATED = 0x184,
    VDI_OFF_UUID_IMAGE = 0x188,
    VDI_OFF_UUID_SNAP = 0x198,
    VDI_OFF_UUID_LINK = 0x1a8,
    VDI_OFF_UUID_PARENT = 0x1b8,
};

struct vdi_header {
    uint32_t version;
    uint32_t header_size;
    uint32_t image_type;
    uint32_t offset_bmap;
    uint32_t offset_data;
    uint32_t sector_size;
    uint64_t disk_size;
    uint32_t block_size;
    uint32_t block_extra;
    uint32_t blocks;
    uint32_t allocated;
    uint8_t uuid_image[16], uuid_snap[16], uuid_link[16], uuid_parent[16];
};

struct vdi_state {
    pthread_mutex_t lock;     /* guards bmap[], hdr.allocated, header_raw */
    bool lock_init;
    uint8_t header_raw[VDI_HEADER_SIZE];
    struct vdi_header hdr;
    uint32_t *bmap;           /* host order, hdr.blocks entries */
    uint64_t file_len;
    /* Where the next block goes: the header's count, or past the highest
       mapped block when the count is too low (a damaged image), so a new
       block never lands on one in use. */
    uint32_t next_block;
    uint32_t dirty_lo, dirty_hi; /* map entries not yet written */
    bool warned_far;          /* said once that a block lies past the end */
};

/* ---- vdi.c ---- */
/* Parse and validate a header sector (qemu's rules and messages); with
   file_len != 0 also check that the map lies inside the file. */
int vdi_header_parse(const uint8_t *buf, struct vdi_header *h, uint64_t file_len,
                     struct vdk_error **errp);

/* ---- vdi-io.c ---- */
int vdi_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *buf,
              unsigned flags);
int vdi_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes, const void *buf,
               unsigned flags);
int vdi_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                      unsigned flags);
/* Write back the count and the map entries of new blocks after a flush
   of their data. */
int vdi_flush(struct vdk_node *n);
int vdi_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                     uint64_t *pnum, uint64_t *map, struct vdk_node **file);
/* Byte offset in the file of data block `block` (a map entry's value). */
static inline uint64_t vdi_block_offset(const struct vdi_state *s, uint32_t block)
{
    return (uint64_t)s->hdr.offset_data + (uint64_t)block * s->hdr.block_size;
}
/* 0 when data block `block` starts within reach of the file's end
   (fmt_check_reach), else -EIO after one warning: a header offset, count
   or map entry that puts it there is damaged. */
int vdi_block_within_reach(struct vdk_node *n, uint32_t block);
/* Write the block-map sectors covering entries [first, last] and the
   header sector.  Caller holds the lock. */
int vdi_write_meta(struct vdk_node *n, uint32_t first, uint32_t last);

/* ---- vdi-create.c ---- */
extern const struct vdk_opt_desc vdi_create_opts[];
int vdi_create(const char *filename, struct vdk_node *file, struct vdk_opts *opts,
               struct vdk_error **errp);
int vdi_measure(struct vdk_opts *opts, struct vdk_node *src, uint64_t size,
                struct vdk_measure *out, struct vdk_error **errp);

/* ---- vdi-check.c ---- */
int vdi_check(struct vdk_node *n, struct vdk_check_result *res, unsigned fix,
              struct vdk_error **errp);

#endif /* VDK_FORMATS_VDI_H */
