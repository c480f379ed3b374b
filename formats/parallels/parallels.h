/* SPDX-License-Identifier: MIT */
/*
 * Parallels disk images ("parallels" in qemu), as qemu-img 7.2 reads and
 * writes them; layout from qemu's docs/interop/parallels.txt.
 *
 * Layout (all fields little-endian):
 *   [ header, 64 bytes: magic "WithoutFreeSpace" (BAT entries are sector
 *     offsets, size 32-bit) or "WithouFreSpacExt" (entries are cluster
 *     numbers: offset = entry * tracks sectors), version 2, geometry,
 *     tracks (cluster size in sectors), bat_entries, nb_sectors, inuse,
 *     data_off (sectors), flags, ext_off ]
 *   [ BAT: bat_entries u32, 0 = unallocated ]
 *   [ clusters from data_off on ]
 * A writer sets inuse to 0x746f6e59 while the image is open read-write
 * and clears it at close; an image left in use is opened read-only only,
 * until `check -r all` clears the flag (qemu's rule).
 *
 * Files: parallels.c (probe, header, open, close, info, driver table),
 * parallels-io.c (read, write, allocation, flush, block status),
 * parallels-create.c (create, measure), parallels-check.c.
 */
#ifndef VDK_FORMATS_PARALLELS_H
#define VDK_FORMATS_PARALLELS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "block/driver.h"

#define PRL_SECTOR        512u
#define PRL_HEADER_SIZE   64u
#define PRL_MAGIC         "WithoutFreeSpace"
#define PRL_MAGIC2        "WithouFreSpacExt"
#define PRL_VERSION       2u
#define PRL_INUSE_MAGIC   0x746f6e59u
#define PRL_HEADS         16u
#define PRL_SEC_IN_CYL    32u
#define PRL_DEFAULT_CLUSTER (1u << 20)
/* qemu's bounds: tracks at most INT32_MAX / 513 sectors, a BAT of at
   most INT32_MAX / 4 entries, an image under 2^32 clusters. */
#define PRL_MAX_TRACKS    (0x7fffffffu / 513)
#define PRL_MAX_BAT       (0x7fffffffu / 4)

enum {
    PRL_OFF_VERSION = 16,
    PRL_OFF_HEADS = 20,
    PRL_OFF_CYLS = 24,
    PRL_OFF_TRACKS = 28,
    PRL_OFF_BAT_ENTRIES = 32,
    PRL_OFF_NB_SECTORS = 36,
    PRL_OFF_INUSE = 44,
    PRL_OFF_DATA_OFF = 48,
    PRL_OFF_FLAGS = 52,
    PRL_OFF_EXT_OFF = 56,
};

struct prl_state {
    pthread_mutex_t lock;     /* guards bat[], data_end, the dirty range */
    bool lock_init;
    uint8_t header[PRL_HEADER_SIZE];
    bool ext_magic;           /* "WithouFreSpacExt" */
    bool unclean;             /* inuse was set when opened */
    uint32_t tracks;          /* cluster size in sectors */
    uint32_t off_multiplier;  /* sectors per BAT unit */
    uint64_t cluster_size;
    uint32_t bat_entries;
    uint32_t *bat;            /* host order */
    uint64_t meta_end;        /* end of header + BAT in bytes */
    uint64_t data_end;        /* in sectors: where the next cluster goes */
    uint32_t dirty_lo, dirty_hi; /* BAT entries not yet on disk */
    bool warned_far;          /* said once that a cluster lies past the end */
};

/* Sector offset of BAT entry e. */
static inline uint64_t prl_entry_sector(const struct prl_state *s, uint32_t e)
{
    return (uint64_t)e * s->off_multiplier;
}

/* ---- parallels.c ---- */
/* Write the 64-byte header and flush. */
int prl_write_header(struct vdk_node *n);

/* ---- parallels-io.c ---- */
int prl_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *buf,
              unsigned flags);
int prl_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes, const void *buf,
               unsigned flags);
int prl_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                      unsigned flags);
int prl_flush(struct vdk_node *n);
int prl_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                     uint64_t *pnum, uint64_t *map, struct vdk_node **file);
/* Write BAT entries [lo, hi) to the file.  Caller holds the lock. */
int prl_write_bat(struct vdk_node *n, uint32_t lo, uint32_t hi);
/* Allocate a cluster at data_end for entry idx (lock held, entry still
   unset in the file); returns its byte offset or -errno. */
int64_t prl_alloc_cluster(struct vdk_node *n, uint32_t idx);

/* ---- parallels-create.c ---- */
extern const struct vdk_opt_desc prl_create_opts[];
int prl_create(const char *filename, struct vdk_node *file, struct vdk_opts *opts,
               struct vdk_error **errp);
int prl_measure(struct vdk_opts *opts, struct vdk_node *src, uint64_t size,
                struct vdk_measure *out, struct vdk_error **errp);

/* ---- parallels-check.c ---- */
int prl_check(struct vdk_node *n, struct vdk_check_result *res, unsigned fix,
              struct vdk_error **errp);

#endif /* VDK_FORMATS_PARALLELS_H */
