/* SPDX-License-Identifier: MIT */
/*
 * seSparse extents: the space-efficient sparse format ESXi 6.5+ uses for
 * snapshots on VMFS6 (createType "seSparse", extent type SESPARSE).
 * Read-only, as in qemu.  VMware has not published the format; this
 * follows the layout qemu's driver reads, and refuses what it refuses
 * (all fields little-endian u64, offsets and sizes in sectors):
 *
 *   const header (sector 0): magic 0xcafebabe, version 0x200000001,
 *     capacity, grain size (8 sectors), grain table size (64 sectors),
 *     flags (0), four reserved (0), then offset and size of: volatile
 *     header, journal header, journal, grain directory, grain tables,
 *     free bitmap, backmap, grains; zero padding to 512 bytes.
 *   volatile header: magic 0xcafecafe, free GT number, next transaction
 *     number, replay_journal (non-zero: a dirty image, refused); zeros.
 *   grain directory: one entry per 16 MiB of guest data; 0 = no table,
 *     else 0x10000000 in the high 32 bits and in the low 32 the table's
 *     index in the grain-table area (a table is 4096 entries, 64 sectors).
 *   grain table entry: the top nibble is the state: 0 unallocated (the
 *     rest must be 0: read the parent), 1 unmapped and 2 zero (read as
 *     zeros), 3 allocated; the grain's index in the grain area has its
 *     low 12 bits in bits 48..59 and the rest in bits 0..47.
 *
 * Every table and grain is checked against its area and the file length
 * before it is read; the directory is read once, tables on demand into
 * a cache emptied past VMDK_GT_CACHE_BYTES.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "formats/vmdk/vmdk.h"

#define SE_CONST_MAGIC    0xcafebabeull
#define SE_VOLATILE_MAGIC 0xcafecafeull
#define SE_VERSION        0x0000000200000001ull
#define SE_GRAIN_SECTORS  8u
#define SE_GT_SECTORS     64u
#define SE_GTES           (SE_GT_SECTORS * VMDK_SECTOR / 8u)   /* 4096 */
#define SE_GD_ALLOCATED   0x10000000ull

/* Field indexes (u64) of the const header. */
enum {
    SE_MAGIC, SE_VERS, SE_CAPACITY, SE_GRAIN, SE_GT_SIZE, SE_FLAGS,
    SE_RES1, SE_RES2, SE_RES3, SE_RES4,
    SE_VH_OFF, SE_VH_SIZE, SE_JH_OFF, SE_JH_SIZE, SE_J_OFF, SE_J_SIZE,
    SE_GD_OFF, SE_GD_SIZE, SE_GTS_OFF, SE_GTS_SIZE, SE_FB_OFF, SE_FB_SIZE,
    SE_BM_OFF, SE_BM_SIZE, SE_GRAINS_OFF, SE_GRAINS_SIZE, SE_FIELDS
};

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static int check_const(const uint64_t *h, const uint8_t *raw, uint64_t file_sectors,
                       struct vdk_error **errp)
{
    if (h[SE_MAGIC] != SE_CONST_MAGIC)
        return vdk_error_setf(errp, EINVAL, "bad seSparse const header magic 0x%016" PRIx64,
                              h[SE_MAGIC]);
    if (h[SE_VERS] != SE_VERSION)
        return vdk_error_setf(errp, ENOTSUP, "unsupported seSparse version 0x%016" PRIx64,
                              h[SE_VERS]);
    if (h[SE_GRAIN] != SE_GRAIN_SECTORS)
        return vdk_error_setf(errp, ENOTSUP, "unsupported seSparse grain size of %" PRIu64
                              " sectors", h[SE_GRAIN]);
    if (h[SE_GT_SIZE] != SE_GT_SECTORS)
        return vdk_error_setf(errp, ENOTSUP, "unsupported seSparse grain table size of %"
                              PRIu64 " sectors", h[SE_GT_SIZE]);
    if (h[SE_FLAGS])
        return vdk_error_setf(errp, ENOTSUP, "unsupported seSparse flags 0x%" PRIx64,
                              h[SE_FLAGS]);
    if (h[SE_RES1] || h[SE_RES2] || h[SE_RES3] || h[SE_RES4] ||
        !all_zero(raw + 8 * SE_FIELDS, VMDK_SECTOR - 8 * SE_FIELDS))
        return vdk_error_setf(errp, ENOTSUP, "seSparse const header has non-zero reserved "
                              "fields or padding");
    if (h[SE_CAPACITY] > VMDK_MAX_SECTORS)
        return vdk_error_setf(errp, EFBIG, "seSparse capacity of %" PRIu64 " sectors "
                              "exceeds %llu", h[SE_CAPACITY],
                              (unsigned long long)VMDK_MAX_SECTORS);
    /* Areas: no offset or end past 2^48 sectors (far beyond 64 TiB). */
    for (int f = SE_VH_OFF; f < SE_FIELDS; f += 2)
        if (h[f] >> 48 || h[f + 1] >> 48)
            return vdk_error_setf(errp, EINVAL, "seSparse header field %d (offset %" PRIu64
                                  ", size %" PRIu64 ") is out of range", f, h[f], h[f + 1]);
    if (h[SE_VH_OFF] == 0 || h[SE_VH_OFF] >= file_sectors)
        return vdk_error_setf(errp, EINVAL, "seSparse volatile header at sector %" PRIu64
                              " lies outside the file", h[SE_VH_OFF]);
    return 0;
}

