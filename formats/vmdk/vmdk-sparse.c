/* SPDX-License-Identifier: MIT */
/*
 * Sparse extents: the KDMV (hosted sparse, streamOptimized) and COWD
 * (vmfsSparse) headers, the grain directory and the grain tables.
 *
 * Grain tables are loaded on demand into a per-GD-entry cache, emptied of
 * clean tables when it passes VMDK_GT_CACHE_BYTES.  Changed entries stay
 * in memory until vmdk_tables_write(), which the flush path calls after
 * the grains themselves were flushed (vmdk.h: write ordering).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "formats/vmdk/vmdk.h"

void vmdk_header_build(uint8_t buf[VMDK_SECTOR], const struct vmdk_hdr_params *p)
{
    memset(buf, 0, VMDK_SECTOR);
    vmdk_put_le32(buf, VMDK4_MAGIC);
    vmdk_put_le32(buf + 4, p->version);
    vmdk_put_le32(buf + 8, p->flags);
    vmdk_put_le64(buf + 12, p->capacity);
    vmdk_put_le64(buf + 20, p->grain);
    vmdk_put_le64(buf + 28, p->desc_off);
    vmdk_put_le64(buf + 36, p->desc_size);
    vmdk_put_le32(buf + 44, p->gtes);
    vmdk_put_le64(buf + 48, p->rgd_off);
    vmdk_put_le64(buf + 56, p->gd_off);
    vmdk_put_le64(buf + 64, p->overhead);
    buf[72] = 0;
    buf[73] = '\n';
    buf[74] = ' ';
    buf[75] = '\r';
    buf[76] = '\n';
    vmdk_put_le16(buf + 77, p->compress);
}

/* Table of `entries` u32 at byte offset `off` must lie inside the file. */
static int table_in_file(uint64_t off_sectors, uint64_t entries, uint64_t file_len)
{
    if (off_sectors > UINT64_MAX / VMDK_SECTOR)
        return -EINVAL;
    uint64_t off = off_sectors * VMDK_SECTOR;
    return off <= file_len && entries * 4 <= file_len - off ? 0 : -EINVAL;
}

