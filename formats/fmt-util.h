/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the little-endian formats (VDI, Parallels,
 * VHDX): byte-order accessors and random GUIDs.
 */
#ifndef VDK_FORMATS_FMT_UTIL_H
#define VDK_FORMATS_FMT_UTIL_H

#include <stdbool.h>
#include <stdint.h>

static inline uint16_t fmt_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t fmt_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t fmt_le64(const uint8_t *p)
{
    return (uint64_t)fmt_le32(p) | (uint64_t)fmt_le32(p + 4) << 32;
}
static inline void fmt_put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void fmt_put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void fmt_put_le64(uint8_t *p, uint64_t v)
{
    fmt_put_le32(p, (uint32_t)v);
    fmt_put_le32(p + 4, (uint32_t)(v >> 32));
}

/* 16 random bytes as a version-4 UUID in RFC byte order; 0 or -errno. */
int fmt_uuid_generate(uint8_t uuid[16]);

/*
 * The same 16 bytes in Microsoft's GUID layout (first three fields
 * little-endian), as VDI and VHDX store them.  Formats "xxxxxxxx-...".
 */
void fmt_guid_format(const uint8_t g[16], char buf[37]);

/* True when all 16 bytes are zero. */
int fmt_uuid_is_null(const uint8_t u[16]);



struct vdk_node;
/*
 * Count the blocks of block_size bytes in [0, size) of src (through its
 * backing chain) that hold data other than zeros, for measure.  0 or
 * -errno.
 */
int fmt_count_data_blocks(struct vdk_node *src, uint64_t size, uint64_t block_size,
                          uint64_t *count);

/*
 * Where block idx of a block-mapped image lives in n->file: its byte
 * offset (> 0), 0 if unallocated (reads as zeros), or -errno.
 */
typedef int64_t (*fmt_block_map_fn)(struct vdk_node *n, uint64_t idx);

/* Read bytes of guest data at offset into buf, block by block of
   block_size, each block from n->file where map puts it; 0 or -errno. */
int fmt_read_mapped(struct vdk_node *n, uint64_t block_size, fmt_block_map_fn map,
                    uint64_t offset, uint64_t bytes, void *buf);

/*
 * For block-mapped formats whose blocks are appended one after the other
 * (VDI, Parallels): a write to a block that starts at byte off, more than
 * one unit (block size) past the current end of n->file, means a header
 * offset, count or table entry is damaged, and would leave a hole of up to
 * terabytes (qemu writes there).  Returns 0 when the block is within
 * reach, else -EIO after a warning naming the file, printed once per
 * *warned (what: "block", table: "block map", ...).  A block cut short at
 * the end of the file stays writable.
 */
int fmt_check_reach(struct vdk_node *n, uint64_t off, uint64_t unit, bool *warned,
                    const char *what, const char *table);

struct vdk_error;
/* measure: the size of src when given (else *size stays); 0 or -errno
   with a message. */
int fmt_measure_size(struct vdk_node *src, uint64_t *size, struct vdk_error **errp);
#endif /* VDK_FORMATS_FMT_UTIL_H */
