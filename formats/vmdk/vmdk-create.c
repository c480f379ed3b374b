/* SPDX-License-Identifier: MIT */
/*
 * Creating VMDK images the way qemu-img 7.2 does (same layout, header
 * fields, descriptor text and extent names), measure, and rebase.
 *
 * Differences from qemu-img, on purpose:
 *  - streamOptimized is written as VMware's stream (header with
 *    gd_offset = GD_AT_END, grains, GT/GD markers, footer, end-of-stream
 *    marker) rather than qemu's preallocated tables without a footer,
 *    which VMware's importers and ESXi read as a stream.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "formats/vmdk/vmdk.h"

static const char *const subformats[] = {
    "monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat",
    "streamOptimized", NULL,
};
enum { SUB_MSPARSE, SUB_MFLAT, SUB_2GSPARSE, SUB_2GFLAT, SUB_STREAM };
static const char *const adapters[] = { "ide", "lsilogic", "buslogic", "legacyESX", NULL };
static const char *const prealloc_values[] = { "off", "falloc", "full", NULL };

const struct vdk_opt_desc vmdk_create_opts[] = {
    { "size", VDK_OPT_SIZE, "Virtual disk size", NULL, NULL },
    { "adapter_type", VDK_OPT_ENUM, "Virtual adapter type, can be one of ide (default), "
      "lsilogic, buslogic or legacyESX", "ide", adapters },
    { "backing_file", VDK_OPT_STRING, "File name of a base image", NULL, NULL },
    { "backing_fmt", VDK_OPT_STRING, "Must be 'vmdk' if present", NULL, NULL },
    { "compat6", VDK_OPT_BOOL, "VMDK version 6 image", "off", NULL },
    { "hwversion", VDK_OPT_STRING, "VMDK hardware version", "undefined", NULL },
    { "toolsversion", VDK_OPT_STRING, "VMware guest tools version", "undefined", NULL },
    { "subformat", VDK_OPT_ENUM, "VMDK flat extent format, can be one of {monolithicSparse "
      "(default) | monolithicFlat | twoGbMaxExtentSparse | twoGbMaxExtentFlat | "
      "streamOptimized} ", "monolithicSparse", subformats },
    { "zeroed_grain", VDK_OPT_BOOL, "Enable efficient zero writes using the zeroed-grain "
      "GTE feature", "off", NULL },
    { "preallocation", VDK_OPT_ENUM, "Preallocation mode (allowed values: off, falloc, full)",
      "off", prealloc_values },
    { NULL, 0, NULL, NULL, NULL },
};

uint32_t vmdk_new_cid(void)
{
    uint32_t v = 0;
    if (getrandom(&v, sizeof(v), 0) != sizeof(v))
        v = (uint32_t)rand();
    return v;
}

struct plan {
    int sub;
    bool zeroed, flat, split, stream;
    uint64_t size;
    int prealloc;
};

/* The sparse extent header and tables qemu's vmdk_init_extent writes. */
static int init_sparse(struct vdk_node *f, const struct plan *p, uint64_t bytes,
                       const char *desc, struct vdk_error **errp)
{
    uint64_t capacity = bytes / VMDK_SECTOR;
    uint64_t grains = (capacity + VMDK_DEFAULT_GRAIN - 1) / VMDK_DEFAULT_GRAIN;
    uint64_t gt_sectors = VMDK_DEFAULT_GTES * 4 / VMDK_SECTOR;
    uint64_t gt_count = (grains + VMDK_DEFAULT_GTES - 1) / VMDK_DEFAULT_GTES;
    uint64_t gd_sectors = (gt_count * 4 + VMDK_SECTOR - 1) / VMDK_SECTOR;
    struct vmdk_hdr_params h = {
        .version = p->stream ? 3 : p->zeroed ? 2 : 1,
        .flags = VMDK4_FLAG_NL_DETECT | (p->zeroed ? VMDK4_FLAG_ZERO_GRAIN : 0),
        .capacity = capacity, .grain = VMDK_DEFAULT_GRAIN,
        .desc_off = 1, .desc_size = VMDK_DESC_SECTORS, .gtes = VMDK_DEFAULT_GTES,
    };
    if (p->stream) {
        h.flags |= VMDK4_FLAG_COMPRESS | VMDK4_FLAG_MARKER;
        h.compress = VMDK4_COMPRESS_DEFLATE;
        h.gd_off = VMDK4_GD_AT_END;
        h.overhead = VMDK_DEFAULT_GRAIN;
    } else {
        h.flags |= VMDK4_FLAG_RGD;
        h.rgd_off = 1 + VMDK_DESC_SECTORS;
        h.gd_off = h.rgd_off + gd_sectors + gt_sectors * gt_count;
        h.overhead = vdk_align_up(h.gd_off + gd_sectors + gt_sectors * gt_count,
                                  VMDK_DEFAULT_GRAIN);
    }
    if (gt_count > (1u << 24))
        return vdk_error_setf(errp, EFBIG, "image too large for a VMDK extent");
    uint8_t hdr[VMDK_SECTOR];
    vmdk_header_build(hdr, &h);
    int r = vdk_pwrite(f, hdr, VMDK_SECTOR, 0, 0);
    if (r == 0 && desc)
        r = vdk_pwrite(f, desc, strlen(desc), VMDK_SECTOR, 0);
    if (r == 0)
        r = vdk_truncate(f, h.overhead * VMDK_SECTOR, VDK_PREALLOC_OFF, false, NULL);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot write the VMDK header");
    if (p->stream) {
        /* An empty stream: tail with an all-zero GD, footer and EOS. */
        struct vmdk_extent e = { .file = f, .version = h.version, .flags = h.flags,
                                 .compress_algo = h.compress, .grain = h.grain * VMDK_SECTOR,
                                 .gtes = h.gtes, .gd_entries = (uint32_t)gt_count,
                                 .overhead = h.overhead * VMDK_SECTOR,
                                 .desc_off = VMDK_SECTOR,
                                 .desc_size = VMDK_DESC_SECTORS * VMDK_SECTOR,
                                 .stream_end = h.overhead * VMDK_SECTOR,
                                 .file_len = h.overhead * VMDK_SECTOR };
        e.gd = calloc(gt_count ? gt_count : 1, 4);
        e.gt = calloc(gt_count ? gt_count : 1, sizeof(*e.gt));
        r = e.gd && e.gt ? vmdk_stream_finish(&e, capacity) : -ENOMEM;
        free(e.gd);
        free(e.gt);
        if (r < 0)
            return vdk_error_setf_errno(errp, r, "cannot write the VMDK stream footer");
        return 0;
    }
    uint8_t *gd = calloc(gd_sectors ? gd_sectors : 1, VMDK_SECTOR);
    if (!gd)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    for (int copy = 0; copy < 2 && r == 0; copy++) {
        uint64_t at = copy ? h.gd_off : h.rgd_off;
        for (uint64_t i = 0; i < gt_count; i++)
            vmdk_put_le32(gd + 4 * i, (uint32_t)(at + gd_sectors + i * gt_sectors));
        if (gd_sectors)
            r = vdk_pwrite(f, gd, gd_sectors * VMDK_SECTOR, at * VMDK_SECTOR, 0);
    }
    free(gd);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot write the VMDK grain directory");
    return 0;
}