int vmdk_header_parse(const uint8_t *b, uint64_t file_len, struct vmdk_extent *e,
                      struct vdk_error **errp)
{
    if (vmdk_le32(b) != VMDK4_MAGIC)
        return vdk_error_setf(errp, EINVAL, "not a VMDK sparse extent (bad magic)");
    e->version = vmdk_le32(b + 4);
    e->flags = vmdk_le32(b + 8);
    uint64_t capacity = vmdk_le64(b + 12);
    uint64_t granularity = vmdk_le64(b + 20);
    uint64_t desc_off = vmdk_le64(b + 28), desc_size = vmdk_le64(b + 36);
    e->gtes = vmdk_le32(b + 44);
    uint64_t rgd = vmdk_le64(b + 48), gd = vmdk_le64(b + 56);
    uint64_t overhead = vmdk_le64(b + 64);
    e->compress_algo = vmdk_le16(b + 77);
    if (e->version == 0 || e->version > 3)
        return vdk_error_setf(errp, ENOTSUP, "unsupported VMDK sparse extent version %" PRIu32,
                              e->version);
    if ((e->flags & VMDK4_FLAG_NL_DETECT) &&
        (b[73] != '\n' || b[74] != ' ' || b[75] != '\r' || b[76] != '\n'))
        return vdk_error_setf(errp, EINVAL, "VMDK header's newline check bytes are damaged "
                              "(was the file transferred in text mode?)");
    if (!vdk_is_pow2(granularity) || granularity > VMDK_MAX_GRAIN_SECTORS)
        return vdk_error_setf(errp, EINVAL, "invalid VMDK grain size of %" PRIu64 " sectors",
                              granularity);
    if (e->gtes == 0 || e->gtes > VMDK_MAX_GTES_PER_GT)
        return vdk_error_setf(errp, EINVAL, "invalid VMDK grain table size of %" PRIu32
                              " entries", e->gtes);
    if (capacity > VMDK_MAX_SECTORS)
        return vdk_error_setf(errp, EFBIG, "VMDK extent capacity of %" PRIu64 " sectors "
                              "exceeds %llu", capacity, (unsigned long long)VMDK_MAX_SECTORS);
    e->compressed = (e->flags & VMDK4_FLAG_COMPRESS) != 0;
    e->has_marker = (e->flags & VMDK4_FLAG_MARKER) != 0;
    e->zeroed_grain = (e->flags & VMDK4_FLAG_ZERO_GRAIN) != 0;
    if (e->compressed && e->compress_algo != VMDK4_COMPRESS_DEFLATE)
        return vdk_error_setf(errp, ENOTSUP, "unsupported VMDK compression algorithm %u",
                              e->compress_algo);
    e->grain = granularity * VMDK_SECTOR;
    uint64_t grains = (capacity + granularity - 1) / granularity;
    uint64_t gd_entries = (grains + e->gtes - 1) / e->gtes;
    if (gd_entries > (1u << 24))
        return vdk_error_setf(errp, EFBIG, "VMDK grain directory of %" PRIu64 " entries "
                              "is too large", gd_entries);
    e->gd_entries = (uint32_t)gd_entries;
    e->length = capacity * VMDK_SECTOR;
    if (gd != VMDK4_GD_AT_END && table_in_file(gd, gd_entries, file_len) < 0)
        return vdk_error_setf(errp, EINVAL, "VMDK grain directory at sector %" PRIu64
                              " lies past the end of the file", gd);
    e->gd_off = gd == VMDK4_GD_AT_END ? gd : gd * VMDK_SECTOR;
    e->rgd_off = 0;
    if ((e->flags & VMDK4_FLAG_RGD) && gd != VMDK4_GD_AT_END && rgd) {
        if (table_in_file(rgd, gd_entries, file_len) < 0)
            return vdk_error_setf(errp, EINVAL, "VMDK redundant grain directory at sector %"
                                  PRIu64 " lies past the end of the file", rgd);
        e->rgd_off = rgd * VMDK_SECTOR;
    }
    if (overhead > VMDK_MAX_SECTORS)
        return vdk_error_setf(errp, EINVAL, "invalid VMDK grain offset %" PRIu64, overhead);
    e->overhead = overhead * VMDK_SECTOR;
    if (desc_size > VMDK_MAX_DESC_SIZE / VMDK_SECTOR || desc_off > VMDK_MAX_SECTORS ||
        (desc_size && desc_off * VMDK_SECTOR + desc_size * VMDK_SECTOR > file_len))
        return vdk_error_setf(errp, EINVAL, "VMDK embedded descriptor (sector %" PRIu64
                              ", %" PRIu64 " sectors) is out of bounds", desc_off, desc_size);
    e->desc_off = desc_off * VMDK_SECTOR;
    e->desc_size = desc_size * VMDK_SECTOR;
    return 0;
}

static int cowd_parse(const uint8_t *b, uint64_t file_len, struct vmdk_extent *e,
                      struct vdk_error **errp)
{
    /* COWD: magic, version, flags, disk sectors, granularity, GD offset,
       GD entries, ... (all u32); GTs of 4096 entries. */
    uint64_t sectors = vmdk_le32(b + 12), granularity = vmdk_le32(b + 16);
    uint64_t gd = vmdk_le32(b + 20), gd_entries = vmdk_le32(b + 24);
    e->cowd = true;
    e->version = vmdk_le32(b + 4);
    e->gtes = 4096;
    if (!vdk_is_pow2(granularity) || granularity > VMDK_MAX_GRAIN_SECTORS)
        return vdk_error_setf(errp, EINVAL, "invalid vmfsSparse grain size of %" PRIu64
                              " sectors", granularity);
    e->grain = granularity * VMDK_SECTOR;
    uint64_t need = (sectors / granularity + e->gtes) / e->gtes;
    if (gd_entries < (sectors + granularity * e->gtes - 1) / (granularity * e->gtes) ||
        gd_entries > need + 1 || table_in_file(gd, gd_entries, file_len) < 0)
        return vdk_error_setf(errp, EINVAL, "vmfsSparse grain directory (%" PRIu64
                              " entries at sector %" PRIu64 ") does not fit", gd_entries, gd);
    e->gd_entries = (uint32_t)gd_entries;
    e->gd_off = gd * VMDK_SECTOR;
    e->length = sectors * VMDK_SECTOR;
    e->overhead = 0;
    return 0;
}