static int read_volatile(struct vmdk_extent *e, uint64_t sector, struct vdk_error **errp)
{
    uint8_t v[VMDK_SECTOR];
    int r = vdk_pread(e->file, v, VMDK_SECTOR, sector * VMDK_SECTOR, 0);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot read the seSparse volatile header");
    if (vmdk_le64(v) != SE_VOLATILE_MAGIC)
        return vdk_error_setf(errp, EINVAL, "bad seSparse volatile header magic 0x%016" PRIx64,
                              vmdk_le64(v));
    if (vmdk_le64(v + 24))
        return vdk_error_setf(errp, ENOTSUP, "seSparse image is dirty: replaying its journal "
                              "is not supported");
    if (!all_zero(v + 32, VMDK_SECTOR - 32))
        return vdk_error_setf(errp, ENOTSUP, "seSparse volatile header has non-zero padding");
    return 0;
}

int vmdk_se_open(struct vmdk_extent *e, struct vdk_error **errp)
{
    uint8_t raw[VMDK_SECTOR];
    uint64_t h[SE_FIELDS];
    int64_t flen = vdk_get_length(e->file);
    if (flen < 0)
        return vdk_error_setf_errno(errp, (int)flen, "cannot get the length of '%s'",
                                    e->filename);
    e->file_len = (uint64_t)flen;
    if (e->file_len < 2 * VMDK_SECTOR)
        return vdk_error_setf(errp, EINVAL, "'%s' is too short for a seSparse extent",
                              e->filename);
    int r = vdk_pread(e->file, raw, VMDK_SECTOR, 0, 0);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot read the header of '%s'", e->filename);
    for (int i = 0; i < SE_FIELDS; i++)
        h[i] = vmdk_le64(raw + 8 * i);
    if ((r = check_const(h, raw, e->file_len / VMDK_SECTOR, errp)) < 0 ||
        (r = read_volatile(e, h[SE_VH_OFF], errp)) < 0)
        return r;
    e->sesparse = true;
    e->grain = SE_GRAIN_SECTORS * VMDK_SECTOR;
    e->gtes = SE_GTES;
    /* The directory must cover the capacity; only that part is read. */
    uint64_t need = (h[SE_CAPACITY] + (uint64_t)SE_GTES * SE_GRAIN_SECTORS - 1) /
                    ((uint64_t)SE_GTES * SE_GRAIN_SECTORS);
    uint64_t have = h[SE_GD_SIZE] * VMDK_SECTOR / 8;
    if (have < need)
        return vdk_error_setf(errp, EINVAL, "seSparse grain directory of %" PRIu64 " entries "
                              "does not cover the capacity (%" PRIu64 " needed)", have, need);
    uint64_t gd_bytes = need * 8;
    if (h[SE_GD_OFF] * VMDK_SECTOR > e->file_len ||
        gd_bytes > e->file_len - h[SE_GD_OFF] * VMDK_SECTOR)
        return vdk_error_setf(errp, EINVAL, "seSparse grain directory at sector %" PRIu64
                              " lies past the end of the file", h[SE_GD_OFF]);
    e->gd_entries = (uint32_t)need; /* need <= 2^37 / 2^15 */
    e->length = h[SE_CAPACITY] * VMDK_SECTOR;
    e->se_gt_off = h[SE_GTS_OFF] * VMDK_SECTOR;
    e->se_gt_count = h[SE_GTS_SIZE] / SE_GT_SECTORS;
    e->se_grain_off = h[SE_GRAINS_OFF] * VMDK_SECTOR;
    e->se_grain_count = h[SE_GRAINS_SIZE] / SE_GRAIN_SECTORS;
    uint8_t *gd = malloc(gd_bytes ? gd_bytes : 1);
    e->se_gd = calloc(need ? need : 1, sizeof(*e->se_gd));
    e->se_gt = calloc(need ? need : 1, sizeof(*e->se_gt));
    if (!gd || !e->se_gd || !e->se_gt) {
        free(gd);
        vmdk_se_free(e);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    r = gd_bytes ? vdk_pread(e->file, gd, gd_bytes, h[SE_GD_OFF] * VMDK_SECTOR, 0) : 0;
    for (uint64_t i = 0; r == 0 && i < need; i++)
        e->se_gd[i] = vmdk_le64(gd + 8 * i);
    free(gd);
    if (r < 0) {
        vmdk_se_free(e);
        return vdk_error_setf_errno(errp, r, "cannot read the grain directory of '%s'",
                                    e->filename);
    }
    return 0;
}

void vmdk_se_free(struct vmdk_extent *e)
{
    if (e->se_gt)
        for (uint32_t i = 0; i < e->gd_entries; i++)
            free(e->se_gt[i]);
    free(e->se_gt);
    free(e->se_gd);
    e->se_gt = NULL;
    e->se_gd = NULL;
}

/* The grain table of directory entry i, loaded on demand. */
static int se_gt_load(struct vmdk_extent *e, uint32_t i, uint64_t **out)
{
    const size_t bytes = SE_GTES * 8u;
    *out = NULL;
    if (e->se_gt[i]) {
        *out = e->se_gt[i];
        return 0;
    }
    uint64_t d = e->se_gd[i];
    if (d == 0)
        return 0;
    if (d >> 32 != SE_GD_ALLOCATED || (d & 0xffffffffu) >= e->se_gt_count)
        return -EINVAL;
    uint64_t off = e->se_gt_off + (d & 0xffffffffu) * bytes;
    if (off > e->file_len || bytes > e->file_len - off)
        return -ERANGE;
    if (e->gt_cached >= VMDK_GT_CACHE_BYTES) {
        for (uint32_t k = 0; k < e->gd_entries; k++) {
            free(e->se_gt[k]);
            e->se_gt[k] = NULL;
        }
        e->gt_cached = 0;
    }
    uint8_t *raw = malloc(bytes);
    uint64_t *gt = malloc(bytes);
    int r = raw && gt ? vdk_pread(e->file, raw, bytes, off, 0) : -ENOMEM;
    for (size_t k = 0; r == 0 && k < SE_GTES; k++)
        gt[k] = vmdk_le64(raw + 8 * k);
    free(raw);
    if (r < 0) {
        free(gt);
        return r;
    }
    e->se_gt[i] = gt;
    e->gt_cached += bytes;
    *out = gt;
    return 0;
}

int vmdk_se_grain_find(struct vmdk_extent *e, uint64_t g, uint64_t *sector)
{
    uint64_t i = g / SE_GTES;
    uint64_t *gt;
    *sector = 0;
    if (i >= e->gd_entries)
        return VMDK_G_UNALLOC; /* past the capacity: the descriptor's tail */
    int r = se_gt_load(e, (uint32_t)i, &gt);
    if (r < 0 || !gt)
        return r;
    uint64_t v = gt[g % SE_GTES];
    switch (v >> 60) {
    case 0:
        return v ? -EINVAL : VMDK_G_UNALLOC;
    case 1: /* unmapped */
    case 2: /* zero */
        return VMDK_G_ZERO;
    case 3: {
        uint64_t idx = ((v >> 48) & 0xfffu) | (v & 0xffffffffffffull) << 12;
        if (idx >= e->se_grain_count)
            return -EINVAL;
        uint64_t off = e->se_grain_off + idx * e->grain;
        if (off > e->file_len || e->grain > e->file_len - off)
            return -ERANGE;
        *sector = off / VMDK_SECTOR;
        return VMDK_G_DATA;
    }
    default:
        return -EINVAL;
    }
}