/* Directory part (with the slash), base name without extension, extension. */
static void decompose(const char *filename, char *dir, char *prefix, char *postfix, size_t cap)
{
    const char *slash = strrchr(filename, '/');
    const char *base = slash ? slash + 1 : filename;
    size_t dl = (size_t)(base - filename);
    if (dl >= cap)
        dl = cap - 1;
    memcpy(dir, filename, dl);
    dir[dl] = 0;
    const char *dot = strrchr(base, '.');
    if (!dot)
        dot = base + strlen(base);
    snprintf(prefix, cap, "%.*s", (int)(dot - base), base);
    snprintf(postfix, cap, "%s", dot);
}

static int create_extent_file(const char *path, uint64_t size, int prealloc, bool sparse,
                              const struct plan *p, struct vdk_error **errp)
{
    struct vdk_opts *o = vdk_opts_new();
    char sz[32];
    snprintf(sz, sizeof(sz), "%" PRIu64, sparse ? 0 : size);
    if (!o || vdk_opts_set(o, "size", sz) < 0 ||
        (!sparse && vdk_opts_set(o, "preallocation", prealloc_values[prealloc]) < 0)) {
        vdk_opts_free(o);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    int r = vdk_create("file", path, o, errp);
    if (r < 0 || !sparse)
        return r;
    struct vdk_node *f = NULL;
    if ((r = vdk_open_protocol(&f, path, NULL, VDK_O_RDWR, errp)) < 0)
        return r;
    r = init_sparse(f, p, size, NULL, errp);
    int r2 = vdk_close(f);
    return r < 0 ? r : r2;
}

static int parent_cid(const char *filename, const char *backing, uint64_t *size,
                      uint32_t *cid, struct vdk_error **errp)
{
    char *full = vdk_path_combine(filename, backing);
    struct vdk_node *b = NULL;
    if (!full)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    int r = vdk_open(&b, full, "vmdk", NULL, VDK_O_NO_BACKING | VDK_O_SHARE, errp);
    free(full);
    if (r < 0) {
        vdk_error_prepend(errp, "opening backing file '%s'", backing);
        return r;
    }
    struct vmdk_state *s = b->opaque;
    *cid = s->desc.cid;
    *size = b->size;
    vdk_close(b);
    return 0;
}

int vmdk_create(const char *filename, struct vdk_node *file, struct vdk_opts *opts,
                struct vdk_error **errp)
{
    struct plan p = { 0 };
    bool compat6 = false;
    int r, adapter;
    if (!filename)
        return vdk_error_setf(errp, EINVAL, "a VMDK needs a file name");
    if ((r = vdk_opts_get_size(opts, "size", 0, &p.size, errp)) < 0 ||
        (r = vdk_opts_get_bool(opts, "compat6", false, &compat6, errp)) < 0 ||
        (r = vdk_opts_get_bool(opts, "zeroed_grain", false, &p.zeroed, errp)) < 0)
        return r;
    bool has_size = vdk_opts_has(opts, "size");
    if ((p.sub = vdk_opts_get_enum(opts, "subformat", subformats, 0, errp)) < 0)
        return p.sub;
    if ((adapter = vdk_opts_get_enum(opts, "adapter_type", adapters, 0, errp)) < 0)
        return adapter;
    if ((p.prealloc = vdk_opts_get_enum(opts, "preallocation", prealloc_values, 0, errp)) < 0)
        return p.prealloc;
    const char *hw = vdk_opts_get(opts, "hwversion");
    const char *tools = vdk_opts_get(opts, "toolsversion");
    const char *backing = vdk_opts_get(opts, "backing_file");
    const char *bfmt = vdk_opts_get(opts, "backing_fmt");
    if (backing && !*backing)
        backing = NULL;
    if (compat6 && hw)
        return vdk_error_setf(errp, EINVAL, "compat6 cannot be enabled with hwversion set");
    if (bfmt && strcmp(bfmt, "vmdk"))
        return vdk_error_setf(errp, EINVAL, "backing_fmt must be 'vmdk', not '%s'", bfmt);
    if (bfmt && !backing)
        return vdk_error_setf(errp, EINVAL, "backing_fmt given without backing_file");
    p.flat = p.sub == SUB_MFLAT || p.sub == SUB_2GFLAT;
    p.split = p.sub == SUB_2GSPARSE || p.sub == SUB_2GFLAT;
    p.stream = p.sub == SUB_STREAM;
    if (p.flat && p.zeroed)
        return vdk_error_setf(errp, EINVAL, "Flat image can't enable zeroed grain");
    if (p.prealloc && !p.flat && p.sub != SUB_MSPARSE)
        return vdk_error_setf(errp, ENOTSUP, "preallocation is only supported for "
                              "monolithicSparse and flat subformats");
    uint32_t pcid = 0xffffffffu;
    if (backing) {
        uint64_t psize;
        if ((r = parent_cid(filename, backing, &psize, &pcid, errp)) < 0)
            return r;
        if (!has_size)
            p.size = psize;
    } else if (!has_size) {
        return vdk_error_setf(errp, EINVAL, "image size must be specified");
    }
    p.size = vdk_align_up(p.size, VMDK_SECTOR);
    if (p.size / VMDK_SECTOR > VMDK_MAX_SECTORS)
        return vdk_error_setf(errp, EFBIG, "VMDK images are limited to %llu sectors",
                              (unsigned long long)VMDK_MAX_SECTORS);

    char dir[4096], prefix[4096], postfix[4096];
    decompose(filename, dir, prefix, postfix, sizeof(dir));
    size_t n_ext = p.split ? (size_t)((p.size + VMDK_SPLIT_EXTENT_BYTES - 1) /
                                      VMDK_SPLIT_EXTENT_BYTES) : 1;
    if (n_ext == 0)
        n_ext = 1;
    if (n_ext > VMDK_MAX_EXTENTS)
        return vdk_error_setf(errp, EFBIG, "too many extents");
    size_t lines_cap = n_ext * (strlen(prefix) + strlen(postfix) + 64) + 1;
    char *lines = calloc(1, lines_cap);
    if (!lines)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    size_t lo = 0;
    uint64_t left = p.size;
    for (size_t i = 0; i < n_ext && r == 0; i++) {
        uint64_t ext = p.split ? vdk_min_u64(left, VMDK_SPLIT_EXTENT_BYTES) : p.size;
        left -= ext;
        char name[8300], path[12400];
        if (!p.flat && !p.split)
            snprintf(name, sizeof(name), "%s%s", prefix, postfix);
        else if (!p.split)
            snprintf(name, sizeof(name), "%s-flat%s", prefix, postfix);
        else
            snprintf(name, sizeof(name), "%s-%c%03zu%s", prefix, p.flat ? 'f' : 's', i + 1,
                     postfix);
        lo += (size_t)snprintf(lines + lo, lines_cap - lo, "RW %" PRIu64 " %s \"%s\"%s\n",
                               ext / VMDK_SECTOR, p.flat ? "FLAT" : "SPARSE", name,
                               p.flat ? " 0" : "");
        if (p.flat || p.split) {
            snprintf(path, sizeof(path), "%s%s", dir, name);
            r = create_extent_file(path, ext, p.prealloc, !p.flat, &p, errp);
        }
    }
    unsigned heads = adapter == 0 ? 16 : 255;
    struct vmdk_desc_build b = {
        .cid = vmdk_new_cid(), .parent_cid = pcid, .create_type = subformats[p.sub],
        .parent_hint = backing, .extents = lines,
        .hwversion = hw ? hw : compat6 ? "6" : "4",
        .cylinders = p.size / (63ull * heads * VMDK_SECTOR), .heads = heads,
        .adapter = adapters[adapter], .toolsversion = tools ? tools : "2147483647",
    };
    char *desc = r == 0 ? vmdk_desc_build(&b) : NULL;
    free(lines);
    if (r < 0)
        return r;
    if (!desc)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    if (!p.flat && !p.split) {
        if (strlen(desc) > VMDK_DESC_SECTORS * VMDK_SECTOR)
            r = vdk_error_setf(errp, EINVAL, "descriptor does not fit in %u sectors",
                               VMDK_DESC_SECTORS);
        else
            r = init_sparse(file, &p, p.size, desc, errp);
    } else {
        r = vdk_truncate(file, 0, VDK_PREALLOC_OFF, true, NULL);
        if (r == 0)
            r = vdk_pwrite(file, desc, strlen(desc), 0, 0);
        if (r < 0)
            r = vdk_error_setf_errno(errp, r, "cannot write the VMDK descriptor");
    }
    free(desc);
    return r;
}

/* ---- measure ---- */

int vmdk_measure(struct vdk_opts *opts, struct vdk_node *src, uint64_t size,
                 struct vdk_measure *out, struct vdk_error **errp)
{
    int sub = vdk_opts_get_enum(opts, "subformat", subformats, 0, errp);
    if (sub < 0)
        return sub;
    if (src) {
        int64_t l = vdk_get_length(src);
        if (l < 0)
            return vdk_error_setf_errno(errp, (int)l, "cannot get the source length");
        size = (uint64_t)l;
    }
    size = vdk_align_up(size, VMDK_SECTOR);
    uint64_t grain = VMDK_DEFAULT_GRAIN * VMDK_SECTOR;
    uint64_t grains = (size + grain - 1) / grain;
    uint64_t gts = (grains + VMDK_DEFAULT_GTES - 1) / VMDK_DEFAULT_GTES;
    uint64_t gd = (gts * 4 + VMDK_SECTOR - 1) / VMDK_SECTOR;
    uint64_t meta = vdk_align_up(1 + VMDK_DESC_SECTORS + 2 * (gd + gts * 4),
                                 VMDK_DEFAULT_GRAIN) * VMDK_SECTOR;
    if (sub == SUB_MFLAT || sub == SUB_2GFLAT) {
        out->required = out->fully_allocated = size;
        return 0;
    }
    uint64_t used = 0;
    for (uint64_t off = 0; src && off < size;) {
        uint64_t pnum;
        int st = vdk_block_status_above(src, NULL, off, size - off, &pnum, NULL, NULL, NULL);
        if (st < 0)
            return vdk_error_setf_errno(errp, st, "cannot read the source's block status");
        if (st & VDK_BS_DATA) {
            uint64_t a = vdk_align_down(off, grain), e = vdk_align_up(off + pnum, grain);
            used += e - a;
        }
        off += pnum;
    }
    if (used > grains * grain)
        used = grains * grain;
    out->required = meta + (src ? used : 0);
    out->fully_allocated = meta + grains * grain;
    return 0;
}

/* ---- rebase ---- */

int vmdk_change_backing_file(struct vdk_node *n, const char *backing, const char *fmt,
                             struct vdk_error **errp)
{
    struct vmdk_state *s = n->opaque;
    uint32_t pcid = 0xffffffffu;
    uint64_t psize;
    int r;
    if (fmt && strcmp(fmt, "vmdk"))
        return vdk_error_setf(errp, ENOTSUP, "a VMDK's parent must be a VMDK, not '%s'", fmt);
    if (!s->desc_text)
        return vdk_error_setf(errp, ENOTSUP, "this VMDK has no descriptor to record a parent");
    if (backing && *backing && (r = parent_cid(n->filename, backing, &psize, &pcid, errp)) < 0)
        return r;
    char cid[16], *hint = NULL;
    snprintf(cid, sizeof(cid), "%" PRIx32, pcid);
    bool drop = !backing || !*backing;
    if (!drop && asprintf(&hint, "\"%s\"", backing) < 0)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    char *t1 = vmdk_desc_set(s->desc_text, "parentCID", cid);
    char *t2 = t1 ? vmdk_desc_set(t1, "parentFileNameHint", drop ? NULL : hint) : NULL;
    free(t1);
    free(hint);
    if (!t2)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    size_t len = strlen(t2);
    if (s->embedded) {
        struct vmdk_extent *e = &s->ext[0];
        if (len > e->desc_size) {
            free(t2);
            return vdk_error_setf(errp, ENOSPC, "the new descriptor does not fit in the "
                                  "image's %" PRIu64 "-byte descriptor area", e->desc_size);
        }
        char *area = calloc(1, e->desc_size);
        if (!area) {
            free(t2);
            return vdk_error_setf(errp, ENOMEM, "out of memory");
        }
        memcpy(area, t2, len);
        r = vdk_pwrite(e->file, area, e->desc_size, e->desc_off, 0);
        free(area);
    } else {
        r = vdk_pwrite(n->file, t2, len, 0, 0);
        if (r == 0)
            r = vdk_truncate(n->file, len, VDK_PREALLOC_OFF, true, NULL);
    }
    if (r < 0) {
        free(t2);
        return vdk_error_setf_errno(errp, r, "cannot rewrite the VMDK descriptor");
    }
    free(s->desc_text);
    s->desc_text = t2;
    s->desc.parent_cid = pcid;
    free(s->desc.parent_hint);
    s->desc.parent_hint = drop ? NULL : strdup(backing);
    free(n->backing_file);
    free(n->backing_fmt);
    n->backing_file = drop ? NULL : strdup(backing);
    n->backing_fmt = drop ? NULL : strdup("vmdk");
    return 0;
}