static int read_gd(struct vmdk_extent *e, uint64_t off, uint32_t **out)
{
    size_t bytes = (size_t)e->gd_entries * 4;
    uint8_t *raw = malloc(bytes ? bytes : 1);
    uint32_t *gd = calloc(e->gd_entries ? e->gd_entries : 1, 4);
    int r = raw && gd ? 0 : -ENOMEM;
    if (r == 0 && bytes)
        r = vdk_pread(e->file, raw, bytes, off, 0);
    for (uint32_t i = 0; r == 0 && i < e->gd_entries; i++) {
        gd[i] = vmdk_le32(raw + 4 * (size_t)i);
        if (gd[i] && table_in_file(gd[i], e->gtes, e->file_len) < 0)
            r = -ERANGE;
    }
    free(raw);
    if (r < 0) {
        free(gd);
        return r;
    }
    *out = gd;
    return 0;
}

int vmdk_sparse_open(struct vmdk_extent *e, bool writable, struct vdk_error **errp)
{
    uint8_t hdr[VMDK_SECTOR];
    int64_t flen = vdk_get_length(e->file);
    if (flen < 0)
        return vdk_error_setf_errno(errp, (int)flen, "cannot get the length of '%s'",
                                   e->filename);
    e->file_len = (uint64_t)flen;
    if (e->file_len < VMDK_SECTOR)
        return vdk_error_setf(errp, EINVAL, "'%s' is too short for a VMDK sparse header",
                              e->filename);
    int r = vdk_pread(e->file, hdr, VMDK_SECTOR, 0, 0);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot read the header of '%s'", e->filename);
    if (vmdk_le32(hdr) == VMDK3_MAGIC) {
        r = cowd_parse(hdr, e->file_len, e, errp);
    } else {
        r = vmdk_header_parse(hdr, e->file_len, e, errp);
        if (r == 0 && e->gd_off == VMDK4_GD_AT_END) {
            uint8_t foot[VMDK_SECTOR];
            if ((r = vmdk_footer_read(e->file, e->file_len, foot, errp)) < 0)
                return r;
            /* The footer is the real header; it must agree on capacity. */
            if (vmdk_le64(foot + 12) != vmdk_le64(hdr + 12))
                return vdk_error_setf(errp, EINVAL, "VMDK footer of '%s' disagrees with "
                                      "its header on the capacity", e->filename);
            r = vmdk_header_parse(foot, e->file_len, e, errp);
            if (r == 0 && e->gd_off == VMDK4_GD_AT_END)
                r = vdk_error_setf(errp, EINVAL, "VMDK footer of '%s' has no grain "
                                   "directory", e->filename);
            memcpy(hdr, foot, VMDK_SECTOR);
        }
    }
    if (r < 0)
        return r;
    memcpy(e->header, hdr, VMDK_SECTOR);
    e->next_alloc = vdk_align_up(e->file_len, VMDK_SECTOR);
    if (vmdk_le32(hdr) == VMDK4_MAGIC && e->compressed && e->has_marker &&
        vmdk_le64(hdr + 56) != VMDK4_GD_AT_END && e->file_len >= 4 * VMDK_SECTOR) {
        uint8_t first[VMDK_SECTOR];
        /* a footer image: what is appended goes where the footer is */
        if (vdk_pread(e->file, first, VMDK_SECTOR, 0, 0) == 0 &&
            vmdk_le64(first + 56) == VMDK4_GD_AT_END) {
            e->footer = true;
            e->next_alloc = vdk_align_down(e->file_len, VMDK_SECTOR) - 3 * VMDK_SECTOR;
        }
    }
    if ((r = read_gd(e, e->gd_off, &e->gd)) < 0 ||
        (e->rgd_off && (r = read_gd(e, e->rgd_off, &e->rgd)) < 0)) {
        vmdk_sparse_free(e);
        if (r == -ERANGE)
            return vdk_error_setf(errp, EINVAL, "VMDK grain directory of '%s' points past "
                                  "the end of the file", e->filename);
        return vdk_error_setf_errno(errp, r, "cannot read the grain directory of '%s'",
                                    e->filename);
    }
    e->gt = calloc(e->gd_entries ? e->gd_entries : 1, sizeof(*e->gt));
    e->gt_dirty = calloc(e->gd_entries ? e->gd_entries : 1, 1);
    e->gd_dirty = calloc(e->gd_entries ? e->gd_entries : 1, 1);
    if (!e->gt || !e->gt_dirty || !e->gd_dirty) {
        vmdk_sparse_free(e);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    (void)writable;
    return 0;
}

void vmdk_sparse_free(struct vmdk_extent *e)
{
    if (e->gt)
        for (uint32_t i = 0; i < e->gd_entries; i++)
            free(e->gt[i]);
    free(e->gt);
    free(e->gd);
    free(e->rgd);
    free(e->gt_dirty);
    free(e->gd_dirty);
    e->gt = NULL;
    e->gd = e->rgd = NULL;
    e->gt_dirty = e->gd_dirty = NULL;
}

/* Drop clean tables when the cache is full (dirty ones stay until written). */
static void cache_trim(struct vmdk_extent *e)
{
    if (e->gt_cached < VMDK_GT_CACHE_BYTES)
        return;
    for (uint32_t i = 0; i < e->gd_entries; i++) {
        if (e->gt[i] && !e->gt_dirty[i]) {
            free(e->gt[i]);
            e->gt[i] = NULL;
            e->gt_cached -= (size_t)e->gtes * 4;
        }
    }
}

static int gt_load(struct vmdk_extent *e, uint32_t i)
{
    if (e->gt[i])
        return 0;
    cache_trim(e);
    size_t bytes = (size_t)e->gtes * 4;
    uint32_t *gt = calloc(e->gtes, 4);
    uint8_t *raw = malloc(bytes);
    int r = gt && raw ? 0 : -ENOMEM;
    if (r == 0 && e->gd[i])
        r = vdk_pread(e->file, raw, bytes, (uint64_t)e->gd[i] * VMDK_SECTOR, 0);
    for (uint32_t k = 0; r == 0 && e->gd[i] && k < e->gtes; k++)
        gt[k] = vmdk_le32(raw + 4 * (size_t)k);
    free(raw);
    if (r < 0) {
        free(gt);
        return r;
    }
    e->gt[i] = gt;
    e->gt_cached += bytes;
    return 0;
}

int vmdk_gte_get(struct vmdk_extent *e, uint64_t g, uint32_t *gte)
{
    uint64_t i = g / e->gtes;
    *gte = 0;
    if (i >= e->gd_entries || (!e->gd[i] && !e->gt[i]))
        return 0;
    int r = gt_load(e, (uint32_t)i);
    if (r < 0)
        return r;
    uint32_t v = e->gt[i][g % e->gtes];
    if (v > (e->zeroed_grain ? 1u : 0u) && !e->compressed &&
        (uint64_t)v * VMDK_SECTOR >= e->next_alloc)
        return -ERANGE; /* grain past the end of the file */
    *gte = v;
    return 0;
}

/* A new GT (and its redundant copy) for GD entry i, zeroed, at the end. */
static int gt_alloc(struct vmdk_extent *e, uint32_t i)
{
    uint64_t bytes = vdk_align_up((uint64_t)e->gtes * 4, VMDK_SECTOR);
    uint32_t *gt = calloc(e->gtes, 4);
    if (!gt)
        return -ENOMEM;
    if (e->next_alloc / VMDK_SECTOR + 2 * bytes / VMDK_SECTOR > UINT32_MAX) {
        free(gt);
        return -EFBIG;
    }
    free(e->gt[i]);
    if (!e->gt[i])
        e->gt_cached += (size_t)e->gtes * 4;
    e->gt[i] = gt;
    if (e->footer)
        e->next_alloc += VMDK_SECTOR; /* its GT marker, as a stream has */
    e->gd[i] = (uint32_t)(e->next_alloc / VMDK_SECTOR);
    e->next_alloc += bytes;
    if (e->rgd) {
        e->rgd[i] = (uint32_t)(e->next_alloc / VMDK_SECTOR);
        e->next_alloc += bytes;
    }
    e->gd_dirty[i] = 1;
    e->gt_dirty[i] = 1;
    e->any_dirty = true;
    return 0;
}

int vmdk_gte_set(struct vmdk_extent *e, uint64_t g, uint32_t gte)
{
    uint64_t i = g / e->gtes;
    if (i >= e->gd_entries)
        return -EIO;
    int r = e->gd[i] ? gt_load(e, (uint32_t)i) : gt_alloc(e, (uint32_t)i);
    if (r < 0)
        return r;
    e->gt[i][g % e->gtes] = gte;
    e->gt_dirty[i] = 1;
    e->any_dirty = true;
    return 0;
}

static int write_gt(struct vmdk_extent *e, uint32_t i)
{
    size_t bytes = (size_t)e->gtes * 4;
    uint8_t *raw = malloc(bytes);
    if (!raw)
        return -ENOMEM;
    for (uint32_t k = 0; k < e->gtes; k++)
        vmdk_put_le32(raw + 4 * (size_t)k, e->gt[i][k]);
    int r = vdk_pwrite(e->file, raw, bytes, (uint64_t)e->gd[i] * VMDK_SECTOR, 0);
    if (r == 0 && e->footer && e->gd_dirty[i]) {
        uint8_t m[VMDK_SECTOR];
        vmdk_marker_build(m, vdk_align_up(bytes, VMDK_SECTOR) / VMDK_SECTOR, VMDK_MARKER_GT);
        r = vdk_pwrite(e->file, m, VMDK_SECTOR, ((uint64_t)e->gd[i] - 1) * VMDK_SECTOR, 0);
    }
    if (r == 0 && e->rgd && e->rgd[i])
        r = vdk_pwrite(e->file, raw, bytes, (uint64_t)e->rgd[i] * VMDK_SECTOR, 0);
    free(raw);
    return r;
}

static int write_gd(struct vmdk_extent *e, const uint32_t *gd, uint64_t off)
{
    size_t bytes = (size_t)e->gd_entries * 4;
    uint8_t *raw = malloc(bytes ? bytes : 1);
    if (!raw)
        return -ENOMEM;
    for (uint32_t k = 0; k < e->gd_entries; k++)
        vmdk_put_le32(raw + 4 * (size_t)k, gd[k]);
    int r = vdk_pwrite(e->file, raw, bytes, off, 0);
    free(raw);
    return r;
}

int vmdk_tables_write(struct vmdk_extent *e)
{
    bool gd_changed = false;
    int r;
    if (!e->any_dirty)
        return 0;
    for (uint32_t i = 0; i < e->gd_entries; i++) {
        if (e->gd_dirty[i])
            gd_changed = true;
        if (e->gt_dirty[i]) {
            if ((r = write_gt(e, i)) < 0)
                return r;
            e->gt_dirty[i] = 0;
        }
    }
    if (gd_changed) {
        /* New tables are on disk before any GD entry points at them. */
        if ((r = vdk_flush(e->file)) < 0 ||
            (r = write_gd(e, e->gd, e->gd_off)) < 0 ||
            (e->rgd && (r = write_gd(e, e->rgd, e->rgd_off)) < 0))
            return r;
        memset(e->gd_dirty, 0, e->gd_entries);
    }
    e->any_dirty = false;
    if (e->next_alloc > e->file_len)
        e->file_len = e->next_alloc;
    cache_trim(e);
    return 0;
}

int vmdk_sparse_make_empty(struct vmdk_extent *e)
{
    size_t bytes = (size_t)e->gtes * 4;
    uint64_t end = e->overhead;
    uint8_t *zero = calloc(1, bytes);
    int r = zero ? 0 : -ENOMEM;
    for (uint32_t i = 0; r == 0 && i < e->gd_entries; i++) {
        if (e->gt[i]) {
            memset(e->gt[i], 0, bytes);
            e->gt_dirty[i] = 0;
        }
        for (int copy = 0; r == 0 && copy < 2; copy++) {
            uint32_t at = copy ? (e->rgd ? e->rgd[i] : 0) : e->gd[i];
            if (!at)
                continue;
            r = vdk_pwrite(e->file, zero, bytes, (uint64_t)at * VMDK_SECTOR, 0);
            if ((uint64_t)at * VMDK_SECTOR + bytes > end)
                end = vdk_align_up((uint64_t)at * VMDK_SECTOR + bytes, VMDK_SECTOR);
        }
    }
    free(zero);
    /* Tables cleared and durable before the grains they pointed at go. */
    if (r == 0)
        r = vdk_flush(e->file);
    if (r == 0 && end < e->file_len)
        r = vdk_truncate(e->file, end, VDK_PREALLOC_OFF, true, NULL);
    if (r == 0) {
        e->file_len = e->next_alloc = vdk_align_up(end > e->file_len ? e->file_len : end,
                                                   VMDK_SECTOR);
        if (e->next_alloc < end)
            e->next_alloc = end;
        e->any_dirty = false;
    }
    return r;
}
